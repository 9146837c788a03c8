//! Single-target and exploratory tests: the legacy DNS Consistency (ts-002), HTTP Requests
//! (ts-003) and TCP Connect (ts-008) tests, and the newer dnscheck (ts-028), STUN reachability
//! (ts-025), urlgetter (ts-027) and browser_web (ts-036) experiments, plus the performance tests
//! (DASH ts-021, NDT ts-022), which measure speed rather than blocking.

use super::{
    Step, arr, blocked, bool_at, failure_at, list, method_for, no_accessibility, num_at, ok, str_at, unclear, unusable,
};
use crate::bogon::is_bogon_str;
use censorwatch_model::{Failure, FailureKind, Measurement, Method, Verdict};
use serde_json::Value;

/// What one resolver said in a dns_consistency measurement.
struct ResolverAnswer {
    /// `ip` or `ip:port`.
    resolver: String,
    /// The A answers.
    ips: Vec<String>,
    /// The query's failure.
    failure: Option<Failure>,
}

/// The registrable part of a host name, naively: the last two labels, or three when the
/// second-to-last is a short label under a two-letter TLD (`co.uk`, `com.br`).
fn registrable(name: &str) -> String {
    let labels: Vec<&str> = name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .collect();
    let n = labels.len();
    let take = if n >= 3 && labels[n - 1].len() == 2 && labels[n - 2].len() <= 3 {
        3
    } else {
        2
    };
    labels[n.saturating_sub(take)..].join(".").to_ascii_lowercase()
}

/// The `in-addr.arpa` name of an IPv4 address.
fn reverse_name(ip: &str) -> String {
    let mut parts: Vec<&str> = ip.split('.').collect();
    parts.reverse();
    format!("{}.in-addr.arpa", parts.join("."))
}

