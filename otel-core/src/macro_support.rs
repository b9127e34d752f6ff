//! What `#[traced]` and `#[derive(SpanAttributes)]` build on: typed attribute sets, value
//! conversion, routing of traced functions to an [`Instrumentation`], and the metric they record.
//!
//! # Where a traced function's telemetry goes
//!
//! Each function marked [`#[traced]`](crate::traced) has its own call site: a `static` that, on
//! the function's first call, builds an [`Instrumentation`] from the **global** tracer provider
//! and [`Metrics::global`], with an instrumentation scope named after the crate that defines the
//! function (`CARGO_PKG_NAME` / `CARGO_PKG_VERSION`). Later calls reuse it without locking or
//! allocating. As with every adapter, install the pipeline before the first traced call: a call
//! made earlier binds that function to the provider that was global at the time.
//!
//! A [`Context`] can route traced functions elsewhere: under the context returned by
//! [`with_instrumentation`], every traced function started in it (and in its children, across
//! `.await` and [`crate::context::spawn`]) records through the given [`Instrumentation`]
//! instead. Tests use this to send spans to a `otel_core::testing::TestTelemetry` (feature
//! `testing`) without touching global state, so they can run in parallel:
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use opentelemetry::Context;
//! use otel_core::macro_support::with_instrumentation;
//! use otel_core::testing::TestTelemetry;
//!
//! #[otel_core::traced]
//! fn load_account(id: u64) -> u64 {
//!     id
//! }
//!
//! let tt = TestTelemetry::new();
//! {
//!     let _guard =
//!         with_instrumentation(&Context::current(), &tt.instrumentation("test")).attach();
//!     load_account(7);
//! }
//! otel_core::testing::assert_attr(&tt.span("load_account"), "id", 7);
//! # }
//! ```
//!
//! # The call-duration metric
//!
//! With metrics on (`#[traced(metrics)]` on the function, or [`set_metrics_by_default`] for
//! every function that does not say `metrics = false`), each call records its duration in
//! seconds into the histogram [`CALL_DURATION`] with attributes `code.function.name`,
//! [`RESULT`] (`"ok"` or `"error"`) and, on error, `error.type`. The exemplar of a sampled call
//! points at its span, as with the adapters' duration metrics.

use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanRef, TraceContextExt as _};
use opentelemetry::{Context, KeyValue, StringValue, Value};

use crate::instrument::Instrumentation;
use crate::metrics::{Histogram, Metrics};

/// Name of the histogram a traced function with metrics on records its call duration in (unit
/// `s`). The OpenTelemetry conventions define no metric for plain function calls; this is ours.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use opentelemetry::{Context, KeyValue};
/// use otel_core::macro_support::{CALL_DURATION, RESULT, with_instrumentation};
/// use otel_core::metrics::SnapshotExt as _;
/// use otel_core::semconv::attribute::CODE_FUNCTION_NAME;
/// use otel_core::testing::TestTelemetry;
///
/// #[otel_core::traced(metrics)]
/// fn reserve_stock(sku: &str) -> u32 {
///     sku.len() as u32
/// }
///
/// let tt = TestTelemetry::new();
/// {
///     let _guard =
///         with_instrumentation(&Context::current(), &tt.instrumentation("shop")).attach();
///     reserve_stock("A-1");
///     reserve_stock("B-2");
/// }
/// let snapshot = tt.metrics().snapshot();
/// let calls = snapshot.find(CALL_DURATION).expect("the histogram exists");
/// assert_eq!(calls.unit, "s");
/// let ok = calls
///     .series_matching(&[KeyValue::new(RESULT, "ok")])
///     .next()
///     .expect("a series of successful calls");
/// assert!(
///     ok.attribute(CODE_FUNCTION_NAME)
///         .is_some_and(|f| f.as_str().ends_with("reserve_stock"))
/// );
/// assert_eq!(ok.histogram().map(|h| h.count), Some(2));
/// # }
/// ```
pub const CALL_DURATION: &str = "function.call.duration";

