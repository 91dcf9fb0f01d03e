//! Configuration by the standard `OTEL_*` environment variables (OpenTelemetry
//! specification `configuration/sdk-environment-variables.md`, `protocol/exporter.md`,
//! `resource/sdk.md`), every setting also a public field to override in code.
//!
//! The specification's rules, applied to the letter:
//!
//! * an empty variable is the same as an unset one;
//! * a boolean (`OTEL_SDK_DISABLED`) is true only for the string `true` in any case, as given
//!   (not trimmed: the definition "MUST NOT" be extended); any other value is false, and one
//!   other than `false` is warned about;
//! * enum values (`OTEL_TRACES_EXPORTER`, `..._PROTOCOL`, `..._COMPRESSION`) are read in any
//!   case (`GZIP` is `gzip`): "Enum values SHOULD be interpreted in a case-insensitive
//!   manner"; warnings and errors quote the value as it was given;
//! * an invalid value (a number that does not parse or is out of range, an unknown enum
//!   value, a malformed header list) is **ignored with a warning** ("treat them as not
//!   set"): the setting keeps its default, or, for an `OTEL_EXPORTER_OTLP_TRACES_*`
//!   variable, the value of its general `OTEL_EXPORTER_OTLP_*` counterpart if that one is
//!   valid; [`FromEnv::warnings`] has one [`ConfigError`] naming the variable, the value and
//!   what is wrong (for a list, one per bad entry, the first ten of them, and one more that
//!   counts the rest). A batch size above the queue size is such an invalid value;
//! * `OTEL_RESOURCE_ATTRIBUTES` with any malformed entry is discarded **whole** (a warning);
//! * a variable of the process environment whose value is not UTF-8 is such an invalid value
//!   (ignored with a warning), except the endpoint spans go to, which is refused (it is not a
//!   URL);
//! * a value that is valid but names something this crate does not do — `grpc`,
//!   `OTEL_TRACES_EXPORTER=zipkin`, an `https://` endpoint (no TLS in this build) — or an
//!   endpoint that is not a URL is **refused**: [`ExportConfig::from_env`] returns that
//!   error, since any fallback would send spans somewhere the user did not ask. When no span
//!   is sent anywhere by it (`OTEL_SDK_DISABLED=true`; for the OTLP settings, an exporter
//!   other than `otlp` too) such a value is only ignored with a warning.
//!
//! The sampler's variables (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`) are the
//! tracer's, read by [`Sampler::from_env_lookup`](crate::Sampler::from_env_lookup) whether
//! or not spans are exported.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use super::batch::{BatchConfig, BatchSpanProcessor};
use super::config_error::ConfigError;
use super::console::ConsoleSpanExporter;
use super::otlp::transport::Endpoint;
use super::otlp::{Compression, OtlpHttpConfig, OtlpHttpExporter, Protocol, RetryPolicy};
use super::percent::percent_decode;
use super::redact::redact_headers;
use super::resource::Resource;
use super::source::SpanSource;
use crate::env::{EnvReader, NOT_UNICODE};

/// Every environment variable [`ExportConfig::from_env`] reads.
///
/// ```
/// assert!(agentcore_telemetry::export::VARIABLES.contains(&"OTEL_EXPORTER_OTLP_ENDPOINT"));
/// ```
pub const VARIABLES: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
];

