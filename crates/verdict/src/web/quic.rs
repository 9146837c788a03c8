//! QUIC (HTTP/3) blocking, judged after the TCP/TLS verdict: censorwatch's probe records its QUIC
//! handshakes as `x_quic_handshakes` (shaped like OONI's `quic_handshakes`), and its control
//! answers with OONI's `quic_handshake` map (`"ip:port"` → status, failure).
//!
//! The rule (`quic.timeout`): the site loaded over TLS on TCP (the verdict so far is `ok`), every
//! QUIC handshake of the probe timed out, and the control completed a QUIC handshake with the same
//! server. Censors that block QUIC drop UDP to 443 (or the QUIC Initial carrying the SNI), which a
//! client sees as a timeout; browsers then fall back to TCP, so the site still loads, but the
//! difference is censorship all the same. Never `blocked` when the control's QUIC failed too (the
//! server has no working QUIC) or when the control has no QUIC result (nothing to compare).

use super::facts::Facts;
use censorwatch_model::failure::FailureKind;
use censorwatch_model::web_connectivity::TlsHandshake;
use censorwatch_model::{Method, Status, Verdict};

/// Confidence when the control's handshake with the very same endpoint succeeded.
const SAME_ENDPOINT_CONFIDENCE: f64 = 0.85;
/// Confidence when the control succeeded only with another address of the site.
const OTHER_ENDPOINT_CONFIDENCE: f64 = 0.75;

/// The probe's QUIC handshakes (decoy handshakes, if any, left out).
fn probe_handshakes(f: &Facts<'_>) -> Vec<TlsHandshake> {
    let Some(value) = f.keys.extra.get("x_quic_handshakes") else {
        return Vec::new();
    };
    let list: Vec<TlsHandshake> = serde_json::from_value(value.clone()).unwrap_or_default();
    list.into_iter()
        .filter(|h| !h.tags.iter().flatten().any(|t| t == "sni_decoy"))
        .collect()
}

/// What the control's QUIC said about the probe's endpoints.
#[derive(Debug, PartialEq)]
enum ControlQuic {
    /// It completed a handshake with one of the same endpoints.
    SameEndpoint,
    /// It completed one only with another endpoint of the site.
    OtherEndpoint,
    /// Every handshake it tried failed (the first failure, as text).
    Failed(String),
    /// It has no QUIC result.
    Nothing,
}

fn control_quic(f: &Facts<'_>, endpoints: &[&str]) -> ControlQuic {
    let Some(map) = f.control.and_then(|c| c.response.quic_handshake.as_ref()) else {
        return ControlQuic::Nothing;
    };
    if map.is_empty() {
        return ControlQuic::Nothing;
    }
    let ok = |h: &censorwatch_model::web_connectivity::ControlTlsHandshake| h.status == Some(true);
    if endpoints.iter().any(|e| map.get(*e).is_some_and(ok)) {
        return ControlQuic::SameEndpoint;
    }
    if map.values().any(ok) {
        return ControlQuic::OtherEndpoint;
    }
    let first = map
        .values()
        .find_map(|h| h.failure.as_ref().map(|f| f.as_str().to_owned()))
        .unwrap_or_else(|| "failed".to_owned());
    ControlQuic::Failed(first)
}

/// Revises `verdict` (the TCP/TLS/HTTP one) with the QUIC evidence.
pub(crate) fn revise(f: &Facts<'_>, mut verdict: Verdict) -> Verdict {
    let handshakes = probe_handshakes(f);
    if handshakes.is_empty() {
        return verdict;
    }
    if let Some(ok) = handshakes.iter().find(|h| h.failure.is_none()) {
        if verdict.status == Status::Ok {
            verdict.reasons.push(format!(
                "A QUIC (HTTP/3) handshake with {} completed too.",
                ok.address.as_deref().unwrap_or("the server")
            ));
        }
        return verdict;
    }
    let first = &handshakes[0];
    let failure = first
        .failure
        .clone()
        .unwrap_or(censorwatch_model::Failure::GenericTimeoutError);
    let address = first.address.as_deref().unwrap_or("the server");
    let sni = first.server_name.as_deref().unwrap_or("the site");
    let endpoints: Vec<&str> = handshakes.iter().filter_map(|h| h.address.as_deref()).collect();
    let control = control_quic(f, &endpoints);
    if verdict.status != Status::Ok {
        if verdict.status == Status::Blocked {
            verdict
                .reasons
                .push(format!("QUIC (HTTP/3) to {address} failed as well ({failure})."));
        }
        return verdict;
    }
    let timeout = failure.kind() == FailureKind::Timeout;
    match control {
        ControlQuic::SameEndpoint | ControlQuic::OtherEndpoint if timeout => {
            let (confidence, whom) = if control == ControlQuic::SameEndpoint {
                (SAME_ENDPOINT_CONFIDENCE, "the same address")
            } else {
                (OTHER_ENDPOINT_CONFIDENCE, "another address of the site")
            };
            let mut reasons = vec![
                format!(
                    "The QUIC (HTTP/3) handshake with {address} for {sni} timed out ({failure}) while the control completed one with {whom}: QUIC to the site is blocked."
                ),
                "Browsers fall back to TCP when QUIC fails, so the site still loads, more slowly on a first visit."
                    .to_owned(),
            ];
            reasons.extend(verdict.reasons.into_iter().map(|r| format!("Over TCP: {r}")));
            Verdict {
                status: Status::Blocked,
                method: Some(Method::QuicTimeout),
                confidence,
                reasons,
                ..verdict
            }
        }
        ControlQuic::SameEndpoint | ControlQuic::OtherEndpoint => {
            verdict.reasons.push(format!(
                "The QUIC (HTTP/3) handshake with {address} failed ({failure}) while the control completed one; this failure is not a known way of blocking QUIC, so it is only noted."
            ));
            verdict
        }
        ControlQuic::Failed(cf) => {
            verdict.reasons.push(format!(
                "The QUIC (HTTP/3) handshake with {address} failed ({failure}) and the control's QUIC failed too ({cf}): the server's HTTP/3 does not work, which is not blocking."
            ));
            verdict
        }
        ControlQuic::Nothing => {
            verdict.reasons.push(format!(
                "The QUIC (HTTP/3) handshake with {address} failed ({failure}); the control has no QUIC result to compare, so this is not called blocking."
            ));
            verdict
        }
    }
}
