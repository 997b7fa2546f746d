//! SIMULATED agents: threads that make the same five requests as one
//! `attach-node join` (the control plane, cluster-info unverified, then
//! verified, kubelet-config, the Node), under kubeadm's retry policy instead
//! of attach-node's. They check what a join checks on the wire (the JWS,
//! the CA pin, the second fetch against the first) but write no files:
//! they stand in for kubeadm's discovery, which cannot run here.
//!
//! kubeadm's policy, from its source (cmd/kubeadm/app/discovery/token,
//! `getClusterInfo`): each cluster-info fetch is a
//! `wait.PollUntilContextTimeout(interval, timeout, immediate=true)` with
//! `constants.DiscoveryRetryInterval` = 5 s and the discovery timeout of
//! 5 min; the poll is not sliding, so a try starts every 5 s whatever the
//! previous one took. Under it, client-go's REST client (maxRetries 10)
//! retries a 429 or 5xx that carries `Retry-After` after that many seconds,
//! and a GET whose connection was reset after 1 s, before kubeadm's poll
//! sees an error: [`Policy::KubeadmClientGo`]. [`Policy::Kubeadm`] is the
//! poll alone: every failure waits for the next 5 s tick.

use std::io::{self, BufRead as _, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use sha2::{Digest as _, Sha256};

use attach_node_lab::jws;
use attach_node_lab::tls_client::AcceptAnyCert;

/// kubeadm's `constants.DiscoveryRetryInterval`.
pub const KUBEADM_DISCOVERY_RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// kubeadm's `constants.DiscoveryTimeout`, the bound on each poll.
const KUBEADM_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// client-go's default `maxRetries` for a request.
const CLIENT_GO_MAX_RETRIES: u32 = 10;
/// client-go's wait before retrying a GET whose connection broke.
const CLIENT_GO_RESET_WAIT: Duration = Duration::from_secs(1);
/// Connect, read and write bound of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_CAP: u64 = 1 << 20;

const CONTROL_PLANE_PATH: &str = "/v1/node-attach";
const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
const KUBELET_CONFIG_PATH: &str = "/api/v1/namespaces/kube-system/configmaps/kubelet-config";

/// How a simulated agent retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// kubeadm's discovery poll alone: a failed request is tried again at
    /// the next tick of `interval` (5 s), counted from the previous try's
    /// start.
    Kubeadm { interval: Duration },
    /// The same poll over client-go's own retries: up to 10 times, a 429
    /// or 5xx with `Retry-After` is retried after it and a broken
    /// connection after 1 s; only then does the poll see the failure.
    KubeadmClientGo { interval: Duration },
}

impl Policy {
    /// `kubeadm` or `kubeadm-client-go`, as the command line spells them.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Kubeadm { .. } => "kubeadm",
            Policy::KubeadmClientGo { .. } => "kubeadm-client-go",
        }
    }

    pub fn parse(name: &str, interval: Duration) -> Option<Policy> {
        match name {
            "kubeadm" => Some(Policy::Kubeadm { interval }),
            "kubeadm-client-go" => Some(Policy::KubeadmClientGo { interval }),
            _ => None,
        }
    }

    fn interval(&self) -> Duration {
        match self {
            Policy::Kubeadm { interval } | Policy::KubeadmClientGo { interval } => *interval,
        }
    }
}

/// What the agents need to start: where the control plane is, its CA, the
/// openapi token (never printed).
pub struct Start {
    pub control_plane: String,
    pub control_plane_ca_pem: String,
    pub openapi_token: String,
}

/// One agent's outcome. `elapsed` counts from the release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub index: usize,
    pub ok: bool,
    pub elapsed: Duration,
    /// Requests sent (connections that carried a request).
    pub requests: u64,
    pub too_many_requests: u64,
    /// Connections that failed before a complete answer.
    pub transport_errors: u64,
    /// Why it failed; empty on success.
    pub error: String,
}

impl Outcome {
    /// One line: `ok|fail INDEX MICROS REQUESTS 429S TRANSPORT [ERROR]`.
    pub fn to_line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {}",
            if self.ok { "ok" } else { "fail" },
            self.index,
            self.elapsed.as_micros(),
            self.requests,
            self.too_many_requests,
            self.transport_errors,
            self.error.replace('\n', " ")
        )
        .trim_end()
        .to_owned()
    }

    pub fn from_line(line: &str) -> Option<Outcome> {
        let mut it = line.splitn(7, ' ');
        let ok = match it.next()? {
            "ok" => true,
            "fail" => false,
            _ => return None,
        };
        let index = it.next()?.parse().ok()?;
        let elapsed = Duration::from_micros(it.next()?.parse().ok()?);
        let requests = it.next()?.parse().ok()?;
        let too_many_requests = it.next()?.parse().ok()?;
        let transport_errors = it.next()?.parse().ok()?;
        let error = it.next().unwrap_or("").to_owned();
        Some(Outcome {
            index,
            ok,
            elapsed,
            requests,
            too_many_requests,
            transport_errors,
            error,
        })
    }
}

