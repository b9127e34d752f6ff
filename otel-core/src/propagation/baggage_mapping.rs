//! Baggage to span attributes ([`BaggageAllowlist`]) and request headers to baggage
//! ([`HeaderToBaggage`]).

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName};
use opentelemetry::baggage::{BaggageExt, BaggageMetadata};
use opentelemetry::{Context, Key, KeyValue, StringValue, Value};

use super::baggage::with_added_baggage;
use super::syntax::{is_token, trim_ows};

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The baggage keys an adapter copies onto its spans as attributes.
///
/// Baggage comes from the caller, so nothing is copied unless listed here. Each listed key
/// present in a context's baggage becomes an attribute of the same name, in the order of the
/// list, with at most [`max_attributes`](Self::with_max_attributes) attributes and values cut
/// to [`max_value_len`](Self::with_max_value_len) bytes (at a character boundary).
///
/// ```
/// use opentelemetry::baggage::BaggageExt;
/// use opentelemetry::{Context, KeyValue};
/// use otel_core::propagation::BaggageAllowlist;
///
/// let allowlist = BaggageAllowlist::new(["tenant.id", "user.tier"]);
/// let cx = Context::new().with_baggage([
///     KeyValue::new("tenant.id", "acme"),
///     KeyValue::new("session.secret", "s3cr3t"),
/// ]);
/// assert_eq!(
///     allowlist.attributes(&cx),
///     [KeyValue::new("tenant.id", "acme")]
/// );
/// ```
#[derive(Clone, Debug)]
pub struct BaggageAllowlist {
    keys: Vec<Key>,
    max_attributes: usize,
    max_value_len: usize,
}

impl Default for BaggageAllowlist {
    /// An empty list: no baggage is copied.
    fn default() -> Self {
        Self::new(std::iter::empty::<String>())
    }
}

impl BaggageAllowlist {
    /// Default for [`with_max_attributes`](Self::with_max_attributes).
    ///
    /// ```
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::BaggageAllowlist;
    ///
    /// let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    /// let cx = Context::new().with_baggage(keys.iter().map(|k| KeyValue::new(k.clone(), "v")));
    /// let attributes = BaggageAllowlist::new(keys).attributes(&cx);
    /// assert_eq!(attributes.len(), BaggageAllowlist::DEFAULT_MAX_ATTRIBUTES);
    /// ```
    pub const DEFAULT_MAX_ATTRIBUTES: usize = 16;
    /// Default for [`with_max_value_len`](Self::with_max_value_len).
    ///
    /// ```
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::BaggageAllowlist;
    ///
    /// let long = "x".repeat(1000);
    /// let cx = Context::new().with_baggage([KeyValue::new("note", long)]);
    /// let attributes = BaggageAllowlist::new(["note"]).attributes(&cx);
    /// assert_eq!(
    ///     attributes[0].value.as_str().len(),
    ///     BaggageAllowlist::DEFAULT_MAX_VALUE_LEN
    /// );
    /// ```
    pub const DEFAULT_MAX_VALUE_LEN: usize = 256;

    /// Creates the list from baggage keys (compared exactly; repeats ignored).
    ///
    /// ```
    /// use otel_core::propagation::BaggageAllowlist;
    ///
    /// let allowlist = BaggageAllowlist::new(["tenant.id", "user.tier", "tenant.id"]);
    /// assert!(!allowlist.is_empty());
    /// ```
    pub fn new<I, K>(keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        let mut unique: Vec<Key> = Vec::new();
        for key in keys {
            let key: String = key.into();
            if !unique.iter().any(|k| k.as_str() == key) {
                unique.push(Key::from(Arc::<str>::from(key)));
            }
        }
        Self {
            keys: unique,
            max_attributes: Self::DEFAULT_MAX_ATTRIBUTES,
            max_value_len: Self::DEFAULT_MAX_VALUE_LEN,
        }
    }

    /// Sets the most attributes produced for one context.
    ///
    /// ```
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::BaggageAllowlist;
    ///
    /// let cx = Context::new().with_baggage([
    ///     KeyValue::new("tenant.id", "acme"),
    ///     KeyValue::new("user.tier", "gold"),
    /// ]);
    /// let allowlist = BaggageAllowlist::new(["user.tier", "tenant.id"]).with_max_attributes(1);
    /// // The first listed key present wins.
    /// assert_eq!(
    ///     allowlist.attributes(&cx),
    ///     [KeyValue::new("user.tier", "gold")]
    /// );
    /// ```
    #[must_use]
    pub fn with_max_attributes(mut self, max_attributes: usize) -> Self {
        self.max_attributes = max_attributes;
        self
    }

