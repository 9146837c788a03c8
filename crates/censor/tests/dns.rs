//! The DNS censor seen from a real UDP client on loopback, with a real (fake) upstream resolver:
//! each action, the injection race's two answers in order, byte-exact relaying, malformed
//! datagrams ignored, and shutdown with a relay still pending.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use censorwatch_censor::{DnsAction, DnsCensorConfig, DnsRule, DnsStats, NameMatch, Schedule, serve_dns_since};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const REAL_V4: &str = "198.51.100.7";
const REAL_V6: &str = "2001:db8::7";
const REAL_TTL: u32 = 4321;

/// A resolver answering every A / AAAA query with REAL_V4 / REAL_V6 (after `delay`), counting
/// queries and keeping the last answer's bytes; `silent` never answers.
struct Upstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    last_answer: Arc<Mutex<Vec<u8>>>,
}

async fn upstream(delay: Duration, silent: bool) -> Upstream {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let last_answer = Arc::new(Mutex::new(Vec::new()));
    let (count, last) = (Arc::clone(&queries), Arc::clone(&last_answer));
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            count.fetch_add(1, Ordering::SeqCst);
            if silent {
                continue;
            }
            let request = Message::from_vec(&buf[..n]).unwrap();
            let question = request.queries()[0].clone();
            let mut answer = Message::new();
            answer
                .set_id(request.id())
                .set_message_type(MessageType::Response)
                .set_op_code(OpCode::Query)
                .set_recursion_available(true)
                .set_authoritative(true)
                .add_query(question.clone());
            let rdata = match question.query_type() {
                RecordType::A => Some(RData::A(A::from_str(REAL_V4).unwrap())),
                RecordType::AAAA => Some(RData::AAAA(AAAA::from_str(REAL_V6).unwrap())),
                _ => None,
            };
            if let Some(rdata) = rdata {
                answer.add_answer(Record::from_rdata(question.name().clone(), REAL_TTL, rdata));
            }
            let bytes = answer.to_vec().unwrap();
            *last.lock().unwrap() = bytes.clone();
            tokio::time::sleep(delay).await;
            let _ = socket.send_to(&bytes, from).await;
        }
    });
    Upstream {
        addr,
        queries,
        last_answer,
    }
}

