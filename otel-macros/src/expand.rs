//! Code generation for `#[traced]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned as _;
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, Expr, ExprAsync, ExprCall, FnArg, GenericArgument, Ident, Item, ItemFn, Pat,
    PathArguments, ReturnType, Signature, Stmt, Type, Visibility,
};

use crate::attr::{Field, Mode, TracedArgs};

/// A function whose body is kept as tokens, so a body `syn` cannot parse is still instrumented
/// (and rustc, not this macro, reports what is wrong in it).
struct MaybeItemFn {
    outer_attrs: Vec<Attribute>,
    inner_attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    body: TokenStream,
}

impl Parse for MaybeItemFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let outer_attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        let content;
        syn::braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let body: TokenStream = content.parse()?;
        Ok(Self {
            outer_attrs,
            inner_attrs,
            vis,
            sig,
            body,
        })
    }
}

/// Expands `#[traced(args)]` on `item`.
pub(crate) fn traced(args: TracedArgs, item: TokenStream) -> TokenStream {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => {
            if let Some(constness) = &func.sig.constness {
                return with_error(
                    syn::Error::new(constness.span, "`#[traced]` cannot be used on a `const fn`"),
                    item,
                );
            }
            if let Some((async_block, boxed)) = async_trait_block(&func) {
                return expand_async_trait(&args, &func, async_block, boxed)
                    .unwrap_or_else(|e| with_error(e, item));
            }
            let (outer_attrs, inner_attrs): (Vec<_>, Vec<_>) = func
                .attrs
                .into_iter()
                .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
            let stmts = &func.block.stmts;
            let input = MaybeItemFn {
                outer_attrs,
                inner_attrs,
                vis: func.vis,
                sig: func.sig,
                body: quote!(#(#stmts)*),
            };
            expand_fn(&args, &input).unwrap_or_else(|e| with_error(e, item))
        }
        Err(_) => match syn::parse2::<MaybeItemFn>(item.clone()) {
            Ok(input) if input.sig.constness.is_none() => {
                expand_fn(&args, &input).unwrap_or_else(|e| with_error(e, item))
            }
            _ => match syn::parse2::<Item>(item.clone()) {
                Ok(other) => with_error(
                    syn::Error::new_spanned(
                        item_keyword(&other),
                        "`#[traced]` can only be applied to functions",
                    ),
                    item,
                ),
                // Not valid Rust: give it back untouched so rustc reports the user's own error.
                Err(_) => item,
            },
        },
    }
}

