//! `censorwatch probe` and `censorwatch control` run as processes against loopback servers started
//! by the test (a fake resolver per side, TLS targets with a test CA, a censor policy keyed on the
//! client's 127.0.0.x address): JSON and table output, `--out` JSONL that `censorwatch analyze`
//! judges the same, `--submit` to `censorwatch serve`, controls that are unreachable or answer
//! garbage or 10 MB, and bad usage. Only 127.0.0.0/8 is used.

use censorwatch_probe::testbed::{Action, DnsAnswer, FakeResolver, Handler, Policy, Reply, Target, TestCa, table};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_censorwatch");
const PROBE_IP: &str = "127.0.0.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `censorwatch ARGS…` and waits for the `http://ADDR/` it prints on `stream`.
fn start_server(args: &[&str], on_stdout: bool) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    if on_stdout {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    } else {
        cmd.stdout(Stdio::inherit()).stderr(Stdio::piped());
    }
    let mut child = Proc(cmd.spawn().unwrap());
    let reader: Box<dyn Read + Send> = if on_stdout {
        Box::new(child.0.stdout.take().unwrap())
    } else {
        Box::new(child.0.stderr.take().unwrap())
    };
    let mut lines = BufReader::new(reader);
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap() == 0 {
            panic!("censorwatch {args:?} exited before listening");
        }
        if let Some(rest) = line.split("http://").nth(1) {
            let addr = rest.split(['/', ' ', '\n']).next().unwrap().to_owned();
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
            return (child, format!("http://{addr}/"));
        }
    }
}

struct World {
    _rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    probe_resolver: String,
    control_url: String,
    _control: Proc,
    _keep: (Vec<FakeResolver>, Vec<Target>),
    ok_url: String,
    sni_url: String,
    nx_url: String,
}

fn pages() -> Handler {
    Arc::new(|host: &str, path: &str| Reply::page(&format!("{host}{path}")))
}

fn world() -> World {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("cli test CA");
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(
        dir.path().join("asn.csv"),
        "127.0.0.0,127.0.0.255,64512,Loopback Test ISP\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("cc.csv"), "127.0.0.0,127.0.0.255,PK\n").unwrap();
    let (resolvers, targets) = rt.block_on(async {
        let sni: Policy = Arc::new(|peer, sni| {
            if peer == ip(PROBE_IP) && sni == Some("twitter.com") {
                Action::Reset
            } else {
                Action::Serve
            }
        });
        let ok = Target::https(ip("127.0.0.30"), 0, ca.server_config(&["x.com"]), sni.clone(), pages()).await;
        let blocked = Target::https(ip("127.0.0.31"), 0, ca.server_config(&["twitter.com"]), sni, pages()).await;
        let control_dns = table(&[
            ("x.com", DnsAnswer::Addrs(vec![ip("127.0.0.30")])),
            ("twitter.com", DnsAnswer::Addrs(vec![ip("127.0.0.31")])),
            ("t.co", DnsAnswer::Addrs(vec![ip("127.0.0.30")])),
        ]);
        let mut probe_dns = control_dns.clone();
        probe_dns.insert("t.co".into(), DnsAnswer::Nxdomain);
        let pr = FakeResolver::start(probe_dns).await;
        let cr = FakeResolver::start(control_dns).await;
        (vec![pr, cr], vec![ok, blocked])
    });
    let d = |f: &str| dir.path().join(f).display().to_string();
    let (control, control_url) = start_server(
        &[
            "control",
            "--listen",
            "127.0.0.4:0",
            "--allow-private",
            "--resolver",
            &resolvers[1].addr().to_string(),
            "--ca-file",
            &d("ca.pem"),
            "--asn-db",
            &d("asn.csv"),
            "--country-db",
            &d("cc.csv"),
            "--source-ip",
            "127.0.0.3",
        ],
        false,
    );
    World {
        probe_resolver: resolvers[0].addr().to_string(),
        ok_url: format!("https://x.com:{}/", targets[0].port()),
        sni_url: format!("https://twitter.com:{}/", targets[1].port()),
        nx_url: format!("https://t.co:{}/", targets[0].port()),
        _keep: (resolvers, targets),
        _rt: rt,
        dir,
        control_url,
        _control: control,
    }
}

impl World {
    fn probe(&self, control: &str, extra: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args([
                "probe",
                "--control",
                control,
                "--resolver",
                &self.probe_resolver,
                "--ca-file",
            ])
            .arg(self.dir.path().join("ca.pem"))
            .args(["--source-ip", PROBE_IP, "--timeout", "2"])
            .args(extra)
            .output()
            .unwrap()
    }
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn by_input<'a>(records: &'a [Value], input: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["input"] == input)
        .unwrap_or_else(|| panic!("no record for {input} in {records:?}"))
}

