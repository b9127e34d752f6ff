//! Semantic-convention helpers shared by the layers: method normalisation, protocol
//! versions, URL redaction, host parsing and error classification.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use http::{Method, Uri, Version};
use opentelemetry::StringValue;

use crate::config::Config;

/// Replacement for redacted values, as the semantic conventions spell it.
pub(crate) const REDACTED: &str = "REDACTED";

/// `error.type` for a future dropped before it completed (client gave up, outer timeout).
pub(crate) const ERROR_CANCELLED: &str = "cancelled";
/// `error.type` for a handler that panicked while the span was open.
pub(crate) const ERROR_PANIC: &str = "panic";
/// `error.type` for a timeout (tower's `Elapsed`, an I/O `TimedOut`, a client timeout).
pub(crate) const ERROR_TIMEOUT: &str = "timeout";
/// Fallback `error.type` per the semantic conventions.
pub(crate) const ERROR_OTHER: &str = "_OTHER";

/// The semantic conventions' known methods (RFC 9110, PATCH from RFC 5789, QUERY from
/// httpbis-safe-method-w-body) in recording order; `_OTHER` last.
const DEFAULT_METHODS: [&str; 11] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "QUERY",
    "_OTHER",
];

/// The most methods a configured list may hold (indices, `_OTHER` included, fit in a `u8`);
/// further entries are ignored.
pub(crate) const MAX_KNOWN_METHODS: usize = u8::MAX as usize - 1;

/// The environment variable that overrides the list of known HTTP methods (semantic
/// conventions: comma-separated, case-sensitive, a full replacement of the default list).
pub(crate) const KNOWN_METHODS_ENV: &str = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS";

/// The method as recorded: a known method's name, or `_OTHER`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KnownMethod {
    pub(crate) name: &'static str,
    pub(crate) is_other: bool,
    /// Position in the list of recorded method names (`_OTHER` is last, see
    /// [`KnownMethods::count`]).
    pub(crate) index: u8,
}

impl KnownMethod {
    /// Span name when no route or template is known (`HTTP` for unknown methods).
    pub(crate) fn span_name(self) -> &'static str {
        if self.is_other { "HTTP" } else { self.name }
    }
}

/// The list of methods recorded by name: the semantic conventions' default, or a list set
/// with `ConfigBuilder::with_known_methods` or `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`.
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownMethods {
    /// `None`: the default list, matched without looking at any string.
    custom: Option<Arc<[&'static str]>>,
}

impl KnownMethods {
    /// A list replacing the default one: entries are trimmed, empty ones and repeats
    /// skipped, at most [`MAX_KNOWN_METHODS`] kept. Matching is case-sensitive.
    pub(crate) fn custom<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<&'static str> = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            if name.is_empty() || list.contains(&name) {
                continue;
            }
            if list.len() == MAX_KNOWN_METHODS {
                break;
            }
            list.push(intern(name));
        }
        Self {
            custom: Some(list.into()),
        }
    }

    /// The list `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` gives in `env`, else the default.
    pub(crate) fn from_env(env: &otel_core::EnvSource) -> Self {
        match env.get(KNOWN_METHODS_ENV) {
            Some(value) => Self::custom(value.split(',')),
            None => Self::default(),
        }
    }

    /// The number of distinct recorded methods, `_OTHER` included.
    pub(crate) fn count(&self) -> usize {
        match &self.custom {
            None => DEFAULT_METHODS.len(),
            Some(names) => names.len() + 1,
        }
    }

    /// How `method` is recorded.
    #[inline]
    pub(crate) fn of(&self, method: &Method) -> KnownMethod {
        let Some(names) = &self.custom else {
            return default_method(method);
        };
        let sent = method.as_str();
        match names.iter().position(|name| *name == sent) {
            Some(index) => KnownMethod {
                name: names[index],
                is_other: false,
                index: index as u8,
            },
            None => other(names.len()),
        }
    }

    /// The method recorded at `index` (below [`Self::count`]; larger is `_OTHER`).
    pub(crate) fn by_index(&self, index: usize) -> KnownMethod {
        match &self.custom {
            None => {
                let index = index.min(DEFAULT_METHODS.len() - 1);
                KnownMethod {
                    name: DEFAULT_METHODS[index],
                    is_other: index == DEFAULT_METHODS.len() - 1,
                    index: index as u8,
                }
            }
            Some(names) => match names.get(index) {
                Some(&name) => KnownMethod {
                    name,
                    is_other: false,
                    index: index as u8,
                },
                None => other(names.len()),
            },
        }
    }
}

