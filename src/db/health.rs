//! The database's health as the whole process sees it: ok, damaged (writes stop until an
//! administrator restores a backup) or on a full disk (writes fail until space is freed),
//! and the free space beside it. Readiness, error responses, the portal's banner, the log
//! and `/metrics` all read it here, so they always say the same thing.
//!
//! One value per process ([`global`]): a server has one database, and the portal's page
//! frame and the error shaping have no other way to reach it. Tests of the rules use their
//! own [`Health`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Db;

/// How often the free space is measured (one `statvfs`).
const FREE_SPACE_TICK: Duration = Duration::from_secs(5);
/// A failed write is not retried with confidence below this much free space, whatever
/// `min_free_space` says.
const RECOVERY_FLOOR: u64 = 1024 * 1024;
/// Findings quoted from SQLite are cut to this many characters.
const DETAIL_CHARS: usize = 200;

const OK: u8 = 0;
const CORRUPT: u8 = 1;
const DISK_FULL: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Ok,
    /// SQLite found damage. `advice` names the backup to restore and the command.
    Corrupt {
        detail: String,
        advice: String,
    },
    /// A write failed for lack of space; it clears when a write succeeds or space is back.
    DiskFull,
}

/// The free space on the data directory's file system, as last measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeSpace {
    pub bytes: u64,
    /// Below `[database] min_free_space`.
    pub low: bool,
}

pub struct Health {
    /// The kind of the state, read on every write without taking the lock.
    kind: AtomicU8,
    /// False while the check at start runs: nothing is checkpointed into the file yet.
    checked: AtomicBool,
    inner: Mutex<Inner>,
}

struct Inner {
    data_dir: Option<PathBuf>,
    backup_dir: Option<PathBuf>,
    min_free: u64,
    corrupt: Option<(String, String)>,
    free: Option<FreeSpace>,
}

static GLOBAL: Health = Health::new();

