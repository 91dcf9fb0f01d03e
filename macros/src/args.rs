//! The attribute's arguments: `name`, `kind`, `attributes(..)`, `boxed_future`, `crate`.

use proc_macro2::{Ident, Span};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Expr, LitStr, Path, Token};

#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) kind: Option<Path>,
    pub(crate) attributes: Vec<(String, Expr)>,
    /// Where `boxed_future` was written, if it was.
    pub(crate) boxed_future: Option<Span>,
    pub(crate) krate: Option<Path>,
}

impl Args {
    pub(crate) fn parse(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        // A repeated argument is an error, not "the last one wins": one of the two was meant,
        // and the macro cannot tell which.
        let twice = |meta: &syn::meta::ParseNestedMeta<'_>| {
            let name = meta.path.get_ident().map(|i| i.to_string());
            meta.error(format!("`{}` given twice", name.unwrap_or_default()))
        };
        if meta.path.is_ident("name") || meta.path.is_ident("operation_name") {
            if self.name.is_some() {
                return Err(meta.error("`name` / `operation_name` given twice"));
            }
            let name: LitStr = meta.value()?.parse()?;
            if name.value().is_empty() {
                return Err(syn::Error::new_spanned(
                    &name,
                    "empty span name; leave `name` out to use the function's",
                ));
            }
            self.name = Some(name);
            Ok(())
        } else if meta.path.is_ident("kind") {
            if self.kind.is_some() {
                return Err(twice(&meta));
            }
            let value = meta.value()?;
            if let Ok(lit) = value.fork().parse::<LitStr>() {
                // `kind = "client"` read "expected identifier" (review helper-120).
                return Err(syn::Error::new(
                    lit.span(),
                    "`kind` is a `SpanKind` variant, not a string: `kind = SpanKind::Client`",
                ));
            }
            self.kind = Some(value.parse()?);
            Ok(())
        } else if meta.path.is_ident("attributes") {
            // `key = value, ..`, where a key is an identifier or a string literal: OpenTelemetry's
            // keys are dotted (`"http.request.method" = ..`), which no identifier is.
            let content;
            syn::parenthesized!(content in meta.input);
            while !content.is_empty() {
                let (key, span) = if content.peek(LitStr) {
                    let key: LitStr = content.parse()?;
                    if key.value().is_empty() {
                        return Err(syn::Error::new(key.span(), "empty attribute key"));
                    }
                    (key.value(), key.span())
                } else {
                    let key = Ident::parse_any(&content)
                        .map_err(|e| syn::Error::new(e.span(), "expected `key = value`"))?;
                    if content.peek(Token![.]) {
                        let mut dotted = key.unraw().to_string();
                        while content.parse::<Option<Token![.]>>()?.is_some() {
                            dotted.push('.');
                            dotted.push_str(&Ident::parse_any(&content)?.unraw().to_string());
                        }
                        return Err(syn::Error::new(
                            key.span(),
                            format!("a dotted key is written as a string: `\"{dotted}\" = ..`"),
                        ));
                    }
                    (key.unraw().to_string(), key.span())
                };
                if self.attributes.iter().any(|(k, _)| *k == key) {
                    return Err(syn::Error::new(
                        span,
                        format!("attribute `{key}` given twice"),
                    ));
                }
                content.parse::<Token![=]>()?;
                let value: Expr = content.parse()?;
                self.attributes.push((key, value));
                if !content.is_empty() {
                    content.parse::<Token![,]>()?;
                }
            }
            Ok(())
        } else if meta.path.is_ident("boxed_future") {
            if self.boxed_future.is_some() {
                return Err(twice(&meta));
            }
            if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                // `boxed_future = true` read "expected `,`" (review helper-98).
                return Err(meta.error("`boxed_future` takes no value: write `boxed_future`"));
            }
            self.boxed_future = Some(meta.path.span());
            Ok(())
        } else if meta.path.is_ident("crate") {
            if self.krate.is_some() {
                return Err(twice(&meta));
            }
            let path: LitStr = meta.value()?.parse()?;
            self.krate = Some(path.parse_with(Path::parse_mod_style)?);
            Ok(())
        } else {
            Err(meta.error(
                "expected `name`, `kind`, `attributes(..)`, `boxed_future` or `crate = \"..\"`",
            ))
        }
    }
}
