//! The delivery files, checked without a booted machine: the userdata
//! examples carry the first-boot unit verbatim and keep the token in a
//! root-only file; the one-liner pins this very install.sh; install.sh is
//! shellcheck-clean POSIX sh, and run for real against the lab (which
//! serves a release directory over HTTPS) it downloads the binary, checks
//! its sha256, installs it and joins into a scratch root, with the token
//! from stdin or the environment and never in argv. tests/e2e_delivery.rs
//! runs the same files in a booted Debian.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use attach_node::host::fsops::sha256_hex;
use attach_node_lab::{Lab, LabConfig};
use serde_json::Value;
use support::examples::{EXAMPLES, PLACEHOLDER_TOKEN, UNIT};
use support::{Fixture, Run};

const INSTALL_SH: &str = "packaging/install.sh";
/// The release file install.sh asks for on this machine (x86_64).
const RELEASE_BINARY: &str = "attach-node-0.1.0-amd64";

fn write_files(example: &str) -> Vec<Value> {
    let doc: Value = serde_saphyr::from_str(example).expect("the example is YAML");
    doc["write_files"].as_array().cloned().unwrap_or_default()
}

#[test]
fn examples_carry_the_first_boot_unit_verbatim() {
    for (name, yaml) in &EXAMPLES[1..] {
        let unit = write_files(yaml)
            .into_iter()
            .find(|f| f["path"] == "/etc/systemd/system/attach-node-firstboot.service")
            .unwrap_or_else(|| panic!("{name} installs no first-boot unit"));
        assert_eq!(
            unit["content"].as_str(),
            Some(UNIT),
            "{name}'s copy of systemd/attach-node-firstboot.service differs from it"
        );
        assert_eq!(unit["permissions"], "0644", "{name}");
    }
}

/// The token is written once, to a root-only file, and is in no
/// environment file, runcmd or config file.
#[test]
fn examples_keep_the_token_in_a_root_only_file() {
    for (name, yaml) in EXAMPLES {
        assert_eq!(yaml.matches(PLACEHOLDER_TOKEN).count(), 1, "{name}");
        let holders: Vec<Value> = write_files(yaml)
            .into_iter()
            .filter(|f| {
                f["content"]
                    .as_str()
                    .is_some_and(|c| c.contains(PLACEHOLDER_TOKEN))
            })
            .collect();
        assert_eq!(holders.len(), 1, "{name}: the token is in write_files once");
        let f = &holders[0];
        assert_eq!(f["path"], "/etc/attach-node/openapi-token", "{name}");
        assert_eq!(f["permissions"], "0600", "{name}");
        assert_eq!(f["owner"], "root:root", "{name}");
        assert_eq!(
            f["content"].as_str().map(str::trim_end),
            Some(PLACEHOLDER_TOKEN),
            "{name}: the file holds the token alone"
        );
        assert!(!yaml.contains("ATTACH_NODE_OPENAPI_TOKEN="), "{name}");
    }
}

#[test]
fn the_one_liner_pins_this_install_sh() {
    let script = std::fs::read(INSTALL_SH).unwrap();
    let want = sha256_hex(&script);
    let one_liner = EXAMPLES[0].1;
    assert!(
        one_liner.contains(&format!("echo \"{want}  /run/attach-node-install.sh\"")),
        "cloud-init/one-liner.yaml pins another install.sh: put {want} in it"
    );
}

