//! The kubelet's TLS bootstrap (pkg/kubelet/certificate/bootstrap):
//! LoadClientCert, RequestNodeCertificate, the certificate store's files,
//! and the kubeconfig written from them.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use attach_node_lab::KUBELET_CLIENT_SIGNER;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha512_256};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::http::{Auth, Client, Reply};
use crate::keys::{self, Credential};
use crate::kubeconfig::{self, Resolved};
use crate::log;

const CSR_PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
/// What a kubelet asks for with an ECDSA key (no key encipherment: that is
/// for RSA keys only, since Kubernetes 1.27).
const USAGES: [&str; 2] = ["digital signature", "client auth"];
const POLL: Duration = Duration::from_millis(500);
const CURRENT: &str = "kubelet-client-current.pem";
const TMP_KEY: &str = "kubelet-client.key.tmp";

pub struct Bootstrap<'a> {
    pub bootstrap_kubeconfig: Option<&'a Path>,
    pub kubeconfig: &'a Path,
    pub cert_dir: &'a Path,
    pub node_name: &'a str,
    pub csr_timeout: Duration,
}

/// The node's own credentials, as `--kubeconfig` names them.
pub struct NodeCredentials {
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub credential: Credential,
}

fn usable(path: &Path) -> Result<NodeCredentials, String> {
    let k = kubeconfig::load(path)?;
    let (Some(cert), Some(key)) = (&k.client_cert_pem, &k.client_key_pem) else {
        return Err(format!("{}: no client certificate and key", path.display()));
    };
    let credential = keys::load_credential(cert, key).map_err(|e| {
        let from = k
            .client_cert_path
            .as_deref()
            .unwrap_or(path)
            .display()
            .to_string();
        format!("{from}: {e}")
    })?;
    Ok(NodeCredentials {
        server: k.server,
        ca_pem: k.ca_pem,
        credential,
    })
}

/// LoadClientCert: the node's credentials, bootstrapping them if needed.
pub fn load_client_cert(b: &Bootstrap<'_>) -> Result<NodeCredentials, String> {
    match usable(b.kubeconfig) {
        Ok(creds) => {
            log(&format!(
                "bootstrap: {} is usable ({}, valid until {}); no bootstrap needed",
                b.kubeconfig.display(),
                creds.credential.subject,
                creds.credential.not_after
            ));
            return Ok(creds);
        }
        Err(why) if b.kubeconfig.exists() => {
            log(&format!(
                "bootstrap: {} is not usable: {why}",
                b.kubeconfig.display()
            ));
        }
        Err(_) => {}
    }
    let bootstrap_path = b.bootstrap_kubeconfig.ok_or_else(|| {
        format!(
            "{} is missing or unusable and no --bootstrap-kubeconfig was given",
            b.kubeconfig.display()
        )
    })?;
    let bootstrap = kubeconfig::load(bootstrap_path)
        .map_err(|e| format!("unable to load bootstrap kubeconfig: {e}"))?;

    let current = b.cert_dir.join(CURRENT);
    let current_ok = fs::read(&current)
        .map_err(|e| e.to_string())
        .and_then(|pem| keys::load_credential(&pem, &pem));
    match current_ok {
        Ok(c) => log(&format!(
            "bootstrap: {} is usable ({}); writing {} for it",
            current.display(),
            c.subject,
            b.kubeconfig.display()
        )),
        Err(why) => {
            if current.exists() {
                log(&format!(
                    "bootstrap: {} is not usable: {why}",
                    current.display()
                ));
            }
            request_certificate(b, &bootstrap)?;
        }
    }
    write_kubeconfig(b.kubeconfig, &bootstrap, &current)?;
    log(&format!("wrote {}", b.kubeconfig.display()));
    usable(b.kubeconfig).map_err(|e| format!("the kubeconfig just written is not usable: {e}"))
}

