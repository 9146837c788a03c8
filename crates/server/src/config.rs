//! [`ServerConfig`]: the server's limits and group-commit knobs, with defaults that suit one
//! machine.

use std::path::PathBuf;
use std::time::Duration;

/// The server's knobs. [`ServerConfig::default`] is what `censorwatch serve` uses.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest body of a single submission (`POST /report…`, `POST /api/v1/submit_measurement`).
    /// Default 16 MiB.
    pub max_body_bytes: usize,
    /// Largest body of a native batch (`POST /api/v1/measurements`). Default 256 MiB.
    pub max_batch_body_bytes: usize,
    /// Per-client request rate limit, keyed by the peer's IP; `None` turns it off.
    pub rate_limit: Option<RateLimit>,
    /// How long the writer waits for more submissions after the first before committing them
    /// together. Submissions that arrive while a commit is running are batched anyway.
    pub commit_window: Duration,
    /// Most records in one commit.
    pub commit_max_records: usize,
    /// Most raw bytes in one commit (a batch is closed once it holds this much).
    pub commit_max_bytes: usize,
    /// How many submissions may wait for the writer before submitters wait for room
    /// (back-pressure).
    pub queue_capacity: usize,
    /// `backend_version` answered to probes that open a report.
    pub backend_version: String,
    /// The data directory whose transparency log (`log/`, `keys/`, `checkpoints/`) records every
    /// stored measurement; `None` keeps no log (and the `/api/v1/log/…` endpoints answer 404).
    pub data_dir: Option<PathBuf>,
    /// How often the log is reconciled with the store and a signed checkpoint written to
    /// `DATA/checkpoints/` (`latest.txt` and the day's file). Default one hour.
    pub checkpoint_interval: Duration,
    /// How often, at most, the blocking events and outages are recomputed from the measurements
    /// stored since and written to the store (and once more at shutdown); `None` turns detection
    /// off. Default 5 s.
    pub detection_interval: Option<Duration>,
    /// The bearer token the admin endpoints (`/api/v1/admin/…`) require; `None` disables them
    /// (they answer 403). See [`crate::auth`].
    pub admin_token: Option<String>,
    /// Webhooks configured at start (`[[webhook]]` in the `--config` file), besides those added
    /// through the admin endpoints. See [`crate::alerts`].
    pub webhooks: Vec<crate::alerts::WebhookConfig>,
    /// How often stored events are compared with the last ones seen, to send webhooks. Default
    /// 5 s.
    pub alert_interval: Duration,
    /// The first retry delay of a failed webhook delivery (doubling after each failure, capped at
    /// an hour). Default 30 s.
    pub webhook_retry_base: Duration,
}

pub use censorwatch_ratelimit::RateLimit;

/// The collector's default rate limit: generous, 10 000 requests/s sustained and 20 000 at once
/// per IP, so that a NAT full of probes, or a load test, is not throttled, while a runaway client
/// still is.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    per_second: 10_000.0,
    burst: 20_000.0,
};

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_body_bytes: 16 << 20,
            max_batch_body_bytes: 256 << 20,
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            commit_window: Duration::from_millis(2),
            commit_max_records: 2000,
            commit_max_bytes: 64 << 20,
            queue_capacity: 8192,
            backend_version: format!("censorwatch-{}", env!("CARGO_PKG_VERSION")),
            data_dir: None,
            checkpoint_interval: Duration::from_secs(3600),
            detection_interval: Some(Duration::from_secs(5)),
            admin_token: None,
            webhooks: Vec::new(),
            alert_interval: Duration::from_secs(5),
            webhook_retry_base: Duration::from_secs(30),
        }
    }
}
