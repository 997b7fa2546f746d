//! CA public-key pins, `sha256:<hex of the DER SubjectPublicKeyInfo>`, as
//! kubeadm's `--discovery-token-ca-cert-hash` (pubkeypin.go).

use std::fmt;

use sha2::{Digest, Sha256};

/// A pin on a certificate's SubjectPublicKeyInfo.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaPin([u8; 32]);

impl CaPin {
    /// Parses like kubeadm: exactly one `:`, the format `sha256` in any case,
    /// then exactly 64 hex digits in any case. Nothing is trimmed.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut parts = raw.split(':');
        let (Some(format), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "invalid CA pin {raw:?}: expected \"sha256:<64 hex digits>\""
            ));
        };
        if !format.eq_ignore_ascii_case("sha256") {
            return Err(format!(
                "invalid CA pin {raw:?}: unknown hash format {format:?}; the only known format is sha256"
            ));
        }
        if hex.len() != 64 {
            return Err(format!(
                "invalid CA pin {raw:?}: expected 64 hex digits (a 32-byte SHA-256), found {}",
                hex.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let (Some(hi), Some(lo)) = (hex_val(pair[0]), hex_val(pair[1])) else {
                return Err(format!(
                    "invalid CA pin {raw:?}: {:?} is not a hex digit pair",
                    String::from_utf8_lossy(pair)
                ));
            };
            out[i] = hi << 4 | lo;
        }
        Ok(CaPin(out))
    }

    /// The pin of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        CaPin(Sha256::digest(spki_der).into())
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for CaPin {
    /// Canonical form, as kubeadm prints it: lowercase.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CaPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether any of `pins` is the pin of `spki_der`. Pins are public values, so
/// an ordinary comparison is fine here.
pub fn matches_any(pins: &[CaPin], spki_der: &[u8]) -> bool {
    let actual = CaPin::of_spki(spki_der);
    pins.contains(&actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_lowercase() {
        let p =
            CaPin::parse("SHA256:345959ACB2C3B2FEB87D281961C893F62A314207EF02599F1CC4A5FB255480B3")
                .unwrap();
        assert_eq!(
            p.to_string(),
            "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3"
        );
    }

    #[test]
    fn rejects_bare_hex_and_whitespace() {
        for bad in [
            "345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3",
            "sha256: 345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b",
            "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3 ",
            "sha256:",
            "",
        ] {
            assert!(CaPin::parse(bad).is_err(), "{bad:?}");
        }
    }
}
