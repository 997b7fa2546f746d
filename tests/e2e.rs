//! End-to-end tests: a real systemd (PID 1) and a real containerd in a
//! throwaway Debian machine booted with systemd-nspawn. Skipped (and
//! passing, with the reason printed) unless run as root with
//! systemd-nspawn and mmdebstrap installed; `ATTACH_NODE_E2E=require` turns
//! a skip into a failure (CI). See tests/e2e/README.md.
//!
//!     cargo test --test e2e -- --nocapture --test-threads=1

#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/host.rs"]
mod host;
#[path = "e2e/root.rs"]
mod root;

#[path = "e2e/delivery.rs"]
mod delivery;
#[path = "e2e/package.rs"]
mod package;
#[path = "e2e/real_k8s.rs"]
mod real_k8s;

use std::time::Duration;

use harness::machine;

/// Where the tests put the static binary inside a machine.
const GUEST_BIN: &str = "/usr/local/bin/attach-node";

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (1) systemd boots to running (or degraded), containerd is active and
/// answers, the cgroup remount unit ran, the static binary bound in runs,
/// and the host's sysctls stay read-only from inside.
#[test]
fn boots_with_systemd_and_containerd() {
    let Some(_t) = harness::begin("boots_with_systemd_and_containerd") else {
        return;
    };
    let m = machine("boot")
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .boot();

    let state = m.exec(&["systemctl", "is-system-running"]);
    let state = stdout(&state);
    assert!(
        matches!(state.trim(), "running" | "degraded"),
        "{}",
        m.diagnostics(&format!("is-system-running: {state}"))
    );
    assert_eq!(m.run(&["hostname"]).trim(), m.name());
    assert_eq!(m.run(&["cat", "/proc/1/comm"]).trim(), "systemd");
    if !m.is_active(harness::CGROUP_RW_UNIT) {
        m.fail("the cgroup remount unit is not active");
    }
    if !m.is_active("containerd.service") {
        m.fail("containerd is not active");
    }
    let version = m.run(&["ctr", "version"]);
    assert!(
        version.contains("Server:") && version.contains("UUID"),
        "ctr version:\n{version}"
    );
    // The remount unit made the v1 controllers writable inside.
    let mounts = m.run(&["cat", "/proc/self/mounts"]);
    for line in mounts.lines().filter(|l| l.starts_with("cgroup ")) {
        assert!(line.split(' ').nth(3).unwrap().starts_with("rw"), "{line}");
    }

    let v = m.run(&[GUEST_BIN, "--version"]);
    assert!(v.starts_with("attach-node "), "{v}");

    // The host's own sysctls are not writable from inside (same value
    // written back: harmless even if it were).
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let w = m.exec(&[
        "sh",
        "-c",
        &format!("echo {} > /proc/sys/net/ipv4/ip_forward", host_fwd.trim()),
    ]);
    assert!(
        !w.status.success(),
        "a host sysctl was writable from inside the machine"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );

    // A transient unit runs in the machine's own cgroup tree.
    let unit = m.systemd_run(&["cat", "/proc/self/cgroup"]);
    assert!(unit.status.success(), "{unit:?}");
    assert!(
        stdout(&unit).contains("/system.slice/run-"),
        "{}",
        stdout(&unit)
    );

    // The host's 127.0.0.1 is reachable (the loopback lab listens there).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::Read;
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = String::new();
        conn.read_to_string(&mut got).unwrap();
        got
    });
    m.run(&[
        "bash",
        "-c",
        &format!("echo hello from $(hostname) > /dev/tcp/127.0.0.1/{port}"),
    ]);
    assert_eq!(server.join().unwrap(), format!("hello from {}\n", m.name()));

    let boot = m.boot_time().unwrap();
    assert!(boot < harness::BOOT_TIMEOUT);
    m.shutdown().assert_clean();
}

