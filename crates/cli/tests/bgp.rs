//! `censorwatch bgp` run as a process: the 2008 YouTube hijack in the real RouteViews files with
//! the pyasn table (JSON and text), a cut gzip file (the error names the offset and the signals
//! before it are kept), stdin, unreadable and malformed inputs, unsupported record types, bad
//! usage, visibility reports, and a closed pipe.

use assert_cmd::Command;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

const BIN: &str = env!("CARGO_BIN_EXE_censorwatch");

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/bgp")
        .join(rel)
}

fn pyasn() -> PathBuf {
    testdata("pyasn__ipasn_20080501_v12.dat.gz")
}

fn updates(times: &[&str]) -> Vec<PathBuf> {
    times
        .iter()
        .map(|t| testdata(&format!("routeviews_2008_youtube/updates.20080224.{t}.bz2")))
        .collect()
}

fn all_updates() -> Vec<PathBuf> {
    updates(&[
        "1807", "1824", "1839", "1854", "1909", "1924", "1939", "1954", "2009", "2026", "2041", "2056", "2111", "2126",
        "2141",
    ])
}

/// Runs `censorwatch bgp ARGS…`; returns (exit code, stdout, stderr).
fn bgp(args: &[&std::ffi::OsStr], stdin: Option<Vec<u8>>) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.arg("bgp").args(args);
    if let Some(input) = stdin {
        c.write_stdin(input);
    }
    let out = c.output().expect("run censorwatch");
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn os<'a>(items: impl IntoIterator<Item = &'a PathBuf>) -> Vec<&'a std::ffi::OsStr> {
    items.into_iter().map(|p| p.as_os_str()).collect()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
        .collect()
}

fn of_type<'a>(signals: &'a [Value], kind: &str, prefix: &str) -> Vec<&'a Value> {
    signals
        .iter()
        .filter(|s| s["type"] == kind && s["prefix"] == prefix)
        .collect()
}

#[test]
fn the_youtube_hijack_as_json() {
    let files = all_updates();
    let table = pyasn();
    let mut args = vec!["--origins".as_ref(), table.as_os_str(), "--json".as_ref()];
    args.extend(os(&files));
    let (code, stdout, stderr) = bgp(&args, None);
    assert_eq!(code, 0, "{stderr}");
    let signals = json_lines(&stdout);
    for s in &signals {
        let kind = s["type"].as_str().unwrap_or_else(|| panic!("no type: {s}"));
        assert!(
            ["origin_change", "counter_announcement", "withdrawn", "visibility"].contains(&kind),
            "{s}"
        );
        let time = s["time"].as_str().unwrap_or_else(|| panic!("no time: {s}"));
        assert!(time.starts_with("2008-02-24T") && time.ends_with('Z'), "{s}");
    }

    // The example object, field for field.
    let changes = of_type(&signals, "origin_change", "208.65.153.0/24");
    assert_eq!(changes.len(), 1, "{changes:?}");
    let c = changes[0];
    assert_eq!(c["origin"], 17557);
    assert_eq!(c["expected_origins"], serde_json::json!([36561]));
    assert_eq!(c["time"], "2008-02-24T18:47:57Z");
    assert!(c["peers"].as_u64().is_some_and(|n| n >= 1), "{c}");
    assert_eq!(c["expected_from"], "table");
    assert_eq!(c["as_path"], serde_json::json!([1280, 6461, 3491, 17557]));

    let counters: Vec<(&str, &str)> = signals
        .iter()
        .filter(|s| s["type"] == "counter_announcement" && s["against_prefix"] == "208.65.153.0/24")
        .map(|s| {
            assert_eq!(
                (s["origin"].as_u64(), &s["against_origins"]),
                (Some(36561), &serde_json::json!([17557]))
            );
            (s["prefix"].as_str().unwrap(), s["time"].as_str().unwrap())
        })
        .collect();
    assert_eq!(counters[0], ("208.65.153.0/24", "2008-02-24T20:07:25Z"));
    assert_eq!(counters.len(), 3, "the /24 and both /25s: {counters:?}");

    let withdrawn = of_type(&signals, "withdrawn", "208.65.153.0/24");
    assert_eq!(withdrawn.len(), 1);
    let w = withdrawn[0];
    assert_eq!(
        (w["origin"].as_u64(), w["since"].as_str()),
        (Some(17557), Some("2008-02-24T18:47:57Z"))
    );
    assert!(w["time"].as_str().unwrap().starts_with("2008-02-24T21:01:"), "{w}");
    assert!(w["peers_max"].as_u64().unwrap() >= 40, "{w}");

    // Visibility of the ASes involved, every five minutes they change.
    let pk: Vec<&Value> = signals
        .iter()
        .filter(|s| s["type"] == "visibility" && s["asn"] == 17557)
        .collect();
    assert!(pk.len() > 3, "{pk:?}");
    assert_eq!(pk[0]["time"], "2008-02-24T18:50:00Z");
    assert!(pk.iter().all(|v| v["slash24"].is_u64()));

    assert!(stderr.contains("15 of 15 files read cleanly"), "{stderr}");
    assert!(stderr.contains("270849 from --origins"), "{stderr}");
}

