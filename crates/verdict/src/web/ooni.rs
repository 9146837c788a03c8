//! OONI's Web Connectivity `blocking` / `accessible`, recomputed from the observations.
//!
//! The cascade follows the "classic" engine of Web Connectivity v0.5 (probe-cli
//! `internal/experiment/webconnectivitylte/analysisclassic.go`, which emulates v0.4): walk the
//! observations from the last redirect to the first; within one redirect, HTTP before TLS before
//! TCP before DNS, successes first; the first final response or failure decides. A failure the
//! control shares means the site is down (`false`, not accessible); an inconsistent DNS answer turns
//! any blame into `"dns"`.
//!
//! DNS consistency here is OONI's classic one (system resolver only; same address or same ASN as
//! the control), not censorwatch's CDN-aware one, so that this field means what OONI means by it;
//! censorwatch's own judgement is in `status` and `method`.

use super::facts::{Consistency, EndpointObs, Facts, Step, WalkItem};
use super::httpdiff;
use censorwatch_model::OoniBlocking;

/// `(blocking, accessible)`; `None` is OONI's `null`.
pub(crate) type OoniOutcome = (Option<OoniBlocking>, Option<bool>);

struct Outcome {
    inconsistent: bool,
}

impl Outcome {
    fn accessible(&self) -> OoniOutcome {
        (Some(OoniBlocking::False), Some(true))
    }
    fn undecided(&self) -> OoniOutcome {
        if self.inconsistent {
            (Some(OoniBlocking::Dns), Some(false))
        } else {
            (None, None)
        }
    }
    fn blocked(&self, layer: OoniBlocking) -> OoniOutcome {
        if self.inconsistent {
            (Some(OoniBlocking::Dns), Some(false))
        } else {
            (Some(layer), Some(false))
        }
    }
    fn down(&self) -> OoniOutcome {
        if self.inconsistent {
            (Some(OoniBlocking::Dns), Some(false))
        } else {
            (Some(OoniBlocking::False), Some(false))
        }
    }
}

/// OONI's outcome for these facts.
pub(crate) fn classify(f: &Facts<'_>) -> OoniOutcome {
    let o = Outcome {
        inconsistent: matches!(f.classic_consistency, Consistency::Inconsistent(_)),
    };
    let control_http = f.control.and_then(|c| c.http_failure());
    for item in f.walk(true) {
        match item {
            WalkItem::Endpoint(e) => {
                if let Some(outcome) = endpoint_outcome(f, &o, e, control_http) {
                    return outcome;
                }
            }
            WalkItem::FailedLookup(l) => {
                let control_dns = if l.depth == 0 {
                    f.control.and_then(|c| c.dns())
                } else {
                    None
                };
                return match control_dns {
                    None => match control_http {
                        None => o.accessible(),
                        Some(_) => o.blocked(OoniBlocking::Dns),
                    },
                    Some(Err(_)) => o.down(),
                    Some(Ok(addrs)) if addrs.is_empty() => o.down(),
                    Some(Ok(_)) => o.blocked(OoniBlocking::Dns),
                };
            }
        }
    }
    // Nothing failed and nothing final: e.g. the probe did not connect to bogon answers.
    match (&f.classic_consistency, f.control) {
        (_, None) => (None, None),
        (Consistency::Inconsistent(_), _) => (Some(OoniBlocking::Dns), Some(false)),
        _ => (Some(OoniBlocking::False), Some(false)),
    }
}

fn endpoint_outcome(
    f: &Facts<'_>,
    o: &Outcome,
    e: &EndpointObs<'_>,
    control_http: Option<Option<&censorwatch_model::Failure>>,
) -> Option<OoniOutcome> {
    if e.is_final_response() {
        if e.over_valid_tls() {
            return Some(o.accessible());
        }
        let (Some(control), Some(None)) = (f.control, control_http) else {
            return Some(o.undecided());
        };
        let response = e.http?.response.as_ref()?;
        let diff = httpdiff::compare(response, control.response.http_request.as_ref()?);
        return Some(if diff.is_diff() {
            o.blocked(OoniBlocking::HttpDiff)
        } else {
            o.accessible()
        });
    }
    e.failure.as_ref()?;
    let step_control = match e.step {
        Step::Http => None,
        Step::Tls => e.endpoint.as_deref().and_then(|ep| f.control.and_then(|c| c.tls(ep))),
        Step::Tcp => e.endpoint.as_deref().and_then(|ep| f.control.and_then(|c| c.tcp(ep))),
    };
    let layer = match e.step {
        Step::Tcp => OoniBlocking::TcpIp,
        _ => OoniBlocking::HttpFailure,
    };
    if e.step == Step::Http {
        if e.failure.as_ref().is_some_and(|f| f.is_dns()) {
            return Some(o.blocked(OoniBlocking::Dns));
        }
        return Some(match control_http {
            None => o.undecided(),
            Some(Some(_)) => o.down(),
            Some(None) => o.blocked(OoniBlocking::HttpFailure),
        });
    }
    Some(match step_control {
        Some(Some(_)) => o.down(),
        Some(None) => o.blocked(layer),
        None => match control_http {
            None => o.undecided(),
            Some(_) => o.blocked(OoniBlocking::HttpFailure),
        },
    })
}

