//! The e2e harness: throwaway Debian machines with a real systemd (PID 1)
//! and a real containerd, booted with systemd-nspawn from an overlay over a
//! cached root. See tests/e2e/README.md for the API and the reasons behind
//! each flag; /work/shared/design/e2e-on-this-machine.md for the facts.
//!
//! ```ignore
//! let Some(_t) = harness::begin("my_case") else { return };
//! let m = harness::machine("mycase")
//!     .bind_ro(harness::attach_node_bin(), "/usr/local/bin/attach-node")
//!     .boot();
//! m.run(&["attach-node", "--version"]);
//! assert!(m.is_active("containerd.service"));
//! m.shutdown().assert_clean();
//! ```
//!
//! A Machine must be created and dropped on the same thread (the test's
//! own): nspawn gets SIGTERM when the thread that started it exits, so a
//! test process that dies takes its machines with it. To boot several at
//! once from one test, `start()` them all, then `wait_booted()` each.

#![allow(dead_code)]

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::host::{self, ProcId, sys};
use crate::root;

/// From starting nspawn to `systemctl is-system-running` saying running or
/// degraded (it takes under a second here; cloud-init adds a few).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound for one command inside a machine.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// Until nspawn's child `systemd` appears.
const PID1_TIMEOUT: Duration = Duration::from_secs(15);
/// SIGTERM to nspawn halts the container cleanly in 1-2 s.
const STOP_GRACE: Duration = Duration::from_secs(10);
const KILL_WAIT: Duration = Duration::from_secs(5);

const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// nspawn mounts the v1 controllers read-only; runc needs them writable.
pub const CGROUP_RW_UNIT: &str = "attach-node-e2e-cgroup-rw.service";
const CGROUP_RW_UNIT_TEXT: &str = "\
[Unit]
Description=attach-node e2e: remount the cgroup v1 controllers read-write
Documentation=file:///work/main/tests/e2e/README.md
DefaultDependencies=no
Before=sysinit.target containerd.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'rc=0; for d in /sys/fs/cgroup/*; do mountpoint -q \"$$d\" || continue; mount -o remount,bind,rw \"$$d\" || rc=1; done; exit $$rc'

[Install]
WantedBy=sysinit.target
";

// ------------------------------------------------------------------ skipping

/// Why this machine cannot run the e2e tests, or None.
pub fn skip_reason() -> Option<&'static str> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON.get_or_init(compute_skip_reason).as_deref()
}

fn compute_skip_reason() -> Option<String> {
    if matches!(
        std::env::var("ATTACH_NODE_E2E").as_deref(),
        Ok("skip" | "0" | "off")
    ) {
        return Some("ATTACH_NODE_E2E=skip".to_owned());
    }
    if !host::is_root() {
        return Some(format!("not root (euid {})", sys::geteuid()));
    }
    for (tool, package) in [
        ("systemd-nspawn", "systemd-container"),
        ("mmdebstrap", "mmdebstrap"),
        ("nsenter", "util-linux"),
        ("mount", "mount"),
    ] {
        if host::which(tool).is_none() {
            return Some(format!(
                "{tool} is not installed (apt-get install -y --no-install-recommends {package})"
            ));
        }
    }
    let fs = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        return Some("the kernel has no overlayfs".to_owned());
    }
    let dir = root::work_dir_setting();
    if dir.to_string_lossy().contains([',', ':', ' ']) {
        return Some(format!(
            "{} contains ',', ':' or ' ' (overlay and nspawn options cannot hold them)",
            dir.display()
        ));
    }
    None
}

