//! Review helper-159: user code as users write it, under `#[trace_operation]`.
#![deny(warnings)]
#![warn(clippy::all, clippy::pedantic)]
// Lints of the plain (untraced) code only: the traced twins add none.
#![allow(
    clippy::many_single_char_names,
    clippy::manual_async_fn,
    clippy::too_many_lines,
    clippy::unused_async,
    clippy::unnecessary_wraps,
    clippy::trivially_copy_pass_by_ref
)]

use agentcore_telemetry::{get_distributed_tracer, trace_operation, FutureExt, SpanKind};
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

fn assert_send<T: Send>(_: &T) {}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f.in_current_context())
}

// ---- generics -------------------------------------------------------------------------------
#[trace_operation]
fn gen_where<T, U>(t: T, u: impl Into<U>) -> U
where
    T: Clone + Display,
    U: From<T>,
{
    let _ = t.to_string();
    u.into()
}

#[trace_operation]
async fn gen_async<T>(t: T, d: impl Display + Send) -> String
where
    T: Display + Send,
{
    tokio::task::yield_now().await;
    format!("{t}{d}")
}

#[trace_operation]
fn const_generic<const N: usize>(a: [u8; N]) -> [u8; N] {
    a
}

// ---- lifetimes, receivers -------------------------------------------------------------------
struct Agent {
    name: String,
    n: u32,
}

impl Agent {
    #[trace_operation]
    fn name(&self) -> &str {
        &self.name
    }
    #[trace_operation]
    fn pick<'a>(&'a self, other: &'a str, first: bool) -> &'a str {
        if first {
            return &self.name;
        }
        other
    }
    #[trace_operation]
    fn bump(&mut self) -> &mut u32 {
        self.n += 1;
        &mut self.n
    }
    #[trace_operation]
    async fn name_async(&self, suffix: &str) -> String {
        tokio::task::yield_now().await;
        format!("{}{suffix}", self.name)
    }
    #[trace_operation]
    async fn name_ref_async(&self) -> &str {
        &self.name
    }
    #[trace_operation]
    async fn bump_async(&mut self) -> &mut u32 {
        self.n += 1;
        &mut self.n
    }
    #[trace_operation]
    async fn arc(self: Arc<Self>) -> u32 {
        self.n
    }
    #[trace_operation]
    fn arc_sync(self: Arc<Self>) -> u32 {
        self.n
    }
    #[trace_operation]
    async fn pinned(self: Pin<&mut Self>) -> u32 {
        self.n
    }
    #[trace_operation]
    fn pinned_sync(self: Pin<&mut Self>) -> u32 {
        self.n
    }
}

#[trace_operation]
async fn two_refs<'a, 'b>(a: &'a str, _b: &'b str) -> &'a str {
    a
}

// ---- traits ---------------------------------------------------------------------------------
trait Store {
    const CAP: usize;
    type Item;
    async fn get(&self, k: u32) -> Option<Self::Item>;
    #[trace_operation]
    async fn default_get(&self) -> usize {
        Self::CAP
    }
    #[trace_operation]
    fn sync_default(&self) -> usize {
        Self::CAP
    }
}

struct Mem;

impl Store for Mem {
    const CAP: usize = 4;
    type Item = u32;
    #[trace_operation]
    async fn get(&self, k: u32) -> Option<Self::Item> {
        tokio::task::yield_now().await;
        (k < u32::try_from(Self::CAP).unwrap()).then_some(k)
    }
}

trait SendStore {
    fn load(&self) -> impl Future<Output = u32> + Send;
}

impl SendStore for Mem {
    #[trace_operation]
    async fn load(&self) -> u32 {
        7
    }
}

// ---- returns ----------------------------------------------------------------------------------
#[trace_operation]
fn early_unit(x: u32, out: &mut Vec<u32>) {
    if x == 0 {
        return;
    }
    out.push(x);
}

#[trace_operation]
async fn early_unit_async(x: u32, out: &mut Vec<u32>) {
    if x == 0 {
        return;
    }
    out.push(x);
}

#[trace_operation]
fn never(msg: &str) -> ! {
    panic!("{msg}")
}

