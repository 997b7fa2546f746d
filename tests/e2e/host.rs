//! The host side of the e2e harness: the few system calls std lacks, /proc
//! reading, mounts, cgroups and bounded waits. Everything here is careful
//! about what it kills and what it deletes: it never signals pid 0, 1 or a
//! negative "all processes" target, and it never deletes a directory that
//! still has something mounted under it.

#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The libc calls std does not wrap. libc is linked anyway; declaring them
/// here avoids a new dependency.
pub mod sys {
    use std::ffi::{c_char, c_int, c_void};

    pub const SIGTERM: c_int = 15;
    pub const SIGKILL: c_int = 9;
    pub const PR_SET_PDEATHSIG: c_int = 1;
    pub const O_WRONLY: c_int = 0o1;
    pub const O_CLOEXEC: c_int = 0o2000000;
    pub const MNT_DETACH: c_int = 2;
    pub const CLONE_NEWNET: c_int = 0x4000_0000;

    unsafe extern "C" {
        pub safe fn kill(pid: c_int, sig: c_int) -> c_int;
        pub safe fn geteuid() -> u32;
        pub safe fn setsid() -> c_int;
        pub safe fn close(fd: c_int) -> c_int;
        pub fn prctl(option: c_int, ...) -> c_int;
        pub fn open(path: *const c_char, flags: c_int, ...) -> c_int;
        pub fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
        pub fn umount2(target: *const c_char, flags: c_int) -> c_int;
        pub fn setns(fd: c_int, nstype: c_int) -> c_int;
    }
}

pub fn is_root() -> bool {
    sys::geteuid() == 0
}

/// `name` found in PATH (or the usual sbin directories, which a non-login
/// PATH may lack).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

// ---------------------------------------------------------------- processes

/// What /proc/PID/stat says about a process.
#[derive(Clone, Debug)]
pub struct ProcStat {
    pub pid: u32,
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    /// Clock ticks after boot: with the pid, a process's identity (pids are
    /// reused, start times are not).
    pub starttime: u64,
}

pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); starttime is field 22.
    Some(ProcStat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        starttime: rest.get(19)?.parse().ok()?,
    })
}

pub fn all_pids() -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// A process identity that survives pid reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcId {
    pub pid: u32,
    pub starttime: u64,
}

impl ProcId {
    pub fn of(pid: u32) -> Option<ProcId> {
        proc_stat(pid).map(|s| ProcId {
            pid,
            starttime: s.starttime,
        })
    }

    pub fn me() -> ProcId {
        ProcId::of(std::process::id()).expect("read /proc/self/stat")
    }

    /// Still running (a zombie counts as gone).
    pub fn alive(&self) -> bool {
        proc_stat(self.pid).is_some_and(|s| s.starttime == self.starttime && s.state != 'Z')
    }

    pub fn encode(&self) -> String {
        format!("{} {}", self.pid, self.starttime)
    }

    pub fn decode(s: &str) -> Option<ProcId> {
        let (p, t) = s.trim().split_once(' ')?;
        Some(ProcId {
            pid: p.parse().ok()?,
            starttime: t.parse().ok()?,
        })
    }
}

/// Sends `sig` to one process. Refuses the pids that mean "many processes".
pub fn signal(pid: u32, sig: i32) -> bool {
    match i32::try_from(pid) {
        Ok(p) if p > 1 => sys::kill(p, sig) == 0,
        _ => false,
    }
}

/// Sends `sig` to a process group (the nspawn session). Refuses groups 0
/// and 1 and anything that would not fit.
pub fn signal_group(pgid: u32, sig: i32) -> bool {
    match i32::try_from(pgid) {
        Ok(p) if p > 1 && p != std::process::id() as i32 => sys::kill(-p, sig) == 0,
        _ => false,
    }
}

/// Waits for `child` to exit, at most `timeout`.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Polls `f` every `every` until it returns Some, at most `timeout`.
pub fn poll<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(every);
    }
}

/// Why a bounded command did not produce an Output.
#[derive(Debug)]
pub enum RunError {
    Spawn(io::Error),
    TimedOut(Duration),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "could not start: {e}"),
            RunError::TimedOut(d) => write!(f, "timed out after {:.1} s (killed)", d.as_secs_f64()),
        }
    }
}

