//! Renders each file of the join's Plan from typed values.
//!
//! Every file is serialised (serde to YAML or TOML, or a small struct with
//! its own writer for systemd and key=value formats), never templated as
//! text, so a value with a quote or a newline in it cannot change the shape
//! of a file. The layout and contents follow `kubeadm join`
//! (tests/vectors/kubeadm-join-files.md), so kubeadm's own tools and support
//! habits keep working on an attach-node host.
//!
//! Everything here is pure: the same [`NodeInputs`] give the same bytes.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::{Action, FileSpec, MODULES, NodeInputs, Plan, SYSCTLS, paths};
use crate::clusterinfo::RuntimeSpec;
use crate::error::Error;
use crate::labels::taints_to_flag_value;

/// The first line of every generated file whose format has comments.
pub const HEADER: &str =
    "Written by attach-node; `attach-node reset` restores what was here before.";

pub const KUBELET_API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
pub const KUBELET_KIND: &str = "KubeletConfiguration";

/// Names the cluster's config in errors and warnings.
const CLUSTER_LAYER: &str =
    "the cluster's kubelet config (kube-system/kubelet-config, key kubelet)";

/// Renders the join's Plan. Errors are usage errors naming the input at
/// fault (an override layer, a flag value, a registry name).
pub fn render(inputs: &NodeInputs) -> Result<Plan, Error> {
    render_with_warnings(inputs).map(|(plan, _)| plan)
}

/// [`render`], plus the settings of the final KubeletConfiguration that
/// differ from what kubeadm would choose. kubeadm keeps such values and warns
/// about them; so should the caller.
pub fn render_with_warnings(inputs: &NodeInputs) -> Result<(Plan, Vec<String>), Error> {
    let kubelet_config = kubelet_config(inputs)?;
    let warnings = kubeadm_default_warnings(&kubelet_config, inputs.systemd_resolved);
    let hosts = registry_hosts_files(&inputs.runtime)?;

    let mut files = vec![
        file(
            paths::CA,
            0o644,
            ca_file(&inputs.ca_pem),
            "the cluster CA, verified through the bootstrap token",
        ),
        FileSpec {
            sensitive: true,
            ..file(
                paths::BOOTSTRAP_KUBECONFIG,
                0o600,
                bootstrap_kubeconfig(inputs)?,
                "the kubelet's bootstrap credential; removed once it has its own",
            )
        },
        file(
            paths::KUBELET_CONFIG,
            0o644,
            kubelet_config_yaml(&kubelet_config)?,
            "the kubelet's configuration: the cluster's, kubeadm's defaults, then overrides",
        ),
        file(
            paths::KUBELET_FLAGS,
            0o644,
            kubelet_flags(inputs)?.into_bytes(),
            "node-specific kubelet flags, as kubeadm writes them",
        ),
        file(
            paths::KUBELET_DROPIN,
            0o644,
            kubelet_dropin(&kubelet_binary(inputs)).into_bytes(),
            "runs the kubelet with kubeadm's files (same as the kubeadm package's drop-in)",
        ),
        file(
            paths::CONTAINERD_CONFIG,
            0o644,
            containerd_config(&inputs.runtime)?.into_bytes(),
            "containerd: CRI with systemd cgroups, sandbox image, registry mirrors dir",
        ),
    ];
    let hosts_paths: Vec<String> = hosts.iter().map(|(path, _)| path.clone()).collect();
    files.extend(hosts.into_iter().map(|(path, content)| FileSpec {
        path,
        mode: 0o644,
        content: content.into_bytes().into(),
        sensitive: false,
        purpose: "containerd mirrors for one registry",
    }));
    for (name, bytes) in &inputs.artifacts {
        files.push(file(
            &crate::artifacts::install_path(name),
            0o755,
            bytes.clone(),
            "an artifact from ClusterInfo, sha256-checked",
        ));
    }
    if inputs.artifacts.iter().any(|(n, _)| n == "kubelet") {
        // A bare VM has no kubelet package, so no unit either.
        files.push(file(
            paths::KUBELET_UNIT,
            0o644,
            kubelet_unit(&kubelet_binary(inputs)).into_bytes(),
            "the kubelet's unit, as its package would install it (the kubelet came as an artifact)",
        ));
    }
    files.push(file(
        paths::SYSCTL,
        0o644,
        sysctl_conf().into_bytes(),
        "kernel settings a Kubernetes node needs",
    ));
    files.push(file(
        paths::MODULES,
        0o644,
        modules_conf().into_bytes(),
        "kernel modules a Kubernetes node needs, loaded at boot",
    ));

    let mut when_changed = vec![paths::CONTAINERD_CONFIG.to_owned()];
    when_changed.extend(hosts_paths);
    // The kubelet's own files: its configuration, credentials and drop-in.
    let kubelet_files: Vec<String> = files
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| {
            [
                "/var/lib/kubelet/",
                "/etc/kubernetes/",
                "/etc/systemd/system/kubelet.service.d/",
            ]
            .iter()
            .any(|dir| p.starts_with(dir))
        })
        .collect();
    let swap_allowed = kubelet_config.get("failSwapOn") == Some(&Value::Bool(false));
    let plan = Plan {
        files,
        dirs: {
            let mut d = dirs(&inputs.runtime);
            if !inputs.artifacts.is_empty() {
                d.push((crate::artifacts::INSTALL_DIR.to_owned(), 0o755));
            }
            d
        },
        actions: vec![
            Action::CheckSwap { swap_allowed },
            Action::LoadModules {
                modules: MODULES.iter().map(|m| (*m).to_owned()).collect(),
            },
            Action::ApplySysctls {
                file: paths::SYSCTL.to_owned(),
            },
            Action::DaemonReload,
            Action::RestartIfChanged {
                unit: "containerd.service".to_owned(),
                when_changed,
            },
            Action::EnableAndStart {
                unit: "kubelet.service".to_owned(),
                kubelet_owned: vec![
                    paths::KUBELET_KUBECONFIG.to_owned(),
                    "/var/lib/kubelet/pki".to_owned(),
                ],
                restart_when_changed: kubelet_files,
            },
        ],
    };
    Ok((plan, warnings))
}

