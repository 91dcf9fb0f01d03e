//! The `tracestate` header (W3C Trace Context, section "tracestate Header").

use std::fmt;

use super::error::PropagationError;
use super::is_ows;

/// The most list-members a `tracestate` may hold; a header with more is invalid.
///
/// ```
/// use agentcore_telemetry::propagation::{TraceState, TRACESTATE_MAX_MEMBERS};
/// let header: Vec<String> = (0..=TRACESTATE_MAX_MEMBERS).map(|i| format!("k{i}=v")).collect();
/// assert!(TraceState::parse(&header.join(",")).is_err());
/// ```
pub const TRACESTATE_MAX_MEMBERS: usize = 32;
/// Entries longer than this are dropped first when truncating (spec: "larger than 128").
const LARGE_ENTRY: usize = 128;

/// An ordered `tracestate`: at most 32 `key=value` members, leftmost most recent.
///
/// ```
/// use agentcore_telemetry::propagation::TraceState;
///
/// let mut ts = TraceState::parse("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE")?;
/// assert_eq!(ts.get("congo"), Some("t61rcWkgMzE"));
/// ts.insert("congo", "new")?; // modified keys move to the left
/// assert_eq!(ts.to_string(), "congo=new,rojo=00f067aa0ba902b7");
/// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

impl TraceState {
    /// An empty `tracestate`.
    ///
    /// ```
    /// assert!(agentcore_telemetry::propagation::TraceState::new().is_empty());
    /// ```
    pub fn new() -> TraceState {
        TraceState::default()
    }

    /// Parses one `tracestate` header field.
    ///
    /// Spaces and tabs around members are trimmed and empty members (`a=1,,b=2`) are skipped.
    /// The whole header is invalid when any member is malformed, a key repeats, or there are
    /// more than 32 members.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{PropagationError, TraceState};
    ///
    /// assert_eq!(TraceState::parse("a=1,,b=2")?.len(), 2);
    /// assert_eq!(TraceState::parse("a=1,a=2"), Err(PropagationError::DuplicateKey));
    /// assert_eq!(TraceState::parse("A=1"), Err(PropagationError::InvalidKey));
    /// # Ok::<(), PropagationError>(())
    /// ```
    pub fn parse(header: &str) -> Result<TraceState, PropagationError> {
        Self::parse_all([header])
    }

