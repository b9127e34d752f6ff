#[otel_core::traced(err)]
fn count() -> u32 {
    1
}

#[otel_core::traced(err)]
fn nothing() {}

#[otel_core::traced(err)]
async fn maybe() -> Option<u32> {
    None
}

type Maybe = Option<u32>;

#[otel_core::traced(err)]
fn aliased() -> Maybe {
    None
}

fn main() {}
