//! Middlebox tests: HTTP Header Field Manipulation (ts-006), HTTP Invalid Request Line (ts-007)
//! and HTTP Host (ts-004). They talk to an OONI helper that echoes what it received; a
//! difference means something on the path rewrote or answered the traffic. Such a middlebox is
//! what censors use, so OONI counts it as an anomaly — but it is not proof that any particular
//! site is blocked, so these verdicts carry no `accessible` and no method.

use super::{blocked, bool_at, clip, list, no_accessibility, ok, requests, unclear};
use censorwatch_model::{Measurement, Method, Verdict};
use serde_json::Value;
use std::collections::BTreeSet;

/// HTTP Header Field Manipulation (ooni/spec `ts-006-header-field-manipulation.md`; fastpath
/// `score_measurement_hhfm`).
///
/// The probe sends headers with odd capitalisation to a helper that answers with the headers it
/// received (`headers_dict`) and the request line. No response at all means the helper could not
/// be reached: inconclusive. An empty or non-JSON body means something other than the helper
/// answered (ts-006 "total" tampering). Otherwise the sent and received `(name, value)` sets are
/// compared, ignoring `Connection: close` as fastpath does, and the request line's method against
/// the one sent.
pub(super) fn header_field_manipulation(_m: &Measurement, tk: &Value) -> Verdict {
    let reqs = requests(tk);
    let Some(first) = reqs.first() else {
        // Old probes without requests may still carry their own tampering summary.
        return match tk.get("tampering").and_then(Value::as_object) {
            Some(t) if t.values().any(|v| v == &Value::Bool(true)) => {
                let kinds: Vec<String> = t
                    .iter()
                    .filter(|(_, v)| **v == Value::Bool(true))
                    .map(|(k, _)| k.clone())
                    .collect();
                no_accessibility(blocked(
                    None,
                    0.5,
                    vec![format!(
                        "the probe reported header tampering ({}) but kept no requests to check it against",
                        kinds.join(", ")
                    )],
                ))
            }
            _ => unclear(vec![
                "the header-manipulation measurement has no requests to the OONI helper".into(),
            ]),
        };
    };
    let Some(response) = first.response else {
        let why = match &first.failure {
            Some(f) => format!("the request to the OONI helper ({}) failed: {f}", first.describe()),
            None => format!("the request to the OONI helper ({}) got no response", first.describe()),
        };
        return unclear(vec![
            why,
            "without the helper's echo the test cannot tell whether headers were changed".into(),
        ]);
    };
    let body = match response.get("body") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        _ => {
            return no_accessibility(blocked(
                None,
                0.6,
                vec![
                    "the OONI helper's reply came back empty: something on the path answered instead of it \
                 (total tampering, ts-006)"
                        .into(),
                ],
            ));
        }
    };
    let echoed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let Some(received) = echoed.get("headers_dict").and_then(Value::as_object) else {
        return no_accessibility(blocked(
            None,
            0.7,
            vec![format!(
                "the reply was not the OONI helper's JSON echo but something else (\"{}\"): a middlebox answered",
                clip(body.lines().next().unwrap_or(""), 60)
            )],
        ));
    };
    let received: BTreeSet<(String, String)> = received
        .iter()
        .filter_map(|(k, v)| {
            let first = match v {
                Value::Array(vals) => vals.first()?.as_str()?,
                Value::String(s) => s,
                _ => return None,
            };
            Some((k.clone(), first.to_owned()))
        })
        .filter(|(k, v)| !(k == "Connection" && v == "close"))
        .collect();
    let sent: BTreeSet<(String, String)> = match first.request_headers {
        Some(Value::Object(h)) => h
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .filter(|(k, v)| !(k == "Connection" && v == "close"))
            .collect(),
        _ => BTreeSet::new(),
    };
    let mut reasons = Vec::new();
    if !sent.is_empty() && sent != received {
        let names: BTreeSet<String> = sent.symmetric_difference(&received).map(|(k, _)| k.clone()).collect();
        reasons.push(format!(
            "the headers that reached the OONI helper differ from those sent: {} changed, added or removed",
            list(&names.into_iter().collect::<Vec<_>>(), 6)
        ));
    }
    if let (Some(method), Some(line)) = (first.method, echoed.get("request_line").and_then(Value::as_str)) {
        let got = line.split(' ').next().unwrap_or("");
        if got != method {
            reasons.push(format!(
                "the request line's method arrived as \"{}\" though \"{method}\" was sent",
                clip(got, 20)
            ));
        }
    }
    if !reasons.is_empty() {
        reasons.push(
            "an HTTP-aware middlebox on the path rewrote the request; censors use such boxes, but so do \
                      caching proxies"
                .into(),
        );
        return no_accessibility(blocked(None, 0.75, reasons));
    }
    if sent.is_empty() {
        return unclear(vec![
            "the measurement does not record which headers were sent, so nothing can be compared".into(),
        ]);
    }
    no_accessibility(ok(
        0.8,
        vec![format!(
            "all {} headers reached the OONI helper exactly as sent: no HTTP middlebox rewrote them",
            sent.len()
        )],
    ))
}

