//! `censorwatch simulate` run as a process: the detector meets issue 8's targets on simulated
//! ground truth (two seeds, two bin widths), the JSONL timeline is complete and readable, and
//! bad usage exits 2 with a message.

use assert_cmd::Command;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_censorwatch");

/// Runs `censorwatch simulate ARGS…` and returns (exit code, stdout, stderr).
fn simulate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("simulate")
        .args(args)
        .output()
        .expect("run censorwatch");
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn number(report: &Value, field: &str) -> f64 {
    report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {report}"))
}

fn assert_targets(args: &[&str]) {
    let mut all = vec!["--eval", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = simulate(&all);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    let context = format!("simulate {all:?}: {stderr}\n{stdout}");
    assert_eq!(code, 0, "{context}");
    assert!(number(&report, "precision") >= 0.95, "{context}");
    assert!(number(&report, "recall") >= 0.95, "{context}");
    assert!(number(&report, "start_error_bins") <= 1.0, "{context}");
    assert!(number(&report, "end_error_bins") <= 1.0, "{context}");
    assert!(number(&report, "start_within_one_bin") >= 0.95, "{context}");
    assert!(number(&report, "end_within_one_bin") >= 0.95, "{context}");
    assert!(number(&report, "intermittent_accuracy") >= 0.9, "{context}");
    assert_eq!(report["clean_false_events"], 0, "{context}");
    assert_eq!(report["outage"]["blocking_events_during_outages"], 0, "{context}");
    assert_eq!(report["incremental_matches_batch"], true, "{context}");
    assert_eq!(report["missed_targets"], Value::Array(Vec::new()), "{context}");
    // The score is over real work: every kind of scenario, blocks found, one event per block.
    for kind in [
        "steady",
        "staggered",
        "intermittent",
        "sparse",
        "outage",
        "clean",
        "sparse_clean",
        "sparse_outage",
    ] {
        assert!(
            report["scenarios"][kind]["scenarios"].as_u64() > Some(0),
            "{kind}: {context}"
        );
    }
    assert!(report["matched"].as_u64() > Some(100), "{context}");
    assert!(number(&report, "country_events_per_block") <= 1.05, "{context}");
    assert!(number(&report["outage"], "recall") >= 0.95, "{context}");
    assert!(number(&report["outage"], "precision") >= 0.95, "{context}");
    // Sparse networks without BGP that fall silent are found by their silence alone.
    let sparse = &report["scenarios"]["sparse_outage"];
    assert!(sparse["truth_outages"].as_u64() > Some(0), "{context}");
    assert_eq!(sparse["matched_outages"], sparse["truth_outages"], "{context}");
}

#[test]
fn meets_the_targets_with_hourly_bins() {
    assert_targets(&["--seed", "1"]);
    assert_targets(&["--seed", "7"]);
}

#[test]
fn meets_the_targets_with_half_hour_bins() {
    assert_targets(&["--seed", "5", "--bin", "30m"]);
}

#[test]
fn text_report_names_the_figures() {
    let (code, stdout, stderr) = simulate(&["--eval", "--seed", "2"]);
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    for needle in [
        "precision",
        "recall",
        "start error",
        "end error",
        "intermittent",
        "every target met",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
}

#[test]
fn timeline_is_jsonl_with_truth_and_every_record() {
    let (code, stdout, stderr) = simulate(&["--json", "--seed", "5", "--days", "10"]);
    assert_eq!(code, 0, "{stderr}");
    let (mut scenarios, mut observations, mut signals) = (0, 0, 0);
    let mut last_arrival = i64::MIN;
    let mut late = 0;
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        match v["type"].as_str() {
            Some("scenario") => {
                scenarios += 1;
                assert!(v["cc"].as_str().is_some_and(|c| c.len() == 2), "{line}");
                assert!(v["truth"].is_array() && v["asns"].is_array(), "{line}");
            }
            Some("observation") => {
                observations += 1;
                let (time, arrival) = (v["time"].as_i64().unwrap(), v["arrival"].as_i64().unwrap());
                assert!(arrival >= time, "{line}");
                assert!(arrival >= last_arrival, "not in arrival order: {line}");
                last_arrival = arrival;
                late += usize::from(arrival - time >= 3600);
                assert!(v["probe_cc"].is_string() && v["probe_asn"].is_u64() && v["status"].is_string());
            }
            Some("signal") => {
                signals += 1;
                assert!(v["value"].as_f64().is_some_and(|x| x >= 0.0), "{line}");
            }
            _ => panic!("unknown record: {line}"),
        }
    }
    // The summary on stderr counts what stdout holds.
    assert!(
        stderr.contains(&format!(
            "{scenarios} scenarios, {observations} observations, {signals} signal samples"
        )),
        "{stderr}"
    );
    assert!(scenarios >= 70 && observations > 100_000 && signals > 10_000);
    assert!(late > observations / 20, "late submissions: {late} of {observations}");
    // The same seed gives the same timeline.
    let (_, again, _) = simulate(&["--json", "--seed", "5", "--days", "10"]);
    assert!(again == stdout, "seed 5 gave two timelines");
}

#[test]
fn bad_usage_exits_2() {
    let (code, _, stderr) = simulate(&["--bin", "2m"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("5 minutes to 1 day"), "{stderr}");
    let (code, _, stderr) = simulate(&["--bin", "soon"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("duration"), "{stderr}");
    let (code, _, _) = simulate(&["--days", "3"]);
    assert_eq!(code, 2);
}
