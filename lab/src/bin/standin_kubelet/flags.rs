//! The kubelet's command line, as far as the stand-in needs it: pflag's
//! `--name=value` / `--name value` forms, booleans as `--name` or
//! `--name=true|false`, unknown flags noted on stderr and otherwise ignored.

use std::path::PathBuf;
use std::time::Duration;

use attach_node_lab::{Taint, is_kubelet_label, is_kubernetes_label, unknown_node_labels_message};

pub const USAGE: &str = "\
standin-kubelet: A TEST STAND-IN FOR THE KUBELET. IT IS NOT A KUBELET.

It runs no pods and talks to no container runtime. It exists so that
attach-node's tests can boot a host whose /usr/bin/kubelet does, on the wire,
what a kubelet does when it joins a cluster the kubeadm way:

  1. if --kubeconfig exists and its client certificate is usable, use it;
     else, if CERT_DIR/kubelet-client-current.pem is usable, write
     --kubeconfig for it; else TLS bootstrap with --bootstrap-kubeconfig:
     new ECDSA P-256 key, a CertificateSigningRequest node-csr-<digest>
     (CN=system:node:<node>, O=system:nodes, signer
     kubernetes.io/kube-apiserver-client-kubelet, usages digital signature
     and client auth), poll it until it is signed (bounded), write
     CERT_DIR/kubelet-client-<time>.pem (certificate + key, 0600) and the
     symlink kubelet-client-current.pem, then --kubeconfig (0600) the way
     the kubelet writes it;
  2. serve http://HEALTHZ_ADDRESS:HEALTHZ_PORT/healthz;
  3. register its Node (POST /api/v1/nodes with the client certificate,
     labels from --node-labels, taints from --register-with-taints);
  4. stay running until SIGTERM (or --standin-lifetime).

Usage: standin-kubelet [KUBELET FLAGS] [STAND-IN FLAGS]

Kubelet flags it acts on:
  --bootstrap-kubeconfig=FILE   kubeconfig with the bootstrap token
  --kubeconfig=FILE             where the node's kubeconfig is (or goes)
  --config=FILE                 KubeletConfiguration; must exist and parse
                                (healthzBindAddress and healthzPort are used)
  --cert-dir=DIR                [/var/lib/kubelet/pki]
  --hostname-override=NAME      node name (default: the hostname, lowercased)
  --node-labels=K=V,...         labels to register with
  --register-with-taints=K=V:EFFECT,...
                                taints to register with
  --register-node=BOOL          [true] false: do not register a Node
  --healthz-port=PORT           0 disables [config, else 10248]
  --healthz-bind-address=IP     [config, else 127.0.0.1]
  --container-runtime-endpoint, --pod-infra-container-image, --node-ip,
  --v: accepted and logged, no effect. Any other flag: ignored, with a note.

Stand-in flags (and environment variables):
  --standin-never-register      stop after writing --kubeconfig: no Node is
    (STANDIN_KUBELET_NEVER_REGISTER=1)  registered, the process stays up
  --standin-csr-timeout=SECONDS how long to wait for the CSR's certificate
    (STANDIN_KUBELET_CSR_TIMEOUT)       [3600, the kubelet's own limit]
  --standin-register-timeout=SECONDS  how long to retry registering [60]
    (STANDIN_KUBELET_REGISTER_TIMEOUT)
  --standin-lifetime=SECONDS    exit 0 this long after the last step
    (STANDIN_KUBELET_LIFETIME)          [86400]
  -h, --help                    this text

Every stage logs one line to stderr. Exit status: 0 after --standin-lifetime,
1 on failure (a message says which stage), 2 on a usage error.
";

#[derive(Debug)]
pub struct Flags {
    pub bootstrap_kubeconfig: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub cert_dir: PathBuf,
    pub hostname_override: Option<String>,
    /// In the order given; a later key wins.
    pub node_labels: Vec<(String, String)>,
    pub taints: Vec<Taint>,
    pub register_node: bool,
    pub healthz_port: Option<u16>,
    pub healthz_bind_address: Option<String>,
    pub never_register: bool,
    pub csr_timeout: Duration,
    pub register_timeout: Duration,
    pub lifetime: Duration,
    /// Flags accepted without effect, and unknown ones, for the log.
    pub noted: Vec<String>,
}

pub enum Parsed {
    Help,
    Run(Box<Flags>),
}

/// Flags a kubeadm-managed kubelet gets that the stand-in takes but does
/// not act on.
const NO_EFFECT: [&str; 5] = [
    "container-runtime-endpoint",
    "pod-infra-container-image",
    "node-ip",
    "v",
    "cgroup-driver",
];

const BOOLEANS: [&str; 3] = ["register-node", "standin-never-register", "help"];

fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "invalid argument {v:?} for \"--{name}\" flag: not a boolean"
        )),
    }
}

fn parse_seconds(name: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("--{name}: not a number of seconds: {v:?}"))
}

