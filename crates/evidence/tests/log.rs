//! The file-backed log: heads and proofs agree with the pure in-memory tree for every size and
//! batching; reopening, recovery from damaged files, the writer lock, read-only opening,
//! checkpoints, daily checkpoint files, and consistency (including a rewritten log that fails it).

use censorwatch_evidence::checkpoint::{self, open_checkpoint, write_daily_file};
use censorwatch_evidence::consistency::ConsistencyError;
use censorwatch_evidence::log::LogError;
use censorwatch_evidence::merkle::{self, EMPTY_ROOT, Hash, leaf_hash, verify_inclusion};
use censorwatch_evidence::{Keys, Log, measurement_leaf_hash, prove_consistency, verify_consistency};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

fn leaves(from: u64, n: u64) -> Vec<Hash> {
    (from..from + n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

fn keys() -> Keys {
    Keys::from_seed("censorwatch.test/log", &[7; 32]).unwrap()
}

#[test]
fn heads_and_proofs_match_the_in_memory_tree() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    assert_eq!((log.size(), log.root()), (0, EMPTY_ROOT));
    let all = leaves(0, 300);
    let mut at = 0usize;
    // Batches of every size from 1 up, so that appends cross every kind of subtree boundary.
    for batch in 1.. {
        if at >= all.len() {
            break;
        }
        let end = (at + batch).min(all.len());
        let range = log.append_batch(&all[at..end]).unwrap();
        assert_eq!(range, at as u64..end as u64);
        at = end;
        assert_eq!(log.root(), merkle::root(&all[..at], at as u64).unwrap(), "size {at}");
    }
    for size in [1u64, 2, 15, 16, 17, 255, 256, 257, 300] {
        assert_eq!(log.root_at(size).unwrap(), merkle::root(all.as_slice(), size).unwrap());
        for index in [0, size / 3, size / 2, size - 1] {
            let p = log.inclusion_proof(index, size).unwrap();
            assert_eq!(p, merkle::inclusion_proof(all.as_slice(), index, size).unwrap());
            verify_inclusion(index, size, &all[index as usize], &p, &log.root_at(size).unwrap()).unwrap();
        }
        for new in [size, size + 1, 300] {
            if new <= 300 {
                let p = log.consistency_proof(size, new).unwrap();
                assert_eq!(p, merkle::consistency_proof(all.as_slice(), size, new).unwrap());
            }
        }
    }
    assert_eq!(log.leaves(10..13).unwrap(), all[10..13].to_vec());
    assert_eq!(log.leaf(299).unwrap(), all[299]);
    assert!(matches!(log.leaf(300), Err(LogError::OutOfRange { .. })));
    assert!(matches!(log.inclusion_proof(5, 301), Err(LogError::OutOfRange { .. })));
    assert_eq!(log.find_leaf(&all[123], 100).unwrap(), Some(123));
    assert_eq!(log.find_leaf(&all[123], 124).unwrap(), None);

    let root = log.root();
    drop(log);
    let log = Log::open(dir.path()).unwrap();
    assert_eq!((log.size(), log.root()), (300, root));
    assert_eq!(log.recovery().dropped_leaves, 0);
    assert_eq!(log.recovery().rebuilt_nodes, 0);
}

#[test]
fn one_writer_at_a_time_and_readers_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    log.append_batch(&leaves(0, 40)).unwrap();
    assert!(matches!(Log::open(dir.path()), Err(LogError::Locked { .. })));
    let reader = Log::open_read_only(dir.path()).unwrap();
    assert_eq!((reader.size(), reader.root()), (40, log.root()));
    let mut reader = reader;
    assert!(matches!(reader.append_batch(&leaves(40, 1)), Err(LogError::ReadOnly)));
    drop(log);
    Log::open(dir.path()).unwrap();
}

fn append_raw(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn recovery_cuts_uncommitted_tails_and_rebuilds_levels() {
    let dir = tempfile::tempdir().unwrap();
    let all = leaves(0, 1000);
    let mut log = Log::open(dir.path()).unwrap();
    log.append_batch(&all[..777]).unwrap();
    let root = log.root();
    drop(log);

    // A batch that was being written when the process died: leaves and a partial record past the
    // committed head, a level file cut short, another level file lost.
    append_raw(&dir.path().join("leaves"), &all[777..800].concat());
    append_raw(&dir.path().join("leaves"), &[0xAB; 17]);
    let l4 = dir.path().join("level-04");
    let len = fs::metadata(&l4).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&l4)
        .unwrap()
        .set_len(len - 40)
        .unwrap();
    fs::remove_file(dir.path().join("level-08")).unwrap();

    let mut log = Log::open(dir.path()).unwrap();
    let rec = log.recovery().clone();
    assert_eq!(rec.size, 777);
    assert_eq!(rec.dropped_leaves, 23);
    assert_eq!(rec.partial_bytes, 17 + 24, "17 bytes of leaves, 24 of a level-4 entry");
    assert_eq!(
        rec.rebuilt_nodes,
        2 + 3,
        "two level-4 entries and three level-8 entries"
    );
    assert_eq!(log.root(), root);
    assert_eq!(fs::metadata(dir.path().join("leaves")).unwrap().len(), 777 * 32);
    log.append_batch(&all[777..]).unwrap();
    assert_eq!(log.root(), merkle::root(all.as_slice(), 1000).unwrap());
    for i in [0u64, 500, 776, 777, 999] {
        let p = log.inclusion_proof(i, 1000).unwrap();
        verify_inclusion(i, 1000, &all[i as usize], &p, &log.root()).unwrap();
    }
}

