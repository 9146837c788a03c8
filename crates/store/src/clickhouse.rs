//! The ClickHouse backend, for when one machine is not enough: a `ReplacingMergeTree` table
//! partitioned by month and ordered by `(probe_cc, domain, probe_asn, start_time, id)`, spoken to
//! over ClickHouse's HTTP interface with a blocking client (the [`Store`] trait is synchronous).
//!
//! The SQL sticks to what both ClickHouse 18.16 (Debian's package) and current releases accept;
//! `crates/store/CLICKHOUSE.md` has the schema, the reasoning and the cluster variant.
//!
//! # Idempotence
//!
//! MergeTree tables have no unique key, so [`ClickHouseStore::insert`]:
//!
//! 1. drops ids repeated inside the batch (the first occurrence wins);
//! 2. takes a **process-wide** lock for the (server, database) pair, shared by every
//!    [`ClickHouseStore`] of this process that points there;
//! 3. asks which of the batch's ids are already stored (`SELECT id FROM measurement_keys WHERE id IN (…)`,
//!    an id-sorted table the server fills from every insert);
//! 4. sends the others in **one** `INSERT … FORMAT RowBinary` request, then releases the lock.
//!
//! So inserts from any number of threads report stored/duplicates exactly and store each id once.
//! Writers in **several processes** are not serialized by this: run a single writer (the
//! collector is one). Should two processes race anyway, the table engine (`ReplacingMergeTree`,
//! whose sorting key ends with `id`) collapses the identical rows in its background merges
//! (`OPTIMIZE TABLE measurements FINAL` forces it); until then `count` and queries may see both.
//!
//! # Atomicity and durability
//!
//! One batch is one `INSERT`: ClickHouse parses it fully before writing, so a malformed batch
//! stores nothing. It then writes one part per month the batch spans; a server crash between
//! those writes can keep some months of a batch and not others. Re-sending the batch is always
//! safe (see above), which is how callers recover. ClickHouse 18.16 does not fsync new parts;
//! durability across a power loss is the server's (or its replicas') business.
//!
//! # Errors
//!
//! A server that cannot be reached is [`StoreError::Unavailable`] (retry later or spool, see
//! [`crate::spool`]); a server that answers with an error is [`StoreError::ClickHouse`].

use crate::aggregate::{AggregateAxis, AggregateQuery, AggregateRow};
use crate::compress;
use crate::detection::{DetectionKind, DetectionQuery, ObservationCursor, ObservationRow, StoredDetection};
use crate::query::Cursor;
use crate::record::RecordMeta;
use crate::{InsertReport, MeasurementQuery, Page, Record, Store, StoreError};
use base64::Engine as _;
use censorwatch_model::Verdict;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Read as _;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The `CREATE TABLE` of schema version 1 (run with the store's database as the default one).
const MEASUREMENTS_V1: &str = "CREATE TABLE IF NOT EXISTS measurements (
    id                 String,
    start_time         Int64,            -- Unix seconds (UTC), 0 when unknown
    probe_cc           String,
    probe_asn          UInt32,
    probe_network_name String,
    test_name          String,
    input              Nullable(String),
    domain             String,           -- '' when absent (sorting key columns cannot be Nullable)
    has_domain         UInt8,            -- 0: domain is None; 1: Some(domain), possibly Some('')
    report_id          Nullable(String),
    status             String,           -- Status::as_str()
    method             Nullable(String), -- Method::as_str()
    confidence         Float64,
    blockpage          Nullable(String),
    ooni_blocking      Nullable(String), -- JSON text of the value, NULL when undecided
    accessible         Nullable(UInt8),
    verdict_json       String,           -- the whole verdict: the source of truth when reading
    raw_zstd_b64       String,           -- base64 of the zstd-compressed raw measurement
    raw_len            UInt64            -- its uncompressed length
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(start_time))
ORDER BY (probe_cc, domain, probe_asn, start_time, id)";

/// The schema migrations, in order: `MIGRATIONS[i]` takes a database from version `i` to `i + 1`.
/// Each step is a list of statements (the HTTP interface runs one per request), each idempotent
/// (`IF NOT EXISTS`), so a step interrupted half-way is simply re-run. Append only.
const MIGRATIONS: &[&[&str]] = &[
    // v1: the measurements table.
    &[MEASUREMENTS_V1],
    // v2: the transparency log's leaf index per measurement.
    &[MEASUREMENT_LEAVES_V2],
    // v3: detected events and outages.
    &[DETECTIONS_V3],
    // v4: outage signal samples (BGP visibility per network).
    &[crate::signals::clickhouse::SIGNAL_SAMPLES_V4],
    // v5: redactions (removed measurements).
    &[REDACTIONS_V5],
    // v6: each measurement's sorting key by id, kept by the server itself, then filled from the
    // rows already stored (a re-run after an interruption only adds rows the engine collapses).
    &[
        MEASUREMENT_KEYS_V6,
        MEASUREMENT_KEYS_VIEW_V6,
        MEASUREMENT_KEYS_BACKFILL_V6,
    ],
];

/// Schema version 6: `measurements` is sorted by (probe_cc, domain, probe_asn, start_time, id),
/// so a lookup by id alone (is this id stored? the measurement with this id) read the whole `id`
/// column: every ingested batch's duplicate check scanned every stored id (at 100 M
/// measurements, gigabytes per batch). This table holds each id's sorting key, sorted by id: the
/// check reads a few granules of it, and [`Store::get`] finds the row's key here first so that
/// the `measurements` read uses that table's primary index too.
const MEASUREMENT_KEYS_V6: &str = "CREATE TABLE IF NOT EXISTS measurement_keys (
    id         String,
    probe_cc   String,
    domain     String,
    probe_asn  UInt32,
    start_time Int64
) ENGINE = ReplacingMergeTree
ORDER BY id";

/// Fills `measurement_keys` as part of every insert into `measurements`: the server writes both
/// for each inserted block, so no client crash can store a measurement without its key.
const MEASUREMENT_KEYS_VIEW_V6: &str = "CREATE MATERIALIZED VIEW IF NOT EXISTS measurement_keys_feed \
     TO measurement_keys AS SELECT id, probe_cc, domain, probe_asn, start_time FROM measurements";