/// `curl … | sh` of a download cut short: every prefix of install.sh that
/// ends at a line boundary, and every prefix ending inside its last line,
/// must run nothing at all. A run of `main` would say something on stderr
/// (with no settings, `install.sh: error: ATTACH_NODE_BASE_URL is not set`).
#[test]
fn install_sh_cut_short_runs_nothing() {
    let script = std::fs::read(INSTALL_SH).unwrap();
    let last_line = script[..script.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let mut cuts: Vec<usize> = script
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .filter(|&i| i < script.len())
        .collect();
    cuts.extend(last_line + 1..script.len() - 1);
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let piped = |bytes: &[u8]| {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .args(["-s", "--", "--labels", "a=b"])
            .env_clear()
            .env("PATH", &path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    // the whole script does run, and is seen to
    assert!(
        piped(&script).contains("install.sh: error: ATTACH_NODE_BASE_URL is not set"),
        "the complete script should run main"
    );
    for cut in cuts {
        let said = piped(&script[..cut]);
        assert!(
            !said.contains("install.sh:"),
            "install.sh cut after byte {cut} ({:?}) ran: {said}",
            String::from_utf8_lossy(&script[cut.saturating_sub(20)..cut])
        );
    }
}

#[test]
fn install_sh_is_shellcheck_clean_posix_sh() {
    let Ok(out) = std::process::Command::new("shellcheck")
        .args(["--shell=sh", "--severity=style", INSTALL_SH])
        .output()
    else {
        let reason = "shellcheck is not installed (apt-get install -y shellcheck)";
        if std::env::var("ATTACH_NODE_E2E").as_deref() == Ok("require") {
            panic!("ATTACH_NODE_E2E=require, but {reason}");
        }
        eprintln!("SKIP: {reason}");
        return;
    };
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let head = std::fs::read_to_string(INSTALL_SH).unwrap();
    assert!(head.starts_with("#!/bin/sh\n"), "POSIX sh, not bash");
}

// ---------------------------------------------------- install.sh, for real

/// A lab serving a release directory: the binary under test as
/// attach-node-0.1.0-amd64, and SHA256SUMS (given, or the right one).
struct Release {
    f: Fixture,
    dir: tempfile::TempDir,
}

impl Release {
    fn new(sums: Option<&str>) -> Release {
        let binary = std::fs::read(support::bin()).unwrap();
        let sums = sums.map(str::to_owned).unwrap_or_else(|| {
            format!(
                "{}  {RELEASE_BINARY}\n{}  attach-node-0.1.0-arm64\n",
                sha256_hex(&binary),
                "0".repeat(64)
            )
        });
        let lab = Lab::start(
            LabConfig::default()
                .download(RELEASE_BINARY, binary)
                .download("SHA256SUMS", sums),
        )
        .expect("start the lab");
        let f = Fixture::new(lab);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/etc")).unwrap();
        std::fs::write(dir.path().join("root/etc/hostname"), "installed-1\n").unwrap();
        Release { f, dir }
    }

    fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn installed(&self) -> PathBuf {
        self.bin_dir().join("attach-node")
    }

    fn root(&self) -> String {
        self.dir.path().join("root").display().to_string()
    }

    /// `sh install.sh ARGS` with the release's settings in the environment
    /// plus `env`; the join goes into the scratch root.
    fn install(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let base = format!("{}/downloads", self.f.lab.control_plane_url());
        let ca = self.f.path("control-plane-ca.pem");
        let bin_dir = self.bin_dir().display().to_string();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        let mut all = vec![
            ("PATH", path.as_str()),
            ("ATTACH_NODE_BASE_URL", base.as_str()),
            ("ATTACH_NODE_INSTALL_DIR", bin_dir.as_str()),
            // curl trusts the lab's CA as a release bucket's public CA
            // would be trusted; attach-node gets it for the control plane.
            ("CURL_CA_BUNDLE", ca.as_str()),
            ("ATTACH_NODE_CONTROL_PLANE_CA", ca.as_str()),
        ];
        all.extend_from_slice(env);
        let cp = self.f.lab.control_plane_url();
        let root = self.root();
        let mut argv = vec!["--control-plane", cp.as_str(), "--root", root.as_str()];
        argv.extend_from_slice(args);
        let secrets = self.f.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        support::run_program(&["sh", INSTALL_SH], &argv, &all, stdin, &secrets)
    }

    fn token(&self) -> String {
        self.f.lab.openapi_token()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn install_sh_downloads_checks_installs_and_joins() {
    let r = Release::new(None);
    let token = r.token();
    let run = r.install(
        &["--openapi-token-file", "-"],
        &[],
        Some(&format!("{token}\n")),
    );
    run.expect(0)
        .stderr_has("downloading attach-node-0.1.0-amd64")
        .stderr_has("installed ")
        .stderr_has("running ");
    let installed = r.installed();
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(support::bin()).unwrap()
    );
    assert_eq!(mode(&installed), 0o755);
    assert!(
        std::path::Path::new(&r.root())
            .join("var/lib/kubelet/config.yaml")
            .exists(),
        "the join ran"
    );
    // Nothing left beside it: no staged copy, no temp file.
    let names: Vec<_> = std::fs::read_dir(r.bin_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["attach-node"]);

    // Again, token from the environment: the binary already has the right
    // sha256 and is not downloaded again; the join is a no-op re-run.
    let run = r.install(&[], &[("ATTACH_NODE_OPENAPI_TOKEN", &token)], None);
    run.expect(0)
        .stderr_has("already has the expected sha256: not downloaded again");
    let tok = r.f.path("openapi-token");
    r.install(&[], &[("ATTACH_NODE_OPENAPI_TOKEN_FILE", &tok)], None)
        .expect(0);
}

#[test]
fn install_sh_refuses_a_binary_that_does_not_match() {
    let r = Release::new(Some(&format!("{}  {RELEASE_BINARY}\n", "ab".repeat(32))));
    let token = r.token();
    r.install(&[], &[("ATTACH_NODE_OPENAPI_TOKEN", &token)], None)
        .expect(4)
        .stderr_has("sha256 mismatch")
        .stderr_has("nothing was installed");
    assert!(!r.bin_dir().exists() || std::fs::read_dir(r.bin_dir()).unwrap().count() == 0);

    // A pin that does not come from the server wins over SHA256SUMS.
    let good = sha256_hex(&std::fs::read(support::bin()).unwrap());
    r.install(
        &[],
        &[
            ("ATTACH_NODE_OPENAPI_TOKEN", &token),
            ("ATTACH_NODE_SHA256", &good),
        ],
        None,
    )
    .expect(0);

    // No entry for this binary at all.
    let r = Release::new(Some("0000  something-else\n"));
    r.install(&[], &[("ATTACH_NODE_OPENAPI_TOKEN", &token)], None)
        .expect(4)
        .stderr_has("SHA256SUMS has no single valid entry");
    assert!(!r.installed().exists());
}

#[test]
fn install_sh_refuses_tokens_in_argv_and_plain_http() {
    let r = Release::new(None);
    let token = r.token();
    for flag in ["--openapi-token", "--token"] {
        let run = r.install(&[flag, &token], &[], None);
        run.expect(2)
            .stderr_has("would put the token in the process list");
        let run = r.install(&[&format!("{flag}={token}")], &[], None);
        run.expect(2);
    }
    let run = r.install(
        &[],
        &[
            ("ATTACH_NODE_OPENAPI_TOKEN", &token),
            ("ATTACH_NODE_BASE_URL", "http://127.0.0.1:9/x"),
        ],
        None,
    );
    run.expect(2).stderr_has("ATTACH_NODE_BASE_URL is http://");
    assert!(!r.installed().exists());
}

#[test]
fn install_sh_says_which_download_failed() {
    let r = Release::new(None);
    let token = r.token();
    let run = r.install(
        &[],
        &[
            ("ATTACH_NODE_OPENAPI_TOKEN", &token),
            ("ATTACH_NODE_VERSION", "9.9.9"),
        ],
        None,
    );
    run.expect(4)
        .stderr_has("SHA256SUMS has no single valid entry for attach-node-9.9.9-amd64");
    let base = format!("{}/downloads/missing", r.f.lab.control_plane_url());
    let run = r.install(
        &[],
        &[
            ("ATTACH_NODE_OPENAPI_TOKEN", &token),
            ("ATTACH_NODE_BASE_URL", &base),
        ],
        None,
    );
    run.expect(5).stderr_has("cannot download");
    assert!(!r.installed().exists());
}
