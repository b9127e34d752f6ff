//! Rewriting exported log records in a [`LogProcessor`](opentelemetry_sdk::logs::LogProcessor):
//! the shared part of [`RedactingLogProcessor`](crate::redact::RedactingLogProcessor) and
//! [`ValueLengthLimitLogProcessor`](crate::limits::ValueLengthLimitLogProcessor).
//!
//! The SDK's `SdkLogRecord` lets a processor read its attributes and add new ones, but not
//! replace one. When a value must change, the record is rebuilt: a fresh record (from a
//! logger of an empty provider: `SdkLogger::create_log_record` is the SDK's only public
//! constructor) receives every field of the old one, with the changed values in place, in
//! the same order. Records that need no change are left untouched and cost one pass over
//! their attributes.

use std::sync::OnceLock;

use opentelemetry::Key;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger, SdkLoggerProvider};

/// Implements `LogProcessor` for a wrapper with fields `inner: P` by passing everything to
/// `inner`, except `emit`, whose body is given.
macro_rules! wrapping_log_processor {
    ($ty:ident, |$this:ident, $record:ident| $emit:block) => {
        impl<P: opentelemetry_sdk::logs::LogProcessor> opentelemetry_sdk::logs::LogProcessor
            for $ty<P>
        {
            fn emit(
                &$this,
                $record: &mut opentelemetry_sdk::logs::SdkLogRecord,
                scope: &opentelemetry::InstrumentationScope,
            ) {
                $emit
                $this.inner.emit($record, scope);
            }
            fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
                self.inner.force_flush()
            }
            fn shutdown_with_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> opentelemetry_sdk::error::OTelSdkResult {
                self.inner.shutdown_with_timeout(timeout)
            }
            fn event_enabled(
                &self,
                level: opentelemetry::logs::Severity,
                target: &str,
                name: Option<&str>,
            ) -> bool {
                self.inner.event_enabled(level, target, name)
            }
            fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
                self.inner.set_resource(resource);
            }
        }
    };
}
pub(crate) use wrapping_log_processor;

/// Deepest nesting of lists and maps that is rewritten; deeper values are left as they are.
pub(crate) const MAX_DEPTH: usize = 32;

/// Replaces the body with `body(old)` and each attribute value with `attribute(key, old)`
/// wherever those return `Some`.
pub(crate) fn rewrite(
    record: &mut SdkLogRecord,
    body: impl Fn(&AnyValue) -> Option<AnyValue>,
    attribute: impl Fn(&Key, &AnyValue) -> Option<AnyValue>,
) {
    let new_body = record.body().and_then(&body);
    let mut changed: Vec<(usize, AnyValue)> = Vec::new();
    for (i, (key, value)) in record.attributes_iter().enumerate() {
        if let Some(new) = attribute(key, value) {
            changed.push((i, new));
        }
    }
    if new_body.is_none() && changed.is_empty() {
        return;
    }
    let mut out = factory().create_log_record();
    if let Some(name) = record.event_name() {
        out.set_event_name(name);
    }
    if let Some(target) = record.target() {
        out.set_target(target.clone());
    }
    if let Some(t) = record.timestamp() {
        out.set_timestamp(t);
    }
    if let Some(t) = record.observed_timestamp() {
        out.set_observed_timestamp(t);
    }
    if let Some(text) = record.severity_text() {
        out.set_severity_text(text);
    }
    if let Some(number) = record.severity_number() {
        out.set_severity_number(number);
    }
    if let Some(tc) = record.trace_context() {
        out.set_trace_context(tc.trace_id, tc.span_id, tc.trace_flags);
    }
    match new_body {
        Some(b) => out.set_body(b),
        None => {
            if let Some(b) = record.body() {
                out.set_body(b.clone());
            }
        }
    }
    let mut changed = changed.into_iter().peekable();
    for (i, (key, value)) in record.attributes_iter().enumerate() {
        let value = match changed.next_if(|(at, _)| *at == i) {
            Some((_, new)) => new,
            None => value.clone(),
        };
        out.add_attribute(key.clone(), value);
    }
    *record = out;
}

/// A logger whose only use is to make empty records.
fn factory() -> &'static SdkLogger {
    static FACTORY: OnceLock<SdkLogger> = OnceLock::new();
    FACTORY.get_or_init(|| SdkLoggerProvider::builder().build().logger("otel-core"))
}

