//! Alerts end to end on loopback: a block submitted to a running server becomes an event; a
//! webhook added with the admin token receives `event.opened`, signed, after two 500s (retried
//! with backoff, same delivery id), and the durable outbox is empty once it succeeded; a
//! receiver verifying signatures refuses a forged and a replayed request; the Atom feed parses
//! as Atom with its required elements and permanent entry ids. An outage (a mobile shutdown)
//! reaches its country's subscriber as `outage.opened`, `outage.changed` and `outage.closed`
//! (signed, retried), a network's subscriber from when its network is hit, and neither an
//! events-only nor another country's subscriber; it is in the country's and the network's Atom
//! feeds. A deadline watch on seeded data reports "restored on 3 of 5 networks"; admin endpoints
//! refuse a missing or wrong token (401) and are disabled without a configured one (403).

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use censorwatch_detect::{AsnOutage, Cc, Level, Outage, SignalKind};
use censorwatch_model::{Measurement, Method, Status};
use censorwatch_server::ServerConfig;
use censorwatch_server::alerts::webhook;
use censorwatch_store::Record;
use common::{TestServer, fixtures, send};
use http_body_util::Full;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "test-admin-token-0123456789";
const SECRET: &str = "receiver-secret-0123456789";
const HOUR: i64 = 3600;

/// What the receiver saw: (delivery id, type, signature verified, status answered), and each
/// body.
#[derive(Default)]
struct Receiver {
    seen: Mutex<Vec<(String, String, bool, u16)>>,
    bodies: Mutex<Vec<Value>>,
    fail_first: usize,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let now = censorwatch_server::detections::unix_now();
    let verified = webhook::verify(
        SECRET.as_bytes(),
        &h("x-censorwatch-timestamp"),
        &h("x-censorwatch-signature"),
        &body,
        now,
    )
    .is_ok();
    let parsed = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let kind = parsed["type"].as_str().unwrap_or_default().to_owned();
    let header_agrees = h("x-censorwatch-event") == kind;
    r.bodies.lock().unwrap().push(parsed);
    let mut seen = r.seen.lock().unwrap();
    let status = if !verified {
        StatusCode::UNAUTHORIZED
    } else if !header_agrees {
        StatusCode::BAD_REQUEST
    } else if seen.len() < r.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    seen.push((h("x-censorwatch-delivery"), kind, verified, status.as_u16()));
    status
}