/// Attribute key of [`CALL_DURATION`] saying how the call ended: `"ok"` or `"error"` (an `Err`
/// return with `err`, a panic, or a future dropped before it completed).
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use opentelemetry::Context;
/// use otel_core::macro_support::{CALL_DURATION, RESULT, with_instrumentation};
/// use otel_core::metrics::SnapshotExt as _;
/// use otel_core::testing::TestTelemetry;
///
/// #[otel_core::traced(metrics, err)]
/// fn parse_quantity(text: &str) -> Result<u32, std::num::ParseIntError> {
///     text.parse()
/// }
///
/// let tt = TestTelemetry::new();
/// {
///     let _guard =
///         with_instrumentation(&Context::current(), &tt.instrumentation("shop")).attach();
///     let _ = parse_quantity("3");
///     let _ = parse_quantity("three");
/// }
/// let snapshot = tt.metrics().snapshot();
/// let mut results: Vec<String> = snapshot
///     .find(CALL_DURATION)
///     .expect("the histogram exists")
///     .series
///     .iter()
///     .filter_map(|s| s.attribute(RESULT))
///     .map(|v| v.to_string())
///     .collect();
/// results.sort();
/// assert_eq!(results, ["error", "ok"]);
/// # }
/// ```
pub const RESULT: &str = "result";

/// Attribute key under which `ret` records a function's return value.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use opentelemetry::Context;
/// use otel_core::macro_support::{RETURN, with_instrumentation};
/// use otel_core::testing::{TestTelemetry, assert_attr};
///
/// #[otel_core::traced(ret)]
/// fn discount_percent(code: &str) -> i64 {
///     if code == "SPRING" { 15 } else { 0 }
/// }
///
/// let tt = TestTelemetry::new();
/// {
///     let _guard =
///         with_instrumentation(&Context::current(), &tt.instrumentation("shop")).attach();
///     discount_percent("SPRING");
/// }
/// assert_attr(&tt.span("discount_percent"), RETURN, 15);
/// # }
/// ```
pub const RETURN: &str = "return";

/// The value recorded instead of a field marked `#[otel(redact)]`.
///
/// ```
/// use otel_core::SpanAttributes;
/// use otel_core::macro_support::REDACTED;
///
/// #[derive(SpanAttributes)]
/// struct Login {
///     user: String,
///     #[otel(redact)]
///     password: String,
/// }
///
/// let login = Login {
///     user: "ann".into(),
///     password: "hunter2".into(),
/// };
/// let attributes = login.attributes();
/// assert_eq!(attributes[1].key.as_str(), "password");
/// assert_eq!(attributes[1].value.as_str(), REDACTED);
/// ```
pub const REDACTED: &str = "[REDACTED]";

static METRICS_BY_DEFAULT: AtomicBool = AtomicBool::new(false);

/// Turns the call-duration metric on (or off) for every traced function that does not decide
/// for itself with `metrics` / `metrics = false`. Takes effect for calls started afterwards.
///
/// ```no_run
/// use otel_core::macro_support::{metrics_by_default, set_metrics_by_default};
///
/// fn main() -> Result<(), otel_core::ConfigError> {
///     // At startup, before the first traced call: every traced function records its duration
///     // unless it says `#[traced(metrics = false)]`.
///     set_metrics_by_default(true);
///     assert!(metrics_by_default());
///     let _guard = otel_core::Telemetry::builder().install()?;
///     // …
///     Ok(())
/// }
/// ```
pub fn set_metrics_by_default(enabled: bool) {
    METRICS_BY_DEFAULT.store(enabled, Ordering::Relaxed);
}

/// Whether traced functions that do not decide for themselves record the call-duration metric.
///
/// ```
/// use otel_core::macro_support::metrics_by_default;
///
/// // Off until the application calls `set_metrics_by_default(true)`: only functions marked
/// // `#[traced(metrics)]` record the call-duration histogram.
/// assert!(!metrics_by_default());
/// ```
pub fn metrics_by_default() -> bool {
    METRICS_BY_DEFAULT.load(Ordering::Relaxed)
}

