//! QUIC handshakes (quinn over rustls, ALPN `h3`), recorded like OONI's `quic_handshakes`
//! (probe-cli `model.ArchivalTLSOrQUICHandshakeResult`: `network: "udp"`, address, server name,
//! ALPN offered, negotiated protocol, version, peer certificates, failure, t0/t), plus the pure
//! helpers that decide where a target speaks HTTP/3.
//!
//! When is QUIC tried? A censor who blocks QUIC usually lets TCP through, so the question is asked
//! only of targets that say they speak HTTP/3: the `Alt-Svc` response header (RFC 7838) announcing
//! `h3` for the same host, seen in the probe's own final response **or** in the control's (the
//! control sees it even when the probe's TCP path is blocked). [`QuicMode::Always`] tries every
//! `https://` target on the URL's port instead, for labs and for targets known to speak HTTP/3.
//! A server that does not speak QUIC would only produce timeouts, which is why `Always` is not the
//! default: the handshake's timeout would be added to every such measurement.
//!
//! A dropped Initial packet (the usual QUIC blocking: UDP to 443 discarded) shows as
//! `generic_timeout_error`; certificate failures are classified as for TLS over TCP.

use crate::failure::unknown;
use crate::tls::TlsSettings;
use crate::trace::Trace;
use base64::Engine as _;
use censorwatch_model::binary::EncodedData;
use censorwatch_model::web_connectivity::TlsHandshake;
use censorwatch_model::{Failure, MaybeBinary};
use rustls::pki_types::CertificateDer;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The ALPN offered in QUIC handshakes.
pub const H3_ALPN: &str = "h3";

/// When the probe tries QUIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuicMode {
    /// Never.
    Off,
    /// When the target's (or the control's) response announces `h3` in `Alt-Svc` for the same host.
    #[default]
    AltSvc,
    /// For every `https://` URL, on the URL's port.
    Always,
}

/// The port of an `h3` alternative for `host` in an `Alt-Svc` header value (RFC 7838:
/// `h3=":443"; ma=86400, h3-29=":443"`). Only `h3` itself counts (drafts are ignored), and only an
/// alternative on the same host (`":443"` or `"host:443"`). `clear` announces nothing.
pub fn h3_port_from_alt_svc(value: &str, host: &str) -> Option<u16> {
    for entry in value.split(',') {
        let first = entry.split(';').next().unwrap_or("").trim();
        let Some((proto, authority)) = first.split_once('=') else {
            continue;
        };
        if proto.trim() != H3_ALPN {
            continue;
        }
        let authority = authority.trim().trim_matches('"');
        let Some((alt_host, port)) = authority.rsplit_once(':') else {
            continue;
        };
        let alt_host = alt_host.trim_start_matches('[').trim_end_matches(']');
        if !alt_host.is_empty() && !alt_host.eq_ignore_ascii_case(host) {
            continue;
        }
        if let Ok(port) = port.parse::<u16>() {
            if port != 0 {
                return Some(port);
            }
        }
    }
    None
}

/// The port of an OONI `discovered_h3_endpoint` (`"host:port"`) when it names `host`.
pub fn h3_port_from_endpoint(endpoint: &str, host: &str) -> Option<u16> {
    let (h, port) = endpoint.rsplit_once(':')?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    if !h.eq_ignore_ascii_case(host) {
        return None;
    }
    port.parse::<u16>().ok().filter(|p| *p != 0)
}

/// One QUIC handshake to do.
#[derive(Debug, Clone)]
pub struct QuicSpec<'a> {
    /// The server's UDP endpoint.
    pub address: SocketAddr,
    /// The SNI (verified against the certificate).
    pub sni: &'a str,
    /// Bind to this source address (labs and tests).
    pub local_ip: Option<IpAddr>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Transaction id of the handshake.
    pub transaction_id: i64,
    /// Tags for the record.
    pub tags: Vec<String>,
}

/// Classifies why a QUIC handshake failed, in OONI's words.
pub fn classify_connection_error(e: &quinn::ConnectionError) -> Failure {
    use quinn::ConnectionError as E;
    match e {
        E::TimedOut => Failure::GenericTimeoutError,
        E::VersionMismatch => Failure::QuicIncompatibleVersion,
        E::Reset => Failure::ConnectionReset,
        E::TransportError(t) => classify_crypto_reason(&t.reason),
        E::ConnectionClosed(c) => classify_crypto_reason(&String::from_utf8_lossy(&c.reason)),
        other => unknown(&other.to_string()),
    }
}