/// The keys of the measurements stored before version 6 (run after the view exists, so a row
/// inserted in between is at worst written twice, which the engine collapses).
const MEASUREMENT_KEYS_BACKFILL_V6: &str = "INSERT INTO measurement_keys \
     SELECT id, probe_cc, domain, probe_asn, start_time FROM measurements";

/// Schema version 5: redactions (see [`crate::redaction`]), one row per removed measurement.
/// Rows are only inserted (under the writer lock, after checking for one); should two processes
/// race, reads take each id's earliest row.
const REDACTIONS_V5: &str = "CREATE TABLE IF NOT EXISTS redactions (
    id         String,
    leaf_index Nullable(UInt64),
    reason     String,
    time       Int64             -- Unix seconds
) ENGINE = ReplacingMergeTree
ORDER BY id";

/// How long [`Store::redact`] waits for the server to finish deleting the rows (a mutation
/// rewrites every part that holds them, in the background).
const MUTATION_TIMEOUT: Duration = Duration::from_secs(300);

/// Schema version 2: each measurement's leaf index in the transparency log (censorwatch-evidence).
/// A table beside `measurements` rather than a column in it: a MergeTree row cannot be changed
/// after it is written except by a mutation (`ALTER TABLE … UPDATE`, which rewrites whole parts
/// in the background), and the index is known only after the row is stored. Rows are only ever
/// inserted; the engine collapses a row written twice.
const MEASUREMENT_LEAVES_V2: &str = "CREATE TABLE IF NOT EXISTS measurement_leaves (
    id         String,
    leaf_index UInt64
) ENGINE = ReplacingMergeTree
ORDER BY id";

/// Schema version 3: the detector's results (censorwatch-detect), blocking events and outages.
/// Rows are never changed in place: each write of a detection inserts a row with a higher
/// `version`, and a removal inserts a tombstone (`deleted = 1`). Reads take each id's row with
/// the highest version (`ORDER BY version DESC LIMIT 1 BY kind, id`, which 18.16 and current
/// releases agree on, unlike `FINAL` combined with filters moved to `PREWHERE`); the engine
/// drops the older rows in its merges. `body` is the whole detection as JSON.
const DETECTIONS_V3: &str = "CREATE TABLE IF NOT EXISTS detections (
    kind       String,           -- 'event' | 'outage'
    id         String,
    cc         String,
    domain     String,           -- an event's label domain, '' for an outage
    platform   String,           -- an event's platform, '' for an outage
    start_time Int64,            -- Unix seconds
    end_time   Int64,            -- Unix seconds, meaningful when has_end = 1
    has_end    UInt8,
    updated    Int64,            -- when it was last computed, Unix seconds
    deleted    UInt8,            -- 1: a tombstone
    version    UInt64,           -- the write's order (nanoseconds, strictly increasing per process)
    body       String
) ENGINE = ReplacingMergeTree(version)
ORDER BY (kind, id)";

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The table recording applied schema versions: one row per applied migration step; the
/// database's version is `max(version)` (0 when empty).
const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    applied_at DateTime DEFAULT now()
) ENGINE = TinyLog";

/// The database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "censorwatch";

/// Longest `IN (…)` list sent in one existence check, in bytes of SQL (the server's default
/// `max_query_size` is 256 KiB).
const MAX_IN_LIST_BYTES: usize = 128 * 1024;

/// The columns a [`Record`] is read from, without the raw bytes.
const RECORD_COLUMNS: &str = "id, start_time, probe_cc, probe_asn, probe_network_name, test_name, input, domain, \
     has_domain, report_id, verdict_json";

/// Settings sent with every read: 64-bit integers as JSON numbers, not strings.
const READ_SETTINGS: &[(&str, &str)] = &[("output_format_json_quote_64bit_integers", "0")];

/// A store in one database of a ClickHouse server, reached over HTTP. Thread-safe.
pub struct ClickHouseStore {
    /// `http://host:port/`.
    http: String,
    database: String,
    agent: ureq::Agent,
    /// Serializes check-then-insert for this (server, database) across the whole process.
    writer: Arc<Mutex<()>>,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("http", &self.http)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The process-wide writer lock of a (server, database).
fn writer_lock(http: &str, database: &str) -> Arc<Mutex<()>> {
    /// (HTTP address, database) → its writer lock.
    type Locks = Mutex<HashMap<(String, String), Arc<Mutex<()>>>>;
    static LOCKS: OnceLock<Locks> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Arc::clone(locks.entry((http.to_owned(), database.to_owned())).or_default())
}

/// Splits `clickhouse://HOST[:PORT]/[DB]` into (`http://HOST:PORT/`, DB).
fn parse_url(url: &str) -> Result<(String, String), StoreError> {
    let bad = |message: &str| StoreError::BadUrl {
        url: url.to_owned(),
        message: format!("{message}; expected clickhouse://HOST:PORT/DATABASE with the HTTP port (usually 8123)"),
    };
    let rest = url
        .trim()
        .strip_prefix("clickhouse://")
        .ok_or_else(|| bad("it does not start with clickhouse://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() || authority.contains('@') || authority.contains('?') {
        return Err(bad("the host is missing or has credentials or options"));
    }
    // `[::1]:8123`, `host:8123`, `host`.
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let authority = if has_port {
        let port = &authority[authority.rfind(':').unwrap_or(0) + 1..];
        if port.parse::<u16>().is_err() {
            return Err(bad("the port is not a number"));
        }
        authority.to_owned()
    } else {
        format!("{authority}:8123")
    };
    let database = path.trim_end_matches('/');
    let database = if database.is_empty() {
        DEFAULT_DATABASE
    } else {
        database
    };
    if !database.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || database.as_bytes()[0].is_ascii_digit() {
        return Err(bad(
            "the database name must be letters, digits and _ (not starting with a digit)",
        ));
    }
    Ok((format!("http://{authority}/"), database.to_owned()))
}

/// A ClickHouse string literal: `'…'` with `\` and `'` escaped (every other byte is literal).
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

impl ClickHouseStore {
    /// Connects to `clickhouse://HOST:PORT/DB` (the **HTTP** port, usually 8123; the database
    /// defaults to [`DEFAULT_DATABASE`]), creating the database and tables if missing and
    /// migrating the schema to [`SCHEMA_VERSION`]. A database written by a newer censorwatch is
    /// refused with [`StoreError::SchemaTooNew`]; a server that does not answer is
    /// [`StoreError::Unavailable`].
    pub fn open(url: &str) -> Result<ClickHouseStore, StoreError> {
        let (http, database) = parse_url(url)?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(600))
            .timeout_write(Duration::from_secs(600))
            .build();
        let store = ClickHouseStore {
            writer: writer_lock(&http, &database),
            http,
            database,
            agent,
        };
        store.request(
            false,
            &[],
            format!("CREATE DATABASE IF NOT EXISTS `{}`", store.database).into_bytes(),
        )?;
        store.execute(SCHEMA_TABLE)?;
        store.migrate()?;
        Ok(store)
    }

    /// The database this store uses.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The server's HTTP address (`http://host:port/`).
    pub fn http_url(&self) -> &str {
        &self.http
    }

    /// The schema version of the database (0 before the first migration).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        #[derive(Deserialize)]
        struct V {
            v: u32,
        }
        let rows: Vec<V> = self.select("SELECT max(version) AS v FROM schema_migrations")?;
        Ok(rows.first().map_or(0, |r| r.v))
    }

