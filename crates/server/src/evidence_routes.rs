//! The evidence bundle endpoints: `GET /api/v1/events/{id}/evidence` (a stored event's bundle)
//! and `GET /api/v1/evidence?cc&domain&since&until` (any query's), each a gzip-compressed tar
//! archive that `censorwatch evidence verify` checks offline. What goes in is decided by
//! `censorwatch_evidence::select`, the same as for `censorwatch evidence bundle`.
//!
//! Bundles are assembled in memory, so the API serves at most [`MAX_API_BUNDLE`] measurements;
//! larger ones are the command line's job, which the error says.

use crate::AppState;
use crate::error::ApiError;
use crate::routes::parse_time;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use censorwatch_evidence::{SelectError, Selection, collect};
use censorwatch_store::DetectionKind;

/// The most measurements one bundle served over HTTP holds.
pub(crate) const MAX_API_BUNDLE: usize = 20_000;

const EVIDENCE_PARAMS: &str = "cc, domain, since, until";

fn no_log() -> ApiError {
    ApiError::not_found("this server keeps no transparency log (start it with a data directory), so it has no evidence")
}

/// What a failed selection means for the client.
fn select_failed(e: SelectError) -> ApiError {
    match e {
        SelectError::Empty => ApiError::bad_request(format!(
            "say which measurements: cc and/or domain, with since/until to bound the period ({EVIDENCE_PARAMS})"
        )),
        SelectError::TooMany { max } => ApiError::bad_request(format!(
            "more than {max} measurements match, more than one bundle served over HTTP holds; narrow the period, \
             or run `censorwatch evidence bundle` on the server"
        )),
        SelectError::Nothing => ApiError::not_found("no logged measurement matches; nothing to bundle"),
        SelectError::BadEvent { .. } => ApiError::internal(e.to_string()),
        SelectError::Store(_) | SelectError::Ledger(_) => ApiError::unavailable(format!("{e}; try again")),
    }
}

/// Builds the bundle of `selection` (or of the event `event_id`) on a blocking thread.
async fn bundle_response(
    state: AppState,
    selection: Option<Selection>,
    event_id: Option<String>,
) -> Result<Response, ApiError> {
    let ledger = state.ledger().cloned().ok_or_else(no_log)?;
    let store = state.store().clone();
    let built = tokio::task::spawn_blocking(move || -> Result<(String, Vec<u8>), ApiError> {
        let selection = match (selection, event_id) {
            (Some(selection), _) => selection,
            (None, Some(id)) => {
                let event = store
                    .detection(DetectionKind::Event, &id)
                    .map_err(|e| ApiError::unavailable(format!("the store failed: {e}; try again")))?
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "no event with id {id:?}; ids are the id field of /api/v1/events results"
                        ))
                    })?;
                Selection::for_event(&event).map_err(select_failed)?
            }
            (None, None) => return Err(ApiError::internal("no selection")),
        };
        let ledger = ledger.lock().unwrap_or_else(|p| p.into_inner());
        let collected = collect(store.as_ref(), &ledger, &selection, MAX_API_BUNDLE).map_err(select_failed)?;
        let bytes = selection
            .writer(&ledger, collected.items)
            .to_gzip_bytes()
            .map_err(|e| ApiError::internal(format!("writing the bundle failed: {e}")))?;
        Ok((selection.file_name(), bytes))
    })
    .await
    .map_err(|e| ApiError::internal(format!("building the bundle failed: {e}")))??;
    let (name, bytes) = built;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/gzip")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/v1/events/{id}/evidence`: the event's evidence bundle.
pub(crate) async fn event_evidence(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_request(format!("bad event id in the URL: {e}")))?;
    bundle_response(state, None, Some(id)).await
}

/// `GET /api/v1/evidence?cc&domain&since&until`: the evidence bundle of a query.
pub(crate) async fn query_evidence(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
    let selection = parse_evidence_query(params)?;
    bundle_response(state, Some(selection), None).await
}

fn parse_evidence_query(params: Vec<(String, String)>) -> Result<Selection, ApiError> {
    let (mut cc, mut domain, mut since, mut until) = (None, None, None, None);
    for (key, value) in crate::routes::unique_params(params)? {
        let bad = |what: &str| ApiError::bad_request(format!("{key}={value:?} is invalid: {what}"));
        let time = |end_of_day| {
            parse_time(&value, end_of_day).ok_or_else(|| {
                bad("expected an ISO 8601 date or date-time (UTC), e.g. 2024-02-17 or 2024-02-17T09:00:00Z")
            })
        };
        match key.as_str() {
            "cc" | "probe_cc" => {
                let upper = value.to_ascii_uppercase();
                crate::prepare::validate_cc(&upper)
                    .map_err(|_| bad("expected a two-letter country code such as PK"))?;
                cc = Some(upper);
            }
            "domain" => {
                if value.is_empty() {
                    return Err(bad("expected a domain such as x.com"));
                }
                domain = Some(value.clone());
            }
            "since" => since = Some(time(false)?),
            "until" => until = Some(time(true)?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}; the parameters are {EVIDENCE_PARAMS}"
                )));
            }
        }
    }
    Selection::for_query(cc.as_deref(), domain.as_deref(), since, until).map_err(select_failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<Selection, ApiError> {
        parse_evidence_query(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn queries_are_parsed_and_checked() {
        let sel = q(&[("cc", "pk"), ("domain", "X.com"), ("since", "2024-02-17")]).unwrap();
        assert_eq!(sel.queries[0].probe_cc.as_deref(), Some("PK"));
        assert_eq!(sel.queries[0].domain.as_deref(), Some("x.com"));
        assert_eq!(sel.queries[0].since, Some(1_708_128_000));
        for bad in [
            vec![("cc", "PAK")],
            vec![("cc", "PK"), ("cc", "IR")],
            vec![("cc", "PK"), ("since", "yesterday")],
            vec![("cc", "PK"), ("limit", "3")],
            vec![("since", "2024-02-17")],
        ] {
            let err = q(&bad).err().unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
