//! `#[trace_operation]` on functions that must compile and behave as they do without it
//! (review helper-98; each module failed to compile or its assertion failed before its fix):
//! an `async fn`'s `return` coerced to the declared output, `-> !` through a `macro_rules!`
//! fragment, `?` on `ControlFlow` and `Poll<Result<..>>` in a `#[track_caller]` function,
//! arguments dropped in the function's own order, and user names spelled like the
//! expansion's locals.

mod async_return_coercion {
    //! `return` in an `async fn` body is coerced to the declared output, as in the plain fn.
    use agentcore_telemetry::trace_operation;
    use std::fmt::Debug;

    async fn plain(early: bool) -> Box<dyn Debug> {
        if early {
            return Box::new(1u8);
        }
        Box::new("late")
    }

    #[trace_operation]
    async fn traced(early: bool) -> Box<dyn Debug> {
        if early {
            return Box::new(1u8);
        }
        Box::new("late")
    }

    #[test]
    fn early_return_coerces() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(format!("{:?}", rt.block_on(plain(true))), "1");
        assert_eq!(format!("{:?}", rt.block_on(traced(true))), "1");
    }

    #[trace_operation]
    async fn parse(v: &str) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
        if v.is_empty() {
            return Err("empty".into());
        }
        Ok(v.parse()?)
    }

    #[test]
    fn early_err_into() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(parse("")).is_err());
    }
}

mod never_through_a_macro_fragment {
    //! `-> !` spelled through a `macro_rules!` `$ret:ty` fragment.
    #![allow(dead_code)]
    use agentcore_telemetry::trace_operation;

    macro_rules! plain_fn {
        ($name:ident -> $ret:ty $body:block) => {
            fn $name() -> $ret $body
        };
    }
    macro_rules! traced_fn {
        ($name:ident -> $ret:ty $body:block) => {
            #[trace_operation]
            fn $name() -> $ret $body
        };
    }
    macro_rules! traced_async_fn {
        ($name:ident -> $ret:ty $body:block) => {
            #[trace_operation]
            async fn $name() -> $ret $body
        };
    }

    plain_fn!(plain_abort -> ! { panic!("fatal") });
    traced_fn!(traced_abort -> ! { panic!("fatal") });
    traced_async_fn!(traced_serve -> ! { loop { std::future::ready(()).await } });

    #[test]
    fn builds() {}
}

mod try_on_control_flow_and_poll {
    //! `?` on `ControlFlow` and on `Poll<Result<..>>` (both stable `Try` types) in a
    //! `#[track_caller]` function.
    use agentcore_telemetry::trace_operation;
    use std::ops::ControlFlow;
    use std::task::Poll;

    #[trace_operation]
    #[track_caller]
    fn step(v: ControlFlow<u8, u8>) -> ControlFlow<u8, u8> {
        let x = v?;
        ControlFlow::Continue(x + 1)
    }

    #[trace_operation]
    #[track_caller]
    fn ready(v: Poll<Result<u8, String>>) -> Result<Poll<u8>, String> {
        let x = v?;
        Ok(x)
    }

    #[test]
    fn same_values() {
        assert_eq!(step(ControlFlow::Break(3)), ControlFlow::Break(3));
        assert_eq!(ready(Poll::Ready(Err("e".into()))), Err("e".to_string()));
    }
}

mod argument_drop_order {
    //! Drop order of arguments: traced vs plain.
    use agentcore_telemetry::trace_operation;
    use std::cell::RefCell;

    thread_local!(static LOG: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) });

    struct D(&'static str);
    impl D {
        fn len(&self) -> usize {
            self.0.len()
        }
    }
    impl Drop for D {
        fn drop(&mut self) {
            LOG.with(|l| l.borrow_mut().push(self.0));
        }
    }
    fn take() -> Vec<&'static str> {
        LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }

    fn plain(a: D, b: D) -> usize {
        a.len() + b.len()
    }
    #[trace_operation]
    fn traced(a: D, b: D) -> usize {
        a.len() + b.len()
    }

    #[test]
    fn sync_arguments_drop_in_the_same_order() {
        plain(D("a"), D("b"));
        let expected = take();
        traced(D("a"), D("b"));
        assert_eq!(take(), expected);
    }

    fn plain_unused(a: D, _b: D) -> usize {
        a.len()
    }
    #[trace_operation]
    fn traced_unused(a: D, _b: D) -> usize {
        a.len()
    }

    #[test]
    fn sync_unused_argument_drops_in_the_same_order() {
        plain_unused(D("a"), D("b"));
        let expected = take();
        traced_unused(D("a"), D("b"));
        assert_eq!(take(), expected);
    }

    async fn plain_async(a: D, b: D) -> usize {
        a.len() + b.len()
    }
    #[trace_operation]
    async fn traced_async(a: D, b: D) -> usize {
        a.len() + b.len()
    }

    async fn plain_async_unused(a: D, _b: D) -> usize {
        a.len()
    }
    #[trace_operation]
    async fn traced_async_unused(a: D, _b: D) -> usize {
        a.len()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn async_arguments_drop_in_the_same_order() {
        block_on(plain_async(D("a"), D("b")));
        let expected = take();
        block_on(traced_async(D("a"), D("b")));
        assert_eq!(take(), expected);
    }

    #[test]
    fn async_unused_argument_drops_in_the_same_order() {
        block_on(plain_async_unused(D("a"), D("b")));
        let expected = take();
        block_on(traced_async_unused(D("a"), D("b")));
        assert_eq!(take(), expected);
    }

    #[test]
    fn show() {
        plain(D("a"), D("b"));
        eprintln!("plain {:?}", take());
        traced(D("a"), D("b"));
        eprintln!("traced {:?}", take());
        plain_unused(D("a"), D("b"));
        eprintln!("plain_unused {:?}", take());
        traced_unused(D("a"), D("b"));
        eprintln!("traced_unused {:?}", take());
    }
}

