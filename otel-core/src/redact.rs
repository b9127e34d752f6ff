//! Redaction of secrets and personal data in log output and span attributes.
//!
//! A [`Redactor`] masks
//!
//! * the whole value of every field, JSON key or attribute whose **name** marks a secret:
//!   names containing `password`, `passwd`, `secret`, `token`, `authorization`, `cookie` or
//!   `apikey`, compared case-insensitively and ignoring `_`, `-`, `.` and spaces (so `api_key`,
//!   `X-Api-Key`, `Set-Cookie` and `db.password` all match); more names with
//!   [`RedactorBuilder::secret_name`];
//! * **values that look like** personal data, wherever they appear in a string:
//!   e-mail addresses, phone numbers, payment card numbers (13–19 digits, optionally grouped by
//!   spaces or dashes, Luhn-checked) and mainland China resident identity numbers (18
//!   characters, valid birth month/day and ISO 7064 check digit); more with
//!   [`RedactorBuilder::pattern`] (regular expressions).
//!
//! Phone numbers are recognised in these forms, to keep ordinary numbers (ids, amounts) intact:
//! international (`+` then 7–15 digits, separators allowed), North American grouped
//! (`(555) 123-4567`, `555-123-4567`, `555.123.4567`, optionally with a leading `1`) and
//! Chinese mobile (11 digits starting `13`–`19`). A bare 10-digit number is not masked.
//! Numbers are read as runs of digits and single separators (space, `-`, `.`, `(`, `)`), so a
//! card number written right after another number with only a space between is read as one
//! longer number and not recognised.
//!
//! Each match is replaced by `[REDACTED]` (change it with [`RedactorBuilder::mask`]).
//!
//! Where it applies: the log formatter of [`crate::logs`] (text and JSON, message and fields;
//! see [`crate::logs::fmt_layer_with_redaction`]) and, through [`RedactingSpanProcessor`], span
//! attributes, event attributes and status descriptions before any exporter sees them.
//!
//! ```
//! use otel_core::redact::Redactor;
//! let r = Redactor::new();
//! assert_eq!(
//!     r.redact_str("mail ann@example.com now"),
//!     "mail [REDACTED] now"
//! );
//! assert_eq!(r.redact_field("api_key", "abc"), "[REDACTED]");
//! assert_eq!(r.redact_str("order 12345 shipped"), "order 12345 shipped");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use opentelemetry::trace::Status;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};

/// The secret-marking names on by default (normalised: lower case, no separators).
///
/// ```
/// use otel_core::redact::{DEFAULT_SECRET_NAMES, Redactor};
///
/// let r = Redactor::new();
/// assert!(
///     DEFAULT_SECRET_NAMES
///         .iter()
///         .all(|name| r.is_secret_name(name))
/// );
/// assert!(DEFAULT_SECRET_NAMES.contains(&"apikey")); // so `api_key` and `X-Api-Key` match
/// ```
pub const DEFAULT_SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "apikey",
];

/// The built-in value patterns.
///
/// ```
/// use otel_core::redact::{Pattern, Redactor};
///
/// let all = Redactor::new();
/// assert_eq!(all.redact_str("call +44 20 7946 0958"), "call [REDACTED]");
/// assert_eq!(
///     all.redact_str("card 4111 1111 1111 1111"),
///     "card [REDACTED]"
/// );
/// assert_eq!(all.redact_str("id 11010519491231002X"), "id [REDACTED]");
///
/// let no_phone = Redactor::builder().without(Pattern::Phone).build();
/// assert_eq!(
///     no_phone.redact_str("call +44 20 7946 0958"),
///     "call +44 20 7946 0958"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pattern {
    /// `local@domain.tld`.
    Email,
    /// International, North American grouped, or Chinese mobile numbers (see the module docs).
    Phone,
    /// 13–19 digit numbers passing the Luhn check.
    PaymentCard,
    /// 18-character mainland China resident identity numbers with a valid check character.
    ChinaResidentId,
}

/// Masks secrets and personal data; cheap to clone (shared).
///
/// ```
/// use otel_core::redact::Redactor;
///
/// let r = Redactor::new();
/// assert_eq!(r.redact_field("Authorization", "Bearer abc"), "[REDACTED]");
/// assert_eq!(r.redact_field("user", "ann@example.com"), "[REDACTED]");
/// assert_eq!(r.redact_field("order", "12345"), "12345");
/// ```
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

