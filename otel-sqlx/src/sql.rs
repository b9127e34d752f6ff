//! SQL text helpers: literal removal ([`obfuscate`]) and a statement summary ([`summarize`]).
//!
//! Both are pure functions over `&str`, written for untrusted input:
//!
//! - they never panic, whatever the bytes;
//! - they look at no more than the first [`MAX_QUERY_TEXT_BYTES`] (obfuscation) or
//!   [`MAX_SUMMARY_SCAN_BYTES`] (summary) bytes of a statement, so cost is bounded;
//! - [`obfuscate`] allocates one `String` no longer than the part of the input it scanned
//!   plus a few bytes; [`summarize`] allocates only when a table name was written with quotes.
//!
//! The lexer understands the quoting rules of the three supported dialects (see [`Dialect`]):
//! single-quoted strings with `''` escapes, backslash escapes where the server applies them
//! (MySQL strings, PostgreSQL `E'…'` strings), PostgreSQL dollar-quoted strings (`$$…$$`,
//! `$tag$…$tag$`), MySQL double-quoted strings, quoted identifiers (`"…"`, `` `…` ``,
//! SQLite `[…]`), nested PostgreSQL block comments, and bind parameters (`$1`, `?`, `?1`,
//! `:name`, `@name`), which are kept because they carry no data.
//!
//! ```
//! use otel_sqlx::sql::{Dialect, obfuscate, summarize};
//!
//! let sql = "SELECT * FROM orders WHERE customer = 'ada@example.com' AND total > 100";
//! assert_eq!(
//!     obfuscate(sql, Dialect::MySql),
//!     "SELECT * FROM orders WHERE customer = ? AND total > ?",
//! );
//! let summary = summarize(sql, Dialect::MySql);
//! assert_eq!(summary.operation, Some("SELECT"));
//! assert_eq!(summary.collection.as_deref(), Some("orders"));
//! ```

use std::borrow::Cow;

/// At most this many bytes of a statement are obfuscated and recorded; the rest is cut off
/// (at a character boundary). A literal cut in two is still replaced by `?`.
///
/// ```
/// use otel_sqlx::sql::{Dialect, MAX_QUERY_TEXT_BYTES, obfuscate};
///
/// let huge = format!("SELECT {}", "x, ".repeat(10_000));
/// assert!(obfuscate(&huge, Dialect::Postgres).len() <= MAX_QUERY_TEXT_BYTES);
/// ```
pub const MAX_QUERY_TEXT_BYTES: usize = 16 * 1024;

/// At most this many bytes of a statement are scanned to find its operation and table.
///
/// ```
/// use otel_sqlx::sql::{Dialect, MAX_SUMMARY_SCAN_BYTES, summarize};
///
/// // The table comes after the scanned prefix: only the operation is known.
/// let sql = format!(
///     "SELECT {} 1 FROM users",
///     "c, ".repeat(MAX_SUMMARY_SCAN_BYTES)
/// );
/// let summary = summarize(&sql, Dialect::Postgres);
/// assert_eq!(summary.operation, Some("SELECT"));
/// assert_eq!(summary.collection, None);
/// ```
pub const MAX_SUMMARY_SCAN_BYTES: usize = 4 * 1024;

/// A table name longer than this is not reported (it is almost certainly not a table name).
const MAX_COLLECTION_BYTES: usize = 256;

/// The SQL dialect whose quoting rules apply to a statement.
///
/// ```
/// use otel_sqlx::sql::{Dialect, obfuscate};
///
/// // `"…"` is an identifier in PostgreSQL but a string in MySQL.
/// let sql = r#"SELECT "name" FROM users"#;
/// assert_eq!(obfuscate(sql, Dialect::Postgres), sql);
/// assert_eq!(obfuscate(sql, Dialect::MySql), "SELECT ? FROM users");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL: `"…"` is an identifier, `'…'` is a string without backslash escapes
    /// (`standard_conforming_strings = on`, the default since 9.1) unless written `E'…'`;
    /// `$$…$$` and `$tag$…$tag$` are strings; `$1` is a parameter; `/* */` comments nest.
    Postgres,
    /// MySQL and MariaDB: `'…'` and `"…"` are strings with backslash escapes, `` `…` `` is an
    /// identifier, `#` starts a comment, `?` is a parameter.
    MySql,
    /// SQLite: `"…"`, `` `…` `` and `[…]` are identifiers, `'…'` is a string without
    /// backslash escapes; `?`, `?NNN`, `:name`, `@name` and `$name` are parameters.
    Sqlite,
}

