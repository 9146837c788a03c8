//! `censorwatch evidence` end to end with the real binary: ingest the real OONI fixtures, bundle
//! them, verify the bundle offline (data directory deleted), then tamper with it one way at a
//! time (a measurement, a verdict, a proof, the checkpoint, its signature, a dropped measurement,
//! one raw byte of the archive) and check that `verify` exits 1 naming what failed; a log that was
//! rewritten fails `evidence consistency` against an earlier checkpoint; and an ingest killed
//! with SIGKILL at random moments leaves a store and a log that agree once it runs again.

mod common;

use assert_cmd::Command;
use censorwatch_evidence::{Ledger, Log};
use censorwatch_store::{SqliteStore, Store};
use common::block::block_timeline;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata").join(rel)
}

fn censorwatch(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("censorwatch").unwrap().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ingest(input: &Path, db: &Path) {
    let (code, _, err) = censorwatch(&["ingest", input.to_str().unwrap(), "--db", &sqlite(db)]);
    assert_eq!(code, 0, "{err}");
}

fn sqlite(db: &Path) -> String {
    format!("sqlite:{}", db.display())
}

/// The files of a plain tar archive.
fn unpack(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(name, bytes);
    }
    files
}

fn pack(files: &BTreeMap<String, Vec<u8>>, path: &Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        builder.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().flush().unwrap();
}

