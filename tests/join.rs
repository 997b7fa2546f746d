//! `join`, `reset` and `status` against the lab, into scratch roots: the
//! plan, idempotent re-runs, a crash or an error at every step (then resume
//! or undo), and reset leaving the root exactly as it was.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use attach_node_lab::{Lab, LabConfig};
use support::{Fixture, Run};

const STATE_DIR: &str = "var/lib/attach-node";

/// A root that looks lived-in: site files where join writes, and a
/// containerd config it must replace only with a backup.
fn populated_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let put = |rel: &str, content: &str, mode: u32| {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    put("etc/hostname", "Worker-1\n", 0o644);
    put(
        "etc/containerd/config.toml",
        "# the site's own containerd config\nversion = 2\n",
        0o640,
    );
    put("etc/sysctl.d/10-site.conf", "vm.swappiness = 10\n", 0o644);
    put(
        "etc/systemd/system/site.service",
        "[Service]\nExecStart=/bin/true\n",
        0o644,
    );
    put("var/lib/.keep", "", 0o644);
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        root.path().join("etc/resolv.conf"),
    )
    .unwrap();
    root
}

/// Every path under `root` with its type, mode, owner and content hash.
fn snapshot(root: &Path, skip_state: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, skip_state, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, skip_state: bool, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if skip_state && rel.starts_with(STATE_DIR) {
            continue;
        }
        let m = std::fs::symlink_metadata(&p).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            walk(root, &p, skip_state, out);
            "dir".to_owned()
        } else {
            attach_node::host::fsops::sha256_hex(&std::fs::read(&p).unwrap())
        };
        out.insert(
            rel,
            format!("{what} {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid()),
        );
    }
}

fn lab(cfg: LabConfig) -> Fixture {
    Fixture::new(Lab::start(cfg).unwrap())
}

impl Fixture {
    fn join(&self, root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
        self.join_with_token(root, "openapi-token", extra, env)
    }

    /// `join` with the openapi token of the fixture's file `token`
    /// (`openapi-token-single-use`, say).
    fn join_with_token(
        &self,
        root: &Path,
        token: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        let cp = self.lab.control_plane_url();
        let ca = self.path("control-plane-ca.pem");
        let tok = self.path(token);
        let r = root.display().to_string();
        let mut args = vec![
            "join",
            "--control-plane",
            &cp,
            "--control-plane-ca",
            &ca,
            "--openapi-token-file",
            &tok,
            "--root",
            &r,
        ];
        args.extend_from_slice(extra);
        self.run(&args, env, None)
    }

    fn reset(&self, root: &Path, extra: &[&str]) -> Run {
        let r = root.display().to_string();
        let mut args = vec!["reset", "--root", &r];
        args.extend_from_slice(extra);
        self.run(&args, &[], None)
    }

    fn status(&self, root: &Path) -> serde_json::Value {
        let r = root.display().to_string();
        let run = self.run(&["status", "--root", &r, "--output", "json"], &[], None);
        run.expect(0);
        run.json()
    }
}

#[test]
fn join_writes_kubeadms_layout_and_reset_restores_the_root_exactly() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let before = snapshot(root.path(), false);

    f.join(root.path(), &[], &[]).expect(0).stderr_has("");
    let r = root.path();
    let mode = |rel: &str| std::fs::metadata(r.join(rel)).unwrap().mode() & 0o777;
    assert_eq!(mode("etc/kubernetes/bootstrap-kubelet.conf"), 0o600);
    assert_eq!(mode("etc/kubernetes/pki/ca.crt"), 0o644);
    assert_eq!(mode("var/lib/kubelet"), 0o700);
    assert_eq!(mode(STATE_DIR), 0o700);
    assert_eq!(
        std::fs::read_to_string(r.join("etc/kubernetes/pki/ca.crt"))
            .unwrap()
            .trim(),
        f.lab.cluster_ca_pem().trim()
    );
    let bootstrap =
        std::fs::read_to_string(r.join("etc/kubernetes/bootstrap-kubelet.conf")).unwrap();
    assert!(
        bootstrap.contains(&f.lab.bootstrap_token()),
        "the kubelet needs its token"
    );
    assert!(bootstrap.contains(&f.lab.api_server_url()));
    let flags = std::fs::read_to_string(r.join("var/lib/kubelet/kubeadm-flags.env")).unwrap();
    assert!(flags.starts_with("KUBELET_KUBEADM_ARGS=\""), "{flags}");
    assert!(
        flags.contains("lab.attach-node.dev/pool=default"),
        "{flags}"
    );
    assert!(
        !flags.contains("--hostname-override"),
        "the node is named after the host: {flags}"
    );
    let containerd = std::fs::read_to_string(r.join("etc/containerd/config.toml")).unwrap();
    assert!(containerd.contains("SystemdCgroup = true"), "{containerd}");
    for p in [
        "var/lib/kubelet/config.yaml",
        "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "etc/sysctl.d/99-kubernetes-attach-node.conf",
        "etc/modules-load.d/kubernetes-attach-node.conf",
    ] {
        assert!(r.join(p).is_file(), "{p}");
    }
    validate_kubeconfig(&r.join("etc/kubernetes/bootstrap-kubelet.conf"));

    let st = f.status(r);
    assert_eq!(st["state"], "joined");
    assert_eq!(st["nodeName"], "worker-1");
    assert_eq!(st["cluster"], "lab");

    // an identical re-run changes nothing at all, journal included
    let joined = snapshot(r, false);
    f.join(r, &[], &[]).expect(0).stderr_has("");
    assert_eq!(
        snapshot(r, false),
        joined,
        "a second identical join changed the root"
    );

    f.reset(r, &[]).expect(0);
    assert_eq!(
        snapshot(r, true),
        before,
        "reset did not restore the root exactly"
    );
    assert_eq!(f.status(r)["state"], "reset");
    assert!(
        !r.join(STATE_DIR).join("backups").exists(),
        "backups are dropped after reset"
    );
    // and joins again from scratch
    f.join(r, &[], &[]).expect(0);
    f.reset(r, &[]).expect(0);
    assert_eq!(snapshot(r, true), before);
}

