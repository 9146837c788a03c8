//! Where an ingest's time goes, stage by stage, in CPU microseconds per measurement.
//!
//! Runs each stage of `censorwatch ingest` on its own, on one thread, over real-shaped
//! measurements (the lines of `testdata/ooni/real_measurements_combined.jsonl` and the 50
//! synthetic measurements, cycled, each copy with a fresh `measurement_uid`, as
//! `scripts/bench-ingest.sh` builds its input), and prints the median over several rounds of
//! each stage's CPU time per measurement. CPU time (the thread's own, from
//! `/proc/thread-self/schedstat`) rather than wall time: on a machine shared with other work it
//! does not count the time the thread waited for a core. The stages:
//!
//! - `parse`: `Measurement::from_slice`;
//! - `verdict`: `Analyzer::verdict` on the parsed measurement;
//! - `record`: `Record::new` (id, query columns, a copy of the raw bytes);
//! - `compress`: zstd of the raw bytes (`Record::compressed`);
//! - `sqlite`: `SqliteStore::insert` in batches of [`censorwatch::ingest::BATCH`] into a fresh
//!   database (one transaction each);
//! - `ledger`: `Ledger::log_stored` of each stored batch (leaf hashes, the log's append and
//!   fsync, the leaf indexes recorded in the store).
//!
//! `cargo bench -p censorwatch --bench ingest_stages` (`INGEST_STAGES_N` measurements per
//! round, default 6000; `INGEST_STAGES_ROUNDS`, default 5).

use censorwatch_evidence::Ledger;
use censorwatch_model::Measurement;
use censorwatch_store::{Record, SqliteStore, Store};
use censorwatch_verdict::Analyzer;
use std::path::Path;
use std::time::Instant;

/// The allocator the `censorwatch` binary uses, so that the figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn testdata() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/ooni"))
}

/// The corpus's measurements, one line each (the synthetic ones compacted).
fn templates() -> Vec<Vec<u8>> {
    let real = std::fs::read(testdata().join("real_measurements_combined.jsonl")).expect("real corpus");
    let mut lines: Vec<Vec<u8>> = real
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect();
    let mut synthetic: Vec<_> = std::fs::read_dir(testdata().join("synthetic"))
        .expect("synthetic dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    synthetic.sort();
    for path in synthetic {
        let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("file")).expect("json");
        lines.push(serde_json::to_vec(&value).expect("serialize"));
    }
    // INGEST_STAGES_MAX_BYTES: only the measurements up to that size (the corpus's mean is
    // pulled to ~41 KB by a few large ones; its median is ~5.5 KB).
    if let Some(max) = std::env::var("INGEST_STAGES_MAX_BYTES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        lines.retain(|l| l.len() <= max);
    }
    lines
}

/// `line` with its `measurement_uid` replaced by `uid` (or one added in front).
fn with_uid(line: &[u8], uid: &str) -> Vec<u8> {
    let key = b"\"measurement_uid\"";
    let new = format!("\"measurement_uid\":\"{uid}\"");
    if let Some(at) = memchr::memmem::find(line, key) {
        // The value: the next string after the colon.
        let after = at + key.len();
        let open = after + memchr::memchr(b'"', &line[after..]).expect("uid value");
        let close = open + 1 + memchr::memchr(b'"', &line[open + 1..]).expect("uid end");
        let mut out = line[..at].to_vec();
        out.extend_from_slice(new.as_bytes());
        out.extend_from_slice(&line[close + 1..]);
        out
    } else {
        let mut out = b"{".to_vec();
        out.extend_from_slice(new.as_bytes());
        out.push(b',');
        out.extend_from_slice(&line[1..]);
        out
    }
}

/// This thread's CPU time in nanoseconds (wall time where schedstat is unavailable).
fn cpu_ns(start: Instant) -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| start.elapsed().as_nanos() as u64)
}

const STAGES: [&str; 6] = ["parse", "verdict", "record", "compress", "sqlite", "ledger"];