struct Censor {
    addr: SocketAddr,
    stats: DnsStats,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Censor {
    async fn start(rules: Vec<DnsRule>, upstream: SocketAddr) -> Censor {
        Self::start_at(rules, upstream, Instant::now()).await
    }

    async fn start_at(rules: Vec<DnsRule>, upstream: SocketAddr, epoch: Instant) -> Censor {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let stats = DnsStats::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let config = DnsCensorConfig { upstream, rules };
        let task = tokio::spawn(serve_dns_since(socket, config, stats.clone(), epoch, async {
            let _ = stopped.await;
        }));
        Censor {
            addr,
            stats,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .expect("serve_dns ends promptly on shutdown")
            .unwrap()
            .unwrap();
    }
}

fn query_bytes(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    message.to_vec().unwrap()
}

/// Sends a query and collects every datagram answering it within `window`.
async fn ask(censor: SocketAddr, name: &str, qtype: RecordType, window: Duration) -> Vec<Vec<u8>> {
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(&query_bytes(0x4242, name, qtype), censor).await.unwrap();
    let mut answers = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, client.recv_from(&mut buf)).await {
        answers.push(buf[..n].to_vec());
    }
    answers
}

fn addresses(answer: &[u8]) -> (ResponseCode, Vec<IpAddr>) {
    let message = Message::from_vec(answer).unwrap();
    assert_eq!(message.id(), 0x4242);
    assert_eq!(message.message_type(), MessageType::Response);
    let ips = message
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect();
    (message.response_code(), ips)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const WINDOW: Duration = Duration::from_millis(400);

#[tokio::test]
async fn nxdomain_refused_and_drop() {
    let up = upstream(Duration::ZERO, false).await;
    let censor = Censor::start(
        vec![
            DnsRule::always(NameMatch::suffix("twitter.com"), DnsAction::NxDomain),
            DnsRule::always(NameMatch::exact("x.com"), DnsAction::Refused),
            DnsRule::always(NameMatch::suffix("twimg.com"), DnsAction::Drop),
        ],
        up.addr,
    )
    .await;
    let nx = ask(censor.addr, "api.Twitter.com.", RecordType::A, WINDOW).await;
    assert_eq!(nx.len(), 1);
    assert_eq!(addresses(&nx[0]), (ResponseCode::NXDomain, vec![]));
    let refused = ask(censor.addr, "x.com", RecordType::AAAA, WINDOW).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(addresses(&refused[0]), (ResponseCode::Refused, vec![]));
    assert!(
        ask(censor.addr, "abs.twimg.com", RecordType::A, Duration::from_millis(700))
            .await
            .is_empty()
    );
    assert_eq!(up.queries.load(Ordering::SeqCst), 0, "none of these reach upstream");
    let stats = censor.stats.snapshot();
    assert_eq!(
        (
            stats.dns_queries,
            stats.dns_nxdomain,
            stats.dns_refused,
            stats.dns_dropped
        ),
        (3, 1, 1, 1)
    );
    censor.stop().await;
}

#[tokio::test]
async fn spoof_answers_each_family_without_asking_upstream() {
    let up = upstream(Duration::ZERO, false).await;
    let forged = vec![ip("10.10.34.35"), ip("fd00::35"), ip("10.10.34.36")];
    let censor = Censor::start(
        vec![DnsRule::always(NameMatch::exact("x.com"), DnsAction::Spoof(forged))],
        up.addr,
    )
    .await;
    let v4 = ask(censor.addr, "x.com", RecordType::A, WINDOW).await;
    assert_eq!(v4.len(), 1);
    assert_eq!(
        addresses(&v4[0]),
        (ResponseCode::NoError, vec![ip("10.10.34.35"), ip("10.10.34.36")])
    );
    let v6 = ask(censor.addr, "x.com", RecordType::AAAA, WINDOW).await;
    assert_eq!(addresses(&v6[0]), (ResponseCode::NoError, vec![ip("fd00::35")]));
    let mx = ask(censor.addr, "x.com", RecordType::MX, WINDOW).await;
    assert_eq!(addresses(&mx[0]), (ResponseCode::NoError, vec![]));
    assert_eq!(up.queries.load(Ordering::SeqCst), 0);
    assert_eq!(censor.stats.snapshot().dns_spoofed, 3);
    censor.stop().await;
}

#[tokio::test]
async fn injection_gives_the_forged_answer_first_then_the_real_one() {
    let up = upstream(Duration::from_millis(20), false).await;
    let censor = Censor::start(
        vec![DnsRule::always(
            NameMatch::suffix("x.com"),
            DnsAction::Inject(vec![ip("10.0.0.1")]),
        )],
        up.addr,
    )
    .await;
    let answers = ask(censor.addr, "x.com", RecordType::A, WINDOW).await;
    assert_eq!(answers.len(), 2, "the injection race gives two answers");
    assert_eq!(addresses(&answers[0]), (ResponseCode::NoError, vec![ip("10.0.0.1")]));
    assert_eq!(addresses(&answers[1]), (ResponseCode::NoError, vec![ip(REAL_V4)]));
    assert_eq!(
        answers[1],
        *up.last_answer.lock().unwrap(),
        "the real answer is relayed unchanged"
    );
    assert_eq!(up.queries.load(Ordering::SeqCst), 1);
    assert_eq!(censor.stats.snapshot().dns_injected, 1);
    censor.stop().await;
}

#[tokio::test]
async fn unmatched_queries_are_relayed_byte_exact() {
    let up = upstream(Duration::ZERO, false).await;
    let censor = Censor::start(
        vec![DnsRule::always(NameMatch::exact("x.com"), DnsAction::NxDomain)],
        up.addr,
    )
    .await;
    for (name, qtype, want) in [
        ("www.x.com", RecordType::A, REAL_V4),
        ("example.org", RecordType::AAAA, REAL_V6),
    ] {
        let answers = ask(censor.addr, name, qtype, WINDOW).await;
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0], *up.last_answer.lock().unwrap());
        assert_eq!(addresses(&answers[0]), (ResponseCode::NoError, vec![ip(want)]));
        let ttl = Message::from_vec(&answers[0]).unwrap().answers()[0].ttl();
        assert_eq!(ttl, REAL_TTL);
    }
    let stats = censor.stats.snapshot();
    assert_eq!(
        (stats.dns_forwarded, stats.dns_nxdomain, stats.dns_upstream_failures),
        (2, 0, 0)
    );
    censor.stop().await;
}

