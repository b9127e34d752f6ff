//! The W3C Baggage propagator: the `baggage` header.

use std::borrow::Cow;
use std::sync::LazyLock;

use opentelemetry::baggage::{Baggage, BaggageExt, BaggageMetadata};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::{Context, Key, StringValue};

use super::syntax::{
    ListMembers, is_baggage_octet, is_baggage_value_safe, is_token, percent_decode,
    percent_encode_into, trim_ows,
};

const BAGGAGE: &str = "baggage";
/// Most list members read from, or written to, one `baggage` header.
pub(crate) const MAX_MEMBERS: usize = 180;
/// Most bytes of `baggage` read (all fields together, separators included), or written.
pub(crate) const MAX_BYTES: usize = 8192;

static FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [BAGGAGE.to_owned()]);

/// Propagates [`Baggage`] in the W3C Baggage header `baggage`.
///
/// Use it through [`Propagators`](super::Propagators) (name `baggage`, on by default) or alone.
///
/// Extraction reads all `baggage` fields as one list of `key=value;property;key=value`
/// members. Keys and property keys are HTTP tokens; values are percent-decoded (a `%` not
/// followed by two hex digits stays as it is; bytes that do not decode to UTF-8 become U+FFFD);
/// whitespace around members, keys, values and properties is ignored. A malformed member is
/// skipped and the others kept. At most 180 members and 8192 bytes are read; members past
/// either limit are skipped, and [`Baggage`] itself keeps at most 64 entries and 8192 bytes of
/// keys, values and metadata. Properties are kept, normalised, as the entry's
/// [`BaggageMetadata`]. The entries are added to the baggage already in the context (the
/// header wins on equal keys); a missing or wholly invalid header leaves the context as it is.
///
/// Injection writes every entry whose key is a token, its value percent-encoded (every byte
/// that is not a `baggage-octet`, and `%`) and its metadata if that is valid property syntax,
/// up to 180 members and 8192 bytes (an entry that does not fit is left out); nothing is
/// written for empty baggage.
///
/// ```
/// use opentelemetry::Context;
/// use opentelemetry::baggage::BaggageExt;
/// use opentelemetry::propagation::TextMapPropagator;
/// use otel_core::propagation::BaggagePropagator;
/// use std::collections::HashMap;
///
/// let mut headers = HashMap::new();
/// headers.insert(
///     "baggage".to_owned(),
///     "user.id=42, region=eu%20west;source=edge".to_owned(),
/// );
/// let cx = BaggagePropagator::new().extract_with_context(&Context::new(), &headers);
/// assert_eq!(
///     cx.baggage().get("region").map(|v| v.as_str()),
///     Some("eu west")
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct BaggagePropagator {
    _private: (),
}

impl BaggagePropagator {
    /// Creates the propagator.
    ///
    /// ```
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::BaggagePropagator;
    /// use std::collections::HashMap;
    ///
    /// let cx = Context::new().with_baggage([KeyValue::new("tenant.id", "acme corp")]);
    /// let mut headers = HashMap::new();
    /// BaggagePropagator::new().inject_context(&cx, &mut headers);
    /// assert_eq!(headers["baggage"], "tenant.id=acme%20corp");
    /// ```
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

/// One parsed list member.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Member<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: Cow<'a, str>,
    pub(crate) properties: Option<String>,
}

/// Parses one trimmed list member; `None` when it is malformed.
pub(crate) fn parse_member(member: &str) -> Option<Member<'_>> {
    let (key_value, properties) = match member.split_once(';') {
        Some((key_value, properties)) => (key_value, Some(properties)),
        None => (member, None),
    };
    let (key, value) = key_value.split_once('=')?;
    let (key, value) = (trim_ows(key), trim_ows(value));
    if !is_token(key) || !value.bytes().all(is_baggage_octet) {
        return None;
    }
    let properties = match properties {
        Some(properties) => Some(normalize_properties(properties)?),
        None => None,
    };
    Some(Member {
        key,
        value: percent_decode(value, false),
        properties,
    })
}

