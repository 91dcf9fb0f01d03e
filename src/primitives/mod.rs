//! The metric primitives and the per-thread slot arena they record into.
//!
//! All handles are `Send + Sync` and cheap to clone (clones share the value).

pub mod counter;
pub mod gauge;
pub mod histogram;
pub mod info;
pub mod rcu;
pub mod slots;
pub mod summary;

pub use counter::Counter;
pub use gauge::Gauge;
pub use histogram::{Buckets, Histogram, HistogramSnapshot};
pub use info::Info;
pub use summary::{Summary, SummaryConfig, SummaryReading};
