//! gRPC status codes as the semantic conventions spell them.

use http::HeaderMap;

/// Canonical names of the gRPC status codes, indexed by code.
const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// A gRPC status code (0..=16; anything else is read as UNKNOWN, as gRPC clients do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Code(u8);

impl Code {
    pub(crate) const OK: Code = Code(0);
    pub(crate) const UNKNOWN: Code = Code(2);
    pub(crate) const UNIMPLEMENTED: Code = Code(12);

    /// Code from the numeric text of a `grpc-status` value, read as gRPC clients (tonic's
    /// `Code::from_bytes`) read it: the canonical decimal only (`0` to `16`, no sign, space or
    /// leading zero), anything else `UNKNOWN`.
    pub(crate) fn parse(value: &[u8]) -> Code {
        let code = match value {
            [d @ b'0'..=b'9'] => d - b'0',
            [b'1', d @ b'0'..=b'6'] => 10 + (d - b'0'),
            _ => return Code::UNKNOWN,
        };
        Code(code)
    }

    /// The `grpc-status` in `headers` (trailers, or headers of a trailers-only response).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Code> {
        headers
            .get("grpc-status")
            .map(|v| Code::parse(v.as_bytes()))
    }

    /// Code a client derives from a non-200 HTTP status when `grpc-status` is missing
    /// (gRPC's "HTTP to gRPC status code mapping").
    pub(crate) fn from_http_status(status: http::StatusCode) -> Code {
        match status.as_u16() {
            400 => Code(13),
            401 => Code(16),
            403 => Code(7),
            404 => Code(12),
            429 | 502..=504 => Code(14),
            _ => Code::UNKNOWN,
        }
    }

    /// Canonical name (`OK`, `NOT_FOUND`, …), the value of `rpc.response.status_code`.
    pub(crate) fn name(self) -> &'static str {
        NAMES.get(usize::from(self.0)).copied().unwrap_or("UNKNOWN")
    }

    /// Whether a server span with this status is an error: UNKNOWN, DEADLINE_EXCEEDED,
    /// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS (semantic conventions for gRPC).
    pub(crate) fn is_server_error(self) -> bool {
        matches!(self.0, 2 | 4 | 12 | 13 | 14 | 15)
    }

    /// Whether a client span with this status is an error: every status but OK.
    pub(crate) fn is_client_error(self) -> bool {
        self.0 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_names() {
        assert_eq!(Code::parse(b"0").name(), "OK");
        assert_eq!(Code::parse(b"5").name(), "NOT_FOUND");
        assert_eq!(Code::parse(b"16").name(), "UNAUTHENTICATED");
        assert_eq!(Code::parse(b"17"), Code::UNKNOWN);
        assert_eq!(Code::parse(b"x"), Code::UNKNOWN);
        assert_eq!(Code::parse(b"-1"), Code::UNKNOWN);
        // Not canonical: tonic reads these as UNKNOWN too.
        for loose in [&b"00"[..], b"+0", b" 5", b"013", b"5 ", b""] {
            assert_eq!(Code::parse(loose), Code::UNKNOWN, "{loose:?}");
        }
        assert!(Code::parse(b"13").is_server_error());
        assert!(!Code::parse(b"5").is_server_error());
        assert!(Code::parse(b"5").is_client_error());
        assert!(!Code::parse(b"0").is_client_error());
    }
}
