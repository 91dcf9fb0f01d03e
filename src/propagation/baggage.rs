//! The `baggage` header (W3C Baggage, `baggage/HTTP_HEADER_FORMAT.md`).

use std::fmt;

use super::error::PropagationError;
use super::is_ows;

/// Most members [`Baggage::parse`] accepts (the ABNF's `list-member 0*179(...)`).
///
/// ```
/// use agentcore_telemetry::propagation::{Baggage, BAGGAGE_PARSE_MAX_MEMBERS};
/// let header = vec!["k=v"; BAGGAGE_PARSE_MAX_MEMBERS + 1].join(",");
/// assert!(Baggage::parse(&header).is_err());
/// ```
pub const BAGGAGE_PARSE_MAX_MEMBERS: usize = 180;
/// Most members [`Baggage::write_limited`] emits (the spec's "at least 64" propagation limit).
///
/// ```
/// assert_eq!(agentcore_telemetry::propagation::BAGGAGE_EMIT_MAX_MEMBERS, 64);
/// ```
pub const BAGGAGE_EMIT_MAX_MEMBERS: usize = 64;
/// Most bytes [`Baggage::parse`] accepts (of its members re-encoded, not of the header received)
/// and [`Baggage::write_limited`] emits.
///
/// ```
/// use agentcore_telemetry::propagation::{Baggage, BAGGAGE_MAX_BYTES};
/// let header = format!("k={}", "v".repeat(BAGGAGE_MAX_BYTES));
/// assert!(Baggage::parse(&header).is_err());
/// ```
pub const BAGGAGE_MAX_BYTES: usize = 8192;

/// Most bytes [`Baggage::parse`] reads: four times [`BAGGAGE_MAX_BYTES`], so that whatever fits
/// once re-encoded is read unless more than 8192 of its bytes are optional whitespace (needless
/// `%XX` escapes shrink by at most three to one), and a larger header is refused before any
/// member is parsed.
const RECEIVED_MAX_BYTES: usize = 4 * BAGGAGE_MAX_BYTES;

/// Most errors [`Baggage::parse_lossy`] returns: those of the first members skipped, so that
/// a header of thousands of malformed members does not give thousands of errors.
const LOSSY_REPORTED_ERRORS: usize = 10;

/// One `;key` or `;key=value` property of a baggage member. The value is percent-decoded like
/// member values.
///
/// ```
/// use agentcore_telemetry::propagation::Baggage;
///
/// let bag = Baggage::parse("k=v;flag;ttl=30")?;
/// let props = bag.iter().next().unwrap().properties();
/// assert_eq!((props[0].key(), props[0].value()), ("flag", None));
/// assert_eq!((props[1].key(), props[1].value()), ("ttl", Some("30")));
/// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaggageProperty {
    key: String,
    value: Option<String>,
}

impl BaggageProperty {
    /// A property; `key` must be an RFC 7230 token, `value` is any text (encoded on emit).
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{BaggageProperty, PropagationError};
    ///
    /// assert!(BaggageProperty::new("ttl", Some("30")).is_ok());
    /// assert_eq!(BaggageProperty::new("a b", None), Err(PropagationError::InvalidProperty));
    /// ```
    pub fn new(key: &str, value: Option<&str>) -> Result<BaggageProperty, PropagationError> {
        if !is_token(key) {
            return Err(PropagationError::InvalidProperty);
        }
        Ok(BaggageProperty {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        })
    }

    /// The property key.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::BaggageProperty;
    /// assert_eq!(BaggageProperty::new("k", None)?.key(), "k");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The decoded property value; `None` for a bare `;key`.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::BaggageProperty;
    /// assert_eq!(BaggageProperty::new("k", Some("v"))?.value(), Some("v"));
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl BaggageProperty {
    /// `key` or `key=value`, the value percent-encoded.
    fn encode_into(&self, out: &mut String) {
        out.push_str(&self.key);
        if let Some(v) = &self.value {
            out.push('=');
            percent_encode(v, out);
        }
    }
}

/// Properties as a member carries them after its value, without the leading `;`
/// (`ttl=30;private`): the tracer's map form of a baggage entry's properties.
pub(crate) fn write_properties(properties: &[BaggageProperty], out: &mut String) {
    for (i, p) in properties.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        p.encode_into(out);
    }
}

