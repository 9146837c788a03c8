//! Removing a measurement and rotating the signing key, over HTTP against a real server with a
//! data directory (SQLite store, transparency log, keys):
//!
//! - the admin endpoints refuse a missing or wrong token (401) and answer 403 on a server
//!   without one; a bad reason is 400, an unknown id 404;
//! - a removal answers the redaction record, the same on every repeat; the measurement then
//!   answers 410 (API, proof and dashboard page), is gone from queries, aggregation and new
//!   bundles, is listed in `/api/v1/redactions` (JSON and CSV), and a resubmission of it is
//!   refused with 410 (single and batch) without storing anything; the log keeps its leaf, so a
//!   bundle downloaded before still verifies;
//! - a key rotation co-signs the transition checkpoint, `/api/v1/keys` lists both keys, a bundle
//!   downloaded before the rotation verifies with the old key and with the published keyring, one
//!   downloaded after with the new key (not with the old one alone), and the keys on disk are the
//!   new pair with the signer key private.

mod common;

use bytes::Bytes;
use censorwatch_evidence::bundle::{verify_bundle_bytes, verify_bundle_bytes_trusting};
use censorwatch_evidence::checkpoint::open_checkpoint;
use censorwatch_evidence::{Keyring, Trusted, VerifierKey};
use censorwatch_server::ServerConfig;
use common::{Response, TestServer, probe_fixture, submission};
use http_body_util::Full;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "admin-test-token-0123456789abcdef";

async fn request(addr: std::net::SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> Response {
    let authorization = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("authorization", a.as_str())).collect();
    common::send_with_headers(addr, method, path, &headers, Full::new(Bytes::from(body.to_owned()))).await
}

