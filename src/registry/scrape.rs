//! The registry's exposition: families as the registry stores them ([`RegisteredFamily`],
//! type-erased, with the scrape-time function families [`FnFamily`]), and the scrape that walks
//! them in name order and calls the encoders of [`exposition`](crate::exposition). The registry
//! calls into the encoders, never the other way round: [`OpenMetricsEncoder::encode_into`],
//! which takes a `Registry`, is implemented here.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;

use super::metric::{Metric, Scratch};
use super::{Family, Registry};
use crate::exposition::openmetrics::{self, OpenMetricsEncoder, SeriesHead};
use crate::exposition::prometheus_text::{self, sample_start, value_f64};
use crate::exposition::{Descriptor, MetricKind};

/// Type-erased family, as the registry stores it.
pub(super) trait RegisteredFamily: Send + Sync {
    fn desc(&self) -> &Descriptor;
    /// Text format 0.0.4: header and every series.
    fn encode(&self, out: &mut String, scratch: &mut Scratch);
    /// OpenMetrics 1.0 text: header and every series (no `# EOF`: the registry ends the set).
    fn encode_openmetrics(
        &self,
        out: &mut String,
        scratch: &mut Scratch,
        options: &OpenMetricsEncoder,
    );
    fn as_any(&self) -> &dyn Any;
}

/// `# HELP` and `# TYPE` of a family.
fn write_header(out: &mut String, desc: &Descriptor) {
    prometheus_text::write_family_header(out, desc.kind, &desc.name, &desc.help);
}

/// A scrape-time value function. It gets the scrape's [`Scratch`], where functions registered
/// together may share one reading per scrape (the process metrics' `/proc/self/stat`); the
/// ones users register ([`Registry::gauge_fn`], [`Registry::counter_fn`]) ignore it.
pub(super) type ScrapeFn = Box<dyn Fn(&mut Scratch) -> f64 + Send + Sync>;

/// A metric without labels whose value a function returns at scrape time (client_golang's
/// `GaugeFunc` / `CounterFunc`): for values another part of the program already keeps. A
/// counter of these has no OpenMetrics `_created`: when its value was 0 is known only where it
/// is kept (the process' CPU time counts from the process' start, not from the registration).
pub(super) struct FnFamily {
    pub(super) desc: Descriptor,
    pub(super) read: ScrapeFn,
}

impl RegisteredFamily for FnFamily {
    fn desc(&self) -> &Descriptor {
        &self.desc
    }

    fn encode(&self, out: &mut String, scratch: &mut Scratch) {
        write_header(out, &self.desc);
        sample_start(out, &self.desc.name, "", "", None);
        value_f64(out, (self.read)(scratch));
    }

