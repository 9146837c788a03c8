//! The DPI proxy seen from real clients on loopback: each action as a client observes it, the
//! ClientHello split over writes and records, on/off cycles, byte-exact forwarding both ways,
//! throttling, and shutdown. The proxy forwards to `fallback_upstream` (a test server), since
//! loopback connections are not redirected.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use censorwatch_censor::sniff::build::{client_hello, client_hello_message, in_records};
use censorwatch_censor::{Action, DpiConfig, DpiStats, FlowRule, Layer, NameMatch, Schedule, serve_dpi_since};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running proxy: its address, counters, and how to stop it.
struct Proxy {
    addr: SocketAddr,
    stats: DpiStats,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Proxy {
    async fn start(rules: Vec<FlowRule>, upstream: Option<SocketAddr>) -> Proxy {
        Self::start_with(DpiConfig {
            rules,
            fallback_upstream: upstream,
            sniff_timeout: Duration::from_secs(2),
        })
        .await
    }

    async fn start_with(config: DpiConfig) -> Proxy {
        Self::start_since(config, Instant::now()).await
    }

    /// With rule schedules counted from `epoch`.
    async fn start_since(config: DpiConfig, epoch: Instant) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = DpiStats::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_dpi_since(listener, config, stats.clone(), epoch, async {
            let _ = stopped.await;
        }));
        Proxy {
            addr,
            stats,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("serve_dpi ends promptly on shutdown")
            .unwrap()
            .unwrap();
    }
}

/// An upstream echoing every byte back, half-closing when the client does.
async fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// An upstream that reads request headers (up to a blank line) then sends `size` bytes and closes.
async fn download_upstream(size: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(&pseudo_random(size, 7)).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn http_get(host: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: censorwatch-test\r\n\r\n").into_bytes()
}

fn rule(name: &str, layer: Layer, action: Action) -> FlowRule {
    FlowRule::always(NameMatch::suffix(name), layer, action)
}

/// What a client sees after sending `first` and reading.
#[derive(Debug, PartialEq)]
enum Seen {
    Reset,
    Eof,
    Data(Vec<u8>),
    Silence,
}

async fn send_and_observe(proxy: SocketAddr, first: &[u8], wait: Duration) -> Seen {
    let mut client = TcpStream::connect(proxy).await.unwrap();
    client.write_all(first).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(wait, client.read(&mut buf)).await {
            Err(_) if received.is_empty() => return Seen::Silence,
            Err(_) => return Seen::Data(received),
            Ok(Ok(0)) if received.is_empty() => return Seen::Eof,
            Ok(Ok(0)) => return Seen::Data(received),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset && received.is_empty() => return Seen::Reset,
            Ok(Err(e)) => panic!("unexpected read error: {e}"),
        }
    }
}

#[tokio::test]
async fn sni_reset_is_a_real_rst() {
    let upstream = echo_upstream().await;
    let proxy = Proxy::start(vec![rule("x.com", Layer::Sni, Action::Reset)], Some(upstream)).await;
    let seen = send_and_observe(proxy.addr, &client_hello(Some("x.com")), Duration::from_secs(3)).await;
    assert_eq!(seen, Seen::Reset);
    let stats = proxy.stats.snapshot();
    assert_eq!(
        (stats.flows, stats.flows_tls, stats.reset, stats.forwarded),
        (1, 1, 1, 0)
    );
    proxy.stop().await;
}

