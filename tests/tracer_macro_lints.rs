//! `#[trace_operation]` adds no lint to the user's code that the function without it does not
//! have (review helper-98): checked by `cargo clippy --all-targets -- -D warnings` (CI's clippy
//! step), which failed on each module before its fix.

mod diverging_stub {
    //! `cargo clippy --test review98_diverge -- -D warnings`: an `async fn` stub whose body is a
    //! panic is clean without the attribute; with it, clippy's default-on
    //! `diverging_sub_expression` fires on the user's body.
    use agentcore_telemetry::trace_operation;

    #[trace_operation]
    pub async fn fetch(_id: u32) -> Result<u32, std::io::Error> {
        todo!("wire up the backend")
    }

    #[trace_operation]
    pub async fn not_yet() -> u8 {
        unimplemented!("not yet: {}", 1)
    }

    pub async fn fetch_plain(_id: u32) -> Result<u32, std::io::Error> {
        todo!("wire up the backend")
    }

    #[test]
    fn builds() {
        drop((fetch(1), not_yet(), fetch_plain(1)));
    }
}

mod underscore_parameter {
    //! `cargo clippy --test review98_underscore -- -D warnings -W clippy::pedantic`: an
    //! `async fn`'s `_`-prefixed (unused) parameter is reported as used.
    #![warn(clippy::pedantic)]
    use agentcore_telemetry::trace_operation;

    #[trace_operation]
    pub async fn handler(id: u32, _trace_hint: &str) -> u32 {
        std::future::ready(id).await
    }

    #[test]
    fn builds() {
        drop(handler(1, ""));
    }
}

mod expectation_on_the_function {
    //! `cargo clippy --test review98_expect -- -D warnings`: an expectation about the `async fn`
    //! itself (met by the plain fn) is unfulfilled once traced.
    #![warn(clippy::pedantic)]
    use agentcore_telemetry::trace_operation;

    #[expect(clippy::unused_async)] // fulfilled
    pub async fn plain(x: u8) -> u8 {
        x
    }

    #[trace_operation]
    #[expect(clippy::unused_async)] // unfulfilled: the fn is no longer `async`
    pub async fn traced(x: u8) -> u8 {
        x
    }

    #[test]
    fn builds() {
        drop((plain(1), traced(1)));
    }
}

mod macro_rules_reference_argument {
    //! Review helper-159, `cargo clippy --test tracer_macro_lints -- -D warnings`: an `async fn`
    //! a `macro_rules!` generates, with a reference argument, read "the following explicit
    //! lifetimes could be elided: '__agentcore_life0" (`needless_lifetimes`, on by default):
    //! the lifetime the expansion names carried the `&`'s span, which clippy took for the
    //! user's own.
    use agentcore_telemetry::trace_operation;

    macro_rules! handler {
        ($name:ident) => {
            #[trace_operation]
            pub async fn $name(x: &u32, name: &str) -> usize {
                *x as usize + name.len()
            }
        };
    }
    handler!(by_ref);

    #[test]
    fn builds() {
        drop(by_ref(&1, "a"));
    }
}