fn verify(path: &Path) -> (i32, String) {
    let (code, out, err) = censorwatch(&["evidence", "verify", path.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

fn first_with_prefix<'a>(files: &'a BTreeMap<String, Vec<u8>>, prefix: &str) -> &'a str {
    files
        .keys()
        .find(|k| k.starts_with(prefix))
        .expect("the bundle has such a file")
}

fn flip_json_char(bytes: &mut [u8]) {
    // Change one letter inside the JSON (still valid JSON, different bytes).
    let i = bytes.iter().position(|b| b.is_ascii_lowercase()).expect("a letter");
    bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
}

#[test]
fn bundle_verifies_offline_and_every_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("cw.db");
    ingest(&testdata("ooni/real_measurements_combined.jsonl"), &db);
    let bundle = dir.path().join("it.tar");
    let (code, out, err) = censorwatch(&[
        "evidence",
        "bundle",
        "--db",
        &sqlite(&db),
        "--cc",
        "IT",
        "--since",
        "2000-01-01",
        "--until",
        "2100-01-01",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("measurements, checkpoint censorwatch/log-"), "{out}");

    // Offline: the bundle alone, moved away, with the data directory gone.
    let alone = tempfile::tempdir().unwrap();
    let moved = alone.path().join("bundle.tar");
    std::fs::copy(&bundle, &moved).unwrap();
    let key = std::fs::read_to_string(data.join("keys/verifier.key")).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    let (code, text) = verify(&moved);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("note: checked with the key the bundle carries"),
        "{text}"
    );
    assert!(text.contains("OK: ") && text.contains("measurements and"), "{text}");
    let files = unpack(&moved);
    let listed = files.keys().filter(|k| k.starts_with("measurements/")).count();
    assert!(listed >= 10, "Italy has many fixtures: {listed}");
    assert!(text.contains(&format!("OK: {listed} measurements")), "{text}");
    // With the operator's published key.
    let (code, out, _) = censorwatch(&["evidence", "verify", moved.to_str().unwrap(), "--key", key.trim()]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("note: checked with the key the bundle carries"), "{out}");

    let tampered = alone.path().join("tampered.tar");
    let check = |files: &BTreeMap<String, Vec<u8>>, expect: &[&str]| {
        pack(files, &tampered);
        let (code, text) = verify(&tampered);
        assert_eq!(code, 1, "tampering went unnoticed:\n{text}");
        for e in expect {
            assert!(text.contains(e), "expected {e:?} in:\n{text}");
        }
        assert!(text.contains("FAILED:"), "{text}");
    };

    // A measurement changed.
    let m = first_with_prefix(&files, "measurements/").to_owned();
    let mut f = files.clone();
    flip_json_char(f.get_mut(&m).unwrap());
    check(
        &f,
        &[
            &format!("FAIL {m}: SHA-256 differs from manifest"),
            &format!("FAIL {m}: measurement does not match log leaf"),
        ],
    );

    // A verdict changed.
    let v = first_with_prefix(&files, "verdicts/").to_owned();
    let mut f = files.clone();
    let text = String::from_utf8(f[&v].clone()).unwrap();
    let changed = if text.contains("\"ok\"") {
        text.replacen("\"ok\"", "\"blocked\"", 1)
    } else {
        text.replacen("\"status\":\"", "\"status\":\"x", 1)
    };
    assert_ne!(changed, text);
    f.insert(v.clone(), changed.into_bytes());
    check(&f, &[&format!("FAIL {v}: verdict does not match log leaf")]);

    // A proof hash changed (manifest updated to match, so only the proof check can catch it).
    let p = first_with_prefix(&files, "proofs/").to_owned();
    let mut f = files.clone();
    let mut proof: serde_json::Value = serde_json::from_slice(&f[&p]).unwrap();
    let first = proof["inclusion_proof"][0].as_str().unwrap().to_owned();
    let flipped = format!("{}{}", if first.starts_with('0') { "1" } else { "0" }, &first[1..]);
    proof["inclusion_proof"][0] = serde_json::Value::String(flipped);
    f.insert(p.clone(), serde_json::to_vec_pretty(&proof).unwrap());
    check(
        &f,
        &[&format!(
            "FAIL {p}: inclusion proof does not lead to the checkpoint root"
        )],
    );

    // The checkpoint's root changed.
    let mut f = files.clone();
    let cp = String::from_utf8(f["checkpoint.txt"].clone()).unwrap();
    let mut lines: Vec<String> = cp.split('\n').map(str::to_owned).collect();
    lines[1] = (lines[1].parse::<u64>().unwrap() + 1).to_string();
    f.insert("checkpoint.txt".into(), lines.join("\n").into_bytes());
    check(&f, &["FAIL checkpoint.txt: signature does not verify"]);

    // The signature changed.
    let mut f = files.clone();
    let sig_line = cp.lines().last().unwrap();
    let (head, b64) = sig_line.rsplit_once(' ').unwrap();
    let mut b = b64.as_bytes().to_vec();
    b[10] = if b[10] == b'A' { b'B' } else { b'A' };
    let forged = cp.replace(sig_line, &format!("{head} {}", String::from_utf8(b).unwrap()));
    f.insert("checkpoint.txt".into(), forged.into_bytes());
    check(&f, &["FAIL checkpoint.txt: signature does not verify"]);

    // One measurement dropped (its three files and its manifest entry).
    let mut f = files.clone();
    let mut manifest: serde_json::Value = serde_json::from_slice(&f["manifest.json"]).unwrap();
    let item = manifest["items"].as_array_mut().unwrap().remove(0);
    let id = item["id"].as_str().unwrap().to_owned();
    for key in ["measurement", "verdict", "proof"] {
        let path = item[key].as_str().unwrap();
        f.remove(path);
        manifest["files"].as_array_mut().unwrap().retain(|e| e["path"] != path);
    }
    f.insert("manifest.json".into(), serde_json::to_vec_pretty(&manifest).unwrap());
    check(
        &f,
        &[
            &format!(
                "FAIL manifest.json: lists {listed} measurements, bundle holds {}",
                listed - 1
            ),
            "FAIL manifest.sig: manifest.json differs from the signed manifest",
        ],
    );
    assert!(!id.is_empty());

    // One raw byte of the archive changed (inside a measurement's data, as a disk or a mail
    // gateway might): named, not just "corrupt".
    let mut raw = std::fs::read(&moved).unwrap();
    let needle = &files[&m][..40];
    let at = raw
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the measurement in the tar")
        + 20;
    raw[at] ^= 0x01;
    std::fs::write(&tampered, &raw).unwrap();
    let (code, text) = verify(&tampered);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(&format!("FAIL {m}: ")), "{text}");
}

