//! Reading the standard `OTEL_*` environment variables.
//!
//! Every value is read through an [`EnvSource`], so a test (or an application that keeps its
//! configuration elsewhere) can hand in its own variables without touching the process
//! environment. A malformed value is a [`ConfigError`] naming the variable and the value; nothing
//! here panics.
//!
//! ```
//! use otel_core::config::{EnvSource, OtlpOverrides, OtlpProtocol, OtlpSettings, Signal};
//!
//! let env = EnvSource::from_pairs([
//!     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
//!     ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
//! ]);
//! let traces = OtlpSettings::resolve(&env, Signal::Traces, &OtlpOverrides::default())?;
//! assert_eq!(traces.endpoint, "http://collector:4318/v1/traces");
//! assert_eq!(traces.protocol, OtlpProtocol::HttpProtobuf);
//! assert_eq!(
//!     traces.headers,
//!     [("api-key".to_owned(), "secret".to_owned())]
//! );
//!
//! // A malformed value names the variable.
//! let bad = EnvSource::from_pairs([("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")]);
//! let err = OtlpSettings::resolve(&bad, Signal::Traces, &OtlpOverrides::default()).unwrap_err();
//! assert!(err.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL"));
//! # Ok::<(), otel_core::ConfigError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;

/// Where configuration variables are read from.
///
/// [`EnvSource::process`] reads the process environment (the default);
/// [`EnvSource::from_pairs`] reads a fixed set, for tests and for applications that load their
/// settings from elsewhere.
///
/// ```
/// use otel_core::EnvSource;
///
/// let env = EnvSource::from_pairs([("OTEL_SERVICE_NAME", "checkout")]);
/// assert_eq!(env.get("OTEL_SERVICE_NAME").as_deref(), Some("checkout"));
/// assert_eq!(env.get("OTEL_SDK_DISABLED"), None);
/// ```
#[derive(Clone)]
pub struct EnvSource(Arc<Lookup>);

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl EnvSource {
    /// The process environment (`std::env::var`).
    ///
    /// ```
    /// use otel_core::EnvSource;
    ///
    /// // Whatever the process was started with, e.g. `OTEL_SERVICE_NAME=checkout ./app`.
    /// let env = EnvSource::process();
    /// let service = env
    ///     .get("OTEL_SERVICE_NAME")
    ///     .unwrap_or_else(|| "unknown_service".into());
    /// assert!(!service.is_empty());
    /// ```
    pub fn process() -> Self {
        Self(Arc::new(|name| std::env::var(name).ok()))
    }

    /// A fixed set of variables; anything not listed is unset.
    ///
    /// ```
    /// use otel_core::EnvSource;
    ///
    /// let env = EnvSource::from_pairs([("OTEL_TRACES_SAMPLER", "always_on")]);
    /// assert_eq!(env.get("OTEL_TRACES_SAMPLER").as_deref(), Some("always_on"));
    /// assert_eq!(env.get("PATH"), None); // the process environment is not consulted
    /// ```
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self(Arc::new(move |name| map.get(name).cloned()))
    }

    /// The value of `name`, with surrounding white space removed; empty counts as unset, as the
    /// OpenTelemetry specification asks.
    ///
    /// ```
    /// use otel_core::EnvSource;
    ///
    /// let env = EnvSource::from_pairs([("OTEL_SERVICE_NAME", "  api \n"), ("OTEL_LOG_LEVEL", " ")]);
    /// assert_eq!(env.get("OTEL_SERVICE_NAME").as_deref(), Some("api"));
    /// assert_eq!(env.get("OTEL_LOG_LEVEL"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

impl Default for EnvSource {
    fn default() -> Self {
        Self::process()
    }
}

impl fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvSource")
    }
}

/// A configuration value that could not be used.
///
/// ```
/// use otel_core::ConfigError;
/// use otel_core::config::parse_bool;
///
/// let err = parse_bool("OTEL_SDK_DISABLED", "yes").unwrap_err();
/// assert!(matches!(&err, ConfigError::InvalidValue { variable, .. } if variable == "OTEL_SDK_DISABLED"));
/// assert_eq!(
///     err.to_string(),
///     "invalid value \"yes\" for OTEL_SDK_DISABLED: expected `true` or `false`"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable (or the builder option of the same meaning) holds a value that cannot be used.
    #[error("invalid value {value:?} for {variable}: {reason}")]
    InvalidValue {
        /// The environment variable (or builder option) name.
        variable: String,
        /// The value as given.
        value: String,
        /// What is wrong with it and what is accepted.
        reason: String,
    },
    /// An exporter or processor could not be built from otherwise valid settings.
    #[error("could not build the {component}: {reason}")]
    Build {
        /// What was being built.
        component: &'static str,
        /// The underlying error.
        reason: String,
    },
}