fn item_keyword(item: &Item) -> TokenStream {
    match item {
        Item::Struct(s) => s.struct_token.to_token_stream(),
        Item::Enum(e) => e.enum_token.to_token_stream(),
        Item::Impl(i) => i.impl_token.to_token_stream(),
        Item::Mod(m) => m.mod_token.to_token_stream(),
        Item::Trait(t) => t.trait_token.to_token_stream(),
        Item::Static(s) => s.static_token.to_token_stream(),
        Item::Const(c) => c.const_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

/// The error, plus the item unchanged so that uses of it do not fail as well.
pub(crate) fn with_error(error: syn::Error, item: TokenStream) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#error #item)
}

fn private() -> TokenStream {
    quote!(::otel_core::macro_support::__private)
}

/// `Box::pin(async move { .. })` (the shape `async-trait` gives trait methods) or
/// `async move { .. }` (a `-> impl Future` function) as the last expression of a non-async
/// function: the future, not the function returning it, is traced. `true` when boxed.
fn async_trait_block(func: &ItemFn) -> Option<(&ExprAsync, bool)> {
    if func.sig.asyncness.is_some() {
        return None;
    }
    if let Some(Stmt::Expr(Expr::Async(block), None)) = func.block.stmts.last()
        && block.capture.is_some()
    {
        return Some((block, false));
    }
    let Some(Stmt::Expr(
        Expr::Call(ExprCall {
            func: callee, args, ..
        }),
        None,
    )) = func.block.stmts.last()
    else {
        return None;
    };
    let Expr::Path(path) = callee.as_ref() else {
        return None;
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || args.len() != 1 {
        return None;
    }
    match args.first() {
        Some(Expr::Async(block)) if block.capture.is_some() => Some((block, true)),
        _ => None,
    }
}

fn expand_async_trait(
    args: &TracedArgs,
    func: &ItemFn,
    async_block: &ExprAsync,
    boxed: bool,
) -> syn::Result<TokenStream> {
    let plan = Plan::new(args, &func.sig, true)?;
    let items = plan.items();
    let block = &async_block.block;
    let body = plan.async_body(quote!(#block));
    let attrs = &func.attrs;
    let vis = &func.vis;
    let sig = &func.sig;
    let stmts = &func.block.stmts[..func.block.stmts.len() - 1];
    let async_attrs = &async_block.attrs;
    let future = quote!(#(#async_attrs)* async move { #body });
    let future = if boxed {
        quote!(::std::boxed::Box::pin(#future))
    } else {
        future
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #items
            #(#stmts)*
            #future
        }
    })
}

fn expand_fn(args: &TracedArgs, input: &MaybeItemFn) -> syn::Result<TokenStream> {
    let MaybeItemFn {
        outer_attrs,
        inner_attrs,
        vis,
        sig,
        body,
    } = input;
    let is_async = sig.asyncness.is_some();
    let plan = Plan::new(args, sig, false)?;
    if let Some(err) = &args.err {
        check_returns_result(sig, err.span)?;
    }
    let items = plan.items();
    let fake_return = fake_return(sig);
    let block = quote!({ #fake_return { #body } });
    let generated = if is_async {
        plan.async_body(block)
    } else {
        plan.sync_body(block)
    };
    Ok(quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #items
            #generated
        }
    })
}

/// An unreachable `return` of the declared type, first in the body, so that the type of the
/// closure or async block the body moves into is inferred from the signature (as
/// `tracing-attributes` does; `?` in the body needs it).
fn fake_return(sig: &Signature) -> TokenStream {
    // `!` cannot be named in a `let` on stable Rust, and a diverging body needs no hint.
    if let ReturnType::Type(_, ty) = &sig.output
        && matches!(**ty, syn::Type::Never(_))
    {
        return TokenStream::new();
    }
    let (ty, span) = match &sig.output {
        ReturnType::Type(_, ty) => (erase_impl_trait(ty), ty.span()),
        ReturnType::Default => (syn::parse_quote!(()), sig.ident.span()),
    };
    quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let __otel_fake_return: #ty = loop {};
            return __otel_fake_return;
        }
    }
}

struct ImplTraitEraser;

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(it) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](it.span()),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}

fn erase_impl_trait(ty: &Type) -> Type {
    let mut ty = ty.clone();
    ImplTraitEraser.visit_type_mut(&mut ty);
    ty
}

/// `err` on a function whose return type is plainly not a `Result` fails here, at `err`;
/// other types (aliases, generic paths) are checked by the type checker through
/// `TracedResult`, whose message also points at `err`.
fn check_returns_result(sig: &Signature, err_span: Span) -> syn::Result<()> {
    let fn_name = &sig.ident;
    let returned = match &sig.output {
        ReturnType::Default => Some("()".to_owned()),
        ReturnType::Type(_, ty) if plainly_not_result(ty) => {
            Some(ty.to_token_stream().to_string().replace(' ', ""))
        }
        ReturnType::Type(..) => None,
    };
    match returned {
        Some(returned) => Err(syn::Error::new(
            err_span,
            format!(
                "`err` needs a function returning `Result`, but `{fn_name}` returns `{returned}`"
            ),
        )),
        None => Ok(()),
    }
}

fn plainly_not_result(ty: &Type) -> bool {
    match ty {
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::Ptr(_)
        | Type::Never(_)
        | Type::BareFn(_)
        | Type::TraitObject(_) => true,
        Type::Paren(p) => plainly_not_result(&p.elem),
        Type::Path(p) => {
            p.qself.is_none()
                && p.path.segments.len() == 1
                && PRIMITIVES.contains(&p.path.segments[0].ident.to_string().as_str())
        }
        _ => false,
    }
}

const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64",
    "i128", "isize", "f32", "f64", "String",
];

/// Types recorded as they are (through `ToAttributeValue`); anything else by its Debug text.
const VALUE_TYPES: &[&str] = &[
    "bool",
    "char",
    "str",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "String",
    "NonZeroU8",
    "NonZeroU16",
    "NonZeroU32",
    "NonZeroU64",
    "NonZeroUsize",
    "NonZeroI8",
    "NonZeroI16",
    "NonZeroI32",
    "NonZeroI64",
    "NonZeroIsize",
];