/// Where spans go (`OTEL_TRACES_EXPORTER`).
///
/// ```
/// use agentcore_telemetry::export::TracesExporter;
/// assert_eq!(TracesExporter::default(), TracesExporter::Otlp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TracesExporter {
    /// OTLP/HTTP to the configured endpoint (`otlp`, the default).
    #[default]
    Otlp,
    /// OTLP JSON lines on standard output (`console` or `otlp/stdout`). Read from the
    /// environment, `console` exports each span on its own as soon as the exporter thread sees
    /// it (the specification pairs the standard output exporter with a simple processor), unless
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` is set; `otlp/stdout` writes a line per batch.
    Console,
    /// No export (`none`).
    None,
}

/// Everything span export needs, from the environment or code.
///
/// ```
/// use agentcore_telemetry::export::{ExportConfig, TracesExporter};
/// use std::collections::HashMap;
///
/// let env: HashMap<&str, &str> = [
///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
///     ("OTEL_SERVICE_NAME", "agent-runtime"),
///     ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
/// ]
/// .into();
/// let from_env = ExportConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
/// let config = from_env.config;
/// assert_eq!(config.endpoint, "http://collector:4318/v1/traces");
/// assert_eq!(config.service_name.as_deref(), Some("agent-runtime"));
/// assert_eq!(config.exporter, TracesExporter::Otlp);
/// // The bad delay is ignored (default kept) and reported.
/// assert_eq!(config.batch.schedule_delay.as_millis(), 5000);
/// assert_eq!(from_env.warnings[0].variable, "OTEL_BSP_SCHEDULE_DELAY");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    /// `OTEL_SDK_DISABLED=true`: no export (the tracer, reading the same variable through
    /// [`Sampler::from_env_lookup`](crate::Sampler::from_env_lookup), records nothing).
    pub disabled: bool,
    /// `OTEL_TRACES_EXPORTER`.
    pub exporter: TracesExporter,
    /// The URL spans are POSTed to: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, or `http://localhost:4318/v1/traces`.
    pub endpoint: String,
    /// `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`.
    pub protocol: Protocol,
    /// `OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION`.
    pub compression: Compression,
    /// `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, percent-decoded; a key given again (in any case)
    /// keeps its first place and takes its last value.
    pub headers: Vec<(String, String)>,
    /// `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT`: the longest one export may take (10 s).
    pub timeout: Duration,
    /// Retries of failed requests (no standard variable).
    pub retry: RetryPolicy,
    /// `OTEL_SERVICE_NAME`, else `service.name` from `OTEL_RESOURCE_ATTRIBUTES`.
    pub service_name: Option<String>,
    /// The other `OTEL_RESOURCE_ATTRIBUTES`, percent-decoded, in order.
    pub resource_attributes: Vec<(String, String)>,
    /// `OTEL_BSP_*`.
    pub batch: BatchConfig,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            disabled: false,
            exporter: TracesExporter::Otlp,
            endpoint: "http://localhost:4318/v1/traces".into(),
            protocol: Protocol::HttpProtobuf,
            compression: Compression::None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            service_name: None,
            resource_attributes: Vec::new(),
            batch: BatchConfig::default(),
        }
    }
}

/// A configuration read from the environment, with the values that were ignored.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "the warnings name environment variables whose values were ignored"]
pub struct FromEnv {
    /// The configuration.
    pub config: ExportConfig,
    /// One entry per ignored value (the setting kept its default).
    pub warnings: Vec<ConfigError>,
}

/// Why [`ExportConfig::start`] did not start an exporter.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// A setting the exporter cannot use.
    Config(ConfigError),
    /// The operating system refused the exporter thread.
    Spawn(std::io::Error),
    /// The tracer already exports (one exporter per tracer; shut it down first).
    AlreadyRunning,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "span export not started: {e}"),
            StartError::Spawn(e) => write!(f, "span export not started: no thread: {e}"),
            StartError::AlreadyRunning => {
                write!(f, "span export not started: the tracer already exports")
            }
        }
    }
}

impl std::error::Error for StartError {}

/// The largest integer setting accepted (the specification's 2³¹ − 1).
const MAX_INT: u64 = (1 << 31) - 1;

/// The bad entries of one list variable (a header list, `OTEL_TRACES_EXPORTER`) warned about
/// one by one; one more warning counts the rest. Each warning holds the whole value: one per
/// entry made 100 KiB of bad entries some 28 GB of warnings, built in quadratic time.
const ENTRY_WARNINGS: usize = 10;

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    warnings: Vec<ConfigError>,
}

