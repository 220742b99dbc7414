//! Invitation emails: an admin invites people (typed or CSV addresses, or everyone in a
//! group without an active device); each gets an email through the outbox with a link to
//! a landing page at the gateway that tells them what to do. The link is a random token
//! stored as its SHA-256, working until it expires, is used, revoked or resent.
//!
//! The landing page does not spend the link when shown (mail scanners open links); the
//! invitee's "Continue" does. For a license-key invitation, Continue makes a key for one
//! device and shows it once.

use serde_json::json;

use crate::audit::{Actor, AuditAction};
use crate::crypto::{new_secret_token, random_hex, sha256_hex};
use crate::db::Db;
use crate::db::outbox::{self as store, Invitation, Kind, NewInvitation, NewMessage};
use crate::domain::problem::{Problem, Reason};
use crate::mail::templates::Template;

/// The most addresses one request may invite.
pub const MAX_BATCH: usize = 10_000;

/// How the invitees activate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// They sign in with their work email.
    Sso,
    /// With a license key of one device from this pool (`license`, `sublicense`).
    Key {
        license: String,
        sublicense: Option<String>,
    },
}

/// What every invitation of a request shares.
pub struct Context<'a> {
    pub public_url: &'a str,
    pub organization: &'a str,
    pub valid_for_secs: i64,
}

/// What an invitation request did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Invited {
    /// Invitations made (and emails queued), by id.
    pub created: Vec<String>,
    /// Addresses not invited, and why, in one sentence each.
    pub refused: Vec<(String, String)>,
}

/// Email addresses from what an admin typed or pasted: separated by commas, semicolons,
/// white space or lines; a CSV's header line and other columns are skipped (each field
/// holding an `@` is an address). Case is kept, duplicates dropped.
pub fn parse_addresses(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .map(|f| {
            f.trim()
                .trim_matches(|c| c == '"' || c == '\'' || c == '<' || c == '>')
        })
        .filter(|f| f.contains('@'))
        .filter(|f| seen.insert(f.to_lowercase()))
        .map(str::to_string)
        .collect()
}

/// The emails of the active members of `group` (by name or external id) who have no
/// active device: whom "invite the group" reaches.
pub fn group_without_device(db: &Db, group: &str) -> Result<Vec<String>, Problem> {
    let key = crate::domain::scim::resource::fold(group.trim());
    let emails = db.read(|tx| store::members_without_device(tx, &key))?;
    Ok(emails)
}

fn expires_words(t: i64) -> String {
    crate::clock::rfc3339(t)[..10].to_string()
}

fn link(public_url: &str, token: &str) -> String {
    format!("{public_url}/invite/{token}")
}

/// The email of an invitation, from the stored template.
fn message(
    template: &Template,
    ctx: &Context<'_>,
    email: &str,
    token: &str,
    expires_at: i64,
) -> NewMessage {
    let link = link(ctx.public_url, token);
    let expires = expires_words(expires_at);
    let (subject, text_body, html_body) = template.render(&[
        ("email", email),
        ("link", &link),
        ("expires", &expires),
        ("organization", ctx.organization),
        ("gateway", ctx.public_url),
    ]);
    NewMessage {
        kind: Kind::Invitation,
        recipient: email.to_string(),
        subject,
        text_body,
        html_body: Some(html_body),
    }
}

/// Whether `email` can be invited now, else why not (one phrase).
fn invitable(
    tx: &rusqlite::Transaction<'_>,
    email: &str,
    domains: &std::collections::HashSet<String>,
    seen: &mut std::collections::HashSet<String>,
    now: i64,
) -> rusqlite::Result<Result<(), String>> {
    let domain = match crate::email::shape(email) {
        // The mail server must be able to take it: as the SMTP client parses it.
        crate::email::Shape::Email { domain } if crate::mail::is_address(email) => domain,
        _ => return Ok(Err("not an email address".into())),
    };
    if !seen.insert(email.to_lowercase()) {
        return Ok(Err("listed twice".into()));
    }
    if !domains.contains(&domain) {
        return Ok(Err(format!(
            "no identity provider connection serves {domain} ({})",
            Reason::DomainUnknown.code()
        )));
    }
    if store::open_invitation_for(tx, email, now)?.is_some() {
        return Ok(Err("already invited; resend that invitation instead".into()));
    }
    Ok(Ok(()))
}

