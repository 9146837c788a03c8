//! The HTTP handlers.
//!
//! # The native batch (`POST /api/v1/measurements`)
//! The body is JSONL: one measurement per line (blank lines are skipped, `\r\n` is fine). Each
//! line is judged on its own: a line that fails to parse or validate is rejected with
//! `{line, error}`, and every line that passes is stored and answered with
//! `{line, measurement_uid}`. **A batch with bad lines is still answered 200**, with the good lines
//! stored and the bad ones listed: a probe that uploads a day of measurements should not have to
//! resend a thousand good ones because of one corrupt line, and the per-line results say exactly
//! which to fix. The answer also counts `accepted` and `rejected` lines. Only a failure of the
//! store itself turns the answer into a 503 (its lines carry the error; resending the whole batch
//! is safe, since storage is idempotent by id). A body over the batch limit is refused whole
//! (413) before anything is stored.
//!
//! # Report ids
//! Report ids are not kept server-side, as in OONI's backend: `POST /report/{id}` accepts an id in
//! the shape `POST /report` issues (see [`crate::ids`]) and checks that the measurement agrees
//! with the country, ASN and test the id names. An id not in that shape is answered 404, so a
//! restart of the collector does not break the reports probes have open.

use crate::AppState;
use crate::error::ApiError;
use crate::ids::{self, ReportId};
use crate::prepare::{self, Prepared, ReportBinding};
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use censorwatch_model::{Method, Status, Verdict};
use censorwatch_store::query::{Cursor, MAX_LIMIT};
use censorwatch_store::record::format_ooni_time;
use censorwatch_store::{MeasurementQuery, Record};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;

/// Submissions larger than this are prepared on a blocking thread rather than inline.
const INLINE_PREPARE_BYTES: usize = 64 << 10;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/report", post(open_report))
        .route("/report/{report_id}", post(submit_to_report))
        .route("/report/{report_id}/close", post(close_report))
        .route("/api/v1/submit_measurement", post(submit_measurement))
        .route("/api/v1/measurements", post(submit_batch).get(query_measurements))
        .route("/api/v1/measurements/{id}", get(get_measurement))
        .route("/api/v1/log/checkpoint", get(log_checkpoint))
        .route("/api/v1/log/proof/{id}", get(log_proof))
        .route("/api/v1/events", get(crate::event_routes::list_events))
        .route("/api/v1/events/{id}", get(crate::event_routes::get_event))
        .route(
            "/api/v1/events/{id}/evidence",
            get(crate::evidence_routes::event_evidence),
        )
        .route("/api/v1/evidence", get(crate::evidence_routes::query_evidence))
        .merge(crate::api_routes::routes())
        .merge(crate::alerts::routes::public_routes())
        .merge(crate::alerts::routes::admin_routes(&state))
        .merge(crate::admin_routes::public_routes())
        .merge(crate::admin_routes::admin_routes(&state))
        .merge(crate::web::router(&state))
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .route("/health", get(health))
        .route("/metrics", get(crate::metrics::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::count_requests,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("the server hit a bug handling this request; nothing was stored; please report it")
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /health, /report, /api/v1/submit_measurement and /api/v1/measurements")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint does not take this method: submissions are POST, queries are GET",
    )
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(limiter) = &state.inner.limiter {
        let ip = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if let Err(wait) = limiter.check(ip, Instant::now()) {
            let seconds = (wait.as_secs_f64().ceil() as u64).max(1);
            return ApiError {
                retry_after: Some(seconds),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many requests from {ip}; wait {seconds} s (Retry-After) and send again"),
                )
            }
            .into_response();
        }
    }
    next.run(request).await
}

/// Reads the whole body, refusing (413) as soon as it is over `limit`, without buffering more.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let length = length
            .to_str()
            .ok()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("the Content-Length header is not a number"))?;
        if length > limit as u64 {
            return Err(ApiError::too_large(limit));
        }
    }
    let mut body = body;
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request(format!(
                "reading the request body failed ({e}); nothing was stored; send it again"
            ))
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match std::str::from_utf8(bytes) {
        Err(u) => ApiError::bad_request(format!(
            "the body is not a valid {what}: it is not valid UTF-8 (at byte {}); send UTF-8 JSON",
            u.valid_up_to()
        )),
        Ok(_) => ApiError::bad_request(format!("the body is not a valid {what}: {e}")),
    })
}

