//! Instant-messaging tests: Telegram (ts-020), WhatsApp (ts-018), Signal (ts-029) and Facebook
//! Messenger (ts-019). Each checks several endpoints of one service; the rules decide which
//! failures stop the app from working and guard against an offline probe.

use super::{
    Connect, Request, Step, blocked, bool_at, common_method, connects, failure_at, list, method_for, network_answered,
    offline_reason, ok, requests, started_on_or_after, str_at, unclear, unusable, version_lt,
};
use censorwatch_model::{Failure, Measurement, Method, Verdict};
use serde_json::Value;

/// A failed piece of an app test, kept for the verdict.
struct Failed {
    /// What failed, for the reasons.
    what: String,
    /// The failure string, if there is one.
    failure: Option<Failure>,
    /// Where it failed.
    step: Step,
}

/// Splits failed pieces into evidence and notes: pieces without a failure string, or with a
/// failure that is not a network failure, are not evidence.
fn usable_failures(pieces: &[Failed], notes: &mut Vec<String>) -> Vec<(Failure, Step)> {
    let mut evidence = Vec::new();
    for p in pieces {
        match &p.failure {
            Some(f) => match unusable(f) {
                Some(why) => notes.push(format!("{} failed with {f}, but {why}", p.what)),
                None => evidence.push((f.clone(), p.step)),
            },
            None => notes.push(format!(
                "the probe marked {} as blocked without recording any failure",
                p.what
            )),
        }
    }
    evidence
}

