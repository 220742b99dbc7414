//! Device activation with SSO (PRODUCT.md flow 2), in two native-app patterns:
//!
//! - Device authorization (RFC 8628 style): `POST /api/v1/activations` returns a
//!   `device_code` and the browser URL; the user confirms the device in the browser
//!   (`/activate/{key}`, showing the device's name and a code it also shows) and signs in
//!   at the IdP; the ACS completes the activation for the entitled user; the client's poll
//!   on `/api/v1/activations/token` returns the lease.
//! - Loopback redirect (RFC 8252) with PKCE: the same, but the browser is sent back to the
//!   client's `http://127.0.0.1:{port}/…` with a one-time code the client exchanges
//!   together with its `code_verifier`.
//!
//! Each activation expires, is completed at most once, and only by a sign-in started from
//! its own confirmation page (the SAML request is bound to that browser). IdP-initiated
//! sign-ins never complete one.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};
use url::{Host, Url};

use super::leases::{self, LeaseFor};
use super::verdict::{Applicant, verdict};
use crate::audit::{Actor, AuditAction};
use crate::config::LeaseConfig;
use crate::crypto::{b64url, new_secret_token, random_hex, sha256, sha256_hex};
use crate::db::Db;
use crate::db::licensing::{self as store, Activation, ActivationKey, Holder, NewDevice};
use crate::domain::engine::RevokeReason;
use crate::domain::identity::Resolved;
use crate::domain::identity::SignedIn;
use crate::domain::jose::DeviceKey;
use crate::domain::problem::{Problem, Reason};
use crate::preauth::Admitted;

const PENDING: &str = "pending";
const APPROVED: &str = "approved";
const DENIED: &str = "denied";
const CONSUMED: &str = "consumed";

fn bad_request(message: &str) -> Problem {
    Problem::new(Reason::BadRequest, message)
}

/// What `POST /api/v1/activations` asks for, checked.
struct StartRequest {
    email: String,
    key: DeviceKey,
    name: String,
    os: String,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
}

impl StartRequest {
    fn parse(body: &Value) -> Result<StartRequest, Problem> {
        let email = body
            .get("email")
            .and_then(Value::as_str)
            .map(|e| crate::caps::EMAIL.check(e.trim()))
            .transpose()?
            .map(str::to_lowercase)
            .filter(|e| {
                e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
            })
            .ok_or_else(|| bad_request("Give the user's work email as \"email\"."))?;
        let device = body.get("device").ok_or_else(|| {
            bad_request("Describe the device as \"device\": {\"public_key\", \"name\", \"os\"}.")
        })?;
        let key = DeviceKey::from_jwk(device.get("public_key").unwrap_or(&Value::Null))
            .map_err(|e| bad_request(&e.to_string()))?;
        let name = device_text(device.get("name"), "Mac", crate::caps::DEVICE_NAME)?;
        let os = device_text(device.get("os"), "macOS", crate::caps::DEVICE_OS)?;
        let redirect_uri = body
            .get("redirect_uri")
            .and_then(Value::as_str)
            .map(str::to_string);
        let code_challenge = match &redirect_uri {
            Some(uri) => Some(pkce_challenge(body, uri)?),
            None => None,
        };
        Ok(StartRequest {
            email,
            key,
            name,
            os,
            redirect_uri,
            code_challenge,
        })
    }
}

/// A device's name or os: printable, not empty, within its cap.
pub(crate) fn device_text(
    v: Option<&Value>,
    default: &str,
    cap: crate::caps::Cap,
) -> Result<String, Problem> {
    let s = cap.check(v.and_then(Value::as_str).unwrap_or(default).trim())?;
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(bad_request(
            "Device name and os must be printable text, not empty.",
        ));
    }
    Ok(s.to_string())
}

/// The PKCE challenge a loopback `redirect_uri` needs (S256 only).
fn pkce_challenge(body: &Value, redirect_uri: &str) -> Result<String, Problem> {
    loopback_redirect(redirect_uri)?;
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
    let challenge = field("code_challenge");
    if field("code_challenge_method") != "S256" || challenge.len() != 43 {
        return Err(bad_request(
            "A redirect_uri needs PKCE: code_challenge (43 characters) with code_challenge_method S256.",
        ));
    }
    Ok(challenge.to_string())
}

