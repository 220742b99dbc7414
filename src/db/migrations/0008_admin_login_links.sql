-- One-time sign-in links for a break-glass admin (`seatgate admin login-link`, the demo).
-- Only the token's SHA-256 is stored; a link works once, before expires_at.
CREATE TABLE admin_login_links (
    token_hash  TEXT PRIMARY KEY,
    username    TEXT NOT NULL REFERENCES local_admins (username) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;
