//! Kubernetes wire objects, byte for byte as kube-apiserver and client-go
//! write them: Go struct field order, compact JSON with Go's HTML escaping
//! and a trailing newline, `omitempty` fields left out.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

/// The kubeconfig that kubeadm puts in `cluster-info`, in client-go's YAML
/// (keys sorted, one cluster named ""). Kubernetes clients before 1.34 also
/// wrote `preferences: {}`.
pub(crate) fn kubeconfig(ca_pem: &str, server: &str, with_preferences: bool) -> String {
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server}\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\n{}users: null\n",
        STANDARD.encode(ca_pem),
        if with_preferences {
            "preferences: {}\n"
        } else {
            ""
        }
    )
}

/// `/etc/kubernetes/bootstrap-kubelet.conf` as kubeadm writes it.
pub(crate) fn bootstrap_kubeconfig(ca_pem: &str, server: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server}\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: tls-bootstrap-token-user\n  name: tls-bootstrap-token-user@kubernetes\ncurrent-context: tls-bootstrap-token-user@kubernetes\nkind: Config\nusers:\n- name: tls-bootstrap-token-user\n  user:\n    token: {token}\n",
        STANDARD.encode(ca_pem)
    )
}

/// Serialises like apimachinery's JSON serializer (encoding/json Encoder):
/// compact, `<`, `>`, `&`, U+2028 and U+2029 escaped, newline-terminated.
pub(crate) fn encode(value: &impl Serialize) -> Vec<u8> {
    let json = serde_json::to_string(value).expect("lab objects always serialise");
    // Outside strings serde_json emits none of these characters, so a plain
    // replacement only touches string contents, as Go's escaper does.
    let mut out = String::with_capacity(json.len() + 1);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out.into_bytes()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectMeta<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub namespace: &'a str,
    pub uid: &'a str,
    pub resource_version: &'a str,
    pub creation_timestamp: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigMap<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: ObjectMeta<'a>,
    // Go marshals map keys sorted, as a BTreeMap iterates.
    data: &'a BTreeMap<String, String>,
}

pub(crate) fn config_map(metadata: ObjectMeta<'_>, data: &BTreeMap<String, String>) -> Vec<u8> {
    encode(&ConfigMap {
        kind: "ConfigMap",
        api_version: "v1",
        metadata,
        data,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Node<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: ObjectMeta<'a>,
    spec: NodeSpec<'a>,
    status: NodeStatus<'a>,
}

#[derive(Serialize)]
struct NodeSpec<'a> {
    #[serde(skip_serializing_if = "<[Taint]>::is_empty")]
    taints: &'a [Taint],
}

/// core/v1 Taint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    pub effect: String,
}

#[derive(Serialize)]
struct NodeStatus<'a> {
    conditions: [NodeCondition<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeCondition<'a> {
    #[serde(rename = "type")]
    type_: &'static str,
    status: &'static str,
    last_heartbeat_time: &'a str,
    last_transition_time: &'a str,
    reason: &'static str,
    message: &'static str,
}

/// The well-known labels a kubelet gives its Node.
pub(crate) fn well_known_node_labels(name: &str) -> BTreeMap<String, String> {
    [
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A Node as the kubelet registers it, reduced to what a join looks at:
/// identity, labels, annotations and taints as given, and the Ready
/// condition.
pub(crate) fn node_object(
    metadata: ObjectMeta<'_>,
    taints: &[Taint],
    ready: bool,
    heartbeat: &str,
    transition: &str,
) -> Vec<u8> {
    let condition = if ready {
        NodeCondition {
            type_: "Ready",
            status: "True",
            last_heartbeat_time: heartbeat,
            last_transition_time: transition,
            reason: "KubeletReady",
            message: "kubelet is posting ready status",
        }
    } else {
        NodeCondition {
            type_: "Ready",
            status: "False",
            last_heartbeat_time: heartbeat,
            last_transition_time: transition,
            reason: "KubeletNotReady",
            message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
        }
    };
    encode(&Node {
        kind: "Node",
        api_version: "v1",
        metadata,
        spec: NodeSpec { taints },
        status: NodeStatus {
            conditions: [condition],
        },
    })
}

/// certificates.k8s.io/v1 CertificateSigningRequest.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Csr<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: ObjectMeta<'a>,
    spec: CsrSpec<'a>,
    status: CsrStatus<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CsrSpec<'a> {
    /// base64 of the PEM, as `[]byte` marshals.
    pub request: &'a str,
    pub signer_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_seconds: Option<i64>,
    pub usages: &'a [String],
    pub username: &'a str,
    pub groups: &'a [String],
}

#[derive(Serialize)]
struct CsrStatus<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    conditions: Vec<CsrCondition<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CsrCondition<'a> {
    #[serde(rename = "type")]
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
    message: &'static str,
    last_update_time: &'a str,
    last_transition_time: &'a str,
}