    /// Sets the longest attribute value, in bytes; longer baggage values are cut.
    ///
    /// ```
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::BaggageAllowlist;
    ///
    /// let cx = Context::new().with_baggage([KeyValue::new("city", "Zürich")]);
    /// let allowlist = BaggageAllowlist::new(["city"]).with_max_value_len(2);
    /// // Cut at a character boundary: "Zü" would be 3 bytes.
    /// assert_eq!(allowlist.attributes(&cx), [KeyValue::new("city", "Z")]);
    /// ```
    #[must_use]
    pub fn with_max_value_len(mut self, max_value_len: usize) -> Self {
        self.max_value_len = max_value_len;
        self
    }

    /// Whether no key is listed (then nothing is ever copied).
    ///
    /// ```
    /// use otel_core::propagation::BaggageAllowlist;
    ///
    /// assert!(BaggageAllowlist::default().is_empty());
    /// assert!(BaggageAllowlist::new(Vec::<String>::new()).is_empty());
    /// assert!(!BaggageAllowlist::new(["tenant.id"]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The attributes for the listed keys present in `cx`'s baggage.
    ///
    /// ```
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::BaggageAllowlist;
    ///
    /// let allowlist = BaggageAllowlist::new(["tenant.id", "user.tier"]);
    /// let cx = Context::new().with_baggage([
    ///     KeyValue::new("user.tier", "gold"),
    ///     KeyValue::new("tenant.id", "acme"),
    /// ]);
    /// // In the order of the list, not of the baggage.
    /// assert_eq!(
    ///     allowlist.attributes(&cx),
    ///     [
    ///         KeyValue::new("tenant.id", "acme"),
    ///         KeyValue::new("user.tier", "gold")
    ///     ]
    /// );
    /// assert!(allowlist.attributes(&Context::new()).is_empty());
    /// ```
    pub fn attributes(&self, cx: &Context) -> Vec<KeyValue> {
        let mut out = Vec::new();
        self.append_attributes(cx, &mut out);
        out
    }

    /// Appends the attributes for the listed keys present in `cx`'s baggage to `out`, for
    /// adapters that collect a span's attributes in one vector.
    ///
    /// ```
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::BaggageAllowlist;
    ///
    /// let allowlist = BaggageAllowlist::new(["tenant.id"]);
    /// let cx = Context::new().with_baggage([KeyValue::new("tenant.id", "acme")]);
    /// let mut attributes = vec![KeyValue::new("http.request.method", "GET")];
    /// allowlist.append_attributes(&cx, &mut attributes);
    /// assert_eq!(attributes.len(), 2);
    /// assert_eq!(attributes[1], KeyValue::new("tenant.id", "acme"));
    /// ```
    pub fn append_attributes(&self, cx: &Context, out: &mut Vec<KeyValue>) {
        if self.keys.is_empty() || self.max_attributes == 0 {
            return;
        }
        let baggage = cx.baggage();
        if baggage.is_empty() {
            return;
        }
        let mut added = 0;
        for key in &self.keys {
            let Some(value) = baggage.get(key.as_str()) else {
                continue;
            };
            let text = value.as_str();
            let value = if text.len() <= self.max_value_len {
                value.clone()
            } else {
                StringValue::from(truncate_str(text, self.max_value_len).to_owned())
            };
            out.push(KeyValue::new(key.clone(), Value::String(value)));
            added += 1;
            if added == self.max_attributes {
                break;
            }
        }
    }
}

/// A bad [`HeaderToBaggage`] mapping.
///
/// ```
/// use otel_core::propagation::{HeaderToBaggage, HeaderToBaggageError};
///
/// let err = HeaderToBaggage::new()
///     .map("x tenant", "tenant.id")
///     .unwrap_err();
/// assert_eq!(
///     err,
///     HeaderToBaggageError::InvalidHeaderName("x tenant".into())
/// );
/// let err = HeaderToBaggage::new()
///     .map("x-tenant-id", "tenant id")
///     .unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "`tenant id` is not a valid baggage key (it must be an HTTP token)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderToBaggageError {
    /// The header name is not a valid HTTP header name.
    #[error("`{0}` is not a valid HTTP header name")]
    InvalidHeaderName(String),
    /// The baggage key is not an HTTP token, as W3C baggage keys must be.
    #[error("`{0}` is not a valid baggage key (it must be an HTTP token)")]
    InvalidBaggageKey(String),
}

