//! One HTTP/1.1 GET over an established (plain or TLS) stream, with a browser's headers and a
//! capped body, recorded as an OONI df-001 transaction; plus the pure helpers around it: redirect
//! targets, page titles, header maps.
//!
//! The probe drives each hop itself (rather than letting a client follow redirects) so that every
//! hop's DNS, connect and handshake are observations of their own, as OONI's LTE records them.

use crate::failure::{classify_io, unknown};
use crate::trace::Trace;
use base64::Engine as _;
use bytes::Bytes;
use censorwatch_model::binary::EncodedData;
use censorwatch_model::web_connectivity::{Headers, HttpRequest, HttpResponse, HttpTransaction};
use censorwatch_model::{Failure, MaybeBinary};
use http_body_util::{BodyExt, Empty};
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

/// Largest body kept (OONI's probes keep a similar snapshot).
pub const DEFAULT_MAX_BODY: usize = 512 * 1024;
/// Redirects followed before giving up (as browsers and OONI do).
pub const MAX_REDIRECTS: usize = 10;

/// A desktop browser's request headers (the values OONI's probe-cli sends, `model/http.go`).
pub const BROWSER_HEADERS: &[(&str, &str)] = &[
    (
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("Accept-Language", "en-US,en;q=0.9"),
    (
        "User-Agent",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
];

/// One GET to do.
#[derive(Debug, Clone)]
pub struct FetchSpec<'a> {
    /// The URL requested.
    pub url: &'a Url,
    /// `ip:port` of the peer, for the record.
    pub address: String,
    /// ALPN negotiated on the stream (`""` for plain HTTP).
    pub alpn: String,
    /// Give up after this long (head and body).
    pub timeout: Duration,
    /// Keep at most this many body bytes.
    pub max_body: usize,
    /// Transaction id of the connection.
    pub transaction_id: i64,
    /// Tags for the record.
    pub tags: Vec<String>,
}

/// What a GET produced.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The df-001 record.
    pub record: HttpTransaction,
    /// The status code, if a response head arrived.
    pub status: Option<u16>,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
    /// The body bytes kept.
    pub body: Vec<u8>,
    /// Whether more body was sent than kept.
    pub truncated: bool,
    /// Response headers (first value of each).
    pub headers: Headers,
}

impl Fetched {
    /// The failure, if the GET failed.
    pub fn failure(&self) -> Option<&Failure> {
        self.record.failure.as_ref()
    }
}

/// The page title: the text of the first `<title>`, whitespace collapsed, at most 128 characters
/// (probe-cli's limit).
pub fn extract_title(body: &[u8]) -> String {
    static RE: OnceLock<regex::bytes::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::bytes::Regex::new(r"(?is-u)<title[^>]*>(.*?)</title>").expect("the title pattern is valid")
    });
    let Some(m) = re.captures(body).and_then(|c| c.get(1)) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(m.as_bytes());
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(128)
        .collect()
}

/// Where a redirect goes: `location` resolved against `base`. A location without a host is
/// `http_invalid_redirect_location_host` (probe-cli's rule, ooni/probe#2628); a scheme other than
/// http(s) is `http_unexpected_redirect_url`.
pub fn redirect_target(base: &Url, location: &str) -> Result<Url, Failure> {
    let next = base
        .join(location.trim())
        .map_err(|_| Failure::HttpInvalidRedirectLocationHost)?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(Failure::HttpUnexpectedRedirectUrl);
    }
    if next.host_str().is_none_or(str::is_empty) {
        return Err(Failure::HttpInvalidRedirectLocationHost);
    }
    Ok(next)
}

/// Bytes as OONI's MaybeBinaryData: text when UTF-8, base64 otherwise.
pub fn maybe_binary(bytes: &[u8]) -> MaybeBinary {
    match std::str::from_utf8(bytes) {
        Ok(s) => MaybeBinary::Text(s.to_owned()),
        Err(_) => MaybeBinary::Encoded(EncodedData {
            format: Some("base64".into()),
            data: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            ..Default::default()
        }),
    }
}

/// A header map as OONI writes it: a map of first values and the full ordered list.
pub fn header_maps(headers: &HeaderMap) -> (Headers, Vec<(String, MaybeBinary)>) {
    let mut map = Headers::new();
    let mut list = Vec::new();
    for (name, value) in headers {
        let name = canonical_header_name(name.as_str());
        let value = maybe_binary(value.as_bytes());
        map.entry(name.clone()).or_insert_with(|| value.clone());
        list.push((name, value));
    }
    (map, list)
}

/// `content-type` → `Content-Type` (Go's canonical form, which OONI data uses).
pub fn canonical_header_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The `Host` header for `url`: its host, with the port when one is written.
pub(crate) fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// A connection task that is stopped when the exchange ends, however it ends (a timeout drops the
/// exchange mid-way; without this the connection would live on, detached, until the peer closes).
pub(crate) struct AbortOnDrop<T>(pub(crate) Option<tokio::task::JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    /// Stops the task and waits until it is gone.
    pub(crate) async fn finish(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
            let _ = h.await;
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// The request target for `url`: its path, with the query when there is one.
pub(crate) fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Finds the io::Error inside a hyper error, for classification.
pub(crate) fn classify_hyper(e: &hyper::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return classify_io(io);
        }
        source = s.source();
    }
    if e.is_incomplete_message() {
        Failure::EofError
    } else if e.is_timeout() {
        Failure::GenericTimeoutError
    } else {
        unknown(&e.to_string())
    }
}

