#[otel_core::traced]
struct Account {
    id: u64,
}

#[otel_core::traced]
const fn answer() -> u32 {
    42
}

fn main() {}
