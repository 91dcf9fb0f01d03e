//! The metric primitives, recording into the crate-private slot arena (`sync::slots`).
//!
//! All handles are `Send + Sync` and cheap to clone (clones share the value).

pub mod counter;
pub mod exemplar;
pub mod gauge;
pub mod histogram;
pub mod info;
pub mod summary;

pub use counter::Counter;
pub use exemplar::{Exemplars, MAX_EXEMPLAR_LABEL_CHARS};
pub use gauge::Gauge;
pub use histogram::{Buckets, Histogram, HistogramSnapshot};
pub use info::Info;
pub use summary::{Summary, SummaryConfig, SummaryReading};
