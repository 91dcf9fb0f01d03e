//! A simulated agent runtime: executor threads and async tasks run agents of all four
//! philosophies, recording metrics and traces, while `/metrics` is served and scraped.
//!
//! ```sh
//! cargo run --release --example agent_runtime
//! cargo run --release --example agent_runtime -- --seconds 10 --threads 2 --tasks 32 --addr 127.0.0.1:9464
//! ```
//!
//! It needs no outside server: it serves its own `/metrics` (point a Prometheus at it to watch),
//! scrapes it itself over HTTP, stops after `--seconds` (default 3) and prints a report.
//! `/metrics` negotiates OpenMetrics: `curl -H 'Accept: application/openmetrics-text' ...`
//! shows the tool and agent latency buckets and `agentcore_tool_errors_total` with exemplars
//! (`# {trace_id="…",span_id="…"}`) naming the spans that recorded them.
//! `--print-metrics` also prints the final exposition.
//!
//! Spans leave the process when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (or `--otlp-endpoint`):
//! OTLP/HTTP to a local Jaeger (≥ 1.35, port 4318) or OpenTelemetry Collector; the report
//! then says how many were exported, dropped and failed.
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 cargo run --release --example agent_runtime
//! cargo run --release --example agent_runtime -- --otlp-endpoint http://localhost:4318
//! ```
//!
//! With the bridges (`--features tracing-bridge,metrics-bridge`) a vector-store client
//! instrumented only with `tracing` spans and `metrics` macros runs too, under our own retrieval
//! spans: its spans join our traces and its counters and histograms our scrape, and the report
//! shows both.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use agentcore_telemetry::export::ExportConfig;
use agentcore_telemetry::{
    get_distributed_tracer, get_metrics_collector, init_distributed_tracer, trace_operation,
    AgentPhilosophy, FutureExt, KeyValue, MetricsCollector, MetricsServer, ServerConfig, SpanKind,
    SpanStatus, TraceContext, TraceId, TraceSummary, TracerConfig,
};

const TOOLS: [&str; 5] = [
    "calculator",
    "web_search",
    "code_exec",
    "file_reader",
    "vector_db",
];
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

/// Command-line options.
struct Options {
    seconds: f64,
    threads: usize,
    tasks: usize,
    addr: SocketAddr,
    print_metrics: bool,
    /// `--otlp-endpoint`: export spans there (else `OTEL_EXPORTER_OTLP_ENDPOINT`, if set).
    otlp_endpoint: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 3.0,
        threads: 2,
        tasks: 16,
        addr: "127.0.0.1:9464".parse().expect("valid default address"),
        print_metrics: false,
        otlp_endpoint: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--seconds" => {
                o.seconds = value("--seconds")
                    .parse()
                    .unwrap_or_else(|_| usage("--seconds"))
            }
            "--threads" => {
                o.threads = value("--threads")
                    .parse()
                    .unwrap_or_else(|_| usage("--threads"))
            }
            "--tasks" => {
                o.tasks = value("--tasks")
                    .parse()
                    .unwrap_or_else(|_| usage("--tasks"))
            }
            "--addr" => o.addr = value("--addr").parse().unwrap_or_else(|_| usage("--addr")),
            "--print-metrics" => o.print_metrics = true,
            "--otlp-endpoint" => o.otlp_endpoint = Some(value("--otlp-endpoint")),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    o
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("agent_runtime: {problem}");
    }
    eprintln!(
        "usage: agent_runtime [--seconds F] [--threads N] [--tasks N] [--addr HOST:PORT] [--print-metrics] [--otlp-endpoint URL]"
    );
    std::process::exit(2)
}

