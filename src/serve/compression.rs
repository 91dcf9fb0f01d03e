//! `Accept-Encoding` negotiation, and gzip bodies assembled from separately compressed pieces.

use flate2::{Compress, Compression, Crc, FlushCompress};

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
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

/// A reusable raw-deflate compressor producing *segments*: the compressed form of one piece of
/// a response body, ending on a byte boundary with a sync flush and no final block. Segments of
/// consecutive pieces concatenate into one deflate stream (as pigz joins its blocks), so each
/// source's part is compressed once, on its own encoder thread, and the I/O thread only frames
/// them: [`GZIP_HEADER`], the segments, [`append_stored_final`] and [`append_trailer`].
pub(crate) struct Deflater {
    deflate: Compress,
}

impl Deflater {
    pub(crate) fn new() -> Self {
        Deflater {
            deflate: Compress::new(Compression::fast(), false),
        }
    }

    /// Replaces `out` with the segment of `input` (empty for empty input).
    pub(crate) fn segment(&mut self, input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        self.deflate.reset();
        out.clear();
        if input.is_empty() {
            return Ok(());
        }
        out.reserve(input.len() / 4 + 64);
        let mut rest = input;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(rest, out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
            let consumed = usize::try_from(self.deflate.total_in() - before).unwrap_or(rest.len());
            rest = &rest[consumed.min(rest.len())..];
            // The flush is complete once all input is in and the output did not fill up.
            if rest.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// Appends `data` as stored (uncompressed) deflate blocks, the last one final (RFC 1951
/// §3.2.4): how the I/O thread closes the stream with the server's own small section without
/// compressing anything itself. Must follow a byte-aligned point (the start, or a segment).
pub(crate) fn append_stored_final(data: &[u8], out: &mut Vec<u8>) {
    let mut chunks = data.chunks(u16::MAX as usize).peekable();
    if chunks.peek().is_none() {
        // An empty final stored block.
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        // BFINAL in bit 0, BTYPE = 00 (stored) in bits 1-2, then padding to the byte.
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Appends the gzip trailer: CRC-32 and length (modulo 2^32) of the whole uncompressed body.
pub(crate) fn append_trailer(crc: &Crc, out: &mut Vec<u8>) {
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
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

    /// Frames `pieces` as the server does: each but the last as a segment, the last stored.
    fn framed(d: &mut Deflater, pieces: &[&[u8]]) -> Vec<u8> {
        let (tail, segments) = pieces.split_last().unwrap();
        let mut body = GZIP_HEADER.to_vec();
        let mut crc = Crc::new();
        let mut seg = Vec::new();
        for piece in segments {
            d.segment(piece, &mut seg).unwrap();
            body.extend_from_slice(&seg);
            let mut part = Crc::new();
            part.update(piece);
            crc.combine(&part);
        }
        append_stored_final(tail, &mut body);
        crc.update(tail);
        append_trailer(&crc, &mut body);
        body
    }

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut dec = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut dec)
            .unwrap();
        dec
    }

    #[test]
    fn segments_and_a_stored_tail_make_one_gzip_member() {
        let mut d = Deflater::new();
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let big = b"abc".repeat(100_000);
        let tail = b"x".repeat(70_000); // more than one stored block
        let cases: Vec<Vec<&[u8]>> = vec![
            vec![b""],
            vec![b"# TYPE x counter\nx_total 1\n"],
            vec![b"a 1\n", b"b 2\n"],
            vec![b"", b"", b"tail\n"],
            vec![&big, b"", &noise, b"self 1\n"],
            vec![b"head\n", &tail],
            vec![&noise, b""],
        ];
        for pieces in cases {
            let body = framed(&mut d, &pieces);
            assert_eq!(gunzip(&body), pieces.concat(), "{} pieces", pieces.len());
        }
    }

    #[test]
    fn a_segment_of_empty_input_is_empty() {
        let mut seg = vec![1, 2, 3];
        Deflater::new().segment(b"", &mut seg).unwrap();
        assert!(seg.is_empty());
    }
}