/// One round: the measurements go through the stages a batch at a time (as in an ingest, so
/// memory is reused rather than faulted in afresh), each stage's CPU time summed.
fn round(lines: &[Vec<u8>], analyzer: &Analyzer) -> [f64; 6] {
    let origin = Instant::now();
    let mut ns = [0u64; 6];
    let mut time = |stage: usize, f: &mut dyn FnMut()| {
        let t0 = cpu_ns(origin);
        f();
        ns[stage] += cpu_ns(origin) - t0;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("bench.db")).expect("store");
    // Opened before the inserts: opening reconciles, and would log what it found stored.
    let (mut ledger, _) = Ledger::open_for(&dir.path().join("data"), &store).expect("ledger");
    for batch in lines.chunks(censorwatch::ingest::BATCH) {
        let mut parsed = Vec::new();
        time(0, &mut || {
            parsed = batch
                .iter()
                .map(|l| Measurement::from_slice(l).expect("parses"))
                .collect()
        });
        let mut verdicts = Vec::new();
        time(1, &mut || {
            verdicts = parsed.iter().map(|m| analyzer.verdict(m).expect("judged")).collect()
        });
        let mut records: Vec<Record> = Vec::new();
        time(2, &mut || {
            records = batch
                .iter()
                .zip(&parsed)
                .zip(verdicts.drain(..))
                .map(|((l, m), v)| Record::new(l, m, v))
                .collect();
            parsed.clear();
        });
        time(3, &mut || {
            records = std::mem::take(&mut records)
                .into_iter()
                .map(|r| r.compressed().expect("compressed"))
                .collect()
        });
        time(4, &mut || {
            assert_eq!(store.insert(&records).expect("insert").stored, records.len() as u64);
        });
        time(5, &mut || {
            let logged = ledger.log_stored(&store, &records).expect("logged");
            assert_eq!(logged.appended, records.len() as u64);
        });
    }
    ns.map(|t| t as f64 / 1e3 / lines.len() as f64)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing we need either.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("INGEST_STAGES_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000);
    let rounds: usize = std::env::var("INGEST_STAGES_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let templates = templates();
    let lines: Vec<Vec<u8>> = (0..n)
        .map(|i| with_uid(&templates[i % templates.len()], &format!("bench_{i:09}")))
        .collect();
    let bytes: usize = lines.iter().map(Vec::len).sum();
    let analyzer = Analyzer::with_builtin_fingerprints();
    println!(
        "ingest stages: {n} measurements ({:.1} MB, mean {:.1} KB), {rounds} rounds, CPU µs per measurement (one thread)",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64 / 1e3
    );
    if std::env::var_os("INGEST_STAGES_LEVELS").is_some() {
        zstd_levels(&lines);
    }
    let results: Vec<[f64; 6]> = (0..rounds).map(|_| round(&lines, &analyzer)).collect();
    let mut total = 0.0;
    for (i, stage) in STAGES.iter().enumerate() {
        let mut v: Vec<f64> = results.iter().map(|r| r[i]).collect();
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        total += median;
        println!(
            "  {stage:<9} median {median:8.1} µs   (min {:7.1}, max {:7.1})",
            v[0],
            v[v.len() - 1]
        );
    }
    println!(
        "  {:<9} median {total:8.1} µs   → {:.0} measurements/s per core",
        "sum",
        1e6 / total
    );
}

/// What each zstd level would cost and give on these measurements, one at a time as stored.
fn zstd_levels(lines: &[Vec<u8>]) {
    let origin = Instant::now();
    let raw: usize = lines.iter().map(Vec::len).sum();
    for level in [3, 1, -1, -2, -3, -5] {
        let mut compressor = zstd::bulk::Compressor::new(level).expect("compressor");
        let mut packed = 0;
        let mut best = u64::MAX;
        for _ in 0..3 {
            let t0 = cpu_ns(origin);
            packed = lines
                .iter()
                .map(|l| compressor.compress(l).expect("compress").len())
                .sum();
            best = best.min(cpu_ns(origin) - t0);
        }
        println!(
            "  zstd level {level:>2}: {:5.1} µs per measurement, ratio {:.2}",
            best as f64 / 1e3 / lines.len() as f64,
            raw as f64 / packed as f64
        );
    }
}
