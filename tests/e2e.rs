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
