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
//! | `GET /api/v1/measurements/{id}` | `{id, measurement, verdict}`; **410** `{error, redaction}` once removed |
//! | `GET /api/v1/log/checkpoint` | the transparency log's current head, signed (C2SP checkpoint, `text/plain`) |
//! | `GET /api/v1/log/proof/{id}` | a measurement's leaf and inclusion proof, with the signed checkpoint it leads to |
//! | `GET /api/v1/events` | blocking events (`cc domain since open limit format=csv`), latest first |
//! | `GET /api/v1/events/{id}` | one event |
//! | `GET /api/v1/events/{id}/evidence` | the event's evidence bundle (tar.gz; `censorwatch evidence verify` checks it) |
//! | `GET /api/v1/evidence` | the evidence bundle of a query (`cc domain since until`) |
//! | `GET /api/v1/aggregation` | counts by status along up to two axes (`cc domain asn since until axis bin format`) |
//! | `GET /api/v1/outages` | outages (`cc asn since until open limit format=csv`), latest first |
//! | `GET /api/openapi.json` | the OpenAPI 3 description of every endpoint |
//! | `GET /metrics` | Prometheus metrics ([`metrics`]) |
//! | `GET /api/v1/feeds/events.atom` | Atom feed of events and outages opened, changed, closed (`cc platform asn kind`) |
//! | `GET /api/v1/watches[/{id}]` | deadline watches with their per-network report |
//! | `/api/v1/admin/webhooks[/{id}]`, `/api/v1/admin/watches[/{id}]` | admin (bearer token, [`auth`]): webhooks and watches |
//! | `DELETE /api/v1/admin/measurements/{id}` | admin: remove a measurement for good, `{"reason"}` → its redaction record (idempotent) |
//! | `POST /api/v1/admin/keys/rotate` | admin: a new signing key; old and new co-sign the rotation and the transition checkpoint |
//! | `GET /api/v1/redactions` | every removed measurement `{id, leaf_index, reason, time}`, latest first (`limit cursor format=csv`) |
//! | `GET /api/v1/keys` | the keyring: every verifier key the log signed with, status and validity (for `evidence verify --keyring`) |
//! | `GET /health` | `{"status":"ok"}` |
//!
//! Every error is `{"error": "…"}` with a 4xx (the client's mistake) or 5xx (ours; 503 means
//! nothing was stored and resending is safe).
//!
//! # Removal and key rotation
//! See [`admin_routes`]: a removed measurement disappears from the store, queries, aggregation,
//! bundles and detection, keeps its leaf in the log, is listed publicly with its reason, answers
//! 410, and is refused (410) when submitted again. A key rotation keeps every earlier checkpoint
//! and bundle verifiable with the old key, which stays in the published keyring.
//!
//! # Transparency log
//! With [`ServerConfig::data_dir`], [`serve`] opens that directory's log (`censorwatch-evidence`),
//! reconciles it with the store before it listens (a kill -9 may have left either behind), appends
//! every commit's newly stored measurements ([`committer`]), and every
//! [`ServerConfig::checkpoint_interval`] (and on shutdown) reconciles again and writes a signed
//! checkpoint to `DATA/checkpoints/`.

mod admin_routes;
pub mod alerts;
mod api_routes;
pub mod auth;
pub mod committer;
pub mod config;
pub mod detections;
pub mod error;
mod event_routes;
mod evidence_routes;
pub mod ids;
pub mod metrics;
pub mod openapi;
pub mod prepare;
mod routes;
mod web;

pub use committer::CommitStats;
pub use config::{RateLimit, ServerConfig};
pub use error::ApiError;

use axum::Router;
use censorwatch_evidence::Ledger;
use censorwatch_ratelimit::RateLimiter;
use censorwatch_store::Store;
use censorwatch_verdict::Analyzer;
use committer::Committer;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

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
    ledger: Option<Arc<Mutex<Ledger>>>,
    detections: Mutex<Option<detections::DetectionWorker>>,
    http_metrics: metrics::HttpMetrics,
    alerts: Arc<alerts::Alerts>,
    alert_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The measurements removed by an admin, refused when submitted again.
    redacted: admin_routes::RedactedIds,
}

