//! Every endpoint's happy path against a real server and a real SQLite store, with real OONI
//! measurements.

mod common;

use common::{TestServer, fixtures, probe_fixture, submission};
use serde_json::json;

/// Fixture 32: a real web_connectivity measurement from AU whose probe_ip was not scrubbed.
const UNSCRUBBED: usize = 32;

#[tokio::test]
async fn health() {
    let server = TestServer::default().await;
    let r = server.get("/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    server.stop().await;
}

#[tokio::test]
async fn legacy_report_flow() {
    let server = TestServer::default().await;
    let mut m = probe_fixture(UNSCRUBBED);
    let open = server
        .post_json(
            "/report",
            &json!({"data_format_version": "0.2.0", "format": "json", "probe_asn": m["probe_asn"], "probe_cc": m["probe_cc"],
                    "software_name": "ooniprobe", "software_version": "3.20", "test_name": m["test_name"],
                    "test_start_time": m["test_start_time"], "test_version": m["test_version"]}),
        )
        .await;
    assert_eq!(open.status, 200, "{}", open.text());
    let open = open.json();
    assert_eq!(open["supported_formats"], json!(["json"]));
    assert!(open["backend_version"].is_string());
    let report_id = open["report_id"].as_str().unwrap().to_owned();
    assert!(report_id.contains("_webconnectivity_AU_9443_n1_"), "{report_id}");

    m["report_id"] = json!(report_id);
    let submit = server
        .post_json(
            &format!("/report/{report_id}"),
            &json!({"format": "json", "content": m}),
        )
        .await;
    assert_eq!(submit.status, 200, "{}", submit.text());
    let uid = submit.json()["measurement_uid"].as_str().unwrap().to_owned();
    assert!(uid.starts_with("20170725T175545Z_webconnectivity_AU_9443_n1_"), "{uid}");

    let close = server.post(&format!("/report/{report_id}/close"), "").await;
    assert_eq!(close.status, 200);
    assert_eq!(close.json(), json!({"status": "success"}));

    let got = server.get(&format!("/api/v1/measurements/{uid}")).await;
    assert_eq!(got.status, 200);
    let got = got.json();
    assert_eq!(got["id"], json!(uid));
    assert_eq!(got["measurement"]["report_id"], json!(report_id));
    assert_eq!(got["measurement"]["measurement_uid"], json!(uid));
    assert_eq!(got["measurement"]["probe_ip"], "127.0.0.1");
    assert!(got["verdict"]["status"].is_string());
    assert_eq!(server.count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn report_without_report_id_in_content_gets_the_reports() {
    let server = TestServer::default().await;
    let mut m = probe_fixture(UNSCRUBBED);
    m.as_object_mut().unwrap().remove("report_id");
    let open = server
        .post_json(
            "/report",
            &json!({"probe_asn": "AS9443", "probe_cc": "AU", "test_name": "web_connectivity"}),
        )
        .await
        .json();
    let report_id = open["report_id"].as_str().unwrap();
    let submit = server
        .post_json(
            &format!("/report/{report_id}"),
            &json!({"format": "json", "content": m}),
        )
        .await;
    assert_eq!(submit.status, 200, "{}", submit.text());
    let uid = submit.json()["measurement_uid"].as_str().unwrap().to_owned();
    let got = server.get(&format!("/api/v1/measurements/{uid}")).await.json();
    assert_eq!(got["measurement"]["report_id"], json!(report_id));
    server.stop().await;
}

#[tokio::test]
async fn submit_measurement_scrubs_the_probe_ip_everywhere_and_stores_once() {
    let server = TestServer::default().await;
    let mut m = probe_fixture(UNSCRUBBED);
    let ip = m["probe_ip"].as_str().unwrap().to_owned();
    assert_eq!(ip, "202.138.55.172");
    // The probe's IP leaks into other fields too (as it does in real data when a resolver or a
    // header echoes it).
    m["test_keys"]["client_resolver"] = json!(ip);
    m["annotations"] = json!({"x_seen_as": format!("{ip}:51234"), "x_other": "202.138.55.17"});
    let raw_text = m.to_string();
    assert!(raw_text.matches(&ip).count() >= 3);

    let r = server.post_json("/api/v1/submit_measurement", &submission(&m)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    let uid = answer["measurement_uid"].as_str().unwrap().to_owned();
    assert!(uid.starts_with("20170725T175545Z_webconnectivity_AU_9443_n1_"), "{uid}");
    assert_eq!(uid.rsplit('_').next().unwrap().len(), 16);
    assert_eq!(
        answer["report_id"], m["report_id"],
        "the measurement's own report id is kept"
    );
    assert_eq!(answer["error"], json!(null));

    let got = server.get(&format!("/api/v1/measurements/{uid}")).await;
    assert_eq!(got.status, 200);
    let text = got.text();
    assert!(!text.contains(&ip), "the probe IP survived scrubbing: {text}");
    let got = got.json();
    let stored = &got["measurement"];
    assert_eq!(stored["probe_ip"], "127.0.0.1");
    assert_eq!(stored["test_keys"]["client_resolver"], "[scrubbed]");
    assert_eq!(stored["annotations"]["x_seen_as"], "[scrubbed]:51234");
    assert_eq!(
        stored["annotations"]["x_other"], "202.138.55.17",
        "a different address is untouched"
    );
    assert_eq!(stored["measurement_uid"], json!(uid));
    // Everything else is what was sent.
    assert_eq!(stored["input"], m["input"]);
    assert_eq!(stored["test_keys"]["requests"], m["test_keys"]["requests"]);

    // Resubmitting the same measurement (as a probe whose ack got lost would) stores it once.
    for _ in 0..3 {
        let again = server.post_json("/api/v1/submit_measurement", &submission(&m)).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.json()["measurement_uid"], json!(uid));
    }
    assert_eq!(server.count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn submit_measurement_without_report_id_gets_one() {
    let server = TestServer::default().await;
    let mut m = probe_fixture(UNSCRUBBED);
    m.as_object_mut().unwrap().remove("report_id");
    let answer = server
        .post_json("/api/v1/submit_measurement", &submission(&m))
        .await
        .json();
    let report_id = answer["report_id"].as_str().unwrap();
    assert!(
        report_id.starts_with("20170725T175545Z_webconnectivity_AU_9443_n1_"),
        "{report_id}"
    );
    let stored = server
        .get(&format!(
            "/api/v1/measurements/{}",
            answer["measurement_uid"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(stored["measurement"]["report_id"], json!(report_id));
    server.stop().await;
}

#[tokio::test]
async fn a_measurement_with_a_uid_keeps_it() {
    let server = TestServer::default().await;
    let mut m = probe_fixture(UNSCRUBBED);
    m["measurement_uid"] = json!("20170725175545.000000_AU_webconnectivity_0123456789abcdef");
    let answer = server
        .post_json("/api/v1/submit_measurement", &submission(&m))
        .await
        .json();
    assert_eq!(answer["measurement_uid"], m["measurement_uid"]);
    server.stop().await;
}

#[tokio::test]
async fn batch_stores_good_lines_and_reports_bad_ones() {
    let server = TestServer::default().await;
    let lines = fixtures();
    let mut body = String::new();
    for line in &lines {
        body.push_str(line);
        body.push('\n');
    }
    body.push_str("{not json\n\n");
    body.push_str(&lines[UNSCRUBBED]);
    body.push('\n');
    let total = lines.len() + 2;
    let r = server.post("/api/v1/measurements", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), total);
    assert_eq!(answer["lines"], json!(total));
    let accepted = answer["accepted"].as_u64().unwrap();
    let rejected = answer["rejected"].as_u64().unwrap();
    assert_eq!(accepted + rejected, total as u64);
    // The malformed line is line N+1, the blank line is skipped, the repeat is N+3.
    let bad = results.iter().find(|r| r["line"] == json!(lines.len() + 1)).unwrap();
    assert!(bad["error"].as_str().unwrap().contains("not valid OONI JSON"), "{bad}");
    let repeat = results.iter().find(|r| r["line"] == json!(lines.len() + 3)).unwrap();
    let first = results.iter().find(|r| r["line"] == json!(UNSCRUBBED + 1)).unwrap();
    assert_eq!(repeat["measurement_uid"], first["measurement_uid"]);
    // Every rejected fixture line is rejected for a stated reason (a missing or invalid field).
    for r in results.iter().filter(|r| r.get("error").is_some()) {
        assert!(r.get("measurement_uid").is_none());
        eprintln!("rejected: {r}");
    }
    let distinct: std::collections::HashSet<&str> =
        results.iter().filter_map(|r| r["measurement_uid"].as_str()).collect();
    assert_eq!(server.count(), distinct.len() as u64);
    assert!(
        distinct.len() > 60,
        "most real measurements are accepted: {}",
        distinct.len()
    );

    // Sending the same batch again changes nothing.
    let mut again = String::new();
    for line in &lines {
        again.push_str(line);
        again.push('\n');
    }
    let r = server.post("/api/v1/measurements", again).await;
    assert_eq!(r.status, 200);
    assert_eq!(server.count(), distinct.len() as u64);
    server.stop().await;
}

async fn load_fixtures(server: &TestServer) -> usize {
    let body = fixtures().join("\n");
    let answer = server.post("/api/v1/measurements", body).await.json();
    answer["accepted"].as_u64().unwrap() as usize
}

#[tokio::test]
async fn queries_filter_page_and_export_csv() {
    let server = TestServer::default().await;
    let accepted = load_fixtures(&server).await;
    let stored = server.count() as usize;
    assert!(stored > 0 && stored <= accepted);

    // All, paged.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/measurements?limit=7&cursor={c}"),
            None => "/api/v1/measurements?limit=7".to_owned(),
        };
        let r = server.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json();
        for item in page["results"].as_array().unwrap() {
            assert!(item.get("measurement").is_none(), "no raw in query results");
            assert!(item["verdict"]["status"].is_string());
            assert!(item["probe_asn"].as_str().unwrap().starts_with("AS"));
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), stored);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), stored);

    // Filters.
    let r = server
        .get("/api/v1/measurements?cc=au&test_name=web_connectivity")
        .await
        .json();
    let au = r["results"].as_array().unwrap();
    assert!(!au.is_empty());
    assert!(
        au.iter()
            .all(|m| m["probe_cc"] == "AU" && m["test_name"] == "web_connectivity")
    );
    let r = server.get("/api/v1/measurements?asn=AS9443").await.json();
    assert!(
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["probe_asn"] == "AS9443")
    );
    let r = server
        .get("/api/v1/measurements?since=2017-07-25&until=2017-07-25")
        .await
        .json();
    let day = r["results"].as_array().unwrap();
    assert!(!day.is_empty());
    assert!(
        day.iter()
            .all(|m| m["measurement_start_time"].as_str().unwrap().starts_with("2017-07-25"))
    );
    let r = server
        .get("/api/v1/measurements?since=2017-07-25T17:55:45Z&until=2017-07-25T17:55:46Z")
        .await
        .json();
    assert_eq!(r["results"].as_array().unwrap().len(), 1);
    let r = server.get("/api/v1/measurements?status=ok").await.json();
    assert!(
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["verdict"]["status"] == "ok")
    );
    let r = server.get("/api/v1/measurements?domain=nothing.invalid").await.json();
    assert_eq!(r, json!({"results": [], "next": null}));

    // CSV.
    let r = server.get("/api/v1/measurements?format=csv&limit=1000").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(r.body.as_ref());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(&header[..4], ["id", "measurement_start_time", "probe_cc", "probe_asn"]);
    assert!(header.contains(&"status".to_owned()) && header.contains(&"method".to_owned()));
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), stored);
    assert!(rows.iter().all(|row| row.len() == header.len()));
    let status_col = header.iter().position(|h| h == "status").unwrap();
    assert!(
        rows.iter()
            .all(|row| ["ok", "blocked", "down", "inconclusive"].contains(&&row[status_col]))
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let server = TestServer::default().await;
    for query in [
        "cc=PAK",
        "asn=ASx",
        "since=yesterday",
        "until=2024-13-01",
        "since=2024-02-18&until=2024-02-17",
        "status=sideways",
        "method=dns.magic",
        "limit=0",
        "limit=100000",
        "cursor=!!!",
        "format=xml",
        "colour=red",
        "cc=PK&cc=IR",
        "test_name=Web%20Connectivity",
    ] {
        let r = server.get(&format!("/api/v1/measurements?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert!(!r.client_error().is_empty());
    }
    let r = server.get("/api/v1/measurements/nope").await;
    assert_eq!(r.status, 404);
    assert!(r.client_error().contains("no measurement"));
    let r = server.get("/no/such/endpoint").await;
    assert_eq!(r.status, 404);
    r.client_error();
    let r = server.get("/api/v1/submit_measurement").await;
    assert_eq!(r.status, 405);
    r.client_error();
    server.stop().await;
}
