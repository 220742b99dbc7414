//! Break-glass passwords: Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, one
//! lane — OWASP's recommendation) in PHC string form.

use argon2::Argon2;

use crate::audit::{Actor, AuditAction};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Break-glass passwords are typed rarely and must resist guessing: at least this long.
pub const MIN_LENGTH: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_LENGTH} characters long")]
    TooShort,
    /// Longer than the sign-in form accepts: such an admin could never sign in.
    #[error("the password must be at most {} bytes long", crate::caps::PASSWORD.max_bytes)]
    TooLong,
    #[error("the username takes {USERNAME_RULE}")]
    Username,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// What a break-glass username may be, said the same way wherever one is chosen.
pub const USERNAME_RULE: &str = "1 to 64 ASCII letters, digits, '.', '_', '@' or '-'";

/// Whether `username` follows [`USERNAME_RULE`].
pub fn valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= crate::caps::USERNAME.max_bytes
        && username
            .chars()
            // ASCII only: no look-alikes of another admin's name (`ｏｐｓ` for `ops`).
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
}

pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    if password.len() > crate::caps::PASSWORD.max_bytes {
        return Err(PasswordError::TooLong);
    }
    let salt = SaltString::encode_b64(&crate::crypto::random_bytes(16))
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True if `password` matches `stored`. An unparsable stored hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spends the time of one verification, so an unknown username is not told apart from a
/// wrong password by how long the answer takes.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("not a password of anyone").unwrap_or_default());
    let _ = verify(password, stored);
}

/// A break-glass admin's new password, checked and hashed before any transaction opens
/// (hashing takes a while).
pub struct NewPassword {
    username: String,
    hash: String,
}

impl NewPassword {
    pub fn new(username: &str, password: &str) -> Result<NewPassword, PasswordError> {
        if !valid_username(username) {
            return Err(PasswordError::Username);
        }
        Ok(NewPassword {
            username: username.to_string(),
            hash: hash(password)?,
        })
    }
}

/// What setting a break-glass password did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordSet {
    /// A new admin, not a changed password.
    pub created: bool,
    /// The admin's open sessions, ended so the old password's sessions do not outlive it.
    pub ended_sessions: usize,
}

/// Sets a break-glass admin's password in the caller's transaction: creates the admin or
/// changes its password, ends its open sessions, and audits it. The command line and
/// first-run setup both set passwords this way.
pub fn set(
    tx: &rusqlite::Transaction<'_>,
    new: &NewPassword,
    actor: &Actor,
    detail: Option<&str>,
    now: i64,
) -> rusqlite::Result<PasswordSet> {
    use crate::db::admin::{self as store, SessionKind};
    let created = store::set_local_admin(tx, &new.username, &new.hash, now)?;
    let ended_sessions = store::end_sessions_of(tx, SessionKind::Local, &new.username, now)?;
    let action = if created {
        AuditAction::LocalAdminCreated
    } else {
        AuditAction::LocalAdminPasswordChanged
    };
    crate::db::licensing::audit(
        tx,
        now,
        actor,
        action,
        None,
        crate::db::licensing::AuditAbout {
            subject: Some(&new.username),
            detail,
            ..Default::default()
        },
    )?;
    Ok(PasswordSet {
        created,
        ended_sessions,
    })
}

/// A random password for `admin set-password --generate`: 20 characters from an
/// unambiguous alphabet (about 115 bits).
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    crate::crypto::random_bytes(20)
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let a = hash("correct horse battery").expect("hash");
        let b = hash("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b);
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterz", &a));
        assert!(!verify("correct horse battery", "garbage"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
    }

    #[test]
    fn generated_passwords_are_long_enough_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(hash(&a).is_ok());
    }
}
