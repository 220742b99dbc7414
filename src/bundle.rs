//! Backup bundles (`seatgate backup --include-keys`): one file with the database and the
//! keys a replacement machine needs to keep what devices and IdPs already trust: the local
//! CA and server certificate (`tls/`), and the SAML signing key (`saml/`). The lease
//! signing keys are rows of the database, so they come with it. Certificate files of
//! `[tls] mode = "files"` are the admin's and are not taken.
//!
//! Format 1 (integers big-endian):
//! - magic `SEATGATE-BUNDLE\n` (16 bytes), format version (u8), cipher (u8: 0 none,
//!   1 Argon2id + ChaCha20-Poly1305);
//! - cipher 1: Argon2id memory in KiB, passes, lanes (u32 each), salt (16 bytes), nonce
//!   prefix (4 bytes) and a check tag (16 bytes: the empty message sealed under
//!   prefix ‖ u64::MAX with the header before it as AAD), which tells a wrong passphrase
//!   apart from a damaged file before anything else is read;
//! - chunks: last flag (u8), length (u32), bytes. Cipher 1 seals each piece of at most
//!   64 KiB under prefix ‖ index (u64) with AAD header ‖ index ‖ flag, so a changed,
//!   reordered, dropped or cut chunk fails. Cipher 0 stores the pieces as they are and ends
//!   with the SHA-256 of everything before it (finds damage, not forgery);
//! - the content in the chunks: entries of name length (u16), name, size (u64), bytes; a
//!   name length of 0 ends it. Only the names in [`FILES`] are accepted, the database first.
//!
//! Restore reads the whole bundle once without writing (a wrong passphrase or a damaged
//! byte changes nothing), then again into a staging directory inside the data directory,
//! and only then moves the files into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::crypto::{AEAD_NONCE_LEN, AEAD_TAG_LEN, PassphraseKey, Sha256Stream, random_bytes};
use crate::datadir::DataDir;
use crate::db::{DbError, backup};
use crate::domain::problem::Reason;

pub const MAGIC: &[u8; 16] = b"SEATGATE-BUNDLE\n";
const VERSION: u8 = 1;
const CIPHER_NONE: u8 = 0;
const CIPHER_ARGON2ID_CHACHA20POLY1305: u8 = 1;
const CHUNK: usize = 64 * 1024;
/// Argon2id cost of new bundles: 64 MiB, 3 passes, 1 lane (RFC 9106's second choice).
const COST: Cost = Cost {
    m_kib: 64 * 1024,
    t: 3,
    p: 1,
};

#[derive(Debug, Clone, Copy)]
struct Cost {
    m_kib: u32,
    t: u32,
    p: u32,
}
/// What a bundle may ask of the reader: a hostile header must not take a gigabyte each.
const ARGON2_MAX_M_KIB: u32 = 1024 * 1024;
const ARGON2_MAX_T: u32 = 16;
const ARGON2_MAX_P: u32 = 16;
const SALT_LEN: usize = 16;
const PREFIX_LEN: usize = 4;
const DIGEST_LEN: usize = 32;
/// A shorter passphrase is refused when writing a bundle (as for break-glass passwords).
pub const MIN_PASSPHRASE: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Database,
    /// A private key: 0600.
    Secret,
    /// A certificate: 0644, as `tls.rs` writes them.
    Public,
}

