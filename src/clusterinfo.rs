//! ClusterInfo v1 (contract §2): the control plane's answer to an openapi
//! token.
//!
//! The document comes from another program, so it is checked strictly and by
//! hand: walking a `serde_json::Value` lets every error name the exact field
//! (`node.taints[0].effect`), which serde's derive cannot do. Unknown fields
//! are ignored so that a newer control plane can talk to an older agent, and
//! an optional field set to `null` means the same as leaving it out.
//!
//! `docs/clusterinfo.schema.json` accepts exactly the documents that [`parse`]
//! accepts; `tests/clusterinfo_schema.rs` holds the two to that. A rule
//! changed here must change there in the same commit.
//!
//! Errors never quote a string from the document: the bootstrap token is a
//! secret, and one rule for every string is easier to keep than a list of
//! exceptions. The field path and the rule broken are enough to find it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

use crate::secret::BootstrapToken;
use crate::trust::pin::CaPin;

/// The only ClusterInfo version this agent understands.
pub const VERSION: u64 = 1;

/// Why a document was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// A JSON path such as `apiServerEndpoints[1]`, `node.taints[0].effect`
    /// or `runtime.registryMirrors["docker.io"]`; `(document)` for the root.
    pub field: String,
    pub problem: String,
}

impl FieldError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for FieldError {}

/// The field path of the document itself.
pub const ROOT: &str = "(document)";

/// A parsed ClusterInfo v1 document. Absent and `null` optional fields are
/// already resolved to their defaults; empty lists mean "not given".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub cluster_name: Option<String>,
    /// Never empty; tried in order.
    pub api_server_endpoints: Vec<Endpoint>,
    /// `Debug` shows the id only.
    pub bootstrap_token: BootstrapToken,
    /// Empty when no pins were given (an empty list is refused, so empty
    /// cannot mean "a list that nothing matches").
    pub ca_cert_hashes: Vec<CaPin>,
    /// As given, e.g. `v1.31.4` or `1.31.4-rc.1`.
    pub kubernetes_version: Option<String>,
    /// Empty when not given: the cluster's kubelet config stands.
    pub cluster_dns: Vec<IpAddr>,
    pub cluster_domain: Option<String>,
    pub node: NodeSpec,
    pub runtime: RuntimeSpec,
    pub artifacts: Vec<Artifact>,
    pub autoscaler: bool,
    pub report_url: Option<String>,
}

/// An API server endpoint, exactly `https://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    host: Host,
    port: u16,
}

/// The host part of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name as given (case is kept).
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    /// As it is written in a URL: IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

impl Endpoint {
    /// Parses `https://HOST:PORT` with nothing after the port. Public so that
    /// `--endpoint` follows the same rules as ClusterInfo.
    pub fn parse(raw: &str) -> Result<Self, String> {
        parse_endpoint(raw).map_err(str::to_owned)
    }

    /// The endpoint exactly as given.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// `node`: how the host becomes a Node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSpec {
    /// Not validated here: the join checks label syntax and NodeRestriction,
    /// for these and for `--labels` alike.
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub name_source: NameSource,
    pub provider_id: Option<String>,
    /// A partial KubeletConfiguration, merged over the cluster's.
    pub kubelet_config: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: TaintEffect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub const ALL: [TaintEffect; 3] = [
        TaintEffect::NoSchedule,
        TaintEffect::PreferNoSchedule,
        TaintEffect::NoExecute,
    ];

    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

impl fmt::Display for TaintEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the Node's name comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NameSource {
    #[default]
    Hostname,
    InstanceId,
    PrivateIp,
}

impl NameSource {
    pub const ALL: [NameSource; 3] = [
        NameSource::Hostname,
        NameSource::InstanceId,
        NameSource::PrivateIp,
    ];

    /// The ClusterInfo spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Hostname => "hostname",
            NameSource::InstanceId => "instance-id",
            NameSource::PrivateIp => "private-ip",
        }
    }
}