/// Whether a value of this type is recorded as it is.
fn is_value_type(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => is_value_type(&r.elem),
        Type::Paren(p) => is_value_type(&p.elem),
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return false;
            };
            let name = last.ident.to_string();
            match (&last.arguments, name.as_str()) {
                (PathArguments::None, n) => VALUE_TYPES.contains(&n),
                (PathArguments::AngleBracketed(a), "Option" | "Box" | "Arc" | "Rc") => {
                    match a.args.first() {
                        Some(GenericArgument::Type(inner)) if a.args.len() == 1 => {
                            is_value_type(inner)
                        }
                        _ => false,
                    }
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// The `T` of `Wrapper<T>` (axum's `Path<T>`, `Query<T>`, `Json<T>`…), for the binding inside a
/// one-field tuple-struct pattern like `Path(id): Path<u64>`.
fn single_type_argument(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let PathArguments::AngleBracketed(a) = &p.path.segments.last()?.arguments else {
        return None;
    };
    match (a.args.len(), a.args.first()) {
        (1, Some(GenericArgument::Type(t))) => Some(t),
        _ => None,
    }
}

/// A function parameter binding that can be recorded.
struct Param {
    ident: Ident,
    ty: Option<Type>,
}

fn collect_bindings(pat: &Pat, ty: Option<&Type>, out: &mut Vec<Param>) {
    match pat {
        Pat::Ident(p) => {
            if let Some((_, sub)) = &p.subpat {
                collect_bindings(sub, ty, out);
            }
            out.push(Param {
                ident: p.ident.clone(),
                ty: ty.cloned(),
            });
        }
        Pat::Reference(r) => {
            let inner = match ty {
                Some(Type::Reference(t)) => Some(t.elem.as_ref()),
                _ => None,
            };
            collect_bindings(&r.pat, inner, out);
        }
        Pat::TupleStruct(ts) => {
            let inner = if ts.elems.len() == 1 {
                ty.and_then(single_type_argument)
            } else {
                None
            };
            for p in &ts.elems {
                collect_bindings(p, inner, out);
            }
        }
        Pat::Tuple(t) => {
            let types: Option<Vec<&Type>> = match ty {
                Some(Type::Tuple(tt)) if tt.elems.len() == t.elems.len() => {
                    Some(tt.elems.iter().collect())
                }
                _ => None,
            };
            for (i, p) in t.elems.iter().enumerate() {
                collect_bindings(p, types.as_ref().map(|v| v[i]), out);
            }
        }
        Pat::Struct(s) => {
            for f in &s.fields {
                collect_bindings(&f.pat, None, out);
            }
        }
        Pat::Paren(p) => collect_bindings(&p.pat, ty, out),
        Pat::Type(t) => collect_bindings(&t.pat, Some(&t.ty), out),
        _ => {}
    }
}

/// What one traced function generates, computed from its options and signature.
struct Plan<'a> {
    args: &'a TracedArgs,
    sig: &'a Signature,
    recorded: Vec<Param>,
    /// The `async-trait` shape: no syntactic knowledge of the future's output type.
    opaque_output: bool,
}

impl<'a> Plan<'a> {
    fn new(args: &'a TracedArgs, sig: &'a Signature, opaque_output: bool) -> syn::Result<Self> {
        let mut params = Vec::new();
        let mut has_self = false;
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(_) => has_self = true,
                FnArg::Typed(pt) => collect_bindings(&pt.pat, Some(&pt.ty), &mut params),
            }
        }
        for skip in args.skips() {
            let known = (skip == "self" && has_self) || params.iter().any(|p| p.ident == *skip);
            if !known {
                return Err(syn::Error::new(
                    skip.span(),
                    format!(
                        "cannot skip `{skip}`: `{}` has no parameter named `{skip}`",
                        sig.ident
                    ),
                ));
            }
        }
        let field_keys: Vec<&str> = args
            .fields()
            .iter()
            .filter_map(|f| match f {
                Field::Attribute { key, .. } => Some(key.as_str()),
                Field::Set(_) => None,
            })
            .collect();
        let recorded = if args.skip_all.is_some() {
            Vec::new()
        } else {
            params
                .into_iter()
                .filter(|p| {
                    let name = p.ident.unraw_string();
                    // `async-trait` renames `self` to `__self`; neither is recorded.
                    name != "__self"
                        && !args.skips().contains(&p.ident)
                        && !field_keys.contains(&name.as_str())
                })
                .collect()
        };
        Ok(Self {
            args,
            sig,
            recorded,
            opaque_output,
        })
    }

    /// The call site `static` and the item whose type name gives the function's path.
    fn items(&self) -> TokenStream {
        let p = private();
        let ident = &self.sig.ident;
        let name = self
            .args
            .name
            .as_ref()
            .map_or_else(|| ident.unraw_string(), syn::LitStr::value);
        let kind = Ident::new(
            self.args
                .kind
                .unwrap_or(crate::attr::Kind::Internal)
                .variant(),
            Span::call_site(),
        );
        let metrics = Ident::new(
            match self.args.metrics {
                None => "Default",
                Some(true) => "On",
                Some(false) => "Off",
            },
            Span::call_site(),
        );
        let extra = self.recorded.len()
            + self.args.fields().len()
            + usize::from(self.args.ret.is_some())
            + usize::from(self.args.err.is_some());
        let line = quote_spanned!(ident.span()=> ::core::line!());
        let column = quote_spanned!(ident.span()=> ::core::column!());
        quote! {
            #[allow(non_upper_case_globals)]
            static __OTEL_CALLSITE: #p::Callsite = #p::Callsite::new(#p::CallsiteMeta {
                name: #name,
                kind: ::otel_core::opentelemetry::trace::SpanKind::#kind,
                file: ::core::file!(),
                line: #line,
                column: #column,
                scope_name: ::core::env!("CARGO_PKG_NAME"),
                scope_version: ::core::env!("CARGO_PKG_VERSION"),
                metrics: #p::MetricsMode::#metrics,
                function_path: __otel_function_path,
                extra_attributes: #extra,
            });
            fn __otel_function_path() -> &'static str {
                ::core::any::type_name_of_val(&__otel_function_path)
            }
        }
    }

    /// Starts the call and records arguments and fields when the span records.
    fn start(&self, async_call: bool) -> TokenStream {
        let p = private();
        let start = if async_call {
            quote!(start_async)
        } else {
            quote!(start_sync)
        };
        let mut plain = Vec::new();
        for param in &self.recorded {
            let key = param.ident.unraw_string();
            let ident = &param.ident;
            let value = if param.ty.as_ref().is_some_and(is_value_type) {
                quote_spanned!(ident.span()=> #p::ToAttributeValue::to_attribute_value(&#ident))
            } else {
                quote_spanned!(ident.span()=> ::core::option::Option::Some(#p::RecordDebug::debug_value(&#ident)))
            };
            plain.push(quote!(#p::kv(#key, #value)));
        }
        let mut sets = Vec::new();
        for field in self.args.fields() {
            match field {
                Field::Attribute { key, mode, value } => {
                    let value = field_value(*mode, value);
                    plain.push(quote!(#p::kv(#key, #value)));
                }
                Field::Set(expr) => sets.push(
                    quote_spanned!(expr.span()=> #p::append_set(&(#expr), &mut __otel_attributes);),
                ),
            }
        }
        let record = if plain.is_empty() && sets.is_empty() {
            quote!()
        } else if sets.is_empty() {
            quote! {
                if __otel_call.is_recording() {
                    __otel_call.set_attributes([#(#plain),*]);
                }
            }
        } else {
            let capacity = plain.len();
            quote! {
                if __otel_call.is_recording() {
                    let mut __otel_attributes = ::std::vec::Vec::with_capacity(#capacity);
                    #(__otel_attributes.push(#plain);)*
                    #(#sets)*
                    __otel_call.set_attributes(__otel_attributes);
                }
            }
        };
        quote! {
            #[allow(unused_mut)]
            let mut __otel_call = __OTEL_CALLSITE.#start();
            #record
        }
    }

    /// Inspects `__otel_ret` for `err` and `ret`.
    fn outcome(&self) -> TokenStream {
        let p = private();
        let mut out = TokenStream::new();
        if let Some(err) = &self.args.err {
            let p = quote_spanned!(err.span=> ::otel_core::macro_support::__private);
            let fail = match err.mode {
                Mode::Debug => quote_spanned!(err.span=> fail_debug),
                _ => quote_spanned!(err.span=> fail_display),
            };
            out.extend(quote_spanned! {err.span=>
                if let ::core::option::Option::Some(__otel_error) =
                    #p::TracedResult::traced_err(&__otel_ret)
                {
                    __otel_call.#fail(__otel_error);
                }
            });
        }
        if let Some(ret) = &self.args.ret {
            let ok_type = self.ok_type();
            let value = |v: TokenStream, ty: Option<&Type>| match ret.mode {
                Mode::Display => {
                    quote_spanned!(ret.span=> ::core::option::Option::Some(#p::RecordDisplay::display_value(#v)))
                }
                Mode::Debug => {
                    quote_spanned!(ret.span=> ::core::option::Option::Some(#p::RecordDebug::debug_value(#v)))
                }
                Mode::Value if ty.is_some_and(is_value_type) => {
                    quote_spanned!(ret.span=> #p::ToAttributeValue::to_attribute_value(#v))
                }
                Mode::Value => {
                    quote_spanned!(ret.span=> ::core::option::Option::Some(#p::RecordDebug::debug_value(#v)))
                }
            };
            let record = if self.args.err.is_some() {
                let v = value(quote!(__otel_ok), ok_type.as_ref());
                quote! {
                    if let ::core::option::Option::Some(__otel_ok) = #p::TracedResult::traced_ok(&__otel_ret) {
                        __otel_call.set_attributes([#p::kv(::otel_core::macro_support::RETURN, #v)]);
                    }
                }
            } else {
                let v = value(quote!(&__otel_ret), ok_type.as_ref());
                quote! {
                    __otel_call.set_attributes([#p::kv(::otel_core::macro_support::RETURN, #v)]);
                }
            };
            out.extend(quote! {
                if __otel_call.is_recording() {
                    #record
                }
            });
        }
        out
    }

    /// The type `ret` records: the declared return type, or with `err` the `T` of `Result<T, _>`.
    fn ok_type(&self) -> Option<Type> {
        if self.opaque_output {
            return None;
        }
        let ReturnType::Type(_, ty) = &self.sig.output else {
            return Some(syn::parse_quote!(()));
        };
        if self.args.err.is_none() {
            return Some((**ty).clone());
        }
        let Type::Path(p) = ty.as_ref() else {
            return None;
        };
        let PathArguments::AngleBracketed(a) = &p.path.segments.last()?.arguments else {
            return None;
        };
        match a.args.first() {
            Some(GenericArgument::Type(t)) => Some(t.clone()),
            _ => None,
        }
    }

    fn sync_body(&self, block: TokenStream) -> TokenStream {
        let start = self.start(false);
        if self.args.err.is_none() && self.args.ret.is_none() {
            return quote! {
                #start
                let __otel_guard = __otel_call.attach();
                #block
            };
        }
        let outcome = self.outcome();
        // The body runs in a closure so that its `return`s and `?`s come back here. Called
        // directly (`(move || body)()`), rustc infers the closure's kind from its body and picks
        // `FnMut` for one returning a reborrow of a captured `&mut` argument, which then fails
        // to compile ("captured variable cannot escape `FnMut` closure body",
        // tokio-rs/tracing#2857). Passed where an `FnOnce` is expected, the closure is `FnOnce`
        // and the reborrow may escape. The helper is a local item, so it adds nothing to the
        // user's namespace outside this block.
        quote! {
            #start
            let __otel_guard = __otel_call.attach();
            #[allow(clippy::let_unit_value)]
            let __otel_ret = {
                #[inline]
                fn __otel_call_once<R>(f: impl ::core::ops::FnOnce() -> R) -> R {
                    f()
                }
                __otel_call_once(move || #block)
            };
            #outcome
            __otel_ret
        }
    }

    fn async_body(&self, block: TokenStream) -> TokenStream {
        let p = private();
        let start = self.start(true);
        let outcome = self.outcome();
        quote! {
            #start
            let __otel_context = __otel_call.context();
            #[allow(clippy::let_unit_value)]
            let __otel_ret = #p::FutureExt::with_context(async move #block, __otel_context).await;
            #outcome
            __otel_call.end();
            __otel_ret
        }
    }
}

fn field_value(mode: Mode, value: &Expr) -> TokenStream {
    let p = private();
    let span = value.span();
    match mode {
        Mode::Value => quote_spanned!(span=> #p::ToAttributeValue::to_attribute_value(&(#value))),
        Mode::Display => {
            quote_spanned!(span=> ::core::option::Option::Some(#p::RecordDisplay::display_value(&(#value))))
        }
        Mode::Debug => {
            quote_spanned!(span=> ::core::option::Option::Some(#p::RecordDebug::debug_value(&(#value))))
        }
    }
}

trait UnrawString {
    fn unraw_string(&self) -> String;
}

impl UnrawString for Ident {
    fn unraw_string(&self) -> String {
        use syn::ext::IdentExt as _;
        self.unraw().to_string()
    }
}
