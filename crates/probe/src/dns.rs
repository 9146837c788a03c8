//! Name resolution as the probe's network answers it, recorded as OONI df-002 queries.
//!
//! Two engines: the system's `getaddrinfo` (what a browser on this machine gets) and a UDP
//! resolver queried directly with hand-built messages (hickory-proto), A and AAAA, with the raw
//! response, rcode and timing. After the first answer the UDP socket keeps listening for
//! [`DnsConfig::duplicate_window`]: an on-path injector races the real resolver, so a second,
//! different answer to the same query is evidence of injection (recorded under
//! `x_dns_duplicate_responses`, as OONI's LTE does).

use crate::failure::{classify_getaddrinfo, classify_io, classify_rcode};
use crate::trace::Trace;
use base64::Engine as _;
use censorwatch_model::Failure;
use censorwatch_model::web_connectivity::{Answer, Query};
use hickory_proto::op::{Message, MessageType, OpCode, Query as DnsQuestion};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::BinDecodable;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// How names are resolved.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Ask the system (`getaddrinfo`).
    pub getaddrinfo: bool,
    /// Also ask this UDP resolver directly.
    pub udp: Option<SocketAddr>,
    /// Give up on a lookup after this long.
    pub timeout: Duration,
    /// Keep listening this long after the first UDP answer, for injected duplicates.
    pub duplicate_window: Duration,
    /// The UDP resolver is a second opinion next to getaddrinfo (the system's resolver found in
    /// resolv.conf, not one the user chose): a UDP query that got no reply at all is set aside in
    /// [`Lookup::unanswered`] instead of counting as the lookup's failure, because the system may
    /// reach its resolver by other means (a local stub, /etc/hosts) and a silent raw query there
    /// is no evidence of blocking.
    pub udp_is_second_opinion: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            getaddrinfo: true,
            udp: None,
            timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_millis(300),
            udp_is_second_opinion: false,
        }
    }
}

/// The result of resolving one name with every configured engine.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// One record per query sent (getaddrinfo: one `ANY`; UDP: `A` and `AAAA`).
    pub queries: Vec<Query>,
    /// Extra responses received for a UDP query after the first.
    pub duplicates: Vec<Query>,
    /// Every address any engine returned, in order, without repeats.
    pub addrs: Vec<IpAddr>,
    /// The first engine's failure, when no engine returned an address.
    pub failure: Option<Failure>,
    /// Second-opinion UDP queries that got no reply (see [`DnsConfig::udp_is_second_opinion`]).
    pub unanswered: Vec<Query>,
}

/// The first `nameserver` of a resolv.conf text, on port 53.
pub fn parse_resolv_conf(text: &str) -> Option<SocketAddr> {
    text.lines().find_map(|line| {
        let line = line.split(['#', ';']).next()?.trim();
        let rest = line.strip_prefix("nameserver")?.trim();
        // Scoped IPv6 (fe80::1%eth0) cannot be a SocketAddr without the scope id; skip those.
        rest.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
    })
}

/// The system's resolver address from `/etc/resolv.conf`, if there is one.
pub fn system_udp_resolver() -> Option<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .as_deref()
        .and_then(parse_resolv_conf)
}