/// What [`write_properties`] writes, read back with the member grammar's property rules
/// (OWS trimmed, empty properties skipped).
pub(crate) fn parse_properties(text: &str) -> Result<Vec<BaggageProperty>, PropagationError> {
    let mut properties = Vec::new();
    for prop in text.split(';') {
        let prop = prop.trim_matches(is_ows);
        if prop.is_empty() {
            continue;
        }
        let (pkey, pvalue) = match prop.split_once('=') {
            Some((k, v)) => (k.trim_matches(is_ows), Some(v.trim_matches(is_ows))),
            None => (prop, None),
        };
        let valid_value = pvalue.is_none_or(|v| v.bytes().all(is_baggage_octet));
        if !is_token(pkey) || !valid_value {
            return Err(PropagationError::InvalidProperty);
        }
        properties.push(BaggageProperty {
            key: pkey.to_owned(),
            value: pvalue.map(percent_decode),
        });
    }
    Ok(properties)
}

/// One baggage list-member: key, decoded value and properties.
///
/// ```
/// use agentcore_telemetry::propagation::{BaggageMember, BaggageProperty};
///
/// let m = BaggageMember::new("user", "Zoë 50%")?
///     .with_property(BaggageProperty::new("private", None)?);
/// assert_eq!(m.to_string(), "user=Zo%C3%AB%2050%25;private");
/// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaggageMember {
    key: String,
    value: String,
    properties: Vec<BaggageProperty>,
}

impl BaggageMember {
    /// A member without properties; `key` must be an RFC 7230 token, `value` is any text.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{BaggageMember, PropagationError};
    ///
    /// assert_eq!(BaggageMember::new("k", "a, b")?.value(), "a, b");
    /// assert_eq!(BaggageMember::new("", "v"), Err(PropagationError::InvalidKey));
    /// # Ok::<(), PropagationError>(())
    /// ```
    pub fn new(key: &str, value: &str) -> Result<BaggageMember, PropagationError> {
        if !is_token(key) {
            return Err(PropagationError::InvalidKey);
        }
        Ok(BaggageMember {
            key: key.to_owned(),
            value: value.to_owned(),
            properties: Vec::new(),
        })
    }

    /// Adds a property at the end.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{BaggageMember, BaggageProperty};
    ///
    /// let m = BaggageMember::new("k", "v")?.with_property(BaggageProperty::new("p", Some("1"))?);
    /// assert_eq!(m.properties().len(), 1);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn with_property(mut self, property: BaggageProperty) -> BaggageMember {
        self.properties.push(property);
        self
    }

    /// The key.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::BaggageMember;
    /// assert_eq!(BaggageMember::new("k", "v")?.key(), "k");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The percent-decoded value.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    /// let bag = Baggage::parse("k=DF%2028")?;
    /// assert_eq!(bag.iter().next().unwrap().value(), "DF 28");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The properties, in header order.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    /// let bag = Baggage::parse("k=v ; p1 ; p2 = x")?;
    /// assert_eq!(bag.iter().next().unwrap().properties().len(), 2);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn properties(&self) -> &[BaggageProperty] {
        &self.properties
    }

    /// The length of what [`encode_into`](Self::encode_into) appends.
    fn encoded_len(&self) -> usize {
        let props: usize = self
            .properties
            .iter()
            .map(|p| 1 + p.key.len() + p.value.as_deref().map_or(0, |v| 1 + encoded_len(v)))
            .sum();
        self.key.len() + 1 + encoded_len(&self.value) + props
    }

    fn encode_into(&self, out: &mut String) {
        out.push_str(&self.key);
        out.push('=');
        percent_encode(&self.value, out);
        for p in &self.properties {
            out.push(';');
            p.encode_into(out);
        }
    }
}

