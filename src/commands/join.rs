//! `attach-node join`: discover and verify the cluster, read what the
//! cluster says about kubelets and this node, decide the Plan, then show it
//! (`--dry-run`) or apply it through the journal.

use std::time::Instant;

use serde_json::{Map, Value};

use crate::apply;
use crate::clusterinfo::{ClusterInfo, NameSource};
use crate::commands::discover::{Resolved, discover_cluster};
use crate::commands::plan_view;
use crate::error::{Class, Error, Result};
use crate::host::Root;
use crate::journal::{Journal, State, Store, now};
use crate::kube::{Api, NodeState};
use crate::labels;
use crate::plan::{self, NodeInputs};
use crate::preflight;
use crate::settings::{JoinSettings, NodeOverrides};
use crate::wait;

pub fn run(s: &JoinSettings) -> Result<String> {
    // Everything that can fail without the network comes first: the
    // openapi token may be single-use, and trading it for ClusterInfo
    // spends it, so a join that then stopped on something local (the lock,
    // a preflight check, a bad flag) would leave nothing to retry with.
    let hostname = hostname(&s.root, s.node.name.is_some())?;
    // With --node-name or --node-name-mode, ClusterInfo has no say.
    let named = if s.node.name.is_some() || s.node.name_source.is_some() {
        Some(node_name(s, None, &hostname)?)
    } else {
        None
    };
    // The user's labels and taints are the top layer: whatever is wrong
    // with one of them is wrong with the merged set too.
    labels::merge_labels(&[(s.node.labels_layer(), s.node.labels.clone())])?;
    labels::merge_taints(&[(s.node.taints_layer(), s.node.taints.clone())])?;
    let store = Store::new(&s.root);
    // A damaged journal stops the join here too; it is read again under
    // the lock.
    let journaled = store.load()?.is_some_and(|j| j.state != State::Reset);
    let facts = preflight::gather(&s.root);
    if s.root.is_host() && !s.dry_run {
        refuse_failed(preflight::check_local(&facts, journaled))?;
    }
    // Held until the end, the wait for the kubelet included. A dry run
    // changes nothing, so it takes no lock (and creates no state directory).
    let _lock = if s.dry_run { None } else { Some(store.lock()?) };

    let deadline = Instant::now() + s.discover.timeout;
    // A re-run through the same control plane resumes with what that
    // control plane answered before (the token may have been single-use).
    let kept = match (&s.discover.source, store.load()?) {
        (crate::settings::Source::ControlPlane(cp), Some(j))
            if j.state != State::Reset && j.control_plane.as_deref() == Some(cp.url.as_str()) =>
        {
            store.kept_cluster_info()?
        }
        _ => None,
    };
    let Resolved {
        cluster_info: ci,
        traded,
        source,
        trusted,
    } = discover_cluster(&s.discover, deadline, kept.as_deref().map(Vec::as_slice))?;
    let node_name = match named {
        Some(n) => n,
        None => node_name(s, ci.as_ref(), &hostname)?,
    };

    let api = Api::new(&trusted, &source.token)?;
    let cluster_kubelet_config = api.kubelet_config(deadline)?;
    // A Ready Node of our name that this host itself joined as is no reason
    // to stop: re-running a join must be safe.
    let server = trusted.verified.server.base_url();
    let ours = store
        .load()?
        .is_some_and(|j| j.state != State::Reset && j.node_name == node_name && j.server == server);
    match api.node(&node_name, deadline)? {
        NodeState::Ready if ours => {
            tracing::info!("the Ready Node {node_name:?} is this host, joined before")
        }
        NodeState::Ready if !s.force => {
            return Err(Error::new(
                Class::Preflight,
                format!("a Node named {node_name:?} already exists in the cluster and is Ready"),
            )
            .hint("delete that Node (kubectl delete node), choose another --node-name, or pass --force if this host is that node"));
        }
        NodeState::Ready => {
            tracing::warn!("a Ready Node named {node_name:?} exists; joining anyway (--force)")
        }
        NodeState::NotReady => tracing::info!(
            "a Node named {node_name:?} exists but is not Ready; this host takes the name back"
        ),
        NodeState::Absent | NodeState::Unknown => {}
    }

    let extra_ca = match &s.discover.source {
        crate::settings::Source::ControlPlane(cp) => cp.extra_ca_pem.as_deref(),
        crate::settings::Source::Direct => None,
    };
    let artifacts = crate::artifacts::fetch_all(
        ci.as_ref()
            .map(|c| c.artifacts.as_slice())
            .unwrap_or_default(),
        extra_ca,
        deadline,
    )?;
    let inputs = node_inputs(
        s,
        ci.as_ref(),
        &trusted,
        &source.token,
        node_name,
        hostname,
        cluster_kubelet_config,
        artifacts,
    )?;
    // Kept as set, as kubeadm keeps them, but said: a join and its dry run
    // both show them.
    let (mut plan, warnings) = plan::render::render_with_warnings(&inputs)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if wait::kubelet_has_credentials(&s.root) && ours {
        // The kubelet has its own credentials from this join: handing it
        // the bootstrap token again would only put a secret back on disk.
        plan.files
            .retain(|f| f.path != plan::paths::BOOTSTRAP_KUBECONFIG);
    }
    let cluster = source.cluster_name.clone();

    if s.dry_run {
        let findings = preflight_findings(&s.root, &facts, &plan, &server, ours, true);
        return plan_view::render(
            &s.root,
            &plan,
            plan_view::Notes {
                preflight: &findings,
                warnings: &warnings,
            },
            &inputs.node_name,
            cluster.as_deref(),
            &server,
            s.discover.output,
        );
    }
    if s.root.is_host() {
        // The local checks passed before the token was traded; these are
        // the ones that needed the cluster.
        refuse_failed(preflight_findings(
            &s.root, &facts, &plan, &server, ours, false,
        ))?;
    }
    let (out, mut journal) = apply_plan(
        s,
        &store,
        &plan,
        cluster,
        server.clone(),
        &inputs.node_name,
        traded.as_deref().map(Vec::as_slice),
    )?;
    if let Some(live) = s.root.live() {
        let cas: Vec<_> = trusted.verified.cas.iter().map(|c| c.der.clone()).collect();
        wait::wait_for_node(
            live,
            &s.root,
            &server,
            &cas,
            &inputs.node_name,
            s.wait,
            s.wait_timeout,
            &source.token,
            &mut || {
                apply::retire_file(
                    &s.root,
                    &store,
                    &mut journal,
                    plan::paths::BOOTSTRAP_KUBECONFIG,
                )
            },
        )?;
    }
    Ok(out)
}

