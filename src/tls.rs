//! The TLS configuration of the default HTTP client: rustls with the `ring` provider.
//!
//! reqwest's own `rustls` feature compiles aws-lc-rs, whose build script alone takes about a
//! minute on a small machine. This crate enables reqwest's `rustls-no-provider` and hands it a
//! finished config instead, so no process-wide provider is installed behind the caller's back.
//!
//! The one difference from aws-lc-rs: ring has no post-quantum hybrid key exchange, so
//! `X25519MLKEM768` (which aws-lc-rs offers last, after X25519, P-256 and P-384) is not
//! offered. Cipher suites, protocol versions and certificate checks are the same.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls_platform_verifier::BuilderVerifierExt;

/// A rustls client config with the `ring` provider, TLS 1.2 and 1.3, the platform's trust
/// store (as reqwest's default `rustls` feature uses) and ALPN `http/1.1`, the only HTTP
/// version this crate's reqwest speaks.
pub(crate) fn ring_client_config() -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_tls_1_2_and_1_3_over_http_1_1() {
        let config = ring_client_config().expect("the platform verifier loads");
        let versions: Vec<_> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|suite| suite.version().version)
            .collect();
        assert!(versions.contains(&rustls::ProtocolVersion::TLSv1_3));
        assert!(versions.contains(&rustls::ProtocolVersion::TLSv1_2));
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }
}