/// Resolves `host` with every engine in `config`, concurrently.
pub async fn resolve(trace: &Trace, config: &DnsConfig, host: &str, tags: &[String]) -> Lookup {
    // An address literal needs no lookup.
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Lookup {
            addrs: vec![ip],
            ..Lookup::default()
        };
    }
    let system = async {
        if config.getaddrinfo {
            Some(getaddrinfo(trace, host, config.timeout, tags).await)
        } else {
            None
        }
    };
    let udp = async {
        match config.udp {
            Some(server) => {
                let id = trace.next_id();
                let a = udp_query(trace, server, host, RecordType::A, config, id, tags);
                let aaaa = udp_query(trace, server, host, RecordType::AAAA, config, id, tags);
                let (a, aaaa) = tokio::join!(a, aaaa);
                Some([a, aaaa])
            }
            None => None,
        }
    };
    let (system, udp) = tokio::join!(system, udp);
    let mut out = Lookup::default();
    let mut failures = Vec::new();
    if let Some((query, addrs)) = system {
        if let Some(f) = &query.failure {
            failures.push(f.clone());
        }
        push_unique(&mut out.addrs, addrs);
        out.queries.push(query);
    }
    if let Some(results) = udp {
        let mut udp_failure = None;
        for r in results {
            if config.udp_is_second_opinion && r.query.rcode.is_none() {
                out.unanswered.push(r.query);
                continue;
            }
            push_unique(&mut out.addrs, r.addrs);
            // NXDOMAIN on either type beats "no answer" (the AAAA query of a v4-only name).
            if let Some(f) = &r.query.failure {
                if udp_failure.is_none() || f != &Failure::DnsNoAnswer {
                    udp_failure = Some(f.clone());
                }
            }
            out.queries.push(r.query);
            out.duplicates.extend(r.duplicates);
        }
        failures.extend(udp_failure);
    }
    if out.addrs.is_empty() {
        out.failure = Some(failures.into_iter().next().unwrap_or(Failure::DnsNoAnswer));
    }
    out
}

fn push_unique(into: &mut Vec<IpAddr>, from: Vec<IpAddr>) {
    for ip in from {
        if !into.contains(&ip) {
            into.push(ip);
        }
    }
}

fn answer_for(ip: IpAddr, ttl: Option<i64>) -> Answer {
    match ip {
        IpAddr::V4(v4) => Answer {
            answer_type: Some("A".into()),
            ipv4: Some(v4.to_string()),
            ttl,
            ..Default::default()
        },
        IpAddr::V6(v6) => Answer {
            answer_type: Some("AAAA".into()),
            ipv6: Some(v6.to_string()),
            ttl,
            ..Default::default()
        },
    }
}

async fn getaddrinfo(trace: &Trace, host: &str, timeout: Duration, tags: &[String]) -> (Query, Vec<IpAddr>) {
    let t0 = Instant::now();
    let id = trace.next_id();
    let result = tokio::time::timeout(timeout, tokio::net::lookup_host((host, 0))).await;
    let (addrs, failure) = match result {
        Err(_) => (Vec::new(), Some(Failure::GenericTimeoutError)),
        Ok(Err(e)) => (Vec::new(), Some(classify_getaddrinfo(&e.to_string()))),
        Ok(Ok(iter)) => {
            let mut v = Vec::new();
            push_unique(&mut v, iter.map(|sa| sa.ip()).collect());
            let failure = v.is_empty().then_some(Failure::DnsNoAnswer);
            (v, failure)
        }
    };
    let query = Query {
        answers: Some(addrs.iter().map(|ip| answer_for(*ip, None)).collect()),
        engine: Some("getaddrinfo".into()),
        failure,
        hostname: Some(host.to_owned()),
        query_type: Some("ANY".into()),
        resolver_address: Some(String::new()),
        t0: Some(trace.t(t0)),
        t: Some(trace.now()),
        tags: Some(tags.to_vec()),
        transaction_id: Some(id),
        ..Default::default()
    };
    (query, addrs)
}

/// A DNS query message for `host` and `qtype` with id `id`, recursion desired.
pub fn build_query(id: u16, host: &str, qtype: RecordType) -> Result<Vec<u8>, String> {
    let mut name = Name::from_ascii(host).map_err(|e| format!("{host:?} is not a DNS name: {e}"))?;
    name.set_fqdn(true);
    let mut msg = Message::new();
    msg.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(DnsQuestion::query(name, qtype));
    msg.to_vec()
        .map_err(|e| format!("cannot encode a query for {host:?}: {e}"))
}

