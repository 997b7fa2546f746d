//! File operations with the guarantees the journal relies on: writes are
//! atomic (same-directory temp file, fsync, rename, fsync the directory) and
//! a file's mode is right from its creation; a path's prior state can be
//! captured and put back byte for byte, with mode and owner.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// What is at a path now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Found {
    Absent,
    File {
        sha256: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        target: String,
    },
    Dir {
        mode: u32,
    },
    /// A socket, device or fifo: never ours to replace.
    Special,
}

/// Looks at `path` without following a final symlink.
pub fn inspect(path: &Path) -> io::Result<Found> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Absent),
        Err(e) => return Err(e),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path)?;
        return Ok(Found::Symlink {
            target: target.to_string_lossy().into_owned(),
        });
    }
    if ft.is_dir() {
        return Ok(Found::Dir {
            mode: meta.mode() & 0o7777,
        });
    }
    if !ft.is_file() {
        return Ok(Found::Special);
    }
    let bytes = read_all(path)?;
    Ok(Found::File {
        sha256: sha256_hex(&bytes),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

pub fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    File::open(path)?.read_to_end(&mut v)?;
    Ok(v)
}

/// Opens `path` without following a symlink in its last component (the
/// kernel answers ELOOP instead) and without blocking on a fifo: for the
/// files attach-node keeps for itself, which must be what they seem.
pub fn open_nofollow(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Whether an error is the kernel refusing to follow a symlink that
/// [`open_nofollow`] met.
pub fn is_symlink_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Reads a regular file through [`open_nofollow`]; a symlink, directory,
/// fifo or device there is an error, never read through.
pub fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    let mut f = open_nofollow(path, OpenOptions::new().read(true))?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// Writes `bytes` to `path` atomically with `mode`: readers see the old
/// file or the new one, never a mix, and a crash leaves one of the two.
/// The temp file is created with the final mode (and no wider one), so a
/// secret is never readable by others even for a moment.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_owned(path, bytes, mode, None)
}

/// [`write_atomic`], with the owner set on the temp file before the rename,
/// so a restored file appears with its content, mode and owner at once.
pub fn write_atomic_owned(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("a file path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("a file path has no name"))?
        .to_string_lossy();
    let tmp = dir.join(temp_name(&name, std::process::id()));
    let result = (|| {
        // A temp file left by a crashed run of the same pid would make
        // create_new fail; it is ours, so clear it.
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o600)
            .open(&tmp)?;
        // Now the exact mode: the umask may have narrowed it, and the
        // create above kept it no wider than the owner's bits.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            // chown clears set-id bits; put the mode back exactly.
            f.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The name of [`write_atomic`]'s temp file for `name`: hidden, beside it,
/// and recognisably ours, so a run after a crash can find and remove it.
fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.attach-node-{pid}.tmp")
}

const LINK_TEMP_PREFIX: &str = ".attach-node-link-";

/// Whether `file_name` is a temp file that [`write_atomic`] (for a file
/// named `name`, or for any name when `name` is None) or [`symlink_atomic`]
/// makes, whatever the pid of the run that made it.
fn is_our_temp(file_name: &str, name: Option<&str>) -> bool {
    let pid_then_tmp = |rest: &str| {
        rest.strip_suffix(".tmp")
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(rest) = file_name.strip_prefix(LINK_TEMP_PREFIX) {
        return pid_then_tmp(rest);
    }
    let Some(rest) = file_name.strip_prefix('.') else {
        return false;
    };
    match name {
        Some(name) => rest
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix(".attach-node-"))
            .is_some_and(pid_then_tmp),
        None => rest
            .rsplit_once(".attach-node-")
            .is_some_and(|(n, r)| !n.is_empty() && pid_then_tmp(r)),
    }
}

/// Removes the temp files that a run stopped in the middle of
/// [`write_atomic`] or [`symlink_atomic`] left in `dir`: those for a file
/// named `name`, or every one when `name` is None (a directory only
/// attach-node writes in). Such a copy may hold a secret (the bootstrap
/// kubeconfig). Only regular files and symlinks are removed, never a
/// directory; the caller holds the lock, so no live run is writing them.
/// Returns what was removed.
pub fn remove_our_temp_files(
    dir: &Path,
    name: Option<&str>,
) -> io::Result<Vec<std::path::PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if !is_our_temp(file_name, name) || entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        remove_file(&path)?;
        removed.push(path);
    }
    Ok(removed)
}

/// fsync a directory, so a rename or unlink in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a file (or symlink) and makes the removal durable. Absent is fine.
pub fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Removes a file, a symlink (never what it points to) or a whole
/// directory tree, durably, without ever leaving the file system of
/// `path`'s parent: a directory on another device (a volume mounted under
/// `/var/lib/kubelet/pods/...`, a data disk) is a mount point, and neither
/// it nor anything on it is removed. Those are returned, so the caller can
/// name them; the directories holding them stay too. Absent is fine.
pub fn remove_tree(path: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        remove_file(path)?;
        return Ok(Vec::new());
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let device = fs::symlink_metadata(parent)?.dev();
    let mut left = Vec::new();
    remove_dir_on(path, &meta, device, &mut left)?;
    sync_dir(parent)?;
    Ok(left)
}

/// Removes `dir` and what is in it, staying on `device`.
fn remove_dir_on(
    dir: &Path,
    meta: &fs::Metadata,
    device: u64,
    left: &mut Vec<std::path::PathBuf>,
) -> io::Result<()> {
    if meta.dev() != device {
        left.push(dir.to_owned());
        return Ok(());
    }
    let before = left.len();
    for entry in fs::read_dir(dir)? {
        let child = entry?.path();
        let m = fs::symlink_metadata(&child)?;
        if m.is_dir() {
            remove_dir_on(&child, &m, device, left)?;
        } else {
            fs::remove_file(&child)?;
        }
    }
    if left.len() == before {
        fs::remove_dir(dir)?;
    }
    Ok(())
}

/// Creates one directory with exactly `mode` (never wider, even before the
/// chmod that undoes the umask).
pub fn create_dir(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(mode).create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Removes a directory if it is empty; says whether it did.
pub fn remove_dir_if_empty(path: &Path) -> io::Result<bool> {
    match fs::remove_dir(path) {
        Ok(()) => {
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(false),
        Err(e) => Err(e),
    }
}

/// Replaces whatever is at `path` with a symlink to `target`, atomically.
pub fn symlink_atomic(path: &Path, target: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("a path has no parent"))?;
    let tmp = dir.join(format!("{LINK_TEMP_PREFIX}{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one", 0o600).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o644);
        // no temp file is left behind
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        match inspect(&p).unwrap() {
            Found::File { sha256, mode, .. } => {
                assert_eq!(sha256, sha256_hex(b"two"));
                assert_eq!(mode, 0o644);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn temp_files_of_a_stopped_run_are_recognised_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let put = |n: &str| fs::write(d.path().join(n), b"x").unwrap();
        for n in [
            ".bootstrap-kubelet.conf.attach-node-4242.tmp",
            ".attach-node-link-7.tmp",
            ".other.conf.attach-node-1.tmp",
            // not ours: no pid, another tool's, or not hidden
            ".bootstrap-kubelet.conf.attach-node-.tmp",
            ".bootstrap-kubelet.conf.attach-node-12x.tmp",
            ".bootstrap-kubelet.conf.swp",
            "bootstrap-kubelet.conf.attach-node-3.tmp",
            "bootstrap-kubelet.conf",
        ] {
            put(n);
        }
        fs::create_dir(d.path().join(".dir.attach-node-5.tmp")).unwrap();
        let mut removed: Vec<_> = remove_our_temp_files(d.path(), Some("bootstrap-kubelet.conf"))
            .unwrap()
            .into_iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            [
                ".attach-node-link-7.tmp",
                ".bootstrap-kubelet.conf.attach-node-4242.tmp"
            ]
        );
        // every temp file of ours, for a directory that is all ours
        let removed = remove_our_temp_files(d.path(), None).unwrap();
        assert_eq!(removed, [d.path().join(".other.conf.attach-node-1.tmp")]);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 6);
    }

    #[test]
    fn inspect_kinds() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(inspect(&d.path().join("none")).unwrap(), Found::Absent);
        symlink_atomic(&d.path().join("l"), "target").unwrap();
        assert_eq!(
            inspect(&d.path().join("l")).unwrap(),
            Found::Symlink {
                target: "target".into()
            }
        );
        create_dir(&d.path().join("sub"), 0o700).unwrap();
        assert_eq!(
            inspect(&d.path().join("sub")).unwrap(),
            Found::Dir { mode: 0o700 }
        );
        fs::write(d.path().join("sub/x"), b"").unwrap();
        assert!(!remove_dir_if_empty(&d.path().join("sub")).unwrap());
        remove_file(&d.path().join("sub/x")).unwrap();
        assert!(remove_dir_if_empty(&d.path().join("sub")).unwrap());
    }
}
