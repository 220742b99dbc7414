-- Refusals by the break-glass failure limiter are counted into one sign-in log row per
-- client and window instead of a row per attempt; how many attempts a row stands for.
ALTER TABLE sign_in_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