/// HTTP Invalid Request Line (ooni/spec `ts-007-http-invalid-request-line.md`; fastpath
/// `score_http_invalid_request_line`).
///
/// The probe sends malformed request lines to an echo helper; each `received` should equal the
/// matching `sent`. A different, non-empty reply means a middlebox parsed and answered the
/// request (strong). An empty reply means it was swallowed (weaker). Entries whose
/// `failure_list` item is set (the helper could not be reached) are skipped. The probe's own
/// `tampering` flag is ignored, as in fastpath (ooni/probe#1278).
pub(super) fn invalid_request_line(_m: &Measurement, tk: &Value) -> Verdict {
    let sent = super::arr(tk, "sent");
    let received = super::arr(tk, "received");
    if sent.is_empty() && received.is_empty() {
        return unclear(vec![
            "the invalid-request-line measurement sent and received nothing".into(),
        ]);
    }
    let failures = super::arr(tk, "failure_list");
    let mut compared = 0usize;
    let mut answered = Vec::new();
    let mut swallowed = 0usize;
    let mut helper_failures = Vec::new();
    for (i, (s, r)) in sent.iter().zip(received.iter()).enumerate() {
        if let Some(f) = super::failure_of(failures.get(i)) {
            helper_failures.push(f.to_string());
            continue;
        }
        compared += 1;
        if s == r {
            continue;
        }
        match r {
            Value::String(text) if text.is_empty() => swallowed += 1,
            Value::String(text) => answered.push(format!("\"{}\"", clip(text.lines().next().unwrap_or(""), 50))),
            _ => answered.push("a binary reply".into()),
        }
    }
    if compared == 0 {
        let mut r = vec!["no request line reached the echo helper, so nothing could be compared".to_owned()];
        if !helper_failures.is_empty() {
            r.push(format!("failures: {}", list(&helper_failures, 3)));
        }
        return unclear(r);
    }
    if !answered.is_empty() {
        return no_accessibility(blocked(
            None,
            0.8,
            vec![
                format!(
                    "{} of {compared} malformed request lines got a reply other than their own echo ({}): an HTTP \
                 middlebox on the path parsed and answered them",
                    answered.len(),
                    list(&answered, 2)
                ),
                "censors use such middleboxes, but so do caching proxies".into(),
            ],
        ));
    }
    if swallowed > 0 {
        return no_accessibility(blocked(
            None,
            0.5,
            vec![format!(
                "{swallowed} of {compared} malformed request lines never came back from the echo helper: something on \
             the path swallowed them"
            )],
        ));
    }
    no_accessibility(ok(
        0.8,
        vec![format!(
            "all {compared} malformed request lines came back unchanged: no HTTP middlebox seen"
        )],
    ))
}

/// HTTP Host (ooni/spec `ts-004-http-host.md`; not scored by fastpath).
///
/// Per ts-004 the `send_host_header`/`filtering_*` keys are `true` only when the response
/// matched the censorship blockpage the operator supplied, `false` when the helper's JSON came
/// back (the host was reachable that way) and `null` otherwise. So `true` is a blockpage:
/// blocked. A transparent proxy without a blockpage is a middlebox, not a block of this host.
pub(super) fn http_host(m: &Measurement, tk: &Value) -> Verdict {
    let host = m
        .input_str()
        .map(str::to_owned)
        .unwrap_or_else(|| "the tested host".into());
    const VARIANTS: &[(&str, &str)] = &[
        ("send_host_header", "the plain Host header"),
        ("filtering_via_fuzzy_matching", "the host padded with random characters"),
        ("filtering_of_subdomain", "a random subdomain"),
        ("filtering_add_tab_to_host", "a tab after the host"),
        ("filtering_prepend_newline_to_method", "a newline before the method"),
    ];
    let values: Vec<(&str, Option<bool>)> = VARIANTS.iter().map(|(k, d)| (*d, bool_at(tk, k))).collect();
    let proxy = bool_at(tk, "transparent_http_proxy");
    if proxy.is_none() && values.iter().all(|(_, v)| v.is_none()) {
        return unclear(vec!["the HTTP Host measurement has none of its result keys".into()]);
    }
    let censored: Vec<String> = values
        .iter()
        .filter(|(_, v)| *v == Some(true))
        .map(|(d, _)| (*d).to_owned())
        .collect();
    if !censored.is_empty() {
        return blocked(
            Some(Method::HttpBlockpage),
            0.7,
            vec![format!(
                "requests for {host} with {} got the censorship blockpage",
                list(&censored, 5)
            )],
        );
    }
    if proxy == Some(true) {
        return unclear(vec![format!(
            "a transparent HTTP proxy answered on the path, but it served no blockpage for {host}"
        )]);
    }
    let clean: Vec<String> = values
        .iter()
        .filter(|(_, v)| *v == Some(false))
        .map(|(d, _)| (*d).to_owned())
        .collect();
    if values.first().is_some_and(|(_, v)| *v == Some(false)) {
        return ok(
            0.7,
            vec![format!(
                "requests for {host} reached the OONI helper unchanged ({}), and no transparent proxy was seen",
                list(&clean, 5)
            )],
        );
    }
    unclear(vec![format!(
        "the HTTP Host measurement does not say whether a plain request for {host} got through"
    )])
}

