//! The client side: a rustls configuration that presents the source's
//! certificate and checks servers against its CA, both taken from the
//! files' current version at each handshake, so that a client built once
//! (reqwest's, the OTLP exporter's) follows a renewal.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::source::TlsSource;

/// A client configuration over `source`, offering `alpn` (e.g. `["h2"]`
/// for gRPC, `["http/1.1"]`).
pub fn client_config(source: Arc<TlsSource>, alpn: &[&[u8]]) -> ClientConfig {
    let provider = crate::provider();
    let current = Arc::new(Current {
        source,
        provider: provider.clone(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .dangerous()
        // Not dangerous: the verifier is rustls's WebPkiServerVerifier over
        // the CA, taken anew from the files at each handshake.
        .with_custom_certificate_verifier(current.clone())
        .with_client_cert_resolver(current);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Hands each handshake the files' current certificate and verifier.
#[derive(Debug)]
struct Current {
    source: Arc<TlsSource>,
    provider: Arc<CryptoProvider>,
}

impl ResolvesClientCert for Current {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.source.current().identity().cloned()
    }

    fn has_certs(&self) -> bool {
        self.source.current().identity().is_some()
    }
}

impl ServerCertVerifier for Current {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.source.current().server_verifier().verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

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
