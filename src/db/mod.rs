//! SQLite storage: one writer connection behind a mutex, a few read-only connections, one
//! transaction per request. Only this module (and its children) knows `rusqlite`.
//!
//! Durability: WAL with `synchronous = NORMAL` by default: a committed transaction survives
//! the process being killed (`kill -9`) because the WAL is in the OS page cache; a power
//! loss may lose the last commits but never corrupts the database. `[database]
//! synchronous = "full"` fsyncs every commit for power-loss durability at a throughput cost.
//!
//! Start-up trusts SQLite, not the file's size: SQLite opens the file, recovers the WAL
//! (a crash in the middle of a checkpoint is legal and complete once replayed), and only
//! then `PRAGMA quick_check` decides whether the database is damaged.

pub mod admin;
pub mod backup;
pub mod directory;
pub mod distribution;
pub mod entitlements;
pub mod filter_sql;
pub mod health;
pub mod history;
pub mod idp;
pub mod inventory;
pub mod keys;
pub mod licensing;
mod migrations;
pub mod outbox;
pub mod policies;
pub mod portal;
pub mod settings;
pub mod tokens;
pub mod usage;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::domain::problem::{Problem, Reason};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

pub use migrations::LATEST_VERSION;

/// Read connections kept open for reuse. Must cover the app threads that read at once: a
/// connection beyond the pool is opened per request and loses its prepared statements.
const READERS: usize = 32;
const BUSY_TIMEOUT_MS: u64 = 5000;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "the database {path} is empty (0 bytes); it may have been truncated. Restore a backup with `seatgate restore`, or move the file away to start fresh"
    )]
    EmptyFile { path: PathBuf },
    #[error(
        "the database {path} is damaged or not a seatgate database ({detail}); nothing was changed. Restore a backup with `seatgate restore`"
    )]
    Corrupt { path: PathBuf, detail: String },
    /// Found at start-up: SQLite opened and recovered the file, and it is still damaged.
    #[error("the database {path} is damaged ({detail}); nothing was written to it. {advice}")]
    Damaged {
        path: PathBuf,
        detail: String,
        advice: String,
    },
    #[error(
        "the database {path} has schema version {found}, newer than this seatgate supports ({supported}); run a newer seatgate or restore an older backup"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub use crate::config::Synchronous;

/// Seconds an IdP is told to wait after a full disk or an I/O error refused its write.
const STORAGE_RETRY_AFTER: u32 = 30;

/// What a failed database operation means to whoever asked for it.
impl From<DbError> for Problem {
    fn from(e: DbError) -> Problem {
        match e {
            DbError::Sqlite(e) => e.into(),
            other => {
                log::error!("database error: {other}");
                Problem::internal()
            }
        }
    }
}

impl From<rusqlite::Error> for Problem {
    fn from(e: rusqlite::Error) -> Problem {
        let health = health::global();
        health.observe(&e);
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                log::error!("database error: {e}");
                Problem::new(
                    Reason::Unavailable,
                    "The database is busy; try again in a moment.",
                )
                .with_retry_after(1)
            }
            // The damage was logged once, with what to restore; each refusal is not.
            _ if health.writes_stopped() => Problem::database_corrupt(),
            Some(rusqlite::ErrorCode::DiskFull) => Problem::new(
                Reason::DiskFull,
                "The gateway's disk is full, so it cannot store this change; try again once space is freed.",
            )
            .with_retry_after(STORAGE_RETRY_AFTER),
            Some(rusqlite::ErrorCode::SystemIoFailure) => {
                log::error!("database error: {e}");
                Problem::new(
                    Reason::StorageError,
                    "The gateway could not read or write its database (an I/O error); try again in a moment.",
                )
                .with_retry_after(STORAGE_RETRY_AFTER)
            }
            _ => {
                log::error!("database error: {e}");
                Problem::internal()
            }
        }
    }
}

fn pragma(synchronous: Synchronous) -> &'static str {
    match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    }
}

pub struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Readers kept open for reuse; see [`Db::limit_readers`].
    max_readers: AtomicUsize,
    synchronous: Synchronous,
    /// Set once a server starts [`Db::checkpoint_in_background`].
    wal_bound: OnceLock<WalBound>,
}

/// The WAL size that makes the writer wake the checkpoint thread for a reset.
struct WalBound {
    wal: PathBuf,
    max_bytes: u64,
    wake: SyncSender<Wake>,
}

enum Wake {
    WalFull,
    Stop,
}

/// Stops the checkpoint thread when dropped.
pub struct CheckpointStop(SyncSender<Wake>);

impl Drop for CheckpointStop {
    fn drop(&mut self) {
        let _ = self.0.send(Wake::Stop);
    }
}

