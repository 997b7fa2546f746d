//! Applying a Plan through the journal, and undoing it.
//!
//! The order for every change is: record the prior state (and back the file
//! up), save the journal, make the change, mark it done, save again. So after
//! a crash anywhere, each path is either untouched or recorded, and a re-run
//! converges: a recorded path keeps its first prior state (the host as it was
//! before any join), and a file already holding the planned bytes is left
//! alone. Nothing here knows whether it runs on `/` or under `--root`.

use std::path::Path;

use crate::error::{Class, Error, Result};
use crate::host::Root;
use crate::host::fsops::{self, Found};
use crate::journal::{Entry, Journal, Kind, Prior, State, Step, Store, now};
use crate::plan::Plan;

/// Deterministic fault points, so tests can stop a run at every step: after
/// each journal save and after each change there is a numbered point.
/// Read from the environment only in debug builds (see settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Abort the process (no destructors, like SIGKILL) at this point.
    pub crash_at: Option<u32>,
    /// Fail with an I/O error at this point.
    pub fail_at: Option<u32>,
}

struct Points {
    faults: Faults,
    n: u32,
}

impl Points {
    fn tick(&mut self, what: &str, path: &Path) -> Result<()> {
        self.n += 1;
        if self.faults.crash_at == Some(self.n) {
            eprintln!(
                "attach-node: test fault: crashing at point {} ({what})",
                self.n
            );
            std::process::abort();
        }
        if self.faults.fail_at == Some(self.n) {
            return Err(Error::new(
                Class::HostChange,
                format!(
                    "cannot {what} {}: injected failure at point {}",
                    path.display(),
                    self.n
                ),
            ));
        }
        Ok(())
    }
}

/// What a join changed.
#[derive(Debug, Default)]
pub struct Applied {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub dirs_created: Vec<String>,
}

impl Applied {
    pub fn changed_anything(&self) -> bool {
        !self.written.is_empty() || !self.dirs_created.is_empty()
    }
}

fn host_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        Class::HostChange,
        format!("cannot {what} {}: {e}", path.display()),
    )
}

/// Applies the Plan's directories and files. On error the journal records
/// the failure (state `failed`) before the error is returned.
pub fn apply_files(
    root: &Root,
    store: &Store,
    journal: &mut Journal,
    plan: &Plan,
    faults: Faults,
) -> Result<Applied> {
    let mut points = Points { faults, n: 0 };
    let mut applied = Applied::default();
    let result: Result<()> = (|| {
        for (dir, mode) in &plan.dirs {
            ensure_dir(root, store, journal, dir, *mode, &mut points, &mut applied)?;
        }
        for file in &plan.files {
            let path = root.path(&file.path);
            let wanted = fsops::sha256_hex(&file.content);
            let found = fsops::inspect(&path).map_err(|e| host_err("inspect", &path, e))?;
            let in_place = matches!(&found, Found::File { sha256, mode, .. }
                if *sha256 == wanted && *mode == file.mode);
            if journal.entry(&file.path).is_none() {
                let index = journal.entries.len();
                let prior = store.back_up(&path, &found, index)?;
                journal.entries.push(Entry {
                    kind: Kind::File,
                    path: file.path.clone(),
                    prior,
                    written: Some(wanted.clone()),
                    mode: Some(file.mode),
                    done: false,
                    time: None,
                });
                store.save(journal)?;
                points.tick("record", &path)?;
            }
            let entry = journal.entry_mut(&file.path).expect("recorded above");
            if in_place {
                if !entry.done || entry.written.as_deref() != Some(wanted.as_str()) {
                    entry.done = true;
                    entry.written = Some(wanted);
                    entry.time.get_or_insert_with(now);
                    store.save(journal)?;
                }
                applied.unchanged.push(file.path.clone());
                continue;
            }
            if entry.written.as_deref() != Some(wanted.as_str()) || entry.done {
                // The plan changed since the last run (or the file drifted):
                // note what is about to be written before writing it.
                entry.written = Some(wanted.clone());
                entry.mode = Some(file.mode);
                entry.done = false;
                store.save(journal)?;
            }
            points.tick("write", &path)?;
            fsops::write_atomic(&path, &file.content, file.mode)
                .map_err(|e| host_err("write", &path, e))?;
            points.tick("mark written", &path)?;
            let entry = journal.entry_mut(&file.path).expect("recorded above");
            entry.done = true;
            entry.time = Some(now());
            store.save(journal)?;
            applied.written.push(file.path.clone());
        }
        Ok(())
    })();
    if let Err(e) = &result {
        journal.state = State::Failed;
        journal.error = Some(e.to_string());
        // Best effort: the error at hand is the one to report.
        let _ = store.save(journal);
    }
    result.map(|()| applied)
}

