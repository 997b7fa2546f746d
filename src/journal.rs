//! The write-ahead journal in `/var/lib/attach-node` (contract §6).
//!
//! Before each change to the host the journal records what was at the path
//! (absent, a directory it creates, or a file with its hash, mode, owner and
//! a byte-for-byte backup), and only then is the change made; afterwards the
//! entry is marked done. The journal is one JSON document rewritten
//! atomically, so a crash at any point leaves either the state before an
//! update or the state after it. A re-run of `join` resumes from it; `reset`
//! reads it backwards; `status` reports it. With `panic = "abort"` no
//! destructor runs, which is why nothing here relies on one.

use std::fs::{self, File};
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Class, Error, Result};
use crate::host::Root;
use crate::host::fsops::{self, Found};
use crate::plan::paths;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// A join is under way, or stopped half-way without recording why (a crash).
    Joining,
    Joined,
    /// A join or reset stopped on an error; the journal says which.
    Failed,
    Resetting,
    Reset,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Sysctl => "sysctl",
            Kind::Unit => "unit",
            Kind::KubeletOwned => "kubelet-owned",
        }
    }
}

/// What the kubelet makes for itself and join records (apply.rs).
const KUBELET_OWNED: &[&str] = &[paths::KUBELET_KUBECONFIG, "/var/lib/kubelet/pki"];
/// The units a plan restarts or starts (plan/render.rs).
const UNITS: &[&str] = &["containerd.service", "kubelet.service"];

/// An absolute path in plain form: no empty, `.` or `..` component, no
/// control character, not `/` itself.
fn is_plain_absolute(path: &str) -> bool {
    path.strip_prefix('/').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..")
            && !path.chars().any(char::is_control)
    })
}

/// A single file name, as `Store::back_up` makes them.
fn is_backup_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The files a plan writes: kubeadm's and containerd's, the sysctl and
/// module lists, a registry's `hosts.toml`, an artifact in /usr/local/bin.
fn plan_may_write_file(path: &str) -> bool {
    const FILES: &[&str] = &[
        paths::CA,
        paths::BOOTSTRAP_KUBECONFIG,
        paths::KUBELET_CONFIG,
        paths::KUBELET_FLAGS,
        paths::KUBELET_DROPIN,
        paths::KUBELET_UNIT,
        paths::CONTAINERD_CONFIG,
        paths::SYSCTL,
        paths::MODULES,
    ];
    let one_below = |dir: &str, tail: &str| {
        path.strip_prefix(dir)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.strip_suffix(tail))
            .is_some_and(|name| !name.is_empty() && !name.contains('/'))
    };
    is_plain_absolute(path)
        && (FILES.contains(&path)
            || one_below(paths::CONTAINERD_CERTS_D, "/hosts.toml")
            || one_below(crate::artifacts::INSTALL_DIR, ""))
}

/// The directories a plan creates, and the missing parents of those.
fn plan_may_create_dir(path: &str) -> bool {
    const DIRS: &[&str] = &[
        "/etc/kubernetes/pki",
        "/var/lib/kubelet",
        "/etc/systemd/system/kubelet.service.d",
        "/etc/containerd/certs.d",
        "/etc/sysctl.d",
        "/etc/modules-load.d",
        crate::artifacts::INSTALL_DIR,
    ];
    let ancestor_or_self = |dir: &str| {
        dir == path
            || dir
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let registry_dir = path
        .strip_prefix(paths::CONTAINERD_CERTS_D)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'));
    is_plain_absolute(path) && (DIRS.iter().any(|d| ancestor_or_self(d)) || registry_dir)
}

/// A sysctl key: dotted words, so that `/proc/sys/` + the key with dots
/// as slashes stays inside `/proc/sys`.
fn paths_sysctl_key(key: &str) -> bool {
    key.split('.').count() >= 2
        && key.split('.').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        })
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_sysctl_value(v: &str) -> bool {
    v.len() <= 256 && !v.chars().any(|c| c.is_control() && c != '\t')
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Joining => "joining",
            State::Joined => "joined",
            State::Failed => "failed",
            State::Resetting => "resetting",
            State::Reset => "reset",
        }
    }
}

