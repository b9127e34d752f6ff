//! The W3C `tracestate` list: parsing with the Level 2 rules, validation of single members and
//! the size limit applied before a list is kept or sent.

use super::syntax::ListMembers;

/// Most list members a `tracestate` may have; a list with more is discarded whole.
pub(crate) const MAX_MEMBERS: usize = 32;
/// Longest simple key (`[a-z0-9][a-z0-9_\-*/]{0,255}`).
const MAX_KEY_LEN: usize = 256;
/// Longest tenant part of a multi-tenant key (`tenant@system`).
const MAX_TENANT_LEN: usize = 241;
/// Longest system part of a multi-tenant key.
const MAX_SYSTEM_LEN: usize = 14;
/// Longest value.
const MAX_VALUE_LEN: usize = 256;
/// Bytes of the combined header looked at: room for 32 members of the longest key and value
/// with a separator and two characters of optional whitespace each. List members that end
/// beyond it are dropped, as a truncation from the end of the list (which the specification
/// allows); nothing after it is read.
pub(crate) const MAX_SCAN_LEN: usize = MAX_MEMBERS * (MAX_KEY_LEN + 1 + MAX_VALUE_LEN + 3);
/// Longest `tracestate` kept and propagated, commas included: the 512 characters every vendor
/// SHOULD propagate. Longer lists are truncated as the specification says: whole members,
/// members longer than [`LARGE_MEMBER_LEN`] first, then members from the end.
pub(crate) const MAX_PROPAGATED_LEN: usize = 512;
/// Members longer than this (`key=value`) are the first to go when a list is truncated.
pub(crate) const LARGE_MEMBER_LEN: usize = 128;

/// Why a received `tracestate` was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// A non-empty list member without `=`.
    MissingEquals,
    /// A key that breaks the key grammar or its length limits.
    Key,
    /// A value that breaks the value grammar or its length limit.
    Value,
    /// More than [`MAX_MEMBERS`] non-empty list members.
    TooManyMembers,
    /// The same key twice.
    DuplicateKey,
}

fn is_key_first(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

/// Whether `key` is a `tracestate` key: a simple key `[a-z0-9][a-z0-9_\-*/]{0,255}`, or a
/// multi-tenant key `tenant@system` with a tenant `[a-z0-9][a-z0-9_\-*/]{0,240}` and a system
/// `[a-z][a-z0-9_\-*/]{0,13}`.
pub(crate) fn is_valid_key(key: &str) -> bool {
    let (id, max_len) = match key.split_once('@') {
        Some((tenant, system)) => {
            let system_ok = system.len() <= MAX_SYSTEM_LEN
                && system
                    .as_bytes()
                    .split_first()
                    .is_some_and(|(first, rest)| {
                        first.is_ascii_lowercase() && rest.iter().all(|&b| is_key_char(b))
                    });
            if !system_ok {
                return false;
            }
            (tenant, MAX_TENANT_LEN)
        }
        None => (key, MAX_KEY_LEN),
    };
    id.len() <= max_len
        && id.as_bytes().split_first().is_some_and(|(first, rest)| {
            is_key_first(*first) && rest.iter().all(|&b| is_key_char(b))
        })
}

/// Whether `value` is a `tracestate` value: 1 to 256 printable ASCII characters
/// (`0x20..=0x7E`) other than `,` and `=`, the last one not a space.
pub(crate) fn is_valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_VALUE_LEN
        && bytes
            .iter()
            .all(|&b| (0x20..=0x7E).contains(&b) && b != b',' && b != b'=')
        && bytes.last() != Some(&b' ')
}