/// What a DNS response says, as the test keys need it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedResponse {
    /// Message id.
    pub id: u16,
    /// Response code.
    pub rcode: u16,
    /// Answers (A, AAAA, CNAME), in order.
    pub answers: Vec<Answer>,
    /// Addresses of the asked type.
    pub addrs: Vec<IpAddr>,
}

/// Parses a response to a `qtype` query.
pub fn parse_response(bytes: &[u8], qtype: RecordType) -> Result<ParsedResponse, String> {
    let msg = Message::from_bytes(bytes).map_err(|e| format!("not a DNS message: {e}"))?;
    if msg.message_type() != MessageType::Response {
        return Err("a DNS query, not a response".into());
    }
    let mut answers = Vec::new();
    let mut addrs = Vec::new();
    for record in msg.answers() {
        let ttl = Some(i64::from(record.ttl()));
        match record.data() {
            RData::A(a) => {
                if qtype == RecordType::A {
                    addrs.push(IpAddr::V4(a.0));
                }
                answers.push(answer_for(IpAddr::V4(a.0), ttl));
            }
            RData::AAAA(a) => {
                if qtype == RecordType::AAAA {
                    addrs.push(IpAddr::V6(a.0));
                }
                answers.push(answer_for(IpAddr::V6(a.0), ttl));
            }
            RData::CNAME(c) => answers.push(Answer {
                answer_type: Some("CNAME".into()),
                hostname: Some(c.0.to_ascii()),
                ttl,
                ..Default::default()
            }),
            _ => {}
        }
    }
    Ok(ParsedResponse {
        id: msg.id(),
        rcode: u16::from(msg.response_code()),
        answers,
        addrs,
    })
}

struct UdpResult {
    query: Query,
    duplicates: Vec<Query>,
    addrs: Vec<IpAddr>,
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // A predictable id only weakens spoofing resistance, never correctness.
    let _ = getrandom::fill(&mut b);
    u16::from_ne_bytes(b)
}

