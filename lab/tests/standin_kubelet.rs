//! The `standin-kubelet` binary as a process against a lab: TLS bootstrap
//! with a hand-written bootstrap kubeconfig, the files it leaves, Node
//! registration, and the ways it stops.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use attach_node_lab::{Fault, KUBELET_CLIENT_SIGNER, Lab, LabConfig, Taint};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{client_config_with_cert, send};
use rustls::RootCertStore;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use x509_parser::prelude::{FromDer as _, X509Certificate};

const BIN: &str = env!("CARGO_BIN_EXE_standin-kubelet");
const KUBECTL: &str = "/usr/bin/kubectl";

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "standin-kubelet-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// bootstrap-kubelet.conf as kubeadm writes it (tests/vectors/kubeadm-join/
/// bootstrap-kubelet.conf), by hand.
fn write_bootstrap_kubeconfig(lab: &Lab, path: &Path) {
    let text = format!(
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {}
    server: {}
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: tls-bootstrap-token-user
  name: tls-bootstrap-token-user@kubernetes
current-context: tls-bootstrap-token-user@kubernetes
kind: Config
users:
- name: tls-bootstrap-token-user
  user:
    token: {}
",
        STANDARD.encode(lab.cluster_ca_pem()),
        lab.api_server_url(),
        lab.bootstrap_token()
    );
    assert_eq!(text, lab.bootstrap_kubeconfig());
    fs::write(path, text).unwrap();
}

/// The kubelet's flags as attach-node's drop-in passes them, with the
/// files in `dir`.
fn kubelet_args(dir: &TempDir) -> Vec<String> {
    vec![
        format!(
            "--bootstrap-kubeconfig={}",
            dir.path("bootstrap-kubelet.conf").display()
        ),
        format!("--kubeconfig={}", dir.path("kubelet.conf").display()),
        format!("--config={}", dir.path("config.yaml").display()),
        "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock".into(),
        "--hostname-override=Worker-1".into(),
        "--pod-infra-container-image=registry.k8s.io/pause:3.10".into(),
        "--register-with-taints=dedicated=gpu:NoSchedule".into(),
        "--node-labels=example.com/pool=gpu".into(),
        format!("--cert-dir={}", dir.path("pki").display()),
        "--healthz-port=0".into(),
        "--fail-swap-on=false".into(),
    ]
}

fn setup(lab: &Lab, tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    write_bootstrap_kubeconfig(lab, &dir.path("bootstrap-kubelet.conf"));
    fs::write(
        dir.path("config.yaml"),
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nhealthzPort: 10248\n",
    )
    .unwrap();
    dir
}

/// Runs the stand-in to completion (bounded: it is killed after 60 s).
fn run(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "STANDIN_KUBELET_NEVER_REGISTER",
        "STANDIN_KUBELET_CSR_TIMEOUT",
        "STANDIN_KUBELET_REGISTER_TIMEOUT",
        "STANDIN_KUBELET_LIFETIME",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("STANDIN_KUBELET_LIFETIME", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_client_cert_from(lab: &Lab, cert_pem: &[u8]) {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(lab.cluster_ca_pem().as_bytes()).unwrap())
        .unwrap();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(default_provider()))
            .build()
            .unwrap();
    let leaf = CertificateDer::from_pem_slice(cert_pem).unwrap();
    verifier
        .verify_client_cert(&leaf, &[], UnixTime::now())
        .expect("chains to the cluster CA, in validity, clientAuth");
}

fn kubectl_available() -> bool {
    let ok = Path::new(KUBECTL).exists();
    if !ok {
        eprintln!("{KUBECTL} is missing: the kubectl checks are skipped");
    }
    ok
}

