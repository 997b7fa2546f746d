//! Node objects: the ones a [`LabConfig`](crate::LabConfig) lists, and the
//! ones kubelets register with their client certificates, under the Node
//! authorizer and the NodeRestriction admission plugin.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use serde::Deserialize;

use crate::auth::User;
use crate::csr::MetaIn;
use crate::https::Response;
use crate::kube::{self, FieldError, ObjectMeta, Taint};
use crate::{random, timefmt};

/// A Node as the lab's API server holds it, for tests to assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// The Ready condition's status.
    pub ready: bool,
    /// Who created it (`system:node:<name>`); None for a Node the
    /// [`LabConfig`](crate::LabConfig) listed.
    pub registered_by: Option<String>,
}

struct Stored {
    uid: String,
    resource_version: u64,
    created: String,
    transition: String,
    record: NodeRecord,
}

pub(crate) struct Nodes {
    ready_on_register: bool,
    resource_versions: Arc<AtomicU64>,
    /// In creation order.
    state: Mutex<Vec<Stored>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeIn {
    kind: Option<String>,
    api_version: Option<String>,
    #[serde(default)]
    metadata: MetaIn,
    #[serde(default)]
    spec: NodeSpecIn,
}

#[derive(Default, Deserialize)]
struct NodeSpecIn {
    #[serde(default)]
    taints: Vec<Taint>,
}

/// kubeletapis.KubeletLabels: the `kubernetes.io` labels a kubelet may set
/// on its own Node.
const KUBELET_LABELS: [&str; 11] = [
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

/// kubeletapis.KubeletLabelNamespaces.
const KUBELET_LABEL_NAMESPACES: [&str; 2] = ["kubelet.kubernetes.io", "node.kubernetes.io"];

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

/// Whether a label key is in the `kubernetes.io` or `k8s.io` namespaces
/// (or a subdomain of them), which kubelets may only use from an allowed
/// set.
pub fn is_kubernetes_label(key: &str) -> bool {
    let ns = label_namespace(key);
    ns == "kubernetes.io"
        || ns.ends_with(".kubernetes.io")
        || ns == "k8s.io"
        || ns.ends_with(".k8s.io")
}

/// kubeletapis.IsKubeletLabel: a label a kubelet may set on its own Node.
pub fn is_kubelet_label(key: &str) -> bool {
    if KUBELET_LABELS.contains(&key) {
        return true;
    }
    let ns = label_namespace(key);
    KUBELET_LABEL_NAMESPACES
        .iter()
        .any(|allowed| ns == *allowed || ns.ends_with(&format!(".{allowed}")))
}

/// The message the kubelet refuses to start with when `--node-labels` holds
/// labels it may not set (cmd/kubelet/app/options).
pub fn unknown_node_labels_message(unknown: &[&str]) -> String {
    format!(
        "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [{}]\n--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix ({}) or be in the specifically allowed set ({})",
        unknown.join(" "),
        KUBELET_LABEL_NAMESPACES.join(", "),
        KUBELET_LABELS.join(", ")
    )
}

/// The labels NodeRestriction refuses on create, sorted.
fn forbidden_labels(labels: &BTreeMap<String, String>) -> Vec<&str> {
    labels
        .keys()
        .map(String::as_str)
        .filter(|k| {
            label_namespace(k) == "node-restriction.kubernetes.io"
                || (is_kubernetes_label(k) && !is_kubelet_label(k))
        })
        .collect()
}

/// A lowercase RFC 1123 subdomain, what a Node name must be.
fn is_dns_subdomain(s: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !s.is_empty() && s.len() <= 253 && s.split('.').all(label_ok)
}

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn validate(name: &str, taints: &[Taint]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !is_dns_subdomain(name) {
        errors.push(FieldError::invalid(
            "metadata.name",
            &kube::go_quote(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ));
    }
    for (i, t) in taints.iter().enumerate() {
        if t.key.is_empty() {
            errors.push(FieldError::required(&format!("spec.taints[{i}].key")));
        }
        if !TAINT_EFFECTS.contains(&t.effect.as_str()) {
            errors.push(FieldError::not_supported(
                &format!("spec.taints[{i}].effect"),
                &t.effect,
                &TAINT_EFFECTS,
            ));
        }
    }
    errors
}

impl Nodes {
    pub fn new(
        preset: &[(String, bool)],
        ready_on_register: bool,
        resource_versions: Arc<AtomicU64>,
    ) -> Nodes {
        let created = timefmt::rfc3339(SystemTime::now());
        let state = preset
            .iter()
            .enumerate()
            .map(|(i, (name, ready))| Stored {
                uid: random::uuid(),
                resource_version: 1000 + i as u64,
                created: created.clone(),
                transition: created.clone(),
                record: NodeRecord {
                    name: name.clone(),
                    labels: kube::well_known_node_labels(name),
                    annotations: BTreeMap::new(),
                    taints: Vec::new(),
                    ready: *ready,
                    registered_by: None,
                },
            })
            .collect();
        Nodes {
            ready_on_register,
            resource_versions,
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Stored>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `POST /api/v1/nodes`.
    pub fn create(&self, user: &User, body: &[u8]) -> Response {
        // The Node authorizer lets nodes create Nodes; RBAC gives nobody
        // else in a kubeadm cluster's join path that right.
        let User::Node { node, .. } = user else {
            return Response::json(403, kube::forbidden(user.name(), "create", "nodes", "", ""));
        };
        let input: NodeIn = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Response::json(
                    400,
                    kube::bad_request(&format!("error decoding the Node: {e}")),
                );
            }
        };
        if input.api_version.as_deref().is_some_and(|v| v != "v1")
            || input.kind.as_deref().is_some_and(|k| k != "Node")
        {
            return Response::json(
                400,
                kube::bad_request("the kind or API version in the data is not v1 Node"),
            );
        }
        let name = input.metadata.name.unwrap_or_default();
        // NodeRestriction, before validation.
        if name != *node {
            return Response::json(
                403,
                kube::forbidden_by_admission(
                    "",
                    "nodes",
                    &name,
                    &format!("node {node:?} is not allowed to modify node {name:?}"),
                ),
            );
        }
        let forbidden = forbidden_labels(&input.metadata.labels);
        if !forbidden.is_empty() {
            return Response::json(
                403,
                kube::forbidden_by_admission(
                    "",
                    "nodes",
                    &name,
                    &format!(
                        "node {node:?} is not allowed to set the following labels: {}",
                        forbidden.join(", ")
                    ),
                ),
            );
        }
        let errors = validate(&name, &input.spec.taints);
        if !errors.is_empty() {
            return Response::json(422, kube::invalid("", "Node", &name, &errors));
        }

        let mut state = self.lock();
        if state.iter().any(|s| s.record.name == name) {
            return Response::json(409, kube::already_exists("", "nodes", &name));
        }
        let created = timefmt::rfc3339(SystemTime::now());
        let stored = Stored {
            uid: random::uuid(),
            resource_version: self.resource_versions.fetch_add(1, Ordering::SeqCst),
            created: created.clone(),
            transition: created,
            record: NodeRecord {
                name,
                labels: input.metadata.labels,
                annotations: input.metadata.annotations,
                taints: input.spec.taints,
                ready: self.ready_on_register,
                registered_by: Some(user.name().to_owned()),
            },
        };
        let body = render(&stored);
        state.push(stored);
        Response::json(201, body)
    }

    /// `GET /api/v1/nodes/<name>`.
    pub fn get(&self, user: &User, name: &str) -> Response {
        match user {
            // kubeadm's `kubeadm:get-nodes` for bootstrap tokens; the Node
            // authorizer lets a node read any Node.
            User::Bootstrap { .. } | User::Node { .. } => {}
            User::Anonymous | User::Other { .. } => {
                return Response::json(403, kube::forbidden(user.name(), "get", "nodes", name, ""));
            }
        }
        match self.lock().iter().find(|s| s.record.name == name) {
            Some(stored) => Response::json(200, render(stored)),
            None => Response::json(404, kube::not_found("nodes", name)),
        }
    }

    /// Sets a Node's Ready condition; false if there is no such Node.
    pub fn set_ready(&self, name: &str, ready: bool) -> bool {
        let mut state = self.lock();
        let Some(stored) = state.iter_mut().find(|s| s.record.name == name) else {
            return false;
        };
        if stored.record.ready != ready {
            stored.record.ready = ready;
            stored.transition = timefmt::rfc3339(SystemTime::now());
            stored.resource_version = self.resource_versions.fetch_add(1, Ordering::SeqCst);
        }
        true
    }

    pub fn records(&self) -> Vec<NodeRecord> {
        self.lock().iter().map(|s| s.record.clone()).collect()
    }
}

fn render(s: &Stored) -> Vec<u8> {
    let heartbeat = timefmt::rfc3339(SystemTime::now());
    kube::node_object(
        ObjectMeta {
            name: &s.record.name,
            namespace: "",
            uid: &s.uid,
            resource_version: &s.resource_version.to_string(),
            creation_timestamp: &s.created,
            labels: s.record.labels.clone(),
            annotations: s.record.annotations.clone(),
        },
        &s.record.taints,
        s.record.ready,
        &heartbeat,
        &s.transition,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_labels() {
        for ok in [
            "kubernetes.io/hostname",
            "node.kubernetes.io/exclude-from-external-load-balancers",
            "kubelet.kubernetes.io/foo",
            "a.node.kubernetes.io/b",
            "example.com/pool",
            "plain",
        ] {
            assert!(
                !is_kubernetes_label(ok) || is_kubelet_label(ok),
                "{ok} should be allowed"
            );
        }
        for bad in [
            "node-role.kubernetes.io/worker",
            "kubernetes.io/role",
            "k8s.io/x",
            "x.k8s.io/y",
        ] {
            assert!(is_kubernetes_label(bad) && !is_kubelet_label(bad), "{bad}");
        }
        let labels: BTreeMap<String, String> = [
            ("node-role.kubernetes.io/worker", ""),
            ("node-restriction.kubernetes.io/x", ""),
            ("example.com/pool", "gpu"),
            ("kubernetes.io/os", "linux"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            forbidden_labels(&labels),
            [
                "node-restriction.kubernetes.io/x",
                "node-role.kubernetes.io/worker"
            ]
        );
    }

    #[test]
    fn node_names_and_taints_are_validated() {
        assert!(validate("worker-1.example", &[]).is_empty());
        let errs = validate(
            "Worker_1",
            &[Taint {
                key: String::new(),
                value: String::new(),
                effect: "Never".into(),
            }],
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.taints[0].key",
                "spec.taints[0].effect"
            ]
        );
    }
}