/// A crypto failure quinn reports as text. The verifier's own error, when there is one, is used
/// instead (see [`handshake`]); this reads the text for the rest (e.g. the server's alert).
fn classify_crypto_reason(reason: &str) -> Failure {
    if reason.contains("NotValidForName")
        || reason.contains("not valid for name")
        || reason.contains("UnrecognisedName")
    {
        Failure::SslInvalidHostname
    } else if reason.contains("UnknownIssuer") {
        Failure::SslUnknownAuthority
    } else if reason.contains("invalid peer certificate") {
        Failure::SslInvalidCertificate
    } else {
        Failure::SslFailedHandshake
    }
}

fn blank_record(spec: &QuicSpec<'_>) -> TlsHandshake {
    let mut record = TlsHandshake {
        network: Some("udp".into()),
        address: Some(spec.address.to_string()),
        cipher_suite: Some(String::new()),
        negotiated_protocol: Some(String::new()),
        no_tls_verify: Some(false),
        server_name: Some(spec.sni.to_owned()),
        tls_version: Some(String::new()),
        transaction_id: Some(spec.transaction_id),
        tags: Some(spec.tags.clone()),
        ..Default::default()
    };
    record.extra.insert("alpn".into(), json!([H3_ALPN]));
    record
}

/// The record of a handshake not attempted (the caller sets the failure).
pub fn handshake_refused(trace: &Trace, spec: &QuicSpec<'_>) -> TlsHandshake {
    let mut record = blank_record(spec);
    record.t0 = Some(trace.now());
    record.t = Some(trace.now());
    record
}

