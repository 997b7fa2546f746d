//! The detached JWS that vouches for cluster-info (RFC 7515 appendix F, as
//! cluster-bootstrap's `ComputeDetachedSignature`).
//!
//! Upstream recomputes the whole `header..mac` string and compares it with
//! `==`; we compare the same whole string in constant time, which accepts and
//! rejects exactly the same inputs without leaking how many bytes matched.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::BootstrapToken;

/// The detached signature `base64url(header) + ".." + base64url(mac)` of
/// `content` under token `id` and `key`.
///
/// Takes the id and key apart (rather than a [`BootstrapToken`]) because
/// upstream's vectors use ids and secrets outside the token format.
pub fn detached_signature(content: &[u8], id: &str, key: &[u8]) -> String {
    // go-jose marshals the header from a map, so the keys come out sorted
    // and unspaced; the id is `[a-z0-9]` in practice, but escape it as JSON
    // anyway so that no input can change the header's shape.
    let header = format!(r#"{{"alg":"HS256","kid":{}}}"#, serde_json::Value::from(id));
    let header_b64 = URL_SAFE_NO_PAD.encode(header);
    let mut signing_input = String::with_capacity(header_b64.len() + 1 + content.len() * 4 / 3 + 4);
    signing_input.push_str(&header_b64);
    signing_input.push('.');
    URL_SAFE_NO_PAD.encode_string(content, &mut signing_input);

    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    let tag = mac.finalize().into_bytes();

    let mut out = header_b64;
    out.push_str("..");
    URL_SAFE_NO_PAD.encode_string(tag, &mut out);
    out
}

/// Whether `signature` is the detached JWS of `content` under `token`.
pub fn verify(content: &[u8], signature: &str, token: &BootstrapToken) -> bool {
    verify_raw(content, signature, token.id(), token.expose_hmac_key())
}

/// [`verify`] with the id and key apart, for upstream's vectors.
pub fn verify_raw(content: &[u8], signature: &str, id: &str, key: &[u8]) -> bool {
    let expected = detached_signature(content, id, key);
    // `ct_eq` on slices of different lengths is false without looking at the
    // bytes; the length of a correct signature is public anyway.
    expected.as_bytes().ct_eq(signature.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &[u8] = b"Hello from the other side. I must have called a thousand times.";

    #[test]
    fn upstream_literal_vector() {
        let sig = detached_signature(KC, "joshua", b"my voice is my passcode");
        assert_eq!(
            sig,
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8"
        );
        assert!(verify_raw(KC, &sig, "joshua", b"my voice is my passcode"));
        assert!(!verify_raw(
            KC,
            &format!("{sig}foo"),
            "joshua",
            b"my voice is my passcode"
        ));
        assert!(!verify_raw(KC, "", "joshua", b"my voice is my passcode"));
    }
}
