//! Validation of metric and label names against the Prometheus rules.

use crate::Error;

/// Checks a metric name against `[a-zA-Z_:][a-zA-Z0-9_:]*`.
///
/// ```
/// use agentcore_telemetry::registry::name::validate_metric_name;
///
/// assert!(validate_metric_name("agentcore_agents_total").is_ok());
/// assert!(validate_metric_name("9lives").is_err());
/// assert!(validate_metric_name("").is_err());
/// ```
pub fn validate_metric_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic() || b == b'_' || b == b':' || (i > 0 && b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidMetricName { name: name.into() })
    }
}

/// Checks a label name against `[a-zA-Z_][a-zA-Z0-9_]*`, refusing the reserved `__` prefix.
///
/// ```
/// use agentcore_telemetry::registry::name::validate_label_name;
///
/// assert!(validate_label_name("tool_id").is_ok());
/// assert!(validate_label_name("__name__").is_err());
/// assert!(validate_label_name("a-b").is_err());
/// ```
pub fn validate_label_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit()));
    if !ok {
        return Err(Error::InvalidLabelName {
            name: name.into(),
            reason: "must match [a-zA-Z_][a-zA-Z0-9_]*",
        });
    }
    if name.starts_with("__") {
        return Err(Error::InvalidLabelName {
            name: name.into(),
            reason: "names starting with __ are reserved by Prometheus",
        });
    }
    Ok(())
}

/// Whether OpenMetrics 1.0 reserves `name`, a metric family name or a label name: those
/// beginning with an underscore ("Label names beginning with underscores are RESERVED and MUST
/// NOT be used unless specified by this standard", and the same of MetricFamily names). The
/// text format 0.0.4 reserves only `__` label names, which [`validate_label_name`] refuses; the
/// registry, which exposes both formats, refuses both (`Registry::register`), and so do
/// exemplars, which only OpenMetrics carries.
pub(crate) fn reserved_by_openmetrics(name: &str) -> bool {
    name.starts_with('_')
}

/// The reason given for a label name [`reserved_by_openmetrics`] refuses.
pub(crate) const OPENMETRICS_RESERVED: &str =
    "names starting with _ are reserved by OpenMetrics 1.0";
