//! `censorwatch ingest`: OONI measurements in, stored with their verdicts; idempotent and
//! resumable.
//!
//! Lines are read by the same streaming reader as `analyze` ([`crate::analyze::read_stream`]),
//! judged, and stored in batches, one transaction each. A measurement's id is its
//! `measurement_uid` or a hash of its bytes, and storing an id twice stores it once, so an ingest
//! killed at any point and run again ends with exactly the right rows. Lines that cannot be
//! stored are written to a rejects file (JSONL: file, line, reason, text) and the run goes on.

use crate::analyze::{self, MeasurementSink, StreamError, Summary};
use censorwatch_model::{Measurement, Verdict};
use censorwatch_store::{InsertReport, Record, Store, StoreError};
use censorwatch_verdict::Analyzer;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Instant;

/// Records per transaction at most: large enough to amortize the commit (fsync), small enough
/// that a kill loses little work.
pub const BATCH: usize = 2_000;

/// Raw bytes per transaction at most, so memory stays flat whatever the measurements' size.
pub const BATCH_BYTES: usize = 16 << 20;

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

/// The sink that batches records and hands each batch to the writer thread.
struct StoreSink<'a> {
    to_writer: SyncSender<Vec<Record>>,
    batch: Vec<Record>,
    batch_bytes: usize,
    rejected: u64,
    rejects: &'a mut Rejects,
    file: &'a str,
}

impl StoreSink<'_> {
    fn flush(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.batch_bytes = 0;
        self.to_writer
            .send(std::mem::take(&mut self.batch))
            .map_err(|_| io::Error::other("the store writer stopped (its error follows)"))
    }
}

impl MeasurementSink for StoreSink<'_> {
    fn verdict(&mut self, _line: u64, raw: &[u8], m: &Measurement, v: &Verdict) -> io::Result<()> {
        self.batch_bytes += raw.len();
        self.batch.push(Record::new(raw, m, v.clone()));
        if self.batch.len() >= BATCH || self.batch_bytes >= BATCH_BYTES {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn error(&mut self, line: u64, raw: Option<&[u8]>, message: &str) -> io::Result<()> {
        self.rejected += 1;
        self.rejects.write(&Reject {
            file: self.file,
            line,
            reason: message,
            text: raw.map(String::from_utf8_lossy),
        })
    }
}

/// Ingests every input into `store`, rejects to `rejects_path`; messages and the summary go to
/// `err`. An input that cannot be opened or read is reported and the others still ingested. Fails
/// only when the store or the rejects file fails (nothing acknowledged is lost: what was stored
/// before stays, and a re-run completes it).
pub fn run(
    analyzer: &Analyzer,
    store: &dyn Store,
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
        // Two stages on two cores: this thread reads, parses and judges; the writer thread
        // compresses and stores. Two batches in flight at most, so memory stays flat.
        let (read, sent, inserted, rejected) = std::thread::scope(|scope| {
            let (to_writer, batches) = sync_channel::<Vec<Record>>(1);
            let writer = scope.spawn(move || -> Result<InsertReport, StoreError> {
                let mut total = InsertReport::default();
                for batch in batches {
                    let report = store.insert(&batch)?;
                    total.stored += report.stored;
                    total.duplicates += report.duplicates;
                }
                Ok(total)
            });
            let mut sink = StoreSink {
                to_writer,
                batch: Vec::new(),
                batch_bytes: 0,
                rejected: 0,
                rejects: &mut rejects,
                file: &name,
            };
            let read = input
                .into_reader()
                .map_err(StreamError::Read)
                .and_then(|(mut reader, _)| {
                    analyze::read_stream(
                        analyzer,
                        layout,
                        &mut *reader,
                        &mut sink,
                        analyze::MAX_LINE,
                        &mut summary,
                    )
                });
            // Store what was read, even when the input broke off: those lines were good.
            let sent = sink.flush();
            let rejected = sink.rejected;
            drop(sink); // closes the channel: the writer finishes its last batch and returns
            let inserted = writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (read, sent, inserted, rejected)
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let report = match inserted {
            Ok(report) => report,
            Err(e) => {
                rejects.flush()?;
                return Err(io::Error::other(format!(
                    "storing measurements from {name} failed: {e}"
                )));
            }
        };
        outcome.counts.stored += report.stored;
        outcome.counts.duplicates += report.duplicates;
        outcome.counts.rejected += rejected;
        outcome.counts.read += summary.lines;
        outcome.summary.merge(&summary);
        match (read, sent) {
            (Err(StreamError::Write(e)), _) | (_, Err(e)) => {
                rejects.flush()?;
                return Err(io::Error::new(
                    e.kind(),
                    format!("writing the rejects of {name} failed: {e}"),
                ));
            }
            (Err(StreamError::Read(e)), Ok(())) => {
                writeln!(
                    err,
                    "censorwatch: cannot read {name} after line {}: {e}; the file may be truncated or corrupt (the lines before were stored)",
                    summary.lines
                )?;
                outcome.failed_inputs.push(path.clone());
            }
            (Ok(()), Ok(())) => {}
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