/// The serving process's database health.
pub fn global() -> &'static Health {
    &GLOBAL
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl Health {
    pub const fn new() -> Health {
        Health {
            kind: AtomicU8::new(OK),
            checked: AtomicBool::new(true),
            inner: Mutex::new(Inner {
                data_dir: None,
                backup_dir: None,
                min_free: 0,
                corrupt: None,
                free: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the database and its backups live, and the free-space warning threshold.
    pub fn configure(&self, data_dir: &Path, backup_dir: &Path, min_free: u64) {
        let mut inner = self.lock();
        inner.data_dir = Some(data_dir.to_path_buf());
        inner.backup_dir = Some(backup_dir.to_path_buf());
        inner.min_free = min_free;
    }

    pub fn state(&self) -> State {
        match self.kind.load(Ordering::Acquire) {
            CORRUPT => {
                let (detail, advice) = self.lock().corrupt.clone().unwrap_or_default();
                State::Corrupt { detail, advice }
            }
            DISK_FULL => State::DiskFull,
            _ => State::Ok,
        }
    }

    /// True once damage was found: nothing may write to the database file any more.
    pub fn writes_stopped(&self) -> bool {
        self.kind.load(Ordering::Acquire) == CORRUPT
    }

    /// True while damage or a full disk has been reported (once, in the log): background
    /// jobs then stay quiet about the failures it explains instead of repeating them.
    pub fn reported(&self) -> bool {
        self.kind.load(Ordering::Acquire) != OK
    }

    /// Until [`watch`] has run the first check, `/readyz` fails and nothing is
    /// checkpointed into the file (writes wait in the WAL).
    pub fn begin_start_check(&self) {
        self.checked.store(false, Ordering::Release);
    }

    /// The first check has finished (whatever it found).
    pub fn start_check_done(&self) -> bool {
        self.checked.load(Ordering::Acquire)
    }

    /// Refuses to copy the WAL into the file while the file is damaged or not yet checked.
    pub fn refuse_checkpoint(&self) -> Result<(), rusqlite::Error> {
        self.refuse_write()?;
        if self.start_check_done() {
            return Ok(());
        }
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("the database check at start has not finished".into()),
        ))
    }

    /// The error every write gets once writes are stopped: SQLite's "read-only", which
    /// `error.rs` answers with `DATABASE_CORRUPT`.
    pub fn refuse_write(&self) -> Result<(), rusqlite::Error> {
        if !self.writes_stopped() {
            return Ok(());
        }
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("the database is damaged; writes are stopped until a backup is restored".into()),
        ))
    }

    /// Takes note of what a failed SQLite call says about the storage.
    pub fn observe(&self, e: &rusqlite::Error) {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                self.mark_corrupt(&e.to_string());
            }
            Some(rusqlite::ErrorCode::DiskFull) => self.mark_disk_full(),
            // An I/O error on a file system with no room left is a full disk too (SQLite
            // reports some ENOSPC cases as I/O errors).
            Some(rusqlite::ErrorCode::SystemIoFailure) => {
                let dir = self.lock().data_dir.clone();
                let bytes = dir.and_then(|d| crate::datadir::free_bytes(&d).ok());
                if bytes.is_some_and(|b| b < RECOVERY_FLOOR) {
                    self.mark_disk_full();
                }
            }
            _ => {}
        }
    }

    /// Stops writes for good (until a restart after a restore), and says once, in the log,
    /// what to restore.
    pub fn mark_corrupt(&self, detail: &str) {
        let mut inner = self.lock();
        if inner.corrupt.is_some() {
            return;
        }
        let detail = one_line(detail);
        let advice = restore_advice(inner.data_dir.as_deref(), inner.backup_dir.as_deref());
        log::error!(
            "the database is damaged ({detail}); seatgate stopped writing to it and answers every change with 503 DATABASE_CORRUPT. {advice}"
        );
        inner.corrupt = Some((detail, advice));
        self.kind.store(CORRUPT, Ordering::Release);
    }

    fn mark_disk_full(&self) {
        let inner = self.lock();
        if self
            .kind
            .compare_exchange(OK, DISK_FULL, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            log::error!(
                "the disk is full: writes to the database fail (503 DISK_FULL with Retry-After) until space is freed on the file system holding {}",
                shown(inner.data_dir.as_deref())
            );
        }
    }

    /// A write committed: the disk has room again, unless the file system still says
    /// otherwise (a small write can fit in a freed WAL page while the next one fails; the
    /// state would flap).
    pub fn wrote(&self) {
        if self.kind.load(Ordering::Acquire) != DISK_FULL {
            return;
        }
        let dir = self.lock().data_dir.clone();
        let still_full = dir
            .and_then(|d| crate::datadir::free_bytes(&d).ok())
            .is_some_and(|b| b < RECOVERY_FLOOR);
        if !still_full {
            self.clear_disk_full("a write succeeded");
        }
    }

    fn clear_disk_full(&self, why: &str) {
        if self
            .kind
            .compare_exchange(DISK_FULL, OK, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            log::info!("the disk has room again ({why}); writes resume");
        }
    }

    /// Records a measurement of the free space: warns once when it drops below the
    /// threshold, and ends a full-disk state once there is room again.
    pub fn record_free_space(&self, bytes: u64) {
        let (was_low, low, min_free, dir) = {
            let mut inner = self.lock();
            let low = bytes < inner.min_free;
            let was_low = inner.free.is_some_and(|f| f.low);
            inner.free = Some(FreeSpace { bytes, low });
            (was_low, low, inner.min_free, inner.data_dir.clone())
        };
        if low && !was_low {
            log::warn!(
                "free space is low: {} left on the file system holding {} (below [database] min_free_space = {}); writes fail when it runs out",
                human_bytes(bytes),
                shown(dir.as_deref()),
                human_bytes(min_free)
            );
        } else if was_low && !low {
            log::info!(
                "free space is back above [database] min_free_space: {} left",
                human_bytes(bytes)
            );
        }
        if bytes >= min_free.max(RECOVERY_FLOOR) {
            self.clear_disk_full("free space is back");
        }
    }

    pub fn free_space(&self) -> Option<FreeSpace> {
        self.lock().free
    }

    /// The measurement at start: a file system with almost no room is full before any
    /// write fails, so `/readyz` says so from the first request (it answered 200 for
    /// seconds after a restart on a full disk, until a write failed). It clears as any
    /// full-disk state does: a write with room behind it, or space back above the threshold.
    pub fn record_free_space_at_start(&self, bytes: u64) {
        if bytes < RECOVERY_FLOOR {
            self.mark_disk_full();
        }
        self.record_free_space(bytes);
    }

    /// The one sentence the portal shows on every page while something is wrong.
    pub fn banner(&self) -> Option<String> {
        match self.state() {
            State::Corrupt { detail, advice } => Some(format!(
                "The database is damaged, so seatgate accepts no changes. {advice} (SQLite found: {detail})"
            )),
            State::DiskFull => Some(format!(
                "The disk is full: changes fail until space is freed on the file system holding {}.",
                shown(self.lock().data_dir.as_deref())
            )),
            State::Ok => {
                let inner = self.lock();
                let free = inner.free.filter(|f| f.low)?;
                Some(format!(
                    "Free space is low: {} left on the file system holding {} (warning below {}); changes fail when it runs out.",
                    human_bytes(free.bytes),
                    shown(inner.data_dir.as_deref()),
                    human_bytes(inner.min_free)
                ))
            }
        }
    }

    /// What anyone may be told: that changes cannot be stored now (damage or a full
    /// disk), without the data directory's path or what SQLite found.
    pub fn public_banner(&self) -> Option<String> {
        match self.state() {
            State::Corrupt { .. } | State::DiskFull => {
                Some("The gateway cannot store changes right now; try again later.".to_string())
            }
            State::Ok => None,
        }
    }

    /// Runs `PRAGMA quick_check` and records damage. Returns false when damage was found.
    pub fn check(&self, db: &Db) -> bool {
        let started = Instant::now();
        match db.quick_check() {
            Ok(None) => {
                log::info!(
                    "database quick check passed in {} ms",
                    started.elapsed().as_millis()
                );
                true
            }
            Ok(Some(findings)) => {
                self.mark_corrupt(&findings);
                false
            }
            Err(e) => {
                // Busy or out of memory says nothing about the file; try again next time.
                log::warn!("the database quick check could not run: {e}");
                true
            }
        }
    }
}

