//! The embedded SQLite backend: one file in WAL mode, `synchronous=FULL` (an acknowledged insert
//! survives a crash or power loss), schema versioned with `PRAGMA user_version` and migrated on
//! open.
//!
//! # Concurrency
//!
//! A [`SqliteStore`] holds two connections to the file, each behind its own [`Mutex`]:
//!
//! - the **writer**, used by [`Store::insert`]: inserts from many threads are serialized by the
//!   mutex (SQLite allows one writer at a time anyway), and each batch runs in a
//!   `BEGIN IMMEDIATE` transaction so that other *processes* (or other `SqliteStore`s on the same
//!   file) wait on the busy timeout instead of failing with a lock upgrade deadlock;
//! - the **reader**, used by [`Store::get`], [`Store::query`] and [`Store::count`]: in WAL mode it
//!   reads the last committed state without waiting for a writer in progress.
//!
//! Zstd compression happens before the writer lock is taken, so threads compress in parallel.
//! This is deliberately simple; a pool of readers can replace the single reader later without
//! changing the API.

use crate::aggregate::{AggregateAxis, AggregateQuery, AggregateRow, MAX_AXES, bin_start};
use crate::compress;
use crate::detection::{DetectionKind, DetectionQuery, ObservationCursor, ObservationRow, StoredDetection};
use crate::query::Cursor;
use crate::record::RecordMeta;
use crate::{InsertReport, MeasurementQuery, Page, Record, Store, StoreError};
use censorwatch_model::Verdict;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The schema migrations, in order: `MIGRATIONS[i]` takes a database from `user_version` `i` to
/// `i + 1`, in one transaction. Append only; never edit a shipped step.
const MIGRATIONS: &[&str] = &[
    // v1: the measurements table and its indexes.
    include_str!("sqlite/schema.sql"),
    // v2: the transparency log's leaf index per measurement.
    include_str!("sqlite/v2_leaf_index.sql"),
    // v3: detected events and outages.
    include_str!("sqlite/v3_detections.sql"),
    // v4: a covering index for aggregation.
    include_str!("sqlite/v4_aggregate_index.sql"),
    // v5: outage signal samples (BGP visibility per network).
    include_str!("sqlite/v5_signal_samples.sql"),
    // v6: redactions (removed measurements), and the trigger that keeps them removed.
    crate::redaction::sqlite::REDACTIONS_V6,
];

/// Ids per `IN (…)` list (SQLite's bound-parameter limit is 32 766 since 3.32).
const IN_CHUNK: usize = 500;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a connection waits for another writer (another process on the same file) before
/// giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The page size of a new database file. 16 KiB rather than SQLite's 4 KiB: a measurement's
/// compressed raw bytes (about 6 KB on average on the OONI corpus) then mostly fit in the row's
/// own page instead of a chain of overflow pages, and a bulk ingest writes fewer, larger pages
/// (measured with `cargo bench -p censorwatch --bench ingest_stages`: the insert stage went from
/// 27.7 to 19.2 µs per measurement).
const PAGE_SIZE: i64 = 16_384;

/// The writer's page cache, in KiB (SQLite's `cache_size` takes a negative number for KiB):
/// every insert updates five b-trees (the table, its primary key and four indexes) at places
/// spread over the file, and with SQLite's default 2 MiB a large database reads most of their
/// pages back from the OS on each batch.
const WRITER_CACHE_KIB: i64 = -65_536;

/// The columns a [`Record`] is read from, without the raw bytes (see [`read_record`]).
const RECORD_COLUMNS: &str =
    "id, start_time, probe_cc, probe_asn, probe_network_name, test_name, input, domain, report_id, verdict_json";

const INSERT_SQL: &str = "INSERT INTO measurements (id, start_time, probe_cc, probe_asn, probe_network_name, \
     test_name, input, domain, report_id, status, method, confidence, blockpage, ooni_blocking, accessible, \
     verdict_json, raw_zstd, raw_len) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
     ON CONFLICT(id) DO NOTHING";

