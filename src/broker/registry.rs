//! The broker's bounded maps by caller key: the providers of each set of keys (whatever
//! the merchant, so that a refusal of the keys waits once for all merchants), and each
//! caller's handle on one (its merchant, and the refusal it was last answered with). When
//! full, the key asked for longest ago goes (its token stays in the store, if there is
//! one).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use crate::sync::lock;

use super::caller_key::CallerKey;

/// Values by caller key, at most `capacity` of them.
pub(super) struct Registry<V> {
    capacity: usize,
    entries: Mutex<HashMap<CallerKey, Entry<V>>>,
}

struct Entry<V> {
    value: Arc<V>,
    asked_at: Instant,
}

impl<V> Registry<V> {
    /// A registry of at most `capacity` keys (at least 1).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::default(),
        }
    }

    /// The value of `key`, made by `make` the first time it is asked for (outside the
    /// lock: making one may take another registry's lock).
    pub(super) fn get_or_make(
        &self,
        key: CallerKey,
        make: impl FnOnce() -> Option<V>,
    ) -> Option<Arc<V>> {
        if let Some(entry) = lock(&self.entries).get_mut(&key) {
            entry.asked_at = Instant::now();
            return Some(entry.value.clone());
        }
        let made = Arc::new(make()?);
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get(&key) {
            // Another caller made it meanwhile: theirs is the one.
            return Some(entry.value.clone());
        }
        if entries.len() >= self.capacity {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.asked_at)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Entry {
                value: made.clone(),
                asked_at: Instant::now(),
            },
        );
        Some(made)
    }

    /// How many keys are known now.
    pub(super) fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}
