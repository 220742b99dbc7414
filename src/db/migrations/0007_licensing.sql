-- Licensing: licenses, their sublicenses, seats derived from the directory, devices and
-- their leases, activations in flight, the lease-signing keys, and the audit log.

-- A registered license for a product. expires_at: end of its last day (UTC), NULL for none.
CREATE TABLE licenses (
    id            TEXT PRIMARY KEY,
    product       TEXT NOT NULL,
    license_key   TEXT,
    seats         INTEGER NOT NULL CHECK (seats >= 0),
    model         TEXT NOT NULL CHECK (model IN ('per-user')),
    expires_at    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- A named slice of a license. reserved: its own seats, carved out of the license;
-- dynamic: competes for the primary pool, up to its own limit. An expired sublicense's
-- seats return to the primary pool and its users draw from the primary pool.
CREATE TABLE sublicenses (
    id            TEXT PRIMARY KEY,
    license_id    TEXT NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    seats         INTEGER NOT NULL CHECK (seats >= 0),
    allocation    TEXT NOT NULL CHECK (allocation IN ('reserved', 'dynamic')),
    expires_at    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (license_id, name)
) STRICT;

-- IdP group -> role. A group is named as the IdP knows it: a SCIM displayName or
-- externalId (Entra object id), or a value of the SAML group attribute. group_key is its
-- case-folded form, which matching uses. Roles: admins (the admin portal), primary (a seat
-- from license_id's primary pool), sublicense (a seat from sublicense_id). A group has at
-- most one mapping per role, so at most one sublicense.
CREATE TABLE group_mappings (
    id             TEXT PRIMARY KEY,
    group_ref      TEXT NOT NULL,
    group_key      TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admins', 'primary', 'sublicense')),
    license_id     TEXT REFERENCES licenses (id) ON DELETE CASCADE,
    sublicense_id  TEXT REFERENCES sublicenses (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    UNIQUE (group_key, role),
    CHECK ((role = 'admins' AND license_id IS NULL AND sublicense_id IS NULL)
        OR (role = 'primary' AND license_id IS NOT NULL AND sublicense_id IS NULL)
        OR (role = 'sublicense' AND sublicense_id IS NOT NULL AND license_id IS NOT NULL))
) STRICT;
CREATE INDEX group_mappings_key ON group_mappings (group_key);

-- One row per user and license: a seat from a pool (sublicense_id NULL = the primary
-- pool), or pending with the reason. No foreign key to users: a deleted user's seat is
-- released (and audited) by the same transaction that deleted the user.
CREATE TABLE seats (
    user_id        TEXT NOT NULL,
    license_id     TEXT NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    sublicense_id  TEXT REFERENCES sublicenses (id) ON DELETE SET NULL,
    state          TEXT NOT NULL CHECK (state IN ('assigned', 'pending')),
    reason         TEXT,
    since          INTEGER NOT NULL,
    PRIMARY KEY (user_id, license_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX seats_waiting ON seats (license_id, state, since);

-- Assigned seats per pool (pool '' is the primary pool), kept by the triggers below, so
-- deciding whether a pool has room never counts its seats.
CREATE TABLE pool_usage (
    license_id  TEXT NOT NULL,
    pool        TEXT NOT NULL,
    assigned    INTEGER NOT NULL,
    PRIMARY KEY (license_id, pool)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER seats_usage_insert AFTER INSERT ON seats WHEN NEW.state = 'assigned'
BEGIN
    INSERT INTO pool_usage (license_id, pool, assigned)
    VALUES (NEW.license_id, coalesce(NEW.sublicense_id, ''), 1)
    ON CONFLICT (license_id, pool) DO UPDATE SET assigned = assigned + 1;
END;
CREATE TRIGGER seats_usage_delete AFTER DELETE ON seats WHEN OLD.state = 'assigned'
BEGIN
    UPDATE pool_usage SET assigned = assigned - 1
    WHERE license_id = OLD.license_id AND pool = coalesce(OLD.sublicense_id, '');
END;
CREATE TRIGGER seats_usage_update AFTER UPDATE OF license_id, sublicense_id, state ON seats
BEGIN
    UPDATE pool_usage SET assigned = assigned - 1
    WHERE OLD.state = 'assigned' AND license_id = OLD.license_id AND pool = coalesce(OLD.sublicense_id, '');
    INSERT INTO pool_usage (license_id, pool, assigned)
    SELECT NEW.license_id, coalesce(NEW.sublicense_id, ''), 1 WHERE NEW.state = 'assigned'
    ON CONFLICT (license_id, pool) DO UPDATE SET assigned = assigned + 1;
END;

-- Activated devices. The device proves possession of its key (public_jwk, RFC 7638
-- thumbprint) at every renewal. A revoked device is never renewed again.
CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
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
    revoke_reason   TEXT
) STRICT;
CREATE INDEX devices_user ON devices (user_id, revoked_at);
CREATE INDEX devices_seen ON devices (revoked_at, last_seen_at);

-- Activations in flight (RFC 8628-style): the client polls with device_code (stored as a
-- hash); the browser signs in with the sign-in request it started; the ACS completes it.
CREATE TABLE activations (
    device_code_hash  TEXT PRIMARY KEY,
    browser_key       TEXT NOT NULL UNIQUE,
    email             TEXT NOT NULL,
    public_jwk        TEXT NOT NULL,
    thumbprint        TEXT NOT NULL,
    device_name       TEXT NOT NULL,
    device_os         TEXT NOT NULL,
    redirect_uri      TEXT,
    code_challenge    TEXT,
    saml_request_id   TEXT,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'consumed')),
    reason            TEXT,
    user_id           TEXT,
    device_id         TEXT,
    user_code         TEXT NOT NULL,
    lease             TEXT,
    auth_code_hash    TEXT,
    interval_secs     INTEGER NOT NULL,
    last_polled_at    INTEGER,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX activations_expires ON activations (expires_at);

-- Ed25519 lease-signing keys. The newest unretired key signs; retired keys stay in the
-- JWKS until every lease they signed has expired.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    pkcs8         BLOB NOT NULL,
    public_key    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    publish_until INTEGER
) STRICT, WITHOUT ROWID;

-- Who did what, when and why: seat grants, pendings, revocations, activations, renewal
-- refusals, device releases, admin changes. Append-only (the triggers refuse changes).
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    user_id    TEXT,
    subject    TEXT,
    reason     TEXT,
    detail     TEXT
) STRICT;
CREATE INDEX audit_log_user ON audit_log (user_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