#[cfg(test)]
mod tests {
    use super::super::tests::{mentions, run};

    use censorwatch_model::{Method, Status};
    use serde_json::{Value, json};

    fn hhfm(sent: Value, echoed: Option<Value>, failure: Option<&str>) -> Value {
        let response = match echoed {
            Some(Value::String(s)) => json!({"code": 200, "body": s}),
            Some(e) => json!({"code": 200, "body": e.to_string()}),
            None => Value::Null,
        };
        json!({"requests": [{"failure": failure, "request": {"method": "GeT", "url": "http://37.218.247.95:80", "headers": sent}, "response": response}]})
    }

    #[test]
    fn header_field_manipulation_rules() {
        let sent = json!({"hOsT": "abc.com", "aCCepT": "text/html"});
        let same = json!({"headers_dict": {"hOsT": ["abc.com"], "aCCepT": ["text/html"], "Connection": ["close"]}, "request_line": "GeT / HTTP/1.1"});
        let v = run("http_header_field_manipulation", hhfm(sent.clone(), Some(same), None));
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert_eq!(v.accessible, None);

        let changed = json!({"headers_dict": {"Host": ["abc.com"], "aCCepT": ["text/html"], "Via": ["1.1 squid"]}, "request_line": "GET / HTTP/1.1"});
        let v = run(
            "http_header_field_manipulation",
            hhfm(sent.clone(), Some(changed), None),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, None);
        assert!(
            mentions(&v, "hOsT") && mentions(&v, "Via") && mentions(&v, "\"GET\""),
            "{:?}",
            v.reasons
        );

        let v = run(
            "http_header_field_manipulation",
            hhfm(sent.clone(), Some(Value::String("<html>Blocked</html>".into())), None),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert!(mentions(&v, "<html>Blocked</html>"));

        let v = run(
            "http_header_field_manipulation",
            hhfm(sent.clone(), None, Some("connection_refused_error")),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "connection_refused_error"));

        assert_eq!(
            run("http_header_field_manipulation", json!({"requests": []})).status,
            Status::Inconclusive
        );
        assert_eq!(
            run(
                "http_header_field_manipulation",
                json!({"requests": null, "failure": null})
            )
            .status,
            Status::Inconclusive
        );
    }

    #[test]
    fn invalid_request_line_rules() {
        let v = run(
            "http_invalid_request_line",
            json!({"sent": ["XXXX / HTTP/1.1\n\r", "GET / HTTP/abc"], "received": ["XXXX / HTTP/1.1\n\r", "GET / HTTP/abc"], "tampering": true}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");
        let v = run(
            "http_invalid_request_line",
            json!({"sent": ["XXXX / HTTP/1.1\n\r"], "received": ["HTTP/1.1 400 Bad Request\r\nServer: squid"], "tampering": false}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert!(mentions(&v, "HTTP/1.1 400 Bad Request"), "{:?}", v.reasons);
        let swallowed = run(
            "http_invalid_request_line",
            json!({"sent": ["XXXX / HTTP/1.1\n\r", "a b c d\n\r"], "received": ["", "a b c d\n\r"]}),
        );
        assert_eq!(swallowed.status, Status::Blocked, "{swallowed:?}");
        assert!(swallowed.confidence < v.confidence);
        let v = run(
            "http_invalid_request_line",
            json!({"sent": ["x"], "received": [""], "failure_list": ["connection_refused"]}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "connection_refused"));
        assert_eq!(
            run("http_invalid_request_line", json!({"sent": [], "received": []})).status,
            Status::Inconclusive
        );
    }

    #[test]
    fn http_host_rules() {
        let v = run(
            "http_host",
            json!({"send_host_header": false, "transparent_http_proxy": false, "filtering_of_subdomain": false}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");
        let v = run(
            "http_host",
            json!({"send_host_header": true, "transparent_http_proxy": true, "filtering_of_subdomain": true}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::HttpBlockpage));
        assert!(mentions(&v, "random subdomain"), "{:?}", v.reasons);
        let v = run(
            "http_host",
            json!({"send_host_header": null, "transparent_http_proxy": true}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "transparent HTTP proxy"));
        assert_eq!(run("http_host", json!({"agent": "agent"})).status, Status::Inconclusive);
    }
}