impl Db {
    /// Opens (or creates) the database, refusing damaged or too-new files, and applies
    /// pending migrations after taking a backup into `backup_dir`.
    pub fn open(path: &Path, backup_dir: &Path, synchronous: Synchronous) -> Result<Db, DbError> {
        Db::open_with_steps(path, backup_dir, synchronous, migrations::STEPS)
    }

    /// [`Db::open`] with an explicit migration list (tests exercise upgrades with it).
    fn open_with_steps(
        path: &Path,
        backup_dir: &Path,
        synchronous: Synchronous,
        steps: &[&str],
    ) -> Result<Db, DbError> {
        let latest = steps.len() as i64;
        let existed = path.exists();
        if existed {
            check_file_header(path)?;
        }
        let writer = open_connection(path, synchronous, existed)?;
        writer.execute_batch(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB}"))?;
        // Until the file is known good, closing must not checkpoint the WAL into it.
        writer.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        // Damage SQLite can open is found by the quick check `health` runs beside the
        // server, which stops writes and says which backup to restore; a file SQLite
        // cannot open at all is refused here with the same advice.
        let version =
            read_version(&writer, path).map_err(|e| with_restore_advice(e, backup_dir))?;
        writer.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)?;
        if version > latest {
            return Err(DbError::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: latest,
            });
        }
        if version > 0 && version < latest {
            let out = backup::pre_migration_path(backup_dir, version);
            log::info!(
                "migrating the database from version {version} to {latest}; backup first: {}",
                out.display()
            );
            backup::vacuum_into(&writer, &out)?;
        }
        migrations::apply(&writer, steps, version)?;
        let db = Db {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            max_readers: AtomicUsize::new(READERS),
            synchronous,
            wal_bound: OnceLock::new(),
        };
        Ok(db)
    }

    /// Keeps at most `n` idle readers (the server sets it to the reads that can run at
    /// once), which bounds both their descriptors and their page caches.
    pub fn limit_readers(&self, n: usize) {
        let n = n.max(1);
        self.max_readers.store(n, Ordering::Relaxed);
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .truncate(n);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer; commits if it returns `Ok`.
    pub fn write<T, E>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let health = health::global();
        // Once damage is found nothing more is written to the file (see `health`).
        health.refuse_write()?;
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let observed = |e: rusqlite::Error| {
            health.observe(&e);
            e
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(observed)?;
        let value = f(&tx)?;
        tx.commit().map_err(observed)?;
        health.wrote();
        if let Some(bound) = self.wal_bound.get() {
            bound.after_commit();
        }
        Ok(value)
    }

    /// Runs `f` in one read transaction on a pooled read-only connection, so a request sees
    /// one consistent snapshot.
    pub fn read<T, E>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path, self.synchronous)?,
        };
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = f(&tx)?;
            tx.finish()?;
            Ok(value)
        })();
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() < self.max_readers.load(Ordering::Relaxed) {
            readers.push(conn);
        }
        result
    }

    /// Cheap readiness probe: the schema is at the expected version and answers a query.
    pub fn ping(&self) -> Result<(), rusqlite::Error> {
        self.read(|tx| {
            let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if v == LATEST_VERSION {
                Ok(())
            } else {
                Err(rusqlite::Error::InvalidQuery)
            }
        })
    }

    /// For a long-running server: the writer stops checkpointing at commit (a checkpoint
    /// copies the WAL into the database file and fsyncs it, which stalled the committing
    /// request for 10-20 ms every thousand pages) and a background thread runs passive
    /// checkpoints, which never block readers or the writer, every `period`.
    ///
    /// Passive checkpoints alone never let the WAL start over while writes continue, so it
    /// grew without bound (1.95 GB in 30 s of SCIM creates). Once it passes `wal_max_bytes`
    /// the writer wakes the thread, which resets the WAL with the writer paused (see
    /// [`Db::reset_wal`]); the periodic passive checkpoints have copied most of it by then.
    /// The thread ends when the returned [`CheckpointStop`] is dropped.
    pub fn checkpoint_in_background(
        self: &Arc<Self>,
        period: Duration,
        wal_max_bytes: u64,
    ) -> Result<(CheckpointStop, std::thread::JoinHandle<()>), DbError> {
        let conn = open_connection(&self.path, self.synchronous, true)?;
        self.writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {wal_max_bytes};"
            ))?;
        // One pending wake-up is enough: the writer never blocks on it.
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        let bound = WalBound {
            wal: wal_path(&self.path),
            max_bytes: wal_max_bytes,
            wake: wake.clone(),
        };
        let db = Arc::downgrade(self);
        let max = bound.max_bytes;
        let wal = bound.wal.clone();
        let handle = std::thread::Builder::new()
            .name("checkpoints".into())
            .spawn(move || checkpoint_loop(&conn, &db, &woken, period, &wal, max))
            .map_err(|e| DbError::Io {
                context: "cannot start the checkpoint thread".into(),
                source: e,
            })?;
        let _ = self.wal_bound.set(bound);
        Ok((CheckpointStop(wake), handle))
    }

    /// Checkpoints the whole WAL and truncates it, holding the writer so no write starts
    /// meanwhile. Readers still using the WAL are waited for, briefly: a long read (an
    /// online backup) makes this a partial checkpoint, retried at the next wake-up.
    /// Returns whether the WAL was reset.
    pub fn reset_wal(&self, wait: Duration) -> Result<bool, rusqlite::Error> {
        reset_wal(&self.writer.lock().unwrap_or_else(|p| p.into_inner()), wait)
    }

    /// Moves the WAL into the main file (at shutdown, so the file is self-contained).
    pub fn checkpoint(&self) -> Result<(), rusqlite::Error> {
        health::global().refuse_checkpoint()?;
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    }

    /// Writes a consistent, integrity-checked copy of the live database to `out`.
    /// Uses its own connection: `VACUUM INTO` is refused on the `query_only` readers, and
    /// backups are too rare for pooling to matter. It reads one snapshot and never blocks
    /// the writer.
    pub fn backup_to(&self, out: &Path) -> Result<(), DbError> {
        let conn = open_connection(&self.path, self.synchronous, true)?;
        backup::vacuum_into(&conn, out)
    }
}