/// DNS Consistency (ooni/spec `ts-002-dns-consistency.md`; fastpath `score_dns_consistency` does
/// not score it).
///
/// For each tested resolver, its A answers are compared with the control resolver's, following
/// ts-002: a common address is consistent; so is a different address whose reverse name has the
/// same registrable domain as the control's (ts-002's "reverse_match", loosened from the full name
/// to the domain because CDNs name each server differently, e.g. `*.1e100.net`). A bogon answer or
/// NXDOMAIN where the control answered is tampering; so is any other inconsistent answer. The
/// control failing makes the measurement inconclusive. Resolver timeouts are not evidence.
pub(super) fn dns_consistency(m: &Measurement, tk: &Value) -> Verdict {
    let name = m
        .input_str()
        .map(str::to_owned)
        .unwrap_or_else(|| "the tested name".into());
    let queries = arr(tk, "queries");
    if queries.is_empty() {
        return dns_consistency_from_lists(tk, &name);
    }
    let control = str_at(tk, "control_resolver").unwrap_or("");
    let (control_ip, control_port) = match control.rsplit_once(':') {
        Some((ip, port)) => (ip, port.parse::<u64>().ok()),
        None => (control, None),
    };
    let mut ptr: Vec<(String, Vec<String>)> = Vec::new();
    let mut control_ips: Vec<String> = Vec::new();
    let mut control_failure = None;
    let mut tested: Vec<ResolverAnswer> = Vec::new();
    for q in queries {
        let resolver = str_at(q, "resolver_hostname").unwrap_or("");
        let port = q.get("resolver_port").and_then(Value::as_u64);
        let answers = arr(q, "answers");
        if str_at(q, "query_type") == Some("PTR") {
            let names = answers
                .iter()
                .filter_map(|a| str_at(a, "hostname"))
                .map(str::to_owned)
                .collect();
            ptr.push((str_at(q, "hostname").unwrap_or("").to_owned(), names));
            continue;
        }
        if !matches!(str_at(q, "query_type"), Some("A") | None) {
            continue;
        }
        let ips: Vec<String> = answers
            .iter()
            .filter_map(|a| str_at(a, "ipv4"))
            .map(str::to_owned)
            .collect();
        let is_control = !control_ip.is_empty()
            && resolver == control_ip
            && (control_port.is_none() || port.is_none() || port == control_port);
        if is_control {
            control_ips.extend(ips);
            control_failure = control_failure.or(failure_at(q, "failure"));
        } else {
            let resolver = match port {
                Some(p) if p != 53 => format!("{resolver}:{p}"),
                _ => resolver.to_owned(),
            };
            tested.push(ResolverAnswer {
                resolver,
                ips,
                failure: failure_at(q, "failure"),
            });
        }
    }
    if control_ips.is_empty() {
        let why = control_failure.map(|f| format!(" ({f})")).unwrap_or_default();
        return unclear(vec![format!(
            "the control resolver {control} gave no address for {name}{why}, so the other answers cannot be checked"
        )]);
    }
    let reverse_domains = |ip: &str| -> Vec<String> {
        let rev = reverse_name(ip);
        ptr.iter()
            .filter(|(q, _)| *q == rev)
            .flat_map(|(_, names)| names.iter().map(|n| registrable(n)))
            .collect()
    };
    let control_domains: Vec<String> = control_ips.iter().flat_map(|ip| reverse_domains(ip)).collect();
    let control_text = list(&control_ips, 3);
    let mut bad: Vec<(String, Method)> = Vec::new();
    let mut consistent = Vec::new();
    let mut failed = Vec::new();
    for t in &tested {
        if let Some(f) = &t.failure {
            if super::kind(f) == FailureKind::Nxdomain {
                bad.push((
                    format!("resolver {} said {name} does not exist ({f})", t.resolver),
                    Method::DnsNxdomain,
                ));
            } else {
                failed.push(format!("{}: {f}", t.resolver));
            }
            continue;
        }
        if t.ips.is_empty() {
            failed.push(format!("{}: no addresses", t.resolver));
            continue;
        }
        if let Some(b) = t.ips.iter().find(|ip| is_bogon_str(ip)) {
            bad.push((
                format!("resolver {} answered {b}, a private or reserved address", t.resolver),
                Method::DnsBogon,
            ));
            continue;
        }
        if t.ips.iter().any(|ip| control_ips.contains(ip)) {
            consistent.push(t.resolver.clone());
            continue;
        }
        let domains: Vec<String> = t.ips.iter().flat_map(|ip| reverse_domains(ip)).collect();
        if domains.iter().any(|d| control_domains.contains(d)) {
            consistent.push(t.resolver.clone());
            continue;
        }
        let rev = match domains.first() {
            Some(_) => {
                let mut names: Vec<String> = t
                    .ips
                    .iter()
                    .flat_map(|ip| {
                        let rev = reverse_name(ip);
                        ptr.iter().filter(move |(q, _)| *q == rev).flat_map(|(_, n)| n.clone())
                    })
                    .collect();
                names.sort();
                names.dedup();
                format!(" (reverse name {})", list(&names, 2))
            }
            None => String::new(),
        };
        bad.push((
            format!("resolver {} answered {}{rev}", t.resolver, list(&t.ips, 3)),
            Method::DnsSpoofed,
        ));
    }
    if !bad.is_empty() {
        let method = [Method::DnsBogon, Method::DnsNxdomain, Method::DnsSpoofed]
            .into_iter()
            .find(|m| bad.iter().any(|(_, b)| b == m));
        let mut reasons: Vec<String> = bad.iter().map(|(r, _)| format!("{r} for {name}")).collect();
        reasons.push(format!("the uncensored control resolver answered {control_text}"));
        if !consistent.is_empty() {
            reasons.push(format!(
                "resolvers that agreed with the control: {}",
                list(&consistent, 4)
            ));
        }
        let confidence = if method == Some(Method::DnsSpoofed) { 0.7 } else { 0.85 };
        return no_accessibility(blocked(method, confidence, reasons));
    }
    if !consistent.is_empty() {
        let mut r = vec![format!(
            "every resolver that answered agreed with the control resolver for {name} ({control_text})"
        )];
        if !failed.is_empty() {
            r.push(format!(
                "some resolvers failed, which is not evidence of tampering: {}",
                list(&failed, 3)
            ));
        }
        return no_accessibility(ok(0.75, r));
    }
    let mut r = vec![format!("none of the tested resolvers answered for {name}")];
    if !failed.is_empty() {
        r.push(format!("failures: {}", list(&failed, 4)));
    }
    unclear(r)
}