fn file(path: &str, mode: u32, content: Vec<u8>, purpose: &'static str) -> FileSpec {
    FileSpec {
        path: path.to_owned(),
        mode,
        content: content.into(),
        sensitive: false,
        purpose,
    }
}

/// Directories, parents before children. `/var/lib/kubelet` is 0700 as
/// kubeadm makes it: it holds the kubelet's private key.
fn dirs(runtime: &RuntimeSpec) -> Vec<(String, u32)> {
    let mut dirs: Vec<(String, u32)> = vec![
        ("/var/lib/kubelet".to_owned(), 0o700),
        ("/etc/kubernetes".to_owned(), 0o755),
        ("/etc/kubernetes/pki".to_owned(), 0o755),
        ("/etc/systemd/system/kubelet.service.d".to_owned(), 0o755),
        ("/etc/containerd".to_owned(), 0o755),
    ];
    if !runtime.registry_mirrors.is_empty() {
        dirs.push((paths::CONTAINERD_CERTS_D.to_owned(), 0o755));
        dirs.extend(
            runtime
                .registry_mirrors
                .keys()
                .map(|registry| (format!("{}/{registry}", paths::CONTAINERD_CERTS_D), 0o755)),
        );
    }
    dirs.push(("/etc/sysctl.d".to_owned(), 0o755));
    dirs.push(("/etc/modules-load.d".to_owned(), 0o755));
    dirs
}

fn ca_file(pem: &[u8]) -> Vec<u8> {
    let mut out = pem.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

// ---- YAML ---------------------------------------------------------------------

/// YAML the way Kubernetes tools write it: block style, and long strings
/// (the base64 CA) kept on one plain line rather than folded. The default
/// YAML 1.1-safe quoting stays on: the kubelet's parser reads `yes` or
/// `on` as booleans, so such strings must be quoted.
fn to_yaml<T: Serialize>(what: &str, value: &T) -> Result<String, Error> {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(value, options)
        .map_err(|e| Error::internal(format!("cannot write {what} as YAML: {e}")))
}

/// Serialises a JSON value with every object's keys sorted, whatever the
/// map type inside `serde_json::Value` is: the output must not depend on
/// the order of the input or on a feature flag of serde_json.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = s.serialize_map(Some(keys.len()))?;
                for key in keys {
                    out.serialize_entry(key, &Sorted(&map[key]))?;
                }
                out.end()
            }
            Value::Array(items) => s.collect_seq(items.iter().map(Sorted)),
            scalar => scalar.serialize(s),
        }
    }
}

// ---- bootstrap kubeconfig -------------------------------------------------------

/// The kubeconfig v1 shapes the bootstrap file needs. Fields are declared in
/// the order kubectl and kubeadm write them (sorted), so the file matches
/// theirs byte for byte.
mod kubeconfig {
    use serde::Serialize;

    #[derive(Serialize)]
    pub struct Config<'a> {
        #[serde(rename = "apiVersion")]
        pub api_version: &'static str,
        pub clusters: Vec<NamedCluster<'a>>,
        pub contexts: Vec<NamedContext<'a>>,
        #[serde(rename = "current-context")]
        pub current_context: &'a str,
        pub kind: &'static str,
        pub users: Vec<NamedUser<'a>>,
    }

    #[derive(Serialize)]
    pub struct NamedCluster<'a> {
        pub cluster: Cluster<'a>,
        pub name: &'a str,
    }

    #[derive(Serialize)]
    pub struct Cluster<'a> {
        #[serde(rename = "certificate-authority-data")]
        pub certificate_authority_data: String,
        pub server: &'a str,
    }

    #[derive(Serialize)]
    pub struct NamedContext<'a> {
        pub context: Context<'a>,
        pub name: &'a str,
    }

    #[derive(Serialize)]
    pub struct Context<'a> {
        pub cluster: &'a str,
        pub user: &'a str,
    }

    #[derive(Serialize)]
    pub struct NamedUser<'a> {
        pub name: &'a str,
        pub user: User<'a>,
    }

    #[derive(Serialize)]
    pub struct User<'a> {
        pub token: &'a str,
    }
}

/// kubeadm's names (cmd/kubeadm/app/discovery/discovery.go).
const BOOTSTRAP_CLUSTER: &str = "kubernetes";
const BOOTSTRAP_USER: &str = "tls-bootstrap-token-user";
const BOOTSTRAP_CONTEXT: &str = "tls-bootstrap-token-user@kubernetes";

fn bootstrap_kubeconfig(inputs: &NodeInputs) -> Result<Vec<u8>, Error> {
    let bearer = inputs.token.expose_bearer();
    let config = kubeconfig::Config {
        api_version: "v1",
        clusters: vec![kubeconfig::NamedCluster {
            cluster: kubeconfig::Cluster {
                certificate_authority_data: base64::engine::general_purpose::STANDARD
                    .encode(ca_file(&inputs.ca_pem)),
                server: &inputs.server,
            },
            name: BOOTSTRAP_CLUSTER,
        }],
        contexts: vec![kubeconfig::NamedContext {
            context: kubeconfig::Context {
                cluster: BOOTSTRAP_CLUSTER,
                user: BOOTSTRAP_USER,
            },
            name: BOOTSTRAP_CONTEXT,
        }],
        current_context: BOOTSTRAP_CONTEXT,
        kind: "Config",
        users: vec![kubeconfig::NamedUser {
            name: BOOTSTRAP_USER,
            user: kubeconfig::User { token: &bearer },
        }],
    };
    to_yaml("the bootstrap kubeconfig", &config).map(String::into_bytes)
}

