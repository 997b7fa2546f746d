//! certificates.k8s.io/v1 CertificateSigningRequests as a kubelet's TLS
//! bootstrap uses them: kube-apiserver's create validation, then what
//! kube-controller-manager does within milliseconds: the csrapproving
//! controller approves a kubelet client CSR from a bootstrap token (kubeadm's
//! `kubeadm:node-autoapprove-bootstrap` binding) or from the node itself
//! (`...:selfnodeclient`), and the `kubernetes.io/kube-apiserver-client-kubelet`
//! signer issues the certificate with the cluster CA.
//!
//! A CSR the approver does not recognise stays pending forever, as it does
//! in a real cluster; the lab records why ([`CsrRecord::pending_reason`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{Issuer, KeyPair, PublicKeyData, SignatureAlgorithm};
use serde::Deserialize;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer as _;

use crate::auth::User;
use crate::https::Response;
use crate::kube::{self, CsrSpec, FieldError, ObjectMeta};
use crate::pki::{self, ClientCertRequest};
use crate::{random, timefmt};

pub(crate) const GROUP: &str = "certificates.k8s.io";
pub(crate) const RESOURCE: &str = "certificatesigningrequests";
pub(crate) const KIND: &str = "CertificateSigningRequest";
pub(crate) const PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
pub(crate) const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// kube-controller-manager's default `--cluster-signing-duration`.
const SIGNING_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// certificates/v1 KeyUsage values, in the API's order.
const KNOWN_USAGES: [&str; 23] = [
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// The two usage sets the approver accepts for a kubelet client certificate
/// (pkg/apis/certificates/helpers.go): with key encipherment (RSA keys) and
/// without it (what kubelets since 1.27 send for their ECDSA keys).
const KUBELET_CLIENT_USAGES: [&str; 3] = ["digital signature", "key encipherment", "client auth"];
const KUBELET_CLIENT_USAGES_NO_RSA: [&str; 2] = ["digital signature", "client auth"];

/// A CSR as the lab's API server stored it, for tests to assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrRecord {
    pub name: String,
    pub signer_name: String,
    /// As sent, in order.
    pub usages: Vec<String>,
    /// `spec.username` as the API server set it from the requester:
    /// `system:bootstrap:<token id>` or `system:node:<name>`.
    pub username: String,
    pub groups: Vec<String>,
    /// The PKCS#10 request, PEM, as sent.
    pub request_pem: String,
    /// The request's subject.
    pub common_name: String,
    pub organizations: Vec<String>,
    /// The issued certificate (PEM) once the CSR is approved and signed.
    pub certificate_pem: Option<String>,
    /// Why a CSR is not (yet) approved; None once it is.
    pub pending_reason: Option<String>,
}

/// How the lab's controller treats a kubelet client CSR it recognises.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Approval {
    /// Approved and signed, visible this long after creation.
    After(Duration),
    /// `Fault::CsrNeverApproved`.
    Never,
}

struct Stored {
    uid: String,
    resource_version: String,
    created: String,
    request_b64: String,
    request_pem: String,
    signer_name: String,
    usages: Vec<String>,
    expiration_seconds: Option<i64>,
    username: String,
    groups: Vec<String>,
    common_name: String,
    organizations: Vec<String>,
    outcome: Outcome,
}

enum Outcome {
    Issued {
        visible_at: Instant,
        approved_at: String,
        certificate_pem: String,
    },
    Pending(String),
}

