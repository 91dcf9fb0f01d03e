//! A one-way flag that tasks on the I/O thread can await (stop, evict, preempt).

use std::cell::Cell;

use tokio::sync::Notify;

/// Raised once, never lowered; [`raised`](Self::raised) completes once it is up. For one thread:
/// the flag is a `Cell`, and a waiter registers with the `Notify` before it reads the flag, so a
/// raise between the two is never missed.
#[derive(Debug, Default)]
pub(crate) struct Flag {
    up: Cell<bool>,
    notify: Notify,
}

impl Flag {
    pub(crate) fn raise(&self) {
        self.up.set(true);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.get()
    }

    /// Completes once the flag is up (at once if it already is).
    pub(crate) async fn raised(&self) {
        loop {
            let notified = self.notify.notified();
            if self.up.get() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn waiters_see_a_raise_before_and_after_they_wait() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let flag = Rc::new(Flag::default());
            let waiter = {
                let flag = Rc::clone(&flag);
                tokio::task::spawn_local(async move { flag.raised().await })
            };
            tokio::task::yield_now().await;
            assert!(!flag.is_up());
            flag.raise();
            waiter.await.unwrap();
            // Already up: completes at once.
            flag.raised().await;
        });
    }
}
