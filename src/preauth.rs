//! Limits on what anyone may ask for before signing in that stores a row: device
//! activations and SSO starts. Each costs a database write, so without a limit one client
//! could grow the database and starve real users. Limits apply per client address and for
//! everyone together; the tables behind them are also capped ([`Admitted::max_outstanding`],
//! enforced where the rows are written, in `db/`).

use std::net::IpAddr;

use crate::clock::Clock;
use crate::config::PreAuthConfig;
use crate::ratelimit::RateLimiter;

pub struct PreAuth {
    per_client: RateLimiter<IpAddr>,
    global: RateLimiter<()>,
    max_outstanding: i64,
}

impl PreAuth {
    pub fn new(config: &PreAuthConfig, clock: &Clock) -> PreAuth {
        PreAuth {
            per_client: RateLimiter::new(
                f64::from(config.per_client_per_minute) / 60.0,
                config.per_client_burst,
                clock.clone(),
            ),
            global: RateLimiter::new(
                f64::from(config.global_per_minute) / 60.0,
                config.global_burst,
                clock.clone(),
            ),
            max_outstanding: i64::from(config.max_outstanding),
        }
    }

    /// Takes one request for `client`: its own limit first, so a client over it never uses
    /// up everyone's. The code that stores the row requires the [`Admitted`] this returns.
    pub fn admit(&self, client: IpAddr) -> Result<Admitted, TooMany> {
        self.per_client
            .check(client)
            .and_then(|()| self.global.check(()))
            .map_err(|retry_after| TooMany { retry_after })?;
        Ok(Admitted {
            max_outstanding: self.max_outstanding,
        })
    }
}

/// Over the limits: retry after this many seconds (`error.rs` makes it a 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Too many sign-in or activation attempts; wait a moment and try again.")]
pub struct TooMany {
    pub retry_after: u32,
}

/// Proof that a request passed the limits, and the cap on the rows it may add to.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    max_outstanding: i64,
}

impl Admitted {
    /// Unfinished rows of one kind kept at most; the oldest go first.
    pub fn max_outstanding(self) -> i64 {
        self.max_outstanding
    }
}