// ---- KubeletConfiguration ----------------------------------------------------------

/// The cluster's KubeletConfiguration, kubeadm's defaults over it, then the
/// node's override layers.
fn kubelet_config(inputs: &NodeInputs) -> Result<Value, Error> {
    kubelet_config_of(
        inputs.cluster_kubelet_config.as_deref(),
        &inputs.kubelet_overrides,
        inputs.systemd_resolved,
    )
}

/// [`kubelet_config`] from just the inputs it reads; public for the fuzz
/// targets and the corpus replay (fuzz/).
#[doc(hidden)]
pub fn kubelet_config_of(
    cluster_yaml: Option<&str>,
    overrides: &[(String, Map<String, Value>)],
    systemd_resolved: bool,
) -> Result<Value, Error> {
    let mut base = match cluster_yaml {
        Some(yaml) => parse_cluster_kubelet_config(yaml)?,
        None => Map::new(),
    };
    check_type_meta(CLUSTER_LAYER, &base)?;
    fill_type_meta(&mut base);
    apply_kubeadm_defaults(&mut base, systemd_resolved);
    merge_kubelet_config(Value::Object(base), overrides)
}

fn parse_cluster_kubelet_config(yaml: &str) -> Result<Map<String, Value>, Error> {
    let bad = |problem: String| {
        Error::usage(format!("{CLUSTER_LAYER}: {problem}"))
            .hint("fix the ConfigMap in the cluster (kubectl -n kube-system edit configmap kubelet-config)")
    };
    let value: Value =
        serde_saphyr::from_str(yaml).map_err(|e| bad(format!("is not valid YAML: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(bad(format!(
            "must be a YAML mapping, found {}",
            kind_of(&other)
        ))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// apiVersion and kind say what the whole document is; no layer may change
/// them (absent is fine: see [`fill_type_meta`]).
fn check_type_meta(layer: &str, config: &Map<String, Value>) -> Result<(), Error> {
    for (key, want) in [("apiVersion", KUBELET_API_VERSION), ("kind", KUBELET_KIND)] {
        match config.get(key) {
            None => {}
            Some(Value::String(s)) if s == want => {}
            Some(found) => {
                return Err(Error::usage(format!(
                    "{layer}: {key} must be {want:?} (found {}); attach-node writes a \
                     {KUBELET_KIND} {KUBELET_API_VERSION} and no layer may change that",
                    shown(found)
                ))
                .hint(format!("remove {key} from {layer}")));
            }
        }
    }
    Ok(())
}

fn fill_type_meta(config: &mut Map<String, Value>) {
    for (key, want) in [("apiVersion", KUBELET_API_VERSION), ("kind", KUBELET_KIND)] {
        config.entry(key.to_owned()).or_insert_with(|| want.into());
    }
}

/// A value for a message: JSON, cut short.
fn shown(v: &Value) -> String {
    const MAX: usize = 60;
    let s = v.to_string();
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s,
    }
}

/// Merges override layers (lowest precedence first) over `base`, which must
/// be a KubeletConfiguration v1beta1 mapping (apiVersion and kind are filled
/// in when absent).
///
/// Each layer is a JSON merge patch (RFC 7386), the "merge" patch type of
/// kubeadm's `--patches`: mappings merge key by key, recursively; anything
/// else (a scalar, a list) replaces the value below it whole; `null` removes
/// the key. Lists replace rather than append so that a layer's `clusterDNS`
/// is the node's list, not an addition to the cluster's. A layer may repeat
/// apiVersion and kind but not change them.
pub fn merge_kubelet_config(
    base: Value,
    layers: &[(String, Map<String, Value>)],
) -> Result<Value, Error> {
    let mut merged = match base {
        Value::Object(map) => map,
        other => {
            return Err(Error::usage(format!(
                "{CLUSTER_LAYER}: must be a mapping, found {}",
                kind_of(&other)
            )));
        }
    };
    check_type_meta(CLUSTER_LAYER, &merged)?;
    fill_type_meta(&mut merged);
    for (layer, patch) in layers {
        check_type_meta(&format!("kubelet config from {layer}"), patch)?;
        merge_object(&mut merged, patch);
    }
    Ok(Value::Object(merged))
}

fn merge_object(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_value(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn merge_value(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(target) = target {
                merge_object(target, patch);
            }
        }
        other => *target = other.clone(),
    }
}

/// How kubeadm treats one KubeletConfiguration field
/// (cmd/kubeadm/app/componentconfigs/kubelet.go `Default`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    /// Set when unset; a value the cluster chose is kept (with a warning
    /// when it differs). "Unset" is Go's: absent, null, or "" for string
    /// fields; absent or null for pointer fields, where "" is a real value.
    IfUnset { empty_string_is_unset: bool },
    /// Always set: kubeadm hardcodes it because a false value cannot be
    /// told apart from an unset one (a plain Go bool).
    Forced,
}

struct KubeadmDefault {
    path: &'static [&'static str],
    value: fn() -> Value,
    rule: Rule,
}

const STRING: Rule = Rule::IfUnset {
    empty_string_is_unset: true,
};
const POINTER: Rule = Rule::IfUnset {
    empty_string_is_unset: false,
};

