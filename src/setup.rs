//! The first-run setup link: a 256-bit one-time token (only its SHA-256 stored), valid for
//! 30 minutes, put in a URL fragment so it never reaches access logs, logged once and
//! written to a 0600 file (under launchd the console is a log file).

use std::path::Path;

use rusqlite::OptionalExtension;

use crate::clock::{now_unix, rfc3339};
use crate::crypto::{new_secret_token, sha256_hex};
use crate::datadir::write_private_file;
use crate::db::{Db, DbError};

pub const TOKEN_TTL_SECS: i64 = 30 * 60;

/// What first-run setup needs now.
pub enum SetupState {
    /// Setup was completed earlier; no link.
    Done,
    /// A link minted earlier is still valid; it is in the link file.
    StillValid { expires_at: i64 },
    /// A new link was minted.
    Minted { link: String, expires_at: i64 },
}

/// On start: mints a link unless setup is done or an unexpired one exists.
pub fn on_start(db: &Db, link_file: &Path, public_url: &str) -> Result<SetupState, DbError> {
    let now = now_unix();
    let (done, valid_until) = db.read(|tx| {
        let done: bool = tx.query_row("SELECT count(*) > 0 FROM settings WHERE key = 'setup_completed_at'", [], |r| r.get(0))?;
        let valid: Option<i64> = tx
            .query_row(
                "SELECT max(expires_at) FROM setup_tokens WHERE used_at IS NULL AND expires_at > ?1",
                [now],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok::<_, DbError>((done, valid))
    })?;
    if done {
        return Ok(SetupState::Done);
    }
    if let Some(expires_at) = valid_until.filter(|_| link_file.exists()) {
        return Ok(SetupState::StillValid { expires_at });
    }
    let (link, expires_at) = mint(db, link_file, public_url)?;
    Ok(SetupState::Minted { link, expires_at })
}

/// Mints a fresh link, invalidating earlier unused ones, and writes it to `link_file`.
pub fn mint(db: &Db, link_file: &Path, public_url: &str) -> Result<(String, i64), DbError> {
    let token = new_secret_token();
    let now = now_unix();
    let expires_at = now + TOKEN_TTL_SECS;
    db.write(|tx| {
        tx.execute("DELETE FROM setup_tokens WHERE used_at IS NULL", [])?;
        tx.execute(
            "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
            (sha256_hex(token.as_bytes()), now, expires_at),
        )?;
        Ok::<_, DbError>(())
    })?;
    let link = format!("{public_url}/setup#{token}");
    let text = format!(
        "# seatgate one-time setup link; valid until {} and usable once.\n# Mint a new one with: seatgate setup-link\n{link}\n",
        rfc3339(expires_at)
    );
    write_private_file(link_file, text.as_bytes()).map_err(|source| DbError::Io {
        context: format!("cannot write {}", link_file.display()),
        source,
    })?;
    Ok((link, expires_at))
}