#[tokio::test]
async fn malformed_datagrams_are_ignored_and_the_censor_keeps_serving() {
    let up = upstream(Duration::ZERO, false).await;
    let censor = Censor::start(vec![DnsRule::always(NameMatch::Any, DnsAction::Refused)], up.addr).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let full = query_bytes(7, "x.com", RecordType::A);
    let mut response = full.clone();
    response[2] |= 0x80; // QR: a response, not a query
    let no_question = {
        let mut m = Message::new();
        m.set_id(9).set_message_type(MessageType::Query);
        m.to_vec().unwrap()
    };
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        b"\xff\xff garbage that is not DNS".to_vec(),
        full[..full.len() - 3].to_vec(),
        response,
        no_question,
    ];
    for datagram in &bad {
        client.send_to(datagram, censor.addr).await.unwrap();
    }
    let mut buf = [0u8; 512];
    let silence = tokio::time::timeout(Duration::from_millis(300), client.recv_from(&mut buf)).await;
    assert!(silence.is_err(), "malformed datagrams get no answer");
    let answers = ask(censor.addr, "x.com", RecordType::A, WINDOW).await;
    assert_eq!(addresses(&answers[0]).0, ResponseCode::Refused);
    let stats = censor.stats.snapshot();
    assert_eq!(
        (stats.dns_queries, stats.dns_malformed, stats.dns_refused),
        (bad.len() as u64 + 1, bad.len() as u64, 1)
    );
    censor.stop().await;
}

#[tokio::test]
async fn shutdown_ends_pending_relays() {
    let up = upstream(Duration::ZERO, true).await;
    let censor = Censor::start(vec![], up.addr).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client
        .send_to(&query_bytes(1, "example.org", RecordType::A), censor.addr)
        .await
        .unwrap();
    while up.queries.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    censor.stop().await; // within 2 s, though the relay would wait 5 s for upstream
}

#[tokio::test]
async fn cycles_switch_a_dns_rule_on_and_off() {
    let up = upstream(Duration::ZERO, false).await;
    let (on, off) = (Duration::from_millis(500), Duration::from_millis(500));
    let epoch = Instant::now();
    let rule =
        DnsRule::always(NameMatch::exact("x.com"), DnsAction::NxDomain).with_schedule(Schedule::Cycles { on, off });
    let censor = Censor::start_at(vec![rule], up.addr, epoch).await;
    let phase = |t: Duration| (t.as_millis() % (on + off).as_millis()) < on.as_millis();
    let (mut blocked, mut open) = (0, 0);
    while epoch.elapsed() < Duration::from_millis(2200) {
        let before = epoch.elapsed();
        let answers = ask(censor.addr, "x.com", RecordType::A, Duration::from_millis(150)).await;
        // The answer arrived well inside the window; judge only samples whose whole exchange
        // (before .. before + 150 ms) sits in one phase.
        if phase(before) != phase(before + Duration::from_millis(150)) {
            continue;
        }
        assert_eq!(answers.len(), 1, "one answer at {before:?}");
        let (code, ips) = addresses(&answers[0]);
        if phase(before) {
            assert_eq!(code, ResponseCode::NXDomain, "at {before:?} the rule is on");
            blocked += 1;
        } else {
            assert_eq!(
                (code, ips),
                (ResponseCode::NoError, vec![ip(REAL_V4)]),
                "at {before:?} the rule is off"
            );
            open += 1;
        }
    }
    assert!(
        blocked >= 3 && open >= 3,
        "too few decisive samples: {blocked} on, {open} off"
    );
    censor.stop().await;
}