/// A CSR; `approved` is `(time, certificate PEM)` once the controller
/// approved and signed it.
pub(crate) fn csr(
    metadata: ObjectMeta<'_>,
    spec: CsrSpec<'_>,
    approved: Option<(&str, &str)>,
) -> Vec<u8> {
    let (conditions, certificate) = match approved {
        None => (Vec::new(), None),
        Some((at, pem)) => (
            vec![CsrCondition {
                type_: "Approved",
                status: "True",
                reason: "AutoApproved",
                message: "Auto approving kubelet client certificate after SubjectAccessReview.",
                last_update_time: at,
                last_transition_time: at,
            }],
            Some(STANDARD.encode(pem)),
        ),
    };
    encode(&Csr {
        kind: "CertificateSigningRequest",
        api_version: "certificates.k8s.io/v1",
        metadata,
        spec,
        status: CsrStatus {
            conditions,
            certificate,
        },
    })
}

#[derive(Serialize)]
struct Empty {}

/// metav1.Status, the body of every API error.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: Empty,
    status: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
    code: u16,
}

/// metav1.StatusDetails. A present but empty one marshals as `{}`, which
/// is what the API server's generic errors carry.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Details<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    group: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<Cause<'a>>,
}

/// metav1.StatusCause.
#[derive(Serialize)]
struct Cause<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    field: &'a str,
}

fn status(code: u16, reason: &str, message: &str, details: Option<Details<'_>>) -> Vec<u8> {
    encode(&Status {
        kind: "Status",
        api_version: "v1",
        metadata: Empty {},
        status: "Failure",
        message,
        reason,
        details,
        code,
    })
}

/// 401 from the authentication filter: any credential it cannot accept.
pub(crate) fn unauthorized() -> Vec<u8> {
    status(401, "Unauthorized", "Unauthorized", None)
}

/// 403 from RBAC for a core-group resource. `name` is empty for a list,
/// `namespace` empty for a cluster-scoped resource.
pub(crate) fn forbidden(
    user: &str,
    verb: &str,
    resource: &str,
    name: &str,
    namespace: &str,
) -> Vec<u8> {
    forbidden_in_group(user, verb, "", resource, name, namespace)
}

/// `resource` or `resource.group`, as schema.GroupResource prints.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// `<resource> "<name>" is forbidden: <why>` (errors.NewForbidden).
fn forbidden_status(group: &str, resource: &str, name: &str, why: &str) -> Vec<u8> {
    let resource_q = qualified(group, resource);
    let message = if name.is_empty() {
        format!("{resource_q} is forbidden: {why}")
    } else {
        format!("{resource_q} \"{name}\" is forbidden: {why}")
    };
    status(
        403,
        "Forbidden",
        &message,
        Some(Details {
            name,
            group,
            kind: resource,
            ..Details::default()
        }),
    )
}

/// 403 from RBAC for a resource in any API group.
pub(crate) fn forbidden_in_group(
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    name: &str,
    namespace: &str,
) -> Vec<u8> {
    let scope = if namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{namespace}\"")
    };
    let why = format!(
        "User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
    );
    forbidden_status(group, resource, name, &why)
}

/// 403 from an admission plugin (NodeRestriction).
pub(crate) fn forbidden_by_admission(
    group: &str,
    resource: &str,
    name: &str,
    why: &str,
) -> Vec<u8> {
    forbidden_status(group, resource, name, why)
}

/// 409 for a create whose name is taken.
pub(crate) fn already_exists(group: &str, resource: &str, name: &str) -> Vec<u8> {
    let message = format!("{} \"{name}\" already exists", qualified(group, resource));
    status(
        409,
        "AlreadyExists",
        &message,
        Some(Details {
            name,
            group,
            kind: resource,
            ..Details::default()
        }),
    )
}

/// One field.Error of apimachinery's validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub field: String,
    /// The StatusCause reason (field.ErrorType).
    pub cause: &'static str,
    /// field.Error.ErrorBody().
    pub body: String,
}

impl FieldError {
    pub fn required(field: &str) -> FieldError {
        FieldError {
            field: field.to_owned(),
            cause: "FieldValueRequired",
            body: "Required value".to_owned(),
        }
    }