impl fmt::Display for NameSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `runtime`: container runtime settings. Keys this agent does not know are
/// ignored, like everywhere else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeSpec {
    pub sandbox_image: Option<String>,
    /// Registry (`host[:port]` or `_default`) to mirror URLs, each list
    /// non-empty.
    pub registry_mirrors: BTreeMap<String, Vec<String>>,
}

/// A file to download and install on a bare VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// A single path component: no `/`, not `.` or `..`.
    pub name: String,
    /// An `https://` URL.
    pub url: String,
    pub sha256: [u8; 32],
}

/// Parses and checks a ClusterInfo v1 document.
pub fn parse(bytes: &[u8]) -> Result<ClusterInfo, FieldError> {
    // serde_json's syntax errors give a position, never the text around it,
    // so a malformed document that holds the token cannot leak it here.
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| FieldError::new(ROOT, format!("is not valid JSON: {e}")))?;
    let doc = WipeToken(doc);
    let root = Fields::root(&doc.0)?;
    check_version(root.required("version")?.field())?;
    Ok(ClusterInfo {
        cluster_name: root.optional("clusterName", cluster_name)?,
        api_server_endpoints: endpoints(root.required("apiServerEndpoints")?.field())?,
        bootstrap_token: bootstrap_token(root.required("bootstrapToken")?.field())?,
        ca_cert_hashes: root
            .optional("caCertHashes", |f| non_empty_list(f, ca_pin))?
            .unwrap_or_default(),
        kubernetes_version: root.optional("kubernetesVersion", kubernetes_version)?,
        cluster_dns: root
            .optional("clusterDNS", |f| non_empty_list(f, ip_address))?
            .unwrap_or_default(),
        cluster_domain: root.optional("clusterDomain", cluster_domain)?,
        node: root.optional("node", node)?.unwrap_or_default(),
        runtime: root.optional("runtime", runtime)?.unwrap_or_default(),
        artifacts: root.optional("artifacts", artifacts)?.unwrap_or_default(),
        autoscaler: root.optional("autoscaler", boolean)?.unwrap_or(false),
        report_url: root.optional("reportURL", |f| https_url(f).map(str::to_owned))?,
    })
}

/// The parsed document, whose copy of the bootstrap token is wiped when it
/// is dropped, on success and on every error alike.
struct WipeToken(Value);

impl Drop for WipeToken {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(Value::String(s)) = self.0.get_mut("bootstrapToken") {
            s.zeroize();
        }
    }
}

// ---- walking the document ------------------------------------------------

/// A value and the path that names it in errors.
#[derive(Clone, Copy)]
struct Field<'a> {
    path: &'a str,
    value: &'a Value,
}

impl<'a> Field<'a> {
    fn error(&self, problem: impl Into<String>) -> FieldError {
        FieldError::new(self.path, problem)
    }

    fn wrong_type(&self, expected: &str) -> FieldError {
        self.error(format!("must be {expected}, found {}", kind(self.value)))
    }

    fn string(&self) -> Result<&'a str, FieldError> {
        self.value
            .as_str()
            .ok_or_else(|| self.wrong_type("a string"))
    }

    fn array(&self) -> Result<&'a [Value], FieldError> {
        match self.value {
            Value::Array(items) => Ok(items),
            _ => Err(self.wrong_type("an array")),
        }
    }

    fn object(&self) -> Result<&'a Map<String, Value>, FieldError> {
        self.value
            .as_object()
            .ok_or_else(|| self.wrong_type("an object"))
    }
}