/// The body of the `sim-agents` child process: starts `agents` threads
/// held at a barrier, prints `ready`, waits for a line on stdin, releases
/// them all at once, and when all are done prints one [`Outcome`] line per
/// agent.
pub fn serve_child(start: &Start, agents: usize, policy: Policy) -> io::Result<()> {
    let outcomes = run_agents(start, agents, policy, || {
        let mut out = io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        Ok(())
    })?;
    let mut out = io::stdout().lock();
    for o in outcomes {
        writeln!(out, "{}", o.to_line())?;
    }
    out.flush()
}

/// Runs `agents` simulated agents in this process: each on its own thread,
/// all held at a barrier until `release` returns. Returns every outcome,
/// in index order.
pub fn run_agents(
    start: &Start,
    agents: usize,
    policy: Policy,
    release: impl FnOnce() -> io::Result<()>,
) -> io::Result<Vec<Outcome>> {
    let shared = Arc::new(Shared::new(start)?);
    let barrier = Arc::new(Barrier::new(agents + 1));
    let t0: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::with_capacity(agents);
    for index in 0..agents {
        let (shared, barrier, t0, tx) = (
            Arc::clone(&shared),
            Arc::clone(&barrier),
            Arc::clone(&t0),
            tx.clone(),
        );
        let spawned = thread::Builder::new()
            .name(format!("sim-agent-{index}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                barrier.wait();
                let t0 = *t0.get().expect("set before the release");
                let mut agent = Agent {
                    shared: &shared,
                    policy,
                    node: format!("fleet-sim-{index:04}"),
                    counters: Counters::default(),
                };
                let result = agent.join();
                let Counters {
                    requests,
                    too_many_requests,
                    transport_errors,
                } = agent.counters;
                let _ = tx.send(Outcome {
                    index,
                    ok: result.is_ok(),
                    elapsed: t0.elapsed(),
                    requests,
                    too_many_requests,
                    transport_errors,
                    error: result.err().unwrap_or_default(),
                });
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                // The barrier can never fill now: threads already waiting
                // would hang, so give up the whole process.
                eprintln!("attach-node-fleet: cannot start agent thread {index}: {e}");
                std::process::exit(1);
            }
        }
    }
    drop(tx);
    release()?;
    t0.set(Instant::now()).expect("set once");
    barrier.wait();
    let mut outcomes: Vec<Outcome> = rx.iter().collect();
    for h in handles {
        let _ = h.join();
    }
    outcomes.sort_by_key(|o| o.index);
    Ok(outcomes)
}

/// What all agents share: TLS settings and the start parameters.
struct Shared {
    control_plane: SocketAddr,
    openapi_token: String,
    control_plane_tls: Arc<ClientConfig>,
    any_cert_tls: Arc<ClientConfig>,
}

impl Shared {
    fn new(start: &Start) -> io::Result<Shared> {
        let provider = Arc::new(ring::default_provider());
        let roots = roots_from_pem(start.control_plane_ca_pem.as_bytes())?;
        let control_plane_tls = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let any_cert_tls = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth();
        Ok(Shared {
            control_plane: loopback_addr(&start.control_plane)?,
            openapi_token: start.openapi_token.clone(),
            control_plane_tls: Arc::new(control_plane_tls),
            any_cert_tls: Arc::new(any_cert_tls),
        })
    }
}

fn roots_from_pem(pem: &[u8]) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let der = CertificateDer::from_pem_slice(pem)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("CA: {e}")))?;
    roots.add(der).map_err(io::Error::other)?;
    Ok(roots)
}

/// `https://127.0.0.1:PORT[/...]` to its address; anything not on the
/// loopback is refused, so the fleet can only ever talk to the lab.
pub(crate) fn loopback_addr(url: &str) -> io::Result<SocketAddr> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an https:// loopback URL: {url}"),
        )
    };
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let host_port = rest.split('/').next().unwrap_or("");
    let addr: SocketAddr = host_port.parse().map_err(|_| bad())?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(bad())
    }
}

#[derive(Default)]
struct Counters {
    requests: u64,
    too_many_requests: u64,
    transport_errors: u64,
}

/// Why one try failed.
enum Failure {
    /// Worth another try: a 429 or 5xx (with the server's `Retry-After`),
    /// or a connection that broke (`transport`).
    Retry {
        why: String,
        retry_after: Option<Duration>,
        transport: bool,
    },
    /// Not worth another: wrong answer, failed verification.
    Fatal(String),
}

struct Reply {
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

struct Agent<'a> {
    shared: &'a Shared,
    policy: Policy,
    node: String,
    counters: Counters,
}