#[test]
fn dry_run_writes_nothing_and_shows_the_plan() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    // World-readable, so its lines may be shown (see
    // dry_run_never_shows_a_file_others_cannot_read for the other case).
    std::fs::set_permissions(
        root.path().join("etc/containerd/config.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let before = snapshot(root.path(), false);
    let run = f.join(root.path(), &["--dry-run"], &[]);
    run.expect(0);
    assert_eq!(
        snapshot(root.path(), false),
        before,
        "dry run changed the root"
    );
    assert!(
        run.stdout
            .contains("create    /etc/kubernetes/bootstrap-kubelet.conf (0600)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("contents not shown"), "{}", run.stdout);
    assert!(
        run.stdout.contains("update    /etc/containerd/config.toml"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("-# the site's own containerd config"),
        "a diff of the replaced file:\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("listed, not run"), "{}", run.stdout);

    let run = f.join(root.path(), &["--dry-run", "--output", "json"], &[]);
    run.expect(0);
    let v = run.json();
    assert_eq!(v["node"], "worker-1");
    let files = v["files"].as_array().unwrap();
    let boot = files
        .iter()
        .find(|x| x["path"] == "/etc/kubernetes/bootstrap-kubelet.conf")
        .unwrap();
    assert_eq!(
        boot["diff"],
        serde_json::Value::Null,
        "a secret is never diffed"
    );
    assert_eq!(snapshot(root.path(), false), before);
}

#[test]
fn a_crash_at_any_point_is_resumed_or_undone() {
    let f = lab(LabConfig::default());
    // the root a clean join produces, journal aside
    let clean = populated_root();
    f.join(clean.path(), &[], &[]).expect(0);
    let want_joined = snapshot(clean.path(), true);

    let mut point = 1;
    loop {
        let root = populated_root();
        let before = snapshot(root.path(), false);
        let n = point.to_string();
        let run = f.join(root.path(), &[], &[("ATTACH_NODE_TEST_CRASH_AT", &n)]);
        if run.code == 0 {
            assert!(
                point > 10,
                "the join has more than 10 points; it ran through at {point}"
            );
            break;
        }
        assert_eq!(run.code, -1, "killed at point {point}: {}", run.stderr);
        if point % 2 == 0 {
            f.join(root.path(), &[], &[]).expect(0);
            assert_eq!(
                snapshot(root.path(), true),
                want_joined,
                "resume after a crash at point {point}"
            );
            f.reset(root.path(), &[]).expect(0);
        } else {
            f.reset(root.path(), &[]).expect(0);
        }
        assert_eq!(
            snapshot(root.path(), true),
            before,
            "undo after a crash at point {point}"
        );
        point += 1;
    }
}

#[test]
fn an_error_at_any_point_is_exit_6_then_resumed_or_undone() {
    let f = lab(LabConfig::default());
    let clean = populated_root();
    f.join(clean.path(), &[], &[]).expect(0);
    let want_joined = snapshot(clean.path(), true);

    let mut point = 1;
    loop {
        let root = populated_root();
        let before = snapshot(root.path(), false);
        let n = point.to_string();
        let run = f.join(root.path(), &[], &[("ATTACH_NODE_TEST_FAIL_AT", &n)]);
        if run.code == 0 {
            break;
        }
        run.expect(6)
            .stderr_has("injected failure")
            .stderr_has(root.path().to_str().unwrap());
        assert_eq!(f.status(root.path())["state"], "failed");
        if point % 2 == 1 {
            f.join(root.path(), &[], &[]).expect(0);
            assert_eq!(
                snapshot(root.path(), true),
                want_joined,
                "resume after an error at point {point}"
            );
        }
        f.reset(root.path(), &[]).expect(0);
        assert_eq!(
            snapshot(root.path(), true),
            before,
            "undo after an error at point {point}"
        );
        point += 1;
    }
    assert!(point > 10);
}

#[test]
fn a_real_write_error_names_the_path_and_the_os_error() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    // a directory where a file must go: rename(2) fails
    std::fs::create_dir_all(root.path().join("etc/kubernetes/bootstrap-kubelet.conf/x")).unwrap();
    f.join(root.path(), &[], &[])
        .expect(6)
        .stderr_has("bootstrap-kubelet.conf")
        .stderr_has("not a regular file");
}

#[test]
fn an_os_error_is_exit_6_with_the_os_message() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    // a symlink loop where join needs a directory: only the kernel can say
    // what is wrong (ELOOP)
    let containerd = root.path().join("etc/containerd");
    std::fs::remove_dir_all(&containerd).unwrap();
    std::os::unix::fs::symlink("containerd", &containerd).unwrap();
    f.join(root.path(), &[], &[])
        .expect(6)
        .stderr_has("etc/containerd")
        .stderr_has("os error 40");
    assert_eq!(f.status(root.path())["state"], "failed");
    // mended, the join resumes
    std::fs::remove_file(&containerd).unwrap();
    std::fs::create_dir(&containerd).unwrap();
    f.join(root.path(), &[], &[])
        .expect(0)
        .stderr_has("resuming the join started ")
        .stderr_has(", which failed: cannot follow the symlink");
}

#[test]
fn directories_reached_through_symlinks_are_used_and_kept() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    // /var/lib/kubelet on a "data disk"
    std::fs::create_dir_all(root.path().join("data/kubelet")).unwrap();
    std::os::unix::fs::symlink("../../data/kubelet", root.path().join("var/lib/kubelet")).unwrap();
    let before = snapshot(root.path(), false);
    f.join(root.path(), &[], &[]).expect(0);
    assert!(root.path().join("data/kubelet/config.yaml").is_file());
    f.reset(root.path(), &[]).expect(0);
    assert_eq!(
        snapshot(root.path(), true),
        before,
        "the link and its target survive reset"
    );
}

#[test]
fn a_second_concurrent_run_is_exit_8() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let dir = root.path().join(STATE_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join("lock")).unwrap();
    lock.lock().unwrap();
    f.join(root.path(), &[], &[])
        .expect(8)
        .stderr_has("another attach-node run")
        .stderr_has("var/lib/attach-node/lock")
        .stderr_has("hint: wait for the other run")
        .stderr_has("ps -C attach-node");
    f.reset(root.path(), &[]).expect(8);
    drop(lock);
    f.join(root.path(), &[], &[]).expect(0);
}

/// A single-use openapi token is spent by trading it, so whatever can stop
/// a join without the network (the lock, the node name, the user's labels)
/// stops it before the trade, and the token still works for the retry.
#[test]
fn a_join_stopped_locally_leaves_a_single_use_token_unspent() {
    const ONCE: &str = "openapi-token-single-use";
    let f = lab(LabConfig::default());
    let root = populated_root();
    let dir = root.path().join(STATE_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join("lock")).unwrap();
    lock.lock().unwrap();
    f.join_with_token(root.path(), ONCE, &[], &[])
        .expect(8)
        .stderr_has("another attach-node run");
    drop(lock);
    f.join_with_token(
        root.path(),
        ONCE,
        &["--labels", "node-role.kubernetes.io/worker="],
        &[],
    )
    .expect(2)
    .stderr_has("kubectl label node");
    f.join_with_token(root.path(), ONCE, &["--node-name", "Not_A_Name"], &[])
        .expect(2);
    f.join_with_token(root.path(), ONCE, &["--node-name-mode", "instance-id"], &[])
        .expect(2);
    assert_eq!(f.status(root.path())["state"], "none");

    f.join_with_token(root.path(), ONCE, &[], &[]).expect(0);
    assert_eq!(f.status(root.path())["state"], "joined");
    // and it was single-use indeed (another host: this one would resume
    // with the ClusterInfo it kept, and trade nothing)
    let other = populated_root();
    f.join_with_token(other.path(), ONCE, &[], &[])
        .expect(3)
        .stderr_has("410");
}

/// A join that stops before it records anything leaves no state directory
/// behind, though it took the lock (which lives there) first.
#[test]
fn a_join_stopped_before_any_change_leaves_no_state_directory() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let before = snapshot(root.path(), false);
    f.join_with_token(root.path(), "openapi-token-expired", &[], &[])
        .expect(3);
    assert_eq!(snapshot(root.path(), false), before);
}

