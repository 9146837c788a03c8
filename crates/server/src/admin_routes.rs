//! Removing measurements and rotating the signing key: the admin endpoints, and the public
//! records they leave.
//!
//! Admin, behind `Authorization: Bearer <token>` ([`crate::auth`]):
//! - `DELETE /api/v1/admin/measurements/{id}` with `{"reason": "…"}` (required, at most
//!   `censorwatch_store::redaction::MAX_REASON_BYTES` (1000) bytes, published as given): removes the measurement from the store for
//!   good (see `censorwatch_store::redaction`) → 200 with the redaction record `{id, leaf_index,
//!   reason, time}`. Deleting again answers the same record (the first reason and time stand);
//!   an unknown id is 404. Its leaf stays in the transparency log (a hash that reveals nothing),
//!   so every checkpoint, proof and bundle published before stays valid. The events and outages
//!   are recomputed without it.
//! - `POST /api/v1/admin/keys/rotate` → 200 `{old, new, time, statement, transition_checkpoint,
//!   keyring}`: a new signing key (see `censorwatch_evidence::keyring`); the old one's public
//!   key stays in the keyring, both keys sign the rotation statement and the transition
//!   checkpoint, and later checkpoints are signed by the new key.
//!
//! Public, read-only:
//! - `GET /api/v1/redactions?limit&cursor&format=csv`: every removal, latest first;
//! - `GET /api/v1/keys`: the keyring — every verifier key the log has signed with (C2SP vkey
//!   form) with its status and validity, the rotation statements and transition checkpoints. It
//!   is the file `censorwatch evidence verify --keyring` takes.
//!
//! A removed measurement answers **410 Gone** at `GET /api/v1/measurements/{id}` (with the
//! redaction), on its dashboard page, and to a submission of it again: the collector refuses it
//! with 410 rather than storing nothing in silence (the store would not store it anyway).

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use censorwatch_store::Redaction;
use censorwatch_store::query::Cursor;
use censorwatch_store::record::format_ooni_time;
use censorwatch_store::redaction::{MAX_REDACTION_PAGE, validate_reason};
use serde_json::json;
use std::collections::HashSet;
use std::sync::RwLock;

/// The largest body `DELETE /api/v1/admin/measurements/{id}` takes.
const MAX_DELETE_BODY: usize = 16 << 10;

/// The public routes.
pub(crate) fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/redactions", get(list_redactions))
        .route("/api/v1/keys", get(keys))
}

/// The admin routes, behind the bearer token.
pub(crate) fn admin_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/measurements/{id}", delete(delete_measurement))
        .route("/api/v1/admin/keys/rotate", post(rotate_key))
        .layer(DefaultBodyLimit::max(MAX_DELETE_BODY))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_admin,
        ))
}

/// The ids removed from the store, kept in memory so the collector refuses them without asking
/// the store on every submission. Loaded at start, added to by each removal.
#[derive(Debug, Default)]
pub(crate) struct RedactedIds(RwLock<HashSet<String>>);

