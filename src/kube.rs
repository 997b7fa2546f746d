//! The few Kubernetes API calls a join makes after trust, with the bootstrap
//! token as bearer, to the verified `server` URL, trusting the cluster CA
//! alone (contract §3, "after trust").

use std::time::Instant;

use serde::Deserialize;

use crate::discovery::TrustedCluster;
use crate::error::{Error, Result};
use crate::http::{FetchError, HttpClient, Reply};
use crate::retry::{self, Attempt, Backoff};
use crate::secret::BootstrapToken;
use crate::tls;

pub const KUBELET_CONFIG_PATH: &str = "/api/v1/namespaces/kube-system/configmaps/kubelet-config";

/// What the cluster says about a Node of our name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Absent,
    Ready,
    NotReady,
    /// The token may not read Nodes; the check could not be made.
    Unknown,
}

pub struct Api {
    client: HttpClient,
    base: String,
    token: BootstrapToken,
}

impl Api {
    pub fn new(trusted: &TrustedCluster, token: &BootstrapToken) -> Result<Self> {
        let ders: Vec<_> = trusted.verified.cas.iter().map(|c| c.der.clone()).collect();
        let roots = tls::cluster_roots(&ders).map_err(Error::trust)?;
        Ok(Api {
            client: HttpClient::new(tls::with_roots(roots).map_err(Error::internal)?)?,
            base: trusted.verified.server.base_url(),
            token: token.clone(),
        })
    }

    /// GET with retries on transient failures; any complete answer is
    /// returned for the caller to judge.
    fn get(&self, path: &str, what: &str, deadline: Instant) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let bearer = self.token.expose_bearer();
        retry::run(
            what,
            deadline,
            Backoff::default(),
            |_, remaining| match self.client.get(&url, Some(&bearer), remaining) {
                Ok(r) if matches!(r.status, 408 | 429 | 500 | 502 | 503 | 504) => Attempt::Retry {
                    error: Error::unreachable(format!("{} answered {}", self.base, r.status)),
                    retry_after: r.retry_after,
                },
                Ok(r) => Attempt::Done(r),
                Err(e @ (FetchError::Transient(_) | FetchError::Unresolved { .. })) => {
                    Attempt::Retry {
                        error: e.unreachable(&self.base),
                        retry_after: None,
                    }
                }
                Err(FetchError::Tls(why)) => Attempt::Fail(Error::trust(format!(
                    "{} failed TLS verification against the cluster CA: {why}",
                    self.base
                ))),
                Err(e @ FetchError::TooLarge) => {
                    Attempt::Fail(Error::trust(format!("{}: {e}", self.base)))
                }
            },
        )
    }

    /// The cluster's KubeletConfiguration (`kubelet` key), or None when the
    /// cluster has no `kubelet-config` ConfigMap.
    pub fn kubelet_config(&self, deadline: Instant) -> Result<Option<String>> {
        let reply = self.get(
            KUBELET_CONFIG_PATH,
            "reading kube-system/kubelet-config",
            deadline,
        )?;
        match reply.status {
            200 => {
                #[derive(Deserialize)]
                struct Cm {
                    #[serde(default)]
                    data: std::collections::BTreeMap<String, String>,
                }
                let cm: Cm = serde_json::from_slice(&reply.body).map_err(|e| {
                    Error::trust(format!("kube-system/kubelet-config is not a ConfigMap: {e}"))
                })?;
                match cm.data.get("kubelet") {
                    Some(k) => Ok(Some(k.clone())),
                    None => Err(Error::trust("kube-system/kubelet-config has no `kubelet` key")),
                }
            }
            404 => {
                tracing::warn!(
                    "the cluster has no kube-system/kubelet-config; the kubelet starts from kubeadm's defaults"
                );
                Ok(None)
            }
            s => Err(status_error(s, &reply, "read kube-system/kubelet-config")
                .hint("the bootstrap token's group needs kubeadm's RBAC (Role kubeadm:kubelet-config)")),
        }
    }

    /// The Node named `name`, as far as the token may see it.
    pub fn node(&self, name: &str, deadline: Instant) -> Result<NodeState> {
        let reply = self.get(
            &format!("/api/v1/nodes/{name}"),
            "reading the Node",
            deadline,
        )?;
        match reply.status {
            200 => {
                let v: serde_json::Value = serde_json::from_slice(&reply.body)
                    .map_err(|e| Error::trust(format!("the Node {name} is not JSON: {e}")))?;
                let ready = v["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                Ok(if ready {
                    NodeState::Ready
                } else {
                    NodeState::NotReady
                })
            }
            404 => Ok(NodeState::Absent),
            401 | 403 => {
                tracing::warn!(
                    "the bootstrap token may not read Nodes ({}); cannot check for a Ready Node named {name}",
                    reply.status
                );
                Ok(NodeState::Unknown)
            }
            s => Err(status_error(s, &reply, &format!("read the Node {name}"))),
        }
    }
}

fn status_error(status: u16, reply: &Reply, what: &str) -> Error {
    let message = serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| {
            v["message"]
                .as_str()
                .map(|m| crate::error::printable(m, 300))
        })
        .unwrap_or_default();
    let class = if status == 401 || status == 403 {
        Error::trust
    } else {
        Error::rejected
    };
    class(format!(
        "the API server refused to {what}: {status} {message}"
    ))
}