impl Reader<'_> {
    /// The variable's value, `None` when unset or empty.
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value of the first of `names` (the signal-specific variable, then the general one)
    /// that is set and that `parse` accepts. A value `parse` rejects (it warns) is treated as
    /// not set, as the specification asks of invalid values ("treat them as not set", "MUST
    /// generate a warning and gracefully ignore the setting"), so that an invalid
    /// `OTEL_EXPORTER_OTLP_TRACES_*` leaves the valid `OTEL_EXPORTER_OTLP_*` in force rather
    /// than the built-in default. `parse` returning `Err` refuses the configuration.
    fn first_valid<T>(
        &mut self,
        names: [&'static str; 2],
        mut parse: impl FnMut(&mut Self, &'static str, &str) -> Result<Option<T>, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        for name in names {
            if let Some(v) = self.get(name) {
                if let Some(t) = parse(self, name, &v)? {
                    return Ok(Some(t));
                }
            }
        }
        Ok(None)
    }

    fn warn(&mut self, name: &'static str, value: &str, reason: impl Into<String>) {
        self.warnings.push(ConfigError::new(name, value, reason));
    }

    /// `Err(refusal)`, unless `ignore`: then the refusal is a warning (the setting is ignored,
    /// `because`).
    fn refuse_unless(
        &mut self,
        ignore: bool,
        refusal: ConfigError,
        because: &str,
    ) -> Result<(), ConfigError> {
        if !ignore {
            return Err(refusal);
        }
        self.warnings.push(ConfigError {
            reason: format!("{}; ignored, since {because}", refusal.reason),
            ..refusal
        });
        Ok(())
    }

    /// A non-negative integer in `0..=2^31-1`.
    fn int(&mut self, name: &'static str, value: &str, what: &str) -> Option<u64> {
        match value.trim().parse::<u64>() {
            Ok(n) if n <= MAX_INT => Some(n),
            _ => {
                self.warn(
                    name,
                    value,
                    format!(
                        "{what} must be an integer from 0 to 2147483647; the variable is ignored"
                    ),
                );
                None
            }
        }
    }

    /// A duration in milliseconds (`OTEL_*` Duration type).
    fn millis(&mut self, name: &'static str, default: Duration) -> Duration {
        match self.get(name) {
            None => default,
            Some(v) => self
                .int(name, &v, "a duration in milliseconds")
                .map_or(default, Duration::from_millis),
        }
    }

    /// A timeout in milliseconds, 0 meaning "no limit" (`OTEL_*` Timeout type); `None` (with a
    /// warning) when invalid.
    fn timeout(&mut self, name: &'static str, value: &str) -> Option<Duration> {
        match self.int(name, value, "a timeout in milliseconds")? {
            // "Indefinite": the specification allows a very long time instead.
            0 => Some(Duration::from_millis(u64::from(u32::MAX))),
            n => Some(Duration::from_millis(n)),
        }
    }

    /// A positive size.
    fn size(&mut self, name: &'static str, default: usize) -> usize {
        match self.get(name) {
            None => default,
            Some(v) => match self.int(name, &v, "a size") {
                Some(0) => {
                    self.warn(name, &v, "must be positive; the variable is ignored");
                    default
                }
                Some(n) => n as usize,
                None => default,
            },
        }
    }
}

impl ExportConfig {
    /// Reads the `OTEL_*` variables of the process environment ([`VARIABLES`]). An empty
    /// variable counts as unset. One whose value is not UTF-8 is ignored with a warning (the
    /// endpoint spans go to is refused). An invalid value (a number that does not parse or is out of
    /// range, an unknown enum value, a malformed header entry) is ignored with a warning in
    /// [`FromEnv::warnings`] naming the variable, and the setting keeps its default (or, for an
    /// `OTEL_EXPORTER_OTLP_TRACES_*` variable, takes its valid general counterpart's value), as
    /// the specification says; `OTEL_RESOURCE_ATTRIBUTES` with any malformed entry is ignored
    /// whole. A value naming something this crate does not do (`grpc`, `zipkin`, an
    /// `https://` endpoint: no TLS in this build) or an endpoint that is not a
    /// URL is refused: the error names the variable (when no span would be sent by it,
    /// `OTEL_SDK_DISABLED=true` or, for the OTLP settings, another exporter than `otlp`, it is
    /// ignored with a warning instead).
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportConfig;
    /// let from_env = ExportConfig::from_env();
    /// # let _ = from_env;
    /// ```
    pub fn from_env() -> Result<FromEnv, ConfigError> {
        Self::from_os_lookup(|name| std::env::var_os(name))
    }