fn check_format(format: Option<&str>) -> Result<(), ApiError> {
    match format {
        None | Some("json") => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "format {other:?} is not supported; send format \"json\""
        ))),
    }
}

/// The measurement inside a submission: an object, or (as `submit_measurement` sends it) a
/// string holding the JSON text.
fn content_bytes(content: &RawValue) -> Result<Bytes, ApiError> {
    let text = content.get();
    if text.starts_with('"') {
        let inner: String = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("content is not a valid JSON string: {e}")))?;
        Ok(Bytes::from(inner))
    } else if text.starts_with('{') {
        Ok(Bytes::copy_from_slice(text.as_bytes()))
    } else {
        Err(ApiError::bad_request(
            "content must be the measurement: a JSON object, or a string holding its JSON text",
        ))
    }
}

/// Runs [`prepare::prepare`] inline for small submissions, on a blocking thread for large ones.
async fn prepare_one(state: &AppState, bytes: Bytes, binding: ReportBinding) -> Result<Prepared, ApiError> {
    let run = |state: &AppState, bytes: &[u8], binding: &ReportBinding| {
        prepare::prepare(&state.inner.analyzer, bytes, binding).map_err(|e| {
            state
                .inner
                .stats
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ApiError::bad_request(e)
        })
    };
    if bytes.len() <= INLINE_PREPARE_BYTES {
        return run(state, &bytes, &binding);
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || run(&state, &bytes, &binding))
        .await
        .map_err(|e| ApiError::internal(format!("preparing the measurement failed: {e}")))?
}

#[derive(Deserialize)]
struct OpenReport {
    probe_cc: String,
    probe_asn: String,
    test_name: String,
    #[serde(default)]
    format: Option<String>,
}

async fn open_report(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, state.inner.config.max_body_bytes).await?;
    let open: OpenReport = parse_json(&bytes, "report request (JSON with probe_cc, probe_asn, test_name)")?;
    check_format(open.format.as_deref())?;
    prepare::validate_cc(&open.probe_cc).map_err(ApiError::bad_request)?;
    let asn = prepare::validate_asn(&open.probe_asn).map_err(ApiError::bad_request)?;
    prepare::validate_test_name(&open.test_name).map_err(ApiError::bad_request)?;
    let report_id = ids::new_report_id(&open.test_name, &open.probe_cc, asn);
    Ok(Json(json!({
        "backend_version": state.inner.config.backend_version,
        "report_id": report_id,
        "supported_formats": ["json"],
    }))
    .into_response())
}

fn report_id_of(path: Result<Path<String>, PathRejection>) -> Result<(String, ReportId), ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_request(format!("bad report id in the URL: {e}")))?;
    match ReportId::parse(&id) {
        Some(parts) => Ok((id, parts)),
        None => Err(ApiError::not_found(format!(
            "unknown report id {id:?}: open a report with POST /report and submit to the report_id it returns"
        ))),
    }
}

#[derive(Deserialize)]
struct Submission<'a> {
    #[serde(default)]
    format: Option<String>,
    #[serde(borrow)]
    content: &'a RawValue,
}

async fn submit_to_report(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (id, parts) = report_id_of(path)?;
    let bytes = read_body(&headers, body, state.inner.config.max_body_bytes).await?;
    let content = {
        let submission: Submission<'_> = parse_json(&bytes, "submission ({\"format\": \"json\", \"content\": {…}})")?;
        check_format(submission.format.as_deref())?;
        content_bytes(submission.content)?
    };
    let prepared = prepare_one(&state, content, ReportBinding::Report(id, parts)).await?;
    let uid = prepared.record.id.clone();
    crate::admin_routes::refuse_redacted(&state, &uid)?;
    state.inner.committer.commit(vec![prepared.record]).await?;
    Ok(Json(json!({ "measurement_uid": uid })).into_response())
}

async fn close_report(path: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    report_id_of(path)?;
    Ok(Json(json!({ "status": "success" })).into_response())
}

#[derive(Deserialize)]
struct NewSubmission<'a> {
    #[serde(default)]
    format: Option<String>,
    #[serde(borrow)]
    content: &'a RawValue,
    #[serde(default)]
    protocol_version: Option<serde_json::Value>,
}

