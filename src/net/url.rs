//! `http://host[:port][/path][?query]` URLs, as the crate's HTTP/1.1 clients take them: the host to
//! resolve (an IPv6 literal in brackets, given without them), the port (80 when absent), the
//! authority, the path and the query as written, and the `Host` header (the authority without an
//! IPv6 zone, which has only local significance: RFC 6874 §4).
//!
//! Refused, whoever the caller: other schemes (`https://` with its own error: there is no TLS in
//! this crate), spaces and control characters anywhere, a fragment, a path or query that is not
//! URI text (RFC 3986: non-ASCII text, any of `` "<>[\]^`{|} ``, a `%` without two hex digits;
//! the path and query go into the request line as written), user info (`user@host`), an
//! unclosed `[`, anything but `:port` after `]`, an empty host, an IPv6 address without its
//! brackets, and a port that is not digits making a number in `1..=65535`. An empty port
//! (`http://host:/`) is no port (RFC 3986 §6.2.3), as is its `:` in the `Host` header. What a
//! caller does with the path and the query is its own policy (the Pushgateway client refuses a
//! query; OTLP sends it).

use std::fmt;

/// What an error or a warning shows of a URL someone gave: the URL with its user info (before
/// an `@` in the authority) and its query replaced by `<redacted>`. Both are where credentials
/// are put in URLs (`http://user:token@host`, `?api_key=...`), refused or not, and messages go
/// to logs. Whatever the text: a value that is no URL at all (`user:token@host:4318`, no
/// scheme) is read as an authority.
pub(crate) fn redact_credentials(url: &str) -> String {
    const REDACTED: &str = "<redacted>";
    // A scheme is letters, digits, `+`, `-` and `.` (RFC 3986 §3.1); a `://` after anything
    // else (in a query, say) is no scheme's.
    let scheme = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    };
    let start = url
        .find("://")
        .filter(|&i| scheme(&url[..i]))
        .map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(start);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    let mut shown = head.to_owned();
    match authority.rfind('@') {
        Some(at) => {
            shown.push_str(REDACTED);
            shown.push_str(&authority[at..]);
        }
        None => shown.push_str(authority),
    }
    match rest.split_once('?') {
        Some((path, _)) => {
            shown.push_str(path);
            shown.push('?');
            shown.push_str(REDACTED);
        }
        None => shown.push_str(rest),
    }
    shown
}

/// A parsed `http://` URL, borrowing from the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpUrl<'a> {
    /// The host to resolve (an IPv6 literal without its brackets).
    pub(crate) host: &'a str,
    /// The port, 80 when the URL names none.
    pub(crate) port: u16,
    /// `host[:port]` as written (brackets kept for IPv6, a zone too); the `Host` header is
    /// [`HttpUrl::host_header`].
    pub(crate) authority: &'a str,
    /// The path as written: empty, or starting with `/`.
    pub(crate) path: &'a str,
    /// What follows the first `?` (possibly empty), when there is one.
    pub(crate) query: Option<&'a str>,
}

impl HttpUrl<'_> {
    /// The `Host` header value: [`HttpUrl::authority`] without an IPv6 zone
    /// (`[fe80::1%25eth0]:4318` is sent as `[fe80::1]:4318`, and so is a zone written with a
    /// bare `%`, `[fe80::1%eth0]:4318`: everything from the `%` to the `]`). RFC 6874 §4: "An
    /// HTTP client, proxy, or other intermediary MUST remove any ZoneID attached to an
    /// outgoing URI, as it has only local significance at the sending host" (RFC 9844, which
    /// obsoletes it, keeps zones out of what goes on the wire altogether).
    pub(crate) fn host_header(&self) -> String {
        match self.authority.split_once('%') {
            Some((address, rest)) if self.authority.starts_with('[') => match rest.find(']') {
                Some(end) => format!("{address}{}", &rest[end..]),
                None => self.authority.to_owned(),
            },
            _ => self.authority.to_owned(),
        }
    }

    /// The host as the resolver takes it: an IPv6 zone, written `%25` and the zone in a URL
    /// (RFC 6874: `http://[fe80::1%25eth0]`), becomes `%` and the zone (`fe80::1%eth0`), the
    /// form `getaddrinfo` reads; any other host is as written. The `Host` header leaves the
    /// zone out ([`HttpUrl::host_header`]).
    pub(crate) fn resolver_host(&self) -> String {
        match self.host.split_once("%25") {
            Some((address, zone)) if address.contains(':') => format!("{address}%{zone}"),
            _ => self.host.to_owned(),
        }
    }
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlError {
    /// Not an `http://` URL (and not an `https://` one).
    NotHttp,
    /// An `https://` URL: this crate has no TLS.
    Https,
    /// Something else is wrong; the text says what.
    Invalid(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::NotHttp => f.write_str("must be an http:// URL"),
            UrlError::Https => f.write_str("https:// needs TLS, which this build does not include"),
            UrlError::Invalid(why) => f.write_str(why),
        }
    }
}