/// digestedName: `node-csr-` and a digest of key, subject and usages, so a
/// restarted kubelet with the same key finds its CSR again.
pub fn csr_name(
    spki_der: &[u8],
    common_name: &str,
    organizations: &[&str],
    usages: &[&str],
) -> String {
    let mut hash = Sha512_256::new();
    let mut write = |data: &[u8]| {
        hash.update(URL_SAFE_NO_PAD.encode(data).as_bytes());
        hash.update(b"|");
    };
    write(spki_der);
    write(common_name.as_bytes());
    for o in organizations {
        write(o.as_bytes());
    }
    for u in usages {
        write(u.as_bytes());
    }
    format!("node-csr-{}", URL_SAFE_NO_PAD.encode(hash.finalize()))
}

fn mkdir(dir: &Path) -> Result<(), String> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Writes `contents` to `path` (mode 0600) by way of a temporary file.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(err)?;
    f.write_all(contents).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

/// The key of an earlier, unfinished attempt (so its CSR is found again),
/// or a new one, kept until the certificate arrives.
fn bootstrap_key(cert_dir: &Path) -> Result<KeyPair, String> {
    let path = cert_dir.join(TMP_KEY);
    if let Ok(text) = fs::read_to_string(&path) {
        match KeyPair::from_pem(&text) {
            Ok(k) => {
                log(&format!("bootstrap: reusing the key in {}", path.display()));
                return Ok(k);
            }
            Err(e) => log(&format!("bootstrap: ignoring {}: {e}", path.display())),
        }
    }
    let key = KeyPair::generate().map_err(|e| format!("cannot generate a key: {e}"))?;
    write_private(&path, key.serialize_pem().as_bytes())?;
    Ok(key)
}

fn status_error(what: &str, r: &Reply) -> String {
    format!("{what}: HTTP {}: {}", r.status, r.message())
}

fn transient(status: u16) -> bool {
    status == 429 || status >= 500
}