/// What was at a path before attach-node first changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Prior {
    Absent,
    File {
        sha256: String,
        mode: u32,
        uid: u32,
        gid: u32,
        /// File name of the copy in `backups/`.
        backup: String,
    },
    Symlink {
        target: String,
    },
    /// A sysctl's value.
    Value {
        value: String,
    },
    /// Something was there that attach-node neither wrote nor backed up
    /// (the kubelet's own credentials from before): never removed.
    Present,
    /// A systemd unit's state.
    Unit {
        enabled: String,
        active: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    File,
    Dir,
    /// A live kernel setting; `path` is its key.
    Sysctl,
    /// A systemd unit join enabled, started or restarted; `path` is its name.
    Unit,
    /// A file or directory the kubelet creates (its credentials): not
    /// written by attach-node, but removed by reset when it was absent
    /// before the join.
    KubeletOwned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    pub path: String,
    pub prior: Prior,
    /// sha256 of what attach-node last wrote (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    pub done: bool,
    /// When the change was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// A file the join wrote and then removed itself once it had served
    /// (`bootstrap-kubelet.conf`, after the kubelet's TLS bootstrap, as
    /// kubeadm does): its absence is what the join left, not a change made
    /// since. Recorded before the removal; cleared when the file is
    /// written again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

impl Prior {
    /// Whether `found` is what was there before the join: the same
    /// content, mode and owner; the same link; nothing.
    pub fn matches(&self, found: &Found) -> bool {
        match (found, self) {
            (Found::Absent, Prior::Absent) => true,
            (
                Found::File {
                    sha256,
                    mode,
                    uid,
                    gid,
                },
                Prior::File {
                    sha256: s,
                    mode: m,
                    uid: u,
                    gid: g,
                    ..
                },
            ) => sha256 == s && mode == m && uid == u && gid == g,
            (Found::Symlink { target }, Prior::Symlink { target: t }) => target == t,
            _ => false,
        }
    }
}

impl Entry {
    /// The one judgement of "is this file as the join left it", for
    /// reset, status and a re-run alike: the bytes the join last wrote
    /// there, or nothing where the join removed its own file once it had
    /// served ([`Entry::retired`]).
    pub fn is_as_left(&self, found: &Found) -> bool {
        match (found, &self.written) {
            (Found::File { sha256, .. }, Some(w)) => sha256 == w,
            (Found::Absent, _) => self.retired,
            _ => false,
        }
    }

    /// An entry recorded before its change is made: nothing written yet.
    pub fn pending(kind: Kind, path: &str, prior: Prior) -> Entry {
        Entry {
            kind,
            path: path.to_owned(),
            prior,
            written: None,
            mode: None,
            done: false,
            time: None,
            retired: false,
        }
    }
}

/// A step that is not a file: an action, or a note such as "skipped (--root)".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub outcome: String,
    pub time: String,
    /// Listed but not run: an action on the running machine, under `--root`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub listed_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    pub version: u32,
    pub state: State,
    pub cluster: Option<String>,
    pub server: String,
    pub node_name: String,
    /// The control plane whose answer this join was made from, when there
    /// was one: the kept ClusterInfo serves a re-run through it, not
    /// through another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<String>,
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub entries: Vec<Entry>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

pub fn now() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl Journal {
    pub fn new(cluster: Option<String>, server: String, node_name: String) -> Self {
        Journal {
            version: VERSION,
            state: State::Joining,
            cluster,
            server,
            node_name,
            control_plane: None,
            started: now(),
            finished: None,
            error: None,
            entries: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Reads a journal from its bytes and refuses one that no join could
    /// have written. The journal decides what reset removes, restores and
    /// runs, so a crafted or corrupted one must not reach further than a
    /// real one: every path is one a plan can produce (under the root, no
    /// `..`), every sysctl a key under `/proc/sys`, every unit one a plan
    /// starts, every backup a single file name in `backups/`.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Journal, String> {
        let journal: Journal = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if journal.version != VERSION {
            return Err(format!(
                "it has version {}, and this attach-node reads version {VERSION}",
                journal.version
            ));
        }
        journal.validate()?;
        let mut journal = journal;
        // Journals written before steps said `listedOnly` said it only in
        // the outcome's text, always exactly this.
        for step in &mut journal.steps {
            step.listed_only |= step.outcome == "listed, not run (--root)";
        }
        Ok(journal)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, e) in self.entries.iter().enumerate() {
            let bad = |why: &str| {
                format!(
                    "entry {i} ({} {:?}) {why}",
                    e.kind.as_str(),
                    crate::error::printable(&e.path, 120)
                )
            };
            if !seen.insert(e.path.as_str()) {
                return Err(bad("appears twice"));
            }
            let path_ok = match e.kind {
                Kind::File => plan_may_write_file(&e.path),
                Kind::Dir => plan_may_create_dir(&e.path),
                Kind::KubeletOwned => KUBELET_OWNED.contains(&e.path.as_str()),
                Kind::Sysctl => paths_sysctl_key(&e.path),
                Kind::Unit => UNITS.contains(&e.path.as_str()),
            };
            if !path_ok {
                return Err(bad("is not something a join writes"));
            }
            let prior_ok = match (e.kind, &e.prior) {
                (Kind::File, Prior::Absent | Prior::Symlink { .. }) => true,
                (
                    Kind::File,
                    Prior::File {
                        backup,
                        mode,
                        sha256,
                        ..
                    },
                ) => is_backup_name(backup) && *mode <= 0o7777 && is_sha256_hex(sha256),
                (Kind::Dir, Prior::Absent) => true,
                (Kind::KubeletOwned, Prior::Absent | Prior::Present) => true,
                (Kind::Sysctl, Prior::Value { value }) => is_sysctl_value(value),
                (Kind::Unit, Prior::Unit { .. }) => true,
                _ => false,
            };
            if !prior_ok {
                return Err(bad("has a prior state no join records"));
            }
            if e.mode.is_some_and(|m| m > 0o7777) {
                return Err(bad("has an impossible mode"));
            }
            let written_ok = match e.kind {
                Kind::Sysctl => e.written.as_deref().is_none_or(is_sysctl_value),
                Kind::File => e.written.as_deref().is_none_or(is_sha256_hex),
                _ => e.written.is_none(),
            };
            if !written_ok {
                return Err(bad("has a value no join writes"));
            }
        }
        Ok(())
    }

    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    pub fn entry_mut(&mut self, path: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.path == path)
    }
}

