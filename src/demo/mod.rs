//! `seatgate demo`: the product, for evaluators, in one command. A gateway on loopback over
//! plain HTTP (no certificate to trust) with a seeded organization and a built-in demo IdP,
//! in a temporary data directory deleted when the demo stops.
//!
//! Everything but the IdP is production code on a production path: the organization is
//! provisioned through the SCIM handler, sign-ins go through the real ACS, leases are real.
//! The demo IdP ([`idp`]) exists only here; `serve` cannot enable it.

pub mod idp;
mod seed;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::app::App;
use crate::config::{Config, TlsMode};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "the demo listens on loopback only (127.0.0.1 or [::1]): its identity provider signs anyone in"
    )]
    NotLoopback,
    #[error("cannot prepare the demo's directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("cannot seed the demo organization: {0}")]
    Seed(String),
    #[error(transparent)]
    Serve(Box<crate::server::ServeError>),
}

/// What the server needs to run a demo.
pub struct Demo {
    /// The demo's temporary directory (data, client state).
    pub dir: PathBuf,
    /// How this binary was invoked, for the commands the walkthrough prints.
    pub program: String,
}

/// Runs the demo until Ctrl-C or SIGTERM, then deletes its data.
pub fn run(listen: SocketAddr) -> Result<(), DemoError> {
    if !listen.ip().is_loopback() {
        return Err(DemoError::NotLoopback);
    }
    let dir = std::env::temp_dir().join(format!("seatgate-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    crate::datadir::ensure_private_dir(&dir).map_err(|e| DemoError::Dir(dir.clone(), e))?;
    let config = Config {
        data_dir: dir.join("data"),
        listen,
        tls: crate::config::TlsConfig {
            mode: TlsMode::Off,
            ..Config::default().tls
        },
        ..Config::default()
    };
    crate::page::show_demo_banner();
    // The commands it prints must work from any directory: an absolute path unless the
    // binary was found on PATH.
    let program = match std::env::args().next() {
        Some(p) if p.contains('/') => std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or(p),
        Some(p) if !p.is_empty() => p,
        _ => "seatgate".into(),
    };
    let demo = Demo {
        dir: dir.clone(),
        program,
    };
    let result = crate::server::serve_with(config, Some(demo));
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        log::warn!("cannot delete the demo's directory {}: {e}", dir.display());
    }
    result.map_err(|e| DemoError::Serve(Box::new(e)))
}

impl Demo {
    /// Seeds the organization (before the listener accepts connections).
    pub fn seed(&self, app: &App, idp: &idp::DemoIdp) -> Result<seed::Seeded, DemoError> {
        seed::seed(app, idp).map_err(DemoError::Seed)
    }

    /// The walkthrough, on stdout.
    pub fn print_walkthrough(&self, public_url: &str, seeded: &seed::Seeded) {
        let p = &self.program;
        let client_dir = self.dir.join("client");
        let data_dir = self.dir.join("data");
        println!(
            r#"
==============================================================================
  seatgate DEMO: sample organization, built-in test IdP. Nothing here is real.
  Data lives in {dir} and is deleted when you stop the demo (Ctrl-C).
==============================================================================

1. Open the admin portal (this link signs you in once):

     {link}

2. Activate a Mac as Alice, through SSO at the demo IdP. In a second terminal:

     {p} client --state-dir {client} activate --server {url} --email {alice}

   Open the link it prints, confirm, and pick Alice on the demo IdP's page.
   The client receives a signed lease; `{p} client --state-dir {client} status`
   shows it, and `{p} client --state-dir {client} policy` the policy her Mac gets
   (Engineering's, over the default; the portal's Policies page changes them).
   Alice's device then appears in the portal under Users.

3. See a refusal and its reason: {pending} is in Engineering, whose seats are
   all taken. Activate as them (a second client, so a second device key):

     {p} client --state-dir {client}-2 activate --server {url} --email {pending}

   or ask the gateway why:

     {p} --data-dir {data} explain {pending}

4. Provision like an IdP does (SCIM 2.0, bearer token). List people:

     curl -s -H 'Authorization: Bearer {token}' '{url}/scim/v2/Users?count=3'

   Create one, then add them to the Design group: replace ID with the "id" that the
   create command answers:

     curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/scim+json' \
       -d '{{"userName":"new.hire@acme.example","active":true}}' '{url}/scim/v2/Users'
     curl -s -X PATCH -H 'Authorization: Bearer {token}' -H 'Content-Type: application/scim+json' \
       -d '{{"Operations":[{{"op":"add","path":"members","value":[{{"value":"ID"}}]}}]}}' \
       '{url}/scim/v2/Groups/{design}'

   then `{p} --data-dir {data} explain new.hire@acme.example` says whether they got a seat.

Break-glass admin: {admin_user} / {admin_password}
"#,
            dir = self.dir.display(),
            link = seeded.login_link,
            client = client_dir.display(),
            data = data_dir.display(),
            url = public_url,
            alice = seeded.alice,
            pending = seeded.pending,
            token = seeded.scim_token,
            design = seeded.design_group,
            admin_user = seeded.admin_user,
            admin_password = seeded.admin_password,
        );
    }
}