    /// Parses several `tracestate` header fields as one list, combined in order as RFC 9110
    /// section 5.3 specifies (as if joined with `,`).
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{PropagationError, TraceState};
    ///
    /// let ts = TraceState::parse_all(["foo=1,bar=2", "", "baz=3"])?;
    /// assert_eq!(ts.to_string(), "foo=1,bar=2,baz=3");
    /// assert_eq!(TraceState::parse_all(["foo=1", "foo=2"]), Err(PropagationError::DuplicateKey));
    /// # Ok::<(), PropagationError>(())
    /// ```
    pub fn parse_all<'a>(
        headers: impl IntoIterator<Item = &'a str>,
    ) -> Result<TraceState, PropagationError> {
        let mut members: Vec<(String, String)> = Vec::new();
        for header in headers {
            for member in header.split(',') {
                let member = member.trim_matches(is_ows);
                if member.is_empty() {
                    continue;
                }
                let (key, value) = member
                    .split_once('=')
                    .ok_or(PropagationError::MissingEquals)?;
                validate_key(key)?;
                validate_value(value)?;
                if members.iter().any(|(k, _)| k == key) {
                    return Err(PropagationError::DuplicateKey);
                }
                if members.len() == TRACESTATE_MAX_MEMBERS {
                    return Err(PropagationError::TooManyMembers {
                        limit: TRACESTATE_MAX_MEMBERS,
                    });
                }
                members.push((key.to_owned(), value.to_owned()));
            }
        }
        Ok(TraceState { members })
    }

    /// The value for `key`, if present.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceState;
    ///
    /// let ts = TraceState::parse("t@sys=v")?;
    /// assert_eq!(ts.get("t@sys"), Some("v"));
    /// assert_eq!(ts.get("t"), None);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Adds or updates `key`, placing it first (the spec's "modified keys move to the left").
    ///
    /// When a new key would make 33 members, the rightmost member is dropped, as the spec
    /// requires. Fails, leaving `self` unchanged, when the key or value breaks the grammar.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{PropagationError, TraceState};
    ///
    /// let mut ts = TraceState::parse("a=1,b=2")?;
    /// ts.insert("b", "3")?;
    /// assert_eq!(ts.to_string(), "b=3,a=1");
    /// assert_eq!(ts.insert("b", "x,y"), Err(PropagationError::InvalidValue));
    /// # Ok::<(), PropagationError>(())
    /// ```
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), PropagationError> {
        validate_key(key)?;
        validate_value(value)?;
        match self.members.iter().position(|(k, _)| k == key) {
            Some(i) => {
                let mut entry = self.members.remove(i);
                value.clone_into(&mut entry.1);
                self.members.insert(0, entry);
            }
            None => {
                if self.members.len() == TRACESTATE_MAX_MEMBERS {
                    self.members.pop();
                }
                self.members.insert(0, (key.to_owned(), value.to_owned()));
            }
        }
        Ok(())
    }

    /// Removes `key`, returning its value.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceState;
    ///
    /// let mut ts = TraceState::parse("a=1,b=2")?;
    /// assert_eq!(ts.remove("a").as_deref(), Some("1"));
    /// assert_eq!(ts.to_string(), "b=2");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(i).1)
    }

    /// Number of members.
    ///
    /// ```
    /// assert_eq!(agentcore_telemetry::propagation::TraceState::parse("a=1, b=2")?.len(), 2);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    ///
    /// ```
    /// assert!(agentcore_telemetry::propagation::TraceState::parse(" ,, ")?.is_empty());
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members as `(key, value)`, leftmost first.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceState;
    ///
    /// let ts = TraceState::parse("a=1,b=2")?;
    /// let keys: Vec<&str> = ts.iter().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Appends the header value (`k=v,k=v`, no spaces) to `out`.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceState;
    ///
    /// let mut out = String::new();
    /// TraceState::parse(" a=1 ,\tb=2 ")?.write_to(&mut out);
    /// assert_eq!(out, "a=1,b=2");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn write_to(&self, out: &mut String) {
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
    }

    /// Appends the header value to `out`, at most `max_len` bytes, and returns how many
    /// members were dropped.
    ///
    /// Truncation follows the spec: whole members only; members longer than 128 characters
    /// are dropped first (rightmost first), then members from the right, until the rest fits.
    /// The spec asks platforms to propagate at least 512 characters, so pass `max_len >= 512`.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceState;
    ///
    /// let big = "x".repeat(200);
    /// let ts = TraceState::parse(&format!("a=1,b={big},c=3"))?;
    /// let mut out = String::new();
    /// assert_eq!(ts.write_truncated(&mut out, 100), 1);
    /// assert_eq!(out, "a=1,c=3");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn write_truncated(&self, out: &mut String, max_len: usize) -> usize {
        let entry_len = |(k, v): &(String, String)| k.len() + 1 + v.len();
        let mut keep = [true; TRACESTATE_MAX_MEMBERS];
        let mut kept = self.members.len();
        let mut total: usize = self.members.iter().map(entry_len).sum::<usize>() + kept;
        // `total` counts one comma per member; the output has one fewer.
        let fits = |total: usize, kept: usize| kept == 0 || total - 1 <= max_len;
        for large_pass in [true, false] {
            for (i, m) in self.members.iter().enumerate().rev() {
                if fits(total, kept) {
                    break;
                }
                if keep[i] && (!large_pass || entry_len(m) > LARGE_ENTRY) {
                    keep[i] = false;
                    kept -= 1;
                    total -= entry_len(m) + 1;
                }
            }
        }
        let mut first = true;
        for (m, _) in self.members.iter().zip(keep).filter(|(_, k)| *k) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&m.0);
            out.push('=');
            out.push_str(&m.1);
        }
        self.members.len() - kept
    }
}

impl fmt::Display for TraceState {
    /// Formats like [`TraceState::write_to`].
    ///
    /// ```
    /// use agentcore_telemetry::propagation::TraceState;
    ///
    /// assert_eq!(TraceState::parse("a=1")?.to_string(), "a=1");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

fn is_key_char(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// Key grammar: `simple-key = (lcalpha / DIGIT) 0*255(keychar)` or the multi-tenant
/// `tenant-id "@" system-id`, with `tenant-id = (lcalpha / DIGIT) 0*240(keychar)` and
/// `system-id = lcalpha 0*13(keychar)`. At most one `@`.
fn validate_key(key: &str) -> Result<(), PropagationError> {
    let b = key.as_bytes();
    let ok = match b.iter().position(|&c| c == b'@') {
        None => simple_part(b, 256),
        Some(at) => {
            let (tenant, system) = (&b[..at], &b[at + 1..]);
            simple_part(tenant, 241) && simple_part(system, 14) && system[0].is_ascii_lowercase()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(PropagationError::InvalidKey)
    }
}

/// 1..=`max` key characters, the first a lowercase letter or digit.
fn simple_part(b: &[u8], max: usize) -> bool {
    matches!(b.first(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.len() <= max
        && b.iter().all(|&c| is_key_char(c))
}

/// Value grammar: `0*255(chr) nblk-chr`: 1 to 256 characters in 0x20..=0x7E except `,` and
/// `=`, not ending in a space.
fn validate_value(value: &str) -> Result<(), PropagationError> {
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 256
        && b.last() != Some(&b' ')
        && b.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=');
    if ok {
        Ok(())
    } else {
        Err(PropagationError::InvalidValue)
    }
}
