//! How fast the SQLite store aggregates (`Store::aggregate`, behind `/api/v1/aggregation` and the
//! dashboard's charts) over one million stored measurements: prints the median, p95 and maximum
//! latency of typical queries over repeated runs (not criterion: the target is a p95).
//!
//! ```text
//! cargo bench -p censorwatch-store --bench sqlite_aggregate
//! CENSORWATCH_BENCH_ROWS=200000 cargo bench -p censorwatch-store --bench sqlite_aggregate
//! ```
//!
//! The synthetic data: 60 days ending 2024-04-24, five countries (PK half of it), eight networks
//! each, 16 domains (the twitter platform's four a third of it), a block of twitter on most PK
//! networks in the last 30 days. Raw measurements are small (a few hundred bytes), so the file
//! size is the metadata's and the index's. The database is built once and kept under
//! `$CARGO_TARGET_DIR/censorwatch-bench/` (delete it to rebuild).

use censorwatch_model::{Method, Status, Verdict};
use censorwatch_store::{AggregateAxis, AggregateQuery, Record, RecordMeta, SqliteStore, Store};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;
/// 2024-04-24 00:00 UTC.
const END: i64 = 1_713_916_800;
const SPAN_DAYS: i64 = 60;
const RUNS: usize = 30;

const COUNTRIES: [(&str, u32, [u32; 8]); 5] = [
    ("PK", 50, [17557, 59257, 45595, 38193, 24499, 9541, 23674, 9260]),
    ("IR", 20, [58224, 44244, 197207, 16322, 31549, 12880, 43754, 57218]),
    ("RU", 15, [12389, 8359, 3216, 31213, 12714, 25513, 8402, 20485]),
    ("TR", 10, [9121, 15897, 34984, 47331, 16135, 20978, 12735, 8386]),
    ("MM", 5, [9988, 136255, 133385, 45558, 58952, 18399, 63852, 136465]),
];
const TWITTER: [&str; 4] = ["x.com", "twitter.com", "pbs.twimg.com", "t.co"];
const OTHERS: [&str; 12] = [
    "www.youtube.com",
    "www.facebook.com",
    "web.whatsapp.com",
    "telegram.org",
    "www.instagram.com",
    "www.tiktok.com",
    "signal.org",
    "www.bbc.com",
    "www.dw.com",
    "en.wikipedia.org",
    "www.google.com",
    "www.voanews.com",
];

/// xorshift64*: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn verdict(status: Status, method: Option<Method>) -> Verdict {
    Verdict {
        status,
        method,
        confidence: 0.9,
        blockpage: None,
        ooni_blocking: None,
        accessible: Some(status == Status::Ok),
        reasons: Vec::new(),
    }
}

fn record(i: u64, rng: &mut Rng, raw: &[u8], raw_zstd: &[u8]) -> Record {
    let mut pick = rng.below(100) as u32;
    let (cc, _, asns) = COUNTRIES
        .iter()
        .find(|(_, weight, _)| {
            if pick < *weight {
                true
            } else {
                pick -= weight;
                false
            }
        })
        .unwrap_or(&COUNTRIES[0]);
    let asn = asns[rng.below(8) as usize];
    let twitter = rng.below(3) == 0;
    let domain = if twitter {
        TWITTER[rng.below(4) as usize]
    } else {
        OTHERS[rng.below(12) as usize]
    };
    let start_time = END - SPAN_DAYS * DAY + rng.below((SPAN_DAYS * DAY) as u64) as i64;
    let blocking = *cc == "PK" && twitter && start_time >= END - 30 * DAY && asn != 9260;
    let roll = rng.below(100);
    let (status, method) = match (blocking, roll) {
        (true, 0..70) => (Status::Blocked, Some(Method::TlsReset)),
        (true, 70..95) => (Status::Ok, None),
        (false, 0..90) => (Status::Ok, None),
        (false, 90..93) => (Status::Blocked, Some(Method::DnsNxdomain)),
        (_, r) if r % 2 == 0 => (Status::Down, None),
        _ => (Status::Inconclusive, None),
    };
    Record {
        id: format!("bench-{i:08}"),
        meta: RecordMeta {
            start_time,
            probe_cc: (*cc).to_owned(),
            probe_asn: asn,
            probe_network_name: String::new(),
            test_name: "web_connectivity".into(),
            input: Some(format!("https://{domain}/")),
            domain: Some(domain.to_owned()),
            report_id: None,
        },
        verdict: verdict(status, method),
        raw: raw.to_vec(),
        raw_zstd: Some(raw_zstd.to_vec()),
    }
}

