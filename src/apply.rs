//! Applying a Plan through the journal, and undoing it.
//!
//! The order for every change is: record the prior state (and back the file
//! up), save the journal, make the change, mark it done, save again. So after
//! a crash anywhere, each path is either untouched or recorded, and a re-run
//! converges: a recorded path keeps its first prior state (the host as it was
//! before any join), and a file already holding the planned bytes is left
//! alone. Files are handled the same on `/` and under `--root`; services
//! and kernel settings only through a [`Live`], which exists only when the
//! root is the running machine.

use std::path::Path;

use crate::error::{Class, Error, Result};
use crate::host::fsops::{self, Found};
use crate::host::system;
use crate::host::{Live, Root};
use crate::journal::{Entry, Journal, Kind, Prior, State, Step, Store, now};
use crate::plan::Plan;
use crate::preflight::Feature;

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
            let in_place = file.is_in_place(&found);
            if journal.entry(&file.path).is_none() {
                let index = journal.entries.len();
                let prior = store.back_up(&path, &found, index)?;
                journal.entries.push(Entry {
                    written: Some(wanted.clone()),
                    mode: Some(file.mode),
                    ..Entry::pending(Kind::File, &file.path, prior)
                });
                store.save(journal)?;
                points.tick("record", &path)?;
            }
            let entry = journal.entry_mut(&file.path).expect("recorded above");
            if in_place {
                if !entry.done || entry.written.as_deref() != Some(wanted.as_str()) || entry.retired
                {
                    entry.done = true;
                    entry.written = Some(wanted);
                    entry.retired = false;
                    entry.time.get_or_insert_with(now);
                    store.save(journal)?;
                }
                applied.unchanged.push(file.path.clone());
                continue;
            }
            if entry.written.as_deref() != Some(wanted.as_str()) || entry.done || entry.retired {
                // The plan changed since the last run (or the file drifted,
                // or was retired and is wanted again): note what is about
                // to be written before writing it.
                entry.written = Some(wanted.clone());
                entry.mode = Some(file.mode);
                entry.done = false;
                entry.retired = false;
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
                mode: Some(want),
                ..Entry::pending(Kind::Dir, d, Prior::Absent)
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

/// Removes a file the join wrote, now that it has served (the bootstrap
/// kubeconfig once the kubelet has its own credentials), recording that
/// first: status, a re-run and reset then take its absence for what the
/// join left, not for a change made since. Absent already is fine.
pub fn retire_file(
    root: &Root,
    store: &Store,
    journal: &mut Journal,
    host_path: &str,
) -> Result<()> {
    if let Some(entry) = journal.entry_mut(host_path).filter(|e| !e.retired) {
        entry.retired = true;
        store.save(journal)?;
    }
    let path = root.path(host_path);
    fsops::remove_file(&path).map_err(|e| host_err("remove", &path, e))
}

/// What a reset did.
#[derive(Debug, Default)]
pub struct Undone {
    pub removed: Vec<String>,
    pub restored: Vec<String>,
    pub dirs_removed: Vec<String>,
    /// Units stopped or disabled.
    pub units: Vec<String>,
    /// What is worth saying about a step that needed nothing done (a unit
    /// that is not installed, so not running).
    pub notes: Vec<String>,
    /// Changed since the join, left as they are (without --force).
    pub left_changed: Vec<String>,
    /// Directories that were not empty (something else put files there).
    pub left_not_empty: Vec<String>,
}

/// One step of a reset, decided from the journal and the kind of root
/// before anything is done ([`undo_plan`]): `reset --dry-run` prints these,
/// and [`undo`] runs exactly these, so the two cannot drift apart. Steps on
/// the running machine's services and kernel settings carry a [`Live`], so
/// they exist only when the root is the running machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoStep {
    /// Stop a unit the join started (unless it ran before) and disable it
    /// (unless it was enabled before).
    StopUnit {
        live: Live,
        unit: String,
        enabled: String,
        active: bool,
    },
    /// Set a sysctl back, if it still holds what the join set (or `force`).
    RestoreSysctl {
        live: Live,
        key: String,
        prior: String,
        written: String,
    },
    /// A step of the running machine's (a unit, a sysctl) named by the
    /// journal of a root that is not the running machine (`--root`): it is
    /// listed, never run.
    NotRun { step: String },
    /// Remove what the kubelet created at this path (nothing was there
    /// before the join).
    RemoveKubeletOwned { path: String },
    /// Leave the kubelet's path alone: something was there before the join.
    KeepKubeletOwned { path: String },
    /// Remove a directory the join created, if it is empty.
    RemoveDir { path: String },
    /// Put a file back as it was before the join (restore its backup, or
    /// remove it), if it is still as the join left it (or `force`).
    RestoreFile { entry: Entry },
    /// Reload systemd, then restart the units that ran before the join, on
    /// their restored configuration.
    ReloadAndRestart { live: Live, restart: Vec<String> },
}

