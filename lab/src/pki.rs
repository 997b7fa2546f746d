//! The lab's certificates: a kubeadm-like cluster CA with its API-server
//! serving certificate, a separate CA for the control plane, and (for the
//! fault that needs it) an impostor CA.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};

/// How the CA in the served kubeconfig is broken, if at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CaFlaw {
    None,
    /// `basicConstraints CA:false`.
    NotCa,
    /// Validity ended on 2001-01-01.
    Expired,
    /// Validity starts in 2100: what a host whose clock is behind sees.
    NotYetValid,
}

/// The SANs kubeadm gives the API server that make sense on loopback.
const API_SERVER_DNS: [&str; 4] = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
];
const LOOPBACK_IPS: [&str; 2] = ["127.0.0.1", "::1"];

/// kubeadm back-dates certificates by five minutes (CertificateBackdate) so
/// that small clock skew between machines does not make them "not yet valid".
const BACKDATE: Duration = Duration::minutes(5);

pub(crate) struct Pki {
    /// The cluster CA exactly as it goes into the kubeconfig.
    pub cluster_ca_pem: String,
    /// The cluster CA's key and name, for signing kubelet client
    /// certificates as kube-controller-manager does.
    pub cluster_ca: Arc<Issuer<'static, KeyPair>>,
    /// `sha256:<hex>` of the cluster CA's SubjectPublicKeyInfo.
    pub ca_cert_hash: String,
    pub api_server: Arc<CertifiedKey>,
    /// Same SANs as `api_server`, signed by a CA nobody trusts.
    pub impostor_api_server: Option<Arc<CertifiedKey>>,
    pub control_plane_ca_pem: String,
    pub control_plane: Arc<CertifiedKey>,
}

pub(crate) fn generate(flaw: CaFlaw, with_impostor: bool) -> io::Result<Pki> {
    let now = OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate().map_err(io::Error::other)?;
    let cluster_params = cluster_ca_params(now, flaw);
    let ca_cert = cluster_params
        .self_signed(&ca_key)
        .map_err(io::Error::other)?;
    let ca_cert_hash = spki_pin(&ca_key);
    let ca_issuer = Issuer::new(cluster_params, ca_key);
    // For a flawed CA the serving certificate still chains to the same key
    // and subject, so the only thing wrong is the flaw the test is about.
    let api_server = leaf(&ca_issuer, "kube-apiserver", &API_SERVER_DNS, now)?;

    let impostor_api_server = if with_impostor {
        // Same subject as the real CA: what an attacker who copied the
        // public parts of the cluster would present.
        let key = KeyPair::generate().map_err(io::Error::other)?;
        let issuer = Issuer::new(cluster_ca_params(now, CaFlaw::None), key);
        Some(leaf(&issuer, "kube-apiserver", &API_SERVER_DNS, now)?)
    } else {
        None
    };

    let cp_key = KeyPair::generate().map_err(io::Error::other)?;
    let cp_params = ca_params(
        "attach-node-lab control plane CA",
        now - BACKDATE,
        now + Duration::days(3650),
    );
    let cp_cert = cp_params.self_signed(&cp_key).map_err(io::Error::other)?;
    let cp_issuer = Issuer::new(cp_params, cp_key);
    let control_plane = leaf(
        &cp_issuer,
        "attach-node-lab control plane",
        &["localhost"],
        now,
    )?;

    Ok(Pki {
        cluster_ca_pem: ca_cert.pem(),
        cluster_ca: Arc::new(ca_issuer),
        ca_cert_hash,
        api_server,
        impostor_api_server,
        control_plane_ca_pem: cp_cert.pem(),
        control_plane,
    })
}

fn cluster_ca_params(now: OffsetDateTime, flaw: CaFlaw) -> CertificateParams {
    let (not_before, not_after) = match flaw {
        CaFlaw::Expired => (
            rcgen::date_time_ymd(2000, 1, 1),
            rcgen::date_time_ymd(2001, 1, 1),
        ),
        CaFlaw::NotYetValid => (
            rcgen::date_time_ymd(2100, 1, 1),
            rcgen::date_time_ymd(2110, 1, 1),
        ),
        CaFlaw::None | CaFlaw::NotCa => (now - BACKDATE, now + Duration::days(3650)),
    };
    let mut params = ca_params("kubernetes", not_before, not_after);
    // kubeadm CAs (certutil.NewSelfSignedCACert) carry serial number 0,
    // which strict parsers reject; the lab must exercise that.
    params.serial_number = Some(SerialNumber::from_slice(&[0]));
    if flaw == CaFlaw::NotCa {
        params.is_ca = IsCa::ExplicitNoCa;
    }
    params
}

