//! The gatekeeper: the only code that faces the network.
//!
//! One thread runs a readiness loop (mio) over every client connection, so an idle or slow
//! connection costs a few kilobytes, never a thread. For each connection it terminates TLS
//! (rustls), reads one request head at a time under a deadline, vets it ([`super::head`]),
//! reads the body up to its route's cap under a deadline, and sends the complete request to
//! the inner server over a pooled Unix socket connection driven by this same loop
//! ([`super::upstream`]). Answers are written out under a deadline. Connection caps (total and per client) are
//! enforced at accept time by evicting the oldest idle connection, or refusing.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rustls::{ServerConfig, ServerConnection};

use super::head::{self, Parsed};
use super::stream::{self, FileOut, Spool, Upload};
use super::upstream::{self, Done, InnerResponse, Job, Submitted, Upstream};
use crate::config::Limits;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::reason_phrase;
use crate::metrics::{Metrics, Refusal};

pub const LISTENER: Token = Token(0);
pub const SIGNALS: Token = Token(1);
const FIRST_CONN: usize = 2;

/// How often deadlines are checked.
const TICK: Duration = Duration::from_millis(100);
const READ_CHUNK: usize = 16 * 1024;
/// How much of a stored file one connection sends per turn of the loop, so that large
/// downloads share the loop with every other request (a fresh TLS handshake among 8
/// downloads would otherwise wait for megabytes to be encrypted for each of them).
const FILE_TURN: usize = 256 * 1024;
/// Bytes a file step queues (at most; see `net::stream`).
const FILE_STEP: usize = 64 * 1024;
/// Upload bytes read from the socket before they are written to the file.
const UPLOAD_READ_BUFFER: usize = 1024 * 1024;
/// The `client` of a request whose connection is gone (an upload's last report).
const DETACHED: usize = usize::MAX - 1;
/// How long, and how many bytes, a closing connection drains input (as nginx's lingering
/// close does).
const LINGER: Duration = Duration::from_secs(5);
const LINGER_BYTES: u64 = 32 * 1024 * 1024;
/// Shutting down, lingering is cut to this.
const DRAIN_LINGER: Duration = Duration::from_secs(1);

/// What the gatekeeper needs from the rest of the process.
pub struct Front {
    pub poll: Poll,
    pub listener: TcpListener,
    pub tls: Option<Arc<ServerConfig>>,
    pub limits: Limits,
    pub upstream: Upstream,
    pub metrics: Arc<Metrics>,
    pub signals: Signals,
    pub inner_failed: Arc<AtomicBool>,
    /// Where plain HTTP that reaches the HTTPS port is sent.
    pub public_url: String,
    /// The storage folder, whose files the application may name for a download or an
    /// upload (see [`stream`]).
    pub storage: PathBuf,
}

/// Signal flags set by handlers, plus the pipe that wakes the loop.
pub struct Signals {
    pub pipe: mio::net::UnixStream,
    pub terminate: Arc<AtomicBool>,
    pub reload: Arc<AtomicBool>,
    /// Called on SIGHUP; returns the new TLS configuration, or `None` to keep the old one.
    pub reload_tls: Box<dyn Fn() -> Option<Arc<ServerConfig>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error("the listening socket failed: {0}")]
    Listener(io::Error),
    #[error("the event loop failed: {0}")]
    Poll(io::Error),
    #[error("the application server stopped responding")]
    InnerFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TLS handshake in progress.
    Handshake,
    /// Between requests, nothing received yet.
    Idle,
    /// Part of a request head received.
    Head,
    /// Head vetted, body arriving.
    Body,
    /// Waiting for a worker's answer.
    Dispatched,
    /// Writing the answer.
    Writing,
    /// The last answer is out and our side is shut; input is read and dropped for a short
    /// while so the client sees that answer (e.g. a 413) instead of a reset.
    Lingering,
}

struct Conn {
    sock: TcpStream,
    peer: IpAddr,
    tls: Option<Box<ServerConnection>>,
    phase: Phase,
    deadline: Instant,
    last_active: Instant,
    bytes_in: u64,
    /// Plaintext received and not yet consumed.
    inbuf: Vec<u8>,
    /// Plaintext (or ciphertext-free, plain mode) bytes waiting to be written, for plain mode.
    outbuf: Vec<u8>,
    out_pos: usize,
    pending: Option<head::Head>,
    keep_alive: bool,
    close_after_write: bool,
    /// Reading stopped because `inbuf` is full; resume when it drains.
    read_paused: bool,
    peer_closed: bool,
    generation: u64,
    interest: Interest,
    /// Where the request being served is going (for error shapes and logs).
    path: String,
    /// Plain HTTP arrived on the TLS port: the first request is answered in plain HTTP
    /// (a redirect to HTTPS) and the connection closed.
    plain_on_tls: bool,
    /// The request being served is a HEAD (its answer announces a length but has no body).
    head_only: bool,
    /// A stored file being sent as the answer's body.
    file_out: Option<FileOut>,
    /// An upload request between its `begin` and `end` stages.
    upload: Option<Upload>,
    /// Its turn sending a stored file ended with the socket still writable: serve it
    /// again after the other ready connections.
    yielded: bool,
}

