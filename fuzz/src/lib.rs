//! What each fuzz target checks, one function per parser of untrusted input.
//!
//! Every function takes the raw fuzz input and panics when a property
//! fails; "no panic" is the least of them, and where it is cheap a function
//! also checks that what a parser accepts survives a round trip or is
//! accepted by the next parser down the line. The same functions replay the
//! committed corpora in `tests/parsers_never_panic.rs` (which includes this
//! file by path), so a regression shows up in a plain `cargo test` without
//! cargo-fuzz. Only crates that attach-node itself depends on may be used
//! here, for that reason.
//!
//! Inputs with two parts split at the first 0xFF byte, which never occurs
//! in UTF-8 text.

use std::time::{Duration, SystemTime};

use attach_node::clusterinfo::{self, Endpoint};
use attach_node::journal::Journal;
use attach_node::labels;
use attach_node::plan::render;
use attach_node::trust::kubeconfig::{ServerUrl, cluster_from_kubeconfig};
use attach_node::trust::pin::CaPin;
use attach_node::trust::{self, ca, jws};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// The two parts of an input, split at the first 0xFF; the second is empty
/// when there is none.
fn halves(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// A fixed "now" so that a run is reproducible (2026-01-01T00:00:00Z).
fn fixed_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// A ClusterInfo document from the control plane (`clusterinfo::parse`).
/// What it accepts must be usable downstream: every endpoint parses back to
/// itself and is a server URL discovery can use, every pin prints and
/// parses back, and the node's labels, taints and kubeletConfig either are
/// refused with an error or survive their own round trips.
pub fn clusterinfo(data: &[u8]) {
    let Ok(ci) = clusterinfo::parse(data) else {
        return;
    };
    assert!(!ci.api_server_endpoints.is_empty());
    for e in &ci.api_server_endpoints {
        assert_eq!(Endpoint::parse(e.as_str()).as_ref(), Ok(e));
        let url = ServerUrl::parse(e.as_str()).unwrap_or_else(|err| {
            panic!("ClusterInfo accepted the endpoint {e} but discovery refuses it: {err}")
        });
        assert_eq!(url.port, e.port());
    }
    for pin in &ci.ca_cert_hashes {
        assert_eq!(CaPin::parse(&pin.to_string()).as_ref(), Ok(pin));
    }
    let pairs: Vec<(String, String)> = ci.node.labels.clone().into_iter().collect();
    check_label_layer(pairs);
    check_taint_layer(ci.node.taints.clone());
    if let Some(kc) = &ci.node.kubelet_config {
        check_kubelet_config(None, vec![("node.kubeletConfig".into(), kc.clone())], false);
    }
}

/// The kubeconfig inside cluster-info (`cluster_from_kubeconfig`), reached
/// the way discovery reaches it: through the ConfigMap's JSON when the
/// input is one, else the input taken as the kubeconfig itself.
pub fn kubeconfig(data: &[u8]) {
    if let Ok(cm) = trust::configmap_data(data) {
        if let Ok(text) = trust::kubeconfig_in(&cm) {
            check_kubeconfig(text);
        }
        return;
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_kubeconfig(text);
    }
}

fn check_kubeconfig(text: &str) {
    let Ok(entry) = cluster_from_kubeconfig(text) else {
        return;
    };
    assert!(entry.server.port > 0);
    assert_eq!(
        ServerUrl::parse(&entry.server.base_url()).as_ref(),
        Ok(&entry.server)
    );
    // The CA bytes are the server's too: checking them must not panic.
    let now = OffsetDateTime::from(fixed_now());
    let _ = ca::check_ca_bundle(&entry.ca_pem, now);
    let _ = ca::pins_of_bundle(&entry.ca_pem);
}

/// The detached JWS over cluster-info (`jws::verify_raw`): content, then the
/// signature. A signature verifies exactly when it is the one we compute,
/// and the one we compute always verifies, whatever the id and key.
pub fn jws(data: &[u8]) {
    let (content, rest) = halves(data);
    let signature = String::from_utf8_lossy(rest);
    const ID: &str = "abcdef";
    const KEY: &[u8] = b"0123456789abcdef";
    let ok = jws::verify_raw(content, &signature, ID, KEY);
    assert_eq!(
        ok,
        *signature == jws::detached_signature(content, ID, KEY),
        "verify disagrees with the signature it computes"
    );
    // The fuzzed signature's bytes as an id and a key: any may be used.
    let id = String::from_utf8_lossy(&rest[..rest.len().min(16)]);
    let key = &rest[rest.len().min(16)..];
    let own = jws::detached_signature(content, &id, key);
    assert!(jws::verify_raw(content, &own, &id, key));
    assert!(!jws::verify_raw(content, &format!("{own}x"), &id, key));
}

/// `--labels` and `--taints` (and ClusterInfo's `node.labels`/`taints`):
/// the label list, then the taint list.
pub fn labels(data: &[u8]) {
    let (l, t) = halves(data);
    if let Ok(pairs) = labels::parse_label_list(&String::from_utf8_lossy(l)) {
        check_label_layer(pairs);
    }
    if let Ok(taints) = labels::parse_taint_list(&String::from_utf8_lossy(t)) {
        for t in &taints {
            // parse_taint_list validates as it goes: what it returns is valid.
            assert_eq!(labels::validate_label_key(&t.key), Ok(()), "{t:?}");
            if let Some(v) = &t.value {
                assert_eq!(labels::validate_label_value(v), Ok(()), "{t:?}");
            }
        }
        check_taint_layer(taints);
    }
}

/// A label layer that merges is valid label by label, holds only labels
/// the kubelet may set on itself, and its flag value parses back to it.
fn check_label_layer(pairs: Vec<(String, String)>) {
    let Ok(merged) = labels::merge_labels(&[("fuzz", pairs)]) else {
        return;
    };
    for (k, v) in merged.iter() {
        assert_eq!(labels::validate_label_key(k), Ok(()), "key {k:?}");
        assert_eq!(labels::validate_label_value(v), Ok(()), "value {v:?}");
        assert!(labels::kubelet_may_self_set(k).is_allowed(), "key {k:?}");
    }
    let flag = merged.to_flag_value();
    let again = labels::parse_label_list(&flag)
        .unwrap_or_else(|e| panic!("--node-labels={flag} does not parse back: {e}"));
    let again = labels::merge_labels(&[("fuzz", again)])
        .unwrap_or_else(|e| panic!("--node-labels={flag} does not merge back: {e}"));
    assert_eq!(again, merged);
}

/// A taint layer that merges prints as a flag value that parses back to it.
fn check_taint_layer(taints: Vec<clusterinfo::Taint>) {
    let Ok(merged) = labels::merge_taints(&[("fuzz", taints)]) else {
        return;
    };
    let flag = labels::taints_to_flag_value(&merged);
    let again = labels::parse_taint_list(&flag)
        .unwrap_or_else(|e| panic!("--register-with-taints={flag} does not parse back: {e}"));
    assert_eq!(again, merged);
}

/// The config file (`--config`): parsed or refused, and a refusal never
/// quotes the value of a key that holds a token.
pub fn config(data: &[u8]) {
    // The file is read with read_to_string, which refuses anything else.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(e) = attach_node::settings::check_config_text(text) else {
        return;
    };
    let shown = format!("{} {}", e.message(), e.hint_text().unwrap_or_default());
    for secret in token_values(text) {
        assert!(
            !shown.contains(&secret),
            "the config error quotes a token: {shown}"
        );
    }
}