#[tokio::test]
async fn sni_close_is_a_fin_without_data() {
    let upstream = echo_upstream().await;
    let proxy = Proxy::start(vec![rule("twimg.com", Layer::Sni, Action::Close)], Some(upstream)).await;
    let seen = send_and_observe(proxy.addr, &client_hello(Some("abs.twimg.com")), Duration::from_secs(3)).await;
    assert_eq!(seen, Seen::Eof);
    assert_eq!(proxy.stats.snapshot().closed, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn sni_blackhole_never_answers_and_keeps_the_connection_open() {
    let upstream = echo_upstream().await;
    let proxy = Proxy::start(vec![rule("x.com", Layer::Either, Action::Blackhole)], Some(upstream)).await;
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    client.write_all(&client_hello(Some("x.com"))).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(800), client.read(&mut buf)).await;
    assert!(read.is_err(), "a blackholed flow gets no answer, got {read:?}");
    // The connection is still open: more data is accepted (and swallowed) without error.
    client.write_all(&[0u8; 10_000]).await.unwrap();
    let read = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buf)).await;
    assert!(read.is_err(), "still no answer, got {read:?}");
    assert_eq!(proxy.stats.snapshot().blackholed, 1);
    // Shutdown ends the flow too: the client then sees the connection end.
    proxy.stop().await;
    let after = tokio::time::timeout(Duration::from_secs(3), client.read(&mut buf))
        .await
        .expect("closed at shutdown");
    assert!(matches!(after, Ok(0) | Err(_)), "{after:?}");
}

#[tokio::test]
async fn http_host_reset_and_blockpage() {
    let upstream = echo_upstream().await;
    let body = "<html><iframe src=\"http://blockpage.lab/\"></iframe></html>".to_owned();
    let proxy = Proxy::start(
        vec![
            rule("twitter.com", Layer::Host, Action::Reset),
            rule(
                "x.com",
                Layer::Host,
                Action::Blockpage {
                    status: 200,
                    body: body.clone(),
                },
            ),
        ],
        Some(upstream),
    )
    .await;
    let reset = send_and_observe(proxy.addr, &http_get("twitter.com"), Duration::from_secs(3)).await;
    assert_eq!(reset, Seen::Reset);
    let Seen::Data(page) = send_and_observe(proxy.addr, &http_get("X.com:80"), Duration::from_secs(3)).await else {
        panic!("expected a blockpage");
    };
    let text = String::from_utf8(page).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with(&body), "{text}");
    // A Host rule does not fire on the same name in a ClientHello: that flow is forwarded.
    let hello = client_hello(Some("x.com"));
    assert_eq!(
        send_and_observe(proxy.addr, &hello, Duration::from_millis(500)).await,
        Seen::Data(hello)
    );
    let stats = proxy.stats.snapshot();
    assert_eq!(
        (stats.reset, stats.blockpages, stats.forwarded, stats.flows_http),
        (1, 1, 1, 2)
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_blockpage_rule_resets_tls_flows() {
    let upstream = echo_upstream().await;
    let page = Action::Blockpage {
        status: 403,
        body: "blocked".into(),
    };
    let proxy = Proxy::start(vec![rule("x.com", Layer::Either, page)], Some(upstream)).await;
    let seen = send_and_observe(proxy.addr, &client_hello(Some("x.com")), Duration::from_secs(3)).await;
    assert_eq!(seen, Seen::Reset);
    proxy.stop().await;
}

#[tokio::test]
async fn a_hello_split_across_writes_and_records_is_still_matched() {
    let upstream = echo_upstream().await;
    let proxy = Proxy::start(vec![rule("x.com", Layer::Sni, Action::Reset)], Some(upstream)).await;
    for records in [
        client_hello(Some("x.com")),
        in_records(&client_hello_message(Some("x.com")), 40),
    ] {
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        client.set_nodelay(true).unwrap();
        let (first, second) = records.split_at(records.len() / 2);
        client.write_all(first).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.write_all(second).await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(3), client.read(&mut buf))
            .await
            .unwrap();
        assert_eq!(read.map_err(|e| e.kind()), Err(ErrorKind::ConnectionReset));
    }
    let stats = proxy.stats.snapshot();
    assert_eq!((stats.flows_tls, stats.reset), (2, 2));
    proxy.stop().await;
}

#[tokio::test]
async fn unmatched_flows_are_forwarded_byte_exact_both_ways_with_half_close() {
    let upstream = echo_upstream().await;
    let proxy = Proxy::start(vec![rule("x.com", Layer::Either, Action::Reset)], Some(upstream)).await;
    let mut sent = client_hello(Some("example.org"));
    sent.extend_from_slice(&pseudo_random(300_000, 1));
    let client = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut read_half, mut write_half) = client.into_split();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        write_half.write_all(&to_send).await.unwrap();
        write_half.shutdown().await.unwrap(); // the echo server ends its side only after this FIN
        write_half
    });
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), read_half.read_to_end(&mut received))
        .await
        .unwrap()
        .unwrap();
    writer.await.unwrap();
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "forwarded bytes differ");
    let stats = proxy.stats.snapshot();
    assert_eq!((stats.forwarded, stats.reset), (1, 0));
    proxy.stop().await;
}

