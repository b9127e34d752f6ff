//! SQL text helpers: literal removal ([`obfuscate`]) and a statement summary ([`summarize`]).
//!
//! Both are pure functions over `&str`, written for untrusted input:
//!
//! - they never panic, whatever the bytes;
//! - they look at no more than the first [`MAX_QUERY_TEXT_BYTES`] (obfuscation) or
//!   [`MAX_SUMMARY_SCAN_BYTES`] (summary) bytes of a statement, so cost is bounded;
//! - [`obfuscate`] allocates one `String` no longer than the part of the input it scanned
//!   plus a few bytes; [`summarize`] allocates the summary text when the statement names a
//!   table (at most 255 characters), a table name written with quotes, and the list of
//!   `WITH` names.
//!
//! The lexer understands the quoting rules of the three supported dialects (see [`Dialect`]):
//! single-quoted strings with `''` escapes, backslash escapes where the server applies them
//! (MySQL strings, PostgreSQL `E'…'` strings), PostgreSQL dollar-quoted strings (`$$…$$`,
//! `$tag$…$tag$`), MySQL double-quoted strings, SQLite double-quoted tokens (identifiers or
//! strings, see [`obfuscate`]), quoted identifiers (`"…"`, `` `…` ``, SQLite `[…]`), numbers
//! with digit separators and radix prefixes, nested PostgreSQL block comments, and bind
//! parameters (`$1`, `?`, `?1`, `:name`, `@name`), which are kept because they carry no data.
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
    /// SQLite: `` `…` `` and `[…]` are identifiers, `'…'` is a string without backslash
    /// escapes, `"…"` is an identifier unless no column has that name, in which case it is a
    /// string (so [`obfuscate`] replaces it except where only a name can stand); `?`, `?NNN`,
    /// `:name`, `@name` and `$name` are parameters.
    Sqlite,
}

