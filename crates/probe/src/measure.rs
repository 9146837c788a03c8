//! The measurement of one URL, step by step as a censor would see it, and the OONI
//! web_connectivity measurement it becomes.
//!
//! 1. DNS: every configured engine (getaddrinfo, UDP).
//! 2. Concurrently: the control is asked for its view, and every resolved address is tried — TCP
//!    connect, then for `https://` a verified TLS handshake with the URL's SNI. A handshake that
//!    fails for a network reason (reset, EOF, timeout, a failed handshake — not a certificate
//!    problem) is repeated on a fresh connection to the same address with an innocuous decoy SNI,
//!    unverified: success with the decoy and failure with the real name is SNI filtering.
//! 3. A GET over the first address that worked; redirects followed hop by hop (≤ 10), each hop
//!    with its own lookup, connects and handshake, tagged `depth=N`.
//! 4. The measurement is written (df-000 envelope, ts-017 test keys, `x_` extras), scrubbed of the
//!    probe's own address, and judged by `censorwatch-verdict`; OONI's `blocking` and `accessible`
//!    keys are filled from that verdict, never decided here.

use crate::dns::{self, DnsConfig};
use crate::failure::classify_io;
use crate::http::{self, FetchSpec, MAX_REDIRECTS};
use crate::quic::{self, QuicMode, QuicSpec};
use crate::th::{self, ControlClient};
use crate::throughput::{self, Transfer};
use crate::tls::{self, HandshakeSpec, TlsSettings};
use crate::trace::{Trace, Traced};
use censorwatch_model::failure::FailureKind;
use censorwatch_model::web_connectivity::{
    ControlResponse, HttpTransaction, Query, TcpConnect, TcpStatus, TlsHandshake, WebConnectivityTestKeys,
};
use censorwatch_model::{Failure, Measurement, Verdict};
use censorwatch_verdict::Analyzer;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use url::Url;

/// The software name written in every measurement.
pub const SOFTWARE_NAME: &str = "censorwatch";
/// The web_connectivity test version censorwatch writes (its own numbering within OONI's 0.5 line:
/// LTE-style transaction ids and depth tags).
pub const TEST_VERSION: &str = "0.5.0";
/// The default decoy SNI for the A/B test: a reserved name (RFC 2606) no censor has reason to block.
pub const DEFAULT_DECOY_SNI: &str = "example.org";

/// The probe's network, as the control told it (never its IP address in a measurement).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkInfo {
    /// `"AS1234"`; `"AS0"` when unknown.
    pub asn: String,
    /// Two-letter country; `"ZZ"` when unknown.
    pub cc: String,
    /// The network's name.
    pub network_name: String,
    /// The probe's public address, only to scrub it from anything written.
    pub public_ip: Option<String>,
}

impl Default for NetworkInfo {
    fn default() -> Self {
        NetworkInfo {
            asn: "AS0".into(),
            cc: "ZZ".into(),
            network_name: String::new(),
            public_ip: None,
        }
    }
}

/// Everything a probe run is configured with.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// How names are resolved.
    pub dns: DnsConfig,
    /// Roots for verified handshakes.
    pub tls: TlsSettings,
    /// The control, if any (without one, verdicts can rarely say `blocked`).
    pub control: Option<ControlClient>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// TLS handshake timeout.
    pub tls_timeout: Duration,
    /// HTTP exchange timeout (head and body).
    pub http_timeout: Duration,
    /// Body bytes kept.
    pub max_body: usize,
    /// Addresses tried per name.
    pub max_addresses: usize,
    /// The decoy SNI for the A/B test.
    pub decoy_sni: String,
    /// Source address to connect from (labs and tests).
    pub local_ip: Option<IpAddr>,
    /// The probe's network.
    pub network: NetworkInfo,
    /// Never connect to bogon addresses (private, loopback, …); such connects fail with
    /// `dns_bogon_error`. Off for a probe; on for a control server, where connecting wherever a
    /// request says would be a server-side request forgery hole.
    pub refuse_bogons: bool,
    /// A reference transfer from the control over the same path (see
    /// [`ControlClient::throughput_reference`]), written into every measurement as
    /// `x_throughput_reference` next to each target's own `x_throughput`.
    pub throughput_reference: Option<crate::th::Throughput>,
    /// When QUIC (HTTP/3) handshakes are tried (see [`crate::quic`]); they use `tls_timeout`.
    pub quic: QuicMode,
    /// Large static resources for throughput tests: a measured URL whose host is one of theirs,
    /// and whose page loaded, gets that resource transferred and timed (`x_throughput_target`),
    /// then the decoy's and the control's (see [`crate::throughput`]). Default:
    /// [`crate::targets::LARGE_RESOURCES`].
    pub large_resources: Vec<Url>,
    /// The decoy of throughput tests: an innocuous host serving a similarly large resource over
    /// the same access network (`x_throughput_decoy`). Without it only the control is a reference.
    pub decoy_url: Option<Url>,
    /// Byte limit of each throughput transfer.
    pub throughput_max_bytes: usize,
    /// Time limit of each throughput transfer.
    pub throughput_max_duration: Duration,
}

