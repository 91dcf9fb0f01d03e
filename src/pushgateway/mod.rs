//! Pushing a registry to a Prometheus [Pushgateway], for jobs too short-lived to be scraped
//! (feature `pushgateway`).
//!
//! [Pushgateway]: https://github.com/prometheus/pushgateway
//!
//! The name: the crate's glossary already uses *export* for pushing spans by OTLP
//! (`export`) and *serve* for the pull endpoint; this module is a client of one
//! specific protocol — the Pushgateway's HTTP API — so it is named for that, as `export::otlp`
//! is.
//!
//! # What it does
//! * [`Pushgateway::push`] (`PUT`: replaces every metric of the grouping key),
//!   [`Pushgateway::push_add`] (`POST`: replaces only the metrics with the same names) and
//!   [`Pushgateway::delete`] (`DELETE`: removes the group), to
//!   `/metrics/job/<job>{/<label>/<value>}` under the gateway's URL. A push or push-add
//!   returns once the gateway has stored the metrics or refused them (its consistency check,
//!   on by default; with `--push.disable-consistency-check` it only queues them, `202
//!   Accepted`); a delete once the gateway has queued it: it answers `202 Accepted` and
//!   removes the group shortly after, so a scrape right after the delete may still show it.
//! * The body is the text format 0.0.4 ([`Registry::encode_text_into`]): the Pushgateway
//!   refuses OpenMetrics (observed with 1.5.1: `400 ... expected integer as timestamp, got #`).
//! * Grouping-key values (the job name included) are written as they are when they consist of
//!   URL-unreserved characters (`A-Z a-z 0-9 - . _ ~`), but for `.` and `..`; any other value —
//!   one holding `/`, an empty one, one with spaces, `%` or non-ASCII text, and the dot
//!   segments `.` and `..`, which path normalisation would remove (RFC 3986 §5.2.4: the
//!   Pushgateway answers them with a redirect) — is sent as `<label>@base64/<URL-safe base64>`,
//!   the encoding the Pushgateway README specifies for values with `/` and for empty values
//!   (which it spells `@base64/=`). So every value round-trips unchanged, whatever it holds.
//! * The gateway gives every pushed metric the grouping key's labels. A push that would so
//!   give a histogram the label `le`, or a summary `quantile` — the labels their samples
//!   reserve, which the registry refuses on them too — is refused, nothing sent
//!   ([`PushError::InvalidGroupingKey`]): the gateway (1.5.1) stores such a histogram and exposes
//!   its buckets with `le` twice, which fails every scrape of the gateway. And it overwrites a
//!   label of the key's name that a pushed series carries (its README: such labels "will be
//!   overwritten to match the labels defined by the URL path!"), answering `200`: a push with a
//!   series carrying a grouping label (`job` included) with another value than the key's is
//!   refused, nothing sent ([`PushError::InvalidGroupingKey`]), since the series' own value
//!   would be lost; with the key's value it is sent.
//! * The gateway adds `push_time_seconds` and `push_failure_time_seconds` to every group,
//!   replacing any pushed family of those names (its README, "About timestamps"), still
//!   answering `200`: a push with such a family is refused, nothing sent
//!   ([`PushError::ReservedName`]).
//! * [`Pushgateway::start_periodic`] pushes from a thread of its own every interval and once
//!   more at [`PeriodicPusher::shutdown`] (or drop), within a deadline it keeps.
//! * Blocking HTTP/1.1 over `std::net::TcpStream`, one connection per request, every step
//!   bounded by the operation's timeout (default 10 s; see `http`). No async runtime.
//!
//! ```no_run
//! use agentcore_telemetry::pushgateway::Pushgateway;
//! use agentcore_telemetry::Registry;
//!
//! let registry = Registry::new();
//! registry.counter("batch_records_total", "Records processed.")?.inc_by(1200);
//! let gateway = Pushgateway::new("http://127.0.0.1:9091", "nightly_batch")?
//!     .with_grouping_key("instance", "worker-3")?;
//! gateway.push(&registry)?; // PUT /metrics/job/nightly_batch/instance/worker-3
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod body;
mod http;
mod pusher;

