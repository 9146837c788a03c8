//! The test-helper ("control") protocol, both sides' types, and the probe's client for it.
//!
//! The request and response shapes are OONI's (probe-cli `internal/model/th.go`, served by
//! `oohelperd`): `POST /` with `{http_request, http_request_headers, tcp_connect}` answered by
//! `{tcp_connect, tls_handshake, http_request, dns, ip_info}`, so censorwatch's control also serves
//! OONI probes. `GET /whoami` is censorwatch's: the caller's network (ASN, country, name) as the
//! control sees it, so the probe never has to write its own IP anywhere.
//!
//! Every failure to reach or understand the control becomes a `control_failure` string; nothing here
//! panics or waits past its timeout, whatever the control sends (garbage, 10 MB, nothing).

use crate::failure::{classify_io, unknown};
use crate::http::{AbortOnDrop, classify_hyper, host_header, path_and_query};
use crate::tls::TlsSettings;
use bytes::Bytes;
use censorwatch_model::Failure;
use censorwatch_model::web_connectivity::ControlResponse;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

/// Largest control response read (a real one is a few KiB).
pub const MAX_CONTROL_RESPONSE: usize = 1 << 20;

/// What a probe asks the control to measure (OONI `THRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThRequest {
    /// The URL to fetch.
    pub http_request: String,
    /// Headers to send with the fetch.
    #[serde(default)]
    pub http_request_headers: BTreeMap<String, Vec<String>>,
    /// `ip:port` endpoints the probe resolved, to connect to as well.
    #[serde(default)]
    pub tcp_connect: Vec<String>,
    /// Whether to try QUIC too (accepted, not yet acted on).
    #[serde(default)]
    pub x_quic_enabled: bool,
}

/// The caller's network as the control sees it (`GET /whoami`). The IP itself is returned for the
/// caller's information only; the probe never writes it into a measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The caller's address as the control saw it.
    pub ip: String,
    /// `"AS1234"`, `"AS0"` when unknown.
    pub probe_asn: String,
    /// Two-letter country, `"ZZ"` when unknown.
    pub probe_cc: String,
    /// The network's name, `""` when unknown.
    pub probe_network_name: String,
}

/// A transfer: bytes over time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Bytes received.
    pub bytes: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// `bytes / seconds`.
    pub bytes_per_second: f64,
}

impl Throughput {
    /// A transfer of `bytes` in `elapsed`.
    pub fn new(bytes: u64, elapsed: Duration) -> Throughput {
        let seconds = elapsed.as_secs_f64().max(1e-6);
        Throughput {
            bytes,
            seconds: (seconds * 1e6).round() / 1e6,
            bytes_per_second: (bytes as f64 / seconds).round(),
        }
    }
}

/// The request headers a probe sends for `url` (the browser's).
pub fn request_for(url: &str, endpoints: Vec<String>) -> ThRequest {
    ThRequest {
        http_request: url.to_owned(),
        http_request_headers: crate::http::BROWSER_HEADERS
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect(),
        tcp_connect: endpoints,
        x_quic_enabled: false,
    }
}

/// A client for one control server.
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: Url,
    tls: TlsSettings,
    timeout: Duration,
}

