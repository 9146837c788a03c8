//! How long the probe takes to measure N local targets behind a fixed added latency, with the
//! control answering each one — and how much memory that takes. Prints figures; asserts nothing.
//!
//! Setup (all on loopback): one TLS server for `*.bench.test` that waits `LATENCY` before each
//! response, a resolver that waits `LATENCY` before each answer, and the control in-process. Each
//! target therefore costs a DNS round trip, a connect, a handshake and an HTTP round trip on the
//! probe's side, concurrently with the control doing the same.
//!
//! "Ideal" is the time of one target alone × ⌈N / concurrency⌉: what a perfect scheduler with that
//! many URLs in flight would take. Run: `cargo bench -p censorwatch-control --bench probe_many`
//! (env: `CW_BENCH_N=100,1000`, `CW_BENCH_CONCURRENCY=8,64`, `CW_BENCH_LATENCY_MS=50`,
//! `CW_BENCH_RUNS=3`).

use censorwatch_control::{ControlOptions, build_state, serve};
use censorwatch_model::Status;
use censorwatch_probe::dns::DnsConfig;
use censorwatch_probe::testbed::{DnsAnswer, FakeResolver, Reply, Target, TestCa, serve_all};
use censorwatch_probe::{ControlClient, Probe, ProbeConfig, TlsSettings};
use censorwatch_verdict::Analyzer;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

async fn run(probe: &Probe, urls: &[String], concurrency: usize) -> (Duration, Vec<f64>, usize) {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for url in urls {
        let (probe, url, semaphore) = (probe.clone(), url.clone(), semaphore.clone());
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let t0 = Instant::now();
            let outcome = probe.measure(&url).await;
            let ok = outcome.is_ok_and(|o| o.verdict.status == Status::Ok);
            (t0.elapsed().as_secs_f64(), ok)
        });
    }
    let mut per_target = Vec::with_capacity(urls.len());
    let mut ok = 0;
    while let Some(Ok((t, good))) = tasks.join_next().await {
        per_target.push(t);
        ok += usize::from(good);
    }
    (start.elapsed(), per_target, ok)
}

fn main() {
    let sizes = env_list("CW_BENCH_N", "100,1000");
    let concurrencies = env_list("CW_BENCH_CONCURRENCY", "8,64");
    let latency = Duration::from_millis(env_list("CW_BENCH_LATENCY_MS", "50").first().copied().unwrap_or(50) as u64);
    let runs = env_list("CW_BENCH_RUNS", "3").first().copied().unwrap_or(3).max(1);
    let max_n = sizes.iter().copied().max().unwrap_or(100);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("cw-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca = TestCa::new("bench CA");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write CA");
        let server_ip: IpAddr = "127.0.0.40".parse().expect("ip");
        let handler = Arc::new(move |host: &str, _: &str| Reply {
            delay: latency,
            ..Reply::page(host)
        });
        let target = Target::https(server_ip, 0, ca.server_config(&["*.bench.test"]), serve_all(), handler).await;
        let names: HashMap<String, DnsAnswer> = (0..max_n)
            .map(|i| (format!("t{i}.bench.test"), DnsAnswer::Addrs(vec![server_ip])))
            .collect();
        let resolver = FakeResolver::start_with_delay(names, latency).await;
        let state = build_state(&ControlOptions {
            allow_private: true,
            resolver: Some(resolver.addr()),
            ca_files: vec![dir.join("ca.pem")],
            rate: censorwatch_control::RateLimit {
                per_second: 1e9,
                burst: 1e9,
            },
            max_in_flight: 100_000,
            ..ControlOptions::default()
        })
        .expect("control state");
        let listener = tokio::net::TcpListener::bind("127.0.0.41:0").await.expect("bind");
        let control_url = format!("http://{}/", listener.local_addr().expect("addr"));
        tokio::spawn(serve(listener, state, std::future::pending()));

        let tls = TlsSettings::new(&[dir.join("ca.pem").as_path()]).expect("tls");
        let mut config = ProbeConfig::new(tls.clone());
        config.dns = DnsConfig {
            getaddrinfo: false,
            udp: Some(resolver.addr()),
            ..DnsConfig::default()
        };
        config.control =
            Some(ControlClient::new(control_url.parse().expect("url"), tls, Duration::from_secs(60)).expect("client"));
        let probe = Probe::new(config, Arc::new(Analyzer::with_builtin_fingerprints()));
        let port = target.port();
        let url = |i: usize| format!("https://t{i}.bench.test:{port}/");

        let mut single: Vec<f64> = Vec::new();
        for _ in 0..runs {
            let (d, _, _) = run(&probe, &[url(0)], 1).await;
            single.push(d.as_secs_f64());
        }
        let one = median(&mut single);
        println!(
            "added latency {} ms per DNS answer and per HTTP response; one target alone: {:.3} s (median of {runs})",
            latency.as_millis(),
            one
        );
        println!(
            "{:>6} {:>5} {:>9} {:>13} {:>9} {:>7} {:>6} {:>9}",
            "N", "conc", "total_s", "per_target_ms", "ideal_s", "ratio", "ok", "rss_MiB"
        );
        for &n in &sizes {
            let urls: Vec<String> = (0..n).map(url).collect();
            for &c in &concurrencies {
                let mut totals = Vec::new();
                let mut per = Vec::new();
                let mut oks = 0;
                for _ in 0..runs {
                    let (d, mut p, ok) = run(&probe, &urls, c).await;
                    totals.push(d.as_secs_f64());
                    per.push(median(&mut p));
                    oks = ok;
                }
                let total = median(&mut totals);
                let ideal = one * n.div_ceil(c) as f64;
                println!(
                    "{n:>6} {c:>5} {total:>9.3} {:>13.1} {ideal:>9.3} {:>7.2} {:>6} {:>9.1}",
                    median(&mut per) * 1000.0,
                    total / ideal,
                    oks,
                    peak_rss_mib()
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
