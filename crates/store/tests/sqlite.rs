//! The SQLite backend: the shared conformance suite, then what only a file-backed embedded store
//! has to prove (reopening, schema versions, concurrent writers, crash safety, rollback).

use censorwatch_store::conformance::{self, HoldsStore, distinct, fixture_records, query_all, small_fixture_records};
use censorwatch_store::sqlite::SCHEMA_VERSION;
use censorwatch_store::{InsertReport, MeasurementQuery, Record, SqliteStore, Store, StoreError};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A store in its own temporary directory, deleted with it.
struct TempSqlite {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl TempSqlite {
    fn new() -> TempSqlite {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(&dir.path().join("censorwatch.db")).expect("open a fresh store");
        TempSqlite { store, _dir: dir }
    }
}

impl HoldsStore for TempSqlite {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

mod conformance_suite {
    use super::TempSqlite;
    use censorwatch_store::conformance::HoldsStore;

    censorwatch_store::conformance_tests!(|| -> Box<dyn HoldsStore> { Box::new(TempSqlite::new()) });
}

#[test]
fn run_all_runs_every_check() {
    let made = std::sync::atomic::AtomicUsize::new(0);
    let make = || -> Box<dyn HoldsStore> {
        made.fetch_add(1, Ordering::SeqCst);
        Box::new(TempSqlite::new())
    };
    conformance::run_all(&make);
    assert_eq!(
        made.load(Ordering::SeqCst),
        conformance::CHECKS.len(),
        "one fresh store per check"
    );
}

fn db_in(dir: &Path) -> PathBuf {
    dir.join("store.db")
}

#[test]
fn opening_creates_the_file_and_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/censorwatch.db");
    let store = SqliteStore::open(&path).unwrap();
    assert!(path.is_file());
    assert_eq!(store.path(), path);
    assert_eq!(store.count().unwrap(), 0);
    let err = SqliteStore::open(dir.path()).expect_err("a directory is not a database");
    assert!(err.to_string().contains("cannot open the database"), "{err}");
}

#[test]
fn reopening_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let records = distinct(&fixture_records());
    {
        let store = SqliteStore::open(&db_in(dir.path())).unwrap();
        store.insert(&records).unwrap();
    }
    for _ in 0..2 {
        let store = SqliteStore::open(&db_in(dir.path())).unwrap();
        assert_eq!(store.count().unwrap(), records.len() as u64);
        for r in &records {
            assert_eq!(store.get(&r.id).unwrap().as_ref(), Some(r));
        }
        assert_eq!(
            store.insert(&records).unwrap(),
            InsertReport {
                stored: 0,
                duplicates: records.len() as u64
            }
        );
    }
    let conn = rusqlite::Connection::open(db_in(dir.path())).unwrap();
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION, "reopening does not migrate again");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 7).unwrap();
    }
    match SqliteStore::open(&path) {
        Err(e @ StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 7, SCHEMA_VERSION));
            assert!(e.to_string().contains("upgrade censorwatch"), "{e}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION + 7, "a refused database is left alone");
    let tables: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0, "no migration ran on it");
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete", "not even switched to WAL");
}

#[test]
fn a_failing_batch_is_rolled_back_entirely() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_in(dir.path())).unwrap();
    let f = distinct(&fixture_records());
    store.insert(&f[..2]).unwrap();
    // Make the third row of the next batch fail inside the transaction.
    let conn = rusqlite::Connection::open(db_in(dir.path())).unwrap();
    let poison = f[4].id.clone();
    conn.execute_batch(&format!(
        "CREATE TRIGGER poison BEFORE INSERT ON measurements WHEN NEW.id = '{}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        poison.replace('\'', "''")
    ))
    .unwrap();
    let err = store.insert(&f[2..7]).expect_err("the trigger aborts the batch");
    assert!(err.to_string().contains("poisoned"), "{err}");
    assert_eq!(store.count().unwrap(), 2, "no row of the failed batch stays");
    assert_eq!(
        store.get(&f[2].id).unwrap(),
        None,
        "rows before the failing one are rolled back too"
    );
    conn.execute_batch("DROP TRIGGER poison").unwrap();
    assert_eq!(
        store.insert(&f[2..7]).unwrap(),
        InsertReport {
            stored: 5,
            duplicates: 0
        }
    );
}

