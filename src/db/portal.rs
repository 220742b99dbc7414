//! Read models for the admin portal: user search with seat state, pool usage, audit search.

use rusqlite::{OptionalExtension, Transaction, params};

use super::licensing::AuditEntry;
use crate::domain::engine::{PoolSeats, SeatState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub email: String,
    pub active: bool,
    /// The best seat state over the user's licenses.
    pub seat: Option<SeatState>,
    /// The pool (`primary` or a sublicense name) of that seat.
    pub pool: Option<String>,
    pub reason: Option<String>,
    pub devices: i64,
    /// displayName, else given and family name, else the formatted name.
    pub full_name: Option<String>,
    /// Waiting for a seat of a full pool: the place in its queue (1 is next).
    pub waiting_position: Option<i64>,
    /// The user's groups, by name.
    pub groups: Vec<String>,
}

/// `LIKE` pattern matching `q` anywhere, with its wildcards escaped.
fn contains_pattern(q: &str) -> String {
    let escaped = q
        .trim()
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Which users a search keeps, by their seat state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeatFilter {
    #[default]
    Any,
    /// Active, with a seat.
    Seated,
    /// Active, waiting for a seat (no seat of any license).
    Waiting,
    /// Active, entitled to nothing.
    NoSeat,
    /// Deactivated in the directory.
    Inactive,
}

impl SeatFilter {
    pub const ALL: [SeatFilter; 5] = [
        SeatFilter::Any,
        SeatFilter::Seated,
        SeatFilter::Waiting,
        SeatFilter::NoSeat,
        SeatFilter::Inactive,
    ];

    /// The query-string value.
    pub fn key(self) -> &'static str {
        match self {
            SeatFilter::Any => "",
            SeatFilter::Seated => "seated",
            SeatFilter::Waiting => "waiting",
            SeatFilter::NoSeat => "none",
            SeatFilter::Inactive => "inactive",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SeatFilter::Any => "everyone",
            SeatFilter::Seated => "with a seat",
            SeatFilter::Waiting => "waiting for a seat",
            SeatFilter::NoSeat => "entitled to no seat",
            SeatFilter::Inactive => "deactivated",
        }
    }

    pub fn from_key(key: &str) -> Option<SeatFilter> {
        SeatFilter::ALL.into_iter().find(|f| f.key() == key)
    }

    /// The SQL condition on `u` (the user) and `s` (their best seat); constant text.
    fn condition(self) -> &'static str {
        match self {
            SeatFilter::Any => "1",
            SeatFilter::Seated => "u.active = 1 AND s.state = 'assigned'",
            SeatFilter::Waiting => "u.active = 1 AND s.state = 'pending'",
            SeatFilter::NoSeat => "u.active = 1 AND s.user_id IS NULL",
            SeatFilter::Inactive => "u.active = 0",
        }
    }
}

/// What the users list sorts on. Every order ends with the unique user name, so pages are
/// stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserSort {
    #[default]
    Name,
    Email,
    Status,
    Seat,
    Devices,
}

impl UserSort {
    pub const ALL: [UserSort; 5] = [
        UserSort::Name,
        UserSort::Email,
        UserSort::Status,
        UserSort::Seat,
        UserSort::Devices,
    ];

