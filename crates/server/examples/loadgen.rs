//! Load generator for the collector: starts `censorwatch_server::serve` on 127.0.0.1:0 over a
//! fresh SQLite store (synchronous=FULL) in a temporary directory, then N concurrent keep-alive
//! HTTP/1 connections (tokio + hyper) submit real OONI measurements from the fixtures, each with
//! a fresh nonce (so a fresh uid), to `POST /api/v1/submit_measurement`, up to a count or a time
//! limit. Prints submissions/s, p50/p99 latency and errors, then verifies zero loss: the store's
//! count equals the number of acknowledged submissions.
//!
//! ```text
//! cargo run --release -p censorwatch-server --example loadgen -- [--connections 64] [--count 20000]
//!     [--seconds 30] [--max-fixture-bytes 65536] [--db PATH]
//! ```

use bytes::Bytes;
use censorwatch_server::{ServerConfig, serve};
use censorwatch_store::{SqliteStore, Store};
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Options {
    connections: usize,
    count: u64,
    seconds: u64,
    max_fixture_bytes: usize,
    db: Option<std::path::PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        connections: 64,
        count: 20_000,
        seconds: 30,
        max_fixture_bytes: 64 << 10,
        db: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: {v:?} is not a number"));
        match flag.as_str() {
            "--connections" => o.connections = num(value()?)? as usize,
            "--count" => o.count = num(value()?)?,
            "--seconds" => o.seconds = num(value()?)?,
            "--max-fixture-bytes" => o.max_fixture_bytes = num(value()?)? as usize,
            "--db" => o.db = Some(value()?.into()),
            _ => {
                return Err(format!(
                    "unknown option {flag}; see the doc comment of examples/loadgen.rs"
                ));
            }
        }
    }
    Ok(o)
}

/// Submission bodies split around a nonce placeholder: body = head + nonce + tail.
fn templates(max_bytes: usize) -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/ooni/real_measurements_combined.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("the fixtures");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.len() <= max_bytes) {
        let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let valid = m
            .get("probe_cc")
            .and_then(|v| v.as_str())
            .is_some_and(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
            && m.get("probe_asn")
                .and_then(|v| v.as_str())
                .is_some_and(|a| a.starts_with("AS"))
            && m.get("test_name").and_then(|v| v.as_str()).is_some();
        if !valid {
            continue;
        }
        m.remove("measurement_uid");
        m.insert("x_loadgen_nonce".into(), "@@NONCE@@".into());
        let content = serde_json::Value::Object(m).to_string();
        let body = serde_json::json!({"format": "json", "content": content, "protocol_version": 1}).to_string();
        let (head, tail) = body.split_once("@@NONCE@@").expect("placeholder");
        out.push((head.to_owned(), tail.to_owned()));
    }
    out
}

fn main() -> Result<(), String> {
    let o = options()?;
    let templates = Arc::new(templates(o.max_fixture_bytes));
    if templates.is_empty() {
        return Err("no fixture is small enough; raise --max-fixture-bytes".into());
    }
    let mean = templates.iter().map(|(h, t)| h.len() + t.len()).sum::<usize>() / templates.len();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = o.db.clone().unwrap_or_else(|| dir.path().join("loadgen.db"));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).map_err(|e| e.to_string())?);

    // The server on its own runtime (two workers, as `censorwatch serve`), the client on another.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(serve(
        listener,
        Arc::clone(&store),
        ServerConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let start = Instant::now();
    let latencies: Vec<Duration> = client_rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..o.connections {
            let (templates, next, errors) = (Arc::clone(&templates), Arc::clone(&next), Arc::clone(&errors));
            let count = o.count;
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return latencies;
                };
                let _ = stream.set_nodelay(true);
                let Ok((mut sender, conn)) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await
                else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return latencies;
                };
                tokio::spawn(conn);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || Instant::now() >= deadline {
                        break;
                    }
                    let (head, tail) = &templates[i as usize % templates.len()];
                    let body = format!("{head}{i}{tail}");
                    let request = hyper::Request::post("/api/v1/submit_measurement")
                        .header("host", addr.to_string())
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .expect("request");
                    let sent = Instant::now();
                    let ok = match sender.send_request(request).await {
                        Ok(response) => {
                            let status = response.status();
                            let body = response.into_body().collect().await.map(|b| b.to_bytes());
                            status == 200 && body.is_ok_and(|b| b.windows(15).any(|w| w == b"measurement_uid"))
                        }
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(sent.elapsed());
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if sender.ready().await.is_err() {
                            break;
                        }
                    }
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap_or_default());
        }
        all
    });
    let elapsed = start.elapsed();
    let _ = stop.send(());
    server_rt
        .block_on(server)
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;

    let mut latencies = latencies;
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let acked = latencies.len() as u64;
    let stored = store.count().map_err(|e| e.to_string())?;
    println!(
        "loadgen: connections={} fixtures={} mean_body={}B acked={} errors={} elapsed={:.2}s submissions/s={:.0} p50={:.2}ms p99={:.2}ms max={:.2}ms stored={} loss={}",
        o.connections,
        templates.len(),
        mean,
        acked,
        errors.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        acked as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        stored,
        acked as i64 - stored as i64,
    );
    if stored != acked {
        return Err(format!("LOSS: {acked} acknowledged but {stored} stored"));
    }
    Ok(())
}
