//! A local spool in front of a remote store: when the inner store is
//! [`Unavailable`](StoreError::Unavailable) (the ClickHouse server is down), [`SpoolingStore`]
//! appends the batch to a local file, fsyncs it, and reports success; the data is durable on this
//! machine. [`SpoolingStore::drain`] (also tried before every insert while something is spooled)
//! re-sends the spooled batches in order and truncates the spool once they are all stored.
//!
//! Re-sending is safe because every [`Store`] is idempotent by id: a batch that reached the
//! server before a crash is counted as duplicates the second time.
//!
//! # The spool file
//!
//! JSON Lines, one batch per line: `{"records": [{"id", "meta", "verdict", "raw_b64"}, …]}`,
//! appended with one `write` and `fsync`ed before [`Store::insert`] returns. A last line without
//! its newline is a write torn by a crash; it was never acknowledged and is ignored. Any other
//! unreadable line is [`StoreError::Corrupt`] (the spool is left as is, for a human to look at).
//!
//! While batches are spooled, [`Store::get`], [`Store::query`] and [`Store::count`] (which go to
//! the inner store) do not see them.

use crate::record::RecordMeta;
use crate::{InsertReport, MeasurementQuery, Page, Record, Store, StoreError};
use base64::Engine as _;
use censorwatch_model::Verdict;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// A [`Store`] that spools batches to a local file while its inner store is unavailable.
#[derive(Debug)]
pub struct SpoolingStore<S: Store> {
    inner: S,
    path: PathBuf,
    /// Whether the spool file holds batches; the lock also serializes appends and drains.
    pending: Mutex<bool>,
}

/// What [`SpoolingStore::drain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Spooled batches now stored in the inner store.
    pub batches: u64,
    /// What the inner store said about their records, summed.
    pub report: InsertReport,
    /// Batches still spooled (the inner store became unavailable again).
    pub remaining: u64,
}

/// One spooled record (a [`Record`] in serializable form).
#[derive(Serialize, Deserialize)]
struct SpooledRecord {
    id: String,
    meta: SpooledMeta,
    verdict: Verdict,
    raw_b64: String,
}

/// [`RecordMeta`] in serializable form.
#[derive(Serialize, Deserialize)]
struct SpooledMeta {
    start_time: i64,
    probe_cc: String,
    probe_asn: u32,
    probe_network_name: String,
    test_name: String,
    input: Option<String>,
    domain: Option<String>,
    report_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SpooledBatch {
    records: Vec<SpooledRecord>,
}

impl SpooledRecord {
    fn of(r: &Record) -> SpooledRecord {
        let m = &r.meta;
        SpooledRecord {
            id: r.id.clone(),
            meta: SpooledMeta {
                start_time: m.start_time,
                probe_cc: m.probe_cc.clone(),
                probe_asn: m.probe_asn,
                probe_network_name: m.probe_network_name.clone(),
                test_name: m.test_name.clone(),
                input: m.input.clone(),
                domain: m.domain.clone(),
                report_id: m.report_id.clone(),
            },
            verdict: r.verdict.clone(),
            raw_b64: base64::engine::general_purpose::STANDARD.encode(&r.raw),
        }
    }

    fn into_record(self) -> Result<Record, String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&self.raw_b64)
            .map_err(|e| format!("record {}: raw_b64 is not base64: {e}", self.id))?;
        let m = self.meta;
        Ok(Record {
            id: self.id,
            meta: RecordMeta {
                start_time: m.start_time,
                probe_cc: m.probe_cc,
                probe_asn: m.probe_asn,
                probe_network_name: m.probe_network_name,
                test_name: m.test_name,
                input: m.input,
                domain: m.domain,
                report_id: m.report_id,
            },
            verdict: self.verdict,
            raw,
            raw_zstd: None,
        })
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Io(std::io::Error::new(
        e.kind(),
        format!(
            "cannot {what} the spool {} ({e}); check that its directory is writable and the disk is not full",
            path.display()
        ),
    ))
}

/// Fsyncs the directory holding `path`, so a created or renamed file survives a crash.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

