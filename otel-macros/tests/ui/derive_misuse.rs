use otel_core::SpanAttributes;

#[derive(SpanAttributes)]
struct Duplicate {
    #[otel(rename = "app.id")]
    order_id: u64,
    #[otel(rename = "app.id")]
    account_id: u64,
}

#[derive(SpanAttributes)]
struct Unknown {
    #[otel(hide)]
    secret: String,
}

#[derive(SpanAttributes)]
struct Contradiction {
    #[otel(redact, skip)]
    secret: String,
}

#[derive(SpanAttributes)]
struct Repeated {
    #[otel(redact, redact)]
    secret: String,
}

#[derive(SpanAttributes)]
enum NotAStruct {
    A,
}

#[derive(SpanAttributes)]
struct NotAValue {
    tags: Vec<String>,
}

fn main() {}
