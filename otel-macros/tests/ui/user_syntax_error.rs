#[otel_core::traced]
fn f() -> u32 {
    let x = ;
    x
}

fn main() {}