impl Agent<'_> {
    /// The five requests of a join, each under the policy.
    fn join(&mut self) -> Result<(), String> {
        let shared = self.shared;
        let info: serde_json::Value = self.stage("control plane", |a| {
            let r = a.get(
                &shared.control_plane_tls,
                shared.control_plane,
                CONTROL_PLANE_PATH,
                Some(&shared.openapi_token),
            )?;
            expect_json(r, 200)
        })?;
        let endpoint = info["apiServerEndpoints"][0]
            .as_str()
            .ok_or("ClusterInfo has no apiServerEndpoints")?;
        let api = loopback_addr(endpoint).map_err(|e| e.to_string())?;
        let token = info["bootstrapToken"]
            .as_str()
            .ok_or("ClusterInfo has no bootstrapToken")?
            .to_owned();
        let (token_id, token_secret) = token
            .split_once('.')
            .ok_or("the bootstrap token has no '.'")?;
        let pins: Vec<String> = info["caCertHashes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();

        // cluster-info without verification, then the JWS and the pin.
        let any = Arc::clone(&shared.any_cert_tls);
        let first: serde_json::Value = self.stage("cluster-info", |a| {
            expect_json(a.get(&any, api, CLUSTER_INFO_PATH, None)?, 200)
        })?;
        let kubeconfig = first["data"]["kubeconfig"]
            .as_str()
            .ok_or("cluster-info has no kubeconfig")?
            .to_owned();
        let signature = first["data"][format!("jws-kubeconfig-{token_id}")]
            .as_str()
            .ok_or("cluster-info has no signature for the token")?;
        if jws::sign_detached(kubeconfig.as_bytes(), token_id, token_secret) != signature {
            return Err("the cluster-info signature does not verify".into());
        }
        let ca_pem = kubeconfig_ca(&kubeconfig).ok_or("the kubeconfig has no CA")?;
        let ca_der = CertificateDer::from_pem_slice(&ca_pem).map_err(|e| format!("CA: {e}"))?;
        if !pins.is_empty() && !pins.contains(&spki_pin(&ca_der)?) {
            return Err("the cluster CA does not match the pin".into());
        }
        let cluster_tls = Arc::new(
            ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots_from_pem(&ca_pem).map_err(|e| e.to_string())?)
                .with_no_client_auth(),
        );

        // The same, verified by that CA, and unchanged.
        let second: serde_json::Value = self.stage("verified cluster-info", |a| {
            expect_json(a.get(&cluster_tls, api, CLUSTER_INFO_PATH, None)?, 200)
        })?;
        if second["data"]["kubeconfig"].as_str() != Some(kubeconfig.as_str()) {
            return Err("cluster-info changed between the fetches".into());
        }

        // After trust: the bootstrap token reads what a join reads.
        self.stage("kubelet-config", |a| {
            let r = a.get(&cluster_tls, api, KUBELET_CONFIG_PATH, Some(&token))?;
            expect_json(r, 200).map(drop)
        })?;
        let node_path = format!("/api/v1/nodes/{}", self.node);
        self.stage("node", |a| {
            let r = a.get(&cluster_tls, api, &node_path, Some(&token))?;
            match r.status {
                200 | 404 => Ok(()),
                s => Err(Failure::Fatal(format!("the Node read answered {s}"))),
            }
        })?;
        Ok(())
    }

    /// Runs one request under the policy until it succeeds, fails for good,
    /// or kubeadm's discovery timeout passes. Bounded: the poll's tries are
    /// at least `interval` apart within a finite timeout, and client-go's
    /// inner retries are at most [`CLIENT_GO_MAX_RETRIES`] per try.
    fn stage<T>(
        &mut self,
        what: &str,
        mut attempt: impl FnMut(&mut Self) -> Result<T, Failure>,
    ) -> Result<T, String> {
        let interval = self.policy.interval();
        let deadline = Instant::now() + KUBEADM_DISCOVERY_TIMEOUT;
        loop {
            let started = Instant::now();
            let result = match self.policy {
                Policy::Kubeadm { .. } => attempt(self),
                Policy::KubeadmClientGo { .. } => {
                    let mut retries = 0;
                    loop {
                        match attempt(self) {
                            Err(Failure::Retry {
                                retry_after,
                                transport,
                                ..
                            }) if retries < CLIENT_GO_MAX_RETRIES
                                && (retry_after.is_some() || transport) =>
                            {
                                retries += 1;
                                thread::sleep(retry_after.unwrap_or(CLIENT_GO_RESET_WAIT));
                            }
                            other => break other,
                        }
                    }
                }
            };
            match result {
                Ok(t) => return Ok(t),
                Err(Failure::Fatal(why)) => return Err(format!("{what}: {why}")),
                Err(Failure::Retry { why, .. }) => {
                    let next = started + interval;
                    if next >= deadline {
                        return Err(format!("{what}: timed out, last: {why}"));
                    }
                    thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            }
        }
    }

    /// One GET on its own connection (as the lab closes each one).
    fn get(
        &mut self,
        tls: &Arc<ClientConfig>,
        addr: SocketAddr,
        path: &str,
        bearer: Option<&str>,
    ) -> Result<Reply, Failure> {
        self.counters.requests += 1;
        let reply = exchange(tls, addr, path, bearer).map_err(|e| {
            self.counters.transport_errors += 1;
            Failure::Retry {
                why: format!("{addr}: {e}"),
                retry_after: None,
                transport: true,
            }
        })?;
        match reply.status {
            429 | 500..=599 => {
                if reply.status == 429 {
                    self.counters.too_many_requests += 1;
                }
                Err(Failure::Retry {
                    why: format!("{addr} answered {}", reply.status),
                    retry_after: reply.retry_after,
                    transport: false,
                })
            }
            _ => Ok(reply),
        }
    }
}

