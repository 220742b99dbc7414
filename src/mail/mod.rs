//! Email: the outbox that sends everything ([`outbox`], over [`smtp`]), the invitation's
//! editable templates ([`templates`]) and the admin notifications ([`notifications`]).

pub mod notifications;
pub mod outbox;
pub mod smtp;
pub mod templates;

use crate::audit::{Actor, AuditAction};
use crate::db::outbox::{self as store, Kind, NewMessage};

/// Queues a test email to `to` (checked to be an address by the caller) and audits it;
/// returns its id in the outbox.
pub fn queue_test(
    tx: &rusqlite::Transaction<'_>,
    to: &str,
    public_url: &str,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<i64> {
    let id = store::enqueue(
        tx,
        &NewMessage {
            kind: Kind::Test,
            recipient: to.to_string(),
            subject: "seatgate test email".into(),
            text_body: format!(
                "This is a test email from seatgate at {public_url}, sent by {actor}: the gateway can send email.\n"
            ),
            html_body: None,
        },
        now,
    )?;
    let detail = serde_json::json!({"to": to, "message": id});
    crate::db::licensing::audit(
        tx,
        now,
        actor,
        AuditAction::TestEmailQueued,
        None,
        crate::db::licensing::AuditAbout {
            detail: Some(&detail.to_string()),
            ..Default::default()
        },
    )?;
    Ok(id)
}

/// Whether `text` is a bare address the mail client will send to (no display name, no
/// quoted parts it would refuse later): one rule for invitations, test emails and
/// notification recipients.
pub fn is_address(text: &str) -> bool {
    text.len() <= 254
        && matches!(crate::email::shape(text), crate::email::Shape::Email { .. })
        && !text.chars().any(|c| c.is_control() || c.is_whitespace())
        && text
            .parse::<lettre::message::Mailbox>()
            .is_ok_and(|m| m.name.is_none() && m.email.to_string() == text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_bare_and_sendable() {
        for ok in ["a@contoso.com", "first.last+tag@sub.contoso.com"] {
            assert!(super::is_address(ok), "{ok}");
        }
        for bad in [
            "Evil <e@evil.test>",
            "\"x<y>\"@contoso.test",
            "x\"<y>\"@contoso.test",
            "\"<script>\"@contoso.test",
            "a@b@c.com",
            "a@",
            "a b@c.com",
            "a@c.com\r\nBcc: x@y.com",
        ] {
            assert!(!super::is_address(bad), "{bad}");
        }
    }
}
