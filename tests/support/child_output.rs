//! Reading what a child test process (this test binary, run again with `--exact NAME`)
//! printed.

/// The rest of the first line of `output` that carries `tag`, wherever `tag` is in the line.
///
/// Not only at the start of a line: run with one test thread (a one-CPU machine, or
/// `RUST_TEST_THREADS=1`, which the child inherits), libtest prints `test NAME ... ` before the
/// test runs, so the test's first line follows it on the same line. Tests that looked for
/// their tag at the start of a line failed that way (`no STATS line`), or waited for it for
/// ever.
/// For example, `tagged("test child ... STATS a=1\nok\n", "STATS ")` is `Some("a=1")`.
pub fn tagged<'a>(output: &'a str, tag: &str) -> Option<&'a str> {
    output
        .lines()
        .find_map(|l| l.find(tag).map(|at| &l[at + tag.len()..]))
}