#[trace_operation]
fn iter(v: &[u32]) -> impl Iterator<Item = u32> + '_ {
    v.iter().map(|x| x * 2)
}

#[trace_operation]
fn fut(v: u32) -> impl Future<Output = u32> {
    async move { v + 1 }
}

// ---- qualifiers -----------------------------------------------------------------------------
/// Reads through a raw pointer.
///
/// # Safety
/// `p` is valid.
#[trace_operation]
unsafe fn read(p: *const u32) -> u32 {
    unsafe { *p }
}

/// # Safety
/// `p` is valid.
#[trace_operation]
async unsafe fn read_async(p: *const u32) -> u32 {
    unsafe { *p }
}

#[trace_operation]
extern "C" fn ext(x: u32) -> u32 {
    x + 1
}

#[trace_operation]
#[inline]
#[must_use]
fn inlined(x: u32) -> u32 {
    x
}

#[trace_operation]
#[track_caller]
fn caller() -> &'static std::panic::Location<'static> {
    std::panic::Location::caller()
}

#[trace_operation]
#[cfg(any())]
fn configured_out() -> u32 {
    compile_error!("configured out")
}

// Review helper-159: an inner attribute of the body is the function's, and stays in effect.
#[trace_operation]
fn inner_attr(x: u64) -> u32 {
    #![allow(clippy::cast_possible_truncation)]
    x as u32
}

#[trace_operation]
async fn inner_attr_async(x: u64) -> u32 {
    #![allow(clippy::cast_possible_truncation)]
    x as u32
}

#[trace_operation]
fn inner_attr_opaque(x: u64) -> impl Iterator<Item = u32> {
    #![allow(clippy::cast_possible_truncation)]
    std::iter::once(x as u32)
}

// ---- hygiene ----------------------------------------------------------------------------------
#[trace_operation]
fn hyg(tracer: u32, span: u32, __span: u32, _guard: u32, result: u32) -> u32 {
    tracer + span + __span + _guard + result
}

#[trace_operation]
async fn hyg_async(tracer: u32, span: u32, __span: u32, _guard: u32, result: u32) -> u32 {
    tracer + span + __span + _guard + result
}

mod shadow_prelude {
    #![allow(dead_code)]
    use agentcore_telemetry::trace_operation;
    pub struct Result;
    pub struct Option;
    pub struct Box;
    pub struct Ok;
    pub struct Some;
    pub struct Err;
    pub struct None;
    pub struct Vec;
    pub struct String;
    pub trait Future {}
    pub trait Send {}
    pub trait Clone {}
    pub trait Into {}
    pub trait From {}
    pub trait Drop {}
    pub trait FnOnce {}
    pub trait Sized {}

    #[trace_operation(attributes(n = n))]
    pub fn a(n: u32) -> u32 {
        n
    }
    #[trace_operation(attributes(n = n))]
    pub async fn b(n: u32) -> u32 {
        n
    }
    #[trace_operation]
    pub fn c(n: u32) -> core::result::Result<u32, u8> {
        core::result::Result::Ok(n)
    }
    #[trace_operation]
    #[track_caller]
    pub fn d(n: core::option::Option<u32>) -> core::option::Option<u32> {
        let v = n?;
        core::option::Option::Some(v)
    }
    #[trace_operation]
    pub fn e(n: u32) -> impl std::future::Future<Output = u32> {
        async move { n }
    }
    #[trace_operation]
    pub fn f(n: u32) -> std::pin::Pin<std::boxed::Box<dyn std::future::Future<Output = u32>>> {
        std::boxed::Box::pin(async move { n })
    }
}

// ---- custom errors ------------------------------------------------------------------------------
#[derive(Debug)]
#[allow(dead_code)]
struct DebugOnly(u32);
struct Opaque;

#[trace_operation]
fn debug_err(x: u32) -> Result<u32, DebugOnly> {
    Err(DebugOnly(x))
}

#[trace_operation]
fn opaque_err() -> Result<u32, Opaque> {
    Err(Opaque)
}

#[trace_operation]
#[track_caller]
fn q_err(x: Result<u32, DebugOnly>) -> Result<u32, DebugOnly> {
    let v = x?;
    Ok(v)
}

