//! What the crate's HTTP code shares: the blocking clients (the Pushgateway client,
//! `pushgateway::http`, and the OTLP/HTTP exporter, `export::otlp::transport`) parse their
//! `http://` URLs with [`url`] and resolve and connect, by a deadline they keep whatever the
//! resolver does, with [`connect`]; they and the `/metrics` server (`serve`) turn caller-given
//! timeouts into deadlines that never overflow with [`deadline`]. Crate-private; compiled
//! when any of those features is on.

#[cfg(any(feature = "pushgateway", feature = "otlp"))]
pub(crate) mod connect;
pub(crate) mod deadline;
#[cfg(any(feature = "pushgateway", feature = "otlp"))]
pub(crate) mod url;
