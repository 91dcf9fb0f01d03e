//! Registration, recording, removal, runtime-info changes and snapshots all at once: every
//! snapshot taken meanwhile is one a sequential run could have produced at some point.
//!
//! * families strictly sorted by name (none twice);
//! * the runtime info never missing once set (one series, two for the instant of a change);
//! * custom metrics only ever appear (their number and each counter never go back);
//! * the history in the order the snapshots were taken;
//! * at the end, every ended agent's series gone and every custom counter at its count.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use agentcore_telemetry::agent::MetricType;
use agentcore_telemetry::{AgentPhilosophy, MetricsCollector};

const AGENTS: usize = 2_000;
const CUSTOM: usize = 200;

#[test]
fn snapshots_stay_consistent_while_everything_changes() {
    let c = MetricsCollector::new();
    c.set_runtime_info([("version", "0")]);
    let stop = Arc::new(AtomicBool::new(false));
    // Snapshots taken so far: the agents and custom threads wait halfway until two have been,
    // so snapshots overlap their work however the scheduler runs the threads.
    let taken = Arc::new(AtomicUsize::new(0));
    let halfway = |taken: &AtomicUsize| {
        while taken.load(Ordering::Acquire) < 2 {
            std::thread::yield_now();
        }
    };
    let agents = {
        let (c, taken) = (c.clone(), taken.clone());
        std::thread::spawn(move || {
            for i in 0..AGENTS {
                if i == AGENTS / 2 {
                    halfway(&taken);
                }
                let id = format!("agent-{i}");
                c.update_resource_usage(&id, AgentPhilosophy::ALL[i % 4], 1.0, 2.0);
                c.record_react_iterations(&id, 3);
                c.record_cot_steps(&id, 5);
                c.record_autonomous_decision(&id);
                assert_eq!(c.remove_agent(&id), 5, "{id}");
            }
        })
    };
    let custom = {
        let (c, taken) = (c.clone(), taken.clone());
        std::thread::spawn(move || {
            for k in 0..CUSTOM {
                if k == CUSTOM / 2 {
                    halfway(&taken);
                }
                let m = c
                    .create_custom_metric(&format!("race_{k}"), MetricType::Counter, "R.", &["k"])
                    .unwrap();
                m.labels(&["x"]).unwrap().inc();
            }
        })
    };
    let info = {
        let (c, stop) = (c.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                c.set_runtime_info([("version", if n % 2 == 0 { "a" } else { "b" })]);
            }
        })
    };
    let mut last_custom = Vec::<(String, f64)>::new();
    while !(agents.is_finished() && custom.is_finished()) {
        let s = c.snapshot_metrics();
        taken.fetch_add(1, Ordering::Release);
        for w in s.metrics.windows(2) {
            assert!(w[0].name < w[1].name, "{} then {}", w[0].name, w[1].name);
        }
        let infos = s.get("agentcore_runtime_info").unwrap().series.len();
        assert!((1..=2).contains(&infos), "{infos} runtime info series");
        let now: Vec<(String, f64)> = s
            .metrics
            .iter()
            .filter(|f| f.name.starts_with("agentcore_race_"))
            .map(|f| {
                let v = f
                    .series
                    .first()
                    .and_then(|s| s.value.as_f64())
                    .unwrap_or(0.0);
                (f.name.clone(), v)
            })
            .collect();
        for (name, before) in &last_custom {
            let after = now.iter().find(|(n, _)| n == name);
            assert!(
                after.is_some_and(|(_, v)| v >= before),
                "{name}: {before} then {after:?}"
            );
        }
        last_custom = now;
    }
    stop.store(true, Ordering::Relaxed);
    for t in [agents, custom, info] {
        t.join().unwrap();
    }
    let s = c.snapshot_metrics();
    for name in [
        "agent_cpu_percent",
        "agent_memory_mb",
        "react_iterations",
        "cot_steps",
        "autonomous_decisions_total",
    ] {
        assert_eq!(s.get(name).unwrap().series, [], "{name}");
    }
    for k in 0..CUSTOM {
        assert_eq!(
            s.value(&format!("race_{k}"), &[("k", "x")]),
            Some(1.0),
            "race_{k}"
        );
    }
    assert_eq!(s.get("agentcore_runtime_info").unwrap().series.len(), 1);
    let history = c.get_metric_history(None, None);
    assert!(
        history.len() >= 3,
        "{} snapshots",
        taken.load(Ordering::Relaxed)
    );
    for w in history.windows(2) {
        assert!(w[0].unix_seconds <= w[1].unix_seconds);
    }
}