/// kubeadm's kubelet defaults that apply to every node. clusterDNS and
/// clusterDomain are left out: kubeadm derives them from the
/// ClusterConfiguration's service subnet and DNS domain, which the cluster's
/// kubelet config already carries and ClusterInfo can override; guessing
/// them here could only be wrong. readOnlyPort is left out too: absent
/// means 0 (off) in v1beta1, and kubeadm only warns about another value.
const KUBEADM_DEFAULTS: &[KubeadmDefault] = &[
    KubeadmDefault {
        path: &["staticPodPath"],
        value: || "/etc/kubernetes/manifests".into(),
        rule: STRING,
    },
    KubeadmDefault {
        path: &["authentication", "x509", "clientCAFile"],
        value: || paths::CA.into(),
        rule: STRING,
    },
    KubeadmDefault {
        path: &["authentication", "anonymous", "enabled"],
        value: || false.into(),
        rule: POINTER,
    },
    KubeadmDefault {
        path: &["authentication", "webhook", "enabled"],
        value: || true.into(),
        rule: POINTER,
    },
    KubeadmDefault {
        path: &["authorization", "mode"],
        value: || "Webhook".into(),
        rule: STRING,
    },
    KubeadmDefault {
        path: &["healthzBindAddress"],
        value: || "127.0.0.1".into(),
        rule: STRING,
    },
    KubeadmDefault {
        path: &["healthzPort"],
        value: || 10248.into(),
        rule: POINTER,
    },
    KubeadmDefault {
        path: &["rotateCertificates"],
        value: || true.into(),
        rule: Rule::Forced,
    },
    KubeadmDefault {
        path: &["cgroupDriver"],
        value: || "systemd".into(),
        rule: STRING,
    },
];

/// Only when systemd-resolved runs: its stub resolver at 127.0.0.53 would
/// loop inside pods, so the kubelet must read the upstream list.
const RESOLV_CONF: KubeadmDefault = KubeadmDefault {
    path: &["resolvConf"],
    value: || "/run/systemd/resolve/resolv.conf".into(),
    rule: POINTER,
};

fn applicable_defaults(systemd_resolved: bool) -> impl Iterator<Item = &'static KubeadmDefault> {
    KUBEADM_DEFAULTS
        .iter()
        .chain(systemd_resolved.then_some(&RESOLV_CONF))
}

/// Applies kubeadm's defaults to a KubeletConfiguration, as `kubeadm join`
/// does to the cluster's before writing it (see [`Rule`]). A parent that is
/// present but not a mapping is left alone: the kubelet will reject it with
/// a better message than we could.
pub fn apply_kubeadm_defaults(config: &mut Map<String, Value>, systemd_resolved: bool) {
    for d in applicable_defaults(systemd_resolved) {
        let Some((leaf, parents)) = d.path.split_last() else {
            continue;
        };
        let Some(node) = parent_map(config, parents) else {
            continue;
        };
        let unset = match (node.get(*leaf), d.rule) {
            (_, Rule::Forced) => true,
            (None | Some(Value::Null), _) => true,
            (
                Some(Value::String(s)),
                Rule::IfUnset {
                    empty_string_is_unset,
                },
            ) => empty_string_is_unset && s.is_empty(),
            _ => false,
        };
        if unset {
            node.insert((*leaf).to_owned(), (d.value)());
        }
    }
}

/// The mapping at `parents`, created where absent or null; None when a
/// parent is something else.
fn parent_map<'a>(
    node: &'a mut Map<String, Value>,
    parents: &[&str],
) -> Option<&'a mut Map<String, Value>> {
    let Some((first, rest)) = parents.split_first() else {
        return Some(node);
    };
    let slot = node.entry((*first).to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(next) => parent_map(next, rest),
        _ => None,
    }
}

/// The settings of a final KubeletConfiguration that differ from kubeadm's
/// choice, one message each (kubeadm's `warnDefaultComponentConfigValue`).
pub fn kubeadm_default_warnings(config: &Value, systemd_resolved: bool) -> Vec<String> {
    let mut out = Vec::new();
    for d in applicable_defaults(systemd_resolved) {
        let want = (d.value)();
        match lookup(config, d.path) {
            Some(found) if *found != want => out.push(format!(
                "the kubelet config sets {} to {}; kubeadm uses {} (kept as set)",
                d.path.join("."),
                shown(found),
                shown(&want)
            )),
            None if d.rule == Rule::Forced => out.push(format!(
                "the kubelet config removes {}; kubeadm always sets {}",
                d.path.join("."),
                shown(&want)
            )),
            _ => {}
        }
    }
    if let Some(port) = lookup(config, &["readOnlyPort"]).filter(|p| p.as_u64() != Some(0)) {
        out.push(format!(
            "the kubelet config sets readOnlyPort to {}; kubeadm leaves the unauthenticated \
             read-only port off (0)",
            shown(port)
        ));
    }
    out
}

fn lookup<'a>(mut v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    for p in path {
        v = v.as_object()?.get(*p)?;
    }
    Some(v)
}

/// The bytes of `/var/lib/kubelet/config.yaml`; public for the fuzz targets.
#[doc(hidden)]
pub fn kubelet_config_yaml(config: &Value) -> Result<Vec<u8>, Error> {
    to_yaml("the kubelet config", &Sorted(config)).map(String::into_bytes)
}

// ---- kubeadm-flags.env --------------------------------------------------------------