/// OONI's comparison keys of a Web Connectivity measurement — what OONI's probes write and its
/// readers (Explorer, the pipeline) expect next to `blocking`/`accessible` — recomputed from the
/// observations and the control.
///
/// Definitions (ts-017; probe-cli v0.4 `internal/experiment/webconnectivity/dnsanalysis.go` and
/// `httpanalysis.go`): `dns_consistency` is `"consistent"` when the probe's answers share an
/// address or an ASN with the control's, or both lookups failed; `"inconsistent"` otherwise; `null`
/// without a control. The HTTP keys compare the final response (`requests[0]`) with the control's
/// (see [`super::httpdiff`]); each is `null` where OONI's is, and `body_proportion` is `0` when
/// not computed, as OONI writes it. Checked key by key against the 50 measurements ooniprobe
/// 0.5.28 wrote in OONI's QA suite (`tests/ooni_keys.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OoniComparison {
    /// `"consistent"`, `"inconsistent"`, or `None` (null).
    pub dns_consistency: Option<&'static str>,
    /// Body lengths within 70 % of each other.
    pub body_length_match: Option<bool>,
    /// The shorter body's length over the longer's; `0` when not computed.
    pub body_proportion: f64,
    /// Same status code.
    pub status_code_match: Option<bool>,
    /// Same header names, or an uncommon one in common.
    pub headers_match: Option<bool>,
    /// Long title words in common.
    pub title_match: Option<bool>,
}

/// OONI's comparison keys for these facts.
pub(crate) fn comparison(f: &Facts<'_>) -> OoniComparison {
    // OONI judges the system resolver's answers; a probe that used only a resolver of the user's
    // choosing is judged on those (same rules: address or ASN, no certificate check).
    let consistency = match &f.classic_consistency {
        Consistency::Unknown => super::facts::consistency(f, false, false),
        c => c.clone(),
    };
    let mut out = OoniComparison {
        dns_consistency: match consistency {
            Consistency::Consistent(_) => Some("consistent"),
            Consistency::Inconsistent(_) => Some("inconsistent"),
            Consistency::Unknown => None,
        },
        ..Default::default()
    };
    let control = f.control.and_then(|c| c.response.http_request.as_ref());
    // As ooniprobe 0.5 writes them: no HTTP comparison when the HTTP experiment failed (a redirect
    // chain cut short leaves an earlier hop's 3xx in `requests[0]`), nor when the final response
    // came from an address the probe's own resolver did not give (the LTE engine also fetches
    // through the control's and DoH's answers, which says nothing about the probe's path).
    let own_answers: Vec<std::net::IpAddr> = f
        .lookups
        .iter()
        .filter(|l| l.engine != super::facts::Engine::Doh)
        .flat_map(|l| l.addrs.iter().copied())
        .collect();
    let final_request = f.keys.final_request().filter(|r| {
        let ip = r.address.as_deref().and_then(super::facts::parse_endpoint);
        ip.is_none_or(|ip| own_answers.contains(&ip))
    });
    let response = final_request.and_then(|r| r.response.as_ref());
    if let (None, Some(control), Some(response)) = (&f.keys.http_experiment_failure, control, response) {
        let d = httpdiff::compare(response, control);
        out.body_length_match = d.body_length_match;
        out.body_proportion = d.body_proportion.unwrap_or(0.0);
        out.status_code_match = d.status_code_match;
        out.headers_match = d.headers_match;
        out.title_match = d.title_match;
    }
    out
}