/// Runs the first `quick_check` at once (a sender in the returned receiver says it is
/// done), then measures free space every few seconds and checks again every
/// `check_every` (never, if `None`), until the returned sender is dropped.
pub fn watch(
    health: &'static Health,
    db: Arc<Db>,
    check_every: Option<Duration>,
) -> std::io::Result<(mpsc::Sender<()>, JoinHandle<()>, mpsc::Receiver<()>)> {
    let (stop, stopped) = mpsc::channel::<()>();
    let (first_done, first) = mpsc::channel::<()>();
    let dir = health.lock().data_dir.clone();
    let handle = std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            if let Some(bytes) = dir
                .as_deref()
                .and_then(|d| crate::datadir::free_bytes(d).ok())
            {
                health.record_free_space_at_start(bytes);
            }
            health.check(&db);
            health.checked.store(true, Ordering::Release);
            let _ = first_done.send(());
            let mut last_check = Instant::now();
            loop {
                if let Some(dir) = &dir {
                    match crate::datadir::free_bytes(dir) {
                        Ok(bytes) => health.record_free_space(bytes),
                        Err(e) => log::warn!("cannot measure free space: {e}"),
                    }
                }
                if let Some(every) = check_every
                    && last_check.elapsed() >= every
                    && !health.writes_stopped()
                {
                    health.check(&db);
                    last_check = Instant::now();
                }
                match stopped.recv_timeout(FREE_SPACE_TICK) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })?;
    Ok((stop, handle, first))
}