/// What [`summarize`] found out about a statement.
///
/// ```
/// use otel_sqlx::sql::{Dialect, Summary, summarize};
///
/// let summary = summarize(
///     "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
///     Dialect::Postgres,
/// );
/// assert_eq!(
///     summary,
///     Summary {
///         operation: Some("UPDATE"),
///         collection: Some("accounts".into())
///     }
/// );
/// // Several statements: nothing is claimed.
/// assert_eq!(
///     summarize("DELETE FROM a; DELETE FROM b", Dialect::Postgres),
///     Summary::default()
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary<'a> {
    /// The operation (upper-case SQL keyword such as `SELECT`), when the statement is a single
    /// statement whose first keyword is a known one. For `WITH … SELECT` it is the main
    /// statement's keyword.
    pub operation: Option<&'static str>,
    /// The first table the statement reads or writes (`FROM`, `INTO`, `UPDATE`, `TABLE`,
    /// `JOIN`, `CREATE INDEX … ON`), as written but without identifier quotes; a qualified
    /// name keeps its qualifiers (`public.users`).
    pub collection: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// Spaces, tabs, newlines.
    Space,
    /// `-- …`, `# …` (MySQL) or `/* … */`.
    Comment,
    /// A bare word: keyword or unquoted identifier.
    Word,
    /// A quoted identifier (`"…"`, `` `…` ``, `[…]`).
    QuotedIdent,
    /// A literal that may carry data: string, number, hex/bit string, dollar-quoted string.
    Literal,
    /// A bind parameter: `$1`, `?`, `?1`, `:name`, `@name`, `$name`.
    Param,
    /// Any other single character (operators, punctuation).
    Punct(u8),
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8, dialect: Dialect) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 || (b == b'$' && dialect != Dialect::Sqlite)
}

