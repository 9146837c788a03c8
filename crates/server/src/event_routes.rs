//! The event endpoints: `GET /api/v1/events` and `GET /api/v1/events/{id}`, read from the
//! events the detection worker ([`crate::detections`]) keeps in the store.

use crate::AppState;
use crate::error::ApiError;
use crate::routes::{parse_flag, parse_format, parse_limit, parse_time};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use censorwatch_detect::Event;
use censorwatch_store::detection::MAX_DETECTIONS;
use censorwatch_store::record::format_ooni_time;
use censorwatch_store::{DetectionKind, DetectionQuery, StoreError, StoredDetection};
use serde_json::value::RawValue;

const EVENT_PARAMS: &str = "cc, domain, since, open, limit, format";

/// Parses the query string of `GET /api/v1/events`; the second value says CSV.
fn parse_event_query(params: Vec<(String, String)>) -> Result<(DetectionQuery, bool), ApiError> {
    let mut q = DetectionQuery {
        limit: 100,
        ..DetectionQuery::all(DetectionKind::Event)
    };
    let mut csv = false;
    for (key, value) in crate::routes::unique_params(params)? {
        let bad = |what: &str| ApiError::bad_request(format!("{key}={value:?} is invalid: {what}"));
        match key.as_str() {
            "cc" | "probe_cc" => {
                let cc = value.to_ascii_uppercase();
                crate::prepare::validate_cc(&cc).map_err(|_| bad("expected a two-letter country code such as PK"))?;
                q.cc = Some(cc);
            }
            "domain" => {
                if value.is_empty() {
                    return Err(bad("expected a domain such as x.com, or a platform such as twitter"));
                }
                let domain = value.to_ascii_lowercase();
                // twitter.com finds the event of its platform (labelled x.com).
                q.platform = Some(censorwatch_detect::platform_of(&domain).into_owned());
                q.domain = Some(domain);
            }
            "since" => {
                q.since = Some(parse_time(&value, false).ok_or_else(|| {
                    bad("expected an ISO 8601 date or date-time (UTC), e.g. 2024-02-17 or 2024-02-17T09:00:00Z")
                })?)
            }
            "open" => q.open_only = parse_flag(&value).ok_or_else(|| bad("expected true or false"))?,
            "limit" => q.limit = parse_limit(&value, MAX_DETECTIONS).map_err(|e| bad(&e))?,
            "format" => csv = parse_format(&value).ok_or_else(|| bad("expected json or csv"))?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}; the parameters are {EVENT_PARAMS}"
                )));
            }
        }
    }
    Ok((q, csv))
}

fn store_failed(e: StoreError) -> ApiError {
    match e {
        StoreError::BadQuery(m) => ApiError::bad_request(m),
        other => ApiError::unavailable(format!("the store failed: {other}; try again")),
    }
}

fn body_of(d: &StoredDetection) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(d.body.clone())
        .map_err(|e| ApiError::internal(format!("stored event {} is not valid JSON: {e}", d.id)))
}

fn json_response(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

const CSV_HEADER: [&str; 12] = [
    "id",
    "platform",
    "domain",
    "cc",
    "asns",
    "method",
    "start",
    "end",
    "pattern",
    "confidence",
    "measurements",
    "first_evidence",
];

fn to_csv(events: &[Event]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for e in events {
        let asns: Vec<String> = e.asns.iter().map(|a| format!("AS{}", a.asn)).collect();
        let pattern = serde_json::to_value(e.pattern)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        w.write_record([
            e.id.as_str(),
            &e.platform,
            &e.domain,
            e.cc.as_str(),
            &asns.join(" "),
            e.method.map(|m| m.as_str()).unwrap_or(""),
            &format_ooni_time(e.start),
            &e.end.map(format_ooni_time).unwrap_or_default(),
            &pattern,
            &format!("{:.3}", e.confidence),
            &e.measurements.to_string(),
            e.first_evidence.id.as_deref().unwrap_or(""),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// `GET /api/v1/events`: `{"results": [event…]}`, latest start first (or CSV).
pub(crate) async fn list_events(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
    let (query, csv) = parse_event_query(params)?;
    let store = state.store().clone();
    let rows = tokio::task::spawn_blocking(move || store.detections(&query))
        .await
        .map_err(|e| ApiError::internal(format!("the query failed: {e}")))?
        .map_err(store_failed)?;
    if csv {
        let events = rows
            .iter()
            .map(|d| serde_json::from_str::<Event>(&d.body))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::internal(format!("a stored event does not parse: {e}")))?;
        let body = to_csv(&events).map_err(|e| ApiError::internal(format!("writing CSV failed: {e}")))?;
        return Ok(crate::routes::csv_response(body, None));
    }
    let bodies = rows.iter().map(body_of).collect::<Result<Vec<_>, _>>()?;
    let text = serde_json::to_string(&serde_json::json!({ "results": bodies }))
        .map_err(|e| ApiError::internal(format!("writing JSON failed: {e}")))?;
    Ok(json_response(text))
}

/// `GET /api/v1/events/{id}`: the event.
pub(crate) async fn get_event(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_request(format!("bad event id in the URL: {e}")))?;
    let store = state.store().clone();
    let lookup = id.clone();
    let row = tokio::task::spawn_blocking(move || store.detection(DetectionKind::Event, &lookup))
        .await
        .map_err(|e| ApiError::internal(format!("the lookup failed: {e}")))?
        .map_err(store_failed)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no event with id {id:?}; ids are the id field of /api/v1/events results (an event's id changes when \
                 late measurements move its start)"
            ))
        })?;
    Ok(json_response(row.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<(DetectionQuery, bool), ApiError> {
        parse_event_query(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn event_queries() {
        let (query, csv) = q(&[
            ("cc", "pk"),
            ("domain", "Twitter.com"),
            ("since", "2024-02-17"),
            ("format", "csv"),
        ])
        .unwrap();
        assert!(csv);
        assert_eq!(query.cc.as_deref(), Some("PK"));
        assert_eq!(query.domain.as_deref(), Some("twitter.com"));
        assert_eq!(query.platform.as_deref(), Some("twitter"));
        assert_eq!(query.since, Some(1_708_128_000));
        assert_eq!(query.limit, 100);
        assert!(q(&[("open", "true")]).unwrap().0.open_only);
        for bad in [
            vec![("cc", "PAK")],
            vec![("limit", "0")],
            vec![("limit", "1001")],
            vec![("since", "yesterday")],
            vec![("open", "maybe")],
            vec![("format", "xml")],
            vec![("asn", "1")],
            vec![("cc", "PK"), ("cc", "IR")],
        ] {
            assert!(q(&bad).is_err(), "{bad:?}");
        }
    }
}