enum After {
    Keep,
    Close,
    /// A complete, vetted request to send to the application.
    Dispatch(Job),
}

pub fn run(front: Front) -> Result<(), FrontError> {
    let Front {
        poll,
        mut listener,
        tls,
        limits,
        upstream,
        metrics,
        mut signals,
        inner_failed,
        public_url,
        storage,
    } = front;
    let mut gate = Gate::new(&limits, upstream);
    let mut ctx = Ctx {
        poll,
        tls,
        limits,
        metrics,
        public_url,
        storage,
    };
    let mut events = Events::with_capacity(1024);
    let mut done = Vec::new();
    let mut draining: Option<Instant> = None;
    let mut accept_retry: Option<Instant> = None;
    let mut next_sweep = Instant::now() + TICK;
    let mut reserve_fd = open_reserve_fd();
    loop {
        if let Err(e) = ctx.poll.poll(&mut events, Some(gate.poll_wait())) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(FrontError::Poll(e));
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => {
                    if draining.is_none() {
                        accept_retry = gate.accept_all(&ctx, &listener, &mut reserve_fd)?;
                    }
                }
                SIGNALS => drain_pipe(&mut signals.pipe),
                token if token.0 >= upstream::TOKEN_BASE => {
                    let (readable, writable) = (event.is_readable(), event.is_writable());
                    gate.upstream.on_event(
                        ctx.poll.registry(),
                        token,
                        readable,
                        writable,
                        &mut done,
                    );
                    gate.deliver(&ctx, &mut done);
                }
                Token(t) => gate.on_event(
                    &ctx,
                    t - FIRST_CONN,
                    event.is_readable(),
                    event.is_writable(),
                ),
            }
        }
        gate.resume_yielded(&ctx);
        let now = Instant::now();
        if accept_retry.is_some_and(|at| now >= at) && draining.is_none() {
            accept_retry = gate.accept_all(&ctx, &listener, &mut reserve_fd)?;
        }
        if now >= next_sweep {
            gate.sweep(&ctx, now);
            next_sweep = now + TICK;
        }
        reload_tls(&mut ctx, &signals);
        if gate.upstream.failed || inner_failed.load(Ordering::SeqCst) {
            return Err(FrontError::InnerFailed);
        }
        if draining.is_none() && signals.terminate.load(Ordering::SeqCst) {
            log::info!("shutting down: no new connections; finishing requests in flight");
            gate.draining = true;
            let _ = ctx.poll.registry().deregister(&mut listener);
            draining = Some(now + ctx.limits.shutdown_grace);
        }
        if let Some(until) = draining {
            gate.close_idle(&ctx, now);
            if gate.open == 0 {
                return Ok(());
            }
            if now >= until {
                log::warn!(
                    "shutdown grace period over; closing {} connections",
                    gate.open
                );
                return Ok(());
            }
        }
    }
}

/// On SIGHUP, new connections get the certificate read again.
fn reload_tls(ctx: &mut Ctx, signals: &Signals) {
    if signals.reload.swap(false, Ordering::SeqCst)
        && ctx.tls.is_some()
        && let Some(config) = (signals.reload_tls)()
    {
        ctx.tls = Some(config);
        log::info!("reloaded the TLS certificate; new connections use it");
    }
}

/// What the connection handlers share: the poll registry, TLS config, limits, metrics.
struct Ctx {
    poll: Poll,
    tls: Option<Arc<ServerConfig>>,
    limits: Limits,
    metrics: Arc<Metrics>,
    public_url: String,
    storage: PathBuf,
}

struct Gate {
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    per_client: HashMap<IpAddr, usize>,
    max_inbuf: usize,
    /// When an accept failure was last logged (they repeat while the cause lasts).
    last_fd_warning: Option<Instant>,
    /// Shutting down: every answer from now on closes its connection.
    draining: bool,
    upstream: Upstream,
    /// Upload files being written or reported on: one request at a time per file.
    spooling: HashSet<PathBuf>,
    /// Connections whose turn sending a file ended while they could still write.
    yielded: Vec<usize>,
    /// Stored files being sent.
    files: stream::FileSlots,
    /// Connections admitted so far: each starts its requests' numbering past the last.
    admitted: u64,
}

