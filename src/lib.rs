//! seatgate: an on-premises licensing gateway.
//!
//! An organization's identity provider pushes users and groups over SCIM and signs users in
//! over SAML; seatgate turns that into license seats and signed, offline-verifiable device
//! leases. Everything lives in one SQLite file in one data directory.
//!
//! Module map (see README.md, "Architecture", for the invariants):
//! - [`cli`], [`config`], [`logging`]: the command line, configuration, logging.
//! - [`server`]: `seatgate serve` — first run, wiring, shutdown; [`demo`]: `seatgate demo`.
//! - [`net`]: the network front (TLS, gatekeeper, workers, inner tiny_http).
//! - [`app`]: routing and handlers behind the gatekeeper; [`error`] turns errors into
//!   responses; [`http`] holds the request/response values both sides share.
//! - [`admin`]: the admin portal's sign-in, sessions and pages.
//! - [`audit`]: the audit log's vocabulary (who acted, what they did).
//! - [`caps`]: length caps on every field an unauthenticated client sends.
//! - [`db`]: SQLite connections, migrations, backups; [`bundle`]: backups with the keys.
//! - [`datadir`], [`setup`], [`metrics`], [`crypto`], [`clock`]: the appliance's habits.
//! - [`public_url`]: where the gateway is reached, where that came from, mismatches.
//! - [`buildinfo`]: `seatgate --version` (build facts, the linked C libraries' versions).

pub mod admin;
pub mod app;
pub mod audit;
pub mod buildinfo;
pub mod bundle;
pub mod caps;
pub mod cidr;
pub mod cli;
pub mod client;
pub mod client_images;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod datadir;
pub mod db;
pub mod demo;
pub mod deploy;
pub mod distribution;
pub mod domain;
pub mod email;
pub mod end_user;
pub mod endpoints;
pub mod error;
pub mod http;
pub mod licensing;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod page;
pub mod pipeline;
pub mod preauth;
pub mod public_url;
pub mod ratelimit;
pub mod routes;
pub mod saml;
pub mod scim;
pub mod server;
pub mod setup;
pub mod storage;
