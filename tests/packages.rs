//! The .deb and the .rpm, built by packaging/build-packages.sh from the
//! debug binary cargo built for this run (the release binary goes through
//! the same script in .ci/run): what each holds, with which modes, what
//! their maintainer scripts do (a daemon-reload, never enable or start),
//! that lintian has no error or warning about the .deb, and that the same
//! inputs make the same bytes. tests/e2e_package.rs installs and removes
//! the .deb in a booted Debian.
//!
//! A missing tool (dpkg-deb, rpmbuild, lintian, shellcheck) skips its part
//! with the reason printed; under `ATTACH_NODE_E2E=require` (CI) it fails.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SCRIPT: &str = "packaging/build-packages.sh";
const UNIT: &str = "attach-node-firstboot.service";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_attach-node")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `tool` may be used; if not, says why, or fails under require.
fn available(tool: &str, package: &str, what: &str) -> bool {
    if have(tool) {
        return true;
    }
    let why = format!("{tool} is not installed (apt-get install {package})");
    if std::env::var("ATTACH_NODE_E2E").as_deref() == Ok("require") {
        panic!("ATTACH_NODE_E2E=require, but {what} cannot run: {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIP {what}: {why}");
    false
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Runs the script; returns the package paths it printed.
fn build(extra: &[&str], out: &Path) -> Vec<PathBuf> {
    let o = run(Command::new("bash")
        .arg(repo().join(SCRIPT))
        .arg("--fast")
        .args(extra)
        .arg(bin())
        .arg(out)
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    text(&o.stdout).lines().map(PathBuf::from).collect()
}

fn version() -> String {
    let v = run(Command::new(bin()).arg("--version"));
    text(&v.stdout)
        .trim()
        .strip_prefix("attach-node ")
        .expect("attach-node --version")
        .to_owned()
}

/// The pages in docs/man and what they become in a package.
fn man_pages() -> Vec<String> {
    let mut pages: Vec<String> = std::fs::read_dir(repo().join("docs/man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .map(|n| format!("/usr/share/man/man1/{n}.gz"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 6, "{pages:?}");
    pages
}

/// What both packages install, with their modes.
fn common_files() -> Vec<(String, u32)> {
    let mut files = vec![
        ("/usr/bin/attach-node".to_owned(), 0o755),
        (format!("/usr/lib/systemd/system/{UNIT}"), 0o644),
        (
            "/usr/share/bash-completion/completions/attach-node".to_owned(),
            0o644,
        ),
        (
            "/usr/share/fish/vendor_completions.d/attach-node.fish".to_owned(),
            0o644,
        ),
    ];
    files.extend(man_pages().into_iter().map(|p| (p, 0o644)));
    files
}

/// The packaged unit is systemd/'s with ExecStart at /usr/bin.
fn check_unit(packaged: &str) {
    let original = std::fs::read_to_string(repo().join("systemd").join(UNIT)).unwrap();
    assert!(
        packaged.contains("\nExecStart=/usr/bin/attach-node join\n"),
        "{packaged}"
    );
    let code = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.replace("/usr/local/bin/attach-node", "/usr/bin/attach-node"))
            .collect()
    };
    assert_eq!(
        code(packaged),
        code(&original),
        "the packaged unit differs from systemd/{UNIT} beyond the binary's path"
    );
}

/// A maintainer script may reload systemd, never enable, start or stop.
fn check_maintainer_script(name: &str, script: &str) {
    assert!(script.contains("daemon-reload"), "{name}:\n{script}");
    for word in [
        "enable",
        "start",
        "stop",
        "preset",
        "/var/lib/attach-node",
        "rm -r",
    ] {
        let hits: Vec<&str> = script
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && l.contains(word))
            .collect();
        assert!(hits.is_empty(), "{name} runs {word:?}: {hits:?}");
    }
}

fn check_deb(deb: &Path, version: &str, work: &Path) {
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name, format!("attach-node_{version}_amd64.deb"));

    let field = |f: &str| {
        let o = run(Command::new("dpkg-deb").args(["-f"]).arg(deb).arg(f));
        text(&o.stdout).trim().to_owned()
    };
    assert_eq!(field("Package"), "attach-node");
    assert_eq!(field("Version"), version);
    assert_eq!(field("Architecture"), "amd64");
    assert_eq!(field("Section"), "admin");
    for none in ["Depends", "Pre-Depends", "Recommends", "Conflicts"] {
        assert_eq!(field(none), "", "{none}: a static binary needs nothing");
    }

    // Every file and directory, its mode and owner.
    let listing = text(&run(Command::new("dpkg-deb").arg("-c").arg(deb)).stdout);
    let mut files = BTreeSet::new();
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], "root/root", "{line}");
        let path = cols[5].trim_start_matches('.').trim_end_matches('/');
        if cols[0].starts_with('-') {
            files.insert((path.to_owned(), cols[0].to_owned()));
        } else {
            assert_eq!(cols[0], "drwxr-xr-x", "{line}");
        }
    }
    let mode = |m: u32| {
        if m == 0o755 {
            "-rwxr-xr-x"
        } else {
            "-rw-r--r--"
        }
    };
    let mut want: BTreeSet<(String, String)> = common_files()
        .into_iter()
        .map(|(p, m)| (p, mode(m).to_owned()))
        .collect();
    for p in [
        "/usr/share/zsh/vendor-completions/_attach-node",
        "/usr/share/doc/attach-node/copyright",
        "/usr/share/doc/attach-node/changelog.gz",
        "/usr/share/lintian/overrides/attach-node",
    ] {
        want.insert((p.to_owned(), mode(0o644).to_owned()));
    }
    assert_eq!(files, want, "the .deb's files");

    // The contents: the very binary, the unit, the committed docs.
    let x = work.join("deb");
    run(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&x));
    assert!(
        std::fs::read(x.join("usr/bin/attach-node")).unwrap() == std::fs::read(bin()).unwrap(),
        "the packaged binary is not the one given"
    );
    check_unit(&std::fs::read_to_string(x.join("usr/lib/systemd/system").join(UNIT)).unwrap());
    for (packaged, committed) in [
        (
            "usr/share/bash-completion/completions/attach-node",
            "completions/attach-node.bash",
        ),
        (
            "usr/share/zsh/vendor-completions/_attach-node",
            "completions/attach-node.zsh",
        ),
        (
            "usr/share/fish/vendor_completions.d/attach-node.fish",
            "completions/attach-node.fish",
        ),
        ("usr/share/doc/attach-node/copyright", "packaging/copyright"),
    ] {
        assert_eq!(
            std::fs::read(x.join(packaged)).unwrap(),
            std::fs::read(repo().join(committed)).unwrap(),
            "{packaged} is not {committed}"
        );
    }
    let page = run(Command::new("gzip")
        .args(["-dc"])
        .arg(x.join("usr/share/man/man1/attach-node.1.gz")));
    assert_eq!(
        page.stdout,
        std::fs::read(repo().join("docs/man/attach-node.1")).unwrap()
    );
    // md5sums covers every file, so `dpkg -V` can check them.
    let md5sums = std::fs::read_to_string(x.join("DEBIAN/md5sums")).unwrap();
    let summed: BTreeSet<String> = md5sums
        .lines()
        .map(|l| format!("/{}", l.split_once("  ").unwrap().1))
        .collect();
    assert_eq!(summed, want.iter().map(|(p, _)| p.clone()).collect());
    // Scripts: a reload, nothing else; no conffiles (nothing in /etc).
    let mut scripts: Vec<String> = std::fs::read_dir(x.join("DEBIAN"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    scripts.sort();
    assert_eq!(scripts, ["control", "md5sums", "postinst", "postrm"]);
    for s in ["postinst", "postrm"] {
        let body = std::fs::read_to_string(x.join("DEBIAN").join(s)).unwrap();
        check_maintainer_script(s, &body);
    }
}

fn check_rpm(rpm: &Path, version: &str) {
    let name = rpm.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name, format!("attach-node-{version}-1.x86_64.rpm"));
    let q = |args: &[&str]| text(&run(Command::new("rpm").args(args).arg(rpm)).stdout);

    let info = q(&["-qip"]);
    for (key, value) in [
        ("Name", "attach-node"),
        ("Version", version),
        ("Release", "1"),
        ("Architecture", "x86_64"),
        ("License", "Apache-2.0"),
    ] {
        assert!(
            info.lines().any(|l| l
                .split_once(':')
                .is_some_and(|(k, v)| k.trim() == key && v.trim() == value)),
            "rpm -qip has no {key}: {value}:\n{info}"
        );
    }

    // `rpm -qlp`: exactly these files (and the directories it co-owns).
    let listed: BTreeSet<String> = q(&["-qlp"]).lines().map(str::to_owned).collect();
    let mut want: BTreeSet<String> = common_files().into_iter().map(|(p, _)| p).collect();
    for p in [
        "/usr/share/zsh/site-functions/_attach-node",
        "/usr/share/licenses/attach-node",
        "/usr/share/licenses/attach-node/LICENSE",
        "/usr/share/licenses/attach-node/copyright",
        "/usr/share/bash-completion",
        "/usr/share/bash-completion/completions",
        "/usr/share/zsh",
        "/usr/share/zsh/site-functions",
        "/usr/share/fish",
        "/usr/share/fish/vendor_completions.d",
    ] {
        want.insert(p.to_owned());
    }
    assert_eq!(listed, want, "rpm -qlp");

    // Modes and owners, from the header.
    let modes = q(&[
        "-qp",
        "--qf",
        "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]",
    ]);
    for line in modes.lines() {
        let (perms, rest) = line.split_once(' ').unwrap();
        let (owner, path) = rest.split_once(' ').unwrap();
        assert_eq!(owner, "root:root", "{line}");
        let want = if path == "/usr/bin/attach-node" {
            "-rwxr-xr-x"
        } else if perms.starts_with('d') {
            "drwxr-xr-x"
        } else {
            "-rw-r--r--"
        };
        assert_eq!(perms, want, "{line}");
    }

    let license = q(&["-qp", "--licensefiles"]);
    assert!(
        license.contains("/usr/share/licenses/attach-node/LICENSE"),
        "{license}"
    );
    // Nothing required beyond a shell for the scriptlets: no library.
    for req in q(&["-qp", "--requires"]).lines() {
        assert!(
            req == "/bin/sh" || req.starts_with("rpmlib("),
            "the .rpm requires {req}"
        );
    }
    let scripts = q(&["-qp", "--scripts"]);
    for (name, body) in scripts
        .split("scriptlet (using /bin/sh):")
        .skip(1)
        .enumerate()
    {
        check_maintainer_script(&format!("rpm scriptlet {name}"), body);
    }
    assert!(scripts.contains("postinstall scriptlet"), "{scripts}");
    assert!(scripts.contains("postuninstall scriptlet"), "{scripts}");
}