use crate::net::deadline::deadline_after;
use std::fmt;
use std::time::{Duration, Instant};

pub use pusher::{PeriodicPusher, PushMode, PusherStats, MIN_INTERVAL};

use crate::exposition::name::validate_label_name;
use crate::{Registry, CONTENT_TYPE};

/// The default time one push, push-add or delete may take, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a push, push-add or delete failed (or a [`Pushgateway`] could not be built).
///
/// ```
/// use agentcore_telemetry::pushgateway::{PushError, Pushgateway};
///
/// let err = Pushgateway::new("https://gw.example:9091", "backup").unwrap_err();
/// assert!(matches!(err, PushError::InvalidUrl(_))); // this crate has no TLS
/// assert!(err.to_string().starts_with("invalid Pushgateway URL"));
/// let err = Pushgateway::new("http://gw.example:9091", "").unwrap_err();
/// assert!(matches!(err, PushError::InvalidGroupingKey(_))); // the job name is required
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError {
    /// The gateway URL is not one this client can use.
    InvalidUrl(String),
    /// A grouping-key label name that is invalid, reserved, or given twice; or, refused at a
    /// push, `le` (`quantile`) with a histogram (summary) in the registry, whose samples have
    /// a label of that name already, or a series in the registry with a label of the grouping
    /// key (`job` included) and another value, which the gateway would overwrite.
    InvalidGroupingKey(String),
    /// A family of the registry has a name the gateway gives metrics of its own in every group,
    /// `push_time_seconds` or `push_failure_time_seconds`: it would replace the family with
    /// them. Refused at a push, nothing sent.
    ReservedName(String),
    /// No connection, or the connection broke, before a full response arrived: the gateway
    /// closed it without answering, or in the middle of the response, included.
    Io(String),
    /// The deadline passed first.
    Timeout,
    /// The gateway answered with a status other than 2xx; `body` is the start of its
    /// explanation (control characters replaced).
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The response was not HTTP, or not one this client takes: a bad status line, an invalid
    /// `Content-Length`, framing that is faulty or ambiguous (an HTTP/1.0 `Transfer-Encoding`,
    /// a `Transfer-Encoding` not ending in `chunked` beside a `Content-Length`, chunks that do
    /// not parse), a head longer than the 64 KiB read.
    InvalidResponse(String),
    /// A panic stopped a [`PeriodicPusher`]'s push before anything was sent: typically a
    /// `gauge_fn` or `counter_fn` callback that panicked while the registry was encoded. The
    /// pusher caught it, counted the push as failed and goes on.
    Panicked {
        /// What was running (`encoding the registry`), then the panic's message if it was a
        /// string.
        message: String,
    },
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::InvalidUrl(e) => write!(f, "invalid Pushgateway URL: {e}"),
            PushError::InvalidGroupingKey(e) => write!(f, "invalid grouping key: {e}"),
            PushError::ReservedName(e) => write!(f, "reserved metric name: {e}"),
            PushError::Io(e) => write!(f, "Pushgateway connection failed: {e}"),
            PushError::Timeout => f.write_str("Pushgateway request timed out"),
            PushError::Status { status, body } if body.is_empty() => {
                write!(f, "Pushgateway answered {status}")
            }
            PushError::Status { status, body } => {
                write!(f, "Pushgateway answered {status}: {body}")
            }
            PushError::InvalidResponse(e) => write!(f, "invalid Pushgateway response: {e}"),
            PushError::Panicked { message } => {
                write!(f, "Pushgateway push not sent: a panic while {message}")
            }
        }
    }
}

impl std::error::Error for PushError {}

