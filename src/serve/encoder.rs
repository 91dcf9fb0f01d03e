//! Encoder threads: one per source, so that a source's encode never runs on the I/O thread and a
//! slow or hung source holds exactly one thread, its own.
//!
//! The I/O thread's scrape driver ([`super::scrape`]) hands a thread a [`Job`] only when the
//! thread has returned its previous result, so a thread has at most one job, and a source
//! that never returns stops being asked (its thread is the only one it holds, forever). The
//! result comes back as a [`Done`] on a channel shared by all encoder threads; the encoded text
//! (and, when a scrape wants gzip, its compressed segment) is a [`Part`] in buffers that go
//! back to the thread's pool when the last response written from them is done, so steady-state
//! scrapes reuse their memory.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flate2::Crc;
use tokio::sync::mpsc::UnboundedSender;

use super::compression::Deflater;
use super::negotiate::Format;
use super::stats::Stats;
use super::threads::ExitSignal;
use super::ExpositionSource;
use crate::unwind::panic_message;

/// A source as the server keeps it.
pub(crate) struct Source {
    pub(crate) name: Box<str>,
    /// A scrape without this source's part is answered `503` (or `500` if it panicked).
    pub(crate) required: bool,
    pub(crate) source: Arc<dyn ExpositionSource>,
}

/// One encode to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job {
    pub(crate) generation: u64,
    /// Compress the part too (some scrape of this generation accepts gzip).
    pub(crate) gzip: bool,
    /// The format to write.
    pub(crate) format: Format,
}

/// What became of a [`Job`].
pub(crate) struct Done {
    pub(crate) source: usize,
    pub(crate) generation: u64,
    /// The part, or `None` when the source panicked (or compression failed).
    pub(crate) part: Option<Arc<Part>>,
}

/// Buffers of one part, recycled through a [`Pool`].
#[derive(Default)]
struct Buffers {
    text: String,
    deflate: Vec<u8>,
}

/// A few spare buffer sets per encoder thread: a part may still be written to slow clients
/// while the next one is encoded.
#[derive(Default)]
struct Pool {
    spare: Mutex<Vec<Buffers>>,
}

const POOL_CAP: usize = 3;

impl Pool {
    fn take(&self) -> Buffers {
        let mut bufs = self
            .spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        bufs.text.clear();
        bufs.deflate.clear();
        bufs
    }

    fn put(&self, bufs: Buffers) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < POOL_CAP {
            spare.push(bufs);
        }
    }
}

/// One source's exposition for one generation, shared by every response written from it.
pub(crate) struct Part {
    bufs: Option<Buffers>,
    /// CRC-32 of the text (only when compressed).
    crc: Crc,
    gzip: bool,
    took: Duration,
    pool: Arc<Pool>,
}

impl Part {
    pub(crate) fn text(&self) -> &[u8] {
        self.bufs.as_ref().map_or(&[], |b| b.text.as_bytes())
    }

    /// The compressed segment (see [`Deflater`]), if this part was compressed.
    pub(crate) fn segment(&self) -> Option<&[u8]> {
        match &self.bufs {
            Some(b) if self.gzip => Some(&b.deflate),
            _ => None,
        }
    }

    pub(crate) fn crc(&self) -> &Crc {
        &self.crc
    }

    /// How long the source took.
    pub(crate) fn took(&self) -> Duration {
        self.took
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if let Some(bufs) = self.bufs.take() {
            self.pool.put(bufs);
        }
    }
}

/// Starts the encoder thread of source `index`; returns where to send its jobs, and its handle.
/// The thread ends when the job sender is dropped (after any encode in progress) or when
/// `results` is closed.
pub(crate) fn spawn(
    index: usize,
    source: Arc<dyn ExpositionSource>,
    stats: Arc<Stats>,
    results: UnboundedSender<Done>,
    exited: std::sync::mpsc::Sender<usize>,
) -> std::io::Result<(SyncSender<Job>, JoinHandle<()>)> {
    let (jobs_tx, jobs) = sync_channel::<Job>(1);
    let handle = std::thread::Builder::new()
        .name(format!("agentcore-metrics-encode-{index}"))
        .spawn(move || {
            let _exit = ExitSignal::new(index, exited);
            // Dropped before `_exit` signals the end: the source may be the caller's last
            // handle of something whose `Drop` (the caller's code) blocks, and whoever stops
            // the server joins a thread that signalled with no deadline (`threads::join_by`).
            // As a captured value it was dropped after the signal.
            let source = source;
            run(index, &*source, &stats, &jobs, &results);
        })?;
    Ok((jobs_tx, handle))
}

fn run(
    index: usize,
    source: &dyn ExpositionSource,
    stats: &Stats,
    jobs: &Receiver<Job>,
    results: &UnboundedSender<Done>,
) {
    let pool = Arc::new(Pool::default());
    let mut deflater: Option<Deflater> = None;
    let source_stats = &stats.sources[index];
    while let Ok(job) = jobs.recv() {
        // The driver's stamp for this job (see `SourceStats::encode_dispatched`).
        let stamp = source_stats.stamp();
        let mut bufs = pool.take();
        let started = Instant::now();
        // A panic's payload is taken apart inside: dropping it runs the source's code, which
        // may panic again (review helper-97: a payload whose `Drop` panicked killed this thread,
        // and every later scrape of the source was a 500).
        let encoded = catch_unwind(AssertUnwindSafe(|| match job.format {
            Format::Text => source.encode_into(&mut bufs.text),
            Format::OpenMetrics => source.encode_openmetrics_into(&mut bufs.text),
        }))
        .map_err(panic_message);
        let took = started.elapsed();
        source_stats.encode_finished(took);
        let mut crc = Crc::new();
        let compressed = encoded.is_ok()
            && (!job.gzip || {
                crc.update(bufs.text.as_bytes());
                let d = deflater.get_or_insert_with(Deflater::new);
                let ok = d.segment(bufs.text.as_bytes(), &mut bufs.deflate).is_ok();
                if !ok {
                    // The compressor may be mid-stream: start afresh next time.
                    deflater = None;
                }
                ok
            });
        let part = if compressed {
            Some(Arc::new(Part {
                bufs: Some(bufs),
                crc,
                gzip: job.gzip,
                took,
                pool: Arc::clone(&pool),
            }))
        } else {
            pool.put(bufs);
            None
        };
        let done = Done {
            source: index,
            generation: job.generation,
            part,
        };
        let sent = results.send(done);
        // No longer running (the `encodes_overdue` gauge): cleared once the result is on its
        // way, so a caller that sees the gauge at 0 knows the driver can have it; after the
        // compression, which the scrape's deadline covers too. Only this job's stamp: the
        // driver may already have stamped the next one.
        source_stats.encode_returned(stamp);
        if sent.is_err() {
            return; // the I/O thread is gone
        }
    }
}
