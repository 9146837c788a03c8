//! A running lab: the namespaces of a [`Plan`], a thread in each, the lab's internet (DNS, the
//! websites, the control) and per ISP a censor that can be replaced between scenarios.
//!
//! Cleanup is guaranteed by ownership: [`Lab`]'s `Drop` stops every namespace thread (closing its
//! sockets) and deletes every namespace it created — on normal exit, on error (a half-built lab is
//! dropped too) and on panic (unwinding drops it). For SIGINT/SIGTERM, which do not unwind,
//! [`install_signal_cleanup`] deletes the namespaces the process registered, then exits.

use crate::censor::{Censor, DNS_PORT, DPI_PORT};
use crate::hosts::{self, Role, SITES};
use crate::netns::{self, LabError, NsThread};
use crate::topology::{CONTROL, CONTROL_PORT, IspLabel, Plan, RESOLVER};
use censorwatch_censor::{CensorStats, DnsCensorConfig, DpiConfig};
use censorwatch_control::{ControlOptions, RateLimit};
use censorwatch_probe::dns::DnsConfig;
use censorwatch_probe::{ControlClient, NetworkInfo, Outcome, Probe, ProbeConfig, TlsSettings};
use censorwatch_verdict::Analyzer;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

/// How a lab measures.
#[derive(Debug, Clone, Copy)]
pub struct LabOptions {
    /// The probe's timeout per step (DNS, connect, handshake); HTTP gets 1.5×, the control 4×.
    pub step: Duration,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            step: Duration::from_millis(2500),
        }
    }
}

/// A censor running in one router namespace.
struct RunningCensor {
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// One ISP's live parts.
struct IspNodes {
    client: NsThread,
    router: NsThread,
    censor: Option<RunningCensor>,
    network: NetworkInfo,
}

/// A running lab. Dropping it tears everything down.
pub struct Lab {
    plan: Plan,
    options: LabOptions,
    created: Vec<String>,
    internet: Option<NsThread>,
    isps: Vec<IspNodes>,
    dir: tempfile::TempDir,
    ca_path: PathBuf,
    analyzer: Arc<Analyzer>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab").field("prefix", &self.plan.prefix).finish()
    }
}

impl Lab {
    /// Builds a lab with one ISP per label: namespaces, links, routes, the internet's hosts and
    /// the control; no censorship until [`Lab::apply`].
    pub fn new(isps: &[IspLabel], options: LabOptions) -> Result<Lab, LabError> {
        netns::require_root(netns::is_root())?;
        netns::sweep_stale();
        let seq = LAB_SEQ.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("{}{seq}-", netns::process_prefix());
        let site_ips: Vec<_> = SITES.iter().map(|s| s.ip).collect();
        let plan = Plan::new(&prefix, isps, &site_ips).map_err(|reason| LabError::Namespace {
            namespace: prefix.clone(),
            reason,
        })?;
        let dir = tempfile::Builder::new()
            .prefix("censorwatch-lab-")
            .tempdir()
            .map_err(|e| LabError::Io {
                what: "creating the lab's temporary directory".into(),
                source: e,
            })?;
        let ca_path = dir.path().join("lab-ca.pem");
        let mut lab = Lab {
            plan,
            options,
            created: Vec::new(),
            internet: None,
            isps: Vec::new(),
            dir,
            ca_path,
            analyzer: Arc::new(Analyzer::with_builtin_fingerprints()),
        };
        // From here on, any error drops `lab`, which deletes what was created.
        for ns in lab.plan.namespaces() {
            netns::add_namespace(&ns)?;
            lab.created.push(ns);
        }
        for cmd in lab.plan.ip_commands() {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            netns::ip(&args)?;
        }
        for isp in &lab.plan.isps {
            netns::sysctl(&isp.router_ns, "net.ipv4.ip_forward=1")?;
        }
        lab.start_internet()?;
        for i in 0..lab.plan.isps.len() {
            let p = lab.plan.isps[i].clone();
            let client = NsThread::start(&p.client_ns, &format!("client{i}"))?;
            let router = NsThread::start(&p.router_ns, &format!("isp{i}"))?;
            lab.isps.push(IspNodes {
                client,
                router,
                censor: None,
                network: NetworkInfo::default(),
            });
            let network = lab.whoami(i)?;
            lab.isps[i].network = network;
        }
        Ok(lab)
    }

    /// The plan it was built from.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The measuring options.
    pub fn options(&self) -> LabOptions {
        self.options
    }

