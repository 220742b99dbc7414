//! `seatgate image …`: golden VM images in the storage folder, working on the data
//! directory directly (safe while the server runs) through `distribution`, as the admin
//! API does. `image add` resumes an interrupted add of the same file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, runtime};
use crate::audit::Actor;
use crate::clock::{now_unix, rfc3339};
use crate::config::Config;
use crate::db::Db;
use crate::distribution::Distribution;
use crate::distribution::images;
use crate::distribution::uploads::{self, Ended, Finished, Target};
use crate::domain::problem::Problem;

/// Bytes copied between commits (each synced and hashed): what an interruption can lose.
const PIECE: u64 = 64 << 20;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Add FILE as a version of an image (the image is created with its first version);
    /// the file is copied into the storage folder, hashed as it goes; run it again after
    /// an interruption and it resumes
    Add {
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        /// The SHA-256 the file must have (refused, nothing kept, if it does not)
        #[arg(long)]
        sha256: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// Images with each version's size and SHA-256, assignments and devices (VM inventory)
    List,
    /// Give an image to an IdP group: its latest version, or --version pinned
    Assign {
        image: String,
        #[arg(long)]
        group: String,
        /// The IdP connection whose group this is (default: a group of no connection)
        #[arg(long)]
        connection: Option<String>,
        #[arg(long)]
        version: Option<String>,
    },
    /// Remove an assignment (its id, from `image list`)
    Unassign { assignment: String },
    /// Delete a version and its file (refused while an assignment pins it)
    DeleteVersion {
        image: String,
        #[arg(long)]
        version: String,
    },
}

pub(super) fn problem(e: Problem) -> CliError {
    CliError::Runtime(format!("{} ({})", e.message, e.reason.code()))
}

pub fn run(db: &Db, config: &Config, cmd: ImageCommand) -> Result<(), CliError> {
    let dist = distribution(db, config)?;
    let now = now_unix();
    match cmd {
        ImageCommand::Add {
            file,
            name,
            version,
            sha256,
            description,
            notes,
        } => add(
            &dist,
            db,
            &file,
            Target::Image {
                name,
                version,
                description,
                notes,
            },
            sha256.as_deref(),
        ),
        ImageCommand::List => list(db),
        ImageCommand::Assign {
            image,
            group,
            connection,
            version,
        } => {
            let a = images::assign(
                db,
                &Actor::Cli,
                &image,
                &group,
                connection.as_deref(),
                version.as_deref(),
                now,
            )
            .map_err(problem)?;
            outln!(
                "assigned {:?} ({}) to group {:?}: assignment {}",
                a.image_name,
                a.pinned_version
                    .map_or("latest version".to_string(), |v| format!("version {v}")),
                a.group_ref,
                a.id
            );
            Ok(())
        }
        ImageCommand::Unassign { assignment } => {
            images::unassign(db, &Actor::Cli, None, &assignment, now).map_err(problem)?;
            outln!("removed assignment {assignment}");
            Ok(())
        }
        ImageCommand::DeleteVersion { image, version } => {
            images::delete_version(&dist, db, &Actor::Cli, &image, &version, now)
                .map_err(problem)?;
            outln!("deleted version {version} of {image:?} and its file");
            Ok(())
        }
    }
}

fn add(
    dist: &Distribution,
    db: &Db,
    path: &PathBuf,
    target: Target,
    sha256: Option<&str>,
) -> Result<(), CliError> {
    match copy_in(dist, db, path, target, sha256)? {
        Finished::Image(v) => outln!(
            "added {:?} version {} ({} bytes), sha256 {}",
            v.image_name,
            v.version,
            v.size,
            v.sha256
        ),
        Finished::Package(p) => outln!("added app version {} ({} bytes)", p.version, p.size),
    }
    Ok(())
}