/// `_OTHER` at `index`.
fn other(index: usize) -> KnownMethod {
    KnownMethod {
        name: DEFAULT_METHODS[DEFAULT_METHODS.len() - 1],
        is_other: true,
        index: index as u8,
    }
}

/// How `method` is recorded with the default list: no string comparison for the standard
/// methods.
#[inline]
fn default_method(method: &Method) -> KnownMethod {
    let mut index = match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::HEAD => 4,
        Method::OPTIONS => 5,
        Method::PATCH => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 10,
    };
    // `http` has no constant for QUERY: an extension method, compared by its bytes (after
    // the match, which then stays a table lookup).
    if index == 10 && method.as_str() == "QUERY" {
        index = 9;
    }
    KnownMethod {
        name: DEFAULT_METHODS[index],
        is_other: index == DEFAULT_METHODS.len() - 1,
        index: index as u8,
    }
}

/// `name` as a `&'static str`: method names are recorded as static strings (no reference
/// count per request). Each distinct configured name is allocated once per process, so the
/// memory is bounded by the configuration, never by requests.
fn intern(name: &str) -> &'static str {
    if let Some(known) = DEFAULT_METHODS.iter().find(|m| **m == name) {
        return known;
    }
    static INTERNED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = interned.iter().find(|m| **m == name) {
        return found;
    }
    let leaked: &'static str = Box::leak(Box::<str>::from(name));
    interned.push(leaked);
    leaked
}

/// `network.protocol.version` for `version`.
pub(crate) fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// `query` with the values of sensitive parameters replaced by `REDACTED`.
pub(crate) fn redact_query<'a>(query: &'a str, config: &Config) -> Cow<'a, str> {
    redact_query_noting(query, config, None)
}

/// [`redact_query`], also noting each redacted (non-empty) value in `secrets` when given.
pub(crate) fn redact_query_noting<'a>(
    query: &'a str,
    config: &Config,
    mut secrets: Option<&mut Secrets>,
) -> Cow<'a, str> {
    if !query_pairs(query).any(|(name, _)| config.is_redacted_param(name)) {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    for (i, (name, value)) in query_pairs(query).enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        match value {
            Some(value) if config.is_redacted_param(name) => {
                if let Some(secrets) = secrets.as_deref_mut() {
                    secrets.note_pair(name, value);
                }
                out.push('=');
                out.push_str(REDACTED);
            }
            Some(value) => {
                out.push('=');
                out.push_str(value);
            }
            None => {}
        }
    }
    Cow::Owned(out)
}

/// What a URL's redaction hid (credentials, sensitive query pairs), kept to scrub them from
/// error messages, which may quote the raw URL. Each is kept in context (`name=value`,
/// `user:password@`), so a short value does not make every occurrence of its characters
/// disappear from the message. Empty (no allocation) for a URL with nothing to hide.
///
/// At most [`MAX_SECRETS`] pieces are kept; a URL that hides more makes [`scrub`](Self::scrub)
/// replace the whole message, so that no piece can escape and the work stays bounded.
#[derive(Debug, Default)]
pub(crate) struct Secrets {
    pieces: Vec<(Box<str>, Box<str>)>,
    overflow: bool,
}

/// The most pieces a [`Secrets`] keeps.
const MAX_SECRETS: usize = 32;

/// The message of a failure whose URL hid more than [`MAX_SECRETS`] pieces.
const SCRUBBED_MESSAGE: &str =
    "the request failed (message withheld: its URL holds redacted values)";

impl Secrets {
    /// Keeps `raw`, to be replaced by `redacted`.
    fn note(&mut self, raw: &str, redacted: &str) {
        if self.pieces.iter().any(|(r, _)| &**r == raw) {
            return;
        }
        if self.pieces.len() == MAX_SECRETS {
            self.overflow = true;
            return;
        }
        self.pieces.push((raw.into(), redacted.into()));
    }