/// Creates `dir` and any missing parents, journaling each before it is made.
fn ensure_dir(
    root: &Root,
    store: &Store,
    journal: &mut Journal,
    dir: &str,
    mode: u32,
    points: &mut Points,
    applied: &mut Applied,
) -> Result<()> {
    // Parents first: every missing ancestor is ours to remove at reset.
    let mut chain = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p.filter(|d| *d != "/" && !d.is_empty()) {
        chain.push(d.to_owned());
        p = d.rfind('/').map(|i| if i == 0 { "/" } else { &d[..i] });
    }
    for (i, d) in chain.iter().rev().enumerate() {
        let path = root.path(d);
        let want = if i == chain.len() - 1 { mode } else { 0o755 };
        let found = match fsops::inspect(&path).map_err(|e| host_err("inspect", &path, e))? {
            // A directory reached through a symlink (say /var/lib/kubelet on
            // a data disk) is a directory; a dangling or looping link is the
            // kernel's to explain.
            Found::Symlink { .. } => {
                let target = root.path_followed(d);
                match std::fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => Found::Dir { mode: 0 },
                    // Still a link after resolving: a loop. Say ELOOP as the
                    // kernel would, without letting it follow anything.
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(host_err(
                            "follow the symlink",
                            &path,
                            std::io::Error::from_raw_os_error(40),
                        ));
                    }
                    Ok(_) => Found::Special,
                    Err(e) => {
                        return Err(host_err(
                            &format!("follow the symlink {} to", path.display()),
                            &target,
                            e,
                        ));
                    }
                }
            }
            other => other,
        };
        match found {
            Found::Dir { .. } => {
                if let Some(e) = journal.entry_mut(d).filter(|e| !e.done) {
                    // Created by a run that stopped before recording it:
                    // make sure the mode is the planned one.
                    std::fs::set_permissions(
                        &path,
                        std::os::unix::fs::PermissionsExt::from_mode(want),
                    )
                    .map_err(|err| host_err("set the mode of", &path, err))?;
                    e.done = true;
                    e.time = Some(now());
                    store.save(journal)?;
                }
                continue;
            }
            Found::Absent => {}
            _ => {
                return Err(Error::new(
                    Class::HostChange,
                    format!("{} exists and is not a directory", path.display()),
                ));
            }
        }
        if journal.entry(d).is_none() {
            journal.entries.push(Entry {
                kind: Kind::Dir,
                path: d.clone(),
                prior: Prior::Absent,
                written: None,
                mode: Some(want),
                done: false,
                time: None,
            });
            store.save(journal)?;
            points.tick("record", &path)?;
        }
        fsops::create_dir(&path, want).map_err(|e| host_err("create directory", &path, e))?;
        points.tick("mark created", &path)?;
        let e = journal.entry_mut(d).expect("recorded above");
        e.done = true;
        e.time = Some(now());
        store.save(journal)?;
        applied.dirs_created.push(d.clone());
    }
    Ok(())
}

/// What a reset did.
#[derive(Debug, Default)]
pub struct Undone {
    pub removed: Vec<String>,
    pub restored: Vec<String>,
    pub dirs_removed: Vec<String>,
    /// Changed since the join, left as they are (without --force).
    pub left_changed: Vec<String>,
    /// Directories that were not empty (something else put files there).
    pub left_not_empty: Vec<String>,
}