/// (2) A unit plus a drop-in: daemon-reload, enable, start, read back,
/// disable.
#[test]
fn unit_with_drop_in_round_trip() {
    let Some(_t) = harness::begin("unit_with_drop_in_round_trip") else {
        return;
    };
    let m = machine("unit").boot();
    let unit = "e2e-demo.service";
    m.write_file(
        &format!("/etc/systemd/system/{unit}"),
        "[Unit]\nDescription=e2e demo\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n\
         ExecStart=/bin/sh -c 'echo \"$$GREETING\" > /run/e2e-demo'\n\n[Install]\nWantedBy=multi-user.target\n",
        0o644,
    );
    let dropin = format!("/etc/systemd/system/{unit}.d/10-e2e.conf");
    m.write_file(
        &dropin,
        "[Service]\nEnvironment=GREETING=hello-from-drop-in\n",
        0o644,
    );

    m.daemon_reload();
    m.systemctl(&["enable", unit]);
    assert_eq!(m.systemctl_show(unit, "UnitFileState"), "enabled");
    assert!(
        m.path("/etc/systemd/system/multi-user.target.wants/e2e-demo.service")
            .is_symlink()
    );
    m.systemctl(&["start", unit]);
    assert!(m.is_active(unit), "{}", m.diagnostics("unit not active"));
    assert_eq!(m.systemctl_show(unit, "DropInPaths"), dropin);
    assert_eq!(
        m.systemctl_show(unit, "Environment"),
        "GREETING=hello-from-drop-in"
    );
    // /run is a tmpfs inside: not in the merged root, so ask the machine.
    assert_eq!(m.read_file("/run/e2e-demo"), "");
    assert_eq!(m.run(&["cat", "/run/e2e-demo"]), "hello-from-drop-in\n");

    m.systemctl(&["disable", "--now", unit]);
    assert_eq!(m.systemctl_show(unit, "UnitFileState"), "disabled");
    assert!(!m.is_active(unit));
    assert!(
        !m.path("/etc/systemd/system/multi-user.target.wants/e2e-demo.service")
            .exists()
    );
    m.shutdown().assert_clean();
}

/// (3) containerd with `SystemdCgroup = true`: `config dump` shows it after
/// a restart, the CRI plugin loads, and runc starts a container with the
/// systemd cgroup driver (from a rootfs holding only the static binary).
#[test]
fn containerd_systemd_cgroup_config() {
    let Some(_t) = harness::begin("containerd_systemd_cgroup_config") else {
        return;
    };
    let m = machine("containerd")
        .bind_ro(harness::attach_node_bin(), "/opt/e2e-rootfs/attach-node")
        .boot();
    let before = m.run(&["containerd", "config", "dump"]);
    assert!(before.contains("SystemdCgroup = false"), "{before}");

    m.write_file(
        "/etc/containerd/config.toml",
        r#"version = 2

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
"#,
        0o644,
    );
    let restarted_at = m.systemctl_show("containerd.service", "ExecMainStartTimestampMonotonic");
    m.systemctl(&["restart", "containerd.service"]);
    assert!(
        m.is_active("containerd.service"),
        "{}",
        m.diagnostics("containerd")
    );
    assert_ne!(
        m.systemctl_show("containerd.service", "ExecMainStartTimestampMonotonic"),
        restarted_at,
        "containerd was not restarted"
    );
    let dump = m.run(&["containerd", "config", "dump"]);
    assert!(dump.contains("SystemdCgroup = true"), "{dump}");
    assert!(!dump.contains("SystemdCgroup = false"), "{dump}");

    // The daemon answers and its CRI plugin loaded with that config.
    let cri = m.run(&["ctr", "plugins", "ls"]);
    assert!(
        cri.lines().any(|l| l.contains("io.containerd.grpc.v1")
            && l.contains("cri")
            && l.trim_end().ends_with("ok")),
        "{cri}"
    );

    // runc, systemd cgroup driver: a transient scope inside the machine.
    let out = m.run(&[
        "ctr",
        "run",
        "--rm",
        "--runc-systemd-cgroup",
        "--cgroup",
        "system.slice:e2e:probe",
        "--rootfs",
        "/opt/e2e-rootfs",
        "e2e-probe",
        "/attach-node",
        "--version",
    ]);
    assert!(out.starts_with("attach-node "), "{out}");
    m.shutdown().assert_clean();
}