/// The members of an object, with the object's path for naming them.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// Empty at the root, so top-level fields are named without a prefix.
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    fn root(doc: &'a Value) -> Result<Self, FieldError> {
        let map = Field {
            path: ROOT,
            value: doc,
        }
        .object()?;
        Ok(Fields { map, prefix: "" })
    }

    fn nested(f: Field<'a>) -> Result<Self, FieldError> {
        Ok(Fields {
            map: f.object()?,
            prefix: f.path,
        })
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// A required member. `null` is passed on, so that the type check names
    /// it ("found null") rather than calling it missing.
    fn required(&self, key: &str) -> Result<Member<'a>, FieldError> {
        let path = self.path(key);
        match self.map.get(key) {
            Some(value) => Ok(Member { path, value }),
            None => Err(FieldError::new(path, "is required")),
        }
    }

    /// Runs `check` on an optional member; absent and `null` are both `None`.
    fn optional<T>(
        &self,
        key: &str,
        check: impl FnOnce(Field<'_>) -> Result<T, FieldError>,
    ) -> Result<Option<T>, FieldError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let path = self.path(key);
                check(Field { path: &path, value }).map(Some)
            }
        }
    }
}

/// A member found by [`Fields::required`]. It owns its path, which a
/// [`Field`] only borrows.
struct Member<'a> {
    path: String,
    value: &'a Value,
}

impl Member<'_> {
    fn field(&self) -> Field<'_> {
        Field {
            path: &self.path,
            value: self.value,
        }
    }
}

/// Checks every element of an array, naming each as `path[i]`.
fn list<T>(
    f: Field<'_>,
    check: impl Fn(Field<'_>) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    f.array()?
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let path = format!("{}[{i}]", f.path);
            check(Field { path: &path, value })
        })
        .collect()
}

/// An empty list is refused where "given but empty" would silently mean
/// something different from "not given" (no pins at all, no DNS at all).
fn non_empty_list<T>(
    f: Field<'_>,
    check: impl Fn(Field<'_>) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    if f.array()?.is_empty() {
        return Err(f.error("must not be empty; leave the field out instead"));
    }
    list(f, check)
}

