//! The ClickHouse backend against a real server: the shared conformance suite, then what only
//! this backend has to prove (schema versions, errors that tell "down" from "bad query",
//! idempotence across threads and store instances, corrupt rows).
//!
//! The server comes from `CENSORWATCH_CLICKHOUSE_URL` (`clickhouse://127.0.0.1:8123/`, as
//! `scripts/test` sets after `scripts/clickhouse-up`). Each test gets its own freshly created
//! database, dropped afterwards. When the variable is set, an unreachable server **fails** the
//! tests; when it is unset (a developer without ClickHouse), the tests that need a server print a
//! note and return.

use censorwatch_store::clickhouse::SCHEMA_VERSION;
use censorwatch_store::conformance::{HoldsStore, distinct, fixture_records, query_all, small_fixture_records};
use censorwatch_store::{ClickHouseStore, InsertReport, MeasurementQuery, Record, Store, StoreError};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The variable naming the server.
const ENV: &str = "CENSORWATCH_CLICKHOUSE_URL";

/// `clickhouse://host:port` from [`ENV`], or `None` (with a note) when it is unset.
fn server() -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => {
            let rest = url
                .trim()
                .strip_prefix("clickhouse://")
                .unwrap_or_else(|| panic!("{ENV}={url:?} must look like clickhouse://127.0.0.1:8123/"));
            let authority = rest.split('/').next().unwrap_or_default();
            Some(format!("clickhouse://{authority}"))
        }
        _ => {
            eprintln!(
                "note: {ENV} is not set, so this ClickHouse test does nothing; run scripts/clickhouse-up and set \
                 {ENV}=clickhouse://127.0.0.1:8123/ (scripts/test does both)"
            );
            None
        }
    }
}

/// A database name no other test (or test run) uses.
fn unique_database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "cw_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs one statement over HTTP, outside the store (to inspect or damage it); returns the body.
fn sql(store: &ClickHouseStore, statement: &str) -> String {
    ureq::post(store.http_url())
        .query("database", store.database())
        .send_string(statement)
        .unwrap_or_else(|e| panic!("`{statement}`: {e}"))
        .into_string()
        .unwrap()
}

/// A store in its own fresh database, dropped with it.
struct TempClickHouse {
    store: ClickHouseStore,
}

impl TempClickHouse {
    /// `None` when no server is configured; panics when one is configured but unusable.
    fn new() -> Option<TempClickHouse> {
        let url = format!("{}/{}", server()?, unique_database());
        let store = ClickHouseStore::open(&url)
            .unwrap_or_else(|e| panic!("{ENV} is set, so the server must be usable: opening {url}: {e}"));
        Some(TempClickHouse { store })
    }

    /// Another store on the same database (as another part of the program would open).
    fn reopen(&self) -> ClickHouseStore {
        let url = format!("{}/{}", server().unwrap(), self.store.database());
        ClickHouseStore::open(&url).unwrap()
    }
}

impl Drop for TempClickHouse {
    fn drop(&mut self) {
        // Best effort: a failure here must not hide the test's own result.
        let _ = ureq::post(self.store.http_url())
            .send_string(&format!("DROP DATABASE IF EXISTS `{}`", self.store.database()));
    }
}

impl HoldsStore for TempClickHouse {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

mod conformance_suite {
    use super::TempClickHouse;
    use censorwatch_store::conformance::HoldsStore;

