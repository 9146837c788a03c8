//! `censorwatch ingest` end to end: the real binary into a real SQLite file.
//!
//! Idempotence (a second run stores nothing new), rejects with reasons, and resumability: an
//! ingest killed with SIGKILL mid-way and run again ends with exactly one row per measurement.

use assert_cmd::Command;
use censorwatch_store::{SqliteStore, Store};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata").join(rel)
}

fn ingest(files: &[&Path], db: &Path) -> (i32, String) {
    let out = Command::cargo_bin("censorwatch")
        .unwrap()
        .arg("ingest")
        .args(files)
        .arg("--db")
        .arg(format!("sqlite:{}", db.display()))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn count(db: &Path) -> u64 {
    SqliteStore::open(db).unwrap().count().unwrap()
}

#[test]
fn ingest_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cw.db");
    let real = testdata("ooni/real_measurements_combined.jsonl");
    let (code, err) = ingest(&[&real], &db);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("80 lines read, 80 stored, 0 duplicate, 0 rejected"),
        "{err}"
    );
    assert_eq!(count(&db), 80);
    let (code, err) = ingest(&[&real], &db);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("80 lines read, 0 stored, 80 duplicate, 0 rejected"),
        "{err}"
    );
    assert_eq!(count(&db), 80);
    assert!(
        !db.with_extension("rejects.jsonl").exists(),
        "a clean ingest leaves no rejects file"
    );
}

#[test]
fn bad_lines_are_rejected_with_reasons_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cw.db");
    let input = dir.path().join("mixed.jsonl");
    let real = std::fs::read_to_string(testdata("ooni/real_measurements_combined.jsonl")).unwrap();
    let mut lines: Vec<&str> = real.lines().take(5).collect();
    lines.insert(2, "{\"test_name\": ");
    lines.insert(4, "[1, 2, 3]");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let (code, err) = ingest(&[&input], &db);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("7 lines read, 5 stored, 0 duplicate, 2 rejected"), "{err}");
    let rejects: Vec<Value> = std::fs::read_to_string(db.with_extension("rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rejects.len(), 2);
    assert_eq!(rejects[0]["line"], 3);
    assert_eq!(rejects[0]["text"], "{\"test_name\": ");
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not an OONI measurement")
    );
    assert_eq!(rejects[1]["line"], 5);
    assert_eq!(count(&db), 5);
}

#[test]
fn bad_db_url_is_bad_usage() {
    let out = Command::cargo_bin("censorwatch")
        .unwrap()
        .args(["ingest", "x.jsonl", "--db", "postgres://nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sqlite:PATH"));
}

/// Many distinct measurements: the real corpus repeated with fresh measurement_uids.
fn big_input(path: &Path, copies: usize) -> u64 {
    let real = std::fs::read_to_string(testdata("ooni/real_measurements_combined.jsonl")).unwrap();
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut n = 0;
    for copy in 0..copies {
        for (i, line) in real.lines().enumerate() {
            let mut v: Value = serde_json::from_str(line).unwrap();
            v["measurement_uid"] = Value::String(format!("test_{copy}_{i}"));
            serde_json::to_writer(&mut w, &v).unwrap();
            w.write_all(b"\n").unwrap();
            n += 1;
        }
    }
    w.flush().unwrap();
    n
}

#[test]
fn killed_ingest_run_again_ends_with_exactly_the_right_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cw.db");
    let input = dir.path().join("big.jsonl");
    let total = big_input(&input, 150); // 12 000 measurements, several batches
    let bin = assert_cmd::cargo::cargo_bin("censorwatch");
    let mut child = std::process::Command::new(&bin)
        .args([
            "ingest",
            input.to_str().unwrap(),
            "--db",
            &format!("sqlite:{}", db.display()),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some batches are committed, but (most likely) before it ends.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = if db.exists() {
            SqliteStore::open(&db).and_then(|s| s.count()).unwrap_or(0)
        } else {
            0
        };
        if stored > 0 || Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    let after_kill = count(&db);
    assert!(after_kill <= total);
    // What survived is exactly the first `after_kill` measurements: whole batches, in order.
    let id_of = |n: u64| format!("test_{}_{}", n / 80, n % 80);
    let store = SqliteStore::open(&db).unwrap();
    if after_kill > 0 {
        assert!(
            store.get(&id_of(after_kill - 1)).unwrap().is_some(),
            "last of the prefix stored"
        );
    }
    if after_kill < total {
        assert!(
            store.get(&id_of(after_kill)).unwrap().is_none(),
            "nothing after the prefix: {after_kill}"
        );
    }
    drop(store);
    let (code, err) = ingest(&[&input], &db);
    assert_eq!(code, 0, "{err}");
    assert_eq!(count(&db), total, "{err}");
    assert!(
        err.contains(&format!("{} stored, {} duplicate", total - after_kill, after_kill)),
        "{err}"
    );
}
