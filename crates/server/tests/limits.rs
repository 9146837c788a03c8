//! The rate limit, and group commit under concurrency: every acknowledged submission is stored
//! exactly once, duplicates included, and submissions share commits.

mod common;

use censorwatch_server::{RateLimit, ServerConfig};
use common::{TestServer, probe_fixture, submission};
use serde_json::json;
use std::collections::HashSet;

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let config = ServerConfig {
        rate_limit: Some(RateLimit {
            per_second: 0.5,
            burst: 3.0,
        }),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    for _ in 0..3 {
        assert_eq!(server.get("/api/v1/measurements").await.status, 200);
    }
    let r = server.get("/api/v1/measurements").await;
    assert_eq!(r.status, 429);
    assert!(r.client_error().contains("too many requests"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let r = server
        .post_json("/api/v1/submit_measurement", &submission(&probe_fixture(32)))
        .await;
    assert_eq!(r.status, 429);
    // Health is not limited.
    assert_eq!(server.get("/health").await.status, 200);
    assert_eq!(server.count(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_are_group_committed_and_stored_once() {
    let server = TestServer::default().await;
    let addr = server.addr;
    let distinct = 200;
    let mut tasks = Vec::new();
    for i in 0..distinct * 2 {
        // Every measurement is sent twice, concurrently.
        let mut m = probe_fixture(32);
        m["annotations"] = json!({"x_n": i % distinct});
        tasks.push(tokio::spawn(async move {
            let body = serde_json::to_vec(&submission(&m)).unwrap();
            let r = common::send(
                addr,
                "POST",
                "/api/v1/submit_measurement",
                http_body_util::Full::new(bytes::Bytes::from(body)),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["measurement_uid"].as_str().unwrap().to_owned()
        }));
    }
    let mut uids = HashSet::new();
    for t in tasks {
        uids.insert(t.await.unwrap());
    }
    assert_eq!(uids.len(), distinct);
    assert_eq!(server.count(), distinct as u64);
    server.stop().await;
}
