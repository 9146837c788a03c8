//! Webhook payloads, signatures and the retry schedule (pure; delivery is in
//! [`super::Alerts`]).
//!
//! # What a receiver gets
//! `POST <url>` with `Content-Type: application/json` and one of the bodies
//! - `{"type": "event.opened" | "event.changed" | "event.closed", "delivery": "<id>", "event": {…}}`
//!   (the blocking event as `GET /api/v1/events/{id}` shows it);
//! - `{"type": "outage.opened" | "outage.changed" | "outage.closed", "delivery": "<id>", "outage": {…}}`
//!   (the outage as `GET /api/v1/outages` lists it);
//! - `{"type": "watch.due", "delivery": "<id>", "watch": {…, "report": {…}}}`, once per deadline
//!   watch, when its deadline has passed (the watch as `GET /api/v1/watches/{id}` shows it);
//!
//! (`….changed` and `….closed` also carry `"changes"`: the fields that changed since the last
//! delivery about it, among `end`, `method`, `pattern`, `level`, `signals`, `country_wide` and
//! `asns`), so a receiver tells them apart by `type`'s prefix (also sent as `X-Censorwatch-Event`) and
//! finds the object under that prefix's key. A webhook's `kinds` (any of `event`, `outage`,
//! `watch`) limits what it is sent. The headers:
//! - `X-Censorwatch-Event`: the type, as in the body;
//! - `X-Censorwatch-Delivery`: the delivery id (the same on every retry: deduplicate on it);
//! - `X-Censorwatch-Timestamp`: Unix seconds when this attempt was signed;
//! - `X-Censorwatch-Signature`: `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//!
//! # Verifying (receivers)
//! Recompute the HMAC-SHA256 with the webhook's secret over the timestamp header, a `.`, and the
//! raw body bytes; compare with the header's hex in constant time; and refuse a timestamp more
//! than 5 minutes from your clock (a replayed request carries an old one, and changing it
//! breaks the signature). [`verify`] does exactly this.
//!
//! # Retries
//! A delivery is retried until the receiver answers 2xx: after the base delay (default 30 s),
//! then 2, 4, 8, … times it (capped at one hour), at most [`MAX_ATTEMPTS`] attempts in all
//! (about five hours with the default base). Redirects are not followed.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: u32 = 12;
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How far a receiver should accept a timestamp from its clock.
pub const TOLERANCE_SECONDS: i64 = 300;

/// The signature header's value for `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex_lower(&mac.finalize().into_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing or malformed.
    #[error("the signature or timestamp header is missing or malformed")]
    Malformed,
    /// The timestamp is too far from the receiver's clock (a replay).
    #[error("the timestamp is more than {TOLERANCE_SECONDS} s from now; a replayed request?")]
    Stale,
    /// The HMAC does not match (wrong secret, or a changed body or timestamp).
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks a request as a receiver should (see the module docs).
pub fn verify(secret: &[u8], timestamp: &str, signature: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
    let t: i64 = timestamp.trim().parse().map_err(|_| VerifyError::Malformed)?;
    let given = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(hex_decode)
        .ok_or(VerifyError::Malformed)?;
    if (now - t).abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given).map_err(|_| VerifyError::Mismatch)
}

/// The wait after the failure of attempt `attempt + 1` (0-based: the first failure waits
/// `base`): `base × 2^attempt`, capped at [`MAX_BACKOFF`].
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_forgeries_do_not() {
        let body = br#"{"type":"event.opened"}"#;
        let sig = sign(b"s3cret", 1_700_000_000, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
        assert_eq!(verify(b"s3cret", "1700000000", &sig, body, 1_700_000_100), Ok(()));
        assert_eq!(
            verify(b"other", "1700000000", &sig, body, 1_700_000_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", "1700000000", &sig, b"{}", 1_700_000_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", "1700000001", &sig, body, 1_700_000_000),
            Err(VerifyError::Mismatch),
            "the timestamp is signed"
        );
        assert_eq!(
            verify(b"s3cret", "1700000000", &sig, body, 1_700_000_000 + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(verify(b"s3cret", "x", &sig, body, 0), Err(VerifyError::Malformed));
        assert_eq!(verify(b"s3cret", "1", "md5=00", body, 1), Err(VerifyError::Malformed));
        // RFC 4231 test case 2 (key "Jefe"), with the message split as sign() feeds it.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex_lower(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(60));
        assert_eq!(backoff(base, 2), Duration::from_secs(120));
        assert_eq!(backoff(base, 7), MAX_BACKOFF);
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }
}
