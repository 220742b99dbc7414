//! The network side: TLS material, the gatekeeper that faces clients, the worker pool, and
//! the inner tiny_http server on a private Unix socket.
//!
//! ```text
//! client ──TLS──▶ front (mio loop: caps, deadlines, head vetting, body caps)
//!                   │ complete, vetted request
//!                   ▼
//!                 upstream (pool of Unix socket connections, same loop)
//!                   │
//!                   ▼
//!                 inner (tiny_http) ──▶ app threads (the bounded worker pool)
//! ```
//!
//! Stored files (image and package downloads, upload bodies) are the exception: the front
//! streams them between the socket and the storage folder itself ([`stream`]), with the
//! application deciding who may read or write what.

pub mod fds;
pub mod front;
pub mod head;
pub mod inner;
pub mod proxy;
pub mod stream;
pub mod tls;
pub mod upstream;
