//! The lab as API server and controller-manager for a kubelet's TLS
//! bootstrap, through real TLS: CSRs with the bootstrap token, their
//! approval and signing, Node registration with the issued client
//! certificate (mutual TLS), and the Status answers for what is refused.

mod common;

use std::sync::Arc;
use std::time::Duration;

use attach_node_lab::{Fault, KUBELET_CLIENT_SIGNER, Lab, LabConfig, Taint};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Reply, Trust, bearer, client_config, client_config_with_cert, send};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData as _};
use rustls::RootCertStore;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use serde_json::{Value, json};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer as _, X509Certificate};

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const NODES: &str = "/api/v1/nodes";
const UNAUTHORIZED: &str = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n";

fn start(cfg: LabConfig) -> Lab {
    Lab::start(cfg).expect("lab starts")
}

/// A PKCS#10 request as the kubelet makes it, and its key.
fn request(cn: &str, orgs: &[&str]) -> (KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    (key, pem)
}

fn csr_object(name: &str, pem: &str, signer: &str, usages: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "CertificateSigningRequest",
        "apiVersion": "certificates.k8s.io/v1",
        "metadata": {"name": name},
        "spec": {
            "request": STANDARD.encode(pem),
            "signerName": signer,
            "usages": usages,
        },
        "status": {},
    }))
    .unwrap()
}

/// A request to the API server with an optional bearer token.
fn api(lab: &Lab, method: &str, target: &str, token: Option<&str>, body: Option<&[u8]>) -> Reply {
    let ca = lab.cluster_ca_pem();
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    send(
        Arc::new(client_config(&Trust::Ca(&ca))),
        &lab.api_server_url(),
        method,
        target,
        &headers,
        body,
    )
    .expect("API server answers")
}

/// A request with a client certificate (PEM chain and key).
fn api_as(
    lab: &Lab,
    cert: &str,
    key: &str,
    method: &str,
    target: &str,
    body: Option<&[u8]>,
) -> Reply {
    send(
        Arc::new(client_config_with_cert(&lab.cluster_ca_pem(), cert, key)),
        &lab.api_server_url(),
        method,
        target,
        &[],
        body,
    )
    .expect("API server answers")
}

/// Verifies `cert_pem` as the API server's x509 authenticator would:
/// chain to the cluster CA, validity, ExtendedKeyUsage clientAuth.
fn assert_client_cert_from(lab: &Lab, cert_pem: &str) {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(lab.cluster_ca_pem().as_bytes()).unwrap())
        .unwrap();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(default_provider()))
            .build()
            .unwrap();
    let leaf = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    verifier
        .verify_client_cert(&leaf, &[], UnixTime::now())
        .expect("a client certificate from the cluster CA");
}

fn node_body(name: &str, labels: Value, taints: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
    }))
    .unwrap()
}