    /// Keeps the query pair `name=value` (not when `value` is empty: nothing to hide).
    pub(crate) fn note_pair(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.note(&format!("{name}={value}"), &format!("{name}={REDACTED}"));
        }
    }

    /// Keeps the user information of a URL (`user` or `user:password`, without the `@`).
    pub(crate) fn note_userinfo(&mut self, userinfo: &str) {
        let redacted = if userinfo.contains(':') {
            "REDACTED:REDACTED@"
        } else {
            "REDACTED@"
        };
        self.note(&format!("{userinfo}@"), redacted);
    }

    /// `message` with every kept piece replaced by its redacted form. Scrubbing an already
    /// scrubbed message changes nothing: text already in a piece's redacted form is left as
    /// it is (a value such as `R` would otherwise match again inside `REDACTED`).
    pub(crate) fn scrub(&self, message: String) -> String {
        if self.overflow {
            return SCRUBBED_MESSAGE.to_owned();
        }
        // Longest first: a piece that contains another is replaced whole.
        let mut pieces: Vec<&(Box<str>, Box<str>)> = self.pieces.iter().collect();
        pieces.sort_by_key(|(raw, _)| std::cmp::Reverse(raw.len()));
        pieces
            .into_iter()
            .fold(message, |message, (raw, redacted)| {
                if message.contains(&**raw) {
                    message
                        .split(&**redacted)
                        .map(|part| part.replace(&**raw, redacted))
                        .collect::<Vec<_>>()
                        .join(redacted)
                } else {
                    message
                }
            })
    }
}

/// The `name` and optional `value` of each `&`-separated pair of `query`, split on bytes
/// (both separators are ASCII, so the pieces stay valid UTF-8).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let bytes = query.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        if start > bytes.len() {
            return None;
        }
        let end = bytes[start..]
            .iter()
            .position(|b| *b == b'&')
            .map_or(bytes.len(), |i| start + i);
        let pair = &query[start..end];
        start = end + 1;
        Some(match pair.as_bytes().iter().position(|b| *b == b'=') {
            Some(eq) => (&pair[..eq], Some(&pair[eq + 1..])),
            None => (pair, None),
        })
    })
}

/// `url.full` for a client request: credentials replaced by `REDACTED:REDACTED`, sensitive
/// query values redacted, fragment dropped (an `http::Uri` never holds one). What was
/// hidden is noted in `secrets`.
pub(crate) fn url_full(uri: &Uri, config: &Config, secrets: &mut Secrets) -> String {
    let mut out = String::with_capacity(uri.path().len() + 32);
    if let Some(scheme) = uri.scheme_str() {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        let authority = authority.as_str();
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                secrets.note_userinfo(userinfo);
                if userinfo.contains(':') {
                    out.push_str("REDACTED:REDACTED@");
                } else {
                    out.push_str("REDACTED@");
                }
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
    }
    out.push_str(uri.path());
    if let Some(query) = uri.query() {
        out.push('?');
        out.push_str(&redact_query_noting(query, config, Some(secrets)));
    }
    out
}

/// Splits `host[:port]` (IPv6 hosts in brackets) into host and port; the host is returned
/// without brackets.
pub(crate) fn split_host_port(authority: &str) -> (&str, Option<u16>) {
    // One forward pass over the bytes (a Host header is a few bytes long; two reverse
    // searches and a generic integer parse cost more than the whole scan).
    let bytes = authority.as_bytes();
    let mut at = None;
    let mut colon = None;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'@' => at = Some(i),
            b':' => colon = Some(i),
            _ => {}
        }
    }
    let start = at.map_or(0, |at| at + 1);
    let authority = &authority[start..];
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(parse_port);
            return (host, port);
        }
        return (authority, None);
    }
    match colon {
        Some(colon) if colon >= start => {
            let (host, port) = (&authority[..colon - start], &authority[colon - start + 1..]);
            match parse_port(port) {
                Some(port) => (host, Some(port)),
                None => (authority, None),
            }
        }
        _ => (authority, None),
    }
}

/// A port number: 1 to 5 ASCII digits that fit in a `u16`.
fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    let mut port: u32 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        port = port * 10 + u32::from(b - b'0');
    }
    u16::try_from(port).ok()
}

/// `value` as a shared string: the one in `cache` when it is equal, else a new one, which the
/// cache keeps if it is still empty. For values that repeat on every request (the route
/// template, the server's name), a reference count instead of an allocation.
pub(crate) fn cached_value(cache: &OnceLock<StringValue>, value: &str) -> StringValue {
    match cache.get() {
        Some(cached) if cached.as_str() == value => cached.clone(),
        cached => {
            let new = StringValue::from(Arc::<str>::from(value));
            if cached.is_none() {
                let _ = cache.set(new.clone());
            }
            new
        }
    }
}

