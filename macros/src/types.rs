//! What the expansion reads from the signature's types: a returned future's output, `!`,
//! `impl Trait`, `Self` in a receiver, and the type that annotates a `let`.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{
    parse_quote, GenericArgument, Lifetime, PathArguments, ReturnType, Type, TypeParamBound,
};

/// The output of a future returned as `impl Future<Output = X>` or
/// `Pin<Box<dyn Future<Output = X> + ..>>`, and whether the traced one must be boxed (it is
/// returned as a box).
pub(crate) fn future_output(ty: &Type) -> Option<(Type, bool)> {
    fn output_of_bounds<'a>(bounds: impl IntoIterator<Item = &'a TypeParamBound>) -> Option<Type> {
        bounds.into_iter().find_map(|b| {
            let TypeParamBound::Trait(t) = b else {
                return None;
            };
            let seg = t.path.segments.last()?;
            if seg.ident != "Future" {
                return None;
            }
            let PathArguments::AngleBracketed(args) = &seg.arguments else {
                return None;
            };
            args.args.iter().find_map(|a| match a {
                GenericArgument::AssocType(assoc) if assoc.ident == "Output" => {
                    Some(assoc.ty.clone())
                }
                _ => None,
            })
        })
    }
    fn single_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
        let Type::Path(p) = ty else { return None };
        let seg = p.path.segments.last()?;
        if seg.ident != name {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &seg.arguments else {
            return None;
        };
        match args.args.first()? {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }
    }
    match ty {
        // Not boxed, also with `+ Unpin`: the traced future (`__private::Traced`) is `Unpin`
        // when the body's is, which such a return type makes it.
        Type::ImplTrait(it) => output_of_bounds(&it.bounds).map(|t| (t, false)),
        Type::Paren(p) => future_output(&p.elem),
        Type::Group(g) => future_output(&g.elem),
        _ => {
            if let Some(out) = box_future_alias_output(ty) {
                return Some((out, true));
            }
            let boxed = single_arg(single_arg(ty, "Pin")?, "Box")?;
            let Type::TraitObject(obj) = boxed else {
                return None;
            };
            output_of_bounds(&obj.bounds).map(|t| (t, true))
        }
    }
}

/// `T` in `BoxFuture<'a, T>` / `LocalBoxFuture<'a, T>` (by the last path segment: `futures`'
/// aliases of `Pin<Box<dyn Future<Output = T> (+ Send) + 'a>>`, and look-alikes).
pub(crate) fn box_future_alias_output(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let seg = p.path.segments.last()?;
    if seg.ident != "BoxFuture" && seg.ident != "LocalBoxFuture" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// `::<R, _>` for `call_once`, naming the declared return type `R` so that every `return` in
/// the body is coerced to it; nothing when it cannot be named (`!`).
pub(crate) fn call_once_turbofish(output: &ReturnType) -> TokenStream2 {
    match output {
        ReturnType::Type(_, ty) if is_never(ty) => quote!(),
        ReturnType::Type(_, ty) => {
            let mut ty = (**ty).clone();
            EraseImplTrait.visit_type_mut(&mut ty);
            quote!(::<#ty, _>)
        }
        ReturnType::Default => quote!(::<(), _>),
    }
}

/// Whether `ty` is `Self` (the receiver rule of lifetime elision looks for `&Self`).
pub(crate) fn is_self_type(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.is_ident("Self"),
        Type::Paren(p) => is_self_type(&p.elem),
        Type::Group(g) => is_self_type(&g.elem),
        _ => false,
    }
}

/// Whether `ty` mentions `Self` (`Self`, `Arc<Self>`).
pub(crate) struct MentionsSelf(pub(crate) bool);

impl<'ast> Visit<'ast> for MentionsSelf {
    fn visit_type(&mut self, ty: &'ast Type) {
        self.0 |= is_self_type(ty);
        syn::visit::visit_type(self, ty);
    }
}

/// The lifetimes of the references to `Self`, or to a type that holds it, in a receiver's type
/// (`&'a Self`, `Pin<&'a mut Self>`, `Box<&'a Self>`, `&'a Arc<Self>`), for the receiver rule
/// of lifetime elision (which looks for a `&` whose referent contains `Self`).
pub(crate) struct SelfReferences(pub(crate) Vec<Lifetime>);

impl<'ast> Visit<'ast> for SelfReferences {
    fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
        let mut mentions = MentionsSelf(false);
        mentions.visit_type(&r.elem);
        if mentions.0 {
            if let Some(l) = &r.lifetime {
                if !self.0.contains(l) {
                    self.0.push(l.clone());
                }
            }
        }
        syn::visit::visit_type_reference(self, r);
    }
    fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments(
        &mut self,
        _: &'ast syn::ParenthesizedGenericArguments,
    ) {
    }
}

/// Replaces `impl Trait` with `_`, so a type can annotate a `let`.
pub(crate) struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, t: &mut Type) {
        if let Type::ImplTrait(_) = t {
            *t = parse_quote!(_);
        } else {
            syn::visit_mut::visit_type_mut(self, t);
        }
    }
}

/// `ty` without the invisible groups a `macro_rules!` `$t:ty` fragment wraps it in, or the
/// parentheses around it: what [`is_never`] and [`is_impl_trait`] look at.
pub(crate) fn unwrapped(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => unwrapped(&g.elem),
        Type::Paren(p) => unwrapped(&p.elem),
        _ => ty,
    }
}

/// Whether `ty` is `!`, also as a `macro_rules!` `$ret:ty` fragment passes it (in an invisible
/// group) or in parentheses (review helper-98: `-> $ret` with `!` was not recognised, and the
/// expansion named `!` as a type, which is unstable).
pub(crate) fn is_never(ty: &Type) -> bool {
    matches!(unwrapped(ty), Type::Never(_))
}

/// Whether `ty` is `impl Trait` (also in parentheses or a `macro_rules!` fragment's group).
pub(crate) fn is_impl_trait(ty: &Type) -> bool {
    matches!(unwrapped(ty), Type::ImplTrait(_))
}

/// `: T` for `let __agentcore_ret`, or nothing when the type cannot annotate a `let` (`!`).
pub(crate) fn let_annotation(ty: &Type) -> TokenStream2 {
    if is_never(ty) {
        return quote!();
    }
    let mut ty = ty.clone();
    EraseImplTrait.visit_type_mut(&mut ty);
    quote!(: #ty)
}