#[tokio::test]
async fn a_silent_or_unrecognized_client_is_forwarded_after_the_sniff_timeout() {
    let upstream = echo_upstream().await;
    let proxy = Proxy::start_with(DpiConfig {
        rules: vec![rule("x.com", Layer::Either, Action::Reset)],
        fallback_upstream: Some(upstream),
        sniff_timeout: Duration::from_millis(200),
    })
    .await;
    // "Unrecognized" is decided at once; a bare "GE" waits for the timeout, then goes through.
    for first in [&b"SSH-2.0-test\r\n"[..], b"GE"] {
        assert_eq!(
            send_and_observe(proxy.addr, first, Duration::from_millis(800)).await,
            Seen::Data(first.to_vec())
        );
    }
    let stats = proxy.stats.snapshot();
    assert_eq!((stats.flows_other, stats.forwarded), (2, 2));
    proxy.stop().await;
}

#[tokio::test]
async fn a_first_flight_past_the_size_limit_is_decided_without_waiting_for_the_timeout() {
    let upstream = echo_upstream().await;
    let proxy = Proxy::start_with(DpiConfig {
        rules: vec![rule("x.com", Layer::Either, Action::Reset)],
        fallback_upstream: Some(upstream),
        sniff_timeout: Duration::from_secs(30),
    })
    .await;
    // Request headers that never end: one 20 KiB header line.
    let mut first = b"GET / HTTP/1.1\r\nHost: x.com\r\nX-Pad: ".to_vec();
    first.extend(std::iter::repeat_n(b'a', 20 * 1024));
    let started = Instant::now();
    assert_eq!(
        send_and_observe(proxy.addr, &first, Duration::from_secs(1)).await,
        Seen::Data(first)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "decided at the size limit, not the 30 s timeout"
    );
    let stats = proxy.stats.snapshot();
    assert_eq!((stats.flows_other, stats.forwarded), (1, 1));
    proxy.stop().await;
}