/// Copies request headers into baggage, e.g. `x-tenant-id` to `tenant.id`, so that services
/// downstream see them.
///
/// [`apply`](Self::apply) reads each mapped header; a header sent exactly once, whose value
/// (whitespace trimmed) is non-empty UTF-8 without control characters and at most
/// [`max_value_len`](Self::with_max_value_len) bytes, becomes the baggage entry. Anything else
/// — a missing, repeated, oversized or malformed header — is ignored. Mapped entries replace
/// baggage entries of the same key received from the caller.
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::Context;
/// use opentelemetry::baggage::BaggageExt;
/// use otel_core::propagation::HeaderToBaggage;
///
/// let mapping = HeaderToBaggage::new().map("X-Tenant-Id", "tenant.id")?;
/// let mut headers = HeaderMap::new();
/// headers.insert("x-tenant-id", "acme".parse().expect("valid value"));
/// let cx = mapping.apply(&headers, Context::new());
/// assert_eq!(
///     cx.baggage().get("tenant.id").map(|v| v.as_str()),
///     Some("acme")
/// );
/// # Ok::<(), otel_core::propagation::HeaderToBaggageError>(())
/// ```
#[derive(Clone, Debug)]
pub struct HeaderToBaggage {
    mappings: Vec<(HeaderName, Key)>,
    max_value_len: usize,
}

impl Default for HeaderToBaggage {
    /// No mapping.
    fn default() -> Self {
        Self {
            mappings: Vec::new(),
            max_value_len: Self::DEFAULT_MAX_VALUE_LEN,
        }
    }
}

impl HeaderToBaggage {
    /// Default for [`with_max_value_len`](Self::with_max_value_len).
    ///
    /// ```
    /// use http::HeaderMap;
    /// use opentelemetry::Context;
    /// use opentelemetry::baggage::BaggageExt;
    /// use otel_core::propagation::HeaderToBaggage;
    ///
    /// let mapping = HeaderToBaggage::new().map("x-note", "note")?;
    /// let mut headers = HeaderMap::new();
    /// headers.insert(
    ///     "x-note",
    ///     "x".repeat(HeaderToBaggage::DEFAULT_MAX_VALUE_LEN + 1)
    ///         .parse()?,
    /// );
    /// // Too long: ignored, not cut.
    /// assert!(mapping.apply(&headers, Context::new()).baggage().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const DEFAULT_MAX_VALUE_LEN: usize = 256;

    /// Creates an empty mapping.
    ///
    /// ```
    /// use otel_core::propagation::HeaderToBaggage;
    ///
    /// assert!(HeaderToBaggage::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a mapping from the header `header` (any case) to the baggage key `baggage_key`.
    /// Fails when either name is invalid. Mapping the same header again replaces its key.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use opentelemetry::Context;
    /// use opentelemetry::baggage::BaggageExt;
    /// use otel_core::propagation::HeaderToBaggage;
    ///
    /// let mapping = HeaderToBaggage::new()
    ///     .map("X-Tenant-Id", "tenant.id")?
    ///     .map("x-tenant-id", "tenant")?; // the same header again: replaces the key
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-tenant-id", "acme".parse().expect("valid value"));
    /// let cx = mapping.apply(&headers, Context::new());
    /// assert_eq!(cx.baggage().get("tenant").map(|v| v.as_str()), Some("acme"));
    /// assert_eq!(cx.baggage().get("tenant.id"), None);
    /// # Ok::<(), otel_core::propagation::HeaderToBaggageError>(())
    /// ```
    pub fn map(mut self, header: &str, baggage_key: &str) -> Result<Self, HeaderToBaggageError> {
        let name = HeaderName::from_bytes(header.trim().as_bytes())
            .map_err(|_| HeaderToBaggageError::InvalidHeaderName(header.to_owned()))?;
        if !is_token(baggage_key) {
            return Err(HeaderToBaggageError::InvalidBaggageKey(
                baggage_key.to_owned(),
            ));
        }
        let key = Key::from(Arc::<str>::from(baggage_key));
        match self.mappings.iter_mut().find(|(n, _)| *n == name) {
            Some(mapping) => mapping.1 = key,
            None => self.mappings.push((name, key)),
        }
        Ok(self)
    }

