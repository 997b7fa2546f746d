//! The loopback lab: HTTPS servers on 127.0.0.1 that play attach-node's
//! control plane and a Kubernetes API server, speaking the real wire formats
//! with real certificates, and able to inject every failure the contract
//! names.
//!
//! ```no_run
//! use attach_node_lab::{Fault, Lab, LabConfig};
//!
//! let lab = Lab::start(LabConfig::default().fault(Fault::TamperedJws)).unwrap();
//! // run attach-node against lab.control_plane_url() with lab.openapi_token() ...
//! assert!(lab.requests().iter().all(|r| !r.target.contains(&lab.openapi_token())));
//! ```
//!
//! Each [`Lab`] has fresh keys, tokens and ports, so labs can run side by
//! side in one test process. Dropping it stops both servers and joins every
//! thread.

mod apiserver;
pub mod argv;
mod auth;
mod controlplane;
mod csr;
mod faults;
mod https;
pub mod jws;
mod kube;
mod nodes;
mod pki;
mod random;
mod request;
mod timefmt;
pub mod tls_client;

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{Issuer, KeyPair};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{RootCertStore, ServerConfig};

pub use csr::CsrRecord;
pub use faults::{Fault, RetryAfter};
pub use kube::Taint;
pub use nodes::{NodeRecord, is_kubelet_label, is_kubernetes_label, unknown_node_labels_message};
pub use request::{ClientCert, Request, Server};

use apiserver::{ApiServer, ServingCerts};
use controlplane::{ControlPlane, Tokens};
use faults::Plan;
use https::{OptionalClientCert, RequestLog, Running, ServerParts, Stop};

/// `signerName` of a kubelet's client-certificate CSR.
pub const KUBELET_CLIENT_SIGNER: &str = csr::KUBELET_CLIENT_SIGNER;

/// What to start. `LabConfig::default()` is a healthy lab.
#[derive(Clone, Debug)]
pub struct LabConfig {
    faults: Vec<Fault>,
    api_max_in_flight: Option<usize>,
    nodes: Vec<(String, bool)>,
    node_ready_on_register: bool,
    csr_approval_delay: Duration,
    bootstrap_token: Option<String>,
    endpoints_before: Vec<String>,
    ca_cert_hashes: Option<Vec<String>>,
    log_requests: bool,
    artifacts: Vec<(String, Vec<u8>)>,
    downloads: Vec<(String, Vec<u8>)>,
}

impl Default for LabConfig {
    fn default() -> LabConfig {
        LabConfig {
            faults: Vec::new(),
            api_max_in_flight: None,
            nodes: Vec::new(),
            node_ready_on_register: true,
            csr_approval_delay: Duration::ZERO,
            bootstrap_token: None,
            artifacts: Vec::new(),
            downloads: Vec::new(),
            endpoints_before: Vec::new(),
            ca_cert_hashes: None,
            log_requests: false,
        }
    }
}

impl LabConfig {
    /// Serve `bytes` at `<control plane>/artifacts/<name>` and list it in
    /// ClusterInfo's `artifacts` with its sha256.
    pub fn artifact(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.artifacts.push((name.to_owned(), bytes.into()));
        self
    }

    /// Serve `bytes` at `<control plane>/downloads/<name>`, unlisted: a
    /// release directory (install.sh, the binary, SHA256SUMS) for the
    /// one-liner's tests.
    pub fn download(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.downloads.push((name.to_owned(), bytes.into()));
        self
    }

    /// Injects a failure; may be called several times (see [`Fault`] for
    /// how faults combine).
    pub fn fault(mut self, f: Fault) -> Self {
        self.faults.push(f);
        self
    }

    /// Admission limit: while `n` API-server requests are being answered,
    /// further ones get 429 with `Retry-After: 1`, as kube-apiserver's
    /// max-in-flight filter does.
    pub fn api_max_in_flight(mut self, n: usize) -> Self {
        self.api_max_in_flight = Some(n);
        self
    }

