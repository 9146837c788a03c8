//! `censorwatch events` end to end: a known block, written as real OONI web_connectivity
//! measurements (two fixtures from testdata/ooni, their ids, times, networks and input
//! rewritten), ingested into a real SQLite file; the events printed, filtered and stored.

use assert_cmd::Command;
mod common;

use censorwatch_store::{DetectionKind, DetectionQuery, SqliteStore, Store};
use common::block::{HOUR, T0, block_timeline};
use serde_json::Value;
use std::path::PathBuf;

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
