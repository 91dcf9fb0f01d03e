//! Review helper-162: `macro_rules!` fragments in statement position, and the message an error
//! with neither `Display` nor `Debug` is recorded with.
#![deny(warnings)]
#![warn(clippy::all, clippy::pedantic)]
// Lints of the plain (untraced) code only: the fragments are the point.
#![allow(
    clippy::needless_else,
    clippy::if_same_then_else,
    clippy::match_single_binding,
    clippy::never_loop,
    clippy::cast_possible_truncation
)]

use agentcore_telemetry::{get_distributed_tracer, trace_operation, SpanKind};

// ---- fragments in statement position, without `;` -------------------------------------------
// rustc reads a block-like `$e:expr` (`if`, `match`, a block, ...) followed by more tokens as a
// statement, as it reads `if c {} else {} x` written out. syn read the fragment (an invisible
// group) as one needing a `;`: "unexpected token, expected `;`" on the whole function.

macro_rules! expr_stmt {
    ($name:ident, $plain:ident, $e:expr) => {
        #[trace_operation]
        fn $name(x: u32) -> u32 {
            $e x
        }
        fn $plain(x: u32) -> u32 {
            $e x
        }
    };
}
expr_stmt!(
    expr_fragment,
    expr_fragment_plain,
    if true {
    } else {
    }
);

// A block-like fragment before `-x` is a statement and a negation, not a subtraction.
macro_rules! expr_then_neg {
    ($name:ident, $plain:ident, $e:expr) => {
        #[trace_operation]
        fn $name(x: i32) -> i32 {
            $e - x
        }
        fn $plain(x: i32) -> i32 {
            $e - x
        }
    };
}
expr_then_neg!(
    neg_after_fragment,
    neg_after_fragment_plain,
    match 0 {
        _ => {}
    }
);

// `.` after a block-like fragment continues the expression (rustc and syn agree there).
macro_rules! expr_then_method {
    ($name:ident, $e:expr) => {
        #[trace_operation]
        fn $name(x: u32) -> u32 {
            $e.pow(2) + x
        }
    };
}
expr_then_method!(
    method_after_fragment,
    match 3u32 {
        n => n,
    }
);

macro_rules! block_stmt {
    ($name:ident, $b:block, $c:block) => {
        #[trace_operation]
        fn $name(x: u32) -> u32 {
            $b $c x
        }
    };
}
block_stmt!(block_fragments, {}, {
    let _ = 1;
});

macro_rules! stmt_stmt {
    ($name:ident, $x:ident, $s:stmt, $t:stmt) => {
        #[trace_operation]
        fn $name() -> u32 {
            $s $t $x
        }
    };
}
stmt_stmt!(stmt_fragments, x, let x = 4, while false {});

// Nested: in an inner block and a closure's body, and in an `async fn`.
macro_rules! nested {
    ($name:ident, $aname:ident, $e:expr) => {
        #[trace_operation]
        fn $name(x: u32) -> u32 {
            let f = |y: u32| {
                $e y
            };
            if x > 0 {
                $e f(x)
            } else {
                $e 0
            }
        }
        #[trace_operation]
        async fn $aname(x: u32) -> u32 {
            $e x
        }
    };
}
nested!(nested_fragments, async_fragment, for _ in 0..2 {});

// A `#[track_caller]` function's body runs inline; an item in a `$s:stmt` fragment.
macro_rules! inline_and_item {
    ($name:ident, $e:expr, $s:stmt) => {
        #[trace_operation]
        #[track_caller]
        fn $name(x: u32) -> u32 {
            $s $e
            if x == 0 {
                return inner();
            }
            $e inner() + x
        }
    };
}
inline_and_item!(
    inline_fragments,
    'a: loop {
        break 'a;
    },
    fn inner() -> u32 {
        1
    }
);

