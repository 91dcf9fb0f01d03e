//! The real Prometheus Pushgateway (Debian `prometheus-pushgateway`, installed by
//! `.ci/install-pushgateway`) started on a free loopback port for one test, holding nothing but
//! what the test pushes: it keeps its groups in memory only (`--persistence.file=`), where
//! Debian's default would load and write `/var/lib/prometheus/pushgateway.data`, the file any
//! gateway on the machine run with the defaults (the package's service) persists to.
//!
//! Tests call [`require_pushgateway`] first: without the binary they skip with a loud banner on
//! a developer machine, and fail under `CI=true`.

use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = "prometheus-pushgateway";

pub fn require_pushgateway(test: &str) -> bool {
    let available = Command::new(BINARY)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if available {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: `{BINARY}` not on PATH under CI=true; .ci/install-pushgateway must run first"
        );
    }
    let banner = format!(
        "\n{bar}\n!! SKIPPED {test}: `{BINARY}` not on PATH.\n\
         !! Run `.ci/install-pushgateway` (Debian package `prometheus-pushgateway`) to run it.\n\
         !! Under CI=true this is a failure, not a skip.\n{bar}\n",
        bar = "!".repeat(78)
    );
    let _ = std::io::stderr().write_all(banner.as_bytes());
    false
}

/// A Pushgateway process; dropping it kills it (by its id) and waits for it.
pub struct PushgatewayServer {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl PushgatewayServer {
    pub fn start() -> PushgatewayServer {
        let dir = tempfile::Builder::new()
            .prefix("agentcore-pushgateway-")
            .tempdir()
            .unwrap();
        let log_path = dir.path().join("pushgateway.log");
        let log = File::create(&log_path).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(BINARY)
            .arg(format!("--web.listen-address={addr}"))
            // Memory only: not the machine-wide default file (see the module documentation).
            .arg("--persistence.file=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus-pushgateway");
        let mut server = PushgatewayServer {
            child,
            addr,
            log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("pushgateway exited ({status}): {}", server.log());
            }
            if matches!(ureq::get(&format!("http://{addr}/-/ready")).call(), Ok(r) if r.status() == 200)
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "pushgateway not ready: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The gateway's own `/metrics` exposition (every pushed group, plus its own metrics).
    pub fn metrics(&self) -> String {
        ureq::get(&format!("{}/metrics", self.url()))
            .call()
            .expect("GET /metrics")
            .into_string()
            .unwrap()
    }
}

impl Drop for PushgatewayServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
