//! `seatgate invite …` (invitation emails) and `seatgate mail …` (the outbox).

use std::path::PathBuf;

use clap::Subcommand;

use super::access::ACTOR;
use super::{CliError, runtime};
use crate::clock::{now_unix, rfc3339};
use crate::config::Config;
use crate::db::Db;
use crate::db::outbox as store;
use crate::deploy::invitations::{self, Method};

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Invite people by email to install and activate the app: each gets an email with a
    /// link (single-use, expiring) to a page that says what to do
    #[command(group(clap::ArgGroup::new("who").args(["email", "csv", "group"]).required(true).multiple(true)))]
    Send {
        /// An address to invite (repeat for more)
        #[arg(long)]
        email: Vec<String>,
        /// A file of addresses: one per line, or a CSV whose fields holding an @ are
        /// addresses
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Everyone in this group (name or external id) without an active device
        #[arg(long)]
        group: Option<String>,
        /// Activate with a license key of one device from this license (id or product
        /// name) instead of single sign-on
        #[arg(long, value_name = "LICENSE")]
        key_license: Option<String>,
        /// With --key-license: from this sublicense's seats
        #[arg(long, requires = "key_license")]
        sublicense: Option<String>,
    },
    /// Invitations, newest first, with their status (queued, sent, failed and why, opened,
    /// activated, expired, revoked)
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send an invitation again with a new link (the old link stops working)
    Resend { id: String },
    /// Revoke an invitation: its link stops working
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Queue a test email to ADDRESS (sent by the running server through [smtp])
    Test {
        #[arg(long)]
        to: String,
    },
    /// The outbox, newest first: queued, sent and failed messages with the last error
    Outbox {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send a failed message again
    Retry { id: i64 },
}

pub fn invite(
    db: &Db,
    config: &Config,
    public_url: &str,
    cmd: InviteCommand,
) -> Result<(), CliError> {
    let now = now_unix();
    let organization = crate::deploy::organization(config, public_url);
    let ctx = crate::deploy::invitation_context(config, public_url, &organization);
    let problem = |e: crate::domain::problem::Problem| match e.reason {
        crate::domain::problem::Reason::NotFound
        | crate::domain::problem::Reason::BadRequest
        | crate::domain::problem::Reason::Conflict => CliError::Usage(e.message),
        _ => CliError::Runtime(e.message),
    };
    match cmd {
        InviteCommand::Send {
            email,
            csv,
            group,
            key_license,
            sublicense,
        } => {
            let mut emails = email;
            if let Some(file) = csv {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
                emails.extend(invitations::parse_addresses(&text));
            }
            if let Some(g) = group {
                let members = invitations::group_without_device(db, &g).map_err(problem)?;
                if members.is_empty() {
                    outln!("nobody in {g:?} is without an active device");
                }
                emails.extend(members);
            }
            if emails.is_empty() {
                return Ok(());
            }
            let method = match key_license {
                Some(license) => Method::Key {
                    license,
                    sublicense,
                },
                None => Method::Sso,
            };
            let done =
                invitations::invite(db, &ctx, ACTOR, &emails, &method, now).map_err(problem)?;
            outln!(
                "invited {}; the emails are queued in the outbox{}",
                done.created.len(),
                if config.smtp.host.is_empty() {
                    " (set [smtp] host to send them)"
                } else {
                    ""
                }
            );
            for (address, why) in &done.refused {
                outln!("not invited: {address}: {why}");
            }
        }
        InviteCommand::List { limit } => print_invitations(db, limit, now)?,
        InviteCommand::Resend { id } => {
            let i = invitations::resend(db, &ctx, ACTOR, &id, now).map_err(problem)?;
            outln!(
                "invitation {} to {} queued again with a new link",
                i.id,
                i.email
            );
        }
        InviteCommand::Revoke { id } => {
            let i = invitations::revoke(db, ACTOR, &id, now).map_err(problem)?;
            outln!(
                "invitation {} to {} revoked: its link stops working",
                i.id,
                i.email
            );
        }
    }
    Ok(())
}

/// `invite list`.
fn print_invitations(db: &Db, limit: u32, now: i64) -> Result<(), CliError> {
    let list = db
        .read(|tx| store::invitations(tx, i64::from(limit)))
        .map_err(runtime)?;
    if list.is_empty() {
        outln!("no invitations");
    }
    for i in list {
        let status = invitations::status(&i, now);
        let why = match (status, &i.delivery_error) {
            ("failed" | "queued", Some(e)) => format!(" ({e})"),
            _ => String::new(),
        };
        outln!(
            "{}\t{}\t{}\t{status}{why}\tinvited {}\texpires {}",
            i.id,
            i.email,
            i.method,
            rfc3339(i.created_at),
            rfc3339(i.expires_at)
        );
    }
    Ok(())
}

pub fn mail(db: &Db, config: &Config, cmd: MailCommand) -> Result<(), CliError> {
    let now = now_unix();
    match cmd {
        MailCommand::Test { to } => {
            if !crate::mail::is_address(&to) {
                return Err(CliError::Usage(format!("{to:?} is not an email address")));
            }
            let public_url = crate::server::last_public_url(db)
                .map_err(runtime)?
                .unwrap_or_default();
            let id = db
                .write(|tx| crate::mail::queue_test(tx, &to, &public_url, ACTOR, now))
                .map_err(runtime)?;
            outln!(
                "test email {id} to {to} queued; `seatgate mail outbox` shows whether it was sent{}",
                if config.smtp.host.is_empty() {
                    " (set [smtp] host first)"
                } else {
                    ""
                }
            );
        }
        MailCommand::Outbox { limit } => {
            let (queued, sent, failed) = db.read(store::counts).map_err(runtime)?;
            outln!("{queued} queued, {sent} sent, {failed} failed");
            for m in db
                .read(|tx| store::recent(tx, i64::from(limit)))
                .map_err(runtime)?
            {
                let when = match (m.state.as_str(), m.sent_at) {
                    ("sent", Some(t)) => format!("sent {}", rfc3339(t)),
                    ("queued", _) => format!("next attempt {}", rfc3339(m.next_attempt_at)),
                    _ => "failed".to_string(),
                };
                outln!(
                    "{}\t{}\t{}\t{}\t{when}\t{} attempt(s){}",
                    m.id,
                    m.kind,
                    m.recipient,
                    m.state,
                    m.attempts,
                    m.last_error.map(|e| format!("\t{e}")).unwrap_or_default()
                );
            }
        }
        MailCommand::Retry { id } => {
            let done = db
                .write(|tx| store::requeue(tx, id, now))
                .map_err(runtime)?;
            if !done {
                let known = db.read(|tx| store::message(tx, id)).map_err(runtime)?;
                return Err(CliError::Usage(match known {
                    Some(m) if m.kind == "invitation" => format!(
                        "message {id} is an invitation's email, whose link is not kept: send the invitation again with `seatgate invite resend`"
                    ),
                    Some(m) if m.state == "sent" => format!("message {id} was sent already"),
                    _ => format!("there is no message {id} in the outbox"),
                }));
            }
            outln!("message {id} queued again");
        }
    }
    Ok(())
}
