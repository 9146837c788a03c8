//! `censorwatch ingest`: OONI measurements in, stored with their verdicts; idempotent and
//! resumable.
//!
//! Three stages, so that every core judges:
//!
//! 1. this thread reads (and decompresses) the input with the same splitter as `analyze`
//!    ([`crate::analyze::split_stream`]) and ships measurement texts in chunks of about 1 MiB;
//! 2. one worker per core parses, judges and compresses each chunk ([`Judge`]);
//! 3. the writer thread puts the chunks back in input order and stores them in batches, one
//!    transaction each, writing rejects as it goes.
//!
//! Every queue between the stages is bounded, so memory stays flat whatever the input's size, and
//! batches are stored in input order, so a killed ingest leaves a prefix of the input stored.
//! A measurement's id is its
//! `measurement_uid` or a hash of its bytes, and storing an id twice stores it once, so an ingest
//! killed at any point and run again ends with exactly the right rows. Lines that cannot be
//! stored are written to a rejects file (JSONL: file, line, reason, text) and the run goes on.
//!
//! With a [`Ledger`] (the data directory's transparency log), each batch's newly stored
//! measurements are appended to the log right after the batch's commit, as one log batch, and
//! their leaf indexes recorded in the store; a kill between the two is repaired when the ledger
//! is next opened (see `censorwatch_evidence::ledger`).

use crate::analyze::{self, Judge, MeasurementSink, StreamError, Summary, TextSink};
use censorwatch_evidence::{Ledger, LedgerError};
use censorwatch_model::{Measurement, Verdict};
use censorwatch_store::{InsertReport, Record, Store, StoreError};
use censorwatch_verdict::Analyzer;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

/// Records per transaction at most: large enough to amortize the commit (fsync), small enough
/// that a kill loses little work.
pub const BATCH: usize = 2_000;

/// Raw bytes per transaction at most, so memory stays flat whatever the measurements' size.
pub const BATCH_BYTES: usize = 16 << 20;

/// Measurement text per chunk handed to a worker: large enough that the hand-over costs nothing,
/// small enough that the workers share the input evenly.
const CHUNK_BYTES: usize = 1 << 20;

/// Measurements per chunk at most (for inputs of tiny measurements).
const CHUNK_ITEMS: usize = 512;

/// Counts of one ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounts {
    /// Lines read (blank ones included).
    pub read: u64,
    /// Measurements newly stored.
    pub stored: u64,
    /// Measurements already stored before (same id).
    pub duplicates: u64,
    /// Lines rejected (see the rejects file).
    pub rejected: u64,
    /// Measurements appended to the transparency log (0 without a ledger).
    pub logged: u64,
}

/// How an ingest went.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// The counts.
    pub counts: IngestCounts,
    /// Verdict counts (by status and method).
    pub summary: Summary,
    /// Inputs that could not be opened or read to the end.
    pub failed_inputs: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Reject<'a> {
    file: &'a str,
    line: u64,
    reason: &'a str,
    text: Option<std::borrow::Cow<'a, str>>,
}

