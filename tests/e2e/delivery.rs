//! The delivery artifacts in a booted Debian (real systemd, real cloud-init,
//! real containerd): `systemd-analyze verify` for the first-boot unit,
//! `cloud-init schema` for every userdata example, and each example run for
//! real from a NoCloud seed, joining the machine to the loopback lab (the
//! one-liner downloading install.sh and the binary from it). Part of the
//! `e2e` test target (tests/e2e.rs), so it skips and requires as that does.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::harness::{self, Machine, machine};
use crate::host;
use attach_node::host::fsops::sha256_hex;
use attach_node_lab::{Lab, LabConfig};
use examples::{
    EXAMPLES, PLACEHOLDER_CONTROL_PLANE, PLACEHOLDER_DOWNLOADS, PLACEHOLDER_TOKEN, UNIT,
};

#[path = "../support/examples.rs"]
mod examples;

const GUEST_BIN: &str = "/usr/local/bin/attach-node";
const UNIT_NAME: &str = "attach-node-firstboot.service";
const UNIT_PATH: &str = "/etc/systemd/system/attach-node-firstboot.service";
const ENV_FILE: &str = "/etc/attach-node/firstboot.env";
const TOKEN_FILE: &str = "/etc/attach-node/openapi-token";
const DONE: &str = "/var/lib/attach-node/firstboot.done";

const INSTALL_SH: &str = include_str!("../../packaging/install.sh");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `systemd-analyze verify` inside the machine accepts the unit without a
/// word (and refuses a broken copy, so the check has teeth); enabling it
/// makes the symlink `attach-node uninstall` removes; without its env file
/// it fails instead of joining with no settings; with its marker it is
/// skipped and runs nothing.
#[test]
fn first_boot_unit_verifies_and_guards_itself() {
    let Some(_t) = harness::begin("first_boot_unit_verifies_and_guards_itself") else {
        return;
    };
    let broken = UNIT.replace(
        "ExecStart=/usr/local/bin/attach-node join",
        "ExecStart=/usr/local/bin/attach-node-missing join",
    );
    assert_ne!(broken, UNIT);
    let m = machine("unit")
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .file(UNIT_PATH, UNIT, 0o644)
        .file("/etc/systemd/system/e2e-broken.service", broken, 0o644)
        .boot();

    let verify = m.exec(&["systemd-analyze", "verify", UNIT_PATH]);
    let said = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(verify.status.success(), "systemd-analyze verify: {said}");
    assert!(
        !said.contains("attach-node"),
        "systemd-analyze verify has something to say about the unit:\n{said}"
    );
    let verify = m.exec(&[
        "systemd-analyze",
        "verify",
        "/etc/systemd/system/e2e-broken.service",
    ]);
    let said = text(&verify.stderr);
    assert!(
        !verify.status.success() && said.contains("attach-node-missing"),
        "verify accepted a unit whose binary is missing: {said}"
    );

    m.systemctl(&["enable", UNIT_NAME]);
    assert!(
        m.path("/etc/systemd/system/multi-user.target.wants/attach-node-firstboot.service")
            .is_symlink(),
        "enabled where `attach-node uninstall` looks for it"
    );

    // No env file: a failed unit that says why, and no marker.
    let start = m.exec(&["systemctl", "start", UNIT_NAME]);
    assert!(!start.status.success(), "started without its env file");
    assert_eq!(m.systemctl_show(UNIT_NAME, "Result"), "resources");
    let journal = m.run(&["journalctl", "-u", UNIT_NAME, "--no-pager", "-o", "cat"]);
    assert!(
        journal.contains("Failed to load environment files"),
        "{journal}"
    );
    assert!(!m.path(DONE).exists());

    // With the marker: skipped, attach-node never runs.
    m.write_file(ENV_FILE, "ATTACH_NODE_LOG=info\n", 0o600);
    m.write_file(DONE, "", 0o644);
    m.systemctl(&["reset-failed", UNIT_NAME]);
    m.systemctl(&["start", UNIT_NAME]);
    assert_eq!(m.systemctl_show(UNIT_NAME, "ConditionResult"), "no");
    assert_eq!(m.systemctl_show(UNIT_NAME, "ExecMainPID"), "0");
    m.shutdown().assert_clean();
}

