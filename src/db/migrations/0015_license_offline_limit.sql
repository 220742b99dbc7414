-- The longest a lease of this license works without reaching the gateway (seconds), so an
-- admin can bound how long a revoked or deprovisioned Mac keeps working offline; NULL:
-- the [lease] windows of the configuration.
ALTER TABLE licenses ADD COLUMN max_offline_secs INTEGER CHECK (max_offline_secs IS NULL OR max_offline_secs >= 3600);
