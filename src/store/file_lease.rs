//! The file store's lease: an OS file lock (`flock` on Unix) on the lease's file, and a
//! heartbeat. The kernel releases the lock when its holder exits or is killed, so there is
//! no stale lease to wait out; renewing the lease moves this process's own deadline for a
//! holder that forgot it (a cancelled fetch), so it is held for the whole fetch.
//!
//! A holder that lives but no longer runs (stopped with SIGSTOP, by a debugger, in a paused
//! VM) would keep its lock for good; so each renewal (every third of the lease's TTL) also
//! beats a heartbeat: the lease file's mtime, set through the open file (`futimens`). A
//! waiter that finds the lock held and the heartbeat older than two TTLs takes the lease
//! over, as a Redis lease expires: it holds the lease without the lock, names itself in the
//! file and beats the heartbeat, so other waiters keep waiting; the directory's lock makes
//! one waiter the taker. The stalled holder, if it runs again, learns at its next renewal
//! that the file no longer names it (lost, as on Redis); once it lets go of the lock, the
//! taker's next renewal takes the lock. (In between, at most a third of a TTL, a newcomer
//! finds the lock free and may fetch too.) A taker that gives the lease back clears the
//! heartbeat, so the next waiter takes over at once.
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
    time::{Duration, SystemTime},
};

use tokio::time::Instant;

use super::{file_dir::CacheDir, file_names};
use crate::sync::lock;

/// The first and the longest pause between tries of a lock another process holds.
const LOCK_FIRST_PAUSE: Duration = Duration::from_millis(1);
const LOCK_MAX_PAUSE: Duration = Duration::from_millis(16);

/// The leases this process holds, by key name.
#[derive(Clone, Default)]
pub(super) struct Leases {
    held: Arc<Mutex<HashMap<String, HeldLease>>>,
}

/// A lease held by this process: dropping it unlocks its file.
struct HeldLease {
    holder: Vec<u8>,
    /// Open, and locked unless `locked` is false; the lock lives as long as this file stays
    /// open.
    file: File,
    /// False for a lease taken over from a stalled holder, which still holds the lock.
    locked: bool,
    /// When a holder that forgot the lease loses it; renewing moves it.
    expires: Instant,
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        // Only while the file names us: a lease taken over from us is the taker's.
        if !names(&self.file, &self.holder).unwrap_or(false) {
            return;
        }
        // Still locked here: nobody reads a holder that has let go.
        let _ = self.file.set_len(0);
        if !self.locked {
            // The lock is still the stalled holder's: no heartbeat, so that the next
            // waiter takes over at once, as a released Redis lease is free at once.
            let _ = self.file.set_modified(SystemTime::UNIX_EPOCH);
        }
    }
}

impl Leases {
    /// Locks the lease file of `key` for `holder`, waiting at most `wait` for another
    /// process to let go; false when it did not. Held until [`Self::release`], the
    /// process's end, or `ttl` without a renewal. A holder whose heartbeat is older than two
    /// `ttl`s is stalled: its lease is taken over, without the lock.
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
                    self.hold(key, holder, file, true, ttl);
                    return Ok(true);
                }
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    if stalled(&file, ttl)? && self.take_over(dir, key, holder, file, ttl)? {
                        return Ok(true);
                    }
                }
                Err(TryLockError::Error(error)) => return Err(error),
            }
            if started.elapsed() >= wait {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LOCK_MAX_PAUSE);
        }
    }

    /// The lease file `file` of `key`, whose lock a stalled holder holds, for `holder`:
    /// under the directory's lock, so that of the waiters that find the holder stalled one
    /// takes over (the others then find the taker's heartbeat fresh). False when another
    /// waiter has the directory's lock, took over first, or the file was replaced.
    fn take_over(
        &self,
        dir: &CacheDir,
        key: &str,
        holder: &[u8],
        file: File,
        ttl: Duration,
    ) -> io::Result<bool> {
        let Some(_dir_lock) = dir.try_lock()? else {
            return Ok(false);
        };
        let name = file_names::file_name(key);
        if !dir.still_names(&name, &file)? {
            return Ok(false);
        }
        let locked = match file.try_lock() {
            Ok(()) => true, // let go meanwhile: an ordinary lease
            Err(TryLockError::WouldBlock) => false,
            Err(TryLockError::Error(error)) => return Err(error),
        };
        if !locked && !stalled(&file, ttl)? {
            return Ok(false);
        }
        if !locked {
            tracing::warn!(
                lease = %name,
                "vipps token cache: the lease's holder has not renewed it for over {:?} \
                 (a stopped process?) but still holds its lock; taking the lease over",
                ttl.saturating_mul(2)
            );
        }
        write_holder(&file, holder)?;
        self.hold(key, holder, file, locked, ttl);
        Ok(true)
    }

    /// Renews the lease `holder` holds on `key`: moves its deadline and beats its heartbeat;
    /// a lease taken over from a stalled holder also takes the lock once that holder has let
    /// go. False when this process does not hold it for `holder`, or when its file no
    /// longer names `holder` (another process took it over while this one was stalled).
    pub(super) fn extend(
        &self,
        dir: &CacheDir,
        key: &str,
        holder: &[u8],
        ttl: Duration,
    ) -> io::Result<bool> {
        let mut held = lock(&self.held);
        let Some(lease) = held.get_mut(key).filter(|lease| lease.holder == holder) else {
            return Ok(false);
        };
        if !names(&lease.file, holder)? {
            return Ok(false);
        }
        if !lease.locked {
            match lease.file.try_lock() {
                Ok(()) if dir.still_names(&file_names::file_name(key), &lease.file)? => {
                    lease.locked = true;
                }
                Ok(()) => return Ok(false), // pruned once free: no longer the lease's file
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(error)) => return Err(error),
            }
        }
        beat(&lease.file)?;
        lease.expires = deadline_after(ttl);
        Ok(true)
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

    fn hold(&self, key: &str, holder: &[u8], file: File, locked: bool, ttl: Duration) {
        let expires = deadline_after(ttl);
        let lease = HeldLease {
            holder: holder.to_vec(),
            file,
            locked,
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

/// Writes `holder` over the lease file's content, in place, and beats the heartbeat.
fn write_holder(mut file: &File, holder: &[u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    file.write_all(holder)?;
    file.set_len(holder.len() as u64)?;
    beat(file)
}

/// The heartbeat: the lease file's mtime set to now through the open file (`futimens`); the
/// file is neither renamed nor rewritten.
fn beat(file: &File) -> io::Result<()> {
    file.set_modified(SystemTime::now())
}

/// True when the heartbeat of a held lease file is more than two `ttl`s old: its holder,
/// alive since it holds the lock, has stopped renewing (or its renewals stopped at the end
/// of its fetch's budget). A heartbeat as far in the future counts as old too: the clock was
/// set back, and a stopped holder must not block the others until it catches up.
fn stalled(file: &File, ttl: Duration) -> io::Result<bool> {
    let beaten = file.metadata()?.modified()?;
    let age = SystemTime::now()
        .duration_since(beaten)
        .unwrap_or_else(|ahead| ahead.duration());
    Ok(age > ttl.saturating_mul(2))
}

/// True when the lease file names `holder`.
fn names(file: &File, holder: &[u8]) -> io::Result<bool> {
    Ok(read_small(file)? == holder)
}

/// At most a little more than the longest holder id, from the start: a lease file is
/// never large.
fn read_small(mut file: &File) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
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
