//! One HTTP request as a lab server received it, for the request log that
//! tests read back.

use std::fmt;

/// Which lab server saw a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Server {
    ControlPlane,
    ApiServer,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::ControlPlane => "control-plane",
            Server::ApiServer => "api-server",
        })
    }
}

/// One HTTP request as a lab server received it (after TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub server: Server,
    pub method: String,
    /// Path and query exactly as sent.
    pub target: String,
    /// In the order and spelling sent.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; empty without one).
    pub body: Vec<u8>,
    /// The certificate the client presented in the TLS handshake. Only the
    /// API server asks for one.
    pub client_cert: Option<ClientCert>,
    /// The status the lab answered with; None while still being answered.
    pub status: Option<u16>,
}

/// A client certificate as the API server received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// The leaf certificate, DER.
    pub der: Vec<u8>,
    /// Whether it chains to the cluster CA and is within its validity (the
    /// x509 authenticator's verdict; an untrusted one is answered 401).
    pub trusted: bool,
}

impl Request {
    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(path, _)| path)
    }
}