/// Checks every member of a string-keyed map, naming each as `path["key"]`
/// (keys such as `kubernetes.io/role` or `docker.io` contain dots).
fn map_of<T>(
    f: Field<'_>,
    check: impl Fn(&str, Field<'_>) -> Result<T, FieldError>,
) -> Result<BTreeMap<String, T>, FieldError> {
    f.object()?
        .iter()
        .map(|(key, value)| {
            let path = format!("{}[{}]", f.path, Value::from(key.as_str()));
            let checked = check(key, Field { path: &path, value })?;
            Ok((key.clone(), checked))
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---- top-level fields ----------------------------------------------------

fn check_version(f: Field<'_>) -> Result<(), FieldError> {
    let Value::Number(n) = f.value else {
        return Err(f.wrong_type("the number 1"));
    };
    // JSON Schema compares numbers by value, so `1.0` is `1` there; accepting
    // it here too is what keeps the schema and the parser in step.
    if n.as_f64() == Some(VERSION as f64) {
        return Ok(());
    }
    Err(f.error(format!(
        "must be {VERSION}, found {n}: this attach-node understands ClusterInfo version {VERSION} only"
    )))
}

fn cluster_name(f: Field<'_>) -> Result<String, FieldError> {
    let s = f.string()?;
    // Characters, not bytes: JSON Schema's maxLength counts code points.
    if !(1..=253).contains(&s.chars().count()) {
        return Err(f.error("must be 1 to 253 characters long"));
    }
    // Only ever shown (logs, status, the journal): made printable here, on
    // the way in, so no terminal escape or forged log line gets further.
    Ok(crate::error::printable(s, 253))
}

fn endpoints(f: Field<'_>) -> Result<Vec<Endpoint>, FieldError> {
    if f.array()?.is_empty() {
        return Err(f.error("must list at least one endpoint"));
    }
    list(f, |e| parse_endpoint(e.string()?).map_err(|p| e.error(p)))
}

fn bootstrap_token(f: Field<'_>) -> Result<BootstrapToken, FieldError> {
    // A fixed message, so nothing of the secret can appear whatever
    // BootstrapToken::parse chooses to say about its input.
    BootstrapToken::parse(f.string()?)
        .map_err(|_| f.error("must have the form [a-z0-9]{6}.[a-z0-9]{16}"))
}

fn ca_pin(f: Field<'_>) -> Result<CaPin, FieldError> {
    CaPin::parse(f.string()?).map_err(|_| f.error("must be sha256: followed by 64 hex digits"))
}

fn kubernetes_version(f: Field<'_>) -> Result<String, FieldError> {
    let s = f.string()?;
    if !is_kubernetes_version(s) {
        return Err(f.error(
            "must be a version such as v1.31.4 or 1.31.4-rc.1 \
             (v?MAJOR.MINOR.PATCH, then optionally - or + and [0-9A-Za-z.+-])",
        ));
    }
    Ok(s.to_owned())
}

fn ip_address(f: Field<'_>) -> Result<IpAddr, FieldError> {
    f.string()?
        .parse()
        .map_err(|_| f.error("must be an IPv4 or IPv6 address"))
}

fn cluster_domain(f: Field<'_>) -> Result<String, FieldError> {
    let s = f.string()?;
    // Bytes against the schema's characters: the same once the grammar holds,
    // since it allows ASCII only.
    if !crate::names::is_dns1123_subdomain(s) {
        return Err(f.error(
            "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', \
             at most 253 characters), e.g. cluster.local",
        ));
    }
    Ok(s.to_owned())
}

fn boolean(f: Field<'_>) -> Result<bool, FieldError> {
    f.value.as_bool().ok_or_else(|| f.wrong_type("a boolean"))
}

fn non_empty_string(f: Field<'_>) -> Result<String, FieldError> {
    let s = f.string()?;
    if s.is_empty() {
        return Err(f.error("must not be empty"));
    }
    Ok(s.to_owned())
}

fn https_url(f: Field<'_>) -> Result<&str, FieldError> {
    let s = f.string()?;
    check_url(s, &["https://"]).map_err(|p| f.error(p))?;
    Ok(s)
}

// ---- node ------------------------------------------------------------------

fn node(f: Field<'_>) -> Result<NodeSpec, FieldError> {
    let node = Fields::nested(f)?;
    Ok(NodeSpec {
        labels: node
            .optional("labels", |f| {
                map_of(f, |_, v| v.string().map(str::to_owned))
            })?
            .unwrap_or_default(),
        taints: node
            .optional("taints", |f| list(f, taint))?
            .unwrap_or_default(),
        name_source: node
            .optional("nameSource", name_source)?
            .unwrap_or_default(),
        provider_id: node.optional("providerID", non_empty_string)?,
        kubelet_config: node.optional("kubeletConfig", |f| f.object().cloned())?,
    })
}

fn taint(f: Field<'_>) -> Result<Taint, FieldError> {
    let t = Fields::nested(f)?;
    Ok(Taint {
        key: t.required("key")?.field().string()?.to_owned(),
        value: t.optional("value", |f| f.string().map(str::to_owned))?,
        effect: taint_effect(t.required("effect")?.field())?,
    })
}

fn taint_effect(f: Field<'_>) -> Result<TaintEffect, FieldError> {
    let s = f.string()?;
    TaintEffect::ALL
        .into_iter()
        .find(|e| e.as_str() == s)
        .ok_or_else(|| f.error("must be NoSchedule, PreferNoSchedule or NoExecute"))
}

fn name_source(f: Field<'_>) -> Result<NameSource, FieldError> {
    let s = f.string()?;
    NameSource::ALL
        .into_iter()
        .find(|n| n.as_str() == s)
        .ok_or_else(|| f.error("must be hostname, instance-id or private-ip"))
}

// ---- runtime ---------------------------------------------------------------

fn runtime(f: Field<'_>) -> Result<RuntimeSpec, FieldError> {
    let rt = Fields::nested(f)?;
    Ok(RuntimeSpec {
        sandbox_image: rt.optional("sandboxImage", non_empty_string)?,
        registry_mirrors: rt
            .optional("registryMirrors", |f| map_of(f, mirrors))?
            .unwrap_or_default(),
    })
}

/// A registry's mirrors. The registry name is checked too: it typically
/// becomes a directory name (containerd's `certs.d/<host>/`), and a host
/// grammar leaves no room for `/` or `..`.
fn mirrors(registry: &str, f: Field<'_>) -> Result<Vec<String>, FieldError> {
    if registry != "_default" {
        check_registry_host(registry).map_err(|p| f.error(p))?;
    }
    if f.array()?.is_empty() {
        return Err(f.error("must list at least one mirror URL"));
    }
    list(f, |m| {
        let s = m.string()?;
        check_url(s, &["https://", "http://"]).map_err(|p| m.error(p))?;
        Ok(s.to_owned())
    })
}

fn check_registry_host(registry: &str) -> Result<(), &'static str> {
    let (_, _, rest) = split_authority(registry)
        .map_err(|_| "is not a registry host: expected HOST or HOST:PORT, or _default")?;
    if !rest.is_empty() {
        return Err("is not a registry host: expected HOST or HOST:PORT, or _default");
    }
    Ok(())
}

// ---- artifacts -------------------------------------------------------------

/// Each artifact becomes `/usr/local/bin/<name>`: two of one name would
/// fight over one file, each run rewriting it twice.
fn artifacts(f: Field<'_>) -> Result<Vec<Artifact>, FieldError> {
    let all = list(f, artifact)?;
    for (i, a) in all.iter().enumerate() {
        if let Some(j) = all[..i].iter().position(|b| b.name == a.name) {
            return Err(FieldError::new(
                format!("{}[{i}].name", f.path),
                format!(
                    "repeats the name of {}[{j}]; artifact names must be unique",
                    f.path
                ),
            ));
        }
    }
    Ok(all)
}

fn artifact(f: Field<'_>) -> Result<Artifact, FieldError> {
    let a = Fields::nested(f)?;
    Ok(Artifact {
        name: artifact_name(a.required("name")?.field())?,
        url: https_url(a.required("url")?.field())?.to_owned(),
        sha256: sha256_hex(a.required("sha256")?.field())?,
    })
}

/// The name becomes a file name, so it must be one path component.
fn artifact_name(f: Field<'_>) -> Result<String, FieldError> {
    let s = f.string()?;
    // A file name, and shown in logs and status: control characters (NUL
    // among them) are refused rather than rewritten, which would install
    // the file under a name nobody asked for.
    if s.is_empty() || s == "." || s == ".." || s.contains(|c: char| c == '/' || c.is_control()) {
        return Err(
            f.error("must be a file name: not empty, not . or .., no / or control characters")
        );
    }
    Ok(s.to_owned())
}

fn sha256_hex(f: Field<'_>) -> Result<[u8; 32], FieldError> {
    decode_hex32(f.string()?).ok_or_else(|| f.error("must be 64 hex digits"))
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *byte = (hi << 4 | lo) as u8;
    }
    Some(out)
}

// ---- string grammars ---------------------------------------------------------
//
// Each of these has a `pattern` twin in docs/clusterinfo.schema.json.

fn parse_endpoint(raw: &str) -> Result<Endpoint, &'static str> {
    let rest = raw
        .strip_prefix("https://")
        .ok_or("must start with https://")?;
    let (host, port, tail) = split_authority(rest)?;
    let port = port.ok_or("must name a port: https://HOST:PORT")?;
    if !tail.is_empty() {
        return Err("must end with the port: https://HOST:PORT, no path, query or fragment");
    }
    Ok(Endpoint {
        url: raw.to_owned(),
        host,
        port,
    })
}

/// `scheme://HOST[:PORT]` then nothing, or a path, query or fragment of
/// visible ASCII. No user info: credentials in URLs end up in logs.
fn check_url(raw: &str, schemes: &[&str]) -> Result<(), &'static str> {
    let rest = schemes
        .iter()
        .find_map(|scheme| raw.strip_prefix(scheme))
        .ok_or(if schemes.len() == 1 {
            "must start with https://"
        } else {
            "must start with https:// or http://"
        })?;
    let (_, _, tail) = split_authority(rest)?;
    if !(tail.is_empty() || tail.starts_with(['/', '?', '#'])) {
        return Err("must have a path, query or fragment after the host, or nothing");
    }
    if !tail.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("may contain only visible ASCII characters; percent-encode the rest");
    }
    Ok(())
}

