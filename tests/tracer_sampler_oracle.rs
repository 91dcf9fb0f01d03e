//! `traceidratio` against the Python SDK's `TraceIdRatioBased` (opentelemetry-sdk, the venv of
//! `.ci/install-otlp-oracles`): the same ratio keeps the same traces, so a trace sampled by a
//! Python service at ratio r is sampled here at r too (both compare the trace id's low 64
//! bits with r * 2^64). Checked on the ids either side of each threshold and on random ids.
//!
//! The ratios are those at or above 2^-11: their r * 2^64 is an integer, so the bound is exact
//! in every SDK. Below that, Python rounds r * 2^64 and this crate (like the Go and Rust SDKs,
//! which compare `low >> 1` with a truncated r * 2^63) truncates: they may differ on the one id
//! at the bound, out of 2^64.

#![cfg(feature = "otlp")]

mod support;

use agentcore_telemetry::{Sampler, TraceId};
use std::io::Write;
use std::process::{Command, Stdio};

const PYTHON_DECISIONS: &str = r#"
import json, sys
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
out = []
for ratio, ids in json.load(sys.stdin):
    s = TraceIdRatioBased(ratio)
    out.append([s.should_sample(None, int(i, 16), "op").decision.is_sampled() for i in ids])
json.dump(out, sys.stdout)
"#;

#[test]
fn traceidratio_keeps_the_traces_the_python_sdk_keeps() {
    require_otlp_oracles!("traceidratio_keeps_the_traces_the_python_sdk_keeps");
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
        1.0,
    ];
    let mut cases = Vec::new();
    for &ratio in &ratios {
        let bound = (ratio * 18_446_744_073_709_551_616.0_f64) as u64;
        let mut lows = vec![
            0,
            1,
            u64::MAX,
            bound,
            bound.wrapping_sub(1),
            bound.wrapping_add(1),
        ];
        lows.extend((0..200).map(|_| TraceId::random().to_u128() as u64));
        // A high half that is not zero, so that only the low half can decide.
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
    let python: Vec<Vec<bool>> = serde_json::from_slice(&out.stdout).unwrap();
    let mut sampled_somewhere = (false, false);
    for ((ratio, ids), python) in cases.iter().zip(python) {
        let ours = Sampler::trace_id_ratio(*ratio);
        for (id, want) in ids.iter().zip(python) {
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
}