/// A context, child of `parent`, under which traced functions record through `instrumentation`
/// (its tracer and the [`CALL_DURATION`] histogram in its metrics) instead of the globals.
///
/// Attach it (`.attach()`) or run futures in it (`FutureExt::with_context`); the routing
/// follows the context into child spans, across `.await` and into
/// [`crate::context::spawn`]ed tasks. Work that starts from an empty context (a plain
/// `tokio::spawn`, a server's connection tasks) is not routed: it uses the globals.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use opentelemetry::Context;
/// use opentelemetry::context::FutureExt as _;
/// use otel_core::macro_support::with_instrumentation;
/// use otel_core::testing::{TestTelemetry, assert_child_of};
///
/// #[otel_core::traced]
/// async fn handle(order: u64) {
///     check_stock(order).await;
/// }
///
/// #[otel_core::traced]
/// async fn check_stock(_order: u64) {}
///
/// let tt = TestTelemetry::new();
/// let cx = with_instrumentation(&Context::current(), &tt.instrumentation("shop"));
/// handle(7).with_context(cx).await;
/// // Both calls went to this test's pipeline, child under parent.
/// assert_child_of(&tt.span("check_stock"), &tt.span("handle"));
/// # }
/// # }
/// ```
pub fn with_instrumentation(parent: &Context, instrumentation: &Instrumentation) -> Context {
    parent.with_value(Routed::new(instrumentation.clone()))
}

/// The instrumentation routed to by [`with_instrumentation`], with its histogram built once.
struct Routed {
    instrumentation: Instrumentation,
    histogram: Histogram,
}

impl Routed {
    fn new(instrumentation: Instrumentation) -> Self {
        let histogram = call_duration(instrumentation.metrics());
        Self {
            instrumentation,
            histogram,
        }
    }
}

fn call_duration(metrics: &Metrics) -> Histogram {
    metrics.f64_histogram(CALL_DURATION).with_unit("s").build()
}

#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a set of span attributes",
    label = "does not implement `SpanAttributes`",
    note = "in `#[traced(fields(..))]` write `key = value` for one attribute; a bare expression must be a `SpanAttributes` value (`#[derive(SpanAttributes)]`)"
)]
/// A typed set of span attributes: business context (tenant, order id, account id) named once.
///
/// Derive it with [`#[derive(SpanAttributes)]`](macro@crate::SpanAttributes); per field,
/// `#[otel(rename = "key")]` chooses the attribute key, `#[otel(skip)]` leaves the field out,
/// `#[otel(redact)]` records [`REDACTED`] instead of the value (the value itself is never read),
/// `#[otel(display)]` / `#[otel(debug)]` format a value that is not a [`ToAttributeValue`], and
/// `#[otel(flatten)]` inlines a nested set. On the struct, `#[otel(prefix = "app.")]` is put in
/// front of every key that is not renamed.
///
/// Pass a set to `#[traced(fields(ctx))]`, or record it on a span with
/// [`record_on_current_span`](Self::record_on_current_span).
///
/// ```
/// use otel_core::SpanAttributes;
///
/// #[derive(SpanAttributes)]
/// #[otel(prefix = "app.")]
/// struct Checkout {
///     tenant: String,
///     #[otel(rename = "app.order.id")]
///     order: u64,
///     #[otel(redact)]
///     card_number: String,
///     #[otel(skip)]
///     _cache: Vec<u8>,
/// }
///
/// let c = Checkout {
///     tenant: "acme".into(),
///     order: 42,
///     card_number: "4111".into(),
///     _cache: vec![],
/// };
/// let kvs = c.attributes();
/// assert_eq!(kvs[0].key.as_str(), "app.tenant");
/// assert_eq!(kvs[1].key.as_str(), "app.order.id");
/// assert_eq!(kvs[2].value.as_str(), "[REDACTED]");
/// assert_eq!(kvs.len(), 3);
/// ```
pub trait SpanAttributes {
    /// Appends this set's attributes to `out` (fields whose value is `None` are left out).
    fn append_attributes(&self, out: &mut Vec<KeyValue>);

