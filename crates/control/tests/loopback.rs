//! End to end on loopback: a fake resolver per side, TLS and HTTP targets with a test CA, the
//! control server, and the probe — each scenario asserts the measurement's test keys and the verdict
//! `censorwatch-verdict` gave.
//!
//! The censor: the probe connects from 127.0.0.2 and the control from 127.0.0.3, and a target's
//! policy treats the two differently; the probe's resolver may lie where the control's does not.
//! Only 127.0.0.0/8 is used.

use censorwatch_control::{ControlOptions, build_state, serve};
use censorwatch_model::web_connectivity::WebConnectivityTestKeys;
use censorwatch_model::{Method, Status};
use censorwatch_probe::dns::DnsConfig;
use censorwatch_probe::testbed::{
    Action, DnsAnswer, FakeResolver, Handler, Policy, QuicTarget, Reply, Target, TestCa, serve_all, table,
};
use censorwatch_probe::{ControlClient, NetworkInfo, Outcome, Probe, ProbeConfig, TlsSettings};
use censorwatch_verdict::Analyzer;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const PROBE_IP: &str = "127.0.0.2";
const CONTROL_IP: &str = "127.0.0.3";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn from_probe(peer: IpAddr) -> bool {
    peer == ip(PROBE_IP)
}

fn pages() -> Handler {
    Arc::new(|host, path| Reply::page(&format!("{host}{path}")))
}

struct Lab {
    dir: PathBuf,
    ca: TestCa,
    control: SocketAddr,
    _control_task: tokio::task::JoinHandle<()>,
    _resolvers: Vec<FakeResolver>,
    probe_resolver: SocketAddr,
    http_timeout: Duration,
}