    /// Applies the pending migrations. Holding the writer lock keeps this process's stores from
    /// migrating twice; two processes migrating at once run idempotent statements and record the
    /// same version twice, which `max(version)` tolerates.
    fn migrate(&self) -> Result<(), StoreError> {
        let _writer = lock(&self.writer);
        loop {
            let found = self.schema_version()?;
            if found > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            let Some(step) = MIGRATIONS.get(found as usize) else {
                return Ok(());
            };
            for statement in *step {
                self.execute(statement)?;
            }
            self.execute(&format!(
                "INSERT INTO schema_migrations (version) VALUES ({})",
                found + 1
            ))?;
        }
    }

    /// Runs one statement that returns nothing.
    fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.request(true, &[], sql.as_bytes().to_vec()).map(drop)
    }

    /// Runs a `SELECT` (without `FORMAT`) and decodes its JSONEachRow rows.
    fn select<T: serde::de::DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, StoreError> {
        let body = self.request(true, READ_SETTINGS, format!("{sql} FORMAT JSONEachRow").into_bytes())?;
        body.split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_slice(line).map_err(|e| StoreError::ClickHouse {
                    message: format!(
                        "cannot decode a row the server sent for `{}` ({e}); is the server a supported ClickHouse?",
                        abbreviate(sql)
                    ),
                })
            })
            .collect()
    }

    /// One HTTP request: POSTs `body` with the URL parameters `params` (plus `database=` when
    /// `in_database`), returns the response body.
    fn request(&self, in_database: bool, params: &[(&str, &str)], body: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let mut req = self.agent.post(&self.http);
        if in_database {
            req = req.query("database", &self.database);
        }
        for (k, v) in params {
            req = req.query(k, v);
        }
        let what = || {
            params
                .iter()
                .find(|(k, _)| *k == "query")
                .map_or_else(|| abbreviate(&String::from_utf8_lossy(&body)), |(_, q)| abbreviate(q))
        };
        match req.send_bytes(&body) {
            Ok(response) => {
                let mut out = Vec::new();
                response
                    .into_reader()
                    .read_to_end(&mut out)
                    .map_err(|e| self.unavailable(format!("the response was cut short: {e}")))?;
                Ok(out)
            }
            Err(ureq::Error::Status(code @ (502..=504), _)) => {
                Err(self.unavailable(format!("HTTP {code} from a proxy in front of it")))
            }
            Err(ureq::Error::Status(code, response)) => {
                let text = response.into_string().unwrap_or_default();
                Err(StoreError::ClickHouse {
                    message: format!(
                        "{} (HTTP {code}) refused `{}`: {}; if the schema was changed by hand, restore it or use \
                         a fresh database, otherwise this is a censorwatch bug or an unsupported server version",
                        self.http,
                        what(),
                        text.trim()
                    ),
                })
            }
            Err(ureq::Error::Transport(t)) => Err(self.unavailable(t.to_string())),
        }
    }

    fn unavailable(&self, message: String) -> StoreError {
        StoreError::Unavailable {
            url: self.http.clone(),
            message,
        }
    }

    /// Waits until the server has finished every mutation of this database's measurement tables
    /// (see [`Store::redact`]).
    fn wait_for_mutations(&self) -> Result<(), StoreError> {
        #[derive(Deserialize)]
        struct N {
            n: u64,
        }
        let sql = format!(
            "SELECT count() AS n FROM system.mutations WHERE database = {} \
             AND table IN ('measurements', 'measurement_keys', 'measurement_leaves') AND is_done = 0",
            quote(&self.database)
        );
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let rows: Vec<N> = self.select(&sql)?;
            if rows.first().is_none_or(|r| r.n == 0) {
                return Ok(());
            }
            if started.elapsed() > MUTATION_TIMEOUT {
                return Err(StoreError::ClickHouse {
                    message: format!(
                        "{} has not finished deleting the rows after {} s (see system.mutations); the redaction is \
                         recorded and the deletion continues in the background; redact again to wait for it",
                        self.http,
                        MUTATION_TIMEOUT.as_secs()
                    ),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// The ids among `ids` already stored.
    fn existing(&self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        self.existing_in("measurement_keys", ids)
    }

    /// The ids among `ids` present in `table` (a fixed table name, never user input).
    fn existing_in(&self, table: &str, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let mut found = HashSet::new();
        let mut start = 0;
        while start < ids.len() {
            let mut sql = format!("SELECT DISTINCT id FROM {table} WHERE id IN (");
            let mut end = start;
            while end < ids.len() && (end == start || sql.len() < MAX_IN_LIST_BYTES) {
                if end > start {
                    sql.push_str(", ");
                }
                sql.push_str(&quote(ids[end]));
                end += 1;
            }
            sql.push(')');
            for row in self.select::<Id>(&sql)? {
                found.insert(row.id);
            }
            start = end;
        }
        Ok(found)
    }
}

/// The first 200 characters of a statement, for error messages.
fn abbreviate(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// Locks a mutex guarding no data: a poisoned one is safe to reuse.
fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The columns [`encode`] writes, in its order.
const INSERT_MEASUREMENTS: &str = "INSERT INTO measurements (id, start_time, probe_cc, probe_asn, \
     probe_network_name, test_name, input, domain, has_domain, report_id, status, method, confidence, blockpage, \
     ooni_blocking, accessible, verdict_json, raw_zstd_b64, raw_len) FORMAT RowBinary";

/// RowBinary (ClickHouse's native row format: little-endian numbers, strings as a LEB128 length
/// and their bytes, a Nullable as a 1/0 null flag before its value) rather than JSONEachRow: the
/// server reads it without parsing or unescaping, and the client writes it without escaping.
/// Written by hand because it is these few rules; the `clickhouse` crate would bring its own
/// HTTP client beside the one the store uses.
mod row_binary {
    /// An unsigned LEB128 number (string lengths).
    pub(super) fn uint(out: &mut Vec<u8>, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A `String`: its length, then its bytes.
    pub(super) fn string(out: &mut Vec<u8>, s: &[u8]) {
        uint(out, s.len() as u64);
        out.extend_from_slice(s);
    }

    /// A `Nullable(String)`: 1 for NULL, else 0 and the string.
    pub(super) fn nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => out.push(1),
            Some(s) => {
                out.push(0);
                string(out, s.as_bytes());
            }
        }
    }
}

/// Appends the RowBinary row of a record (columns as in [`INSERT_MEASUREMENTS`]) to `out`,
/// compressing the raw bytes first unless the caller did.
fn encode(record: &Record, out: &mut Vec<u8>) -> Result<(), StoreError> {
    use row_binary::{nullable_string, string};
    let cannot = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt {
        id: record.id.clone(),
        message: format!("cannot encode its {what} for storage ({e}); this is a censorwatch bug, please report it"),
    };
    let (m, v) = (&record.meta, &record.verdict);
    let ooni_blocking = match &v.ooni_blocking {
        Some(b) => Some(serde_json::to_string(b).map_err(|e| cannot("ooni_blocking", &e))?),
        None => None,
    };
    let verdict_json = serde_json::to_string(v).map_err(|e| cannot("verdict", &e))?;
    let compressed;
    let raw_zstd = match &record.raw_zstd {
        Some(packed) => packed.as_slice(),
        None => {
            compressed = compress::compress(&record.raw).map_err(|e| cannot("raw bytes", &e))?;
            compressed.as_slice()
        }
    };
    string(out, record.id.as_bytes());
    out.extend_from_slice(&m.start_time.to_le_bytes());
    string(out, m.probe_cc.as_bytes());
    out.extend_from_slice(&m.probe_asn.to_le_bytes());
    string(out, m.probe_network_name.as_bytes());
    string(out, m.test_name.as_bytes());
    nullable_string(out, m.input.as_deref());
    string(out, m.domain.as_deref().unwrap_or("").as_bytes());
    out.push(u8::from(m.domain.is_some()));
    nullable_string(out, m.report_id.as_deref());
    string(out, v.status.as_str().as_bytes());
    nullable_string(out, v.method.map(|x| x.as_str()));
    out.extend_from_slice(&v.confidence.to_le_bytes());
    nullable_string(out, v.blockpage.as_deref());
    nullable_string(out, ooni_blocking.as_deref());
    match v.accessible {
        None => out.push(1),
        Some(a) => out.extend_from_slice(&[0, u8::from(a)]),
    }
    string(out, verdict_json.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD;
    row_binary::uint(out, base64::encoded_len(raw_zstd.len(), true).unwrap_or(0) as u64);
    let at = out.len();
    out.resize(at + base64::encoded_len(raw_zstd.len(), true).unwrap_or(0), 0);
    let written = b64
        .encode_slice(raw_zstd, &mut out[at..])
        .map_err(|e| cannot("raw bytes as base64", &e))?;
    out.truncate(at + written);
    out.extend_from_slice(&(record.raw.len() as u64).to_le_bytes());
    Ok(())
}

/// A row of [`RECORD_COLUMNS`] (plus, for `get`, the raw bytes) as the server sends it.
#[derive(Deserialize)]
struct StoredRow {
    id: String,
    start_time: i64,
    probe_cc: String,
    probe_asn: u32,
    probe_network_name: String,
    test_name: String,
    input: Option<String>,
    domain: String,
    has_domain: u8,
    report_id: Option<String>,
    verdict_json: String,
    #[serde(default)]
    raw_zstd_b64: Option<String>,
    #[serde(default)]
    raw_len: Option<u64>,
}

impl StoredRow {
    fn into_record(self) -> Result<Record, StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            id: self.id.clone(),
            message,
        };
        let verdict: Verdict = serde_json::from_str(&self.verdict_json)
            .map_err(|e| corrupt(format!("its verdict_json does not parse: {e}")))?;
        let raw = match (&self.raw_zstd_b64, self.raw_len) {
            (Some(b64), Some(len)) => {
                let compressed = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| corrupt(format!("its raw_zstd_b64 is not base64: {e}")))?;
                compress::decompress(&self.id, &compressed, len)?
            }
            _ => Vec::new(),
        };
        Ok(Record {
            meta: RecordMeta {
                start_time: self.start_time,
                probe_cc: self.probe_cc,
                probe_asn: self.probe_asn,
                probe_network_name: self.probe_network_name,
                test_name: self.test_name,
                input: self.input,
                domain: (self.has_domain != 0).then_some(self.domain),
                report_id: self.report_id,
            },
            id: self.id,
            verdict,
            raw,
            raw_zstd: None,
        })
    }
}

impl Store for ClickHouseStore {
    fn insert(&self, batch: &[Record]) -> Result<InsertReport, StoreError> {
        let mut seen = HashSet::new();
        let unique: Vec<&Record> = batch.iter().filter(|r| seen.insert(r.id.as_str())).collect();
        let rows = unique
            .iter()
            .map(|r| {
                let mut row = Vec::new();
                encode(r, &mut row).map(|()| row)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<&str> = unique.iter().map(|r| r.id.as_str()).collect();

        let _writer = lock(&self.writer);
        let existing = if ids.is_empty() {
            HashSet::new()
        } else {
            // A redacted id counts as stored: it is never stored again (see `crate::redaction`).
            let mut existing = self.existing(&ids)?;
            existing.extend(self.existing_in("redactions", &ids)?);
            existing
        };
        let mut body = Vec::new();
        let mut stored = 0u64;
        for (id, row) in ids.iter().zip(&rows) {
            if !existing.contains(*id) {
                body.extend_from_slice(row);
                stored += 1;
            }
        }
        if stored > 0 {
            self.request(true, &[("query", INSERT_MEASUREMENTS)], body)?;
        }
        Ok(InsertReport {
            stored,
            duplicates: batch.len() as u64 - stored,
        })
    }

    fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let rows: Vec<StoredRow> = self.select(&format!(
            "SELECT {RECORD_COLUMNS}, raw_zstd_b64, raw_len FROM measurements \
             WHERE (probe_cc, domain, probe_asn, start_time) IN \
                 (SELECT probe_cc, domain, probe_asn, start_time FROM measurement_keys WHERE id = {id}) \
               AND id = {id} LIMIT 1",
            id = quote(id)
        ))?;
        rows.into_iter().next().map(StoredRow::into_record).transpose()
    }

    fn query(&self, query: &MeasurementQuery) -> Result<Page, StoreError> {
        // Every value goes through `quote` or is a number.
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM measurements WHERE 1");
        let mut filter = |clause: String| {
            sql.push_str(" AND ");
            sql.push_str(&clause);
        };
        if let Some(cc) = &query.probe_cc {
            filter(format!("probe_cc = {}", quote(cc)));
        }
        if let Some(asn) = query.probe_asn {
            filter(format!("probe_asn = {asn}"));
        }
        if let Some(domain) = &query.domain {
            filter(format!("domain = {} AND has_domain = 1", quote(domain)));
        }
        if let Some(since) = query.since {
            filter(format!("start_time >= {since}"));
        }
        if let Some(until) = query.until {
            filter(format!("start_time < {until}"));
        }
        if let Some(status) = query.status {
            filter(format!("status = {}", quote(status.as_str())));
        }
        if let Some(method) = query.method {
            filter(format!("method = {}", quote(method.as_str())));
        }
        if let Some(test_name) = &query.test_name {
            filter(format!("test_name = {}", quote(test_name)));
        }
        if let Some(Cursor { start_time, id }) = &query.cursor {
            // Spelled out rather than a tuple comparison, which the index analysis of old
            // servers does not use.
            filter(format!(
                "(start_time < {start_time} OR (start_time = {start_time} AND id < {}))",
                quote(id)
            ));
        }
        let limit = query.effective_limit() as usize;
        let _ = write!(sql, " ORDER BY start_time DESC, id DESC LIMIT {}", limit + 1);
        let rows: Vec<StoredRow> = self.select(&sql)?;
        let more = rows.len() > limit;
        let results = rows
            .into_iter()
            .take(limit)
            .map(StoredRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_results(results, more))
    }

    fn count(&self) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct N {
            n: u64,
        }
        let rows: Vec<N> = self.select("SELECT count() AS n FROM measurements")?;
        Ok(rows.first().map_or(0, |r| r.n))
    }

    fn unlogged_among(&self, ids: &[&str]) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let stored = self.existing(ids)?;
        let logged = self.existing_in("measurement_leaves", ids)?;
        let mut seen = HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| stored.contains(**id) && !logged.contains(**id) && seen.insert(**id))
            .map(|id| (*id).to_owned())
            .collect())
    }

    fn unlogged_count(&self) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct N {
            n: u64,
        }
        let rows: Vec<N> = self.select(
            "SELECT uniqExact(id) AS n FROM measurements WHERE id NOT IN (SELECT id FROM measurement_leaves)",
        )?;
        Ok(rows.first().map_or(0, |r| r.n))
    }

    fn unlogged(&self, after: Option<&str>, limit: usize) -> Result<Vec<Record>, StoreError> {
        // `LIMIT 1 BY id`: a row written twice (before the engine merged it) is read once.
        let rows: Vec<StoredRow> = self.select(&format!(
            "SELECT {RECORD_COLUMNS}, raw_zstd_b64, raw_len FROM measurements \
             WHERE id > {} AND id NOT IN (SELECT id FROM measurement_leaves) \
             ORDER BY id LIMIT 1 BY id LIMIT {limit}",
            quote(after.unwrap_or(""))
        ))?;
        rows.into_iter().map(StoredRow::into_record).collect()
    }

    fn set_leaf_indexes(&self, entries: &[(&str, u64)]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        #[derive(serde::Serialize)]
        struct Leaf<'a> {
            id: &'a str,
            leaf_index: u64,
        }
        let mut body = Vec::new();
        for (id, leaf_index) in entries {
            serde_json::to_writer(
                &mut body,
                &Leaf {
                    id,
                    leaf_index: *leaf_index,
                },
            )
            .map_err(|e| StoreError::Corrupt {
                id: (*id).to_owned(),
                message: format!("cannot encode its leaf index ({e})"),
            })?;
            body.push(b'\n');
        }
        let _writer = lock(&self.writer);
        self.request(
            true,
            &[("query", "INSERT INTO measurement_leaves FORMAT JSONEachRow")],
            body,
        )
        .map(drop)
    }

    fn leaf_index(&self, id: &str) -> Result<Option<u64>, StoreError> {
        #[derive(Deserialize)]
        struct L {
            leaf_index: u64,
        }
        let rows: Vec<L> = self.select(&format!(
            "SELECT leaf_index FROM measurement_leaves WHERE id = {} ORDER BY leaf_index LIMIT 1",
            quote(id)
        ))?;
        Ok(rows.first().map(|r| r.leaf_index))
    }

    fn max_leaf_index(&self) -> Result<Option<u64>, StoreError> {
        #[derive(Deserialize)]
        struct M {
            n: u64,
            m: u64,
        }
        let rows: Vec<M> = self.select("SELECT count() AS n, max(leaf_index) AS m FROM measurement_leaves")?;
        let logged = rows.first().filter(|r| r.n > 0).map(|r| r.m);
        // A redacted measurement's leaf stays in the log: it still counts.
        let rows: Vec<M> = self.select(
            "SELECT count() AS n, max(assumeNotNull(leaf_index)) AS m FROM redactions WHERE leaf_index IS NOT NULL",
        )?;
        Ok(logged.max(rows.first().filter(|r| r.n > 0).map(|r| r.m)))
    }

    /// One `GROUP BY` over the sorting key's columns. Like `count`, it counts rows: a
    /// measurement written twice by two processes racing (see the module docs) is counted twice
    /// until the engine merges the copies.
    fn aggregate(&self, query: &AggregateQuery) -> Result<Vec<AggregateRow>, StoreError> {
        query.validate()?;
        #[derive(Deserialize)]
        struct A {
            a_time: Option<i64>,
            a_asn: Option<u32>,
            a_method: Option<String>,
            a_domain: Option<String>,
            a_has_domain: Option<u8>,
            a_cc: Option<String>,
            a_status: Option<String>,
            n_all: u64,
            n_ok: u64,
            n_blocked: u64,
            n_down: u64,
            n_inconclusive: u64,
        }
        let b = query.bin_seconds.max(1);
        let mut columns = Vec::new();
        let mut groups = Vec::new();
        for axis in &query.axes {
            match axis {
                // Floor division, also below zero (`%` truncates toward zero).
                AggregateAxis::Time => {
                    columns.push(format!(
                        "toInt64(start_time - ((start_time % {b}) + {b}) % {b}) AS a_time"
                    ));
                    groups.push("a_time");
                }
                AggregateAxis::Asn => {
                    columns.push("probe_asn AS a_asn".into());
                    groups.push("a_asn");
                }
                // Grouping on a Nullable column is avoided (18.16); no method is ever ''.
                AggregateAxis::Method => {
                    columns.push("ifNull(method, '') AS a_method".into());
                    groups.push("a_method");
                }
                AggregateAxis::Domain => {
                    columns.push("domain AS a_domain".into());
                    columns.push("has_domain AS a_has_domain".into());
                    groups.extend(["a_domain", "a_has_domain"]);
                }
                AggregateAxis::Cc => {
                    columns.push("probe_cc AS a_cc".into());
                    groups.push("a_cc");
                }
                AggregateAxis::Status => {
                    columns.push("status AS a_status".into());
                    groups.push("a_status");
                }
            }
        }
        columns.push(
            "count() AS n_all, countIf(status = 'ok') AS n_ok, countIf(status = 'blocked') AS n_blocked, \
             countIf(status = 'down') AS n_down, countIf(status = 'inconclusive') AS n_inconclusive"
                .into(),
        );
        let mut sql = format!("SELECT {} FROM measurements WHERE 1", columns.join(", "));
        if let Some(cc) = &query.probe_cc {
            let _ = write!(sql, " AND probe_cc = {}", quote(cc));
        }
        if !query.domains.is_empty() {
            let list: Vec<String> = query.domains.iter().map(|d| quote(d)).collect();
            let _ = write!(sql, " AND has_domain = 1 AND domain IN ({})", list.join(", "));
        }
        if let Some(asn) = query.probe_asn {
            let _ = write!(sql, " AND probe_asn = {asn}");
        }
        if let Some(since) = query.since {
            let _ = write!(sql, " AND start_time >= {since}");
        }
        if let Some(until) = query.until {
            let _ = write!(sql, " AND start_time < {until}");
        }
        if !groups.is_empty() {
            let _ = write!(sql, " GROUP BY {}", groups.join(", "));
        }
        let rows: Vec<A> = self.select(&sql)?;
        let mut out: Vec<AggregateRow> = rows
            .into_iter()
            .map(|a| AggregateRow {
                time: a.a_time,
                probe_asn: a.a_asn,
                method: a.a_method.filter(|m| !m.is_empty()),
                domain: match a.a_has_domain {
                    Some(1) => a.a_domain,
                    _ => None,
                },
                probe_cc: a.a_cc,
                status: a.a_status,
                measurements: a.n_all,
                ok: a.n_ok,
                blocked: a.n_blocked,
                down: a.n_down,
                inconclusive: a.n_inconclusive,
            })
            .collect();
        if out.is_empty() && query.axes.is_empty() {
            // Older servers answer an aggregate without GROUP BY over no rows with no row.
            out.push(AggregateRow::default());
        }
        crate::aggregate::sort_rows(&mut out, &query.axes);
        Ok(out)
    }

    fn observations(
        &self,
        since: Option<i64>,
        after: Option<&ObservationCursor>,
        limit: usize,
    ) -> Result<Vec<ObservationRow>, StoreError> {
        #[derive(Deserialize)]
        struct O {
            id: String,
            start_time: i64,
            domain: String,
            probe_cc: String,
            probe_asn: u32,
            status: String,
            method: Option<String>,
        }
        let mut sql = String::from(
            "SELECT id, start_time, domain, probe_cc, probe_asn, status, method FROM measurements \
             WHERE has_domain = 1 AND domain != ''",
        );
        if let Some(since) = since {
            let _ = write!(sql, " AND start_time >= {since}");
        }
        if let Some((t, id)) = after {
            // Spelled out, as in `query`.
            let _ = write!(
                sql,
                " AND (start_time > {t} OR (start_time = {t} AND id > {}))",
                quote(id)
            );
        }
        // `LIMIT 1 BY id`: a row written twice (before the engine merged it) is read once.
        let _ = write!(sql, " ORDER BY start_time, id LIMIT 1 BY id LIMIT {limit}");
        let rows: Vec<O> = self.select(&sql)?;
        rows.into_iter()
            .map(|o| {
                Ok(ObservationRow {
                    status: crate::detection::parse_status(&o.id, &o.status)?,
                    method: crate::detection::parse_method(&o.id, o.method.as_deref())?,
                    start_time: o.start_time,
                    domain: o.domain,
                    probe_cc: o.probe_cc,
                    probe_asn: o.probe_asn,
                    id: o.id,
                })
            })
            .collect()
    }

    fn put_detections(&self, upserts: &[StoredDetection], removed: &[(DetectionKind, &str)]) -> Result<(), StoreError> {
        if upserts.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let _writer = lock(&self.writer);
        // One version for the whole write; an id both removed and upserted is upserted (no
        // tombstone is written for it, so no id has two rows of the same version).
        let version = next_version();
        let mut body = Vec::new();
        let mut line = |row: &DetectionRow<'_>| -> Result<(), StoreError> {
            serde_json::to_writer(&mut body, row).map_err(|e| StoreError::Corrupt {
                id: row.id.to_owned(),
                message: format!("cannot encode the detection for storage ({e}); this is a censorwatch bug"),
            })?;
            body.push(b'\n');
            Ok(())
        };
        let upserted: HashSet<(DetectionKind, &str)> = upserts.iter().map(|d| (d.kind, d.id.as_str())).collect();
        for (kind, id) in removed {
            if upserted.contains(&(*kind, *id)) {
                continue;
            }
            line(&DetectionRow {
                kind: kind.as_str(),
                id,
                cc: "",
                domain: "",
                platform: "",
                start_time: 0,
                end_time: 0,
                has_end: 0,
                updated: 0,
                deleted: 1,
                version,
                body: "",
            })?;
        }
        for d in upserts {
            line(&DetectionRow {
                kind: d.kind.as_str(),
                id: &d.id,
                cc: &d.cc,
                domain: &d.domain,
                platform: &d.platform,
                start_time: d.start,
                end_time: d.end.unwrap_or(0),
                has_end: u8::from(d.end.is_some()),
                updated: d.updated,
                deleted: 0,
                version,
                body: &d.body,
            })?;
        }
        self.request(true, &[("query", "INSERT INTO detections FORMAT JSONEachRow")], body)
            .map(drop)
    }

    fn detections(&self, query: &DetectionQuery) -> Result<Vec<StoredDetection>, StoreError> {
        // Every value goes through `quote` or is a number.
        let mut sql = format!(
            "SELECT {DETECTION_COLUMNS} FROM ({}) WHERE deleted = 0",
            latest_detections(&format!("kind = {}", quote(query.kind.as_str())))
        );
        if let Some(cc) = &query.cc {
            let _ = write!(sql, " AND cc = {}", quote(cc));
        }
        match (&query.domain, &query.platform) {
            (None, None) => {}
            (domain, platform) => {
                let mut any = Vec::new();
                if let Some(d) = domain {
                    any.push(format!("domain = {0} OR platform = {0}", quote(d)));
                }
                if let Some(p) = platform {
                    any.push(format!("platform = {}", quote(p)));
                }
                let _ = write!(sql, " AND ({})", any.join(" OR "));
            }
        }
        if let Some(since) = query.since {
            let _ = write!(sql, " AND (has_end = 0 OR end_time >= {since})");
        }
        if query.open_only {
            sql.push_str(" AND has_end = 0");
        }
        let _ = write!(
            sql,
            " ORDER BY start_time DESC, id DESC LIMIT {}",
            query.effective_limit()
        );
        let rows: Vec<DetectionOut> = self.select(&sql)?;
        rows.into_iter().map(DetectionOut::into_detection).collect()
    }

    fn detection(&self, kind: DetectionKind, id: &str) -> Result<Option<StoredDetection>, StoreError> {
        let rows: Vec<DetectionOut> = self.select(&format!(
            "SELECT {DETECTION_COLUMNS} FROM ({}) WHERE deleted = 0",
            latest_detections(&format!("kind = {} AND id = {}", quote(kind.as_str()), quote(id)))
        ))?;
        rows.into_iter().next().map(DetectionOut::into_detection).transpose()
    }

    fn detection_ids(&self, kind: DetectionKind) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let rows: Vec<Id> = self.select(&format!(
            "SELECT id FROM ({}) WHERE deleted = 0",
            latest_detections(&format!("kind = {}", quote(kind.as_str())))
        ))?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    fn put_signal_samples(&self, samples: &[crate::StoredSignalSample]) -> Result<u64, StoreError> {
        let body = crate::signals::clickhouse::insert_body(samples, next_version())?;
        if samples.is_empty() {
            return Ok(0);
        }
        let _writer = lock(&self.writer);
        self.request(
            true,
            &[("query", "INSERT INTO signal_samples FORMAT JSONEachRow")],
            body,
        )?;
        Ok(samples.len() as u64)
    }

    fn signal_samples(
        &self,
        since: Option<i64>,
        after: Option<&crate::SignalCursor>,
        limit: usize,
    ) -> Result<Vec<crate::StoredSignalSample>, StoreError> {
        let sql = crate::signals::clickhouse::page_sql(since, after, limit, quote);
        let rows: Vec<crate::signals::clickhouse::Row> = self.select(&sql)?;
        Ok(rows
            .into_iter()
            .map(crate::signals::clickhouse::Row::into_sample)
            .collect())
    }

    /// Records the redaction, then deletes the rows with `ALTER TABLE … DELETE` (a mutation,
    /// which ClickHouse 18.16 runs in the background) and waits until `system.mutations` says
    /// it is done. Until then queries may still count the measurement; `get` is answered by the
    /// caller from the redaction. A wait that times out is an error, and calling again finishes
    /// the job.
    fn redact(&self, id: &str, reason: &str, time: i64) -> Result<Option<crate::Redaction>, StoreError> {
        let _writer = lock(&self.writer);
        let redaction = match self.redaction(id)? {
            Some(existing) => existing,
            None => {
                if self.existing(&[id])?.is_empty() {
                    return Ok(None);
                }
                let redaction = crate::Redaction {
                    id: id.to_owned(),
                    leaf_index: self.leaf_index(id)?,
                    reason: reason.to_owned(),
                    time,
                };
                let mut body = serde_json::to_vec(&redaction).map_err(|e| StoreError::Corrupt {
                    id: id.to_owned(),
                    message: format!("cannot encode its redaction: {e}"),
                })?;
                body.push(b'\n');
                self.request(true, &[("query", "INSERT INTO redactions FORMAT JSONEachRow")], body)?;
                redaction
            }
        };
        let stored = !self.existing(&[id])?.is_empty() || !self.existing_in("measurement_leaves", &[id])?.is_empty();
        if stored {
            for table in ["measurements", "measurement_keys", "measurement_leaves"] {
                self.execute(&format!("ALTER TABLE {table} DELETE WHERE id = {}", quote(id)))?;
            }
        }
        self.wait_for_mutations()?;
        Ok(Some(redaction))
    }

    fn redaction(&self, id: &str) -> Result<Option<crate::Redaction>, StoreError> {
        let rows: Vec<crate::Redaction> = self.select(&format!(
            "SELECT id, leaf_index, reason, time FROM redactions WHERE id = {} ORDER BY time, reason LIMIT 1",
            quote(id)
        ))?;
        Ok(rows.into_iter().next())
    }

    fn redactions(&self, before: Option<(i64, &str)>, limit: usize) -> Result<Vec<crate::Redaction>, StoreError> {
        let limit = limit.min(crate::redaction::MAX_REDACTION_PAGE);
        let filter = match before {
            Some((t, id)) => format!("WHERE time < {t} OR (time = {t} AND id < {})", quote(id)),
            None => String::new(),
        };
        self.select(&format!(
            "SELECT id, leaf_index, reason, time FROM (SELECT id, leaf_index, reason, time FROM redactions \
             ORDER BY time, reason LIMIT 1 BY id) {filter} ORDER BY time DESC, id DESC LIMIT {limit}"
        ))
    }

    fn asn_countries(&self) -> Result<Vec<crate::AsnCountry>, StoreError> {
        let rows: Vec<crate::signals::clickhouse::AsnCountryRow> =
            self.select(crate::signals::clickhouse::ASN_COUNTRIES_SQL)?;
        Ok(rows
            .into_iter()
            .map(|r| crate::AsnCountry {
                asn: r.asn,
                cc: r.cc,
                measurements: r.n,
            })
            .collect())
    }
}

