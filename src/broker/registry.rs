//! The broker's providers, one per caller key: each fetches, caches, refreshes and shares
//! through the store the token of exactly one set of keys (and merchant, scope, path),
//! and remembers that set's failures for its own wait. Bounded: when full, the key asked
//! for longest ago goes (its token stays in the store, if there is one).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use crate::{provider::TokenProvider, sync::lock};

use super::caller_key::CallerKey;

/// Providers by caller key.
pub(super) struct Registry {
    capacity: usize,
    providers: Mutex<HashMap<CallerKey, Entry>>,
}

struct Entry {
    provider: Arc<TokenProvider>,
    asked_at: Instant,
}

impl Registry {
    /// A registry of at most `capacity` keys (at least 1).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            providers: Mutex::default(),
        }
    }

    /// The provider of `key`, made by `make` the first time it is asked for.
    pub(super) fn provider(
        &self,
        key: CallerKey,
        make: impl FnOnce() -> Option<TokenProvider>,
    ) -> Option<Arc<TokenProvider>> {
        let now = Instant::now();
        let mut providers = lock(&self.providers);
        if let Some(entry) = providers.get_mut(&key) {
            entry.asked_at = now;
            return Some(entry.provider.clone());
        }
        let provider = Arc::new(make()?);
        if providers.len() >= self.capacity {
            let oldest = providers
                .iter()
                .min_by_key(|(_, entry)| entry.asked_at)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                providers.remove(&oldest);
            }
        }
        providers.insert(
            key,
            Entry {
                provider: provider.clone(),
                asked_at: now,
            },
        );
        Some(provider)
    }

    /// How many keys are known now.
    pub(super) fn len(&self) -> usize {
        lock(&self.providers).len()
    }
}
