//! Unit tests for each Web Connectivity rule, on small hand-built measurements (the QA corpus in
//! `tests/synthetic.rs` covers the cascade end to end; these pin the rules it does not reach).

use crate::{Analyzer, FingerprintDb};
use censorwatch_model::{Measurement, Method, OoniBlocking, Status, Verdict};
use serde_json::{Value, json};

const HOST: &str = "x.com";
const REAL_IP: &str = "104.244.42.1";

fn measurement(cc: &str, input: &str, keys: Value) -> Measurement {
    let doc = json!({"test_name": "web_connectivity", "probe_cc": cc, "input": input, "test_keys": keys});
    Measurement::from_slice(doc.to_string().as_bytes()).unwrap()
}

fn analyze(cc: &str, input: &str, keys: Value) -> Verdict {
    Analyzer::with_builtin_fingerprints()
        .verdict(&measurement(cc, input, keys))
        .unwrap()
}

fn query(ip: &str, asn: i64) -> Value {
    json!({"engine": "getaddrinfo", "hostname": HOST, "transaction_id": 1, "failure": null,
           "answers": [{"answer_type": "A", "ipv4": ip, "asn": asn}]})
}

fn control(ips: &[&str], asn: i64) -> Value {
    json!({
        "dns": {"failure": null, "addrs": ips},
        "tcp_connect": ips.iter().map(|ip| (format!("{ip}:443"), json!({"status": true, "failure": null}))).collect::<serde_json::Map<_, _>>(),
        "tls_handshake": ips.iter().map(|ip| (format!("{ip}:443"), json!({"status": true, "failure": null, "server_name": HOST}))).collect::<serde_json::Map<_, _>>(),
        "http_request": {"status_code": 200, "body_length": 2000, "title": "X. It's what's happening", "headers": {"X-Twitter": "1"}, "failure": null},
        "ip_info": ips.iter().map(|ip| (ip.to_string(), json!({"asn": asn, "flags": 2}))).collect::<serde_json::Map<_, _>>(),
    })
}

fn tls(id: i64, ip: &str, sni: &str, failure: Option<&str>) -> Value {
    json!({"transaction_id": id, "address": format!("{ip}:443"), "server_name": sni, "failure": failure})
}

fn connect(id: i64, ip: &str, failure: Option<&str>) -> Value {
    json!({"transaction_id": id, "ip": ip, "port": 443, "status": {"success": failure.is_none(), "failure": failure}})
}

#[test]
fn sni_ab_test_names_sni_filtering_with_high_confidence() {
    let v = analyze(
        "PK",
        "https://x.com/",
        json!({
            "queries": [query(REAL_IP, 13414)],
            "tcp_connect": [connect(2, REAL_IP, None), connect(3, REAL_IP, None)],
            "tls_handshakes": [tls(2, REAL_IP, HOST, Some("connection_reset")), tls(3, REAL_IP, "example.org", None)],
            "requests": [],
            "control": control(&[REAL_IP], 13414),
        }),
    );
    assert_eq!((v.status, v.method), (Status::Blocked, Some(Method::TlsReset)));
    assert!(v.confidence >= 0.95, "{v:?}");
    assert!(
        v.reasons.iter().any(|r| r.contains("decoy SNI example.org")),
        "{:?}",
        v.reasons
    );
    assert_eq!(v.ooni_blocking, Some(OoniBlocking::HttpFailure));
}

#[test]
fn tls_failure_without_decoy_is_less_certain() {
    let v = analyze(
        "PK",
        "https://x.com/",
        json!({
            "queries": [query(REAL_IP, 13414)],
            "tcp_connect": [connect(2, REAL_IP, None)],
            "tls_handshakes": [tls(2, REAL_IP, HOST, Some("generic_timeout_error"))],
            "control": control(&[REAL_IP], 13414),
        }),
    );
    assert_eq!((v.status, v.method), (Status::Blocked, Some(Method::TlsTimeout)));
    assert!(v.confidence < 0.95 && v.confidence >= 0.8, "{v:?}");
}

