//! The control's HTTP API (axum):
//!
//! | route | what |
//! |---|---|
//! | `POST /` | OONI test-helper request → `THResponse` (400 on a bad request, 429 over the rate limit, 503 when saturated) |
//! | `GET /` | a short text saying what this is (OONI's helper answers GET with a canned reply too) |
//! | `GET /whoami` | the caller's address, ASN, country and network name |
//!
//! Bounded: request bodies (64 KiB — a real request is under 1 KiB), endpoints per request (see
//! [`Helper`]), requests in flight, and requests per client address per second.

use crate::helper::Helper;
use crate::ipdb::RangeTable;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use censorwatch_probe::{ThRequest, WhoAmI};
use censorwatch_server::RateLimit;
use censorwatch_server::ratelimit::RateLimiter;
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
    "censorwatch control (an OONI-compatible web connectivity test helper): POST a test-helper request to /; GET /whoami tells you your network.\n"
}

async fn whoami(State(state): State<Arc<ControlState>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if let Some(r) = rate_limited(&state, peer.ip()) {
        return r;
    }
    json(&state.whoami(peer.ip()))
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