    /// The query-string value.
    pub fn key(self) -> &'static str {
        match self {
            UserSort::Name => "name",
            UserSort::Email => "email",
            UserSort::Status => "status",
            UserSort::Seat => "seat",
            UserSort::Devices => "devices",
        }
    }

    pub fn from_key(key: &str) -> Option<UserSort> {
        UserSort::ALL.into_iter().find(|s| s.key() == key)
    }

    /// The ORDER BY terms (constant text); `{dir}` is ASC or DESC. By name it is the
    /// `users_sort_name` index's own expression, so a deep page walks the index.
    fn order_by(self, descending: bool) -> String {
        let dir = if descending { "DESC" } else { "ASC" };
        let name =
            format!("lower(coalesce(u.full_name, u.user_name)) {dir}, u.user_name_key {dir}");
        match self {
            UserSort::Name => name,
            UserSort::Email => format!("coalesce(u.email_key, u.user_name_key) {dir}, {name}"),
            UserSort::Status => format!("u.active {dir}, {name}"),
            // These two sort every matching user; tied by the user name (a column), not by
            // the name (computed from the stored JSON for each row, which would double it).
            UserSort::Seat => format!(
                "s.state IS NULL {dir}, s.state {dir}, s.since {dir}, s.queued_us {dir}, u.user_name_key {dir}"
            ),
            UserSort::Devices => format!(
                "(SELECT count(*) FROM devices d WHERE d.user_id = u.id AND d.revoked_at IS NULL) {dir}, u.user_name_key {dir}"
            ),
        }
    }
}

/// A page of the users list: who matches, in which order, which slice.
#[derive(Debug, Clone, Copy)]
pub struct UserQuery<'a> {
    /// Matched anywhere in the user name, email or name (given, family, display).
    pub q: &'a str,
    pub filter: SeatFilter,
    pub sort: UserSort,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// Each user's best seat: an assigned one if any, else a pending one.
const BEST_SEAT: &str = "LEFT JOIN seats s ON s.user_id = u.id AND s.license_id =
     (SELECT license_id FROM seats WHERE user_id = u.id
      ORDER BY state = 'assigned' DESC, license_id LIMIT 1)";

/// Users matching `query`, with their best seat, waiting position and groups: the total
/// that match, and the page asked for. In two steps, so that a deep page of 100,000 users
/// stays cheap: the page's ids by the sort key alone (the name order walks an index), then
/// the details of those few.
pub fn search_users(
    tx: &Transaction<'_>,
    query: &UserQuery<'_>,
) -> rusqlite::Result<(i64, Vec<UserSummary>)> {
    let pattern = contains_pattern(query.q);
    const MATCH: &str = "(?1 = '%%' OR u.user_name_key LIKE ?1 ESCAPE '\\'
        OR u.email_key LIKE ?1 ESCAPE '\\' OR lower(u.full_name) LIKE ?1 ESCAPE '\\')";
    let seats_needed = query.filter != SeatFilter::Any || query.sort == UserSort::Seat;
    // Over many users, every user's best seat in one pass over the seats (in key order,
    // grouped by user) beats a lookup per user: min() picks an assigned seat first, then
    // the lowest license id, and SQLite takes the row's other columns from that row.
    let (with, join) = if seats_needed {
        (
            "WITH best AS MATERIALIZED (
                SELECT user_id, license_id, sublicense_id, state, reason, since, queued_us,
                       min(CASE state WHEN 'assigned' THEN '0' ELSE '1' END || license_id)
                FROM seats GROUP BY user_id)",
            "LEFT JOIN best s ON s.user_id = u.id",
        )
    } else {
        ("", "")
    };
    let from = format!(
        "FROM users u {join} WHERE {MATCH} AND {}",
        query.filter.condition()
    );
    // Without a seat filter the count needs no seats (100k users: 7-22 ms, not ~90 ms).
    let count = match query.filter {
        SeatFilter::Any => format!("SELECT count(*) FROM users u WHERE {MATCH}"),
        _ => format!("{with} SELECT count(*) {from}"),
    };
    let total: i64 = tx
        .prepare_cached(&count)?
        .query_row([&pattern], |r| r.get(0))?;
    let ids: Vec<String> = tx
        .prepare_cached(&format!(
            "{with} SELECT u.id {from} ORDER BY {} LIMIT ?2 OFFSET ?3",
            query.sort.order_by(query.descending)
        ))?
        .query_map(params![pattern, query.limit, query.offset], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut users = Vec::with_capacity(ids.len());
    for id in &ids {
        users.push(user_summary(tx, id)?);
    }
    Ok((total, users))
}

