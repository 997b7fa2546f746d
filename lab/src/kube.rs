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
    spec: Empty,
    status: NodeStatus<'a>,
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

/// A Node as the kubelet registers it, reduced to what a join looks at:
/// identity, the well-known labels, and the Ready condition.
pub(crate) fn node(mut metadata: ObjectMeta<'_>, ready: bool, heartbeat: &str) -> Vec<u8> {
    for (k, v) in [
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", metadata.name),
        ("kubernetes.io/os", "linux"),
    ] {
        metadata.labels.insert(k.into(), v.into());
    }
    let condition = if ready {
        NodeCondition {
            type_: "Ready",
            status: "True",
            last_heartbeat_time: heartbeat,
            last_transition_time: metadata.creation_timestamp,
            reason: "KubeletReady",
            message: "kubelet is posting ready status",
        }
    } else {
        NodeCondition {
            type_: "Ready",
            status: "False",
            last_heartbeat_time: heartbeat,
            last_transition_time: metadata.creation_timestamp,
            reason: "KubeletNotReady",
            message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
        }
    };
    encode(&Node {
        kind: "Node",
        api_version: "v1",
        metadata,
        spec: Empty {},
        status: NodeStatus {
            conditions: [condition],
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
    kind: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<Cause<'a>>,
}

#[derive(Serialize)]
struct Cause<'a> {
    message: &'a str,
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
    let subject = if name.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource} \"{name}\"")
    };
    let scope = if namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{namespace}\"")
    };
    let message = format!(
        "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"\" {scope}"
    );
    status(
        403,
        "Forbidden",
        &message,
        Some(Details {
            name,
            kind: resource,
            ..Details::default()
        }),
    )
}

/// 403 for a path that is not a resource.
pub(crate) fn forbidden_path(user: &str, path: &str) -> Vec<u8> {
    let message = format!("forbidden: User \"{user}\" cannot get path \"{path}\"");
    status(403, "Forbidden", &message, Some(Details::default()))
}

pub(crate) fn not_found(resource: &str, name: &str) -> Vec<u8> {
    let message = format!("{resource} \"{name}\" not found");
    status(
        404,
        "NotFound",
        &message,
        Some(Details {
            name,
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
                causes: vec![Cause { message: CAUSE }],
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
        ];
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
            labels: BTreeMap::new(),
        };
        let body: serde_json::Value =
            serde_json::from_slice(&node(meta, false, "2026-01-01T00:01:00Z")).unwrap();
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