/// Telegram (ooni/spec `ts-020-telegram.md`; fastpath `score_measurement_telegram`).
///
/// - Access points: blocked only when *every* TCP connection to them failed (ts-020: "If all TCP
///   connections on ports 80 and 443 to Telegram's access point IPs fail we consider Telegram to
///   be blocked"); the app falls back between them, so some failing is not blocking. Fastpath
///   instead adds the failing share to its score.
/// - HTTP to the access points: blocked when connections worked but no request got a response
///   (ts-020: "If at least an HTTP request returns back a response, we consider Telegram to not be
///   blocked").
/// - Telegram Web: blocked when `telegram_web_status` is `blocked` *with* a failure string; the
///   page-title heuristic of older probes, which produced blocked-without-failure, was dropped by
///   OONI for false positives (probe-cli#999).
pub(super) fn telegram(_m: &Measurement, tk: &Value) -> Verdict {
    let dcs = connects(tk.get("tcp_connect"));
    let reqs = requests(tk);
    let is_web = |r: &Request<'_>| r.host().is_some_and(|h| h == "web.telegram.org");
    let web_status = str_at(tk, "telegram_web_status");
    if dcs.is_empty() && reqs.is_empty() && web_status.is_none() {
        return unclear(vec![
            "the Telegram measurement has no TCP connections, HTTP requests or web status to judge".into(),
        ]);
    }

    let mut failed: Vec<Failed> = Vec::new();
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let mut method_order: Vec<Vec<(Failure, Step)>> = Vec::new();

    // Access points over TCP.
    let dc_ok = dcs.iter().filter(|c| c.succeeded() == Some(true)).count();
    let dc_bad: Vec<&Connect> = dcs.iter().filter(|c| c.succeeded() == Some(false)).collect();
    let dcs_blocked = dc_ok == 0 && !dc_bad.is_empty();
    if dcs_blocked {
        let pieces: Vec<Failed> = dc_bad
            .iter()
            .map(|c| Failed {
                what: format!("access point {}", c.endpoint),
                failure: c.failure.clone(),
                step: Step::Tcp,
            })
            .collect();
        let ev = usable_failures(&pieces, &mut notes);
        if !ev.is_empty() {
            reasons.push(format!(
                "all {} TCP connections to Telegram's access points failed ({}), so the Telegram app cannot connect",
                dc_bad.len(),
                list(&describe_connects(&dc_bad), 4)
            ));
            method_order.push(ev);
        }
        failed.extend(pieces);
    } else if !dc_bad.is_empty() {
        notes.push(format!(
            "{} of {} TCP connections to Telegram's access points failed ({}), but the app falls back to the \
             ones that worked",
            dc_bad.len(),
            dc_bad.len() + dc_ok,
            list(&describe_connects(&dc_bad), 3)
        ));
    }

    // HTTP to the access points.
    let dc_reqs: Vec<&Request<'_>> = reqs.iter().filter(|r| !is_web(r)).collect();
    let dc_http_ok = dc_reqs
        .iter()
        .filter(|r| r.failure.is_none() && r.response.is_some())
        .count();
    if dc_ok > 0 && !dc_reqs.is_empty() && dc_http_ok == 0 {
        let pieces: Vec<Failed> = dc_reqs
            .iter()
            .filter(|r| r.failure.is_some())
            .map(|r| Failed {
                what: r.describe(),
                failure: r.failure.clone(),
                step: Step::HttpPlain,
            })
            .collect();
        let ev = usable_failures(&pieces, &mut notes);
        if !ev.is_empty() {
            reasons.push(format!(
                "TCP connections to the access points worked but none of the {} HTTP requests to them got a \
                 response ({})",
                dc_reqs.len(),
                list(&pieces.iter().map(piece_text).collect::<Vec<_>>(), 3)
            ));
            method_order.push(ev);
        }
        failed.extend(pieces);
    }

    // Telegram Web.
    let web_reqs: Vec<&Request<'_>> = reqs.iter().filter(|r| is_web(r)).collect();
    let web_https_failure = web_reqs
        .iter()
        .find(|r| r.url.is_some_and(|u| u.starts_with("https:")))
        .and_then(|r| r.failure.clone());
    let web_failure = failure_at(tk, "telegram_web_failure").or(web_https_failure.clone());
    let web_blocked = match web_status {
        Some("blocked") => true,
        Some(_) => false,
        None => web_https_failure.is_some(),
    };
    let mut web_known = web_status.is_some() || !web_reqs.is_empty();
    if web_blocked {
        let piece = Failed {
            what: "Telegram Web (web.telegram.org)".into(),
            failure: web_failure,
            step: Step::Https,
        };
        let ev = usable_failures(std::slice::from_ref(&piece), &mut notes);
        if !ev.is_empty() {
            let failure = piece.failure.as_ref().map(Failure::as_str).unwrap_or("");
            reasons.push(format!(
                "Telegram Web (https://web.telegram.org/) could not be loaded: {failure}"
            ));
            method_order.push(ev);
        } else {
            web_known = false;
        }
        failed.push(piece);
    }

    if !method_order.is_empty() {
        if !network_answered(tk) {
            let mut r = vec![offline_reason("Telegram connection")];
            r.extend(failed.iter().take(4).map(piece_text));
            return unclear(r);
        }
        let method = method_order.iter().find_map(|ev| common_method(ev));
        let confidence = if dcs_blocked { 0.9 } else { 0.75 };
        reasons.extend(notes);
        return blocked(method, confidence, reasons);
    }
    if dcs.is_empty() && !web_known {
        notes.insert(
            0,
            "the measurement has neither access-point connections nor a usable Telegram Web result".into(),
        );
        return unclear(notes);
    }
    let mut r = Vec::new();
    if dc_ok > 0 {
        r.push(format!("{dc_ok} TCP connections to Telegram's access points worked"));
    }
    if web_known && !web_blocked {
        r.push("Telegram Web loaded".into());
    }
    if r.is_empty() {
        r.push("nothing in the Telegram measurement failed as a blocked network would make it".into());
    }
    r.extend(notes);
    ok(0.8, r)
}

/// `ip:port: failure` for each failed connection.
fn describe_connects(cs: &[&Connect]) -> Vec<String> {
    cs.iter()
        .map(|c| match &c.failure {
            Some(f) => format!("{}: {f}", c.endpoint),
            None => c.endpoint.clone(),
        })
        .collect()
}

/// `what: failure`.
fn piece_text(p: &Failed) -> String {
    match &p.failure {
        Some(f) => format!("{}: {f}", p.what),
        None => format!("{}: no failure recorded", p.what),
    }
}

/// One of WhatsApp's three services, as measured.
enum Part {
    /// Not measured, or the data does not say.
    Unknown,
    /// Worked.
    Ok,
    /// Failed.
    Failed(Vec<Failed>),
}

