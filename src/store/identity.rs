//! What identifies a token in the store, and its key names: `prefix + hex(HMAC)` of the
//! flow, base URL, partner token path, client id, `Merchant-Serial-Number` and scope or
//! resource, so that no client id (or anything else) appears in the store in the clear.

use crate::{client::Client, source::TokenSource};

use super::{StoreConfig, seal::KeyRef};

/// The suffix of a token's lease key: held by the one process fetching for the fleet.
const LEASE_SUFFIX: &str = ":lease";

/// What makes two tokens different, encoded without ambiguity (each field length-prefixed).
///
/// The client secret and subscription key are part of it too (under the HMAC, never
/// readable): a process with rotated or wrong keys then fetches for itself, rather than
/// being served a token that hides its misconfiguration until the record expires.
///
/// It keeps the source and client, to give a stored token this process's own headers.
#[derive(Clone)]
pub(crate) struct TokenIdentity {
    encoded: Vec<u8>,
    pub(crate) source: TokenSource,
    pub(crate) client: Client,
}

impl std::fmt::Debug for TokenIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIdentity([hashed])")
    }
}

impl TokenIdentity {
    /// The identity of the token `client` gets for `source`.
    pub(crate) fn new(source: &TokenSource, client: &Client) -> Self {
        let msn = client
            .caller
            .merchant_serial_number
            .as_ref()
            .map_or("", |m| m.as_str());
        let fields: [&str; 8] = match source {
            TokenSource::Standard(credentials) => [
                "standard",
                &client.base_url,
                "",
                credentials.client_id.as_str(),
                credentials.client_secret.expose_secret(),
                credentials.subscription_key.expose_secret(),
                msn,
                "",
            ],
            TokenSource::Partner { credentials, scope } => [
                "partner",
                &client.base_url,
                &client.partner_token_path,
                credentials.client_id.as_str(),
                credentials.client_secret.expose_secret(),
                "",
                msn,
                scope.as_deref().unwrap_or(""),
            ],
            TokenSource::Legacy {
                credentials,
                resource,
            } => [
                "legacy",
                &client.base_url,
                "",
                credentials.client_id.as_str(),
                credentials.client_secret.expose_secret(),
                credentials.subscription_key.expose_secret(),
                msn,
                resource.as_str(),
            ],
        };
        let mut encoded = b"vipps-access-token/identity/v1".to_vec();
        for field in fields {
            encoded.extend_from_slice(&(field.len() as u64).to_be_bytes());
            encoded.extend_from_slice(field.as_bytes());
        }
        Self {
            encoded,
            source: source.clone(),
            client: client.clone(),
        }
    }

    /// The key name of a probe record under `key`, for preflight checks.
    pub(crate) fn probe_name(config: &StoreConfig, key: KeyRef<'_>) -> String {
        format!(
            "{}{}:probe",
            config.key_prefix,
            key.name(b"vipps-access-token/identity/v1/probe")
        )
    }

    /// The record's key name under `key`.
    pub(crate) fn record_name(&self, config: &StoreConfig, key: KeyRef<'_>) -> String {
        format!("{}{}", config.key_prefix, key.name(&self.encoded))
    }

    /// The lease's key name: beside the record named with the current key.
    pub(crate) fn lease_name(&self, config: &StoreConfig) -> String {
        format!(
            "{}{LEASE_SUFFIX}",
            self.record_name(config, config.keys.writer())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{client::ClientBuilder, credentials::StandardCredentials, store::SealingKeys};

    fn name(source: &TokenSource, client: &Client) -> String {
        let config = StoreConfig::new(SealingKeys::new([3; 32], None));
        TokenIdentity::new(source, client).record_name(&config, config.keys.writer())
    }

    #[test]
    fn names_differ_by_merchant_and_hide_the_client_id() {
        let client = ClientBuilder::with_base_url("http://127.0.0.1:1")
            .allow_insecure_http(true)
            .build()
            .unwrap();
        let source = TokenSource::Standard(StandardCredentials::new(
            "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
            "Y8Kteew6GE2ZmeycEt6egg==",
            "0f14ebcab0ec4b29ae0cb90d91b4a84a",
        ));
        let plain = name(&source, &client);
        let merchant = name(
            &source,
            &client.with_merchant_serial_number("123456").unwrap(),
        );
        assert_ne!(plain, merchant);
        assert_eq!(plain, name(&source, &client));
        assert!(plain.starts_with("vipps-access-token:"));
        assert!(!plain.contains("fb492b5e"));
        assert_eq!(plain.len(), "vipps-access-token:".len() + 64);
    }
}
