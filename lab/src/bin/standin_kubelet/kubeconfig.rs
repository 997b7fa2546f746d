//! Reading kubeconfigs the way client-go resolves them (current-context,
//! then its cluster and user by name; relative file paths against the
//! kubeconfig's directory), and writing the one the kubelet writes after
//! its TLS bootstrap.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    clusters: Option<Vec<NamedCluster>>,
    #[serde(default)]
    users: Option<Vec<NamedUser>>,
    #[serde(default)]
    contexts: Option<Vec<NamedContext>>,
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct NamedCluster {
    #[serde(default)]
    name: String,
    cluster: Cluster,
}

#[derive(Default, Deserialize)]
struct Cluster {
    #[serde(default)]
    server: String,
    #[serde(rename = "certificate-authority", default)]
    certificate_authority: Option<String>,
    #[serde(rename = "certificate-authority-data", default)]
    certificate_authority_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure_skip_tls_verify: Option<bool>,
}

#[derive(Deserialize)]
struct NamedUser {
    #[serde(default)]
    name: String,
    user: User,
}

#[derive(Default, Deserialize)]
struct User {
    #[serde(default)]
    token: Option<String>,
    #[serde(rename = "tokenFile", default)]
    token_file: Option<String>,
    #[serde(rename = "client-certificate", default)]
    client_certificate: Option<String>,
    #[serde(rename = "client-certificate-data", default)]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-key", default)]
    client_key: Option<String>,
    #[serde(rename = "client-key-data", default)]
    client_key_data: Option<String>,
}

#[derive(Deserialize)]
struct NamedContext {
    #[serde(default)]
    name: String,
    context: Context,
}

#[derive(Default, Deserialize)]
struct Context {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    user: String,
}

/// Where the CA came from, to be written back the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaSource {
    Data,
    File(PathBuf),
}

/// A kubeconfig resolved to what a client needs.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub ca_source: CaSource,
    pub token: Option<String>,
    /// PEM; certificate chain and key may be the same file.
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    /// The file the client certificate came from, if any.
    pub client_cert_path: Option<PathBuf>,
}

fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn decode(field: &str, b64: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("{field}: not base64: {e}"))
}

/// Loads and resolves `path`.
pub fn load(path: &Path) -> Result<Resolved, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    resolve(&text, base).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn resolve(text: &str, base: &Path) -> Result<Resolved, String> {
    let raw: Raw = serde_saphyr::from_str(text).map_err(|e| format!("not a kubeconfig: {e}"))?;
    let current = raw.current_context.unwrap_or_default();
    let context = raw
        .contexts
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == current)
        .map(|c| c.context)
        .unwrap_or_default();
    let cluster = raw
        .clusters
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == context.cluster)
        .map(|c| c.cluster)
        .ok_or_else(|| format!("no cluster {:?} (context {current:?})", context.cluster))?;
    let user = raw
        .users
        .unwrap_or_default()
        .into_iter()
        .find(|u| u.name == context.user)
        .map(|u| u.user)
        .unwrap_or_default();

    if cluster.server.is_empty() {
        return Err("the cluster has no server".into());
    }
    if cluster.insecure_skip_tls_verify == Some(true) {
        return Err("insecure-skip-tls-verify is not supported by the stand-in".into());
    }
    let (ca_pem, ca_source) = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => (decode("certificate-authority-data", data)?, CaSource::Data),
        (None, Some(file)) => {
            let p = resolve_path(base, file);
            (read(&p)?, CaSource::File(p))
        }
        (None, None) => {
            return Err("the cluster has no certificate-authority(-data); the stand-in does not use system roots".into());
        }
    };
    let token = match (&user.token, &user.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            String::from_utf8_lossy(&read(&resolve_path(base, f))?)
                .trim()
                .to_owned(),
        ),
        (None, None) => None,
    };
    let (client_cert_pem, client_cert_path) =
        match (&user.client_certificate_data, &user.client_certificate) {
            (Some(d), _) => (Some(decode("client-certificate-data", d)?), None),
            (None, Some(f)) => {
                let p = resolve_path(base, f);
                (Some(read(&p)?), Some(p))
            }
            (None, None) => (None, None),
        };
    let client_key_pem = match (&user.client_key_data, &user.client_key) {
        (Some(d), _) => Some(decode("client-key-data", d)?),
        (None, Some(f)) => Some(read(&resolve_path(base, f))?),
        (None, None) => None,
    };
    Ok(Resolved {
        server: cluster.server,
        ca_pem,
        ca_source,
        token,
        client_cert_pem,
        client_key_pem,
        client_cert_path,
    })
}

/// The kubeconfig the kubelet writes after TLS bootstrap
/// (writeKubeconfigFromBootstrapping), in client-go's YAML: cluster
/// `default-cluster` from the bootstrap kubeconfig, user `default-auth` with
/// certificate and key both in `pem_path`, context `default-context`.
pub fn kubelet_kubeconfig(
    server: &str,
    ca_pem: &[u8],
    ca_source: &CaSource,
    pem_path: &Path,
) -> String {
    let ca = match ca_source {
        CaSource::Data => format!(
            "    certificate-authority-data: {}\n",
            STANDARD.encode(ca_pem)
        ),
        CaSource::File(p) => format!("    certificate-authority: {}\n", p.display()),
    };
    let pem = pem_path.display();
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n{ca}    server: {server}\n  name: default-cluster\ncontexts:\n- context:\n    cluster: default-cluster\n    namespace: default\n    user: default-auth\n  name: default-context\ncurrent-context: default-context\nkind: Config\nusers:\n- name: default-auth\n  user:\n    client-certificate: {pem}\n    client-key: {pem}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOTSTRAP: &str =
        include_str!("../../../../tests/vectors/kubeadm-join/bootstrap-kubelet.conf");
    const KUBELET: &str = include_str!("../../../../tests/vectors/kubeadm-join/kubelet.conf");

    #[test]
    fn reads_the_bootstrap_kubeconfig() {
        let r = resolve(BOOTSTRAP, Path::new("/etc/kubernetes")).unwrap();
        assert_eq!(r.server, "https://192.0.2.10:6443");
        assert!(r.ca_pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
        assert_eq!(r.ca_source, CaSource::Data);
        assert_eq!(r.token.as_deref(), Some("abcdef.0123456789abcdef"));
        assert!(r.client_cert_pem.is_none());
    }

    #[test]
    fn writes_what_the_kubelet_writes() {
        let b = resolve(BOOTSTRAP, Path::new("/")).unwrap();
        let got = kubelet_kubeconfig(
            &b.server,
            &b.ca_pem,
            &b.ca_source,
            Path::new("/var/lib/kubelet/pki/kubelet-client-current.pem"),
        );
        assert_eq!(got, KUBELET);
    }

    #[test]
    fn relative_paths_and_missing_pieces() {
        let text = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority: ca.crt\n    server: https://h:6443\n  name: c\ncontexts:\n- context:\n    cluster: c\n    user: u\n  name: x\ncurrent-context: x\nusers:\n- name: u\n  user:\n    client-certificate: pki/c.pem\n";
        let err = resolve(text, Path::new("/nonexistent")).unwrap_err();
        assert!(err.contains("/nonexistent/ca.crt"), "{err}");
        assert!(resolve("kind: Config\n", Path::new("/")).is_err());
    }
}