/// Parses an `http://host[:port][/path][?query]` URL (the scheme in any case); see the module
/// docs for what is refused.
pub(crate) fn parse(url: &str) -> Result<HttpUrl<'_>, UrlError> {
    let invalid = |why: &str| Err(UrlError::Invalid(why.to_owned()));
    let scheme_len = "http://".len();
    let rest = match url.get(..scheme_len) {
        Some(s) if s.eq_ignore_ascii_case("http://") => &url[scheme_len..],
        _ if url.to_ascii_lowercase().starts_with("https://") => return Err(UrlError::Https),
        _ => return Err(UrlError::NotHttp),
    };
    if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return invalid("must not contain spaces or control characters");
    }
    if url.contains('#') {
        return invalid("must not contain a fragment ('#')");
    }
    let (authority, path_and_query) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    if !is_uri_text(path_and_query) {
        return invalid(
            "the path and query must be URI text (RFC 3986): percent-encode anything else \
             (non-ASCII text, any of \"<>[\\]^`{|}), and write a '%' as %25",
        );
    }
    if authority.contains('@') {
        return invalid("must not contain user info ('user@')");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return invalid("unclosed '[' in the host");
        };
        match after {
            "" => (h, None),
            p => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return invalid("garbage after ']'"),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return invalid("has no host");
    }
    if host.contains(':') && !authority.starts_with('[') {
        return invalid(
            "has more than one ':' after the host: a port is given once, and an IPv6 address \
             must be in brackets ('http://[::1]:4318')",
        );
    }
    let port = match port {
        // An empty port is no port (RFC 3986 `port = *DIGIT`, §6.2.3: `http://h:/` is
        // `http://h/`; OTLP: "if the port is empty or not given, TCP port 80 is the default").
        None | Some("") => 80,
        // Digits only (RFC 3986 `port = *DIGIT`): `u16::from_str` would take a leading `+`.
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(port) if port != 0 => port,
                _ => return Err(UrlError::Invalid(format!("bad port {p:?}"))),
            }
        }
        Some(p) => return Err(UrlError::Invalid(format!("bad port {p:?}"))),
    };
    Ok(HttpUrl {
        host,
        port,
        // `Host: h`, not `Host: h:` (RFC 3986 §3.2.3: omit an empty port and its ':').
        authority: authority.strip_suffix(':').unwrap_or(authority),
        path,
        query,
    })
}

