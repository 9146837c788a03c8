//! Keeping the detector's results (blocking events and outages, from `censorwatch-detect`) in
//! the store, and up to date as measurements arrive.
//!
//! This module decides nothing about blocking: it moves values between the store and the
//! detector. [`recompute`] runs the batch detector over every stored measurement and replaces
//! the stored results (what `censorwatch events` and `censorwatch ingest` do);
//! [`Incremental`] holds a [`Detector`] seeded from the store, takes the observations of each
//! commit, and writes only the events and outages that changed; [`DetectionWorker`] runs one
//! on its own thread for the server, writing at most every
//! [`ServerConfig::detection_interval`](crate::ServerConfig::detection_interval) and once more
//! at shutdown.

use censorwatch_detect::{Cc, Config, Detector, Event, Observation, Outage, Refused, SignalKind, SignalSample};
use censorwatch_model::{Method, Status};
use censorwatch_store::{DetectionKind, ObservationCursor, ObservationRow, Record, Store, StoreError, StoredDetection};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Rows read per [`Store::observations`] call.
const PAGE: usize = 50_000;

/// The detector's input for a stored measurement (`None` for one without a domain or with an
/// unknown country).
pub fn observation_of_row(row: &ObservationRow) -> Option<Observation> {
    observation(
        &row.id,
        row.start_time,
        Some(&row.domain),
        &row.probe_cc,
        row.probe_asn,
        (row.status, row.method),
    )
}

/// The detector's input for a record about to be (or just) stored.
pub fn observation_of_record(record: &Record) -> Option<Observation> {
    let m = &record.meta;
    observation(
        &record.id,
        m.start_time,
        m.domain.as_deref(),
        &m.probe_cc,
        m.probe_asn,
        (record.verdict.status, record.verdict.method),
    )
}

fn observation(
    id: &str,
    time: i64,
    domain: Option<&str>,
    cc: &str,
    asn: u32,
    (status, method): (Status, Option<Method>),
) -> Option<Observation> {
    let domain = domain.filter(|d| !d.is_empty())?;
    // "ZZ" is OONI's "unknown country": no series to put it in.
    let cc = Cc::new(cc).filter(|c| c.as_str() != "ZZ")?;
    Some(Observation {
        time,
        domain: Arc::from(domain),
        cc,
        asn,
        status,
        method,
        id: Some(Arc::from(id)),
    })
}

/// Every stored measurement the detector can use, in time order.
pub fn load_observations(store: &dyn Store) -> Result<Vec<Observation>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<ObservationCursor> = None;
    loop {
        let page = store.observations(None, after.as_ref(), PAGE)?;
        let full = page.len() == PAGE;
        after = page.last().map(|r| (r.start_time, r.id.clone()));
        out.extend(page.iter().filter_map(observation_of_row));
        if !full {
            return Ok(out);
        }
    }
}

/// Every stored outage signal sample as detector input, in time order. A level signal (BGP
/// visibility, control reachability) is stored as the readings where it changed; each network's
/// readings become one sample per bin, the level's time-weighted mean over it
/// ([`censorwatch_detect::levels::bin_means`]). Samples of a kind or country this build does not
/// know are left out.
pub fn load_signal_samples(store: &dyn Store, config: &Config) -> Result<Vec<SignalSample>, StoreError> {
    // (network, kind) → (its country, its (time, value) readings).
    type Readings = (Cc, Vec<(i64, f64)>);
    let mut by_series: std::collections::BTreeMap<(u32, SignalKind), Readings> = Default::default();
    let mut after: Option<censorwatch_store::SignalCursor> = None;
    loop {
        let page = store.signal_samples(None, after.as_ref(), PAGE)?;
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        for s in &page {
            let kind = SignalKind::ALL.into_iter().find(|k| k.as_str() == s.kind);
            let (Some(kind), Some(cc)) = (kind, Cc::new(&s.cc)) else {
                continue;
            };
            let entry = by_series.entry((s.asn, kind)).or_insert_with(|| (cc, Vec::new()));
            // A network's country is the one of its latest reading.
            entry.0 = cc;
            entry.1.push((s.time, s.value));
        }
    }
    let mut out = Vec::new();
    for ((asn, kind), (cc, points)) in by_series {
        let readings = if kind.is_count() {
            points
        } else {
            censorwatch_detect::levels::bin_means(&points, config.bin)
        };
        out.extend(readings.into_iter().map(|(time, value)| SignalSample {
            time,
            cc,
            asn,
            kind,
            value,
        }));
    }
    out.sort_by_key(|s| (s.time, s.asn, s.kind));
    Ok(out)
}

