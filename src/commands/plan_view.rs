//! `join --dry-run`: the Plan made readable. Each file with its mode and
//! what would happen to it (create, update with a diff against what is
//! there now, or unchanged), each directory, each action. Reads the host,
//! writes nothing.

use serde::Serialize;
use similar::TextDiff;

use crate::apply::action_name;
use crate::cli::OutputFormat;
use crate::error::{Class, Error, Result};
use crate::host::Root;
use crate::host::fsops::{self, Found};
use crate::plan::Plan;
use crate::preflight::Finding;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileView {
    path: String,
    mode: String,
    change: Change,
    purpose: &'static str,
    /// Unified diff against the current file; null for secrets, for a
    /// current file others may not read, and for non-text content.
    diff: Option<String>,
    /// Set instead of a diff when the current file is not world-readable:
    /// its lines may be secrets (a registry password in containerd's
    /// config), so only that it changes is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    private: Option<PrivateChange>,
}

/// What a join would do to a file; serialised by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Change {
    Create,
    /// A regular file with other content or mode.
    Update,
    /// Something else there (a link, say).
    Replace,
    Unchanged,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Replace => "replace",
            Change::Unchanged => "unchanged",
        }
    }

    /// The current file is backed up before it is replaced.
    fn replaces(self) -> bool {
        matches!(self, Change::Update | Change::Replace)
    }
}

/// A change shown without content: the size and hash of each side.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PrivateChange {
    /// The current file's mode, which is why its content is not shown.
    current_mode: String,
    current_sha256: String,
    current_size: usize,
    planned_sha256: String,
    planned_size: usize,
}

/// Whether a file of this mode may be shown to whoever reads the plan:
/// only if anyone on the host could read it anyway.
fn world_readable(mode: u32) -> bool {
    mode & 0o004 != 0
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanView<'a> {
    node: &'a str,
    cluster: Option<&'a str>,
    server: &'a str,
    root: String,
    files: Vec<FileView>,
    directories: Vec<(String, String)>,
    actions: Vec<String>,
    actions_run: bool,
    preflight: &'a [Finding],
    /// Where the kubelet config differs from kubeadm's choices (kept as
    /// set, as kubeadm keeps them).
    warnings: &'a [String],
}

/// What the plan says about the host and the configuration besides the
/// changes: the preflight findings and the kubelet config's warnings.
pub struct Notes<'a> {
    pub preflight: &'a [Finding],
    pub warnings: &'a [String],
}

pub fn render(
    root: &Root,
    plan: &Plan,
    notes: Notes<'_>,
    node: &str,
    cluster: Option<&str>,
    server: &str,
    format: OutputFormat,
) -> Result<String> {
    let mut files = Vec::new();
    for f in &plan.files {
        let path = root.path(&f.path);
        let found = fsops::inspect(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                Error::new(
                    Class::Preflight,
                    format!("cannot read {}: {e}", path.display()),
                )
                .hint("run as root: the plan compares against files only root may read")
            } else {
                Error::new(
                    Class::HostChange,
                    format!("cannot look at {}: {e}", path.display()),
                )
            }
        })?;
        let mut private = None;
        let (change, current) = match &found {
            Found::Absent => (Change::Create, None),
            found @ Found::File { .. } if f.is_in_place(found) => (Change::Unchanged, None),
            Found::File { sha256, mode, .. } => {
                if !world_readable(*mode) {
                    // Not even read: its size is all that is needed.
                    let size = std::fs::symlink_metadata(&path).map_or(0, |m| m.len() as usize);
                    private = Some(PrivateChange {
                        current_mode: format!("{mode:04o}"),
                        current_sha256: sha256.clone(),
                        current_size: size,
                        planned_sha256: fsops::sha256_hex(&f.content),
                        planned_size: f.content.len(),
                    });
                    (Change::Update, None)
                } else {
                    (Change::Update, fsops::read_all(&path).ok())
                }
            }
            _ => (Change::Replace, None),
        };
        let diff = if f.sensitive || change == Change::Unchanged || private.is_some() {
            None
        } else {
            let old = current
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            match std::str::from_utf8(&f.content) {
                Ok(new) => Some(
                    TextDiff::from_lines(old.as_ref(), new)
                        .unified_diff()
                        .context_radius(2)
                        .header(
                            if current.is_some() {
                                "current"
                            } else {
                                "/dev/null"
                            },
                            "planned",
                        )
                        .to_string(),
                ),
                Err(_) => None,
            }
        };
        files.push(FileView {
            path: f.path.clone(),
            mode: format!("{:04o}", f.mode),
            change,
            purpose: f.purpose,
            diff,
            private,
        });
    }
    let directories = plan
        .dirs
        .iter()
        .filter(|(d, _)| !root.path(d).is_dir())
        .map(|(d, m)| (d.clone(), format!("{m:04o}")))
        .collect();
    let view = PlanView {
        node,
        cluster,
        server,
        root: root.base().display().to_string(),
        files,
        directories,
        actions: plan.actions.iter().map(action_name).collect(),
        actions_run: root.is_host(),
        preflight: notes.preflight,
        warnings: notes.warnings,
    };
    Ok(match format {
        OutputFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&view).expect("plain data")
        ),
        OutputFormat::Text => text(&view, plan),
    })
}

fn text(v: &PlanView<'_>, plan: &Plan) -> String {
    let mut out = format!(
        "Plan (dry run: nothing is changed) for node {} of cluster {} ({})\nroot: {}\n\nfiles:\n",
        v.node,
        v.cluster.unwrap_or("-"),
        v.server,
        v.root
    );
    for (f, spec) in v.files.iter().zip(&plan.files) {
        out.push_str(&format!(
            "  {:<9} {} ({}): {}\n",
            f.change.as_str(),
            f.path,
            f.mode,
            f.purpose
        ));
        if spec.sensitive && f.change != Change::Unchanged {
            out.push_str("            contents not shown: it holds the bootstrap token\n");
        }
        if let Some(p) = &f.private {
            out.push_str(&format!(
                "            contents not shown: the current file ({}) is not readable by others\n\
                 \x20           current sha256:{} ({} bytes), planned sha256:{} ({} bytes)\n",
                p.current_mode, p.current_sha256, p.current_size, p.planned_sha256, p.planned_size
            ));
        }
        if f.change.replaces() {
            out.push_str("            the current file is backed up first; `attach-node reset` restores it\n");
        }
        if let Some(d) = &f.diff {
            for line in d.lines() {
                out.push_str("      ");
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if !v.directories.is_empty() {
        out.push_str("\ndirectories to create:\n");
        for (d, m) in &v.directories {
            out.push_str(&format!("  {d} ({m})\n"));
        }
    }
    out.push_str(if v.actions_run {
        "\nactions:\n"
    } else {
        "\nactions (listed, not run under --root):\n"
    });
    for a in &v.actions {
        out.push_str(&format!("  {a}\n"));
    }
    out.push_str(if v.actions_run {
        "\npreflight:\n"
    } else {
        "\npreflight (under --root, only the root's files are checked):\n"
    });
    for f in v.preflight {
        let mark = if f.ok { "ok" } else { "FAIL" };
        out.push_str(&format!("  {mark:<4} {:<13} {}\n", f.check, f.detail));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("                     fix: {fix}\n"));
        }
    }
    if !v.warnings.is_empty() {
        out.push_str("\nwarnings (the kubelet config, against kubeadm's choices):\n");
        for w in v.warnings {
            out.push_str(&format!("  {w}\n"));
        }
    }
    out
}