    /// This set's attributes as a new list.
    fn attributes(&self) -> Vec<KeyValue> {
        let mut out = Vec::new();
        self.append_attributes(&mut out);
        out
    }

    /// Sets this set's attributes on `span`, when it is recording.
    fn record_on(&self, span: &SpanRef<'_>) {
        if span.is_recording() {
            span.set_attributes(self.attributes());
        }
    }

    /// Sets this set's attributes on the current span (for example inside a traced function),
    /// when it is recording.
    fn record_on_current_span(&self) {
        let cx = Context::current();
        self.record_on(&cx.span());
    }
}

impl<T: SpanAttributes + ?Sized> SpanAttributes for &T {
    fn append_attributes(&self, out: &mut Vec<KeyValue>) {
        (**self).append_attributes(out);
    }
}

impl<T: SpanAttributes + ?Sized> SpanAttributes for Box<T> {
    fn append_attributes(&self, out: &mut Vec<KeyValue>) {
        (**self).append_attributes(out);
    }
}

impl<T: SpanAttributes + ?Sized> SpanAttributes for Arc<T> {
    fn append_attributes(&self, out: &mut Vec<KeyValue>) {
        (**self).append_attributes(out);
    }
}

impl<T: SpanAttributes> SpanAttributes for Option<T> {
    fn append_attributes(&self, out: &mut Vec<KeyValue>) {
        if let Some(set) = self {
            set.append_attributes(out);
        }
    }
}

impl SpanAttributes for [KeyValue] {
    fn append_attributes(&self, out: &mut Vec<KeyValue>) {
        out.extend_from_slice(self);
    }
}

impl SpanAttributes for Vec<KeyValue> {
    fn append_attributes(&self, out: &mut Vec<KeyValue>) {
        out.extend_from_slice(self);
    }
}

#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be recorded as an attribute value as it is",
    label = "not a bool, integer, float or string",
    note = "in `#[traced(fields(..))]` write `key = %value` (Display) or `key = ?value` (Debug); on a derived field use `#[otel(display)]` or `#[otel(debug)]`"
)]
/// A value that can be recorded as an attribute value as it is: booleans, integers, floats and
/// strings (and references, boxes and `Option`s of them; `None` records nothing).
///
/// Integers that do not fit an `i64` are recorded as their decimal text.
///
/// ```
/// use opentelemetry::Value;
/// use otel_core::macro_support::ToAttributeValue;
///
/// assert_eq!(42u8.to_attribute_value(), Some(Value::I64(42)));
/// assert_eq!(
///     u64::MAX.to_attribute_value(),
///     Some(Value::String(u64::MAX.to_string().into()))
/// );
/// assert_eq!(
///     Some("eu").to_attribute_value(),
///     Some(Value::String("eu".into()))
/// );
/// assert_eq!(None::<bool>.to_attribute_value(), None);
///
/// // A newtype recorded as its inner value (usable in `fields(order = id)` and derived sets).
/// struct OrderId(u64);
///
/// impl ToAttributeValue for OrderId {
///     fn to_attribute_value(&self) -> Option<Value> {
///         self.0.to_attribute_value()
///     }
/// }
/// assert_eq!(OrderId(7).to_attribute_value(), Some(Value::I64(7)));
/// ```
pub trait ToAttributeValue {
    /// The attribute value, or `None` to record nothing.
    fn to_attribute_value(&self) -> Option<Value>;
}

macro_rules! small_ints {
    ($($t:ty),*) => {$(
        impl ToAttributeValue for $t {
            fn to_attribute_value(&self) -> Option<Value> {
                Some(Value::I64(i64::from(*self)))
            }
        }
    )*};
}
small_ints!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! wide_ints {
    ($($t:ty),*) => {$(
        impl ToAttributeValue for $t {
            fn to_attribute_value(&self) -> Option<Value> {
                Some(match i64::try_from(*self) {
                    Ok(v) => Value::I64(v),
                    Err(_) => Value::String(self.to_string().into()),
                })
            }
        }
    )*};
}
wide_ints!(u64, u128, i128, usize, isize);

