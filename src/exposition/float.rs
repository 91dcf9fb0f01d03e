//! Floats written the way Prometheus' Go client writes them (`strconv.FormatFloat(f, 'g', -1, 64)`
//! behind `writeFloat`): the shortest string that round-trips, exponent form when the decimal
//! exponent is below -4 or at least 6 (`1e+06`, `1.7560473e+07`, `1e-05`), and `+Inf`, `-Inf`,
//! `NaN` spelled exactly so.
//!
//! Matching Go matters for `le` and `quantile` label values: they are part of a series' identity,
//! and `le="1"` versus `le="1.0"` are two different series in Prometheus 2.

/// Appends `v` formatted as Go's `strconv.FormatFloat(v, 'g', -1, 64)`, with Prometheus'
/// spellings of the non-finite values.
pub(crate) fn format_go_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    // Fast path: small integers (most gauge values, bucket bounds, counts as floats).
    if v.fract() == 0.0 && v.abs() < 1e6 {
        if v == 0.0 && v.is_sign_negative() {
            out.push_str("-0");
        } else {
            out.push_str(itoa::Buffer::new().format(v as i64));
        }
        return;
    }
    let mut ryu_buf = ryu::Buffer::new();
    let text = ryu_buf.format_finite(v);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    // Decompose ryu's output (`123.45`, `1e-7`, `1.2345e20`) into digits and a decimal point
    // position `dp`: value = 0.DIGITS * 10^dp.
    let (mantissa, exp10) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let mut digits = [0u8; 32];
    let mut nd = 0usize;
    let mut dp: i32 = 0;
    let mut seen_point = false;
    for &c in mantissa.as_bytes() {
        match c {
            b'.' => seen_point = true,
            b'0'..=b'9' => {
                if nd == 0 && c == b'0' {
                    // leading zero: shifts the point if after it
                    if seen_point {
                        dp -= 1;
                    }
                    continue;
                }
                if nd < digits.len() {
                    digits[nd] = c;
                    nd += 1;
                }
                if !seen_point {
                    dp += 1;
                }
            }
            _ => {}
        }
    }
    while nd > 1 && digits[nd - 1] == b'0' {
        nd -= 1;
    }
    if nd == 0 {
        out.push('0');
        return;
    }
    dp += exp10;
    let digits = &digits[..nd];
    // The digits are ASCII, so each byte is one char.
    let push_digits = |out: &mut String, d: &[u8]| {
        for &c in d {
            out.push(c as char);
        }
    };
    if negative {
        out.push('-');
    }
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        push_digits(out, &digits[..1]);
        if nd > 1 {
            out.push('.');
            push_digits(out, &digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(itoa::Buffer::new().format(e));
    } else if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        push_digits(out, digits);
    } else if dp as usize >= nd {
        push_digits(out, digits);
        for _ in 0..(dp as usize - nd) {
            out.push('0');
        }
    } else {
        push_digits(out, &digits[..dp as usize]);
        out.push('.');
        push_digits(out, &digits[dp as usize..]);
    }
}

/// Appends `v` in OpenMetrics 1.0's canonical form for `le` and `quantile` label values
/// (section "Considerations: Canonical Numbers"): Go's `%g` rendering, "with a .0 appended in
/// case there is no decimal point or exponent", and `+Inf` for positive infinity — `1.0`,
/// `0.005`, `10.0`, `100000.0`, `1e+06`.
pub(crate) fn format_openmetrics_canonical(out: &mut String, v: f64) {
    let start = out.len();
    format_go_float(out, v);
    if v.is_finite() && !out[start..].contains(['.', 'e']) {
        out.push_str(".0");
    }
}