impl UndoStep {
    /// How the step reads in a dry run.
    pub fn describe(&self) -> String {
        match self {
            UndoStep::StopUnit {
                unit,
                enabled,
                active,
                ..
            } => unit_line(unit, enabled, *active),
            UndoStep::RestoreSysctl { key, prior, .. } => sysctl_line(key, prior),
            UndoStep::NotRun { step } => format!("{step}: listed, not run (--root)"),
            UndoStep::RemoveKubeletOwned { path } => format!("remove the kubelet's {path}"),
            UndoStep::KeepKubeletOwned { path } => format!("keep {path} (it was there before)"),
            UndoStep::RemoveDir { path } => format!("remove directory {path} if empty"),
            UndoStep::RestoreFile { entry } => match entry.prior {
                Prior::Absent => format!("remove {}", entry.path),
                _ => format!("restore {} from its backup", entry.path),
            },
            UndoStep::ReloadAndRestart { restart, .. } if restart.is_empty() => {
                "systemctl daemon-reload".to_owned()
            }
            UndoStep::ReloadAndRestart { restart, .. } => format!(
                "systemctl daemon-reload, then restart {} (running before the join)",
                restart.join(", ")
            ),
        }
    }
}

fn unit_line(unit: &str, enabled: &str, active: bool) -> String {
    format!(
        "put {unit} back as it was ({enabled}, {})",
        if active { "running" } else { "stopped" }
    )
}

fn sysctl_line(key: &str, prior: &str) -> String {
    format!("set sysctl {key} back to {prior}")
}

/// The reset of `journal`, as data. Services come first and last: units
/// the join started are stopped before anything is taken away from under
/// them, and units that ran before the join (containerd) are restarted at
/// the end. Between them, every other entry backwards, the latest change
/// first. `live` is the running machine when the root is it; otherwise its
/// units and sysctls are [`UndoStep::NotRun`]. Pure.
pub fn undo_plan(journal: &Journal, live: Option<Live>) -> Vec<UndoStep> {
    let mut steps = Vec::new();
    let units: Vec<(&str, &str, bool)> = journal
        .entries
        .iter()
        .filter_map(|e| match (&e.kind, &e.prior) {
            (Kind::Unit, Prior::Unit { enabled, active }) => {
                Some((e.path.as_str(), enabled.as_str(), *active))
            }
            _ => None,
        })
        .collect();
    for &(unit, enabled, active) in units.iter().rev() {
        steps.push(match live {
            Some(live) => UndoStep::StopUnit {
                live,
                unit: unit.to_owned(),
                enabled: enabled.to_owned(),
                active,
            },
            None => UndoStep::NotRun {
                step: unit_line(unit, enabled, active),
            },
        });
    }
    for e in journal.entries.iter().rev() {
        let step = match (e.kind, &e.prior) {
            (Kind::Sysctl, Prior::Value { value }) => {
                let Some(written) = &e.written else { continue };
                match live {
                    Some(live) => UndoStep::RestoreSysctl {
                        live,
                        key: e.path.clone(),
                        prior: value.clone(),
                        written: written.clone(),
                    },
                    None => UndoStep::NotRun {
                        step: sysctl_line(&e.path, value),
                    },
                }
            }
            // Credentials the kubelet made for itself; something there
            // before the join (prior Present) is not ours to remove.
            (Kind::KubeletOwned, Prior::Absent) => UndoStep::RemoveKubeletOwned {
                path: e.path.clone(),
            },
            (Kind::KubeletOwned, _) => UndoStep::KeepKubeletOwned {
                path: e.path.clone(),
            },
            (Kind::Dir, _) => UndoStep::RemoveDir {
                path: e.path.clone(),
            },
            (Kind::File, _) => UndoStep::RestoreFile { entry: e.clone() },
            _ => continue,
        };
        steps.push(step);
    }
    if let Some(live) = live
        && !units.is_empty()
    {
        steps.push(UndoStep::ReloadAndRestart {
            live,
            restart: units
                .iter()
                .filter(|(_, _, active)| *active)
                .map(|(unit, _, _)| (*unit).to_owned())
                .collect(),
        });
    }
    steps
}

