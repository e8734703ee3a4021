//! Store work finished after the caller has its token (saving the record, giving a dropped
//! fetch's lease back), counted so that a short-lived process (the CLI) can wait for it
//! before it exits: [`settle`].

use std::{
    future::Future,
    sync::{
        LazyLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

/// Background store operations not yet finished, in this process.
static PENDING: AtomicUsize = AtomicUsize::new(0);
/// Woken when [`PENDING`] drops to zero.
static SETTLED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Counts one operation while it lives.
struct Pending;

impl Pending {
    fn new() -> Self {
        PENDING.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if PENDING.fetch_sub(1, Ordering::SeqCst) == 1 {
            SETTLED.notify_waiters();
        }
    }
}

/// Runs `work` on the current runtime, counted until it ends; without a runtime, nothing
/// runs (what it would have done expires by itself in the store).
pub(crate) fn spawn(work: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let pending = Pending::new();
        runtime.spawn(async move {
            work.await;
            drop(pending);
        });
    }
}

/// Waits at most `limit` for this process's background store operations (records being
/// saved after their token was handed out, leases being given back) to finish. True when
/// none is left. A process about to exit calls it so that the fleet gets its record.
pub async fn settle(limit: Duration) -> bool {
    // A limit beyond the clock's range: no deadline.
    let deadline = tokio::time::Instant::now().checked_add(limit);
    loop {
        let settled = SETTLED.notified();
        if PENDING.load(Ordering::SeqCst) == 0 {
            return true;
        }
        let Some(deadline) = deadline else {
            settled.await;
            continue;
        };
        if tokio::time::timeout_at(deadline, settled).await.is_err() {
            return PENDING.load(Ordering::SeqCst) == 0;
        }
    }
}
