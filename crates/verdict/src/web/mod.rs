//! The Web Connectivity verdict: censorwatch's status, method, confidence, blockpage and reasons,
//! plus OONI's `blocking`/`accessible` recomputed ([`ooni`]).
//!
//! Order of evidence, strongest first:
//! 1. a known blockpage (OONI fingerprints) in a DNS answer, an HTTP body or header;
//! 2. the outcome of the last step reached, walking from the last redirect back (as OONI's LTE):
//!    a final response over verified TLS is `ok`; a plain-HTTP page is compared with the control's;
//!    a failure is `blocked` when the control succeeded at the same step, `down` when it failed
//!    the same way; a TLS failure that a decoy SNI on the same address does not suffer is SNI
//!    filtering;
//! 3. DNS consistency: bogon answers, answers unrelated to the control's (CDN-aware: same IP, same
//!    ASN, or a valid certificate for the name on the answered address), NXDOMAIN where the
//!    control resolves.
//!
//! Whenever the DNS answer is not the site's, the blame goes to DNS, as OONI does. Then QUIC
//! ([`quic`]): a site that loads over TCP while its QUIC handshakes time out where the control's
//! succeed is `quic.timeout`. Last, throughput ([`throttle`]): a site that loads but whose large
//! transfer is ≥ 10× slower than a decoy host's and the control's is `throttled`.

mod facts;
mod httpdiff;
mod ooni;
mod quic;
#[cfg(test)]
mod tests;
mod throttle;

use crate::fingerprint::{Fingerprint, FingerprintDb, Scope};
use censorwatch_model::failure::FailureKind;
use censorwatch_model::{Failure, Measurement, Method, Status, Verdict, WebConnectivityTestKeys};
use facts::{Consistency, EndpointObs, Facts, Inconsistency, Lookup, Step, WalkItem};

/// The verdict on one Web Connectivity measurement.
pub(crate) fn verdict(m: &Measurement, keys: &WebConnectivityTestKeys, fingerprints: &FingerprintDb) -> Verdict {
    let cc = m.probe_cc.as_deref().unwrap_or("");
    let facts = Facts::new(keys, m.input_str(), cc);
    let (ooni_blocking, accessible) = ooni::classify(&facts);
    let mut v = throttle::revise(&keys.extra, quic::revise(&facts, decide(&facts, fingerprints)));
    v.ooni_blocking = ooni_blocking;
    v.accessible = accessible;
    v
}

pub use ooni::OoniComparison;

/// OONI's comparison keys (`dns_consistency`, `body_length_match`, …) for one measurement.
pub(crate) fn ooni_comparison(m: &Measurement, keys: &WebConnectivityTestKeys) -> OoniComparison {
    let cc = m.probe_cc.as_deref().unwrap_or("");
    ooni::comparison(&Facts::new(keys, m.input_str(), cc))
}

fn v(status: Status, method: Option<Method>, confidence: f64, reasons: Vec<String>) -> Verdict {
    Verdict {
        status,
        method,
        confidence,
        blockpage: None,
        ooni_blocking: None,
        accessible: None,
        reasons,
    }
}

fn blocked(method: Method, confidence: f64, reasons: Vec<String>) -> Verdict {
    v(Status::Blocked, Some(method), confidence, reasons)
}

fn host(f: &Facts<'_>) -> String {
    f.host.clone().unwrap_or_else(|| "the site".to_owned())
}

fn decide(f: &Facts<'_>, fps: &FingerprintDb) -> Verdict {
    if let Some(verdict) = blockpage(f, fps) {
        return verdict;
    }
    let inconsistency = match &f.consistency {
        Consistency::Inconsistent(i) => Some(i),
        _ => None,
    };
    if f.control.is_none() {
        return without_control(f);
    }
    for item in f.walk(false) {
        match item {
            WalkItem::Endpoint(e) => {
                if let Some(verdict) = endpoint_verdict(f, e, fps) {
                    return with_dns_context(f, blame_dns_if_inconsistent(f, verdict));
                }
            }
            WalkItem::FailedLookup(l) => return lookup_verdict(f, l),
        }
    }
    match inconsistency {
        Some(i) => dns_inconsistency_verdict(f, i, 0.75, None),
        None => match &f.consistency {
            Consistency::Consistent(why) if all_answers_bogon(f) => v(
                Status::Down,
                None,
                0.7,
                vec![format!(
                    "{} resolves to a non-routable address for the control too ({why}): the site is misconfigured, not blocked.",
                    host(f)
                )],
            ),
            _ => Verdict::inconclusive(format!(
                "No step of the measurement of {} reached a result (no connection, handshake or page to judge).",
                host(f)
            )),
        },
    }
}

