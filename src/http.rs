//! The one HTTP client: rustls only, no redirects, a size cap on every body,
//! a User-Agent naming us, and errors sorted into what may be retried and
//! what may not. One request per call; retrying is the caller's policy.

use std::io::Read;
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, RETRY_AFTER};

use crate::error::Error;
use crate::retry::parse_retry_after;

/// No answer attach-node reads is anywhere near this; anything larger is a
/// misbehaving or hostile server.
pub const BODY_CAP: usize = 1 << 20;

/// Per-request bound, as kubeadm's discovery client (10 s); the overall
/// deadline may cut it shorter.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub const USER_AGENT: &str = concat!("attach-node/", env!("CARGO_PKG_VERSION"));

/// A complete answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// Why a request got no complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Connection refused or reset, DNS failure, timeout: worth retrying.
    Transient(String),
    /// The server's certificate did not verify: never retried.
    Tls(String),
    /// The server's name did not resolve (yet: at boot the network may
    /// come up late, so this is retried too).
    Unresolved { host: String, why: String },
    /// The body is over [`BODY_CAP`].
    TooLarge,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Transient(e) => f.write_str(e),
            FetchError::Tls(e) => write!(f, "TLS verification failed: {e}"),
            FetchError::Unresolved { host, why } => write!(f, "cannot resolve {host}: {why}"),
            FetchError::TooLarge => write!(f, "the answer is larger than {BODY_CAP} bytes"),
        }
    }
}

impl FetchError {
    /// The fix, where there is one to name.
    pub fn hint(&self) -> Option<String> {
        match self {
            FetchError::Unresolved { host, .. } => Some(format!(
                "check the name {host} (a typo in the URL?) and this host's DNS: the name \
                 servers in /etc/resolv.conf must answer for it"
            )),
            _ => None,
        }
    }

    /// The error of a retryable failure (a [`FetchError::Transient`] or
    /// [`FetchError::Unresolved`] one) of a request to `at`, with its fix.
    pub fn unreachable(&self, at: &str) -> Error {
        let e = Error::unreachable(format!("{at}: {self}"));
        match self.hint() {
            Some(h) => e.hint(h),
            None => e,
        }
    }
}

pub struct HttpClient {
    inner: reqwest::blocking::Client,
}

