//! The three TLS trust settings attach-node uses, all on rustls with ring.
//!
//! - the control plane: the system roots plus an optional extra bundle;
//! - the first cluster-info fetch: any certificate, because there is no CA
//!   yet and the JWS is what vouches for the answer;
//! - everything after trust: the cluster CA alone, hostname checked.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))
}

/// Verifies against exactly these roots, with hostname checking.
pub fn with_roots(roots: RootCertStore) -> Result<ClientConfig, String> {
    Ok(builder()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Roots for the control plane: the system's, plus `extra` (PEM) if given.
/// A missing system store is not an error when an extra bundle is given,
/// because a minimal image may have no /etc/ssl at all.
pub fn control_plane_roots(extra_pem: Option<&[u8]>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(system.certs);
    if let Some(pem) = extra_pem {
        let mut n = 0;
        for cert in <CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(pem) {
            let cert =
                cert.map_err(|e| format!("the control-plane CA bundle is not valid PEM: {e}"))?;
            roots.add(cert).map_err(|e| {
                format!("a certificate in the control-plane CA bundle is unusable: {e}")
            })?;
            n += 1;
        }
        if n == 0 {
            return Err("the control-plane CA bundle holds no certificate".into());
        }
    } else if added == 0 {
        return Err("no system CA certificates were found (is ca-certificates installed?)".into());
    }
    Ok(roots)
}

/// Roots holding only the cluster CA bundle.
pub fn cluster_roots(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca.clone())
            .map_err(|e| format!("the cluster CA cannot be used as a trust anchor: {e}"))?;
    }
    Ok(roots)
}

/// For the one anonymous, unverified cluster-info fetch: accepts any
/// certificate chain, but still checks that the server holds the key of the
/// certificate it sent, so the handshake is a real one.
pub fn accept_any_certificate() -> Result<ClientConfig, String> {
    let algs = provider().signature_verification_algorithms;
    Ok(builder()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(algs)))
        .with_no_client_auth())
}

#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Verifies against `roots` and presents a client certificate (the
/// kubelet's, to read its own Node as it would).
pub fn with_roots_and_client_cert(
    roots: RootCertStore,
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<ClientConfig, String> {
    builder()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("the client certificate is unusable: {e}"))
}