/// Default port of `scheme`, for `server.port` when the authority has none.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `error.type` and a message for a service error of any type.
///
/// `timeout` when the error (or, for a boxed error, any error in its chain) is a timeout;
/// for a type-erased boxed error, the kind of the first I/O error in its chain
/// (`ConnectionRefused`, …) or `_OTHER`; for a concrete error type, its Rust type name.
/// Error path only: formats the error.
pub(crate) fn classify_error<E>(error: &E) -> (Cow<'static, str>, String)
where
    E: std::fmt::Debug + 'static,
{
    let any: &dyn std::any::Any = error;
    let debug = format!("{error:?}");
    if let Some(boxed) = any.downcast_ref::<Box<dyn StdError + Send + Sync>>() {
        let message = boxed.to_string();
        let kind = if is_timeout(&**boxed) {
            Cow::Borrowed(ERROR_TIMEOUT)
        } else if let Some(kind) = io_error_kind(&**boxed) {
            Cow::Owned(kind)
        } else {
            Cow::Borrowed(ERROR_OTHER)
        };
        return (kind, message);
    }
    // tonic's channel deadline: `Error(Transport, TimeoutExpired(()))`.
    if debug.contains("TimedOut")
        || debug.contains("Elapsed")
        || debug.contains("timed out")
        || debug.contains("TimeoutExpired")
    {
        return (Cow::Borrowed(ERROR_TIMEOUT), debug);
    }
    (Cow::Borrowed(std::any::type_name::<E>()), debug)
}

/// The kind (`ConnectionRefused`, …) of the first I/O error in the chain of `error`.
fn io_error_kind(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(format!("{:?}", io.kind()));
        }
        current = err.source();
    }
    None
}

