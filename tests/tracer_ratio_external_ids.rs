//! A ratio sampler keeps its ratio for traces started with the specification's external ids
//! (`start_trace(Some("request-123"))`, `f"agent-{config.agent_id}"`). Such ids are mapped to
//! trace ids by `TraceId::from_external`, and the sampler compares the low 56 bits of the
//! trace id with its threshold: those bits must be spread by every byte of the id, or
//! sequential ids all get the same decision (all sampled at 0.5, none at 0.1).

use agentcore_telemetry::{DistributedTracer, Sampler, TraceId, TracerConfig};

/// A family of external ids: its name and the id of each index.
type IdFamily = (&'static str, fn(usize) -> String);

fn sampled_fraction(ratio: f64, ids: impl Iterator<Item = String>) -> f64 {
    let tracer = DistributedTracer::new(TracerConfig {
        from_env: false,
        sampler: Some(Sampler::ratio(ratio)),
        ..TracerConfig::default()
    });
    let (mut n, mut sampled) = (0u32, 0u32);
    for id in ids {
        n += 1;
        if tracer.start_trace(Some(&id), []).is_sampled() {
            sampled += 1;
        }
    }
    f64::from(sampled) / f64::from(n)
}

#[test]
fn sequential_external_ids_are_sampled_at_the_ratio() {
    const N: usize = 20_000;
    let families: [IdFamily; 4] = [
        ("request-N", |i| format!("request-{i}")),
        ("agent-N", |i| format!("agent-{i:05}")),
        ("N", |i| i.to_string()),
        ("tenant/N/run", |i| format!("tenant/{i}/run")),
    ];
    for (name, make) in families {
        for ratio in [0.5, 0.1, 0.01] {
            let got = sampled_fraction(ratio, (0..N).map(make));
            // Binomial standard deviation at N = 20,000 is at most 0.0036; allow ~6 of them.
            assert!(
                (got - ratio).abs() < 0.02 + ratio * 0.2,
                "{name}: ratio {ratio}, sampled {got}"
            );
        }
    }
}

#[test]
fn the_external_id_mapping_stays_deterministic_and_w3c_ids_pass_through() {
    let a = TraceId::from_external("request-123");
    assert_eq!(a, TraceId::from_external("request-123"));
    assert_ne!(a, TraceId::from_external("request-124"));
    let w3c = "4bf92f3577b34da6a3ce929d0e0e4736";
    assert_eq!(TraceId::from_external(w3c).to_string(), w3c);
    // Neighbouring ids differ in many bits of the low half the sampler reads.
    let low = |s: &str| {
        let hex = TraceId::from_external(s).to_string();
        u64::from_str_radix(&hex[16..], 16).unwrap()
    };
    let flipped = (low("request-1") ^ low("request-2")).count_ones();
    assert!(flipped >= 16, "only {flipped} of the low 64 bits differ");
}
