//! One HTTPS request per connection to the API server, verified against the
//! kubeconfig's CA, authenticated with a bearer token or a client
//! certificate.

use std::io::{self, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RESPONSE: usize = 4 << 20;
pub const USER_AGENT: &str = "standin-kubelet/0.1 (TEST STAND-IN, not a kubelet)";

pub enum Auth {
    Bearer(String),
    ClientCert {
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    },
}

pub struct Client {
    config: Arc<ClientConfig>,
    host: String,
    port: u16,
    /// Path prefix of the server URL, without a trailing slash.
    prefix: String,
    server_name: ServerName<'static>,
    bearer: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// `message` of a metav1.Status body, or the body as text.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_owned())
    }
}

impl Client {
    pub fn new(server: &str, ca_pem: &[u8], auth: Auth) -> Result<Client, String> {
        let rest = server
            .strip_prefix("https://")
            .ok_or_else(|| format!("server {server:?}: only https:// is supported"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("server {server:?}: cannot read host and port"))?;
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| format!("server {server:?}: {host:?} is not a host name or IP"))?;

        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| format!("certificate authority: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("certificate authority: {e}"))?;
        }
        if roots.is_empty() {
            return Err("certificate authority: no certificate in it".into());
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let (mut config, bearer) = match auth {
            Auth::Bearer(t) => (builder.with_no_client_auth(), Some(t)),
            Auth::ClientCert { chain, key } => (
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate: {e}"))?,
                None,
            ),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            config: Arc::new(config),
            host,
            port,
            prefix: path.trim_end_matches('/').to_owned(),
            server_name,
            bearer,
        })
    }

    /// Sends one request; Err only when no HTTP answer came.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> io::Result<Reply> {
        let addrs: Vec<_> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        let mut sock = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let sock = sock.ok_or(last)?;
        sock.set_read_timeout(Some(IO_TIMEOUT))?;
        sock.set_write_timeout(Some(IO_TIMEOUT))?;
        let conn = ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, sock);

        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.prefix
        );
        if let Some(t) = &self.bearer {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() || method != "GET" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        tls.write_all(&out)?;
        tls.flush()?;

        let mut raw = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match tls.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    raw.extend_from_slice(&chunk[..n]);
                    if raw.len() > MAX_RESPONSE {
                        return Err(io::Error::other("response too large"));
                    }
                }
                // A server that closes without close_notify still sent a
                // complete answer if Content-Length says so.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        parse_response(&raw)
    }
}

fn parse_response(raw: &[u8]) -> io::Result<Reply> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw).map_err(io::Error::other)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Err(io::Error::other("truncated response head")),
    };
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    if header("transfer-encoding").is_some() {
        return Err(io::Error::other(
            "chunked responses are not supported by the stand-in",
        ));
    }
    let mut body = raw[head_len..].to_vec();
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if body.len() < len {
            return Err(io::Error::other("truncated response body"));
        }
        body.truncate(len);
    }
    Ok(Reply {
        status: resp.code.unwrap_or(0),
        body,
    })
}

/// `host:port`, `[v6]:port`, or a host alone (port 443).
fn split_host_port(authority: &str) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 443,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_owned(), p.parse().ok()?)),
        Some(_) => None,
        None => Some((authority.to_owned(), 443)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(
            split_host_port("127.0.0.1:6443"),
            Some(("127.0.0.1".into(), 6443))
        );
        assert_eq!(split_host_port("[::1]:6443"), Some(("::1".into(), 6443)));
        assert_eq!(
            split_host_port("example.com"),
            Some(("example.com".into(), 443))
        );
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("h:x"), None);
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}junk").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 403 Forbidden\r\n\r\n{\"kind\":\"Status\",\"message\":\"nope\"}",
        )
        .unwrap();
        assert_eq!(r.message(), "nope");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
    }
}