async fn submit_measurement(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, state.inner.config.max_body_bytes).await?;
    let (content, protocol_version) = {
        let submission: NewSubmission<'_> = parse_json(
            &bytes,
            "submission ({\"format\": \"json\", \"content\": \"<measurement JSON>\"})",
        )?;
        check_format(submission.format.as_deref())?;
        (content_bytes(submission.content)?, submission.protocol_version)
    };
    let prepared = prepare_one(&state, content, ReportBinding::Assign).await?;
    let uid = prepared.record.id.clone();
    crate::admin_routes::refuse_redacted(&state, &uid)?;
    let report_id = prepared.report_id.clone();
    state.inner.committer.commit(vec![prepared.record]).await?;
    Ok(Json(json!({
        "measurement_uid": uid,
        "report_id": report_id,
        "verification_status": "unverified",
        "submit_response": null,
        "protocol_version": protocol_version,
        "error": null,
    }))
    .into_response())
}

#[derive(Serialize)]
struct LineResult {
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    measurement_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn submit_batch(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, state.inner.config.max_batch_body_bytes).await?;
    let mut lines = Vec::new();
    let mut start = 0;
    let mut number = 0u64;
    while start < bytes.len() {
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| start + p);
        number += 1;
        let mut line_end = end;
        if line_end > start && bytes[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        if bytes[start..line_end].iter().any(|b| !b.is_ascii_whitespace()) {
            lines.push((number, start..line_end));
        }
        start = end + 1;
    }
    if lines.is_empty() {
        return Err(ApiError::bad_request(
            "the batch is empty; send one OONI measurement (a JSON object) per line",
        ));
    }
    let chunk_size = state.inner.config.commit_max_records.clamp(1, 1000);
    let mut results = Vec::with_capacity(lines.len());
    let mut store_failed = false;
    for chunk in lines.chunks(chunk_size) {
        let chunk = chunk.to_vec();
        let (worker_state, worker_bytes) = (state.clone(), bytes.clone());
        let prepared = tokio::task::spawn_blocking(move || {
            chunk
                .into_iter()
                .map(|(n, range)| {
                    let outcome =
                        prepare::prepare(&worker_state.inner.analyzer, &worker_bytes[range], &ReportBinding::Keep);
                    (n, outcome)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ApiError::internal(format!("preparing the batch failed: {e}")))?;
        let mut records = Vec::new();
        let mut chunk_results = Vec::with_capacity(prepared.len());
        for (line, outcome) in prepared {
            let outcome = outcome.and_then(|p| match crate::admin_routes::is_redacted(&state, &p.record.id) {
                false => Ok(p),
                true => Err(crate::admin_routes::resubmitted(&p.record.id)),
            });
            match outcome {
                Ok(p) => {
                    chunk_results.push(LineResult {
                        line,
                        measurement_uid: Some(p.record.id.clone()),
                        error: None,
                    });
                    records.push(p.record);
                }
                Err(error) => {
                    state
                        .inner
                        .stats
                        .rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    chunk_results.push(LineResult {
                        line,
                        measurement_uid: None,
                        error: Some(error),
                    })
                }
            }
        }
        if let Err(e) = state.inner.committer.commit(records).await {
            store_failed = true;
            for r in chunk_results.iter_mut().filter(|r| r.error.is_none()) {
                r.measurement_uid = None;
                r.error = Some(e.message.clone());
            }
        }
        results.extend(chunk_results);
    }
    let accepted = results.iter().filter(|r| r.error.is_none()).count();
    let status = if store_failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "lines": results.len(),
        "accepted": accepted,
        "rejected": results.len() - accepted,
        "results": results,
    });
    Ok((status, Json(body)).into_response())
}

/// A `format` parameter: `Some(true)` for `csv`, `Some(false)` for `json`.
pub(crate) fn parse_format(value: &str) -> Option<bool> {
    match value {
        "json" => Some(false),
        "csv" => Some(true),
        _ => None,
    }
}

/// A yes/no parameter (`open`): `true`/`1` or `false`/`0`.
pub(crate) fn parse_flag(value: &str) -> Option<bool> {
    match value {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// A `limit` parameter, 1 to `max`; the error says what was expected.
pub(crate) fn parse_limit(value: &str, max: u32) -> Result<u32, String> {
    let limit: u32 = value.parse().map_err(|_| "expected a number".to_owned())?;
    if !(1..=max).contains(&limit) {
        return Err(format!("expected 1 to {max}"));
    }
    Ok(limit)
}

/// Parses an ISO 8601 date (`2024-02-17`) or date-time (`2024-02-17T09:31:55Z`, with or without
/// `Z`, a space instead of `T`, fractions, or an offset), UTC unless an offset is given. A bare
/// date is its midnight, or with `end_of_day` the next midnight (so `until=DATE` includes DATE).
pub(crate) fn parse_time(text: &str, end_of_day: bool) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp());
    }
    let naive = text.strip_suffix('Z').unwrap_or(text);
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(naive, format) {
            return Some(t.and_utc().timestamp());
        }
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let date = if end_of_day { date.succ_opt()? } else { date };
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// A query string's parameters, each allowed once (a repeated one is a 400 that says so), with
/// their values trimmed: the first step of every query endpoint's parser.
pub(crate) fn unique_params(params: Vec<(String, String)>) -> Result<Vec<(String, String)>, ApiError> {
    let mut seen = std::collections::HashSet::new();
    params
        .into_iter()
        .map(|(key, value)| {
            if seen.insert(key.clone()) {
                Ok((key, value.trim().to_owned()))
            } else {
                Err(ApiError::bad_request(format!(
                    "parameter {key} is given twice; give it once"
                )))
            }
        })
        .collect()
}

const QUERY_PARAMS: &str = "cc, asn, domain, since, until, status, method, test_name, limit, cursor, format";

fn parse_query(params: Vec<(String, String)>) -> Result<(MeasurementQuery, bool), ApiError> {
    let mut q = MeasurementQuery::default();
    let mut csv = false;
    for (key, value) in unique_params(params)? {
        let bad = |what: &str| ApiError::bad_request(format!("{key}={value:?} is invalid: {what}"));
        match key.as_str() {
            "cc" | "probe_cc" => {
                let cc = value.to_ascii_uppercase();
                prepare::validate_cc(&cc).map_err(|_| bad("expected a two-letter country code such as PK"))?;
                q.probe_cc = Some(cc);
            }
            "asn" | "probe_asn" => {
                let digits = value
                    .strip_prefix("AS")
                    .or_else(|| value.strip_prefix("as"))
                    .unwrap_or(&value);
                q.probe_asn = Some(
                    digits
                        .parse()
                        .map_err(|_| bad("expected an AS number such as AS59257 or 59257"))?,
                );
            }
            "domain" => {
                if value.is_empty() {
                    return Err(bad("expected a domain such as x.com"));
                }
                q.domain = Some(value.to_ascii_lowercase());
            }
            "since" => {
                q.since = Some(parse_time(&value, false).ok_or_else(|| {
                    bad("expected an ISO 8601 date or date-time (UTC), e.g. 2024-02-17 or 2024-02-17T09:00:00Z")
                })?)
            }
            "until" => {
                q.until = Some(parse_time(&value, true).ok_or_else(|| {
                    bad("expected an ISO 8601 date or date-time (UTC), e.g. 2024-02-18 or 2024-02-17T18:00:00Z")
                })?)
            }
            "status" => {
                q.status = Some(
                    serde_json::from_value::<Status>(json!(value.to_ascii_lowercase()))
                        .map_err(|_| bad("expected ok, blocked, down or inconclusive"))?,
                );
            }
            "method" => {
                q.method = Some(
                    Method::ALL
                        .iter()
                        .copied()
                        .find(|m| m.as_str() == value)
                        .ok_or_else(|| bad("expected a method such as dns.nxdomain, tls.reset or http.blockpage"))?,
                );
            }
            "test_name" => {
                prepare::validate_test_name(&value)
                    .map_err(|_| bad("expected a test name such as web_connectivity"))?;
                q.test_name = Some(value);
            }
            "limit" => q.limit = parse_limit(&value, MAX_LIMIT).map_err(|e| bad(&e))?,
            "cursor" => q.cursor = Some(Cursor::decode(&value).map_err(|e| ApiError::bad_request(e.to_string()))?),
            "format" => csv = parse_format(&value).ok_or_else(|| bad("expected json or csv"))?,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {key:?}; the known ones are {QUERY_PARAMS}"
                )));
            }
        }
    }
    if let (Some(since), Some(until)) = (q.since, q.until) {
        if since >= until {
            return Err(ApiError::bad_request("since must be before until"));
        }
    }
    Ok((q, csv))
}