fn ca_params(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params
}

/// A serving certificate for loopback plus `dns_names`, valid for a year.
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    dns_names: &[&str],
    now: OffsetDateTime,
) -> io::Result<Arc<CertifiedKey>> {
    let key = KeyPair::generate().map_err(io::Error::other)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(365);
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    for ip in LOOPBACK_IPS {
        params
            .subject_alt_names
            .push(SanType::IpAddress(ip.parse().expect("literal IP")));
    }
    for name in dns_names {
        params.subject_alt_names.push(SanType::DnsName(
            (*name).try_into().map_err(io::Error::other)?,
        ));
    }
    let cert = params.signed_by(&key, issuer).map_err(io::Error::other)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = default_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(io::Error::other)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing_key,
    )))
}

/// What kube-controller-manager's signer puts in a client certificate.
pub(crate) struct ClientCertRequest<'a> {
    pub common_name: &'a str,
    pub organizations: &'a [String],
    /// KeyUsage bits; ExtendedKeyUsage is always clientAuth.
    pub key_encipherment: bool,
    pub validity: Duration,
}

/// Signs a client certificate for `public_key` with the cluster CA, the way
/// the `kubernetes.io/kube-apiserver-client-kubelet` signer does: random
/// 128-bit serial, back-dated five minutes, CA:FALSE, the CA's key id as
/// AuthorityKeyIdentifier. Returns the PEM.
pub(crate) fn sign_client_cert(
    ca: &Issuer<'_, KeyPair>,
    req: &ClientCertRequest<'_>,
    public_key: &impl PublicKeyData,
) -> io::Result<String> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    // Go's pkix.Name puts O before CN.
    for o in req.organizations {
        name.push(DnType::OrganizationName, o.as_str());
    }
    name.push(DnType::CommonName, req.common_name);
    params.distinguished_name = name;
    params.not_before = now - BACKDATE;
    params.not_after = now + req.validity;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if req.key_encipherment {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let mut serial = [0u8; 16];
    crate::random::fill(&mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params.signed_by(public_key, ca).map_err(io::Error::other)?;
    Ok(cert.pem())
}

/// A fresh P-256 key and a client certificate for it from the cluster CA.
/// Returns (certificate PEM, PKCS#8 key PEM).
pub(crate) fn issue_client_cert(
    ca: &Issuer<'_, KeyPair>,
    req: &ClientCertRequest<'_>,
) -> io::Result<(String, String)> {
    let key = KeyPair::generate().map_err(io::Error::other)?;
    let cert = sign_client_cert(ca, req, &key)?;
    Ok((cert, key.serialize_pem()))
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn spki_pin(key: &KeyPair) -> String {
    let digest = Sha256::digest(key.subject_public_key_info());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn cluster_ca_has_serial_zero_and_is_pinned_by_its_spki() {
        let pki = generate(CaFlaw::None, false).unwrap();
        let der = CertificateDer::from_pem_slice(pki.cluster_ca_pem.as_bytes()).unwrap();
        // tbsCertificate starts with version [0] then serial INTEGER 0.
        assert!(
            contains(
                &der[..16],
                &[0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x00]
            ),
            "{:02x?}",
            &der[..16]
        );
        assert!(pki.ca_cert_hash.starts_with("sha256:"));
        assert_eq!(pki.ca_cert_hash.len(), 7 + 64);
        assert!(
            pki.cluster_ca_pem
                .starts_with("-----BEGIN CERTIFICATE-----\n")
        );
        assert!(pki.cluster_ca_pem.ends_with("-----END CERTIFICATE-----\n"));
        assert!(pki.impostor_api_server.is_none());
    }

    #[test]
    fn pin_hashes_the_spki_that_is_in_the_certificate() {
        let key = KeyPair::generate().unwrap();
        let cert = cluster_ca_params(OffsetDateTime::now_utc(), CaFlaw::None)
            .self_signed(&key)
            .unwrap();
        assert!(contains(cert.der(), &key.subject_public_key_info()));
        let hex = spki_pin(&key);
        let digest = Sha256::digest(key.subject_public_key_info());
        assert_eq!(&hex[7..9], format!("{:02x}", digest[0]));
    }

    #[test]
    fn flawed_cas_keep_the_same_key() {
        // The pin stays valid, so a client can only notice the flaw itself.
        let pki = generate(CaFlaw::NotCa, true).unwrap();
        assert!(pki.impostor_api_server.is_some());
        let pki = generate(CaFlaw::Expired, false).unwrap();
        assert!(pki.cluster_ca_pem.contains("CERTIFICATE"));
    }
}
