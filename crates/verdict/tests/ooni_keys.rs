//! OONI's comparison keys (`dns_consistency`, `body_length_match`, `body_proportion`,
//! `status_code_match`, `headers_match`, `title_match`) recomputed by
//! [`Analyzer::ooni_comparison`] against what the real ooniprobe v0.5.28 wrote in the 50
//! measurements of OONI's Web Connectivity QA suite (`testdata/ooni/synthetic/`): the keys
//! censorwatch's probe writes must mean what OONI's do.
//!
//! Every key of every measurement must agree, except the cases in [`KNOWN_DIFFERENCES`], each
//! argued there.

use censorwatch_model::Measurement;
use censorwatch_verdict::Analyzer;
use serde_json::Value;
use std::path::Path;

/// (scenario, key): where our value deliberately differs from ooniprobe's, and why.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[];

fn ours(c: &censorwatch_verdict::OoniComparison, key: &str) -> Value {
    match key {
        "dns_consistency" => c.dns_consistency.map_or(Value::Null, Value::from),
        "body_length_match" => c.body_length_match.map_or(Value::Null, Value::from),
        "body_proportion" => Value::from(c.body_proportion),
        "status_code_match" => c.status_code_match.map_or(Value::Null, Value::from),
        "headers_match" => c.headers_match.map_or(Value::Null, Value::from),
        "title_match" => c.title_match.map_or(Value::Null, Value::from),
        _ => unreachable!(),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-3,
        _ => a == b,
    }
}

#[test]
fn comparison_keys_agree_with_ooniprobe_on_the_qa_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni/synthetic");
    let analyzer = Analyzer::with_builtin_fingerprints();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 50, "the QA suite has 50 measurements");
    let mut compared = 0;
    let mut disagreements = Vec::new();
    for path in &files {
        let scenario = path.file_stem().unwrap().to_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        let m = Measurement::from_slice(&bytes).unwrap();
        let theirs: Value = serde_json::from_slice(&bytes).unwrap();
        let c = analyzer.ooni_comparison(&m).unwrap().unwrap();
        for key in [
            "dns_consistency",
            "body_length_match",
            "body_proportion",
            "status_code_match",
            "headers_match",
            "title_match",
        ] {
            let Some(expected) = theirs["test_keys"].get(key) else {
                continue;
            };
            compared += 1;
            let got = ours(&c, key);
            let known = KNOWN_DIFFERENCES.iter().any(|(s, k, _)| *s == scenario && *k == key);
            if !same(&got, expected) && !known {
                disagreements.push(format!("{scenario} {key}: ooniprobe {expected}, ours {got}"));
            }
        }
    }
    assert!(compared > 250, "only {compared} keys compared");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