// ---- recursion, macro_rules, patterns, mut ------------------------------------------------------
#[trace_operation]
fn fact(n: u64) -> u64 {
    if n == 0 {
        1
    } else {
        n * fact(n - 1)
    }
}

#[trace_operation]
async fn fact_async(n: u64) -> u64 {
    if n == 0 {
        1
    } else {
        n * Box::pin(fact_async(n - 1)).await
    }
}

#[allow(unused_macros)]
macro_rules! traced {
    ($name:ident, $t:ty, $ret:ty, $body:expr) => {
        #[trace_operation]
        fn $name(x: $t) -> $ret {
            $body(x)
        }
    };
}
traced!(from_macro, u32, u32, |x| x + 1);

macro_rules! doubled {
    ($name:ident, $a:expr) => {
        #[trace_operation]
        fn $name() -> u32 {
            $a * 2
        }
    };
}
doubled!(four, 1 + 1);

// Review helper-159: an `$e:expr` fragment is one operand, as without the attribute (the
// macro's reparse made `$a * 2` with `$a = 1 + 1` read `1 + 1 * 2`).
macro_rules! operands {
    ($name:ident, $user:ident, $a:expr, $value:expr) => {
        #[trace_operation(attributes(user = $value))]
        async fn $name($user: String) -> (u32, u32, String) {
            let plain = $a;
            let negated = !$a;
            let method = $a.pow(2);
            (plain * negated.count_zeros(), method, $user)
        }
    };
}
operands!(operands_async, user, 1u32 + 1, user);

// Review helper-159: a `$t:ty` fragment with two bounds, as `&$t`, read "ambiguous `+` in a
// type"; a `#[doc = $doc]` in the body stays as written.
macro_rules! typed {
    ($name:ident, $aname:ident, $t:ty, $ret:ty, $doc:expr) => {
        #[trace_operation]
        fn $name(x: &$t, n: u32) -> $ret {
            #[doc = $doc]
            fn len(x: &$t) -> u32 {
                u32::try_from(x.to_string().len()).unwrap_or(u32::MAX)
            }
            std::iter::once(len(x) + n)
        }
        #[trace_operation]
        async fn $aname(x: &$t, n: u32) -> String {
            let shown: Box<$t> = Box::new(n);
            format!("{x}{shown}")
        }
    };
}
typed!(
    typed_fn,
    typed_async,
    dyn Display + Send,
    impl Iterator<Item = u32> + Send,
    "The length of `x` shown."
);

macro_rules! doubled_plain {
    ($name:ident, $a:expr) => {
        fn $name() -> u32 {
            $a * 2
        }
    };
}
doubled_plain!(four_plain, 1 + 1);

#[trace_operation]
fn mutp(mut x: u32) -> u32 {
    x += 1;
    x
}

#[trace_operation]
async fn mutp_async(mut x: u32) -> u32 {
    x += 1;
    x
}

#[allow(dead_code)]
struct P {
    f: u32,
    g: u32,
}

#[trace_operation]
fn pats((a, b): (u32, u32), P { f, .. }: P) -> u32 {
    a + b + f
}

#[trace_operation]
async fn pats_async((a, b): (u32, u32), P { f, .. }: P) -> u32 {
    a + b + f
}

// ---- Send -----------------------------------------------------------------------------------
#[trace_operation]
async fn non_send_between(x: u32) -> u32 {
    {
        let rc = std::rc::Rc::new(x);
        let _ = *rc;
    }
    tokio::task::yield_now().await;
    x
}

// ---- panic ------------------------------------------------------------------------------------
#[derive(Debug, PartialEq)]
struct Payload(u32);

#[trace_operation]
fn panics(x: u32) -> u32 {
    std::panic::panic_any(Payload(x))
}

#[trace_operation]
async fn panics_async(x: u32) -> u32 {
    std::panic::panic_any(Payload(x))
}