#[test]
fn a_ready_node_of_the_same_name_stops_the_join() {
    let f = lab(LabConfig::default().node("worker-1", true));
    let root = populated_root();
    f.join(root.path(), &[], &[])
        .expect(9)
        .stderr_has("already exists")
        .stderr_has("--force");
    assert!(
        !root.path().join(STATE_DIR).exists(),
        "nothing written before the check"
    );
    f.join(root.path(), &["--force"], &[]).expect(0);

    let f = lab(LabConfig::default().node("worker-1", false));
    let root = populated_root();
    f.join(root.path(), &[], &[])
        .expect(0)
        .stderr_has("not Ready");
}

#[test]
fn labels_a_kubelet_may_not_set_are_exit_2() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    f.join(
        root.path(),
        &["--labels", "node-role.kubernetes.io/worker="],
        &[],
    )
    .expect(2)
    .stderr_has("kubectl label node");
    f.join(root.path(), &["--taints", "dedicated=gpu:Sometimes"], &[])
        .expect(2);
    assert!(!root.path().join(STATE_DIR).exists());
    f.join(
        root.path(),
        &[
            "--labels",
            "pool=gpu",
            "--taints",
            "dedicated=gpu:NoSchedule",
            "--node-name",
            "gpu-7",
        ],
        &[],
    )
    .expect(0);
    let flags =
        std::fs::read_to_string(root.path().join("var/lib/kubelet/kubeadm-flags.env")).unwrap();
    assert!(
        flags.contains("pool=gpu") && flags.contains("dedicated=gpu:NoSchedule"),
        "{flags}"
    );
    assert!(flags.contains("--hostname-override=gpu-7"), "{flags}");
}

/// attach_node.sh's `--ess`: an autoscaler node registers with ACK's
/// `k8s.aliyun.com=true` label, unless a label of that key says otherwise.
#[test]
fn ess_makes_an_autoscaler_node_with_acks_label() {
    let f = lab(LabConfig::default());
    let flags = |root: &Path| {
        std::fs::read_to_string(root.join("var/lib/kubelet/kubeadm-flags.env")).unwrap()
    };
    let root = populated_root();
    f.join(root.path(), &[], &[]).expect(0);
    assert!(
        !flags(root.path()).contains("k8s.aliyun.com"),
        "{}",
        flags(root.path())
    );

    let root = populated_root();
    f.join(root.path(), &["--ess"], &[]).expect(0);
    let got = flags(root.path());
    assert!(
        got.contains("--node-labels=k8s.aliyun.com=true,lab.attach-node.dev/pool=default"),
        "{got}"
    );

    let root = populated_root();
    let config = support::write(f.dir.path(), "ess.yaml", "ess: true\n");
    let config = config.display().to_string();
    f.join(
        root.path(),
        &["--config", &config, "--labels", "k8s.aliyun.com=false"],
        &[],
    )
    .expect(0);
    let got = flags(root.path());
    assert!(got.contains("k8s.aliyun.com=false"), "{got}");
    assert!(!got.contains("k8s.aliyun.com=true"), "{got}");
}

/// Messages name what the user gave, where it was given: a flag, or a
/// key of the config file (not the flag it stands for).
#[test]
fn messages_name_the_flag_or_the_config_key_the_user_gave() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let run = f.join(root.path(), &["--node-name-mode", "nodeip"], &[]);
    run.expect(2)
        .stderr_has("--node-name-mode nodeip needs cloud instance metadata")
        .stderr_has("--node-name");
    assert!(!run.stderr.contains("private-ip"), "{}", run.stderr);

    let config = |name: &str, text: &str| {
        support::write(f.dir.path(), name, text)
            .display()
            .to_string()
    };
    let mode = config("mode.yaml", "node-name-mode: nodeip\n");
    f.join(root.path(), &["--config", &mode], &[])
        .expect(2)
        .stderr_has(&format!(
            "the config file {mode}'s node-name-mode nodeip needs"
        ));
    let labels = config("labels.yaml", "labels: node-role.kubernetes.io/worker=\n");
    let run = f.join(root.path(), &["--config", &labels], &[]);
    run.expect(2)
        .stderr_has(&format!("the config file {labels}'s labels: label"))
        .stderr_has(&format!("remove it from the config file {labels}'s labels"));
    assert!(!run.stderr.contains("--labels"), "{}", run.stderr);
    let bad = config("bad.yaml", "labels: nokey\n");
    f.join(root.path(), &["--config", &bad], &[])
        .expect(2)
        .stderr_has(&format!("the config file {bad}'s labels: malformed pair"));
    let taints = config("taints.yaml", "taints: dedicated=gpu:Sometimes\n");
    let run = f.join(root.path(), &["--config", &taints], &[]);
    run.expect(2)
        .stderr_has(&format!("the config file {taints}'s taints: invalid taint"));
    assert!(!run.stderr.contains("--taints"), "{}", run.stderr);
    // the flag beats the file, and is named as the flag
    f.join(
        root.path(),
        &["--config", &labels, "--labels", "kubernetes.io/bad=x"],
        &[],
    )
    .expect(2)
    .stderr_has("--labels: label \"kubernetes.io/bad\"");
}

