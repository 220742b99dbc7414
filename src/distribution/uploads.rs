//! Resumable uploads: a file arrives in pieces (`Content-Range`), each committed (synced and
//! hashed) before the next may start where it ends; a dropped connection or a restart
//! loses at most the piece in flight, whatever of it was not written. The finished file's
//! SHA-256 is checked against the one declared, then the file moves into place and its
//! record is written, or nothing is kept.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

use super::Distribution;
use crate::audit::Actor;
use crate::db::Db;
use crate::db::distribution::{self as store, UploadRow};
use crate::domain::files::{self, ContentRange};
use crate::domain::problem::{Problem, Reason};
use crate::storage;

/// What a finished upload becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Target {
    /// A version of a golden image (the image is created with its first version).
    Image {
        name: String,
        version: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        notes: String,
    },
    /// An app installer package for the local update server.
    Package {
        version: String,
        /// `stable` or `beta`.
        branch: String,
        /// The oldest macOS it installs on, e.g. `13.0`.
        min_os: String,
        #[serde(default)]
        notes: String,
        /// The name it is offered under, e.g. `Desktop-20.1.2.pkg`.
        file_name: String,
    },
}

impl Target {
    /// Checked and normalized.
    pub fn checked(self) -> Result<Target, Problem> {
        Ok(match self {
            Target::Image {
                name,
                version,
                description,
                notes,
            } => Target::Image {
                name: files::check_name(&name)?,
                version: files::check_version(&version)?,
                description: check_text("description", &description)?,
                notes: check_text("notes", &notes)?,
            },
            Target::Package {
                version,
                branch,
                min_os,
                notes,
                file_name,
            } => Target::Package {
                version: files::check_version(&version)?,
                branch: files::check_branch(&branch)?,
                min_os: files::check_os_version(&min_os).map_err(|_| {
                    Problem::new(
                        Reason::BadRequest,
                        "min_os must be a macOS version such as 13.0.",
                    )
                })?,
                notes: check_text("notes", &notes)?,
                file_name: files::check_file_name(&file_name)?,
            },
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Target::Image { .. } => "image",
            Target::Package { .. } => "package",
        }
    }

    /// One upload per target at a time.
    fn key(&self) -> String {
        match self {
            Target::Image { name, version, .. } => {
                format!("image:{}:{version}", crate::db::admin::fold(name))
            }
            Target::Package { version, .. } => format!("package:{version}"),
        }
    }
}

fn check_text(what: &str, text: &str) -> Result<String, Problem> {
    if text.len() > 4000
        || text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(Problem::new(
            Reason::BadRequest,
            format!("The {what} must be printable text of at most 4000 bytes."),
        ));
    }
    Ok(text.trim().to_string())
}

