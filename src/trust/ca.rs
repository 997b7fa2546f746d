//! Checks on the cluster CA found in cluster-info.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::pin::CaPin;

/// One certificate of the CA bundle, checked and summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCert {
    pub der: CertificateDer<'static>,
    pub subject: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    pub pin: CaPin,
}

/// Ends the reason a CA is not valid yet, which is how
/// [`is_clock_behind`] knows it.
const CLOCK_BEHIND: &str = "check this host's clock (is time synchronisation running?)";

/// Whether a reason from [`check_ca_bundle`] is a CA that is not valid yet.
/// At early boot that is usually this host's clock, behind until time
/// synchronisation catches up, so it is worth waiting out, unlike the
/// other reasons.
pub fn is_clock_behind(why: &str) -> bool {
    why.ends_with(CLOCK_BEHIND)
}

/// Reads every certificate of a PEM bundle and checks that each is a CA
/// (basicConstraints cA) valid at `now`. Serial number 0, which real kubeadm
/// CAs have, is fine: nothing here looks at the serial.
pub fn check_ca_bundle(pem: &[u8], now: OffsetDateTime) -> Result<Vec<CaCert>, String> {
    let mut out = Vec::new();
    for (i, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let der = item.map_err(|e| format!("CA certificate #{} is not valid PEM: {e}", i + 1))?;
        out.push(check_one(der.into_owned(), now)?);
    }
    if out.is_empty() {
        return Err("certificate-authority-data holds no PEM certificate".into());
    }
    Ok(out)
}

fn check_one(der: CertificateDer<'static>, now: OffsetDateTime) -> Result<CaCert, String> {
    let (rest, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| format!("the CA certificate cannot be parsed: {e}"))?;
    if !rest.is_empty() {
        return Err("the CA certificate has trailing bytes after its DER".into());
    }
    let subject = cert.subject().to_string();
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| format!("the CA certificate {subject:?} has bad basicConstraints: {e}"))?
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(format!(
            "the certificate {subject:?} in cluster-info is not a CA (basicConstraints cA is not set)"
        ));
    }
    let validity = cert.validity();
    let (not_before, not_after) = (
        validity.not_before.to_datetime(),
        validity.not_after.to_datetime(),
    );
    if now < not_before {
        return Err(format!(
            "the CA {subject:?} is not valid before {}, and this host's clock says {}; \
             {CLOCK_BEHIND}",
            rfc3339(not_before),
            rfc3339(now.replace_nanosecond(0).unwrap_or(now))
        ));
    }
    if now > not_after {
        return Err(format!(
            "the CA {subject:?} expired at {}",
            rfc3339(not_after)
        ));
    }
    let pin = CaPin::of_spki(cert.public_key().raw);
    Ok(CaCert {
        subject,
        not_after: rfc3339(not_after),
        pin,
        der,
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// The pins of every certificate in a PEM bundle, with no other check: for
/// printing a pin to compare, and for testing against upstream's pins.
pub fn pins_of_bundle(pem: &[u8]) -> Result<Vec<CaPin>, String> {
    let mut pins = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let der = item.map_err(|e| format!("not valid PEM: {e}"))?;
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| format!("the certificate cannot be parsed: {e}"))?;
        pins.push(CaPin::of_spki(cert.public_key().raw));
    }
    Ok(pins)
}

/// PEM text of certificates, 64 columns as `openssl` writes it.
pub fn pem_of(certs: &[CaCert]) -> Vec<u8> {
    use base64::Engine;
    let mut out = String::new();
    for c in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(c.der.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}
