//! The gatekeeper's side of the private Unix socket: a bounded pool of keep-alive
//! connections to the inner server, driven by the gatekeeper's event loop itself (no thread
//! hand-off per request). Each connection carries one request at a time; requests beyond
//! the pool wait in a bounded queue; beyond that the gatekeeper answers 503.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

use crate::domain::problem::Reason;

use crate::error::HttpError;
use crate::http::PROBE_HEADER;

/// Tokens at and above this belong to upstream connections.
pub const TOKEN_BASE: usize = 1 << 30;

/// A response is never larger than this (admin CSV exports are the largest).
const MAX_RESPONSE_BODY: usize = 256 * 1024 * 1024;
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

pub struct Job {
    /// The client connection waiting for the answer, and which of its requests this is.
    pub client: usize,
    pub generation: u64,
    pub request: Vec<u8>,
    pub head_only: bool,
    /// Whether re-sending is harmless if the upstream connection turns out to be stale.
    pub idempotent: bool,
    /// The upload file this request reports on; the gatekeeper lets another request
    /// write it only once this one is answered.
    pub release: Option<PathBuf>,
}

pub struct Done {
    pub client: usize,
    pub generation: u64,
    pub response: Result<InnerResponse, HttpError>,
    pub release: Option<PathBuf>,
}

#[derive(Debug)]
pub struct InnerResponse {
    pub status: u16,
    /// End-to-end headers only (framing and connection headers removed).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub enum Submitted {
    /// Sent, or waiting for a free connection.
    Accepted,
    /// The queue is full.
    Overloaded,
}

/// The pool. New connections are opened one at a time and used only after a probe request
/// has been answered on them: tiny_http's task pool (0.12) hands a burst of new connections
/// to too few threads and, as each task is a keep-alive connection that never ends, the
/// surplus connections would wait forever. A probe answered proves a thread serves it.
pub struct Upstream {
    socket: PathBuf,
    conns: Vec<Option<UpstreamConn>>,
    idle: Vec<usize>,
    live: usize,
    max_conns: usize,
    /// A connection is being opened and probed.
    warming: bool,
    /// Requests waiting for a connection, with whether each is a retry.
    waiting: VecDeque<(Job, bool)>,
    max_waiting: usize,
    app_timeout: Duration,
    /// The inner server cannot be reached: the process must exit so it is restarted.
    pub failed: bool,
}

struct UpstreamConn {
    stream: UnixStream,
    busy: Option<Exchange>,
}

struct Exchange {
    job: Job,
    written: usize,
    response: Vec<u8>,
    deadline: Instant,
    retried: bool,
}

/// The `client` of the probe exchange that proves a new connection is served.
const PROBE: usize = usize::MAX;

fn probe_job() -> Job {
    Job {
        client: PROBE,
        generation: 0,
        request: format!("GET /healthz HTTP/1.1\r\nHost: seatgate\r\n{PROBE_HEADER}: 1\r\nConnection: keep-alive\r\n\r\n").into_bytes(),
        head_only: false,
        idempotent: true,
        release: None,
    }
}

impl Upstream {
    pub fn new(
        socket: PathBuf,
        max_conns: usize,
        max_waiting: usize,
        app_timeout: Duration,
    ) -> Upstream {
        Upstream {
            socket,
            conns: Vec::new(),
            idle: Vec::new(),
            live: 0,
            max_conns: max_conns.max(1),
            warming: false,
            waiting: VecDeque::new(),
            max_waiting: max_waiting.max(1),
            app_timeout,
            failed: false,
        }
    }

    pub fn submit(&mut self, registry: &Registry, job: Job, done: &mut Vec<Done>) -> Submitted {
        if let Some(slot) = self.idle.pop() {
            self.start(registry, slot, job, false, done);
            return Submitted::Accepted;
        }
        if self.waiting.len() >= self.max_waiting {
            return Submitted::Overloaded;
        }
        self.waiting.push_back((job, false));
        self.grow(registry, done);
        Submitted::Accepted
    }

    pub fn on_event(
        &mut self,
        registry: &Registry,
        token: Token,
        readable: bool,
        writable: bool,
        done: &mut Vec<Done>,
    ) {
        let slot = token.0 - TOKEN_BASE;
        if writable {
            self.pump_write(registry, slot, done);
        }
        if readable {
            self.pump_read(registry, slot, done);
        }
    }

