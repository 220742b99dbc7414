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

-- Bearer tokens for machine clients. Only the SHA-256 of a token is stored. Scopes keep a
-- SCIM token from ever being an admin token and vice versa. A SCIM token's connection_id is
-- the IdP connection it provisions for (NULL: the unassigned scope); it sees only that
-- scope's users and groups.
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    scope         TEXT NOT NULL CHECK (scope IN ('scim', 'admin')),
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
, connection_id TEXT) STRICT;

-- Directory users, pushed by SCIM or created just in time from a sign-in. `resource` is the
-- SCIM representation as stored (without id, meta, groups and any password); the other
-- columns are extracted from it for lookups and constraints. connection_id is the IdP
-- connection that provisioned the user or group (its SCIM token or its just-in-time
-- sign-ins; NULL: the unassigned scope): no other connection reaches it. full_name is the
-- portal's name for the person (displayName, else given and family name, else formatted).
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    user_name      TEXT NOT NULL,
    user_name_key  TEXT NOT NULL UNIQUE,   -- case-folded: userName is unique case-insensitively
    external_id    TEXT,
    active         INTEGER NOT NULL CHECK (active IN (0, 1)),
    display_name   TEXT,
    email_key      TEXT,                   -- primary (else work, else first) email, case-folded
    resource       TEXT NOT NULL,
    version        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
, connection_id TEXT, full_name TEXT GENERATED ALWAYS AS (CAST(coalesce(nullif(trim(display_name), ''), nullif(trim(coalesce(json_extract(resource, '$.name.givenName'), '') || ' ' || coalesce(json_extract(resource, '$.name.familyName'), '')), ''), nullif(trim(json_extract(resource, '$.name.formatted')), '')) AS TEXT)) VIRTUAL) STRICT;
CREATE INDEX users_external_id ON users (external_id);
CREATE INDEX users_email_key ON users (email_key);
CREATE INDEX users_connection ON users (connection_id);
CREATE INDEX users_sort_name ON users (lower(coalesce(full_name, user_name)), user_name_key);
CREATE INDEX users_sort_email ON users (coalesce(email_key, user_name_key), lower(coalesce(full_name, user_name)), user_name_key);
CREATE INDEX users_sort_status ON users (active, lower(coalesce(full_name, user_name)), user_name_key);

CREATE TABLE groups (
    id                 TEXT PRIMARY KEY,
    display_name       TEXT NOT NULL,
    display_name_key   TEXT NOT NULL,     -- case-folded
    external_id        TEXT,
    resource           TEXT NOT NULL,     -- without id, meta and members
    version            INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
, connection_id TEXT) STRICT;
CREATE INDEX groups_display_name_key ON groups (display_name_key);
CREATE INDEX groups_external_id ON groups (external_id);
CREATE INDEX groups_connection ON groups (connection_id);

CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX group_members_user ON group_members (user_id);

-- Every SCIM request and its outcome, so an admin can see what the IdP sent and why
-- anything failed. Bodies are stored with secrets removed and truncated.
CREATE TABLE scim_requests (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    token_id     INTEGER,
    client       TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    status       INTEGER NOT NULL,
    scim_type    TEXT,
    detail       TEXT,
    request      TEXT,
    duration_us  INTEGER NOT NULL
) STRICT;
CREATE INDEX scim_requests_at ON scim_requests (at);

-- Directory changes, in order, for the licensing layer to act on.
CREATE TABLE directory_events (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    user_id   TEXT,
    group_id  TEXT,
    detail    TEXT
) STRICT;
CREATE INDEX directory_events_user ON directory_events (user_id);

-- SAML identity provider connections. `id` is a short slug used in URLs
-- (/saml/acs/{id}); hyphens only, because Okta refuses ACS URLs with underscores.
CREATE TABLE idp_connections (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    preset               TEXT NOT NULL,
    idp_entity_id        TEXT NOT NULL,
    sso_url              TEXT NOT NULL,
    metadata_xml         TEXT NOT NULL,
    metadata_source      TEXT NOT NULL,
    -- Create users (and their groups, by name) from sign-ins, for IdPs without SCIM.
    jit_users            INTEGER NOT NULL DEFAULT 0 CHECK (jit_users IN (0, 1)),
    allow_idp_initiated  INTEGER NOT NULL DEFAULT 0 CHECK (allow_idp_initiated IN (0, 1)),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
, sign_requests INTEGER NOT NULL DEFAULT 0 CHECK (sign_requests IN (0, 1))) STRICT;

