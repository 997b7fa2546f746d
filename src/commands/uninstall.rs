//! `attach-node uninstall`: reset, then remove attach-node itself, so the
//! host carries nothing of it. Unlike k3s's uninstall script, it stops at
//! the first failure of the reset instead of deleting itself half-way:
//! while anything is left to undo, the binary and its records stay.
//!
//! What a package (.deb or .rpm, packaging/build-packages.sh) installed
//! belongs to the package manager: removing it here would leave dpkg's or
//! rpm's database listing files that are gone (`dpkg -V` failing, a
//! reinstall needed to get them back). Those files are kept and named, with
//! the command that removes them.

use crate::commands::reset;
use crate::error::{Class, Error, Result};
use crate::host::{Root, fsops, system};
use crate::journal::{State, Store};
use crate::plan::paths;
use crate::settings::ResetSettings;

/// What install.sh, cloud-init and the first-boot unit put on a host, and
/// the user's own enabling of the unit (packaged or not).
const INSTALLED: &[&str] = &[
    "/usr/local/bin/attach-node",
    "/etc/systemd/system/attach-node-firstboot.service",
    "/etc/systemd/system/multi-user.target.wants/attach-node-firstboot.service",
    // It may hold the token the first boot used.
    "/etc/attach-node",
];

/// What only the attach-node package installs (its man pages and
/// completions too, which uninstall never looked for). The package manager
/// owns these: uninstall keeps them.
const PACKAGED: &[&str] = &[
    "/usr/bin/attach-node",
    "/usr/lib/systemd/system/attach-node-firstboot.service",
];

/// How to remove the attach-node package on this root: with the system's
/// own package front end (apt first: a Debian host may carry rpm too).
/// dpkg's and rpm's databases are private to them, so they are not read.
fn package_removal(root: &Root) -> &'static str {
    const FRONT_ENDS: &[(&str, &str)] = &[
        ("/usr/bin/apt", "apt remove attach-node"),
        ("/usr/bin/dnf", "dnf remove attach-node"),
        ("/usr/bin/yum", "yum remove attach-node"),
        ("/usr/bin/zypper", "zypper remove attach-node"),
        ("/usr/bin/rpm", "rpm -e attach-node"),
        ("/usr/bin/dpkg", "dpkg -r attach-node"),
    ];
    FRONT_ENDS
        .iter()
        .find(|(tool, _)| root.path(tool).symlink_metadata().is_ok())
        .map_or("the package manager to remove attach-node", |(_, cmd)| cmd)
}

pub fn run(s: &ResetSettings) -> Result<String> {
    let store = Store::new(&s.root);
    // Looked at before the lock is taken: taking it makes the directory.
    let had_state = s.root.path(paths::STATE_DIR).symlink_metadata().is_ok();
    // Held until the state directory is gone, so that no join or reset
    // starts on records that are being removed (a run that holds it makes
    // this exit 8, with nothing removed).
    let _lock = if s.dry_run { None } else { Some(store.lock()?) };
    let mut out = match store.load()? {
        Some(j) if j.state == State::Reset => String::new(),
        Some(_) => reset::run_locked(s, &store)?,
        None => String::from("nothing was joined by attach-node here\n"),
    };
    let verb = if s.dry_run { "would remove" } else { "removed" };
    let mut targets: Vec<&str> = INSTALLED.to_vec();
    if had_state {
        targets.push(paths::STATE_DIR);
    }
    let mut unit_removed = false;
    for t in targets {
        let path = s.root.path(t);
        if path.symlink_metadata().is_err() {
            continue;
        }
        if !s.dry_run {
            let mounted = fsops::remove_tree(&path).map_err(|e| {
                Error::new(
                    Class::HostChange,
                    format!("cannot remove {}: {e}", path.display()),
                )
            })?;
            for m in mounted {
                out.push_str(&format!(
                    "left {}: another file system is mounted there\n",
                    m.display()
                ));
            }
        }
        unit_removed |= t.ends_with(".service");
        out.push_str(&format!("{verb} {t}\n"));
    }
    if let Some(live) = s.root.live()
        && unit_removed
        && !s.dry_run
    {
        system::systemctl(live, &["daemon-reload"])
            .map_err(|e| Error::new(Class::HostChange, e))?;
    }
    let packaged: Vec<&str> = PACKAGED
        .iter()
        .copied()
        .filter(|p| s.root.path(p).symlink_metadata().is_ok())
        .collect();
    let removal = package_removal(&s.root);
    for p in &packaged {
        let verb = if s.dry_run { "would keep" } else { "kept" };
        out.push_str(&format!(
            "{verb} {p}: installed by the package manager: use {removal}\n"
        ));
    }
    out.push_str(match (s.dry_run, packaged.is_empty()) {
        (true, _) => "uninstall plan (dry run: nothing is changed)\n",
        (false, true) => "attach-node is uninstalled\n",
        (false, false) => "attach-node is uninstalled, but for the files of its package\n",
    });
    Ok(out)
}
