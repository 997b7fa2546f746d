//! Issue 10 part 3: the real kubelet joins a real control plane, in a booted
//! Debian machine.
//!
//! The control plane is tests/k8s/controlplane.sh's (etcd, kube-apiserver and
//! kube-controller-manager made by the real kubeadm, v1.37.2), in a network
//! namespace of its own. The machine boots into that same namespace, so the
//! API server is its 127.0.0.1:6443. The real kubelet is bound in as
//! /usr/bin/kubelet with the kubelet package's unit; containerd and the CNI
//! plugins are Debian's.
//!
//! What the kubelet needs in nspawn is set the way kind sets it up for its
//! nodes, never in attach-node: the cluster's `kubelet-config` ConfigMap
//! (`kind_kubelet_config`), the machine (`/dev/kmsg` bound in, a bridge CNI
//! config) and, because a few kernel settings are not namespaced and nspawn
//! keeps /proc/sys read-only, the host's sysctls (`HostSysctls`, put back
//! on drop; listed in tests/e2e/README.md).
//!
//! Skipped (with the reason printed) when the upstream binaries are not
//! built (`tests/k8s/build.sh`); `ATTACH_NODE_K8S=require` makes that a
//! failure.
//!
//!     cargo test --test e2e real_k8s -- --nocapture --test-threads=1

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness;

const GUEST_BIN: &str = crate::GUEST_BIN;
/// Where the test hands the bootstrap token to the machine (0600).
const GUEST_TOKEN: &str = "/etc/attach-node/bootstrap-token";
/// The upstream binaries the control plane and the node need.
const K8S_BINARIES: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubeadm",
    "kubectl",
    "kubelet",
];
/// The address controlplane.sh puts on its namespace's lo (TEST-NET-2).
const ADVERTISE_ADDRESS: &str = "198.51.100.10";
/// A label and a taint outside the kubernetes.io namespaces, which
/// NodeRestriction lets a kubelet set on its own Node.
const LABEL: (&str, &str) = ("e2e.attach-node.io/pool", "real-kubelet");
const TAINT: (&str, &str, &str) = ("e2e.attach-node.io/dedicated", "real", "NoSchedule");