    /// [`from_env`](Self::from_env) over any `OsString` environment: a value that is not UTF-8
    /// is an invalid value, ignored with a warning (first in [`FromEnv::warnings`]), except for
    /// the endpoint in force when spans go over OTLP, which is refused (it is not a URL, and
    /// the general endpoint or the default in its place would send spans where the user did
    /// not ask).
    pub(crate) fn from_os_lookup(
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<FromEnv, ConfigError> {
        let env = EnvReader::new(lookup);
        // The endpoint variable in force: the signal-specific one if set, else the general one.
        let traces = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
        let traces_set =
            env.is_not_unicode(traces) || env.get(traces).is_some_and(|v| !v.trim().is_empty());
        let endpoint = if traces_set {
            traces
        } else {
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        };
        let mut from_env = Self::from_lookup(|name| env.get(name))?;
        let otlp = !from_env.config.disabled && from_env.config.exporter == TracesExporter::Otlp;
        let mut not_unicode = Vec::new();
        for (name, value) in env.not_unicode() {
            if otlp && name == endpoint {
                return Err(ConfigError::new(
                    endpoint,
                    &value,
                    "is not valid UTF-8, so not a URL",
                ));
            }
            not_unicode.push(ConfigError::new(name, &value, NOT_UNICODE));
        }
        from_env.warnings.splice(0..0, not_unicode);
        Ok(from_env)
    }

    /// Reads the variables through `lookup` (a map in tests, the environment in
    /// [`from_env`](Self::from_env)).
    ///
    /// ```
    /// use agentcore_telemetry::export::{ExportConfig, TracesExporter};
    /// let c = ExportConfig::from_lookup(|k| (k == "OTEL_TRACES_EXPORTER").then(|| "none".into())).unwrap();
    /// assert_eq!(c.config.exporter, TracesExporter::None);
    /// assert!(c.warnings.is_empty());
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<FromEnv, ConfigError> {
        let mut r = Reader {
            lookup: &lookup,
            warnings: Vec::new(),
        };
        let mut c = ExportConfig::default();

        if let Some(v) = r.get("OTEL_SDK_DISABLED") {
            // As given, not trimmed: the Boolean type "MUST NOT" be extended (as
            // `Sampler::from_env_lookup` reads it).
            if v.eq_ignore_ascii_case("true") {
                c.disabled = true;
            } else if !v.eq_ignore_ascii_case("false") {
                r.warn(
                    "OTEL_SDK_DISABLED",
                    &v,
                    "only \"true\" or \"false\" (any case) are booleans; treated as false",
                );
            }
        }

        // Enums (a list of them here) are read in any case: "Enum values SHOULD be interpreted
        // in a case-insensitive manner."
        if let Some(v) = r.get("OTEL_TRACES_EXPORTER") {
            let items = v.split(',').map(str::trim).filter(|s| !s.is_empty());
            let mut chosen: Option<TracesExporter> = None;
            let mut refusal = None;
            let mut unknown = 0;
            for item in items {
                let is = |known: &str| item.eq_ignore_ascii_case(known);
                let e = match item {
                    _ if is("otlp") => TracesExporter::Otlp,
                    _ if is("console") || is("otlp/stdout") => TracesExporter::Console,
                    _ if is("none") => TracesExporter::None,
                    _ if is("zipkin") || is("jaeger") || is("logging") => {
                        // Jaeger takes OTLP natively (since 1.35) and the OpenTelemetry
                        // specification deprecates its Zipkin exporter ("Implementing a Zipkin
                        // exporter is not required for new SDKs"): both are reached over OTLP.
                        let how = match item {
                            _ if is("zipkin") => "; send OTLP to an OpenTelemetry Collector with its zipkin exporter, or to a Zipkin server with the zipkin-otel module",
                            _ if is("jaeger") => "; Jaeger (1.35 and later) receives OTLP itself: OTEL_TRACES_EXPORTER=otlp with OTEL_EXPORTER_OTLP_ENDPOINT=http://<jaeger>:4318",
                            _ => "",
                        };
                        refusal = Some(ConfigError::new(
                            "OTEL_TRACES_EXPORTER",
                            &v,
                            format!(
                                "{item:?} is not supported; use otlp, console, otlp/stdout or none{how}"
                            ),
                        ));
                        break;
                    }
                    _ => {
                        unknown += 1;
                        if unknown <= ENTRY_WARNINGS {
                            r.warn(
                                "OTEL_TRACES_EXPORTER",
                                &v,
                                format!("unknown exporter {item:?} is ignored (known: otlp, console, otlp/stdout, none)"),
                            );
                        }
                        continue;
                    }
                };
                match chosen {
                    Some(prev) if prev != e => {
                        refusal = Some(ConfigError::new(
                            "OTEL_TRACES_EXPORTER",
                            &v,
                            "names more than one exporter; this crate runs one at a time",
                        ));
                        break;
                    }
                    _ => chosen = Some(e),
                }
            }
            if unknown > ENTRY_WARNINGS {
                r.warn(
                    "OTEL_TRACES_EXPORTER",
                    &v,
                    format!(
                        "{} more unknown exporters are ignored",
                        unknown - ENTRY_WARNINGS
                    ),
                );
            }
            match (refusal, chosen) {
                // Disabled, nothing is exported: nowhere the user did not ask.
                (Some(e), _) => r.refuse_unless(c.disabled, e, "OTEL_SDK_DISABLED is true")?,
                (None, Some(e)) => c.exporter = e,
                // Unknown items were warned about; a list of none (`,`) is not recognized either.
                (None, None) if v.split(',').all(|s| s.trim().is_empty()) => r.warn(
                    "OTEL_TRACES_EXPORTER",
                    &v,
                    "names no exporter; the variable is ignored",
                ),
                (None, None) => {}
            }
        }
        // Whether the OTLP settings are used; those this crate refuses are only warned about
        // when they are not (nothing would be sent where the user did not ask).
        let otlp = !c.disabled && c.exporter == TracesExporter::Otlp;
        let unused = "no span is exported over OTLP";

        let endpoint = if let Some(v) = r.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(check_endpoint(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                v.trim(),
                false,
            ))
        } else {
            r.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|v| check_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", v.trim(), true))
        };
        match endpoint {
            Some(Ok(endpoint)) => c.endpoint = endpoint,
            Some(Err(e)) => r.refuse_unless(!otlp, e, unused)?,
            None => {}
        }

        // Headers: the signal-specific list is used if any of its entries is valid (invalid
        // entries are warned about and not sent); one with no valid entry is treated as not set.
        let headers = r.first_valid(
            [
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ],
            |r, name, v| {
                // Warnings show the list with its values redacted (see `redact_headers`).
                let shown = redact_headers(v);
                let mut headers: Vec<(String, String)> = Vec::new();
                // A key given again (in any case: HTTP field names are case-insensitive) takes
                // its first place and its last entry, as the SDKs' maps do: two field lines of a
                // name that is no list (`Authorization`) are not HTTP (RFC 9110 §5.3).
                let mut index: HashMap<String, usize> = HashMap::new();
                let mut invalid = 0;
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let parsed = item
                        .split_once('=')
                        .ok_or_else(|| "is not key=value".to_owned())
                        .and_then(|(k, val)| {
                            let k = percent_decode(k.trim())?;
                            let val = percent_decode(val.trim())?;
                            super::otlp::validate_header(&k, &val)?;
                            Ok((k, val))
                        });
                    match parsed {
                        Ok(h) => match index.get(&h.0.to_ascii_lowercase()) {
                            Some(&i) => headers[i] = h,
                            None => {
                                index.insert(h.0.to_ascii_lowercase(), headers.len());
                                headers.push(h);
                            }
                        },
                        Err(why) => {
                            invalid += 1;
                            if invalid <= ENTRY_WARNINGS {
                                r.warn(
                                    name,
                                    &shown,
                                    format!(
                                        "entry {:?} {why}; that header is not sent",
                                        redact_headers(item)
                                    ),
                                );
                            }
                        }
                    }
                }
                if invalid > ENTRY_WARNINGS {
                    r.warn(
                        name,
                        &shown,
                        format!(
                            "{} more entries are invalid; those headers are not sent",
                            invalid - ENTRY_WARNINGS
                        ),
                    );
                }
                // No valid entry: the variable is as good as not set. (Its invalid entries were
                // warned about; one with no entry at all, such as `,`, is warned about here,
                // since it would otherwise hide the general list without a word.)
                if headers.is_empty() {
                    if invalid == 0 {
                        r.warn(
                            name,
                            &shown,
                            "has no key=value entry; the variable is ignored",
                        );
                    }
                    return Ok(None);
                }
                Ok(Some(headers))
            },
        )?;
        if let Some(headers) = headers {
            c.headers = headers;
        }