#[test]
fn everything_runs() {
    let tracer = get_distributed_tracer();
    let root = tracer.start_span("root159", SpanKind::Server, []);
    let trace_id = root.trace_id();
    assert_eq!(gen_where::<u8, u32>(1u8, 2u32), 2);
    assert_eq!(const_generic([1, 2]), [1, 2]);
    let mut a = Agent {
        name: "a".into(),
        n: 0,
    };
    assert_eq!(a.name(), "a");
    assert_eq!(a.pick("o", false), "o");
    *a.bump() += 1;
    assert_eq!(a.n, 2);
    let mut v = Vec::new();
    early_unit(0, &mut v);
    early_unit(3, &mut v);
    assert_eq!(v, [3]);
    assert_eq!(iter(&[1, 2]).collect::<Vec<_>>(), [2, 4]);
    let x = 5u32;
    assert_eq!(unsafe { read(&raw const x) }, 5);
    assert_eq!(ext(1), 2);
    assert_eq!(inlined(3), 3);
    let here = line!() + 1;
    let loc = caller();
    assert_eq!((loc.file(), loc.line()), (file!(), here));
    assert_eq!(hyg(1, 2, 3, 4, 5), 15);
    assert_eq!(inner_attr(3), 3);
    assert_eq!(block_on(inner_attr_async(3)), 3);
    assert_eq!(inner_attr_opaque(3).sum::<u32>(), 3);
    assert_eq!(shadow_prelude::a(1), 1);
    assert_eq!(shadow_prelude::c(1), Ok(1));
    assert_eq!(shadow_prelude::d(Some(1)), Some(1));
    assert!(debug_err(1).is_err());
    assert!(opaque_err().is_err());
    assert!(q_err(Err(DebugOnly(2))).is_err());
    assert_eq!(fact(5), 120);
    assert_eq!(from_macro(1), 2);
    assert_eq!(four_plain(), 4);
    assert_eq!(four(), 4);
    assert_eq!(block_on(operands_async("u".into())), (2, 4, "u".to_owned()));
    assert_eq!(typed_fn(&12, 1).sum::<u32>(), 3);
    assert_eq!(block_on(typed_async(&1, 2)), "12");
    assert_eq!(mutp(1), 2);
    assert_eq!(pats((1, 2), P { f: 3, g: 0 }), 6);
    let arc = Arc::new(Agent {
        name: "b".into(),
        n: 9,
    });
    assert_eq!(arc.clone().arc_sync(), 9);
    let mut pinned = Agent {
        name: "c".into(),
        n: 4,
    };
    assert_eq!(Pin::new(&mut pinned).pinned_sync(), 4);
    assert_eq!(Mem.sync_default(), 4);

    let f = gen_async(1, "x");
    assert_send(&f);
    assert_eq!(block_on(f), "1x");
    let f = non_send_between(3);
    assert_send(&f);
    assert_eq!(block_on(f), 3);
    let f = a.name_async("!");
    assert_send(&f);
    assert_eq!(block_on(f), "a!");
    assert_eq!(block_on(a.name_ref_async()), "a");
    *block_on(a.bump_async()) += 1;
    assert_eq!(block_on(arc.arc()), 9);
    assert_eq!(block_on(Pin::new(&mut pinned).pinned()), 4);
    assert_eq!(block_on(two_refs("p", "q")), "p");
    assert_eq!(block_on(Mem.get(1)), Some(1));
    assert_eq!(block_on(Mem.default_get()), 4);
    let f = Mem.load();
    assert_send(&f);
    assert_eq!(block_on(f), 7);
    block_on(early_unit_async(0, &mut v));
    assert_eq!(block_on(fut(1)), 2);
    assert_eq!(block_on(unsafe { read_async(&raw const x) }), 5);
    assert_eq!(block_on(hyg_async(1, 2, 3, 4, 5)), 15);
    assert_eq!(block_on(shadow_prelude::b(1)), 1);
    assert_eq!(block_on(shadow_prelude::e(1)), 1);
    assert_eq!(block_on(shadow_prelude::f(1)), 1);
    assert_eq!(block_on(fact_async(4)), 24);
    assert_eq!(block_on(mutp_async(1)), 2);
    assert_eq!(block_on(pats_async((1, 2), P { f: 3, g: 0 })), 6);

    let e = std::panic::catch_unwind(|| panics(4)).unwrap_err();
    assert_eq!(e.downcast_ref::<Payload>(), Some(&Payload(4)));
    let e = std::panic::catch_unwind(|| never("boom")).unwrap_err();
    assert_eq!(e.downcast_ref::<String>().map(String::as_str), Some("boom"));
    let e = std::panic::catch_unwind(|| block_on(panics_async(6))).unwrap_err();
    assert_eq!(e.downcast_ref::<Payload>(), Some(&Payload(6)));
    drop(root);

    let spans = tracer.get_trace_spans(trace_id);
    let by = |n: &str| {
        spans
            .iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("no span {n}"))
    };
    for n in ["debug_err", "opaque_err", "q_err", "panics", "never"] {
        assert_eq!(by(n).status, agentcore_telemetry::SpanStatus::Error, "{n}");
    }
    for s in spans
        .iter()
        .filter(|s| ["debug_err", "opaque_err", "q_err", "panics"].contains(&&*s.name))
    {
        eprintln!("{}: {:?} {:?}", s.name, s.status_message, s.events);
    }
}

