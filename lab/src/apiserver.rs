//! The Kubernetes API server, as much of it as a join touches: the
//! anonymous `cluster-info` read (contract section 3) and the two reads made
//! with the bootstrap token afterwards, with kube-apiserver's authentication
//! order, RBAC answers and max-in-flight admission.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::faults::{Countdown, Plan, Signature};
use crate::https::{Credential, Handler, Response, Stop, credential};
use crate::kube::{self, ObjectMeta};
use crate::{Request, jws, random, timefmt};

pub(crate) const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
pub(crate) const KUBELET_CONFIG_PATH: &str =
    "/api/v1/namespaces/kube-system/configmaps/kubelet-config";
const NODES_PREFIX: &str = "/api/v1/nodes/";

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
    nodes: BTreeMap<String, Vec<u8>>,
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
            },
            &BTreeMap::from([("kubelet".to_owned(), KUBELET_CONFIGURATION.to_owned())]),
        );

        let nodes = s
            .nodes
            .iter()
            .enumerate()
            .map(|(i, (name, ready))| {
                let body = kube::node(
                    ObjectMeta {
                        name,
                        namespace: "",
                        uid: &random::uuid(),
                        resource_version: &(1000 + i).to_string(),
                        creation_timestamp: &created,
                        labels: BTreeMap::new(),
                    },
                    *ready,
                    &created,
                );
                (name.clone(), body)
            })
            .collect();

        ApiServer {
            bootstrap_token: s.bootstrap_token.to_owned(),
            cluster_info,
            served: AtomicUsize::new(0),
            errors: Countdown::new(s.plan.api_errors.clone()),
            slow: s.plan.api_slow,
            oversized: s.plan.api_oversized,
            kubelet_config,
            nodes,
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

enum User {
    Anonymous,
    Bootstrap,
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

        // Authentication comes before everything else, and a credential it
        // rejects is final: there is no fallback to anonymous.
        let user = match credential(req) {
            Credential::Anonymous => User::Anonymous,
            Credential::Bearer(t) if t == self.bootstrap_token => User::Bootstrap,
            Credential::Bearer(_) | Credential::Other => {
                return Response::json(401, kube::unauthorized());
            }
        };
        if req.method != "GET" {
            return Response::json(405, kube::method_not_allowed());
        }

        let path = req.path();
        if path == CLUSTER_INFO_PATH {
            // kubeadm's RBAC lets anyone, anonymous included, read it.
            return self.cluster_info();
        }
        if path == KUBELET_CONFIG_PATH {
            return match user {
                User::Anonymous => Response::json(
                    403,
                    kube::forbidden(
                        "system:anonymous",
                        "get",
                        "configmaps",
                        "kubelet-config",
                        "kube-system",
                    ),
                ),
                User::Bootstrap => Response::json(200, self.kubelet_config.clone()),
            };
        }
        if let Some(name) = path
            .strip_prefix(NODES_PREFIX)
            .filter(|n| !n.is_empty() && !n.contains('/'))
        {
            return match user {
                User::Anonymous => Response::json(
                    403,
                    kube::forbidden("system:anonymous", "get", "nodes", name, ""),
                ),
                User::Bootstrap => match self.nodes.get(name) {
                    Some(body) => Response::json(200, body.clone()),
                    None => Response::json(404, kube::not_found("nodes", name)),
                },
            };
        }
        match user {
            User::Anonymous => Response::json(403, kube::forbidden_path("system:anonymous", path)),
            User::Bootstrap => Response::json(404, kube::no_such_resource()),
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
