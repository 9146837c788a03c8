//! censorwatch's storage: one [`Store`] trait, with an embedded SQLite backend (the default: one
//! file, zero setup) and a ClickHouse backend (when one machine is not enough).
//!
//! Every backend keeps the raw measurement byte-exact (zstd-compressed), the verdict, and the
//! metadata queries need; a measurement is identified by its OONI `measurement_uid`, or by a
//! content hash when it has none, and storing the same measurement twice stores it once.
//!
//! This crate knows nothing about HTTP and decides no verdicts: callers hand it
//! [`Record`]s (raw bytes + parsed measurement + verdict).
//!
//! With the `conformance` feature, `conformance` is the backend-agnostic test suite every
//! backend's tests run.

pub mod aggregate;
pub mod clickhouse;
pub mod compress;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod detection;
pub mod query;
pub mod record;
pub mod redaction;
pub mod signals;
pub mod spool;
pub mod sqlite;

pub use aggregate::{AggregateAxis, AggregateQuery, AggregateRow};
pub use clickhouse::ClickHouseStore;
pub use detection::{DetectionKind, DetectionQuery, ObservationCursor, ObservationRow, StoredDetection};
pub use query::{MeasurementQuery, Page};
pub use record::{Record, RecordMeta};
pub use redaction::Redaction;
pub use signals::{AsnCountry, SignalCursor, StoredSignalSample};
pub use sqlite::SqliteStore;

/// What one [`Store::insert`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertReport {
    /// Records newly stored.
    pub stored: u64,
    /// Records whose id was already stored (nothing changed).
    pub duplicates: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database is from a newer censorwatch.
    #[error(
        "the database schema is version {found}, newer than this censorwatch understands ({supported}); upgrade censorwatch"
    )]
    SchemaTooNew {
        /// Version found.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// A stored row could not be decoded.
    #[error("stored measurement {id} is corrupt: {message}")]
    Corrupt {
        /// Its id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A query argument is invalid (bad cursor, bad filter).
    #[error("invalid query: {0}")]
    BadQuery(String),
    /// Anything else from I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The store could not be reached at all (connection refused, DNS failure, timeout): the
    /// server is down or the address is wrong. Nothing was read or written; retrying later, or
    /// spooling the batch ([`spool::SpoolingStore`]), is safe.
    #[error(
        "the ClickHouse server at {url} is unavailable ({message}); start it (scripts/clickhouse-up on a \
         development machine) or fix the store URL, then retry: nothing was stored"
    )]
    Unavailable {
        /// The server's HTTP address.
        url: String,
        /// What the connection attempt said.
        message: String,
    },
    /// The ClickHouse server answered with an error (a bad query, a missing table, a server-side
    /// limit). Unlike [`StoreError::Unavailable`], retrying the same request will fail again.
    #[error("ClickHouse: {message}")]
    ClickHouse {
        /// The server's error (with its code) and what to do about it.
        message: String,
    },
    /// The store's address is not one censorwatch understands.
    #[error("invalid store URL {url:?}: {message}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong and the expected form.
        message: String,
    },
}

/// A measurement store. Every method is synchronous and thread-safe; async callers (the server)
/// run them on a blocking thread.
pub trait Store: Send + Sync {
    /// Stores a batch atomically (all or nothing) and durably: when this returns `Ok`, the
    /// records survive a crash. Records whose id is already stored are counted as duplicates and
    /// left unchanged.
    fn insert(&self, batch: &[Record]) -> Result<InsertReport, StoreError>;
    /// One measurement by id, with its raw bytes.
    fn get(&self, id: &str) -> Result<Option<Record>, StoreError>;
    /// Measurements matching `query`, newest first, one page at a time (raw bytes not loaded).
    fn query(&self, query: &MeasurementQuery) -> Result<Page, StoreError>;
    /// How many measurements are stored.
    fn count(&self) -> Result<u64, StoreError>;

    // The transparency log's bookkeeping (see `censorwatch-evidence`): the store keeps, beside
    // each measurement, the index of its leaf in the log. A measurement is "unlogged" until
    // [`Store::set_leaf_indexes`] gave it one. The defaults say the store keeps no such thing.

    /// Of `ids`, those stored without a leaf index (ids not stored are left out), in any order.
    fn unlogged_among(&self, ids: &[&str]) -> Result<Vec<String>, StoreError> {
        let _ = ids;
        Err(no_leaf_indexes())
    }

    /// How many stored measurements have no leaf index (0 lets a reconcile skip its scan).
    fn unlogged_count(&self) -> Result<u64, StoreError> {
        Err(no_leaf_indexes())
    }

    /// Up to `limit` stored measurements without a leaf index whose id is greater than `after`,
    /// in id order, raw bytes loaded.
    fn unlogged(&self, after: Option<&str>, limit: usize) -> Result<Vec<Record>, StoreError> {
        let _ = (after, limit);
        Err(no_leaf_indexes())
    }

    /// Records the leaf index of each (id, index), durably, all or nothing.
    fn set_leaf_indexes(&self, entries: &[(&str, u64)]) -> Result<(), StoreError> {
        let _ = entries;
        Err(no_leaf_indexes())
    }

    /// A stored measurement's leaf index (`None`: not stored, or not logged yet).
    fn leaf_index(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let _ = id;
        Err(no_leaf_indexes())
    }

    /// The highest leaf index recorded (`None` when none is), a redacted measurement's included.
    fn max_leaf_index(&self) -> Result<Option<u64>, StoreError> {
        Err(no_leaf_indexes())
    }