/// Checks `;`-separated properties (`key` or `key=value`) and writes them without optional
/// whitespace; `None` when one is malformed. Empty properties (a stray `;`) are dropped.
pub(crate) fn normalize_properties(properties: &str) -> Option<String> {
    let mut out = String::new();
    for property in properties.split(';') {
        let property = trim_ows(property);
        if property.is_empty() {
            continue;
        }
        let (key, value) = match property.split_once('=') {
            Some((key, value)) => (trim_ows(key), Some(trim_ows(value))),
            None => (property, None),
        };
        if !is_token(key) || !value.is_none_or(|v| v.bytes().all(is_baggage_octet)) {
            return None;
        }
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(key);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
    Some(out)
}

/// Returns `cx` with its baggage plus `entries` (which win on equal keys); `cx` itself when
/// there is nothing to add.
pub(crate) fn with_added_baggage(
    cx: &Context,
    entries: Vec<(Key, StringValue, BaggageMetadata)>,
) -> Context {
    if entries.is_empty() {
        return cx.clone();
    }
    // The new entries go in first, so that they take the room (64 entries, 8 192 bytes)
    // before the caller's do; the caller's entries under the same keys are never copied, so a
    // full baggage cannot keep the caller's value in place of ours.
    let mut baggage = Baggage::new();
    let mut replaced: Vec<Key> = Vec::with_capacity(entries.len());
    for (key, value, metadata) in entries {
        replaced.push(key.clone());
        baggage.insert_with_metadata(key, value, metadata);
    }
    for (key, (value, metadata)) in cx.baggage() {
        if !replaced.contains(key) {
            baggage.insert_with_metadata(key.clone(), value.clone(), metadata.clone());
        }
    }
    cx.with_baggage(baggage)
}

/// The `baggage` header value for `baggage`, if it has any entry to send.
pub(crate) fn header_value(baggage: &Baggage) -> Option<String> {
    let mut out = String::new();
    let mut members = 0;
    for (key, (value, metadata)) in baggage {
        if members == MAX_MEMBERS {
            break;
        }
        if !is_token(key.as_str()) {
            continue;
        }
        let start = out.len();
        if members > 0 {
            out.push(',');
        }
        out.push_str(key.as_str());
        out.push('=');
        percent_encode_into(value.as_str(), is_baggage_value_safe, &mut out);
        if let Some(properties) = normalize_properties(metadata.as_str())
            && !properties.is_empty()
        {
            out.push(';');
            out.push_str(&properties);
        }
        if out.len() > MAX_BYTES {
            out.truncate(start);
            continue;
        }
        members += 1;
    }
    (!out.is_empty()).then_some(out)
}

impl TextMapPropagator for BaggagePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        if let Some(value) = header_value(cx.baggage()) {
            injector.set(BAGGAGE, value);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some(values) = extractor.get_all(BAGGAGE) else {
            return cx.clone();
        };
        let entries = ListMembers::new(&values, MAX_BYTES)
            .take(MAX_MEMBERS)
            .filter_map(parse_member)
            .map(|member| {
                (
                    Key::from(member.key.to_owned()),
                    StringValue::from(member.value.into_owned()),
                    BaggageMetadata::from(member.properties.unwrap_or_default()),
                )
            })
            .collect();
        with_added_baggage(cx, entries)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn extract(values: &[&str]) -> Vec<(String, String, String)> {
        struct Fields<'a>(&'a [&'a str]);
        impl Extractor for Fields<'_> {
            fn get(&self, key: &str) -> Option<&str> {
                (key == BAGGAGE).then(|| self.0.first().copied()).flatten()
            }
            fn keys(&self) -> Vec<&str> {
                vec![BAGGAGE]
            }
            fn get_all(&self, key: &str) -> Option<Vec<&str>> {
                (key == BAGGAGE).then(|| self.0.to_vec())
            }
        }
        let cx = BaggagePropagator::new().extract_with_context(&Context::new(), &Fields(values));
        let mut entries: Vec<(String, String, String)> = cx
            .baggage()
            .iter()
            .map(|(k, (v, m))| (k.to_string(), v.to_string(), m.to_string()))
            .collect();
        entries.sort();
        entries
    }

    fn kv(k: &str, v: &str, m: &str) -> (String, String, String) {
        (k.to_owned(), v.to_owned(), m.to_owned())
    }

    #[test]
    fn extraction_rows() {
        #[rustfmt::skip]
        let rows: Vec<(&[&str], Vec<(String, String, String)>, &str)> = vec![
            (&["k=v"], vec![kv("k", "v", "")], "one member"),
            (&["a=1,b=2"], vec![kv("a", "1", ""), kv("b", "2", "")], "two members"),
            (&["a=1", "b=2"], vec![kv("a", "1", ""), kv("b", "2", "")], "two fields are one list"),
            (&[" a \t= \t1 , b=2 "], vec![kv("a", "1", ""), kv("b", "2", "")], "OWS everywhere"),
            (&["a=1,,b=2,"], vec![kv("a", "1", ""), kv("b", "2", "")], "empty members skipped"),
            (&["k=a%20b%2C%3B%25"], vec![kv("k", "a b,;%", "")], "percent-decoded"),
            (&["k=%E2%82%AC"], vec![kv("k", "€", "")], "UTF-8 decoded"),
            (&["k=%FF"], vec![kv("k", "\u{FFFD}", "")], "invalid UTF-8 replaced"),
            (&["k=%zz"], vec![kv("k", "%zz", "")], "malformed escape kept"),
            (&["k="], vec![kv("k", "", "")], "empty value"),
            (&["k=v;p1;p2 = x "], vec![kv("k", "v", "p1;p2=x")], "properties normalised"),
            (&["k=v;"], vec![kv("k", "v", "")], "stray ';'"),
            (&["k=1,k=2"], vec![kv("k", "2", "")], "last duplicate wins"),
            (&["bad key=1,ok=1"], vec![kv("ok", "1", "")], "key with a space skipped"),
            (&["k(=1,ok=1"], vec![kv("ok", "1", "")], "key with a separator skipped"),
            (&["=1,ok=1"], vec![kv("ok", "1", "")], "empty key skipped"),
            (&["novalue,ok=1"], vec![kv("ok", "1", "")], "member without '=' skipped"),
            (&["k=a b,ok=1"], vec![kv("ok", "1", "")], "space inside value skipped"),
            (&["k=a\"b,ok=1"], vec![kv("ok", "1", "")], "quote inside value skipped"),
            (&["k=a\\b,ok=1"], vec![kv("ok", "1", "")], "backslash inside value skipped"),
            (&["k=é,ok=1"], vec![kv("ok", "1", "")], "raw non-ASCII value skipped"),
            (&["k=v;bad prop,ok=1"], vec![kv("ok", "1", "")], "malformed property skips the member"),
            (&["k=v;p=a b,ok=1"], vec![kv("ok", "1", "")], "bad property value skips the member"),
            (&[""], vec![], "empty header"),
        ];
        for (values, expected, why) in rows {
            assert_eq!(extract(values), expected, "{why}: {values:?}");
        }
    }

    #[test]
    fn member_limit() {
        let header: String = (0..200).map(|i| format!("k{i}=v,")).collect();
        let entries = extract(&[&header]);
        // 180 members are read; Baggage itself keeps 64 of them.
        assert_eq!(entries.len(), 64);
        let header: String = (0..200)
            .map(|i| format!("bad key{i}=v,"))
            .collect::<String>()
            + "ok=1";
        assert!(
            extract(&[&header]).is_empty(),
            "members past the 180th are not read"
        );
    }

    #[test]
    fn byte_limit() {
        // 8181 bytes and a comma leave 10: room for "small=1" and a comma, not for "late=1".
        let big = format!("big={}", "x".repeat(MAX_BYTES - 15));
        let keys = |entries: Vec<(String, String, String)>| {
            entries.into_iter().map(|(k, _, _)| k).collect::<Vec<_>>()
        };
        assert_eq!(
            keys(extract(&[&big, "small=1", "late=1"])),
            ["big", "small"]
        );
        let huge = format!("huge={}", "x".repeat(MAX_BYTES));
        assert!(
            keys(extract(&[&huge, "after=1"])).is_empty(),
            "nothing past 8192 bytes is read"
        );
    }

    #[test]
    fn extraction_adds_to_existing_baggage() {
        let cx = Context::new().with_baggage([
            opentelemetry::KeyValue::new("kept", "1"),
            opentelemetry::KeyValue::new("replaced", "old"),
        ]);
        let mut headers = HashMap::new();
        headers.insert("baggage".to_owned(), "replaced=new,added=2".to_owned());
        let cx = BaggagePropagator::new().extract_with_context(&cx, &headers);
        let get = |k: &str| cx.baggage().get(k).map(|v| v.as_str().to_owned());
        assert_eq!(get("kept").as_deref(), Some("1"));
        assert_eq!(get("replaced").as_deref(), Some("new"));
        assert_eq!(get("added").as_deref(), Some("2"));
    }

    #[test]
    fn injection_encodes_and_round_trips() {
        let cx = Context::new().with_baggage([
            opentelemetry::baggage::KeyValueMetadata::new("k", "a b,c;d=e%f\\\"é", "p1; p2=x"),
            opentelemetry::baggage::KeyValueMetadata::new("bad", "v", "bad meta,"),
        ]);
        let mut headers = HashMap::new();
        BaggagePropagator::new().inject_context(&cx, &mut headers);
        let value = headers.get("baggage").unwrap();
        let mut members: Vec<&str> = value.split(',').collect();
        members.sort_unstable();
        assert_eq!(
            members,
            ["bad=v", "k=a%20b%2Cc%3Bd=e%25f%5C%22%C3%A9;p1;p2=x"],
            "invalid metadata is left out, the entry kept"
        );
        let back = BaggagePropagator::new().extract_with_context(&Context::new(), &headers);
        assert_eq!(
            back.baggage()
                .get("k")
                .map(|v| v.as_str().to_owned())
                .as_deref(),
            Some("a b,c;d=e%f\\\"é")
        );
    }

    #[test]
    fn injection_respects_byte_limit() {
        let cx = Context::new().with_baggage([
            opentelemetry::KeyValue::new("a", "x".repeat(3000)),
            opentelemetry::KeyValue::new("b", " ".repeat(2000)),
            opentelemetry::KeyValue::new("c", "y".repeat(100)),
        ]);
        let mut headers = HashMap::new();
        BaggagePropagator::new().inject_context(&cx, &mut headers);
        let value = headers.get("baggage").unwrap();
        assert!(value.len() <= MAX_BYTES);
        // "b" is 6000 bytes encoded: with "a" it cannot fit, so exactly one of them is sent.
        assert!(value.contains("c=") && (value.contains("a=") != value.contains("b=")));
    }

    #[test]
    fn nothing_injected_for_empty_baggage() {
        let mut headers = HashMap::new();
        BaggagePropagator::new().inject_context(&Context::new(), &mut headers);
        assert!(headers.is_empty());
    }
}
