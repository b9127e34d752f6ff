//! Parsing of `#[traced(...)]` options.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitBool, LitStr, Token};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(kind);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(skip_all);
    syn::custom_keyword!(fields);
    syn::custom_keyword!(err);
    syn::custom_keyword!(ret);
    syn::custom_keyword!(metrics);
}

const OPTIONS: &str = "`name`, `kind`, `skip`, `skip_all`, `fields`, `err`, `ret` or `metrics`";

/// Fails with "`what` specified more than once" at `span` when `slot` is already set: the one
/// duplicate check every option (and every field key) goes through.
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    what: &str,
    span: Span,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(duplicate(what, span));
    }
    *slot = Some(value);
    Ok(())
}

/// The error [`set_once`] reports, for lists checked by hand (skipped names, field keys).
pub(crate) fn duplicate(what: &str, span: Span) -> syn::Error {
    syn::Error::new(span, format!("`{what}` specified more than once"))
}

/// The span kind named in `kind = ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Server,
    Client,
    Internal,
    Producer,
    Consumer,
}

impl Kind {
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Self::Server => "Server",
            Self::Client => "Client",
            Self::Internal => "Internal",
            Self::Producer => "Producer",
            Self::Consumer => "Consumer",
        }
    }
}

/// How a value is turned into an attribute value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// As it is, through `ToAttributeValue` (fields) or by its type (arguments, `ret`).
    Value,
    /// `%value` / `(Display)`.
    Display,
    /// `?value` / `(Debug)`.
    Debug,
}

/// `err` or `ret`, with an optional `(Debug)` / `(Display)`.
#[derive(Clone, Debug)]
pub(crate) struct FormatOption {
    pub(crate) span: Span,
    pub(crate) mode: Mode,
}

/// One entry of `fields(...)`.
pub(crate) enum Field {
    /// `key = value`, `key = %value`, `key = ?value`.
    Attribute {
        key: String,
        mode: Mode,
        value: Expr,
    },
    /// A bare expression: a `SpanAttributes` value whose attributes are all recorded.
    Set(Expr),
}

/// Everything inside `#[traced(...)]`.
#[derive(Default)]
pub(crate) struct TracedArgs {
    pub(crate) name: Option<LitStr>,
    pub(crate) kind: Option<Kind>,
    pub(crate) skips: Option<Vec<Ident>>,
    pub(crate) skip_all: Option<Span>,
    pub(crate) fields: Option<Vec<Field>>,
    pub(crate) err: Option<FormatOption>,
    pub(crate) ret: Option<FormatOption>,
    pub(crate) metrics: Option<bool>,
}

impl TracedArgs {
    pub(crate) fn fields(&self) -> &[Field] {
        self.fields.as_deref().unwrap_or_default()
    }

    pub(crate) fn skips(&self) -> &[Ident] {
        self.skips.as_deref().unwrap_or_default()
    }
}

impl Parse for TracedArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = TracedArgs::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::name) {
                let kw: kw::name = input.parse()?;
                input.parse::<Token![=]>()?;
                let name: LitStr = input.parse()?;
                if name.value().is_empty() {
                    return Err(syn::Error::new(
                        name.span(),
                        "the span name must not be empty",
                    ));
                }
                set_once(&mut args.name, name, "name", kw.span)?;
            } else if lookahead.peek(kw::kind) {
                let kw: kw::kind = input.parse()?;
                input.parse::<Token![=]>()?;
                let kind = parse_kind(input)?;
                set_once(&mut args.kind, kind, "kind", kw.span)?;
            } else if lookahead.peek(kw::skip_all) {
                let kw: kw::skip_all = input.parse()?;
                set_once(&mut args.skip_all, kw.span, "skip_all", kw.span)?;
            } else if lookahead.peek(kw::skip) {
                let kw: kw::skip = input.parse()?;
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated_with(
                    &content,
                    Ident::parse_any,
                )?;
                let mut seen: Vec<Ident> = Vec::new();
                for n in names {
                    if seen.iter().any(|s| s == &n) {
                        return Err(duplicate(&n.to_string(), n.span()));
                    }
                    seen.push(n);
                }
                set_once(&mut args.skips, seen, "skip", kw.span)?;
            } else if lookahead.peek(kw::fields) {
                let kw: kw::fields = input.parse()?;
                let content;
                syn::parenthesized!(content in input);
                let fields = parse_fields(&content)?;
                set_once(&mut args.fields, fields, "fields", kw.span)?;
            } else if lookahead.peek(kw::err) {
                let kw: kw::err = input.parse()?;
                let mode = parse_format(input, Mode::Display)?;
                let opt = FormatOption {
                    span: kw.span,
                    mode,
                };
                set_once(&mut args.err, opt, "err", kw.span)?;
            } else if lookahead.peek(kw::ret) {
                let kw: kw::ret = input.parse()?;
                let mode = parse_format(input, Mode::Value)?;
                let opt = FormatOption {
                    span: kw.span,
                    mode,
                };
                set_once(&mut args.ret, opt, "ret", kw.span)?;
            } else if lookahead.peek(kw::metrics) {
                let kw: kw::metrics = input.parse()?;
                let on = if input.peek(Token![=]) {
                    input.parse::<Token![=]>()?;
                    input.parse::<LitBool>()?.value
                } else {
                    true
                };
                set_once(&mut args.metrics, on, "metrics", kw.span)?;
            } else if input.peek(Ident::peek_any) {
                let unknown = input.call(Ident::parse_any)?;
                return Err(syn::Error::new(
                    unknown.span(),
                    format!("unknown option `{unknown}`; expected {OPTIONS}"),
                ));
            } else {
                return Err(lookahead.error());
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        if let (Some(all), Some(_)) = (args.skip_all, &args.skips) {
            return Err(syn::Error::new(
                all,
                "`skip_all` and `skip(..)` cannot be combined: `skip_all` already skips every argument",
            ));
        }
        Ok(args)
    }
}