/// `KUBELET_KUBEADM_ARGS="..."` as kubeadm writes it
/// (cmd/kubeadm/app/phases/kubelet/flags.go): flags sorted by name.
///
/// `--pod-infra-container-image` is deliberately not written, although
/// kubeadm did before 1.35: the kubelet 1.35 removed the flag and refuses to
/// start when given it (kubernetes/kubernetes#133779; kubeadm stopped
/// writing it in #133778). The sandbox image goes to containerd's
/// `sandbox_image`, which is what chooses and pins it.
fn kubelet_flags(inputs: &NodeInputs) -> Result<String, Error> {
    let mut args: BTreeMap<&str, String> = BTreeMap::new();
    args.insert("container-runtime-endpoint", paths::CRI_SOCKET.to_owned());
    if inputs.node_name != inputs.hostname {
        args.insert("hostname-override", inputs.node_name.clone());
    }
    if !inputs.labels.is_empty() {
        args.insert("node-labels", inputs.labels.to_flag_value());
    }
    if let Some(id) = &inputs.provider_id {
        args.insert("provider-id", id.clone());
    }
    if !inputs.taints.is_empty() {
        args.insert("register-with-taints", taints_to_flag_value(&inputs.taints));
    }
    for (name, value) in &args {
        check_flag_value(name, value)?;
    }
    let line: Vec<String> = args
        .iter()
        .map(|(name, value)| format!("--{name}={value}"))
        .collect();
    Ok(format!(
        "KUBELET_KUBEADM_ARGS={}\n",
        quote_env_value(&line.join(" "))?
    ))
}

/// systemd splits `$KUBELET_KUBEADM_ARGS` at whitespace into arguments, so
/// a value with a space would become two arguments; control characters have
/// no business in a flag. Both are refused rather than escaped.
fn check_flag_value(name: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::usage(format!(
            "kubelet flag --{name}: the value is empty"
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::usage(format!(
            "kubelet flag --{name}: the value {value:?} contains {c:?}; \
             whitespace and control characters cannot be passed through kubeadm-flags.env"
        ))
        .hint(format!("give --{name} a value without whitespace")));
    }
    Ok(())
}

/// Quotes a value as Go's `%q` does for the text kubeadm writes: in double
/// quotes, with `"` and `\` escaped. Anything for which `%q` would write an
/// escape sequence (a newline, a control character) is refused instead:
/// systemd's environment-file parser does not understand those escapes.
pub fn quote_env_value(value: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                return Err(Error::usage(format!(
                    "a kubelet flag value contains the control character {c:?}, \
                     which kubeadm-flags.env cannot hold"
                )));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

// ---- the kubelet drop-in ------------------------------------------------------------

/// A systemd unit file (or drop-in): comment lines, then sections of
/// directives in order. Keys may repeat (`ExecStart=` resets the list).
struct UnitFile {
    comments: Vec<&'static str>,
    sections: Vec<Section>,
}

struct Section {
    name: &'static str,
    directives: Vec<(&'static str, String)>,
}

impl UnitFile {
    fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.comments {
            out.push_str("# ");
            out.push_str(c);
            out.push('\n');
        }
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push('[');
            out.push_str(section.name);
            out.push_str("]\n");
            for (key, value) in &section.directives {
                debug_assert!(
                    !value.contains('\n'),
                    "unit value with a newline: {value:?}"
                );
                out.push_str(key);
                out.push('=');
                out.push_str(value);
                out.push('\n');
            }
        }
        out
    }
}

