//! Lowercase hex digits to integers and back, eight digits per 64-bit word, with no branch per
//! digit: W3C Trace Context ids (`traceparent`, `TraceId::from_hex`, `SpanId::from_hex`).
//!
//! Why not a loop with a `match` per digit: W3C ids are random, so whether each digit is a
//! decimal digit or a letter is a coin toss (6 letters in 16) that no branch predictor can learn.
//! Extracting and injecting a `traceparent` with such a loop (48 digits) took 72 ns when every
//! call parsed the same header, which the predictor learns, and 208 ns when each parsed a
//! different one (4,096 distinct headers cycled; `benches/compare`'s `traceparent_varied`,
//! issue 16), as a server's incoming requests do; 38 ns either way with this module. Here a word of eight digits is checked and converted with a fixed
//! sequence of integer operations (SWAR: SIMD within a register), and a whole id is accepted or
//! refused with one branch.
//!
//! Refusal says only that some byte is not a lowercase hex digit; callers that report which
//! error (uppercase, another byte) find it again with a plain loop, on that rare path.

/// The 0x01 byte in each of a word's eight lanes.
const ONES: u64 = 0x0101_0101_0101_0101;
/// Each lane's top bit.
const TOPS: u64 = 0x8080_8080_8080_8080;

/// Lanes whose byte is at least `c`, as their top bit, for a word whose lanes' top bits are
/// clear (`x7`): `b + (0x80 - c)` reaches 0x80 exactly when `b >= c`, and stays below 0x100
/// (at most `0x7f + 0x80`), so no lane carries into the next.
#[inline(always)]
fn at_least(x7: u64, c: u8) -> u64 {
    x7.wrapping_add(ONES * u64::from(0x80 - c)) & TOPS
}

/// Eight digits' value, most significant first, and whether each byte is one of `0-9a-f`
/// (when it is not, the value is meaningless).
#[inline(always)]
fn eight(digits: [u8; 8]) -> (u32, bool) {
    // Little-endian, so no byte swap: the first (most significant) digit is the bottom lane.
    let x = u64::from_le_bytes(digits);
    let x7 = x & !TOPS;
    let decimal = at_least(x7, b'0') & !at_least(x7, b'9' + 1);
    let letter = at_least(x7, b'a') & !at_least(x7, b'f' + 1);
    // A byte with its top bit set is no digit, whatever its low seven bits are.
    let ok = (decimal | letter) & !x == TOPS;
    // Each lane's value: its low nibble, plus 9 for a letter (bit 6 set: 'a' is 0x61, so
    // 1 + 9 = 10); decimal digits (0x30-0x39) have bit 6 clear.
    let n = (x & (ONES * 0x0f)) + ((x >> 6) & ONES) * 9;
    // Pack the lanes' nibbles, the lower lane (the earlier digit) the more significant each
    // time: pairs into the even bytes, those into the 16-bit lanes 0 and 2, those into 32 bits.
    let v = ((n << 4) | (n >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = ((v << 8) | (v >> 16)) & 0x0000_ffff_0000_ffff;
    let v = ((v << 16) | (v >> 32)) & 0xffff_ffff;
    (v as u32, ok)
}

/// The eight bytes of `s` from `at`.
#[inline(always)]
fn word(s: &[u8], at: usize) -> [u8; 8] {
    let mut w = [0; 8];
    w.copy_from_slice(&s[at..at + 8]);
    w
}

/// The value of 32 lowercase hex digits, or `None` if any byte is not one of `0-9a-f`.
#[inline]
pub(crate) fn decode_u128(digits: &[u8; 32]) -> Option<u128> {
    let (a, ok_a) = eight(word(digits, 0));
    let (b, ok_b) = eight(word(digits, 8));
    let (c, ok_c) = eight(word(digits, 16));
    let (d, ok_d) = eight(word(digits, 24));
    let value = u128::from(a) << 96 | u128::from(b) << 64 | u128::from(c) << 32 | u128::from(d);
    (ok_a & ok_b & ok_c & ok_d).then_some(value)
}

/// The value of 16 lowercase hex digits, or `None` as [`decode_u128`].
#[inline]
pub(crate) fn decode_u64(digits: &[u8; 16]) -> Option<u64> {
    let (a, ok_a) = eight(word(digits, 0));
    let (b, ok_b) = eight(word(digits, 8));
    (ok_a & ok_b).then_some(u64::from(a) << 32 | u64::from(b))
}

/// The value of 2 lowercase hex digits, or `None` as [`decode_u128`].
#[inline]
pub(crate) fn decode_u8(digits: [u8; 2]) -> Option<u8> {
    let (v, ok) = eight([b'0', b'0', b'0', b'0', b'0', b'0', digits[0], digits[1]]);
    ok.then_some(v as u8)
}

/// The eight lowercase hex digits of `v`, most significant first.
#[inline(always)]
fn encode8(v: u32) -> [u8; 8] {
    // `eight`'s packing undone: the top 16 bits to lane 0 and the bottom ones to lane 2, each
    // one's top byte to the even byte below the other, each byte's top nibble to the lower
    // lane of its pair; little-endian, so the first digit (the top nibble) is the first byte.
    let v = u64::from(v);
    let v = (v >> 16) | ((v & 0xffff) << 32);
    let v = ((v >> 8) & 0x0000_00ff_0000_00ff) | ((v & 0x0000_00ff_0000_00ff) << 16);
    let n = ((v >> 4) & 0x000f_000f_000f_000f) | ((v & 0x000f_000f_000f_000f) << 8);
    // '0' + n, plus 'a' - '0' - 10 = 39 where n > 9 (n + 6 then has bit 4 set).
    let letters = ((n + ONES * 6) >> 4) & ONES;
    (n + ONES * u64::from(b'0') + letters * 39).to_le_bytes()
}

/// Writes `v` as 32 lowercase hex digits, most significant first.
#[inline]
pub(crate) fn encode_u128(v: u128, out: &mut [u8; 32]) {
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&encode8((v >> (96 - 32 * i)) as u32));
    }
}