/// Every file a bundle may hold, relative to the data directory, the database first.
pub const FILES: &[(&str, Kind)] = &[
    (DATABASE, Kind::Database),
    ("tls/ca.pem", Kind::Public),
    ("tls/ca-key.pem", Kind::Secret),
    ("tls/server.pem", Kind::Public),
    ("tls/server-key.pem", Kind::Secret),
    ("saml/sp-signing-cert.pem", Kind::Public),
    ("saml/sp-signing-key.pem", Kind::Secret),
];
const DATABASE: &str = "seatgate.db";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "the passphrase does not open the backup bundle {0}; nothing was written (reason code {code})",
        code = Reason::BackupWrongPassphrase.code()
    )]
    WrongPassphrase(PathBuf),
    #[error(
        "the backup bundle {0} is encrypted: give its passphrase with --passphrase-file FILE or SEATGATE_BACKUP_PASSPHRASE (reason code {code})",
        code = Reason::BackupPassphraseRequired.code()
    )]
    PassphraseNeeded(PathBuf),
    #[error(
        "the backup bundle {path} is damaged or was altered ({detail}); nothing was written (reason code {code})",
        code = Reason::BackupDamaged.code()
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "the backup bundle {0} is not encrypted although a passphrase was given, so anyone who could replace the file could have written it; restore it without a passphrase only if you made it with --no-encryption (reason code {code})",
        code = Reason::BackupNotEncrypted.code()
    )]
    NotEncrypted(PathBuf),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error(transparent)]
    Db(#[from] DbError),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BundleError {
    let context = context.into();
    move |source| BundleError::Io { context, source }
}

/// Whether `path` starts like a bundle (else it may be a plain database backup).
pub fn is_bundle(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; MAGIC.len()];
    let mut f = File::open(path)?;
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(&head == MAGIC)
}

/// What [`write`] put in a bundle.
#[derive(Debug)]
pub struct Written {
    pub bytes: u64,
    pub files: Vec<&'static str>,
    pub encrypted: bool,
}

/// Writes a bundle of `db_copy` (a verified copy of the database) and the key files of
/// `data` to `out`: a 0600 file, complete or not there at all.
pub fn write(
    data: &DataDir,
    db_copy: &Path,
    out: &Path,
    passphrase: Option<&[u8]>,
) -> Result<Written, BundleError> {
    let tmp = out.with_file_name(format!(
        ".{}.partial-{}",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("bundle"),
        crate::crypto::random_hex(4)
    ));
    let result = write_to(data, db_copy, &tmp, passphrase, COST).and_then(|written| {
        fs::rename(&tmp, out).map_err(io_err(format!(
            "cannot move the bundle to {}",
            out.display()
        )))?;
        Ok(written)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_to(
    data: &DataDir,
    db_copy: &Path,
    tmp: &Path,
    passphrase: Option<&[u8]>,
    cost: Cost,
) -> Result<Written, BundleError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(io_err(format!("cannot create {}", tmp.display())))?;
    let mut header = MAGIC.to_vec();
    header.push(VERSION);
    let sealing = match passphrase {
        None => {
            header.push(CIPHER_NONE);
            None
        }
        Some(passphrase) => {
            header.push(CIPHER_ARGON2ID_CHACHA20POLY1305);
            for v in [cost.m_kib, cost.t, cost.p] {
                header.extend_from_slice(&v.to_be_bytes());
            }
            let salt = random_bytes(SALT_LEN);
            let prefix: [u8; PREFIX_LEN] = random_bytes(PREFIX_LEN)
                .try_into()
                .map_err(|_| damaged_self("the random prefix has the wrong length"))?;
            header.extend_from_slice(&salt);
            header.extend_from_slice(&prefix);
            let key = PassphraseKey::derive(passphrase, &salt, cost.m_kib, cost.t, cost.p)
                .map_err(|e| damaged_self(&e))?;
            let mut check = Vec::new();
            key.seal(nonce(&prefix, u64::MAX), &header, &mut check)
                .map_err(|e| damaged_self(&e))?;
            header.extend_from_slice(&check);
            Some((key, prefix))
        }
    };
    let encrypted = sealing.is_some();
    let mut w = ChunkWriter::new(BufWriter::new(file), header, sealing)
        .map_err(io_err(format!("cannot write {}", tmp.display())))?;
    let mut files = Vec::new();
    for (name, kind) in FILES {
        let source = match kind {
            Kind::Database => db_copy.to_path_buf(),
            _ => data.root().join(name),
        };
        let mut f = match File::open(&source) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && *kind != Kind::Database => continue,
            Err(e) => return Err(io_err(format!("cannot read {}", source.display()))(e)),
        };
        let size = f
            .metadata()
            .map_err(io_err(format!("cannot read {}", source.display())))?
            .len();
        let wrote = |e| io_err(format!("cannot write {}", tmp.display()))(e);
        w.write(&(name.len() as u16).to_be_bytes()).map_err(wrote)?;
        w.write(name.as_bytes()).map_err(wrote)?;
        w.write(&size.to_be_bytes()).map_err(wrote)?;
        let mut left = size;
        let mut buf = vec![0u8; CHUNK];
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = f
                .read(&mut buf[..want])
                .map_err(io_err(format!("cannot read {}", source.display())))?;
            if n == 0 {
                return Err(BundleError::Io {
                    context: format!("{} shrank while it was read", source.display()),
                    source: io::ErrorKind::UnexpectedEof.into(),
                });
            }
            w.write(&buf[..n]).map_err(wrote)?;
            left -= n as u64;
        }
        files.push(*name);
    }
    w.write(&0u16.to_be_bytes())
        .map_err(io_err(format!("cannot write {}", tmp.display())))?;
    let out = w
        .finish()
        .map_err(io_err(format!("cannot write {}", tmp.display())))?;
    let file = out
        .into_inner()
        .map_err(|e| io_err(format!("cannot write {}", tmp.display()))(e.into_error()))?;
    file.sync_all()
        .map_err(io_err(format!("cannot sync {}", tmp.display())))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(Written {
        bytes,
        files,
        encrypted,
    })
}