/// Runs the reset of [`undo_plan`]. A file that differs from what the join
/// wrote was changed by someone since, and is left alone unless `force`;
/// such files (and the directories holding them) stay in the journal,
/// everything else leaves it.
pub fn undo(
    root: &Root,
    store: &Store,
    journal: &mut Journal,
    force: bool,
    faults: Faults,
) -> Result<Undone> {
    let mut points = Points { faults, n: 0 };
    let mut undone = Undone::default();
    let steps = undo_plan(journal, root.live());
    journal.state = State::Resetting;
    journal.error = None;
    store.save(journal)?;

    // Paths whose entries stay in the journal, latest first.
    let mut kept: Vec<String> = Vec::new();
    for step in steps {
        match step {
            UndoStep::StopUnit {
                live,
                unit,
                enabled,
                active,
            } => {
                points.tick("stop", Path::new(&unit))?;
                match stop_unit(live, &unit, &enabled, active)? {
                    Some(note) => undone.notes.push(note),
                    None => undone.units.push(unit),
                }
            }
            UndoStep::NotRun { step } => undone.notes.push(not_run_under_root(&step)),
            UndoStep::RestoreSysctl {
                live,
                key,
                prior,
                written,
            } => {
                let now = system::read_sysctl(live, &key).unwrap_or_default();
                if now == written || force {
                    points.tick("restore sysctl", Path::new(&key))?;
                    system::write_sysctl(live, &key, &prior).map_err(|e| {
                        Error::new(
                            Class::HostChange,
                            format!("cannot restore sysctl {key}: {e}"),
                        )
                    })?;
                    undone.restored.push(key);
                } else if now != prior {
                    undone.left_changed.push(key);
                }
            }
            UndoStep::RemoveKubeletOwned { path: host_path } => {
                let path = root.path(&host_path);
                points.tick("remove", &path)?;
                let mounted =
                    fsops::remove_tree(&path).map_err(|e| host_err("remove", &path, e))?;
                for m in mounted {
                    undone.notes.push(format!(
                        "left {}: another file system is mounted there",
                        m.display()
                    ));
                }
                undone.removed.push(host_path);
            }
            UndoStep::KeepKubeletOwned { .. } => {}
            UndoStep::RemoveDir { path: host_path } => {
                let path = root.path(&host_path);
                points.tick("remove directory", &path)?;
                if fsops::remove_dir_if_empty(&path).map_err(|e| host_err("remove", &path, e))? {
                    undone.dirs_removed.push(host_path);
                } else {
                    // Kept while something of the join's is still in it (a
                    // file changed since, left for `--force`); what else is
                    // there (the kubelet's own state, say) is not ours, and
                    // does not keep the reset from ending.
                    let inside = format!("{host_path}/");
                    if kept.iter().any(|k| k.starts_with(&inside)) {
                        kept.push(host_path.clone());
                    }
                    undone.left_not_empty.push(host_path);
                }
            }
            UndoStep::RestoreFile { entry } => {
                let path = root.path(&entry.path);
                let found = fsops::inspect(&path).map_err(|e| host_err("inspect", &path, e))?;
                if entry.prior.matches(&found) {
                    // Already as it was before the join.
                    continue;
                }
                if force || entry.is_as_left(&found) {
                    points.tick("restore", &path)?;
                    restore(store, &path, &entry.prior)?;
                    match entry.prior {
                        Prior::Absent => undone.removed.push(entry.path),
                        _ => undone.restored.push(entry.path),
                    }
                } else {
                    undone.left_changed.push(entry.path.clone());
                    kept.push(entry.path);
                }
            }
            UndoStep::ReloadAndRestart { live, restart } => {
                system::systemctl(live, &["daemon-reload"])
                    .map_err(|e| Error::new(Class::HostChange, e))?;
                for unit in &restart {
                    system::systemctl(live, &["restart", unit])
                        .map_err(|e| Error::new(Class::HostChange, e))?;
                }
            }
        }
    }
    journal.entries.retain(|e| kept.contains(&e.path));
    journal.finished = Some(now());
    if journal.entries.is_empty() {
        journal.state = State::Reset;
        store.save(journal)?;
        store.drop_kept()?;
    } else {
        journal.state = State::Failed;
        journal.error = Some("reset left changed files in place; see `attach-node status`".into());
        store.save(journal)?;
    }
    Ok(undone)
}