struct Inner {
    names: Vec<Vec<u8>>,
    email: bool,
    phone: bool,
    card: bool,
    cn_id: bool,
    custom: Vec<regex::Regex>,
    mask: String,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Redactor")
            .field(
                "names",
                &i.names
                    .iter()
                    .map(|n| String::from_utf8_lossy(n))
                    .collect::<Vec<_>>(),
            )
            .field("email", &i.email)
            .field("phone", &i.phone)
            .field("card", &i.card)
            .field("cn_id", &i.cn_id)
            .field(
                "custom",
                &i.custom
                    .iter()
                    .map(regex::Regex::as_str)
                    .collect::<Vec<_>>(),
            )
            .field("mask", &i.mask)
            .finish()
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

/// Builder of a [`Redactor`]; starts from the defaults (all names and patterns on).
///
/// ```
/// use otel_core::redact::{Pattern, Redactor};
///
/// let r = Redactor::builder()
///     .secret_name("session")
///     .without(Pattern::Phone)
///     .mask("***")
///     .build();
/// assert_eq!(r.redact_field("session_id", "s-1"), "***");
/// assert_eq!(r.redact_str("ann@example.com"), "***");
/// ```
#[must_use]
#[derive(Debug)]
pub struct RedactorBuilder {
    names: Vec<Vec<u8>>,
    patterns: [bool; 4],
    custom: Vec<regex::Regex>,
    mask: String,
}

impl RedactorBuilder {
    /// Also masks fields whose normalised name contains `name` (normalised the same way).
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::builder().secret_name("Private-Key").build();
    /// assert!(r.is_secret_name("tls.private_key"));
    /// assert!(r.is_secret_name("password")); // the defaults stay
    /// ```
    pub fn secret_name(mut self, name: &str) -> Self {
        let n = normalize(name);
        if !n.is_empty() && !self.names.contains(&n) {
            self.names.push(n);
        }
        self
    }
    /// Forgets the default secret names (keeps those added with `secret_name`).
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::builder()
    ///     .without_default_names()
    ///     .secret_name("pin")
    ///     .build();
    /// assert!(r.is_secret_name("card_pin"));
    /// assert!(!r.is_secret_name("password"));
    /// ```
    pub fn without_default_names(mut self) -> Self {
        self.names
            .retain(|n| !DEFAULT_SECRET_NAMES.iter().any(|d| d.as_bytes() == n));
        self
    }
    /// Turns a built-in value pattern off.
    ///
    /// ```
    /// use otel_core::redact::{Pattern, Redactor};
    ///
    /// let r = Redactor::builder().without(Pattern::Email).build();
    /// assert_eq!(r.redact_str("from ann@example.com"), "from ann@example.com");
    /// assert_eq!(r.redact_str("card 4111111111111111"), "card [REDACTED]");
    /// ```
    pub fn without(mut self, pattern: Pattern) -> Self {
        self.patterns[pattern as usize] = false;
        self
    }
    /// Also masks every match of the regular expression `regex` (syntax of the `regex` crate).
    ///
    /// Errors when the expression does not compile.
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::builder()
    ///     .pattern(r"\bACCT-\d{6}\b")
    ///     .expect("valid regex")
    ///     .build();
    /// assert_eq!(
    ///     r.redact_str("account ACCT-123456 closed"),
    ///     "account [REDACTED] closed"
    /// );
    /// assert!(Redactor::builder().pattern("(unclosed").is_err());
    /// ```
    pub fn pattern(mut self, regex: &str) -> Result<Self, regex::Error> {
        self.custom.push(regex::Regex::new(regex)?);
        Ok(self)
    }
    /// The replacement text (default `[REDACTED]`).
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::builder().mask("<hidden>").build();
    /// assert_eq!(r.redact_str("mail ann@example.com"), "mail <hidden>");
    /// ```
    pub fn mask(mut self, mask: impl Into<String>) -> Self {
        self.mask = mask.into();
        self
    }
    /// The redactor.
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::builder().secret_name("otp").build();
    /// assert_eq!(r.redact_field("otp_code", "123456"), "[REDACTED]");
    /// ```
    pub fn build(self) -> Redactor {
        let [email, phone, card, cn_id] = self.patterns;
        Redactor {
            inner: Arc::new(Inner {
                names: self.names,
                email,
                phone,
                card,
                cn_id,
                custom: self.custom,
                mask: self.mask,
            }),
        }
    }
}

fn normalize(name: &str) -> Vec<u8> {
    name.bytes()
        .filter(|b| !matches!(b, b'_' | b'-' | b'.' | b' '))
        .map(|b| b.to_ascii_lowercase())
        .collect()
}

impl Redactor {
    /// Default names and all built-in patterns.
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::new();
    /// assert_eq!(
    ///     r.redact_str("ann@example.com paid with 5555 5555 5555 4444"),
    ///     "[REDACTED] paid with [REDACTED]"
    /// );
    /// assert!(r.is_secret_name("db.password"));
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder starting from the defaults.
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::builder().secret_name("ssn").build();
    /// assert!(r.is_secret_name("customer_ssn") && r.is_secret_name("api_key"));
    /// ```
    pub fn builder() -> RedactorBuilder {
        RedactorBuilder {
            names: DEFAULT_SECRET_NAMES
                .iter()
                .map(|n| n.as_bytes().to_vec())
                .collect(),
            patterns: [true; 4],
            custom: Vec::new(),
            mask: "[REDACTED]".to_owned(),
        }
    }

