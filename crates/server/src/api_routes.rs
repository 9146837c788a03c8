//! The aggregation and outage endpoints, the OpenAPI document and the Prometheus metrics:
//!
//! - `GET /api/v1/aggregation?cc&domain&asn&since&until&axis&bin&format`: counts of
//!   measurements by verdict status, grouped along zero, one or two axes
//!   ([`censorwatch_store::aggregate`]); `{"results": [{…axes, measurements, ok, blocked, down,
//!   inconclusive}]}` or CSV with the same columns.
//! - `GET /api/v1/outages?cc&asn&since&until&open&limit&format`: the outages the detection
//!   worker keeps in the store, latest start first (JSON or CSV).
//! - `GET /api/openapi.json`: [`crate::openapi`].
//! - `GET /metrics`: [`crate::metrics`].

use crate::AppState;
use crate::error::ApiError;
use crate::routes::{csv_response, parse_flag, parse_format, parse_limit, parse_time, unique_params};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use censorwatch_detect::Outage;
use censorwatch_store::detection::MAX_DETECTIONS;
use censorwatch_store::{AggregateAxis, AggregateQuery, AggregateRow, DetectionKind, DetectionQuery, StoreError};
use serde_json::{Map, Value, json};

/// The public, read-only routes of this module (rate-limited with the others).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/aggregation", get(aggregation))
        .route("/api/v1/outages", get(list_outages))
        .route("/api/openapi.json", get(crate::openapi::document))
}

/// Most domains one aggregation may name.
const MAX_DOMAINS: usize = 64;

const AGGREGATION_PARAMS: &str = "cc, domain, asn, since, until, axis, bin, format";

/// An ISO 8601 UTC time (`2024-02-17T09:00:00Z`).
pub(crate) fn iso_time(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Parses a bin width: `5m`, `1h`, `1d`, or any `N` followed by `m`, `h` or `d` (at least 5
/// minutes, at most 31 days).
pub(crate) fn parse_bin(text: &str) -> Option<i64> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: i64 = digits.parse().ok()?;
    let seconds = n.checked_mul(match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    })?;
    (censorwatch_store::aggregate::MIN_BIN_SECONDS..=31 * 86_400)
        .contains(&seconds)
        .then_some(seconds)
}

fn parse_asn(value: &str) -> Option<u32> {
    value
        .strip_prefix("AS")
        .or_else(|| value.strip_prefix("as"))
        .unwrap_or(value)
        .parse()
        .ok()
}

/// Parses the query string of `GET /api/v1/aggregation`; the second value says CSV.
pub(crate) fn parse_aggregation(params: Vec<(String, String)>) -> Result<(AggregateQuery, bool), ApiError> {
    let mut q = AggregateQuery::default();
    let mut csv = false;
    for (key, value) in unique_params(params)? {
        let bad = |what: &str| ApiError::bad_request(format!("{key}={value:?} is invalid: {what}"));
        match key.as_str() {
            "cc" | "probe_cc" => {
                let cc = value.to_ascii_uppercase();
                crate::prepare::validate_cc(&cc).map_err(|_| bad("expected a two-letter country code such as PK"))?;
                q.probe_cc = Some(cc);
            }
            "domain" => {
                let domains: Vec<String> = value
                    .split(',')
                    .map(|d| d.trim().to_ascii_lowercase())
                    .filter(|d| !d.is_empty())
                    .collect();
                if domains.is_empty() || domains.len() > MAX_DOMAINS {
                    return Err(bad(&format!(
                        "expected 1 to {MAX_DOMAINS} domains separated by commas, e.g. x.com,twitter.com"
                    )));
                }
                q.domains = domains;
            }
            "asn" | "probe_asn" => {
                q.probe_asn = Some(parse_asn(&value).ok_or_else(|| bad("expected an AS number such as AS59257"))?)
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
            "axis" => {
                let mut axes = Vec::new();
                for name in value.split(',').map(str::trim) {
                    let axis = AggregateAxis::parse(name).ok_or_else(|| {
                        bad("expected one or two of time, asn, method, domain, cc, status, e.g. time,asn")
                    })?;
                    if axes.contains(&axis) {
                        return Err(bad("an axis is given twice"));
                    }
                    axes.push(axis);
                }
                if axes.len() > censorwatch_store::aggregate::MAX_AXES {
                    return Err(bad("at most two axes, e.g. time,asn"));
                }
                q.axes = axes;
            }
            "bin" => {
                q.bin_seconds =
                    parse_bin(&value).ok_or_else(|| bad("expected 5m, 1h, 1d (N then m, h or d; at least 5m)"))?
            }
            "format" => csv = parse_format(&value).ok_or_else(|| bad("expected json or csv"))?,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {key:?}; the known ones are {AGGREGATION_PARAMS}"
                )));
            }
        }
    }
    q.validate().map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((q, csv))
}