/// The columns a [`StoredDetection`] is read from.
const DETECTION_COLUMNS: &str = "kind, id, cc, domain, platform, start_time, end_time, has_end, updated, body";

/// A subquery of the latest row of each detection matching `filter` (a condition on the
/// sorting key only, so that no older row of an id is filtered in while its newer one is out).
fn latest_detections(filter: &str) -> String {
    format!(
        "SELECT kind, id, cc, domain, platform, start_time, end_time, has_end, updated, deleted, body \
         FROM detections WHERE {filter} ORDER BY version DESC LIMIT 1 BY kind, id"
    )
}

/// A strictly increasing write version: nanoseconds since 1970, bumped past the last one this
/// process issued (so two writes in the same nanosecond, or a clock stepped back, still order).
fn next_version() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// One detection row as sent in `INSERT … FORMAT JSONEachRow`.
#[derive(serde::Serialize)]
struct DetectionRow<'a> {
    kind: &'a str,
    id: &'a str,
    cc: &'a str,
    domain: &'a str,
    platform: &'a str,
    start_time: i64,
    end_time: i64,
    has_end: u8,
    updated: i64,
    deleted: u8,
    version: u64,
    body: &'a str,
}

/// A row of [`DETECTION_COLUMNS`] as the server sends it.
#[derive(Deserialize)]
struct DetectionOut {
    kind: String,
    id: String,
    cc: String,
    domain: String,
    platform: String,
    start_time: i64,
    end_time: i64,
    has_end: u8,
    updated: i64,
    body: String,
}

