//! The W3C Trace Context (Level 2) propagator: `traceparent` and `tracestate`.

use std::fmt::Write as _;
use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

use super::syntax::{HexCase, parse_hex_u8, parse_hex_u64, parse_hex_u128, trim_ows};
use super::tracestate;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// Length of a version `00` `traceparent`, and the least length of any version.
const TRACEPARENT_LEN: usize = 55;
/// Trace flags this implementation knows: `sampled` (`0x01`) and Level 2 `random` (`0x02`).
const KNOWN_FLAGS: u8 = 0x03;

static FIELDS: LazyLock<[String; 2]> =
    LazyLock::new(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()]);

/// Propagates a span context in the W3C Trace Context Level 2 headers `traceparent` and
/// `tracestate`, validating both exactly as the specification says.
///
/// Use it through [`Propagators`](super::Propagators) (name `tracecontext`, on by default) or
/// alone. Compared with `opentelemetry_sdk`'s propagator of the same name it is strict where the
/// specification is:
///
/// - `traceparent` version `00` is exactly 55 characters; a higher version is at least 55 and,
///   when longer, has a `-` after the flags (its extra fields are ignored, and it is sent on
///   as version `00`); version `ff` is invalid; hexadecimal is lower case only; an all-zero
///   trace id or parent id is invalid; leading and trailing spaces and tabs are ignored.
/// - A `traceparent` header received more than once is invalid: the request starts a new trace.
/// - The flags kept are `sampled` (`0x01`) and Level 2 `random` (`0x02`,
///   [`TraceContextPropagator::RANDOM_FLAG`]): both stay in the span context's
///   [`TraceFlags`], the SDK copies them to child spans, and they are sent on. Other bits are
///   reserved: ignored when received, never sent.
/// - `tracestate` is read only with a valid `traceparent`. Several `tracestate` fields are one
///   list. Keys, values, duplicates and the 32-member limit follow the Level 2 grammar; one bad
///   member discards the whole list; empty members and whitespace around members are allowed.
///   The header is read up to 16 KiB (members past that are dropped), and the list kept is
///   at most 512 characters, truncated as the specification asks (members longer than 128
///   characters first, then from the end).
/// - On injection the span context's [`TraceState`] is validated again (it may have been built
///   with the SDK's laxer checks): invalid members are left out, the 512-character limit is
///   applied, and `tracestate` is sent only when not empty.
///
/// One gap of the API is covered: [`TraceState`] refuses a few keys the specification allows
/// (a multi-tenant key whose system part has the full 14 characters). When a received list
/// holds such a key, the span context gets the rest of the list, and the complete list is
/// kept beside it in the [`Context`]; it is sent verbatim as long as the outgoing span context
/// still has the same trace id and an unchanged trace state.
///
/// ```
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
/// use otel_core::propagation::TraceContextPropagator;
/// use std::collections::HashMap;
///
/// let mut headers = HashMap::new();
/// headers.insert(
///     "traceparent".to_owned(),
///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03".to_owned(),
/// );
/// let cx = TraceContextPropagator::new().extract(&headers);
/// let span = cx.span();
/// let remote = span.span_context();
/// assert!(remote.is_sampled());
/// assert_eq!(
///     remote.trace_flags(),
///     TraceContextPropagator::RANDOM_FLAG.with_sampled(true)
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextPropagator {
    _private: (),
}

impl TraceContextPropagator {
    /// The W3C Trace Context Level 2 `random` trace flag (`0x02`): the rightmost 7 bytes of
    /// the trace id are random. Kept when received and sent on.
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use opentelemetry::trace::TraceContextExt;
    /// use otel_core::propagation::TraceContextPropagator;
    /// use std::collections::HashMap;
    ///
    /// let tc = TraceContextPropagator::new();
    /// let mut incoming = HashMap::new();
    /// incoming.insert(
    ///     "traceparent".to_owned(),
    ///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02".to_owned(),
    /// );
    /// let cx = tc.extract(&incoming);
    /// let flags = cx.span().span_context().trace_flags();
    /// assert!(!flags.is_sampled());
    /// assert_eq!(
    ///     flags & TraceContextPropagator::RANDOM_FLAG,
    ///     TraceContextPropagator::RANDOM_FLAG
    /// );
    ///
    /// // Sent on unchanged.
    /// let mut outgoing = HashMap::new();
    /// tc.inject_context(&cx, &mut outgoing);
    /// assert!(outgoing["traceparent"].ends_with("-02"));
    /// ```
    pub const RANDOM_FLAG: TraceFlags = TraceFlags::new(0x02);