/// An internal failure while writing (never a property of a file someone gave us).
fn damaged_self(detail: &str) -> BundleError {
    BundleError::Io {
        context: format!("cannot seal the bundle: {detail}"),
        source: io::ErrorKind::Other.into(),
    }
}

fn nonce(prefix: &[u8; PREFIX_LEN], index: u64) -> [u8; AEAD_NONCE_LEN] {
    let mut n = [0u8; AEAD_NONCE_LEN];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..].copy_from_slice(&index.to_be_bytes());
    n
}

fn chunk_aad(header: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

struct ChunkWriter<W: Write> {
    out: W,
    header: Vec<u8>,
    sealing: Option<(PassphraseKey, [u8; PREFIX_LEN])>,
    digest: Sha256Stream,
    buf: Vec<u8>,
    index: u64,
}

impl<W: Write> ChunkWriter<W> {
    fn new(
        out: W,
        header: Vec<u8>,
        sealing: Option<(PassphraseKey, [u8; PREFIX_LEN])>,
    ) -> io::Result<ChunkWriter<W>> {
        let mut w = ChunkWriter {
            out,
            header: header.clone(),
            sealing,
            digest: Sha256Stream::default(),
            buf: Vec::with_capacity(CHUNK + AEAD_TAG_LEN),
            index: 0,
        };
        w.put(&header)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.digest.update(bytes);
        self.out.write_all(bytes)
    }

    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK {
                self.emit(false)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, last: bool) -> io::Result<()> {
        let mut piece = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + AEAD_TAG_LEN));
        if let Some((key, prefix)) = &self.sealing {
            key.seal(
                nonce(prefix, self.index),
                &chunk_aad(&self.header, self.index, last),
                &mut piece,
            )
            .map_err(io::Error::other)?;
        }
        let mut frame = vec![u8::from(last)];
        frame.extend_from_slice(&(piece.len() as u32).to_be_bytes());
        self.put(&frame)?;
        self.put(&piece)?;
        self.index += 1;
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        if self.sealing.is_none() {
            let digest = std::mem::take(&mut self.digest).finish();
            self.out.write_all(&digest)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads the chunks of a bundle, authenticating each, and hands out the content.
struct ChunkReader {
    path: PathBuf,
    inp: BufReader<File>,
    header: Vec<u8>,
    sealing: Option<(PassphraseKey, [u8; PREFIX_LEN])>,
    digest: Sha256Stream,
    index: u64,
    done: bool,
    piece: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    /// Opens `path` and checks its header (and, when encrypted, the passphrase).
    fn open(path: &Path, passphrase: Option<&[u8]>) -> Result<ChunkReader, BundleError> {
        let file = File::open(path).map_err(io_err(format!("cannot read {}", path.display())))?;
        let mut r = ChunkReader {
            path: path.to_path_buf(),
            inp: BufReader::new(file),
            header: Vec::new(),
            sealing: None,
            digest: Sha256Stream::default(),
            index: 0,
            done: false,
            piece: Vec::new(),
            at: 0,
        };
        let start = r.take_header(MAGIC.len() + 2)?;
        if &start[..MAGIC.len()] != MAGIC {
            return Err(r.damaged("it is not a seatgate backup bundle"));
        }
        if start[MAGIC.len()] != VERSION {
            return Err(r.damaged(&format!(
                "format {} is not one this seatgate reads (1); use a newer seatgate",
                start[MAGIC.len()]
            )));
        }
        match start[MAGIC.len() + 1] {
            // Given a passphrase, the admin expects a bundle only its holder could make.
            CIPHER_NONE if passphrase.is_some() => {
                return Err(BundleError::NotEncrypted(path.to_path_buf()));
            }
            CIPHER_NONE => {}
            CIPHER_ARGON2ID_CHACHA20POLY1305 => {
                let params = r.take_header(12 + SALT_LEN + PREFIX_LEN)?;
                let word = |i: usize| {
                    u32::from_be_bytes([params[i], params[i + 1], params[i + 2], params[i + 3]])
                };
                let (m, t, p) = (word(0), word(4), word(8));
                if m > ARGON2_MAX_M_KIB || t > ARGON2_MAX_T || p > ARGON2_MAX_P {
                    return Err(r.damaged("its key derivation asks for more than seatgate allows"));
                }
                let salt = &params[12..12 + SALT_LEN];
                let mut prefix = [0u8; PREFIX_LEN];
                prefix.copy_from_slice(&params[12 + SALT_LEN..]);
                let Some(passphrase) = passphrase else {
                    return Err(BundleError::PassphraseNeeded(path.to_path_buf()));
                };
                let key = PassphraseKey::derive(passphrase, salt, m, t, p)
                    .map_err(|e| r.damaged(&format!("its key derivation is invalid: {e}")))?;
                let before_check = r.header.clone();
                let mut check = r.take_header(AEAD_TAG_LEN)?;
                if key
                    .open(nonce(&prefix, u64::MAX), &before_check, &mut check)
                    .is_none()
                {
                    return Err(BundleError::WrongPassphrase(path.to_path_buf()));
                }
                r.sealing = Some((key, prefix));
            }
            other => return Err(r.damaged(&format!("unknown cipher {other}"))),
        }
        let header = r.header.clone();
        r.digest.update(&header);
        Ok(r)
    }

    fn damaged(&self, detail: &str) -> BundleError {
        BundleError::Damaged {
            path: self.path.clone(),
            detail: detail.to_string(),
        }
    }

    fn read_raw(&mut self, buf: &mut [u8]) -> Result<(), BundleError> {
        self.inp.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => self.damaged("it ends early; it was cut short"),
            _ => io_err(format!("cannot read {}", self.path.display()))(e),
        })
    }

    fn take_header(&mut self, n: usize) -> Result<Vec<u8>, BundleError> {
        let mut buf = vec![0u8; n];
        self.read_raw(&mut buf)?;
        self.header.extend_from_slice(&buf);
        Ok(buf)
    }

    /// The next chunk's content into `self.piece`; false after the last one.
    fn next_chunk(&mut self) -> Result<bool, BundleError> {
        if self.done {
            return Ok(false);
        }
        let mut frame = [0u8; 5];
        self.read_raw(&mut frame)?;
        let last = match frame[0] {
            0 => false,
            1 => true,
            _ => return Err(self.damaged(&format!("chunk {} has a bad frame", self.index))),
        };
        let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        let tag = if self.sealing.is_some() {
            AEAD_TAG_LEN
        } else {
            0
        };
        if len < tag || len > CHUNK + tag {
            return Err(self.damaged(&format!("chunk {} has a bad length", self.index)));
        }
        let mut piece = vec![0u8; len];
        self.read_raw(&mut piece)?;
        self.digest.update(&frame);
        self.digest.update(&piece);
        if let Some((key, prefix)) = &self.sealing {
            let aad = chunk_aad(&self.header, self.index, last);
            if key
                .open(nonce(prefix, self.index), &aad, &mut piece)
                .is_none()
            {
                return Err(self.damaged(&format!("chunk {} fails authentication", self.index)));
            }
            piece.truncate(len - AEAD_TAG_LEN);
        }
        self.index += 1;
        if last {
            self.done = true;
            if self.sealing.is_none() {
                let mut sum = [0u8; DIGEST_LEN];
                self.read_raw(&mut sum)?;
                let expected = std::mem::take(&mut self.digest).finish();
                if !crate::crypto::constant_time_eq(&sum, &expected) {
                    return Err(self.damaged("its checksum does not match"));
                }
            }
            let mut extra = [0u8; 1];
            if self
                .inp
                .read(&mut extra)
                .map_err(io_err(format!("cannot read {}", self.path.display())))?
                != 0
            {
                return Err(self.damaged("it has bytes after its end"));
            }
        }
        self.piece = piece;
        self.at = 0;
        Ok(true)
    }

    /// Exactly `buf.len()` bytes of content.
    fn content(&mut self, buf: &mut [u8]) -> Result<(), BundleError> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.at == self.piece.len() {
                if !self.next_chunk()? {
                    return Err(self.damaged("its content ends early"));
                }
                continue;
            }
            let n = (self.piece.len() - self.at).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&self.piece[self.at..self.at + n]);
            self.at += n;
            filled += n;
        }
        Ok(())
    }

    /// The end: nothing after the end marker, and the last chunk reached.
    fn expect_end(&mut self) -> Result<(), BundleError> {
        loop {
            if self.at < self.piece.len() {
                return Err(self.damaged("it has content after its end marker"));
            }
            if !self.next_chunk()? {
                return Ok(());
            }
        }
    }
}

