//! `GET /metrics`: Prometheus text whose counters follow what the server did (a stored
//! measurement, a duplicate, a rejected one, requests by route template and status), and that
//! names no client address.

mod common;

use common::{TestServer, probe_fixture, submission};
use std::collections::HashMap;

/// `name{labels} value` lines → value, keyed by the text before the value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                key.to_owned(),
                value.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")),
            )
        })
        .collect()
}

#[tokio::test]
async fn counters_follow_submissions_and_requests() {
    let server = TestServer::default().await;
    let good = submission(&probe_fixture(0));
    let r = server.post_json("/api/v1/submit_measurement", &good).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let uid = r.json()["measurement_uid"].as_str().unwrap().to_owned();
    // The same measurement again, under its uid: a duplicate.
    let mut again = probe_fixture(0);
    again["measurement_uid"] = uid.clone().into();
    let line = format!("{}\n{{\"not\": \"a measurement\"\n", again);
    let r = server.post("/api/v1/measurements", line).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["rejected"], 1);
    assert_eq!(server.get(&format!("/api/v1/measurements/{uid}")).await.status, 200);
    assert_eq!(server.get("/api/v1/measurements/nope").await.status, 404);
    assert_eq!(server.get("/no/such/thing").await.status, 404);

    let r = server.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text();
    let s = samples(&text);
    let get = |k: &str| *s.get(k).unwrap_or_else(|| panic!("no sample {k} in\n{text}"));
    assert_eq!(get("censorwatch_measurements_received_total"), 3.0);
    assert_eq!(get("censorwatch_measurements_stored_total"), 1.0);
    assert_eq!(get("censorwatch_measurements_duplicate_total"), 1.0);
    assert_eq!(get("censorwatch_measurements_rejected_total"), 1.0);
    let commits = get("censorwatch_commits_total");
    assert!(commits >= 2.0, "{commits}");
    assert_eq!(get("censorwatch_commit_duration_seconds_count"), commits);
    assert_eq!(get("censorwatch_commit_duration_seconds_bucket{le=\"+Inf\"}"), commits);
    assert!(get("censorwatch_commit_duration_seconds_sum") > 0.0);
    assert_eq!(get("censorwatch_events_open"), 0.0);
    assert_eq!(get("censorwatch_outages_open"), 0.0);
    let http = |route: &str, method: &str, status: u16| {
        s.get(&format!(
            "censorwatch_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
        ))
        .copied()
        .unwrap_or(0.0)
    };
    assert_eq!(http("/api/v1/submit_measurement", "POST", 200), 1.0);
    assert_eq!(http("/api/v1/measurements", "POST", 200), 1.0);
    assert_eq!(
        http("/api/v1/measurements/{id}", "GET", 200),
        1.0,
        "by template, not raw path\n{text}"
    );
    assert_eq!(http("/api/v1/measurements/{id}", "GET", 404), 1.0);
    assert_eq!(http("unmatched", "GET", 404), 1.0);
    assert!(
        !text.contains("127.0.0.1") && !text.contains(&uid),
        "no addresses or ids in metrics"
    );
    server.stop().await;
}
