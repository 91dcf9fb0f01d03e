//! The macro's unit tests: expansions compared as strings, and the errors it gives.

use super::*;

/// Expands `#[trace_operation(attr)] item` as the compiler would, to a string.
fn expand_str(attr: TokenStream2, item: TokenStream2) -> String {
    trace_operation2(attr, item).to_string()
}

/// The one error, with its message, and nothing else.
fn assert_only_error(out: &str, message: &str) {
    assert!(
        out.starts_with(":: core :: compile_error !") && out.contains(message),
        "expected only `compile_error!(\"..{message}..\")`, got: {out}"
    );
    assert_eq!(out.matches("compile_error").count(), 1, "{out}");
}

#[test]
fn a_const_fn_is_refused_with_one_error() {
    let out = expand_str(
        quote!(),
        quote!(
            const fn f(x: u8) -> u8 {
                x
            }
        ),
    );
    assert_only_error(&out, "cannot trace a `const fn`");
}

/// Review helper-98: a positional name, a value for `boxed_future`, and `boxed_future` on
/// an `async fn` (silently ignored before) each get an error that says what to write.
#[test]
fn misplaced_arguments_say_what_to_write() {
    let f = quote!(
        fn f() {}
    );
    assert_only_error(
        &expand_str(quote!("op"), f.clone()),
        "the span's name is written `name = \\\"op\\\"`",
    );
    assert_only_error(
        &expand_str(quote!(boxed_future = true), f),
        "`boxed_future` takes no value",
    );
    let out = expand_str(
        quote!(boxed_future),
        quote!(
            async fn f() {}
        ),
    );
    assert!(
        out.starts_with(":: core :: compile_error !")
            && out.contains("remove it from an `async fn`"),
        "{out}"
    );
}

#[test]
fn a_repeated_argument_is_refused() {
    let f = quote!(
        fn f() {}
    );
    for (attr, message) in [
        (
            quote!(name = "a", name = "b"),
            "`name` / `operation_name` given twice",
        ),
        (
            quote!(name = "a", operation_name = "b"),
            "`name` / `operation_name` given twice",
        ),
        (quote!(kind = Client, kind = Server), "`kind` given twice"),
        (
            quote!(boxed_future, boxed_future),
            "`boxed_future` given twice",
        ),
        (
            quote!(attributes(k = 1, k = 2)),
            "attribute `k` given twice",
        ),
        (
            quote!(attributes(k = 1), attributes(k = 2)),
            "attribute `k` given twice",
        ),
    ] {
        assert_only_error(&expand_str(attr, f.clone()), message);
    }
    // Two `attributes(..)` with different keys are one list.
    let out = expand_str(quote!(attributes(a = 1), attributes(b = 2)), f.clone());
    assert!(out.contains("KeyValue :: new (\"a\"") && out.contains("KeyValue :: new (\"b\""));
}