mod batch2 {
    #![allow(dead_code, unused_macros, clippy::needless_borrowed_reference)]
    use agentcore_telemetry::trace_operation;
    use std::fmt::Display;

    /// # Safety
    /// `p` is valid.
    #[trace_operation]
    pub unsafe fn read_2021(p: *const u32) -> u32 {
        *p
    }

    /// # Safety
    /// `p` is valid.
    #[trace_operation]
    pub async unsafe fn read_async_2021(p: *const u32) -> u32 {
        *p
    }

    macro_rules! with_block {
        ($name:ident, $body:block) => {
            #[trace_operation]
            pub fn $name() -> u32 $body
        };
    }
    with_block!(blocky, { 3 });

    macro_rules! with_stmt {
        ($name:ident, $x:ident, $s:stmt) => {
            #[trace_operation]
            pub fn $name() -> u32 {
                $s;
                $x
            }
        };
    }
    with_stmt!(stmty, x, let x = 4);

    #[trace_operation]
    pub async fn out_impl(x: u32) -> impl Display {
        x
    }

    #[trace_operation]
    pub async fn it_arg(it: impl Iterator<Item = &u32>) -> u32 {
        it.copied().sum()
    }

    #[trace_operation]
    pub async fn dyn_arg(f: &dyn Fn(&str) -> &str, s: &str) -> String {
        f(s).to_owned()
    }

    #[trace_operation]
    pub async fn boxed_dyn(b: Box<dyn Display + '_>) -> String {
        b.to_string()
    }

    pub trait Named {
        fn name(&self) -> String;
        #[trace_operation]
        async fn greet(&self) -> String
        where
            Self: Sync,
        {
            self.name()
        }
        fn make() -> Self
        where
            Self: Sized;
    }

    pub struct N;
    impl Named for N {
        fn name(&self) -> String {
            "n".into()
        }
        #[trace_operation]
        fn make() -> Self {
            N
        }
    }

    #[trace_operation]
    pub fn first_word(s: &str) -> &str {
        s.split(' ').next().unwrap_or_default()
    }

    #[trace_operation]
    pub fn slice_mut(v: &mut [u32]) -> &mut u32 {
        &mut v[0]
    }

    #[trace_operation]
    pub fn ref_pat(&(ref a, _): &(String, u8)) -> &str {
        a
    }

    #[trace_operation]
    pub async fn ref_pat_async(&(ref a, _): &(String, u8)) -> &str {
        a
    }

    #[trace_operation]
    pub fn fn_mut(mut f: impl FnMut() -> u32) -> u32 {
        f() + f()
    }

    #[trace_operation]
    pub fn label_loop(n: u32) -> u32 {
        let mut i = 0;
        'outer: loop {
            i += 1;
            if i > n {
                break 'outer i;
            }
        }
    }

    #[trace_operation]
    pub fn r#match(r#type: u32) -> u32 {
        r#type
    }

    #[trace_operation]
    #[deprecated = "use another"]
    pub fn old() -> u32 {
        1
    }
}

mod no_prelude {
    #![no_implicit_prelude]
    use ::agentcore_telemetry::trace_operation;

