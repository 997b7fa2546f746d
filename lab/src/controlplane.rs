//! The control plane: trades an openapi token for ClusterInfo
//! (contract section 1), with the faults that exercise the client's retry
//! and rejection rules.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::faults::{ControlPlaneBody, Countdown, Plan, RetryAfter, Transient};
use crate::https::{Credential, Handler, Response, Stop, credential};
use crate::request::Request;
use crate::timefmt;

pub(crate) const PATH: &str = "/v1/node-attach";

/// Padding that takes an otherwise valid answer over the client's 1 MiB cap.
const OVERSIZED_PADDING: usize = 2 * 1024 * 1024;

/// ClusterInfo version 1, fields in the order the contract lists them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterInfo<'a> {
    version: u32,
    cluster_name: &'a str,
    api_server_endpoints: &'a [String],
    bootstrap_token: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    ca_cert_hashes: &'a [String],
    kubernetes_version: &'a str,
    #[serde(rename = "clusterDNS")]
    cluster_dns: [&'a str; 1],
    cluster_domain: &'a str,
    node: NodeSettings<'a>,
    #[serde(skip_serializing_if = "<[ArtifactEntry]>::is_empty")]
    artifacts: &'a [ArtifactEntry],
}

#[derive(Serialize, Clone)]
pub(crate) struct ArtifactEntry {
    name: String,
    url: String,
    sha256: String,
}

/// Files the control plane serves under /artifacts/, and their entries.
pub(crate) struct Artifacts {
    entries: Vec<ArtifactEntry>,
    files: BTreeMap<String, Vec<u8>>,
    downloads: BTreeMap<String, Vec<u8>>,
}

impl Artifacts {
    pub fn new(
        base: &str,
        artifacts: Vec<(String, Vec<u8>)>,
        downloads: Vec<(String, Vec<u8>)>,
        corrupted: bool,
    ) -> Artifacts {
        use sha2::Digest;
        let mut entries = Vec::new();
        let mut files = BTreeMap::new();
        for (name, mut bytes) in artifacts {
            let sum: String = sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            entries.push(ArtifactEntry {
                url: format!("{base}/artifacts/{name}"),
                sha256: sum,
                name: name.clone(),
            });
            if corrupted {
                // Served differently from what the checksum promises.
                bytes.push(b'!');
            }
            files.insert(name, bytes);
        }
        Artifacts {
            entries,
            files,
            downloads: downloads.into_iter().collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeSettings<'a> {
    labels: BTreeMap<&'a str, &'a str>,
    name_source: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
}

pub(crate) struct Tokens {
    pub valid: String,
    pub single_use: String,
    pub expired: String,
}

pub(crate) struct ControlPlane {
    tokens: Tokens,
    single_use_spent: AtomicBool,
    transients: Countdown<Transient>,
    status: Option<u16>,
    slow: Option<Duration>,
    body: Vec<u8>,
    artifacts: BTreeMap<String, Vec<u8>>,
    downloads: BTreeMap<String, Vec<u8>>,
    stop: Arc<Stop>,
}

impl ControlPlane {
    pub fn new(
        tokens: Tokens,
        plan: &Plan,
        endpoints: &[String],
        bootstrap_token: &str,
        ca_cert_hashes: &[String],
        artifacts: Artifacts,
        stop: Arc<Stop>,
    ) -> ControlPlane {
        let info = ClusterInfo {
            version: 1,
            cluster_name: "lab",
            api_server_endpoints: endpoints,
            bootstrap_token,
            ca_cert_hashes,
            kubernetes_version: "1.31.4",
            cluster_dns: ["10.96.0.10"],
            cluster_domain: "cluster.local",
            node: NodeSettings {
                labels: BTreeMap::from([("lab.attach-node.dev/pool", "default")]),
                name_source: "hostname",
            },
            artifacts: &artifacts.entries,
        };
        let body = match plan.cp_body {
            ControlPlaneBody::Normal => serde_json::to_vec(&info),
            ControlPlaneBody::Oversized => {
                // Everything the client needs is there and valid; only the
                // size is wrong, so a client must reject it on size alone.
                let mut value = serde_json::to_value(&info).expect("serialisable");
                value["x-lab-padding"] = "x".repeat(OVERSIZED_PADDING).into();
                serde_json::to_vec(&value)
            }
            ControlPlaneBody::NotSchema => {
                let mut value = serde_json::to_value(&info).expect("serialisable");
                value
                    .as_object_mut()
                    .expect("ClusterInfo is an object")
                    .remove("bootstrapToken");
                serde_json::to_vec(&value)
            }
        }
        .expect("ClusterInfo serialises");
        ControlPlane {
            tokens,
            single_use_spent: AtomicBool::new(false),
            transients: Countdown::new(plan.cp_transients.clone()),
            status: plan.cp_status,
            slow: plan.cp_slow,
            body,
            artifacts: artifacts.files,
            downloads: artifacts.downloads,
            stop,
        }
    }
}

fn error(status: u16, message: &str) -> Response {
    let body = serde_json::to_vec(&ErrorBody {
        code: status,
        message,
    })
    .expect("serialisable");
    Response::json(status, body)
}

fn retry_after_value(r: RetryAfter) -> Option<String> {
    match r {
        RetryAfter::Seconds(s) => Some(s.to_string()),
        RetryAfter::HttpDate(d) => {
            // An HTTP date has whole seconds; round up so the client never
            // waits less than asked.
            let at = SystemTime::now() + d;
            let since = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            let at = if since.subsec_nanos() > 0 {
                SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs() + 1)
            } else {
                at
            };
            Some(timefmt::imf_fixdate(at))
        }
        RetryAfter::None => None,
    }
}

impl Handler for ControlPlane {
    fn handle(&self, req: &Request) -> Response {
        if let Some(d) = self.slow {
            self.stop.sleep(d);
        }
        let public = if let Some(name) = req.path().strip_prefix("/artifacts/") {
            Some(self.artifacts.get(name))
        } else {
            req.path()
                .strip_prefix("/downloads/")
                .map(|name| self.downloads.get(name))
        };
        if let Some(file) = public {
            // Public downloads, like a release bucket: no token.
            return match file {
                Some(bytes) => Response::new(200, "application/octet-stream", bytes.clone()),
                None => error(404, "no such artifact"),
            };
        }
        if req.path() != PATH {
            return error(404, "not found");
        }
        if req.method != "GET" {
            return error(405, "method not allowed").header("Allow", "GET");
        }
        if let Some(t) = self.transients.take() {
            return match t {
                Transient::TooManyRequests(r) => {
                    let resp = error(429, "too many requests");
                    match retry_after_value(r) {
                        Some(v) => resp.header("Retry-After", v),
                        None => resp,
                    }
                }
                Transient::ServerError(status) => error(status, "injected server error"),
            };
        }
        if let Some(status) = self.status {
            return error(status, "injected status");
        }
        let token = match credential(req) {
            Credential::Bearer(t) => t,
            Credential::Anonymous | Credential::Other => {
                return error(401, "missing bearer token");
            }
        };
        if token == self.tokens.expired {
            return error(403, "openapi token expired");
        }
        if token == self.tokens.single_use {
            // Spent only by an answer that carries the cluster info: a
            // request refused earlier (429, 5xx) did not use it.
            if self.single_use_spent.swap(true, Ordering::SeqCst) {
                return error(410, "openapi token already used");
            }
        } else if token != self.tokens.valid {
            return error(401, "unknown openapi token");
        }
        Response::json(200, self.body.clone())
    }
}