mod names_like_the_expansions {
    //! User variables named like the expansion's locals.
    #![allow(dead_code)]
    use agentcore_telemetry::trace_operation;

    #[trace_operation]
    fn shadow(__agentcore_span: i32, tracer: i32, span: i32) -> i32 {
        __agentcore_span + tracer + span
    }

    #[trace_operation]
    async fn shadow_async(__agentcore_span: i32, __agentcore_caller: i32, span: i32) -> i32 {
        __agentcore_span + __agentcore_caller + span
    }

    #[trace_operation]
    fn shadow_ret(__agentcore_ret: i32) -> i32 {
        __agentcore_ret
    }

    #[trace_operation]
    fn shadow_future(
        __agentcore_future: i32,
        __agentcore_attributes: i32,
    ) -> impl ::std::future::Future<Output = i32> {
        async move { __agentcore_future + __agentcore_attributes }
    }

    /// A pattern argument is bound to a fresh name (`__agentcore_arg0` for the first), which
    /// must not meet a parameter of the user's spelled the same (review helper-120: "identifier
    /// `__agentcore_arg0` is bound more than once in this parameter list").
    #[trace_operation]
    #[allow(non_snake_case)]
    async fn shadow_pattern(
        (a, b): (i32, i32),
        __agentcore_arg0: i32,
        __agentcore_arg1: i32,
    ) -> i32 {
        a + b + 10 * __agentcore_arg0 + 100 * __agentcore_arg1
    }

    #[test]
    fn same_values() {
        assert_eq!(shadow(1, 2, 3), 6);
        assert_eq!(shadow_ret(4), 4);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(shadow_pattern((1, 2), 3, 4)), 433);
    }
}

mod unpin_is_kept {
    //! A future-returning function whose future is `Unpin` (auto traits leak through
    //! `impl Trait`) returns an `Unpin` future once traced too; with `+ Unpin` written, the
    //! traced future is not boxed any more, and its span still runs around the body's future.
    use agentcore_telemetry::{get_distributed_tracer, trace_operation, SpanKind};
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    fn assert_unpin<T: Unpin>(_: &T) {}

    #[trace_operation]
    fn traced_ready(x: u8) -> impl Future<Output = u8> {
        std::future::ready(x)
    }

    #[trace_operation]
    fn traced_unpin(x: u8) -> impl Future<Output = u8> + Unpin {
        std::future::ready(x)
    }

    #[test]
    fn a_traced_future_is_unpin_when_the_body_s_is() {
        let mut t = traced_ready(1);
        assert_unpin(&t);
        let mut cx = Context::from_waker(Waker::noop());
        // Polled without pinning it first, which `Unpin` allows.
        assert_eq!(Pin::new(&mut t).poll(&mut cx), Poll::Ready(1));
        let tracer = get_distributed_tracer();
        let root = tracer.start_span("root", SpanKind::Internal, []);
        let trace = root.trace_id();
        let mut u = traced_unpin(2);
        assert_eq!(Pin::new(&mut u).poll(&mut cx), Poll::Ready(2));
        root.end();
        assert!(tracer
            .get_trace_spans(trace)
            .iter()
            .any(|s| s.name == "traced_unpin"));
    }
}

mod an_attribute_that_moves_an_argument {
    //! `attributes(user = { user })` moves the argument into the attribute (documented); the
    //! body's rebinding of each argument (the drop order above) must leave it alone, or the
    //! expansion uses a moved value (found after a4944ef, before it landed anywhere else).
    use agentcore_telemetry::{get_distributed_tracer, trace_operation, SpanKind, Value};
    use std::future::Future;

    #[trace_operation(attributes(user = { user }))]
    fn moved(user: String, n: u8) -> u8 {
        n
    }

    #[trace_operation(attributes(user = { user }))]
    async fn moved_async(user: String, n: u8) -> u8 {
        n
    }

    #[trace_operation(attributes(user = { user }))]
    fn moved_future(user: String, n: u8) -> impl Future<Output = u8> {
        std::future::ready(n)
    }

    #[test]
    fn it_compiles_and_the_attribute_is_recorded() {
        let tracer = get_distributed_tracer();
        let root = tracer.start_span("root", SpanKind::Internal, []);
        let trace = root.trace_id();
        assert_eq!(moved("ada".into(), 1), 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(moved_async("bob".into(), 2)), 2);
        assert_eq!(rt.block_on(moved_future("cy".into(), 3)), 3);
        root.end();
        let spans = tracer.get_trace_spans(trace);
        for (name, user) in [
            ("moved", "ada"),
            ("moved_async", "bob"),
            ("moved_future", "cy"),
        ] {
            let span = spans.iter().find(|s| s.name == name).unwrap();
            assert_eq!(span.attribute("user"), Some(&Value::from(user.to_string())));
        }
    }
}