impl<S: Store> SpoolingStore<S> {
    /// Wraps `inner`, spooling to the file at `path` (created with its parent directories if
    /// missing; batches already in it are kept and drained later).
    pub fn open(inner: S, path: &Path) -> Result<SpoolingStore<S>, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io_error(path, "create the directory of", e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, "open", e))?;
        file.sync_all().map_err(|e| io_error(path, "sync", e))?;
        sync_dir(path).map_err(|e| io_error(path, "sync the directory of", e))?;
        let len = file.metadata().map_err(|e| io_error(path, "inspect", e))?.len();
        Ok(SpoolingStore {
            inner,
            path: path.to_owned(),
            pending: Mutex::new(len > 0),
        })
    }

    /// The inner store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The spool file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many batches are spooled.
    pub fn spooled_batches(&self) -> Result<u64, StoreError> {
        let _guard = self.lock();
        Ok(self.read_spool()?.len() as u64)
    }

    /// Re-sends the spooled batches to the inner store, in order, and truncates the spool once
    /// they are all stored. If the inner store becomes unavailable part-way, the batches not yet
    /// stored stay spooled (and [`DrainReport::remaining`] says how many); other errors are
    /// returned with the spool unchanged. Safe to repeat: stored ids come back as duplicates.
    pub fn drain(&self) -> Result<DrainReport, StoreError> {
        let mut pending = self.lock();
        self.drain_locked(&mut pending)
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn drain_locked(&self, pending: &mut bool) -> Result<DrainReport, StoreError> {
        let mut out = DrainReport::default();
        if !*pending {
            return Ok(out);
        }
        let batches = self.read_spool()?;
        for (i, batch) in batches.iter().enumerate() {
            match self.inner.insert(batch) {
                Ok(r) => {
                    out.batches += 1;
                    out.report.stored += r.stored;
                    out.report.duplicates += r.duplicates;
                }
                Err(StoreError::Unavailable { .. }) => {
                    // Keep what is left; the stored prefix would only come back as duplicates,
                    // but rewriting keeps the spool from growing with retries.
                    self.rewrite(&batches[i..])?;
                    out.remaining = (batches.len() - i) as u64;
                    return Ok(out);
                }
                Err(e) => {
                    if i > 0 {
                        self.rewrite(&batches[i..])?;
                    }
                    return Err(e);
                }
            }
        }
        self.rewrite(&[])?;
        *pending = false;
        Ok(out)
    }

    /// The spooled batches, in order (a torn last line ignored).
    fn read_spool(&self) -> Result<Vec<Vec<Record>>, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(&self.path, "read", e)),
        };
        let mut batches = Vec::new();
        let mut lines = bytes.split_inclusive(|&b| b == b'\n').enumerate().peekable();
        while let Some((n, line)) = lines.next() {
            let Some(line) = line.strip_suffix(b"\n") else {
                // No newline: the append was torn by a crash and never acknowledged.
                debug_assert!(lines.peek().is_none());
                break;
            };
            if line.is_empty() {
                continue;
            }
            let corrupt = |message: String| StoreError::Corrupt {
                id: format!("{} line {}", self.path.display(), n + 1),
                message: format!("{message}; move the spool aside and re-ingest its data"),
            };
            let batch: SpooledBatch =
                serde_json::from_slice(line).map_err(|e| corrupt(format!("not a spooled batch: {e}")))?;
            let records = batch
                .records
                .into_iter()
                .map(SpooledRecord::into_record)
                .collect::<Result<Vec<_>, _>>()
                .map_err(corrupt)?;
            batches.push(records);
        }
        Ok(batches)
    }

    /// One JSON line for a batch.
    fn line(batch: &[Record]) -> Result<Vec<u8>, StoreError> {
        let spooled = SpooledBatch {
            records: batch.iter().map(SpooledRecord::of).collect(),
        };
        let mut line = serde_json::to_vec(&spooled).map_err(|e| StoreError::Corrupt {
            id: batch.first().map(|r| r.id.clone()).unwrap_or_default(),
            message: format!("cannot encode the batch for the spool ({e}); this is a censorwatch bug"),
        })?;
        line.push(b'\n');
        Ok(line)
    }

    /// Appends a batch and fsyncs it.
    fn append(&self, batch: &[Record]) -> Result<(), StoreError> {
        let line = Self::line(batch)?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, "open", e))?;
        file.write_all(&line)
            .map_err(|e| io_error(&self.path, "append to", e))?;
        file.sync_data().map_err(|e| io_error(&self.path, "sync", e))
    }

    /// Replaces the spool with `batches` (write a temporary file, fsync, rename, fsync the
    /// directory), so a crash leaves either the old or the new spool.
    fn rewrite(&self, batches: &[Vec<Record>]) -> Result<(), StoreError> {
        let tmp = self.path.with_extension("rewrite.tmp");
        let mut body = Vec::new();
        for batch in batches {
            body.extend(Self::line(batch)?);
        }
        let mut file = File::create(&tmp).map_err(|e| io_error(&tmp, "create", e))?;
        file.write_all(&body).map_err(|e| io_error(&tmp, "write", e))?;
        file.sync_all().map_err(|e| io_error(&tmp, "sync", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io_error(&self.path, "replace", e))?;
        sync_dir(&self.path).map_err(|e| io_error(&self.path, "sync the directory of", e))
    }
}

