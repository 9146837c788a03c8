//! Throughput of the reader and the monitor together on the real RouteViews update files of
//! 24 February 2008 (`testdata/bgp/routeviews_2008_youtube`), with the May 2008 pyasn table as
//! expected origins, as `censorwatch bgp --origins` runs them. Reported in MRT records per second;
//! the route elements per record of the same files are printed first, to turn that into
//! elements per second.
//!
//! Three cases over the same three files (18:39–19:24 UTC, the start of the hijack; 81 015
//! records):
//! * `bzip2`: from the compressed files in memory, decompression included (the CLI's path);
//! * `decompressed`: from the decompressed MRT bytes, so parsing and monitoring alone;
//! * `reader_only`: the decompressed bytes through the reader with no monitor;
//! * `bzip2_only`: decompression alone, into a sink (throughput still in records, for comparison).
//!
//! Run: `cargo bench -p censorwatch-bgp --bench mrt`.

use censorwatch_bgp::{BgpMonitor, MonitorConfig, MrtReader, OriginTable, ReadReport};
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILES: [&str; 3] = [
    "updates.20080224.1839.bz2",
    "updates.20080224.1854.bz2",
    "updates.20080224.1909.bz2",
];

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/bgp")
}

fn compressed() -> Vec<Vec<u8>> {
    FILES
        .iter()
        .map(|f| std::fs::read(testdata().join("routeviews_2008_youtube").join(f)).expect("RouteViews file"))
        .collect()
}

fn decompressed(files: &[Vec<u8>]) -> Vec<Vec<u8>> {
    files
        .iter()
        .map(|f| {
            let mut out = Vec::new();
            bzip2::read::MultiBzDecoder::new(f.as_slice())
                .read_to_end(&mut out)
                .expect("bzip2");
            out
        })
        .collect()
}

/// Reads every file through one monitor (or none); returns (records, elements, signals) and the
/// monitor, so that criterion drops it (a few hundred thousand small allocations) untimed.
fn run(files: &[Vec<u8>], monitor: Option<BgpMonitor>) -> ((u64, u64, u64), Option<BgpMonitor>) {
    let (mut records, mut elements, mut signals, mut emitted) = (0, 0, Vec::new(), 0);
    let mut monitor = monitor;
    for (name, data) in FILES.iter().zip(files) {
        let reader = MrtReader::new(*name, data.as_slice()).expect("reader");
        let report: ReadReport = match monitor.as_mut() {
            Some(m) => reader.read_all(&mut |e| {
                m.apply(e, &mut signals);
                // What the CLI prints, dropped as it comes.
                emitted += signals.len() as u64;
                signals.clear();
            }),
            None => reader.read_all(&mut |_| {}),
        };
        assert!(report.is_clean(), "{report:?}");
        records += report.records;
        elements += report.elements;
    }
    if let Some(m) = monitor.as_mut() {
        m.finish(&mut signals);
    }
    ((records, elements, emitted + signals.len() as u64), monitor)
}

fn bench(c: &mut Criterion) {
    let table = OriginTable::load(&testdata().join("pyasn__ipasn_20080501_v12.dat.gz")).expect("pyasn table");
    let bz2 = compressed();
    let raw = decompressed(&bz2);
    let ((records, elements, _), _) = run(&raw, None);
    eprintln!(
        "bgp bench: {records} MRT records, {elements} route elements ({:.3} elements per record), {:.1} MB decompressed",
        elements as f64 / records as f64,
        raw.iter().map(Vec::len).sum::<usize>() as f64 / 1e6
    );

    let mut group = c.benchmark_group("mrt_routeviews_2008");
    group.throughput(Throughput::Elements(records));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    let monitor = || BgpMonitor::new(MonitorConfig::default(), table.clone());
    group.bench_function("bzip2", |b| {
        b.iter_batched(monitor, |m| run(&bz2, Some(m)), BatchSize::PerIteration)
    });
    group.bench_function("decompressed", |b| {
        b.iter_batched(monitor, |m| run(&raw, Some(m)), BatchSize::PerIteration)
    });
    group.bench_function("reader_only", |b| b.iter(|| run(&raw, None)));
    group.bench_function("bzip2_only", |b| {
        b.iter(|| {
            bz2.iter()
                .map(|f| {
                    let (_, mut r) = censorwatch_bgp::decompress(f.as_slice()).expect("bzip2");
                    std::io::copy(&mut r, &mut std::io::sink()).expect("bzip2")
                })
                .sum::<u64>()
        })
    });
    group.finish();
}

/// criterion's generated group function has no doc comment of its own.
mod group {
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