impl ProbeConfig {
    /// Defaults: system DNS, Mozilla roots, no control, OONI-like timeouts.
    pub fn new(tls: TlsSettings) -> ProbeConfig {
        ProbeConfig {
            dns: DnsConfig::default(),
            tls,
            control: None,
            connect_timeout: Duration::from_secs(10),
            tls_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(15),
            max_body: http::DEFAULT_MAX_BODY,
            max_addresses: 8,
            decoy_sni: DEFAULT_DECOY_SNI.into(),
            local_ip: None,
            network: NetworkInfo::default(),
            refuse_bogons: false,
            throughput_reference: None,
            quic: QuicMode::default(),
            large_resources: crate::targets::LARGE_RESOURCES
                .iter()
                .filter_map(|u| Url::parse(u).ok())
                .collect(),
            decoy_url: None,
            throughput_max_bytes: throughput::DEFAULT_MAX_BYTES,
            throughput_max_duration: throughput::DEFAULT_MAX_DURATION,
        }
    }
}

/// A URL that cannot be measured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// Not a URL at all.
    #[error("{input:?} is not a URL ({reason}); give a full URL such as https://x.com/")]
    NotAUrl {
        /// The input.
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// A URL of another scheme.
    #[error("{input:?} is not an http:// or https:// URL; web_connectivity measures web pages only")]
    Scheme {
        /// The input.
        input: String,
    },
}

/// One measured URL.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The URL as given.
    pub input: String,
    /// The OONI measurement.
    pub measurement: Measurement,
    /// censorwatch's verdict on it.
    pub verdict: Verdict,
}

/// The measurement engine. Cheap to clone; measures many URLs concurrently.
#[derive(Debug, Clone)]
pub struct Probe {
    config: Arc<ProbeConfig>,
    analyzer: Arc<Analyzer>,
    test_start_time: String,
}

/// Parses a URL to measure.
pub fn parse_input(input: &str) -> Result<Url, InputError> {
    let url = Url::parse(input.trim()).map_err(|e| InputError::NotAUrl {
        input: input.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InputError::Scheme {
            input: input.to_owned(),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InputError::NotAUrl {
            input: input.to_owned(),
            reason: "it has no host".into(),
        });
    }
    Ok(url)
}

/// `"YYYY-MM-DD HH:MM:SS"` UTC, OONI's time format.
pub fn ooni_time(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "1970-01-01 00:00:00".into())
}

fn uuid4() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn endpoint(addr: SocketAddr) -> String {
    // SocketAddr's Display already brackets IPv6: "[2001:db8::1]:443", as OONI writes it.
    addr.to_string()
}

fn depth_tags(depth: usize) -> Vec<String> {
    vec![format!("depth={depth}")]
}

