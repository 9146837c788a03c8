//! Throughput transfers for throttling judgements: one GET of a large static resource, timed as
//! bytes over time (a sample every [`SAMPLE_EVERY`]), stopped at a byte or time limit.
//!
//! Throttling leaves handshakes intact and slows the transfer (Xue et al., "Throttling Twitter: an
//! emerging censorship technique in Russia", IMC 2021: ~130–150 kbit/s to Twitter's hosts while
//! other hosts stayed fast), so a probe judges it by comparing the target's transfer with the same
//! kind of transfer over the same access network from a decoy host, and from the control's
//! `/throughput`. The probe only records; `censorwatch-verdict` judges (`x_throughput_target`,
//! `x_throughput_decoy`, `x_throughput_reference`).

use crate::failure::unknown;
use crate::http::{AbortOnDrop, BROWSER_HEADERS, classify_hyper, host_header, path_and_query};
use bytes::Bytes;
use censorwatch_model::Failure;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

/// Interval between bytes-over-time samples.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Default byte limit of a transfer.
pub const DEFAULT_MAX_BYTES: usize = 4 << 20;
/// Default time limit of a transfer (at 150 kbit/s, ~190 KB arrive in 10 s: enough to tell).
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(10);

/// One timed transfer, as written into a measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// The URL fetched.
    pub url: String,
    /// `ip:port` it came from (`""` if no connection was made).
    pub address: String,
    /// What failed before or during the transfer (`null` when it ran to a limit or the end).
    pub failure: Option<Failure>,
    /// The response status (`null` without a response).
    pub status_code: Option<u16>,
    /// Body bytes received.
    pub bytes: u64,
    /// Seconds from the request to the last byte.
    pub seconds: f64,
    /// `bytes / seconds`.
    pub bytes_per_second: f64,
    /// `[seconds since the request, cumulative body bytes]`, every [`SAMPLE_EVERY`] and at the end.
    pub samples: Vec<(f64, u64)>,
    /// Why it stopped: `"complete"`, `"byte_limit"`, `"time_limit"` or `"failure"`.
    pub stopped: String,
}

impl Transfer {
    /// A transfer that never started.
    pub fn failed(url: &Url, address: String, failure: Failure) -> Transfer {
        Transfer {
            url: url.to_string(),
            address,
            failure: Some(failure),
            status_code: None,
            bytes: 0,
            seconds: 0.0,
            bytes_per_second: 0.0,
            samples: Vec::new(),
            stopped: "failure".into(),
        }
    }
}

/// Limits of one transfer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stop after this many body bytes.
    pub max_bytes: usize,
    /// Stop after this long.
    pub max_duration: Duration,
    /// Give up if no response head arrives within this long.
    pub head_timeout: Duration,
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// GETs `url` over `stream` (already connected, TLS done for https) and times the body.
pub async fn get<S>(stream: S, url: &Url, address: String, limits: Limits) -> Transfer
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut out = Transfer::failed(url, address, Failure::GenericTimeoutError);
    let start = Instant::now();
    let work = exchange(stream, url, limits, start, &mut out);
    let failure = match tokio::time::timeout(limits.max_duration + limits.head_timeout, work).await {
        Err(_) => Some(Failure::GenericTimeoutError),
        Ok(r) => r.err(),
    };
    out.failure = failure;
    if out.failure.is_some() {
        out.stopped = "failure".into();
    }
    let seconds = out.samples.last().map_or(0.0, |s| s.0);
    out.seconds = round6(seconds);
    out.bytes_per_second = if seconds > 0.0 {
        (out.bytes as f64 / seconds).round()
    } else {
        0.0
    };
    out
}

async fn exchange<S>(stream: S, url: &Url, limits: Limits, start: Instant, out: &mut Transfer) -> Result<(), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| classify_hyper(&e))?;
    let mut driver = AbortOnDrop(Some(tokio::spawn(conn)));
    let result = async {
        let host = host_header(url);
        let path = path_and_query(url);
        let mut builder = hyper::Request::builder().method("GET").uri(path).header("Host", host);
        for (k, v) in BROWSER_HEADERS {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(Empty::<Bytes>::new())
            .map_err(|e| unknown(&format!("cannot build the request: {e}")))?;
        let response = tokio::time::timeout(limits.head_timeout, sender.send_request(request))
            .await
            .map_err(|_| Failure::GenericTimeoutError)?
            .map_err(|e| classify_hyper(&e))?;
        out.status_code = Some(response.status().as_u16());
        let mut body = response.into_body();
        let mut last_sample = start;
        let deadline = start + limits.max_duration;
        out.stopped = "complete".into();
        loop {
            let frame = match tokio::time::timeout_at(deadline.into(), body.frame()).await {
                Err(_) => {
                    out.stopped = "time_limit".into();
                    break;
                }
                Ok(None) => break,
                Ok(Some(frame)) => frame.map_err(|e| classify_hyper(&e))?,
            };
            if let Ok(data) = frame.into_data() {
                out.bytes += data.len() as u64;
                let now = Instant::now();
                if now - last_sample >= SAMPLE_EVERY {
                    last_sample = now;
                    out.samples.push((round6((now - start).as_secs_f64()), out.bytes));
                }
                if out.bytes >= limits.max_bytes as u64 {
                    out.stopped = "byte_limit".into();
                    break;
                }
            }
        }
        let end = round6(start.elapsed().as_secs_f64());
        if out.samples.last().is_none_or(|s| s.1 != out.bytes) {
            out.samples.push((end, out.bytes));
        }
        Ok(())
    }
    .await;
    driver.finish().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_that_never_started_says_why() {
        let url = Url::parse("https://abs.twimg.com/x.js").unwrap();
        let t = Transfer::failed(&url, String::new(), Failure::ConnectionReset);
        let j = serde_json::to_value(&t).unwrap();
        assert_eq!(j["failure"], "connection_reset");
        assert_eq!(j["stopped"], "failure");
        assert_eq!(j["samples"], serde_json::json!([]));
        let back: Transfer = serde_json::from_value(j).unwrap();
        assert_eq!(back, t);
    }
}
