//! What the censor costs: the sniffer's time per first flight, and the proxy's forwarding
//! throughput and flow rate on loopback against a direct connection. Prints medians; asserts
//! nothing. Run: `cargo bench -p censorwatch-censor --bench censor` (env `CW_BENCH_RUNS=5`,
//! `CW_BENCH_MIB=64`, `CW_BENCH_FLOWS=2000`).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use censorwatch_censor::sniff::build::{client_hello, client_hello_message, in_records};
use censorwatch_censor::sniff::sniff;
use censorwatch_censor::{Action, DpiConfig, DpiStats, FlowRule, Layer, NameMatch, serve_dpi};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn sniff_ns(input: &[u8], runs: usize) -> f64 {
    const ITERATIONS: u32 = 100_000;
    median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..ITERATIONS {
                    black_box(sniff(black_box(input)));
                }
                started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
            })
            .collect(),
    )
}

/// An upstream that answers each request (headers up to a blank line, or an 8-byte size request
/// `SIZE:nnnnnnnn`) with that many bytes and closes.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 13];
                if stream.read_exact(&mut request).await.is_err() {
                    return;
                }
                let size: usize = std::str::from_utf8(&request[5..]).unwrap().parse().unwrap();
                let chunk = vec![0x5au8; 64 * 1024];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

async fn download(target: SocketAddr, size: usize) -> usize {
    let mut stream = TcpStream::connect(target).await.unwrap();
    stream.write_all(format!("SIZE:{size:08}").as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await.unwrap() {
            0 => return total,
            n => total += n,
        }
    }
}

async fn flows_per_second(target: SocketAddr, flows: usize) -> f64 {
    let started = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..flows {
        let permit = Arc::clone(&semaphore).acquire_owned().await.unwrap();
        tasks.spawn(async move {
            assert_eq!(download(target, 1024).await, 1024);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    flows as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runs = env_usize("CW_BENCH_RUNS", 5);
    let mib = env_usize("CW_BENCH_MIB", 64);
    let flows = env_usize("CW_BENCH_FLOWS", 2000);

    let hello = client_hello(Some("abs.twimg.com"));
    let fragmented = in_records(&client_hello_message(Some("abs.twimg.com")), 40);
    let http =
        b"GET /x HTTP/1.1\r\nHost: x.com\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nAccept-Language: en\r\n\r\n";
    println!("sniff, median of {runs} runs of 100 000:");
    println!(
        "  ClientHello, 1 record ({} B):    {:>7.0} ns",
        hello.len(),
        sniff_ns(&hello, runs)
    );
    println!(
        "  ClientHello, 40 B records ({} B): {:>7.0} ns",
        fragmented.len(),
        sniff_ns(&fragmented, runs)
    );
    println!(
        "  HTTP request ({} B):             {:>7.0} ns",
        http.len(),
        sniff_ns(http, runs)
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let direct = upstream().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        // A rule that does not match, so every flow is sniffed and matched, then forwarded.
        let rules = vec![FlowRule::always(NameMatch::suffix("x.com"), Layer::Sni, Action::Reset)];
        let config = DpiConfig {
            rules,
            fallback_upstream: Some(direct),
            sniff_timeout: Duration::from_millis(50),
        };
        tokio::spawn(serve_dpi(listener, config, DpiStats::new(), std::future::pending()));

        let size = mib * 1024 * 1024;
        for (label, target) in [("direct", direct), ("via proxy", proxy)] {
            let mut rates = Vec::new();
            for _ in 0..runs {
                let started = Instant::now();
                assert_eq!(download(target, size).await, size);
                rates.push(size as f64 / 1048576.0 / started.elapsed().as_secs_f64());
            }
            println!(
                "forward {mib} MiB {label:>10}: {:>7.0} MiB/s (median of {runs})",
                median(rates)
            );
        }
        for (label, target) in [("direct", direct), ("via proxy", proxy)] {
            let mut rates = Vec::new();
            for _ in 0..runs {
                rates.push(flows_per_second(target, flows).await);
            }
            println!(
                "{flows} short flows {label:>10}: {:>7.0} flows/s (median of {runs}, 32 at once)",
                median(rates)
            );
        }
    });
}