fn all_answers_bogon(f: &Facts<'_>) -> bool {
    let mut any = false;
    for l in &f.lookups {
        for ip in &l.addrs {
            any = true;
            if !crate::bogon::is_bogon(*ip) {
                return false;
            }
        }
    }
    any
}

/// When the DNS answer differed from the control's but was accepted because the address serves a
/// valid certificate for the name (a CDN node or a transparent proxy), say so next to a blocked
/// verdict: the reader should know the path went through that address.
fn with_dns_context(f: &Facts<'_>, mut verdict: Verdict) -> Verdict {
    if verdict.status == Status::Blocked {
        if let Consistency::Consistent(why) = &f.consistency {
            if why.contains("certificate") {
                verdict.reasons.push(format!(
                    "The DNS answer was not one of the control's addresses; it was accepted because {why} (a CDN node or a transparent proxy)."
                ));
            }
        }
    }
    verdict
}

/// When the DNS answer was not the site's, whatever happened next happened at the wrong server:
/// the method is the DNS one, and the later step becomes a supporting reason.
fn blame_dns_if_inconsistent(f: &Facts<'_>, verdict: Verdict) -> Verdict {
    let Consistency::Inconsistent(i) = &f.consistency else {
        return verdict;
    };
    let confidence = match verdict.status {
        Status::Ok => return verdict,
        Status::Blocked => 0.9,
        Status::Down => 0.8,
        Status::Inconclusive => 0.7,
    };
    // A merely different answer (not a bogon, not forged for a name that does not exist) explains
    // nothing when the control cannot fetch the site either: the site is broken everywhere, and
    // the difference is most likely geo-DNS (ooni/probe#2517: Apple's mask.icloud.com answered by
    // Akamai in Pakistan, by Apple elsewhere, failing for both).
    if let Inconsistency::Addresses { probe, control } = i {
        let control_fetch_failed = matches!(f.control.and_then(|c| c.http_failure()), Some(Some(_)));
        if verdict.status == Status::Down && control_fetch_failed {
            let mut verdict = verdict;
            verdict.confidence = 0.6;
            verdict.reasons.push(format!(
                "The probe's DNS answer ({}) differs from the control's ({}), but the control could not fetch the site either, so the difference explains nothing here; a CDN answering differently by region is the likely cause.",
                list(probe),
                list(control)
            ));
            return verdict;
        }
    }
    dns_inconsistency_verdict(f, i, confidence, Some(verdict.reasons))
}

fn dns_inconsistency_verdict(f: &Facts<'_>, i: &Inconsistency, confidence: f64, then: Option<Vec<String>>) -> Verdict {
    let h = host(f);
    let (method, confidence, first) = match i {
        Inconsistency::Bogon { addr, kind } => (
            Method::DnsBogon,
            0.95_f64.max(confidence),
            format!(
                "The probe's resolver answered {h} with {addr}, {}, while the control resolved it to public addresses.",
                kind.describe()
            ),
        ),
        Inconsistency::Failure { failure, control } => (
            dns_failure_method(failure),
            confidence.max(0.85),
            format!(
                "The probe's DNS lookup of {h} failed ({failure}) while the control resolved it to {}.",
                list(control)
            ),
        ),
        Inconsistency::Addresses { probe, control } => (
            Method::DnsSpoofed,
            confidence,
            format!(
                "The probe's resolver answered {h} with {}, which shares neither address, network (ASN) nor a valid certificate with the control's answer {}.",
                list(probe),
                list(control)
            ),
        ),
        Inconsistency::GhostAnswer { probe, control_failure } => (
            Method::DnsSpoofed,
            confidence.max(0.85),
            format!(
                "The probe's resolver answered {h} with {} although the name does not exist for the control ({control_failure}): a forged answer.",
                list(probe)
            ),
        ),
    };
    let mut reasons = vec![first];
    if let Some(then) = then {
        reasons.extend(then.into_iter().map(|r| format!("Then: {r}")));
    }
    if let Some(doh) = f.doh_resolved() {
        reasons.push(format!(
            "An encrypted (DoH) lookup from the same network resolved it to {}.",
            list(&doh.addrs)
        ));
    }
    blocked(method, confidence, reasons)
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    match items.len() {
        0 => "nothing".to_owned(),
        _ => items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
    }
}

