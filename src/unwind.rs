//! Taking a caught panic apart, for the code that runs code the crate does not control and
//! goes on when it panics: the span processor (`export::batch`, around an exporter's calls),
//! the Pushgateway pusher (`pushgateway::pusher`, around the registry's callbacks), the
//! console exporter's writer thread and the `/metrics` server's encoder threads (around a
//! writer and a source), and `user_fmt` (around a value's `Display` or `Debug`). Crate-private.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The message of a caught panic (its payload if it is a string), and the payload dropped.
/// Dropping a payload runs its `Drop`, which may panic in turn: that is caught too, and the
/// new payload dropped the same way, up to 8 times; a payload whose drop still panics after
/// that is forgotten (leaked), so nothing unwinds out of here.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
    let mut payload = payload;
    for _ in 0..8 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return message,
            Err(again) => payload = again,
        }
    }
    std::mem::forget(payload);
    message
}