/// Exit 9 listing every failed check with its fix, or nothing.
fn refuse_failed(findings: Vec<preflight::Finding>) -> Result<()> {
    let failed: Vec<String> = findings
        .into_iter()
        .filter(|f| !f.ok)
        .map(|f| {
            format!(
                "{}: {} (fix: {})",
                f.check,
                f.detail,
                f.fix.unwrap_or_default()
            )
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Class::Preflight,
        format!("this host is not ready to join:\n  {}", failed.join("\n  ")),
    ))
}

fn apply_plan(
    s: &JoinSettings,
    store: &Store,
    plan: &plan::Plan,
    cluster: Option<String>,
    server: String,
    node_name: &str,
    traded: Option<&[u8]>,
) -> Result<(String, Journal)> {
    let mut journal = match store.load()? {
        Some(j) if j.state != State::Reset => {
            if j.server != server || j.node_name != node_name {
                return Err(Error::new(
                    Class::Preflight,
                    format!(
                        "this host is already joined (state {}) as node {:?} to {}",
                        j.state.as_str(),
                        j.node_name,
                        j.server
                    ),
                )
                .hint("run `attach-node reset` first to undo that join"));
            }
            match j.state {
                State::Joining => tracing::info!(
                    "resuming the join started {}, which stopped half-way",
                    j.started
                ),
                State::Failed => tracing::info!(
                    "resuming the join started {}, which failed: {}",
                    j.started,
                    j.error.as_deref().unwrap_or("no error recorded")
                ),
                State::Resetting => tracing::info!(
                    "joining again over the reset that stopped half-way (the join was started {})",
                    j.started
                ),
                State::Joined | State::Reset => {}
            }
            j
        }
        _ => {
            let mut j = Journal::new(cluster, server, node_name.to_owned());
            if let crate::settings::Source::ControlPlane(cp) = &s.discover.source {
                j.control_plane = Some(cp.url.clone());
            }
            store.save(&j)?;
            j
        }
    };
    // Kept once there is a journal (reset then removes it): from here on a
    // re-run of this join, after a crash or a failure, resumes with it
    // instead of trading a token that may have been single-use.
    if let Some(raw) = traded {
        store.keep_cluster_info(raw)?;
    }
    let was_joined = journal.state == State::Joined;
    if !was_joined {
        journal.state = State::Joining;
        journal.error = None;
    }
    let applied = apply::apply_files(&s.root, store, &mut journal, plan, s.faults)?;
    if let Err(e) = apply::apply_actions(&s.root, store, &mut journal, plan, &applied.written) {
        journal.state = State::Failed;
        journal.error = Some(e.to_string());
        let _ = store.save(&journal);
        return Err(e);
    }
    if !was_joined || applied.changed_anything() {
        journal.state = State::Joined;
        journal.finished = Some(now());
        journal.error = None;
        store.save(&journal)?;
    }
    let summary = if applied.changed_anything() {
        format!(
            "joined: node {node_name} prepared under {}: {}, {} unchanged, {}\n",
            s.root.base().display(),
            count(applied.written.len(), "file written", "files written"),
            applied.unchanged.len(),
            count(
                applied.dirs_created.len(),
                "directory created",
                "directories created"
            ),
        )
    } else {
        format!("already joined: node {node_name}, nothing changed\n")
    };
    let out = match s.discover.output {
        crate::cli::OutputFormat::Text => summary,
        crate::cli::OutputFormat::Json => {
            let v = serde_json::json!({
                "state": journal.state.as_str(),
                "node": node_name,
                "written": applied.written,
                "unchanged": applied.unchanged,
                "directoriesCreated": applied.dirs_created,
            });
            format!(
                "{}\n",
                serde_json::to_string_pretty(&v).expect("plain data")
            )
        }
    };
    Ok((out, journal))
}