/// What [`summarize`] found out about a statement.
///
/// ```
/// use otel_sqlx::sql::{Dialect, summarize};
///
/// let summary = summarize(
///     "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
///     Dialect::Postgres,
/// );
/// assert_eq!(summary.operation, Some("UPDATE"));
/// assert_eq!(summary.collection.as_deref(), Some("accounts"));
/// assert_eq!(summary.query_summary.as_deref(), Some("UPDATE accounts"));
///
/// // Two operations on two tables: the summary lists them, no single name is claimed.
/// let summary = summarize(
///     "INSERT INTO shipping_details (order_id) SELECT id FROM orders WHERE id = $1",
///     Dialect::Postgres,
/// );
/// assert_eq!(
///     summary.query_summary.as_deref(),
///     Some("INSERT shipping_details SELECT orders")
/// );
/// assert_eq!((summary.operation, summary.collection), (None, None));
/// assert_eq!(summary.statement, Some("INSERT"));
///
/// // Several statements: nothing is claimed.
/// assert_eq!(
///     summarize("DELETE FROM a; DELETE FROM b", Dialect::Postgres),
///     Default::default()
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Summary<'a> {
    /// `db.operation.name`: the operation (upper-case SQL keyword such as `SELECT`) when one
    /// operation describes the statement, i.e. every operation in it is the same keyword
    /// (`SELECT … WHERE id IN (SELECT …)` is `SELECT`; `INSERT … SELECT` has none).
    pub operation: Option<&'static str>,
    /// `db.collection.name`: the table the statement reads or writes, when it involves exactly
    /// one (`FROM`, `JOIN`, `INTO`, `UPDATE`, `USING`, `TABLE`, `CREATE INDEX … ON`), as written
    /// but without identifier quotes; a qualified name keeps its qualifiers (`public.users`).
    /// Names of common table expressions (`WITH x AS (…)`) are not tables.
    pub collection: Option<Cow<'a, str>>,
    /// `db.query.summary`: the operations and their tables in the order they appear
    /// (`SELECT songs artists`, `INSERT shipping_details SELECT orders`), at most 255
    /// characters, cut between words. Built from keywords and table names only, never from
    /// literals. `None` when no operation was recognized.
    pub query_summary: Option<Cow<'static, str>>,
    /// The keyword of the statement as a whole: its first keyword, or for `WITH … INSERT …`
    /// the main statement's. Unlike [`operation`](Self::operation) it is set whatever the
    /// statement holds: `INSERT` for `INSERT … SELECT`.
    pub statement: Option<&'static str>,
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
    /// SQLite `"…"`: an identifier, unless it names no column where an expression is expected,
    /// in which case SQLite reads it as a string literal (the `SQLITE_DQS` misfeature, on in
    /// the bundled build). [`obfuscate`] keeps it only where it can only be an identifier.
    DoubleQuoted,
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

    /// Skips a number (`12`, `1.5`, `.5`, `1e-3`, `0x1F`, `0b101`, and in PostgreSQL 16+
    /// `0o17` and `1_000` with `_` digit separators, which SQLite 3.46+ accepts too).
    ///
    /// MySQL allows identifiers that start with digits (`1abc`, and so `1_000`): there a number
    /// directly followed by identifier characters is a word. PostgreSQL and SQLite have no such
    /// identifiers (they reject "trailing junk"), so there the whole run is the literal: any
    /// digit-separated or prefixed form a server may accept is replaced, never kept.
    fn number(&mut self) -> Tok {
        if self.dialect == Dialect::MySql {
            return self.mysql_number();
        }
        let start = self.pos;
        let prefixed = self.bytes()[start] == b'0'
            && self
                .peek(1)
                .is_some_and(|b| matches!(b | 0x20, b'x' | b'o' | b'b'));
        let mut seen_dot = false;
        while let Some(b) = self.peek(0) {
            if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 {
                self.pos += 1;
                // An exponent's sign belongs to the number: `1e-3`, `1.5E+10`.
                if !prefixed
                    && matches!(b, b'e' | b'E')
                    && matches!(self.peek(0), Some(b'+' | b'-'))
                    && self.peek(1).is_some_and(|d| d.is_ascii_digit())
                {
                    self.pos += 2;
                }
            } else if b == b'.' && !seen_dot && !prefixed {
                seen_dot = true;
                self.pos += 1;
            } else {
                break;
            }
        }
        Tok::Literal
    }

    /// [`number`](Self::number) for MySQL: `12`, `1.5`, `.5`, `1e-3`, `0x1F`, `0b101`; a run
    /// that continues with identifier characters (`1abc`, `1_000`) is an identifier.
    fn mysql_number(&mut self) -> Tok {
        let bytes = self.bytes();
        let start = self.pos;
        let mut fraction_or_exponent = false;
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
                fraction_or_exponent = true;
            }
            if matches!(self.peek(0), Some(b'e' | b'E')) {
                let sign = usize::from(matches!(self.peek(1), Some(b'+' | b'-')));
                if self.peek(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1 + sign;
                    self.skip_while(|b| b.is_ascii_digit());
                    fraction_or_exponent = true;
                }
            }
        }
        // Only a run of digits that goes on with identifier characters is an identifier: a
        // fraction or an exponent ends the number there (MariaDB reads `9.99AND` as `9.99 AND`).
        let dialect = self.dialect;
        if !fraction_or_exponent
            && self
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
            b'"' if dialect == Dialect::Sqlite => {
                self.skip_quoted(b'"', false);
                Tok::DoubleQuoted
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
/// Strings (including prefixed, escaped and dollar-quoted ones), numbers (with PostgreSQL 16
/// `_` separators and `0x`/`0o`/`0b` prefixes), and hex/bit literals become `?`; comments are
/// removed (each becomes one space); a list after `IN` that holds only literals and parameters
/// collapses to `IN (?)`. Identifiers, keywords, operators, whitespace and bind parameters are
/// kept as written. Only the first [`MAX_QUERY_TEXT_BYTES`] bytes are scanned and returned.
///
/// SQLite reads a double-quoted `"…"` that names no column as a string literal, so for
/// [`Dialect::Sqlite`] a double-quoted token is kept only where nothing but an identifier can
/// stand: after `FROM`, `JOIN`, `INTO`, `UPDATE`, `TABLE`, `INDEX`, `VIEW`, `TRIGGER`,
/// `EXISTS`, `AS`, `REFERENCES`; next to a `.` (`"t"."c"`); and in the column list of
/// `INSERT INTO t (…)`. Anywhere else it becomes `?`, even when it is a column name.
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
/// // SQLite: a double-quoted value is a string when no column has that name.
/// assert_eq!(
///     obfuscate(
///         r#"INSERT INTO "users" ("name") VALUES ("ada@example.com")"#,
///         Dialect::Sqlite
///     ),
///     r#"INSERT INTO "users" ("name") VALUES (?)"#,
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
    // Where SQLite `"…"` can only be an identifier (see above).
    let mut ident_position = IdentPosition::default();
    while let Some((tok, text)) = lexer.next_token() {
        let tok = match tok {
            Tok::DoubleQuoted if !ident_position.allows_identifier(lexer.peek(0)) => Tok::Literal,
            Tok::DoubleQuoted => Tok::QuotedIdent,
            tok => tok,
        };
        ident_position.advance(tok, text);
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
            Tok::Word | Tok::QuotedIdent | Tok::DoubleQuoted | Tok::Punct(_) => {
                out.push_str(text);
                in_list = None;
                after_in = tok == Tok::Word && text.eq_ignore_ascii_case("IN");
            }
        }
    }
    out
}

