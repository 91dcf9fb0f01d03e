//! Network and mount namespaces of a test's own, for the tests of what the network does
//! slowly or not at all (`tests/pushgateway_slow_network.rs`, `tests/export_otlp_slow_dns.rs`).
//!
//! A scenario runs in a child process: the test binary re-run (`--exact NAME`) under
//! `unshare -r -n -m`, with an environment variable telling the child it is one. The child has
//! its own loopback to slow down or to put a silent resolver on, and its own `/etc/resolv.conf`
//! bind-mounted; nothing outside is touched. A user namespace too (`-r`), so that no root is
//! needed where the kernel lets users make namespaces. Where it does not (a kernel or AppArmor
//! policy), or a program is missing, [`in_namespaces`] says so loudly and the test skips, under
//! `CI=true` too: that is the machine's policy, not something CI can install.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;

/// Runs `program` with `args`; its standard error when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

/// Whether this process is the child a test started (`child_env` is set).
pub fn is_child(child_env: &str) -> bool {
    std::env::var_os(child_env).is_some()
}

/// Runs `test` again in a child process (with `child_env` set), in network and mount
/// namespaces of its own, and checks that it printed `done`; false (after a loud banner) when
/// this machine does not let us make them, or lacks `ip`, `mount` or (with `needs_tc`) `tc`.
pub fn in_namespaces(child_env: &str, test: &str, needs_tc: bool) -> bool {
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let mut probe = run(
        "unshare",
        &["-r", "-n", "-m", "ip", "link", "set", "lo", "up"],
    );
    if needs_tc {
        probe =
            probe.and_then(|()| run("unshare", &["-r", "-n", "tc", "qdisc", "show", "dev", "lo"]));
    }
    if let Err(why) = probe.and_then(|()| run("mount", &["--version"])) {
        let bar = "!".repeat(78);
        eprintln!("\n{bar}\n!! SKIPPED {test}: no namespaces of our own ({why}).\n{bar}\n");
        return false;
    }
    let out = Command::new("unshare")
        .args([
            "-r",
            "-n",
            "-m",
            exe,
            "--exact",
            test,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(child_env, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child failed:\n{text}");
    assert!(text.contains("done"), "{text}");
    true
}

/// In the child: a resolver that never answers. The namespace's `/etc/resolv.conf` names a
/// server on the loopback, which takes the queries and says nothing; glibc waits 5 s for it.
/// Keep it for the whole scenario (a closed port would answer "unreachable" at once).
pub struct SilentResolver {
    _socket: UdpSocket,
    dir: PathBuf,
}

impl SilentResolver {
    pub fn start() -> SilentResolver {
        run("ip", &["link", "set", "lo", "up"]).unwrap();
        let socket = UdpSocket::bind("127.0.0.1:53").unwrap();
        let dir = std::env::temp_dir().join(format!("agentcore-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("resolv.conf");
        std::fs::write(
            &conf,
            "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n",
        )
        .unwrap();
        run(
            "mount",
            &["--bind", conf.to_str().unwrap(), "/etc/resolv.conf"],
        )
        .unwrap();
        SilentResolver {
            _socket: socket,
            dir,
        }
    }
}

impl Drop for SilentResolver {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