    /// Answers 504 for requests the application did not answer in time.
    pub fn sweep(&mut self, registry: &Registry, now: Instant, done: &mut Vec<Done>) {
        let late: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref()?
                    .busy
                    .as_ref()
                    .filter(|x| x.deadline <= now)
                    .map(|_| i)
            })
            .collect();
        for slot in late {
            let Some(x) = self.drop_conn(registry, slot) else {
                continue;
            };
            log::warn!(
                "the application did not answer within {:?}",
                self.app_timeout
            );
            let timeout = || HttpError {
                status: 504,
                ..HttpError::new(
                    Reason::Unavailable,
                    "The gateway took too long to answer; try again.",
                )
            };
            if x.job.client == PROBE {
                self.warming = false;
                self.fail_waiting(done, timeout);
            } else {
                done.push(finish(x.job, Err(timeout())));
            }
        }
        self.drain_waiting(registry, done);
    }

    /// Opens one more connection, if requests wait, none is being opened, and the pool has
    /// room. It is probed before any request uses it.
    fn grow(&mut self, registry: &Registry, done: &mut Vec<Done>) {
        if self.waiting.is_empty() || self.warming || self.live >= self.max_conns {
            return;
        }
        match self.connect(registry) {
            Ok(slot) => {
                self.warming = true;
                self.start(registry, slot, probe_job(), false, done);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                // Out of descriptors for a moment: the waiting requests are told to retry.
                log::warn!("cannot open another application connection: {e}");
                self.fail_waiting(done, || {
                    HttpError::new(
                        Reason::Overloaded,
                        "The gateway is busy; try again in a moment.",
                    )
                    .with_retry_after(1)
                });
            }
            Err(e) => {
                log::error!("cannot reach the application: {e}");
                self.fail_waiting(done, || {
                    HttpError::new(
                        Reason::Unavailable,
                        "The gateway is restarting; try again in a moment.",
                    )
                    .with_retry_after(2)
                });
            }
        }
    }

    fn fail_waiting(&mut self, done: &mut Vec<Done>, error: impl Fn() -> HttpError) {
        while let Some((job, _)) = self.waiting.pop_front() {
            done.push(finish(job, Err(error())));
        }
    }

    fn connect(&mut self, registry: &Registry) -> io::Result<usize> {
        let mut stream = match UnixStream::connect(&self.socket) {
            Ok(s) => s,
            Err(e) => {
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) {
                    log::error!(
                        "the application socket {} is gone: {e}",
                        self.socket.display()
                    );
                    self.failed = true;
                }
                return Err(e);
            }
        };
        let slot = match self.conns.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        registry.register(
            &mut stream,
            Token(TOKEN_BASE + slot),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.conns[slot] = Some(UpstreamConn { stream, busy: None });
        self.live += 1;
        Ok(slot)
    }

    fn start(
        &mut self,
        registry: &Registry,
        slot: usize,
        job: Job,
        retried: bool,
        done: &mut Vec<Done>,
    ) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            done.push(finish(job, Err(bad_gateway())));
            return;
        };
        conn.busy = Some(Exchange {
            job,
            written: 0,
            response: Vec::new(),
            deadline: Instant::now() + self.app_timeout,
            retried,
        });
        self.pump_write(registry, slot, done);
    }

    fn pump_write(&mut self, registry: &Registry, slot: usize, done: &mut Vec<Done>) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(x) = conn.busy.as_mut() else { return };
        while x.written < x.job.request.len() {
            match conn.stream.write(&x.job.request[x.written..]) {
                Ok(0) => return self.fail(registry, slot, done),
                Ok(n) => x.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(registry, slot, done),
            }
        }
    }

    fn pump_read(&mut self, registry: &Registry, slot: usize, done: &mut Vec<Done>) {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            let n = match conn.stream.read(&mut chunk) {
                Ok(0) => return self.fail(registry, slot, done),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.fail(registry, slot, done),
            };
            let Some(x) = conn.busy.as_mut() else {
                // Bytes nobody asked for: the connection is out of step; drop it.
                log::error!("the application sent an unsolicited response");
                self.drop_conn(registry, slot);
                return;
            };
            x.response.extend_from_slice(&chunk[..n]);
            match parse_response(&x.response, x.job.head_only) {
                Ok(None) => {}
                Ok(Some((response, reusable))) => {
                    let job = conn.busy.take().map(|x| x.job);
                    if reusable {
                        self.idle.push(slot);
                    } else {
                        self.drop_conn(registry, slot);
                    }
                    match job {
                        Some(job) if job.client == PROBE => self.warming = false,
                        Some(job) => done.push(finish(job, Ok(response))),
                        None => {}
                    }
                    self.drain_waiting(registry, done);
                    return;
                }
                Err(detail) => {
                    log::error!("the application sent a malformed response: {detail}");
                    if let Some(x) = self.drop_conn(registry, slot) {
                        self.finish_failed(x, done, bad_gateway);
                    }
                    self.drain_waiting(registry, done);
                    return;
                }
            }
        }
    }

    /// The connection broke. A request that got no byte back and is safe to repeat waits
    /// for another connection (once); anything else is a 502.
    fn fail(&mut self, registry: &Registry, slot: usize, done: &mut Vec<Done>) {
        let Some(x) = self.drop_conn(registry, slot) else {
            return;
        };
        if x.job.client != PROBE && x.response.is_empty() && x.job.idempotent && !x.retried {
            self.waiting.push_front((x.job, true));
        } else {
            log::error!("the application connection closed in the middle of a request");
            self.finish_failed(x, done, bad_gateway);
        }
        self.drain_waiting(registry, done);
    }

    /// Answers a failed exchange; a failed probe fails the requests waiting for it.
    fn finish_failed(&mut self, x: Exchange, done: &mut Vec<Done>, error: fn() -> HttpError) {
        if x.job.client == PROBE {
            self.warming = false;
            self.fail_waiting(done, error);
        } else {
            done.push(finish(x.job, Err(error())));
        }
    }

    fn drop_conn(&mut self, registry: &Registry, slot: usize) -> Option<Exchange> {
        let mut conn = self.conns.get_mut(slot)?.take()?;
        let _ = registry.deregister(&mut conn.stream);
        self.idle.retain(|&i| i != slot);
        self.live -= 1;
        conn.busy
    }

    /// Starts waiting requests on idle connections, and opens another if some still wait.
    fn drain_waiting(&mut self, registry: &Registry, done: &mut Vec<Done>) {
        while !self.waiting.is_empty() {
            let Some(slot) = self.idle.pop() else { break };
            if let Some((job, retried)) = self.waiting.pop_front() {
                self.start(registry, slot, job, retried, done);
            }
        }
        self.grow(registry, done);
    }
}

