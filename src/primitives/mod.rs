//! The metric primitives, recording into the crate-private slot arena (`sync::slots`).
//!
//! All handles are `Send + Sync` and cheap to clone (clones share the value).
//!
//! ```
//! use agentcore_telemetry::{Counter, Gauge};
//!
//! let requests = Counter::new().unwrap();
//! let in_flight = Gauge::new();
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         let (requests, in_flight) = (requests.clone(), in_flight.clone());
//!         s.spawn(move || {
//!             requests.inc();
//!             in_flight.inc();
//!         });
//!     }
//! });
//! assert_eq!((requests.get(), in_flight.get()), (4.0, 4.0)); // every clone recorded into one value
//! ```

pub mod counter;
pub(crate) mod counter_sum;
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

/// Now, in microseconds since the Unix epoch (0 for a clock set before 1970): when a counter,
/// histogram or summary is made, the time its values start from zero (the OpenMetrics
/// `_created` of every series that exposes it), and when a series is created.
pub(crate) fn unix_micros_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