/// `cloud-init schema` (the Debian root's cloud-init) accepts every
/// example, and refuses a broken one.
#[test]
fn cloud_init_schema_accepts_every_example() {
    let Some(_t) = harness::begin("cloud_init_schema_accepts_every_example") else {
        return;
    };
    let mut b = machine("schema");
    for (name, yaml) in EXAMPLES {
        b = b.file(&format!("/root/examples/{name}"), yaml, 0o600);
    }
    // `permissions` must be a string: an octal number in YAML is a trap
    // (0600 would be 384), and the schema says so.
    let broken = EXAMPLES[1]
        .1
        .replacen("permissions: \"0600\"", "permissions: 0600", 1);
    assert_ne!(broken, EXAMPLES[1].1);
    let m = b.file("/root/examples/broken.yaml", broken, 0o600).boot();
    let version = m.run(&["cloud-init", "--version"]);
    eprintln!("[e2e] {}", version.trim());
    for (name, _) in EXAMPLES {
        let path = format!("/root/examples/{name}");
        let out = m.exec(&["cloud-init", "schema", "--config-file", &path]);
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "cloud-init schema {name}: {said}");
        assert!(said.contains("Valid cloud-config"), "{name}: {said}");
    }
    let out = m.exec(&[
        "cloud-init",
        "schema",
        "--config-file",
        "/root/examples/broken.yaml",
    ]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success() && said.contains("write_files.0.permissions"),
        "cloud-init schema accepted a broken example: {said}"
    );
    m.shutdown().assert_clean();
}

/// firstboot-unit.yaml, for real: cloud-init writes the env file (0600)
/// and the unit, enables and starts it from runcmd; the unit runs
/// `/usr/local/bin/attach-node join` with the env file's settings, the
/// node joins the lab, the marker is written, and a second start is
/// skipped. The token is in no argv, no journal, no unit property, no
/// log, no environment but attach-node's, and in no file anyone but root
/// can read.
#[test]
fn firstboot_userdata_joins_for_real() {
    let Some(_t) = harness::begin("firstboot_userdata_joins_for_real") else {
        return;
    };
    let Some(run) = UserdataJoin::boot("firstboot", EXAMPLES[1].1, LabConfig::default()) else {
        return;
    };
    run.assert_joined_once();
    let m = run.shutdown();
    m.shutdown().assert_clean();
}

/// autoscaler-node.yaml, for real: as firstboot-unit.yaml, and the node's
/// labels from the config file reach the kubelet and the Node.
#[test]
fn autoscaler_userdata_joins_with_its_labels() {
    let Some(_t) = harness::begin("autoscaler_userdata_joins_with_its_labels") else {
        return;
    };
    let Some(run) = UserdataJoin::boot("autoscaler", EXAMPLES[2].1, LabConfig::default()) else {
        return;
    };
    run.assert_joined_once();
    let m = &run.machine;
    assert_eq!(
        m.run(&["stat", "-c", "%a %U:%G", "/etc/attach-node/config.yaml"]),
        "644 root:root\n"
    );
    let flags = m.read_file("/var/lib/kubelet/kubeadm-flags.env");
    assert!(flags.contains("workload_type=cpu"), "{flags}");
    let nodes = run.lab.nodes();
    let node = nodes
        .iter()
        .find(|n| n.registered_by.is_some())
        .unwrap_or_else(|| m.fail(&format!("no Node registered: {nodes:?}")));
    assert_eq!(
        node.labels.get("workload_type").map(String::as_str),
        Some("cpu"),
        "{node:?}"
    );
    // `ess: true`: ACK's autoscaler-node label.
    assert_eq!(
        node.labels.get("k8s.aliyun.com").map(String::as_str),
        Some("true"),
        "{node:?}"
    );
    let m = run.shutdown();
    m.shutdown().assert_clean();
}

