//! Key rotation and redaction over a real log and SQLite store: a bundle made before a rotation
//! keeps verifying after it (with the old key, with both, with the published keyring); one made
//! after verifies with the new key only; the transition checkpoint verifies under both; the
//! keyring's validity periods catch a retired key used later; a crash-interrupted rotation
//! reopens with one whole key pair; and a redacted measurement keeps its leaf, so earlier proofs
//! and bundles stay valid while new bundles leave it out.

use censorwatch_evidence::bundle::verify_bundle_bytes_trusting;
use censorwatch_evidence::checkpoint::open_checkpoint;
use censorwatch_evidence::keyring::{KEYRING_FILE, NEXT_SIGNER_FILE};
use censorwatch_evidence::{KeyStatus, Keyring, Ledger, Selection, Trusted, collect};
use censorwatch_store::conformance::{distinct, fixture_records, unique_records};
use censorwatch_store::{Record, SqliteStore, Store};
use std::path::Path;
use std::time::{Duration, SystemTime};

fn records(prefix: &str, n: usize) -> Vec<Record> {
    let mut out = unique_records(&distinct(&fixture_records()), prefix, n);
    for r in &mut out {
        // One country and domain, so one selection takes them all.
        r.meta.probe_cc = "PK".into();
        r.meta.domain = Some("x.com".into());
    }
    out
}

fn bundle(store: &dyn Store, ledger: &Ledger, at: SystemTime) -> Vec<u8> {
    let selection = Selection::for_query(Some("PK"), Some("x.com"), None, None).unwrap();
    let collected = collect(store, ledger, &selection, 10_000).unwrap();
    selection
        .writer(ledger, collected.items)
        .created(at.into())
        .to_gzip_bytes()
        .unwrap()
}

fn keyring(data: &Path) -> Keyring {
    Keyring::parse(&std::fs::read_to_string(data.join("keys").join(KEYRING_FILE)).unwrap()).unwrap()
}

#[test]
fn bundles_made_before_a_rotation_keep_verifying_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("cw.db")).unwrap();
    let (mut ledger, _) = Ledger::open_for(dir.path(), &store).unwrap();
    let a = records("a-", 20);
    store.insert(&a).unwrap();
    ledger.log_stored(&store, &a).unwrap();
    let old = ledger.verifier().clone();
    let before = bundle(&store, &ledger, SystemTime::now());
    let old_checkpoint = ledger.signed_checkpoint();

    let rotation = ledger.rotate_key(SystemTime::now()).unwrap();
    let new = ledger.verifier().clone();
    assert_eq!(rotation.old, old);
    assert_eq!(rotation.new, new);
    assert_ne!(old, new);
    assert_eq!(ledger.origin(), old.name(), "the origin stays");
    // The transition checkpoint is the current head under both keys, and is published.
    for key in [&old, &new] {
        let cp = open_checkpoint(&rotation.transition_checkpoint, key).unwrap();
        assert_eq!(cp, ledger.checkpoint());
    }
    let latest = std::fs::read_to_string(dir.path().join("checkpoints").join("latest.txt")).unwrap();
    assert_eq!(latest, rotation.transition_checkpoint);
    // Until the log grows, the signed head is the co-signed one, also after reopening.
    assert_eq!(ledger.signed_checkpoint(), rotation.transition_checkpoint);
    assert_eq!(
        Ledger::open_read_only(dir.path()).unwrap().signed_checkpoint(),
        rotation.transition_checkpoint
    );
    // Later checkpoints: the new key only.
    let b = records("b-", 5);
    store.insert(&b).unwrap();
    ledger.log_stored(&store, &b).unwrap();
    let next = ledger.signed_checkpoint();
    assert!(open_checkpoint(&next, &new).is_ok());
    assert!(open_checkpoint(&next, &old).is_err());
    assert!(
        open_checkpoint(&old_checkpoint, &old).is_ok(),
        "old checkpoints still verify"
    );

    let ring = keyring(dir.path());
    assert_eq!(ring.keys.len(), 2);
    assert_eq!(ring.keys[0].status, KeyStatus::Retired);
    assert_eq!(ring, ledger.keyring().unwrap());

    let after = bundle(&store, &ledger, SystemTime::now() + Duration::from_secs(5));
    let ok = |bytes: &[u8], trusted: &Trusted| verify_bundle_bytes_trusting(bytes, trusted);
    for (what, trusted) in [
        ("old key", Trusted::keys(vec![old.clone()])),
        ("both keys", Trusted::keys(vec![new.clone(), old.clone()])),
        ("keyring", Trusted::keyring(ring.clone())),
    ] {
        let report = ok(&before, &trusted);
        assert!(report.ok, "the earlier bundle with the {what}: {report}");
        assert_eq!(report.measurements_verified, 20);
        assert_eq!(report.key.as_deref(), Some(old.to_string().as_str()));
    }
    for (what, trusted) in [
        ("new key", Trusted::keys(vec![new.clone()])),
        ("both keys", Trusted::keys(vec![old.clone(), new.clone()])),
        ("keyring", Trusted::keyring(ring.clone())),
    ] {
        let report = ok(&after, &trusted);
        assert!(report.ok, "the later bundle with the {what}: {report}");
        assert_eq!(report.measurements_verified, 25);
    }
    assert!(
        !ok(&after, &Trusted::keys(vec![old.clone()])).ok,
        "the retired key vouches for nothing new"
    );
    assert!(!ok(&before, &Trusted::keys(vec![new.clone()])).ok);

    // The keyring's periods count: with the old key's end moved before the bundle was made,
    // the same bundle is refused (a retired key must not vouch for anything later).
    let late = {
        let mut ring = ring.clone();
        ring.keys[0].until = Some("2000-01-01T00:00:00Z".into());
        ok(&before, &Trusted::keyring(ring))
    };
    assert!(!late.ok);
    assert!(
        late.failures.iter().any(|f| f.message.contains("outside the validity")),
        "{late}"
    );
}

