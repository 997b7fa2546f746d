//! Node labels and taints: parsing and validation, judged the way the
//! kubelet's flag validation and the NodeRestriction admission plugin judge
//! them.
//!
//! Why this is strict: the kubelet validates `--node-labels` before it does
//! anything else and refuses to start on a single bad label, and the API
//! server rejects a Node whose labels NodeRestriction forbids. Either failure
//! shows up minutes later as "the node never registered". Checking here turns
//! it into an immediate usage error (exit 2) that names the label, the layer
//! it came from and the fix.
//!
//! The character classes are written by hand (no regex dependency); each
//! function names the upstream regex it stands for. Lengths are in bytes, as
//! Go's `len` counts them, and anything outside ASCII fails the classes.
//! Error texts keep the upstream wording (apimachinery's `IsQualifiedName`,
//! `IsValidLabelValue`, the kubelet's taint parser) so that they can be
//! searched for.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::clusterinfo::{Taint, TaintEffect};
use crate::error::Error;
use crate::names::{SUBDOMAIN_MAX, is_dns1123_subdomain_shaped};

/// Labels the kubelet may set on itself outside its namespaces
/// (k8s.io/kubelet `kubeletLabels`).
pub const KUBELET_LABELS_ALLOWED: [&str; 11] = [
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// Namespaces (and their subdomains) the kubelet may set labels in
/// (k8s.io/kubelet `kubeletLabelNamespaces`).
pub const KUBELET_LABEL_NAMESPACES_ALLOWED: [&str; 2] =
    ["kubelet.kubernetes.io", "node.kubernetes.io"];

/// The label of a node a cluster autoscaler manages (attach_node.sh's
/// `--ess`, ClusterInfo's `autoscaler`), as ACK puts it on elastic nodes:
/// coredns and similar workloads keep off the nodes that carry it. A key
/// without a prefix, so in no kubernetes.io namespace: a kubelet may set it
/// on itself.
pub const AUTOSCALER_LABEL: (&str, &str) = ("k8s.aliyun.com", "true");

/// Reserved for labels only administrators set, so that workloads can
/// select nodes by them and trust the answer.
const NODE_RESTRICTION_NAMESPACE: &str = "node-restriction.kubernetes.io";
const NODE_ROLE_NAMESPACE: &str = "node-role.kubernetes.io";
/// Namespaces owned by the Kubernetes project: a kubelet may not invent
/// labels in them.
const KUBERNETES_NAMESPACES: [&str; 2] = ["kubernetes.io", "k8s.io"];

const NAME_MAX: usize = 63;
const VALUE_MAX: usize = 63;

// Upstream message bodies, verbatim (including the double spaces that Go's
// RegexError leaves after each example).
const NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start \
     and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex \
     used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
     characters, '-' or '.', and must start and end with an alphanumeric character (e.g. \
     'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. \
     'MyValue',  or 'my_value',  or '12345', regex used for validation is \
     '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

const KEY_RULES: &str = "a label key is [prefix/]name: prefix a lowercase DNS subdomain of at \
     most 253 characters, name at most 63 characters of A-Z a-z 0-9 - _ . that starts and ends \
     with a letter or digit";
const VALUE_RULES: &str = "a label value is empty, or at most 63 characters of A-Z a-z 0-9 - _ . \
     that starts and ends with a letter or digit";

// ---- character classes ------------------------------------------------------

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`: a label key's name part, and a
/// non-empty label value.
fn is_name_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

// ---- upstream validators (error lists, as apimachinery returns them) ---------

fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > SUBDOMAIN_MAX {
        errs.push(format!("must be no more than {SUBDOMAIN_MAX} characters"));
    }
    if !is_dns1123_subdomain_shaped(s) {
        errs.push(SUBDOMAIN_MSG.to_owned());
    }
    errs
}

/// apimachinery `IsQualifiedName`: same checks, same order, same texts.
fn qualified_name_errors(key: &str) -> Vec<String> {
    let (prefix, name) = match key.split_once('/') {
        None => (None, key),
        Some((_, rest)) if rest.contains('/') => {
            return vec![format!(
                "a valid label key {NAME_MSG} with an optional DNS subdomain prefix and '/' \
                 (e.g. 'example.com/MyName')"
            )];
        }
        Some((prefix, name)) => (Some(prefix), name),
    };
    let mut errs = Vec::new();
    match prefix {
        Some("") => errs.push("prefix part must be non-empty".to_owned()),
        Some(prefix) => errs.extend(
            dns1123_subdomain_errors(prefix)
                .into_iter()
                .map(|e| format!("prefix part {e}")),
        ),
        None => {}
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > NAME_MAX {
        errs.push(format!(
            "name part must be no more than {NAME_MAX} characters"
        ));
    }
    // Upstream reports the regex even for an empty name; so do we.
    if !is_name_shaped(name) {
        errs.push(format!("name part {NAME_MSG}"));
    }
    errs
}

/// apimachinery `IsValidLabelValue`.
fn label_value_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > VALUE_MAX {
        errs.push(format!("must be no more than {VALUE_MAX} characters"));
    }
    if !(v.is_empty() || is_name_shaped(v)) {
        errs.push(VALUE_MSG.to_owned());
    }
    errs
}

fn joined(errs: Vec<String>) -> Result<(), String> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// A label key (also a taint key): a qualified name. The error is upstream's
/// list joined with `"; "`.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    joined(qualified_name_errors(key))
}

/// A label value (also a taint value): at most 63 characters, may be empty.
pub fn validate_label_value(v: &str) -> Result<(), String> {
    joined(label_value_errors(v))
}

// ---- what a kubelet may set on its own Node --------------------------------

/// Whether a kubelet may put a label on its own Node, at registration
/// (`--node-labels`) and through NodeRestriction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfLabel {
    Allowed,
    Forbidden { reason: String },
}

impl SelfLabel {
    pub fn is_allowed(&self) -> bool {
        matches!(self, SelfLabel::Allowed)
    }
}

/// Why a kubelet may not set a label; each kind has its own fix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    InvalidKey(String),
    ReservedForAdmins,
    NodeRole,
    KubernetesNamespace,
}

/// The part before the first `/` (upstream `getLabelNamespace`), if any.
fn namespace_of(key: &str) -> Option<&str> {
    key.split_once('/').map(|(ns, _)| ns)
}

/// `prefix` is `ns` or a subdomain of it. The dot matters:
/// `mykubernetes.io` is not in `kubernetes.io`.
fn in_namespace(prefix: &str, ns: &str) -> bool {
    prefix == ns
        || prefix
            .strip_suffix(ns)
            .is_some_and(|head| head.ends_with('.'))
}

/// k8s.io/kubelet `IsKubeletLabel`.
fn is_kubelet_label(key: &str, namespace: &str) -> bool {
    KUBELET_LABELS_ALLOWED.contains(&key)
        || KUBELET_LABEL_NAMESPACES_ALLOWED
            .iter()
            .any(|ns| in_namespace(namespace, ns))
}

fn self_label_refusal(key: &str) -> Option<Refusal> {
    // An invalid key is refused by both the kubelet and the API server before
    // any namespace rule applies; answering "allowed" for it would be a lie.
    if let Err(e) = validate_label_key(key) {
        return Some(Refusal::InvalidKey(e));
    }
    // No '/' means no namespace at all: even `node-role.kubernetes.io` alone
    // is an ordinary, allowed key.
    let namespace = namespace_of(key)?;
    if in_namespace(namespace, NODE_RESTRICTION_NAMESPACE) {
        return Some(Refusal::ReservedForAdmins);
    }
    let kubernetes = KUBERNETES_NAMESPACES
        .iter()
        .any(|ns| in_namespace(namespace, ns));
    if !kubernetes || is_kubelet_label(key, namespace) {
        return None;
    }
    if namespace == NODE_ROLE_NAMESPACE {
        Some(Refusal::NodeRole)
    } else {
        Some(Refusal::KubernetesNamespace)
    }
}

impl Refusal {
    fn reason(&self) -> String {
        match self {
            Refusal::InvalidKey(errs) => format!("not a valid label key: {errs}"),
            Refusal::ReservedForAdmins => format!(
                "the {NODE_RESTRICTION_NAMESPACE}/ prefix is reserved for labels that only \
                 administrators set, so that workloads can trust them: the NodeRestriction \
                 admission plugin rejects it from a kubelet, and the kubelet refuses to start \
                 with it in --node-labels"
            ),
            Refusal::NodeRole => format!(
                "a kubelet may not give its own Node a role: the NodeRestriction admission \
                 plugin rejects {NODE_ROLE_NAMESPACE}/* labels from a node's credentials (so a \
                 node cannot claim the workloads that select a role), and the kubelet refuses \
                 to start with one in --node-labels"
            ),
            Refusal::KubernetesNamespace => format!(
                "unknown 'kubernetes.io' or 'k8s.io' label: --node-labels in the \
                 'kubernetes.io' namespace must begin with an allowed prefix ({}) or be in the \
                 specifically allowed set ({}); the kubelet refuses to start otherwise, and the \
                 NodeRestriction admission plugin would reject it",
                KUBELET_LABEL_NAMESPACES_ALLOWED.join(", "),
                KUBELET_LABELS_ALLOWED.join(", ")
            ),
        }
    }

    fn hint(&self, layer: &str, key: &str, value: &str) -> String {
        let after_join = format!("kubectl label node <node-name> {key}={value}");
        match self {
            Refusal::InvalidKey(_) => format!("fix the key in {layer}: {KEY_RULES}"),
            Refusal::ReservedForAdmins => format!(
                "remove it from {layer}; an administrator applies it after the join: {after_join}"
            ),
            Refusal::NodeRole => format!(
                "remove it from {layer} and have the control plane apply it after the join: \
                 {after_join}"
            ),
            Refusal::KubernetesNamespace => {
                let name = key.rsplit('/').next().unwrap_or(key);
                format!(
                    "remove it from {layer}: use a prefix of your own (e.g. example.com/{name}) \
                     or one under node.kubernetes.io/, or have the control plane apply it after \
                     the join: {after_join}"
                )
            }
        }
    }
}

/// The kubelet `--node-labels` / NodeRestriction rule for one key. Keys in
/// the kubernetes.io and k8s.io namespaces are allowed only when listed in
/// [`KUBELET_LABELS_ALLOWED`] or under [`KUBELET_LABEL_NAMESPACES_ALLOWED`];
/// node-restriction.kubernetes.io is always forbidden; other keys are
/// allowed. An invalid key is forbidden, since neither would accept it.
pub fn kubelet_may_self_set(key: &str) -> SelfLabel {
    match self_label_refusal(key) {
        None => SelfLabel::Allowed,
        Some(refusal) => SelfLabel::Forbidden {
            reason: refusal.reason(),
        },
    }
}

// ---- list syntax ----------------------------------------------------------

/// The non-empty, trimmed items of a comma-separated list. The kubelet's map
/// flag skips empty items too; for taints (whose flag does not) the leniency
/// never reaches the kubelet, which always gets the canonical form back.
fn items(spec: &str) -> impl Iterator<Item = &str> {
    spec.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `k=v,k2=v2`, as the kubelet's `--node-labels` (and attach_node.sh's
/// `--labels`) reads it: items split at the first `=`, key and value trimmed,
/// `k=` an empty value. Only the syntax is checked here; [`merge_labels`]
/// validates, so that its errors can name the layer. Order and duplicates
/// are kept (the last one wins when merged, as in the kubelet).
pub fn parse_label_list(spec: &str) -> Result<Vec<(String, String)>, String> {
    items(spec)
        .map(|item| match item.split_once('=') {
            Some((k, v)) => Ok((k.trim().to_owned(), v.trim().to_owned())),
            None => Err(format!(
                "malformed pair {}, expect string=string: labels are key=value (k= for an empty \
                 value), several joined with ','",
                shown(item)
            )),
        })
        .collect()
}

/// `k=v:Effect,k2:Effect`, as the kubelet's `--register-with-taints` (and
/// attach_node.sh's `--taints`) reads it, with the same checks and errors as
/// upstream `parseTaint`, except that the effect is required: upstream takes
/// a bare `key`, and the Node API then rejects the empty effect.
pub fn parse_taint_list(spec: &str) -> Result<Vec<Taint>, String> {
    items(spec).map(parse_taint).collect()
}

fn parse_effect(s: &str) -> Result<TaintEffect, String> {
    TaintEffect::ALL
        .into_iter()
        .find(|e| e.as_str() == s)
        .ok_or_else(|| {
            format!(
                "invalid taint effect: {s}, unsupported taint effect (use NoSchedule, \
                 PreferNoSchedule or NoExecute)"
            )
        })
}

/// Upstream `parseTaint`, in its order: effect, then shape, value, key.
fn parse_taint(spec: &str) -> Result<Taint, String> {
    let bad = |why: String| format!("invalid taint spec: {spec}, {why}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (key_value, effect) = match parts[..] {
        [key_value, effect] => (key_value, parse_effect(effect)?),
        [_] => {
            return Err(bad(
                "no effect: write key[=value]:Effect with Effect one of NoSchedule, \
                 PreferNoSchedule or NoExecute"
                    .to_owned(),
            ));
        }
        _ => return Err(bad("more than one ':'".to_owned())),
    };
    let kv: Vec<&str> = key_value.split('=').collect();
    let (key, value) = match kv[..] {
        [key] => (key, None),
        [key, value] => (key, Some(value)),
        _ => return Err(bad("more than one '='".to_owned())),
    };
    if let Some(value) = value {
        validate_label_value(value).map_err(bad)?;
    }
    validate_label_key(key).map_err(bad)?;
    Ok(Taint {
        key: key.to_owned(),
        value: value.filter(|v| !v.is_empty()).map(str::to_owned),
        effect,
    })
}

// ---- merging and validating layers ------------------------------------------

/// A validated label set, sorted by key: every key and value valid, and every
/// key one the kubelet may set on itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// `k=v,k2=v2`, sorted, as the kubelet's `--node-labels` takes it. Valid
    /// keys and values hold neither `,` nor `=`, so no quoting is needed.
    pub fn to_flag_value(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}={v}");
        }
        out
    }
}

/// One offending label or taint: a line of the message and a hint.
struct Problem {
    line: String,
    hint: String,
}

/// One usage error listing every problem, so that a user fixes them all in
/// one go rather than one per run.
fn problems_error(what: &str, problems: Vec<Problem>) -> Error {
    let message = match &problems[..] {
        [one] => one.line.clone(),
        many => {
            let mut m = format!("{} {what} cannot be used:", many.len());
            for p in many {
                let _ = write!(m, "\n  {}", p.line);
            }
            m
        }
    };
    let mut hints: Vec<&str> = Vec::new();
    for p in &problems {
        if !hints.contains(&p.hint.as_str()) {
            hints.push(&p.hint);
        }
    }
    Error::usage(message).hint(hints.join("; "))
}

/// Shows user text in a message: quoted and escaped (a key may hold control
/// characters), and cut short (a value may be huge).
fn shown(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// Merges label layers, lowest precedence first (ClusterInfo `node.labels`,
/// then `--labels`); a later value wins per key. Only the merged result is
/// validated, so a later layer can correct a bad value from an earlier one;
/// each error names the layer that supplied the offending entry.
pub fn merge_labels(layers: &[(&str, Vec<(String, String)>)]) -> Result<Labels, Error> {
    // key -> (value, index of the layer it came from)
    let mut merged: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for (i, (_, pairs)) in layers.iter().enumerate() {
        for (k, v) in pairs {
            merged.insert(k, (v, i));
        }
    }
    let mut problems: Vec<(usize, Problem)> = merged
        .iter()
        .flat_map(|(&key, &(value, i))| {
            label_problems(layers[i].0, key, value)
                .into_iter()
                .map(move |p| (i, p))
        })
        .collect();
    // Grouped by layer, lowest first, and by key within one (the sort is
    // stable): one place to edit per group.
    problems.sort_by_key(|(i, _)| *i);
    let problems: Vec<Problem> = problems.into_iter().map(|(_, p)| p).collect();
    if !problems.is_empty() {
        return Err(problems_error("node labels", problems));
    }
    Ok(Labels(
        merged
            .into_iter()
            .map(|(k, (v, _))| (k.to_owned(), v.to_owned()))
            .collect(),
    ))
}

fn label_problems(layer: &str, key: &str, value: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(refusal) = self_label_refusal(key) {
        out.push(Problem {
            line: format!("{layer}: label {}: {}", shown(key), refusal.reason()),
            hint: refusal.hint(layer, key, value),
        });
    }
    if let Err(e) = validate_label_value(value) {
        out.push(Problem {
            line: format!(
                "{layer}: label {}: invalid value {}: {e}",
                shown(key),
                shown(value)
            ),
            hint: format!("fix the value in {layer}: {VALUE_RULES}"),
        });
    }
    out
}

/// Merges taint layers, lowest precedence first. The Node API wants taints
/// unique by (key, effect), so a later layer's taint replaces an earlier one
/// with the same pair, in place; otherwise order is kept. Keys must be
/// qualified names and values label values; an empty value becomes `None`,
/// which means the same to the API.
pub fn merge_taints(layers: &[(&str, Vec<Taint>)]) -> Result<Vec<Taint>, Error> {
    let mut merged: Vec<(Taint, &str)> = Vec::new();
    for (layer, taints) in layers {
        for t in taints {
            let t = Taint {
                value: t.value.clone().filter(|v| !v.is_empty()),
                ..t.clone()
            };
            match merged
                .iter_mut()
                .find(|(m, _)| m.key == t.key && m.effect == t.effect)
            {
                Some(slot) => *slot = (t, layer),
                None => merged.push((t, layer)),
            }
        }
    }
    let problems: Vec<Problem> = merged
        .iter()
        .flat_map(|(t, layer)| taint_problems(layer, t))
        .collect();
    if !problems.is_empty() {
        return Err(problems_error("node taints", problems));
    }
    Ok(merged.into_iter().map(|(t, _)| t).collect())
}

fn taint_problems(layer: &str, t: &Taint) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Err(e) = validate_label_key(&t.key) {
        out.push(Problem {
            line: format!("{layer}: taint key {}: {e}", shown(&t.key)),
            hint: format!("fix the taint in {layer}: {KEY_RULES} (taint keys follow label keys)"),
        });
    }
    if let Some(Err(e)) = t.value.as_deref().map(validate_label_value) {
        out.push(Problem {
            line: format!(
                "{layer}: taint {}: invalid value {}: {e}",
                shown(&t.key),
                shown(t.value.as_deref().unwrap_or_default())
            ),
            hint: format!(
                "fix the taint in {layer}: {VALUE_RULES} (taint values follow label values)"
            ),
        });
    }
    out
}

/// `k=v:Effect,k2:Effect`, as the kubelet's `--register-with-taints` takes
/// it (upstream `Taint.ToString`: no `=` when the value is empty).
pub fn taints_to_flag_value(taints: &[Taint]) -> String {
    let mut out = String::new();
    for (i, t) in taints.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&t.key);
        if let Some(v) = t.value.as_deref().filter(|v| !v.is_empty()) {
            out.push('=');
            out.push_str(v);
        }
        out.push(':');
        out.push_str(t.effect.as_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_match_needs_a_dot() {
        assert!(in_namespace("kubernetes.io", "kubernetes.io"));
        assert!(in_namespace("a.kubernetes.io", "kubernetes.io"));
        assert!(!in_namespace("mykubernetes.io", "kubernetes.io"));
        assert!(!in_namespace("kubernetes.io.evil", "kubernetes.io"));
        assert!(!in_namespace("", "kubernetes.io"));
    }

    #[test]
    fn character_classes_are_ascii_only() {
        assert!(is_name_shaped("a"));
        assert!(is_name_shaped("A-b_c.9"));
        assert!(!is_name_shaped(""));
        assert!(!is_name_shaped("a\n"));
        assert!(!is_name_shaped("ä"));
    }

    #[test]
    fn empty_name_reports_both_upstream_errors() {
        let errs = qualified_name_errors("example.com/");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0], "name part must be non-empty");
        assert!(errs[1].starts_with("name part must consist of"));
    }

    #[test]
    fn refusal_kinds() {
        assert_eq!(self_label_refusal("worker"), None);
        assert_eq!(
            self_label_refusal("node-role.kubernetes.io/worker"),
            Some(Refusal::NodeRole)
        );
        assert_eq!(
            self_label_refusal("x.node-restriction.kubernetes.io/a"),
            Some(Refusal::ReservedForAdmins)
        );
        assert_eq!(
            self_label_refusal("app.kubernetes.io/name"),
            Some(Refusal::KubernetesNamespace)
        );
        assert!(matches!(
            self_label_refusal("a/b/c"),
            Some(Refusal::InvalidKey(_))
        ));
    }

    #[test]
    fn a_kubelet_may_set_the_autoscaler_label_on_itself() {
        let (key, value) = AUTOSCALER_LABEL;
        assert!(kubelet_may_self_set(key).is_allowed());
        assert_eq!(validate_label_value(value), Ok(()));
        let merged =
            merge_labels(&[("autoscaler", vec![(key.to_owned(), value.to_owned())])]).unwrap();
        assert_eq!(merged.to_flag_value(), "k8s.aliyun.com=true");
    }

    #[test]
    fn shown_cuts_long_text() {
        let s = shown(&"x".repeat(500));
        assert!(s.len() < 100 && s.ends_with("..."), "{s}");
        assert_eq!(shown("a\u{1b}b"), "\"a\\u{1b}b\"");
    }
}
