//! The alert endpoints.
//!
//! Public, read-only (rate-limited with the rest):
//! - `GET /api/v1/feeds/events.atom?cc&platform&asn&kind`: the Atom feed of blocking events,
//!   outages and deadline watches whose deadline has passed ([`super::feed`]); `asn` keeps
//!   those touching one network, `kind=event|outage|watch` one of them, and `platform` narrows
//!   the events and watches (outages stay: a shutdown cuts every platform);
//! - `GET /api/v1/watches` and `GET /api/v1/watches/{id}`: each watch with its report
//!   ([`super::watch`]).
//!
//! Admin, behind `Authorization: Bearer <token>` ([`crate::auth`]):
//! - `POST /api/v1/admin/webhooks` `{url, secret, cc?, platform?, asn?, kinds?}` → 201
//!   `{id, url, cc, platform, asn, kinds, source}` (`kinds`: any of `event`, `outage`, `watch`; all when left out);
//!   `GET /api/v1/admin/webhooks` (secrets never shown); `DELETE /api/v1/admin/webhooks/{id}`;
//! - `POST /api/v1/admin/watches` `{cc, platform | domain, deadline, label, window_hours?}` → 201 the watch
//!   (its report is also sent to the webhooks as `watch.due` once the deadline has passed);
//!   `DELETE /api/v1/admin/watches/{id}`.

use super::watch::{self, AsnCounts, Watch};
use super::{AlertKind, Alerts, WebhookConfig};
use crate::AppState;
use crate::error::ApiError;
use crate::routes::{parse_time, unique_params};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use censorwatch_detect::{Event, Outage};
use censorwatch_store::{DetectionKind, DetectionQuery};
use serde::Deserialize;
use serde_json::json;

/// The public alert routes.
pub(crate) fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/feeds/events.atom", get(events_feed))
        .route("/api/v1/watches", get(list_watches))
        .route("/api/v1/watches/{id}", get(get_watch))
}

/// The admin routes, behind the bearer token.
pub(crate) fn admin_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/webhooks", get(list_webhooks).post(add_webhook))
        .route("/api/v1/admin/webhooks/{id}", delete(remove_webhook))
        .route("/api/v1/admin/watches", get(list_watches).post(add_watch))
        .route("/api/v1/admin/watches/{id}", delete(remove_watch))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_admin,
        ))
}

fn alerts(state: &AppState) -> &std::sync::Arc<Alerts> {
    state.alerts()
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not a valid {what}: {e}")))
}

fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|e| ApiError::bad_request(format!("bad id in the URL: {e}")))
}

// ---------------------------------------------------------------------------------------------
// The feed.

/// An AS number as `AS45595`, `as45595` or `45595`.
fn parse_asn(value: &str) -> Option<u32> {
    let digits = value
        .strip_prefix("AS")
        .or_else(|| value.strip_prefix("as"))
        .unwrap_or(value);
    digits.parse().ok().filter(|n| *n > 0)
}

/// What a feed shows: the filters of `GET /api/v1/feeds/events.atom`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FeedFilter {
    cc: Option<String>,
    platform: Option<String>,
    asn: Option<u32>,
    kind: Option<AlertKind>,
}

fn parse_feed_filter(params: Vec<(String, String)>) -> Result<FeedFilter, ApiError> {
    let mut f = FeedFilter::default();
    for (key, value) in unique_params(params)? {
        match key.as_str() {
            "cc" => {
                let c = value.to_ascii_uppercase();
                crate::prepare::validate_cc(&c)
                    .map_err(|_| ApiError::bad_request(format!("cc={value:?} is not a two-letter country code")))?;
                f.cc = Some(c);
            }
            "platform" | "domain" => {
                if value.is_empty() {
                    return Err(ApiError::bad_request("platform is empty; give x.com, twitter, …"));
                }
                f.platform = Some(censorwatch_detect::platform_of(&value.to_ascii_lowercase()).into_owned());
            }
            "asn" => {
                f.asn = Some(parse_asn(&value).ok_or_else(|| {
                    ApiError::bad_request(format!("asn={value:?} is not an AS number; give one such as AS45595"))
                })?);
            }
            "kind" => {
                f.kind = Some(match value.as_str() {
                    "event" => AlertKind::Event,
                    "outage" => AlertKind::Outage,
                    "watch" => AlertKind::Watch,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "kind={value:?} is not event, outage or watch; leave it out to get all"
                        )));
                    }
                });
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}; the parameters are cc, platform, asn and kind"
                )));
            }
        }
    }
    if f.platform.is_some() && f.kind == Some(AlertKind::Outage) {
        return Err(ApiError::bad_request(
            "platform filters blocking events, and kind=outage asks for outages only; drop one",
        ));
    }
    Ok(f)
}