/// The embedded store: one SQLite file in WAL mode. Thread-safe; see the module docs for how
/// connections are shared.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its parent directories if missing and
    /// migrating the schema to [`SCHEMA_VERSION`]. A database written by a newer censorwatch is
    /// refused with [`StoreError::SchemaTooNew`].
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot create the directory {} for the database: {e}", parent.display()),
                )
            })?;
        }
        let mut writer = connect(path)?;
        // Refuse a newer database before touching it (switching to WAL writes to the file).
        check_version(&writer)?;
        // WAL is a property of the file: set once, by the writer, before the migrations.
        // Set before the file's first write (a no-op on an existing database, which keeps its
        // page size): see PAGE_SIZE.
        writer.pragma_update(None, "page_size", PAGE_SIZE)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io(std::io::Error::other(format!(
                "{} cannot be switched to WAL mode (it stays in {mode:?} mode); put the database on a local \
                 file system",
                path.display()
            ))));
        }
        migrate(&mut writer)?;
        writer.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        let reader = connect(path)?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens one connection with the per-connection settings.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        StoreError::Io(std::io::Error::other(format!(
            "cannot open the database {} ({e}); check that the path is a writable file, not a directory",
            path.display()
        )))
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Fails with [`StoreError::SchemaTooNew`] when the file is from a newer censorwatch.
fn check_version(conn: &Connection) -> Result<u32, StoreError> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// Applies the pending migrations, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        // IMMEDIATE: two processes opening a fresh file at once must not both run step 1.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = check_version(&tx)?;
        let Some(step) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
    }
}

/// Locks a connection. A panic in another thread while holding it cannot leave a transaction
/// open (rusqlite rolls back on drop), so a poisoned lock is safe to reuse.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A record turned into column values (done outside the writer lock).
struct Encoded<'a> {
    record: &'a Record,
    verdict_json: String,
    ooni_blocking: Option<String>,
    raw_zstd: Cow<'a, [u8]>,
}

fn encode(record: &Record) -> Result<Encoded<'_>, StoreError> {
    let cannot = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt {
        id: record.id.clone(),
        message: format!("cannot encode its {what} for storage ({e}); this is a censorwatch bug, please report it"),
    };
    let verdict_json = serde_json::to_string(&record.verdict).map_err(|e| cannot("verdict", &e))?;
    let ooni_blocking = match &record.verdict.ooni_blocking {
        Some(b) => Some(serde_json::to_string(b).map_err(|e| cannot("ooni_blocking", &e))?),
        None => None,
    };
    let raw_zstd = match &record.raw_zstd {
        Some(packed) => Cow::Borrowed(packed.as_slice()),
        None => Cow::Owned(compress::compress(&record.raw).map_err(|e| cannot("raw bytes", &e))?),
    };
    Ok(Encoded {
        record,
        verdict_json,
        ooni_blocking,
        raw_zstd,
    })
}

/// Reads the [`RECORD_COLUMNS`] of a row, starting at column 0 (raw bytes left empty).
fn read_record(row: &Row<'_>) -> Result<Record, StoreError> {
    let id: String = row.get(0)?;
    let asn: i64 = row.get(3)?;
    let probe_asn = u32::try_from(asn).map_err(|_| StoreError::Corrupt {
        id: id.clone(),
        message: format!("probe_asn {asn} is out of range"),
    })?;
    let verdict_json: String = row.get(9)?;
    let verdict: Verdict = serde_json::from_str(&verdict_json).map_err(|e| StoreError::Corrupt {
        id: id.clone(),
        message: format!("its verdict_json does not parse: {e}"),
    })?;
    Ok(Record {
        meta: RecordMeta {
            start_time: row.get(1)?,
            probe_cc: row.get(2)?,
            probe_asn,
            probe_network_name: row.get(4)?,
            test_name: row.get(5)?,
            input: row.get(6)?,
            domain: row.get(7)?,
            report_id: row.get(8)?,
        },
        id,
        verdict,
        raw: Vec::new(),
        raw_zstd: None,
    })
}

