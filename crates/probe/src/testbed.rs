//! Loopback servers for tests (feature `testbed`): a fake authoritative resolver, TLS and plain
//! HTTP targets and QUIC servers with a test CA, each with a per-client policy that plays the censor.
//!
//! A censor on loopback: the probe connects from one 127.0.0.x source address and the control
//! from another, and a target's [`Policy`] decides per client address and name (SNI or Host)
//! whether to serve, reset (a real RST: `SO_LINGER` 0), close (EOF) or stall. Tests use only
//! 127.0.0.0/8.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType, rdata};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// A private CA that issues server certificates.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

impl TestCa {
    /// A fresh CA.
    pub fn new(common_name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list is valid");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name.to_owned());
        let key = KeyPair::generate().expect("key generation works");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA self-signs"),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A rustls server config with a certificate for `names`, chained to this CA.
    pub fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        let key = KeyPair::generate().expect("key generation works");
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("names are valid");
        let cert = params.signed_by(&key, &self.issuer).expect("CA signs");
        let chain = vec![cert.der().clone(), self.issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("default versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("valid certificate and key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A quinn server config (TLS 1.3, ALPN h3) with a certificate for `names`, chained to this CA.
    pub fn quic_server_config(&self, names: &[&str]) -> quinn::ServerConfig {
        let key = KeyPair::generate().expect("key generation works");
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("names are valid");
        let cert = params.signed_by(&key, &self.issuer).expect("CA signs");
        let chain = vec![cert.der().clone(), self.issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("valid certificate and key");
        config.alpn_protocols = vec![crate::quic::H3_ALPN.as_bytes().to_vec()];
        let crypto =
            quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(config)).expect("a QUIC-capable config");
        quinn::ServerConfig::with_crypto(Arc::new(crypto))
    }
}

/// How the fake resolver answers a name.
#[derive(Debug, Clone)]
pub enum DnsAnswer {
    /// These addresses (A and AAAA by family).
    Addrs(Vec<IpAddr>),
    /// NXDOMAIN.
    Nxdomain,
    /// REFUSED.
    Refused,
    /// SERVFAIL.
    Servfail,
    /// No reply at all.
    Silent,
    /// An injector's answer first, then the real one 20 ms later.
    Injected {
        /// The forged answer.
        first: Vec<IpAddr>,
        /// The real answer.
        then: Vec<IpAddr>,
    },
}

/// A UDP DNS server on loopback answering from a fixed table (unknown names: NXDOMAIN).
#[derive(Debug)]
pub struct FakeResolver {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

fn reply(query: &Message, answer: &[IpAddr], rcode: ResponseCode) -> Vec<u8> {
    let mut msg = Message::new();
    msg.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true)
        .set_response_code(rcode);
    if let Some(q) = query.queries().first() {
        msg.add_query(q.clone());
        for ip in answer {
            let data = match (ip, q.query_type()) {
                (IpAddr::V4(v4), RecordType::A) => RData::A(rdata::A(*v4)),
                (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(rdata::AAAA(*v6)),
                _ => continue,
            };
            msg.add_answer(Record::from_rdata(q.name().clone(), 60, data));
        }
    }
    msg.to_vec().unwrap_or_default()
}

impl FakeResolver {
    /// Starts a resolver on 127.0.0.53 with `table` (names without the trailing dot, lowercase).
    pub async fn start(table: HashMap<String, DnsAnswer>) -> FakeResolver {
        FakeResolver::start_with_delay(table, Duration::ZERO).await
    }

    /// Like [`FakeResolver::start`], answering each query after `delay` (an emulated round trip).
    pub async fn start_with_delay(table: HashMap<String, DnsAnswer>, delay: Duration) -> FakeResolver {
        let socket = Arc::new(UdpSocket::bind("127.0.0.53:0").await.expect("bind a UDP port"));
        let addr = socket.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(q) = query.queries().first() else { continue };
                let name = q.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
                let answer = table.get(&name).cloned().unwrap_or(DnsAnswer::Nxdomain);
                let socket = socket.clone();
                if delay.is_zero() {
                    answer_once(socket, query, answer, peer).await;
                } else {
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        answer_once(socket, query, answer, peer).await;
                    });
                }
            }
        });
        FakeResolver { addr, task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

async fn answer_once(socket: Arc<UdpSocket>, query: Message, answer: DnsAnswer, peer: SocketAddr) {
    let (addrs, rcode) = match answer {
        DnsAnswer::Addrs(a) => (a, ResponseCode::NoError),
        DnsAnswer::Nxdomain => (Vec::new(), ResponseCode::NXDomain),
        DnsAnswer::Refused => (Vec::new(), ResponseCode::Refused),
        DnsAnswer::Servfail => (Vec::new(), ResponseCode::ServFail),
        DnsAnswer::Silent => return,
        DnsAnswer::Injected { first, then } => {
            let _ = socket
                .send_to(&reply(&query, &first, ResponseCode::NoError), peer)
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            (then, ResponseCode::NoError)
        }
    };
    let _ = socket.send_to(&reply(&query, &addrs, rcode), peer).await;
}

impl Drop for FakeResolver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a target does with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Serve normally.
    Serve,
    /// Send a TCP RST.
    Reset,
    /// Close cleanly (the client sees EOF).
    Close,
    /// Say nothing, forever (the client times out).
    Stall,
    /// Serve, but send at most this many bytes per second (a token bucket on writes with a
    /// 16 KiB burst): a throttling censor.
    Throttle(u64),
}

/// Decides per client address and name (SNI for TLS, Host for HTTP).
pub type Policy = Arc<dyn Fn(IpAddr, Option<&str>) -> Action + Send + Sync>;
/// Produces the response for a host and path.
pub type Handler = Arc<dyn Fn(&str, &str) -> Reply + Send + Sync>;

/// Serve everyone.
pub fn serve_all() -> Policy {
    Arc::new(|_, _| Action::Serve)
}

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    /// A 200 HTML page with `title`.
    pub fn page(title: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: format!(
                "<html><head><title>{title}</title></head><body>{}</body></html>",
                "x".repeat(1000)
            )
            .into_bytes(),
            delay: Duration::ZERO,
        }
    }

    /// A redirect to `location`.
    pub fn redirect(location: &str) -> Reply {
        Reply {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }
}

