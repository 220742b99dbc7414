//! Bodies the gatekeeper moves between a client and the storage folder itself, so that
//! multi-gigabyte files never pass through memory or an application thread:
//!
//! - **Downloads.** The application answers with [`FILE_HEADER`] naming a stored file and
//!   a byte range instead of a body; [`FileOut`] reads it 64 KiB at a time as the socket
//!   drains.
//! - **Uploads.** For an upload's `PUT` the gatekeeper first asks the application (the
//!   `begin` stage, no body read yet); only with its consent ([`SPOOL_HEADER`]) does
//!   [`Spool`] write the body to the named file at the named offset, then it reports what
//!   was written (the `end` stage), which the application verifies, hashes and commits.
//!   An unauthenticated client never gets a byte onto the disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::head::Head;
use super::upstream::InnerResponse;
use crate::http::{FILE_HEADER, SPOOL_HEADER, UPLOAD_STAGE_HEADER};

/// Bytes read from a file per step.
const FILE_CHUNK: usize = 64 * 1024;

/// Counts the stored files being sent, against `[limits] max_file_streams` (each holds a
/// descriptor the descriptor plan set aside).
#[derive(Default)]
pub struct FileSlots(std::rc::Rc<std::cell::Cell<usize>>);

/// One file being sent; the count goes down when it is dropped.
pub struct FileSlot(std::rc::Rc<std::cell::Cell<usize>>);

impl FileSlots {
    pub fn take(&self, max: usize) -> Option<FileSlot> {
        let n = self.0.get();
        (n < max).then(|| {
            self.0.set(n + 1);
            FileSlot(std::rc::Rc::clone(&self.0))
        })
    }
}

impl Drop for FileSlot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// A stored file being sent as a response body.
pub struct FileOut {
    _slot: FileSlot,
    file: File,
    remaining: u64,
    buf: Vec<u8>,
    pos: usize,
}

/// The file an application response names, if any: (relative path, first byte, length).
pub fn file_body(r: &InnerResponse) -> Option<(String, u64, u64)> {
    let value = header(r, FILE_HEADER)?;
    let mut parts = value.split(' ');
    let path = parts.next()?.to_string();
    let start = parts.next()?.parse().ok()?;
    let len = parts.next()?.parse().ok()?;
    Some((path, start, len))
}

impl FileOut {
    pub fn open(
        slot: FileSlot,
        root: &Path,
        relative: &str,
        start: u64,
        len: u64,
    ) -> io::Result<FileOut> {
        let path = crate::storage::resolve(root, relative)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a storage name"))?;
        let mut file = File::open(path)?;
        let size = file.metadata()?.len();
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the range is past the end of the stored file",
            ));
        }
        file.seek(SeekFrom::Start(start))?;
        Ok(FileOut {
            _slot: slot,
            file,
            remaining: len,
            buf: Vec::new(),
            pos: 0,
        })
    }

    /// Whether every byte has been handed to the sink.
    pub fn done(&self) -> bool {
        self.remaining == 0 && self.pos >= self.buf.len()
    }

    /// Hands the next bytes to `sink`, which takes what it can (returns how many).
    /// `Ok(false)` when there is nothing left or the sink took nothing.
    pub fn feed(&mut self, sink: impl FnOnce(&[u8]) -> io::Result<usize>) -> io::Result<bool> {
        if self.pos >= self.buf.len() {
            if self.remaining == 0 {
                return Ok(false);
            }
            let want = FILE_CHUNK.min(usize::try_from(self.remaining).unwrap_or(FILE_CHUNK));
            self.buf.resize(want, 0);
            let n = self.file.read(&mut self.buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stored file ended early",
                ));
            }
            self.buf.truncate(n);
            self.pos = 0;
            self.remaining -= n as u64;
        }
        let n = sink(&self.buf[self.pos..])?;
        self.pos += n;
        Ok(n > 0)
    }
}

/// Where an upload request is.
pub enum Upload {
    /// Asked the application; the body waits in the socket (at most the read buffer).
    Asking(Head),
    Writing(Spool),
}

/// An upload body being written to its file.
pub struct Spool {
    file: File,
    pub path: PathBuf,
    offset: u64,
    expected: u64,
    written: u64,
    /// Why writing stopped early.
    failure: Option<&'static str>,
    /// The request head, sent again with the `end` stage.
    forward: Vec<u8>,
}

/// The application's consent to a `begin` stage: (relative path, offset).
pub fn consent(r: &InnerResponse) -> Option<(String, u64)> {
    let value = header(r, SPOOL_HEADER)?;
    let (path, offset) = value.split_once(' ')?;
    Some((path.to_string(), offset.parse().ok()?))
}

impl Spool {
    /// Opens the consented file, cut back to the offset (whatever an earlier attempt left
    /// past it was never committed).
    pub fn open(root: &Path, relative: &str, offset: u64, head: &Head) -> io::Result<Spool> {
        let path = crate::storage::resolve(root, relative)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a storage name"))?;
        let mut file = OpenOptions::new().write(true).open(&path)?;
        if !crate::storage::try_lock(&file)? {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "another writer holds the upload",
            ));
        }
        file.set_len(offset)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Spool {
            file,
            path,
            offset,
            expected: head.body_len as u64,
            written: 0,
            failure: None,
            forward: head.forward.clone(),
        })
    }

    /// Body bytes this spool still wants.
    pub fn wants(&self) -> usize {
        if self.failure.is_some() {
            return 0;
        }
        usize::try_from(self.expected - self.written).unwrap_or(usize::MAX)
    }

    /// Writes body bytes (at most [`Spool::wants`]).
    pub fn write(&mut self, bytes: &[u8]) {
        match self.file.write_all(bytes) {
            Ok(()) => self.written += bytes.len() as u64,
            Err(e) => {
                log::warn!("writing an upload to {} failed: {e}", self.path.display());
                self.failure = Some(if e.raw_os_error() == Some(libc::ENOSPC) {
                    "disk-full"
                } else {
                    "io-error"
                });
            }
        }
    }

    /// Whether the body is all written, or writing failed.
    pub fn finished(&self) -> bool {
        self.failure.is_some() || self.written == self.expected
    }

    /// Whether body bytes the client sends are left unread (the connection must close).
    pub fn cut_short(&self) -> bool {
        self.written < self.expected
    }

    /// The `end` stage request, with the outcome (`outcome` replaces a complete write's).
    pub fn end_request(self, outcome: Option<&'static str>) -> (Vec<u8>, PathBuf) {
        let outcome = self.failure.or(outcome).unwrap_or(if self.cut_short() {
            "aborted"
        } else {
            "complete"
        });
        let stage = format!("end {} {} {outcome}", self.offset, self.written);
        // Closing the file here (dropping it) makes every write visible to the
        // application, which reads the new bytes back to hash them.
        (with_stage(&self.forward, &stage), self.path)
    }
}

/// The request head with the upload stage header added.
pub fn with_stage(forward: &[u8], stage: &str) -> Vec<u8> {
    let cut = forward.len().saturating_sub(2);
    let mut out = Vec::with_capacity(forward.len() + 64);
    out.extend_from_slice(&forward[..cut]);
    out.extend_from_slice(format!("{UPLOAD_STAGE_HEADER}: {stage}\r\n\r\n").as_bytes());
    out
}

fn header<'r>(r: &'r InnerResponse, name: &str) -> Option<&'r str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