    /// Registers a Node object that `GET /api/v1/nodes/<name>` returns.
    pub fn node(mut self, name: &str, ready: bool) -> Self {
        self.nodes.retain(|(n, _)| n != name);
        self.nodes.push((name.to_owned(), ready));
        self
    }

    /// Whether a Node a kubelet registers (`POST /api/v1/nodes`) starts
    /// Ready (the default) or NotReady; [`Lab::set_node_ready`] changes it.
    pub fn node_ready_on_register(mut self, ready: bool) -> Self {
        self.node_ready_on_register = ready;
        self
    }

    /// How long after its creation a kubelet client CSR shows as approved
    /// and signed (default: at once, i.e. by the first GET after the POST,
    /// whose own answer never carries a status).
    pub fn csr_approval_delay(mut self, d: Duration) -> Self {
        self.csr_approval_delay = d;
        self
    }

    /// Uses this bootstrap token instead of a random one. It must have
    /// kubeadm's `[a-z0-9]{6}.[a-z0-9]{16}` shape; [`Lab::start`] refuses
    /// anything else.
    pub fn bootstrap_token(mut self, token: &str) -> Self {
        self.bootstrap_token = Some(token.to_owned());
        self
    }

    /// Lists `url` in ClusterInfo's `apiServerEndpoints` before the lab's
    /// own API server (for "endpoints are tried in order" tests); repeated
    /// calls keep their order.
    pub fn api_endpoint_before(mut self, url: &str) -> Self {
        self.endpoints_before.push(url.to_owned());
        self
    }

    /// Replaces ClusterInfo's `caCertHashes` (by default the real pin). An
    /// empty list leaves the field out.
    pub fn ca_cert_hashes(mut self, pins: &[&str]) -> Self {
        self.ca_cert_hashes = Some(pins.iter().map(|p| (*p).to_owned()).collect());
        self
    }

    /// Prints one line per answered request to stderr (server, method,
    /// target, status; never headers, so never a token sent properly).
    pub fn log_requests(mut self, on: bool) -> Self {
        self.log_requests = on;
        self
    }
}

/// A running lab. Dropping it stops the servers and joins their threads.
pub struct Lab {
    control_plane_url: String,
    api_server_url: String,
    control_plane_ca_pem: String,
    cluster_ca_pem: String,
    ca_cert_hash: String,
    bootstrap_token: String,
    openapi_token: String,
    single_use_openapi_token: String,
    expired_openapi_token: String,
    log: Arc<RequestLog>,
    api: Arc<ApiServer>,
    cluster_ca: Arc<Issuer<'static, KeyPair>>,
    stop: Arc<Stop>,
    servers: Vec<Running>,
}

/// A client certificate issued by the cluster CA, with its key.
#[derive(Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    /// PKCS#8.
    pub key_pem: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Lab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No tokens: a Debug print must not leak them into test output.
        f.debug_struct("Lab")
            .field("control_plane_url", &self.control_plane_url)
            .field("api_server_url", &self.api_server_url)
            .field("ca_cert_hash", &self.ca_cert_hash)
            .finish_non_exhaustive()
    }
}