    #[trace_operation(attributes(n = n))]
    pub fn a(n: u32) -> u32 {
        n
    }
    #[trace_operation(attributes(n = n))]
    pub async fn b(n: u32) -> ::core::result::Result<u32, ::std::string::String> {
        ::core::result::Result::Ok(n)
    }
    #[trace_operation]
    #[track_caller]
    pub fn c(n: ::core::option::Option<u32>) -> ::core::option::Option<u32> {
        let v = n?;
        ::core::option::Option::Some(v)
    }
    #[trace_operation]
    pub fn e(n: u32) -> impl ::core::future::Future<Output = u32> {
        async move { n }
    }
    #[trace_operation]
    pub fn f(
        n: u32,
    ) -> ::core::pin::Pin<::std::boxed::Box<dyn ::core::future::Future<Output = u32>>> {
        ::std::boxed::Box::pin(async move { n })
    }
    #[trace_operation]
    pub fn g(n: u32) -> ! {
        ::core::panic!("{n}")
    }
    #[trace_operation]
    pub async fn h((a, b): (u32, u32), mut c: u32) -> u32 {
        c += a + b;
        c
    }
}

#[test]
fn batch2_runs() {
    use batch2::Named;
    let x = 5u32;
    assert_eq!(unsafe { batch2::read_2021(&raw const x) }, 5);
    assert_eq!(
        block_on(unsafe { batch2::read_async_2021(&raw const x) }),
        5
    );
    assert_eq!(batch2::blocky(), 3);
    assert_eq!(batch2::stmty(), 4);
    assert_eq!(block_on(batch2::out_impl(2)).to_string(), "2");
    assert_eq!(block_on(batch2::it_arg([1u32, 2].iter())), 3);
    assert_eq!(block_on(batch2::dyn_arg(&|s| s, "q")), "q");
    assert_eq!(block_on(batch2::boxed_dyn(Box::new(1))), "1");
    assert_eq!(block_on(batch2::N.greet()), "n");
    let _ = batch2::N::make();
    assert_eq!(batch2::first_word("a b"), "a");
    assert_eq!(*batch2::slice_mut(&mut [7]), 7);
    assert_eq!(batch2::ref_pat(&("s".into(), 1)), "s");
    assert_eq!(block_on(batch2::ref_pat_async(&("s".into(), 1))), "s");
    let mut k = 0;
    assert_eq!(
        batch2::fn_mut(|| {
            k += 1;
            k
        }),
        3
    );
    assert_eq!(batch2::label_loop(3), 4);
    assert_eq!(batch2::r#match(3), 3);
    assert_eq!(no_prelude::a(1), 1);
    assert_eq!(block_on(no_prelude::b(1)), Ok(1));
    assert_eq!(no_prelude::c(Some(1)), Some(1));
    assert_eq!(block_on(no_prelude::e(1)), 1);
    assert_eq!(block_on(no_prelude::f(1)), 1);
    assert_eq!(block_on(no_prelude::h((1, 2), 3)), 6);
}

mod batch3 {
    #![allow(dead_code)]
    use agentcore_telemetry::trace_operation;
    use std::future::Future;
    use std::pin::Pin;

    #[derive(Debug)]
    pub struct MyErr;
    impl From<std::num::ParseIntError> for MyErr {
        fn from(_: std::num::ParseIntError) -> Self {
            MyErr
        }
    }

    pub fn plain_trim() -> impl Fn(&str) -> &str {
        |s| s.trim()
    }
    // Review helper-159: "type annotations needed" (E0282) for `|s|`, traced.
    #[trace_operation]
    pub fn traced_trim() -> impl Fn(&str) -> &str {
        |s| s.trim()
    }
    #[trace_operation(attributes(n = n))]
    #[track_caller]
    pub fn traced_trim_early(n: u32, mut early: bool) -> impl Fn(&str) -> &str {
        fn first(s: &str) -> &str {
            s.get(..1).unwrap_or_default()
        }
        early &= n > 0;
        if early {
            return first;
        }
        first
    }
    #[trace_operation]
    pub fn counts(n: u32, (a, b): (u32, u32)) -> impl Iterator<Item = u32> {
        (0..n).map(move |x| x * a + b)
    }
    #[trace_operation]
    pub fn panics_opaque(x: u32) -> impl Iterator<Item = u32> {
        std::panic::panic_any(super::Payload(x));
        #[allow(unreachable_code)]
        std::iter::empty()
    }

    // Review helper-159: the error type is only `Debug`; traced, this read "`MyErr` doesn't
    // implement `std::fmt::Display`" (E0277, `VerdictDisplayDebug`).
    pub fn plain_parse(v: &str) -> impl Future<Output = Result<u32, MyErr>> + '_ {
        async move {
            let n = v.parse::<u32>()?;
            Ok(n)
        }
    }
    #[trace_operation]
    pub fn traced_parse(v: &str) -> impl Future<Output = Result<u32, MyErr>> + '_ {
        async move {
            let n = v.parse::<u32>()?;
            Ok(n)
        }
    }

    pub fn plain_boxed(v: &str) -> Pin<Box<dyn Future<Output = Result<u32, MyErr>> + Send + '_>> {
        Box::pin(async move {
            let n = v.parse::<u32>()?;
            Ok(n)
        })
    }
    #[trace_operation]
    pub fn traced_boxed(v: &str) -> Pin<Box<dyn Future<Output = Result<u32, MyErr>> + Send + '_>> {
        Box::pin(async move {
            let n = v.parse::<u32>()?;
            Ok(n)
        })
    }

    pub fn plain_box_fn() -> Box<dyn Fn(&str) -> &str> {
        Box::new(|s| s.trim())
    }
    #[trace_operation]
    pub fn traced_box_fn() -> Box<dyn Fn(&str) -> &str> {
        Box::new(|s| s.trim())
    }

    #[trace_operation]
    pub fn borrowed_out(v: &str) -> impl Future<Output = Result<&str, MyErr>> + '_ {
        async move {
            v.parse::<u32>()?;
            Ok(v)
        }
    }

    #[trace_operation]
    pub fn send_fut(x: u32) -> impl Future<Output = u32> + Send {
        async move { x }
    }
}