/// reset counts in words: "1 directory removed", "2 files removed".
#[test]
fn reset_counts_what_it_removed_in_words() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let run = f.join(root.path(), &["--output", "json"], &[]);
    run.expect(0);
    let mut dirs: Vec<String> = run.json()["directoriesCreated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert!(dirs.len() > 1, "{dirs:?}");
    let out = f.reset(root.path(), &[]);
    out.expect(0);
    assert!(
        out.stdout
            .contains(&format!("{} directories removed", dirs.len())),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(" files removed, "), "{}", out.stdout);
    assert!(!out.stdout.contains("(s)"), "{}", out.stdout);

    // all but one of those directories there before: one is removed
    let root = populated_root();
    let last = dirs.pop().unwrap();
    for d in &dirs {
        std::fs::create_dir_all(root.path().join(d.trim_start_matches('/'))).unwrap();
    }
    f.join(root.path(), &[], &[]).expect(0);
    let out = f.reset(root.path(), &[]);
    out.expect(0);
    assert!(
        out.stdout.contains(", 1 directory removed\n"),
        "only {last} was created: {}",
        out.stdout
    );
}

#[test]
fn reset_leaves_files_changed_since_the_join_unless_forced() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let before = snapshot(root.path(), false);
    f.join(root.path(), &[], &[]).expect(0);
    let cfg = root.path().join("var/lib/kubelet/config.yaml");
    std::fs::write(&cfg, "edited by hand\n").unwrap();
    f.reset(root.path(), &[])
        .expect(6)
        .stderr_has("changed since the join")
        .stderr_has("--force");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "edited by hand\n");
    assert_eq!(f.status(root.path())["state"], "failed");
    f.reset(root.path(), &["--force"]).expect(0);
    assert_eq!(snapshot(root.path(), true), before);
}

#[test]
fn reset_without_a_journal_falls_back_to_kubeadms_cleanup() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    std::fs::create_dir_all(root.path().join("etc/kubernetes/pki")).unwrap();
    std::fs::write(root.path().join("etc/kubernetes/kubelet.conf"), "x").unwrap();
    std::fs::write(root.path().join("etc/kubernetes/pki/ca.crt"), "x").unwrap();
    let run = f.reset(root.path(), &["--dry-run"]);
    run.expect(0);
    assert!(
        run.stdout.contains("no attach-node journal")
            && run
                .stdout
                .contains("would remove /etc/kubernetes/kubelet.conf"),
        "{}",
        run.stdout
    );
    assert!(root.path().join("etc/kubernetes/kubelet.conf").exists());
    // Nothing removed without a journal can be put back: it takes --force.
    f.reset(root.path(), &[])
        .expect(2)
        .stderr_has("would remove /etc/kubernetes/kubelet.conf")
        .stderr_has("attach-node reset --force");
    assert!(root.path().join("etc/kubernetes/kubelet.conf").exists());
    f.reset(root.path(), &["--force"]).expect(0);
    assert!(!root.path().join("etc/kubernetes/kubelet.conf").exists());
    assert!(!root.path().join("etc/kubernetes/pki/ca.crt").exists());
    assert!(
        root.path().join("etc/kubernetes/pki").is_dir(),
        "contents, not the directory, as kubeadm"
    );
}

#[test]
fn joined_to_one_cluster_a_join_to_another_is_exit_9() {
    let a = lab(LabConfig::default());
    let b = lab(LabConfig::default());
    let root = populated_root();
    a.join(root.path(), &[], &[]).expect(0);
    b.join(root.path(), &[], &[]).expect(9).stderr_has("reset");
}

#[test]
fn attach_node_sh_flags_alone_mean_join() {
    let f = lab(LabConfig::default());
    let cp = f.lab.control_plane_url();
    let ca = f.path("control-plane-ca.pem");
    let tok = f.path("openapi-token");
    let root = populated_root();
    let r = root.path().display().to_string();
    f.run(
        &[
            "--control-plane",
            &cp,
            "--control-plane-ca",
            &ca,
            "--openapi-token-file",
            &tok,
            "--root",
            &r,
        ],
        &[],
        None,
    )
    .expect(0);
    assert_eq!(f.status(root.path())["state"], "joined");

    // a flag's value that is also a subcommand's name is still a value
    let root = populated_root();
    let r = root.path().display().to_string();
    f.run(
        &[
            "--control-plane",
            &cp,
            "--node-name",
            "reset",
            "--control-plane-ca",
            &ca,
            "--openapi-token-file",
            &tok,
            "--root",
            &r,
        ],
        &[],
        None,
    )
    .expect(0);
    let st = f.status(root.path());
    assert_eq!(st["state"], "joined");
    assert_eq!(st["nodeName"], "reset");
}

#[test]
fn status_of_a_fresh_host_is_none() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().display().to_string();
    let run = support::run(
        &["status", "--root", &r, "--output", "json"],
        &[],
        None,
        &[],
    );
    run.expect(0);
    assert_eq!(run.json()["state"], "none");
    let run = support::run(&["status", "--root", &r], &[], None, &[]);
    assert!(run.stdout.starts_with("state      none"), "{}", run.stdout);
}

/// A real kubectl must accept the bootstrap kubeconfig (where installed).
fn validate_kubeconfig(path: &Path) {
    let Ok(out) = std::process::Command::new("kubectl")
        .args(["config", "view", "--minify", "--raw", "--kubeconfig"])
        .arg(path)
        .output()
    else {
        eprintln!("kubectl not installed: kubeconfig not validated with it");
        return;
    };
    assert!(
        out.status.success(),
        "kubectl rejects {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn absolute_links_in_the_root_never_lead_outside_it() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious"), "keep me").unwrap();
    // an image's absolute link, pointing at a path that also exists on the build host
    std::os::unix::fs::symlink(outside.path(), root.path().join("var/lib/kubelet")).unwrap();
    // dangling inside the root: a clear error, nothing written outside
    f.join(root.path(), &[], &[])
        .expect(6)
        .stderr_has("follow the symlink");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    f.reset(root.path(), &["--force"]).expect(0);
    let inside = root.path().join(outside.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    let before = snapshot(root.path(), true);
    f.join(root.path(), &[], &[]).expect(0);
    assert!(
        inside.join("config.yaml").is_file(),
        "written under the root"
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        1,
        "nothing written outside"
    );
    f.reset(root.path(), &[]).expect(0);
    assert_eq!(snapshot(root.path(), true), before);
    // the kubeadm-style fallback must not follow it out either
    std::fs::remove_dir_all(root.path().join(STATE_DIR)).unwrap();
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(inside.join("config.yaml"), "x").unwrap();
    f.reset(root.path(), &["--force"]).expect(0);
    assert_eq!(
        std::fs::read_to_string(outside.path().join("precious")).unwrap(),
        "keep me"
    );
}