    /// The namespace names this lab created.
    pub fn namespaces(&self) -> &[String] {
        &self.created
    }

    /// The lab CA's certificate file (PEM).
    pub fn ca_path(&self) -> &std::path::Path {
        &self.ca_path
    }

    /// The network ISP `isp`'s probe was told by the control.
    pub fn network(&self, isp: usize) -> Option<&NetworkInfo> {
        self.isps.get(isp).map(|n| &n.network)
    }

    fn start_internet(&mut self) -> Result<(), LabError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |e: std::io::Error| LabError::Io { what, source: e }
        };
        let ca = censorwatch_probe::testbed::TestCa::new("censorwatch lab CA");
        std::fs::write(&self.ca_path, ca.pem()).map_err(io("writing the lab CA"))?;
        let asn_path = self.dir.path().join("asn.csv");
        let cc_path = self.dir.path().join("country.csv");
        std::fs::write(&asn_path, self.plan.asn_table()).map_err(io("writing the lab ASN table"))?;
        std::fs::write(&cc_path, self.plan.country_table()).map_err(io("writing the lab country table"))?;
        let step = self.options.step;
        let state = censorwatch_control::build_state(&ControlOptions {
            asn_db: Some(asn_path),
            country_db: Some(cc_path),
            allow_private: true,
            resolver: Some(SocketAddr::new(IpAddr::V4(RESOLVER), 53)),
            ca_files: vec![self.ca_path.clone()],
            rate: RateLimit {
                per_second: 1000.0,
                burst: 1000.0,
            },
            connect_timeout: step,
            http_timeout: step.mul_f64(1.5),
            ..ControlOptions::default()
        })
        .map_err(|reason| LabError::Namespace {
            namespace: self.plan.internet_ns.clone(),
            reason: format!("cannot build the control: {reason}"),
        })?;
        let names: Vec<&str> = SITES.iter().map(|s| s.name).collect();
        let tls = ca.server_config(&names);
        let inet = NsThread::start(&self.plan.internet_ns, "inet")?;
        let started = inet.block_on(async move {
            let large = hosts::large_resource();
            let dns = tokio::net::UdpSocket::bind((RESOLVER, 53)).await?;
            tokio::spawn(hosts::serve_zone(dns, hosts::zone()));
            for site in SITES.iter().filter(|s| s.role != Role::Down) {
                let http = tokio::net::TcpListener::bind((site.ip, 80)).await?;
                tokio::spawn(hosts::serve_site(http, None, *site, large.clone()));
                if site.role != Role::Blockpage {
                    let https = tokio::net::TcpListener::bind((site.ip, 443)).await?;
                    tokio::spawn(hosts::serve_site(https, Some(tls.clone()), *site, large.clone()));
                }
                if site.role == Role::Web {
                    let udp = std::net::UdpSocket::bind((site.ip, 443))?;
                    tokio::spawn(hosts::serve_quic(udp, tls.clone()));
                }
            }
            let control = tokio::net::TcpListener::bind((CONTROL, CONTROL_PORT)).await?;
            tokio::spawn(censorwatch_control::serve(control, state, std::future::pending()));
            Ok::<(), std::io::Error>(())
        })?;
        self.internet = Some(inet);
        started.map_err(|e| LabError::Io {
            what: "starting the lab's internet hosts".into(),
            source: e,
        })
    }

    fn control_client(&self, tls: TlsSettings) -> ControlClient {
        let url = url::Url::parse(&format!("http://{CONTROL}:{CONTROL_PORT}/")).expect("a valid URL");
        ControlClient::new(url, tls, self.options.step.mul_f64(4.0)).expect("an http URL with a host")
    }

    fn tls(&self) -> Result<TlsSettings, LabError> {
        TlsSettings::new(&[self.ca_path.as_path()]).map_err(|e| LabError::Namespace {
            namespace: self.plan.prefix.clone(),
            reason: format!("cannot load the lab CA: {e}"),
        })
    }

    fn whoami(&self, isp: usize) -> Result<NetworkInfo, LabError> {
        let control = self.control_client(self.tls()?);
        let client = &self.isps[isp].client;
        let who = client.block_on(async move { control.whoami().await })?;
        let who = who.map_err(|f| LabError::Namespace {
            namespace: client.namespace().to_owned(),
            reason: format!("the probe cannot reach the lab's control ({f})"),
        })?;
        Ok(NetworkInfo {
            asn: who.probe_asn,
            cc: who.probe_cc,
            network_name: who.probe_network_name,
            public_ip: Some(who.ip),
        })
    }

    /// The probe configuration for ISP `isp`'s client.
    pub fn probe_config(&self, isp: usize) -> Result<ProbeConfig, LabError> {
        let step = self.options.step;
        let tls = self.tls()?;
        let mut config = ProbeConfig::new(tls.clone());
        config.dns = DnsConfig {
            getaddrinfo: false,
            udp: Some(SocketAddr::new(IpAddr::V4(RESOLVER), 53)),
            timeout: step,
            duplicate_window: Duration::from_millis(300),
            udp_is_second_opinion: false,
        };
        config.connect_timeout = step;
        config.tls_timeout = step;
        config.http_timeout = step.mul_f64(1.5);
        config.control = Some(self.control_client(tls));
        // The throughput test: each website's large resource, the decoy's, the control's
        // reference; 1 MiB or 2 s each, so that a throttled transfer is timed long enough to be
        // judged and the suite stays short.
        config.large_resources = SITES
            .iter()
            .filter(|s| s.role == Role::Web && s.name != hosts::DECOY)
            .filter_map(|s| url::Url::parse(&format!("https://{}{}", s.name, hosts::LARGE_PATH)).ok())
            .collect();
        config.decoy_url = url::Url::parse(&format!("https://{}{}", hosts::DECOY, hosts::LARGE_PATH)).ok();
        config.throughput_max_bytes = hosts::LARGE_BYTES;
        config.throughput_max_duration = Duration::from_secs(2);
        config.network = self.isps.get(isp).map(|n| n.network.clone()).unwrap_or_default();
        Ok(config)
    }

    /// Measures `url` from ISP `isp`'s client with `config` (see [`Lab::probe_config`]).
    pub fn measure_with(&self, isp: usize, config: ProbeConfig, url: &str) -> Result<Outcome, LabError> {
        let nodes = self.isps.get(isp).ok_or_else(|| LabError::Namespace {
            namespace: self.plan.prefix.clone(),
            reason: format!("the lab has no ISP {isp}"),
        })?;
        let probe = Probe::new(config, self.analyzer.clone());
        let input = url.to_owned();
        let outcome = nodes.client.block_on(async move { probe.measure(&input).await })?;
        outcome.map_err(|e| LabError::Namespace {
            namespace: nodes.client.namespace().to_owned(),
            reason: e.to_string(),
        })
    }

    /// Measures every `(isp, url)` of `jobs` at once (each on its ISP's client), in order.
    pub fn measure_many(&self, jobs: &[(usize, String)]) -> Result<Vec<Result<Outcome, LabError>>, LabError> {
        let mut pending = Vec::new();
        for (isp, url) in jobs {
            let config = self.probe_config(*isp)?;
            let nodes = self.isps.get(*isp).ok_or_else(|| LabError::Namespace {
                namespace: self.plan.prefix.clone(),
                reason: format!("the lab has no ISP {isp}"),
            })?;
            let probe = Probe::new(config, self.analyzer.clone());
            let input = url.clone();
            let task = nodes.client.spawn(async move { probe.measure(&input).await });
            pending.push((nodes, task));
        }
        let mut out = Vec::new();
        for (nodes, task) in pending {
            let joined = nodes.client.block_on(task)?;
            out.push(match joined {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(e)) => Err(LabError::Namespace {
                    namespace: nodes.client.namespace().to_owned(),
                    reason: e.to_string(),
                }),
                Err(e) => Err(LabError::Namespace {
                    namespace: nodes.client.namespace().to_owned(),
                    reason: format!("a measurement task failed: {e}"),
                }),
            });
        }
        Ok(out)
    }

    /// Runs `future` in ISP `isp`'s client namespace and waits for it (sockets it opens are the
    /// client's: for checks a probe does not make).
    pub fn run_in_client<F>(&self, isp: usize, future: F) -> Result<F::Output, LabError>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let nodes = self.isps.get(isp).ok_or_else(|| LabError::Namespace {
            namespace: self.plan.prefix.clone(),
            reason: format!("the lab has no ISP {isp}"),
        })?;
        nodes.client.block_on(future)
    }

    /// Whether ISP `isp`'s client can open a TCP connection to `addr` within `timeout`.
    pub fn reachable(&self, isp: usize, addr: SocketAddr, timeout: Duration) -> Result<bool, LabError> {
        let nodes = self.isps.get(isp).ok_or_else(|| LabError::Namespace {
            namespace: self.plan.prefix.clone(),
            reason: format!("the lab has no ISP {isp}"),
        })?;
        nodes.client.block_on(async move {
            matches!(
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
                Ok(Ok(_))
            )
        })
    }

    /// Measures `url` from ISP `isp`'s client.
    pub fn measure(&self, isp: usize, url: &str) -> Result<Outcome, LabError> {
        let config = self.probe_config(isp)?;
        self.measure_with(isp, config, url)
    }

    /// Replaces ISP `isp`'s censor: stops the running DPI and DNS censors, loads the new nftables
    /// ruleset, and starts new DPI/DNS censors when the censor has rules for them (their schedules
    /// start now).
    pub fn apply(&mut self, isp: usize, censor: &Censor) -> Result<(), LabError> {
        let prefix = self.plan.prefix.clone();
        let nodes = self.isps.get_mut(isp).ok_or_else(|| LabError::Namespace {
            namespace: prefix,
            reason: format!("the lab has no ISP {isp}"),
        })?;
        if let Some(running) = nodes.censor.take() {
            drop(running.stop);
            for task in running.tasks {
                let _ = nodes.router.block_on(task);
            }
        }
        netns::nft(nodes.router.namespace(), &censor.nft_ruleset())?;
        let dpi = (!censor.dpi.is_empty()).then(|| DpiConfig {
            sniff_timeout: Duration::from_secs(2),
            ..DpiConfig::new(censor.dpi.clone())
        });
        let dns = (!censor.dns.is_empty()).then(|| DnsCensorConfig {
            upstream: SocketAddr::new(IpAddr::V4(RESOLVER), 53),
            rules: censor.dns.clone(),
        });
        let started = nodes.router.block_on(async move {
            let mut stop = Vec::new();
            let mut tasks = Vec::new();
            if let Some(config) = dpi {
                let listener = tokio::net::TcpListener::bind(("0.0.0.0", DPI_PORT)).await?;
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                stop.push(tx);
                tasks.push(tokio::spawn(censorwatch_censor::serve_dpi(
                    listener,
                    config,
                    CensorStats::new(),
                    async {
                        let _ = rx.await;
                    },
                )));
            }
            if let Some(config) = dns {
                let socket = tokio::net::UdpSocket::bind(("0.0.0.0", DNS_PORT)).await?;
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                stop.push(tx);
                tasks.push(tokio::spawn(censorwatch_censor::serve_dns(
                    socket,
                    config,
                    CensorStats::new(),
                    async {
                        let _ = rx.await;
                    },
                )));
            }
            Ok::<_, std::io::Error>(RunningCensor { stop, tasks })
        })?;
        let running = started.map_err(|e| LabError::Io {
            what: format!("starting the censor in {}", nodes.router.namespace()),
            source: e,
        })?;
        nodes.censor = Some(running);
        Ok(())
    }

    /// Tears the lab down now (dropping it does the same); the first error, if any.
    pub fn shutdown(mut self) -> Result<(), LabError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), LabError> {
        // Threads first: their runtimes close every socket; then the namespaces (with their veths
        // and nftables tables).
        for nodes in self.isps.drain(..) {
            drop(nodes.censor);
            drop(nodes.client);
            drop(nodes.router);
        }
        drop(self.internet.take());
        let mut first = None;
        for ns in self.created.drain(..).rev() {
            if let Err(e) = netns::delete_namespace(&ns) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("censorwatch lab: teardown: {e}");
        }
    }
}

/// On SIGINT or SIGTERM: deletes every namespace this process registered, says so on stderr, and
/// exits with 130 (SIGINT) or 143 (SIGTERM). Signals do not unwind, so `Drop` cannot do it.
/// Call once, early, from a command (not from tests that share the process).
pub fn install_signal_cleanup() -> Result<(), LabError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("cw-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (mut int, mut term) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                    (Ok(i), Ok(t)) => (i, t),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let code = tokio::select! {
                    _ = int.recv() => 130,
                    _ = term.recv() => 143,
                };
                let deleted = netns::delete_all_registered();
                eprintln!(
                    "censorwatch lab: interrupted; deleted {} namespace(s){}",
                    deleted.len(),
                    if deleted.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", deleted.join(", "))
                    }
                );
                std::process::exit(code);
            });
        })
        .map_err(|e| LabError::Io {
            what: "starting the signal thread".into(),
            source: e,
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LabError::Io {
            what: "installing the SIGINT handler".into(),
            source: e,
        }),
        Err(_) => Err(LabError::Io {
            what: "installing the SIGINT handler".into(),
            source: std::io::Error::other("the signal thread died"),
        }),
    }
}
