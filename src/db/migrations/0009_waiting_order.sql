-- The waiting list's order within a second: when a seat became pending, in microseconds.
-- Freed seats go to the longest-waiting user (since, then queued_us; user_id last).
ALTER TABLE seats ADD COLUMN queued_us INTEGER NOT NULL DEFAULT 0;