/// dns_consistency without queries: only the probe's own lists remain.
fn dns_consistency_from_lists(tk: &Value, name: &str) -> Verdict {
    let names = |key: &str| -> Vec<String> {
        arr(tk, key)
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let inconsistent = names("inconsistent");
    let successful = names("successful");
    if !inconsistent.is_empty() {
        return no_accessibility(blocked(
            Some(Method::DnsSpoofed),
            0.4,
            vec![format!(
                "by the probe's own comparison, resolvers {} gave answers for {name} inconsistent with the control \
             (the answers themselves were not kept)",
                list(&inconsistent, 4)
            )],
        ));
    }
    if !successful.is_empty() {
        return no_accessibility(ok(
            0.5,
            vec![format!(
                "by the probe's own comparison, resolvers {} agreed with the control",
                list(&successful, 4)
            )],
        ));
    }
    unclear(vec!["the DNS consistency measurement has no queries or results".into()])
}

/// HTTP Requests (ooni/spec `ts-003-http-requests.md`; fastpath `score_http_requests`).
///
/// The page is fetched over the probe's network and over Tor (the control). Both fetches failing:
/// inconclusive (the site may be down, or Tor blocked). Only the control failing: inconclusive.
/// Only the probe's fetch failing: blocked, with the failure's method — fastpath marks this
/// failed instead, because its check of the two failure keys reads them from the wrong place and
/// it then finds `body_length_match` null. Both fetched: bodies of matching length (ts-003's
/// `body_length_match`) and matching headers are ok; a body mismatch is blocked, unless the
/// probe's own copy was the larger one (Tor exits are often served captchas) or only one copy was
/// kept (fastpath does not score body proportions in Web Connectivity either, for their false
/// positives); a header-only mismatch is not evidence on its own.
pub(super) fn http_requests(m: &Measurement, tk: &Value) -> Verdict {
    let url = m.input_str().map(str::trim).unwrap_or("the URL").to_owned();
    let experiment = failure_at(tk, "experiment_failure");
    let control = failure_at(tk, "control_failure");
    match (&experiment, &control) {
        (Some(e), Some(c)) => {
            return unclear(vec![format!(
                "fetching {url} failed both over the probe's network ({e}) and over Tor ({c}): the site may be \
                 down, or Tor blocked"
            )]);
        }
        (None, Some(c)) => {
            return unclear(vec![format!(
                "the control fetch of {url} over Tor failed ({c}), so there is nothing to compare with"
            )]);
        }
        (Some(e), None) => {
            if let Some(why) = unusable(e) {
                return unclear(vec![format!("fetching {url} failed ({e}), but {why}")]);
            }
            return blocked(
                method_for(e, Step::for_url(&url)),
                0.75,
                vec![format!(
                    "fetching {url} over the probe's network failed ({e}) while the same fetch over Tor worked"
                )],
            );
        }
        (None, None) => {}
    }
    let body_match = bool_at(tk, "body_length_match");
    let headers_match = bool_at(tk, "headers_match");
    let (Some(body_match), Some(headers_match)) = (body_match, headers_match) else {
        return unclear(vec![format!(
            "the probe could not compare its fetch of {url} with the one over Tor (body_length_match or headers_match is null)"
        )]);
    };
    if body_match && headers_match {
        return ok(
            0.8,
            vec![format!("{url} looked the same over the probe's network and over Tor")],
        );
    }
    if body_match {
        let diff: Vec<String> = arr(tk, "headers_diff")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        return unclear(vec![
            format!(
                "{url}'s page matched the copy fetched over Tor, only some headers differed ({})",
                list(&diff, 5)
            ),
            "header differences between a local fetch and a Tor exit's are common and not evidence of blocking".into(),
        ]);
    }
    let proportion = num_at(tk, "body_proportion")
        .map(|p| format!(" (length ratio {p:.2})"))
        .unwrap_or_default();
    let body_len = |is_tor: bool| {
        arr(tk, "requests").iter().find_map(|r| {
            let tor = r
                .get("request")
                .and_then(|q| q.get("tor"))
                .and_then(|t| t.get("is_tor"));
            if tor.and_then(Value::as_bool).unwrap_or(false) != is_tor {
                return None;
            }
            r.get("response")
                .and_then(|resp| resp.get("body"))
                .and_then(Value::as_str)
                .map(str::len)
        })
    };
    let (local, tor) = (body_len(false), body_len(true));
    match (local, tor) {
        (Some(local), Some(tor)) if local < tor => blocked(
            Some(Method::HttpDiff),
            0.6,
            vec![format!(
                "{url}'s page over the probe's network was much shorter than the copy fetched over Tor ({local} vs \
             {tor} bytes{proportion}), as when a blockpage replaces the site"
            )],
        ),
        (Some(local), Some(tor)) => unclear(vec![format!(
            "{url}'s page differed from the copy fetched over Tor{proportion}, but the probe's own copy was the \
             larger one ({local} vs {tor} bytes): Tor exits are often served shorter captcha or denial pages"
        )]),
        _ => unclear(vec![
            format!("{url}'s page differed in length from the copy fetched over Tor{proportion}"),
            "the measurement does not keep both copies, so which one was cut short is unknown; a length \
             difference alone is weak evidence (OONI's fastpath stopped scoring body proportions for the same reason)"
                .into(),
        ]),
    }
}

/// TCP Connect (ooni/spec `ts-008-tcp-connect.md`; fastpath `score_tcp_connect`).
///
/// `connection` is `"success"` or the failure. A failure is blocking, but weakly: the test has no
/// control, so the host itself may be down.
pub(super) fn tcp_connect(m: &Measurement, tk: &Value) -> Verdict {
    let target = m.input_str().map(str::trim).unwrap_or("the target").to_owned();
    match str_at(tk, "connection").map(str::trim) {
        Some("success") => ok(0.7, vec![format!("a TCP connection to {target} succeeded")]),
        Some(s) if !s.is_empty() => {
            let f = Failure::parse(s);
            if let Some(why) = unusable(&f) {
                return unclear(vec![format!("the TCP connection to {target} failed ({f}), but {why}")]);
            }
            blocked(
                method_for(&f, Step::Tcp),
                0.6,
                vec![
                    format!("the TCP connection to {target} failed: {f}"),
                    "the test has no control measurement, so the host itself may have been down".into(),
                ],
            )
        }
        _ => unclear(vec![format!("the TCP connect measurement of {target} has no result")]),
    }
}

/// A ts-027-shaped result: `failure` and `failed_operation`.
enum Fetch {
    /// Worked.
    Ok,
    /// Failed at a step.
    Failed(Failure, Step),
    /// Failed before measuring anything (`failed_operation` `top_level`), or with a failure that
    /// is no evidence.
    ProbeError(String),
    /// No result.
    Unknown,
}

/// Reads a urlgetter result.
fn fetch(v: &Value) -> Fetch {
    match (v.get("failure"), failure_at(v, "failure")) {
        (Some(Value::Null), _) => Fetch::Ok,
        (_, Some(f)) => {
            let op = str_at(v, "failed_operation").unwrap_or("");
            if op == "top_level" {
                return Fetch::ProbeError(format!("{f} (the probe failed before measuring)"));
            }
            if let Some(why) = unusable(&f) {
                return Fetch::ProbeError(format!("{f}: {why}"));
            }
            Fetch::Failed(f, Step::from_operation(op))
        }
        _ => Fetch::Unknown,
    }
}

/// A step's name for the reasons.
fn step_name(step: Step) -> &'static str {
    match step {
        Step::Dns => " during the DNS lookup",
        Step::Tcp => " while connecting",
        Step::Tls => " during the TLS handshake",
        Step::Quic => " during the QUIC handshake",
        Step::Http => " during the HTTP exchange",
        _ => "",
    }
}

