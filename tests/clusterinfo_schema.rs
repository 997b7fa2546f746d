//! The parser (`attach_node::clusterinfo::parse`) and the published schema
//! (docs/clusterinfo.schema.json) must accept and reject exactly the same
//! documents: the control plane's authors validate against the schema, and
//! any gap between the two is a document that passes their tests and then
//! fails a join (or the reverse).
//!
//! Three layers: a hand-written corpus, one file per rule, that also pins
//! the field each error names; property tests that mutate a valid document
//! near the edges of every grammar; and a no-panic test on arbitrary bytes.

use std::path::PathBuf;
use std::sync::OnceLock;

use attach_node::clusterinfo::{FieldError, ROOT, parse};
use jsonschema::Validator;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value, json};

/// The secret half of the corpus token; no error may ever contain it.
const SECRET: &str = "0123456789abcdef";

/// The field each invalid corpus file must be refused for.
const EXPECTED_FIELDS: &[(&str, &str)] = &[
    ("not-json", "(document)"),
    ("top-level-array", "(document)"),
    ("top-level-string", "(document)"),
    ("top-level-null", "(document)"),
    ("missing-version", "version"),
    ("version-2", "version"),
    ("version-string", "version"),
    ("version-1.5", "version"),
    ("version-null", "version"),
    ("missing-endpoints", "apiServerEndpoints"),
    ("empty-endpoints", "apiServerEndpoints"),
    ("endpoints-string", "apiServerEndpoints"),
    ("endpoint-http", "apiServerEndpoints[0]"),
    ("endpoint-with-path", "apiServerEndpoints[0]"),
    ("endpoint-port-0", "apiServerEndpoints[1]"),
    ("endpoint-port-65536", "apiServerEndpoints[0]"),
    ("endpoint-port-leading-zero", "apiServerEndpoints[0]"),
    ("endpoint-no-port", "apiServerEndpoints[0]"),
    ("endpoint-bad-ipv4", "apiServerEndpoints[0]"),
    ("endpoint-short-ipv4", "apiServerEndpoints[0]"),
    ("endpoint-ipv6-unbracketed", "apiServerEndpoints[0]"),
    ("endpoint-bad-ipv6", "apiServerEndpoints[0]"),
    ("endpoint-label-hyphen", "apiServerEndpoints[0]"),
    ("endpoint-userinfo", "apiServerEndpoints[0]"),
    ("endpoint-number", "apiServerEndpoints[2]"),
    ("endpoint-trailing-newline", "apiServerEndpoints[0]"),
    ("missing-token", "bootstrapToken"),
    ("token-short-secret", "bootstrapToken"),
    ("token-uppercase", "bootstrapToken"),
    ("token-null", "bootstrapToken"),
    ("token-array", "bootstrapToken"),
    ("pin-md5", "caCertHashes[0]"),
    ("pin-63-hex", "caCertHashes[1]"),
    ("pin-bare-hex", "caCertHashes[0]"),
    ("pins-empty", "caCertHashes"),
    ("pins-string", "caCertHashes"),
    ("cluster-name-empty", "clusterName"),
    ("cluster-name-254", "clusterName"),
    ("cluster-name-number", "clusterName"),
    ("kubernetes-version-two-parts", "kubernetesVersion"),
    ("kubernetes-version-number", "kubernetesVersion"),
    ("cluster-dns-bad-ip", "clusterDNS[0]"),
    ("cluster-dns-leading-zero", "clusterDNS[1]"),
    ("cluster-dns-zone", "clusterDNS[0]"),
    ("cluster-dns-string", "clusterDNS"),
    ("cluster-dns-empty", "clusterDNS"),
    ("cluster-domain-uppercase", "clusterDomain"),
    ("cluster-domain-trailing-dot", "clusterDomain"),
    ("cluster-domain-too-long", "clusterDomain"),
    ("node-array", "node"),
    ("labels-array", "node.labels"),
    ("label-value-number", "node.labels[\"example.com/n\"]"),
    ("label-value-null", "node.labels[\"a\"]"),
    ("taints-object", "node.taints"),
    ("taint-bad-effect", "node.taints[0].effect"),
    ("taint-without-key", "node.taints[1].key"),
    ("taint-without-effect", "node.taints[0].effect"),
    ("taint-value-number", "node.taints[0].value"),
    ("taint-string", "node.taints[0]"),
    ("name-source-bad", "node.nameSource"),
    ("provider-id-empty", "node.providerID"),
    ("kubelet-config-array", "node.kubeletConfig"),
    ("runtime-string", "runtime"),
    ("sandbox-image-empty", "runtime.sandboxImage"),
    ("mirrors-array", "runtime.registryMirrors"),
    (
        "mirror-list-empty",
        "runtime.registryMirrors[\"docker.io\"]",
    ),
    (
        "mirror-ftp-url",
        "runtime.registryMirrors[\"docker.io\"][0]",
    ),
    ("mirror-key-path", "runtime.registryMirrors[\"../../etc\"]"),
    ("artifact-name-repeated", "artifacts[2].name"),
    ("artifact-name-control", "artifacts[0].name"),
    ("artifact-name-c1-control", "artifacts[0].name"),
    ("artifacts-object", "artifacts"),
    ("artifact-bad-sha256", "artifacts[0].sha256"),
    ("artifact-name-slash", "artifacts[0].name"),
    ("artifact-name-dotdot", "artifacts[0].name"),
    ("artifact-name-empty", "artifacts[0].name"),
    ("artifact-http-url", "artifacts[0].url"),
    ("artifact-missing-url", "artifacts[1].url"),
    ("autoscaler-string", "autoscaler"),
    ("report-url-http", "reportURL"),
    ("report-url-space", "reportURL"),
    ("report-url-number", "reportURL"),
    ("cluster-domain-array", "clusterDomain"),
    ("name-source-number", "node.nameSource"),
    ("provider-id-bool", "node.providerID"),
    ("sandbox-image-object", "runtime.sandboxImage"),
    ("artifact-name-number", "artifacts[0].name"),
    ("artifact-sha256-null", "artifacts[0].sha256"),
    ("artifact-array", "artifacts[0]"),
    ("taint-effect-number", "node.taints[0].effect"),
    ("taint-key-null", "node.taints[0].key"),
    (
        "mirror-url-number",
        "runtime.registryMirrors[\"docker.io\"][0]",
    ),
];

