//! End to end, as root: each scenario on a fresh lab (set up, probe, assert the verdict's status
//! and method, tear down), then a check that nothing of the lab is left — no `cw<pid>-` namespace,
//! no lab thread, no child process. Tests share one mutex: each builds its own topology, and the
//! leak check looks at the whole process.
//!
//! Without root these tests say so and return (CI runs as root, so there they run).

use censorwatch_lab::netns::{self, list_namespaces, live_lab_threads};
use censorwatch_lab::scenario::{self, Scenario};
use censorwatch_lab::{Lab, LabOptions, run_scenario};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn root_or_skip() -> bool {
    if netns::is_root() {
        return true;
    }
    eprintln!("SKIPPED: the lab tests need root (network namespaces); CI runs them as root");
    false
}

/// Children of this process (from /proc/*/stat's ppid field).
fn child_processes() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(me) {
            out.push(pid);
        }
    }
    out
}

/// Nothing of this process's labs is left.
fn assert_clean() {
    let prefix = netns::process_prefix();
    let left: Vec<String> = list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let threads = live_lab_threads();
    assert!(threads.is_empty(), "lab threads left running: {threads:?}");
    let children = child_processes();
    assert!(children.is_empty(), "child processes left: {children:?}");
    // No veth of ours in the host's namespace either (the lab never creates one there).
    let links = std::process::Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains("cw-"), "lab interfaces in the host namespace: {links}");
    // Nor an nftables table (the lab's live inside the router namespaces).
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(
        !tables.contains(censorwatch_lab::censor::TABLE),
        "lab nftables table in the host: {tables}"
    );
}

fn check(name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !root_or_skip() {
        return;
    }
    let scenario: Scenario = scenario::find(name).expect("a scenario of the catalogue");
    let result = {
        let mut lab = Lab::new(
            &[censorwatch_lab::IspLabel::new("Lab ISP", 64496, "PK")],
            LabOptions::default(),
        )
        .expect("the lab builds");
        let r = run_scenario(&mut lab, 0, &scenario);
        lab.shutdown().expect("the lab tears down");
        r
    };
    assert_clean();
    assert!(result.error.is_none(), "{name}: {:?}", result.error);
    let v = result.verdict().expect("a verdict");
    assert!(
        result.pass,
        "{name}: expected {}, got {} ({:?}); all: {:?}",
        scenario.expected.label(),
        scenario::label(v.status, v.method),
        v.reasons,
        result
            .verdicts
            .iter()
            .map(|v| scenario::label(v.status, v.method))
            .collect::<Vec<_>>()
    );
}

#[test]
fn clean() {
    check("clean");
}

#[test]
fn dns_nxdomain() {
    check("dns-nxdomain");
}

#[test]
fn dns_bogon() {
    check("dns-bogon");
}

#[test]
fn dns_blockpage() {
    check("dns-blockpage");
}

#[test]
fn dns_injection() {
    check("dns-injection");
}

#[test]
fn ip_blackhole() {
    check("ip-blackhole");
}

#[test]
fn tcp_reset() {
    check("tcp-reset");
}

#[test]
fn sni_reset() {
    check("sni-reset");
}

#[test]
fn sni_blackhole() {
    check("sni-blackhole");
}

#[test]
fn sni_fin() {
    check("sni-fin");
}

#[test]
fn http_host_reset() {
    check("http-host-reset");
}

#[test]
fn http_blockpage() {
    check("http-blockpage");
}

#[test]
fn quic_blocked() {
    check("quic-blocked");
}

#[test]
fn sni_throttle() {
    check("sni-throttle");
}

/// Bytes per second of `https://{host}/static/large.bin` read for `window` from the client.
async fn tls_rate(ca: std::path::PathBuf, host: &'static str, window: std::time::Duration) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&ca).unwrap();
    for cert in rustls_pemfile_certs(&pem) {
        roots.add(cert).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let ip = censorwatch_lab::hosts::site(host).unwrap().ip;
    let tcp = tokio::net::TcpStream::connect((ip, 443)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(host).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(format!("GET /static/large.bin HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    while start.elapsed() < window {
        match tokio::time::timeout(window.saturating_sub(start.elapsed()), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => total += n,
        }
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// The certificates of a PEM file (the lab CA).
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| c.unwrap())
        .collect()
}

/// The lab's side of the throttling scenario: the DPI holds abs.twimg.com to about 150 kbit/s
/// while the decoy (example.org) is fast over the same path.
#[test]
fn sni_throttle_holds_the_rate() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !root_or_skip() {
        return;
    }
    let scenario = scenario::find("sni-throttle").unwrap();
    let (throttled, decoy) = {
        let mut lab = Lab::new(
            &[censorwatch_lab::IspLabel::new("Lab ISP", 64496, "PK")],
            LabOptions::default(),
        )
        .expect("the lab builds");
        lab.apply(0, &scenario.censor).unwrap();
        let window = std::time::Duration::from_secs(2);
        let ca = lab.ca_path().to_owned();
        let throttled = lab
            .run_in_client(0, tls_rate(ca.clone(), "abs.twimg.com", window))
            .unwrap();
        let decoy = lab.run_in_client(0, tls_rate(ca, "example.org", window)).unwrap();
        lab.shutdown().unwrap();
        (throttled, decoy)
    };
    assert_clean();
    let limit = scenario::THROTTLE_BPS as f64 / 8.0;
    // A token bucket lets a burst through first; over 2 s the rate stays within 2× the limit.
    assert!(
        throttled < 2.0 * limit,
        "throttled flow ran at {throttled:.0} B/s (limit {limit:.0})"
    );
    assert!(
        throttled > 0.3 * limit,
        "throttled flow barely moved: {throttled:.0} B/s"
    );
    assert!(
        decoy > 10.0 * throttled,
        "decoy {decoy:.0} B/s vs throttled {throttled:.0} B/s"
    );
}

#[test]
fn intermittent() {
    check("intermittent");
}

#[test]
fn website_down() {
    check("website-down");
}

#[test]
fn geoblock_captcha() {
    check("geoblock-captcha");
}

#[test]
fn panic_mid_scenario_leaves_the_host_clean() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !root_or_skip() {
        return;
    }
    let caught = std::panic::catch_unwind(|| {
        let mut lab = Lab::new(
            &[censorwatch_lab::IspLabel::new("Lab ISP", 64496, "PK")],
            LabOptions::default(),
        )
        .expect("the lab builds");
        lab.apply(0, &scenario::find("sni-reset").unwrap().censor)
            .expect("the censor starts");
        let prefix = netns::process_prefix();
        let live = list_namespaces().into_iter().filter(|n| n.starts_with(&prefix)).count();
        assert_eq!(live, 3, "client, router and internet namespaces exist mid-scenario");
        assert!(!live_lab_threads().is_empty());
        panic!("a scenario failing mid-way");
    });
    assert!(caught.is_err(), "the scenario panicked");
    assert_clean();
}
