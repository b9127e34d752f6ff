//! `#[derive(SpanAttributes)]`: parsing of `#[otel(..)]` and code generation.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::parse::ParseStream;
use syn::spanned::Spanned as _;
use syn::{Data, DeriveInput, Fields, LitStr, Token};

use crate::attr::{duplicate, set_once};

mod kw {
    syn::custom_keyword!(rename);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(redact);
    syn::custom_keyword!(display);
    syn::custom_keyword!(debug);
    syn::custom_keyword!(flatten);
    syn::custom_keyword!(prefix);
}

/// How one field is recorded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Record {
    Value,
    Display,
    Debug,
    Redact,
    Flatten,
    Skip,
}

impl Record {
    fn option(self) -> &'static str {
        match self {
            Self::Value => "value",
            Self::Display => "display",
            Self::Debug => "debug",
            Self::Redact => "redact",
            Self::Flatten => "flatten",
            Self::Skip => "skip",
        }
    }
}

#[derive(Default)]
struct FieldOptions {
    rename: Option<LitStr>,
    record: Option<(Record, Span)>,
}

fn parse_field_options(attrs: &[syn::Attribute]) -> syn::Result<FieldOptions> {
    let mut opts = FieldOptions::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("otel")) {
        attr.parse_args_with(|input: ParseStream<'_>| {
            while !input.is_empty() {
                let lookahead = input.lookahead1();
                if lookahead.peek(kw::rename) {
                    let kw: kw::rename = input.parse()?;
                    input.parse::<Token![=]>()?;
                    let key: LitStr = input.parse()?;
                    if key.value().is_empty() {
                        return Err(syn::Error::new(key.span(), "the attribute key must not be empty"));
                    }
                    set_once(&mut opts.rename, key, "rename", kw.span)?;
                } else {
                    let (record, span) = if lookahead.peek(kw::skip) {
                        (Record::Skip, input.parse::<kw::skip>()?.span)
                    } else if lookahead.peek(kw::redact) {
                        (Record::Redact, input.parse::<kw::redact>()?.span)
                    } else if lookahead.peek(kw::display) {
                        (Record::Display, input.parse::<kw::display>()?.span)
                    } else if lookahead.peek(kw::debug) {
                        (Record::Debug, input.parse::<kw::debug>()?.span)
                    } else if lookahead.peek(kw::flatten) {
                        (Record::Flatten, input.parse::<kw::flatten>()?.span)
                    } else if input.peek(syn::Ident::peek_any) {
                        let unknown = input.call(syn::Ident::parse_any)?;
                        return Err(syn::Error::new(
                            unknown.span(),
                            format!(
                                "unknown option `{unknown}`; expected `rename`, `skip`, `redact`, `display`, `debug` or `flatten`"
                            ),
                        ));
                    } else {
                        return Err(lookahead.error());
                    };
                    match opts.record {
                        Some((previous, _)) if previous == record => {
                            return Err(duplicate(record.option(), span));
                        }
                        Some((previous, _)) => {
                            return Err(syn::Error::new(
                                span,
                                format!(
                                    "`{}` cannot be combined with `{}`",
                                    record.option(),
                                    previous.option()
                                ),
                            ));
                        }
                        None => opts.record = Some((record, span)),
                    }
                }
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
            }
            Ok(())
        })?;
    }
    if let (Some(rename), Some((record @ (Record::Skip | Record::Flatten), _))) =
        (&opts.rename, opts.record)
    {
        return Err(syn::Error::new(
            rename.span(),
            format!(
                "`rename` has no effect on a field marked `{}`",
                record.option()
            ),
        ));
    }
    Ok(opts)
}

fn parse_prefix(attrs: &[syn::Attribute]) -> syn::Result<Option<String>> {
    let mut prefix: Option<LitStr> = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("otel")) {
        attr.parse_args_with(|input: ParseStream<'_>| {
            while !input.is_empty() {
                if input.peek(kw::prefix) {
                    let kw: kw::prefix = input.parse()?;
                    input.parse::<Token![=]>()?;
                    set_once(&mut prefix, input.parse()?, "prefix", kw.span)?;
                } else {
                    let unknown = input.call(syn::Ident::parse_any)?;
                    return Err(syn::Error::new(
                        unknown.span(),
                        format!("unknown option `{unknown}` on the struct; expected `prefix`"),
                    ));
                }
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
            }
            Ok(())
        })?;
    }
    Ok(prefix.map(|p| p.value()))
}

/// Expands `#[derive(SpanAttributes)]`.
pub(crate) fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            Fields::Unit => {
                return Err(syn::Error::new(
                    input.ident.span(),
                    "`SpanAttributes` needs a struct with named fields; this one has none",
                ));
            }
            Fields::Unnamed(f) => {
                return Err(syn::Error::new(
                    f.span(),
                    "`SpanAttributes` needs named fields: a field's name is its attribute key",
                ));
            }
        },
        Data::Enum(e) => {
            return Err(syn::Error::new(
                e.enum_token.span,
                "`SpanAttributes` can only be derived for structs with named fields",
            ));
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`SpanAttributes` can only be derived for structs with named fields",
            ));
        }
    };
    let prefix = parse_prefix(&input.attrs)?.unwrap_or_default();
    let p = quote!(::otel_core::macro_support::__private);
    let mut keys: Vec<String> = Vec::new();
    let mut pushes = Vec::new();
    for field in fields {
        let opts = parse_field_options(&field.attrs)?;
        let Some(ident) = &field.ident else { continue };
        let record = opts.record.map_or(Record::Value, |(r, _)| r);
        if record == Record::Skip {
            continue;
        }
        let span = field.ty.span();
        if record == Record::Flatten {
            pushes.push(quote_spanned! {span=>
                #p::SpanAttributes::append_attributes(&self.#ident, __otel_out);
            });
            continue;
        }
        let (key, key_span) = match &opts.rename {
            Some(lit) => (lit.value(), lit.span()),
            None => (format!("{prefix}{}", ident.unraw()), ident.span()),
        };
        if keys.contains(&key) {
            return Err(syn::Error::new(
                key_span,
                format!("attribute key `{key}` is used by more than one field"),
            ));
        }
        keys.push(key.clone());
        let kv = quote!(::otel_core::opentelemetry::KeyValue::new);
        pushes.push(match record {
            Record::Redact => quote! {
                __otel_out.push(#kv(#key, ::otel_core::macro_support::REDACTED));
            },
            Record::Display => quote_spanned! {span=>
                __otel_out.push(#kv(#key, #p::RecordDisplay::display_value(&self.#ident)));
            },
            Record::Debug => quote_spanned! {span=>
                __otel_out.push(#kv(#key, #p::RecordDebug::debug_value(&self.#ident)));
            },
            _ => quote_spanned! {span=>
                if let ::core::option::Option::Some(__otel_value) =
                    #p::ToAttributeValue::to_attribute_value(&self.#ident)
                {
                    __otel_out.push(#kv(#key, __otel_value));
                }
            },
        });
    }
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #p::SpanAttributes for #name #ty_generics #where_clause {
            fn append_attributes(
                &self,
                __otel_out: &mut ::std::vec::Vec<::otel_core::opentelemetry::KeyValue>,
            ) {
                #(#pushes)*
            }
        }
    })
}
