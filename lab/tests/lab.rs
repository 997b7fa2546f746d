//! The lab through its public API and real TLS: healthy answers for every
//! token kind and endpoint, each fault, the admission limit, and teardown.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use attach_node_lab::{Fault, Lab, LabConfig, Request, RetryAfter, Server, jws};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Reply, Trust, bearer, get, get_with};

const NODE_ATTACH: &str = "/v1/node-attach";
const CLUSTER_INFO: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
const KUBELET_CONFIG: &str = "/api/v1/namespaces/kube-system/configmaps/kubelet-config";

const UNAUTHORIZED: &str = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n";

fn start(cfg: LabConfig) -> Lab {
    Lab::start(cfg).expect("lab starts")
}

fn control_plane(lab: &Lab, token: Option<&str>) -> Reply {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    get(
        &lab.control_plane_url(),
        NODE_ATTACH,
        Trust::Ca(&lab.control_plane_ca_pem()),
        &headers,
    )
    .expect("control plane answers")
}

/// An API-server GET; `verified` trusts the cluster CA, otherwise anything.
fn api(lab: &Lab, path: &str, token: Option<&str>, verified: bool) -> Reply {
    let ca = lab.cluster_ca_pem();
    let trust = if verified {
        Trust::Ca(&ca)
    } else {
        Trust::Anything
    };
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    get(&lab.api_server_url(), path, trust, &headers).expect("API server answers")
}

/// Checks a cluster-info body the way attach-node must, returning its
/// kubeconfig.
fn verified_kubeconfig(lab: &Lab, reply: &Reply) -> String {
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.body.ends_with(b"}\n"), "trailing newline");
    let cm = reply.json();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "cluster-info");
    assert_eq!(cm["metadata"]["namespace"], "kube-public");
    let kubeconfig = cm["data"]["kubeconfig"].as_str().unwrap().to_owned();
    let token = lab.bootstrap_token();
    let (id, secret) = token.split_once('.').unwrap();
    assert_eq!(
        cm["data"][format!("jws-kubeconfig-{id}")].as_str(),
        Some(jws::sign_detached(kubeconfig.as_bytes(), id, secret).as_str())
    );
    kubeconfig
}

#[test]
fn control_plane_answers_each_kind_of_token() {
    let lab = start(LabConfig::default());

    let ok = control_plane(&lab, Some(&lab.openapi_token()));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("application/json"));
    let info = ok.json();
    assert_eq!(info["version"], 1);
    assert_eq!(info["clusterName"], "lab");
    assert_eq!(
        info["apiServerEndpoints"],
        serde_json::json!([lab.api_server_url()])
    );
    assert_eq!(info["bootstrapToken"], lab.bootstrap_token());
    assert_eq!(
        info["caCertHashes"],
        serde_json::json!([lab.ca_cert_hash()])
    );
    assert_eq!(info["kubernetesVersion"], "1.31.4");
    assert_eq!(info["clusterDNS"], serde_json::json!(["10.96.0.10"]));
    assert_eq!(info["clusterDomain"], "cluster.local");
    assert_eq!(
        info["node"]["labels"]["lab.attach-node.dev/pool"],
        "default"
    );
    assert_eq!(info["node"]["nameSource"], "hostname");
    // Reusable.
    assert_eq!(control_plane(&lab, Some(&lab.openapi_token())).status, 200);

    let once = lab.single_use_openapi_token();
    assert_eq!(control_plane(&lab, Some(&once)).status, 200);
    let gone = control_plane(&lab, Some(&once));
    assert_eq!(gone.status, 410);
    assert_eq!(gone.json()["code"], 410);
    assert!(gone.json()["message"].is_string());

    assert_eq!(
        control_plane(&lab, Some(&lab.expired_openapi_token())).status,
        403
    );
    assert_eq!(control_plane(&lab, Some("not-a-token")).status, 401);
    let anonymous = control_plane(&lab, None);
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["code"], 401);

    let elsewhere = get(
        &lab.control_plane_url(),
        "/v1/other",
        Trust::Ca(&lab.control_plane_ca_pem()),
        &[],
    )
    .unwrap();
    assert_eq!(elsewhere.status, 404);

    // The cluster CA must not vouch for the control plane.
    assert!(
        get(
            &lab.control_plane_url(),
            NODE_ATTACH,
            Trust::Ca(&lab.cluster_ca_pem()),
            &[]
        )
        .is_err()
    );

    let seen = lab.requests();
    assert_eq!(seen.len(), 8, "{seen:#?}");
    assert!(seen.iter().all(|r| r.server == Server::ControlPlane));
    assert!(seen.iter().all(|r| r.method == "GET"));
    assert!(
        seen.iter()
            .all(|r| !r.target.contains(&lab.openapi_token()))
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(bearer(&lab.openapi_token()).as_str())
    );
    assert_eq!(seen[0].status, Some(200));
    assert_eq!(seen[3].status, Some(410));
    lab.clear_requests();
    assert!(lab.requests().is_empty());
}