fn dns_failure_method(f: &Failure) -> Method {
    match f.kind() {
        FailureKind::Nxdomain => Method::DnsNxdomain,
        FailureKind::NoAnswer => Method::DnsNoAnswer,
        FailureKind::Timeout => Method::DnsTimeout,
        FailureKind::DnsServer | FailureKind::Refused => Method::DnsRefused,
        FailureKind::DnsOther if f == &Failure::DnsBogonError => Method::DnsBogon,
        _ => Method::DnsRefused,
    }
}

fn without_control(f: &Facts<'_>) -> Verdict {
    let why = match &f.keys.control_failure {
        Some(cf) => format!("the control could not be reached ({cf})"),
        None => "the measurement has no control result".to_owned(),
    };
    let final_tls = f
        .linear()
        .into_iter()
        .find(|e| e.is_final_response() && e.over_valid_tls());
    if final_tls.is_some() {
        return v(
            Status::Ok,
            None,
            0.8,
            vec![format!(
                "{} was fetched over HTTPS with a valid certificate; {why}, but the certificate proves the page came from the site.",
                host(f)
            )],
        );
    }
    Verdict::inconclusive(format!(
        "Without a control, censorwatch cannot tell blocking from a broken site: {why}."
    ))
}

/// Whether a fingerprint match confirms blocking for a probe in `cc`: the fingerprint is known in
/// that country, or it names no country and is a national or ISP blockpage. (OONI fastpath also
/// confirms national/ISP fingerprints from other countries; censorwatch does not, because an
/// Iranian blockpage address seen from Italy is a coincidence worth a look, not a confirmation.)
fn confirmed_for(fp: &Fingerprint, cc: &str) -> bool {
    if fp.expected_countries.is_empty() {
        matches!(fp.scope, Scope::Nat | Scope::Isp)
    } else {
        fp.expected_countries.iter().any(|c| c.eq_ignore_ascii_case(cc))
    }
}

/// Known blockpages in DNS answers, bodies and headers.
///
/// A DNS match is void when the control got the same address (the site really lives there), and
/// a match on a private or loopback address counts only in the fingerprint's own countries (such
/// addresses are used everywhere; the bogon rule judges them). A body or header match is void when
/// the control got the same page (a blockpage the control also sees is the site's own page).
fn blockpage(f: &Facts<'_>, fps: &FingerprintDb) -> Option<Verdict> {
    let control_ips = f.control.map(|c| c.ips()).unwrap_or_default();
    let mut dns_hit: Option<(&Fingerprint, String, bool)> = None;
    'lookups: for l in f.lookups.iter().filter(|l| l.engine != facts::Engine::Doh) {
        let answers = l
            .addrs
            .iter()
            .map(|ip| (Some(*ip), ip.to_string()))
            .chain(l.names.iter().map(|n| (None, n.clone())));
        for (ip, answer) in answers {
            let Some(fp) = fps.match_dns_answer(&answer).filter(|fp| fp.scope != Scope::Fp) else {
                continue;
            };
            if ip.is_some_and(|ip| control_ips.contains(&ip)) {
                continue;
            }
            let bogon = ip.is_some_and(crate::bogon::is_bogon);
            if bogon && !fp.expected_countries.iter().any(|c| c.eq_ignore_ascii_case(f.probe_cc)) {
                continue;
            }
            dns_hit = Some((fp, format!("the resolver answered {} with {answer}", l.hostname), bogon));
            break 'lookups;
        }
    }
    let (fp, where_, method) = match dns_hit {
        Some((fp, where_, bogon)) => (fp, where_, if bogon { Method::DnsBogon } else { Method::DnsSpoofed }),
        None => {
            let (fp, where_) = http_blockpage(f, fps)?;
            let method = if matches!(f.consistency, Consistency::Inconsistent(_)) {
                Method::DnsSpoofed
            } else {
                Method::HttpBlockpage
            };
            (fp, where_, method)
        }
    };
    let confirmed = confirmed_for(fp, f.probe_cc);
    let mut reasons = vec![format!(
        "Blockpage: {where_}, matching fingerprint {} ({}{}).",
        fp.name,
        scope_words(&fp.scope),
        if fp.expected_countries.is_empty() {
            String::new()
        } else {
            format!(", seen in {}", fp.expected_countries.join(", "))
        }
    )];
    if !confirmed {
        reasons.push(format!(
            "This fingerprint is not known in {}: the page is a blockpage, but whose is not confirmed.",
            if f.probe_cc.is_empty() {
                "the probe's country"
            } else {
                f.probe_cc
            }
        ));
    }
    let mut verdict = blocked(method, if confirmed { 0.99 } else { 0.8 }, reasons);
    verdict.blockpage = Some(fp.name.clone());
    Some(verdict)
}