/// Whether `error` or any of its sources is a timeout.
pub(crate) fn is_timeout(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        // The timeout errors of tower (`Elapsed`: "request timed out"), tokio ("deadline has
        // elapsed"), hyper and reqwest are not nameable here without depending on each of
        // them, so they are recognised by their messages. Error path only.
        let message = err.to_string();
        if message.contains("timed out")
            || message.contains("deadline has elapsed")
            || message.contains("Timeout expired")
        {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::builder().with_redaction(["token"]).build()
    }

    #[test]
    fn query_redaction() {
        let c = config();
        assert_eq!(redact_query("a=1&b=2", &c), "a=1&b=2");
        assert_eq!(
            redact_query("a=1&sig=abc&TOKEN=x&Signature", &c),
            "a=1&sig=REDACTED&TOKEN=REDACTED&Signature"
        );
        // Names otel-core's redactor treats as secrets, without configuration.
        let plain = Config::builder().build();
        assert_eq!(
            redact_query("access_token=t&api-key=k&user_password=p&page=2", &plain),
            "access_token=REDACTED&api-key=REDACTED&user_password=REDACTED&page=2"
        );
        assert_eq!(redact_query("", &c), "");
    }

    #[test]
    fn url_full_redacts_credentials_and_query() {
        let c = config();
        let uri: Uri = "https://user:pw@example.com:8443/p/a?x=1&token=s"
            .parse()
            .unwrap();
        let mut secrets = Secrets::default();
        assert_eq!(
            url_full(&uri, &c, &mut secrets),
            "https://REDACTED:REDACTED@example.com:8443/p/a?x=1&token=REDACTED"
        );
        assert_eq!(
            secrets.scrub(format!("error for url ({uri})")),
            "error for url (https://REDACTED:REDACTED@example.com:8443/p/a?x=1&token=REDACTED)"
        );
        let uri: Uri = "http://example.com/".parse().unwrap();
        let mut secrets = Secrets::default();
        assert_eq!(url_full(&uri, &c, &mut secrets), "http://example.com/");
        assert_eq!(secrets.scrub("unchanged".into()), "unchanged");
    }

    #[test]
    fn scrub_replaces_pairs_in_context_longest_first() {
        let mut secrets = Secrets::default();
        secrets.note_pair("sig", "");
        secrets.note_pair("sig", "1");
        secrets.note_pair("sig", "12");
        secrets.note_userinfo("u");
        assert_eq!(
            secrets.scrub("GET http://u@h/?sig=12&x=1 then ?sig=1 (sig=)".into()),
            "GET http://REDACTED@h/?sig=REDACTED&x=1 then ?sig=REDACTED (sig=)"
        );
    }

    #[test]
    fn scrubbing_twice_changes_nothing_and_too_many_secrets_withhold_the_message() {
        let mut secrets = Secrets::default();
        secrets.note_pair("token", "R");
        secrets.note_userinfo("ED");
        let once = secrets.scrub("GET http://ED@h/?token=R failed".into());
        assert_eq!(once, "GET http://REDACTED@h/?token=REDACTED failed");
        assert_eq!(secrets.scrub(once.clone()), once);

        let mut many = Secrets::default();
        for i in 0..=MAX_SECRETS {
            many.note_pair(&format!("k{i}"), "v");
        }
        assert_eq!(many.pieces.len(), MAX_SECRETS);
        assert_eq!(many.scrub("k32=v leaked?".into()), SCRUBBED_MESSAGE);
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("example.com:80"), ("example.com", Some(80)));
        assert_eq!(split_host_port("example.com"), ("example.com", None));
        assert_eq!(split_host_port("[::1]:8080"), ("::1", Some(8080)));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(split_host_port("u:p@h:1"), ("h", Some(1)));
        assert_eq!(split_host_port("h:notaport"), ("h:notaport", None));
        assert_eq!(split_host_port("h:65536"), ("h:65536", None));
        assert_eq!(split_host_port("h:"), ("h:", None));
        assert_eq!(split_host_port("[::1]:x"), ("::1", None));
        assert_eq!(split_host_port("u@[::1]:443"), ("::1", Some(443)));
        assert_eq!(split_host_port(":80"), ("", Some(80)));
        assert_eq!(split_host_port("héllo:1"), ("héllo", Some(1)));
    }

    #[test]
    fn methods() {
        let default = KnownMethods::default();
        assert_eq!(default.of(&Method::GET).name, "GET");
        let query = default.of(&Method::from_bytes(b"QUERY").unwrap());
        assert_eq!((query.name, query.is_other), ("QUERY", false));
        // Case-sensitive: `query` is not QUERY.
        assert!(default.of(&Method::from_bytes(b"query").unwrap()).is_other);
        let other = default.of(&Method::from_bytes(b"PURGE").unwrap());
        assert!(other.is_other);
        assert_eq!(other.name, "_OTHER");
        assert_eq!(other.span_name(), "HTTP");
        assert_eq!(usize::from(other.index), default.count() - 1);
        for index in 0..default.count() {
            assert_eq!(usize::from(default.by_index(index).index), index);
        }
    }

    #[test]
    fn custom_methods_replace_the_default_list() {
        let custom = KnownMethods::custom([" GET", "PURGE", "", "GET", "purge"]);
        assert_eq!(custom.count(), 4);
        assert_eq!(custom.of(&Method::GET).name, "GET");
        let purge = custom.of(&Method::from_bytes(b"PURGE").unwrap());
        assert_eq!(
            (purge.name, purge.is_other, purge.index),
            ("PURGE", false, 1)
        );
        let lower = custom.of(&Method::from_bytes(b"purge").unwrap());
        assert_eq!((lower.name, lower.index), ("purge", 2));
        // Not in the list any more: POST is `_OTHER`.
        let post = custom.of(&Method::POST);
        assert!(post.is_other);
        assert_eq!(usize::from(post.index), custom.count() - 1);
        assert_eq!(custom.by_index(3).name, "_OTHER");
        // An empty list: every method is `_OTHER`.
        let none = KnownMethods::custom(Vec::<String>::new());
        assert!(none.of(&Method::GET).is_other);
        // Bounded.
        let many = KnownMethods::custom((0..1000).map(|i| format!("M{i}")));
        assert_eq!(many.count(), MAX_KNOWN_METHODS + 1);
        assert!(many.of(&Method::from_bytes(b"M999").unwrap()).is_other);
        assert_eq!(many.of(&Method::from_bytes(b"M253").unwrap()).index, 253);
    }

    #[test]
    fn known_methods_from_the_environment() {
        use otel_core::EnvSource;
        let env = EnvSource::from_pairs([(KNOWN_METHODS_ENV, "GET, POST,PROPFIND")]);
        let methods = KnownMethods::from_env(&env);
        assert_eq!(methods.count(), 4);
        assert_eq!(
            methods.of(&Method::from_bytes(b"PROPFIND").unwrap()).name,
            "PROPFIND"
        );
        assert!(methods.of(&Method::PUT).is_other);
        // Unset or empty: the default list.
        let unset = KnownMethods::from_env(&EnvSource::from_pairs([(KNOWN_METHODS_ENV, " ")]));
        assert_eq!(unset.count(), DEFAULT_METHODS.len());
        assert!(!unset.of(&Method::PUT).is_other);
    }
}