impl fmt::Display for BaggageMember {
    /// The encoded list-member, e.g. `k=a%20b;p`.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::BaggageMember;
    /// assert_eq!(BaggageMember::new("k", "a b")?.to_string(), "k=a%20b");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.encode_into(&mut s);
        f.write_str(&s)
    }
}

/// An ordered `baggage` list. Keys may repeat, as the spec allows; [`get`](Self::get) returns
/// the first.
///
/// ## Choices where the spec leaves room
///
/// * **Malformed input** (a key that is not a token, a member without `=`, a value or property
///   with characters outside baggage-octets) makes [`parse`](Self::parse) fail, naming the rule;
///   [`parse_lossy`](Self::parse_lossy), what extraction uses, skips that member and keeps the
///   others. Empty list members (`a=1,,b=2`) and empty properties (`a=1;`) are skipped.
/// * **Invalid percent escapes** such as `%ZZ` or a trailing `%` are kept as literal text:
///   `k=%ZZ` decodes to the value `"%ZZ"` and re-encodes as `k=%25ZZ`.
/// * **Invalid UTF-8** after decoding becomes U+FFFD.
/// * **Parse limits:** more than 180 members gives [`PropagationError::TooManyMembers`]; members
///   that take more than 8192 bytes once re-encoded as [`write_to`](Self::write_to) writes them
///   (all fields, joined with `,`: the size of the resulting `baggage-string` the spec's limits
///   are about, without the optional whitespace and needless `%XX` they arrived with) give
///   [`PropagationError::TooLong`], and so does a header of more than 32768 bytes (fields
///   trimmed and joined with `,`), before any member is parsed; the whole input is rejected,
///   never truncated ([`parse_lossy`](Self::parse_lossy) keeps the members within the limits
///   instead, whole ones only).
/// * **Emit limits:** [`write_limited`](Self::write_limited) emits whole members only, at most 64
///   and 8192 bytes, skipping any member that would overflow, and returns how many it dropped.
///   [`write_to`](Self::write_to) and `Display` emit everything.
///
/// ```
/// use agentcore_telemetry::propagation::Baggage;
///
/// let mut bag = Baggage::parse("userId=alice, serverNode = DF%2028;p")?;
/// assert_eq!(bag.get("serverNode"), Some("DF 28"));
/// bag.insert("discount", "50%")?;
/// assert_eq!(bag.to_string(), "userId=alice,serverNode=DF%2028;p,discount=50%25");
/// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Baggage {
    members: Vec<BaggageMember>,
}

impl Baggage {
    /// An empty baggage.
    ///
    /// ```
    /// assert!(agentcore_telemetry::propagation::Baggage::new().is_empty());
    /// ```
    pub fn new() -> Baggage {
        Baggage::default()
    }

    /// Parses one `baggage` header field. See the type docs for the choices made.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{Baggage, PropagationError};
    ///
    /// let bag = Baggage::parse("a=%F0%9F%A6%80,b=%ZZ,c=")?;
    /// assert_eq!(bag.get("a"), Some("🦀"));
    /// assert_eq!(bag.get("b"), Some("%ZZ"));
    /// assert_eq!(bag.get("c"), Some(""));
    /// assert_eq!(Baggage::parse("a=b c"), Err(PropagationError::InvalidValue));
    /// # Ok::<(), PropagationError>(())
    /// ```
    pub fn parse(header: &str) -> Result<Baggage, PropagationError> {
        Self::parse_all([header])
    }