impl Gate {
    fn new(limits: &Limits, upstream: Upstream) -> Gate {
        let largest_body = [
            limits.body_max_scim,
            limits.body_max_saml,
            limits.body_max_api,
            limits.body_max_admin,
            limits.body_max_other,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        Gate {
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            per_client: HashMap::new(),
            max_inbuf: limits.max_header_bytes + largest_body + READ_CHUNK,
            last_fd_warning: None,
            draining: false,
            upstream,
            spooling: HashSet::new(),
            yielded: Vec::new(),
            files: stream::FileSlots::default(),
            admitted: 0,
        }
    }

    /// Accepts until the backlog is empty. Returns when to try again if file descriptors
    /// ran out; fails only when the listener itself is broken.
    fn accept_all(
        &mut self,
        front: &Ctx,
        listener: &TcpListener,
        reserve: &mut Option<std::fs::File>,
    ) -> Result<Option<Instant>, FrontError> {
        loop {
            match listener.accept() {
                Ok((sock, addr)) => self.admit(front, sock, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    front.metrics.refused(Refusal::NoFileDescriptors);
                    let now = Instant::now();
                    if self
                        .last_fd_warning
                        .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
                    {
                        log::warn!(
                            "out of file descriptors ({e}); refusing new connections until some close"
                        );
                        self.last_fd_warning = Some(now);
                    }
                    // Free the reserve descriptor to accept and immediately close the
                    // waiting connection, so clients get a refusal instead of a hang.
                    reserve.take();
                    if let Ok((sock, _)) = listener.accept() {
                        drop(sock);
                    }
                    *reserve = open_reserve_fd();
                    self.close_idle_oldest(front, None);
                    return Ok(Some(now + Duration::from_millis(50)));
                }
                Err(e) if listener_is_broken(&e) => return Err(FrontError::Listener(e)),
                Err(e) => {
                    // A network hiccup (ENETDOWN, EPROTO, a firewall's EPERM…) is the
                    // client's or the moment's; pause accepting instead of exiting.
                    let now = Instant::now();
                    if self
                        .last_fd_warning
                        .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
                    {
                        log::warn!("accepting a connection failed ({e}); retrying shortly");
                        self.last_fd_warning = Some(now);
                    }
                    return Ok(Some(now + Duration::from_millis(100)));
                }
            }
        }
    }

    fn admit(&mut self, front: &Ctx, sock: TcpStream, addr: SocketAddr) {
        let peer = canonical_ip(addr.ip());
        let limits = &front.limits;
        let from_peer = self.per_client.get(&peer).copied().unwrap_or(0);
        if from_peer >= limits.max_connections_per_client
            && !self.close_idle_oldest(front, Some(peer))
        {
            front.metrics.refused(Refusal::PerClientCap);
            log::debug!("refusing a connection from {peer}: per-client cap reached");
            return;
        }
        if self.open >= limits.max_connections && !self.close_idle_oldest(front, None) {
            front.metrics.refused(Refusal::TotalCap);
            log::debug!("refusing a connection from {peer}: connection cap reached");
            return;
        }
        let _ = sock.set_nodelay(true);
        let tls = match &front.tls {
            Some(config) => match ServerConnection::new(Arc::clone(config)) {
                Ok(mut c) => {
                    c.set_buffer_limit(None);
                    Some(Box::new(c))
                }
                Err(e) => {
                    log::error!("cannot start a TLS session: {e}");
                    return;
                }
            },
            None => None,
        };
        let now = Instant::now();
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let phase = if tls.is_some() {
            Phase::Handshake
        } else {
            Phase::Idle
        };
        let deadline = now
            + if tls.is_some() {
                limits.handshake_timeout
            } else {
                limits.idle_timeout
            };
        let mut conn = Conn {
            sock,
            peer,
            tls,
            phase,
            deadline,
            last_active: now,
            bytes_in: 0,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            out_pos: 0,
            pending: None,
            keep_alive: true,
            close_after_write: false,
            read_paused: false,
            peer_closed: false,
            // Unique across connections: an answer for a connection that closed must
            // never match the requests of the next one admitted into its slot.
            generation: self.next_generation(),
            interest: Interest::READABLE,
            path: String::new(),
            plain_on_tls: false,
            head_only: false,
            file_out: None,
            upload: None,
            yielded: false,
        };
        if let Err(e) = front.poll.registry().register(
            &mut conn.sock,
            Token(slot + FIRST_CONN),
            Interest::READABLE,
        ) {
            log::warn!("cannot watch a new connection: {e}");
            self.free.push(slot);
            return;
        }
        self.conns[slot] = Some(conn);
        self.open += 1;
        *self.per_client.entry(peer).or_insert(0) += 1;
        front.metrics.accepted();
    }

    /// Closes the least recently active idle connection (of `peer`, or of anyone).
    fn close_idle_oldest(&mut self, front: &Ctx, peer: Option<IpAddr>) -> bool {
        let victim = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
            .filter(|(_, c)| peer.is_none_or(|p| c.peer == p) && is_idle(c))
            .min_by_key(|(_, c)| c.last_active)
            .map(|(i, _)| i);
        match victim {
            Some(slot) => {
                front.metrics.evicted();
                self.close(front, slot);
                true
            }
            None => false,
        }
    }

    /// During shutdown: close every connection that has no request in progress. Each is
    /// read once more first, so a request that already reached the socket is answered
    /// (with `Connection: close`) instead of cut off; answered connections that are
    /// lingering keep draining briefly, so a late close does not reset their answer.
    fn close_idle(&mut self, front: &Ctx, now: Instant) {
        let idle: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().filter(|c| is_idle(c)).map(|_| i))
            .collect();
        for slot in idle {
            self.on_event(front, slot, true, false);
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if conn.phase == Phase::Lingering {
                conn.deadline = conn.deadline.min(now + DRAIN_LINGER);
            } else if is_idle(conn) {
                self.close(front, slot);
            }
        }
    }

