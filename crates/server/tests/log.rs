//! The transparency log endpoints of a real server with a data directory: every acknowledged
//! submission is in the log; `GET /api/v1/log/proof/{id}` returns an inclusion proof that
//! verifies against the signed checkpoint it comes with (checked with the key from the data
//! directory, as a client holding the published key would); the checkpoint endpoint serves the
//! same head; a query's evidence bundle downloads and verifies offline; a checkpoint file is
//! written at start and at shutdown; unknown ids are 404; a
//! server without a data directory says it keeps no log.

mod common;

use censorwatch_evidence::bundle::LeafProof;
use censorwatch_evidence::merkle::verify_inclusion;
use censorwatch_evidence::{MeasurementLeaf, VerifierKey, open_checkpoint, verdict_bytes};
use censorwatch_server::ServerConfig;
use common::{TestServer, probe_fixture, submission};

#[tokio::test]
async fn every_submission_is_logged_and_proved() {
    let data = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        data_dir: Some(data.path().to_path_buf()),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    // `serve` opens the log before it answers; the first checkpoint file says it has.
    for _ in 0..500 {
        if data.path().join("checkpoints/latest.txt").exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let key_text = std::fs::read_to_string(data.path().join("keys/verifier.key")).unwrap();
    let key = VerifierKey::parse(&key_text).unwrap();
    let first = std::fs::read_to_string(data.path().join("checkpoints/latest.txt")).unwrap();
    assert_eq!(open_checkpoint(&first, &key).unwrap().size, 0, "a checkpoint at start");

    let mut uids = Vec::new();
    for i in [0usize, 3, 7, 11, 20] {
        let r = server
            .post_json("/api/v1/submit_measurement", &submission(&probe_fixture(i)))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        uids.push(r.json()["measurement_uid"].as_str().unwrap().to_owned());
    }
    // Logging follows the commit (after the answer): wait for it.
    let mut size = 0;
    for _ in 0..200 {
        let cp = server.get("/api/v1/log/checkpoint").await;
        assert_eq!(cp.status, 200);
        assert!(cp.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
        size = open_checkpoint(&cp.text(), &key).unwrap().size;
        if size == uids.len() as u64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(size, uids.len() as u64);

    for uid in &uids {
        let r = server.get(&format!("/api/v1/log/proof/{uid}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        let checkpoint = open_checkpoint(body["checkpoint"].as_str().unwrap(), &key).unwrap();
        let proof: LeafProof = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(proof.tree_size, checkpoint.size);
        let (leaf, leaf_hash, path) = proof.decode().unwrap();
        assert_eq!(leaf.hash(), leaf_hash);
        verify_inclusion(proof.leaf_index, checkpoint.size, &leaf_hash, &path, &checkpoint.root).unwrap();
        // The leaf commits to exactly what the store returns.
        let stored = server.store.get(uid).unwrap().unwrap();
        let expected = MeasurementLeaf::new(uid, &stored.raw, &verdict_bytes(&stored.verdict)).unwrap();
        assert_eq!(leaf, expected);
        assert_eq!(server.store.leaf_index(uid).unwrap(), Some(proof.leaf_index));
    }
    let r = server.get("/api/v1/log/proof/no-such-measurement").await;
    assert_eq!(r.status, 404);
    assert!(r.client_error().contains("no logged measurement"), "{}", r.text());

    // A query's evidence bundle, downloaded as a client would, verifies offline with the published
    // key and holds every logged measurement of that country.
    let cc = server.store.get(&uids[0]).unwrap().unwrap().meta.probe_cc;
    let same_cc = uids
        .iter()
        .filter(|uid| server.store.get(uid).unwrap().unwrap().meta.probe_cc == cc)
        .count();
    let r = server.get(&format!("/api/v1/evidence?cc={cc}&since=2000-01-01")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/gzip");
    assert!(
        r.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&format!("evidence-{cc}.tar.gz")),
        "{:?}",
        r.headers
    );
    let report = censorwatch_evidence::bundle::verify_bundle_bytes(&r.body, Some(&key));
    assert!(report.ok, "{:?}", report.failures);
    assert_eq!(report.measurements_verified, same_cc as u64);
    // Changing one byte of the download is caught.
    let mut tampered = r.body.to_vec();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    assert!(!censorwatch_evidence::bundle::verify_bundle_bytes(&tampered, Some(&key)).ok);
    for (path, status) in [
        ("/api/v1/evidence?since=2000-01-01", 400),
        ("/api/v1/evidence?cc=PAK", 400),
        ("/api/v1/evidence?cc=ZZ", 404),
        ("/api/v1/events/no-such-event/evidence", 404),
    ] {
        let r = server.get(path).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
    }

    server.stop().await;
    let last = std::fs::read_to_string(data.path().join("checkpoints/latest.txt")).unwrap();
    assert_eq!(
        open_checkpoint(&last, &key).unwrap().size,
        uids.len() as u64,
        "a checkpoint at shutdown"
    );
    let days: Vec<_> = std::fs::read_dir(data.path().join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == "YYYY-MM-DD.txt".len() && n.ends_with(".txt"))
        .collect();
    assert_eq!(days.len(), 1, "{days:?}");
}

#[tokio::test]
async fn a_server_without_a_data_directory_keeps_no_log() {
    let server = TestServer::default().await;
    for path in [
        "/api/v1/log/checkpoint",
        "/api/v1/log/proof/x",
        "/api/v1/evidence?cc=PK",
    ] {
        let r = server.get(path).await;
        assert_eq!(r.status, 404);
        assert!(r.client_error().contains("keeps no transparency log"), "{}", r.text());
    }
}