#[test]
fn api_server_serves_a_verifiable_cluster_info() {
    let lab = start(LabConfig::default());

    let first = api(&lab, CLUSTER_INFO, None, false);
    let kubeconfig = verified_kubeconfig(&lab, &first);
    let ca_data = kubeconfig
        .lines()
        .find_map(|l| l.strip_prefix("    certificate-authority-data: "))
        .unwrap();
    assert_eq!(
        STANDARD.decode(ca_data).unwrap(),
        lab.cluster_ca_pem().as_bytes()
    );
    assert!(kubeconfig.contains(&format!("    server: {}\n", lab.api_server_url())));
    assert!(kubeconfig.starts_with("apiVersion: v1\nclusters:\n- cluster:\n"));
    assert!(kubeconfig.ends_with(
        "  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\nusers: null\n"
    ));

    // Now trusting only the CA from that kubeconfig, hostname checked.
    let second = api(&lab, CLUSTER_INFO, None, true);
    assert_eq!(second.body, first.body, "byte-for-byte the same document");
    assert_eq!(second.server_cert, first.server_cert);

    // The bootstrap token may read it too; any other credential is refused
    // outright, with no fallback to anonymous.
    assert_eq!(
        api(&lab, CLUSTER_INFO, Some(&lab.bootstrap_token()), true).status,
        200
    );
    let refused = api(&lab, CLUSTER_INFO, Some("abcdef.0000000000000000"), true);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.text(), UNAUTHORIZED);
    let basic = get(
        &lab.api_server_url(),
        CLUSTER_INFO,
        Trust::Anything,
        &[("Authorization", "Basic Zm9vOmJhcg==")],
    )
    .unwrap();
    assert_eq!(basic.status, 401);

    let seen = lab.requests();
    assert!(seen.iter().all(|r| r.server == Server::ApiServer));
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(seen[0].target, CLUSTER_INFO);
}

#[test]
fn api_server_reads_after_trust_need_the_bootstrap_token() {
    let lab = start(
        LabConfig::default()
            .node("worker-ready", true)
            .node("worker-new", false),
    );
    let token = lab.bootstrap_token();

    let kc = api(&lab, KUBELET_CONFIG, Some(&token), true);
    assert_eq!(kc.status, 200);
    let cm = kc.json();
    assert_eq!(cm["metadata"]["name"], "kubelet-config");
    assert_eq!(cm["metadata"]["namespace"], "kube-system");
    let kubelet = cm["data"]["kubelet"].as_str().unwrap();
    assert!(kubelet.starts_with("apiVersion: kubelet.config.k8s.io/v1beta1\n"));
    assert!(kubelet.contains("kind: KubeletConfiguration\n"));

    let anonymous = api(&lab, KUBELET_CONFIG, None, true);
    assert_eq!(anonymous.status, 403);
    assert_eq!(anonymous.json()["reason"], "Forbidden");
    assert_eq!(anonymous.json()["details"]["name"], "kubelet-config");
    assert_eq!(
        api(&lab, KUBELET_CONFIG, Some("abcdef.0000000000000000"), true).status,
        401
    );

    let ready = api(&lab, "/api/v1/nodes/worker-ready", Some(&token), true);
    assert_eq!(ready.status, 200);
    let node = ready.json();
    assert_eq!(node["kind"], "Node");
    assert_eq!(node["metadata"]["name"], "worker-ready");
    let conditions = node["status"]["conditions"].as_array().unwrap();
    let ready_condition = conditions.iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready_condition["status"], "True");

    let new = api(&lab, "/api/v1/nodes/worker-new", Some(&token), true).json();
    assert_eq!(new["status"]["conditions"][0]["status"], "False");

    let missing = api(&lab, "/api/v1/nodes/worker-1", Some(&token), true);
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.text(),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"nodes \\\"worker-1\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"worker-1\",\"kind\":\"nodes\"},\"code\":404}\n"
    );
    assert_eq!(
        api(&lab, "/api/v1/nodes/worker-ready", None, true).status,
        403
    );
    assert_eq!(api(&lab, "/api/v1/pods", Some(&token), true).status, 404);
    assert_eq!(api(&lab, "/healthz/nope", None, true).status, 403);
}