    /// Parses several `baggage` header fields as one list; the limits apply to all combined.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    ///
    /// let bag = Baggage::parse_all(["userId=alice", "serverNode=DF%2028,isProduction=false"])?;
    /// assert_eq!(bag.len(), 3);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn parse_all<'a>(
        headers: impl IntoIterator<Item = &'a str>,
    ) -> Result<Baggage, PropagationError> {
        parse_with(headers, Err)
    }

    /// Parses `baggage` header fields as one list the way a receiver should: a list-member
    /// that is not in the specified format (a key that is not a token, no `=`, a value or
    /// property outside baggage-octets) is skipped and the others are kept, and so is every
    /// member past the parse limits (after 180 members, or one that would take the list past
    /// 8192 bytes re-encoded: later, smaller ones may still fit). Returns the members kept and
    /// the errors of the first ten members skipped, in order (a single
    /// [`PropagationError::TooManyMembers`] for all those past 180): one per member made a
    /// 32768-byte header of `x,` return 16,384 errors, about 650 KB once
    /// [`Propagation::extract`](super::Propagation::extract) tags them, and as many log lines
    /// for a server that logs them. Fields of more than 32768 bytes together are not read
    /// past that point (error [`PropagationError::TooLong`]).
    ///
    /// This is what [`Propagation::extract`](super::Propagation::extract) and the tracer's
    /// [`TraceContext::extract`](crate::TraceContext::extract) use. W3C Baggage: "If a system
    /// determines that the value of a baggage entry is not in the format defined in this
    /// specification, it MAY remove that entry before propagating the baggage header", while
    /// "A platform MUST propagate all list-members including any list-members added by the
    /// platform if and only if the resulting baggage-string would have 64 list-members or
    /// less, and the baggage-string would be 8192 bytes or less": one bad member does not
    /// take the valid ones with it (as in the OpenTelemetry Python, Java and JavaScript
    /// propagators).
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{Baggage, PropagationError};
    ///
    /// let (bag, errors) = Baggage::parse_lossy(["userId=alice,bad key=1,noequals,tenant=acme"]);
    /// assert_eq!(bag.to_string(), "userId=alice,tenant=acme");
    /// assert_eq!(errors, [PropagationError::InvalidKey, PropagationError::MissingEquals]);
    /// ```
    pub fn parse_lossy<'a>(
        headers: impl IntoIterator<Item = &'a str>,
    ) -> (Baggage, Vec<PropagationError>) {
        let mut errors = Vec::new();
        let parsed = parse_with(headers, |e| {
            if errors.len() < LOSSY_REPORTED_ERRORS {
                errors.push(e);
            }
            Ok(())
        });
        // `skip` never fails, so neither does `parse_with`.
        (parsed.unwrap_or_default(), errors)
    }

    /// [`parse_lossy`](Self::parse_lossy) without the errors, for a caller that does not
    /// report them (the tracer's extraction): nothing is collected to be dropped.
    pub(crate) fn parse_skipping(header: &str) -> Baggage {
        // `skip` never fails, so neither does `parse_with`.
        parse_with([header], |_| Ok(())).unwrap_or_default()
    }

    /// The decoded value of the first member named `key`.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    /// assert_eq!(Baggage::parse("k=1,k=2")?.get("k"), Some("1"));
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value.as_str())
    }

    /// Sets `key` to `value` without properties. An existing member keeps its position (later
    /// duplicates are removed); a new key goes to the end. Fails when `key` is not a token.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    ///
    /// let mut bag = Baggage::parse("a=1;p,b=2,a=3")?;
    /// bag.insert("a", "x;y")?;
    /// assert_eq!(bag.to_string(), "a=x%3By,b=2");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), PropagationError> {
        self.insert_member(BaggageMember::new(key, value)?);
        Ok(())
    }

    /// Like [`insert`](Self::insert), for a member with properties.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::{Baggage, BaggageMember, BaggageProperty};
    ///
    /// let mut bag = Baggage::new();
    /// bag.insert_member(BaggageMember::new("k", "v")?.with_property(BaggageProperty::new("p", None)?));
    /// assert_eq!(bag.to_string(), "k=v;p");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn insert_member(&mut self, member: BaggageMember) {
        match self.members.iter().position(|m| m.key == member.key) {
            Some(i) => {
                let key = member.key.clone();
                self.members[i] = member;
                let mut seen = 0usize;
                self.members.retain(|m| {
                    if m.key != key {
                        return true;
                    }
                    seen += 1;
                    seen == 1
                });
            }
            None => self.members.push(member),
        }
    }

    /// Removes every member named `key`, returning the first one's value.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    /// let mut bag = Baggage::parse("a=1,b=2")?;
    /// assert_eq!(bag.remove("a").as_deref(), Some("1"));
    /// assert_eq!(bag.len(), 1);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.members.iter().position(|m| m.key == key)?;
        let first = self.members.remove(i).value;
        self.members.retain(|m| m.key != key);
        Some(first)
    }

    /// Number of members.
    ///
    /// ```
    /// assert_eq!(agentcore_telemetry::propagation::Baggage::parse("a=1,,b=2")?.len(), 2);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    ///
    /// ```
    /// assert!(agentcore_telemetry::propagation::Baggage::parse("")?.is_empty());
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members in order.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    /// let bag = Baggage::parse("a=1,b=2")?;
    /// let pairs: Vec<(&str, &str)> = bag.iter().map(|m| (m.key(), m.value())).collect();
    /// assert_eq!(pairs, [("a", "1"), ("b", "2")]);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &BaggageMember> + '_ {
        self.members.iter()
    }

    /// Appends every member, percent-encoded, to `out`, with no size limit.
    ///
    /// Every byte that is not a baggage-octet is encoded as `%XX`, and so is `%` itself.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    ///
    /// let mut bag = Baggage::new();
    /// bag.insert("k", r#"a\b "c",d;é"#)?;
    /// let mut out = String::new();
    /// bag.write_to(&mut out);
    /// assert_eq!(out, "k=a%5Cb%20%22c%22%2Cd%3B%C3%A9");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn write_to(&self, out: &mut String) {
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            m.encode_into(out);
        }
    }

    /// Appends whole members to `out` while the result stays within 64 members and 8192 bytes,
    /// and returns how many members were dropped. A member that would overflow the byte limit
    /// is skipped (never cut); later, smaller members may still fit.
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    ///
    /// let mut bag = Baggage::new();
    /// for i in 0..65 {
    ///     bag.insert(&format!("k{i}"), "v")?;
    /// }
    /// let mut out = String::new();
    /// assert_eq!(bag.write_limited(&mut out), 1);
    /// assert_eq!(out.split(',').count(), 64);
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    pub fn write_limited(&self, out: &mut String) -> usize {
        let mut list = LimitedList::new(out);
        for m in &self.members {
            list.offer(m);
        }
        list.dropped()
    }
}

