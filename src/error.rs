//! One error type whose class is the process exit code (contract §5).
//!
//! Code below `main` never exits or panics on bad input: it returns an
//! [`Error`] that says what failed and, where there is one, what to do next.
//! `main` prints it once and exits with [`Error::exit_code`].

use std::fmt;

/// The exit classes of contract §5. The discriminant is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Class {
    /// A bug: something the program did not expect of itself.
    Internal = 1,
    /// Bad flag, malformed token, invalid label, http control plane, ...
    Usage = 2,
    /// The control plane refused the openapi token or answered unusably.
    Rejected = 3,
    /// Anything that breaks the chain from bootstrap token to cluster CA.
    Trust = 4,
    /// The control plane or every API server stayed unreachable until the deadline.
    Unreachable = 5,
    /// A file, service or system setting could not be applied.
    HostChange = 6,
    /// The kubelet did not finish TLS bootstrap or register in time.
    WaitTimeout = 7,
    /// Another attach-node run holds the lock.
    Busy = 8,
    /// The host is not fit to join, or a Ready Node of this name exists.
    Preflight = 9,
}

impl Class {
    pub fn exit_code(self) -> u8 {
        self as u8
    }

    /// A short word for logs and JSON, stable across releases.
    pub fn name(self) -> &'static str {
        match self {
            Class::Internal => "internal",
            Class::Usage => "usage",
            Class::Rejected => "rejected",
            Class::Trust => "trust",
            Class::Unreachable => "unreachable",
            Class::HostChange => "host-change",
            Class::WaitTimeout => "wait-timeout",
            Class::Busy => "busy",
            Class::Preflight => "preflight",
        }
    }
}

/// An error with its exit class, a message naming the cause, and an optional
/// hint naming the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    class: Class,
    message: String,
    hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(class: Class, message: impl Into<String>) -> Self {
        Error {
            class,
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Class::Usage, message)
    }
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(Class::Rejected, message)
    }
    pub fn trust(message: impl Into<String>) -> Self {
        Self::new(Class::Trust, message)
    }
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(Class::Unreachable, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Class::Internal, message)
    }

    /// Attach the fix the user should try.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefix the message with what was being done, keeping class and hint.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    pub fn class(&self) -> Class {
        self.class
    }
    pub fn exit_code(&self) -> u8 {
        self.class.exit_code()
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

/// Text from a server we do not trust yet (or at all), made safe to print:
/// control characters could rewrite the terminal or forge log lines.
pub fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push_str("...");
    }
    out
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        let table = [
            (Class::Internal, 1),
            (Class::Usage, 2),
            (Class::Rejected, 3),
            (Class::Trust, 4),
            (Class::Unreachable, 5),
            (Class::HostChange, 6),
            (Class::WaitTimeout, 7),
            (Class::Busy, 8),
            (Class::Preflight, 9),
        ];
        for (class, code) in table {
            assert_eq!(class.exit_code(), code, "{class:?}");
        }
    }

    #[test]
    fn printable_strips_control_characters() {
        assert_eq!(printable("a\x1b[2Jb\nc", 100), "a [2Jb c");
        assert_eq!(printable("abcdef", 3), "abc...");
    }

    #[test]
    fn display_has_context_and_hint() {
        let e = Error::trust("signature mismatch")
            .context("verifying cluster-info")
            .hint("check the token");
        assert_eq!(
            e.to_string(),
            "verifying cluster-info: signature mismatch\n  hint: check the token"
        );
        assert_eq!(e.exit_code(), 4);
    }
}