/// dnscheck (ooni/spec `ts-028-dnscheck.md`; not scored by fastpath).
///
/// Whether a DNS-over-TLS/HTTPS server works: ok when the lookup through at least one of its
/// addresses worked; blocked when every address failed; when there are no lookups, a failed
/// bootstrap (resolving the server's own name) is blocking only with a DNS error that needs a
/// live network to happen (NXDOMAIN, refusal).
pub(super) fn dnscheck(m: &Measurement, tk: &Value) -> Verdict {
    let server = m.input_str().unwrap_or("the DNS server").to_owned();
    let lookups: Vec<(String, Fetch)> = tk
        .get("lookups")
        .and_then(Value::as_object)
        .map(|l| l.iter().map(|(k, v)| (k.clone(), fetch(v))).collect())
        .unwrap_or_default();
    let worked: Vec<&str> = lookups
        .iter()
        .filter(|(_, f)| matches!(f, Fetch::Ok))
        .map(|(k, _)| k.as_str())
        .collect();
    let failed: Vec<(String, &Failure, Step)> = lookups
        .iter()
        .filter_map(|(k, f)| match f {
            Fetch::Failed(f, s) => Some((k.clone(), f, *s)),
            _ => None,
        })
        .collect();
    let describe: Vec<String> = failed
        .iter()
        .map(|(k, f, s)| format!("{k}: {f}{}", step_name(*s)))
        .collect();
    if !worked.is_empty() {
        let mut r = vec![format!(
            "DNS lookups through {server} worked via {}",
            list(&worked.iter().map(|s| s.to_string()).collect::<Vec<_>>(), 3)
        )];
        if !describe.is_empty() {
            r.push(format!("other addresses failed: {}", list(&describe, 3)));
        }
        return ok(0.75, r);
    }
    if !failed.is_empty() {
        let method = failed.iter().find_map(|(_, f, s)| method_for(f, *s));
        return blocked(
            method,
            0.65,
            vec![format!("every lookup through {server} failed: {}", list(&describe, 4))],
        );
    }
    if let Some(f) = failure_at(tk, "bootstrap_failure") {
        if super::network_answered_with(&f) && f.is_dns() {
            return blocked(
                method_for(&f, Step::Dns),
                0.5,
                vec![format!(
                    "the probe's resolver would not resolve the DNS server's own name in {server}: {f}"
                )],
            );
        }
        return unclear(vec![format!(
            "resolving the DNS server's name in {server} failed ({f}), which may be the probe's own network"
        )]);
    }
    let errors: Vec<String> = lookups
        .iter()
        .filter_map(|(k, f)| match f {
            Fetch::ProbeError(e) => Some(format!("{k}: {e}")),
            _ => None,
        })
        .collect();
    let mut r = vec![format!(
        "the dnscheck measurement of {server} has no usable lookup results"
    )];
    if !errors.is_empty() {
        r.push(list(&errors, 3));
    }
    unclear(r)
}