/// A TCP server on loopback (TLS or plain HTTP).
#[derive(Debug)]
pub struct Target {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Target {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// An HTTPS target on `ip` (port chosen by the system, or `port` if non-zero).
    pub async fn https(ip: IpAddr, port: u16, config: Arc<ServerConfig>, policy: Policy, handler: Handler) -> Target {
        let listener = TcpListener::bind((ip, port)).await.expect("bind a TCP port");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let (config, policy, handler) = (config.clone(), policy.clone(), handler.clone());
                conns.spawn(async move {
                    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
                    let Ok(start) = acceptor.await else { return };
                    let sni = start.client_hello().server_name().map(str::to_owned);
                    match policy(peer.ip(), sni.as_deref()) {
                        Action::Serve => {
                            let Ok(tls) = start.into_stream(config).await else {
                                return;
                            };
                            serve_http(tls, peer.ip(), None, &handler, None).await;
                        }
                        Action::Throttle(rate) => {
                            let Ok(tls) = start.into_stream(config).await else {
                                return;
                            };
                            serve_http(tls, peer.ip(), None, &handler, Some(rate)).await;
                        }
                        Action::Reset => {
                            let _ = start.io.set_zero_linger();
                        }
                        Action::Close => {}
                        Action::Stall => tokio::time::sleep(Duration::from_secs(3600)).await,
                    }
                });
                // Reap finished connections so the set does not grow without bound.
                while conns.try_join_next().is_some() {}
            }
        });
        Target { addr, task }
    }

    /// A plain HTTP target on `ip`; the policy sees the Host header.
    pub async fn http(ip: IpAddr, port: u16, policy: Policy, handler: Handler) -> Target {
        let listener = TcpListener::bind((ip, port)).await.expect("bind a TCP port");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let (policy, handler) = (policy.clone(), handler.clone());
                conns.spawn(async move {
                    serve_http(tcp, peer.ip(), Some(&policy), &handler, None).await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Target { addr, task }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

trait Lingering {
    fn reset(&self);
}

impl Lingering for TcpStream {
    fn reset(&self) {
        let _ = self.set_zero_linger();
    }
}

impl<S> Lingering for tokio_rustls::server::TlsStream<S> {
    fn reset(&self) {}
}

async fn serve_http<S>(mut stream: S, peer: IpAddr, policy: Option<&Policy>, handler: &Handler, rate: Option<u64>)
where
    S: AsyncRead + AsyncWrite + Unpin + Lingering,
{
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let host = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("host").then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    let host_only = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h).to_owned();
    let mut rate = rate;
    if let Some(policy) = policy {
        match policy(peer, Some(&host_only)) {
            Action::Serve => {}
            Action::Throttle(r) => rate = Some(r),
            Action::Reset => {
                stream.reset();
                return;
            }
            Action::Close => return,
            Action::Stall => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        }
    }
    let reply = handler(&host_only, &path);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    if stream.write_all(out.as_bytes()).await.is_err() {
        return;
    }
    let mut bucket = rate.map(TokenBucket::new);
    let chunk_len = if bucket.is_some() { 1024 } else { 64 * 1024 };
    for chunk in reply.body.chunks(chunk_len) {
        if let Some(b) = &mut bucket {
            b.take(chunk.len()).await;
        }
        if stream.write_all(chunk).await.is_err() {
            return;
        }
    }
    let _ = stream.shutdown().await;
}

/// A QUIC server on loopback that completes handshakes (ALPN h3) and then waits for the client to
/// close; its policy sees the client's address only (no name: the decision is made on the first
/// packet). Anything but [`Action::Serve`] drops the client's packets unanswered — what a censor
/// blocking UDP/443 does.
#[derive(Debug)]
pub struct QuicTarget {
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    task: JoinHandle<()>,
}

impl QuicTarget {
    /// A QUIC server on `ip`:`port` (UDP; the port may equal a TCP target's).
    pub async fn start(ip: IpAddr, port: u16, config: quinn::ServerConfig, policy: Policy) -> QuicTarget {
        let endpoint = quinn::Endpoint::server(config, SocketAddr::new(ip, port)).expect("bind a UDP port");
        let addr = endpoint.local_addr().expect("local address");
        let server = endpoint.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Some(incoming) = server.accept().await {
                if policy(incoming.remote_address().ip(), None) != Action::Serve {
                    incoming.ignore();
                    continue;
                }
                conns.spawn(async move {
                    if let Ok(conn) = incoming.await {
                        let _ = tokio::time::timeout(Duration::from_secs(30), conn.closed()).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        QuicTarget { addr, endpoint, task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for QuicTarget {
    fn drop(&mut self) {
        self.endpoint.close(0u32.into(), b"");
        self.task.abort();
    }
}

/// Paces writes to `rate` bytes per second with a burst of [`TokenBucket::BURST`] bytes.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl TokenBucket {
    const BURST: f64 = 16.0 * 1024.0;

    fn new(rate: u64) -> TokenBucket {
        TokenBucket {
            rate: rate.max(1) as f64,
            tokens: Self::BURST,
            last: std::time::Instant::now(),
        }
    }

    /// Waits until `n` bytes may be sent, and spends them.
    async fn take(&mut self, n: usize) {
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + (now - self.last).as_secs_f64() * self.rate).min(Self::BURST);
        self.last = now;
        let need = n as f64 - self.tokens;
        if need > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(need / self.rate)).await;
            self.last = std::time::Instant::now();
            self.tokens = 0.0;
        } else {
            self.tokens -= n as f64;
        }
    }
}

/// A table of names to addresses for [`FakeResolver::start`].
pub fn table(entries: &[(&str, DnsAnswer)]) -> HashMap<String, DnsAnswer> {
    entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}
