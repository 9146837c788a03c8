//! `censorwatch serve` as a process: killed with SIGKILL in the middle of concurrent submissions,
//! restarted on the same database, resent everything. Every acknowledged measurement must be
//! stored exactly once, and the store must hold exactly the distinct measurements sent. The
//! transparency log in the data directory then agrees with the store: one leaf per stored
//! measurement, none unlogged, and the checkpoint written at shutdown verifies and is the log's
//! head.

use censorwatch_store::{SqliteStore, Store};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn fixture_bodies(n: usize) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni/real_measurements_combined.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let base: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.len() < 32 << 10)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| {
            m["probe_cc"]
                .as_str()
                .is_some_and(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
                && m["probe_asn"].as_str().is_some_and(|a| a.starts_with("AS"))
        })
        .collect();
    assert!(base.len() > 20);
    (0..n)
        .map(|i| {
            let mut m = base[i % base.len()].clone();
            m.as_object_mut().unwrap().remove("measurement_uid");
            m["x_crash_test"] = serde_json::json!(i);
            serde_json::json!({"format": "json", "content": m.to_string()}).to_string()
        })
        .collect()
}

struct Server {
    child: Child,
    url: String,
}

fn start(db: &Path) -> Server {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("censorwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(format!("sqlite:{}", db.display()))
        .arg("--data")
        .arg(db.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Server {
        child,
        url: format!("http://{addr}"),
    }
}

fn submit(agent: &ureq::Agent, url: &str, body: &str) -> Result<String, String> {
    let response = agent
        .post(&format!("{url}/api/v1/submit_measurement"))
        .set("content-type", "application/json")
        .send_string(body)
        .map_err(|e| e.to_string())?;
    let answer: serde_json::Value =
        serde_json::from_str(&response.into_string().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    answer["measurement_uid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no uid in {answer}"))
}

#[test]
fn sigkill_mid_submission_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let bodies = Arc::new(fixture_bodies(3000));
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();

    // Run 1: 8 submitters; SIGKILL once some have been acknowledged.
    let mut server = start(&db);
    let acked: Arc<Mutex<HashMap<usize, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (bodies, acked, stop, agent, url) = (
                Arc::clone(&bodies),
                Arc::clone(&acked),
                Arc::clone(&stop),
                agent.clone(),
                server.url.clone(),
            );
            std::thread::spawn(move || {
                let mut failures = 0;
                for i in (t..bodies.len()).step_by(8) {
                    if stop.load(Ordering::Relaxed) && failures > 3 {
                        break;
                    }
                    match submit(&agent, &url, &bodies[i]) {
                        Ok(uid) => {
                            acked.lock().unwrap().insert(i, uid);
                        }
                        Err(_) => failures += 1,
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while acked.lock().unwrap().len() < 300 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} acknowledged before the kill", acked.len());
    assert!(
        acked.len() < bodies.len(),
        "the kill came after everything was sent; nothing was tested"
    );
    {
        let store = SqliteStore::open(&db).unwrap();
        for (i, uid) in &acked {
            assert!(
                store.get(uid).unwrap().is_some(),
                "measurement {i} ({uid}) was acknowledged but is not stored"
            );
        }
        eprintln!(
            "killed with {} acknowledged; {} stored",
            acked.len(),
            store.count().unwrap()
        );
    }

    // Run 2: same database; the client resends everything.
    let mut server = start(&db);
    let resent: Vec<String> = bodies
        .iter()
        .map(|b| submit(&agent, &server.url, b).expect("resend"))
        .collect();
    for (i, uid) in &acked {
        assert_eq!(&resent[*i], uid, "a resent measurement keeps its uid");
    }
    // Graceful stop on SIGTERM.
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "serve exits 0 on SIGTERM: {exit:?}");

    let store = SqliteStore::open(&db).unwrap();
    let distinct: std::collections::HashSet<&String> = resent.iter().collect();
    assert_eq!(distinct.len(), bodies.len());
    assert_eq!(
        store.count().unwrap(),
        distinct.len() as u64,
        "each measurement stored exactly once"
    );
    for uid in acked.values() {
        assert!(store.get(uid).unwrap().is_some());
    }

    // The log agrees with the store after the kill, the restart and the resend.
    let data = db.parent().unwrap();
    let ledger = censorwatch_evidence::Ledger::open_read_only(data).unwrap();
    assert_eq!(
        ledger.log().size(),
        store.count().unwrap(),
        "one leaf per stored measurement"
    );
    assert!(
        store.unlogged(None, 10).unwrap().is_empty(),
        "nothing stored is left unlogged"
    );
    assert_eq!(store.max_leaf_index().unwrap(), Some(store.count().unwrap() - 1));
    let checkpoint = std::fs::read_to_string(data.join("checkpoints/latest.txt")).unwrap();
    let checkpoint = censorwatch_evidence::open_checkpoint(&checkpoint, ledger.verifier()).unwrap();
    assert_eq!(
        (checkpoint.size, checkpoint.root),
        (ledger.log().size(), ledger.log().root())
    );
    for uid in acked.values().take(50) {
        let (record, index, proof) = ledger.prove(&store, uid).unwrap().expect("logged");
        let leaf = censorwatch_evidence::record_leaf(&record).unwrap().hash();
        censorwatch_evidence::merkle::verify_inclusion(index, checkpoint.size, &leaf, &proof, &checkpoint.root)
            .unwrap();
    }
}

#[test]
fn serve_rejects_a_bad_db_url() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("censorwatch"))
        .args(["serve", "--db", "postgres://x", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sqlite:PATH"));
}