/// `"NAME=value"` for `Environment=`: systemd unquotes it as a shell-like
/// word, so quotes and backslashes in the value are escaped.
fn environment(name: &str, value: &str) -> String {
    let mut out = String::from("\"");
    for c in name
        .chars()
        .chain(std::iter::once('='))
        .chain(value.chars())
    {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The kubelet the units run: the artifact when there is one, else the
/// package's.
fn kubelet_binary(inputs: &NodeInputs) -> String {
    if inputs.artifacts.iter().any(|(n, _)| n == "kubelet") {
        crate::artifacts::install_path("kubelet")
    } else {
        "/usr/bin/kubelet".to_owned()
    }
}

/// The kubelet package's unit (kubernetes/release's kubelet.service).
fn kubelet_unit(binary: &str) -> String {
    UnitFile {
        comments: vec![HEADER],
        sections: vec![
            Section {
                name: "Unit",
                directives: vec![
                    (
                        "Description",
                        "kubelet: The Kubernetes Node Agent".to_owned(),
                    ),
                    ("Documentation", "https://kubernetes.io/docs/".to_owned()),
                    ("Wants", "network-online.target".to_owned()),
                    ("After", "network-online.target".to_owned()),
                ],
            },
            Section {
                name: "Service",
                directives: vec![
                    ("ExecStart", binary.to_owned()),
                    ("Restart", "always".to_owned()),
                    ("StartLimitInterval", "0".to_owned()),
                    ("RestartSec", "10".to_owned()),
                ],
            },
            Section {
                name: "Install",
                directives: vec![("WantedBy", "multi-user.target".to_owned())],
            },
        ],
    }
    .render()
}

/// The kubeadm package's 10-kubeadm.conf (tests/vectors/kubeadm-join), with
/// both admin-override files: `/etc/default/kubelet` (deb) and
/// `/etc/sysconfig/kubelet` (rpm), each optional (`-`), so one file serves
/// both families. Placed in /etc, it overrides a packaged drop-in of the
/// same name in /usr/lib.
fn kubelet_dropin(binary: &str) -> String {
    UnitFile {
        comments: vec![
            HEADER,
            "The kubelet as `kubeadm join` runs it (kubeadm's packaged 10-kubeadm.conf).",
        ],
        sections: vec![Section {
            name: "Service",
            directives: vec![
                (
                    "Environment",
                    environment(
                        "KUBELET_KUBECONFIG_ARGS",
                        &format!(
                            "--bootstrap-kubeconfig={} --kubeconfig={}",
                            paths::BOOTSTRAP_KUBECONFIG,
                            paths::KUBELET_KUBECONFIG
                        ),
                    ),
                ),
                (
                    "Environment",
                    environment(
                        "KUBELET_CONFIG_ARGS",
                        &format!("--config={}", paths::KUBELET_CONFIG),
                    ),
                ),
                ("EnvironmentFile", format!("-{}", paths::KUBELET_FLAGS)),
                ("EnvironmentFile", "-/etc/default/kubelet".to_owned()),
                ("EnvironmentFile", "-/etc/sysconfig/kubelet".to_owned()),
                ("ExecStart", String::new()),
                (
                    "ExecStart",
                    format!(
                        "{binary} $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS \
                         $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS"
                    ),
                ),
            ],
        }],
    }
    .render()
}

// ---- containerd -----------------------------------------------------------------------

/// containerd's config, version 2 (containerd 1.6 and 1.7; 2.x migrates it).
/// Only what a kubeadm node needs; everything else keeps containerd's
/// defaults. Replacing the file also drops a distribution's
/// `disabled_plugins = ["cri"]`.
mod containerd {
    use std::collections::BTreeMap;

    use serde::Serialize;

    pub const CRI_PLUGIN: &str = "io.containerd.grpc.v1.cri";

    #[derive(Serialize)]
    pub struct Config {
        pub version: u32,
        pub plugins: BTreeMap<&'static str, Cri>,
    }

    #[derive(Serialize)]
    pub struct Cri {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub sandbox_image: Option<String>,
        pub containerd: Containerd,
        pub registry: Registry,
    }

    #[derive(Serialize)]
    pub struct Containerd {
        pub runtimes: BTreeMap<&'static str, Runtime>,
    }

    #[derive(Serialize)]
    pub struct Runtime {
        pub runtime_type: &'static str,
        pub options: RuncOptions,
    }

    /// The kubelet's cgroupDriver is systemd; the runtime must agree.
    #[derive(Serialize)]
    pub struct RuncOptions {
        #[serde(rename = "SystemdCgroup")]
        pub systemd_cgroup: bool,
    }

    #[derive(Serialize)]
    pub struct Registry {
        pub config_path: &'static str,
    }

    /// A `certs.d/<registry>/hosts.toml`.
    #[derive(Serialize)]
    pub struct Hosts<'a> {
        /// The registry itself, tried after the mirrors. None for
        /// `_default`, which has no upstream of its own.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub server: Option<String>,
        pub host: Mirrors<'a>,
    }

    /// Mirrors as `[host."<url>"]` tables, in the order given: containerd
    /// tries them in file order.
    pub struct Mirrors<'a>(pub Vec<&'a str>);

    #[derive(Serialize)]
    struct Host {
        capabilities: [&'static str; 2],
    }

    impl Serialize for Mirrors<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for url in &self.0 {
                map.serialize_entry(
                    url,
                    &Host {
                        capabilities: ["pull", "resolve"],
                    },
                )?;
            }
            map.end()
        }
    }
}

fn to_toml<T: Serialize>(what: &str, value: &T) -> Result<String, Error> {
    let body = toml::to_string(value)
        .map_err(|e| Error::internal(format!("cannot write {what} as TOML: {e}")))?;
    Ok(format!("# {HEADER}\n\n{body}"))
}

fn containerd_config(runtime: &RuntimeSpec) -> Result<String, Error> {
    let cri = containerd::Cri {
        sandbox_image: runtime.sandbox_image.clone(),
        containerd: containerd::Containerd {
            runtimes: BTreeMap::from([(
                "runc",
                containerd::Runtime {
                    runtime_type: "io.containerd.runc.v2",
                    options: containerd::RuncOptions {
                        systemd_cgroup: true,
                    },
                },
            )]),
        },
        registry: containerd::Registry {
            config_path: paths::CONTAINERD_CERTS_D,
        },
    };
    let config = containerd::Config {
        version: 2,
        plugins: BTreeMap::from([(containerd::CRI_PLUGIN, cri)]),
    };
    to_toml("containerd's config", &config)
}

/// A registry name becomes a directory under certs.d, so it must be exactly
/// one harmless path component. (ClusterInfo already checks the host
/// grammar; this guards the filesystem whatever the source.)
pub fn check_registry_name(registry: &str) -> Result<(), Error> {
    let bad = registry.is_empty()
        || registry == "."
        || registry.contains("..")
        || registry.contains(['/', '\\'])
        || registry
            .chars()
            .any(|c| c.is_whitespace() || c.is_control());
    if bad {
        return Err(Error::usage(format!(
            "registry mirrors: {registry:?} is not a registry name \
             (expected HOST, HOST:PORT or _default)"
        ))
        .hint("name the registry by host, e.g. docker.io or registry.example.com:5000"));
    }
    Ok(())
}

/// containerd's upstream for a registry; Docker Hub's API is not at
/// docker.io itself.
fn registry_server(registry: &str) -> Option<String> {
    match registry {
        "_default" => None,
        "docker.io" => Some("https://registry-1.docker.io".to_owned()),
        host => Some(format!("https://{host}")),
    }
}

/// `(path, content)` of each registry's hosts.toml, sorted by registry.
fn registry_hosts_files(runtime: &RuntimeSpec) -> Result<Vec<(String, String)>, Error> {
    runtime
        .registry_mirrors
        .iter()
        .map(|(registry, mirrors)| {
            check_registry_name(registry)?;
            // A repeated mirror would be a repeated TOML table, which
            // containerd rejects; the first mention keeps its place.
            let mut unique: Vec<&str> = Vec::new();
            for m in mirrors {
                if !unique.contains(&m.as_str()) {
                    unique.push(m);
                }
            }
            let hosts = containerd::Hosts {
                server: registry_server(registry),
                host: containerd::Mirrors(unique),
            };
            let path = format!("{}/{registry}/hosts.toml", paths::CONTAINERD_CERTS_D);
            Ok((path, to_toml("containerd's hosts.toml", &hosts)?))
        })
        .collect()
}