    fn encode_openmetrics(&self, out: &mut String, scratch: &mut Scratch, _: &OpenMetricsEncoder) {
        let family = openmetrics::write_header(out, &self.desc);
        // No `_created`, whatever `OpenMetricsEncoder::created` says (see `FnFamily`).
        let head = SeriesHead {
            family,
            labels: "",
            created_micros: None,
        };
        let value = (self.read)(scratch);
        match self.desc.kind {
            MetricKind::Counter => openmetrics::counter_value(out, &head, value),
            _ => openmetrics::gauge(out, &head, value),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl<M: Metric> RegisteredFamily for Family<M> {
    fn desc(&self) -> &Descriptor {
        self.descriptor()
    }

    fn encode(&self, out: &mut String, scratch: &mut Scratch) {
        if self.is_empty() {
            return;
        }
        let desc = self.descriptor();
        write_header(out, desc);
        self.for_each_series(|series| {
            series
                .metric()
                .encode_series(&desc.name, series.rendered_labels(), out, scratch)
        });
    }

    fn encode_openmetrics(
        &self,
        out: &mut String,
        scratch: &mut Scratch,
        options: &OpenMetricsEncoder,
    ) {
        if self.is_empty() {
            return;
        }
        let family = openmetrics::write_header(out, self.descriptor());
        let created = options.created();
        self.for_each_series(|series| {
            let head = SeriesHead {
                family,
                labels: series.rendered_labels(),
                // The series' time, unless its metric no longer knows when it started (a
                // counter set from elsewhere, `Metric::created_micros`).
                created_micros: (created && series.metric().created_micros().is_some())
                    .then(|| series.created_micros()),
            };
            series
                .metric()
                .encode_series_openmetrics(&head, out, scratch)
        });
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Runs `encode`, which appends to `out`; if it unwinds (a function family's function
/// panicked: the caller's code), `out` is cut back to where it was before the panic goes on,
/// so a caller who catches it holds no half-written record (review helper-97). `out` is valid
/// UTF-8 at any point (it is only appended to whole `&str`s), and its old length is a
/// character boundary.
fn all_or_nothing(out: &mut String, encode: impl FnOnce(&mut String)) {
    let len = out.len();
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| encode(&mut *out))) {
        out.truncate(len);
        resume_unwind(panic);
    }
}

impl Registry {
    /// Appends the text exposition (format 0.0.4, [`CONTENT_TYPE`](crate::CONTENT_TYPE)) of every
    /// family to `out`. With a reused buffer a steady-state scrape allocates O(1) (nothing per
    /// series). Families without series are skipped. If a function family's function panics
    /// ([`Registry::gauge_fn`], [`Registry::counter_fn`]), the panic goes on to the caller and
    /// `out` is left as it was: no half-written exposition.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.counter("requests_total", "Requests.").unwrap().inc();
    /// registry.gauge_fn("broken", "Panics.", || panic!("no value")).unwrap();
    /// let mut out = String::from("# earlier\n");
    /// let scrape = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     registry.encode_text_into(&mut out)
    /// }));
    /// assert!(scrape.is_err());
    /// assert_eq!(out, "# earlier\n");
    /// ```
    pub fn encode_text_into(&self, out: &mut String) {
        all_or_nothing(out, |out| {
            self.scrape(|family, scratch| family.encode(out, scratch))
        });
    }

    /// Appends the OpenMetrics 1.0 text exposition
    /// ([`OPENMETRICS_CONTENT_TYPE`](crate::exposition::OPENMETRICS_CONTENT_TYPE)) of every
    /// family to `out`, ending with `# EOF`, without `_created` samples (see
    /// [`OpenMetricsEncoder`] for them and for the rules it follows). The same families and
    /// series as [`Registry::encode_text_into`], allocation-free per series with a reused buffer.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Registry};
    ///
    /// let registry = Registry::new();
    /// let latency = registry
    ///     .histogram_family("request_seconds", "Latency.", &["endpoint"], Buckets::new(vec![0.1, 1.0]).unwrap())
    ///     .unwrap();
    /// latency.with_label_values(&["/api"]).unwrap().observe(0.25);
    /// registry.counter("requests_total", "Requests.").unwrap().inc();
    /// let expected = [
    ///     "# TYPE request_seconds histogram",
    ///     "# UNIT request_seconds seconds",
    ///     "# HELP request_seconds Latency.",
    ///     r#"request_seconds_bucket{endpoint="/api",le="0.1"} 0"#,
    ///     r#"request_seconds_bucket{endpoint="/api",le="1.0"} 1"#,
    ///     r#"request_seconds_bucket{endpoint="/api",le="+Inf"} 1"#,
    ///     r#"request_seconds_count{endpoint="/api"} 1"#,
    ///     r#"request_seconds_sum{endpoint="/api"} 0.25"#,
    ///     "# TYPE requests counter",
    ///     "# HELP requests Requests.",
    ///     "requests_total 1",
    ///     "# EOF",
    /// ];
    /// let mut out = String::new();
    /// registry.encode_openmetrics_into(&mut out);
    /// assert_eq!(out, expected.join("\n") + "\n");
    /// ```
    pub fn encode_openmetrics_into(&self, out: &mut String) {
        OpenMetricsEncoder::new().encode_into(self, out);
    }

    /// The OpenMetrics 1.0 text exposition as a new `String` (pre-sized from the previous
    /// scrape); see [`Registry::encode_openmetrics_into`].
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.gauge("queue_depth", "Queued tasks.").unwrap().set(3.0);
    /// let om = registry.encode_openmetrics();
    /// assert!(om.contains("# TYPE queue_depth gauge\n"));
    /// assert!(om.contains("\nqueue_depth 3.0\n"));
    /// assert!(om.ends_with("# EOF\n"));
    /// ```
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(self.inner.last_size.load(Relaxed) + 1024);
        self.encode_openmetrics_into(&mut out);
        self.inner.last_size.store(out.len(), Relaxed);
        out
    }

    fn encode_openmetrics_with(&self, options: &OpenMetricsEncoder, out: &mut String) {
        self.scrape(|family, scratch| family.encode_openmetrics(out, scratch, options));
        openmetrics::write_eof(out);
    }

    #[cfg(feature = "http-server")]
    /// The OpenMetrics families without the final `# EOF`, for a server that appends more
    /// families (its own) before ending the exposition.
    pub(crate) fn encode_openmetrics_families_into(&self, out: &mut String) {
        let options = OpenMetricsEncoder::new();
        self.scrape(|family, scratch| family.encode_openmetrics(out, scratch, &options));
    }

    /// Runs `encode` on every family, in name order, with the scrape's scratch buffers.
    fn scrape(&self, mut encode: impl FnMut(&dyn RegisteredFamily, &mut Scratch)) {
        let families = self.inner.families.load();
        // Scrape-only lock: serialises concurrent scrapes' use of the scratch buffers; no
        // recorder or registration ever takes it.
        let mut scratch = self.inner.scratch.lock().unwrap_or_else(|e| e.into_inner());
        scratch.begin_scrape();
        for family in families.iter() {
            encode(&**family, &mut scratch);
        }
        drop(scratch);
        // Series and tables retired since the last scrape are freed now rather than when the
        // next batch of them fills (a no-op when nothing waits).
        crate::sync::era::Domain::global().reclaim();
    }

    /// The Prometheus text exposition (format 0.0.4) as a new `String`, pre-sized from the
    /// previous scrape; [`Registry::encode_text_into`] appends to a buffer the caller reuses.
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// let calls = registry.counter_family("tool_calls_total", "Tool calls.", &["tool_id"]).unwrap();
    /// calls.with_label_values(&["calculator"]).unwrap().inc();
    /// let text = registry.encode_text();
    /// assert!(text.contains("# TYPE tool_calls_total counter\n"));
    /// assert!(text.contains("\ntool_calls_total{tool_id=\"calculator\"} 1\n"));
    /// ```
    pub fn encode_text(&self) -> String {
        let mut out = String::with_capacity(self.inner.last_size.load(Relaxed) + 1024);
        self.encode_text_into(&mut out);
        self.inner.last_size.store(out.len(), Relaxed);
        out
    }
}

impl OpenMetricsEncoder {
    /// Appends the OpenMetrics exposition of every family of `registry` to `out`, ending with
    /// `# EOF\n`. With a reused buffer, a steady-state scrape allocates nothing per series. If a
    /// function family's function panics, the panic goes on to the caller and `out` is left as
    /// it was (as [`Registry::encode_openmetrics_into`] does): never a partial exposition
    /// without its `# EOF`.
    ///
    /// ```
    /// use agentcore_telemetry::exposition::OpenMetricsEncoder;
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.counter("jobs_total", "Jobs.").unwrap().inc();
    /// let encoder = OpenMetricsEncoder::new().with_created(true);
    /// let mut out = String::new();
    /// for _ in 0..3 {
    ///     out.clear(); // one buffer, reused across scrapes
    ///     encoder.encode_into(&registry, &mut out);
    /// }
    /// assert!(out.contains("\njobs_total 1\n"));
    /// assert!(out.contains("\njobs_created "));
    /// ```
    pub fn encode_into(&self, registry: &Registry, out: &mut String) {
        all_or_nothing(out, |out| registry.encode_openmetrics_with(self, out));
    }

    /// The exposition as a new `String`.
    ///
    /// ```
    /// use agentcore_telemetry::exposition::OpenMetricsEncoder;
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// assert_eq!(OpenMetricsEncoder::new().encode(&registry), "# EOF\n");
    /// ```
    pub fn encode(&self, registry: &Registry) -> String {
        let mut out = String::new();
        self.encode_into(registry, &mut out);
        out
    }
}
