//! OTLP: the encoders (binary protobuf and OTLP JSON, hand-written, into reused buffers) and
//! the OTLP/HTTP exporter.
//!
//! * `proto` — protobuf writer/reader (crate-private);
//! * `json` — OTLP JSON writer and a small response parser (crate-private);
//! * [`OtlpEncoder`] — a batch encoded span by span, and the requests built from it;
//! * `transport` — HTTP/1.1 over `std::net::TcpStream`, deadline-bounded (crate-private);
//! * [`OtlpHttpExporter`] — retries, splitting, partial success, counting.

mod encoder;
mod exporter;
pub(crate) mod http_date;
pub(crate) mod json;
pub(crate) mod proto;
pub(crate) mod transport;

pub use encoder::OtlpEncoder;
pub(crate) use exporter::validate_header;
pub use exporter::{user_agent, OtlpHttpConfig, OtlpHttpExporter, RetryPolicy, MAX_REQUEST_BYTES};

use std::fmt;

/// The OTLP/HTTP encoding (`OTEL_EXPORTER_OTLP_PROTOCOL`).
///
/// ```
/// use agentcore_telemetry::export::otlp::Protocol;
/// assert_eq!(Protocol::HttpProtobuf.content_type(), "application/x-protobuf");
/// assert_eq!(Protocol::HttpJson.to_string(), "http/json");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `http/protobuf`: binary protobuf, `application/x-protobuf` (the default).
    #[default]
    HttpProtobuf,
    /// `http/json`: OTLP JSON, `application/json`.
    HttpJson,
}

impl Protocol {
    /// The `Content-Type` of requests (responses come back in the same type).
    ///
    /// ```
    /// use agentcore_telemetry::export::otlp::Protocol;
    /// assert_eq!(Protocol::HttpJson.content_type(), "application/json");
    /// ```
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "application/x-protobuf",
            Protocol::HttpJson => "application/json",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        })
    }
}

/// Request compression (`OTEL_EXPORTER_OTLP_COMPRESSION`).
///
/// ```
/// use agentcore_telemetry::export::otlp::Compression;
/// assert_eq!(Compression::default(), Compression::None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Uncompressed (the default).
    #[default]
    None,
    /// gzip (`Content-Encoding: gzip`), at flate2's fastest level.
    Gzip,
}
