//! `traceidratio` against the Python SDK (opentelemetry-sdk 1.45.2, the venv of
//! `.ci/install-otlp-oracles`).
//!
//! The OpenTelemetry specification's `TraceIdRatioBased` (`trace/sdk.md`, "`TraceIdRatioBased`
//! sampler algorithm") samples when the randomness `R`, the trace id's 7 rightmost bytes, is at
//! least the rejection threshold `T = 2^56 - round(ratio * 2^56)`. The Python SDK implements
//! that rule in its composable samplers (`opentelemetry.sdk.trace._sampling_experimental`:
//! `composite_sampler(composable_traceid_ratio_based(r))`, `randomness = trace_id &
//! 0x00FFFFFFFFFFFFFF`, `sampled = threshold <= randomness`), which this crate must match on
//! every id: the ids either side of each threshold and pseudo-random ids.
//!
//! Its stable `sampling.TraceIdRatioBased` still has the rule the specification left open
//! before (`trace_id & (2^64 - 1) < round(r * 2^64)`, the low 64 bits below the ratio), which
//! this crate followed until it took the specification's: the second test pins that rule, to
//! show what a Python service with the stable sampler decides (the same fraction of traces,
//! not the same traces; with `parentbased_*`, the default, only root spans decide).

#![cfg(feature = "otlp")]

mod support;

use agentcore_telemetry::{Sampler, TraceId};
use std::io::Write;
use std::process::{Command, Stdio};

/// For each (ratio, ids): [spec-following composable decisions, stable-sampler decisions].
const PYTHON_DECISIONS: &str = r#"
import json, sys
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.trace._sampling_experimental import (
    composable_traceid_ratio_based, composite_sampler)
out = []
for ratio, ids in json.load(sys.stdin):
    spec = composite_sampler(composable_traceid_ratio_based(ratio))
    stable = TraceIdRatioBased(ratio)
    out.append([
        [spec.should_sample(None, int(i, 16), "op").decision.is_sampled() for i in ids],
        [stable.should_sample(None, int(i, 16), "op").decision.is_sampled() for i in ids],
    ])
json.dump(out, sys.stdout)
"#;

/// splitmix64: deterministic pseudo-random values.
fn pseudo_random(n: usize) -> Vec<u64> {
    let mut state = 0x00dd_ba11_u64;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

#[test]
fn traceidratio_keeps_the_traces_the_python_sdk_keeps() {
    require_otlp_oracles!("traceidratio_keeps_the_traces_the_python_sdk_keeps");
    const MAX: u64 = 1 << 56;
    let ratios = [
        0.0,
        0.5,
        0.25,
        0.1,
        0.01,
        0.001,
        1.0 / 2048.0,
        0.75,
        1.0 / 3.0,
        0.999,
        1e-6,
        2f64.powi(-56),
        0.1 + f64::EPSILON,
        1.0,
    ];
    let mut cases = Vec::new();
    for &ratio in &ratios {
        // The specification's threshold, and the stable sampler's 64-bit bound.
        let threshold = MAX - (ratio * MAX as f64).round_ties_even() as u64;
        let bound = (ratio * 18_446_744_073_709_551_616.0_f64) as u64;
        let mut lows = vec![
            0,
            1,
            u64::MAX,
            MAX - 1,
            threshold,
            threshold.wrapping_sub(1),
            threshold + 1,
            threshold | (0xff << 56),
            threshold.wrapping_sub(1) & (MAX - 1),
            bound,
            bound.wrapping_sub(1),
            bound.wrapping_add(1),
        ];
        lows.extend(pseudo_random(300));
        // A high half that is not zero, so that the id is valid whatever its low half.
        let ids: Vec<TraceId> = lows
            .iter()
            .map(|&low| TraceId::from_u128((0xabcd_u128 << 64) | u128::from(low)).unwrap())
            .collect();
        cases.push((ratio, ids));
    }
    let input = serde_json::json!(cases
        .iter()
        .map(|(r, ids)| (r, ids.iter().map(|id| id.to_string()).collect::<Vec<_>>()))
        .collect::<Vec<_>>());
    let mut child = Command::new(support::otlp::python().expect("oracle python"))
        .args(["-c", PYTHON_DECISIONS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python: Vec<[Vec<bool>; 2]> = serde_json::from_slice(&out.stdout).unwrap();
    let mut sampled_somewhere = (false, false);
    let mut stable_disagrees = 0usize;
    for ((ratio, ids), [python, stable]) in cases.iter().zip(python) {
        let ours = Sampler::trace_id_ratio(*ratio);
        // The stable sampler's rule, as pinned in the module docs.
        // (Python's `round` of a float rounds half to even; r * 2^64 is exact.)
        let bound = (ratio * 18_446_744_073_709_551_616.0_f64).round_ties_even() as u128;
        for (id, stable) in ids.iter().zip(&stable) {
            let legacy = id.to_u128() & u128::from(u64::MAX) < bound;
            assert_eq!(
                *stable, legacy,
                "stable sampler, ratio {ratio}, trace id {id}"
            );
        }
        for ((id, want), stable) in ids.iter().zip(python).zip(stable) {
            stable_disagrees += usize::from(want != stable);
            assert_eq!(
                ours.should_sample(None, *id),
                want,
                "ratio {ratio}, trace id {id}"
            );
            // Parent-based, a root span decides the same.
            assert_eq!(Sampler::ratio(*ratio).should_sample(None, *id), want);
            if want {
                sampled_somewhere.0 = true;
            } else {
                sampled_somewhere.1 = true;
            }
        }
    }
    assert_eq!(sampled_somewhere, (true, true));
    // The two Python rules do decide differently (the change the CHANGELOG announces).
    assert!(stable_disagrees > 0);
}
