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

ALTER TABLE license_keys ADD COLUMN policy_id TEXT REFERENCES policies (id) ON DELETE SET NULL;

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
ALTER TABLE devices ADD COLUMN vms_reported_at INTEGER;

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
