//! The file store's lease: an OS file lock (`flock` on Unix) on the lease's file, and
//! nothing else. The kernel releases it when its holder exits or is killed, so there is no
//! stale lease to wait out; renewing it only moves this process's own deadline for a
//! holder that forgot it (a cancelled fetch), so it is held for the whole fetch.
//!
//! The file is only ever a lock file, written in place and never renamed or replaced: its
//! holder writes its holder id into it once it holds the lock, so that other processes can
//! name whom they wait for (and match the failure marker the holder may leave). A free lock
//! means no holder, whatever the file still says.

use std::{
    collections::HashMap,
    fs::{File, TryLockError},
    io::{self, Read as _, Seek as _, SeekFrom, Write as _},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use tokio::time::Instant;

use super::{file_dir::CacheDir, file_names};
use crate::sync::lock;

/// The first and the longest pause between tries of a lock another process holds.
const LOCK_FIRST_PAUSE: Duration = Duration::from_millis(1);
const LOCK_MAX_PAUSE: Duration = Duration::from_millis(16);

/// The leases this process holds, by key name.
#[derive(Default)]
pub(super) struct Leases {
    held: Arc<Mutex<HashMap<String, HeldLease>>>,
}

/// A lease held by this process: dropping it unlocks its file.
struct HeldLease {
    holder: Vec<u8>,
    /// Open and locked; the lock lives as long as this file stays open.
    file: File,
    /// When a holder that forgot the lease loses it; renewing moves it.
    expires: Instant,
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        // Still locked here: nobody reads a holder that has let go.
        let _ = self.file.set_len(0);
    }
}

impl Leases {
    /// Locks the lease file of `key` for `holder`, waiting at most `wait` for another
    /// process to let go; false when it did not. Held until [`Self::release`], the
    /// process's end, or `ttl` without a renewal.
    pub(super) async fn take(
        &self,
        dir: &CacheDir,
        key: &str,
        holder: &[u8],
        ttl: Duration,
        wait: Duration,
    ) -> io::Result<bool> {
        self.drop_expired();
        if lock(&self.held).contains_key(key) {
            return Ok(false);
        }
        let name = file_names::file_name(key);
        let started = Instant::now();
        let mut pause = LOCK_FIRST_PAUSE;
        loop {
            let file = dir.open_lock(&name)?;
            match file.try_lock() {
                // Unless pruned between our open and our lock: then try the file now in its
                // place.
                Ok(()) if dir.still_names(&name, &file)? => {
                    write_holder(&file, holder)?;
                    self.hold(key, holder, file, ttl);
                    return Ok(true);
                }
                Ok(()) | Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(error)) => return Err(error),
            }
            if started.elapsed() >= wait {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LOCK_MAX_PAUSE);
        }
    }

    /// Moves the deadline of the lease `holder` holds on `key`; false when this process
    /// does not hold it for `holder`. The file is not touched.
    pub(super) fn extend(&self, key: &str, holder: &[u8], ttl: Duration) -> bool {
        let mut held = lock(&self.held);
        match held.get_mut(key) {
            Some(lease) if lease.holder == holder => {
                lease.expires = deadline_after(ttl);
                true
            }
            _ => false,
        }
    }

    /// Lets go of the lease on `key` if `holder` holds it: `Some(true)`; `Some(false)` when
    /// another holder of this process holds it; `None` when this process holds none.
    pub(super) fn release(&self, key: &str, holder: &[u8]) -> Option<bool> {
        let released = {
            let mut held = lock(&self.held);
            if held.get(key)?.holder != holder {
                return Some(false);
            }
            held.remove(key)
        };
        drop(released); // unlocked here, outside the map's lock
        Some(true)
    }

    /// The holder of this process's lease on `key`, if any.
    pub(super) fn holder(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.held).get(key).map(|lease| lease.holder.clone())
    }

    fn hold(&self, key: &str, holder: &[u8], file: File, ttl: Duration) {
        let expires = deadline_after(ttl);
        let lease = HeldLease {
            holder: holder.to_vec(),
            file,
            expires,
        };
        lock(&self.held).insert(key.to_owned(), lease);
        expire_later(Arc::downgrade(&self.held), key, holder, expires);
    }

    /// A lease whose holder forgot it (its task was cancelled) lasts until its deadline.
    fn drop_expired(&self) {
        let now = Instant::now();
        let expired: Vec<_> = lock(&self.held)
            .extract_if(|_, lease| lease.expires <= now)
            .collect();
        drop(expired); // unlocked here, outside the map's lock
    }
}

/// The holder of the lease file `name` when another process (or another store of this
/// one) holds its lock; `None` when nobody does, or when it holds no holder id yet.
pub(super) fn holder_elsewhere(dir: &CacheDir, name: &str) -> io::Result<Option<Vec<u8>>> {
    let Some(file) = dir.open_file(name)? else {
        return Ok(None);
    };
    match file.try_lock_shared() {
        // Free: dropping the file lets go of our look at once.
        Ok(()) => return Ok(None),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(error)) => return Err(error),
    }
    let holder = read_small(&file)?;
    Ok(file_names::is_holder_id(&holder).then_some(holder))
}

/// Removes the lease file `name` if nobody holds it and it holds what our lease files
/// hold (nothing, or a holder id); true when removed. Removed while locked, and a taker
/// checks that its locked file is still in place, so no two processes ever hold one lease.
pub(super) fn remove_if_free(dir: &CacheDir, name: &str) -> io::Result<bool> {
    let Some(file) = dir.open_file(name)? else {
        return Ok(false);
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    let content = read_small(&file)?;
    let ours = content.is_empty() || file_names::is_holder_id(&content);
    if !ours || !dir.still_names(name, &file)? {
        return Ok(false);
    }
    dir.remove(name)?;
    Ok(true)
}

/// Writes `holder` over the lease file's content, in place.
fn write_holder(mut file: &File, holder: &[u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    file.write_all(holder)?;
    file.set_len(holder.len() as u64)
}

/// At most a little more than the longest holder id: a lease file is never large.
fn read_small(file: &File) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(128).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `ttl` from now on tokio's clock; a TTL too long for the clock: a year.
fn deadline_after(ttl: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(ttl)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Releases the lease once its deadline has passed, if `holder` still holds it and has not
/// renewed it meanwhile; on the current runtime (if any; otherwise the next
/// [`Leases::take`] drops it).
fn expire_later(
    held: Weak<Mutex<HashMap<String, HeldLease>>>,
    key: &str,
    holder: &[u8],
    mut expires: Instant,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (key, holder) = (key.to_owned(), holder.to_vec());
    runtime.spawn(async move {
        loop {
            tokio::time::sleep_until(expires).await;
            let Some(held) = held.upgrade() else { return };
            let expired = {
                let mut held = lock(&held);
                match held.get(&key) {
                    Some(lease) if lease.holder == holder && lease.expires > expires => {
                        expires = lease.expires; // renewed: look again then
                        None
                    }
                    Some(lease) if lease.holder == holder => held.remove(&key),
                    _ => return,
                }
            };
            if expired.is_some() {
                return; // dropped here: unlocked
            }
        }
    });
}