/// What a feed is made of.
struct FeedRows {
    events: Vec<super::feed::FeedEvent>,
    outages: Vec<Outage>,
    watches: Vec<(Watch, watch::WatchReport)>,
}

/// The events, outages and due watches of a feed, read from the store (blocking).
fn feed_rows(
    store: &dyn censorwatch_store::Store,
    watches: Vec<Watch>,
    f: &FeedFilter,
    now: i64,
) -> Result<FeedRows, ApiError> {
    let unavailable =
        |e: censorwatch_store::StoreError| ApiError::unavailable(format!("the store failed: {e}; try again"));
    let wants = |kind| f.kind.is_none_or(|k| k == kind);
    let touches = |asns: &[u32]| f.asn.is_none_or(|want| asns.contains(&want));
    let mut events = Vec::new();
    if wants(AlertKind::Event) {
        let query = DetectionQuery {
            cc: f.cc.clone(),
            domain: f.platform.clone(),
            platform: f.platform.clone(),
            limit: FEED_LIMIT,
            ..DetectionQuery::all(DetectionKind::Event)
        };
        for d in store.detections(&query).map_err(unavailable)? {
            let event: Event = serde_json::from_str(&d.body)
                .map_err(|e| ApiError::internal(format!("stored event {} does not parse: {e}", d.id)))?;
            if touches(&event.asns.iter().map(|a| a.asn).collect::<Vec<_>>()) {
                events.push(super::feed::FeedEvent {
                    event,
                    updated: d.updated,
                });
            }
        }
    }
    let mut outages = Vec::new();
    if wants(AlertKind::Outage) {
        let query = DetectionQuery {
            cc: f.cc.clone(),
            limit: FEED_LIMIT,
            ..DetectionQuery::all(DetectionKind::Outage)
        };
        for d in store.detections(&query).map_err(unavailable)? {
            let outage: Outage = serde_json::from_str(&d.body)
                .map_err(|e| ApiError::internal(format!("stored outage {} does not parse: {e}", d.id)))?;
            if touches(&outage.asns.iter().map(|a| a.asn).collect::<Vec<_>>()) {
                outages.push(outage);
            }
        }
    }
    let mut reported = Vec::new();
    if wants(AlertKind::Watch) {
        for w in watches {
            let due = now >= w.deadline;
            if !due
                || f.cc.as_ref().is_some_and(|cc| *cc != w.cc)
                || f.platform.as_ref().is_some_and(|p| *p != w.platform_name())
            {
                continue;
            }
            let report = watch::report(&w, &watch_counts(store, &w, now)?, now);
            if touches(&report.per_network.iter().map(|n| n.asn).collect::<Vec<_>>()) {
                reported.push((w, report));
            }
        }
    }
    Ok(FeedRows {
        events,
        outages,
        watches: reported,
    })
}

/// Most events, and most outages, a feed is built from (the latest).
const FEED_LIMIT: u32 = 200;

/// `GET /api/v1/feeds/events.atom?cc&platform&asn&kind`: blocking events, outages and due
/// watches. A platform filter narrows the events and watches only: a shutdown of the country
/// cuts that platform too.
async fn events_feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
    let filter = parse_feed_filter(params)?;
    let store = state.store().clone();
    let f = filter.clone();
    let watches = alerts(&state).watches();
    let now = crate::detections::unix_now();
    let rows = tokio::task::spawn_blocking(move || feed_rows(store.as_ref(), watches, &f, now))
        .await
        .map_err(|e| ApiError::internal(format!("the query failed: {e}")))??;
    // Links use the address the client used (the Host header), which only it can know.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    let mut self_url = format!("{base}/api/v1/feeds/events.atom");
    let mut filters = Vec::new();
    if let Some(c) = &filter.cc {
        filters.push(format!("cc={c}"));
    }
    if let Some(p) = &filter.platform {
        filters.push(format!("platform={p}"));
    }
    if let Some(a) = filter.asn {
        filters.push(format!("asn=AS{a}"));
    }
    if let Some(k) = filter.kind {
        filters.push(format!("kind={}", k.as_str()));
    }
    if !filters.is_empty() {
        self_url.push('?');
        self_url.push_str(&filters.join("&"));
    }
    let what = match filter.kind {
        None => "blocking events, outages and deadlines",
        Some(AlertKind::Event) => "blocking events",
        Some(AlertKind::Outage) => "outages",
        Some(AlertKind::Watch) => "deadlines",
    };
    let mut title = format!(
        "censorwatch: {what} in {}",
        filter.cc.as_deref().unwrap_or("every country")
    );
    if let Some(a) = filter.asn {
        title.push_str(&format!(" on AS{a}"));
    }
    if filter.kind != Some(AlertKind::Outage) {
        title.push_str(&format!(
            " for {}",
            filter.platform.as_deref().unwrap_or("every platform")
        ));
    }
    let mut entries = super::feed::entries(&rows.events, &base);
    entries.extend(super::feed::outage_entries(&rows.outages, &base));
    entries.extend(super::feed::watch_entries(&rows.watches, &base));
    super::feed::sort(&mut entries);
    let xml = super::feed::render(
        &entries,
        &super::feed::feed_id(
            filter.cc.as_deref(),
            filter.platform.as_deref(),
            filter.asn,
            filter.kind.map(AlertKind::as_str),
        ),
        &self_url,
        &title,
        now,
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/atom+xml; charset=utf-8"),
        )],
        xml,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Watches.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWatch {
    cc: String,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    deadline: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    window_hours: Option<u32>,
}