#[derive(Serialize)]
struct ResultRow<'a> {
    id: &'a str,
    measurement_start_time: Option<String>,
    probe_cc: &'a str,
    probe_asn: String,
    probe_network_name: &'a str,
    test_name: &'a str,
    input: Option<&'a str>,
    domain: Option<&'a str>,
    report_id: Option<&'a str>,
    verdict: &'a Verdict,
}

impl<'a> ResultRow<'a> {
    fn of(r: &'a Record) -> ResultRow<'a> {
        ResultRow {
            id: &r.id,
            measurement_start_time: (r.meta.start_time != 0).then(|| format_ooni_time(r.meta.start_time)),
            probe_cc: &r.meta.probe_cc,
            probe_asn: format!("AS{}", r.meta.probe_asn),
            probe_network_name: &r.meta.probe_network_name,
            test_name: &r.meta.test_name,
            input: r.meta.input.as_deref(),
            domain: r.meta.domain.as_deref(),
            report_id: r.meta.report_id.as_deref(),
            verdict: &r.verdict,
        }
    }
}

/// The CSV columns, in order.
const CSV_HEADER: [&str; 16] = [
    "id",
    "measurement_start_time",
    "probe_cc",
    "probe_asn",
    "probe_network_name",
    "test_name",
    "input",
    "domain",
    "report_id",
    "status",
    "method",
    "confidence",
    "blockpage",
    "ooni_blocking",
    "accessible",
    "reasons",
];

fn to_csv(records: &[Record]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for r in records {
        let row = ResultRow::of(r);
        let v = &r.verdict;
        let ooni_blocking = match serde_json::to_value(v.ooni_blocking) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(serde_json::Value::Null) | Err(_) => String::new(),
            Ok(other) => other.to_string(),
        };
        w.write_record([
            row.id,
            row.measurement_start_time.as_deref().unwrap_or(""),
            row.probe_cc,
            &row.probe_asn,
            row.probe_network_name,
            row.test_name,
            row.input.unwrap_or(""),
            row.domain.unwrap_or(""),
            row.report_id.unwrap_or(""),
            v.status.as_str(),
            v.method.map(Method::as_str).unwrap_or(""),
            &v.confidence.to_string(),
            v.blockpage.as_deref().unwrap_or(""),
            &ooni_blocking,
            &v.accessible.map(|a| a.to_string()).unwrap_or_default(),
            &v.reasons.join("; "),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

async fn query_measurements(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
    let (query, csv) = parse_query(params)?;
    let store = state.inner.store.clone();
    let page = tokio::task::spawn_blocking(move || store.query(&query))
        .await
        .map_err(|e| ApiError::internal(format!("the query failed: {e}")))?
        .map_err(|e| match e {
            censorwatch_store::StoreError::BadQuery(m) => ApiError::bad_request(m),
            other => ApiError::unavailable(format!("the store failed: {other}; try again")),
        })?;
    let next = page.next.as_ref().map(Cursor::encode);
    if csv {
        let body = to_csv(&page.results).map_err(|e| ApiError::internal(format!("writing CSV failed: {e}")))?;
        return Ok(csv_response(body, next.as_deref()));
    }
    let results: Vec<ResultRow<'_>> = page.results.iter().map(ResultRow::of).collect();
    Ok(Json(json!({ "results": results, "next": next })).into_response())
}

/// A CSV download (`text/csv`), with the cursor of the next page, if any, in `X-Next-Cursor`.
pub(crate) fn csv_response(body: Vec<u8>, next_cursor: Option<&str>) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    if let Some(next) = next_cursor.and_then(|n| HeaderValue::from_str(n).ok()) {
        response.headers_mut().insert("x-next-cursor", next);
    }
    response
}

async fn get_measurement(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_request(format!("bad measurement id in the URL: {e}")))?;
    let store = state.inner.store.clone();
    let lookup = id.clone();
    let record = tokio::task::spawn_blocking(move || store.get(&lookup))
        .await
        .map_err(|e| ApiError::internal(format!("the lookup failed: {e}")))?
        .map_err(|e| ApiError::unavailable(format!("the store failed: {e}; try again")))?;
    let record = match record {
        Some(record) => record,
        None => {
            if let Some(redaction) = crate::admin_routes::lookup(&state, &id).await? {
                return Ok(crate::admin_routes::gone(&redaction));
            }
            return Err(ApiError::not_found(format!(
                "no measurement with id {id:?}; ids are the measurement_uid a submission returned, or the id field of /api/v1/measurements results"
            )));
        }
    };
    let raw = String::from_utf8(record.raw)
        .ok()
        .and_then(|text| RawValue::from_string(text).ok())
        .ok_or_else(|| ApiError::internal(format!("stored measurement {id} is not valid JSON")))?;
    #[derive(Serialize)]
    struct Answer<'a> {
        id: &'a str,
        measurement: &'a RawValue,
        verdict: &'a Verdict,
    }
    Ok(Json(Answer {
        id: &record.id,
        measurement: &raw,
        verdict: &record.verdict,
    })
    .into_response())
}

fn no_log() -> ApiError {
    ApiError::not_found("this server keeps no transparency log (start it with a data directory)")
}

/// `GET /api/v1/log/checkpoint`: the log's current head, signed, as `text/plain`.
async fn log_checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    let ledger = state.ledger().cloned().ok_or_else(no_log)?;
    let signed =
        tokio::task::spawn_blocking(move || ledger.lock().unwrap_or_else(|p| p.into_inner()).signed_checkpoint())
            .await
            .map_err(|e| ApiError::internal(format!("signing the checkpoint failed: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        signed,
    )
        .into_response())
}

/// `GET /api/v1/log/proof/{id}`: the measurement's leaf (what it commits to), its inclusion
/// proof in the current tree, and the signed checkpoint of that tree.
async fn log_proof(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_request(format!("bad measurement id in the URL: {e}")))?;
    let ledger = state.ledger().cloned().ok_or_else(no_log)?;
    let store = state.inner.store.clone();
    let lookup = id.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let ledger = ledger.lock().unwrap_or_else(|p| p.into_inner());
        let proved = ledger.prove(store.as_ref(), &lookup)?;
        Ok::<_, censorwatch_evidence::LedgerError>(proved.map(|(record, index, proof)| {
            let size = ledger.log().size();
            let leaf = censorwatch_evidence::record_leaf(&record).expect("a logged id is a valid leaf id");
            let doc = censorwatch_evidence::bundle::LeafProof::new(&leaf, index, size, &proof);
            (doc, ledger.signed_checkpoint())
        }))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the proof failed: {e}")))?
    .map_err(|e| ApiError::unavailable(format!("the proof failed: {e}")))?;
    let Some(answer) = answer else {
        if let Some(redaction) = crate::admin_routes::lookup(&state, &id).await? {
            return Ok(crate::admin_routes::gone(&redaction));
        }
        return Err(ApiError::not_found(format!(
            "no logged measurement with id {id:?}: it is not stored, or not logged yet (it is, right after its commit)"
        )));
    };
    let (doc, checkpoint) = answer;
    #[derive(Serialize)]
    struct Answer {
        #[serde(flatten)]
        proof: censorwatch_evidence::bundle::LeafProof,
        checkpoint: String,
    }
    Ok(Json(Answer { proof: doc, checkpoint }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("2024-02-17", false), Some(1708128000));
        assert_eq!(parse_time("2024-02-17", true), Some(1708128000 + 86400));
        assert_eq!(parse_time("2024-02-17T09:31:55Z", false), Some(1708162315));
        assert_eq!(parse_time("2024-02-17T09:31:55", false), Some(1708162315));
        assert_eq!(parse_time("2024-02-17 09:31:55", false), Some(1708162315));
        assert_eq!(parse_time("2024-02-17T10:31:55+01:00", false), Some(1708162315));
        assert_eq!(parse_time("2024-02-17T09:31:55.5Z", false), Some(1708162315));
        for bad in ["", "yesterday", "2024-13-01", "2024-02-17T25:00:00Z", "1708162315"] {
            assert_eq!(parse_time(bad, false), None, "{bad}");
        }
    }
}