impl AppState {
    /// The state for `store` with `config`, judging with the built-in fingerprints. Starts the
    /// group-commit writer, so it must be called inside a tokio runtime.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> AppState {
        AppState::with_analyzer(store, config, Analyzer::with_builtin_fingerprints())
    }

    /// As [`AppState::new`], with a given verdict engine.
    pub fn with_analyzer(store: Arc<dyn Store>, config: ServerConfig, analyzer: Analyzer) -> AppState {
        AppState::with_ledger(store, config, analyzer, None)
    }

    /// As [`AppState::with_analyzer`], appending what is stored to `ledger`'s transparency log
    /// (opened and reconciled with `store` by the caller).
    pub fn with_ledger(
        store: Arc<dyn Store>,
        config: ServerConfig,
        analyzer: Analyzer,
        ledger: Option<Ledger>,
    ) -> AppState {
        let ledger = ledger.map(|l| Arc::new(Mutex::new(l)));
        let stats = Arc::new(CommitStats::default());
        let redacted = admin_routes::RedactedIds::load(store.as_ref());
        let worker = config.detection_interval.map(|interval| {
            detections::DetectionWorker::start(Arc::clone(&store), censorwatch_detect::Config::default(), interval)
        });
        let committer = Committer::spawn(
            Arc::clone(&store),
            &config,
            Arc::clone(&stats),
            ledger.clone(),
            worker.as_ref().map(detections::DetectionWorker::feed),
        );
        let alerts = Arc::new(
            alerts::Alerts::open(config.data_dir.as_deref(), &config.webhooks, config.webhook_retry_base)
                .unwrap_or_else(|e| {
                    eprintln!(
                        "censorwatch: cannot read the alert state under the data directory ({e}); webhooks and \
                         watches are kept in memory until it is fixed"
                    );
                    alerts::Alerts::open(None, &config.webhooks, config.webhook_retry_base)
                        .expect("memory-only alert state")
                }),
        );
        let alert_task = tokio::spawn(alerts::run(
            Arc::clone(&alerts),
            Arc::clone(&store),
            config.alert_interval,
            config.webhook_retry_base.min(std::time::Duration::from_secs(1)),
        ));
        AppState {
            inner: Arc::new(Inner {
                store,
                analyzer,
                committer,
                limiter: config.rate_limit.map(RateLimiter::new),
                config,
                stats,
                ledger,
                detections: Mutex::new(worker),
                http_metrics: metrics::HttpMetrics::default(),
                alerts,
                alert_task: Mutex::new(Some(alert_task)),
                redacted,
            }),
        }
    }

    /// The transparency log, when the server keeps one.
    pub fn ledger(&self) -> Option<&Arc<Mutex<Ledger>>> {
        self.inner.ledger.as_ref()
    }

    /// Reconciles the log with the store and writes a signed checkpoint to
    /// `DATA/checkpoints/` (on a blocking thread). Does nothing without a log.
    pub async fn publish_checkpoint(&self) -> Result<(), String> {
        let Some(ledger) = self.inner.ledger.clone() else {
            return Ok(());
        };
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || {
            let mut ledger = ledger.lock().unwrap_or_else(|p| p.into_inner());
            ledger.reconcile(store.as_ref()).map_err(|e| e.to_string())?;
            ledger
                .publish_checkpoint(SystemTime::now())
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
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

    /// Webhooks, watches and the delivery queue.
    pub fn alerts(&self) -> &Arc<alerts::Alerts> {
        &self.inner.alerts
    }

    /// Answered HTTP requests by route, method and status (for `/metrics`).
    pub fn http_metrics(&self) -> &metrics::HttpMetrics {
        &self.inner.http_metrics
    }

    /// Commits what is queued, then stops the writer. Submissions after this get 503. Then
    /// writes the final events and outages and stops the detection worker.
    pub async fn close(&self) {
        self.inner.committer.close().await;
        if let Some(task) = self.inner.alert_task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
        let worker = self.inner.detections.lock().ok().and_then(|mut w| w.take());
        if let Some(worker) = worker {
            let _ = tokio::task::spawn_blocking(move || worker.close()).await;
        }
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
    let ledger = match config.data_dir.clone() {
        Some(dir) => {
            let store = Arc::clone(&store);
            let (ledger, reconciled) = tokio::task::spawn_blocking(move || Ledger::open_for(&dir, store.as_ref()))
                .await
                .map_err(std::io::Error::other)?
                .map_err(|e| std::io::Error::other(format!("cannot open the transparency log: {e}")))?;
            if reconciled.appended + reconciled.found_in_log > 0 {
                eprintln!(
                    "censorwatch: transparency log reconciled with the store: {} appended, {} found already logged",
                    reconciled.appended, reconciled.found_in_log
                );
            }
            Some(ledger)
        }
        None => None,
    };
    let interval = config.checkpoint_interval.max(std::time::Duration::from_millis(10));
    let state = AppState::with_ledger(store, config, Analyzer::with_builtin_fingerprints(), ledger);
    if let Err(e) = state.publish_checkpoint().await {
        return Err(std::io::Error::other(format!("cannot write the checkpoint: {e}")));
    }
    let ticker = state.ledger().map(|_| {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                tick.tick().await;
                if let Err(e) = state.publish_checkpoint().await {
                    eprintln!("censorwatch: the periodic checkpoint failed: {e}; retrying at the next one");
                }
            }
        })
    });
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
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    state.close().await;
    if let Err(e) = state.publish_checkpoint().await {
        eprintln!("censorwatch: the final checkpoint failed: {e}");
    }
    result
}
