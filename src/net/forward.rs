//! The bounded worker pool between the gatekeeper and the inner server. Each worker keeps
//! one keep-alive connection to the inner tiny_http over the private Unix socket, sends
//! one vetted request at a time and reads the response back.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{HttpError, Reason};

/// A response the application sends is never larger than this (the admin CSV exports are
/// the largest).
const MAX_RESPONSE_BODY: usize = 256 * 1024 * 1024;
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

pub struct Job {
    pub slot: usize,
    pub generation: u64,
    pub request: Vec<u8>,
    pub head_only: bool,
    /// Whether re-sending is harmless if the inner connection turns out to be stale.
    pub idempotent: bool,
}

pub struct Done {
    pub slot: usize,
    pub generation: u64,
    pub response: Result<InnerResponse, HttpError>,
}

#[derive(Debug)]
pub struct InnerResponse {
    pub status: u16,
    /// End-to-end headers only (framing and connection headers removed).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Everything a worker needs; cloned into each thread.
#[derive(Clone)]
pub struct WorkerContext {
    pub jobs: Arc<Mutex<Receiver<Job>>>,
    pub done: Sender<Done>,
    pub waker: Arc<mio::Waker>,
    pub socket: PathBuf,
    pub app_timeout: Duration,
    /// Set when the inner server is unreachable: the process must exit and be restarted.
    pub inner_failed: Arc<AtomicBool>,
}

/// Runs until the job channel closes.
pub fn run_worker(ctx: WorkerContext) {
    let mut conn: Option<BufReader<UnixStream>> = None;
    loop {
        let job = {
            let jobs = ctx.jobs.lock().unwrap_or_else(|p| p.into_inner());
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let response = exchange(&mut conn, &ctx, &job);
        let done = Done {
            slot: job.slot,
            generation: job.generation,
            response,
        };
        if ctx.done.send(done).is_err() {
            return;
        }
        if let Err(e) = ctx.waker.wake() {
            log::error!("cannot wake the gatekeeper: {e}");
        }
    }
}

fn exchange(
    conn: &mut Option<BufReader<UnixStream>>,
    ctx: &WorkerContext,
    job: &Job,
) -> Result<InnerResponse, HttpError> {
    for attempt in 0..2 {
        if conn.is_none() {
            *conn = Some(connect(&ctx.socket, ctx.app_timeout).map_err(|e| {
                log::error!(
                    "cannot reach the application socket {}: {e}",
                    ctx.socket.display()
                );
                ctx.inner_failed.store(true, Ordering::SeqCst);
                HttpError::new(
                    Reason::Unavailable,
                    "The gateway is restarting; try again in a moment.",
                )
                .with_retry_after(2)
            })?);
        }
        let Some(stream) = conn.as_mut() else {
            continue;
        };
        match send_and_receive(stream, job) {
            Ok((response, reusable)) => {
                if !reusable {
                    *conn = None;
                }
                return Ok(response);
            }
            Err(Failure::Stale) if attempt == 0 && job.idempotent => {
                *conn = None;
            }
            Err(Failure::TimedOut) => {
                *conn = None;
                return Err(HttpError {
                    status: 504,
                    ..HttpError::new(
                        Reason::Unavailable,
                        "The gateway took too long to answer; try again.",
                    )
                });
            }
            Err(f) => {
                *conn = None;
                log::error!("the application connection failed: {f}");
                return Err(HttpError {
                    status: 502,
                    ..HttpError::internal()
                });
            }
        }
    }
    Err(HttpError {
        status: 502,
        ..HttpError::internal()
    })
}

fn connect(socket: &Path, app_timeout: Duration) -> std::io::Result<BufReader<UnixStream>> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(app_timeout))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(BufReader::with_capacity(16 * 1024, stream))
}

#[derive(Debug)]
enum Failure {
    /// The connection died before any response byte arrived.
    Stale,
    TimedOut,
    Protocol(String),
    Io(std::io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Stale => write!(f, "the connection closed before answering"),
            Failure::TimedOut => write!(f, "no answer in time"),
            Failure::Protocol(detail) => write!(f, "protocol error: {detail}"),
            Failure::Io(e) => write!(f, "{e}"),
        }
    }
}

fn classify_io(e: std::io::Error, got_bytes: bool) -> Failure {
    use std::io::ErrorKind::*;
    match e.kind() {
        WouldBlock | TimedOut => Failure::TimedOut,
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof if !got_bytes => {
            Failure::Stale
        }
        _ => Failure::Io(e),
    }
}

/// Sends the request and reads one response. Returns whether the connection may be reused.
fn send_and_receive(
    stream: &mut BufReader<UnixStream>,
    job: &Job,
) -> Result<(InnerResponse, bool), Failure> {
    stream
        .get_mut()
        .write_all(&job.request)
        .map_err(|e| classify_io(e, false))?;

    let mut head = Vec::with_capacity(512);
    loop {
        let before = head.len();
        let n = stream
            .read_until(b'\n', &mut head)
            .map_err(|e| classify_io(e, !head.is_empty()))?;
        if n == 0 {
            return Err(if before == 0 {
                Failure::Stale
            } else {
                Failure::Protocol("truncated response head".into())
            });
        }
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > MAX_RESPONSE_HEAD {
            return Err(Failure::Protocol("response head too large".into()));
        }
    }
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut slots);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        other => {
            return Err(Failure::Protocol(format!(
                "unparseable response head: {other:?}"
            )));
        }
    }
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
                    .map_err(|_| Failure::Protocol("bad Content-Length".into()))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // The application always sends a known length (see net::inner); anything else
            // is a bug we want to hear about, not to relay.
            return Err(Failure::Protocol(
                "unexpected Transfer-Encoding from the application".into(),
            ));
        } else if h.name.eq_ignore_ascii_case("connection") {
            reusable &= !value.to_ascii_lowercase().contains("close");
        } else if !h.name.eq_ignore_ascii_case("keep-alive")
            && !h.name.eq_ignore_ascii_case("server")
        {
            headers.push((h.name.to_string(), value));
        }
    }
    let has_body = !job.head_only && status >= 200 && status != 204 && status != 304;
    let mut body = Vec::new();
    if has_body {
        let len =
            length.ok_or_else(|| Failure::Protocol("response without Content-Length".into()))?;
        if len > MAX_RESPONSE_BODY {
            return Err(Failure::Protocol(format!(
                "response body of {len} bytes is too large"
            )));
        }
        body = vec![0; len];
        stream
            .read_exact(&mut body)
            .map_err(|e| match classify_io(e, true) {
                Failure::Io(e) => Failure::Io(e),
                other => other,
            })?;
    }
    Ok((
        InnerResponse {
            status,
            headers,
            body,
        },
        reusable,
    ))
}