macro_rules! non_zero {
    ($($t:ty),*) => {$(
        impl ToAttributeValue for $t {
            fn to_attribute_value(&self) -> Option<Value> {
                self.get().to_attribute_value()
            }
        }
    )*};
}
non_zero!(
    std::num::NonZeroU8,
    std::num::NonZeroU16,
    std::num::NonZeroU32,
    std::num::NonZeroU64,
    std::num::NonZeroUsize,
    std::num::NonZeroI8,
    std::num::NonZeroI16,
    std::num::NonZeroI32,
    std::num::NonZeroI64,
    std::num::NonZeroIsize
);

impl ToAttributeValue for bool {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::Bool(*self))
    }
}

impl ToAttributeValue for f64 {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::F64(*self))
    }
}

impl ToAttributeValue for f32 {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::F64(f64::from(*self)))
    }
}

impl ToAttributeValue for char {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::String(self.to_string().into()))
    }
}

impl ToAttributeValue for str {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::String(self.to_owned().into()))
    }
}

impl ToAttributeValue for String {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::String(self.clone().into()))
    }
}

impl ToAttributeValue for Cow<'_, str> {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::String(self.as_ref().to_owned().into()))
    }
}

impl ToAttributeValue for StringValue {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::String(self.clone()))
    }
}

impl ToAttributeValue for Value {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(self.clone())
    }
}

impl<T: ToAttributeValue + ?Sized> ToAttributeValue for &T {
    fn to_attribute_value(&self) -> Option<Value> {
        (**self).to_attribute_value()
    }
}

impl<T: ToAttributeValue + ?Sized> ToAttributeValue for &mut T {
    fn to_attribute_value(&self) -> Option<Value> {
        (**self).to_attribute_value()
    }
}

impl<T: ToAttributeValue + ?Sized> ToAttributeValue for Box<T> {
    fn to_attribute_value(&self) -> Option<Value> {
        (**self).to_attribute_value()
    }
}

impl<T: ToAttributeValue + ?Sized> ToAttributeValue for Arc<T> {
    fn to_attribute_value(&self) -> Option<Value> {
        (**self).to_attribute_value()
    }
}

impl<T: ToAttributeValue + ?Sized> ToAttributeValue for Rc<T> {
    fn to_attribute_value(&self) -> Option<Value> {
        (**self).to_attribute_value()
    }
}

impl<T: ToAttributeValue> ToAttributeValue for Option<T> {
    fn to_attribute_value(&self) -> Option<Value> {
        self.as_ref().and_then(ToAttributeValue::to_attribute_value)
    }
}

/// Items the generated code calls. Not a public API: may change in any release.
#[doc(hidden)]
pub mod __private {
    use std::fmt;
    use std::sync::OnceLock;

    use opentelemetry::trace::SpanKind;
    use opentelemetry::{Context, ContextGuard, KeyValue, Value};
    use opentelemetry_semantic_conventions::attribute::{
        CODE_COLUMN_NUMBER, CODE_FILE_PATH, CODE_FUNCTION_NAME, CODE_LINE_NUMBER, ERROR_TYPE,
    };

    use super::{Routed, call_duration, metrics_by_default};
    use crate::instrument::{Instrumentation, Operation};
    use crate::metrics::{BoundHistogram, Histogram};

    pub use super::{SpanAttributes, ToAttributeValue};
    pub use opentelemetry::context::FutureExt;

    /// How a function decides whether to record the call-duration metric.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[doc(hidden)]
    pub enum MetricsMode {
        /// As [`super::set_metrics_by_default`] says.
        Default,
        /// Always (`metrics`).
        On,
        /// Never (`metrics = false`).
        Off,
    }

