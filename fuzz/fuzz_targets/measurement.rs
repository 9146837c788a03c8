//! Fuzzes the measurement parser and the verdict engine together: any bytes either fail to parse
//! with an error or parse, round-trip to the same JSON value, and get a well-formed verdict.
#![no_main]

use censorwatch_model::{Measurement, Status};
use censorwatch_verdict::Analyzer;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn analyzer() -> &'static Analyzer {
    static A: OnceLock<Analyzer> = OnceLock::new();
    A.get_or_init(Analyzer::with_builtin_fingerprints)
}

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Measurement::from_slice(data) else { return };
    // Lossless, byte level: what we write reads back as the same measurement.
    let bytes = serde_json::to_vec(&m).expect("a parsed measurement serializes");
    let again = Measurement::from_slice(&bytes).expect("what censorwatch writes, it reads");
    assert_eq!(again, m, "write then read changed the measurement");
    // Lossless, value level, when the input fits serde_json's value model (numbers beyond f64,
    // such as 2e2384, are valid JSON that the raw test keys keep verbatim but Value rejects).
    if let Ok(original) = serde_json::from_slice::<serde_json::Value>(data) {
        let back = serde_json::to_value(&m).expect("serializes to a value when the input did");
        assert_eq!(back, original, "round trip changed the measurement");
    }
    if let Ok(v) = analyzer().verdict(&m) {
        assert!((0.0..=1.0).contains(&v.confidence));
        assert!(v.method.is_none() || v.status == Status::Blocked);
        assert!(!v.reasons.is_empty());
    }
});