/// `k1=v1,k2=v2` (cliflag.MapStringString).
pub fn parse_labels(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, val) = item.split_once('=').ok_or_else(|| {
            format!("--node-labels: malformed pair, expect string=string: {item:?}")
        })?;
        out.push((k.trim().to_owned(), val.trim().to_owned()));
    }
    Ok(out)
}

/// `key[=value]:effect,...` (pkg/util/taints).
pub fn parse_taints(v: &str) -> Result<Vec<Taint>, String> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (kv, effect) = item.rsplit_once(':').ok_or_else(|| {
            format!("--register-with-taints: invalid taint spec {item:?}: no effect")
        })?;
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            return Err(format!(
                "--register-with-taints: invalid taint effect {effect:?}, unsupported taint effect"
            ));
        }
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        if key.is_empty() {
            return Err(format!(
                "--register-with-taints: invalid taint spec {item:?}: no key"
            ));
        }
        out.push(Taint {
            key: key.to_owned(),
            value: value.to_owned(),
            effect: effect.to_owned(),
        });
    }
    Ok(out)
}

/// Parses `args` (without argv\[0]), then applies `env` for stand-in
/// settings the command line left alone.
pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, String> {
    let mut f = Flags {
        bootstrap_kubeconfig: None,
        kubeconfig: None,
        config: None,
        cert_dir: PathBuf::from("/var/lib/kubelet/pki"),
        hostname_override: None,
        node_labels: Vec::new(),
        taints: Vec::new(),
        register_node: true,
        healthz_port: None,
        healthz_bind_address: None,
        never_register: false,
        csr_timeout: Duration::from_secs(3600),
        register_timeout: Duration::from_secs(60),
        lifetime: Duration::from_secs(86_400),
        noted: Vec::new(),
    };
    let (mut csr_timeout, mut register_timeout, mut lifetime, mut never) = (None, None, None, None);

    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "-h" {
            return Ok(Parsed::Help);
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!(
                "unexpected argument {arg:?} (the kubelet takes no positional arguments)"
            ));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let is_bool = BOOLEANS.contains(&name);
        // A value: inline, or the next argument (booleans take none).
        let mut value = |what: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            if is_bool {
                return Ok("true".into());
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| format!("flag needs an argument: --{what}"))?;
            i += 1;
            Ok(v)
        };
        match name {
            "help" => return Ok(Parsed::Help),
            "bootstrap-kubeconfig" => f.bootstrap_kubeconfig = Some(value(name)?.into()),
            "kubeconfig" => f.kubeconfig = Some(value(name)?.into()),
            "config" => f.config = Some(value(name)?.into()),
            "cert-dir" => f.cert_dir = value(name)?.into(),
            "hostname-override" => f.hostname_override = Some(value(name)?),
            "node-labels" => f.node_labels.extend(parse_labels(&value(name)?)?),
            "register-with-taints" => f.taints.extend(parse_taints(&value(name)?)?),
            "register-node" => f.register_node = parse_bool(name, &value(name)?)?,
            "healthz-port" => {
                let v = value(name)?;
                f.healthz_port = Some(
                    v.parse()
                        .map_err(|_| format!("--healthz-port: not a port: {v:?}"))?,
                );
            }
            "healthz-bind-address" => f.healthz_bind_address = Some(value(name)?),
            "standin-never-register" => never = Some(parse_bool(name, &value(name)?)?),
            "standin-csr-timeout" => csr_timeout = Some(parse_seconds(name, &value(name)?)?),
            "standin-register-timeout" => {
                register_timeout = Some(parse_seconds(name, &value(name)?)?);
            }
            "standin-lifetime" => lifetime = Some(parse_seconds(name, &value(name)?)?),
            n if NO_EFFECT.contains(&n) => {
                let v = value(name)?;
                f.noted
                    .push(format!("--{n}={v} accepted, no effect in the stand-in"));
            }
            _ => {
                // Unknown: its value is inline, or the next argument unless
                // that is a flag itself (the kubelet has no positional
                // arguments).
                let shown = match inline {
                    Some(v) => format!("--{name}={v}"),
                    None => match args.get(i) {
                        Some(next) if !next.starts_with('-') => {
                            i += 1;
                            format!("--{name} {next}")
                        }
                        _ => format!("--{name}"),
                    },
                };
                f.noted
                    .push(format!("{shown}: unknown to the stand-in, ignored"));
            }
        }
    }

    let env_seconds = |var: &str| -> Result<Option<Duration>, String> {
        env(var)
            .filter(|v| !v.is_empty())
            .map(|v| parse_seconds(var, &v))
            .transpose()
    };
    if let Some(d) = csr_timeout.or(env_seconds("STANDIN_KUBELET_CSR_TIMEOUT")?) {
        f.csr_timeout = d;
    }
    if let Some(d) = register_timeout.or(env_seconds("STANDIN_KUBELET_REGISTER_TIMEOUT")?) {
        f.register_timeout = d;
    }
    if let Some(d) = lifetime.or(env_seconds("STANDIN_KUBELET_LIFETIME")?) {
        f.lifetime = d;
    }
    f.never_register = match never {
        Some(b) => b,
        None => env("STANDIN_KUBELET_NEVER_REGISTER")
            .is_some_and(|v| !v.is_empty() && v != "0" && v != "false"),
    };

    // The kubelet refuses, at startup, labels NodeRestriction would refuse.
    let unknown: Vec<&str> = f
        .node_labels
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| is_kubernetes_label(k) && !is_kubelet_label(k))
        .collect();
    if !unknown.is_empty() {
        let mut unknown = unknown;
        unknown.sort_unstable();
        unknown.dedup();
        return Err(unknown_node_labels_message(&unknown));
    }
    Ok(Parsed::Run(Box::new(f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &str, env: &[(&str, &str)]) -> Result<Flags, String> {
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        match parse(&args, &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })? {
            Parsed::Run(f) => Ok(*f),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn the_drop_in_command_line_parses() {
        // 10-kubeadm.conf's ExecStart with kubeadm-flags.worker-with-options.env.
        let f = run(
            "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf \
             --config=/var/lib/kubelet/config.yaml \
             --container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --hostname-override=worker-1 \
             --pod-infra-container-image=registry.k8s.io/pause:3.10 --register-with-taints=dedicated=gpu:NoSchedule \
             --node-labels=example.com/pool=gpu",
            &[],
        )
        .unwrap();
        assert_eq!(
            f.bootstrap_kubeconfig.unwrap(),
            PathBuf::from("/etc/kubernetes/bootstrap-kubelet.conf")
        );
        assert_eq!(
            f.kubeconfig.unwrap(),
            PathBuf::from("/etc/kubernetes/kubelet.conf")
        );
        assert_eq!(
            f.config.unwrap(),
            PathBuf::from("/var/lib/kubelet/config.yaml")
        );
        assert_eq!(f.hostname_override.as_deref(), Some("worker-1"));
        assert_eq!(f.node_labels, [("example.com/pool".into(), "gpu".into())]);
        assert_eq!(
            f.taints,
            [Taint {
                key: "dedicated".into(),
                value: "gpu".into(),
                effect: "NoSchedule".into()
            }]
        );
        assert_eq!(f.cert_dir, PathBuf::from("/var/lib/kubelet/pki"));
        assert!(f.register_node && !f.never_register);
        assert_eq!(f.noted.len(), 2);
    }

    #[test]
    fn unknown_flags_are_noted_and_skipped() {
        let f = run(
            "--fail-swap-on=false --max-pods 50 --kubeconfig k --rotate-certificates",
            &[],
        )
        .unwrap();
        assert_eq!(f.kubeconfig.unwrap(), PathBuf::from("k"));
        assert_eq!(f.noted.len(), 3, "{:?}", f.noted);
        assert!(f.noted[1].starts_with("--max-pods 50"));
        assert!(run("positional", &[]).is_err());
        assert!(run("--kubeconfig", &[]).is_err());
    }

    #[test]
    fn stand_in_settings_from_flags_or_env() {
        let f = run(
            "--standin-never-register --standin-csr-timeout=2.5",
            &[
                ("STANDIN_KUBELET_CSR_TIMEOUT", "9"),
                ("STANDIN_KUBELET_LIFETIME", "0"),
            ],
        )
        .unwrap();
        assert!(f.never_register);
        assert_eq!(f.csr_timeout, Duration::from_millis(2500));
        assert_eq!(f.lifetime, Duration::ZERO);
        let f = run("", &[("STANDIN_KUBELET_NEVER_REGISTER", "1")]).unwrap();
        assert!(f.never_register);
        let f = run(
            "--standin-never-register=false",
            &[("STANDIN_KUBELET_NEVER_REGISTER", "1")],
        )
        .unwrap();
        assert!(!f.never_register);
        let f = run("--register-node=false", &[]).unwrap();
        assert!(!f.register_node);
        assert!(matches!(
            parse(&["--help".into()], &|_| None),
            Ok(Parsed::Help)
        ));
    }

    #[test]
    fn labels_and_taints() {
        assert_eq!(
            parse_taints("a=b:NoSchedule, c:NoExecute").unwrap(),
            [
                Taint {
                    key: "a".into(),
                    value: "b".into(),
                    effect: "NoSchedule".into()
                },
                Taint {
                    key: "c".into(),
                    value: String::new(),
                    effect: "NoExecute".into()
                }
            ]
        );
        assert!(parse_taints("a=b").is_err());
        assert!(parse_taints("a=b:Sometimes").is_err());
        assert!(parse_labels("a").is_err());
        let err = run("--node-labels=node-role.kubernetes.io/worker=,x=y", &[]).unwrap_err();
        assert!(
            err.starts_with(
                "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [node-role.kubernetes.io/worker]"
            ),
            "{err}"
        );
    }
}
