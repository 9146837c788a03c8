//! `censorwatch probe`: measure URLs from this network with censorwatch's engine
//! (`censorwatch-probe`), ask the control for its view, and print each verdict — a table for
//! people, one `{"input", "verdict", "measurement"}` object per URL with `--json` — optionally
//! appending the OONI measurements to a JSONL file and submitting them to a collector.
//!
//! An input that is not an http(s) URL is reported and skipped; the others are still measured.
//! Exit codes: 0 all measured, 1 some input could not be measured (or the submission failed),
//! 2 bad usage (an unreadable list or CA file, a bad control URL).

use anyhow::Context;
use censorwatch_model::{Status, parse_test_list};
use censorwatch_probe::dns::{self, DnsConfig};
use censorwatch_probe::targets::DEFAULT_TARGETS;
use censorwatch_probe::{ControlClient, NetworkInfo, Outcome, Probe, ProbeConfig, QuicMode, TlsSettings};
use censorwatch_verdict::Analyzer;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `censorwatch probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// URLs to measure (http:// or https://). Without URLs or --list, a built-in list of social
    /// platforms (x.com, twitter.com, the twimg.com CDNs, t.co, Facebook, YouTube, WhatsApp,
    /// Telegram, Signal, TikTok, Instagram).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// A Citizen Lab test list (CSV: url,category_code,…) of URLs to measure as well.
    #[arg(long, value_name = "FILE.csv")]
    pub list: Option<PathBuf>,
    /// The control server (censorwatch control or an OONI test helper), e.g. https://th.example.org/.
    /// Without one, verdicts can rarely say more than "inconclusive".
    #[arg(long, value_name = "URL")]
    pub control: Option<String>,
    /// Resolve with this UDP resolver instead of the system's (getaddrinfo is then not used).
    #[arg(long, value_name = "IP:PORT")]
    pub resolver: Option<SocketAddr>,
    /// Also trust the CA certificates in this PEM file (a lab's private CA).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Vec<PathBuf>,
    /// Submit the measurements to this censorwatch collector (POST /api/v1/measurements).
    #[arg(long, value_name = "SERVER")]
    pub submit: Option<String>,
    /// Append the OONI measurements to this JSONL file.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
    /// Print one JSON object per URL instead of a table.
    #[arg(long)]
    pub json: bool,
    /// URLs measured at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,
    /// Timeout of each step (DNS, connect, handshake), seconds; HTTP gets 1.5× this.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Also download a 4 MiB reference from the control's /throughput, once, and write its rate
    /// into every measurement (x_throughput_reference) next to the target's own (x_throughput).
    #[arg(long)]
    pub throughput: bool,
    /// The decoy of throughput tests: an innocuous https:// URL serving a large static file over
    /// the same access network; a target's large transfer ≥ 10× slower than both this and the
    /// control's is `throttled`.
    #[arg(long, value_name = "URL")]
    pub decoy: Option<String>,
    /// A large static file whose host is throttle-prone, timed when a URL of that host is measured
    /// (repeatable; replaces the built-in entry for the same host).
    #[arg(long, value_name = "URL")]
    pub large_resource: Vec<String>,
    /// When to try QUIC (HTTP/3) handshakes: `alt-svc` (where the site announces h3), `always`
    /// (every https URL, on the URL's port), `off`.
    #[arg(long, value_name = "WHEN", default_value = "alt-svc", value_parser = ["alt-svc", "always", "off"])]
    pub quic: String,
    /// Connect from this local address (labs).
    #[arg(long, value_name = "IP", hide = true)]
    pub source_ip: Option<IpAddr>,
    /// The decoy SNI of the SNI A/B test.
    #[arg(long, value_name = "NAME", default_value = censorwatch_probe::measure::DEFAULT_DECOY_SNI, hide = true)]
    pub decoy_sni: String,
}

/// The inputs: URLs given, then the list's, or the built-in list when there are none.
pub fn inputs(args: &ProbeArgs) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = args.urls.clone();
    if let Some(path) = &args.list {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open the test list {}", path.display()))?;
        let entries = parse_test_list(file).with_context(|| {
            format!(
                "{} is not a Citizen Lab test list (url,category_code,…)",
                path.display()
            )
        })?;
        out.extend(entries.into_iter().map(|e| e.url));
    }
    if out.is_empty() {
        out = DEFAULT_TARGETS.iter().map(|s| s.to_string()).collect();
    }
    Ok(out)
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.01)).unwrap_or(Duration::from_secs(10))
}

/// Runs `censorwatch probe`.
pub fn run(args: ProbeArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let inputs = match inputs(&args) {
        Ok(i) => i,
        Err(e) => {
            writeln!(err, "censorwatch probe: {e:#}")?;
            return Ok(ExitCode::from(2));
        }
    };
    let cas: Vec<&std::path::Path> = args.ca_file.iter().map(PathBuf::as_path).collect();
    let tls = match TlsSettings::new(&cas) {
        Ok(t) => t,
        Err(e) => {
            writeln!(err, "censorwatch probe: {e}")?;
            return Ok(ExitCode::from(2));
        }
    };
    let step = seconds(args.timeout);
    let mut config = ProbeConfig::new(tls.clone());
    config.dns = match args.resolver {
        Some(r) => DnsConfig {
            getaddrinfo: false,
            udp: Some(r),
            timeout: step,
            ..DnsConfig::default()
        },
        None => DnsConfig {
            getaddrinfo: true,
            udp: dns::system_udp_resolver(),
            timeout: step,
            udp_is_second_opinion: true,
            ..DnsConfig::default()
        },
    };
    config.connect_timeout = step;
    config.tls_timeout = step;
    config.http_timeout = step.mul_f64(1.5);
    config.local_ip = args.source_ip;
    config.decoy_sni = args.decoy_sni.clone();
    config.quic = match args.quic.as_str() {
        "always" => QuicMode::Always,
        "off" => QuicMode::Off,
        _ => QuicMode::AltSvc,
    };
    let web_url = |flag: &str, u: &str| -> Result<url::Url, String> {
        censorwatch_probe::parse_input(u).map_err(|e| format!("{flag} {u:?}: {e}"))
    };
    if let Some(d) = &args.decoy {
        match web_url("--decoy", d) {
            Ok(u) => config.decoy_url = Some(u),
            Err(e) => {
                writeln!(err, "censorwatch probe: {e}")?;
                return Ok(ExitCode::from(2));
            }
        }
    }
    for r in &args.large_resource {
        match web_url("--large-resource", r) {
            Ok(u) => {
                config.large_resources.retain(|old| old.host_str() != u.host_str());
                config.large_resources.push(u);
            }
            Err(e) => {
                writeln!(err, "censorwatch probe: {e}")?;
                return Ok(ExitCode::from(2));
            }
        }
    }
    // The control does DNS, connects, handshakes and the fetch itself: give it their sum.
    let control_timeout = step.mul_f64(4.0);
    let control = match &args.control {
        Some(u) => {
            let url = match url::Url::parse(u) {
                Ok(url) => url,
                Err(e) => {
                    writeln!(err, "censorwatch probe: --control {u:?} is not a URL ({e})")?;
                    return Ok(ExitCode::from(2));
                }
            };
            match ControlClient::new(url, tls.clone(), control_timeout) {
                Ok(c) => Some(c),
                Err(e) => {
                    writeln!(err, "censorwatch probe: {e}")?;
                    return Ok(ExitCode::from(2));
                }
            }
        }
        None => {
            writeln!(
                err,
                "censorwatch probe: no --control given: without the view from an uncensored network, most verdicts will be inconclusive"
            )?;
            None
        }
    };
    let submit = match &args.submit {
        Some(s) => match url::Url::parse(s)
            .map_err(|e| e.to_string())
            .and_then(|u| ControlClient::new(u, tls.clone(), Duration::from_secs(60)))
        {
            Ok(c) => Some(c),
            Err(e) => {
                writeln!(err, "censorwatch probe: --submit {s:?}: {e}")?;
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let mut out_file = match &args.out {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {} for appending", p.display()))?,
        ),
        None => None,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let progress = !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    runtime.block_on(async move {
        if let Some(c) = &control {
            match c.whoami().await {
                Ok(who) => {
                    writeln!(
                        err,
                        "censorwatch probe: network {} ({}), country {}",
                        who.probe_asn,
                        if who.probe_network_name.is_empty() {
                            "unknown name"
                        } else {
                            &who.probe_network_name
                        },
                        who.probe_cc
                    )?;
                    config.network = NetworkInfo {
                        asn: who.probe_asn,
                        cc: who.probe_cc,
                        network_name: who.probe_network_name,
                        public_ip: Some(who.ip),
                    };
                }
                Err(f) => writeln!(
                    err,
                    "censorwatch probe: the control's /whoami failed ({f}); measurements will say AS0 / ZZ"
                )?,
            }
        }
        if let (Some(c), true) = (&control, args.throughput) {
            match c.throughput_reference(4 << 20).await {
                Ok(t) => {
                    writeln!(
                        err,
                        "censorwatch probe: reference transfer from the control: {:.0} KiB/s",
                        t.bytes_per_second / 1024.0
                    )?;
                    config.throughput_reference = Some(t);
                }
                Err(f) => writeln!(
                    err,
                    "censorwatch probe: the control's /throughput failed ({f}); no reference rate"
                )?,
            }
        }
        config.control = control;
        let probe = Probe::new(config, Arc::new(Analyzer::with_builtin_fingerprints()));
        let bar = progress.then(|| {
            let bar = ProgressBar::new(inputs.len() as u64);
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}") {
                bar.set_style(style);
            }
            bar
        });
        let semaphore = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, input) in inputs.iter().enumerate() {
            let (probe, input, semaphore) = (probe.clone(), input.clone(), semaphore.clone());
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                (i, probe.measure(&input).await)
            });
        }
        let mut results: Vec<Option<Result<Outcome, String>>> = vec![None; inputs.len()];
        let mut bad_inputs = 0usize;
        let mut batch = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.context("a measurement task failed")?;
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.set_message(inputs[i].clone());
            }
            let result = result.map_err(|e| e.to_string());
            match &result {
                Ok(o) => {
                    let line = serde_json::to_string(&o.measurement)?;
                    if let Some(f) = out_file.as_mut() {
                        writeln!(f, "{line}").context("cannot append to the --out file")?;
                    }
                    if submit.is_some() {
                        batch.extend_from_slice(line.as_bytes());
                        batch.push(b'\n');
                    }
                    if args.json {
                        let obj =
                            serde_json::json!({"input": o.input, "verdict": o.verdict, "measurement": o.measurement});
                        writeln!(out, "{obj}")?;
                    }
                }
                Err(e) => {
                    bad_inputs += 1;
                    if args.json {
                        writeln!(out, "{}", serde_json::json!({"input": inputs[i], "error": e}))?;
                    }
                }
            }
            results[i] = Some(result);
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if !args.json {
            print_table(out, &inputs, &results)?;
        }
        let mut failed = bad_inputs > 0;
        if let (Some(server), false) = (&submit, batch.is_empty()) {
            match server.post("/api/v1/measurements", batch).await {
                Ok(reply) => {
                    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap_or_default();
                    writeln!(
                        err,
                        "censorwatch probe: submitted to {}: {} accepted, {} rejected",
                        server.url(),
                        v["accepted"],
                        v["rejected"]
                    )?;
                    failed |= v["rejected"].as_u64().is_none_or(|r| r > 0);
                }
                Err(f) => {
                    writeln!(
                        err,
                        "censorwatch probe: submitting to {} failed ({f}); the measurements are {}",
                        server.url(),
                        if args.out.is_some() {
                            "in the --out file"
                        } else {
                            "lost unless you rerun with --out"
                        }
                    )?;
                    failed = true;
                }
            }
        }
        writeln!(
            err,
            "censorwatch probe: {} measured, {} not measurable",
            inputs.len() - bad_inputs,
            bad_inputs
        )?;
        Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    })
}

fn print_table(
    out: &mut dyn Write,
    inputs: &[String],
    results: &[Option<Result<Outcome, String>>],
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<13} {:<18} {:>4}  {:<32}  REASON",
        "VERDICT", "METHOD", "CONF", "URL"
    )?;
    for (input, result) in inputs.iter().zip(results) {
        match result {
            Some(Ok(o)) => {
                let v = &o.verdict;
                let status = match v.status {
                    Status::Blocked => "BLOCKED",
                    Status::Ok => "ok",
                    Status::Down => "down",
                    Status::Inconclusive => "inconclusive",
                };
                writeln!(
                    out,
                    "{:<13} {:<18} {:>4.2}  {:<32}  {}",
                    status,
                    v.method.map_or("-", |m| m.as_str()),
                    v.confidence,
                    input,
                    v.reasons.first().map_or("", String::as_str)
                )?;
            }
            Some(Err(e)) => writeln!(out, "{:<13} {:<18} {:>4}  {:<32}  {e}", "error", "-", "-", input)?,
            None => writeln!(
                out,
                "{:<13} {:<18} {:>4}  {:<32}  not measured",
                "error", "-", "-", input
            )?,
        }
    }
    Ok(())
}
