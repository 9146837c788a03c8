//! Verdicts for the OONI tests other than Web Connectivity: the instant-messaging tests, the
//! circumvention-tool tests, the middlebox tests, the legacy (2014–2019) tests and the small
//! experimental ones.
//!
//! Each test is read from its own test keys, as its specification defines them (ooni/spec
//! `nettests/ts-0xx-*.md`), with OONI fastpath's scoring (ooni/backend `fastpath/fastpath/core.py`,
//! the `score_*` functions) as the reference for what counts as an anomaly and what counts as a
//! broken measurement. Where we read the data differently from fastpath the rule says why; the
//! fixtures on which that matters are listed in `crates/verdict/tests/README.md`.
//!
//! Common principles, applied by every rule:
//! - The probe's own conclusion keys (`*_status`, `*_blocking`, `tampering`) are used only when the
//!   raw observations they summarise are absent, and a status without a failure string is never
//!   evidence on its own.
//! - A failure is evidence of blocking only when it is a network failure: `unknown_failure …`
//!   (the probe could not classify it) and `network_unreachable`/`network_down`/`host_unreachable`
//!   (the probe's own network was not working) make a verdict `inconclusive`.
//! - Where a test measures several independent endpoints and *every* one failed without the
//!   network ever answering (no successful connection, no DNS answer, no reset or refusal), the
//!   probe was most likely offline: `inconclusive`, not `blocked`.
//!
//! Never panics, whatever JSON it is given: every access is checked.

mod apps;
mod circumvention;
mod middlebox;
mod probes;

use censorwatch_model::{Failure, FailureKind, Measurement, Method, Status, Verdict};
use serde_json::Value;

