//! The running system: services, kernel settings, modules. Every call that
//! reaches it takes a [`Live`], which only [`Root::live`] hands out, and
//! only for `/`: under `--root`, code cannot touch (or read) the machine it
//! happens to run on, by construction.
//!
//! [`Root::live`]: super::Root::live
//!
//! Every program is started with an empty environment plus a fixed PATH and
//! locale: the agent's own environment may hold a token
//! (`ATTACH_NODE_OPENAPI_TOKEN`), and a child must never inherit it.
//! Arguments never carry a secret either: none of these calls needs one.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::Live;

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs `program` and returns its stdout; a failure carries stderr.
pub fn run(_: Live, program: &str, args: &[&str]) -> Result<String, String> {
    tracing::debug!("running {program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", PATH)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            crate::error::printable(err.trim(), 500)
        ))
    }
}

pub fn systemctl(live: Live, args: &[&str]) -> Result<String, String> {
    run(live, "systemctl", args)
}

/// A unit's state as `systemctl` reports it, recorded before a join
/// changes it so that reset can put it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnitState {
    /// `systemctl is-enabled`: enabled, disabled, static, not-found, ...
    pub enabled: String,
    pub active: bool,
}

pub fn unit_state(_: Live, unit: &str) -> UnitState {
    // Both commands exit non-zero for "disabled"/"inactive": read stdout
    // either way.
    let word = |args: &[&str]| {
        Command::new("systemctl")
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let enabled = word(&["is-enabled", unit]);
    UnitState {
        enabled: if enabled.is_empty() {
            "not-found".into()
        } else {
            enabled
        },
        active: word(&["is-active", unit]) == "active",
    }
}

/// Whether systemd has no such unit loaded (`LoadState=not-found`: no unit
/// file, e.g. no kubelet installed) and it is not running either. There is
/// nothing to stop or disable then; `systemctl stop` would fail on it.
pub fn unit_missing(live: Live, unit: &str) -> bool {
    let show = |property: &str| {
        run(
            live,
            "systemctl",
            &["show", "--property", property, "--value", unit],
        )
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
    };
    show("LoadState") == "not-found" && show("ActiveState") == "inactive"
}

/// The last lines of a unit's journal, for a diagnosis.
pub fn journal_tail(live: Live, unit: &str, lines: usize) -> String {
    run(
        live,
        "journalctl",
        &[
            "-u",
            unit,
            "-n",
            &lines.to_string(),
            "--no-pager",
            "-o",
            "cat",
        ],
    )
    .unwrap_or_else(|e| e)
}

fn sysctl_path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

pub fn read_sysctl(_: Live, key: &str) -> io::Result<String> {
    Ok(std::fs::read_to_string(sysctl_path(key))?.trim().to_owned())
}

pub fn write_sysctl(_: Live, key: &str, value: &str) -> io::Result<()> {
    std::fs::write(sysctl_path(key), value)
}

/// The mount points strictly below `dir` in a `/proc/self/mountinfo` text,
/// deepest first: the order they can be unmounted in. Pure.
pub fn mounts_below(mountinfo: &str, dir: &str) -> Vec<String> {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort();
    points.dedup();
    // Deeper paths sort after their parents: reversed, children come first.
    points.reverse();
    points
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The running machine's mount points below `dir`, deepest first.
pub fn live_mounts_below(_: Live, dir: &str) -> io::Result<Vec<String>> {
    Ok(mounts_below(
        &std::fs::read_to_string("/proc/self/mountinfo")?,
        dir,
    ))
}

/// Unmounts `path` on the running machine. Not lazily: a mount still in
/// use (a pod's volume) stays, and the error says so, rather than being
/// detached from under a running process.
pub fn unmount(_: Live, path: &str) -> io::Result<()> {
    let c = std::ffi::CString::new(path).map_err(io::Error::other)?;
    // SAFETY: a valid NUL-terminated path; umount2 reads it only.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `key = value` lines of a sysctl.d file, comments and blanks skipped.
pub fn parse_sysctl_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_files() {
        let t = "# c\n; c\nnet.ipv4.ip_forward = 1\n\nnet.bridge.bridge-nf-call-iptables=1\n";
        assert_eq!(
            parse_sysctl_file(t),
            [
                ("net.ipv4.ip_forward".to_owned(), "1".to_owned()),
                (
                    "net.bridge.bridge-nf-call-iptables".to_owned(),
                    "1".to_owned()
                )
            ]
        );
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward"),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
    }

    #[test]
    fn mounts_below_a_directory_deepest_first() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:40 / /var/lib/kubelet rw - ext4 /dev/sdb rw
31 30 0:41 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/data rw - tmpfs tmpfs rw
32 30 0:42 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~secret/my\\040token rw - tmpfs tmpfs rw
33 22 0:43 / /var/lib/kubelet-other rw - tmpfs tmpfs rw
34 31 0:44 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/data/sub rw - tmpfs tmpfs rw
";
        assert_eq!(
            mounts_below(info, "/var/lib/kubelet"),
            [
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~secret/my token",
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/data/sub",
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/data",
            ]
        );
        assert!(mounts_below(info, "/srv").is_empty());
    }

    #[test]
    fn children_get_no_environment() {
        // Whatever this test process holds (a token, in production), a
        // child sees only PATH and LC_ALL.
        let live = super::super::Root::host().live().unwrap();
        let out = run(live, "env", &[]).unwrap();
        let mut names: Vec<&str> = out.lines().filter_map(|l| l.split('=').next()).collect();
        names.sort();
        assert_eq!(names, ["LC_ALL", "PATH"], "{out}");
    }
}
