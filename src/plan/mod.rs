//! The Plan: everything a join will change, as plain data, decided before
//! anything is touched (architecture.md "plan, then apply").
//!
//! `render` is a pure function from [`NodeInputs`] to a [`Plan`]; every file
//! is serialised from typed structs, never templated as text. `--dry-run`
//! prints a Plan, `join` applies one through the journal, and applying the
//! same Plan twice changes nothing the second time.

use serde::Serialize;

use crate::clusterinfo::{RuntimeSpec, Taint};
use crate::labels::Labels;
use crate::secret::BootstrapToken;

pub mod render;

/// A file the join writes. `path` is absolute on the host (`/etc/...`);
/// only `host::Root` maps it under `--root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSpec {
    pub path: String,
    pub mode: u32,
    /// Wiped when the plan is dropped: the bootstrap kubeconfig's holds
    /// the token.
    #[serde(skip)]
    pub content: zeroize::Zeroizing<Vec<u8>>,
    /// Holds a secret: shown masked in a dry run, never diffed in clear.
    pub sensitive: bool,
    /// One line for the plan's reader: why this file exists.
    pub purpose: &'static str,
}

/// A change to the running system, recorded as data. Under `--root` the
/// actions are listed but not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Load kernel modules now (built-in modules count as loaded).
    LoadModules { modules: Vec<String> },
    /// Apply the sysctls of this file now.
    ApplySysctls { file: String },
    /// Refuse to go on while swap is on, unless the kubelet allows swap.
    CheckSwap {
        /// The rendered KubeletConfiguration says `failSwapOn: false`.
        /// Decided with the rest of the plan, so preflight need not read
        /// the plan's own YAML back. Not shown: the configuration is.
        #[serde(skip)]
        swap_allowed: bool,
    },
    /// systemctl daemon-reload.
    DaemonReload,
    /// Restart `unit` if any of `when_changed` changed in this run.
    RestartIfChanged {
        unit: String,
        when_changed: Vec<String>,
    },
    /// systemctl enable --now `unit` (the kubelet).
    EnableAndStart {
        unit: String,
        /// What the kubelet makes for itself (its credentials): journaled
        /// before it starts, so reset removes them when they were absent.
        #[serde(skip)]
        kubelet_owned: Vec<String>,
        /// A running kubelet is restarted when any of these changed in
        /// this run (kubeadm restarts it too); otherwise a re-run leaves it
        /// alone.
        #[serde(skip)]
        restart_when_changed: Vec<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub files: Vec<FileSpec>,
    /// Directories to create with these modes when missing (parents first).
    pub dirs: Vec<(String, u32)>,
    pub actions: Vec<Action>,
}

impl FileSpec {
    /// Whether `found` already is this file: the same bytes and mode (a
    /// re-run leaves it alone; a dry run calls it unchanged).
    pub fn is_in_place(&self, found: &crate::host::fsops::Found) -> bool {
        matches!(found, crate::host::fsops::Found::File { sha256, mode, .. }
            if *sha256 == crate::host::fsops::sha256_hex(&self.content) && *mode == self.mode)
    }
}

impl Plan {
    pub fn file(&self, path: &str) -> Option<&FileSpec> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Everything the renderers need, resolved and validated beforehand.
#[derive(Debug, Clone)]
pub struct NodeInputs {
    pub node_name: String,
    /// The host's own name, lowercased; `--hostname-override` is written
    /// only when the node name differs from it (as kubeadm does).
    pub hostname: String,
    /// The verified kubeconfig's `server`, e.g. `https://10.0.0.1:6443`.
    pub server: String,
    /// The cluster CA bundle exactly as found in cluster-info.
    pub ca_pem: Vec<u8>,
    pub token: BootstrapToken,
    /// `kube-system/kubelet-config`'s `kubelet` key, if the cluster has one.
    pub cluster_kubelet_config: Option<String>,
    /// Layers over the cluster's KubeletConfiguration, lowest first
    /// (ClusterInfo's clusterDNS/clusterDomain/node.kubeletConfig, then
    /// flags); each a partial KubeletConfiguration as JSON.
    pub kubelet_overrides: Vec<(String, serde_json::Map<String, serde_json::Value>)>,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub provider_id: Option<String>,
    pub runtime: RuntimeSpec,
    /// systemd-resolved is active on the host (kubeadm then points the
    /// kubelet at its upstream resolv.conf).
    pub systemd_resolved: bool,
    /// Downloaded and sha256-checked artifacts: (name, bytes).
    pub artifacts: Vec<(String, Vec<u8>)>,
}

/// Where the files live: kubeadm's layout (contract §6).
pub mod paths {
    pub const CA: &str = "/etc/kubernetes/pki/ca.crt";
    pub const BOOTSTRAP_KUBECONFIG: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
    pub const KUBELET_KUBECONFIG: &str = "/etc/kubernetes/kubelet.conf";
    pub const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";
    pub const KUBELET_FLAGS: &str = "/var/lib/kubelet/kubeadm-flags.env";
    /// The kubelet's unit, written only when the kubelet comes as an
    /// artifact (a bare VM has no package to bring it).
    pub const KUBELET_UNIT: &str = "/etc/systemd/system/kubelet.service";
    pub const KUBELET_DROPIN: &str = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf";
    pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
    pub const CONTAINERD_CERTS_D: &str = "/etc/containerd/certs.d";
    pub const SYSCTL: &str = "/etc/sysctl.d/99-kubernetes-attach-node.conf";
    pub const MODULES: &str = "/etc/modules-load.d/kubernetes-attach-node.conf";
    pub const STATE_DIR: &str = "/var/lib/attach-node";
    pub const CRI_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";
}

/// The kernel settings every node needs (kubeadm's preflight checks them).
pub const SYSCTLS: &[(&str, &str)] = &[
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.ipv4.ip_forward", "1"),
];
pub const MODULES: &[&str] = &["overlay", "br_netfilter"];