fn finish(job: Job, response: Result<InnerResponse, HttpError>) -> Done {
    Done {
        client: job.client,
        generation: job.generation,
        response,
        release: job.release,
    }
}

fn bad_gateway() -> HttpError {
    HttpError {
        status: 502,
        ..HttpError::internal()
    }
}

/// Parses a complete response from the start of `buf`: `Ok(None)` while incomplete.
/// Returns the response and whether the connection may carry another request.
fn parse_response(buf: &[u8], head_only: bool) -> Result<Option<(InnerResponse, bool)>, String> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut slots);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return Err("response head too large".into());
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("unparseable response head: {e}")),
    };
    let status = parsed.code.unwrap_or(500);
    let mut length: Option<usize> = None;
    let mut reusable = true;
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let value = String::from_utf8_lossy(h.value).into_owned();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| "bad Content-Length".to_string())?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // The application always sends a known length (see net::inner).
            return Err("unexpected Transfer-Encoding from the application".into());
        } else if h.name.eq_ignore_ascii_case("connection") {
            reusable &= !value.to_ascii_lowercase().contains("close");
        } else if !h.name.eq_ignore_ascii_case("keep-alive")
            && !h.name.eq_ignore_ascii_case("server")
        {
            headers.push((h.name.to_string(), value));
        }
    }
    let has_body = !head_only && status >= 200 && status != 204 && status != 304;
    let len = if has_body {
        length.ok_or("response without Content-Length")?
    } else {
        0
    };
    if len > MAX_RESPONSE_BODY {
        return Err(format!("response body of {len} bytes is too large"));
    }
    if buf.len() < head_len + len {
        return Ok(None);
    }
    if buf.len() > head_len + len {
        return Err("extra bytes after the response".into());
    }
    let body = buf[head_len..head_len + len].to_vec();
    Ok(Some((
        InnerResponse {
            status,
            headers,
            body,
        },
        reusable,
    )))
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn parses_in_pieces_and_strips_framing() {
        let full = b"HTTP/1.1 200 OK\r\nServer: tiny-http\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\nabcd";
        for cut in 0..full.len() {
            assert!(
                parse_response(&full[..cut], false)
                    .expect("valid prefix")
                    .is_none(),
                "cut {cut}"
            );
        }
        let (r, reusable) = parse_response(full, false).expect("ok").expect("complete");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"abcd");
        assert!(reusable);
        assert_eq!(
            r.headers,
            vec![("Content-Type".to_string(), "application/json".to_string())]
        );
    }

    #[test]
    fn head_responses_have_no_body_and_close_is_honoured() {
        let (r, reusable) = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n",
            true,
        )
        .expect("ok")
        .expect("complete");
        assert!(r.body.is_empty());
        assert!(!reusable);
    }

    #[test]
    fn chunked_and_garbage_are_errors() {
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            )
            .is_err()
        );
        assert!(parse_response(b"NOT HTTP\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", false).is_err());
    }
}