impl ControlClient {
    /// A client for the control at `base` (`http://` or `https://`).
    pub fn new(base: Url, tls: TlsSettings, timeout: Duration) -> Result<ControlClient, String> {
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(format!(
                "the control URL {base} must be http:// or https:// with a host, e.g. https://th.example.org/"
            ));
        }
        Ok(ControlClient { base, tls, timeout })
    }

    /// The control's address, for `test_helpers` in the envelope.
    pub fn url(&self) -> &Url {
        &self.base
    }

    /// Asks the control to measure what `request` describes.
    pub async fn measure(&self, request: &ThRequest) -> Result<ControlResponse, Failure> {
        let body = serde_json::to_vec(request).map_err(|e| unknown(&e.to_string()))?;
        let url = self.base.clone();
        let bytes = self.call("POST", &url, Some(body)).await?;
        serde_json::from_slice::<ControlResponse>(&bytes).map_err(|_| Failure::JsonParseError)
    }

    /// Asks the control who the caller is.
    pub async fn whoami(&self) -> Result<WhoAmI, Failure> {
        let url = self
            .base
            .join("/whoami")
            .map_err(|e| unknown(&format!("cannot build the whoami URL: {e}")))?;
        let bytes = self.call("GET", &url, None).await?;
        serde_json::from_slice::<WhoAmI>(&bytes).map_err(|_| Failure::JsonParseError)
    }

    /// Downloads `bytes` bytes from the control's `/throughput` endpoint and times it: the
    /// reference against which a target's transfer rate can be judged (throttling).
    pub async fn throughput_reference(&self, bytes: usize) -> Result<Throughput, Failure> {
        let url = self
            .base
            .join(&format!("/throughput?bytes={bytes}"))
            .map_err(|e| unknown(&format!("cannot build the throughput URL: {e}")))?;
        let start = std::time::Instant::now();
        let body = self.call_capped("GET", &url, None, bytes + 1).await?;
        Ok(Throughput::new(body.len() as u64, start.elapsed()))
    }

    /// POSTs `body` to `path` on the same server; the reply body of a 2xx answer.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> Result<Vec<u8>, Failure> {
        let url = self
            .base
            .join(path)
            .map_err(|e| unknown(&format!("cannot build a URL for {path}: {e}")))?;
        self.call("POST", &url, Some(body)).await
    }

    async fn call(&self, method: &str, url: &Url, body: Option<Vec<u8>>) -> Result<Vec<u8>, Failure> {
        self.call_capped(method, url, body, MAX_CONTROL_RESPONSE).await
    }

    async fn call_capped(
        &self,
        method: &str,
        url: &Url,
        body: Option<Vec<u8>>,
        cap: usize,
    ) -> Result<Vec<u8>, Failure> {
        match tokio::time::timeout(self.timeout, self.call_inner(method, url, body, cap)).await {
            Err(_) => Err(Failure::GenericTimeoutError),
            Ok(r) => r,
        }
    }

    async fn call_inner(&self, method: &str, url: &Url, body: Option<Vec<u8>>, cap: usize) -> Result<Vec<u8>, Failure> {
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(443);
        let mut addrs = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| crate::failure::classify_getaddrinfo(&e.to_string()))?;
        let addr = addrs.next().ok_or(Failure::DnsNoAnswer)?;
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| classify_io(&e))?;
        if url.scheme() == "https" {
            let name =
                ServerName::try_from(host.to_owned()).map_err(|e| unknown(&format!("bad control host name: {e}")))?;
            let stream = self
                .tls
                .plain_connector()
                .connect(name, tcp)
                .await
                .map_err(|e| classify_io(&e))?;
            exchange(stream, method, url, body, cap).await
        } else {
            exchange(tcp, method, url, body, cap).await
        }
    }
}

async fn exchange<S>(stream: S, method: &str, url: &Url, body: Option<Vec<u8>>, cap: usize) -> Result<Vec<u8>, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| classify_hyper(&e))?;
    let mut driver = AbortOnDrop(Some(tokio::spawn(conn)));
    let result = async {
        let host = host_header(url);
        let path = path_and_query(url);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", host)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("censorwatch/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| unknown(&e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| classify_hyper(&e))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify_hyper(&e))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > cap {
                    return Err(unknown(&format!(
                        "the control's response is larger than {} KiB",
                        cap / 1024
                    )));
                }
                out.extend_from_slice(&data);
            }
        }
        if !status.is_success() {
            return Err(Failure::HttpUnexpectedStatusCode);
        }
        Ok(out)
    };
    let r = result.await;
    driver.finish().await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_shape_is_oonis() {
        let r = request_for("https://x.com/", vec!["104.244.42.1:443".into()]);
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["http_request"], "https://x.com/");
        assert_eq!(j["tcp_connect"][0], "104.244.42.1:443");
        assert!(
            j["http_request_headers"]["User-Agent"][0]
                .as_str()
                .unwrap()
                .starts_with("Mozilla/5.0")
        );
        assert_eq!(j["x_quic_enabled"], false);
        // OONI probes send just the three keys; the rest defaults.
        let minimal: ThRequest = serde_json::from_str(r#"{"http_request": "http://a.example/"}"#).unwrap();
        assert!(minimal.tcp_connect.is_empty());
    }

    #[test]
    fn control_urls_are_checked() {
        let tls = TlsSettings::new(&[]).unwrap();
        let t = Duration::from_secs(1);
        assert!(ControlClient::new(Url::parse("ftp://x/").unwrap(), tls.clone(), t).is_err());
        assert!(ControlClient::new(Url::parse("https://th.example.org/").unwrap(), tls, t).is_ok());
    }
}