#[test]
fn rejoining_as_the_ready_node_this_host_already_is_fine() {
    let f = lab(LabConfig::default().node("worker-1", true));
    let root = populated_root();
    f.join(root.path(), &["--force"], &[]).expect(0);
    let joined = snapshot(root.path(), false);
    f.join(root.path(), &[], &[])
        .expect(0)
        .stderr_has("is this host");
    assert_eq!(snapshot(root.path(), false), joined);
}

#[test]
fn a_root_that_is_the_live_host_is_treated_as_such() {
    // Only dry runs here: a real join of the machine running the tests
    // belongs inside the e2e suite's throwaway machines.
    let f = lab(LabConfig::default());
    let run = f.join(Path::new("/tmp/.."), &["--dry-run"], &[]);
    run.expect(0);
    assert!(run.stdout.contains("root: /\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("\npreflight:\n"),
        "all checks apply to the live host:\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("systemd"), "{}", run.stdout);
    f.reset(Path::new("/tmp/.."), &["--dry-run"]).expect(0);
}

#[test]
fn a_root_without_a_hostname_needs_a_node_name() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    std::fs::remove_file(root.path().join("etc/hostname")).unwrap();
    f.join(root.path(), &[], &[])
        .expect(2)
        .stderr_has("--node-name");
    f.join(root.path(), &["--node-name", "baked-1"], &[])
        .expect(0);
    let flags =
        std::fs::read_to_string(root.path().join("var/lib/kubelet/kubeadm-flags.env")).unwrap();
    assert!(flags.contains("--hostname-override=baked-1"), "{flags}");
}

#[test]
fn the_state_directory_is_private_whoever_made_it() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let dir = root.path().join(STATE_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    f.join(root.path(), &[], &[]).expect(0);
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
}

#[test]
fn a_crash_during_reset_is_finished_by_resetting_again() {
    let f = lab(LabConfig::default());
    let mut point = 1;
    loop {
        let root = populated_root();
        let before = snapshot(root.path(), true);
        f.join(root.path(), &[], &[]).expect(0);
        let r = root.path().display().to_string();
        let n = point.to_string();
        let run = f.run(
            &["reset", "--root", &r],
            &[("ATTACH_NODE_TEST_CRASH_AT", &n)],
            None,
        );
        if run.code == 0 {
            assert!(
                point > 10,
                "reset has more than 10 points; it ran through at {point}"
            );
            break;
        }
        assert_eq!(run.code, -1, "killed at point {point}: {}", run.stderr);
        assert_eq!(f.status(root.path())["state"], "resetting");
        f.reset(root.path(), &[]).expect(0);
        assert_eq!(
            snapshot(root.path(), true),
            before,
            "reset after a crashed reset at point {point}"
        );
        point += 1;
    }
}

#[test]
fn dry_run_preflight_names_a_kubelet_conf_of_another_cluster() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let run = f.join(root.path(), &["--dry-run"], &[]);
    run.expect(0);
    assert!(run.stdout.contains("ok   kubelet.conf"), "{}", run.stdout);
    std::fs::create_dir_all(root.path().join("etc/kubernetes")).unwrap();
    std::fs::write(
        root.path().join("etc/kubernetes/kubelet.conf"),
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: YWJj\n    server: https://10.9.9.9:6443\n  name: default-cluster\ncontexts:\n- context:\n    cluster: default-cluster\n    user: default-auth\n  name: default-context\ncurrent-context: default-context\nkind: Config\n",
    )
    .unwrap();
    let run = f.join(root.path(), &["--dry-run", "--output", "json"], &[]);
    run.expect(0);
    let pre = run.json()["preflight"].as_array().unwrap().clone();
    let conf = pre.iter().find(|p| p["check"] == "kubelet.conf").unwrap();
    assert_eq!(conf["ok"], false);
    assert!(
        conf["detail"]
            .as_str()
            .unwrap()
            .contains("https://10.9.9.9:6443")
    );
    assert!(conf["fix"].as_str().unwrap().contains("reset"));
}

#[test]
fn uninstall_leaves_no_trace_of_attach_node() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let before = snapshot(root.path(), false);
    // what install.sh and the first-boot unit would have put there
    let put = |rel: &str, content: &str| {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    };
    f.join(root.path(), &[], &[]).expect(0);
    put("usr/local/bin/attach-node", "#!/bin/sh\n");
    put(
        "etc/attach-node/firstboot.env",
        "ATTACH_NODE_OPENAPI_TOKEN=x\n",
    );
    put(
        "etc/systemd/system/attach-node-firstboot.service",
        "[Service]\n",
    );
    let r = root.path().display().to_string();
    let run = f.run(&["uninstall", "--root", &r, "--dry-run"], &[], None);
    run.expect(0);
    assert!(
        run.stdout.contains("would remove /etc/attach-node"),
        "{}",
        run.stdout
    );
    assert!(root.path().join("usr/local/bin/attach-node").exists());
    f.run(&["uninstall", "--root", &r], &[], None).expect(0);
    // usr/local/bin itself was made by this test, not by attach-node
    std::fs::remove_dir_all(root.path().join("usr")).unwrap();
    assert_eq!(
        snapshot(root.path(), false),
        before,
        "uninstall left something behind"
    );
}

#[test]
fn artifacts_are_checked_installed_and_removed() {
    let crictl = b"#!/bin/sh\necho crictl\n".to_vec();
    let kubelet = vec![0x7f, b'E', b'L', b'F', 0, 1, 2, 3];
    let f = lab(LabConfig::default()
        .artifact("crictl", crictl.clone())
        .artifact("kubelet", kubelet.clone()));
    let root = populated_root();
    let before = snapshot(root.path(), false);
    let run = f.join(root.path(), &["--dry-run"], &[]);
    run.expect(0);
    assert!(
        run.stdout
            .contains("create    /usr/local/bin/kubelet (0755)"),
        "{}",
        run.stdout
    );
    f.join(root.path(), &[], &[])
        .expect(0)
        .stderr_has("sha256 verified");
    let r = root.path();
    assert_eq!(
        std::fs::read(r.join("usr/local/bin/crictl")).unwrap(),
        crictl
    );
    assert_eq!(
        std::fs::read(r.join("usr/local/bin/kubelet")).unwrap(),
        kubelet
    );
    assert_eq!(
        std::fs::metadata(r.join("usr/local/bin/kubelet"))
            .unwrap()
            .mode()
            & 0o777,
        0o755
    );
    // a kubelet that came as an artifact gets the package's unit, and the
    // drop-in runs it from where it was installed
    let unit = std::fs::read_to_string(r.join("etc/systemd/system/kubelet.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/kubelet\n"),
        "{unit}"
    );
    let dropin =
        std::fs::read_to_string(r.join("etc/systemd/system/kubelet.service.d/10-kubeadm.conf"))
            .unwrap();
    assert!(
        dropin.contains("ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS"),
        "{dropin}"
    );
    f.reset(r, &[]).expect(0);
    assert_eq!(
        snapshot(r, true),
        before,
        "reset removes the artifacts and their directory"
    );
}