    /// `value` already rendered as Go's `%#v` would.
    pub fn invalid(field: &str, value: &str, detail: &str) -> FieldError {
        FieldError {
            field: field.to_owned(),
            cause: "FieldValueInvalid",
            body: format!("Invalid value: {value}: {detail}"),
        }
    }

    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> FieldError {
        let supported: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        FieldError {
            field: field.to_owned(),
            cause: "FieldValueNotSupported",
            body: format!(
                "Unsupported value: {}: supported values: {}",
                go_quote(value),
                supported.join(", ")
            ),
        }
    }
}

/// A string as Go's `%q` prints it (close enough for the lab's inputs).
pub(crate) fn go_quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// A byte slice as Go's `%#v` prints it: `[]byte{0x2d, 0x2d}`.
pub(crate) fn go_bytes(b: &[u8]) -> String {
    let items: Vec<String> = b.iter().map(|x| format!("0x{x:x}")).collect();
    format!("[]byte{{{}}}", items.join(", "))
}

/// 422 from validation (errors.NewInvalid); `kind` like
/// `CertificateSigningRequest`, `group` empty for the core group.
pub(crate) fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Vec<u8> {
    let kind_q = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let each: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.body))
        .collect();
    let aggregate = match each.as_slice() {
        [] => String::new(),
        [one] => format!(": {one}"),
        many => format!(": [{}]", many.join(", ")),
    };
    let message = format!("{kind_q} \"{name}\" is invalid{aggregate}");
    status(
        422,
        "Invalid",
        &message,
        Some(Details {
            name,
            group,
            kind,
            causes: errors
                .iter()
                .map(|e| Cause {
                    reason: e.cause,
                    message: &e.body,
                    field: &e.field,
                })
                .collect(),
        }),
    )
}

/// 400 for a body the API server cannot decode.
pub(crate) fn bad_request(message: &str) -> Vec<u8> {
    status(400, "BadRequest", message, None)
}

/// 415 for a body that is not JSON (the lab decodes nothing else).
pub(crate) fn unsupported_media_type(content_type: &str) -> Vec<u8> {
    let message = format!(
        "the body of the request was in an unknown format - accepted media types include: application/json (the lab's subset; got {content_type:?})"
    );
    status(415, "UnsupportedMediaType", &message, None)
}

/// 403 for a path that is not a resource.
pub(crate) fn forbidden_path(user: &str, path: &str) -> Vec<u8> {
    let message = format!("forbidden: User \"{user}\" cannot get path \"{path}\"");
    status(403, "Forbidden", &message, Some(Details::default()))
}

pub(crate) fn not_found(resource: &str, name: &str) -> Vec<u8> {
    not_found_in_group("", resource, name)
}

pub(crate) fn not_found_in_group(group: &str, resource: &str, name: &str) -> Vec<u8> {
    let message = format!("{} \"{name}\" not found", qualified(group, resource));
    status(
        404,
        "NotFound",
        &message,
        Some(Details {
            name,
            group,
            kind: resource,
            ..Details::default()
        }),
    )
}

pub(crate) fn no_such_resource() -> Vec<u8> {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(Details::default()),
    )
}

pub(crate) fn method_not_allowed() -> Vec<u8> {
    status(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(Details::default()),
    )
}

