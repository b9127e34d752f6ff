#[otel_core::traced(fields(app.order.id = 1, app.tenant = "t", app.order.id = 2))]
fn f() {}

fn main() {}
