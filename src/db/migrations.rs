//! Embedded, ordered schema migrations. Step N brings `PRAGMA user_version` from N-1 to N
//! in one transaction. Never edit a released step: add a new one, and update `schema.sql`
//! (a test checks that the steps applied to an empty database produce exactly it).

use rusqlite::Connection;

pub const STEPS: &[&str] = &[
    include_str!("migrations/0001_foundation.sql"),
    include_str!("migrations/0002_directory.sql"),
    include_str!("migrations/0003_idp_connections.sql"),
    include_str!("migrations/0004_saml_requests.sql"),
    include_str!("migrations/0005_saml_replay.sql"),
    include_str!("migrations/0006_admin_access.sql"),
    include_str!("migrations/0007_licensing.sql"),
    include_str!("migrations/0008_admin_login_links.sql"),
    include_str!("migrations/0009_waiting_order.sql"),
    include_str!("migrations/0010_admin_session_groups.sql"),
    include_str!("migrations/0011_connection_scope.sql"),
    include_str!("migrations/0012_sign_in_counts.sql"),
    include_str!("migrations/0013_entitlements.sql"),
    include_str!("migrations/0014_usage.sql"),
    include_str!("migrations/0015_license_offline_limit.sql"),
    include_str!("migrations/0016_user_names.sql"),
    include_str!("migrations/0017_license_keys.sql"),
    include_str!("migrations/0018_outbox_invitations.sql"),
    include_str!("migrations/0019_policies_inventory_history.sql"),
    include_str!("migrations/0020_distribution.sql"),
];

/// The schema version this binary writes.
pub const LATEST_VERSION: i64 = STEPS.len() as i64;

/// Applies every step of `steps` after `current`.
pub fn apply(conn: &Connection, steps: &[&str], current: i64) -> Result<(), rusqlite::Error> {
    for (index, sql) in steps.iter().enumerate().skip(current.max(0) as usize) {
        let version = index as i64 + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"
        ))
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK;");
        })?;
        // A new database is one event, not one line per step.
        if current > 0 {
            log::info!("database schema migrated to version {version}");
        } else {
            log::debug!("database schema step {version} applied");
        }
    }
    if current == 0 && !steps.is_empty() {
        log::info!("created the database at schema version {}", steps.len());
    }
    Ok(())
}
