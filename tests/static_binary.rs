//! The binary is static and needs nothing from the host's filesystem: no
//! dynamic loader, no shared library, no NSS, no /etc/resolv.conf, no
//! /dev, no /proc, no system CA store. Checked on the binary under test
//! (`.cargo/config.toml` links every profile with crt-static), so a
//! dependency that starts to need one of them fails here, not on a node.

mod support;

use std::path::Path;

use attach_node_lab::{Lab, LabConfig};

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The program headers' types and the dynamic section's tags of a
/// little-endian ELF64 file.
fn elf_facts(b: &[u8]) -> (Vec<u32>, Vec<u64>) {
    assert_eq!(&b[..4], b"\x7fELF", "not ELF");
    assert_eq!(b[4], 2, "not ELF64");
    assert_eq!(b[5], 1, "not little-endian");
    let phoff = u64_at(b, 0x20) as usize;
    let phentsize = u16_at(b, 0x36) as usize;
    let phnum = u16_at(b, 0x38) as usize;
    let mut types = Vec::new();
    let mut tags = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = u32_at(b, ph);
        types.push(p_type);
        if p_type == PT_DYNAMIC {
            let off = u64_at(b, ph + 0x08) as usize;
            let size = u64_at(b, ph + 0x20) as usize;
            for e in (off..off + size).step_by(16) {
                let tag = u64_at(b, e);
                if tag == 0 {
                    break;
                }
                tags.push(tag);
            }
        }
    }
    (types, tags)
}

#[test]
fn the_binary_is_statically_linked() {
    let bytes = std::fs::read(support::bin()).unwrap();
    let (types, tags) = elf_facts(&bytes);
    assert!(!types.is_empty());
    assert!(
        !types.contains(&PT_INTERP),
        "the binary names a dynamic loader (PT_INTERP): is crt-static still set in .cargo/config.toml?"
    );
    assert!(
        !tags.contains(&DT_NEEDED),
        "the binary needs a shared library (DT_NEEDED)"
    );
}

/// The ELF reader itself, on a dynamically linked program of the host, so
/// the test above cannot pass by reading nothing.
#[test]
fn the_elf_reader_sees_a_dynamic_binary() {
    let Ok(bytes) = std::fs::read("/bin/sh") else {
        eprintln!("SKIP: no /bin/sh to read");
        return;
    };
    let (types, tags) = elf_facts(&bytes);
    assert!(types.contains(&PT_INTERP) && tags.contains(&DT_NEEDED));
}

/// In a root that holds only the binary and the user's files: `discover`
/// through the control plane (reached by the name `localhost`, resolved by
/// the built-in resolver), then `join --root`, `status` and `reset`.
#[test]
fn it_runs_from_an_empty_root() {
    if !is_root() {
        let reason = "chroot needs root";
        if std::env::var("ATTACH_NODE_E2E").as_deref() == Ok("require") {
            panic!("ATTACH_NODE_E2E=require, but {reason}");
        }
        eprintln!("SKIP it_runs_from_an_empty_root: {reason}");
        return;
    }
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(support::bin(), root.join("attach-node")).unwrap();
    lab.write_files(&root.join("lab")).unwrap();
    std::fs::create_dir_all(root.join("node/etc")).unwrap();
    std::fs::write(root.join("node/etc/hostname"), "empty-1\n").unwrap();
    let names: Vec<String> = top_level_names(root);
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("lib") || n.starts_with("etc")),
        "{names:?}"
    );

    let port = |url: &str| url.rsplit(':').next().unwrap().to_owned();
    let cp = format!("https://localhost:{}", port(&lab.control_plane_url()));
    let source = [
        "--control-plane",
        cp.as_str(),
        "--control-plane-ca",
        "/lab/control-plane-ca.pem",
        "--openapi-token-file",
        "/lab/openapi-token",
    ];
    let chroot = |args: &[&str]| {
        let secrets = [lab.openapi_token(), lab.bootstrap_token()];
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let root = root.display().to_string();
        support::run_program(
            &["/usr/sbin/chroot", &root, "/attach-node"],
            args,
            &[],
            None,
            &secrets,
        )
    };

    let mut discover = vec!["discover"];
    discover.extend_from_slice(&source);
    let run = chroot(&discover);
    run.expect(0);
    assert_eq!(run.json()["clusterName"], "lab");

    let mut join = vec!["join", "--root", "/node"];
    join.extend_from_slice(&source);
    chroot(&join).expect(0);
    assert!(root.join("node/var/lib/kubelet/config.yaml").exists());
    let status = chroot(&["status", "--root", "/node", "--output", "json"]);
    status.expect(0);
    assert_eq!(status.json()["state"], "joined");
    chroot(&["reset", "--root", "/node"]).expect(0);
    assert!(!root.join("node/var/lib/kubelet/config.yaml").exists());
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// The names directly under `dir`.
fn top_level_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}
