//! Hostile input: every case is a clear 4xx with a JSON error, nothing is stored half-way, and
//! the server keeps serving (a valid submission right after succeeds).

mod common;

use bytes::Bytes;
use common::{Response, TestServer, probe_fixture, send, submission};
use futures_util::stream;
use http_body_util::StreamBody;
use hyper::body::Frame;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const VALID: usize = 32;

/// Submits a valid measurement (a fresh one each time) and asserts it is stored.
async fn still_serving(server: &TestServer, n: u64) {
    let before = server.count();
    let mut m = probe_fixture(VALID);
    m["annotations"] = json!({"x_nonce": n});
    let r = server.post_json("/api/v1/submit_measurement", &submission(&m)).await;
    assert_eq!(r.status, 200, "a valid submission after hostile input: {}", r.text());
    assert_eq!(server.count(), before + 1);
}

fn assert_4xx(r: &Response, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let message = r.client_error();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

#[tokio::test]
async fn malformed_json_wrong_types_and_invalid_fields() {
    let server = TestServer::default().await;
    let endpoints = ["/api/v1/submit_measurement", "/report"];
    for (i, body) in [&b"{"[..], b"", b"null", b"[1,2]", b"{\"content\": ", b"\xff\xfe"]
        .iter()
        .enumerate()
    {
        for e in endpoints {
            let r = server.post(e, Bytes::copy_from_slice(body)).await;
            assert_4xx(&r, 400, "not a valid");
        }
        still_serving(&server, i as u64).await;
    }
    let stored = server.count();

    // Wrong types.
    let mut m = probe_fixture(VALID);
    m["probe_cc"] = json!(5);
    let r = server.post_json("/api/v1/submit_measurement", &submission(&m)).await;
    assert_4xx(&r, 400, "probe_cc");
    let r = server
        .post_json(
            "/report",
            &json!({"probe_cc": 5, "probe_asn": "AS1", "test_name": "web_connectivity"}),
        )
        .await;
    assert_4xx(&r, 400, "probe_cc");
    let r = server
        .post_json("/api/v1/submit_measurement", &json!({"format": "json", "content": 5}))
        .await;
    assert_4xx(&r, 400, "content");
    let mut m = probe_fixture(VALID);
    m["test_keys"] = json!("not an object");
    m["input"] = json!({"url": 1});
    let r = server.post_json("/api/v1/submit_measurement", &submission(&m)).await;
    assert_4xx(&r, 400, "input");

    // Invalid fields, on every endpoint that takes them.
    for (field, value) in [
        ("probe_cc", json!("pk")),
        ("probe_cc", json!("PAK")),
        ("probe_cc", json!("")),
        ("probe_asn", json!("59257")),
        ("probe_asn", json!("AS059257")),
        ("probe_asn", json!("AS")),
        ("probe_asn", json!("AS1234567890123")),
        ("test_name", json!("Web_Connectivity")),
        ("test_name", json!("")),
        ("test_name", json!("a".repeat(31))),
        ("test_name", json!("x'; DROP TABLE measurements; --")),
    ] {
        let mut m = probe_fixture(VALID);
        m[field] = value.clone();
        let r = server.post_json("/api/v1/submit_measurement", &submission(&m)).await;
        assert_4xx(&r, 400, field);
        let r = server.post("/api/v1/measurements", m.to_string()).await;
        assert_eq!(r.status, 200);
        assert!(r.json()["results"][0]["error"].as_str().unwrap().contains(field));
        let mut open = json!({"probe_cc": "AU", "probe_asn": "AS9443", "test_name": "web_connectivity"});
        open[field] = value;
        assert_4xx(&server.post_json("/report", &open).await, 400, field);
    }
    // A missing field.
    let mut m = probe_fixture(VALID);
    m.as_object_mut().unwrap().remove("probe_asn");
    assert_4xx(
        &server.post_json("/api/v1/submit_measurement", &submission(&m)).await,
        400,
        "probe_asn is missing",
    );
    // Unsupported format.
    let mut s = submission(&probe_fixture(VALID));
    s["format"] = json!("yaml");
    assert_4xx(&server.post_json("/api/v1/submit_measurement", &s).await, 400, "yaml");

    assert_eq!(server.count(), stored, "nothing stored by the bad requests");
    still_serving(&server, 100).await;
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8() {
    let server = TestServer::default().await;
    // Inside the measurement's JSON text (a string in the batch, raw bytes in a legacy report).
    let text = probe_fixture(VALID).to_string();
    let mut bytes = text.into_bytes();
    let at = bytes.windows(7).position(|w| w == b"\"input\"").unwrap() + 10;
    bytes[at] = 0xff;
    let r = server.post("/api/v1/measurements", bytes.clone()).await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()["results"][0]["error"].as_str().unwrap().contains("UTF-8"),
        "{}",
        r.text()
    );
    let mut body = b"{\"format\":\"json\",\"content\":".to_vec();
    body.extend_from_slice(&bytes);
    body.push(b'}');
    let open = server
        .post_json(
            "/report",
            &json!({"probe_cc": "AU", "probe_asn": "AS9443", "test_name": "web_connectivity"}),
        )
        .await
        .json();
    let r = server
        .post(&format!("/report/{}", open["report_id"].as_str().unwrap()), body)
        .await;
    assert_4xx(&r, 400, "UTF-8");
    // In a query string.
    let r = server.get("/api/v1/measurements?domain=%FF%FE").await;
    assert!(r.status.is_client_error() || r.status == 200, "{}", r.status);
    assert_eq!(server.count(), 0);
    still_serving(&server, 1).await;
    server.stop().await;
}

#[tokio::test]
async fn deeply_nested_json_is_400_not_a_crash() {
    let server = TestServer::default().await;
    let depth = 100_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    // As the whole body, as the content, inside test_keys and as a batch line.
    let r = server.post("/api/v1/submit_measurement", nested.clone()).await;
    assert_4xx(&r, 400, "not a valid");
    let r = server.post("/api/v1/measurements", nested.clone()).await;
    assert!(
        r.json()["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("recursion limit")
    );
    let content_obj = format!(
        r#"{{"format":"json","content":{{"probe_cc":"AU","probe_asn":"AS9443","test_name":"web_connectivity","test_keys":{nested}}}}}"#
    );
    let open = server
        .post_json(
            "/report",
            &json!({"probe_cc": "AU", "probe_asn": "AS9443", "test_name": "web_connectivity"}),
        )
        .await
        .json();
    let r = server
        .post(&format!("/report/{}", open["report_id"].as_str().unwrap()), content_obj)
        .await;
    assert_4xx(&r, 400, "recursion limit");
    let m = format!(
        r#"{{"probe_cc":"AU","probe_asn":"AS9443","test_name":"web_connectivity","annotations":{{"x":{nested}}}}}"#
    );
    let r = server
        .post_json("/api/v1/submit_measurement", &json!({"format": "json", "content": m}))
        .await;
    assert_4xx(&r, 400, "recursion limit");
    let r = server.post("/api/v1/measurements", m).await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("recursion limit")
    );
    assert_eq!(server.count(), 0);
    still_serving(&server, 1).await;
    server.stop().await;
}

#[tokio::test]
async fn a_100_mb_streamed_body_is_refused_without_buffering_it() {
    let server = TestServer::default().await;
    const TOTAL: u64 = 100 << 20;
    const CHUNK: usize = 64 << 10;
    for path in ["/api/v1/submit_measurement", "/report", "/api/v1/measurements"] {
        // A chunked body (no Content-Length), produced lazily: count what the server pulled.
        let produced = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&produced);
        let chunks = stream::iter((0..TOTAL / CHUNK as u64).map(move |_| {
            counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![b' '; CHUNK])))
        }));
        let config_limit = if path == "/api/v1/measurements" {
            256u64 << 20
        } else {
            16 << 20
        };
        let r = send(server.addr, "POST", path, StreamBody::new(chunks)).await;
        if config_limit < TOTAL {
            assert_4xx(&r, 413, "limit");
            let pulled = produced.load(Ordering::Relaxed);
            assert!(
                pulled < TOTAL / 2,
                "{path}: the server read {pulled} bytes of a body it should refuse early"
            );
        } else {
            // The batch limit is larger: 100 MB of blanks is read and refused as empty.
            assert_4xx(&r, 400, "empty");
        }
    }
    // With a declared Content-Length over the limit, the answer comes before any body byte.
    let r = send(
        server.addr,
        "POST",
        "/api/v1/submit_measurement",
        http_body_util::StreamBody::new(stream::iter(
            Vec::<Result<Frame<Bytes>, std::convert::Infallible>>::new(),
        )),
    )
    .await;
    assert_4xx(&r, 400, "not a valid");
    assert_eq!(server.count(), 0);
    still_serving(&server, 1).await;
    server.stop().await;
}

