//! The DPI box: a transparent TCP proxy fed by `nft … redirect`. For each connection it learns
//! the original destination (SO_ORIGINAL_DST, else the configured fallback), reads the client's
//! first flight until it holds a complete ClientHello or HTTP request headers (or the sniff
//! timeout / 16 KiB), matches the name against the rules and acts: forward, reset (RST), close
//! (FIN), blackhole, blockpage or throttle.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::original_dst::original_destination;
use crate::rules::{Action, FlowNames, FlowRule, match_flow};
use crate::sniff::{Sniffed, sniff};
use crate::stats::DpiStats;
use crate::throttle::copy_throttled;

/// The most of a first flight the proxy buffers before deciding without a name.
pub const MAX_SNIFF_BYTES: usize = 16 * 1024;
/// How long the proxy waits for the upstream connection of a forwarded flow.
pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Buffer per direction of a forwarded flow (tokio's default 8 KiB costs several times the
/// throughput on loopback; see benches/censor.rs).
const SPLICE_BUFFER: usize = 64 * 1024;
/// After a FIN or a blockpage, how long the proxy keeps draining what the client still sends
/// (closing a socket with unread data would turn the FIN into an RST).
const LINGER_AFTER_FIN: Duration = Duration::from_secs(10);

/// The DPI proxy's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpiConfig {
    /// Rules, first match wins; a flow no rule matches is forwarded.
    pub rules: Vec<FlowRule>,
    /// Where to forward when the connection was not redirected (no SO_ORIGINAL_DST): for tests on
    /// loopback, or a proxy in front of one server. `None`: such connections are closed.
    pub fallback_upstream: Option<SocketAddr>,
    /// How long to wait for a complete ClientHello / request headers before deciding without a
    /// name (a client that sends nothing first, like SSH or SMTP, waits this long).
    pub sniff_timeout: Duration,
}

impl DpiConfig {
    /// These rules, no fallback, a 5 s sniff timeout.
    pub fn new(rules: Vec<FlowRule>) -> Self {
        DpiConfig {
            rules,
            fallback_upstream: None,
            sniff_timeout: Duration::from_secs(5),
        }
    }

    /// The same configuration with this fallback upstream.
    pub fn with_fallback_upstream(mut self, upstream: SocketAddr) -> Self {
        self.fallback_upstream = Some(upstream);
        self
    }
}

