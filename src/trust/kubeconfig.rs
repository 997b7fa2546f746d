//! Reading the kubeconfig inside cluster-info. It is parsed to find the
//! server and the CA, and never re-serialised: the JWS covers the bytes as
//! served.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// What discovery needs from the cluster-info kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEntry {
    /// The cluster's name in the kubeconfig (`""` in kubeadm's cluster-info).
    pub name: String,
    pub server: ServerUrl,
    /// The decoded `certificate-authority-data`: PEM text of one or more certificates.
    pub ca_pem: Vec<u8>,
}

/// An `https://host[:port]` URL with nothing after the authority but an
/// optional `/`. The host keeps its brackets when it is an IPv6 literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub host: String,
    pub port: u16,
}

impl ServerUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix("https://")
            .ok_or_else(|| format!("server {s:?} is not an https:// URL"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "server {s:?} must be https://host[:port] with no path or user info"
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("server {s:?} has no valid host and port"))?;
        Ok(ServerUrl {
            host: host.to_owned(),
            port: port.unwrap_or(443),
        })
    }

    /// The host without IPv6 brackets, as a TLS server name or an IP.
    pub fn bare_host(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }

    pub fn base_url(&self) -> String {
        format!("https://{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base_url())
    }
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let host = &authority[..=close];
        match &authority[close + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || !valid_host(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&n| n != 0)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// `[IPv6]`, or a name or IPv4 address of letters, digits, dots and dashes:
/// anything else no client could connect to, and is refused up front
/// instead of failing every attempt until the deadline.
fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
    }
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    clusters: Option<Vec<RawNamedCluster>>,
    #[serde(default)]
    contexts: Option<Vec<RawNamedContext>>,
    #[serde(default, rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct RawNamedCluster {
    #[serde(default)]
    name: Option<String>,
    cluster: RawCluster,
}

#[derive(Deserialize)]
struct RawCluster {
    #[serde(default)]
    server: Option<String>,
    #[serde(default, rename = "certificate-authority-data")]
    certificate_authority_data: Option<String>,
}

#[derive(Deserialize)]
struct RawNamedContext {
    name: String,
    context: RawContext,
}

#[derive(Deserialize)]
struct RawContext {
    #[serde(default)]
    cluster: Option<String>,
}

/// Bounds the YAML parser's work: a cluster-info kubeconfig is a few KiB.
const MAX_KUBECONFIG: usize = 256 * 1024;

/// Picks the cluster as kubeadm does (`GetClusterFromKubeConfig`): the
/// unnamed cluster if there is one, else the current context's; as a last
/// resort a kubeconfig with a single cluster uses that one.
pub fn cluster_from_kubeconfig(text: &str) -> Result<ClusterEntry, String> {
    if text.len() > MAX_KUBECONFIG {
        return Err(format!(
            "the kubeconfig is {} bytes, more than the {MAX_KUBECONFIG} allowed",
            text.len()
        ));
    }
    let raw: RawConfig = serde_saphyr::from_str(text)
        .map_err(|e| format!("the kubeconfig is not valid YAML: {e}"))?;
    let clusters = raw.clusters.unwrap_or_default();
    let name_of = |c: &RawNamedCluster| c.name.clone().unwrap_or_default();

    let chosen = clusters
        .iter()
        .find(|c| name_of(c).is_empty())
        .or_else(|| {
            let current = raw.current_context.as_deref().filter(|c| !c.is_empty())?;
            let ctx = raw.contexts.as_ref()?.iter().find(|c| c.name == current)?;
            let wanted = ctx.context.cluster.as_deref()?;
            clusters.iter().find(|c| name_of(c) == wanted)
        })
        .or(if clusters.len() == 1 {
            clusters.first()
        } else {
            None
        })
        .ok_or("the kubeconfig names no cluster (no unnamed cluster, no current context)")?;

    let server = chosen
        .cluster
        .server
        .as_deref()
        .ok_or("the kubeconfig's cluster has no server")?;
    let server = ServerUrl::parse(server)?;
    let data = chosen
        .cluster
        .certificate_authority_data
        .as_deref()
        .filter(|d| !d.is_empty())
        .ok_or("the kubeconfig's cluster has no certificate-authority-data")?;
    let ca_pem = STANDARD
        .decode(data.trim())
        .map_err(|e| format!("certificate-authority-data is not base64: {e}"))?;
    Ok(ClusterEntry {
        name: name_of(chosen),
        server,
        ca_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let ok = [
            ("https://192.0.2.10:6443", "192.0.2.10", 6443),
            ("https://127.0.0.1", "127.0.0.1", 443),
            ("https://[::1]:6443/", "[::1]", 6443),
            ("https://api.example.com:443", "api.example.com", 443),
        ];
        for (s, host, port) in ok {
            let u = ServerUrl::parse(s).unwrap();
            assert_eq!((u.host.as_str(), u.port), (host, port), "{s}");
        }
        assert_eq!(
            ServerUrl::parse("https://[::1]:6443").unwrap().bare_host(),
            "::1"
        );
        for bad in [
            "http://1.2.3.4:6443",
            "https://",
            "https://h:0",
            "https://h:70000",
            "https://h:64x",
            "https://h:6443/api",
            "https://u@h:6443",
            "https://[::1",
            "https://[::1]x",
            "https://[zz]:6443",
            "https://exa mple:6443",
            "https://a_b:6443",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn named_cluster_through_current_context() {
        let kc = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: YWJj\n    server: https://127.0.0.1\n  name: somecluster\ncontexts:\n- context:\n    cluster: somecluster\n    user: token-bootstrap-client\n  name: token-bootstrap-client@somecluster\ncurrent-context: token-bootstrap-client@somecluster\nkind: Config\nusers: []\n";
        let c = cluster_from_kubeconfig(kc).unwrap();
        assert_eq!(c.name, "somecluster");
        assert_eq!(c.ca_pem, b"abc");
        assert_eq!(c.server.port, 443);
    }

    #[test]
    fn missing_parts_are_named() {
        let e = cluster_from_kubeconfig("clusters: null\n").unwrap_err();
        assert!(e.contains("names no cluster"), "{e}");
        let e = cluster_from_kubeconfig(
            "clusters:\n- name: \"\"\n  cluster:\n    server: https://h:1\n",
        )
        .unwrap_err();
        assert!(e.contains("certificate-authority-data"), "{e}");
    }
}