/// What reset says of a step that belongs to the running machine, not to
/// the root it was asked to reset.
fn not_run_under_root(step: &str) -> String {
    format!(
        "{step}: listed, not run (--root: services and kernel settings are the running \
         machine's, not the root's)"
    )
}

/// Stops and disables a unit the join started, unless it ran (or was
/// enabled) before. A unit systemd does not know (a join that failed to
/// enable a kubelet that is not installed) is neither running nor enabled:
/// that counts as done, and the note returned says so.
fn stop_unit(
    live: Live,
    unit: &str,
    enabled_before: &str,
    active_before: bool,
) -> Result<Option<String>> {
    let systemctl = |verb: &str| match system::systemctl(live, &[verb, unit]) {
        Ok(_) => Ok(None),
        Err(_) if system::unit_missing(live, unit) => {
            let note = format!(
                "{unit} is not installed (systemd has no such unit loaded), so it is not \
                 running: nothing to {verb}"
            );
            tracing::info!("{note}");
            Ok(Some(note))
        }
        Err(e) => Err(Error::new(Class::HostChange, e)),
    };
    if !active_before && let Some(note) = systemctl("stop")? {
        return Ok(Some(note));
    }
    if enabled_before != "enabled" && system::unit_state(live, unit).enabled == "enabled" {
        return systemctl("disable");
    }
    Ok(None)
}