impl Store for SqliteStore {
    fn insert(&self, batch: &[Record]) -> Result<InsertReport, StoreError> {
        let mut report = InsertReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        let rows = batch.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        let mut conn = lock(&self.writer);
        // Dropping `tx` on any error below rolls the whole batch back.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(INSERT_SQL)?;
            for row in &rows {
                let (r, m, v) = (row.record, &row.record.meta, &row.record.verdict);
                let changed = stmt.execute(params![
                    r.id,
                    m.start_time,
                    m.probe_cc,
                    i64::from(m.probe_asn),
                    m.probe_network_name,
                    m.test_name,
                    m.input,
                    m.domain,
                    m.report_id,
                    v.status.as_str(),
                    v.method.map(|x| x.as_str()),
                    v.confidence,
                    v.blockpage,
                    row.ooni_blocking,
                    v.accessible,
                    row.verdict_json,
                    &*row.raw_zstd,
                    r.raw.len() as i64,
                ])?;
                match changed {
                    0 => report.duplicates += 1,
                    _ => report.stored += 1,
                }
            }
        }
        tx.commit()?;
        Ok(report)
    }

    fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS}, raw_zstd, raw_len FROM measurements WHERE id = ?1"
        ))?;
        let row = stmt
            .query_row([id], |row| {
                let compressed: Vec<u8> = row.get(10)?;
                let raw_len: i64 = row.get(11)?;
                Ok((read_record(row), compressed, raw_len))
            })
            .optional()?;
        let Some((record, compressed, raw_len)) = row else {
            return Ok(None);
        };
        let mut record = record?;
        let len = u64::try_from(raw_len).map_err(|_| StoreError::Corrupt {
            id: id.to_owned(),
            message: format!("raw_len {raw_len} is invalid"),
        })?;
        let raw = compress::decompress(id, &compressed, len)?;
        record.raw = raw;
        Ok(Some(record))
    }

    fn query(&self, query: &MeasurementQuery) -> Result<Page, StoreError> {
        // Only fixed SQL fragments are appended; every value is a bound parameter.
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM measurements WHERE 1");
        let mut values: Vec<Value> = Vec::new();
        let mut filter = |clause: &str, vals: Vec<Value>| {
            sql.push_str(" AND ");
            sql.push_str(clause);
            values.extend(vals);
        };
        if let Some(cc) = &query.probe_cc {
            filter("probe_cc = ?", vec![Value::Text(cc.clone())]);
        }
        if let Some(asn) = query.probe_asn {
            filter("probe_asn = ?", vec![Value::Integer(asn.into())]);
        }
        if let Some(domain) = &query.domain {
            filter("domain = ?", vec![Value::Text(domain.clone())]);
        }
        if let Some(since) = query.since {
            filter("start_time >= ?", vec![Value::Integer(since)]);
        }
        if let Some(until) = query.until {
            filter("start_time < ?", vec![Value::Integer(until)]);
        }
        if let Some(status) = query.status {
            filter("status = ?", vec![Value::Text(status.as_str().to_owned())]);
        }
        if let Some(method) = query.method {
            filter("method = ?", vec![Value::Text(method.as_str().to_owned())]);
        }
        if let Some(test_name) = &query.test_name {
            filter("test_name = ?", vec![Value::Text(test_name.clone())]);
        }
        if let Some(Cursor { start_time, id }) = &query.cursor {
            filter(
                "(start_time, id) < (?, ?)",
                vec![Value::Integer(*start_time), Value::Text(id.clone())],
            );
        }
        let limit = query.effective_limit() as usize;
        sql.push_str(" ORDER BY start_time DESC, id DESC LIMIT ?");
        values.push(Value::Integer(limit as i64 + 1));

        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let mut results = Vec::with_capacity(limit.min(128));
        let mut more = false;
        while let Some(row) = rows.next()? {
            if results.len() == limit {
                more = true;
                break;
            }
            results.push(read_record(row)?);
        }
        Ok(Page::from_results(results, more))
    }

    fn count(&self) -> Result<u64, StoreError> {
        let conn = lock(&self.reader);
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM measurements", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn unlogged_among(&self, ids: &[&str]) -> Result<Vec<String>, StoreError> {
        let conn = lock(&self.reader);
        let mut out = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT m.id FROM measurements m WHERE m.id IN ({marks}) \
                 AND NOT EXISTS (SELECT 1 FROM measurement_leaves l WHERE l.id = m.id)"
            ))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(chunk.iter()), |r| r.get::<_, String>(0))?;
            for id in rows {
                out.push(id?);
            }
        }
        Ok(out)
    }

    fn unlogged_count(&self) -> Result<u64, StoreError> {
        let conn = lock(&self.reader);
        let (stored, logged): (i64, i64) = conn.query_row(
            "SELECT (SELECT COUNT(*) FROM measurements), (SELECT COUNT(*) FROM measurement_leaves)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(u64::try_from(stored - logged).unwrap_or(0))
    }

    fn unlogged(&self, after: Option<&str>, limit: usize) -> Result<Vec<Record>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS}, raw_zstd, raw_len FROM measurements m \
             WHERE m.id > ?1 AND NOT EXISTS (SELECT 1 FROM measurement_leaves l WHERE l.id = m.id) \
             ORDER BY m.id LIMIT ?2"
        ))?;
        let mut rows = stmt.query(params![after.unwrap_or(""), limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut record = read_record(row)?;
            let compressed: Vec<u8> = row.get(10)?;
            let raw_len: i64 = row.get(11)?;
            let len = u64::try_from(raw_len).map_err(|_| StoreError::Corrupt {
                id: record.id.clone(),
                message: format!("raw_len {raw_len} is invalid"),
            })?;
            record.raw = compress::decompress(&record.id, &compressed, len)?;
            out.push(record);
        }
        Ok(out)
    }

    fn set_leaf_indexes(&self, entries: &[(&str, u64)]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO measurement_leaves (leaf_index, id) VALUES (?1, ?2)")?;
            for (id, index) in entries {
                let index = i64::try_from(*index)
                    .map_err(|_| StoreError::BadQuery(format!("leaf index {index} is too large")))?;
                stmt.execute(params![index, id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn leaf_index(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached("SELECT leaf_index FROM measurement_leaves WHERE id = ?1")?;
        let index: Option<i64> = stmt.query_row([id], |r| r.get(0)).optional()?;
        Ok(index.and_then(|i| u64::try_from(i).ok()))
    }

    fn max_leaf_index(&self) -> Result<Option<u64>, StoreError> {
        let conn = lock(&self.reader);
        let max: Option<i64> = conn.query_row("SELECT max(leaf_index) FROM measurement_leaves", [], |r| r.get(0))?;
        // A redacted measurement's leaf stays in the log: it still counts.
        let max = max.max(crate::redaction::sqlite::max_leaf_index(&conn)?);
        Ok(max.and_then(|i| u64::try_from(i).ok()))
    }

    fn aggregate(&self, query: &AggregateQuery) -> Result<Vec<AggregateRow>, StoreError> {
        query.validate()?;
        let (sql, values) = aggregate_sql(query);
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let corrupt = |message: String| StoreError::Corrupt {
            id: "(aggregate)".into(),
            message,
        };
        // Text axis values are interned per axis: a group key is two integers (NULL = -1).
        let mut interned: [Vec<String>; MAX_AXES] = Default::default();
        let mut intern_ids: [HashMap<Box<[u8]>, i64>; MAX_AXES] = Default::default();
        let mut groups: HashMap<[i64; MAX_AXES], [u64; 4]> = HashMap::new();
        let n = query.axes.len();
        while let Some(row) = rows.next()? {
            let mut key = [0i64; MAX_AXES];
            for (i, axis) in query.axes.iter().enumerate() {
                key[i] = match axis {
                    AggregateAxis::Time => bin_start(row.get(i)?, query.bin_seconds),
                    AggregateAxis::Asn => row.get(i)?,
                    _ => match row.get_ref(i)? {
                        ValueRef::Null => -1,
                        ValueRef::Text(text) => match intern_ids[i].get(text) {
                            Some(id) => *id,
                            None => {
                                let value = std::str::from_utf8(text)
                                    .map_err(|_| corrupt(format!("a stored {} is not UTF-8", axis.as_str())))?;
                                let id = interned[i].len() as i64;
                                interned[i].push(value.to_owned());
                                intern_ids[i].insert(text.into(), id);
                                id
                            }
                        },
                        other => return Err(corrupt(format!("a stored {} is a {other:?}", axis.as_str()))),
                    },
                };
            }
            let status = match row.get_ref(n)?.as_bytes().map_err(rusqlite::Error::from)? {
                b"ok" => 0,
                b"blocked" => 1,
                b"down" => 2,
                b"inconclusive" => 3,
                other => {
                    return Err(corrupt(format!(
                        "the status {:?} is not one censorwatch writes",
                        String::from_utf8_lossy(other)
                    )));
                }
            };
            groups.entry(key).or_default()[status] += 1;
        }
        // Interned ids → their rank in byte order, so that sorting the integer keys sorts the
        // rows as `sort_rows` would (NULL, -1, first), without comparing strings per row.
        let mut ranks: [Vec<i64>; MAX_AXES] = Default::default();
        for i in 0..n {
            let mut order: Vec<usize> = (0..interned[i].len()).collect();
            order.sort_by(|a, b| interned[i][*a].as_bytes().cmp(interned[i][*b].as_bytes()));
            ranks[i] = vec![0; order.len()];
            for (rank, id) in order.into_iter().enumerate() {
                ranks[i][id] = rank as i64;
            }
        }
        let text_axis = |a: &AggregateAxis| !matches!(a, AggregateAxis::Time | AggregateAxis::Asn);
        let mut sorted: Vec<([i64; MAX_AXES], [i64; MAX_AXES], [u64; 4])> = groups
            .into_iter()
            .map(|(key, counts)| {
                let mut order = key;
                for (i, axis) in query.axes.iter().enumerate() {
                    if text_axis(axis) && key[i] >= 0 {
                        order[i] = ranks[i][key[i] as usize];
                    }
                }
                (order, key, counts)
            })
            .collect();
        sorted.sort_unstable_by_key(|(order, _, _)| *order);
        let mut out = Vec::with_capacity(sorted.len());
        for (_, key, [ok, blocked, down, inconclusive]) in sorted {
            let mut r = AggregateRow {
                measurements: ok + blocked + down + inconclusive,
                ok,
                blocked,
                down,
                inconclusive,
                ..AggregateRow::default()
            };
            for (i, axis) in query.axes.iter().enumerate() {
                let text = || usize::try_from(key[i]).ok().map(|k| interned[i][k].clone());
                match axis {
                    AggregateAxis::Time => r.time = Some(key[i]),
                    AggregateAxis::Asn => {
                        r.probe_asn = Some(
                            u32::try_from(key[i])
                                .map_err(|_| corrupt(format!("probe_asn {} is out of range", key[i])))?,
                        )
                    }
                    AggregateAxis::Method => r.method = text(),
                    AggregateAxis::Domain => r.domain = text(),
                    AggregateAxis::Cc => r.probe_cc = text(),
                    AggregateAxis::Status => r.status = text(),
                }
            }
            out.push(r);
        }
        if out.is_empty() && n == 0 {
            out.push(AggregateRow::default());
        }
        Ok(out)
    }

    fn observations(
        &self,
        since: Option<i64>,
        after: Option<&ObservationCursor>,
        limit: usize,
    ) -> Result<Vec<ObservationRow>, StoreError> {
        let (after_time, after_id) = match after {
            Some((t, id)) => (*t, id.as_str()),
            None => (i64::MIN, ""),
        };
        let conn = lock(&self.reader);
        // `(start_time, id) > (?, ?)` walks the measurements_time_id index in order.
        let mut stmt = conn.prepare_cached(
            "SELECT id, start_time, domain, probe_cc, probe_asn, status, method FROM measurements \
             WHERE (start_time, id) > (?1, ?2) AND start_time >= ?3 AND domain IS NOT NULL AND domain != '' \
             ORDER BY start_time, id LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![
            after_time,
            after_id,
            since.unwrap_or(i64::MIN),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let asn: i64 = row.get(4)?;
            let status: String = row.get(5)?;
            let method: Option<String> = row.get(6)?;
            out.push(ObservationRow {
                start_time: row.get(1)?,
                domain: row.get(2)?,
                probe_cc: row.get(3)?,
                probe_asn: u32::try_from(asn).map_err(|_| StoreError::Corrupt {
                    id: id.clone(),
                    message: format!("probe_asn {asn} is out of range"),
                })?,
                status: crate::detection::parse_status(&id, &status)?,
                method: crate::detection::parse_method(&id, method.as_deref())?,
                id,
            });
        }
        Ok(out)
    }

    fn put_detections(&self, upserts: &[StoredDetection], removed: &[(DetectionKind, &str)]) -> Result<(), StoreError> {
        if upserts.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM detections WHERE kind = ?1 AND id = ?2")?;
            for (kind, id) in removed {
                delete.execute(params![kind.as_str(), id])?;
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO detections (kind, id, cc, domain, platform, start_time, end_time, updated, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT(kind, id) DO UPDATE SET cc = excluded.cc, domain = excluded.domain, \
                 platform = excluded.platform, start_time = excluded.start_time, end_time = excluded.end_time, \
                 updated = excluded.updated, body = excluded.body",
            )?;
            for d in upserts {
                upsert.execute(params![
                    d.kind.as_str(),
                    d.id,
                    d.cc,
                    d.domain,
                    d.platform,
                    d.start,
                    d.end,
                    d.updated,
                    d.body
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn detections(&self, query: &DetectionQuery) -> Result<Vec<StoredDetection>, StoreError> {
        // Only fixed SQL fragments are appended; every value is a bound parameter.
        let mut sql = format!("SELECT {DETECTION_COLUMNS} FROM detections WHERE kind = ?");
        let mut values: Vec<Value> = vec![Value::Text(query.kind.as_str().to_owned())];
        if let Some(cc) = &query.cc {
            sql.push_str(" AND cc = ?");
            values.push(Value::Text(cc.clone()));
        }
        match (&query.domain, &query.platform) {
            (None, None) => {}
            (domain, platform) => {
                // A never-matching value stands in for the missing one.
                let d = domain.clone().map_or(Value::Null, Value::Text);
                let p = platform.clone().map_or(Value::Null, Value::Text);
                sql.push_str(" AND (domain = ? OR platform = ? OR platform = ?)");
                values.extend([d.clone(), d, p]);
            }
        }
        if let Some(since) = query.since {
            sql.push_str(" AND (end_time IS NULL OR end_time >= ?)");
            values.push(Value::Integer(since));
        }
        if query.open_only {
            sql.push_str(" AND end_time IS NULL");
        }
        sql.push_str(" ORDER BY start_time DESC, id DESC LIMIT ?");
        values.push(Value::Integer(query.effective_limit().into()));
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(read_detection(row)?);
        }
        Ok(out)
    }

    fn detection(&self, kind: DetectionKind, id: &str) -> Result<Option<StoredDetection>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DETECTION_COLUMNS} FROM detections WHERE kind = ?1 AND id = ?2"
        ))?;
        let mut rows = stmt.query(params![kind.as_str(), id])?;
        match rows.next()? {
            Some(row) => Ok(Some(read_detection(row)?)),
            None => Ok(None),
        }
    }

    fn detection_ids(&self, kind: DetectionKind) -> Result<Vec<String>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached("SELECT id FROM detections WHERE kind = ?1")?;
        let ids = stmt.query_map([kind.as_str()], |r| r.get::<_, String>(0))?;
        Ok(ids.collect::<Result<Vec<_>, _>>()?)
    }

    fn put_signal_samples(&self, samples: &[crate::StoredSignalSample]) -> Result<u64, StoreError> {
        crate::signals::sqlite::put(&mut lock(&self.writer), samples)
    }

    fn signal_samples(
        &self,
        since: Option<i64>,
        after: Option<&crate::SignalCursor>,
        limit: usize,
    ) -> Result<Vec<crate::StoredSignalSample>, StoreError> {
        crate::signals::sqlite::page(&lock(&self.reader), since, after, limit)
    }

    fn asn_countries(&self) -> Result<Vec<crate::AsnCountry>, StoreError> {
        crate::signals::sqlite::asn_countries(&lock(&self.reader))
    }

    fn redact(&self, id: &str, reason: &str, time: i64) -> Result<Option<crate::Redaction>, StoreError> {
        crate::redaction::sqlite::redact(&mut lock(&self.writer), id, reason, time)
    }

    fn redaction(&self, id: &str) -> Result<Option<crate::Redaction>, StoreError> {
        crate::redaction::sqlite::get(&lock(&self.reader), id)
    }

    fn redactions(&self, before: Option<(i64, &str)>, limit: usize) -> Result<Vec<crate::Redaction>, StoreError> {
        crate::redaction::sqlite::page(&lock(&self.reader), before, limit)
    }
}

/// The SQL and bound values of an aggregation (validated by the caller): the rows matching
/// the filters, one column per axis, then the status. Only fixed fragments are spliced in; every
/// value is bound. Every column it touches is in the `measurements_aggregate` index (schema
/// v4), so it reads only that.
///
/// The grouping is done by the caller, in Rust, as the rows stream out, rather than by SQL's
/// `GROUP BY`: SQLite groups by sorting every matching row in a temporary B-tree, which measured
/// about 1.2 µs per row (100 ms of a 120 ms query over 84 000 rows of the 1M-row benchmark,
/// `cargo bench -p censorwatch-store --bench sqlite_aggregate`), where a hash map costs a few
/// percent of that. ClickHouse groups in SQL.
fn aggregate_sql(query: &AggregateQuery) -> (String, Vec<Value>) {
    let mut columns: Vec<&str> = query
        .axes
        .iter()
        .map(|axis| match axis {
            AggregateAxis::Time => "start_time",
            AggregateAxis::Asn => "probe_asn",
            AggregateAxis::Method => "method",
            AggregateAxis::Domain => "domain",
            AggregateAxis::Cc => "probe_cc",
            AggregateAxis::Status => "status",
        })
        .collect();
    columns.push("status");
    let mut sql = format!("SELECT {} FROM measurements WHERE 1", columns.join(", "));
    let mut values = Vec::new();
    if let Some(cc) = &query.probe_cc {
        sql.push_str(" AND probe_cc = ?");
        values.push(Value::Text(cc.clone()));
    }
    if !query.domains.is_empty() {
        sql.push_str(" AND domain IN (");
        sql.push_str(&vec!["?"; query.domains.len()].join(", "));
        sql.push(')');
        values.extend(query.domains.iter().map(|d| Value::Text(d.clone())));
    }
    if let Some(asn) = query.probe_asn {
        sql.push_str(" AND probe_asn = ?");
        values.push(Value::Integer(asn.into()));
    }
    if let Some(since) = query.since {
        sql.push_str(" AND start_time >= ?");
        values.push(Value::Integer(since));
    }
    if let Some(until) = query.until {
        sql.push_str(" AND start_time < ?");
        values.push(Value::Integer(until));
    }
    (sql, values)
}

/// The columns a [`StoredDetection`] is read from (see [`read_detection`]).
const DETECTION_COLUMNS: &str = "kind, id, cc, domain, platform, start_time, end_time, updated, body";

fn read_detection(row: &Row<'_>) -> Result<StoredDetection, StoreError> {
    let kind: String = row.get(0)?;
    let id: String = row.get(1)?;
    Ok(StoredDetection {
        kind: DetectionKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            id: id.clone(),
            message: format!("its detection kind {kind:?} is not one censorwatch writes"),
        })?,
        cc: row.get(2)?,
        domain: row.get(3)?,
        platform: row.get(4)?,
        start: row.get(5)?,
        end: row.get(6)?,
        updated: row.get(7)?,
        body: row.get(8)?,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_versioned_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("m.db")).unwrap();
        let conn = lock(&store.writer);
        let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "FULL");
        let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1);
        let reader = lock(&store.reader);
        let sync: i64 = reader.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "FULL on the reader too");
    }

    #[test]
    fn queries_use_the_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("i.db")).unwrap();
        let conn = lock(&store.reader);
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let p = plan(
            "SELECT id FROM measurements WHERE (start_time, id) < (1, 'x') ORDER BY start_time DESC, id DESC LIMIT 5",
        );
        assert!(p.contains("measurements_time_id") && !p.contains("TEMP B-TREE"), "{p}");
        let p = plan("SELECT id FROM measurements WHERE probe_cc = 'IR' AND domain = 'x.com' AND probe_asn = 1");
        assert!(p.contains("measurements_cc_domain_asn_time"), "{p}");
        // The typical aggregation (one country, a platform's domains, a window, time × network)
        // reads only the covering index.
        let (sql, values) = aggregate_sql(&AggregateQuery {
            probe_cc: Some("PK".into()),
            domains: vec!["x.com".into(), "twitter.com".into()],
            since: Some(1),
            until: Some(2),
            axes: vec![AggregateAxis::Time, AggregateAxis::Asn],
            ..Default::default()
        });
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), |r| r.get::<_, String>(3))
            .unwrap();
        let p = rows.map(Result::unwrap).collect::<Vec<_>>().join("; ");
        assert!(p.contains("COVERING INDEX measurements_aggregate"), "{p}");
    }

    #[test]
    fn a_version_3_database_migrates_to_the_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        {
            let conn = Connection::open(&path).unwrap();
            for step in &MIGRATIONS[..3] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute(
                "INSERT INTO measurements (id, start_time, probe_cc, probe_asn, probe_network_name, test_name, \
                 status, confidence, verdict_json, raw_zstd, raw_len) \
                 VALUES ('old', 7200, 'PK', 1, '', 'web_connectivity', 'blocked', 1.0, '{}', x'', 0)",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let v: u32 = lock(&store.reader)
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let rows = store
            .aggregate(&AggregateQuery {
                axes: vec![AggregateAxis::Time],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            rows,
            vec![AggregateRow {
                time: Some(7200),
                measurements: 1,
                blocked: 1,
                ..Default::default()
            }]
        );
    }
}