fn http_blockpage<'d>(f: &Facts<'_>, fps: &'d FingerprintDb) -> Option<(&'d Fingerprint, String)> {
    let control_http = f
        .control
        .and_then(|c| c.response.http_request.as_ref())
        .filter(|c| c.status_code.unwrap_or(0) > 0);
    for r in f.keys.requests.iter().flatten() {
        let Some(resp) = &r.response else { continue };
        if control_http.is_some_and(|c| !httpdiff::compare(resp, c).is_diff()) {
            continue;
        }
        let url = r.request.as_ref().and_then(|q| q.url.as_deref()).unwrap_or("?");
        if let Some(body) = resp.body.as_ref().and_then(|b| b.bytes()) {
            if let Some(fp) = fps.match_body(&body).filter(|fp| fp.scope != Scope::Fp) {
                return Some((fp, format!("the page served for {url} is a known blockpage")));
            }
        }
        let headers = resp.headers.iter().flatten().map(|(k, v)| (k.as_str(), v));
        let list = resp.headers_list.iter().flatten().map(|(k, v)| (k.as_str(), v));
        for (name, value) in headers.chain(list) {
            let Some(value) = value.bytes() else { continue };
            if let Some(fp) = fps.match_header(name, &value).filter(|fp| fp.scope != Scope::Fp) {
                return Some((
                    fp,
                    format!("the response for {url} carries a blockpage's {name} header"),
                ));
            }
        }
    }
    None
}

fn scope_words(scope: &Scope) -> String {
    match scope {
        Scope::Nat => "a national blockpage".into(),
        Scope::Isp => "an ISP's blockpage".into(),
        Scope::Prod => "a commercial filtering product".into(),
        Scope::Inst => "an institution's filter".into(),
        Scope::Fp => "a known non-censorship page".into(),
        other => format!("scope {other:?}"),
    }
}

fn is_server_side_challenge(e: &EndpointObs<'_>) -> Option<String> {
    let resp = e.http?.response.as_ref()?;
    let code = resp.code?;
    if !matches!(code, 403 | 429 | 503) {
        return None;
    }
    let server = resp
        .header("server")
        .map(|s| s.text().to_ascii_lowercase())
        .unwrap_or_default();
    let body = resp
        .body
        .as_ref()
        .map(|b| b.text().to_ascii_lowercase())
        .unwrap_or_default();
    let markers = [
        "cf-chl",
        "captcha",
        "attention required",
        "just a moment",
        "access denied | ",
        "ddos protection",
    ];
    if server.contains("cloudflare")
        || resp.header("cf-mitigated").is_some()
        || markers.iter().any(|m| body.contains(m))
    {
        Some(format!(
            "HTTP {code}{}",
            if server.is_empty() {
                String::new()
            } else {
                format!(" from {server}")
            }
        ))
    } else {
        None
    }
}