/// (4) Two machines booted at the same time do not interfere: own
/// hostname, files, containerd state; stopping one leaves the other
/// running; the cached root is untouched.
#[test]
fn two_machines_do_not_interfere() {
    let Some(_t) = harness::begin("two_machines_do_not_interfere") else {
        return;
    };
    let mut a = machine("twin-a").start();
    let mut b = machine("twin-b").start();
    a.wait_booted();
    b.wait_booted();
    assert_ne!(a.pid1(), b.pid1());
    assert_eq!(a.run(&["hostname"]).trim(), a.name());
    assert_eq!(b.run(&["hostname"]).trim(), b.name());

    a.sh("echo a > /etc/e2e-only-in-a");
    assert_eq!(a.read_file("/etc/e2e-only-in-a"), "a\n");
    assert!(!b.path("/etc/e2e-only-in-a").exists());
    assert!(!harness::base_root().join("etc/e2e-only-in-a").exists());

    a.run(&["ctr", "namespaces", "create", "e2e-only-in-a"]);
    assert!(
        a.run(&["ctr", "namespaces", "ls", "-q"])
            .contains("e2e-only-in-a")
    );
    assert!(
        !b.run(&["ctr", "namespaces", "ls", "-q"])
            .contains("e2e-only-in-a")
    );
    assert!(
        a.containerd_dir()
            .join("io.containerd.metadata.v1.bolt")
            .exists()
    );

    let uuid = |m: &harness::Machine| {
        m.run(&["ctr", "version"])
            .lines()
            .find(|l| l.contains("UUID"))
            .unwrap_or_default()
            .to_owned()
    };
    assert_ne!(uuid(&a), uuid(&b));

    a.shutdown().assert_clean();
    let state = b.exec(&["systemctl", "is-system-running"]);
    assert!(
        matches!(stdout(&state).trim(), "running" | "degraded"),
        "{}",
        b.diagnostics("the other machine's shutdown disturbed this one")
    );
    assert!(b.is_active("containerd.service"));
    b.run(&["ctr", "version"]);
    b.shutdown().assert_clean();
}

/// (5) Teardown leaves nothing: no mounts under the machine's directory
/// (per /proc/mounts), no processes, no cgroups, no directory; also when
/// the test panics with a booted machine.
#[test]
fn teardown_leaves_nothing_even_after_a_panic() {
    let Some(_t) = harness::begin("teardown_leaves_nothing_even_after_a_panic") else {
        return;
    };
    let m = machine("teardown").boot();
    let fp = m.footprint();
    // nspawn, systemd, journald, dbus, containerd, ...
    assert!(fp.processes.len() >= 5, "{fp:?}");
    assert!(fp.leftovers().len() > 3, "a live machine has a footprint");
    let t = m.shutdown();
    t.assert_clean();
    assert!(t.graceful, "{t}");
    assert_eq!(fp.leftovers(), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(fp.dir.to_str().unwrap()), "{mounts}");

    eprintln!("[e2e] the next panic is deliberate");
    let seen = std::sync::Mutex::new(None);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let m = machine("panics").boot();
        *seen.lock().unwrap() = Some(m.footprint());
        panic!("deliberate panic with a booted machine");
    }));
    assert!(r.is_err());
    let fp = seen.into_inner().unwrap().expect("the machine booted");
    assert_eq!(fp.leftovers(), Vec::<String>::new());
}

/// cloud-init runs at boot from a NoCloud seed (the later userdata tests
/// build on this); `boot()` waits for it, being part of the boot.
#[test]
fn cloud_init_runs_a_nocloud_seed() {
    let Some(_t) = harness::begin("cloud_init_runs_a_nocloud_seed") else {
        return;
    };
    let user_data = "#cloud-config\nruncmd:\n  - [sh, -c, 'echo ran > /run/e2e-cloud-init']\n";
    let m = machine("cloudinit")
        .nocloud(user_data, "instance-id: e2e-1\nlocal-hostname: e2e\n")
        .boot();
    m.wait_until("cloud-init to finish", Duration::from_secs(60), |m| {
        let s = stdout(&m.exec(&["cloud-init", "status"]));
        s.contains("done") || s.contains("error")
    });
    let status = m.exec(&["cloud-init", "status", "--long"]);
    assert!(
        stdout(&status).contains("status: done"),
        "{}",
        m.diagnostics(&format!("cloud-init status:\n{}", stdout(&status)))
    );
    assert_eq!(m.run(&["cat", "/run/e2e-cloud-init"]), "ran\n");
    assert!(
        stdout(&status).contains("DataSourceNoCloud"),
        "{}",
        stdout(&status)
    );
    assert_eq!(
        m.run(&["cloud-init", "query", "v1.instance_id"]).trim(),
        "e2e-1"
    );
    m.shutdown().assert_clean();
}