#[test]
fn the_youtube_hijack_as_text() {
    let files = updates(&["1839"]);
    let table = pyasn();
    let mut args = vec!["--origins".as_ref(), table.as_os_str()];
    args.extend(os(&files));
    let (code, stdout, stderr) = bgp(&args, None);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("208.65.153.0/24"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.starts_with("2008-02-24T18:47:57Z  origin_change"), "{line}");
    assert!(
        line.contains("208.65.153.0/24 from AS17557, expected AS36561 [table]; first via 149.20.65.198 AS1280"),
        "{line}"
    );
    // Still on at the end of this file: named in the summary.
    assert!(
        stderr.contains("208.65.153.0/24 from AS17557 since 2008-02-24T18:47:57Z"),
        "{stderr}"
    );
}

/// The decompressed 18:39 file (which holds the start of the hijack), or a prefix of it.
fn file_1839() -> Vec<u8> {
    let raw = std::fs::read(&updates(&["1839"])[0]).unwrap();
    let (_, mut reader) = censorwatch_bgp::decompress(raw.as_slice()).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

/// Start offsets of the complete MRT records (RFC 6396 §2: 12-byte header, length last).
fn record_starts(data: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while data.len() - at >= 12 {
        let length = u32::from_be_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        if data.len() - at - 12 < length {
            break;
        }
        starts.push(at);
        at += 12 + length;
    }
    starts
}

#[test]
fn a_cut_file_is_an_error_with_its_offset_and_keeps_what_came_before() {
    let data = file_1839();
    let starts = record_starts(&data);
    // Cut 80% into the file (the hijack starts about 60% in), in the middle of a record.
    let record = starts.len() * 4 / 5;
    let cut = starts[record] + 7;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data[..cut]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("updates.cut.gz");
    std::fs::write(&path, gz.finish().unwrap()).unwrap();

    let table = pyasn();
    let (code, stdout, stderr) = bgp(
        &[
            "--json".as_ref(),
            "--origins".as_ref(),
            table.as_os_str(),
            path.as_os_str(),
        ],
        None,
    );
    assert_eq!(code, 1, "{stderr}");
    let want = format!(
        "truncated MRT record at byte offset {} of {} (gzip-decompressed), after {record} records",
        starts[record],
        path.display()
    );
    assert!(stderr.contains(&want), "{want}\n{stderr}");
    assert!(stderr.contains("the records before it were used"), "{stderr}");
    assert!(stderr.contains("0 of 1 files read cleanly"), "{stderr}");
    let signals = json_lines(&stdout);
    assert_eq!(of_type(&signals, "origin_change", "208.65.153.0/24").len(), 1, "kept");
}

#[test]
fn reads_stdin_and_goes_on_past_files_it_cannot_read() {
    let data = file_1839();
    let missing = testdata("no-such-file.bz2");
    let (code, stdout, stderr) = bgp(&["--json".as_ref(), missing.as_os_str(), "-".as_ref()], Some(data));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read {}", missing.display())),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 2 files read cleanly"), "{stderr}");
    // Without a table, expectations are learned from the updates; signals still come.
    let signals = json_lines(&stdout);
    assert!(
        signals
            .iter()
            .any(|s| s["type"] == "origin_change" && s["expected_from"] == "updates")
    );
}

#[test]
fn malformed_records_fail_the_run_with_their_offset() {
    let sample = testdata("samples/bview.20140112.1600_3samples.bz2");
    let (code, _, stderr) = bgp(&[sample.as_os_str()], None);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("malformed MRT record 1 at byte offset 0 of ") && stderr.contains("(and 2 more in this file)"),
        "{stderr}"
    );
    assert!(stderr.contains("no PEER_INDEX_TABLE"), "{stderr}");
}

