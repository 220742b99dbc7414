-- seatgate database schema: the canonical result of all migrations in
-- src/db/migrations applied in order to an empty database. A test keeps the two equal.
-- Times are Unix seconds (UTC). Tables are STRICT.

-- Instance-wide settings chosen at setup time (public URL, ...).
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- One-time first-run setup links. Only the SHA-256 of the token is stored.
CREATE TABLE setup_tokens (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;

PRAGMA user_version = 1;
