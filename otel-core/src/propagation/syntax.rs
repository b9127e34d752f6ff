//! Lexical helpers shared by the propagators: optional whitespace, HTTP tokens, hexadecimal ids
//! and the percent-encoding of W3C baggage values.
//!
//! Percent-encoding is written here rather than taken from the `percent-encoding` crate because
//! the W3C baggage rules differ from every preset that crate ships (the set of octets left as
//! they are is the spec's `baggage-octet`, `%` itself must always be escaped, and a decoded
//! sequence that is not UTF-8 becomes U+FFFD), and the whole of it is a few lines that the
//! property tests cover completely.

use std::borrow::Cow;

/// Trims optional whitespace (RFC 7230 `OWS`: spaces and horizontal tabs) from both ends.
pub(crate) fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Whether `b` is an RFC 7230 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a non-empty RFC 7230 `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `b` is a W3C baggage `baggage-octet`: US-ASCII without controls, whitespace, `"`,
/// `,`, `;` and `\`.
pub(crate) fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// Whether hexadecimal digits may be upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HexCase {
    /// Only `0-9a-f` (W3C trace-context, B3).
    Lower,
    /// `0-9a-fA-F` (Jaeger).
    Any,
}

fn hex_digit(b: u8, case: HexCase) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' if case == HexCase::Any => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses 1 to 32 hexadecimal digits (no sign, no prefix) into a `u128`.
pub(crate) fn parse_hex_u128(s: &[u8], case: HexCase) -> Option<u128> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    s.iter().try_fold(0u128, |acc, &b| {
        hex_digit(b, case).map(|d| (acc << 4) | u128::from(d))
    })
}

/// Parses 1 to 16 hexadecimal digits (no sign, no prefix) into a `u64`.
pub(crate) fn parse_hex_u64(s: &[u8], case: HexCase) -> Option<u64> {
    if s.len() > 16 {
        return None;
    }
    parse_hex_u128(s, case).and_then(|v| u64::try_from(v).ok())
}

/// Parses exactly two lower-case hexadecimal digits.
pub(crate) fn parse_hex_u8(s: &[u8]) -> Option<u8> {
    match s {
        [hi, lo] => Some(hex_digit(*hi, HexCase::Lower)? << 4 | hex_digit(*lo, HexCase::Lower)?),
        _ => None,
    }
}

/// Decodes `%XX` escapes, and `+` as a space when `plus_as_space` (the form encoding Jaeger
/// clients use). A `%` not followed by two hexadecimal digits is kept as it is; a decoded byte
/// sequence that is not UTF-8 has its bad sequences replaced with U+FFFD, as the W3C baggage
/// specification requires. Borrows when there is nothing to decode.
pub(crate) fn percent_decode(s: &str, plus_as_space: bool) -> Cow<'_, str> {
    if !(s.contains('%') || plus_as_space && s.contains('+')) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(hi), Some(lo)) = (hex_digit(hi, HexCase::Any), hex_digit(lo, HexCase::Any))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(if plus_as_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(decoded) => Cow::Owned(decoded),
        Err(err) => Cow::Owned(String::from_utf8_lossy(err.as_bytes()).into_owned()),
    }
}

/// Whether `b` may stay unescaped in a W3C baggage value: a `baggage-octet` other than `%`.
pub(crate) fn is_baggage_value_safe(b: u8) -> bool {
    is_baggage_octet(b) && b != b'%'
}

/// Whether `b` is an RFC 3986 unreserved character, the only ones left unescaped in Jaeger
/// baggage values (so that any URL decoder, form decoders included, restores them).
pub(crate) fn is_url_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `s` to `out`, escaping as `%XX` (upper-case hex) every byte for which `keep` is
/// false. `keep` must be false for `%` so that [`percent_decode`] restores `s` exactly.
pub(crate) fn percent_encode_into(s: &str, keep: fn(u8) -> bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// The non-empty list members of a comma-separated header that may arrive as several fields
/// (which are one list, joined with commas in order), with optional whitespace trimmed.
///
/// At most `max_bytes` bytes are read, each member counted with the comma that ends it; a
/// member that runs past that is not returned and iteration ends, so hostile input costs at
/// most `max_bytes` of scanning and nothing is allocated.
#[derive(Debug)]
pub(crate) struct ListMembers<'v, 'a> {
    values: std::slice::Iter<'v, &'a str>,
    rest: Option<&'a str>,
    budget: usize,
}

impl<'v, 'a> ListMembers<'v, 'a> {
    pub(crate) fn new(values: &'v [&'a str], max_bytes: usize) -> Self {
        Self {
            values: values.iter(),
            rest: None,
            budget: max_bytes,
        }
    }
}

