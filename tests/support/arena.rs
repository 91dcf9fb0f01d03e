//! Exhausting the global slot arena on purpose (a test binary that does holds a single test).

use agentcore_telemetry::Error;

/// Makes metrics with `make` until the arena is exhausted (`SlotArenaExhausted`), and returns
/// them, held; panics on any other error, or if the arena never fills.
pub fn fill<T>(make: impl Fn() -> Result<T, Error>) -> Vec<T> {
    let mut held = Vec::new();
    loop {
        match make() {
            Ok(m) => held.push(m),
            Err(Error::SlotArenaExhausted) => return held,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(held.len() < 1 << 26, "the arena never filled");
    }
}
