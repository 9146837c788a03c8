//! censorwatch's control server (an OONI-compatible web connectivity "test helper"): run on an
//! uncensored network, it measures a target the way the probe did — DNS, connects to every
//! endpoint (its own answers and the probe's), verified TLS handshakes, the page after redirects —
//! and answers in OONI's `THResponse` shape, so OONI probes can use it too. `GET /whoami` tells a
//! probe its network (ASN, country, name) from an IP → ASN table, so the probe never writes its own
//! address into a measurement.
//!
//! What it refuses to do: store anything (no request, address or result outlives its response),
//! and connect to bogon addresses (private, loopback, link-local, …) that a request or a DNS answer
//! names — unless started with `allow_private` for a lab, which it says loudly. Request bodies,
//! endpoints per request, requests in flight and requests per client are all bounded.

pub mod helper;
pub mod ipdb;
pub mod server;

pub use helper::Helper;
pub use server::{ControlState, router};

use censorwatch_probe::dns::DnsConfig;
use censorwatch_probe::{Probe, ProbeConfig, TlsSettings};
pub use censorwatch_ratelimit::RateLimit;
use censorwatch_verdict::Analyzer;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to build a control server.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// IP → ASN table (`start,end,asn,org`); without one every ASN is 0.
    pub asn_db: Option<PathBuf>,
    /// IP → country table (`start,end,cc`); without one every country is `ZZ`.
    pub country_db: Option<PathBuf>,
    /// Connect to bogon addresses too (labs and tests only).
    pub allow_private: bool,
    /// Resolve with this UDP resolver instead of the system's.
    pub resolver: Option<SocketAddr>,
    /// Extra CA certificates (PEM) to trust (labs).
    pub ca_files: Vec<PathBuf>,
    /// Source address for the control's own connections.
    pub local_ip: Option<IpAddr>,
    /// Per-client request rate.
    pub rate: RateLimit,
    /// Measurements in flight at once.
    pub max_in_flight: usize,
    /// Endpoints checked per request.
    pub max_endpoints: usize,
    /// Connect and handshake timeout.
    pub connect_timeout: Duration,
    /// HTTP timeout.
    pub http_timeout: Duration,
}

impl Default for ControlOptions {
    fn default() -> Self {
        ControlOptions {
            asn_db: None,
            country_db: None,
            allow_private: false,
            resolver: None,
            ca_files: Vec::new(),
            local_ip: None,
            rate: RateLimit {
                per_second: 20.0,
                burst: 100.0,
            },
            max_in_flight: 256,
            max_endpoints: helper::DEFAULT_MAX_ENDPOINTS,
            connect_timeout: Duration::from_secs(5),
            http_timeout: Duration::from_secs(10),
        }
    }
}

fn open_table<T>(
    path: &PathBuf,
    what: &str,
    parse: impl Fn(std::fs::File) -> Result<ipdb::RangeTable<T>, ipdb::TableError>,
) -> Result<ipdb::RangeTable<T>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open the {what} table {}: {e}", path.display()))?;
    parse(file).map_err(|e| format!("the {what} table {} is malformed: {e}", path.display()))
}

/// Builds the server state from `options` (reads the tables, sets up the engine).
pub fn build_state(options: &ControlOptions) -> Result<Arc<ControlState>, String> {
    let networks = match &options.asn_db {
        Some(p) => open_table(p, "ASN", ipdb::parse_asn_table)?,
        None => ipdb::RangeTable::default(),
    };
    let countries = match &options.country_db {
        Some(p) => open_table(p, "country", ipdb::parse_country_table)?,
        None => ipdb::RangeTable::default(),
    };
    let cas: Vec<&std::path::Path> = options.ca_files.iter().map(PathBuf::as_path).collect();
    let tls = TlsSettings::new(&cas).map_err(|e| e.to_string())?;
    let mut config = ProbeConfig::new(tls);
    config.dns = DnsConfig {
        getaddrinfo: options.resolver.is_none(),
        udp: options.resolver,
        // Injected duplicates are the probe's evidence; the control has no use for the wait.
        duplicate_window: Duration::ZERO,
        ..DnsConfig::default()
    };
    config.connect_timeout = options.connect_timeout;
    config.tls_timeout = options.connect_timeout;
    config.http_timeout = options.http_timeout;
    config.local_ip = options.local_ip;
    config.refuse_bogons = !options.allow_private;
    // QUIC is checked per endpoint by the helper when a request asks for it, not by the engine.
    config.quic = censorwatch_probe::QuicMode::Off;
    let probe = Probe::new(config, Arc::new(Analyzer::with_builtin_fingerprints()));
    let helper = Helper::new(probe, Arc::new(networks), options.allow_private, options.max_endpoints);
    Ok(Arc::new(ControlState::new(
        helper,
        countries,
        options.rate,
        options.max_in_flight,
    )))
}

/// Serves `state` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ControlState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