fn parse_kind(input: ParseStream<'_>) -> syn::Result<Kind> {
    let ident = input.call(Ident::parse_any)?;
    Ok(match ident.to_string().as_str() {
        "server" => Kind::Server,
        "client" => Kind::Client,
        "internal" => Kind::Internal,
        "producer" => Kind::Producer,
        "consumer" => Kind::Consumer,
        other => {
            return Err(syn::Error::new(
                ident.span(),
                format!(
                    "unknown span kind `{other}`; expected `server`, `client`, `internal`, `producer` or `consumer`"
                ),
            ));
        }
    })
}

/// `(Debug)` / `(Display)` after `err` or `ret`, or `default` when absent.
fn parse_format(input: ParseStream<'_>, default: Mode) -> syn::Result<Mode> {
    if !input.peek(syn::token::Paren) {
        return Ok(default);
    }
    let content;
    syn::parenthesized!(content in input);
    let ident: Ident = content.parse()?;
    let mode = match ident.to_string().as_str() {
        "Debug" => Mode::Debug,
        "Display" => Mode::Display,
        other => {
            return Err(syn::Error::new(
                ident.span(),
                format!("unknown format `{other}`; expected `Debug` or `Display`"),
            ));
        }
    };
    if !content.is_empty() {
        return Err(content.error("expected `)`"));
    }
    Ok(mode)
}

fn parse_fields(input: ParseStream<'_>) -> syn::Result<Vec<Field>> {
    let mut fields = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    while !input.is_empty() {
        let field = if let Some((key, key_span)) = parse_key(input)? {
            if key.is_empty() {
                return Err(syn::Error::new(
                    key_span,
                    "the attribute key must not be empty",
                ));
            }
            if keys.contains(&key) {
                return Err(duplicate(&key, key_span));
            }
            keys.push(key.clone());
            let mode = if input.peek(Token![%]) {
                input.parse::<Token![%]>()?;
                Mode::Display
            } else if input.peek(Token![?]) {
                input.parse::<Token![?]>()?;
                Mode::Debug
            } else {
                Mode::Value
            };
            let value: Expr = input.parse()?;
            Field::Attribute { key, mode, value }
        } else {
            Field::Set(input.parse()?)
        };
        fields.push(field);
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(fields)
}

/// `a.b.c =` or `"a.b" =`, consumed only when followed by `=`.
fn parse_key(input: ParseStream<'_>) -> syn::Result<Option<(String, Span)>> {
    let fork = input.fork();
    let (key, span) = if fork.peek(LitStr) {
        let lit: LitStr = fork.parse()?;
        (lit.value(), lit.span())
    } else if fork.peek(Ident::peek_any) {
        let first = fork.call(Ident::parse_any)?;
        let mut key = first.unraw().to_string();
        let mut span = first.span();
        while fork.peek(Token![.]) && fork.peek2(Ident::peek_any) {
            fork.parse::<Token![.]>()?;
            let part = fork.call(Ident::parse_any)?;
            key.push('.');
            key.push_str(&part.unraw().to_string());
            span = span.join(part.span()).unwrap_or(span);
        }
        (key, span)
    } else {
        return Ok(None);
    };
    if fork.peek(Token![=]) && !fork.peek(Token![==]) && !fork.peek(Token![=>]) {
        fork.parse::<Token![=]>()?;
        use syn::parse::discouraged::Speculative as _;
        input.advance_to(&fork);
        Ok(Some((key, span)))
    } else {
        Ok(None)
    }
}
