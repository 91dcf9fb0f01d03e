//! The `traceparent` header (W3C Trace Context, section "traceparent Header").

use std::fmt;

use super::error::PropagationError;
use super::hex;

/// Length of a version-`00` `traceparent`: `2 + 1 + 32 + 1 + 16 + 1 + 2`.
const LEN: usize = 55;

/// A parsed `traceparent` header: `version-traceid-parentid-flags`.
///
/// Fields are plain integers so this module does not depend on the tracer.
///
/// ```
/// use agentcore_telemetry::propagation::TraceParent;
///
/// let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
/// assert_eq!(tp.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
/// assert_eq!(tp.parent_id, 0x00f067aa0ba902b7);
/// assert!(tp.sampled());
/// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The version the header was received with. [`write_to`](Self::write_to) always emits `00`.
    pub version: u8,
    /// The 128-bit trace id; never zero in a parsed value.
    pub trace_id: u128,
    /// The 64-bit id of the caller's span; never zero in a parsed value.
    pub parent_id: u64,
    /// The trace-flags byte, kept whole: bit 0 is [`FLAG_SAMPLED`](Self::FLAG_SAMPLED),
    /// bit 1 is [`FLAG_RANDOM`](Self::FLAG_RANDOM) (Level 2).
    pub flags: u8,
}

impl TraceParent {
    /// The `sampled` trace flag (bit 0).
    ///
    /// ```
    /// assert_eq!(agentcore_telemetry::propagation::TraceParent::FLAG_SAMPLED, 0x01);
    /// ```
    pub const FLAG_SAMPLED: u8 = 0x01;

    /// The Level 2 `random-trace-id` flag (bit 1); keep it when continuing a trace.
    ///
    /// ```
    /// assert_eq!(agentcore_telemetry::propagation::TraceParent::FLAG_RANDOM, 0x02);
    /// ```
    pub const FLAG_RANDOM: u8 = 0x02;

    /// Parses a `traceparent` header value without allocating.
    ///
    /// Surrounding spaces and tabs are trimmed. Rules: lowercase hex only; version `ff` is
    /// invalid; version `00` must be exactly 55 characters; a higher version must be at least
    /// 55 characters and its flags must be followed by end of input or `-` (the rest is
    /// ignored); an all-zero trace-id or parent-id makes the whole header invalid.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{PropagationError, TraceParent};
    ///
    /// assert!(TraceParent::parse(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\t").is_ok());
    /// assert_eq!(
    ///     TraceParent::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    ///     Err(PropagationError::ZeroTraceId)
    /// );
    /// // A future version may append fields after a dash.
    /// let tp = TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-next")?;
    /// assert_eq!(tp.version, 0xcc);
    /// # Ok::<(), PropagationError>(())
    /// ```
    pub fn parse(header: &str) -> Result<TraceParent, PropagationError> {
        let b = trim_ows(header.as_bytes());
        match Self::parse_valid(b) {
            Some(tp) => Ok(tp),
            None => Self::parse_refused(b),
        }
    }

    /// A header every rule of [`TraceParent::parse`] accepts, with no branch per hex digit
    /// (`hex`: random ids defeat a per-digit branch's prediction); `None` for every other,
    /// which [`TraceParent::parse_refused`] then reads rule by rule for its error.
    #[inline]
    fn parse_valid(b: &[u8]) -> Option<TraceParent> {
        // The fields sit at fixed positions of the first 55 bytes.
        let h: &[u8; LEN] = b.first_chunk()?;
        let version = hex::decode_u8([h[0], h[1]]);
        let trace_id = hex::decode_u128(h[3..35].try_into().ok()?);
        let parent_id = hex::decode_u64(h[36..52].try_into().ok()?);
        let flags = hex::decode_u8([h[53], h[54]]);
        let dashes = (h[2] == b'-') & (h[35] == b'-') & (h[52] == b'-');
        let (version, trace_id, parent_id, flags) = (version?, trace_id?, parent_id?, flags?);
        // Version 00 is exactly 55 bytes; a later one may go on after a dash; ff is invalid.
        let end = match b.len() == LEN {
            true => true,
            false => version != 0 && b[LEN] == b'-',
        };
        (dashes & end & (version != 0xff) & (trace_id != 0) & (parent_id != 0)).then_some(
            TraceParent {
                version,
                trace_id,
                parent_id,
                flags,
            },
        )
    }