impl RedactedIds {
    /// Every id `store` has redacted (a store that cannot say leaves the set empty: it still
    /// refuses to store them, silently).
    pub(crate) fn load(store: &dyn censorwatch_store::Store) -> RedactedIds {
        let mut ids = HashSet::new();
        let mut before: Option<(i64, String)> = None;
        loop {
            let page = match store.redactions(before.as_ref().map(|(t, id)| (*t, id.as_str())), MAX_REDACTION_PAGE) {
                Ok(page) => page,
                Err(e) => {
                    eprintln!(
                        "censorwatch: cannot read the removed measurements ({e}); resubmissions of them are dropped \
                         without an error until the server is restarted with a healthy store"
                    );
                    break;
                }
            };
            let full = page.len() == MAX_REDACTION_PAGE;
            before = page.last().map(|r| (r.time, r.id.clone()));
            ids.extend(page.into_iter().map(|r| r.id));
            if !full {
                break;
            }
        }
        RedactedIds(RwLock::new(ids))
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    fn insert(&self, id: String) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(id);
    }
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A redaction as the API shows it (the time in RFC 3339).
fn redaction_json(r: &Redaction) -> serde_json::Value {
    json!({
        "id": r.id,
        "leaf_index": r.leaf_index,
        "reason": r.reason,
        "time": rfc3339(r.time),
    })
}

/// The 410 answer for a removed measurement: `{"error", "redaction"}`.
pub(crate) fn gone(r: &Redaction) -> Response {
    let body = json!({
        "error": format!(
            "measurement {} was removed on {} ({}); its leaf stays in the transparency log, its content is gone",
            r.id,
            rfc3339(r.time),
            r.reason
        ),
        "redaction": redaction_json(r),
    });
    (StatusCode::GONE, axum::Json(body)).into_response()
}

/// The message a submission of a removed measurement gets.
pub(crate) fn resubmitted(id: &str) -> String {
    format!(
        "measurement {id} was removed from this server (see GET /api/v1/measurements/{id} for why) and is not \
         stored again"
    )
}

/// `Err(410)` when the measurement `id` was removed (the collector calls this before
/// committing; a refusal counts among the rejected submissions).
pub(crate) fn refuse_redacted(state: &AppState, id: &str) -> Result<(), ApiError> {
    if is_redacted(state, id) {
        state
            .inner
            .stats
            .rejected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(ApiError::new(StatusCode::GONE, resubmitted(id)));
    }
    Ok(())
}

/// Whether the measurement `id` was removed.
pub(crate) fn is_redacted(state: &AppState, id: &str) -> bool {
    state.inner.redacted.contains(id)
}

/// The redaction of `id` when it was removed (for the 410 of the read paths).
pub(crate) async fn lookup(state: &AppState, id: &str) -> Result<Option<Redaction>, ApiError> {
    let store = state.store().clone();
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || store.redaction(&id))
        .await
        .map_err(|e| ApiError::internal(format!("the lookup failed: {e}")))?
        .map_err(|e| ApiError::unavailable(format!("the store failed: {e}; try again")))
}

async fn delete_measurement(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_request(format!("bad measurement id in the URL: {e}")))?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        reason: String,
    }
    let Body { reason } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be {{\"reason\": \"…\"}} (why the measurement is removed; it is published): {e}"
        ))
    })?;
    let reason = validate_reason(&reason).map_err(ApiError::bad_request)?.to_owned();
    let store = state.store().clone();
    let ledger = state.ledger().cloned();
    let lookup = id.clone();
    let now = crate::detections::unix_now();
    let redaction = tokio::task::spawn_blocking(move || {
        // Holding the log while removing: a commit being logged right now records its leaf
        // indexes before the removal reads them, or after the row is gone (and skips it), never
        // in between (which would leave a leaf index for a measurement that is not stored).
        let _log = ledger.as_ref().map(|l| l.lock().unwrap_or_else(|p| p.into_inner()));
        store.redact(&lookup, &reason, now)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the removal failed: {e}")))?
    .map_err(|e| {
        ApiError::unavailable(format!(
            "the store failed: {e}; nothing was removed, or the removal is unfinished: send the same request again"
        ))
    })?
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "no measurement with id {id:?}; ids are the measurement_uid a submission returned"
        ))
    })?;
    if !state.inner.redacted.contains(&redaction.id) {
        state.inner.redacted.insert(redaction.id.clone());
        if let Some(worker) = state.inner.detections.lock().ok().as_ref().and_then(|w| w.as_ref()) {
            worker.feed().reseed();
        }
        eprintln!(
            "censorwatch: measurement {} removed by an admin: {}",
            redaction.id, redaction.reason
        );
    }
    Ok(axum::Json(redaction_json(&redaction)).into_response())
}

fn no_log() -> ApiError {
    ApiError::not_found(
        "this server keeps no transparency log (start it with a data directory), so it has no signing key",
    )
}