#[test]
fn cdn_answer_in_the_same_asn_is_consistent() {
    // Different address, same network as the control's: a CDN node, not a spoof.
    let v = analyze(
        "PK",
        "https://x.com/",
        json!({
            "queries": [query("104.244.43.7", 13414)],
            "tcp_connect": [connect(2, "104.244.43.7", Some("generic_timeout_error"))],
            "control": control(&[REAL_IP], 13414),
        }),
    );
    assert_eq!(v.method, Some(Method::TcpTimeout), "{v:?}");
    // Consistent for OONI too (same ASN); the control never tried this address, so OONI's LTE
    // rule 4.1.2 says http-failure rather than tcp_ip.
    assert_eq!(v.ooni_blocking, Some(OoniBlocking::HttpFailure));
}

#[test]
fn cdn_answer_with_a_valid_certificate_is_consistent_for_us_not_for_ooni() {
    // Different address and ASN (no ASN in the answer), but the probe completed a verified TLS
    // handshake for the name on it, then the HTTP exchange was reset.
    let v = analyze(
        "PK",
        "https://x.com/",
        json!({
            "queries": [query("151.101.1.1", 0)],
            "tcp_connect": [connect(2, "151.101.1.1", None), connect(3, "151.101.1.1", None)],
            "tls_handshakes": [tls(2, "151.101.1.1", HOST, None), tls(3, "151.101.1.1", HOST, None)],
            "requests": [{"transaction_id": 3, "failure": "connection_reset", "request": {"url": "https://x.com/"}}],
            "control": control(&[REAL_IP], 13414),
        }),
    );
    assert_eq!(
        (v.status, v.method),
        (Status::Blocked, Some(Method::HttpReset)),
        "{v:?}"
    );
    assert!(v.reasons.iter().any(|r| r.contains("certificate")), "{:?}", v.reasons);
    assert_eq!(
        v.ooni_blocking,
        Some(OoniBlocking::Dns),
        "OONI's classic consistency has no TLS rule"
    );
}

#[test]
fn spoofed_answer_takes_the_blame_for_the_failure_after_it() {
    let v = analyze(
        "PK",
        "https://x.com/",
        json!({
            "queries": [query("203.0.114.9", 64512)],
            "tcp_connect": [connect(2, "203.0.114.9", Some("connection_refused"))],
            "control": control(&[REAL_IP], 13414),
        }),
    );
    assert_eq!((v.status, v.method), (Status::Blocked, Some(Method::DnsSpoofed)));
    assert!(
        v.reasons[0].contains("203.0.114.9") && v.reasons[0].contains(REAL_IP),
        "{:?}",
        v.reasons
    );
    assert!(v.reasons.iter().any(|r| r.starts_with("Then:")), "{:?}", v.reasons);
}

#[test]
fn nxdomain_with_doh_corroboration() {
    let v = analyze(
        "PK",
        "https://x.com/",
        json!({
            "queries": [
                {"engine": "getaddrinfo", "hostname": HOST, "transaction_id": 1, "failure": "dns_nxdomain_error", "answers": null},
                {"engine": "doh", "hostname": HOST, "transaction_id": 4, "failure": null, "answers": [{"answer_type": "A", "ipv4": REAL_IP}]},
            ],
            "dns_experiment_failure": "dns_nxdomain_error",
            "control": control(&[REAL_IP], 13414),
        }),
    );
    assert_eq!((v.status, v.method), (Status::Blocked, Some(Method::DnsNxdomain)));
    assert!(v.confidence > 0.9);
    assert!(v.reasons.iter().any(|r| r.contains("DoH")), "{:?}", v.reasons);
    assert_eq!((v.ooni_blocking, v.accessible), (Some(OoniBlocking::Dns), Some(false)));
}