/// STUN reachability (ooni/spec `ts-025-stun-reachability.md`; fastpath `score_stunreachability`).
///
/// A valid binding response (`failure` null) is ok; any network failure is blocking (weakly: a
/// single UDP exchange without control).
pub(super) fn stun_reachability(m: &Measurement, tk: &Value) -> Verdict {
    let endpoint = str_at(tk, "endpoint")
        .or(m.input_str())
        .unwrap_or("the STUN server")
        .to_owned();
    match fetch(tk) {
        Fetch::Ok => ok(
            0.75,
            vec![format!("the STUN server {endpoint} answered a binding request")],
        ),
        Fetch::Failed(f, _) => blocked(
            method_for(&f, Step::Unknown),
            0.6,
            vec![
                format!("the STUN binding request to {endpoint} failed: {f}"),
                "a single UDP exchange without a control: the server itself may have been down".into(),
            ],
        ),
        Fetch::ProbeError(e) => unclear(vec![format!("the STUN request to {endpoint} failed: {e}")]),
        Fetch::Unknown => unclear(vec![format!("the STUN measurement of {endpoint} has no result")]),
    }
}

/// urlgetter (ooni/spec `ts-027-urlgetter.md`; not scored by fastpath).
///
/// An exploratory tool whose meaning depends on its options (ts-027: analysing it without them
/// "is not recommended"): a success is ok and a network failure is blocking, both with low
/// confidence; a `top_level` failure means the probe never measured.
pub(super) fn urlgetter(m: &Measurement, tk: &Value) -> Verdict {
    let input = m.input_str().unwrap_or("the input").to_owned();
    let caveat = "urlgetter is an exploratory tool; its result depends on the options it ran with".to_owned();
    match fetch(tk) {
        Fetch::Ok => ok(0.6, vec![format!("urlgetter fetched {input} without error"), caveat]),
        Fetch::Failed(f, step) => blocked(
            method_for(&f, step),
            0.5,
            vec![
                format!("urlgetter's fetch of {input} failed{}: {f}", step_name(step)),
                caveat,
            ],
        ),
        Fetch::ProbeError(e) => unclear(vec![format!("urlgetter could not measure {input}: {e}")]),
        Fetch::Unknown => unclear(vec![format!("the urlgetter measurement of {input} has no result")]),
    }
}

/// browser_web (ooni/spec `ts-036-browser_web.md`; fastpath `score_browser_web`).
///
/// `result` `ok` is ok, `error` blocked — with low confidence, because ts-036 lists causes of
/// `error` that are not blocking (CORP headers, tracking protection). A plain-`http://` target
/// always fails from the HTTPS test page (mixed content, ts-036), so its error is inconclusive.
pub(super) fn browser_web(m: &Measurement, tk: &Value) -> Verdict {
    let url = m.input_str().unwrap_or("the page").to_owned();
    let load = num_at(tk, "load_time_ms")
        .map(|t| format!(" in {t:.0} ms"))
        .unwrap_or_default();
    match str_at(tk, "result") {
        Some("ok") => ok(0.7, vec![format!("a web browser loaded {url}{load}")]),
        Some("error") if url.to_ascii_lowercase().starts_with("http:") => unclear(vec![format!(
            "the browser could not load {url}, but plain-HTTP pages always fail from the HTTPS test page (mixed \
             content, ts-036)"
        )]),
        Some("error") => blocked(None, 0.5, vec![
            format!("a web browser on the probe's network could not load {url}"),
            "the browser reports no error detail, and some sites refuse such cross-origin loads, so this is weak evidence".into(),
        ]),
        _ => unclear(vec![format!("the browser_web measurement of {url} has no result")]),
    }
}