#[test]
fn a_corrupted_artifact_is_exit_4_and_nothing_is_written() {
    let f = lab(LabConfig::default()
        .artifact("crictl", b"x".to_vec())
        .fault(attach_node_lab::Fault::ArtifactCorrupted));
    let root = populated_root();
    let before = snapshot(root.path(), false);
    f.join(root.path(), &[], &[])
        .expect(4)
        .stderr_has("sha256")
        .stderr_has("refusing to install");
    assert_eq!(snapshot(root.path(), false), before);
}

/// `attach-node status | head -0`: the reader is gone before anything is
/// written. The command did its work, so that is success, not exit 1
/// ("internal error"), and nothing is said about it.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let root = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(support::bin())
        .args(["status", "--root"])
        .arg(root.path())
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn links_at_attach_nodes_own_paths_are_refused_and_never_followed() {
    let f = lab(LabConfig::default());
    let outside = tempfile::tempdir().unwrap();
    let out_dir = outside.path().join("dir");
    // (the link in the root, whether it points at a directory)
    for (rel, to_dir) in [
        (STATE_DIR.to_owned(), true),
        (format!("{STATE_DIR}/backups"), true),
        (format!("{STATE_DIR}/lock"), false),
        (format!("{STATE_DIR}/journal.json"), false),
    ] {
        let root = populated_root();
        std::fs::create_dir_all(root.path().join(STATE_DIR).parent().unwrap()).unwrap();
        if rel != STATE_DIR {
            std::fs::create_dir_all(root.path().join(STATE_DIR)).unwrap();
        }
        std::fs::create_dir_all(&out_dir).unwrap();
        let target = if to_dir {
            out_dir.clone()
        } else {
            out_dir.join("file")
        };
        std::os::unix::fs::symlink(&target, root.path().join(&rel)).unwrap();
        f.join(root.path(), &[], &[])
            .expect(6)
            .stderr_has(&format!("{rel} is a symbolic link"))
            .stderr_has("move");
        assert_eq!(
            std::fs::read_dir(&out_dir).unwrap().count(),
            0,
            "{rel}: nothing written outside the root"
        );
        assert!(
            std::fs::symlink_metadata(root.path().join(&rel))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{rel}: the link is left alone"
        );
        if rel == STATE_DIR {
            let r = root.path().display().to_string();
            f.run(&["status", "--root", &r], &[], None)
                .expect(6)
                .stderr_has("is a symbolic link");
        }
    }
}

#[test]
fn the_roots_hostname_is_read_inside_the_root() {
    let f = lab(LabConfig::default());
    let outside = tempfile::tempdir().unwrap();
    let host_file = outside.path().join("hostname");
    std::fs::write(&host_file, "Not_A_Name-from-the-build-host\n").unwrap();
    let root = populated_root();
    let link = root.path().join("etc/hostname");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&host_file, &link).unwrap();
    // the link leads to a path the root does not have: no name, and no word
    // of the build host's file
    let run = f.join(root.path(), &[], &[]);
    run.expect(2).stderr_has("--node-name");
    assert!(!run.stderr.contains("build-host"), "{}", run.stderr);
    // an image's absolute link resolves inside the root
    std::fs::write(root.path().join("etc/hostname.real"), "Image-1\n").unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/etc/hostname.real", &link).unwrap();
    let run = f.join(root.path(), &["--dry-run"], &[]);
    run.expect(0);
    assert!(run.stdout.contains("image-1"), "{}", run.stdout);
}

#[test]
fn dry_run_never_shows_a_file_others_cannot_read() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let config = root.path().join("etc/containerd/config.toml");
    let site = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.example\".auth]\npassword = \"hunter2-registry\"\n";
    std::fs::write(&config, site).unwrap();
    for mode in [0o600, 0o640] {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();
        let run = f.join(root.path(), &["--dry-run"], &[]);
        run.expect(0);
        assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
        assert!(
            run.stdout.contains(&format!(
                "contents not shown: the current file ({mode:04o}) is not readable by others"
            )),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains(&format!(
                "current sha256:{} ({} bytes)",
                attach_node::host::fsops::sha256_hex(site.as_bytes()),
                site.len()
            )),
            "{}",
            run.stdout
        );
        let run = f.join(root.path(), &["--dry-run", "--output", "json"], &[]);
        run.expect(0);
        assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
        let v = run.json();
        let file = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["path"] == "/etc/containerd/config.toml")
            .unwrap()
            .clone();
        assert_eq!(file["change"], "update");
        assert_eq!(file["diff"], serde_json::Value::Null);
        assert_eq!(file["private"]["currentMode"], format!("{mode:04o}"));
        assert_eq!(file["private"]["currentSize"], site.len());
    }
}

#[test]
fn temp_copies_left_by_a_stopped_run_are_removed_by_reset_and_by_a_rerun() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let before = snapshot(root.path(), true);
    f.join(root.path(), &[], &[]).expect(0);
    // what a run killed inside an atomic write leaves: a hidden copy
    // beside the file (the bootstrap kubeconfig's holds the token), the
    // journal and a backup
    let ours = [
        "etc/kubernetes/.bootstrap-kubelet.conf.attach-node-999991.tmp",
        "var/lib/kubelet/.config.yaml.attach-node-999992.tmp",
        "var/lib/attach-node/.journal.json.attach-node-999993.tmp",
        "var/lib/attach-node/backups/.001-x.attach-node-999994.tmp",
    ];
    // and files that are not ours, which stay
    let theirs = [
        "etc/kubernetes/.bootstrap-kubelet.conf.swp",
        "etc/kubernetes/.admin.conf.attach-node-999995.tmp",
        "etc/containerd/.notes.attach-node-x.tmp",
    ];
    let plant = |names: &[&str]| {
        for n in names {
            let p = root.path().join(n);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "a copy with the token in it").unwrap();
        }
    };
    plant(&ours);
    plant(&theirs);
    let gone = |names: &[&str], when: &str| {
        for n in names {
            assert!(
                std::fs::symlink_metadata(root.path().join(n)).is_err(),
                "{when}: {n} is still there"
            );
        }
    };
    let kept = |names: &[&str]| {
        for n in names {
            assert!(root.path().join(n).exists(), "{n}, not ours, was removed");
        }
    };
    f.join(root.path(), &[], &[])
        .expect(0)
        .stderr_has("a temporary copy left by a run that stopped");
    gone(&ours, "after a re-run of join");
    kept(&theirs);

    plant(&ours[..2]);
    f.reset(root.path(), &[]).expect(0);
    gone(&ours, "after reset");
    kept(&theirs);
    for n in theirs {
        std::fs::remove_file(root.path().join(n)).unwrap();
    }
    // kept by reset for holding files not its own
    std::fs::remove_dir(root.path().join("etc/kubernetes")).unwrap();
    assert_eq!(snapshot(root.path(), true), before);
}