/// Writes `v` as 16 lowercase hex digits, most significant first.
#[inline]
pub(crate) fn encode_u64(v: u64, out: &mut [u8; 16]) {
    out[..8].copy_from_slice(&encode8((v >> 32) as u32));
    out[8..].copy_from_slice(&encode8(v as u32));
}

/// Writes `v` as 2 lowercase hex digits.
#[inline]
pub(crate) fn encode_u8(v: u8) -> [u8; 2] {
    let d = encode8(u32::from(v));
    [d[6], d[7]]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious digit-by-digit decoder the word-at-a-time one must agree with.
    fn reference(digits: &[u8]) -> Option<u128> {
        digits.iter().try_fold(0u128, |v, &c| {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            Some(v << 4 | u128::from(d))
        })
    }

    /// Every byte value at every position of a word, the other seven digits valid: the range
    /// checks' edges ('/' ':' '`' 'g', 'A'-'F', 0x80 and up, whose low seven bits are digits:
    /// 0xb0 is '0' | 0x80) and every lane.
    #[test]
    fn every_byte_in_every_lane() {
        for pos in 0..8 {
            for b in 0..=255u8 {
                let mut w = *b"0123abcd";
                w[pos] = b;
                let (v, ok) = eight(w);
                let want = reference(&w);
                assert_eq!(ok, want.is_some(), "{w:?}");
                if let Some(want) = want {
                    assert_eq!(u128::from(v), want, "{w:?}");
                }
            }
        }
    }

    /// Random ids (all digits of every value occur in every lane) round-trip through both
    /// directions and agree with the reference and with `format!`.
    #[test]
    fn agrees_with_the_reference_and_format() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..20_000 {
            let v = u128::from(next()) << 64 | u128::from(next());
            let text = format!("{v:032x}");
            let digits: &[u8; 32] = text.as_bytes().try_into().unwrap();
            assert_eq!(decode_u128(digits), Some(v));
            assert_eq!(decode_u128(digits), reference(digits));
            let mut out = [0; 32];
            encode_u128(v, &mut out);
            assert_eq!(&out, digits);

            let w = v as u64;
            let text = format!("{w:016x}");
            let digits: &[u8; 16] = text.as_bytes().try_into().unwrap();
            assert_eq!(decode_u64(digits), Some(w));
            let mut out = [0; 16];
            encode_u64(w, &mut out);
            assert_eq!(&out, digits);
        }
        for b in 0..=255u8 {
            let text = format!("{b:02x}");
            assert_eq!(encode_u8(b), text.as_bytes());
            assert_eq!(decode_u8([text.as_bytes()[0], text.as_bytes()[1]]), Some(b));
        }
        assert_eq!(decode_u128(b"0000000000000000000000000000000g"), None);
        assert_eq!(decode_u64(b"A000000000000000"), None);
        assert_eq!(decode_u8(*b"0F"), None);
        assert_eq!(decode_u8(*b"-1"), None);
    }
}