/// `/var/lib/attach-node` under a root: the journal, its backups and the lock.
pub struct Store {
    dir: PathBuf,
    root: Root,
}

/// Held while a run may change the host; released when dropped or when the
/// process dies (an OS file lock, so a crash never leaves it stuck).
///
/// A join takes it before anything else, network included, so a run that
/// stops before recording anything must not leave the state directory
/// behind just for having locked it: when taking the lock created that
/// directory and no journal was written since, dropping the lock removes
/// the lock file and the directories it created (while still holding it;
/// [`Store::lock`] checks, after locking, that the file it locked is still
/// the one at the path, so a removed lock file is never shared).
pub struct Lock {
    _file: File,
    path: PathBuf,
    journal: PathBuf,
    /// Directories that taking the lock created, innermost first.
    created: Vec<PathBuf>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.created.is_empty() || self.journal.symlink_metadata().is_ok() {
            return;
        }
        // Best effort: nothing was recorded, so nothing depends on these.
        let _ = fsops::remove_file(&self.path);
        for dir in &self.created {
            if !matches!(fsops::remove_dir_if_empty(dir), Ok(true)) {
                break;
            }
        }
    }
}

fn io_error(what: impl std::fmt::Display, path: &std::path::Path, e: io::Error) -> Error {
    Error::new(Class::HostChange, format!("{what} {}: {e}", path.display()))
}