-- The IdP's signing certificates (several during a rollover). A connection without one is
-- refused: samael skips signature checks when it has no certificate.
CREATE TABLE idp_certificates (
    connection_id  TEXT NOT NULL REFERENCES idp_connections (id) ON DELETE CASCADE,
    sha256         TEXT NOT NULL,
    der            BLOB NOT NULL,
    subject        TEXT NOT NULL,
    not_after      INTEGER NOT NULL,
    PRIMARY KEY (connection_id, sha256)
) STRICT, WITHOUT ROWID;

-- Email domains each connection may assert identities in; a domain belongs to one
-- connection (IdP A must not sign in ceo@domain-of-B).
CREATE TABLE idp_domains (
    domain         TEXT PRIMARY KEY,
    connection_id  TEXT NOT NULL REFERENCES idp_connections (id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX idp_domains_connection ON idp_domains (connection_id);

-- Outstanding SP-initiated sign-ins. Each AuthnRequest ID (128 random bits, starting with
-- a letter) is single-use, expires quickly and is bound to the browser that started it by
-- a cookie whose hash is stored. RelayState is the opaque relay_key, never a URL. purpose
-- says what the sign-in is for: a test sign-in, the admin portal, or a device activation.
CREATE TABLE saml_requests (
    id             TEXT PRIMARY KEY,
    relay_key      TEXT NOT NULL UNIQUE,
    connection_id  TEXT NOT NULL REFERENCES idp_connections (id) ON DELETE CASCADE,
    purpose        TEXT NOT NULL CHECK (purpose IN ('test', 'admin', 'activation')),
    browser_hash   TEXT NOT NULL,
    email_hint     TEXT,
    return_to      TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    consumed_at    INTEGER
) STRICT;
CREATE INDEX saml_requests_expires ON saml_requests (expires_at);

-- Assertion IDs already accepted, kept until their validity (plus clock skew) ends, so a
-- captured assertion cannot be posted again (SECURITY.md, SAML SP, 4).
CREATE TABLE saml_seen_assertions (
    id          TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX saml_seen_assertions_expires ON saml_seen_assertions (expires_at);

-- Connections whose metadata came from a URL are refreshed from it on a schedule; a
-- failed fetch keeps the last good copy (in idp_connections and idp_certificates).
CREATE TABLE idp_metadata_urls (
    connection_id    TEXT PRIMARY KEY REFERENCES idp_connections (id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    last_attempt_at  INTEGER,
    last_success_at  INTEGER,
    last_error       TEXT
) STRICT, WITHOUT ROWID;

-- Break-glass administrators: local accounts that work when the IdP does not.
-- password_hash is an Argon2id PHC string.
CREATE TABLE local_admins (
    username       TEXT PRIMARY KEY COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_login_at  INTEGER
) STRICT;

-- Admin portal sessions. Only the SHA-256 of the cookie value is stored. A session ends
-- at expires_at (absolute), after the idle timeout past last_seen_at, or at logout.
CREATE TABLE admin_sessions (
    id_hash        TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('local', 'sso')),
    subject        TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    connection_id  TEXT,
    csrf_token     TEXT NOT NULL,
    client         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    ended_at       INTEGER
, asserted_groups TEXT NOT NULL DEFAULT '[]') STRICT, WITHOUT ROWID;
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

-- Every sign-in attempt (SSO and break-glass) with its outcome and the detail an admin
-- needs; never the assertion or a password. Limiter refusals are one row per client and
-- window, with how many attempts it stands for in `count`.
CREATE TABLE sign_in_log (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    method         TEXT NOT NULL CHECK (method IN ('saml', 'local')),
    purpose        TEXT NOT NULL,
    connection_id  TEXT,
    identity       TEXT,
    outcome        TEXT NOT NULL,
    detail         TEXT,
    client         TEXT NOT NULL
, count INTEGER NOT NULL DEFAULT 1) STRICT;
CREATE INDEX sign_in_log_at ON sign_in_log (at);

-- Licensing: licenses, their sublicenses, seats derived from the directory, devices and
-- their leases, activations in flight, the lease-signing keys, and the audit log.

-- A registered license for a product. expires_at: end of its last day (UTC), NULL for none.
-- max_offline_secs: the longest a lease works without reaching the gateway, so a revoked or
-- deprovisioned Mac stops sooner; NULL: the [lease] windows of the configuration.
CREATE TABLE licenses (
    id            TEXT PRIMARY KEY,
    product       TEXT NOT NULL,
    license_key   TEXT,
    seats         INTEGER NOT NULL CHECK (seats >= 0),
    model         TEXT NOT NULL CHECK (model IN ('per-user')),
    expires_at    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
, max_offline_secs INTEGER CHECK (max_offline_secs IS NULL OR max_offline_secs >= 3600)) STRICT;

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
-- from license_id's primary pool), sublicense (a seat from sublicense_id). A mapping
-- applies only to the groups of its connection_id (pushed by its SCIM tokens, created by
-- its just-in-time sign-ins, asserted by its sign-ins; NULL: the unassigned scope). A group
-- has at most one mapping per role and connection, so at most one sublicense.
CREATE TABLE "group_mappings" (
    id             TEXT PRIMARY KEY,
    group_ref      TEXT NOT NULL,
    group_key      TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admins', 'primary', 'sublicense')),
    license_id     TEXT REFERENCES licenses (id) ON DELETE CASCADE,
    sublicense_id  TEXT REFERENCES sublicenses (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    connection_id  TEXT,
    CHECK ((role = 'admins' AND license_id IS NULL AND sublicense_id IS NULL)
        OR (role = 'primary' AND license_id IS NOT NULL AND sublicense_id IS NULL)
        OR (role = 'sublicense' AND sublicense_id IS NOT NULL AND license_id IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX group_mappings_unique ON group_mappings (group_key, role, coalesce(connection_id, ''));
CREATE INDEX group_mappings_key ON group_mappings (group_key);

-- One row per user and license: a seat from a pool (sublicense_id NULL = the primary
-- pool), or pending with the reason (queued_us: when it started waiting, in microseconds,
-- which orders the waiting list within a second). No foreign key to users: a deleted user's seat is
-- released (and audited) by the same transaction that deleted the user.
CREATE TABLE seats (
    user_id        TEXT NOT NULL,
    license_id     TEXT NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    sublicense_id  TEXT REFERENCES sublicenses (id) ON DELETE SET NULL,
    state          TEXT NOT NULL CHECK (state IN ('assigned', 'pending')),
    reason         TEXT,
    since          INTEGER NOT NULL,
    queued_us      INTEGER NOT NULL DEFAULT 0,
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
-- thumbprint) at every renewal. A revoked device is never renewed again. A device belongs
-- to a user (an SSO activation) or to a license key (a per-device seat, user_id NULL, in
-- the key's pool: license_id and sublicense_id); a key device its person later activates
-- with SSO becomes theirs (key_id cleared, the per-device seat freed).
CREATE TABLE "devices" (
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
    vms_reported_at INTEGER,
    app_version     TEXT,
    CHECK ((user_id IS NULL) <> (key_id IS NULL))
) STRICT;
CREATE INDEX devices_user ON devices (user_id, revoked_at);
CREATE INDEX devices_seen ON devices (revoked_at, last_seen_at);
CREATE INDEX devices_key ON devices (key_id, revoked_at);

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

-- One-time sign-in links for a break-glass admin (`seatgate admin login-link`, the demo).
-- Only the token's SHA-256 is stored; a link works once, before expires_at.
CREATE TABLE admin_login_links (
    token_hash  TEXT PRIMARY KEY,
    username    TEXT NOT NULL REFERENCES local_admins (username) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;

-- This gateway's instance key (Ed25519): it signs registration requests and usage
-- reports, and entitlements bound to the gateway name its thumbprint. Created once; a
-- restored backup keeps it, so a restored gateway is the same instance.
CREATE TABLE instance_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    pkcs8       BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    thumbprint  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Vendor-signed entitlements, the current serial of each. A license created or updated by
-- one takes its product, seats and end date from it; the token is kept as imported.
CREATE TABLE entitlements (
    entitlement_id          TEXT PRIMARY KEY,
    license_id              TEXT NOT NULL UNIQUE REFERENCES licenses (id) ON DELETE CASCADE,
    serial                  INTEGER NOT NULL CHECK (serial >= 1),
    customer_id             TEXT NOT NULL,
    customer_name           TEXT NOT NULL,
    product                 TEXT NOT NULL,
    edition                 TEXT NOT NULL,
    seats                   INTEGER NOT NULL CHECK (seats >= 0),
    device_seats            INTEGER NOT NULL CHECK (device_seats >= 0),
    starts_at               INTEGER NOT NULL,
    ends_at                 INTEGER NOT NULL,
    trial                   INTEGER NOT NULL CHECK (trial IN (0, 1)),
    max_offline_grace_days  INTEGER NOT NULL,
    per_device_keys         INTEGER NOT NULL CHECK (per_device_keys IN (0, 1)),
    gateways                INTEGER NOT NULL,
    instance                TEXT,
    issued_at               INTEGER NOT NULL,
    kid                     TEXT NOT NULL,
    token                   TEXT NOT NULL,
    imported_at             INTEGER NOT NULL
) STRICT;

-- Entitlements another took over (a trial replaced by the paid one): never imported again.
CREATE TABLE superseded_entitlements (
    entitlement_id  TEXT PRIMARY KEY,
    serial          INTEGER NOT NULL,
    superseded_by   TEXT NOT NULL,
    superseded_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Seat usage per license and UTC day, kept as seats change, for the vendor's usage
-- reports (true-up): the most seats held at once, and seats held × seconds (the day's
-- average is that over 86,400).
CREATE TABLE usage_days (
    license_id    TEXT NOT NULL,
    day           TEXT NOT NULL,
    peak          INTEGER NOT NULL,
    seat_seconds  INTEGER NOT NULL,
    PRIMARY KEY (license_id, day)
) STRICT, WITHOUT ROWID;

-- Each license's seats held now and since when: the interval not yet in usage_days.
CREATE TABLE usage_now (
    license_id  TEXT PRIMARY KEY,
    seats       INTEGER NOT NULL,
    since       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

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
,   policy_id      TEXT REFERENCES policies (id) ON DELETE SET NULL) STRICT;
CREATE INDEX license_keys_license ON license_keys (license_id);

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

-- The outbox: every email the gateway sends (invitations, admin notifications, test
-- messages), kept until sent, so nothing is lost across restarts. A message waits until
-- next_attempt_at; a temporary failure (4xx, the server down or hanging) is retried with
-- backoff, a permanent one (5xx) or too many attempts ends it as failed with the reason.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('invitation', 'notification', 'test')),
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
) STRICT;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Invitations to install and activate: the link's token is stored as its SHA-256 and
-- works until expires_at, until used (the landing page's Continue), or until revoked or
-- resent (a new token). The message's delivery is the outbox row's (message_id).
-- method: sso (sign in with this email) or key (a license key of one device, made when
-- the invitee continues, key_id). opened_at: the landing page was shown; used_at: the
-- invitee continued; activated_at: a device was activated for this email or key.
CREATE TABLE invitations (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL,
    method        TEXT NOT NULL CHECK (method IN ('sso', 'key')),
    license_id    TEXT REFERENCES licenses (id) ON DELETE SET NULL,
    sublicense_id TEXT REFERENCES sublicenses (id) ON DELETE SET NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    message_id    INTEGER,
    key_id        TEXT,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    opened_at     INTEGER,
    used_at       INTEGER,
    activated_at  INTEGER,
    revoked_at    INTEGER
) STRICT;
CREATE INDEX invitations_email ON invitations (email_key, created_at);
CREATE INDEX invitations_created ON invitations (created_at);

-- Admin notifications already sent, by what they are about (kind and subject, e.g. a
-- license and the days left), so each goes out once.
CREATE TABLE notifications_sent (
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, subject)
) STRICT, WITHOUT ROWID;

-- Client policies (issue 18): named sets of settings (only those a policy sets, as JSON
-- checked by domain::policy), assigned to IdP groups with an explicit priority (1 is the
-- highest, unique, so precedence is never a tie), one optional default policy for
-- everyone, and a policy per license key for its devices.
CREATE TABLE policies (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL DEFAULT '',
    settings     TEXT NOT NULL,
    is_default   INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX policies_one_default ON policies (is_default) WHERE is_default = 1;

-- A group (named as the IdP knows it, matched case-folded within its connection's scope,
-- as group_mappings are) gets one policy.
CREATE TABLE policy_assignments (
    id             TEXT PRIMARY KEY,
    policy_id      TEXT NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    group_ref      TEXT NOT NULL,
    group_key      TEXT NOT NULL,
    connection_id  TEXT,
    priority       INTEGER NOT NULL UNIQUE CHECK (priority BETWEEN 1 AND 100000),
    created_at     INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX policy_assignments_group ON policy_assignments (group_key, coalesce(connection_id, ''));
CREATE INDEX policy_assignments_policy ON policy_assignments (policy_id);


-- Virtual machines each device reported at its last renewal (the report replaces the
-- previous one). Rows of devices released or revoked long ago are aged out.
CREATE TABLE device_vms (
    device_id        TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    uuid             TEXT NOT NULL,
    name             TEXT NOT NULL,
    guest_os         TEXT NOT NULL,
    image_name       TEXT,
    image_version    TEXT,
    encrypted        INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
    expires_at       INTEGER,
    last_started_at  INTEGER,
    PRIMARY KEY (device_id, uuid)
) STRICT, WITHOUT ROWID;
CREATE INDEX device_vms_guest ON device_vms (guest_os);
CREATE INDEX device_vms_image ON device_vms (image_name, image_version);

-- Seat usage over time: per pool (pool '' is a license's primary pool) and UTC day, the
-- most seats used and people waiting at once, and the capacity (its last value that day).
-- backfilled: reconstructed from the audit log for days before this table existed (used
-- seats only).
CREATE TABLE pool_days (
    license_id  TEXT NOT NULL,
    pool        TEXT NOT NULL,
    day         TEXT NOT NULL,
    used        INTEGER NOT NULL,
    pending     INTEGER NOT NULL,
    capacity    INTEGER NOT NULL,
    backfilled  INTEGER NOT NULL DEFAULT 0 CHECK (backfilled IN (0, 1)),
    PRIMARY KEY (license_id, pool, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX pool_days_day ON pool_days (day);

-- The local distribution point (issue 19): golden VM images and app update packages, kept
-- as files in the storage folder (never in SQLite); these tables describe them.

-- Uploads in progress. The partial file is storage/uploads/<id>.part; `received` bytes of
-- it are written, synced and hashed (the rest, if any, is an attempt never committed).
-- `target` is what the finished file becomes (JSON: an image version or a package).
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('image', 'package')),
    target_key  TEXT NOT NULL UNIQUE,
    target      TEXT NOT NULL,
    size        INTEGER NOT NULL CHECK (size > 0),
    sha256      TEXT,
    received    INTEGER NOT NULL DEFAULT 0 CHECK (received BETWEEN 0 AND size),
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- Golden VM images, their versions (storage/images/<version id>.img) and which IdP groups
-- get them (the latest version, or a pinned one), scoped by connection as seat mappings.
CREATE TABLE images (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE image_versions (
    id          INTEGER PRIMARY KEY,
    image_id    TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    version     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    notes       TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (image_id, version)
) STRICT;

CREATE TABLE image_assignments (
    id              TEXT PRIMARY KEY,
    image_id        TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    group_ref       TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    connection_id   TEXT,
    pinned_version  TEXT,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX image_assignments_group ON image_assignments (image_id, group_key, coalesce(connection_id, ''));
CREATE INDEX image_assignments_key ON image_assignments (group_key);

-- App installer packages for the local update server (storage/packages/<id>.pkg), each on
-- a branch; a retired version is no longer offered.
CREATE TABLE packages (
    id            INTEGER PRIMARY KEY,
    version       TEXT NOT NULL UNIQUE,
    branch        TEXT NOT NULL CHECK (branch IN ('stable', 'beta')),
    min_os        TEXT NOT NULL,
    notes         TEXT NOT NULL DEFAULT '',
    file_name     TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    ed_signature  TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER
) STRICT;

PRAGMA user_version = 20;