#[test]
fn a_rewritten_log_fails_the_consistency_check() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("cw.db");
    ingest(&testdata("ooni/real_measurements_combined.jsonl"), &db);
    let old = dir.path().join("published.txt");
    std::fs::copy(data.join("checkpoints/latest.txt"), &old).unwrap();
    let consistency = || censorwatch(&["evidence", "consistency", old.to_str().unwrap(), "--db", &sqlite(&db)]);
    let (code, out, err) = consistency();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("OK: "), "{out}");

    // Rewrite: every leaf but one, the tree rebuilt from them, then two new measurements on top
    // so that the rewritten log is larger than the published one.
    let leaves = Log::open_read_only(&data.join("log")).unwrap().leaves(0..80).unwrap();
    let rebuilt = dir.path().join("rebuilt");
    {
        let mut log = Log::open(&rebuilt).unwrap();
        let mut kept = leaves.clone();
        kept.remove(5);
        kept.push(censorwatch_evidence::merkle::leaf_hash(b"new 1"));
        kept.push(censorwatch_evidence::merkle::leaf_hash(b"new 2"));
        log.append_batch(&kept).unwrap();
    }
    std::fs::remove_dir_all(data.join("log")).unwrap();
    std::fs::rename(&rebuilt, data.join("log")).unwrap();
    let (code, out, _) = consistency();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL: the log at size 81") && out.contains("does not extend the checkpoint at size 80"),
        "{out}"
    );

    // Rewritten without new measurements: smaller than what was published.
    let mut log = Log::open(&dir.path().join("shrunk")).unwrap();
    let mut kept = leaves;
    kept.remove(5);
    log.append_batch(&kept).unwrap();
    drop(log);
    std::fs::remove_dir_all(data.join("log")).unwrap();
    std::fs::rename(dir.path().join("shrunk"), data.join("log")).unwrap();
    let (code, out, _) = consistency();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("smaller than the old one"), "{out}");
}

#[test]
fn an_event_bundle_holds_the_block_and_its_surroundings_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("cw.db");
    let input = dir.path().join("pk.jsonl");
    let (jsonl, first_blocked) = block_timeline();
    std::fs::write(&input, jsonl).unwrap();
    ingest(&input, &db);

    let (code, out, err) = censorwatch(&["events", "--db", &sqlite(&db), "--json"]);
    assert_eq!(code, 0, "{err}");
    let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 1, "{out}");
    let id = events[0]["id"].as_str().unwrap().to_owned();

    let bundle = dir.path().join("event.tar");
    let (code, out, err) = censorwatch(&[
        "evidence",
        "bundle",
        &id,
        "--db",
        &sqlite(&db),
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, text) = verify(&bundle);
    assert_eq!(code, 0, "{text}");

    let files = unpack(&bundle);
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(
        manifest["description"]["event"]["id"],
        id.as_str(),
        "the event travels with its evidence"
    );
    assert!(
        manifest["title"].as_str().unwrap().contains("PK"),
        "{}",
        manifest["title"]
    );
    // Open event: from a day before its start (hour 20) to now, i.e. hours 0..48, every network.
    let names: Vec<&String> = files.keys().filter(|k| k.starts_with("measurements/")).collect();
    assert_eq!(names.len(), 576, "every measurement from a day before the start on");
    assert!(
        names.iter().any(|n| n.contains(&first_blocked)),
        "the first blocked one is in"
    );
    for asn in ["17557", "45595", "59257"] {
        assert!(
            names.iter().any(|n| n.contains(&format!("_PK_{asn}_"))),
            "AS{asn}: the clean network is shown too"
        );
    }
    let summary = String::from_utf8_lossy(&files["summary.md"]);
    assert!(summary.contains("PK"), "{summary}");

    let (code, _, err) = censorwatch(&["evidence", "bundle", "PK-nothing-1", "--db", &sqlite(&db)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no stored event has the id") && err.contains("censorwatch events"),
        "{err}"
    );
}

/// The fixtures repeated with fresh measurement uids: `copies` × 80 distinct measurements.
fn many_measurements(path: &Path, copies: usize) {
    let text = std::fs::read_to_string(testdata("ooni/real_measurements_combined.jsonl")).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for c in 0..copies {
        for (i, line) in text.lines().enumerate() {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["measurement_uid"] = serde_json::Value::String(format!("crash-{c}-{i}"));
            serde_json::to_writer(&mut out, &v).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    out.flush().unwrap();
}

#[test]
fn an_ingest_killed_at_random_moments_leaves_store_and_log_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.jsonl");
    many_measurements(&input, 60);
    let data = dir.path().join("data");
    let db = data.join("cw.db");
    let bin = assert_cmd::cargo::cargo_bin("censorwatch");
    let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ std::process::id() as u64;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = std::process::Command::new(&bin)
            .args(["ingest", input.to_str().unwrap(), "--db", &sqlite(&db)])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100 + seed % 700));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    // Run to the end: reconciles what the kills left, then stores and logs the rest.
    ingest(&input, &db);
    let store = SqliteStore::open(&db).unwrap();
    let stored = store.count().unwrap();
    assert_eq!(stored, 60 * 80);
    let ledger = Ledger::open_read_only(&data).unwrap();
    assert_eq!(ledger.log().size(), stored, "one leaf per stored measurement");
    assert!(store.unlogged(None, 10).unwrap().is_empty());
    assert_eq!(store.max_leaf_index().unwrap(), Some(stored - 1));
    for i in (0..60).step_by(7) {
        let id = format!("crash-{i}-{}", i % 80);
        let (_, index, proof) = ledger.prove(&store, &id).unwrap().expect("logged");
        let leaf = censorwatch_evidence::record_leaf(&store.get(&id).unwrap().unwrap()).unwrap();
        censorwatch_evidence::merkle::verify_inclusion(index, stored, &leaf.hash(), &proof, &ledger.log().root())
            .unwrap();
    }
    // The checkpoint the last run published verifies and matches the log.
    let cp_text = std::fs::read_to_string(data.join("checkpoints/latest.txt")).unwrap();
    let cp = censorwatch_evidence::open_checkpoint(&cp_text, ledger.verifier()).unwrap();
    assert_eq!((cp.size, cp.root), (stored, ledger.log().root()));
}

