//! `Accept-Encoding` negotiation and gzip framing around a reusable deflate state.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Whether an `Accept-Encoding` header value accepts gzip.
///
/// Parses the comma-separated list of codings with optional `;q=` weights (RFC 9110
/// §12.5.3): `gzip` (or the legacy alias `x-gzip`) with a non-zero weight accepts; an explicit
/// `gzip;q=0` refuses even if `*` is listed; `*` with a non-zero weight accepts when gzip is not
/// named. Malformed weights count as `q=0`.
pub(crate) fn accepts_gzip<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut gzip: Option<bool> = None;
    let mut star: Option<bool> = None;
    for value in values {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            if coding.is_empty() {
                continue;
            }
            let mut q_positive = true;
            for param in parts {
                let Some((name, val)) = param.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("q") {
                    q_positive = parse_qvalue(val.trim()).is_some_and(|q| q > 0);
                }
            }
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                // The most specific (explicit) entry wins; a repeated entry keeps the first.
                gzip.get_or_insert(q_positive);
            } else if coding == "*" {
                star.get_or_insert(q_positive);
            }
        }
    }
    gzip.or(star).unwrap_or(false)
}

/// Parses an RFC 9110 qvalue (`0`, `0.5`, `1.000`) into thousandths, or `None` if malformed.
fn parse_qvalue(s: &str) -> Option<u16> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// gzip member header (RFC 1952): magic, CM=deflate, no flags, MTIME=0, XFL=0, OS=unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

/// A reusable gzip compressor: one raw-deflate state kept across responses, so a steady-state
/// scrape does not allocate compressor tables.
pub(crate) struct Gzipper {
    deflate: Compress,
}

impl Gzipper {
    pub(crate) fn new() -> Self {
        Gzipper {
            deflate: Compress::new(Compression::fast(), false),
        }
    }

    /// Replaces `out` with a complete gzip member holding `input`.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        self.deflate.reset();
        out.clear();
        out.reserve(input.len() / 4 + 64);
        out.extend_from_slice(&GZIP_HEADER);
        let mut rest = input;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(rest, out, FlushCompress::Finish)
                .map_err(std::io::Error::other)?;
            let consumed = usize::try_from(self.deflate.total_in() - before).unwrap_or(rest.len());
            rest = &rest[consumed.min(rest.len())..];
            match status {
                Status::StreamEnd => break,
                // Out of room (or nothing to do without more room): grow and go on.
                Status::Ok | Status::BufError => out.reserve(out.capacity().max(1024)),
            }
        }
        let mut crc = Crc::new();
        crc.update(input);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the input length modulo 2^32 by definition.
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn acc(v: &str) -> bool {
        accepts_gzip([v.as_bytes()])
    }

    #[test]
    fn accept_encoding_parsing() {
        assert!(acc("gzip"));
        assert!(acc("GZip"));
        assert!(acc("deflate, gzip;q=1.0, *;q=0.5"));
        assert!(acc("br;q=1, gzip ; q=0.001"));
        assert!(acc("x-gzip"));
        assert!(acc("*"));
        assert!(!acc("gzip;q=0"));
        assert!(!acc("gzip; q=0.000, *"));
        assert!(!acc("*;q=0"));
        assert!(!acc("identity"));
        assert!(!acc(""));
        assert!(!acc("gzipped"));
        assert!(!acc("gzip;q=2"));
        assert!(!acc("gzip;q=abc"));
        assert!(!acc("gzip;q=0.1234"));
        assert!(!accepts_gzip([&b"\xff\xfe gzip"[..]]));
        assert!(accepts_gzip([&b"br"[..], &b"gzip"[..]]));
        assert!(!accepts_gzip(std::iter::empty()));
    }

    #[test]
    fn gzip_round_trips_and_reuses_state() {
        let mut g = Gzipper::new();
        let mut out = Vec::new();
        for input in [
            &b""[..],
            b"a",
            b"# TYPE x counter\nx_total 1\n",
            &b"abc".repeat(100_000),
        ] {
            g.compress(input, &mut out).unwrap();
            let mut dec = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut dec)
                .unwrap();
            assert_eq!(dec, input);
        }
        // Incompressible input larger than the initial reservation.
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        g.compress(&noise, &mut out).unwrap();
        let mut dec = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut dec)
            .unwrap();
        assert_eq!(dec, noise);
    }
}