/// The emit rule of [`Baggage::write_limited`], one member at a time: whole members appended
/// to `out` while the list stays within [`BAGGAGE_EMIT_MAX_MEMBERS`] members and
/// [`BAGGAGE_MAX_BYTES`] bytes; a member that would overflow the byte limit is skipped (later,
/// smaller ones may still fit), and once the member limit is reached every further member is
/// dropped without being encoded. Each member offered costs at most its own encoding, so a
/// list is written in time linear in its size.
pub(crate) struct LimitedList<'a> {
    out: &'a mut String,
    start: usize,
    emitted: usize,
    dropped: usize,
}

impl<'a> LimitedList<'a> {
    /// An empty list appended to `out`.
    pub(crate) fn new(out: &'a mut String) -> Self {
        let start = out.len();
        LimitedList {
            out,
            start,
            emitted: 0,
            dropped: 0,
        }
    }

    /// Whether the member limit is reached: every further member is dropped.
    pub(crate) fn is_full(&self) -> bool {
        self.emitted == BAGGAGE_EMIT_MAX_MEMBERS
    }

    /// Appends `m` if it fits, else counts it dropped.
    pub(crate) fn offer(&mut self, m: &BaggageMember) {
        if self.is_full() {
            self.dropped += 1;
            return;
        }
        let before = self.out.len();
        if self.emitted > 0 {
            self.out.push(',');
        }
        m.encode_into(self.out);
        if self.out.len() - self.start > BAGGAGE_MAX_BYTES {
            // Output is ASCII, so any length is a char boundary.
            self.out.truncate(before);
            self.dropped += 1;
        } else {
            self.emitted += 1;
        }
    }

    /// Members offered (or counted) and not written.
    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }
}