/// Splits `HOST[:PORT]rest`, where rest is whatever follows the authority.
fn split_authority(s: &str) -> Result<(Host, Option<u16>, &str), &'static str> {
    let (host, after) = match s.strip_prefix('[') {
        Some(inner) => {
            let (ip, after) = inner.split_once(']').ok_or("has a [ without its ]")?;
            let ip: Ipv6Addr = ip
                .parse()
                .map_err(|_| "has an invalid IPv6 address between [ and ]")?;
            (Host::Ip(IpAddr::V6(ip)), after)
        }
        None => {
            let end = s.find([':', '/', '?', '#']).unwrap_or(s.len());
            (host_name(&s[..end])?, &s[end..])
        }
    };
    let Some(port_and_rest) = after.strip_prefix(':') else {
        return Ok((host, None, after));
    };
    let end = port_and_rest
        .find(['/', '?', '#'])
        .unwrap_or(port_and_rest.len());
    let port = parse_port(&port_and_rest[..end])?;
    Ok((host, Some(port), &port_and_rest[end..]))
}

fn host_name(s: &str) -> Result<Host, &'static str> {
    if s.is_empty() {
        return Err("has no host");
    }
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    check_dns_name(s)?;
    Ok(Host::Name(s.to_owned()))
}

/// Labels of letters, digits and `-`, not starting or ending with `-`.
/// The last label must start with a letter (as every top-level domain does):
/// URL parsers read a host such as `10.0.0.256`, `1.2.3` or `0x7f.1` as an
/// IPv4 number, so such a host would either fail later or, worse, reach an
/// address nobody wrote.
fn check_dns_name(s: &str) -> Result<(), &'static str> {
    for label in s.split('.') {
        if label.is_empty() {
            return Err("has an empty host label (a leading, trailing or doubled dot)");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("host must be a DNS name, an IPv4 address or an IPv6 address in brackets");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a host label that starts or ends with -");
        }
    }
    let last = s.rsplit('.').next().unwrap_or(s);
    if !last.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(
            "has a host that is neither a valid IPv4 address nor a DNS name \
             whose last label starts with a letter",
        );
    }
    Ok(())
}