impl Default for DpiConfig {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// Runs the DPI proxy on `listener` until `shutdown` completes, then ends every connection it
/// holds (they are dropped) and returns. Errors on single connections are logged, never fatal.
pub async fn serve_dpi(
    listener: TcpListener,
    config: DpiConfig,
    stats: DpiStats,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_dpi_since(listener, config, stats, Instant::now(), shutdown).await
}

/// [`serve_dpi`] with rule schedules counted from `epoch` instead of the call, so that several
/// servers (the DPI proxy and the DNS censor of one emulated ISP, say) cycle in step.
pub async fn serve_dpi_since(
    listener: TcpListener,
    config: DpiConfig,
    stats: DpiStats,
    epoch: Instant,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let started = epoch;
    let config = Arc::new(config);
    let mut flows = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let (config, stats) = (Arc::clone(&config), stats.clone());
                    flows.spawn(async move { handle_flow(client, peer, &config, &stats, started).await });
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    warn!(%error, "dpi: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
        while flows.try_join_next().is_some() {}
    }
    debug!(open_flows = flows.len(), "dpi: shutting down");
    flows.shutdown().await;
    Ok(())
}

/// The first flight as read, and whether the client already half-closed.
struct FirstFlight {
    bytes: Vec<u8>,
    sniffed: Sniffed,
    client_done: bool,
}

async fn handle_flow(mut client: TcpStream, peer: SocketAddr, config: &DpiConfig, stats: &DpiStats, started: Instant) {
    stats.count(|c| &c.flows);
    let destination = original_destination(&client).or(config.fallback_upstream);
    let flight = match read_first_flight(&mut client, config.sniff_timeout).await {
        Ok(flight) => flight,
        Err(error) => {
            debug!(%peer, %error, "dpi: client failed before its first flight");
            return;
        }
    };
    let names = match &flight.sniffed {
        Sniffed::Tls { sni } => {
            stats.count(|c| &c.flows_tls);
            FlowNames {
                sni: sni.as_deref(),
                host: None,
            }
        }
        Sniffed::Http { host } => {
            stats.count(|c| &c.flows_http);
            FlowNames {
                sni: None,
                host: host.as_deref(),
            }
        }
        Sniffed::Incomplete | Sniffed::Other => {
            stats.count(|c| &c.flows_other);
            FlowNames::default()
        }
    };
    let matched = match_flow(&config.rules, &names, started.elapsed());
    let action = matched.map_or(&Action::Forward, |(_, rule)| &rule.action);
    let is_tls = matches!(flight.sniffed, Sniffed::Tls { .. });
    // A blockpage cannot be written into a TLS flow without the site's key: reset it instead.
    let action = match action {
        Action::Blockpage { .. } if is_tls => &Action::Reset,
        other => other,
    };
    let destination_label = destination.map_or_else(|| "unknown".to_owned(), |d| d.to_string());
    info!(
        %peer, destination = %destination_label, sni = ?names.sni, host = ?names.host,
        rule = ?matched.map(|(index, _)| index), action = action.label(), "dpi: flow"
    );

    match action {
        Action::Forward | Action::Throttle { .. } => {
            let Some(destination) = destination else {
                stats.count(|c| &c.flows_no_destination);
                warn!(%peer, "dpi: no original destination (not redirected, no fallback): closing");
                return;
            };
            stats.count_action(action);
            let rate = match action {
                Action::Throttle { bits_per_second } => Some(*bits_per_second),
                _ => None,
            };
            match relay(client, destination, &flight, rate).await {
                Ok(()) => {}
                Err(RelayError::Connect(error)) => {
                    stats.count(|c| &c.upstream_failures);
                    warn!(%peer, %destination, %error, "dpi: upstream connection failed; client reset");
                }
                Err(RelayError::Transfer(error)) => {
                    debug!(%peer, %destination, %error, "dpi: relay ended with an error")
                }
            }
        }
        Action::Reset => {
            stats.count_action(action);
            reset(client);
        }
        Action::Close => {
            stats.count_action(action);
            let _ = client.shutdown().await;
            drain(&mut client, Some(LINGER_AFTER_FIN)).await;
        }
        Action::Blackhole => {
            stats.count_action(action);
            drain(&mut client, None).await;
        }
        Action::Blockpage { status, body } => {
            stats.count_action(action);
            let response = blockpage_response(*status, body);
            if client.write_all(&response).await.is_ok() {
                let _ = client.shutdown().await;
                drain(&mut client, Some(LINGER_AFTER_FIN)).await;
            }
        }
    }
}

/// Reads until the bytes sniff as something other than `Incomplete`, or the timeout, the size
/// limit or the client's EOF.
async fn read_first_flight(client: &mut TcpStream, timeout: Duration) -> std::io::Result<FirstFlight> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut bytes = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let room = MAX_SNIFF_BYTES - bytes.len();
        let read = tokio::time::timeout_at(deadline, client.read(&mut chunk[..room.min(4096)])).await;
        let n = match read {
            Err(_elapsed) => {
                return Ok(FirstFlight {
                    sniffed: sniff(&bytes),
                    bytes,
                    client_done: false,
                });
            }
            Ok(result) => result?,
        };
        if n == 0 {
            return Ok(FirstFlight {
                sniffed: sniff(&bytes),
                bytes,
                client_done: true,
            });
        }
        bytes.extend_from_slice(&chunk[..n]);
        let sniffed = sniff(&bytes);
        if sniffed != Sniffed::Incomplete || bytes.len() >= MAX_SNIFF_BYTES {
            return Ok(FirstFlight {
                sniffed,
                bytes,
                client_done: false,
            });
        }
    }
}

