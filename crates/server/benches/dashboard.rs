//! Dashboard pages, and the aggregation, events, outages and feed endpoints, over one million
//! stored measurements (SQLite): each requested over loopback HTTP from a real server, one
//! request at a time; prints the median, p95 and maximum latency of each. The target is
//! p95 < 200 ms.
//!
//! The database is seeded once and cached at `<target>/dashboard-bench/1m.db` (delete it to
//! reseed; `DASHBOARD_BENCH_ROWS` sets another size). The seed: 30 days, ten countries of five
//! networks each, eight domains of five platforms; Pakistan holds 40% of the rows (the worst
//! case for its pages), with x.com blocked (TLS reset) on three of its networks for the last
//! 20 days, and facebook blocked by DNS in Iran; events computed by the batch detector.
//!
//! With `--expiry`, it then asks for the home page every 200 ms for 70 s, across the moment
//! (60 s after it was made) when its list of countries, a scan of every measurement, goes
//! stale, and prints the median, p95 and maximum latency of those requests and how many took
//! over 200 ms: what a visitor meets once a minute.
//!
//! Run: `cargo bench -p censorwatch-server --bench dashboard` (`-- --requests N` for more
//! samples per page, 40 by default; `-- --expiry` for the expiry phase).

use bytes::Bytes;
use censorwatch_model::{Method, Status, Verdict};
use censorwatch_server::{ServerConfig, serve};
use censorwatch_store::{MeasurementQuery, Record, RecordMeta, SqliteStore, Store};
use http_body_util::{BodyExt, Empty};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;
const COUNTRIES: [&str; 10] = ["PK", "IR", "RU", "CN", "TR", "IN", "EG", "MM", "VE", "ET"];
const DOMAINS: [&str; 8] = [
    "x.com",
    "twitter.com",
    "pbs.twimg.com",
    "www.facebook.com",
    "www.youtube.com",
    "web.whatsapp.com",
    "t.me",
    "www.wikipedia.org",
];

/// A deterministic pseudo-random sequence (SplitMix64), so every seeding is the same.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn verdict(blocked: Option<Method>, noise: u64) -> Verdict {
    let (status, method, reasons) = match blocked {
        Some(m) => (Status::Blocked, Some(m), vec![format!("seeded block: {}", m.as_str())]),
        None if noise % 50 == 0 => (Status::Inconclusive, None, vec!["seeded: control failed".to_owned()]),
        None => (Status::Ok, None, vec!["seeded: same as the control".to_owned()]),
    };
    Verdict {
        status,
        method,
        confidence: 0.9,
        blockpage: None,
        ooni_blocking: None,
        accessible: Some(blocked.is_none()),
        reasons,
    }
}