    /// The replacement text.
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// assert_eq!(Redactor::new().mask(), "[REDACTED]");
    /// assert_eq!(Redactor::builder().mask("***").build().mask(), "***");
    /// ```
    pub fn mask(&self) -> &str {
        &self.inner.mask
    }

    /// Whether a field, key or attribute called `name` holds a secret (its whole value is
    /// masked). No allocation for names up to 128 bytes.
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::new();
    /// for name in [
    ///     "password",
    ///     "db.password",
    ///     "X-Api-Key",
    ///     "Set-Cookie",
    ///     "refresh_token",
    /// ] {
    ///     assert!(r.is_secret_name(name), "{name}");
    /// }
    /// assert!(!r.is_secret_name("user.id"));
    /// ```
    pub fn is_secret_name(&self, name: &str) -> bool {
        let mut buf = [0u8; 128];
        let mut len = 0;
        for b in name.bytes() {
            if matches!(b, b'_' | b'-' | b'.' | b' ') {
                continue;
            }
            if len == buf.len() {
                return self.is_secret_normalized(&normalize(name));
            }
            buf[len] = b.to_ascii_lowercase();
            len += 1;
        }
        self.is_secret_normalized(&buf[..len])
    }

    fn is_secret_normalized(&self, n: &[u8]) -> bool {
        self.inner
            .names
            .iter()
            .any(|s| n.len() >= s.len() && n.windows(s.len()).any(|w| w == s.as_slice()))
    }

    /// The value to print for field `name`: the mask when the name marks a secret, otherwise
    /// `value` with personal data masked.
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::new();
    /// assert_eq!(r.redact_field("client_secret", "s3cr3t"), "[REDACTED]");
    /// assert_eq!(
    ///     r.redact_field("note", "call +1 (555) 123-4567"),
    ///     "call [REDACTED]"
    /// );
    /// assert_eq!(r.redact_field("note", "all good"), "all good");
    /// ```
    pub fn redact_field<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if self.is_secret_name(name) {
            Cow::Owned(self.inner.mask.clone())
        } else {
            self.redact_str(value)
        }
    }

