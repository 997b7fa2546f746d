//! The host's edge: [`Root`] maps every host path under `--root DIR` (tests,
//! image baking) or `/`, so both run the same code; [`fsops`] holds the file
//! operations the journal relies on (atomic writes, removal, a path's prior
//! state); [`system`] runs systemctl and reads and writes kernel settings.
//!
//! Changes to the host are made with these, by the modules that journal
//! them (`apply`, `journal`, and the commands that undo: reset, uninstall).
//! Reading is not confined here: settings reads the config and token files,
//! preflight and wait read the host's state.

pub mod fsops;
pub mod system;

use std::path::{Path, PathBuf};

/// See [`Root::live`]: held only when the root is the running machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live(());

/// The host's `/`, or a directory standing in for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    base: PathBuf,
}

impl Root {
    pub fn host() -> Self {
        Root {
            base: PathBuf::from("/"),
        }
    }

    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Root { base: dir.into() }
    }

    /// Whether this is the live host (services, sysctls and modules are
    /// acted on only then).
    pub fn is_host(&self) -> bool {
        self.base == Path::new("/")
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The proof [`system`] asks for before it touches the running
    /// machine's services and kernel settings: there only when this root
    /// is that machine. Under `--root DIR` they belong to whatever machine
    /// attach-node happens to run on, not to the image, so nothing can
    /// reach them: decided here, once, by the type system rather than by
    /// checks scattered through the code that acts.
    pub fn live(&self) -> Option<Live> {
        self.is_host().then_some(Live(()))
    }

    /// Maps an absolute host path (`/etc/...`) under the root. Host paths
    /// are constants of this program or come from its journal, never from
    /// the network, so a relative path here is a bug.
    ///
    /// Under `--root`, every directory on the way is resolved as a chroot
    /// would resolve it: a symlink's absolute target starts again at the
    /// root and `..` stops at it, so a link in the root (an image's
    /// `/var/lib/kubelet -> /data/kubelet`, say) can never lead a write or a
    /// delete outside it. The last component is not followed: whatever is
    /// there is inspected, replaced or removed itself.
    pub fn path(&self, host_path: &str) -> PathBuf {
        debug_assert!(
            host_path.starts_with('/'),
            "host path {host_path:?} is not absolute"
        );
        if self.is_host() {
            return PathBuf::from(host_path);
        }
        resolve_in_root(&self.base, Path::new(host_path), false)
    }

    /// [`Root::path`], following a symlink in the last component too (for
    /// asking whether a directory is there). On the live host too: there a
    /// link such as `/var/lib/kubelet -> /data/kubelet` (a data disk) must
    /// lead to its target, or the caller meets the link again and takes it
    /// for a loop.
    pub fn path_followed(&self, host_path: &str) -> PathBuf {
        resolve_in_root(&self.base, Path::new(host_path), true)
    }
}

/// As many symlinks as the kernel follows before it says ELOOP.
const MAX_LINKS: usize = 40;

fn resolve_in_root(base: &Path, host_path: &Path, follow_last: bool) -> PathBuf {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;

    let mut todo: VecDeque<OsString> = host_path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut at = base.to_path_buf();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            if at != base {
                at.pop();
            }
            continue;
        }
        let next = at.join(&name);
        if todo.is_empty() && !follow_last {
            return next;
        }
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() && links < MAX_LINKS => {
                links += 1;
                let Ok(target) = std::fs::read_link(&next) else {
                    return next;
                };
                if target.is_absolute() {
                    at = base.to_path_buf();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push_front(n.to_owned()),
                        Component::ParentDir => todo.push_front("..".into()),
                        _ => {}
                    }
                }
            }
            // Too many links: hand the kernel the unresolved rest, inside
            // the root; it answers ELOOP just as it would have.
            _ => at = next,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_never_leave_the_root() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().canonicalize().unwrap();
        let root = Root::at(&base);
        std::fs::create_dir_all(base.join("data/kubelet")).unwrap();
        std::fs::create_dir_all(base.join("var/lib")).unwrap();
        // absolute link: re-rooted
        std::os::unix::fs::symlink("/data/kubelet", base.join("var/lib/kubelet")).unwrap();
        assert_eq!(
            root.path("/var/lib/kubelet/config.yaml"),
            base.join("data/kubelet/config.yaml")
        );
        // relative link climbing above the root: clamped at it
        std::os::unix::fs::symlink("../../../../../../etc", base.join("var/lib/up")).unwrap();
        assert_eq!(root.path("/var/lib/up/passwd"), base.join("etc/passwd"));
        // `..` in the host path itself
        assert_eq!(root.path("/../../etc/x"), base.join("etc/x"));
        // the last component is not followed, unless asked
        assert_eq!(root.path("/var/lib/kubelet"), base.join("var/lib/kubelet"));
        assert_eq!(
            root.path_followed("/var/lib/kubelet"),
            base.join("data/kubelet")
        );
        // a loop stays inside the root, for the kernel to refuse
        std::os::unix::fs::symlink("loop", base.join("loop")).unwrap();
        assert!(root.path("/loop/x").starts_with(&base));
        // the live host is not rewritten
        assert_eq!(Root::host().path("/etc/x"), PathBuf::from("/etc/x"));
    }

    /// On the live host a directory reached through a link (a data disk
    /// mounted elsewhere and linked at /var/lib/kubelet) is followed to
    /// where it is; it used to come back unresolved, and join then
    /// reported ELOOP after the token was spent.
    #[test]
    fn the_live_host_follows_links_to_their_targets() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("data/kubelet")).unwrap();
        std::os::unix::fs::symlink(base.join("data/kubelet"), base.join("kubelet")).unwrap();
        std::os::unix::fs::symlink("data/kubelet", base.join("relative")).unwrap();
        let host = Root::host();
        let at = |p: &Path| host.path_followed(p.to_str().unwrap());
        assert_eq!(at(&base.join("kubelet")), base.join("data/kubelet"));
        assert_eq!(at(&base.join("relative")), base.join("data/kubelet"));
        assert_eq!(at(&base.join("data")), base.join("data"));
        // the last component only is different from Root::path
        let p = base.join("kubelet");
        assert_eq!(host.path(p.to_str().unwrap()), p);
    }
}
