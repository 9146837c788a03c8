//! Group commit: the one writer task that owns the store's inserts.
//!
//! With `synchronous=FULL`, every SQLite commit costs an fsync, so one insert per submission
//! caps the collector at the disk's fsync rate. Instead, handlers send their prepared records
//! through a bounded mpsc channel to a single writer task, which
//!
//! 1. waits for the first pending submission, then keeps collecting for up to
//!    [`ServerConfig::commit_window`](crate::ServerConfig::commit_window), or until it holds
//!    `commit_max_records` records or `commit_max_bytes` raw bytes (submissions that arrived
//!    while the previous commit was running are already waiting and are taken at once);
//! 2. drops later occurrences of an id already in the batch (the first occurrence wins);
//! 3. inserts the whole batch with one [`Store::insert`] on a blocking thread: one transaction,
//!    one fsync;
//! 4. answers every submitter through its oneshot channel, only after `insert` returned `Ok`:
//!    an acknowledgement always means "durably stored" (a duplicate id counts as stored: it was,
//!    earlier).
//!
//! If a batch fails, each submission of it is retried alone, so one bad submission cannot fail
//! its neighbours; the ones that still fail get the store's error (answered as 503: nothing of
//! theirs was stored and resending is safe, since inserts are idempotent by id).
//!
//! The bounded channel is the back-pressure: when the writer falls behind, handlers wait for
//! room instead of piling up memory.
//!
//! With a transparency log ([`Ledger`]), the writer then appends the commit's newly stored
//! measurements to it (one log batch per commit) before it takes the next group. This happens
//! after the submitters were answered, so the log costs them no latency; a failure is reported
//! and repaired by the next reconcile (the store is the source of what must be logged).
//!
//! With a [`DetectionFeed`], the writer also hands the records of the submissions it stored to
//! the detection worker ([`crate::detections`]), which never blocks it.

use crate::config::ServerConfig;
use crate::detections::DetectionFeed;
use crate::error::ApiError;
use censorwatch_evidence::Ledger;
use censorwatch_store::{Record, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What a submitter is told: `Ok` once its records are durable, else the store's error.
type Reply = Result<(), String>;

struct Job {
    records: Vec<Record>,
    reply: oneshot::Sender<Reply>,
}

/// The handle handlers commit through; cheap to share behind the app state.
pub struct Committer {
    tx: mpsc::Sender<Job>,
    closing: watch::Sender<bool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Figures the writer keeps, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Commits (store inserts) done.
    pub commits: std::sync::atomic::AtomicU64,
    /// Records committed (including duplicates).
    pub records: std::sync::atomic::AtomicU64,
    /// Records newly stored (duplicates excluded).
    pub stored: std::sync::atomic::AtomicU64,
    /// Measurements refused before reaching the writer (counted by the handlers).
    pub rejected: std::sync::atomic::AtomicU64,
    /// How long each commit took, until durable.
    pub latency: crate::metrics::Histogram,
}

impl Committer {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(
        store: Arc<dyn Store>,
        config: &ServerConfig,
        stats: Arc<CommitStats>,
        ledger: Option<Arc<Mutex<Ledger>>>,
        detections: Option<DetectionFeed>,
    ) -> Committer {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (closing, closed) = watch::channel(false);
        let limits = Limits {
            window: config.commit_window,
            max_records: config.commit_max_records.max(1),
            max_bytes: config.commit_max_bytes.max(1),
        };
        let writer = tokio::spawn(write_loop(store, rx, closed, limits, stats, ledger, detections));
        Committer {
            tx,
            closing,
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Commits `records` (with the next group) and returns once they are durable.
    pub async fn commit(&self, records: Vec<Record>) -> Result<(), ApiError> {
        if records.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let stopped =
            || ApiError::unavailable("the server is shutting down; nothing was stored; resend to it once it is back");
        self.tx.send(Job { records, reply }).await.map_err(|_| stopped())?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(ApiError::unavailable(format!(
                "the store failed ({message}); nothing of this submission was stored; resending it is safe"
            ))),
            Err(_) => Err(stopped()),
        }
    }

    /// Stops the writer after it has committed everything already queued, and waits for it.
    pub async fn close(&self) {
        let _ = self.closing.send(true);
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}

#[derive(Clone, Copy)]
struct Limits {
    window: Duration,
    max_records: usize,
    max_bytes: usize,
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Job>,
    mut closed: watch::Receiver<bool>,
    limits: Limits,
    stats: Arc<CommitStats>,
    ledger: Option<Arc<Mutex<Ledger>>>,
    detections: Option<DetectionFeed>,
) {
    loop {
        let first = tokio::select! {
            job = rx.recv() => job,
            _ = closed.wait_for(|c| *c) => rx.try_recv().ok(),
        };
        let Some(first) = first else { break };
        let mut jobs = vec![first];
        let mut records = jobs[0].records.len();
        let mut bytes: usize = jobs[0].records.iter().map(|r| r.raw.len()).sum();
        let deadline = Instant::now() + limits.window;
        while records < limits.max_records && bytes < limits.max_bytes {
            let job = match rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if *closed.borrow() || limits.window.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => job,
                        _ => break,
                    }
                }
            };
            records += job.records.len();
            bytes += job.records.iter().map(|r| r.raw.len()).sum::<usize>();
            jobs.push(job);
        }
        let (batch, stored) = commit(&store, jobs, &stats).await;
        if let (Some(feed), Some(batch)) = (&detections, &batch) {
            for range in stored {
                feed.send(&batch[range]);
            }
        }
        if let (Some(ledger), Some(batch)) = (&ledger, batch) {
            let (store, ledger) = (Arc::clone(&store), Arc::clone(ledger));
            let logged = tokio::task::spawn_blocking(move || {
                let mut ledger = ledger.lock().unwrap_or_else(|p| p.into_inner());
                ledger.log_stored(store.as_ref(), &batch).map(drop)
            })
            .await;
            match logged {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!(
                    "censorwatch: appending to the transparency log failed: {e}; the measurements are stored and \
                     are logged at the next reconcile"
                ),
                Err(e) => eprintln!("censorwatch: the transparency log writer failed: {e}"),
            }
        }
    }
}