#[test]
fn bootstraps_writes_kubelet_files_and_registers_its_node() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = setup(&lab, "ok");
    let out = run(&kubelet_args(&dir), &[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");

    // One line per stage.
    let csr = lab.csrs();
    assert_eq!(csr.len(), 1, "{log}");
    let csr = &csr[0];
    for line in [
        "THIS IS A TEST STAND-IN, NOT A KUBELET".to_owned(),
        format!("bootstrap: CSR {} created", csr.name),
        "bootstrap: certificate issued: O=system:nodes, CN=system:node:worker-1 by CN=kubernetes"
            .into(),
        format!("wrote {}", dir.path("kubelet.conf").display()),
        "registered Node worker-1".into(),
        "Node worker-1: Ready=True".into(),
        "--fail-swap-on=false: unknown to the stand-in, ignored".into(),
    ] {
        assert!(log.contains(&line), "missing {line:?} in:\n{log}");
    }

    // The CSR, as the kubelet makes it.
    assert!(
        csr.name.starts_with("node-csr-") && csr.name.len() == 9 + 43,
        "{}",
        csr.name
    );
    assert_eq!(csr.common_name, "system:node:worker-1");
    assert_eq!(csr.organizations, ["system:nodes"]);
    assert_eq!(csr.signer_name, KUBELET_CLIENT_SIGNER);
    assert_eq!(csr.usages, ["digital signature", "client auth"]);
    assert_eq!(
        csr.username,
        format!("system:bootstrap:{}", lab.bootstrap_token_id())
    );
    let issued = csr.certificate_pem.clone().expect("signed");

    // The certificate store.
    let pki = dir.path("pki");
    let current = pki.join("kubelet-client-current.pem");
    let target = fs::read_link(&current).unwrap();
    assert!(target.is_absolute());
    let file_name = target.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        file_name.starts_with("kubelet-client-20")
            && file_name.ends_with(".pem")
            && file_name.len() == 38,
        "{file_name}"
    );
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!pki.join("kubelet-client.key.tmp").exists());
    let pem = fs::read(&current).unwrap();
    let text = String::from_utf8(pem.clone()).unwrap();
    assert!(text.starts_with(&issued), "the certificate first");
    assert!(
        text.contains("-----BEGIN EC PRIVATE KEY-----"),
        "SEC1, as the kubelet writes"
    );
    assert_client_cert_from(&lab, &pem);
    let der = CertificateDer::from_pem_slice(&pem).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth);

    // kubelet.conf, shaped like tests/vectors/kubeadm-join/kubelet.conf.
    let conf_path = dir.path("kubelet.conf");
    assert_eq!(
        fs::metadata(&conf_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let conf = fs::read_to_string(&conf_path).unwrap();
    let want = include_str!("../../tests/vectors/kubeadm-join/kubelet.conf")
        .replace("https://192.0.2.10:6443", &lab.api_server_url())
        .replace(
            "/var/lib/kubelet/pki/kubelet-client-current.pem",
            &current.display().to_string(),
        );
    let vector_ca = want
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .unwrap()
        .to_owned();
    let want = want.replace(&vector_ca, &STANDARD.encode(lab.cluster_ca_pem()));
    assert_eq!(conf, want);

    // The Node, with the labels and taints of the command line.
    let nodes = lab.nodes();
    assert_eq!(nodes.len(), 1);
    let node = &nodes[0];
    assert_eq!(node.name, "worker-1");
    assert_eq!(node.registered_by.as_deref(), Some("system:node:worker-1"));
    assert_eq!(node.labels["example.com/pool"], "gpu");
    assert_eq!(node.labels["kubernetes.io/hostname"], "worker-1");
    assert_eq!(node.labels["kubernetes.io/os"], "linux");
    assert_eq!(
        node.taints,
        [Taint {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: "NoSchedule".into()
        }]
    );

    // Its client certificate reads the Node; it cannot create another.
    let pem_text = String::from_utf8(pem).unwrap();
    let client = Arc::new(client_config_with_cert(
        &lab.cluster_ca_pem(),
        &pem_text,
        &pem_text,
    ));
    let got = send(
        Arc::clone(&client),
        &lab.api_server_url(),
        "GET",
        "/api/v1/nodes/worker-1",
        &[],
        None,
    )
    .unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["metadata"]["name"], "worker-1");
    let other = br#"{"kind":"Node","apiVersion":"v1","metadata":{"name":"worker-2"}}"#;
    let refused = send(
        client,
        &lab.api_server_url(),
        "POST",
        "/api/v1/nodes",
        &[],
        Some(other),
    )
    .unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json()["message"],
        "nodes \"worker-2\" is forbidden: node \"worker-1\" is not allowed to modify node \"worker-2\""
    );

    if kubectl_available() {
        let view = Command::new(KUBECTL)
            .args(["config", "view", "--minify", "--raw", "--kubeconfig"])
            .arg(&conf_path)
            .env("HOME", &dir.0)
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&view.stdout);
        assert!(
            view.status.success(),
            "{}",
            String::from_utf8_lossy(&view.stderr)
        );
        assert!(
            shown.contains(&format!("server: {}", lab.api_server_url())),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("client-certificate: {}", current.display())),
            "{shown}"
        );
        assert!(
            shown.contains("current-context: default-context"),
            "{shown}"
        );
        // Go's TLS stack, with the SEC1 key, against the lab's mutual TLS.
        let get = Command::new(KUBECTL)
            .args(["get", "--raw", "/api/v1/nodes/worker-1", "--kubeconfig"])
            .arg(&conf_path)
            .env("HOME", &dir.0)
            .output()
            .unwrap();
        assert!(
            get.status.success(),
            "{}",
            String::from_utf8_lossy(&get.stderr)
        );
        assert!(String::from_utf8_lossy(&get.stdout).contains("\"name\":\"worker-1\""));
    }

    // Restarted (as systemd would), it uses kubelet.conf: no new CSR, and
    // the existing Node is accepted.
    let again = run(&kubelet_args(&dir), &[]);
    let log = stderr(&again);
    assert!(again.status.success(), "{log}");
    assert!(log.contains("is usable"), "{log}");
    assert!(
        log.contains("Node worker-1 already exists; using it"),
        "{log}"
    );
    assert_eq!(lab.csrs().len(), 1);
    assert_eq!(lab.nodes().len(), 1);

    // With kubelet.conf gone but the certificate still there, it writes
    // kubelet.conf for that certificate, again without a CSR.
    fs::remove_file(&conf_path).unwrap();
    let third = run(&kubelet_args(&dir), &[]);
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(fs::read_to_string(&conf_path).unwrap(), conf);
    assert_eq!(lab.csrs().len(), 1);
}

