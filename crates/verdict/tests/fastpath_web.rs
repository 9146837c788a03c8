//! Conformance with OONI fastpath's scoring of real Web Connectivity measurements
//! (`testdata/ooni/fastpath/`, expected scores from ooni/backend `fastpath/tests/test_unit.py`).
//!
//! OONI: anomaly = `blocking_general > 0.5`; confirmed = `scores.confirmed`; failure =
//! `accuracy < 0.5`. Ours: anomaly = `status == blocked`; confirmed = a blockpage fingerprint
//! confirmed for the probe's country (confidence 0.99); failure = `status == inconclusive`.
//! Disagreements are argued in `tests/README.md` ("Fastpath, Web Connectivity") and our value is
//! asserted in [`OURS_WHERE_WE_DIFFER`].

use censorwatch_model::{Measurement, Status};
use censorwatch_verdict::Analyzer;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fastpath_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni/fastpath")
}

/// (file, our anomaly, our confirmed, our failure) where we deliberately differ from fastpath.
const OURS_WHERE_WE_DIFFER: &[(&str, bool, bool, bool)] = &[
    // The control failed too (unknown_error): censorwatch says `down`; OONI's v0.4 left
    // blocking null, which fastpath scores as a failed measurement.
    ("web_connectivity_null2.json", false, false, false),
    // The "failure" is the old probe's own crash (a Python unicode error): not an anomaly.
    ("bug_351.json", false, false, true),
];

#[derive(Debug, PartialEq)]
struct Reading {
    anomaly: bool,
    confirmed: bool,
    failure: bool,
}

#[test]
fn web_connectivity_agrees_with_fastpath() {
    let expected: Vec<Value> =
        serde_json::from_slice(&std::fs::read(fastpath_dir().join("_expected_fastpath_verdicts.json")).unwrap())
            .unwrap();
    let analyzer = Analyzer::with_builtin_fingerprints();
    let mut checked = 0;
    let mut problems = Vec::new();
    for e in &expected {
        let file = e["file"].as_str().unwrap();
        let scores = &e["expected_fastpath_scores"];
        if scores.is_null() || !file.ends_with(".json") {
            continue;
        }
        let m = Measurement::from_slice(&std::fs::read(fastpath_dir().join(file)).unwrap()).unwrap();
        if m.test_name() != "web_connectivity" {
            continue;
        }
        let v = analyzer.verdict(&m).unwrap();
        let ours = Reading {
            anomaly: v.status == Status::Blocked,
            confirmed: v.blockpage.is_some() && v.confidence >= 0.99,
            failure: v.status == Status::Inconclusive,
        };
        let ooni = Reading {
            anomaly: scores["blocking_general"].as_f64().unwrap_or(0.0) > 0.5,
            confirmed: scores["confirmed"].as_bool().unwrap_or(false),
            failure: scores["accuracy"].as_f64().unwrap_or(1.0) < 0.5,
        };
        let want = match OURS_WHERE_WE_DIFFER.iter().find(|(f, ..)| *f == file) {
            Some((_, anomaly, confirmed, failure)) => Reading {
                anomaly: *anomaly,
                confirmed: *confirmed,
                failure: *failure,
            },
            None => ooni,
        };
        if ours != want {
            problems.push(format!(
                "{file}: ours {ours:?}, want {want:?}; verdict {} {:?} {:?}",
                v.status, v.method, v.reasons
            ));
        }
        checked += 1;
    }
    assert_eq!(checked, 9, "web_connectivity entries with scores");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
