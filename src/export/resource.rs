//! The OTLP `Resource` (who emits the spans) and `InstrumentationScope` (which library).

use std::borrow::Cow;
use std::collections::HashMap;

use crate::tracer::{KeyValue, Value};

/// The instrumentation scope of every exported span: this crate, by its package name.
///
/// ```
/// assert_eq!(agentcore_telemetry::export::SCOPE_NAME, "agentcore-telemetry");
/// ```
pub const SCOPE_NAME: &str = env!("CARGO_PKG_NAME");

/// This crate's version: the scope's version and `telemetry.sdk.version`.
///
/// ```
/// assert!(!agentcore_telemetry::export::SDK_VERSION.is_empty());
/// ```
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The attributes describing the process that emits the spans (OTLP `Resource`).
///
/// Always holds `service.name` and the `telemetry.sdk.*` attributes
/// (`telemetry.sdk.name` = `agentcore-telemetry`, `telemetry.sdk.language` = `rust`,
/// `telemetry.sdk.version` = this crate's version); more can be added, and an attribute set
/// again replaces the earlier value (keys stay unique, in first-set order).
///
/// ```
/// use agentcore_telemetry::export::Resource;
///
/// let resource = Resource::new("agent-runtime").with("deployment.environment.name", "dev");
/// assert_eq!(resource.get("service.name"), Some("agent-runtime"));
/// assert_eq!(resource.get("telemetry.sdk.language"), Some("rust"));
/// assert_eq!(resource.get("deployment.environment.name"), Some("dev"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    attributes: Vec<KeyValue>,
}

impl Resource {
    /// A resource for service `service_name` with the SDK attributes.
    ///
    /// ```
    /// use agentcore_telemetry::export::Resource;
    /// assert_eq!(Resource::new("svc").attributes().len(), 4);
    /// ```
    pub fn new(service_name: impl Into<Cow<'static, str>>) -> Self {
        Resource {
            attributes: vec![
                KeyValue::new("service.name", Value::Str(service_name.into())),
                KeyValue::new("telemetry.sdk.name", SCOPE_NAME),
                KeyValue::new("telemetry.sdk.language", "rust"),
                KeyValue::new("telemetry.sdk.version", SDK_VERSION),
            ],
        }
    }

    /// The default service name of the OpenTelemetry resource specification:
    /// `unknown_service:<executable name>` (or `unknown_service` when the executable is not
    /// known).
    ///
    /// ```
    /// use agentcore_telemetry::export::Resource;
    /// assert!(Resource::default_service_name().starts_with("unknown_service"));
    /// ```
    pub fn default_service_name() -> String {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map_or_else(
                || "unknown_service".to_owned(),
                |n| format!("unknown_service:{n}"),
            )
    }

    /// Sets attribute `key` (replacing an earlier value).
    ///
    /// ```
    /// use agentcore_telemetry::export::Resource;
    /// let r = Resource::new("a").with("service.name", "b");
    /// assert_eq!(r.get("service.name"), Some("b"));
    /// ```
    pub fn with(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets attribute `key` in place (replacing an earlier value). An empty key is ignored:
    /// OpenTelemetry requires attribute keys to be non-empty (as spans drop such attributes,
    /// and `OTEL_RESOURCE_ATTRIBUTES` refuses them).
    ///
    /// ```
    /// use agentcore_telemetry::export::Resource;
    /// let mut r = Resource::new("a");
    /// r.set("host.name", "box");
    /// r.set("", "ignored");
    /// assert_eq!(r.get("host.name"), Some("box"));
    /// assert!(r.attributes().iter().all(|kv| !kv.key.is_empty()));
    /// ```
    pub fn set(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        let kv = KeyValue::new(key, value);
        if kv.key.is_empty() {
            return;
        }
        match self.attributes.iter_mut().find(|e| e.key == kv.key) {
            Some(e) => e.value = kv.value,
            None => self.attributes.push(kv),
        }
    }

    /// [`set`](Self::set) for each of `attrs` in turn, in time linear in their number (`set`
    /// looks a key up among all the attributes: many attributes, as a long
    /// `OTEL_RESOURCE_ATTRIBUTES` gives, took quadratic time).
    pub(crate) fn set_all(&mut self, attrs: impl IntoIterator<Item = (Cow<'static, str>, Value)>) {
        let mut index: HashMap<Cow<'static, str>, usize> = self
            .attributes
            .iter()
            .enumerate()
            .map(|(i, kv)| (kv.key.clone(), i))
            .collect();
        for (key, value) in attrs {
            if key.is_empty() {
                continue;
            }
            match index.get(&key) {
                Some(&i) => self.attributes[i].value = value,
                None => {
                    index.insert(key.clone(), self.attributes.len());
                    self.attributes.push(KeyValue::new(key, value));
                }
            }
        }
    }

    /// The string value of attribute `key`.
    ///
    /// ```
    /// use agentcore_telemetry::export::Resource;
    /// assert_eq!(Resource::new("a").get("missing"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_str())
    }

    /// The attributes, in order.
    ///
    /// ```
    /// use agentcore_telemetry::export::Resource;
    /// assert_eq!(Resource::new("a").attributes()[0].key, "service.name");
    /// ```
    pub fn attributes(&self) -> &[KeyValue] {
        &self.attributes
    }
}

impl Default for Resource {
    /// [`Resource::new`] with [`Resource::default_service_name`].
    fn default() -> Self {
        Resource::new(Resource::default_service_name())
    }
}