/// Keywords after which only a name can follow (a table, index, view, trigger or alias).
const NAME_INTRODUCERS: &[&str] = &[
    "FROM",
    "JOIN",
    "INTO",
    "UPDATE",
    "TABLE",
    "INDEX",
    "VIEW",
    "TRIGGER",
    "EXISTS",
    "AS",
    "REFERENCES",
];

/// Tracks, over the significant tokens of a statement, whether the next token stands where
/// only an identifier can: what [`obfuscate`] needs to tell a SQLite `"column"` from a
/// `"string"`.
#[derive(Default)]
struct IdentPosition {
    /// The last significant token was one of [`NAME_INTRODUCERS`] (not `DISTINCT FROM`).
    after_introducer: bool,
    /// The last significant token was a `.`.
    after_dot: bool,
    /// The last significant token was `DISTINCT` (`IS DISTINCT FROM` takes an expression).
    after_distinct: bool,
    /// The last significant token was `INTO`.
    after_into: bool,
    /// The last significant tokens were `INTO name` (maybe qualified).
    after_insert_target: bool,
    /// Inside the column list of `INSERT INTO name (…)`.
    in_column_list: bool,
}

impl IdentPosition {
    /// Whether a SQLite `"…"` here is an identifier; `next` is the byte right after it.
    fn allows_identifier(&self, next: Option<u8>) -> bool {
        self.after_introducer || self.after_dot || self.in_column_list || next == Some(b'.')
    }

    /// Moves past the significant token `tok` (spaces and comments change nothing).
    fn advance(&mut self, tok: Tok, text: &str) {
        if matches!(tok, Tok::Space | Tok::Comment) {
            return;
        }
        let word = |k: &str| tok == Tok::Word && text.eq_ignore_ascii_case(k);
        let is_name = matches!(tok, Tok::Word | Tok::QuotedIdent);
        if self.in_column_list {
            if tok == Tok::Punct(b')') {
                self.in_column_list = false;
            }
        } else {
            self.in_column_list = self.after_insert_target && tok == Tok::Punct(b'(');
        }
        // `INTO name`, `INTO schema.name`: the next `(` opens the column list.
        self.after_insert_target = (self.after_into && is_name)
            || (self.after_insert_target && tok == Tok::Punct(b'.'))
            || (self.after_insert_target && self.after_dot && is_name);
        self.after_introducer = tok == Tok::Word
            && NAME_INTRODUCERS.iter().any(|k| word(k))
            && !(self.after_distinct && word("FROM"));
        self.after_into = word("INTO");
        self.after_distinct = word("DISTINCT");
        self.after_dot = tok == Tok::Punct(b'.');
    }
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
    "TABLE",
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

/// Reads the operations and tables of a statement: `db.operation.name`, `db.collection.name`
/// and `db.query.summary` as the database semantic conventions define them (see [`Summary`]).
///
/// Statements holding several `;`-separated statements report nothing. Only the first
/// [`MAX_SUMMARY_SCAN_BYTES`] bytes are scanned, so a batch whose first statement is longer
/// than that reports its first statement.
///
/// ```
/// use otel_sqlx::sql::{Dialect, summarize};
/// let s = summarize(
///     "select id from public.\"Users\" where id = $1",
///     Dialect::Postgres,
/// );
/// assert_eq!(s.operation, Some("SELECT"));
/// assert_eq!(s.collection.as_deref(), Some("public.Users"));
///
/// // A join involves two tables: listed in the summary, not claimed as the collection.
/// let s = summarize(
///     "SELECT * FROM songs s JOIN artists a ON s.artist_id = a.id",
///     Dialect::Postgres,
/// );
/// assert_eq!(s.query_summary.as_deref(), Some("SELECT songs artists"));
/// assert_eq!(s.operation, Some("SELECT"));
/// assert_eq!(s.collection, None);
/// ```
pub fn summarize(sql: &str, dialect: Dialect) -> Summary<'_> {
    let scanned = &sql[..floor_char_boundary(sql, MAX_SUMMARY_SCAN_BYTES)];
    let mut lexer = Lexer::new(scanned, dialect);
    let mut tokens = std::iter::from_fn(move || {
        loop {
            match lexer.next_token()? {
                (Tok::Space | Tok::Comment, _) => {}
                // In a table position a SQLite `"…"` is a name.
                (Tok::DoubleQuoted, text) => return Some((Tok::QuotedIdent, text)),
                t => return Some(t),
            }
        }
    })
    .peekable();