fn endpoint_verdict(f: &Facts<'_>, e: &EndpointObs<'_>, fps: &FingerprintDb) -> Option<Verdict> {
    let h = host(f);
    let control = f.control?;
    let control_http = control.http_failure();
    let endpoint = e.endpoint.clone().unwrap_or_else(|| "the server".to_owned());
    if e.is_final_response() {
        let code = e.status_code().unwrap_or(0);
        if e.over_valid_tls() {
            let mut reasons = vec![format!(
                "{h} answered HTTP {code} over HTTPS from {endpoint} with a certificate valid for the name."
            )];
            if code >= 400 {
                reasons.push(format!(
                    "HTTP {code} is the server's own answer (an error or a challenge page); the network delivered it intact."
                ));
            }
            if let Consistency::Inconsistent(_) = f.consistency {
                reasons.push("The DNS answer differed from the control's, but the valid certificate shows the real site was reached (for example through a transparent proxy).".into());
            }
            return Some(v(Status::Ok, None, 0.95, reasons));
        }
        let Some(Some(control_req)) = control.response.http_request.as_ref().map(Some) else {
            return Some(Verdict::inconclusive(format!(
                "{h} answered HTTP {code}, but the control has no page to compare it with."
            )));
        };
        if let Some(Some(cf)) = control_http {
            if let Consistency::Inconsistent(_) = f.consistency {
                // The page came from a server the DNS should not have pointed to (e.g. a blockpage
                // server for a name that does not exist): the caller blames DNS.
                return Some(blocked(
                    Method::HttpDiff,
                    0.5,
                    vec![format!(
                        "{endpoint} answered HTTP {code}, while the control could not fetch {h} at all ({cf})."
                    )],
                ));
            }
            return Some(Verdict::inconclusive(format!(
                "{h} answered HTTP {code} to the probe, but the control failed to fetch it ({cf}), so the page cannot be compared."
            )));
        }
        let response = e.http?.response.as_ref()?;
        let diff = httpdiff::compare(response, control_req);
        if !diff.is_diff() {
            let mut reasons = vec![format!(
                "{h} answered HTTP {code} with the page the control saw ({}).",
                same_facets(&diff)
            )];
            let confidence = if let Consistency::Inconsistent(_) = f.consistency {
                reasons.push("The DNS answer differed from the control's, but the same page came back.".into());
                0.6
            } else {
                0.8
            };
            return Some(v(Status::Ok, None, confidence, reasons));
        }
        if let Some(what) = is_server_side_challenge(e) {
            return Some(Verdict::inconclusive(format!(
                "{h} answered the probe with a server-side challenge or denial page ({what}) that the control did not get: the site refused this client (CAPTCHA, bot or geo blocking), which is not network censorship."
            )));
        }
        let body = response.body.as_ref().and_then(|b| b.bytes());
        if let Some(fp) = body
            .as_deref()
            .and_then(|b| fps.match_body(b))
            .filter(|fp| fp.scope == Scope::Fp)
        {
            return Some(Verdict::inconclusive(format!(
                "{h} served a page matching {} ({}), which OONI lists as not censorship.",
                fp.name,
                scope_words(&fp.scope)
            )));
        }
        let mismatches = diff_facets(&diff);
        let confidence = (0.35 + 0.1 * mismatches.len() as f64).min(0.7);
        return Some(blocked(
            Method::HttpDiff,
            confidence,
            vec![format!(
                "{h} answered the probe over plain HTTP with a page unlike the control's: {}. No known blockpage matched; http-diff has false positives (dynamic pages, geo-targeted content).",
                mismatches.join(", ")
            )],
        ));
    }
    let failure = e.failure.as_ref()?;
    match e.step {
        Step::Http => Some(http_failure_verdict(f, e, failure, control_http)),
        Step::Tls => Some(tls_failure_verdict(f, e, failure, control_http)),
        Step::Tcp => Some(tcp_failure_verdict(f, e, failure, control_http)),
    }
}

fn same_facets(d: &httpdiff::HttpDiff) -> String {
    let mut s = Vec::new();
    if d.status_code_match == Some(true) {
        s.push("same status");
    }
    if d.body_length_match == Some(true) {
        s.push("similar length");
    }
    if d.headers_match == Some(true) {
        s.push("same uncommon headers");
    }
    if d.title_match == Some(true) {
        s.push("same title");
    }
    s.join(", ")
}

fn diff_facets(d: &httpdiff::HttpDiff) -> Vec<String> {
    let mut s = Vec::new();
    if d.status_code_match == Some(false) {
        s.push("a different status code".to_owned());
    }
    if let (Some(false), Some(p)) = (d.body_length_match, d.body_proportion) {
        s.push(format!("a body {:.0}% the size of the control's", p * 100.0));
    }
    if d.headers_match == Some(false) {
        s.push("different headers".to_owned());
    }
    if d.title_match == Some(false) {
        s.push("a different title".to_owned());
    }
    if s.is_empty() {
        s.push("nothing comparable".to_owned());
    }
    s
}

fn down(reason: String) -> Verdict {
    v(Status::Down, None, 0.8, vec![reason])
}