/// Starts a control whose resolver answers `control_dns`, and returns the lab; the probe's
/// resolver answers `probe_dns`.
async fn lab(probe_dns: &[(&str, DnsAnswer)], control_dns: &[(&str, DnsAnswer)]) -> Lab {
    let dir = std::env::temp_dir().join(format!("cw-probe-lab-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = TestCa::new("censorwatch test CA");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("asn.csv"), "127.0.0.0,127.0.0.255,64512,Loopback Test ISP\n").unwrap();
    std::fs::write(dir.join("cc.csv"), "127.0.0.0,127.0.0.255,PK\n").unwrap();
    let pr = FakeResolver::start(table(probe_dns)).await;
    let cr = FakeResolver::start(table(control_dns)).await;
    let options = ControlOptions {
        asn_db: Some(dir.join("asn.csv")),
        country_db: Some(dir.join("cc.csv")),
        allow_private: true,
        resolver: Some(cr.addr()),
        ca_files: vec![dir.join("ca.pem")],
        local_ip: Some(ip(CONTROL_IP)),
        connect_timeout: Duration::from_secs(2),
        http_timeout: Duration::from_secs(2),
        ..ControlOptions::default()
    };
    let state = build_state(&options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.4:0").await.unwrap();
    let control = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        serve(listener, state, std::future::pending()).await.unwrap();
    });
    Lab {
        dir,
        ca,
        control,
        _control_task: task,
        probe_resolver: pr.addr(),
        _resolvers: vec![pr, cr],
        http_timeout: Duration::from_secs(2),
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

impl Lab {
    async fn probe(&self) -> Probe {
        let tls = TlsSettings::new(&[self.dir.join("ca.pem").as_path()]).unwrap();
        let mut config = ProbeConfig::new(tls.clone());
        config.dns = DnsConfig {
            getaddrinfo: false,
            udp: Some(self.probe_resolver),
            timeout: Duration::from_secs(2),
            duplicate_window: Duration::from_millis(100),
            udp_is_second_opinion: false,
        };
        config.connect_timeout = Duration::from_secs(2);
        config.tls_timeout = Duration::from_secs(2);
        config.http_timeout = self.http_timeout;
        config.local_ip = Some(ip(PROBE_IP));
        let client = ControlClient::new(
            format!("http://{}/", self.control).parse().unwrap(),
            tls,
            Duration::from_secs(15),
        )
        .unwrap();
        let who = client.whoami().await.unwrap();
        config.network = NetworkInfo {
            asn: who.probe_asn,
            cc: who.probe_cc,
            network_name: who.probe_network_name,
            public_ip: Some(who.ip),
        };
        config.control = Some(client);
        Probe::new(config, Arc::new(Analyzer::with_builtin_fingerprints()))
    }

    async fn measure(&self, url: &str) -> (Outcome, WebConnectivityTestKeys) {
        let outcome = self.probe().await.measure(url).await.unwrap();
        let keys = outcome.measurement.web_connectivity().unwrap().unwrap();
        // The measurement as written judges the same when read back (as `analyze` would).
        let text = serde_json::to_string(&outcome.measurement).unwrap();
        let reread = censorwatch_model::Measurement::from_slice(text.as_bytes()).unwrap();
        let again = Analyzer::with_builtin_fingerprints().verdict(&reread).unwrap();
        assert_eq!(again, outcome.verdict, "the verdict changed on re-reading");
        assert_ooni_conventions(&serde_json::from_str(&text).unwrap());
        (outcome, keys)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What ts-017 / df-000..df-008 (see the reference notes) promise a consumer of any measurement:
/// failure strings from df-007, `t0 <= t` in seconds from the start, requests last hop first,
/// handshakes and requests on a recorded connection, envelope keys present.
fn assert_ooni_conventions(m: &serde_json::Value) {
    for key in [
        "annotations",
        "data_format_version",
        "input",
        "measurement_start_time",
        "probe_asn",
        "probe_cc",
        "probe_ip",
        "report_id",
        "resolver_ip",
        "software_name",
        "software_version",
        "test_keys",
        "test_name",
        "test_runtime",
        "test_start_time",
        "test_version",
    ] {
        assert!(m.get(key).is_some(), "envelope key {key} is missing");
    }
    let k = &m["test_keys"];
    let mut failures = Vec::new();
    let mut collect = |v: &serde_json::Value| {
        if let Some(f) = v.as_str() {
            failures.push(f.to_owned());
        }
    };
    for list in ["queries", "tcp_connect", "tls_handshakes", "requests", "network_events"] {
        for item in k[list].as_array().unwrap() {
            collect(&item["failure"]);
            collect(&item["status"]["failure"]);
            let (t0, t) = (item["t0"].as_f64().unwrap(), item["t"].as_f64().unwrap());
            assert!(0.0 <= t0 && t0 <= t, "{list}: t0 {t0} t {t}");
            assert!(
                item["transaction_id"].as_i64().unwrap() > 0,
                "{list} without a transaction id"
            );
        }
    }
    for key in ["dns_experiment_failure", "http_experiment_failure", "control_failure"] {
        collect(&k[key]);
    }
    for f in failures {
        let parsed = censorwatch_model::Failure::parse(&f);
        assert!(
            !matches!(parsed, censorwatch_model::Failure::Other(_)),
            "{f:?} is not a df-007 failure string"
        );
    }
    let starts: Vec<f64> = k["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["t0"].as_f64().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] >= w[1]),
        "requests are not last hop first: {starts:?}"
    );
    let connections: Vec<i64> = k["tcp_connect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["transaction_id"].as_i64().unwrap())
        .collect();
    for list in ["tls_handshakes", "requests"] {
        for item in k[list].as_array().unwrap() {
            assert!(
                connections.contains(&item["transaction_id"].as_i64().unwrap()),
                "{list} entry on no recorded connection"
            );
        }
    }
}

fn addrs(ips: &[&str]) -> DnsAnswer {
    DnsAnswer::Addrs(ips.iter().map(|s| ip(s)).collect())
}

fn failure_str(f: &Option<censorwatch_model::Failure>) -> Option<&str> {
    f.as_ref().map(|f| f.as_str())
}

fn status_method(o: &Outcome) -> (Status, Option<Method>) {
    (o.verdict.status, o.verdict.method)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_over_https_is_ok_and_fully_recorded() {
    let dns = [("x.com", addrs(&["127.0.0.10"]))];
    let lab = lab(&dns, &dns).await;
    let target = Target::https(
        ip("127.0.0.10"),
        0,
        lab.ca.server_config(&["x.com"]),
        serve_all(),
        pages(),
    )
    .await;
    let url = format!("https://x.com:{}/", target.port());
    let (o, k) = lab.measure(&url).await;
    assert_eq!(status_method(&o), (Status::Ok, None), "{:?}", o.verdict);
    let m = &o.measurement;
    assert_eq!(m.software_name.as_deref(), Some("censorwatch"));
    assert_eq!(m.test_name.as_deref(), Some("web_connectivity"));
    assert_eq!(m.probe_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(m.probe_asn.as_deref(), Some("AS64512"));
    assert_eq!(m.probe_cc.as_deref(), Some("PK"));
    assert_eq!(m.probe_network_name.as_deref(), Some("Loopback Test ISP"));
    assert_eq!(m.data_format_version.as_deref(), Some("0.2.0"));
    let start = m.measurement_start_time.as_deref().unwrap();
    assert_eq!(start.len(), 19, "{start}");
    assert_eq!(&start[10..11], " ");
    // DNS: A and AAAA over UDP with rcodes and the raw reply.
    let queries = k.queries.as_ref().unwrap();
    let a = queries.iter().find(|q| q.query_type.as_deref() == Some("A")).unwrap();
    assert_eq!(a.engine.as_deref(), Some("udp"));
    assert_eq!(a.rcode, Some(0));
    assert!(a.raw_response.as_deref().is_some_and(|r| !r.is_empty()));
    assert_eq!(a.answers.as_ref().unwrap()[0].ipv4.as_deref(), Some("127.0.0.10"));
    let aaaa = queries
        .iter()
        .find(|q| q.query_type.as_deref() == Some("AAAA"))
        .unwrap();
    assert_eq!(failure_str(&aaaa.failure), Some("dns_no_answer"));
    assert!(k.x_dns_duplicate_responses.as_ref().unwrap().is_empty());
    // TCP, TLS, HTTP joined by transaction id.
    let tcp = &k.tcp_connect.as_ref().unwrap()[0];
    assert_eq!(tcp.status.as_ref().unwrap().success, Some(true));
    let tls = &k.tls_handshakes.as_ref().unwrap()[0];
    assert_eq!(tls.failure, None);
    assert_eq!(tls.server_name.as_deref(), Some("x.com"));
    assert_eq!(tls.no_tls_verify, Some(false));
    assert_eq!(tls.tls_version.as_deref(), Some("TLSv1.3"));
    assert_eq!(tls.peer_certificates.as_ref().unwrap().len(), 2, "leaf and CA");
    assert_eq!(tls.transaction_id, tcp.transaction_id);
    let req = &k.requests.as_ref().unwrap()[0];
    assert_eq!(req.transaction_id, tcp.transaction_id);
    let resp = req.response.as_ref().unwrap();
    assert_eq!(resp.code, Some(200));
    assert!(resp.body.as_ref().unwrap().text().contains("<title>x.com/</title>"));
    assert_eq!(k.http_experiment_failure, None);
    // Events with times.
    let ops: Vec<&str> = k
        .network_events
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|e| e.operation.as_deref())
        .collect();
    for op in [
        "connect",
        "tls_handshake_start",
        "tls_handshake_done",
        "write",
        "read",
        "bytes_received_cumulative",
    ] {
        assert!(ops.contains(&op), "no {op} event in {ops:?}");
    }
    // The control's view, and OONI's opinion keys filled from the verdict.
    let control = k.control.as_ref().unwrap();
    assert_eq!(control.http_request.as_ref().unwrap().status_code, Some(200));
    assert_eq!(control.http_request.as_ref().unwrap().title.as_deref(), Some("x.com/"));
    assert_eq!(
        control.dns.as_ref().unwrap().addrs.as_ref().unwrap(),
        &vec!["127.0.0.10".to_string()]
    );
    let ep = format!("127.0.0.10:{}", target.port());
    assert_eq!(control.tcp_connect.as_ref().unwrap()[&ep].status, Some(true));
    assert_eq!(control.tls_handshake.as_ref().unwrap()[&ep].status, Some(true));
    assert_eq!(control.ip_info.as_ref().unwrap()["127.0.0.10"].asn, Some(64512));
    assert_eq!(
        control.ip_info.as_ref().unwrap()["127.0.0.10"].flags,
        Some(1 | 2 | 4 | 8)
    );
    assert_eq!(k.control_failure, None);
    // OONI's comparison keys, computed as ooniprobe does.
    assert_eq!(k.dns_consistency.as_deref(), Some("consistent"));
    assert_eq!(k.status_code_match, Some(true));
    assert_eq!(k.body_length_match, Some(true));
    assert_eq!(k.body_proportion.as_ref().and_then(|n| n.as_f64()), Some(1.0));
    assert_eq!(k.headers_match, Some(true));
    assert_eq!(k.title_match, Some(true));
    assert_eq!(k.accessible, Some(true));
    assert_eq!(serde_json::to_value(k.blocking).unwrap(), serde_json::json!(false));
    // Bytes over time of the final response, from the connection's cumulative-bytes events.
    let transfer = &k.extra["x_throughput"];
    assert_eq!(transfer["transaction_id"].as_i64(), tcp.transaction_id);
    assert!(transfer["bytes"].as_i64().unwrap() > 1000, "{transfer}");
    assert!(transfer["bytes_per_second"].as_f64().unwrap() > 0.0);
    let samples = transfer["samples"].as_array().unwrap();
    assert!(!samples.is_empty());
    assert!(
        samples
            .windows(2)
            .all(|w| w[0][0].as_f64() <= w[1][0].as_f64() && w[0][1].as_i64() <= w[1][1].as_i64())
    );
    // The probe's address as the control saw it (127.0.0.1 here) appears nowhere but in OONI's
    // placeholder probe_ip.
    let text = serde_json::to_string(m)
        .unwrap()
        .replacen(r#""probe_ip":"127.0.0.1""#, "", 1);
    assert_eq!(censorwatch_probe::measure::scrub_ip(&text, "127.0.0.1"), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_from_the_probes_resolver_is_dns_blocking() {
    let lab = lab(&[("x.com", DnsAnswer::Nxdomain)], &[("x.com", addrs(&["127.0.0.11"]))]).await;
    let target = Target::https(
        ip("127.0.0.11"),
        0,
        lab.ca.server_config(&["x.com"]),
        serve_all(),
        pages(),
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(
        status_method(&o),
        (Status::Blocked, Some(Method::DnsNxdomain)),
        "{:?}",
        o.verdict
    );
    assert_eq!(failure_str(&k.dns_experiment_failure), Some("dns_nxdomain_error"));
    assert_eq!(k.dns_consistency.as_deref(), Some("inconsistent"));
    // No response: the HTTP comparison keys are null, as ooniprobe writes them.
    let raw = serde_json::to_value(&o.measurement).unwrap();
    for key in ["status_code_match", "body_length_match", "headers_match", "title_match"] {
        assert_eq!(raw["test_keys"][key], serde_json::Value::Null, "{key}");
        assert!(raw["test_keys"].get(key).is_some(), "{key} is written (as null)");
    }
    assert_eq!(raw["test_keys"]["body_proportion"], 0.0);
    assert!(k.queries.as_ref().unwrap().iter().all(|q| q.rcode == Some(3)));
    assert!(k.tcp_connect.as_ref().unwrap().is_empty());
    assert_eq!(serde_json::to_value(k.blocking).unwrap(), serde_json::json!("dns"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_by_the_probes_resolver_is_dns_refused() {
    let lab = lab(&[("x.com", DnsAnswer::Refused)], &[("x.com", addrs(&["127.0.0.12"]))]).await;
    let target = Target::https(
        ip("127.0.0.12"),
        0,
        lab.ca.server_config(&["x.com"]),
        serve_all(),
        pages(),
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(
        status_method(&o),
        (Status::Blocked, Some(Method::DnsRefused)),
        "{:?}",
        o.verdict
    );
    assert_eq!(failure_str(&k.dns_experiment_failure), Some("dns_refused_error"));
    assert!(k.queries.as_ref().unwrap().iter().all(|q| q.rcode == Some(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_everywhere_is_down_not_blocked() {
    let lab = lab(&[], &[]).await;
    let (o, k) = lab.measure("https://gone.example:8443/").await;
    assert_eq!(o.verdict.status, Status::Down, "{:?}", o.verdict);
    assert_eq!(
        failure_str(&k.control.as_ref().unwrap().dns.as_ref().unwrap().failure),
        Some("dns_name_error")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_dns_answer_is_caught_as_a_duplicate() {
    let lab = lab(
        &[(
            "x.com",
            DnsAnswer::Injected {
                first: vec![ip("127.0.0.99")],
                then: vec![ip("127.0.0.13")],
            },
        )],
        &[("x.com", addrs(&["127.0.0.13"]))],
    )
    .await;
    let target = Target::https(
        ip("127.0.0.13"),
        0,
        lab.ca.server_config(&["x.com"]),
        serve_all(),
        pages(),
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    let dups: Vec<_> = k
        .x_dns_duplicate_responses
        .as_ref()
        .unwrap()
        .iter()
        .filter(|q| q.query_type.as_deref() == Some("A"))
        .collect();
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert_eq!(dups[0].answers.as_ref().unwrap()[0].ipv4.as_deref(), Some("127.0.0.13"));
    let a = k
        .queries
        .as_ref()
        .unwrap()
        .iter()
        .find(|q| q.query_type.as_deref() == Some("A"))
        .unwrap();
    assert_eq!(a.answers.as_ref().unwrap()[0].ipv4.as_deref(), Some("127.0.0.99"));
    assert_eq!(o.verdict.status, Status::Blocked, "{:?}", o.verdict);
    assert_eq!(o.verdict.method.unwrap().layer(), "dns", "{:?}", o.verdict);
}

fn sni_reset_for_probe(name: &'static str) -> Policy {
    Arc::new(move |peer, sni| {
        if from_probe(peer) && sni == Some(name) {
            Action::Reset
        } else {
            Action::Serve
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_filtering_is_told_apart_by_the_decoy() {
    let dns = [("x.com", addrs(&["127.0.0.14"]))];
    let lab = lab(&dns, &dns).await;
    let target = Target::https(
        ip("127.0.0.14"),
        0,
        lab.ca.server_config(&["x.com"]),
        sni_reset_for_probe("x.com"),
        pages(),
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(
        status_method(&o),
        (Status::Blocked, Some(Method::TlsReset)),
        "{:?}",
        o.verdict
    );
    assert!(o.verdict.confidence >= 0.95, "{:?}", o.verdict);
    assert!(
        o.verdict.reasons.iter().any(|r| r.contains("decoy SNI example.org")),
        "{:?}",
        o.verdict.reasons
    );
    let hs = k.tls_handshakes.as_ref().unwrap();
    assert_eq!(hs.len(), 2);
    assert_eq!(failure_str(&hs[0].failure), Some("connection_reset"));
    assert_eq!(hs[1].server_name.as_deref(), Some("example.org"));
    assert_eq!(hs[1].no_tls_verify, Some(true));
    assert_eq!(hs[1].failure, None);
    assert!(hs[1].tags.as_ref().unwrap().contains(&"sni_decoy".to_string()));
    assert_eq!(failure_str(&k.http_experiment_failure), Some("connection_reset"));
    assert_eq!(
        serde_json::to_value(k.blocking).unwrap(),
        serde_json::json!("http-failure")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_for_every_name_is_not_called_sni_filtering() {
    let dns = [("x.com", addrs(&["127.0.0.15"]))];
    let lab = lab(&dns, &dns).await;
    let policy: Policy = Arc::new(|peer, _| if from_probe(peer) { Action::Reset } else { Action::Serve });
    let target = Target::https(ip("127.0.0.15"), 0, lab.ca.server_config(&["x.com"]), policy, pages()).await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(
        status_method(&o),
        (Status::Blocked, Some(Method::TlsReset)),
        "{:?}",
        o.verdict
    );
    assert!(o.verdict.confidence < 0.95, "{:?}", o.verdict);
    let hs = k.tls_handshakes.as_ref().unwrap();
    assert_eq!(hs.len(), 2, "the decoy was tried");
    assert_eq!(failure_str(&hs[1].failure), Some("connection_reset"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eof_after_client_hello_is_tls_eof() {
    let dns = [("x.com", addrs(&["127.0.0.16"]))];
    let lab = lab(&dns, &dns).await;
    let policy: Policy = Arc::new(|peer, sni| {
        if from_probe(peer) && sni == Some("x.com") {
            Action::Close
        } else {
            Action::Serve
        }
    });
    let target = Target::https(ip("127.0.0.16"), 0, lab.ca.server_config(&["x.com"]), policy, pages()).await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(
        status_method(&o),
        (Status::Blocked, Some(Method::TlsEof)),
        "{:?}",
        o.verdict
    );
    assert_eq!(
        failure_str(&k.tls_handshakes.as_ref().unwrap()[0].failure),
        Some("eof_error")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_name_is_down_when_the_control_sees_it_too() {
    let dns = [("x.com", addrs(&["127.0.0.17"]))];
    let lab = lab(&dns, &dns).await;
    let target = Target::https(
        ip("127.0.0.17"),
        0,
        lab.ca.server_config(&["other.example"]),
        serve_all(),
        pages(),
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(o.verdict.status, Status::Down, "{:?}", o.verdict);
    let hs = k.tls_handshakes.as_ref().unwrap();
    assert_eq!(hs.len(), 1, "no decoy for a certificate problem");
    assert_eq!(failure_str(&hs[0].failure), Some("ssl_invalid_hostname"));
    assert_eq!(
        hs[0].peer_certificates.as_ref().unwrap().len(),
        2,
        "the chain is kept on failure"
    );
    let ep = format!("127.0.0.17:{}", target.port());
    assert_eq!(
        failure_str(&k.control.as_ref().unwrap().tls_handshake.as_ref().unwrap()[&ep].failure),
        Some("ssl_invalid_hostname")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_authority_is_recorded_and_down() {
    let dns = [("x.com", addrs(&["127.0.0.18"]))];
    let lab = lab(&dns, &dns).await;
    let rogue = TestCa::new("some other CA");
    let target = Target::https(
        ip("127.0.0.18"),
        0,
        rogue.server_config(&["x.com"]),
        serve_all(),
        pages(),
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(o.verdict.status, Status::Down, "{:?}", o.verdict);
    assert_eq!(
        failure_str(&k.tls_handshakes.as_ref().unwrap()[0].failure),
        Some("ssl_unknown_authority")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_chain_is_recorded_hop_by_hop() {
    let dns = [
        ("twitter.com", addrs(&["127.0.0.19"])),
        ("x.com", addrs(&["127.0.0.20"])),
    ];
    let lab = lab(&dns, &dns).await;
    let tls_target = Target::https(ip("127.0.0.20"), 0, lab.ca.server_config(&["x.com"]), serve_all(), {
        Arc::new(|host: &str, path: &str| {
            if path == "/" {
                Reply::redirect("/home")
            } else {
                Reply::page(&format!("{host}{path}"))
            }
        })
    })
    .await;
    let x_port = tls_target.port();
    let http_target = Target::http(
        ip("127.0.0.19"),
        0,
        serve_all(),
        Arc::new(move |_: &str, _: &str| Reply::redirect(&format!("https://x.com:{x_port}/"))),
    )
    .await;
    let (o, k) = lab
        .measure(&format!("http://twitter.com:{}/", http_target.port()))
        .await;
    assert_eq!(o.verdict.status, Status::Ok, "{:?}", o.verdict);
    let reqs = k.requests.as_ref().unwrap();
    assert_eq!(reqs.len(), 3);
    // Last hop first, as OONI writes them.
    let url = |i: usize| reqs[i].request.as_ref().unwrap().url.clone().unwrap();
    assert_eq!(url(0), format!("https://x.com:{x_port}/home"));
    assert_eq!(url(2), format!("http://twitter.com:{}/", http_target.port()));
    assert_eq!(reqs[0].tags.as_ref().unwrap(), &vec!["depth=2".to_string()]);
    assert_eq!(reqs[2].response.as_ref().unwrap().code, Some(302));
    assert!(
        k.queries.as_ref().unwrap().iter().any(
            |q| q.hostname.as_deref() == Some("x.com") && q.tags.as_ref().unwrap().contains(&"depth=1".to_string())
        )
    );
    assert_eq!(
        k.control
            .as_ref()
            .unwrap()
            .http_request
            .as_ref()
            .unwrap()
            .title
            .as_deref(),
        Some("x.com/home")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_ten_redirects_stop_and_the_site_is_down() {
    let dns = [("x.com", addrs(&["127.0.0.21"]))];
    let lab = lab(&dns, &dns).await;
    let handler: Handler = Arc::new(|_: &str, path: &str| {
        let n: u32 = path.trim_start_matches("/r/").parse().unwrap_or(0);
        Reply::redirect(&format!("/r/{}", n + 1))
    });
    let target = Target::https(
        ip("127.0.0.21"),
        0,
        lab.ca.server_config(&["x.com"]),
        serve_all(),
        handler,
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/r/0", target.port())).await;
    assert_eq!(k.requests.as_ref().unwrap().len(), 11);
    assert_eq!(
        failure_str(&k.http_experiment_failure),
        Some("unknown_failure: stopped after too many redirects")
    );
    assert_eq!(o.verdict.status, Status::Down, "{:?}", o.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_truncated_at_512_kib() {
    let dns = [("x.com", addrs(&["127.0.0.22"]))];
    let lab = lab(&dns, &dns).await;
    let handler: Handler = Arc::new(|_: &str, _: &str| Reply {
        body: vec![b'a'; 3 << 20],
        ..Reply::page("big")
    });
    let target = Target::https(
        ip("127.0.0.22"),
        0,
        lab.ca.server_config(&["x.com"]),
        serve_all(),
        handler,
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(o.verdict.status, Status::Ok, "{:?}", o.verdict);
    let resp = k.requests.as_ref().unwrap()[0].response.as_ref().unwrap();
    assert_eq!(resp.body_is_truncated, Some(true));
    assert_eq!(resp.body.as_ref().unwrap().len(), 512 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_times_out_for_both_and_is_down() {
    let dns = [("x.com", addrs(&["127.0.0.23"]))];
    let mut lab = lab(&dns, &dns).await;
    lab.http_timeout = Duration::from_millis(500);
    let handler: Handler = Arc::new(|_: &str, _: &str| Reply {
        delay: Duration::from_secs(4),
        ..Reply::page("slow")
    });
    let target = Target::https(
        ip("127.0.0.23"),
        0,
        lab.ca.server_config(&["x.com"]),
        serve_all(),
        handler,
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(failure_str(&k.http_experiment_failure), Some("generic_timeout_error"));
    assert_eq!(
        failure_str(&k.control.as_ref().unwrap().http_request.as_ref().unwrap().failure),
        Some("generic_timeout_error")
    );
    assert_eq!(o.verdict.status, Status::Down, "{:?}", o.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_blackholing_is_tls_timeout() {
    let dns = [("x.com", addrs(&["127.0.0.24"]))];
    let lab = lab(&dns, &dns).await;
    let policy: Policy = Arc::new(|peer, sni| {
        if from_probe(peer) && sni == Some("x.com") {
            Action::Stall
        } else {
            Action::Serve
        }
    });
    let target = Target::https(ip("127.0.0.24"), 0, lab.ca.server_config(&["x.com"]), policy, pages()).await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(
        status_method(&o),
        (Status::Blocked, Some(Method::TlsTimeout)),
        "{:?}",
        o.verdict
    );
    assert_eq!(
        failure_str(&k.tls_handshakes.as_ref().unwrap()[0].failure),
        Some("generic_timeout_error")
    );
    assert_eq!(
        k.tls_handshakes.as_ref().unwrap()[1].failure,
        None,
        "the decoy got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_reset_over_plain_http_is_http_reset() {
    let dns = [("x.com", addrs(&["127.0.0.25"]))];
    let lab = lab(&dns, &dns).await;
    let policy: Policy = Arc::new(|peer, host| {
        if from_probe(peer) && host == Some("x.com") {
            Action::Reset
        } else {
            Action::Serve
        }
    });
    let target = Target::http(ip("127.0.0.25"), 0, policy, pages()).await;
    let (o, k) = lab.measure(&format!("http://x.com:{}/", target.port())).await;
    assert_eq!(
        status_method(&o),
        (Status::Blocked, Some(Method::HttpReset)),
        "{:?}",
        o.verdict
    );
    assert_eq!(
        failure_str(&k.requests.as_ref().unwrap()[0].failure),
        Some("connection_reset")
    );
    assert_eq!(
        k.tcp_connect.as_ref().unwrap()[0].status.as_ref().unwrap().success,
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_everywhere_is_down() {
    let dns = [("x.com", addrs(&["127.0.0.26"]))];
    let lab = lab(&dns, &dns).await;
    // Nothing listens on 127.0.0.26:9.
    let (o, k) = lab.measure("https://x.com:9/").await;
    assert_eq!(
        failure_str(&k.tcp_connect.as_ref().unwrap()[0].status.as_ref().unwrap().failure),
        Some("connection_refused")
    );
    assert_eq!(o.verdict.status, Status::Down, "{:?}", o.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_second_opinion_resolver_is_set_aside_not_blamed() {
    let silent = FakeResolver::start(table(&[("localhost", DnsAnswer::Silent)])).await;
    let trace = censorwatch_probe::trace::Trace::new();
    let mut config = DnsConfig {
        getaddrinfo: true,
        udp: Some(silent.addr()),
        timeout: Duration::from_millis(300),
        duplicate_window: Duration::from_millis(50),
        udp_is_second_opinion: true,
    };
    let tags = vec!["depth=0".to_string()];
    let lookup = censorwatch_probe::dns::resolve(&trace, &config, "localhost", &tags).await;
    assert!(lookup.addrs.contains(&ip("127.0.0.1")), "{lookup:?}");
    assert_eq!(lookup.failure, None);
    assert_eq!(lookup.unanswered.len(), 2, "A and AAAA set aside");
    assert!(
        lookup
            .queries
            .iter()
            .all(|q| q.engine.as_deref() == Some("getaddrinfo"))
    );
    // When the user chose the resolver, its silence is a failure on the record.
    config.udp_is_second_opinion = false;
    let lookup = censorwatch_probe::dns::resolve(&trace, &config, "localhost", &tags).await;
    assert!(lookup.unanswered.is_empty());
    let udp: Vec<_> = lookup
        .queries
        .iter()
        .filter(|q| q.engine.as_deref() == Some("udp"))
        .collect();
    assert_eq!(udp.len(), 2);
    assert!(
        udp.iter()
            .all(|q| failure_str(&q.failure) == Some("generic_timeout_error"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_reference_comes_from_the_control() {
    let lab = lab(&[], &[]).await;
    let client = ControlClient::new(
        format!("http://{}/", lab.control).parse().unwrap(),
        TlsSettings::new(&[]).unwrap(),
        Duration::from_secs(10),
    )
    .unwrap();
    let t = client.throughput_reference(3 << 20).await.unwrap();
    assert_eq!(t.bytes, 3 << 20);
    assert!(t.bytes_per_second > 0.0 && t.seconds > 0.0, "{t:?}");
    // Too much is refused, not sent.
    let too_big = client.throughput_reference(1 << 30).await.unwrap_err();
    assert_eq!(too_big.as_str(), "http_unexpected_status_code");
    // And the reference lands in measurements.
    let mut probe_config = lab.probe().await.config().clone();
    probe_config.throughput_reference = Some(t);
    let probe = Probe::new(probe_config, Arc::new(Analyzer::with_builtin_fingerprints()));
    let o = probe.measure("https://gone.example:8443/").await.unwrap();
    let keys = o.measurement.test_keys_value().unwrap();
    assert_eq!(keys["x_throughput_reference"]["bytes"], 3 << 20);
    assert!(keys.get("x_throughput").is_none(), "no response, no transfer");
}

/// Pages announcing HTTP/3 on `port` of the same host.
fn h3_pages(port: u16) -> Handler {
    Arc::new(move |host, path| {
        let mut r = Reply::page(&format!("{host}{path}"));
        r.headers.push(("Alt-Svc".into(), format!("h3=\":{port}\"; ma=86400")));
        r
    })
}

/// A TLS target and a QUIC server on the same address and port number; the QUIC server applies
/// `quic_policy`.
async fn h3_target(lab: &Lab, at: &str, quic_policy: Option<Policy>) -> (Target, Option<QuicTarget>) {
    let probe_port = tokio::net::UdpSocket::bind((ip(at), 0)).await.unwrap();
    let port = probe_port.local_addr().unwrap().port();
    drop(probe_port);
    let quic = match quic_policy {
        Some(p) => Some(QuicTarget::start(ip(at), port, lab.ca.quic_server_config(&["x.com"]), p).await),
        None => None,
    };
    let tcp = Target::https(
        ip(at),
        port,
        lab.ca.server_config(&["x.com"]),
        serve_all(),
        h3_pages(port),
    )
    .await;
    (tcp, quic)
}

fn quic_records(k: &WebConnectivityTestKeys) -> Vec<serde_json::Value> {
    k.extra["x_quic_handshakes"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_handshake_where_alt_svc_announces_h3() {
    let dns = [("x.com", addrs(&["127.0.0.30"]))];
    let lab = lab(&dns, &dns).await;
    let (tcp, _quic) = h3_target(&lab, "127.0.0.30", Some(serve_all())).await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", tcp.port())).await;
    assert_eq!(status_method(&o), (Status::Ok, None), "{:?}", o.verdict);
    let ep = format!("127.0.0.30:{}", tcp.port());
    let q = quic_records(&k);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["network"], "udp");
    assert_eq!(q[0]["address"], ep.as_str());
    assert_eq!(q[0]["server_name"], "x.com");
    assert_eq!(q[0]["alpn"], serde_json::json!(["h3"]));
    assert_eq!(q[0]["negotiated_protocol"], "h3");
    assert_eq!(q[0]["tls_version"], "TLSv1.3");
    assert_eq!(q[0]["failure"], serde_json::Value::Null);
    assert_eq!(q[0]["peer_certificates"].as_array().unwrap().len(), 2);
    let (t0, t) = (q[0]["t0"].as_f64().unwrap(), q[0]["t"].as_f64().unwrap());
    assert!(0.0 <= t0 && t0 <= t);
    let ops: Vec<&str> = k
        .network_events
        .as_ref()
        .unwrap()
        .iter()
        .filter(|e| e.address.as_deref() == Some(ep.as_str()) && e.proto.as_deref() == Some("udp"))
        .filter_map(|e| e.operation.as_deref())
        .collect();
    assert_eq!(ops, ["quic_handshake_start", "quic_handshake_done"]);
    // The control was asked (OONI's x_quic_enabled) and did its own handshake.
    assert_eq!(k.x_control_request.as_ref().unwrap()["x_quic_enabled"], true);
    let control = k.control.as_ref().unwrap();
    assert_eq!(
        control.http_request.as_ref().unwrap().discovered_h3_endpoint.as_deref(),
        Some(format!("x.com:{}", tcp.port()).as_str())
    );
    assert_eq!(control.quic_handshake.as_ref().unwrap()[&ep].status, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_dropped_for_the_probe_only_is_quic_blocking() {
    let dns = [("x.com", addrs(&["127.0.0.31"]))];
    let lab = lab(&dns, &dns).await;
    let drop_probe: Policy = Arc::new(|peer, _| if from_probe(peer) { Action::Stall } else { Action::Serve });
    let (tcp, _quic) = h3_target(&lab, "127.0.0.31", Some(drop_probe)).await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", tcp.port())).await;
    assert_eq!(
        status_method(&o),
        (Status::Blocked, Some(Method::QuicTimeout)),
        "{:?}",
        o.verdict
    );
    assert!(
        o.verdict.reasons.iter().any(|r| r.contains("QUIC")),
        "{:?}",
        o.verdict.reasons
    );
    let q = quic_records(&k);
    assert_eq!(q[0]["failure"], "generic_timeout_error");
    let ep = format!("127.0.0.31:{}", tcp.port());
    assert_eq!(
        k.control.as_ref().unwrap().quic_handshake.as_ref().unwrap()[&ep].status,
        Some(true)
    );
    // TLS over TCP worked: OONI's own keys still say accessible.
    assert_eq!(k.accessible, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_announcing_h3_without_quic_is_not_blocked() {
    let dns = [("x.com", addrs(&["127.0.0.32"]))];
    let lab = lab(&dns, &dns).await;
    let (tcp, _none) = h3_target(&lab, "127.0.0.32", None).await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", tcp.port())).await;
    assert_eq!(status_method(&o), (Status::Ok, None), "{:?}", o.verdict);
    assert!(
        o.verdict
            .reasons
            .iter()
            .any(|r| r.contains("control") && r.contains("QUIC")),
        "{:?}",
        o.verdict.reasons
    );
    let q = quic_records(&k);
    assert!(q[0]["failure"].is_string(), "{q:?}");
    let ep = format!("127.0.0.32:{}", tcp.port());
    assert_eq!(
        k.control.as_ref().unwrap().quic_handshake.as_ref().unwrap()[&ep].status,
        Some(false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_alt_svc_no_quic() {
    let dns = [("x.com", addrs(&["127.0.0.33"]))];
    let lab = lab(&dns, &dns).await;
    let target = Target::https(
        ip("127.0.0.33"),
        0,
        lab.ca.server_config(&["x.com"]),
        serve_all(),
        pages(),
    )
    .await;
    let (o, k) = lab.measure(&format!("https://x.com:{}/", target.port())).await;
    assert_eq!(status_method(&o), (Status::Ok, None), "{:?}", o.verdict);
    assert!(quic_records(&k).is_empty());
    let control = k.control.as_ref().unwrap();
    assert!(control.quic_handshake.as_ref().unwrap().is_empty());
    assert_eq!(
        control.http_request.as_ref().unwrap().discovered_h3_endpoint.as_deref(),
        Some("")
    );
}

/// Pages, and a 2 MiB static file at `/big.js`.
fn pages_and_big_file() -> Handler {
    Arc::new(|host, path| {
        if path == "/big.js" {
            Reply {
                status: 200,
                headers: vec![("Content-Type".into(), "application/javascript".into())],
                body: vec![b'a'; 2 << 20],
                delay: Duration::ZERO,
            }
        } else {
            Reply::page(&format!("{host}{path}"))
        }
    })
}

/// 150 kbit/s, the rate Xue et al. (IMC 2021) measured for Twitter in Russia.
const TWITTER_2021_BYTES_PER_SECOND: u64 = 150_000 / 8;

/// Measures `https://abs.twimg.com:PORT/` with a throughput test of its `/big.js` against a decoy
/// host, the target applying `policy`.
async fn throughput_case(at: &str, decoy_at: &str, policy: Policy) -> (Outcome, serde_json::Value) {
    let dns = [("abs.twimg.com", addrs(&[at])), ("decoy.example", addrs(&[decoy_at]))];
    let lab = lab(&dns, &dns).await;
    let target = Target::https(
        ip(at),
        0,
        lab.ca.server_config(&["abs.twimg.com"]),
        policy,
        pages_and_big_file(),
    )
    .await;
    let decoy = Target::https(
        ip(decoy_at),
        0,
        lab.ca.server_config(&["decoy.example"]),
        serve_all(),
        pages_and_big_file(),
    )
    .await;
    let mut config = lab.probe().await.config().clone();
    config.large_resources = vec![
        format!("https://abs.twimg.com:{}/big.js", target.port())
            .parse()
            .unwrap(),
    ];
    config.decoy_url = Some(
        format!("https://decoy.example:{}/big.js", decoy.port())
            .parse()
            .unwrap(),
    );
    config.throughput_max_duration = Duration::from_secs(2);
    let probe = Probe::new(config, Arc::new(Analyzer::with_builtin_fingerprints()));
    let o = probe
        .measure(&format!("https://abs.twimg.com:{}/", target.port()))
        .await
        .unwrap();
    let text = serde_json::to_string(&o.measurement).unwrap();
    let reread = censorwatch_model::Measurement::from_slice(text.as_bytes()).unwrap();
    assert_eq!(
        Analyzer::with_builtin_fingerprints().verdict(&reread).unwrap(),
        o.verdict
    );
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_ooni_conventions(&doc);
    (o, doc["test_keys"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_throttled_to_150_kbits_is_throttled() {
    let throttle: Policy = Arc::new(|peer, sni| {
        if from_probe(peer) && sni == Some("abs.twimg.com") {
            Action::Throttle(TWITTER_2021_BYTES_PER_SECOND)
        } else {
            Action::Serve
        }
    });
    let (o, k) = throughput_case("127.0.0.40", "127.0.0.41", throttle).await;
    assert_eq!(
        status_method(&o),
        (Status::Blocked, Some(Method::Throttled)),
        "{:?}",
        o.verdict
    );
    assert!(o.verdict.confidence >= 0.9, "{:?}", o.verdict);
    let target = &k["x_throughput_target"];
    assert_eq!(target["stopped"], "time_limit", "{target}");
    assert_eq!(target["status_code"], 200);
    assert_eq!(target["failure"], serde_json::Value::Null);
    // About 2 s at 150 kbit/s after a 16 KiB burst: far less than the 2 MiB file.
    let bytes = target["bytes"].as_u64().unwrap();
    assert!((20_000..120_000).contains(&bytes), "{target}");
    let samples = target["samples"].as_array().unwrap();
    assert!(samples.len() >= 10, "a sample every 100 ms: {samples:?}");
    let decoy = &k["x_throughput_decoy"];
    assert_eq!(decoy["stopped"], "complete", "{decoy}");
    assert_eq!(decoy["bytes"], 2 << 20);
    assert!(k["x_throughput_reference"]["bytes_per_second"].as_f64().unwrap() > 1e6);
    assert!(o.verdict.reasons[0].contains("kbit/s"), "{:?}", o.verdict.reasons);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unthrottled_target_is_not_throttled() {
    let (o, k) = throughput_case("127.0.0.42", "127.0.0.43", serve_all()).await;
    assert_eq!(status_method(&o), (Status::Ok, None), "{:?}", o.verdict);
    let target = &k["x_throughput_target"];
    assert_eq!(target["stopped"], "complete", "{target}");
    assert_eq!(target["bytes"], 2 << 20);
    assert!(
        o.verdict
            .reasons
            .iter()
            .any(|r| r.contains("Throughput was not judged") || r.contains("no sign of throttling")),
        "{:?}",
        o.verdict.reasons
    );
}
