//! The writer: owns the file and the chain head, and commits records in batches.
//!
//! It is driven one of two ways, chosen by the fsync policy (see `jsonl`):
//! - [`FsyncPolicy::Always`] — group commit on a dedicated std thread. Appenders send an
//!   already-serialized event and a oneshot through a channel. The thread takes the first event,
//!   drains whatever else is queued (up to [`MAX_BATCH`]), chains the batch in order, writes it
//!   with one `write_all`, syncs once and then answers every waiter. Concurrent exchanges
//!   therefore share one fsync, and the chain is computed by exactly one thread.
//! - [`FsyncPolicy::Never`] — inline: the appender locks the writer and commits its own record
//!   (one `write` to the page cache). With no fsync to share, a thread hand-off would cost two
//!   context switches per exchange for nothing (measured: about a quarter of a core at load).
//!
//! Failure: if the write or the sync fails, every waiter in the batch gets
//! [`AuditError::WriteFailed`], the file is cut back to the length it had after the last
//! acknowledged batch (best effort, so the file holds exactly the acknowledged records and no
//! partial line), and the writer is poisoned: every later append fails with
//! [`AuditError::Poisoned`] until the process restarts and re-reads the tail. It does not retry,
//! because after a failed fsync the kernel may already have dropped the dirty pages and a second
//! fsync can succeed without them (the "fsyncgate" problem); only a fresh open knows what is on
//! disk. Failing closed costs availability (no credentials until restart), never the trail.
//!
//! The queue is unbounded, but each append waits for its answer, so it holds at most one entry
//! per in-flight exchange.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::record::{append_record, ChainHead, EventJson};
use super::{AuditError, FsyncPolicy};

/// Upper bound on one batch, so one huge burst cannot grow the buffer without limit.
const MAX_BATCH: usize = 4096;

/// What the writer needs from the file; [`std::fs::File`] in production, a failing file in tests.
pub(crate) trait LogFile: Send + 'static {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn sync_batch(&mut self) -> io::Result<()>;
    /// Cuts the file back to `len` bytes, dropping a batch that failed half-way.
    fn cut_to(&mut self, len: u64) -> io::Result<()>;
}

impl LogFile for Box<dyn LogFile> {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<()> {
        (**self).write_batch(bytes)
    }

    fn sync_batch(&mut self) -> io::Result<()> {
        (**self).sync_batch()
    }

    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        (**self).cut_to(len)
    }
}

impl LogFile for std::fs::File {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn sync_batch(&mut self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }

    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// One append waiting for its batch.
pub(crate) struct Pending {
    pub(crate) event: EventJson,
    pub(crate) reply: oneshot::Sender<Result<(), AuditError>>,
}

/// Where the file stands when the writer takes it over.
pub(crate) struct Start {
    pub(crate) head: ChainHead,
    /// Bytes in the file, all of them complete records.
    pub(crate) len: u64,
    pub(crate) fsync: FsyncPolicy,
    /// For log messages only.
    pub(crate) path: PathBuf,
}

pub(crate) struct Writer<F> {
    file: F,
    head: ChainHead,
    /// Bytes of acknowledged records: where a failed batch is cut back to.
    len: u64,
    fsync: FsyncPolicy,
    path: PathBuf,
    /// Set by the first failed batch; never cleared.
    poisoned: Option<Arc<io::Error>>,
    /// Reused across batches so steady state allocates nothing here.
    buf: Vec<u8>,
}

/// Starts the writer thread. Dropping every [`Sender`] stops it once the queue is empty.
pub(crate) fn spawn<F: LogFile>(
    file: F,
    start: Start,
) -> io::Result<(Sender<Pending>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let writer = Writer::new(file, start);
    let handle = std::thread::Builder::new()
        .name("ferry-audit-writer".to_owned())
        .spawn(move || writer.run(rx))?;
    Ok((tx, handle))
}

/// Why a batch was not acknowledged; turned into one [`AuditError`] per waiter.
#[derive(Clone)]
enum BatchFailure {
    Failed(Arc<io::Error>),
    Poisoned(Arc<io::Error>),
}

impl BatchFailure {
    fn into_error(self) -> AuditError {
        match self {
            Self::Failed(e) => AuditError::WriteFailed(e),
            Self::Poisoned(e) => AuditError::Poisoned(e),
        }
    }
}

impl<F: LogFile> Writer<F> {
    pub(crate) fn new(file: F, start: Start) -> Self {
        Writer {
            file,
            head: start.head,
            len: start.len,
            fsync: start.fsync,
            path: start.path,
            poisoned: None,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Commits one record on the caller's thread (the inline mode).
    pub(crate) fn append_now(&mut self, event: &EventJson) -> Result<(), AuditError> {
        self.commit(std::iter::once(event))
            .map_err(BatchFailure::into_error)
    }

    fn run(mut self, rx: Receiver<Pending>) {
        let mut batch = Vec::new();
        while let Ok(first) = rx.recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let outcome = self.commit(batch.iter().map(|p| &p.event));
            for pending in batch.drain(..) {
                let answer = match &outcome {
                    Ok(()) => Ok(()),
                    Err(failure) => Err(failure.clone().into_error()),
                };
                // The appender may have been cancelled; its event is on disk regardless.
                let _ = pending.reply.send(answer);
            }
        }
    }

    /// Chains, writes and syncs one batch. The head and length advance only on success.
    fn commit<'a>(
        &mut self,
        batch: impl IntoIterator<Item = &'a EventJson>,
    ) -> Result<(), BatchFailure> {
        if let Some(err) = &self.poisoned {
            return Err(BatchFailure::Poisoned(Arc::clone(err)));
        }
        self.buf.clear();
        let mut head = self.head.clone();
        for event in batch {
            append_record(&mut self.buf, &mut head, event);
        }
        match self.persist() {
            Ok(()) => {
                self.head = head;
                self.len += self.buf.len() as u64;
                Ok(())
            }
            Err(err) => {
                let err = Arc::new(err);
                self.poison(&err);
                Err(BatchFailure::Failed(err))
            }
        }
    }

    fn persist(&mut self) -> io::Result<()> {
        self.file.write_batch(&self.buf)?;
        if self.fsync == FsyncPolicy::Always {
            self.file.sync_batch()?;
        }
        Ok(())
    }

    fn poison(&mut self, err: &Arc<io::Error>) {
        let path = self.path.display();
        tracing::error!(%path, error = %err, "audit write failed; refusing further appends until restart");
        if let Err(trunc) = self.file.cut_to(self.len) {
            tracing::error!(%path, error = %trunc, "could not cut the failed batch off the audit log; \
                it may end in a partial line that the next start will refuse");
        }
        self.poisoned = Some(Arc::clone(err));
    }
}
