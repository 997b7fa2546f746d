//! `attach-node reset`: undo what join did, from its journal, backwards.
//! With no journal (a host joined by something else) it falls back to the
//! cleanup `kubeadm reset` does, and says so.

use serde_json::json;

use crate::apply;
use crate::cli::OutputFormat;
use crate::error::{Class, Error, Result};
use crate::host::Root;
use crate::host::fsops;
use crate::journal::{State, Store};
use crate::settings::ResetSettings;

/// What `kubeadm reset` removes on a worker: the kubeconfigs, and the
/// contents (not the directories) of these directories.
const KUBEADM_FILES: &[&str] = &[
    "/etc/kubernetes/bootstrap-kubelet.conf",
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/super-admin.conf",
    "/etc/kubernetes/controller-manager.conf",
    "/etc/kubernetes/scheduler.conf",
];
const KUBEADM_DIRS: &[&str] = &[
    "/etc/kubernetes/manifests",
    "/etc/kubernetes/pki",
    "/var/lib/kubelet",
];

pub fn run(s: &ResetSettings) -> Result<String> {
    let store = Store::new(&s.root);
    let _lock = if s.dry_run { None } else { Some(store.lock()?) };
    run_locked(s, &store)
}

/// The reset, for a caller that already holds the lock (uninstall, which
/// goes on to remove the state directory under the same lock); a dry run
/// needs none.
pub fn run_locked(s: &ResetSettings, store: &Store) -> Result<String> {
    let Some(mut journal) = store.load()? else {
        return fallback(&s.root, s.dry_run, s.force, s.output);
    };
    if journal.state == State::Reset {
        return Ok(say(
            s.output,
            "nothing to undo: this host was already reset",
            json!({"state": "reset"}),
        ));
    }
    if s.dry_run {
        // The very steps the real run takes (apply::undo runs this plan).
        let lines: Vec<String> = apply::undo_plan(&journal, s.root.live())
            .iter()
            .map(apply::UndoStep::describe)
            .collect();
        let text = format!(
            "Reset plan (dry run: nothing is changed):\n  {}\n",
            lines.join("\n  ")
        );
        return Ok(say(
            s.output,
            &text,
            json!({"dryRun": true, "steps": lines}),
        ));
    }
    let undone = apply::undo(&s.root, store, &mut journal, s.force, s.faults)?;
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut text = format!(
        "reset: {} removed, {} restored, {} removed\n",
        count(undone.removed.len(), "file", "files"),
        undone.restored.len(),
        count(undone.dirs_removed.len(), "directory", "directories"),
    );
    for d in &undone.left_not_empty {
        text.push_str(&format!(
            "  left {d}: not empty (what is in it was not put there by the join)\n"
        ));
    }
    for note in &undone.notes {
        text.push_str(&format!("  note: {note}\n"));
    }
    let report = json!({
        "state": journal.state.as_str(),
        "removed": undone.removed,
        "restored": undone.restored,
        "directoriesRemoved": undone.dirs_removed,
        "leftChanged": undone.left_changed,
        "leftNotEmpty": undone.left_not_empty,
        "notes": undone.notes,
    });
    if !undone.left_changed.is_empty() {
        return Err(Error::new(
            Class::HostChange,
            format!(
                "{text}these files changed since the join and were left as they are: {}",
                undone.left_changed.join(", ")
            ),
        )
        .hint("inspect them; `attach-node reset --force` restores them anyway"));
    }
    Ok(say(s.output, &text, report))
}

fn say(format: OutputFormat, text: &str, v: serde_json::Value) -> String {
    match format {
        OutputFormat::Text => text.to_owned(),
        OutputFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&v).expect("plain data")
        ),
    }
}

/// What a control plane has and a worker has not: a reset without a
/// journal refuses to run where any of these is (kubeadm asks first too;
/// `kubeadm reset` on that host is the tool).
const CONTROL_PLANE_MARKS: &[&str] = &[
    "/etc/kubernetes/manifests/kube-apiserver.yaml",
    "/etc/kubernetes/manifests/kube-controller-manager.yaml",
    "/etc/kubernetes/manifests/kube-scheduler.yaml",
    "/etc/kubernetes/manifests/etcd.yaml",
    "/etc/kubernetes/pki/ca.key",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/super-admin.conf",
];