/// A damaged (or not yet checked) database keeps its WAL: without this, the last
/// connection to close would checkpoint it into the file.
impl Drop for Db {
    fn drop(&mut self) {
        if health::global().refuse_checkpoint().is_ok() {
            return;
        }
        let keep_wal = |c: &Connection| {
            let _ = c.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            );
        };
        keep_wal(&self.writer.lock().unwrap_or_else(|p| p.into_inner()));
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .for_each(keep_wal);
    }
}

/// How long a WAL reset waits for readers to leave the WAL, with the writer paused. The
/// app's reads take milliseconds; a longer one (an online backup) postpones the reset.
const RESET_WAIT: Duration = Duration::from_millis(100);
/// Each reset readers kept from finishing doubles the next one's wait, up to this: under a
/// steady stream of slow reads (six clients running `displayName co` scans) a 100 ms wait
/// never succeeded and the WAL reached 1.8 times its bound.
const RESET_WAIT_MAX: Duration = Duration::from_millis(1600);

/// The wait of the reset after `failed` postponed ones in a row.
fn reset_wait(failed: u32) -> Duration {
    RESET_WAIT
        .saturating_mul(1u32 << failed.min(8))
        .min(RESET_WAIT_MAX)
}

impl WalBound {
    /// Called by the writer after each commit: one `stat`, and a wake-up past the bound.
    fn after_commit(&self) {
        if wal_over_bound(&self.wal, self.max_bytes) {
            let _ = self.wake.try_send(Wake::WalFull);
        }
    }
}

/// `wal_checkpoint(TRUNCATE)` on the writer connection, whose holder no other write can
/// pass. Returns false when a reader kept it from finishing.
fn reset_wal(writer: &Connection, wait: Duration) -> Result<bool, rusqlite::Error> {
    writer.busy_timeout(wait)?;
    let busy = writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    writer.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    Ok(busy? == 0)
}

fn wal_path(db: &Path) -> PathBuf {
    let name = db.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    db.with_file_name(format!("{name}-wal"))
}

fn wal_len(wal: &Path) -> u64 {
    fs::metadata(wal).map_or(0, |m| m.len())
}

/// Whether the WAL has passed its bound: `[database] wal_max_mib`, or less on a file
/// system with little room, where a WAL of that size could fill the disk (a 16 MiB volume
/// filled again within seconds after space was freed).
fn wal_over_bound(wal: &Path, max_bytes: u64) -> bool {
    let len = wal_len(wal);
    let free = health::global().free_space().map(|f| f.bytes);
    len > wal_bound(max_bytes, len, free)
}

/// The smallest bound a small disk makes the WAL keep.
const MIN_WAL_BOUND: u64 = 1024 * 1024;

/// `max_bytes`, but at most a quarter of the room the WAL has (its own size plus the free
/// space as last measured), and never under [`MIN_WAL_BOUND`].
fn wal_bound(max_bytes: u64, wal_len: u64, free: Option<u64>) -> u64 {
    match free {
        Some(free) => max_bytes.min(MIN_WAL_BOUND.max(wal_len.saturating_add(free) / 4)),
        None => max_bytes,
    }
}

