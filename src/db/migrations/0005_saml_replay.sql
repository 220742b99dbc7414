-- Assertion IDs already accepted, kept until their validity (plus clock skew) ends, so a
-- captured assertion cannot be posted again (SECURITY.md, SAML SP, 4).
CREATE TABLE saml_seen_assertions (
    id          TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX saml_seen_assertions_expires ON saml_seen_assertions (expires_at);
