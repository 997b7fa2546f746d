//! Who a request to the lab's API server is, once authenticated: the
//! users kube-apiserver's authenticators produce, with their groups. The
//! API server decides who; the CSR and Node stores ask.

use x509_parser::prelude::{FromDer as _, X509Certificate};

/// Who a request is, after authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum User {
    Anonymous,
    /// The bootstrap token: `system:bootstrap:<id>`.
    Bootstrap {
        name: String,
    },
    /// A client certificate `CN=system:node:<node>, O=system:nodes`.
    Node {
        node: String,
        name: String,
    },
    /// Any other client certificate from the cluster CA.
    Other {
        name: String,
        groups: Vec<String>,
    },
}

impl User {
    pub fn name(&self) -> &str {
        match self {
            User::Anonymous => "system:anonymous",
            User::Bootstrap { name } | User::Node { name, .. } | User::Other { name, .. } => name,
        }
    }

    /// As the API server records them in a CSR's `spec.groups`.
    pub fn groups(&self) -> Vec<String> {
        let groups: Vec<&str> = match self {
            User::Anonymous => vec!["system:unauthenticated"],
            User::Bootstrap { .. } => vec![
                "system:bootstrappers",
                "system:bootstrappers:kubeadm:default-node-token",
                "system:authenticated",
            ],
            User::Node { .. } => vec!["system:nodes", "system:authenticated"],
            User::Other { groups, .. } => {
                let mut g: Vec<&str> = groups.iter().map(String::as_str).collect();
                g.push("system:authenticated");
                g
            }
        };
        groups.into_iter().map(str::to_owned).collect()
    }
}

/// The x509 authenticator: CN is the user, each O a group. None for a
/// certificate it cannot use.
pub(crate) fn user_from_cert(der: &[u8]) -> Option<User> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let cn = subject.iter_common_name().last()?.as_str().ok()?.to_owned();
    if cn.is_empty() {
        return None;
    }
    let groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    match cn.strip_prefix("system:node:") {
        Some(node) if !node.is_empty() && groups.iter().any(|g| g == "system:nodes") => {
            Some(User::Node {
                node: node.to_owned(),
                name: cn,
            })
        }
        _ => Some(User::Other { name: cn, groups }),
    }
}