    fn close(&mut self, front: &Ctx, slot: usize) {
        self.abandon_upload(front, slot, "aborted");
        if let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) {
            let _ = front.poll.registry().deregister(&mut conn.sock);
            self.open -= 1;
            if let Some(n) = self.per_client.get_mut(&conn.peer) {
                *n -= 1;
                if *n == 0 {
                    self.per_client.remove(&conn.peer);
                }
            }
            self.free.push(slot);
            front.metrics.closed();
        }
    }

    /// The first request number of a new connection: 2^32 numbers per connection.
    fn next_generation(&mut self) -> u64 {
        self.admitted += 1;
        self.admitted << 32
    }

    /// How long the loop may wait for events: not at all while a connection waits for its
    /// next turn.
    fn poll_wait(&self) -> Duration {
        if self.yielded.is_empty() {
            TICK
        } else {
            Duration::ZERO
        }
    }

    /// Gives the connections whose file-sending turn ended their next turn.
    fn resume_yielded(&mut self, front: &Ctx) {
        for slot in std::mem::take(&mut self.yielded) {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if std::mem::take(&mut conn.yielded) {
                self.on_event(front, slot, false, true);
            }
        }
    }

    /// An upload body cut off (the client went away, or too slow): the application still
    /// hears what was written, so it can commit it and the client resume from there.
    fn abandon_upload(&mut self, front: &Ctx, slot: usize, outcome: &'static str) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(Upload::Writing(spool)) = conn.upload.take() else {
            return;
        };
        let (request, path) = spool.end_request(Some(outcome));
        let job = Job {
            client: DETACHED,
            generation: 0,
            request,
            head_only: false,
            idempotent: false,
            release: Some(path.clone()),
        };
        let mut done = Vec::new();
        if let Submitted::Overloaded = self.upstream.submit(front.poll.registry(), job, &mut done) {
            self.spooling.remove(&path);
        }
        self.deliver(front, &mut done);
    }

    fn on_event(&mut self, front: &Ctx, slot: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let mut after = After::Keep;
        if readable && !conn.read_paused {
            after = read_in(conn, self.max_inbuf, front);
        }
        if matches!(after, After::Keep) {
            after = advance(conn, slot, front);
        }
        if matches!(after, After::Keep) && (writable || wants_write(conn)) {
            after = flush(conn, slot, front, self.max_inbuf);
        }
        let mut done = Vec::new();
        self.settle(front, slot, after, &mut done);
        self.deliver(front, &mut done);
    }

    /// Writes out answers from the upstream. Delivering one can start a pipelined request
    /// that is answered at once, so this loops until nothing is left.
    fn deliver(&mut self, front: &Ctx, done: &mut Vec<Done>) {
        while !done.is_empty() {
            for d in std::mem::take(done) {
                self.on_done(front, d, done);
            }
        }
    }

    fn on_done(&mut self, front: &Ctx, done: Done, more: &mut Vec<Done>) {
        if let Some(path) = &done.release {
            self.spooling.remove(path);
        }
        let Some(conn) = self.conns.get_mut(done.client).and_then(Option::as_mut) else {
            return;
        };
        if conn.generation != done.generation || conn.phase != Phase::Dispatched {
            return;
        }
        if let Some(Upload::Asking(head)) = conn.upload.take() {
            return self.on_upload_answer(front, done, head, more);
        }
        // Shutting down, the last answer closes the connection; a request already
        // buffered behind this one (pipelined) is still served first.
        conn.keep_alive &= !self.draining || !conn.inbuf.is_empty();
        let bytes = match done.response {
            Ok(r) => match stream::file_body(&r) {
                Some((path, start, len)) => {
                    let opened = match self.files.take(front.limits.max_file_streams) {
                        Some(slot) => FileOut::open(slot, &front.storage, &path, start, len),
                        None => Err(io::Error::new(io::ErrorKind::QuotaExceeded, "busy")),
                    };
                    match opened {
                        Ok(file) => {
                            conn.file_out = (!conn.head_only).then_some(file);
                            serialize(&r, conn.keep_alive, Some(len))
                        }
                        Err(e) if e.kind() == io::ErrorKind::QuotaExceeded => {
                            front.metrics.gate_rejected(503);
                            let e = HttpError::new(
                                Reason::Overloaded,
                                "The gateway is sending as many files as it may at once; try again shortly.",
                            )
                            .with_retry_after(5);
                            serialize_error(&e, &conn.path, conn.keep_alive)
                        }
                        Err(e) => {
                            log::error!("cannot send the stored file {path}: {e}");
                            conn.keep_alive = false;
                            serialize_error(&HttpError::internal(), &conn.path, false)
                        }
                    }
                }
                None => serialize(&r, conn.keep_alive, None),
            },
            Err(e) => {
                conn.keep_alive = false;
                serialize_error(&e, &conn.path, false)
            }
        };
        let after = start_write(conn, bytes, done.client, front, self.max_inbuf);
        self.settle(front, done.client, after, more);
    }

    /// The application's answer to an upload's `begin` stage: with its consent the body
    /// is written to the named file; anything else is the answer, and the unread body is
    /// dropped with the connection.
    fn on_upload_answer(
        &mut self,
        front: &Ctx,
        done: Done,
        head: head::Head,
        more: &mut Vec<Done>,
    ) {
        let slot = done.client;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let consent = done.response.as_ref().ok().and_then(stream::consent);
        let refusal = match (consent, done.response) {
            (Some((relative, offset)), _) => {
                let busy = crate::storage::resolve(&front.storage, &relative)
                    .is_none_or(|p| self.spooling.contains(&p));
                if busy {
                    Err(HttpError::new(
                        Reason::UploadBusy,
                        "Another request is writing this upload; wait for it to finish.",
                    ))
                } else {
                    Spool::open(&front.storage, &relative, offset, &head).map_err(|e| {
                        if e.kind() == io::ErrorKind::ResourceBusy {
                            return HttpError::new(
                                Reason::UploadBusy,
                                "Another writer (a request or `seatgate image add`) holds this upload; wait for it to finish.",
                            );
                        }
                        log::error!("cannot write the upload {relative}: {e}");
                        HttpError::internal()
                    })
                }
            }
            (None, Ok(answer)) => {
                conn.keep_alive = false;
                let bytes = serialize(&answer, false, None);
                let after = start_write(conn, bytes, slot, front, self.max_inbuf);
                return self.settle(front, slot, after, more);
            }
            (None, Err(e)) => Err(e),
        };
        let after = match refusal {
            Ok(spool) => {
                self.spooling.insert(spool.path.clone());
                conn.upload = Some(Upload::Writing(spool));
                conn.phase = Phase::Body;
                conn.deadline = Instant::now() + front.limits.body_timeout;
                if head.expects_continue {
                    let _ = queue_raw(conn, b"HTTP/1.1 100 Continue\r\n\r\n".to_vec());
                }
                match advance(conn, slot, front) {
                    After::Keep if wants_write(conn) => flush(conn, slot, front, self.max_inbuf),
                    other => other,
                }
            }
            Err(e) => {
                log::info!(
                    "refused an upload piece from {}: {} ({})",
                    conn.peer,
                    e.reason.code(),
                    e.status
                );
                conn.keep_alive = false;
                let bytes = serialize_error(&e, &conn.path, false);
                start_write(conn, bytes, slot, front, self.max_inbuf)
            }
        };
        self.settle(front, slot, after, more);
    }

    /// Applies the result of handling an event: close, or update what we wait for.
    fn settle(&mut self, front: &Ctx, slot: usize, after: After, done: &mut Vec<Done>) {
        match after {
            After::Close => self.close(front, slot),
            After::Dispatch(job) => match self.upstream.submit(front.poll.registry(), job, done) {
                Submitted::Accepted => self.settle(front, slot, After::Keep, done),
                Submitted::Overloaded => {
                    front.metrics.gate_rejected(503);
                    let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                        return;
                    };
                    let e = HttpError::new(
                        Reason::Overloaded,
                        "The gateway is busy; try again in a moment.",
                    )
                    .with_retry_after(1);
                    let bytes = serialize_error(&e, &conn.path, conn.keep_alive);
                    let after = start_write(conn, bytes, slot, front, self.max_inbuf);
                    self.settle(front, slot, after, done);
                }
            },
            After::Keep => {
                let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                    return;
                };
                if conn.yielded {
                    self.yielded.push(slot);
                }
                let mut want = Interest::READABLE;
                if wants_write(conn) {
                    want |= Interest::WRITABLE;
                }
                if want != conn.interest {
                    let token = Token(slot + FIRST_CONN);
                    if front
                        .poll
                        .registry()
                        .reregister(&mut conn.sock, token, want)
                        .is_err()
                    {
                        self.close(front, slot);
                        return;
                    }
                    conn.interest = want;
                }
            }
        }
    }

    /// Enforces deadlines.
    fn sweep(&mut self, front: &Ctx, now: Instant) {
        let mut done = Vec::new();
        self.upstream.sweep(front.poll.registry(), now, &mut done);
        self.deliver(front, &mut done);
        let expired: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref()
                    .filter(|c| c.deadline <= now && c.phase != Phase::Dispatched)
                    .map(|_| i)
            })
            .collect();
        for slot in expired {
            self.abandon_upload(front, slot, "timeout");
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            front.metrics.timed_out(phase_name(conn.phase));
            let after = match conn.phase {
                Phase::Head | Phase::Body => {
                    log::debug!(
                        "request from {} timed out in phase {:?}",
                        conn.peer,
                        conn.phase
                    );
                    let e = HttpError::new(
                        Reason::RequestTimeout,
                        "The request did not arrive in time.",
                    );
                    let bytes = serialize_error(&e, &conn.path.clone(), false);
                    conn.keep_alive = false;
                    conn.phase = Phase::Dispatched;
                    start_write(conn, bytes, slot, front, self.max_inbuf)
                }
                _ => After::Close,
            };
            // A timed-out connection gets one short write attempt, then goes.
            let after = match after {
                After::Keep if conn.phase == Phase::Writing => {
                    conn.deadline = now + Duration::from_secs(1);
                    After::Keep
                }
                other => other,
            };
            self.settle(front, slot, after, &mut done);
            self.deliver(front, &mut done);
        }
    }
}