/// Largest index `<= max` that is a char boundary of `s`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut i = max;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A tokenizer over the bytes of a statement. Token boundaries are always at ASCII bytes or
/// at the ends of the input, so every token is a valid `&str` slice.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    dialect: Dialect,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, dialect: Dialect) -> Self {
        Self {
            src,
            pos: 0,
            dialect,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn peek(&self, off: usize) -> Option<u8> {
        self.bytes().get(self.pos + off).copied()
    }

    /// Skips a quoted run starting at `self.pos` (which holds the opening quote) and ending at
    /// `close`; a doubled closing quote is an escaped one; `backslash` enables `\x` escapes.
    /// An unterminated run extends to the end of the input.
    fn skip_quoted(&mut self, close: u8, backslash: bool) {
        let bytes = self.bytes();
        let mut i = self.pos + 1;
        while i < bytes.len() {
            let b = bytes[i];
            if backslash && b == b'\\' {
                i += 2;
                continue;
            }
            if b == close {
                if bytes.get(i + 1) == Some(&close) {
                    i += 2;
                    continue;
                }
                self.pos = i + 1;
                return;
            }
            i += 1;
        }
        self.pos = bytes.len();
    }

    /// Skips a block comment starting at `self.pos` (`/*`). PostgreSQL comments nest.
    fn skip_block_comment(&mut self) {
        let bytes = self.bytes();
        let nest = self.dialect == Dialect::Postgres;
        let mut depth = 1usize;
        let mut i = self.pos + 2;
        while i < bytes.len() {
            if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    self.pos = i;
                    return;
                }
            } else if nest && bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                depth += 1;
                i += 2;
            } else {
                i += 1;
            }
        }
        self.pos = bytes.len();
    }

    fn skip_line(&mut self) {
        let bytes = self.bytes();
        let mut i = self.pos;
        while i < bytes.len() && bytes[i] != b'\n' {
            i += 1;
        }
        self.pos = i;
    }

    fn skip_while(&mut self, f: impl Fn(u8) -> bool) {
        let bytes = self.bytes();
        while self.pos < bytes.len() && f(bytes[self.pos]) {
            self.pos += 1;
        }
    }

    /// At a `$` in PostgreSQL: a dollar-quote opening tag (`$$` or `$tag$`) returns the tag
    /// length including both `$`.
    fn dollar_tag_len(&self) -> Option<usize> {
        let bytes = self.bytes();
        let mut i = self.pos + 1;
        if bytes.get(i) == Some(&b'$') {
            return Some(2);
        }
        if !bytes.get(i).is_some_and(|&b| is_ident_start(b)) {
            return None;
        }
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'$' {
                return Some(i + 1 - self.pos);
            }
            if !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80) {
                return None;
            }
            i += 1;
        }
        None
    }

    /// Skips a number (`12`, `1.5`, `.5`, `1e-3`, `0x1F`, `0b101`). If identifier characters
    /// follow directly (MySQL allows identifiers such as `1abc`), the whole run is a word.
    fn number(&mut self) -> Tok {
        let bytes = self.bytes();
        let start = self.pos;
        if bytes[start] == b'0'
            && matches!(bytes.get(start + 1), Some(b'x' | b'X' | b'b' | b'B'))
            && bytes.get(start + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            self.pos += 2;
            self.skip_while(|b| b.is_ascii_hexdigit());
        } else {
            self.skip_while(|b| b.is_ascii_digit());
            if self.peek(0) == Some(b'.') {
                self.pos += 1;
                self.skip_while(|b| b.is_ascii_digit());
            }
            if matches!(self.peek(0), Some(b'e' | b'E')) {
                let sign = usize::from(matches!(self.peek(1), Some(b'+' | b'-')));
                if self.peek(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1 + sign;
                    self.skip_while(|b| b.is_ascii_digit());
                }
            }
        }
        let dialect = self.dialect;
        if self
            .peek(0)
            .is_some_and(|b| is_ident_char(b, dialect) && b != b'$')
        {
            self.skip_while(|b| is_ident_char(b, dialect));
            return Tok::Word;
        }
        Tok::Literal
    }

    /// Returns the next token and its text, or `None` at the end of the input.
    fn next_token(&mut self) -> Option<(Tok, &'a str)> {
        let bytes = self.bytes();
        let start = self.pos;
        let &b = bytes.get(start)?;
        let dialect = self.dialect;
        let tok = match b {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b' => {
                self.skip_while(|b| b.is_ascii_whitespace() || b == b'\x0b');
                Tok::Space
            }
            b'-' if self.peek(1) == Some(b'-') => {
                self.skip_line();
                Tok::Comment
            }
            b'#' if dialect == Dialect::MySql => {
                self.skip_line();
                Tok::Comment
            }
            b'/' if self.peek(1) == Some(b'*') => {
                self.skip_block_comment();
                Tok::Comment
            }
            b'\'' => {
                self.skip_quoted(b'\'', dialect == Dialect::MySql);
                Tok::Literal
            }
            b'"' if dialect == Dialect::MySql => {
                self.skip_quoted(b'"', true);
                Tok::Literal
            }
            b'"' => {
                self.skip_quoted(b'"', false);
                Tok::QuotedIdent
            }
            b'`' if dialect != Dialect::Postgres => {
                self.skip_quoted(b'`', false);
                Tok::QuotedIdent
            }
            b'[' if dialect == Dialect::Sqlite => {
                // `[name]` has no escape: it ends at the first `]`.
                match bytes[start..].iter().position(|&c| c == b']') {
                    Some(end) => self.pos = start + end + 1,
                    None => self.pos = bytes.len(),
                }
                Tok::QuotedIdent
            }
            // String-literal prefixes: E'…' (escapes), B'…', X'…', N'…', U&'…'.
            b'e' | b'E' | b'b' | b'B' | b'x' | b'X' | b'n' | b'N'
                if self.peek(1) == Some(b'\'') =>
            {
                self.pos += 1;
                let backslash = dialect == Dialect::MySql
                    || (dialect == Dialect::Postgres && (b | 0x20) == b'e');
                self.skip_quoted(b'\'', backslash);
                Tok::Literal
            }
            b'u' | b'U' if self.peek(1) == Some(b'&') && self.peek(2) == Some(b'\'') => {
                self.pos += 2;
                self.skip_quoted(b'\'', false);
                Tok::Literal
            }
            b'0'..=b'9' => self.number(),
            b'.' if self.peek(1).is_some_and(|b| b.is_ascii_digit()) => self.number(),
            b'$' if dialect == Dialect::Postgres => {
                if self.peek(1).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                    self.skip_while(|b| b.is_ascii_digit());
                    Tok::Param
                } else if let Some(tag_len) = self.dollar_tag_len() {
                    let tag = &bytes[start..start + tag_len];
                    let body = start + tag_len;
                    self.pos = bytes[body..]
                        .windows(tag_len)
                        .position(|w| w == tag)
                        .map_or(bytes.len(), |p| body + p + tag_len);
                    Tok::Literal
                } else {
                    self.pos += 1;
                    Tok::Punct(b'$')
                }
            }
            b'?' => {
                self.pos += 1;
                if dialect == Dialect::Sqlite {
                    self.skip_while(|b| b.is_ascii_digit());
                }
                Tok::Param
            }
            b'$' | b':' | b'@'
                if self.peek(1).is_some_and(|n| {
                    is_ident_start(n)
                        || (b == b'$' && dialect == Dialect::Sqlite && n.is_ascii_digit())
                }) =>
            {
                // `:name` / `@name` / SQLite `$name` parameters, MySQL `@var` user variables.
                // `::` (PostgreSQL cast) never reaches here: the next byte is not a letter.
                self.pos += 1;
                self.skip_while(|b| is_ident_char(b, dialect));
                Tok::Param
            }
            b if is_ident_start(b) => {
                self.skip_while(|b| is_ident_char(b, dialect));
                Tok::Word
            }
            _ => {
                self.pos += 1;
                Tok::Punct(b)
            }
        };
        // `self.pos` only ever stops at ASCII bytes or the end, so this slice cannot fail; the
        // fallback keeps the function panic-free regardless.
        let text = self.src.get(start..self.pos).unwrap_or("");
        Some((tok, text))
    }
}

