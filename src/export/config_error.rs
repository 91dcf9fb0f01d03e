//! [`ConfigError`]: a configuration value refused or ignored, named without its credentials.
//!
//! Its own module because both the environment's reader (`config`) and the exporters that
//! check their settings in code (`otlp::OtlpHttpExporter::new`) make one, and neither may
//! import the other.

use std::borrow::Cow;
use std::fmt;

/// A configuration value that was refused or ignored: which setting, what value, why.
///
/// ```
/// use agentcore_telemetry::export::ExportConfig;
/// let err = ExportConfig::from_lookup(|name| {
///     (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".to_string())
/// })
/// .unwrap_err();
/// assert_eq!(err.variable, "OTEL_EXPORTER_OTLP_PROTOCOL");
/// assert!(err.to_string().starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\": "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable (or code setting) at fault.
    pub variable: Cow<'static, str>,
    /// The value it had; for a header list (`OTEL_EXPORTER_OTLP_*HEADERS`), with every
    /// header value replaced by `<redacted>`, and for an endpoint, with its user info and
    /// query replaced (they are often credentials, and warnings go to logs).
    pub value: String,
    /// What is wrong, and what happens instead.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(
        variable: impl Into<Cow<'static, str>>,
        value: &str,
        reason: impl Into<String>,
    ) -> Self {
        let variable = variable.into();
        ConfigError {
            value: super::redact::shown(&variable, value),
            variable,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.variable, self.value, self.reason)
    }
}

impl std::error::Error for ConfigError {}
