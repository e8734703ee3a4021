//! The one set of keys a mock accepts.

use crate::credentials::{ClientId, ClientSecret, SubscriptionKey};

/// The keys the mock accepts.
#[derive(Clone, Debug)]
pub(super) struct Keys {
    pub(super) client_id: ClientId,
    pub(super) client_secret: ClientSecret,
    pub(super) subscription_key: SubscriptionKey,
}