/// Replaces `ip` wherever it stands alone (not inside a longer number) in `text`.
pub fn scrub_ip(text: &str, ip: &str) -> String {
    if ip.is_empty() {
        return text.to_owned();
    }
    let v6 = ip.contains(':');
    let is_part = |c: char| {
        if v6 {
            c.is_ascii_hexdigit() || c == ':'
        } else {
            c.is_ascii_digit() || c == '.'
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(ip) {
        let before = rest[..pos].chars().next_back();
        let after = rest[pos + ip.len()..].chars().next();
        out.push_str(&rest[..pos]);
        if before.is_some_and(is_part) || after.is_some_and(is_part) {
            out.push_str(ip);
        } else {
            out.push_str("[scrubbed]");
        }
        rest = &rest[pos + ip.len()..];
    }
    out.push_str(rest);
    out
}

/// A connection ready for HTTP.
enum Conn {
    Plain(Traced<TcpStream>),
    Tls(Box<tls::Stream>, String),
}

/// One address tried: its connect, handshake(s), and the connection if it got that far.
struct Attempt {
    tcp_connect: Vec<TcpConnect>,
    tls_handshakes: Vec<TlsHandshake>,
    conn: Option<(Conn, SocketAddr, i64)>,
    failure: Option<Failure>,
}

/// Everything observed, in the order it happened.
#[derive(Default)]
struct Observed {
    queries: Vec<Query>,
    duplicates: Vec<Query>,
    unanswered: Vec<Query>,
    tcp_connect: Vec<TcpConnect>,
    tls_handshakes: Vec<TlsHandshake>,
    requests: Vec<HttpTransaction>,
}

impl Observed {
    fn add(&mut self, a: &mut Attempt) {
        self.tcp_connect.append(&mut a.tcp_connect);
        self.tls_handshakes.append(&mut a.tls_handshakes);
    }
}

/// The final response's transfer as bytes over time, from the connection's
/// `bytes_received_cumulative` events: `{transaction_id, bytes, seconds, bytes_per_second,
/// samples: [[t, bytes], …]}` (t in seconds since the measurement started). The bytes are TLS
/// records as read from the socket, so they include TLS overhead. `None` without a response.
fn final_transfer(trace: &Trace, last: Option<&HttpTransaction>) -> Option<Value> {
    let last = last?;
    last.response.as_ref()?;
    let id = last.transaction_id?;
    let t0 = last.t0.as_ref()?.as_f64()?;
    let samples: Vec<(f64, i64)> = trace
        .events()
        .iter()
        .filter(|e| e.transaction_id == Some(id) && e.operation.as_deref() == Some("bytes_received_cumulative"))
        .filter_map(|e| Some((e.t.as_ref()?.as_f64()?, e.num_bytes?)))
        .collect();
    let (t_end, bytes) = *samples.last()?;
    let seconds = (t_end - t0).max(1e-6);
    Some(json!({
        "transaction_id": id,
        "bytes": bytes,
        "seconds": (seconds * 1e6).round() / 1e6,
        "bytes_per_second": (bytes as f64 / seconds).round(),
        "samples": samples.iter().map(|(t, b)| json!([t, b])).collect::<Vec<_>>(),
    }))
}

/// Whether a handshake failure is worth the decoy: the network, not the certificate, stopped it.
fn decoy_worthwhile(f: &Failure) -> bool {
    !matches!(f.kind(), FailureKind::CertHostname | FailureKind::CertInvalid)
}

impl Probe {
    /// A probe with `config`, judging with `analyzer`.
    pub fn new(config: ProbeConfig, analyzer: Arc<Analyzer>) -> Probe {
        Probe {
            config: Arc::new(config),
            analyzer,
            test_start_time: ooni_time(SystemTime::now()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    /// Measures one URL and judges it.
    pub async fn measure(&self, input: &str) -> Result<Outcome, InputError> {
        let url = parse_input(input)?;
        let started = SystemTime::now();
        let trace = Trace::new();
        let mut obs = Observed::default();
        let host = url.host_str().unwrap_or("").to_owned();
        let port = url.port_or_known_default().unwrap_or(80);

        let lookup = dns::resolve(&trace, &self.config.dns, &host, &depth_tags(0)).await;
        obs.queries.extend(lookup.queries.iter().cloned());
        obs.duplicates.extend(lookup.duplicates.iter().cloned());
        obs.unanswered.extend(lookup.unanswered.iter().cloned());
        let dns_failure = lookup.failure.clone();
        let addrs: Vec<SocketAddr> = lookup
            .addrs
            .iter()
            .take(self.config.max_addresses)
            .map(|ip| SocketAddr::new(*ip, port))
            .collect();

        let mut th_request = th::request_for(url.as_str(), addrs.iter().map(|a| endpoint(*a)).collect());
        th_request.x_quic_enabled = self.config.quic != QuicMode::Off && url.scheme() == "https";
        let depth0_ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        let control = async {
            match &self.config.control {
                Some(c) => Some(c.measure(&th_request).await),
                None => None,
            }
        };
        let fetch = self.fetch_chain(&trace, &url, addrs, dns_failure.clone(), &mut obs);
        let (control, http_failure) = tokio::join!(control, fetch);
        let quic_handshakes = match self.h3_port(&url, &obs, control.as_ref().and_then(|c| c.as_ref().ok())) {
            Some(h3) => {
                let tries = depth0_ips
                    .iter()
                    .map(|ip| self.quic_handshake(&trace, SocketAddr::new(*ip, h3), &host, depth_tags(0)));
                join_all(tries).await
            }
            None => Vec::new(),
        };

        let throttling = match (&http_failure, self.large_resource_for(&url)) {
            (None, Some(resource)) => Some(self.throughput_test(&url, resource, &depth0_ips).await),
            _ => None,
        };
        let throughput = final_transfer(&trace, obs.requests.last());
        let runtime = trace.start().elapsed();
        let mut keys = WebConnectivityTestKeys {
            agent: Some("redirect".into()),
            queries: Some(obs.queries),
            dns_experiment_failure: dns_failure,
            tcp_connect: Some(obs.tcp_connect),
            tls_handshakes: Some(obs.tls_handshakes),
            requests: Some(obs.requests.into_iter().rev().collect()),
            network_events: Some(trace.events()),
            http_experiment_failure: http_failure,
            x_dns_duplicate_responses: Some(obs.duplicates),
            // LTE's key for extra Do53 lookups; the verdict does not read it.
            x_do53: (!obs.unanswered.is_empty()).then(|| json!({ "queries": obs.unanswered })),
            x_control_request: self
                .config
                .control
                .as_ref()
                .map(|_| serde_json::to_value(&th_request).unwrap_or(Value::Null)),
            ..Default::default()
        };
        if let Some(t) = throughput {
            keys.extra.insert("x_throughput".into(), t);
        }
        if let Some((target, decoy, reference)) = throttling {
            keys.extra.insert("x_throughput_target".into(), json!(target));
            if let Some(d) = decoy {
                keys.extra.insert("x_throughput_decoy".into(), json!(d));
            }
            if let Some(r) = reference {
                keys.extra.insert("x_throughput_reference".into(), r);
            }
        }
        if th_request.x_quic_enabled {
            keys.extra.insert(
                "x_quic_handshakes".into(),
                serde_json::to_value(&quic_handshakes).unwrap_or(Value::Null),
            );
        }
        if let (Some(r), false) = (
            &self.config.throughput_reference,
            keys.extra.contains_key("x_throughput_reference"),
        ) {
            keys.extra.insert(
                "x_throughput_reference".into(),
                serde_json::to_value(r).unwrap_or(Value::Null),
            );
        }
        for legacy in ["retries", "socksproxy", "client_resolver"] {
            keys.extra.insert(legacy.into(), Value::Null);
        }
        match control {
            None => {
                keys.control_failure = None;
                keys.extra.insert("control".into(), Value::Null);
                keys.extra.insert("control_failure".into(), Value::Null);
            }
            Some(Ok(response)) => {
                keys.control = Some(response);
                keys.extra.insert("control_failure".into(), Value::Null);
            }
            Some(Err(f)) => {
                keys.control_failure = Some(f);
                keys.control = Some(ControlResponse::default());
            }
        }
        let mut measurement = self.envelope(input, started, runtime);
        let measurement = match self.finish(&mut measurement, &mut keys) {
            Ok(v) => (measurement, v),
            Err(reason) => {
                let verdict = Verdict::inconclusive(reason);
                (measurement, verdict)
            }
        };
        Ok(Outcome {
            input: input.to_owned(),
            measurement: measurement.0,
            verdict: measurement.1,
        })
    }

    /// Judges, fills OONI's opinion keys from the verdict and its comparison keys
    /// (`dns_consistency`, `body_length_match`, …) from `censorwatch-verdict`, scrubs the probe's
    /// address.
    fn finish(&self, m: &mut Measurement, keys: &mut WebConnectivityTestKeys) -> Result<Verdict, String> {
        m.set_test_keys(&*keys)
            .map_err(|e| format!("cannot serialize the test keys: {e}"))?;
        let verdict = self
            .analyzer
            .verdict(m)
            .map_err(|e| format!("the verdict engine could not read the measurement: {e}"))?;
        // OONI's comparison keys, as ooniprobe writes them (null where not computed).
        if let Ok(Some(c)) = self.analyzer.ooni_comparison(m) {
            keys.dns_consistency = c.dns_consistency.map(str::to_owned);
            keys.body_length_match = c.body_length_match;
            keys.body_proportion = serde_json::Number::from_f64(c.body_proportion);
            keys.status_code_match = c.status_code_match;
            keys.headers_match = c.headers_match;
            keys.title_match = c.title_match;
            for (key, missing) in [
                ("dns_consistency", c.dns_consistency.is_none()),
                ("body_length_match", c.body_length_match.is_none()),
                ("status_code_match", c.status_code_match.is_none()),
                ("headers_match", c.headers_match.is_none()),
                ("title_match", c.title_match.is_none()),
            ] {
                if missing {
                    keys.extra.insert(key.into(), Value::Null);
                }
            }
        }
        match verdict.ooni_blocking {
            Some(b) => keys.blocking = Some(b),
            None => {
                keys.extra.insert("blocking".into(), Value::Null);
            }
        }
        match verdict.accessible {
            Some(a) => keys.accessible = Some(a),
            None => {
                keys.extra.insert("accessible".into(), Value::Null);
            }
        }
        m.set_test_keys(&*keys)
            .map_err(|e| format!("cannot serialize the test keys: {e}"))?;
        if let Some(ip) = self.config.network.public_ip.as_deref() {
            let text = serde_json::to_string(&*m).map_err(|e| e.to_string())?;
            let scrubbed = scrub_ip(&text, ip);
            if scrubbed != text {
                *m = Measurement::from_slice(scrubbed.as_bytes()).map_err(|e| e.to_string())?;
                // OONI's placeholder stays even when the probe's address is that very placeholder.
                m.probe_ip = Some("127.0.0.1".into());
            }
        }
        Ok(verdict)
    }

    fn envelope(&self, input: &str, started: SystemTime, runtime: Duration) -> Measurement {
        let net = &self.config.network;
        let mut annotations = Map::new();
        annotations.insert("architecture".into(), json!(std::env::consts::ARCH));
        annotations.insert("engine_name".into(), json!(SOFTWARE_NAME));
        annotations.insert("engine_version".into(), json!(env!("CARGO_PKG_VERSION")));
        annotations.insert("platform".into(), json!(std::env::consts::OS));
        let mut extensions = Map::new();
        for (k, v) in [
            ("dnst", 0),
            ("httpt", 0),
            ("netevents", 0),
            ("tcpconnect", 0),
            ("tlshandshake", 0),
        ] {
            extensions.insert(k.into(), json!(v));
        }
        Measurement {
            annotations: Some(annotations),
            data_format_version: Some(censorwatch_model::measurement::DATA_FORMAT_VERSION.into()),
            extensions: Some(extensions),
            id: Some(uuid4()),
            input: Some(censorwatch_model::Input::One(input.trim().to_owned())),
            measurement_start_time: Some(ooni_time(started)),
            probe_asn: Some(net.asn.clone()),
            probe_cc: Some(net.cc.clone()),
            probe_ip: Some("127.0.0.1".into()),
            probe_network_name: Some(net.network_name.clone()),
            report_id: Some(String::new()),
            resolver_asn: Some("AS0".into()),
            resolver_ip: Some("127.0.0.2".into()),
            resolver_network_name: Some(String::new()),
            software_name: Some(SOFTWARE_NAME.into()),
            software_version: Some(env!("CARGO_PKG_VERSION").into()),
            test_helpers: Some(match &self.config.control {
                Some(c) => json!({"backend": {"address": c.url().as_str(), "type": c.url().scheme()}}),
                None => json!({}),
            }),
            test_name: Some("web_connectivity".into()),
            test_runtime: serde_json::Number::from_f64((runtime.as_micros() as f64) / 1e6),
            test_start_time: Some(self.test_start_time.clone()),
            test_version: Some(TEST_VERSION.into()),
            ..Default::default()
        }
    }

    /// Tries the addresses, fetches, follows redirects. Returns the HTTP experiment's failure.
    async fn fetch_chain(
        &self,
        trace: &Trace,
        url: &Url,
        addrs: Vec<SocketAddr>,
        dns_failure: Option<Failure>,
        obs: &mut Observed,
    ) -> Option<Failure> {
        if addrs.is_empty() {
            return dns_failure.or(Some(Failure::DnsNoAnswer));
        }
        // Depth 0: every address, concurrently (each is evidence); the GET uses the first that works.
        let attempts = join_all(addrs.iter().map(|a| self.attempt(trace, *a, url, 0, true))).await;
        let mut conn = None;
        let mut first_failure = None;
        for mut a in attempts {
            obs.add(&mut a);
            if conn.is_none() {
                conn = a.conn.take();
            }
            if first_failure.is_none() {
                first_failure = a.failure.take();
            }
        }
        let mut url = url.clone();
        let mut depth = 0;
        loop {
            let Some((conn_now, addr, tx)) = conn.take() else {
                return first_failure.or(Some(Failure::GenericTimeoutError));
            };
            let spec = FetchSpec {
                url: &url,
                address: endpoint(addr),
                alpn: String::new(),
                timeout: self.config.http_timeout,
                max_body: self.config.max_body,
                transaction_id: tx,
                tags: depth_tags(depth),
            };
            let fetched = match conn_now {
                Conn::Plain(s) => http::get(trace, s, &spec).await,
                Conn::Tls(s, alpn) => http::get(trace, *s, &FetchSpec { alpn, ..spec.clone() }).await,
            };
            let failure = fetched.failure().cloned();
            let status = fetched.status;
            let location = fetched.location.clone();
            obs.requests.push(fetched.record);
            if let Some(f) = failure {
                return Some(f);
            }
            let is_redirect = matches!(status, Some(301 | 302 | 303 | 307 | 308));
            // A final response: the chain succeeded (no HTTP failure).
            let location = match location {
                Some(l) if is_redirect => l,
                _ => return None,
            };
            let fail_last = |obs: &mut Observed, f: Failure| {
                if let Some(r) = obs.requests.last_mut() {
                    r.failure = Some(f.clone());
                }
                Some(f)
            };
            if depth >= MAX_REDIRECTS {
                return fail_last(
                    obs,
                    Failure::Unknown("unknown_failure: stopped after too many redirects".into()),
                );
            }
            let next = match http::redirect_target(&url, &location) {
                Ok(next) => next,
                Err(f) => return fail_last(obs, f),
            };
            depth += 1;
            let host = next.host_str().unwrap_or("").to_owned();
            let port = next.port_or_known_default().unwrap_or(80);
            let lookup = dns::resolve(trace, &self.config.dns, &host, &depth_tags(depth)).await;
            obs.queries.extend(lookup.queries);
            obs.duplicates.extend(lookup.duplicates);
            obs.unanswered.extend(lookup.unanswered);
            if let Some(f) = lookup.failure {
                return Some(f);
            }
            // Later hops: addresses in order until one works.
            first_failure = None;
            for ip in lookup.addrs.iter().take(self.config.max_addresses) {
                let mut a = self
                    .attempt(trace, SocketAddr::new(*ip, port), &next, depth, true)
                    .await;
                obs.add(&mut a);
                if let Some(c) = a.conn.take() {
                    conn = Some(c);
                    break;
                }
                first_failure.get_or_insert_with(|| a.failure.clone().unwrap_or(Failure::GenericTimeoutError));
            }
            url = next;
        }
    }

    async fn connect(&self, trace: &Trace, addr: SocketAddr, tags: &[String]) -> (TcpConnect, i64, Option<TcpStream>) {
        let tx = trace.next_id();
        let t0 = Instant::now();
        let refused = self.config.refuse_bogons && censorwatch_verdict::bogon::is_bogon(addr.ip());
        let result = tokio::time::timeout(self.config.connect_timeout, async {
            if refused {
                return Err(std::io::Error::other("bogon"));
            }
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(local) = self.config.local_ip.filter(|l| l.is_ipv4() == addr.is_ipv4()) {
                socket.bind(SocketAddr::new(local, 0))?;
            }
            socket.connect(addr).await
        })
        .await;
        let (stream, failure) = match result {
            _ if refused => (None, Some(Failure::DnsBogonError)),
            Err(_) => (None, Some(Failure::GenericTimeoutError)),
            Ok(Err(e)) => (None, Some(classify_io(&e))),
            Ok(Ok(s)) => (Some(s), None),
        };
        trace.event("connect", &endpoint(addr), "tcp", t0, None, failure.clone(), tx, tags);
        let record = TcpConnect {
            ip: Some(addr.ip().to_string()),
            port: Some(i64::from(addr.port())),
            status: Some(TcpStatus {
                success: Some(failure.is_none()),
                failure,
                ..Default::default()
            }),
            t0: Some(trace.t(t0)),
            t: Some(trace.now()),
            tags: Some(tags.to_vec()),
            transaction_id: Some(tx),
            ..Default::default()
        };
        (record, tx, stream)
    }

    /// The UDP port where the target speaks HTTP/3, if QUIC is to be tried: the URL's port in
    /// [`QuicMode::Always`]; otherwise the `h3` alternative the probe's final response (on the same
    /// host) or the control announced.
    fn h3_port(&self, url: &Url, obs: &Observed, control: Option<&ControlResponse>) -> Option<u16> {
        if url.scheme() != "https" {
            return None;
        }
        let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
        match self.config.quic {
            QuicMode::Off => None,
            QuicMode::Always => url.port_or_known_default(),
            QuicMode::AltSvc => {
                let own = obs.requests.last().and_then(|r| {
                    let same_host = r
                        .request
                        .as_ref()
                        .and_then(|q| q.url.as_deref())
                        .and_then(|u| Url::parse(u).ok())
                        .is_some_and(|u| u.host_str() == url.host_str());
                    let alt_svc = r.response.as_ref()?.header("alt-svc")?.text();
                    same_host.then(|| quic::h3_port_from_alt_svc(&alt_svc, host)).flatten()
                });
                let control = control.and_then(|c| c.http_request.as_ref()).and_then(|h| {
                    let discovered = h
                        .discovered_h3_endpoint
                        .as_deref()
                        .and_then(|e| quic::h3_port_from_endpoint(e, host));
                    let header = h
                        .headers
                        .as_ref()
                        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("alt-svc")))
                        .and_then(|(_, v)| quic::h3_port_from_alt_svc(&v.text(), host));
                    discovered.or(header)
                });
                own.or(control)
            }
        }
    }

    async fn quic_handshake(
        &self,
        trace: &Trace,
        addr: SocketAddr,
        host: &str,
        tags: Vec<String>,
    ) -> censorwatch_model::web_connectivity::TlsHandshake {
        let sni = host.trim_start_matches('[').trim_end_matches(']');
        let spec = QuicSpec {
            address: addr,
            sni,
            local_ip: self.config.local_ip,
            timeout: self.config.tls_timeout,
            transaction_id: trace.next_id(),
            tags,
        };
        if self.config.refuse_bogons && censorwatch_verdict::bogon::is_bogon(addr.ip()) {
            let mut record = quic::handshake_refused(trace, &spec);
            record.failure = Some(Failure::DnsBogonError);
            return record;
        }
        quic::handshake(trace, &self.config.tls, &spec).await
    }

    /// The large resource to time for `url`'s origin (host and port), if one is configured.
    fn large_resource_for(&self, url: &Url) -> Option<&Url> {
        let host = url.host_str()?;
        self.config.large_resources.iter().find(|r| {
            r.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
                && r.port_or_known_default() == url.port_or_known_default()
        })
    }

    /// The throughput test: the target's large resource over its own addresses, then (one after
    /// the other, so they do not share the link) the decoy's, then the control's `/throughput`.
    async fn throughput_test(
        &self,
        url: &Url,
        resource: &Url,
        depth0_ips: &[IpAddr],
    ) -> (Transfer, Option<Transfer>, Option<Value>) {
        let same_host = resource.host_str() == url.host_str();
        let target = self.transfer(resource, same_host.then_some(depth0_ips)).await;
        let decoy = match &self.config.decoy_url {
            Some(d) => Some(self.transfer(d, None).await),
            None => None,
        };
        let reference = match &self.config.control {
            Some(c) => Some(match c.throughput_reference(self.config.throughput_max_bytes).await {
                Ok(t) => serde_json::to_value(t).unwrap_or(Value::Null),
                Err(f) => json!({ "failure": f }),
            }),
            None => self
                .config
                .throughput_reference
                .map(|t| serde_json::to_value(t).unwrap_or(Value::Null)),
        };
        (target, decoy, reference)
    }

    /// One timed transfer of `url` (see [`crate::throughput`]) over `addrs` when given (the
    /// target's own answers), else over a fresh lookup; the first address that connects is used.
    pub async fn transfer(&self, url: &Url, addrs: Option<&[IpAddr]>) -> Transfer {
        let trace = Trace::new();
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(80);
        let ips = match addrs {
            Some(a) if !a.is_empty() => a.to_vec(),
            _ => {
                let lookup = dns::resolve(&trace, &self.config.dns, host, &[]).await;
                if lookup.addrs.is_empty() {
                    let f = lookup.failure.unwrap_or(Failure::DnsNoAnswer);
                    return Transfer::failed(url, String::new(), f);
                }
                lookup.addrs
            }
        };
        let limits = throughput::Limits {
            max_bytes: self.config.throughput_max_bytes,
            max_duration: self.config.throughput_max_duration,
            head_timeout: self.config.http_timeout,
        };
        let mut last_failure = None;
        for ip in ips.iter().take(self.config.max_addresses) {
            let mut a = self.attempt(&trace, SocketAddr::new(*ip, port), url, 0, false).await;
            if let Some((conn, addr, _)) = a.conn.take() {
                return match conn {
                    Conn::Plain(s) => throughput::get(s, url, endpoint(addr), limits).await,
                    Conn::Tls(s, _) => throughput::get(*s, url, endpoint(addr), limits).await,
                };
            }
            last_failure = a.failure;
        }
        Transfer::failed(url, String::new(), last_failure.unwrap_or(Failure::GenericTimeoutError))
    }

    /// A verified QUIC handshake (ALPN h3) with `addr` for the URL's host: `None` when it
    /// succeeded, else why not. Used by the control for each endpoint it checks.
    pub async fn check_quic(&self, addr: SocketAddr, url: &Url) -> Option<Failure> {
        let trace = Trace::new();
        let record = self
            .quic_handshake(&trace, addr, url.host_str().unwrap_or(""), Vec::new())
            .await;
        record.failure
    }

    /// Connects to `addr` and, for an `https://` URL, completes a verified handshake for its host:
    /// the connect's failure, and the handshake's (`None` when no handshake was tried). Used by the
    /// control for each endpoint it checks.
    pub async fn check_endpoint(&self, addr: SocketAddr, url: &Url) -> (Option<Failure>, Option<Option<Failure>>) {
        let trace = Trace::new();
        let a = self.attempt(&trace, addr, url, 0, false).await;
        let tcp = a
            .tcp_connect
            .first()
            .and_then(|c| c.status.as_ref())
            .and_then(|s| s.failure.clone());
        let tls = a.tls_handshakes.first().map(|h| h.failure.clone());
        (tcp, tls)
    }

    /// Connect, handshake (https), and the SNI A/B decoy when the handshake fails.
    async fn attempt(&self, trace: &Trace, addr: SocketAddr, url: &Url, depth: usize, sni_ab: bool) -> Attempt {
        let tags = depth_tags(depth);
        let (record, tx, stream) = self.connect(trace, addr, &tags).await;
        let mut out = Attempt {
            failure: record.status.as_ref().and_then(|s| s.failure.clone()),
            tcp_connect: vec![record],
            tls_handshakes: Vec::new(),
            conn: None,
        };
        let Some(stream) = stream else { return out };
        let traced = Traced::new(stream, trace.clone(), endpoint(addr), tx, tags.clone());
        if url.scheme() != "https" {
            out.conn = Some((Conn::Plain(traced), addr, tx));
            return out;
        }
        let sni = url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let spec = HandshakeSpec {
            address: addr,
            sni,
            verify: true,
            timeout: self.config.tls_timeout,
            transaction_id: tx,
            tags: tags.clone(),
        };
        let (hs, tls_stream) = tls::handshake(trace, &self.config.tls, traced, &spec).await;
        let hs_failure = hs.failure.clone();
        out.tls_handshakes.push(hs);
        match tls_stream {
            Some(s) => {
                let alpn = s
                    .get_ref()
                    .1
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                out.conn = Some((Conn::Tls(Box::new(s), alpn.unwrap_or_default()), addr, tx));
            }
            None => {
                let failure = hs_failure.unwrap_or(Failure::SslFailedHandshake);
                if sni_ab && decoy_worthwhile(&failure) && !sni.eq_ignore_ascii_case(&self.config.decoy_sni) {
                    self.decoy(trace, addr, depth, &mut out).await;
                }
                out.failure = Some(failure);
            }
        }
        out
    }

    async fn decoy(&self, trace: &Trace, addr: SocketAddr, depth: usize, out: &mut Attempt) {
        let mut tags = depth_tags(depth);
        tags.push("sni_decoy".into());
        let (record, tx, stream) = self.connect(trace, addr, &tags).await;
        out.tcp_connect.push(record);
        let Some(stream) = stream else { return };
        let traced = Traced::new(stream, trace.clone(), endpoint(addr), tx, tags.clone());
        let spec = HandshakeSpec {
            address: addr,
            sni: &self.config.decoy_sni,
            verify: false,
            timeout: self.config.tls_timeout,
            transaction_id: tx,
            tags,
        };
        let (hs, _) = tls::handshake(trace, &self.config.tls, traced, &spec).await;
        out.tls_handshakes.push(hs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs() {
        assert!(parse_input("https://x.com/").is_ok());
        assert!(parse_input("  http://t.co/abc  ").is_ok());
        let e = parse_input("x.com").unwrap_err().to_string();
        assert!(e.contains("not a URL") && e.contains("https://x.com/"), "{e}");
        assert!(matches!(parse_input("ftp://x.com/"), Err(InputError::Scheme { .. })));
        assert!(parse_input("https://").is_err());
    }

    #[test]
    fn times_and_ids() {
        assert_eq!(
            ooni_time(UNIX_EPOCH + Duration::from_secs(1_707_350_400)),
            "2024-02-08 00:00:00"
        );
        let id = uuid4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(uuid4(), id);
    }

    #[test]
    fn scrubbing_is_boundary_aware() {
        assert_eq!(
            scrub_ip(r#"{"a":"1.2.3.4","b":"11.2.3.45"}"#, "1.2.3.4"),
            r#"{"a":"[scrubbed]","b":"11.2.3.45"}"#
        );
        assert_eq!(scrub_ip("x 1.2.3.4:80", "1.2.3.4"), "x [scrubbed]:80");
        assert_eq!(
            scrub_ip("[2001:db8::1]:80 2001:db8::10", "2001:db8::1"),
            "[[scrubbed]]:80 2001:db8::10"
        );
        assert_eq!(scrub_ip("from 1.2.3.4 ok", "1.2.3.4"), "from [scrubbed] ok");
        assert_eq!(scrub_ip("abc", ""), "abc");
    }

    #[test]
    fn decoy_only_for_network_failures() {
        assert!(decoy_worthwhile(&Failure::ConnectionReset));
        assert!(decoy_worthwhile(&Failure::EofError));
        assert!(decoy_worthwhile(&Failure::GenericTimeoutError));
        assert!(!decoy_worthwhile(&Failure::SslInvalidHostname));
        assert!(!decoy_worthwhile(&Failure::SslUnknownAuthority));
    }
}