impl ConfigError {
    /// A [`ConfigError::InvalidValue`] for `variable`.
    ///
    /// ```
    /// use otel_core::ConfigError;
    ///
    /// let err = ConfigError::invalid("APP_QUEUE_SIZE", "-1", "expected a positive number");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid value \"-1\" for APP_QUEUE_SIZE: expected a positive number"
    /// );
    /// ```
    pub fn invalid(
        variable: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidValue {
            variable: variable.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// Parses a boolean as the specification does: `true`/`false`, case-insensitive.
///
/// ```
/// use otel_core::config::parse_bool;
///
/// assert_eq!(parse_bool("OTEL_SDK_DISABLED", "TRUE"), Ok(true));
/// assert_eq!(parse_bool("OTEL_SDK_DISABLED", "false"), Ok(false));
/// assert!(parse_bool("OTEL_SDK_DISABLED", "1").is_err());
/// ```
pub fn parse_bool(variable: &str, value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ConfigError::invalid(
            variable,
            value,
            "expected `true` or `false`",
        ))
    }
}

/// Parses a duration in whole milliseconds (the unit of every `OTEL_*` timeout and interval).
///
/// ```
/// use otel_core::config::parse_millis;
/// use std::time::Duration;
///
/// assert_eq!(
///     parse_millis("OTEL_BSP_SCHEDULE_DELAY", "5000"),
///     Ok(Duration::from_secs(5))
/// );
/// assert!(parse_millis("OTEL_BSP_SCHEDULE_DELAY", "5s").is_err());
/// ```
pub fn parse_millis(variable: &str, value: &str) -> Result<Duration, ConfigError> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            ConfigError::invalid(variable, value, "expected a whole number of milliseconds")
        })
}

/// Parses a positive count (queue sizes, batch sizes).
///
/// ```
/// use otel_core::config::parse_count;
///
/// assert_eq!(parse_count("OTEL_BSP_MAX_QUEUE_SIZE", "2048"), Ok(2048));
/// assert!(parse_count("OTEL_BSP_MAX_QUEUE_SIZE", "0").is_err());
/// assert!(parse_count("OTEL_BSP_MAX_QUEUE_SIZE", "-5").is_err());
/// ```
pub fn parse_count(variable: &str, value: &str) -> Result<usize, ConfigError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::invalid(
            variable,
            value,
            "expected a positive whole number",
        )),
    }
}

/// Parses a `key1=value1,key2=value2` list (as in `OTEL_RESOURCE_ATTRIBUTES` and
/// `OTEL_EXPORTER_OTLP_HEADERS`), percent-decoding keys and values.
///
/// An item without `=`, with an empty key or with a bad percent escape is an error naming the
/// variable; empty items (`a=1,,b=2`) are skipped.
///
/// ```
/// use otel_core::config::parse_key_values;
///
/// let pairs = parse_key_values(
///     "OTEL_RESOURCE_ATTRIBUTES",
///     "team=payments, region=eu%20west,,",
/// )?;
/// assert_eq!(
///     pairs,
///     [
///         ("team".to_owned(), "payments".to_owned()),
///         ("region".to_owned(), "eu west".to_owned())
///     ]
/// );
///
/// let err = parse_key_values("OTEL_RESOURCE_ATTRIBUTES", "team=payments,oops").unwrap_err();
/// assert!(
///     err.to_string()
///         .contains("\"oops\" is not of the form key=value")
/// );
/// # Ok::<(), otel_core::ConfigError>(())
/// ```
pub fn parse_key_values(variable: &str, value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            return Err(ConfigError::invalid(
                variable,
                value,
                format!("item {item:?} is not of the form key=value"),
            ));
        };
        let key = percent_decode(k.trim()).ok_or_else(|| {
            ConfigError::invalid(variable, value, format!("bad percent escape in {k:?}"))
        })?;
        let val = percent_decode(v.trim()).ok_or_else(|| {
            ConfigError::invalid(variable, value, format!("bad percent escape in {v:?}"))
        })?;
        if key.is_empty() {
            return Err(ConfigError::invalid(
                variable,
                value,
                format!("item {item:?} has an empty key"),
            ));
        }
        out.push((key, val));
    }
    Ok(out)
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // Two hex digits exactly (`from_str_radix` would take a sign: `%+5`).
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Turns parsed pairs into attributes.
pub(crate) fn to_key_values(pairs: Vec<(String, String)>) -> Vec<KeyValue> {
    pairs
        .into_iter()
        .map(|(k, v)| KeyValue::new(k, v))
        .collect()
}

