//! Serde for the `f64` fields of a snapshot: a finite number as a number; NaN and the
//! infinities, which JSON cannot write, as the strings `"NaN"`, `"+Inf"` and `"-Inf"` (as
//! Prometheus' HTTP API writes them) in human-readable formats, as they are in the others.
//! Reading accepts a number or any string [`f64::from_str`](std::str::FromStr) reads (so
//! `"inf"` and `"Infinity"` too).

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

/// The string a non-finite `v` is written as.
fn non_finite_name(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

pub(crate) fn serialize<S: Serializer>(v: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() || !serializer.is_human_readable() {
        serializer.serialize_f64(*v)
    } else {
        serializer.serialize_str(non_finite_name(*v))
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    if deserializer.is_human_readable() {
        deserializer.deserialize_any(FloatVisitor)
    } else {
        deserializer.deserialize_f64(FloatVisitor)
    }
}

struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, \"NaN\", \"+Inf\" or \"-Inf\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<f64, E> {
        Ok(f64::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        v.parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// An `f64` serialized as above, for `Option<f64>`.
pub(super) struct Float(pub(super) f64);

impl serde::Serialize for Float {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Float)
    }
}

/// The same for an `Option<f64>`: `None` is `null`.
pub(super) mod option {
    use super::Float;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        v: &Option<f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        v.map(Float).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Ok(Option::<Float>::deserialize(deserializer)?.map(|f| f.0))
    }
}