/// A started activation: what the device shows and polls with (RFC 8628 §3.2).
#[derive(Debug)]
pub struct Started {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub interval: u32,
    pub expires_in: i64,
}

/// `POST /api/v1/activations`: records the device's request for activation.
/// Anyone may call it, so the caller must have passed the pre-authentication limits
/// ([`Admitted`]).
pub fn start(
    db: &Db,
    cfg: &LeaseConfig,
    public_url: &str,
    body: &Value,
    admitted: Admitted,
    now: i64,
) -> Result<Started, Problem> {
    let request = StartRequest::parse(body)?;
    let domain = request.email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let device_code = new_secret_token();
    let browser_key = new_secret_token();
    let user_code = user_code();
    let expires_in = cfg.activation_timeout.as_secs() as i64;
    db.write(|tx| {
        if crate::db::idp::target_by_domain(tx, domain)?.is_none() {
            return Err(Problem::new(Reason::DomainUnknown, "Single sign-on is not set up for this email domain. Check the address, or ask your IT administrator."));
        }
        // A live key device may be activated by its person: it then moves to their seat.
        if store::device_by_thumbprint(tx, &request.key.thumbprint)?.is_some_and(|d| d.revoked_at.is_none() && d.key_id.is_none()) {
            return Err(Problem::new(Reason::Conflict, "This device key is already activated; renew its lease, or deactivate it first."));
        }
        store::insert_activation(tx, &Activation {
            device_code_hash: sha256_hex(device_code.as_bytes()),
            browser_key: browser_key.clone(),
            email: request.email.clone(),
            public_jwk: request.key.jwk.to_string(),
            thumbprint: request.key.thumbprint.clone(),
            device_name: request.name.clone(),
            device_os: request.os.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            saml_request_id: None,
            state: PENDING.into(),
            reason: None,
            user_id: None,
            device_id: None,
            user_code: user_code.clone(),
            lease: None,
            auth_code_hash: None,
            interval_secs: i64::from(cfg.poll_interval_secs),
            last_polled_at: None,
            created_at: now,
            expires_at: now + expires_in,
        }, admitted.max_outstanding())?;
        Ok(())
    })?;
    let verification_uri = format!("{public_url}/activate");
    Ok(Started {
        device_code,
        user_code,
        verification_uri_complete: format!("{verification_uri}/{browser_key}"),
        verification_uri,
        interval: cfg.poll_interval_secs,
        expires_in,
    })
}

/// Eight letters from an alphabet without look-alikes, shown as XXXX-XXXX.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let letters: String = crate::crypto::random_bytes(8)
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// A loopback redirect URI as RFC 8252 §7.3 has it: `http`, the host exactly `127.0.0.1`
/// or `[::1]` (not `localhost`, which the RFC calls NOT RECOMMENDED: it may resolve
/// elsewhere), an explicit port, a path, no user info, no fragment. It must also be the
/// parser's own serialization byte for byte, so anything a parser would clean up (line
/// breaks, tabs, dot segments, `0x7f.1`, upper case) is refused rather than repaired.
fn loopback_redirect(uri: &str) -> Result<Url, Problem> {
    let refuse = || {
        Problem::new(
            Reason::InvalidRedirectUri,
            "redirect_uri must be a loopback URL such as http://127.0.0.1:PORT/callback (RFC 8252): http, host 127.0.0.1 or [::1], an explicit port and a path, no user info or fragment, at most 512 bytes.",
        )
    };
    if uri.len() > crate::caps::REDIRECT_URI.max_bytes {
        return Err(refuse());
    }
    let url = Url::parse(uri).map_err(|_| refuse())?;
    let loopback_host = match url.host() {
        Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
        _ => false,
    };
    let ok = url.scheme() == "http"
        && loopback_host
        && url.port().is_some_and(|p| p != 0)
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        && url.as_str() == uri;
    if ok { Ok(url) } else { Err(refuse()) }
}

