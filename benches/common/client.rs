//! A keep-alive HTTP/1.1 (optionally TLS) client for the benchmarks: one request at a
//! time per connection, latency per call.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where and how to send requests.
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The `Authorization` header value, if any.
    pub authorization: Option<String>,
    pub content_type: &'static str,
    /// Prefixed to every path.
    pub base: String,
}

/// One keep-alive HTTP/1.1 connection.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

pub struct Client<'a> {
    target: &'a Target,
    stream: Stream,
    buf: Vec<u8>,
    /// The server said `Connection: close` (the Python reference does): reconnect.
    closed: bool,
}

impl<'a> Client<'a> {
    pub fn new(target: &'a Target) -> Client<'a> {
        Self::try_new(target).expect("connect")
    }

    pub fn try_new(target: &'a Target) -> std::io::Result<Client<'a>> {
        Ok(Client {
            target,
            stream: Self::connect(target)?,
            buf: Vec::new(),
            closed: false,
        })
    }

    fn connect(target: &Target) -> std::io::Result<Stream> {
        let tcp = TcpStream::connect(target.addr)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(match &target.tls {
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
                Stream::Tls(Box::new(rustls::StreamOwned::new(
                    rustls::ClientConnection::new(Arc::clone(cfg), name).expect("tls"),
                    tcp,
                )))
            }
            None => Stream::Plain(tcp),
        })
    }

    /// Sends one request and returns (status, body, latency).
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Vec<u8>, Duration) {
        self.try_call(method, path, body).expect("request")
    }

    /// `call`, but a refused or dropped connection is an error (the durability bench kills
    /// the server under its clients). Connecting again is the caller's business.
    pub fn try_call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Vec<u8>, Duration)> {
        self.try_call_with(method, path, &[], body)
    }

    /// `try_call` with extra request headers.
    pub fn try_call_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Vec<u8>, Duration)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: localhost\r\nAccept: {}\r\n",
            self.target.base, self.target.content_type
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(auth) = &self.target.authorization {
            req.push_str(&format!("Authorization: {auth}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!(
                "Content-Type: {}\r\nContent-Length: {}\r\n",
                self.target.content_type,
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        let started = Instant::now();
        if self.closed {
            self.stream = Self::connect(self.target)?;
            self.buf.clear();
            self.closed = false;
        }
        self.stream.write_all(req.as_bytes())?;
        let (status, body) = self.read_response()?;
        Ok((status, body, started.elapsed()))
    }

    fn read_response(&mut self) -> std::io::Result<(u16, Vec<u8>)> {
        let mut chunk = [0u8; 16384];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = resp.parse(&self.buf) {
                let status = resp.code.unwrap_or(0);
                let len: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= head + len {
                    self.closed = resp.version == Some(0)
                        || resp.headers.iter().any(|h| {
                            h.name.eq_ignore_ascii_case("connection")
                                && h.value.eq_ignore_ascii_case(b"close")
                        });
                    let body = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    return Ok((status, body));
                }
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