        if let Some(t) = r.first_valid(
            [
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ],
            |r, name, v| Ok(r.timeout(name, v)),
        )? {
            c.timeout = t;
        }

        let protocol = r.first_valid(
            [
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ],
            |r, name, v| match v.trim() {
                p if p.eq_ignore_ascii_case("http/protobuf") => Ok(Some(Protocol::HttpProtobuf)),
                p if p.eq_ignore_ascii_case("http/json") => Ok(Some(Protocol::HttpJson)),
                p if p.eq_ignore_ascii_case("grpc") => Err(ConfigError::new(
                    name,
                    v,
                    "OTLP/gRPC is not supported; use http/protobuf (port 4318) or http/json",
                )),
                _ => {
                    r.warn(
                        name,
                        v,
                        "unknown protocol (known: http/protobuf, http/json); the variable is ignored",
                    );
                    Ok(None)
                }
            },
        );
        match protocol {
            Ok(Some(p)) => c.protocol = p,
            Ok(None) => {}
            Err(e) => r.refuse_unless(!otlp, e, unused)?,
        }

        if let Some(z) = r.first_valid(
            [
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ],
            |r, name, v| match v.trim() {
                z if z.eq_ignore_ascii_case("gzip") => Ok(Some(Compression::Gzip)),
                z if z.eq_ignore_ascii_case("none") => Ok(Some(Compression::None)),
                _ => {
                    r.warn(
                        name,
                        v,
                        "unknown compression (known: gzip, none); the variable is ignored",
                    );
                    Ok(None)
                }
            },
        )? {
            c.compression = z;
        }