/// The activation a browser key names, if it can still be confirmed.
pub fn pending_for_browser(db: &Db, browser_key: &str, now: i64) -> Result<Activation, Problem> {
    let a = db
        .read(|tx| store::activation_by(tx, ActivationKey::BrowserKey, browser_key))?
        .ok_or_else(|| {
            Problem::new(
                Reason::ActivationExpired,
                "This activation link is not valid. Start the activation again from your Mac.",
            )
        })?;
    if a.state != PENDING || a.expires_at < now {
        return Err(Problem::new(
            Reason::ActivationExpired,
            "This activation link has expired or was already used. Start the activation again from your Mac.",
        ));
    }
    Ok(a)
}

/// Remembers which sign-in completes the activation.
pub fn bind_sign_in(db: &Db, browser_key: &str, request_id: &str) -> Result<(), Problem> {
    db.write(|tx| {
        if let Some(mut a) = store::activation_by(tx, ActivationKey::BrowserKey, browser_key)? {
            a.saml_request_id = Some(request_id.to_string());
            store::update_activation(tx, &a)?;
        }
        Ok(())
    })
}

/// What the ACS shows (or where it sends the browser) once an activation is decided.
pub enum Completed {
    Page {
        device: String,
        approved: bool,
        message: String,
    },
    Redirect(String),
}

/// Completes the activation the sign-in `request_id` was started for.
pub fn complete(
    db: &Db,
    cfg: &LeaseConfig,
    issuer: &str,
    request_id: Option<&str>,
    signed_in: &SignedIn,
    resolved: &Resolved,
    now: i64,
) -> Result<Completed, Problem> {
    let request_id = request_id.ok_or_else(|| {
        Problem::new(
            Reason::ActivationExpired,
            "Activations are completed only from their own sign-in.",
        )
    })?;
    let decided = db.write(|tx| {
        let mut a = store::activation_by(tx, ActivationKey::SamlRequest, request_id)?
            .ok_or_else(|| Problem::new(Reason::ActivationExpired, "This activation is not known. Start it again from your Mac."))?;
        if a.state != PENDING || a.expires_at < now {
            return Err(Problem::new(Reason::ActivationExpired, "This activation has expired or was already completed. Start it again from your Mac."));
        }
        // Checked again before anything is decided: the stored value may predate the rules.
        let redirect = a.redirect_uri.as_deref().map(loopback_redirect).transpose()?;
        let actor = Actor::Saml(signed_in.connection.clone());
        let decision = decide(tx, cfg, issuer, &a, resolved, now)?;
        match &decision {
            Ok((user_id, device_id, lease)) => {
                a.state = APPROVED.into();
                a.user_id = Some(user_id.clone());
                a.device_id = Some(device_id.clone());
                a.lease = Some(lease.token.clone());
                let detail = json!({"name": a.device_name, "os": a.device_os, "lease": lease.id}).to_string();
                store::audit(tx, now, &actor, AuditAction::DeviceActivated, Some(user_id),
                    store::AuditAbout { subject: Some(device_id), detail: Some(&detail), reason: None })?;
                crate::db::outbox::mark_activated(tx, Some(&a.email), None, now)?;
            }
            Err(reason) => {
                a.state = DENIED.into();
                a.reason = Some(reason.code().to_string());
                let user_id = match resolved { Resolved::User { id, .. } => Some(id.as_str()), Resolved::NotProvisioned => None };
                store::audit(tx, now, &actor, AuditAction::ActivationRefused, user_id,
                    store::AuditAbout { subject: Some(&signed_in.identity), reason: Some(reason.code()), detail: None })?;
            }
        }
        let code = match (&decision, &redirect) {
            (Ok(_), Some(_)) => {
                let code = new_secret_token();
                a.auth_code_hash = Some(sha256_hex(code.as_bytes()));
                Some(code)
            }
            _ => None,
        };
        store::update_activation(tx, &a)?;
        Ok((a, decision.map(|_| ()), code, redirect))
    })?;
    let (a, decision, code, redirect) = decided;
    crate::metrics::licensing().activation("sso", decision.as_ref().err().map(|r| r.code()));
    if let Some(mut url) = redirect {
        // The serializer encodes each pair; nothing is spliced into the URL as text.
        let mut query = url.query_pairs_mut();
        match (&decision, code) {
            (Ok(()), Some(code)) => query.append_pair("code", &code),
            (Err(reason), _) => query
                .append_pair("error", "access_denied")
                .append_pair("reason", reason.code()),
            (Ok(()), None) => query.append_pair("error", "server_error"),
        };
        drop(query);
        return Ok(Completed::Redirect(url.into()));
    }
    Ok(match decision {
        Ok(()) => Completed::Page {
            device: a.device_name,
            approved: true,
            message: "This device is activated. You can close this window and return to the app."
                .into(),
        },
        Err(reason) => Completed::Page {
            device: a.device_name,
            approved: false,
            message: format!("{} (Reason code {})", refusal(reason), reason.code()),
        },
    })
}