/// A Pushgateway and one grouping key (the job and optional labels) to push to.
///
/// ```
/// use agentcore_telemetry::pushgateway::Pushgateway;
///
/// let g = Pushgateway::new("http://127.0.0.1:9091", "backup")?
///     .with_grouping_key("dir", "/var/tmp")?
///     .with_grouping_key("shard", "")?
///     .with_grouping_key("host", "db-1")?;
/// assert_eq!(g.path(), "/metrics/job/backup/dir@base64/L3Zhci90bXA=/shard@base64/=/host/db-1");
/// assert!(Pushgateway::new("http://127.0.0.1:9091", "backup")?.with_grouping_key("job", "x").is_err());
/// # Ok::<(), agentcore_telemetry::pushgateway::PushError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pushgateway {
    endpoint: http::Endpoint,
    /// The request target: the URL's path prefix plus `/metrics/job/...`.
    path: String,
    /// The grouping key's labels and values, `job` first.
    grouping: Vec<(String, String)>,
    timeout: Duration,
}

impl Pushgateway {
    /// A gateway at `url` (`http://host[:port][/prefix]`; `https://` is refused: this crate has
    /// no TLS) and the job name of the grouping key. The job name may be any non-empty text
    /// (it is encoded as the grouping-key values are); an empty one is refused, since the
    /// Pushgateway needs one.
    ///
    /// ```
    /// use agentcore_telemetry::pushgateway::Pushgateway;
    ///
    /// let gateway = Pushgateway::new("http://127.0.0.1:9091/gateway", "nightly_batch").unwrap(); // sends nothing
    /// assert_eq!(gateway.path(), "/gateway/metrics/job/nightly_batch");
    /// assert!(Pushgateway::new("http://127.0.0.1:9091", "").is_err());
    /// assert!(Pushgateway::new("127.0.0.1:9091", "nightly_batch").is_err()); // a URL, with its scheme
    /// ```
    pub fn new(url: &str, job: &str) -> Result<Pushgateway, PushError> {
        let endpoint = http::Endpoint::parse(url).map_err(PushError::InvalidUrl)?;
        if job.is_empty() {
            return Err(PushError::InvalidGroupingKey(
                "the job name must not be empty".into(),
            ));
        }
        let mut path = endpoint.prefix.trim_end_matches('/').to_string();
        path.push_str("/metrics");
        push_pair(&mut path, "job", job);
        Ok(Pushgateway {
            endpoint,
            path,
            grouping: vec![("job".into(), job.into())],
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Adds a label to the grouping key. The name must be a valid label name, not reserved
    /// (`__…`), and not already in the key (`job` always is); the value may be anything.
    ///
    /// ```
    /// use agentcore_telemetry::pushgateway::Pushgateway;
    ///
    /// let gateway = Pushgateway::new("http://127.0.0.1:9091", "backup").unwrap()
    ///     .with_grouping_key("instance", "db-1").unwrap()
    ///     .with_grouping_key("dir", "/var/tmp").unwrap(); // a `/` is sent base64-encoded
    /// assert_eq!(gateway.path(), "/metrics/job/backup/instance/db-1/dir@base64/L3Zhci90bXA=");
    /// assert!(gateway.clone().with_grouping_key("instance", "db-2").is_err()); // already in the key
    /// assert!(gateway.with_grouping_key("__name", "x").is_err()); // reserved
    /// ```
    pub fn with_grouping_key(mut self, name: &str, value: &str) -> Result<Pushgateway, PushError> {
        validate_label_name(name).map_err(|e| PushError::InvalidGroupingKey(e.to_string()))?;
        if self.grouping.iter().any(|(n, _)| n == name) {
            return Err(PushError::InvalidGroupingKey(format!(
                "label {name:?} is already in the grouping key"
            )));
        }
        self.grouping.push((name.into(), value.into()));
        push_pair(&mut self.path, name, value);
        Ok(self)
    }

    /// How long one push, push-add or delete may take in all (default [`DEFAULT_TIMEOUT`]): the
    /// registry's encoding, name resolution, the connection, the request and the response. A
    /// registry callback ([`Registry::gauge_fn`], [`Registry::counter_fn`]) runs to its end,
    /// not interrupted: one that blocks past the timeout delays the push's return until it
    /// returns, and then the push sends nothing and fails with [`PushError::Timeout`].
    ///
    /// ```
    /// use agentcore_telemetry::pushgateway::{PushError, Pushgateway};
    /// use agentcore_telemetry::Registry;
    /// use std::time::Duration;
    ///
    /// let gateway = Pushgateway::new("http://127.0.0.1:9091", "backup").unwrap();
    /// let gateway = gateway.with_timeout(Duration::ZERO);
    /// // The connection counts too: with no time at all, the push gives up before connecting.
    /// assert_eq!(gateway.push(&Registry::new()), Err(PushError::Timeout));
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Pushgateway {
        self.timeout = timeout;
        self
    }

    /// The request path of the grouping key (`/metrics/job/<job>{/<label>/<value>}`).
    ///
    /// ```
    /// use agentcore_telemetry::pushgateway::Pushgateway;
    ///
    /// let gateway = Pushgateway::new("http://127.0.0.1:9091/pg/", "backup").unwrap();
    /// let gateway = gateway.with_grouping_key("host", "db-1").unwrap();
    /// assert_eq!(gateway.path(), "/pg/metrics/job/backup/host/db-1"); // under the URL's prefix
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `PUT`: replaces every metric of the grouping key with the registry's.
    ///
    /// ```
    /// # use std::io::{BufRead, BufReader, Read, Write};
    /// # // A stand-in Pushgateway on a loopback port: answers one request `200` and returns it.
    /// # fn stand_in() -> (String, std::thread::JoinHandle<(String, String)>) {
    /// #     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// #     let url = format!("http://{}", listener.local_addr().unwrap());
    /// #     (url, std::thread::spawn(move || {
    /// #         let mut reader = BufReader::new(listener.accept().unwrap().0);
    /// #         let (mut head, mut line) = (String::new(), String::new());
    /// #         while reader.read_line(&mut line).unwrap() > 2 {
    /// #             head.push_str(&std::mem::take(&mut line));
    /// #         }
    /// #         let length = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap();
    /// #         let mut body = vec![0; length.parse().unwrap()];
    /// #         reader.read_exact(&mut body).unwrap();
    /// #         reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
    /// #         (head, String::from_utf8(body).unwrap())
    /// #     }))
    /// # }
    /// # let (url, received) = stand_in();
    /// use agentcore_telemetry::pushgateway::Pushgateway;
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.counter("batch_records_total", "Records processed.").unwrap().inc_by(1200);
    /// Pushgateway::new(&url, "nightly_batch").unwrap().push(&registry).unwrap();
    /// let (head, body) = received.join().unwrap(); // what the gateway received
    /// assert!(head.starts_with("PUT /metrics/job/nightly_batch HTTP/1.1\r\n"));
    /// assert!(body.ends_with("batch_records_total 1200\n"));
    /// ```
    pub fn push(&self, registry: &Registry) -> Result<(), PushError> {
        self.send_registry("PUT", registry, deadline_after(self.timeout))
    }

    /// `POST`: replaces the grouping key's metrics that have the same names as the
    /// registry's, keeping the others.
    ///
    /// ```
    /// # use std::io::{BufRead, BufReader, Read, Write};
    /// # // A stand-in Pushgateway on a loopback port: answers one request `200` and returns it.
    /// # fn stand_in() -> (String, std::thread::JoinHandle<(String, String)>) {
    /// #     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// #     let url = format!("http://{}", listener.local_addr().unwrap());
    /// #     (url, std::thread::spawn(move || {
    /// #         let mut reader = BufReader::new(listener.accept().unwrap().0);
    /// #         let (mut head, mut line) = (String::new(), String::new());
    /// #         while reader.read_line(&mut line).unwrap() > 2 {
    /// #             head.push_str(&std::mem::take(&mut line));
    /// #         }
    /// #         let length = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap();
    /// #         let mut body = vec![0; length.parse().unwrap()];
    /// #         reader.read_exact(&mut body).unwrap();
    /// #         reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
    /// #         (head, String::from_utf8(body).unwrap())
    /// #     }))
    /// # }
    /// # let (url, received) = stand_in();
    /// use agentcore_telemetry::pushgateway::Pushgateway;
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.gauge("backup_last_size_bytes", "Size of the last backup.").unwrap().set(4096.0);
    /// Pushgateway::new(&url, "backup").unwrap().push_add(&registry).unwrap();
    /// let (head, body) = received.join().unwrap(); // what the gateway received
    /// assert!(head.starts_with("POST /metrics/job/backup HTTP/1.1\r\n"));
    /// assert!(body.ends_with("backup_last_size_bytes 4096\n"));
    /// ```
    pub fn push_add(&self, registry: &Registry) -> Result<(), PushError> {
        self.send_registry("POST", registry, deadline_after(self.timeout))
    }

    /// `DELETE`: removes every metric of the grouping key. The gateway answers `202 Accepted`
    /// once it has queued the deletion, not done it: `Ok` means the group is about to go, and a
    /// scrape of the gateway right after may still show it.
    ///
    /// ```
    /// # use std::io::{BufRead, BufReader, Read, Write};
    /// # // A stand-in Pushgateway on a loopback port: answers one request `200` and returns it.
    /// # fn stand_in() -> (String, std::thread::JoinHandle<(String, String)>) {
    /// #     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// #     let url = format!("http://{}", listener.local_addr().unwrap());
    /// #     (url, std::thread::spawn(move || {
    /// #         let mut reader = BufReader::new(listener.accept().unwrap().0);
    /// #         let (mut head, mut line) = (String::new(), String::new());
    /// #         while reader.read_line(&mut line).unwrap() > 2 {
    /// #             head.push_str(&std::mem::take(&mut line));
    /// #         }
    /// #         let length = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap();
    /// #         let mut body = vec![0; length.parse().unwrap()];
    /// #         reader.read_exact(&mut body).unwrap();
    /// #         reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
    /// #         (head, String::from_utf8(body).unwrap())
    /// #     }))
    /// # }
    /// # let (url, received) = stand_in();
    /// use agentcore_telemetry::pushgateway::Pushgateway;
    ///
    /// let gateway = Pushgateway::new(&url, "backup").unwrap().with_grouping_key("host", "db-1").unwrap();
    /// gateway.delete().unwrap();
    /// let (head, body) = received.join().unwrap(); // what the gateway received
    /// assert!(head.starts_with("DELETE /metrics/job/backup/host/db-1 HTTP/1.1\r\n"));
    /// assert!(body.is_empty());
    /// ```
    pub fn delete(&self) -> Result<(), PushError> {
        let mut scratch = http::Scratch::default();
        self.send(
            "DELETE",
            b"",
            deadline_after(self.timeout),
            &|| None,
            &mut scratch,
        )
    }

    fn send_registry(
        &self,
        method: &'static str,
        registry: &Registry,
        deadline: Instant,
    ) -> Result<(), PushError> {
        let mut body = String::new();
        registry.encode_text_into(&mut body);
        let mut scratch = http::Scratch::default();
        self.send(method, body.as_bytes(), deadline, &|| None, &mut scratch)
    }

    /// One request by `deadline`, or once `shutdown()` gives a deadline (a periodic pusher's
    /// final push asked for), as `http::send` says.
    fn send(
        &self,
        method: &'static str,
        body: &[u8],
        deadline: Instant,
        shutdown: &dyn Fn() -> Option<Instant>,
        scratch: &mut http::Scratch,
    ) -> Result<(), PushError> {
        self.check_reserved_labels(body)?;
        body::check_grouping_labels(body, &self.grouping)?;
        body::check_reserved_names(body)?;
        let request = http::Request {
            method,
            path: &self.path,
            content_type: CONTENT_TYPE,
            body,
        };
        let status = http::send(&self.endpoint, &request, deadline, shutdown, scratch)?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(PushError::Status {
                status,
                body: scratch.body_text(),
            })
        }
    }

    /// Refuses a body (text format 0.0.4) with a histogram when `le` is in the grouping key, or a
    /// summary when `quantile` is: the gateway would add the label to the family's samples,
    /// which have one of that name already (see the module documentation).
    fn check_reserved_labels(&self, body: &[u8]) -> Result<(), PushError> {
        for (label, kind) in [("le", " histogram"), ("quantile", " summary")] {
            if !self.grouping.iter().any(|(n, _)| n == label) {
                continue;
            }
            let family = body
                .split(|&b| b == b'\n')
                .filter_map(|line| line.strip_prefix(b"# TYPE "))
                .find_map(|rest| rest.strip_suffix(kind.as_bytes()));
            if let Some(family) = family {
                return Err(PushError::InvalidGroupingKey(format!(
                    "label {label:?} is in the grouping key, which the gateway adds to every \
                     pushed metric, and the{kind} {:?} has samples labelled {label:?} of its own",
                    String::from_utf8_lossy(family)
                )));
            }
        }
        Ok(())
    }
}

/// Appends `/<name>/<value>` or `/<name>@base64/<value in URL-safe base64>`.
fn push_pair(path: &mut String, name: &str, value: &str) {
    path.push('/');
    path.push_str(name);
    // `.` and `..` are unreserved characters, but as a whole segment they are dot segments,
    // which path normalisation removes (RFC 3986 §5.2.4; the Pushgateway redirects).
    let plain = !value.is_empty()
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if plain {
        path.push('/');
        path.push_str(value);
    } else if value.is_empty() {
        // The Pushgateway README: an empty value is `@base64/=`.
        path.push_str("@base64/=");
    } else {
        path.push_str("@base64/");
        base64_url(path, value.as_bytes());
    }
}

/// RFC 4648 §5 (URL- and filename-safe alphabet), with padding.
fn base64_url(out: &mut String, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_without_a_body_displays_without_a_dangling_colon() {
        let status = |body: &str| {
            PushError::Status {
                status: 503,
                body: body.into(),
            }
            .to_string()
        };
        assert_eq!(status(""), "Pushgateway answered 503");
        assert_eq!(status("busy"), "Pushgateway answered 503: busy");
    }

    fn b64(s: &str) -> String {
        let mut out = String::new();
        base64_url(&mut out, s.as_bytes());
        out
    }

    #[test]
    fn base64_matches_rfc_4648_vectors_with_the_url_alphabet() {
        // RFC 4648 §10 test vectors.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64(plain), encoded);
        }
        // The URL-safe alphabet: 0xfb 0xff → "-_8=" (standard base64 would be "+/8=").
        let mut out = String::new();
        base64_url(&mut out, &[0xfb, 0xff]);
        assert_eq!(out, "-_8=");
        // The Pushgateway README's example.
        assert_eq!(b64("/var/tmp"), "L3Zhci90bXA=");
    }

    #[test]
    fn grouping_keys_encode_only_what_needs_it() {
        let g = Pushgateway::new("http://gw:9091/prefix/", "a/b").unwrap();
        assert_eq!(g.path(), "/prefix/metrics/job@base64/YS9i");
        let g = Pushgateway::new("http://gw:9091", "job-1.x_y~z")
            .unwrap()
            .with_grouping_key("v", "é ?%#")
            .unwrap();
        assert_eq!(g.path(), "/metrics/job/job-1.x_y~z/v@base64/w6kgPyUj");
        // Dot segments are encoded (normalisation would remove them); other dots are not.
        let g = Pushgateway::new("http://gw:9091", "..")
            .unwrap()
            .with_grouping_key("a", ".")
            .unwrap()
            .with_grouping_key("b", "...")
            .unwrap()
            .with_grouping_key("c", ".a.")
            .unwrap();
        assert_eq!(
            g.path(),
            "/metrics/job@base64/Li4=/a@base64/Lg==/b/.../c/.a."
        );
        let g = Pushgateway::new("http://gw:9091", ".").unwrap();
        assert_eq!(g.path(), "/metrics/job@base64/Lg==");
        assert!(Pushgateway::new("http://gw", "").is_err());
        assert!(Pushgateway::new("https://gw", "j").is_err());
        let g = Pushgateway::new("http://gw", "j").unwrap();
        for bad in ["", "1a", "a-b", "__x", "job"] {
            assert!(g.clone().with_grouping_key(bad, "v").is_err(), "{bad}");
        }
        let g = g.with_grouping_key("a", "1").unwrap();
        assert!(g.with_grouping_key("a", "2").is_err());
    }
}