/// Parses the `tracestate` header values (several header fields are one list, joined with
/// commas in order) into its members, borrowed from the input.
///
/// Empty and whitespace-only list members are skipped; whitespace around members is ignored;
/// any invalid member, a duplicate key or more than 32 members discards the whole list. At
/// most [`MAX_SCAN_LEN`] bytes are read; the kept list is then cut to
/// [`MAX_PROPAGATED_LEN`] characters.
pub(crate) fn parse<'a>(values: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, Invalid> {
    let mut members: Vec<(&'a str, &'a str)> = Vec::new();
    for member in ListMembers::new(values, MAX_SCAN_LEN) {
        if members.len() == MAX_MEMBERS {
            return Err(Invalid::TooManyMembers);
        }
        let (key, value) = member.split_once('=').ok_or(Invalid::MissingEquals)?;
        if !is_valid_key(key) {
            return Err(Invalid::Key);
        }
        if !is_valid_value(value) {
            return Err(Invalid::Value);
        }
        if members.iter().any(|(seen, _)| *seen == key) {
            return Err(Invalid::DuplicateKey);
        }
        members.push((key, value));
    }
    truncate(&mut members);
    Ok(members)
}

fn member_len(member: &(&str, &str)) -> usize {
    member.0.len() + 1 + member.1.len()
}

/// Length of the members written as `k=v,k=v`.
pub(crate) fn header_len(members: &[(&str, &str)]) -> usize {
    members.iter().map(member_len).sum::<usize>() + members.len().saturating_sub(1)
}

/// Cuts `members` to at most [`MAX_PROPAGATED_LEN`] characters when written, removing whole
/// members: first those longer than [`LARGE_MEMBER_LEN`] (from the end), then from the end.
pub(crate) fn truncate(members: &mut Vec<(&str, &str)>) {
    let mut len = header_len(members);
    while len > MAX_PROPAGATED_LEN {
        match members
            .iter()
            .rposition(|m| member_len(m) > LARGE_MEMBER_LEN)
        {
            Some(large) => {
                members.remove(large);
            }
            None => {
                members.pop();
            }
        }
        len = header_len(members);
    }
}

