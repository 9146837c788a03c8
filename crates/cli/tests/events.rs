//! `censorwatch events` end to end: a known block, written as real OONI web_connectivity
//! measurements (two fixtures from testdata/ooni, their ids, times, networks and input
//! rewritten), ingested into a real SQLite file; the events printed, filtered and stored.

use assert_cmd::Command;
use censorwatch_store::{DetectionKind, DetectionQuery, SqliteStore, Store};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// 2024-02-16T00:00:00Z.
pub const T0: i64 = 1_708_041_600;
const HOUR: i64 = 3600;

fn fixture_line(pick: impl Fn(&Value) -> bool) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni/real_measurements_combined.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|m| pick(m))
        .expect("the fixture is in testdata/ooni")
}

fn ooni_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The measurements of a block of www.facebook.com in PK: AS17557 blocked (DNS bogon) from
/// hour 20, AS45595 from hour 26, AS59257 never; four measurements an hour each, 48 hours.
/// Returns the JSONL and the id of the first blocked measurement.
pub fn block_timeline() -> (String, String) {
    // A DNS-bogon block of www.facebook.com (IR, 2022) and a clean page load (collegehumor).
    let blocked = fixture_line(|m| m["input"] == "https://www.facebook.com/");
    let clean = fixture_line(|m| m["input"] == "http://www.collegehumor.com/");
    let mut lines = String::new();
    let mut first_blocked = None;
    for hour in 0..48 {
        for (asn, from) in [(17557, Some(20)), (45595, Some(26)), (59257, None)] {
            for quarter in 0..4 {
                let t = T0 + hour * HOUR + quarter * 900;
                let is_blocked = from.is_some_and(|f| hour >= f);
                let mut m = if is_blocked { blocked.clone() } else { clean.clone() };
                let uid = format!("20240216T000000Z_webconnectivity_PK_{asn}_n1_h{hour}q{quarter}");
                m["measurement_uid"] = Value::from(uid.clone());
                m["input"] = Value::from("https://www.facebook.com/");
                m["probe_cc"] = Value::from("PK");
                m["probe_asn"] = Value::from(format!("AS{asn}"));
                m["measurement_start_time"] = Value::from(ooni_time(t));
                m["test_start_time"] = Value::from(ooni_time(t));
                if is_blocked && first_blocked.is_none() {
                    first_blocked = Some(uid);
                }
                lines.push_str(&serde_json::to_string(&m).unwrap());
                lines.push('\n');
            }
        }
    }
    (lines, first_blocked.unwrap())
}

fn censorwatch(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("censorwatch").unwrap().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn setup() -> (tempfile::TempDir, PathBuf, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (jsonl, first) = block_timeline();
    let input = dir.path().join("pk.jsonl");
    std::fs::write(&input, jsonl).unwrap();
    let db = dir.path().join("cw.db");
    let db_url = format!("sqlite:{}", db.display());
    let (code, _, err) = censorwatch(&["ingest", input.to_str().unwrap(), "--db", &db_url]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("576 stored"), "{err}");
    (dir, db, db_url, first)
}

#[test]
fn one_event_with_its_networks_and_start() {
    let (_dir, db, db_url, first) = setup();
    // The ingest refreshed the stored events already.
    let stored = SqliteStore::open(&db)
        .unwrap()
        .detections(&DetectionQuery::all(DetectionKind::Event))
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");

    let (code, out, err) = censorwatch(&["events", "--db", &db_url, "--json"]);
    assert_eq!(code, 0, "{err}");
    let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 1, "one country-level event, not one per network: {out}");
    let e = &events[0];
    assert_eq!(e["cc"], "PK");
    assert_eq!(e["platform"], "facebook");
    assert_eq!(e["method"], "dns.bogon");
    assert_eq!(e["start"], T0 + 20 * HOUR, "the first blocked measurement: {e}");
    assert_eq!(e["end"], Value::Null, "still blocked at the last measurement");
    let asns: Vec<(u64, i64)> = e["asns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["asn"].as_u64().unwrap(), a["start"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        asns,
        [(17557, T0 + 20 * HOUR), (45595, T0 + 26 * HOUR)],
        "the clean network is not in it"
    );
    assert_eq!(e["first_evidence"]["id"], first.as_str());
    assert_eq!(e["id"], stored[0].id.as_str(), "printed and stored agree");
    assert!(err.contains("576 measurements read, 1 events"), "{err}");

    // The table, and filters.
    let (code, out, _) = censorwatch(&["events", "--db", &db_url]);
    assert_eq!(code, 0);
    assert!(
        out.contains("AS17557,AS45595") && out.contains("ongoing") && out.contains("2024-02-16 20:00:00"),
        "{out}"
    );
    for (args, n) in [
        (vec!["--cc", "pk"], 1),
        (vec!["--cc", "IR"], 0),
        (vec!["--domain", "facebook.com"], 1),
        (vec!["--domain", "x.com"], 0),
        (vec!["--since", "2024-02-17"], 1),
    ] {
        let mut all = vec!["events", "--db", &db_url, "--json"];
        all.extend(args.iter().copied());
        let (code, out, err) = censorwatch(&all);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), n, "{args:?}: {out}");
    }
}

#[test]
fn bad_filters_are_usage_errors() {
    for args in [["--cc", "PAK"], ["--since", "yesterday"]] {
        let (code, _, err) = censorwatch(&["events", "--db", "sqlite:/nonexistent/x.db", args[0], args[1]]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(args[0]), "{err}");
    }
}
