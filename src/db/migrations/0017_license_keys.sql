-- License keys: per-device seats without a sign-in (labs, shared Macs, mass deployment).
-- A key hands out at most device_limit seats from its pool (a license's primary pool, or a
-- sublicense). The key itself is shown once and stored only as its SHA-256 (it is 125
-- random bits, so a fast hash is enough); hint is its last group, to recognize it by.
-- Rotating gives the key a new secret (its devices keep their seats); revoking refuses
-- its devices at their next renewal.
CREATE TABLE license_keys (
    id             TEXT PRIMARY KEY,
    license_id     TEXT NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    sublicense_id  TEXT REFERENCES sublicenses (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    secret_hash    TEXT NOT NULL UNIQUE,
    hint           TEXT NOT NULL,
    device_limit   INTEGER NOT NULL CHECK (device_limit >= 1),
    created_at     INTEGER NOT NULL,
    rotated_at     INTEGER,
    revoked_at     INTEGER
) STRICT;
CREATE INDEX license_keys_license ON license_keys (license_id);

-- Devices now belong to a user (an SSO activation) or to a license key (a per-device seat,
-- user_id NULL, in the key's pool: license_id and sublicense_id). A key device that its
-- person later activates with SSO becomes theirs: key_id is cleared, the seat freed.
CREATE TABLE devices_new (
    id              TEXT PRIMARY KEY,
    user_id         TEXT,
    license_id      TEXT NOT NULL,
    thumbprint      TEXT NOT NULL UNIQUE,
    public_jwk      TEXT NOT NULL,
    name            TEXT NOT NULL,
    os              TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    lease_id        TEXT NOT NULL,
    lease_expires_at INTEGER NOT NULL,
    last_proof_at   INTEGER NOT NULL DEFAULT 0,
    revoked_at      INTEGER,
    revoke_reason   TEXT,
    key_id          TEXT,
    sublicense_id   TEXT,
    CHECK ((user_id IS NULL) <> (key_id IS NULL))
) STRICT;
INSERT INTO devices_new (id, user_id, license_id, thumbprint, public_jwk, name, os, created_at,
    last_seen_at, lease_id, lease_expires_at, last_proof_at, revoked_at, revoke_reason)
SELECT id, user_id, license_id, thumbprint, public_jwk, name, os, created_at, last_seen_at,
    lease_id, lease_expires_at, last_proof_at, revoked_at, revoke_reason FROM devices;
DROP TABLE devices;
ALTER TABLE devices_new RENAME TO devices;
CREATE INDEX devices_user ON devices (user_id, revoked_at);
CREATE INDEX devices_seen ON devices (revoked_at, last_seen_at);
CREATE INDEX devices_key ON devices (key_id, revoked_at);

-- A live key device holds a seat in its pool, counted with the users' seats in pool_usage
-- so both compete for the same capacity.
CREATE TRIGGER devices_usage_insert AFTER INSERT ON devices
WHEN NEW.key_id IS NOT NULL AND NEW.revoked_at IS NULL
BEGIN
    INSERT INTO pool_usage (license_id, pool, assigned)
    VALUES (NEW.license_id, coalesce(NEW.sublicense_id, ''), 1)
    ON CONFLICT (license_id, pool) DO UPDATE SET assigned = assigned + 1;
END;
CREATE TRIGGER devices_usage_delete AFTER DELETE ON devices
WHEN OLD.key_id IS NOT NULL AND OLD.revoked_at IS NULL
BEGIN
    UPDATE pool_usage SET assigned = assigned - 1
    WHERE license_id = OLD.license_id AND pool = coalesce(OLD.sublicense_id, '');
END;
CREATE TRIGGER devices_usage_update AFTER UPDATE OF key_id, revoked_at, license_id, sublicense_id ON devices
BEGIN
    UPDATE pool_usage SET assigned = assigned - 1
    WHERE OLD.key_id IS NOT NULL AND OLD.revoked_at IS NULL
      AND license_id = OLD.license_id AND pool = coalesce(OLD.sublicense_id, '');
    INSERT INTO pool_usage (license_id, pool, assigned)
    SELECT NEW.license_id, coalesce(NEW.sublicense_id, ''), 1
    WHERE NEW.key_id IS NOT NULL AND NEW.revoked_at IS NULL
    ON CONFLICT (license_id, pool) DO UPDATE SET assigned = assigned + 1;
END;
