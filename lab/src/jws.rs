//! The detached JWS that kube-controller-manager's bootstrap signer puts in
//! `cluster-info` (`jws-kubeconfig-<token-id>`).
//!
//! Written here from the algorithm rather than shared with attach-node, so
//! that the lab checks the client instead of agreeing with it by
//! construction.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// Signs `content` the way upstream `ComputeDetachedSignature` does:
/// `base64url(header) + ".." + base64url(HMAC-SHA256(secret, base64url(header) + "." + base64url(content)))`.
pub fn sign_detached(content: &[u8], token_id: &str, token_secret: &str) -> String {
    // go-jose marshals the protected header from a map, so the keys come out
    // sorted and without whitespace; the MAC covers these exact bytes.
    let header = format!(
        r#"{{"alg":"HS256","kid":{}}}"#,
        serde_json::Value::from(token_id)
    );
    let header = URL_SAFE_NO_PAD.encode(header);
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(content));
    let mut mac = Hmac::<Sha256>::new_from_slice(token_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(signing_input.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The same signature with one byte of the MAC changed, so that it is still
/// well-formed (a client must reject it on the MAC, not on parsing).
pub(crate) fn tamper(signature: &str) -> String {
    let (header, mac) = signature
        .split_once("..")
        .expect("a detached signature has an empty payload segment");
    let mut mac = URL_SAFE_NO_PAD
        .decode(mac)
        .expect("the MAC segment is base64url");
    mac[0] ^= 0x01;
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/vectors/jws.json")).unwrap()
    }

    #[test]
    fn every_upstream_vector_reproduces() {
        let v = vectors();
        let list = v["vectors"].as_array().unwrap();
        assert!(list.len() >= 19, "the vector file lost entries");
        for case in list {
            let got = sign_detached(
                case["content"].as_str().unwrap().as_bytes(),
                case["token_id"].as_str().unwrap(),
                case["token_secret"].as_str().unwrap(),
            );
            assert_eq!(got, case["expected"].as_str().unwrap(), "{}", case["name"]);
        }
    }

    #[test]
    fn negative_vectors_differ_from_the_real_signature() {
        let v = vectors();
        for case in v["negative_vectors"].as_array().unwrap() {
            let got = sign_detached(
                case["content"].as_str().unwrap().as_bytes(),
                case["token_id"].as_str().unwrap(),
                case["token_secret"].as_str().unwrap(),
            );
            assert_ne!(got, case["signature"].as_str().unwrap(), "{}", case["name"]);
        }
    }

    #[test]
    fn tampering_keeps_the_shape_but_changes_the_mac() {
        let good = sign_detached(b"payload", "abc123", "tokenSecret");
        let bad = tamper(&good);
        assert_ne!(good, bad);
        assert_eq!(good.len(), bad.len());
        assert_eq!(
            good.split_once("..").unwrap().0,
            bad.split_once("..").unwrap().0
        );
    }
}
