#[otel_core::traced(kind = serve)]
fn f() {}

fn main() {}
