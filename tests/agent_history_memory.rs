//! The snapshot history is bounded in memory, not only in count: with many series a snapshot
//! is large (about 49 MB with 10,000 agents), and the default ring of 100 held them all (about
//! 4.9 GB), filled on its own by the system monitor, which takes a snapshot per sample.

use agentcore_telemetry::agent::DEFAULT_HISTORY_MAX_BYTES;
use agentcore_telemetry::{AgentPhilosophy, CollectorConfig, MetricsCollector};

/// A collector with `agents` agents' per-agent series and the given history budget.
fn collector(agents: usize, history_max_bytes: usize) -> MetricsCollector {
    let c = MetricsCollector::with_config(CollectorConfig {
        max_series_per_family: 100_000,
        history_max_bytes,
        ..CollectorConfig::default()
    });
    for i in 0..agents {
        let id = format!("agent-{i:05}");
        let p = AgentPhilosophy::ALL[i % 4];
        c.update_resource_usage(&id, p, 1.0, 1.0);
        c.record_react_iterations(&id, 3);
    }
    c
}

#[test]
fn the_history_keeps_no_more_snapshots_than_its_memory_budget_holds() {
    // 2,000 agents: a snapshot is a few hundred KiB; a 1 MiB budget holds a few of them.
    let c = collector(2_000, 1 << 20);
    for _ in 0..50 {
        c.snapshot_metrics();
    }
    let kept = c.history_len();
    assert!(
        (1..10).contains(&kept),
        "a 1 MiB budget kept {kept} snapshots of 2,000 agents"
    );
    // The newest are the ones kept, oldest first.
    let history = c.get_metric_history(None, None);
    assert_eq!(history.len(), kept);
    assert!(history
        .windows(2)
        .all(|w| w[0].unix_seconds <= w[1].unix_seconds));

    // A snapshot larger than the whole budget is still kept, alone.
    let tiny = collector(2_000, 1);
    tiny.snapshot_metrics();
    tiny.snapshot_metrics();
    assert_eq!(tiny.history_len(), 1);
}

#[test]
fn small_snapshots_are_bounded_by_the_count_as_before() {
    let c = collector(10, DEFAULT_HISTORY_MAX_BYTES);
    for _ in 0..150 {
        c.snapshot_metrics();
    }
    assert_eq!(c.history_len(), c.config().history_capacity);
}