#[test]
fn a_bootstrap_csr_is_approved_and_signed_for_its_key() {
    let lab = start(LabConfig::default());
    let token = lab.bootstrap_token();
    let (key, pem) = request("system:node:worker-1", &["system:nodes"]);
    let body = csr_object(
        "node-csr-abc",
        &pem,
        KUBELET_CLIENT_SIGNER,
        &["digital signature", "key encipherment", "client auth"],
    );

    let created = api(&lab, "POST", CSRS, Some(&token), Some(&body));
    assert_eq!(created.status, 201, "{}", created.text());
    let v = created.json();
    assert_eq!(v["kind"], "CertificateSigningRequest");
    assert_eq!(v["apiVersion"], "certificates.k8s.io/v1");
    assert_eq!(v["metadata"]["name"], "node-csr-abc");
    assert_eq!(v["spec"]["request"], STANDARD.encode(&pem));
    assert_eq!(v["spec"]["signerName"], KUBELET_CLIENT_SIGNER);
    assert_eq!(
        v["spec"]["username"],
        format!("system:bootstrap:{}", lab.bootstrap_token_id())
    );
    assert_eq!(
        v["spec"]["groups"],
        json!([
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
            "system:authenticated"
        ])
    );
    // The create answer is the object as stored: the controller has not
    // acted yet.
    assert_eq!(v["status"], json!({}));

    let got = api(
        &lab,
        "GET",
        &format!("{CSRS}/node-csr-abc"),
        Some(&token),
        None,
    );
    assert_eq!(got.status, 200);
    let v = got.json();
    let condition = &v["status"]["conditions"][0];
    assert_eq!(condition["type"], "Approved");
    assert_eq!(condition["status"], "True");
    assert_eq!(condition["reason"], "AutoApproved");
    let cert_pem = String::from_utf8(
        STANDARD
            .decode(v["status"]["certificate"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_client_cert_from(&lab, &cert_pem);

    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(
        cert.subject().to_string(),
        "O=system:nodes, CN=system:node:worker-1"
    );
    assert_eq!(cert.issuer().to_string(), "CN=kubernetes");
    assert_eq!(
        cert.public_key().raw,
        key.subject_public_key_info().as_slice()
    );
    let days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
    assert!((365..=366).contains(&days), "{days} days");
    let mut saw_eku = false;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(eku) => {
                saw_eku = true;
                assert!(eku.client_auth && !eku.server_auth);
            }
            ParsedExtension::KeyUsage(ku) => {
                assert!(ku.digital_signature() && ku.key_encipherment());
            }
            ParsedExtension::BasicConstraints(bc) => assert!(!bc.ca),
            _ => {}
        }
    }
    assert!(saw_eku);

    let records = lab.csrs();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.name, "node-csr-abc");
    assert_eq!(r.common_name, "system:node:worker-1");
    assert_eq!(r.organizations, ["system:nodes"]);
    assert_eq!(
        r.usages,
        ["digital signature", "key encipherment", "client auth"]
    );
    assert_eq!(r.request_pem, pem);
    assert_eq!(r.certificate_pem.as_deref(), Some(cert_pem.as_str()));
    assert_eq!(r.pending_reason, None);

    // The same name again is a conflict.
    let again = api(&lab, "POST", CSRS, Some(&token), Some(&body));
    assert_eq!(again.status, 409);
    assert_eq!(
        again.text(),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"certificatesigningrequests.certificates.k8s.io \\\"node-csr-abc\\\" already exists\",\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"node-csr-abc\",\"group\":\"certificates.k8s.io\",\"kind\":\"certificatesigningrequests\"},\"code\":409}\n"
    );
}

#[test]
fn modern_kubelet_usages_without_key_encipherment_are_approved_too() {
    let lab = start(LabConfig::default());
    let (_, pem) = request("system:node:w", &["system:nodes"]);
    let body = csr_object(
        "c",
        &pem,
        KUBELET_CLIENT_SIGNER,
        &["digital signature", "client auth"],
    );
    assert_eq!(
        api(
            &lab,
            "POST",
            CSRS,
            Some(&lab.bootstrap_token()),
            Some(&body)
        )
        .status,
        201
    );
    let cert = lab.csrs()[0].certificate_pem.clone().expect("signed");
    let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_encipherment());
}

#[test]
fn csr_credentials_are_checked_like_kube_apiserver() {
    let lab = start(LabConfig::default());
    let (_, pem) = request("system:node:w", &["system:nodes"]);
    let body = csr_object(
        "c",
        &pem,
        KUBELET_CLIENT_SIGNER,
        &["digital signature", "client auth"],
    );

    let anonymous = api(&lab, "POST", CSRS, None, Some(&body));
    assert_eq!(anonymous.status, 403);
    assert_eq!(
        anonymous.text(),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"certificatesigningrequests.certificates.k8s.io is forbidden: User \\\"system:anonymous\\\" cannot create resource \\\"certificatesigningrequests\\\" in API group \\\"certificates.k8s.io\\\" at the cluster scope\",\"reason\":\"Forbidden\",\"details\":{\"group\":\"certificates.k8s.io\",\"kind\":\"certificatesigningrequests\"},\"code\":403}\n"
    );
    let wrong = api(
        &lab,
        "POST",
        CSRS,
        Some("abcdef.0000000000000000"),
        Some(&body),
    );
    assert_eq!((wrong.status, wrong.text()), (401, UNAUTHORIZED));
    let get_anon = api(&lab, "GET", &format!("{CSRS}/c"), None, None);
    assert_eq!(get_anon.status, 403);
    assert!(
        get_anon
            .text()
            .contains("certificatesigningrequests.certificates.k8s.io \\\"c\\\" is forbidden")
    );

    // Neither an admin-looking certificate from the cluster CA nor one
    // from elsewhere gets in.
    let other = lab.issue_client_cert("jane", &["developers"]).unwrap();
    let r = api_as(
        &lab,
        &other.cert_pem,
        &other.key_pem,
        "POST",
        CSRS,
        Some(&body),
    );
    assert_eq!(r.status, 403);
    assert!(
        r.text().contains("User \\\"jane\\\" cannot create"),
        "{}",
        r.text()
    );

    let stranger_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "system:node:w");
    let stranger = params.self_signed(&stranger_key).unwrap();
    let r = api_as(
        &lab,
        &stranger.pem(),
        &stranger_key.serialize_pem(),
        "GET",
        &format!("{NODES}/w"),
        None,
    );
    assert_eq!((r.status, r.text()), (401, UNAUTHORIZED));

    assert!(lab.csrs().is_empty());
}