fn schema() -> &'static Validator {
    static SCHEMA: OnceLock<Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = include_str!("../docs/clusterinfo.schema.json");
        let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
        jsonschema::draft202012::options()
            .with_keyword("x-uniqueItemKey", |_, key, _| {
                let key = key.as_str().expect("x-uniqueItemKey names a key");
                Ok(Box::new(UniqueItemKey(key.to_owned())))
            })
            .build(&schema)
            .expect("the schema compiles as draft 2020-12")
    })
}

/// The schema's `x-uniqueItemKey: KEY`: no two items of the array have the
/// same value at KEY (artifact names). JSON Schema has no keyword for it, so
/// the schema states it with its own, and this is what the keyword means.
struct UniqueItemKey(String);

impl<'i> jsonschema::Keyword<'i> for UniqueItemKey {
    fn validate(&self, instance: &'i Value) -> Result<(), jsonschema::ValidationError<'i>> {
        if self.is_valid(instance) {
            Ok(())
        } else {
            Err(jsonschema::ValidationError::custom(format!(
                "two items have the same {}",
                self.0
            )))
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        let Some(items) = instance.as_array() else {
            return true;
        };
        let keys: Vec<&Value> = items.iter().filter_map(|i| i.get(&self.0)).collect();
        keys.iter().enumerate().all(|(i, k)| !keys[..i].contains(k))
    }
}

/// What a schema-validating control plane would conclude: the bytes must be
/// JSON at all before the schema can accept them.
fn schema_accepts(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok_and(|doc| schema().is_valid(&doc))
}

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/corpus/clusterinfo", kind]
        .iter()
        .collect();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn assert_no_secret(err: &FieldError) {
    let text = err.to_string();
    assert!(!text.contains(SECRET), "error leaks the token: {text}");
}

// ---- the schema itself -------------------------------------------------------

#[test]
fn schema_is_draft_2020_12_with_id_title_and_described_properties() {
    let schema: Value =
        serde_json::from_str(include_str!("../docs/clusterinfo.schema.json")).unwrap();
    assert!(jsonschema::draft202012::meta::is_valid(&schema));
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(schema["$id"].is_string() && schema["title"].is_string());
    let mut undocumented = Vec::new();
    find_undocumented(&schema, "", &mut undocumented);
    assert!(undocumented.is_empty(), "no description: {undocumented:?}");
}

/// The descriptions double as the field reference, so every property needs one.
fn find_undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, sub) in props {
                    if !sub.get("description").is_some_and(Value::is_string) {
                        out.push(format!("{path}/{name}"));
                    }
                }
            }
            for (key, sub) in map {
                find_undocumented(sub, &format!("{path}/{key}"), out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| find_undocumented(v, path, out)),
        _ => {}
    }
}

