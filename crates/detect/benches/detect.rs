//! Detection benchmarks (criterion; `cargo bench -p censorwatch-detect`):
//!
//! - `batch/10M`: [`detect`] over about 10.6 million simulated measurements (8 × the simulator's
//!   84 scenarios over 16 days: about 5 000 series of (domain, country, network)) plus their
//!   2.9 million outage-signal samples: the time to find every event and outage from scratch;
//! - `incremental/observe+refresh`: a detector that already holds 1.2 million measurements gets
//!   one more, at the current time, and brings every result up to date — the cost a server pays
//!   per measurement if it refreshes after each one;
//! - `incremental/observe`: the same measurement counted only (refreshed every 1 000), the cost
//!   when results are refreshed periodically.
//!
//! The inputs come from the simulator, so they have its mix of blocks, cycles, outages, noise,
//! gaps and late data. Criterion reports the median (and its interval) of its samples.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use censorwatch_detect::sim::{SimConfig, generate};
use censorwatch_detect::{Config, Detector, Observation, detect};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn batch(c: &mut Criterion) {
    let sim = generate(&SimConfig {
        seed: 11,
        scale: 8,
        days: 16,
        ..SimConfig::default()
    });
    let config = Config::default();
    let mut group = c.benchmark_group("batch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(sim.observations.len() as u64));
    let name = format!(
        "{}M measurements, {} signal samples",
        sim.observations.len() / 1_000_000,
        sim.signals.len()
    );
    group.bench_function(name, |b| {
        b.iter(|| {
            let report = detect(&sim.observations, &sim.signals, &config, sim.end).expect("valid config");
            assert!(report.stats.series >= 1_000);
            black_box(report.events.len())
        })
    });
    group.finish();
}

/// A detector holding the first 90% of a simulated timeline, and the remaining 10% to feed it.
fn warm_detector() -> (Detector, Vec<Observation>) {
    let sim = generate(&SimConfig {
        seed: 12,
        ..SimConfig::default()
    });
    let config = Config {
        lateness: i64::MAX,
        ..Config::default()
    };
    let mut detector = Detector::new(config).expect("valid config");
    let split = sim.observations.len() * 9 / 10;
    for o in &sim.observations[..split] {
        detector.observe(o).expect("in range");
    }
    for s in &sim.signals {
        detector.observe_signal(s).expect("in range");
    }
    detector.refresh(sim.observations[split].time);
    (detector, sim.observations[split..].to_vec())
}

/// The `k`-th new measurement: the tail replayed again and again, each round shifted later by
/// the tail's span, so that measurements keep arriving at the current time.
fn nth(tail: &[Observation], k: usize) -> Observation {
    let span = tail[tail.len() - 1].time - tail[0].time + 1;
    let mut o = tail[k % tail.len()].clone();
    o.time += (k / tail.len()) as i64 * span;
    o
}

fn incremental(c: &mut Criterion) {
    let mut group = c.benchmark_group("incremental");
    group.throughput(Throughput::Elements(1));

    let (mut detector, tail) = warm_detector();
    let mut k = 0;
    group.bench_function("observe+refresh", |b| {
        b.iter(|| {
            let o = nth(&tail, k);
            k += 1;
            detector.observe(&o).expect("in range");
            detector.refresh(o.time);
        })
    });

    let (mut detector, tail) = warm_detector();
    let mut k = 0;
    group.bench_function("observe (refresh every 1000)", |b| {
        b.iter(|| {
            let o = nth(&tail, k);
            k += 1;
            detector.observe(&o).expect("in range");
            if k % 1000 == 0 {
                detector.refresh(o.time);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, incremental, batch);
criterion_main!(benches);
