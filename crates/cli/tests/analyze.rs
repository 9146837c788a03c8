//! `censorwatch analyze` run as a process: input formats (JSONL, gzip, zstd, stdin, a pretty
//! `.json`), bad and oversized lines, unreadable inputs, bad usage, a closed pipe, and one output
//! record per input measurement.

use assert_cmd::Command;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

const BIN: &str = env!("CARGO_BIN_EXE_censorwatch");

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/ooni")
        .join(rel)
}

fn real() -> PathBuf {
    testdata("real_measurements_combined.jsonl")
}

fn cmd() -> Command {
    Command::new(BIN)
}

/// Runs `censorwatch analyze --json ARGS…` and returns (exit code, records, stderr).
fn analyze_json(args: &[&Path], stdin: Option<Vec<u8>>) -> (i32, Vec<Value>, String) {
    let mut c = cmd();
    c.arg("analyze").arg("--json").args(args);
    if let Some(input) = stdin {
        c.write_stdin(input);
    }
    let out = c.output().expect("run censorwatch");
    let records = String::from_utf8(out.stdout)
        .expect("utf-8 stdout")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
        .collect();
    (
        out.status.code().expect("exit code"),
        records,
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn lines_of(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r["line"].as_u64().expect("line number"))
        .collect()
}

fn real_bytes() -> Vec<u8> {
    std::fs::read(real()).expect("real corpus")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn plain_jsonl_gives_one_record_per_measurement() {
    let (code, records, stderr) = analyze_json(&[&real()], None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 80);
    assert_eq!(lines_of(&records), (1..=80).collect::<Vec<u64>>());
    for r in &records {
        assert!(r.get("file").is_none(), "one input: no file key: {r}");
        let status = r["verdict"]["status"]
            .as_str()
            .unwrap_or_else(|| panic!("no verdict: {r}"));
        assert!(["ok", "blocked", "down", "inconclusive"].contains(&status), "{r}");
        assert!(r.get("input").is_some(), "{r}");
    }
    // Each record names its measurement by uid, else by report id; empty ids (five lines have
    // `"report_id": ""` and no uid) count as none.
    let data = String::from_utf8(real_bytes()).unwrap();
    let mut unnamed = 0;
    for (r, line) in records.iter().zip(data.lines()) {
        let m: Value = serde_json::from_str(line).unwrap();
        let id = |k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let want = match (id("measurement_uid"), id("report_id")) {
            (Some(uid), _) => serde_json::json!({"measurement_uid": uid}),
            (None, Some(rid)) => serde_json::json!({"report_id": rid}),
            (None, None) => {
                unnamed += 1;
                serde_json::json!({})
            }
        };
        let got: serde_json::Map<String, Value> = r
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k == "measurement_uid" || *k == "report_id")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(Value::Object(got), want, "line {}", r["line"]);
    }
    assert_eq!(unnamed, 5);
    // Line 1 is web_connectivity for http://archive.org with a report id and no uid.
    assert_eq!(records[0]["input"], "http://archive.org");
    assert!(
        records[0]["report_id"]
            .as_str()
            .unwrap()
            .starts_with("20250527T233104Z_web")
    );
    assert!(records[0].get("measurement_uid").is_none());
    // Line 6 has a uid, which wins over the report id.
    assert_eq!(
        records[5]["measurement_uid"],
        "01202007106531b7e19c05e300cacea8803d9f9c"
    );
    assert!(records[5].get("report_id").is_none());
    assert_eq!(records[5]["input"], Value::Null);
    assert!(stderr.contains("80 lines read, 80 measurements, 0 errors"), "{stderr}");
    assert!(stderr.contains("by status:"), "{stderr}");
    assert!(stderr.contains("by method:"), "{stderr}");
}

#[test]
fn gzip_and_zstd_match_plain_whatever_the_name() {
    let (_, plain, _) = analyze_json(&[&real()], None);
    let dir = tempfile::tempdir().unwrap();
    let data = real_bytes();
    let gz = dir.path().join("m.jsonl.gz");
    std::fs::write(&gz, gzip(&data)).unwrap();
    let zst = dir.path().join("m.jsonl.zst");
    std::fs::write(&zst, zstd::encode_all(&data[..], 3).unwrap()).unwrap();
    // Compressed data under a plain name is still recognised by its magic bytes.
    let disguised = dir.path().join("m.jsonl");
    std::fs::write(&disguised, zstd::encode_all(&data[..], 1).unwrap()).unwrap();
    for path in [&gz, &zst, &disguised] {
        let (code, records, stderr) = analyze_json(&[path], None);
        assert_eq!(code, 0, "{}: {stderr}", path.display());
        assert_eq!(records, plain, "{}", path.display());
    }
}

#[test]
fn stdin_is_read_with_a_dash() {
    let (_, plain, _) = analyze_json(&[&real()], None);
    let (code, records, _) = analyze_json(&[Path::new("-")], Some(real_bytes()));
    assert_eq!(code, 0);
    assert_eq!(records, plain);
    // Compressed stdin too.
    let (code, records, _) = analyze_json(&[Path::new("-")], Some(gzip(&real_bytes())));
    assert_eq!(code, 0);
    assert_eq!(records, plain);
}

#[test]
fn pretty_printed_json_file_is_one_measurement() {
    let path = testdata("synthetic/successWithHTTPS.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().count() > 50, "the fixture is pretty-printed");
    let (code, records, stderr) = analyze_json(&[&path], None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["line"], 1);
    assert_eq!(records[0]["input"], "https://www.example.com/");
    assert!(records[0]["verdict"]["status"].is_string());
    assert!(stderr.contains("1 measurements, 0 errors"), "{stderr}");
}

#[test]
fn malformed_line_in_the_middle_is_reported_and_the_rest_analyzed() {
    let data = String::from_utf8(real_bytes()).unwrap();
    let mut lines: Vec<&str> = data.lines().take(6).collect();
    lines.insert(3, "{\"measurement_uid\": \"x\", \"input\": }");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (code, records, stderr) = analyze_json(&[&path], None);
    assert_eq!(code, 0, "a bad line is not a failure: {stderr}");
    assert_eq!(lines_of(&records), [1, 2, 3, 4, 5, 6, 7]);
    let bad = records[3].as_object().unwrap();
    assert_eq!(bad.len(), 2, "only line and error: {bad:?}");
    assert_eq!(bad["line"], 4);
    let error = bad["error"].as_str().unwrap();
    assert!(error.contains("at column 35"), "{error}");
    for r in records.iter().skip(4) {
        assert!(r["verdict"].is_object(), "lines after the bad one are analyzed: {r}");
    }
    assert!(stderr.contains("7 lines read, 6 measurements, 1 errors"), "{stderr}");
}

#[test]
fn oversized_line_is_an_error_and_the_next_line_is_read() {
    let data = String::from_utf8(real_bytes()).unwrap();
    let first = data.lines().next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(f, "{first}").unwrap();
    write!(f, "{{\"measurement_uid\": \"big\", \"pad\": \"").unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..65 {
        f.write_all(&chunk).unwrap();
    }
    writeln!(f, "\"}}").unwrap();
    writeln!(f, "{first}").unwrap();
    drop(f);
    let (code, records, stderr) = analyze_json(&[&path], None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines_of(&records), [1, 2, 3]);
    let error = records[1]["error"].as_str().expect("error record");
    assert!(error.contains("64 MiB"), "{error}");
    assert!(records[2]["verdict"].is_object());
    assert_eq!(records[2]["input"], "http://archive.org");
}

#[test]
fn missing_file_is_reported_and_the_others_still_analyzed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file.jsonl");
    let (code, records, stderr) = analyze_json(&[&missing, &real()], None);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no-such-file.jsonl"), "{stderr}");
    assert!(stderr.contains("cannot open"), "{stderr}");
    assert_eq!(records.len(), 80);
    let name = real().display().to_string();
    assert!(
        records.iter().all(|r| r["file"] == name.as_str()),
        "several inputs: file on each record"
    );
    assert!(stderr.contains("1 of 2 inputs read"), "{stderr}");
}

#[test]
fn several_files_restart_line_numbers_and_carry_the_file() {
    let pretty = testdata("synthetic/successWithHTTPS.json");
    let (code, records, _) = analyze_json(&[&real(), &pretty], None);
    assert_eq!(code, 0);
    assert_eq!(records.len(), 81);
    assert_eq!(records[80]["line"], 1);
    assert_eq!(records[80]["file"], pretty.display().to_string());
    assert_eq!(records[79]["line"], 80);
}

#[test]
fn corrupt_compressed_input_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.jsonl.gz");
    let gz = gzip(&real_bytes());
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let (code, records, stderr) = analyze_json(&[&path], None);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cut.jsonl.gz"), "{stderr}");
    assert!(stderr.contains("truncated or corrupt"), "{stderr}");
    assert!(records.len() < 80, "only the lines before the cut");
}