fn refusal(reason: Reason) -> &'static str {
    match reason {
        Reason::UserNotProvisioned => {
            "Your account has not been provisioned to this gateway yet. Ask your IT administrator."
        }
        Reason::UserInactive => "Your account is deactivated.",
        Reason::NotEntitled => "Your account is not in a group that gets this product.",
        Reason::NoSeats => {
            "All seats are taken; you are on the waiting list and get a seat as soon as one frees up."
        }
        Reason::LicenseExpired => "Your organization's license has expired.",
        Reason::DeviceLimit => {
            "You have reached the number of Macs you may activate. Deactivate one first."
        }
        _ => "The activation was refused.",
    }
}

type Decision = Result<(String, String, leases::Lease), Reason>;

/// The activation verdict for who signed in; on success the device and its first lease.
fn decide(
    tx: &rusqlite::Transaction<'_>,
    cfg: &LeaseConfig,
    issuer: &str,
    a: &Activation,
    resolved: &Resolved,
    now: i64,
) -> Result<Decision, Problem> {
    let applicant = match resolved {
        Resolved::User { id, active, .. } => Some(Applicant::load(tx, id, *active)?),
        Resolved::NotProvisioned => None,
    };
    let seat = match verdict(applicant.as_ref(), cfg.device_limit) {
        Ok(seat) => seat,
        Err(reason) => return Ok(Err(reason)),
    };
    let user_id = &seat.user_id;
    let user = crate::db::directory::user_by_id(tx, user_id)?.ok_or_else(Problem::internal)?;
    let key_device = store::device_by_thumbprint(tx, &a.thumbprint)?
        .filter(|d| d.revoked_at.is_none() && d.key_id.is_some());
    let device_id = match &key_device {
        Some(d) => d.id.clone(),
        None => format!("dev-{}", random_hex(8)),
    };
    let lease = leases::mint(
        tx,
        cfg,
        issuer,
        &LeaseFor {
            user_id: Some(user_id),
            email: Some(&user.user_name),
            key_id: None,
            license_id: &seat.license_id,
            sublicense_id: seat.sublicense_id.as_deref(),
            device_id: &device_id,
            thumbprint: &a.thumbprint,
        },
        now,
    )?;
    match key_device {
        Some(d) => move_to_user(tx, &d, user_id, &seat.license_id, &lease, now)?,
        None => store::insert_device(
            tx,
            &NewDevice {
                id: &device_id,
                holder: Holder::User(user_id),
                license_id: &seat.license_id,
                thumbprint: &a.thumbprint,
                public_jwk: &a.public_jwk,
                name: &a.device_name,
                os: &a.device_os,
                lease_id: &lease.id,
                lease_expires_at: lease.expires_at,
            },
            now,
        )?,
    }
    Ok(Ok((user_id.clone(), device_id, lease)))
}