/// Coarse families of failures: two failures "look the same" when they are in one family.
fn family(f: &Failure) -> u8 {
    match f.kind() {
        FailureKind::Nxdomain | FailureKind::NoAnswer | FailureKind::DnsServer | FailureKind::DnsOther => 0,
        FailureKind::CertHostname | FailureKind::CertInvalid | FailureKind::TlsOther => 1,
        FailureKind::Refused | FailureKind::Reset | FailureKind::Eof | FailureKind::Unreachable => 2,
        FailureKind::Timeout => 3,
        FailureKind::Http => 4,
        FailureKind::Unknown => 5,
    }
}

/// `down` when the control failed the same way as the probe (DESIGN: down = the control fails
/// too); when it failed differently, nobody can tell whose fault it is.
fn down_if_same(what: String, probe: &Failure, control: &Failure) -> Verdict {
    // The test helper's `unknown_error` is its catch-all: it failed, reason unrecorded.
    if family(probe) == family(control) || control.kind() == FailureKind::Unknown {
        down(format!(
            "{what} ({probe}) and the control failed the same way ({control}): the site is down or broken."
        ))
    } else {
        Verdict::inconclusive(format!(
            "{what} ({probe}) and the control failed differently ({control}): censorwatch cannot tell whether the site or the network is at fault."
        ))
    }
}

fn http_failure_verdict(
    f: &Facts<'_>,
    e: &EndpointObs<'_>,
    failure: &Failure,
    control_http: Option<Option<&Failure>>,
) -> Verdict {
    let h = host(f);
    let url = e
        .http
        .and_then(|r| r.request.as_ref())
        .and_then(|r| r.url.as_deref())
        .unwrap_or("the page");
    if failure.is_dns() {
        return blocked(
            dns_failure_method(failure),
            0.7,
            vec![format!(
                "Resolving the host of {url} failed ({failure}) after a redirect, while the control fetched {h}."
            )],
        );
    }
    match control_http {
        None => Verdict::inconclusive(format!(
            "Fetching {url} failed ({failure}) and the control has no HTTP result to compare."
        )),
        Some(Some(cf)) => down_if_same(format!("Fetching {url} failed"), failure, cf),
        Some(None) => {
            let method = match failure.kind() {
                FailureKind::Reset => Method::HttpReset,
                FailureKind::Eof => Method::HttpEof,
                FailureKind::Timeout => Method::HttpTimeout,
                FailureKind::Refused => Method::TcpRefused,
                FailureKind::CertHostname | FailureKind::CertInvalid => Method::TlsCertMismatch,
                _ => {
                    return Verdict::inconclusive(format!(
                        "Fetching {url} failed ({failure}) while the control fetched {h}: this failure is the server's or the probe's, not a known censorship technique."
                    ));
                }
            };
            let mut reasons = vec![format!(
                "Fetching {url} failed ({failure}) while the control succeeded."
            )];
            if method == Method::HttpTimeout {
                reasons.push("A timeout after the connection was set up can also be throttling; only a throughput test can tell.".into());
            }
            blocked(method, 0.75, reasons)
        }
    }
}

fn tls_failure_verdict(
    f: &Facts<'_>,
    e: &EndpointObs<'_>,
    failure: &Failure,
    control_http: Option<Option<&Failure>>,
) -> Verdict {
    let h = host(f);
    let endpoint = e.endpoint.as_deref().unwrap_or("the server");
    let sni = e.tls.and_then(|t| t.server_name.as_deref()).unwrap_or(&h);
    let method = match failure.kind() {
        FailureKind::Reset => Method::TlsReset,
        FailureKind::Timeout => Method::TlsTimeout,
        FailureKind::Eof => Method::TlsEof,
        FailureKind::CertHostname | FailureKind::CertInvalid => Method::TlsCertMismatch,
        _ => Method::TlsReset,
    };
    // SNI A/B: the same address with a decoy name.
    if let Some(decoy) = f.observations.iter().find_map(|o| {
        let t = o.tls?;
        (o.ip == e.ip && t.failure.is_none() && t.server_name.as_deref().is_some_and(|s| s != sni))
            .then(|| t.server_name.clone().unwrap_or_default())
    }) {
        return blocked(
            method,
            0.95,
            vec![
                format!("The TLS handshake with {endpoint} for SNI {sni} failed ({failure})."),
                format!(
                    "The same address completed a handshake for the decoy SNI {decoy}: the name, not the address, is filtered (SNI filtering)."
                ),
            ],
        );
    }
    let control_tls = e.endpoint.as_deref().and_then(|ep| f.control.and_then(|c| c.tls(ep)));
    match (control_tls, control_http) {
        (Some(Some(cf)), _) | (None, Some(Some(cf))) => down_if_same(
            format!("The TLS handshake with {endpoint} for {sni} failed"),
            failure,
            cf,
        ),
        (Some(None), _) => blocked(
            method,
            0.85,
            vec![format!(
                "The TLS handshake with {endpoint} for {sni} failed ({failure}) while the control completed it with the same address."
            )],
        ),
        (None, Some(None)) => blocked(
            method,
            0.7,
            vec![format!(
                "The TLS handshake with {endpoint} for {sni} failed ({failure}) while the control fetched {h}."
            )],
        ),
        (None, None) => Verdict::inconclusive(format!(
            "The TLS handshake with {endpoint} failed ({failure}) and the control has nothing to compare."
        )),
    }
}