fn checkpoint_loop(
    conn: &Connection,
    db: &Weak<Db>,
    woken: &Receiver<Wake>,
    period: Duration,
    wal: &Path,
    max_bytes: u64,
) {
    // After a reset a long reader kept from finishing, the next waits a period, so such
    // a reader costs the writer one short pause per period, not one per commit.
    let mut next_reset = Instant::now();
    let mut failing = false;
    // Resets postponed in a row while the WAL is well past its bound (half as much again).
    let mut postponed: u32 = 0;
    loop {
        let full = match woken.recv_timeout(period) {
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Wake::WalFull) => true,
            Err(RecvTimeoutError::Timeout) => wal_over_bound(wal, max_bytes),
        };
        // Nothing is copied into a damaged (or not yet checked) file.
        if health::global().refuse_checkpoint().is_err() {
            continue;
        }
        if !full || Instant::now() < next_reset {
            // Said when checkpoints start and stop failing, not every second (a full disk
            // fails them until space is freed).
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                Err(e) if !failing => {
                    log::warn!("background WAL checkpoints fail: {e}");
                    failing = true;
                }
                Ok(()) if failing => {
                    log::info!("background WAL checkpoints work again");
                    failing = false;
                }
                _ => {}
            }
            continue;
        }
        let Some(db) = db.upgrade() else { return };
        #[cfg(debug_assertions)]
        crash_hook::arm(&db.path);
        let len = wal_len(wal);
        let well_past = len > max_bytes.saturating_add(max_bytes / 2);
        let wait = if well_past {
            reset_wait(postponed)
        } else {
            RESET_WAIT
        };
        match db.reset_wal(wait) {
            Ok(true) => postponed = 0,
            Ok(false) => {
                log::debug!(
                    "WAL reset postponed after {} ms: a reader is still using the WAL ({len} bytes)",
                    wait.as_millis()
                );
                postponed = if well_past { postponed + 1 } else { 0 };
                next_reset = Instant::now() + period;
            }
            Err(e) => {
                log::warn!("WAL reset failed: {e}");
                next_reset = Instant::now() + period;
            }
        }
    }
}

/// Debug builds only: `SEATGATE_TEST_CRASH_IN_CHECKPOINT=N` aborts the process (as a
/// crash or `kill -9` would) during the first WAL reset, N × 2 µs after the checkpoint
/// wrote page 1 with a page count the file does not have yet (the window a crash leaves
/// as a header ahead of the file), so the durability tests crash inside it at will.
#[cfg(debug_assertions)]
mod crash_hook {
    use std::io::Read;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// Starts watching `db`, once, when the hook is set.
    pub fn arm(db: &Path) {
        static ARMED: AtomicBool = AtomicBool::new(false);
        let Some(n) = std::env::var("SEATGATE_TEST_CRASH_IN_CHECKPOINT")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
        else {
            return;
        };
        if ARMED.swap(true, Ordering::Relaxed) {
            return;
        }
        let db = db.to_path_buf();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !header_ahead(&db) && Instant::now() < deadline {
                std::hint::spin_loop();
            }
            // Spinning, not sleeping: the window lasts tens of microseconds.
            let at = Instant::now() + Duration::from_micros(2) * n;
            while Instant::now() < at {
                std::hint::spin_loop();
            }
            std::process::abort();
        });
    }

    fn header_ahead(db: &PathBuf) -> bool {
        let mut header = [0u8; 32];
        let Ok(mut file) = std::fs::File::open(db) else {
            return false;
        };
        let (Ok(meta), Ok(())) = (file.metadata(), file.read_exact(&mut header)) else {
            return false;
        };
        let page_size = u64::from(u16::from_be_bytes([header[16], header[17]]));
        let pages = u64::from(u32::from_be_bytes([
            header[28], header[29], header[30], header[31],
        ]));
        meta.len() < pages * page_size
    }
}

/// Turns a refusal of a damaged file into one that names the backup to restore.
fn with_restore_advice(e: DbError, backup_dir: &Path) -> DbError {
    let DbError::Corrupt { path, detail } = e else {
        return e;
    };
    let advice = match backup::newest(backup_dir) {
        Some(newest) => format!(
            "Stop seatgate and restore the newest backup with `seatgate restore {}`",
            newest.display()
        ),
        None => format!(
            "There is no backup in {}: restore a copy from elsewhere with `seatgate restore FILE`, or move the file away to start fresh",
            backup_dir.display()
        ),
    };
    DbError::Damaged {
        path,
        detail,
        advice,
    }
}

/// The writer's page cache, in KiB. SQLite's default (2 MiB) held too little of a
/// 100k-user directory: renewals spent 6% of their time in `pread`. Grows only with use.
const WRITER_CACHE_KIB: u32 = 16 * 1024;
/// Every other connection's (readers, checkpoints, backups), in KiB. Readers are many
/// and each cache grows to what it touched, so a large one per reader added up to
/// 100+ MB; the OS page cache serves their misses. With the server's reader limit (app
/// connections + 2, see [`Db::limit_readers`]) the total stays at 16 + 4 × that MiB.
const READER_CACHE_KIB: u32 = 4 * 1024;

/// Per-connection setup. `busy_timeout` comes first so that even the WAL switch waits for
/// a concurrent writer instead of failing.
/// Prepared statements kept per connection. rusqlite keeps 16 by default; a renewal alone
/// runs more distinct statements than that, and past the cache's size every statement
/// is parsed again on every request (a fourfold cost in renewals per second).
const STATEMENT_CACHE: usize = 256;