fn is_idle(c: &Conn) -> bool {
    match c.phase {
        Phase::Idle => c.inbuf.is_empty(),
        Phase::Handshake => c.bytes_in == 0,
        Phase::Lingering => true,
        _ => false,
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Handshake => "handshake",
        Phase::Idle => "idle",
        Phase::Head => "head",
        Phase::Body => "body",
        Phase::Dispatched => "app",
        Phase::Writing => "write",
        Phase::Lingering => "linger",
    }
}

/// Reads what the socket has, decrypting with TLS when on.
fn read_in(conn: &mut Conn, max_inbuf: usize, front: &Ctx) -> After {
    if conn.phase == Phase::Lingering {
        return drain(conn);
    }
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        if conn.inbuf.len() >= max_inbuf {
            conn.read_paused = true;
            return After::Keep;
        }
        if conn.tls.is_some() && conn.phase == Phase::Handshake && conn.bytes_in == 0 {
            // A TLS connection starts with a handshake record (0x16); a request line
            // starts with an upper-case method.
            let mut first = [0u8; 1];
            match conn.sock.peek(&mut first) {
                Ok(1) if first[0].is_ascii_uppercase() => {
                    conn.tls = None;
                    conn.plain_on_tls = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Keep,
                _ => {}
            }
        }
        match &mut conn.tls {
            Some(tls) => {
                match tls.read_tls(&mut conn.sock) {
                    Ok(0) => {
                        conn.peer_closed = true;
                    }
                    Ok(n) => conn.bytes_in += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Keep,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return After::Close,
                }
                if let Err(e) = tls.process_new_packets() {
                    log::debug!("TLS error from {}: {e}", conn.peer);
                    front.metrics.tls_failed();
                    // Tell the peer why (the alert is queued by rustls), then close.
                    let _ = tls.write_tls(&mut conn.sock);
                    return After::Close;
                }
                loop {
                    match tls.reader().read(&mut chunk) {
                        Ok(0) => {
                            conn.peer_closed = true;
                            break;
                        }
                        Ok(n) => conn.inbuf.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            conn.peer_closed = true;
                            break;
                        }
                    }
                }
                if conn.peer_closed {
                    return close_unless_answering(conn);
                }
            }
            None => match conn.sock.read(&mut chunk) {
                Ok(0) => {
                    conn.peer_closed = true;
                    return close_unless_answering(conn);
                }
                Ok(n) => {
                    conn.bytes_in += n as u64;
                    conn.inbuf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return After::Close,
            },
        }
    }
}

