//! The control's HTTP API (axum):
//!
//! | route | what |
//! |---|---|
//! | `POST /` | OONI test-helper request → `THResponse` (400 on a bad request, 429 over the rate limit, 503 when saturated) |
//! | `GET /` | a short text saying what this is (OONI's helper answers GET with a canned reply too) |
//! | `GET /whoami` | the caller's address, ASN, country and network name |
//! | `GET /throughput?bytes=N` | N bytes (default 4 MiB, at most 16 MiB) of incompressible data: a reference transfer for throttling judgements |
//!
//! Bounded: request bodies (64 KiB — a real request is under 1 KiB), endpoints per request (see
//! [`Helper`]), requests in flight, and requests per client address per second.

use crate::helper::Helper;
use crate::ipdb::RangeTable;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use censorwatch_probe::{ThRequest, WhoAmI};
use censorwatch_ratelimit::{RateLimit, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// Largest request body accepted.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;

/// What the server holds.
#[derive(Debug)]
pub struct ControlState {
    helper: Helper,
    countries: RangeTable<String>,
    limiter: RateLimiter,
    in_flight: Semaphore,
}

impl ControlState {
    /// State for a server: the helper, a country table (may be empty), a per-client rate limit
    /// and the number of measurements allowed in flight.
    pub fn new(helper: Helper, countries: RangeTable<String>, rate: RateLimit, max_in_flight: usize) -> ControlState {
        ControlState {
            helper,
            countries,
            limiter: RateLimiter::new(rate),
            in_flight: Semaphore::new(max_in_flight.max(1)),
        }
    }

    /// The caller's network as this control sees it.
    pub fn whoami(&self, ip: IpAddr) -> WhoAmI {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let net = self.helper.networks().get(ip);
        WhoAmI {
            ip: ip.to_string(),
            probe_asn: format!("AS{}", net.map_or(0, |n| n.asn)),
            probe_cc: self.countries.get(ip).cloned().unwrap_or_else(|| "ZZ".into()),
            probe_network_name: net.map(|n| n.org.clone()).unwrap_or_default(),
        }
    }
}

/// The router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(state: Arc<ControlState>) -> Router {
    Router::new()
        .route("/", get(index).post(measure))
        .route("/whoami", get(whoami))
        .route("/throughput", get(throughput))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(state)
}

fn error(status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => {
            let mut r = body.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the reply: {e}"),
        ),
    }
}

fn rate_limited(state: &ControlState, ip: IpAddr) -> Option<Response> {
    state.limiter.check(ip, Instant::now()).err().map(|wait| {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many requests from {ip}; retry in {} ms", wait.as_millis().max(1)),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    })
}

async fn index() -> &'static str {
    "censorwatch control (an OONI-compatible web connectivity test helper): POST a test-helper request to /; GET /whoami tells you your network; GET /throughput?bytes=N sends N bytes.\n"
}

async fn whoami(State(state): State<Arc<ControlState>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if let Some(r) = rate_limited(&state, peer.ip()) {
        return r;
    }
    json(&state.whoami(peer.ip()))
}

/// Default and largest `/throughput` transfer.
pub const THROUGHPUT_DEFAULT: usize = 4 << 20;
/// Largest `/throughput` transfer.
pub const THROUGHPUT_MAX: usize = 16 << 20;

const CHUNK_LEN: usize = 64 * 1024;

/// 64 KiB of xorshift output: incompressible, so a compressing middlebox cannot flatter the rate.
static CHUNK: [u8; CHUNK_LEN] = {
    let mut out = [0u8; CHUNK_LEN];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut i = 0;
    while i < CHUNK_LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (x >> 24) as u8;
        i += 1;
    }
    out
};

/// The size asked for in `bytes=N`, bounded.
pub fn throughput_size(query: Option<&str>) -> Result<usize, String> {
    let Some(value) = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("bytes="))
    else {
        return Ok(THROUGHPUT_DEFAULT);
    };
    match value.parse::<usize>() {
        Ok(n) if n <= THROUGHPUT_MAX => Ok(n),
        _ => Err(format!("bytes={value:?} must be a number from 0 to {THROUGHPUT_MAX}")),
    }
}

async fn throughput(
    State(state): State<Arc<ControlState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = rate_limited(&state, peer.ip()) {
        return r;
    }
    let n = match throughput_size(query.as_deref()) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let chunks = (0..n.div_ceil(CHUNK_LEN)).map(move |i| {
        let len = (n - i * CHUNK_LEN).min(CHUNK_LEN);
        Ok::<_, std::convert::Infallible>(Bytes::from_static(&CHUNK[..len]))
    });
    let mut r = axum::body::Body::from_stream(futures_util::stream::iter(chunks)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&n.to_string()) {
        r.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    r
}

async fn measure(
    State(state): State<Arc<ControlState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    if let Some(r) = rate_limited(&state, peer.ip()) {
        return r;
    }
    let request: ThRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not a test-helper request ({e}); send JSON like {{\"http_request\": \"https://x.com/\", \"http_request_headers\": {{}}, \"tcp_connect\": [\"104.244.42.1:443\"]}}"
                ),
            );
        }
    };
    let Ok(_permit) = state.in_flight.try_acquire() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the control is measuring as much as it allows at once; retry shortly".into(),
        );
    };
    match state.helper.measure(&request).await {
        Ok(response) => json(&response),
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_sizes_are_bounded() {
        assert_eq!(throughput_size(None), Ok(THROUGHPUT_DEFAULT));
        assert_eq!(throughput_size(Some("x=1&bytes=1000")), Ok(1000));
        assert!(throughput_size(Some("bytes=999999999999")).is_err());
        assert!(throughput_size(Some("bytes=-1")).is_err());
        // Not all one byte: a compressing middlebox gains nothing.
        assert!(CHUNK.iter().filter(|b| **b == CHUNK[0]).count() < CHUNK_LEN / 64);
    }
}