/// DASH and NDT (ooni/spec `ts-021-dash.md`, `ts-022-ndt.md`; fastpath `score_dash`,
/// `score_ndt`): speed tests against M-Lab servers. They say how fast the network is, not
/// whether anything is blocked, so they are always inconclusive; the reason carries the speed.
pub(super) fn performance(test_name: &str, keys: &Value) -> Verdict {
    let mut reasons = vec![format!(
        "{test_name} measures network speed, not blocking, so it gives no verdict on censorship"
    )];
    let kbps = |v: Option<f64>| v.map(|k| format!("{:.1} Mbit/s", k / 1000.0));
    let simple = keys.get("simple").unwrap_or(&Value::Null);
    let summary = keys.get("summary").unwrap_or(&Value::Null);
    let mut speeds = Vec::new();
    if let Some(s) = kbps(num_at(simple, "median_bitrate")) {
        speeds.push(format!("median video bitrate {s}"));
    }
    if let Some(s) = kbps(num_at(summary, "download").or(num_at(simple, "download"))) {
        speeds.push(format!("download {s}"));
    }
    if let Some(s) = kbps(num_at(summary, "upload").or(num_at(simple, "upload"))) {
        speeds.push(format!("upload {s}"));
    }
    if !speeds.is_empty() {
        reasons.push(format!("measured: {}", speeds.join(", ")));
    }
    if let Some(f) = failure_at(keys, "failure") {
        reasons.push(format!("the test itself failed: {f}"));
    }
    unclear(reasons)
}

#[cfg(test)]
mod tests {
    use super::super::tests::mentions;
    use super::super::verdict;
    use super::registrable;
    use censorwatch_model::{Measurement, Method, Status, Verdict};
    use serde_json::{Value, json};

    fn run_input(test: &str, input: Value, keys: Value) -> Verdict {
        let m = Measurement::from_slice(
            json!({"test_name": test, "input": input, "test_keys": keys})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        verdict(test, &m, &m.test_keys_value().unwrap())
    }

    fn a(resolver: &str, port: u16, ips: &[&str], failure: Option<&str>) -> Value {
        json!({"resolver_hostname": resolver, "resolver_port": port, "query_type": "A", "hostname": "example.gr",
               "failure": failure, "answers": ips.iter().map(|ip| json!({"ipv4": ip, "answer_type": "A"})).collect::<Vec<_>>()})
    }

    fn ptr(ip: &str, name: &str) -> Value {
        let mut p: Vec<&str> = ip.split('.').collect();
        p.reverse();
        json!({"resolver_hostname": "8.8.8.8", "resolver_port": 53, "query_type": "PTR",
               "hostname": format!("{}.in-addr.arpa", p.join(".")), "answers": [{"hostname": name, "answer_type": "PTR"}], "failure": null})
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable("ams16s22-in-f238.1e100.net"), "1e100.net");
        assert_eq!(registrable("host.example.co.uk."), "example.co.uk");
        assert_eq!(registrable("edppi.otenet.gr"), "otenet.gr");
        assert_eq!(registrable(""), "");
    }

