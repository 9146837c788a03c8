//! The lab's internet: the websites (HTTPS and HTTP under the lab CA), the blockpage server, a
//! site that is down, a site that answers the lab's clients with a CAPTCHA (server-side geoblock),
//! and the authoritative DNS server that answers for all of their names.
//!
//! The web server is a deliberately small HTTP/1.1 responder (one request per connection,
//! `Connection: close`): the lab needs per-client answers (the geoblock) and a large static
//! resource, nothing more; a framework would hide the bytes a censor sees.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType, rdata};
use rustls::ServerConfig;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

/// What a lab host is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A website: a page with a title and a large static resource, on :80 and :443.
    Web,
    /// The blockpage server: a national blockpage on :80, nothing on :443.
    Blockpage,
    /// Resolves, but nothing listens (connections are refused for everyone).
    Down,
    /// A website that serves lab clients a CAPTCHA (HTTP 403) and everyone else the page.
    Geoblock,
}

/// A named host in the lab's internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// DNS name.
    pub name: &'static str,
    /// Its address (public-looking; it exists only inside the lab).
    pub ip: Ipv4Addr,
    /// What it does.
    pub role: Role,
    /// The page title.
    pub title: &'static str,
}

/// x.com's address in the lab (X Corp's real prefix 104.244.42.0/24, AS13414).
pub const X_IP: Ipv4Addr = Ipv4Addr::new(104, 244, 42, 1);
/// The blockpage server's address.
pub const BLOCKPAGE_IP: Ipv4Addr = Ipv4Addr::new(77, 77, 77, 1);

/// Every host of the lab's internet.
pub const SITES: &[Site] = &[
    Site {
        name: "x.com",
        ip: X_IP,
        role: Role::Web,
        title: "X. It's what's happening",
    },
    Site {
        name: "twitter.com",
        ip: Ipv4Addr::new(104, 244, 42, 65),
        role: Role::Web,
        title: "Twitter. It's what's happening",
    },
    Site {
        name: "abs.twimg.com",
        ip: Ipv4Addr::new(104, 244, 43, 131),
        role: Role::Web,
        title: "twimg static content",
    },
    Site {
        name: "example.org",
        ip: Ipv4Addr::new(77, 77, 77, 2),
        role: Role::Web,
        title: "Example Domain (lab decoy)",
    },
    Site {
        name: "blockpage.example.net",
        ip: BLOCKPAGE_IP,
        role: Role::Blockpage,
        title: "Access Denied",
    },
    Site {
        name: "down.example.net",
        ip: Ipv4Addr::new(77, 77, 77, 3),
        role: Role::Down,
        title: "",
    },
    Site {
        name: "news.example.net",
        ip: Ipv4Addr::new(77, 77, 77, 4),
        role: Role::Geoblock,
        title: "Daily News",
    },
];

/// The site named `name`.
pub fn site(name: &str) -> Option<&'static Site> {
    SITES.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// The decoy host of throughput tests: an innocuous site with the same large resource.
pub const DECOY: &str = "example.org";

/// The path of every website's large static resource.
pub const LARGE_PATH: &str = "/static/large.bin";
/// Its size.
pub const LARGE_BYTES: usize = 1 << 20;

/// The national blockpage the blockpage server shows: its wording matches censored planet's
/// Pakistani fingerprint `cp.b_nat_pak_isp_common_blockpage` (in censorwatch-verdict's OONI set).
pub const NATIONAL_BLOCKPAGE: &str = "<html><head><title>Site Unavailable</title></head><body><h1>Site Unavailable</h1><p>This website contains content which is prohibited for viewership from within Pakistan.</p></body></html>";

/// The page a transparent proxy injects: Jazz (formerly Mobilink)'s iframe redirect, matching
/// OONI's fingerprint `ooni.pk_1` (`http://119.73.65.87:8080/redirect.html?accessurl=`).
pub const INJECTED_BLOCKPAGE: &str = "<html><head><title></title></head><body><iframe src=\"http://119.73.65.87:8080/redirect.html?accessurl=eC5jb20=\" style=\"width:100%;height:100%;border:none\"></iframe></body></html>";

/// A CDN's CAPTCHA interstitial (what a site's bot or geo protection shows a client it distrusts).
pub const CAPTCHA_PAGE: &str = "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body><h1>Sorry, you have been blocked</h1><p>Please complete the security check (captcha) to access news.example.net.</p></body></html>";

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Arc<[u8]>,
}