#[test]
fn fragments_in_statement_position() {
    let tracer = get_distributed_tracer();
    let root = tracer.start_span("root162_fragments", SpanKind::Server, []);
    let trace_id = root.trace_id();
    assert_eq!(expr_fragment(3), expr_fragment_plain(3));
    assert_eq!(expr_fragment(3), 3);
    assert_eq!(neg_after_fragment(3), neg_after_fragment_plain(3));
    assert_eq!(neg_after_fragment(3), -3);
    assert_eq!(method_after_fragment(1), 10);
    assert_eq!(block_fragments(5), 5);
    assert_eq!(stmt_fragments(), 4);
    assert_eq!(nested_fragments(7), 7);
    assert_eq!(nested_fragments(0), 0);
    assert_eq!(inline_fragments(0), 1);
    assert_eq!(inline_fragments(2), 3);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(async_fragment(2)), 2);
    drop(root);
    let spans = tracer.get_trace_spans(trace_id);
    for name in [
        "expr_fragment",
        "neg_after_fragment",
        "method_after_fragment",
        "block_fragments",
        "stmt_fragments",
        "nested_fragments",
        "inline_fragments",
    ] {
        assert!(spans.iter().any(|s| s.name == name), "no span {name}");
    }
}

// ---- an error with neither `Display` nor `Debug` -------------------------------------------
// Its `Err` was recorded with an empty message: the span's status said `Error` and nothing
// else. It is recorded by its type's name, as its `exception.type` already was.
struct Opaque;

#[trace_operation]
fn opaque_err() -> Result<u32, Opaque> {
    Err(Opaque)
}

#[trace_operation]
async fn opaque_err_async() -> Result<u32, Opaque> {
    Err(Opaque)
}

#[test]
fn an_error_without_display_or_debug_is_recorded_by_its_type_name() {
    use agentcore_telemetry::FutureExt;
    let tracer = get_distributed_tracer();
    let root = tracer.start_span("root162_opaque", SpanKind::Server, []);
    let trace_id = root.trace_id();
    assert!(opaque_err().is_err());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(rt
        .block_on(opaque_err_async().in_current_context())
        .is_err());
    drop(root);
    let spans = tracer.get_trace_spans(trace_id);
    let name = std::any::type_name::<Opaque>();
    for op in ["opaque_err", "opaque_err_async"] {
        let span = spans
            .iter()
            .find(|s| s.name == op)
            .unwrap_or_else(|| panic!("no span {op}"));
        assert_eq!(span.status, agentcore_telemetry::SpanStatus::Error, "{op}");
        assert_eq!(&*span.status_message, name, "{op}");
        let event = span.events.iter().find(|e| e.name == "exception").unwrap();
        let get = |k: &str| {
            event
                .attributes
                .iter()
                .find(|kv| kv.key == k)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(get("exception.type").as_deref(), Some(name), "{op}");
        assert_eq!(get("exception.message").as_deref(), Some(name), "{op}");
    }
}

// ---- a `$t:ty` fragment cast to, then compared or shifted -----------------------------------
// `x as $t < y` compiles without the attribute (the fragment is one type), but failed once
// traced: "`<` is interpreted as a start of generic arguments for `u32`, not a comparison"
// (and "not a shift" for `<<`; "expected one of `,` or `>`" inside `assert!`).
macro_rules! casts {
    ($name:ident, $plain:ident, $aname:ident, $t:ty) => {
        #[trace_operation]
        fn $name(x: u64, y: u32) -> (bool, u32, bool, u32) {
            let b = x as $t;
            let c = 1 + x as $t < y;
            assert!(x as $t < y + b);
            (x as $t < y, x as $t << 1, c, b)
        }
        fn $plain(x: u64, y: u32) -> (bool, u32, bool, u32) {
            let b = x as $t;
            let c = 1 + x as $t < y;
            assert!(x as $t < y + b);
            (x as $t < y, x as $t << 1, c, b)
        }
        #[trace_operation]
        async fn $aname(x: u64, y: u32) -> bool {
            x as $t < y
        }
    };
}
casts!(
    cast_then_compare,
    cast_then_compare_plain,
    cast_then_compare_async,
    u32
);

#[test]
fn a_type_fragment_cast_to_then_compared() {
    assert_eq!(cast_then_compare(1, 2), cast_then_compare_plain(1, 2));
    assert_eq!(cast_then_compare(1, 2), (true, 2, false, 1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(rt.block_on(cast_then_compare_async(1, 2)));
}