/// The OTLP transport protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`).
///
/// ```
/// use otel_core::OtlpProtocol;
///
/// assert_eq!(OtlpProtocol::default(), OtlpProtocol::HttpProtobuf);
/// assert_eq!(
///     OtlpProtocol::parse("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
///     Ok(OtlpProtocol::Grpc)
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `grpc`: OTLP over gRPC (default port 4317).
    Grpc,
    /// `http/protobuf`: OTLP over HTTP with protobuf bodies (default port 4318); the
    /// specification's default.
    #[default]
    HttpProtobuf,
}

impl OtlpProtocol {
    /// Parses the value of `variable`.
    ///
    /// ```
    /// use otel_core::OtlpProtocol;
    ///
    /// let var = "OTEL_EXPORTER_OTLP_PROTOCOL";
    /// assert_eq!(
    ///     OtlpProtocol::parse(var, "http/protobuf"),
    ///     Ok(OtlpProtocol::HttpProtobuf)
    /// );
    /// let err = OtlpProtocol::parse(var, "http/json").unwrap_err();
    /// assert!(err.to_string().contains("http/json is not supported"));
    /// ```
    pub fn parse(variable: &str, value: &str) -> Result<Self, ConfigError> {
        match value {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "http/json" => Err(ConfigError::invalid(
                variable,
                value,
                "http/json is not supported; use `grpc` or `http/protobuf`",
            )),
            _ => Err(ConfigError::invalid(
                variable,
                value,
                "expected `grpc` or `http/protobuf`",
            )),
        }
    }

    pub(crate) fn default_endpoint(self) -> &'static str {
        match self {
            Self::Grpc => "http://localhost:4317",
            Self::HttpProtobuf => "http://localhost:4318",
        }
    }
}

/// The OTLP signal an endpoint is resolved for.
///
/// ```
/// use otel_core::config::{EnvSource, OtlpOverrides, OtlpSettings, Signal};
///
/// let env = EnvSource::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
/// let logs = OtlpSettings::resolve(&env, Signal::Logs, &OtlpOverrides::default())?;
/// assert_eq!(logs.endpoint, "http://collector:4318/v1/logs");
/// # Ok::<(), otel_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// Spans (`/v1/traces`, `OTEL_EXPORTER_OTLP_TRACES_*`).
    Traces,
    /// Metrics (`/v1/metrics`, `OTEL_EXPORTER_OTLP_METRICS_*`).
    Metrics,
    /// Log records (`/v1/logs`, `OTEL_EXPORTER_OTLP_LOGS_*`).
    Logs,
}

impl Signal {
    pub(crate) fn env_infix(self) -> &'static str {
        match self {
            Self::Traces => "TRACES_",
            Self::Metrics => "METRICS_",
            Self::Logs => "LOGS_",
        }
    }

    fn http_path(self) -> &'static str {
        match self {
            Self::Traces => "v1/traces",
            Self::Metrics => "v1/metrics",
            Self::Logs => "v1/logs",
        }
    }
}

/// Settings given in code for the OTLP exporters; each overrides its environment variable.
///
/// ```
/// use otel_core::config::{EnvSource, OtlpOverrides, OtlpProtocol, OtlpSettings, Signal};
/// use std::time::Duration;
///
/// let env = EnvSource::from_pairs([
///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://from-env:4318"),
///     ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000"),
/// ]);
/// let overrides = OtlpOverrides {
///     endpoint: Some("http://from-code:4317".into()),
///     protocol: Some(OtlpProtocol::Grpc),
///     ..Default::default()
/// };
/// let s = OtlpSettings::resolve(&env, Signal::Traces, &overrides)?;
/// assert_eq!(s.endpoint, "http://from-code:4317"); // gRPC: no signal path appended
/// assert_eq!(s.timeout, Duration::from_secs(30)); // not overridden: from the environment
///     
/// # Ok::<(), otel_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct OtlpOverrides {
    /// Base endpoint (as `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Protocol (as `OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub protocol: Option<OtlpProtocol>,
    /// Extra headers, e.g. for authentication (as `OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: Vec<(String, String)>,
    /// Export timeout (as `OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub timeout: Option<Duration>,
}