async fn start(data: &Path, token: Option<&str>) -> TestServer {
    let server = TestServer::start(ServerConfig {
        data_dir: Some(data.to_path_buf()),
        admin_token: token.map(str::to_owned),
        ..ServerConfig::default()
    })
    .await;
    // `serve` opens the log before it answers; the first checkpoint file says it has.
    for _ in 0..500 {
        if data.join("checkpoints/latest.txt").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server
}

fn published_key(data: &Path) -> VerifierKey {
    VerifierKey::parse(&std::fs::read_to_string(data.join("keys/verifier.key")).unwrap()).unwrap()
}

/// Submits fixtures and waits until the log holds them; returns their uids.
async fn submit_logged(server: &TestServer, fixtures: &[usize], key: &VerifierKey) -> Vec<String> {
    let cp = server.get("/api/v1/log/checkpoint").await;
    let start = open_checkpoint(&cp.text(), key).unwrap().size;
    let mut uids = Vec::new();
    for &i in fixtures {
        let r = server
            .post_json("/api/v1/submit_measurement", &submission(&probe_fixture(i)))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        uids.push(r.json()["measurement_uid"].as_str().unwrap().to_owned());
    }
    for _ in 0..500 {
        let cp = server.get("/api/v1/log/checkpoint").await;
        if open_checkpoint(&cp.text(), key).unwrap().size >= start + uids.len() as u64 {
            return uids;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the log never held the submissions");
}

#[tokio::test]
async fn a_removed_measurement_is_gone_everywhere_but_its_leaf() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), Some(TOKEN)).await;
    let key = published_key(data.path());
    let uids = submit_logged(&server, &[0, 3, 7, 11, 20], &key).await;
    let target = uids[0].clone();
    let cc = server.store.get(&target).unwrap().unwrap().meta.probe_cc;
    let same_cc = uids
        .iter()
        .filter(|uid| server.store.get(uid).unwrap().unwrap().meta.probe_cc == cc)
        .count() as u64;
    let bundle_before = server.get(&format!("/api/v1/evidence?cc={cc}&since=2000-01-01")).await;
    assert_eq!(bundle_before.status, 200, "{}", bundle_before.text());
    let size_before = open_checkpoint(&server.get("/api/v1/log/checkpoint").await.text(), &key)
        .unwrap()
        .size;
    let aggregated = |r: &Response| -> u64 {
        r.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["measurements"].as_u64().unwrap())
            .sum()
    };
    let agg_before = aggregated(&server.get(&format!("/api/v1/aggregation?cc={cc}")).await);
    let path = format!("/api/v1/admin/measurements/{target}");
    let body = r#"{"reason": "it shows the probe owner's home network name"}"#;

    // The rules of admission.
    let r = request(server.addr, "DELETE", &path, None, body).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = request(server.addr, "DELETE", &path, Some("wrong-token-0123456789abcdef"), body).await;
    assert_eq!(r.status, 401);
    for bad in [
        "",
        "{}",
        r#"{"reason": ""}"#,
        r#"{"reason": "  "}"#,
        r#"{"reason": 5}"#,
        r#"{"reason": "x", "more": 1}"#,
    ] {
        let r = request(server.addr, "DELETE", &path, Some(TOKEN), bad).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
        assert!(r.client_error().contains("reason"), "{}", r.text());
    }
    let long = serde_json::json!({ "reason": "x".repeat(1001) }).to_string();
    assert_eq!(
        request(server.addr, "DELETE", &path, Some(TOKEN), &long).await.status,
        400
    );
    let r = request(
        server.addr,
        "DELETE",
        "/api/v1/admin/measurements/no-such-id",
        Some(TOKEN),
        body,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(server.count(), uids.len() as u64, "nothing removed so far");

    // The removal, and its repeat.
    let r = request(server.addr, "DELETE", &path, Some(TOKEN), body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let record = r.json();
    assert_eq!(record["id"], target.as_str());
    assert_eq!(record["reason"], "it shows the probe owner's home network name");
    assert!(record["leaf_index"].as_u64().unwrap() < size_before);
    assert!(record["time"].as_str().unwrap().ends_with('Z'));
    let again = request(server.addr, "DELETE", &path, Some(TOKEN), r#"{"reason": "another"}"#).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), record, "idempotent: the first record stands");

    // Gone: 410 with the record, on the API, the proof and the page.
    let r = server.get(&format!("/api/v1/measurements/{target}")).await;
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(r.json()["redaction"], record);
    assert!(r.json()["error"].as_str().unwrap().contains("removed"));
    assert_eq!(server.get(&format!("/api/v1/log/proof/{target}")).await.status, 410);
    let page = server.get(&format!("/measurement/{target}")).await;
    assert_eq!(page.status, 410);
    let html = page.text();
    assert!(
        html.contains("Measurement removed") && html.contains("home network name"),
        "{html}"
    );
    assert!(!html.contains("\"test_keys\""), "no content on the page");
    // Not in queries, aggregation or the store.
    let listed = server.get("/api/v1/measurements?limit=100").await.json();
    let ids: Vec<&str> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), uids.len() - 1);
    assert!(!ids.contains(&target.as_str()));
    assert_eq!(server.count(), uids.len() as u64 - 1);
    let agg_after = aggregated(&server.get(&format!("/api/v1/aggregation?cc={cc}")).await);
    assert_eq!(agg_after, agg_before - 1);
    // Listed publicly.
    let list = server.get("/api/v1/redactions").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["results"], serde_json::json!([record]));
    assert_eq!(list.json()["next"], serde_json::Value::Null);
    let csv = server.get("/api/v1/redactions?format=csv").await;
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(csv.body.as_ref());
    assert_eq!(reader.headers().unwrap(), vec!["id", "leaf_index", "reason", "time"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], target.as_str());
    assert_eq!(server.get("/api/v1/redactions?limit=0").await.status, 400);
    assert_eq!(server.get("/api/v1/redactions?cursor=nonsense!").await.status, 400);

    // Submitted again: refused, nothing stored, nothing logged.
    let r = server
        .post_json("/api/v1/submit_measurement", &submission(&probe_fixture(0)))
        .await;
    assert_eq!(r.status, 410, "{}", r.text());
    assert!(r.client_error().contains("removed"));
    let mut original = common::fixture(0);
    original["measurement_uid"] = serde_json::json!(target);
    let batch = format!("{original}\n{}\n", common::fixture(3));
    let r = server.post("/api/v1/measurements", batch).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        answer["results"][0]["error"].as_str().unwrap().contains("removed"),
        "{answer}"
    );
    assert_eq!(server.count(), uids.len() as u64 - 1);
    assert_eq!(server.get(&format!("/api/v1/measurements/{target}")).await.status, 410);

    // The log keeps every leaf: the earlier bundle still verifies; a new one leaves it out.
    let size_after = open_checkpoint(&server.get("/api/v1/log/checkpoint").await.text(), &key)
        .unwrap()
        .size;
    assert_eq!(size_after, size_before);
    let report = verify_bundle_bytes(&bundle_before.body, Some(&key));
    assert!(report.ok, "{report}");
    assert_eq!(report.measurements_verified, same_cc);
    let bundle_after = server.get(&format!("/api/v1/evidence?cc={cc}&since=2000-01-01")).await;
    if same_cc > 1 {
        let report = verify_bundle_bytes(&bundle_after.body, Some(&key));
        assert!(report.ok, "{report}");
        assert_eq!(report.measurements_verified, same_cc - 1);
    } else {
        assert_eq!(bundle_after.status, 404, "nothing left to bundle");
    }
    let store = std::sync::Arc::clone(&server.store);
    server.stop().await;

    // A restart over the same store: the removal holds, and the resubmission is still refused
    // (the collector reloads the removed ids).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        data_dir: Some(data.path().to_path_buf()),
        ..ServerConfig::default()
    };
    let task = tokio::spawn(censorwatch_server::serve(listener, store, config, async move {
        let _ = stopped.await;
    }));
    let mut r = request(addr, "GET", &format!("/api/v1/measurements/{target}"), None, "").await;
    for _ in 0..100 {
        if r.status == 410 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        r = request(addr, "GET", &format!("/api/v1/measurements/{target}"), None, "").await;
    }
    assert_eq!(r.status, 410);
    let body = submission(&probe_fixture(0)).to_string();
    let r = request(addr, "POST", "/api/v1/submit_measurement", None, &body).await;
    assert_eq!(r.status, 410, "{}", r.text());
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn admin_endpoints_are_disabled_without_a_token() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), None).await;
    for (method, path) in [
        ("DELETE", "/api/v1/admin/measurements/x"),
        ("POST", "/api/v1/admin/keys/rotate"),
    ] {
        let r = request(server.addr, method, path, Some(TOKEN), r#"{"reason": "x"}"#).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
    }
    // The public side answers.
    assert_eq!(server.get("/api/v1/keys").await.status, 200);
    assert_eq!(
        server.get("/api/v1/redactions").await.json()["results"],
        serde_json::json!([])
    );
    server.stop().await;
    // Without a data directory there is no key to rotate or list.
    let server = TestServer::start(ServerConfig {
        admin_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    })
    .await;
    let r = request(server.addr, "POST", "/api/v1/admin/keys/rotate", Some(TOKEN), "").await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(server.get("/api/v1/keys").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_key_rotation_keeps_earlier_bundles_verifiable() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), Some(TOKEN)).await;
    let old = published_key(data.path());
    let uids = submit_logged(&server, &[0, 3, 7], &old).await;
    let cc = server.store.get(&uids[0]).unwrap().unwrap().meta.probe_cc;
    let query = format!("/api/v1/evidence?cc={cc}&since=2000-01-01");
    let before = server.get(&query).await;
    assert_eq!(before.status, 200);
    let ring: Keyring = Keyring::parse(&server.get("/api/v1/keys").await.text()).unwrap();
    assert_eq!(ring.keys.len(), 1);
    assert_eq!(ring.current().key, old.to_string());

    let r = request(server.addr, "POST", "/api/v1/admin/keys/rotate", None, "").await;
    assert_eq!(r.status, 401);
    let r = request(server.addr, "POST", "/api/v1/admin/keys/rotate", Some(TOKEN), "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rotation = r.json();
    assert_eq!(rotation["old"], old.to_string());
    let new = VerifierKey::parse(rotation["new"].as_str().unwrap()).unwrap();
    assert_ne!(new, old);
    assert_eq!(new.name(), old.name(), "the origin stays");
    // The transition checkpoint carries both signatures; the next one the new key's only.
    let transition = rotation["transition_checkpoint"].as_str().unwrap();
    for key in [&old, &new] {
        assert!(open_checkpoint(transition, key).is_ok());
    }
    let statement = rotation["statement"].as_str().unwrap();
    let st = censorwatch_evidence::keyring::verify_rotation(statement, Some(&old)).unwrap();
    assert_eq!(st.new, new);
    // Until the log grows, the served head is the co-signed transition checkpoint.
    assert_eq!(server.get("/api/v1/log/checkpoint").await.text(), transition);
    // The published keyring and the files on disk.
    let ring = Keyring::parse(&server.get("/api/v1/keys").await.text()).unwrap();
    assert_eq!(ring.verifier_keys(), vec![old.clone(), new.clone()]);
    assert_eq!(ring.keys[0].until.as_deref(), rotation["time"].as_str());
    assert_eq!(published_key(data.path()), new);
    let mode = std::fs::metadata(data.path().join("keys/signer.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Bundles: the earlier one under the old key (alone, or via the keyring); the later one
    // under the new key, never the old one alone.
    let after = server.get(&query).await;
    assert_eq!(after.status, 200);
    for (what, trusted) in [
        ("old key", Trusted::keys(vec![old.clone()])),
        ("both keys", Trusted::keys(vec![new.clone(), old.clone()])),
        ("keyring", Trusted::keyring(ring.clone())),
    ] {
        let report = verify_bundle_bytes_trusting(&before.body, &trusted);
        assert!(report.ok, "before, {what}: {report}");
    }
    for (what, trusted) in [
        ("new key", Trusted::keys(vec![new.clone()])),
        ("keyring", Trusted::keyring(ring.clone())),
    ] {
        let report = verify_bundle_bytes_trusting(&after.body, &trusted);
        assert!(report.ok, "after, {what}: {report}");
    }
    assert!(!verify_bundle_bytes_trusting(&after.body, &Trusted::keys(vec![old.clone()])).ok);
    // New submissions go on under the new key alone, and survive a restart with it.
    let more = submit_logged(&server, &[11], &new).await;
    assert_eq!(more.len(), 1);
    let current = server.get("/api/v1/log/checkpoint").await.text();
    assert!(open_checkpoint(&current, &new).is_ok());
    assert!(open_checkpoint(&current, &old).is_err());
    server.stop().await;
    let server = start(data.path(), Some(TOKEN)).await;
    assert_eq!(published_key(data.path()), new);
    assert!(open_checkpoint(&server.get("/api/v1/log/checkpoint").await.text(), &new).is_ok());
    server.stop().await;
}
