//! Typed attribute values and key-value pairs.

use std::borrow::Cow;
use std::fmt;

/// An attribute value: string, 64-bit integer, 64-bit float or boolean (the OTLP scalar types).
///
/// Strings are `Cow<'static, str>`, so a `&'static str` costs no allocation.
///
/// ```
/// use agentcore_telemetry::Value;
///
/// assert_eq!(Value::from("react"), Value::Str("react".into()));
/// assert_eq!(Value::from(3), Value::I64(3));
/// assert_eq!(Value::from(true).to_string(), "true");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(Cow<'static, str>),
    /// A signed 64-bit integer.
    I64(i64),
    /// A 64-bit float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The string, when this is a string value.
    ///
    /// ```
    /// use agentcore_telemetry::Value;
    /// assert_eq!(Value::from("x").as_str(), Some("x"));
    /// assert_eq!(Value::from(1).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl From<&'static str> for Value {
    fn from(v: &'static str) -> Self {
        Value::Str(Cow::Borrowed(v))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(Cow::Owned(v))
    }
}

impl From<Cow<'static, str>> for Value {
    fn from(v: Cow<'static, str>) -> Self {
        Value::Str(v)
    }
}

macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::I64(i64::from(v))
            }
        }
    )*};
}
int_from!(i8, i16, i32, i64, u8, u16, u32);

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::F64(f64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// An attribute: a key (static or owned string) and a typed [`Value`].
///
/// ```
/// use agentcore_telemetry::{KeyValue, Value};
///
/// let kv = KeyValue::new("priority", "high");
/// assert_eq!(kv.key, "priority");
/// assert_eq!(kv.value, Value::from("high"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// The attribute name.
    pub key: Cow<'static, str>,
    /// The attribute value.
    pub value: Value,
}

impl KeyValue {
    /// A key-value pair; static strings are stored without allocating.
    ///
    /// ```
    /// use agentcore_telemetry::KeyValue;
    /// let kv = KeyValue::new("retries", 3);
    /// assert_eq!(kv.value.to_string(), "3");
    /// ```
    #[inline]
    pub fn new(key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}