#[test]
fn control_failing_the_same_way_is_down_and_differently_is_inconclusive() {
    let keys = |control_failure: &str| {
        let mut c = control(&[REAL_IP], 13414);
        c["tcp_connect"][format!("{REAL_IP}:443")] = json!({"status": false, "failure": control_failure});
        json!({"queries": [query(REAL_IP, 13414)], "tcp_connect": [connect(2, REAL_IP, Some("connection_refused"))], "control": c})
    };
    let same = analyze("PK", "https://x.com/", keys("connection_refused_error"));
    assert_eq!(same.status, Status::Down, "{same:?}");
    assert_eq!(
        (same.ooni_blocking, same.accessible),
        (Some(OoniBlocking::False), Some(false))
    );
    let different = analyze("PK", "https://x.com/", keys("dns_nxdomain_error"));
    assert_eq!(different.status, Status::Inconclusive, "{different:?}");
    assert!(different.reasons[0].contains("failed differently"));
}

#[test]
fn no_control_is_inconclusive_unless_tls_vouches() {
    let v = analyze(
        "PK",
        "http://x.com/",
        json!({"queries": [query(REAL_IP, 13414)], "tcp_connect": [connect(2, REAL_IP, Some("connection_reset"))],
               "control_failure": "generic_timeout_error", "control": {}}),
    );
    assert_eq!(v.status, Status::Inconclusive);
    assert!(v.reasons[0].contains("control could not be reached"), "{:?}", v.reasons);
    assert_eq!((v.ooni_blocking, v.accessible), (None, None));
}

#[test]
fn server_side_challenge_is_not_censorship() {
    let v = analyze(
        "PK",
        "http://x.com/",
        json!({
            "queries": [query(REAL_IP, 13414)],
            "tcp_connect": [{"transaction_id": 2, "ip": REAL_IP, "port": 80, "status": {"success": true, "failure": null}}],
            "requests": [{"transaction_id": 2, "failure": null, "request": {"url": "http://x.com/"},
                          "response": {"code": 403, "headers": {"Server": "cloudflare"}, "body": "<title>Attention Required! | Cloudflare</title>"}}],
            "control": control(&[REAL_IP], 13414),
        }),
    );
    assert_eq!(v.status, Status::Inconclusive, "{v:?}");
    assert!(v.reasons[0].contains("server-side"), "{:?}", v.reasons);
    assert_eq!(
        v.ooni_blocking,
        Some(OoniBlocking::HttpDiff),
        "OONI calls this http-diff"
    );
}

#[test]
fn pakistani_blockpage_address_is_a_confirmed_blockpage_in_pakistan_only() {
    let keys = || {
        json!({"queries": [query("203.82.48.83", 0)], "tcp_connect": [connect(2, "203.82.48.83", None)],
               "tls_handshakes": [tls(2, "203.82.48.83", HOST, Some("ssl_invalid_hostname"))],
               "control": control(&[REAL_IP], 13414)})
    };
    let pk = analyze("PK", "https://x.com/", keys());
    assert_eq!((pk.status, pk.method), (Status::Blocked, Some(Method::DnsSpoofed)));
    assert_eq!(pk.blockpage.as_deref(), Some("ooni.pk_3"));
    assert!(pk.confidence >= 0.99);
    let elsewhere = analyze("DE", "https://x.com/", keys());
    assert_eq!(elsewhere.blockpage.as_deref(), Some("ooni.pk_3"));
    assert!(elsewhere.confidence < 0.99, "not confirmed outside PK: {elsewhere:?}");
    assert!(elsewhere.reasons.iter().any(|r| r.contains("not known in DE")));
}

#[test]
fn blockpage_address_the_control_also_resolves_is_not_a_blockpage() {
    let v = analyze(
        "PK",
        "https://x.com/",
        json!({"queries": [query("203.82.48.83", 0)], "tcp_connect": [connect(2, "203.82.48.83", None)],
               "tls_handshakes": [tls(2, "203.82.48.83", HOST, None)],
               "requests": [{"transaction_id": 2, "failure": null, "request": {"url": "https://x.com/"}, "response": {"code": 200, "body": "hi"}}],
               "control": control(&["203.82.48.83"], 0)}),
    );
    assert_eq!(v.blockpage, None);
    assert_eq!(v.status, Status::Ok, "{v:?}");
}