impl<'a> Iterator for ListMembers<'_, 'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let rest = match self.rest.take() {
                Some(rest) => rest,
                None => self.values.next()?,
            };
            let window = &rest.as_bytes()[..rest.len().min(self.budget)];
            let member = match window.iter().position(|&b| b == b',') {
                Some(comma) => {
                    self.rest = Some(&rest[comma + 1..]);
                    &rest[..comma]
                }
                None if rest.len() <= self.budget => rest,
                None => {
                    self.values = [].iter();
                    return None;
                }
            };
            self.budget = self.budget.saturating_sub(member.len() + 1);
            let member = trim_ows(member);
            if !member.is_empty() {
                return Some(member);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ows_is_space_and_tab_only() {
        assert_eq!(trim_ows(" \t a b \t "), "a b");
        assert_eq!(trim_ows("\na\r"), "\na\r");
    }

    #[test]
    fn tokens() {
        assert!(is_token("abc-DEF_1.2~!#$%&'*+^`|"));
        for bad in [
            "", "a b", "a,b", "a;b", "a=b", "a\"b", "a(b", "a/b", "é", "a\tb", "a@b",
        ] {
            assert!(!is_token(bad), "{bad:?} must not be a token");
        }
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex_u128(b"ff", HexCase::Lower), Some(255));
        assert_eq!(parse_hex_u128(b"FF", HexCase::Lower), None);
        assert_eq!(parse_hex_u128(b"FF", HexCase::Any), Some(255));
        assert_eq!(parse_hex_u128(b"+f", HexCase::Any), None);
        assert_eq!(parse_hex_u128(b"", HexCase::Any), None);
        assert_eq!(parse_hex_u128(&[b'f'; 32], HexCase::Lower), Some(u128::MAX));
        assert_eq!(parse_hex_u128(&[b'f'; 33], HexCase::Lower), None);
        assert_eq!(parse_hex_u64(&[b'f'; 16], HexCase::Lower), Some(u64::MAX));
        assert_eq!(parse_hex_u64(&[b'0'; 17], HexCase::Lower), None);
        assert_eq!(parse_hex_u8(b"0a"), Some(10));
        assert_eq!(parse_hex_u8(b"0A"), None);
        assert_eq!(parse_hex_u8(b"a"), None);
    }

    #[test]
    fn percent_decoding() {
        assert!(matches!(
            percent_decode("plain+", false),
            Cow::Borrowed("plain+")
        ));
        assert_eq!(percent_decode("a%20b%2Cc%3d", false), "a b,c=");
        assert_eq!(
            percent_decode("%zz%4", false),
            "%zz%4",
            "malformed escapes stay as they are"
        );
        assert_eq!(percent_decode("%", false), "%");
        assert_eq!(percent_decode("%C3%A9", false), "é");
        assert_eq!(
            percent_decode("%FFa", false),
            "\u{FFFD}a",
            "invalid UTF-8 becomes U+FFFD"
        );
        assert_eq!(percent_decode("a+b%2B", true), "a b+");
    }

    #[test]
    fn percent_encoding_round_trips() {
        for s in ["", "a b", "100%", "x=y;z,w\\\"+", "é😊", "\u{0}\u{7f}"] {
            let mut out = String::new();
            percent_encode_into(s, is_baggage_value_safe, &mut out);
            assert!(out.bytes().all(is_baggage_octet), "{out:?}");
            assert_eq!(percent_decode(&out, false), s);
            let mut out = String::new();
            percent_encode_into(s, is_url_unreserved, &mut out);
            assert_eq!(percent_decode(&out, true), s);
        }
        let mut out = String::new();
        percent_encode_into("a b%", is_baggage_value_safe, &mut out);
        assert_eq!(out, "a%20b%25");
    }

    #[test]
    fn list_members() {
        fn all<'a>(values: &[&'a str], max: usize) -> Vec<&'a str> {
            ListMembers::new(values, max).collect()
        }
        assert_eq!(all(&["a=1, b=2", "", " ,c=3,"], 100), ["a=1", "b=2", "c=3"]);
        assert_eq!(
            all(&["a=1,b=2"], 4),
            ["a=1"],
            "member past the limit dropped"
        );
        assert_eq!(all(&["a=1,b=2"], 6), ["a=1"], "b=2 needs 3 more bytes");
        assert_eq!(all(&["a=1,b=2"], 7), ["a=1", "b=2"]);
        assert_eq!(
            all(&["a=1", "b=2"], 6),
            ["a=1"],
            "fields are joined with a comma"
        );
        assert_eq!(all(&["a=1", "b=2"], 7), ["a=1", "b=2"]);
        assert_eq!(all(&[&" ".repeat(1 << 20), "a=1"], 100), Vec::<&str>::new());
    }
}