/// Runs the Plan's actions on the live host, journaling what each one
/// changes before it changes it. Under `--root` they are listed, not run.
pub fn apply_actions(
    root: &Root,
    store: &Store,
    journal: &mut Journal,
    plan: &Plan,
    written: &[String],
) -> Result<()> {
    use crate::plan::Action;
    let Some(live) = root.live() else {
        for action in &plan.actions {
            record(
                store,
                journal,
                Step {
                    name: action_name(action),
                    outcome: "listed, not run (--root)".to_owned(),
                    time: now(),
                    listed_only: true,
                },
            )?;
        }
        return Ok(());
    };
    let fail = |e: String| Error::new(Class::HostChange, e);
    for action in &plan.actions {
        let name = action_name(action);
        let outcome = match action {
            Action::CheckSwap { .. } => "checked by preflight".to_owned(),
            Action::LoadModules { modules } => {
                let mut said = Vec::new();
                for m in modules {
                    match crate::preflight::kernel_feature(m) {
                        Feature::Loaded => said.push(format!("{m} loaded")),
                        Feature::BuiltIn => said.push(format!("{m} built in")),
                        Feature::Loadable => {
                            system::run(live, "modprobe", &[m]).map_err(fail)?;
                            said.push(format!("{m} loaded now"));
                        }
                        Feature::Missing => {
                            return Err(Error::new(
                                Class::HostChange,
                                format!("kernel feature {m} is neither built in nor loadable"),
                            ));
                        }
                    }
                }
                said.join(", ")
            }
            Action::ApplySysctls { file } => {
                let text = plan
                    .file(file)
                    .map(|f| String::from_utf8_lossy(&f.content).into_owned());
                for (key, value) in system::parse_sysctl_file(&text.unwrap_or_default()) {
                    if journal.entry(&key).is_none() {
                        let prior = system::read_sysctl(live, &key)
                            .map_err(|e| fail(format!("cannot read sysctl {key}: {e}")))?;
                        journal.entries.push(Entry {
                            written: Some(value.clone()),
                            ..Entry::pending(Kind::Sysctl, &key, Prior::Value { value: prior })
                        });
                        store.save(journal)?;
                    }
                    system::write_sysctl(live, &key, &value)
                        .map_err(|e| fail(format!("cannot set sysctl {key} = {value}: {e}")))?;
                    let e = journal.entry_mut(&key).expect("recorded above");
                    if !e.done {
                        e.done = true;
                        e.time = Some(now());
                        store.save(journal)?;
                    }
                }
                "applied".to_owned()
            }
            Action::DaemonReload => {
                system::systemctl(live, &["daemon-reload"]).map_err(fail)?;
                "done".to_owned()
            }
            Action::RestartIfChanged { unit, when_changed } => {
                if when_changed.iter().any(|p| written.contains(p)) {
                    record_unit(live, store, journal, unit)?;
                    system::systemctl(live, &["restart", unit]).map_err(fail)?;
                    "restarted: its configuration changed".to_owned()
                } else {
                    "configuration unchanged: not restarted".to_owned()
                }
            }
            Action::EnableAndStart {
                unit,
                kubelet_owned,
                restart_when_changed,
            } => {
                for p in kubelet_owned {
                    record_kubelet_owned(root, store, journal, p)?;
                }
                record_unit(live, store, journal, unit)?;
                system::systemctl(live, &["enable", unit]).map_err(|e| {
                    fail(e).hint(format!(
                        "is the kubelet installed? `systemctl status {unit}` says whether systemd \
                         knows the unit; install the kubelet (its package brings {unit}), then \
                         run the join again, or undo it with `attach-node reset`"
                    ))
                })?;
                let changed = restart_when_changed.iter().any(|p| written.contains(p));
                if changed || !system::unit_state(live, unit).active {
                    system::systemctl(live, &["restart", unit]).map_err(|e| {
                        fail(e).hint(format!(
                            "is the kubelet installed? `journalctl -u {unit}` says why it did not start"
                        ))
                    })?;
                    "enabled and started".to_owned()
                } else {
                    "running, configuration unchanged".to_owned()
                }
            }
        };
        record_step(store, journal, &name, &outcome)?;
    }
    Ok(())
}

fn record_unit(live: Live, store: &Store, journal: &mut Journal, unit: &str) -> Result<()> {
    if journal.entry(unit).is_some() {
        return Ok(());
    }
    let state = system::unit_state(live, unit);
    let prior = Prior::Unit {
        enabled: state.enabled,
        active: state.active,
    };
    journal.entries.push(Entry {
        done: true,
        time: Some(now()),
        ..Entry::pending(Kind::Unit, unit, prior)
    });
    store.save(journal)
}