/// How a relay failed: reaching upstream, or later, moving bytes.
enum RelayError {
    Connect(std::io::Error),
    Transfer(std::io::Error),
}

/// Connects to `destination`, replays the first flight and splices both ways (half-closes
/// passed on), throttled to `rate` bits per second each way when given. A failed upstream
/// connection resets the client, as a refusing server would.
async fn relay(
    client: TcpStream,
    destination: SocketAddr,
    flight: &FirstFlight,
    rate: Option<u64>,
) -> Result<(), RelayError> {
    let upstream = match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(destination)).await {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(error)) => {
            reset(client);
            return Err(RelayError::Connect(error));
        }
        Err(_elapsed) => {
            reset(client);
            let error = std::io::Error::new(std::io::ErrorKind::TimedOut, "upstream connect timed out");
            return Err(RelayError::Connect(error));
        }
    };
    splice(client, upstream, flight, rate)
        .await
        .map_err(RelayError::Transfer)
}

/// Replays the first flight to `upstream`, then copies both ways until both sides have closed.
async fn splice(
    mut client: TcpStream,
    mut upstream: TcpStream,
    flight: &FirstFlight,
    rate: Option<u64>,
) -> std::io::Result<()> {
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    match rate {
        None => {
            upstream.write_all(&flight.bytes).await?;
            if flight.client_done {
                upstream.shutdown().await?;
            }
            tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, SPLICE_BUFFER, SPLICE_BUFFER).await?;
        }
        Some(bits_per_second) => {
            let (mut client_read, mut client_write) = client.into_split();
            let (mut upstream_read, mut upstream_write) = upstream.into_split();
            let upload = async {
                if flight.client_done {
                    copy_throttled(
                        &flight.bytes,
                        &mut tokio::io::empty(),
                        &mut upstream_write,
                        bits_per_second,
                    )
                    .await
                } else {
                    copy_throttled(&flight.bytes, &mut client_read, &mut upstream_write, bits_per_second).await
                }
            };
            let download = copy_throttled(&[], &mut upstream_read, &mut client_write, bits_per_second);
            tokio::try_join!(upload, download)?;
        }
    }
    Ok(())
}

/// Aborts the connection with an RST: SO_LINGER 0, then close.
fn reset(client: TcpStream) {
    if let Err(error) = client.set_zero_linger() {
        debug!(%error, "dpi: SO_LINGER 0 failed; the close may be a FIN");
    }
    drop(client);
}

/// Reads and discards until the client closes or errs, or `limit` passes.
async fn drain(client: &mut TcpStream, limit: Option<Duration>) {
    let mut sink = [0u8; 4096];
    let swallow = async {
        while let Ok(n) = client.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    match limit {
        Some(limit) => {
            let _ = tokio::time::timeout(limit, swallow).await;
        }
        None => swallow.await,
    }
}

/// The injected HTTP/1.1 response: status line, HTML content type, length, `Connection: close`.
pub fn blockpage_response(status: u16, body: &str) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason_phrase(status),
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body.as_bytes());
    response
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        403 => "Forbidden",
        404 => "Not Found",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Blocked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockpage_response_is_well_formed_http() {
        let response = blockpage_response(403, "<title>Access Denied</title>");
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut parsed = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(header_len) = parsed.parse(&response).unwrap() else {
            panic!("partial")
        };
        assert_eq!(parsed.code, Some(403));
        assert_eq!(parsed.reason, Some("Forbidden"));
        let length = parsed.headers.iter().find(|h| h.name == "Content-Length").unwrap();
        assert_eq!(std::str::from_utf8(length.value).unwrap(), "28");
        assert_eq!(&response[header_len..], b"<title>Access Denied</title>");
        assert!(blockpage_response(299, "").starts_with(b"HTTP/1.1 299 Blocked\r\n"));
    }
}