#[test]
fn an_interrupted_rotation_reopens_with_one_key_pair() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("cw.db")).unwrap();
    let (ledger, _) = Ledger::open_for(dir.path(), &store).unwrap();
    let old = ledger.verifier().clone();
    drop(ledger);
    // A crash after the new key was written, before the keyring named it: a stray next key.
    let keys_dir = dir.path().join("keys");
    std::fs::write(keys_dir.join(NEXT_SIGNER_FILE), "PRIVATE+KEY+garbage\n").unwrap();
    let (ledger, _) = Ledger::open_for(dir.path(), &store).unwrap();
    assert_eq!(ledger.verifier(), &old);
    assert!(!keys_dir.join(NEXT_SIGNER_FILE).exists());
    assert_eq!(keyring(dir.path()).current().key, old.to_string());
}

#[test]
fn a_redacted_measurement_keeps_its_leaf_and_earlier_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("cw.db")).unwrap();
    let (mut ledger, _) = Ledger::open_for(dir.path(), &store).unwrap();
    let a = records("a-", 10);
    store.insert(&a).unwrap();
    ledger.log_stored(&store, &a).unwrap();
    let before = bundle(&store, &ledger, SystemTime::now());
    let size = ledger.log().size();
    let root = ledger.log().root();
    let gone = &a[3];
    let index = store.leaf_index(&gone.id).unwrap().unwrap();
    let r = store.redact(&gone.id, "court order", 1_700_000_000).unwrap().unwrap();
    assert_eq!(r.leaf_index, Some(index));
    // The log is untouched; the store and log still reconcile without appending anything.
    drop(ledger);
    let (ledger, reconciled) = Ledger::open_for(dir.path(), &store).unwrap();
    assert_eq!(reconciled, Default::default());
    assert_eq!((ledger.log().size(), ledger.log().root()), (size, root));
    assert!(ledger.prove(&store, &gone.id).unwrap().is_none());
    // The earlier bundle still verifies; a new one leaves the measurement out.
    let key = Trusted::keys(vec![ledger.verifier().clone()]);
    let report = verify_bundle_bytes_trusting(&before, &key);
    assert!(report.ok && report.measurements_verified == 10, "{report}");
    let after = bundle(&store, &ledger, SystemTime::now());
    let report = verify_bundle_bytes_trusting(&after, &key);
    assert!(report.ok && report.measurements_verified == 9, "{report}");
    // Re-storing it stores nothing and logs nothing.
    let mut ledger = ledger;
    store.insert(std::slice::from_ref(gone)).unwrap();
    assert_eq!(
        ledger.log_stored(&store, std::slice::from_ref(gone)).unwrap().appended,
        0
    );
    assert_eq!(ledger.log().size(), size);
}