/// WhatsApp (ooni/spec `ts-018-whatsapp.md`; fastpath `score_measurement_whatsapp`).
///
/// - Endpoints: blocked when no TCP connection to any `eN.whatsapp.net` endpoint worked (ts-018:
///   the app tries them "until one succeeds").
/// - Registration: the GET of `https://v.whatsapp.net/v2/register` failed with a DNS, TCP, TLS or
///   I/O error (ts-018 ignores the status code).
/// - WhatsApp Web: the GET of `https://web.whatsapp.com/` failed with a network error. Like
///   fastpath, the plain-HTTP redirect check and HTTP status errors (`http_unexpected_status_code`)
///   are not evidence: ts-018 itself notes WhatsApp may answer 400 to the probe.
///
/// Recomputed from `tcp_connect` and `requests` when present, falling back to the `*_status`
/// keys (with their failure strings) otherwise.
pub(super) fn whatsapp(_m: &Measurement, tk: &Value) -> Verdict {
    let eps = connects(tk.get("tcp_connect"));
    let reqs = requests(tk);
    let mut notes = Vec::new();

    let endpoints = if !eps.is_empty() {
        if eps.iter().any(|c| c.succeeded() == Some(true)) {
            Part::Ok
        } else {
            let named: Vec<String> = arr_strings(tk, "whatsapp_endpoints_blocked");
            let bad: Vec<&Connect> = eps.iter().filter(|c| c.succeeded() == Some(false)).collect();
            if bad.is_empty() {
                Part::Unknown
            } else {
                let what = if named.is_empty() {
                    "WhatsApp endpoint".to_owned()
                } else {
                    format!("WhatsApp endpoint ({})", list(&named, 4))
                };
                Part::Failed(
                    bad.iter()
                        .map(|c| Failed {
                            what: format!("{what} {}", c.endpoint),
                            failure: c.failure.clone(),
                            step: Step::Tcp,
                        })
                        .collect(),
                )
            }
        }
    } else {
        match str_at(tk, "whatsapp_endpoints_status") {
            Some("ok") => Part::Ok,
            Some("blocked") => Part::Failed(vec![Failed {
                what: format!(
                    "the WhatsApp endpoints ({})",
                    list(&arr_strings(tk, "whatsapp_endpoints_blocked"), 4)
                ),
                failure: None,
                step: Step::Tcp,
            }]),
            _ => Part::Unknown,
        }
    };

    let registration = match reqs
        .iter()
        .find(|r| r.url.is_some_and(|u| u.contains("v.whatsapp.net/v2/register")))
    {
        Some(r) => match &r.failure {
            None => Part::Ok,
            Some(f) => Part::Failed(vec![Failed {
                what: r.describe(),
                failure: Some(f.clone()),
                step: Step::Https,
            }]),
        },
        None => match str_at(tk, "registration_server_status") {
            Some("ok") => Part::Ok,
            Some("blocked") => Part::Failed(vec![Failed {
                what: "the registration server (https://v.whatsapp.net/v2/register)".into(),
                failure: failure_at(tk, "registration_server_failure"),
                step: Step::Https,
            }]),
            _ => Part::Unknown,
        },
    };

    let web_https = reqs
        .iter()
        .find(|r| r.url.is_some_and(|u| u.starts_with("https://web.whatsapp.com")));
    let web_failure = match web_https {
        Some(r) => Some(r.failure.clone()),
        None => match str_at(tk, "whatsapp_web_status") {
            Some("ok") => Some(None),
            Some("blocked") => Some(failure_at(tk, "whatsapp_web_failure")),
            _ => None,
        },
    };
    let web = match web_failure {
        None => Part::Unknown,
        Some(None) if web_https.is_none() && str_at(tk, "whatsapp_web_status") == Some("blocked") => {
            notes.push("the probe marked WhatsApp Web as blocked without recording any failure".into());
            Part::Unknown
        }
        Some(None) => Part::Ok,
        Some(Some(f)) if f.kind() == censorwatch_model::FailureKind::Http => {
            notes.push(format!(
                "WhatsApp Web answered with an unexpected HTTP status ({f}); that is the server's answer, not a \
                 network failure"
            ));
            Part::Ok
        }
        Some(Some(f)) => Part::Failed(vec![Failed {
            what: "WhatsApp Web (https://web.whatsapp.com/)".into(),
            failure: Some(f),
            step: Step::Https,
        }]),
    };

    let parts = [
        ("endpoints", &endpoints, 0.9),
        ("registration", &registration, 0.8),
        ("web", &web, 0.7),
    ];
    if parts.iter().all(|(_, p, _)| matches!(p, Part::Unknown)) {
        notes.insert(
            0,
            "the WhatsApp measurement says nothing usable about the endpoints, registration or web".into(),
        );
        return unclear(notes);
    }

    let mut reasons = Vec::new();
    let mut method = None;
    let mut confidence: f64 = 0.0;
    let mut all_failed = Vec::new();
    for (name, part, conf) in parts {
        if let Part::Failed(pieces) = part {
            let ev = usable_failures(pieces, &mut notes);
            if ev.is_empty() {
                continue;
            }
            let text = list(&pieces.iter().map(piece_text).collect::<Vec<_>>(), 3);
            reasons.push(match name {
                "endpoints" => format!(
                    "no TCP connection to any of the {} WhatsApp endpoints worked ({text}), so the app cannot send \
                     or receive messages",
                    pieces.len()
                ),
                "registration" => format!("WhatsApp's registration server could not be reached: {text}"),
                _ => format!("WhatsApp Web could not be loaded: {text}"),
            });
            if method.is_none() {
                method = common_method(&ev);
            }
            confidence = confidence.max(conf);
            all_failed.extend(pieces.iter().map(piece_text));
        }
    }
    if !reasons.is_empty() {
        if !network_answered(tk) {
            let mut r = vec![offline_reason("WhatsApp connection")];
            r.extend(all_failed.into_iter().take(4));
            return unclear(r);
        }
        reasons.extend(notes);
        return blocked(method, confidence, reasons);
    }
    let mut r = Vec::new();
    for (name, part, _) in parts {
        if matches!(part, Part::Ok) {
            r.push(match name {
                "endpoints" => "at least one WhatsApp endpoint accepted a TCP connection".to_owned(),
                "registration" => "WhatsApp's registration server answered".to_owned(),
                _ => "WhatsApp Web loaded".to_owned(),
            });
        }
    }
    r.extend(notes);
    let measured = parts.iter().filter(|(_, p, _)| matches!(p, Part::Ok)).count();
    ok(if measured == 3 { 0.85 } else { 0.6 }, r)
}

