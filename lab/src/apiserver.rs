//! The Kubernetes API server, as much of it as a join touches: the
//! anonymous `cluster-info` read (contract section 3), the reads made with
//! the bootstrap token afterwards, the kubelet's TLS bootstrap (CSRs, see
//! [`crate::csr`]) and its Node registration with the client certificate
//! it got (see [`crate::nodes`]), with kube-apiserver's authentication
//! order, RBAC answers and max-in-flight admission.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use rcgen::{Issuer, KeyPair};

use crate::auth::{User, user_from_cert};
use crate::csr::{self, Approval, Csrs};
use crate::faults::{Countdown, Plan, Signature};
use crate::https::{Credential, Handler, Response, Stop, credential};
use crate::kube::{self, ObjectMeta};
use crate::nodes::Nodes;
use crate::request::Request;
use crate::{jws, random, timefmt};

pub(crate) const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
pub(crate) const KUBELET_CONFIG_PATH: &str =
    "/api/v1/namespaces/kube-system/configmaps/kubelet-config";
const NODES_PATH: &str = "/api/v1/nodes";

/// The `kubelet` key of kube-system/kubelet-config, from kubeadm's dry-run
/// fixture.
pub(crate) const KUBELET_CONFIGURATION: &str = "apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
healthzBindAddress: 127.0.0.1
healthzPort: 10248
kind: KubeletConfiguration
memorySwap: {}
resolvConf: /run/systemd/resolve/resolv.conf
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
";

/// The token id whose signature `NoSignatureForToken` leaves in place.
const OTHER_TOKEN_ID: &str = "zzzzzz";

/// Everything the API server serves, fixed when the lab starts.
pub(crate) struct Setup<'a> {
    pub plan: &'a Plan,
    pub bootstrap_token: &'a str,
    pub cluster_ca_pem: &'a str,
    pub server_url: &'a str,
    pub nodes: &'a [(String, bool)],
    pub node_ready_on_register: bool,
    pub csr_approval_delay: Duration,
    pub cluster_ca: Arc<Issuer<'static, KeyPair>>,
    pub max_in_flight: Option<usize>,
    pub stop: Arc<Stop>,
}

pub(crate) struct ApiServer {
    bootstrap_token: String,
    /// The bodies served in turn; the last one repeats.
    cluster_info: Vec<Vec<u8>>,
    served: AtomicUsize,
    errors: Countdown<u16>,
    slow: Option<Duration>,
    oversized: bool,
    kubelet_config: Vec<u8>,
    pub(crate) nodes: Nodes,
    pub(crate) csrs: Csrs,
    max_in_flight: Option<usize>,
    in_flight: AtomicUsize,
    stop: Arc<Stop>,
}