    /// `text` with every e-mail address, phone number, card number, identity number and custom
    /// pattern match replaced by the mask. Borrows (no allocation) when nothing matched.
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    /// use std::borrow::Cow;
    ///
    /// let r = Redactor::new();
    /// assert_eq!(
    ///     r.redact_str("ship to ann@example.com, tel 555-123-4567"),
    ///     "ship to [REDACTED], tel [REDACTED]"
    /// );
    /// // Ordinary numbers stay, and nothing is copied.
    /// assert!(matches!(
    ///     r.redact_str("order 1234567890 shipped"),
    ///     Cow::Borrowed(_)
    /// ));
    /// ```
    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let builtin = self.scan(text);
        if self.inner.custom.is_empty() {
            return builtin;
        }
        let mut out = builtin;
        for re in &self.inner.custom {
            if let Cow::Owned(s) = re.replace_all(&out, self.inner.mask.as_str()) {
                out = Cow::Owned(s);
            }
        }
        out
    }

    /// Masks, in place, the values under secret-named keys (whole value, whatever its type) and
    /// personal data in every string, at any depth. Strings that hold a JSON object or array
    /// are parsed, redacted and written back.
    ///
    /// ```
    /// use otel_core::redact::Redactor;
    ///
    /// let mut value = serde_json::json!({
    ///     "user": { "email": "ann@example.com", "password": "hunter2" },
    ///     "card": 4111111111111111u64,
    ///     "items": 3,
    /// });
    /// Redactor::new().redact_json(&mut value);
    /// assert_eq!(value, serde_json::json!({
    ///     "user": { "email": "[REDACTED]", "password": "[REDACTED]" },
    ///     "card": "[REDACTED]",
    ///     "items": 3,
    /// }));
    /// ```
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        self.redact_json_depth(value, 0);
    }

    fn redact_json_depth(&self, value: &mut serde_json::Value, depth: usize) {
        use serde_json::Value as J;
        if depth > 64 {
            return;
        }
        match value {
            J::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if self.is_secret_name(k) {
                        *v = J::String(self.inner.mask.clone());
                    } else {
                        self.redact_json_depth(v, depth + 1);
                    }
                }
            }
            J::Array(items) => {
                for v in items {
                    self.redact_json_depth(v, depth + 1);
                }
            }
            J::String(s) => {
                let t = s.trim_start();
                if (t.starts_with('{') || t.starts_with('['))
                    && let Ok(mut inner) = serde_json::from_str::<serde_json::Value>(s)
                {
                    let before = inner.clone();
                    self.redact_json_depth(&mut inner, depth + 1);
                    // Rewritten only when something was masked: re-serializing reorders
                    // keys and rounds big numbers.
                    if inner != before {
                        *s = inner.to_string();
                    }
                    return;
                }
                if let Cow::Owned(r) = self.redact_str(s) {
                    *s = r;
                }
            }
            J::Number(n) => {
                // Card or phone numbers logged as integers.
                if let Some(u) = n.as_u64().filter(|u| *u >= 1_000_000) {
                    let mut buf = itoa_buf(u);
                    if let Cow::Owned(r) = self.redact_str(buf.as_str()) {
                        *value = J::String(r);
                    }
                    buf.clear();
                }
            }
            J::Null | J::Bool(_) => {}
        }
    }

    /// Masks attribute values in place: the whole value under a secret name, personal data in
    /// strings and string arrays.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::redact::Redactor;
    ///
    /// let mut attributes = vec![
    ///     KeyValue::new("db.password", "hunter2"),
    ///     KeyValue::new("user.email", "ann@example.com"),
    ///     KeyValue::new("http.response.status_code", 200),
    /// ];
    /// Redactor::new().redact_attributes(&mut attributes);
    /// assert_eq!(
    ///     attributes,
    ///     [
    ///         KeyValue::new("db.password", "[REDACTED]"),
    ///         KeyValue::new("user.email", "[REDACTED]"),
    ///         KeyValue::new("http.response.status_code", 200),
    ///     ]
    /// );
    /// ```
    pub fn redact_attributes(&self, attributes: &mut [KeyValue]) {
        for kv in attributes {
            if self.is_secret_name(kv.key.as_str()) {
                kv.value = Value::String(StringValue::from(self.inner.mask.clone()));
                continue;
            }
            match &mut kv.value {
                Value::String(s) => {
                    if let Cow::Owned(r) = self.redact_str(s.as_str()) {
                        *s = StringValue::from(r);
                    }
                }
                Value::Array(Array::String(items)) => {
                    for s in items {
                        if let Cow::Owned(r) = self.redact_str(s.as_str()) {
                            *s = StringValue::from(r);
                        }
                    }
                }
                Value::I64(i) if *i >= 1_000_000 => {
                    let buf = itoa_buf(i.unsigned_abs());
                    if let Cow::Owned(r) = self.redact_str(buf.as_str()) {
                        kv.value = Value::String(StringValue::from(r));
                    }
                }
                _ => {}
            }
        }
    }

    /// The redacted form of a log record's body (`name` `None`) or of its attribute `name`,
    /// or `None` when nothing needs masking: the whole value under a secret name, personal
    /// data in every string, at any depth of lists and maps (map keys are names too), and
    /// integers that read as card or phone numbers.
    ///
    /// ```
    /// use opentelemetry::logs::AnyValue;
    /// use otel_core::redact::Redactor;
    ///
    /// let r = Redactor::new();
    /// assert_eq!(
    ///     r.redact_log_value(Some("api_key"), &AnyValue::Int(42)),
    ///     Some(AnyValue::from("[REDACTED]"))
    /// );
    /// assert_eq!(
    ///     r.redact_log_value(None, &AnyValue::from("reset sent to ann@example.com")),
    ///     Some(AnyValue::from("reset sent to [REDACTED]"))
    /// );
    /// assert_eq!(r.redact_log_value(Some("count"), &AnyValue::Int(3)), None);
    /// ```
    pub fn redact_log_value(
        &self,
        name: Option<&str>,
        value: &opentelemetry::logs::AnyValue,
    ) -> Option<opentelemetry::logs::AnyValue> {
        use opentelemetry::logs::AnyValue;
        let mask = || AnyValue::String(StringValue::from(self.inner.mask.clone()));
        if name.is_some_and(|n| self.is_secret_name(n)) {
            return Some(mask());
        }
        crate::log_rewrite::map_strings(
            value,
            None,
            &|key, v| {
                if key.is_some_and(|k| self.is_secret_name(k.as_str())) {
                    return Some(mask());
                }
                match v {
                    AnyValue::String(s) => match self.redact_str(s.as_str()) {
                        Cow::Owned(r) => Some(AnyValue::String(StringValue::from(r))),
                        Cow::Borrowed(_) => None,
                    },
                    AnyValue::Int(i) if *i >= 1_000_000 => {
                        let buf = itoa_buf(i.unsigned_abs());
                        match self.redact_str(buf.as_str()) {
                            Cow::Owned(r) => Some(AnyValue::String(StringValue::from(r))),
                            Cow::Borrowed(_) => None,
                        }
                    }
                    _ => None,
                }
            },
            0,
        )
    }

    /// Redacts a finished span: its attributes, its events' names-and-attributes, and its
    /// error description.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::trace::{Span as _, Status, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    /// use otel_core::redact::Redactor;
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_simple_exporter(exporter.clone())
    ///     .build();
    /// let mut span = provider.tracer("doc").start("send mail");
    /// span.set_attribute(KeyValue::new("mail.to", "ann@example.com"));
    /// span.set_status(Status::error("rejected for ann@example.com"));
    /// span.end();
    ///
    /// let mut data = exporter
    ///     .get_finished_spans()
    ///     .expect("exporter open")
    ///     .remove(0);
    /// Redactor::new().redact_span(&mut data);
    /// assert_eq!(data.attributes, [KeyValue::new("mail.to", "[REDACTED]")]);
    /// assert_eq!(data.status, Status::error("rejected for [REDACTED]"));
    /// ```
    pub fn redact_span(&self, span: &mut SpanData) {
        self.redact_attributes(&mut span.attributes);
        for event in span.events.events.iter_mut() {
            // A `tracing` event's message becomes the span event's name.
            if let Cow::Owned(r) = self.redact_str(&event.name) {
                event.name = Cow::Owned(r);
            }
            self.redact_attributes(&mut event.attributes);
        }
        for link in span.links.links.iter_mut() {
            self.redact_attributes(&mut link.attributes);
        }
        if let Status::Error { description } = &mut span.status
            && let Cow::Owned(r) = self.redact_str(description)
        {
            *description = Cow::Owned(r);
        }
    }

    /// Single left-to-right pass over `text` for the built-in patterns.
    fn scan<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let i = &*self.inner;
        if !(i.email || i.phone || i.card || i.cn_id) {
            return Cow::Borrowed(text);
        }
        let b = text.as_bytes();
        // Every numeric pattern has at least 7 digits, and an e-mail address an `@`: most lines
        // have neither and leave here after one pass over their bytes.
        let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
        if digits < 7 && !(i.email && b.contains(&b'@')) {
            return Cow::Borrowed(text);
        }
        let numeric = digits >= 7;
        let mut out: Option<String> = None;
        let mut last = 0; // bytes before `last` are already copied (or masked)
        let mut pos = 0;
        while pos < b.len() {
            let c = b[pos];
            if c == b'@' && i.email {
                if let Some((start, end)) = email_at(b, pos, last) {
                    let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    o.push_str(&text[last..start]);
                    o.push_str(&i.mask);
                    last = end;
                    pos = end;
                    continue;
                }
            } else if numeric
                && (c.is_ascii_digit() || ((c == b'+' || c == b'(') && next_is_digit(b, pos)))
                && (pos == 0 || !is_word(b[pos - 1]))
            {
                let tok = numeric_token(b, pos);
                if self.classify(&tok) {
                    let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    o.push_str(&text[last..pos]);
                    o.push_str(&i.mask);
                    last = tok.end;
                }
                pos = tok.end.max(pos + 1);
                continue;
            }
            pos += 1;
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut o) => {
                o.push_str(&text[last..]);
                Cow::Owned(o)
            }
        }
    }

    fn classify(&self, t: &Token) -> bool {
        let i = &*self.inner;
        if !t.right_boundary {
            return false;
        }
        let digits = &t.digits[..t.n_digits.min(t.digits.len())];
        if i.cn_id && t.plain && (t.n_digits == 18 || (t.n_digits == 17 && t.x_check)) {
            let check = if t.x_check { b'X' } else { digits[17] };
            if cn_id_valid(&digits[..17], check) {
                return true;
            }
        }
        if i.card
            && (13..=19).contains(&t.n_digits)
            && !t.plus
            && !t.paren
            && !t.dot
            && luhn_valid(digits)
        {
            return true;
        }
        if i.phone {
            if t.plus && (7..=15).contains(&t.n_digits) {
                return true;
            }
            let g = &t.groups[..t.n_groups.min(t.groups.len())];
            if !t.plus && t.n_groups >= 3 {
                let nanp = g.len() == 3 && g == [3, 3, 4];
                let nanp1 = g.len() == 4 && g == [1, 3, 3, 4] && digits[0] == b'1';
                if nanp || nanp1 {
                    return true;
                }
            }
            if t.plain
                && t.n_digits == 11
                && digits[0] == b'1'
                && (b'3'..=b'9').contains(&digits[1])
            {
                return true;
            }
        }
        false
    }
}

