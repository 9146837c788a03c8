//! Crash safety: a child process appends batches in a loop (and, like the store will, records
//! each batch's range after the log returned it); the test kills it with SIGKILL at random moments,
//! several times, and after each kill reopens the log and checks that its size is consistent,
//! every leaf is intact, the store's records all point into the log, the new checkpoint verifies,
//! and every checkpoint the child published before the kill is consistent with the log.
//!
//! The child is this test binary itself, run with `CW_EVIDENCE_CRASH_CHILD=DIR` and the filter
//! `crash_child`: without the variable that test does nothing.

use censorwatch_evidence::merkle::{Hash, leaf_hash};
use censorwatch_evidence::{Keys, Log, open_checkpoint, prove_consistency, verify_consistency};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const CHILD_ENV: &str = "CW_EVIDENCE_CRASH_CHILD";
const MAX_BATCH: u64 = 3000;

fn expected_leaf(i: u64) -> Hash {
    leaf_hash(format!("crash-test leaf {i}").as_bytes())
}

fn keys() -> Keys {
    Keys::from_seed("censorwatch.test/crash", &[3; 32]).unwrap()
}

/// A small deterministic generator (xorshift), seeded per process.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (t ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

/// The child: appends forever (until killed).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let keys = keys();
    let mut log = Log::open(&dir.join("log")).unwrap();
    let mut store = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("store"))
        .unwrap();
    let mut rng = Rng(seed());
    let stdout = std::io::stdout();
    loop {
        let n = 1 + rng.next() % MAX_BATCH;
        let start = log.size();
        let batch: Vec<Hash> = (start..start + n).map(expected_leaf).collect();
        let range = log.append_batch(&batch).unwrap();
        // The "store" records what the log committed, after it did.
        store
            .write_all(format!("{} {}\n", range.start, range.end).as_bytes())
            .unwrap();
        let note = log.checkpoint(keys.name()).sign(&keys);
        let mut out = stdout.lock();
        writeln!(out, "CP {}", serde_json::to_string(&note).unwrap()).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill_9_during_appends_leaves_a_consistent_log() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let keys = keys();
    let mut rng = Rng(seed());
    let mut sizes = Vec::new();
    let mut dropped_total = 0;
    let started = Instant::now();
    for round in 0..8 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str::<String>(l.strip_prefix("CP ")?).ok())
                .collect::<Vec<String>>()
        });
        // Kill at a random moment: during start-up, recovery, or anywhere in the append loop.
        std::thread::sleep(Duration::from_millis(20 + rng.next() % 600));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let published = reader.join().unwrap();

        let log = Log::open(&dir.path().join("log")).unwrap();
        let size = log.size();
        dropped_total += log.recovery().dropped_leaves;
        // Every leaf is intact.
        let leaves = log.leaves(0..size).unwrap();
        for (i, l) in leaves.iter().enumerate() {
            assert_eq!(*l, expected_leaf(i as u64), "round {round}: leaf {i}");
        }
        // The store's records all point into the log, and the log is at most one batch ahead.
        let store = std::fs::read_to_string(dir.path().join("store")).unwrap_or_default();
        let mut store_end = 0;
        for line in store.lines() {
            let parts: Vec<u64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
            if let [start, end] = parts[..] {
                assert!(
                    end <= size,
                    "round {round}: the store has leaves up to {end}, the log {size}"
                );
                assert_eq!(log.leaf(start).unwrap(), expected_leaf(start));
                store_end = store_end.max(end);
            }
        }
        assert!(
            size - store_end <= MAX_BATCH,
            "round {round}: log {size}, store {store_end}"
        );
        // The reopened log's checkpoint verifies, and extends every checkpoint published before.
        let current = open_checkpoint(&log.checkpoint(keys.name()).sign(&keys), keys.verifier()).unwrap();
        assert_eq!(current.size, size);
        for note in &published {
            let old = open_checkpoint(note, keys.verifier()).unwrap();
            assert!(
                old.size <= size,
                "round {round}: published size {} > reopened {size}",
                old.size
            );
            let proof = prove_consistency(&log, old.size).unwrap();
            verify_consistency(&old, &current, &proof).unwrap();
        }
        sizes.push((size, published.len()));
        drop(log);
    }
    eprintln!(
        "crash test: sizes and checkpoints per round {sizes:?}; {dropped_total} uncommitted leaves dropped; {:?}",
        started.elapsed()
    );
    assert!(sizes.last().unwrap().0 > 0, "the child never appended anything");
}
