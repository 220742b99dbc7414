//! The inner HTTP server: tiny_http on a private Unix socket (in a 0700 directory), reached
//! only by the gatekeeper's workers. The only module that knows tiny_http.

use std::io::{Cursor, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::app::App;
use crate::http::{CLIENT_ADDR_HEADER, Request, Response};

pub struct InnerServer {
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
    socket: PathBuf,
}

impl InnerServer {
    /// Binds the socket and starts `threads` application threads.
    pub fn start(
        socket: &Path,
        app: Arc<App>,
        threads: usize,
        failed: Arc<AtomicBool>,
    ) -> std::io::Result<InnerServer> {
        if socket.exists() {
            // A stale socket from a killed process; the data-dir lock proves nobody uses it.
            std::fs::remove_file(socket)?;
        }
        let listener = UnixListener::bind(socket)?;
        let server = Arc::new(
            tiny_http::Server::from_listener(listener, None).map_err(|e| {
                std::io::Error::other(format!("cannot start the inner server: {e}"))
            })?,
        );
        let stopping = Arc::new(AtomicBool::new(false));
        let handles = (0..threads.max(1))
            .map(|i| {
                let server = Arc::clone(&server);
                let app = Arc::clone(&app);
                let stopping = Arc::clone(&stopping);
                let failed = Arc::clone(&failed);
                std::thread::Builder::new()
                    .name(format!("app-{i}"))
                    .spawn(move || serve_requests(&server, &app, &stopping, &failed))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(InnerServer {
            server,
            threads: handles,
            stopping,
            socket: socket.to_path_buf(),
        })
    }

    /// Stops the application threads after the requests they hold are answered.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn serve_requests(
    server: &tiny_http::Server,
    app: &App,
    stopping: &AtomicBool,
    failed: &AtomicBool,
) {
    loop {
        let mut rq = match server.recv() {
            Ok(rq) => rq,
            Err(e) => {
                if !stopping.load(Ordering::SeqCst) {
                    log::error!("the inner server failed: {e}");
                    failed.store(true, Ordering::SeqCst);
                }
                return;
            }
        };
        let request = match to_request(&mut rq, app.max_body()) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("could not read a request from the gatekeeper: {e}");
                continue;
            }
        };
        let response = app.handle(&request);
        if let Err(e) = rq.respond(to_tiny(response)) {
            log::debug!("the gatekeeper went away before the response was sent: {e}");
        }
    }
}

fn to_request(rq: &mut tiny_http::Request, max_body: usize) -> std::io::Result<Request> {
    let url = rq.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url, String::new()),
    };
    let headers: Vec<(String, String)> = rq
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let client = headers
        .iter()
        .find(|(k, _)| k == CLIENT_ADDR_HEADER)
        .and_then(|(_, v)| v.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut body = Vec::new();
    // The gatekeeper already enforced the route's cap; this bound is belt and braces.
    rq.as_reader()
        .take(max_body as u64 + 1)
        .read_to_end(&mut body)?;
    Ok(Request {
        method: rq.method().as_str().to_string(),
        path,
        query,
        headers,
        body,
        client,
    })
}

fn to_tiny(response: Response) -> tiny_http::Response<Cursor<Vec<u8>>> {
    let headers = response
        .headers
        .iter()
        .filter_map(|(k, v)| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
        .collect();
    let len = response.body.len();
    // A known length, never chunked: the gatekeeper relies on Content-Length framing.
    tiny_http::Response::new(
        tiny_http::StatusCode(response.status),
        headers,
        Cursor::new(response.body),
        Some(len),
        None,
    )
    .with_chunked_threshold(usize::MAX)
}
