//! The distribution point's files: golden VM image versions, update packages and uploads
//! in progress, kept in one folder (`[storage] dir`), never in SQLite.
//!
//! Every file name is made here from database ids, never from a name a user gave, and
//! [`resolve`] admits only such names: no upload or download can reach a path outside
//! the folder, whatever `../`, absolute path or NUL a request carries.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::StorageConfig;

/// The settings key where the server records its storage folder at start, so that the
/// command line (which may run without the server's configuration) uses the same one.
pub const DIR_SETTING: &str = "storage_dir";

/// The storage folder and its limits.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
    pub limits: StorageConfig,
}

/// The folders inside the storage folder.
const AREAS: [&str; 3] = ["uploads", "images", "packages"];

impl Storage {
    /// Opens (creating when missing) the storage folder: `[storage] dir`, or `storage` in
    /// the data directory.
    pub fn open(config: &StorageConfig, data_dir: &Path) -> io::Result<Storage> {
        let root = if config.dir.is_empty() {
            data_dir.join("storage")
        } else {
            PathBuf::from(&config.dir)
        };
        for area in AREAS {
            crate::datadir::create_private_dir(&root.join(area))?;
        }
        Ok(Storage {
            root,
            limits: config.clone(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Records this folder (absolute) in the database for the command line.
    pub fn record(&self, db: &crate::db::Db, now: i64) -> io::Result<()> {
        let absolute = fs::canonicalize(&self.root)?;
        let text = absolute.to_string_lossy().to_string();
        db.write(|tx| crate::db::settings::put(tx, DIR_SETTING, &text, now))
            .map_err(io::Error::other)
    }

    /// The absolute path of a name made by the functions below.
    pub fn path(&self, relative: &str) -> io::Result<PathBuf> {
        resolve(&self.root, relative).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{relative}' is not a storage file name"),
            )
        })
    }

    /// Bytes free for us on the storage file system.
    pub fn free_bytes(&self) -> io::Result<u64> {
        crate::datadir::free_bytes(&self.root)
    }

    /// Bytes held by every file in the storage folder (stored files and partial uploads).
    pub fn used_bytes(&self) -> io::Result<u64> {
        let mut total = 0u64;
        for area in AREAS {
            for entry in fs::read_dir(self.root.join(area))? {
                let meta = entry?.metadata()?;
                if meta.is_file() {
                    total = total.saturating_add(meta.len());
                }
            }
        }
        Ok(total)
    }

    /// Removes a file, which may already be gone.
    pub fn remove(&self, relative: &str) -> io::Result<()> {
        match fs::remove_file(self.path(relative)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves a finished upload to its stored name, durably (the directory entry too).
    pub fn commit(&self, from: &str, to: &str) -> io::Result<()> {
        let target = self.path(to)?;
        fs::rename(self.path(from)?, &target)?;
        if let Some(dir) = target.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Takes the exclusive lock of an upload's partial file (`flock`, held until `file` is
/// closed), without waiting: `Ok(false)` when another writer holds it, in this process
/// or another (the gatekeeper writing a piece, `seatgate image add`). Whoever writes,
/// commits or publishes an upload's bytes holds it, so a published file never changes.
pub fn try_lock(file: &fs::File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this `File` owns for the call's duration.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Creates an empty file only we can read (a new upload's partial file).
pub fn create_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// The partial file of an upload.
pub fn upload_file(upload_id: &str) -> String {
    format!("uploads/{upload_id}.part")
}

/// The file of an image version.
pub fn image_file(version_id: i64) -> String {
    format!("images/{version_id}.img")
}

/// The file of an update package.
pub fn package_file(package_id: i64) -> String {
    format!("packages/{package_id}.pkg")
}

/// `root` joined with `relative`, when `relative` is one of our names: an area, a slash and
/// a file name of letters, digits, `.`, `-` and `_` that does not start with a dot.
pub fn resolve(root: &Path, relative: &str) -> Option<PathBuf> {
    let (area, name) = relative.split_once('/')?;
    let name_ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    (AREAS.contains(&area) && name_ok).then(|| root.join(area).join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_names_resolve() {
        let root = Path::new("/srv/storage");
        assert_eq!(
            resolve(root, "images/12.img"),
            Some(PathBuf::from("/srv/storage/images/12.img"))
        );
        for hostile in [
            "images/../../etc/passwd",
            "../images/1.img",
            "/etc/passwd",
            "images//etc/passwd",
            "images/",
            "images/.hidden",
            "images/..",
            "images/a\0b",
            "images/a/b",
            "secrets/1.img",
            "images\\..\\x",
            "",
        ] {
            assert_eq!(resolve(root, hostile), None, "{hostile:?}");
        }
    }
}