/// Whether `text`, a path and query, holds only what RFC 3986 allows there (§3.3 `pchar`, and
/// `/` and `?`): unreserved and sub-delimiter characters, `:`, `@`, `/`, `?`, and `%` followed by
/// two hex digits. Sent as written in a request line, anything else is not HTTP (RFC 9112 §3.2).
fn is_uri_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'%' => bytes
            .get(i + 1..i + 3)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => true,
        _ => b"-._~!$&'()*+,;=:@/?".contains(&b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User info and queries are where URLs carry credentials; the rest is shown as given.
    #[test]
    fn credentials_are_not_shown() {
        for (url, shown) in [
            (
                "https://user:s3cret@c:4318/v1",
                "https://<redacted>@c:4318/v1",
            ),
            (
                "http://c:4318/v1/traces?api_key=s3cret",
                "http://c:4318/v1/traces?<redacted>",
            ),
            (
                "http://a@b@c/x?k=s3cret#f",
                "http://<redacted>@c/x?<redacted>",
            ),
            ("user:s3cret@c:4318", "<redacted>@c:4318"),
            ("ftp://c/a@b", "ftp://c/a@b"),
            ("c/x?next=http://u:s3cret@h", "c/x?<redacted>"),
            ("http://c:4318", "http://c:4318"),
            ("", ""),
        ] {
            assert_eq!(redact_credentials(url), shown, "{url}");
        }
    }

    fn ok(url: &str) -> HttpUrl<'_> {
        parse(url).unwrap_or_else(|e| panic!("{url:?}: {e}"))
    }

    fn refused(url: &str) -> String {
        match parse(url) {
            Ok(u) => panic!("{url:?} was accepted as {u:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn host_port_path_and_query_as_written() {
        let u = ok("http://localhost:4318/v1/traces");
        assert_eq!(
            (u.host, u.port, u.authority, u.path, u.query),
            ("localhost", 4318, "localhost:4318", "/v1/traces", None)
        );
        // The scheme in any case; the rest as written.
        let u = ok("HTTP://Gw.Example:9091/Prefix/");
        assert_eq!((u.host, u.path), ("Gw.Example", "/Prefix/"));
        // A query, with or without a path before it, and an empty one.
        let u = ok("http://h/a?b=1&c=/d");
        assert_eq!((u.path, u.query), ("/a", Some("b=1&c=/d")));
        let u = ok("http://h:1?q");
        assert_eq!((u.authority, u.path, u.query), ("h:1", "", Some("q")));
        assert_eq!(ok("http://h/?").query, Some(""));
    }

    #[test]
    fn missing_port_is_80_and_missing_path_is_empty() {
        let u = ok("http://collector");
        assert_eq!(
            (u.host, u.port, u.authority, u.path),
            ("collector", 80, "collector", "")
        );
        assert_eq!(ok("http://collector/").path, "/");
        assert_eq!(ok("http://[::1]").port, 80);
        // An empty port is no port (RFC 3986 §6.2.3), the Host header without the ':'.
        for (url, authority, path) in [
            ("http://h:", "h", ""),
            ("http://h:/x", "h", "/x"),
            ("http://h:?q", "h", ""),
            ("http://[::1]:/x", "[::1]", "/x"),
        ] {
            let u = ok(url);
            assert_eq!(
                (u.port, u.authority, u.path),
                (80, authority, path),
                "{url}"
            );
        }
    }

    #[test]
    fn ipv6_literals() {
        let u = ok("http://[::1]:9091/gw");
        assert_eq!((u.host, u.port, u.authority), ("::1", 9091, "[::1]:9091"));
        let u = ok("http://[fe80::1%25eth0]/x");
        assert_eq!(
            (u.host, u.authority),
            ("fe80::1%25eth0", "[fe80::1%25eth0]")
        );
        // The Host header without the zone (RFC 6874 §4); anything else as written.
        assert_eq!(u.host_header(), "[fe80::1]");
        assert_eq!(ok("http://[fe80::1%251]:9/").host_header(), "[fe80::1]:9");
        assert_eq!(ok("http://[::1]:9/").host_header(), "[::1]:9");
        assert_eq!(ok("http://a%25b:9/").host_header(), "a%25b:9");
        assert_eq!(ok("http://h:/").host_header(), "h");
        assert!(refused("http://[::1").contains("unclosed"));
        assert!(refused("http://[::1/x").contains("unclosed"));
        assert!(refused("http://[::1]9091").contains("garbage after ']'"));
        assert!(refused("http://[::1]x:80").contains("garbage after ']'"));
        assert!(refused("http://[]:80").contains("no host"));
        // Unbracketed, the last ':' would start the port and leave a host of ":": refused.
        for url in ["http://::1", "http://::1/x", "http://fe80::1:80"] {
            assert!(refused(url).contains("in brackets"), "{url}");
        }
        // Two ports: the message names that mistake too, not only the IPv6 one.
        assert!(refused("http://h:80:80").contains("a port is given once"));
    }

    /// A zone written with a bare `%` (`[fe80::1%eth0]`, as `ip` and `getaddrinfo` write it,
    /// rather than RFC 6874's `%25`) is taken, and resolved as written, but it used to go out
    /// in the `Host` header too. RFC 6874 §4: "An HTTP client, proxy, or other intermediary
    /// MUST remove any ZoneID attached to an outgoing URI, as it has only local significance
    /// at the sending host"; the module promises the `Host` header without an IPv6 zone.
    #[test]
    fn a_zone_written_with_a_bare_percent_stays_out_of_the_host_header() {
        for (url, host) in [
            ("http://[fe80::1%eth0]:4318/v1/traces", "[fe80::1]:4318"),
            ("http://[fe80::1%lo]/", "[fe80::1]"),
            ("http://[fe80::1%1]:9", "[fe80::1]:9"),
        ] {
            let u = ok(url);
            assert_eq!(u.host_header(), host, "{url}");
            // The resolver still gets the zone, in the form it reads.
            assert!(u.resolver_host().starts_with("fe80::1%"), "{url}");
        }
        assert_eq!(ok("http://[fe80::1%eth0]/").resolver_host(), "fe80::1%eth0");
    }

    #[test]
    fn user_info_is_refused() {
        for url in [
            "http://u@h/",
            "http://u:p@h:80/",
            "http://@h",
            "http://h@[::1]/",
        ] {
            assert!(refused(url).contains("user info"), "{url}");
        }
        // An '@' after the authority is part of the path.
        assert_eq!(ok("http://h/a@b").path, "/a@b");
    }

    #[test]
    fn bad_ports_are_refused() {
        for url in [
            "http://h:0/",
            "http://h:65536",
            "http://h:99999/",
            "http://h:x/",
            "http://h:-1",
            "http://h:+80",
            "http://h: 80",
            "http://h:８０",
        ] {
            let why = refused(url);
            assert!(
                why.contains("bad port") || why.contains("spaces or control"),
                "{url}: {why}"
            );
        }
        assert_eq!(ok("http://h:65535").port, 65535);
        assert_eq!(ok("http://h:00080").port, 80);
    }

    #[test]
    fn other_schemes_and_broken_text_are_refused() {
        assert_eq!(parse("https://h/v1/traces"), Err(UrlError::Https));
        assert_eq!(parse("HTTPS://h"), Err(UrlError::Https));
        assert!(UrlError::Https.to_string().contains("TLS"));
        for url in ["ftp://h", "h:4318", "", "http:/h", "http:", "//h", "é"] {
            assert_eq!(parse(url), Err(UrlError::NotHttp), "{url}");
        }
        for url in ["http://", "http://:80/", "http:///x", "http://?q"] {
            assert!(refused(url).contains("no host"), "{url}");
        }
        for url in [
            "http://h/a b",
            "http://h\n",
            "http://h/\t",
            "http://h/\x7f",
            " http://h",
        ] {
            let why = refused(url);
            assert!(
                why.contains("spaces or control") || why.contains("http://"),
                "{url}: {why}"
            );
        }
        for url in ["http://h/#f", "http://h#", "http://h/?q#f"] {
            assert!(refused(url).contains("fragment"), "{url}");
        }
    }

    #[test]
    fn a_path_or_query_that_is_not_uri_text_is_refused() {
        // RFC 3986 §3.3, §3.4: a path and a query hold unreserved and reserved characters and
        // `%` with two hex digits; sent as written, anything else made a request line that is
        // not HTTP (RFC 9112 §3.2: the request target is a URI).
        for url in [
            "http://h/é",
            "http://h/a\"b",
            "http://h/a{b}",
            "http://h/a|b",
            "http://h/a\\b",
            "http://h/a^b",
            "http://h/a`b",
            "http://h/<a>",
            "http://h/a[b]",
            "http://h/%zz",
            "http://h/%4",
            "http://h/a%",
            "http://h/?q=é",
            "http://h?%g0",
        ] {
            let why = refused(url);
            assert!(why.contains("percent-encode"), "{url}: {why}");
        }
        // Percent-encoded, and every character RFC 3986 allows there: as written.
        let u = ok("http://h/%C3%A9/a-._~!$&'()*+,;=:@?q=/?%2F");
        assert_eq!(
            (u.path, u.query),
            ("/%C3%A9/a-._~!$&'()*+,;=:@", Some("q=/?%2F"))
        );
    }

    #[test]
    fn the_resolver_host_decodes_an_ipv6_zone_only() {
        use std::net::{SocketAddr, ToSocketAddrs};
        let host = |url| parse(url).unwrap().resolver_host();
        assert_eq!(host("http://[fe80::1%25eth0]:1/"), "fe80::1%eth0");
        assert_eq!(host("http://[fe80::1%251]"), "fe80::1%1");
        // As written (`fe80::1%251`), the resolver refused it ("Name or service not known")
        // or read zone 251; decoded, it is zone 1.
        let addrs: Vec<_> = (host("http://[fe80::1%251]").as_str(), 9)
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap();
        match addrs.as_slice() {
            [SocketAddr::V6(a)] => assert_eq!((a.ip().segments()[0], a.scope_id()), (0xfe80, 1)),
            other => panic!("{other:?}"),
        }
        // A zone by interface name (Linux: the loopback is `lo`).
        #[cfg(target_os = "linux")]
        assert!(("fe80::1%lo", 9).to_socket_addrs().is_ok());
        assert_eq!(host("http://[::1]:9"), "::1");
        // `%25` in a host name is not a zone (and resolves as written, or not at all).
        assert_eq!(host("http://a%25b:1"), "a%25b");
    }
}
