//! Online backups (`VACUUM INTO`, then an integrity check of the copy), offline restore,
//! and the retention of scheduled backups.

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{DbError, LATEST_VERSION, check_file_header};
use crate::clock;

/// Scheduled backups are named `seatgate-<stamp>.db`; only those are pruned.
const SCHEDULED_PREFIX: &str = "seatgate-";

/// Writes a consistent copy of the database behind `conn` to `out` (atomically: a
/// temporary file is checked, made 0600, then renamed).
pub fn vacuum_into(conn: &Connection, out: &Path) -> Result<(), DbError> {
    let io = |context: String| move |source| DbError::Io { context, source };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::datadir::create_private_dir(parent)
            .map_err(io(format!("cannot create {}", parent.display())))?;
    }
    let tmp = out.with_file_name(format!(
        ".{}.partial-{}",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("backup"),
        crate::crypto::random_hex(4)
    ));
    let tmp_str = tmp
        .to_str()
        .ok_or_else(|| DbError::Io {
            context: format!("backup path {} is not valid UTF-8", tmp.display()),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?
        .to_string();
    let result = (|| {
        conn.execute("VACUUM INTO ?1", [&tmp_str])?;
        verify(&tmp)?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .map_err(io(format!("cannot set permissions on {}", tmp.display())))?;
        fs::rename(&tmp, out).map_err(io(format!("cannot move the backup to {}", out.display())))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Facts about a verified backup file.
#[derive(Debug)]
pub struct Verified {
    pub version: i64,
    pub bytes: u64,
}

/// Checks that `path` is an intact seatgate database this binary can run.
pub fn verify(path: &Path) -> Result<Verified, DbError> {
    check_file_header(path)?;
    let corrupt = |detail: String| DbError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| corrupt(e.to_string()))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    if check != "ok" {
        return Err(corrupt(format!("integrity check: {check}")));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    let has_settings: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'settings'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| corrupt(e.to_string()))?;
    if version < 1 || !has_settings {
        return Err(corrupt("it has no seatgate schema".into()));
    }
    if version > LATEST_VERSION {
        return Err(DbError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: LATEST_VERSION,
        });
    }
    let bytes = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Verified { version, bytes })
}

/// Replaces the database at `db_path` with the backup at `from`. The caller holds the data
/// directory lock (no server is running). The current database, if any, is kept as
/// `pre-restore-<stamp>.db` in `backup_dir`. Returns where the old database went.
pub fn restore(from: &Path, db_path: &Path, backup_dir: &Path) -> Result<Option<PathBuf>, DbError> {
    let io = |context: String| move |source| DbError::Io { context, source };
    verify(from)?;
    // The copy comes first, beside the database: a full disk or a kill before the final
    // rename leaves the current database in place (moving it aside first left none, and
    // the next start created an empty gateway).
    let tmp = db_path.with_extension("restoring");
    let copied = (|| {
        fs::copy(from, &tmp)?;
        fs::File::open(&tmp)?.sync_all()?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
    })();
    if let Err(e) = copied {
        let _ = fs::remove_file(&tmp);
        return Err(io(format!(
            "cannot copy {} beside the database",
            from.display()
        ))(e));
    }
    let mut kept = None;
    if db_path.exists() {
        let keep = backup_dir.join(format!(
            "pre-restore-{}.db",
            clock::file_stamp(clock::now_unix())
        ));
        let kept_copy = (|| {
            crate::datadir::ensure_private_dir(backup_dir)?;
            // Fold a leftover WAL into the old file so the kept copy is complete; the WAL is
            // deleted below, so a checkpoint that cannot finish stops the restore.
            let wal = PathBuf::from(format!("{}-wal", db_path.display()));
            if fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                let conn = Connection::open(db_path).map_err(std::io::Error::other)?;
                let busy: i64 = conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                    .map_err(std::io::Error::other)?;
                if busy != 0 {
                    return Err(std::io::Error::other(
                        "its write-ahead log could not be folded into it",
                    ));
                }
            }
            // A second name for the same file where it can be (no space needed), else a copy.
            if fs::hard_link(db_path, &keep).is_err() {
                fs::copy(db_path, &keep)?;
                fs::File::open(&keep)?.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = kept_copy {
            let _ = fs::remove_file(&tmp);
            return Err(io(format!(
                "cannot keep a copy of {} in {}",
                db_path.display(),
                backup_dir.display()
            ))(e));
        }
        kept = Some(keep);
    }
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", db_path.display()));
        if side.exists() {
            fs::remove_file(&side).map_err(io(format!("cannot remove {}", side.display())))?;
        }
    }
    // One atomic step from the old database to the restored one.
    fs::rename(&tmp, db_path).map_err(io(format!(
        "cannot move the restored database to {}",
        db_path.display()
    )))?;
    if let Some(dir) = db_path.parent() {
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(kept)
}

/// Path for a scheduled backup taken now.
pub fn scheduled_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        "{SCHEDULED_PREFIX}{}.db",
        clock::file_stamp(clock::now_unix())
    ))
}

/// Path for the automatic backup taken before migrating from `version`.
pub fn pre_migration_path(dir: &Path, version: i64) -> PathBuf {
    dir.join(format!(
        "pre-migration-v{version}-{}.db",
        clock::file_stamp(clock::now_unix())
    ))
}

/// The newest scheduled backup's modification time, if any.
pub fn newest_scheduled(dir: &Path) -> Option<std::time::SystemTime> {
    scheduled_backups(dir)
        .last()
        .and_then(|p| fs::metadata(p).ok()?.modified().ok())
}

/// The backup to restore after damage: the newest `.db` file in `dir` by modification
/// time, scheduled or pre-migration. `pre-restore-` copies are the databases a restore
/// replaced, and dot-files are unfinished backups: neither is advised.
pub fn newest(dir: &Path) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".db") && !name.starts_with('.') && !name.starts_with("pre-restore-")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
}

/// Deletes the oldest scheduled backups beyond `retain`. Returns how many were deleted.
pub fn prune(dir: &Path, retain: usize) -> usize {
    let all = scheduled_backups(dir);
    let excess = all.len().saturating_sub(retain);
    all.iter()
        .take(excess)
        .filter(|p| match fs::remove_file(p) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("cannot delete old backup {}: {e}", p.display());
                false
            }
        })
        .count()
}

/// Scheduled backups, oldest first (the stamp in the name sorts by time).
fn scheduled_backups(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(SCHEDULED_PREFIX) && n.ends_with(".db"))
        })
        .collect();
    found.sort();
    found
}
