//! An error's `exception.type` on a span. Its message is its `Display`, formatted by
//! [`crate::user_fmt`] (never a panic).

use crate::user_fmt::debug_text;
use std::borrow::Cow;
use std::fmt;

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

    /// Writes `"partial"`, then fails.
    struct Failing;
    impl fmt::Debug for Failing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("partial")?;
            Err(fmt::Error)
        }
    }

    #[test]
    fn a_type_erased_error_is_named_by_its_debug_form_never_a_panic() {
        assert_eq!(exception_type(&Failing), std::any::type_name::<Failing>());
        let erased: &dyn fmt::Debug = &Failing;
        assert_eq!(exception_type(erased), "partial<fmt::Error>");
    }
}
