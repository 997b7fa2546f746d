//! The cached Debian root every e2e machine boots from.
//!
//! Built once per machine and package list with mmdebstrap into
//! `<work dir>/root-<hash>.tmp-<pid>`, then renamed to `root-<hash>`: a root
//! that exists is complete. Builders take `root-<hash>.lock` (flock), so two
//! test processes never build it at once; inside one process a OnceLock
//! makes the other tests wait for the first. Machines only ever read it (it
//! is the lower layer of their overlay).

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::host;

pub const SUITE: &str = "bookworm";
pub const VARIANT: &str = "essential";
/// cloud-init costs about 7 s of build and 100 MB here; the NoCloud tests
/// need it, so it is always in.
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "containerd",
    "runc",
    "iproute2",
    "kmod",
    "procps",
    "cloud-init",
    // The one-liner (cloud-init/one-liner.yaml, packaging/install.sh).
    "curl",
    // The bridge, host-local and loopback CNI plugins (in /usr/lib/cni,
    // Debian containerd's bin_dir): a real kubelet's Node is Ready only
    // once containerd has a network config (tests/e2e/real_k8s.rs).
    "containernetworking-plugins",
];
/// Bump to force a rebuild when the recipe changes in a way the package
/// list does not show.
const RECIPE_VERSION: u32 = 1;
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);
/// Files a usable root has.
const MUST_HAVE: &[&str] = &[
    "usr/lib/systemd/systemd",
    "usr/bin/systemctl",
    "usr/bin/containerd",
    "usr/bin/ctr",
    "usr/sbin/runc",
    "usr/bin/cloud-init",
    "usr/bin/mountpoint",
];

/// `$ATTACH_NODE_E2E_DIR`, or /var/tmp/attach-node-e2e (on disk, so it
/// survives reboots of a dev VM and can hold overlay upper directories).
pub fn work_dir_setting() -> PathBuf {
    std::env::var_os("ATTACH_NODE_E2E_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/attach-node-e2e"))
}

/// The work directory, created if needed, canonical (to compare with
/// /proc/self/mountinfo) and checked: owned by root and writable by no one
/// else, since what is in it is booted with every capability. Panics
/// otherwise.
pub fn work_dir() -> &'static Path {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let dir = work_dir_setting();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let dir = fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let md = fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if md.uid() != 0 || md.mode() & 0o022 != 0 {
            return Err(format!(
                "{} must be owned by root and writable only by root (uid {}, mode {:o}); \
                 remove it or set ATTACH_NODE_E2E_DIR",
                dir.display(),
                md.uid(),
                md.mode() & 0o7777
            ));
        }
        Ok(dir)
    });
    match dir {
        Ok(d) => d,
        Err(e) => panic!("e2e work directory: {e}"),
    }
}

pub fn recipe() -> String {
    format!(
        "attach-node e2e root v{RECIPE_VERSION}\nmmdebstrap --variant={VARIANT} --include={} {SUITE}\n",
        PACKAGES.join(",")
    )
}

pub fn recipe_hash() -> String {
    let d = Sha256::digest(recipe().as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The path of the cached root, built first if needed. Panics (with the
/// build log's tail) when it cannot be built.
pub fn base_root() -> &'static Path {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match ROOT.get_or_init(ensure) {
        Ok(p) => p,
        Err(e) => panic!("e2e base root: {e}"),
    }
}

fn missing(root: &Path) -> Vec<&'static str> {
    MUST_HAVE
        .iter()
        .copied()
        .filter(|f| fs::symlink_metadata(root.join(f)).is_err())
        .collect()
}

