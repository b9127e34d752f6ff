#[otel_core::traced(name = "a", levle = "info")]
fn f() {}

fn main() {}