/// The headers a website adds to every page: the site's own (uncommon in OONI's sense, so a page
/// from elsewhere — a blockpage — shares none of them) and `Alt-Svc` announcing HTTP/3 on :443.
pub fn site_headers(site: &Site) -> Vec<(String, String)> {
    vec![
        ("Alt-Svc".to_owned(), "h3=\":443\"; ma=86400".to_owned()),
        ("X-Served-By".to_owned(), format!("lab-{}", site.name)),
        ("X-Response-Time".to_owned(), "12".to_owned()),
    ]
}

/// A site's page: its title and some text (about 8 KB).
pub fn page(site: &Site) -> String {
    let para = format!(
        "<p>{} — a page of the censorwatch lab, served from {} to whoever reaches it.</p>\n",
        site.title, site.ip
    );
    format!(
        "<!DOCTYPE html><html><head><title>{}</title></head><body><h1>{}</h1>\n{}</body></html>",
        site.title,
        site.title,
        para.repeat(8000 / para.len().max(1))
    )
}

/// The large static resource: `LARGE_BYTES` of deterministic, incompressible-looking bytes.
pub fn large_resource() -> Arc<[u8]> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..LARGE_BYTES)
        .map(|_| {
            // xorshift64: cheap, deterministic, and not compressible by a middlebox.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What `site` answers `peer` for `path`.
pub fn respond(site: &Site, peer: IpAddr, path: &str, large: &Arc<[u8]>) -> Response {
    let html = |status: u16, body: String, extra: Vec<(String, String)>| {
        let mut headers = vec![("Content-Type".to_owned(), "text/html; charset=utf-8".to_owned())];
        if site.role == Role::Web || site.role == Role::Geoblock {
            headers.extend(site_headers(site));
        }
        headers.extend(extra);
        Response {
            status,
            headers,
            body: body.into_bytes().into(),
        }
    };
    match site.role {
        Role::Blockpage => html(200, NATIONAL_BLOCKPAGE.to_owned(), Vec::new()),
        Role::Geoblock if crate::topology::is_client_address(peer) => html(
            403,
            CAPTCHA_PAGE.to_owned(),
            vec![
                ("Server".into(), "cloudflare".into()),
                ("cf-mitigated".into(), "challenge".into()),
            ],
        ),
        _ if path.starts_with(LARGE_PATH) => Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: large.clone(),
        },
        _ => html(200, page(site), Vec::new()),
    }
}

/// Serves `site` over plain HTTP (`tls: None`) or HTTPS on `listener` until the task is dropped.
pub async fn serve_site(listener: TcpListener, tls: Option<Arc<ServerConfig>>, site: Site, large: Arc<[u8]>) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut conns = JoinSet::new();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let (acceptor, large) = (acceptor.clone(), large.clone());
        conns.spawn(async move {
            match acceptor {
                Some(a) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(std::time::Duration::from_secs(10), a.accept(tcp)).await
                    {
                        serve_one(stream, &site, peer, &large).await;
                    }
                }
                None => serve_one(tcp, &site, peer, &large).await,
            }
        });
        while conns.try_join_next().is_some() {}
    }
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, site: &Site, peer: SocketAddr, large: &Arc<[u8]>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if head.len() > 64 * 1024 {
                return false;
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(std::time::Duration::from_secs(10), read_head).await,
        Ok(true)
    ) {
        return;
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let r = respond(site, peer.ip(), &path, large);
    // No Content-Length or Connection header: the body ends when the connection closes (RFC 9112
    // §6.3). Both headers are "uncommon" in OONI's header comparison, and an injected blockpage
    // sends them, so a site sending them too would share headers with any blockpage.
    let mut out = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    if stream.write_all(out.as_bytes()).await.is_err() {
        return;
    }
    for chunk in r.body.chunks(16 * 1024) {
        if stream.write_all(chunk).await.is_err() {
            return;
        }
    }
    let _ = stream.shutdown().await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Status",
    }
}

/// Accepts QUIC (HTTP/3 ALPN) handshakes on `socket` for the sites of `tls` until the task is
/// dropped; connections are held briefly and closed (the probe measures the handshake only).
pub async fn serve_quic(socket: std::net::UdpSocket, tls: Arc<ServerConfig>) -> std::io::Result<()> {
    let mut crypto = (*tls).clone();
    crypto.alpn_protocols = vec![b"h3".to_vec()];
    crypto.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(crypto)
        .map_err(|e| std::io::Error::other(format!("QUIC needs TLS 1.3: {e}")))?;
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let runtime = quinn::default_runtime().ok_or_else(|| std::io::Error::other("no async runtime for QUIC"))?;
    let endpoint = quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(config), socket, runtime)?;
    let mut conns = JoinSet::new();
    while let Some(incoming) = endpoint.accept().await {
        conns.spawn(async move {
            if let Ok(conn) = incoming.await {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                conn.close(0u32.into(), b"bye");
            }
        });
        while conns.try_join_next().is_some() {}
    }
    Ok(())
}