        if let Some(v) = r.get("OTEL_RESOURCE_ATTRIBUTES") {
            match parse_resource_attributes(&v) {
                Ok(attrs) => {
                    // A repeated key takes its last value in its first place; found through
                    // an index, not by a search of the keys before it (quadratic).
                    let mut index: HashMap<String, usize> = HashMap::new();
                    for (k, val) in attrs {
                        if k == "service.name" {
                            c.service_name = Some(val);
                        } else if let Some(&i) = index.get(&k) {
                            c.resource_attributes[i].1 = val;
                        } else {
                            index.insert(k.clone(), c.resource_attributes.len());
                            c.resource_attributes.push((k, val));
                        }
                    }
                }
                Err(why) => r.warn(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    &v,
                    format!("{why}; the whole variable is ignored"),
                ),
            }
        }
        if let Some(v) = r.get("OTEL_SERVICE_NAME") {
            // Beats service.name from OTEL_RESOURCE_ATTRIBUTES.
            c.service_name = Some(v.trim().to_owned());
        }

        c.batch.schedule_delay = r.millis("OTEL_BSP_SCHEDULE_DELAY", c.batch.schedule_delay);
        if let Some(v) = r.get("OTEL_BSP_EXPORT_TIMEOUT") {
            if let Some(t) = r.timeout("OTEL_BSP_EXPORT_TIMEOUT", &v) {
                c.batch.export_timeout = t;
            }
        }
        c.batch.max_queue_size = r.size("OTEL_BSP_MAX_QUEUE_SIZE", c.batch.max_queue_size);
        // The batch size "must be less than or equal to OTEL_BSP_MAX_QUEUE_SIZE": a larger one
        // is invalid, hence ignored ("treat them as not set"), leaving the default, which the
        // queue size caps (as `BatchConfig::normalized` would).
        let default_batch = c.batch.max_export_batch_size;
        let batch = r.size("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", default_batch);
        // The value as given, if it is the one `size` took (not a default it fell back to).
        let given = r
            .get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
            .filter(|v| v.trim().parse::<usize>().ok() == Some(batch));
        c.batch.max_export_batch_size = if batch <= c.batch.max_queue_size {
            batch
        } else {
            if let Some(given) = given {
                r.warn(
                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                    &given,
                    format!(
                        "must be at most OTEL_BSP_MAX_QUEUE_SIZE ({}); the variable is ignored",
                        c.batch.max_queue_size
                    ),
                );
            }
            default_batch.min(c.batch.max_queue_size)
        };
        // "By default the standard output exporter SHOULD be paired with a simple processor"
        // (trace/sdk_exporters/stdout.md), the OTLP file exporter (`otlp/stdout`) "with a
        // batching processor" (protocol/file-exporter.md): for `console`, the batch processor
        // exports each span on its own, as soon as its thread sees it (a batch of one),
        // unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE says otherwise.
        let named = |e: &str, v: &str| v.split(',').any(|i| i.trim().eq_ignore_ascii_case(e));
        if c.exporter == TracesExporter::Console
            && r.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").is_none()
            && r.get("OTEL_TRACES_EXPORTER")
                .is_some_and(|v| named("console", &v) && !named("otlp/stdout", &v))
        {
            c.batch.max_export_batch_size = 1;
        }

        Ok(FromEnv {
            config: c,
            warnings: r.warnings,
        })
    }

    /// The resource: `service.name` (this configuration's, else `default_service_name`,
    /// else `unknown_service:<executable>`), the SDK attributes, and the other resource
    /// attributes.
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportConfig;
    /// let c = ExportConfig::default();
    /// assert_eq!(c.resource(Some("agentcore")).get("service.name"), Some("agentcore"));
    /// ```
    pub fn resource(&self, default_service_name: Option<&str>) -> Resource {
        let name = match (&self.service_name, default_service_name) {
            (Some(n), _) => n.clone(),
            (None, Some(d)) => d.to_owned(),
            (None, None) => Resource::default_service_name(),
        };
        let mut r = Resource::new(name);
        r.set_all(
            self.resource_attributes
                .iter()
                .map(|(k, v)| (k.clone().into(), v.clone().into())),
        );
        r
    }

    /// The OTLP/HTTP exporter settings this configuration describes.
    ///
    /// ```
    /// use agentcore_telemetry::export::ExportConfig;
    /// let otlp = ExportConfig::default().otlp_config(None);
    /// assert_eq!(otlp.endpoint, "http://localhost:4318/v1/traces");
    /// ```
    pub fn otlp_config(&self, default_service_name: Option<&str>) -> OtlpHttpConfig {
        OtlpHttpConfig {
            endpoint: self.endpoint.clone(),
            protocol: self.protocol,
            compression: self.compression,
            headers: self.headers.clone(),
            timeout: self.timeout,
            retry: self.retry.clone(),
            resource: self.resource(default_service_name),
            ..OtlpHttpConfig::default()
        }
    }

    /// Starts the configured exporter on `source`: `Ok(None)` when export is disabled
    /// (`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`).
    ///
    /// ```
    /// use agentcore_telemetry::export::{ExportConfig, MemorySpanSource, TracesExporter};
    /// let config = ExportConfig { exporter: TracesExporter::None, ..Default::default() };
    /// assert!(config.start(MemorySpanSource::new(8), None).unwrap().is_none());
    /// ```
    pub fn start<S: SpanSource + 'static>(
        &self,
        source: S,
        default_service_name: Option<&str>,
    ) -> Result<Option<BatchSpanProcessor>, StartError> {
        if self.disabled {
            return Ok(None);
        }
        let processor = match self.exporter {
            TracesExporter::None => return Ok(None),
            TracesExporter::Otlp => {
                let exporter = OtlpHttpExporter::new(self.otlp_config(default_service_name))
                    .map_err(StartError::Config)?;
                BatchSpanProcessor::start(source, exporter, self.batch.clone())
            }
            TracesExporter::Console => BatchSpanProcessor::start(
                source,
                ConsoleSpanExporter::stdout(&self.resource(default_service_name)),
                self.batch.clone(),
            ),
        };
        processor.map(Some).map_err(StartError::Spawn)
    }
}

