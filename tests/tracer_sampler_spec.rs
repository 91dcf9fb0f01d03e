//! `traceidratio` decides by the OpenTelemetry specification's `TraceIdRatioBased` algorithm
//! (`specification/trace/sdk.md`, "`TraceIdRatioBased` sampler algorithm"):
//!
//! > Given a Sampler configured with a sampling threshold `T` and Context with randomness value
//! > `R` (typically, the 7 rightmost bytes of the trace ID), when `ShouldSample()` is called, it
//! > uses the expression `R >= T` to decide whether to return `RECORD_AND_SAMPLE` or `DROP`.
//!
//! with the threshold of `trace/tracestate-probability-sampling.md`, "Rejection Threshold":
//! `Rejection_Threshold = (1 - Sampling_Probability) * 2^56`, and its worked values (the
//! 1-in-N table: probability 1/2 is threshold `8`, 1/4 is `c`, 1/8 is `e`, 1/16 is `f`, each
//! the leading hex digits of the 56-bit threshold). So a trace one SDK samples at ratio r is
//! sampled here at r: two services, ours and an OpenTelemetry SDK that follows the spec, never
//! disagree on a trace id.

use agentcore_telemetry::{Sampler, TraceId};

const MAX: u64 = 1 << 56;

/// A trace id with randomness (7 rightmost bytes) `r` and `high` in the 9 bytes above it.
fn id(high: u128, r: u64) -> TraceId {
    assert!(r < MAX);
    TraceId::from_u128((high << 56) | u128::from(r)).unwrap()
}

/// The specification's rule, from its own arithmetic, for a ratio whose `ratio * 2^56` is an
/// integer (no rounding question): sample when `R >= (1 - ratio) * 2^56`.
fn spec_decision(ratio_times_2_56: u64, trace_id: u128) -> bool {
    let threshold = MAX - ratio_times_2_56;
    let r = (trace_id as u64) & (MAX - 1);
    r >= threshold
}

#[test]
fn the_specifications_thresholds_decide() {
    // (probability, the spec table's threshold digits, as a 56-bit threshold)
    for (ratio, threshold) in [
        (0.5, 0x80_0000_0000_0000_u64),
        (0.25, 0xc0_0000_0000_0000),
        (0.125, 0xe0_0000_0000_0000),
        (0.0625, 0xf0_0000_0000_0000),
    ] {
        let s = Sampler::trace_id_ratio(ratio);
        for high in [0, 1, 0x1ff_ffff_ffff_ffff_ffff] {
            assert!(
                s.should_sample(None, id(high, threshold)),
                "ratio {ratio}: R = T = {threshold:#x} is sampled (R >= T), high {high:#x}"
            );
            assert!(
                s.should_sample(None, id(high, MAX - 1)),
                "ratio {ratio}: the largest R is sampled, high {high:#x}"
            );
            assert!(
                !s.should_sample(None, id(high, threshold - 1)),
                "ratio {ratio}: R = T - 1 is dropped, high {high:#x}"
            );
            assert!(
                !s.should_sample(None, id(high, 1)),
                "ratio {ratio}: R = 1 is dropped, high {high:#x}"
            );
        }
    }
}

#[test]
fn only_the_seven_rightmost_bytes_decide() {
    // Byte 8 (the eighth from the right) is not randomness: it must not change a decision.
    let s = Sampler::trace_id_ratio(0.5);
    for r in [1, 0x7f_ffff_ffff_ffff, 0x80_0000_0000_0000, MAX - 1] {
        let want = s.should_sample(None, id(0, r));
        for byte8 in [0x00_u128, 0x01, 0x7f, 0x80, 0xff] {
            assert_eq!(
                s.should_sample(None, id(byte8, r)),
                want,
                "R {r:#x}, byte 8 {byte8:#x}"
            );
        }
    }
}

/// splitmix64: deterministic ids.
fn ids(n: usize) -> impl Iterator<Item = u128> {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    std::iter::repeat_with(move || (u128::from(next()) << 64) | u128::from(next()))
        .filter(|&v| v != 0)
        .take(n)
}

#[test]
fn many_ids_decide_as_the_specification_says() {
    // Ratios k / 2^m: ratio * 2^56 is exact.
    for (ratio, times) in [
        (0.5, 1u64 << 55),
        (0.25, 1 << 54),
        (0.75, 3 << 54),
        (1.0 / 1024.0, 1 << 46),
        (5.0 / 8.0, 5 << 53),
        (2f64.powi(-56), 1),
    ] {
        let s = Sampler::trace_id_ratio(ratio);
        let p = Sampler::ratio(ratio);
        let mut sampled = 0usize;
        for raw in ids(20_000) {
            let want = spec_decision(times, raw);
            let trace_id = TraceId::from_u128(raw).unwrap();
            assert_eq!(
                s.should_sample(None, trace_id),
                want,
                "ratio {ratio}, trace id {trace_id}"
            );
            // A parent-based sampler asks the same rule for a root span.
            assert_eq!(p.should_sample(None, trace_id), want, "ratio {ratio}");
            sampled += usize::from(want);
        }
        if ratio >= 0.001 {
            assert!(sampled > 0 && sampled < 20_000, "ratio {ratio}: {sampled}");
        }
    }
}

#[test]
fn a_sampled_trace_stays_sampled_at_every_higher_ratio() {
    // "A TraceIdRatioBased sampler with a given sampling rate MUST also sample all traces
    // that any TraceIdRatioBased sampler with a lower sampling rate would sample."
    let ratios = [
        0.0,
        1e-6,
        0.001,
        0.01,
        0.1,
        1.0 / 3.0,
        0.5,
        0.9,
        0.999_999,
        1.0,
    ];
    for raw in ids(5_000) {
        let trace_id = TraceId::from_u128(raw).unwrap();
        let decisions: Vec<bool> = ratios
            .iter()
            .map(|&r| Sampler::trace_id_ratio(r).should_sample(None, trace_id))
            .collect();
        assert!(
            decisions.windows(2).all(|w| w[0] <= w[1]),
            "{trace_id}: {decisions:?}"
        );
    }
}
