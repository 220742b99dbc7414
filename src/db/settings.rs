//! Instance settings (one value per key) and the first-run setup tokens.

use rusqlite::{OptionalExtension, Transaction, params};

/// Keys in the `settings` table.
pub const SETUP_COMPLETED_AT: &str = "setup_completed_at";
/// The public URL chosen at first-run setup (used when none is configured).
pub const PUBLIC_URL: &str = "public_url";
/// The public URL the last `serve` used, for links offline commands print.
pub const LAST_PUBLIC_URL: &str = "last_public_url";
/// Until when license and sublicense expiries have been applied.
pub const EXPIRY_CHECKED_AT: &str = "licensing_expiry_checked_at";

pub fn get(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

pub fn put(tx: &Transaction<'_>, key: &str, value: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(params![key, value, now])?;
    Ok(())
}

/// Spends a first-run setup token: true if it existed, unused and unexpired.
pub fn consume_setup_token(
    tx: &Transaction<'_>,
    token_hash: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached(
            "UPDATE setup_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
        )?
        .execute(params![token_hash, now])?
        == 1)
}

/// Until when the newest unused, unexpired setup token is valid.
pub fn setup_token_valid_until(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached(
        "SELECT max(expires_at) FROM setup_tokens WHERE used_at IS NULL AND expires_at > ?1",
    )?
    .query_row([now], |r| r.get(0))
}

/// Stores a new setup token, invalidating every earlier unused one.
pub fn replace_setup_token(
    tx: &Transaction<'_>,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM setup_tokens WHERE used_at IS NULL", [])?;
    tx.prepare_cached(
        "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![token_hash, now, expires_at])?;
    Ok(())
}
