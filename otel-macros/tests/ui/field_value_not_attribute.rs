#[derive(Debug)]
struct Region;

#[otel_core::traced(fields(region = Region))]
fn f() {}

#[otel_core::traced(fields(Region))]
fn g() {}

fn main() {}
