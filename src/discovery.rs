//! Discovery (contract §3): cluster-info fetched anonymously without TLS
//! verification, verified by the bootstrap token's JWS and the pins, then
//! fetched again over TLS verified by that CA alone, and required to be
//! byte-for-byte the same.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::http::{FetchError, HttpClient, Reply};
use crate::retry::{self, Attempt, Backoff};
use crate::settings::ClusterSource;
use crate::tls;
use crate::trust::kubeconfig::ServerUrl;
use crate::trust::{self, Distrust, VerifiedClusterInfo};

pub const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// How long a missing signature for our token id is waited out. The
/// bootstrap signer adds signatures asynchronously, so a brand-new token
/// may lack one for a moment; a wrong or expired token lacks it forever, and
/// waiting the whole deadline for that (as kubeadm does) only hides the error.
pub const SIGNATURE_GRACE: Duration = Duration::from_secs(20);

/// A cluster whose CA is trusted.
#[derive(Debug)]
pub struct TrustedCluster {
    /// The endpoint that answered.
    pub endpoint: ServerUrl,
    pub verified: VerifiedClusterInfo,
}

pub fn discover(
    source: &ClusterSource,
    deadline: Instant,
    backoff: Backoff,
) -> Result<TrustedCluster> {
    if source.endpoints.is_empty() {
        return Err(Error::usage("no API server endpoint to discover from"));
    }
    if source.pins.is_empty() {
        tracing::warn!(
            "no CA pin was given: the cluster CA is trusted on the bootstrap token's signature alone; \
             pass --ca-cert-hash to pin it"
        );
    }
    let (endpoint, first) = first_fetch(source, deadline, backoff)?;
    tracing::info!(
        "cluster-info from {endpoint} is signed by token {}; CA {} ({})",
        source.token,
        first.cas[0].subject,
        first.primary_ca(&source.pins).pin
    );
    second_fetch(&endpoint, &first, deadline, backoff)?;
    tracing::info!("cluster-info re-fetched over TLS verified by the cluster CA: identical");
    Ok(TrustedCluster {
        endpoint,
        verified: first,
    })
}

fn url_of(endpoint: &ServerUrl) -> String {
    format!("{}{CLUSTER_INFO_PATH}", endpoint.base_url())
}

/// Steps 1-4: try each endpoint in order on every attempt; the first that
/// answers 200 is verified.
fn first_fetch(
    source: &ClusterSource,
    deadline: Instant,
    backoff: Backoff,
) -> Result<(ServerUrl, VerifiedClusterInfo)> {
    let client = HttpClient::new(tls::accept_any_certificate().map_err(Error::internal)?)?;
    let mut unsigned_since: Option<Instant> = None;
    // Once an API server has said our token has no signature, that is the
    // diagnosis; an attempt later cut short by the deadline must not turn it
    // into "unreachable".
    let mut unsigned: Option<Error> = None;
    retry::run("discovery", deadline, backoff, |_, _| {
        let mut failures = Vec::new();
        let mut hint = None;
        let mut retry_after = None;
        // An endpoint that refuses anonymous reads (a server of another
        // cluster behind that address, or one without kubeadm's RBAC) says
        // nothing about the others: they are still tried, and the refusal
        // is final only when no endpoint could still answer.
        let mut refusal: Option<Error> = None;
        let mut refusals = 0;
        for endpoint in &source.endpoints {
            let remaining = deadline.saturating_duration_since(Instant::now());
            tracing::debug!(
                "fetching cluster-info from {endpoint} without TLS verification (no CA yet)"
            );
            let reply = match client.get(&url_of(endpoint), None, remaining) {
                Ok(r) => r,
                Err(e @ FetchError::TooLarge) => {
                    return Attempt::Fail(Error::trust(format!("{endpoint}: cluster-info: {e}")));
                }
                Err(e) => {
                    failures.push(format!("{endpoint}: {e}"));
                    hint = hint.or(e.hint());
                    continue;
                }
            };
            match reply.status {
                200 => {}
                408 | 429 | 500 | 502 | 503 | 504 => {
                    retry_after = retry_after.max(reply.retry_after);
                    failures.push(format!("{endpoint}: answered {}", reply.status));
                    continue;
                }
                401 | 403 => {
                    tracing::warn!(
                        "{endpoint} refused the anonymous cluster-info read ({}); trying the next endpoint",
                        reply.status
                    );
                    refusal.get_or_insert_with(|| refused(endpoint, &reply));
                    refusals += 1;
                    failures.push(format!("{endpoint}: refused with {}", reply.status));
                    continue;
                }
                _ => return Attempt::Fail(refused(endpoint, &reply)),
            }
            let now = OffsetDateTime::now_utc();
            return match trust::verify_cluster_info(&reply.body, &source.token, &source.pins, now) {
                Ok(v) => Attempt::Done((endpoint.clone(), v)),
                Err(d @ Distrust::NoSignature { .. }) => {
                    let since = *unsigned_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= SIGNATURE_GRACE {
                        Attempt::Fail(d.into())
                    } else {
                        let error = Error::from(d).context(format!(
                            "{endpoint} (the signer may not have signed it yet)"
                        ));
                        unsigned = Some(error.clone());
                        Attempt::Retry {
                            error,
                            retry_after: None,
                        }
                    }
                }
                // Waited out within the deadline, then still exit 4 with
                // the clock named: time synchronisation may catch up.
                Err(d) if d.is_clock_behind() => Attempt::Retry {
                    error: Error::from(d).context(endpoint.to_string()).hint(
                        "this host's clock is behind the cluster CA: start time synchronisation \
                         (chrony, systemd-timesyncd) before the join, or set the clock",
                    ),
                    retry_after: None,
                },
                Err(d) => Attempt::Fail(Error::from(d).context(endpoint.to_string())),
            };
        }
        if let Some(e) = refusal
            && refusals == source.endpoints.len()
        {
            return Attempt::Fail(e);
        }
        let error = match &unsigned {
            Some(e) => {
                tracing::debug!("no API server answered this time: {}", failures.join("; "));
                e.clone()
            }
            None => {
                let e =
                    Error::unreachable(format!("no API server answered: {}", failures.join("; ")));
                match &hint {
                    Some(h) => e.hint(h.clone()),
                    None => e,
                }
            }
        };
        Attempt::Retry { error, retry_after }
    })
}