/// Invites `emails`: each checked (an address, in a domain an IdP connection serves, not
/// invited already), then invitation and email stored in one transaction.
pub fn invite(
    db: &Db,
    ctx: &Context<'_>,
    actor: &Actor,
    emails: &[String],
    method: &Method,
    now: i64,
) -> Result<Invited, Problem> {
    if emails.len() > MAX_BATCH {
        return Err(Problem::new(
            Reason::BadRequest,
            format!("Invite at most {MAX_BATCH} addresses at once."),
        ));
    }
    if emails.is_empty() {
        return Err(Problem::new(
            Reason::BadRequest,
            "Give at least one email address.",
        ));
    }
    let expires_at = now + ctx.valid_for_secs;
    db.write(|tx| {
        let (license, sublicense) = match method {
            Method::Sso => (None, None),
            Method::Key {
                license,
                sublicense,
            } => {
                let l = crate::licensing::manage::find_license(tx, license).map_err(problem)?;
                let s = sublicense
                    .as_deref()
                    .map(|s| crate::licensing::manage::find_sublicense(tx, s))
                    .transpose()
                    .map_err(problem)?;
                if s.as_ref().is_some_and(|s| s.license_id != l.id) {
                    return Err(Problem::new(
                        Reason::BadRequest,
                        "That sublicense belongs to another license.",
                    ));
                }
                (Some(l.id), s.map(|s| s.id))
            }
        };
        let domains: std::collections::HashSet<String> = crate::db::idp::list(tx)?
            .into_iter()
            .flat_map(|c| c.domains)
            .map(|d| d.to_lowercase())
            .collect();
        let template = Template::load(tx)?;
        let mut done = Invited::default();
        let mut seen = std::collections::HashSet::new();
        for raw in emails {
            let email = raw.trim();
            if let Err(why) = invitable(tx, email, &domains, &mut seen, now)? {
                done.refused.push((email.chars().take(100).collect(), why));
                continue;
            }
            let token = new_secret_token();
            let id = format!("inv-{}", random_hex(8));
            let message_id =
                store::enqueue(tx, &message(&template, ctx, email, &token, expires_at), now)?;
            store::insert_invitation(
                tx,
                &NewInvitation {
                    id: &id,
                    email,
                    method: if license.is_some() { "key" } else { "sso" },
                    license_id: license.as_deref(),
                    sublicense_id: sublicense.as_deref(),
                    token_hash: &sha256_hex(token.as_bytes()),
                    message_id,
                    created_by: &actor.to_string(),
                    expires_at,
                },
                now,
            )?;
            done.created.push(id);
        }
        if !done.created.is_empty() {
            let detail = json!({"invited": done.created.len(), "refused": done.refused.len(),
                                "method": if license.is_some() { "key" } else { "sso" }});
            crate::db::licensing::audit(
                tx,
                now,
                actor,
                AuditAction::InvitationsSent,
                None,
                crate::db::licensing::AuditAbout {
                    detail: Some(&detail.to_string()),
                    ..Default::default()
                },
            )?;
        }
        Ok(done)
    })
}

fn problem(e: crate::licensing::manage::ManageError) -> Problem {
    match e {
        crate::licensing::manage::ManageError::Db(e) => e.into(),
        other => Problem::new(
            Reason::BadRequest,
            crate::admin::forms::sentence(&other.to_string()),
        ),
    }
}

/// Sends an invitation again with a new link (the old one stops working) and a new expiry.
pub fn resend(
    db: &Db,
    ctx: &Context<'_>,
    actor: &Actor,
    id: &str,
    now: i64,
) -> Result<Invitation, Problem> {
    db.write(|tx| {
        let inv = store::invitation(tx, id)?
            .ok_or_else(|| Problem::new(Reason::NotFound, "There is no such invitation."))?;
        if inv.revoked_at.is_some() || inv.activated_at.is_some() {
            return Err(Problem::new(
                Reason::Conflict,
                "This invitation is revoked or already activated; invite again instead.",
            ));
        }
        let token = new_secret_token();
        let expires_at = now + ctx.valid_for_secs;
        let template = Template::load(tx)?;
        if let Some(old) = inv.message_id {
            store::cancel(
                tx,
                old,
                "cancelled: the invitation was sent again with a new link",
            )?;
        }
        // The key an earlier link made goes: the new link makes the invitee's key.
        revoke_key_of(tx, &inv, actor, now)?;
        let message_id = store::enqueue(
            tx,
            &message(&template, ctx, &inv.email, &token, expires_at),
            now,
        )?;
        store::reissue(
            tx,
            id,
            &sha256_hex(token.as_bytes()),
            message_id,
            expires_at,
        )?;
        crate::db::licensing::audit(
            tx,
            now,
            actor,
            AuditAction::InvitationResent,
            None,
            crate::db::licensing::AuditAbout {
                subject: Some(id),
                detail: Some(&json!({"email": inv.email}).to_string()),
                ..Default::default()
            },
        )?;
        store::invitation(tx, id)?.ok_or_else(Problem::internal)
    })
}