#[test]
fn batch3_runs() {
    assert_eq!(block_on(batch3::traced_parse("1")).unwrap(), 1);
    assert_eq!(block_on(batch3::plain_parse("1")).unwrap(), 1);
    assert_eq!(block_on(batch3::traced_boxed("1")).unwrap(), 1);
    assert_eq!(block_on(batch3::plain_boxed("1")).unwrap(), 1);
    assert_eq!(batch3::traced_box_fn()(" a "), "a");
    assert_eq!(batch3::plain_box_fn()(" a "), "a");
    assert_eq!(block_on(batch3::borrowed_out("1")).unwrap(), "1");
    assert_eq!(batch3::traced_trim()(" a "), "a");
    assert_eq!(batch3::plain_trim()(" a "), "a");
    assert_eq!(batch3::traced_trim_early(1, true)("ab"), "a");
    assert_eq!(batch3::counts(3, (2, 1)).collect::<Vec<_>>(), [1, 3, 5]);
    let tracer = get_distributed_tracer();
    let root = tracer.start_span("root159_batch3", SpanKind::Server, []);
    let trace_id = root.trace_id();
    assert!(block_on(batch3::traced_parse("x")).is_err());
    assert_eq!(batch3::traced_trim()(" b "), "b");
    let e = std::panic::catch_unwind(|| batch3::panics_opaque(8).count()).unwrap_err();
    assert_eq!(e.downcast_ref::<Payload>(), Some(&Payload(8)));
    drop(root);
    let spans = tracer.get_trace_spans(trace_id);
    let parse = spans.iter().find(|s| s.name == "traced_parse").unwrap();
    assert_eq!(
        (parse.status, &*parse.status_message),
        (agentcore_telemetry::SpanStatus::Error, "MyErr")
    );
    let trim = spans.iter().find(|s| s.name == "traced_trim").unwrap();
    assert_eq!(trim.status, agentcore_telemetry::SpanStatus::Ok);
    let opaque = spans.iter().find(|s| s.name == "panics_opaque").unwrap();
    assert_eq!(opaque.status, agentcore_telemetry::SpanStatus::Error);
    assert_eq!(opaque.events[0].name, "exception");
    let f = batch3::send_fut(1);
    assert_send(&f);
    assert_eq!(block_on(f), 1);
}
