//! Every real and synthetic OONI measurement in `testdata/` parses, and serializes back to the same
//! JSON value (unknown keys and explicit nulls included).

use censorwatch_model::{Measurement, WebConnectivityTestKeys};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni")
}

fn assert_round_trip(what: &str, text: &str) -> Measurement {
    let m = Measurement::from_slice(text.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let original: Value = serde_json::from_str(text).unwrap();
    let back = serde_json::to_value(&m).unwrap();
    assert_eq!(back, original, "{what}: round trip changed the measurement");
    if let Some(keys) = m.web_connectivity().unwrap_or_else(|e| panic!("{what}: {e}")) {
        let typed_back = serde_json::to_value(&keys).unwrap();
        assert_eq!(typed_back, original["test_keys"], "{what}: typed test keys round trip");
    }
    m
}

#[test]
fn real_measurements_parse_and_round_trip() {
    let text = std::fs::read_to_string(testdata().join("real_measurements_combined.jsonl")).unwrap();
    let mut web = 0;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let m = assert_round_trip(&format!("line {}", i + 1), line);
        n += 1;
        if m.web_connectivity().unwrap().is_some() {
            web += 1;
        }
    }
    assert_eq!(n, 80);
    assert_eq!(web, 25, "web_connectivity measurements with test keys");
}

#[test]
fn fixture_files_parse_and_round_trip() {
    let mut count = 0;
    for dir in ["synthetic", "fastpath", "minipipeline"] {
        for entry in std::fs::read_dir(testdata().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".json") || name.starts_with('_') {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            assert_round_trip(&format!("{dir}/{name}"), &text);
            count += 1;
        }
    }
    assert!(count >= 50 + 40 + 8, "only {count} fixture files found");
}

#[test]
fn synthetic_keys_are_typed() {
    let text = std::fs::read_to_string(testdata().join("synthetic/dnsBlockingBOGON.json")).unwrap();
    let m = Measurement::from_slice(text.as_bytes()).unwrap();
    let keys: WebConnectivityTestKeys = m.web_connectivity().unwrap().unwrap();
    let q = &keys.queries.as_ref().unwrap()[0];
    assert_eq!(q.hostname.as_deref(), Some("www.example.com"));
    let control = keys.control.as_ref().unwrap();
    assert_eq!(
        control.dns.as_ref().unwrap().addrs.as_ref().unwrap(),
        &["93.184.216.34"]
    );
    assert_eq!(control.ip_info.as_ref().unwrap()["10.10.34.35"].flags, Some(5));
    assert_eq!(m.domain().as_deref(), Some("www.example.com"));
}

#[test]
fn malformed_input_is_a_clear_error() {
    let err = Measurement::from_slice(b"{\"test_name\": 3}").unwrap_err();
    assert!(err.to_string().contains("test_name"), "{err}");
    let err = Measurement::from_slice(b"[1,2]").unwrap_err();
    assert!(err.to_string().starts_with("not an OONI measurement"), "{err}");
    let m = Measurement::from_slice(br#"{"test_name":"web_connectivity","test_keys":{"queries":7}}"#).unwrap();
    let err = m.web_connectivity().unwrap_err();
    assert!(err.to_string().contains("queries"), "{err}");
}

/// Found by fuzzing: a number beyond f64 inside test_keys is valid JSON. The envelope keeps the
/// test keys verbatim (so the measurement is stored and written back exactly), and asking for the
/// typed keys gives a clear error instead of a silent infinity.
#[test]
fn out_of_range_number_in_test_keys_is_kept_and_reported() {
    let text = br#"{"test_name":"web_connectivity","test_keys":{"x_tcptls_runtime":2e2384}}"#;
    let m = Measurement::from_slice(text).unwrap();
    let written = serde_json::to_vec(&m).unwrap();
    assert_eq!(Measurement::from_slice(&written).unwrap(), m);
    assert!(String::from_utf8(written).unwrap().contains("2e2384"), "kept verbatim");
    let err = m.web_connectivity().unwrap_err();
    assert!(err.to_string().contains("number out of range"), "{err}");
}

/// Found by fuzzing: a key given twice, first null then a value, reads back the same after a write.
#[test]
fn duplicate_key_null_then_value_round_trips() {
    let text = br#"{"test_runtime": null, "test_runtime": 0.74, "probe_cc": "AT", "probe_cc": null}"#;
    let m = Measurement::from_slice(text).unwrap();
    assert_eq!(m.test_runtime.as_ref().and_then(|n| n.as_f64()), Some(0.74));
    assert_eq!(m.probe_cc, None);
    let again = Measurement::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
    assert_eq!(again, m);
    let value: serde_json::Value = serde_json::from_slice(text).unwrap();
    assert_eq!(serde_json::to_value(&m).unwrap(), value);
}

/// Found by fuzzing: a float written with more digits than an f64 holds must read, write and read
/// again to the same value (serde_json's `float_roundtrip`; the default parser may drift by 1 ulp).
#[test]
#[allow(clippy::excessive_precision, reason = "the excess digits are what is tested")]
fn floats_with_excess_digits_round_trip_exactly() {
    let text = br#"{"test_runtime": 99.416918992996235, "test_keys": {"t": 0.10000000000000000555}}"#;
    let m = Measurement::from_slice(text).unwrap();
    let again = Measurement::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
    assert_eq!(again.test_runtime, m.test_runtime);
    assert_eq!(
        m.test_runtime.as_ref().and_then(|n| n.as_f64()),
        Some(99.416918992996235_f64)
    );
}