/// Runs `cmd` in its own process group with stdin closed and its output in
/// two files under `scratch` (not pipes: a daemon it leaves behind cannot
/// hold the read open). After `timeout` the whole group gets SIGKILL.
pub fn run_bounded(
    cmd: &mut Command,
    scratch: &Path,
    timeout: Duration,
) -> Result<Output, RunError> {
    use std::os::unix::process::CommandExt;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    fs::create_dir_all(scratch).map_err(RunError::Spawn)?;
    let out_p = scratch.join(format!("exec-{}-{n}.out", std::process::id()));
    let err_p = scratch.join(format!("exec-{}-{n}.err", std::process::id()));
    let out_f = fs::File::create(&out_p).map_err(RunError::Spawn)?;
    let err_f = fs::File::create(&err_p).map_err(RunError::Spawn)?;
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(out_f)
        .stderr(err_f)
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&out_p);
            let _ = fs::remove_file(&err_p);
            return Err(RunError::Spawn(e));
        }
    };
    let status = wait_child(&mut child, timeout);
    if status.is_none() {
        signal_group(child.id(), sys::SIGKILL);
        let _ = child.kill();
        let _ = wait_child(&mut child, Duration::from_secs(5));
    }
    let stdout = fs::read(&out_p).unwrap_or_default();
    let stderr = fs::read(&err_p).unwrap_or_default();
    let _ = fs::remove_file(&out_p);
    let _ = fs::remove_file(&err_p);
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(RunError::TimedOut(timeout)),
    }
}

/// The last `n` lines of a file, or a note saying why there are none.
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

// ------------------------------------------------------------------- mounts

fn unescape_mount_path(s: &str) -> PathBuf {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// One line of /proc/self/mountinfo, the parts the harness uses.
#[derive(Clone, Debug)]
pub struct MountInfo {
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

pub fn mountinfo() -> Vec<MountInfo> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountInfo {
                root: unescape_mount_path(l.get(3)?),
                mount_point: unescape_mount_path(l.get(4)?),
                fstype: (*r.first()?).to_owned(),
                source: (*r.get(1)?).to_owned(),
                super_options: r.get(2).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// Mount points at or under `dir`, in mount order (unmount in reverse).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    mountinfo()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(&dir))
        .collect()
}

fn umount2(p: &Path, flags: i32) -> io::Result<()> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: c is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { sys::umount2(c.as_ptr(), flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Unmounts everything at or under `dir`, newest first. A busy mount is
/// retried for up to 3 s, then detached lazily (and reported). Returns the
/// problems; empty means nothing is mounted there any more.
pub fn unmount_all_under(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mounts = mounts_under(dir);
        let Some(last) = mounts.last() else {
            return problems;
        };
        match umount2(last, 0) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(16) && Instant::now() < deadline => {
                sleep(Duration::from_millis(100));
            }
            Err(e) => {
                let lazy = umount2(last, sys::MNT_DETACH);
                problems.push(format!(
                    "umount {}: {e}; lazy detach: {}",
                    last.display(),
                    match lazy {
                        Ok(()) => "done".to_owned(),
                        Err(e) => e.to_string(),
                    }
                ));
                if mounts_under(dir).len() >= mounts.len() {
                    problems.push(format!("could not unmount under {}", dir.display()));
                    return problems;
                }
            }
        }
    }
}

/// `rm -rf dir`, but only once nothing is mounted under it (a bind mount of
/// /dev or /sys left by a killed build would otherwise be emptied).
pub fn remove_tree(dir: &Path) -> Result<(), String> {
    if fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    let problems = unmount_all_under(dir);
    let left = mounts_under(dir);
    if !left.is_empty() {
        return Err(format!(
            "not removing {}: still mounted under it: {left:?} ({problems:?})",
            dir.display()
        ));
    }
    let dev = fs::symlink_metadata(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .dev();
    remove_one_fs(dir, dev).map_err(|e| format!("remove {}: {e}", dir.display()))
}

/// `rm -rf --one-file-system`: a directory on another device (a mount that
/// appeared after the check above) is refused, not emptied.
fn remove_one_fs(path: &Path, dev: u64) -> io::Result<()> {
    let md = fs::symlink_metadata(path)?;
    if !md.is_dir() {
        return fs::remove_file(path);
    }
    if md.dev() != dev {
        return Err(io::Error::other(format!(
            "{} is on another file system",
            path.display()
        )));
    }
    for e in fs::read_dir(path)? {
        remove_one_fs(&e?.path(), dev)?;
    }
    fs::remove_dir(path)
}

// ------------------------------------------------------------------ cgroups

/// One cgroup per hierarchy, each a child of this process's own cgroup in
/// that hierarchy: v1 controllers, named v1 hierarchies and cgroup2.
pub fn cgroup_dirs_for(leaf: &str) -> Result<Vec<PathBuf>, String> {
    let me =
        fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let mounts = mountinfo();
    let mut dirs = Vec::new();
    for line in me.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let mount = if id == "0" && ctrls.is_empty() {
            mounts.iter().find(|m| m.fstype == "cgroup2")
        } else {
            let wanted: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
            mounts.iter().find(|m| {
                m.fstype == "cgroup" && {
                    let opts: Vec<&str> = m.super_options.split(',').collect();
                    wanted.iter().all(|w| opts.contains(w))
                }
            })
        };
        let Some(mount) = mount else {
            continue; // a hierarchy not mounted here: nothing to join
        };
        let rel = Path::new(path)
            .strip_prefix(&mount.root)
            .unwrap_or(Path::new(path).strip_prefix("/").unwrap_or(Path::new(path)));
        let dir = mount.mount_point.join(rel).join(leaf);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    if dirs.is_empty() {
        return Err("no cgroup hierarchy is mounted".to_owned());
    }
    Ok(dirs)
}

/// Creates the cgroups (v1 cpuset needs its cpus and mems copied from the
/// parent before a task can join).
pub fn create_cgroups(dirs: &[PathBuf]) -> Result<(), String> {
    for d in dirs {
        if !is_harness_cgroup(d) {
            return Err(format!("{} is not named {CGROUP_PREFIX}*", d.display()));
        }
        fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        for knob in ["cpuset.cpus", "cpuset.mems"] {
            let mine = d.join(knob);
            if mine.exists()
                && fs::read_to_string(&mine)
                    .unwrap_or_default()
                    .trim()
                    .is_empty()
            {
                let parent = d.parent().unwrap().join(knob);
                let v = fs::read_to_string(&parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
                fs::write(&mine, v.trim()).map_err(|e| format!("{}: {e}", mine.display()))?;
            }
        }
    }
    Ok(())
}

/// Every directory of a cgroup tree, deepest first.
fn cgroup_tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(cgroup_tree(&e.path()));
            }
        }
    }
    if dir.is_dir() {
        out.push(dir.to_path_buf());
    }
    out
}