/// The host grammar appears in five of the schema's patterns. They are
/// composed from these fragments, so that a change to it is made once, here,
/// and the test below prints the patterns to paste into the schema.
mod grammar {
    const DEC_OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    const H16: &str = "[0-9A-Fa-f]{1,4}";
    const PORT: &str =
        "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    /// A path, query or fragment of visible ASCII.
    const TAIL: &str = "([/?#][!-~]*)?";

    fn ipv4() -> String {
        format!(r"({DEC_OCTET}\.){{3}}{DEC_OCTET}")
    }

    /// RFC 3986's IPv6address, which is what `Ipv6Addr::from_str` accepts.
    fn ipv6() -> String {
        let h = H16;
        let ls32 = format!("({h}:{h}|{})", ipv4());
        let forms = [
            format!("({h}:){{6}}{ls32}"),
            format!("::({h}:){{5}}{ls32}"),
            format!("({h})?::({h}:){{4}}{ls32}"),
            format!("(({h}:){{0,1}}{h})?::({h}:){{3}}{ls32}"),
            format!("(({h}:){{0,2}}{h})?::({h}:){{2}}{ls32}"),
            format!("(({h}:){{0,3}}{h})?::{h}:{ls32}"),
            format!("(({h}:){{0,4}}{h})?::{ls32}"),
            format!("(({h}:){{0,5}}{h})?::{h}"),
            format!("(({h}:){{0,6}}{h})?::"),
        ];
        format!("({})", forms.join("|"))
    }

    /// The last label starts with a letter, so no URL parser can read the
    /// host as a number.
    fn host() -> String {
        let label = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?";
        let dns = format!(r"({label}\.)*[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?");
        format!(r"({dns}|{}|\[{}\])", ipv4(), ipv6())
    }