/// Preflight as it applies: on the live host every check (`all`, for a dry
/// run) or the ones that needed the cluster (the others ran before the
/// token was traded); under --root only what the root's files say (the
/// running machine is not the node).
fn preflight_findings(
    root: &Root,
    facts: &preflight::HostFacts,
    plan: &plan::Plan,
    server: &str,
    rejoin: bool,
    all: bool,
) -> Vec<preflight::Finding> {
    let swap_allowed = plan
        .actions
        .iter()
        .any(|a| matches!(a, plan::Action::CheckSwap { swap_allowed: true }));
    let intent = preflight::Intent {
        server,
        swap_allowed,
        rejoin,
    };
    if !root.is_host() {
        return preflight::check_cluster(facts, &intent)
            .into_iter()
            .filter(|f| f.check == preflight::Check::KubeletConf)
            .collect();
    }
    if all {
        preflight::check(facts, &intent)
    } else {
        preflight::check_cluster(facts, &intent)
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The host's name, lowercased, as the kubelet would register it: under
/// `--root`, the root's /etc/hostname if it has one.
fn hostname(root: &Root, explicit: bool) -> Result<String> {
    // A link there (`/etc/hostname -> /etc/hostname.real`, say) is
    // followed as the booted image would follow it, inside the root.
    let file = root.path_followed("/etc/hostname");
    if explicit && !root.is_host() && !file.is_file() {
        // --node-name given; the hostname only decides --hostname-override.
        return Ok(String::new());
    }
    let raw = if root.is_host() {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_err(|e| Error::internal(format!("cannot read this host's name: {e}")))?
    } else {
        // Not the build machine's name: the root will boot as some other host.
        let bytes = crate::host::fsops::read_nofollow(&file).map_err(|e| {
            Error::usage(format!(
                "the root {} has no readable /etc/hostname ({e}), so its node name is unknown",
                root.base().display()
            ))
            .hint("pass --node-name")
        })?;
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(raw.trim().to_ascii_lowercase())
}

fn node_name(s: &JoinSettings, ci: Option<&ClusterInfo>, hostname: &str) -> Result<String> {
    let name = match &s.node.name {
        Some(n) => n.clone(),
        None => {
            let source = s
                .node
                .name_source
                .or(ci.map(|c| c.node.name_source))
                .unwrap_or(NameSource::Hostname);
            match source {
                NameSource::Hostname => hostname.to_owned(),
                other => {
                    // Named as the user gave it (--node-name-mode nodeip),
                    // or as ClusterInfo did.
                    let said = match (&s.node.name_source, &s.node.name_source_origin) {
                        (Some(_), Some(origin)) => origin.clone(),
                        _ => format!("ClusterInfo's node.nameSource {}", other.as_str()),
                    };
                    return Err(Error::usage(format!(
                        "{said} needs cloud instance metadata, which this version cannot read"
                    ))
                    .hint("pass --node-name"));
                }
            }
        }
    };
    if !crate::names::is_dns1123_subdomain(&name) {
        return Err(Error::usage(format!(
            "the node name \"{}\" is not a valid Kubernetes node name (lowercase DNS subdomain, at most 253 characters)",
            crate::error::printable(&name, 80)
        ))
        .hint("pass --node-name"));
    }
    Ok(name)
}

/// Whether a cluster autoscaler manages this node: `--ess` (or the config
/// file's `ess`) over ClusterInfo's `autoscaler`.
fn autoscaler(node: &NodeOverrides, ci: Option<&ClusterInfo>) -> bool {
    node.autoscaler
        .or(ci.map(|c| c.autoscaler))
        .unwrap_or(false)
}

/// The node's labels, lowest layer first: an autoscaler node's
/// [`labels::AUTOSCALER_LABEL`], ClusterInfo's `node.labels`, the user's
/// (a label of the same key in either wins over the autoscaler's).
fn node_labels(node: &NodeOverrides, ci: Option<&ClusterInfo>) -> Result<labels::Labels> {
    let (key, value) = labels::AUTOSCALER_LABEL;
    let implied = if autoscaler(node, ci) {
        vec![(key.to_owned(), value.to_owned())]
    } else {
        Vec::new()
    };
    let ci_labels: Vec<(String, String)> = ci
        .map(|c| {
            c.node
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    labels::merge_labels(&[
        (
            "the autoscaler node label (--ess, ClusterInfo autoscaler)",
            implied,
        ),
        ("ClusterInfo node.labels", ci_labels),
        (node.labels_layer(), node.labels.clone()),
    ])
}

#[allow(clippy::too_many_arguments)]
fn node_inputs(
    s: &JoinSettings,
    ci: Option<&ClusterInfo>,
    trusted: &crate::discovery::TrustedCluster,
    token: &crate::secret::BootstrapToken,
    node_name: String,
    hostname: String,
    cluster_kubelet_config: Option<String>,
    artifacts: Vec<(String, Vec<u8>)>,
) -> Result<NodeInputs> {
    let mut kubelet_overrides: Vec<(String, Map<String, Value>)> = Vec::new();
    if let Some(ci) = ci {
        let mut m = Map::new();
        if !ci.cluster_dns.is_empty() {
            m.insert(
                "clusterDNS".into(),
                Value::from(
                    ci.cluster_dns
                        .iter()
                        .map(|ip| ip.to_string())
                        .collect::<Vec<_>>(),
                ),
            );
        }
        if let Some(d) = &ci.cluster_domain {
            m.insert("clusterDomain".into(), Value::from(d.clone()));
        }
        if !m.is_empty() {
            kubelet_overrides.push(("ClusterInfo clusterDNS/clusterDomain".into(), m));
        }
        if let Some(k) = &ci.node.kubelet_config {
            kubelet_overrides.push(("ClusterInfo node.kubeletConfig".into(), k.clone()));
        }
    }
    if let Some(k) = &s.node.kubelet_config {
        kubelet_overrides.push(("--node-config".into(), k.clone()));
    }
    if let Some(dns) = &s.node.cluster_dns {
        let mut m = Map::new();
        m.insert(
            "clusterDNS".into(),
            Value::from(dns.iter().map(|ip| ip.to_string()).collect::<Vec<_>>()),
        );
        kubelet_overrides.push(("--cluster-dns".into(), m));
    }
    let labels = node_labels(&s.node, ci)?;
    let taints = labels::merge_taints(&[
        (
            "ClusterInfo node.taints",
            ci.map(|c| c.node.taints.clone()).unwrap_or_default(),
        ),
        (s.node.taints_layer(), s.node.taints.clone()),
    ])?;
    Ok(NodeInputs {
        node_name,
        hostname,
        server: trusted.verified.server.base_url(),
        ca_pem: trusted.verified.ca_pem.clone(),
        token: token.clone(),
        cluster_kubelet_config,
        kubelet_overrides,
        labels,
        taints,
        provider_id: ci.and_then(|c| c.node.provider_id.clone()),
        runtime: ci.map(|c| c.runtime.clone()).unwrap_or_default(),
        systemd_resolved: s.root.path("/run/systemd/resolve/resolv.conf").is_file(),
        artifacts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(extra: &str) -> ClusterInfo {
        let doc = format!(
            r#"{{"version":1,"apiServerEndpoints":["https://10.0.0.1:6443"],
               "bootstrapToken":"abcdef.0123456789abcdef"{extra}}}"#
        );
        crate::clusterinfo::parse(doc.as_bytes()).unwrap()
    }

    fn flag_value(node: &NodeOverrides, ci: Option<&ClusterInfo>) -> String {
        node_labels(node, ci).unwrap().to_flag_value()
    }

    #[test]
    fn an_autoscaler_node_gets_acks_label_and_the_user_has_the_last_word() {
        let plain = NodeOverrides::default();
        let ess = NodeOverrides {
            autoscaler: Some(true),
            ..Default::default()
        };
        let not_ess = NodeOverrides {
            autoscaler: Some(false),
            ..Default::default()
        };
        assert_eq!(flag_value(&plain, None), "");
        assert_eq!(flag_value(&plain, Some(&ci(""))), "");
        assert_eq!(flag_value(&ess, None), "k8s.aliyun.com=true");
        // ClusterInfo says so, and the user does not say otherwise
        let scaled = ci(r#","autoscaler":true"#);
        assert_eq!(flag_value(&plain, Some(&scaled)), "k8s.aliyun.com=true");
        // --ess (or the config file's ess: true) wins over ClusterInfo
        assert_eq!(
            flag_value(&ess, Some(&ci(r#","autoscaler":false"#))),
            "k8s.aliyun.com=true"
        );
        // and the config file's ess: false too
        assert_eq!(flag_value(&not_ess, Some(&scaled)), "");
        // a label of the same key wins: ClusterInfo's, then the user's
        let labelled = ci(r#","autoscaler":true,"node":{"labels":{"k8s.aliyun.com":"cluster"}}"#);
        assert_eq!(
            flag_value(&plain, Some(&labelled)),
            "k8s.aliyun.com=cluster"
        );
        let user = NodeOverrides {
            autoscaler: Some(true),
            labels: vec![("k8s.aliyun.com".into(), "false".into())],
            ..Default::default()
        };
        assert_eq!(flag_value(&user, Some(&labelled)), "k8s.aliyun.com=false");
    }
}
