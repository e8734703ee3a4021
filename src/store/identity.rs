//! What identifies a token in the store, and its key names: `prefix + {slot} + hex(HMAC)`
//! of the flow, base URL, partner token path, client id, `Merchant-Serial-Number` and
//! scope or resource, so that no client id (or anything else) appears in the store in the
//! clear. Every key of one token (its records under the current and previous sealing key,
//! its lease, its failure marker) carries the same `{hash tag}`, so that Redis Cluster
//! keeps them in one slot and one script can touch them all.

use sha2::{Digest, Sha256};

use crate::client::{Client, source::TokenSource};

use super::{StoreConfig, seal::KeyRef};

/// The suffix of a token's lease key: held by the one process fetching for the fleet.
const LEASE_SUFFIX: &str = ":lease";
/// The suffix of a token's failure marker: whose fetch just failed, and why (sealed).
const FAILURE_SUFFIX: &str = ":failed";

/// The names of one token's keys, all in one Redis Cluster slot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenKeys {
    /// The record under the current sealing key, then under the previous one (if any).
    pub records: Vec<String>,
    /// The lease: held by the one process fetching for the fleet.
    pub lease: String,
    /// The failure marker: whose fetch failed and why (sealed), for a few seconds.
    pub failure: String,
}

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

    /// A key name of its own for each probe (`nonce`), for preflight checks: probes run
    /// at once by many processes never overwrite each other's record.
    pub(crate) fn probe_name(config: &StoreConfig, key: KeyRef<'_>, nonce: u128) -> String {
        let name = key.name(b"vipps-access-token/identity/v1/probe");
        format!(
            "{}{{{}}}{name}:probe:{nonce:032x}",
            config.key_prefix,
            &name[..4]
        )
    }

    /// The record's key name under `key`.
    pub(crate) fn record_name(&self, config: &StoreConfig, key: KeyRef<'_>) -> String {
        format!(
            "{}{}{}",
            config.key_prefix,
            self.hash_tag(),
            key.name(&self.encoded)
        )
    }

    /// Every key name of this token: its records (current key first), lease and marker.
    pub(crate) fn keys(&self, config: &StoreConfig) -> TokenKeys {
        let records: Vec<String> = config
            .keys
            .readers()
            .map(|key| self.record_name(config, key))
            .collect();
        let current = &records[0];
        TokenKeys {
            lease: format!("{current}{LEASE_SUFFIX}"),
            failure: format!("{current}{FAILURE_SUFFIX}"),
            records,
        }
    }

    /// `{xxxx}`: the first 16 bits of a SHA-256 of the identity, the same whatever the
    /// sealing key (so a rotation keeps a token's records in one slot). Sixteen bits of a
    /// hash of something that holds the client secret tell nothing; they spread tokens
    /// over the cluster's slots.
    fn hash_tag(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"vipps-access-token/store/slot/v1")
            .chain_update(&self.encoded)
            .finalize();
        format!("{{{:02x}{:02x}}}", digest[0], digest[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{client::ClientBuilder, credentials::StandardCredentials, store::SealingKeys};

    /// A loopback client and the documented example keys.
    fn example() -> (Client, TokenSource) {
        let client = ClientBuilder::with_base_url("http://127.0.0.1:1")
            .allow_insecure_http(true)
            .build()
            .unwrap();
        let source = TokenSource::Standard(StandardCredentials::new(
            "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
            "Y8Kteew6GE2ZmeycEt6egg==",
            "0f14ebcab0ec4b29ae0cb90d91b4a84a",
        ));
        (client, source)
    }

    fn name(source: &TokenSource, client: &Client) -> String {
        let config = StoreConfig::new(SealingKeys::new([3; 32], None));
        TokenIdentity::new(source, client).record_name(&config, config.keys.writer())
    }

    /// The hash tag Redis Cluster hashes: the text between the first `{` and the next `}`.
    fn tag(name: &str) -> &str {
        let open = name.find('{').unwrap();
        let close = open + name[open..].find('}').unwrap();
        &name[open + 1..close]
    }

    #[test]
    fn names_differ_by_merchant_and_hide_the_client_id() {
        let (client, source) = example();
        let plain = name(&source, &client);
        let merchant = name(
            &source,
            &client.with_merchant_serial_number("123456").unwrap(),
        );
        assert_ne!(plain, merchant);
        assert_eq!(plain, name(&source, &client));
        assert!(plain.starts_with("vipps-access-token:{"));
        assert!(!plain.contains("fb492b5e"));
        assert_eq!(plain.len(), "vipps-access-token:".len() + 6 + 64);
    }

    #[test]
    fn every_key_of_a_token_shares_one_hash_tag_across_a_key_rotation() {
        let (client, source) = example();
        let identity = TokenIdentity::new(&source, &client);
        let rotated = StoreConfig::new(SealingKeys::new([2; 32], Some([1; 32])));
        let old = StoreConfig::new(SealingKeys::new([1; 32], None));
        let keys = identity.keys(&rotated);
        assert_eq!(keys.records.len(), 2);
        let expected = tag(&keys.records[0]).to_owned();
        assert_eq!(expected.len(), 4);
        for name in keys.records.iter().chain([&keys.lease, &keys.failure]) {
            assert_eq!(tag(name), expected, "{name}");
        }
        assert_eq!(identity.keys(&old).records[0], keys.records[1]);
        let other = TokenIdentity::new(
            &source,
            &client.with_merchant_serial_number("123456").unwrap(),
        );
        assert_ne!(other.keys(&old).records[0], keys.records[1]);
    }
}