/// Writes `members` as a header value.
pub(crate) fn write_header(members: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(header_len(members));
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let simple_max = "z".repeat(256);
        let simple_over = "z".repeat(257);
        let tenant_max = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        let tenant_over = format!("{}@v", "t".repeat(242));
        let system_over = format!("t@{}", "v".repeat(15));
        #[rustfmt::skip]
        let rows: &[(&str, bool, &str)] = &[
            ("foo", true, "lower-case letters"),
            ("0foo", true, "Level 2: a key may start with a digit"),
            ("abcdefghijklmnopqrstuvwxyz0123456789_-*/", true, "every allowed character"),
            ("abcdefghijklmnopqrstuvwxyz0123456789_-*/@a-z0-9_-*/", true, "multi-tenant, every allowed character"),
            (&simple_max, true, "256-character simple key"),
            (&tenant_max, true, "241-character tenant, 14-character system"),
            ("1tenant@sys", true, "tenant may start with a digit"),
            ("", false, "empty key"),
            (&simple_over, false, "257-character simple key"),
            (&tenant_over, false, "242-character tenant"),
            (&system_over, false, "15-character system"),
            ("FOO", false, "upper case"),
            ("foo ", false, "space inside the key"),
            ("foo.bar", false, "'.' is not allowed"),
            ("_foo", false, "must start with a letter or digit"),
            ("foo@", false, "empty system"),
            ("@foo", false, "empty tenant"),
            ("foo@@bar", false, "two '@'"),
            ("foo@bar@baz", false, "two '@'"),
            ("foo@1bar", false, "system must start with a letter"),
            ("fóo", false, "non-ASCII"),
        ];
        for (key, valid, why) in rows {
            assert_eq!(is_valid_key(key), *valid, "{why}: {key:?}");
        }
    }

    #[test]
    fn values() {
        let all: String = (0x20u8..=0x7E)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect();
        let max = "v".repeat(256);
        let over = "v".repeat(257);
        #[rustfmt::skip]
        let rows: &[(&str, bool, &str)] = &[
            ("1", true, "one character"),
            (&all, true, "every allowed character, leading space kept"),
            (" x", true, "leading space is part of the value"),
            (&max, true, "256 characters"),
            ("", false, "empty value"),
            (&over, false, "257 characters"),
            ("x ", false, "trailing space"),
            ("a=b", false, "'='"),
            ("a,b", false, "','"),
            ("a\tb", false, "tab"),
            ("a\u{7f}", false, "DEL"),
            ("é", false, "non-ASCII"),
        ];
        for (value, valid, why) in rows {
            assert_eq!(is_valid_value(value), *valid, "{why}: {value:?}");
        }
    }

    #[test]
    fn lists() {
        #[rustfmt::skip]
        let rows: &[(&[&str], Result<&[(&str, &str)], Invalid>, &str)] = &[
            (&["foo=1,bar=2"], Ok(&[("foo", "1"), ("bar", "2")]), "two members"),
            (&["foo=1", "bar=2"], Ok(&[("foo", "1"), ("bar", "2")]), "two fields are one list"),
            (&[""], Ok(&[]), "empty header"),
            (&["foo=1", ""], Ok(&[("foo", "1")]), "empty second field"),
            (&["", "foo=1"], Ok(&[("foo", "1")]), "empty first field"),
            (&["foo=1,,bar=2"], Ok(&[("foo", "1"), ("bar", "2")]), "empty member"),
            (&[" , \t,foo=1, "], Ok(&[("foo", "1")]), "whitespace-only members"),
            (&["foo=1 \t , \t bar=2"], Ok(&[("foo", "1"), ("bar", "2")]), "OWS around members"),
            (&["foo= 1"], Ok(&[("foo", " 1")]), "leading space of a value kept"),
            (&["foo"], Err(Invalid::MissingEquals), "member without '='"),
            (&["foo =1"], Err(Invalid::Key), "space before '='"),
            (&["foo=bar=baz"], Err(Invalid::Value), "'=' in value"),
            (&["foo=,bar=3"], Err(Invalid::Value), "empty value"),
            (&["foo=1,foo=1"], Err(Invalid::DuplicateKey), "duplicate key"),
            (&["foo=1", "foo=2"], Err(Invalid::DuplicateKey), "duplicate key across fields"),
            (&["foo@=1,bar=2"], Err(Invalid::Key), "bad vendor format"),
        ];
        for (values, expected, why) in rows {
            let got = parse(values);
            assert_eq!(
                got.as_deref().map_err(|e| *e),
                *expected,
                "{why}: {values:?}"
            );
        }
    }

    #[test]
    fn member_count_limit() {
        let members: Vec<String> = (1..=33).map(|i| format!("k{i}={i}")).collect();
        assert_eq!(parse(&[&members[..32].join(",")]).map(|m| m.len()), Ok(32));
        assert_eq!(parse(&[&members.join(",")]), Err(Invalid::TooManyMembers));
        let with_empties = format!("{},,, ,", members[..32].join(",,"));
        assert_eq!(
            parse(&[&with_empties]).map(|m| m.len()),
            Ok(32),
            "empty members do not count"
        );
    }

    #[test]
    fn truncation_drops_large_members_first_then_from_the_end() {
        let large = format!("big={}", "x".repeat(200));
        let small: Vec<String> = (0..20)
            .map(|i| format!("key{i:02}={}", "v".repeat(20)))
            .collect();
        // 20 small members of 26 characters: 20 * 26 + 19 = 539 characters, plus the large one.
        let mut list = vec![large.clone()];
        list.extend(small.iter().cloned());
        let header = list.join(",");
        let members = parse(&[&header]).expect("valid list");
        assert!(
            members.iter().all(|(k, _)| *k != "big"),
            "large member removed first"
        );
        assert_eq!(members.len(), 19, "then members from the end");
        assert_eq!(members[0].0, "key00");
        assert_eq!(members[18].0, "key18");
        assert!(header_len(&members) <= MAX_PROPAGATED_LEN);
    }

    #[test]
    fn scan_window_bounds_work() {
        // One huge run of whitespace: nothing after the window is read, nothing is kept.
        let hostile = format!("foo=1,{}", " ".repeat(10 * MAX_SCAN_LEN));
        assert_eq!(parse(&[&hostile]), Ok(vec![("foo", "1")]));
        let hostile = format!("{}foo=1", ",".repeat(MAX_SCAN_LEN));
        assert_eq!(
            parse(&[&hostile]),
            Ok(vec![]),
            "member past the window dropped"
        );
    }

    #[test]
    fn writes_header() {
        assert_eq!(write_header(&[("a", "1"), ("b@c", " 2")]), "a=1,b@c= 2");
        assert_eq!(write_header(&[]), "");
    }
}
