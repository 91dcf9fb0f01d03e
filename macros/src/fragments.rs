//! `macro_rules!` fragments: a function a `macro_rules!` generates hands its `$e:expr`,
//! `$b:block`, `$s:stmt` and `$t:ty` fragments to the macro as invisible (`Delimiter::None`)
//! groups, which syn and rustc read differently once the macro gives them back.
//!
//! - [`ParenthesizeGroups`]: an expression fragment stays one operand (written in parentheses),
//!   and a type fragment with several bounds behind `&` or `*` one type.
//! - [`parenthesize_cast_types`]: a type fragment after `as` and before `<` stays a type.
//! - [`parse_item_fn`]: a block-like fragment in statement position, which syn refuses and
//!   rustc accepts (below).
//!
//! ## Fragments in statement position
//!
//! A `$e:expr`, `$b:block` or `$s:stmt` fragment reaches a proc macro as an invisible
//! (`Delimiter::None`) group. rustc reads a block-like one (`if`, `match`, a block, a loop, a
//! `let` statement, ...) followed by more tokens as a statement, as it reads `if c {} else {} x`
//! written out. syn 2 reads it as `Expr::Group`, which its `Block::parse_within` always wants
//! a `;` after: "unexpected token, expected `;`" on the whole traced function.
//!
//! [`parse_item_fn`] runs only once the ordinary parse has failed (so an ordinary function is
//! parsed, and expanded, exactly as before): it puts `; MARKER! {}` after each such group, parses,
//! then takes the markers and the `;`s they came with out of the tree, which leaves the group a
//! statement without `;`, printed back as written for rustc to read as it would have (the
//! compiler reads a group a proc macro gives back as no group, which for a block-like statement
//! is the same reading). A `let` keeps its `;`: `let x = 4 x` read as no group would not parse.

use proc_macro2::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use syn::visit_mut::VisitMut;
use syn::{Expr, Stmt, Type};

const MARKER: &str = "__agentcore_telemetry_statement_ends_here";

/// `item` (a function that syn refused) parsed with its statement-position fragments read as
/// rustc reads them; `None` if there were none, or if that did not help.
pub(crate) fn parse_item_fn(item: &TokenStream) -> Option<syn::ItemFn> {
    let mut inserted = 0;
    let marked = mark(item.clone(), false, &mut inserted)?;
    let mut func: syn::ItemFn = syn::parse2(marked).ok()?;
    let mut unmark = Unmark {
        removed: 0,
        misplaced: false,
    };
    unmark.visit_item_fn_mut(&mut func);
    (unmark.removed == inserted && !unmark.misplaced).then_some(func)
}

/// `tokens` with `; MARKER! {}` after every block-like invisible group that starts a statement
/// and has more than a `;`, `.` or `?` after it; `None` if nothing changed. `in_braces`: the
/// tokens are a brace group's, where statements are. Macro arguments (a group after `!`) are
/// left as they are: they are the macro's to read.
fn mark(tokens: TokenStream, in_braces: bool, inserted: &mut usize) -> Option<TokenStream> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(trees.len());
    let mut changed = false;
    let mut at_start = true;
    for (i, tree) in trees.iter().enumerate() {
        let previous = i.checked_sub(1).map(|j| &trees[j]);
        let after = |c: char| matches!(previous, Some(TokenTree::Punct(p)) if p.as_char() == c);
        let mut ends_statement = false;
        match tree {
            TokenTree::Group(g) if !after('!') => {
                if let Some(inner) = mark(g.stream(), g.delimiter() == Delimiter::Brace, inserted) {
                    let mut new = Group::new(g.delimiter(), inner);
                    new.set_span(g.span());
                    out.push(TokenTree::Group(new));
                    changed = true;
                } else {
                    out.push(tree.clone());
                }
                let next_continues = match trees.get(i + 1) {
                    None => true,
                    Some(TokenTree::Punct(p)) => matches!(p.as_char(), ';' | '.' | '?'),
                    Some(_) => false,
                };
                if in_braces
                    && at_start
                    && g.delimiter() == Delimiter::None
                    && !next_continues
                    && is_statement_like(g.stream())
                {
                    out.extend(marker(g.span_close()));
                    *inserted += 1;
                    changed = true;
                    ends_statement = true;
                }
            }
            _ => out.push(tree.clone()),
        }
        match tree {
            TokenTree::Punct(p) => {
                // An outer attribute (`#` and its `[..]`) keeps the statement's start.
                ends_statement = p.as_char() == ';' || (at_start && p.as_char() == '#');
            }
            TokenTree::Group(g) => {
                ends_statement |= g.delimiter() == Delimiter::Brace
                    || (at_start && g.delimiter() == Delimiter::Bracket && after('#'));
            }
            _ => {}
        }
        at_start = ends_statement;
    }
    changed.then(|| out.into_iter().collect())
}

