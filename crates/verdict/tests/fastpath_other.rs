//! censorwatch's verdicts on the non-Web-Connectivity fixtures of OONI fastpath's own unit tests,
//! compared with the scores fastpath expects for them, and a smoke run over the 80 real
//! measurements of `testdata/ooni/real_measurements_combined.jsonl`.
//!
//! Comparison rule: OONI anomaly = `blocking_general > 0.5`, OONI failure = `accuracy < 0.5`
//! (`accuracy` defaults to 1.0 when absent); ours: anomaly = `blocked`, failure = `inconclusive`.
//! Where we deliberately read a fixture differently, the file is listed in [`DIFFERENCES`] with
//! our status; the argument for each is in the table "Other tests: where we differ from OONI
//! fastpath" in `crates/verdict/tests/README.md`. Keep the two in sync.

use censorwatch_model::{Measurement, Method, Status, Verdict};
use censorwatch_verdict::Analyzer;
use serde_json::Value;
use std::path::PathBuf;

/// Fixtures where censorwatch's status differs from fastpath's expectation, with our status.
/// Each row is argued in `crates/verdict/tests/README.md`, section "Other tests: where we differ
/// from OONI fastpath".
const DIFFERENCES: &[(&str, Status)] = &[
    // fastpath: failure (its parser gives up on requests without `request.url`). Ours: all 12
    // access-point connections and both Telegram Web requests worked.
    ("telegram_nourl.json", Status::Ok),
    // fastpath: no scores at all since ooni/backend#745 (so neither anomaly nor failure). Ours: the
    // API check failed with a certificate error, the known false positive: we say we cannot tell.
    ("riseupvpn.json", Status::Inconclusive),
    // fastpath: anomaly (HTTP 403). Ours: the 403 came from CloudFront itself over a working HTTPS
    // connection: the CDN refused to front, the network did not block.
    ("meek.json", Status::Down),
];

/// How many expected-score entries are for tests other than web_connectivity (so that a fixture
/// silently skipped fails the test).
const OTHER_TEST_ENTRIES: usize = 23;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni")
}

fn verdict_of(bytes: &[u8]) -> Verdict {
    let m = Measurement::from_slice(bytes).expect("fixture parses");
    Analyzer::with_builtin_fingerprints()
        .verdict(&m)
        .expect("verdict without error")
}

#[test]
fn agrees_with_fastpath_except_where_argued() {
    let dir = testdata().join("fastpath");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("_expected_fastpath_verdicts.json")).unwrap()).unwrap();
    let mut agree = 0;
    let mut differ = Vec::new();
    let mut seen = 0;
    let mut problems = Vec::new();
    for entry in expected.as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let Some(scores) = entry["expected_fastpath_scores"].as_object() else {
            continue;
        };
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        if raw["test_name"] == "web_connectivity" {
            continue;
        }
        seen += 1;
        let ooni_anomaly = scores.get("blocking_general").and_then(Value::as_f64).unwrap_or(0.0) > 0.5;
        let ooni_failure = scores.get("accuracy").and_then(Value::as_f64).unwrap_or(1.0) < 0.5;
        let v = verdict_of(&bytes);
        assert!(!v.reasons.is_empty(), "{file}: no reasons");
        let ours = (v.status == Status::Blocked, v.status == Status::Inconclusive);
        println!(
            "{file:40} ooni anomaly={ooni_anomaly:5} failure={ooni_failure:5} | ours {:12} {:?} {:.2} {:?}",
            v.status.as_str(),
            v.method.map(Method::as_str),
            v.confidence,
            v.reasons
        );
        match DIFFERENCES.iter().find(|(f, _)| *f == file) {
            Some((_, status)) => {
                if v.status != *status {
                    problems.push(format!("{file}: expected our status {status}, got {}", v.status));
                }
                if ours == (ooni_anomaly, ooni_failure) {
                    problems.push(format!(
                        "{file}: listed as a difference but agrees with fastpath; update README"
                    ));
                }
                differ.push(file);
            }
            None if ours == (ooni_anomaly, ooni_failure) => agree += 1,
            None => problems.push(format!(
                "{file}: fastpath anomaly={ooni_anomaly} failure={ooni_failure}, ours {} ({:?})",
                v.status, v.reasons
            )),
        }
    }
    println!("{agree} agree / {} differ: {differ:?}", differ.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(seen, OTHER_TEST_ENTRIES, "non-web_connectivity fixtures compared");
    assert_eq!(differ.len(), DIFFERENCES.len(), "every listed difference was seen");
}

/// Every real measurement gets a verdict, without error, with readable reasons.
#[test]
fn every_real_measurement_gets_a_verdict_with_reasons() {
    let text = std::fs::read_to_string(testdata().join("real_measurements_combined.jsonl")).unwrap();
    let mut n = 0;
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let m = Measurement::from_slice(line.as_bytes()).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let v = Analyzer::with_builtin_fingerprints()
            .verdict(&m)
            .unwrap_or_else(|e| panic!("line {} ({}): {e}", i + 1, m.test_name()));
        assert!(!v.reasons.is_empty(), "line {} ({}): no reasons", i + 1, m.test_name());
        assert!(
            v.reasons.iter().all(|r| !r.trim().is_empty()),
            "line {}: an empty reason",
            i + 1
        );
        assert!(
            (0.0..=1.0).contains(&v.confidence),
            "line {}: confidence {}",
            i + 1,
            v.confidence
        );
        n += 1;
    }
    assert_eq!(n, 80);
}