fn expect_json(r: Reply, status: u16) -> Result<serde_json::Value, Failure> {
    if r.status != status {
        return Err(Failure::Fatal(format!("answered {}", r.status)));
    }
    serde_json::from_slice(&r.body).map_err(|e| Failure::Fatal(format!("not JSON: {e}")))
}

/// The PEM in the kubeconfig's `certificate-authority-data` (the lab's
/// kubeconfig has exactly one cluster).
fn kubeconfig_ca(kubeconfig: &str) -> Option<Vec<u8>> {
    let b64 = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))?;
    STANDARD.decode(b64.trim()).ok()
}

/// kubeadm's pin: `sha256:` and the hex SHA-256 of the SubjectPublicKeyInfo.
fn spki_pin(der: &CertificateDer<'_>) -> Result<String, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("CA certificate: {e}"))?;
    let sum = Sha256::digest(cert.tbs_certificate.subject_pki.raw);
    Ok(format!(
        "sha256:{}",
        sum.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// GET `path` over a fresh TLS connection; `Connection: close`, so the
/// answer ends where the stream does.
fn exchange(
    tls: &Arc<ClientConfig>,
    addr: SocketAddr,
    path: &str,
    bearer: Option<&str>,
) -> io::Result<Reply> {
    let sock = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    sock.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    sock.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    sock.set_nodelay(true)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = ClientConnection::new(Arc::clone(tls), name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, sock);
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: attach-node-fleet-sim\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if let Some(token) = bearer {
        head.push_str("Authorization: Bearer ");
        head.push_str(token);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    match (&mut stream).take(BODY_CAP).read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without close_notify after a full answer.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> io::Result<Reply> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the answer ended inside its head",
            ));
        }
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
    };
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let retry_after = header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = raw[head_len..].to_vec();
    if let Some(len) = header("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        if body.len() < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the answer ended inside its body",
            ));
        }
        body.truncate(len);
    }
    Ok(Reply {
        status: resp.code.unwrap_or(0),
        retry_after,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_lines_round_trip() {
        let o = Outcome {
            index: 7,
            ok: false,
            elapsed: Duration::from_micros(1234),
            requests: 9,
            too_many_requests: 3,
            transport_errors: 1,
            error: "node: answered 500".into(),
        };
        assert_eq!(Outcome::from_line(&o.to_line()), Some(o.clone()));
        let ok = Outcome {
            ok: true,
            error: String::new(),
            ..o
        };
        assert_eq!(Outcome::from_line(&ok.to_line()), Some(ok));
        assert_eq!(Outcome::from_line("ready"), None);
    }

    #[test]
    fn only_loopback_urls() {
        assert!(loopback_addr("https://127.0.0.1:6443").is_ok());
        assert!(loopback_addr("https://127.0.0.1:6443/x").is_ok());
        assert!(loopback_addr("https://10.0.0.1:6443").is_err());
        assert!(loopback_addr("http://127.0.0.1:6443").is_err());
        assert!(loopback_addr("https://example.com:6443").is_err());
    }

    #[test]
    fn replies_parse() {
        let r = parse_reply(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\nokEXTRA",
        )
        .unwrap();
        assert_eq!(r.status, 429);
        assert_eq!(r.retry_after, Some(Duration::from_secs(1)));
        assert_eq!(r.body, b"ok");
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").is_err());
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn policies_by_name() {
        let i = KUBEADM_DISCOVERY_RETRY_INTERVAL;
        for p in [
            Policy::Kubeadm { interval: i },
            Policy::KubeadmClientGo { interval: i },
        ] {
            assert_eq!(Policy::parse(p.name(), i), Some(p));
        }
        assert_eq!(Policy::parse("attach-node", i), None);
    }
}
