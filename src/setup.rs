//! The first-run setup link: a 256-bit one-time token (only its SHA-256 stored), valid for
//! 30 minutes, put in a URL fragment so it never reaches access logs, logged once and
//! written to a 0600 file (under launchd the console is a log file).

use std::path::Path;

use crate::clock::{now_unix, rfc3339};
use crate::crypto::{new_secret_token, sha256_hex};
use crate::datadir::write_private_file;
use crate::db::{Db, DbError, settings};

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
        let done = settings::get(tx, settings::SETUP_COMPLETED_AT)?.is_some();
        Ok::<_, DbError>((done, settings::setup_token_valid_until(tx, now)?))
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
        settings::replace_setup_token(tx, &sha256_hex(token.as_bytes()), now, expires_at)
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
