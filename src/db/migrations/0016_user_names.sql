-- A person's name for the portal: displayName, else given and family name, else the
-- formatted name (what SCIM clients send without a displayName). Computed from the stored
-- resource, so it never drifts; searched and sorted on.
ALTER TABLE users ADD COLUMN full_name TEXT GENERATED ALWAYS AS (CAST(coalesce(nullif(trim(display_name), ''), nullif(trim(coalesce(json_extract(resource, '$.name.givenName'), '') || ' ' || coalesce(json_extract(resource, '$.name.familyName'), '')), ''), nullif(trim(json_extract(resource, '$.name.formatted')), '')) AS TEXT)) VIRTUAL;
-- The users list's orders by name, email and status, walked in index order so a deep page
-- stays cheap.
CREATE INDEX users_sort_name ON users (lower(coalesce(full_name, user_name)), user_name_key);
CREATE INDEX users_sort_email ON users (coalesce(email_key, user_name_key), lower(coalesce(full_name, user_name)), user_name_key);
CREATE INDEX users_sort_status ON users (active, lower(coalesce(full_name, user_name)), user_name_key);
