//! Preflight: is this host fit to join? Facts are gathered from the host in
//! one edge function ([`gather`]); the judging ([`check`]) is pure, so each
//! rule is tested on plain data. A failed check names its fix.

use std::path::Path;

use serde::Serialize;

use crate::host::Root;
use crate::plan::{MODULES, paths};

/// How a kernel feature the plan needs is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    Loaded,
    /// Compiled into the kernel: as good as loaded, and `modprobe` would fail.
    BuiltIn,
    /// A module file exists; the join loads it.
    Loadable,
    Missing,
}

/// What preflight looks at, gathered once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub euid: Option<u32>,
    /// systemd is PID 1 (`/run/systemd/system` exists).
    pub systemd: bool,
    /// Active swap devices or files (`/proc/swaps`).
    pub swaps: Vec<String>,
    pub modules: Vec<(String, Feature)>,
    /// Something already listens on the kubelet's port.
    pub kubelet_port_in_use: bool,
    /// The `server` of an existing /etc/kubernetes/kubelet.conf.
    pub kubelet_conf_server: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What the join intends, as far as preflight cares.
pub struct Intent<'a> {
    /// The verified API server this host is joining.
    pub server: &'a str,
    /// The kubelet config allows swap (`failSwapOn: false`).
    pub swap_allowed: bool,
    /// This host already joined this cluster (its journal says so), so its
    /// own kubelet may hold the port and the kubeconfig.
    pub rejoin: bool,
}

/// Which check a finding is from. Shown (and serialised) by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Check {
    #[serde(rename = "root")]
    Root,
    #[serde(rename = "systemd")]
    Systemd,
    #[serde(rename = "swap")]
    Swap,
    #[serde(rename = "kernel")]
    Kernel,
    #[serde(rename = "kubelet port")]
    KubeletPort,
    #[serde(rename = "kubelet.conf")]
    KubeletConf,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Root => "root",
            Check::Systemd => "systemd",
            Check::Swap => "swap",
            Check::Kernel => "kernel",
            Check::KubeletPort => "kubelet port",
            Check::KubeletConf => "kubelet.conf",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

fn finding(check: Check, ok: bool, detail: String, fix: Option<&str>) -> Finding {
    Finding {
        check,
        ok,
        detail,
        fix: if ok { None } else { fix.map(str::to_owned) },
    }
}

/// Judges the facts: every check, in the order a dry run shows them. Pure.
pub fn check(f: &HostFacts, intent: &Intent<'_>) -> Vec<Finding> {
    let mut out = vec![root(f), systemd(f), swap(f, intent.swap_allowed)];
    out.extend(kernel(f));
    out.push(kubelet_port(f, intent.rejoin));
    out.push(kubelet_conf(f, intent.server));
    out
}

/// The checks that need nothing from the cluster: root, systemd, kernel
/// features, the kubelet's port. A join runs them before it trades the
/// openapi token, which may be single-use: a host that cannot join must
/// not spend it. `journaled` says that this host's journal records a join
/// that was not reset, whose kubelet may hold the port; whether that join
/// is to the same cluster is only known after discovery (and a join to
/// another cluster stops there, exit 9).
pub fn check_local(f: &HostFacts, journaled: bool) -> Vec<Finding> {
    let mut out = vec![root(f), systemd(f)];
    out.extend(kernel(f));
    out.push(kubelet_port(f, journaled));
    out
}

/// The checks that need what discovery and the cluster said: swap (the
/// merged kubelet config may allow it, `failSwapOn: false`) and an existing
/// kubelet.conf (of this cluster, or of another: the verified server).
pub fn check_cluster(f: &HostFacts, intent: &Intent<'_>) -> Vec<Finding> {
    vec![swap(f, intent.swap_allowed), kubelet_conf(f, intent.server)]
}

fn root(f: &HostFacts) -> Finding {
    match f.euid {
        Some(0) => finding(Check::Root, true, "running as root".into(), None),
        Some(uid) => finding(
            Check::Root,
            false,
            format!("running as uid {uid}"),
            Some("run attach-node as root (sudo)"),
        ),
        None => finding(
            Check::Root,
            false,
            "cannot tell which user this runs as".into(),
            Some("run attach-node as root"),
        ),
    }
}

fn systemd(f: &HostFacts) -> Finding {
    finding(
        Check::Systemd,
        f.systemd,
        if f.systemd {
            "systemd is the init system".into()
        } else {
            "systemd is not running as PID 1".into()
        },
        Some("attach-node runs the kubelet and containerd as systemd services; use a systemd host"),
    )
}