/// The resolved OTLP settings for one signal.
///
/// ```
/// use otel_core::config::{EnvSource, OtlpOverrides, OtlpProtocol, OtlpSettings, Signal};
/// use std::time::Duration;
///
/// // Nothing set: the specification's defaults.
/// let env = EnvSource::from_pairs::<&str, &str>([]);
/// let s = OtlpSettings::resolve(&env, Signal::Metrics, &OtlpOverrides::default())?;
/// assert_eq!(s.endpoint, "http://localhost:4318/v1/metrics");
/// assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
/// assert_eq!(s.timeout, Duration::from_secs(10));
/// assert!(s.headers.is_empty());
/// # Ok::<(), otel_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The full URL to send to: for HTTP, the signal path (`/v1/traces`, …) is already appended
    /// to a base endpoint; a signal-specific endpoint is used as given.
    pub endpoint: String,
    /// Transport protocol.
    pub protocol: OtlpProtocol,
    /// Headers sent with every export request.
    pub headers: Vec<(String, String)>,
    /// Timeout of one export request.
    pub timeout: Duration,
}

impl OtlpSettings {
    /// Resolves the settings of `signal` from code overrides first, then the signal-specific
    /// variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, …), then the general ones, then the
    /// specification's defaults (`http/protobuf`, `http://localhost:4318`, 10 s).
    ///
    /// ```
    /// use otel_core::config::{EnvSource, OtlpOverrides, OtlpSettings, Signal};
    /// use std::time::Duration;
    ///
    /// let env = EnvSource::from_pairs([
    ///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
    ///     (
    ///         "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ///         "http://metrics-gateway:9090/otlp",
    ///     ),
    ///     ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
    /// ]);
    /// let none = OtlpOverrides::default();
    /// let traces = OtlpSettings::resolve(&env, Signal::Traces, &none)?;
    /// assert_eq!(traces.endpoint, "http://collector:4318/v1/traces");
    /// assert_eq!(traces.timeout, Duration::from_millis(2500));
    /// // A signal-specific endpoint is used as given.
    /// let metrics = OtlpSettings::resolve(&env, Signal::Metrics, &none)?;
    /// assert_eq!(metrics.endpoint, "http://metrics-gateway:9090/otlp");
    /// assert_eq!(metrics.timeout, Duration::from_secs(10));
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn resolve(
        env: &EnvSource,
        signal: Signal,
        overrides: &OtlpOverrides,
    ) -> Result<Self, ConfigError> {
        let specific = |suffix: &str| format!("OTEL_EXPORTER_OTLP_{}{suffix}", signal.env_infix());
        let lookup = |suffix: &str| -> Option<(String, String)> {
            let name = specific(suffix);
            if let Some(v) = env.get(&name) {
                return Some((name, v));
            }
            let general = format!("OTEL_EXPORTER_OTLP_{suffix}");
            env.get(&general).map(|v| (general, v))
        };

        let protocol = match overrides.protocol {
            Some(p) => p,
            None => match lookup("PROTOCOL") {
                Some((name, v)) => OtlpProtocol::parse(&name, &v)?,
                None => OtlpProtocol::default(),
            },
        };

        let endpoint = if let Some(base) = &overrides.endpoint {
            validate_url("endpoint", base)?;
            join_signal_path(protocol, signal, base)
        } else if let Some(v) = env.get(&specific("ENDPOINT")) {
            validate_url(&specific("ENDPOINT"), &v)?;
            v
        } else if let Some(v) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            validate_url("OTEL_EXPORTER_OTLP_ENDPOINT", &v)?;
            join_signal_path(protocol, signal, &v)
        } else {
            join_signal_path(protocol, signal, protocol.default_endpoint())
        };

        let (headers_variable, mut headers) = match lookup("HEADERS") {
            Some((name, v)) => {
                let headers = parse_key_values(&name, &v)?;
                (name, headers)
            }
            None => ("OTEL_EXPORTER_OTLP_HEADERS".to_owned(), Vec::new()),
        };
        for (k, v) in &overrides.headers {
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        // Every protocol sends them as HTTP headers: one that cannot be sent is an error
        // here, whatever the protocol (instead of being dropped over HTTP).
        for (k, v) in &headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return Err(ConfigError::invalid(
                    &headers_variable,
                    k,
                    "not a valid header name",
                ));
            }
            if http::HeaderValue::from_str(v).is_err() {
                // The header is named, not its value (often a secret).
                return Err(ConfigError::invalid(
                    &headers_variable,
                    k,
                    "this header's value is not a valid HTTP header value",
                ));
            }
        }

        let timeout = match overrides.timeout {
            Some(t) => t,
            None => match lookup("TIMEOUT") {
                Some((name, v)) => parse_millis(&name, &v)?,
                None => Duration::from_secs(10),
            },
        };

        Ok(Self {
            endpoint,
            protocol,
            headers,
            timeout,
        })
    }
}