/// Receives each file's name, kind and bytes, in pieces (an empty piece first).
type Sink<'a> = dyn FnMut(&'static str, Kind, &[u8]) -> Result<(), BundleError> + 'a;

/// Reads every entry of the bundle at `path`, handing each file's name, kind and bytes (in
/// pieces) to `sink`. Fails on anything but a complete, authentic bundle.
fn read_entries(
    path: &Path,
    passphrase: Option<&[u8]>,
    sink: &mut Sink<'_>,
) -> Result<Vec<&'static str>, BundleError> {
    let mut r = ChunkReader::open(path, passphrase)?;
    let mut seen: Vec<&'static str> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut len = [0u8; 2];
        r.content(&mut len)?;
        let len = u16::from_be_bytes(len) as usize;
        if len == 0 {
            break;
        }
        let mut name = vec![0u8; len];
        r.content(&mut name)?;
        let Some(&(name, kind)) = FILES.iter().find(|(n, _)| n.as_bytes() == name.as_slice())
        else {
            return Err(r.damaged("it names a file seatgate does not restore"));
        };
        if seen.contains(&name) || (seen.is_empty() != (kind == Kind::Database)) {
            return Err(r.damaged("its files are not in the expected order"));
        }
        let mut size = [0u8; 8];
        r.content(&mut size)?;
        let mut left = u64::from_be_bytes(size);
        sink(name, kind, &[])?;
        while left > 0 {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            r.content(&mut buf[..n])?;
            sink(name, kind, &buf[..n])?;
            left -= n as u64;
        }
        seen.push(name);
    }
    if seen.is_empty() {
        return Err(r.damaged("it holds no database"));
    }
    r.expect_end()?;
    Ok(seen)
}