fn is_bootstrap_token(t: &str) -> bool {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    matches!(t.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

fn tls_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> io::Result<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(io::Error::other)?;
    let builder = match client_verifier {
        Some(inner) => builder.with_client_cert_verifier(Arc::new(OptionalClientCert { inner })),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    // Only HTTP/1.1 is spoken; saying so stops an h2-capable client from
    // trying HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every connection gets a full handshake. With resumption a client
    // could skip the certificate, and `DifferentCertAfterTrust` would depend
    // on the client's session cache rather than on the lab.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

impl Lab {
    pub fn start(cfg: LabConfig) -> io::Result<Lab> {
        let plan = Plan::new(&cfg.faults);
        let bootstrap_token = match cfg.bootstrap_token {
            Some(t) if is_bootstrap_token(&t) => t,
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the bootstrap token must match [a-z0-9]{6}.[a-z0-9]{16}",
                ));
            }
            None => random::bootstrap_token(),
        };
        let tokens = Tokens {
            valid: random::openapi_token("valid"),
            single_use: random::openapi_token("single-use"),
            expired: random::openapi_token("expired"),
        };
        let pki = pki::generate(plan.ca_flaw, plan.impostor)?;

        // Bind both first: each server's answers name the API server's port.
        let cp_listener = https::bind_loopback()?;
        let api_listener = https::bind_loopback()?;
        let control_plane_url = format!("https://{}", cp_listener.local_addr()?);
        let api_server_url = format!("https://{}", api_listener.local_addr()?);

        let stop = Stop::new();
        let log = Arc::new(RequestLog::new(cfg.log_requests));

        let api = Arc::new(ApiServer::new(apiserver::Setup {
            plan: &plan,
            bootstrap_token: &bootstrap_token,
            cluster_ca_pem: &pki.cluster_ca_pem,
            server_url: &api_server_url,
            nodes: &cfg.nodes,
            node_ready_on_register: cfg.node_ready_on_register,
            csr_approval_delay: cfg.csr_approval_delay,
            cluster_ca: Arc::clone(&pki.cluster_ca),
            max_in_flight: cfg.api_max_in_flight,
            stop: Arc::clone(&stop),
        }));
        let client_verifier = cluster_client_verifier(&pki.cluster_ca_pem)?;
        let mut endpoints = cfg.endpoints_before;
        endpoints.push(api_server_url.clone());
        let pins = cfg
            .ca_cert_hashes
            .unwrap_or_else(|| vec![pki.ca_cert_hash.clone()]);
        let openapi_token = tokens.valid.clone();
        let single_use_openapi_token = tokens.single_use.clone();
        let expired_openapi_token = tokens.expired.clone();
        let cp = ControlPlane::new(
            tokens,
            &plan,
            &endpoints,
            &bootstrap_token,
            &pins,
            controlplane::Artifacts::new(
                &control_plane_url,
                cfg.artifacts,
                cfg.downloads,
                plan.artifact_corrupted,
            ),
            Arc::clone(&stop),
        );

        let api_tls = tls_config(
            Arc::new(ServingCerts::new(
                Arc::clone(&pki.api_server),
                pki.impostor_api_server.clone(),
            )),
            Some(Arc::clone(&client_verifier)),
        )?;
        let cp_tls = tls_config(
            Arc::new(ServingCerts::new(Arc::clone(&pki.control_plane), None)),
            None,
        )?;

        let mut lab = Lab {
            control_plane_url,
            api_server_url,
            control_plane_ca_pem: pki.control_plane_ca_pem,
            cluster_ca_pem: pki.cluster_ca_pem,
            ca_cert_hash: pki.ca_cert_hash,
            bootstrap_token,
            openapi_token,
            single_use_openapi_token,
            expired_openapi_token,
            log: Arc::clone(&log),
            api: Arc::clone(&api),
            cluster_ca: pki.cluster_ca,
            stop: Arc::clone(&stop),
            servers: Vec::new(),
        };
        // Pushed one by one so that if the second spawn fails, dropping
        // `lab` still stops the first.
        lab.servers.push(https::spawn(
            cp_listener,
            ServerParts {
                server: Server::ControlPlane,
                tls: Arc::new(cp_tls),
                client_verifier: None,
                handler: Arc::new(cp),
                log: Arc::clone(&log),
                stop: Arc::clone(&stop),
            },
        )?);
        lab.servers.push(https::spawn(
            api_listener,
            ServerParts {
                server: Server::ApiServer,
                tls: Arc::new(api_tls),
                client_verifier: Some(client_verifier),
                handler: api,
                log,
                stop,
            },
        )?);
        Ok(lab)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn control_plane_url(&self) -> String {
        self.control_plane_url.clone()
    }

    /// PEM of the CA that signed the control plane's serving certificate
    /// (not the cluster CA).
    pub fn control_plane_ca_pem(&self) -> String {
        self.control_plane_ca_pem.clone()
    }

    /// `https://127.0.0.1:PORT`; also the `server` of the served kubeconfig.
    pub fn api_server_url(&self) -> String {
        self.api_server_url.clone()
    }

    /// PEM of the cluster CA exactly as put in the kubeconfig (the flawed
    /// one under `CaNotCa` / `CaExpired`).
    pub fn cluster_ca_pem(&self) -> String {
        self.cluster_ca_pem.clone()
    }

    /// `sha256:<64 lowercase hex>` of the cluster CA's SubjectPublicKeyInfo.
    pub fn ca_cert_hash(&self) -> String {
        self.ca_cert_hash.clone()
    }

    /// `<id>.<secret>`, fresh for each lab unless configured.
    pub fn bootstrap_token(&self) -> String {
        self.bootstrap_token.clone()
    }

    /// The 6-character id part of [`Lab::bootstrap_token`].
    pub fn bootstrap_token_id(&self) -> String {
        self.bootstrap_token[..6].to_owned()
    }

    /// Valid and reusable.
    pub fn openapi_token(&self) -> String {
        self.openapi_token.clone()
    }

    /// Answered with ClusterInfo once, then 410.
    pub fn single_use_openapi_token(&self) -> String {
        self.single_use_openapi_token.clone()
    }

    /// Always 403.
    pub fn expired_openapi_token(&self) -> String {
        self.expired_openapi_token.clone()
    }

    /// Every request either server has seen, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.log.snapshot()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        self.log.clear();
    }

    /// Every CertificateSigningRequest created, in creation order.
    pub fn csrs(&self) -> Vec<CsrRecord> {
        self.api.csrs.records()
    }

    /// Every Node, configured ones first, then registered ones in
    /// registration order.
    pub fn nodes(&self) -> Vec<NodeRecord> {
        self.api.nodes.records()
    }

    /// Sets a Node's Ready condition (as its kubelet's status updates
    /// would); false if there is no Node of that name.
    pub fn set_node_ready(&self, name: &str, ready: bool) -> bool {
        self.api.nodes.set_ready(name, ready)
    }

    /// A client certificate from the cluster CA with this subject, valid
    /// for a year, ExtendedKeyUsage clientAuth, for a fresh P-256 key: what
    /// an admin's or another node's credentials look like to the API
    /// server. `organizations` are the groups.
    pub fn issue_client_cert(
        &self,
        common_name: &str,
        organizations: &[&str],
    ) -> io::Result<IssuedCert> {
        let organizations: Vec<String> = organizations.iter().map(|o| (*o).to_owned()).collect();
        let (cert_pem, key_pem) = pki::issue_client_cert(
            &self.cluster_ca,
            &pki::ClientCertRequest {
                common_name,
                organizations: &organizations,
                key_encipherment: false,
                validity: time::Duration::days(365),
            },
        )?;
        Ok(IssuedCert { cert_pem, key_pem })
    }

    /// The bootstrap kubeconfig kubeadm writes for the kubelet
    /// (`/etc/kubernetes/bootstrap-kubelet.conf`, in client-go's YAML) for
    /// this lab: its API server, the cluster CA, the bootstrap token.
    pub fn bootstrap_kubeconfig(&self) -> String {
        kube::bootstrap_kubeconfig(
            &self.cluster_ca_pem,
            &self.api_server_url,
            &self.bootstrap_token,
        )
    }
    /// Writes what a shell script needs to use the lab into `dir` (created
    /// 0700 if missing): `control-plane-ca.pem`, `cluster-ca.pem`, the
    /// tokens as 0600 files without trailing newline (`openapi-token`,
    /// `openapi-token-single-use`, `openapi-token-expired`,
    /// `bootstrap-token`), `bootstrap-kubelet.conf` (0600, see
    /// [`Lab::bootstrap_kubeconfig`]), and `lab.env`, shell-sourceable `LAB_*=` lines
    /// that name the files but hold no secret.
    pub fn write_files(&self, dir: &Path) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let dir = dir.canonicalize()?;
        let path = |name: &str| dir.join(name);

        fs::write(path("control-plane-ca.pem"), &self.control_plane_ca_pem)?;
        fs::write(path("cluster-ca.pem"), &self.cluster_ca_pem)?;
        write_secret(&path("openapi-token"), &self.openapi_token)?;
        write_secret(
            &path("openapi-token-single-use"),
            &self.single_use_openapi_token,
        )?;
        write_secret(&path("openapi-token-expired"), &self.expired_openapi_token)?;
        write_secret(&path("bootstrap-token"), &self.bootstrap_token)?;
        write_secret(
            &path("bootstrap-kubelet.conf"),
            &self.bootstrap_kubeconfig(),
        )?;

        let vars = [
            ("LAB_CONTROL_PLANE", self.control_plane_url.clone()),
            ("LAB_API_SERVER", self.api_server_url.clone()),
            ("LAB_CA_CERT_HASH", self.ca_cert_hash.clone()),
            ("LAB_DIR", dir.display().to_string()),
            (
                "LAB_CONTROL_PLANE_CA",
                path("control-plane-ca.pem").display().to_string(),
            ),
            (
                "LAB_CLUSTER_CA",
                path("cluster-ca.pem").display().to_string(),
            ),
            (
                "LAB_OPENAPI_TOKEN_FILE",
                path("openapi-token").display().to_string(),
            ),
            (
                "LAB_BOOTSTRAP_TOKEN_FILE",
                path("bootstrap-token").display().to_string(),
            ),
            (
                "LAB_BOOTSTRAP_KUBECONFIG",
                path("bootstrap-kubelet.conf").display().to_string(),
            ),
        ];
        let env: String = vars
            .iter()
            .map(|(k, v)| format!("{k}={}\n", shell_quote(v)))
            .collect();
        fs::write(path("lab.env"), env)
    }
}

