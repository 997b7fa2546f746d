//! HTTP/1.1 over TLS on a loopback port, one thread per connection, one
//! request per connection.
//!
//! Deliberately minimal and synchronous: every response carries
//! `Content-Length` and `Connection: close`, so a client never has to guess
//! where a body ends and a test never depends on connection reuse or on a
//! scheduler. Every wait is bounded so a misbehaving client cannot hang a
//! test run, and [`Stop`] tears everything down promptly.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, ServerConfig, ServerConnection, SignatureScheme,
    StreamOwned,
};

use crate::request::{ClientCert, Request, Server};
use crate::timefmt;

/// How long a single read or write may block.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client gets to finish the TLS handshake and send its request
/// head, so a trickle of bytes cannot keep a connection alive forever.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// How long to keep reading after the response, so that the client's
/// close_notify does not arrive at a closed socket and turn into a reset.
const LINGER: Duration = Duration::from_millis(250);
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Open connections per lab (both servers together). Beyond it the accept
/// loop waits, so excess clients queue in the kernel's backlog instead of
/// each costing a thread.
const MAX_CONNECTIONS: usize = 512;

/// What a lab server does with one parsed request.
pub(crate) trait Handler: Send + Sync {
    fn handle(&self, req: &Request) -> Response;
}

pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "application/json", body)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The credential a request presents in its `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credential<'a> {
    Anonymous,
    Bearer(&'a str),
    /// A header that is present but not a usable bearer token.
    Other,
}

pub(crate) fn credential(req: &Request) -> Credential<'_> {
    let Some(value) = req.header("authorization") else {
        return Credential::Anonymous;
    };
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                Credential::Other
            } else {
                Credential::Bearer(token)
            }
        }
        _ => Credential::Other,
    }
}

/// Shared shutdown state: a flag every wait in the lab checks, and the open
/// sockets, so that stopping can unblock threads stuck in a read.
pub(crate) struct Stop {
    state: Mutex<StopState>,
    changed: Condvar,
}

struct StopState {
    stopped: bool,
    next_id: u64,
    open: HashMap<u64, TcpStream>,
}

impl Stop {
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop {
            state: Mutex::new(StopState {
                stopped: false,
                next_id: 0,
                open: HashMap::new(),
            }),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, StopState> {
        // A panicking connection thread must not take the whole lab down
        // with it; the state stays consistent under every operation.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Sleeps for `d`, or less if the lab stops meanwhile.
    pub fn sleep(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut state = self.lock();
        while !state.stopped {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        for sock in state.open.values() {
            let _ = sock.shutdown(Shutdown::Both);
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Waits for a free connection slot, then claims it for `sock`. None
    /// once the lab is stopping.
    fn admit(&self, sock: &TcpStream) -> Option<u64> {
        let clone = sock.try_clone().ok()?;
        let mut state = self.lock();
        while !state.stopped && state.open.len() >= MAX_CONNECTIONS {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.stopped {
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.open.insert(id, clone);
        Some(id)
    }

    fn release(&self, id: u64) {
        self.lock().open.remove(&id);
        self.changed.notify_all();
    }
}

/// Releases a connection slot however the connection thread ends.
struct Slot {
    stop: Arc<Stop>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stop.release(self.id);
    }
}

/// Every request both servers saw, in arrival order.
pub(crate) struct RequestLog {
    state: Mutex<LogState>,
    echo: bool,
}

struct LogState {
    next_seq: u64,
    /// Sorted by sequence number, which `finish` relies on.
    entries: Vec<(u64, Request)>,
}

impl RequestLog {
    pub fn new(echo: bool) -> RequestLog {
        RequestLog {
            state: Mutex::new(LogState {
                next_seq: 0,
                entries: Vec::new(),
            }),
            echo,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, req: &Request) -> u64 {
        let mut state = self.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        state.entries.push((seq, req.clone()));
        seq
    }

    /// Notes the status a request was answered with. A sequence number
    /// rather than an index, because `clear` may run in between.
    fn finish(&self, seq: u64, status: u16) {
        let mut state = self.lock();
        if let Ok(i) = state.entries.binary_search_by_key(&seq, |(s, _)| *s) {
            let req = &mut state.entries[i].1;
            req.status = Some(status);
            if self.echo {
                eprintln!(
                    "attach-node-lab: {} {} {} -> {status}",
                    req.server, req.method, req.target
                );
            }
        }
    }

    pub fn snapshot(&self) -> Vec<Request> {
        self.lock().entries.iter().map(|(_, r)| r.clone()).collect()
    }

    pub fn clear(&self) {
        self.lock().entries.clear();
    }
}

/// Everything a connection thread needs, cloned per connection.
#[derive(Clone)]
pub(crate) struct ServerParts {
    pub server: Server,
    pub tls: Arc<ServerConfig>,
    /// Judges a client certificate after the handshake (see
    /// [`OptionalClientCert`]); None when the server asks for none.
    pub client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    pub handler: Arc<dyn Handler>,
    pub log: Arc<RequestLog>,
    pub stop: Arc<Stop>,
}

/// Asks every client for a certificate, takes whatever it sends (or
/// nothing), and leaves the verdict to the request handler, as
/// kube-apiserver does: Go's `tls.RequestClientCert` in the handshake, then
/// the x509 authenticator, whose rejection is a 401 rather than a failed
/// handshake. The client must still prove it holds the key: handshake
/// signatures are checked by `inner`.
#[derive(Debug)]
pub(crate) struct OptionalClientCert {
    pub inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Go clients send a certificate only if its issuer is in this list.
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A running accept loop.
pub(crate) struct Running {
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

pub(crate) fn bind_loopback() -> io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}

pub(crate) fn spawn(listener: TcpListener, parts: ServerParts) -> io::Result<Running> {
    let addr = listener.local_addr()?;
    let thread = thread::Builder::new()
        .name(format!("lab-{}-accept", parts.server))
        .spawn(move || accept_loop(&listener, &parts))?;
    Ok(Running {
        addr,
        thread: Some(thread),
    })
}

impl Running {
    /// Joins the accept loop; call after [`Stop::stop`].
    pub fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            // accept() does not notice the flag; a connection wakes it.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, parts: &ServerParts) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let sock = match listener.accept() {
            Ok((sock, _)) => sock,
            Err(_) if parts.stop.is_stopped() => break,
            Err(_) => {
                // Typically EMFILE: back off instead of spinning.
                parts.stop.sleep(Duration::from_millis(50));
                continue;
            }
        };
        if parts.stop.is_stopped() {
            break;
        }
        let Some(id) = parts.stop.admit(&sock) else {
            break;
        };
        let slot = Slot {
            stop: Arc::clone(&parts.stop),
            id,
        };
        let conn_parts = parts.clone();
        let spawned = thread::Builder::new()
            .name(format!("lab-{}-conn", parts.server))
            .spawn(move || {
                let _slot = slot;
                serve_connection(sock, &conn_parts);
            });
        // If the thread could not start, the closure (and with it the slot
        // and the socket) was dropped, which releases and closes both.
        if let Ok(handle) = spawned {
            connections.push(handle);
        }
        let (done, running): (Vec<_>, Vec<_>) =
            connections.into_iter().partition(JoinHandle::is_finished);
        for handle in done {
            let _ = handle.join();
        }
        connections = running;
    }
    for handle in connections {
        let _ = handle.join();
    }
}

enum ReadError {
    /// The connection failed or the client gave up; nothing to answer.
    Gone,
    /// Answer with this status and close.
    Reject(u16),
}

fn serve_connection(sock: TcpStream, parts: &ServerParts) {
    let _ = sock.set_read_timeout(Some(IO_TIMEOUT));
    let _ = sock.set_write_timeout(Some(IO_TIMEOUT));
    let _ = sock.set_nodelay(true);
    let Ok(conn) = ServerConnection::new(Arc::clone(&parts.tls)) else {
        return;
    };
    let mut stream = StreamOwned::new(conn, sock);
    let response = match read_request(&mut stream, parts.server) {
        Ok(mut req) => {
            // The handshake is over once a request has been read.
            req.client_cert = client_cert(&stream.conn, parts.client_verifier.as_deref());
            let seq = parts.log.record(&req);
            let response = parts.handler.handle(&req);
            parts.log.finish(seq, response.status);
            response
        }
        Err(ReadError::Gone) => return,
        Err(ReadError::Reject(status)) => Response::new(
            status,
            "text/plain; charset=utf-8",
            format!("{}\n", reason_phrase(status)),
        ),
    };
    if write_response(&mut stream, &response).is_err() {
        return;
    }
    stream.conn.send_close_notify();
    let _ = stream.flush();
    let _ = stream.sock.shutdown(Shutdown::Write);
    linger(&mut stream.sock);
}

/// The client's certificate, and whether it chains to the trusted CA.
fn client_cert(
    conn: &ServerConnection,
    verifier: Option<&dyn ClientCertVerifier>,
) -> Option<ClientCert> {
    let verifier = verifier?;
    let (leaf, intermediates) = conn.peer_certificates()?.split_first()?;
    let trusted = verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .is_ok();
    Some(ClientCert {
        der: leaf.to_vec(),
        trusted,
    })
}

fn linger(sock: &mut TcpStream) {
    let _ = sock.set_read_timeout(Some(LINGER));
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match sock.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn read_request(stream: &mut impl Read, server: Server) -> Result<Request, ReadError> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).map_err(|_| ReadError::Gone)?;
        if n == 0 {
            return Err(ReadError::Gone);
        }
        buf.extend_from_slice(&chunk[..n]);

        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                if head_len > MAX_HEAD_BYTES {
                    return Err(ReadError::Reject(431));
                }
                let req = Request {
                    server,
                    method: parsed.method.unwrap_or_default().to_owned(),
                    target: parsed.path.unwrap_or_default().to_owned(),
                    headers: parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    body: Vec::new(),
                    client_cert: None,
                    status: None,
                };
                let already = buf[head_len..].to_vec();
                let mut req = req;
                req.body = read_body(stream, &req, already)?;
                return Ok(req);
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD_BYTES {
                    return Err(ReadError::Reject(431));
                }
                if Instant::now() > deadline {
                    return Err(ReadError::Gone);
                }
            }
            Err(httparse::Error::TooManyHeaders) => return Err(ReadError::Reject(431)),
            Err(_) => return Err(ReadError::Reject(400)),
        }
    }
}

/// Reads a request body of `Content-Length` bytes, `already` being those
/// that came with the head. Even where no endpoint wants it, leaving it
/// unread would make the kernel reset the connection on close.
fn read_body(
    stream: &mut impl Read,
    req: &Request,
    mut already: Vec<u8>,
) -> Result<Vec<u8>, ReadError> {
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Reject(501));
    }
    let len = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| ReadError::Reject(400))?,
    };
    if len > MAX_BODY_BYTES {
        return Err(ReadError::Reject(413));
    }
    // Bytes after the body would be a pipelined request, which a
    // one-request connection does not answer.
    already.truncate(len);
    let mut chunk = [0u8; 4096];
    while already.len() < len {
        let want = (len - already.len()).min(chunk.len());
        let n = stream
            .read(&mut chunk[..want])
            .map_err(|_| ReadError::Gone)?;
        if n == 0 {
            return Err(ReadError::Gone);
        }
        already.extend_from_slice(&chunk[..n]);
    }
    Ok(already)
}

fn write_response(stream: &mut impl Write, resp: &Response) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nDate: {}\r\n",
        resp.status,
        reason_phrase(resp.status),
        timefmt::imf_fixdate(SystemTime::now())
    );
    for (name, value) in &resp.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        resp.body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&resp.body);
    stream.write_all(&bytes)?;
    stream.flush()
}

pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        418 => "I'm a teapot",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        Request {
            server: Server::ApiServer,
            method: "GET".into(),
            target: "/".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            body: Vec::new(),
            client_cert: None,
            status: None,
        }
    }

    #[test]
    fn credentials() {
        assert_eq!(credential(&req(&[])), Credential::Anonymous);
        assert_eq!(
            credential(&req(&[("Authorization", "Bearer abc")])),
            Credential::Bearer("abc")
        );
        assert_eq!(
            credential(&req(&[("authorization", "bearer  abc ")])),
            Credential::Bearer("abc")
        );
        assert_eq!(
            credential(&req(&[("Authorization", "Basic Zm9vOmJhcg==")])),
            Credential::Other
        );
        assert_eq!(
            credential(&req(&[("Authorization", "Bearer ")])),
            Credential::Other
        );
    }

    #[test]
    fn parses_a_head_and_rejects_oversized_ones() {
        let mut ok: &[u8] = b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n\r\n";
        let r = read_request(&mut ok, Server::ControlPlane).ok().unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/x?y=1");
        assert_eq!(r.path(), "/x");
        assert_eq!(r.header("AUTHORIZATION"), Some("Bearer t"));

        let big = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        let mut big = big.as_bytes();
        assert!(matches!(
            read_request(&mut big, Server::ControlPlane),
            Err(ReadError::Reject(431))
        ));

        let mut garbage: &[u8] = b"\x16\x03\x01 not http\r\n\r\n";
        assert!(matches!(
            read_request(&mut garbage, Server::ControlPlane),
            Err(ReadError::Reject(400))
        ));

        let post: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab";
        let mut post = post.chain(&b"cdefgh"[..]);
        let r = read_request(&mut post, Server::ApiServer).ok().unwrap();
        assert_eq!(r.body, b"abcde");

        let mut body: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n";
        assert!(matches!(
            read_request(&mut body, Server::ControlPlane),
            Err(ReadError::Reject(413))
        ));
    }

    #[test]
    fn stop_cuts_sleeps_short() {
        let stop = Stop::new();
        let s = Arc::clone(&stop);
        let t = thread::spawn(move || {
            let started = Instant::now();
            s.sleep(Duration::from_secs(30));
            started.elapsed()
        });
        thread::sleep(Duration::from_millis(50));
        stop.stop();
        assert!(t.join().unwrap() < Duration::from_secs(5));
    }
}
