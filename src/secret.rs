//! Secrets as types.
//!
//! A token's secret part is reachable only through `expose_*` methods, which
//! are called where an HMAC key or an `Authorization` header needs it and
//! nowhere else. `Debug` and `Display` mask it, so a token that ends up in a
//! log line or an error message by accident still leaks nothing. Memory is
//! wiped on drop.

use std::fmt;

use zeroize::Zeroizing;

/// Where a secret came from: a secret given in argv is visible to every user
/// of the machine through `ps` and `/proc/*/cmdline`, so it earns a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Argv,
    Environment,
    File,
    Stdin,
    ConfigFile,
    ControlPlane,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Argv => "the command line",
            Origin::Environment => "the environment",
            Origin::File => "a file",
            Origin::Stdin => "standard input",
            Origin::ConfigFile => "the config file",
            Origin::ControlPlane => "the control plane",
        })
    }
}

/// The short-lived capability that the control plane trades for ClusterInfo.
/// Its format is the control plane's business, so only emptiness, length and
/// header safety are checked.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenapiToken(Zeroizing<String>);

/// Openapi tokens longer than this are refused: nothing legitimate is that
/// long, and the header must stay small.
const OPENAPI_TOKEN_MAX: usize = 4096;

impl OpenapiToken {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let t = raw.trim();
        if t.is_empty() {
            return Err("the openapi token is empty".into());
        }
        if t.len() > OPENAPI_TOKEN_MAX {
            return Err(format!(
                "the openapi token is longer than {OPENAPI_TOKEN_MAX} bytes"
            ));
        }
        // Visible ASCII only: it goes into an HTTP header verbatim.
        if !t.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(
                "the openapi token contains spaces or characters that cannot go in an HTTP header"
                    .into(),
            );
        }
        Ok(OpenapiToken(Zeroizing::new(t.to_owned())))
    }

    /// For the `Authorization` header only.
    pub fn expose_for_header(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OpenapiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for OpenapiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// A kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`. The id is public
/// (it names the Secret and the JWS key); the secret is the HMAC key and the
/// bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    id: String,
    secret: Zeroizing<String>,
}

const TOKEN_ID_LEN: usize = 6;
const TOKEN_SECRET_LEN: usize = 16;

fn is_token_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Whether `s` is a valid token id, `[a-z0-9]{6}`.
pub fn is_token_id(s: &str) -> bool {
    s.len() == TOKEN_ID_LEN && s.bytes().all(is_token_char)
}

impl BootstrapToken {
    /// Parses `<id>.<secret>` exactly as kubeadm does: no trimming, no case
    /// folding. The error never repeats the input, which may be a real
    /// secret with a typo.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "a bootstrap token has the form [a-z0-9]{{6}}.[a-z0-9]{{16}} \
                 (lowercase letters and digits); the one given ({} characters) does not",
                raw.chars().count()
            )
        };
        let (id, secret) = raw.split_once('.').ok_or_else(bad)?;
        if !is_token_id(id)
            || secret.len() != TOKEN_SECRET_LEN
            || !secret.bytes().all(is_token_char)
        {
            return Err(bad());
        }
        Ok(BootstrapToken {
            id: id.to_owned(),
            secret: Zeroizing::new(secret.to_owned()),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret bytes, for the JWS HMAC key only.
    pub fn expose_hmac_key(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    /// `<id>.<secret>`, for an `Authorization: Bearer` header or a 0600
    /// kubeconfig only.
    pub fn expose_bearer(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}.{}", self.id, &*self.secret))
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.****", self.id)
    }
}

impl fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.****", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_token_masks_its_secret() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!(format!("{t}"), "abcdef.****");
        assert_eq!(format!("{t:?}"), "abcdef.****");
        assert_eq!(format!("{:?}", Some(&t)), "Some(abcdef.****)");
        assert_eq!(t.id(), "abcdef");
        assert_eq!(t.expose_hmac_key(), b"0123456789abcdef");
        assert_eq!(&*t.expose_bearer(), "abcdef.0123456789abcdef");
    }

    #[test]
    fn bad_token_error_does_not_echo_input() {
        let err = BootstrapToken::parse("abcdef.0123456789ABCDEF").unwrap_err();
        assert!(!err.contains("0123456789"), "{err}");
    }

    #[test]
    fn openapi_token_masks_and_validates() {
        let t = OpenapiToken::parse(" tok-123\n").unwrap();
        assert_eq!(t.expose_for_header(), "tok-123");
        assert_eq!(format!("{t} {t:?}"), "**** ****");
        assert!(OpenapiToken::parse("  ").is_err());
        assert!(OpenapiToken::parse("a b").is_err());
        assert!(OpenapiToken::parse("a\u{7f}").is_err());
        assert!(OpenapiToken::parse(&"x".repeat(5000)).is_err());
    }
}