#[test]
fn kubelet_settings_unlike_kubeadms_are_warned_at_join_and_in_the_dry_run() {
    use base64::Engine;
    let f = lab(LabConfig::default());
    let root = populated_root();
    let node_config = base64::engine::general_purpose::STANDARD
        .encode(r#"{"kubelet_config":{"readOnlyPort":10255}}"#);
    let said = "the kubelet config sets readOnlyPort to 10255; kubeadm leaves";
    let run = f.join(
        root.path(),
        &["--dry-run", "--node-config", &node_config],
        &[],
    );
    run.expect(0).stderr_has(said);
    assert!(run.stdout.contains("\nwarnings ("), "{}", run.stdout);
    assert!(run.stdout.contains(said), "{}", run.stdout);
    let run = f.join(
        root.path(),
        &[
            "--dry-run",
            "--node-config",
            &node_config,
            "--output",
            "json",
        ],
        &[],
    );
    run.expect(0);
    let warnings = run.json()["warnings"].as_array().unwrap().clone();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with(said)),
        "{warnings:?}"
    );
    f.join(root.path(), &["--node-config", &node_config], &[])
        .expect(0)
        .stderr_has(said);
    // kubeadm's own choices: nothing to say
    let run = f.join(root.path(), &["--dry-run"], &[]);
    run.expect(0);
    assert!(!run.stdout.contains("\nwarnings ("), "{}", run.stdout);
}

/// A disk image of a node joined live carries journal entries for the
/// units and sysctls of the machine it ran on. `status --root` and `reset
/// --root` must leave the machine *they* run on alone: nothing is stopped,
/// disabled, restarted or read from its /proc/sys; those steps are listed
/// as not run, and the root's own files are still restored exactly.
#[test]
fn under_root_the_running_machines_units_and_sysctls_are_listed_not_touched() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    let before = snapshot(root.path(), false);
    f.join(root.path(), &[], &[]).expect(0);

    // As a live join records them (src/apply.rs): a unit it started and a
    // sysctl it set. The sysctl's recorded values match neither what this
    // machine has nor each other, so any read or write of this machine's
    // /proc/sys would show (and "changed since the join" would fail reset).
    let journal_path = root.path().join(STATE_DIR).join("journal.json");
    let mut journal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    let entries = journal["entries"].as_array_mut().unwrap();
    entries.push(serde_json::json!({
        "kind": "sysctl", "path": "net.ipv4.ip_forward",
        "prior": {"kind": "value", "value": "7"}, "written": "8", "done": true,
    }));
    entries.push(serde_json::json!({
        "kind": "unit", "path": "kubelet.service",
        "prior": {"kind": "unit", "enabled": "disabled", "active": false}, "done": true,
    }));
    std::fs::write(&journal_path, serde_json::to_vec_pretty(&journal).unwrap()).unwrap();

    let st = f.status(root.path());
    let sysctl = st["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"].as_str().unwrap().contains("net.ipv4.ip_forward"))
        .unwrap();
    assert!(
        sysctl.get("inPlace").is_none(),
        "read this machine's /proc/sys: {st:#}"
    );

    // (No systemd runs here: a `systemctl stop` would fail, and so would
    // this reset.)
    let run = f.reset(root.path(), &[]);
    run.expect(0);
    assert!(
        run.stdout
            .contains("set sysctl net.ipv4.ip_forward back to 7: listed, not run (--root"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("put kubelet.service back as it was (disabled, stopped): listed, not run"),
        "{}",
        run.stdout
    );
    assert_eq!(f.status(root.path())["state"], "reset");
    assert_eq!(snapshot(root.path(), true), before);
}

/// A crafted journal (one entry that no join writes: a file of the root's
/// own, "created" by the join) is refused by reset and by status, and the
/// root is left exactly as it was; it used to be removed.
#[test]
fn a_journal_naming_what_no_join_writes_is_refused() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    f.join(root.path(), &[], &[]).expect(0);
    let journal_path = root.path().join(STATE_DIR).join("journal.json");
    let mut journal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    let hostname = std::fs::read(root.path().join("etc/hostname")).unwrap();
    journal["entries"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "kind": "file", "path": "/etc/hostname", "prior": {"kind": "absent"},
            "written": attach_node::host::fsops::sha256_hex(&hostname), "done": true,
        }));
    std::fs::write(&journal_path, serde_json::to_vec_pretty(&journal).unwrap()).unwrap();
    let before = snapshot(root.path(), false);

    f.reset(root.path(), &[])
        .expect(6)
        .stderr_has("is damaged: entry")
        .stderr_has("(file \"/etc/hostname\") is not something a join writes");
    let r = root.path().display().to_string();
    f.run(&["status", "--root", &r], &[], None).expect(6);
    assert_eq!(snapshot(root.path(), false), before);
}

/// The kubelet leaves its own files in /var/lib/kubelet (a directory the
/// join created). Reset removes everything of the join's, keeps those and
/// the directory holding them, says so, and ends `reset`: it used to end
/// `failed`, as though something of the join's were still in place.
#[test]
fn files_of_others_in_a_directory_the_join_made_do_not_fail_the_reset() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    f.join(root.path(), &[], &[]).expect(0);
    let theirs = root.path().join("var/lib/kubelet/cpu_manager_state");
    std::fs::write(&theirs, "{}").unwrap();
    let run = f.reset(root.path(), &[]);
    run.expect(0);
    assert!(
        run.stdout.contains("left /var/lib/kubelet: not empty"),
        "{}",
        run.stdout
    );
    assert_eq!(f.status(root.path())["state"], "reset");
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "{}");
    assert!(!root.path().join("var/lib/kubelet/config.yaml").exists());
}