fn configure(conn: &Connection, synchronous: Synchronous) -> Result<(), rusqlite::Error> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("SQLite refused WAL mode (got {mode}); continuing with {mode}");
    }
    // secure_delete: a row's old bytes (an email that held an invitation's link) are
    // zeroed on the page, not left in free space, wherever that costs no extra I/O.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{READER_CACHE_KIB}; PRAGMA secure_delete = FAST;",
        pragma(synchronous)
    ))?;
    Ok(())
}

fn open_connection(
    path: &Path,
    synchronous: Synchronous,
    must_exist: bool,
) -> Result<Connection, DbError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if !must_exist {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    configure(&conn, synchronous).map_err(|e| classify(path, e))?;
    if !must_exist {
        set_private_mode(path)?;
    }
    Ok(conn)
}

fn open_reader(path: &Path, synchronous: Synchronous) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn, synchronous)?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(conn)
}

fn set_private_mode(path: &Path) -> Result<(), DbError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|source| DbError::Io {
        context: format!("cannot set permissions on {}", path.display()),
        source,
    })
}

/// What an existing database file means for this binary, found without changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaStatus {
    /// No database yet: the first `serve` creates it.
    Missing,
    /// Already at this binary's schema version.
    Current(i64),
    /// Older: `serve` migrates it (taking a backup first).
    Upgradable { found: i64, latest: i64 },
}

/// Reads the schema version of `path` read-only and says whether this binary can serve it;
/// a newer database is [`DbError::TooNew`], the same error `serve` refuses it with.
/// Installers run it before starting an upgraded binary (a downgrade keeps the old one).
pub fn schema_status(path: &Path) -> Result<SchemaStatus, DbError> {
    if !path.exists() {
        return Ok(SchemaStatus::Missing);
    }
    match inspect(path, |conn| read_version(conn, path))? {
        v if v > LATEST_VERSION => Err(DbError::TooNew {
            path: path.to_path_buf(),
            found: v,
            supported: LATEST_VERSION,
        }),
        v if v == LATEST_VERSION => Ok(SchemaStatus::Current(v)),
        v => Ok(SchemaStatus::Upgradable {
            found: v,
            latest: LATEST_VERSION,
        }),
    }
}

/// The public URL the last `serve` stored (set at first-run setup), read without
/// changing the file; `None` when there is no database or it holds none.
/// `config check` shows it as the effective `public_url`.
pub fn stored_public_url(path: &Path) -> Result<Option<String>, DbError> {
    if !path.exists() {
        return Ok(None);
    }
    inspect(path, |conn| {
        read_version(conn, path)?;
        let stored = conn
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                [settings::LAST_PUBLIC_URL],
                |r| r.get(0),
            )
            .optional();
        // A database too old to have settings simply has no stored URL.
        Ok(stored.unwrap_or(None))
    })
}

/// Runs `read` on a query-only connection to an existing database, leaving the files as
/// they were.
fn inspect<T>(
    path: &Path,
    read: impl FnOnce(&Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    check_file_header(path)?;
    // Read-write but query-only: a read-only connection would leave `-wal`/`-shm` files
    // behind (owned by whoever ran the check), where the last read-write connection to
    // close removes them. But closing would also checkpoint a WAL left by a crash into
    // the file: when there is one, it stays as it was (the server replays it).
    let wal = wal_path(path);
    let shm = path.with_file_name(format!(
        "{}-shm",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    ));
    let had_wal = wal_len(&wal) > 0;
    let had_shm = shm.exists();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    if had_wal {
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
    }
    conn.execute_batch("PRAGMA query_only = ON;")?;
    let result = read(&conn);
    drop(conn);
    if had_wal && !had_shm {
        // The index this check rebuilt; nobody else had the file open (they would hold it).
        let _ = fs::remove_file(&shm);
    }
    result
}

/// Reads the schema version, turning "not a database" into a clear error.
fn read_version(conn: &Connection, path: &Path) -> Result<i64, DbError> {
    let probe = || -> Result<i64, rusqlite::Error> {
        // Reading sqlite_master forces SQLite to parse the schema pages.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    };
    probe().map_err(|e| classify(path, e))
}

fn classify(path: &Path, e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            DbError::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
        }
        _ => DbError::Sqlite(e),
    }
}