#[test]
fn bad_usage_exits_2() {
    cmd().assert().code(2);
    cmd().arg("analyze").assert().code(2);
    cmd().args(["analyze", "--no-such-flag"]).arg(real()).assert().code(2);
    cmd().arg("no-such-command").assert().code(2);
}

#[test]
fn human_output_has_one_line_per_measurement() {
    let out = cmd().arg("analyze").arg(real()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // One line per measurement, even for line 71 whose input ends in a newline.
    assert_eq!(lines.len(), 80);
    assert!(lines[70].starts_with("      71  "), "{}", lines[70]);
    assert!(lines[70].contains("github.com:443\\n"), "{}", lines[70]);
    assert!(lines[0].starts_with("       1  "), "{}", lines[0]);
    assert!(lines[0].contains("ID AS23693"), "{}", lines[0]);
    assert!(lines[0].contains("http://archive.org"), "{}", lines[0]);
    assert!(!text.contains('{'), "no JSON in human output");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("80 measurements"), "{stderr}");
}

#[test]
fn closed_stdout_ends_quietly_with_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.jsonl");
    let line = "{\"measurement_uid\":\"u\",\"test_name\":\"web_connectivity\",\"input\":\"http://a.example/\"}\n";
    std::fs::write(&path, line.repeat(20_000)).unwrap();
    let mut child = std::process::Command::new(BIN)
        .arg("analyze")
        .arg("--json")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("{\"line\":1,"), "{first}");
    // The reader is dropped here: the pipe is closed with most of the output unwritten.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "quiet on a closed pipe");
}