/// Commits the jobs and answers them; returns the batch tried (for the log) unless the writer
/// thread failed, and where in it the submissions that were stored are (for detection).
async fn commit(
    store: &Arc<dyn Store>,
    jobs: Vec<Job>,
    stats: &CommitStats,
) -> (Option<Vec<Record>>, Vec<std::ops::Range<usize>>) {
    use std::sync::atomic::Ordering;
    // The first occurrence of an id wins; later ones are acknowledged with it, and depend on the
    // submission that carried it.
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut batch = Vec::new();
    let mut segments = Vec::with_capacity(jobs.len());
    let mut depends: Vec<Vec<usize>> = Vec::with_capacity(jobs.len());
    let mut replies = Vec::with_capacity(jobs.len());
    for (j, job) in jobs.into_iter().enumerate() {
        let start = batch.len();
        let mut deps = vec![j];
        stats.records.fetch_add(job.records.len() as u64, Ordering::Relaxed);
        for record in job.records {
            match owner.get(&record.id) {
                Some(&earlier) => {
                    if !deps.contains(&earlier) {
                        deps.push(earlier);
                    }
                }
                None => {
                    owner.insert(record.id.clone(), j);
                    batch.push(record);
                }
            }
        }
        segments.push(start..batch.len());
        depends.push(deps);
        replies.push(job.reply);
    }
    let store = Arc::clone(store);
    let jobs_count = replies.len();
    let started = Instant::now();
    let newly_stored = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let newly = Arc::clone(&newly_stored);
    type Stored = Vec<std::ops::Range<usize>>;
    let outcome = tokio::task::spawn_blocking(move || -> (Vec<Reply>, Vec<Record>, Stored) {
        let (replies, stored) = match store.insert(&batch) {
            Ok(report) => {
                newly.fetch_add(report.stored, Ordering::Relaxed);
                (vec![Ok(()); jobs_count], std::iter::once(0..batch.len()).collect())
            }
            Err(e) if jobs_count == 1 => (vec![Err(e.to_string())], Vec::new()),
            Err(_) => {
                // Retry each submission alone; one that shares an id with a failed one fails too.
                let mut stored = Vec::new();
                let alone: Vec<Reply> = segments
                    .into_iter()
                    .map(|s| {
                        let result = store
                            .insert(&batch[s.clone()])
                            .map(|report| {
                                newly.fetch_add(report.stored, Ordering::Relaxed);
                            })
                            .map_err(|e| e.to_string());
                        if result.is_ok() {
                            stored.push(s);
                        }
                        result
                    })
                    .collect();
                let replies = depends
                    .iter()
                    .map(|deps| deps.iter().try_for_each(|&d| alone[d].clone()))
                    .collect();
                (replies, stored)
            }
        };
        (replies, batch, stored)
    })
    .await;
    let (outcome, batch, stored) = match outcome {
        Ok((replies, batch, stored)) => (replies, Some(batch), stored),
        Err(e) => (
            vec![Err(format!("the writer thread failed: {e}")); jobs_count],
            None,
            Vec::new(),
        ),
    };
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats
        .stored
        .fetch_add(newly_stored.load(Ordering::Relaxed), Ordering::Relaxed);
    stats.latency.observe(started.elapsed());
    for (reply, result) in replies.into_iter().zip(outcome) {
        // A submitter that went away (client disconnected) is not an error: its records are
        // stored either way.
        let _ = reply.send(result);
    }
    (batch, stored)
}