/// Checks the whole bundle (passphrase, every chunk, the layout) without writing anything.
/// Returns the files it holds.
pub fn verify(path: &Path, passphrase: Option<&[u8]>) -> Result<Vec<&'static str>, BundleError> {
    read_entries(path, passphrase, &mut |_, _, _| Ok(()))
}

/// What [`restore`] did.
#[derive(Debug)]
pub struct Restored {
    pub files: Vec<&'static str>,
    pub version: i64,
    /// Where the database it replaced went.
    pub kept_database: Option<PathBuf>,
    /// Where the key files it replaced went.
    pub kept_keys: Option<PathBuf>,
}

/// Restores a bundle [`verify`] accepted into `data`, whose lock the caller holds. The
/// database and key files it replaces are kept under `backup_dir` as `pre-restore-…`.
pub fn restore(
    path: &Path,
    passphrase: Option<&[u8]>,
    data: &DataDir,
    backup_dir: &Path,
) -> Result<Restored, BundleError> {
    // Staging folders a killed restore left behind hold decrypted keys: gone first.
    if let Ok(entries) = fs::read_dir(data.root()) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".restore-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let staging = data
        .root()
        .join(format!(".restore-{}", crate::crypto::random_hex(4)));
    crate::datadir::ensure_private_dir(&staging)
        .map_err(io_err(format!("cannot create {}", staging.display())))?;
    let marker = data.restore_marker_path();
    let result = stage(path, passphrase, &staging).and_then(|files| {
        // Until every file is in place, the database and the keys may not belong together:
        // `serve` refuses to start while this marker exists.
        crate::datadir::write_private_file(&marker, path.display().to_string().as_bytes())
            .map_err(io_err(format!("cannot write {}", marker.display())))?;
        install(&staging, &files, data, backup_dir).map(|(version, db, keys)| Restored {
            files,
            version,
            kept_database: db,
            kept_keys: keys,
        })
    });
    let _ = fs::remove_dir_all(&staging);
    if result.is_ok() {
        fs::remove_file(&marker).map_err(io_err(format!("cannot remove {}", marker.display())))?;
    }
    result
}