/// The verdict on line `n` (1-based) of the combined file, checking its test name.
fn combined(n: usize, test_name: &str) -> Verdict {
    let text = std::fs::read_to_string(testdata().join("real_measurements_combined.jsonl")).unwrap();
    let line = text.lines().nth(n - 1).unwrap();
    let m = Measurement::from_slice(line.as_bytes()).unwrap();
    assert_eq!(m.test_name(), test_name, "line {n}");
    Analyzer::with_builtin_fingerprints().verdict(&m).unwrap()
}

fn mentions(v: &Verdict, needle: &str) -> bool {
    v.reasons.iter().any(|r| r.contains(needle))
}

/// Spot checks on real measurements, each verified by hand against the test keys.
#[test]
fn real_measurements_spot_checks() {
    // 2018 (probe_cc ZZ, Greek OTE resolvers), tainiesonline.tv: OTE's resolvers 195.170.0.1 and 195.170.2.2 answered 83.235.64.18
    // (reverse name edppi.otenet.gr, an OTE host) while 8.8.8.8, two other OTE resolvers and the
    // control all answered 185.82.217.23.
    let v = combined(56, "dns_consistency");
    assert_eq!(
        (v.status, v.method),
        (Status::Blocked, Some(Method::DnsSpoofed)),
        "{v:?}"
    );
    assert!(
        mentions(&v, "195.170.0.1 answered 83.235.64.18") && mentions(&v, "edppi.otenet.gr"),
        "{:?}",
        v.reasons
    );
    assert!(mentions(&v, "185.82.217.23"));
    // BE 2017, google.com: the local resolver's and the control's answers differ but both reverse
    // to Google's 1e100.net: geo load balancing, not tampering.
    assert_eq!(combined(42, "dns_consistency").status, Status::Ok);
    // JO 2015: the control itself had no answer (the input is an IP address).
    assert_eq!(combined(66, "dns_consistency").status, Status::Inconclusive);

    // DE 2017: web.telegram.org refused on both ports while the access points mostly worked.
    let v = combined(77, "telegram");
    assert_eq!(
        (v.status, v.method),
        (Status::Blocked, Some(Method::TcpRefused)),
        "{v:?}"
    );
    assert!(
        mentions(&v, "connection_refused_error") && mentions(&v, "149.154.175.50:443"),
        "{:?}",
        v.reasons
    );
    assert_eq!(combined(65, "telegram").status, Status::Ok);

    // CN 2022: Tor stalled at 5%, "Connecting to a relay".
    let v = combined(31, "vanilla_tor");
    assert_eq!(v.status, Status::Blocked, "{v:?}");
    assert!(mentions(&v, "5%"), "{:?}", v.reasons);
    // MY 2019, legacy format with no logs and no result.
    assert_eq!(combined(78, "vanilla_tor").status, Status::Inconclusive);

    // PT 2019: four malformed request lines answered "HTTP/1.1 400 Bad request" by a middlebox.
    let v = combined(10, "http_invalid_request_line");
    assert_eq!(v.status, Status::Blocked, "{v:?}");
    assert!(mentions(&v, "400 Bad request"), "{:?}", v.reasons);
    assert_eq!(combined(60, "http_invalid_request_line").status, Status::Ok);
    let swallowed = combined(70, "http_invalid_request_line");
    assert_eq!(swallowed.status, Status::Blocked);
    assert!(
        swallowed.confidence < v.confidence,
        "an empty echo is weaker than a foreign reply"
    );

    // Header echo identical to what was sent (the helper adds Connection: close, ignored).
    assert_eq!(combined(58, "http_header_field_manipulation").status, Status::Ok);
    assert_eq!(combined(69, "http_header_field_manipulation").status, Status::Ok);

    // CA 2019, whitepages.com: only the probe's copy (the site's own captcha page) was kept.
    assert_eq!(combined(61, "http_requests").status, Status::Inconclusive);
    // CH 2015: both the local fetch and the Tor fetch failed.
    assert_eq!(combined(67, "http_requests").status, Status::Inconclusive);
    assert_eq!(combined(41, "http_requests").status, Status::Ok);

    // urlgetter run with a bare host name: the probe never measured.
    assert_eq!(combined(52, "urlgetter").status, Status::Inconclusive);
    let v = combined(55, "dash");
    assert_eq!(v.status, Status::Inconclusive);
    assert!(mentions(&v, "speed"));
    for (n, name) in [
        (54, "bridge_reachability"),
        (63, "multi_protocol_traceroute"),
        (73, "openvpn_client_test"),
    ] {
        let v = combined(n, name);
        assert_eq!(v.status, Status::Inconclusive);
        assert!(mentions(&v, name), "{:?}", v.reasons);
    }
}
