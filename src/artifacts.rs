//! Artifacts from ClusterInfo (`artifacts: [{name, url, sha256}]`): what a
//! bare VM needs installed (a kubelet, crictl, ...). Each is downloaded after
//! trust and checked against its sha256 before anything else happens; it
//! then becomes an ordinary file of the Plan (`/usr/local/bin/<name>`,
//! 0755), so the journal installs it atomically and reset removes it.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::clusterinfo::Artifact;
use crate::error::{Error, Result};
use crate::http::{FetchError, HttpClient};
use crate::retry::{self, Attempt, Backoff};
use crate::tls;

/// A kubelet is about 100 MiB; nothing we install is near this.
pub const CAP: usize = 512 << 20;
/// Per request: a large file on a slow link takes a while.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

pub const INSTALL_DIR: &str = "/usr/local/bin";

pub fn install_path(name: &str) -> String {
    format!("{INSTALL_DIR}/{name}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `bytes` are what ClusterInfo promised.
pub fn verify(bytes: &[u8], want: &[u8; 32]) -> std::result::Result<(), String> {
    let got: [u8; 32] = Sha256::digest(bytes).into();
    if &got == want {
        Ok(())
    } else {
        Err(format!(
            "its sha256 is {}, ClusterInfo says {}",
            hex(&got),
            hex(want)
        ))
    }
}

/// Downloads and checks every artifact, with the control plane's trust
/// (system roots plus `--control-plane-ca`).
pub fn fetch_all(
    artifacts: &[Artifact],
    extra_ca: Option<&[u8]>,
    deadline: Instant,
) -> Result<Vec<(String, Vec<u8>)>> {
    if artifacts.is_empty() {
        return Ok(Vec::new());
    }
    let roots = tls::control_plane_roots(extra_ca).map_err(Error::usage)?;
    let client = HttpClient::new(tls::with_roots(roots).map_err(Error::internal)?)?;
    let mut out = Vec::new();
    for a in artifacts {
        tracing::info!("downloading artifact {} from {}", a.name, a.url);
        let what = format!("artifact {}", a.name);
        let bytes = retry::run(
            &what,
            deadline,
            Backoff::default(),
            |_, remaining| match client.get_capped(&a.url, None, remaining, CAP, REQUEST_TIMEOUT) {
                Ok(r) if r.status == 200 => match verify(&r.body, &a.sha256) {
                    Ok(()) => Attempt::Done(r.body),
                    Err(why) => Attempt::Fail(
                        Error::trust(format!(
                            "artifact {} from {}: {why}; refusing to install it",
                            a.name, a.url
                        ))
                        .hint("the download was altered or the control plane's checksum is stale"),
                    ),
                },
                Ok(r) if matches!(r.status, 408 | 429 | 500 | 502 | 503 | 504) => Attempt::Retry {
                    error: Error::unreachable(format!("{} answered {}", a.url, r.status)),
                    retry_after: r.retry_after,
                },
                Ok(r) => Attempt::Fail(Error::rejected(format!(
                    "artifact {}: {} answered {}",
                    a.name, a.url, r.status
                ))),
                Err(e @ (FetchError::Transient(_) | FetchError::Unresolved { .. })) => {
                    Attempt::Retry {
                        error: e.unreachable(&a.url),
                        retry_after: None,
                    }
                }
                Err(FetchError::Tls(why)) => Attempt::Fail(Error::trust(format!(
                    "artifact {}: {} failed TLS verification: {why}",
                    a.name, a.url
                ))),
                Err(FetchError::TooLarge) => Attempt::Fail(Error::rejected(format!(
                    "artifact {} is larger than {} MiB",
                    a.name,
                    CAP >> 20
                ))),
            },
        )?;
        tracing::info!(
            "artifact {}: {} bytes, sha256 verified",
            a.name,
            bytes.len()
        );
        out.push((a.name.clone(), bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_compares_sha256() {
        let want: [u8; 32] = Sha256::digest(b"kubelet").into();
        assert!(verify(b"kubelet", &want).is_ok());
        let err = verify(b"kubelet!", &want).unwrap_err();
        assert!(err.contains("ClusterInfo says"), "{err}");
    }
}