impl fmt::Display for Baggage {
    /// Formats like [`Baggage::write_to`].
    ///
    /// ```
    /// use agentcore_telemetry::propagation::Baggage;
    /// assert_eq!(Baggage::parse("a = 1 ; p")?.to_string(), "a=1;p");
    /// # Ok::<(), agentcore_telemetry::propagation::PropagationError>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

/// The members of `headers`, every rule [`Baggage::parse_all`] documents applied; each
/// member or field breaking one is passed to `skip`, which either fails the parse (its `Err`)
/// or lets it go on without it (`Ok`): past the member limit, or past the received-bytes
/// limit, nothing more is read.
fn parse_with<'a>(
    headers: impl IntoIterator<Item = &'a str>,
    mut skip: impl FnMut(PropagationError) -> Result<(), PropagationError>,
) -> Result<Baggage, PropagationError> {
    // Bytes received (fields trimmed, joined with ","): refused before any member is parsed
    // past RECEIVED_MAX_BYTES, which only a header padded with more than 8192 bytes of
    // optional whitespace could exceed and still fit (`%XX` shrinks three bytes to one).
    let mut received = 0usize;
    // The size of the resulting `baggage-string` (W3C Baggage, "Limits"): the members as
    // `write_to` re-encodes them, joined with ",", whatever optional whitespace and
    // needless percent-encoding they arrived with.
    let mut bytes = 0usize;
    let mut members = Vec::new();
    for header in headers {
        let header = header.trim_matches(is_ows);
        if header.is_empty() {
            continue;
        }
        received += usize::from(received > 0) + header.len();
        if received > RECEIVED_MAX_BYTES {
            skip(PropagationError::TooLong {
                limit: BAGGAGE_MAX_BYTES,
            })?;
            break;
        }
        for member in header.split(',') {
            let member = member.trim_matches(is_ows);
            if member.is_empty() {
                continue;
            }
            if members.len() == BAGGAGE_PARSE_MAX_MEMBERS {
                skip(PropagationError::TooManyMembers {
                    limit: BAGGAGE_PARSE_MAX_MEMBERS,
                })?;
                return Ok(Baggage { members });
            }
            let member = match parse_member(member) {
                Ok(m) => m,
                Err(e) => {
                    skip(e)?;
                    continue;
                }
            };
            let len = usize::from(!members.is_empty()) + member.encoded_len();
            if bytes + len > BAGGAGE_MAX_BYTES {
                skip(PropagationError::TooLong {
                    limit: BAGGAGE_MAX_BYTES,
                })?;
                continue;
            }
            bytes += len;
            members.push(member);
        }
    }
    Ok(Baggage { members })
}

/// `key OWS "=" OWS value *( OWS ";" OWS property )`, already trimmed.
fn parse_member(member: &str) -> Result<BaggageMember, PropagationError> {
    let (head, properties) = member.split_once(';').unwrap_or((member, ""));
    let (key, value) = head
        .split_once('=')
        .ok_or(PropagationError::MissingEquals)?;
    let key = key.trim_matches(is_ows);
    if !is_token(key) {
        return Err(PropagationError::InvalidKey);
    }
    let value = value.trim_matches(is_ows);
    if !value.bytes().all(is_baggage_octet) {
        return Err(PropagationError::InvalidValue);
    }
    Ok(BaggageMember {
        key: key.to_owned(),
        value: percent_decode(value),
        properties: parse_properties(properties)?,
    })
}

/// RFC 7230 `token = 1*tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
fn is_baggage_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// Encodes every byte that is not a baggage-octet, and `%`, as `%XX` (uppercase hex).
fn percent_encode(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in s.as_bytes() {
        if is_baggage_octet(c) && c != b'%' {
            out.push(char::from(c));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 0xf)]));
        }
    }
}