/// After a signing-key rotation: a bundle made before verifies with the old key, with both keys
/// (`--key` twice) and with the keyring, not with the new key alone; `consistency` accepts a
/// checkpoint the old key signed (any key of the data directory's keyring); `--key` and
/// `--keyring` together are a usage error.
#[test]
fn verify_and_consistency_accept_the_keys_before_and_after_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("cw.db");
    ingest(&testdata("ooni/real_measurements_combined.jsonl"), &db);
    let bundle = dir.path().join("it.tar.gz");
    let (code, out, err) = censorwatch(&[
        "evidence",
        "bundle",
        "--db",
        &sqlite(&db),
        "--cc",
        "IT",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let published = dir.path().join("published.txt");
    std::fs::copy(data.join("checkpoints/latest.txt"), &published).unwrap();
    let old = std::fs::read_to_string(data.join("keys/verifier.key")).unwrap();
    let rotation = Ledger::open(&data)
        .unwrap()
        .rotate_key(std::time::SystemTime::now())
        .unwrap();
    let new = std::fs::read_to_string(data.join("keys/verifier.key")).unwrap();
    assert_eq!(new.trim(), rotation.new.to_string());
    assert_ne!(old, new);
    let keyring = data.join("keys/keyring.json");
    let b = bundle.to_str().unwrap();

    let run = |extra: &[&str]| {
        let mut args = vec!["evidence", "verify", b];
        args.extend_from_slice(extra);
        censorwatch(&args)
    };
    let (code, out, err) = run(&["--key", old.trim()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&["--key", new.trim(), "--key", old.trim()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("signed by {}", old.trim())), "{out}");
    let (code, out, err) = run(&["--keyring", keyring.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&["--key", new.trim()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL checkpoint.txt: no signature by key"), "{out}");
    let (code, _, err) = run(&["--key", new.trim(), "--keyring", keyring.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");

    let (code, out, err) = censorwatch(&[
        "evidence",
        "consistency",
        published.to_str().unwrap(),
        "--db",
        &sqlite(&db),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("OK: "), "{out}");
    let (code, out, _) = censorwatch(&[
        "evidence",
        "consistency",
        published.to_str().unwrap(),
        "--db",
        &sqlite(&db),
        "--key",
        new.trim(),
    ]);
    assert_eq!(code, 1, "{out}");
}