/// With --private-network the machine has only `lo`, and net.* sysctls are
/// writable inside without touching the host's.
#[test]
fn private_network_has_its_own_sysctls() {
    let Some(_t) = harness::begin("private_network_has_its_own_sysctls") else {
        return;
    };
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let flipped = if host_fwd.trim() == "1" { "0" } else { "1" };
    let m = machine("privnet").private_network().boot();
    let links = m.run(&["ip", "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains(": lo:"), "{links}");
    m.run(&["sysctl", "-w", &format!("net.ipv4.ip_forward={flipped}")]);
    assert_eq!(
        m.run(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        flipped
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd,
        "the host's sysctl changed"
    );
    m.shutdown().assert_clean();
}

/// The plan's preflight on a real systemd host: inside the booted machine,
/// `join --dry-run` against the loopback lab on the host's 127.0.0.1 sees
/// systemd as PID 1, the kernel features built in (this kernel has no
/// loadable modules) and a free kubelet port, and changes nothing.
#[test]
fn dry_run_preflight_on_a_booted_host() {
    let Some(_t) = harness::begin("dry_run_preflight_on_a_booted_host") else {
        return;
    };
    let lab = attach_node_lab::Lab::start(attach_node_lab::LabConfig::default()).unwrap();
    let m = machine("preflight")
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .file(
            "/etc/attach-node/control-plane-ca.pem",
            lab.control_plane_ca_pem(),
            0o644,
        )
        .file("/etc/attach-node/openapi-token", lab.openapi_token(), 0o600)
        .boot();
    let before = m.run(&["sh", "-c", "find /etc /var/lib -xdev | sort | md5sum"]);
    let out = m.exec(&[
        GUEST_BIN,
        "join",
        "--dry-run",
        "--control-plane",
        &lab.control_plane_url(),
        "--control-plane-ca",
        "/etc/attach-node/control-plane-ca.pem",
        "--openapi-token-file",
        "/etc/attach-node/openapi-token",
    ]);
    let text = stdout(&out);
    if !out.status.success() {
        m.fail(&format!(
            "dry run failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    for want in [
        "ok   root",
        "ok   systemd       systemd is the init system",
        "ok   swap",
        "ok   kubelet port",
        "ok   kubelet.conf",
        "update    /etc/containerd/config.toml",
    ] {
        assert!(text.contains(want), "the plan lacks {want:?}:\n{text}");
    }
    assert!(
        text.contains("built into the kernel") || text.contains("is loaded"),
        "{text}"
    );
    assert!(!text.contains(&lab.openapi_token()));
    let after = m.run(&["sh", "-c", "find /etc /var/lib -xdev | sort | md5sum"]);
    assert_eq!(before, after, "a dry run changed the machine");
}

/// The loopback lab, run inside a machine's own network namespace (so the
/// machine can have a private network with writable net.* sysctls and
/// still reach it on 127.0.0.1).
struct LabInMachine {
    child: std::process::Child,
    env: std::collections::HashMap<String, String>,
    _dir: tempfile::TempDir,
}

impl LabInMachine {
    fn start(m: &harness::Machine, faults: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let lab = harness::workspace_bin("attach-node-lab");
        let pid = m.pid1().to_string();
        let labdir = dir.path().join("lab");
        let mut cmd = std::process::Command::new("nsenter");
        cmd.args(["-t", &pid, "-n", "--"])
            .arg(&lab)
            .args(["serve", "--quiet", "--lifetime", "300", "--dir"])
            .arg(&labdir);
        for f in faults {
            cmd.args(["--fault", f]);
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the lab in the machine's network namespace");
        let envfile = labdir.join("lab.env");
        let started = std::time::Instant::now();
        while !envfile.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the lab did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        let env = std::fs::read_to_string(&envfile)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        LabInMachine {
            child,
            env,
            _dir: dir,
        }
    }

    fn var(&self, k: &str) -> &str {
        &self.env[k]
    }

    /// Copies what a user would hold (the control plane's CA, the openapi
    /// token) into the machine.
    fn hand_over(&self, m: &harness::Machine) {
        let ca = std::fs::read(self.var("LAB_CONTROL_PLANE_CA")).unwrap();
        let token = std::fs::read(self.var("LAB_OPENAPI_TOKEN_FILE")).unwrap();
        m.write_file("/etc/attach-node/control-plane-ca.pem", ca, 0o644);
        m.write_file("/etc/attach-node/openapi-token", token, 0o600);
    }
}

impl Drop for LabInMachine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What join and reset may change, fingerprinted: /etc and /var/lib,
/// leaving out the agent's own records and what running services keep.
const FINGERPRINT: &str = "find /etc /var/lib -xdev \\( -path /var/lib/attach-node -o -path /var/lib/containerd -o -path /var/lib/systemd -o -path /etc/attach-node \\) -prune -o -printf '%p %y %m %U:%G %l\\n' | sort | md5sum; \
     find /etc /var/lib -xdev \\( -path /var/lib/attach-node -o -path /var/lib/containerd -o -path /var/lib/systemd -o -path /etc/attach-node \\) -prune -o -type f -print0 | sort -z | xargs -0 md5sum | md5sum";

fn join_args(lab: &LabInMachine) -> Vec<String> {
    [
        GUEST_BIN,
        "join",
        "--control-plane",
        lab.var("LAB_CONTROL_PLANE"),
        "--control-plane-ca",
        "/etc/attach-node/control-plane-ca.pem",
        "--openapi-token-file",
        "/etc/attach-node/openapi-token",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The whole story on a real host: join starts a real containerd and a
/// (stand-in) kubelet under systemd, applies sysctls, waits for the Node;
/// reset puts every file, setting and service back as it was.
#[test]
fn live_join_then_reset_on_a_booted_host() {
    let Some(_t) = harness::begin("live_join_then_reset_on_a_booted_host") else {
        return;
    };
    let m = machine("join")
        .private_network()
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .standin_kubelet()
        .boot();
    let lab = LabInMachine::start(&m, &[]);
    lab.hand_over(&m);
    m.daemon_reload();
    let forward_before = m.run(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    let before = m.sh(FINGERPRINT);
    assert!(m.is_active("containerd.service"));

    let args = join_args(&lab);
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.extend(["--wait", "registered", "--wait-timeout", "60s", "-v"]);
    let out = m.exec(&argv);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        m.fail(&format!("join failed ({}):\n{err}", out.status));
    }
    assert!(err.contains("TLS bootstrap done"), "{err}");
    assert!(err.contains("is registered"), "{err}");
    print_stage_times(&err);

    assert!(m.is_active("kubelet.service"), "the kubelet runs");
    assert_eq!(
        m.systemctl(&["is-enabled", "kubelet.service"]).trim(),
        "enabled"
    );
    let dropins = m.systemctl_show("kubelet.service", "DropInPaths");
    assert!(
        dropins.contains("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"),
        "{dropins}"
    );
    assert!(m.is_active("containerd.service"));
    let dump = m.run(&["containerd", "config", "dump"]);
    assert!(dump.contains("SystemdCgroup = true"), "{dump}");
    assert_eq!(m.run(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(), "1");
    assert!(
        !m.path("/etc/kubernetes/bootstrap-kubelet.conf").exists(),
        "the bootstrap token is gone"
    );
    assert!(m.path("/etc/kubernetes/kubelet.conf").exists());
    assert_status_after_a_finished_join(&m);

    // the same join again: nothing to do, still exit 0
    let out = m.exec(&argv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_status_after_a_finished_join(&m);

    let out = m.exec(&[GUEST_BIN, "reset"]);
    if !out.status.success() {
        m.fail(&format!(
            "reset failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    assert!(!m.is_active("kubelet.service"), "the kubelet is stopped");
    let enabled = stdout(&m.exec(&["systemctl", "is-enabled", "kubelet.service"]));
    assert_eq!(
        enabled.trim(),
        "disabled",
        "the kubelet was not enabled before the join"
    );
    assert!(
        m.is_active("containerd.service"),
        "containerd ran before, so it runs after"
    );
    assert_eq!(
        m.run(&["cat", "/proc/sys/net/ipv4/ip_forward"]),
        forward_before
    );
    assert_eq!(
        m.sh(FINGERPRINT),
        before,
        "reset left the machine different"
    );
}

/// `status` after a join whose wait removed bootstrap-kubelet.conf (the
/// kubelet had its own credentials): joined, nothing changed since, the
/// removal reported as the join's own, and neither a re-run nor a reset has
/// anything to rewrite or leave alone.
fn assert_status_after_a_finished_join(m: &harness::Machine) {
    let text = m.run(&[GUEST_BIN, "status", "--output", "json"]);
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["state"], "joined", "{text}");
    assert!(
        status["rerunJoin"].as_str().unwrap().starts_with("nothing"),
        "{text}"
    );
    assert!(
        !status["rerunReset"]
            .as_str()
            .unwrap()
            .contains("changed since"),
        "{text}"
    );
    let steps = status["steps"].as_array().unwrap();
    for st in steps {
        assert_ne!(st["inPlace"], false, "changed since the join? {st}");
    }
    let bootstrap = steps
        .iter()
        .find(|st| {
            st["step"]
                .as_str()
                .unwrap()
                .contains("/etc/kubernetes/bootstrap-kubelet.conf")
        })
        .unwrap_or_else(|| panic!("no step for the bootstrap kubeconfig: {text}"));
    assert_eq!(bootstrap["removed"], true, "{bootstrap}");
    assert_eq!(bootstrap["inPlace"], true, "{bootstrap}");
    let text = m.run(&[GUEST_BIN, "status"]);
    assert!(!text.contains("changed since"), "{text}");
    assert!(!text.contains("rewrite"), "{text}");
}

/// A kubelet that never registers: join stops at --wait-timeout with exit 7
/// and says which stage did not happen.
#[test]
fn the_wait_timeout_is_exit_7_with_a_diagnosis() {
    let Some(_t) = harness::begin("the_wait_timeout_is_exit_7_with_a_diagnosis") else {
        return;
    };
    let m = machine("wait")
        .private_network()
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .standin_kubelet()
        .file(
            "/etc/default/kubelet",
            "KUBELET_EXTRA_ARGS=--standin-never-register\n",
            0o644,
        )
        .boot();
    let lab = LabInMachine::start(&m, &[]);
    lab.hand_over(&m);
    m.daemon_reload();
    let args = join_args(&lab);
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.extend(["--wait-timeout", "5s"]);
    let out = m.exec(&argv);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("no Node"), "the stage is named: {err}");
    assert!(
        err.contains("approved, certificate issued"),
        "the CSR's fate is told: {err}"
    );
    assert!(
        err.contains("kubelet.service is enabled and running"),
        "{err}"
    );
}

/// A host without a kubelet: the join fails where it enables
/// kubelet.service (exit 6, asking whether the kubelet is installed), and
/// the reset is not stuck on stopping a unit systemd does not know: it
/// notes that, and puts the machine back as it was.
#[test]
fn a_join_without_a_kubelet_fails_and_resets_cleanly() {
    let Some(_t) = harness::begin("a_join_without_a_kubelet_fails_and_resets_cleanly") else {
        return;
    };
    let m = machine("nokubelet")
        .private_network()
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .boot();
    let lab = LabInMachine::start(&m, &[]);
    lab.hand_over(&m);
    assert!(!m.path("/usr/bin/kubelet").exists());
    let forward_before = m.run(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    let before = m.sh(FINGERPRINT);

    let args = join_args(&lab);
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.extend(["--wait-timeout", "30s"]);
    let out = m.exec(&argv);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("systemctl enable kubelet.service"), "{err}");
    assert!(err.contains("is the kubelet installed?"), "{err}");
    let status = m.run(&[GUEST_BIN, "status", "--output", "json"]);
    assert!(status.contains("\"state\": \"failed\""), "{status}");

    let out = m.exec(&[GUEST_BIN, "reset"]);
    let text = stdout(&out);
    if !out.status.success() {
        m.fail(&format!(
            "reset failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    assert!(
        text.contains("note: kubelet.service is not installed"),
        "{text}"
    );
    let status = m.run(&[GUEST_BIN, "status", "--output", "json"]);
    assert!(status.contains("\"state\": \"reset\""), "{status}");
    assert!(
        m.is_active("containerd.service"),
        "containerd ran before, so it runs after"
    );
    assert_eq!(
        m.run(&["cat", "/proc/sys/net/ipv4/ip_forward"]),
        forward_before
    );
    assert_eq!(
        m.sh(FINGERPRINT),
        before,
        "reset left the machine different"
    );
    m.shutdown().assert_clean();
}

/// Prints when each stage of a join happened, from the timestamps of its
/// own log lines (BENCHMARKS.md quotes these).
fn print_stage_times(stderr: &str) {
    let stamp = |line: &str| -> Option<f64> {
        // 2026-11-24T16:34:50.123456Z
        let t = line.split_whitespace().next()?;
        let hms = t.split('T').nth(1)?.trim_end_matches('Z');
        let mut parts = hms.split(':');
        let (h, m, sec): (f64, f64, f64) = (
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
        );
        Some(h * 3600.0 + m * 60.0 + sec)
    };
    let lines: Vec<&str> = stderr.lines().collect();
    let Some(start) = lines.first().and_then(|l| stamp(l)) else {
        return;
    };
    let at = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .and_then(|l| stamp(l))
            .map(|t| format!("{:.0} ms", (t - start) * 1000.0))
            .unwrap_or_else(|| "-".into())
    };
    eprintln!(
        "[e2e] join stages from the first log line: cluster verified {}, kubelet started {}, TLS bootstrap done {}, Node registered {}",
        at("re-fetched over TLS"),
        at("waiting up to"),
        at("TLS bootstrap done"),
        at("is registered"),
    );
}

/// A join killed half-way on a real host (abort at journal points spread
/// over the run, like SIGKILL) is finished by running it again, and the
/// reset after it leaves the machine as it was.
#[test]
fn a_crashed_live_join_resumes_then_resets() {
    let Some(_t) = harness::begin("a_crashed_live_join_resumes_then_resets") else {
        return;
    };
    let m = machine("crash")
        .private_network()
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .standin_kubelet()
        .boot();
    let lab = LabInMachine::start(&m, &[]);
    lab.hand_over(&m);
    m.daemon_reload();
    let before = m.sh(FINGERPRINT);
    let args = join_args(&lab);
    // Points are counted per run, and a resumed run skips what is done:
    // crashing each run at its 4th point moves the join a little further
    // every time.
    for point in ["4", "4", "4"] {
        let crash = format!("ATTACH_NODE_TEST_CRASH_AT={point}");
        let mut argv: Vec<&str> = vec!["env", &crash];
        argv.extend(args.iter().map(String::as_str));
        let out = m.exec(&argv);
        assert!(
            !out.status.success(),
            "the join ran through point {point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status = m.run(&[GUEST_BIN, "status", "--output", "json"]);
        assert!(
            status.contains("\"state\": \"joining\""),
            "after a crash at {point}: {status}"
        );
    }
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.extend(["--wait-timeout", "60s"]);
    let out = m.exec(&argv);
    if !out.status.success() {
        m.fail(&format!(
            "the resumed join failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    assert!(m.is_active("kubelet.service"));
    let out = m.exec(&[GUEST_BIN, "reset"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        m.sh(FINGERPRINT),
        before,
        "reset after a crash and a resume"
    );
}

const FIRSTBOOT_UNIT: &str = include_str!("../systemd/attach-node-firstboot.service");

/// The first-boot unit, for real: `systemd-analyze verify` accepts it; with
/// its env file (0600, the token inside) it joins the machine, leaves its
/// marker, and does not run again; the token shows up in no journal, unit
/// property or process list.
#[test]
fn first_boot_unit_joins_once() {
    let Some(_t) = harness::begin("first_boot_unit_joins_once") else {
        return;
    };
    let m = machine("firstboot")
        .private_network()
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .standin_kubelet()
        .file(
            "/etc/systemd/system/attach-node-firstboot.service",
            FIRSTBOOT_UNIT,
            0o644,
        )
        .boot();
    let verify = m.exec(&[
        "systemd-analyze",
        "verify",
        "/etc/systemd/system/attach-node-firstboot.service",
    ]);
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let lab = LabInMachine::start(&m, &[]);
    // hand_over puts the token in a root-only file, which the env file
    // names: systemd gives the env file's variables to ExecStartPost's
    // `touch` too.
    lab.hand_over(&m);
    let token = std::fs::read_to_string(lab.var("LAB_OPENAPI_TOKEN_FILE")).unwrap();
    m.write_file(
        "/etc/attach-node/firstboot.env",
        format!(
            "ATTACH_NODE_CONTROL_PLANE={}\nATTACH_NODE_CONTROL_PLANE_CA=/etc/attach-node/control-plane-ca.pem\nATTACH_NODE_OPENAPI_TOKEN_FILE=/etc/attach-node/openapi-token\n",
            lab.var("LAB_CONTROL_PLANE")
        ),
        0o600,
    );
    m.daemon_reload();
    let out = m.exec(&[
        "systemctl",
        "enable",
        "--now",
        "attach-node-firstboot.service",
    ]);
    if !out.status.success() {
        m.fail(&format!(
            "the first-boot unit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    assert!(
        m.is_active("kubelet.service"),
        "the join started the kubelet"
    );
    assert!(m.path("/var/lib/attach-node/firstboot.done").exists());
    let status = m.run(&[GUEST_BIN, "status", "--output", "json"]);
    assert!(status.contains("\"state\": \"joined\""), "{status}");

    // once only: a second start is skipped by its condition
    m.run(&["systemctl", "restart", "attach-node-firstboot.service"]);
    let result = m.systemctl_show("attach-node-firstboot.service", "ConditionResult");
    assert!(result.contains("no"), "{result}");

    let journal = m.run(&["journalctl", "--no-pager", "-o", "cat"]);
    let show = m.run(&["systemctl", "show", "attach-node-firstboot.service"]);
    for (what, text) in [("the journal", &journal), ("systemctl show", &show)] {
        assert!(!text.contains(token.trim()), "the token leaked into {what}");
    }
    assert!(journal.contains("Node"), "the join logged to the journal");
}

/// The data-disk layout the docs call supported: `/var/lib/kubelet` is a
/// link to a directory on another disk. A live join uses the directory
/// through the link (it used to stop with ELOOP after the token was
/// spent), and reset leaves the link and the directory as they were.
#[test]
fn a_linked_var_lib_kubelet_on_a_live_host_joins_and_resets() {
    let Some(_t) = harness::begin("a_linked_var_lib_kubelet_on_a_live_host_joins_and_resets")
    else {
        return;
    };
    let m = machine("kubelet-link")
        .private_network()
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .standin_kubelet()
        .boot();
    m.sh("rm -rf /var/lib/kubelet && mkdir -p /data/kubelet && chmod 700 /data/kubelet && ln -s /data/kubelet /var/lib/kubelet");
    let lab = LabInMachine::start(&m, &[]);
    lab.hand_over(&m);
    m.daemon_reload();
    let before = m.sh(FINGERPRINT);
    let data_before = m.sh("find /data -printf '%p %y %m\\n' | sort");

    let args = join_args(&lab);
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.extend(["--wait", "registered", "--wait-timeout", "60s"]);
    let out = m.exec(&argv);
    if !out.status.success() {
        m.fail(&format!(
            "join failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    assert!(m.path("/data/kubelet/config.yaml").exists());
    assert_eq!(
        m.run(&["readlink", "/var/lib/kubelet"]).trim(),
        "/data/kubelet"
    );

    let out = m.exec(&[GUEST_BIN, "reset"]);
    if !out.status.success() {
        m.fail(&format!(
            "reset failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    assert_eq!(
        m.run(&["readlink", "/var/lib/kubelet"]).trim(),
        "/data/kubelet"
    );
    assert_eq!(m.sh("find /data -printf '%p %y %m\\n' | sort"), data_before);
    assert_eq!(
        m.sh(FINGERPRINT),
        before,
        "reset left the machine different"
    );
}

/// On a live host, reset without a journal unmounts what is mounted under
/// /var/lib/kubelet first, deepest first, as kubeadm reset does; a volume
/// still in use is not detached from under its user, and nothing on it is
/// deleted.
#[test]
fn reset_without_a_journal_unmounts_volumes_and_keeps_busy_ones() {
    let Some(_t) = harness::begin("reset_without_a_journal_unmounts_volumes_and_keeps_busy_ones")
    else {
        return;
    };
    let m = machine("fallback-mounts")
        .private_network()
        .bind_ro(harness::attach_node_bin(), GUEST_BIN)
        .boot();
    m.sh(
        "set -e; v=/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir; \
         mkdir -p $v/idle $v/busy /etc/kubernetes; echo x > /etc/kubernetes/kubelet.conf; \
         mount -t tmpfs idle $v/idle; mount -t tmpfs busy $v/busy; \
         echo precious > $v/busy/data.txt; \
         (cd $v/busy && exec sleep 300) >/dev/null 2>&1 &",
    );
    let out = m.exec(&[GUEST_BIN, "reset", "--force"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        m.fail(&format!(
            "reset failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v = "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir";
    assert!(stdout.contains(&format!("unmounted {v}/idle")), "{stdout}");
    assert!(
        stdout.contains(&format!("could not unmount {v}/busy")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("left {v}/busy: another file system")),
        "{stdout}"
    );
    assert_eq!(
        m.run(&["cat", &format!("{v}/busy/data.txt")]).trim(),
        "precious"
    );
    assert!(!m.path("/etc/kubernetes/kubelet.conf").exists());
    m.sh("pkill -x sleep || true");
}