impl Db {
    /// `PRAGMA quick_check` on a connection of its own: `None` when the database is
    /// intact, else SQLite's first findings.
    pub fn quick_check(&self) -> Result<Option<String>, rusqlite::Error> {
        let findings = (|| {
            let conn = super::open_reader(&self.path, self.synchronous)?;
            let mut stmt = conn.prepare("PRAGMA quick_check(10)")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<String>, _>>()
        })();
        match findings {
            Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(None),
            Ok(rows) => Ok(Some(rows.join("; "))),
            Err(e) if is_damage(&e) => Ok(Some(e.to_string())),
            Err(e) => Err(e),
        }
    }
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// What to do about a damaged database: restore the newest backup, with the exact command.
fn restore_advice(data_dir: Option<&Path>, backup_dir: Option<&Path>) -> String {
    let data = shown(data_dir);
    match backup_dir.and_then(super::backup::newest) {
        Some(backup) => format!(
            "To restore the newest backup, {}: stop seatgate, then run `seatgate --data-dir {data} restore {}` and start it again.",
            backup.display(),
            backup.display()
        ),
        None => format!(
            "No backup was found in {}: stop seatgate and move seatgate.db (with its -wal and -shm files) out of {data} to start empty, or recover what you can from it with `sqlite3 seatgate.db .recover`.",
            shown(backup_dir)
        ),
    }
}

fn shown(path: Option<&Path>) -> String {
    path.map_or_else(
        || "the data directory".to_string(),
        |p| p.display().to_string(),
    )
}

fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// `512 MiB`, `3.2 GiB`: for people reading the log and the banner.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None)
    }

    #[test]
    fn item4_damage_stops_writes_and_names_the_newest_backup() {
        let dir = std::env::temp_dir().join(format!("seatgate-h-{}", crate::crypto::random_hex(6)));
        let backups = dir.join("backups");
        std::fs::create_dir_all(&backups).expect("mkdir");
        std::fs::write(backups.join("seatgate-20260101T000000Z.db"), b"old").expect("write");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(backups.join("seatgate-20260102T000000Z.db"), b"new").expect("write");
        std::thread::sleep(Duration::from_millis(20));
        // A pre-restore copy is the database a restore replaced: never advised.
        std::fs::write(backups.join("pre-restore-20260103T000000Z.db"), b"bad").expect("write");

        let h = Health::new();
        h.configure(&dir, &backups, 0);
        assert!(h.refuse_write().is_ok());
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some("database disk image is malformed".into()),
        );
        h.observe(&corrupt);
        assert!(h.writes_stopped());
        let refused = h.refuse_write().expect_err("writes stop");
        assert_eq!(
            refused.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ReadOnly)
        );
        let banner = h.banner().expect("banner");
        assert!(banner.contains("malformed"), "{banner}");
        assert!(
            banner.contains(&format!(
                "restore {}",
                backups.join("seatgate-20260102T000000Z.db").display()
            )),
            "{banner}"
        );
        // A full disk or room again never ends it: only a restore and restart do.
        h.observe(&full());
        h.wrote();
        h.record_free_space(u64::MAX);
        assert!(h.writes_stopped());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn item5_full_disk_clears_on_a_write_or_when_space_is_back() {
        let h = Health::new();
        h.configure(
            Path::new("/data"),
            Path::new("/data/backups"),
            4 * 1024 * 1024,
        );
        h.record_free_space(10 * 1024 * 1024);
        assert_eq!(h.banner(), None);
        h.record_free_space(1024);
        assert_eq!(
            h.free_space(),
            Some(FreeSpace {
                bytes: 1024,
                low: true
            })
        );
        assert!(h.banner().is_some_and(|b| b.contains("Free space is low")));
        h.observe(&full());
        assert_eq!(h.state(), State::DiskFull);
        assert!(
            h.refuse_write().is_ok(),
            "a full disk refuses nothing itself"
        );
        assert!(h.banner().is_some_and(|b| b.contains("disk is full")));
        // Some room, but not above the threshold: still full.
        h.record_free_space(2 * 1024 * 1024);
        assert_eq!(h.state(), State::DiskFull);
        h.wrote();
        assert_eq!(h.state(), State::Ok);
        h.observe(&full());
        h.record_free_space(5 * 1024 * 1024);
        assert_eq!(h.state(), State::Ok);
        assert_eq!(h.banner(), None);
    }

    /// Black-box round: restarted on a full disk, `/readyz` said 200 for ~3 s, until the
    /// first write failed. Almost no room at start is a full disk at once.
    #[test]
    fn item5_a_full_disk_at_start_is_reported_before_any_write() {
        let h = Health::new();
        h.configure(
            Path::new("/data"),
            Path::new("/data/backups"),
            4 * 1024 * 1024,
        );
        h.record_free_space_at_start(8 * 1024);
        assert_eq!(h.state(), State::DiskFull);
        // Room, but below the threshold: still full; above it: clear.
        h.record_free_space(2 * 1024 * 1024);
        assert_eq!(h.state(), State::DiskFull);
        h.record_free_space(5 * 1024 * 1024);
        assert_eq!(h.state(), State::Ok);

        let h = Health::new();
        h.configure(
            Path::new("/data"),
            Path::new("/data/backups"),
            4 * 1024 * 1024,
        );
        h.record_free_space_at_start(2 * 1024 * 1024);
        assert_eq!(h.state(), State::Ok, "low is a warning, not full");
    }

    /// The scheduled check finds damage that appears while serving, and nothing is
    /// checkpointed into the file before the check at start has passed.
    #[test]
    fn item4_damage_found_while_serving_stops_writes() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = std::env::temp_dir().join(format!("seatgate-h-{}", crate::crypto::random_hex(6)));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("live.db");
        let db = Arc::new(Db::open(&path, &dir, super::super::Synchronous::Normal).expect("open"));
        db.write(|tx| {
            for i in 0..3000 {
                tx.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, 0)",
                    (format!("k{i}"), "x".repeat(300)),
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        })
        .expect("fill");
        db.checkpoint().expect("checkpoint");

        let h: &'static Health = Box::leak(Box::new(Health::new()));
        h.begin_start_check();
        assert!(h.refuse_checkpoint().is_err(), "not before the check");
        assert!(h.refuse_write().is_ok(), "writes wait in the WAL meanwhile");
        let (_stop, _thread, first) =
            watch(h, Arc::clone(&db), Some(Duration::ZERO)).expect("watch");
        first
            .recv_timeout(Duration::from_secs(30))
            .expect("first check");
        assert!(h.refuse_checkpoint().is_ok());
        assert_eq!(h.state(), State::Ok);

        let len = std::fs::metadata(&path).expect("len").len();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open file");
        f.seek(SeekFrom::Start(len / 2 / 4096 * 4096))
            .expect("seek");
        f.write_all(&[0x5a; 8 * 4096]).expect("damage");
        f.sync_all().expect("sync");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !h.writes_stopped() {
            assert!(
                Instant::now() < deadline,
                "the scheduled check missed the damage"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(h.refuse_checkpoint().is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(512 * 1024 * 1024), "512 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