impl DetectionOut {
    fn into_detection(self) -> Result<StoredDetection, StoreError> {
        Ok(StoredDetection {
            kind: DetectionKind::parse(&self.kind).ok_or_else(|| StoreError::Corrupt {
                id: self.id.clone(),
                message: format!("its detection kind {:?} is not one censorwatch writes", self.kind),
            })?,
            cc: self.cc,
            domain: self.domain,
            platform: self.platform,
            start: self.start_time,
            end: (self.has_end != 0).then_some(self.end_time),
            updated: self.updated,
            body: self.body,
            id: self.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_binary_encoding() {
        let uint = |n: u64| {
            let mut out = Vec::new();
            row_binary::uint(&mut out, n);
            out
        };
        // LEB128, as ClickHouse's VarUInt.
        assert_eq!(uint(0), [0]);
        assert_eq!(uint(127), [0x7f]);
        assert_eq!(uint(128), [0x80, 0x01]);
        assert_eq!(uint(300), [0xac, 0x02]);
        assert_eq!(uint(u64::MAX).len(), 10);
        let mut out = Vec::new();
        row_binary::nullable_string(&mut out, None);
        row_binary::nullable_string(&mut out, Some("ab"));
        row_binary::string(&mut out, b"");
        assert_eq!(out, [1, 0, 2, b'a', b'b', 0]);
    }

    #[test]
    fn urls() {
        let ok = |u: &str| parse_url(u).unwrap();
        assert_eq!(
            ok("clickhouse://127.0.0.1:8123/"),
            ("http://127.0.0.1:8123/".into(), DEFAULT_DATABASE.into())
        );
        assert_eq!(ok("clickhouse://h/db_1"), ("http://h:8123/".into(), "db_1".into()));
        assert_eq!(
            ok("clickhouse://[::1]:9000/x/"),
            ("http://[::1]:9000/".into(), "x".into())
        );
        assert_eq!(ok("clickhouse://[::1]/x"), ("http://[::1]:8123/".into(), "x".into()));
        for bad in [
            "http://h:8123/db",
            "clickhouse:///db",
            "clickhouse://h:port/db",
            "clickhouse://h:8123/a-b",
            "clickhouse://h:8123/1db",
            "clickhouse://u:p@h:8123/db",
            "clickhouse://h:8123/db;DROP",
        ] {
            match parse_url(bad) {
                Err(e @ StoreError::BadUrl { .. }) => assert!(e.to_string().contains("expected clickhouse://"), "{e}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn literals_escape_quotes_and_backslashes_only() {
        assert_eq!(quote("a'b\\c"), r"'a\'b\\c'");
        assert_eq!(quote("' OR '1'='1"), r"'\' OR \'1\'=\'1'");
        assert_eq!(quote("ü\n%_"), "'ü\n%_'");
        assert_eq!(quote("\0"), r"'\0'");
    }
}