fn store_failed(e: StoreError) -> ApiError {
    match e {
        StoreError::BadQuery(m) => ApiError::bad_request(m),
        other => ApiError::unavailable(format!("the store failed: {other}; try again")),
    }
}

fn json_response(value: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        value.to_string(),
    )
        .into_response()
}

/// The columns of an aggregation's rows: its axes' fields, then the counts.
fn aggregation_columns(axes: &[AggregateAxis]) -> Vec<&'static str> {
    let mut columns: Vec<&'static str> = axes
        .iter()
        .map(|a| match a {
            AggregateAxis::Time => "time",
            AggregateAxis::Asn => "probe_asn",
            AggregateAxis::Method => "method",
            AggregateAxis::Domain => "domain",
            AggregateAxis::Cc => "probe_cc",
            AggregateAxis::Status => "status",
        })
        .collect();
    columns.extend(["measurements", "ok", "blocked", "down", "inconclusive"]);
    columns
}

/// One row as JSON: only the fields of the axes asked for, then the counts.
fn aggregation_json(row: &AggregateRow, axes: &[AggregateAxis]) -> Value {
    let mut object = Map::new();
    for axis in axes {
        let (name, value) = match axis {
            AggregateAxis::Time => ("time", json!(row.time.map(iso_time))),
            AggregateAxis::Asn => ("probe_asn", json!(row.probe_asn)),
            AggregateAxis::Method => ("method", json!(row.method)),
            AggregateAxis::Domain => ("domain", json!(row.domain)),
            AggregateAxis::Cc => ("probe_cc", json!(row.probe_cc)),
            AggregateAxis::Status => ("status", json!(row.status)),
        };
        object.insert(name.into(), value);
    }
    for (name, n) in [
        ("measurements", row.measurements),
        ("ok", row.ok),
        ("blocked", row.blocked),
        ("down", row.down),
        ("inconclusive", row.inconclusive),
    ] {
        object.insert(name.into(), json!(n));
    }
    Value::Object(object)
}