#[test]
fn packages_hold_the_binary_its_unit_docs_and_completions() {
    if !available("dpkg-deb", "dpkg", "the .deb") {
        return;
    }
    let version = version();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let with_rpm = available("rpmbuild", "rpm", "the .rpm");
    let built = build(if with_rpm { &[] } else { &["--only", "deb"] }, &out);
    let deb = built
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "deb"));
    let deb = deb.unwrap_or_else(|| panic!("no .deb among {built:?}"));
    check_deb(deb, &version, work.path());

    if with_rpm {
        let rpm = built
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "rpm"));
        check_rpm(
            rpm.unwrap_or_else(|| panic!("no .rpm among {built:?}")),
            &version,
        );
    }

    // The same inputs and SOURCE_DATE_EPOCH make the same bytes.
    let again = build(&["--only", "deb"], &work.path().join("again"));
    assert_eq!(
        std::fs::read(&again[0]).unwrap(),
        std::fs::read(deb).unwrap(),
        "the .deb is not reproducible"
    );

    // lintian: no error or warning. The debug binary is unstripped by
    // nature (the release .deb, checked in .ci/run, is not); the overrides
    // that only a stripped binary uses are unused here, which is fine.
    if available("lintian", "lintian", "lintian") {
        let o = Command::new("lintian")
            .args([
                "--fail-on",
                "error,warning",
                "--suppress-tags",
                "unstripped-binary-or-object,unused-override",
            ])
            .arg(deb)
            .output()
            .expect("run lintian");
        assert!(
            o.status.success(),
            "lintian:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }
}

#[test]
fn the_script_is_shellcheck_clean() {
    if available("shellcheck", "shellcheck", "shellcheck") {
        let o = run(Command::new("shellcheck").arg(repo().join(SCRIPT)));
        assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    }
}

#[test]
fn the_script_refuses_what_it_cannot_package() {
    let work = tempfile::tempdir().unwrap();
    let not_elf = work.path().join("attach-node");
    std::fs::write(&not_elf, "#!/bin/sh\necho attach-node 0.1.0\n").unwrap();
    std::fs::set_permissions(
        &not_elf,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (args, code, says) in [
        (vec![], 2, "usage"),
        (vec!["--only", "tar"], 1, "--only takes deb or rpm"),
        (vec![not_elf.to_str().unwrap()], 2, "usage"),
        (
            vec![
                not_elf.to_str().unwrap(),
                work.path().join("o").to_str().unwrap(),
            ],
            1,
            "is not an ELF file",
        ),
        (
            vec!["/nonexistent", work.path().join("o").to_str().unwrap()],
            1,
            "is not an executable file",
        ),
        // A dynamically linked program (readelf is binutils', which cargo
        // needs for linking anyway).
        (
            vec!["/bin/sh", work.path().join("o").to_str().unwrap()],
            1,
            "is dynamically linked",
        ),
    ] {
        let mut full = args.clone();
        if args.first() == Some(&"--only") {
            full.extend([bin(), "/nonexistent-out"]);
        }
        let o = Command::new("bash")
            .arg(repo().join(SCRIPT))
            .args(&full)
            .output()
            .unwrap();
        let err = text(&o.stderr).to_lowercase();
        assert_eq!(o.status.code(), Some(code), "{full:?}: {err}");
        assert!(err.contains(&says.to_lowercase()), "{full:?}: {err}");
    }
    assert!(
        !work.path().join("o").exists(),
        "an output dir for a refused build"
    );
}