/// Copies `path` into the storage folder as an upload of `target`, a piece at a time
/// (each synced and hashed before the next), resuming an earlier interrupted copy.
pub(super) fn copy_in(
    dist: &Distribution,
    db: &Db,
    path: &PathBuf,
    target: Target,
    sha256: Option<&str>,
) -> Result<Finished, CliError> {
    // Checked before opening: opening a FIFO would wait for a writer forever.
    let meta = std::fs::metadata(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(CliError::Usage(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut source = File::open(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let size = meta.len();
    let (mut row, created) =
        uploads::create(dist, db, target, size, sha256, &Actor::Cli, now_unix())
            .map_err(problem)?;
    let part_path = dist
        .storage
        .path(&crate::storage::upload_file(&row.id))
        .map_err(runtime)?;
    if !created && row.received > 0 {
        if !same_prefix(&mut source, &part_path, row.received as u64).map_err(runtime)? {
            return Err(CliError::Runtime(format!(
                "an unfinished upload of this version ({}) holds other bytes than {}; cancel it with `seatgate upload cancel {}`",
                row.id,
                path.display(),
                row.id
            )));
        }
        eprintln!("resuming an earlier add at byte {} of {size}", row.received);
    }
    loop {
        let offset = row.received as u64;
        let piece = PIECE.min(size - offset);
        let mut part = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part_path)
            .map_err(runtime)?;
        if !crate::storage::try_lock(&part).map_err(runtime)? {
            return Err(problem(uploads::busy()));
        }
        part.set_len(offset).map_err(runtime)?;
        part.seek(SeekFrom::Start(offset)).map_err(runtime)?;
        source.seek(SeekFrom::Start(offset)).map_err(runtime)?;
        let copied = std::io::copy(&mut (&mut source).take(piece), &mut part);
        let outcome = match &copied {
            Ok(n) if *n == piece => "complete",
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => "disk-full",
            _ => "io-error",
        };
        part.flush().map_err(runtime)?;
        drop(part);
        let written = *copied.as_ref().unwrap_or(&0);
        let ended = uploads::end(
            dist,
            db,
            &row.id,
            (offset, written, outcome),
            &Actor::Cli,
            now_unix(),
        )
        .map_err(problem)?;
        match ended {
            Ended::Partial(next) => {
                row = next;
                eprint!("\r{} of {size} bytes", row.received);
            }
            Ended::Finished(done) => {
                eprintln!();
                return Ok(done);
            }
        }
    }
}

/// Whether the first `len` bytes of `source` are those the partial file holds.
fn same_prefix(source: &mut File, part: &std::path::Path, len: u64) -> std::io::Result<bool> {
    let mut stored = File::open(part)?;
    source.seek(SeekFrom::Start(0))?;
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut left = len;
    while left > 0 {
        let n = a.len().min(usize::try_from(left).unwrap_or(a.len()));
        if source.read_exact(&mut a[..n]).is_err() || stored.read_exact(&mut b[..n]).is_err() {
            return Ok(false);
        }
        if a[..n] != b[..n] {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// `seatgate upload …`: uploads in progress (from the API or an interrupted `add`).
#[derive(Debug, Subcommand)]
pub enum UploadCommand {
    /// Uploads in progress: id, what they become, bytes received
    List,
    /// Cancel an upload and remove its partial file
    Cancel { id: String },
}

pub fn uploads(db: &Db, config: &Config, cmd: UploadCommand) -> Result<(), CliError> {
    match cmd {
        UploadCommand::List => {
            let rows = db
                .read(crate::db::distribution::uploads)
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            if rows.is_empty() {
                outln!("no uploads in progress");
            }
            for u in rows {
                outln!(
                    "{}  {}  {} of {} bytes  by {}  last piece {}",
                    u.id,
                    u.target_key,
                    u.received,
                    u.size,
                    u.created_by,
                    rfc3339(u.updated_at)
                );
            }
            Ok(())
        }
        UploadCommand::Cancel { id } => {
            let dist = distribution(db, config)?;
            uploads::cancel(&dist, db, &id, &Actor::Cli).map_err(problem)?;
            outln!("cancelled upload {id}; its partial file is removed");
            Ok(())
        }
    }
}

/// The storage folder the server uses: the one it recorded at start unless this
/// command's configuration names one (which must then be the same).
pub(super) fn distribution(db: &Db, config: &Config) -> Result<Distribution, CliError> {
    let recorded = db
        .read(|tx| crate::db::settings::get(tx, crate::storage::DIR_SETTING))
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let mut storage_config = config.storage.clone();
    match (&recorded, storage_config.dir.is_empty()) {
        (Some(dir), true) => storage_config.dir = dir.clone(),
        (Some(dir), false)
            if std::fs::canonicalize(&storage_config.dir).ok().as_deref()
                != Some(std::path::Path::new(dir)) =>
        {
            return Err(CliError::Usage(format!(
                "the server keeps its files in {dir}, not in {} ([storage] dir); run this command with the server's configuration",
                storage_config.dir
            )));
        }
        _ => {}
    }
    let storage = crate::storage::Storage::open(&storage_config, &config.data_dir)
        .map_err(|e| CliError::Runtime(format!("cannot open the storage folder: {e}")))?;
    Ok(Distribution::new(storage))
}

fn list(db: &Db) -> Result<(), CliError> {
    let all = images::overview(db).map_err(problem)?;
    if all.is_empty() {
        outln!("no images; add one with `seatgate image add FILE --name NAME --version V`");
    }
    for o in &all {
        outln!("{} ({})", o.image.name, o.image.id);
        for (v, devices) in &o.versions {
            outln!(
                "  {}  {} bytes  sha256 {}  added {}  on {devices} device(s)",
                v.version,
                v.size,
                v.sha256,
                rfc3339(v.created_at)
            );
        }
        for a in &o.assignments {
            outln!(
                "  assigned to group {:?}{}: {} ({})",
                a.group_ref,
                a.connection_id
                    .as_deref()
                    .map(|c| format!(" of {c}"))
                    .unwrap_or_default(),
                a.pinned_version
                    .as_deref()
                    .map_or("latest".to_string(), |v| format!("pinned at {v}")),
                a.id
            );
        }
    }
    Ok(())
}