impl Store {
    pub fn new(root: &Root) -> Self {
        Store {
            dir: root.path(paths::STATE_DIR),
            root: root.clone(),
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.json")
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.dir.join("backups")
    }

    /// Creates the state directory (0700) if needed and takes the lock;
    /// another live run holding it is exit 8.
    pub fn lock(&self) -> Result<Lock> {
        use std::os::unix::fs::MetadataExt;
        let path = self.dir.join("lock");
        // A run that stops before writing a journal removes its lock file
        // (see [`Lock`]); locking a file that was removed meanwhile would
        // let two runs hold "the" lock, so the locked file must still be
        // the one at the path. Retried a few times, then reported.
        for _ in 0..10 {
            let created = missing_dirs(&self.dir);
            ensure_private_dir(&self.dir)?;
            let file = match fsops::open_nofollow(
                &path,
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true),
            ) {
                Ok(f) => f,
                // Removed by a run that just stopped: start again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if fsops::is_symlink_refusal(&e) => return Err(not_ours(&path, "file")),
                Err(e) => return Err(io_error("cannot open the lock file", &path, e)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Err(busy(&path)),
                Err(fs::TryLockError::Error(e)) => return Err(io_error("cannot lock", &path, e)),
            }
            let held = file
                .metadata()
                .map_err(|e| io_error("cannot inspect the lock file", &path, e))?;
            let same = fs::symlink_metadata(&path)
                .is_ok_and(|m| m.dev() == held.dev() && m.ino() == held.ino());
            if same {
                self.remove_temp_files();
                return Ok(Lock {
                    _file: file,
                    path,
                    journal: self.journal_path(),
                    created,
                });
            }
        }
        Err(Error::new(
            Class::Busy,
            format!(
                "{} keeps being replaced while attach-node tries to lock it",
                path.display()
            ),
        )
        .hint("another attach-node run is starting or stopping; run again"))
    }

    /// Removes what a run stopped in the middle of an atomic write left
    /// behind: the temp copies beside the journal, the backups, and every
    /// file the journal names (a copy of the bootstrap kubeconfig holds the
    /// token). Done under the lock, so by every run that changes the host
    /// (join, its re-runs, reset) and none that only looks. Best effort: a
    /// copy that cannot be removed is warned about, and stops nothing.
    fn remove_temp_files(&self) {
        let mut sweep = vec![(self.dir.clone(), None), (self.backups_dir(), None)];
        // The raw entries only: whether the journal is sound is for `load`
        // to say, with its own error, right after this.
        if let Ok(bytes) = fsops::read_nofollow(&self.journal_path())
            && let Ok(journal) = Journal::parse(&bytes)
        {
            for e in journal.entries.iter().filter(|e| e.kind == Kind::File) {
                if !e.path.starts_with('/') {
                    continue;
                }
                let path = self.root.path(&e.path);
                if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                    sweep.push((dir.to_owned(), Some(name.to_string_lossy().into_owned())));
                }
            }
        }
        for (dir, name) in sweep {
            // Never through a link (a linked `backups` is refused elsewhere).
            if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            match fsops::remove_our_temp_files(&dir, name.as_deref()) {
                Ok(removed) => {
                    for p in removed {
                        tracing::info!(
                            "removed {}, a temporary copy left by a run that stopped",
                            p.display()
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    "cannot remove temporary copies left in {} by a run that stopped: {e}",
                    dir.display()
                ),
            }
        }
    }

    /// The journal, if there is one. A journal that cannot be read is an
    /// error, not "none": guessing would risk undoing the wrong things.
    pub fn load(&self) -> Result<Option<Journal>> {
        refuse_link(&self.dir, "directory")?;
        let path = self.journal_path();
        let bytes = match fsops::read_nofollow(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if fsops::is_symlink_refusal(&e) => return Err(not_ours(&path, "file")),
            Err(e) => return Err(io_error("cannot read the journal", &path, e)),
        };
        let journal = Journal::parse(&bytes).map_err(|e| {
            Error::new(
                Class::HostChange,
                format!("the journal {} is damaged: {e}", path.display()),
            )
            .hint(
                "attach-node acts on nothing a journal names that a join could not have \
                 written; inspect the file by hand, or move it aside: `attach-node reset \
                 --force` without a journal falls back to a kubeadm-style cleanup",
            )
        })?;
        Ok(Some(journal))
    }

    /// Writes the journal atomically (0600: it names paths, not secrets, but
    /// it is nobody else's business).
    pub fn save(&self, journal: &Journal) -> Result<()> {
        // The rename below replaces a link at the journal's own name rather
        // than writing through it; a linked directory would still lead out.
        refuse_link(&self.dir, "directory")?;
        let path = self.journal_path();
        let mut bytes = serde_json::to_vec_pretty(journal).expect("plain data serialises");
        bytes.push(b'\n');
        fsops::write_atomic(&path, &bytes, 0o600)
            .map_err(|e| io_error("cannot write the journal", &path, e))
    }

    /// Copies a file into `backups/` (0600, durable) before it is replaced,
    /// and returns the prior state naming the copy.
    pub fn back_up(&self, path: &std::path::Path, found: &Found, index: usize) -> Result<Prior> {
        match found {
            Found::Absent => Ok(Prior::Absent),
            Found::Symlink { target } => Ok(Prior::Symlink {
                target: target.clone(),
            }),
            Found::File {
                sha256,
                mode,
                uid,
                gid,
            } => {
                refuse_link(&self.dir, "directory")?;
                let dir = self.backups_dir();
                ensure_private_dir(&dir)?;
                // Not through a link that replaced the file since it was
                // inspected: the hash check below would catch other content.
                let bytes =
                    fsops::read_nofollow(path).map_err(|e| io_error("cannot read", path, e))?;
                // Checked again here: the file may change between inspect and copy.
                if &fsops::sha256_hex(&bytes) != sha256 {
                    return Err(Error::new(
                        Class::HostChange,
                        format!(
                            "{} changed while it was being backed up; run again",
                            path.display()
                        ),
                    ));
                }
                let name = format!("{index:03}-{}", sanitize(path));
                let backup = dir.join(&name);
                fsops::write_atomic(&backup, &bytes, 0o600)
                    .map_err(|e| io_error("cannot write the backup", &backup, e))?;
                Ok(Prior::File {
                    sha256: sha256.clone(),
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                    backup: name,
                })
            }
            Found::Dir { .. } | Found::Special => Err(Error::new(
                Class::HostChange,
                format!(
                    "{} exists and is not a regular file; refusing to replace it",
                    path.display()
                ),
            )
            .hint("move it aside, then run again")),
        }
    }

    pub fn read_backup(&self, name: &str) -> Result<Vec<u8>> {
        refuse_link(&self.dir, "directory")?;
        refuse_link(&self.backups_dir(), "directory")?;
        let path = self.backups_dir().join(name);
        fsops::read_nofollow(&path).map_err(|e| {
            if fsops::is_symlink_refusal(&e) {
                not_ours(&path, "file")
            } else {
                io_error("cannot read the backup", &path, e)
            }
        })
    }

    fn kept_path(&self) -> PathBuf {
        self.dir.join("cluster-info.json")
    }

    /// The ClusterInfo an earlier join on this host received and kept, so
    /// that a re-run need not trade the openapi token again (it may have
    /// been single-use). It holds the bootstrap token: wiped when dropped.
    pub fn kept_cluster_info(&self) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        refuse_link(&self.dir, "directory")?;
        let path = self.kept_path();
        match fsops::read_nofollow(&path) {
            Ok(b) => Ok(Some(zeroize::Zeroizing::new(b))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if fsops::is_symlink_refusal(&e) => Err(not_ours(&path, "file")),
            Err(e) => Err(io_error("cannot read the kept ClusterInfo", &path, e)),
        }
    }

    /// Keeps the control plane's answer (0600, root's alone, like the
    /// bootstrap kubeconfig that holds the same token) until reset.
    pub fn keep_cluster_info(&self, raw: &[u8]) -> Result<()> {
        refuse_link(&self.dir, "directory")?;
        let path = self.kept_path();
        fsops::write_atomic(&path, raw, 0o600)
            .map_err(|e| io_error("cannot keep the ClusterInfo in", &path, e))
    }

    /// Deletes the backups once they have been restored, and the kept
    /// ClusterInfo: they may hold secrets (the host's earlier
    /// configuration, the bootstrap token).
    pub fn drop_kept(&self) -> Result<()> {
        let kept = self.kept_path();
        fsops::remove_file(&kept).map_err(|e| io_error("cannot remove", &kept, e))?;
        let dir = self.backups_dir();
        // A link there is not ours (backing up refuses one): neither it nor
        // what it points to is removed.
        refuse_link(&dir, "directory")?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("cannot remove the backups", &dir, e)),
        }
    }
}