#[test]
fn corrupt_rows_name_their_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_in(dir.path())).unwrap();
    let f = distinct(&fixture_records());
    store.insert(&f[..3]).unwrap();
    let conn = rusqlite::Connection::open(db_in(dir.path())).unwrap();
    conn.execute(
        "UPDATE measurements SET raw_zstd = x'00010203' WHERE id = ?1",
        [&f[0].id],
    )
    .unwrap();
    conn.execute("UPDATE measurements SET verdict_json = '{' WHERE id = ?1", [&f[1].id])
        .unwrap();
    for r in &f[..2] {
        match store.get(&r.id) {
            Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, r.id),
            other => panic!("expected Corrupt for {}, got {other:?}", r.id),
        }
    }
    assert_eq!(
        store.get(&f[2].id).unwrap().as_ref(),
        Some(&f[2]),
        "other rows are fine"
    );
}

#[test]
fn concurrent_overlapping_inserts_store_each_id_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    // Two threads share one store; two more use a second store on the same file (as another
    // process would), which exercises the busy timeout and BEGIN IMMEDIATE.
    let shared = Arc::new(SqliteStore::open(&path).unwrap());
    let other = Arc::new(SqliteStore::open(&path).unwrap());
    let templates = small_fixture_records(16 * 1024);
    let record = |i: usize| {
        let mut r = templates[i % templates.len()].clone();
        r.id = format!("conc-{i:05}");
        r.meta.start_time = 1_740_000_000 + (i as i64 % 97);
        r
    };
    // Thread t inserts ids t*300 .. t*300+600: each overlaps its neighbours by 300.
    let per_thread: Vec<Vec<Record>> = (0..4)
        .map(|t| {
            let mut v: Vec<Record> = (t * 300..t * 300 + 600).map(record).collect();
            if t % 2 == 1 {
                v.reverse();
            }
            v
        })
        .collect();
    let distinct_ids: HashSet<String> = per_thread.iter().flatten().map(|r| r.id.clone()).collect();
    assert_eq!(distinct_ids.len(), 1500);

    let writing = AtomicBool::new(true);
    let reports = std::thread::scope(|s| {
        // A reader watching the count while writers run: it only ever grows.
        let reader = s.spawn(|| {
            let mut last = 0;
            let mut reads = 0u64;
            while writing.load(Ordering::SeqCst) {
                let n = shared.count().unwrap();
                assert!(n >= last, "count went backwards: {last} then {n}");
                last = n;
                reads += 1;
            }
            reads
        });
        let writers: Vec<_> = per_thread
            .iter()
            .enumerate()
            .map(|(t, records)| {
                let store = if t % 2 == 0 {
                    Arc::clone(&shared)
                } else {
                    Arc::clone(&other)
                };
                s.spawn(move || {
                    let mut total = InsertReport::default();
                    for batch in records.chunks(50) {
                        let r = store.insert(batch).unwrap();
                        total.stored += r.stored;
                        total.duplicates += r.duplicates;
                    }
                    total
                })
            })
            .collect();
        let reports: Vec<InsertReport> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        writing.store(false, Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
        reports
    });
    let stored: u64 = reports.iter().map(|r| r.stored).sum();
    let duplicates: u64 = reports.iter().map(|r| r.duplicates).sum();
    assert_eq!(stored, 1500, "each id is stored by exactly one thread");
    assert_eq!(duplicates, 2400 - 1500);
    for store in [&shared, &other] {
        assert_eq!(store.count().unwrap(), 1500);
        let all = query_all(
            store.as_ref(),
            &MeasurementQuery {
                limit: 1000,
                ..Default::default()
            },
        );
        let ids: HashSet<String> = all.iter().map(|r| r.id.clone()).collect();
        assert_eq!(all.len(), ids.len(), "an id appears twice");
        assert_eq!(ids, distinct_ids);
    }
}

// ---------------------------------------------------------------------------------------------
// Crash safety: a child process inserts batches and acknowledges each on stdout; it is killed
// with SIGKILL mid-way.

/// Set in the child to the database path; selects the helper mode of `crash_child`.
const CRASH_ENV: &str = "CENSORWATCH_STORE_CRASH_CHILD_DB";
const CRASH_BATCH: usize = 200;
const CRASH_MAX_BATCHES: usize = 3000;