    // `(SELECT …) UNION …`: look inside the leading parentheses.
    let mut first = tokens.next();
    while let Some((Tok::Punct(b'('), _)) = first {
        first = tokens.next();
    }
    let Some((Tok::Word, first_word)) = first else {
        return Summary::default();
    };
    let in_with = first_word.eq_ignore_ascii_case("WITH");
    let first_op = operation_of(first_word);
    if first_op.is_none() && !in_with {
        return Summary::default();
    }
    // Statements whose subqueries and clauses are read for further operations and tables;
    // others (`GRANT SELECT ON t`, `EXPLAIN …`) report their first keyword and table only.
    let nested = in_with || first_op.is_some_and(|op| NESTING.contains(&op));

    let mut out = SummaryBuilder::default();
    let mut statement = first_op;
    if let Some(op) = first_op {
        out.operation(op);
    }
    let mut want = if first_op.is_some_and(|op| introduces_table(op, first_word)) {
        Want::Name
    } else {
        Want::Nothing
    };
    let mut depth = 0usize;
    // Bit `d`: depth `d` is a query (statement level, or a parenthesis opened by a subquery),
    // where `FROM`, `JOIN`, … introduce tables; elsewhere (`EXTRACT(x FROM y)`) they do not.
    let mut query_depths: u64 = u64::from(nested);
    // Bit `d`: a `FROM`/`USING`/`UPDATE` table list is open at depth `d`, so `,` adds a table
    // (`FROM songs, artists`, MySQL `UPDATE a, b SET …`).
    let mut table_lists: u64 = u64::from(nested && first_op == Some("UPDATE"));
    let mut after_open = false;
    let mut previous: Option<&str> = None;
    // The operation the statement level is in: `CREATE` until `CREATE TABLE t AS SELECT`
    // reaches its `SELECT`, whose `ON` no longer introduces a table.
    let mut level_operation = first_op;
    // Common table expressions: their names are not tables.
    let mut cte_names: Vec<Cow<'_, str>> = Vec::new();
    let mut want_cte_name = in_with;

    while let Some((tok, text)) = tokens.next() {
        let opened = std::mem::take(&mut after_open);
        let is_query = depth < 64 && query_depths & (1 << depth) != 0;
        let word = |k: &str| tok == Tok::Word && text.eq_ignore_ascii_case(k);
        match tok {
            Tok::Punct(b'(') => {
                depth += 1;
                want = Want::Nothing;
                after_open = true;
            }
            Tok::Punct(b')') => {
                if depth < 64 {
                    query_depths &= !(1 << depth);
                    table_lists &= !(1 << depth);
                }
                depth = depth.saturating_sub(1);
                want = Want::Nothing;
            }
            Tok::Punct(b';') if depth == 0 => {
                // A second statement follows: no single operation or table to report.
                if tokens.next().is_some() {
                    return Summary::default();
                }
                break;
            }
            Tok::Punct(b',') => {
                want = if depth < 64 && table_lists & (1 << depth) != 0 {
                    Want::TableOrFunction
                } else {
                    Want::Nothing
                };
                if depth == 0 && in_with && statement.is_none() {
                    want_cte_name = true;
                }
            }
            Tok::Word | Tok::QuotedIdent if depth == 0 && want_cte_name => {
                if !word("RECURSIVE") {
                    cte_names.push(unquote(tok, text));
                    want_cte_name = false;
                }
            }
            // Between the keyword and its table: `ONLY`, `IF NOT EXISTS`, `OR REPLACE`, ….
            Tok::Word if want != Want::Nothing && MODIFIERS.iter().any(|m| word(m)) => {}
            Tok::Word | Tok::QuotedIdent
                if want != Want::Nothing && !(tok == Tok::Word && operation_of(text).is_some()) =>
            {
                let from_like = want == Want::TableOrFunction;
                want = Want::Nothing;
                if let Some(name) = read_qualified_name(tok, text, &mut tokens) {
                    // `FROM generate_series(1, 3)`: a function, not a table.
                    let function =
                        from_like && matches!(tokens.peek(), Some((Tok::Punct(b'('), _)));
                    let cte = cte_names.iter().any(|c| c.eq_ignore_ascii_case(&name));
                    if !function && !cte {
                        out.target(name);
                    }
                }
            }
            Tok::Word if nested => {
                want = Want::Nothing;
                let op = operation_of(text);
                let main_of_with = depth == 0 && in_with && statement.is_none();
                let starts_query = match op {
                    // `SELECT` starts a query wherever it stands, except `FOR SELECT` (policies).
                    Some("SELECT") => !previous.is_some_and(|p| p.eq_ignore_ascii_case("FOR")),
                    // Data-modifying statements nested in parentheses (`WITH x AS (DELETE …)`),
                    // or the main statement after `WITH …`; not `ON DUPLICATE KEY UPDATE`,
                    // `DO UPDATE`, `FOR UPDATE`, `THEN INSERT`, `ON DELETE`.
                    Some("INSERT" | "UPDATE" | "DELETE" | "MERGE") => opened || main_of_with,
                    _ => false,
                };
                let bit = if depth < 64 { 1u64 << depth } else { 0 };
                if let Some(op) = op.filter(|_| starts_query) {
                    if opened {
                        query_depths |= bit;
                    }
                    if main_of_with {
                        statement = Some(op);
                        want_cte_name = false;
                    }
                    if depth == 0 {
                        level_operation = Some(op);
                    }
                    out.operation(op);
                    if op == "UPDATE" {
                        want = Want::Name;
                        table_lists |= bit;
                    } else {
                        table_lists &= !bit;
                    }
                } else if opened && word("WITH") {
                    query_depths |= bit;
                } else if is_query {
                    if ENDS_TABLE_LIST.iter().any(|k| word(k)) {
                        table_lists &= !bit;
                    }
                    let distinct_from = word("FROM")
                        && previous.is_some_and(|p| p.eq_ignore_ascii_case("DISTINCT"));
                    if distinct_from {
                        // `a IS DISTINCT FROM b`: an expression follows.
                    } else if word("FROM") || word("USING") {
                        want = Want::TableOrFunction;
                        table_lists |= bit;
                    } else if word("JOIN") {
                        want = Want::TableOrFunction;
                    } else if word("INTO")
                        || (depth == 0
                            && level_operation.is_some_and(|op| introduces_table(op, text)))
                    {
                        want = Want::Name;
                    }
                }
            }
            Tok::Word if depth == 0 => {
                // Statements read for their table only (`DROP TABLE a, b`: their tables).
                want = match statement {
                    Some(op) if out.collection_count() == 0 && introduces_table(op, text) => {
                        if matches!(op, "DROP" | "TRUNCATE") {
                            table_lists |= 1;
                        }
                        Want::Name
                    }
                    _ => Want::Nothing,
                };
            }
            _ => want = Want::Nothing,
        }
        if tok == Tok::Word {
            previous = Some(text);
        } else {
            previous = None;
        }
    }
    out.finish(statement)
}