async fn start_receiver(fail_first: usize) -> (std::net::SocketAddr, Arc<Receiver>) {
    let state = Arc::new(Receiver {
        fail_first,
        ..Receiver::default()
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

/// A request with headers (the common client sets none but Host and Content-Type).
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> common::Response {
    common::send_with_headers(addr, method, path, headers, Full::new(Bytes::from(body.to_owned()))).await
}

fn fixture_where(pick: impl Fn(&Value) -> bool) -> Value {
    fixtures()
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

/// www.facebook.com from two PK networks over the last 40 hours, AS17557 blocked from hour 20.
fn recent_block() -> String {
    let now = censorwatch_server::detections::unix_now();
    let t0 = (now - 40 * HOUR) / HOUR * HOUR;
    let blocked = fixture_where(|m| m["input"] == "https://www.facebook.com/");
    let clean = fixture_where(|m| m["input"] == "http://www.collegehumor.com/");
    let mut body = String::new();
    for hour in 0..38 {
        for asn in [17557, 59257] {
            for quarter in 0..4 {
                let t = t0 + hour * HOUR + quarter * 900;
                let mut m = if asn == 17557 && hour >= 20 {
                    blocked.clone()
                } else {
                    clean.clone()
                };
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
    body
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_block_is_announced_by_a_signed_retried_webhook_and_in_the_atom_feed() {
    let (receiver_addr, receiver) = start_receiver(2).await;
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig {
        detection_interval: Some(Duration::from_millis(100)),
        alert_interval: Duration::from_millis(100),
        webhook_retry_base: Duration::from_millis(100),
        data_dir: Some(data.path().to_path_buf()),
        admin_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    })
    .await;
    let hook = json!({"url": format!("http://{receiver_addr}/hook"), "secret": SECRET, "cc": "pk", "platform": "facebook.com"});
    let auth = format!("Bearer {TOKEN}");
    // Without the token, or with a wrong one: 401, nothing added.
    let r = request(server.addr, "POST", "/api/v1/admin/webhooks", &[], &hook.to_string()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = request(
        server.addr,
        "POST",
        "/api/v1/admin/webhooks",
        &[("authorization", "Bearer wrong-token-0123456789")],
        &hook.to_string(),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = request(
        server.addr,
        "POST",
        "/api/v1/admin/webhooks",
        &[("authorization", &auth)],
        &hook.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(
        (created["cc"].as_str(), created["platform"].as_str()),
        (Some("PK"), Some("facebook"))
    );
    assert!(created.get("secret").is_none(), "secrets are never shown");
    let listed = request(
        server.addr,
        "GET",
        "/api/v1/admin/webhooks",
        &[("authorization", &auth)],
        "",
    )
    .await
    .json();
    assert_eq!(listed["results"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(SECRET));

    // The first event check records the (empty) state before anything is submitted.
    let seen = data.path().join("alerts/seen.json");
    wait_for("the first event check", || seen.exists()).await;
    let submitted = server.post("/api/v1/measurements", recent_block()).await;
    assert_eq!(submitted.status, 200, "{}", submitted.text());

    // Two 500s, then 200: three attempts of one delivery, each signed.
    wait_for("three attempts", || receiver.seen.lock().unwrap().len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts = receiver.seen.lock().unwrap().clone();
    assert_eq!(attempts.len(), 3, "no attempt after the success: {attempts:?}");
    assert!(
        attempts.iter().all(|a| a.0 == attempts[0].0 && a.0.starts_with("dl-")),
        "{attempts:?}"
    );
    assert!(attempts.iter().all(|a| a.1 == "event.opened" && a.2), "{attempts:?}");
    assert_eq!(attempts.iter().map(|a| a.3).collect::<Vec<_>>(), [500, 500, 200]);
    let outbox = data.path().join("alerts/outbox");
    let left = std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "the delivered one is removed from the durable outbox");

    // A forged request (body changed, or signed with another secret) and a replay are refused.
    let body = r#"{"type":"event.closed","delivery":"dl-forged","event":{}}"#;
    let now = censorwatch_server::detections::unix_now();
    let forged = webhook::sign(b"not-the-secret-0123456789", now, body.as_bytes());
    let ts = now.to_string();
    let r = request(
        receiver_addr,
        "POST",
        "/hook",
        &[("x-censorwatch-timestamp", &ts), ("x-censorwatch-signature", &forged)],
        body,
    )
    .await;
    assert_eq!(r.status, 401, "forged signature");
    let genuine = webhook::sign(SECRET.as_bytes(), now, b"{}");
    let r = request(
        receiver_addr,
        "POST",
        "/hook",
        &[("x-censorwatch-timestamp", &ts), ("x-censorwatch-signature", &genuine)],
        body,
    )
    .await;
    assert_eq!(r.status, 401, "a signature over another body");
    let old = now - 3600;
    let replay = webhook::sign(SECRET.as_bytes(), old, body.as_bytes());
    let r = request(
        receiver_addr,
        "POST",
        "/hook",
        &[
            ("x-censorwatch-timestamp", &old.to_string()),
            ("x-censorwatch-signature", &replay),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 401, "a replay with an old timestamp");

    // The Atom feed.
    let feed = server
        .get("/api/v1/feeds/events.atom?cc=PK&platform=facebook.com")
        .await;
    assert_eq!(feed.status, 200, "{}", feed.text());
    assert!(
        feed.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    let text = feed.text();
    let ids = check_atom(&text, 1, "/event/PK-facebook-");
    assert!(
        ids[0].starts_with("tag:censorwatch.org,2024:event:PK-facebook-") && ids[0].ends_with(":opened"),
        "{ids:?}"
    );
    let again = check_atom(
        &server
            .get("/api/v1/feeds/events.atom?cc=PK&platform=facebook.com")
            .await
            .text(),
        1,
        "/event/PK-facebook-",
    );
    assert_eq!(ids, again, "entry ids are permanent");
    check_atom(&server.get("/api/v1/feeds/events.atom?cc=IR").await.text(), 0, "");
    assert_eq!(server.get("/api/v1/feeds/events.atom?cc=Pakistan").await.status, 400);
    server.stop().await;
}

/// An outage as the detector stores it: `asns` (network, start) hit from `start`.
fn outage(start: i64, asns: &[(u32, i64)], end: Option<i64>) -> Outage {
    Outage {
        id: format!("PK-outage-{start}"),
        cc: Cc::new("PK").unwrap(),
        start,
        end,
        level: Level::Critical,
        signals: vec![SignalKind::Bgp, SignalKind::ProbeVolume],
        country_wide: false,
        asns: asns
            .iter()
            .map(|&(asn, from)| AsnOutage {
                asn,
                start: from,
                end,
                level: Level::Critical,
                signals: vec![SignalKind::Bgp],
            })
            .collect(),
        alerts: Vec::new(),
    }
}

fn store_outage(server: &TestServer, o: &Outage) {
    let stored = censorwatch_server::detections::stored_outage(o, censorwatch_server::detections::unix_now()).unwrap();
    server.store.put_detections(&[stored], &[]).unwrap();
}

/// The types a receiver accepted (answered 200), in order.
fn accepted(r: &Receiver) -> Vec<String> {
    r.seen
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.3 == 200)
        .map(|a| a.1.clone())
        .collect()
}

#[tokio::test]
async fn an_outage_is_announced_by_signed_webhooks_to_its_country_and_network_and_in_the_feeds() {
    let (pk_addr, pk) = start_receiver(1).await;
    let (net_addr, net) = start_receiver(0).await;
    let (events_addr, events_only) = start_receiver(0).await;
    let (ir_addr, ir) = start_receiver(0).await;
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig {
        // Nothing recomputes (and so removes) the outages the test stores.
        detection_interval: None,
        alert_interval: Duration::from_millis(100),
        webhook_retry_base: Duration::from_millis(100),
        data_dir: Some(data.path().to_path_buf()),
        admin_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    })
    .await;
    let auth = format!("Bearer {TOKEN}");
    let hooks = [
        json!({"url": format!("http://{pk_addr}/hook"), "secret": SECRET, "cc": "PK", "platform": "x.com"}),
        json!({"url": format!("http://{net_addr}/hook"), "secret": SECRET, "asn": 24499, "kinds": ["outage"]}),
        json!({"url": format!("http://{events_addr}/hook"), "secret": SECRET, "cc": "PK", "kinds": ["event"]}),
        json!({"url": format!("http://{ir_addr}/hook"), "secret": SECRET, "cc": "IR"}),
    ];
    let mut created = Vec::new();
    for hook in &hooks {
        let r = request(
            server.addr,
            "POST",
            "/api/v1/admin/webhooks",
            &[("authorization", &auth)],
            &hook.to_string(),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        created.push(r.json());
    }
    assert_eq!(
        created[0]["kinds"],
        json!(["event", "outage", "watch"]),
        "every kind when not narrowed"
    );
    assert_eq!(
        (created[1]["asn"].as_u64(), &created[1]["kinds"]),
        (Some(24499), &json!(["outage"]))
    );
    let bad = json!({"url": format!("http://{ir_addr}/hook"), "secret": SECRET, "kinds": ["shutdowns"]});
    let r = request(
        server.addr,
        "POST",
        "/api/v1/admin/webhooks",
        &[("authorization", &auth)],
        &bad.to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.client_error().contains("outage"), "{}", r.text());

    for file in ["seen.json", "seen-outages.json"] {
        let path = data.path().join("alerts").join(file);
        wait_for("the first check", || path.exists()).await;
    }
    // Election day, 8 Feb 2024: mobile data cut on AS45595 at 00:00, on AS24499 from 02:00,
    // back at 20:00.
    let t0 = 1_707_350_400;
    store_outage(&server, &outage(t0, &[(45595, t0)], None));
    wait_for("outage.opened", || accepted(&pk) == ["outage.opened"]).await;
    let attempts = pk.seen.lock().unwrap().clone();
    assert_eq!(attempts.len(), 2, "one 500, then accepted: {attempts:?}");
    assert!(
        attempts.iter().all(|a| a.0 == attempts[0].0 && a.2),
        "same delivery, signed: {attempts:?}"
    );
    let body = pk.bodies.lock().unwrap().last().unwrap().clone();
    assert_eq!(body["outage"]["id"], format!("PK-outage-{t0}"));
    assert_eq!(body["outage"]["asns"][0]["asn"], 45595);
    assert!(body.get("event").is_none(), "{body}");

    store_outage(&server, &outage(t0, &[(45595, t0), (24499, t0 + 7200)], None));
    wait_for("outage.changed", || {
        accepted(&pk).len() == 2 && accepted(&net).len() == 1
    })
    .await;
    store_outage(
        &server,
        &outage(t0, &[(45595, t0), (24499, t0 + 7200)], Some(t0 + 20 * HOUR)),
    );
    wait_for("outage.closed", || {
        accepted(&pk).len() == 3 && accepted(&net).len() == 2
    })
    .await;
    assert_eq!(accepted(&pk), ["outage.opened", "outage.changed", "outage.closed"]);
    let changes = |kind: &str| {
        let bodies = pk.bodies.lock().unwrap();
        let b = bodies.iter().find(|b| b["type"] == kind).unwrap();
        b["changes"].clone()
    };
    assert_eq!(
        changes("outage.opened"),
        Value::Null,
        "nothing to compare an opening with"
    );
    assert_eq!(changes("outage.changed"), json!(["asns"]));
    assert_eq!(changes("outage.closed"), json!(["asns", "end"]));
    assert_eq!(
        accepted(&net),
        ["outage.changed", "outage.closed"],
        "AS24499's subscriber hears from when AS24499 is hit"
    );
    assert!(net.seen.lock().unwrap().iter().all(|a| a.2), "signed");
    // Time for a stray delivery to arrive, then none did.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(events_only.seen.lock().unwrap().is_empty(), "an events-only webhook");
    assert!(ir.seen.lock().unwrap().is_empty(), "another country's webhook");
    assert_eq!(pk.seen.lock().unwrap().len(), 4, "nothing repeated");
    let outbox = data.path().join("alerts/outbox");
    assert_eq!(std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0), 0);

    // The feeds: the country's (with a platform filter too: a shutdown cuts x.com), the
    // network's, and the filters that leave it out.
    let prefix = format!("tag:censorwatch.org,2024:outage:PK-outage-{t0}");
    let expected = [
        format!("{prefix}:closed"),
        format!("{prefix}:network:24499"),
        format!("{prefix}:opened"),
    ];
    let link = format!("/country/PK#outage-PK-outage-{t0}");
    for path in [
        "/api/v1/feeds/events.atom?cc=PK",
        "/api/v1/feeds/events.atom?cc=PK&platform=x.com",
        "/api/v1/feeds/events.atom?asn=AS24499",
        "/api/v1/feeds/events.atom?cc=PK&asn=45595&kind=outage",
    ] {
        let feed = server.get(path).await;
        assert_eq!(feed.status, 200, "{path}: {}", feed.text());
        assert_eq!(check_atom(&feed.text(), 3, &link), expected, "{path}");
    }
    for path in [
        "/api/v1/feeds/events.atom?cc=PK&kind=event",
        "/api/v1/feeds/events.atom?cc=IR",
        "/api/v1/feeds/events.atom?asn=AS1",
    ] {
        check_atom(&server.get(path).await.text(), 0, "");
    }
    for bad in ["asn=seven", "kind=blocks", "platform=x.com&kind=outage"] {
        let r = server.get(&format!("/api/v1/feeds/events.atom?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
    }
    server.stop().await;
}

/// Parses `text` as XML and checks RFC 4287's required elements and that each entry's link
/// contains `link`; returns the entry ids.
fn check_atom(text: &str, entries: usize, link: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("not XML ({e}):\n{text}"));
    let atom = "http://www.w3.org/2005/Atom";
    let feed = doc.root_element();
    assert!(feed.has_tag_name((atom, "feed")), "root is {:?}", feed.tag_name());
    let child = |n: roxmltree::Node<'_, '_>, name: &str| -> Vec<String> {
        n.children()
            .filter(|c| c.has_tag_name((atom, name)))
            .map(|c| c.text().unwrap_or("").to_owned())
            .collect()
    };
    let rfc3339 = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("updated {t:?}: {e}"));
    for name in ["id", "title", "updated"] {
        assert_eq!(child(feed, name).len(), 1, "feed needs exactly one {name}");
    }
    rfc3339(&child(feed, "updated")[0]);
    assert!(
        feed.children().any(|c| c.has_tag_name((atom, "author"))),
        "feed author (entries have none)"
    );
    let found: Vec<_> = feed.children().filter(|c| c.has_tag_name((atom, "entry"))).collect();
    assert_eq!(found.len(), entries, "{text}");
    let mut ids = Vec::new();
    for e in found {
        for name in ["id", "title", "updated"] {
            assert_eq!(child(e, name).len(), 1, "entry needs exactly one {name}");
        }
        rfc3339(&child(e, "updated")[0]);
        let alternate = e
            .children()
            .find(|c| c.has_tag_name((atom, "link")) && c.attribute("rel") == Some("alternate"))
            .expect("entry link");
        let href = alternate.attribute("href").unwrap();
        assert!(href.starts_with("http://127.0.0.1:") && href.contains(link), "{href}");
        let terms: Vec<&str> = e
            .children()
            .filter(|c| c.has_tag_name((atom, "category")))
            .filter_map(|c| c.attribute("term"))
            .collect();
        assert!(
            terms.len() == 2
                && ["opened", "changed", "closed", "due"].contains(&terms[0])
                && ["event", "outage", "watch"].contains(&terms[1]),
            "categories {terms:?}"
        );
        ids.push(child(e, "id")[0].clone());
    }
    ids
}

/// 2024-04-24 00:00 UTC.
const DEADLINE: i64 = 1_713_916_800;

fn record(i: usize, asn: u32, domain: &str, t: i64, status: Status) -> Record {
    let line = fixtures()[0].clone();
    let m = Measurement::from_slice(line.as_bytes()).unwrap();
    let verdict = censorwatch_verdict::Analyzer::with_builtin_fingerprints()
        .verdict(&m)
        .unwrap();
    let mut r = Record::new(line.as_bytes(), &m, verdict);
    r.id = format!("watch-{i}");
    r.meta.probe_cc = "PK".into();
    r.meta.probe_asn = asn;
    r.meta.domain = Some(domain.into());
    r.meta.start_time = t;
    r.verdict.status = status;
    r.verdict.method = (status == Status::Blocked).then_some(Method::TlsReset);
    r
}

/// In the 24 h before the deadline: AS1–AS3 back (twitter's domains ok, one stray blocked
/// on AS3), AS4 still blocked, AS5 on and off; AS6 only down; youtube blocked on AS1 and an
/// old twitter block on AS2 (before the window) do not count.
fn watch_seed() -> Vec<Record> {
    let mut records = Vec::new();
    let mut add = |asn: u32, domain: &str, t: i64, status: Status| {
        let i = records.len();
        records.push(record(i, asn, domain, t, status));
    };
    let domains = ["x.com", "twitter.com", "pbs.twimg.com"];
    for k in 0..12i64 {
        let t = DEADLINE - 23 * HOUR + k * HOUR;
        let d = domains[k as usize % 3];
        add(1, d, t, Status::Ok);
        add(2, d, t, Status::Ok);
        add(3, d, t, if k == 5 { Status::Blocked } else { Status::Ok });
        add(4, d, t, Status::Blocked);
        add(5, d, t, if k % 2 == 0 { Status::Blocked } else { Status::Ok });
        add(6, d, t, Status::Down);
        add(1, "www.youtube.com", t, Status::Blocked);
        add(2, d, t - 48 * HOUR, Status::Blocked);
    }
    add(1, "x.com", DEADLINE + 60, Status::Blocked);
    records
}

const THREE_OF_FIVE: &str =
    "twitter in PK: restored on 3 of 5 networks (AS1, AS2, AS3); still blocked on AS4; intermittent on AS5";

#[tokio::test]
async fn a_watch_reports_restored_on_3_of_5_networks() {
    let server = TestServer::start(ServerConfig {
        detection_interval: None,
        admin_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    })
    .await;
    server.store.insert(&watch_seed()).unwrap();

    let body = json!({"cc": "PK", "platform": "x.com", "deadline": "2024-04-24T00:00:00Z", "label": "restore x.com in PK by 2024-04-24"}).to_string();
    let auth = format!("Bearer {TOKEN}");
    assert_eq!(
        request(server.addr, "POST", "/api/v1/admin/watches", &[], &body)
            .await
            .status,
        401
    );
    let r = request(
        server.addr,
        "POST",
        "/api/v1/admin/watches",
        &[("authorization", &auth)],
        &body,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    for w in [created, server.get(&format!("/api/v1/watches/{id}")).await.json()] {
        let report = &w["report"];
        assert_eq!(report["status"], "due");
        assert_eq!(
            (report["restored"].as_u64(), report["networks"].as_u64()),
            (Some(3), Some(5)),
            "{report}"
        );
        assert_eq!(report["summary"], THREE_OF_FIVE);
        assert_eq!(report["since"], "2024-04-23T00:00:00Z");
        assert_eq!(report["until"], "2024-04-24T00:00:00Z");
        let per: Vec<(u64, &str)> = report["per_network"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["asn"].as_u64().unwrap(), n["access"].as_str().unwrap()))
            .collect();
        assert_eq!(
            per,
            [
                (1, "restored"),
                (2, "restored"),
                (3, "restored"),
                (4, "blocked"),
                (5, "mixed"),
                (6, "no_data")
            ]
        );
    }
    let all = server.get("/api/v1/watches").await.json();
    assert_eq!(all["results"].as_array().unwrap().len(), 1);
    // The Atom feed of the country, and of AS4, carries the report at the deadline.
    for path in [
        "/api/v1/feeds/events.atom?cc=PK",
        "/api/v1/feeds/events.atom?kind=watch&asn=AS4&platform=twitter",
    ] {
        let feed = server.get(path).await.text();
        let ids = check_atom(&feed, 1, &format!("/api/v1/watches/{id}"));
        assert_eq!(ids, [format!("tag:censorwatch.org,2024:watch:{id}:due")]);
        assert!(
            feed.contains("<title>Deadline 2024-04-24T00:00:00Z passed (restore x.com in PK by 2024-04-24): restored on 3 of 5 networks</title>"),
            "{feed}"
        );
        assert!(feed.contains(THREE_OF_FIVE), "{feed}");
    }
    for path in [
        "/api/v1/feeds/events.atom?cc=IR",
        "/api/v1/feeds/events.atom?platform=youtube",
        "/api/v1/feeds/events.atom?kind=event",
        "/api/v1/feeds/events.atom?asn=AS7",
    ] {
        check_atom(&server.get(path).await.text(), 0, "");
    }
    assert_eq!(server.get("/api/v1/watches/w-nope").await.status, 404);
    let r = request(
        server.addr,
        "DELETE",
        &format!("/api/v1/admin/watches/{id}"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(server.get(&format!("/api/v1/watches/{id}")).await.status, 404);
    server.stop().await;
}

/// The push at the deadline, through the library (the server runs the same check every alert
/// interval): a watch whose deadline passed more than the report delay ago is sent, once, as
/// `watch.due` with its report, signed, to the webhooks that want it.
#[tokio::test]
async fn a_watch_report_is_pushed_once_when_the_deadline_has_passed() {
    use censorwatch_server::alerts::{AlertKind, Alerts, WebhookConfig, watch};
    let (addr, receiver) = start_receiver(1).await;
    let (other_addr, other) = start_receiver(0).await;
    let dir = tempfile::tempdir().unwrap();
    let store = censorwatch_store::SqliteStore::open(&dir.path().join("w.db")).unwrap();
    censorwatch_store::Store::insert(&store, &watch_seed()).unwrap();
    let hook = |url: String, platform: Option<&str>, kinds: Vec<AlertKind>| {
        WebhookConfig {
            url,
            secret: SECRET.into(),
            cc: Some("PK".into()),
            platform: platform.map(str::to_owned),
            asn: None,
            kinds,
        }
        .validated()
        .unwrap()
    };
    let hooks = [
        hook(format!("http://{addr}/hook"), Some("x.com"), vec![AlertKind::Watch]),
        hook(format!("http://{other_addr}/hook"), Some("youtube.com"), vec![]),
        hook(
            format!("http://{other_addr}/hook"),
            None,
            vec![AlertKind::Event, AlertKind::Outage],
        ),
    ];
    let alerts = std::sync::Arc::new(Alerts::open(Some(dir.path()), &hooks, Duration::from_millis(50)).unwrap());
    alerts
        .add_watch(watch::Watch {
            id: "w-deadline".into(),
            cc: "PK".into(),
            platform: Some("twitter".into()),
            domain: None,
            deadline: DEADLINE,
            window_seconds: watch::DEFAULT_WINDOW_SECONDS,
            label: "court order: restore X".into(),
            created: DEADLINE - 7 * 86_400,
            reported: None,
        })
        .unwrap();
    let due_at = DEADLINE + watch::REPORT_DELAY_SECONDS;
    assert_eq!(alerts.check_watches(&store, due_at - 1).unwrap(), 0, "not yet");
    assert_eq!(
        alerts.check_watches(&store, due_at).unwrap(),
        1,
        "to the one webhook that wants it"
    );
    assert_eq!(alerts.check_watches(&store, due_at + 60).unwrap(), 0, "once");
    // A restart remembers that it was sent.
    let again = Alerts::open(Some(dir.path()), &hooks, Duration::from_millis(50)).unwrap();
    assert_eq!(again.check_watches(&store, due_at + 120).unwrap(), 0);
    assert!(again.watches()[0].reported.is_some());
    // Delivered: a 500 first, then retried.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !alerts.pending_deliveries().is_empty() {
        assert!(Instant::now() < deadline, "not delivered");
        let a = std::sync::Arc::clone(&alerts);
        tokio::task::spawn_blocking(move || a.deliver_due()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let attempts = receiver.seen.lock().unwrap().clone();
    assert_eq!(attempts.iter().map(|a| a.3).collect::<Vec<_>>(), [500, 200]);
    assert!(attempts.iter().all(|a| a.1 == "watch.due" && a.2), "{attempts:?}");
    let body = receiver.bodies.lock().unwrap().last().unwrap().clone();
    assert_eq!(body["watch"]["id"], "w-deadline");
    assert_eq!(body["watch"]["report"]["status"], "due");
    assert_eq!(body["watch"]["report"]["summary"], THREE_OF_FIVE);
    assert!(other.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn admin_endpoints_are_disabled_without_a_token() {
    let server = TestServer::default().await;
    for (method, path) in [
        ("GET", "/api/v1/admin/webhooks"),
        ("POST", "/api/v1/admin/watches"),
        ("DELETE", "/api/v1/admin/webhooks/x"),
    ] {
        let r = send(server.addr, method, path, Full::new(Bytes::new())).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert!(r.client_error().contains("disabled"));
    }
    server.stop().await;
}
