//! [`Slot`] and [`Slots`]: the cache of one key, and a map of them with a bound.
//!
//! A map keyed by (flow, keys, base URL, path, MSN, scope) grows with every merchant a
//! partner serves and every key rotation, so it is bounded. When it is full, a sweep frees an
//! eighth of it (so sweeps are rare): first idle slots with no usable token, then idle ones,
//! then ones with no usable token, then any other. Idle means unused since the last sweep (a
//! "second chance" bit, set on a cache hit only when clear, so a hit writes nothing shared). A slot is never evicted while a fetch for it is in
//! flight or while a [`crate::TokenProvider`] handle points at it: that keeps single flight
//! whole. So the bound holds for slots no live handle pins; handles a service keeps (one
//! per merchant in a map of its own, say) count on top.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use super::{refresh::Cached, single_flight::SingleFlight};
use crate::{error::Error, sync::lock, wire::token::AccessToken};

/// The default for [`crate::TokenProviderBuilder::max_slots`].
///
/// A slot holds one token (a JWT of 1 to 2 KB) and its headers: 1024 of them are a few MB at
/// most, and cover a partner platform's active merchants. Smithy's identity cache keeps 64
/// partitions, one per identity resolver configuration; here a slot is one per merchant, so
/// the bound is larger.
pub const DEFAULT_MAX_SLOTS: usize = 1024;

/// A fetch's outcome, shared by everyone who waited for it.
pub(crate) type FetchOutcome = Result<Arc<AccessToken>, Error>;

/// The cache of one key.
#[derive(Default)]
pub(crate) struct Slot {
    /// The token, read without a lock on every call.
    pub(crate) cached: ArcSwapOption<Cached>,
    /// The fetch in flight, if any.
    pub(crate) flight: SingleFlight<FetchOutcome>,
    /// The last fetch's error, until a fetch succeeds.
    pub(crate) last_error: Mutex<Option<Error>>,
    /// The expiry of the last token refused with 401: the fleet's store must not hand it
    /// back.
    #[cfg(feature = "store")]
    pub(crate) refused_expiry: Mutex<Option<std::time::SystemTime>>,
    used_since_sweep: AtomicBool,
}

impl Slot {
    /// Notes a use, for eviction. Reads before it writes, so a hot slot's cache line stays
    /// shared between cores.
    #[inline]
    pub(crate) fn mark_used(&self) {
        if !self.used_since_sweep.load(Ordering::Relaxed) {
            self.used_since_sweep.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the slot holds a token that may still be handed out at `now`.
    pub(crate) fn holds_usable_token(&self, now: Instant) -> bool {
        self.cached
            .load()
            .as_ref()
            .is_some_and(|cached| cached.is_usable(now))
    }
}

/// Slots by key, at most `capacity` of them that no handle pins.
pub(crate) struct Slots<K> {
    capacity: usize,
    map: Mutex<HashMap<K, Arc<Slot>>>,
}

impl<K: Hash + Eq> Slots<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: Mutex::default(),
        }
    }

    /// The slot for `key`, made (after a sweep, when full) if there is none.
    pub(crate) fn get_or_insert(&self, key: K) -> Arc<Slot> {
        let mut map = lock(&self.map);
        if let Some(slot) = map.get(&key) {
            return slot.clone();
        }
        if map.len() >= self.capacity {
            let evicted = sweep(&mut map, self.capacity - self.capacity / 8 - 1);
            super::metrics::slots_evicted(evicted);
        }
        let slot = Arc::<Slot>::default();
        map.insert(key, slot.clone());
        super::metrics::slots_in_use(map.len());
        slot
    }

    /// How many slots there are now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// How long until the soonest expiry among the usable tokens of the slots whose key
    /// `counts`; `None` when there is none. Walks every slot: for metrics, after a fetch.
    #[cfg(feature = "metrics")]
    pub(crate) fn soonest_expiry(
        &self,
        counts: impl Fn(&K) -> bool,
    ) -> Option<std::time::Duration> {
        let now = Instant::now();
        let map = lock(&self.map);
        map.iter()
            .filter(|(key, _)| counts(key))
            .filter_map(|(_, slot)| {
                let cached = slot.cached.load();
                let cached = cached.as_ref()?;
                cached.is_usable(now).then(|| cached.expires_in(now))
            })
            .min()
    }
}

/// Evicts slots until at most `target` are left or none can go; returns how many went.
fn sweep<K>(map: &mut HashMap<K, Arc<Slot>>, target: usize) -> usize {
    let before = map.len();
    let now = Instant::now();
    // Only the map holds it (no handle, no fetch task holds more than a weak reference)
    // and nothing is in flight.
    let evictable = |slot: &Arc<Slot>| Arc::strong_count(slot) == 1 && !slot.flight.is_running();
    let used = |slot: &Arc<Slot>| slot.used_since_sweep.load(Ordering::Relaxed);
    type Pass<'a> = &'a dyn Fn(&Arc<Slot>) -> bool;
    let passes: [Pass; 4] = [
        &|slot| !used(slot) && !slot.holds_usable_token(now),
        &|slot| !used(slot),
        &|slot| !slot.holds_usable_token(now),
        &|_| true,
    ];
    for pass in passes {
        if map.len() <= target {
            break;
        }
        let mut excess = map.len() - target;
        map.retain(|_, slot| {
            if excess == 0 || !evictable(slot) || !pass(slot) {
                return true;
            }
            excess -= 1;
            false
        });
    }
    // The survivors start the next round unused: a second chance, not a permanent pass.
    for slot in map.values() {
        slot.used_since_sweep.store(false, Ordering::Relaxed);
    }
    before - map.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_capacity_when_no_handle_pins_a_slot() {
        let slots = Slots::new(64);
        for key in 0..10_000 {
            drop(slots.get_or_insert(key));
            assert!(slots.len() <= 64, "{} slots after key {key}", slots.len());
        }
    }

    #[test]
    fn never_evicts_a_pinned_slot() {
        let slots = Slots::new(8);
        let pinned = slots.get_or_insert(-1);
        for key in 0..100 {
            drop(slots.get_or_insert(key));
        }
        assert!(Arc::ptr_eq(&pinned, &slots.get_or_insert(-1)));
    }

    #[test]
    fn a_recently_used_slot_outlives_unused_ones() {
        let slots = Slots::new(16);
        slots.get_or_insert(-1).mark_used();
        for key in 0..15 {
            drop(slots.get_or_insert(key));
        }
        // The sweep that this insert starts takes unused slots first.
        drop(slots.get_or_insert(100));
        let map = lock(&slots.map);
        assert!(map.contains_key(&-1));
        assert!(map.len() <= 16);
    }
}
