//! Matching a signed-in identity to the SCIM directory: by the IdP's immutable id (against
//! externalId), then the identity (against userName, case-insensitively), then the email
//! (against the primary email). The first match wins.

use crate::db::Db;
use crate::db::directory::{self, UserRow};
use crate::error::HttpError;
use crate::saml::acs::SignedIn;
use crate::scim::resource::fold;

/// What the directory knows about a signed-in identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    User {
        id: String,
        user_name: String,
        active: bool,
    },
    NotProvisioned,
}

pub fn resolve(db: &Db, s: &SignedIn) -> Result<Resolved, HttpError> {
    let found: Option<UserRow> = db.read(|tx| {
        if let Some(immutable) = &s.immutable_id
            && let Some(u) = directory::users_by_external_id(tx, immutable)?
                .into_iter()
                .next()
        {
            return Ok::<_, HttpError>(Some(u));
        }
        if let Some(u) = directory::user_by_name_key(tx, &fold(&s.identity))? {
            return Ok(Some(u));
        }
        match &s.email {
            Some(e) => Ok(directory::user_by_email_key(tx, &fold(e))?),
            None => Ok(None),
        }
    })?;
    Ok(match found {
        Some(u) => Resolved::User {
            id: u.id,
            user_name: u.user_name,
            active: u.active,
        },
        None => Resolved::NotProvisioned,
    })
}
