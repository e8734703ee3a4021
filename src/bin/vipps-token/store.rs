//! `token --store URL`: tokens shared through Redis by every run of the CLI, sealed with
//! the key in `VIPPS_TOKEN_STORE_KEY` (never a flag: flags show in `ps`).

use std::sync::Arc;

use vipps_access_token::{
    TokenProvider, TokenSource,
    store::{RedisTokenStore, SealingKeys, StoreConfig, TokenStore},
};

use crate::{args::StandardArgs, failure::Failure, fetch::Session, keys, output, progress};

/// The sealing key, base64 of 32 bytes.
pub const KEY_VARIABLE: &str = "VIPPS_TOKEN_STORE_KEY";
/// The previous sealing key, still read during a rotation.
pub const PREVIOUS_KEY_VARIABLE: &str = "VIPPS_TOKEN_STORE_PREVIOUS_KEY";
/// Another key prefix than `vipps-access-token:`, to share one Redis between applications.
pub const PREFIX_VARIABLE: &str = "VIPPS_TOKEN_STORE_PREFIX";
/// A PEM file of the CA that signed Redis's certificate, for `rediss` URLs; without it,
/// the system's roots.
pub const CA_VARIABLE: &str = "VIPPS_TOKEN_STORE_CA";

/// The store at `url`, sealed with the keys from the environment; a usage error (exit 2)
/// naming the variable when the key is missing or not 32 bytes of base64.
pub fn open(url: &str) -> Result<Arc<dyn TokenStore>, Failure> {
    try_open(url).map_err(Failure::usage)
}

/// [`open`], the error as a message that names the variable or flag at fault.
pub fn try_open(url: &str) -> Result<Arc<dyn TokenStore>, String> {
    let current = std::env::var(KEY_VARIABLE).map_err(|_| {
        format!(
            "--store needs a sealing key in {KEY_VARIABLE}: base64 of 32 bytes, the same \
             for every process (make one with `openssl rand -base64 32`)"
        )
    })?;
    let previous = std::env::var(PREVIOUS_KEY_VARIABLE).ok();
    let keys = SealingKeys::from_base64(
        &current,
        previous.as_deref(),
        KEY_VARIABLE,
        PREVIOUS_KEY_VARIABLE,
    )
    .map_err(|error| error.to_string())?;
    let mut config = StoreConfig::new(keys);
    if let Ok(prefix) = std::env::var(PREFIX_VARIABLE) {
        config.key_prefix = prefix;
    }
    let store = match std::env::var_os(CA_VARIABLE) {
        Some(path) => {
            let pem = std::fs::read(&path).map_err(|error| {
                format!(
                    "{CA_VARIABLE}: could not read {}: {error}; give the path of a PEM file",
                    std::path::Path::new(&path).display()
                )
            })?;
            RedisTokenStore::with_ca(url, config, &pem)
                .map_err(|error| format!("--store with {CA_VARIABLE}: {error}"))?
        }
        None => RedisTokenStore::new(url, config).map_err(|error| format!("--store: {error}"))?,
    };
    Ok(Arc::new(store))
}

/// `token --store URL`: the stored token when another run saved one, otherwise one fetch
/// for every run asking meanwhile, saved for the next.
pub async fn token(args: StandardArgs) -> Result<(), Failure> {
    let url = args.store.store.as_deref().unwrap_or_default();
    // Before any request: a missing key must not cost a round trip.
    let store = open(url)?;
    let session = Session::open(&args.target, &args.caller, None).await?;
    let credentials = keys::standard(&args.keys, &args.subscription_key, session.mock.as_ref())?;
    let provider =
        TokenProvider::builder(session.client.clone(), TokenSource::Standard(credentials))
            .store(store)
            .build();
    let request = async { provider.token().await.map(|token| (*token).clone()) };
    let token = progress::while_waiting(session.client.base_url(), request).await?;
    let printed = output::print(&token, args.output.output);
    // The record is saved after the token is handed out; the next run needs it.
    vipps_access_token::store::settle(SAVE_WAIT).await;
    printed
}

/// How long a run waits, after printing its token, for the record to reach the store.
const SAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