/// uninstall removes the state directory, lock included: it must hold the
/// lock while it does, so a run in progress makes it exit 8 with nothing
/// removed (it used to delete the records from under that run).
#[test]
fn uninstall_removes_nothing_while_another_run_holds_the_lock() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    f.join(root.path(), &[], &[]).expect(0);
    f.reset(root.path(), &[]).expect(0);
    let before = snapshot(root.path(), false);
    let lock = std::fs::File::open(root.path().join(STATE_DIR).join("lock")).unwrap();
    lock.lock().unwrap();
    let r = root.path().display().to_string();
    f.run(&["uninstall", "--root", &r], &[], None)
        .expect(8)
        .stderr_has("another attach-node run");
    assert_eq!(snapshot(root.path(), false), before);
    drop(lock);
    f.run(&["uninstall", "--root", &r], &[], None).expect(0);
    assert!(!root.path().join(STATE_DIR).exists());
}

/// Under --root the plan's actions (services, sysctls, modules) are
/// recorded as listed, not run, and status marks them so.
#[test]
fn status_marks_the_actions_of_a_root_join_as_listed_only() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    f.join(root.path(), &[], &[]).expect(0);
    let st = f.status(root.path());
    let actions: Vec<&serde_json::Value> = st["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"].as_str().unwrap().contains("listed, not run"))
        .collect();
    assert_eq!(actions.len(), 6, "{st:#}");
    assert!(actions.iter().all(|s| s["listedOnly"] == true), "{st:#}");
    let files = st["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get("inPlace").is_some());
    assert!(files.clone().count() > 0);
    assert!(
        files.into_iter().all(|s| s.get("listedOnly").is_none()),
        "{st:#}"
    );
}

fn control_plane_requests(f: &Fixture) -> usize {
    f.lab
        .requests()
        .iter()
        .filter(|r| r.server == attach_node_lab::Server::ControlPlane)
        .count()
}

/// A join that crashed half-way is finished by running it again with the
/// same single-use openapi token: the ClusterInfo traded for it is kept
/// (0600) from the moment there is a journal, and the re-run resumes with
/// it instead of trading the spent token (which used to be exit 3, 410).
/// Reset removes what was kept.
#[test]
fn a_crashed_join_resumes_without_trading_its_single_use_token_again() {
    const ONCE: &str = "openapi-token-single-use";
    let f = lab(LabConfig::default());
    let root = populated_root();
    let before = snapshot(root.path(), false);
    f.join_with_token(
        root.path(),
        ONCE,
        &[],
        &[("ATTACH_NODE_TEST_CRASH_AT", "3")],
    );
    assert_eq!(f.status(root.path())["state"], "joining");
    let kept = root.path().join(STATE_DIR).join("cluster-info.json");
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );
    f.join_with_token(root.path(), ONCE, &[], &[])
        .expect(0)
        .stderr_has("resuming with the ClusterInfo kept from the earlier join");
    assert_eq!(f.status(root.path())["state"], "joined");
    assert_eq!(control_plane_requests(&f), 1, "traded once, then resumed");
    f.reset(root.path(), &[]).expect(0);
    assert!(!kept.exists());
    assert_eq!(snapshot(root.path(), true), before);
}

/// When the cluster no longer accepts the kept bootstrap token (here: one
/// no longer signed in cluster-info, as after the token cleaner), the
/// openapi token is traded again; a spent single-use one then gives a
/// message that says a new openapi token is needed and how to pass it, and
/// a new one finishes the join. (Each try waits out the missing signature,
/// about 20 s.)
#[test]
fn a_kept_token_the_cluster_refuses_asks_for_a_new_openapi_token() {
    const ONCE: &str = "openapi-token-single-use";
    let f = lab(LabConfig::default());
    let root = populated_root();
    f.join_with_token(root.path(), ONCE, &[], &[("ATTACH_NODE_TEST_FAIL_AT", "3")])
        .expect(6);
    let kept = root.path().join(STATE_DIR).join("cluster-info.json");
    let mut ci: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    ci["bootstrapToken"] = "zzzzzz.0123456789abcdef".into();
    std::fs::write(&kept, serde_json::to_vec(&ci).unwrap()).unwrap();

    f.join_with_token(root.path(), ONCE, &[], &[])
        .expect(3)
        .stderr_has("the bootstrap token kept from the earlier join is no longer accepted")
        .stderr_has("410")
        .stderr_has("a new openapi token is needed")
        .stderr_has("--openapi-token-file");
    assert_eq!(f.status(root.path())["state"], "failed");
    f.join_with_token(root.path(), "openapi-token", &[], &[])
        .expect(0);
    assert_eq!(f.status(root.path())["state"], "joined");
    let ci: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert_eq!(
        ci["bootstrapToken"],
        f.lab.bootstrap_token(),
        "the new answer is kept"
    );
}

/// Without a journal, reset never touches a control plane: its CA key,
/// static pods and admin kubeconfig stay, with --force too (exit 9).
#[test]
fn reset_without_a_journal_refuses_on_a_control_plane_node() {
    let f = lab(LabConfig::default());
    let root = populated_root();
    for rel in [
        "etc/kubernetes/pki/ca.key",
        "etc/kubernetes/manifests/kube-apiserver.yaml",
        "etc/kubernetes/admin.conf",
        "var/lib/kubelet/config.yaml",
    ] {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }
    let before = snapshot(root.path(), false);
    for extra in [&[][..], &["--force"][..]] {
        f.reset(root.path(), extra)
            .expect(9)
            .stderr_has("this is a control-plane node")
            .stderr_has("kubeadm reset");
        assert_eq!(snapshot(root.path(), false), before);
    }
}

/// A volume mounted under /var/lib/kubelet/pods is another file system:
/// reset without a journal removes the kubelet's files around it and
/// nothing on it (it used to delete the volume's data). Under --root it
/// unmounts nothing of the running machine's either. The mount lives in a
/// private mount namespace that ends with the test.
#[test]
fn reset_never_deletes_data_on_a_mounted_volume() {
    if !nix_like_root() {
        eprintln!("SKIP reset_never_deletes_data_on_a_mounted_volume: needs root and unshare");
        return;
    }
    let root = populated_root();
    let volume = root
        .path()
        .join("var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/data");
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::write(root.path().join("var/lib/kubelet/config.yaml"), "x").unwrap();
    let script = format!(
        "set -e; mount -t tmpfs e2e-volume '{v}'; echo precious > '{v}/data.txt'; \
         '{bin}' reset --force --root '{r}' || echo \"reset exit $?\"; cat '{v}/data.txt'",
        v = volume.display(),
        bin = support::bin(),
        r = root.path().display(),
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("reset exit"), "{stdout}\n{stderr}");
    assert!(
        stdout.ends_with("precious\n"),
        "the volume's data: {stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("another file system is mounted there"),
        "{stdout}"
    );
    assert!(!root.path().join("var/lib/kubelet/config.yaml").exists());
}

fn nix_like_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    }) && std::process::Command::new("unshare")
        .arg("--help")
        .output()
        .is_ok()
}