/// Replays the journal backwards. A file that differs from what the join
/// wrote was changed by someone since, and is left alone unless `force`.
pub fn undo(
    root: &Root,
    store: &Store,
    journal: &mut Journal,
    force: bool,
    faults: Faults,
) -> Result<Undone> {
    let mut points = Points { faults, n: 0 };
    let mut undone = Undone::default();
    journal.state = State::Resetting;
    journal.error = None;
    store.save(journal)?;
    let mut remaining = Vec::new();
    for entry in journal.entries.iter().rev() {
        let path = root.path(&entry.path);
        let found = fsops::inspect(&path).map_err(|e| host_err("inspect", &path, e))?;
        let keep = match entry.kind {
            Kind::Dir => {
                points.tick("remove directory", &path)?;
                if fsops::remove_dir_if_empty(&path).map_err(|e| host_err("remove", &path, e))? {
                    undone.dirs_removed.push(entry.path.clone());
                    false
                } else {
                    undone.left_not_empty.push(entry.path.clone());
                    true
                }
            }
            Kind::File => {
                if is_prior(&found, &entry.prior) {
                    false
                } else if force || is_ours(&found, entry) {
                    points.tick("restore", &path)?;
                    restore(store, &path, &entry.prior)?;
                    match entry.prior {
                        Prior::Absent => undone.removed.push(entry.path.clone()),
                        _ => undone.restored.push(entry.path.clone()),
                    }
                    false
                } else {
                    undone.left_changed.push(entry.path.clone());
                    true
                }
            }
        };
        if keep {
            remaining.push(entry.clone());
        }
    }
    remaining.reverse();
    journal.entries = remaining;
    journal.finished = Some(now());
    if journal.entries.is_empty() {
        journal.state = State::Reset;
        store.save(journal)?;
        store.drop_backups()?;
    } else {
        journal.state = State::Failed;
        journal.error = Some("reset left changed files in place; see `attach-node status`".into());
        store.save(journal)?;
    }
    Ok(undone)
}

/// Whether `found` is what the join wrote (or, for an entry whose write
/// never happened, still what was there before).
fn is_ours(found: &Found, entry: &Entry) -> bool {
    match (found, &entry.written) {
        (Found::File { sha256, .. }, Some(w)) => sha256 == w,
        _ => false,
    }
}

fn is_prior(found: &Found, prior: &Prior) -> bool {
    match (found, prior) {
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

fn restore(store: &Store, path: &Path, prior: &Prior) -> Result<()> {
    match prior {
        Prior::Absent => fsops::remove_file(path).map_err(|e| host_err("remove", path, e)),
        Prior::Symlink { target } => {
            fsops::symlink_atomic(path, target).map_err(|e| host_err("restore", path, e))
        }
        Prior::File {
            mode,
            uid,
            gid,
            backup,
            sha256,
        } => {
            let bytes = store.read_backup(backup)?;
            if fsops::sha256_hex(&bytes) != *sha256 {
                return Err(Error::new(
                    Class::HostChange,
                    format!(
                        "the backup of {} does not match the journal; not restoring it",
                        path.display()
                    ),
                ));
            }
            fsops::write_atomic_owned(path, &bytes, *mode, Some((*uid, *gid)))
                .map_err(|e| host_err("restore", path, e))
        }
    }
}

/// Records a step that is not a file change (an action, or why it was skipped).
pub fn record_step(store: &Store, journal: &mut Journal, name: &str, outcome: &str) -> Result<()> {
    let same = journal
        .steps
        .iter()
        .any(|s| s.name == name && s.outcome == outcome);
    if same {
        return Ok(());
    }
    journal.steps.retain(|s| s.name != name);
    journal.steps.push(Step {
        name: name.to_owned(),
        outcome: outcome.to_owned(),
        time: now(),
    });
    store.save(journal)
}