/// A bridge network for containerd's CRI plugin: without a CNI config it
/// reports NetworkReady=false and the Node never becomes Ready. The plugins
/// come from Debian's containernetworking-plugins (/usr/lib/cni, the
/// bin_dir of Debian's containerd config).
const CNI_CONFLIST: &str = r#"{
  "cniVersion": "0.4.0",
  "name": "e2e-bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.244.1.0/24" }]]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn say_uncaptured(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// The directory of the upstream binaries, or None (after printing why) when
/// they are not all built. `ATTACH_NODE_K8S=require` panics instead.
fn k8s_bin_dir(test: &str) -> Option<PathBuf> {
    let out = Command::new(repo().join("tests/k8s/build.sh"))
        .arg("--print-dir")
        .stdin(Stdio::null())
        .output()
        .expect("run tests/k8s/build.sh --print-dir");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let missing: Vec<&str> = K8S_BINARIES
        .iter()
        .copied()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    if out.status.success() && missing.is_empty() {
        return Some(dir);
    }
    let reason = format!(
        "the upstream Kubernetes binaries {missing:?} are not in {} (build them with tests/k8s/build.sh, about 22 min cold)",
        dir.display()
    );
    if std::env::var("ATTACH_NODE_K8S").as_deref() == Ok("require") {
        panic!("ATTACH_NODE_K8S=require, but {reason}");
    }
    say_uncaptured(&format!("[e2e] SKIP {test}: {reason}"));
    None
}

/// A control plane from tests/k8s/controlplane.sh; `stop` on drop.
struct ControlPlane {
    bin: PathBuf,
    scratch: PathBuf,
    vars: HashMap<String, String>,
    _parent: tempfile::TempDir,
}

impl ControlPlane {
    fn script() -> PathBuf {
        repo().join("tests/k8s/controlplane.sh")
    }

    fn start(bin: &Path) -> Self {
        let parent = tempfile::Builder::new()
            .prefix("attach-node-cp-")
            .tempdir()
            .expect("a scratch directory for the control plane");
        let scratch = parent.path().join("cp");
        let started = Instant::now();
        let out = Command::new(Self::script())
            .arg("start")
            .arg(bin)
            .arg(&scratch)
            .stdin(Stdio::null())
            .output()
            .expect("run controlplane.sh start");
        assert!(
            out.status.success(),
            "controlplane.sh start failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let vars = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        eprintln!(
            "[e2e] control plane up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        ControlPlane {
            bin: bin.to_owned(),
            scratch,
            vars,
            _parent: parent,
        }
    }

    fn var(&self, k: &str) -> &str {
        self.vars
            .get(k)
            .unwrap_or_else(|| panic!("controlplane.sh start printed no {k}="))
    }

    /// The control plane's network namespace, for nspawn.
    fn netns_path(&self) -> String {
        let pid = std::fs::read_to_string(self.scratch.join("netns.pid")).unwrap();
        format!("/proc/{}/ns/net", pid.trim())
    }

    /// The real kubectl with the admin kubeconfig, in the namespace.
    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(Self::script())
            .arg("exec")
            .arg(&self.scratch)
            .arg("--")
            .arg(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(self.var("kubeconfig"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    /// kubectl that must succeed; its stdout.
    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&a)).expect("kubectl's JSON")
    }

    /// The tail of each component's log, for a failure message.
    fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["kube-apiserver", "kube-controller-manager"] {
            let path = self.scratch.join("logs").join(format!("{name}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s.push_str(&format!("==== {name} (last lines)\n"));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let out = Command::new(Self::script())
            .arg("stop")
            .arg(&self.scratch)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "[e2e] WARNING: controlplane.sh stop: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("[e2e] WARNING: controlplane.sh stop: {e}"),
        }
    }
}

/// The kernel settings kubelet's container manager insists on
/// (`setupKernelTunables`): it writes each one that differs and stops when
/// it cannot. They are not namespaced, and nspawn mounts /proc/sys
/// read-only, so the kubelet in the machine can only read them. A kind node
/// (a privileged container) lets its kubelet write the host's; here the
/// test writes them before the kubelet starts and puts the old values back
/// on drop, panicking or not.
const KUBELET_SYSCTLS: &[(&str, &str)] = &[
    ("vm/overcommit_memory", "1"),
    ("vm/panic_on_oom", "0"),
    ("kernel/panic", "10"),
    ("kernel/panic_on_oops", "1"),
    ("kernel/keys/root_maxkeys", "1000000"),
    ("kernel/keys/root_maxbytes", "25000000"),
];

struct HostSysctls {
    restore: Vec<(PathBuf, String)>,
}

/// Where the old values wait while the test runs: a process killed before
/// its guard's drop (SIGKILL, a timeout) would otherwise leave the host's
/// settings changed. The next run puts them back first.
fn sysctl_record() -> PathBuf {
    crate::root::work_dir().join("host-sysctls.restore")
}

/// Puts back the values a killed run recorded, then forgets them.
fn restore_recorded() {
    let record = sysctl_record();
    let Ok(text) = std::fs::read_to_string(&record) else {
        return;
    };
    for line in text.lines() {
        if let Some((path, old)) = line.split_once('\t') {
            // Only /proc/sys paths this file itself wrote are obeyed.
            if path.starts_with("/proc/sys/") && !path.contains("..") {
                match std::fs::write(path, old) {
                    Ok(()) => eprintln!(
                        "[e2e] host sysctl {path} put back to {old}, as recorded by a run that was killed"
                    ),
                    Err(e) => eprintln!("[e2e] WARNING: could not put {path} back to {old}: {e}"),
                }
            }
        }
    }
    let _ = std::fs::remove_file(&record);
}

impl HostSysctls {
    fn set(wanted: &[(&str, &str)]) -> Self {
        restore_recorded();
        let mut guard = HostSysctls {
            restore: Vec::new(),
        };
        let mut record = String::new();
        let mut changes = Vec::new();
        for (name, value) in wanted {
            let path = Path::new("/proc/sys").join(name);
            let old = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if old.trim() == *value {
                continue;
            }
            record.push_str(&format!("{}\t{}\n", path.display(), old.trim()));
            changes.push((path, old, *value, *name));
        }
        // Written (and synced) before the first change.
        if !record.is_empty() {
            let mut f = std::fs::File::create(sysctl_record()).unwrap();
            f.write_all(record.as_bytes()).unwrap();
            f.sync_all().unwrap();
        }
        for (path, old, value, name) in changes {
            std::fs::write(&path, value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!(
                "[e2e] host sysctl {name}: {} -> {value} (put back after the test)",
                old.trim()
            );
            guard.restore.push((path, old));
        }
        guard
    }
}

impl Drop for HostSysctls {
    fn drop(&mut self) {
        let mut all_back = true;
        for (path, old) in self.restore.iter().rev() {
            match std::fs::write(path, old) {
                Ok(()) => eprintln!(
                    "[e2e] host sysctl {} put back to {}",
                    path.display(),
                    old.trim()
                ),
                Err(e) => {
                    all_back = false;
                    eprintln!(
                        "[e2e] WARNING: could not put {} back to {}: {e}",
                        path.display(),
                        old.trim()
                    )
                }
            }
        }
        if all_back && !self.restore.is_empty() {
            let _ = std::fs::remove_file(sysctl_record());
        }
    }
}

/// `kubelet-config`'s KubeletConfiguration with what kind's kubeadm config
/// sets for its nodes (systemd cgroup driver, no swap check, image GC and
/// disk eviction that never fire on a small disk), plus `failCgroupV1:
/// false`: these hosts are cgroup v1, which kubelet 1.35+ refuses unless
/// told otherwise.
fn kind_kubelet_config(yaml: &str) -> String {
    let mut v: serde_json::Value = serde_saphyr::from_str(yaml).expect("kubelet-config holds YAML");
    let obj = v.as_object_mut().expect("a KubeletConfiguration mapping");
    for (k, val) in [
        ("cgroupDriver", serde_json::json!("systemd")),
        ("failSwapOn", serde_json::json!(false)),
        ("failCgroupV1", serde_json::json!(false)),
        ("imageGCHighThresholdPercent", serde_json::json!(100)),
        (
            "evictionHard",
            serde_json::json!({
                "nodefs.available": "0%",
                "nodefs.inodesFree": "0%",
                "imagefs.available": "0%",
            }),
        ),
    ] {
        obj.insert(k.to_owned(), val);
    }
    serde_saphyr::to_string(&v).expect("YAML out")
}

/// crate::FINGERPRINT as a list that can say what differs: one line per
/// path under /etc and /var/lib (the same ones left out) with its type,
/// mode, owner, link target and, for a file, a checksum.
const LISTING: &str = "cd / && find /etc /var/lib -xdev \\( -path /var/lib/attach-node -o -path /var/lib/containerd -o -path /var/lib/systemd -o -path /etc/attach-node \\) -prune -o -printf '%p %y %m %U:%G %l\\n' | sort | while read -r p t rest; do if [ \"$t\" = f ]; then echo \"$p $t $rest $(md5sum < \"$p\" | cut -c1-12)\"; else echo \"$p $t $rest\"; fi; done";

/// A `+` line of `listing_diff` for something the kubelet made under
/// /var/lib/kubelet, apart from the files attach-node writes there.
fn kubelet_runtime_state(line: &str) -> bool {
    let Some(path) = line.strip_prefix("+ ").and_then(|l| l.split(' ').next()) else {
        return false;
    };
    let ours = [
        "config.yaml",
        "kubeadm-flags.env",
        "pki",
        "instance-config.yaml",
    ];
    path == "/var/lib/kubelet"
        || path.strip_prefix("/var/lib/kubelet/").is_some_and(|rest| {
            !ours
                .iter()
                .any(|o| rest == *o || rest.starts_with(&format!("{o}/")))
        })
}

/// The lines only before (-) and only after (+).
fn listing_diff(before: &str, after: &str) -> String {
    let b: std::collections::BTreeSet<&str> = before.lines().collect();
    let a: std::collections::BTreeSet<&str> = after.lines().collect();
    let mut out = String::new();
    for l in b.difference(&a) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in a.difference(&b) {
        out.push_str(&format!("+ {l}\n"));
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One real-Kubernetes case at a time in a process: the host sysctls are
/// shared, and one case putting them back must not pull them from under
/// another's kubelet.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Everything a case needs before its join: the upstream binaries, the
/// control plane with kind's kubelet settings in its kubelet-config, and
/// the host sysctls. None when the case is skipped.
struct Cluster {
    // Dropped in this order: the sysctls go back after the machine (a
    // field of the case, dropped before this) is gone, and the control
    // plane stops last.
    _sysctls: HostSysctls,
    cp: ControlPlane,
    bin: PathBuf,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    fn up(name: &str) -> Option<Cluster> {
        let bin = k8s_bin_dir(name)?;
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let cp = ControlPlane::start(&bin);
        // Cluster configuration, as a kind cluster has it, before any node
        // reads it.
        let current = cp.kubectl_ok(&[
            "-n",
            "kube-system",
            "get",
            "configmap",
            "kubelet-config",
            "-o",
            "jsonpath={.data.kubelet}",
        ]);
        let patch = serde_json::json!({"data": {"kubelet": kind_kubelet_config(&current)}});
        cp.kubectl_ok(&[
            "-n",
            "kube-system",
            "patch",
            "configmap",
            "kubelet-config",
            "--type",
            "merge",
            "-p",
            &patch.to_string(),
        ]);
        Some(Cluster {
            _sysctls: HostSysctls::set(KUBELET_SYSCTLS),
            cp,
            bin,
            _serial: serial,
        })
    }

    /// The bootstrap token kubeadm made (secret: never printed).
    fn token(&self) -> String {
        std::fs::read_to_string(self.cp.var("token_file"))
            .expect("the control plane's token")
            .trim()
            .to_owned()
    }

    /// A Debian machine in the control plane's namespace with the real
    /// kubelet installed as its package would be, plus `files`.
    fn node(&self, files: &[(&str, Vec<u8>, u32)]) -> harness::Machine {
        let mut b = harness::machine("realk8s")
            .network_namespace(&self.cp.netns_path())
            .bind_ro(harness::attach_node_bin(), GUEST_BIN)
            .kubelet_package(self.bin.join("kubelet"))
            // kubelet's OOM watcher reads the kernel log; nspawn has no
            // /dev/kmsg of its own (kind's privileged containers do).
            .nspawn_arg("--bind=/dev/kmsg")
            .file("/etc/cni/net.d/10-e2e-bridge.conflist", CNI_CONFLIST, 0o644);
        for (guest, bytes, mode) in files {
            b = b.file(guest, bytes, *mode);
        }
        let m = b.boot();
        // The namespace has no default route, so the kubelet cannot pick a
        // node IP from one ("no default routes found in /proc/net/route")
        // and the Node gets no addresses. A VM's hostname resolves to its
        // own address; here that is the address the namespace's lo carries.
        let hosts = m.read_file("/etc/hosts");
        m.write_file(
            "/etc/hosts",
            format!("{hosts}{ADVERTISE_ADDRESS} {}\n", m.name()),
            0o644,
        );
        m.daemon_reload();
        m
    }

    /// Runs `argv` (a join with `--wait ready`) in `m`; fails with the
    /// kubelet's journal and the control plane's logs if it does not exit 0.
    fn join(&self, m: &harness::Machine, argv: &[&str]) {
        let started = Instant::now();
        let out = m.exec_timeout(argv, Duration::from_secs(240));
        let err = text(&out.stderr);
        if !out.status.success() {
            let kubelet = m.exec(&[
                "journalctl",
                "--no-pager",
                "-u",
                "kubelet.service",
                "-n",
                "60",
            ]);
            m.fail(&format!(
                "join failed ({}):\n{err}\n==== kubelet journal\n{}\n{}",
                out.status,
                text(&kubelet.stdout),
                self.cp.logs()
            ));
        }
        eprintln!(
            "[e2e] join --wait ready took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        crate::print_stage_times(&err);
        assert!(!err.contains(&self.token()), "the bootstrap token leaked");
        assert!(m.is_active("kubelet.service"), "the kubelet runs");
        // The cluster's kubelet-config reached the node.
        let config = m.read_file("/var/lib/kubelet/config.yaml");
        assert!(config.contains("failCgroupV1: false"), "{config}");
        let errors = m.sh("journalctl --no-pager -o cat -u kubelet.service | grep -E '^E[0-9]{4} ' | cut -c1-240 | head -n 20 || true");
        eprintln!("[e2e] the kubelet's first error lines:\n{errors}");
    }

    /// With the real kubectl: the Node is Ready, has its address, `labels`
    /// and the taint; its client certificate came through the real CSR
    /// flow (requested with the bootstrap token, approved by the
    /// csrapprover, signed).
    fn assert_node(&self, node: &str, labels: &[(&str, &str)]) {
        let n = self.cp.kubectl_json(&["get", "node", node]);
        let ready = n["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready");
        assert_eq!(
            ready.map(|c| c["status"].clone()),
            Some(serde_json::json!("True")),
            "{n:#}"
        );
        let internal_ip = n["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "InternalIP");
        assert_eq!(
            internal_ip.map(|a| a["address"].clone()),
            Some(serde_json::json!(ADVERTISE_ADDRESS)),
            "{n:#}"
        );
        for (k, v) in labels {
            assert_eq!(n["metadata"]["labels"][k], *v, "{n:#}");
        }
        let taints = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
        assert!(
            taints
                .iter()
                .any(|t| t["key"] == TAINT.0 && t["value"] == TAINT.1 && t["effect"] == TAINT.2),
            "{taints:?}"
        );

        let csrs = self.cp.kubectl_json(&["get", "csr"]);
        let token_id: String = self.token().chars().take(6).collect();
        let requester = format!("system:bootstrap:{token_id}");
        let csr = csrs["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| {
                c["spec"]["username"] == requester.as_str()
                    && c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
            })
            .unwrap_or_else(|| panic!("no kubelet CSR from {requester}: {csrs:#}"));
        let approved = csr["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Approved" && c["reason"] == "AutoApproved");
        assert!(approved, "{csr:#}");
        assert!(
            csr["status"]["certificate"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "{csr:#}"
        );
    }
}

/// `reset`: the kubelet stops, and /etc and /var/lib are as in
/// `listing_before`, apart from the kubelet's own state.
fn reset_and_compare(m: &harness::Machine, listing_before: &str) {
    let out = m.exec_timeout(&[GUEST_BIN, "reset"], Duration::from_secs(120));
    if !out.status.success() {
        m.fail(&format!("reset failed:\n{}", text(&out.stderr)));
    }
    assert!(!m.is_active("kubelet.service"), "the kubelet is stopped");
    // What the kubelet made for itself under /var/lib/kubelet (its state
    // files, sockets, pods/, plugins/) is not attach-node's, and reset
    // keeps data it did not create (contract: "Directories join created
    // are removed only when empty"). `kubeadm reset` would clean it out.
    // Everything else, and every file attach-node wrote there, must be as
    // it was.
    let diff = listing_diff(listing_before, &m.sh(LISTING));
    let unexpected: Vec<&str> = diff.lines().filter(|l| !kubelet_runtime_state(l)).collect();
    if !unexpected.is_empty() {
        m.fail(&format!(
            "reset left the machine different:\n{}\n(all differences:\n{diff})",
            unexpected.join("\n")
        ));
    }
    eprintln!("[e2e] reset kept the kubelet's own state:\n{diff}");
}

/// (part 3) `join --endpoint --token-file --ca-cert-hash --wait ready` with
/// the real kubelet: TLS bootstrap against the real API server, the CSR
/// approved and signed by the real controllers, the Node Ready with the
/// label and taint asked for (read back with the real kubectl); then
/// `reset` stops the kubelet and puts back every file attach-node wrote.
#[test]
fn real_kubelet_joins_with_a_bootstrap_token_then_resets() {
    const NAME: &str = "real_kubelet_joins_with_a_bootstrap_token_then_resets";
    let Some(_t) = harness::begin(NAME) else {
        return;
    };
    let Some(cluster) = Cluster::up(NAME) else {
        return;
    };
    let m = cluster.node(&[(GUEST_TOKEN, cluster.token().into_bytes(), 0o600)]);
    let listing_before = m.sh(LISTING);

    let label = format!("{}={}", LABEL.0, LABEL.1);
    let taint = format!("{}={}:{}", TAINT.0, TAINT.1, TAINT.2);
    cluster.join(
        &m,
        &[
            GUEST_BIN,
            "join",
            "--endpoint",
            cluster.cp.var("endpoint"),
            "--token-file",
            GUEST_TOKEN,
            "--ca-cert-hash",
            cluster.cp.var("ca_cert_hash"),
            "--labels",
            &label,
            "--taints",
            &taint,
            "--wait",
            "ready",
            "--wait-timeout",
            "180s",
            "-v",
        ],
    );
    cluster.assert_node(m.name(), &[LABEL]);
    reset_and_compare(&m, &listing_before);
    m.shutdown().assert_clean();
}

/// The loopback lab's control plane, listening inside the real control
/// plane's network namespace (where the machine can reach it), answering an
/// openapi token with a ClusterInfo that names the real API server first,
/// the real bootstrap token and the real CA pin. The lab's own API server
/// is listed after the real one, and never reached while that answers.
fn lab_pointing_at(cluster: &Cluster) -> LabInNamespace {
    let netns = cluster.cp.netns_path();
    let cfg = attach_node_lab::LabConfig::default()
        .bootstrap_token(&cluster.token())
        .api_endpoint_before(cluster.cp.var("endpoint"))
        .ca_cert_hashes(&[cluster.cp.var("ca_cert_hash")]);
    let lab = in_namespace(&netns, move || {
        attach_node_lab::Lab::start(cfg).expect("start the lab")
    });
    LabInNamespace {
        lab: Some(lab),
        netns,
    }
}

/// Runs `f` on a thread of its own that first joins the network namespace
/// at `netns`: setns changes only the calling thread, so the test thread
/// stays where it was.
fn in_namespace<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let netns = netns.to_owned();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).unwrap_or_else(|e| panic!("{netns}: {e}"));
        // SAFETY: a plain system call on an fd that lives across it.
        let rc =
            unsafe { crate::host::sys::setns(file.as_raw_fd(), crate::host::sys::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {netns}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("a thread in the control plane's namespace")
}

/// A lab started inside a network namespace, and stopped there too: its
/// shutdown wakes each listener by connecting to 127.0.0.1:<port>, which
/// from the host's namespace reaches nothing, and the stop would hang.
struct LabInNamespace {
    lab: Option<attach_node_lab::Lab>,
    netns: String,
}

impl std::ops::Deref for LabInNamespace {
    type Target = attach_node_lab::Lab;
    fn deref(&self) -> &attach_node_lab::Lab {
        self.lab.as_ref().expect("a running lab")
    }
}

impl Drop for LabInNamespace {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            in_namespace(&self.netns, move || drop(lab));
        }
    }
}

/// (part 3, openapi) The same join through an openapi token: the lab's
/// control plane trades it for a ClusterInfo pointing at the real API
/// server, and the real kubelet joins there; the ClusterInfo's label
/// arrives next to the one from `--labels`.
#[test]
fn real_kubelet_joins_through_an_openapi_token_then_resets() {
    const NAME: &str = "real_kubelet_joins_through_an_openapi_token_then_resets";
    let Some(_t) = harness::begin(NAME) else {
        return;
    };
    let Some(cluster) = Cluster::up(NAME) else {
        return;
    };
    let lab = lab_pointing_at(&cluster);
    let m = cluster.node(&[
        (
            "/etc/attach-node/control-plane-ca.pem",
            lab.control_plane_ca_pem().into_bytes(),
            0o644,
        ),
        (
            "/etc/attach-node/openapi-token",
            lab.openapi_token().into_bytes(),
            0o600,
        ),
    ]);
    let listing_before = m.sh(LISTING);

    let label = format!("{}={}", LABEL.0, LABEL.1);
    let taint = format!("{}={}:{}", TAINT.0, TAINT.1, TAINT.2);
    let control_plane = lab.control_plane_url();
    cluster.join(
        &m,
        &[
            GUEST_BIN,
            "join",
            "--control-plane",
            &control_plane,
            "--control-plane-ca",
            "/etc/attach-node/control-plane-ca.pem",
            "--openapi-token-file",
            "/etc/attach-node/openapi-token",
            "--labels",
            &label,
            "--taints",
            &taint,
            "--wait",
            "ready",
            "--wait-timeout",
            "180s",
            "-v",
        ],
    );
    // The lab's ClusterInfo asks for this label (lab/src/controlplane.rs).
    cluster.assert_node(m.name(), &[LABEL, ("lab.attach-node.dev/pool", "default")]);
    reset_and_compare(&m, &listing_before);
    m.shutdown().assert_clean();
}