#[test]
fn a_csr_never_approved_makes_it_give_up() {
    let lab = Lab::start(LabConfig::default().fault(Fault::CsrNeverApproved)).unwrap();
    let dir = setup(&lab, "never-approved");
    // The bound is proven by the message below, not by a wall clock
    // (tests never fail on a time).
    let out = run(
        &kubelet_args(&dir),
        &[("STANDIN_KUBELET_CSR_TIMEOUT", "1.5")],
    );
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let csrs = lab.csrs();
    assert_eq!(csrs.len(), 1);
    assert!(
        log.contains(&format!(
            "error: bootstrap: gave up after 1.5s (--standin-csr-timeout) waiting for CSR {} to be approved and signed",
            csrs[0].name
        )),
        "{log}"
    );
    assert!(!dir.path("kubelet.conf").exists());
    assert!(!dir.path("pki").join("kubelet-client-current.pem").exists());
    // The key is kept, so a restart asks for the same CSR again.
    assert!(dir.path("pki").join("kubelet-client.key.tmp").exists());
    assert!(lab.nodes().is_empty());

    let out = run(
        &kubelet_args(&dir),
        &[("STANDIN_KUBELET_CSR_TIMEOUT", "0.5")],
    );
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("already exists; waiting for it"), "{log}");
    assert_eq!(lab.csrs().len(), 1);
}

#[test]
fn never_register_writes_kubelet_conf_but_no_node() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = setup(&lab, "never-register");
    let out = run(
        &kubelet_args(&dir),
        &[("STANDIN_KUBELET_NEVER_REGISTER", "1")],
    );
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("not registering a Node"), "{log}");
    assert!(dir.path("kubelet.conf").exists());
    assert_eq!(lab.csrs().len(), 1);
    assert!(lab.nodes().is_empty());
    assert!(!lab.requests().iter().any(|r| r.path() == "/api/v1/nodes"));
}

#[test]
fn refuses_what_the_kubelet_refuses() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = setup(&lab, "refuses");

    let mut args = kubelet_args(&dir);
    args.push("--node-labels=node-role.kubernetes.io/worker=".into());
    let out = run(&args, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(
        "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [node-role.kubernetes.io/worker]"
    ));

    fs::remove_file(dir.path("config.yaml")).unwrap();
    let out = run(&kubelet_args(&dir), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("failed to load kubelet config file"),
        "{}",
        stderr(&out)
    );

    fs::write(
        dir.path("config.yaml"),
        "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n",
    )
    .unwrap();
    fs::remove_file(dir.path("bootstrap-kubelet.conf")).unwrap();
    let out = run(&kubelet_args(&dir), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unable to load bootstrap kubeconfig"),
        "{}",
        stderr(&out)
    );

    // A bootstrap token the API server does not know.
    let other = Lab::start(LabConfig::default()).unwrap();
    write_bootstrap_kubeconfig(&other, &dir.path("bootstrap-kubelet.conf"));
    let text = fs::read_to_string(dir.path("bootstrap-kubelet.conf"))
        .unwrap()
        .replace(&other.api_server_url(), &lab.api_server_url())
        .replace(
            &STANDARD.encode(other.cluster_ca_pem()),
            &STANDARD.encode(lab.cluster_ca_pem()),
        );
    fs::write(dir.path("bootstrap-kubelet.conf"), text).unwrap();
    let out = run(&kubelet_args(&dir), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("HTTP 401: Unauthorized"),
        "{}",
        stderr(&out)
    );

    assert!(lab.csrs().is_empty());
    assert!(lab.nodes().is_empty());
}

#[test]
fn help_says_it_is_a_stand_in() {
    let out = run(&["--help".into()], &[]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.starts_with("standin-kubelet: A TEST STAND-IN FOR THE KUBELET. IT IS NOT A KUBELET.")
    );
    for flag in [
        "--bootstrap-kubeconfig",
        "--cert-dir",
        "--standin-never-register",
        "STANDIN_KUBELET_NEVER_REGISTER",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
    assert_eq!(run(&["stray".into()], &[]).status.code(), Some(2));
}

#[test]
fn serves_healthz_while_running() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = setup(&lab, "healthz");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = kubelet_args(&dir);
    args.retain(|a| !a.starts_with("--healthz-port"));
    args.push(format!("--healthz-port={port}"));
    /// Stops the stand-in (SIGKILL) even when an assertion fails first.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _running = Kill(
        Command::new(BIN)
            .args(&args)
            .env("STANDIN_KUBELET_LIFETIME", "30")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        use std::io::{Read as _, Write as _};
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            break text;
        }
        assert!(Instant::now() < deadline, "healthz never came up");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
}
