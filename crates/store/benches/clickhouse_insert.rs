//! How fast the ClickHouse store ingests: batches of 10 000 real-shaped records (the OONI
//! fixtures of at most 16 KiB cycled, ids made unique) into a growing table, in records per
//! second; and the same batch again (all duplicates: only the existence check runs).
//!
//! Needs a server: set `CENSORWATCH_CLICKHOUSE_URL=clickhouse://127.0.0.1:8123/` (after
//! `scripts/clickhouse-up`). Without it the benchmark prints a note and does nothing. It uses a
//! fresh database and drops it at the end.

use censorwatch_store::conformance::{small_fixture_records, unique_records};
use censorwatch_store::{ClickHouseStore, Record, Store};
use criterion::{BatchSize, Criterion, Throughput};
use std::cell::Cell;

const BATCH: usize = 10_000;
const ENV: &str = "CENSORWATCH_CLICKHOUSE_URL";

fn bench_insert(c: &mut Criterion, server: &str) {
    let database = format!("cw_bench_{}", std::process::id());
    let store = ClickHouseStore::open(&format!("{}/{database}", server.trim_end_matches('/')))
        .unwrap_or_else(|e| panic!("{ENV} is set, so the server must be usable: {e}"));
    let mut group = c.benchmark_group("clickhouse_insert");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    let templates = small_fixture_records(16 * 1024);
    let next = Cell::new(0usize);
    let fresh_batch = || -> Vec<Record> {
        let n = next.get();
        next.set(n + 1);
        unique_records(&templates, &format!("typical{n}-"), BATCH)
    };
    group.bench_function(format!("typical/batch_of_{BATCH}"), |b| {
        b.iter_batched(
            fresh_batch,
            |batch| assert_eq!(store.insert(&batch).unwrap().stored, BATCH as u64),
            BatchSize::PerIteration,
        )
    });
    let duplicates = unique_records(&templates, "typical0-", BATCH);
    group.bench_function(format!("typical/batch_of_{BATCH}_all_duplicates"), |b| {
        b.iter(|| assert_eq!(store.insert(&duplicates).unwrap().duplicates, BATCH as u64))
    });
    group.finish();
    eprintln!("table size at the end: {} records", store.count().unwrap());
    let _ = ureq::post(store.http_url()).send_string(&format!("DROP DATABASE IF EXISTS `{database}`"));
}

fn main() {
    let server = match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            eprintln!(
                "clickhouse_insert: {ENV} is not set, so there is nothing to measure; run scripts/clickhouse-up and \
                 set {ENV}=clickhouse://127.0.0.1:8123/"
            );
            return;
        }
    };
    // The URL's database part is replaced by a fresh one.
    let authority = server
        .trim()
        .strip_prefix("clickhouse://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("{ENV}={server:?} must look like clickhouse://127.0.0.1:8123/"));
    let mut criterion = Criterion::default().configure_from_args();
    bench_insert(&mut criterion, &format!("clickhouse://{authority}"));
    criterion.final_summary();
}