/// Rejects files SQLite would misread before it touches them: an empty file (SQLite would
/// silently treat it as a new database) and one without the SQLite header. Everything
/// else, a header counting more pages than the file holds included, is SQLite's to judge:
/// it accounts for the WAL (a checkpoint writes page 1 before it extends the file, so a
/// crash or a full disk in the middle of one leaves exactly that) and reports a truly
/// truncated file as corrupt.
pub fn check_file_header(path: &Path) -> Result<(), DbError> {
    let io = |source| DbError::Io {
        context: format!("cannot read {}", path.display()),
        source,
    };
    let len = fs::metadata(path).map_err(io)?.len();
    if len == 0 {
        return Err(DbError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let corrupt = |detail: &str| DbError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let mut header = [0u8; 100];
    let mut file = fs::File::open(path).map_err(io)?;
    if len < 100 || file.read_exact(&mut header).is_err() {
        return Err(corrupt("the file is shorter than a SQLite header"));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(corrupt("the file does not start with the SQLite header"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(PathBuf);
    impl Tmp {
        fn new() -> Tmp {
            let p =
                std::env::temp_dir().join(format!("seatgate-db-{}", crate::crypto::random_hex(8)));
            fs::create_dir_all(&p).expect("mkdir");
            Tmp(p)
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Issue 12 (black-box round): with the 64 MiB bound, the WAL filled a 16 MiB volume
    /// again after space was freed. The bound shrinks to a quarter of the room it has.
    #[test]
    fn item2_the_wal_bound_follows_the_free_space() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(
            wal_bound(64 * MIB, 0, None),
            64 * MIB,
            "unmeasured: as configured"
        );
        assert_eq!(wal_bound(64 * MIB, 0, Some(100 * 1024 * MIB)), 64 * MIB);
        assert_eq!(wal_bound(64 * MIB, 2 * MIB, Some(10 * MIB)), 3 * MIB);
        assert_eq!(
            wal_bound(64 * MIB, 0, Some(0)),
            MIN_WAL_BOUND,
            "never below 1 MiB"
        );
        assert_eq!(wal_bound(2 * MIB, 0, Some(1024 * MIB)), 2 * MIB);
    }

    /// Soak: under six clients' steady slow reads a 100 ms wait never let a reset finish
    /// and the WAL reached 1.8 times its bound; past 1.5 times it, each postponed reset
    /// doubles the next one's wait.
    #[test]
    fn item2_postponed_resets_wait_longer_up_to_a_limit() {
        assert_eq!(reset_wait(0), RESET_WAIT);
        assert_eq!(reset_wait(1), Duration::from_millis(200));
        assert_eq!(reset_wait(4), RESET_WAIT_MAX);
        assert_eq!(reset_wait(40), RESET_WAIT_MAX);
    }

    /// Issue 12 item 7: memory grew from 19 to 126 MB under load: 32 pooled readers with
    /// 16 MiB page caches each. The writer keeps its large cache; readers get a small one,
    /// and the server bounds how many are kept, so the total has a stated ceiling.
    #[test]
    fn item7_page_caches_are_bounded() {
        let tmp = Tmp::new();
        let db = Db::open(&tmp.0.join("t.db"), &tmp.0, Synchronous::Normal).expect("open");
        let cache = |conn: &Connection| -> i64 {
            conn.query_row("PRAGMA cache_size", [], |r| r.get(0))
                .expect("cache_size")
        };
        let writer = cache(&db.writer.lock().expect("writer"));
        assert_eq!(writer, -i64::from(WRITER_CACHE_KIB));
        db.read(|_| Ok::<_, rusqlite::Error>(())).expect("read");
        let reader = cache(&db.readers.lock().expect("readers")[0]);
        assert_eq!(reader, -i64::from(READER_CACHE_KIB));
        // The README states the ceiling with these sizes.
        const { assert!(WRITER_CACHE_KIB == 16 * 1024 && READER_CACHE_KIB == 4 * 1024) };

        // Concurrent reads beyond the limit are served, but only `n` connections are kept.
        db.limit_readers(2);
        let barrier = std::sync::Barrier::new(6);
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    db.read(|_| {
                        barrier.wait();
                        Ok::<_, rusqlite::Error>(())
                    })
                    .expect("read")
                });
            }
        });
        assert_eq!(db.readers.lock().expect("readers").len(), 2);
    }

    fn objects(conn: &Connection) -> Vec<(String, String, String, String)> {
        let mut stmt = conn
            .prepare("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name")
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    normalize(&r.get::<_, String>(3)?),
                ))
            })
            .expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    }

    fn normalize(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn migrations_produce_exactly_schema_sql() {
        let tmp = Tmp::new();
        let db = Db::open(&tmp.0.join("m.db"), &tmp.0, Synchronous::Normal).expect("open");
        let migrated = Connection::open(db.path()).expect("reopen");
        let canonical = Connection::open_in_memory().expect("memory");
        canonical
            .execute_batch(include_str!("../../schema.sql"))
            .expect("schema.sql applies");
        assert_eq!(objects(&migrated), objects(&canonical));
        let v = |c: &Connection| {
            c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
                .expect("version")
        };
        assert_eq!(v(&migrated), LATEST_VERSION);
        assert_eq!(v(&canonical), LATEST_VERSION);
    }

    #[test]
    fn refuses_a_newer_database_without_touching_it() {
        let tmp = Tmp::new();
        let path = tmp.0.join("new.db");
        drop(Db::open(&path, &tmp.0, Synchronous::Normal).expect("open"));
        Connection::open(&path)
            .expect("open")
            .execute_batch(&format!("PRAGMA user_version = {}", LATEST_VERSION + 1))
            .expect("bump");
        let before = fs::read(&path).expect("read");
        let err = Db::open(&path, &tmp.0, Synchronous::Normal)
            .err()
            .expect("refused");
        assert!(matches!(err, DbError::TooNew { .. }), "{err}");
        assert_eq!(before, fs::read(&path).expect("read"));
    }

    #[test]
    fn refuses_empty_garbage_and_truncated_files_unchanged() {
        let tmp = Tmp::new();
        let empty = tmp.0.join("empty.db");
        fs::write(&empty, b"").expect("write");
        assert!(matches!(
            Db::open(&empty, &tmp.0, Synchronous::Normal),
            Err(DbError::EmptyFile { .. })
        ));

        let garbage = tmp.0.join("garbage.db");
        fs::write(&garbage, vec![0x5a; 8192]).expect("write");
        assert!(matches!(
            Db::open(&garbage, &tmp.0, Synchronous::Normal),
            Err(DbError::Corrupt { .. })
        ));
        assert_eq!(fs::read(&garbage).expect("read"), vec![0x5a; 8192]);

        let good = tmp.0.join("good.db");
        let db = Db::open(&good, &tmp.0, Synchronous::Normal).expect("open");
        db.write(|tx| {
            for i in 0..2000 {
                tx.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, 0)",
                    (format!("k{i}"), "x".repeat(200)),
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        })
        .expect("fill");
        db.checkpoint().expect("checkpoint");
        drop(db);
        let bytes = fs::read(&good).expect("read");
        let truncated = tmp.0.join("truncated.db");
        fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
        let err = Db::open(&truncated, &tmp.0, Synchronous::Normal)
            .err()
            .expect("refused");
        assert!(matches!(err, DbError::Corrupt { .. }), "{err}");
        assert_eq!(fs::read(&truncated).expect("read").len(), bytes.len() / 2);
    }

    /// kill -9 in the middle of a checkpoint: page 1 (with the new page count) is in the
    /// file, the pages it counts are still only in the WAL. SQLite recovers from the WAL,
    /// so the gateway must start, not call the file truncated.
    #[test]
    fn a_header_ahead_of_the_file_with_the_wal_beside_it_opens() {
        let tmp = Tmp::new();
        let live = tmp.0.join("live.db");
        let db = Db::open(&live, &tmp.0, Synchronous::Normal).expect("open");
        db.checkpoint().expect("checkpoint");
        let raw = Connection::open(&live).expect("raw");
        raw.execute_batch("PRAGMA wal_autocheckpoint = 0")
            .expect("no checkpoint");
        raw.execute_batch("BEGIN").expect("begin");
        for i in 0..2000 {
            raw.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, 0)",
                (format!("k{i}"), "x".repeat(200)),
            )
            .expect("insert");
        }
        raw.execute_batch("COMMIT").expect("commit");
        let copy = tmp.0.join("crashed.db");
        fs::copy(&live, &copy).expect("copy db");
        fs::copy(tmp.0.join("live.db-wal"), tmp.0.join("crashed.db-wal")).expect("copy wal");
        drop(raw);
        drop(db);
        // What a checkpoint that wrote page 1 and died leaves: a header counting pages the
        // file does not have yet.
        let mut bytes = fs::read(&copy).expect("read");
        let pages = (bytes.len() / 4096) as u32 + 100;
        bytes[28..32].copy_from_slice(&pages.to_be_bytes());
        let change: [u8; 4] = bytes[24..28].try_into().expect("4 bytes");
        bytes[92..96].copy_from_slice(&change);
        fs::write(&copy, &bytes).expect("write");
        assert!(check_file_header(&copy).is_ok());
        let reopened = Db::open(&copy, &tmp.0, Synchronous::Normal).expect("recovers");
        let n: i64 = reopened
            .read(|tx| tx.query_row("SELECT count(*) FROM settings", [], |r| r.get(0)))
            .expect("count");
        assert_eq!(n, 2000);
    }

    /// kill -9 at every page of a checkpoint. SQLite copies the WAL's newest version of
    /// each page into the file in page order, page 1 (with the new page count) first, so
    /// a crash after k pages leaves the file with the first k of them and the WAL intact.
    /// Every such state must open, pass validation and hold every committed row.
    #[test]
    fn item1_a_crash_at_any_page_of_a_checkpoint_opens_with_every_row() {
        let tmp = Tmp::new();
        let live = tmp.0.join("live.db");
        let db = Db::open(&live, &tmp.0, Synchronous::Normal).expect("open");
        db.write(|tx| {
            tx.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES ('old', 'before', 0)",
                [],
            )
        })
        .expect("row");
        db.checkpoint().expect("checkpoint");
        let before = fs::read(&live).expect("read");
        let raw = Connection::open(&live).expect("raw");
        raw.execute_batch("PRAGMA wal_autocheckpoint = 0; BEGIN")
            .expect("begin");
        raw.execute("UPDATE settings SET value = 'after' WHERE key = 'old'", [])
            .expect("update");
        for i in 0..1500 {
            raw.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, 0)",
                (format!("k{i}"), "x".repeat(200)),
            )
            .expect("insert");
        }
        raw.execute_batch("COMMIT").expect("commit");
        let wal = fs::read(tmp.0.join("live.db-wal")).expect("wal");
        drop(raw);
        drop(db);
        // Closing checkpointed everything: the file a finished checkpoint leaves.
        let after = fs::read(&live).expect("read");
        const PAGE: usize = 4096;
        let written: Vec<usize> = (0..after.len() / PAGE)
            .filter(|&p| {
                before.get(p * PAGE..(p + 1) * PAGE) != after.get(p * PAGE..(p + 1) * PAGE)
            })
            .collect();
        assert!(
            written.len() > 50,
            "a checkpoint of {} pages",
            written.len()
        );
        assert_eq!(written[0], 0, "page 1 goes first");
        let crashed = tmp.0.join("crashed.db");
        for k in 0..=written.len() {
            let mut file = before.clone();
            for &p in &written[..k] {
                let end = (p + 1) * PAGE;
                if file.len() < end {
                    file.resize(end, 0);
                }
                file[p * PAGE..end].copy_from_slice(&after[p * PAGE..end]);
            }
            fs::write(&crashed, &file).expect("write db");
            fs::write(tmp.0.join("crashed.db-wal"), &wal).expect("write wal");
            let _ = fs::remove_file(tmp.0.join("crashed.db-shm"));
            let reopened = Db::open(&crashed, &tmp.0, Synchronous::Normal)
                .unwrap_or_else(|e| panic!("crash after {k} of {} pages: {e}", written.len()));
            let (n, old): (i64, String) = reopened
                .read(|tx| {
                    tx.query_row(
                        "SELECT count(*), (SELECT value FROM settings WHERE key = 'old') FROM settings",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                })
                .expect("count");
            assert_eq!((n, old.as_str()), (1501, "after"), "crash after {k} pages");
        }
    }

    #[test]
    fn upgrading_backs_up_first_then_migrates_one_step_at_a_time() {
        let tmp = Tmp::new();
        let path = tmp.0.join("up.db");
        let backups = tmp.0.join("backups");
        let v1 = Db::open_with_steps(
            &path,
            &backups,
            Synchronous::Normal,
            &migrations::STEPS[..1],
        )
        .expect("v1");
        v1.write(|tx| {
            tx.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES ('k', 'v', 0)",
                [],
            )
        })
        .expect("row");
        drop(v1);
        assert!(!backups.exists(), "no backup for a fresh database");

        let mut steps = migrations::STEPS.to_vec();
        steps.push("CREATE TABLE upgraded (id INTEGER PRIMARY KEY) STRICT;");
        let v2 = Db::open_with_steps(&path, &backups, Synchronous::Normal, &steps).expect("v2");
        let version: i64 = v2
            .read(|tx| tx.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .expect("version");
        assert_eq!(version, steps.len() as i64);
        let saved: Vec<PathBuf> = fs::read_dir(&backups)
            .expect("backups")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(saved.len(), 1);
        let name = saved[0]
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        assert!(name.starts_with("pre-migration-v1-"), "{name}");
        let old = Connection::open(&saved[0]).expect("backup opens");
        let (v, rows): (i64, i64) = old
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), count(*) FROM settings",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("backup content");
        assert_eq!(
            (v, rows),
            (1, 1),
            "the backup is the pre-migration database"
        );

        // A failing step leaves the database at the last good version.
        drop(v2);
        steps.push("CREATE TABLE broken (;");
        assert!(Db::open_with_steps(&path, &backups, Synchronous::Normal, &steps).is_err());
        let conn = Connection::open(&path).expect("open");
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, steps.len() as i64 - 1);
    }

    #[test]
    fn write_rolls_back_on_error() {
        let tmp = Tmp::new();
        let db = Db::open(&tmp.0.join("r.db"), &tmp.0, Synchronous::Normal).expect("open");
        let result: Result<(), rusqlite::Error> = db.write(|tx| {
            tx.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES ('a', 'b', 0)",
                [],
            )?;
            Err(rusqlite::Error::InvalidQuery)
        });
        assert!(result.is_err());
        let n: i64 = db
            .read(|tx| tx.query_row("SELECT count(*) FROM settings", [], |r| r.get(0)))
            .expect("count");
        assert_eq!(n, 0);
    }
}