/// Writes straight to fd 2, past libtest's capture: skip notices must be
/// seen in a plain `cargo test`.
fn say_uncaptured(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Times one test and prints its duration when dropped.
pub struct TestRun {
    name: String,
    started: Instant,
}

impl Drop for TestRun {
    fn drop(&mut self) {
        let verdict = if std::thread::panicking() {
            "FAILED after"
        } else {
            "took"
        };
        eprintln!(
            "[e2e] {} {verdict} {:.2} s",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Call first in every e2e test: None (after printing why) when the e2e
/// tests cannot run here; the test then returns and passes. With
/// `ATTACH_NODE_E2E=require` (CI), a missing prerequisite fails instead.
pub fn begin(name: &str) -> Option<TestRun> {
    if let Some(reason) = skip_reason() {
        if std::env::var("ATTACH_NODE_E2E").as_deref() == Ok("require") {
            panic!("ATTACH_NODE_E2E=require, but the e2e tests cannot run here: {reason}");
        }
        say_uncaptured(&format!("[e2e] SKIP {name}: {reason}"));
        return None;
    }
    Some(TestRun {
        name: name.to_owned(),
        started: Instant::now(),
    })
}

/// The static attach-node binary cargo built for this test run.
pub fn attach_node_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_attach-node"))
}

/// The cached root machines boot from (built on first use).
pub fn base_root() -> &'static Path {
    root::base_root()
}

// --------------------------------------------------------- machine directories

fn machines_dir() -> PathBuf {
    root::work_dir().join("machines")
}

/// Holds machines.lock (flock) while creating or reaping machine dirs.
fn with_machines_lock<T>(f: impl FnOnce() -> T) -> T {
    let dir = machines_dir();
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let path = root::work_dir().join("machines.lock");
    let lock = fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let got = host::poll(Duration::from_secs(60), Duration::from_millis(50), || {
        lock.try_lock().ok()
    });
    assert!(got.is_some(), "{} stayed locked for 60 s", path.display());
    f()
}

/// Tears down what a test process that died without cleaning up left
/// behind (its machine dirs record their owner, nspawn and cgroups). Once
/// per process.
fn reap_stale_machines() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        with_machines_lock(|| {
            let Ok(rd) = fs::read_dir(machines_dir()) else {
                return;
            };
            for e in rd.flatten() {
                let dir = e.path();
                let owner = fs::read_to_string(dir.join("owner"))
                    .ok()
                    .and_then(|s| ProcId::decode(&s));
                if owner.is_some_and(|o| o.alive()) {
                    continue;
                }
                eprintln!(
                    "[e2e] reaping a machine left by a dead test process: {}",
                    dir.display()
                );
                if let Some(n) = fs::read_to_string(dir.join("nspawn"))
                    .ok()
                    .and_then(|s| ProcId::decode(&s))
                    .filter(ProcId::alive)
                {
                    host::signal_group(n.pid, sys::SIGKILL);
                    host::signal(n.pid, sys::SIGKILL);
                }
                let cgroups: Vec<PathBuf> = fs::read_to_string(dir.join("cgroups"))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.starts_with("/sys/fs/cgroup/"))
                    .map(PathBuf::from)
                    .collect();
                let mut problems = host::remove_cgroups(&cgroups);
                if let Err(e) = host::remove_tree(&dir) {
                    problems.push(e);
                }
                for p in problems {
                    eprintln!("[e2e] WARNING while reaping {}: {p}", dir.display());
                }
            }
        });
    });
}

