//! What an error or a user value becomes as span text: an error's `exception.type`, and the
//! `Display` / `Debug` form of a value the crate did not write, formatted without panicking.
//!
//! `to_string()` and `format!` panic when a `Display` or `Debug` implementation returns
//! `fmt::Error` ("a Display implementation returned an error unexpectedly"), which such an
//! implementation may do (one that passes on an inner writer's error with `?`). The crate
//! formats values it is handed (a traced function's `Err`, `record_exception`'s error, the
//! `tracing` bridge's fields) where a panic would replace what the caller's code returned (review
//! helper-96: `#[trace_operation]` turned an `Err` return into a panic), so it formats them
//! here: what the implementation wrote before its error, then [`FORMAT_FAILED`].

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Appended to the text of a value whose `Display` or `Debug` returned an error.
pub(crate) const FORMAT_FAILED: &str = "<fmt::Error>";

/// `value`'s `Display` form, as `to_string()` gives it, but never a panic: see the module docs.
pub(crate) fn display_text<T: fmt::Display + ?Sized>(value: &T) -> String {
    let mut text = String::new();
    if write!(text, "{value}").is_err() {
        text.push_str(FORMAT_FAILED);
    }
    text
}

/// `value`'s `Debug` form, as `format!("{value:?}")` gives it, but never a panic: see the
/// module docs.
pub(crate) fn debug_text<T: fmt::Debug + ?Sized>(value: &T) -> String {
    let mut text = String::new();
    if write!(text, "{value:?}").is_err() {
        text.push_str(FORMAT_FAILED);
    }
    text
}

/// The `exception.type` of `error`: the Rust type name of `E`, or for a type-erased error
/// (`dyn Error`, `Box<dyn Error>`: the name says nothing) its `Debug` form, capped at 256
/// bytes at a character boundary.
pub(crate) fn exception_type<E: fmt::Debug + ?Sized>(error: &E) -> Cow<'static, str> {
    const MAX: usize = 256;
    let name = std::any::type_name::<E>();
    if !name.contains("dyn ") {
        return Cow::Borrowed(name);
    }
    let mut debug = debug_text(error);
    if debug.len() > MAX {
        let mut end = MAX;
        while !debug.is_char_boundary(end) {
            end -= 1; // terminates: 0 is a boundary
        }
        debug.truncate(end);
    }
    Cow::Owned(debug)
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

    #[test]
    fn a_failing_implementation_gives_what_it_wrote_and_the_marker() {
        assert_eq!(display_text(&Failing), "partial<fmt::Error>");
        assert_eq!(debug_text(&Failing), "partial<fmt::Error>");
        assert_eq!(display_text("ok"), "ok");
        assert_eq!(debug_text("ok"), "\"ok\"");
        let erased: &dyn fmt::Debug = &Failing;
        assert_eq!(exception_type(erased), "partial<fmt::Error>");
    }
}
