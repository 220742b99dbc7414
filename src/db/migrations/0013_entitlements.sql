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
