//! What portal forms need around a change: the fields of a refused form, kept on the page
//! shown again (passwords never); and the one-line result of a change that succeeded,
//! shown once on the page the browser is sent to next (post/redirect/get).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::admin::Session;

/// The form the admin sent, when the page is shown again because it was refused: its
/// `action` (which of the page's forms it was) and its fields.
#[derive(Clone, Copy, Default)]
pub struct Sticky<'a>(Option<(&'a str, &'a BTreeMap<String, String>)>);

impl<'a> Sticky<'a> {
    pub fn none() -> Sticky<'static> {
        Sticky(None)
    }

    pub fn of(action: &'a str, form: &'a BTreeMap<String, String>) -> Sticky<'a> {
        Sticky(Some((action, form)))
    }

    /// What field `name` of the form posting to `action` shows: what the admin sent, if
    /// that form was the one refused, else `default`. Passwords are never shown again.
    pub fn value(&self, action: &str, name: &str, default: &str) -> String {
        match self.0 {
            Some((sent, form)) if sent == action && !name.contains("password") => {
                form.get(name).map_or(default, String::as_str).to_string()
            }
            _ => default.to_string(),
        }
    }

    /// Whether the form posting to `action` is the one refused (to open its disclosure).
    pub fn is(&self, action: &str) -> bool {
        matches!(self.0, Some((sent, _)) if sent == action)
    }

    /// Whether `option` of select `name` was the one chosen in the refused form.
    pub fn chose(&self, action: &str, name: &str, option: &str) -> bool {
        matches!(self.0, Some((sent, form)) if sent == action && form.get(name).is_some_and(|v| v == option))
    }
}

/// Destructive forms carry a ticked `confirm` box: the browser requires it, and this
/// refuses anything that posts without it, with `why` saying what the box confirms.
pub fn confirmed(req: &crate::http::Request, why: &str) -> Result<(), crate::error::HttpError> {
    let form = crate::http::parse_form(&req.body)?;
    confirmation(&form, why).map_err(|sentence| {
        crate::error::HttpError::new(crate::domain::problem::Reason::BadRequest, sentence)
    })
}

/// The one rule behind every confirmation: the form's `confirm` box was ticked. Else the
/// sentence asking for it, saying what ticking it confirms (`why`).
pub fn confirmation(form: &BTreeMap<String, String>, why: &str) -> Result<(), String> {
    if form.get("confirm").is_some_and(|v| v == "yes") {
        Ok(())
    } else {
        Err(format!("Tick the box to confirm that {why}."))
    }
}

/// How long a result waits for the page it belongs on, and how many may wait at once (a
/// bound, so sessions that never load the next page cannot grow it).
const FLASH_TTL: Duration = Duration::from_secs(300);
const FLASH_MAX: usize = 10_000;

/// Results of changes waiting for the next page of their session, in memory: a restart
/// loses at most a confirmation, never the change.
#[derive(Default)]
pub struct Flash {
    waiting: Mutex<HashMap<String, (String, Instant)>>,
}

impl Flash {
    /// Keeps `text` for the next page `session` loads.
    pub fn set(&self, session: &Session, text: String) {
        let Ok(mut waiting) = self.waiting.lock() else {
            return;
        };
        let now = Instant::now();
        waiting.retain(|_, (_, at)| now.duration_since(*at) < FLASH_TTL);
        if waiting.len() < FLASH_MAX {
            waiting.insert(session.csrf_token.clone(), (text, now));
        }
    }

    /// The result waiting for `session`, once.
    pub fn take(&self, session: &Session) -> Option<String> {
        let mut waiting = self.waiting.lock().ok()?;
        let (text, at) = waiting.remove(&session.csrf_token)?;
        (at.elapsed() < FLASH_TTL).then_some(text)
    }
}

/// An error text as a sentence on the page: capital first letter, final full stop.
pub fn sentence(text: &str) -> String {
    let mut out: String = {
        let mut chars = text.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    };
    if !out.ends_with(['.', '!', '?', ')']) {
        out.push('.');
    }
    out
}

/// "1 person" / "4 people".
pub fn people(n: usize) -> String {
    if n == 1 {
        "1 person".into()
    } else {
        format!("{n} people")
    }
}

/// What a re-decision of seats did, as a sentence ("" when it changed no seat).
pub fn seat_changes(s: &crate::licensing::reconcile::Summary) -> String {
    let mut parts = Vec::new();
    if s.granted > 0 {
        parts.push(format!("{} received a seat", people(s.granted)));
    }
    if s.revoked > 0 {
        parts.push(format!("{} lost a seat", people(s.revoked)));
    }
    if s.devices_revoked > 0 {
        parts.push(format!(
            "{} {} deactivated",
            s.devices_revoked,
            if s.devices_revoked == 1 {
                "device was"
            } else {
                "devices were"
            }
        ));
    }
    if s.pending > 0 {
        parts.push(format!("{} added to the waiting list", people(s.pending)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" {}.", capitalize(&parts.join("; ")))
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licensing::reconcile::Summary;

    #[test]
    fn seat_changes_read_as_a_sentence() {
        let s = Summary {
            granted: 4,
            pending: 1,
            revoked: 0,
            devices_revoked: 0,
        };
        assert_eq!(
            seat_changes(&s),
            " 4 people received a seat; 1 person added to the waiting list."
        );
        let none = Summary {
            granted: 0,
            pending: 0,
            revoked: 0,
            devices_revoked: 0,
        };
        assert_eq!(seat_changes(&none), "");
    }

    #[test]
    fn only_the_refused_form_keeps_its_fields_and_never_a_password() {
        let form: BTreeMap<String, String> = [("seats", "30"), ("password", "hunter2hunter2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sticky = Sticky::of("/admin/licenses", &form);
        assert_eq!(sticky.value("/admin/licenses", "seats", "25"), "30");
        assert_eq!(sticky.value("/admin/sublicenses", "seats", "25"), "25");
        assert_eq!(sticky.value("/admin/licenses", "password", ""), "");
        assert!(Sticky::none().value("/admin/licenses", "seats", "1") == "1");
    }
}