/// The strings in the array at `key`.
fn arr_strings(v: &Value, key: &str) -> Vec<String> {
    super::arr(v, key)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Known windows in which the Signal test's endpoint list or CA was stale, so its "blocked" says
/// nothing (ts-029 "Data analysis considerations"; fastpath `score_signal`).
fn signal_known_bad(m: &Measurement) -> Option<String> {
    let tv = m.test_version.as_deref().unwrap_or("0.0.0");
    let engine = m
        .annotations
        .as_ref()
        .and_then(|a| a.get("engine_version"))
        .and_then(Value::as_str)
        .unwrap_or("0.0.0");
    if tv == "0.2.4" {
        return Some(format!(
            "Signal test version {tv} measured endpoints Signal had retired, so its results cannot be trusted \
             (ooni/probe#2636)"
        ));
    }
    if !version_lt("0.2.3", tv) && started_on_or_after(m, "2023-11-07") == Some(true) {
        return Some(format!(
            "Signal test version {tv} is known to report false failures after 2023-11-07 (ooni/probe#2627)"
        ));
    }
    if version_lt(tv, "0.2.2") && started_on_or_after(m, "2022-10-19") == Some(true) {
        return Some(format!(
            "Signal test version {tv} did not know Signal's new root certificate after 2022-10-19, so its \
             results cannot be trusted (ooni/spec ts-029, ooni/probe#2344)"
        ));
    }
    if version_lt(engine, "3.17.2") && started_on_or_after(m, "2023-05-02") == Some(true) {
        return Some(format!(
            "probe engine {engine} still tested api.directory.signal.org, which Signal retired in May 2023, so \
             its results cannot be trusted (ooni/probe#2477, ooni/backend#679)"
        ));
    }
    None
}

/// Signal (ooni/spec `ts-029-signal.md`; fastpath `score_signal`).
///
/// `signal_backend_status` `blocked` with a network failure is blocking (ts-029: "If the
/// connection to any of the signal server endpoints fails"); `ok` is ok. Measurements from probe
/// versions OONI knows to be wrong are inconclusive, as in fastpath, and so is a measurement
/// whose experiment failed as a whole (`failure`/`failed_operation` set).
pub(super) fn signal(m: &Measurement, tk: &Value) -> Verdict {
    if let Some(why) = signal_known_bad(m) {
        return unclear(vec![why]);
    }
    if let Some(f) = failure_at(tk, "failure") {
        return unclear(vec![format!(
            "the Signal experiment itself failed ({f}), so it measured nothing"
        )]);
    }
    let reqs = requests(tk);
    let failing: Vec<&Request<'_>> = reqs.iter().filter(|r| r.failure.is_some()).collect();
    match str_at(tk, "signal_backend_status") {
        Some("ok") => {
            let mut r = vec!["all of Signal's server endpoints answered over TLS".to_owned()];
            if !reqs.is_empty() {
                r[0] = format!(
                    "all {} requests to Signal's server endpoints got a response",
                    reqs.len()
                );
            }
            ok(0.85, r)
        }
        Some("blocked") => {
            let failure =
                failure_at(tk, "signal_backend_failure").or_else(|| failing.first().and_then(|r| r.failure.clone()));
            let Some(failure) = failure else {
                return unclear(vec![
                    "the probe marked Signal as blocked without recording any failure".into(),
                ]);
            };
            if let Some(why) = unusable(&failure) {
                return unclear(vec![format!(
                    "Signal's servers could not be reached ({failure}), but {why}"
                )]);
            }
            if !network_answered(tk) {
                return unclear(vec![
                    offline_reason("Signal connection"),
                    format!("the failure was {failure}"),
                ]);
            }
            let named: Vec<String> = failing
                .iter()
                .map(|r| {
                    format!(
                        "{}: {}",
                        r.describe(),
                        r.failure.as_ref().map(Failure::as_str).unwrap_or("")
                    )
                })
                .collect();
            let mut reasons = vec![if named.is_empty() {
                format!("a connection to Signal's servers failed: {failure}")
            } else {
                format!("requests to Signal's servers failed: {}", list(&named, 4))
            }];
            if failing.len() < reqs.len() {
                reasons.push(format!(
                    "{} of {} Signal endpoints answered",
                    reqs.len() - failing.len(),
                    reqs.len()
                ));
            }
            let ev: Vec<(Failure, Step)> = std::iter::once((failure.clone(), Step::Https))
                .chain(
                    failing
                        .iter()
                        .filter_map(|r| r.failure.clone())
                        .map(|f| (f, Step::Https)),
                )
                .collect();
            blocked(
                method_for(&failure, Step::Https).or_else(|| common_method(&ev)),
                0.8,
                reasons,
            )
        }
        _ => unclear(vec![
            "the Signal measurement has no signal_backend_status to judge".into(),
        ]),
    }
}

/// Facebook Messenger's endpoints: report key, hostname.
const FB_ENDPOINTS: &[(&str, &str)] = &[
    ("b_api", "b-api.facebook.com"),
    ("b_graph", "b-graph.facebook.com"),
    ("edge", "edge-mqtt.facebook.com"),
    ("external_cdn", "external.xx.fbcdn.net"),
    ("scontent_cdn", "scontent.xx.fbcdn.net"),
    ("star", "star.c10r.facebook.com"),
    ("stun", "stun.fbsbx.com"),
];

/// `facebook_<ep>_<suffix>`, or the `facebook-<ep>-<suffix>` spelling of versions ≤ 0.3.0.
fn fb_key(tk: &Value, ep: &str, suffix: &str) -> Option<bool> {
    bool_at(tk, &format!("facebook_{ep}_{suffix}")).or_else(|| {
        bool_at(
            tk,
            &format!("facebook-{}-{}", ep.replace('_', "-"), suffix.replace('_', "-")),
        )
    })
}

/// Facebook Messenger (ooni/spec `ts-019-facebook-messenger.md`; fastpath
/// `score_measurement_facebook_messenger`).
///
/// An endpoint fails when its DNS answer is outside Facebook's network (`*_dns_consistent`
/// false: DNS tampering) or TCP connections to it failed (`*_reachable` false). Any failing
/// endpoint is blocking; one alone gets lower confidence (fastpath needs two "false" keys for an
/// anomaly). The summary keys `facebook_dns_blocking`/`facebook_tcp_blocking` are not used:
/// fastpath notes probes that set `facebook_dns_blocking` with every endpoint consistent.
pub(super) fn facebook_messenger(_m: &Measurement, tk: &Value) -> Verdict {
    let mut seen = false;
    let mut dns_bad = Vec::new();
    let mut tcp_bad = Vec::new();
    let mut good = 0usize;
    for (ep, host) in FB_ENDPOINTS {
        let dns = fb_key(tk, ep, "dns_consistent");
        let tcp = fb_key(tk, ep, "reachable");
        seen |= dns.is_some() || tcp.is_some();
        if dns == Some(false) {
            dns_bad.push((*host).to_owned());
        } else if tcp == Some(false) {
            tcp_bad.push((*host).to_owned());
        } else if dns == Some(true) || tcp == Some(true) {
            good += 1;
        }
    }
    if !seen {
        return unclear(vec![
            "the Facebook Messenger measurement has no per-endpoint DNS or TCP results".into(),
        ]);
    }
    let failing = dns_bad.len() + tcp_bad.len();
    if failing == 0 {
        return ok(
            0.85,
            vec![format!(
                "all {good} Facebook Messenger endpoints resolved inside Facebook's network, and every TCP connection \
             to them worked"
            )],
        );
    }
    let tcp_failures: Vec<(Failure, Step)> = connects(tk.get("tcp_connect"))
        .into_iter()
        .filter(|c| c.succeeded() == Some(false))
        .filter_map(|c| c.failure)
        .map(|f| (f, Step::Tcp))
        .collect();
    let mut reasons = Vec::new();
    if !dns_bad.is_empty() {
        reasons.push(format!(
            "DNS answers for {} pointed outside Facebook's network (AS32934), a sign of DNS tampering",
            list(&dns_bad, 4)
        ));
    }
    if !tcp_bad.is_empty() {
        let detail = if tcp_failures.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                list(&tcp_failures.iter().map(|(f, _)| f.to_string()).collect::<Vec<_>>(), 3)
            )
        };
        reasons.push(format!(
            "TCP connections to {} on port 443 failed{detail}",
            list(&tcp_bad, 4)
        ));
    }
    if dns_bad.is_empty() && good == 0 && !network_answered(tk) {
        reasons.insert(0, offline_reason("Facebook Messenger connection"));
        return unclear(reasons);
    }
    if good > 0 {
        reasons.push(format!("{good} other endpoints worked"));
    }
    let method = if !dns_bad.is_empty() {
        Some(Method::DnsSpoofed)
    } else {
        common_method(&tcp_failures)
    };
    blocked(method, if failing >= 2 { 0.85 } else { 0.6 }, reasons)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{mentions, run};
    use super::super::verdict;
    use censorwatch_model::{Measurement, Method, Status, Verdict};
    use serde_json::{Value, json};

    fn run_with(test: &str, envelope: Value) -> Verdict {
        let m = Measurement::from_slice(envelope.to_string().as_bytes()).unwrap();
        let k = m.test_keys_value().unwrap();
        verdict(test, &m, &k)
    }

    fn tcp(ip: &str, port: u16, failure: Option<&str>) -> Value {
        json!({"ip": ip, "port": port, "status": {"success": failure.is_none(), "failure": failure}})
    }

    fn req(url: &str, failure: Option<&str>) -> Value {
        let response = if failure.is_none() {
            json!({"code": 200, "body": ""})
        } else {
            Value::Null
        };
        json!({"request": {"url": url, "method": "GET"}, "failure": failure, "response": response})
    }

    #[test]
    fn telegram_all_access_points_failing_is_blocked() {
        let v = run(
            "telegram",
            json!({
                "tcp_connect": [tcp("149.154.175.50", 443, Some("generic_timeout_error")), tcp("149.154.167.51", 80, Some("generic_timeout_error"))],
                "requests": [req("https://web.telegram.org/", None)],
                "telegram_web_status": "ok", "telegram_web_failure": null,
            }),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TcpTimeout));
        assert_eq!(v.accessible, Some(false));
        assert!(
            mentions(&v, "149.154.175.50:443: generic_timeout_error"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn telegram_some_access_points_failing_is_ok() {
        let v = run(
            "telegram",
            json!({
                "tcp_connect": [tcp("149.154.175.50", 443, Some("connection_reset")), tcp("149.154.167.51", 80, None)],
                "telegram_web_status": "ok",
            }),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert!(
            mentions(&v, "149.154.175.50:443"),
            "the partial failure is still reported: {:?}",
            v.reasons
        );
    }

    #[test]
    fn telegram_everything_timing_out_without_any_answer_is_inconclusive() {
        let v = run(
            "telegram",
            json!({
                "tcp_connect": [tcp("149.154.175.50", 443, Some("generic_timeout_error")), tcp("149.154.167.51", 80, Some("generic_timeout_error"))],
                "requests": [req("https://web.telegram.org/", Some("generic_timeout_error"))],
                "queries": [{"hostname": "web.telegram.org", "failure": "generic_timeout_error", "answers": null}],
                "telegram_web_status": "blocked", "telegram_web_failure": "generic_timeout_error",
            }),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "offline"), "{:?}", v.reasons);
    }

    #[test]
    fn telegram_web_only_blocked_names_the_failure() {
        let v = run(
            "telegram",
            json!({
                "tcp_connect": [tcp("149.154.167.51", 443, None)],
                "requests": [req("https://web.telegram.org/", Some("connection_reset")), req("http://149.154.167.51:443", None)],
                "telegram_web_status": "blocked", "telegram_web_failure": "connection_reset",
            }),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TlsReset));
        assert!(mentions(&v, "connection_reset"), "{:?}", v.reasons);
    }

    #[test]
    fn telegram_http_to_access_points_failing_is_blocked() {
        let v = run(
            "telegram",
            json!({
                "tcp_connect": [tcp("149.154.167.51", 80, None)],
                "requests": [req("http://149.154.167.51:80", Some("connection_reset")), req("https://web.telegram.org/", None)],
                "telegram_web_status": "ok",
            }),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::HttpReset));
        assert!(
            mentions(&v, "http://149.154.167.51:80: connection_reset"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn telegram_web_blocked_without_failure_is_not_evidence() {
        let v = run(
            "telegram",
            json!({"tcp_connect": [tcp("149.154.167.51", 80, None)], "telegram_web_status": "blocked", "telegram_web_failure": null}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert!(mentions(&v, "without recording any failure"), "{:?}", v.reasons);
        let v = run("telegram", json!({"agent": "redirect"}));
        assert_eq!(v.status, Status::Inconclusive);
    }

    fn whatsapp_keys(endpoint_failure: Option<&str>, register: Option<&str>, web: Option<&str>) -> Value {
        json!({
            "tcp_connect": [tcp("157.240.1.1", 443, endpoint_failure), tcp("157.240.1.1", 5222, endpoint_failure)],
            "requests": [req("https://v.whatsapp.net/v2/register", register), req("https://web.whatsapp.com/", web), req("http://web.whatsapp.com/", None)],
            "queries": [{"hostname": "e1.whatsapp.net", "failure": null, "answers": [{"ipv4": "157.240.1.1"}]}],
            "whatsapp_endpoints_blocked": ["e1.whatsapp.net"],
        })
    }

    #[test]
    fn whatsapp_rules() {
        let v = run("whatsapp", whatsapp_keys(None, None, None));
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert_eq!(v.accessible, Some(true));

        let v = run("whatsapp", whatsapp_keys(Some("connection_refused"), None, None));
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TcpRefused));
        assert!(mentions(&v, "157.240.1.1:5222: connection_refused"), "{:?}", v.reasons);

        let v = run("whatsapp", whatsapp_keys(None, Some("dns_nxdomain_error"), None));
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::DnsNxdomain));
        assert!(
            mentions(&v, "https://v.whatsapp.net/v2/register: dns_nxdomain_error"),
            "{:?}",
            v.reasons
        );

        // An HTTP status error from WhatsApp Web is the server's answer, not blocking.
        let mut keys = whatsapp_keys(None, None, None);
        keys["whatsapp_web_status"] = json!("blocked");
        keys["whatsapp_web_failure"] = json!("http_unexpected_status_code");
        keys["requests"] = json!([req("https://v.whatsapp.net/v2/register", None)]);
        let v = run("whatsapp", keys);
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert!(mentions(&v, "http_unexpected_status_code"), "{:?}", v.reasons);

        // unknown_failure is not evidence.
        let v = run(
            "whatsapp",
            whatsapp_keys(None, Some("unknown_failure: 'ascii' codec"), None),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert!(mentions(&v, "could not classify"), "{:?}", v.reasons);

        let v = run("whatsapp", json!({"agent": "redirect", "requests": null}));
        assert_eq!(v.status, Status::Inconclusive);
    }

    fn signal_envelope(test_version: &str, engine: &str, start: &str, status: &str, failure: Option<&str>) -> Value {
        json!({
            "test_name": "signal", "test_version": test_version, "measurement_start_time": start,
            "annotations": {"engine_version": engine},
            "test_keys": {
                "failure": null, "failed_operation": null,
                "requests": [req("https://cdn.signal.org/", failure), req("https://storage.signal.org/", None)],
                "signal_backend_status": status, "signal_backend_failure": failure,
            }
        })
    }

    #[test]
    fn signal_rules() {
        let v = run_with(
            "signal",
            signal_envelope("0.2.2", "3.16.5", "2022-11-18 10:44:20", "ok", None),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");

        let v = run_with(
            "signal",
            signal_envelope(
                "0.2.2",
                "3.16.5",
                "2022-11-18 10:44:20",
                "blocked",
                Some("connection_reset"),
            ),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TlsReset));
        assert!(
            mentions(&v, "https://cdn.signal.org/: connection_reset"),
            "{:?}",
            v.reasons
        );

        // Known-bad probe versions (fastpath score_signal, ts-029).
        let v = run_with(
            "signal",
            signal_envelope(
                "0.2.0",
                "3.14.1",
                "2022-10-27 00:03:16",
                "blocked",
                Some("ssl_unknown_authority"),
            ),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "2344"), "{:?}", v.reasons);
        let v = run_with(
            "signal",
            signal_envelope(
                "0.2.2",
                "3.17.1",
                "2023-05-30 18:08:35",
                "blocked",
                Some("android_dns_cache_no_data"),
            ),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "3.17.1"), "{:?}", v.reasons);
        let v = run_with(
            "signal",
            signal_envelope("0.2.4", "3.21.0", "2024-03-01 00:00:00", "ok", None),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");

        let v = run("signal", json!({"failure": null}));
        assert_eq!(v.status, Status::Inconclusive);
    }

    #[test]
    fn facebook_messenger_rules() {
        let mut keys = json!({});
        for ep in [
            "b_api",
            "b_graph",
            "edge",
            "external_cdn",
            "scontent_cdn",
            "star",
            "stun",
        ] {
            keys[format!("facebook_{ep}_dns_consistent")] = json!(true);
            keys[format!("facebook_{ep}_reachable")] = json!(ep != "stun");
        }
        keys["facebook_stun_reachable"] = Value::Null;
        let v = run("facebook_messenger", keys.clone());
        assert_eq!(v.status, Status::Ok, "{v:?}");

        let mut bad = keys.clone();
        bad["facebook_edge_dns_consistent"] = json!(false);
        bad["facebook_b_api_dns_consistent"] = json!(false);
        let v = run("facebook_messenger", bad);
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::DnsSpoofed));
        assert!(mentions(&v, "edge-mqtt.facebook.com"), "{:?}", v.reasons);
        assert!(v.confidence > 0.8);

        let mut bad = keys.clone();
        bad["facebook_star_reachable"] = json!(false);
        bad["tcp_connect"] = json!([
            tcp("31.13.86.8", 443, Some("generic_timeout_error")),
            tcp("31.13.86.37", 443, None)
        ]);
        let v = run("facebook_messenger", bad);
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TcpTimeout));
        assert!(mentions(&v, "star.c10r.facebook.com"), "{:?}", v.reasons);
        assert!(v.confidence < 0.7, "a single endpoint is weaker evidence");

        // Legacy dash-spelled keys (versions <= 0.3.0) are read too.
        let v = run(
            "facebook_messenger",
            json!({"facebook-b-api-dns-consistent": false, "facebook-edge-reachable": true}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert!(mentions(&v, "b-api.facebook.com"));

        let v = run("facebook_messenger", json!({"queries": []}));
        assert_eq!(v.status, Status::Inconclusive);
    }
}