/// Revokes the license key an invitation's Continue made, if it is still live.
fn revoke_key_of(
    tx: &rusqlite::Transaction<'_>,
    inv: &Invitation,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<()> {
    if let Some(key_id) = &inv.key_id
        && let Some(k) = crate::db::keys::by_id(tx, key_id)?
        && k.revoked_at.is_none()
    {
        crate::licensing::keys::revoke_in(tx, &k, actor, now)?;
    }
    Ok(())
}

/// Revokes an invitation: its link stops working.
pub fn revoke(db: &Db, actor: &Actor, id: &str, now: i64) -> Result<Invitation, Problem> {
    db.write(|tx| {
        let inv = store::invitation(tx, id)?
            .ok_or_else(|| Problem::new(Reason::NotFound, "There is no such invitation."))?;
        if !store::set_revoked(tx, id, now)? {
            return Err(Problem::new(
                Reason::Conflict,
                "This invitation is already revoked or activated.",
            ));
        }
        if let Some(old) = inv.message_id {
            store::cancel(tx, old, "cancelled: the invitation was revoked")?;
        }
        // A license-key invitation already continued: the key it made goes with it.
        revoke_key_of(tx, &inv, actor, now)?;
        crate::db::licensing::audit(
            tx,
            now,
            actor,
            AuditAction::InvitationRevoked,
            None,
            crate::db::licensing::AuditAbout {
                subject: Some(id),
                detail: Some(&json!({"email": inv.email}).to_string()),
                ..Default::default()
            },
        )?;
        store::invitation(tx, id)?.ok_or_else(Problem::internal)
    })
}

/// An invitation's status: `revoked`, `activated`, `expired`, `opened` (the landing page
/// was seen), or its email's `queued`, `sent`, `failed`.
pub fn status(i: &Invitation, now: i64) -> &'static str {
    if i.revoked_at.is_some() {
        "revoked"
    } else if i.activated_at.is_some() {
        "activated"
    } else if i.expires_at < now {
        "expired"
    } else if i.opened_at.is_some() {
        "opened"
    } else {
        match i.delivery.as_deref() {
            Some("sent") => "sent",
            Some("failed") => "failed",
            _ => "queued",
        }
    }
}

/// The invitation a link's token names, if it still works; any other token is "not
/// found" (nothing says whether it ever existed).
fn live(tx: &rusqlite::Transaction<'_>, token: &str, now: i64) -> Result<Invitation, Problem> {
    let gone = || {
        Problem::new(
            Reason::NotFound,
            "This invitation link is not valid: it may have expired, been used or replaced by a newer one. Ask your IT administrator for a new invitation.",
        )
    };
    if token.len() != 43
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(gone());
    }
    let inv = store::invitation_by_token(tx, &sha256_hex(token.as_bytes()))?.ok_or_else(gone)?;
    if inv.revoked_at.is_some()
        || inv.activated_at.is_some()
        || inv.used_at.is_some()
        || inv.expires_at < now
    {
        return Err(gone());
    }
    Ok(inv)
}

/// The landing page's view: the invitation, now marked opened.
pub fn open(db: &Db, token: &str, now: i64) -> Result<Invitation, Problem> {
    db.write(|tx| {
        let inv = live(tx, token, now)?;
        store::set_opened(tx, &inv.id, now)?;
        Ok(inv)
    })
}

/// What Continue gives the invitee.
#[derive(Debug)]
pub struct Continued {
    pub invitation: Invitation,
    /// For a license-key invitation: the key for their Mac, shown this once.
    pub license_key: Option<String>,
}

/// Continue: spends the link; a license-key invitation gets its one-device key.
pub fn proceed(db: &Db, token: &str, now: i64) -> Result<Continued, Problem> {
    // One transaction: the link is spent and its key made together, so of two racing
    // presses the second finds the link spent and makes nothing.
    db.write(|tx| {
        let inv = live(tx, token, now)?;
        let key = match (inv.method.as_str(), &inv.license_id) {
            ("key", Some(license)) => Some(
                crate::licensing::keys::create_in(
                    tx,
                    &Actor::System,
                    &crate::licensing::keys::NewKeyRequest {
                        license,
                        sublicense: inv.sublicense_id.as_deref(),
                        name: Some(&format!("Invitation for {}", inv.email)),
                        devices: 1,
                    },
                    now,
                )
                .map_err(problem)?,
            ),
            ("key", None) => {
                return Err(Problem::new(
                    Reason::Conflict,
                    "The license of this invitation was removed. Ask your IT administrator for a new invitation.",
                ));
            }
            _ => None,
        };
        store::set_used(tx, &inv.id, key.as_ref().map(|k| k.key.id.as_str()), now)?;
        Ok(Continued {
            invitation: inv,
            license_key: key.map(|k| k.secret),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_lists_and_csv() {
        let typed = "a@x.com, B@x.com;c@x.com\nd@x.com  a@x.com";
        assert_eq!(
            parse_addresses(typed),
            ["a@x.com", "B@x.com", "c@x.com", "d@x.com"]
        );
        let csv = "email,name\n\"e@x.com\",Eve\nf@x.com,Fay\n";
        assert_eq!(parse_addresses(csv), ["e@x.com", "f@x.com"]);
        assert_eq!(parse_addresses("Ann <ann@x.com>"), ["ann@x.com"]);
        assert!(parse_addresses("no addresses here").is_empty());
    }
}
