//! Shared by the integration tests: run the real `attach-node` binary and
//! check, on every run, that no secret reached its output.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use attach_node_lab::Lab;

pub mod examples;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, printing both streams when it differs.
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        if code != 0 {
            assert!(
                self.stdout.is_empty(),
                "a failed run wrote to stdout:\n{}",
                self.stdout
            );
        }
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_attach-node")
}

/// Runs the binary with `args` at the most verbose log level, with only the
/// given environment, and asserts that none of `secrets` appears in stdout
/// or stderr.
pub fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>, secrets: &[&str]) -> Run {
    run_program(&[bin()], args, env, stdin, secrets)
}

/// As [`run`], for a program that ends up running attach-node with `args`
/// (`program` is its command line before them, e.g. `sh install.sh`).
pub fn run_program(
    program: &[&str],
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
    secrets: &[&str],
) -> Run {
    let mut cmd = Command::new(program[0]);
    cmd.args(&program[1..])
        .args(args)
        .arg("-vv")
        .env_clear()
        .env("ATTACH_NODE_LOG", "trace")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program[0]));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let run = Run {
        // -1: killed by a signal (the crash tests abort on purpose)
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    for secret in secrets {
        assert!(!secret.is_empty());
        for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(secret),
                "a secret leaked into {name}:\n{text}"
            );
        }
    }
    run
}

/// A lab plus files holding what a user would have: the control plane's CA,
/// the openapi token and the bootstrap token (mode 0600).
pub struct Fixture {
    pub lab: Lab,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(lab: Lab) -> Self {
        let dir = tempfile::tempdir().unwrap();
        lab.write_files(dir.path()).unwrap();
        Fixture { lab, dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Every secret the lab hands out: none may ever be printed.
    pub fn secrets(&self) -> Vec<String> {
        let bt = self.lab.bootstrap_token();
        let secret = bt.split_once('.').unwrap().1.to_owned();
        vec![
            self.lab.openapi_token(),
            self.lab.single_use_openapi_token(),
            self.lab.expired_openapi_token(),
            secret,
        ]
    }

    /// `discover` through the control plane with the token from a file.
    pub fn discover(&self, extra: &[&str]) -> Run {
        let cp = self.lab.control_plane_url();
        let ca = self.path("control-plane-ca.pem");
        let tok = self.path("openapi-token");
        let mut args = vec![
            "discover",
            "--control-plane",
            &cp,
            "--control-plane-ca",
            &ca,
            "--openapi-token-file",
            &tok,
        ];
        args.extend_from_slice(extra);
        self.run(&args, &[], None)
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let secrets = self.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        run(args, env, stdin, &secrets)
    }
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}