    /// Creates the propagator.
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use opentelemetry::trace::TraceContextExt;
    /// use otel_core::propagation::TraceContextPropagator;
    /// use std::collections::HashMap;
    ///
    /// let tc = TraceContextPropagator::new();
    /// let mut headers = HashMap::new();
    /// // Upper-case hex is invalid: the request starts a new trace.
    /// headers.insert(
    ///     "traceparent".to_owned(),
    ///     "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01".to_owned(),
    /// );
    /// assert!(!tc.extract(&headers).span().span_context().is_valid());
    /// ```
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

/// Why a `traceparent` value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidTraceparent {
    /// Shorter than 55 characters, or version `00` and not exactly 55.
    Length,
    /// The version is not two lower-case hexadecimal digits followed by `-`.
    Version,
    /// Version `ff`, which is forbidden.
    VersionFf,
    /// A field separator is missing or misplaced (including after the flags of a future
    /// version).
    Separator,
    /// The trace id is not 32 lower-case hexadecimal digits.
    TraceId,
    /// The trace id is all zeros.
    ZeroTraceId,
    /// The parent id is not 16 lower-case hexadecimal digits.
    SpanId,
    /// The parent id is all zeros.
    ZeroSpanId,
    /// The flags are not 2 lower-case hexadecimal digits.
    Flags,
}

/// Parses one `traceparent` value.
pub(crate) fn parse_traceparent(
    value: &str,
) -> Result<(TraceId, SpanId, TraceFlags), InvalidTraceparent> {
    use InvalidTraceparent as E;
    let v = trim_ows(value).as_bytes();
    if v.len() < TRACEPARENT_LEN {
        return Err(E::Length);
    }
    let version = parse_hex_u8(&v[0..2]).ok_or(E::Version)?;
    if v[2] != b'-' {
        return Err(E::Version);
    }
    if version == 0xff {
        return Err(E::VersionFf);
    }
    if version == 0 && v.len() != TRACEPARENT_LEN {
        return Err(E::Length);
    }
    if v[35] != b'-' || v[52] != b'-' {
        return Err(E::Separator);
    }
    if v.len() > TRACEPARENT_LEN && v[TRACEPARENT_LEN] != b'-' {
        return Err(E::Separator);
    }
    let trace_id = parse_hex_u128(&v[3..35], HexCase::Lower).ok_or(E::TraceId)?;
    if trace_id == 0 {
        return Err(E::ZeroTraceId);
    }
    let span_id = parse_hex_u64(&v[36..52], HexCase::Lower).ok_or(E::SpanId)?;
    if span_id == 0 {
        return Err(E::ZeroSpanId);
    }
    let flags = parse_hex_u8(&v[53..55]).ok_or(E::Flags)?;
    Ok((
        TraceId::from(trace_id),
        SpanId::from(span_id),
        TraceFlags::new(flags & KNOWN_FLAGS),
    ))
}

/// Context value: the complete `tracestate` received, when [`TraceState`] could not hold all
/// of it. `state` is what the span context got; `header` is sent instead of it while the
/// outgoing span context has `trace_id` and `state`.
#[derive(Debug)]
struct VerbatimTraceState {
    trace_id: TraceId,
    state: TraceState,
    header: String,
}

/// Reads `tracestate` for a valid `traceparent`: the [`TraceState`] for the span context, and
/// the complete list when [`TraceState`] refused some of it.
fn extract_tracestate(
    extractor: &dyn Extractor,
    trace_id: TraceId,
) -> (TraceState, Option<VerbatimTraceState>) {
    let Some(values) = extractor.get_all(TRACESTATE) else {
        return (TraceState::NONE, None);
    };
    let members = match tracestate::parse(&values) {
        Ok(members) if !members.is_empty() => members,
        _ => return (TraceState::NONE, None),
    };
    // `TraceStateError` is not public, so a refusal is located by trying members one by
    // one; that happens only in the rare case where the whole list is refused.
    let (state, representable) = match TraceState::from_key_value(members.iter().copied()) {
        Ok(state) => (state, members.len()),
        Err(_) => {
            let accepted: Vec<(&str, &str)> = members
                .iter()
                .copied()
                .filter(|member| TraceState::from_key_value([*member]).is_ok())
                .collect();
            let state =
                TraceState::from_key_value(accepted.iter().copied()).unwrap_or(TraceState::NONE);
            (state, accepted.len())
        }
    };
    let verbatim = (representable != members.len()).then(|| VerbatimTraceState {
        trace_id,
        state: state.clone(),
        header: tracestate::write_header(&members),
    });
    (state, verbatim)
}

