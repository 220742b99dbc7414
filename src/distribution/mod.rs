//! The local distribution point (the admin guide's "Golden Images" and "Local Update
//! Server"): files uploaded once, resumably, to the storage folder, and served to the
//! Macs from there.
//!
//! - [`uploads`]: resumable uploads in `Content-Range` pieces, hashed (SHA-256) as they
//!   are committed, checked against quotas and free space, and moved into place whole.
//! - [`images`]: golden VM images, their versions, assignments to IdP groups, the signed
//!   listing each device gets and the download authorization.
//! - [`updates`]: the local update server: app packages per branch, signed as Sparkle
//!   verifies, and the appcast and JSON feeds.
//!
//! The bytes themselves never pass through here on the way in or out: the gatekeeper
//! writes upload bodies to the file this module names and streams downloads from it
//! (`net::stream`).

pub mod images;
pub mod updates;
pub mod uploads;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use crate::audit::{Actor, AuditAction};
use crate::db::Db;
use crate::db::licensing::AuditAbout;
use crate::domain::problem::{Problem, Reason};
use crate::storage::Storage;

/// The storage folder and the running hashes of uploads in progress.
pub struct Distribution {
    pub storage: Storage,
    /// Each upload's SHA-256 so far, with how many bytes it covers; rebuilt from the
    /// partial file when missing (after a restart) or behind.
    hashes: Mutex<HashMap<String, (i64, crate::crypto::Sha256Stream)>>,
}

impl Distribution {
    pub fn new(storage: Storage) -> Distribution {
        Distribution {
            storage,
            hashes: Mutex::new(HashMap::new()),
        }
    }

    /// Takes an upload's running hash out (the caller puts it back when done).
    fn take_hash(&self, upload: &str) -> Option<(i64, crate::crypto::Sha256Stream)> {
        self.hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(upload)
    }

    fn put_hash(&self, upload: &str, covered: i64, context: crate::crypto::Sha256Stream) {
        self.hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(upload.to_string(), (covered, context));
    }

    fn forget_hash(&self, upload: &str) {
        let _ = self.take_hash(upload);
    }
}

/// An audit entry about an image or a package (`subject` its id or version).
fn audit(
    tx: &rusqlite::Transaction<'_>,
    actor: &Actor,
    action: AuditAction,
    subject: &str,
    detail: &Value,
    now: i64,
) -> rusqlite::Result<()> {
    crate::db::licensing::audit(
        tx,
        now,
        actor,
        action,
        None,
        AuditAbout {
            subject: Some(subject),
            detail: Some(&detail.to_string()),
            ..Default::default()
        },
    )
}

/// A 32-byte secret kept in the settings under `key` (hex), made on first use; when two
/// threads make it at once, the first one written stays.
fn secret(db: &Db, key: &str, now: i64) -> Result<[u8; 32], Problem> {
    let parse = |hex: &str| {
        crate::crypto::from_hex(hex)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                Problem::new(
                    Reason::Internal,
                    format!("The {key} setting is unreadable."),
                )
            })
    };
    if let Some(hex) = db.read(|tx| crate::db::settings::get(tx, key))? {
        return parse(&hex);
    }
    db.write(|tx| {
        if let Some(hex) = crate::db::settings::get(tx, key)? {
            return parse(&hex);
        }
        let hex = crate::crypto::hex(&crate::crypto::random_bytes(32));
        crate::db::settings::put(tx, key, &hex, now)?;
        log::info!("created the {key} secret");
        parse(&hex)
    })
}
