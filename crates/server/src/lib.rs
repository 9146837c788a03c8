//! censorwatch's server: the OONI-compatible collector (so unmodified OONI probes can submit to
//! it), censorwatch's native batch submission, and the query API over a [`Store`].
//!
//! It contains no analysis logic: verdicts come from `censorwatch-verdict`, storage from
//! `censorwatch-store`. What it adds is the HTTP surface and the rules for accepting data:
//! validation, scrubbing of the probe's IP ([`prepare`]), server-side measurement uids ([`ids`]),
//! limits (body size, JSON depth, per-client rate), and acknowledgement only after the data is
//! durable, reached at speed by group commit ([`committer`]).
//!
//! Shaped like mini-redis: [`app`] builds the [`Router`] (tests drive it without a socket), and
//! [`serve`] runs it on a listener until a shutdown future resolves, then drains.
//!
//! # Endpoints
//! | endpoint | what |
//! |---|---|
//! | `POST /report` | open a report (OONI legacy collector) → `{backend_version, report_id, supported_formats}` |
//! | `POST /report/{id}` | submit `{format:"json", content:{…}}` to it → `{measurement_uid}` |
//! | `POST /report/{id}/close` | → `{"status":"success"}` |
//! | `POST /api/v1/submit_measurement` | `{format:"json", content:"<JSON text>"}` → `{measurement_uid, report_id, …}` |
//! | `POST /api/v1/measurements` | native JSONL batch → per-line `{line, measurement_uid}` / `{line, error}` and counts |
//! | `GET /api/v1/measurements` | query (`cc asn domain since until status method test_name limit cursor format`) |
//! | `GET /api/v1/measurements/{id}` | `{id, measurement, verdict}` |
//! | `GET /health` | `{"status":"ok"}` |
//!
//! Every error is `{"error": "…"}` with a 4xx (the client's mistake) or 5xx (ours; 503 means
//! nothing was stored and resending is safe).

pub mod committer;
pub mod config;
pub mod error;
pub mod ids;
pub mod prepare;
pub mod ratelimit;
mod routes;

pub use committer::CommitStats;
pub use config::{RateLimit, ServerConfig};
pub use error::ApiError;

use axum::Router;
use censorwatch_store::Store;
use censorwatch_verdict::Analyzer;
use committer::Committer;
use ratelimit::RateLimiter;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything the handlers share: the store, the verdict engine, the group-commit writer, the
/// rate limiter and the configuration. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    analyzer: Analyzer,
    committer: Committer,
    limiter: Option<RateLimiter>,
    config: ServerConfig,
    stats: Arc<CommitStats>,
}

impl AppState {
    /// The state for `store` with `config`, judging with the built-in fingerprints. Starts the
    /// group-commit writer, so it must be called inside a tokio runtime.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> AppState {
        AppState::with_analyzer(store, config, Analyzer::with_builtin_fingerprints())
    }

    /// As [`AppState::new`], with a given verdict engine.
    pub fn with_analyzer(store: Arc<dyn Store>, config: ServerConfig, analyzer: Analyzer) -> AppState {
        let stats = Arc::new(CommitStats::default());
        let committer = Committer::spawn(Arc::clone(&store), &config, Arc::clone(&stats));
        AppState {
            inner: Arc::new(Inner {
                store,
                analyzer,
                committer,
                limiter: config.rate_limit.map(RateLimiter::new),
                config,
                stats,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Group-commit figures (commits, records).
    pub fn commit_stats(&self) -> &CommitStats {
        &self.inner.stats
    }

    /// Commits what is queued, then stops the writer. Submissions after this get 503.
    pub async fn close(&self) {
        self.inner.committer.close().await;
    }
}

/// The HTTP application: every endpoint, the rate limit and the JSON error answers.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Serves [`app`] on `listener` until `shutdown` resolves; then stops accepting, lets the
/// requests in flight finish (each answered only once durable), commits what is queued and
/// returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let state = AppState::new(store, config);
    let listener = listener.tap_io(|tcp| {
        // Small JSON answers: don't let Nagle hold them back.
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(
        listener,
        app(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    state.close().await;
    result
}
