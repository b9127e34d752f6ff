//! How a call failed, in terms the semantic conventions want: `error.type`,
//! `db.response.status_code` and a status description.
//!
//! Redis error replies may echo arguments back (`ERR unknown command 'x', with args beginning
//! with: …`), so the detail text of a reply is never recorded: only its code (`WRONGTYPE`,
//! `ERR`). Connection failures are named after their `std::io::ErrorKind`.

use std::borrow::Cow;
use std::error::Error as _;
use std::io;
use std::sync::Arc;

use opentelemetry::StringValue;
use redis::{ErrorKind, RedisError, RedisResult, ServerError, Value};

/// Why a call failed.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// `error.type`: the reply code, or a snake_case name of the client-side failure.
    pub(crate) error_type: StringValue,
    /// `db.response.status_code`: the reply code, when the server replied with an error.
    pub(crate) status_code: Option<StringValue>,
    /// Status description; never holds argument values.
    pub(crate) message: Cow<'static, str>,
}

/// Reply codes Redis and its modules use, so the common ones cost no allocation.
const KNOWN_CODES: &[&str] = &[
    "ASK",
    "BUSY",
    "BUSYGROUP",
    "BUSYKEY",
    "CLUSTERDOWN",
    "CROSSSLOT",
    "ERR",
    "EXECABORT",
    "LOADING",
    "MASTERDOWN",
    "MISCONF",
    "MOVED",
    "NOAUTH",
    "NOGROUP",
    "NOPERM",
    "NOPROTO",
    "NOREPLICAS",
    "NOSCRIPT",
    "NOSUB",
    "NOTBUSY",
    "OOM",
    "READONLY",
    "TRYAGAIN",
    "UNBLOCKED",
    "UNKILLABLE",
    "WRONGPASS",
    "WRONGTYPE",
];

/// Used when a reply code is not a plausible code (too long, odd bytes).
const OTHER: &str = "_OTHER";

fn code_value(code: &str) -> StringValue {
    if let Some(known) = KNOWN_CODES.iter().find(|known| **known == code) {
        return StringValue::from(*known);
    }
    let plausible = !code.is_empty()
        && code.len() <= 32
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if plausible {
        StringValue::from(code.to_owned())
    } else {
        StringValue::from(OTHER)
    }
}

fn from_code(code: &str) -> Failure {
    let value = code_value(code);
    Failure {
        message: Cow::Owned(format!("Redis replied with a {} error", value.as_str())),
        status_code: Some(value.clone()),
        error_type: value,
    }
}

/// A failure from an error reply.
pub(crate) fn from_server_error(error: &ServerError) -> Failure {
    from_code(error.code())
}

/// A failure from an error returned by redis-rs (connection failure, error reply, …).
pub(crate) fn from_redis_error(error: &RedisError) -> Failure {
    if let Some(code) = error.code() {
        return from_code(code);
    }
    if error.kind() == ErrorKind::Io {
        let (error_type, message) = match io_error(error) {
            Some(io) => (io_kind_name(io.kind()), Cow::Owned(io.to_string())),
            None => (io_fallback_name(error), Cow::Borrowed("I/O error")),
        };
        return Failure {
            error_type: StringValue::from(error_type),
            status_code: None,
            message,
        };
    }
    let error_type = match error.kind() {
        ErrorKind::Parse => "parse_error",
        ErrorKind::AuthenticationFailed => "authentication_failed",
        ErrorKind::UnexpectedReturnType => "unexpected_return_type",
        ErrorKind::InvalidClientConfig => "invalid_client_config",
        ErrorKind::Client => "client_error",
        ErrorKind::RESP3NotSupported => "resp3_not_supported",
        _ => OTHER,
    };
    Failure {
        error_type: StringValue::from(error_type),
        status_code: None,
        message: Cow::Owned(error.category().to_owned()),
    }
}

/// The `std::io::Error` inside a redis-rs I/O error. redis-rs keeps it behind an
/// `Arc<dyn Error>`, which is what `source()` hands out.
fn io_error(error: &RedisError) -> Option<&io::Error> {
    let source = error.source()?;
    if let Some(io) = source.downcast_ref::<io::Error>() {
        return Some(io);
    }
    source
        .downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>()
        .and_then(|inner| inner.downcast_ref::<io::Error>())
}