#[test]
fn private_address_fingerprint_counts_only_in_its_country() {
    let keys = || json!({"queries": [query("10.10.34.35", 0)], "control": control(&[REAL_IP], 13414)});
    let ir = analyze("IR", "https://x.com/", keys());
    assert_eq!(ir.blockpage.as_deref(), Some("ooni.ir_5"));
    assert_eq!(ir.method, Some(Method::DnsBogon));
    let it = analyze("IT", "https://x.com/", keys());
    assert_eq!(it.blockpage, None, "a private address in Italy is not Iran's blockpage");
    assert_eq!(it.method, Some(Method::DnsBogon));
}

#[test]
fn empty_fingerprint_set_changes_only_blockpage_verdicts() {
    let m = measurement(
        "PK",
        "https://x.com/",
        json!({"queries": [query("203.82.48.83", 0)], "control": control(&[REAL_IP], 13414)}),
    );
    let without = Analyzer::new(FingerprintDb::from_csv(
        "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n",
        "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n",
    ).unwrap())
    .verdict(&m)
    .unwrap();
    assert_eq!(without.blockpage, None);
    assert_eq!(
        without.method,
        Some(Method::DnsSpoofed),
        "still a spoofed answer, just not a known blockpage"
    );
}

#[test]
fn different_answer_failing_for_everyone_is_down_only_when_the_control_cannot_fetch_the_site() {
    // The probe's answer times out from both sides (a sinkhole, or a broken CDN node).
    let keys = |control_fetch: Value| {
        let mut c = control(&[REAL_IP], 13414);
        c["tcp_connect"]["198.51.101.7:443"] = json!({"status": false, "failure": "generic_timeout_error"});
        c["http_request"] = control_fetch;
        json!({"queries": [query("198.51.101.7", 64500)], "tcp_connect": [connect(2, "198.51.101.7", Some("generic_timeout_error"))], "control": c})
    };
    let sinkhole = analyze(
        "PK",
        "https://x.com/",
        keys(json!({"status_code": 200, "body_length": 2000, "failure": null})),
    );
    assert_eq!(
        (sinkhole.status, sinkhole.method),
        (Status::Blocked, Some(Method::DnsSpoofed)),
        "{sinkhole:?}"
    );
    let broken = analyze(
        "PK",
        "https://x.com/",
        keys(json!({"status_code": -1, "failure": "generic_timeout_error"})),
    );
    assert_eq!(broken.status, Status::Down, "{broken:?}");
    assert!(
        broken.reasons.iter().any(|r| r.contains("explains nothing")),
        "{:?}",
        broken.reasons
    );
}

/// A measurement where x.com loaded over verified TLS, with these QUIC handshakes and this control
/// `quic_handshake` map.
fn quic_case(quic: Value, control_quic: Option<Value>) -> Verdict {
    let mut c = control(&[REAL_IP], 13414);
    if let Some(q) = control_quic {
        c["quic_handshake"] = q;
    }
    analyze(
        "RU",
        "https://x.com/",
        json!({
            "queries": [query(REAL_IP, 13414)],
            "tcp_connect": [connect(2, REAL_IP, None)],
            "tls_handshakes": [tls(2, REAL_IP, HOST, None)],
            "requests": [{"transaction_id": 2, "failure": null,
                          "request": {"url": "https://x.com/"},
                          "response": {"code": 200, "body": "<title>X</title>", "headers": {}}}],
            "x_quic_handshakes": quic,
            "control": c,
        }),
    )
}

fn quic_hs(ip: &str, failure: Option<&str>) -> Value {
    json!({"network": "udp", "address": format!("{ip}:443"), "server_name": HOST, "alpn": ["h3"],
           "failure": failure, "negotiated_protocol": if failure.is_none() { "h3" } else { "" },
           "t0": 0.1, "t": 0.2, "transaction_id": 5})
}

fn control_quic(ip: &str, ok: bool) -> Value {
    json!({format!("{ip}:443"): {"server_name": HOST, "status": ok,
                                 "failure": if ok { Value::Null } else { json!("generic_timeout_error") }}})
}