// ---- kernel ------------------------------------------------------------------------------

fn sysctl_conf() -> String {
    let mut out = format!("# {HEADER}\n");
    for (key, value) in SYSCTLS {
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

fn modules_conf() -> String {
    let mut out = format!("# {HEADER}\n");
    for module in MODULES {
        out.push_str(module);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Class;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn layer(name: &str, v: Value) -> (String, Map<String, Value>) {
        (name.to_owned(), obj(v))
    }

    fn base() -> Value {
        json!({"apiVersion": KUBELET_API_VERSION, "kind": KUBELET_KIND})
    }

    #[test]
    fn merge_with_no_layers_is_the_base() {
        let b = json!({"apiVersion": KUBELET_API_VERSION, "kind": KUBELET_KIND, "maxPods": 110});
        assert_eq!(merge_kubelet_config(b.clone(), &[]).unwrap(), b);
    }

    #[test]
    fn merge_fills_in_missing_type_meta() {
        let merged = merge_kubelet_config(json!({"maxPods": 1}), &[]).unwrap();
        assert_eq!(merged["apiVersion"], KUBELET_API_VERSION);
        assert_eq!(merged["kind"], KUBELET_KIND);
    }

    #[test]
    fn nested_objects_merge_key_by_key() {
        let mut b = base();
        b["evictionHard"] = json!({"memory.available": "100Mi", "nodefs.available": "10%"});
        b["authentication"] = json!({"x509": {"clientCAFile": "/a"}, "webhook": {"enabled": true}});
        let merged = merge_kubelet_config(
            b,
            &[layer(
                "flags",
                json!({"evictionHard": {"memory.available": "500Mi", "imagefs.available": "15%"},
                       "authentication": {"webhook": {"cacheTTL": "2m"}}}),
            )],
        )
        .unwrap();
        assert_eq!(
            merged["evictionHard"],
            json!({"memory.available": "500Mi", "nodefs.available": "10%", "imagefs.available": "15%"})
        );
        assert_eq!(
            merged["authentication"],
            json!({"x509": {"clientCAFile": "/a"}, "webhook": {"enabled": true, "cacheTTL": "2m"}})
        );
    }

    #[test]
    fn arrays_replace_whole() {
        let mut b = base();
        b["clusterDNS"] = json!(["10.96.0.10", "10.96.0.11"]);
        let merged = merge_kubelet_config(
            b,
            &[layer(
                "ClusterInfo",
                json!({"clusterDNS": ["169.254.20.10"]}),
            )],
        )
        .unwrap();
        assert_eq!(merged["clusterDNS"], json!(["169.254.20.10"]));
    }

    #[test]
    fn scalars_replace_and_later_layers_win() {
        let mut b = base();
        b["maxPods"] = json!(110);
        b["cgroupDriver"] = json!("systemd");
        let merged = merge_kubelet_config(
            b,
            &[
                layer(
                    "ClusterInfo",
                    json!({"maxPods": 200, "cgroupDriver": "cgroupfs"}),
                ),
                layer("flags", json!({"maxPods": 64})),
            ],
        )
        .unwrap();
        assert_eq!(merged["maxPods"], 64);
        assert_eq!(merged["cgroupDriver"], "cgroupfs");
    }

    #[test]
    fn a_type_change_replaces_in_both_directions() {
        let mut b = base();
        b["a"] = json!({"x": 1});
        b["b"] = json!(5);
        let merged = merge_kubelet_config(
            b,
            &[layer(
                "l",
                json!({"a": [1], "b": {"y": {"z": null, "w": 2}}}),
            )],
        )
        .unwrap();
        assert_eq!(merged["a"], json!([1]));
        assert_eq!(merged["b"], json!({"y": {"w": 2}}));
    }

    #[test]
    fn null_removes_a_key() {
        let mut b = base();
        b["resolvConf"] = json!("/etc/resolv.conf");
        b["evictionHard"] = json!({"memory.available": "100Mi", "nodefs.available": "10%"});
        let merged = merge_kubelet_config(
            b,
            &[layer(
                "flags",
                json!({"resolvConf": null, "evictionHard": {"nodefs.available": null}, "absent": null}),
            )],
        )
        .unwrap();
        let m = merged.as_object().unwrap();
        assert!(!m.contains_key("resolvConf"));
        assert!(!m.contains_key("absent"));
        assert_eq!(merged["evictionHard"], json!({"memory.available": "100Mi"}));
    }

    #[test]
    fn kind_and_api_version_are_protected() {
        for patch in [
            json!({"kind": "KubeProxyConfiguration"}),
            json!({"apiVersion": "kubelet.config.k8s.io/v1"}),
            json!({"apiVersion": null}),
            json!({"kind": 3}),
        ] {
            let e =
                merge_kubelet_config(base(), &[layer("--node-config", patch.clone())]).unwrap_err();
            assert_eq!(e.class(), Class::Usage, "{patch}");
            assert!(e.message().contains("--node-config"), "{e}");
        }
        // Repeating the right values is not a change.
        let same = json!({"kind": KUBELET_KIND, "apiVersion": KUBELET_API_VERSION, "maxPods": 9});
        assert_eq!(
            merge_kubelet_config(base(), &[layer("l", same)]).unwrap()["maxPods"],
            9
        );
    }

    #[test]
    fn the_base_must_be_a_kubelet_configuration() {
        let e = merge_kubelet_config(json!({"kind": "Pod"}), &[]).unwrap_err();
        assert_eq!(e.class(), Class::Usage);
        let e = merge_kubelet_config(json!([1]), &[]).unwrap_err();
        assert_eq!(e.class(), Class::Usage);
    }

    #[test]
    fn defaults_fill_an_empty_config() {
        let mut c = obj(base());
        apply_kubeadm_defaults(&mut c, true);
        assert_eq!(
            Value::Object(c),
            json!({
                "apiVersion": KUBELET_API_VERSION, "kind": KUBELET_KIND,
                "staticPodPath": "/etc/kubernetes/manifests",
                "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
                                   "anonymous": {"enabled": false}, "webhook": {"enabled": true}},
                "authorization": {"mode": "Webhook"},
                "healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
                "rotateCertificates": true, "cgroupDriver": "systemd",
                "resolvConf": "/run/systemd/resolve/resolv.conf",
            })
        );
    }

    #[test]
    fn resolv_conf_only_with_systemd_resolved() {
        let mut c = obj(base());
        apply_kubeadm_defaults(&mut c, false);
        assert!(!c.contains_key("resolvConf"));
    }

    #[test]
    fn forced_default_wins_over_the_cluster() {
        let mut c = obj(json!({"rotateCertificates": false}));
        apply_kubeadm_defaults(&mut c, false);
        assert_eq!(c["rotateCertificates"], true);
    }

    #[test]
    fn set_if_unset_defaults_keep_the_clusters_values() {
        let mut c = obj(json!({
            "staticPodPath": "/srv/manifests",
            "authentication": {"anonymous": {"enabled": true}, "webhook": {"enabled": false},
                               "x509": {"clientCAFile": "/other/ca.crt"}},
            "authorization": {"mode": "AlwaysAllow"},
            "healthzBindAddress": "0.0.0.0", "healthzPort": 0,
            "cgroupDriver": "cgroupfs", "resolvConf": "",
        }));
        let before = c.clone();
        apply_kubeadm_defaults(&mut c, true);
        let mut expected = before;
        expected.insert("rotateCertificates".into(), true.into());
        assert_eq!(c, expected);
        let warnings = kubeadm_default_warnings(&Value::Object(c), true);
        assert_eq!(warnings.len(), 9, "{warnings:#?}");
    }

    #[test]
    fn go_zero_values_count_as_unset_where_go_says_so() {
        // "" is unset for a string field, but a real value for resolvConf
        // (a pointer: "" means no resolv.conf at all).
        let mut c = obj(
            json!({"cgroupDriver": "", "staticPodPath": null, "resolvConf": "",
                               "authentication": null, "authorization": "bogus"}),
        );
        apply_kubeadm_defaults(&mut c, true);
        assert_eq!(c["cgroupDriver"], "systemd");
        assert_eq!(c["staticPodPath"], "/etc/kubernetes/manifests");
        assert_eq!(c["resolvConf"], "");
        assert_eq!(c["authentication"]["anonymous"]["enabled"], false);
        assert_eq!(c["authorization"], "bogus");
    }

    #[test]
    fn warnings_name_read_only_port_and_removed_forced_values() {
        let c = json!({"readOnlyPort": 10255});
        let w = kubeadm_default_warnings(&c, false);
        assert!(
            w.iter().any(|w| w.contains("readOnlyPort to 10255")),
            "{w:#?}"
        );
        assert!(
            w.iter().any(|w| w.contains("removes rotateCertificates")),
            "{w:#?}"
        );
        let mut d = obj(base());
        apply_kubeadm_defaults(&mut d, false);
        assert!(kubeadm_default_warnings(&Value::Object(d), false).is_empty());
    }

    #[test]
    fn env_values_are_quoted_like_go() {
        assert_eq!(quote_env_value("--a=b --c=d").unwrap(), r#""--a=b --c=d""#);
        assert_eq!(quote_env_value(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert_eq!(quote_env_value("").unwrap(), r#""""#);
        assert_eq!(quote_env_value("ünï").unwrap(), "\"ünï\"");
        for bad in ["a\nb", "a\rb", "a\tb", "\u{7f}", "\u{1b}[0m", "\u{85}"] {
            assert_eq!(
                quote_env_value(bad).unwrap_err().class(),
                Class::Usage,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn flag_values_refuse_whitespace_and_control_characters() {
        assert!(check_flag_value("provider-id", "cn-hangzhou.i-abc").is_ok());
        assert!(check_flag_value("provider-id", r#"a"b\c"#).is_ok());
        for bad in ["", "a b", "a\tb", "a\nb", "a\u{0}b", "a\u{a0}b"] {
            let e = check_flag_value("provider-id", bad).unwrap_err();
            assert_eq!(e.class(), Class::Usage);
            assert!(e.message().contains("--provider-id"), "{e}");
        }
    }

    #[test]
    fn registry_names_must_be_one_path_component() {
        for ok in [
            "docker.io",
            "registry.example.com:5000",
            "_default",
            "10.0.0.5:5000",
        ] {
            assert!(check_registry_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", "../etc", "a/b", "/abs", "a\\b", "a..b", "a b", "a\nb", "a\0b",
        ] {
            let e = check_registry_name(bad).unwrap_err();
            assert_eq!(e.class(), Class::Usage, "{bad:?}");
        }
    }

    #[test]
    fn environment_directive_escapes_quotes() {
        assert_eq!(environment("A", "x y"), r#""A=x y""#);
        assert_eq!(environment("A", r#"q"\"#), r#""A=q\"\\""#);
    }

    #[test]
    fn sorted_serialisation_sorts_nested_keys() {
        let v = json!({"b": {"z": 1, "a": [{"y": 1, "x": 2}]}, "a": {}});
        let yaml = to_yaml("t", &Sorted(&v)).unwrap();
        assert_eq!(yaml, "a: {}\nb:\n  a:\n  - x: 2\n    \"y\": 1\n  z: 1\n");
    }
}
