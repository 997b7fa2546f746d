//! `attach-node uninstall` next to the .deb or .rpm: what the package
//! installed (/usr/bin/attach-node, the unit in /usr/lib/systemd/system)
//! belongs to the package manager and is kept, named, with the command that
//! removes it; everything else of attach-node (install.sh's copy, the
//! enabling of the unit, /etc/attach-node, its state) goes as before.
//! tests/e2e_package.rs does the same on a booted Debian with the real .deb.

use std::path::Path;
use std::process::Command;

fn put(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn uninstall(root: &Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_attach-node"))
        .arg("uninstall")
        .arg("--root")
        .arg(root)
        .args(extra)
        .env_clear()
        .output()
        .expect("run attach-node");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "uninstall failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A root as the .deb leaves it, after the user enabled the unit and a
/// first boot wrote its settings and marker.
fn packaged_root(apt: bool) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    put(r, "usr/bin/attach-node", "#!/bin/sh\n");
    put(
        r,
        "usr/lib/systemd/system/attach-node-firstboot.service",
        "[Service]\n",
    );
    put(r, "usr/share/man/man1/attach-node.1.gz", "man");
    std::fs::create_dir_all(r.join("etc/systemd/system/multi-user.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/systemd/system/attach-node-firstboot.service",
        r.join("etc/systemd/system/multi-user.target.wants/attach-node-firstboot.service"),
    )
    .unwrap();
    put(
        r,
        "etc/attach-node/firstboot.env",
        "ATTACH_NODE_CONTROL_PLANE=x\n",
    );
    put(r, "var/lib/attach-node/firstboot.done", "");
    // The system's package front end; a Debian host may have rpm too.
    put(r, "usr/bin/rpm", "");
    put(r, if apt { "usr/bin/apt" } else { "usr/bin/dnf" }, "");
    root
}

#[test]
fn uninstall_keeps_what_the_deb_installed_and_says_apt_remove() {
    let root = packaged_root(true);
    let r = root.path();

    let plan = uninstall(r, &["--dry-run"]);
    assert!(
        plan.contains(
            "would keep /usr/bin/attach-node: installed by the package manager: use apt remove attach-node"
        ),
        "{plan}"
    );
    assert!(
        r.join("etc/attach-node").exists(),
        "a dry run removed something"
    );

    let out = uninstall(r, &[]);
    for kept in [
        "/usr/bin/attach-node",
        "/usr/lib/systemd/system/attach-node-firstboot.service",
    ] {
        assert!(
            out.contains(&format!(
                "kept {kept}: installed by the package manager: use apt remove attach-node\n"
            )),
            "{out}"
        );
        assert!(r.join(&kept[1..]).exists(), "{kept} was removed");
    }
    assert!(r.join("usr/share/man/man1/attach-node.1.gz").exists());
    for gone in [
        "etc/systemd/system/multi-user.target.wants/attach-node-firstboot.service",
        "etc/attach-node",
        "var/lib/attach-node",
    ] {
        assert!(
            r.join(gone).symlink_metadata().is_err(),
            "{gone} is still there:\n{out}"
        );
        assert!(out.contains(&format!("removed /{gone}\n")), "{out}");
    }
    assert!(
        out.ends_with("attach-node is uninstalled, but for the files of its package\n"),
        "{out}"
    );
}

#[test]
fn uninstall_names_the_rpm_front_end_and_still_removes_install_sh_s_copy() {
    let root = packaged_root(false);
    let r = root.path();
    put(r, "usr/local/bin/attach-node", "#!/bin/sh\n");
    let out = uninstall(r, &[]);
    assert!(
        out.contains("kept /usr/bin/attach-node: installed by the package manager: use dnf remove attach-node\n"),
        "{out}"
    );
    assert!(
        out.contains("removed /usr/local/bin/attach-node\n"),
        "{out}"
    );
    assert!(!r.join("usr/local/bin/attach-node").exists());
    assert!(r.join("usr/bin/attach-node").exists());
}

#[test]
fn without_a_package_uninstall_says_what_it_always_said() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "usr/local/bin/attach-node", "#!/bin/sh\n");
    let out = uninstall(root.path(), &[]);
    assert!(!out.contains("package"), "{out}");
    assert!(out.ends_with("attach-node is uninstalled\n"), "{out}");
}