/// one-liner.yaml, for real: runcmd downloads install.sh from the lab's
/// release directory and checks it against the example's pin; install.sh
/// downloads the binary, checks it against SHA256SUMS, installs it and
/// runs the join with the token on stdin, labels from its arguments.
#[test]
fn one_liner_userdata_installs_and_joins() {
    let Some(_t) = harness::begin("one_liner_userdata_installs_and_joins") else {
        return;
    };
    let binary = fs::read(harness::attach_node_bin()).expect("the binary under test");
    let sum = sha256_hex(&binary);
    let lab = LabConfig::default()
        .download("install.sh", INSTALL_SH)
        .download("attach-node-0.1.0-amd64", binary)
        .download("SHA256SUMS", format!("{sum}  attach-node-0.1.0-amd64\n"));
    let Some(run) = UserdataJoin::boot("oneliner", EXAMPLES[0].1, lab) else {
        return;
    };
    let m = &run.machine;
    let status = text(&m.exec(&["cloud-init", "status", "--long"]).stdout);
    assert!(
        status.contains("status: done"),
        "{}",
        m.diagnostics(&format!("cloud-init status:\n{status}"))
    );
    run.assert_token_file();
    assert_eq!(
        m.run(&["stat", "-c", "%a %U:%G", GUEST_BIN]),
        "755 root:root\n"
    );
    assert_eq!(
        m.run(&["sha256sum", GUEST_BIN]),
        format!("{sum}  {GUEST_BIN}\n"),
        "installed what SHA256SUMS promised"
    );
    let output = m.read_file("/var/log/cloud-init-output.log");
    for said in [
        "/run/attach-node-install.sh: OK",
        "install.sh: installed /usr/local/bin/attach-node",
        "install.sh: running /usr/local/bin/attach-node join",
        "is registered",
    ] {
        assert!(output.contains(said), "{said:?} not in:\n{output}");
    }
    assert!(
        m.is_active("kubelet.service"),
        "the join started the kubelet"
    );
    let state = m.run(&[GUEST_BIN, "status", "--output", "json"]);
    assert!(state.contains("\"state\": \"joined\""), "{state}");
    let flags = m.read_file("/var/lib/kubelet/kubeadm-flags.env");
    assert!(flags.contains("workload_type=cpu"), "{flags}");
    run.assert_token_kept();
    let m = run.shutdown();
    m.shutdown().assert_clean();
}

// ------------------------------------------------------------ the real join

/// A machine booted from an example's userdata, with the lab in its
/// network namespace and a sampler watching every process on the host.
struct UserdataJoin {
    machine: Machine,
    lab: NsLab,
    token: String,
    sampler: Sampler,
    _netns: NetNs,
}

impl UserdataJoin {
    /// The lab must be reachable before cloud-init runs, and the userdata
    /// must name it, so the network namespace comes first: the lab listens
    /// on its 127.0.0.1, then the machine boots into it
    /// (`--network-namespace-path`), with net.* sysctls of its own.
    fn boot(prefix: &str, example: &str, lab: LabConfig) -> Option<UserdataJoin> {
        let netns = NetNs::create()?;
        let lab = netns.start_lab(lab);
        let token = lab.openapi_token();
        let mut user_data = substitute(example, &lab.control_plane_url(), &token);
        if user_data.contains(PLACEHOLDER_DOWNLOADS) {
            user_data = user_data.replace(
                PLACEHOLDER_DOWNLOADS,
                &format!("{}/downloads", lab.control_plane_url()),
            );
        }
        // The control plane's CA joins the system roots, as a public CA
        // would be: the examples name no CA file.
        let bundle =
            fs::read_to_string(harness::base_root().join("etc/ssl/certs/ca-certificates.crt"))
                .unwrap_or_default()
                + &lab.control_plane_ca_pem();
        let sampler = Sampler::start(token.clone());
        let mut machine = machine(prefix);
        if !example.contains(PLACEHOLDER_DOWNLOADS) {
            // Baked into the image; the one-liner downloads it instead.
            machine = machine.bind_ro(harness::attach_node_bin(), GUEST_BIN);
        }
        let machine = machine
            .network_namespace(&netns.path())
            .standin_kubelet()
            .file("/etc/ssl/certs/ca-certificates.crt", bundle, 0o644)
            .nocloud(
                &user_data,
                &format!("instance-id: e2e-{prefix}\nlocal-hostname: {prefix}\n"),
            )
            // cloud-final waits for the join: part of the boot.
            .boot_timeout(Duration::from_secs(150))
            .boot();
        Some(UserdataJoin {
            machine,
            lab,
            token,
            sampler,
            _netns: netns,
        })
    }