#[test]
fn probe_json_out_and_analyze_agree() {
    let w = world();
    let out = w.dir.path().join("m.jsonl");
    let o = w.probe(
        &w.control_url,
        &[
            "--json",
            "--throughput",
            "--out",
            out.to_str().unwrap(),
            &w.ok_url,
            &w.sni_url,
            &w.nx_url,
            "not a url",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "one input is not a URL; stderr: {stderr}");
    assert!(
        stderr.contains("network AS64512 (Loopback Test ISP), country PK"),
        "{stderr}"
    );
    let records = json_lines(&o.stdout);
    assert_eq!(records.len(), 4);
    let ok = by_input(&records, &w.ok_url);
    assert_eq!(ok["verdict"]["status"], "ok", "{ok}");
    let m = &ok["measurement"];
    assert_eq!(m["software_name"], "censorwatch");
    assert_eq!(m["probe_ip"], "127.0.0.1");
    assert_eq!(m["probe_asn"], "AS64512");
    assert_eq!(m["test_keys"]["accessible"], true);
    assert!(stderr.contains("reference transfer from the control"), "{stderr}");
    assert_eq!(m["test_keys"]["x_throughput_reference"]["bytes"], 4 << 20);
    assert!(m["test_keys"]["x_throughput"]["bytes"].as_i64().unwrap() > 0);
    let sni = by_input(&records, &w.sni_url);
    assert_eq!(sni["verdict"]["status"], "blocked");
    assert_eq!(sni["verdict"]["method"], "tls.reset");
    assert_eq!(
        sni["measurement"]["test_keys"]["tls_handshakes"][1]["server_name"],
        "example.org"
    );
    let nx = by_input(&records, &w.nx_url);
    assert_eq!(nx["verdict"]["method"], "dns.nxdomain", "{}", nx["verdict"]);
    let bad = by_input(&records, "not a url");
    assert!(bad["error"].as_str().unwrap().contains("not a URL"), "{bad}");

    // The --out file holds the three measurements; analyze reads them and agrees.
    let analyzed = Command::new(BIN)
        .args(["analyze", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        analyzed.status.success(),
        "{}",
        String::from_utf8_lossy(&analyzed.stderr)
    );
    let verdicts = json_lines(&analyzed.stdout);
    assert_eq!(verdicts.len(), 3);
    for v in &verdicts {
        let input = v["input"].as_str().unwrap();
        assert_eq!(v["verdict"], by_input(&records, input)["verdict"], "{input}");
    }
}

#[test]
fn probe_table_names_the_method() {
    let w = world();
    let o = w.probe(&w.control_url, &[&w.ok_url, &w.sni_url]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("VERDICT"), "{table}");
    assert!(lines[1].starts_with("ok") && lines[1].contains(&w.ok_url), "{table}");
    assert!(
        lines[2].starts_with("BLOCKED") && lines[2].contains("tls.reset"),
        "{table}"
    );
    assert!(lines[2].contains("SNI"), "the reason is shown: {table}");
}

/// A TCP server that answers every connection with `response` and closes.
fn canned_server(rt: &tokio::runtime::Runtime, response: Vec<u8>) -> String {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.5:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let response = Arc::new(response);
    rt.spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let response = response.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(&response).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}/")
}

#[test]
fn bad_controls_are_control_failures_not_hangs() {
    let w = world();
    let mut huge = b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n".to_vec();
    huge.resize(huge.len() + 10 * 1024 * 1024, b'{');
    let cases = [
        (
            canned_server(&w._rt, b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot json".to_vec()),
            "json_parse_error",
        ),
        (
            canned_server(&w._rt, huge),
            "unknown_failure: the control's response is larger than 1024 KiB",
        ),
        (
            canned_server(&w._rt, b"garbage that is not HTTP\r\n\r\n".to_vec()),
            "unknown_failure",
        ),
        ("http://127.0.0.6:9/".to_owned(), "connection_refused"),
    ];
    for (control, want) in cases {
        let o = w.probe(&control, &["--json", &w.ok_url]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{control}: {stderr}");
        assert!(stderr.contains("AS0 / ZZ"), "whoami failed too: {stderr}");
        let records = json_lines(&o.stdout);
        let keys = &records[0]["measurement"]["test_keys"];
        let failure = keys["control_failure"].as_str().unwrap_or("");
        assert!(
            failure.starts_with(want),
            "{control}: control_failure {failure:?}, wanted {want:?}"
        );
        assert_eq!(records[0]["measurement"]["probe_asn"], "AS0");
        // A valid certificate still proves the page is the site's, control or not.
        assert_eq!(records[0]["verdict"]["status"], "ok", "{}", records[0]["verdict"]);
    }
}

#[test]
fn submit_sends_the_measurements_to_the_collector() {
    let w = world();
    let db = w.dir.path().join("c.db");
    let (_serve, serve_url) = start_server(
        &[
            "serve",
            "--listen",
            "127.0.0.7:0",
            "--db",
            &format!("sqlite:{}", db.display()),
            "--data",
            w.dir.path().to_str().unwrap(),
        ],
        true,
    );
    let o = w.probe(&w.control_url, &["--submit", &serve_url, &w.ok_url, &w.sni_url]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("2 accepted, 0 rejected"), "{stderr}");
}

#[test]
fn bad_usage_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(BIN).args(args).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (code, err) = run(&["probe", "--list", "/nonexistent/list.csv"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot open the test list"), "{err}");
    let (code, err) = run(&["probe", "--ca-file", "/nonexistent/ca.pem", "https://x.com/"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    let (code, err) = run(&["probe", "--control", "ftp://th.example/", "https://x.com/"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("http:// or https://"), "{err}");
    let bad_db = dir.path().join("asn.csv");
    std::fs::File::create(&bad_db)
        .unwrap()
        .write_all(b"1.0.0.0,1.0.0.255,13335,Cloudflare\nbroken row\n")
        .unwrap();
    let (code, err) = run(&[
        "control",
        "--listen",
        "127.0.0.1:0",
        "--asn-db",
        bad_db.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("line 2"), "{err}");
    let (code, _) = run(&["probe", "--resolver", "not-an-address"]);
    assert_eq!(code, Some(2));
    let (code, err) = run(&["probe", "--decoy", "decoy.example/big.js", "https://x.com/"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--decoy") && err.contains("not a URL"), "{err}");
    let (code, err) = run(&[
        "probe",
        "--large-resource",
        "ftp://abs.twimg.com/x.js",
        "https://x.com/",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--large-resource"), "{err}");
    let (code, _) = run(&["probe", "--quic", "sometimes", "https://x.com/"]);
    assert_eq!(code, Some(2));
}

#[test]
fn control_refuses_private_addresses_unless_allowed() {
    let (_control, url) = start_server(&["control", "--listen", "127.0.0.8:0"], false);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answer = rt.block_on(async {
        let tls = censorwatch_probe::TlsSettings::new(&[]).unwrap();
        let client = censorwatch_probe::ControlClient::new(url.parse().unwrap(), tls, Duration::from_secs(10)).unwrap();
        let req = censorwatch_probe::th::request_for("http://127.0.0.9:9/", vec!["127.0.0.9:9".into()]);
        client.measure(&req).await.unwrap()
    });
    // The bogon endpoint is neither connected to nor listed; the fetch fails as a bogon.
    assert!(answer.tcp_connect.unwrap().is_empty());
    let http = answer.http_request.unwrap();
    assert_eq!(http.failure.unwrap().as_str(), "dns_bogon_error");
    assert_eq!(answer.ip_info.unwrap()["127.0.0.9"].flags, Some(1 | 4));
}