    censorwatch_store::conformance_tests!(|| -> Option<Box<dyn HoldsStore>> {
        TempClickHouse::new().map(|s| Box::new(s) as Box<dyn HoldsStore>)
    });
}

#[test]
fn an_unreachable_server_is_unavailable_not_a_bad_query() {
    // Port 1 on localhost: nothing listens there. Needs no server, so it always runs.
    match ClickHouseStore::open("clickhouse://127.0.0.1:1/censorwatch") {
        Err(e @ StoreError::Unavailable { .. }) => {
            let text = e.to_string();
            assert!(text.contains("127.0.0.1:1") && text.contains("start it"), "{text}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    match ClickHouseStore::open("postgres://127.0.0.1/x") {
        Err(StoreError::BadUrl { .. }) => {}
        other => panic!("expected BadUrl, got {other:?}"),
    }
}

#[test]
fn the_table_is_a_replacing_merge_tree_partitioned_by_month() {
    let Some(t) = TempClickHouse::new() else { return };
    let engine = sql(
        &t.store,
        &format!(
            "SELECT engine FROM system.tables WHERE database = '{}' AND name = 'measurements'",
            t.store.database()
        ),
    );
    assert_eq!(engine.trim(), "ReplacingMergeTree");
    t.store.insert(&distinct(&fixture_records())[..3]).unwrap();
    let mut r = distinct(&fixture_records())[3].clone();
    r.meta.start_time = 0;
    t.store.insert(&[r]).unwrap();
    let partitions = sql(
        &t.store,
        &format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = '{}' AND table = 'measurements' AND active \
             ORDER BY partition",
            t.store.database()
        ),
    );
    let partitions: Vec<&str> = partitions.lines().collect();
    assert!(partitions.contains(&"197001"), "{partitions:?}");
    assert!(
        partitions.iter().all(|p| p.len() == 6 && p.parse::<u32>().is_ok()),
        "{partitions:?}"
    );
}

#[test]
fn reopening_keeps_the_data_and_migrates_once() {
    let Some(t) = TempClickHouse::new() else { return };
    let records = distinct(&fixture_records());
    t.store.insert(&records).unwrap();
    for _ in 0..2 {
        let again = t.reopen();
        assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(again.count().unwrap(), records.len() as u64);
        assert_eq!(
            again.insert(&records).unwrap(),
            InsertReport {
                stored: 0,
                duplicates: records.len() as u64
            }
        );
    }
    assert_eq!(
        sql(&t.store, "SELECT count() FROM schema_migrations").trim(),
        SCHEMA_VERSION.to_string(),
        "one row per migration step, however often the database is opened"
    );
}

#[test]
fn a_version_5_database_gets_its_ids_keys_and_finds_its_duplicates() {
    let Some(t) = TempClickHouse::new() else { return };
    let records = distinct(&fixture_records());
    t.store.insert(&records).unwrap();
    // Back to what a version-5 database is: no keys table, no view feeding it, five migrations.
    for statement in [
        "DROP TABLE measurement_keys_feed",
        "DROP TABLE measurement_keys",
        "DROP TABLE schema_migrations",
        "CREATE TABLE schema_migrations (version UInt32, applied_at DateTime DEFAULT now()) ENGINE = TinyLog",
        "INSERT INTO schema_migrations (version) VALUES (1), (2), (3), (4), (5)",
    ] {
        sql(&t.store, statement);
    }
    let again = t.reopen();
    assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(
        sql(&again, "SELECT count(DISTINCT id) FROM measurement_keys").trim(),
        records.len().to_string(),
        "every stored id has its key after the migration"
    );
    // The duplicate check and the lookup by id read the keys: both see the old rows.
    assert_eq!(
        again.insert(&records).unwrap(),
        InsertReport {
            stored: 0,
            duplicates: records.len() as u64
        }
    );
    for record in &records {
        let got = again.get(&record.id).unwrap().expect("found by id");
        assert_eq!(got.raw, record.raw, "{}", record.id);
    }
    assert_eq!(again.count().unwrap(), records.len() as u64);
}

#[test]
fn a_newer_schema_is_refused() {
    let Some(t) = TempClickHouse::new() else { return };
    sql(
        &t.store,
        &format!(
            "INSERT INTO schema_migrations (version) VALUES ({})",
            SCHEMA_VERSION + 7
        ),
    );
    let url = format!("{}/{}", server().unwrap(), t.store.database());
    match ClickHouseStore::open(&url) {
        Err(e @ StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 7, SCHEMA_VERSION));
            assert!(e.to_string().contains("upgrade censorwatch"), "{e}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn server_errors_are_clickhouse_errors_naming_the_statement() {
    let Some(t) = TempClickHouse::new() else { return };
    sql(&t.store, "DROP TABLE measurements");
    match t.store.count() {
        Err(e @ StoreError::ClickHouse { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("SELECT count()") && text.contains("measurements"),
                "{text}"
            );
        }
        other => panic!("expected a ClickHouse error, got {other:?}"),
    }
    assert!(matches!(
        t.store.insert(&distinct(&fixture_records())[..1]),
        Err(StoreError::ClickHouse { .. })
    ));
}

#[test]
fn corrupt_rows_name_their_id() {
    let Some(t) = TempClickHouse::new() else { return };
    let f = distinct(&fixture_records());
    t.store.insert(&f[..3]).unwrap();
    // Copies of two rows under new ids, one with bad raw bytes, one with a bad verdict.
    let copy = |id: &str, column: &str, value: &str| {
        let columns = "start_time, probe_cc, probe_asn, probe_network_name, test_name, input, domain, has_domain, \
                       report_id, status, method, confidence, blockpage, ooni_blocking, accessible, verdict_json, \
                       raw_zstd_b64, raw_len";
        let select = columns.replace(column, &format!("{value} AS {column}"));
        sql(
            &t.store,
            &format!(
                "INSERT INTO measurements (id, {columns}) SELECT '{id}', {select} FROM measurements WHERE id = '{}'",
                f[0].id
            ),
        );
    };
    copy("bad-raw", "raw_zstd_b64", "'AAECAw=='");
    copy("bad-base64", "raw_zstd_b64", "'%%%'");
    copy("bad-verdict", "verdict_json", "'{'");
    for id in ["bad-raw", "bad-base64", "bad-verdict"] {
        match t.store.get(id) {
            Err(StoreError::Corrupt { id: got, .. }) => assert_eq!(got, id),
            other => panic!("expected Corrupt for {id}, got {other:?}"),
        }
    }
    assert_eq!(
        t.store.get(&f[2].id).unwrap().as_ref(),
        Some(&f[2]),
        "other rows are fine"
    );
}

#[test]
fn concurrent_overlapping_inserts_store_each_id_once() {
    let Some(t) = TempClickHouse::new() else { return };
    // Two threads share one store; two more use a second store on the same database.
    let shared = Arc::new(t.reopen());
    let other = Arc::new(t.reopen());
    let templates = small_fixture_records(16 * 1024);
    let record = |i: usize| {
        let mut r = templates[i % templates.len()].clone();
        r.id = format!("conc-{i:05}");
        r.meta.start_time = 1_740_000_000 + (i as i64 % 97);
        r
    };
    let per_thread: Vec<Vec<Record>> = (0..4)
        .map(|t| {
            let mut v: Vec<Record> = (t * 300..t * 300 + 600).map(record).collect();
            if t % 2 == 1 {
                v.reverse();
            }
            v
        })
        .collect();
    let reports: Vec<InsertReport> = std::thread::scope(|s| {
        let writers: Vec<_> = per_thread
            .iter()
            .enumerate()
            .map(|(i, records)| {
                let store = if i % 2 == 0 {
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
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(reports.iter().map(|r| r.stored).sum::<u64>(), 1500);
    assert_eq!(reports.iter().map(|r| r.duplicates).sum::<u64>(), 2400 - 1500);
    assert_eq!(t.store.count().unwrap(), 1500);
    let all = query_all(
        &t.store,
        &MeasurementQuery {
            limit: 1000,
            ..Default::default()
        },
    );
    let ids: HashSet<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!((all.len(), ids.len()), (1500, 1500), "an id appears twice");
}