fn unique_name(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(24)
        .collect();
    format!(
        "e2e-{}-{}-{}",
        clean.trim_matches('-'),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// `/a/b` → `a/b`, refusing `..` (a guest path must stay inside the root).
fn relative_guest_path(guest: &str) -> PathBuf {
    let p = Path::new(guest);
    assert!(
        p.components().all(|c| !matches!(c, Component::ParentDir)),
        "guest path {guest:?} must not contain '..'"
    );
    p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

// ------------------------------------------------------------------- builder

/// How to boot a machine. Everything here happens before boot.
#[must_use]
pub struct Builder {
    prefix: String,
    binds: Vec<(PathBuf, String, bool)>,
    files: Vec<(String, Vec<u8>, u32)>,
    nocloud: Option<(String, String)>,
    private_network: bool,
    nspawn_args: Vec<String>,
    boot_timeout: Duration,
}

/// A machine named after `prefix` (plus this process's pid and a counter).
pub fn machine(prefix: &str) -> Builder {
    Builder {
        prefix: prefix.to_owned(),
        binds: Vec::new(),
        files: Vec::new(),
        nocloud: None,
        private_network: false,
        nspawn_args: Vec::new(),
        boot_timeout: BOOT_TIMEOUT,
    }
}

impl Builder {
    /// Bind-mounts a host file or directory read-only at `guest` (e.g. the
    /// static attach-node binary).
    pub fn bind_ro(mut self, host: impl AsRef<Path>, guest: &str) -> Self {
        self.binds
            .push((host.as_ref().to_path_buf(), guest.to_owned(), true));
        self
    }

    /// A node-to-be: the stand-in kubelet (lab/src/bin/standin_kubelet,
    /// which plays the kubelet's part on the wire) as /usr/bin/kubelet, with
    /// the kubelet package's unit (kubeadm's vector), as a kubelet package
    /// would install them.
    pub fn standin_kubelet(self) -> Self {
        self.kubelet_package(workspace_bin("standin-kubelet"))
    }

    /// `kubelet` (a host path: the stand-in, or the real upstream binary)
    /// as /usr/bin/kubelet, with the kubelet package's unit (kubeadm's
    /// vector), as a kubelet package would install them.
    pub fn kubelet_package(self, kubelet: impl AsRef<Path>) -> Self {
        self.bind_ro(kubelet, "/usr/bin/kubelet").file(
            "/lib/systemd/system/kubelet.service",
            include_str!("../vectors/kubeadm-join/kubelet.service"),
            0o644,
        )
    }

    /// Bind-mounts a host directory read-write at `guest`.
    pub fn bind_rw(mut self, host: impl AsRef<Path>, guest: &str) -> Self {
        self.binds
            .push((host.as_ref().to_path_buf(), guest.to_owned(), false));
        self
    }

    /// Puts a file into the machine's root (its overlay) before boot.
    pub fn file(mut self, guest: &str, contents: impl AsRef<[u8]>, mode: u32) -> Self {
        self.files
            .push((guest.to_owned(), contents.as_ref().to_vec(), mode));
        self
    }

    /// Lets cloud-init run at boot from a NoCloud seed (by default the
    /// harness disables cloud-init). `boot()` then also waits for it.
    pub fn nocloud(mut self, user_data: &str, meta_data: &str) -> Self {
        self.nocloud = Some((user_data.to_owned(), meta_data.to_owned()));
        self
    }

    /// Its own network namespace (only `lo`) instead of the host's; net.*
    /// sysctls are then writable inside without touching the host.
    pub fn private_network(mut self) -> Self {
        self.private_network = true;
        self
    }

    /// Runs in the named network namespace at `path` (`ip netns`), made
    /// beforehand so that something can listen in it before boot. It keeps
    /// `--private-network` too: without it nspawn (252) leaves /proc/sys/net
    /// read-only, and a join's sysctls fail.
    pub fn network_namespace(self, path: &str) -> Self {
        self.private_network()
            .nspawn_arg(&format!("--network-namespace-path={path}"))
    }

    /// One more systemd-nspawn argument (before `-D`).
    pub fn nspawn_arg(mut self, arg: &str) -> Self {
        self.nspawn_args.push(arg.to_owned());
        self
    }

    pub fn boot_timeout(mut self, t: Duration) -> Self {
        self.boot_timeout = t;
        self
    }

    /// Starts and waits until systemd says running or degraded.
    pub fn boot(self) -> Machine {
        let mut m = self.start();
        m.wait_booted();
        m
    }

    /// Starts nspawn and returns once the container's PID 1 exists, without
    /// waiting for the boot to finish (see `Machine::wait_booted`).
    pub fn start(self) -> Machine {
        let base = root::base_root();
        reap_stale_machines();
        let name = unique_name(&self.prefix);
        let dir = machines_dir().join(&name);
        let mut m = Machine {
            merged: dir.join("merged"),
            name,
            dir,
            cgroups: Vec::new(),
            child: None,
            nspawn: None,
            pid1: None,
            pidns: None,
            spawned: None,
            boot_time: None,
            boot_timeout: self.boot_timeout,
            done: false,
        };
        // From here on, Drop tears down whatever exists.
        if let Err(e) = self.prepare(&mut m, base) {
            m.fail(&e);
        }
        m.spawn(&self);
        m
    }

    fn prepare(&self, m: &mut Machine, base: &Path) -> Result<(), String> {
        let owner = ProcId::me().encode();
        with_machines_lock(|| -> Result<(), String> {
            fs::create_dir(&m.dir).map_err(|e| format!("mkdir {}: {e}", m.dir.display()))?;
            fs::write(m.dir.join("owner"), &owner).map_err(|e| e.to_string())
        })?;
        for sub in ["upper", "work", "merged", "containerd", "scratch"] {
            fs::create_dir(m.dir.join(sub)).map_err(|e| format!("mkdir {sub}: {e}"))?;
        }
        for (host_path, guest, _) in &self.binds {
            if !host_path.exists() {
                return Err(format!(
                    "bind source {} does not exist",
                    host_path.display()
                ));
            }
            for s in [host_path.to_string_lossy().as_ref(), guest.as_str()] {
                if s.contains(':') {
                    return Err(format!("bind path {s:?} contains ':'"));
                }
            }
        }

        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            m.dir.join("upper").display(),
            m.dir.join("work").display()
        );
        let out = Command::new("mount")
            .args([
                "-t",
                "overlay",
                &format!("attach-node-{}", m.name),
                "-o",
                &opts,
            ])
            .arg(&m.merged)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount overlay: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }

        // The machine's own files, in its upper layer.
        let mut files: Vec<(String, Vec<u8>, u32)> = vec![
            (
                "/etc/hostname".into(),
                format!("{}\n", m.name).into_bytes(),
                0o644,
            ),
            (
                format!("/etc/systemd/system/{CGROUP_RW_UNIT}"),
                CGROUP_RW_UNIT_TEXT.into(),
                0o644,
            ),
        ];
        match &self.nocloud {
            None => files.push(("/etc/cloud/cloud-init.disabled".into(), Vec::new(), 0o644)),
            Some((user, meta)) => {
                files.push((
                    "/var/lib/cloud/seed/nocloud/user-data".into(),
                    user.clone().into_bytes(),
                    0o600,
                ));
                files.push((
                    "/var/lib/cloud/seed/nocloud/meta-data".into(),
                    meta.clone().into_bytes(),
                    0o600,
                ));
                files.push((
                    "/etc/cloud/cloud.cfg.d/99-attach-node-e2e.cfg".into(),
                    b"datasource_list: [NoCloud, None]\nlocale: false\n".to_vec(),
                    0o644,
                ));
            }
        }
        files.extend(self.files.iter().cloned());
        for (guest, contents, mode) in &files {
            m.write_file(guest, contents, *mode);
        }
        let wants = m.path("/etc/systemd/system/sysinit.target.wants");
        fs::create_dir_all(&wants).map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(format!("../{CGROUP_RW_UNIT}"), wants.join(CGROUP_RW_UNIT))
            .map_err(|e| format!("enable {CGROUP_RW_UNIT}: {e}"))?;

        // One cgroup per hierarchy, recorded before it exists so a reaper
        // finds it whatever happens next.
        let dirs = host::cgroup_dirs_for(&format!("attach-node-{}", m.name))?;
        debug_assert!(m.name.starts_with("e2e-")); // leaf: host::CGROUP_PREFIX
        let list: String = dirs.iter().map(|d| format!("{}\n", d.display())).collect();
        fs::write(m.dir.join("cgroups"), list).map_err(|e| e.to_string())?;
        m.cgroups = dirs;
        host::create_cgroups(&m.cgroups)
    }
}

// ------------------------------------------------------------------- machine

/// A booted (or booting) machine. Dropping it tears it down; `shutdown()`
/// does the same and reports.
pub struct Machine {
    name: String,
    dir: PathBuf,
    merged: PathBuf,
    cgroups: Vec<PathBuf>,
    child: Option<Child>,
    nspawn: Option<ProcId>,
    pid1: Option<ProcId>,
    pidns: Option<String>,
    spawned: Option<Instant>,
    boot_time: Option<Duration>,
    boot_timeout: Duration,
    done: bool,
}

impl Machine {
    fn spawn(&mut self, b: &Builder) {
        use std::os::unix::process::CommandExt;
        let nspawn = host::which("systemd-nspawn").expect("systemd-nspawn");
        let mut cmd = Command::new(nspawn);
        cmd.args([
            "--boot",
            "--register=no",
            "--keep-unit",
            "--console=pipe",
            "--capability=all",
            "--system-call-filter=@keyring",
        ])
        .arg(format!("--machine={}", self.name))
        .arg(format!(
            "--bind={}:/var/lib/containerd",
            self.dir.join("containerd").display()
        ));
        for (host_path, guest, ro) in &b.binds {
            let flag = if *ro { "--bind-ro" } else { "--bind" };
            cmd.arg(format!("{flag}={}:{guest}", host_path.display()));
        }
        if b.private_network {
            cmd.arg("--private-network");
        }
        cmd.args(&b.nspawn_args).arg("-D").arg(&self.merged);
        // The unified-hierarchy switch makes the container boot degraded and
        // runc fail on these hosts: keep nspawn's default.
        cmd.env_remove("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY");

        let console = self.console_path();
        let log =
            fs::File::create(&console).unwrap_or_else(|e| self.fail(&format!("console log: {e}")));
        let log2 = log.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);

        let procs: Vec<CString> = self
            .cgroups
            .iter()
            .map(|d| CString::new(d.join("cgroup.procs").as_os_str().as_bytes()).unwrap())
            .collect();
        // SAFETY: between fork and exec this only makes async-signal-safe
        // system calls on memory allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                // Join our own cgroup in every hierarchy ("0" = the writer):
                // nspawn with --keep-unit makes payload/ and supervisor/
                // under its cgroup, and two containers sharing one interfere.
                for p in &procs {
                    let fd = sys::open(p.as_ptr(), sys::O_WRONLY | sys::O_CLOEXEC);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let n = sys::write(fd, b"0".as_ptr().cast(), 1);
                    let err = std::io::Error::last_os_error();
                    sys::close(fd);
                    if n != 1 {
                        return Err(err);
                    }
                }
                // Our own session: a terminal's Ctrl-C is for cargo, not
                // for the container; the session is killed as a group.
                if sys::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // If the test thread dies without tearing down, nspawn
                // halts the container (the reaper unmounts later).
                if sys::prctl(sys::PR_SET_PDEATHSIG, sys::SIGTERM as std::ffi::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.spawned = Some(Instant::now());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| self.fail(&format!("start systemd-nspawn: {e}")));
        let nspawn_pid = child.id();
        self.child = Some(child);
        self.nspawn = ProcId::of(nspawn_pid);
        if let Some(n) = self.nspawn {
            let _ = fs::write(self.dir.join("nspawn"), n.encode());
        }

        // PID 1 is nspawn's child whose comm is "systemd" (a short-lived
        // intermediate process comes first).
        let found = host::poll(PID1_TIMEOUT, Duration::from_millis(20), || {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                return Some(Err(st));
            }
            host::all_pids()
                .into_iter()
                .filter_map(host::proc_stat)
                .find(|s| s.ppid == nspawn_pid && s.comm == "systemd")
                .map(|s| Ok(s.pid))
        });
        match found {
            Some(Ok(pid)) => {
                self.pid1 = ProcId::of(pid);
                self.pidns = host::pid_ns(pid);
            }
            Some(Err(st)) => self.fail(&format!("systemd-nspawn exited during start ({st})")),
            None => self.fail(&format!(
                "no systemd child of nspawn (pid {nspawn_pid}) after {} s",
                PID1_TIMEOUT.as_secs()
            )),
        }
    }

    /// Waits (bounded by the builder's boot timeout) until `systemctl
    /// is-system-running` says running or degraded, and prints the boot
    /// time. Degraded boots print their failed units.
    pub fn wait_booted(&mut self) {
        if self.boot_time.is_some() {
            return;
        }
        let spawned = self.spawned.expect("machine was started");
        let deadline = spawned + self.boot_timeout;
        let mut last;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                self.fail(&format!("systemd-nspawn exited during boot ({st})"));
            }
            match self.try_exec(&["systemctl", "is-system-running"], Duration::from_secs(5)) {
                Ok(out) => {
                    last = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    if last == "running" || last == "degraded" {
                        break;
                    }
                }
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                let jobs = self
                    .try_exec(
                        &["systemctl", "list-jobs", "--no-pager"],
                        Duration::from_secs(5),
                    )
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                self.fail(&format!(
                    "not booted after {:.1} s: is-system-running says {last:?}; pending jobs:\n{jobs}",
                    self.boot_timeout.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let took = spawned.elapsed();
        self.boot_time = Some(took);
        eprintln!(
            "[e2e] {}: {last} {:.2} s after starting nspawn (PID 1 = host pid {})",
            self.name,
            took.as_secs_f64(),
            self.pid1.map_or(0, |p| p.pid)
        );
        if last == "degraded" {
            let failed = self
                .try_exec(
                    &[
                        "systemctl",
                        "list-units",
                        "--failed",
                        "--plain",
                        "--no-legend",
                    ],
                    Duration::from_secs(5),
                )
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            eprintln!("[e2e] {}: degraded; failed units:\n{failed}", self.name);
        }
    }

    // ---------------------------------------------------------- accessors

    /// The machine name, which is also its hostname.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The container's PID 1 as a host pid.
    pub fn pid1(&self) -> u32 {
        self.pid1.expect("machine has a PID 1").pid
    }

    /// Time from starting nspawn to running/degraded.
    pub fn boot_time(&self) -> Option<Duration> {
        self.boot_time
    }

    /// The machine's directory on the host (overlay layers, console log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host directory /var/lib/containerd is bound from.
    pub fn containerd_dir(&self) -> PathBuf {
        self.dir.join("containerd")
    }

    /// A guest path as a host path in the merged root. Writes there are
    /// seen inside at once; bind mounts (and /var/lib/containerd) are not
    /// part of it.
    pub fn path(&self, guest: &str) -> PathBuf {
        self.merged.join(relative_guest_path(guest))
    }

    fn console_path(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// Writes a file into the root (parents created), owned by root.
    pub fn write_file(&self, guest: &str, contents: impl AsRef<[u8]>, mode: u32) {
        let p = self.path(guest);
        let parent = p.parent().unwrap();
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
    }

    /// Reads a file of the root ("" when absent).
    pub fn read_file(&self, guest: &str) -> String {
        fs::read_to_string(self.path(guest)).unwrap_or_default()
    }

    // ------------------------------------------------------------ commands

    /// Runs `argv` inside with `nsenter -t PID1 -a` (every namespace, the
    /// host's capabilities, the test's cgroups), bounded by EXEC_TIMEOUT.
    /// Panics only if it cannot run or times out; check the status yourself.
    pub fn exec(&self, argv: &[&str]) -> Output {
        self.exec_timeout(argv, EXEC_TIMEOUT)
    }

    pub fn exec_timeout(&self, argv: &[&str], timeout: Duration) -> Output {
        self.try_exec(argv, timeout)
            .unwrap_or_else(|e| self.fail(&format!("{argv:?}: {e}")))
    }

    /// `exec` without panicking: Err says why no Output exists.
    pub fn try_exec(&self, argv: &[&str], timeout: Duration) -> Result<Output, String> {
        let pid1 = self.pid1.ok_or("the machine has no PID 1")?;
        if !pid1.alive() {
            return Err(format!("the machine's PID 1 ({}) is gone", pid1.pid));
        }
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &pid1.pid.to_string(), "-a", "--"])
            .args(argv)
            .env_clear()
            .env("PATH", GUEST_PATH)
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .env("SYSTEMD_COLORS", "0")
            .env("SYSTEMD_PAGER", "");
        host::run_bounded(&mut cmd, &self.dir.join("scratch"), timeout).map_err(|e| e.to_string())
    }

    /// Runs `argv` and returns its stdout; panics (with the journal) unless
    /// it exits 0.
    pub fn run(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        if !out.status.success() {
            self.fail(&format!(
                "{argv:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sh -c script`, must exit 0; returns stdout.
    pub fn sh(&self, script: &str) -> String {
        self.run(&["sh", "-c", script])
    }

    /// Runs `argv` as a transient unit of the machine's systemd
    /// (`systemd-run --wait --pipe`): its cgroup, limits and environment
    /// rather than the host's. Check the status yourself.
    pub fn systemd_run(&self, argv: &[&str]) -> Output {
        let mut full = vec![
            "systemd-run",
            "--wait",
            "--pipe",
            "--quiet",
            "--collect",
            "--",
        ];
        full.extend_from_slice(argv);
        self.exec(&full)
    }

    /// `systemctl ARGS`, must exit 0; returns stdout.
    pub fn systemctl(&self, args: &[&str]) -> String {
        let mut argv = vec!["systemctl"];
        argv.extend_from_slice(args);
        self.run(&argv)
    }

    /// `systemctl show -p PROP --value UNIT`, without the trailing newline.
    pub fn systemctl_show(&self, unit: &str, prop: &str) -> String {
        self.systemctl(&["show", "-p", prop, "--value", unit])
            .trim_end_matches('\n')
            .to_owned()
    }

    pub fn is_active(&self, unit: &str) -> bool {
        self.exec(&["systemctl", "is-active", "--quiet", unit])
            .status
            .success()
    }

    pub fn daemon_reload(&self) {
        self.systemctl(&["daemon-reload"]);
    }

    /// Polls `check` every 100 ms until true; fails (with the journal)
    /// after `timeout`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Machine) -> bool,
    ) {
        if host::poll(timeout, Duration::from_millis(100), || {
            check(self).then_some(())
        })
        .is_none()
        {
            self.fail(&format!(
                "timed out after {:.0} s waiting for {what}",
                timeout.as_secs_f64()
            ));
        }
    }

    /// Waits until `unit` is active; fails (with the journal) after
    /// `timeout`.
    pub fn wait_active(&self, unit: &str, timeout: Duration) {
        self.wait_until(&format!("{unit} to be active"), timeout, |m| {
            m.is_active(unit)
        });
    }

    /// The last `n` lines of the machine's journal.
    pub fn journal(&self, n: usize) -> String {
        match self.try_exec(
            &["journalctl", "-n", &n.to_string(), "--no-pager", "-q"],
            Duration::from_secs(10),
        ) {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => format!("(no journal: {e})"),
        }
    }

    /// `msg` plus the journal's last 50 lines and the console's last 15.
    pub fn diagnostics(&self, msg: &str) -> String {
        format!(
            "e2e machine {}: {msg}\n--- journalctl -n 50 (inside) ---\n{}\n--- nspawn console ({}) ---\n{}\n---",
            self.name,
            self.journal(50).trim_end(),
            self.console_path().display(),
            host::tail(&self.console_path(), 15)
        )
    }

    /// Panics with `msg` and the diagnostics. (Drop then tears down.)
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{}", self.diagnostics(msg))
    }

    // ------------------------------------------------------------ teardown

    /// What this machine put on the host, to check it is all gone.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            name: self.name.clone(),
            dir: self.dir.clone(),
            cgroups: self.cgroups.clone(),
            nspawn: self.nspawn,
            pid1: self.pid1,
            pidns: self.pidns.clone(),
            processes: host::cgroup_pids(&self.cgroups)
                .into_iter()
                .filter_map(ProcId::of)
                .collect(),
        }
    }

    /// Halts the machine (SIGTERM to nspawn, then SIGKILL to its session
    /// and cgroups), unmounts, removes its cgroups and directory.
    pub fn shutdown(mut self) -> Teardown {
        self.teardown()
    }

    fn teardown(&mut self) -> Teardown {
        let started = Instant::now();
        let mut problems = Vec::new();
        let mut graceful = true;
        let mut how = if self.child.is_none() {
            "nspawn never started"
        } else {
            "nspawn had already exited"
        };
        self.done = true;
        if let Some(child) = self.child.as_mut()
            && child.try_wait().ok().flatten().is_none()
        {
            let pid = child.id();
            how = "halted on SIGTERM";
            host::signal(pid, sys::SIGTERM);
            if host::wait_child(child, STOP_GRACE).is_none() {
                graceful = false;
                how = "nspawn ignored SIGTERM: killed";
                host::signal_group(pid, sys::SIGKILL);
                host::signal(pid, sys::SIGKILL);
                host::kill_cgroups(&self.cgroups, KILL_WAIT);
                if host::wait_child(child, KILL_WAIT).is_none() {
                    problems.push(format!("systemd-nspawn (pid {pid}) survived SIGKILL"));
                }
            }
        }
        // A PID 1 orphaned by a dead nspawn: killing it ends its namespace.
        if let Some(p) = self.pid1.filter(ProcId::alive) {
            graceful = false;
            how = "PID 1 outlived nspawn: killed";
            host::signal(p.pid, sys::SIGKILL);
            let _ = host::poll(KILL_WAIT, Duration::from_millis(20), || {
                (!p.alive()).then_some(())
            });
        }
        problems.extend(host::remove_cgroups(&self.cgroups));
        problems.extend(host::unmount_all_under(&self.dir));
        let _ = fs::remove_dir(format!("/run/systemd/nspawn/propagate/{}", self.name));
        if let Err(e) = host::remove_tree(&self.dir) {
            problems.push(e);
        }
        problems.extend(self.footprint().leftovers());
        let t = Teardown {
            name: self.name.clone(),
            took: started.elapsed(),
            graceful,
            how,
            problems,
        };
        eprintln!("[e2e] {t}");
        t
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if std::thread::panicking() {
            eprintln!("[e2e] {}: tearing down after a panic", self.name);
        }
        let t = self.teardown();
        if !t.problems.is_empty() {
            eprintln!("[e2e] WARNING: {t}");
        }
    }
}

