//! Fresh secrets and identifiers for each lab.
//!
//! Every lab draws its own tokens so that a test can never pass by accident
//! because a value was hard-coded on both sides.

const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Fills `buf` from the operating system's CSPRNG (via rustls' ring
/// provider, which the lab links anyway).
pub(crate) fn fill(buf: &mut [u8]) {
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(buf)
        // The kernel's getrandom does not fail once the system has booted;
        // a lab that cannot get randomness has nothing useful to do.
        .expect("the operating system's random number generator failed");
}

/// A string of `len` characters drawn uniformly from `alphabet`.
pub(crate) fn string(alphabet: &[u8], len: usize) -> String {
    assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    // Rejection sampling: bytes at or above the largest multiple of the
    // alphabet size would make the first letters more likely.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut byte = [0u8; 1];
    while out.len() < len {
        fill(&mut byte);
        if usize::from(byte[0]) < limit {
            out.push(char::from(alphabet[usize::from(byte[0]) % alphabet.len()]));
        }
    }
    out
}

/// A bootstrap token in kubeadm's `[a-z0-9]{6}.[a-z0-9]{16}` shape.
pub(crate) fn bootstrap_token() -> String {
    format!(
        "{}.{}",
        string(TOKEN_ALPHABET, 6),
        string(TOKEN_ALPHABET, 16)
    )
}

/// An opaque openapi token. The prefix only helps a human reading a test
/// failure tell the kinds apart; the control plane never parses it.
pub(crate) fn openapi_token(kind: &str) -> String {
    const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    format!("lab-{kind}-{}", string(URL_SAFE, 32))
}

/// A version-4 UUID, the form Kubernetes uses for `metadata.uid`.
pub(crate) fn uuid() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_tokens_have_kubeadm_shape() {
        for _ in 0..50 {
            let t = bootstrap_token();
            let (id, secret) = t.split_once('.').unwrap();
            assert_eq!(id.len(), 6);
            assert_eq!(secret.len(), 16);
            assert!(
                id.bytes()
                    .chain(secret.bytes())
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            );
        }
        assert_ne!(bootstrap_token(), bootstrap_token());
    }

    #[test]
    fn uuid_is_version_4() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