/// The lab's DNS zone: name (lowercase, no trailing dot) → IPv4 addresses.
pub fn zone() -> HashMap<String, Vec<Ipv4Addr>> {
    let mut z: HashMap<String, Vec<Ipv4Addr>> = SITES.iter().map(|s| (s.name.to_owned(), vec![s.ip])).collect();
    z.insert("control.example.net".into(), vec![crate::topology::CONTROL]);
    z
}

/// The answer to one DNS query from `zone`: A records for known names, an empty NOERROR for other
/// types of a known name, NXDOMAIN for unknown names. `None` for a message that is not a query.
pub fn answer(zone: &HashMap<String, Vec<Ipv4Addr>>, query: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    if query.message_type() != MessageType::Query {
        return None;
    }
    let q = query.queries().first()?;
    let name = q.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let mut msg = Message::new();
    msg.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    msg.add_query(q.clone());
    match zone.get(&name) {
        None => {
            msg.set_response_code(ResponseCode::NXDomain);
        }
        Some(addrs) => {
            msg.set_response_code(ResponseCode::NoError);
            if q.query_type() == RecordType::A {
                for a in addrs {
                    msg.add_answer(Record::from_rdata(q.name().clone(), 300, RData::A(rdata::A(*a))));
                }
            }
        }
    }
    msg.to_vec().ok()
}

/// Serves `zone` on `socket` until the task is dropped.
pub async fn serve_zone(socket: UdpSocket, zone: HashMap<String, Vec<Ipv4Addr>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = answer(&zone, &buf[..n]) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    fn ask(name: &str, t: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(7).add_query(Query::query(Name::from_str(name).unwrap(), t));
        Message::from_vec(&answer(&zone(), &m.to_vec().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn zone_answers_known_names_only() {
        let r = ask("X.com.", RecordType::A);
        assert_eq!(r.id(), 7);
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert_eq!(r.answers().len(), 1);
        assert_eq!(r.answers()[0].data(), &RData::A(rdata::A(X_IP)));
        let r = ask("x.com.", RecordType::AAAA);
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.answers().is_empty());
        assert_eq!(
            ask("nope.example.", RecordType::A).response_code(),
            ResponseCode::NXDomain
        );
        assert!(answer(&zone(), b"garbage").is_none());
    }

    #[test]
    fn sites_are_public_and_distinct() {
        let mut ips: Vec<_> = SITES.iter().map(|s| s.ip).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), SITES.len());
        for s in SITES {
            assert!(
                !censorwatch_verdict::bogon::is_bogon(IpAddr::V4(s.ip)),
                "{} is a bogon",
                s.name
            );
        }
    }

    #[test]
    fn geoblock_only_for_lab_clients() {
        let geo = site("news.example.net").unwrap();
        let large = large_resource();
        let to_client = respond(geo, "10.77.10.2".parse().unwrap(), "/", &large);
        assert_eq!(to_client.status, 403);
        let to_control = respond(geo, "77.77.77.4".parse().unwrap(), "/", &large);
        assert_eq!(to_control.status, 200);
        assert!(String::from_utf8_lossy(&to_control.body).contains("<title>Daily News</title>"));
    }

    #[test]
    fn blockpages_match_the_fingerprints_they_claim() {
        let fps = censorwatch_verdict::FingerprintDb::builtin();
        assert_eq!(
            fps.match_body(NATIONAL_BLOCKPAGE.as_bytes()).map(|f| f.name.as_str()),
            Some("cp.b_nat_pak_isp_common_blockpage")
        );
        assert_eq!(
            fps.match_body(INJECTED_BLOCKPAGE.as_bytes()).map(|f| f.name.as_str()),
            Some("ooni.pk_1")
        );
        let x = site("x.com").unwrap();
        assert!(fps.match_body(page(x).as_bytes()).is_none());
    }

    #[test]
    fn large_resource_is_large_and_varied() {
        let l = large_resource();
        assert_eq!(l.len(), LARGE_BYTES);
        let zeros = l.iter().filter(|b| **b == 0).count();
        assert!(zeros < LARGE_BYTES / 100);
        let x = site("x.com").unwrap();
        assert_eq!(
            respond(x, "10.77.10.2".parse().unwrap(), LARGE_PATH, &l).body.len(),
            LARGE_BYTES
        );
    }
}