fn swap(f: &HostFacts, swap_allowed: bool) -> Finding {
    let swap_ok = f.swaps.is_empty() || swap_allowed;
    finding(
        Check::Swap,
        swap_ok,
        match (f.swaps.is_empty(), swap_allowed) {
            (true, _) => "swap is off".into(),
            (false, true) => format!(
                "swap is on ({}), and the kubelet config allows it",
                f.swaps.join(", ")
            ),
            (false, false) => format!("swap is on: {}", f.swaps.join(", ")),
        },
        Some(
            "turn swap off (swapoff -a, and remove it from /etc/fstab), or set failSwapOn: false in the kubelet config",
        ),
    )
}

fn kernel(f: &HostFacts) -> Vec<Finding> {
    f.modules
        .iter()
        .map(|(name, feature)| {
            let ok = *feature != Feature::Missing;
            let detail = match feature {
                Feature::Loaded => format!("kernel module {name} is loaded"),
                Feature::BuiltIn => format!("kernel feature {name} is built into the kernel"),
                Feature::Loadable => format!("kernel module {name} will be loaded"),
                Feature::Missing => {
                    format!("kernel feature {name} is neither built in nor loadable")
                }
            };
            finding(Check::Kernel,
                ok,
                detail,
                Some("install this kernel's modules (e.g. linux-modules-extra) or use a kernel with it built in"),
            )
        })
        .collect()
}

fn kubelet_port(f: &HostFacts, rejoin: bool) -> Finding {
    finding(
        Check::KubeletPort,
        !f.kubelet_port_in_use || rejoin,
        if f.kubelet_port_in_use {
            "port 10250 is in use".into()
        } else {
            "port 10250 is free".into()
        },
        Some("stop whatever listens on 10250 (another kubelet?), or run `attach-node reset` first"),
    )
}

fn kubelet_conf(f: &HostFacts, server: &str) -> Finding {
    match &f.kubelet_conf_server {
        None => finding(
            Check::KubeletConf,
            true,
            "no kubelet credentials yet".into(),
            None,
        ),
        Some(s) if s == server => finding(
            Check::KubeletConf,
            true,
            format!("kubelet credentials for this cluster ({s}) exist"),
            None,
        ),
        Some(s) => finding(
            Check::KubeletConf,
            false,
            format!(
                "{} belongs to another cluster ({s})",
                paths::KUBELET_KUBECONFIG
            ),
            Some(
                "this host is a node of another cluster: reset it there first (attach-node reset or kubeadm reset)",
            ),
        ),
    }
}

/// Reads the facts from the host (or a root: there, only the files count,
/// and the running system's facts are left out as not applicable).
pub fn gather(root: &Root) -> HostFacts {
    let live = root.is_host();
    HostFacts {
        euid: euid(),
        systemd: Path::new("/run/systemd/system").is_dir(),
        swaps: if live { swaps() } else { Vec::new() },
        modules: MODULES
            .iter()
            .map(|m| (m.to_string(), kernel_feature(m)))
            .collect(),
        kubelet_port_in_use: live && std::net::TcpListener::bind(("0.0.0.0", 10250)).is_err(),
        kubelet_conf_server: kubelet_conf_server(root),
    }
}

fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn swaps() -> Vec<String> {
    std::fs::read_to_string("/proc/swaps")
        .map(|s| parse_swaps(&s))
        .unwrap_or_default()
}

/// `/proc/swaps`: a header line, then one line per active swap area.
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

pub fn kernel_feature(module: &str) -> Feature {
    let loaded = std::fs::read_to_string("/proc/modules").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split_whitespace().next() == Some(module))
    });
    if loaded {
        return Feature::Loaded;
    }
    // A built-in feature shows itself where the module would: overlay as a
    // filesystem, br_netfilter as its sysctls. Kernels without module
    // support at all (no /lib/modules) have them this way.
    let built_in = match module {
        "overlay" => std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| {
            f.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        }),
        "br_netfilter" => Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists(),
        _ => false,
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let modules_dir = Path::new("/lib/modules").join(release.trim());
    let listed = |file: &str| {
        std::fs::read_to_string(modules_dir.join(file)).is_ok_and(|t| {
            t.lines().any(|l| {
                let name = l.split(':').next().unwrap_or("");
                let base = name.rsplit('/').next().unwrap_or("");
                base.split('.').next() == Some(module)
            })
        })
    };
    if built_in || listed("modules.builtin") {
        Feature::BuiltIn
    } else if listed("modules.dep") {
        Feature::Loadable
    } else {
        Feature::Missing
    }
}