/// Per-device to per-user: a key device its person activated with SSO becomes theirs, on
/// their seat, and the key's per-device seat goes back to its pool (to whoever waits).
/// One transaction, audited.
fn move_to_user(
    tx: &rusqlite::Transaction<'_>,
    device: &store::DeviceRow,
    user_id: &str,
    license_id: &str,
    lease: &leases::Lease,
    now: i64,
) -> Result<(), Problem> {
    let key = device.key_id.clone().unwrap_or_default();
    store::move_device_to_user(
        tx,
        &device.id,
        user_id,
        license_id,
        &lease.id,
        lease.expires_at,
        now,
    )?;
    let detail =
        json!({"key": key, "license": device.license_id, "sublicense": device.sublicense_id});
    store::audit(
        tx,
        now,
        &Actor::System,
        AuditAction::DeviceMovedToUser,
        Some(user_id),
        store::AuditAbout {
            subject: Some(&device.id),
            detail: Some(&detail.to_string()),
            reason: None,
        },
    )?;
    super::reconcile::after_device_seats_change(tx, &device.license_id, &Actor::System, now)?;
    Ok(())
}

/// RFC 8628 §3.5's error words for a poll that gets no lease (and RFC 6749's for a
/// loopback redirect's PKCE mismatch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollError {
    AuthorizationPending,
    SlowDown,
    AccessDenied,
    ExpiredToken,
    InvalidGrant,
}

impl PollError {
    pub fn as_str(self) -> &'static str {
        match self {
            PollError::AuthorizationPending => "authorization_pending",
            PollError::SlowDown => "slow_down",
            PollError::AccessDenied => "access_denied",
            PollError::ExpiredToken => "expired_token",
            PollError::InvalidGrant => "invalid_grant",
        }
    }
}

/// What a device's poll (or its loopback redirect's code exchange) gets.
#[derive(Debug)]
pub enum Poll {
    /// No lease: the RFC 8628 error, our reason code when there is one, and a sentence.
    NoLease {
        error: PollError,
        reason: Option<String>,
        message: &'static str,
    },
    /// The signed lease, once.
    Issued {
        lease: String,
        device_id: Option<String>,
    },
}

fn no_lease(error: PollError, reason: Option<&str>, message: &'static str) -> Poll {
    Poll::NoLease {
        error,
        reason: reason.map(str::to_string),
        message,
    }
}

/// `POST /api/v1/activations/token`: `{"device_code"}` for polling, or
/// `{"code", "code_verifier"}` after a loopback redirect.
pub fn token(db: &Db, body: &[u8], now: i64) -> Result<Poll, Problem> {
    let body: Value =
        serde_json::from_slice(body).map_err(|_| bad_request("The body must be a JSON object."))?;
    let field = |k: &str| body.get(k).and_then(Value::as_str);
    let (key, value, verifier) = match (field("device_code"), field("code")) {
        (Some(dc), _) => (
            ActivationKey::DeviceCodeHash,
            sha256_hex(dc.as_bytes()),
            None,
        ),
        (None, Some(code)) => (
            ActivationKey::AuthCodeHash,
            sha256_hex(code.as_bytes()),
            Some(field("code_verifier").unwrap_or("")),
        ),
        _ => {
            return Err(bad_request(
                "Send {\"device_code\"} (polling) or {\"code\", \"code_verifier\"} (loopback redirect).",
            ));
        }
    };
    db.write(|tx| {
        let Some(mut a) = store::activation_by(tx, key, &value)? else {
            return Ok(no_lease(
                PollError::ExpiredToken,
                Some(Reason::ActivationExpired.code()),
                "This activation is unknown, expired or already completed. Start again.",
            ));
        };
        if a.state == CONSUMED || a.expires_at < now {
            return Ok(no_lease(
                PollError::ExpiredToken,
                Some(Reason::ActivationExpired.code()),
                "This activation expired or was already completed. Start again.",
            ));
        }
        if let Some(verifier) = verifier {
            let expected = a.code_challenge.as_deref().unwrap_or("");
            if b64url(&sha256(verifier.as_bytes())) != expected {
                return Ok(no_lease(
                    PollError::InvalidGrant,
                    None,
                    "The code_verifier does not match the code_challenge.",
                ));
            }
        } else {
            let polled_too_soon = a.last_polled_at.is_some_and(|t| now - t < a.interval_secs);
            a.last_polled_at = Some(now);
            if polled_too_soon && a.state == PENDING {
                a.interval_secs += 5;
                store::update_activation(tx, &a)?;
                return Ok(no_lease(PollError::SlowDown, None, "Poll less often."));
            }
        }
        let poll = match a.state.as_str() {
            PENDING => no_lease(
                PollError::AuthorizationPending,
                None,
                "Waiting for the sign-in in the browser.",
            ),
            DENIED => {
                let reason = a.reason.clone().unwrap_or_default();
                let message =
                    Reason::from_code(&reason).map_or("The activation was refused.", refusal);
                no_lease(PollError::AccessDenied, Some(&reason), message)
            }
            _ if revoked_since(tx, &a)?.is_some() => {
                // The device was revoked between the sign-in and this poll (an admin,
                // deprovisioning, a removed connection): its lease is never handed out.
                let reason = revoked_since(tx, &a)?.unwrap_or_default();
                a.state = DENIED.into();
                a.lease = None;
                a.reason = Some(reason.clone());
                let message =
                    Reason::from_code(&reason).map_or("The activation was refused.", refusal);
                no_lease(PollError::AccessDenied, Some(&reason), message)
            }
            _ => {
                a.state = CONSUMED.into();
                let lease = a.lease.take().unwrap_or_default();
                Poll::Issued {
                    lease,
                    device_id: a.device_id.clone(),
                }
            }
        };
        store::update_activation(tx, &a)?;
        Ok(poll)
    })
}