#[test]
fn malformed_csrs_are_invalid() {
    let lab = start(LabConfig::default());
    let token = lab.bootstrap_token();
    let (_, pem) = request("system:node:w", &["system:nodes"]);

    // One flipped bit in the signature.
    let der_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = STANDARD.decode(der_b64).unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    let bad = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        STANDARD.encode(&der)
    );
    let r = api(
        &lab,
        "POST",
        CSRS,
        Some(&token),
        Some(&csr_object(
            "bad",
            &bad,
            KUBELET_CLIENT_SIGNER,
            &["client auth"],
        )),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let v = r.json();
    assert_eq!(v["reason"], "Invalid");
    assert_eq!(v["details"]["kind"], "CertificateSigningRequest");
    assert_eq!(v["details"]["group"], "certificates.k8s.io");
    assert_eq!(v["details"]["causes"][0]["field"], "spec.request");
    assert_eq!(v["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert!(v["message"].as_str().unwrap().starts_with(
        "CertificateSigningRequest.certificates.k8s.io \"bad\" is invalid: spec.request: Invalid value: []byte{0x2d, 0x2d"
    ));

    let no_usages = api(
        &lab,
        "POST",
        CSRS,
        Some(&token),
        Some(&csr_object("n", &pem, KUBELET_CLIENT_SIGNER, &[])),
    );
    assert_eq!(no_usages.status, 422);
    assert_eq!(
        no_usages.json()["message"],
        "CertificateSigningRequest.certificates.k8s.io \"n\" is invalid: spec.usages: Required value"
    );
    let odd = api(
        &lab,
        "POST",
        CSRS,
        Some(&token),
        Some(&csr_object("o", &pem, "", &["sign everything"])),
    );
    assert_eq!(odd.status, 422);
    let v = odd.json();
    let causes: Vec<&str> = v["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(causes, ["spec.signerName", "spec.usages[0]"]);

    let yaml = send(
        Arc::new(client_config(&Trust::Ca(&lab.cluster_ca_pem()))),
        &lab.api_server_url(),
        "POST",
        CSRS,
        &[
            ("Authorization", &bearer(&token)),
            ("Content-Type", "application/yaml"),
        ],
        Some(b"kind: CertificateSigningRequest"),
    )
    .unwrap();
    assert_eq!(yaml.status, 415);
    assert_eq!(
        api(&lab, "POST", CSRS, Some(&token), Some(b"{")).status,
        400
    );
    assert_eq!(
        api(&lab, "GET", &format!("{CSRS}/nope"), Some(&token), None).status,
        404
    );
    assert!(lab.csrs().is_empty());
}

#[test]
fn csrs_the_approver_does_not_recognise_stay_pending() {
    let lab = start(LabConfig::default());
    let token = lab.bootstrap_token();
    for (name, cn, orgs, signer) in [
        (
            "admin",
            "admin",
            vec!["system:masters"],
            KUBELET_CLIENT_SIGNER,
        ),
        (
            "no-prefix",
            "worker-1",
            vec!["system:nodes"],
            KUBELET_CLIENT_SIGNER,
        ),
        (
            "serving",
            "system:node:w",
            vec!["system:nodes"],
            "kubernetes.io/kubelet-serving",
        ),
    ] {
        let (_, pem) = request(cn, &orgs);
        let body = csr_object(name, &pem, signer, &["digital signature", "client auth"]);
        assert_eq!(
            api(&lab, "POST", CSRS, Some(&token), Some(&body)).status,
            201
        );
        let v = api(&lab, "GET", &format!("{CSRS}/{name}"), Some(&token), None).json();
        assert_eq!(v["status"], json!({}), "{name}");
    }
    let reasons: Vec<String> = lab
        .csrs()
        .into_iter()
        .map(|r| {
            assert!(r.certificate_pem.is_none());
            r.pending_reason.unwrap()
        })
        .collect();
    assert_eq!(reasons[0], "subject organization is not system:nodes");
    assert_eq!(
        reasons[1],
        "subject common name does not begin with system:node:"
    );
    assert!(reasons[2].contains("only approves kubernetes.io/kube-apiserver-client-kubelet"));
}

#[test]
fn csr_never_approved_and_approval_delay() {
    let lab = start(LabConfig::default().fault(Fault::CsrNeverApproved));
    let (_, pem) = request("system:node:w", &["system:nodes"]);
    let body = csr_object(
        "c",
        &pem,
        KUBELET_CLIENT_SIGNER,
        &["digital signature", "client auth"],
    );
    let token = lab.bootstrap_token();
    assert_eq!(
        api(&lab, "POST", CSRS, Some(&token), Some(&body)).status,
        201
    );
    let v = api(&lab, "GET", &format!("{CSRS}/c"), Some(&token), None).json();
    assert_eq!(v["status"], json!({}));
    assert!(
        lab.csrs()[0]
            .pending_reason
            .as_deref()
            .unwrap()
            .contains("CsrNeverApproved")
    );

    let lab = start(LabConfig::default().csr_approval_delay(Duration::from_millis(600)));
    let token = lab.bootstrap_token();
    assert_eq!(
        api(&lab, "POST", CSRS, Some(&token), Some(&body)).status,
        201
    );
    let early = api(&lab, "GET", &format!("{CSRS}/c"), Some(&token), None).json();
    assert_eq!(early["status"], json!({}));
    assert_eq!(
        lab.csrs()[0].pending_reason.as_deref(),
        Some("not approved yet")
    );
    std::thread::sleep(Duration::from_millis(700));
    let late = api(&lab, "GET", &format!("{CSRS}/c"), Some(&token), None).json();
    assert_eq!(late["status"]["conditions"][0]["type"], "Approved");
}

#[test]
fn a_node_registers_itself_with_its_client_certificate() {
    let lab = start(LabConfig::default());
    let me = lab
        .issue_client_cert("system:node:worker-1", &["system:nodes"])
        .unwrap();
    assert_client_cert_from(&lab, &me.cert_pem);
    let body = node_body(
        "worker-1",
        json!({"kubernetes.io/hostname": "worker-1", "example.com/pool": "gpu"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    );

    // The bootstrap token may read Nodes but not create them.
    let r = api(
        &lab,
        "POST",
        NODES,
        Some(&lab.bootstrap_token()),
        Some(&body),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        format!(
            "nodes is forbidden: User \"system:bootstrap:{}\" cannot create resource \"nodes\" in API group \"\" at the cluster scope",
            lab.bootstrap_token_id()
        )
    );

    let created = api_as(&lab, &me.cert_pem, &me.key_pem, "POST", NODES, Some(&body));
    assert_eq!(created.status, 201, "{}", created.text());
    let got = api_as(
        &lab,
        &me.cert_pem,
        &me.key_pem,
        "GET",
        &format!("{NODES}/worker-1"),
        None,
    );
    assert_eq!(got.status, 200);
    let v = got.json();
    assert_eq!(v["metadata"]["labels"]["example.com/pool"], "gpu");
    assert_eq!(v["spec"]["taints"][0]["key"], "dedicated");
    assert_eq!(v["status"]["conditions"][0]["status"], "True");
    // The bootstrap token reads it too (kubeadm:get-nodes).
    assert_eq!(
        api(
            &lab,
            "GET",
            &format!("{NODES}/worker-1"),
            Some(&lab.bootstrap_token()),
            None
        )
        .status,
        200
    );

    let nodes = lab.nodes();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].name, "worker-1");
    assert_eq!(
        nodes[0].registered_by.as_deref(),
        Some("system:node:worker-1")
    );
    assert_eq!(
        nodes[0].taints,
        [Taint {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: "NoSchedule".into()
        }]
    );
    assert!(nodes[0].ready);

    let again = api_as(&lab, &me.cert_pem, &me.key_pem, "POST", NODES, Some(&body));
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["message"], "nodes \"worker-1\" already exists");

    assert!(lab.set_node_ready("worker-1", false));
    let v = api(
        &lab,
        "GET",
        &format!("{NODES}/worker-1"),
        Some(&lab.bootstrap_token()),
        None,
    )
    .json();
    assert_eq!(v["status"]["conditions"][0]["status"], "False");
    assert!(!lab.set_node_ready("nobody", true));
}

