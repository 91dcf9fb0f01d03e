//! [`Info`]: a set of constant labels exposed as one sample with value 1.

/// An info metric: its label values *are* the information, and its sample is always `1`, as with
/// the specification's `agentcore_runtime_info{version, environment, platform}`. In the text
/// format 0.0.4 (which has no `info` type) it is exposed as a gauge, as Prometheus' clients do.
///
/// An `Info` series carries no value of its own; creating it through a family is what records it:
///
/// ```
/// use agentcore_telemetry::Registry;
///
/// let registry = Registry::new();
/// let info = registry.info_family("build_info", "Build.", &["version"]).unwrap();
/// info.with_label_values(&["1.0.0"]).unwrap();
/// assert!(registry.encode_text().contains("build_info{version=\"1.0.0\"} 1\n"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Info;