/// `; MARKER! {}`, spanned at `span`.
fn marker(span: Span) -> [TokenTree; 4] {
    let mut semi = Punct::new(';', Spacing::Alone);
    semi.set_span(span);
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    let mut braces = Group::new(Delimiter::Brace, TokenStream::new());
    braces.set_span(span);
    [
        TokenTree::Punct(semi),
        TokenTree::Ident(Ident::new(MARKER, Span::mixed_site())),
        TokenTree::Punct(bang),
        TokenTree::Group(braces),
    ]
}

/// Whether an invisible group's tokens are a statement that needs no `;` before the next one:
/// a block-like expression, a `let` (a `$s:stmt` fragment), or an item.
fn is_statement_like(tokens: TokenStream) -> bool {
    match syn::parse2::<Expr>(tokens.clone()) {
        Ok(mut e) => {
            while let Expr::Group(g) = e {
                e = *g.expr;
            }
            matches!(
                e,
                Expr::If(_)
                    | Expr::Match(_)
                    | Expr::Block(_)
                    | Expr::Unsafe(_)
                    | Expr::While(_)
                    | Expr::Loop(_)
                    | Expr::ForLoop(_)
                    | Expr::TryBlock(_)
                    | Expr::Const(_)
                    | Expr::Let(_)
            )
        }
        // An item (`fn inner() {}`).
        Err(_) => matches!(syn::parse2::<Stmt>(tokens), Ok(Stmt::Item(_))),
    }
}

/// Takes the markers out, with the `;` before each.
struct Unmark {
    removed: usize,
    /// A marker not right after a statement that took its `;`.
    misplaced: bool,
}

impl VisitMut for Unmark {
    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        syn::visit_mut::visit_block_mut(self, block);
        let mut i = 0;
        while i < block.stmts.len() {
            let is_marker = matches!(&block.stmts[i], Stmt::Macro(m)
                if m.mac.path.is_ident(MARKER) && m.mac.tokens.is_empty() && m.semi_token.is_none());
            if !is_marker {
                i += 1;
                continue;
            }
            block.stmts.remove(i);
            self.removed += 1;
            match i.checked_sub(1).map(|j| &mut block.stmts[j]) {
                // An item's `;`: a statement of its own.
                Some(Stmt::Expr(Expr::Verbatim(t), Some(_))) if t.is_empty() => {
                    block.stmts.remove(i - 1);
                    i -= 1;
                }
                // A `$s:stmt` fragment `let x = ..`: the compiler reads the group given back
                // as no group, and a `let` ends with a `;`, which changes nothing.
                Some(Stmt::Expr(Expr::Group(g), Some(_))) if is_let(&g.expr) => {}
                Some(Stmt::Expr(_, semi @ Some(_))) => *semi = None,
                _ => self.misplaced = true,
            }
        }
    }
}

/// Whether `e` is a `let` (in invisible groups or not).
fn is_let(e: &Expr) -> bool {
    match e {
        Expr::Group(g) => is_let(&g.expr),
        e => matches!(e, Expr::Let(_)),
    }
}