fn io_kind_name(kind: io::ErrorKind) -> &'static str {
    use io::ErrorKind as K;
    match kind {
        K::ConnectionRefused => "connection_refused",
        K::ConnectionReset => "connection_reset",
        K::ConnectionAborted => "connection_aborted",
        K::NotConnected => "not_connected",
        K::BrokenPipe => "broken_pipe",
        K::TimedOut => "timeout",
        K::UnexpectedEof => "unexpected_eof",
        K::AddrNotAvailable => "address_not_available",
        K::AddrInUse => "address_in_use",
        K::HostUnreachable => "host_unreachable",
        K::NetworkUnreachable => "network_unreachable",
        K::NetworkDown => "network_down",
        K::PermissionDenied => "permission_denied",
        K::NotFound => "not_found",
        K::InvalidInput => "invalid_input",
        K::InvalidData => "invalid_data",
        K::WouldBlock => "would_block",
        K::Interrupted => "interrupted",
        _ => "io_error",
    }
}

fn io_fallback_name(error: &RedisError) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connection_refusal() {
        "connection_refused"
    } else if error.is_connection_dropped() {
        "connection_dropped"
    } else {
        "io_error"
    }
}

/// The failure of a single-command call: an `Err`, or an error reply inside `Ok`, at any depth
/// (an `EXEC` sent by hand answers an array of replies): redis-rs hands the caller the first
/// one as an `Err`.
pub(crate) fn of_single(result: &RedisResult<Value>) -> Option<Failure> {
    match result {
        Ok(value) => error_in(value).map(from_server_error),
        Err(error) => Some(from_redis_error(error)),
    }
}

/// The failure of a pipeline: an `Err`, or the first error reply among the results, at any
/// depth (inside the `EXEC` reply of a transaction, or of a `MULTI` sent by hand).
pub(crate) fn of_pipeline(result: &RedisResult<Vec<Value>>) -> Option<Failure> {
    match result {
        Ok(values) => first_error(values).map(from_server_error),
        Err(error) => Some(from_redis_error(error)),
    }
}

/// The first error reply in `values`, looking inside nested replies as redis-rs's
/// `Value::extract_error` does.
fn first_error(values: &[Value]) -> Option<&ServerError> {
    values.iter().find_map(error_in)
}

/// The first error reply in `value` or inside it (without recursion: a reply nests as deep
/// as the server sends).
fn error_in(value: &Value) -> Option<&ServerError> {
    let is_nested = |v: &Value| {
        matches!(
            v,
            Value::Array(_)
                | Value::Set(_)
                | Value::Map(_)
                | Value::Push { .. }
                | Value::Attribute { .. }
        )
    };
    match value {
        Value::ServerError(error) => return Some(error),
        // A flat array (the usual multi-value reply): no stack needed.
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. }
            if !items.iter().any(is_nested) =>
        {
            return items.iter().find_map(|item| match item {
                Value::ServerError(error) => Some(error),
                _ => None,
            });
        }
        v if is_nested(v) => {}
        _ => return None,
    }
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::ServerError(error) => return Some(error),
            Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
                stack.extend(items.iter().rev());
            }
            Value::Map(pairs) => {
                for (key, value) in pairs.iter().rev() {
                    stack.push(value);
                    stack.push(key);
                }
            }
            Value::Attribute { data, attributes } => {
                for (key, value) in attributes.iter().rev() {
                    stack.push(value);
                    stack.push(key);
                }
                stack.push(data);
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extension(code: &str, detail: &str) -> RedisError {
        redis::make_extension_error(code.to_owned(), Some(detail.to_owned()))
    }

    #[test]
    fn reply_codes_become_error_type_and_status_code() {
        let failure = from_redis_error(&extension("WRONGTYPE", "Operation against a key"));
        assert_eq!(failure.error_type.as_str(), "WRONGTYPE");
        assert_eq!(
            failure.status_code.as_ref().map(|s| s.as_str()),
            Some("WRONGTYPE")
        );
        assert!(!failure.message.contains("Operation against"));

        let failure = from_redis_error(&extension("SOMEMODULEERR", "secret detail"));
        assert_eq!(failure.error_type.as_str(), "SOMEMODULEERR");
        assert!(!failure.message.contains("secret"));

        let failure = from_redis_error(&extension("lower case and long", "x"));
        assert_eq!(failure.error_type.as_str(), OTHER);
    }

    #[test]
    fn io_errors_are_named_by_kind() {
        let error = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        let failure = from_redis_error(&error);
        assert_eq!(failure.error_type.as_str(), "connection_refused");
        assert!(failure.status_code.is_none());

        let error = RedisError::from(io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(from_redis_error(&error).error_type.as_str(), "timeout");
    }

    #[test]
    fn ok_results() {
        assert!(of_single(&Ok(Value::Okay)).is_none());
        assert!(of_pipeline(&Ok(vec![Value::Okay, Value::Nil])).is_none());
        // WATCH made EXEC return nil: not a failure.
        assert!(of_pipeline(&Ok(vec![Value::Nil])).is_none());
    }
}
