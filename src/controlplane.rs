//! Trading an openapi token for ClusterInfo (contract §1).

use std::time::Instant;

use crate::clusterinfo::{self, ClusterInfo};
use crate::error::{Error, Result};
use crate::http::{FetchError, HttpClient};
use crate::retry::{self, Attempt, Backoff};
use crate::settings::ControlPlane;
use crate::tls;

pub const PATH: &str = "/v1/node-attach";

/// The control plane's answer: parsed, and the bytes it was parsed from
/// (a join keeps those, so that a re-run needs no new token).
pub struct Answer {
    pub cluster_info: ClusterInfo,
    /// They hold the bootstrap token: wiped when dropped.
    pub raw: zeroize::Zeroizing<Vec<u8>>,
}

/// Asks the control plane for ClusterInfo, retrying what the contract says
/// is transient until `deadline`.
pub fn resolve(cp: &ControlPlane, deadline: Instant, backoff: Backoff) -> Result<Answer> {
    let roots = tls::control_plane_roots(cp.extra_ca_pem.as_deref()).map_err(Error::usage)?;
    let client = HttpClient::new(tls::with_roots(roots).map_err(Error::internal)?)?;
    let url = format!("{}{PATH}", cp.url);
    tracing::info!("resolving the openapi token at {}", cp.url);
    retry::run(
        "control plane",
        deadline,
        backoff,
        |_, remaining| match client.get(&url, Some(cp.token.expose_for_header()), remaining) {
            Ok(reply) => {
                // The answer holds the bootstrap token: wiped once dropped.
                let body = zeroize::Zeroizing::new(reply.body);
                match judge(reply.status, reply.retry_after, &body, &cp.url) {
                    Attempt::Done(cluster_info) => Attempt::Done(Answer {
                        cluster_info,
                        raw: body,
                    }),
                    Attempt::Retry { error, retry_after } => Attempt::Retry { error, retry_after },
                    Attempt::Fail(e) => Attempt::Fail(e),
                }
            }
            Err(e @ (FetchError::Transient(_) | FetchError::Unresolved { .. })) => Attempt::Retry {
                error: e.unreachable(&cp.url),
                retry_after: None,
            },
            Err(FetchError::Tls(why)) => Attempt::Fail(
                Error::trust(format!(
                    "the control plane {} failed TLS verification: {why}",
                    cp.url
                ))
                .hint("if it uses a private CA, pass that CA with --control-plane-ca"),
            ),
            Err(FetchError::TooLarge) => Attempt::Fail(Error::rejected(format!(
                "the control plane's answer is larger than {} bytes; refusing to read it",
                crate::http::BODY_CAP
            ))),
        },
    )
}

/// Maps one answer to what comes next (contract §1's status table).
fn judge(
    status: u16,
    retry_after: Option<std::time::Duration>,
    body: &[u8],
    base: &str,
) -> Attempt<ClusterInfo> {
    match status {
        200 => match clusterinfo::parse(body) {
            Ok(ci) => Attempt::Done(ci),
            Err(e) => Attempt::Fail(
                Error::rejected(format!("the control plane's answer is not a valid ClusterInfo v1: {e}"))
                    .hint("the control plane and this agent may disagree on the ClusterInfo version; see docs/clusterinfo.schema.json"),
            ),
        },
        401 | 403 | 404 | 410 => {
            let what = match status {
                401 => "unknown",
                403 => "expired or not allowed",
                404 => "not found",
                _ => "already used",
            };
            Attempt::Fail(
                Error::rejected(format!(
                    "the control plane {base} rejected the openapi token ({status}: {what})"
                ))
                .hint("ask the control plane for a new openapi token; they are short-lived and may be single-use"),
            )
        }
        408 | 429 | 500 | 502 | 503 | 504 => Attempt::Retry {
            error: Error::unreachable(format!("the control plane {base} answered {status}")),
            retry_after,
        },
        other => Attempt::Fail(Error::rejected(format!(
            "the control plane {base} answered with unexpected status {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(a: Attempt<ClusterInfo>) -> (&'static str, u8) {
        match a {
            Attempt::Done(_) => ("done", 0),
            Attempt::Retry { error, .. } => ("retry", error.exit_code()),
            Attempt::Fail(e) => ("fail", e.exit_code()),
        }
    }

    #[test]
    fn status_table() {
        for s in [401, 403, 404, 410] {
            assert_eq!(class(judge(s, None, b"", "https://cp")), ("fail", 3), "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(
                class(judge(s, None, b"", "https://cp")),
                ("retry", 5),
                "{s}"
            );
        }
        for s in [201, 301, 400, 418, 501] {
            assert_eq!(class(judge(s, None, b"", "https://cp")), ("fail", 3), "{s}");
        }
        assert_eq!(class(judge(200, None, b"{}", "https://cp")), ("fail", 3));
    }
}
