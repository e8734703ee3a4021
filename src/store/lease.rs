//! The lease this process holds while it fetches for the fleet: a holder id unique to this
//! process and fetch, renewed (compare-and-extend) every third of its life while the fetch
//! runs, and given back when the fetch ends or is dropped (a guard). A lease whose holder
//! dies expires by itself within one short lifetime.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::future::{Either, select};
use tokio::time::Instant;

use super::{TokenStore, background, degraded};
use crate::sync::lock;

/// This process's part of every holder id: random, so that two processes never share one.
static PROCESS: LazyLock<u64> = LazyLock::new(|| fastrand::u64(..));
/// Numbers the fetches of this process.
static NEXT_FETCH: AtomicU64 = AtomicU64::new(0);
/// The holder ids of this process's fetches still running (or still saving), each with
/// how many guards keep it live: the caller's [`Holder`] and, once it has the lease, its
/// [`LeaseGuard`] (which may outlive the caller while the record is saved).
static LIVE: LazyLock<Mutex<HashMap<Vec<u8>, usize>>> = LazyLock::new(Mutex::default);

fn mark_live(holder: &[u8]) {
    *lock(&LIVE).entry(holder.to_vec()).or_default() += 1;
}

fn unmark_live(holder: &[u8]) {
    let mut live = lock(&LIVE);
    if let Some(count) = live.get_mut(holder) {
        *count -= 1;
        if *count == 0 {
            live.remove(holder);
        }
    }
}

/// A new holder id (16 hex digits of the process, 16 of the fetch), live from now until
/// the returned guard is dropped. Live from the start, not only once the lease is taken:
/// between a store's taking the lease for it and its guard, another caller of this process
/// would otherwise see this process's lease without a live holder, take it for abandoned,
/// and fetch a second time.
pub(crate) fn new_holder() -> Holder {
    let fetch = NEXT_FETCH.fetch_add(1, Ordering::Relaxed);
    let id = format!("{:016x}{fetch:016x}", *PROCESS).into_bytes();
    mark_live(&id);
    Holder { id }
}

/// A holder id, live while this lives.
pub(crate) struct Holder {
    id: Vec<u8>,
}

impl std::ops::Deref for Holder {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.id
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        unmark_live(&self.id);
    }
}

/// True when `holder` is a fetch of this process that no longer runs: its runtime was
/// shut down or its future dropped before it could give the lease back. This process must
/// not wait for its own dead fetch.
pub(crate) fn abandoned_by_this_process(holder: &[u8]) -> bool {
    let ours = format!("{:016x}", *PROCESS);
    holder.starts_with(ours.as_bytes()) && !lock(&LIVE).contains_key(holder)
}

/// Gives the lease back when dropped still armed: the fetch was dropped (its caller gave
/// up, its runtime shut down). Until disarmed, the holder id counts as live.
pub(crate) struct LeaseGuard {
    store: Option<Arc<dyn TokenStore>>,
    lease: String,
    holder: Vec<u8>,
    armed: bool,
}

impl LeaseGuard {
    /// Marks `holder` as live while the guard lives.
    pub(crate) fn new(store: &dyn TokenStore, lease: &str, holder: &[u8]) -> Self {
        mark_live(holder);
        Self {
            store: store.detached(),
            lease: lease.to_owned(),
            holder: holder.to_vec(),
            armed: true,
        }
    }

    /// The lease is given back by other means (save-and-release, fail-and-release).
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        unmark_live(&self.holder);
        if !self.armed {
            return;
        }
        // Without a detached handle or a runtime the lease expires by itself, and this
        // process's next fetch takes it over (`abandoned_by_this_process`).
        if let Some(store) = self.store.take() {
            let lease = std::mem::take(&mut self.lease);
            let holder = std::mem::take(&mut self.holder);
            background::spawn(async move {
                let limit = store.config().operation_timeout;
                let released = tokio::time::timeout(limit, store.delete_if_equal(&lease, &holder));
                match released.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => degraded("release", &error),
                    Err(_) => degraded("release", &super::StoreError::Timeout(limit)),
                }
            });
        }
    }
}

/// Runs `fetch` while renewing the lease every third of `ttl`, until the fetch ends or
/// `budget` (the client's own limit for a fetch) has passed: a fetch slower than its budget
/// is stuck, and the fleet should not wait for it any longer.
pub(crate) async fn renewed_while<F: Future>(
    store: &dyn TokenStore,
    lease: &str,
    holder: &[u8],
    ttl: Duration,
    budget: Duration,
    fetch: F,
) -> F::Output {
    let renewing = renew(
        store,
        lease,
        holder,
        ttl,
        Instant::now().checked_add(budget),
    );
    let fetch = std::pin::pin!(fetch);
    let renewing = std::pin::pin!(renewing);
    match select(fetch, renewing).await {
        Either::Left((output, _)) => output,
        Either::Right(((), fetch)) => fetch.await,
    }
}

/// Extends the lease every third of its life; returns when it is lost, when the store
/// fails (the lease then expires by itself), or at `until` (`None`: beyond the clock).
async fn renew(
    store: &dyn TokenStore,
    lease: &str,
    holder: &[u8],
    ttl: Duration,
    until: Option<Instant>,
) {
    let every = ttl / 3;
    loop {
        tokio::time::sleep(every).await;
        if until.is_some_and(|until| Instant::now() >= until) {
            return;
        }
        let limit = store.config().operation_timeout.min(every);
        match tokio::time::timeout(limit, store.extend_if_equal(lease, holder, ttl)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return,
            Ok(Err(error)) => return degraded("renew", &error),
            Err(_) => return degraded("renew", &super::StoreError::Timeout(limit)),
        }
    }
}