/// Opens the rejects file lazily: a clean ingest leaves none behind.
struct Rejects {
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Rejects {
    fn write(&mut self, reject: &Reject<'_>) -> io::Result<()> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new().create(true).append(true).open(&self.path)?;
            self.file = Some(BufWriter::new(f));
        }
        let w = self.file.as_mut().expect("opened above");
        serde_json::to_writer(&mut *w, reject)?;
        w.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

/// Measurement texts on their way from the reader to a worker, in input order.
#[derive(Default)]
struct Chunk {
    /// Its place in the input (0, 1, 2, …): the writer stores chunks in this order.
    seq: u64,
    /// The texts, one after another.
    text: Vec<u8>,
    items: Vec<Item>,
}

enum Item {
    Text {
        line: u64,
        column: Option<u64>,
        range: Range<usize>,
    },
    Unreadable {
        line: u64,
        message: String,
    },
}

/// A chunk judged by a worker: its records (compressed), its rejects, its verdict counts.
struct Judged {
    seq: u64,
    records: Vec<Record>,
    rejects: Vec<OwnedReject>,
    summary: Summary,
}

struct OwnedReject {
    line: u64,
    reason: String,
    text: Option<Vec<u8>>,
}

/// The reader's sink: gathers texts into chunks and hands each full one to the workers.
struct Chunker {
    to_workers: SyncSender<Chunk>,
    chunk: Chunk,
    next_seq: u64,
}

impl Chunker {
    fn flush(&mut self) -> io::Result<()> {
        if self.chunk.items.is_empty() {
            return Ok(());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let chunk = std::mem::replace(
            &mut self.chunk,
            Chunk {
                seq: self.next_seq,
                text: Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
                items: Vec::new(),
            },
        );
        debug_assert_eq!(chunk.seq, seq);
        self.to_workers
            .send(chunk)
            .map_err(|_| io::Error::other("the store writer stopped (its error follows)"))
    }

    fn push(&mut self, item: Item) -> io::Result<()> {
        self.chunk.items.push(item);
        if self.chunk.text.len() >= CHUNK_BYTES || self.chunk.items.len() >= CHUNK_ITEMS {
            self.flush()
        } else {
            Ok(())
        }
    }
}

impl TextSink for Chunker {
    fn text(&mut self, line: u64, column: Option<u64>, text: &[u8]) -> io::Result<()> {
        let start = self.chunk.text.len();
        self.chunk.text.extend_from_slice(text);
        let range = start..self.chunk.text.len();
        self.push(Item::Text { line, column, range })
    }

    fn unreadable(&mut self, line: u64, message: &str) -> io::Result<()> {
        self.push(Item::Unreadable {
            line,
            message: message.to_owned(),
        })
    }
}

/// A worker's sink: the chunk's records, compressed here so that compression runs on every core.
#[derive(Default)]
struct Collect {
    records: Vec<Record>,
    rejects: Vec<OwnedReject>,
}

impl MeasurementSink for Collect {
    fn verdict(&mut self, _line: u64, raw: &[u8], m: &Measurement, v: &Verdict) -> io::Result<()> {
        self.records.push(Record::new(raw, m, v.clone()).compressed()?);
        Ok(())
    }

    fn error(&mut self, line: u64, raw: Option<&[u8]>, message: &str) -> io::Result<()> {
        self.rejects.push(OwnedReject {
            line,
            reason: message.to_owned(),
            text: raw.map(<[u8]>::to_vec),
        });
        Ok(())
    }
}

/// A worker: judges chunks until the reader is done or the writer has stopped.
fn work(analyzer: &Analyzer, chunks: &Mutex<Receiver<Chunk>>, to_writer: &SyncSender<io::Result<Judged>>) {
    loop {
        // The lock is held only while waiting for the next chunk, never while judging.
        let next = chunks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
        let Ok(chunk) = next else { return };
        let mut collect = Collect::default();
        let mut summary = Summary::default();
        let mut judge = Judge::new(analyzer, &mut collect, &mut summary);
        let mut judged = Ok(());
        for item in chunk.items {
            judged = match item {
                Item::Text { line, column, range } => judge.text(line, column, &chunk.text[range]),
                Item::Unreadable { line, message } => judge.unreadable(line, &message),
            };
            if judged.is_err() {
                break;
            }
        }
        let result = judged.map(|()| Judged {
            seq: chunk.seq,
            records: collect.records,
            rejects: collect.rejects,
            summary,
        });
        if to_writer.send(result).is_err() {
            return;
        }
    }
}

/// What the writer thread did with one input.
#[derive(Default)]
struct Written {
    inserted: InsertReport,
    rejected: u64,
    logged: u64,
    /// Logging was put off because the store was unreachable (it resumes when the ledger is
    /// next reconciled).
    log_deferred: Option<String>,
    summary: Summary,
}

/// Why the writer thread stopped early.
enum WriteError {
    Store(StoreError),
    Log(LedgerError),
    /// The logger thread stopped early (its own error is the one reported).
    LoggerStopped,
    Rejects(io::Error),
    Judge(io::Error),
}

/// The writer: puts judged chunks back in input order and stores them in batches. With a
/// ledger, a logger thread appends each stored batch to the transparency log while the writer
/// stores the next one (the log's and the store's fsyncs overlap); batches reach it in order,
/// each only after its commit.
fn write(
    store: &dyn Store,
    ledger: Option<&mut Ledger>,
    judged: Receiver<io::Result<Judged>>,
    rejects: &mut Rejects,
    file: &str,
) -> Result<Written, WriteError> {
    std::thread::scope(|scope| {
        let (to_logger, stored) = sync_channel::<Vec<Record>>(1);
        let logger = ledger.map(|ledger| scope.spawn(move || log_batches(store, ledger, &stored)));
        let to_logger = logger.is_some().then_some(to_logger);
        let result = store_batches(store, to_logger, judged, rejects, file);
        let logged = logger.map(|l| l.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        // The logger's own error first: it is why the writer saw it stop.
        let logged = logged.transpose().map_err(WriteError::Log)?;
        let mut written = result?;
        if let Some((count, deferred)) = logged {
            written.logged = count;
            written.log_deferred = deferred;
        }
        Ok(written)
    })
}

/// The logger: appends each stored batch's new measurements to the log, in order. A store that
/// is unreachable (ClickHouse down, the batch spooled) puts logging off until the ledger is next
/// reconciled; any other failure stops the ingest.
fn log_batches(
    store: &dyn Store,
    ledger: &mut Ledger,
    stored: &Receiver<Vec<Record>>,
) -> Result<(u64, Option<String>), LedgerError> {
    let mut logged = 0;
    let mut deferred = None;
    for batch in stored {
        if deferred.is_some() {
            continue;
        }
        match ledger.log_stored(store, &batch) {
            Ok(l) => logged += l.appended,
            Err(LedgerError::Store(e @ StoreError::Unavailable { .. })) => deferred = Some(e.to_string()),
            Err(e) => return Err(e),
        }
    }
    Ok((logged, deferred))
}

fn store_batches(
    store: &dyn Store,
    to_logger: Option<SyncSender<Vec<Record>>>,
    judged: Receiver<io::Result<Judged>>,
    rejects: &mut Rejects,
    file: &str,
) -> Result<Written, WriteError> {
    let mut written = Written::default();
    let mut waiting: BTreeMap<u64, Judged> = BTreeMap::new();
    let mut next_seq = 0u64;
    let mut batch: Vec<Record> = Vec::new();
    let mut batch_bytes = 0usize;
    let store_batch = |batch: &mut Vec<Record>, written: &mut Written| -> Result<(), WriteError> {
        if batch.is_empty() {
            return Ok(());
        }
        let report = store.insert(batch).map_err(WriteError::Store)?;
        written.inserted.stored += report.stored;
        written.inserted.duplicates += report.duplicates;
        match &to_logger {
            // The logger stopped on an error: it is reported when it is joined.
            Some(logger) => {
                if logger.send(std::mem::take(batch)).is_err() {
                    return Err(WriteError::LoggerStopped);
                }
            }
            None => batch.clear(),
        }
        Ok(())
    };
    for result in judged {
        let chunk = result.map_err(WriteError::Judge)?;
        waiting.insert(chunk.seq, chunk);
        while let Some(chunk) = waiting.remove(&next_seq) {
            next_seq += 1;
            written.summary.merge(&chunk.summary);
            for reject in &chunk.rejects {
                written.rejected += 1;
                rejects
                    .write(&Reject {
                        file,
                        line: reject.line,
                        reason: &reject.reason,
                        text: reject.text.as_deref().map(String::from_utf8_lossy),
                    })
                    .map_err(WriteError::Rejects)?;
            }
            for record in chunk.records {
                batch_bytes += record.raw.len();
                batch.push(record);
                if batch.len() >= BATCH || batch_bytes >= BATCH_BYTES {
                    store_batch(&mut batch, &mut written)?;
                    batch_bytes = 0;
                }
            }
        }
    }
    store_batch(&mut batch, &mut written)?;
    Ok(written)
}

/// How many workers judge: one per core.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Ingests every input into `store`, rejects to `rejects_path`; messages and the summary go to
/// `err`. An input that cannot be opened or read is reported and the others still ingested. Fails
/// only when the store or the rejects file fails (nothing acknowledged is lost: what was stored
/// before stays, and a re-run completes it).
pub fn run(
    analyzer: &Analyzer,
    store: &dyn Store,
    mut ledger: Option<&mut Ledger>,
    files: &[PathBuf],
    rejects_path: &Path,
    progress: bool,
    err: &mut impl Write,
) -> io::Result<IngestOutcome> {
    let started = Instant::now();
    let mut outcome = IngestOutcome::default();
    let mut rejects = Rejects {
        path: rejects_path.to_path_buf(),
        file: None,
    };
    for path in files {
        let Some((input, bar)) = analyze::open_input(path, progress, err)? else {
            outcome.failed_inputs.push(path.clone());
            continue;
        };
        let name = input.name.clone();
        let layout = input.layout;
        let mut summary = Summary::default();
        let workers = workers();
        // The queues live outside the scope: the threads borrow them for its whole length.
        let (to_workers, chunks) = sync_channel::<Chunk>(workers);
        // Room for four judged chunks per worker: while the writer waits for its commit's fsync
        // (and the logger for the log's) the workers keep judging instead of stopping at a full
        // queue. Paired runs on 1 GiB of 4.9 KB measurements: 15,600 -> 18,800 measurements/s
        // (medians of 5), for ~30 MB more peak memory (each chunk is at most CHUNK_BYTES of text).
        let (to_writer, judged) = sync_channel::<io::Result<Judged>>(workers * 4);
        let chunks = Mutex::new(chunks);
        let (read, written) = std::thread::scope(|scope| {
            for _ in 0..workers {
                let (chunks, to_writer) = (&chunks, to_writer.clone());
                scope.spawn(move || work(analyzer, chunks, &to_writer));
            }
            drop(to_writer);
            let rejects = &mut rejects;
            let name = name.as_str();
            let ledger = ledger.as_deref_mut();
            let writer = scope.spawn(move || write(store, ledger, judged, rejects, name));
            let mut chunker = Chunker {
                to_workers,
                chunk: Chunk::default(),
                next_seq: 0,
            };
            let read = input
                .into_reader()
                .map_err(StreamError::Read)
                .and_then(|(mut reader, _)| {
                    analyze::split_stream(layout, &mut *reader, &mut chunker, analyze::MAX_LINE, &mut summary)
                })
                // Store what was read, even when the input broke off: those lines were good.
                .and_then(|()| chunker.flush().map_err(StreamError::Write));
            drop(chunker); // closes the queue: the workers finish, then the writer
            let written = writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (read, written)
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let written = match written {
            Ok(written) => written,
            Err(e) => {
                rejects.flush()?;
                return Err(match e {
                    WriteError::Store(e) => io::Error::other(format!("storing measurements from {name} failed: {e}")),
                    WriteError::LoggerStopped => io::Error::other(format!(
                        "logging the measurements stored from {name} stopped; they are stored, and the next \
                         ingest or serve appends them to the log"
                    )),
                    WriteError::Log(e) => io::Error::other(format!(
                        "logging the measurements stored from {name} failed: {e} (they are stored; the next \
                         ingest or serve appends them to the log)"
                    )),
                    WriteError::Rejects(e) => io::Error::new(
                        e.kind(),
                        format!(
                            "writing the rejects of {name} to {} failed: {e}",
                            rejects_path.display()
                        ),
                    ),
                    WriteError::Judge(e) => {
                        io::Error::new(e.kind(), format!("preparing measurements from {name} failed: {e}"))
                    }
                });
            }
        };
        outcome.counts.stored += written.inserted.stored;
        outcome.counts.duplicates += written.inserted.duplicates;
        outcome.counts.rejected += written.rejected;
        outcome.counts.logged += written.logged;
        if let Some(message) = &written.log_deferred {
            writeln!(
                err,
                "censorwatch: the transparency log is behind: {message}; the measurements are spooled and are \
                 logged once the store is back (next ingest or serve)"
            )?;
        }
        outcome.counts.read += summary.lines;
        summary.merge(&written.summary);
        outcome.summary.merge(&summary);
        match read {
            // The writer finished without error, so the queue never closed under the reader.
            Err(StreamError::Write(e)) => {
                rejects.flush()?;
                return Err(io::Error::new(e.kind(), format!("ingesting {name} failed: {e}")));
            }
            Err(StreamError::Read(e)) => {
                writeln!(
                    err,
                    "censorwatch: cannot read {name} after line {}: {e}; the file may be truncated or corrupt (the lines before were stored)",
                    summary.lines
                )?;
                outcome.failed_inputs.push(path.clone());
            }
            Ok(()) => {}
        }
    }
    rejects.flush()?;
    write_summary(err, &outcome, rejects_path, started.elapsed().as_secs_f64())?;
    Ok(outcome)
}

fn write_summary(err: &mut impl Write, outcome: &IngestOutcome, rejects: &Path, secs: f64) -> io::Result<()> {
    let c = &outcome.counts;
    write!(
        err,
        "censorwatch ingest: {} lines read, {} stored, {} duplicate, {} rejected",
        c.read, c.stored, c.duplicates, c.rejected
    )?;
    if c.rejected > 0 {
        write!(err, " (reasons in {})", rejects.display())?;
    }
    let mb = outcome.summary.bytes as f64 / 1e6;
    if secs > 0.0 {
        writeln!(
            err,
            "; {mb:.1} MB in {secs:.2} s ({:.0} MB/s, {:.0} measurements/s)",
            mb / secs,
            (c.stored + c.duplicates) as f64 / secs
        )?;
    } else {
        writeln!(err)?;
    }
    outcome.summary.write_counts(err)
}
