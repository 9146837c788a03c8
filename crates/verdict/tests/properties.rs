//! Property tests: the verdict engine never panics, whatever the test keys hold, and what it
//! returns is well-formed (confidence in 0..1, a method exactly when blocked, at least one reason).
//!
//! Two generators: arbitrary JSON (any shape, any test name), and structurally valid Web
//! Connectivity keys with random failures, addresses, status codes and bodies, which reach the
//! deep rules (DNS consistency, the linear walk, HTTP comparison, fingerprints).

use censorwatch_model::{Measurement, Status};
use censorwatch_verdict::Analyzer;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::OnceLock;

fn analyzer() -> &'static Analyzer {
    static A: OnceLock<Analyzer> = OnceLock::new();
    A.get_or_init(Analyzer::with_builtin_fingerprints)
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-z_:.0-9 ]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "connection_reset",
            "generic_timeout_error",
            "dns_nxdomain_error",
            "eof_error",
            "ssl_invalid_hostname",
            "10.0.0.1",
            "127.0.0.1:443",
            "93.184.216.34",
            "https://x.com/",
            "dns",
            "tcp_ip",
            "depth=1",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "queries",
                    "answers",
                    "ipv4",
                    "failure",
                    "tcp_connect",
                    "status",
                    "success",
                    "ip",
                    "port",
                    "tls_handshakes",
                    "requests",
                    "response",
                    "body",
                    "code",
                    "headers",
                    "control",
                    "dns",
                    "addrs",
                    "http_request",
                    "status_code",
                    "title",
                    "ip_info",
                    "tags",
                    "transaction_id",
                    "server_name",
                    "address",
                    "engine",
                    "hostname",
                    "blocking",
                    "accessible",
                    "x",
                ]),
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn failure() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(Value::Null),
        1 => prop::sample::select(vec![
            "connection_reset", "connection_refused", "generic_timeout_error", "eof_error", "dns_nxdomain_error",
            "dns_no_answer", "ssl_invalid_hostname", "ssl_unknown_authority", "unknown_failure: x",
            "dns_name_error", "unknown_error", "android_dns_cache_no_data", "http_invalid_redirect_location_host",
        ])
        .prop_map(|s| json!(s)),
    ]
}

fn ip() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "93.184.216.34",
        "10.10.34.35",
        "127.0.0.1",
        "130.192.182.17",
        "203.82.48.83",
        "::1",
        "2606:4700::1",
    ])
    .prop_map(str::to_owned)
}

fn web_keys() -> impl Strategy<Value = Value> {
    let query = (ip(), failure(), prop::sample::select(vec!["getaddrinfo", "udp", "doh", "system"]), 0..3i64, 0..3u32)
        .prop_map(|(ip, f, engine, tid, depth)| {
            json!({"hostname": "www.example.com", "engine": engine, "failure": f, "transaction_id": tid,
                   "tags": [format!("depth={depth}")],
                   "answers": if f.is_null() { json!([{"answer_type": "A", "ipv4": ip, "asn": 15133}]) } else { json!([]) }})
        });
    let tcp = (ip(), prop::sample::select(vec![80i64, 443]), failure(), 0..4i64).prop_map(|(ip, port, f, tid)| {
        json!({"ip": ip, "port": port, "status": {"success": f.is_null(), "failure": f}, "transaction_id": tid})
    });
    let tls = (ip(), failure(), 0..4i64, prop::sample::select(vec!["www.example.com", "decoy.example.org"]))
        .prop_map(|(ip, f, tid, sni)| json!({"address": format!("{ip}:443"), "failure": f, "transaction_id": tid, "server_name": sni}));
    let req = (
        failure(),
        prop::sample::select(vec![-1i64, 200, 302, 403, 503]),
        "[ -~]{0,64}",
        0..4i64,
        any::<bool>(),
    )
        .prop_map(|(f, code, body, tid, https)| {
            let url = if https {
                "https://www.example.com/"
            } else {
                "http://www.example.com/"
            };
            json!({"failure": f, "transaction_id": tid, "request": {"url": url},
                   "response": {"code": code, "body": format!("<title>{body}</title>"), "headers": {"Server": "x"}}})
        });
    let control = (ip(), failure(), failure(), prop::sample::select(vec![-1i64, 200, 503]), any::<bool>()).prop_map(
        |(ip, dns_f, http_f, code, present)| {
            if !present {
                return json!({});
            }
            json!({"dns": {"failure": dns_f, "addrs": if dns_f.is_null() { json!([ip]) } else { json!([]) }},
                   "tcp_connect": {format!("{ip}:443"): {"status": true, "failure": null}},
                   "tls_handshake": {format!("{ip}:443"): {"status": http_f.is_null(), "failure": http_f}},
                   "http_request": {"failure": http_f, "status_code": code, "body_length": 1533, "title": "Default Web Page", "headers": {}},
                   "ip_info": {ip: {"asn": 15133, "flags": 10}}})
        },
    );
    (
        prop::collection::vec(query, 0..4),
        prop::collection::vec(tcp, 0..4),
        prop::collection::vec(tls, 0..3),
        prop::collection::vec(req, 0..3),
        control,
        failure(),
    )
        .prop_map(|(queries, tcp, tls, requests, control, control_failure)| {
            json!({"queries": queries, "tcp_connect": tcp, "tls_handshakes": tls, "requests": requests,
                   "control": control, "control_failure": control_failure})
        })
}

fn check(m: &Measurement) {
    if let Ok(v) = analyzer().verdict(m) {
        assert!((0.0..=1.0).contains(&v.confidence), "confidence {}", v.confidence);
        // A method only with `blocked`; tests such as Tor's can be blocked with no method that fits.
        assert!(
            v.method.is_none() || v.status == Status::Blocked,
            "method without blocked: {v:?}"
        );
        if m.test_name() == "web_connectivity" {
            assert_eq!(
                v.method.is_some(),
                v.status == Status::Blocked,
                "method iff blocked: {v:?}"
            );
        }
        assert!(!v.reasons.is_empty(), "no reasons: {v:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_test_keys_never_panic(
        keys in arb_json(),
        test_name in prop::sample::select(vec![
            "web_connectivity", "telegram", "signal", "whatsapp", "facebook_messenger", "tor", "vanilla_tor",
            "http_header_field_manipulation", "http_invalid_request_line", "dns_consistency", "torsf", "meek_fronted_requests_test",
            "psiphon", "riseupvpn", "dnscheck", "urlgetter", "unknown_test",
        ]),
    ) {
        let doc = json!({"test_name": test_name, "probe_cc": "PK", "input": "https://x.com/", "test_keys": keys});
        let m = Measurement::from_slice(doc.to_string().as_bytes()).unwrap();
        check(&m);
    }

    #[test]
    fn web_connectivity_keys_never_panic(keys in web_keys(), https in any::<bool>()) {
        let input = if https { "https://www.example.com/" } else { "http://www.example.com/" };
        let doc = json!({"test_name": "web_connectivity", "probe_cc": "IT", "input": input, "test_keys": keys});
        let m = Measurement::from_slice(doc.to_string().as_bytes()).unwrap();
        let v = analyzer().verdict(&m).expect("structurally valid keys always give a verdict");
        prop_assert!((0.0..=1.0).contains(&v.confidence));
        prop_assert_eq!(v.method.is_some(), v.status == Status::Blocked);
        prop_assert!(!v.reasons.is_empty());
    }
}