/// `value` with `f` applied to every string in it (lists and maps included, down to
/// [`MAX_DEPTH`]); `None` when `f` changed nothing. `f` receives the key the string sits
/// under in a map, if any.
pub(crate) fn map_strings(
    value: &AnyValue,
    key: Option<&Key>,
    f: &impl Fn(Option<&Key>, &AnyValue) -> Option<AnyValue>,
    depth: usize,
) -> Option<AnyValue> {
    if let Some(new) = f(key, value) {
        return Some(new);
    }
    if depth >= MAX_DEPTH {
        return None;
    }
    match value {
        AnyValue::ListAny(items) => {
            let changed: Vec<Option<AnyValue>> = items
                .iter()
                .map(|v| map_strings(v, None, f, depth + 1))
                .collect();
            changed.iter().any(Option::is_some).then(|| {
                AnyValue::ListAny(Box::new(
                    items
                        .iter()
                        .zip(changed)
                        .map(|(old, new)| new.unwrap_or_else(|| old.clone()))
                        .collect(),
                ))
            })
        }
        AnyValue::Map(map) => {
            let mut out = None::<std::collections::HashMap<Key, AnyValue>>;
            for (k, v) in map.iter() {
                if let Some(new) = map_strings(v, Some(k), f, depth + 1) {
                    out.get_or_insert_with(|| (**map).clone())
                        .insert(k.clone(), new);
                }
            }
            out.map(|m| AnyValue::Map(Box::new(m)))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry::logs::Severity;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
    use std::time::{Duration, SystemTime};

    fn record() -> SdkLogRecord {
        let mut r = factory().create_log_record();
        r.set_event_name("login");
        r.set_target("app::auth");
        r.set_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(7));
        r.set_observed_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(8));
        r.set_severity_text("WARN");
        r.set_severity_number(Severity::Warn);
        r.set_trace_context(
            TraceId::from(1_u128),
            SpanId::from(2_u64),
            Some(TraceFlags::SAMPLED),
        );
        r.set_body("hello".into());
        r.add_attribute("a", "keep");
        r.add_attribute("b", "change");
        r.add_attribute("c", 3_i64);
        r
    }

    #[test]
    fn a_rebuilt_record_keeps_every_other_field_and_the_attribute_order() {
        let mut r = record();
        let before = r.clone();
        rewrite(
            &mut r,
            |_| None,
            |k, _| (k.as_str() == "b").then(|| AnyValue::from("changed")),
        );
        assert_ne!(r, before);
        assert_eq!(r.event_name(), Some("login"));
        assert_eq!(r.target().map(|t| t.as_ref()), Some("app::auth"));
        assert_eq!(r.timestamp(), before.timestamp());
        assert_eq!(r.observed_timestamp(), before.observed_timestamp());
        assert_eq!(r.severity_text(), Some("WARN"));
        assert_eq!(r.severity_number(), Some(Severity::Warn));
        assert_eq!(r.trace_context(), before.trace_context());
        assert_eq!(r.body(), Some(&AnyValue::from("hello")));
        let attrs: Vec<_> = r.attributes_iter().cloned().collect();
        assert_eq!(
            attrs,
            [
                (Key::from("a"), AnyValue::from("keep")),
                (Key::from("b"), AnyValue::from("changed")),
                (Key::from("c"), AnyValue::Int(3)),
            ]
        );
    }

    #[test]
    fn an_unchanged_record_is_left_alone() {
        let mut r = record();
        let before = r.clone();
        rewrite(&mut r, |_| None, |_, _| None);
        assert_eq!(r, before);
        rewrite(&mut r, |_| Some(AnyValue::from("new body")), |_, _| None);
        assert_eq!(r.body(), Some(&AnyValue::from("new body")));
        assert_eq!(r.attributes_iter().count(), 3);
    }

    #[test]
    fn strings_in_lists_and_maps_are_reached_and_depth_is_bounded() {
        let upper = |_: Option<&Key>, v: &AnyValue| match v {
            AnyValue::String(s) if s.as_str() != s.as_str().to_uppercase() => {
                Some(AnyValue::from(s.as_str().to_uppercase()))
            }
            _ => None,
        };
        let nested = AnyValue::ListAny(Box::new(vec![
            AnyValue::from("a"),
            AnyValue::Int(1),
            AnyValue::Map(Box::new(
                [(Key::from("k"), AnyValue::from("b"))]
                    .into_iter()
                    .collect(),
            )),
        ]));
        let expected = AnyValue::ListAny(Box::new(vec![
            AnyValue::from("A"),
            AnyValue::Int(1),
            AnyValue::Map(Box::new(
                [(Key::from("k"), AnyValue::from("B"))]
                    .into_iter()
                    .collect(),
            )),
        ]));
        assert_eq!(map_strings(&nested, None, &upper, 0), Some(expected));
        assert_eq!(map_strings(&AnyValue::from("UP"), None, &upper, 0), None);

        let mut deep = AnyValue::from("x");
        for _ in 0..(MAX_DEPTH + 10) {
            deep = AnyValue::ListAny(Box::new(vec![deep]));
        }
        // Beyond the depth bound nothing is rewritten, and nothing overflows the stack.
        assert_eq!(map_strings(&deep, None, &upper, 0), None);
    }
}