/// The `tracestate` to send for `span_context`, if any.
fn tracestate_header(cx: &Context, span_context: &SpanContext) -> Option<String> {
    let state = span_context.trace_state();
    if let Some(verbatim) = cx.get::<VerbatimTraceState>()
        && verbatim.trace_id == span_context.trace_id()
        && verbatim.state == *state
    {
        return Some(verbatim.header.clone());
    }
    let mut members: Vec<(&str, &str)> = Vec::new();
    for (key, value) in state {
        if members.len() == tracestate::MAX_MEMBERS {
            break;
        }
        if tracestate::is_valid_key(key)
            && tracestate::is_valid_value(value)
            && !members.iter().any(|(seen, _)| *seen == key)
        {
            members.push((key, value));
        }
    }
    tracestate::truncate(&mut members);
    (!members.is_empty()).then(|| tracestate::write_header(&members))
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return;
        }
        let mut traceparent = String::with_capacity(TRACEPARENT_LEN);
        // Writing to a String cannot fail.
        let _ = write!(
            traceparent,
            "00-{:032x}-{:016x}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8() & KNOWN_FLAGS
        );
        injector.set(TRACEPARENT, traceparent);
        if let Some(tracestate) = tracestate_header(cx, span_context) {
            injector.set(TRACESTATE, tracestate);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some(values) = extractor.get_all(TRACEPARENT) else {
            return cx.clone();
        };
        // Missing, or repeated: a repeated traceparent is invalid, both fields are ignored.
        let [value] = values.as_slice() else {
            return cx.clone();
        };
        let Ok((trace_id, span_id, flags)) = parse_traceparent(value) else {
            return cx.clone();
        };
        let (state, verbatim) = extract_tracestate(extractor, trace_id);
        let span_context = SpanContext::new(trace_id, span_id, flags, true, state);
        let cx = cx.with_remote_span_context(span_context);
        match verbatim {
            Some(verbatim) => cx.with_value(verbatim),
            // Hide a complete list left in `cx` by an earlier extraction.
            None if cx.get::<VerbatimTraceState>().is_some() => cx.with_value(VerbatimTraceState {
                trace_id: TraceId::INVALID,
                state: TraceState::NONE,
                header: String::new(),
            }),
            None => cx,
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
    const SPAN_ID: &str = "b7ad6b7169203331";

    #[test]
    fn traceparent_rows() {
        use InvalidTraceparent as E;
        let valid = format!("00-{TRACE_ID}-{SPAN_ID}-01");
        #[rustfmt::skip]
        let rows: Vec<(String, Result<u8, E>, &str)> = vec![
            (valid.clone(), Ok(0x01), "sampled"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-00"), Ok(0x00), "not sampled"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-02"), Ok(0x02), "random flag kept"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-03"), Ok(0x03), "sampled and random"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-ff"), Ok(0x03), "reserved bits dropped"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-09"), Ok(0x01), "reserved bit with sampled"),
            (format!(" \t00-{TRACE_ID}-{SPAN_ID}-01\t "), Ok(0x01), "OWS around the value"),
            (format!("cc-{TRACE_ID}-{SPAN_ID}-01"), Ok(0x01), "future version, 55 characters"),
            (format!("cc-{TRACE_ID}-{SPAN_ID}-01-future"), Ok(0x01), "future version with more fields"),
            (format!("01-{TRACE_ID}-{SPAN_ID}-01-"), Ok(0x01), "future version, empty extra field"),
            (format!("fe-{TRACE_ID}-{SPAN_ID}-03-x"), Ok(0x03), "highest allowed version"),
            (format!("cc-{TRACE_ID}-{SPAN_ID}-01.future"), Err(E::Separator), "future version: no '-' after flags"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-01-future"), Err(E::Length), "version 00 with more fields"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-01."), Err(E::Length), "version 00 with a trailing character"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-01-"), Err(E::Length), "version 00 with a trailing dash"),
            (format!("ff-{TRACE_ID}-{SPAN_ID}-01"), Err(E::VersionFf), "version ff is forbidden"),
            (format!(".0-{TRACE_ID}-{SPAN_ID}-01"), Err(E::Version), "illegal character in version"),
            (format!("0.-{TRACE_ID}-{SPAN_ID}-01"), Err(E::Version), "illegal character in version"),
            (format!("0A-{TRACE_ID}-{SPAN_ID}-01"), Err(E::Version), "upper-case version"),
            (format!("000-{TRACE_ID}-{SPAN_ID}-01"), Err(E::Version), "version of 3 digits"),
            (format!("0000-{TRACE_ID}-{SPAN_ID}-01"), Err(E::Version), "version of 4 digits"),
            (format!("0-{TRACE_ID}-{SPAN_ID}-01"), Err(E::Length), "version of 1 digit"),
            (format!("00-{}-{SPAN_ID}-01", "0".repeat(32)), Err(E::ZeroTraceId), "all-zero trace id"),
            (format!("00-.{}-{SPAN_ID}-01", &TRACE_ID[1..]), Err(E::TraceId), "illegal character in trace id"),
            (format!("00-{}.-{SPAN_ID}-01", &TRACE_ID[..31]), Err(E::TraceId), "illegal character in trace id"),
            (format!("00-{}-{SPAN_ID}-01", TRACE_ID.to_uppercase()), Err(E::TraceId), "upper-case trace id"),
            (format!("00-{TRACE_ID}1-{SPAN_ID}-01"), Err(E::Length), "trace id of 33 digits"),
            (format!("00-{}-{SPAN_ID}-01", &TRACE_ID[..31]), Err(E::Length), "trace id of 31 digits"),
            (format!("00-{TRACE_ID}-{}-01", "0".repeat(16)), Err(E::ZeroSpanId), "all-zero parent id"),
            (format!("00-{TRACE_ID}-.{}-01", &SPAN_ID[1..]), Err(E::SpanId), "illegal character in parent id"),
            (format!("00-{TRACE_ID}-{}.-01", &SPAN_ID[..15]), Err(E::SpanId), "illegal character in parent id"),
            (format!("00-{TRACE_ID}-{}-01", SPAN_ID.to_uppercase()), Err(E::SpanId), "upper-case parent id"),
            (format!("00-{TRACE_ID}-{SPAN_ID}1-01"), Err(E::Length), "parent id of 17 digits"),
            (format!("00-{TRACE_ID}-{}-01", &SPAN_ID[..15]), Err(E::Length), "parent id of 15 digits"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-.0"), Err(E::Flags), "illegal character in flags"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-0."), Err(E::Flags), "illegal character in flags"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-0A"), Err(E::Flags), "upper-case flags"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-001"), Err(E::Length), "flags of 3 digits"),
            (format!("00-{TRACE_ID}-{SPAN_ID}-1"), Err(E::Length), "flags of 1 digit"),
            (format!("cc-{TRACE_ID}-{SPAN_ID}-1-x"), Err(E::Separator), "future version, flags of 1 digit"),
            (format!("00_{TRACE_ID}-{SPAN_ID}-01"), Err(E::Version), "wrong first separator"),
            (format!("00-{TRACE_ID}_{SPAN_ID}-01"), Err(E::Separator), "wrong second separator"),
            (format!("00-{TRACE_ID}-{SPAN_ID}_01"), Err(E::Separator), "wrong third separator"),
            (format!("00-{TRACE_ID}-{SPAN_ID}"), Err(E::Length), "flags missing"),
            (String::new(), Err(E::Length), "empty"),
            (format!("00-{}-{SPAN_ID}-01", "é".repeat(16)), Err(E::TraceId), "non-ASCII in trace id"),
        ];
        for (value, expected, why) in rows {
            let got = parse_traceparent(&value).map(|(trace_id, span_id, flags)| {
                assert_eq!(format!("{trace_id:032x}"), TRACE_ID, "{why}");
                assert_eq!(format!("{span_id:016x}"), SPAN_ID, "{why}");
                flags.to_u8()
            });
            assert_eq!(got, expected, "{why}: {value:?}");
        }
    }

    fn carrier(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn round_trip_keeps_ids_flags_and_state() {
        let propagator = TraceContextPropagator::new();
        let traceparent = format!("00-{TRACE_ID}-{SPAN_ID}-03");
        let input = carrier(&[
            ("traceparent", &traceparent),
            ("tracestate", "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"),
        ]);
        let cx = propagator.extract_with_context(&Context::new(), &input);
        assert!(cx.span().span_context().is_remote());
        let mut output = HashMap::new();
        propagator.inject_context(&cx, &mut output);
        assert_eq!(output.get("traceparent"), Some(&traceparent));
        assert_eq!(
            output.get("tracestate").map(String::as_str),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
    }

    #[test]
    fn keys_trace_state_refuses_are_still_propagated() {
        let propagator = TraceContextPropagator::new();
        let odd_key = format!("t@{}", "v".repeat(14));
        assert!(tracestate::is_valid_key(&odd_key));
        assert!(
            TraceState::from_key_value([(odd_key.as_str(), "1")]).is_err(),
            "if this fails, TraceState accepts the key now and the workaround can go"
        );
        let tracestate = format!("foo=1,{odd_key}=2,bar=3");
        let input = carrier(&[
            ("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01")),
            ("tracestate", &tracestate),
        ]);
        let cx = propagator.extract_with_context(&Context::new(), &input);
        assert_eq!(
            cx.span().span_context().trace_state().header(),
            "foo=1,bar=3"
        );
        let mut output = HashMap::new();
        propagator.inject_context(&cx, &mut output);
        assert_eq!(output.get("tracestate"), Some(&tracestate));

        // Once the application changes the trace state, the span context's state is sent.
        let changed = cx
            .span()
            .span_context()
            .trace_state()
            .insert("mine", "x")
            .unwrap();
        let sc = cx.span().span_context().clone();
        let child = SpanContext::new(
            sc.trace_id(),
            SpanId::from(7),
            sc.trace_flags(),
            false,
            changed,
        );
        let cx2 = cx.with_remote_span_context(child);
        let mut output = HashMap::new();
        propagator.inject_context(&cx2, &mut output);
        assert_eq!(
            output.get("tracestate").map(String::as_str),
            Some("mine=x,foo=1,bar=3")
        );
    }

    #[test]
    fn injection_revalidates_trace_state() {
        // TraceState accepts an empty value, a trailing space and a key with an empty system.
        let state = TraceState::from_key_value([
            ("ok", "1"),
            ("empty", ""),
            ("space", "x "),
            ("sys@", "2"),
        ])
        .unwrap();
        let sc = SpanContext::new(
            TraceId::from(1),
            SpanId::from(2),
            TraceFlags::SAMPLED,
            false,
            state,
        );
        let cx = Context::new().with_remote_span_context(sc);
        let mut output = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut output);
        assert_eq!(
            output.get("traceparent").map(String::as_str),
            Some("00-00000000000000000000000000000001-0000000000000002-01")
        );
        assert_eq!(output.get("tracestate").map(String::as_str), Some("ok=1"));
    }

    #[test]
    fn nothing_injected_for_invalid_span_context() {
        let mut output = HashMap::new();
        TraceContextPropagator::new().inject_context(&Context::new(), &mut output);
        assert!(output.is_empty());
    }

    #[test]
    fn no_tracestate_header_when_empty() {
        let sc = SpanContext::new(
            TraceId::from(1),
            SpanId::from(2),
            TraceFlags::default(),
            false,
            TraceState::NONE,
        );
        let mut output = HashMap::new();
        TraceContextPropagator::new()
            .inject_context(&Context::new().with_remote_span_context(sc), &mut output);
        assert_eq!(output.len(), 1);
        assert_eq!(
            output.get("traceparent").map(String::as_str),
            Some("00-00000000000000000000000000000001-0000000000000002-00")
        );
    }

    #[test]
    fn fields() {
        let propagator = TraceContextPropagator::new();
        let fields: Vec<&str> = propagator.fields().collect();
        assert_eq!(fields, ["traceparent", "tracestate"]);
    }
}