/// The reason code a completed activation's device was revoked with since, if it was.
fn revoked_since(
    tx: &rusqlite::Transaction<'_>,
    a: &store::Activation,
) -> rusqlite::Result<Option<String>> {
    let Some(device_id) = a.device_id.as_deref() else {
        return Ok(None);
    };
    Ok(store::device(tx, device_id)?
        .filter(|d| d.revoked_at.is_some())
        .map(|d| refusal_for(d.revoke_reason.as_deref()).code().to_string()))
}

/// Renewal's refusal for a revoked device, from its stored revoke reason: a seat lost
/// says why, a device deactivated or gone silent is REVOKED (never the stored word).
fn refusal_for(stored: Option<&str>) -> Reason {
    stored
        .and_then(RevokeReason::parse)
        .map_or(Reason::Revoked, RevokeReason::refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_device_is_refused_with_a_reason_code_from_the_table() {
        // Black-box round 3: a device deactivated before the poll answered `DEACTIVATED`.
        assert_eq!(refusal_for(Some("DEACTIVATED")), Reason::Revoked);
        assert_eq!(refusal_for(Some("SILENT")), Reason::Revoked);
        assert_eq!(refusal_for(Some("USER_INACTIVE")), Reason::UserInactive);
        assert_eq!(refusal_for(None), Reason::Revoked);
        assert_eq!(refusal_for(Some("garbage")), Reason::Revoked);
    }

    #[test]
    fn only_loopback_redirects_are_accepted() {
        for ok in [
            "http://127.0.0.1:51000/cb",
            "http://[::1]:8080/",
            "http://127.0.0.1:9/x?y=1",
        ] {
            assert!(loopback_redirect(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://127.0.0.1:1/cb",
            "http://evil.example:1/cb",
            "http://127.0.0.1.evil.example:1/",
            "http://localhost:9/x",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:1/cb\r\nSet-Cookie: a=b",
            "http://127.0.0.1:1/c\tb",
            "http://u@127.0.0.1:1/cb",
            "http://127.0.0.1:1/cb#f",
            "http://127.1:1/cb",
        ] {
            let e = loopback_redirect(bad).expect_err(bad);
            assert_eq!(e.reason, Reason::InvalidRedirectUri, "{bad}");
        }
    }

    #[test]
    fn user_codes_are_readable() {
        let c = user_code();
        assert_eq!(c.len(), 9);
        assert_eq!(&c[4..5], "-");
    }
}