    /// [`TraceParent::parse`]'s rules one by one, in order, for the error of a header
    /// [`TraceParent::parse_valid`] refused (and the value of one it would have taken, though
    /// none reaches here).
    #[cold]
    #[inline(never)]
    fn parse_refused(b: &[u8]) -> Result<TraceParent, PropagationError> {
        if b.len() < LEN {
            return Err(PropagationError::InvalidLength);
        }
        let version = hex_field(&b[0..2], "version")? as u8;
        if version == 0xff {
            return Err(PropagationError::InvalidVersion);
        }
        if version == 0 && b.len() != LEN {
            return Err(PropagationError::InvalidLength);
        }
        dash(b[2], "version")?;
        let trace_id = hex_field(&b[3..35], "trace-id")?;
        dash(b[35], "trace-id")?;
        let parent_id = hex_field(&b[36..52], "parent-id")? as u64;
        dash(b[52], "parent-id")?;
        let flags = hex_field(&b[53..55], "trace-flags")? as u8;
        if b.len() > LEN && b[LEN] != b'-' {
            return Err(PropagationError::TrailingData);
        }
        if trace_id == 0 {
            return Err(PropagationError::ZeroTraceId);
        }
        if parent_id == 0 {
            return Err(PropagationError::ZeroParentId);
        }
        Ok(TraceParent {
            version,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Whether the caller may have recorded the trace (flag bit 0).
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceParent;
    ///
    /// let tp = TraceParent { version: 0, trace_id: 1, parent_id: 2, flags: 0x03 };
    /// assert!(tp.sampled());
    /// assert!(!TraceParent { flags: 0x02, ..tp }.sampled());
    /// ```
    pub fn sampled(&self) -> bool {
        self.flags & Self::FLAG_SAMPLED != 0
    }

    /// Whether the trace-id is marked random (Level 2 flag bit 1).
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceParent;
    ///
    /// let tp = TraceParent { version: 0, trace_id: 1, parent_id: 2, flags: 0x02 };
    /// assert!(tp.random());
    /// ```
    pub fn random(&self) -> bool {
        self.flags & Self::FLAG_RANDOM != 0
    }

    /// The header for a child call: same trace-id, a new parent-id, version `00`, and only
    /// the flags this crate understands (sampled and random) kept; reserved bits are zeroed.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceParent;
    ///
    /// let tp = TraceParent { version: 0xcc, trace_id: 7, parent_id: 2, flags: 0xff };
    /// let child = tp.child(9);
    /// assert_eq!(child, TraceParent { version: 0, trace_id: 7, parent_id: 9, flags: 0x03 });
    /// ```
    pub fn child(&self, parent_id: u64) -> TraceParent {
        TraceParent {
            version: 0,
            trace_id: self.trace_id,
            parent_id,
            flags: self.flags & (Self::FLAG_SAMPLED | Self::FLAG_RANDOM),
        }
    }

    /// Appends the header value to `out`: always version `00`, lowercase hex, 55 characters,
    /// with only the flags version `00` defines (sampled and random): the reserved bits are
    /// written as zero, whatever `flags` holds (W3C Trace Context Level 2, "Other Flags":
    /// "Vendors MUST set those to zero"; a parsed header keeps them in `flags`, and a header
    /// of a later version may define them, but what this writes is a version-`00` header).
    /// Allocates nothing beyond `out`'s own growth.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceParent;
    ///
    /// let tp = TraceParent { version: 0xcc, trace_id: 0xab, parent_id: 0xcd, flags: 0xf5 };
    /// let mut out = String::new();
    /// tp.write_to(&mut out);
    /// assert_eq!(out, "00-000000000000000000000000000000ab-00000000000000cd-01");
    /// ```
    pub fn write_to(&self, out: &mut String) {
        // `encode` only produces ASCII, so this always writes.
        if let Some(s) = text(&self.encode()) {
            out.push_str(s);
        }
    }

    fn encode(&self) -> [u8; LEN] {
        let mut buf = [b'-'; LEN];
        buf[0] = b'0';
        buf[1] = b'0';
        let mut trace_id = [0; 32];
        hex::encode_u128(self.trace_id, &mut trace_id);
        buf[3..35].copy_from_slice(&trace_id);
        let mut parent_id = [0; 16];
        hex::encode_u64(self.parent_id, &mut parent_id);
        buf[36..52].copy_from_slice(&parent_id);
        buf[53..55].copy_from_slice(&hex::encode_u8(
            self.flags & (Self::FLAG_SAMPLED | Self::FLAG_RANDOM),
        ));
        buf
    }
}

impl fmt::Display for TraceParent {
    /// Formats like [`TraceParent::write_to`].
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceParent;
    ///
    /// let tp = TraceParent { version: 0, trace_id: 1, parent_id: 1, flags: 0 };
    /// assert_eq!(tp.to_string(), "00-00000000000000000000000000000001-0000000000000001-00");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(text(&self.encode()).ok_or(fmt::Error)?)
    }
}

/// An encoded header as text, if it is ASCII, which `encode`'s always is. Checked a word at a
/// time (`is_ascii`): `str::from_utf8`'s general validation cost 137 instructions per header, a
/// fifth of an extract and inject (callgrind, `profile_driver traceparent_varied`).
#[inline]
fn text(buf: &[u8; LEN]) -> Option<&str> {
    // SAFETY: ASCII is valid UTF-8, and the bytes were just checked to be ASCII.
    buf.is_ascii()
        .then(|| unsafe { std::str::from_utf8_unchecked(buf) })
}

/// `b` without the spaces and tabs around it (OWS), byte by byte: the same as
/// `str::trim_matches(is_ows)`, which decodes characters (a space and a tab are one-byte ASCII,
/// which no multi-byte UTF-8 sequence contains), in a few instructions when there are none.
fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// Parses 2 to 32 lowercase hex digits.
fn hex_field(src: &[u8], field: &'static str) -> Result<u128, PropagationError> {
    let mut value: u128 = 0;
    for &c in src {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => return Err(PropagationError::UppercaseHex { field }),
            _ => return Err(PropagationError::InvalidHex { field }),
        };
        value = (value << 4) | u128::from(digit);
    }
    Ok(value)
}

fn dash(c: u8, after: &'static str) -> Result<(), PropagationError> {
    if c == b'-' {
        Ok(())
    } else {
        Err(PropagationError::MissingDelimiter { after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytewise trim is `trim_matches(is_ows)`: spaces and tabs only, from both ends, never
    /// a byte of a multi-byte character nor other whitespace.
    #[test]
    fn trims_spaces_and_tabs_as_the_character_trim_does() {
        let pieces = [
            "", " ", "\t", "\n", "\r", "\u{a0}", "\u{3000}", "é", "-", "a",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        let s = format!("{a}{b}x{c}{d}");
                        assert_eq!(
                            trim_ows(s.as_bytes()),
                            s.trim_matches(super::super::is_ows).as_bytes(),
                            "{s:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(trim_ows(b" \t \t"), b"");
    }

    /// `parse`'s word-at-a-time path takes exactly the headers its rule-by-rule path accepts,
    /// with the same values: every byte value at every position of valid headers (version 00,
    /// later versions with and without a continuation) and of a version-00 header with a
    /// continuation, every length around 55, and random ids (every hex digit in every lane).
    #[test]
    fn the_fast_path_agrees_with_the_rules() {
        let agree = |b: &[u8]| {
            let fast = TraceParent::parse_valid(b);
            let rules = TraceParent::parse_refused(b);
            match (fast, rules) {
                (Some(f), Ok(r)) => assert_eq!(f, r, "{:?}", String::from_utf8_lossy(b)),
                (Some(f), Err(e)) => panic!("{b:?}: fast path took {f:?}, the rules refuse: {e}"),
                (None, _) => {}
            }
            // Only for the valid: a header the rules accept must take the fast path (the
            // rules stay the slow path of errors only).
            if let Ok(r) = TraceParent::parse_refused(b) {
                assert_eq!(fast, Some(r), "{:?}", String::from_utf8_lossy(b));
            }
        };
        let seeds = [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-next",
            "fe-00000000000000000000000000000001-0000000000000001-ff-",
            // Version 00 with a continuation: refused (exactly 55 bytes), which the mutations
            // of the others cannot reach (found by review).
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-next",
        ];
        for seed in seeds {
            let seed = seed.as_bytes();
            for pos in 0..seed.len() {
                for byte in 0..=255u8 {
                    let mut h = seed.to_vec();
                    h[pos] = byte;
                    agree(&h);
                }
            }
            for len in 0..=seed.len() {
                agree(&seed[..len]);
                let mut longer = seed.to_vec();
                longer.extend_from_slice(&seed[..len]);
                agree(&longer);
            }
        }
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..20_000 {
            let tp = TraceParent {
                version: next() as u8 & 0x0f,
                trace_id: u128::from(next()) << 64 | u128::from(next()),
                parent_id: next(),
                flags: next() as u8,
            };
            let h = format!(
                "{:02x}-{:032x}-{:016x}-{:02x}",
                tp.version, tp.trace_id, tp.parent_id, tp.flags
            );
            agree(h.as_bytes());
            assert_eq!(TraceParent::parse(&h), Ok(tp));
            // Written as version 00, with the flags version 00 defines and none other.
            let flags = tp.flags & 0x03;
            assert_eq!(tp.to_string(), format!("00{}{flags:02x}", &h[2..53]));
        }
    }
}