/// What the next name token is, for [`summarize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Nothing,
    /// A table (`INTO t`, `UPDATE t`, `TABLE t`): a `(` after it opens a column list.
    Name,
    /// A table after `FROM`, `JOIN`, `USING` or `,` in their lists: a `(` after it makes it a
    /// function call (`FROM generate_series(1, 3)`).
    TableOrFunction,
}

/// Statement keywords whose subqueries and clauses [`summarize`] reads for more operations.
const NESTING: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT", "CREATE", "VALUES",
];

/// Keywords that end a `FROM` (or `USING`, `UPDATE`) table list at their depth.
const ENDS_TABLE_LIST: &[&str] = &[
    "WHERE",
    "GROUP",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "FETCH",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "WINDOW",
    "RETURNING",
    "SET",
    "VALUES",
    "SELECT",
    "ON",
    "FOR",
];

/// Longest `db.query.summary`, in characters, as the conventions advise.
const MAX_QUERY_SUMMARY_CHARS: usize = 255;

/// Collects the operations and tables [`summarize`] finds.
#[derive(Default)]
struct SummaryBuilder<'a> {
    /// The first operation, and whether another one differs from it.
    first_operation: Option<&'static str>,
    mixed_operations: bool,
    /// The first table, and whether another one differs from it.
    collection: Option<Cow<'a, str>>,
    several_collections: bool,
    text: String,
    chars: usize,
    /// The summary reached its length limit: nothing more is appended.
    full: bool,
    /// Only operations so far, and only this one: the summary is that static keyword.
    lone_operation: Option<&'static str>,
    parts: usize,
}

impl<'a> SummaryBuilder<'a> {
    fn operation(&mut self, op: &'static str) {
        match self.first_operation {
            None => self.first_operation = Some(op),
            Some(first) if first != op => self.mixed_operations = true,
            Some(_) => {}
        }
        if self.parts == 0 {
            self.lone_operation = Some(op);
        }
        self.push(op);
    }

    fn target(&mut self, name: Cow<'a, str>) {
        match &self.collection {
            None => {}
            Some(first) if **first != *name => self.several_collections = true,
            Some(_) => {}
        }
        self.push(&name);
        if self.collection.is_none() {
            self.collection = Some(name);
        }
    }