/// The Status the API server sends with a 5xx, following apimachinery's
/// constructors for the codes that have one.
pub(crate) fn server_error(code: u16) -> Vec<u8> {
    const CAUSE: &str = "attach-node-lab: injected fault";
    match code {
        500 => status(
            500,
            "InternalError",
            &format!("Internal error occurred: {CAUSE}"),
            Some(Details {
                causes: vec![Cause {
                    reason: "",
                    message: CAUSE,
                    field: "",
                }],
                ..Details::default()
            }),
        ),
        503 => status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            None,
        ),
        504 => status(
            504,
            "Timeout",
            "Timeout: request did not complete within requested timeout - context deadline exceeded",
            None,
        ),
        _ => status(code, "", CAUSE, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_info_vectors() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/vectors/cluster-info.json")).unwrap()
    }

    const VECTOR_CA: &str = include_str!("../../tests/vectors/pem/generated-cluster-info-ca.crt");

    #[test]
    fn kubeconfig_matches_client_go_output() {
        let v = cluster_info_vectors();
        let g = &v["generated"];
        let server = g["server"].as_str().unwrap();
        assert_eq!(
            kubeconfig(VECTOR_CA, server, false),
            g["variants"]["k8s-1.34-and-later"]["kubeconfig"]
                .as_str()
                .unwrap()
        );
        assert_eq!(
            kubeconfig(VECTOR_CA, server, true),
            g["variants"]["before-k8s-1.34"]["kubeconfig"]
                .as_str()
                .unwrap()
        );
    }

    #[test]
    fn bootstrap_kubeconfig_matches_kubeadm_output() {
        let want = include_str!("../../tests/vectors/kubeadm-join/bootstrap-kubelet.conf");
        let b64 = want
            .lines()
            .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
            .unwrap();
        let ca = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
        assert_eq!(
            bootstrap_kubeconfig(&ca, "https://192.0.2.10:6443", "abcdef.0123456789abcdef"),
            want
        );
    }

    #[test]
    fn cluster_info_body_matches_the_api_server_bytes() {
        let v = cluster_info_vectors();
        let variant = &v["generated"]["variants"]["k8s-1.34-and-later"];
        let cm = &variant["configmap"];
        let meta = &cm["metadata"];
        let data: BTreeMap<String, String> = serde_json::from_value(cm["data"].clone()).unwrap();
        let got = config_map(
            ObjectMeta {
                name: meta["name"].as_str().unwrap(),
                namespace: meta["namespace"].as_str().unwrap(),
                uid: meta["uid"].as_str().unwrap(),
                resource_version: meta["resourceVersion"].as_str().unwrap(),
                creation_timestamp: meta["creationTimestamp"].as_str().unwrap(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
            },
            &data,
        );
        // The lab leaves managedFields out; cut them from the expected bytes.
        let expected = variant["response_body"].as_str().unwrap();
        let start = expected.find(",\"managedFields\":").unwrap();
        let end = expected.find("},\"data\":").unwrap();
        let expected = format!("{}{}", &expected[..start], &expected[end..]);
        assert_eq!(String::from_utf8(got).unwrap(), expected);
    }

    #[test]
    fn status_bodies_match_the_vectors() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/vectors/status-errors.json")).unwrap();
        let expected: Vec<&str> = v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["body_compact"].as_str().unwrap())
            .collect();
        let got = [
            unauthorized(),
            forbidden(
                "system:anonymous",
                "get",
                "configmaps",
                "cluster-info",
                "kube-public",
            ),
            forbidden(
                "system:bootstrap:abcdef",
                "get",
                "configmaps",
                "kubeadm-config",
                "kube-system",
            ),
            forbidden("system:bootstrap:abcdef", "list", "nodes", "", ""),
            not_found("configmaps", "cluster-info"),
            not_found("nodes", "worker-1"),
            forbidden_by_admission(
                "",
                "nodes",
                "worker-1",
                "node \"worker-1\" is not allowed to set the following labels: node-role.kubernetes.io/worker",
            ),
        ];
        assert_eq!(got.len(), expected.len());
        for (got, want) in got.iter().zip(&expected) {
            assert_eq!(std::str::from_utf8(got).unwrap(), *want);
        }
    }

    #[test]
    fn generic_errors_carry_empty_details() {
        assert_eq!(
            String::from_utf8(no_such_resource()).unwrap(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"the server could not find the requested resource\",\"reason\":\"NotFound\",\"details\":{},\"code\":404}\n"
        );
        let s = String::from_utf8(server_error(503)).unwrap();
        assert!(s.contains("\"reason\":\"ServiceUnavailable\"") && s.ends_with("\"code\":503}\n"));
        let s = String::from_utf8(server_error(502)).unwrap();
        assert!(!s.contains("reason") && s.ends_with("\"code\":502}\n"));
    }

    #[test]
    fn encoding_escapes_like_go() {
        let got = encode(&serde_json::json!({"m": "<none> & \u{2028}"}));
        assert_eq!(got, b"{\"m\":\"\\u003cnone\\u003e \\u0026 \\u2028\"}\n");
    }

    #[test]
    fn node_has_the_ready_condition() {
        let meta = ObjectMeta {
            name: "worker-1",
            namespace: "",
            uid: "u",
            resource_version: "1",
            creation_timestamp: "2026-01-01T00:00:00Z",
            labels: well_known_node_labels("worker-1"),
            annotations: BTreeMap::new(),
        };
        let taints = [Taint {
            key: "dedicated".into(),
            value: String::new(),
            effect: "NoSchedule".into(),
        }];
        let body: serde_json::Value = serde_json::from_slice(&node_object(
            meta,
            &taints,
            false,
            "2026-01-01T00:01:00Z",
            "2026-01-01T00:00:00Z",
        ))
        .unwrap();
        assert_eq!(
            body["spec"]["taints"],
            serde_json::json!([{"key": "dedicated", "effect": "NoSchedule"}])
        );
        assert_eq!(body["kind"], "Node");
        assert_eq!(body["metadata"]["name"], "worker-1");
        assert_eq!(
            body["metadata"]["labels"]["kubernetes.io/hostname"],
            "worker-1"
        );
        assert_eq!(body["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(body["status"]["conditions"][0]["status"], "False");
    }
}