#[test]
fn control_plane_transient_faults_then_recovery() {
    let lab = start(
        LabConfig::default()
            .fault(Fault::ControlPlaneTooManyRequests {
                times: 2,
                retry_after: RetryAfter::Seconds(3),
            })
            .fault(Fault::ControlPlaneServerError {
                times: 1,
                status: 502,
            })
            .fault(Fault::ControlPlaneTooManyRequests {
                times: 1,
                retry_after: RetryAfter::HttpDate(Duration::from_secs(2)),
            })
            .fault(Fault::ControlPlaneTooManyRequests {
                times: 1,
                retry_after: RetryAfter::None,
            }),
    );
    let token = lab.openapi_token();
    let r = control_plane(&lab, Some(&token));
    assert_eq!((r.status, r.header("retry-after")), (429, Some("3")));
    let r = control_plane(&lab, Some(&token));
    assert_eq!((r.status, r.header("retry-after")), (429, Some("3")));
    let r = control_plane(&lab, Some(&token));
    assert_eq!((r.status, r.header("retry-after")), (502, None));
    assert_eq!(r.json()["code"], 502);
    let r = control_plane(&lab, Some(&token));
    assert_eq!(r.status, 429);
    let date = r.header("retry-after").unwrap();
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    let r = control_plane(&lab, Some(&token));
    assert_eq!((r.status, r.header("retry-after")), (429, None));
    assert_eq!(control_plane(&lab, Some(&token)).status, 200);
}

#[test]
fn control_plane_answers_that_are_final() {
    let teapot = start(LabConfig::default().fault(Fault::ControlPlaneStatus(418)));
    let r = control_plane(&teapot, Some(&teapot.openapi_token()));
    assert_eq!(r.status, 418);
    assert_eq!(r.json()["code"], 418);

    let oversized = start(LabConfig::default().fault(Fault::ControlPlaneOversized));
    let r = control_plane(&oversized, Some(&oversized.openapi_token()));
    assert_eq!(r.status, 200);
    assert!(r.body.len() > 2 * 1024 * 1024, "{}", r.body.len());
    assert_eq!(r.json()["bootstrapToken"], oversized.bootstrap_token());

    let not_schema = start(LabConfig::default().fault(Fault::ControlPlaneNotSchema));
    let r = control_plane(&not_schema, Some(&not_schema.openapi_token()));
    assert_eq!(r.status, 200);
    let info = r.json();
    assert!(info.get("bootstrapToken").is_none());
    assert_eq!(info["version"], 1);
}

#[test]
fn control_plane_slow_and_prompt_teardown() {
    let slow =
        start(LabConfig::default().fault(Fault::ControlPlaneSlow(Duration::from_millis(300))));
    let started = Instant::now();
    assert_eq!(
        control_plane(&slow, Some(&slow.openapi_token())).status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A lab stuck answering a very slow request still stops at once.
    let stuck = start(LabConfig::default().fault(Fault::ControlPlaneSlow(Duration::from_secs(60))));
    let url = stuck.control_plane_url();
    let ca = stuck.control_plane_ca_pem();
    let client = thread::spawn(move || get(&url, NODE_ATTACH, Trust::Ca(&ca), &[]));
    wait_for(&stuck, 1);
    let started = Instant::now();
    drop(stuck);
    // Not a speed claim: only that teardown does not sit out the 60 s
    // sleep (with room for a loaded machine).
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let answer = client.join().unwrap();
    assert!(answer.is_err() || answer.is_ok_and(|r| r.status == 401));
}

#[test]
fn api_server_error_fault_then_recovery() {
    let lab = start(LabConfig::default().fault(Fault::ApiServerError {
        times: 2,
        status: 503,
    }));
    for _ in 0..2 {
        let r = api(&lab, CLUSTER_INFO, None, false);
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), None);
        assert_eq!(r.json()["kind"], "Status");
        assert_eq!(r.json()["reason"], "ServiceUnavailable");
        assert_eq!(r.json()["code"], 503);
    }
    verified_kubeconfig(&lab, &api(&lab, CLUSTER_INFO, None, false));
}