/// `tokens` with every `as $t <` (a `macro_rules!` `$t:ty` fragment, an invisible group, cast
/// to and compared or shifted: `x as $t < y`) written `as ($t) <`. The compiler reads the
/// fragment as one type, but the group a proc macro gives back as none, and `x as u32 < y`
/// reads `<` as the start of `u32`'s generic arguments ("`<` is interpreted as a start of
/// generic arguments for `u32`, not a comparison"; review helper-162). Parentheses there are
/// what rustc asks for, and `unused_parens` lets them be. Macro arguments too (`assert!(x as $t
/// < y)`): there is no other reading of them. Everything else stays as it is; without such a
/// cast, `tokens` itself.
pub(crate) fn parenthesize_cast_types(tokens: TokenStream) -> TokenStream {
    fn walk(tokens: &TokenStream) -> Option<TokenStream> {
        let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
        let mut out = Vec::with_capacity(trees.len());
        let mut changed = false;
        for (i, tree) in trees.iter().enumerate() {
            let TokenTree::Group(g) = tree else {
                out.push(tree.clone());
                continue;
            };
            let inner = walk(&g.stream());
            let cast_to = i > 0 && matches!(&trees[i - 1], TokenTree::Ident(id) if id == "as");
            let compared =
                matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '<');
            let delimiter = if cast_to && compared && g.delimiter() == Delimiter::None {
                Delimiter::Parenthesis
            } else {
                g.delimiter()
            };
            if inner.is_none() && delimiter == g.delimiter() {
                out.push(tree.clone());
                continue;
            }
            let mut new = Group::new(delimiter, inner.unwrap_or_else(|| g.stream()));
            new.set_span(g.span());
            out.push(TokenTree::Group(new));
            changed = true;
        }
        changed.then(|| out.into_iter().collect())
    }
    walk(&tokens).unwrap_or(tokens)
}

/// Writes the invisible groups around expressions (an `$e:expr` fragment of a `macro_rules!`
/// that generated the function) as parentheses. The compiler keeps a fragment one operand
/// (`$a * 2` with `$a = 1 + 1` is 4), but an invisible group a proc macro gives back is read
/// as no group, so the reprinted body read `1 + 1 * 2`, 3 (review helper-159: a wrong value
/// in silence, or "expected function" for `$f(x)` with `$f = |x| x + 1`). The parentheses
/// carry the group's span, one of the `macro_rules!` expansion, where `unused_parens` is
/// silent. A `$t:ty` fragment likewise where it matters, and `unused_parens` lets it be: a
/// trait object or `impl Trait` with more than one bound behind `&` or `*` (`&$t` with `$t =
/// dyn Display + Send` read "ambiguous `+` in a type"). Attributes are left as written
/// (`#[doc = $doc]`).
pub(crate) struct ParenthesizeGroups;

impl VisitMut for ParenthesizeGroups {
    fn visit_attribute_mut(&mut self, _: &mut syn::Attribute) {}
    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        let last = block.stmts.len().saturating_sub(1);
        for (i, stmt) in block.stmts.iter_mut().enumerate() {
            match stmt {
                // A block-like fragment that is a statement without `;` before another (see
                // `fragments`): in parentheses it would be an operand (`(if ..) - x`), and the
                // group as it is reads as the statement it is.
                syn::Stmt::Expr(Expr::Group(g), None) if i < last => {
                    self.visit_expr_mut(&mut g.expr)
                }
                _ => self.visit_stmt_mut(stmt),
            }
        }
    }
    fn visit_type_mut(&mut self, t: &mut Type) {
        syn::visit_mut::visit_type_mut(self, t);
        let elem = match t {
            Type::Reference(r) => &mut r.elem,
            Type::Ptr(p) => &mut p.elem,
            _ => return,
        };
        if let Type::Group(g) = &mut **elem {
            let several_bounds = match &*g.elem {
                Type::TraitObject(o) => o.bounds.len() > 1,
                Type::ImplTrait(i) => i.bounds.len() > 1,
                _ => false,
            };
            if several_bounds {
                let paren = syn::TypeParen {
                    paren_token: syn::token::Paren(g.group_token.span),
                    elem: std::mem::replace(
                        &mut g.elem,
                        Box::new(Type::Verbatim(TokenStream::new())),
                    ),
                };
                **elem = Type::Paren(paren);
            }
        }
    }
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        syn::visit_mut::visit_expr_mut(self, e);
        if let Expr::Group(g) = e {
            if let Expr::Let(_) = *g.expr {
                // A `$s:stmt` fragment `let x = ..`, which no parentheses may hold.
                return;
            }
            let paren = syn::ExprParen {
                attrs: std::mem::take(&mut g.attrs),
                paren_token: syn::token::Paren(g.group_token.span),
                expr: std::mem::replace(&mut g.expr, Box::new(Expr::Verbatim(TokenStream::new()))),
            };
            *e = Expr::Paren(paren);
        }
    }
}