#[tokio::test]
async fn sql_metacharacters_are_stored_and_returned_literally() {
    let server = TestServer::default().await;
    let evil = r#"'; DROP TABLE measurements; -- " OR 1=1 /* \ % _ ; `x` $1 ?"#;
    let mut m = probe_fixture(VALID);
    for field in [
        "probe_network_name",
        "software_name",
        "software_version",
        "resolver_ip",
        "measurement_start_time",
        "test_version",
    ] {
        m[field] = json!(evil);
    }
    m["input"] = json!(format!("http://example.com/{evil}"));
    m["report_id"] = json!(evil);
    m["annotations"] = json!({ evil: evil });
    m["test_keys"]["x_evil"] = json!(evil);
    let r = server.post_json("/api/v1/submit_measurement", &submission(&m)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let uid = r.json()["measurement_uid"].as_str().unwrap().to_owned();
    let got = server.get(&format!("/api/v1/measurements/{uid}")).await.json();
    let stored = &got["measurement"];
    for field in [
        "probe_network_name",
        "software_name",
        "software_version",
        "resolver_ip",
        "measurement_start_time",
        "test_version",
        "report_id",
    ] {
        assert_eq!(stored[field], json!(evil), "{field}");
    }
    assert_eq!(stored["input"], m["input"]);
    assert_eq!(stored["annotations"][evil], json!(evil));
    assert_eq!(stored["test_keys"]["x_evil"], json!(evil));
    // Metacharacters in the query parameters are data too.
    let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let r = server.get(&format!("/api/v1/measurements?domain={}", enc(evil))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["results"], json!([]));
    let r = server.get(&format!("/api/v1/measurements/{}", enc(evil))).await;
    assert_eq!(r.status, 404);
    let all = server.get("/api/v1/measurements").await.json();
    assert_eq!(all["results"][0]["probe_network_name"], json!(evil));
    assert_eq!(all["results"][0]["report_id"], json!(evil));
    assert_eq!(server.count(), 1, "the table is still there");
    still_serving(&server, 1).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_and_mismatched_report_ids() {
    let server = TestServer::default().await;
    let m = probe_fixture(VALID);
    let body = json!({"format": "json", "content": m});
    for id in [
        "nonexistent",
        "20240217T093155Z_web_connectivity_PK_1_n1_abc",
        "..%2F..%2Fetc",
        "x%27%3B%20DROP",
    ] {
        let r = server.post_json(&format!("/report/{id}"), &body).await;
        assert_4xx(&r, 404, "unknown report id");
        assert_4xx(
            &server.post(&format!("/report/{id}/close"), "").await,
            404,
            "unknown report id",
        );
    }
    // A report for another country does not take this measurement.
    let open = server
        .post_json(
            "/report",
            &json!({"probe_cc": "PK", "probe_asn": "AS59257", "test_name": "web_connectivity"}),
        )
        .await
        .json();
    let r = server
        .post_json(&format!("/report/{}", open["report_id"].as_str().unwrap()), &body)
        .await;
    assert_4xx(&r, 400, "does not match report");
    // Nor one whose id differs from the measurement's report_id.
    let open = server
        .post_json(
            "/report",
            &json!({"probe_cc": "AU", "probe_asn": "AS9443", "test_name": "web_connectivity"}),
        )
        .await
        .json();
    let r = server
        .post_json(&format!("/report/{}", open["report_id"].as_str().unwrap()), &body)
        .await;
    assert_4xx(&r, 400, "differs from the report");
    assert_eq!(server.count(), 0);
    still_serving(&server, 1).await;
    server.stop().await;
}