fn kubelet_conf_server(root: &Root) -> Option<String> {
    let text = std::fs::read_to_string(root.path(paths::KUBELET_KUBECONFIG)).ok()?;
    // The kubelet writes a named cluster and a current context; read it the
    // way discovery reads cluster-info's kubeconfig.
    match crate::trust::kubeconfig::cluster_from_kubeconfig(&text) {
        Ok(c) => Some(c.server.base_url()),
        Err(_) => Some("(unreadable)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> HostFacts {
        HostFacts {
            euid: Some(0),
            systemd: true,
            swaps: vec![],
            modules: vec![
                ("overlay".into(), Feature::BuiltIn),
                ("br_netfilter".into(), Feature::Loadable),
            ],
            kubelet_port_in_use: false,
            kubelet_conf_server: None,
        }
    }

    fn intent() -> Intent<'static> {
        Intent {
            server: "https://10.0.0.1:6443",
            swap_allowed: false,
            rejoin: false,
        }
    }

    fn failed(f: &HostFacts, i: &Intent<'_>) -> Vec<&'static str> {
        check(f, i)
            .into_iter()
            .filter(|x| !x.ok)
            .map(|x| x.check.as_str())
            .collect()
    }

    #[test]
    fn a_healthy_host_passes_and_built_in_counts() {
        let findings = check(&healthy(), &intent());
        assert!(findings.iter().all(|f| f.ok), "{findings:?}");
        assert!(
            findings
                .iter()
                .any(|f| f.detail.contains("built into the kernel"))
        );
    }

    #[test]
    fn each_rule_fails_alone_with_its_fix() {
        let i = intent();
        let mut f = healthy();
        f.euid = Some(1000);
        assert_eq!(failed(&f, &i), ["root"]);
        let mut f = healthy();
        f.systemd = false;
        assert_eq!(failed(&f, &i), ["systemd"]);
        let mut f = healthy();
        f.swaps = vec!["/swapfile".into()];
        assert_eq!(failed(&f, &i), ["swap"]);
        assert!(
            failed(
                &f,
                &Intent {
                    swap_allowed: true,
                    ..intent()
                }
            )
            .is_empty()
        );
        let mut f = healthy();
        f.modules[1].1 = Feature::Missing;
        assert_eq!(failed(&f, &i), ["kernel"]);
        let mut f = healthy();
        f.kubelet_port_in_use = true;
        assert_eq!(failed(&f, &i), ["kubelet port"]);
        assert!(
            failed(
                &f,
                &Intent {
                    rejoin: true,
                    ..intent()
                }
            )
            .is_empty()
        );
        let mut f = healthy();
        f.kubelet_conf_server = Some("https://elsewhere:6443".into());
        assert_eq!(failed(&f, &i), ["kubelet.conf"]);
        f.kubelet_conf_server = Some("https://10.0.0.1:6443".into());
        assert!(failed(&f, &i).is_empty());
        for finding in check(
            &HostFacts {
                euid: Some(5),
                systemd: false,
                ..healthy()
            },
            &i,
        ) {
            assert_eq!(finding.ok, finding.fix.is_none(), "{finding:?}");
        }
    }

    #[test]
    fn the_local_and_the_cluster_checks_are_all_the_checks() {
        let mut f = healthy();
        f.euid = Some(1000);
        f.swaps = vec!["/swapfile".into()];
        f.kubelet_port_in_use = true;
        f.kubelet_conf_server = Some("https://elsewhere:6443".into());
        let names = |v: Vec<Finding>| v.into_iter().map(|x| x.check.as_str()).collect::<Vec<_>>();
        let local = names(check_local(&f, false));
        assert_eq!(
            local,
            ["root", "systemd", "kernel", "kernel", "kubelet port"]
        );
        let cluster = names(check_cluster(&f, &intent()));
        assert_eq!(cluster, ["swap", "kubelet.conf"]);
        let mut both = [local, cluster].concat();
        let mut all = names(check(&f, &intent()));
        both.sort();
        all.sort();
        assert_eq!(both, all);
        // a journaled join's kubelet may hold the port
        assert!(
            check_local(&f, true)
                .iter()
                .all(|x| x.ok || x.check == Check::Root)
        );
    }

    #[test]
    fn proc_swaps() {
        let t = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile                               file\t\t1048572\t\t0\t\t-2\n";
        assert_eq!(parse_swaps(t), ["/swapfile"]);
        assert!(parse_swaps("Filename Type Size Used Priority\n").is_empty());
    }
}