fn aggregation_csv(rows: &[AggregateRow], axes: &[AggregateAxis]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(aggregation_columns(axes))?;
    for row in rows {
        let mut record: Vec<String> = axes
            .iter()
            .map(|a| match a {
                AggregateAxis::Time => row.time.map(iso_time).unwrap_or_default(),
                AggregateAxis::Asn => row.probe_asn.map(|n| n.to_string()).unwrap_or_default(),
                AggregateAxis::Method => row.method.clone().unwrap_or_default(),
                AggregateAxis::Domain => row.domain.clone().unwrap_or_default(),
                AggregateAxis::Cc => row.probe_cc.clone().unwrap_or_default(),
                AggregateAxis::Status => row.status.clone().unwrap_or_default(),
            })
            .collect();
        record.extend([row.measurements, row.ok, row.blocked, row.down, row.inconclusive].map(|n| n.to_string()));
        w.write_record(&record)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// `GET /api/v1/aggregation`.
async fn aggregation(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
    let (query, csv) = parse_aggregation(params)?;
    let store = state.store().clone();
    let axes = query.axes.clone();
    let rows = tokio::task::spawn_blocking(move || store.aggregate(&query))
        .await
        .map_err(|e| ApiError::internal(format!("the aggregation failed: {e}")))?
        .map_err(store_failed)?;
    if csv {
        let body = aggregation_csv(&rows, &axes).map_err(|e| ApiError::internal(format!("writing CSV failed: {e}")))?;
        return Ok(csv_response(body, None));
    }
    let results: Vec<Value> = rows.iter().map(|r| aggregation_json(r, &axes)).collect();
    Ok(json_response(&json!({ "results": results })))
}

const OUTAGE_PARAMS: &str = "cc, asn, since, until, open, limit, format";

/// What `GET /api/v1/outages` asks: the store's filters, plus those applied to the outages
/// read (`asn`, `until`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutageQuery {
    pub(crate) store: DetectionQuery,
    pub(crate) asn: Option<u32>,
    pub(crate) until: Option<i64>,
    pub(crate) csv: bool,
}

impl OutageQuery {
    /// Whether `outage` passes the filters the store does not apply.
    pub(crate) fn keeps(&self, outage: &Outage) -> bool {
        self.asn.is_none_or(|asn| outage.asns.iter().any(|a| a.asn == asn))
            && self.until.is_none_or(|u| outage.start < u)
    }
}

pub(crate) fn parse_outage_query(params: Vec<(String, String)>) -> Result<OutageQuery, ApiError> {
    let mut q = OutageQuery {
        store: DetectionQuery {
            limit: 100,
            ..DetectionQuery::all(DetectionKind::Outage)
        },
        asn: None,
        until: None,
        csv: false,
    };
    for (key, value) in unique_params(params)? {
        let bad = |what: &str| ApiError::bad_request(format!("{key}={value:?} is invalid: {what}"));
        match key.as_str() {
            "cc" | "probe_cc" => {
                let cc = value.to_ascii_uppercase();
                crate::prepare::validate_cc(&cc).map_err(|_| bad("expected a two-letter country code such as PK"))?;
                q.store.cc = Some(cc);
            }
            "asn" | "probe_asn" => {
                q.asn = Some(parse_asn(&value).ok_or_else(|| bad("expected an AS number such as AS59257"))?)
            }
            "since" => {
                q.store.since = Some(parse_time(&value, false).ok_or_else(|| {
                    bad("expected an ISO 8601 date or date-time (UTC), e.g. 2024-02-08 or 2024-02-08T00:00:00Z")
                })?)
            }
            "until" => {
                q.until = Some(parse_time(&value, true).ok_or_else(|| {
                    bad("expected an ISO 8601 date or date-time (UTC), e.g. 2024-02-09 or 2024-02-08T18:00:00Z")
                })?)
            }
            "open" => q.store.open_only = parse_flag(&value).ok_or_else(|| bad("expected true or false"))?,
            "limit" => q.store.limit = parse_limit(&value, MAX_DETECTIONS).map_err(|e| bad(&e))?,
            "format" => q.csv = parse_format(&value).ok_or_else(|| bad("expected json or csv"))?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}; the parameters are {OUTAGE_PARAMS}"
                )));
            }
        }
    }
    Ok(q)
}

const OUTAGE_CSV_HEADER: [&str; 8] = ["id", "cc", "asns", "start", "end", "level", "signals", "country_wide"];

fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn outages_csv(outages: &[Outage]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(OUTAGE_CSV_HEADER)?;
    for o in outages {
        let asns: Vec<String> = o.asns.iter().map(|a| format!("AS{}", a.asn)).collect();
        let signals: Vec<String> = o.signals.iter().map(name_of).collect();
        w.write_record([
            o.id.clone(),
            o.cc.to_string(),
            asns.join(" "),
            iso_time(o.start),
            o.end.map(iso_time).unwrap_or_default(),
            name_of(&o.level),
            signals.join(" "),
            o.country_wide.to_string(),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// `GET /api/v1/outages`: `{"results": [outage…]}`, latest start first (or CSV).
async fn list_outages(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
    let query = parse_outage_query(params)?;
    let store = state.store().clone();
    let store_query = DetectionQuery {
        // The filters applied after reading may drop rows: read the most the store gives.
        limit: if query.asn.is_some() || query.until.is_some() {
            MAX_DETECTIONS
        } else {
            query.store.limit
        },
        ..query.store.clone()
    };
    let rows = tokio::task::spawn_blocking(move || store.detections(&store_query))
        .await
        .map_err(|e| ApiError::internal(format!("the query failed: {e}")))?
        .map_err(store_failed)?;
    let mut outages = Vec::with_capacity(rows.len());
    for row in &rows {
        let outage: Outage = serde_json::from_str(&row.body)
            .map_err(|e| ApiError::internal(format!("stored outage {} does not parse: {e}", row.id)))?;
        if query.keeps(&outage) {
            outages.push(outage);
        }
    }
    outages.truncate(query.store.effective_limit() as usize);
    if query.csv {
        let body = outages_csv(&outages).map_err(|e| ApiError::internal(format!("writing CSV failed: {e}")))?;
        return Ok(csv_response(body, None));
    }
    Ok(json_response(&json!({ "results": outages })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn bins() {
        assert_eq!(parse_bin("5m"), Some(300));
        assert_eq!(parse_bin("1h"), Some(3600));
        assert_eq!(parse_bin("1d"), Some(86_400));
        assert_eq!(parse_bin("15m"), Some(900));
        for bad in ["", "m", "4m", "1s", "1w", "-1h", "32d", "99999999999999999999d", "1.5h"] {
            assert_eq!(parse_bin(bad), None, "{bad}");
        }
    }

    #[test]
    fn aggregation_queries() {
        let (q, csv) = parse_aggregation(pairs(&[
            ("cc", "pk"),
            ("domain", "X.com, twitter.com"),
            ("asn", "AS17557"),
            ("since", "2024-02-17"),
            ("until", "2024-02-18"),
            ("axis", "time,asn"),
            ("bin", "1h"),
            ("format", "csv"),
        ]))
        .unwrap();
        assert!(csv);
        assert_eq!(q.probe_cc.as_deref(), Some("PK"));
        assert_eq!(q.domains, vec!["x.com", "twitter.com"]);
        assert_eq!(q.probe_asn, Some(17557));
        assert_eq!(
            (q.since, q.until),
            (Some(1_708_128_000), Some(1_708_300_800)),
            "a bare until date includes its day"
        );
        assert_eq!(q.axes, vec![AggregateAxis::Time, AggregateAxis::Asn]);
        assert_eq!(q.bin_seconds, 3600);
        let (q, csv) = parse_aggregation(vec![]).unwrap();
        assert!(!csv && q.axes.is_empty());
        for bad in [
            vec![("axis", "time,asn,method")],
            vec![("axis", "asn,asn")],
            vec![("axis", "isp")],
            vec![("bin", "1m")],
            vec![("domain", ",")],
            vec![("cc", "PAK")],
            vec![("since", "2024-02-18"), ("until", "2024-02-17")],
            vec![("format", "xml")],
            vec![("open", "true")],
            vec![("cc", "PK"), ("cc", "IR")],
        ] {
            assert!(parse_aggregation(pairs(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn outage_queries() {
        let q = parse_outage_query(pairs(&[
            ("cc", "pk"),
            ("asn", "59257"),
            ("since", "2024-02-08"),
            ("until", "2024-02-08"),
            ("open", "false"),
            ("limit", "5"),
            ("format", "csv"),
        ]))
        .unwrap();
        assert_eq!(q.store.cc.as_deref(), Some("PK"));
        assert_eq!(q.asn, Some(59257));
        assert_eq!((q.store.since, q.until), (Some(1_707_350_400), Some(1_707_436_800)));
        assert_eq!(q.store.limit, 5);
        assert!(q.csv && !q.store.open_only);
        for bad in [
            vec![("asn", "x")],
            vec![("limit", "0")],
            vec![("domain", "x.com")],
            vec![("open", "yes")],
        ] {
            assert!(parse_outage_query(pairs(&bad)).is_err(), "{bad:?}");
        }
    }
}
