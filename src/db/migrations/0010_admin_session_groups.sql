-- The group values an SSO admin's sign-in asserted (JSON array), so that every request can
-- re-check the admin role against the current mappings and directory memberships.
ALTER TABLE admin_sessions ADD COLUMN asserted_groups TEXT NOT NULL DEFAULT '[]';
