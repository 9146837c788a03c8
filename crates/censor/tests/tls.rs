//! Real TLS (rustls client and server on loopback) through the DPI proxy: the sniffer reads a
//! real ClientHello's SNI (whole, and arriving in pieces), a forwarded handshake completes
//! end to end, and an SNI rule resets the handshake of the blocked name only.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use censorwatch_censor::sniff::{Sniffed, sniff};
use censorwatch_censor::{Action, DpiConfig, DpiStats, FlowRule, Layer, NameMatch, serve_dpi};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const NAMES: [&str; 2] = ["x.com", "example.org"];

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config for NAMES and a client config trusting it.
fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let certified = rcgen::generate_simple_self_signed(NAMES.map(String::from).to_vec()).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// The bytes a real rustls client sends first for `name`.
fn real_client_hello(client: &Arc<ClientConfig>, name: &str) -> Vec<u8> {
    let mut connection =
        rustls::ClientConnection::new(Arc::clone(client), ServerName::try_from(name.to_owned()).unwrap()).unwrap();
    let mut bytes = Vec::new();
    while connection.wants_write() {
        connection.write_tls(&mut bytes).unwrap();
    }
    bytes
}

#[test]
fn the_sniffer_reads_a_real_client_hello() {
    let (_, client) = configs();
    let hello = real_client_hello(&client, "abs.twimg.com");
    assert_eq!(
        sniff(&hello),
        Sniffed::Tls {
            sni: Some("abs.twimg.com".into())
        }
    );
    for cut in 0..hello.len() {
        assert_eq!(sniff(&hello[..cut]), Sniffed::Incomplete, "prefix of {cut} bytes");
    }
}

/// A TLS server saying hello to whoever completes a handshake.
async fn tls_server(config: Arc<ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let name = tls.get_ref().1.server_name().unwrap_or("-").to_owned();
                    let _ = tls.write_all(format!("hello {name}").as_bytes()).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn real_handshakes_through_the_proxy_forwarded_and_reset_by_sni() {
    let (server_config, client_config) = configs();
    let server = tls_server(server_config).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let stats = DpiStats::new();
    let config = DpiConfig {
        rules: vec![FlowRule::always(NameMatch::exact("x.com"), Layer::Sni, Action::Reset)],
        fallback_upstream: Some(server),
        sniff_timeout: Duration::from_secs(2),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_dpi(listener, config, stats.clone(), async {
        let _ = stopped.await;
    }));
    let connector = TlsConnector::from(client_config);

    let tcp = TcpStream::connect(proxy).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("example.org").unwrap(), tcp)
        .await
        .unwrap();
    let mut greeting = String::new();
    tls.read_to_string(&mut greeting).await.unwrap();
    assert_eq!(greeting, "hello example.org");

    let tcp = TcpStream::connect(proxy).await.unwrap();
    let failed = tokio::time::timeout(
        Duration::from_secs(5),
        connector.connect(ServerName::try_from("x.com").unwrap(), tcp),
    )
    .await
    .unwrap();
    assert_eq!(failed.err().map(|e| e.kind()), Some(ErrorKind::ConnectionReset));

    let snapshot = stats.snapshot();
    assert_eq!((snapshot.flows_tls, snapshot.forwarded, snapshot.reset), (2, 1, 1));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