    /// Sets the longest header value copied, in bytes; longer values are ignored, not cut.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use opentelemetry::Context;
    /// use opentelemetry::baggage::BaggageExt;
    /// use otel_core::propagation::HeaderToBaggage;
    ///
    /// let mapping = HeaderToBaggage::new()
    ///     .map("x-region", "region")?
    ///     .with_max_value_len(4);
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-region", "eu".parse().expect("valid value"));
    /// assert_eq!(mapping.apply(&headers, Context::new()).baggage().len(), 1);
    /// headers.insert("x-region", "eu-west".parse().expect("valid value"));
    /// assert_eq!(mapping.apply(&headers, Context::new()).baggage().len(), 0);
    /// # Ok::<(), otel_core::propagation::HeaderToBaggageError>(())
    /// ```
    #[must_use]
    pub fn with_max_value_len(mut self, max_value_len: usize) -> Self {
        self.max_value_len = max_value_len;
        self
    }

    /// Whether there is no mapping (then [`apply`](Self::apply) returns `cx` unchanged).
    ///
    /// ```
    /// use otel_core::propagation::HeaderToBaggage;
    ///
    /// assert!(HeaderToBaggage::default().is_empty());
    /// assert!(
    ///     !HeaderToBaggage::new()
    ///         .map("x-tenant-id", "tenant.id")?
    ///         .is_empty()
    /// );
    /// # Ok::<(), otel_core::propagation::HeaderToBaggageError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// Returns `cx` with the mapped headers of `headers` added to its baggage.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::HeaderToBaggage;
    ///
    /// let mapping = HeaderToBaggage::new().map("x-tenant-id", "tenant.id")?;
    /// // Baggage received from the caller is kept; the mapped header replaces an equal key.
    /// let received = Context::new().with_baggage([
    ///     KeyValue::new("tenant.id", "spoofed"),
    ///     KeyValue::new("user.tier", "gold"),
    /// ]);
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-tenant-id", " acme ".parse()?);
    /// let cx = mapping.apply(&headers, received);
    /// assert_eq!(
    ///     cx.baggage().get("tenant.id").map(|v| v.as_str()),
    ///     Some("acme")
    /// );
    /// assert_eq!(
    ///     cx.baggage().get("user.tier").map(|v| v.as_str()),
    ///     Some("gold")
    /// );
    ///
    /// // A header sent twice is ignored.
    /// headers.append("x-tenant-id", "other".parse()?);
    /// assert!(mapping.apply(&headers, Context::new()).baggage().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply(&self, headers: &HeaderMap, cx: Context) -> Context {
        let mut entries = Vec::new();
        for (name, key) in &self.mappings {
            let mut values = headers.get_all(name).iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                continue;
            };
            let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
                continue;
            };
            let value = trim_ows(value);
            if value.is_empty()
                || value.len() > self.max_value_len
                || value.chars().any(char::is_control)
            {
                continue;
            }
            entries.push((
                key.clone(),
                StringValue::from(value.to_owned()),
                BaggageMetadata::default(),
            ));
        }
        if entries.is_empty() {
            cx
        } else {
            with_added_baggage(&cx, entries)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn allowlist_is_ordered_bounded_and_truncates() {
        let cx = Context::new().with_baggage([
            KeyValue::new("a", "1"),
            KeyValue::new("b", "é".repeat(10)),
            KeyValue::new("c", "3"),
            KeyValue::new("secret", "x"),
        ]);
        let list = BaggageAllowlist::new(["c", "b", "a", "c", "missing"]).with_max_value_len(5);
        assert_eq!(
            list.attributes(&cx),
            [
                KeyValue::new("c", "3"),
                KeyValue::new("b", "éé"),
                KeyValue::new("a", "1")
            ]
        );
        let list = list.with_max_attributes(2);
        assert_eq!(list.attributes(&cx).len(), 2);
        assert!(BaggageAllowlist::default().attributes(&cx).is_empty());
        assert!(BaggageAllowlist::default().is_empty());
        let mut out = vec![KeyValue::new("x", 1)];
        BaggageAllowlist::new(["a"]).append_attributes(&cx, &mut out);
        assert_eq!(out, [KeyValue::new("x", 1), KeyValue::new("a", "1")]);
    }

    #[test]
    fn header_mapping_configuration() {
        assert_eq!(
            HeaderToBaggage::new().map("bad header", "k").unwrap_err(),
            HeaderToBaggageError::InvalidHeaderName("bad header".into())
        );
        assert_eq!(
            HeaderToBaggage::new().map("x-a", "bad key").unwrap_err(),
            HeaderToBaggageError::InvalidBaggageKey("bad key".into())
        );
        assert!(HeaderToBaggage::new().is_empty());
        let mapping = HeaderToBaggage::new()
            .map("x-a", "a")
            .unwrap()
            .map("X-A", "b")
            .unwrap();
        assert_eq!(
            mapping.mappings.len(),
            1,
            "same header mapped again replaces"
        );
    }

    #[test]
    fn header_mapping_rows() {
        let mapping = HeaderToBaggage::new()
            .map("x-tenant-id", "tenant.id")
            .unwrap()
            .with_max_value_len(8);
        #[rustfmt::skip]
        let rows: Vec<(Vec<&[u8]>, Option<&str>, &str)> = vec![
            (vec![b"acme"], Some("acme"), "plain value"),
            (vec![b" acme\t"], Some("acme"), "trimmed"),
            (vec!["zürich".as_bytes()], Some("zürich"), "UTF-8 value"),
            (vec![b"12345678"], Some("12345678"), "at the length limit"),
            (vec![b"123456789"], None, "over the length limit"),
            (vec![b""], None, "empty"),
            (vec![b"   "], None, "blank"),
            (vec![b"a\tb"], None, "control character"),
            (vec![b"\xff\xfe"], None, "not UTF-8"),
            (vec![b"a", b"b"], None, "repeated header"),
            (vec![], None, "missing"),
        ];
        for (values, expected, why) in rows {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append("x-tenant-id", HeaderValue::from_bytes(value).unwrap());
            }
            let cx = mapping.apply(&headers, Context::new());
            let got = cx.baggage().get("tenant.id").map(|v| v.as_str().to_owned());
            assert_eq!(got.as_deref(), expected, "{why}");
        }
    }

    /// A caller who fills its baggage up to the size limit (or to 64 entries) cannot keep
    /// its own value under a mapped key.
    #[test]
    fn header_mapping_wins_over_a_full_baggage() {
        let mapping = HeaderToBaggage::new()
            .map("x-tenant-id", "tenant.id")
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant-id", HeaderValue::from_static("acme-corp"));
        let tenant = |cx: &Context| cx.baggage().get("tenant.id").map(|v| v.as_str().to_owned());

        // Size: one padding entry that leaves no room for a longer tenant value.
        let mut full = vec![KeyValue::new("tenant.id", "evil")];
        let pad = 8192 - "tenant.id".len() - "evil".len() - "pad".len() - 8;
        full.push(KeyValue::new("pad", "a".repeat(pad)));
        let cx = Context::new().with_baggage(full);
        assert_eq!(tenant(&cx).as_deref(), Some("evil"));
        assert_ne!(
            tenant(&mapping.apply(&headers, cx)).as_deref(),
            Some("evil")
        );

        // Count: 64 entries, the caller's tenant among them.
        let mut many: Vec<KeyValue> = (0..63)
            .map(|i| KeyValue::new(format!("k{i}"), "v"))
            .collect();
        many.push(KeyValue::new("tenant.id", "evil"));
        let cx = Context::new().with_baggage(many);
        assert_eq!(cx.baggage().len(), 64);
        let cx = mapping.apply(&headers, cx);
        assert_eq!(tenant(&cx).as_deref(), Some("acme-corp"));
        assert_eq!(cx.baggage().len(), 64);
    }

    #[test]
    fn header_mapping_keeps_other_baggage_and_wins() {
        let mapping = HeaderToBaggage::new()
            .map("x-tenant-id", "tenant.id")
            .unwrap();
        let cx = Context::new().with_baggage([
            KeyValue::new("tenant.id", "from-caller"),
            KeyValue::new("other", "1"),
        ]);
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant-id", HeaderValue::from_static("acme"));
        let cx = mapping.apply(&headers, cx);
        assert_eq!(
            cx.baggage()
                .get("tenant.id")
                .map(|v| v.as_str().to_owned())
                .as_deref(),
            Some("acme")
        );
        assert_eq!(
            cx.baggage()
                .get("other")
                .map(|v| v.as_str().to_owned())
                .as_deref(),
            Some("1")
        );
    }
}