fn validate_url(variable: &str, value: &str) -> Result<(), ConfigError> {
    match value.parse::<http::Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.host().is_some() => Ok(()),
        _ => Err(ConfigError::invalid(
            variable,
            value,
            "expected an absolute URL such as http://localhost:4318",
        )),
    }
}

fn join_signal_path(protocol: OtlpProtocol, signal: Signal, base: &str) -> String {
    match protocol {
        OtlpProtocol::Grpc => base.to_owned(),
        OtlpProtocol::HttpProtobuf => {
            format!("{}/{}", base.trim_end_matches('/'), signal.http_path())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn key_values_decode_and_reject() {
        let kv = parse_key_values("V", "a=1, b = x%20y ,,c=").unwrap();
        assert_eq!(
            kv,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "".into())
            ]
        );
        let err = parse_key_values("OTEL_RESOURCE_ATTRIBUTES", "a=1,oops").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("OTEL_RESOURCE_ATTRIBUTES") && msg.contains("oops"),
            "{msg}"
        );
        assert!(parse_key_values("V", "a=%zz").is_err());
        assert!(parse_key_values("V", "=v").is_err());
        assert!(parse_key_values("V", "a=%").is_err());
        // Two hex digits, no sign.
        assert!(parse_key_values("V", "a=%+5").is_err());
        assert!(parse_key_values("V", "a=%-1").is_err());
    }

    #[test]
    fn endpoints_resolve_per_signal() {
        let s = OtlpSettings::resolve(&env(&[]), Signal::Traces, &Default::default()).unwrap();
        assert_eq!(s.endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(s.timeout, Duration::from_secs(10));

        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9/custom"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr%3Dt"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "250"),
        ]);
        let t = OtlpSettings::resolve(&e, Signal::Traces, &Default::default()).unwrap();
        assert_eq!(t.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(t.headers, vec![("api-key".into(), "s3cr=t".into())]);
        assert_eq!(t.timeout, Duration::from_millis(250));
        let m = OtlpSettings::resolve(&e, Signal::Metrics, &Default::default()).unwrap();
        assert_eq!(m.endpoint, "http://m:9/custom");
        assert_eq!(m.timeout, Duration::from_secs(10));

        let g = env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ]);
        let t = OtlpSettings::resolve(&g, Signal::Traces, &Default::default()).unwrap();
        assert_eq!(t.endpoint, "http://c:4317");
        assert_eq!(t.protocol, OtlpProtocol::Grpc);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, val) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "ten"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "novalue"),
        ] {
            let err =
                OtlpSettings::resolve(&env(&[(var, val)]), Signal::Traces, &Default::default())
                    .unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(var) && msg.contains(val), "{msg}");
        }
    }

    /// Headers no HTTP request can carry are an error for every protocol, naming the
    /// variable and the header (never the value, often a secret).
    #[test]
    fn unsendable_headers_are_errors() {
        for (val, named) in [
            ("api-key=s3cret%0A", "api-key"),
            ("bad%20name=1", "bad name"),
        ] {
            let err = OtlpSettings::resolve(
                &env(&[("OTEL_EXPORTER_OTLP_HEADERS", val)]),
                Signal::Traces,
                &Default::default(),
            )
            .unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("OTEL_EXPORTER_OTLP_HEADERS") && msg.contains(named),
                "{msg}"
            );
            assert!(!msg.contains("s3cret"), "{msg}");
        }
    }

    #[test]
    fn overrides_win() {
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:1")]);
        let o = OtlpOverrides {
            endpoint: Some("http://code:2".into()),
            protocol: Some(OtlpProtocol::HttpProtobuf),
            headers: vec![("x".into(), "y".into())],
            timeout: Some(Duration::from_millis(5)),
        };
        let s = OtlpSettings::resolve(&e, Signal::Logs, &o).unwrap();
        assert_eq!(s.endpoint, "http://code:2/v1/logs");
        assert_eq!(s.headers, vec![("x".into(), "y".into())]);
        assert_eq!(s.timeout, Duration::from_millis(5));
    }
}