#[test]
fn recovery_repairs_damaged_level_files_and_refuses_damaged_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    log.append_batch(&leaves(0, 600)).unwrap();
    let root = log.root();
    drop(log);

    // A derived file with a wrong entry is rebuilt from the leaves.
    let l8 = dir.path().join("level-08");
    let mut bytes = fs::read(&l8).unwrap();
    bytes[3] ^= 1;
    fs::write(&l8, &bytes).unwrap();
    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.root(), root);
    assert!(log.recovery().rebuilt_nodes > 0);
    drop(log);

    // A changed leaf cannot be repaired: it is reported, not papered over.
    let lf = dir.path().join("leaves");
    let mut bytes = fs::read(&lf).unwrap();
    bytes[32 * 100] ^= 1;
    fs::write(&lf, &bytes).unwrap();
    let err = Log::open(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("the leaves file was damaged or rewritten"),
        "{err}"
    );

    // Committed leaves that are gone are reported too.
    bytes[32 * 100] ^= 1;
    bytes.truncate(32 * 500);
    fs::write(&lf, &bytes).unwrap();
    let err = Log::open(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("holds 500 leaves but 600 were committed"),
        "{err}"
    );
}

#[test]
fn checkpoints_sign_verify_and_go_to_daily_files() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut log = Log::open(&dir.path().join("log")).unwrap();
    log.append_batch(&leaves(0, 10)).unwrap();
    let cp = log.checkpoint(keys.name());
    let note = cp.sign(&keys);
    assert!(note.starts_with(&format!(
        "censorwatch.test/log\n10\n{}\n\n\u{2014} censorwatch.test/log ",
        cp.root_base64()
    )));
    assert_eq!(open_checkpoint(&note, keys.verifier()).unwrap(), cp);

    let cps = dir.path().join("checkpoints");
    let day = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_708_128_000);
    let path = write_daily_file(&cps, &note, day).unwrap().unwrap();
    assert_eq!(path, cps.join("2024-02-17.txt"));
    assert_eq!(fs::read_to_string(&path).unwrap(), note);
    // The day's first checkpoint stays.
    log.append_batch(&leaves(10, 5)).unwrap();
    let later = log.checkpoint(keys.name()).sign(&keys);
    assert_eq!(write_daily_file(&cps, &later, day).unwrap(), None);
    assert_eq!(fs::read_to_string(&path).unwrap(), note);
}

#[test]
fn keys_are_created_once_private_and_reloaded() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let kd = dir.path().join("keys");
    let a = Keys::load_or_create(&kd, "censorwatch.test/log").unwrap();
    let mode = fs::metadata(kd.join("signer.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let b = Keys::load_or_create(&kd, "censorwatch.test/log").unwrap();
    assert_eq!(a.verifier(), b.verifier());
    assert_eq!(
        fs::read_to_string(kd.join("verifier.key")).unwrap().trim(),
        a.verifier().to_string()
    );
    assert!(Keys::load_or_create(&kd, "other.name").is_err());
    fs::set_permissions(kd.join("signer.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let err = Keys::load(&kd).unwrap_err();
    assert!(err.to_string().contains("readable by others"), "{err}");
}

#[test]
fn consistency_with_earlier_checkpoints_and_a_rewritten_log_fails() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..200)
        .map(|i| format!("20240217T0000{i:02}Z_webconnectivity_IR_{i}"))
        .collect();
    let leaf = |id: &String| measurement_leaf_hash(id, id.as_bytes(), b"{\"status\":\"blocked\"}").unwrap();
    let all: Vec<Hash> = ids.iter().map(leaf).collect();

    let mut log = Log::open(&dir.path().join("log")).unwrap();
    log.append_batch(&all[..120]).unwrap();
    let old_note = log.checkpoint(keys.name()).sign(&keys);
    let old = open_checkpoint(&old_note, keys.verifier()).unwrap();
    log.append_batch(&all[120..]).unwrap();
    let new = log.checkpoint(keys.name());
    let proof = prove_consistency(&log, old.size).unwrap();
    verify_consistency(&old, &new, &proof).unwrap();
    // Every earlier size is consistent with the current log.
    for size in [1u64, 2, 64, 119] {
        let c = checkpoint::Checkpoint::new(keys.name(), size, merkle::root(all.as_slice(), size).unwrap());
        verify_consistency(&c, &new, &prove_consistency(&log, size).unwrap()).unwrap();
    }

    // The rewritten log: measurement 57 removed and the tree rebuilt from the rest.
    let mut rewritten_leaves = all.clone();
    rewritten_leaves.remove(57);
    let mut rewritten = Log::open(&dir.path().join("rewritten")).unwrap();
    rewritten.append_batch(&rewritten_leaves).unwrap();
    let rnew = rewritten.checkpoint(keys.name());
    let rproof = prove_consistency(&rewritten, old.size).unwrap();
    let err = verify_consistency(&old, &rnew, &rproof).unwrap_err();
    assert!(matches!(err, ConsistencyError::NotExtended { .. }), "{err}");
    assert!(err.to_string().starts_with("the log at size 199"), "{err}");
    // Nor can the old proof (from the honest log) be reused for it.
    assert!(verify_consistency(&old, &rnew, &proof).is_err());

    // A shrunk log and another log's checkpoint are named as such.
    let small = checkpoint::Checkpoint::new(keys.name(), 100, rewritten.root_at(100).unwrap());
    assert!(matches!(
        verify_consistency(&old, &small, &[]),
        Err(ConsistencyError::Shrunk {
            old_size: 120,
            new_size: 100
        })
    ));
    let other = checkpoint::Checkpoint::new("other.example/log", 200, new.root);
    assert!(matches!(
        verify_consistency(&old, &other, &proof),
        Err(ConsistencyError::OriginDiffers { .. })
    ));
}