/// Batch `k`: ids `crash-<k>-<j>` for `j < CRASH_BATCH`, plus (after the first) the first id of
/// batch `k - 1` again, as a duplicate.
fn crash_batch(templates: &[Record], k: usize) -> Vec<Record> {
    let record = |k: usize, j: usize| {
        let mut r = templates[(k * CRASH_BATCH + j) % templates.len()].clone();
        r.id = format!("crash-{k:05}-{j:03}");
        r.meta.start_time = 1_750_000_000 + k as i64;
        r
    };
    let mut batch: Vec<Record> = (0..CRASH_BATCH).map(|j| record(k, j)).collect();
    if k > 0 {
        batch.push(record(k - 1, 0));
    }
    batch
}

/// Not a test on its own: in the child (when `CRASH_ENV` is set) it inserts batches forever and
/// prints `ACK <k> <ids…>` after each acknowledged one. Otherwise it does nothing.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let templates = small_fixture_records(16 * 1024);
    let store = SqliteStore::open(Path::new(&path)).unwrap();
    let mut out = std::io::stdout().lock();
    for k in 0..CRASH_MAX_BATCHES {
        let batch = crash_batch(&templates, k);
        store.insert(&batch).unwrap();
        let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
        // The leading newline ends libtest's "test crash_child ... " so the ACK starts a line.
        out.write_all(format!("\nACK {k} {}\n", ids.join(" ")).as_bytes())
            .unwrap();
        out.flush().unwrap();
    }
}

/// When the parent kills the child.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// As soon as batch `n - 1` is acknowledged: the child is usually preparing batch `n`.
    Ack(usize),
    /// Once a row of batch `n` is visible to another connection (bounded polling): with a correct
    /// store the whole batch has committed and its acknowledgement may not be printed yet; a store
    /// that commits row by row is caught with half a batch.
    Visible(usize),
    /// Once the `-wal` file changes after batch `n - 1` is acknowledged (bounded polling): the
    /// child is writing batch `n`'s commit, so the kill lands in or right after the commit.
    WalWrite(usize),
}