/// 1 to 65535 in plain decimal. `u16::from_str` alone would also take `+443`
/// and `0443`.
fn parse_port(s: &str) -> Result<u16, &'static str> {
    const PROBLEM: &str = "has an invalid port: expected 1 to 65535, without leading zeros";
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PROBLEM);
    }
    s.parse().map_err(|_| PROBLEM)
}

/// `^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$`
fn is_kubernetes_version(s: &str) -> bool {
    let s = s.strip_prefix('v').unwrap_or(s);
    let (core, suffix) = match s.find(['-', '+']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let numbers_ok = {
        let parts: Vec<&str> = core.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let suffix_ok = suffix.is_none_or(|x| {
        !x.is_empty()
            && x.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
    });
    numbers_ok && suffix_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "abcdef.0123456789abcdef";

    fn doc(extra: &str) -> Vec<u8> {
        format!(
            r#"{{"version":1,"apiServerEndpoints":["https://api.example.com:6443"],
               "bootstrapToken":"{TOKEN}"{extra}}}"#
        )
        .into_bytes()
    }

    fn err(extra: &str) -> FieldError {
        parse(&doc(extra)).unwrap_err()
    }

    #[test]
    fn minimal_document_gets_defaults() {
        let ci = parse(&doc("")).unwrap();
        assert_eq!(ci.cluster_name, None);
        assert_eq!(ci.bootstrap_token.id(), "abcdef");
        assert!(ci.ca_cert_hashes.is_empty());
        assert!(ci.cluster_dns.is_empty());
        assert_eq!(ci.node, NodeSpec::default());
        assert_eq!(ci.node.name_source, NameSource::Hostname);
        assert_eq!(ci.runtime, RuntimeSpec::default());
        assert!(ci.artifacts.is_empty());
        assert!(!ci.autoscaler);
        assert_eq!(ci.report_url, None);
    }

    #[test]
    fn null_means_absent() {
        let with_nulls = parse(&doc(
            r#","clusterName":null,"caCertHashes":null,"clusterDNS":null,
               "node":{"labels":null,"taints":null,"nameSource":null,"providerID":null,
                       "kubeletConfig":null},
               "runtime":{"sandboxImage":null,"registryMirrors":null},
               "artifacts":null,"autoscaler":null,"reportURL":null"#,
        ))
        .unwrap();
        assert_eq!(with_nulls, parse(&doc("")).unwrap());
    }

    #[test]
    fn endpoints_are_typed() {
        let ci = parse(
            br#"{"version":1,"bootstrapToken":"abcdef.0123456789abcdef","apiServerEndpoints":[
                "https://API.example.com:6443","https://10.0.0.1:443","https://[fd00::1]:65535"]}"#,
        )
        .unwrap();
        let eps = &ci.api_server_endpoints;
        assert_eq!(eps[0].host(), &Host::Name("API.example.com".into()));
        assert_eq!(eps[0].port(), 6443);
        assert_eq!(eps[0].as_str(), "https://API.example.com:6443");
        assert_eq!(eps[1].host(), &Host::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(eps[1].port(), 443);
        assert_eq!(eps[2].host(), &Host::Ip("fd00::1".parse().unwrap()));
        assert_eq!(eps[2].host().to_string(), "[fd00::1]");
        assert_eq!(eps[2].port(), 65535);
    }

    #[test]
    fn endpoint_parse_rejects_near_misses() {
        for bad in [
            "http://a.example:6443",
            "https://a.example",
            "https://a.example:6443/",
            "https://a.example:0",
            "https://a.example:065",
            "https://a.example:+443",
            "https://a.example:65536",
            "https://10.0.0.256:6443",
            "https://1.2.3:6443",
            "https://0x7f.1:6443",
            "https://::1:6443",
            "https://[::1:6443",
            "https://[::1]x:6443",
            "https://user@a.example:6443",
            "https://-a.example:6443",
            "https://a..example:6443",
            "HTTPS://a.example:6443",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert!(Endpoint::parse("https://localhost:1").is_ok());
    }

    #[test]
    fn full_node_runtime_and_artifacts() {
        let ci = parse(&doc(
            r#","node":{"labels":{"kubernetes.io/role":"w"},
                "taints":[{"key":"k","effect":"NoExecute"},{"key":"k2","value":"v","effect":"NoSchedule"}],
                "nameSource":"private-ip","providerID":"aws:///i-1","kubeletConfig":{"maxPods":50}},
               "runtime":{"sandboxImage":"pause:3.10","registryMirrors":{"_default":["http://m:5000"]},
                          "other":1},
               "artifacts":[{"name":"kubelet","url":"https://dl.example/kubelet?v=1",
                 "sha256":"00FF000000000000000000000000000000000000000000000000000000000001"}],
               "autoscaler":true,"clusterDNS":["10.96.0.10","fd00::a"],
               "kubernetesVersion":"v1.31.4+k3s1","clusterDomain":"cluster.local""#,
        ))
        .unwrap();
        assert_eq!(ci.node.labels["kubernetes.io/role"], "w");
        assert_eq!(ci.node.taints[0].value, None);
        assert_eq!(ci.node.taints[1].effect, TaintEffect::NoSchedule);
        assert_eq!(ci.node.name_source, NameSource::PrivateIp);
        assert_eq!(ci.node.kubelet_config.as_ref().unwrap()["maxPods"], 50);
        assert_eq!(ci.runtime.registry_mirrors["_default"], ["http://m:5000"]);
        assert_eq!(ci.artifacts[0].sha256[0], 0x00);
        assert_eq!(ci.artifacts[0].sha256[1], 0xff);
        assert_eq!(ci.artifacts[0].sha256[31], 0x01);
        assert!(ci.autoscaler);
        assert_eq!(ci.cluster_dns.len(), 2);
    }

    #[test]
    fn a_cluster_name_is_made_printable_on_the_way_in() {
        let doc = br#"{"version":1,"apiServerEndpoints":["https://a.example:6443"],
                       "bootstrapToken":"abcdef.0123456789abcdef",
                       "clusterName":"prod\u001b[2J\nFAKE\u0085 line"}"#;
        assert_eq!(
            parse(doc).unwrap().cluster_name.as_deref(),
            Some("prod [2J FAKE  line")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#","node":{"taints":[{"key":"k","effect":"Bad"}]}"#,
                "node.taints[0].effect",
            ),
            (
                r#","node":{"labels":{"a.b/c":1}}"#,
                r#"node.labels["a.b/c"]"#,
            ),
            (
                r#","runtime":{"registryMirrors":{"docker.io":["ftp://x"]}}"#,
                r#"runtime.registryMirrors["docker.io"][0]"#,
            ),
            (r#","caCertHashes":[]"#, "caCertHashes"),
            (
                r#","artifacts":[{"name":"a","url":"https://x"}]"#,
                "artifacts[0].sha256",
            ),
        ];
        for (extra, field) in cases {
            assert_eq!(err(extra).field, field, "{extra}");
        }
        let top = parse(b"[]").unwrap_err();
        assert_eq!(
            top.to_string(),
            "(document): must be an object, found an array"
        );
    }

    #[test]
    fn version_is_one_by_value() {
        for ok in ["1", "1.0", "1e0"] {
            let d = String::from_utf8(doc(""))
                .unwrap()
                .replace(r#""version":1"#, &format!(r#""version":{ok}"#));
            assert!(parse(d.as_bytes()).is_ok(), "{ok}");
        }
        for bad in ["2", "1.5", "\"1\"", "true", "null"] {
            let d = String::from_utf8(doc(""))
                .unwrap()
                .replace(r#""version":1"#, &format!(r#""version":{bad}"#));
            assert_eq!(parse(d.as_bytes()).unwrap_err().field, "version", "{bad}");
        }
    }

    #[test]
    fn token_errors_and_debug_keep_the_secret() {
        let bad = String::from_utf8(doc(""))
            .unwrap()
            .replace(TOKEN, "abcdef.0123456789ABCDEF");
        let e = parse(bad.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            e,
            "bootstrapToken: must have the form [a-z0-9]{6}.[a-z0-9]{16}"
        );
        let ci = parse(&doc("")).unwrap();
        assert!(!format!("{ci:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(deep.as_bytes()).unwrap_err().field, ROOT);
    }

    #[test]
    fn grammars() {
        for ok in [
            "1.2.3",
            "v1.31.4",
            "1.31.4-rc.1",
            "1.31.4+k3s1",
            "0.0.0-a+b.c-d",
        ] {
            assert!(is_kubernetes_version(ok), "{ok}");
        }
        for bad in [
            "1.2", "1.2.3.4", "v1.2.3-", "1.2.3_x", "vv1.2.3", "1..3", " 1.2.3",
        ] {
            assert!(!is_kubernetes_version(bad), "{bad}");
        }
    }
}
