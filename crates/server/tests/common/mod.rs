//! Shared test helpers: a real server on 127.0.0.1:0 over a real SQLite store in a tempdir, and a
//! small hyper client (one connection per request).
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use censorwatch_server::{ServerConfig, serve};
use censorwatch_store::{SqliteStore, Store};
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The real OONI measurements shipped with the repository, one JSON text per line.
pub fn fixtures() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni/real_measurements_combined.jsonl");
    std::fs::read_to_string(path)
        .expect("testdata/ooni/real_measurements_combined.jsonl")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A fixture as a JSON value.
pub fn fixture(i: usize) -> serde_json::Value {
    serde_json::from_str(&fixtures()[i]).unwrap()
}

/// A fixture as a probe would submit it: without the `measurement_uid` the backend assigns.
pub fn probe_fixture(i: usize) -> serde_json::Value {
    let mut m = fixture(i);
    m.as_object_mut().unwrap().remove("measurement_uid");
    m
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("test.db")).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::clone(&store), config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            store,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn default() -> TestServer {
        TestServer::start(ServerConfig::default()).await
    }

    pub fn count(&self) -> u64 {
        self.store.count().unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }

    pub async fn get(&self, path: &str) -> Response {
        send(self.addr, "GET", path, Full::new(Bytes::new())).await
    }

    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> Response {
        send(self.addr, "POST", path, Full::new(body.into())).await
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        self.post(path, serde_json::to_vec(body).unwrap()).await
    }
}

/// An answer.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a 4xx with a JSON `{"error": …}` and returns the message.
    pub fn client_error(&self) -> String {
        assert!(
            self.status.is_client_error(),
            "expected 4xx, got {}: {}",
            self.status,
            self.text()
        );
        let v = self.json();
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {v}"))
            .to_owned()
    }
}

/// Sends one request on a fresh connection.
pub async fn send<B>(addr: SocketAddr, method: &str, path: &str, body: B) -> Response
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    send_with_headers(addr, method, path, &[], body).await
}

/// Sends one request with extra `headers` on a fresh connection.
pub async fn send_with_headers<B>(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: B,
) -> Response
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(body).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A `submit_measurement` body for a measurement.
pub fn submission(measurement: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "format": "json",
        "content": measurement.to_string(),
        "protocol_version": 1,
    })
}