    /// Where each composed pattern sits in the schema, and what it must be.
    pub fn patterns() -> [(&'static str, String); 6] {
        let host = host();
        let url = |schemes: &str| format!("^{schemes}://{host}(:{PORT})?{TAIL}$");
        [
            (
                "/properties/apiServerEndpoints/items/pattern",
                format!("^https://{host}:{PORT}$"),
            ),
            (
                "/properties/clusterDNS/items/pattern",
                format!("^({}|{})$", ipv4(), ipv6()),
            ),
            ("/properties/reportURL/pattern", url("https")),
            (
                "/properties/artifacts/items/properties/url/pattern",
                url("https"),
            ),
            (
                "/properties/runtime/properties/registryMirrors/additionalProperties/items/pattern",
                url("https?"),
            ),
            (
                "/properties/runtime/properties/registryMirrors/propertyNames/pattern",
                format!("^(_default|{host}(:{PORT})?)$"),
            ),
        ]
    }
}

#[test]
fn schema_patterns_share_one_host_grammar() {
    let schema: Value =
        serde_json::from_str(include_str!("../docs/clusterinfo.schema.json")).unwrap();
    for (at, want) in grammar::patterns() {
        let got = schema.pointer(at).and_then(Value::as_str);
        assert_eq!(got, Some(want.as_str()), "{at} should be\n{want}");
    }
}

// ---- the corpus --------------------------------------------------------------

#[test]
fn valid_corpus_is_accepted_by_parser_and_schema() {
    let files = corpus("valid");
    assert!(files.len() >= 8, "only {} valid files", files.len());
    for (name, bytes) in files {
        if let Err(e) = parse(&bytes) {
            panic!("valid/{name}.json: the parser refuses it: {e}");
        }
        assert!(
            schema_accepts(&bytes),
            "valid/{name}.json: the schema refuses it"
        );
    }
}

#[test]
fn invalid_corpus_is_refused_by_both_naming_the_field() {
    let files = corpus("invalid");
    assert!(files.len() >= 25, "only {} invalid files", files.len());
    for (name, bytes) in &files {
        let Some((_, field)) = EXPECTED_FIELDS.iter().find(|(n, _)| n == name) else {
            panic!("invalid/{name}.json has no entry in EXPECTED_FIELDS");
        };
        match parse(bytes) {
            Ok(_) => panic!("invalid/{name}.json: the parser accepts it"),
            Err(e) => {
                assert_eq!(e.field, *field, "invalid/{name}.json: {e}");
                assert_no_secret(&e);
            }
        }
        assert!(
            !schema_accepts(bytes),
            "invalid/{name}.json: the schema accepts it"
        );
    }
    for (name, _) in EXPECTED_FIELDS {
        assert!(
            files.iter().any(|(n, _)| n == name),
            "EXPECTED_FIELDS names invalid/{name}.json, which does not exist"
        );
    }
}

#[test]
fn token_error_is_exactly_the_documented_message() {
    let doc = br#"{"version":1,"apiServerEndpoints":["https://a.example:6443"],
                  "bootstrapToken":"abcdef.0123456789abcdeF"}"#;
    assert_eq!(
        parse(doc).unwrap_err().to_string(),
        "bootstrapToken: must have the form [a-z0-9]{6}.[a-z0-9]{16}"
    );
    assert_eq!(parse(b"").unwrap_err().field, ROOT);
}

// ---- property tests ----------------------------------------------------------

fn base_document() -> Value {
    serde_json::from_str(include_str!("corpus/clusterinfo/valid/full.json")).unwrap()
}

/// JSON pointers to every value in `doc`, the root included.
fn pointers(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, sub) in map {
                    walk(
                        sub,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(items) => {
                for (i, sub) in items.iter().enumerate() {
                    walk(sub, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let mut out = Vec::new();
    walk(doc, String::new(), &mut out);
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Drop(Index),
    Replace(Index, Value),
    /// Fields with a grammar get near-valid strings at the exact spot.
    Set(&'static str, Value),
    /// A new registry in `runtime.registryMirrors`, to exercise its keys.
    AddRegistry(String),
}

fn apply(doc: &mut Value, m: &Mutation, targets: &[String]) {
    match m {
        Mutation::Drop(i) => remove(doc, &targets[i.index(targets.len())]),
        Mutation::Replace(i, v) => set(doc, &targets[i.index(targets.len())], v.clone()),
        Mutation::Set(at, v) => set(doc, at, v.clone()),
        Mutation::AddRegistry(key) => {
            if let Some(Value::Object(map)) = doc.pointer_mut("/runtime/registryMirrors") {
                map.insert(key.clone(), json!(["https://mirror.example.com"]));
            }
        }
    }
}

/// Earlier mutations may have removed the target; then there is nothing to do.
fn set(doc: &mut Value, at: &str, v: Value) {
    if let Some(slot) = doc.pointer_mut(at) {
        *slot = v;
    }
}

fn remove(doc: &mut Value, at: &str) {
    let Some((parent, last)) = at.rsplit_once('/') else {
        return;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&key);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = key.parse::<usize>()
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-2i64..4).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        select(vec![0.5, 1.0, 1.5, -0.0, 1e300]).prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        Just(json!("")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn h16_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => "[0-9a-fA-F]{1,4}",
        1 => "[0-9a-fA-F]{0,6}",
        1 => "[0-9a-gA-G.%]{1,3}",
    ]
}

fn octet_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => (0u16..=255).prop_map(|n| n.to_string()),
        1 => (256u16..1000).prop_map(|n| n.to_string()),
        1 => "0[0-9]{1,2}",
        1 => "[0-9a ]{0,4}",
    ]
}

fn ipv4_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(octet_ish(), 4..=4),
        1 => prop::collection::vec(octet_ish(), 1..=6),
    ]
    .prop_map(|octets| octets.join("."))
}