impl<S: Store> Store for SpoolingStore<S> {
    /// Inserts into the inner store; if it is unavailable, spools the batch durably and reports
    /// every record as stored (the real stored/duplicate split is known when it is drained).
    /// While batches are spooled, they are drained first, so batches reach the inner store in
    /// the order they were inserted.
    fn insert(&self, batch: &[Record]) -> Result<InsertReport, StoreError> {
        if batch.is_empty() {
            return Ok(InsertReport::default());
        }
        let mut pending = self.lock();
        if *pending {
            self.drain_locked(&mut pending)?;
        }
        if !*pending {
            match self.inner.insert(batch) {
                Err(StoreError::Unavailable { .. }) => {}
                other => return other,
            }
        }
        self.append(batch)?;
        *pending = true;
        Ok(InsertReport {
            stored: batch.len() as u64,
            duplicates: 0,
        })
    }

    fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.inner.get(id)
    }

    fn query(&self, query: &MeasurementQuery) -> Result<Page, StoreError> {
        self.inner.query(query)
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.inner.count()
    }

    // Spooled batches are not in the inner store yet: they become unlogged once drained.
    fn unlogged_among(&self, ids: &[&str]) -> Result<Vec<String>, StoreError> {
        self.inner.unlogged_among(ids)
    }

    fn unlogged_count(&self) -> Result<u64, StoreError> {
        self.inner.unlogged_count()
    }

    fn unlogged(&self, after: Option<&str>, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.inner.unlogged(after, limit)
    }

    fn set_leaf_indexes(&self, entries: &[(&str, u64)]) -> Result<(), StoreError> {
        self.inner.set_leaf_indexes(entries)
    }

    fn leaf_index(&self, id: &str) -> Result<Option<u64>, StoreError> {
        self.inner.leaf_index(id)
    }

    fn max_leaf_index(&self) -> Result<Option<u64>, StoreError> {
        self.inner.max_leaf_index()
    }

    // Spooled batches are not in the inner store yet: aggregates and the detector see them once
    // drained.
    fn aggregate(&self, query: &crate::AggregateQuery) -> Result<Vec<crate::AggregateRow>, StoreError> {
        self.inner.aggregate(query)
    }

    // Spooled batches are not in the inner store yet: the detector sees them once drained.
    fn observations(
        &self,
        since: Option<i64>,
        after: Option<&crate::ObservationCursor>,
        limit: usize,
    ) -> Result<Vec<crate::ObservationRow>, StoreError> {
        self.inner.observations(since, after, limit)
    }

    fn put_detections(
        &self,
        upserts: &[crate::StoredDetection],
        removed: &[(crate::DetectionKind, &str)],
    ) -> Result<(), StoreError> {
        self.inner.put_detections(upserts, removed)
    }

    fn detections(&self, query: &crate::DetectionQuery) -> Result<Vec<crate::StoredDetection>, StoreError> {
        self.inner.detections(query)
    }

    fn detection(&self, kind: crate::DetectionKind, id: &str) -> Result<Option<crate::StoredDetection>, StoreError> {
        self.inner.detection(kind, id)
    }

    fn detection_ids(&self, kind: crate::DetectionKind) -> Result<Vec<String>, StoreError> {
        self.inner.detection_ids(kind)
    }

    // Signal samples go straight to the inner store (they are not spooled: a failed write is
    // reported, and re-reading the MRT files records them again).
    fn put_signal_samples(&self, samples: &[crate::StoredSignalSample]) -> Result<u64, StoreError> {
        self.inner.put_signal_samples(samples)
    }

    fn signal_samples(
        &self,
        since: Option<i64>,
        after: Option<&crate::SignalCursor>,
        limit: usize,
    ) -> Result<Vec<crate::StoredSignalSample>, StoreError> {
        self.inner.signal_samples(since, after, limit)
    }

    fn asn_countries(&self) -> Result<Vec<crate::AsnCountry>, StoreError> {
        self.inner.asn_countries()
    }

    /// Drains the spool first (a measurement still spooled must be removed too), holding it so
    /// no insert slips in between; fails as unavailable while the inner store is down.
    fn redact(&self, id: &str, reason: &str, time: i64) -> Result<Option<crate::Redaction>, StoreError> {
        let mut pending = self.lock();
        if *pending {
            self.drain_locked(&mut pending)?;
        }
        self.inner.redact(id, reason, time)
    }

    fn redaction(&self, id: &str) -> Result<Option<crate::Redaction>, StoreError> {
        self.inner.redaction(id)
    }

    fn redactions(&self, before: Option<(i64, &str)>, limit: usize) -> Result<Vec<crate::Redaction>, StoreError> {
        self.inner.redactions(before, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use censorwatch_model::Status;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// An in-memory store that can be "down", or go down after some inserts.
    #[derive(Default)]
    struct Fake {
        records: Mutex<BTreeMap<String, Record>>,
        down: AtomicBool,
        /// When non-zero: inserts left before going down.
        fail_after: AtomicUsize,
        inserts: AtomicUsize,
    }

    impl Store for Fake {
        fn insert(&self, batch: &[Record]) -> Result<InsertReport, StoreError> {
            if self.fail_after.load(Ordering::SeqCst) == 1 {
                self.down.store(true, Ordering::SeqCst);
            }
            let _ = self
                .fail_after
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable {
                    url: "fake".into(),
                    message: "down".into(),
                });
            }
            self.inserts.fetch_add(1, Ordering::SeqCst);
            let mut records = self.records.lock().unwrap();
            let mut report = InsertReport::default();
            for r in batch {
                if records.contains_key(&r.id) {
                    report.duplicates += 1;
                } else {
                    records.insert(r.id.clone(), r.clone());
                    report.stored += 1;
                }
            }
            Ok(report)
        }
        fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
            Ok(self.records.lock().unwrap().get(id).cloned())
        }
        fn query(&self, _: &MeasurementQuery) -> Result<Page, StoreError> {
            unimplemented!()
        }
        fn count(&self) -> Result<u64, StoreError> {
            Ok(self.records.lock().unwrap().len() as u64)
        }
        fn redact(&self, id: &str, reason: &str, time: i64) -> Result<Option<crate::Redaction>, StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable {
                    url: "fake".into(),
                    message: "down".into(),
                });
            }
            Ok(self.records.lock().unwrap().remove(id).map(|_| crate::Redaction {
                id: id.into(),
                leaf_index: None,
                reason: reason.into(),
                time,
            }))
        }
    }

    fn record(id: &str, raw: &[u8]) -> Record {
        Record {
            id: id.into(),
            meta: RecordMeta {
                start_time: 1_700_000_000,
                probe_cc: "IR".into(),
                probe_asn: 1,
                probe_network_name: "n".into(),
                test_name: "web_connectivity".into(),
                input: Some("https://a.com/".into()),
                domain: Some("a.com".into()),
                report_id: None,
            },
            verdict: Verdict {
                status: Status::Ok,
                ..Verdict::inconclusive("x")
            },
            raw: raw.to_vec(),
            raw_zstd: None,
        }
    }

    fn batch(prefix: &str, n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                record(
                    &format!("{prefix}{i}"),
                    format!("raw {prefix}{i} \u{0}\u{ff}").as_bytes(),
                )
            })
            .collect()
    }

    #[test]
    fn passes_through_while_the_inner_store_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = SpoolingStore::open(Fake::default(), &dir.path().join("s/spool.jsonl")).unwrap();
        let b = batch("a", 3);
        assert_eq!(store.insert(&b).unwrap().stored, 3);
        assert_eq!(store.insert(&b).unwrap().duplicates, 3);
        assert_eq!(store.spooled_batches().unwrap(), 0);
        assert_eq!(std::fs::metadata(store.path()).unwrap().len(), 0);
        assert_eq!(store.get("a1").unwrap(), Some(b[1].clone()));
    }

    #[test]
    fn spools_while_down_and_drains_in_order_when_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SpoolingStore::open(Fake::default(), &dir.path().join("spool.jsonl")).unwrap();
        store.inner().down.store(true, Ordering::SeqCst);
        let first = batch("x", 4);
        let mut second = batch("x", 2); // same ids, different bytes: the first batch must win
        second[0].raw = b"later".to_vec();
        second.push(record("y", b"y"));
        assert_eq!(store.insert(&first).unwrap().stored, 4);
        assert_eq!(store.insert(&second).unwrap().stored, 3);
        assert_eq!(store.count().unwrap(), 0, "nothing reached the inner store");
        assert_eq!(store.spooled_batches().unwrap(), 2);
        // Still down: draining keeps everything.
        let r = store.drain().unwrap();
        assert_eq!((r.batches, r.remaining), (0, 2));

        store.inner().down.store(false, Ordering::SeqCst);
        let r = store.drain().unwrap();
        assert_eq!(
            r,
            DrainReport {
                batches: 2,
                report: InsertReport {
                    stored: 5,
                    duplicates: 2
                },
                remaining: 0
            }
        );
        assert_eq!(store.get("x0").unwrap(), Some(first[0].clone()), "order kept");
        assert_eq!(store.count().unwrap(), 5);
        assert_eq!(std::fs::metadata(store.path()).unwrap().len(), 0, "spool truncated");
        assert_eq!(
            store.drain().unwrap(),
            DrainReport::default(),
            "draining again does nothing"
        );
    }

    #[test]
    fn a_removal_drains_the_spool_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SpoolingStore::open(Fake::default(), &dir.path().join("spool.jsonl")).unwrap();
        store.inner.down.store(true, Ordering::SeqCst);
        store.insert(&batch("s", 3)).unwrap();
        assert!(matches!(
            store.redact("s1", "r", 1),
            Err(StoreError::Unavailable { .. })
        ));
        store.inner.down.store(false, Ordering::SeqCst);
        let removed = store
            .redact("s1", "r", 1)
            .unwrap()
            .expect("the spooled measurement is removed");
        assert_eq!(removed.id, "s1");
        assert_eq!(store.get("s1").unwrap(), None);
        assert!(store.get("s0").unwrap().is_some() && store.get("s2").unwrap().is_some());
        assert_eq!(store.redact("nope", "r", 1).unwrap(), None);
    }

    #[test]
    fn the_spool_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let b = batch("r", 10);
        {
            let store = SpoolingStore::open(Fake::default(), &path).unwrap();
            store.inner().down.store(true, Ordering::SeqCst);
            store.insert(&b).unwrap();
        } // "crash": the process and its in-memory inner store are gone
        // A torn append (no newline) after the acknowledged batch is ignored.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"records\": [{\"id\"")
            .unwrap();
        let store = SpoolingStore::open(Fake::default(), &path).unwrap();
        assert_eq!(store.spooled_batches().unwrap(), 1);
        assert_eq!(store.drain().unwrap().report.stored, 10);
        for r in &b {
            assert_eq!(store.get(&r.id).unwrap().as_ref(), Some(r), "byte-exact");
        }
    }

    #[test]
    fn going_down_mid_drain_keeps_the_rest_and_an_insert_drains_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SpoolingStore::open(Fake::default(), &dir.path().join("spool.jsonl")).unwrap();
        store.inner().down.store(true, Ordering::SeqCst);
        for k in 0..5 {
            store.insert(&batch(&format!("b{k}-"), 3)).unwrap();
        }
        store.inner().down.store(false, Ordering::SeqCst);
        store.inner().fail_after.store(3, Ordering::SeqCst); // two inserts succeed, then down
        let r = store.drain().unwrap();
        assert_eq!((r.batches, r.remaining, r.report.stored), (2, 3, 6));
        assert_eq!(store.spooled_batches().unwrap(), 3);

        store.inner().down.store(false, Ordering::SeqCst);
        // An insert while batches are spooled drains them first, then inserts.
        let report = store.insert(&batch("new-", 2)).unwrap();
        assert_eq!(report.stored, 2);
        assert_eq!(store.spooled_batches().unwrap(), 0);
        assert_eq!(store.count().unwrap(), 5 * 3 + 2);
        assert_eq!(store.inner().inserts.load(Ordering::SeqCst), 5 + 1);
    }

    #[test]
    fn errors_other_than_unavailable_are_not_spooled() {
        struct Broken;
        impl Store for Broken {
            fn insert(&self, _: &[Record]) -> Result<InsertReport, StoreError> {
                Err(StoreError::ClickHouse {
                    message: "bad query".into(),
                })
            }
            fn get(&self, _: &str) -> Result<Option<Record>, StoreError> {
                Ok(None)
            }
            fn query(&self, _: &MeasurementQuery) -> Result<Page, StoreError> {
                unimplemented!()
            }
            fn count(&self) -> Result<u64, StoreError> {
                Ok(0)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = SpoolingStore::open(Broken, &dir.path().join("spool.jsonl")).unwrap();
        assert!(matches!(
            store.insert(&batch("e", 1)),
            Err(StoreError::ClickHouse { .. })
        ));
        assert_eq!(store.spooled_batches().unwrap(), 0);
    }

    #[test]
    fn a_corrupt_spool_line_is_reported_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        std::fs::write(&path, b"not json\n").unwrap();
        let store = SpoolingStore::open(Fake::default(), &path).unwrap();
        match store.drain() {
            Err(StoreError::Corrupt { id, .. }) => assert!(id.ends_with("line 1"), "{id}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"not json\n", "left for a human");
    }
}
