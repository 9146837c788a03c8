//! The OpenAPI 3 description of every HTTP endpoint, served at `GET /api/openapi.json`.
//!
//! Hand-written JSON (`openapi.json` beside this file, embedded at build time) rather than
//! derived with `utoipa`: the handlers parse their query strings by hand (repeated parameters
//! refused, times in several ISO 8601 forms, CSV or JSON), which derive macros would not
//! describe, and the document stays readable on its own. A test (`tests/openapi.rs`) checks
//! that it parses and names every route the server registers.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document's text.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /api/openapi.json`.
pub(crate) async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        OPENAPI_JSON,
    )
        .into_response()
}