/// Groups, an optional `::` and an optional IPv4 tail, in the counts around
/// the valid ones (a full address has 8 groups, or 6 and an IPv4).
fn ipv6_ish() -> impl Strategy<Value = String> {
    let shaped = prop::bool::weighted(0.3).prop_flat_map(|v4| {
        let full = if v4 { 6 } else { 8 };
        (
            prop::collection::vec(h16_ish(), 0..=full),
            any::<Index>(),
            prop::bool::weighted(0.8),
            if v4 {
                ipv4_ish().prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            },
        )
            .prop_map(move |(groups, at, compress, v4)| {
                // A full address needs no gap; a short one needs exactly one.
                let gap = (groups.len() < full || !compress).then_some(at);
                ipv6_text(&groups, gap, v4, "")
            })
    });
    let wild = (
        prop::collection::vec(h16_ish(), 0..=9),
        any::<Option<Index>>(),
        prop::option::weighted(0.3, ipv4_ish()),
        select(vec!["", ":", "%eth0", " "]),
    )
        .prop_map(|(groups, gap, v4, edge)| ipv6_text(&groups, gap, v4, edge));
    prop_oneof![3 => shaped, 2 => wild]
}

fn ipv6_text(groups: &[String], gap: Option<Index>, v4: Option<String>, edge: &str) -> String {
    let mut s = match gap {
        Some(i) => {
            let k = i.index(groups.len() + 1);
            format!("{}::{}", groups[..k].join(":"), groups[k..].join(":"))
        }
        None => groups.join(":"),
    };
    if let Some(v4) = v4 {
        if !(s.is_empty() || s.ends_with(':')) {
            s.push(':');
        }
        s.push_str(&v4);
    }
    if edge == ":" {
        s.insert(0, ':');
    } else {
        s.push_str(edge);
    }
    s
}

fn ip_ish() -> impl Strategy<Value = String> {
    prop_oneof![ipv4_ish(), ipv6_ish()]
}

fn host_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]([a-z0-9-]{0,3}[a-z0-9])?(\\.[a-zA-Z][a-z0-9]{0,3}){0,2}",
        3 => "[a-zA-Z0-9-]{1,4}(\\.[a-zA-Z0-9-]{0,4}){0,3}",
        1 => "(0x[0-9a-f]{1,2}|[0-9]{1,3})(\\.[0-9a-z]{1,3}){0,2}",
        2 => ipv4_ish(),
        2 => ipv6_ish().prop_map(|ip| format!("[{ip}]")),
        1 => ipv6_ish(),
        1 => "[ -~]{0,6}",
        1 => "[a-z]{1,3}[_@é][a-z]{0,3}",
    ]
}

