//! The TLS configuration of the default HTTP client: rustls with the `ring` provider.
//!
//! reqwest's own `rustls` feature compiles aws-lc-rs, whose build script alone takes about a
//! minute on a small machine. This crate enables reqwest's `rustls-no-provider` and hands it a
//! finished config instead, so no process-wide provider is installed behind the caller's back.
//!
//! The one difference from aws-lc-rs: ring has no post-quantum hybrid key exchange, so
//! `X25519MLKEM768` (which aws-lc-rs offers last, after X25519, P-256 and P-384) is not
//! offered. Cipher suites, protocol versions and certificate checks are the same.

use std::sync::{Arc, OnceLock};

use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use rustls_platform_verifier::Verifier;

/// A rustls client config with the `ring` provider, TLS 1.2 and 1.3, the platform's trust
/// store (as reqwest's default `rustls` feature uses) and ALPN `http/1.1`, the only HTTP
/// version this crate's reqwest speaks.
pub(crate) fn ring_client_config() -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(LazyPlatformVerifier {
        provider: provider.clone(),
        verifier: OnceLock::new(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The platform verifier, made at the first certificate to check: loading the system's
/// roots reads and parses every CA file (a few milliseconds, most of a CLI run served
/// from its token cache), which a process that makes no https request never needs. A
/// system without CA certificates fails the handshake, with the platform verifier's error.
#[derive(Debug)]
struct LazyPlatformVerifier {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Verifier, rustls::Error>>,
}

impl LazyPlatformVerifier {
    fn verifier(&self) -> Result<&Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyPlatformVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    // Signatures are checked with the provider's algorithms, as the platform verifier
    // does: no roots needed.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
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

    #[test]
    fn the_platform_roots_load_at_the_first_check_and_the_schemes_are_the_same() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let lazy = LazyPlatformVerifier {
            provider: provider.clone(),
            verifier: OnceLock::new(),
        };
        let eager = Verifier::new(provider).expect("the platform verifier loads");
        assert_eq!(
            lazy.supported_verify_schemes(),
            eager.supported_verify_schemes()
        );
        assert!(lazy.verifier.get().is_none(), "no roots loaded yet");
        assert!(lazy.verifier().is_ok());
        assert!(lazy.verifier.get().is_some());
    }
}