/// Why detection results could not be computed or kept.
#[derive(Debug, thiserror::Error)]
pub enum DetectionError {
    /// Reading measurements or writing results failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The detector's settings are out of range.
    #[error("the detector's settings are invalid: {0}")]
    Config(#[from] censorwatch_detect::ConfigError),
    /// An event or outage could not be turned into JSON (a bug).
    #[error("cannot encode a detection as JSON ({0}); this is a censorwatch bug, please report it")]
    Encode(#[from] serde_json::Error),
}

/// An event as stored.
pub fn stored_event(event: &Event, updated: i64) -> Result<StoredDetection, serde_json::Error> {
    Ok(StoredDetection {
        kind: DetectionKind::Event,
        id: event.id.clone(),
        cc: event.cc.to_string(),
        domain: event.domain.clone(),
        platform: event.platform.to_string(),
        start: event.start,
        end: event.end,
        updated,
        body: serde_json::to_string(event)?,
    })
}

/// An outage as stored.
pub fn stored_outage(outage: &Outage, updated: i64) -> Result<StoredDetection, serde_json::Error> {
    Ok(StoredDetection {
        kind: DetectionKind::Outage,
        id: outage.id.clone(),
        cc: outage.cc.to_string(),
        domain: String::new(),
        platform: String::new(),
        start: outage.start,
        end: outage.end,
        updated,
        body: serde_json::to_string(outage)?,
    })
}

/// What [`recompute`] found.
#[derive(Debug, Clone)]
pub struct Recomputed {
    /// Blocking events, earliest first.
    pub events: Vec<Event>,
    /// Outages.
    pub outages: Vec<Outage>,
    /// Measurements read.
    pub observations: usize,
    /// Outage signal samples fed (per network and bin; see [`load_signal_samples`]).
    pub signal_samples: usize,
}

/// Runs the batch detector over every stored measurement and outage signal sample at `now` and
/// replaces the stored events and outages with its results.
pub fn recompute(store: &dyn Store, config: &Config, now: i64) -> Result<Recomputed, DetectionError> {
    let observations = load_observations(store)?;
    let signals = load_signal_samples(store, config)?;
    let report = censorwatch_detect::detect(&observations, &signals, config, now)?;
    let mut all = Vec::with_capacity(report.events.len() + report.outages.len());
    for e in &report.events {
        all.push(stored_event(e, now)?);
    }
    for o in &report.outages {
        all.push(stored_outage(o, now)?);
    }
    store.replace_detections(&[DetectionKind::Event, DetectionKind::Outage], &all)?;
    Ok(Recomputed {
        events: report.events,
        outages: report.outages,
        observations: observations.len(),
        signal_samples: signals.len(),
    })
}

/// A measurement id's hash, for duplicate detection within the lateness window.
fn id_hash(id: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// What one [`Incremental::flush`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Events and outages stored (new or changed).
    pub upserted: usize,
    /// Events and outages removed (their id changed or they vanished).
    pub removed: usize,
}

/// A detector kept up to date measurement by measurement, writing what changed to the store.
///
/// A measurement stored twice (a probe resending) must count once, but the committer cannot
/// tell a new record from a duplicate; so the ids observed are remembered (as 64-bit hashes)
/// for as long as the detector would accept them, the lateness window, and forgotten after: an
/// older resend is refused by the detector as too late anyway.
pub struct Incremental {
    detector: Detector,
    seen: HashMap<u64, i64>,
    prune_at: usize,
    /// (kind, id) → the JSON body last written.
    written: HashMap<(DetectionKind, String), String>,
    dirty: bool,
    refused: u64,
    /// Of `refused`, those refused as older than the lateness window.
    late: u64,
}

impl Incremental {
    /// A detector fed every stored measurement, aware of the detections already stored (so
    /// that the first [`Incremental::flush`] removes the stale ones).
    pub fn seed(store: &dyn Store, config: Config, now: i64) -> Result<Incremental, DetectionError> {
        let mut inc = Incremental {
            detector: Detector::new(config)?,
            seen: HashMap::new(),
            prune_at: 1 << 16,
            written: HashMap::new(),
            dirty: true,
            refused: 0,
            late: 0,
        };
        for kind in [DetectionKind::Event, DetectionKind::Outage] {
            for id in store.detection_ids(kind)? {
                inc.written.insert((kind, id), String::new());
            }
        }
        // In time order (measurements and signal samples merged) and before the clock is set,
        // so that none is refused as late.
        let observations = load_observations(store)?;
        let signals = load_signal_samples(store, inc.detector.config())?;
        let mut fed = 0;
        for sample in &signals {
            let upto = fed + observations[fed..].partition_point(|o| o.time <= sample.time);
            inc.observe(&observations[fed..upto]);
            fed = upto;
            if inc.detector.observe_signal(sample).is_err() {
                inc.refused += 1;
            }
        }
        inc.observe(&observations[fed..]);
        inc.detector.refresh(now);
        Ok(inc)
    }

    /// Counts new observations (duplicates of ones already counted are skipped).
    pub fn observe(&mut self, observations: &[Observation]) {
        let lateness = self.detector.config().lateness;
        for o in observations {
            let key = o.id.as_deref().map(id_hash);
            if let Some(k) = key
                && self.seen.contains_key(&k)
            {
                continue;
            }
            match self.detector.observe(o) {
                Ok(()) => {
                    self.dirty = true;
                    if let Some(k) = key {
                        self.seen.insert(k, o.time);
                    }
                }
                Err(refused) => {
                    self.refused += 1;
                    if matches!(refused, Refused::TooLate { .. }) {
                        self.late += 1;
                    }
                }
            }
        }
        if self.seen.len() >= self.prune_at {
            let newest = self.seen.values().copied().max().unwrap_or(i64::MIN);
            let horizon = newest.saturating_sub(lateness);
            self.seen.retain(|_, t| *t >= horizon);
            self.prune_at = (self.seen.len() * 2).max(1 << 16);
        }
    }

    /// Observations refused by the detector (too late, from the future, out of range).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Observations refused as older than the lateness window (a probe uploading a backlog, a
    /// collector that was offline): only seeding again from the store counts them.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Whether observations arrived since the last flush.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The current events at `now`.
    pub fn events(&mut self, now: i64) -> Vec<Event> {
        self.detector.events(now)
    }

    /// Brings the results up to `now` and writes the events and outages that changed (and
    /// removes the ones gone) in one store call.
    pub fn flush(&mut self, store: &dyn Store, now: i64) -> Result<Flushed, DetectionError> {
        let mut current: HashMap<(DetectionKind, String), StoredDetection> = HashMap::new();
        for e in self.detector.events(now) {
            let d = stored_event(&e, now)?;
            current.insert((d.kind, d.id.clone()), d);
        }
        for o in self.detector.outages(now) {
            let d = stored_outage(&o, now)?;
            current.insert((d.kind, d.id.clone()), d);
        }
        let upserts: Vec<StoredDetection> = current
            .iter()
            .filter(|(key, d)| self.written.get(*key) != Some(&d.body))
            .map(|(_, d)| d.clone())
            .collect();
        let removed: Vec<(DetectionKind, &str)> = self
            .written
            .keys()
            .filter(|key| !current.contains_key(*key))
            .map(|(kind, id)| (*kind, id.as_str()))
            .collect();
        let flushed = Flushed {
            upserted: upserts.len(),
            removed: removed.len(),
        };
        store.put_detections(&upserts, &removed)?;
        self.written = current.into_iter().map(|(key, d)| (key, d.body)).collect();
        self.dirty = false;
        Ok(flushed)
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The server's detection thread: seeded from the store when started, fed each commit's
/// stored records, writing changed events and outages at most every `interval` and at
/// shutdown ([`DetectionWorker::close`]). Measurements older than the detector's lateness
/// window (it refuses them, so that past results can settle) are stored all the same; when some
/// arrive, the worker seeds itself again from the store, at most once per
/// [`LATE_RESEED_INTERVALS`] intervals (10 minutes at the server's 5 s), so that they count.
pub struct DetectionWorker {
    feed: mpsc::Sender<Fed>,
    thread: JoinHandle<()>,
}

impl DetectionWorker {
    /// Starts the thread (the seeding runs on it, so this returns at once).
    pub fn start(store: Arc<dyn Store>, config: Config, interval: Duration) -> DetectionWorker {
        let (feed, rx) = mpsc::channel::<Fed>();
        let thread = std::thread::Builder::new()
            .name("censorwatch-detect".into())
            .spawn(move || run_worker(store, config, interval, rx))
            .expect("spawning a thread");
        DetectionWorker { feed, thread }
    }

    /// A handle the committer sends each commit's stored records through.
    pub fn feed(&self) -> DetectionFeed {
        DetectionFeed(self.feed.clone())
    }

    /// Stops the thread after a last write; every [`DetectionFeed`] must be dropped first (the
    /// committer's is, when it closes), else this waits for them.
    pub fn close(self) {
        drop(self.feed);
        let _ = self.thread.join();
    }
}

/// After measurements were refused as late, the worker seeds itself again from the store once
/// this many flush intervals have passed since it last did (a seed reads every stored
/// measurement: seconds at a million, so not on every late upload).
pub const LATE_RESEED_INTERVALS: u32 = 120;

/// What the worker is sent.
enum Fed {
    /// A commit's observations.
    Observations(Vec<Observation>),
    /// Measurements were removed (redacted): start over from what the store holds now.
    Reseed,
}

/// Sends stored records to a [`DetectionWorker`].
#[derive(Clone)]
pub struct DetectionFeed(mpsc::Sender<Fed>);

impl DetectionFeed {
    /// Queues the observations of `records` (never blocks; a stopped worker is ignored).
    pub fn send(&self, records: &[Record]) {
        let observations: Vec<Observation> = records.iter().filter_map(observation_of_record).collect();
        if !observations.is_empty() {
            let _ = self.0.send(Fed::Observations(observations));
        }
    }

    /// Has the worker seed its detector again from the store (after measurements were removed,
    /// which an incremental detector cannot take back), then write what changed.
    pub fn reseed(&self) {
        let _ = self.0.send(Fed::Reseed);
    }
}

fn run_worker(store: Arc<dyn Store>, config: Config, interval: Duration, rx: mpsc::Receiver<Fed>) {
    let mut inc = match Incremental::seed(store.as_ref(), config.clone(), unix_now()) {
        Ok(inc) => inc,
        Err(e) => {
            eprintln!(
                "censorwatch: events and outages will not be updated: reading the stored measurements failed ({e}); \
                 run `censorwatch events` once the store is healthy, and restart the server"
            );
            // Keep draining so senders never pile up memory.
            while rx.recv().is_ok() {}
            return;
        }
    };
    let flush = |inc: &mut Incremental| {
        if let Err(e) = inc.flush(store.as_ref(), unix_now()) {
            eprintln!("censorwatch: storing events and outages failed: {e}; retrying at the next update");
        }
    };
    flush(&mut inc);
    // Outages also change with the clock alone (a network falls silent): results are brought
    // up to date at least this often even without new measurements.
    let idle_refresh = interval.max(Duration::from_secs(60));
    let mut last_flush = Instant::now();
    let mut next = Instant::now() + interval;
    let late_reseed_after = interval * LATE_RESEED_INTERVALS;
    let mut last_seed = Instant::now();
    let mut late_waiting = false;
    let reseed = |inc: &mut Incremental, why: &str| match Incremental::seed(store.as_ref(), config.clone(), unix_now())
    {
        Ok(fresh) => {
            *inc = fresh;
            // Written at once: a removed measurement must not linger in the results.
            flush(inc);
        }
        Err(e) => eprintln!(
            "censorwatch: re-reading the measurements {why} failed ({e}); the events may be out of date until the \
             next restart or `censorwatch events`"
        ),
    };
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Fed::Observations(batch)) => {
                let late = inc.late();
                inc.observe(&batch);
                late_waiting |= inc.late() > late;
            }
            Ok(Fed::Reseed) => {
                reseed(&mut inc, "after a removal");
                last_flush = Instant::now();
                last_seed = Instant::now();
                late_waiting = false;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next {
            if late_waiting && last_seed.elapsed() >= late_reseed_after {
                reseed(&mut inc, "to count late measurements");
                last_flush = Instant::now();
                last_seed = Instant::now();
                late_waiting = false;
            } else if inc.is_dirty() || last_flush.elapsed() >= idle_refresh {
                flush(&mut inc);
                last_flush = Instant::now();
            }
            next = Instant::now() + interval;
        }
    }
    flush(&mut inc);
}

#[cfg(test)]
mod tests {
    use super::*;
    use censorwatch_store::{DetectionQuery, SqliteStore};

    const T0: i64 = 1_708_041_600;

    /// A block of x.com on AS1 of PK from hour 10 of 30, four measurements an hour.
    fn timeline(prefix: &str) -> Vec<Observation> {
        let mut out = Vec::new();
        for hour in 0..30 {
            for q in 0..4 {
                let blocked = hour >= 10;
                out.push(Observation {
                    time: T0 + hour * 3600 + q * 900,
                    domain: Arc::from("x.com"),
                    cc: Cc::new("PK").unwrap(),
                    asn: 1,
                    status: if blocked { Status::Blocked } else { Status::Ok },
                    method: blocked.then_some(Method::TlsReset),
                    id: Some(Arc::from(format!("{prefix}{hour}-{q}"))),
                });
            }
        }
        out
    }

    fn events(store: &dyn Store) -> Vec<StoredDetection> {
        store.detections(&DetectionQuery::all(DetectionKind::Event)).unwrap()
    }

    #[test]
    fn writes_only_what_changed_and_counts_a_resend_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("d.db")).unwrap();
        // A stale event from an earlier run: the first flush removes it.
        let stale = StoredDetection {
            kind: DetectionKind::Event,
            id: "PK-stale-1".into(),
            cc: "PK".into(),
            domain: "stale.com".into(),
            platform: "stale.com".into(),
            start: 1,
            end: None,
            updated: 1,
            body: "{}".into(),
        };
        store.put_detections(&[stale], &[]).unwrap();
        let now = T0 + 30 * 3600;
        let mut inc = Incremental::seed(&store, Config::default(), now).unwrap();
        let obs = timeline("a");
        inc.observe(&obs);
        assert_eq!(
            inc.flush(&store, now).unwrap(),
            Flushed {
                upserted: 1,
                removed: 1
            }
        );
        let stored = events(&store);
        assert_eq!(stored.len(), 1);
        let event: Event = serde_json::from_str(&stored[0].body).unwrap();
        assert_eq!((event.start, event.cc.as_str()), (T0 + 10 * 3600, "PK"));
        assert_eq!(event.measurements, 20 * 4);

        // Nothing new: nothing written. A resend of the same ids changes nothing either.
        assert!(!inc.is_dirty());
        assert_eq!(inc.flush(&store, now).unwrap(), Flushed::default());
        inc.observe(&obs);
        assert!(!inc.is_dirty(), "duplicates are skipped");
        assert_eq!(inc.events(now)[0].measurements, 20 * 4);

        // New measurements within the window update the event in place.
        let more: Vec<Observation> = timeline("b").into_iter().filter(|o| o.time >= T0 + 25 * 3600).collect();
        inc.observe(&more);
        assert!(inc.is_dirty());
        assert_eq!(
            inc.flush(&store, now).unwrap(),
            Flushed {
                upserted: 1,
                removed: 0
            }
        );
        let event: Event = serde_json::from_str(&events(&store)[0].body).unwrap();
        assert_eq!(event.measurements, 20 * 4 + 5 * 4);
    }

    /// [`timeline`] as stored records of `domain`, its hour 0 at `start`.
    fn stored_timeline(prefix: &str, start: i64, domain: &str) -> Vec<Record> {
        timeline(prefix)
            .into_iter()
            .map(|o| {
                let mut verdict = censorwatch_model::Verdict::inconclusive("synthetic");
                verdict.status = o.status;
                verdict.method = o.method;
                Record {
                    id: o.id.as_deref().unwrap().to_owned(),
                    meta: censorwatch_store::RecordMeta {
                        start_time: start + (o.time - T0),
                        probe_cc: "PK".into(),
                        probe_asn: o.asn,
                        probe_network_name: String::new(),
                        test_name: "web_connectivity".into(),
                        input: Some(format!("https://{domain}/")),
                        domain: Some(domain.into()),
                        report_id: None,
                    },
                    verdict,
                    raw: b"{}".to_vec(),
                    raw_zstd: None,
                }
            })
            .collect()
    }

    /// Measurements older than the lateness window, refused by the running detector, still
    /// count once the worker has seeded itself again: a block found only in a late upload.
    #[test]
    fn late_measurements_count_after_a_reseed() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("d.db")).unwrap());
        let recent = unix_now() / 86_400 * 86_400 - 2 * 86_400;
        store.insert(&stored_timeline("recent", recent, "x.com")).unwrap();
        let interval = Duration::from_millis(10);
        let worker = DetectionWorker::start(Arc::clone(&store), Config::default(), interval);
        let domains = || -> Vec<String> {
            let mut d: Vec<String> = events(store.as_ref()).into_iter().map(|e| e.domain).collect();
            d.sort();
            d
        };
        let wait_for = |want: &[&str]| {
            for _ in 0..1000 {
                if domains() == want {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("the stored events never were {want:?}: {:?}", domains());
        };
        wait_for(&["x.com"]);
        // A probe uploads a backlog: a block of facebook.com ten days ago, stored and fed to the
        // worker the way the collector's committer does. The detector refuses it as too late.
        let backlog = stored_timeline("old", recent - 10 * 86_400, "facebook.com");
        let observations: Vec<Observation> = backlog.iter().filter_map(observation_of_record).collect();
        let mut running = Incremental::seed(store.as_ref(), Config::default(), unix_now()).unwrap();
        running.observe(&observations);
        assert_eq!(running.late(), backlog.len() as u64, "all refused as late");
        assert!(running.events(unix_now()).iter().all(|e| e.domain == "x.com"));
        store.insert(&backlog).unwrap();
        worker.feed().send(&backlog);
        wait_for(&["facebook.com", "x.com"]);
        worker.close();
    }

    /// The server's worker, told that measurements were removed, starts over from the store:
    /// the removed ones no longer count in the stored event.
    #[test]
    fn a_reseed_after_a_removal_drops_the_removed_measurements() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("d.db")).unwrap());
        let start = unix_now() / 86_400 * 86_400 - 2 * 86_400;
        let records = stored_timeline("r", start, "x.com");
        store.insert(&records).unwrap();
        let worker = DetectionWorker::start(Arc::clone(&store), Config::default(), Duration::from_millis(10));
        let counted = |want: Option<u64>| {
            for _ in 0..500 {
                let events = events(store.as_ref());
                if let Some(e) = events.first() {
                    let event: Event = serde_json::from_str(&e.body).unwrap();
                    if want.is_none_or(|w| event.measurements == w) {
                        return event.measurements;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!(
                "the event never counted {want:?} measurements: {:?}",
                events(store.as_ref())
            );
        };
        let before = counted(None);
        assert!(before >= 70, "{before}");
        // Remove five blocked hours' measurements from the middle of the event, then say so.
        for hour in 15..20 {
            for q in 0..4 {
                store.redact(&format!("r{hour}-{q}"), "test", 1).unwrap().unwrap();
            }
        }
        worker.feed().reseed();
        counted(Some(before - 20));
        worker.close();
    }

    #[test]
    fn rows_and_records_become_observations() {
        let row = ObservationRow {
            id: "m1".into(),
            start_time: T0,
            domain: "x.com".into(),
            probe_cc: "PK".into(),
            probe_asn: 17557,
            status: Status::Blocked,
            method: Some(Method::TlsReset),
        };
        let o = observation_of_row(&row).unwrap();
        assert_eq!((o.time, &*o.domain, o.cc.as_str(), o.asn), (T0, "x.com", "PK", 17557));
        assert_eq!(
            (o.status, o.method, o.id.as_deref()),
            (Status::Blocked, Some(Method::TlsReset), Some("m1"))
        );
        for (cc, domain) in [("ZZ", "x.com"), ("P1", "x.com"), ("PK", "")] {
            let bad = ObservationRow {
                probe_cc: cc.into(),
                domain: domain.into(),
                ..row.clone()
            };
            assert!(observation_of_row(&bad).is_none(), "{cc} {domain:?}");
        }
    }
}