/// Trusts client certificates from the cluster CA only. The CA certificate
/// is a trust anchor, so even a flawed one (`CaNotCa`, `CaExpired`) still
/// verifies the client certificates its key signs.
fn cluster_client_verifier(cluster_ca_pem: &str) -> io::Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    let der = CertificateDer::from_pem_slice(cluster_ca_pem.as_bytes())
        .map_err(|e| io::Error::other(format!("cluster CA: {e}")))?;
    roots.add(der).map_err(io::Error::other)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(default_provider()))
        .allow_unauthenticated()
        .build()
        .map_err(io::Error::other)
}

/// Creates or replaces a file readable by its owner only.
fn write_secret(path: &Path, contents: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only when the file is created.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(contents.as_bytes())
}

/// Single-quotes for POSIX sh, so any path survives `. lab.env`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.stop();
        for server in &mut self.servers {
            server.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_token_shape_is_checked() {
        assert!(is_bootstrap_token("abcdef.0123456789abcdef"));
        assert!(!is_bootstrap_token("ABCDEF.0123456789abcdef"));
        assert!(!is_bootstrap_token("abcdef0123456789abcdef"));
        assert!(!is_bootstrap_token("abcde.0123456789abcdef"));
        let err = Lab::start(LabConfig::default().bootstrap_token("nope")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn request_helpers() {
        let r = Request {
            server: Server::ControlPlane,
            method: "GET".into(),
            target: "/v1/node-attach?x=1".into(),
            headers: vec![("User-Agent".into(), "t".into())],
            body: Vec::new(),
            client_cert: None,
            status: None,
        };
        assert_eq!(r.path(), "/v1/node-attach");
        assert_eq!(r.header("user-agent"), Some("t"));
        assert_eq!(r.header("authorization"), None);
    }
}