/// The result of tearing a machine down.
#[derive(Debug)]
pub struct Teardown {
    pub name: String,
    pub took: Duration,
    /// The container halted on SIGTERM (nothing had to be killed).
    pub graceful: bool,
    /// What happened, in words.
    pub how: &'static str,
    /// Anything left behind or any step that failed.
    pub problems: Vec<String>,
}

impl Teardown {
    pub fn assert_clean(&self) {
        assert!(self.problems.is_empty(), "{self}");
    }
}

impl fmt::Display for Teardown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: torn down in {:.2} s ({})",
            self.name,
            self.took.as_secs_f64(),
            self.how
        )?;
        for p in &self.problems {
            write!(f, "\n  problem: {p}")?;
        }
        Ok(())
    }
}

/// Where a machine lived on the host.
#[derive(Clone, Debug)]
pub struct Footprint {
    pub name: String,
    pub dir: PathBuf,
    pub cgroups: Vec<PathBuf>,
    pub nspawn: Option<ProcId>,
    pub pid1: Option<ProcId>,
    pub pidns: Option<String>,
    /// Every process in its cgroups when the footprint was taken (nspawn,
    /// systemd, containerd, ...).
    pub processes: Vec<ProcId>,
}

impl Footprint {
    /// What is still there: mounts under its directory (per
    /// /proc/self/mountinfo and /proc/mounts), the directory, nspawn, PID
    /// 1, any process in its pid namespace, its cgroups. Empty = clean.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for m in host::mounts_under(&self.dir) {
            left.push(format!("still mounted: {}", m.display()));
        }
        for line in fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
        {
            let on = line.split(' ').nth(1).unwrap_or_default();
            if Path::new(&on.replace("\\040", " ")).starts_with(&self.dir) {
                left.push(format!("/proc/mounts: {line}"));
            }
        }
        if self.dir.exists() {
            left.push(format!("directory left: {}", self.dir.display()));
        }
        for (what, p) in [("systemd-nspawn", self.nspawn), ("PID 1", self.pid1)] {
            if let Some(p) = p.filter(ProcId::alive) {
                left.push(format!("{what} still running: pid {}", p.pid));
            }
        }
        // Namespace inodes are reused at once (a machine booted in parallel
        // can get this one), so the namespace is only this machine's while
        // its PID 1 lives. And once PID 1 is gone, so is everything else in
        // it: the kernel kills and reaps them before PID 1 finishes exiting.
        if let Some(ns) = self
            .pidns
            .as_ref()
            .filter(|_| self.pid1.is_some_and(|p| p.alive()))
        {
            let live: Vec<u32> = host::pids_in_ns(ns)
                .into_iter()
                .filter(|p| host::proc_stat(*p).is_some_and(|s| s.state != 'Z'))
                .collect();
            if !live.is_empty() {
                left.push(format!(
                    "processes still in its pid namespace {ns}: {live:?}"
                ));
            }
        }
        let alive: Vec<u32> = self
            .processes
            .iter()
            .filter(|p| p.alive())
            .map(|p| p.pid)
            .collect();
        if !alive.is_empty() {
            left.push(format!("processes it ran are still running: {alive:?}"));
        }
        for c in &self.cgroups {
            if c.exists() {
                left.push(format!("cgroup left: {}", c.display()));
            }
        }
        left
    }
}

/// A binary of the workspace next to attach-node in the target directory.
/// `cargo test --workspace` builds them; a lone `cargo test --test e2e`
/// builds only this package's, so the lab's are built here then (once:
/// cargo's own lock keeps concurrent builds apart).
pub fn workspace_bin(name: &str) -> PathBuf {
    let path = attach_node_bin().with_file_name(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "attach-node-lab", "--bins"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cannot build the lab's binaries");
    }
    assert!(path.exists(), "{} is missing", path.display());
    path
}
