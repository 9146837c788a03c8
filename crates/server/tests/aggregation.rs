//! `GET /api/v1/aggregation` and `GET /api/v1/outages` against a real server over a real SQLite
//! store, seeded directly: exact counts, JSON and CSV agreeing, filters, errors.

mod common;

use censorwatch_detect::{AsnOutage, Cc, Level, Outage, SignalKind};
use censorwatch_model::{Measurement, Method, Status};
use censorwatch_server::ServerConfig;
use censorwatch_store::{Record, Store};
use common::{TestServer, fixtures};
use serde_json::json;

/// 2024-02-17 00:00 UTC.
const T0: i64 = 1_708_128_000;

/// A record from the first fixture with the given metadata and verdict.
fn record(id: &str, cc: &str, asn: u32, domain: &str, time: i64, status: Status) -> Record {
    let line = fixtures()[0].clone();
    let m = Measurement::from_slice(line.as_bytes()).unwrap();
    let verdict = censorwatch_verdict::Analyzer::with_builtin_fingerprints()
        .verdict(&m)
        .unwrap();
    let mut r = Record::new(line.as_bytes(), &m, verdict);
    r.id = id.into();
    r.meta.probe_cc = cc.into();
    r.meta.probe_asn = asn;
    r.meta.domain = Some(domain.into());
    r.meta.start_time = time;
    r.verdict.status = status;
    r.verdict.method = (status == Status::Blocked).then_some(Method::TlsReset);
    r
}

fn config() -> ServerConfig {
    ServerConfig {
        // Nothing recomputes (and so removes) the outage the test stores by hand.
        detection_interval: None,
        ..ServerConfig::default()
    }
}

fn seed(store: &dyn Store) {
    let h = 3600;
    store
        .insert(&[
            record("a1", "PK", 1, "x.com", T0 + 60, Status::Ok),
            record("a2", "PK", 1, "x.com", T0 + 120, Status::Ok),
            record("a3", "PK", 1, "twitter.com", T0 + h + 5, Status::Blocked),
            record("b1", "PK", 2, "x.com", T0 + 10, Status::Blocked),
            record("b2", "PK", 2, "x.com", T0 + 20, Status::Down),
            record("c1", "PK", 2, "youtube.com", T0 + 30, Status::Ok),
            record("d1", "IR", 1, "x.com", T0 + 40, Status::Blocked),
        ])
        .unwrap();
}

#[tokio::test]
async fn aggregation_counts_by_time_and_network_in_json_and_csv() {
    let server = TestServer::start(config()).await;
    seed(server.store.as_ref());
    let r = server
        .get("/api/v1/aggregation?cc=PK&domain=x.com,twitter.com&axis=time,asn&bin=1h")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let counts = |ok: u64, blocked: u64, down: u64| json!({"measurements": ok + blocked + down, "ok": ok, "blocked": blocked, "down": down, "inconclusive": 0});
    let row = |time: &str, asn: u32, c: serde_json::Value| {
        let mut v = json!({"time": time, "probe_asn": asn});
        v.as_object_mut().unwrap().extend(c.as_object().unwrap().clone());
        v
    };
    assert_eq!(
        r.json(),
        json!({"results": [
            row("2024-02-17T00:00:00Z", 1, counts(2, 0, 0)),
            row("2024-02-17T00:00:00Z", 2, counts(0, 1, 1)),
            row("2024-02-17T01:00:00Z", 1, counts(0, 1, 0)),
        ]})
    );
    let csv = server
        .get("/api/v1/aggregation?cc=PK&domain=x.com,twitter.com&axis=time,asn&bin=1h&format=csv")
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(csv.body.as_ref());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "time",
            "probe_asn",
            "measurements",
            "ok",
            "blocked",
            "down",
            "inconclusive"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1], ["2024-02-17T00:00:00Z", "2", "2", "0", "1", "1", "0"]);

    // No axis: one total; a day bin; by status; by domain with a window.
    let total = server.get("/api/v1/aggregation").await.json();
    assert_eq!(total["results"][0]["measurements"], 7);
    let daily = server.get("/api/v1/aggregation?cc=PK&axis=time&bin=1d").await.json();
    assert_eq!(
        daily["results"],
        json!([{"time": "2024-02-17T00:00:00Z", "measurements": 6, "ok": 3, "blocked": 2, "down": 1, "inconclusive": 0}])
    );
    let by_domain = server
        .get("/api/v1/aggregation?asn=AS2&axis=domain,status&until=2024-02-17T00:00:25Z")
        .await
        .json();
    assert_eq!(
        by_domain["results"],
        json!([
            {"domain": "x.com", "status": "blocked", "measurements": 1, "ok": 0, "blocked": 1, "down": 0, "inconclusive": 0},
            {"domain": "x.com", "status": "down", "measurements": 1, "ok": 0, "blocked": 0, "down": 1, "inconclusive": 0},
        ])
    );
    for bad in [
        "/api/v1/aggregation?axis=time,asn,method",
        "/api/v1/aggregation?axis=isp",
        "/api/v1/aggregation?axis=time&bin=1m",
        "/api/v1/aggregation?since=2024-02-18&until=2024-02-17",
        "/api/v1/aggregation?cc=PK&cc=IR",
        "/api/v1/aggregation?probe_ip=1.2.3.4",
    ] {
        let r = server.get(bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        r.client_error();
    }
    server.stop().await;
}

