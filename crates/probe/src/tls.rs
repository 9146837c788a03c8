//! TLS handshakes with rustls, recorded as OONI df-006 handshakes: SNI, version, cipher suite,
//! ALPN, the peer's certificate chain (kept even when verification fails, because a censor's
//! certificate is evidence), and the failure in OONI's words.
//!
//! A verified handshake uses the Mozilla roots (webpki-roots) plus any CA the user adds (a lab's
//! private CA). The SNI A/B decoy handshake is unverified on purpose (`no_tls_verify: true`): it asks
//! only whether the address completes a handshake for another name.

use crate::failure::classify_io;
use crate::trace::{Trace, Traced};
use base64::Engine as _;
use censorwatch_model::binary::EncodedData;
use censorwatch_model::web_connectivity::TlsHandshake;
use censorwatch_model::{Failure, MaybeBinary};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A TLS stream over a traced TCP stream.
pub type Stream = TlsStream<Traced<TcpStream>>;

/// Roots and crypto shared by every handshake. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    provider: Arc<CryptoProvider>,
    verifier: Arc<WebPkiServerVerifier>,
}

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSettingsError {
    /// The CA file could not be read or held no certificate.
    #[error("cannot use {path} as a CA file: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the roots.
    #[error("cannot build a certificate verifier: {0}")]
    Verifier(String),
}

impl TlsSettings {
    /// The Mozilla roots plus every certificate in the PEM files `extra_cas`.
    pub fn new(extra_cas: &[&Path]) -> Result<TlsSettings, TlsSettingsError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in extra_cas {
            let err = |reason: String| TlsSettingsError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.to_string()))?;
            if certs.is_empty() {
                return Err(err("no PEM certificate in it".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| err(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsSettingsError::Verifier(e.to_string()))?;
        Ok(TlsSettings { provider, verifier })
    }

    /// A verifying connector that records nothing (for talking to the control).
    pub fn plain_connector(&self) -> TlsConnector {
        self.connector(true, Arc::new(Mutex::new(Vec::new())))
    }

    fn connector(&self, verify: bool, chain: Arc<Mutex<Vec<CertificateDer<'static>>>>) -> TlsConnector {
        let versions: &[&rustls::SupportedProtocolVersion] = rustls::DEFAULT_VERSIONS;
        let config = self.client_config(versions, verify, chain, None, vec![b"http/1.1".to_vec()]);
        TlsConnector::from(Arc::new(config))
    }

    /// A client config with these roots that records the peer's chain into `chain` (verifying it
    /// unless `verify` is false) and the verifier's error into `verify_error`, offering `alpn`.
    /// QUIC uses it with TLS 1.3 only.
    pub(crate) fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        verify: bool,
        chain: Arc<Mutex<Vec<CertificateDer<'static>>>>,
        verify_error: Option<Arc<Mutex<Option<rustls::Error>>>>,
        alpn: Vec<Vec<u8>>,
    ) -> rustls::ClientConfig {
        let verifier = Arc::new(Recording {
            inner: verify.then(|| self.verifier.clone()),
            provider: self.provider.clone(),
            chain,
            verify_error,
        });
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(versions)
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        config
    }
}

/// Records the chain, then verifies with webpki (or not at all, for the decoy).
#[derive(Debug)]
struct Recording {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    chain: Arc<Mutex<Vec<CertificateDer<'static>>>>,
    /// Where the verifier's own error goes (QUIC reports it only as text).
    verify_error: Option<Arc<Mutex<Option<rustls::Error>>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        {
            let mut chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
            chain.clear();
            chain.push(end_entity.clone().into_owned());
            chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        let result = match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Ok(ServerCertVerified::assertion()),
        };
        if let (Err(e), Some(slot)) = (&result, &self.verify_error) {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// One handshake to do.
#[derive(Debug, Clone)]
pub struct HandshakeSpec<'a> {
    /// The peer.
    pub address: SocketAddr,
    /// The name sent (and verified, when `verify`).
    pub sni: &'a str,
    /// Verify the chain and the name.
    pub verify: bool,
    /// Give up after this long.
    pub timeout: Duration,
    /// Transaction id of the connection.
    pub transaction_id: i64,
    /// Tags for the record.
    pub tags: Vec<String>,
}

/// Go's names for TLS versions, as OONI writes them.
fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// Go's (IANA) names for cipher suites: rustls says `TLS13_AES_128_GCM_SHA256`, Go and OONI
/// `TLS_AES_128_GCM_SHA256`.
fn suite_name(s: rustls::CipherSuite) -> String {
    let name = s.as_str().map(str::to_owned).unwrap_or_else(|| format!("{s:?}"));
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// Performs the handshake over `tcp`, returning its record and, on success, the stream.
pub async fn handshake(
    trace: &Trace,
    settings: &TlsSettings,
    tcp: Traced<TcpStream>,
    spec: &HandshakeSpec<'_>,
) -> (TlsHandshake, Option<Stream>) {
    let t0 = Instant::now();
    let address = spec.address.to_string();
    trace.event(
        "tls_handshake_start",
        &address,
        "tcp",
        t0,
        None,
        None,
        spec.transaction_id,
        &spec.tags,
    );
    let chain = Arc::new(Mutex::new(Vec::new()));
    let connector = settings.connector(spec.verify, chain.clone());
    let mut record = TlsHandshake {
        network: Some("tcp".into()),
        address: Some(address.clone()),
        no_tls_verify: Some(!spec.verify),
        server_name: Some(spec.sni.to_owned()),
        transaction_id: Some(spec.transaction_id),
        tags: Some(spec.tags.clone()),
        cipher_suite: Some(String::new()),
        negotiated_protocol: Some(String::new()),
        tls_version: Some(String::new()),
        ..Default::default()
    };
    let result = match ServerName::try_from(spec.sni.to_owned()) {
        Err(e) => Err(crate::failure::unknown(&format!(
            "{:?} is not a TLS server name: {e}",
            spec.sni
        ))),
        Ok(name) => match tokio::time::timeout(spec.timeout, connector.connect(name, tcp)).await {
            Err(_) => Err(Failure::GenericTimeoutError),
            Ok(Err(e)) => Err(classify_io(&e)),
            Ok(Ok(stream)) => Ok(stream),
        },
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
    let stream = match result {
        Ok(stream) => {
            let (_, conn) = stream.get_ref();
            if let Some(v) = conn.protocol_version() {
                record.tls_version = Some(version_name(v));
            }
            if let Some(s) = conn.negotiated_cipher_suite() {
                record.cipher_suite = Some(suite_name(s.suite()));
            }
            if let Some(p) = conn.alpn_protocol() {
                record.negotiated_protocol = Some(String::from_utf8_lossy(p).into_owned());
            }
            Some(stream)
        }
        Err(f) => {
            record.failure = Some(f);
            None
        }
    };
    record.t0 = Some(trace.t(t0));
    record.t = Some(trace.now());
    trace.event(
        "tls_handshake_done",
        &address,
        "tcp",
        t0,
        None,
        record.failure.clone(),
        spec.transaction_id,
        &spec.tags,
    );
    (record, stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_go() {
        assert_eq!(
            suite_name(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            suite_name(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
        assert_eq!(version_name(rustls::ProtocolVersion::TLSv1_3), "TLSv1.3");
    }

    #[test]
    fn a_bad_ca_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("cw-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = TlsSettings::new(&[empty.as_path()]).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = TlsSettings::new(&[dir.join("missing.pem").as_path()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        assert!(TlsSettings::new(&[]).is_ok());
    }
}
