//! `standin-kubelet`: A TEST STAND-IN FOR THE KUBELET, NOT A KUBELET.
//!
//! attach-node's tests cannot install a real kubelet, so this plays the
//! kubelet's part on the wire during a join: the TLS bootstrap (CSR, wait,
//! certificate files, kubelet.conf), the healthz endpoint kubeadm polls,
//! and the Node registration with the client certificate. It runs no pods
//! and never talks to a container runtime. See `--help` and
//! `lab/README.md`.

mod bootstrap;
mod flags;
mod http;
mod keys;
mod kubeconfig;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use bootstrap::{Bootstrap, NodeCredentials};
use flags::{Flags, Parsed};
use http::{Auth, Client};

pub fn log(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "standin-kubelet: {line}");
}

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect::<Result<_, _>>()
    {
        Ok(a) => a,
        Err(a) => {
            log(&format!(
                "error: argument is not UTF-8: {}",
                a.to_string_lossy()
            ));
            return ExitCode::from(2);
        }
    };
    let flags = match flags::parse(&args, &|k| std::env::var(k).ok()) {
        Ok(Parsed::Help) => {
            print!("{}", flags::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(f)) => f,
        Err(e) => {
            log(&format!("error: {e}\nTry 'standin-kubelet --help'."));
            return ExitCode::from(2);
        }
    };
    match run(&flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(&format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// What `--config` says that the stand-in uses.
struct KubeletConfig {
    healthz_bind_address: Option<String>,
    healthz_port: Option<u16>,
}

/// The kubelet refuses to start without its config file, or with one that
/// is not a KubeletConfiguration.
fn read_config(path: &Path) -> Result<KubeletConfig, String> {
    let fail = |e: String| {
        format!(
            "failed to load kubelet config file, path: {}, error: {e}",
            path.display()
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let v: Value = serde_saphyr::from_str(&text).map_err(|e| fail(e.to_string()))?;
    if v["kind"] != "KubeletConfiguration" || v["apiVersion"] != "kubelet.config.k8s.io/v1beta1" {
        return Err(fail(
            "not a kubelet.config.k8s.io/v1beta1 KubeletConfiguration".into(),
        ));
    }
    Ok(KubeletConfig {
        healthz_bind_address: v["healthzBindAddress"].as_str().map(str::to_owned),
        healthz_port: v["healthzPort"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok()),
    })
}

/// nodeutil.GetHostname: the override, else the hostname, trimmed and
/// lower-cased.
fn node_name(hostname_override: Option<&str>) -> Result<String, String> {
    let name = match hostname_override.map(str::trim).filter(|s| !s.is_empty()) {
        Some(n) => n.to_owned(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_err(|e| format!("cannot read the hostname: {e}"))?,
    };
    let name = name.trim().to_lowercase();
    if name.is_empty() {
        return Err("empty hostname".into());
    }
    Ok(name)
}

fn run(f: &Flags) -> Result<(), String> {
    log("THIS IS A TEST STAND-IN, NOT A KUBELET: TLS bootstrap and Node registration only");
    for note in &f.noted {
        log(note);
    }
    let config = match &f.config {
        Some(p) => Some(read_config(p)?),
        None => None,
    };
    let kubeconfig = f
        .kubeconfig
        .as_deref()
        .ok_or("--kubeconfig is required (the stand-in does not run standalone)")?;
    let node = node_name(f.hostname_override.as_deref())?;
    log(&format!("node name {node:?}"));

    let creds = bootstrap::load_client_cert(&Bootstrap {
        bootstrap_kubeconfig: f.bootstrap_kubeconfig.as_deref(),
        kubeconfig,
        cert_dir: &f.cert_dir,
        node_name: &node,
        csr_timeout: f.csr_timeout,
    })?;

    let port = f
        .healthz_port
        .or(config.as_ref().and_then(|c| c.healthz_port))
        .unwrap_or(10248);
    let address = f
        .healthz_bind_address
        .clone()
        .or(config.as_ref().and_then(|c| c.healthz_bind_address.clone()))
        .unwrap_or_else(|| "127.0.0.1".into());
    if port != 0 {
        serve_healthz(&address, port);
    }

    if f.never_register {
        log("not registering a Node (--standin-never-register / STANDIN_KUBELET_NEVER_REGISTER)");
    } else if !f.register_node {
        log("not registering a Node (--register-node=false)");
    } else {
        register(&creds, &node, f)?;
    }

    log(&format!(
        "running until SIGTERM (or {}s, --standin-lifetime)",
        f.lifetime.as_secs()
    ));
    let until = Instant::now() + f.lifetime;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        thread::sleep(left.min(Duration::from_secs(60)));
    }
    log("lifetime over; exiting");
    Ok(())
}

/// `GET /healthz` → `ok`, as the kubelet's healthz server answers; any
/// other path 404. On a thread of its own for the rest of the process.
fn serve_healthz(address: &str, port: u16) {
    let listener = match TcpListener::bind((address, port)) {
        Ok(l) => l,
        Err(e) => {
            log(&format!(
                "healthz: cannot listen on {address}:{port}: {e}; continuing without it"
            ));
            return;
        }
    };
    log(&format!("healthz: serving http://{address}:{port}/healthz"));
    let spawned = thread::Builder::new()
        .name("healthz".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head);
                let target = line.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = if target == "/healthz" || target.starts_with("/healthz?") {
                    ("200 OK", "ok")
                } else {
                    ("404 Not Found", "404 page not found\n")
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
    if let Err(e) = spawned {
        log(&format!("healthz: cannot start: {e}"));
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The Node the kubelet registers (initialNode), with its labels and taints.
fn initial_node(node: &str, f: &Flags) -> Value {
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", node),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", go_arch()),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", go_arch()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in &f.node_labels {
        labels.insert(k.clone(), v.clone());
    }
    let mut spec = serde_json::Map::new();
    if !f.taints.is_empty() {
        spec.insert("taints".into(), json!(f.taints));
    }
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": node,
            "labels": labels,
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": spec,
        "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}},
    })
}

/// registerWithAPIServer: create the Node, or accept the one that exists;
/// transient failures are retried until --standin-register-timeout, a
/// refusal is final (a real kubelet would keep retrying and logging).
fn register(creds: &NodeCredentials, node: &str, f: &Flags) -> Result<(), String> {
    let client = Client::new(
        &creds.server,
        &creds.ca_pem,
        Auth::ClientCert {
            chain: creds.credential.chain.clone(),
            key: creds.credential.key.clone_key(),
        },
    )?;
    let body = serde_json::to_vec(&initial_node(node, f)).expect("JSON serialises");
    let deadline = Instant::now() + f.register_timeout;
    let node_path = format!("/api/v1/nodes/{node}");
    loop {
        let last = match client.request("POST", "/api/v1/nodes", Some(&body)) {
            Ok(r) if r.status == 201 => {
                log(&format!("registered Node {node}"));
                break;
            }
            Ok(r) if r.status == 409 => match client.request("GET", &node_path, None) {
                Ok(g) if g.status == 200 => {
                    log(&format!("Node {node} already exists; using it"));
                    break;
                }
                Ok(g) => format!("GET Node {node}: HTTP {}: {}", g.status, g.message()),
                Err(e) => format!("GET Node {node}: {e}"),
            },
            Ok(r) if r.status == 429 || r.status >= 500 => {
                format!("register Node {node}: HTTP {}: {}", r.status, r.message())
            }
            Ok(r) => {
                return Err(format!(
                    "unable to register Node {node} with the API server: HTTP {}: {}",
                    r.status,
                    r.message()
                ));
            }
            Err(e) => format!("register Node {node}: {e}"),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "gave up registering Node {node} after --standin-register-timeout: {last}"
            ));
        }
        log(&format!("{last}; retrying"));
        thread::sleep(
            Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now())),
        );
    }
    // What the kubelet's status loop does next: read its own Node.
    match client.request("GET", &node_path, None) {
        Ok(r) if r.status == 200 => {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let ready = v["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .and_then(|c| c["status"].as_str())
                .unwrap_or("Unknown")
                .to_owned();
            log(&format!("Node {node}: Ready={ready}"));
        }
        Ok(r) => log(&format!(
            "GET Node {node}: HTTP {}: {}",
            r.status,
            r.message()
        )),
        Err(e) => log(&format!("GET Node {node}: {e}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        assert_eq!(node_name(Some(" Worker-1\n")).unwrap(), "worker-1");
        assert!(!node_name(None).unwrap().is_empty());
    }

    #[test]
    fn the_initial_node_has_kubelet_labels_then_node_labels() {
        let args: Vec<String> = [
            "--node-labels=example.com/pool=gpu,kubernetes.io/os=plan9",
            "--register-with-taints=dedicated=gpu:NoSchedule",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let Ok(Parsed::Run(f)) = flags::parse(&args, &|_| None) else {
            panic!("parses")
        };
        let n = initial_node("w", &f);
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "w");
        assert_eq!(n["metadata"]["labels"]["example.com/pool"], "gpu");
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/os"], "plan9");
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
        );
    }
}
