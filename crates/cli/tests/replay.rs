//! The detector on the lab's pk-2024 replay (issue 8: the detection targets "the same on the
//! lab's pk-2024 replay"): testdata/lab's measurements, made by `censorwatch lab run pk-2024`,
//! are ingested into a real SQLite file and `censorwatch events --truth` scores the events found
//! against the replay's ground truth. No root needed: the replay's output is a fixture.

use assert_cmd::Command;
use serde_json::Value;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/lab")
        .join(name)
}

fn censorwatch(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("censorwatch").unwrap().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn f_of(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[test]
fn pk_2024_replay_meets_the_detection_targets() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("cw.db").display());
    let measurements = fixture("pk-2024.jsonl.zst");
    let (code, _, err) = censorwatch(&["ingest", measurements.to_str().unwrap(), "--db", &db]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1044 stored"), "{err}");

    let truth = fixture("pk-2024-truth.json");
    let (code, out, err) = censorwatch(&["events", "--db", &db, "--truth", truth.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let score: Value = serde_json::from_str(out.trim()).unwrap();
    let f = |k: &str| f_of(&score, k);
    // PTCL, Jazz and Zong block the twitter platform (x.com, twitter.com, abs.twimg.com): three
    // per-network blocks, Jazz's in 6 h on / 6 h off cycles.
    assert_eq!(score["truth_events"], 3, "{score}");
    assert_eq!(score["missed"], Value::Array(Vec::new()), "{score}");
    assert!(f("precision") >= 0.95, "{score}");
    assert!(f("recall") >= 0.95, "{score}");
    assert_eq!(
        score["clean_false_events"], 0,
        "Telenor and Nayatel block nothing: {score}"
    );
    assert!(f("start_error_bins") <= 1.0, "{score}");
    assert!(f("end_error_bins") <= 1.0, "{score}");
    assert!(
        f("intermittent_accuracy") >= 0.9,
        "Jazz is intermittent, the others steady: {score}"
    );
    // Telenor (AS24499) goes dark for 12 hours: at 3 measurements an hour no single hour is
    // improbably empty, but 12 in a row are. Found, to the bin, and nothing else.
    let outage = &score["outage"];
    assert_eq!(outage["truth"], 1, "{score}");
    assert_eq!(outage["matched"], 1, "{score}");
    assert_eq!(outage["detected"], 1, "{score}");
    assert!(f_of(outage, "start_error_bins") <= 1.0, "{score}");
    assert!(f_of(outage, "end_error_bins") <= 1.0, "{score}");
    assert_eq!(outage["blocking_events_during_outages"], 0, "{score}");

    // Plain `censorwatch events --outages`, judged at today's clock, years after the replay's
    // last measurement (2024-02-18T23:00:15Z): Telenor's outage, and no end-of-data outage (the
    // bins after the newest measurement are unknown, not empty).
    let (code, out, err) = censorwatch(&["events", "--db", &db, "--outages", "--json"]);
    assert_eq!(code, 0, "{err}");
    let outages: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(outages.len(), 1, "{out}");
    let telenor = &outages[0];
    let (dark, back) = (1_708_236_000, 1_708_279_200); // 2024-02-18T06:00Z, 18:00Z
    assert_eq!(telenor["cc"], "PK", "{telenor}");
    assert_eq!(telenor["country_wide"], false, "{telenor}");
    assert_eq!(telenor["asns"].as_array().map(Vec::len), Some(1), "{telenor}");
    assert_eq!(telenor["asns"][0]["asn"], 24499, "{telenor}");
    assert_eq!(telenor["signals"], serde_json::json!(["probe_volume"]), "{telenor}");
    let start = telenor["start"].as_i64().unwrap();
    let end = telenor["end"].as_i64().expect("Telenor's outage ended");
    assert!((start - dark).abs() <= 3600, "{telenor}");
    assert!((end - back).abs() <= 3600, "{telenor}");
    // The table says so too.
    let (code, out, _) = censorwatch(&["events", "--db", &db, "--outages"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("AS24499") && !out.contains("country-wide"), "{out}");

    // The text form says the same.
    let (code, out, err) = censorwatch(&["events", "--db", &db, "--truth", truth.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("blocks: precision 1.000, recall 1.000"), "{out}");
    assert!(out.contains("outages: precision 1.000, recall 1.000"), "{out}");

    // A truth file that is not one is refused with the field named, exit 2.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"clock": {}}"#).unwrap();
    let (code, _, err) = censorwatch(&["events", "--db", &db, "--truth", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("clock.end"), "{err}");
}