/// Performs the GET over `stream`.
pub async fn get<S>(trace: &Trace, stream: S, spec: &FetchSpec<'_>) -> Fetched
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let t0 = Instant::now();
    let request_headers: Vec<(String, String)> = std::iter::once(("Host".to_owned(), host_header(spec.url)))
        .chain(BROWSER_HEADERS.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let mut request_record = HttpRequest {
        url: Some(spec.url.to_string()),
        method: Some("GET".into()),
        headers: Some(
            request_headers
                .iter()
                .map(|(k, v)| (k.clone(), MaybeBinary::Text(v.clone())))
                .collect(),
        ),
        headers_list: Some(
            request_headers
                .iter()
                .map(|(k, v)| (k.clone(), MaybeBinary::Text(v.clone())))
                .collect(),
        ),
        body: Some(MaybeBinary::Text(String::new())),
        body_is_truncated: Some(false),
        x_transport: Some("tcp".into()),
        ..Default::default()
    };
    request_record.extra.insert(
        "tor".into(),
        serde_json::json!({"exit_ip": null, "exit_name": null, "is_tor": false}),
    );
    let mut out = Fetched {
        record: HttpTransaction {
            network: Some("tcp".into()),
            address: Some(spec.address.clone()),
            alpn: Some(spec.alpn.clone()),
            request: Some(request_record),
            transaction_id: Some(spec.transaction_id),
            tags: Some(spec.tags.clone()),
            ..Default::default()
        },
        status: None,
        location: None,
        body: Vec::new(),
        truncated: false,
        headers: Headers::new(),
    };
    let work = exchange(stream, spec, &request_headers, &mut out);
    let failure = match tokio::time::timeout(spec.timeout, work).await {
        Err(_) => Some(Failure::GenericTimeoutError),
        Ok(r) => r.err(),
    };
    if out.status.is_some() {
        let resp = out.record.response.get_or_insert_with(HttpResponse::default);
        resp.body = Some(maybe_binary(&out.body));
        resp.body_is_truncated = Some(out.truncated);
    }
    out.record.failure = failure;
    out.record.t0 = Some(trace.t(t0));
    out.record.t = Some(trace.now());
    out
}

async fn exchange<S>(
    stream: S,
    spec: &FetchSpec<'_>,
    headers: &[(String, String)],
    out: &mut Fetched,
) -> Result<(), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| classify_hyper(&e))?;
    let mut driver = AbortOnDrop(Some(tokio::spawn(conn)));
    let result = async {
        let path = path_and_query(spec.url);
        let mut builder = hyper::Request::builder().method("GET").uri(path);
        for (k, v) in headers {
            builder = builder.header(k, v);
        }
        let request = builder
            .body(Empty::<Bytes>::new())
            .map_err(|e| unknown(&format!("cannot build the request: {e}")))?;
        let response = sender.send_request(request).await.map_err(|e| classify_hyper(&e))?;
        let status = response.status().as_u16();
        let (headers, list) = header_maps(response.headers());
        out.status = Some(status);
        out.location = response
            .headers()
            .get(hyper::header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        out.headers = headers.clone();
        out.record.response = Some(HttpResponse {
            code: Some(i64::from(status)),
            headers: Some(headers),
            headers_list: Some(list),
            ..Default::default()
        });
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify_hyper(&e))?;
            if let Ok(data) = frame.into_data() {
                let room = spec.max_body.saturating_sub(out.body.len());
                if data.len() > room {
                    out.body.extend_from_slice(&data[..room]);
                    out.truncated = true;
                    break;
                }
                out.body.extend_from_slice(&data);
            }
        }
        Ok(())
    }
    .await;
    // Wait until the connection is dropped, so its last events are in the trace.
    driver.finish().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(
            extract_title(b"<html><head><TITLE>\n  X. It's  what's happening\n</TITLE>"),
            "X. It's what's happening"
        );
        assert_eq!(extract_title(b"<title lang=en>Hi</title>"), "Hi");
        assert_eq!(extract_title(b"no title"), "");
        assert_eq!(
            extract_title(format!("<title>{}</title>", "a".repeat(300)).as_bytes()).len(),
            128
        );
        assert_eq!(extract_title(b"<title>\xff\xfe</title>"), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn redirects() {
        let base = Url::parse("https://twitter.com/a/b").unwrap();
        assert_eq!(
            redirect_target(&base, "https://x.com/").unwrap().as_str(),
            "https://x.com/"
        );
        assert_eq!(
            redirect_target(&base, "/home").unwrap().as_str(),
            "https://twitter.com/home"
        );
        assert_eq!(redirect_target(&base, "c").unwrap().as_str(), "https://twitter.com/a/c");
        assert_eq!(
            redirect_target(&base, "http://").unwrap_err(),
            Failure::HttpInvalidRedirectLocationHost
        );
        assert_eq!(
            redirect_target(&base, "https://").unwrap_err(),
            Failure::HttpInvalidRedirectLocationHost
        );
        assert_eq!(
            redirect_target(&base, "ftp://x.com/").unwrap_err(),
            Failure::HttpUnexpectedRedirectUrl
        );
    }

    #[test]
    fn header_names_and_bodies() {
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
        assert_eq!(
            canonical_header_name("x-twitter-response-tags"),
            "X-Twitter-Response-Tags"
        );
        assert_eq!(maybe_binary(b"ok"), MaybeBinary::Text("ok".into()));
        let b = maybe_binary(&[0xff, 0x00]);
        assert_eq!(b.bytes().unwrap().as_ref(), &[0xff, 0x00]);
        let mut h = HeaderMap::new();
        h.append("set-cookie", "a=1".parse().unwrap());
        h.append("set-cookie", "b=2".parse().unwrap());
        let (map, list) = header_maps(&h);
        assert_eq!(map["Set-Cookie"], MaybeBinary::Text("a=1".into()));
        assert_eq!(list.len(), 2);
    }
}
