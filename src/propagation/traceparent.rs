//! The `traceparent` header (W3C Trace Context, section "traceparent Header").

use std::fmt;

use super::error::PropagationError;
use super::is_ows;

/// Length of a version-`00` `traceparent`: `2 + 1 + 32 + 1 + 16 + 1 + 2`.
const LEN: usize = 55;
const HEX: &[u8; 16] = b"0123456789abcdef";

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
        let b = header.trim_matches(is_ows).as_bytes();
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

    /// Appends the header value to `out`: always version `00`, lowercase hex, 55 characters.
    /// Allocates nothing beyond `out`'s own growth.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceParent;
    ///
    /// let tp = TraceParent { version: 0xcc, trace_id: 0xab, parent_id: 0xcd, flags: 1 };
    /// let mut out = String::new();
    /// tp.write_to(&mut out);
    /// assert_eq!(out, "00-000000000000000000000000000000ab-00000000000000cd-01");
    /// ```
    pub fn write_to(&self, out: &mut String) {
        let buf = self.encode();
        // `encode` only produces ASCII, so this never fails.
        if let Ok(s) = std::str::from_utf8(&buf) {
            out.push_str(s);
        }
    }

    fn encode(&self) -> [u8; LEN] {
        let mut buf = [b'-'; LEN];
        buf[0] = b'0';
        buf[1] = b'0';
        put_hex(&mut buf[3..35], self.trace_id);
        put_hex(&mut buf[36..52], u128::from(self.parent_id));
        put_hex(&mut buf[53..55], u128::from(self.flags));
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
        let buf = self.encode();
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// Writes `value` as lowercase hex into all of `dst`, most significant digit first.
fn put_hex(dst: &mut [u8], mut value: u128) {
    for d in dst.iter_mut().rev() {
        *d = HEX[(value & 0xf) as usize];
        value >>= 4;
    }
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
