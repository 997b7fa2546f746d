//! The join's Plan as golden files (tests/snapshots/), checked against
//! kubeadm's own files in tests/vectors/kubeadm-join/ and, where installed,
//! against the real tools that read them (kubectl, containerd).
//!
//! The snapshots are the spec: a change to one is a change to what every
//! joined node gets, and is reviewed as such.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use attach_node::clusterinfo::{RuntimeSpec, Taint, TaintEffect};
use attach_node::labels::{AUTOSCALER_LABEL, merge_labels};
use attach_node::plan::render::{self, merge_kubelet_config};
use attach_node::plan::{Action, NodeInputs, Plan, paths};
use attach_node::secret::BootstrapToken;
use attach_node::{Class, Error};
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// An obviously fake token (kubeadm's documentation example).
const FAKE_TOKEN: &str = "abcdef.0123456789abcdef";
const SERVER: &str = "https://192.0.2.10:6443";

fn vector(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/kubeadm-join")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The CA inside kubeadm's example bootstrap kubeconfig, so the rendered
/// file can be compared with that one byte for byte.
fn vector_ca_pem() -> Vec<u8> {
    let conf: Value = serde_saphyr::from_str(&vector("bootstrap-kubelet.conf")).unwrap();
    let data = conf["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap()
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn minimal() -> NodeInputs {
    NodeInputs {
        node_name: "worker-1".into(),
        hostname: "worker-1".into(),
        server: SERVER.into(),
        ca_pem: vector_ca_pem(),
        token: BootstrapToken::parse(FAKE_TOKEN).unwrap(),
        cluster_kubelet_config: None,
        kubelet_overrides: vec![],
        labels: Default::default(),
        taints: vec![],
        provider_id: None,
        runtime: RuntimeSpec::default(),
        systemd_resolved: false,
        artifacts: Vec::new(),
    }
}

fn full() -> NodeInputs {
    // An autoscaler node (--ess), as join layers its labels.
    let (key, value) = AUTOSCALER_LABEL;
    let labels = merge_labels(&[
        ("autoscaler", vec![(key.into(), value.into())]),
        (
            "test",
            vec![
                (
                    "alibabacloud.com/nodepool-id".into(),
                    "np-0123456789".into(),
                ),
                ("example.com/pool".into(), "gpu".into()),
                (
                    "node.kubernetes.io/instance-type".into(),
                    "ecs.g7.large".into(),
                ),
            ],
        ),
    ])
    .unwrap();
    NodeInputs {
        node_name: "cn-hangzhou.10.0.0.7".into(),
        hostname: "iz-worker-7".into(),
        cluster_kubelet_config: Some(vector("kubelet-config.configmap-data.dryrun-fixture.yaml")),
        kubelet_overrides: vec![
            (
                "ClusterInfo".into(),
                object(json!({
                    "clusterDNS": ["10.96.0.10"],
                    "clusterDomain": "cluster.local",
                    "maxPods": 200,
                    "evictionHard": {"memory.available": "200Mi", "nodefs.available": "10%"},
                })),
            ),
            (
                "flags".into(),
                object(json!({
                    "clusterDNS": ["169.254.20.10"],
                    "evictionHard": {"memory.available": "500Mi"},
                })),
            ),
        ],
        labels,
        taints: vec![
            Taint {
                key: "dedicated".into(),
                value: Some("gpu".into()),
                effect: TaintEffect::NoSchedule,
            },
            Taint {
                key: "example.com/spot".into(),
                value: None,
                effect: TaintEffect::PreferNoSchedule,
            },
        ],
        provider_id: Some("cn-hangzhou.i-abc123".into()),
        runtime: RuntimeSpec {
            sandbox_image: Some("registry-vpc.cn-hangzhou.aliyuncs.com/acs/pause:3.10".into()),
            registry_mirrors: BTreeMap::from([
                (
                    "docker.io".into(),
                    vec![
                        "https://mirror.example.com".into(),
                        "https://docker-mirror.example.net/v2".into(),
                    ],
                ),
                (
                    "registry.example.com:5000".into(),
                    vec!["http://10.0.0.5:5000".into()],
                ),
            ]),
        },
        systemd_resolved: true,
        ..minimal()
    }
}

fn text(plan: &Plan, path: &str) -> String {
    let f = plan
        .file(path)
        .unwrap_or_else(|| panic!("the plan has no {path}"));
    String::from_utf8(f.content.to_vec()).unwrap()
}

/// Files, modes, dirs and actions: the Plan's shape without the contents.
fn outline(plan: &Plan) -> String {
    let files: Vec<Value> = plan
        .files
        .iter()
        .map(|f| {
            json!({"path": f.path, "mode": format!("{:o}", f.mode),
                   "sensitive": f.sensitive, "purpose": f.purpose})
        })
        .collect();
    let dirs: Vec<String> = plan
        .dirs
        .iter()
        .map(|(d, m)| format!("{m:o} {d}"))
        .collect();
    serde_json::to_string_pretty(&json!({
        "files": files,
        "dirs": dirs,
        "actions": plan.actions,
    }))
    .unwrap()
}

/// A name for a file's snapshot: `config.yaml`, `certs.d-docker.io-hosts.toml`
/// (no `:`, which some checkouts cannot hold in a file name).
fn snapshot_name(path: &str) -> String {
    match path.strip_prefix(&format!("{}/", paths::CONTAINERD_CERTS_D)) {
        Some(rest) => format!("certs.d-{}", rest.replace(['/', ':'], "-")),
        None => path.rsplit('/').next().unwrap().to_owned(),
    }
}

fn snapshot_all(case: &str, plan: &Plan) {
    insta::assert_snapshot!(format!("{case}__outline"), outline(plan));
    for f in &plan.files {
        let body = String::from_utf8(f.content.to_vec()).unwrap();
        insta::assert_snapshot!(format!("{case}__{}", snapshot_name(&f.path)), body);
    }
}

#[test]
fn golden_minimal() {
    snapshot_all("minimal", &render::render(&minimal()).unwrap());
}

#[test]
fn golden_full() {
    let (plan, warnings) = render::render_with_warnings(&full()).unwrap();
    snapshot_all("full", &plan);
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn rendering_is_deterministic() {
    for inputs in [minimal(), full()] {
        let a = render::render(&inputs).unwrap();
        let b = render::render(&inputs).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn files_come_in_the_documented_order_with_their_modes() {
    let plan = render::render(&full()).unwrap();
    let got: Vec<(&str, u32, bool)> = plan
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.mode, f.sensitive))
        .collect();
    assert_eq!(
        got,
        [
            (paths::CA, 0o644, false),
            (paths::BOOTSTRAP_KUBECONFIG, 0o600, true),
            (paths::KUBELET_CONFIG, 0o644, false),
            (paths::KUBELET_FLAGS, 0o644, false),
            (paths::KUBELET_DROPIN, 0o644, false),
            (paths::CONTAINERD_CONFIG, 0o644, false),
            ("/etc/containerd/certs.d/docker.io/hosts.toml", 0o644, false),
            (
                "/etc/containerd/certs.d/registry.example.com:5000/hosts.toml",
                0o644,
                false
            ),
            (paths::SYSCTL, 0o644, false),
            (paths::MODULES, 0o644, false),
        ]
    );
}

#[test]
fn only_the_bootstrap_kubeconfig_holds_the_token() {
    let plan = render::render(&full()).unwrap();
    for f in &plan.files {
        let holds = String::from_utf8_lossy(&f.content).contains("0123456789abcdef");
        assert_eq!(holds, f.path == paths::BOOTSTRAP_KUBECONFIG, "{}", f.path);
        assert_eq!(holds, f.sensitive, "{}", f.path);
    }
}

#[test]
fn dirs_list_parents_before_children() {
    for inputs in [minimal(), full()] {
        let plan = render::render(&inputs).unwrap();
        for (i, (dir, _)) in plan.dirs.iter().enumerate() {
            for (later, _) in &plan.dirs[i + 1..] {
                assert!(
                    !dir.starts_with(&format!("{later}/")),
                    "{later} comes after its child {dir}"
                );
            }
        }
        for f in &plan.files {
            let parent = Path::new(&f.path).parent().unwrap().to_str().unwrap();
            assert!(
                plan.dirs.iter().any(|(d, _)| d == parent),
                "no dir entry for {parent}"
            );
        }
        assert_eq!(plan.dirs[0], ("/var/lib/kubelet".into(), 0o700));
    }
}

#[test]
fn actions_restart_containerd_on_any_of_its_files() {
    let plan = render::render(&full()).unwrap();
    assert_eq!(plan.actions.len(), 6);
    assert_eq!(
        plan.actions[0],
        Action::CheckSwap {
            swap_allowed: false
        }
    );
    assert_eq!(
        plan.actions[4],
        Action::RestartIfChanged {
            unit: "containerd.service".into(),
            when_changed: vec![
                paths::CONTAINERD_CONFIG.into(),
                "/etc/containerd/certs.d/docker.io/hosts.toml".into(),
                "/etc/containerd/certs.d/registry.example.com:5000/hosts.toml".into(),
            ],
        }
    );
}

// ---- against kubeadm's files ---------------------------------------------------------

#[test]
fn bootstrap_kubeconfig_is_byte_identical_to_kubeadms() {
    let plan = render::render(&minimal()).unwrap();
    assert_eq!(
        text(&plan, paths::BOOTSTRAP_KUBECONFIG),
        vector("bootstrap-kubelet.conf")
    );
}

#[test]
fn ca_gets_a_trailing_newline_once() {
    let mut inputs = minimal();
    inputs.ca_pem = b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----".to_vec();
    let plan = render::render(&inputs).unwrap();
    assert!(text(&plan, paths::CA).ends_with("-----END CERTIFICATE-----\n"));
    inputs.ca_pem.push(b'\n');
    assert_eq!(
        *render::render(&inputs)
            .unwrap()
            .file(paths::CA)
            .unwrap()
            .content,
        inputs.ca_pem
    );
}

fn significant_lines(unit: &str) -> Vec<&str> {
    unit.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn dropin_is_kubeadms_plus_the_deb_env_file() {
    let plan = render::render(&minimal()).unwrap();
    let ours = text(&plan, paths::KUBELET_DROPIN);
    assert!(ours.starts_with("# Written by attach-node; `attach-node reset` restores"));
    let ours: Vec<&str> = significant_lines(&ours)
        .into_iter()
        .filter(|l| *l != "EnvironmentFile=-/etc/default/kubelet")
        .collect();
    assert_eq!(ours, significant_lines(&vector("10-kubeadm.conf")));
}

#[test]
fn flags_match_kubeadms_form() {
    let plan = render::render(&minimal()).unwrap();
    assert_eq!(
        text(&plan, paths::KUBELET_FLAGS),
        "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock\"\n"
    );
    // kubeadm's worker example, parsed rather than byte-compared: its
    // --node-labels came from kubeletExtraArgs, appended after the sorted
    // ones, and it still had --pod-infra-container-image (see render.rs).
    let mut inputs = minimal();
    inputs.node_name = "worker-1".into();
    inputs.hostname = "host-1".into();
    inputs.labels =
        merge_labels(&[("t", vec![("example.com/pool".into(), "gpu".into())])]).unwrap();
    inputs.taints = vec![Taint {
        key: "dedicated".into(),
        value: Some("gpu".into()),
        effect: TaintEffect::NoSchedule,
    }];
    let ours = flag_set(&text(
        &render::render(&inputs).unwrap(),
        paths::KUBELET_FLAGS,
    ));
    let mut theirs = flag_set(&vector("kubeadm-flags.worker-with-options.env"));
    theirs.retain(|f| !f.starts_with("--pod-infra-container-image="));
    assert_eq!(ours, theirs);
}

fn flag_set(env: &str) -> Vec<String> {
    let value = env
        .strip_prefix("KUBELET_KUBEADM_ARGS=\"")
        .and_then(|v| v.strip_suffix("\"\n"))
        .unwrap_or_else(|| panic!("not a kubeadm flags file: {env:?}"));
    let mut flags: Vec<String> = value.split(' ').map(str::to_owned).collect();
    flags.sort();
    flags
}

#[test]
fn flags_are_sorted_and_never_hold_the_sandbox_image() {
    let flags = text(&render::render(&full()).unwrap(), paths::KUBELET_FLAGS);
    let value = flags
        .strip_prefix("KUBELET_KUBEADM_ARGS=\"")
        .unwrap()
        .strip_suffix("\"\n")
        .unwrap();
    let names: Vec<&str> = value
        .split(' ')
        .map(|f| f.split_once('=').unwrap().0)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(!names.contains(&"--pod-infra-container-image"));
}

#[test]
fn hostname_override_only_when_the_names_differ() {
    let same = text(&render::render(&minimal()).unwrap(), paths::KUBELET_FLAGS);
    assert!(!same.contains("--hostname-override"));
    let differ = text(&render::render(&full()).unwrap(), paths::KUBELET_FLAGS);
    assert!(differ.contains("--hostname-override=cn-hangzhou.10.0.0.7 "));
}

#[test]
fn flag_values_with_quotes_are_escaped_and_with_spaces_refused() {
    let mut inputs = minimal();
    inputs.provider_id = Some(r#"x"y\z"#.into());
    let flags = text(&render::render(&inputs).unwrap(), paths::KUBELET_FLAGS);
    assert!(flags.contains(r#" --provider-id=x\"y\\z""#), "{flags}");
    for bad in ["a b", "a\nb", "a\u{7}b", ""] {
        inputs.provider_id = Some(bad.into());
        let e = render::render(&inputs).unwrap_err();
        assert_eq!(e.class(), Class::Usage, "{bad:?}");
        assert!(e.message().contains("--provider-id"), "{e}");
    }
}

#[test]
fn kubelet_config_from_kubeadms_fixture_is_unchanged() {
    // kubeadm's own output, run through our defaults with systemd-resolved:
    // nothing to add and nothing to change.
    let mut inputs = minimal();
    inputs.systemd_resolved = true;
    inputs.cluster_kubelet_config =
        Some(vector("kubelet-config.configmap-data.dryrun-fixture.yaml"));
    let (plan, warnings) = render::render_with_warnings(&inputs).unwrap();
    let ours: Value = serde_saphyr::from_str(&text(&plan, paths::KUBELET_CONFIG)).unwrap();
    let theirs: Value =
        serde_saphyr::from_str(&vector("kubelet-config.configmap-data.dryrun-fixture.yaml"))
            .unwrap();
    assert_eq!(ours, theirs);
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn kubelet_config_keys_are_sorted_whatever_the_input_order() {
    let mut inputs = minimal();
    inputs.cluster_kubelet_config = Some(
        "kind: KubeletConfiguration\nzeta: 1\napiVersion: kubelet.config.k8s.io/v1beta1\nalpha:\n  z: 1\n  a: 2\n"
            .into(),
    );
    let yaml = text(&render::render(&inputs).unwrap(), paths::KUBELET_CONFIG);
    let top: Vec<&str> = yaml
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    let mut sorted = top.clone();
    sorted.sort();
    assert_eq!(top, sorted);
    assert!(yaml.starts_with("alpha:\n  a: 2\n  z: 1\n"), "{yaml}");
}

#[test]
fn kubelet_config_round_trips_to_the_merged_value() {
    let inputs = full();
    let yaml = text(&render::render(&inputs).unwrap(), paths::KUBELET_CONFIG);
    let back: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(back["clusterDNS"], json!(["169.254.20.10"]));
    assert_eq!(
        back["evictionHard"],
        json!({"memory.available": "500Mi", "nodefs.available": "10%"})
    );
    assert_eq!(back["maxPods"], 200);
    assert_eq!(back["resolvConf"], "/run/systemd/resolve/resolv.conf");
    assert_eq!(back["memorySwap"], json!({}));
}

#[test]
fn a_broken_cluster_kubelet_config_is_an_error_naming_it() {
    for bad in ["a: [", "- 1\n- 2\n", "kind: Pod\n", "42"] {
        let mut inputs = minimal();
        inputs.cluster_kubelet_config = Some(bad.into());
        let e = render::render(&inputs).unwrap_err();
        assert_eq!(e.class(), Class::Usage, "{bad:?}");
        assert!(e.message().contains("kube-system/kubelet-config"), "{e}");
    }
}

#[test]
fn an_override_cannot_change_the_kind() {
    let mut inputs = minimal();
    inputs.kubelet_overrides = vec![(
        "--node-config".into(),
        object(json!({"kind": "KubeProxyConfiguration"})),
    )];
    let e: Error = render::render(&inputs).unwrap_err();
    assert_eq!(e.class(), Class::Usage);
    assert!(e.message().contains("--node-config"), "{e}");
}

#[test]
fn overrides_that_differ_from_kubeadm_are_kept_and_warned_about() {
    let mut inputs = minimal();
    inputs.kubelet_overrides = vec![(
        "flags".into(),
        object(json!({"cgroupDriver": "cgroupfs", "readOnlyPort": 10255})),
    )];
    let (plan, warnings) = render::render_with_warnings(&inputs).unwrap();
    let back: Value = serde_saphyr::from_str(&text(&plan, paths::KUBELET_CONFIG)).unwrap();
    assert_eq!(back["cgroupDriver"], "cgroupfs");
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
}

// ---- containerd ------------------------------------------------------------------------

#[test]
fn containerd_files_parse_as_toml_with_the_expected_shape() {
    let plan = render::render(&full()).unwrap();
    let config: toml::Table = text(&plan, paths::CONTAINERD_CONFIG).parse().unwrap();
    let cri = &config["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(config["version"].as_integer(), Some(2));
    assert_eq!(
        cri["sandbox_image"].as_str(),
        Some("registry-vpc.cn-hangzhou.aliyuncs.com/acs/pause:3.10")
    );
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["runtime_type"].as_str(),
        Some("io.containerd.runc.v2")
    );
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
        Some(true)
    );
    assert_eq!(
        cri["registry"]["config_path"].as_str(),
        Some("/etc/containerd/certs.d")
    );

    let hub: toml::Table = text(&plan, "/etc/containerd/certs.d/docker.io/hosts.toml")
        .parse()
        .unwrap();
    assert_eq!(hub["server"].as_str(), Some("https://registry-1.docker.io"));
    assert_eq!(
        hub["host"]["https://mirror.example.com"]["capabilities"],
        toml::Value::Array(vec!["pull".into(), "resolve".into()])
    );
    // Mirrors keep the given order, which is the order containerd tries.
    let raw = text(&plan, "/etc/containerd/certs.d/docker.io/hosts.toml");
    assert!(
        raw.find("mirror.example.com").unwrap() < raw.find("docker-mirror.example.net").unwrap()
    );

    let minimal_config: toml::Table = text(
        &render::render(&minimal()).unwrap(),
        paths::CONTAINERD_CONFIG,
    )
    .parse()
    .unwrap();
    assert!(
        minimal_config["plugins"]["io.containerd.grpc.v1.cri"]
            .get("sandbox_image")
            .is_none()
    );
}

#[test]
fn default_registry_has_no_server_and_repeated_mirrors_collapse() {
    let mut inputs = minimal();
    inputs.runtime.registry_mirrors = BTreeMap::from([(
        "_default".into(),
        vec!["https://m.example".into(), "https://m.example".into()],
    )]);
    let plan = render::render(&inputs).unwrap();
    let hosts: toml::Table = text(&plan, "/etc/containerd/certs.d/_default/hosts.toml")
        .parse()
        .unwrap();
    assert!(hosts.get("server").is_none());
    assert_eq!(hosts["host"].as_table().unwrap().len(), 1);
}

#[test]
fn unsafe_registry_names_are_refused() {
    for bad in ["", "..", "../../etc", "a/b", "."] {
        let mut inputs = minimal();
        inputs.runtime.registry_mirrors =
            BTreeMap::from([(bad.to_owned(), vec!["https://m.example".to_owned()])]);
        let e = render::render(&inputs).unwrap_err();
        assert_eq!(e.class(), Class::Usage, "{bad:?}");
    }
}

// ---- the real tools, where installed ----------------------------------------------------

fn installed(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    })
}

#[test]
fn kubectl_reads_the_bootstrap_kubeconfig() {
    let Some(kubectl) = installed("kubectl") else {
        eprintln!("skipped: kubectl is not installed, so the kubeconfig is not checked by it");
        return;
    };
    let plan = render::render(&full()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bootstrap-kubelet.conf");
    std::fs::write(
        &file,
        &plan.file(paths::BOOTSTRAP_KUBECONFIG).unwrap().content,
    )
    .unwrap();
    let out = Command::new(kubectl)
        .args(["config", "view", "--minify", "--raw", "--kubeconfig"])
        .arg(&file)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: Value = serde_saphyr::from_slice(&out.stdout).unwrap();
    assert_eq!(
        view["current-context"],
        "tls-bootstrap-token-user@kubernetes"
    );
    assert_eq!(view["clusters"][0]["cluster"]["server"], SERVER);
    assert_eq!(view["users"][0]["user"]["token"], FAKE_TOKEN);
    let ca = view["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(ca)
            .unwrap(),
        vector_ca_pem()
    );
}

#[test]
fn containerd_reads_its_config() {
    let Some(containerd) = installed("containerd") else {
        eprintln!(
            "skipped: containerd is not installed here; the e2e suite checks the config with it"
        );
        return;
    };
    let plan = render::render(&full()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, &plan.file(paths::CONTAINERD_CONFIG).unwrap().content).unwrap();
    let out = Command::new(containerd)
        .arg("--config")
        .arg(&file)
        .args(["config", "dump"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "containerd rejected the config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(dump.contains("SystemdCgroup = true"), "{dump}");
}

// ---- properties ---------------------------------------------------------------------------

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9./:-]{0,8}".prop_map(Value::String),
        prop_oneof![
            Just("apiVersion".to_owned()),
            Just("kind".to_owned()),
            Just("KubeletConfiguration".to_owned()),
            Just("kubelet.config.k8s.io/v1beta1".to_owned()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("apiVersion".to_owned()),
        Just("kind".to_owned()),
        Just("clusterDNS".to_owned()),
        Just("evictionHard".to_owned()),
        "[a-z]{1,3}",
    ]
}

fn layer() -> impl Strategy<Value = (String, Map<String, Value>)> {
    prop::collection::btree_map(key(), json_value(), 0..5)
        .prop_map(|m| ("layer".to_owned(), m.into_iter().collect()))
}

proptest! {
    #[test]
    fn merge_never_panics_and_keeps_the_kind(
        base in json_value(),
        layers in prop::collection::vec(layer(), 0..4),
    ) {
        if let Ok(merged) = merge_kubelet_config(base, &layers) {
            prop_assert_eq!(&merged["kind"], "KubeletConfiguration");
            prop_assert_eq!(&merged["apiVersion"], "kubelet.config.k8s.io/v1beta1");
        }
    }

    #[test]
    fn a_layer_repeated_changes_nothing_more(
        layer in layer(),
    ) {
        let base = json!({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"});
        if let Ok(once) = merge_kubelet_config(base.clone(), std::slice::from_ref(&layer)) {
            let twice = merge_kubelet_config(base, &[layer.clone(), layer]).unwrap();
            prop_assert_eq!(once, twice);
        }
    }
}

/// The journal refuses entries no join could write (journal::Journal::parse).
/// Whatever a plan writes or creates must therefore pass that check: the
/// fullest plan (mirrors, artifacts, a kubelet from an artifact) is
/// journaled here entry by entry, with every missing parent directory.
#[test]
fn the_journal_accepts_everything_a_plan_writes() {
    let mut inputs = full();
    inputs.artifacts = vec![
        ("kubelet".into(), b"an elf".to_vec()),
        ("crictl".into(), b"another".to_vec()),
    ];
    let plan = render::render(&inputs).unwrap();
    let mut entries = Vec::new();
    let mut dirs: Vec<String> = plan.dirs.iter().map(|(d, _)| d.clone()).collect();
    for d in dirs.clone() {
        let mut p = Path::new(&d).parent();
        while let Some(parent) = p.filter(|p| *p != Path::new("/")) {
            dirs.push(parent.display().to_string());
            p = parent.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        entries.push(json!({"kind": "dir", "path": d, "prior": {"kind": "absent"}, "done": true}));
    }
    for (i, f) in plan.files.iter().enumerate() {
        entries.push(json!({"kind": "file", "path": f.path, "done": true,
            "prior": {"kind": "file", "sha256": "00".repeat(32), "mode": 0o644, "uid": 0, "gid": 0,
                // named as Store::back_up names them
                "backup": format!("{i:03}-{}", f.path.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-', "_"))}}));
    }
    let journal = json!({"version": 1, "state": "joined", "cluster": null, "server": SERVER,
        "nodeName": "worker-1", "started": "2026-01-01T00:00:00Z", "entries": entries});
    attach_node::journal::Journal::parse(&serde_json::to_vec(&journal).unwrap())
        .unwrap_or_else(|e| panic!("{e}"));
}

/// What the live run decides is decided here, in the plan: whether swap may
/// stay on (the rendered configuration's failSwapOn), which paths the
/// kubelet makes for itself, and which of the plan's files restart a
/// running kubelet when they change.
#[test]
fn the_plan_carries_the_kubelets_decisions() {
    let mut inputs = minimal();
    let plan = render::render(&inputs).unwrap();
    assert_eq!(
        plan.actions[0],
        Action::CheckSwap {
            swap_allowed: false
        }
    );
    let Action::EnableAndStart {
        kubelet_owned,
        restart_when_changed,
        ..
    } = &plan.actions[5]
    else {
        panic!("{:?}", plan.actions[5]);
    };
    assert_eq!(
        kubelet_owned,
        &[paths::KUBELET_KUBECONFIG, "/var/lib/kubelet/pki"]
    );
    assert_eq!(
        restart_when_changed,
        &[
            paths::CA,
            paths::BOOTSTRAP_KUBECONFIG,
            paths::KUBELET_CONFIG,
            paths::KUBELET_FLAGS,
            paths::KUBELET_DROPIN,
        ]
    );
    inputs.kubelet_overrides = vec![(
        "--kubelet-config".into(),
        object(json!({"failSwapOn": false})),
    )];
    let plan = render::render(&inputs).unwrap();
    assert_eq!(plan.actions[0], Action::CheckSwap { swap_allowed: true });
}