/// One user as the list shows them. A waiting user's place in their pool's queue counts
/// those ahead as the seat engine serves them (since, then queued_us, then user id).
fn user_summary(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<UserSummary> {
    let mut summary = tx
        .prepare_cached(&format!(
            "SELECT u.id, u.user_name, u.display_name, coalesce(u.email_key, u.user_name_key), u.active,
                s.state,
                CASE WHEN s.user_id IS NULL THEN NULL
                     ELSE coalesce((SELECT name FROM sublicenses WHERE id = s.sublicense_id), 'primary') END,
                s.reason,
                (SELECT count(*) FROM devices d WHERE d.user_id = u.id AND d.revoked_at IS NULL),
                u.full_name,
                CASE WHEN s.state = 'pending' AND s.reason = 'NO_SEATS' THEN
                    (SELECT count(*) FROM seats w
                     WHERE w.license_id = s.license_id AND w.state = 'pending'
                       AND (w.since < s.since OR (w.since = s.since AND (w.queued_us, w.user_id) <= (s.queued_us, s.user_id)))
                       AND w.reason = 'NO_SEATS' AND w.sublicense_id IS s.sublicense_id)
                END
             FROM users u {BEST_SEAT} WHERE u.id = ?1"
        ))?
        .query_row([id], |r| {
            Ok(UserSummary {
                id: r.get(0)?,
                user_name: r.get(1)?,
                display_name: r.get(2)?,
                email: r.get(3)?,
                active: r.get::<_, i64>(4)? == 1,
                seat: r
                    .get::<_, Option<String>>(5)?
                    .as_deref()
                    .and_then(SeatState::parse),
                pool: r.get(6)?,
                reason: r.get(7)?,
                devices: r.get(8)?,
                full_name: r.get(9)?,
                waiting_position: r.get(10)?,
                groups: Vec::new(),
            })
        })?;
    summary.groups = tx
        .prepare_cached(
            "SELECT g.display_name FROM group_members m JOIN groups g ON g.id = m.group_id
             WHERE m.user_id = ?1 ORDER BY g.display_name_key",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(summary)
}

/// How the portal names a user: displayName, else given and family name, else the
/// formatted name, else the user name.
pub fn display_name_of(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT coalesce(full_name, user_name) FROM users WHERE id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()
}

/// One pool's seats at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    pub license_id: String,
    /// `None` for the primary pool.
    pub sublicense_id: Option<String>,
    pub name: String,
    pub reserved: bool,
    pub expires_at: Option<i64>,
    /// Capacity, used, free as the seat engine counts them.
    pub seats: PoolSeats,
    pub pending: i64,
    /// Of the used seats, those held by license-key devices (per-device seats).
    pub key_devices: i64,
}

/// Every pool of every license: the primary pool (seats not reserved by a sublicense) and
/// each sublicense, with assigned, pending and free seats as the seat engine counts them.
pub fn pool_usage(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<Vec<PoolUsage>> {
    let catalog = super::licensing::catalog(tx)?;
    let usage = super::licensing::usage(tx)?;
    let pending = super::licensing::pending_per_pool(tx)?;
    let key_devices = key_devices_per_pool(tx)?;
    let devices = |l: &str, p: &Option<String>| {
        key_devices
            .get(&(l.to_string(), p.clone()))
            .copied()
            .unwrap_or(0)
    };
    let waiting = |l: &str, p: &Option<String>| {
        pending
            .get(&(l.to_string(), p.clone()))
            .copied()
            .unwrap_or(0)
    };
    let mut pools = Vec::new();
    for l in &catalog.licenses {
        pools.push(PoolUsage {
            license_id: l.id.clone(),
            sublicense_id: None,
            name: "Primary pool".into(),
            reserved: false,
            expires_at: l.expires_at,
            seats: catalog.pool_seats(&l.id, &None, &usage, now),
            pending: waiting(&l.id, &None),
            key_devices: devices(&l.id, &None),
        });
        // The catalog lists sublicenses by license, then name.
        for s in catalog.sublicenses.iter().filter(|s| s.license_id == l.id) {
            let pool = Some(s.id.clone());
            pools.push(PoolUsage {
                license_id: l.id.clone(),
                sublicense_id: pool.clone(),
                name: s.name.clone(),
                reserved: s.reserved,
                expires_at: s.expires_at,
                seats: catalog.pool_seats(&l.id, &pool, &usage, now),
                pending: waiting(&l.id, &pool),
                key_devices: devices(&l.id, &pool),
            });
        }
    }
    Ok(pools)
}

/// Live license-key devices per (license, pool).
fn key_devices_per_pool(tx: &Transaction<'_>) -> rusqlite::Result<crate::domain::engine::Usage> {
    let mut stmt = tx.prepare_cached(
        "SELECT license_id, sublicense_id, count(*) FROM devices
         WHERE key_id IS NOT NULL AND revoked_at IS NULL GROUP BY license_id, sublicense_id",
    )?;
    let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
    rows.collect()
}

/// What the audit log view filters on.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Audit entries matching `f`, newest first, with the user's name when known.
pub fn search_audit(
    tx: &Transaction<'_>,
    f: &AuditFilter,
    limit: i64,
) -> rusqlite::Result<Vec<(AuditEntry, Option<String>)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT a.id, a.at, a.actor, a.action, a.user_id, a.subject, a.reason, a.detail, u.user_name
         FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
         WHERE (?1 IS NULL OR a.user_id = ?1) AND (?2 IS NULL OR a.action = ?2)
           AND (?3 IS NULL OR a.at >= ?3) AND (?4 IS NULL OR a.at < ?4)
         ORDER BY a.id DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(params![f.user_id, f.action, f.since, f.until, limit], |r| {
        Ok((
            AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                user_id: r.get(4)?,
                subject: r.get(5)?,
                reason: r.get(6)?,
                detail: r.get(7)?,
            },
            r.get(8)?,
        ))
    })?;
    rows.collect()
}

