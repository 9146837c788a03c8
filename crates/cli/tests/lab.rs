//! `censorwatch lab` as a process: `run NAME --json` output, the human tables, SIGINT in the
//! middle of a run (the host is left clean: no `cw<pid>-` namespace of the child remains), bad
//! usage, and the non-root path (the binary run as `nobody` via `setpriv` prints why and exits 2).
//!
//! The tests that build labs need root; without it they say so and return (CI runs as root). They
//! take one lock: each child builds its own lab, and a busy machine makes timing scenarios flaky.

use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_censorwatch");
static SERIAL: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    eprintln!("SKIPPED: lab runs need root (network namespaces); CI runs them as root");
    false
}

fn namespaces_of(pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip runs");
    let prefix = format!("cw{pid}-");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn run_json_prints_one_object_per_scenario_and_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !root_or_skip() {
        return;
    }
    let child = Command::new(BIN)
        .args(["lab", "run", "sni-reset", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let j = &lines[0];
    assert_eq!(j["scenario"], "sni-reset");
    assert_eq!(j["expected"]["status"], "blocked");
    assert_eq!(j["expected"]["method"], "tls.reset");
    assert_eq!(j["verdict"]["status"], "blocked");
    assert_eq!(j["verdict"]["method"], "tls.reset");
    assert!(j["verdict"]["reasons"].as_array().is_some_and(|r| !r.is_empty()));
    assert_eq!(j["pass"], true);
    assert!(namespaces_of(pid).is_empty(), "left: {:?}", namespaces_of(pid));
}

#[test]
fn run_prints_tables_for_people() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !root_or_skip() {
        return;
    }
    let out = Command::new(BIN)
        .args(["lab", "run", "website-down"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| website-down | down | down | yes |"), "{stdout}");
    assert!(stdout.contains("| expected \\ got | down |"), "{stdout}");
    assert!(stdout.contains("1/1 scenarios as expected"), "{stdout}");
}

#[test]
fn sigint_mid_run_deletes_the_lab_and_exits_130() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !root_or_skip() {
        return;
    }
    // The intermittent scenario runs for about 9 s: long enough to interrupt mid-way.
    let child = Command::new(BIN)
        .args(["lab", "run", "intermittent", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Wait until the whole lab exists (internet, router and client namespaces).
    while namespaces_of(pid).len() < 3 {
        assert!(Instant::now() < deadline, "the lab never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {stderr}");
    assert!(
        stderr.contains("interrupted; deleted 3 namespace(s)"),
        "stderr: {stderr}"
    );
    assert!(namespaces_of(pid).is_empty(), "left: {:?}", namespaces_of(pid));
}

#[test]
fn unknown_scenario_is_bad_usage() {
    if !root_or_skip() {
        return;
    }
    let out = Command::new(BIN).args(["lab", "run", "no-such"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no scenario \"no-such\""), "{stderr}");
    assert!(stderr.contains("sni-reset"), "{stderr}");
}

#[test]
fn without_root_run_says_why_and_exits_2() {
    if !is_root() {
        // Already unprivileged: the binary itself is the test.
        let out = Command::new(BIN).args(["lab", "run", "clean"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("needs root"));
        return;
    }
    // As root: drop to nobody for the child (setpriv, util-linux). The build directory may not be
    // reachable for nobody (a 0700 parent), so the binary runs from a copy in a 0755 directory.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("censorwatch");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("setpriv runs (util-linux)")
    };
    let out = nobody(&["lab", "run", "clean"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("the lab needs root"), "{stderr}");
    // `list` is pure and works for anyone.
    let out = nobody(&["lab", "list"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sni-reset"));
}

#[test]
fn pk_2024_replay_writes_ooni_jsonl_on_the_simulated_clock_and_the_truth() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 6-hour rounds: 12 rounds (16 Feb 00:00 … 18 Feb 18:00), enough to see every technique.
    let out = Command::new(BIN)
        .args(["lab", "run", "pk-2024", "--step-hours", "6", "--json", "--out"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5);
    let telenor = rows.iter().find(|r| r["asn"] == 24499).unwrap();
    assert_eq!(telenor["unsubmitted_rounds"], 2, "dark at 18 Feb 06:00 and 12:00");

    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("pk-2024-truth.json")).unwrap()).unwrap();
    assert_eq!(truth["replay"], "pk-2024");
    assert_eq!(truth["outages"][0]["asn"], 24499);

    let text = std::fs::read_to_string(dir.path().join("pk-2024.jsonl")).unwrap();
    let measurements: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // 12 rounds × 5 ISPs × 3 targets, less Telenor's two dark rounds.
    assert_eq!(measurements.len(), 12 * 5 * 3 - 2 * 3);
    for m in &measurements {
        assert_eq!(m["probe_cc"], "PK");
        let t = m["measurement_start_time"].as_str().unwrap();
        assert!(("2024-02-16".."2024-02-19").contains(&t), "{t}");
        assert!(
            ["AS17557", "AS45669", "AS59257", "AS24499", "AS23674"].contains(&m["probe_asn"].as_str().unwrap()),
            "{}",
            m["probe_asn"]
        );
    }
    assert!(!measurements.iter().any(|m| {
        m["probe_asn"] == "AS24499"
            && m["measurement_start_time"]
                .as_str()
                .unwrap()
                .starts_with("2024-02-18 12")
    }));
    // The measurements stand on their own: `analyze` judges them as the lab did.
    let analyzed = Command::new(BIN)
        .args(["analyze", "--json"])
        .arg(dir.path().join("pk-2024.jsonl"))
        .output()
        .unwrap();
    assert_eq!(analyzed.status.code(), Some(0));
    let verdicts: Vec<Value> = String::from_utf8_lossy(&analyzed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), measurements.len());
    let verdict_of = |asn: &str, when: &str, input: &str| {
        let i = measurements
            .iter()
            .position(|m| {
                m["probe_asn"] == asn
                    && m["input"] == input
                    && m["measurement_start_time"].as_str().unwrap().starts_with(when)
            })
            .unwrap_or_else(|| panic!("no measurement {asn} {when} {input}"));
        (
            verdicts[i]["verdict"]["status"].clone(),
            verdicts[i]["verdict"]["method"].clone(),
        )
    };
    // PTCL resets x.com's SNI from 17 Feb 18:00 on; before, x.com is fine.
    assert_eq!(verdict_of("AS17557", "2024-02-17 12", "https://x.com/").0, "ok");
    assert_eq!(
        verdict_of("AS17557", "2024-02-18 00", "https://x.com/"),
        (Value::from("blocked"), Value::from("tls.reset"))
    );
    // Jazz spoofs DNS in 6-hour cycles from 17 Feb 18:00: on at 18:00, off at 00:00, on at 06:00.
    assert_eq!(
        verdict_of("AS45669", "2024-02-17 18", "https://x.com/"),
        (Value::from("blocked"), Value::from("dns.spoofed"))
    );
    assert_eq!(verdict_of("AS45669", "2024-02-18 00", "https://x.com/").0, "ok");
    assert_eq!(
        verdict_of("AS45669", "2024-02-18 06", "https://twitter.com/"),
        (Value::from("blocked"), Value::from("dns.spoofed"))
    );
    // Zong throttles from 17 Feb 20:00.
    assert_eq!(verdict_of("AS59257", "2024-02-17 18", "https://abs.twimg.com/").0, "ok");
    assert_eq!(
        verdict_of("AS59257", "2024-02-18 00", "https://abs.twimg.com/"),
        (Value::from("blocked"), Value::from("throttled"))
    );
    // Nayatel is clean throughout.
    assert_eq!(verdict_of("AS23674", "2024-02-18 12", "https://twitter.com/").0, "ok");
}