impl ApiServer {
    pub fn new(s: Setup<'_>) -> ApiServer {
        let created = timefmt::rfc3339(SystemTime::now());
        let (token_id, token_secret) = s
            .bootstrap_token
            .split_once('.')
            .expect("the lab's bootstrap token was validated");

        let mut variants = vec![kube::kubeconfig(s.cluster_ca_pem, s.server_url, false)];
        if s.plan.cluster_info_changes {
            variants.push(kube::kubeconfig(s.cluster_ca_pem, s.server_url, true));
        }
        let uid = random::uuid();
        let cluster_info = variants
            .iter()
            .enumerate()
            .map(|(i, kubeconfig)| {
                let mut data = BTreeMap::new();
                let sig = jws::sign_detached(kubeconfig.as_bytes(), token_id, token_secret);
                match s.plan.signature {
                    Signature::Valid => {
                        data.insert(format!("jws-kubeconfig-{token_id}"), sig);
                    }
                    Signature::Tampered => {
                        data.insert(format!("jws-kubeconfig-{token_id}"), jws::tamper(&sig));
                    }
                    Signature::OtherTokenOnly => {
                        let other_id = if token_id == OTHER_TOKEN_ID {
                            "yyyyyy"
                        } else {
                            OTHER_TOKEN_ID
                        };
                        let other_secret = random::bootstrap_token()[7..].to_owned();
                        let other =
                            jws::sign_detached(kubeconfig.as_bytes(), other_id, &other_secret);
                        data.insert(format!("jws-kubeconfig-{other_id}"), other);
                    }
                }
                data.insert("kubeconfig".into(), kubeconfig.clone());
                // A changed object gets a new resourceVersion, as in etcd.
                let rv = (312 + i).to_string();
                kube::config_map(
                    ObjectMeta {
                        name: "cluster-info",
                        namespace: "kube-public",
                        uid: &uid,
                        resource_version: &rv,
                        creation_timestamp: &created,
                        labels: BTreeMap::new(),
                        annotations: BTreeMap::new(),
                    },
                    &data,
                )
            })
            .collect();

        let kubelet_config = kube::config_map(
            ObjectMeta {
                name: "kubelet-config",
                namespace: "kube-system",
                uid: &random::uuid(),
                resource_version: "205",
                creation_timestamp: &created,
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
            },
            &BTreeMap::from([("kubelet".to_owned(), KUBELET_CONFIGURATION.to_owned())]),
        );

        // One counter for every object created at run time, as etcd's
        // revision is shared by all keys.
        let resource_versions = Arc::new(AtomicU64::new(2000));
        let nodes = Nodes::new(
            s.nodes,
            s.node_ready_on_register,
            Arc::clone(&resource_versions),
        );
        let approval = if s.plan.csr_never_approved {
            Approval::Never
        } else {
            Approval::After(s.csr_approval_delay)
        };
        let csrs = Csrs::new(s.cluster_ca, approval, resource_versions);

        ApiServer {
            bootstrap_token: s.bootstrap_token.to_owned(),
            cluster_info,
            served: AtomicUsize::new(0),
            errors: Countdown::new(s.plan.api_errors.clone()),
            slow: s.plan.api_slow,
            oversized: s.plan.api_oversized,
            kubelet_config,
            nodes,
            csrs,
            max_in_flight: s.max_in_flight,
            in_flight: AtomicUsize::new(0),
            stop: s.stop,
        }
    }