    fn assert_joined_once(&self) {
        let m = &self.machine;
        let status = text(&m.exec(&["cloud-init", "status", "--long"]).stdout);
        assert!(
            status.contains("status: done"),
            "{}",
            m.diagnostics(&format!("cloud-init status:\n{status}"))
        );

        // cloud-init wrote the token (root-only), the env file naming it,
        // and the unit, verbatim.
        self.assert_token_file();
        assert!(!m.read_file(ENV_FILE).contains(&self.token));
        assert!(m.read_file(ENV_FILE).contains(TOKEN_FILE));
        assert_eq!(m.read_file(UNIT_PATH), UNIT);
        assert_eq!(m.run(&["stat", "-c", "%a", UNIT_PATH]), "644\n");
        assert_eq!(
            m.run(&["systemctl", "is-enabled", UNIT_NAME]).trim(),
            "enabled"
        );

        // The unit ran `attach-node join`, nothing else, and succeeded.
        let exec = m.systemctl_show(UNIT_NAME, "ExecStart");
        assert!(
            exec.contains("argv[]=/usr/local/bin/attach-node join ;"),
            "{exec}"
        );
        for (prop, want) in [
            ("ActiveState", "active"),
            ("SubState", "exited"),
            ("Result", "success"),
            ("ExecMainStatus", "0"),
        ] {
            assert_eq!(
                m.systemctl_show(UNIT_NAME, prop),
                want,
                "{}",
                m.diagnostics(&format!("{UNIT_NAME} {prop}"))
            );
        }
        // runcmd's `enable --now` waited for the join: cloud-final
        // finished after the unit did.
        let at = |unit: &str| -> u64 {
            m.systemctl_show(unit, "ActiveEnterTimestampMonotonic")
                .parse()
                .unwrap()
        };
        assert!(at(UNIT_NAME) > 0 && at(UNIT_NAME) <= at("cloud-final.service"));
        let journal = m.run(&["journalctl", "-u", UNIT_NAME, "--no-pager", "-o", "cat"]);
        assert!(journal.contains("is registered"), "{journal}");
        assert!(m.path(DONE).exists(), "the marker");
        assert!(
            m.is_active("kubelet.service"),
            "the join started the kubelet"
        );
        let state = m.run(&[GUEST_BIN, "status", "--output", "json"]);
        assert!(state.contains("\"state\": \"joined\""), "{state}");

        // Once: started again (as at the next boot), it is skipped.
        let started = m.systemctl_show(UNIT_NAME, "ExecMainStartTimestampMonotonic");
        m.systemctl(&["restart", UNIT_NAME]);
        assert_eq!(m.systemctl_show(UNIT_NAME, "ConditionResult"), "no");
        assert_eq!(
            m.systemctl_show(UNIT_NAME, "ExecMainStartTimestampMonotonic"),
            started,
            "the join ran again"
        );

        self.assert_token_kept();
    }

    /// cloud-init wrote the token alone to a root-only file.
    fn assert_token_file(&self) {
        let m = &self.machine;
        assert_eq!(
            m.run(&["stat", "-c", "%a %U:%G", TOKEN_FILE]),
            "600 root:root\n"
        );
        assert_eq!(m.read_file(TOKEN_FILE).trim_end(), self.token);
    }

