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

pub mod fds;
pub mod front;
pub mod head;
pub mod inner;
pub mod proxy;
pub mod tls;
pub mod upstream;
