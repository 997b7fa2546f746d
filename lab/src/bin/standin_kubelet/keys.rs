//! Keys and certificates on disk, in the kubelet's formats: the private
//! key as SEC1 `EC PRIVATE KEY` (x509.MarshalECPrivateKey), the client
//! certificate file as certificate PEM followed by key PEM.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// id-ecPublicKey's curve prime256v1 (1.2.840.10045.3.1.7), DER.
const OID_P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// One DER element: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// A P-256 key as PKCS#8 (what ring and rcgen produce) to SEC1 with the
/// curve named, as Go's x509.MarshalECPrivateKey writes it.
pub fn p256_pkcs8_to_sec1(pkcs8: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "not a P-256 PKCS#8 key".to_owned();
    let (tag, outer, _) = tlv(pkcs8).ok_or_else(bad)?;
    if tag != 0x30 {
        return Err(bad());
    }
    let (_, _version, rest) = tlv(outer).ok_or_else(bad)?;
    let (_, algorithm, rest) = tlv(rest).ok_or_else(bad)?;
    if !algorithm.windows(OID_P256.len()).any(|w| w == OID_P256) {
        return Err(bad());
    }
    let (tag, octets, _) = tlv(rest).ok_or_else(bad)?;
    if tag != 0x04 {
        return Err(bad());
    }
    // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
    //   [0] parameters OPTIONAL, [1] publicKey OPTIONAL }
    let (_, ec, _) = tlv(octets).ok_or_else(bad)?;
    let (_, _v, rest) = tlv(ec).ok_or_else(bad)?;
    let (tag, private, mut rest) = tlv(rest).ok_or_else(bad)?;
    if tag != 0x04 {
        return Err(bad());
    }
    let mut public = None;
    while !rest.is_empty() {
        let (tag, contents, next) = tlv(rest).ok_or_else(bad)?;
        if tag == 0xa1 {
            public = Some(contents);
        }
        rest = next;
    }
    let public = public.ok_or("the PKCS#8 key lacks its public key")?;
    let mut body = der(0x02, &[1]);
    body.extend(der(0x04, private));
    body.extend(der(0xa0, &OID_P256));
    body.extend(der(0xa1, public));
    Ok(der(0x30, &body))
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A usable client credential: the certificates and the key in `cert_pem`
/// and `key_pem` (may be the same text), the leaf within its validity.
pub struct Credential {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub subject: String,
    pub not_after: String,
}

/// Loads a credential as the kubelet's certificate store does, refusing an
/// expired or not yet valid certificate.
pub fn load_credential(cert_pem: &[u8], key_pem: &[u8]) -> Result<Credential, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    let leaf = chain.first().ok_or("no certificate in it")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key: {e}"))?;
    let (_, cert) = X509Certificate::from_der(leaf).map_err(|e| format!("certificate: {e}"))?;
    if !cert.validity().is_valid() {
        return Err(format!(
            "certificate {} is not valid now (valid {} to {})",
            cert.subject(),
            cert.validity().not_before,
            cert.validity().not_after
        ));
    }
    // The key must be the certificate's (tls.X509KeyPair checks this).
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| format!("key: {e}"))?;
    let spki = signing
        .public_key()
        .ok_or("key: cannot derive its public key")?;
    if spki.as_ref() != cert.public_key().raw {
        return Err("the private key does not match the certificate".into());
    }
    Ok(Credential {
        subject: cert.subject().to_string(),
        not_after: cert.validity().not_after.to_string(),
        chain,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    #[test]
    fn sec1_from_pkcs8_is_the_same_key() {
        let key = KeyPair::generate().unwrap();
        let sec1 = p256_pkcs8_to_sec1(&key.serialize_der()).unwrap();
        let text = pem("EC PRIVATE KEY", &sec1);
        let parsed = PrivateKeyDer::from_pem_slice(text.as_bytes()).unwrap();
        assert!(matches!(parsed, PrivateKeyDer::Sec1(_)));
        let signing = rustls::crypto::ring::sign::any_supported_type(&parsed).unwrap();
        // rustls derives the SPKI from the key: it must be the original one.
        use rcgen::PublicKeyData as _;
        assert_eq!(
            signing.public_key().unwrap().as_ref(),
            key.subject_public_key_info()
        );
        assert!(p256_pkcs8_to_sec1(b"\x30\x03\x02\x01\x00").is_err());
    }

    #[test]
    fn credentials_must_match_and_be_current() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let sec1 = pem(
            "EC PRIVATE KEY",
            &p256_pkcs8_to_sec1(&key.serialize_der()).unwrap(),
        );
        let both = format!("{}{sec1}", cert.pem());
        assert!(load_credential(both.as_bytes(), both.as_bytes()).is_ok());
        let other = KeyPair::generate().unwrap().serialize_pem();
        let err = load_credential(cert.pem().as_bytes(), other.as_bytes())
            .err()
            .unwrap();
        assert!(err.contains("does not match"), "{err}");
        let mut params = CertificateParams::new(vec!["x".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let old = params.self_signed(&key).unwrap();
        let err = load_credential(old.pem().as_bytes(), sec1.as_bytes())
            .err()
            .unwrap();
        assert!(err.contains("not valid now"), "{err}");
    }
}