async fn rotate_key(State(state): State<AppState>) -> Result<Response, ApiError> {
    let ledger = state.ledger().cloned().ok_or_else(no_log)?;
    let rotation = tokio::task::spawn_blocking(move || {
        let mut ledger = ledger.lock().unwrap_or_else(|p| p.into_inner());
        ledger.rotate_key(std::time::SystemTime::now())
    })
    .await
    .map_err(|e| ApiError::internal(format!("the rotation failed: {e}")))?
    .map_err(|e| {
        ApiError::internal(format!(
            "the rotation failed: {e}; the old key or the new one is in use (GET /api/v1/keys says which)"
        ))
    })?;
    eprintln!(
        "censorwatch: signing key rotated by an admin: {} retired, {} in use",
        rotation.old, rotation.new
    );
    Ok(axum::Json(json!({
        "old": rotation.old.to_string(),
        "new": rotation.new.to_string(),
        "time": rotation.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "statement": rotation.statement,
        "transition_checkpoint": rotation.transition_checkpoint,
        "keyring": rotation.keyring,
    }))
    .into_response())
}

async fn keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    let ledger = state.ledger().cloned().ok_or_else(no_log)?;
    let ring = tokio::task::spawn_blocking(move || ledger.lock().unwrap_or_else(|p| p.into_inner()).keyring())
        .await
        .map_err(|e| ApiError::internal(format!("reading the keyring failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("reading the keyring failed: {e}")))?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        ring.to_json(),
    )
        .into_response())
}

const REDACTION_PARAMS: &str = "limit, cursor, format";

/// A page position: the (time, id) of the last redaction of the previous page, in the same
/// opaque form as the measurement query's cursors.
fn encode_cursor(r: &Redaction) -> String {
    Cursor {
        start_time: r.time,
        id: r.id.clone(),
    }
    .encode()
}

fn decode_cursor(text: &str) -> Option<(i64, String)> {
    Cursor::decode(text).ok().map(|c| (c.start_time, c.id))
}

async fn list_redactions(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
    let (mut limit, mut cursor, mut csv) = (100usize, None, false);
    for (key, value) in crate::routes::unique_params(params)? {
        let bad = |what: &str| ApiError::bad_request(format!("{key}={value:?} is invalid: {what}"));
        match key.as_str() {
            "limit" => {
                limit = crate::routes::parse_limit(&value, MAX_REDACTION_PAGE as u32).map_err(|e| bad(&e))? as usize
            }
            "cursor" => {
                cursor = Some(decode_cursor(&value).ok_or_else(|| bad("not a cursor this server issued"))?);
            }
            "format" => csv = crate::routes::parse_format(&value).ok_or_else(|| bad("expected json or csv"))?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}; the parameters are {REDACTION_PARAMS}"
                )));
            }
        }
    }
    let store = state.store().clone();
    let mut page = tokio::task::spawn_blocking(move || {
        store.redactions(cursor.as_ref().map(|(t, id)| (*t, id.as_str())), limit + 1)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the query failed: {e}")))?
    .map_err(|e| ApiError::unavailable(format!("the store failed: {e}; try again")))?;
    let more = page.len() > limit;
    page.truncate(limit);
    let next = if more { page.last().map(encode_cursor) } else { None };
    if csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        let write = |w: &mut csv::Writer<Vec<u8>>| -> Result<(), csv::Error> {
            w.write_record(["id", "leaf_index", "reason", "time"])?;
            for r in &page {
                w.write_record([
                    r.id.as_str(),
                    &r.leaf_index.map(|i| i.to_string()).unwrap_or_default(),
                    r.reason.as_str(),
                    &format_ooni_time(r.time),
                ])?;
            }
            Ok(())
        };
        write(&mut w).map_err(|e| ApiError::internal(format!("writing CSV failed: {e}")))?;
        let body = w
            .into_inner()
            .map_err(|e| ApiError::internal(format!("writing CSV failed: {e}")))?;
        return Ok(crate::routes::csv_response(body, next.as_deref()));
    }
    let results: Vec<serde_json::Value> = page.iter().map(redaction_json).collect();
    Ok(axum::Json(json!({ "results": results, "next": next })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let r = Redaction {
            id: "sha256:ab:cd".into(),
            leaf_index: None,
            reason: "x".into(),
            time: 1_700_000_000,
        };
        assert_eq!(decode_cursor(&encode_cursor(&r)), Some((r.time, r.id.clone())));
        assert_eq!(decode_cursor("!!"), None);
    }
}