    #[test]
    fn dns_consistency_rules() {
        let ctl = "37.218.247.110:57004";
        let spoofed = run_input(
            "dns_consistency",
            json!("example.gr"),
            json!({"control_resolver": ctl, "queries": [
            a("37.218.247.110", 57004, &["185.82.217.23"], None), a("195.170.0.1", 53, &["83.235.64.18"], None),
            a("8.8.8.8", 53, &["185.82.217.23"], None), ptr("83.235.64.18", "edppi.otenet.gr"), ptr("185.82.217.23", "hey.hey.hey")]}),
        );
        assert_eq!(spoofed.status, Status::Blocked, "{spoofed:?}");
        assert_eq!(spoofed.method, Some(Method::DnsSpoofed));
        assert!(
            mentions(
                &spoofed,
                "195.170.0.1 answered 83.235.64.18 (reverse name edppi.otenet.gr)"
            ),
            "{:?}",
            spoofed.reasons
        );
        assert!(mentions(&spoofed, "185.82.217.23"));

        let cdn = run_input(
            "dns_consistency",
            json!("google.com"),
            json!({"control_resolver": ctl, "queries": [
            a("37.218.247.110", 57004, &["216.58.211.110"], None), a("127.0.1.1", 53, &["216.58.212.238"], None),
            ptr("216.58.212.238", "ams16s22-in-f238.1e100.net"), ptr("216.58.211.110", "ams15s32-in-f14.1e100.net")]}),
        );
        assert_eq!(
            cdn.status,
            Status::Ok,
            "same operator's servers are consistent: {cdn:?}"
        );

        let bogon = run_input(
            "dns_consistency",
            json!("example.gr"),
            json!({"control_resolver": ctl, "queries": [
            a("37.218.247.110", 57004, &["185.82.217.23"], None), a("195.170.0.1", 53, &["10.10.34.36"], None)]}),
        );
        assert_eq!(bogon.method, Some(Method::DnsBogon));
        assert!(mentions(&bogon, "10.10.34.36"));

        let nx = run_input(
            "dns_consistency",
            json!("example.gr"),
            json!({"control_resolver": ctl, "queries": [
            a("37.218.247.110", 57004, &["185.82.217.23"], None), a("195.170.0.1", 53, &[], Some("dns_nxdomain_error"))]}),
        );
        assert_eq!(nx.status, Status::Blocked);
        assert_eq!(nx.method, Some(Method::DnsNxdomain));

        let no_control = run_input(
            "dns_consistency",
            json!("198.175.124.185"),
            json!({"control_resolver": "8.8.8.8:53", "queries": [
            a("8.8.8.8", 53, &[], Some("no_answer")), a("212.118.0.1", 53, &[], Some("no_answer"))]}),
        );
        assert_eq!(no_control.status, Status::Inconclusive, "{no_control:?}");
        assert!(mentions(&no_control, "8.8.8.8:53"));

        let timeouts = run_input(
            "dns_consistency",
            json!("example.gr"),
            json!({"control_resolver": ctl, "queries": [
            a("37.218.247.110", 57004, &["185.82.217.23"], None), a("195.170.0.1", 53, &[], Some("deferred_timeout_error"))]}),
        );
        assert_eq!(timeouts.status, Status::Inconclusive, "{timeouts:?}");
    }

    fn http_req(is_tor: bool, body: &str) -> Value {
        json!({"request": {"url": "http://example.com", "headers": {}, "tor": {"is_tor": is_tor}}, "response": {"code": 200, "body": body}, "failure": null})
    }