/// The length of `s` once [`percent_encode`]d.
fn encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|c| {
            if is_baggage_octet(c) && c != b'%' {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Decodes `%XX` (either case); a `%` not followed by two hex digits stays literal. Invalid
/// UTF-8 in the result becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return s.to_owned();
    }
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = match (b[i], b.get(i + 1), b.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex_val(h).zip(hex_val(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                bytes.push(byte);
                i += 3;
            }
            None => {
                bytes.push(b[i]);
                i += 1;
            }
        }
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse_lossy` skips what `parse` refuses, member by member, and keeps the rest whole.
    #[test]
    fn parse_lossy_skips_members_and_keeps_the_rest() {
        use PropagationError::*;
        // Each malformed member alone, between good ones.
        for (bad, error) in [
            ("k", MissingEquals),
            ("=v", InvalidKey),
            ("k y=v", InvalidKey),
            ("k=a b", InvalidValue),
            ("k=\"v\"", InvalidValue),
            ("k=\\", InvalidValue),
            ("k=v;p q", InvalidProperty),
            ("k=v;p=a b", InvalidProperty),
        ] {
            let header = format!("a=1, {bad} ,b=2;p");
            assert_eq!(Baggage::parse(&header), Err(error), "{header}");
            let (bag, errors) = Baggage::parse_lossy([header.as_str()]);
            assert_eq!(bag.to_string(), "a=1,b=2;p", "{header}");
            assert_eq!(errors, [error], "{header}");
        }
        // Past 180 members: the first 180 kept, one error for the rest.
        let many = vec!["k=v"; BAGGAGE_PARSE_MAX_MEMBERS + 5].join(",");
        let (bag, errors) = Baggage::parse_lossy([many.as_str()]);
        assert_eq!(bag.len(), BAGGAGE_PARSE_MAX_MEMBERS);
        assert_eq!(
            errors,
            [TooManyMembers {
                limit: BAGGAGE_PARSE_MAX_MEMBERS
            }]
        );
        // A member that would take the list past 8192 bytes is skipped whole; a later, smaller
        // one still fits.
        let big = format!("b={}", "v".repeat(BAGGAGE_MAX_BYTES - 4));
        let header = format!("a=1,{big},c=3");
        let (bag, errors) = Baggage::parse_lossy([header.as_str()]);
        assert_eq!(bag.to_string(), "a=1,c=3");
        assert_eq!(
            errors,
            [TooLong {
                limit: BAGGAGE_MAX_BYTES
            }]
        );
        // Exactly 8192 bytes re-encoded is kept whole.
        let at = format!("a={}", "v".repeat(BAGGAGE_MAX_BYTES - 2));
        let (bag, errors) = Baggage::parse_lossy([at.as_str()]);
        assert_eq!((bag.to_string(), errors), (at, vec![]));
        // Fields past 32768 bytes received: the earlier fields kept, the rest not read.
        let huge = "x".repeat(RECEIVED_MAX_BYTES);
        let (bag, errors) = Baggage::parse_lossy(["a=1", huge.as_str()]);
        assert_eq!(bag.to_string(), "a=1");
        assert_eq!(
            errors,
            [TooLong {
                limit: BAGGAGE_MAX_BYTES
            }]
        );
        // Nothing wrong: the same as `parse_all`, no errors.
        let fields = ["a=1", "", " b = %20 ;p", "a=2"];
        let (bag, errors) = Baggage::parse_lossy(fields);
        assert_eq!(Ok(bag), Baggage::parse_all(fields));
        assert!(errors.is_empty());
    }

    /// `parse_all`'s size limit counts `encoded_len`, which must be exactly what `encode_into`
    /// writes: every byte class (baggage-octets, `%`, the excluded ASCII, multi-byte UTF-8) in
    /// values and property values, and bare properties.
    #[test]
    fn encoded_len_is_the_length_encode_into_writes() {
        let texts = [
            "",
            "v",
            "%",
            "%25",
            "a b",
            "\\",
            "\"",
            ",;",
            "\u{7f}\u{0}\t",
            "é🦀",
            "=x=",
            "~!#$&'()*+-./:<>?@[]^_`{|}",
        ];
        for value in texts {
            for prop in texts {
                let m = BaggageMember::new("k", value)
                    .unwrap()
                    .with_property(BaggageProperty::new("p", Some(prop)).unwrap())
                    .with_property(BaggageProperty::new("flag", None).unwrap());
                let mut out = String::new();
                m.encode_into(&mut out);
                assert_eq!(m.encoded_len(), out.len(), "{out}");
            }
        }
    }
}
