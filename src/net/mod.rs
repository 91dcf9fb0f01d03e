//! What the crate's blocking HTTP/1.1 clients share (the Pushgateway client, `pushgateway::http`,
//! and the OTLP/HTTP exporter, `export::otlp::transport`): parsing their `http://` URLs
//! ([`url`]). Crate-private; compiled when either feature is on.

pub(crate) mod url;