    fn collection_count(&self) -> usize {
        usize::from(self.collection.is_some()) + usize::from(self.several_collections)
    }

    /// Appends a word, unless that would make the summary longer than
    /// [`MAX_QUERY_SUMMARY_CHARS`] (from then on nothing is appended: the summary is cut
    /// between words, never inside one).
    fn push(&mut self, part: &str) {
        if self.full {
            return;
        }
        let chars = part.chars().count();
        let separator = usize::from(self.parts > 0);
        if self.chars + separator + chars > MAX_QUERY_SUMMARY_CHARS {
            self.full = true;
            return;
        }
        if self.parts > 0 {
            self.text.push(' ');
            self.lone_operation = None;
        }
        self.text.push_str(part);
        self.chars += separator + chars;
        self.parts += 1;
    }

    fn finish(self, statement: Option<&'static str>) -> Summary<'a> {
        let Some(first) = self.first_operation else {
            return Summary::default();
        };
        let query_summary = match self.lone_operation {
            Some(op) => Cow::Borrowed(op),
            None => Cow::Owned(self.text),
        };
        Summary {
            operation: (!self.mixed_operations).then_some(first),
            collection: self.collection.filter(|_| !self.several_collections),
            query_summary: Some(query_summary),
            statement,
        }
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
    fn postgres_16_numeric_literals_are_replaced() {
        for literal in [
            "4111_1111_1111_1111",
            "0xFFFF_FFFF",
            "0XdeadBEEF",
            "1.618_034",
            "0o_1_755",
            "0o777",
            "0O17",
            "0b1010",
            "0b_1010_1010",
            "1_000.000_1e1_0",
            "1e-3",
            ".5",
            "5.",
            "1_5E+1_0",
            // Trailing junk is an error in PostgreSQL, never an identifier: replaced too.
            "123abc",
            "0x_",
        ] {
            assert_eq!(
                pg(&format!("SELECT * FROM t WHERE a = {literal} AND b = 1")),
                "SELECT * FROM t WHERE a = ? AND b = ?",
                "{literal}"
            );
        }
        assert_eq!(pg("SELECT 1::int, x[1:2]"), "SELECT ?::int, x[?:?]");
    }

    #[test]
    fn sqlite_numeric_literals_are_replaced() {
        // SQLite 3.46+ (the bundled one is newer) accepts `_` separators; hex since long ago.
        for literal in [
            "4111_1111_1111_1111",
            "0xFFFF_FFFF",
            "0x1F",
            "1.618_034",
            "1e-3",
        ] {
            assert_eq!(
                lite(&format!("SELECT {literal} FROM t")),
                "SELECT ? FROM t",
                "{literal}"
            );
        }
    }

    #[test]
    fn mysql_numbers_and_digit_identifiers() {
        assert_eq!(my("SELECT 0x1F, 0b101, X'1F', 1.5e3"), "SELECT ?, ?, ?, ?");
        // In MySQL these are identifiers (a column named `1_000`), not numbers.
        assert_eq!(my("SELECT 1_000, 1abc FROM t"), "SELECT 1_000, 1abc FROM t");
        // A fraction or an exponent ends the number: MariaDB reads `9.99AND` as `9.99 AND`.
        assert_eq!(
            my("SELECT id FROM t WHERE price = 9.99AND qty = 1"),
            "SELECT id FROM t WHERE price = ?AND qty = ?"
        );
        assert_eq!(my("SELECT 1.5e3abc, .5abc"), "SELECT ?abc, ?abc");
    }
    #[test]
    fn sqlite_double_quoted_strings_are_replaced_outside_name_positions() {
        // With no column of that name, SQLite reads these as strings.
        assert_eq!(
            lite(r#"SELECT * FROM users WHERE email = "ada@example.com" AND name = "Ada""#),
            "SELECT * FROM users WHERE email = ? AND name = ?"
        );
        assert_eq!(
            lite(r#"UPDATE "users" SET "name" = "secret" WHERE id = 1"#),
            r#"UPDATE "users" SET ? = ? WHERE id = ?"#
        );
        assert_eq!(
            lite(r#"SELECT * FROM t WHERE a IS DISTINCT FROM "secret""#),
            "SELECT * FROM t WHERE a IS DISTINCT FROM ?"
        );
        assert_eq!(lite(r#"SELECT "it""s""#), "SELECT ?");
        assert_eq!(lite(r#"SELECT "unterminated"#), "SELECT ?");
        // Where only a name can stand, it is kept.
        assert_eq!(
            lite(r#"INSERT INTO "users" ("name", "email") VALUES ("x", ?)"#),
            r#"INSERT INTO "users" ("name", "email") VALUES (?, ?)"#
        );
        assert_eq!(
            lite(r#"INSERT INTO "main"."users" ("name") VALUES ('x')"#),
            r#"INSERT INTO "main"."users" ("name") VALUES (?)"#
        );
        assert_eq!(
            lite(r#"SELECT "u"."name" AS "n" FROM "users" "u" JOIN "t" ON "u"."id" = "t"."id""#),
            r#"SELECT "u"."name" AS "n" FROM "users" ? JOIN "t" ON "u"."id" = "t"."id""#
        );
        assert_eq!(
            lite(r#"CREATE TABLE IF NOT EXISTS "t" (id INTEGER REFERENCES "u")"#),
            r#"CREATE TABLE IF NOT EXISTS "t" (id INTEGER REFERENCES "u")"#
        );
        // Not in the other dialects: `"…"` is always an identifier in PostgreSQL.
        assert_eq!(
            pg(r#"SELECT * FROM users WHERE "email" = 'x'"#),
            r#"SELECT * FROM users WHERE "email" = ?"#
        );
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

    /// `(db.operation.name, db.collection.name, db.query.summary)` of a PostgreSQL statement.
    fn full(sql: &str) -> (Option<&'static str>, Option<String>, Option<String>) {
        let s = summarize(sql, Dialect::Postgres);
        (
            s.operation,
            s.collection.map(Cow::into_owned),
            s.query_summary.map(Cow::into_owned),
        )
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
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
            pgs("TRUNCATE TABLE t5 RESTART IDENTITY"),
            (Some("TRUNCATE"), Some("t5".into()))
        );
        assert_eq!(pgs("DROP TABLE a, b CASCADE"), (Some("DROP"), None));
        assert_eq!(
            pgs("ALTER TABLE t ADD COLUMN a int, ADD COLUMN b int"),
            (Some("ALTER"), Some("t".into()))
        );
        // A common table expression is not a table: `a` is the only one read.
        assert_eq!(
            pgs("WITH x AS (SELECT * FROM a) SELECT * FROM x"),
            (Some("SELECT"), Some("a".into()))
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
        // SQLite `"…"` in a table position is a name.
        assert_eq!(
            summary(
                r#"INSERT INTO "users" ("name") VALUES (?)"#,
                Dialect::Sqlite
            ),
            (Some("INSERT"), Some("users".into()))
        );
        assert_eq!(
            summary(r#"SELECT "name" FROM "main"."users""#, Dialect::Sqlite),
            (Some("SELECT"), Some("main.users".into()))
        );
    }

    #[test]
    fn several_tables_or_operations_are_summarized_not_named() {
        // The examples of the semantic conventions.
        assert_eq!(
            full("SELECT * FROM wuser_table WHERE username = ?"),
            (
                Some("SELECT"),
                some("wuser_table"),
                some("SELECT wuser_table")
            )
        );
        assert_eq!(
            full(
                "INSERT INTO shipping_details (order_id, address) \
                 SELECT order_id, address FROM orders WHERE order_id = ?"
            ),
            (None, None, some("INSERT shipping_details SELECT orders"))
        );
        assert_eq!(
            full("SELECT * FROM songs, artists WHERE songs.artist_id = artists.id"),
            (Some("SELECT"), None, some("SELECT songs artists"))
        );
        assert_eq!(
            full(
                "SELECT order_date FROM (SELECT * FROM orders o \
                 JOIN customers c ON o.customer_id = c.customer_id)"
            ),
            (Some("SELECT"), None, some("SELECT SELECT orders customers"))
        );
        // Joins, subqueries, `USING`, `UPDATE … FROM`, `MERGE`.
        assert_eq!(
            full("SELECT a.x FROM public.accounts a JOIN tx t ON t.a = a.id"),
            (Some("SELECT"), None, some("SELECT public.accounts tx"))
        );
        assert_eq!(
            full("DELETE FROM t WHERE id IN (SELECT id FROM u WHERE v = 1)"),
            (None, None, some("DELETE t SELECT u"))
        );
        assert_eq!(
            full("DELETE FROM t USING u WHERE t.id = u.id"),
            (Some("DELETE"), None, some("DELETE t u"))
        );
        assert_eq!(
            full("UPDATE t SET a = u.a FROM u WHERE t.id = u.id"),
            (Some("UPDATE"), None, some("UPDATE t u"))
        );
        assert_eq!(
            full("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a"),
            (Some("MERGE"), None, some("MERGE t s"))
        );
        assert_eq!(
            full("SELECT * FROM t WHERE id IN (SELECT id FROM t WHERE x)"),
            (Some("SELECT"), some("t"), some("SELECT t SELECT t"))
        );
        assert_eq!(
            full("SELECT * FROM t a JOIN t b ON a.parent = b.id"),
            (Some("SELECT"), some("t"), some("SELECT t t"))
        );
        assert_eq!(
            full("WITH x AS (SELECT 1) INSERT INTO b SELECT * FROM x"),
            (None, some("b"), some("SELECT INSERT b SELECT"))
        );
        assert_eq!(
            full("WITH gone AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM gone"),
            (None, None, some("DELETE a INSERT b SELECT"))
        );
        assert_eq!(
            full("CREATE TABLE t AS SELECT * FROM a JOIN b ON a.x = b.x"),
            (None, None, some("CREATE t SELECT a b"))
        );
        // Not tables: functions in `FROM`, `FROM` inside function calls, `IS DISTINCT FROM`.
        assert_eq!(
            full("SELECT EXTRACT(EPOCH FROM created) FROM generate_series(1, 3) g, t"),
            (Some("SELECT"), some("t"), some("SELECT t"))
        );
        assert_eq!(
            full("SELECT * FROM t WHERE a IS DISTINCT FROM b ORDER BY a, b"),
            (Some("SELECT"), some("t"), some("SELECT t"))
        );
        // Keywords that are not new operations.
        assert_eq!(
            full("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2"),
            (Some("INSERT"), some("t"), some("INSERT t"))
        );
        assert_eq!(
            full("SELECT * FROM t FOR UPDATE"),
            (Some("SELECT"), some("t"), some("SELECT t"))
        );
        assert_eq!(
            summary(
                "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2",
                Dialect::MySql
            ),
            (Some("INSERT"), Some("t".into()))
        );
        assert_eq!(
            summary(
                "UPDATE a, b SET a.x = b.x WHERE a.id = b.id",
                Dialect::MySql
            ),
            (Some("UPDATE"), None)
        );
        // `GRANT SELECT` is a grant, not a query.
        assert_eq!(
            full("GRANT SELECT ON t TO u"),
            (Some("GRANT"), None, some("GRANT"))
        );
    }

    #[test]
    fn statement_is_the_main_keyword() {
        let statement = |sql| summarize(sql, Dialect::Postgres).statement;
        assert_eq!(statement("INSERT INTO a SELECT * FROM b"), Some("INSERT"));
        assert_eq!(
            statement("WITH x AS (SELECT 1) UPDATE t SET a = 1"),
            Some("UPDATE")
        );
        assert_eq!(
            statement("WITH x AS (DELETE FROM a RETURNING *) SELECT * FROM x"),
            Some("SELECT")
        );
        assert_eq!(statement("SELECT 1"), Some("SELECT"));
        assert_eq!(statement("SELECT 1; DELETE FROM t"), None);
    }

    #[test]
    fn query_summary_is_bounded_and_cut_between_words() {
        let tables: Vec<String> = (0..100).map(|i| format!("table_number_{i}")).collect();
        let sql = format!("SELECT * FROM {}", tables.join(", "));
        let s = summarize(&sql, Dialect::Postgres);
        let text = s.query_summary.expect("a summary");
        assert!(text.chars().count() <= MAX_QUERY_SUMMARY_CHARS, "{text}");
        assert!(text.starts_with("SELECT table_number_0 table_number_1 "));
        // Cut after a whole name.
        let last = text.rsplit(' ').next().unwrap();
        assert!(tables.iter().any(|t| t == last), "{last}");
        assert_eq!(s.collection, None);
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
            // SQLite reads a double-quoted token that names no column as a string.
            (Dialect::Sqlite, 1) => format!("\"{}\"", content.replace('"', "\"\"")),
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
        fn separated_and_prefixed_numbers_never_get_through(
            digits in "[1-9][0-9]{0,3}(_[0-9]{1,4}){1,4}",
            hex in "[0-9a-fA-F]{1,4}(_[0-9a-fA-F]{1,4}){0,3}",
            octal in "_?[0-7]{1,4}(_[0-7]{1,4}){0,3}",
            fraction in "[0-9]{1,3}(_[0-9]{1,3}){0,2}",
        ) {
            let sql = format!(
                "SELECT * FROM t WHERE a = {digits} AND b = 0x{hex} AND c = 0o{octal} \
                 AND d = {digits}.{fraction} AND e = 0b1_0"
            );
            let out = obfuscate(&sql, Dialect::Postgres);
            prop_assert_eq!(
                out,
                "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ?"
            );
            let sql = format!("SELECT {digits}, 0x{hex}, {digits}.{fraction} FROM t");
            prop_assert_eq!(obfuscate(&sql, Dialect::Sqlite), "SELECT ?, ?, ? FROM t");
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