/// Leaf cgroups the harness made are named `attach-node-e2e-*`. Killing
/// and removing refuse anything else: a root cgroup here would mean
/// SIGKILL for every process on the host.
pub const CGROUP_PREFIX: &str = "attach-node-e2e-";

fn is_harness_cgroup(d: &Path) -> bool {
    d.starts_with("/sys/fs/cgroup")
        && d.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(CGROUP_PREFIX))
}

/// Every pid in the cgroup trees (harness cgroups only).
pub fn cgroup_pids(dirs: &[PathBuf]) -> Vec<u32> {
    let mut pids: Vec<u32> = dirs
        .iter()
        .filter(|d| is_harness_cgroup(d))
        .flat_map(|d| cgroup_tree(d))
        .flat_map(|d| {
            fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// SIGKILLs everything in the cgroup trees until they are empty, at most
/// `timeout`. Returns the pids still there.
pub fn kill_cgroups(dirs: &[PathBuf], timeout: Duration) -> Vec<u32> {
    let me = std::process::id();
    let deadline = Instant::now() + timeout;
    loop {
        let pids: Vec<u32> = cgroup_pids(dirs).into_iter().filter(|p| *p != me).collect();
        if pids.is_empty() || Instant::now() >= deadline {
            return pids;
        }
        for p in &pids {
            signal(*p, sys::SIGKILL);
        }
        sleep(Duration::from_millis(50));
    }
}

/// Removes the cgroup trees (deepest first), killing what is left in them.
pub fn remove_cgroups(dirs: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    let left = kill_cgroups(dirs, Duration::from_secs(5));
    if !left.is_empty() {
        problems.push(format!(
            "processes survived SIGKILL in the machine's cgroups: {left:?}"
        ));
    }
    for d in dirs.iter().filter(|d| is_harness_cgroup(d)) {
        for sub in cgroup_tree(d) {
            let ok = poll(Duration::from_secs(2), Duration::from_millis(50), || {
                fs::remove_dir(&sub)
                    .ok()
                    .or_else(|| (!sub.exists()).then_some(()))
            });
            if ok.is_none() {
                problems.push(format!("cannot remove cgroup {}", sub.display()));
            }
        }
    }
    problems
}

/// The pid namespace of a process, as the inode in `pid:[N]`.
pub fn pid_ns(pid: u32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.display().to_string())
}

/// Processes whose pid namespace is `ns`.
pub fn pids_in_ns(ns: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| pid_ns(*p).as_deref() == Some(ns))
        .collect()
}