#[test]
fn signature_faults() {
    let tampered = start(LabConfig::default().fault(Fault::TamperedJws));
    let cm = api(&tampered, CLUSTER_INFO, None, false).json();
    let token = tampered.bootstrap_token();
    let (id, secret) = token.split_once('.').unwrap();
    let kubeconfig = cm["data"]["kubeconfig"].as_str().unwrap();
    let served = cm["data"][format!("jws-kubeconfig-{id}")].as_str().unwrap();
    let right = jws::sign_detached(kubeconfig.as_bytes(), id, secret);
    assert_ne!(served, right);
    assert_eq!(served.len(), right.len());
    assert_eq!(served.split("..").next(), right.split("..").next());

    let unsigned = start(LabConfig::default().fault(Fault::NoSignatureForToken));
    let cm = api(&unsigned, CLUSTER_INFO, None, false).json();
    let data = cm["data"].as_object().unwrap();
    assert!(!data.contains_key(&format!("jws-kubeconfig-{}", unsigned.bootstrap_token_id())));
    assert!(data.contains_key("jws-kubeconfig-zzzzzz"));
    assert!(data.contains_key("kubeconfig"));
}

fn ca_der(lab: &Lab) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(lab.cluster_ca_pem().as_bytes())
        .unwrap()
        .to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn ca_faults() {
    // basicConstraints: OID 2.5.29.19, then the extension value. CA:true
    // encodes as SEQUENCE { BOOLEAN TRUE }, CA:false as an empty SEQUENCE.
    const BASIC_CONSTRAINTS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x13];
    const CA_TRUE: &[u8] = &[0x30, 0x03, 0x01, 0x01, 0xff];

    let healthy = start(LabConfig::default());
    let der = ca_der(&healthy);
    assert!(contains(&der, BASIC_CONSTRAINTS) && contains(&der, CA_TRUE));

    let not_ca = start(LabConfig::default().fault(Fault::CaNotCa));
    let der = ca_der(&not_ca);
    assert!(contains(&der, BASIC_CONSTRAINTS) && !contains(&der, CA_TRUE));
    // It is still what the kubeconfig carries, and it still chains.
    let kubeconfig = verified_kubeconfig(&not_ca, &api(&not_ca, CLUSTER_INFO, None, false));
    assert!(kubeconfig.contains(&STANDARD.encode(not_ca.cluster_ca_pem())));

    let expired = start(LabConfig::default().fault(Fault::CaExpired));
    let der = ca_der(&expired);
    // notAfter 2001-01-01 as UTCTime.
    assert!(contains(&der, b"010101000000Z"));
    let kubeconfig = verified_kubeconfig(&expired, &api(&expired, CLUSTER_INFO, None, false));
    assert!(kubeconfig.contains(&STANDARD.encode(expired.cluster_ca_pem())));
}

#[test]
fn different_cert_after_trust() {
    let lab = start(LabConfig::default().fault(Fault::DifferentCertAfterTrust));
    let first = api(&lab, CLUSTER_INFO, None, true);
    assert_eq!(first.status, 200);
    let ca = lab.cluster_ca_pem();
    let err = get(&lab.api_server_url(), CLUSTER_INFO, Trust::Ca(&ca), &[]).unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    let impostor = api(&lab, CLUSTER_INFO, None, false);
    assert_ne!(impostor.server_cert, first.server_cert);

    // No session resumption lets a client skip the swapped certificate.
    let lab = start(LabConfig::default().fault(Fault::DifferentCertAfterTrust));
    let ca = lab.cluster_ca_pem();
    let config = Arc::new(common::client_config(&Trust::Ca(&ca)));
    let url = lab.api_server_url();
    assert_eq!(
        get_with(Arc::clone(&config), &url, CLUSTER_INFO, &[])
            .unwrap()
            .status,
        200
    );
    assert!(get_with(config, &url, CLUSTER_INFO, &[]).is_err());
}

#[test]
fn cluster_info_changed() {
    let lab = start(LabConfig::default().fault(Fault::ClusterInfoChanged));
    let a = api(&lab, CLUSTER_INFO, None, false);
    let b = api(&lab, CLUSTER_INFO, None, true);
    let again = api(&lab, CLUSTER_INFO, None, true);
    assert_ne!(a.body, b.body);
    assert_eq!(b.body, again.body);
    let ka = verified_kubeconfig(&lab, &a);
    let kb = verified_kubeconfig(&lab, &b);
    assert!(!ka.contains("preferences"));
    assert_eq!(
        kb,
        ka.replace("kind: Config\n", "kind: Config\npreferences: {}\n")
    );
}

