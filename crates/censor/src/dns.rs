//! The DNS censor: a UDP resolver front that answers each query by the first matching rule —
//! NXDOMAIN, REFUSED, silence, a spoofed answer, an injected answer racing the real one — and
//! relays the rest to the upstream resolver. Messages are read and written with hickory-proto;
//! a datagram that is not a DNS query is ignored.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::rules::{DnsAction, DnsRule, match_query};
use crate::stats::DnsStats;

/// How long a relayed query waits for upstream's answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// TTL of forged records.
pub const FORGED_TTL: u32 = 60;

/// The DNS censor's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCensorConfig {
    /// The real resolver queries are relayed to.
    pub upstream: SocketAddr,
    /// Rules, first match wins; a query no rule matches is relayed.
    pub rules: Vec<DnsRule>,
}

/// Runs the DNS censor on `socket` until `shutdown` completes; queries still waiting for
/// upstream are abandoned then. Bad datagrams are counted and ignored, never fatal.
pub async fn serve_dns(
    socket: UdpSocket,
    config: DnsCensorConfig,
    stats: DnsStats,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_dns_since(socket, config, stats, Instant::now(), shutdown).await
}

/// [`serve_dns`] with rule schedules counted from `epoch` instead of the call, so that several
/// servers (the DNS censor and the DPI proxy of one emulated ISP, say) cycle in step.
pub async fn serve_dns_since(
    socket: UdpSocket,
    config: DnsCensorConfig,
    stats: DnsStats,
    epoch: Instant,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let started = epoch;
    let socket = Arc::new(socket);
    let mut relays = JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    tokio::pin!(shutdown);
    loop {
        let (len, client) = tokio::select! {
            () = &mut shutdown => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(error) => {
                    warn!(%error, "dns: receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        while relays.try_join_next().is_some() {}
        stats.count(|c| &c.dns_queries);
        let packet = &buf[..len];
        let Some((request, question)) = parse_query(packet) else {
            stats.count(|c| &c.dns_malformed);
            debug!(%client, len, "dns: ignored a datagram that is not a DNS query");
            continue;
        };
        let qname = question.name().to_ascii();
        let action = match_query(&config.rules, &qname, started.elapsed()).map_or(&DnsAction::Forward, |r| &r.action);
        stats.count_dns_action(action);
        info!(%client, name = %qname, qtype = %question.query_type(), action = action.label(), "dns: query");
        let reply = match action {
            DnsAction::Forward | DnsAction::Drop => None,
            DnsAction::NxDomain => Some(response(&request, &question, ResponseCode::NXDomain, &[])),
            DnsAction::Refused => Some(response(&request, &question, ResponseCode::Refused, &[])),
            DnsAction::Spoof(addresses) | DnsAction::Inject(addresses) => {
                Some(response(&request, &question, ResponseCode::NoError, addresses))
            }
        };
        if let Some(reply) = reply {
            match reply {
                Ok(bytes) => {
                    if let Err(error) = socket.send_to(&bytes, client).await {
                        debug!(%client, %error, "dns: answer not sent");
                    }
                }
                Err(error) => warn!(%client, %error, "dns: could not encode the answer"),
            }
        }
        if matches!(action, DnsAction::Forward | DnsAction::Inject(_)) {
            let (socket, stats, packet, upstream) =
                (Arc::clone(&socket), stats.clone(), packet.to_vec(), config.upstream);
            relays.spawn(async move {
                if let Err(error) = relay(&socket, client, &packet, request.id(), upstream).await {
                    stats.count(|c| &c.dns_upstream_failures);
                    debug!(%client, %upstream, %error, "dns: relay failed");
                }
            });
        }
    }
    relays.shutdown().await;
    Ok(())
}

/// The request and its first question, if `packet` is a standard query with one.
fn parse_query(packet: &[u8]) -> Option<(Message, Query)> {
    let request = Message::from_vec(packet).ok()?;
    if request.message_type() != MessageType::Query || request.op_code() != OpCode::Query {
        return None;
    }
    let question = request.queries().first()?.clone();
    Some((request, question))
}

/// A response to `request` with `code` and, for an A / AAAA question, one record per address of
/// that family.
fn response(
    request: &Message,
    question: &Query,
    code: ResponseCode,
    addresses: &[IpAddr],
) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut message = Message::new();
    message
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(code)
        .add_query(question.clone());
    for address in addresses {
        let rdata = match (question.query_type(), address) {
            (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
            (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
            _ => continue,
        };
        message.add_answer(Record::from_rdata(question.name().clone(), FORGED_TTL, rdata));
    }
    message.to_vec()
}

/// Sends `packet` to `upstream` from a fresh socket and relays the answer with `id` to `client`.
async fn relay(
    socket: &UdpSocket,
    client: SocketAddr,
    packet: &[u8],
    id: u16,
    upstream: SocketAddr,
) -> std::io::Result<()> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let upstream_socket = UdpSocket::bind(local).await?;
    upstream_socket.connect(upstream).await?;
    upstream_socket.send(packet).await?;
    let mut buf = vec![0u8; 65_536];
    let answer = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
        loop {
            let n = upstream_socket.recv(&mut buf).await?;
            // Only an answer to this query (the ID matches) is relayed; strays are skipped.
            if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                return Ok::<usize, std::io::Error>(n);
            }
        }
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "upstream did not answer in time"))??;
    socket.send_to(&buf[..answer], client).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;
    use proptest::prelude::*;

    fn query(name: &str, qtype: RecordType) -> Vec<u8> {
        let mut message = Message::new();
        message
            .set_id(0x1234)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        message.to_vec().unwrap()
    }

    #[test]
    fn a_spoofed_answer_keeps_only_the_question_family() {
        let packet = query("x.com.", RecordType::AAAA);
        let (request, question) = parse_query(&packet).unwrap();
        let forged = [IpAddr::from([10, 0, 0, 1]), "fd00::1".parse().unwrap()];
        let answer =
            Message::from_vec(&response(&request, &question, ResponseCode::NoError, &forged).unwrap()).unwrap();
        assert_eq!(answer.id(), 0x1234);
        assert_eq!(answer.queries(), request.queries());
        let data: Vec<_> = answer.answers().iter().map(|r| r.data().clone()).collect();
        assert_eq!(data, vec![RData::AAAA(AAAA("fd00::1".parse().unwrap()))]);
        assert_eq!(answer.answers()[0].ttl(), FORGED_TTL);
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Some((request, question)) = parse_query(&bytes) {
                let _ = response(&request, &question, ResponseCode::NoError, &[IpAddr::from([10, 0, 0, 1])]);
            }
        }

        #[test]
        fn corrupted_queries_never_panic(index in 0usize..64, value in any::<u8>(), cut in 0usize..64) {
            let mut packet = query("abs.twimg.com.", RecordType::A);
            let index = index % packet.len();
            packet[index] = value;
            packet.truncate(packet.len() - cut % packet.len());
            if let Some((request, question)) = parse_query(&packet) {
                let _ = response(&request, &question, ResponseCode::NXDomain, &[]);
            }
        }
    }
}
