//! Formatting values whose `Display` or `Debug` the crate does not control, never a panic: a
//! traced function's `Err`, `record_exception`'s error, the `tracing` bridge's fields, a user
//! writer's `io::Error`.
//!
//! `to_string()` and `format!` panic when an implementation returns `fmt::Error` ("a Display
//! implementation returned an error unexpectedly"), which one that passes on an inner writer's
//! error with `?` does; and an implementation may panic itself. Where the crate formats such a
//! value for its own record, a panic there replaced what the caller's code returned or killed a
//! worker thread (reviews helper-96 and helper-97: `#[trace_operation]` turned an `Err` return
//! into a panic; the console exporter's writer thread died and reported a failed line as
//! written). So the text is what the implementation wrote before it failed, followed by
//! [`FORMAT_FAILED`] (it returned an error) or [`FORMAT_PANICKED`] (it panicked: the panic is
//! caught, its payload dropped without unwinding, `crate::unwind`; the panic hook has reported
//! it as for any panic).

use crate::unwind::panic_message;
use std::fmt::{self, Write as _};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Appended to the text of a value whose `Display` or `Debug` returned an error.
pub(crate) const FORMAT_FAILED: &str = "<fmt::Error>";

/// Appended to the text of a value whose `Display` or `Debug` panicked.
pub(crate) const FORMAT_PANICKED: &str = "<panicked>";

/// `value`'s `Display` form, as `to_string()` gives it, but never a panic: see the module docs.
pub(crate) fn display_text<T: fmt::Display + ?Sized>(value: &T) -> String {
    text_of(|text| write!(text, "{value}"))
}

/// `value`'s `Debug` form, as `format!("{value:?}")` gives it, but never a panic: see the
/// module docs.
pub(crate) fn debug_text<T: fmt::Debug + ?Sized>(value: &T) -> String {
    text_of(|text| write!(text, "{value:?}"))
}

/// What `write` wrote, marked if it failed or panicked. The text is valid whatever happens:
/// a `String` is only ever appended to whole `&str`s, and a panic leaves what was appended.
fn text_of(write: impl FnOnce(&mut String) -> fmt::Result) -> String {
    let mut text = String::new();
    match catch_unwind(AssertUnwindSafe(|| write(&mut text))) {
        Ok(Ok(())) => {}
        Ok(Err(fmt::Error)) => text.push_str(FORMAT_FAILED),
        Err(payload) => {
            drop(panic_message(payload));
            text.push_str(FORMAT_PANICKED);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `"partial"`, then fails, as an implementation passing on a writer's error does.
    struct Failing;
    impl fmt::Display for Failing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("partial")?;
            Err(fmt::Error)
        }
    }
    impl fmt::Debug for Failing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Display::fmt(self, f)
        }
    }

    /// Writes `"partial"`, then panics.
    struct Panicking;
    impl fmt::Display for Panicking {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("partial")?;
            panic!("a Display that panics (expected by this test)");
        }
    }
    impl fmt::Debug for Panicking {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Display::fmt(self, f)
        }
    }

    #[test]
    fn a_failing_or_panicking_implementation_gives_what_it_wrote_and_a_marker() {
        assert_eq!(display_text(&Failing), "partial<fmt::Error>");
        assert_eq!(debug_text(&Failing), "partial<fmt::Error>");
        assert_eq!(display_text(&Panicking), "partial<panicked>");
        assert_eq!(debug_text(&Panicking), "partial<panicked>");
        assert_eq!(display_text("ok"), "ok");
        assert_eq!(debug_text("ok"), "\"ok\"");
    }
}