fn database(rows: u64) -> SqliteStore {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target.join(format!("censorwatch-bench/aggregate-v1-{rows}.db"));
    let store = SqliteStore::open(&path).expect("open the benchmark database");
    let have = store.count().unwrap();
    if have == rows {
        println!("reusing {} ({rows} measurements)", path.display());
        return store;
    }
    assert_eq!(
        have,
        0,
        "{} holds {have} measurements, not {rows}; delete it to rebuild",
        path.display()
    );
    println!("building {} ({rows} measurements, once)…", path.display());
    let raw = br#"{"test_name":"web_connectivity","software_name":"censorwatch-bench","input":"https://x.com/","test_keys":{"blocking":false,"accessible":true}}"#;
    let raw_zstd = censorwatch_store::compress::compress(raw).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let started = Instant::now();
    let mut i = 0;
    while i < rows {
        let n = (rows - i).min(20_000);
        let batch: Vec<Record> = (i..i + n).map(|k| record(k, &mut rng, raw, &raw_zstd)).collect();
        assert_eq!(store.insert(&batch).unwrap().stored, n);
        i += n;
    }
    println!("built in {:.1} s", started.elapsed().as_secs_f64());
    store
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() {
    // `cargo bench -- --no-run`-style flags and libtest's `--bench` are ignored.
    let rows: u64 = std::env::var("CENSORWATCH_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let store = database(rows);
    let twitter: Vec<String> = TWITTER.iter().map(|d| (*d).to_owned()).collect();
    let pk = Some("PK".to_owned());
    use AggregateAxis::*;
    let queries: Vec<(&str, AggregateQuery)> = vec![
        (
            "typical: PK, twitter's 4 domains, 30 days, time x asn, 1 h bins",
            AggregateQuery {
                probe_cc: pk.clone(),
                domains: twitter.clone(),
                since: Some(END - 30 * DAY),
                until: Some(END),
                axes: vec![Time, Asn],
                bin_seconds: 3600,
                probe_asn: None,
            },
        ),
        (
            "PK, twitter, 60 days, time x asn, 5 min bins",
            AggregateQuery {
                probe_cc: pk.clone(),
                domains: twitter.clone(),
                axes: vec![Time, Asn],
                bin_seconds: 300,
                ..Default::default()
            },
        ),
        (
            "PK, twitter, 60 days, asn x method",
            AggregateQuery {
                probe_cc: pk.clone(),
                domains: twitter.clone(),
                axes: vec![Asn, Method],
                ..Default::default()
            },
        ),
        (
            "country page: PK, all domains, 7 days, domain x asn",
            AggregateQuery {
                probe_cc: pk.clone(),
                since: Some(END - 7 * DAY),
                axes: vec![Domain, Asn],
                ..Default::default()
            },
        ),
        (
            "PK, all domains, 30 days, time x asn, 1 day bins",
            AggregateQuery {
                probe_cc: pk.clone(),
                since: Some(END - 30 * DAY),
                axes: vec![Time, Asn],
                bin_seconds: DAY,
                ..Default::default()
            },
        ),
        (
            "worst case: everything, cc x status",
            AggregateQuery {
                axes: vec![Cc, Status],
                ..Default::default()
            },
        ),
    ];
    println!("{RUNS} runs each, after one warm-up; latency of Store::aggregate");
    println!(
        "{:<66} {:>9} {:>6} {:>9} {:>9} {:>9}",
        "query", "matched", "rows", "median", "p95", "max"
    );
    for (name, query) in &queries {
        let warm = store.aggregate(query).unwrap();
        let matched: u64 = warm.iter().map(|r| r.measurements).sum();
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let rows = store.aggregate(query).unwrap();
                let elapsed = t.elapsed();
                assert_eq!(rows.len(), warm.len());
                elapsed
            })
            .collect();
        times.sort();
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        println!(
            "{name:<66} {matched:>9} {:>6} {:>9} {:>9} {:>9}",
            warm.len(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95)),
            ms(*times.last().unwrap())
        );
    }
}
