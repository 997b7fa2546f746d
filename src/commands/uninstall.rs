//! `attach-node uninstall`: reset, then remove attach-node itself, so the
//! host carries nothing of it. Unlike k3s's uninstall script, it stops at
//! the first failure of the reset instead of deleting itself half-way:
//! while anything is left to undo, the binary and its records stay.

use crate::commands::reset;
use crate::error::{Class, Error, Result};
use crate::host::{fsops, system};
use crate::journal::{State, Store};
use crate::plan::paths;
use crate::settings::ResetSettings;

/// What install.sh, the packages and the first-boot unit put on a host.
const INSTALLED: &[&str] = &[
    "/usr/local/bin/attach-node",
    "/etc/systemd/system/attach-node-firstboot.service",
    "/etc/systemd/system/multi-user.target.wants/attach-node-firstboot.service",
    // It may hold the token the first boot used.
    "/etc/attach-node",
];

pub fn run(s: &ResetSettings) -> Result<String> {
    let store = Store::new(&s.root);
    let mut out = match store.load()? {
        Some(j) if j.state == State::Reset => String::new(),
        Some(_) => reset::run(s)?,
        None => String::from("nothing was joined by attach-node here\n"),
    };
    let verb = if s.dry_run { "would remove" } else { "removed" };
    let mut targets: Vec<&str> = INSTALLED.to_vec();
    targets.push(paths::STATE_DIR);
    let mut unit_removed = false;
    for t in targets {
        let path = s.root.path(t);
        if path.symlink_metadata().is_err() {
            continue;
        }
        if !s.dry_run {
            fsops::remove_tree(&path).map_err(|e| {
                Error::new(
                    Class::HostChange,
                    format!("cannot remove {}: {e}", path.display()),
                )
            })?;
        }
        unit_removed |= t.ends_with(".service");
        out.push_str(&format!("{verb} {t}\n"));
    }
    if unit_removed && s.root.is_host() && !s.dry_run {
        system::systemctl(&["daemon-reload"]).map_err(|e| Error::new(Class::HostChange, e))?;
    }
    out.push_str(if s.dry_run {
        "uninstall plan (dry run: nothing is changed)\n"
    } else {
        "attach-node is uninstalled\n"
    });
    Ok(out)
}