/// Exit 8, naming the lock and what to do about it.
fn busy(path: &std::path::Path) -> Error {
    Error::new(
        Class::Busy,
        format!(
            "another attach-node run holds {}; wait for it to finish",
            path.display()
        ),
    )
    .hint(format!(
        "wait for the other run to end (a join waits up to --wait-timeout for its kubelet), \
         then run again; `ps -C attach-node -o pid,etime,args` shows it. The lock goes with \
         the process that holds it: there is no stale lock, so do not delete {}",
        path.display()
    ))
}

/// `dir` and its ancestors that do not exist yet, innermost first.
fn missing_dirs(dir: &std::path::Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && d.symlink_metadata().is_err())
        .map(PathBuf::from)
        .collect()
}

fn sanitize(path: &std::path::Path) -> String {
    path.to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Exit 6 for a path of attach-node's own state that is a symlink or not
/// the kind of thing it should be: following it could put the journal, the
/// lock or the backups (copies of the root's files, secrets among them)
/// anywhere, outside `--root` included.
fn not_ours(path: &std::path::Path, should_be: &str) -> Error {
    Error::new(
        Class::HostChange,
        format!(
            "{} is a symbolic link or not a {should_be}; attach-node keeps its state only in \
             a real {should_be} there and does not follow it",
            path.display()
        ),
    )
    .hint(format!(
        "move {} aside (attach-node did not make it), then run again; to keep the state \
         on another disk, mount it at {} instead of linking",
        path.display(),
        paths::STATE_DIR
    ))
}

/// Refuses a state path that is there but is a symlink, or not a directory
/// when `should_be` says one. Absent is fine.
fn refuse_link(path: &std::path::Path, should_be: &str) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() || (should_be == "directory") != m.is_dir() => {
            Err(not_ours(path, should_be))
        }
        _ => Ok(()),
    }
}