/// Step 5: the same endpoint again, now trusting only the cluster CA and
/// checking the host name; the kubeconfig must not have changed.
fn second_fetch(
    endpoint: &ServerUrl,
    first: &VerifiedClusterInfo,
    deadline: Instant,
    backoff: Backoff,
) -> Result<()> {
    let ders: Vec<_> = first.cas.iter().map(|c| c.der.clone()).collect();
    let roots = tls::cluster_roots(&ders).map_err(Error::trust)?;
    let client = HttpClient::new(tls::with_roots(roots).map_err(Error::internal)?)?;
    let url = url_of(endpoint);
    retry::run(
        "verified re-fetch of cluster-info",
        deadline,
        backoff,
        |_, remaining| {
            let reply = match client.get(&url, None, remaining) {
                Ok(r) => r,
                Err(FetchError::Tls(why)) => {
                    return Attempt::Fail(
                    Error::trust(format!(
                        "{endpoint} did not prove itself with the cluster CA: {why}"
                    ))
                    .hint("the server's certificate must be issued by the CA in cluster-info and name this endpoint's host"),
                );
                }
                Err(e @ FetchError::TooLarge) => {
                    return Attempt::Fail(Error::trust(format!("{endpoint}: {e}")));
                }
                Err(e @ (FetchError::Transient(_) | FetchError::Unresolved { .. })) => {
                    return Attempt::Retry {
                        error: e.unreachable(&endpoint.to_string()),
                        retry_after: None,
                    };
                }
            };
            match reply.status {
                200 => {}
                408 | 429 | 500 | 502 | 503 | 504 => {
                    return Attempt::Retry {
                        error: Error::unreachable(format!("{endpoint} answered {}", reply.status)),
                        retry_after: reply.retry_after,
                    };
                }
                _ => return Attempt::Fail(refused(endpoint, &reply)),
            }
            let same = trust::configmap_data(&reply.body)
                .and_then(|data| trust::kubeconfig_in(&data).map(|k| k == first.kubeconfig));
            match same {
                Ok(true) => Attempt::Done(()),
                Ok(false) => Attempt::Fail(Error::trust(format!(
                    "cluster-info from {endpoint} changed between the unverified and the verified fetch; refusing to trust either"
                ))),
                Err(d) => Attempt::Fail(Error::from(d).context(endpoint.to_string())),
            }
        },
    )
}

/// A final non-200 answer from an API server, with its Status message.
fn refused(endpoint: &ServerUrl, reply: &Reply) -> Error {
    let message = serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .map(|m| format!(": {}", crate::error::printable(&m, 300)))
        .unwrap_or_default();
    let hint = match reply.status {
        401 | 403 => {
            "cluster-info must be readable anonymously (kubeadm's RBAC for kube-public/cluster-info)"
        }
        404 => {
            "this API server has no kube-public/cluster-info: it is not set up for token bootstrapping"
        }
        _ => "check the endpoint; it should be the cluster's API server",
    };
    Error::trust(format!(
        "{endpoint} refused cluster-info with status {}{message}",
        reply.status
    ))
    .hint(hint)
}