/// Checks an endpoint; for the base endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`) appends
/// `v1/traces` to its path with exactly one `/` between (protocol/exporter.md, Examples 1–3),
/// before its query if it has one.
fn check_endpoint(name: &'static str, value: &str, base: bool) -> Result<String, ConfigError> {
    Endpoint::parse(value).map_err(|why| ConfigError::new(name, value, why))?;
    if !base {
        // Used as is; an empty path is "/" (Example 2), which the request line sends.
        return Ok(value.to_owned());
    }
    // The signal path goes at the end of the path, and a query stays after it: the
    // specification "MUST honor" scheme, host, port and path and "MAY ignore" the rest, and a
    // query is kept (as the signal-specific endpoint keeps it) rather than refused.
    let (path, query) = match value.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (value, None),
    };
    let slash = if path.ends_with('/') { "" } else { "/" };
    Ok(match query {
        Some(query) => format!("{path}{slash}v1/traces?{query}"),
        None => format!("{path}{slash}v1/traces"),
    })
}

/// `key1=value1,key2=value2`, percent-decoded; any malformed entry, or none at all (`,`), fails
/// the whole list.
fn parse_resource_attributes(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in v.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, val) = item
            .split_once('=')
            .ok_or_else(|| format!("entry {item:?} is not key=value"))?;
        let k = percent_decode(k.trim()).map_err(|w| format!("key in {item:?} {w}"))?;
        if k.is_empty() {
            return Err(format!("entry {item:?} has an empty key"));
        }
        let val = percent_decode(val.trim()).map_err(|w| format!("value in {item:?} {w}"))?;
        out.push((k, val));
    }
    // Commas alone (`,`): set, not empty, and no pair in it, a malformed value like any other
    // (as a header or an exporter list of commas alone is).
    if out.is_empty() {
        return Err("has no key=value entry".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percent_escape_is_exactly_two_hex_digits() {
        for bad in ["%+41", "%+4", "%-1", "% 4", "%4", "%zz", "%", "a%"] {
            assert!(percent_decode(bad).is_err(), "{bad:?}");
        }
        assert_eq!(percent_decode("%4a%4A").unwrap(), "JJ");
    }

    /// No warning about a header list shows a header value (they are often credentials, and
    /// warnings go to logs): not the list's, not the bad entry's, whatever is wrong with it.
    #[test]
    fn header_warnings_never_show_a_header_value() {
        let secret = "s3cr3t-t0ken";
        for variable in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            for list in [
                format!("authorization=Bearer%20{secret},x-bad=%zz{secret}"),
                format!("api-key={secret},{secret}"),
                format!("x tenant={secret}"),
                format!("x-a={secret}\u{1}"),
                secret.to_string(),
                format!("host={secret}"),
            ] {
                let (_, w) = headers(variable, &list);
                assert!(!w.is_empty(), "{variable}={list:?} warns");
                for w in &w {
                    let shown = w.to_string();
                    assert!(!shown.contains(secret), "{variable}={list:?}: {shown}");
                }
            }
        }
        let (_, w) = headers(
            "OTEL_EXPORTER_OTLP_HEADERS",
            &format!("api-key={secret},x-bad=%zz"),
        );
        assert_eq!(w[0].value, "api-key=<redacted>,x-bad=<redacted>");
        assert!(
            w[0].reason.starts_with("entry \"x-bad=<redacted>\" "),
            "{w:?}"
        );
    }

    /// A value that is not UTF-8 is ignored with a warning naming it; an endpoint is refused.
    #[cfg(unix)]
    #[test]
    fn values_that_are_not_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let not_utf8 = |bytes: &[u8]| Some(OsString::from_vec(bytes.to_vec()));
        let r = ExportConfig::from_os_lookup(|name| match name {
            "OTEL_SDK_DISABLED" => not_utf8(b"tru\xe9"),
            "OTEL_EXPORTER_OTLP_HEADERS" => not_utf8(b"api-key=\xff"),
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" => not_utf8(b"\x80"),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://c:4318".into()),
            _ => None,
        })
        .unwrap();
        let named: Vec<_> = r.warnings.iter().map(|w| &*w.variable).collect();
        assert_eq!(
            named,
            [
                "OTEL_SDK_DISABLED",
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
            ],
            "{:?}",
            r.warnings
        );
        // A header list's value is shown redacted, even when it is not UTF-8.
        assert_eq!(r.warnings[1].value, "api-key=<redacted>");
        assert!(!r.config.disabled);
        assert!(r.config.headers.is_empty());
        assert_eq!(r.config.endpoint, "http://c:4318/v1/traces");
        assert_eq!(r.config.batch, BatchConfig::default());
        for endpoint in [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            let err = ExportConfig::from_os_lookup(|name| match name {
                n if n == endpoint => not_utf8(b"http://c\xff:4318"),
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://general:4318".into()),
                _ => None,
            })
            .unwrap_err();
            assert_eq!(err.variable, endpoint);
            assert_eq!(err.value, "http://c\u{fffd}:4318");
        }
        // Not in force (a signal-specific endpoint is set): not read, as a malformed one is not.
        let r = ExportConfig::from_os_lookup(|name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => not_utf8(b"http://c\xff:4318"),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some("http://t:4318/v1/traces".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(r.config.endpoint, "http://t:4318/v1/traces");
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // No span goes over OTLP: a warning.
        for (also, how) in [
            ("OTEL_TRACES_EXPORTER", "console"),
            ("OTEL_SDK_DISABLED", "true"),
        ] {
            let r = ExportConfig::from_os_lookup(|name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => not_utf8(b"http://c\xff:4318"),
                n if n == also => Some(how.into()),
                _ => None,
            })
            .unwrap();
            assert_eq!(r.warnings.len(), 1, "{also}: {:?}", r.warnings);
            assert_eq!(r.warnings[0].variable, "OTEL_EXPORTER_OTLP_ENDPOINT");
        }
    }

    /// The headers and warnings `OTEL_EXPORTER_OTLP_HEADERS` (or the traces variable)
    /// set to `value` gives.
    fn headers(variable: &str, value: &str) -> (Vec<(String, String)>, Vec<ConfigError>) {
        let r = ExportConfig::from_lookup(|k| (k == variable).then(|| value.to_owned())).unwrap();
        (r.config.headers, r.warnings)
    }

    #[test]
    fn header_entries_that_are_not_http_fields_are_skipped_with_a_warning() {
        for variable in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            for bad in [
                "x-tenant=%+41",
                "x-tenant=%01abc",
                "x-tenant=a%7Fb",
                "x-tenant=a\u{7f}b",
                "x-tenant=a\u{1}b",
                "x-tenant=%4",
                "x-tenant=%zz",
                "x-tenant=a%1Fb",
                "x%01tenant=a",
                "x%20tenant=a",
            ] {
                let (h, w) = headers(variable, &format!("ok=1,{bad},ok2=2"));
                assert_eq!(
                    h,
                    [("ok".into(), "1".into()), ("ok2".into(), "2".into())],
                    "{variable}={bad:?}"
                );
                assert_eq!(w.len(), 1, "{variable}={bad:?}: {w:?}");
                assert_eq!(w[0].variable, variable);
                assert!(w[0].reason.contains("that header is not sent"), "{w:?}");
            }
        }
    }

    #[test]
    fn header_values_may_hold_tabs_spaces_and_obs_text() {
        let v = "OTEL_EXPORTER_OTLP_HEADERS";
        for (raw, want) in [
            ("x-a=a%09b", "a\tb"),
            ("x-a=a\tb", "a\tb"),
            ("x-a=a%20b", "a b"),
            ("x-a=caf%C3%A9", "café"),
            ("x-a=café", "café"),
            ("x-a=%E2%9C%93 ~!", "\u{2713} ~!"),
        ] {
            let (h, w) = headers(v, raw);
            assert_eq!(h, [("x-a".to_string(), want.to_string())], "{raw:?}");
            assert!(w.is_empty(), "{raw:?}: {w:?}");
        }
    }
}
