//! The network side: TLS material, the gatekeeper that faces clients, the worker pool, and
//! the inner tiny_http server on a private Unix socket.
//!
//! ```text
//! client ──TLS──▶ front (mio loop: caps, deadlines, head vetting, body caps)
//!                   │ complete, vetted request
//!                   ▼
//!                 forward (N workers) ──Unix socket──▶ inner (tiny_http) ──▶ app
//! ```

pub mod forward;
pub mod front;
pub mod head;
pub mod inner;
pub mod tls;