fn record_kubelet_owned(
    root: &Root,
    store: &Store,
    journal: &mut Journal,
    path: &str,
) -> Result<()> {
    if journal.entry(path).is_some() {
        return Ok(());
    }
    let there = root.path(path).symlink_metadata().is_ok();
    // Something there already is not ours to remove.
    let prior = if there { Prior::Present } else { Prior::Absent };
    journal.entries.push(Entry {
        done: true,
        time: Some(now()),
        ..Entry::pending(Kind::KubeletOwned, path, prior)
    });
    store.save(journal)
}

/// How an action reads in the plan, the journal and status.
pub fn action_name(a: &crate::plan::Action) -> String {
    use crate::plan::Action;
    match a {
        Action::LoadModules { modules } => format!("load kernel modules {}", modules.join(", ")),
        Action::ApplySysctls { file } => format!("apply sysctls from {file}"),
        Action::CheckSwap { .. } => "check that swap is off".into(),
        Action::DaemonReload => "systemctl daemon-reload".into(),
        Action::RestartIfChanged { unit, .. } => {
            format!("restart {unit} if its configuration changed")
        }
        Action::EnableAndStart { unit, .. } => format!("enable and start {unit}"),
    }
}

fn restore(store: &Store, path: &Path, prior: &Prior) -> Result<()> {
    match prior {
        Prior::Value { .. } | Prior::Unit { .. } | Prior::Present => Ok(()),
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
    record(
        store,
        journal,
        Step {
            name: name.to_owned(),
            outcome: outcome.to_owned(),
            time: now(),
            listed_only: false,
        },
    )
}

/// Records `step` in place of an earlier step of its name; the same step
/// again (a re-run) changes nothing.
fn record(store: &Store, journal: &mut Journal, step: Step) -> Result<()> {
    let same = journal.steps.iter().any(|s| {
        s.name == step.name && s.outcome == step.outcome && s.listed_only == step.listed_only
    });
    if same {
        return Ok(());
    }
    journal.steps.retain(|s| s.name != step.name);
    journal.steps.push(step);
    store.save(journal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FileSpec;

    const BOOTSTRAP: &str = crate::plan::paths::BOOTSTRAP_KUBECONFIG;

    /// A journal as a live join leaves it: a directory, files, the
    /// kubelet's credentials, a sysctl, containerd (running before) and
    /// the kubelet (not running before).
    fn live_journal() -> Journal {
        let unit = |name: &str, active: bool| Entry {
            done: true,
            ..Entry::pending(
                Kind::Unit,
                name,
                Prior::Unit {
                    enabled: if active { "enabled" } else { "disabled" }.into(),
                    active,
                },
            )
        };
        Journal {
            entries: vec![
                Entry::pending(Kind::Dir, "/etc/kubernetes", Prior::Absent),
                Entry {
                    written: Some("ab".repeat(32)),
                    ..Entry::pending(Kind::File, BOOTSTRAP, Prior::Absent)
                },
                Entry {
                    written: Some("1".into()),
                    ..Entry::pending(
                        Kind::Sysctl,
                        "net.ipv4.ip_forward",
                        Prior::Value { value: "0".into() },
                    )
                },
                unit("containerd.service", true),
                Entry::pending(Kind::KubeletOwned, "/var/lib/kubelet/pki", Prior::Present),
                Entry::pending(
                    Kind::KubeletOwned,
                    "/etc/kubernetes/kubelet.conf",
                    Prior::Absent,
                ),
                unit("kubelet.service", false),
            ],
            ..Journal::new(None, "https://x:6443".into(), "n".into())
        }
    }

    /// The reset is data: units stopped first (latest first), then every
    /// other entry backwards, then systemd reloaded and what ran before
    /// restarted; under `--root` the running machine's units and sysctls
    /// are listed as not run, and nothing restarts.
    #[test]
    fn the_undo_plan_is_the_journal_backwards_with_services_around_it() {
        let journal = live_journal();
        let live = Root::host().live().unwrap();
        let plan = undo_plan(&journal, Some(live));
        let lines: Vec<String> = plan.iter().map(UndoStep::describe).collect();
        assert_eq!(
            lines,
            [
                "put kubelet.service back as it was (disabled, stopped)",
                "put containerd.service back as it was (enabled, running)",
                "remove the kubelet's /etc/kubernetes/kubelet.conf",
                "keep /var/lib/kubelet/pki (it was there before)",
                "set sysctl net.ipv4.ip_forward back to 0",
                "remove /etc/kubernetes/bootstrap-kubelet.conf",
                "remove directory /etc/kubernetes if empty",
                "systemctl daemon-reload, then restart containerd.service (running before the join)",
            ]
        );
        assert!(matches!(plan[0], UndoStep::StopUnit { .. }));
        assert!(matches!(plan[4], UndoStep::RestoreSysctl { .. }));

        let under_root = undo_plan(&journal, None);
        let lines: Vec<String> = under_root.iter().map(UndoStep::describe).collect();
        assert_eq!(
            lines,
            [
                "put kubelet.service back as it was (disabled, stopped): listed, not run (--root)",
                "put containerd.service back as it was (enabled, running): listed, not run (--root)",
                "remove the kubelet's /etc/kubernetes/kubelet.conf",
                "keep /var/lib/kubelet/pki (it was there before)",
                "set sysctl net.ipv4.ip_forward back to 0: listed, not run (--root)",
                "remove /etc/kubernetes/bootstrap-kubelet.conf",
                "remove directory /etc/kubernetes if empty",
            ]
        );
        assert!(
            under_root.iter().all(|s| !matches!(
                s,
                UndoStep::StopUnit { .. }
                    | UndoStep::RestoreSysctl { .. }
                    | UndoStep::ReloadAndRestart { .. }
            )),
            "{under_root:?}"
        );
    }

    fn plan() -> Plan {
        Plan {
            files: vec![FileSpec {
                path: BOOTSTRAP.into(),
                mode: 0o600,
                content: b"written by the join\n".to_vec().into(),
                sensitive: true,
                purpose: "test",
            }],
            dirs: vec![("/etc/kubernetes".into(), 0o755)],
            actions: vec![],
        }
    }

    /// A file the join retired is the join's own absence: reset restores
    /// what was there before it (here, a file of the host's), and a later
    /// join that wants it again writes it and forgets the retirement.
    #[test]
    fn a_retired_file_is_restored_by_reset_and_rewritten_by_a_join() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        std::fs::create_dir_all(dir.path().join("etc/kubernetes")).unwrap();
        let path = root.path(BOOTSTRAP);
        std::fs::write(&path, "the host's own\n").unwrap();
        let store = Store::new(&root);
        let mut journal = Journal::new(None, "https://x:6443".into(), "n".into());
        apply_files(&root, &store, &mut journal, &plan(), Faults::default()).unwrap();
        retire_file(&root, &store, &mut journal, BOOTSTRAP).unwrap();
        assert!(!path.exists());
        let saved = store.load().unwrap().unwrap();
        assert!(saved.entry(BOOTSTRAP).unwrap().retired, "recorded");
        // retiring again (a re-run's wait) changes nothing
        retire_file(&root, &store, &mut journal, BOOTSTRAP).unwrap();

        let mut again = journal.clone();
        let applied = apply_files(&root, &store, &mut again, &plan(), Faults::default()).unwrap();
        assert_eq!(applied.written, [BOOTSTRAP]);
        assert!(!again.entry(BOOTSTRAP).unwrap().retired, "written again");
        retire_file(&root, &store, &mut again, BOOTSTRAP).unwrap();

        let undone = undo(&root, &store, &mut again, false, Faults::default()).unwrap();
        assert!(undone.left_changed.is_empty(), "{undone:?}");
        assert_eq!(undone.restored, [BOOTSTRAP]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the host's own\n");
        assert_eq!(again.state, State::Reset);
    }
}