    /// Counts of the measurements matching `query` by status, grouped along its axes, sorted
    /// by them (see [`aggregate`] for the semantics). The default says the store cannot.
    fn aggregate(&self, query: &AggregateQuery) -> Result<Vec<AggregateRow>, StoreError> {
        let _ = query;
        Err(StoreError::BadQuery("this store cannot aggregate measurements".into()))
    }

    // Detection (see [`detection`]): what the detector reads, and the events and outages it
    // found. The defaults say the store keeps no such thing.

    /// Up to `limit` stored measurements with a domain, as detector inputs, in (start time, id)
    /// order: those with a start time ≥ `since` (when given) and after `after` (the last row of
    /// the previous page).
    fn observations(
        &self,
        since: Option<i64>,
        after: Option<&ObservationCursor>,
        limit: usize,
    ) -> Result<Vec<ObservationRow>, StoreError> {
        let _ = (since, after, limit);
        Err(detection::no_detections())
    }

    /// Stores `upserts` (replacing rows of the same kind and id) and removes the rows named in
    /// `removed`, all or nothing.
    fn put_detections(&self, upserts: &[StoredDetection], removed: &[(DetectionKind, &str)]) -> Result<(), StoreError> {
        let _ = (upserts, removed);
        Err(detection::no_detections())
    }

    /// Detections matching `query`, latest start first (then id, descending).
    fn detections(&self, query: &DetectionQuery) -> Result<Vec<StoredDetection>, StoreError> {
        let _ = query;
        Err(detection::no_detections())
    }

    /// One detection by kind and id.
    fn detection(&self, kind: DetectionKind, id: &str) -> Result<Option<StoredDetection>, StoreError> {
        let _ = (kind, id);
        Err(detection::no_detections())
    }

    /// The ids of every stored detection of `kind`, in any order.
    fn detection_ids(&self, kind: DetectionKind) -> Result<Vec<String>, StoreError> {
        let _ = kind;
        Err(detection::no_detections())
    }

    /// Makes the stored detections of the `kinds` named exactly `all`: upserts them
    /// and removes every other stored one of those kinds (a recomputation from scratch). `kinds`
    /// names the kinds replaced, so an empty result still clears them.
    fn replace_detections(&self, kinds: &[DetectionKind], all: &[StoredDetection]) -> Result<(), StoreError> {
        let keep: std::collections::HashSet<(DetectionKind, &str)> =
            all.iter().map(|d| (d.kind, d.id.as_str())).collect();
        let mut stale = Vec::new();
        for kind in kinds {
            for id in self.detection_ids(*kind)? {
                if !keep.contains(&(*kind, id.as_str())) {
                    stale.push((*kind, id));
                }
            }
        }
        let removed: Vec<(DetectionKind, &str)> = stale.iter().map(|(k, id)| (*k, id.as_str())).collect();
        self.put_detections(all, &removed)
    }

    // Outage signal samples (see [`signals`]). The defaults say the store keeps none.

    /// Stores `samples` (each checked with [`StoredSignalSample::validate`]; one bad sample
    /// stores none), replacing stored ones with the same (time, ASN, kind); returns how many
    /// were written.
    fn put_signal_samples(&self, samples: &[StoredSignalSample]) -> Result<u64, StoreError> {
        let _ = samples;
        Err(signals::no_signals())
    }

    /// Up to `limit` (at most [`signals::MAX_SIGNAL_PAGE`]) stored samples in (time, ASN, kind)
    /// order: those at or after `since` (when given) and after `after` (the last row of the
    /// previous page).
    fn signal_samples(
        &self,
        since: Option<i64>,
        after: Option<&SignalCursor>,
        limit: usize,
    ) -> Result<Vec<StoredSignalSample>, StoreError> {
        let _ = (since, after, limit);
        Err(signals::no_signals())
    }

    /// How many stored measurements each (probe_asn, probe_cc) pair has, sorted by ASN then
    /// country: where each network's probes are.
    fn asn_countries(&self) -> Result<Vec<AsnCountry>, StoreError> {
        Err(signals::no_signals())
    }

    // Redactions (see [`redaction`]). The defaults say the store cannot remove anything (and so
    // has removed nothing).

    /// Removes the stored measurement `id` for good — its row, raw bytes and leaf index — and
    /// records a [`Redaction`] with `reason` (checked by the caller with
    /// [`redaction::validate_reason`]) and `time` (Unix seconds). Idempotent: when `id` was
    /// redacted before, returns that record unchanged. `None` when `id` is neither stored nor
    /// redacted.
    fn redact(&self, id: &str, reason: &str, time: i64) -> Result<Option<Redaction>, StoreError> {
        let _ = (id, reason, time);
        Err(redaction::no_redactions())
    }

    /// The redaction of `id`, if it was removed.
    fn redaction(&self, id: &str) -> Result<Option<Redaction>, StoreError> {
        let _ = id;
        Ok(None)
    }

    /// Up to `limit` (at most [`redaction::MAX_REDACTION_PAGE`]) redactions, latest first (then
    /// id, descending), those before `before` (the (time, id) of the previous page's last one).
    fn redactions(&self, before: Option<(i64, &str)>, limit: usize) -> Result<Vec<Redaction>, StoreError> {
        let _ = (before, limit);
        Ok(Vec::new())
    }
}

fn no_leaf_indexes() -> StoreError {
    StoreError::BadQuery("this store keeps no transparency-log leaf indexes".into())
}