impl HttpClient {
    pub fn new(tls: rustls::ClientConfig) -> Result<Self, Error> {
        let inner = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(USER_AGENT)
            // A redirect could carry the bearer token somewhere unexpected;
            // none of our servers redirects, so a 3xx is simply an answer.
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .connect_timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient { inner })
    }

    /// GETs `url`, sending `bearer` in the `Authorization` header only (it
    /// is marked sensitive, so even the HTTP stack's own debug output masks
    /// it), and reads at most [`BODY_CAP`] bytes of the answer.
    pub fn get(
        &self,
        url: &str,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<Reply, FetchError> {
        self.get_capped(url, bearer, timeout, BODY_CAP, REQUEST_TIMEOUT)
    }

    /// [`HttpClient::get`] with another body cap and per-request bound, for
    /// downloads (artifacts) that are large by nature.
    pub fn get_capped(
        &self,
        url: &str,
        bearer: Option<&str>,
        timeout: Duration,
        cap: usize,
        request_timeout: Duration,
    ) -> Result<Reply, FetchError> {
        let mut req = self
            .inner
            .get(url)
            .header(ACCEPT, "application/json")
            .timeout(timeout.min(request_timeout));
        if let Some(bearer) = bearer {
            // Our copy is wiped; the header's own (inside http/hyper) is not
            // ours to wipe, only marked sensitive.
            let line = zeroize::Zeroizing::new(format!("Bearer {bearer}"));
            let mut value = HeaderValue::from_str(&line).map_err(|_| {
                FetchError::Transient("the token cannot be sent in a header".into())
            })?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        tracing::debug!(%url, authenticated = bearer.is_some(), "GET");
        let resp = req.send().map_err(classify)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        resp.take(cap as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| FetchError::Transient(format!("reading the answer failed: {e}")))?;
        if body.len() > cap {
            return Err(FetchError::TooLarge);
        }
        tracing::debug!(%url, status, bytes = body.len(), "answer");
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

/// Finds a certificate verification failure anywhere in the error's chain;
/// everything else that kept us from an answer is transient. The TLS stack
/// reports through `io::Error`s nested in each other, whose `source()` skips
/// their own payload, so each one is opened with `get_ref()`.
fn classify(err: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        let mut inner = Some(e);
        while let Some(x) = inner {
            if let Some(tls) = x.downcast_ref::<rustls::Error>() {
                return tls_error(tls);
            }
            inner = x
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|i| i as &(dyn std::error::Error + 'static));
        }
        source = e.source();
    }
    if let Some(unresolved) = dns_failure(&err) {
        return unresolved;
    }
    FetchError::Transient(describe(&err))
}

/// A name that did not resolve, told as such: hickory's own text is the
/// Debug form of its query (`no records found for Query { name: ... }`).
/// The layers that say "this was DNS" are hyper-util's and reqwest's, whose
/// types are private, so they are known by their texts.
fn dns_failure(err: &reqwest::Error) -> Option<FetchError> {
    let mut layers = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        layers.push(e);
        source = e.source();
    }
    let dns = layers
        .iter()
        .position(|e| matches!(e.to_string().as_str(), "dns error" | "error resolving DNS"))?;
    let host = err
        .url()
        .and_then(|u| u.host_str())
        .unwrap_or("the server's name")
        .to_owned();
    let cause = layers[dns..].last().expect("the dns layer itself at least");
    let detail = format!("{cause:?}");
    let why = if detail.contains("NXDomain") {
        "no such name".to_owned()
    } else if detail.contains("NoRecordsFound") {
        "the name has no address".to_owned()
    } else if err.is_timeout() || detail.contains("Timeout") || detail.contains("timed out") {
        "the name servers did not answer in time".to_owned()
    } else {
        // An I/O error reaching the name servers, or no configuration.
        crate::error::printable(&cause.to_string(), 200)
    };
    Some(FetchError::Unresolved { host, why })
}

fn tls_error(e: &rustls::Error) -> FetchError {
    match e {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            FetchError::Tls(e.to_string())
        }
        other => FetchError::Transient(format!("TLS handshake failed: {other}")),
    }
}

/// reqwest's top-level message is terse ("error sending request"); the
/// innermost cause says what actually happened.
fn describe(err: &reqwest::Error) -> String {
    let mut msg = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(err);
    let mut innermost = None;
    while let Some(e) = source {
        innermost = Some(e.to_string());
        source = e.source();
    }
    if let Some(inner) = innermost {
        msg.push_str(": ");
        msg.push_str(&inner);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.invalid` never resolves (RFC 6761 §6.4: the resolver answers
    /// NXDOMAIN itself, so no network is needed): it is told as a name that
    /// did not resolve, never as hickory's query dump.
    #[test]
    fn a_name_that_does_not_resolve_is_named() {
        let roots = crate::tls::control_plane_roots(None).unwrap();
        let client = HttpClient::new(crate::tls::with_roots(roots).unwrap()).unwrap();
        let e = client
            .get(
                "https://nonexistent.invalid/v1",
                None,
                Duration::from_secs(5),
            )
            .unwrap_err();
        let FetchError::Unresolved { host, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(host, "nonexistent.invalid");
        let text = e.to_string();
        assert!(
            text.starts_with("cannot resolve nonexistent.invalid: "),
            "{text}"
        );
        assert!(!text.contains("Query"), "{text}");
        let err = e.unreachable("https://nonexistent.invalid");
        assert!(
            err.hint_text().unwrap().contains("/etc/resolv.conf"),
            "{err}"
        );
    }
}
