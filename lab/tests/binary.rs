//! The `attach-node-lab` binary as the README demo and benchmarks use it.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use common::{Trust, bearer, get};

const BIN: &str = env!("CARGO_BIN_EXE_attach-node-lab");

/// Kills the server even when an assertion fails first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_writes_files_and_answers() {
    let dir = std::env::temp_dir().join(format!("attach-node-lab-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Running(
        Command::new(BIN)
            .args(["serve", "--dir"])
            .arg(&dir)
            .args([
                "--fault",
                "control-plane-429=1",
                "--lifetime",
                "60",
                "--quiet",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 3, "{line:?}");
    assert_eq!(words[0], "ready");
    let (cp, api) = (words[1], words[2]);
    assert!(cp.starts_with("https://127.0.0.1:") && api.starts_with("https://127.0.0.1:"));

    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let env = read("lab.env");
    assert!(env.contains(&format!("LAB_CONTROL_PLANE='{cp}'\n")));
    assert!(env.contains(&format!("LAB_API_SERVER='{api}'\n")));
    assert!(env.contains("LAB_CA_CERT_HASH='sha256:"));
    assert!(env.contains("LAB_DIR='"));

    let ca = read("control-plane-ca.pem");
    let token = read("openapi-token");
    let auth = bearer(&token);
    let headers = [("Authorization", auth.as_str())];
    let first = get(cp, "/v1/node-attach", Trust::Ca(&ca), &headers).unwrap();
    assert_eq!(
        (first.status, first.header("retry-after")),
        (429, Some("1"))
    );
    let info = get(cp, "/v1/node-attach", Trust::Ca(&ca), &headers)
        .unwrap()
        .json();
    assert_eq!(info["apiServerEndpoints"][0], api);
    assert_eq!(info["bootstrapToken"], read("bootstrap-token"));

    // What a kubelet (or the stand-in) needs for its TLS bootstrap.
    let bootstrap_conf = read("bootstrap-kubelet.conf");
    assert!(bootstrap_conf.contains(&format!("    server: {api}\n")));
    assert!(bootstrap_conf.contains(&format!("    token: {}\n", read("bootstrap-token"))));
    assert!(env.contains("LAB_BOOTSTRAP_KUBECONFIG='"));
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("bootstrap-kubelet.conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let cluster_ca = read("cluster-ca.pem");
    let ci = get(
        api,
        "/api/v1/namespaces/kube-public/configmaps/cluster-info",
        Trust::Ca(&cluster_ca),
        &[],
    )
    .unwrap();
    assert_eq!(ci.status, 200);

    drop(child);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lifetime_ends_the_server() {
    let dir = std::env::temp_dir().join(format!("attach-node-lab-life-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["serve", "--quiet", "--lifetime", "0", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("ready https://")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(
        String::from_utf8(help.stdout)
            .unwrap()
            .starts_with("Usage: attach-node-lab serve")
    );

    for args in [
        &[][..],
        &["serve"][..],
        &["serve", "--dir", "/tmp/x", "--fault", "nope"][..],
        &["serve", "--dir", "/tmp/x", "--lifetime"][..],
        &["launch"][..],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        assert!(
            String::from_utf8(out.stderr)
                .unwrap()
                .starts_with("attach-node-lab: error: ")
        );
    }
}
