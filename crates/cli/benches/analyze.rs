//! Throughput of the in-process analyze loop ([`censorwatch::analyze::analyze_lines`]) on
//! web_connectivity JSONL: the 50 synthetic QA measurements and the real web_connectivity lines
//! of `testdata/ooni/real_measurements_combined.jsonl`, compacted to one line each. Reported in
//! bytes per second; `scripts/bench-analyze.sh` measures the whole binary on 1 GiB.

use censorwatch::analyze::{Options, Summary, analyze_lines};
use censorwatch_verdict::Analyzer;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use std::io::{self, Cursor};
use std::path::Path;

/// The allocator the `censorwatch` binary uses, so that the figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn testdata() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/ooni"))
}

/// The web_connectivity corpus as JSONL.
fn corpus() -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |value: serde_json::Value| {
        if value["test_name"] == "web_connectivity" {
            serde_json::to_writer(&mut out, &value).expect("serialize");
            out.push(b'\n');
        }
    };
    let real = std::fs::read_to_string(testdata().join("real_measurements_combined.jsonl")).expect("real corpus");
    for line in real.lines().filter(|l| !l.trim().is_empty()) {
        push(serde_json::from_str(line).expect("real line"));
    }
    let mut synthetic: Vec<_> = std::fs::read_dir(testdata().join("synthetic"))
        .expect("synthetic dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    synthetic.sort();
    for path in synthetic {
        push(serde_json::from_slice(&std::fs::read(&path).expect("synthetic file")).expect("synthetic json"));
    }
    out
}

fn bench(c: &mut Criterion) {
    let data = corpus();
    let analyzer = Analyzer::with_builtin_fingerprints();
    let mut group = c.benchmark_group("analyze");
    group.throughput(Throughput::Bytes(data.len() as u64));
    for json in [true, false] {
        let opts = Options {
            json,
            ..Options::default()
        };
        let name = if json { "json" } else { "human" };
        group.bench_with_input(BenchmarkId::new("web_connectivity", name), &data, |b, data| {
            b.iter(|| {
                let mut summary = Summary::default();
                analyze_lines(&analyzer, &mut Cursor::new(data), &mut io::sink(), &opts, &mut summary)
                    .expect("analyze");
                summary.measurements
            })
        });
    }
    group.finish();
}

/// criterion's generated group function has no doc comment of its own.
mod group {
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