fn tcp_failure_verdict(
    f: &Facts<'_>,
    e: &EndpointObs<'_>,
    failure: &Failure,
    control_http: Option<Option<&Failure>>,
) -> Verdict {
    let h = host(f);
    let endpoint = e.endpoint.as_deref().unwrap_or("the server");
    let method = match failure.kind() {
        FailureKind::Refused => Method::TcpRefused,
        FailureKind::Reset | FailureKind::Eof => Method::TcpReset,
        _ => Method::TcpTimeout,
    };
    let control_tcp = e.endpoint.as_deref().and_then(|ep| f.control.and_then(|c| c.tcp(ep)));
    match (control_tcp, control_http) {
        (Some(Some(cf)), _) => down_if_same(format!("Connecting to {endpoint} failed"), failure, cf),
        (Some(None), _) => blocked(
            method,
            if method == Method::TcpTimeout { 0.75 } else { 0.8 },
            vec![format!(
                "Connecting to {endpoint} failed ({failure}) while the control connected to the same address."
            )],
        ),
        (None, Some(None)) => blocked(
            method,
            0.6,
            vec![format!(
                "Connecting to {endpoint} failed ({failure}) while the control fetched {h}."
            )],
        ),
        (None, Some(Some(cf))) => down_if_same(format!("Connecting to {endpoint} failed"), failure, cf),
        (None, None) => Verdict::inconclusive(format!(
            "Connecting to {endpoint} failed ({failure}) and the control has nothing to compare."
        )),
    }
}

fn lookup_verdict(f: &Facts<'_>, l: &Lookup) -> Verdict {
    let h = if l.hostname.is_empty() {
        host(f)
    } else {
        l.hostname.clone()
    };
    let failure = l.failure.clone().unwrap_or(Failure::DnsNoAnswer);
    let method = dns_failure_method(&failure);
    let control_dns = if l.depth == 0 {
        f.control.and_then(|c| c.dns())
    } else {
        None
    };
    match control_dns {
        Some(Err(cf)) => down(format!(
            "The DNS lookup of {h} failed ({failure}) and the control's failed too ({cf}): the name does not resolve anywhere."
        )),
        Some(Ok(addrs)) if addrs.is_empty() => down(format!(
            "The DNS lookup of {h} failed ({failure}) and the control got no addresses either."
        )),
        Some(Ok(addrs)) => {
            let mut reasons = vec![format!(
                "The probe's DNS lookup of {h} failed ({failure}) while the control resolved it to {}.",
                addrs.join(", ")
            )];
            let mut confidence = match method {
                Method::DnsNxdomain => 0.9,
                Method::DnsTimeout => 0.75,
                _ => 0.8,
            };
            if let Some(doh) = f.doh_resolved() {
                reasons.push(format!(
                    "An encrypted (DoH) lookup from the same network resolved it to {}: the probe's resolver is the one interfering.",
                    list(&doh.addrs)
                ));
                confidence = f64::min(confidence + 0.05, 0.95);
            }
            blocked(method, confidence, reasons)
        }
        None => match f.control.and_then(|c| c.http_failure()) {
            Some(None) => blocked(
                method,
                0.7,
                vec![format!(
                    "The DNS lookup of {h} failed ({failure}) after a redirect, while the control fetched the site."
                )],
            ),
            _ => Verdict::inconclusive(format!(
                "The DNS lookup of {h} failed ({failure}) and the control has nothing to compare."
            )),
        },
    }
}