#[test]
fn a_truncated_rib_dump_fails_cleanly_and_sets_expectations() {
    let rib = testdata("samples/rib.20080501.0644_firstMB.bz2");
    let (code, _, stderr) = bgp(&[rib.as_os_str()], None);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("truncated MRT record at byte offset "), "{stderr}");
    assert!(stderr.contains("(bzip2-decompressed), after "), "{stderr}");
    assert!(stderr.contains(" from RIB dumps"), "{stderr}");
}

#[test]
fn unsupported_record_types_are_a_note_not_a_failure() {
    let sample = testdata("samples/openbgpd_rib_table-mp");
    let (code, _, stderr) = bgp(&[sample.as_os_str()], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "skipped 31 of 31 records of a type bgpkit-parser cannot read (the first: BGP4MP subtype 2 (BGP4MP_ENTRY))"
        ),
        "{stderr}"
    );
}

#[test]
fn every_sample_gives_an_exit_code_and_never_a_panic() {
    for entry in std::fs::read_dir(testdata("samples")).unwrap() {
        let path = entry.unwrap().path();
        let (code, _, stderr) = bgp(&["--json".as_ref(), path.as_os_str()], None);
        assert!(code == 0 || code == 1, "{}: {code}: {stderr}", path.display());
        assert!(!stderr.contains("panicked"), "{}: {stderr}", path.display());
        if code == 1 {
            assert!(stderr.contains("byte offset"), "{}: {stderr}", path.display());
        }
    }
}

#[test]
fn watched_asns_are_reported_at_every_busy_bin() {
    let files = updates(&["1839", "1854"]);
    let mut args = vec![
        "--json".as_ref(),
        "--visibility".as_ref(),
        "watched".as_ref(),
        "--asn".as_ref(),
        "17557".as_ref(),
        "--bin".as_ref(),
        "600".as_ref(),
    ];
    args.extend(os(&files));
    let (code, stdout, stderr) = bgp(&args, None);
    assert_eq!(code, 0, "{stderr}");
    let visibility: Vec<Value> = json_lines(&stdout)
        .into_iter()
        .filter(|s| s["type"] == "visibility")
        .collect();
    assert!(visibility.iter().all(|v| v["asn"] == 17557), "only the watched AS");
    // 18:39 to 19:09:21 in ten-minute bins: samples at the ends of the bins 18:40, 18:50 and 19:00,
    // and a last one at the last update.
    let times: Vec<&str> = visibility.iter().map(|v| v["time"].as_str().unwrap()).collect();
    assert_eq!(times.len(), 4, "{times:?}");
    assert_eq!(
        &times[..3],
        ["2008-02-24T18:40:00Z", "2008-02-24T18:50:00Z", "2008-02-24T19:00:00Z"]
    );
    assert!(
        times[3] > "2008-02-24T19:00:00Z" && times[3] < "2008-02-24T19:10:00Z",
        "{times:?}"
    );
}

#[test]
fn bad_usage_exits_2() {
    let files = updates(&["1839"]);
    let missing = testdata("no-such-table.dat");
    let dir = tempfile::tempdir().unwrap();
    let bad_table = dir.path().join("bad.dat");
    std::fs::write(&bad_table, "1.0.0.0/8\t1\nnot a table line\n").unwrap();
    for (args, want) in [
        (vec![], "required"),
        (
            vec!["--origins".as_ref(), missing.as_os_str(), files[0].as_os_str()],
            "--origins: cannot read",
        ),
        (
            vec!["--origins".as_ref(), bad_table.as_os_str(), files[0].as_os_str()],
            "bad.dat:2: expected",
        ),
        (vec!["--bin".as_ref(), "0".as_ref(), files[0].as_os_str()], "--bin"),
        (
            vec!["--visibility".as_ref(), "some".as_ref(), files[0].as_os_str()],
            "--visibility",
        ),
    ] {
        let (code, stdout, stderr) = bgp(&args, None);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(stdout.is_empty());
    }
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let files = all_updates();
    let mut child = std::process::Command::new(BIN)
        .arg("bgp")
        .arg("--visibility")
        .arg("all")
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("2008-02-24T"), "{first}");
    // The reader is dropped: the next writes fail with EPIPE.
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
