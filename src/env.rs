//! Reading `OTEL_*` variables from the process environment without losing the ones that are not
//! UTF-8.
//!
//! The `from_env` readers ([`ExportConfig`](crate::export::ExportConfig),
//! [`Sampler`](crate::Sampler), [`SpanLimits`](crate::SpanLimits)) take a lookup returning
//! `Option<String>`. `std::env::var(name).ok()` would turn a value that is set but not valid
//! UTF-8 (`VarError::NotUnicode`) into `None`, the same as unset, without a word, although no
//! setting can use such a value and the readers promise a warning for every value they ignore.
//! [`EnvReader::get`] reads it as unset too (never a panic, never a lossy copy of the value
//! passed on as if it were the user's), and records the variable, once however often it is
//! read, for [`EnvReader::not_unicode`] to report.

use std::cell::RefCell;
use std::ffi::OsString;

/// A lookup over an `OsString` environment (the process's: [`EnvReader::process`]) that
/// records the variables whose values are not UTF-8.
pub(crate) struct EnvReader<F> {
    lookup: F,
    /// `(variable, its value with U+FFFD for the bytes that are not UTF-8)`, first-read order.
    not_unicode: RefCell<Vec<(String, String)>>,
}

impl EnvReader<fn(&str) -> Option<OsString>> {
    /// The process environment (`std::env::var_os`).
    pub(crate) fn process() -> Self {
        let lookup: fn(&str) -> Option<OsString> = |name| std::env::var_os(name);
        EnvReader::new(lookup)
    }
}

impl<F: Fn(&str) -> Option<OsString>> EnvReader<F> {
    pub(crate) fn new(lookup: F) -> Self {
        EnvReader {
            lookup,
            not_unicode: RefCell::new(Vec::new()),
        }
    }

    /// The value of `name`; `None` when unset, or when not UTF-8 (then recorded).
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        match (self.lookup)(name)?.into_string() {
            Ok(value) => Some(value),
            Err(raw) => {
                let mut seen = self.not_unicode.borrow_mut();
                if !seen.iter().any(|(n, _)| n == name) {
                    seen.push((name.to_owned(), raw.to_string_lossy().into_owned()));
                }
                None
            }
        }
    }

    /// Whether `name` is set to a value that is not UTF-8 (recorded as [`get`](Self::get)
    /// records it). Only `ExportConfig` asks (its endpoints).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn is_not_unicode(&self, name: &str) -> bool {
        (self.lookup)(name).is_some() && self.get(name).is_none()
    }

    /// The variables read so far whose values are not UTF-8, with their values (lossy), in
    /// the order first read.
    pub(crate) fn not_unicode(&self) -> Vec<(String, String)> {
        self.not_unicode.borrow().clone()
    }

    /// One message per variable read so far whose value is not UTF-8 (`VARIABLE="value": why`,
    /// as the readers' other warnings).
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.not_unicode()
            .into_iter()
            .map(|(name, value)| format!("{name}={value:?}: {NOT_UNICODE}"))
            .collect()
    }
}

/// Why a value that is not UTF-8 is ignored.
pub(crate) const NOT_UNICODE: &str = "is not valid UTF-8; the variable is ignored";

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_value_that_is_not_utf8_reads_as_unset_and_is_recorded_once() {
        let env = EnvReader::new(|name: &str| match name {
            "GOOD" => Some(OsString::from("ok")),
            "BAD" => Some(OsString::from_vec(b"a\xffb".to_vec())),
            _ => None,
        });
        assert_eq!(env.get("GOOD").as_deref(), Some("ok"));
        assert_eq!(env.get("UNSET"), None);
        assert_eq!(env.get("BAD"), None);
        assert_eq!(env.get("BAD"), None);
        assert!(env.is_not_unicode("BAD"));
        assert!(!env.is_not_unicode("GOOD") && !env.is_not_unicode("UNSET"));
        assert_eq!(env.not_unicode(), [("BAD".into(), "a\u{fffd}b".into())]);
        assert_eq!(
            env.warnings(),
            ["BAD=\"a\u{fffd}b\": is not valid UTF-8; the variable is ignored"]
        );
    }
}