/// A small deterministic generator, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Log-uniform in [lo, hi).
    fn seconds(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        lo * (hi / lo).powf(u)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A tool call that may fail.
#[derive(Debug)]
struct ToolError(&'static str);

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// What one worker (thread or task) did.
#[derive(Default)]
struct Tally {
    agents: [u64; 4],
    ops: u64,
    /// The slowest agent: how long it took and its trace's summary, read from the span log
    /// right when it became the slowest (before newer spans overwrite it).
    slowest: Option<(Duration, Option<TraceSummary>)>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (a, b) in self.agents.iter_mut().zip(other.agents) {
            *a += b;
        }
        self.ops += other.ops;
        if other.slowest.as_ref().map(|s| s.0) > self.slowest.as_ref().map(|s| s.0) {
            self.slowest = other.slowest;
        }
    }
    fn agent_done(&mut self, philosophy: AgentPhilosophy, elapsed: Duration, trace: TraceId) {
        self.agents[philosophy as usize] += 1;
        // Reading a summary scans the span log, so only for a new maximum, and not during the
        // first agents of a worker (cold caches make each one a new maximum).
        if self.agents.iter().sum::<u64>() > 1_000
            && self.slowest.as_ref().is_none_or(|(d, _)| elapsed > *d)
        {
            self.slowest = Some((elapsed, get_distributed_tracer().get_trace_summary(trace)));
        }
    }
}

#[trace_operation(name = "create_agent", kind = SpanKind::Internal, attributes(component = "agent_lifecycle"))]
fn create_agent(
    c: &MetricsCollector,
    philosophy: AgentPhilosophy,
    rng: &mut Rng,
    tally: &mut Tally,
) {
    c.record_agent_created(philosophy, "initializing");
    let warm = rng.chance(80);
    c.record_container_creation(
        philosophy,
        rng.seconds(0.005, if warm { 0.05 } else { 0.8 }),
        warm,
    );
    c.record_agent_initialization(philosophy, rng.seconds(0.05, 2.0));
    c.record_state_transition("initializing", "running", philosophy);
    c.set_container_pool_size(philosophy, 4 + rng.below(4) as usize);
    tally.ops += 5;
}

#[trace_operation(name = "execute_tool", kind = SpanKind::Client)]
fn execute_tool(
    c: &MetricsCollector,
    tool: &'static str,
    rng: &mut Rng,
    tally: &mut Tally,
) -> Result<f64, ToolError> {
    let hit = rng.chance(60);
    c.record_cache_access("tool_results", hit, 100 + rng.below(50) as usize);
    let duration = rng.seconds(0.001, 2.0);
    tally.ops += 3;
    if rng.chance(6) {
        let error = if rng.chance(50) {
            "TimeoutError"
        } else {
            "RateLimited"
        };
        c.record_tool_execution(tool, duration, "failed", Some(error));
        c.record_error(error, "tool_executor");
        return Err(ToolError(error));
    }
    c.record_tool_execution(tool, duration, "success", None);
    Ok(duration)
}

/// One agent's whole life on an executor thread: a trace with nested spans, events, baggage and
/// `#[trace_operation]` functions, and every kind of metric the collector records.
/// Returns the agent's id; its per-agent series live on until the caller removes them.
fn run_agent(
    c: &MetricsCollector,
    worker: usize,
    n: u64,
    rng: &mut Rng,
    tally: &mut Tally,
) -> String {
    let tracer = get_distributed_tracer();
    let started = Instant::now();
    let philosophy = AgentPhilosophy::ALL[(n % 4) as usize];
    let agent_id = format!("agent-{worker}-{n}");
    let mut trace = tracer.start_trace(None, [("tenant", TENANTS[(n % 3) as usize])]);
    trace.set_baggage("agent_id", agent_id.as_str());
    let mut root = tracer.start_span(
        "agent_lifecycle",
        SpanKind::Server,
        [KeyValue::new("philosophy", philosophy.as_str())],
    );
    let trace_id = root.trace_id();
    create_agent(c, philosophy, rng, tally);
    root.add_event(
        "agent_initialized",
        [KeyValue::new("worker", worker as i64)],
    );

    let exec = tracer.start_span("execute_agent", SpanKind::Internal, []);
    let mut failure = None;
    match philosophy {
        AgentPhilosophy::React => {
            let iterations = 1 + rng.below(6);
            for _ in 0..iterations {
                let tool = TOOLS[rng.below(TOOLS.len() as u64) as usize];
                if let Err(e) = execute_tool(c, tool, rng, tally) {
                    failure = Some(e.0);
                }
            }
            c.record_react_iterations(&agent_id, iterations);
            tally.ops += 1;
        }
        AgentPhilosophy::ChainOfThought => {
            let steps = 2 + rng.below(8);
            for step in 0..steps {
                let mut s = tracer.start_span("reasoning_step", SpanKind::Internal, []);
                s.set_attribute("step", step as i64);
                if rng.chance(30) {
                    s.add_event("cache_miss", [KeyValue::new("key", "tool:calculator")]);
                }
                tracer.finish_span(s, SpanStatus::Ok, None);
            }
            c.record_cot_steps(&agent_id, steps);
            tally.ops += 1;
        }
        AgentPhilosophy::MultiAgent => {
            for _ in 0..(2 + rng.below(5)) {
                c.record_multi_agent_message(if rng.chance(70) {
                    "direct"
                } else {
                    "broadcast"
                });
                tally.ops += 1;
            }
            c.record_consensus(if rng.chance(85) { "reached" } else { "failed" });
            tally.ops += 1;
        }
        AgentPhilosophy::Autonomous => {
            c.record_autonomous_goal("active", ["low", "medium", "high"][rng.below(3) as usize]);
            for _ in 0..(1 + rng.below(4)) {
                c.record_autonomous_decision(&agent_id);
                tally.ops += 1;
            }
            if let Err(e) = execute_tool(c, "web_search", rng, tally) {
                failure = Some(e.0);
            }
            c.record_autonomous_goal(
                if failure.is_some() {
                    "failed"
                } else {
                    "completed"
                },
                "high",
            );
            tally.ops += 2;
        }
    }
    c.update_resource_usage(
        &agent_id,
        philosophy,
        rng.seconds(1.0, 95.0),
        rng.seconds(32.0, 2048.0),
    );
    c.record_agent_execution(philosophy, rng.seconds(0.1, 60.0));
    tally.ops += 2;
    tracer.finish_span(exec, SpanStatus::Ok, None);

    // Some agents fail as a whole (a failed tool call sometimes takes the agent down).
    match failure.filter(|_| rng.chance(40)) {
        Some(reason) => {
            let error = ToolError(reason);
            tracer.record_exception(&mut root, &error);
            c.record_state_transition("running", "failed", philosophy);
            c.record_agent_failure(philosophy, reason);
            tracer.finish_span(root, SpanStatus::Error, Some(reason));
        }
        None => {
            c.record_state_transition("running", "completed", philosophy);
            c.record_agent_completed(philosophy, "completed");
            tracer.finish_span(root, SpanStatus::Ok, None);
        }
    }
    tally.ops += 2;
    drop(trace);
    tally.agent_done(philosophy, started.elapsed(), trace_id);
    agent_id
}

/// How many finished agents per executor keep their per-agent series (`agent_id`-labelled
/// `agentcore_react_iterations`, `..._cot_steps`, `..._agent_cpu_percent`, ...) before they are
/// removed: long enough for a scrape to see recent agents, bounded so cardinality stays flat.
const RECENT_AGENTS: usize = 8;

#[trace_operation(name = "plan_step", kind = SpanKind::Internal)]
async fn plan_step(step: u64) -> u64 {
    tokio::task::yield_now().await;
    step * 2
}

#[trace_operation(name = "remote_tool_call", kind = SpanKind::Client)]
async fn remote_tool_call(
    c: MetricsCollector,
    tool: &'static str,
    seconds: f64,
    fail: bool,
) -> Result<(), ToolError> {
    tokio::task::yield_now().await;
    if fail {
        c.record_tool_execution(tool, seconds, "failed", Some("TimeoutError"));
        return Err(ToolError("TimeoutError"));
    }
    c.record_tool_execution(tool, seconds, "success", None);
    Ok(())
}

/// One agent on the async runtime: the root span follows the task across `.await` points and
/// worker threads; children come from async `#[trace_operation]` functions.
async fn run_agent_async(c: MetricsCollector, task: usize, n: u64, mut rng: Rng) -> (Tally, Rng) {
    let tracer = get_distributed_tracer();
    let mut tally = Tally::default();
    let started = Instant::now();
    let philosophy = AgentPhilosophy::ALL[((n + task as u64) % 4) as usize];
    let mut cx = TraceContext::new(TraceId::random(), None, true);
    cx.set_baggage("tenant", TENANTS[(n % 3) as usize]);
    let root = tracer
        .start_span_with_parent(
            "async_agent",
            SpanKind::Consumer,
            [KeyValue::new("philosophy", philosophy.as_str())],
            Some(&cx),
        )
        .detach();
    let trace_id = root.trace_id();
    let inner_c = c.clone();
    let failed = async move {
        inner_c.record_agent_created(philosophy, "initializing");
        let mut failed = false;
        for step in 0..(1 + rng.below(3)) {
            plan_step(step).await;
            let tool = TOOLS[rng.below(TOOLS.len() as u64) as usize];
            let fail = rng.chance(5);
            failed |= remote_tool_call(inner_c.clone(), tool, rng.seconds(0.001, 1.0), fail)
                .await
                .is_err();
        }
        inner_c.record_agent_completed(philosophy, if failed { "failed" } else { "completed" });
        (failed, rng)
    }
    .in_span(root)
    .await;
    tally.ops += 6;
    tally.agent_done(philosophy, started.elapsed(), trace_id);
    (tally, failed.1)
}

/// Exemplars in the last OpenMetrics scrape.
static LAST_EXEMPLARS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Scrapes `/metrics` over HTTP until told to stop; returns (durations, last body size).
fn scraper(addr: SocketAddr, stop: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
    let url = format!("http://{addr}/metrics");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    let mut times = Vec::new();
    let mut last_size = 0;
    let mut scrapes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        // Every other scrape asks for OpenMetrics, as Prometheus 2.42 does.
        let mut request = agent.get(&url);
        scrapes += 1;
        if scrapes % 2 == 0 {
            request = request.set(
                "Accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            );
        }
        if let Some(body) = request.call().ok().and_then(|r| r.into_string().ok()) {
            times.push(t.elapsed());
            last_size = body.len();
            if body.ends_with("# EOF\n") {
                let exemplars = body.lines().filter(|l| l.contains(" # {trace_id=")).count();
                LAST_EXEMPLARS.store(exemplars, Ordering::Relaxed);
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    (times, last_size)
}

fn main() {
    let o = options();
    // With OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_TRACES_EXPORTER=console) set, the tracer
    // starts span export itself; --otlp-endpoint starts it here instead, with the other
    // OTEL_* variables still applying.
    init_distributed_tracer(TracerConfig {
        service_name: "agent-runtime".into(),
        from_env: o.otlp_endpoint.is_none(),
        ..TracerConfig::default()
    });
    let tracer = get_distributed_tracer();
    if let Some(endpoint) = &o.otlp_endpoint {
        let from_env = ExportConfig::from_lookup(|name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            _ => std::env::var(name).ok(),
        })
        .unwrap_or_else(|e| {
            eprintln!("agent_runtime: {e}");
            std::process::exit(2)
        });
        for w in &from_env.warnings {
            eprintln!("agent_runtime: ignored: {w}");
        }
        if let Err(e) = tracer.start_export(&from_env.config) {
            eprintln!("agent_runtime: {e}");
            std::process::exit(2);
        }
    }
    if tracer.get_metrics().export_enabled {
        println!("agent_runtime: exporting spans (OTLP)");
    }
    let collector = get_metrics_collector();
    tracer
        .register_metrics(collector.get_registry())
        .expect("tracer metrics register once");
    // The standard process_* metrics (CPU, memory, descriptors, threads, start time), read from
    // /proc at each scrape: the collector registers them by default, so this finds them taken.
    match collector.get_registry().register_process_metrics() {
        Ok(_) | Err(agentcore_telemetry::Error::DuplicateMetric { .. }) => {}
        Err(e) => eprintln!("agent_runtime: no process metrics: {e}"),
    }
    collector.set_runtime_info([
        ("version", env!("CARGO_PKG_VERSION")),
        ("environment", "simulation"),
        ("platform", std::env::consts::OS),
    ]);
    let monitor = collector
        .start_system_monitor(Duration::from_millis(500))
        .expect("start the system monitor");

    let registry = collector.get_registry().clone();
    // OpenMetrics (with exemplars) to scrapers that ask for it, as Prometheus does by default.
    let server_config = ServerConfig::default().with_openmetrics(true);
    let metrics_server =
        MetricsServer::start(server_config.clone().with_addr(o.addr), registry.clone())
            .or_else(|e| {
                eprintln!(
                    "agent_runtime: {} is not available ({e}); using an ephemeral port",
                    o.addr
                );
                MetricsServer::start(
                    server_config.with_addr("127.0.0.1:0".parse().expect("valid")),
                    registry.clone(),
                )
            })
            .expect("start the /metrics server");
    let addr = metrics_server.local_addr();
    println!(
        "agent_runtime: {} executor threads + {} async tasks for {:.1} s; metrics at http://{addr}/metrics",
        o.threads, o.tasks, o.seconds
    );

    #[cfg(all(feature = "tracing-bridge", feature = "metrics-bridge"))]
    bridged::install(collector);

    let stop = Arc::new(AtomicBool::new(false));
    let scrape = {
        let stop = stop.clone();
        thread::spawn(move || scraper(addr, stop))
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(o.seconds);

    let executors: Vec<_> = (0..o.threads)
        .map(|worker| {
            thread::spawn(move || {
                let c = get_metrics_collector();
                let mut rng =
                    Rng(0x9e37_79b9_7f4a_7c15 ^ ((worker as u64 + 1) * 0x2545_f491_4f6c_dd1d));
                let mut tally = Tally::default();
                let mut n = 0;
                let mut recent = std::collections::VecDeque::with_capacity(RECENT_AGENTS + 1);
                while Instant::now() < deadline {
                    recent.push_back(run_agent(c, worker, n, &mut rng, &mut tally));
                    if recent.len() > RECENT_AGENTS {
                        // Per-agent series end some agents after the agent.
                        if let Some(old) = recent.pop_front() {
                            c.remove_agent(&old);
                        }
                    }
                    n += 1;
                }
                for old in recent {
                    c.remove_agent(&old);
                }
                tally
            })
        })
        .collect();

    #[cfg(all(feature = "tracing-bridge", feature = "metrics-bridge"))]
    let retrieval = thread::spawn(move || bridged::retrieval_jobs(deadline));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut total = runtime.block_on(async {
        let tasks: Vec<_> = (0..o.tasks)
            .map(|task| {
                tokio::spawn(async move {
                    let c = get_metrics_collector().clone();
                    let mut rng = Rng(0xd1b5_4a32_d192_ed03 ^ ((task as u64 + 1) * 0x9e37_79b9));
                    let mut tally = Tally::default();
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let (t, r) = run_agent_async(c.clone(), task, n, rng).await;
                        rng = r;
                        tally.merge(t);
                        n += 1;
                    }
                    tally
                })
            })
            .collect();
        let mut total = Tally::default();
        for t in tasks {
            total.merge(t.await.expect("task"));
        }
        total
    });
    for e in executors {
        total.merge(e.join().expect("executor thread"));
    }
    #[cfg(all(feature = "tracing-bridge", feature = "metrics-bridge"))]
    let retrieval = retrieval.join().expect("retrieval thread");
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut scrape_times, scrape_size) = scrape.join().expect("scraper");
    drop(monitor);

    let encode_start = Instant::now();
    let exposition = registry.encode_text();
    let encode_time = encode_start.elapsed();
    let server_stats = metrics_server.shutdown();
    // Export what the span log still holds (the global tracer is never dropped).
    let export_running = tracer.get_metrics().export_enabled;
    let export_result = tracer.shutdown(Duration::from_secs(5));
    let stats = tracer.stats();
    let metrics = tracer.get_metrics();

    if o.print_metrics {
        println!("{exposition}");
    }
    let agents: u64 = total.agents.iter().sum();
    println!(
        "\n== agent_runtime report ({:.2} s) ==",
        elapsed.as_secs_f64()
    );
    println!(
        "agents run           {agents} (react {}, chain_of_thought {}, multi_agent {}, autonomous {})",
        total.agents[0], total.agents[1], total.agents[2], total.agents[3]
    );
    println!(
        "operations recorded  {} metric records + {} spans = {:.2} M/s",
        total.ops,
        stats.spans_started + stats.spans_unsampled,
        (total.ops + stats.spans_started + stats.spans_unsampled) as f64
            / elapsed.as_secs_f64()
            / 1e6
    );
    println!(
        "spans                {} finished, {} errored, {} dropped (slot busy), {} overwritten in the {}-span log",
        stats.spans_finished,
        stats.spans_errored,
        stats.spans_dropped,
        stats.spans_overwritten,
        tracer.span_log_capacity()
    );
    let error_rate = if stats.spans_finished == 0 {
        0.0
    } else {
        stats.spans_errored as f64 * 100.0 / stats.spans_finished as f64
    };
    println!(
        "tracer error rate    {error_rate:.2} % of all finished spans ({:.2} % of the {} in the log, {} traces)",
        metrics.error_rate_percent, metrics.total_spans, metrics.unique_traces
    );
    scrape_times.sort();
    let median = scrape_times
        .get(scrape_times.len() / 2)
        .copied()
        .unwrap_or_default();
    println!(
        "scrapes              {} over HTTP: median {:.2} ms, max {:.2} ms, last {} bytes; final encode {:.2} ms, {} bytes, {} series",
        scrape_times.len(),
        median.as_secs_f64() * 1e3,
        scrape_times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        scrape_size,
        encode_time.as_secs_f64() * 1e3,
        exposition.len(),
        exposition.lines().filter(|l| !l.starts_with('#')).count(),
    );
    println!(
        "metrics server       {} scrapes served, {} errors, last encode {:.2} ms",
        server_stats.scrapes,
        server_stats.scrape_errors,
        server_stats.last_encode_duration.as_secs_f64() * 1e3
    );
    match tracer.export_stats() {
        Some(e) if export_running => println!(
            "span export          {} exported, {} dropped ({} overwritten before export, {} queue full, {} at shutdown), {} failed, {} rejected{}",
            e.exported,
            e.dropped(),
            e.dropped_overwritten,
            e.dropped_queue_full,
            e.dropped_shutdown,
            e.failed,
            e.rejected,
            match (&export_result, &e.last_error) {
                (Err(err), _) => format!("; shutdown: {err}"),
                (Ok(()), Some(last)) => format!("; last error: {last}"),
                _ => String::new(),
            }
        ),
        _ => println!(
            "span export          off (set OTEL_EXPORTER_OTLP_ENDPOINT or --otlp-endpoint)"
        ),
    }
    println!(
        "exemplars            {} samples linked to a trace in the last OpenMetrics scrape",
        LAST_EXEMPLARS.load(Ordering::Relaxed)
    );
    #[cfg(all(feature = "tracing-bridge", feature = "metrics-bridge"))]
    bridged::report(&retrieval, &exposition);
    match total.slowest {
        Some((took, Some(s))) => println!(
            "slowest trace        {} took {:.3} ms (spans {:.3} ms): {} spans, {} errors, operations {}",
            s.trace_id,
            took.as_secs_f64() * 1e3,
            s.total_duration_ms,
            s.span_count,
            s.error_count,
            s.operations.join(", ")
        ),
        Some((took, None)) => println!(
            "slowest trace        took {:.3} ms (not found in the span log)",
            took.as_secs_f64() * 1e3
        ),
        None => println!("slowest trace        none (no agent finished)"),
    }
}

/// A component instrumented only with the ecosystem's facades (`tracing` spans and events,
/// `metrics` macros), as an HTTP stack or a database driver would be, fed into our tracer and
/// registry by the bridges.
#[cfg(all(feature = "tracing-bridge", feature = "metrics-bridge"))]
mod bridged {
    use agentcore_telemetry::bridge::metrics_recorder::{AgentcoreRecorder, Matcher};
    use agentcore_telemetry::bridge::tracing_layer::AgentcoreLayer;
    use agentcore_telemetry::{
        get_distributed_tracer, Buckets, MetricsCollector, SpanKind, SpanStatus, TraceId,
    };
    use std::time::{Duration, Instant};
    use tracing_subscriber::layer::SubscriberExt;

    const INDEXES: [&str; 3] = ["docs", "code", "tickets"];

    /// Installs the layer (global subscriber) and the recorder (global recorder, into the
    /// collector's registry).
    pub(super) fn install(collector: &MetricsCollector) {
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(AgentcoreLayer::global()),
        )
        .expect("no other global subscriber");
        let recorder = AgentcoreRecorder::builder()
            .buckets_for(
                Matcher::Suffix("_seconds".into()),
                Buckets::exponential(0.0001, 4.0, 8).expect("valid buckets"),
            )
            .build(collector.get_registry());
        metrics::set_global_recorder(recorder).expect("no other global recorder");
        metrics::describe_counter!("vector_store_queries_total", "Vector-store queries.");
        metrics::describe_histogram!("vector_store_query_seconds", "Vector-store query latency.");
    }

    /// The instrumented client: a `tracing` span with fields, an event, a failure now and then.
    fn query(index: &'static str, n: u64) -> Result<usize, &'static str> {
        let span = tracing::info_span!(
            "vector_store.query",
            otel.kind = "client",
            db.system = "vector",
            index,
            top_k = 8_i64,
            hits = tracing::field::Empty,
        );
        let _entered = span.enter();
        let started = Instant::now();
        std::thread::sleep(Duration::from_micros(50 + n % 7 * 20));
        let outcome = if n % 17 == 0 {
            Err("timeout")
        } else {
            Ok((n % 9) as usize)
        };
        match outcome {
            Ok(hits) => {
                span.record("hits", hits as i64);
                tracing::info!(hits = hits as i64, "results ranked");
            }
            Err(e) => tracing::error!(error = e, "query failed"),
        }
        let status = if outcome.is_ok() { "ok" } else { "error" };
        metrics::counter!("vector_store_queries_total", "index" => index, "status" => status)
            .increment(1);
        metrics::histogram!("vector_store_query_seconds", "index" => index)
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    /// What the retrieval thread did.
    pub(super) struct Retrieval {
        jobs: u64,
        /// The first sampled job's trace and its number of `tracing` child spans.
        sample: Option<(TraceId, usize)>,
    }

    /// Retrieval jobs until `deadline`: each is one of our spans around three queries of the
    /// instrumented client, whose spans become its children.
    pub(super) fn retrieval_jobs(deadline: Instant) -> Retrieval {
        let tracer = get_distributed_tracer();
        let mut done = Retrieval {
            jobs: 0,
            sample: None,
        };
        while Instant::now() < deadline {
            let job = tracer.start_span("retrieval_job", SpanKind::Internal, []);
            let mut failed = false;
            for (i, index) in INDEXES.iter().enumerate() {
                failed |= query(index, done.jobs * 3 + i as u64).is_err();
            }
            let trace = job.trace_id();
            let sampled = job.is_recording();
            job.finish(if failed {
                SpanStatus::Error
            } else {
                SpanStatus::Ok
            });
            if done.sample.is_none() && sampled {
                // Read back at once, before the span log wraps around.
                let spans = tracer.get_trace_spans(trace);
                let job = spans.iter().find(|s| s.name == "retrieval_job");
                let children = spans
                    .iter()
                    .filter(|s| s.name == "vector_store.query")
                    .filter(|s| job.is_some_and(|j| s.parent_span_id == Some(j.span_id)))
                    .count();
                assert_eq!(children, 3, "the `tracing` spans are children of our span");
                done.sample = Some((trace, children));
            }
            done.jobs += 1;
        }
        done
    }

    /// Report lines, asserting that the bridged telemetry arrived.
    pub(super) fn report(done: &Retrieval, exposition: &str) {
        let queries: f64 = exposition
            .lines()
            .filter(|l| l.starts_with("vector_store_queries_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(
            queries,
            (done.jobs * 3) as f64,
            "every `counter!` call reached the scrape"
        );
        assert!(exposition.contains("# HELP vector_store_queries_total Vector-store queries."));
        println!(
            "bridges              {} retrieval jobs: {queries} vector-store queries counted by `metrics` macros in the scrape",
            done.jobs
        );
        if let Some((trace, children)) = done.sample {
            println!(
                "                     trace {trace}: retrieval_job with {children} `tracing` child spans (vector_store.query, kind client)"
            );
        }
    }
}