fn ensure() -> Result<PathBuf, String> {
    let dir = work_dir();
    let hash = recipe_hash();
    let root = dir.join(format!("root-{hash}"));
    if root.is_dir() && missing(&root).is_empty() {
        eprintln!("[e2e] reusing base root {}", root.display());
        return Ok(root);
    }

    let lock_path = dir.join(format!("root-{hash}.lock"));
    let lock = fs::File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let waited = Instant::now();
    let mut said = false;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) => {
                if !said {
                    eprintln!("[e2e] another process is building the base root; waiting");
                    said = true;
                }
                if waited.elapsed() > BUILD_TIMEOUT + Duration::from_secs(60) {
                    return Err(format!("{} stayed locked too long", lock_path.display()));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("lock {}: {e}", lock_path.display()));
            }
        }
    }
    // Locked: nobody else is building this root now.
    if root.is_dir() && missing(&root).is_empty() {
        eprintln!(
            "[e2e] reusing base root {} (built by another process)",
            root.display()
        );
        return Ok(root);
    }
    // A build whose test process died: its mmdebstrap (which got SIGTERM
    // then) must be gone before its directory is removed.
    let builder_path = dir.join(format!("root-{hash}.builder"));
    if let Some(b) = fs::read_to_string(&builder_path)
        .ok()
        .and_then(|s| host::ProcId::decode(&s))
        .filter(host::ProcId::alive)
    {
        eprintln!("[e2e] stopping an orphaned mmdebstrap (pid {})", b.pid);
        host::signal_group(b.pid, host::sys::SIGKILL);
        host::signal(b.pid, host::sys::SIGKILL);
        if host::poll(Duration::from_secs(10), Duration::from_millis(100), || {
            (!b.alive()).then_some(())
        })
        .is_none()
        {
            return Err(format!(
                "an orphaned mmdebstrap (pid {}) survived SIGKILL",
                b.pid
            ));
        }
    }
    let tmp_prefix = format!("root-{hash}.tmp-");
    for e in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        if e.file_name().to_string_lossy().starts_with(&tmp_prefix) {
            eprintln!("[e2e] removing an unfinished build {}", e.path().display());
            host::remove_tree(&e.path())?;
        }
    }
    if root.exists() {
        eprintln!(
            "[e2e] {} lacks {:?}: rebuilding it",
            root.display(),
            missing(&root)
        );
        host::remove_tree(&root)?;
    }

    let tmp = dir.join(format!("{tmp_prefix}{}", std::process::id()));
    let log_path = dir.join(format!("root-{hash}.log"));
    let result = build(&tmp, &log_path, &builder_path);
    let _ = fs::remove_file(&builder_path);
    if let Err(e) = result {
        let _ = host::remove_tree(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &root)
        .map_err(|e| format!("rename {} -> {}: {e}", tmp.display(), root.display()))?;
    Ok(root)
}

fn build(tmp: &Path, log_path: &Path, builder_path: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mmdebstrap = host::which("mmdebstrap").ok_or("mmdebstrap is not installed")?;
    let log = fs::File::create(log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    eprintln!(
        "[e2e] building the base root with mmdebstrap (about 20 s; log: {})",
        log_path.display()
    );
    let started = Instant::now();
    let mut cmd = Command::new(mmdebstrap);
    cmd.arg(format!("--variant={VARIANT}"))
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(tmp)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0);
    // SAFETY: one async-signal-safe system call between fork and exec.
    unsafe {
        // If this test thread dies, mmdebstrap stops (and cleans up).
        cmd.pre_exec(|| {
            if host::sys::prctl(
                host::sys::PR_SET_PDEATHSIG,
                host::sys::SIGTERM as std::ffi::c_ulong,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("start mmdebstrap: {e}"))?;
    if let Some(id) = host::ProcId::of(child.id()) {
        let _ = fs::write(builder_path, id.encode());
    }
    let status = host::wait_child(&mut child, BUILD_TIMEOUT);
    let Some(status) = status else {
        host::signal_group(child.id(), host::sys::SIGTERM);
        if host::wait_child(&mut child, Duration::from_secs(15)).is_none() {
            host::signal_group(child.id(), host::sys::SIGKILL);
            let _ = host::wait_child(&mut child, Duration::from_secs(5));
        }
        return Err(format!(
            "mmdebstrap took longer than {} s; log tail:\n{}",
            BUILD_TIMEOUT.as_secs(),
            host::tail(log_path, 30)
        ));
    };
    if !status.success() {
        return Err(format!(
            "mmdebstrap failed ({status}); log tail:\n{}",
            host::tail(log_path, 30)
        ));
    }
    let gone = missing(tmp);
    if !gone.is_empty() {
        return Err(format!("mmdebstrap finished but the root lacks {gone:?}"));
    }
    let secs = started.elapsed().as_secs_f64();
    let mb = Command::new("du")
        .args(["-sm", "--one-file-system"])
        .arg(tmp)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    eprintln!("[e2e] built the base root in {secs:.1} s ({mb} MB)");
    let info = serde_json::json!({
        "recipe": recipe(),
        "build_seconds": (secs * 10.0).round() / 10.0,
        "size_mb": mb,
    });
    let info_path = tmp.with_file_name(format!("root-{}.json", recipe_hash()));
    if let Ok(mut f) = fs::File::create(&info_path) {
        let _ = writeln!(f, "{info:#}");
    }
    Ok(())
}