    /// What a call site knows at compile time.
    #[derive(Debug)]
    #[doc(hidden)]
    pub struct CallsiteMeta {
        /// Span name.
        pub name: &'static str,
        /// Span kind.
        pub kind: SpanKind,
        /// `file!()`.
        pub file: &'static str,
        /// `line!()` of the function name.
        pub line: u32,
        /// `column!()` of the function name.
        pub column: u32,
        /// Crate name (instrumentation scope).
        pub scope_name: &'static str,
        /// Crate version.
        pub scope_version: &'static str,
        /// Metric mode.
        pub metrics: MetricsMode,
        /// Returns the type name of an item nested in the function (its path plus a suffix).
        pub function_path: fn() -> &'static str,
        /// How many attributes the function sets after the start (arguments, fields, `ret`,
        /// `err`), reserved with the start attributes so that recording them does not reallocate.
        pub extra_attributes: usize,
    }

    /// One traced function: its compile-time facts and, after the first call, its
    /// instrumentation.
    #[doc(hidden)]
    pub struct Callsite {
        meta: CallsiteMeta,
        state: OnceLock<State>,
    }

    impl fmt::Debug for Callsite {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Callsite")
                .field("meta", &self.meta)
                .finish_non_exhaustive()
        }
    }

    struct State {
        function: &'static str,
        instrumentation: Instrumentation,
        histogram: Histogram,
        /// The series of successful calls, bound once: the common end records without
        /// looking the series up.
        ok: BoundHistogram,
    }

    /// The fully qualified function name from the type name of an item nested in it:
    /// `krate::module::Type<_>::method::{{closure}}::__otel_fn` becomes
    /// `krate::module::Type<_>::method`.
    #[doc(hidden)]
    pub fn function_name(nested_item_path: &'static str) -> &'static str {
        let mut path = nested_item_path;
        if let Some((head, _)) = path.rsplit_once("::") {
            path = head;
        }
        while let Some(head) = path.strip_suffix("::{{closure}}") {
            path = head;
        }
        path
    }

    impl Callsite {
        /// A call site; `const` so that it can be a `static`.
        #[doc(hidden)]
        pub const fn new(meta: CallsiteMeta) -> Self {
            Self {
                meta,
                state: OnceLock::new(),
            }
        }

        fn state(&self) -> &State {
            self.state.get_or_init(|| {
                let instrumentation =
                    Instrumentation::builder(self.meta.scope_name, self.meta.scope_version).build();
                let histogram = call_duration(instrumentation.metrics());
                let function = function_name((self.meta.function_path)());
                let ok = histogram.bind(&[
                    KeyValue::new(CODE_FUNCTION_NAME, function),
                    KeyValue::new(super::RESULT, "ok"),
                ]);
                State {
                    function,
                    instrumentation,
                    histogram,
                    ok,
                }
            })
        }

        /// Starts a call of a synchronous function: dropped without an outcome, it ends Ok
        /// (or Error "panic" while unwinding).
        #[inline]
        #[doc(hidden)]
        pub fn start_sync(&'static self) -> Call {
            self.start(Fallback::Ok)
        }

        /// Starts a call of an async function: dropped without [`Call::end`], it ends Error
        /// "cancelled" (or "panic" while unwinding).
        #[inline]
        #[doc(hidden)]
        pub fn start_async(&'static self) -> Call {
            self.start(Fallback::Cancelled)
        }

        fn start(&'static self, fallback: Fallback) -> Call {
            let panicking_at_start = std::thread::panicking();
            let state = self.state();
            let parent = Context::current();
            let routed = parent.get::<Routed>();
            let instrumentation = routed.map_or(&state.instrumentation, |r| &r.instrumentation);
            let metrics_on = match self.meta.metrics {
                MetricsMode::On => true,
                MetricsMode::Off => false,
                MetricsMode::Default => metrics_by_default(),
            };
            let histogram = match (metrics_on, routed) {
                (false, _) => None,
                (true, Some(r)) => Some(HistogramRef::Owned(r.histogram.clone())),
                (true, None) => Some(HistogramRef::Static(state)),
            };
            // The code.* attributes go in at the start, where samplers see them (and the SDK
            // keeps this vector, so the arguments recorded next fit without reallocating).
            let mut attributes = Vec::with_capacity(4 + self.meta.extra_attributes);
            attributes.push(KeyValue::new(CODE_FUNCTION_NAME, state.function));
            attributes.push(KeyValue::new(CODE_FILE_PATH, self.meta.file));
            attributes.push(KeyValue::new(CODE_LINE_NUMBER, i64::from(self.meta.line)));
            attributes.push(KeyValue::new(
                CODE_COLUMN_NUMBER,
                i64::from(self.meta.column),
            ));
            let op =
                instrumentation.start(&parent, self.meta.name, self.meta.kind.clone(), attributes);
            Call {
                op: Some(op),
                function: state.function,
                histogram,
                error_type: None,
                fallback,
                panicking_at_start,
            }
        }
    }

    enum HistogramRef {
        Static(&'static State),
        Owned(Histogram),
    }

    impl HistogramRef {
        fn get(&self) -> &Histogram {
            match self {
                Self::Static(state) => &state.histogram,
                Self::Owned(h) => h,
            }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fallback {
        Ok,
        Cancelled,
    }

    /// One call of a traced function in flight. Ends its span (and records the duration, when
    /// metrics are on) when dropped or [`end`](Self::end)ed.
    #[doc(hidden)]
    pub struct Call {
        op: Option<Operation>,
        function: &'static str,
        histogram: Option<HistogramRef>,
        error_type: Option<&'static str>,
        fallback: Fallback,
        panicking_at_start: bool,
    }

    impl fmt::Debug for Call {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Call")
                .field("function", &self.function)
                .field("op", &self.op)
                .finish_non_exhaustive()
        }
    }

    impl Call {
        /// Whether the span records (attribute work is skipped otherwise).
        #[inline]
        #[doc(hidden)]
        pub fn is_recording(&self) -> bool {
            self.op.as_ref().is_some_and(Operation::is_recording)
        }

        /// The context holding the call's span.
        #[inline]
        #[doc(hidden)]
        pub fn context(&self) -> Context {
            self.op
                .as_ref()
                .map_or_else(Context::current, |op| op.context().clone())
        }

        /// Makes the call's span current on this thread until the guard drops.
        #[inline]
        #[doc(hidden)]
        pub fn attach(&self) -> ContextGuard {
            self.context().attach()
        }

        /// Sets `attributes` on the span (`None`s are skipped).
        #[doc(hidden)]
        pub fn set_attributes(&mut self, attributes: impl IntoIterator<Item = Option<KeyValue>>) {
            if let Some(op) = &self.op {
                use opentelemetry::trace::TraceContextExt as _;
                op.context()
                    .span()
                    .set_attributes(attributes.into_iter().flatten());
            }
        }

        /// Records the error `e` (type name as `error.type`, Display text as the message).
        #[doc(hidden)]
        pub fn fail_display<E: fmt::Display + ?Sized>(&mut self, e: &E) {
            self.fail(std::any::type_name::<E>(), || crate::display_text(e));
        }

        /// Records the error `e` (type name as `error.type`, Debug text as the message).
        #[doc(hidden)]
        pub fn fail_debug<E: fmt::Debug + ?Sized>(&mut self, e: &E) {
            self.fail(std::any::type_name::<E>(), || crate::debug_text(e));
        }

        fn fail(&mut self, error_type: &'static str, message: impl FnOnce() -> String) {
            self.error_type = Some(error_type);
            if let Some(op) = &mut self.op
                && op.is_recording()
            {
                op.record_error(error_type, message());
            }
        }

        /// Ends the call now (the normal end of an async call).
        #[inline]
        #[doc(hidden)]
        pub fn end(mut self) {
            self.fallback = Fallback::Ok;
        }

        fn finish(&mut self) {
            let Some(mut op) = self.op.take() else {
                return;
            };
            if self.error_type.is_none() {
                if std::thread::panicking() && !self.panicking_at_start {
                    op.record_error("panic", "the function panicked");
                    self.error_type = Some("panic");
                } else if self.fallback == Fallback::Cancelled {
                    op.record_error("cancelled", "the future was dropped before it completed");
                    self.error_type = Some("cancelled");
                }
            }
            match &self.histogram {
                None => op.end(),
                Some(HistogramRef::Static(state)) if self.error_type.is_none() => {
                    op.end_with_bound(&state.ok);
                }
                Some(h) => {
                    let function = KeyValue::new(CODE_FUNCTION_NAME, self.function);
                    match self.error_type {
                        None => op.end_with_duration(
                            h.get(),
                            &[function, KeyValue::new(super::RESULT, "ok")],
                        ),
                        Some(t) => op.end_with_duration(
                            h.get(),
                            &[
                                function,
                                KeyValue::new(super::RESULT, "error"),
                                KeyValue::new(ERROR_TYPE, t),
                            ],
                        ),
                    }
                }
            }
        }
    }

    impl Drop for Call {
        fn drop(&mut self) {
            self.finish();
        }
    }

    /// `Result`-like return values `err` can inspect.
    #[diagnostic::on_unimplemented(
        message = "`#[traced(err)]` needs a function returning `Result`, but it returns `{Self}`",
        label = "`err` used here",
        note = "remove `err`, or return a `Result`"
    )]
    #[doc(hidden)]
    pub trait TracedResult {
        /// The success type.
        type Ok: ?Sized;
        /// The error type.
        type Error: ?Sized;
        /// The value, if this is a success.
        fn traced_ok(&self) -> Option<&Self::Ok>;
        /// The error, if this is one.
        fn traced_err(&self) -> Option<&Self::Error>;
    }

    impl<T, E> TracedResult for Result<T, E> {
        type Ok = T;
        type Error = E;
        fn traced_ok(&self) -> Option<&T> {
            self.as_ref().ok()
        }
        fn traced_err(&self) -> Option<&E> {
            self.as_ref().err()
        }
    }

    /// Arguments and values recorded with their `Debug` text.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be recorded: it does not implement `Debug`",
        label = "recorded as an attribute by `#[traced]`",
        note = "leave it out with `#[traced(skip(..))]`, or record something else with `fields(..)`"
    )]
    #[doc(hidden)]
    pub trait RecordDebug {
        /// The Debug text as a value.
        fn debug_value(&self) -> Value;
    }

    impl<T: fmt::Debug + ?Sized> RecordDebug for T {
        fn debug_value(&self) -> Value {
            Value::String(crate::debug_text(self).into())
        }
    }

    /// Values recorded with their `Display` text.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be recorded with `%`: it does not implement `Display`",
        label = "recorded as an attribute by `#[traced]`",
        note = "use `?value` for its Debug text"
    )]
    #[doc(hidden)]
    pub trait RecordDisplay {
        /// The Display text as a value.
        fn display_value(&self) -> Value;
    }

    impl<T: fmt::Display + ?Sized> RecordDisplay for T {
        fn display_value(&self) -> Value {
            Value::String(crate::display_text(self).into())
        }
    }

    /// A key/value when `value` is `Some`.
    #[inline]
    #[doc(hidden)]
    pub fn kv(key: &'static str, value: Option<Value>) -> Option<KeyValue> {
        value.map(|v| KeyValue::new(key, v))
    }

    /// Appends an attribute set's attributes.
    #[doc(hidden)]
    pub fn append_set<S: SpanAttributes + ?Sized>(set: &S, out: &mut Vec<Option<KeyValue>>) {
        let mut kvs = Vec::new();
        set.append_attributes(&mut kvs);
        out.extend(kvs.into_iter().map(Some));
    }
}

impl fmt::Debug for Routed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routed")
            .field("instrumentation", &self.instrumentation)
            .finish_non_exhaustive()
    }
}