/// The values of the `*token` keys of a YAML mapping, found by a real YAML
/// parse (not by the line heuristic the error masking uses), when the text
/// is a mapping at all.
fn token_values(text: &str) -> Vec<String> {
    let Ok(Value::Object(map)) = serde_saphyr::from_str::<Value>(text) else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| k.ends_with("token"))
        .filter_map(|(_, v)| v.as_str())
        // Short values could occur in the message by chance.
        .filter(|v| v.len() >= 8)
        .map(str::to_owned)
        .collect()
}

/// The journal read back from disk. A journal that parses serialises and
/// parses back to itself, so a save after a load loses nothing.
pub fn journal(data: &[u8]) {
    // What Store::load does: parse, check the version, and refuse what no
    // join writes. What it accepts must survive a save and a load again.
    let Ok(j) = Journal::parse(data) else {
        return;
    };
    let bytes = serde_json::to_vec_pretty(&j).expect("a journal serialises");
    let back = Journal::parse(&bytes).expect("a saved journal is accepted again");
    assert_eq!(back, j);
}

/// `Retry-After` from any server we talk to: never longer than an hour, and
/// delta-seconds taken literally up to that.
pub fn retry_after(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let Some(d) = attach_node::retry::parse_retry_after(&s, fixed_now()) else {
        return;
    };
    assert!(d <= Duration::from_secs(3600), "{s:?} gave {d:?}");
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>()
        && t.bytes().all(|b| b.is_ascii_digit())
    {
        assert_eq!(d, Duration::from_secs(n.min(3600)));
    }
}

