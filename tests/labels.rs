//! Node labels and taints against tests/vectors/labels.json (upstream
//! apimachinery, kubelet and NodeRestriction examples), plus merge rules and
//! properties of the parsers.

use std::path::PathBuf;

use attach_node::clusterinfo::{Taint, TaintEffect};
use attach_node::labels::{
    KUBELET_LABEL_NAMESPACES_ALLOWED, KUBELET_LABELS_ALLOWED, Labels, SelfLabel,
    kubelet_may_self_set, merge_labels, merge_taints, parse_label_list, parse_taint_list,
    taints_to_flag_value, validate_label_key, validate_label_value,
};
use attach_node::{Class, Error};
use proptest::prelude::*;
use serde_json::Value;

fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/labels.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn example(name: &str) -> Vec<String> {
    let list = strings(&vectors()["examples"][name]);
    assert!(!list.is_empty(), "{name} is empty");
    list
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn taint(key: &str, value: Option<&str>, effect: TaintEffect) -> Taint {
    Taint {
        key: key.to_owned(),
        value: value.map(str::to_owned),
        effect,
    }
}

fn usage_error<T: std::fmt::Debug>(r: Result<T, Error>) -> Error {
    let e = r.expect_err("should have failed");
    assert_eq!(e.class(), Class::Usage, "{e}");
    assert_eq!(e.exit_code(), 2);
    assert!(e.hint_text().is_some(), "no hint: {e}");
    e
}

// ---- upstream examples ------------------------------------------------------

#[test]
fn qualified_names() {
    for key in example("qualified_name_valid") {
        assert_eq!(validate_label_key(&key), Ok(()), "{key}");
    }
    for key in example("qualified_name_invalid") {
        assert!(validate_label_key(&key).is_err(), "{key}");
    }
}

#[test]
fn label_values() {
    for v in example("label_value_valid") {
        assert_eq!(validate_label_value(&v), Ok(()), "{v:?}");
    }
    for v in example("label_value_invalid") {
        assert!(validate_label_value(&v).is_err(), "{v:?}");
    }
}

/// The subdomain check is reached through a key's prefix: `<s>/x` is a valid
/// key exactly when `s` is a valid DNS-1123 subdomain (the empty string too:
/// "prefix part must be non-empty").
#[test]
fn dns1123_subdomains_as_key_prefixes() {
    let cases = example("dns1123_subdomain_valid")
        .into_iter()
        .map(|s| (s, true))
        .chain(
            example("dns1123_subdomain_invalid")
                .into_iter()
                .map(|s| (s, false)),
        );
    for (subdomain, valid) in cases {
        // A '/' in the candidate would change how the key splits, so such a
        // case would test the splitting, not the subdomain. None exist today.
        if subdomain.contains('/') {
            continue;
        }
        let key = format!("{subdomain}/x");
        assert_eq!(validate_label_key(&key).is_ok(), valid, "{key:?}");
    }
}

#[test]
fn upstream_error_wording() {
    let v = vectors();
    let t = &v["rules"]["qualified_name"]["error_templates"];
    let template = |name: &str| t[name].as_str().unwrap().to_owned();
    let long_name = format!("example.com/{}", "a".repeat(64));
    let cases = [
        ("/simple", "empty_prefix"),
        ("Example.com/abc", "prefix_invalid"),
        ("example.com/", "empty_name"),
        (long_name.as_str(), "name_too_long"),
        ("cantendwithadash-", "name_invalid"),
        ("only/one/slash", "too_many_slashes"),
    ];
    for (key, name) in cases {
        let err = validate_label_key(key).unwrap_err();
        assert!(err.contains(&template(name)), "{key}: {err}");
    }
    let err = validate_label_value(&"a".repeat(64)).unwrap_err();
    assert!(err.contains("must be no more than 63 characters"), "{err}");
    let err = validate_label_value("-a").unwrap_err();
    assert!(
        err.contains("a valid label must be an empty string or consist of"),
        "{err}"
    );
    let err = validate_label_key(&format!("{}/a", "a".repeat(254))).unwrap_err();
    assert!(
        err.contains("prefix part must be no more than 253 characters"),
        "{err}"
    );
}

fn effect_of(name: &str) -> TaintEffect {
    TaintEffect::ALL
        .into_iter()
        .find(|e| e.as_str() == name)
        .unwrap_or_else(|| panic!("unknown effect {name}"))
}

#[test]
fn valid_taints() {
    let v = vectors();
    let cases = v["examples"]["taint_valid"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let spec = case["spec"].as_str().unwrap();
        let got = parse_taint_list(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        // `null` is upstream's "no taints".
        let want: Vec<(&str, &str, TaintEffect)> = case["taints"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|t| {
                        (
                            t["key"].as_str().unwrap(),
                            t["value"].as_str().unwrap(),
                            effect_of(t["effect"].as_str().unwrap()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Upstream's value is a string where "" means none; ours is an Option
        // that is never Some("").
        let got: Vec<(&str, &str, TaintEffect)> = got
            .iter()
            .map(|t| {
                assert_ne!(t.value.as_deref(), Some(""), "{spec}");
                (t.key.as_str(), t.value.as_deref().unwrap_or(""), t.effect)
            })
            .collect();
        assert_eq!(got, want, "{spec}");
    }
}

#[test]
fn invalid_taints() {
    let v = vectors();
    let cases = v["examples"]["taint_invalid"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let spec = case["spec"].as_str().unwrap();
        let why = case["why"].as_str().unwrap();
        let err = parse_taint_list(spec).expect_err(spec);
        assert!(err.contains("invalid taint"), "{spec}: {err}");
        // "key=value": upstream reads the whole thing as a key and fails on
        // it; we fail earlier and say the effect is missing.
        if why.starts_with("no effect") {
            assert!(err.contains("no effect"), "{spec}: {err}");
        }
        if why.contains("unsupported") {
            assert!(err.contains("unsupported taint effect"), "{spec}: {err}");
        }
    }
}

#[test]
fn taint_error_wording() {
    let err = parse_taint_list("key=value:NoOp").unwrap_err();
    assert!(
        err.starts_with("invalid taint effect: NoOp, unsupported taint effect"),
        "{err}"
    );
    let err = parse_taint_list("a=b=c:NoSchedule").unwrap_err();
    assert!(
        err.starts_with("invalid taint spec: a=b=c:NoSchedule"),
        "{err}"
    );
    // Upstream checks the effect before the shape.
    let err = parse_taint_list("a=b=c:Bad").unwrap_err();
    assert!(err.starts_with("invalid taint effect: Bad"), "{err}");
    let err = parse_taint_list("bad@key=value:NoSchedule").unwrap_err();
    assert!(err.contains("name part must consist of"), "{err}");
    // The effect is required, even where upstream's parser would take it.
    assert!(parse_taint_list("key").is_err());
    assert!(parse_taint_list("a:NoSchedule,,b:NoExecute").is_ok());
}

// ---- kubelet / NodeRestriction allow-list ----------------------------------

#[test]
fn allow_lists_match_the_vectors() {
    let v = vectors();
    let s = &v["kubelet_self_labels"];
    assert_eq!(
        strings(&s["kubelet_labels_allowed"]),
        KUBELET_LABELS_ALLOWED.to_vec()
    );
    assert_eq!(
        strings(&s["kubelet_label_namespaces_allowed"]),
        KUBELET_LABEL_NAMESPACES_ALLOWED.to_vec()
    );
}

#[test]
fn kubelet_self_label_cases() {
    let v = vectors();
    let cases = v["kubelet_self_labels"]["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let key = case["key"].as_str().unwrap();
        let allowed = case["noderestriction_allows_self_set"].as_bool().unwrap();
        let valid = case["valid_qualified_name"].as_bool().unwrap();
        // The kubelet's flag check and NodeRestriction agree on every case;
        // one function stands for both.
        assert_eq!(
            case["kubelet_node_labels_flag_accepts"].as_bool().unwrap(),
            allowed,
            "{key}"
        );
        assert_eq!(kubelet_may_self_set(key).is_allowed(), allowed, "{key}");
        assert_eq!(validate_label_key(key).is_ok(), valid, "{key}");
        if let SelfLabel::Forbidden { reason } = kubelet_may_self_set(key) {
            assert!(!reason.is_empty(), "{key}");
        }
    }
}

#[test]
fn every_allowed_label_is_allowed() {
    for key in KUBELET_LABELS_ALLOWED {
        assert_eq!(kubelet_may_self_set(key), SelfLabel::Allowed, "{key}");
    }
}

#[test]
fn kubelet_flag_error_wording() {
    let v = vectors();
    let example = v["kubelet_self_labels"]["kubelet_flag_error_example"]
        .as_str()
        .unwrap();
    // Everything after the list of keys, i.e. the allowed sets, verbatim.
    let tail = example.split_once('\n').unwrap().1;
    let SelfLabel::Forbidden { reason } = kubelet_may_self_set("app.kubernetes.io/name") else {
        panic!("allowed");
    };
    assert!(reason.contains(tail), "{reason}");
    assert!(
        reason.contains("unknown 'kubernetes.io' or 'k8s.io' label"),
        "{reason}"
    );
}

// ---- merging ------------------------------------------------------------------

#[test]
fn later_layers_win_and_keys_are_sorted() {
    let labels = merge_labels(&[
        (
            "ClusterInfo node.labels",
            pairs(&[
                ("zone", "a"),
                ("pool", "p1"),
                ("kubernetes.io/hostname", "h"),
            ]),
        ),
        ("--labels", pairs(&[("pool", "p2"), ("extra", "")])),
    ])
    .unwrap();
    let got: Vec<(&str, &str)> = labels.iter().collect();
    assert_eq!(
        got,
        [
            ("extra", ""),
            ("kubernetes.io/hostname", "h"),
            ("pool", "p2"),
            ("zone", "a")
        ]
    );
    assert_eq!(
        labels.to_flag_value(),
        "extra=,kubernetes.io/hostname=h,pool=p2,zone=a"
    );
    assert_eq!(labels.get("pool"), Some("p2"));
    assert_eq!(labels.len(), 4);
}

#[test]
fn duplicate_keys_in_one_layer_keep_the_last() {
    let list = parse_label_list("a=1, a=2").unwrap();
    assert_eq!(list, pairs(&[("a", "1"), ("a", "2")]));
    let labels = merge_labels(&[("--labels", list)]).unwrap();
    assert_eq!(labels.to_flag_value(), "a=2");
}

#[test]
fn a_later_layer_can_fix_a_bad_value() {
    let labels = merge_labels(&[
        ("ClusterInfo node.labels", pairs(&[("tier", "-bad-")])),
        ("--labels", pairs(&[("tier", "good")])),
    ])
    .unwrap();
    assert_eq!(labels.to_flag_value(), "tier=good");
}

#[test]
fn no_layers_no_labels() {
    let labels = merge_labels(&[]).unwrap();
    assert!(labels.is_empty());
    assert_eq!(labels.to_flag_value(), "");
    assert_eq!(labels, Labels::default());
    assert!(
        merge_labels(&[("--labels", parse_label_list("").unwrap())])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn node_role_label_says_who_applies_it_and_why() {
    let e = usage_error(merge_labels(&[(
        "--labels",
        pairs(&[("node-role.kubernetes.io/worker", "")]),
    )]));
    let msg = e.message();
    assert!(msg.contains("--labels"), "{msg}");
    assert!(msg.contains("node-role.kubernetes.io/worker"), "{msg}");
    assert!(msg.contains("NodeRestriction"), "{msg}");
    let hint = e.hint_text().unwrap();
    assert!(
        hint.contains("kubectl label node <node-name> node-role.kubernetes.io/worker="),
        "{hint}"
    );
    assert!(hint.contains("after the join"), "{hint}");
}

#[test]
fn errors_name_the_layer_the_winning_value_came_from() {
    let e = usage_error(merge_labels(&[
        (
            "ClusterInfo node.labels",
            pairs(&[("app.kubernetes.io/name", "x"), ("ok", "fine")]),
        ),
        ("--labels", pairs(&[("ok", "not fine!"), ("a", "-")])),
    ]));
    let msg = e.message();
    assert!(msg.starts_with("3 node labels cannot be used:"), "{msg}");
    assert!(
        msg.contains("ClusterInfo node.labels: label \"app.kubernetes.io/name\""),
        "{msg}"
    );
    assert!(
        msg.contains("--labels: label \"ok\": invalid value \"not fine!\""),
        "{msg}"
    );
    // Grouped by layer, lowest first: ClusterInfo's problem precedes "a"
    // from --labels, although "a" sorts first.
    let ci = msg.find("ClusterInfo node.labels:").unwrap();
    assert!(ci < msg.find("--labels: label \"a\"").unwrap(), "{msg}");
    let hint = e.hint_text().unwrap();
    assert!(
        hint.contains("remove it from ClusterInfo node.labels"),
        "{hint}"
    );
    assert!(hint.contains("e.g. example.com/name"), "{hint}");
    assert!(hint.contains("fix the value in --labels"), "{hint}");
}

#[test]
fn invalid_keys_and_reserved_prefixes_are_refused() {
    for key in [
        "bad key",
        "",
        "=",
        "a/b/c",
        "node-restriction.kubernetes.io/x",
        "k8s.io/foo",
    ] {
        let e = usage_error(merge_labels(&[("--labels", pairs(&[(key, "v")]))]));
        assert!(e.message().contains("--labels: label"), "{key}: {e}");
    }
    let e = usage_error(merge_labels(&[("--labels", pairs(&[("/x", "v")]))]));
    assert!(e.message().contains("prefix part must be non-empty"), "{e}");
}

#[test]
fn label_list_syntax() {
    assert_eq!(parse_label_list("").unwrap(), vec![]);
    assert_eq!(parse_label_list(" , ,").unwrap(), vec![]);
    assert_eq!(
        parse_label_list(" a = 1 ,b=,c=x=y").unwrap(),
        pairs(&[("a", "1"), ("b", ""), ("c", "x=y")])
    );
    let err = parse_label_list("a=1,worker").unwrap_err();
    assert!(err.contains("malformed pair \"worker\""), "{err}");
    assert!(err.contains("expect string=string"), "{err}");
}

#[test]
fn taints_merge_by_key_and_effect() {
    let merged = merge_taints(&[
        (
            "ClusterInfo node.taints",
            vec![
                taint("gpu", Some("true"), TaintEffect::NoSchedule),
                taint("gpu", Some("true"), TaintEffect::NoExecute),
                taint("spot", Some(""), TaintEffect::PreferNoSchedule),
            ],
        ),
        (
            "--taints",
            parse_taint_list("gpu=false:NoSchedule,dedicated=ml:NoSchedule").unwrap(),
        ),
    ])
    .unwrap();
    assert_eq!(
        merged,
        vec![
            taint("gpu", Some("false"), TaintEffect::NoSchedule),
            taint("gpu", Some("true"), TaintEffect::NoExecute),
            taint("spot", None, TaintEffect::PreferNoSchedule),
            taint("dedicated", Some("ml"), TaintEffect::NoSchedule),
        ]
    );
    assert_eq!(
        taints_to_flag_value(&merged),
        "gpu=false:NoSchedule,gpu=true:NoExecute,spot:PreferNoSchedule,dedicated=ml:NoSchedule"
    );
    assert!(merge_taints(&[]).unwrap().is_empty());
}

#[test]
fn taint_errors_name_key_and_layer() {
    let e = usage_error(merge_taints(&[(
        "ClusterInfo node.taints",
        vec![
            taint("bad key", None, TaintEffect::NoSchedule),
            taint("k", Some("bad value"), TaintEffect::NoExecute),
        ],
    )]));
    let msg = e.message();
    assert!(
        msg.contains("ClusterInfo node.taints: taint key \"bad key\""),
        "{msg}"
    );
    assert!(
        msg.contains("ClusterInfo node.taints: taint \"k\": invalid value \"bad value\""),
        "{msg}"
    );
}

#[test]
fn taint_flag_value_round_trips() {
    let spec = "a=b:NoSchedule,c:NoExecute,example.com/d=e:PreferNoSchedule";
    let taints = parse_taint_list(spec).unwrap();
    assert_eq!(taints_to_flag_value(&taints), spec);
    assert_eq!(parse_taint_list("k=:NoSchedule").unwrap()[0].value, None);
}

// ---- properties ----------------------------------------------------------------

/// Keys and values the kubelet accepts, built from the grammar itself.
fn valid_key() -> impl Strategy<Value = String> {
    (
        proptest::option::of("[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?(\\.[a-z0-9]{1,5}){0,3}"),
        "[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?",
    )
        .prop_map(|(prefix, name)| match prefix {
            Some(p) => format!("{p}/{name}"),
            None => name,
        })
}

fn valid_value() -> impl Strategy<Value = String> {
    "(([A-Za-z0-9][-A-Za-z0-9_.]{0,20})?[A-Za-z0-9])?"
}

fn any_effect() -> impl Strategy<Value = TaintEffect> {
    proptest::sample::select(TaintEffect::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic(s in "\\PC{0,80}") {
        let _ = parse_label_list(&s);
        let _ = parse_taint_list(&s);
        let _ = validate_label_key(&s);
        let _ = validate_label_value(&s);
        let _ = kubelet_may_self_set(&s);
        if let Ok(list) = parse_label_list(&s) {
            let _ = merge_labels(&[("--labels", list)]);
        }
    }

    #[test]
    fn label_shaped_input_never_panics(s in "[a-zA-Z0-9./=:, _-]{0,60}") {
        let _ = parse_taint_list(&s);
        if let Ok(list) = parse_label_list(&s) {
            let _ = merge_labels(&[("--labels", list)]);
        }
    }

    /// Whatever the parser returns, re-serialised as `k=v,...`, parses back
    /// to the same list.
    #[test]
    fn label_list_reparses(s in "[a-z =,\\t/.-]{0,40}") {
        if let Ok(list) = parse_label_list(&s) {
            let text: Vec<String> = list.iter().map(|(k, v)| format!("{k}={v}")).collect();
            prop_assert_eq!(parse_label_list(&text.join(",")).unwrap(), list);
        }
    }

    #[test]
    fn labels_flag_value_round_trips(
        list in proptest::collection::vec((valid_key(), valid_value()), 0..8)
    ) {
        let list: Vec<(String, String)> = list
            .into_iter()
            .filter(|(k, _)| kubelet_may_self_set(k).is_allowed())
            .collect();
        let labels = merge_labels(&[("--labels", list)]).unwrap();
        let back = parse_label_list(&labels.to_flag_value()).unwrap();
        let want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        prop_assert_eq!(&back, &want);
        prop_assert_eq!(merge_labels(&[("--labels", back)]).unwrap(), labels);
    }

    #[test]
    fn taints_flag_value_round_trips(
        list in proptest::collection::vec((valid_key(), valid_value(), any_effect()), 0..6)
    ) {
        let taints: Vec<Taint> = list
            .into_iter()
            .map(|(k, v, e)| Taint { key: k, value: Some(v).filter(|v| !v.is_empty()), effect: e })
            .collect();
        let merged = merge_taints(&[("--taints", taints)]).unwrap();
        let back = parse_taint_list(&taints_to_flag_value(&merged)).unwrap();
        prop_assert_eq!(back, merged);
    }
}