async fn udp_query(
    trace: &Trace,
    server: SocketAddr,
    host: &str,
    qtype: RecordType,
    config: &DnsConfig,
    transaction_id: i64,
    tags: &[String],
) -> UdpResult {
    let t0 = Instant::now();
    let base = Query {
        engine: Some("udp".into()),
        hostname: Some(host.to_owned()),
        query_type: Some(qtype.to_string()),
        resolver_address: Some(server.to_string()),
        transaction_id: Some(transaction_id),
        tags: Some(tags.to_vec()),
        ..Default::default()
    };
    let finish = |mut q: Query, failure: Option<Failure>| {
        q.failure = failure;
        q.t0 = Some(trace.t(t0));
        q.t = Some(trace.now());
        q.answers.get_or_insert_with(Vec::new);
        q
    };
    let id = random_id();
    let message = match build_query(id, host, qtype) {
        Ok(m) => m,
        Err(e) => {
            return UdpResult {
                query: finish(base, Some(crate::failure::unknown(&e))),
                duplicates: Vec::new(),
                addrs: Vec::new(),
            };
        }
    };
    let bind: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match async {
        let s = UdpSocket::bind(bind).await?;
        s.connect(server).await?;
        s.send(&message).await?;
        Ok::<_, std::io::Error>(s)
    }
    .await
    {
        Ok(s) => s,
        Err(e) => {
            return UdpResult {
                query: finish(base, Some(classify_io(&e))),
                duplicates: Vec::new(),
                addrs: Vec::new(),
            };
        }
    };
    trace.event(
        "write_to",
        &server.to_string(),
        "udp",
        t0,
        Some(message.len() as i64),
        None,
        transaction_id,
        tags,
    );
    let deadline = tokio::time::Instant::from_std(t0 + config.timeout);
    let mut first: Option<UdpResult> = None;
    let mut stop_at = deadline;
    let mut buf = vec![0u8; 4096];
    loop {
        let received = tokio::time::timeout_at(stop_at, socket.recv(&mut buf)).await;
        let n = match received {
            Err(_) => break,
            Ok(Err(e)) => {
                if first.is_none() {
                    return UdpResult {
                        query: finish(base, Some(classify_io(&e))),
                        duplicates: Vec::new(),
                        addrs: Vec::new(),
                    };
                }
                break;
            }
            Ok(Ok(n)) => n,
        };
        let rt0 = Instant::now();
        trace.event(
            "read_from",
            &server.to_string(),
            "udp",
            rt0,
            Some(n as i64),
            None,
            transaction_id,
            tags,
        );
        let bytes = &buf[..n];
        // Replies with another id or that do not parse are someone else's; keep listening.
        let Ok(parsed) = parse_response(bytes, qtype) else {
            continue;
        };
        if parsed.id != id {
            continue;
        }
        let failure = classify_rcode(parsed.rcode, parsed.addrs.len());
        let mut q = base.clone();
        q.raw_response = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        q.rcode = Some(i64::from(parsed.rcode));
        q.answers = Some(parsed.answers);
        let q = finish(q, failure);
        match &mut first {
            None => {
                stop_at = deadline.min(tokio::time::Instant::now() + config.duplicate_window);
                first = Some(UdpResult {
                    query: q,
                    duplicates: Vec::new(),
                    addrs: parsed.addrs,
                });
            }
            Some(r) => r.duplicates.push(q),
        }
    }
    first.unwrap_or_else(|| UdpResult {
        query: finish(base, Some(Failure::GenericTimeoutError)),
        duplicates: Vec::new(),
        addrs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::{Record, rdata};

    #[test]
    fn resolv_conf() {
        let text = "# comment\nsearch lan\nnameserver fe80::1%eth0\nnameserver 192.0.2.53 # x\nnameserver 8.8.8.8\n";
        assert_eq!(parse_resolv_conf(text), Some("192.0.2.53:53".parse().unwrap()));
        assert_eq!(parse_resolv_conf("options ndots:1\n"), None);
    }

    #[test]
    fn query_round_trips_and_responses_parse() {
        let q = build_query(4242, "x.com", RecordType::A).unwrap();
        let mut msg = Message::from_bytes(&q).unwrap();
        assert_eq!(msg.id(), 4242);
        assert_eq!(msg.queries()[0].name().to_ascii(), "x.com.");
        msg.set_message_type(MessageType::Response);
        let name = Name::from_ascii("x.com.").unwrap();
        msg.add_answer(Record::from_rdata(
            name.clone(),
            60,
            RData::CNAME(rdata::CNAME(Name::from_ascii("edge.x.com.").unwrap())),
        ));
        msg.add_answer(Record::from_rdata(
            name,
            60,
            RData::A(rdata::A("104.244.42.1".parse().unwrap())),
        ));
        let parsed = parse_response(&msg.to_vec().unwrap(), RecordType::A).unwrap();
        assert_eq!(parsed.rcode, 0);
        assert_eq!(parsed.addrs, vec!["104.244.42.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(parsed.answers.len(), 2);
        assert_eq!(parsed.answers[0].hostname.as_deref(), Some("edge.x.com."));
        assert_eq!(parsed.answers[1].ipv4.as_deref(), Some("104.244.42.1"));
        // Only addresses of the asked type count.
        assert!(
            parse_response(&msg.to_vec().unwrap(), RecordType::AAAA)
                .unwrap()
                .addrs
                .is_empty()
        );
        msg.set_response_code(ResponseCode::NXDomain);
        assert_eq!(parse_response(&msg.to_vec().unwrap(), RecordType::A).unwrap().rcode, 3);
    }

    #[test]
    fn garbage_and_queries_are_not_responses() {
        assert!(parse_response(b"\x00\x01garbage", RecordType::A).is_err());
        let q = build_query(1, "x.com", RecordType::A).unwrap();
        assert!(parse_response(&q, RecordType::A).is_err());
        assert!(build_query(1, "bad name with spaces..", RecordType::A).is_err());
    }
}