#[test]
fn progress_bar_on_a_terminal_does_not_hang_or_touch_stdout() {
    // `script` (util-linux) gives the command a terminal, so stderr is a tty and a bar is drawn.
    let Some(script) = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("skipped: no `script` to provide a terminal");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.jsonl");
    let line = "{\"measurement_uid\":\"u\",\"test_name\":\"web_connectivity\",\"input\":\"http://a.example/\"}\n";
    let copies = (9 << 20) / line.len() + 1; // over the 8 MiB progress threshold
    std::fs::write(&input, line.repeat(copies)).unwrap();
    let output = dir.path().join("out.jsonl");
    let typescript = dir.path().join("typescript");
    let command = format!("'{BIN}' analyze --json '{}' > '{}'", input.display(), output.display());
    let mut child = std::process::Command::new(script)
        .args(["-qec", &command])
        .arg(&typescript)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("censorwatch with a progress bar did not finish in 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let terminal = std::fs::read_to_string(&typescript).unwrap();
    assert!(terminal.contains("MiB"), "a bytes-based bar was drawn: {terminal}");
    assert!(terminal.contains(&format!("{copies} measurements")), "{terminal}");
    let out = std::fs::read_to_string(&output).unwrap();
    assert_eq!(out.lines().count(), copies);
    assert!(
        out.lines().all(|l| l.starts_with("{\"line\":")),
        "stdout holds only records"
    );
}