/// The verdict for a measurement of `test_name` whose test keys are `keys` (`Null` when absent).
pub(crate) fn verdict(test_name: &str, m: &Measurement, keys: &Value) -> Verdict {
    let rule: fn(&Measurement, &Value) -> Verdict = match test_name {
        "telegram" => apps::telegram,
        "whatsapp" => apps::whatsapp,
        "signal" => apps::signal,
        "facebook_messenger" => apps::facebook_messenger,
        "tor" => circumvention::tor,
        "vanilla_tor" => circumvention::vanilla_tor,
        "torsf" => circumvention::torsf,
        "meek_fronted_requests_test" => circumvention::meek,
        "psiphon" => circumvention::psiphon,
        "riseupvpn" => circumvention::riseupvpn,
        "openvpn" => circumvention::openvpn,
        "http_header_field_manipulation" => middlebox::header_field_manipulation,
        "http_invalid_request_line" => middlebox::invalid_request_line,
        "http_host" => middlebox::http_host,
        "dns_consistency" => probes::dns_consistency,
        "http_requests" => probes::http_requests,
        "tcp_connect" => probes::tcp_connect,
        "dnscheck" => probes::dnscheck,
        "stunreachability" | "stun_reachability" => probes::stun_reachability,
        "urlgetter" => probes::urlgetter,
        "browser_web" => probes::browser_web,
        "dash" | "ndt" | "ndt7" => {
            return probes::performance(test_name, keys);
        }
        "" => return Verdict::inconclusive("the measurement does not say which test it is (no test_name)"),
        other => {
            return Verdict::inconclusive(format!(
                "censorwatch has no rules for the {other} test, so it draws no conclusion from it"
            ));
        }
    };
    match keys {
        Value::Object(_) => rule(m, keys),
        Value::Null => Verdict::inconclusive(format!("the {test_name} measurement has no test keys")),
        _ => Verdict::inconclusive(format!(
            "the {test_name} measurement's test keys are not a JSON object, so they cannot be read"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Verdict constructors

/// An `ok` verdict: the thing the test measures was reachable.
fn ok(confidence: f64, reasons: Vec<String>) -> Verdict {
    Verdict {
        status: Status::Ok,
        method: None,
        confidence,
        blockpage: None,
        ooni_blocking: None,
        accessible: Some(true),
        reasons,
    }
}

/// A `blocked` verdict.
fn blocked(method: Option<Method>, confidence: f64, reasons: Vec<String>) -> Verdict {
    Verdict {
        status: Status::Blocked,
        method,
        confidence,
        blockpage: None,
        ooni_blocking: None,
        accessible: Some(false),
        reasons,
    }
}

/// A `down` verdict: the service itself, not the network, failed.
fn down(confidence: f64, reasons: Vec<String>) -> Verdict {
    Verdict {
        status: Status::Down,
        method: None,
        confidence,
        blockpage: None,
        ooni_blocking: None,
        accessible: Some(false),
        reasons,
    }
}

/// An `inconclusive` verdict with several reasons.
fn unclear(reasons: Vec<String>) -> Verdict {
    let mut v = Verdict::inconclusive(String::new());
    v.reasons = reasons;
    v
}

/// The same verdict without `accessible`: for tests that look for middleboxes rather than at
/// whether something can be reached.
fn no_accessibility(mut v: Verdict) -> Verdict {
    v.accessible = None;
    v
}

// ---------------------------------------------------------------------------------------------
// JSON access that never panics

/// The string at `key`, if it is a string.
fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The boolean at `key`, if it is a boolean.
fn bool_at(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// The number at `key`, if it is a finite number.
fn num_at(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64).filter(|n| n.is_finite())
}

/// The array at `key`, or an empty slice.
fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// A failure string at `key`. `null`, `false` (old probes' "no failure"), `""` and non-strings
/// are no failure.
fn failure_at(v: &Value, key: &str) -> Option<Failure> {
    failure_of(v.get(key))
}

/// A failure from a JSON value (see [`failure_at`]).
fn failure_of(v: Option<&Value>) -> Option<Failure> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(Failure::parse(s.trim())),
        _ => None,
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// `items` joined with commas; past `max` items, "and N more".
fn list(items: &[String], max: usize) -> String {
    let shown: Vec<&str> = items.iter().take(max).map(String::as_str).collect();
    let mut out = shown.join(", ");
    if items.len() > max {
        out.push_str(&format!(" and {} more", items.len() - max));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Failures

/// The failure's kind, with the few legacy strings the model's classifier does not know.
fn kind(f: &Failure) -> FailureKind {
    let k = f.kind();
    if k != FailureKind::Unknown {
        return k;
    }
    let s = f.as_str().to_ascii_lowercase();
    if s.contains("timed_out") || s.contains("deferred_timeout") {
        FailureKind::Timeout
    } else if s.contains("unreachable") {
        FailureKind::Unreachable
    } else {
        k
    }
}

/// Why `f` cannot serve as evidence of blocking, if it cannot.
fn unusable(f: &Failure) -> Option<&'static str> {
    if matches!(f, Failure::Unknown(_)) {
        return Some("the probe could not classify this error, which usually means a problem on the probe itself");
    }
    match kind(f) {
        FailureKind::Unreachable => {
            Some("this error means the probe's own network was unreachable, not that something was blocked")
        }
        _ => None,
    }
}

/// Whether a failure could only happen with the network up: something answered (a refusal, a
/// reset, an NXDOMAIN, a certificate, an HTTP error).
fn network_answered_with(f: &Failure) -> bool {
    matches!(
        kind(f),
        FailureKind::Refused
            | FailureKind::Reset
            | FailureKind::Eof
            | FailureKind::Nxdomain
            | FailureKind::NoAnswer
            | FailureKind::DnsServer
            | FailureKind::CertHostname
            | FailureKind::CertInvalid
            | FailureKind::TlsOther
            | FailureKind::Http
    )
}

/// Where in a transaction a failure happened, as far as the data says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A DNS lookup.
    Dns,
    /// A TCP connect.
    Tcp,
    /// A TLS handshake.
    Tls,
    /// A QUIC handshake.
    Quic,
    /// The HTTP exchange after the connection was up.
    Http,
    /// Somewhere in an HTTPS fetch (connect, handshake or exchange).
    Https,
    /// Somewhere in a plain-HTTP fetch (connect or exchange).
    HttpPlain,
    /// Unknown.
    Unknown,
}

impl Step {
    /// The step of an OONI `failed_operation` string (df-007).
    fn from_operation(op: &str) -> Step {
        match op {
            "resolve" | "dns_lookup" | "dns_round_trip" => Step::Dns,
            "connect" | "tcp_connect" => Step::Tcp,
            "tls_handshake" => Step::Tls,
            "quic_handshake" => Step::Quic,
            "http_round_trip" | "http_transaction" | "read" | "write" => Step::Http,
            _ if op.starts_with("dns") || op.starts_with("resolve") => Step::Dns,
            _ => Step::Unknown,
        }
    }

    /// The step for a fetch of `url`: HTTPS or plain HTTP.
    fn for_url(url: &str) -> Step {
        if url.trim_start().to_ascii_lowercase().starts_with("https:") {
            Step::Https
        } else {
            Step::HttpPlain
        }
    }
}

/// The blocking method a failure at `step` points to, if the data says enough.
fn method_for(f: &Failure, step: Step) -> Option<Method> {
    use FailureKind as K;
    match kind(f) {
        K::Nxdomain => Some(Method::DnsNxdomain),
        K::NoAnswer => Some(Method::DnsNoAnswer),
        K::DnsServer => Some(Method::DnsRefused),
        K::DnsOther if *f == Failure::DnsBogonError => Some(Method::DnsBogon),
        K::DnsOther => None,
        K::Refused => Some(Method::TcpRefused),
        K::Timeout => match step {
            Step::Dns => Some(Method::DnsTimeout),
            Step::Tcp => Some(Method::TcpTimeout),
            Step::Tls => Some(Method::TlsTimeout),
            Step::Quic => Some(Method::QuicTimeout),
            Step::Http => Some(Method::HttpTimeout),
            Step::Https | Step::HttpPlain | Step::Unknown => None,
        },
        K::Reset => match step {
            Step::Tcp => Some(Method::TcpReset),
            // A reset right after connecting to port 443 is nearly always the ClientHello's SNI.
            Step::Tls | Step::Https => Some(Method::TlsReset),
            Step::Http | Step::HttpPlain => Some(Method::HttpReset),
            Step::Dns | Step::Quic | Step::Unknown => None,
        },
        K::Eof => match step {
            Step::Tls | Step::Https => Some(Method::TlsEof),
            Step::Http | Step::HttpPlain => Some(Method::HttpEof),
            _ => None,
        },
        K::CertHostname | K::CertInvalid => Some(Method::TlsCertMismatch),
        K::TlsOther | K::Unreachable | K::Http | K::Unknown => None,
    }
}

/// The method most of `failures` point to (ties: the first seen).
fn common_method(failures: &[(Failure, Step)]) -> Option<Method> {
    let mut counts: Vec<(Method, usize)> = Vec::new();
    for (f, step) in failures {
        if let Some(m) = method_for(f, *step) {
            match counts.iter_mut().find(|(seen, _)| *seen == m) {
                Some((_, n)) => *n += 1,
                None => counts.push((m, 1)),
            }
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.iter().find(|(_, n)| *n == best).map(|(m, _)| *m)
}

// ---------------------------------------------------------------------------------------------
// Parent data formats shared by many tests

/// One df-005 `tcp_connect` entry.
#[derive(Debug, Clone)]
struct Connect {
    /// `ip:port` (or whatever part of it is present).
    endpoint: String,
    /// `status.success`, when it is a boolean.
    success: Option<bool>,
    /// `status.failure`.
    failure: Option<Failure>,
}

impl Connect {
    /// Whether the connect worked: `status.success`, else "no failure" when the entry has a
    /// status at all.
    fn succeeded(&self) -> Option<bool> {
        self.success.or(if self.failure.is_some() { Some(false) } else { None })
    }
}

/// The `tcp_connect` entries of `v` (an array, or a single object as in `openvpn`).
fn connects(v: Option<&Value>) -> Vec<Connect> {
    let items: Vec<&Value> = match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(obj @ Value::Object(_)) => vec![obj],
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter(|e| e.is_object())
        .map(|e| {
            let ip = str_at(e, "ip").unwrap_or("?");
            let endpoint = match e.get("port").and_then(Value::as_u64) {
                Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
                Some(port) => format!("{ip}:{port}"),
                None => ip.to_owned(),
            };
            let status = e.get("status").unwrap_or(&Value::Null);
            Connect {
                endpoint,
                success: bool_at(status, "success"),
                failure: failure_at(status, "failure"),
            }
        })
        .collect()
}

/// One df-001 HTTP transaction.
#[derive(Debug, Clone)]
struct Request<'a> {
    /// `request.url`.
    url: Option<&'a str>,
    /// `request.method`.
    method: Option<&'a str>,
    /// `request.headers` (an object, or the legacy list of `[name, [values]]`).
    request_headers: Option<&'a Value>,
    /// `failure`.
    failure: Option<Failure>,
    /// `response`, when it is an object.
    response: Option<&'a Value>,
}

impl<'a> Request<'a> {
    /// The response's status code.
    fn code(&self) -> Option<i64> {
        self.response.and_then(|r| r.get("code")).and_then(Value::as_i64)
    }

    /// The response body, when it is text.
    fn body(&self) -> Option<&'a str> {
        self.response.and_then(|r| r.get("body")).and_then(Value::as_str)
    }

    /// The host the request was for: the URL's host, else its `Host` header.
    fn host(&self) -> Option<String> {
        if let Some(h) = self.url.and_then(censorwatch_model::url::host_of) {
            return Some(h);
        }
        header_value(self.request_headers?, "host").map(|h| h.to_ascii_lowercase())
    }

    /// The URL, or a description when it is missing.
    fn describe(&self) -> String {
        match (self.url, self.host()) {
            (Some(u), _) => u.to_owned(),
            (None, Some(h)) => format!("a request to {h}"),
            (None, None) => "a request".to_owned(),
        }
    }
}

/// The transactions in `requests` (df-001).
fn requests(tk: &Value) -> Vec<Request<'_>> {
    arr(tk, "requests")
        .iter()
        .filter(|r| r.is_object())
        .map(|r| {
            let req = r.get("request").unwrap_or(&Value::Null);
            Request {
                url: str_at(req, "url"),
                method: str_at(req, "method"),
                request_headers: req.get("headers"),
                failure: failure_at(r, "failure"),
                response: r.get("response").filter(|v| v.is_object()),
            }
        })
        .collect()
}

/// The first value of header `name` (case-insensitive) in a headers object or legacy list.
fn header_value<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    match headers {
        Value::Object(map) => map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| match v {
                Value::String(s) => Some(s.as_str()),
                Value::Array(vals) => vals.first().and_then(Value::as_str),
                _ => None,
            }),
        Value::Array(pairs) => pairs.iter().find_map(|pair| {
            let pair = pair.as_array()?;
            let key = pair.first()?.as_str()?;
            if !key.eq_ignore_ascii_case(name) {
                return None;
            }
            match pair.get(1)? {
                Value::String(s) => Some(s.as_str()),
                Value::Array(vals) => vals.first().and_then(Value::as_str),
                _ => None,
            }
        }),
        _ => None,
    }
}

/// Whether anything in the test keys shows the probe's network was up: a successful connection,
/// handshake or HTTP response, a DNS answer, or a failure only a live network produces.
fn network_answered(tk: &Value) -> bool {
    let connects_live = connects(tk.get("tcp_connect"))
        .iter()
        .any(|c| c.succeeded() == Some(true) || c.failure.as_ref().is_some_and(network_answered_with));
    let queries_live = arr(tk, "queries")
        .iter()
        .any(|q| !arr(q, "answers").is_empty() || failure_at(q, "failure").as_ref().is_some_and(network_answered_with));
    let requests_live = requests(tk)
        .iter()
        .any(|r| r.response.is_some() || r.failure.as_ref().is_some_and(network_answered_with));
    let tls_live = arr(tk, "tls_handshakes").iter().any(|h| {
        h.is_object()
            && (h.get("failure").is_some_and(Value::is_null)
                || failure_at(h, "failure").as_ref().is_some_and(network_answered_with))
    });
    connects_live || queries_live || requests_live || tls_live
}

/// The reason given when every endpoint failed and nothing ever answered.
fn offline_reason(what: &str) -> String {
    format!(
        "every {what} failed and nothing on the network ever answered (no connection, DNS answer, reset or \
         refusal): the probe was most likely offline, which is not evidence of blocking"
    )
}

// ---------------------------------------------------------------------------------------------
// Versions and dates

/// Whether version `a` sorts before `b`, comparing the leading numbers of each dotted part
/// (`"3.18.0-alpha"` is `3.18.0`). Unreadable parts count as 0.
fn version_lt(a: &str, b: &str) -> bool {
    fn parts(v: &str) -> Vec<u64> {
        v.split('.')
            .map(|p| {
                let digits: String = p.chars().take_while(char::is_ascii_digit).take(18).collect();
                digits.parse().unwrap_or(0)
            })
            .collect()
    }
    let (pa, pb) = (parts(a), parts(b));
    let n = pa.len().max(pb.len());
    for i in 0..n {
        let (x, y) = (pa.get(i).copied().unwrap_or(0), pb.get(i).copied().unwrap_or(0));
        if x != y {
            return x < y;
        }
    }
    false
}

/// Whether the measurement started on or after `date` (`"YYYY-MM-DD"`); `None` when the start
/// time is missing or not in OONI's `"YYYY-MM-DD HH:MM:SS"` form.
fn started_on_or_after(m: &Measurement, date: &str) -> Option<bool> {
    let start = m.measurement_start_time.as_deref()?;
    let day = start.get(..10)?;
    let well_formed = day.len() == 10
        && day
            .char_indices()
            .all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
    well_formed.then(|| day >= date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn measurement(test_name: &str, keys: Value) -> (Measurement, Value) {
        let m = Measurement::from_slice(
            json!({"test_name": test_name, "measurement_start_time": "2022-01-01 00:00:00", "test_keys": keys})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let keys = m.test_keys_value().unwrap();
        (m, keys)
    }

    /// The verdict for `test` on these test keys.
    pub(super) fn run(test: &str, keys: Value) -> Verdict {
        let (m, k) = measurement(test, keys);
        verdict(test, &m, &k)
    }

    /// Whether any reason mentions `needle`.
    pub(super) fn mentions(v: &Verdict, needle: &str) -> bool {
        v.reasons.iter().any(|r| r.contains(needle))
    }

    #[test]
    fn unknown_and_empty_tests_are_inconclusive_with_a_reason() {
        let (m, k) = measurement("multi_protocol_traceroute", json!({"hops": []}));
        let v = verdict("multi_protocol_traceroute", &m, &k);
        assert_eq!(v.status, Status::Inconclusive);
        assert!(v.reasons[0].contains("multi_protocol_traceroute"), "{:?}", v.reasons);
        let v = verdict("telegram", &m, &Value::Null);
        assert_eq!(v.status, Status::Inconclusive);
        assert!(v.reasons[0].contains("no test keys"));
        let v = verdict("telegram", &m, &json!([1, 2]));
        assert_eq!(v.status, Status::Inconclusive);
        assert!(v.reasons[0].contains("not a JSON object"));
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_lt("3.17.1", "3.17.2"));
        assert!(version_lt("3.9.0", "3.17.2"));
        assert!(!version_lt("3.17.2", "3.17.2"));
        assert!(!version_lt("3.18.0-alpha", "3.17.2"));
        assert!(version_lt("0.2", "0.2.2"));
        assert!(version_lt("", "0.0.1"));
    }

    #[test]
    fn failure_methods_follow_the_step() {
        let reset = Failure::parse("connection_reset");
        assert_eq!(method_for(&reset, Step::Https), Some(Method::TlsReset));
        assert_eq!(method_for(&reset, Step::HttpPlain), Some(Method::HttpReset));
        assert_eq!(
            method_for(&Failure::parse("generic_timeout_error"), Step::Tcp),
            Some(Method::TcpTimeout)
        );
        assert_eq!(method_for(&Failure::parse("generic_timeout_error"), Step::Https), None);
        assert_eq!(
            method_for(&Failure::parse("dns_nxdomain_error"), Step::Https),
            Some(Method::DnsNxdomain)
        );
        assert_eq!(
            method_for(&Failure::parse("tcp_timed_out_error"), Step::Tcp),
            Some(Method::TcpTimeout)
        );
        assert!(unusable(&Failure::parse("unknown_failure: boom")).is_some());
        assert!(unusable(&Failure::parse("network_unreachable")).is_some());
        assert!(unusable(&Failure::parse("connection_reset")).is_none());
    }

    #[test]
    fn start_dates_compare() {
        let (m, _) = measurement("x", json!({}));
        assert_eq!(started_on_or_after(&m, "2021-12-31"), Some(true));
        assert_eq!(started_on_or_after(&m, "2022-01-02"), Some(false));
    }

    mod never_panics {
        use super::super::verdict;
        use super::measurement;
        use proptest::prelude::*;
        use serde_json::Value;

        const TESTS: &[&str] = &[
            "telegram",
            "whatsapp",
            "signal",
            "facebook_messenger",
            "tor",
            "vanilla_tor",
            "torsf",
            "meek_fronted_requests_test",
            "psiphon",
            "riseupvpn",
            "openvpn",
            "http_header_field_manipulation",
            "http_invalid_request_line",
            "http_host",
            "dns_consistency",
            "http_requests",
            "tcp_connect",
            "dnscheck",
            "stunreachability",
            "urlgetter",
            "browser_web",
            "dash",
            "ndt",
            "something_else",
        ];

        /// Keys the rules look for, so that arbitrary JSON reaches deep into them.
        const KEYS: &[&str] = &[
            "tcp_connect",
            "requests",
            "request",
            "response",
            "url",
            "failure",
            "status",
            "success",
            "ip",
            "port",
            "body",
            "code",
            "headers",
            "targets",
            "queries",
            "answers",
            "ipv4",
            "hostname",
            "resolver_hostname",
            "control_resolver",
            "sent",
            "received",
            "failure_list",
            "lookups",
            "tor_progress",
            "tor_logs",
            "bootstrap_time",
            "signal_backend_status",
            "telegram_web_status",
            "whatsapp_endpoints_status",
            "api_status",
            "transport_status",
            "connection",
            "result",
            "body_length_match",
            "headers_match",
            "experiment_failure",
            "control_failure",
            "summary",
            "simple",
            "failed_operation",
            "query_type",
            "is_tor",
            "tor",
            "target_protocol",
        ];

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)),
                "[a-z_:./ 0-9-]{0,12}".prop_map(Value::String),
                prop::sample::select(vec![
                    "ok",
                    "blocked",
                    "error",
                    "success",
                    "generic_timeout_error",
                    "connection_reset",
                    "https://web.telegram.org/",
                    "unknown_failure: x",
                    "0.2.3",
                    "1.2.3.4",
                    "{\"headers_dict\": {}}"
                ])
                .prop_map(|s| Value::String(s.to_owned())),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..8)
                        .prop_map(|kv| { Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()) }),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]
            #[test]
            fn any_test_keys_give_a_verdict_with_reasons(keys in json_value(), test in prop::sample::select(TESTS.to_vec())) {
                let (m, _) = measurement(test, Value::Null);
                let v = verdict(test, &m, &keys);
                prop_assert!(!v.reasons.is_empty());
                prop_assert!(v.reasons.iter().all(|r| !r.is_empty()));
                prop_assert!((0.0..=1.0).contains(&v.confidence));
                prop_assert!(v.ooni_blocking.is_none() && v.blockpage.is_none());
            }
        }
    }
}