/// The distinct actions in the audit log (for the filter's choices).
pub fn audit_actions(tx: &Transaction<'_>) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached("SELECT DISTINCT action FROM audit_log ORDER BY action")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// One of a user's seats, for the user detail page.
pub struct SeatView {
    pub product: String,
    pub pool: String,
    pub state: SeatState,
    pub reason: Option<String>,
    pub since: i64,
}

pub fn user_seats(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<Vec<SeatView>> {
    let mut stmt = tx.prepare_cached(
        "SELECT l.product, coalesce(sl.name, 'primary pool'), s.state, s.reason, s.since
         FROM seats s JOIN licenses l ON l.id = s.license_id
         LEFT JOIN sublicenses sl ON sl.id = s.sublicense_id
         WHERE s.user_id = ?1 ORDER BY l.product",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        Ok(SeatView {
            product: r.get(0)?,
            pool: r.get(1)?,
            state: SeatState::parse(&r.get::<_, String>(2)?).unwrap_or(SeatState::Pending),
            reason: r.get(3)?,
            since: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// A person in the directory with their group names (the demo IdP's sign-in list).
pub struct Person {
    pub email: String,
    pub name: String,
    pub active: bool,
    pub groups: Vec<String>,
}

/// The first `limit` people, active first, by name.
pub fn people(tx: &Transaction<'_>, limit: i64) -> rusqlite::Result<Vec<Person>> {
    let mut stmt = tx.prepare_cached(
        "SELECT u.user_name, coalesce(u.display_name, u.user_name), u.active,
                (SELECT group_concat(g.display_name, char(10)) FROM group_members gm
                   JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = u.id)
         FROM users u ORDER BY u.active DESC, coalesce(u.display_name, u.user_name) LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        let groups: Option<String> = r.get(3)?;
        Ok(Person {
            email: r.get(0)?,
            name: r.get(1)?,
            active: r.get::<_, i64>(2)? == 1,
            groups: groups
                .map(|g| g.lines().map(str::to_string).collect())
                .unwrap_or_default(),
        })
    })?;
    rows.collect()
}