pub(crate) struct Csrs {
    ca: Arc<Issuer<'static, KeyPair>>,
    approval: Approval,
    resource_versions: Arc<AtomicU64>,
    /// In creation order.
    state: Mutex<Vec<(String, Stored)>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CsrIn {
    kind: Option<String>,
    api_version: Option<String>,
    #[serde(default)]
    metadata: MetaIn,
    #[serde(default)]
    spec: SpecIn,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetaIn {
    pub name: Option<String>,
    pub generate_name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecIn {
    request: Option<String>,
    signer_name: Option<String>,
    usages: Option<Vec<String>>,
    expiration_seconds: Option<i64>,
}

/// The parts of a PKCS#10 request the lab looks at.
struct Parsed {
    common_name: String,
    organizations: Vec<String>,
    /// Kinds of subjectAltName present ("DNS", "Email", "IP", "URI").
    sans: Vec<&'static str>,
    public_key: CsrPublicKey,
}

/// The request's public key, in the form rcgen signs for.
struct CsrPublicKey {
    raw: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for CsrPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

/// Checks `pem` as kube-apiserver's create validation does (PEM block type,
/// PKCS#10 syntax, self-signature), returning Go-like error text.
fn parse_request(pem: &[u8]) -> Result<Parsed, String> {
    let der = pem_block(pem, "CERTIFICATE REQUEST")?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| format!("x509: malformed certificate request: {e}"))?;
    if !rest.is_empty() {
        return Err("x509: trailing data after certificate request".into());
    }
    csr.verify_signature()
        .map_err(|e| format!("x509: signature verification failed: {e}"))?;
    let info = &csr.certification_request_info;
    let text = |attr: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        attr.as_str()
            .map(str::to_owned)
            .map_err(|_| "x509: subject attribute is not a string".to_owned())
    };
    let common_name = match info.subject.iter_common_name().last() {
        Some(cn) => text(cn)?,
        None => String::new(),
    };
    let organizations = info
        .subject
        .iter_organization()
        .map(text)
        .collect::<Result<Vec<_>, _>>()?;
    let mut sans = Vec::new();
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    sans.push(match name {
                        GeneralName::DNSName(_) => "DNS",
                        GeneralName::RFC822Name(_) => "Email",
                        GeneralName::IPAddress(_) => "IP",
                        GeneralName::URI(_) => "URI",
                        _ => "other",
                    });
                }
            }
        }
    }
    let spki = &info.subject_pki;
    let key_oid = &spki.algorithm.algorithm;
    let alg: &'static SignatureAlgorithm = if *key_oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Some(c) if c == OID_NIST_EC_P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => return Err("x509: unsupported elliptic curve".into()),
        }
    } else if *key_oid == OID_SIG_ED25519 {
        &rcgen::PKCS_ED25519
    } else if *key_oid == OID_PKCS1_RSAENCRYPTION {
        &rcgen::PKCS_RSA_SHA256
    } else {
        return Err(format!("x509: unknown public key algorithm {key_oid}"));
    };
    Ok(Parsed {
        common_name,
        organizations,
        sans,
        public_key: CsrPublicKey {
            raw: spki.subject_public_key.data.to_vec(),
            alg,
        },
    })
}

/// The DER of the first PEM block, which must have type `label`.
fn pem_block(pem: &[u8], label: &str) -> Result<Vec<u8>, String> {
    let wrong = || format!("PEM block type must be {label}");
    let text = std::str::from_utf8(pem).map_err(|_| wrong())?;
    let begin = text.find("-----BEGIN ").ok_or_else(wrong)?;
    let rest = &text[begin + 11..];
    let (found, rest) = rest.split_once("-----").ok_or_else(wrong)?;
    if found != label {
        return Err(wrong());
    }
    let end = rest.find("-----END ").ok_or_else(wrong)?;
    let b64: String = rest[..end].split_whitespace().collect();
    STANDARD.decode(b64).map_err(|_| wrong())
}

/// The csrapproving controller's test for a kubelet client CSR
/// (ValidateKubeletClientCSR), and which requester may have it approved.
fn approver_verdict(
    user: &User,
    signer: &str,
    usages: &[String],
    p: &Parsed,
) -> Result<(), String> {
    if signer != KUBELET_CLIENT_SIGNER {
        return Err(format!(
            "signerName {signer:?}: the lab's controller only approves {KUBELET_CLIENT_SIGNER}"
        ));
    }
    if p.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if let Some(kind) = p.sans.first() {
        return Err(format!("{kind} subjectAltNames are not allowed"));
    }
    if !p.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    let set = |u: &[&str]| {
        let mut v: Vec<String> = u.iter().map(|s| (*s).to_owned()).collect();
        v.sort();
        v
    };
    let mut got = usages.to_vec();
    got.sort();
    got.dedup();
    if got.len() != usages.len()
        || (got != set(&KUBELET_CLIENT_USAGES) && got != set(&KUBELET_CLIENT_USAGES_NO_RSA))
    {
        return Err(format!(
            "usages did not match {:?}",
            set(&KUBELET_CLIENT_USAGES)
        ));
    }
    match user {
        User::Bootstrap { .. } => Ok(()),
        User::Node { name, .. } if *name == p.common_name => Ok(()),
        other => Err(format!(
            "{} may not have a certificate for {} approved (selfnodeclient is for the node itself)",
            other.name(),
            p.common_name
        )),
    }
}