#[test]
fn quic_timeout_where_the_control_completes_is_quic_blocking() {
    let v = quic_case(
        json!([quic_hs(REAL_IP, Some("generic_timeout_error"))]),
        Some(control_quic(REAL_IP, true)),
    );
    assert_eq!(
        (v.status, v.method),
        (Status::Blocked, Some(Method::QuicTimeout)),
        "{v:?}"
    );
    assert!((v.confidence - 0.85).abs() < 1e-9, "{v:?}");
    assert!(v.reasons[0].contains("timed out"), "{v:?}");
    assert!(v.reasons.iter().any(|r| r.starts_with("Over TCP:")), "{v:?}");
    // OONI's keys speak of TCP/TLS only: accessible.
    assert_eq!(v.accessible, Some(true));
}

#[test]
fn quic_timeout_with_the_control_succeeding_elsewhere_is_less_sure() {
    let v = quic_case(
        json!([quic_hs(REAL_IP, Some("generic_timeout_error"))]),
        Some(control_quic("104.244.42.65", true)),
    );
    assert_eq!(
        (v.status, v.method),
        (Status::Blocked, Some(Method::QuicTimeout)),
        "{v:?}"
    );
    assert!((v.confidence - 0.75).abs() < 1e-9, "{v:?}");
}

#[test]
fn quic_failing_for_the_control_too_is_never_blocking() {
    let v = quic_case(
        json!([quic_hs(REAL_IP, Some("generic_timeout_error"))]),
        Some(control_quic(REAL_IP, false)),
    );
    assert_eq!((v.status, v.method), (Status::Ok, None), "{v:?}");
    assert!(
        v.reasons.iter().any(|r| r.contains("control's QUIC failed too")),
        "{v:?}"
    );
}

#[test]
fn quic_without_a_control_result_is_not_blocking() {
    for control in [None, Some(json!({}))] {
        let v = quic_case(json!([quic_hs(REAL_IP, Some("generic_timeout_error"))]), control);
        assert_eq!((v.status, v.method), (Status::Ok, None), "{v:?}");
        assert!(v.reasons.iter().any(|r| r.contains("no QUIC result")), "{v:?}");
    }
}

#[test]
fn quic_failing_otherwise_is_only_noted() {
    let v = quic_case(
        json!([quic_hs(REAL_IP, Some("ssl_failed_handshake"))]),
        Some(control_quic(REAL_IP, true)),
    );
    assert_eq!((v.status, v.method), (Status::Ok, None), "{v:?}");
    assert!(v.reasons.iter().any(|r| r.contains("only noted")), "{v:?}");
}

#[test]
fn quic_success_or_absence_changes_nothing() {
    let ok = quic_case(json!([quic_hs(REAL_IP, None)]), Some(control_quic(REAL_IP, true)));
    assert_eq!((ok.status, ok.method), (Status::Ok, None), "{ok:?}");
    assert!(ok.reasons.iter().any(|r| r.contains("completed too")));
    let none = quic_case(json!([]), Some(control_quic(REAL_IP, true)));
    assert_eq!((none.status, none.method), (Status::Ok, None));
    // One address answering QUIC is enough: the server speaks it and the path lets it through.
    let mixed = quic_case(
        json!([
            quic_hs(REAL_IP, Some("generic_timeout_error")),
            quic_hs("104.244.42.65", None)
        ]),
        Some(control_quic(REAL_IP, true)),
    );
    assert_eq!(mixed.status, Status::Ok, "{mixed:?}");
}

#[test]
fn quic_does_not_override_an_earlier_block() {
    let v = analyze(
        "PK",
        "https://x.com/",
        json!({
            "queries": [query(REAL_IP, 13414)],
            "tcp_connect": [connect(2, REAL_IP, None)],
            "tls_handshakes": [tls(2, REAL_IP, HOST, Some("connection_reset"))],
            "requests": [],
            "x_quic_handshakes": [quic_hs(REAL_IP, Some("generic_timeout_error"))],
            "control": control(&[REAL_IP], 13414),
        }),
    );
    assert_eq!((v.status, v.method), (Status::Blocked, Some(Method::TlsReset)), "{v:?}");
    assert!(v.reasons.iter().any(|r| r.contains("QUIC")), "{v:?}");
}
