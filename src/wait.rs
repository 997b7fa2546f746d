//! Waiting for the node (contract `--wait`): after the kubelet starts, its
//! TLS bootstrap (it writes /etc/kubernetes/kubelet.conf), then its Node
//! object, read with the kubelet's own credentials, then optionally Ready.
//! On timeout the error names the stage that did not happen and what the
//! kubelet said, instead of "timed out waiting for the condition".

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Class, Error, Result};
use crate::host::{Live, Root, system};
use crate::http::HttpClient;
use crate::plan::paths;
use crate::tls;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wait {
    /// Start the kubelet and return.
    None,
    /// Until the kubelet has its own credentials and its Node exists.
    Registered,
    /// Until the Node is Ready.
    Ready,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Cheap until the kubelet has credentials (a file read), so the wait can
/// notice them promptly.
const POLL: Duration = Duration::from_millis(250);

#[derive(Deserialize)]
struct KubeletConf {
    #[serde(default)]
    users: Vec<NamedUser>,
}

#[derive(Deserialize)]
struct NamedUser {
    user: User,
}

#[derive(Deserialize)]
struct User {
    #[serde(rename = "client-certificate")]
    client_certificate: Option<String>,
    #[serde(rename = "client-key")]
    client_key: Option<String>,
}

/// The kubelet's credentials, once its TLS bootstrap is done.
fn kubelet_credentials(
    root: &Root,
) -> Option<(
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let text = std::fs::read_to_string(root.path(paths::KUBELET_KUBECONFIG)).ok()?;
    let conf: KubeletConf = serde_saphyr::from_str(&text).ok()?;
    let user = &conf.users.first()?.user;
    let cert_pem = std::fs::read(root.path(user.client_certificate.as_deref()?)).ok()?;
    let key_pem = std::fs::read(root.path(user.client_key.as_deref()?)).ok()?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(|c| c.ok())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(&key_pem).ok()?;
    (!chain.is_empty()).then_some((chain, key))
}

/// Whether the kubelet already holds credentials for this cluster: then a
/// re-run has no bootstrap credential to hand out again.
pub fn kubelet_has_credentials(root: &Root) -> bool {
    kubelet_credentials(root).is_some()
}

/// Waits as asked. `cas` are the trusted cluster CA certificates.
/// `retire_bootstrap` removes the bootstrap kubeconfig once the kubelet has
/// its own credentials (the join records that in its journal first).
#[allow(clippy::too_many_arguments)]
pub fn wait_for_node(
    live: Live,
    root: &Root,
    server: &str,
    cas: &[rustls::pki_types::CertificateDer<'static>],
    node: &str,
    mode: Wait,
    timeout: Duration,
    token: &crate::secret::BootstrapToken,
    retire_bootstrap: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    if mode == Wait::None {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    let started = Instant::now();
    let mut announced_credentials = false;
    let mut last = String::from(
        "the kubelet has not finished its TLS bootstrap: no usable /etc/kubernetes/kubelet.conf",
    );
    tracing::info!(
        "waiting up to {}s for the kubelet's TLS bootstrap and Node {node:?}",
        timeout.as_secs()
    );
    while Instant::now() < deadline {
        if let Some((chain, key)) = kubelet_credentials(root) {
            if !announced_credentials {
                announced_credentials = true;
                tracing::info!(
                    "the kubelet has its own credentials after {:.1}s (TLS bootstrap done)",
                    started.elapsed().as_secs_f64()
                );
                // As kubeadm does: the bootstrap token is not needed any more.
                retire_bootstrap()?;
            }
            match node_state(server, cas, chain, key, node, deadline) {
                Ok(Some(ready)) if mode == Wait::Registered || ready => {
                    tracing::info!(
                        "Node {node:?} is registered{} after {:.1}s",
                        if ready { " and Ready" } else { "" },
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
                Ok(Some(_)) => last = format!("the Node {node:?} is registered but not Ready yet"),
                Ok(None) => {
                    last = format!(
                        "the kubelet has its credentials, but no Node {node:?} is registered yet"
                    )
                }
                Err(e) => {
                    last = format!("cannot read the Node with the kubelet's credentials: {e}")
                }
            }
        }
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
    let csrs = csr_report(server, cas, token);
    Err(diagnose(live, node, &last, &csrs, timeout))
}

/// What the API server says about CSRs this bootstrap token created: the
/// difference between "the kubelet never reached the API server" and "its
/// CSR is waiting for approval".
fn csr_report(
    server: &str,
    cas: &[rustls::pki_types::CertificateDer<'static>],
    token: &crate::secret::BootstrapToken,
) -> String {
    let client = match tls::cluster_roots(cas)
        .and_then(tls::with_roots)
        .map_err(|e| e.to_string())
        .and_then(|c| HttpClient::new(c).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return format!("CSRs could not be checked: {e}"),
    };
    let url = format!("{server}/apis/certificates.k8s.io/v1/certificatesigningrequests");
    let reply = match client.get(&url, Some(&token.expose_bearer()), Duration::from_secs(10)) {
        Ok(r) if r.status == 200 => r,
        Ok(r) => {
            return format!(
                "CSRs could not be listed (the API server answered {})",
                r.status
            );
        }
        Err(e) => return format!("CSRs could not be listed: {e}"),
    };
    let Ok(list) = serde_json::from_slice::<serde_json::Value>(&reply.body) else {
        return "CSRs could not be listed: the answer is not JSON".into();
    };
    let user = format!("system:bootstrap:{}", token.id());
    let ours: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["spec"]["username"] == user.as_str())
        .map(|c| {
            let approved = c["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["type"] == "Approved");
            let issued = c["status"]["certificate"]
                .as_str()
                .is_some_and(|s| !s.is_empty());
            format!(
                "{} ({}, {})",
                crate::error::printable(c["metadata"]["name"].as_str().unwrap_or("?"), 80),
                if approved { "approved" } else { "not approved" },
                if issued {
                    "certificate issued"
                } else {
                    "no certificate yet"
                }
            )
        })
        .collect();
    if ours.is_empty() {
        "no CSR was created with this bootstrap token: the kubelet did not reach the API server"
            .into()
    } else {
        format!(
            "CSRs created with this bootstrap token: {}",
            ours.join(", ")
        )
    }
}

/// Some(ready) when the Node exists, None when it does not (yet).
fn node_state(
    server: &str,
    cas: &[rustls::pki_types::CertificateDer<'static>],
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    node: &str,
    deadline: Instant,
) -> std::result::Result<Option<bool>, String> {
    let roots = tls::cluster_roots(cas)?;
    let client = HttpClient::new(tls::with_roots_and_client_cert(roots, chain, key)?)
        .map_err(|e| e.to_string())?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    let reply = client
        .get(&format!("{server}/api/v1/nodes/{node}"), None, remaining)
        .map_err(|e| e.to_string())?;
    match reply.status {
        200 => {
            let v: serde_json::Value =
                serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
            let ready = v["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            Ok(Some(ready))
        }
        404 => Ok(None),
        s => Err(format!("the API server answered {s}")),
    }
}

/// Exit 7, naming the stage that did not happen and what the kubelet says.
fn diagnose(live: Live, node: &str, last: &str, csrs: &str, timeout: Duration) -> Error {
    let unit = system::unit_state(live, "kubelet.service");
    let tail = system::journal_tail(live, "kubelet.service", 8);
    Error::new(
        Class::WaitTimeout,
        format!(
            "the node {node:?} did not join within {}s: {last}.\n  {csrs}.\n  kubelet.service is {} and {}; its last journal lines:\n{}",
            timeout.as_secs(),
            unit.enabled,
            if unit.active { "running" } else { "not running" },
            tail.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
        ),
    )
    .hint("the kubelet's journal (journalctl -u kubelet) says why; allow more time with --wait-timeout, or check that the control plane approves the kubelet's CSR")
}