/// Reads and drops input of a lingering connection; closes at EOF or when the budget is spent.
fn drain(conn: &mut Conn) -> After {
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        match conn.sock.read(&mut chunk) {
            Ok(0) => return After::Close,
            Ok(n) => {
                conn.bytes_in += n as u64;
                if conn.bytes_in > LINGER_BYTES {
                    return After::Close;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Keep,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return After::Close,
        }
    }
}

/// A peer that closed its side while its request is complete may still read the answer
/// (half-close); anything else is finished.
fn close_unless_answering(conn: &mut Conn) -> After {
    conn.keep_alive = false;
    match conn.phase {
        Phase::Dispatched | Phase::Writing => After::Keep,
        Phase::Head | Phase::Body | Phase::Idle | Phase::Handshake | Phase::Lingering => {
            After::Close
        }
    }
}

/// Moves the connection's state machine forward over the bytes received.
fn advance(conn: &mut Conn, slot: usize, front: &Ctx) -> After {
    let limits = &front.limits;
    loop {
        match conn.phase {
            Phase::Handshake => {
                let Some(tls) = &conn.tls else {
                    conn.phase = Phase::Idle;
                    continue;
                };
                if tls.is_handshaking() {
                    return After::Keep;
                }
                conn.phase = Phase::Idle;
                conn.deadline = Instant::now() + limits.idle_timeout;
            }
            Phase::Idle => {
                if conn.inbuf.is_empty() {
                    return After::Keep;
                }
                let now = Instant::now();
                conn.phase = Phase::Head;
                conn.last_active = now;
                // The whole head must arrive by this deadline, however slowly it trickles.
                conn.deadline = now + limits.header_timeout;
            }
            Phase::Head => match head::parse(&conn.inbuf, limits, conn.peer) {
                Parsed::Partial => return After::Keep,
                Parsed::Reject { error, path } => {
                    front.metrics.gate_rejected(error.status);
                    log::info!(
                        "refused a request from {}: {} ({})",
                        conn.peer,
                        error.reason.code(),
                        error.status
                    );
                    conn.keep_alive = false;
                    let bytes = serialize_error(&error, &path, false);
                    conn.phase = Phase::Dispatched;
                    conn.inbuf.clear();
                    return queue_write(conn, bytes);
                }
                Parsed::Complete(h) if conn.plain_on_tls => {
                    log::info!(
                        "answered plain HTTP from {} on the HTTPS port with a pointer to HTTPS",
                        conn.peer
                    );
                    conn.keep_alive = false;
                    conn.phase = Phase::Dispatched;
                    conn.inbuf.clear();
                    return queue_write(conn, head::plain_http_on_tls_port(&h, &front.public_url));
                }
                Parsed::Complete(h) if h.to_disk => {
                    conn.path = h.path.clone();
                    conn.keep_alive = h.keep_alive;
                    return ask_to_upload(conn, slot, h);
                }
                Parsed::Complete(h) => {
                    if let After::Close = await_body(conn, h, limits) {
                        return After::Close;
                    }
                }
            },
            Phase::Body if conn.upload.is_some() => return write_upload(conn, slot, front),
            Phase::Body => {
                let Some(h) = &conn.pending else {
                    return After::Close;
                };
                let total = h.head_len + h.body_len;
                if conn.inbuf.len() < total {
                    return After::Keep;
                }
                let Some(h) = conn.pending.take() else {
                    return After::Close;
                };
                let mut request = h.forward;
                request.extend_from_slice(&conn.inbuf[h.head_len..total]);
                conn.inbuf.drain(..total);
                conn.generation += 1;
                conn.phase = Phase::Dispatched;
                let method = request.split(|b| *b == b' ').next().unwrap_or(b"");
                let idempotent =
                    matches!(method, b"GET" | b"HEAD" | b"PUT" | b"DELETE" | b"OPTIONS");
                let job = Job {
                    client: slot,
                    generation: conn.generation,
                    request,
                    head_only: h.method_is_head,
                    idempotent,
                    release: None,
                };
                return After::Dispatch(job);
            }
            Phase::Dispatched | Phase::Writing | Phase::Lingering => return After::Keep,
        }
    }
}

/// A vetted head: the body, if any, is read next (after `100 Continue` when asked).
fn await_body(conn: &mut Conn, h: head::Head, limits: &Limits) -> After {
    conn.path = h.path.clone();
    conn.keep_alive = h.keep_alive;
    conn.head_only = h.method_is_head;
    if h.expects_continue && h.body_len > 0 && conn.inbuf.len() < h.head_len + h.body_len {
        let r#continue = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        if let After::Close = queue_raw(conn, r#continue) {
            return After::Close;
        }
    }
    conn.pending = Some(h);
    conn.phase = Phase::Body;
    conn.deadline = Instant::now() + limits.body_timeout;
    After::Keep
}