fn outage(id: &str, cc: &str, asns: &[u32], start: i64, end: Option<i64>) -> Outage {
    Outage {
        id: id.into(),
        cc: Cc::new(cc).unwrap(),
        start,
        end,
        level: Level::Critical,
        signals: vec![SignalKind::ProbeVolume],
        country_wide: asns.len() > 1,
        asns: asns
            .iter()
            .map(|&asn| AsnOutage {
                asn,
                start,
                end,
                level: Level::Critical,
                signals: vec![SignalKind::ProbeVolume],
            })
            .collect(),
        alerts: Vec::new(),
    }
}

#[tokio::test]
async fn outages_are_listed_filtered_and_downloadable_as_csv() {
    let server = TestServer::start(config()).await;
    // 8 Feb 2024, election day: a mobile shutdown in PK (closed) and an open one elsewhere.
    let election = 1_707_350_400;
    let stored: Vec<_> = [
        outage(
            "PK-outage-1707350400",
            "PK",
            &[59257, 45595],
            election,
            Some(election + 20 * 3600),
        ),
        outage("IR-outage-1708128000", "IR", &[58224], T0, None),
    ]
    .iter()
    .map(|o| censorwatch_server::detections::stored_outage(o, T0).unwrap())
    .collect();
    server.store.put_detections(&stored, &[]).unwrap();

    let all = server.get("/api/v1/outages").await.json();
    let ids: Vec<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["IR-outage-1708128000", "PK-outage-1707350400"], "latest first");
    let ids_of = |v: serde_json::Value| -> Vec<String> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids_of(server.get("/api/v1/outages?cc=pk").await.json()),
        ["PK-outage-1707350400"]
    );
    assert_eq!(
        ids_of(server.get("/api/v1/outages?asn=AS45595").await.json()),
        ["PK-outage-1707350400"]
    );
    assert_eq!(
        ids_of(server.get("/api/v1/outages?open=true").await.json()),
        ["IR-outage-1708128000"]
    );
    assert_eq!(
        ids_of(server.get("/api/v1/outages?until=2024-02-10").await.json()),
        ["PK-outage-1707350400"]
    );
    assert_eq!(
        ids_of(server.get("/api/v1/outages?since=2024-02-10").await.json()),
        ["IR-outage-1708128000"]
    );
    assert!(ids_of(server.get("/api/v1/outages?asn=1").await.json()).is_empty());
    let body = server.get("/api/v1/outages?cc=PK&format=csv").await;
    let mut reader = csv::Reader::from_reader(body.body.as_ref());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], "PK-outage-1707350400");
    assert_eq!(&rows[0][2], "AS59257 AS45595");
    assert_eq!(&rows[0][3], "2024-02-08T00:00:00Z");
    assert_eq!(&rows[0][4], "2024-02-08T20:00:00Z");
    assert_eq!(server.get("/api/v1/outages?domain=x.com").await.status, 400);
    server.stop().await;
}