/// RequestNodeCertificate and WaitForCertificate, then the store's Update.
fn request_certificate(b: &Bootstrap<'_>, bootstrap: &Resolved) -> Result<(), String> {
    let token = bootstrap
        .token
        .clone()
        .ok_or("the bootstrap kubeconfig has no token")?;
    let client = Client::new(&bootstrap.server, &bootstrap.ca_pem, Auth::Bearer(token))?;
    mkdir(b.cert_dir)?;
    let key = bootstrap_key(b.cert_dir)?;

    let common_name = format!("system:node:{}", b.node_name);
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // Go's pkix.Name puts O before CN.
    dn.push(DnType::OrganizationName, "system:nodes");
    dn.push(DnType::CommonName, common_name.as_str());
    params.distinguished_name = dn;
    let request_pem = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| format!("cannot make the CSR: {e}"))?;
    let spki = key.subject_public_key_info();
    let name = csr_name(&spki, &common_name, &["system:nodes"], &USAGES);
    let body = json!({
        "kind": "CertificateSigningRequest",
        "apiVersion": "certificates.k8s.io/v1",
        "metadata": {"name": name},
        "spec": {
            "request": STANDARD.encode(&request_pem),
            "signerName": KUBELET_CLIENT_SIGNER,
            "usages": USAGES,
        },
        "status": {},
    });
    let body = serde_json::to_vec(&body).expect("JSON serialises");

    let started = Instant::now();
    let deadline = started + b.csr_timeout;
    let timed_out = |last: &str| {
        format!(
            "bootstrap: gave up after {:.1}s (--standin-csr-timeout) waiting for CSR {name} to be approved and signed; last: {last}. \
             Is the CSR approver running (kubeadm's kubeadm:node-autoapprove-bootstrap binding)?",
            started.elapsed().as_secs_f64()
        )
    };

    // Create, or find the CSR an earlier attempt with this key created.
    let mut last = String::from("no answer yet");
    loop {
        if Instant::now() >= deadline {
            return Err(timed_out(&last));
        }
        match client.request("POST", CSR_PATH, Some(&body)) {
            Ok(r) if r.status == 201 => {
                log(&format!("bootstrap: CSR {name} created"));
                break;
            }
            Ok(r) if r.status == 409 => {
                match client.request("GET", &format!("{CSR_PATH}/{name}"), None) {
                    Ok(r) if r.status == 200 => {
                        ensure_compatible(&r.body, &spki, &common_name)?;
                        log(&format!(
                            "bootstrap: CSR {name} already exists; waiting for it"
                        ));
                        break;
                    }
                    Ok(r) if transient(r.status) => last = status_error("get CSR", &r),
                    Ok(r) => {
                        return Err(status_error(&format!("bootstrap: get CSR {name}"), &r));
                    }
                    Err(e) => last = format!("get CSR: {e}"),
                }
            }
            Ok(r) if transient(r.status) => last = status_error("create CSR", &r),
            Ok(r) => return Err(status_error(&format!("bootstrap: create CSR {name}"), &r)),
            Err(e) => last = format!("create CSR: {e}"),
        }
        log(&format!("bootstrap: {last}; retrying"));
        thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }

    // Poll it until it is signed.
    let certificate_pem = loop {
        match client.request("GET", &format!("{CSR_PATH}/{name}"), None) {
            Ok(r) if r.status == 200 => {
                if let Some(pem) = issued(&r.body)? {
                    break pem;
                }
                last = "not approved and signed yet".into();
            }
            Ok(r) if transient(r.status) => last = status_error("get CSR", &r),
            Ok(r) => return Err(status_error(&format!("bootstrap: get CSR {name}"), &r)),
            Err(e) => last = format!("get CSR: {e}"),
        }
        if Instant::now() >= deadline {
            return Err(timed_out(&last));
        }
        thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    };

    let (_, first) = x509_parser::pem::parse_x509_pem(&certificate_pem)
        .map_err(|e| format!("bootstrap: the issued certificate is not PEM: {e}"))?;
    let (_, cert) = X509Certificate::from_der(&first.contents)
        .map_err(|e| format!("bootstrap: the issued certificate does not parse: {e}"))?;
    if cert.public_key().raw != spki.as_slice() {
        return Err("bootstrap: the issued certificate is not for our key".into());
    }
    log(&format!(
        "bootstrap: certificate issued: {} by {}, valid until {}",
        cert.subject(),
        cert.issuer(),
        cert.validity().not_after
    ));

    // The certificate store: kubelet-client-<time>.pem, then the symlink.
    let sec1 = keys::p256_pkcs8_to_sec1(&key.serialize_der())?;
    let mut contents = certificate_pem.clone();
    if !contents.ends_with(b"\n") {
        contents.push(b'\n');
    }
    contents.extend_from_slice(keys::pem("EC PRIVATE KEY", &sec1).as_bytes());
    let now = time::OffsetDateTime::now_utc();
    let file = b.cert_dir.join(format!(
        "kubelet-client-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}.pem",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    ));
    write_private(&file, &contents)?;
    let updated = b.cert_dir.join("kubelet-client-updated.pem");
    let _ = fs::remove_file(&updated);
    std::os::unix::fs::symlink(absolute(&file), &updated)
        .map_err(|e| format!("{}: {e}", updated.display()))?;
    let current = b.cert_dir.join(CURRENT);
    fs::rename(&updated, &current).map_err(|e| format!("{}: {e}", current.display()))?;
    let _ = fs::remove_file(b.cert_dir.join(TMP_KEY));
    log(&format!(
        "bootstrap: wrote {} and {CURRENT}",
        file.display()
    ));
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir().map_or_else(|_| p.to_owned(), |d| d.join(p))
    }
}