impl Csrs {
    pub fn new(
        ca: Arc<Issuer<'static, KeyPair>>,
        approval: Approval,
        resource_versions: Arc<AtomicU64>,
    ) -> Csrs {
        Csrs {
            ca,
            approval,
            resource_versions,
            state: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(String, Stored)>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn allowed(user: &User) -> bool {
        // RBAC system:node-bootstrapper, and the Node authorizer's rules.
        matches!(user, User::Bootstrap { .. } | User::Node { .. })
    }

    /// `POST /apis/certificates.k8s.io/v1/certificatesigningrequests`.
    pub fn create(&self, user: &User, body: &[u8]) -> Response {
        if !Self::allowed(user) {
            return Response::json(
                403,
                kube::forbidden_in_group(user.name(), "create", GROUP, RESOURCE, "", ""),
            );
        }
        let input: CsrIn = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Response::json(
                    400,
                    kube::bad_request(&format!(
                        "error decoding the CertificateSigningRequest: {e}"
                    )),
                );
            }
        };
        if let Some(err) = check_type(input.kind.as_deref(), input.api_version.as_deref()) {
            return Response::json(400, kube::bad_request(&err));
        }
        let name = match (&input.metadata.name, &input.metadata.generate_name) {
            (Some(n), _) if !n.is_empty() => n.clone(),
            (_, Some(g)) if !g.is_empty() => {
                format!("{g}{}", random::string(b"bcdfghjklmnpqrstvwxz2456789", 5))
            }
            _ => {
                return Response::json(
                    422,
                    kube::invalid(
                        GROUP,
                        KIND,
                        "",
                        &[FieldError {
                            field: "metadata.name".into(),
                            cause: "FieldValueRequired",
                            body: "Required value: name or generateName is required".into(),
                        }],
                    ),
                );
            }
        };

        let spec = input.spec;
        let mut errors = Vec::new();
        // `request` is []byte: JSON carries it base64-encoded, and a string
        // that is not base64 fails decoding, before validation.
        let request_pem = match spec.request.as_deref().map(|r| STANDARD.decode(r)) {
            None => {
                errors.push(FieldError::required("spec.request"));
                Vec::new()
            }
            Some(Ok(pem)) => pem,
            Some(Err(e)) => {
                return Response::json(
                    400,
                    kube::bad_request(&format!(
                        "error decoding the CertificateSigningRequest: spec.request: illegal base64 data: {e}"
                    )),
                );
            }
        };
        let parsed = if request_pem.is_empty() {
            None
        } else {
            match parse_request(&request_pem) {
                Ok(p) => Some(p),
                Err(detail) => {
                    errors.push(FieldError::invalid(
                        "spec.request",
                        &kube::go_bytes(&request_pem),
                        &detail,
                    ));
                    None
                }
            }
        };
        let signer_name = spec.signer_name.unwrap_or_default();
        if signer_name.is_empty() {
            errors.push(FieldError::required("spec.signerName"));
        }
        let usages = spec.usages.unwrap_or_default();
        if usages.is_empty() {
            errors.push(FieldError::required("spec.usages"));
        }
        for (i, u) in usages.iter().enumerate() {
            if !KNOWN_USAGES.contains(&u.as_str()) {
                errors.push(FieldError::not_supported(
                    &format!("spec.usages[{i}]"),
                    u,
                    &KNOWN_USAGES,
                ));
            }
        }
        if let Some(s) = spec.expiration_seconds.filter(|s| *s < 600) {
            errors.push(FieldError::invalid(
                "spec.expirationSeconds",
                &s.to_string(),
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
        let parsed = match parsed {
            Some(p) if errors.is_empty() => p,
            _ => return Response::json(422, kube::invalid(GROUP, KIND, &name, &errors)),
        };

        let now = SystemTime::now();
        let created = timefmt::rfc3339(now);
        let outcome = match (
            approver_verdict(user, &signer_name, &usages, &parsed),
            self.approval,
        ) {
            (Err(why), _) => Outcome::Pending(why),
            (Ok(()), Approval::Never) => {
                Outcome::Pending("never approved (Fault::CsrNeverApproved)".into())
            }
            (Ok(()), Approval::After(delay)) => {
                let validity = spec.expiration_seconds.map_or(SIGNING_DURATION, |s| {
                    Duration::from_secs(s.unsigned_abs()).min(SIGNING_DURATION)
                });
                let signed = pki::sign_client_cert(
                    &self.ca,
                    &ClientCertRequest {
                        common_name: &parsed.common_name,
                        organizations: &parsed.organizations,
                        key_encipherment: usages.iter().any(|u| u == "key encipherment"),
                        validity: time::Duration::try_from(validity)
                            .unwrap_or(time::Duration::days(365)),
                    },
                    &parsed.public_key,
                );
                match signed {
                    Ok(certificate_pem) => Outcome::Issued {
                        visible_at: Instant::now() + delay,
                        approved_at: timefmt::rfc3339(now + delay),
                        certificate_pem,
                    },
                    Err(e) => Outcome::Pending(format!("signing failed: {e}")),
                }
            }
        };

        let stored = Stored {
            uid: random::uuid(),
            resource_version: self
                .resource_versions
                .fetch_add(1, Ordering::SeqCst)
                .to_string(),
            created,
            request_b64: STANDARD.encode(&request_pem),
            request_pem: String::from_utf8_lossy(&request_pem).into_owned(),
            signer_name,
            usages,
            expiration_seconds: spec.expiration_seconds,
            username: user.name().to_owned(),
            groups: user.groups(),
            common_name: parsed.common_name,
            organizations: parsed.organizations,
            outcome,
        };
        let mut state = self.lock();
        if state.iter().any(|(n, _)| *n == name) {
            return Response::json(409, kube::already_exists(GROUP, RESOURCE, &name));
        }
        // What the API server returns is the object as stored, before the
        // controller has acted on it.
        let body = render(&name, &stored, false);
        state.push((name, stored));
        Response::json(201, body)
    }

    /// `GET /apis/certificates.k8s.io/v1/certificatesigningrequests/<name>`.
    pub fn get(&self, user: &User, name: &str) -> Response {
        if !Self::allowed(user) {
            return Response::json(
                403,
                kube::forbidden_in_group(user.name(), "get", GROUP, RESOURCE, name, ""),
            );
        }
        match self.lock().iter().find(|(n, _)| n == name) {
            Some((n, stored)) => Response::json(200, render(n, stored, true)),
            None => Response::json(404, kube::not_found_in_group(GROUP, RESOURCE, name)),
        }
    }

    /// `GET /apis/certificates.k8s.io/v1/certificatesigningrequests`: the
    /// list kubeadm's system:node-bootstrapper role lets bootstrappers read.
    pub fn list(&self, user: &User) -> Response {
        if !Self::allowed(user) {
            return Response::json(
                403,
                kube::forbidden_in_group(user.name(), "list", GROUP, RESOURCE, "", ""),
            );
        }
        let items: Vec<serde_json::Value> = self
            .lock()
            .iter()
            .filter_map(|(n, stored)| serde_json::from_slice(&render(n, stored, true)).ok())
            .collect();
        let list = serde_json::json!({
            "kind": "CertificateSigningRequestList",
            "apiVersion": "certificates.k8s.io/v1",
            "metadata": {},
            "items": items,
        });
        Response::json(200, serde_json::to_vec(&list).expect("plain data"))
    }

    pub fn records(&self) -> Vec<CsrRecord> {
        self.lock()
            .iter()
            .map(|(name, s)| {
                let (certificate_pem, pending_reason) = match &s.outcome {
                    Outcome::Issued {
                        visible_at,
                        certificate_pem,
                        ..
                    } if Instant::now() >= *visible_at => (Some(certificate_pem.clone()), None),
                    Outcome::Issued { .. } => (None, Some("not approved yet".to_owned())),
                    Outcome::Pending(why) => (None, Some(why.clone())),
                };
                CsrRecord {
                    name: name.clone(),
                    signer_name: s.signer_name.clone(),
                    usages: s.usages.clone(),
                    username: s.username.clone(),
                    groups: s.groups.clone(),
                    request_pem: s.request_pem.clone(),
                    common_name: s.common_name.clone(),
                    organizations: s.organizations.clone(),
                    certificate_pem,
                    pending_reason,
                }
            })
            .collect()
    }
}

/// `kind`/`apiVersion`, when sent, must be the ones the URL names.
fn check_type(kind: Option<&str>, api_version: Option<&str>) -> Option<String> {
    if let Some(v) = api_version.filter(|v| *v != "certificates.k8s.io/v1") {
        return Some(format!(
            "the API version in the data ({v}) does not match the expected API version (certificates.k8s.io/v1)"
        ));
    }
    if let Some(k) = kind.filter(|k| *k != KIND) {
        return Some(format!(
            "the kind in the data ({k}) does not match the expected kind ({KIND})"
        ));
    }
    None
}

fn render(name: &str, s: &Stored, with_status: bool) -> Vec<u8> {
    let approved = match &s.outcome {
        Outcome::Issued {
            visible_at,
            approved_at,
            certificate_pem,
        } if with_status && Instant::now() >= *visible_at => {
            Some((approved_at.as_str(), certificate_pem.as_str()))
        }
        _ => None,
    };
    kube::csr(
        ObjectMeta {
            name,
            namespace: "",
            uid: &s.uid,
            resource_version: &s.resource_version,
            creation_timestamp: &s.created,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        },
        CsrSpec {
            request: &s.request_b64,
            signer_name: &s.signer_name,
            expiration_seconds: s.expiration_seconds,
            usages: &s.usages,
            username: &s.username,
            groups: &s.groups,
        },
        approved,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType};

    fn request(cn: &str, orgs: &[&str]) -> (KeyPair, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for o in orgs {
            dn.push(DnType::OrganizationName, *o);
        }
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        (key, pem)
    }

    fn bootstrap() -> User {
        User::Bootstrap {
            name: "system:bootstrap:abcdef".into(),
        }
    }

    fn usages(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_subject_and_key_and_checks_the_signature() {
        let (key, pem) = request("system:node:worker-1", &["system:nodes"]);
        let p = parse_request(pem.as_bytes()).unwrap();
        assert_eq!(p.common_name, "system:node:worker-1");
        assert_eq!(p.organizations, ["system:nodes"]);
        assert!(p.sans.is_empty());
        assert_eq!(p.public_key.raw, key.public_key_raw());
        assert_eq!(
            p.public_key.subject_public_key_info(),
            key.subject_public_key_info()
        );

        // Flip one bit of the signature (the last byte of the DER).
        let mut der = pem_block(pem.as_bytes(), "CERTIFICATE REQUEST").unwrap();
        let last = der.len() - 1;
        der[last] ^= 1;
        let bad = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            STANDARD.encode(&der)
        );
        assert!(
            parse_request(bad.as_bytes())
                .err()
                .unwrap()
                .contains("signature")
        );
        assert_eq!(
            parse_request(b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
                .err()
                .unwrap(),
            "PEM block type must be CERTIFICATE REQUEST"
        );
    }

    #[test]
    fn approver_follows_validate_kubelet_client_csr() {
        let (_, pem) = request("system:node:worker-1", &["system:nodes"]);
        let p = parse_request(pem.as_bytes()).unwrap();
        let full = usages(&["digital signature", "key encipherment", "client auth"]);
        let no_rsa = usages(&["client auth", "digital signature"]);
        assert!(approver_verdict(&bootstrap(), KUBELET_CLIENT_SIGNER, &full, &p).is_ok());
        assert!(approver_verdict(&bootstrap(), KUBELET_CLIENT_SIGNER, &no_rsa, &p).is_ok());
        for bad in [
            usages(&["key encipherment", "client auth"]),
            usages(&["digital signature", "client auth", "server auth"]),
            usages(&["digital signature", "client auth", "client auth"]),
        ] {
            assert!(
                approver_verdict(&bootstrap(), KUBELET_CLIENT_SIGNER, &bad, &p)
                    .unwrap_err()
                    .starts_with("usages did not match")
            );
        }
        assert!(
            approver_verdict(&bootstrap(), "kubernetes.io/kubelet-serving", &full, &p).is_err()
        );

        let self_node = User::Node {
            node: "worker-1".into(),
            name: "system:node:worker-1".into(),
        };
        let other_node = User::Node {
            node: "worker-2".into(),
            name: "system:node:worker-2".into(),
        };
        assert!(approver_verdict(&self_node, KUBELET_CLIENT_SIGNER, &full, &p).is_ok());
        assert!(approver_verdict(&other_node, KUBELET_CLIENT_SIGNER, &full, &p).is_err());

        let (_, pem) = request("admin", &["system:masters"]);
        let p = parse_request(pem.as_bytes()).unwrap();
        assert_eq!(
            approver_verdict(&bootstrap(), KUBELET_CLIENT_SIGNER, &full, &p).unwrap_err(),
            "subject organization is not system:nodes"
        );
        let (_, pem) = request("worker-1", &["system:nodes"]);
        let p = parse_request(pem.as_bytes()).unwrap();
        assert_eq!(
            approver_verdict(&bootstrap(), KUBELET_CLIENT_SIGNER, &full, &p).unwrap_err(),
            "subject common name does not begin with system:node:"
        );
    }
}
