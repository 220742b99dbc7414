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

-- The app version each device reported at its last renewal.
ALTER TABLE devices ADD COLUMN app_version TEXT;
