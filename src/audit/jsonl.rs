//! `JsonlAuditSink`: the hash-chained JSONL file.
//!
//! Opening creates the file (mode 0600 on unix) and its parent directories, takes an exclusive
//! advisory lock so that two brokers never fork one chain, and reads only the last line to learn
//! where the chain stands: start-up cost does not grow with the trail. A damaged tail stops the
//! open (see [`AuditError::DamagedTail`]). Everything after that is the writer's job
//! ([`super::writer`]): with `fsync = always` a group-commit thread that `append` waits on, with
//! `fsync = never` an inline commit under a mutex.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::Mutex;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::record::{parse_record, ChainHead, EventJson};
use super::writer::{self, LogFile, Pending, Start, Writer};
use super::{AuditError, AuditEvent, AuditSink, FsyncPolicy};

/// How far back the tail reader looks for the start of the last line before calling it damaged.
/// Real records are a few KiB; this only bounds memory on a file that is not a trail at all.
const MAX_TAIL_LINE: u64 = 16 * 1024 * 1024;
const TAIL_CHUNK: u64 = 8 * 1024;

/// Appends hash-chained audit records to a JSONL file; see the [module doc](crate::audit).
pub struct JsonlAuditSink {
    mode: Mode,
    /// The first write failure, kept for `health()` (the writer itself stays poisoned).
    failure: std::sync::OnceLock<String>,
}

enum Mode {
    /// Group commit on a dedicated thread (`fsync = always`).
    Thread {
        /// `None` only while dropping, so the writer sees the channel close and exits.
        tx: Option<Sender<Pending>>,
        writer: Option<JoinHandle<()>>,
    },
    /// Commit on the caller's thread (`fsync = never`).
    Inline(Mutex<Writer<Box<dyn LogFile>>>),
}

impl JsonlAuditSink {
    /// Opens (or creates) the trail at `path` and continues its chain.
    pub fn open(path: &Path, fsync: FsyncPolicy) -> Result<Self, AuditError> {
        Self::open_with(path, fsync, |file| file)
    }

    /// [`JsonlAuditSink::open`], with the writer's file wrapped by `wrap`: tests use it to make
    /// writes or syncs fail on demand.
    pub(crate) fn open_with<F: LogFile + 'static>(
        path: &Path,
        fsync: FsyncPolicy,
        wrap: impl FnOnce(File) -> F,
    ) -> Result<Self, AuditError> {
        let io_err = |action| move |source| io_error(path, action, source);
        let (file, created) = open_file(path)?;
        lock(&file, path)?;
        if created && fsync == FsyncPolicy::Always {
            sync_parent_dir(path).map_err(io_err("syncing the parent directory"))?;
        }
        let (head, len) = read_tail(&file, path)?;
        let start = Start {
            head,
            len,
            fsync,
            path: path.to_owned(),
        };
        let file: Box<dyn LogFile> = Box::new(wrap(file));
        let mode = match fsync {
            FsyncPolicy::Always => {
                let (tx, writer) =
                    writer::spawn(file, start).map_err(io_err("starting the writer thread"))?;
                Mode::Thread {
                    tx: Some(tx),
                    writer: Some(writer),
                }
            }
            FsyncPolicy::Never => Mode::Inline(Mutex::new(Writer::new(file, start))),
        };
        Ok(Self {
            mode,
            failure: std::sync::OnceLock::new(),
        })
    }
}

#[async_trait::async_trait]
impl AuditSink for JsonlAuditSink {
    async fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.append_json(event, &EventJson::new(event)?).await
    }

    async fn append_json(&self, _: &AuditEvent, json: &EventJson) -> Result<(), AuditError> {
        let result = match &self.mode {
            Mode::Inline(writer) => writer
                .lock()
                .map_err(|_| AuditError::WriterStopped)?
                .append_now(json),
            Mode::Thread { tx, .. } => {
                let (reply, answer) = oneshot::channel();
                let tx = tx.as_ref().ok_or(AuditError::WriterStopped)?;
                let event = json.clone();
                tx.send(Pending { event, reply })
                    .map_err(|_| AuditError::WriterStopped)?;
                answer.await.map_err(|_| AuditError::WriterStopped)?
            }
        };
        if let Err(e @ (AuditError::WriteFailed(_) | AuditError::Poisoned(_))) = &result {
            let _ = self.failure.set(e.to_string());
        }
        result
    }

    fn health(&self) -> Result<(), String> {
        match self.failure.get() {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }
}

impl Drop for JsonlAuditSink {
    /// Closes the channel and waits for the writer, so the file is closed and unlocked when the
    /// sink is gone. Every append has been answered by then, so the wait is one batch at most.
    fn drop(&mut self) {
        if let Mode::Thread { tx, writer } = &mut self.mode {
            drop(tx.take());
            if let Some(writer) = writer.take() {
                let _ = writer.join();
            }
        }
    }
}

fn io_error(path: &Path, action: &'static str, source: io::Error) -> AuditError {
    AuditError::Io {
        path: path.to_owned(),
        action,
        source,
    }
}

/// Opens for reading and appending; returns whether the file was created by this call.
fn open_file(path: &Path) -> Result<(File, bool), AuditError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| io_error(path, "creating parent directories", e))?;
    }
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.clone().create_new(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options
            .open(path)
            .map(|file| (file, false))
            .map_err(|e| io_error(path, "opening", e)),
        Err(e) => Err(io_error(path, "creating", e)),
    }
}

fn lock(file: &File, path: &Path) -> Result<(), AuditError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(AuditError::Locked {
            path: path.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(io_error(path, "locking", e)),
    }
}

/// Makes a new file's directory entry durable, not just its contents.
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The chain head and length of the file, from its last line only.
fn read_tail(file: &File, path: &Path) -> Result<(ChainHead, u64), AuditError> {
    let damaged = |reason: String| AuditError::DamagedTail {
        path: path.to_owned(),
        reason,
    };
    let len = file
        .metadata()
        .map_err(|e| io_error(path, "reading metadata", e))?
        .len();
    if len == 0 {
        return Ok((ChainHead::genesis(), 0));
    }
    let line = last_line(file, len)
        .map_err(|e| io_error(path, "reading the last line", e))?
        .map_err(damaged)?;
    let record = parse_record(&line).map_err(damaged)?;
    if record.seq == 0 || record.seq == u64::MAX {
        return Err(damaged(format!("seq {} is out of range", record.seq)));
    }
    let head = ChainHead {
        seq: record.seq,
        hash: record.hash,
    };
    Ok((head, len))
}

/// The last line of a non-empty file without its newline, reading backwards in small chunks.
/// The inner error is why the tail is damaged.
fn last_line(file: &File, len: u64) -> io::Result<Result<Vec<u8>, String>> {
    let mut tail = read_at(file, len - 1, 1)?;
    if tail != b"\n" {
        return Ok(Err("partial last line (no newline)".to_owned()));
    }
    let mut start = len - 1;
    loop {
        if let Some(newline) = tail[..tail.len() - 1].iter().rposition(|b| *b == b'\n') {
            tail.drain(..=newline);
            break;
        }
        if start == 0 {
            break;
        }
        if len - start > MAX_TAIL_LINE {
            return Ok(Err(format!(
                "last line is longer than {MAX_TAIL_LINE} bytes"
            )));
        }
        let from = start.saturating_sub(TAIL_CHUNK);
        let mut chunk = read_at(file, from, start - from)?;
        chunk.append(&mut tail);
        tail = chunk;
        start = from;
    }
    tail.pop();
    Ok(Ok(tail))
}

fn read_at(mut file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}