/// The `i`th seeded record of `rows`, spread over the 30 days before `end`.
fn record(i: u64, rows: u64, end: i64, mix: &mut Mix) -> Record {
    let r = mix.next();
    // 40% Pakistan, the rest spread over the other nine.
    let cc = if r % 10 < 4 {
        "PK"
    } else {
        COUNTRIES[1 + (r / 10 % 9) as usize]
    };
    let net = (r / 100 % 5) as u32;
    let asn = 17_000 + 1000 * COUNTRIES.iter().position(|c| *c == cc).unwrap_or(0) as u32 + net;
    let domain = DOMAINS[(r / 1000 % DOMAINS.len() as u64) as usize];
    let start = end - 30 * DAY + (i as i64 * 30 * DAY) / rows as i64;
    let blocked = match (cc, domain) {
        ("PK", "x.com" | "twitter.com" | "pbs.twimg.com") if net < 3 && start > end - 20 * DAY => {
            Some(Method::TlsReset)
        }
        ("IR", "www.facebook.com") => Some(Method::DnsNxdomain),
        _ => None,
    };
    let id = format!("20240201T000000Z_webconnectivity_{cc}_{asn}_n1_{i:010}");
    let time = chrono::DateTime::from_timestamp(start, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let raw = serde_json::json!({
        "measurement_uid": id, "input": format!("https://{domain}/"), "probe_cc": cc, "probe_asn": format!("AS{asn}"),
        "probe_network_name": format!("Network {asn}"), "measurement_start_time": time, "test_name": "web_connectivity",
        "software_name": "censorwatch-bench", "test_keys": {"control": {"dns": {"failure": null, "addrs": ["192.0.2.1"]}}}
    })
    .to_string()
    .into_bytes();
    Record {
        id,
        meta: RecordMeta {
            start_time: start,
            probe_cc: cc.to_owned(),
            probe_asn: asn,
            probe_network_name: format!("Network {asn}"),
            test_name: "web_connectivity".to_owned(),
            input: Some(format!("https://{domain}/")),
            domain: Some(domain.to_owned()),
            report_id: None,
        },
        verdict: verdict(blocked, r >> 40),
        raw,
        raw_zstd: None,
    }
}

fn seed(path: &Path, rows: u64) -> Arc<dyn Store> {
    if path.exists() {
        let store = SqliteStore::open(path).expect("open the cached database");
        if store.count().expect("count") == rows {
            eprintln!("using the cached database {} ({rows} measurements)", path.display());
            return Arc::new(store);
        }
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    eprintln!(
        "seeding {rows} measurements into {} (once; cached for later runs)",
        path.display()
    );
    let started = Instant::now();
    let store = SqliteStore::open(path).expect("create the database");
    let end = censorwatch_server::detections::unix_now() / 3600 * 3600;
    let mut mix = Mix(0x5EED);
    let mut i = 0;
    while i < rows {
        let n = (rows - i).min(20_000);
        let batch: Vec<Record> = (i..i + n).map(|j| record(j, rows, end, &mut mix)).collect();
        store.insert(&batch).expect("insert");
        i += n;
    }
    eprintln!("  stored in {:.1} s; computing events", started.elapsed().as_secs_f64());
    let done = censorwatch_server::detections::recompute(&store, &censorwatch_detect::Config::default(), end)
        .expect("compute events");
    eprintln!(
        "  {} events, {} outages from {} observations; {:.1} s in all",
        done.events.len(),
        done.outages.len(),
        done.observations,
        started.elapsed().as_secs_f64()
    );
    Arc::new(store)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, usize) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.len())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo bench -- --list` / `cargo test --benches`: nothing to list.
        return;
    }
    let requests: usize = args
        .windows(2)
        .find(|w| w[0] == "--requests")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(40);
    let expiry = args.iter().any(|a| a == "--expiry");
    let rows: u64 = std::env::var("DASHBOARD_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("dashboard-bench");
    let path = dir.join(if rows == 1_000_000 {
        "1m.db".to_owned()
    } else {
        format!("{rows}.db")
    });
    let store = seed(&path, rows);

    // Pages to time: ids from the store.
    let pk_event = store
        .detections(&censorwatch_store::DetectionQuery {
            cc: Some("PK".into()),
            ..censorwatch_store::DetectionQuery::all(censorwatch_store::DetectionKind::Event)
        })
        .expect("events")
        .first()
        .map(|d| d.id.clone())
        .expect("the seed has a PK event");
    let a_measurement = store
        .query(&MeasurementQuery {
            probe_cc: Some("PK".into()),
            domain: Some("x.com".into()),
            limit: 1,
            ..MeasurementQuery::default()
        })
        .expect("query")
        .results[0]
        .id
        .clone();
    let pages = [
        "/".to_owned(),
        "/country/PK".to_owned(),
        "/country/IR".to_owned(),
        "/platform/PK/x.com".to_owned(),
        "/platform/IR/facebook.com".to_owned(),
        format!("/event/{pk_event}"),
        format!("/measurement/{a_measurement}"),
        "/search?q=x.com".to_owned(),
        "/search?q=AS17001".to_owned(),
        // The API behind the charts and the alerts, over the same data.
        "/api/v1/aggregation?cc=PK&domain=x.com,twitter.com,pbs.twimg.com&axis=time,asn&bin=1h".to_owned(),
        "/api/v1/aggregation?cc=PK&axis=domain,asn".to_owned(),
        "/api/v1/aggregation?cc=IR&domain=www.facebook.com&axis=time&bin=1d&format=csv".to_owned(),
        "/api/v1/events?cc=PK".to_owned(),
        "/api/v1/outages".to_owned(),
        "/api/v1/feeds/events.atom?cc=PK".to_owned(),
        "/api/v1/feeds/events.atom".to_owned(),
    ];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ServerConfig {
            rate_limit: None,
            detection_interval: None,
            ..ServerConfig::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, store, config, async move {
            let _ = stopped.await;
        }));
        println!("dashboard over {rows} stored measurements (SQLite), {requests} requests per page, one at a time:");
        println!(
            "{:<64} {:>10} {:>10} {:>10} {:>9}",
            "page", "median", "p95", "max", "bytes"
        );
        for page in &pages {
            // The first request is reported apart: it fills the caches (network names for the
            // server's life; the country list and a country's domains for 60 s), which the
            // timed requests then reuse.
            let t = Instant::now();
            let (status, _) = get(addr, page).await;
            let first = t.elapsed();
            assert_eq!(status, 200, "{page}");
            let mut times = Vec::with_capacity(requests);
            let mut bytes = 0;
            for _ in 0..requests {
                let t = Instant::now();
                let (status, len) = get(addr, page).await;
                times.push(t.elapsed());
                assert_eq!(status, 200, "{page}");
                bytes = len;
            }
            times.sort();
            let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
            println!(
                "{:<64} {:>10} {:>10} {:>10} {:>9}   (first: {})",
                page,
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.95)),
                ms(*times.last().unwrap()),
                bytes,
                ms(first)
            );
        }
        if expiry {
            // Across the home page's country list going stale: it was made at the first request
            // of "/" above (or when the server started), 60 s are reached within 70 s.
            let pace = Duration::from_millis(200);
            let started = Instant::now();
            let mut times = Vec::new();
            while started.elapsed() < Duration::from_secs(70) {
                let t = Instant::now();
                let (status, _) = get(addr, "/").await;
                times.push(t.elapsed());
                assert_eq!(status, 200, "/");
                tokio::time::sleep(pace.saturating_sub(t.elapsed())).await;
            }
            let slow = times.iter().filter(|t| **t > Duration::from_millis(200)).count();
            times.sort();
            let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
            println!(
                "{:<64} {:>10} {:>10} {:>10}   ({} requests over 70 s, {} over 200 ms)",
                "/ across the country list's expiry",
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.95)),
                ms(*times.last().unwrap()),
                times.len(),
                slow
            );
        }
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    });
}
