//! What the crate's blocking HTTP/1.1 clients share (the Pushgateway client, `pushgateway::http`,
//! and the OTLP/HTTP exporter, `export::otlp::transport`): parsing their `http://` URLs
//! ([`url`]) and turning caller-given timeouts into deadlines that never overflow
//! ([`deadline`]). Crate-private; compiled when either feature is on.

pub(crate) mod deadline;
pub(crate) mod url;