    #[test]
    fn http_requests_rules() {
        let url = json!("http://example.com");
        let v = run_input(
            "http_requests",
            url.clone(),
            json!({"body_length_match": true, "headers_match": true, "experiment_failure": null, "control_failure": null}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");
        let v = run_input(
            "http_requests",
            url.clone(),
            json!({"body_length_match": null, "headers_match": null, "experiment_failure": "connection_reset", "control_failure": null}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::HttpReset));
        assert!(mentions(&v, "connection_reset"));
        let v = run_input(
            "http_requests",
            url.clone(),
            json!({"experiment_failure": "dns_lookup_error", "control_failure": "socks_host_unreachable"}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "socks_host_unreachable"));
        let v = run_input(
            "http_requests",
            url.clone(),
            json!({"body_length_match": false, "headers_match": false, "body_proportion": 0.1,
            "requests": [http_req(false, "short blockpage"), http_req(true, "a much longer real page with content")]}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::HttpDiff));
        let v = run_input(
            "http_requests",
            url.clone(),
            json!({"body_length_match": false, "headers_match": false,
            "requests": [http_req(false, "a much longer real page with content"), http_req(true, "captcha")]}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        let v = run_input(
            "http_requests",
            url.clone(),
            json!({"body_length_match": false, "headers_match": false, "body_proportion": 0.04,
            "requests": [http_req(false, "only the probe's copy was kept")]}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "0.04"), "{:?}", v.reasons);
        let v = run_input(
            "http_requests",
            url.clone(),
            json!({"body_length_match": true, "headers_match": false, "headers_diff": ["Set-Cookie"]}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "Set-Cookie"));
        let v = run_input(
            "http_requests",
            url,
            json!({"body_length_match": null, "headers_match": false}),
        );
        assert_eq!(v.status, Status::Inconclusive);
    }

    #[test]
    fn tcp_connect_rules() {
        let v = run_input(
            "tcp_connect",
            json!("github.com:443\n"),
            json!({"connection": "success"}),
        );
        assert_eq!(v.status, Status::Ok);
        let v = run_input(
            "tcp_connect",
            json!("1.2.3.4:443"),
            json!({"connection": "connection_refused_error"}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TcpRefused));
        assert!(mentions(&v, "1.2.3.4:443") && mentions(&v, "connection_refused_error"));
        let v = run_input(
            "tcp_connect",
            json!("1.2.3.4:443"),
            json!({"connection": "tcp_timed_out_error"}),
        );
        assert_eq!(v.method, Some(Method::TcpTimeout));
        assert_eq!(
            run_input(
                "tcp_connect",
                json!("1.2.3.4:443"),
                json!({"connection": "network_unreachable"})
            )
            .status,
            Status::Inconclusive
        );
        assert_eq!(
            run_input("tcp_connect", json!("1.2.3.4:443"), json!({})).status,
            Status::Inconclusive
        );
    }

    #[test]
    fn dnscheck_rules() {
        let input = json!("dot://dns.google:853");
        let v = run_input(
            "dnscheck",
            input.clone(),
            json!({"bootstrap_failure": null, "lookups": {
            "dot://8.8.8.8:853": {"failure": null}, "dot://8.8.4.4:853": {"failure": "connection_reset", "failed_operation": "tls_handshake"}}}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert!(mentions(&v, "8.8.4.4"));
        let v = run_input(
            "dnscheck",
            input.clone(),
            json!({"lookups": {
            "dot://8.8.8.8:853": {"failure": "connection_reset", "failed_operation": "tls_handshake"}}}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TlsReset));
        assert!(
            mentions(&v, "dot://8.8.8.8:853: connection_reset during the TLS handshake"),
            "{:?}",
            v.reasons
        );
        let v = run_input(
            "dnscheck",
            input.clone(),
            json!({"bootstrap_failure": "dns_nxdomain_error", "lookups": {}}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::DnsNxdomain));
        let v = run_input(
            "dnscheck",
            input,
            json!({"bootstrap_failure": "generic_timeout_error", "lookups": {}}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
    }

    #[test]
    fn stun_urlgetter_browser_and_performance_rules() {
        let v = run_input(
            "stunreachability",
            Value::Null,
            json!({"endpoint": "stun.l.google.com:19302", "failure": null}),
        );
        assert_eq!(v.status, Status::Ok);
        let v = run_input(
            "stunreachability",
            Value::Null,
            json!({"endpoint": "stun.l.google.com:19302", "failure": "generic_timeout_error"}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert!(mentions(&v, "stun.l.google.com:19302") && mentions(&v, "generic_timeout_error"));
        let v = run_input(
            "stunreachability",
            Value::Null,
            json!({"endpoint": "x:1", "failure": "dns_nxdomain_error"}),
        );
        assert_eq!(v.method, Some(Method::DnsNxdomain));
        assert_eq!(
            run_input("stunreachability", Value::Null, json!({"endpoint": "x:1"})).status,
            Status::Inconclusive
        );

        let v = run_input(
            "urlgetter",
            json!("https://example.com"),
            json!({"failure": null, "failed_operation": null}),
        );
        assert_eq!(v.status, Status::Ok);
        let v = run_input(
            "urlgetter",
            json!("https://example.com"),
            json!({"failure": "connection_reset", "failed_operation": "tls_handshake"}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TlsReset));
        let v = run_input(
            "urlgetter",
            json!("ooni.org"),
            json!({"failure": "unknown_failure: unknown targetURL scheme", "failed_operation": "top_level"}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "unknown targetURL scheme"));

        assert_eq!(
            run_input(
                "browser_web",
                json!("https://www.viber.com/"),
                json!({"result": "ok", "load_time_ms": 357.4})
            )
            .status,
            Status::Ok
        );
        let v = run_input(
            "browser_web",
            json!("https://app.wire.com/"),
            json!({"result": "error"}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert!(mentions(&v, "https://app.wire.com/"));
        assert_eq!(
            run_input("browser_web", json!("http://example.com/"), json!({"result": "error"})).status,
            Status::Inconclusive
        );
        assert_eq!(
            run_input("browser_web", json!("https://x/"), json!({})).status,
            Status::Inconclusive
        );

        let v = run_input(
            "dash",
            Value::Null,
            json!({"simple": {"median_bitrate": 66260.0}, "failure": null}),
        );
        assert_eq!(v.status, Status::Inconclusive);
        assert!(mentions(&v, "speed") && mentions(&v, "66.3 Mbit/s"), "{:?}", v.reasons);
        let v = run_input(
            "ndt",
            Value::Null,
            json!({"summary": {"download": 12000.0, "upload": 3000.0}}),
        );
        assert!(mentions(&v, "download 12.0 Mbit/s"), "{:?}", v.reasons);
    }
}