fn ensure_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    refuse_link(dir, "directory")?;
    if let Ok(meta) = fs::symlink_metadata(dir)
        && meta.is_dir()
    {
        // Made by someone else, or by a run stopped before its chmod: it
        // holds backups of secrets, so it is root's alone whatever it was.
        if meta.mode() & 0o777 != 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| io_error("cannot set the mode of", dir, e))?;
        }
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(|e| io_error("cannot create", parent, e))?;
    }
    match fsops::create_dir(dir, 0o700) {
        Ok(()) => Ok(()),
        // Made meanwhile: by another run, or by something else.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => refuse_link(dir, "directory"),
        Err(e) => Err(io_error("cannot create", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_with(entry: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "version": 1, "state": "joined", "cluster": null,
            "server": "https://x:6443", "nodeName": "n", "started": "2026-01-01T00:00:00Z",
            "entries": [entry],
        }))
        .unwrap()
    }

    fn file(path: &str, prior: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"kind": "file", "path": path, "prior": prior, "done": true})
    }

    #[test]
    fn what_a_join_writes_is_accepted() {
        let ok = [
            file(paths::KUBELET_CONFIG, serde_json::json!({"kind": "absent"})),
            file(
                paths::CONTAINERD_CONFIG,
                serde_json::json!({"kind": "file", "sha256": "ab".repeat(32), "mode": 0o600, "uid": 0,
                    "gid": 0, "backup": "005-_etc_containerd_config.toml"}),
            ),
            file(
                "/etc/containerd/certs.d/docker.io/hosts.toml",
                serde_json::json!({"kind": "absent"}),
            ),
            file(
                "/usr/local/bin/kubelet",
                serde_json::json!({"kind": "absent"}),
            ),
            serde_json::json!({"kind": "dir", "path": "/etc", "prior": {"kind": "absent"}, "done": true}),
            serde_json::json!({"kind": "dir", "path": "/etc/containerd/certs.d/registry.k8s.io",
                "prior": {"kind": "absent"}, "done": true}),
            serde_json::json!({"kind": "kubelet-owned", "path": "/var/lib/kubelet/pki",
                "prior": {"kind": "present"}, "done": true}),
            serde_json::json!({"kind": "sysctl", "path": "net.ipv4.ip_forward",
                "prior": {"kind": "value", "value": "0"}, "written": "1", "done": true}),
            serde_json::json!({"kind": "unit", "path": "kubelet.service",
                "prior": {"kind": "unit", "enabled": "disabled", "active": false}, "done": true}),
        ];
        for e in ok {
            Journal::parse(&journal_with(e.clone())).unwrap_or_else(|err| panic!("{e}: {err}"));
        }
    }

    /// Each of these would have made reset reach outside what a join
    /// touches: remove the whole root, write through `..`, restore a
    /// backup from anywhere, run systemctl on any unit, or write a file
    /// through a sysctl key that is a path.
    #[test]
    fn what_no_join_writes_is_refused() {
        let absent = serde_json::json!({"kind": "absent"});
        let bad = [
            file("/", absent.clone()),
            file("/etc/passwd", absent.clone()),
            file("/etc/kubernetes/../../etc/passwd", absent.clone()),
            file("etc/kubernetes/kubelet.conf", absent.clone()),
            file("/usr/local/bin/", absent.clone()),
            file("/usr/local/bin/a/b", absent.clone()),
            file("/etc/containerd/certs.d/../hosts.toml", absent.clone()),
            file(
                paths::KUBELET_CONFIG,
                serde_json::json!({"kind": "file", "sha256": "ab".repeat(32), "mode": 0o600, "uid": 0,
                    "gid": 0, "backup": "../../../etc/shadow"}),
            ),
            file(
                paths::KUBELET_CONFIG,
                serde_json::json!({"kind": "value", "value": "1"}),
            ),
            serde_json::json!({"kind": "file", "path": paths::KUBELET_CONFIG,
                "prior": {"kind": "absent"}, "written": "not a hash", "done": true}),
            serde_json::json!({"kind": "dir", "path": "/", "prior": {"kind": "absent"}, "done": true}),
            serde_json::json!({"kind": "dir", "path": "/home", "prior": {"kind": "absent"}, "done": true}),
            serde_json::json!({"kind": "dir", "path": "/var/lib/kubelet/..", "prior": {"kind": "absent"}, "done": true}),
            serde_json::json!({"kind": "kubelet-owned", "path": "/var/lib",
                "prior": {"kind": "absent"}, "done": true}),
            serde_json::json!({"kind": "sysctl", "path": "/etc/passwd",
                "prior": {"kind": "value", "value": "x"}, "done": true}),
            serde_json::json!({"kind": "sysctl", "path": "..net.ipv4",
                "prior": {"kind": "value", "value": "x"}, "done": true}),
            serde_json::json!({"kind": "sysctl", "path": "net.ipv4.ip_forward",
                "prior": {"kind": "value", "value": "1\n2"}, "done": true}),
            serde_json::json!({"kind": "unit", "path": "ssh.service",
                "prior": {"kind": "unit", "enabled": "enabled", "active": true}, "done": true}),
        ];
        for e in bad {
            assert!(Journal::parse(&journal_with(e.clone())).is_err(), "{e}");
        }
        let twice = serde_json::json!({
            "version": 1, "state": "joined", "cluster": null, "server": "s", "nodeName": "n",
            "started": "t", "entries": [
                file(paths::KUBELET_CONFIG, absent.clone()),
                file(paths::KUBELET_CONFIG, absent),
            ],
        });
        let err = Journal::parse(&serde_json::to_vec(&twice).unwrap()).unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
    }
}