fn port_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        6 => (1u32..=65535).prop_map(|p| format!(":{p}")),
        1 => (0u32..70000).prop_map(|p| format!(":{p}")),
        1 => select(vec![
            ":0", ":1", ":65535", ":65536", ":06443", ":+443", ": 443", ":", "::"
        ])
        .prop_map(str::to_owned),
        1 => ":[0-9]{0,6}",
    ]
}

fn tail_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(String::new()),
        1 => select(vec!["/", "?a=b", "#f", "/v2/?x=1#y", " ", "\n", "x", "/a b", "/é", "/%20", "@x"])
            .prop_map(str::to_owned),
        1 => "[/?#][ -~]{0,6}",
    ]
}

fn url_ish() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            12 => Just("https://"),
            2 => Just("http://"),
            1 => select(vec!["HTTPS://", "https:/", "ftp://", ""]),
        ],
        host_ish(),
        port_ish(),
        tail_ish(),
    )
        .prop_map(|(scheme, host, port, tail)| format!("{scheme}{host}{port}{tail}"))
}

fn token_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{5,7}\\.[a-z0-9]{15,17}",
        "[a-z0-9]{6}[.:_][a-zA-Z0-9]{16}",
        "[a-zA-Z0-9._]{20,25}",
    ]
}

fn pin_ish() -> impl Strategy<Value = String> {
    (
        select(vec![
            "sha256",
            "SHA256",
            "Sha256",
            "sha1",
            "sha256 ",
            "",
            "sha256:sha256",
        ]),
        select(vec![":", ":", "", "::"]),
        prop_oneof![
            3 => "[0-9a-fA-F]{64}",
            1 => "[0-9a-fA-Fg]{62,66}",
        ],
    )
        .prop_map(|(algo, colon, hex)| format!("{algo}{colon}{hex}"))
}

fn version_ish() -> impl Strategy<Value = Value> {
    prop_oneof![
        select(vec![
            json!(1),
            json!(1.0),
            json!(2),
            json!(0),
            json!(-1),
            json!(1.5),
            json!(0.999_999_999_999_999_9),
            json!("1"),
            json!(true),
            json!([1]),
        ]),
        any_json(),
    ]
}

fn text_of_length() -> impl Strategy<Value = String> {
    (
        prop_oneof![0usize..3, 250usize..256],
        select(vec!['a', 'é', '😀']),
    )
        .prop_map(|(n, c)| std::iter::repeat_n(c, n).collect())
}

fn domain_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]([a-z0-9-]{0,3}[a-z0-9])?(\\.[a-z0-9-]{1,4}){0,3}",
        "[a-zA-Z0-9.-]{0,10}",
        (120usize..130).prop_map(|n| format!("{}.{}", "a".repeat(n), "b".repeat(n))),
    ]
}

fn kubernetes_version_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        "v?[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}([-+_ ][0-9A-Za-z.+_-]{0,4})?",
        "v?[0-9]{0,2}(\\.[0-9]{0,2}){0,3}([-+_ ][0-9A-Za-z.+_-]{0,4})?",
    ]
}

fn hex64_ish() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[0-9a-fA-F]{64}", 1 => "[0-9a-fA-Fg]{62,66}"]
}

