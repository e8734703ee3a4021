//! What every request handler shares: the configuration, the signer, the faults.

use tokio::sync::watch;

use super::{faults::Faults, jwt::Signer, keys::Keys};

/// The state behind a running mock.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) keys: Keys,
    /// Seconds a standard or legacy token lasts.
    pub(super) token_lifetime: u64,
    /// Seconds a partner token lasts.
    pub(super) partner_token_lifetime: u64,
    pub(super) signer: Signer,
    /// The `iss` of partner tokens: the mock's base URL.
    pub(super) issuer: String,
    pub(super) faults: Faults,
    /// Turns `true` when the server is asked to stop.
    pub(super) stopping: watch::Receiver<bool>,
}