    fn assert_token_kept(&self) {
        let m = &self.machine;
        let token = &self.token;
        // Everything the journal holds, with every field (_CMDLINE of each
        // process that logged among them).
        let journal = m.run(&["journalctl", "-b", "--no-pager", "-o", "verbose"]);
        assert!(journal.contains("attach-node"), "the journal is there");
        let show = m.run(&["systemctl", "show", UNIT_NAME]);
        let status = text(
            &m.exec(&["systemctl", "status", "--no-pager", "-l", UNIT_NAME])
                .stdout,
        );
        let console = fs::read_to_string(m.dir().join("console.log")).unwrap_or_default();
        for (what, haystack) in [
            ("the journal", journal),
            ("systemctl show", show),
            ("systemctl status", status),
            ("the console", console),
            ("cloud-init.log", m.read_file("/var/log/cloud-init.log")),
            (
                "cloud-init-output.log",
                m.read_file("/var/log/cloud-init-output.log"),
            ),
        ] {
            assert!(!haystack.contains(token.as_str()), "the token is in {what}");
        }

        // Files: wherever the token is (the env file, cloud-init's copies
        // of the userdata), only root can read it.
        let root = PathBuf::from(format!("/proc/{}/root", m.pid1()));
        let mut holders = Vec::new();
        for dir in ["etc", "var", "run", "tmp", "root", "home"] {
            find_token(&root.join(dir), token.as_bytes(), &mut holders);
        }
        let names: Vec<String> = holders
            .iter()
            .map(|(p, mode)| format!("{:o} {}", mode, p.strip_prefix(&root).unwrap().display()))
            .collect();
        eprintln!("[e2e] files holding the token: {names:?}");
        assert!(
            names
                .iter()
                .any(|n| n.ends_with("etc/attach-node/openapi-token")),
            "{names:?}"
        );
        let readable: Vec<&String> = holders
            .iter()
            .zip(&names)
            .filter(|((_, mode), _)| mode & 0o077 != 0)
            .map(|(_, n)| n)
            .collect();
        assert!(
            readable.is_empty(),
            "files others can read hold the token: {readable:?}"
        );
    }

    /// Stops the sampler and checks what it saw over the whole boot and
    /// join; returns the machine for its teardown.
    fn shutdown(self) -> Machine {
        let seen = self.sampler.finish();
        eprintln!(
            "[e2e] sampler: {} scans, attach-node seen running in {} of them",
            seen.scans, seen.attach_node_seen
        );
        assert!(
            seen.in_cmdline.is_empty(),
            "the token was in a command line: {:?}",
            seen.in_cmdline
        );
        // The token travels in files and on stdin only: not even
        // attach-node has it in its environment.
        assert!(
            seen.in_environ.is_empty(),
            "a process had the token in its environment: {:?}",
            seen.in_environ
        );
        assert!(
            seen.attach_node_seen > 0,
            "the sampler never saw attach-node running: it did not look"
        );
        self.machine
    }
}

/// The example with the lab's control plane and token in place of its
/// placeholders (each must be there).
fn substitute(example: &str, control_plane: &str, token: &str) -> String {
    for p in [PLACEHOLDER_CONTROL_PLANE, PLACEHOLDER_TOKEN] {
        assert_eq!(example.matches(p).count(), 1, "{p} in the example");
    }
    example
        .replace(PLACEHOLDER_CONTROL_PLANE, control_plane)
        .replace(PLACEHOLDER_TOKEN, token)
}

