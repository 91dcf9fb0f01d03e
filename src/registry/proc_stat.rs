//! The fields of `/proc/self/stat` (proc(5)) the process metrics use, read into a stack buffer
//! and parsed without allocating. Its own module because two others need it: the process
//! metrics ([`process`](super::process)) read it, and a scrape's scratch
//! ([`Scratch`](super::Scratch)) keeps one reading per scrape for the four of them it feeds.

use std::io::Read;

/// The fields of `/proc/self/stat` we use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Stat {
    /// utime + stime, clock ticks.
    pub(super) cpu_ticks: u64,
    pub(super) threads: u64,
    /// Clock ticks after boot.
    pub(super) start_ticks: u64,
    pub(super) vsize: u64,
    /// Pages.
    pub(super) rss: u64,
}

/// Parses a `/proc/<pid>/stat` line (proc(5)): `pid (comm) state ppid ...`; the command name
/// may hold spaces and parentheses, so the fields are counted from the last `)`.
fn parse_stat(line: &[u8]) -> Option<Stat> {
    let close = line.iter().rposition(|&b| b == b')')?;
    let rest = line.get(close + 2..)?;
    // Field 3 (state) is the first after `) `.
    let mut fields = rest
        .split(|&b| b == b' ' || b == b'\n')
        .filter(|f| !f.is_empty());
    let mut stat = Stat::default();
    let mut utime = 0u64;
    for n in 3..=24u32 {
        let field = fields.next()?;
        let number = || -> Option<u64> {
            let mut v = 0u64;
            for &b in field {
                if !b.is_ascii_digit() {
                    return None;
                }
                v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            }
            Some(v)
        };
        match n {
            14 => utime = number()?,
            15 => stat.cpu_ticks = utime.saturating_add(number()?),
            20 => stat.threads = number()?,
            22 => stat.start_ticks = number()?,
            23 => stat.vsize = number()?,
            // rss may be negative in theory (a long): treat that as unreadable.
            24 => stat.rss = number()?,
            _ => {}
        }
    }
    Some(stat)
}

/// Reads `/proc/self/stat` into a stack buffer.
pub(super) fn read_stat() -> Option<Stat> {
    #[cfg(test)]
    tests::STAT_READS.with(|n| n.set(n.get() + 1));
    let mut buf = [0u8; 1024];
    // `File::open` converts a short path on the stack: no allocation.
    let mut file = std::fs::File::open("/proc/self/stat").ok()?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_stat(&buf[..len])
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// How many times this thread read `/proc/self/stat` (a scrape reads on the
        /// scraping thread).
        pub(in crate::registry) static STAT_READS: Cell<u32> = const { Cell::new(0) };
    }

    #[test]
    fn parses_a_stat_line_whose_command_has_spaces_and_parentheses() {
        // proc(5) fields 1..=24 with a hostile comm; utime 14 = 150, stime 15 = 50,
        // num_threads 20 = 9, starttime 22 = 12345, vsize 23 = 4096000, rss 24 = 300.
        let line = b"4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 9 0 12345 4096000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            s,
            Stat {
                cpu_ticks: 200,
                threads: 9,
                start_ticks: 12345,
                vsize: 4_096_000,
                rss: 300,
            }
        );
        assert_eq!(parse_stat(b"4242 (x) S 1 2"), None, "truncated");
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b""), None);
    }

    /// A well-formed stat line with `comm` and fields 14 (utime), 15 (stime) and 24 (rss)
    /// replaced.
    fn line(comm: &str, utime: &str, stime: &str, rss: &str) -> Vec<u8> {
        format!(
            "1234 ({comm}) R 1 1234 1234 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 3 0 777 8192000 {rss} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        )
        .into_bytes()
    }

    #[test]
    fn hostile_stat_lines_parse_or_give_none_never_panic() {
        // The comm splits at the last `)`, whatever it holds (prctl(PR_SET_NAME) takes any
        // bytes but NUL): spaces, parentheses, `) ` followed by numbers, a newline.
        for comm in [
            "a) b) (c",
            ") 9 9 9 9 9 9 9 9 9 9 9 9",
            "x\ny",
            "((",
            "",
            "a b",
        ] {
            let s = parse_stat(&line(comm, "10", "5", "7")).unwrap_or_else(|| panic!("{comm:?}"));
            assert_eq!(
                (s.cpu_ticks, s.threads, s.start_ticks, s.rss),
                (15, 3, 777, 7),
                "{comm:?}"
            );
        }
        // Runs of spaces between fields.
        let spaced = String::from_utf8(line("a", "10", "5", "7"))
            .unwrap()
            .replace(' ', "  ");
        assert_eq!(parse_stat(spaced.as_bytes()).map(|s| s.cpu_ticks), Some(15));
        // Non-numeric, negative, overflowing: that reading is refused, nothing panics.
        for (u, s, r) in [
            ("1x", "5", "7"),
            ("10", "-5", "7"),
            ("10", "5", "-1"),
            ("18446744073709551616", "5", "7"),
            ("99999999999999999999999", "5", "7"),
        ] {
            assert_eq!(parse_stat(&line("a", u, s, r)), None, "{u} {s} {r}");
        }
        // An empty field is a run of spaces (the kernel writes neither): the fields after
        // it shift, which no parser can tell from a shorter line of another kernel.
        assert!(parse_stat(&line("a", "10", "", "7")).is_some());
        // u64::MAX ticks each: the sum saturates.
        let max = u64::MAX.to_string();
        assert_eq!(
            parse_stat(&line("a", &max, &max, "7")).map(|s| s.cpu_ticks),
            Some(u64::MAX)
        );
        // Truncated anywhere: every prefix parses to None or to the whole line's values.
        let full = line("a) b", "10", "5", "7");
        let whole = parse_stat(&full);
        for n in 0..full.len() {
            let got = parse_stat(&full[..n]);
            assert!(
                got.is_none() || got.map(|s| s.cpu_ticks) == Some(15),
                "prefix {n}"
            );
        }
        assert!(whole.is_some());
        // A `)` as the last byte, or with nothing after it.
        assert_eq!(parse_stat(b"1 (a)"), None);
        assert_eq!(parse_stat(b"1 (a) "), None);
        assert_eq!(parse_stat(b")"), None);
        assert_eq!(parse_stat(&[0xff; 2048]), None);
    }
}