/// An upload as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub id: String,
    pub target: Target,
    pub size: i64,
    pub received: i64,
    pub sha256: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn status_of(row: &UploadRow) -> Result<Status, Problem> {
    let target: Target = serde_json::from_str(&row.target)
        .map_err(|_| Problem::new(Reason::Internal, "An upload's record is unreadable."))?;
    Ok(Status {
        id: row.id.clone(),
        target,
        size: row.size,
        received: row.received,
        sha256: row.sha256.clone(),
        created_by: row.created_by.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// What ending a piece came to.
#[derive(Debug)]
pub enum Ended {
    /// Committed; more is expected.
    Partial(UploadRow),
    /// The last piece: the file is stored.
    Finished(Finished),
}

#[derive(Debug)]
pub enum Finished {
    Image(store::VersionRow),
    Package(store::PackageRow),
}

/// Starts an upload of `size` bytes, or returns the one of the same target already in
/// progress (same size and hash), so an interrupted client resumes instead of starting
/// over. `true` when it is new.
pub fn create(
    dist: &Distribution,
    db: &Db,
    target: Target,
    size: u64,
    sha256: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<(UploadRow, bool), Problem> {
    let target = target.checked()?;
    let sha256 = sha256.map(files::check_sha256).transpose()?;
    let limits = &dist.storage.limits;
    if size == 0 {
        return Err(Problem::new(Reason::BadRequest, "The file is empty."));
    }
    if size > limits.max_file_size {
        return Err(Problem::new(
            Reason::QuotaExceeded,
            format!(
                "The file is larger than [storage] max_file_size ({} bytes).",
                limits.max_file_size
            ),
        ));
    }
    let size_i = i64::try_from(size)
        .map_err(|_| Problem::new(Reason::BadRequest, "The size is too large."))?;
    let (row, created) = db.write(|tx| {
        exists_already(tx, &target)?;
        if let Some(existing) = store::upload_of_target(tx, &target.key())? {
            let same_target =
                serde_json::from_str::<Target>(&existing.target).is_ok_and(|t| t == target);
            if existing.size == size_i && existing.sha256 == sha256 && same_target {
                return Ok((existing, false));
            }
            return Err(Problem::new(
                Reason::Conflict,
                format!(
                    "Another upload of this version is in progress ({}, {} bytes) with other details (size, hash, branch, minimum macOS, notes); cancel it first (`seatgate upload cancel`) or start it the same way.",
                    existing.id, existing.size
                ),
            ));
        }
        let promised = store::committed_bytes(tx)?;
        if promised.saturating_add(size_i) as u64 > limits.max_total_size {
            return Err(Problem::new(
                Reason::QuotaExceeded,
                format!(
                    "The storage folder would pass [storage] max_total_size ({} bytes, {} already stored or promised).",
                    limits.max_total_size, promised
                ),
            ));
        }
        check_free_space(dist, size)?;
        let row = UploadRow {
            id: format!("up-{}", crate::crypto::random_hex(12)),
            kind: target.kind().to_string(),
            target: serde_json::to_string(&target)
                .map_err(|_| Problem::new(Reason::Internal, "The upload could not be recorded."))?,
            target_key: target.key(),
            size: size_i,
            sha256: sha256.clone(),
            received: 0,
            created_by: actor.to_string(),
            created_at: now,
            updated_at: now,
        };
        store::insert_upload(tx, &row)?;
        storage::create_private(&dist.storage.path(&storage::upload_file(&row.id)).map_err(io_problem)?)
            .map_err(io_problem)?;
        Ok((row, true))
    })?;
    if created {
        log::info!(
            "upload {} started by {actor}: {} bytes for {}",
            row.id,
            row.size,
            row.target_key
        );
    }
    Ok((row, created))
}

/// Refuses a target that is already stored.
fn exists_already(tx: &rusqlite::Transaction<'_>, target: &Target) -> Result<(), Problem> {
    match target {
        Target::Image { name, version, .. } => {
            if let Some(image) = store::image(tx, name)?
                && store::version_named(tx, &image.id, version)?.is_some()
            {
                return Err(Problem::new(
                    Reason::VersionExists,
                    format!(
                        "The image {:?} already has a version {version}.",
                        image.name
                    ),
                ));
            }
        }
        Target::Package { version, .. } => {
            if store::package_named(tx, version)?.is_some() {
                return Err(Problem::new(
                    Reason::VersionExists,
                    format!("Version {version} of the app is already on the update server."),
                ));
            }
        }
    }
    Ok(())
}

/// Refuses when writing `bytes` more would eat into `[storage] reserve`.
fn check_free_space(dist: &Distribution, bytes: u64) -> Result<(), Problem> {
    let free = dist.storage.free_bytes().map_err(io_problem)?;
    let reserve = dist.storage.limits.reserve;
    if free < bytes.saturating_add(reserve) {
        return Err(Problem::new(
            Reason::StorageFull,
            format!(
                "The storage folder's disk has {free} bytes free; this needs {bytes} and must leave [storage] reserve ({reserve} bytes)."
            ),
        ));
    }
    Ok(())
}

fn io_problem(e: std::io::Error) -> Problem {
    log::error!("storage folder: {e}");
    if e.raw_os_error() == Some(libc::ENOSPC) {
        return Problem::new(Reason::StorageFull, "The storage folder's disk is full.");
    }
    Problem::new(
        Reason::StorageError,
        "The storage folder could not be read or written; see the gateway's log.",
    )
}

pub fn find(db: &Db, id: &str) -> Result<UploadRow, Problem> {
    db.read(|tx| store::upload(tx, id))?.ok_or_else(|| {
        Problem::new(
            Reason::NotFound,
            format!("There is no upload {id:?} (finished, cancelled or never started)."),
        )
    })
}

/// The gatekeeper asks whether a piece of `body_len` bytes may be written: yes when it
/// starts where the stored bytes end and fits. Returns the file and offset.
pub fn begin(
    dist: &Distribution,
    db: &Db,
    id: &str,
    content_range: Option<&str>,
    body_len: u64,
) -> Result<(String, u64), Problem> {
    let row = find(db, id)?;
    let range = content_range.ok_or_else(|| {
        Problem::new(
            Reason::BadRequest,
            "An upload piece needs Content-Range: bytes FIRST-LAST/TOTAL.",
        )
    })?;
    let ContentRange::Piece { first, last, total } = files::parse_content_range(range)? else {
        return Err(Problem::new(
            Reason::BadRequest,
            "A piece with a body needs Content-Range: bytes FIRST-LAST/TOTAL.",
        ));
    };
    if total != row.size as u64 || last - first + 1 != body_len {
        return Err(Problem::new(
            Reason::BadRequest,
            format!(
                "Content-Range must describe this body within the upload's {} bytes.",
                row.size
            ),
        ));
    }
    if first != row.received as u64 {
        return Err(offset_mismatch(&row));
    }
    check_free_space(dist, body_len)?;
    let relative = storage::upload_file(&row.id);
    let path = dist.storage.path(&relative).map_err(io_problem)?;
    if !path.exists() {
        // After a restore, or removed by hand: start the file again from here.
        storage::create_private(&path).map_err(io_problem)?;
    }
    Ok((relative, first))
}

pub fn offset_mismatch(row: &UploadRow) -> Problem {
    Problem::new(
        Reason::UploadOffsetMismatch,
        format!(
            "The upload has {} of {} bytes; send the piece that starts at byte {}.",
            row.received, row.size, row.received
        ),
    )
}

/// The gatekeeper reports a piece: `written` bytes at `offset`, and how writing ended
/// (`complete`, `aborted`, `timeout`, `disk-full`, `io-error`). What was written is
/// committed (so a dropped connection resumes after it); a full disk removes the upload.
pub fn end(
    dist: &Distribution,
    db: &Db,
    id: &str,
    (offset, written, outcome): (u64, u64, &str),
    actor: &Actor,
    now: i64,
) -> Result<Ended, Problem> {
    let row = find(db, id)?;
    if outcome == "disk-full" {
        cancel(dist, db, id, &Actor::System)?;
        return Err(Problem::new(
            Reason::StorageFull,
            "The storage folder's disk filled up during the upload; the partial upload was removed. Free space, then upload again.",
        ));
    }
    // Held until the bytes are committed and, with the last piece, published: no other
    // writer can touch the file meanwhile.
    let _lock = lock(dist, &row)?;
    let row = if written > 0 {
        commit(dist, db, &row, offset, written, now)?
    } else {
        row
    };
    if outcome == "io-error" {
        return Err(io_problem(std::io::Error::other(
            "writing an upload failed",
        )));
    }
    if row.received < row.size {
        return Ok(Ended::Partial(row));
    }
    finish(dist, db, &row, actor, now).map(Ended::Finished)
}

/// The partial file, locked; `UPLOAD_BUSY` while another writer holds it.
fn lock(dist: &Distribution, row: &UploadRow) -> Result<File, Problem> {
    let path = dist
        .storage
        .path(&storage::upload_file(&row.id))
        .map_err(io_problem)?;
    let file = File::open(path).map_err(io_problem)?;
    if !storage::try_lock(&file).map_err(io_problem)? {
        return Err(busy());
    }
    Ok(file)
}

pub fn busy() -> Problem {
    Problem::new(
        Reason::UploadBusy,
        "Another writer (a request or `seatgate image add`) holds this upload; wait for it to finish.",
    )
}

/// Commits `written` bytes at `offset` of the partial file: hashes them, syncs the file,
/// records the new length. The command line, writing the file itself, calls this too.
pub fn commit(
    dist: &Distribution,
    db: &Db,
    row: &UploadRow,
    offset: u64,
    written: u64,
    now: i64,
) -> Result<UploadRow, Problem> {
    if offset != row.received as u64 || offset + written > row.size as u64 {
        return Err(offset_mismatch(row));
    }
    let path = dist
        .storage
        .path(&storage::upload_file(&row.id))
        .map_err(io_problem)?;
    let mut file = File::open(&path).map_err(io_problem)?;
    let (covered, mut hash) = match dist.take_hash(&row.id) {
        Some((covered, hash)) if covered == row.received => (covered, hash),
        _ => (0, crate::crypto::Sha256Stream::default()),
    };
    let end = offset + written;
    let read = hash_range(&mut file, &mut hash, covered as u64, end);
    if let Err(e) = read.and_then(|()| file.sync_all()) {
        return Err(io_problem(e));
    }
    let received = end as i64;
    db.write(|tx| {
        // Another request may have committed or cancelled meanwhile.
        match store::upload(tx, &row.id)? {
            Some(now_row) if now_row.received == row.received => {
                store::set_received(tx, &row.id, received, now)
            }
            _ => Err(rusqlite::Error::QueryReturnedNoRows),
        }
    })
    .map_err(|e| match e {
        rusqlite::Error::QueryReturnedNoRows => offset_mismatch(row),
        e => Problem::from(e),
    })?;
    dist.put_hash(&row.id, received, hash);
    Ok(UploadRow {
        received,
        updated_at: now,
        ..row.clone()
    })
}

/// Feeds bytes `from..to` of the file to the hash.
fn hash_range(
    file: &mut File,
    hash: &mut crate::crypto::Sha256Stream,
    from: u64,
    to: u64,
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(from))?;
    let mut left = to - from;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the partial upload is shorter than its committed length",
            ));
        }
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

/// The whole file is in: check the hash, move the file into place, record it.
fn finish(
    dist: &Distribution,
    db: &Db,
    row: &UploadRow,
    actor: &Actor,
    now: i64,
) -> Result<Finished, Problem> {
    let hash = match dist.take_hash(&row.id) {
        Some((covered, hash)) if covered == row.size => hash,
        _ => {
            let path = dist
                .storage
                .path(&storage::upload_file(&row.id))
                .map_err(io_problem)?;
            let mut file = File::open(path).map_err(io_problem)?;
            let mut hash = crate::crypto::Sha256Stream::default();
            hash_range(&mut file, &mut hash, 0, row.size as u64).map_err(io_problem)?;
            hash
        }
    };
    let sha256 = crate::crypto::hex(&hash.finish());
    if let Some(declared) = &row.sha256
        && declared != &sha256
    {
        cancel(dist, db, &row.id, &Actor::System)?;
        return Err(Problem::new(
            Reason::HashMismatch,
            format!(
                "The uploaded bytes hash to {sha256}, not the declared {declared}; nothing was kept."
            ),
        ));
    }
    let status = status_of(row)?;
    let finished = match status.target {
        Target::Image {
            name,
            version,
            description,
            notes,
        } => super::images::store_version(
            dist,
            db,
            row,
            super::images::NewVersion {
                name: &name,
                version: &version,
                description: &description,
                notes: &notes,
                sha256: &sha256,
            },
            actor,
            now,
        )
        .map(Finished::Image),
        Target::Package {
            version,
            branch,
            min_os,
            notes,
            file_name,
        } => super::updates::store_package(
            dist,
            db,
            row,
            super::updates::NewPackage {
                version: &version,
                branch: &branch,
                min_os: &min_os,
                notes: &notes,
                file_name: &file_name,
                sha256: &sha256,
            },
            actor,
            now,
        )
        .map(Finished::Package),
    };
    if let Err(e) = &finished
        && e.reason == Reason::VersionExists
    {
        cancel(dist, db, &row.id, &Actor::System)?;
    }
    finished
}

/// Cancels an upload and removes its partial file.
pub fn cancel(dist: &Distribution, db: &Db, id: &str, actor: &Actor) -> Result<(), Problem> {
    if !db.write(|tx| store::delete_upload(tx, id))? {
        return Err(Problem::new(
            Reason::NotFound,
            format!("There is no upload {id:?}."),
        ));
    }
    dist.forget_hash(id);
    dist.storage
        .remove(&storage::upload_file(id))
        .map_err(io_problem)?;
    log::info!("upload {id} cancelled by {actor}; its partial file is removed");
    Ok(())
}

/// Removes uploads nobody touched for `[storage] abandoned_after`, and files no record
/// owns: partial files of uploads cancelled or finished by a process that crashed between
/// the file and the record, stored files of versions deleted likewise. Files younger than
/// an hour are left alone (an upload being created has its file before its row commits).
pub fn sweep(dist: &Distribution, db: &Db, now: i64) -> Result<usize, Problem> {
    let before = now - dist.storage.limits.abandoned_after.as_secs() as i64;
    let stale = db.read(|tx| store::stale_uploads(tx, before))?;
    for id in &stale {
        let _ = cancel(dist, db, id, &Actor::System);
    }
    let (uploads, versions, packages) = db.read(|tx| {
        Ok::<_, Problem>((
            store::uploads(tx)?,
            store::versions(tx)?,
            store::packages(tx)?,
        ))
    })?;
    let known: std::collections::HashSet<String> = uploads
        .iter()
        .map(|u| storage::upload_file(&u.id))
        .chain(versions.iter().map(|v| storage::image_file(v.id)))
        .chain(packages.iter().map(|p| storage::package_file(p.id)))
        .collect();
    let mut orphans = 0;
    for area in ["uploads", "images", "packages"] {
        let dir = dist.storage.root().join(area);
        for entry in std::fs::read_dir(dir).map_err(io_problem)?.flatten() {
            let name = format!("{area}/{}", entry.file_name().to_string_lossy());
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600));
            if old && !known.contains(&name) && dist.storage.remove(&name).is_ok() {
                log::warn!("removed {name} from the storage folder: no record owns it");
                orphans += 1;
            }
        }
    }
    Ok(stale.len() + orphans)
}