/// Performs one QUIC handshake and returns its record (the connection is closed right after: the
/// handshake is the evidence). Never waits past `spec.timeout`.
pub async fn handshake(trace: &Trace, settings: &TlsSettings, spec: &QuicSpec<'_>) -> TlsHandshake {
    let t0 = Instant::now();
    let address = spec.address.to_string();
    trace.event(
        "quic_handshake_start",
        &address,
        "udp",
        t0,
        None,
        None,
        spec.transaction_id,
        &spec.tags,
    );
    let chain = Arc::new(Mutex::new(Vec::<CertificateDer<'static>>::new()));
    let verify_error = Arc::new(Mutex::new(None));
    let mut record = blank_record(spec);
    let result = tokio::time::timeout(
        spec.timeout,
        connect(settings, spec, chain.clone(), verify_error.clone()),
    )
    .await;
    let result = match result {
        Err(_) => Err(Failure::GenericTimeoutError),
        Ok(r) => r,
    };
    // quinn reports a certificate problem only as text; the verifier kept the real error.
    let result = match (result, verify_error.lock().unwrap_or_else(|p| p.into_inner()).take()) {
        (Err(_), Some(e)) => Err(crate::failure::classify_tls(&e)),
        (r, _) => r,
    };
    let certs = chain.lock().unwrap_or_else(|p| p.into_inner()).clone();
    record.peer_certificates = Some(
        certs
            .iter()
            .map(|c| {
                MaybeBinary::Encoded(EncodedData {
                    format: Some("base64".into()),
                    data: Some(base64::engine::general_purpose::STANDARD.encode(c.as_ref())),
                    ..Default::default()
                })
            })
            .collect(),
    );
    match result {
        Ok(alpn) => {
            record.tls_version = Some("TLSv1.3".into());
            record.negotiated_protocol = Some(alpn);
        }
        Err(f) => record.failure = Some(f),
    }
    record.t0 = Some(trace.t(t0));
    record.t = Some(trace.now());
    trace.event(
        "quic_handshake_done",
        &address,
        "udp",
        t0,
        None,
        record.failure.clone(),
        spec.transaction_id,
        &spec.tags,
    );
    record
}

/// Connects, returns the negotiated ALPN, closes.
async fn connect(
    settings: &TlsSettings,
    spec: &QuicSpec<'_>,
    chain: Arc<Mutex<Vec<CertificateDer<'static>>>>,
    verify_error: Arc<Mutex<Option<rustls::Error>>>,
) -> Result<String, Failure> {
    let crypto = settings.client_config(
        &[&rustls::version::TLS13],
        true,
        chain,
        Some(verify_error),
        vec![H3_ALPN.as_bytes().to_vec()],
    );
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(crypto))
        .map_err(|e| unknown(&format!("cannot set up QUIC's TLS: {e}")))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    // The idle timeout bounds the handshake inside quinn too (the outer timeout is the real bound).
    if let Ok(idle) = quinn::IdleTimeout::try_from(spec.timeout) {
        transport.max_idle_timeout(Some(idle));
    }
    config.transport_config(Arc::new(transport));
    let local = match (spec.local_ip, spec.address) {
        (Some(ip), peer) if ip.is_ipv4() == peer.is_ipv4() => SocketAddr::new(ip, 0),
        (_, SocketAddr::V4(_)) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        (_, SocketAddr::V6(_)) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let endpoint = quinn::Endpoint::client(local).map_err(|e| crate::failure::classify_io(&e))?;
    let outcome = async {
        let connecting = endpoint
            .connect_with(config, spec.address, spec.sni)
            .map_err(|e| unknown(&format!("cannot start a QUIC handshake: {e}")))?;
        let conn = connecting.await.map_err(|e| classify_connection_error(&e))?;
        let alpn = conn
            .handshake_data()
            .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|d| d.protocol)
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default();
        conn.close(0u32.into(), b"censorwatch: handshake measured");
        Ok(alpn)
    }
    .await;
    endpoint.close(0u32.into(), b"");
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_svc_h3_on_the_same_host() {
        assert_eq!(h3_port_from_alt_svc(r#"h3=":443"; ma=86400"#, "x.com"), Some(443));
        assert_eq!(
            h3_port_from_alt_svc(r#"h3-29=":443"; ma=86400, h3=":8443"; ma=86400"#, "x.com"),
            Some(8443)
        );
        assert_eq!(h3_port_from_alt_svc(r#"h3="x.com:443""#, "X.com"), Some(443));
        assert_eq!(
            h3_port_from_alt_svc(r#"h3="[2001:db8::1]:443""#, "2001:db8::1"),
            Some(443)
        );
    }

    #[test]
    fn alt_svc_without_h3_for_this_host_announces_nothing() {
        assert_eq!(h3_port_from_alt_svc("clear", "x.com"), None);
        assert_eq!(h3_port_from_alt_svc(r#"h3-29=":443"; ma=86400"#, "x.com"), None);
        assert_eq!(h3_port_from_alt_svc(r#"h2=":443""#, "x.com"), None);
        assert_eq!(h3_port_from_alt_svc(r#"h3="cdn.example:443""#, "x.com"), None);
        assert_eq!(h3_port_from_alt_svc(r#"h3=":0""#, "x.com"), None);
        assert_eq!(h3_port_from_alt_svc(r#"h3=":http""#, "x.com"), None);
        assert_eq!(h3_port_from_alt_svc("", "x.com"), None);
        assert_eq!(h3_port_from_alt_svc("h3", "x.com"), None);
    }

    #[test]
    fn discovered_endpoints() {
        assert_eq!(h3_port_from_endpoint("x.com:443", "x.com"), Some(443));
        assert_eq!(h3_port_from_endpoint("x.com:443", "t.co"), None);
        assert_eq!(h3_port_from_endpoint("", "x.com"), None);
        assert_eq!(h3_port_from_endpoint("x.com:", "x.com"), None);
    }

    #[test]
    fn failures_in_oonis_words() {
        use quinn::ConnectionError as E;
        assert_eq!(classify_connection_error(&E::TimedOut), Failure::GenericTimeoutError);
        assert_eq!(
            classify_connection_error(&E::VersionMismatch),
            Failure::QuicIncompatibleVersion
        );
        assert_eq!(classify_connection_error(&E::Reset), Failure::ConnectionReset);
        assert_eq!(
            classify_crypto_reason("invalid peer certificate: UnknownIssuer"),
            Failure::SslUnknownAuthority
        );
        assert_eq!(
            classify_crypto_reason("invalid peer certificate: NotValidForName"),
            Failure::SslInvalidHostname
        );
        assert_eq!(
            classify_crypto_reason("invalid peer certificate: Expired"),
            Failure::SslInvalidCertificate
        );
        assert_eq!(
            classify_crypto_reason("peer is incompatible: NoCipherSuitesInCommon"),
            Failure::SslFailedHandshake
        );
    }
}
