-- Connection scoping (SECURITY.md, SAML SP 6): every directory user and group, SCIM token
-- and group mapping belongs to one IdP connection, so that one connection never acts for
-- another's users. NULL is the unassigned scope: SCIM tokens made without a connection,
-- and what they provision. No foreign keys: removing a connection leaves its users and
-- groups in place but unreachable (no token sees them, no sign-in matches them).
ALTER TABLE api_tokens ADD COLUMN connection_id TEXT;
ALTER TABLE users ADD COLUMN connection_id TEXT;
ALTER TABLE groups ADD COLUMN connection_id TEXT;
CREATE INDEX users_connection ON users (connection_id);
CREATE INDEX groups_connection ON groups (connection_id);

-- A mapping applies only to groups of its connection (pushed by its SCIM tokens, created
-- by its just-in-time sign-ins, or asserted by its sign-ins); NULL: groups of the
-- unassigned scope. The same group name may be mapped once per connection.
CREATE TABLE group_mappings_scoped (
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
INSERT INTO group_mappings_scoped (id, group_ref, group_key, role, license_id, sublicense_id, created_at)
    SELECT id, group_ref, group_key, role, license_id, sublicense_id, created_at FROM group_mappings;
DROP TABLE group_mappings;
ALTER TABLE group_mappings_scoped RENAME TO group_mappings;
CREATE UNIQUE INDEX group_mappings_unique ON group_mappings (group_key, role, coalesce(connection_id, ''));
CREATE INDEX group_mappings_key ON group_mappings (group_key);