/// Replaces every literal that may carry user data with `?`.
///
/// Strings (including prefixed, escaped and dollar-quoted ones), numbers, and hex/bit
/// literals become `?`; comments are removed (each becomes one space); a list after `IN`
/// that holds only literals and parameters collapses to `IN (?)`. Identifiers, keywords,
/// operators, whitespace and bind parameters are kept as written. Only the first
/// [`MAX_QUERY_TEXT_BYTES`] bytes are scanned and returned.
///
/// ```
/// use otel_sqlx::sql::{Dialect, obfuscate};
/// assert_eq!(
///     obfuscate(
///         "SELECT * FROM users WHERE name = 'O''Brien' AND id IN (1, 2, 3)",
///         Dialect::Postgres
///     ),
///     "SELECT * FROM users WHERE name = ? AND id IN (?)",
/// );
/// ```
pub fn obfuscate(sql: &str, dialect: Dialect) -> String {
    let scanned = &sql[..floor_char_boundary(sql, MAX_QUERY_TEXT_BYTES)];
    let mut out = String::with_capacity(scanned.len() + 4);
    let mut lexer = Lexer::new(scanned, dialect);
    // Last significant token was the keyword `IN`.
    let mut after_in = false;
    // Output position of the `(` of an `IN (…)` list that so far holds only `?`, `,` and
    // spaces, and whether a `?` was seen.
    let mut in_list: Option<(usize, bool)> = None;
    while let Some((tok, text)) = lexer.next_token() {
        match tok {
            Tok::Space => out.push_str(text),
            Tok::Comment => {
                if !out.ends_with(|c: char| c.is_ascii_whitespace()) {
                    out.push(' ');
                }
            }
            Tok::Literal | Tok::Param => {
                if tok == Tok::Literal {
                    out.push('?');
                } else {
                    out.push_str(text);
                }
                match &mut in_list {
                    Some((_, seen)) if text == "?" || tok == Tok::Literal => *seen = true,
                    _ => in_list = None,
                }
                after_in = false;
            }
            Tok::Punct(b'(') if after_in => {
                in_list = Some((out.len(), false));
                out.push('(');
                after_in = false;
            }
            Tok::Punct(b',') => {
                out.push(',');
                after_in = false;
            }
            Tok::Punct(b')') => {
                match in_list.take() {
                    Some((start, true)) => {
                        out.truncate(start);
                        out.push_str("(?)");
                    }
                    _ => out.push(')'),
                }
                after_in = false;
            }
            Tok::Word | Tok::QuotedIdent | Tok::Punct(_) => {
                out.push_str(text);
                in_list = None;
                after_in = tok == Tok::Word && text.eq_ignore_ascii_case("IN");
            }
        }
    }
    out
}