/// Validates a `POST /api/v1/admin/watches` body into a watch created at `now`.
fn new_watch(body: NewWatch, now: i64) -> Result<Watch, ApiError> {
    let cc = body.cc.trim().to_ascii_uppercase();
    crate::prepare::validate_cc(&cc)
        .map_err(|_| ApiError::bad_request(format!("cc {:?} is not a two-letter country code", body.cc)))?;
    let clean = |s: Option<String>| s.map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
    let (platform, domain) = match (clean(body.platform), clean(body.domain)) {
        (Some(p), None) => (Some(censorwatch_detect::platform_of(&p).into_owned()), None),
        (None, Some(d)) => (None, Some(d)),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of platform (x.com, twitter, …) or domain",
            ));
        }
    };
    let deadline = parse_time(&body.deadline, true).ok_or_else(|| {
        ApiError::bad_request(format!(
            "deadline {:?} is not an ISO 8601 date or date-time (a bare date means the end of that day, UTC)",
            body.deadline
        ))
    })?;
    let window_hours = body.window_hours.unwrap_or(24);
    if !(1..=24 * 14).contains(&window_hours) {
        return Err(ApiError::bad_request("window_hours must be 1 to 336 (two weeks)"));
    }
    if body.label.len() > 500 {
        return Err(ApiError::bad_request("label is longer than 500 bytes"));
    }
    Ok(Watch {
        id: super::new_id("w-"),
        cc,
        platform,
        domain,
        deadline,
        window_seconds: i64::from(window_hours) * 3600,
        label: body.label.trim().to_owned(),
        created: now,
        reported: None,
    })
}

/// The per-network counts a watch's report is judged from, read from the store.
fn watch_counts(store: &dyn censorwatch_store::Store, w: &Watch, now: i64) -> Result<Vec<AsnCounts>, ApiError> {
    watch::counts(store, w, now).map_err(|e| ApiError::unavailable(format!("the store failed: {e}; try again")))
}

fn watch_json(w: &Watch, report: &watch::WatchReport) -> serde_json::Value {
    watch::to_json(w, report)
}