/// Asks the application whether an upload's body may be written (the `begin` stage),
/// before reading any of it.
fn ask_to_upload(conn: &mut Conn, slot: usize, h: head::Head) -> After {
    conn.head_only = false;
    conn.inbuf.drain(..h.head_len);
    conn.generation += 1;
    conn.phase = Phase::Dispatched;
    let request = stream::with_stage(&h.forward, &format!("begin {}", h.body_len));
    conn.upload = Some(Upload::Asking(h));
    After::Dispatch(Job {
        client: slot,
        generation: conn.generation,
        request,
        head_only: false,
        idempotent: true,
        release: None,
    })
}

/// Writes the upload body received so far to its file; once it is all written (or
/// writing failed), reports to the application (the `end` stage).
fn write_upload(conn: &mut Conn, slot: usize, front: &Ctx) -> After {
    loop {
        let Some(Upload::Writing(spool)) = &mut conn.upload else {
            return After::Close;
        };
        let n = spool.wants().min(conn.inbuf.len());
        if n > 0 {
            spool.write(&conn.inbuf[..n]);
            conn.inbuf.drain(..n);
            // Progress, not the whole body, is what must come in time.
            conn.deadline = Instant::now() + front.limits.body_timeout;
        }
        if spool.finished() {
            break;
        }
        if !conn.read_paused {
            return After::Keep;
        }
        conn.read_paused = false;
        if let After::Close = read_in(conn, UPLOAD_READ_BUFFER, front) {
            return After::Close;
        }
    }
    let Some(Upload::Writing(spool)) = conn.upload.take() else {
        return After::Close;
    };
    if spool.cut_short() {
        // The rest of the body is never read: the answer closes the connection.
        conn.keep_alive = false;
        conn.inbuf.clear();
    }
    let (request, path) = spool.end_request(None);
    conn.generation += 1;
    conn.phase = Phase::Dispatched;
    After::Dispatch(Job {
        client: slot,
        generation: conn.generation,
        request,
        head_only: false,
        idempotent: false,
        release: Some(path),
    })
}

/// Queues an answer for a request that will not reach a worker.
fn queue_write(conn: &mut Conn, bytes: Vec<u8>) -> After {
    conn.phase = Phase::Writing;
    conn.close_after_write = !conn.keep_alive;
    conn.deadline = Instant::now() + Duration::from_secs(5);
    queue_raw(conn, bytes)
}

fn start_write(
    conn: &mut Conn,
    bytes: Vec<u8>,
    slot: usize,
    front: &Ctx,
    max_inbuf: usize,
) -> After {
    conn.phase = Phase::Writing;
    conn.close_after_write = !conn.keep_alive;
    conn.deadline = Instant::now() + front.limits.write_timeout;
    if let After::Close = queue_raw(conn, bytes) {
        return After::Close;
    }
    flush(conn, slot, front, max_inbuf)
}

fn queue_raw(conn: &mut Conn, bytes: Vec<u8>) -> After {
    match &mut conn.tls {
        Some(tls) => {
            if tls.writer().write_all(&bytes).is_err() {
                return After::Close;
            }
        }
        None => conn.outbuf.extend_from_slice(&bytes),
    }
    After::Keep
}