/// Durations (`--timeout`, `--wait-timeout`, the config file's): what
/// parses prints canonically and parses back to the same duration.
pub fn duration(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let Ok(d) = attach_node::duration::parse(&s) else {
        return;
    };
    assert_eq!(d.subsec_nanos() % 1_000_000, 0, "{s:?} gave {d:?}");
    let ms = d.subsec_millis();
    let secs = d.as_secs();
    let canonical = if ms == 0 {
        secs.to_string()
    } else {
        let h = secs / 3600;
        if h > u64::from(u32::MAX) {
            return;
        }
        format!("{h}h{}m{}s{ms}ms", secs / 60 % 60, secs % 60)
    };
    assert_eq!(
        attach_node::duration::parse(&canonical),
        Ok(d),
        "{s:?} -> {canonical:?}"
    );
}

/// The kubelet config merge: the cluster's `kubelet-config` YAML, then a
/// `--node-config` JSON document (base64-encoded here, as the flag takes it).
pub fn kubelet_config(data: &[u8]) {
    use base64::Engine;
    let (cluster, node) = halves(data);
    let cluster = match std::str::from_utf8(cluster) {
        Ok("") => None,
        Ok(text) => Some(text),
        Err(_) => return,
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(node);
    let layers = match attach_node::settings::parse_node_config(&b64) {
        Ok(map) => vec![("--node-config".to_owned(), map)],
        Err(_) => Vec::new(),
    };
    check_kubelet_config(cluster, layers, data.len() % 2 == 1);
}

/// A merged KubeletConfiguration keeps its type, is a fixed point of its
/// own layers (merge patches are idempotent), and the YAML written for the
/// kubelet reads back as the same document.
fn check_kubelet_config(
    cluster: Option<&str>,
    layers: Vec<(String, Map<String, Value>)>,
    systemd_resolved: bool,
) {
    let Ok(merged) = render::kubelet_config_of(cluster, &layers, systemd_resolved) else {
        return;
    };
    assert_eq!(merged["apiVersion"], render::KUBELET_API_VERSION);
    assert_eq!(merged["kind"], render::KUBELET_KIND);
    let again = render::merge_kubelet_config(merged.clone(), &layers)
        .expect("a merged config merges its layers again");
    assert_eq!(again, merged, "merging the same layers twice changed it");
    let yaml = render::kubelet_config_yaml(&merged).expect("a merged config serialises");
    let text = String::from_utf8(yaml).expect("YAML is UTF-8");
    let back: Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("the written kubelet config does not parse: {e}\n{text}"));
    assert_eq!(
        back, merged,
        "the written kubelet config reads back different:\n{text}"
    );
}
