//! A file that fails (and counts syncs) on demand, for the writer's failure and batching tests.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::audit::writer::LogFile;
use crate::audit::{FsyncPolicy, JsonlAuditSink};

/// Switches a test flips to make the next operation fail.
#[derive(Default)]
pub(super) struct Faults {
    /// Writes half the batch, then fails, like a disk filling up mid-write.
    pub(super) write: AtomicBool,
    pub(super) sync: AtomicBool,
    pub(super) truncate: AtomicBool,
    /// How many syncs were attempted.
    pub(super) syncs: AtomicUsize,
}

struct FlakyFile {
    inner: std::fs::File,
    faults: Arc<Faults>,
}

fn injected() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "injected fault")
}

impl LogFile for FlakyFile {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.faults.write.load(Ordering::SeqCst) {
            self.inner.write_all(&bytes[..bytes.len() / 2])?;
            return Err(injected());
        }
        self.inner.write_all(bytes)
    }

    fn sync_batch(&mut self) -> io::Result<()> {
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        // Like a real disk, a sync takes a while; appends arriving meanwhile form the next batch.
        std::thread::sleep(std::time::Duration::from_millis(1));
        if self.faults.sync.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.sync_data()
    }

    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        if self.faults.truncate.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.set_len(len)
    }
}

pub(super) fn open_flaky(path: &Path) -> (JsonlAuditSink, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let for_file = Arc::clone(&faults);
    let sink = JsonlAuditSink::open_with(path, FsyncPolicy::Always, move |inner| FlakyFile {
        inner,
        faults: for_file,
    })
    .unwrap();
    (sink, faults)
}