/// The total `int + frac` of a counter whose whole increments are kept in `int` and the others
/// in `frac` (`primitives::counter`), as a float never below `int`. Past 2^53 a whole total is
/// exact only as an integer (`9007199254740993`, written so while `frac` is 0), and
/// `int as f64 + frac` rounded to nearest can be less than it once a fraction comes
/// (`9.007199254740992e+15`), while a counter total "MUST be monotonically non-decreasing"
/// (OpenMetrics 1.0, "Counter"). Then the sum is rounded up instead: the next float, the
/// smallest one not below the exact total. Monotonic: the result is the exact total rounded to
/// nearest or up, and it is rounded up only when rounding to nearest went below `int`, so
/// below a float that a larger total rounds to nearest.
pub(crate) fn counter_total(int: u64, frac: f64) -> f64 {
    let sum = int as f64 + frac;
    // `sum` is below 2^64 here, and a whole number whenever it is past 2^53, where `int` may be
    // inexact: the cast then compares exactly.
    if sum < 18_446_744_073_709_551_616.0 && (sum as u64) < int {
        // `f64::next_up` (not in the crate's MSRV) of a finite positive float.
        f64::from_bits(sum.to_bits() + 1)
    } else {
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::{format_go_float, format_openmetrics_canonical};

    #[test]
    fn openmetrics_canonical_numbers_match_the_specification_examples() {
        // OpenMetrics 1.0, "Considerations: Canonical Numbers": the two example lists, then the
        // histogram example's `le` values and the non-finite spellings.
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (0.001, "0.001"),
            (0.002, "0.002"),
            (0.01, "0.01"),
            (0.1, "0.1"),
            (0.9, "0.9"),
            (0.95, "0.95"),
            (0.99, "0.99"),
            (0.999, "0.999"),
            (1.0, "1.0"),
            (1.7, "1.7"),
            (10.0, "10.0"),
            (1e-10, "1e-10"),
            (1e-9, "1e-09"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (1e5, "100000.0"),
            (1e6, "1e+06"),
            (1e10, "1e+10"),
            (1e23, "1e+23"),
            (1.1e23, "1.1e+23"),
            (-1.0, "-1.0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for &(v, want) in cases {
            let mut s = String::from("le=");
            format_openmetrics_canonical(&mut s, v);
            assert_eq!(s, format!("le={want}"), "{v:e}");
        }
    }

    fn fmt(v: f64) -> String {
        let mut s = String::new();
        format_go_float(&mut s, v);
        s
    }

    #[test]
    fn matches_go_strconv_g_shortest() {
        // Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456.0, "123456"),
            (999999.0, "999999"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (17560473.0, "1.7560473e+07"),
            (1e21, "1e+21"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (100.5, "100.5"),
            (999999.5, "999999.5"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for &(v, want) in cases {
            assert_eq!(fmt(v), want, "{v:e}");
        }
    }

    #[test]
    fn counter_totals_never_go_below_the_whole_part() {
        use super::counter_total;
        const P53: u64 = 1 << 53;
        // Rounded to nearest as before while that is not below the whole part.
        assert_eq!(counter_total(1, 0.2), 1.2);
        assert_eq!(counter_total(3, 0.5), 3.5);
        assert_eq!(counter_total(P53, 0.5), 9_007_199_254_740_992.0);
        // Past 2^53 the nearest float can be below it: rounded up.
        assert_eq!(counter_total(P53 + 1, 0.5), 9_007_199_254_740_994.0);
        assert_eq!(counter_total(P53 + 3, 0.25), 9_007_199_254_740_996.0);
        assert_eq!(counter_total(u64::MAX, 0.25), 18_446_744_073_709_551_616.0);
        assert_eq!(counter_total(P53 + 1, 1e300), 1e300);
        assert_eq!(counter_total(1, f64::MAX * 2.0), f64::INFINITY);
        // Monotonic in both parts, and never below the whole part.
        for frac in [0.25, 0.5, 1.5, 3.0] {
            let mut last = 0.0;
            for int in (P53 - 8)..(P53 + 40) {
                let t = counter_total(int, frac);
                assert!(t >= last && t as u64 >= int, "{int} {frac} {t}");
                last = t;
            }
        }
        for int in (P53 - 8)..(P53 + 40) {
            let mut last = 0.0;
            for frac in [0.25, 0.5, 1.5, 3.0, 4.5] {
                let t = counter_total(int, frac);
                assert!(t >= last, "{int} {frac} {t}");
                last = t;
            }
        }
    }

    #[test]
    fn round_trips() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if !v.is_finite() {
                continue;
            }
            let s = fmt(v);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
        }
    }

    #[test]
    fn floats_are_formatted_as_go_formats_them() {
        let mut s = String::new();
        for v in [
            1.0,
            0.005,
            2.5,
            144320.0,
            1e6,
            17560473.0,
            1e-5,
            f64::INFINITY,
            f64::NAN,
        ] {
            format_go_float(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "1 0.005 2.5 144320 1e+06 1.7560473e+07 1e-05 +Inf NaN ");
    }
}