#[cfg(unix)]
/// Runs the child until `kill_at`, kills it with SIGKILL, and returns the acknowledged batches
/// (number, ids), including any printed before it died.
fn run_and_kill_child(path: &Path, kill_at: KillAt) -> Vec<(usize, Vec<String>)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CRASH_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("re-run the test binary as the crash child");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut killed = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if stdout.read_until(b'\n', &mut line).unwrap() == 0 {
            break; // EOF: the child is gone
        }
        // A line cut short by the kill has no newline and acknowledges nothing.
        let Some(text) = line.strip_suffix(b"\n") else { continue };
        let text = String::from_utf8(text.to_vec()).unwrap();
        let Some(rest) = text.strip_prefix("ACK ") else {
            continue;
        };
        let mut words = rest.split(' ');
        let k: usize = words.next().unwrap().parse().unwrap();
        assert_eq!(k, acked.len(), "batches are acknowledged in order");
        acked.push((k, words.map(str::to_owned).collect()));
        match kill_at {
            _ if killed => {}
            KillAt::Ack(n) if acked.len() >= n => {
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
            KillAt::WalWrite(n) if acked.len() >= n => {
                let wal = PathBuf::from(format!("{}-wal", path.display()));
                let stamp = || std::fs::metadata(&wal).ok().map(|m| (m.len(), m.modified().ok()));
                let before = stamp();
                let deadline = Instant::now() + Duration::from_secs(30);
                while stamp() == before {
                    assert!(Instant::now() < deadline, "the WAL never changed after batch {n}");
                    std::hint::spin_loop();
                }
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
            KillAt::Visible(n) if acked.len() >= n => {
                let watcher =
                    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
                let first = format!("crash-{n:05}-000");
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let seen: i64 = watcher
                        .query_row("SELECT COUNT(*) FROM measurements WHERE id = ?1", [&first], |r| {
                            r.get(0)
                        })
                        .unwrap();
                    if seen > 0 {
                        break;
                    }
                    assert!(Instant::now() < deadline, "batch {n} never became visible");
                    std::thread::sleep(Duration::from_micros(200));
                }
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
            _ => {}
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "the child exited ({status}) before {kill_at:?}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died of SIGKILL, not of something else: {status}"
    );
    acked
}

#[cfg(unix)]
#[test]
fn sigkill_mid_insert_loses_no_acknowledged_batch_and_keeps_no_half_batch() {
    let templates = small_fixture_records(16 * 1024);
    for kill_at in [
        KillAt::Ack(3),
        KillAt::WalWrite(4),
        KillAt::Visible(5),
        KillAt::WalWrite(7),
        KillAt::Ack(8),
        KillAt::WalWrite(10),
        KillAt::Visible(11),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = db_in(dir.path());
        let acked = run_and_kill_child(&path, kill_at);
        let store = SqliteStore::open(&path).expect("a killed writer leaves an openable database");

        for (k, ids) in &acked {
            assert_eq!(ids.len(), CRASH_BATCH + usize::from(*k > 0));
            for id in ids {
                assert!(
                    store.get(id).unwrap().is_some(),
                    "acknowledged {id} (batch {k}) is lost"
                );
            }
        }
        // Per batch, its own ids are all there or none; committed batches form a prefix that
        // covers every acknowledged batch (plus perhaps the one committed but not yet printed).
        let last_possible = acked.len() + 2;
        let present: Vec<usize> = (0..last_possible)
            .map(|k| {
                (0..CRASH_BATCH)
                    .filter(|j| store.get(&format!("crash-{k:05}-{j:03}")).unwrap().is_some())
                    .count()
            })
            .collect();
        assert!(
            present.iter().all(|&n| n == 0 || n == CRASH_BATCH),
            "half a batch was stored: {present:?}"
        );
        let committed = present.iter().take_while(|&&n| n == CRASH_BATCH).count();
        assert!(
            present[committed..].iter().all(|&n| n == 0),
            "committed batches are not a prefix: {present:?}"
        );
        assert!(
            committed == acked.len() || committed == acked.len() + 1,
            "{committed} batches committed, {} acknowledged",
            acked.len()
        );
        if let KillAt::Visible(n) = kill_at {
            assert!(
                committed > n,
                "batch {n} was seen, so it must have committed: {present:?}"
            );
        }
        eprintln!(
            "{kill_at:?}: {} batches acknowledged, {committed} committed",
            acked.len()
        );
        assert_eq!(
            store.count().unwrap(),
            (committed * CRASH_BATCH) as u64,
            "count = distinct committed ids"
        );

        // Re-inserting everything fills the gap and stores nothing twice.
        let before = store.count().unwrap();
        let mut stored = 0;
        for k in 0..last_possible {
            stored += store.insert(&crash_batch(&templates, k)).unwrap().stored;
        }
        let total = (last_possible * CRASH_BATCH) as u64;
        assert_eq!(store.count().unwrap(), total);
        assert_eq!(stored, total - before);
        let all = query_all(
            &store,
            &MeasurementQuery {
                limit: 1000,
                ..Default::default()
            },
        );
        assert_eq!(all.iter().map(|r| &r.id).collect::<HashSet<_>>().len() as u64, total);
    }
}

/// A redacted measurement's bytes are not left behind in the database file or its write-ahead
/// log (`secure_delete` zeroes the freed pages; the log is checkpointed and truncated).
#[test]
fn a_redaction_leaves_no_copy_in_the_files() {
    const MARKER: &str = "personal-data-marker-7c1e9a";
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    let store = SqliteStore::open(&path).unwrap();
    let records = distinct(&fixture_records());
    let mut leaky = records[0].clone();
    leaky.meta.input = Some(format!("https://example.org/?owner={MARKER}"));
    store.insert(&records[1..]).unwrap();
    store.insert(std::slice::from_ref(&leaky)).unwrap();
    let on_disk = |path: &Path| -> bool {
        let mut bytes = std::fs::read(path).unwrap();
        if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
            bytes.extend(wal);
        }
        bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
    };
    assert!(on_disk(&path), "the marker is stored before the redaction");
    let triggers = || -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    assert_eq!(triggers(), 0, "inserts pay for no trigger until something is redacted");
    store.redact(&leaky.id, "leaked personal data", 1).unwrap().unwrap();
    assert_eq!(triggers(), 1, "the first redaction adds the trigger that keeps it out");
    drop(store);
    assert!(!on_disk(&path), "no copy of the redacted row is left");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get(&leaky.id).unwrap(), None);
    assert_eq!(store.count().unwrap(), records.len() as u64 - 1);
}
