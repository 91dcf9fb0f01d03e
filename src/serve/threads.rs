//! The server's threads end by a deadline: each signals its exit, and whoever stops the server
//! joins those that have exited by then and leaves the rest (a source that never returns) to
//! end on their own.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

/// Sends its thread's index on the exit channel when dropped: as the thread ends, however it
/// ends.
pub(crate) struct ExitSignal {
    index: usize,
    exited: Sender<usize>,
}

impl ExitSignal {
    pub(crate) fn new(index: usize, exited: Sender<usize>) -> Self {
        ExitSignal { index, exited }
    }
}

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let _ = self.exited.send(self.index);
    }
}

/// Joins the threads in `threads` (indexed as their [`ExitSignal`]s) as they exit, until every
/// thread with `worth_waiting[i]` has, or until `deadline`; threads not worth waiting for (a
/// source known to be overdue) are joined only if they exit meanwhile. Returns how many threads
/// were left running (detached).
pub(crate) fn join_by(
    deadline: Instant,
    threads: &mut [Option<JoinHandle<()>>],
    worth_waiting: &[bool],
    exited: &Receiver<usize>,
) -> usize {
    let mut awaited = (0..threads.len())
        .filter(|&i| threads[i].is_some() && worth_waiting.get(i).copied().unwrap_or(true))
        .count();
    let join = |index: usize, threads: &mut [Option<JoinHandle<()>>]| -> bool {
        match threads.get_mut(index).and_then(Option::take) {
            Some(handle) => {
                // The thread is past its last statement; a panic there would be a server bug,
                // and re-raising it from `Drop` could abort, so it is dropped.
                let _ = handle.join();
                worth_waiting.get(index).copied().unwrap_or(true)
            }
            None => false,
        }
    };
    while awaited > 0 {
        match exited.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(index) => {
                if join(index, threads) {
                    awaited -= 1;
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    while let Ok(index) = exited.try_recv() {
        join(index, threads);
    }
    // Dropping a handle detaches its thread.
    let mut left = 0;
    for handle in threads.iter_mut() {
        left += usize::from(handle.take().is_some());
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn joins_what_exits_and_leaves_what_does_not() {
        let (tx, rx) = std::sync::mpsc::channel();
        // The quick thread must have signalled its exit before `join_by` starts: told only
        // to exit at once, it had to be scheduled within the 200 ms below, which a loaded
        // machine need not do (then `left` was 2). It says so on a channel of the test's,
        // after its exit signal is sent.
        let (gone_tx, gone_rx) = std::sync::mpsc::channel::<()>();
        let quick = {
            let signal = ExitSignal::new(0, tx.clone());
            std::thread::spawn(move || {
                drop(signal);
                let _ = gone_tx.send(());
            })
        };
        gone_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the quick thread ran within 60 s");
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let stuck = {
            let signal = ExitSignal::new(1, tx);
            std::thread::spawn(move || {
                let _ = hold_rx.recv();
                drop(signal);
            })
        };
        let mut threads = vec![Some(quick), Some(stuck)];
        let started = Instant::now();
        let left = join_by(
            Instant::now() + Duration::from_millis(200),
            &mut threads,
            &[true, true],
            &rx,
        );
        assert_eq!(left, 1);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(2));
        assert!(threads.iter().all(Option::is_none));
        drop(hold_tx); // lets the detached thread end
    }

    #[test]
    fn does_not_wait_for_a_thread_not_worth_waiting_for() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let stuck = {
            let signal = ExitSignal::new(0, tx);
            std::thread::spawn(move || {
                let _ = hold_rx.recv();
                drop(signal);
            })
        };
        let mut threads = vec![Some(stuck)];
        let started = Instant::now();
        let left = join_by(
            Instant::now() + Duration::from_secs(10),
            &mut threads,
            &[false],
            &rx,
        );
        assert_eq!(left, 1);
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(hold_tx);
    }
}
