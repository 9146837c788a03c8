//! What the transparency log costs.
//!
//! - `append/batch_of_2000`: appending one store batch (2 000 leaf hashes) to a log on disk,
//!   durably (fdatasync of leaves, level files and head); criterion's throughput is appends/s.
//! - `leaf_hash/measurement`: the leaf hash of one real-sized measurement (≈ 3 KiB raw, a
//!   verdict), the other per-measurement cost of logging.
//! - On a log of 10 million leaves (built once per run in a temporary directory, ≈ 340 MB):
//!   `inclusion_proof/10M` and `verify_inclusion/10M` (random leaves), `consistency_proof/10M`
//!   and `verify_consistency/10M` (random old sizes), and `open/10M` (what [`Log::open`]'s full
//!   rehash of every leaf costs at startup). Proof sizes are printed before the timings.
//! - `ledger/…/batch_of_2000`: what logging adds to ingest: a batch of 2 000 real-shaped records
//!   (OONI fixtures up to 16 KiB, ids made unique, compressed beforehand as ingest's workers do)
//!   stored into SQLite alone (`sqlite_insert`), and stored then logged with
//!   [`Ledger::log_stored`] (`sqlite_insert_and_log`: ask which are new, hash, append, record the
//!   indexes), and the logging alone (`log_stored`, the batch stored untimed beforehand).
//!
//! Run: `cargo bench -p censorwatch-evidence --bench log` (set `CW_BENCH_LOG_SIZE` for another
//! size than 10 000 000).

use censorwatch_evidence::merkle::{self, Hash, leaf_hash};
use censorwatch_evidence::{Ledger, Log, measurement_leaf_hash};
use censorwatch_store::conformance::{small_fixture_records, unique_records};
use censorwatch_store::{Record, SqliteStore, Store};
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use std::cell::Cell;
use std::time::Instant;

const BATCH: usize = 2_000;

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_le_bytes())
}

/// A small deterministic generator (xorshift) for the random leaves and sizes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(20);
    group.throughput(Throughput::Elements(BATCH as u64));
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    let next = Cell::new(0u64);
    group.bench_function(format!("batch_of_{BATCH}"), |b| {
        b.iter_batched(
            || {
                let n = next.get();
                next.set(n + BATCH as u64);
                (n..n + BATCH as u64).map(leaf).collect::<Vec<_>>()
            },
            |batch| log.append_batch(&batch).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.finish();

    let mut group = c.benchmark_group("leaf_hash");
    group.throughput(Throughput::Elements(1));
    let raw = vec![b'x'; 3 * 1024];
    let verdict = br#"{"status":"blocked","method":"dns.nxdomain","confidence":0.9,"blockpage":null,"ooni_blocking":"dns","accessible":false,"reasons":["the resolver said the name does not exist; the control resolved it"]}"#;
    group.bench_function("measurement", |b| {
        b.iter(|| {
            measurement_leaf_hash("20240217T000000Z_webconnectivity_PK_59257_n1_abcdefgh", &raw, verdict).unwrap()
        })
    });
    group.finish();
}

fn bench_big_log(c: &mut Criterion) {
    let size: u64 = std::env::var("CW_BENCH_LOG_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let label = if size % 1_000_000 == 0 {
        format!("{}M", size / 1_000_000)
    } else {
        size.to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    {
        let mut log = Log::open(dir.path()).unwrap();
        let mut i = 0u64;
        while i < size {
            let n = (size - i).min(100_000);
            let batch: Vec<Hash> = (i..i + n).map(leaf).collect();
            log.append_batch(&batch).unwrap();
            i += n;
        }
    }
    eprintln!(
        "built a log of {size} leaves in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let log = Log::open(dir.path()).unwrap();
    let root = log.root();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let index = rng.next() % size;
    let proof = log.inclusion_proof(index, size).unwrap();
    let old = 1 + rng.next() % (size - 1);
    let cproof = log.consistency_proof(old, size).unwrap();
    eprintln!(
        "proof sizes at {size} leaves: inclusion {} hashes ({} bytes), consistency from {old} {} hashes ({} bytes)",
        proof.len(),
        32 * proof.len(),
        cproof.len(),
        32 * cproof.len()
    );

    let mut group = c.benchmark_group("big_log");
    group.sample_size(30);
    group.bench_function(format!("inclusion_proof/{label}"), |b| {
        b.iter_batched(
            || rng.next() % size,
            |i| log.inclusion_proof(i, size).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let cases: Vec<(u64, Hash, Vec<Hash>)> = (0..64)
        .map(|_| {
            let i = rng.next() % size;
            (i, log.leaf(i).unwrap(), log.inclusion_proof(i, size).unwrap())
        })
        .collect();
    let k = Cell::new(0usize);
    group.bench_function(format!("verify_inclusion/{label}"), |b| {
        b.iter(|| {
            let (i, leaf, proof) = &cases[k.get() % cases.len()];
            k.set(k.get() + 1);
            merkle::verify_inclusion(*i, size, leaf, proof, &root).unwrap()
        })
    });
    group.bench_function(format!("consistency_proof/{label}"), |b| {
        b.iter_batched(
            || 1 + rng.next() % (size - 1),
            |old| log.consistency_proof(old, size).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let ccases: Vec<(u64, Hash, Vec<Hash>)> = (0..16)
        .map(|_| {
            let old = 1 + rng.next() % (size - 1);
            (
                old,
                log.root_at(old).unwrap(),
                log.consistency_proof(old, size).unwrap(),
            )
        })
        .collect();
    group.bench_function(format!("verify_consistency/{label}"), |b| {
        b.iter(|| {
            let (old, old_root, proof) = &ccases[k.get() % ccases.len()];
            k.set(k.get() + 1);
            merkle::verify_consistency(*old, size, old_root, &root, proof).unwrap()
        })
    });
    drop(log);
    group.sample_size(10);
    group.bench_function(format!("open/{label}"), |b| {
        b.iter(|| Log::open(dir.path()).unwrap().size())
    });
    group.finish();
}

fn bench_ledger(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    let templates = small_fixture_records(16 * 1024);
    let next = Cell::new(0usize);
    let fresh = || -> Vec<Record> {
        let n = next.get();
        next.set(n + 1);
        unique_records(&templates, &format!("b{n}-"), BATCH)
            .into_iter()
            .map(|r| r.compressed().unwrap())
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("plain.db")).unwrap();
    group.bench_function(format!("sqlite_insert/batch_of_{BATCH}"), |b| {
        b.iter_batched(fresh, |batch| store.insert(&batch).unwrap(), BatchSize::LargeInput)
    });
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("logged.db")).unwrap();
    let (mut ledger, _) = Ledger::open_for(dir.path(), &store).unwrap();
    group.bench_function(format!("sqlite_insert_and_log/batch_of_{BATCH}"), |b| {
        b.iter_batched(
            fresh,
            |batch| {
                store.insert(&batch).unwrap();
                ledger.log_stored(&store, &batch).unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    // The logging alone: the batch is stored in the setup, not timed.
    group.bench_function(format!("log_stored/batch_of_{BATCH}"), |b| {
        b.iter_batched(
            || {
                let batch = fresh();
                store.insert(&batch).unwrap();
                batch
            },
            |batch| ledger.log_stored(&store, &batch).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench_append(&mut c);
    bench_ledger(&mut c);
    bench_big_log(&mut c);
}

criterion_main!(benches);