/// The certificate once the CSR is approved and signed; an error if it was
/// denied or failed.
fn issued(body: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("bootstrap: CSR is not JSON: {e}"))?;
    let mut approved = false;
    for c in v["status"]["conditions"].as_array().into_iter().flatten() {
        let what = c["type"].as_str().unwrap_or("");
        let reason = c["reason"].as_str().unwrap_or("");
        let message = c["message"].as_str().unwrap_or("");
        match what {
            "Denied" => {
                return Err(format!(
                    "bootstrap: the certificate signing request was denied, reason: {reason}, message: {message}"
                ));
            }
            "Failed" => {
                return Err(format!(
                    "bootstrap: the certificate signing request failed, reason: {reason}, message: {message}"
                ));
            }
            "Approved" => approved = true,
            _ => {}
        }
    }
    match v["status"]["certificate"].as_str() {
        Some(b64) if approved && !b64.is_empty() => STANDARD
            .decode(b64)
            .map(Some)
            .map_err(|e| format!("bootstrap: status.certificate is not base64: {e}")),
        _ => Ok(None),
    }
}

/// ensureCompatible: an existing CSR of our name must be ours.
fn ensure_compatible(body: &[u8], spki: &[u8], common_name: &str) -> Result<(), String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("bootstrap: CSR is not JSON: {e}"))?;
    let incompatible = |why: &str| format!("bootstrap: retrieved csr is not compatible: {why}");
    if v["spec"]["signerName"] != KUBELET_CLIENT_SIGNER {
        return Err(incompatible("signerName differs"));
    }
    let usages: Vec<&str> = v["spec"]["usages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if usages != USAGES {
        return Err(incompatible("usages differ"));
    }
    let pem = v["spec"]["request"]
        .as_str()
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or_else(|| incompatible("no request"))?;
    let (_, block) =
        x509_parser::pem::parse_x509_pem(&pem).map_err(|_| incompatible("request is not PEM"))?;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|_| incompatible("request does not parse"))?;
    let info = &csr.certification_request_info;
    if info.subject_pki.raw != spki {
        return Err(incompatible("public key differs"));
    }
    let cn = info
        .subject
        .iter_common_name()
        .last()
        .and_then(|a| a.as_str().ok());
    if cn != Some(common_name) {
        return Err(incompatible("subject differs"));
    }
    Ok(())
}

fn write_kubeconfig(path: &Path, bootstrap: &Resolved, pem: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        mkdir(dir)?;
    }
    let text = kubeconfig::kubelet_kubeconfig(
        &bootstrap.server,
        &bootstrap.ca_pem,
        &bootstrap.ca_source,
        &absolute(pem),
    );
    write_private(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_names_are_digests_of_key_subject_and_usages() {
        let a = csr_name(b"key", "system:node:a", &["system:nodes"], &USAGES);
        assert!(a.starts_with("node-csr-"));
        // SHA-512/256 is 32 bytes: 43 base64url characters unpadded.
        assert_eq!(a.len(), "node-csr-".len() + 43);
        assert_eq!(
            a,
            csr_name(b"key", "system:node:a", &["system:nodes"], &USAGES)
        );
        assert_ne!(
            a,
            csr_name(b"key", "system:node:b", &["system:nodes"], &USAGES)
        );
        // The delimiter keeps "ab"+"c" apart from "a"+"bc".
        assert_ne!(
            csr_name(b"k", "ab", &["c"], &[]),
            csr_name(b"k", "a", &["bc"], &[])
        );
    }

    #[test]
    fn conditions() {
        assert_eq!(issued(br#"{"status":{}}"#).unwrap(), None);
        let ok = format!(
            r#"{{"status":{{"conditions":[{{"type":"Approved","status":"True"}}],"certificate":"{}"}}}}"#,
            STANDARD.encode("PEM")
        );
        assert_eq!(issued(ok.as_bytes()).unwrap().unwrap(), b"PEM");
        let denied = br#"{"status":{"conditions":[{"type":"Denied","reason":"R","message":"M"}]}}"#;
        assert!(
            issued(denied)
                .unwrap_err()
                .contains("denied, reason: R, message: M")
        );
    }
}