fn next_is_digit(b: &[u8], pos: usize) -> bool {
    b.get(pos + 1).is_some_and(u8::is_ascii_digit)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A run of digits and single separators starting at a digit, `+` or `(`.
struct Token {
    end: usize,
    digits: [u8; 24],
    n_digits: usize,
    groups: [u8; 8],
    n_groups: usize,
    /// Only digits, no separators, no `+`.
    plain: bool,
    plus: bool,
    paren: bool,
    dot: bool,
    /// 17 digits followed by `X`/`x` (identity number check character), included in `end`.
    x_check: bool,
    right_boundary: bool,
}

fn numeric_token(b: &[u8], start: usize) -> Token {
    let mut t = Token {
        end: start,
        digits: [0; 24],
        n_digits: 0,
        groups: [0; 8],
        n_groups: 0,
        plain: true,
        plus: false,
        paren: false,
        dot: false,
        x_check: false,
        right_boundary: false,
    };
    let mut pos = start;
    if b[pos] == b'+' {
        t.plus = true;
        t.plain = false;
        pos += 1;
    }
    let mut seps = 0; // consecutive separators
    let mut group_len = 0u8;
    while pos < b.len() {
        let c = b[pos];
        if c.is_ascii_digit() {
            if t.n_digits < t.digits.len() {
                t.digits[t.n_digits] = c;
            }
            t.n_digits += 1;
            group_len = group_len.saturating_add(1);
            seps = 0;
            pos += 1;
            t.end = pos;
        } else if matches!(c, b' ' | b'-' | b'.' | b'(' | b')') && seps < 2 {
            if seps == 0 && group_len > 0 {
                if t.n_groups < t.groups.len() {
                    t.groups[t.n_groups] = group_len;
                }
                t.n_groups += 1;
                group_len = 0;
            }
            // A separator must be followed (possibly after one more) by a digit to count.
            seps += 1;
            pos += 1;
            match c {
                b'(' | b')' => t.paren = true,
                b'.' => t.dot = true,
                _ => {}
            }
            if !b
                .get(pos)
                .is_some_and(|n| n.is_ascii_digit() || matches!(n, b' ' | b'-' | b'(' | b')'))
            {
                break;
            }
            if t.end > start {
                t.plain = false;
            }
        } else {
            break;
        }
        if t.n_digits > 24 {
            break;
        }
    }
    if group_len > 0 {
        if t.n_groups < t.groups.len() {
            t.groups[t.n_groups] = group_len;
        }
        t.n_groups += 1;
    }
    if b[start] == b'(' {
        t.paren = true;
    }
    // Separators after the last digit are not part of the token.
    let after = b.get(t.end).copied();
    if t.plain && t.n_digits == 17 && matches!(after, Some(b'X' | b'x')) {
        if !b.get(t.end + 1).copied().is_some_and(is_word) {
            t.x_check = true;
            t.end += 1;
            t.right_boundary = true;
        }
    } else {
        t.right_boundary = !after.is_some_and(is_word);
    }
    // `plain` was tracked loosely above; recompute from the groups.
    t.plain = !t.plus && !t.paren && t.n_groups == 1;
    t
}

fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// GB 11643-1999: 6-digit area, 8-digit birth date, 3-digit sequence, ISO 7064 MOD 11-2 check.
fn cn_id_valid(first17: &[u8], check: u8) -> bool {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    let month = u32::from(first17[10] - b'0') * 10 + u32::from(first17[11] - b'0');
    let day = u32::from(first17[12] - b'0') * 10 + u32::from(first17[13] - b'0');
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    let sum: u32 = first17
        .iter()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    C[(sum % 11) as usize] == check.to_ascii_uppercase()
}

/// The check character of the first 17 digits of a resident identity number (for tests and
/// generators).
///
/// ```
/// use otel_core::redact::{Redactor, cn_id_check_char};
///
/// let first17 = "11010519491231002";
/// let check = cn_id_check_char(first17).expect("17 digits");
/// assert_eq!(check, 'X');
/// let id = format!("{first17}{check}");
/// assert_eq!(Redactor::new().redact_str(&id), "[REDACTED]");
/// assert_eq!(cn_id_check_char("12345"), None);
/// ```
pub fn cn_id_check_char(first17: &str) -> Option<char> {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    let b = first17.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b.iter().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum();
    Some(C[(sum % 11) as usize] as char)
}

fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// The e-mail address around the `@` at `at`, not reaching before `floor`.
fn email_at(b: &[u8], at: usize, floor: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > floor && is_local_char(b[start - 1]) {
        start -= 1;
    }
    while start < at && b[start] == b'.' {
        start += 1;
    }
    if start == at {
        return None;
    }
    let mut end = at + 1;
    while end < b.len() && (b[end].is_ascii_alphanumeric() || matches!(b[end], b'-' | b'.')) {
        end += 1;
    }
    while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &b[at + 1..end];
    let last_dot = domain.iter().rposition(|c| *c == b'.')?;
    let tld = &domain[last_dot + 1..];
    if last_dot == 0 || tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    Some((start, end))
}

/// Decimal digits of `u` in a small stack string.
struct DigitBuf {
    buf: [u8; 20],
    start: usize,
}

impl DigitBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("")
    }
    fn clear(&mut self) {
        self.start = self.buf.len();
    }
}

