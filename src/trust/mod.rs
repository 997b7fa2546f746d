//! From a bootstrap token to a trusted cluster CA (contract §3). Everything
//! here is a pure function of bytes, a token, pins and the time; the fetching
//! lives in `discovery`.

pub mod ca;
pub mod jws;
pub mod kubeconfig;
pub mod pin;

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::error::Error;
use crate::secret::BootstrapToken;
use ca::CaCert;
use kubeconfig::ServerUrl;
use pin::CaPin;

/// The cluster-info kubeconfig, verified: its JWS under our token, its CA,
/// and the pins.
#[derive(Debug, Clone)]
pub struct VerifiedClusterInfo {
    /// `data.kubeconfig` exactly as served, for the byte-equal re-fetch.
    pub kubeconfig: String,
    pub server: ServerUrl,
    /// The CA bundle's PEM text as found in the kubeconfig.
    pub ca_pem: Vec<u8>,
    /// The bundle's certificates; the first is the one reported.
    pub cas: Vec<CaCert>,
}

impl VerifiedClusterInfo {
    /// The certificate that answered for the cluster: the pinned one when
    /// pins were given, else the first.
    pub fn primary_ca(&self, pins: &[CaPin]) -> &CaCert {
        self.cas
            .iter()
            .find(|c| pins.contains(&c.pin))
            .unwrap_or(&self.cas[0])
    }
}

/// Why a cluster-info document was not trusted. `NoSignature` is one a
/// caller may wait out: the bootstrap signer adds signatures asynchronously;
/// a CA not valid yet ([`Distrust::is_clock_behind`]) is the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distrust {
    NotAConfigMap(String),
    NoKubeconfig,
    NoSignature { token_id: String },
    BadSignature,
    Kubeconfig(String),
    Ca(String),
    PinMismatch { found: Vec<CaPin> },
}

impl Distrust {
    /// A CA that is not valid yet: at early boot, this host's clock is
    /// usually behind until time synchronisation catches up.
    pub fn is_clock_behind(&self) -> bool {
        matches!(self, Distrust::Ca(why) if ca::is_clock_behind(why))
    }
}

impl From<Distrust> for Error {
    fn from(d: Distrust) -> Error {
        match d {
            Distrust::NotAConfigMap(why) => Error::trust(format!(
                "the API server's cluster-info answer is not a ConfigMap: {why}"
            )),
            Distrust::NoKubeconfig => Error::trust(
                "the cluster-info ConfigMap has no kubeconfig key: this API server is not set up for token bootstrapping",
            ),
            Distrust::NoSignature { token_id } => Error::trust(format!(
                "cluster-info carries no signature for token id {token_id:?}: the token is unknown to this cluster, expired, or not allowed to sign"
            ))
            .hint("create a new token on the control plane (kubeadm token create) or ask the control plane for a fresh openapi token"),
            Distrust::BadSignature => Error::trust(
                "the JWS signature of cluster-info does not match the bootstrap token: refusing to trust this API server",
            )
            .hint("check that the bootstrap token belongs to this cluster; a mismatch can also mean someone is answering in its place"),
            Distrust::Kubeconfig(why) => Error::trust(format!("the signed cluster-info kubeconfig is unusable: {why}")),
            Distrust::Ca(why) => Error::trust(format!("the cluster CA is not acceptable: {why}")),
            Distrust::PinMismatch { found } => {
                let found: Vec<String> = found.iter().map(|p| p.to_string()).collect();
                Error::trust(format!(
                    "the cluster CA matches none of the pinned hashes; cluster-info's CA is {}",
                    found.join(", ")
                ))
                .hint("check --ca-cert-hash (or the control plane's caCertHashes) against `openssl x509 -pubkey -in ca.crt | openssl pkey -pubin -outform DER | sha256sum`")
            }
        }
    }
}

#[derive(Deserialize)]
struct ConfigMap {
    kind: Option<String>,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

/// The key of the JWS for `token_id` in cluster-info's data.
pub fn jws_key(token_id: &str) -> String {
    format!("jws-kubeconfig-{token_id}")
}

/// The data of a cluster-info ConfigMap body.
pub fn configmap_data(body: &[u8]) -> Result<BTreeMap<String, String>, Distrust> {
    let cm: ConfigMap =
        serde_json::from_slice(body).map_err(|e| Distrust::NotAConfigMap(e.to_string()))?;
    match cm.kind.as_deref() {
        None | Some("ConfigMap") => Ok(cm.data),
        Some(other) => Err(Distrust::NotAConfigMap(format!("kind is {other:?}"))),
    }
}

/// `data.kubeconfig`, which must be there and non-empty.
pub fn kubeconfig_in(data: &BTreeMap<String, String>) -> Result<&str, Distrust> {
    data.get("kubeconfig")
        .map(String::as_str)
        .filter(|k| !k.is_empty())
        .ok_or(Distrust::NoKubeconfig)
}

/// Verifies a cluster-info ConfigMap body (contract §3 steps 2-4).
pub fn verify_cluster_info(
    body: &[u8],
    token: &BootstrapToken,
    pins: &[CaPin],
    now: OffsetDateTime,
) -> Result<VerifiedClusterInfo, Distrust> {
    let data = configmap_data(body)?;
    let kubeconfig = kubeconfig_in(&data)?;
    let signature = data
        .get(&jws_key(token.id()))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Distrust::NoSignature {
            token_id: token.id().to_owned(),
        })?;
    if !jws::verify(kubeconfig.as_bytes(), signature, token) {
        return Err(Distrust::BadSignature);
    }
    let cluster = kubeconfig::cluster_from_kubeconfig(kubeconfig).map_err(Distrust::Kubeconfig)?;
    let cas = ca::check_ca_bundle(&cluster.ca_pem, now).map_err(Distrust::Ca)?;
    if !pins.is_empty() && !cas.iter().any(|c| pins.contains(&c.pin)) {
        return Err(Distrust::PinMismatch {
            found: cas.iter().map(|c| c.pin).collect(),
        });
    }
    // With pins, only the pinned certificates are trusted from here on (TLS
    // roots, ca.crt, the kubelet's kubeconfig): an unpinned CA riding along
    // in the signed bundle would otherwise be trusted on the token alone.
    let (cas, ca_pem) = if pins.is_empty() || cas.iter().all(|c| pins.contains(&c.pin)) {
        (cas, cluster.ca_pem)
    } else {
        let pinned: Vec<CaCert> = cas.into_iter().filter(|c| pins.contains(&c.pin)).collect();
        let pem = ca::pem_of(&pinned);
        (pinned, pem)
    };
    Ok(VerifiedClusterInfo {
        kubeconfig: kubeconfig.to_owned(),
        server: cluster.server,
        ca_pem,
        cas,
    })
}
