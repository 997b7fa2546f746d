//! The .deb in a booted Debian (real dpkg, real systemd): built by
//! packaging/build-packages.sh from the debug binary of this run, installed
//! with `dpkg -i`, checked (the binary on PATH, the man pages, the unit known
//! to systemd, verified and left disabled, `dpkg -V` clean), then
//! `attach-node uninstall` leaves the package's files to dpkg, and `dpkg -r`
//! and `dpkg -P` take away every file the package brought and nothing else:
//! a joined node's state stays. Part of the `e2e` test target (tests/e2e.rs),
//! so it skips and requires as that does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{self, Machine, machine};

const UNIT_NAME: &str = "attach-node-firstboot.service";
const UNIT_PATH: &str = "/usr/lib/systemd/system/attach-node-firstboot.service";
const WANTS_LINK: &str =
    "/etc/systemd/system/multi-user.target.wants/attach-node-firstboot.service";
/// Where the test's directory of packages is bound inside.
const GUEST_PACKAGES: &str = "/mnt/packages";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn said(o: &Output) -> String {
    format!(
        "({})\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// Builds the .deb from the debug binary into `dir`; returns its file name.
fn build_deb(dir: &Path) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packaging/build-packages.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--fast", "--only", "deb"])
        .arg(harness::attach_node_bin())
        .arg(dir)
        .output()
        .expect("run packaging/build-packages.sh");
    assert!(out.status.success(), "build-packages.sh {}", said(&out));
    let path = PathBuf::from(text(&out.stdout).trim());
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The trees a package could touch, as `path type mode owner` lines.
fn tree(m: &Machine) -> String {
    m.sh("find /usr /etc /var/lib/attach-node -xdev -printf '%p %y %m %u:%g\\n' 2>/dev/null | sort || true")
}

/// What dpkg says it installed (files, not directories).
fn dpkg_files(m: &Machine) -> Vec<String> {
    m.run(&["dpkg", "-L", "attach-node"])
        .lines()
        .filter(|p| p.starts_with('/') && !m.path(p).is_dir())
        .map(str::to_owned)
        .collect()
}

fn dpkg_status(m: &Machine) -> String {
    let o = m.exec(&["dpkg-query", "-W", "-f", "${Status}", "attach-node"]);
    if o.status.success() {
        text(&o.stdout)
    } else {
        "unknown".to_owned()
    }
}

/// dpkg -i puts the binary on PATH, the pages and completions in place and
/// the unit where systemd finds it, without enabling or starting it.
fn install_and_check(m: &Machine, deb: &str) {
    let o = m.exec(&["dpkg", "-i", &format!("{GUEST_PACKAGES}/{deb}")]);
    assert!(o.status.success(), "dpkg -i {}", said(&o));
    assert!(
        !text(&o.stderr).contains("warning"),
        "dpkg -i warned {}",
        said(&o)
    );
    assert_eq!(dpkg_status(m), "install ok installed");

    assert_eq!(
        m.sh("command -v attach-node").trim(),
        "/usr/bin/attach-node"
    );
    let version = m.run(&["attach-node", "--version"]);
    let ours = Command::new(harness::attach_node_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(version, text(&ours.stdout));

    for page in ["attach-node", "attach-node-join", "attach-node-uninstall"] {
        let p = format!("/usr/share/man/man1/{page}.1.gz");
        let roff = m.sh(&format!("gzip -dc {p}"));
        assert!(roff.contains(".TH"), "{p} is not a man page:\n{roff}");
    }
    for p in [
        "/usr/share/bash-completion/completions/attach-node",
        "/usr/share/zsh/vendor-completions/_attach-node",
        "/usr/share/fish/vendor_completions.d/attach-node.fish",
        "/usr/share/doc/attach-node/copyright",
    ] {
        assert!(m.path(p).is_file(), "{p} is missing");
    }
    let complete = m.run(&[
        "bash",
        "-c",
        "source /usr/share/bash-completion/completions/attach-node && complete -p attach-node",
    ]);
    assert!(complete.trim_end().ends_with("attach-node"), "{complete}");

    // systemd knows the unit (postinst reloaded it), at the package's path,
    // running the package's binary; installed, not enabled, not started.
    // Bookworm's systemd searches /lib/systemd/system first, which is
    // /usr/lib/systemd/system on a merged-/usr system: the same file.
    let fragment = m.systemctl_show(UNIT_NAME, "FragmentPath");
    assert!(
        fragment == UNIT_PATH || format!("/usr{fragment}") == UNIT_PATH,
        "FragmentPath={fragment}"
    );
    let cat = m.run(&["systemctl", "cat", UNIT_NAME]);
    assert!(cat.starts_with(&format!("# {fragment}\n")), "{cat}");
    assert!(
        cat.contains("\nExecStart=/usr/bin/attach-node join\n"),
        "{cat}"
    );
    assert_eq!(m.systemctl_show(UNIT_NAME, "UnitFileState"), "disabled");
    assert_eq!(m.systemctl_show(UNIT_NAME, "ActiveState"), "inactive");
    assert!(m.path(WANTS_LINK).symlink_metadata().is_err());
    assert!(
        !m.path("/var/lib/attach-node").exists(),
        "installing made state"
    );

    let verify = m.exec(&["systemd-analyze", "verify", UNIT_PATH]);
    let v = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(verify.status.success(), "systemd-analyze verify: {v}");
    assert!(
        !v.contains("attach-node"),
        "systemd-analyze verify has something to say about the unit:\n{v}"
    );

    let verified = m.exec(&["dpkg", "-V", "attach-node"]);
    assert!(
        verified.status.success() && verified.stdout.is_empty(),
        "dpkg -V {}",
        said(&verified)
    );
}

/// Install, check, remove, purge: every file of the package goes, the
/// trees are as before, and a joined node's state is never touched.
#[test]
fn deb_installs_and_removes_without_a_trace() {
    let Some(_t) = harness::begin("deb_installs_and_removes_without_a_trace") else {
        return;
    };
    let packages = tempfile::tempdir().unwrap();
    let deb = build_deb(packages.path());
    let m = machine("deb")
        .bind_ro(packages.path(), GUEST_PACKAGES)
        .boot();
    let before = tree(&m);

    install_and_check(&m, &deb);
    let files = dpkg_files(&m);
    assert!(
        files.contains(&"/usr/bin/attach-node".to_owned()),
        "{files:?}"
    );
    assert!(files.contains(&UNIT_PATH.to_owned()), "{files:?}");

    // The user enables the unit; a join ran: state and settings exist.
    m.systemctl(&["enable", UNIT_NAME]);
    assert!(m.path(WANTS_LINK).is_symlink());
    let state = [
        (
            "/var/lib/attach-node/journal.json",
            "{\"state\":\"joined\"}\n",
        ),
        ("/var/lib/attach-node/firstboot.done", ""),
        ("/etc/attach-node/firstboot.env", "ATTACH_NODE_LOG=info\n"),
        ("/etc/kubernetes/bootstrap-kubelet.conf", "apiVersion: v1\n"),
    ];
    for (p, body) in state {
        m.write_file(p, body, 0o600);
    }

    // remove: the package's files go; systemd forgets the unit; the state
    // stays, and so does the user's enabling (until purge).
    let o = m.exec(&["dpkg", "-r", "attach-node"]);
    assert!(o.status.success(), "dpkg -r {}", said(&o));
    assert!(
        !text(&o.stderr).contains("warning"),
        "dpkg -r warned {}",
        said(&o)
    );
    for f in &files {
        assert!(
            m.path(f).symlink_metadata().is_err(),
            "{f} is still there after dpkg -r"
        );
    }
    let load = m.systemctl_show(UNIT_NAME, "LoadState");
    assert_eq!(
        load, "not-found",
        "systemd still has the unit after dpkg -r"
    );
    for (p, body) in state {
        assert_eq!(m.read_file(p), body, "dpkg -r touched {p}");
    }
    // No conffiles, but a postrm: dpkg keeps it as config-files for purge.
    assert_eq!(dpkg_status(&m), "deinstall ok config-files");
    let verified = m.exec(&["dpkg", "-V", "attach-node"]);
    assert!(
        verified.stdout.is_empty(),
        "dpkg -V after -r {}",
        said(&verified)
    );

    // purge: the dangling enabling goes too; the state still stays.
    let o = m.exec(&["dpkg", "-P", "attach-node"]);
    assert!(o.status.success(), "dpkg -P {}", said(&o));
    assert!(
        !text(&o.stderr).contains("warning"),
        "dpkg -P warned {}",
        said(&o)
    );
    assert!(
        m.path(WANTS_LINK).symlink_metadata().is_err(),
        "purge left the enabling"
    );
    for (p, body) in state {
        assert_eq!(m.read_file(p), body, "dpkg -P touched {p}");
    }
    let listed = m.exec(&["dpkg", "-L", "attach-node"]);
    assert!(
        !listed.status.success(),
        "dpkg -L after purge {}",
        said(&listed)
    );
    assert!(
        text(&listed.stderr).contains("is not installed"),
        "dpkg -L after purge {}",
        said(&listed)
    );
    assert_eq!(dpkg_status(&m), "unknown", "dpkg still knows attach-node");

    // Without the state this test made, the trees are as before install.
    for (p, _) in state {
        m.run(&["rm", p]);
    }
    m.run(&[
        "rmdir",
        "/var/lib/attach-node",
        "/etc/attach-node",
        "/etc/kubernetes",
    ]);
    let after = tree(&m);
    assert!(
        before == after,
        "the package left something behind:\n{}",
        diff(&before, &after)
    );
    m.shutdown().assert_clean();
}

/// `attach-node uninstall` on a packaged host: it takes out what is its own
/// (the enabling, /etc/attach-node, its state) and keeps what dpkg owns,
/// naming the command; dpkg then finds its files intact and removes them.
#[test]
fn uninstall_leaves_the_package_to_dpkg() {
    let Some(_t) = harness::begin("uninstall_leaves_the_package_to_dpkg") else {
        return;
    };
    let packages = tempfile::tempdir().unwrap();
    let deb = build_deb(packages.path());
    let m = machine("debun")
        .bind_ro(packages.path(), GUEST_PACKAGES)
        .boot();
    install_and_check(&m, &deb);
    m.systemctl(&["enable", UNIT_NAME]);
    m.write_file(
        "/etc/attach-node/firstboot.env",
        "ATTACH_NODE_LOG=info\n",
        0o600,
    );

    let out = m.run(&["attach-node", "uninstall"]);
    // The e2e root has dpkg but no apt (mmdebstrap's essential variant).
    let removal = if m.path("/usr/bin/apt").exists() {
        "apt remove attach-node"
    } else {
        "dpkg -r attach-node"
    };
    for kept in ["/usr/bin/attach-node", UNIT_PATH] {
        assert!(
            out.contains(&format!(
                "kept {kept}: installed by the package manager: use {removal}\n"
            )),
            "{out}"
        );
    }
    assert!(out.contains(&format!("removed {WANTS_LINK}\n")), "{out}");
    assert!(out.contains("removed /etc/attach-node\n"), "{out}");
    assert!(
        out.ends_with("attach-node is uninstalled, but for the files of its package\n"),
        "{out}"
    );
    assert_eq!(m.systemctl_show(UNIT_NAME, "UnitFileState"), "disabled");
    let verified = m.exec(&["dpkg", "-V", "attach-node"]);
    assert!(
        verified.status.success() && verified.stdout.is_empty(),
        "uninstall changed the package's files: dpkg -V {}",
        said(&verified)
    );

    let o = m.exec(&["dpkg", "-P", "attach-node"]);
    assert!(o.status.success(), "dpkg -P {}", said(&o));
    assert!(
        !text(&o.stderr).contains("warning"),
        "dpkg -P warned {}",
        said(&o)
    );
    assert!(
        m.exec(&["sh", "-c", "command -v attach-node"])
            .stdout
            .is_empty()
    );
    m.shutdown().assert_clean();
}

/// Lines only in `a` (-) or only in `b` (+).
fn diff(a: &str, b: &str) -> String {
    let a: BTreeSet<&str> = a.lines().collect();
    let b: BTreeSet<&str> = b.lines().collect();
    let mut out = String::new();
    for l in a.difference(&b) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in b.difference(&a) {
        out.push_str(&format!("+ {l}\n"));
    }
    out
}
