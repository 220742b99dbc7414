//! The admin API for invitations and the outbox (`/api/v1/admin/invitations`,
//! `/api/v1/admin/outbox`): through `deploy::invitations` and `db::outbox`, as the portal.

use serde::Deserialize;
use serde_json::{Value, json};

use super::api_write::body;
use super::{Admin, Handled};
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::db::outbox::{self as store, Invitation};
use crate::deploy::invitations::{self, Method};
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::{Request, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    #[serde(default)]
    emails: Vec<String>,
    /// Everyone in this group without an active device.
    group: Option<String>,
    /// Activate with a one-device license key of this license (else single sign-on).
    license: Option<String>,
    sublicense: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    to: String,
}

fn invitation_json(i: &Invitation, now: i64) -> Value {
    json!({"id": i.id, "email": i.email, "method": i.method, "status": invitations::status(i, now),
           "delivery_error": i.delivery_error, "license": i.license_id, "sublicense": i.sublicense_id,
           "created_at": rfc3339(i.created_at), "expires_at": rfc3339(i.expires_at),
           "opened_at": i.opened_at.map(rfc3339), "activated_at": i.activated_at.map(rfc3339),
           "revoked_at": i.revoked_at.map(rfc3339)})
}

impl Admin {
    fn context_parts(&self) -> String {
        crate::deploy::organization(&self.gateway, &self.public_url)
    }

    /// `GET /api/v1/admin/invitations`.
    pub(crate) fn api_invitations(&self) -> Handled {
        let now = self.clock.now_unix();
        let list = self.db.read(|tx| store::invitations(tx, 10_000))?;
        let list: Vec<Value> = list.iter().map(|i| invitation_json(i, now)).collect();
        Ok(Response::json(200, &json!({ "invitations": list })))
    }

    /// `POST /api/v1/admin/invitations`.
    pub(crate) fn api_invite(&self, req: &Request, actor: &Actor) -> Handled {
        let b: InviteBody = body(req)?;
        let mut emails = b.emails;
        if let Some(g) = &b.group {
            let members = invitations::group_without_device(&self.db, g)?;
            if members.is_empty() && emails.is_empty() {
                return Err(HttpError::new(
                    Reason::BadRequest,
                    format!(
                        "Nobody in the group {g} is without an active device (or there is no such group)."
                    ),
                ));
            }
            emails.extend(members);
        }
        let method = match b.license {
            Some(license) => Method::Key {
                license,
                sublicense: b.sublicense,
            },
            None if b.sublicense.is_some() => {
                return Err(HttpError::new(
                    Reason::BadRequest,
                    "A sublicense goes with a license.",
                ));
            }
            None => Method::Sso,
        };
        let organization = self.context_parts();
        let ctx = crate::deploy::invitation_context(&self.gateway, &self.public_url, &organization);
        let done = invitations::invite(
            &self.db,
            &ctx,
            actor,
            &emails,
            &method,
            self.clock.now_unix(),
        )?;
        let refused: Vec<Value> = done
            .refused
            .iter()
            .map(|(e, why)| json!({"email": e, "reason": why}))
            .collect();
        Ok(Response::json(
            201,
            &json!({"invited": done.created, "refused": refused}),
        ))
    }

    /// `POST /api/v1/admin/invitations/{id}/resend`.
    pub(crate) fn api_resend_invitation(&self, actor: &Actor, id: &str) -> Handled {
        let organization = self.context_parts();
        let ctx = crate::deploy::invitation_context(&self.gateway, &self.public_url, &organization);
        let now = self.clock.now_unix();
        let i = invitations::resend(&self.db, &ctx, actor, id, now)?;
        Ok(Response::json(200, &invitation_json(&i, now)))
    }

    /// `DELETE /api/v1/admin/invitations/{id}`: revokes it.
    pub(crate) fn api_revoke_invitation(&self, actor: &Actor, id: &str) -> Handled {
        let now = self.clock.now_unix();
        let i = invitations::revoke(&self.db, actor, id, now)?;
        Ok(Response::json(200, &invitation_json(&i, now)))
    }

    /// `GET /api/v1/admin/outbox`.
    pub(crate) fn api_outbox(&self) -> Handled {
        let (recent, (queued, sent, failed)) = self
            .db
            .read(|tx| Ok::<_, HttpError>((store::recent(tx, 500)?, store::counts(tx)?)))?;
        let list: Vec<Value> = recent
            .iter()
            .map(|m| {
                json!({"id": m.id, "kind": m.kind, "to": m.recipient, "subject": m.subject,
                       "state": m.state, "attempts": m.attempts, "last_error": m.last_error,
                       "created_at": rfc3339(m.created_at), "sent_at": m.sent_at.map(rfc3339),
                       "next_attempt_at": (m.state == "queued").then(|| rfc3339(m.next_attempt_at))})
            })
            .collect();
        Ok(Response::json(
            200,
            &json!({"queued": queued, "sent": sent, "failed": failed, "messages": list}),
        ))
    }

    /// `POST /api/v1/admin/outbox/test`: queues a test email.
    pub(crate) fn api_test_email(&self, req: &Request, actor: &Actor) -> Handled {
        let b: TestBody = body(req)?;
        let to = b.to.trim().to_string();
        if !matches!(crate::email::shape(&to), crate::email::Shape::Email { .. }) || to.len() > 254
        {
            return Err(HttpError::new(
                Reason::BadRequest,
                "\"to\" must be an email address.",
            ));
        }
        let now = self.clock.now_unix();
        let id = self
            .db
            .write(|tx| crate::mail::queue_test(tx, &to, &self.public_url, actor, now))?;
        Ok(Response::json(
            202,
            &json!({"id": id, "to": to, "state": "queued"}),
        ))
    }
}