fn near_valid() -> impl Strategy<Value = Mutation> {
    let s = |at: &'static str, st: BoxedStrategy<String>| {
        st.prop_map(move |v| Mutation::Set(at, Value::from(v)))
    };
    prop_oneof![
        s("/apiServerEndpoints/0", url_ish().boxed()),
        s("/apiServerEndpoints/2", url_ish().boxed()),
        s("/bootstrapToken", token_ish().boxed()),
        s("/caCertHashes/0", pin_ish().boxed()),
        version_ish().prop_map(|v| Mutation::Set("/version", v)),
        s("/clusterDNS/0", ip_ish().boxed()),
        s("/clusterName", text_of_length().boxed()),
        s("/clusterDomain", domain_ish().boxed()),
        s("/kubernetesVersion", kubernetes_version_ish().boxed()),
        s("/reportURL", url_ish().boxed()),
        s("/artifacts/0/url", url_ish().boxed()),
        s("/artifacts/0/sha256", hex64_ish().boxed()),
        s("/artifacts/0/name", "[a-z./\\x00]{0,3}".boxed()),
        s("/node/taints/1/key", "[ -~]{0,3}".boxed()),
        s("/runtime/registryMirrors/docker.io/0", url_ish().boxed()),
        s("/runtime/sandboxImage", "[a-z]{0,2}".boxed()),
        s("/node/providerID", "[a-z]{0,2}".boxed()),
        s(
            "/node/nameSource",
            select(vec![
                "hostname",
                "instance-id",
                "private-ip",
                "Hostname",
                "",
                "ip"
            ])
            .prop_map(str::to_owned)
            .boxed()
        ),
        s(
            "/node/taints/0/effect",
            select(vec![
                "NoSchedule",
                "PreferNoSchedule",
                "NoExecute",
                "noschedule",
                ""
            ])
            .prop_map(str::to_owned)
            .boxed()
        ),
        prop_oneof![
            (host_ish(), port_ish(), tail_ish()).prop_map(|(h, p, t)| format!("{h}{p}{t}")),
            select(vec!["_default", "_DEFAULT", "", "..", "a/b"]).prop_map(str::to_owned),
        ]
        .prop_map(Mutation::AddRegistry),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Drop),
        2 => (any::<Index>(), any_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        5 => near_valid(),
    ]
}

fn mutated_document() -> impl Strategy<Value = Value> {
    prop::collection::vec(mutation(), 1..4).prop_map(|ms| {
        let mut doc = base_document();
        let targets = pointers(&doc);
        for m in &ms {
            apply(&mut doc, m, &targets);
        }
        doc
    })
}

fn check_parity(bytes: &[u8]) -> Result<(), TestCaseError> {
    let parsed = parse(bytes);
    let schema_ok = schema_accepts(bytes);
    prop_assert_eq!(
        parsed.is_ok(),
        schema_ok,
        "parser says {:?}, schema says {}, for {}",
        parsed.as_ref().err(),
        schema_ok,
        String::from_utf8_lossy(bytes)
    );
    if let Err(e) = &parsed {
        prop_assert!(!e.to_string().contains(SECRET), "{}", e);
    }
    Ok(())
}

/// A document with one string replaced, for the grammar-focused tests.
fn with(at: &str, s: &str) -> Vec<u8> {
    let mut doc = base_document();
    *doc.pointer_mut(at).unwrap() = Value::from(s);
    serde_json::to_vec(&doc).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mutated_documents_agree(doc in mutated_document()) {
        check_parity(&serde_json::to_vec(&doc).unwrap())?;
    }

    #[test]
    fn single_field_edits_agree(m in near_valid()) {
        let mut doc = base_document();
        let targets = pointers(&doc);
        apply(&mut doc, &m, &targets);
        check_parity(&serde_json::to_vec(&doc).unwrap())?;
    }

    #[test]
    fn ip_addresses_agree(ip in ip_ish()) {
        check_parity(&with("/clusterDNS/0", &ip))?;
        // The parser's rule is std's; the schema's pattern must be the same set.
        let std_ok = ip.parse::<std::net::IpAddr>().is_ok();
        prop_assert_eq!(parse(&with("/clusterDNS/0", &ip)).is_ok(), std_ok);
    }

    #[test]
    fn endpoints_agree(url in url_ish()) {
        check_parity(&with("/apiServerEndpoints/0", &url))?;
    }

    #[test]
    fn urls_agree(url in url_ish()) {
        check_parity(&with("/reportURL", &url))?;
        check_parity(&with("/runtime/registryMirrors/docker.io/0", &url))?;
    }

    #[test]
    fn mutated_bytes_agree_and_never_panic(
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 1..6)
    ) {
        let mut bytes = serde_json::to_vec(&base_document()).unwrap();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        check_parity(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }
}