fn itoa_buf(mut u: u64) -> DigitBuf {
    let mut d = DigitBuf {
        buf: [b'0'; 20],
        start: 20,
    };
    loop {
        d.start -= 1;
        d.buf[d.start] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    d
}

/// Redacts every span (see [`Redactor::redact_span`]) before passing it to `inner`.
///
/// Place it around the processor of each exporter, so nothing unredacted leaves the process.
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
/// use otel_core::redact::{RedactingSpanProcessor, Redactor};
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(RedactingSpanProcessor::new(
///         SimpleSpanProcessor::new(exporter.clone()),
///         Redactor::new(),
///     ))
///     .build();
/// let mut span = provider.tracer("doc").start("login");
/// span.set_attribute(KeyValue::new("user.password", "hunter2"));
/// span.end();
///
/// let exported = exporter.get_finished_spans().expect("exporter open");
/// assert_eq!(
///     exported[0].attributes,
///     [KeyValue::new("user.password", "[REDACTED]")]
/// );
/// ```
#[derive(Debug)]
pub struct RedactingSpanProcessor<P> {
    inner: P,
    redactor: Redactor,
}

impl<P: SpanProcessor> RedactingSpanProcessor<P> {
    /// Wraps `inner`.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{BatchSpanProcessor, InMemorySpanExporter, SdkTracerProvider};
    /// use otel_core::redact::{RedactingSpanProcessor, Redactor};
    ///
    /// let redactor = Redactor::builder().secret_name("session").build();
    /// let batch = BatchSpanProcessor::builder(InMemorySpanExporter::default()).build();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_span_processor(RedactingSpanProcessor::new(batch, redactor))
    ///     .build();
    /// # let _ = provider.shutdown();
    /// ```
    pub fn new(inner: P, redactor: Redactor) -> Self {
        Self { inner, redactor }
    }
}

wrapping_span_processor!(RedactingSpanProcessor, |self, span| {
    self.redactor.redact_span(&mut span);
    self.inner.on_end(span);
});

/// A log processor that redacts each log record (its body and its attributes, as
/// [`Redactor::redact_log_value`] does), then hands it to `inner`. The pipeline puts one in
/// front of the OTLP log exporter when redaction is on, so exported log records are masked
/// like the printed lines and the spans.
///
/// ```
/// use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
/// use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider, SimpleLogProcessor};
/// use otel_core::redact::{RedactingLogProcessor, Redactor};
///
/// let logs = InMemoryLogExporter::default();
/// let provider = SdkLoggerProvider::builder()
///     .with_log_processor(RedactingLogProcessor::new(
///         SimpleLogProcessor::new(logs.clone()),
///         Redactor::new(),
///     ))
///     .build();
/// let logger = provider.logger("example");
/// let mut record = logger.create_log_record();
/// record.set_body("mail sent to ann@example.com".into());
/// record.add_attribute("password", "hunter2");
/// logger.emit(record);
///
/// let exported = &logs.get_emitted_logs()?[0].record;
/// assert_eq!(exported.body(), Some(&AnyValue::from("mail sent to [REDACTED]")));
/// assert_eq!(
///     exported.attributes_iter().next().map(|(_, v)| v),
///     Some(&AnyValue::from("[REDACTED]"))
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RedactingLogProcessor<P> {
    inner: P,
    redactor: Redactor,
}

impl<P: opentelemetry_sdk::logs::LogProcessor> RedactingLogProcessor<P> {
    /// Wraps `inner`.
    ///
    /// ```
    /// use opentelemetry_sdk::logs::{BatchLogProcessor, InMemoryLogExporter, SdkLoggerProvider};
    /// use otel_core::redact::{RedactingLogProcessor, Redactor};
    ///
    /// let batch = BatchLogProcessor::builder(InMemoryLogExporter::default()).build();
    /// let provider = SdkLoggerProvider::builder()
    ///     .with_log_processor(RedactingLogProcessor::new(batch, Redactor::new()))
    ///     .build();
    /// # let _ = provider.shutdown();
    /// ```
    pub fn new(inner: P, redactor: Redactor) -> Self {
        Self { inner, redactor }
    }
}

crate::log_rewrite::wrapping_log_processor!(RedactingLogProcessor, |self, record| {
    crate::log_rewrite::rewrite(
        record,
        |body| self.redactor.redact_log_value(None, body),
        |key, value| self.redactor.redact_log_value(Some(key.as_str()), value),
    );
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let r = Redactor::new();
        for n in [
            "password",
            "db.password",
            "API_KEY",
            "x-api-key",
            "Authorization",
            "set-cookie",
            "refresh_token",
            "client secret",
        ] {
            assert!(r.is_secret_name(n), "{n}");
        }
        for n in ["user", "order_id", "path", "author"] {
            assert!(!r.is_secret_name(n), "{n}");
        }
        let r = Redactor::builder()
            .without_default_names()
            .secret_name("PIN")
            .build();
        assert!(r.is_secret_name("card_pin") && !r.is_secret_name("password"));
    }

    #[test]
    fn patterns() {
        let r = Redactor::new();
        let cases = [
            ("to a.b+c@mail.example.org.", "to [REDACTED]."),
            ("card 4111 1111 1111 1111 ok", "card [REDACTED] ok"),
            ("card 4111-1111-1111-1111", "card [REDACTED]"),
            ("pan=5500005555555559;", "pan=[REDACTED];"),
            ("id 11010519491231002X end", "id [REDACTED] end"),
            ("id 110105194912310021", "id 110105194912310021"),
            ("call +44 20 7946 0958 now", "call [REDACTED] now"),
            ("call (555) 123-4567", "call [REDACTED]"),
            ("call 1-555-123-4567", "call [REDACTED]"),
            ("mobile 13812345678", "mobile [REDACTED]"),
            ("order 4111111111111112", "order 4111111111111112"),
            ("at 2026-11-22T02:28:57Z", "at 2026-11-22T02:28:57Z"),
            ("ids 1234567890 and 42", "ids 1234567890 and 42"),
            ("user@localhost", "user@localhost"),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact_str(input), want, "{input}");
        }
        assert!(matches!(r.redact_str("nothing here"), Cow::Borrowed(_)));
        let r = Redactor::builder()
            .without(Pattern::Email)
            .pattern(r"\bEMP-\d{6}\b")
            .unwrap_or_else(|e| panic!("{e}"))
            .build();
        assert_eq!(r.redact_str("a@b.com EMP-123456"), "a@b.com [REDACTED]");
    }

    #[test]
    fn check_char() {
        assert_eq!(cn_id_check_char("11010519491231002"), Some('X'));
        assert_eq!(cn_id_check_char("1101051949123100"), None);
    }
}