/// Regular files under `dir` (not following links, nothing over 64 MiB)
/// that contain `needle`, with their modes.
fn find_token(dir: &Path, needle: &[u8], found: &mut Vec<(PathBuf, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(md) = e.path().symlink_metadata() else {
            continue;
        };
        if md.is_dir() {
            find_token(&e.path(), needle, found);
        } else if md.is_file()
            && md.len() < 64 << 20
            && fs::read(e.path()).is_ok_and(|b| contains(&b, needle))
        {
            found.push((e.path(), md.permissions().mode() & 0o7777));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// --------------------------------------------------------------- the sampler

#[derive(Default)]
struct Seen {
    scans: u32,
    /// "pid comm" of processes whose argv held the token.
    in_cmdline: Vec<String>,
    /// The same for environments.
    in_environ: Vec<String>,
    /// Scans that saw an attach-node process.
    attach_node_seen: u32,
}

/// Reads every host process's argv and environment every 10 ms (the
/// machine's processes are host processes too) and notes any that holds
/// the token.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Seen>>,
}

impl Sampler {
    fn start(token: String) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let me = std::process::id();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::default();
            let needle = token.as_bytes();
            while !flag.load(Ordering::Relaxed) {
                let mut saw_join = false;
                for pid in host::all_pids().into_iter().filter(|p| *p != me) {
                    let comm = host::proc_stat(pid).map(|s| s.comm).unwrap_or_default();
                    saw_join |= comm == "attach-node";
                    let who = format!("{pid} {comm}");
                    if fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|b| contains(&b, needle))
                    {
                        seen.in_cmdline.push(who.clone());
                    }
                    if fs::read(format!("/proc/{pid}/environ")).is_ok_and(|b| contains(&b, needle))
                    {
                        seen.in_environ.push(who);
                    }
                }
                seen.attach_node_seen += u32::from(saw_join);
                seen.scans += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("finished once");
        thread.join().expect("the sampler panicked")
    }
}

/// A test that failed before `finish` still stops the thread.
impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ------------------------------------------------ network namespace and lab

/// A named network namespace (`ip netns`), removed on drop. Names carry
/// the test process's pid, so ones a killed process left are removed by
/// the next run.
struct NetNs {
    name: String,
}

const NETNS_PREFIX: &str = "attach-node-e2e-";

impl NetNs {
    /// None (after printing why) where `ip` is missing; a failure instead
    /// under ATTACH_NODE_E2E=require.
    fn create() -> Option<NetNs> {
        if host::which("ip").is_none() {
            let reason = "ip is not installed (apt-get install -y iproute2)";
            if std::env::var("ATTACH_NODE_E2E").as_deref() == Ok("require") {
                panic!("ATTACH_NODE_E2E=require, but {reason}");
            }
            eprintln!("[e2e] SKIP: {reason}");
            return None;
        }
        reap_stale_netns();
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{NETNS_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = NetNs { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        Some(ns)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// The lab, in this process, listening on the namespace's 127.0.0.1:
    /// its threads are started from a thread that entered the namespace.
    fn start_lab(&self, cfg: LabConfig) -> NsLab {
        let lab = in_netns(self.path(), || Lab::start(cfg).expect("start the lab"));
        NsLab {
            lab: Some(lab),
            netns: self.path(),
        }
    }
}

/// Runs `f` on a thread inside the network namespace at `path`.
fn in_netns<T: Send + 'static>(path: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let ns = fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns(2) on an fd we own; it moves only this thread.
        let rc = unsafe { setns(ns.as_raw_fd(), CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("a thread in the network namespace panicked")
}

/// The lab, stopped from inside its namespace: stopping connects to its
/// own listeners to wake them, which only works from there.
struct NsLab {
    lab: Option<Lab>,
    netns: String,
}

impl std::ops::Deref for NsLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        self.lab.as_ref().expect("the lab runs")
    }
}

impl Drop for NsLab {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            in_netns(self.netns.clone(), move || drop(lab));
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

const CLONE_NEWNET: std::ffi::c_int = 0x4000_0000;
unsafe extern "C" {
    fn setns(fd: std::ffi::c_int, nstype: std::ffi::c_int) -> std::ffi::c_int;
}

fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
}

fn reap_stale_netns() {
    let Ok(rd) = fs::read_dir("/run/netns") else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(NETNS_PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if host::proc_stat(pid).is_none() {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &name])
                .status();
        }
    }
}
