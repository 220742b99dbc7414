//! The data directory: its layout, its permissions (0700 dirs, 0600 secrets) and the lock
//! that keeps two servers (or a server and `restore`) from sharing it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// Held for as long as the process owns the data directory; released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another seatgate process is using the data directory {0} (stop it first)")]
    Held(PathBuf),
    #[error("cannot lock the data directory {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl DataDir {
    /// Opens the data directory, creating it (0700) if needed and tightening permissions
    /// that are too open.
    pub fn create(root: &Path) -> io::Result<DataDir> {
        ensure_private_dir(root)?;
        Ok(DataDir {
            root: root.to_path_buf(),
        })
    }

    /// A data directory that must already exist (for offline commands that must not
    /// create one by accident).
    pub fn existing(root: &Path) -> io::Result<DataDir> {
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the data directory {} does not exist", root.display()),
            ));
        }
        Ok(DataDir {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db_path(&self) -> PathBuf {
        self.root.join("seatgate.db")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// The SAML request-signing key and certificate.
    pub fn saml_dir(&self) -> PathBuf {
        self.root.join("saml")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// Exists while a bundle restore puts the database and keys in place (see
    /// `bundle::restore`); names the bundle.
    pub fn restore_marker_path(&self) -> PathBuf {
        self.root.join("restore-incomplete")
    }

    /// The sentence `serve` refuses to start with after an interrupted bundle restore.
    pub fn interrupted_restore(&self) -> Option<String> {
        let bundle = fs::read_to_string(self.restore_marker_path()).ok()?;
        Some(format!(
            "a restore of {} into {} was interrupted, so the database and the keys may not belong together; run `seatgate restore` with that bundle again before starting",
            bundle.trim(),
            self.root.display()
        ))
    }

    pub fn setup_link_path(&self) -> PathBuf {
        self.root.join("setup-link.txt")
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("seatgate.lock")
    }

    /// Takes the exclusive lock without waiting.
    /// Gives `relative` paths (files and folders under the root) the root's owner, when run
    /// as root for a data directory a service account owns: a restore run with `sudo`
    /// left root-owned 0600 files the service could not read, and it restarted forever.
    /// Symlinks are not followed. Returns the paths that could not be changed.
    pub fn match_owner(&self, relative: &[&str]) -> Vec<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Vec::new();
        }
        let Ok(root) = fs::symlink_metadata(&self.root) else {
            return Vec::new();
        };
        if root.uid() == 0 {
            return Vec::new();
        }
        relative
            .iter()
            .map(|r| self.root.join(r))
            .filter(|p| p.exists())
            .filter(|p| std::os::unix::fs::lchown(p, Some(root.uid()), Some(root.gid())).is_err())
            .collect()
    }

    pub fn lock(&self) -> Result<DirLock, LockError> {
        let path = self.lock_path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| LockError::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(LockError::Held(self.root.clone())),
            Err(fs::TryLockError::Error(source)) => Err(LockError::Io { path, source }),
        }
    }
}

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist; an existing
/// directory is left as it is (it may be the operator's, e.g. the target of `backup --out`).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `dir` if missing and makes it 0700 (for directories seatgate owns).
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    create_private_dir(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        if mode & 0o077 != 0 {
            log::warn!(
                "{} was accessible to other users (mode {mode:o}); setting it to 0700",
                dir.display()
            );
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes a secret file atomically with mode 0600 (via a temporary file and rename).
pub fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    fs::rename(&tmp, path)
}

/// Bytes available to this (unprivileged) process on the file system holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated and outlives the call; statvfs fills `stats`
    // completely when it returns 0, and only then is it read.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: initialized by the successful call above.
    let stats = unsafe { stats.assume_init() };
    // The field widths differ between Linux and macOS; both fit in u64.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(stats.f_bavail).saturating_mul(u64::from(stats.f_frsize)))
}
