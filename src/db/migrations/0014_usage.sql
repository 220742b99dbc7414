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

INSERT INTO usage_now (license_id, seats, since)
    SELECT l.id,
           (SELECT count(*) FROM seats s WHERE s.license_id = l.id AND s.state = 'assigned'),
           unixepoch()
    FROM licenses l;
