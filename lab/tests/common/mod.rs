//! A deliberately small HTTPS client for testing the lab: one request per
//! connection over rustls and a std TcpStream, either verifying against one
//! CA or (like attach-node's first cluster-info fetch) not at all.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use attach_node_lab::tls_client::AcceptAnyCert;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

pub enum Trust<'a> {
    /// Verify the chain and hostname against this CA only.
    Ca(&'a str),
    /// Accept any certificate (the client still checks handshake signatures).
    Anything,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The leaf certificate the server presented.
    pub server_cert: CertificateDer<'static>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }
}

pub fn client_config(trust: &Trust<'_>) -> ClientConfig {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    match trust {
        Trust::Ca(pem) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
                .unwrap();
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Anything => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth(),
    }
}

/// Like [`client_config`], presenting a client certificate (PEM chain and
/// PEM key, which may be the same text).
pub fn client_config_with_cert(ca_pem: &str, cert_pem: &str, key_pem: &str) -> ClientConfig {
    let provider = Arc::new(ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap()
}

/// `method base_url + target` with a JSON body (if any), over `config`.
pub fn send(
    config: Arc<ClientConfig>,
    base_url: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<Reply> {
    exchange(config, base_url, method, target, headers, body)
}

/// `GET base_url + target`, with extra headers, and reads the whole answer
/// (the lab closes every connection after one response).
pub fn get(
    base_url: &str,
    target: &str,
    trust: Trust<'_>,
    headers: &[(&str, &str)],
) -> io::Result<Reply> {
    get_with(Arc::new(client_config(&trust)), base_url, target, headers)
}

/// Like [`get`], with a client configuration (and so a TLS session cache)
/// that the caller may reuse across requests.
pub fn get_with(
    config: Arc<ClientConfig>,
    base_url: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> io::Result<Reply> {
    exchange(config, base_url, "GET", target, headers, None)
}

fn exchange(
    config: Arc<ClientConfig>,
    base_url: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<Reply> {
    let host_port = base_url.strip_prefix("https://").expect("https URL");
    let addr: SocketAddr = host_port.parse().expect("IP:port URL");
    let server_name = ServerName::IpAddress(addr.ip().into());
    let conn = ClientConnection::new(config, server_name).map_err(io::Error::other)?;
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut tls = StreamOwned::new(conn, sock);

    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {host_port}\r\nUser-Agent: lab-test\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    tls.write_all(&bytes)?;
    tls.flush()?;

    let mut raw = Vec::new();
    tls.read_to_end(&mut raw)?;
    let server_cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a server certificate")
        .clone()
        .into_owned();

    let mut parsed_headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut parsed_headers);
    let head_len = match response.parse(&raw).map_err(io::Error::other)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Err(io::Error::other("truncated response head")),
    };
    let reply = Reply {
        status: response.code.unwrap(),
        headers: response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: raw[head_len..].to_vec(),
        server_cert,
    };
    // Framing the lab promises to every client.
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str()),
        "Content-Length must match the body"
    );
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(reply.header("date").is_some_and(|d| d.ends_with(" GMT")));
    Ok(reply)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