async fn reports(state: &AppState, watches: Vec<Watch>) -> Result<Vec<serde_json::Value>, ApiError> {
    let store = state.store().clone();
    tokio::task::spawn_blocking(move || {
        let now = crate::detections::unix_now();
        watches
            .iter()
            .map(|w| {
                let counts = watch_counts(store.as_ref(), w, now)?;
                Ok(watch_json(w, &watch::report(w, &counts, now)))
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await
    .map_err(|e| ApiError::internal(format!("the report failed: {e}")))?
}

async fn list_watches(State(state): State<AppState>) -> Result<Response, ApiError> {
    let watches = alerts(&state).watches();
    let results = reports(&state, watches).await?;
    Ok(axum::Json(json!({ "results": results })).into_response())
}

async fn get_watch(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(path)?;
    let w = alerts(&state)
        .watches()
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no watch with id {id:?}; see GET /api/v1/watches")))?;
    let mut results = reports(&state, vec![w]).await?;
    Ok(axum::Json(results.remove(0)).into_response())
}

async fn add_watch(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let new: NewWatch = parse_json(&body, "watch ({cc, platform | domain, deadline, label, window_hours?})")?;
    let now = crate::detections::unix_now();
    let mut w = new_watch(new, now)?;
    if w.report_due(now) {
        // Its deadline is long past: the report is this answer, no webhook will repeat it.
        w.reported = Some(now);
    }
    alerts(&state)
        .add_watch(w.clone())
        .map_err(|e| ApiError::unavailable(format!("cannot save the watch: {e}")))?;
    let mut results = reports(&state, vec![w]).await?;
    Ok((StatusCode::CREATED, axum::Json(results.remove(0))).into_response())
}

async fn remove_watch(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(path)?;
    match alerts(&state).remove_watch(&id) {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(ApiError::not_found(format!("no watch with id {id:?}"))),
        Err(e) => Err(ApiError::unavailable(format!("cannot save the watches: {e}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks.

fn webhook_json(w: &super::Webhook) -> serde_json::Value {
    json!({
        "id": w.id,
        "url": w.config.url,
        "cc": w.config.cc,
        "platform": w.config.platform,
        "asn": w.config.asn,
        "kinds": if w.config.kinds.is_empty() { AlertKind::ALL.to_vec() } else { w.config.kinds.clone() },
        "source": w.source,
    })
}

async fn list_webhooks(State(state): State<AppState>) -> Response {
    let all: Vec<serde_json::Value> = alerts(&state).webhooks().iter().map(webhook_json).collect();
    axum::Json(json!({ "results": all })).into_response()
}

async fn add_webhook(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let config: WebhookConfig = parse_json(
        &body,
        "webhook ({url, secret, cc?, platform?, asn?, kinds?: [\"event\", \"outage\", \"watch\"]})",
    )?;
    let config = config.validated().map_err(ApiError::bad_request)?;
    let w = alerts(&state)
        .add_webhook(config)
        .map_err(|e| ApiError::unavailable(format!("cannot save the webhook: {e}")))?;
    Ok((StatusCode::CREATED, axum::Json(webhook_json(&w))).into_response())
}

async fn remove_webhook(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(path)?;
    match alerts(&state).remove_webhook(&id) {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(ApiError::not_found(format!("no webhook with id {id:?}"))),
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_filter(query: &[(&str, &str)]) -> Result<FeedFilter, ApiError> {
        parse_feed_filter(query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn feed_filters_are_parsed() {
        assert_eq!(
            feed_filter(&[("cc", "pk"), ("asn", "AS45595"), ("kind", "outage")]).unwrap(),
            FeedFilter {
                cc: Some("PK".into()),
                platform: None,
                asn: Some(45595),
                kind: Some(AlertKind::Outage),
            }
        );
        assert_eq!(feed_filter(&[("asn", "as7")]).unwrap().asn, Some(7));
        assert_eq!(
            feed_filter(&[("platform", "X.com")]).unwrap().platform.as_deref(),
            Some("twitter")
        );
        for bad in [
            &[("cc", "Pakistan")][..],
            &[("asn", "AS0")],
            &[("asn", "fast")],
            &[("kind", "block")],
            &[("platform", "")],
            &[("platform", "x.com"), ("kind", "outage")],
            &[("cc", "PK"), ("cc", "IR")],
            &[("colour", "red")],
        ] {
            assert!(feed_filter(bad).is_err(), "{bad:?}");
        }
    }

    fn body(v: serde_json::Value) -> NewWatch {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn new_watches_are_validated() {
        let w = new_watch(
            body(json!({"cc": "pk", "platform": "X.com", "deadline": "2024-04-24", "label": " restore "})),
            5,
        )
        .unwrap();
        assert_eq!(
            (w.cc.as_str(), w.platform.as_deref(), w.domain.as_deref()),
            ("PK", Some("twitter"), None)
        );
        assert_eq!(w.deadline, 1_713_916_800 + 86_400, "a bare date is the end of that day");
        assert_eq!((w.window_seconds, w.label.as_str(), w.created), (86_400, "restore", 5));
        assert!(w.id.starts_with("w-") && w.id.len() == 18);
        for bad in [
            json!({"cc": "PAK", "platform": "x.com", "deadline": "2024-04-24"}),
            json!({"cc": "PK", "deadline": "2024-04-24"}),
            json!({"cc": "PK", "platform": "x.com", "domain": "x.com", "deadline": "2024-04-24"}),
            json!({"cc": "PK", "platform": "x.com", "deadline": "soon"}),
            json!({"cc": "PK", "platform": "x.com", "deadline": "2024-04-24", "window_hours": 0}),
        ] {
            assert!(new_watch(body(bad.clone()), 0).is_err(), "{bad}");
        }
    }
}