#[tokio::test]
async fn the_pakistani_iframe_blockpage_is_injected_for_http() {
    let upstream = echo_upstream().await;
    let action = Action::pk_mobilink_blockpage("http://x.com/");
    let proxy = Proxy::start(vec![rule("x.com", Layer::Host, action)], Some(upstream)).await;
    let Seen::Data(page) = send_and_observe(proxy.addr, &http_get("x.com"), Duration::from_secs(3)).await else {
        panic!("expected a blockpage");
    };
    let page = String::from_utf8(page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        page.contains("<iframe src=\"http://119.73.65.87:8080/redirect.html?accessurl=http://x.com/\""),
        "{page}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn any_rule_catches_nameless_flows_and_no_destination_closes() {
    let upstream = echo_upstream().await;
    let proxy = Proxy::start(
        vec![FlowRule::always(NameMatch::Any, Layer::Either, Action::Close)],
        Some(upstream),
    )
    .await;
    assert_eq!(
        send_and_observe(proxy.addr, b"\x00\x01\x02", Duration::from_secs(3)).await,
        Seen::Eof
    );
    proxy.stop().await;

    let nowhere = Proxy::start(vec![], None).await;
    let seen = send_and_observe(nowhere.addr, &http_get("example.org"), Duration::from_secs(3)).await;
    assert!(matches!(seen, Seen::Eof | Seen::Reset), "{seen:?}");
    let stats = nowhere.stats.snapshot();
    assert_eq!((stats.flows_no_destination, stats.forwarded), (1, 0));
    nowhere.stop().await;
}

#[tokio::test]
async fn an_unreachable_upstream_resets_the_client() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let proxy = Proxy::start(vec![], Some(dead)).await;
    assert_eq!(
        send_and_observe(proxy.addr, &http_get("example.org"), Duration::from_secs(3)).await,
        Seen::Reset
    );
    assert_eq!(proxy.stats.snapshot().upstream_failures, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn cycles_switch_the_rule_on_and_off() {
    let upstream = echo_upstream().await;
    let (on, off) = (Duration::from_millis(700), Duration::from_millis(700));
    let epoch = Instant::now();
    let rules = vec![rule("x.com", Layer::Sni, Action::Reset).with_schedule(Schedule::Cycles { on, off })];
    let config = DpiConfig {
        rules,
        fallback_upstream: Some(upstream),
        sniff_timeout: Duration::from_secs(2),
    };
    let proxy = Proxy::start_since(config, epoch).await;
    let hello = client_hello(Some("x.com"));
    let phase = |t: Duration| (t.as_millis() % (on + off).as_millis()) < on.as_millis();
    let (mut blocked, mut open) = (0, 0);
    while epoch.elapsed() < Duration::from_millis(3200) {
        let before = epoch.elapsed();
        let seen = send_and_observe(proxy.addr, &hello, Duration::from_millis(300)).await;
        let after = epoch.elapsed();
        // The proxy decides between `before` and `after` on the same clock: judge only samples
        // that cannot straddle a switch.
        if phase(before) != phase(after) || after - before >= off.min(on) {
            continue;
        }
        if phase(before) {
            assert_eq!(seen, Seen::Reset, "at {before:?} the rule is on");
            blocked += 1;
        } else {
            assert_eq!(seen, Seen::Data(hello.clone()), "at {before:?} the rule is off");
            open += 1;
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    assert!(
        blocked >= 2 && open >= 2,
        "too few decisive samples: {blocked} blocked, {open} open"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn throttled_download_measures_the_configured_rate() {
    const SIZE: usize = 300_000;
    const RATE: u64 = 1_000_000;
    let upstream = download_upstream(SIZE).await;
    let proxy = Proxy::start(
        vec![rule("x.com", Layer::Host, Action::Throttle { bits_per_second: RATE })],
        Some(upstream),
    )
    .await;
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    client.write_all(&http_get("x.com")).await.unwrap();
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut body))
        .await
        .unwrap()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(body == pseudo_random(SIZE, 7), "throttled bytes differ");
    let measured = SIZE as f64 * 8.0 / elapsed.as_secs_f64();
    eprintln!("throttled download: {measured:.0} bit/s over {elapsed:?} (configured {RATE})");
    assert!(
        (0.75..=1.25).contains(&(measured / RATE as f64)),
        "measured {measured:.0} bit/s over {elapsed:?}, configured {RATE}"
    );
    assert_eq!(proxy.stats.snapshot().throttled, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn throttled_upload_measures_the_configured_rate() {
    const SIZE: usize = 200_000;
    const RATE: u64 = 2_000_000;
    let upstream = echo_upstream().await;
    let proxy = Proxy::start(
        vec![rule("x.com", Layer::Sni, Action::Throttle { bits_per_second: RATE })],
        Some(upstream),
    )
    .await;
    let mut sent = client_hello(Some("x.com"));
    sent.extend_from_slice(&pseudo_random(SIZE, 3));
    let client = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut read_half, mut write_half) = client.into_split();
    let started = Instant::now();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        write_half.write_all(&to_send).await.unwrap();
        write_half.shutdown().await.unwrap();
        write_half
    });
    let mut echoed = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), read_half.read_to_end(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    let elapsed = started.elapsed();
    writer.await.unwrap();
    assert!(echoed == sent, "throttled bytes differ");
    // Both directions are limited and pipelined, so the whole echo takes ~ one transfer time.
    let measured = sent.len() as f64 * 8.0 / elapsed.as_secs_f64();
    eprintln!("throttled upload+echo: {measured:.0} bit/s over {elapsed:?} (configured {RATE})");
    assert!(
        (0.75..=1.25).contains(&(measured / RATE as f64)),
        "measured {measured:.0} bit/s over {elapsed:?}, configured {RATE}"
    );
    proxy.stop().await;
}