#[test]
fn endpoints_and_pins_can_be_overridden() {
    let lab = start(
        LabConfig::default()
            .api_endpoint_before("https://127.0.0.1:1")
            .ca_cert_hashes(&[])
            .bootstrap_token("abcdef.0123456789abcdef"),
    );
    let info = control_plane(&lab, Some(&lab.openapi_token())).json();
    assert_eq!(
        info["apiServerEndpoints"],
        serde_json::json!(["https://127.0.0.1:1", lab.api_server_url()])
    );
    assert!(info.get("caCertHashes").is_none());
    assert_eq!(info["bootstrapToken"], "abcdef.0123456789abcdef");
    assert_eq!(lab.bootstrap_token_id(), "abcdef");
    verified_kubeconfig(&lab, &api(&lab, CLUSTER_INFO, None, false));
}

/// Waits until the lab has seen `n` requests.
fn wait_for(lab: &Lab, n: usize) -> Vec<Request> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = lab.requests();
        if seen.len() >= n {
            return seen;
        }
        assert!(Instant::now() < deadline, "lab saw only {seen:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn admission_limit_answers_429_beyond_max_in_flight() {
    let lab = start(
        LabConfig::default()
            .api_max_in_flight(1)
            .fault(Fault::ApiServerSlow(Duration::from_millis(1000))),
    );
    let url = lab.api_server_url();
    let slow = thread::spawn(move || get(&url, CLUSTER_INFO, Trust::Anything, &[]).unwrap());
    // Only once the first request is in flight is the second one excess.
    let seen = wait_for(&lab, 1);
    assert_eq!(seen[0].status, None);
    // Recorded a moment before its handler claims the slot; the margin is
    // far below the 1 s it then stays in flight.
    thread::sleep(Duration::from_millis(100));

    let rejected = api(&lab, CLUSTER_INFO, None, false);
    assert_eq!(rejected.status, 429);
    assert_eq!(rejected.header("retry-after"), Some("1"));
    assert_eq!(
        rejected.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        rejected.text(),
        "Too many requests, please try again later.\n"
    );

    assert_eq!(slow.join().unwrap().status, 200);
    // The slot is free again.
    assert_eq!(api(&lab, CLUSTER_INFO, None, false).status, 200);
    let statuses: Vec<_> = lab.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(200), Some(429), Some(200)]);
}

#[test]
fn labs_run_side_by_side() {
    let a = start(LabConfig::default());
    let b = start(LabConfig::default());
    assert_ne!(a.api_server_url(), b.api_server_url());
    assert_ne!(a.ca_cert_hash(), b.ca_cert_hash());
    assert_ne!(a.bootstrap_token(), b.bootstrap_token());
    assert_ne!(a.openapi_token(), b.openapi_token());
    // One lab's token means nothing to the other.
    assert_eq!(control_plane(&b, Some(&a.openapi_token())).status, 401);
    let debug = format!("{a:?}");
    assert!(!debug.contains(&a.openapi_token()) && !debug.contains(&a.bootstrap_token()));
}

#[test]
fn write_files_for_shell_scripts() {
    use std::os::unix::fs::PermissionsExt as _;
    let lab = start(LabConfig::default());
    let dir = std::env::temp_dir().join(format!("attach-node-lab-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    lab.write_files(&dir).unwrap();
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(mode("openapi-token"), 0o600);
    assert_eq!(mode("bootstrap-token"), 0o600);
    assert_eq!(read("openapi-token"), lab.openapi_token());
    assert_eq!(
        read("openapi-token-single-use"),
        lab.single_use_openapi_token()
    );
    assert_eq!(read("openapi-token-expired"), lab.expired_openapi_token());
    assert_eq!(read("bootstrap-token"), lab.bootstrap_token());
    assert_eq!(read("control-plane-ca.pem"), lab.control_plane_ca_pem());
    assert_eq!(read("cluster-ca.pem"), lab.cluster_ca_pem());
    let env: BTreeMap<String, String> = read("lab.env")
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('\'').to_owned())
        })
        .collect();
    assert_eq!(env["LAB_CONTROL_PLANE"], lab.control_plane_url());
    assert_eq!(env["LAB_API_SERVER"], lab.api_server_url());
    assert_eq!(env["LAB_CA_CERT_HASH"], lab.ca_cert_hash());
    assert_eq!(
        env["LAB_DIR"],
        dir.canonicalize().unwrap().display().to_string()
    );
    let all = read("lab.env");
    assert!(!all.contains(&lab.openapi_token()) && !all.contains(&lab.bootstrap_token()));
    // Writing again (e.g. over a stale lab) replaces everything.
    lab.write_files(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