/// Extracts the bundle into `staging` (0600 files), authenticating it again as it goes.
fn stage(
    path: &Path,
    passphrase: Option<&[u8]>,
    staging: &Path,
) -> Result<Vec<&'static str>, BundleError> {
    let mut open: Option<(&'static str, File)> = None;
    let files = read_entries(path, passphrase, &mut |name, _, bytes| {
        if open.as_ref().is_none_or(|(n, _)| *n != name) {
            if let Some((n, f)) = open.take() {
                f.sync_all()
                    .map_err(io_err(format!("cannot sync the staged {n}")))?;
            }
            let target = staging.join(name);
            if let Some(parent) = target.parent() {
                crate::datadir::ensure_private_dir(parent)
                    .map_err(io_err(format!("cannot create {}", parent.display())))?;
            }
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&target)
                .map_err(io_err(format!("cannot create {}", target.display())))?;
            open = Some((name, f));
        }
        if let Some((n, f)) = open.as_mut() {
            f.write_all(bytes)
                .map_err(io_err(format!("cannot write the staged {n}")))?;
        }
        Ok(())
    })?;
    if let Some((n, f)) = open.take() {
        f.sync_all()
            .map_err(io_err(format!("cannot sync the staged {n}")))?;
    }
    Ok(files)
}