    fn cluster_info(&self) -> Response {
        if let Some(code) = self.errors.take() {
            return Response::json(code, kube::server_error(code));
        }
        // Counting only what was served keeps "first" meaning the first
        // document the client actually saw, even after injected errors.
        let n = self.served.fetch_add(1, Ordering::SeqCst);
        let body = &self.cluster_info[n.min(self.cluster_info.len() - 1)];
        if self.oversized {
            // Still a ConfigMap: the client must refuse it on size alone.
            let text = String::from_utf8_lossy(body);
            let pad = format!(r#""data":{{"x-lab-padding":"{}","#, "x".repeat(2 << 20));
            return Response::json(200, text.replacen(r#""data":{"#, &pad, 1).into_bytes());
        }
        Response::json(200, body.clone())
    }
}

/// Holds one in-flight slot for as long as a request is being answered.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ApiServer {
    /// kube-apiserver's union authenticator, x509 first: a trusted client
    /// certificate wins; otherwise the bearer token decides. A credential
    /// that is presented and rejected is a 401, with no fallback to
    /// anonymous.
    fn authenticate(&self, req: &Request) -> Result<User, Response> {
        let cert_user = req
            .client_cert
            .as_ref()
            .filter(|c| c.trusted)
            .and_then(|c| user_from_cert(&c.der));
        if let Some(user) = cert_user {
            return Ok(user);
        }
        match credential(req) {
            Credential::Bearer(t) if t == self.bootstrap_token => Ok(User::Bootstrap {
                name: format!("system:bootstrap:{}", &self.bootstrap_token[..6]),
            }),
            Credential::Bearer(_) | Credential::Other => {
                Err(Response::json(401, kube::unauthorized()))
            }
            // An untrusted certificate and nothing else.
            Credential::Anonymous if req.client_cert.is_some() => {
                Err(Response::json(401, kube::unauthorized()))
            }
            Credential::Anonymous => Ok(User::Anonymous),
        }
    }

    fn route(&self, req: &Request, user: &User) -> Response {
        let path = req.path();
        let get = req.method == "GET";
        let post = req.method == "POST";
        let not_allowed = || Response::json(405, kube::method_not_allowed());

        if path == CLUSTER_INFO_PATH {
            // kubeadm's RBAC lets anyone, anonymous included, read it.
            return if get {
                self.cluster_info()
            } else {
                not_allowed()
            };
        }
        if path == KUBELET_CONFIG_PATH {
            if !get {
                return not_allowed();
            }
            return match user {
                // kubeadm:kubelet-config: bootstrap tokens and nodes.
                User::Bootstrap { .. } | User::Node { .. } => {
                    Response::json(200, self.kubelet_config.clone())
                }
                User::Anonymous | User::Other { .. } => Response::json(
                    403,
                    kube::forbidden(
                        user.name(),
                        "get",
                        "configmaps",
                        "kubelet-config",
                        "kube-system",
                    ),
                ),
            };
        }
        if path == NODES_PATH {
            if post {
                if let Some(r) = json_only(req) {
                    return r;
                }
                return self.nodes.create(user, &req.body);
            }
            return match user {
                User::Node { .. } => not_allowed(),
                _ if get => {
                    Response::json(403, kube::forbidden(user.name(), "list", "nodes", "", ""))
                }
                _ => not_allowed(),
            };
        }
        if let Some(name) = one_segment(path, NODES_PATH) {
            return if get {
                self.nodes.get(user, name)
            } else {
                not_allowed()
            };
        }
        if path == csr::PATH {
            if get {
                return self.csrs.list(user);
            }
            if !post {
                return not_allowed();
            }
            if let Some(r) = json_only(req) {
                return r;
            }
            return self.csrs.create(user, &req.body);
        }
        if let Some(name) = one_segment(path, csr::PATH) {
            return if get {
                self.csrs.get(user, name)
            } else {
                not_allowed()
            };
        }
        match user {
            User::Anonymous => Response::json(403, kube::forbidden_path(user.name(), path)),
            _ => Response::json(404, kube::no_such_resource()),
        }
    }
}

/// `<prefix>/<name>` with a non-empty name and nothing after it.
fn one_segment<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)?
        .strip_prefix('/')
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// 415 unless the body is JSON (the lab decodes neither YAML nor protobuf).
fn json_only(req: &Request) -> Option<Response> {
    let ct = req.header("content-type").unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        None
    } else {
        Some(Response::json(415, kube::unsupported_media_type(ct)))
    }
}

impl Handler for ApiServer {
    fn handle(&self, req: &Request) -> Response {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _slot = InFlight(&self.in_flight);
        if self.max_in_flight.is_some_and(|max| now > max) {
            // kube-apiserver's max-in-flight filter answers before
            // authentication, in plain text.
            return Response::new(
                429,
                "text/plain; charset=utf-8",
                "Too many requests, please try again later.\n",
            )
            .header("Retry-After", "1")
            .header("X-Content-Type-Options", "nosniff");
        }
        if let Some(d) = self.slow {
            self.stop.sleep(d);
        }

        // Authentication comes before everything else.
        match self.authenticate(req) {
            Ok(user) => self.route(req, &user),
            Err(response) => response,
        }
    }
}

/// Picks the API server's certificate per handshake, so that
/// `DifferentCertAfterTrust` can swap it after the first one.
pub(crate) struct ServingCerts {
    real: Arc<CertifiedKey>,
    impostor: Option<Arc<CertifiedKey>>,
    handshakes: Mutex<u64>,
}

impl ServingCerts {
    pub fn new(real: Arc<CertifiedKey>, impostor: Option<Arc<CertifiedKey>>) -> ServingCerts {
        ServingCerts {
            real,
            impostor,
            handshakes: Mutex::new(0),
        }
    }
}

impl fmt::Debug for ServingCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServingCerts")
            .field("impostor", &self.impostor.is_some())
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ServingCerts {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut n = self
            .handshakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *n += 1;
        match &self.impostor {
            Some(impostor) if *n > 1 => Some(Arc::clone(impostor)),
            _ => Some(Arc::clone(&self.real)),
        }
    }
}
