//! Events as measurements arrive: a block submitted to a running server (real SQLite store,
//! real OONI web_connectivity measurements rewritten into a timeline) shows up in
//! `GET /api/v1/events` once the detection worker has run, and at `/api/v1/events/{id}`.

mod common;

use censorwatch_server::ServerConfig;
use common::TestServer;
use serde_json::Value;
use std::time::{Duration, Instant};

const HOUR: i64 = 3600;

fn fixture_where(pick: impl Fn(&Value) -> bool) -> Value {
    common::fixtures()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|m| pick(m))
        .expect("the fixture is in testdata/ooni")
}

fn ooni_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// www.facebook.com measured from two networks of PK over the last 40 hours, four times an
/// hour: AS17557 blocked (DNS bogon) from hour 20. Returns the JSONL and the block's start.
fn recent_block() -> (String, i64) {
    let now = censorwatch_server::detections::unix_now();
    let t0 = (now - 40 * HOUR) / HOUR * HOUR;
    let blocked = fixture_where(|m| m["input"] == "https://www.facebook.com/");
    let clean = fixture_where(|m| m["input"] == "http://www.collegehumor.com/");
    let mut body = String::new();
    for hour in 0..38 {
        for asn in [17557, 59257] {
            for quarter in 0..4 {
                let t = t0 + hour * HOUR + quarter * 900;
                let is_blocked = asn == 17557 && hour >= 20;
                let mut m = if is_blocked { blocked.clone() } else { clean.clone() };
                m.as_object_mut().unwrap().remove("measurement_uid");
                m["report_id"] = Value::from(format!("20240216T000000Z_webconnectivity_PK_{asn}_n1_test"));
                m["input"] = Value::from("https://www.facebook.com/");
                m["probe_cc"] = Value::from("PK");
                m["probe_asn"] = Value::from(format!("AS{asn}"));
                m["measurement_start_time"] = Value::from(ooni_time(t));
                m["test_start_time"] = Value::from(ooni_time(t));
                body.push_str(&serde_json::to_string(&m).unwrap());
                body.push('\n');
            }
        }
    }
    (body, t0 + 20 * HOUR)
}

#[tokio::test]
async fn submitted_measurements_become_an_event() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig {
        detection_interval: Some(Duration::from_millis(100)),
        data_dir: Some(data.path().to_path_buf()),
        ..ServerConfig::default()
    })
    .await;
    let empty = server.get("/api/v1/events").await;
    assert_eq!(empty.status, 200, "{}", empty.text());
    assert_eq!(empty.json()["results"], serde_json::json!([]));

    let (body, start) = recent_block();
    let submitted = server.post("/api/v1/measurements", body).await;
    assert_eq!(submitted.status, 200, "{}", submitted.text());
    assert_eq!(submitted.json()["accepted"], 38 * 2 * 4, "{}", submitted.text());

    // The worker writes at most every 100 ms; allow a slow machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let r = server.get("/api/v1/events?cc=PK").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let results = r.json()["results"].as_array().unwrap().clone();
        if !results.is_empty() || Instant::now() > deadline {
            break results;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["platform"], "facebook");
    assert_eq!(e["start"], start);
    assert_eq!(e["end"], Value::Null);
    let asns: Vec<u64> = e["asns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["asn"].as_u64().unwrap())
        .collect();
    assert_eq!(asns, [17557], "the clean network is not in it");

    let id = e["id"].as_str().unwrap();
    let one = server.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(&one.json(), e);
    assert_eq!(server.get("/api/v1/events/PK-nothing-1").await.status, 404);

    // The event's evidence bundle: every measurement from a day before its start on (all of
    // them here), each proved in the log, verified offline with the published key. Logging
    // follows the commit, so wait until all are in.
    let key_text = std::fs::read_to_string(data.path().join("keys/verifier.key")).unwrap();
    let key = censorwatch_evidence::VerifierKey::parse(&key_text).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let r = server.get(&format!("/api/v1/events/{id}/evidence")).await;
        if r.status == 404 && Instant::now() < deadline {
            // Nothing logged yet.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        let report = censorwatch_evidence::bundle::verify_bundle_bytes(&r.body, Some(&key));
        if report.measurements_verified == 38 * 2 * 4 || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(report.ok, "{:?}", report.failures);
    assert_eq!(report.measurements_verified, 38 * 2 * 4);
    assert_eq!(server.get("/api/v1/events/PK-nothing-1/evidence").await.status, 404);
    for (query, n) in [
        ("cc=IR", 0),
        ("domain=facebook.com", 1),
        ("domain=x.com", 0),
        ("open=true", 1),
    ] {
        let r = server.get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(r.json()["results"].as_array().unwrap().len(), n, "{query}");
    }
    let csv = server.get("/api/v1/events?format=csv").await;
    assert_eq!(csv.status, 200);
    let text = csv.text();
    assert!(
        text.starts_with("id,platform,domain,cc,asns,method,start,end"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{id},facebook,")) && text.contains("AS17557,dns.bogon"),
        "{text}"
    );
    assert_eq!(server.get("/api/v1/events?limit=0").await.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_writes_the_last_events() {
    // Never due during the test: only the write at shutdown can store the event.
    let server = TestServer::start(ServerConfig {
        detection_interval: Some(Duration::from_secs(3600)),
        ..ServerConfig::default()
    })
    .await;
    let (body, start) = recent_block();
    let submitted = server.post("/api/v1/measurements", body).await;
    assert_eq!(submitted.status, 200, "{}", submitted.text());
    // Not yet written (the worker seeded and wrote when the server started, before this).
    let before = server.get("/api/v1/events").await.json();
    assert_eq!(before["results"], serde_json::json!([]));
    let store = std::sync::Arc::clone(&server.store);
    server.stop().await;
    let stored = store
        .detections(&censorwatch_store::DetectionQuery::all(
            censorwatch_store::DetectionKind::Event,
        ))
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].start, start);
    assert_eq!(stored[0].cc, "PK");
}