fn wants_write(conn: &Conn) -> bool {
    conn.file_out.is_some()
        || match &conn.tls {
            Some(tls) => tls.wants_write(),
            None => conn.out_pos < conn.outbuf.len(),
        }
}

/// Queues the next piece of a stored file's body, when one is being sent. `Ok(false)`
/// when there is nothing more to queue.
fn feed_file(conn: &mut Conn) -> io::Result<bool> {
    let Some(file) = &mut conn.file_out else {
        return Ok(false);
    };
    if file.done() {
        conn.file_out = None;
        return Ok(false);
    }
    match &mut conn.tls {
        Some(tls) => file.feed(|bytes| tls.writer().write(bytes)),
        None => file.feed(|bytes| {
            conn.outbuf.extend_from_slice(bytes);
            Ok(bytes.len())
        }),
    }
}

/// Writes what is pending; when a response is fully written, closes or goes back to
/// reading the next request.
fn flush(conn: &mut Conn, slot: usize, front: &Ctx, max_inbuf: usize) -> After {
    let mut fed = 0usize;
    loop {
        let idle = match &conn.tls {
            Some(tls) => !tls.wants_write(),
            None => conn.out_pos >= conn.outbuf.len(),
        };
        if idle && conn.file_out.is_some() && fed >= FILE_TURN {
            // This connection's turn is over; the loop serves everyone else first and
            // comes back (the socket stays writable, so no event would).
            conn.yielded = true;
            return After::Keep;
        }
        if idle {
            match feed_file(conn) {
                Ok(true) => {
                    fed += FILE_STEP;
                    // A stall, not the length of the download, is what times out.
                    conn.deadline = Instant::now() + front.limits.write_timeout;
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    log::warn!("sending a stored file to {} stopped: {e}", conn.peer);
                    return After::Close;
                }
            }
        }
        let result = match &mut conn.tls {
            Some(tls) => {
                if !tls.wants_write() {
                    break;
                }
                tls.write_tls(&mut conn.sock)
            }
            None => {
                if conn.out_pos >= conn.outbuf.len() {
                    conn.outbuf.clear();
                    conn.out_pos = 0;
                    break;
                }
                conn.sock
                    .write(&conn.outbuf[conn.out_pos..])
                    .inspect(|n| conn.out_pos += n)
            }
        };
        match result {
            Ok(0) => return After::Close,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Keep,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return After::Close,
        }
    }
    if conn.phase != Phase::Writing || conn.file_out.is_some() {
        return After::Keep;
    }
    // The response is out.
    if conn.close_after_write || conn.peer_closed {
        if let Some(tls) = &mut conn.tls {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut conn.sock);
        }
        let _ = conn.sock.shutdown(std::net::Shutdown::Write);
        if conn.peer_closed {
            return After::Close;
        }
        conn.phase = Phase::Lingering;
        conn.deadline = Instant::now() + LINGER;
        conn.inbuf = Vec::new();
        conn.read_paused = false;
        conn.bytes_in = 0;
        return drain(conn);
    }
    let now = Instant::now();
    conn.phase = Phase::Idle;
    conn.last_active = now;
    conn.deadline = now + front.limits.idle_timeout;
    if conn.read_paused {
        conn.read_paused = false;
        if let After::Close = read_in(conn, max_inbuf, front) {
            return After::Close;
        }
    }
    // Pipelined requests already buffered are served next.
    advance(conn, slot, front)
}

/// The answer's head and body; `file_len` is the length of a stored file sent after it.
fn serialize(r: &InnerResponse, keep_alive: bool, file_len: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + r.body.len());
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", r.status, reason_phrase(r.status)).as_bytes(),
    );
    for (k, v) in &r.headers {
        if !k.eq_ignore_ascii_case("content-length") && !crate::http::is_internal_header(k) {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
    }
    let no_body = r.status < 200 || r.status == 204 || r.status == 304;
    if !no_body {
        let len = file_len.unwrap_or(r.body.len() as u64);
        out.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes());
    }
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
    out.extend_from_slice(&r.body);
    out
}

/// An error answer made at the gatekeeper, shaped for the path's surface.
fn serialize_error(e: &HttpError, path: &str, keep_alive: bool) -> Vec<u8> {
    let response = e.render(crate::routes::format_for(path));
    let inner = InnerResponse {
        status: response.status,
        headers: response.headers,
        body: response.body,
    };
    serialize(&inner, keep_alive, None)
}

fn drain_pipe(pipe: &mut mio::net::UnixStream) {
    let mut buf = [0u8; 64];
    while matches!(pipe.read(&mut buf), Ok(n) if n > 0) {}
}

/// IPv4-mapped IPv6 addresses count as the IPv4 client they are.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Errors that mean the listening socket itself is unusable, so retrying cannot help.
fn listener_is_broken(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT | libc::EOPNOTSUPP)
    )
}

/// One descriptor held back so that, when the process runs out, it can still accept and
/// close a connection instead of leaving it hanging in the backlog.
fn open_reserve_fd() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}