/// Moves the staged files into place: the database through [`backup::restore`] (which
/// verifies it and keeps the old one), then each key file, keeping any it replaces.
fn install(
    staging: &Path,
    files: &[&'static str],
    data: &DataDir,
    backup_dir: &Path,
) -> Result<(i64, Option<PathBuf>, Option<PathBuf>), BundleError> {
    let staged_db = staging.join(DATABASE);
    let verified = backup::verify(&staged_db)?;
    let kept_db = backup::restore(&staged_db, &data.db_path(), backup_dir)?;
    let kept_keys_dir = backup_dir.join(format!(
        "pre-restore-{}-keys",
        crate::clock::file_stamp(crate::clock::now_unix())
    ));
    let mut kept_keys = None;
    for name in files.iter().filter(|n| **n != DATABASE) {
        let kind = FILES
            .iter()
            .find(|(n, _)| n == name)
            .map_or(Kind::Secret, |(_, k)| *k);
        let target = data.root().join(name);
        if let Some(parent) = target.parent() {
            crate::datadir::ensure_private_dir(parent)
                .map_err(io_err(format!("cannot create {}", parent.display())))?;
        }
        let staged = staging.join(name);
        // Copied aside, then replaced by one rename: a key file is never missing, so a
        // crash here cannot make the next start generate a new CA.
        if target.exists() {
            let keep = kept_keys_dir.join(name);
            if let Some(parent) = keep.parent() {
                crate::datadir::ensure_private_dir(parent)
                    .map_err(io_err(format!("cannot create {}", parent.display())))?;
            }
            fs::copy(&target, &keep).map_err(io_err(format!(
                "cannot keep a copy of {}",
                target.display()
            )))?;
            kept_keys = Some(kept_keys_dir.clone());
        }
        let mode = if kind == Kind::Public { 0o644 } else { 0o600 };
        fs::set_permissions(&staged, fs::Permissions::from_mode(mode)).map_err(io_err(format!(
            "cannot set permissions on {}",
            staged.display()
        )))?;
        fs::rename(&staged, &target).map_err(io_err(format!(
            "cannot move {} into place",
            target.display()
        )))?;
    }
    Ok((verified.version, kept_db, kept_keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir(root: &Path) -> DataDir {
        let data = DataDir::create(root).expect("data dir");
        fs::create_dir_all(root.join("tls")).expect("tls");
        fs::write(root.join("tls/ca.pem"), b"CA CERT").expect("ca");
        fs::write(root.join("tls/ca-key.pem"), vec![7u8; 3 * CHUNK + 5]).expect("key");
        data
    }

    /// A bundle's bytes round-trip through the chunk layer whole, and every single-byte
    /// change or cut is refused: encrypted as damaged (or a wrong passphrase when the
    /// change is in the header), plain by the checksum.
    #[test]
    fn every_changed_byte_or_cut_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = data_dir(&tmp.path().join("data"));
        let db = tmp.path().join("db");
        fs::write(&db, vec![1u8; CHUNK - 3]).expect("db");
        for passphrase in [None, Some(&b"correct horse battery"[..])] {
            let out = tmp.path().join(format!("b-{}", passphrase.is_some()));
            // A cheap key derivation: a changed cost field makes each check derive again.
            let cheap = Cost {
                m_kib: 64,
                t: 1,
                p: 1,
            };
            let written = write_to(&data, &db, &out, passphrase, cheap).expect("write");
            assert_eq!(
                written.files,
                ["seatgate.db", "tls/ca.pem", "tls/ca-key.pem"]
            );
            let mut got = Vec::new();
            read_entries(&out, passphrase, &mut |name, _, bytes| {
                if name == "tls/ca-key.pem" {
                    got.extend_from_slice(bytes);
                }
                Ok(())
            })
            .expect("read");
            assert_eq!(got, vec![7u8; 3 * CHUNK + 5]);
            let original = fs::read(&out).expect("bytes");
            let bad = tmp.path().join("bad");
            // A sample of positions across header, frames, payload and trailer.
            let step = (original.len() / 97).max(1);
            for at in (0..original.len())
                .step_by(step)
                .chain([original.len() - 1])
            {
                let mut changed = original.clone();
                changed[at] ^= 0x01;
                fs::write(&bad, &changed).expect("write");
                assert!(verify(&bad, passphrase).is_err(), "byte {at} changed");
                fs::write(&bad, &original[..at]).expect("write");
                assert!(verify(&bad, passphrase).is_err(), "cut at {at}");
            }
        }
    }

    #[test]
    fn a_wrong_passphrase_is_told_apart_from_damage() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = data_dir(&tmp.path().join("data"));
        let db = tmp.path().join("db");
        fs::write(&db, b"db").expect("db");
        let out = tmp.path().join("b");
        write(&data, &db, &out, Some(b"correct horse battery")).expect("write");
        assert!(matches!(
            verify(&out, Some(b"wrong horse battery")),
            Err(BundleError::WrongPassphrase(_))
        ));
        assert!(matches!(
            verify(&out, None),
            Err(BundleError::PassphraseNeeded(_))
        ));
        let e = verify(&out, Some(b"wrong horse battery")).expect_err("wrong");
        assert!(e.to_string().contains("BACKUP_WRONG_PASSPHRASE"), "{e}");
    }
}
