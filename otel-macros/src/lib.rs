#![doc = include_str!("../../docs/adapters/macros.md")]

mod attr;
mod derive;
mod expand;

use proc_macro::TokenStream;

/// Traces a function: each call is a span, child of the current OpenTelemetry context, that
/// ends when the call returns, and (opt-in) its duration is recorded in an exemplar histogram.
///
/// Works on sync and `async fn`s, free functions and methods (also in `#[async_trait]` impls),
/// generic functions, `impl Trait` arguments and axum handlers (which stay valid handlers: the
/// signature is not changed). A function that returns `async move { .. }` or
/// `Box::pin(async move { .. })` as its last expression (`-> impl Future`) is traced like an
/// `async fn`: the span covers the future, from its first poll. A diverging `-> !` function
/// records its panic.
///
/// ```
/// use otel_core::traced;
///
/// #[derive(Debug)]
/// struct Db;
///
/// #[traced(kind = client, skip(db), fields(db.system.name = "postgresql"), err)]
/// async fn load_balance(db: &Db, account_id: u64) -> Result<i64, std::io::Error> {
///     Ok(100)
/// }
/// # let _ = load_balance(&Db, 1);
/// ```
///
/// # What the span holds
///
/// * Name: the function's name, or `name = "..."`. Kind: `internal`, or
///   `kind = server | client | internal | producer | consumer`.
/// * `code.function.name` (the fully qualified path, as `std::any::type_name` writes it, e.g.
///   `my_crate::accounts::Repo<_>::load`), `code.file.path`, `code.line.number` and
///   `code.column.number` (of the function's name).
/// * Every argument except `self`, under its own name: booleans, integers, floats and strings
///   (and references and `Option`s of them) as they are, anything else by its `Debug` text.
///   Bindings in patterns are recorded one by one (`Path(id): Path<u64>` records `id` as an
///   integer). `skip(a, b)` leaves arguments out, `skip_all` leaves all out.
/// * `fields(key = value, ...)`: attributes from expressions evaluated before the body runs;
///   keys are dotted names (`app.tenant.id = ..`) or string literals; `key = %value` records the
///   `Display` text, `key = ?value` the `Debug` text, plain `key = value` needs a
///   `ToAttributeValue` (numbers, strings, bools). A bare expression in `fields(..)` is a
///   [`SpanAttributes`](derive@SpanAttributes) value whose attributes are all recorded. A field
///   named like an argument replaces it.
/// * `err`: when the function returns `Err(e)`, the span gets status Error with `e`'s `Display`
///   text (`err(Debug)`: its `Debug` text), an `exception` event, and `error.type` = the type
///   name of `e`. The function must return a `Result`.
/// * `ret`: the return value under `return` (with `err`: the `Ok` value), as arguments are
///   recorded; `ret(Display)` / `ret(Debug)` choose the text.
/// * With `err` or `ret`, `return` and `?` in the body still end in the recording, and any
///   return type the function could have without the macro works, including a reborrow of a
///   `&mut` argument (`fn slot(&mut self, i: usize) -> Result<&mut u8, E>`).
/// * A panic in the body ends the span with status Error and `error.type = "panic"`; an async
///   call dropped before it completes ends with `error.type = "cancelled"`.
///
/// Arguments and fields are only evaluated and formatted when the span is recording (sampled
/// or recorded), so an unsampled call does no attribute work.
///
/// # Context
///
/// Inside the function the span is the current context: spans of adapters, of other traced
/// functions and of `#[tracing::instrument]` functions called from the body are its children.
/// In an `async fn` the span is current whenever the body is polled, across `.await`; work
/// spawned with `otel_core::context::spawn` stays in its trace. The span of an async function
/// starts when the future is first polled.
///
/// # Metrics
///
/// `metrics` records each call's duration in seconds into the `function.call.duration`
/// histogram with `code.function.name`, `result` (`ok` / `error`) and, on error, `error.type`;
/// the exemplar of a sampled call points at its span. Without the option a function follows
/// `otel_core::macro_support::set_metrics_by_default`; `metrics = false` opts out.
///
/// # Where the telemetry goes
///
/// To the global tracer provider and `Metrics::global()` as they are at the function's first
/// call (install the pipeline first), under an instrumentation scope named after the crate that
/// defines the function; a context made by `otel_core::macro_support::with_instrumentation`
/// routes calls elsewhere (tests).
///
/// # Errors at compile time
///
/// An unknown or repeated option, a bad `kind`, a repeated field key, `skip` of a parameter
/// that does not exist, `err` on a function that does not return `Result`, and an argument or
/// value that cannot be recorded are reported at the offending token.
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match syn::parse::<attr::TracedArgs>(args) {
        Ok(args) => expand::traced(args, item).into(),
        Err(e) => expand::with_error(e, item).into(),
    }
}

/// Derives `otel_core::SpanAttributes` for a struct with named fields: its business context
/// (tenant, order id, account id) becomes a list of span attributes, named once and typed.
///
/// Each field is recorded under its name (with the struct's `#[otel(prefix = "app.")]` in
/// front) through `ToAttributeValue` (booleans, integers, floats, strings, `Option`s of them;
/// `None` records nothing). Per field:
///
/// | option | effect |
/// | --- | --- |
/// | `#[otel(rename = "app.tenant.id")]` | the attribute key (the prefix is not added) |
/// | `#[otel(skip)]` | not recorded |
/// | `#[otel(redact)]` | recorded as `"[REDACTED]"`; the value is never read |
/// | `#[otel(display)]` / `#[otel(debug)]` | recorded as its `Display` / `Debug` text |
/// | `#[otel(flatten)]` | a nested `SpanAttributes` value, its attributes inlined |
///
/// ```
/// use otel_core::{SpanAttributes, traced};
///
/// #[derive(SpanAttributes)]
/// #[otel(prefix = "app.")]
/// struct Order {
///     #[otel(rename = "app.tenant.id")]
///     tenant: String,
///     order_id: u64,
///     #[otel(redact)]
///     card_number: String,
/// }
///
/// #[traced(skip(order), fields(order))]
/// fn checkout(order: &Order) {
///     // or, on whatever span is current:
///     order.record_on_current_span();
/// }
/// # checkout(&Order { tenant: "acme".into(), order_id: 1, card_number: "4111".into() });
/// ```
///
/// Two fields with the same key, an unknown or repeated option, and options that contradict
/// each other (`skip` with `redact`) are compile errors at the offending token.
#[proc_macro_derive(SpanAttributes, attributes(otel))]
pub fn derive_span_attributes(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(input) => derive::derive(input).unwrap_or_else(syn::Error::into_compile_error),
        Err(e) => e.into_compile_error(),
    }
    .into()
}