#[test]
fn node_restriction_refuses_other_names_and_labels() {
    let lab = start(LabConfig::default().node_ready_on_register(false));
    let me = lab
        .issue_client_cert("system:node:worker-1", &["system:nodes"])
        .unwrap();

    let other = api_as(
        &lab,
        &me.cert_pem,
        &me.key_pem,
        "POST",
        NODES,
        Some(&node_body("worker-2", json!({}), json!([]))),
    );
    assert_eq!(other.status, 403);
    assert_eq!(
        other.text(),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"nodes \\\"worker-2\\\" is forbidden: node \\\"worker-1\\\" is not allowed to modify node \\\"worker-2\\\"\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"worker-2\",\"kind\":\"nodes\"},\"code\":403}\n"
    );

    // status-errors.json's NodeRestriction case, byte for byte.
    let vectors: Value =
        serde_json::from_str(include_str!("../../tests/vectors/status-errors.json")).unwrap();
    let want = vectors["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["body_compact"]
                .as_str()
                .unwrap()
                .contains("not allowed to set the following labels")
        })
        .unwrap()["body_compact"]
        .as_str()
        .unwrap()
        .to_owned();
    let labelled = api_as(
        &lab,
        &me.cert_pem,
        &me.key_pem,
        "POST",
        NODES,
        Some(&node_body(
            "worker-1",
            json!({"node-role.kubernetes.io/worker": ""}),
            json!([]),
        )),
    );
    assert_eq!(labelled.status, 403);
    assert_eq!(labelled.text(), want);

    let bad_taint = api_as(
        &lab,
        &me.cert_pem,
        &me.key_pem,
        "POST",
        NODES,
        Some(&node_body(
            "worker-1",
            json!({}),
            json!([{"key": "k", "effect": "Sometimes"}]),
        )),
    );
    assert_eq!(bad_taint.status, 422);
    assert_eq!(
        bad_taint.json()["details"]["causes"][0]["field"],
        "spec.taints[0].effect"
    );
    assert!(lab.nodes().is_empty());

    // A certificate that is not a node's cannot register one.
    let jane = lab.issue_client_cert("jane", &[]).unwrap();
    let r = api_as(
        &lab,
        &jane.cert_pem,
        &jane.key_pem,
        "POST",
        NODES,
        Some(&node_body("jane", json!({}), json!([]))),
    );
    assert_eq!(r.status, 403);

    let ok = api_as(
        &lab,
        &me.cert_pem,
        &me.key_pem,
        "POST",
        NODES,
        Some(&node_body("worker-1", json!({}), json!([]))),
    );
    assert_eq!(ok.status, 201);
    assert_eq!(ok.json()["status"]["conditions"][0]["status"], "False");
    assert!(!lab.nodes()[0].ready);
}

#[test]
fn configured_nodes_are_still_served() {
    let lab = start(LabConfig::default().node("old", true));
    let v = api(
        &lab,
        "GET",
        &format!("{NODES}/old"),
        Some(&lab.bootstrap_token()),
        None,
    )
    .json();
    assert_eq!(v["metadata"]["labels"]["kubernetes.io/hostname"], "old");
    assert_eq!(lab.nodes()[0].registered_by, None);
    // A node's certificate reads other Nodes too (Node authorizer).
    let me = lab
        .issue_client_cert("system:node:new", &["system:nodes"])
        .unwrap();
    assert_eq!(
        api_as(
            &lab,
            &me.cert_pem,
            &me.key_pem,
            "GET",
            &format!("{NODES}/old"),
            None
        )
        .status,
        200
    );
}