/// Known first keywords, mapped to the `db.operation.name` they report.
const OPERATIONS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "REPLACE",
    "UPSERT",
    "CREATE",
    "ALTER",
    "DROP",
    "TRUNCATE",
    "BEGIN",
    "START",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE",
    "CALL",
    "EXEC",
    "EXECUTE",
    "EXPLAIN",
    "SET",
    "SHOW",
    "PRAGMA",
    "VACUUM",
    "ANALYZE",
    "GRANT",
    "REVOKE",
    "LOCK",
    "COPY",
    "VALUES",
    "DO",
    "USE",
    "DESCRIBE",
    "LISTEN",
    "NOTIFY",
    "PREPARE",
    "DEALLOCATE",
    "REFRESH",
    "REINDEX",
    "CLUSTER",
    "COMMENT",
    "ATTACH",
    "DETACH",
];

fn operation_of(word: &str) -> Option<&'static str> {
    OPERATIONS
        .iter()
        .copied()
        .find(|op| op.eq_ignore_ascii_case(word))
}

/// Words that may sit between a table-introducing keyword and the table name.
const MODIFIERS: &[&str] = &[
    "IF",
    "NOT",
    "EXISTS",
    "ONLY",
    "IGNORE",
    "LOW_PRIORITY",
    "DELAYED",
    "HIGH_PRIORITY",
    "QUICK",
    "OR",
    "ROLLBACK",
    "ABORT",
    "FAIL",
    "REPLACE",
    "LATERAL",
];

/// Words after which a table name may follow, per operation.
fn introduces_table(op: &str, word: &str) -> bool {
    let is = |k: &str| word.eq_ignore_ascii_case(k);
    match op {
        "SELECT" | "DELETE" => is("FROM") || is("JOIN"),
        "INSERT" | "REPLACE" | "MERGE" | "UPSERT" => is("INTO"),
        "UPDATE" => is("UPDATE"),
        "CREATE" => is("TABLE") || is("ON"),
        "ALTER" | "DROP" => is("TABLE"),
        "TRUNCATE" => is("TRUNCATE") || is("TABLE"),
        "COPY" => is("COPY"),
        _ => false,
    }
}

/// Reads the operation and first table of a statement.
///
/// Statements holding several `;`-separated statements report neither. Only the first
/// [`MAX_SUMMARY_SCAN_BYTES`] bytes are scanned.
///
/// ```
/// use otel_sqlx::sql::{Dialect, summarize};
/// let s = summarize(
///     "select id from public.\"Users\" where id = $1",
///     Dialect::Postgres,
/// );
/// assert_eq!(s.operation, Some("SELECT"));
/// assert_eq!(s.collection.as_deref(), Some("public.Users"));
/// ```
pub fn summarize(sql: &str, dialect: Dialect) -> Summary<'_> {
    let scanned = &sql[..floor_char_boundary(sql, MAX_SUMMARY_SCAN_BYTES)];
    let mut lexer = Lexer::new(scanned, dialect);
    let mut significant = std::iter::from_fn(move || {
        loop {
            match lexer.next_token()? {
                (Tok::Space | Tok::Comment, _) => {}
                t => return Some(t),
            }
        }
    })
    .peekable();

    let mut depth = 0usize;
    let mut operation: Option<&'static str> = None;
    let mut collection: Option<Cow<'_, str>> = None;
    let mut in_with = false;
    let mut want_table = false;
    let mut first = true;
    while let Some((tok, text)) = significant.next() {
        if first {
            if tok == Tok::Punct(b'(') {
                // `(SELECT …) UNION …`: look inside the parentheses.
                continue;
            }
            first = false;
            if tok != Tok::Word {
                return Summary::default();
            }
            if text.eq_ignore_ascii_case("WITH") {
                in_with = true;
                continue;
            }
            operation = operation_of(text);
            if operation.is_none() {
                return Summary::default();
            }
            if let Some(op) = operation {
                want_table = introduces_table(op, text);
            }
            continue;
        }
        match tok {
            Tok::Punct(b'(') => {
                depth += 1;
                want_table = false;
            }
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            Tok::Punct(b';') if depth == 0 => {
                // A second statement follows: no single operation or table to report.
                if significant.next().is_some() {
                    return Summary::default();
                }
                break;
            }
            Tok::Word if depth == 0 && in_with && operation.is_none() => {
                if let Some(op) = operation_of(text)
                    && matches!(op, "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE")
                {
                    operation = Some(op);
                    want_table = introduces_table(op, text);
                }
            }
            Tok::Word | Tok::QuotedIdent if want_table && collection.is_none() => {
                if tok == Tok::Word && MODIFIERS.iter().any(|m| m.eq_ignore_ascii_case(text)) {
                    continue;
                }
                if tok == Tok::Word && operation_of(text).is_some() {
                    // `FROM SELECT`-like oddities, `INSERT INTO … SELECT`: not a table.
                    want_table = false;
                    continue;
                }
                collection = read_qualified_name(tok, text, &mut significant);
                want_table = false;
            }
            Tok::Word if depth == 0 && collection.is_none() => {
                if let Some(op) = operation {
                    want_table = introduces_table(op, text);
                }
            }
            _ => want_table = false,
        }
    }
    if operation.is_none() {
        collection = None;
    }
    Summary {
        operation,
        collection,
    }
}

