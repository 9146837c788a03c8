//! Admin authentication: `Authorization: Bearer <token>` on every `/api/v1/admin/…` endpoint.
//!
//! The token comes from [`ServerConfig::admin_token`](crate::ServerConfig::admin_token)
//! (`censorwatch serve --admin-token-file FILE`, or the `CENSORWATCH_ADMIN_TOKEN` variable).
//! Without a configured token every admin endpoint answers **403** ("admin endpoints are
//! disabled"), so a server started without one cannot be administered over HTTP at all. A
//! missing or wrong token is **401** with `WWW-Authenticate: Bearer`. Tokens are compared in
//! constant time.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Shortest token accepted in the configuration (bytes).
pub const MIN_TOKEN_BYTES: usize = 16;

/// Compares two byte strings in time that depends only on their lengths.
///
/// Hand-written (eight lines) instead of pulling a crate for it: the loop reads every byte of
/// both and folds differences with OR, never branching on contents.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Checks a configured token: long enough, no whitespace inside (a file's trailing newline is
/// trimmed by the caller).
pub fn validate_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_TOKEN_BYTES {
        return Err(format!(
            "the admin token is {} bytes; use at least {MIN_TOKEN_BYTES} random bytes (e.g. `openssl rand -hex 32`)",
            token.len()
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "the admin token contains whitespace or control characters; use a single hex or base64 word".into(),
        );
    }
    Ok(())
}

/// Whether `header` (the `Authorization` value) carries `token`.
pub fn authorized(header: Option<&HeaderValue>, token: &str) -> bool {
    let Some(value) = header.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// The middleware guarding the admin routes.
pub(crate) async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = state.config().admin_token.as_deref() else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "admin endpoints are disabled on this server: start it with --admin-token-file FILE or \
             CENSORWATCH_ADMIN_TOKEN set",
        )
        .into_response();
    };
    if !authorized(request.headers().get(header::AUTHORIZATION), token) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this admin endpoint needs the header `Authorization: Bearer <admin token>`",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        let token = "0123456789abcdef0123";
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(authorized(Some(&h(&format!("Bearer {token}"))), token));
        assert!(authorized(Some(&h(&format!("bearer  {token} "))), token));
        assert!(!authorized(Some(&h(&format!("Basic {token}"))), token));
        assert!(!authorized(Some(&h("Bearer 0123456789abcdef012")), token));
        assert!(!authorized(Some(&h("Bearer")), token));
        assert!(!authorized(None, token));
        assert!(validate_token(token).is_ok());
        assert!(validate_token("short").is_err());
        assert!(validate_token("0123456789 abcdef0123").is_err());
    }
}