fn fallback(root: &Root, dry_run: bool, force: bool, format: OutputFormat) -> Result<String> {
    let marks: Vec<&str> = CONTROL_PLANE_MARKS
        .iter()
        .copied()
        .filter(|m| root.path(m).symlink_metadata().is_ok())
        .collect();
    if !marks.is_empty() {
        return Err(Error::new(
            Class::Preflight,
            format!(
                "no attach-node journal here, and this is a control-plane node ({} found): \
                 attach-node reset removes nothing here",
                marks.join(", ")
            ),
        )
        .hint(
            "attach-node joins and resets worker nodes; on a control plane use `kubeadm reset`",
        ));
    }
    let mut gone = Vec::new();
    for f in KUBEADM_FILES {
        if root.path(f).symlink_metadata().is_ok() {
            gone.push((*f).to_owned());
        }
    }
    for d in KUBEADM_DIRS {
        // Followed inside the root: an image's link must not list (and
        // then name) what lies outside it.
        if let Ok(entries) = std::fs::read_dir(root.path_followed(d)) {
            for e in entries.flatten() {
                gone.push(format!("{d}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    gone.sort();
    let mut text = String::from(
        "no attach-node journal here: this host was not joined by attach-node (or its records are gone).\n\
         Falling back to the cleanup `kubeadm reset` does: nothing can be restored, only removed.\n",
    );
    if !dry_run && !force && !gone.is_empty() {
        let list: String = gone
            .iter()
            .map(|p| format!("\n  would remove {p}"))
            .collect();
        return Err(Error::usage(format!(
            "{}without a journal, reset can only remove, and nothing it removes can be put back:{list}",
            text
        ))
        .hint("check the list (`attach-node reset --dry-run` shows it too), then run `attach-node reset --force`"));
    }
    let mut left = Vec::new();
    if let Some(live) = root.live()
        && !dry_run
    {
        if crate::host::system::unit_state(live, "kubelet.service").active {
            // As kubeadm reset: the kubelet stops before its files go.
            crate::host::system::systemctl(live, &["stop", "kubelet.service"])
                .map_err(|e| Error::new(Class::HostChange, e))?;
            text.push_str("  stopped kubelet.service\n");
        }
        // Then, as kubeadm reset does, what is mounted under the kubelet's
        // directory (pods' volumes), deepest first; never lazily: a mount
        // still in use stays, and removal does not cross into it.
        let mounts =
            crate::host::system::live_mounts_below(live, "/var/lib/kubelet").map_err(|e| {
                Error::new(
                    Class::HostChange,
                    format!("cannot read the mount table: {e}"),
                )
            })?;
        for m in mounts {
            match crate::host::system::unmount(live, &m) {
                Ok(()) => text.push_str(&format!("  unmounted {m}\n")),
                Err(e) => text.push_str(&format!("  could not unmount {m}: {e}\n")),
            }
        }
    }
    if !dry_run {
        for p in &gone {
            let path = root.path(p);
            let mounted = fsops::remove_tree(&path).map_err(|e| {
                Error::new(
                    Class::HostChange,
                    format!("cannot remove {}: {e}", path.display()),
                )
            })?;
            left.extend(mounted.into_iter().map(|m| m.display().to_string()));
        }
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    if gone.is_empty() {
        text.push_str("nothing to remove.\n");
    }
    for p in &gone {
        text.push_str(&format!("  {verb} {p}\n"));
    }
    for m in &left {
        text.push_str(&format!(
            "  left {m}: another file system is mounted there, and nothing on it was removed\n"
        ));
    }
    Ok(say(
        format,
        &text,
        json!({"journal": false, "dryRun": dry_run, "removed": gone, "leftMounted": left}),
    ))
}
