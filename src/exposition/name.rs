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
