//! How fast the SQLite store ingests: batches of 1 000 real-shaped records (the OONI fixtures
//! cycled, ids made unique) into a growing database, in records per second.
//!
//! Two inputs: `typical` (fixtures of at most 16 KiB, median around 3 KiB, like most OONI
//! measurements) and `all` (every fixture, including the 0.2–0.9 MB Web Connectivity ones).

use censorwatch_store::conformance::{distinct, fixture_records, small_fixture_records, unique_records};
use censorwatch_store::{Record, SqliteStore, Store};
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use std::cell::Cell;

const BATCH: usize = 1_000;

fn bench_insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("sqlite_insert");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, templates) in [
        ("typical", small_fixture_records(16 * 1024)),
        ("all", distinct(&fixture_records())),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("bench.db")).unwrap();
        let next = Cell::new(0usize);
        let fresh_batch = || -> Vec<Record> {
            let n = next.get();
            next.set(n + 1);
            unique_records(&templates, &format!("{name}{n}-"), BATCH)
        };
        group.bench_function(format!("{name}/batch_of_{BATCH}"), |b| {
            b.iter_batched(
                fresh_batch,
                |batch| {
                    let report = store.insert(&batch).unwrap();
                    assert_eq!(report.stored, BATCH as u64);
                },
                BatchSize::PerIteration,
            )
        });
        let duplicates = unique_records(&templates, &format!("{name}0-"), BATCH);
        group.bench_function(format!("{name}/batch_of_{BATCH}_all_duplicates"), |b| {
            b.iter(|| assert_eq!(store.insert(&duplicates).unwrap().duplicates, BATCH as u64))
        });
    }
    group.finish();
}

mod group {
    //! `criterion_group!` generates an undocumented public function.
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::bench_insert);
}
criterion_main!(group::benches);