/// A renamed dependency (`telemetry = { package = "agentcore-telemetry", .. }`) has no
/// `::agentcore_telemetry`: with `crate = ".."`, every path of the expansion goes through
/// the one given.
#[test]
fn crate_names_the_path_to_the_library() {
    for item in [
        quote!(
            fn f(v: Option<u8>) -> Option<u8> {
                v
            }
        ),
        quote!(
            #[track_caller]
            fn f(v: Option<u8>) -> Option<u8> {
                Some(v? + 1)
            }
        ),
        quote!(
            async fn f(v: u8) -> u8 {
                v
            }
        ),
        quote!(
            async fn f() -> ! {
                loop {}
            }
        ),
        quote!(
            fn f() -> impl Future<Output = u8> {
                async { 1 }
            }
        ),
    ] {
        let out = expand_str(
            quote!(crate = "telemetry", kind = Client, attributes(a = 1)),
            item,
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(
            out.contains("telemetry :: distributed :: __private"),
            "{out}"
        );
        assert!(!out.contains("agentcore_telemetry"), "{out}");
    }
    assert_only_error(
        &expand_str(
            quote!(crate = "a", crate = "b"),
            quote!(
                fn f() {}
            ),
        ),
        "`crate` given twice",
    );
}

/// A trait method's declaration has no body to trace: the error says where the attribute
/// goes, and the declaration stays (the impls would be refused without it).
#[test]
fn a_method_declaration_is_refused_with_its_reason() {
    let out = expand_str(
        quote!(),
        quote!(
            async fn run(&self, v: u8) -> u8;
        ),
    );
    assert_only_error(&out, "on the implementations");
    assert!(
        out.ends_with("async fn run (& self , v : u8) -> u8 ;"),
        "{out}"
    );
}

/// OpenTelemetry's attribute keys are dotted (`http.request.method`), which is no
/// identifier: a key may be a string literal.
#[test]
fn an_attribute_key_may_be_a_string() {
    let f = quote!(
        fn f(db: &str) {}
    );
    let out = expand_str(
        quote!(attributes(
            "http.request.method" = "GET",
            "db.system" = db,
            r#type = 1
        )),
        f.clone(),
    );
    assert!(!out.contains("compile_error"), "{out}");
    for key in ["http.request.method", "db.system", "type"] {
        assert!(
            out.contains(&format!("KeyValue :: new (\"{key}\"")),
            "{key}: {out}"
        );
    }
    assert_only_error(
        &expand_str(quote!(attributes("k" = 1, k = 2)), f.clone()),
        "attribute `k` given twice",
    );
    assert_only_error(
        &expand_str(quote!(attributes("" = 1)), f.clone()),
        "empty attribute key",
    );
    assert_only_error(
        &expand_str(quote!(attributes(http.request.method = "GET")), f),
        "a dotted key is written as a string: `\\\"http.request.method\\\" = ..`",
    );
}

/// The specification writes `kind=SpanKind.CLIENT`; a kind given as a string read
/// "expected identifier" (review helper-120): say how it is written.
#[test]
fn a_kind_given_as_a_string_says_how_it_is_written() {
    let f = quote!(
        fn f() {}
    );
    assert_only_error(
        &expand_str(quote!(kind = "client"), f),
        "`kind` is a `SpanKind` variant, not a string: `kind = SpanKind::Client`",
    );
}

/// Review helper-159: a `macro_rules!` `$e:expr` fragment reaches the macro as an invisible
/// group, which the compiler no longer respects once the macro gives it back: it comes out
/// in parentheses, so it stays one operand, and a path in one is still a place that an
/// attribute value clones.
#[test]
fn an_expression_fragment_stays_one_operand() {
    use proc_macro2::{Delimiter, Group};
    let fragment = |tokens: TokenStream2| Group::new(Delimiter::None, tokens);
    let a = fragment(quote!(1 + 1));
    let user = fragment(quote!(user));
    let stmt = fragment(quote!(let x = 4));
    let item = quote!(
        fn f(user: String) -> u32 {
            #stmt;
            #a * x
        }
    );
    let out = expand_str(quote!(attributes(user = #user)), item);
    assert!(out.contains("(1 + 1) * x"), "{out}");
    assert!(out.contains("clone :: Clone :: clone (& (user))"), "{out}");
    assert!(!out.contains("(let"), "{out}");
    // A type fragment with two bounds behind `&`, and no other.
    let t = fragment(quote!(dyn Display + Send));
    let out = expand_str(
        quote!(),
        quote!(
            fn g(x: &#t, y: Box<#t>) {}
        ),
    );
    assert!(out.contains("x : & (dyn Display + Send)"), "{out}");
    assert!(!out.contains("Box < (dyn"), "{out}");
}

#[test]
fn an_empty_name_is_refused() {
    let f = quote!(
        fn f() {}
    );
    assert_only_error(&expand_str(quote!(name = ""), f), "empty span name");
}

/// A plain sync function's expansion, pinned: its hot path is measured in instructions, so
/// a change here (a review's parse fallback, say) must be one meant for it.
#[test]
fn a_plain_sync_fn_expands_as_pinned() {
    let out = expand_str(
        quote!(),
        quote!(
            fn f(x: u32) -> u32 {
                x + 1
            }
        ),
    );
    let pinned = concat!(
        "fn f (x : u32) -> u32 { # [allow (unused_braces)] let mut __agentcore_span = :: agentcore_telemetry :: get_distributed_tracer () . start_span (\"f\" , :: agentcore_telemetry :: SpanKind :: Internal , []) ; ",
        "# [allow (clippy :: diverging_sub_expression)] let __agentcore_ret : u32 = :: agentcore_telemetry :: distributed :: __private :: call_once :: < u32 , _ > (move || { # [allow (clippy :: used_underscore_binding , clippy :: no_effect_underscore_binding)] let x = x ; ",
        "x + 1 }) ; ",
        "# [allow (unreachable_code)] let __agentcore_ret = { { # [allow (unused_imports)] use :: agentcore_telemetry :: distributed :: __private :: { VerdictAnyErr as _ , VerdictDebug as _ , VerdictDisplay as _ , VerdictDisplayDebug as _ , VerdictOk as _ } ; ",
        "(&& && & :: agentcore_telemetry :: distributed :: __private :: Outcome (& __agentcore_ret)) . __agentcore_verdict (__agentcore_span . is_recording ()) } . apply (& mut __agentcore_span) ; ",
        "__agentcore_span . end () ; ",
        "__agentcore_ret } ; ",
        "__agentcore_ret }",
    );
    assert_eq!(out, pinned);
}

/// Review helper-162: a block-like fragment before more of the body is a statement, as
/// rustc reads it; any other still wants its `;`.
#[test]
fn a_block_like_fragment_is_a_statement_without_semicolon() {
    let group =
        |tokens: TokenStream2| proc_macro2::Group::new(proc_macro2::Delimiter::None, tokens);
    let e = group(quote!(if true {
    } else {
    }));
    let out = expand_str(quote!(), quote!(fn f(x: u32) -> u32 { #e x }));
    assert!(
        !out.contains("compile_error") && !out.contains("(if"),
        "{out}"
    );
    let e = group(quote!(1 + 1));
    let out = expand_str(quote!(), quote!(fn f(x: u32) -> u32 { #e x }));
    assert_only_error(&out, "expected `;`");
    // In a macro's arguments the tokens are the macro's.
    let e = group(quote!({}));
    let out = expand_str(
        quote!(),
        quote!(
            fn f(x: u32) -> u32 {
                m! { #e x }
                x
            }
        ),
    );
    assert!(out.contains("m ! {"), "{out}");
    assert!(
        !out.contains("__agentcore_telemetry_statement_ends_here"),
        "{out}"
    );
}

/// Review helper-162: a type fragment cast to and then compared is parenthesized there, in
/// the body and in a macro's arguments, and nowhere else.
#[test]
fn a_type_fragment_cast_to_then_compared_is_parenthesized() {
    let t = proc_macro2::Group::new(proc_macro2::Delimiter::None, quote!(u32));
    let out = expand_str(
        quote!(),
        quote!(fn f(x: u64, y: u32) -> bool { let _b = x as #t; assert!(x as #t < y); x as #t < y }),
    );
    assert_eq!(out.matches("as (u32) <").count(), 2, "{out}");
    assert!(!out.contains("_b = x as (u32)"), "{out}");
}