/// Reads `a`, `a.b`, `"a"."b"` starting with the token already taken; strips identifier quotes.
fn read_qualified_name<'a, I: Iterator<Item = (Tok, &'a str)>>(
    first_tok: Tok,
    first_text: &'a str,
    tokens: &mut std::iter::Peekable<I>,
) -> Option<Cow<'a, str>> {
    let mut parts: Cow<'a, str> = unquote(first_tok, first_text);
    while let Some(&(Tok::Punct(b'.'), _)) = tokens.peek() {
        tokens.next();
        match tokens.next() {
            Some((t @ (Tok::Word | Tok::QuotedIdent), text)) => {
                let part = unquote(t, text);
                let owned = parts.to_mut();
                owned.push('.');
                owned.push_str(&part);
            }
            _ => break,
        }
        if parts.len() > MAX_COLLECTION_BYTES {
            return None;
        }
    }
    if parts.is_empty() || parts.len() > MAX_COLLECTION_BYTES {
        return None;
    }
    Some(parts)
}

fn unquote(tok: Tok, text: &str) -> Cow<'_, str> {
    if tok != Tok::QuotedIdent || text.len() < 2 {
        return Cow::Borrowed(text);
    }
    let (open, close) = match text.as_bytes()[0] {
        b'[' => ("[", "]"),
        b'`' => ("`", "`"),
        _ => ("\"", "\""),
    };
    let inner = text
        .strip_prefix(open)
        .and_then(|t| t.strip_suffix(close))
        .unwrap_or(text);
    if open != "[" && inner.contains(close) {
        let doubled = format!("{close}{close}");
        Cow::Owned(inner.replace(&doubled, close))
    } else {
        Cow::Borrowed(inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pg(sql: &str) -> String {
        obfuscate(sql, Dialect::Postgres)
    }
    fn my(sql: &str) -> String {
        obfuscate(sql, Dialect::MySql)
    }
    fn lite(sql: &str) -> String {
        obfuscate(sql, Dialect::Sqlite)
    }

    #[test]
    fn replaces_strings_and_numbers() {
        assert_eq!(
            pg("SELECT * FROM t WHERE a = 'x' AND b = 42 AND c = 1.5e3 AND d = -7"),
            "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = -?"
        );
        assert_eq!(pg("SELECT 'it''s'"), "SELECT ?");
        assert_eq!(pg("SELECT .5, 0x1F, 0b101"), "SELECT ?, ?, ?");
    }

    #[test]
    fn keeps_identifiers_with_digits_and_parameters() {
        assert_eq!(
            pg("SELECT t1.c2 FROM t1 WHERE id = $1 AND x = $2::int"),
            "SELECT t1.c2 FROM t1 WHERE id = $1 AND x = $2::int"
        );
        assert_eq!(
            lite(
                "SELECT * FROM t WHERE a = ?1 AND b = :b AND c = @c AND d = $d AND e = ? AND f = $1"
            ),
            "SELECT * FROM t WHERE a = ?1 AND b = :b AND c = @c AND d = $d AND e = ? AND f = $1"
        );
        assert_eq!(my("SELECT 1abc FROM t"), "SELECT 1abc FROM t");
    }

    #[test]
    fn dialect_quoting() {
        // PostgreSQL: backslash is literal in standard strings, an escape in E-strings.
        assert_eq!(pg(r"SELECT 'a\', 'b'"), "SELECT ?, ?");
        assert_eq!(pg(r"SELECT E'a\'b', 1"), "SELECT ?, ?");
        // MySQL: backslash escapes and double-quoted strings.
        assert_eq!(
            my(r#"SELECT 'a\'b', "c\"d", `col` FROM t"#),
            "SELECT ?, ?, `col` FROM t"
        );
        // Double quotes are identifiers in PostgreSQL and SQLite.
        assert_eq!(
            pg(r#"SELECT "Name" FROM "T""x""#),
            r#"SELECT "Name" FROM "T""x""#
        );
        assert_eq!(lite("SELECT [my col] FROM [t]"), "SELECT [my col] FROM [t]");
        assert_eq!(
            pg("SELECT X'1F', B'101', N'x', U&'d\\0061t'"),
            "SELECT ?, ?, ?, ?"
        );
    }

    #[test]
    fn dollar_quotes() {
        assert_eq!(pg("SELECT $$it's$$, $tag$a $$ b$tag$, 1"), "SELECT ?, ?, ?");
        assert_eq!(pg("SELECT $$unterminated"), "SELECT ?");
        // `$` inside identifiers is not a quote.
        assert_eq!(pg("SELECT a$b FROM t"), "SELECT a$b FROM t");
    }

    #[test]
    fn comments_are_removed() {
        assert_eq!(pg("SELECT 1 -- 'secret'\nFROM t"), "SELECT ? \nFROM t");
        assert_eq!(pg("SELECT /* a /* nested */ 'x' */ 2"), "SELECT  ?");
        assert_eq!(my("SELECT 2 # note\n"), "SELECT ? \n");
    }

    #[test]
    fn in_lists_collapse() {
        assert_eq!(
            pg("SELECT * FROM t WHERE id IN (1, 2, 3) AND n in ('a','b')"),
            "SELECT * FROM t WHERE id IN (?) AND n in (?)"
        );
        assert_eq!(
            my("SELECT * FROM t WHERE id IN (?, ?, ?)"),
            "SELECT * FROM t WHERE id IN (?)"
        );
        // Not a pure literal list: kept.
        assert_eq!(
            pg("SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE v = 1)"),
            "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE v = ?)"
        );
        assert_eq!(
            pg("SELECT * FROM t WHERE id IN ($1, $2)"),
            "SELECT * FROM t WHERE id IN ($1, $2)"
        );
    }

    #[test]
    fn unterminated_literals_swallow_the_rest() {
        assert_eq!(pg("SELECT 'abc"), "SELECT ?");
        assert_eq!(my("SELECT \"abc\\"), "SELECT ?");
        assert_eq!(lite("SELECT [abc"), "SELECT [abc");
    }

    #[test]
    fn bounded_length() {
        let long = format!("SELECT '{}'", "x".repeat(MAX_QUERY_TEXT_BYTES * 2));
        let out = pg(&long);
        assert_eq!(out, "SELECT ?");
        let long = format!("SELECT {}", "é".repeat(MAX_QUERY_TEXT_BYTES));
        let out = pg(&long);
        assert!(out.len() <= MAX_QUERY_TEXT_BYTES);
    }

    fn summary(sql: &str, d: Dialect) -> (Option<&'static str>, Option<String>) {
        let s = summarize(sql, d);
        (s.operation, s.collection.map(Cow::into_owned))
    }

    #[test]
    fn summaries() {
        let pgs = |s| summary(s, Dialect::Postgres);
        assert_eq!(pgs("SELECT 1"), (Some("SELECT"), None));
        assert_eq!(
            pgs("select * from users where id = $1"),
            (Some("SELECT"), Some("users".into()))
        );
        assert_eq!(
            pgs("SELECT a.x FROM public.accounts a JOIN tx t ON t.a = a.id"),
            (Some("SELECT"), Some("public.accounts".into()))
        );
        assert_eq!(
            pgs("INSERT INTO orders (a, b) VALUES ($1, $2)"),
            (Some("INSERT"), Some("orders".into()))
        );
        assert_eq!(
            pgs("UPDATE ONLY items SET a = 1"),
            (Some("UPDATE"), Some("items".into()))
        );
        assert_eq!(
            pgs("DELETE FROM \"Odd\"\"Name\" WHERE x"),
            (Some("DELETE"), Some("Odd\"Name".into()))
        );
        assert_eq!(
            pgs("CREATE TABLE IF NOT EXISTS t_1 (id int)"),
            (Some("CREATE"), Some("t_1".into()))
        );
        assert_eq!(
            pgs("DROP TABLE IF EXISTS t_2"),
            (Some("DROP"), Some("t_2".into()))
        );
        assert_eq!(
            pgs("CREATE INDEX i ON t3 (a)"),
            (Some("CREATE"), Some("t3".into()))
        );
        assert_eq!(pgs("TRUNCATE t4"), (Some("TRUNCATE"), Some("t4".into())));
        assert_eq!(
            pgs("WITH x AS (SELECT * FROM a) SELECT * FROM x"),
            (Some("SELECT"), Some("x".into()))
        );
        assert_eq!(
            pgs("WITH x AS (SELECT 1) INSERT INTO b SELECT * FROM x"),
            (Some("INSERT"), Some("b".into()))
        );
        assert_eq!(pgs("SELECT * FROM (SELECT 1) s"), (Some("SELECT"), None));
        assert_eq!(pgs("BEGIN"), (Some("BEGIN"), None));
        assert_eq!(pgs("  -- c\n /* d */ commit;"), (Some("COMMIT"), None));
        assert_eq!(pgs("SELECT 1; SELECT 2"), (None, None));
        assert_eq!(pgs("FROBNICATE t"), (None, None));
        assert_eq!(pgs(""), (None, None));
        assert_eq!(
            summary("INSERT OR REPLACE INTO [k v] VALUES (1)", Dialect::Sqlite),
            (Some("INSERT"), Some("k v".into()))
        );
        assert_eq!(
            summary("INSERT IGNORE INTO `db`.`t` VALUES (1)", Dialect::MySql),
            (Some("INSERT"), Some("db.t".into()))
        );
    }

    /// Renders `content` as a string literal of `dialect`, escaped as that server would need.
    fn render_literal(content: &str, style: u8, dialect: Dialect) -> String {
        match (dialect, style % 4) {
            (Dialect::Postgres, 1) => {
                format!("E'{}'", content.replace('\\', "\\\\").replace('\'', "\\'"))
            }
            (Dialect::Postgres, 2) if !content.contains('$') => format!("$q${content}$q$"),
            (Dialect::Postgres, 3) if !content.contains('$') => format!("$${content}$$"),
            (Dialect::MySql, 1) => {
                format!("\"{}\"", content.replace('\\', "\\\\").replace('"', "\\\""))
            }
            (Dialect::MySql, _) => {
                format!("'{}'", content.replace('\\', "\\\\").replace('\'', "''"))
            }
            _ => format!("'{}'", content.replace('\'', "''")),
        }
    }

    fn dialect() -> impl Strategy<Value = Dialect> {
        prop_oneof![
            Just(Dialect::Postgres),
            Just(Dialect::MySql),
            Just(Dialect::Sqlite)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_and_is_bounded(sql in any::<String>(), d in dialect()) {
            let out = obfuscate(&sql, d);
            prop_assert!(out.len() <= sql.len().min(MAX_QUERY_TEXT_BYTES) + 4);
            let _ = summarize(&sql, d);
        }

        #[test]
        fn never_panics_on_sql_like_bytes(
            sql in "[ a-zA-Z0-9_'\"`$\\\\()\\[\\],.;:?@#*/\\-\\n]{0,200}",
            d in dialect(),
        ) {
            let out = obfuscate(&sql, d);
            // Every literal was replaced: reading the output again finds none.
            let mut lexer = Lexer::new(&out, d);
            while let Some((tok, text)) = lexer.next_token() {
                prop_assert!(tok != Tok::Literal, "{:?} -> {:?} still has literal {:?}", sql, out, text);
            }
            let _ = summarize(&sql, d);
        }

        #[test]
        fn string_literals_never_get_through(
            content in "[a-zA-Z0-9 '\"\\\\$;:/*#\\-\\n()é]{0,40}",
            prefix in "(SELECT a FROM t WHERE b = |UPDATE t SET c = |INSERT INTO t VALUES \\(a, )",
            style in any::<u8>(),
            d in dialect(),
        ) {
            let literal = render_literal(&content, style, d);
            let secret = render_literal(&format!("SECRET{content}"), 0, d);
            let sql = format!("{prefix}{literal} AND x = {secret}");
            let expected = format!("{prefix}? AND x = ?");
            let out = obfuscate(&sql, d);
            prop_assert_eq!(&out, &expected, "sql: {}", sql);
            prop_assert!(!out.contains("SECRET"));
        }

        #[test]
        fn numbers_never_get_through(n in any::<i64>(), f in -1e300f64..1e300, d in dialect()) {
            let m = n.unsigned_abs();
            let sql = format!("SELECT * FROM t WHERE a = {n} AND b = {f:e} AND c IN ({m}, {m})");
            let out = obfuscate(&sql, d);
            prop_assert_eq!(out, format!(
                "SELECT * FROM t WHERE a = {}? AND b = {}? AND c IN (?)",
                if n < 0 { "-" } else { "" },
                if f.is_sign_negative() { "-" } else { "" },
            ));
        }
    }
}
