#[otel_core::traced(name = "a", err, name = "b")]
fn f() -> Result<(), String> {
    Ok(())
}

fn main() {}
