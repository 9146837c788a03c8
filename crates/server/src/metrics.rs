//! Prometheus metrics at `GET /metrics` (text exposition format 0.0.4).
//!
//! | metric | type | what |
//! |---|---|---|
//! | `censorwatch_measurements_received_total` | counter | measurements submitted (accepted for storage + rejected) |
//! | `censorwatch_measurements_stored_total` | counter | measurements newly stored (duplicates excluded) |
//! | `censorwatch_measurements_duplicate_total` | counter | measurements committed whose id was already stored |
//! | `censorwatch_measurements_rejected_total` | counter | measurements refused (invalid, or a mismatched report) |
//! | `censorwatch_commits_total` | counter | group commits (store inserts) |
//! | `censorwatch_commit_duration_seconds` | histogram | time from a commit's start to its durable end |
//! | `censorwatch_events_open` | gauge | blocking events without an end, read from the store at scrape time |
//! | `censorwatch_outages_open` | gauge | outages without an end, likewise |
//! | `censorwatch_http_requests_total{route,method,status}` | counter | answered requests, by route template (`/api/v1/events/{id}`) |
//!
//! Hand-written rather than with the `prometheus` or `metrics` crates: the exposition format is
//! a few stable lines of text, the counters are plain atomics, and it keeps the server's
//! dependency tree (and the shared lock file) unchanged. Labels carry route templates, never a
//! client's address or a raw path.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use censorwatch_store::{DetectionKind, DetectionQuery};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the commit latency buckets, in seconds (`+Inf` is implied).
pub const COMMIT_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A Prometheus histogram over [`COMMIT_BUCKETS`], lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations ≤ each bound (not cumulative; summed when written).
    buckets: [AtomicU64; COMMIT_BUCKETS.len()],
    count: AtomicU64,
    /// Sum in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let seconds = d.as_secs_f64();
        if let Some(i) = COMMIT_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, n) in COMMIT_BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// The server's HTTP counters: requests by (route template, method, status).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl HttpMetrics {
    /// Counts one answered request.
    pub fn count(&self, route: &str, method: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((route.to_owned(), method.to_owned(), status)).or_default() += 1;
    }

    /// The count for one (route, method, status).
    pub fn get(&self, route: &str, method: &str, status: u16) -> u64 {
        let map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(route.to_owned(), method.to_owned(), status))
            .copied()
            .unwrap_or(0)
    }
}

/// Escapes a label value (`\`, `"` and newlines).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The middleware counting every answered request by route template.
pub(crate) async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    state.http_metrics().count(&route, &method, response.status().as_u16());
    response
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: Option<u64>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    if let Some(v) = value {
        let _ = writeln!(out, "{name} {v}");
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let store = state.store().clone();
    // Open events and outages from the store (a store without detections has no gauge value).
    let open = tokio::task::spawn_blocking(move || {
        let open = |kind| {
            store
                .detections(&DetectionQuery {
                    open_only: true,
                    ..DetectionQuery::all(kind)
                })
                .ok()
                .map(|v| v.len() as u64)
        };
        (open(DetectionKind::Event), open(DetectionKind::Outage))
    })
    .await
    .unwrap_or((None, None));
    let stats = state.commit_stats();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let committed = load(&stats.records);
    let stored = load(&stats.stored);
    let rejected = load(&stats.rejected);
    let mut out = String::new();
    counter(
        &mut out,
        "censorwatch_measurements_received_total",
        "Measurements submitted: accepted for storage plus rejected.",
        committed + rejected,
    );
    counter(
        &mut out,
        "censorwatch_measurements_stored_total",
        "Measurements newly stored (duplicates excluded).",
        stored,
    );
    counter(
        &mut out,
        "censorwatch_measurements_duplicate_total",
        "Measurements committed whose id was already stored, or that failed to store.",
        committed.saturating_sub(stored),
    );
    counter(
        &mut out,
        "censorwatch_measurements_rejected_total",
        "Measurements refused as invalid.",
        rejected,
    );
    counter(
        &mut out,
        "censorwatch_commits_total",
        "Group commits (store inserts).",
        load(&stats.commits),
    );
    stats.latency.write(
        &mut out,
        "censorwatch_commit_duration_seconds",
        "Time from a group commit's start until it is durable.",
    );
    gauge(
        &mut out,
        "censorwatch_events_open",
        "Blocking events still lasting (capped at 1000).",
        open.0,
    );
    gauge(
        &mut out,
        "censorwatch_outages_open",
        "Outages still lasting (capped at 1000).",
        open.1,
    );
    let name = "censorwatch_http_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} Answered HTTP requests by route template, method and status.\n# TYPE {name} counter"
    );
    {
        let map = state.http_metrics().requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((route, method, status), n) in map.iter() {
            let _ = writeln!(
                out,
                "{name}{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                label(route),
                label(method)
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.write(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
        assert!(out.contains("# TYPE x histogram"), "{out}");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
