//! Finding the `standin-kubelet` binary from tests outside the lab package,
//! where Cargo defines no `CARGO_BIN_EXE_standin-kubelet`.

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The `standin-kubelet` executable (a TEST STAND-IN, not a kubelet),
/// built first if needed: runs `cargo build -p attach-node-lab --bin
/// standin-kubelet` (`--release` when the calling test binary is a release
/// build) once per process and returns the executable Cargo reports. The
/// first call may take a while if the lab was last built with other
/// features (e.g. by `cargo test --workspace`); later ones are quick.
///
/// Within the lab package, prefer `env!("CARGO_BIN_EXE_standin-kubelet")`.
pub fn standin_kubelet_binary() -> io::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(build).clone().map_err(io::Error::other)
}

fn build() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let release = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            // target/[<triple>/]<profile>/deps/<test binary>
            let profile = exe.parent()?.parent()?.file_name()?.to_owned();
            Some(profile == "release")
        })
        .unwrap_or(false);
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--manifest-path", manifest])
        .args(["-p", "attach-node-lab", "--bin", "standin-kubelet"])
        .args(["--message-format", "json-render-diagnostics"]);
    if release {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !out.status.success() {
        return Err(format!(
            "building standin-kubelet failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "standin-kubelet")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built no standin-kubelet executable".to_owned())
}
