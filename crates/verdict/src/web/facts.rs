//! Digests Web Connectivity test keys into the facts verdict rules reason about: DNS lookups per
//! resolver, one observation per endpoint attempt (TCP connect, TLS handshake and HTTP round trip
//! joined by transaction id, as OONI's minipipeline does), the control's view, and DNS consistency.
//!
//! Works on v0.5 ("LTE", with transaction ids and `depth=N` tags) and on v0.4 and older (no ids:
//! connects and requests become separate observations; request depth comes from list order).

use crate::bogon::{BogonKind, bogon_kind};
use censorwatch_model::failure::{Failure, FailureKind};
use censorwatch_model::web_connectivity::{
    ControlResponse, HttpTransaction, Query, TlsHandshake, WebConnectivityTestKeys,
};
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

/// Which resolver a lookup used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// getaddrinfo / the system resolver (what OONI's classic analysis uses).
    System,
    /// A UDP resolver queried directly from the probe's network.
    Udp,
    /// DNS over HTTPS: encrypted, so a second control from the probe's own vantage point.
    Doh,
}

/// One name resolution (A and AAAA queries of one transaction merged).
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    pub(crate) engine: Engine,
    pub(crate) hostname: String,
    pub(crate) depth: u32,
    /// Set when no query of the lookup returned an address.
    pub(crate) failure: Option<Failure>,
    pub(crate) addrs: Vec<IpAddr>,
    /// ASNs the probe annotated answers with (0 excluded).
    pub(crate) asns: Vec<i64>,
    /// Non-IP answers (CNAME targets), for fingerprint matching.
    pub(crate) names: Vec<String>,
}

/// The furthest step an endpoint observation reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    Tcp,
    Tls,
    Http,
}

/// One attempt at one endpoint: connect, then maybe TLS, then maybe HTTP.
#[derive(Debug, Clone)]
pub(crate) struct EndpointObs<'a> {
    pub(crate) depth: u32,
    pub(crate) ip: Option<IpAddr>,
    /// `ip:port` as the control keys it.
    pub(crate) endpoint: Option<String>,
    pub(crate) step: Step,
    /// The failure of the furthest step (`None` = it succeeded).
    pub(crate) failure: Option<Failure>,
    pub(crate) tls: Option<&'a TlsHandshake>,
    pub(crate) http: Option<&'a HttpTransaction>,
    /// Whether the address came from the probe's system resolver (the path a user takes), rather
    /// than from DoH or the control (which LTE probes also try, to see past DNS blocking).
    pub(crate) on_user_path: bool,
}

impl EndpointObs<'_> {
    pub(crate) fn status_code(&self) -> Option<i64> {
        self.http
            .and_then(|h| h.response.as_ref())
            .and_then(|r| r.code)
            .filter(|c| *c > 0)
    }

    /// A response that is not a redirect (2xx, 4xx, 5xx), as OONI's LTE defines "final".
    pub(crate) fn is_final_response(&self) -> bool {
        self.failure.is_none()
            && self
                .status_code()
                .is_some_and(|c| !(100..400).contains(&c) || (200..300).contains(&c))
    }

    /// Whether this observation carried HTTP over a TLS handshake that succeeded with verification;
    /// in old data without handshake records, whether it fetched an `https://` URL without failure
    /// (Web Connectivity v0.4's first rule).
    pub(crate) fn over_valid_tls(&self) -> bool {
        if let Some(tls) = self.tls {
            return tls.failure.is_none() && tls.no_tls_verify != Some(true);
        }
        self.http
            .and_then(|h| h.request.as_ref())
            .and_then(|r| r.url.as_deref())
            .is_some_and(|u| u.starts_with("https://"))
            && self.failure.is_none()
    }
}

/// Stands in for a failure the control reported without a failure string.
static UNSPECIFIED_FAILURE: Failure = Failure::Unknown(String::new());

/// What the control (test helper) saw, if it answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Control<'a> {
    pub(crate) response: &'a ControlResponse,
}

impl<'a> Control<'a> {
    /// The control's DNS outcome: `Some(Ok(addrs))`, `Some(Err(failure))`, or `None` if absent.
    pub(crate) fn dns(&self) -> Option<Result<Vec<&'a str>, &'a Failure>> {
        let dns = self.response.dns.as_ref()?;
        if let Some(f) = &dns.failure {
            return Some(Err(f));
        }
        let addrs = dns.addrs.as_ref()?;
        Some(Ok(addrs.iter().map(String::as_str).collect()))
    }

    /// The control's IP addresses (non-IP entries, e.g. CNAME targets in old helpers, skipped).
    pub(crate) fn ips(&self) -> Vec<IpAddr> {
        match self.dns() {
            Some(Ok(addrs)) => addrs.iter().filter_map(|a| a.parse().ok()).collect(),
            _ => Vec::new(),
        }
    }

    /// The control's HTTP failure: `Some(None)` = it fetched the page, `Some(Some(f))` = it failed,
    /// `None` = no HTTP result.
    pub(crate) fn http_failure(&self) -> Option<Option<&'a Failure>> {
        let http = self.response.http_request.as_ref()?;
        match (&http.failure, http.status_code) {
            (Some(f), _) => Some(Some(f)),
            (None, Some(code)) if code > 0 => Some(None),
            _ => None,
        }
    }

    pub(crate) fn tcp(&self, endpoint: &str) -> Option<Option<&'a Failure>> {
        let entry = self.response.tcp_connect.as_ref()?.get(endpoint)?;
        match (entry.status, &entry.failure) {
            (Some(true), _) => Some(None),
            (_, Some(f)) => Some(Some(f)),
            (Some(false), None) => Some(Some(&UNSPECIFIED_FAILURE)),
            _ => None,
        }
    }

    pub(crate) fn tls(&self, endpoint: &str) -> Option<Option<&'a Failure>> {
        let entry = self.response.tls_handshake.as_ref()?.get(endpoint)?;
        match (entry.status, &entry.failure) {
            (Some(true), _) => Some(None),
            (_, Some(f)) => Some(Some(f)),
            _ => None,
        }
    }

    /// ASNs of the control's addresses, from its `ip_info`.
    pub(crate) fn asns(&self) -> HashSet<i64> {
        let mut out = HashSet::new();
        let Some(info) = &self.response.ip_info else { return out };
        let control_ips: HashSet<&str> = match self.dns() {
            Some(Ok(addrs)) => addrs.into_iter().collect(),
            _ => HashSet::new(),
        };
        for (ip, i) in info {
            let resolved_by_control = i.flags.is_some_and(|f| f & 2 != 0) || control_ips.contains(ip.as_str());
            if let (true, Some(asn)) = (resolved_by_control, i.asn) {
                if asn > 0 {
                    out.insert(asn);
                }
            }
        }
        out
    }

    /// ASN of one address according to the control, if known.
    pub(crate) fn asn_of(&self, ip: &str) -> Option<i64> {
        self.response.ip_info.as_ref()?.get(ip)?.asn.filter(|a| *a > 0)
    }

    /// Whether the control validated a TLS certificate for the domain on this address (flag 8).
    pub(crate) fn tls_valid_for(&self, ip: &str) -> bool {
        self.response
            .ip_info
            .as_ref()
            .and_then(|i| i.get(ip))
            .and_then(|i| i.flags)
            .is_some_and(|f| f & 8 != 0)
    }
}

/// One thing [`Facts::walk`] visits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WalkItem<'f, 'a> {
    /// An endpoint attempt.
    Endpoint(&'f EndpointObs<'a>),
    /// A DNS lookup that failed.
    FailedLookup(&'f Lookup),
}

/// DNS consistency, recomputed from the observations.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Consistency {
    /// The probe's answers are the site's (why, for the reasons).
    Consistent(String),
    /// The probe's answers are not the site's (why).
    Inconsistent(Inconsistency),
    /// Not enough data.
    Unknown,
}

/// How the probe's DNS differs from the control's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inconsistency {
    /// The probe's lookup failed while the control resolved the name.
    Failure { failure: Failure, control: Vec<String> },
    /// The probe got bogons, the control public addresses.
    Bogon { addr: IpAddr, kind: BogonKind },
    /// The probe got addresses the control knows nothing of.
    Addresses { probe: Vec<IpAddr>, control: Vec<String> },
    /// The control says the name does not exist, the probe got addresses.
    GhostAnswer {
        probe: Vec<IpAddr>,
        control_failure: Failure,
    },
}

/// Everything the rules need, borrowed from the test keys.
#[derive(Debug)]
pub(crate) struct Facts<'a> {
    pub(crate) keys: &'a WebConnectivityTestKeys,
    pub(crate) host: Option<String>,
    pub(crate) probe_cc: &'a str,
    pub(crate) control: Option<Control<'a>>,
    pub(crate) lookups: Vec<Lookup>,
    pub(crate) observations: Vec<EndpointObs<'a>>,
    /// DNS consistency using every probe-side resolver and TLS validation (censorwatch's view).
    pub(crate) consistency: Consistency,
    /// DNS consistency as OONI's classic analysis computes it (system resolver only, no TLS).
    pub(crate) classic_consistency: Consistency,
}

fn depth_of(tags: Option<&Vec<String>>) -> Option<u32> {
    tags?.iter().find_map(|t| t.strip_prefix("depth=")?.parse().ok())
}

fn engine_of(q: &Query) -> Engine {
    match q.engine.as_deref() {
        Some("doh") => Engine::Doh,
        Some("udp") => Engine::Udp,
        _ => Engine::System,
    }
}

/// Lowercased, IDNA-encoded host (so `Яндекс.рф` and `xn--d1acpjx3f.xn--p1ai` compare equal).
pub(crate) fn normalize_host(h: &str) -> String {
    let h = h.trim_end_matches('.');
    if h.is_ascii() {
        h.to_ascii_lowercase()
    } else {
        censorwatch_model::url::host_of(&format!("http://{h}/")).unwrap_or_else(|| h.to_lowercase())
    }
}

fn collect_lookups(keys: &WebConnectivityTestKeys) -> Vec<Lookup> {
    // Group queries by (engine, transaction id, hostname); old data has no ids, so all queries of
    // one engine and name form one lookup.
    let mut groups: BTreeMap<(u8, i64, String), Lookup> = BTreeMap::new();
    for q in keys.queries.iter().flatten() {
        let engine = engine_of(q);
        let hostname = normalize_host(q.hostname.as_deref().unwrap_or(""));
        let key = (engine as u8, q.transaction_id.unwrap_or(-1), hostname.clone());
        let lookup = groups.entry(key).or_insert_with(|| Lookup {
            engine,
            hostname,
            depth: depth_of(q.tags.as_ref()).unwrap_or(0),
            failure: None,
            addrs: Vec::new(),
            asns: Vec::new(),
            names: Vec::new(),
        });
        for a in q.answers.iter().flatten() {
            if let Some(ip) = a.ip().and_then(|s| s.parse::<IpAddr>().ok()) {
                if !lookup.addrs.contains(&ip) {
                    lookup.addrs.push(ip);
                }
                if let Some(asn) = a.asn.filter(|a| *a > 0) {
                    lookup.asns.push(asn);
                }
            } else if let Some(name) = a.hostname.as_deref() {
                lookup.names.push(name.to_owned());
            }
        }
        if let Some(f) = &q.failure {
            // Keep the most telling failure: NXDOMAIN beats "no answer" (the AAAA query of a
            // v4-only site fails with dns_no_answer while A succeeds).
            let better = match &lookup.failure {
                None => true,
                Some(old) => old.kind() == FailureKind::NoAnswer && f.kind() != FailureKind::NoAnswer,
            };
            if better {
                lookup.failure = Some(f.clone());
            }
        }
    }
    let mut out: Vec<Lookup> = groups.into_values().collect();
    for l in &mut out {
        if !l.addrs.is_empty() {
            l.failure = None;
        } else if l.failure.is_none() {
            l.failure = Some(Failure::DnsNoAnswer);
        }
    }
    // Old probes recorded the lookup's failure only in dns_experiment_failure.
    if out.iter().all(|l| l.engine != Engine::System) {
        if let Some(f) = &keys.dns_experiment_failure {
            out.push(Lookup {
                engine: Engine::System,
                hostname: String::new(),
                depth: 0,
                failure: Some(f.clone()),
                addrs: Vec::new(),
                asns: Vec::new(),
                names: Vec::new(),
            });
        }
    }
    out
}

pub(crate) fn parse_endpoint(address: &str) -> Option<IpAddr> {
    if let Ok(sa) = address.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    address.parse().ok()
}

fn collect_observations(keys: &WebConnectivityTestKeys) -> Vec<EndpointObs<'_>> {
    let tls_by_id: BTreeMap<i64, &TlsHandshake> = keys
        .tls_handshakes
        .iter()
        .flatten()
        .filter_map(|t| Some((t.transaction_id?, t)))
        .collect();
    let mut http_by_id: BTreeMap<i64, &HttpTransaction> = BTreeMap::new();
    let mut unjoined_http = Vec::new();
    let requests = keys.requests.as_deref().unwrap_or(&[]);
    for (i, r) in requests.iter().enumerate() {
        match r.transaction_id {
            Some(id) if id > 0 => {
                http_by_id.entry(id).or_insert(r);
            }
            _ => unjoined_http.push((i, r)),
        }
    }
    let mut used_tls = HashSet::new();
    let mut used_http = HashSet::new();
    let mut out = Vec::new();
    for c in keys.tcp_connect.iter().flatten() {
        let ip = c.ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
        let endpoint = match (&c.ip, c.port) {
            (Some(ip), Some(port)) if ip.contains(':') => Some(format!("[{ip}]:{port}")),
            (Some(ip), Some(port)) => Some(format!("{ip}:{port}")),
            _ => None,
        };
        let status = c.status.as_ref();
        let tcp_failure = status.and_then(|s| s.failure.clone()).or_else(|| {
            (status.and_then(|s| s.success) == Some(false)).then(|| Failure::Unknown("unknown_failure".into()))
        });
        let id = c.transaction_id.filter(|id| *id > 0);
        let tls = id.and_then(|id| tls_by_id.get(&id).copied());
        let http = id.and_then(|id| http_by_id.get(&id).copied());
        if let Some(id) = id {
            if tls.is_some() {
                used_tls.insert(id);
            }
            if http.is_some() {
                used_http.insert(id);
            }
        }
        let (step, failure) = if tcp_failure.is_some() {
            (Step::Tcp, tcp_failure)
        } else if let Some(h) = http {
            (Step::Http, h.failure.clone())
        } else if let Some(t) = tls {
            (Step::Tls, t.failure.clone())
        } else {
            (Step::Tcp, None)
        };
        out.push(EndpointObs {
            depth: depth_of(c.tags.as_ref()).unwrap_or(0),
            ip,
            endpoint,
            step,
            failure,
            tls,
            http,
            on_user_path: true,
        });
    }
    // TLS handshakes without a matching connect (QUIC, or data with no ids).
    for t in keys.tls_handshakes.iter().flatten() {
        if t.transaction_id.is_some_and(|id| used_tls.contains(&id)) {
            continue;
        }
        let http = t.transaction_id.and_then(|id| http_by_id.get(&id).copied());
        if let Some(id) = t.transaction_id.filter(|_| http.is_some()) {
            used_http.insert(id);
        }
        let (step, failure) = match http {
            Some(h) if t.failure.is_none() => (Step::Http, h.failure.clone()),
            _ => (Step::Tls, t.failure.clone()),
        };
        out.push(EndpointObs {
            depth: depth_of(t.tags.as_ref()).unwrap_or(0),
            ip: t.address.as_deref().and_then(parse_endpoint),
            endpoint: t.address.clone(),
            step,
            failure,
            tls: Some(t),
            http,
            on_user_path: true,
        });
    }
    // Old probes sometimes record the HTTP step's failure only in http_experiment_failure.
    // Only when every connect succeeded, so the failure can only be the HTTP step's.
    let connects = keys.tcp_connect.as_deref().unwrap_or(&[]);
    let all_connected = !connects.is_empty()
        && connects
            .iter()
            .all(|c| c.status.as_ref().is_some_and(|s| s.success == Some(true)));
    if requests.is_empty() && all_connected && keys.tls_handshakes.as_ref().is_none_or(|t| t.is_empty()) {
        if let Some(failure) = keys.http_experiment_failure.as_ref().filter(|f| !f.is_dns()) {
            out.push(EndpointObs {
                depth: 0,
                ip: None,
                endpoint: None,
                step: Step::Http,
                failure: Some(failure.clone()),
                tls: None,
                http: None,
                on_user_path: true,
            });
        }
    }
    // HTTP transactions with no connect: v0.4 and older. The list is last-redirect-first.
    let n = requests.len() as u32;
    let leftovers = http_by_id
        .iter()
        .filter(|(id, _)| !used_http.contains(*id))
        .map(|(_, r)| (requests.iter().position(|x| std::ptr::eq(x, *r)).unwrap_or(0), *r))
        .chain(unjoined_http);
    for (i, r) in leftovers {
        let depth = depth_of(r.tags.as_ref()).unwrap_or(n.saturating_sub(1 + i as u32));
        let failure = r.failure.clone();
        out.push(EndpointObs {
            depth,
            ip: r.address.as_deref().and_then(parse_endpoint),
            endpoint: r.address.clone(),
            step: Step::Http,
            failure,
            tls: None,
            http: Some(r),
            on_user_path: true,
        });
    }
    out
}

/// Probe-side lookups of `host` at depth 0 that are not DoH.
fn input_lookups<'l>(lookups: &'l [Lookup], host: Option<&str>, system_only: bool) -> Vec<&'l Lookup> {
    lookups
        .iter()
        .filter(|l| l.engine != Engine::Doh && (!system_only || l.engine == Engine::System))
        .filter(|l| l.depth == 0 && (l.hostname.is_empty() || host.is_none_or(|h| l.hostname == h)))
        .collect()
}

pub(crate) fn consistency(facts: &Facts<'_>, system_only: bool, use_tls: bool) -> Consistency {
    let Some(control) = facts.control else {
        return Consistency::Unknown;
    };
    let lookups = input_lookups(&facts.lookups, facts.host.as_deref(), system_only);
    if lookups.is_empty() {
        return Consistency::Unknown;
    }
    let control_dns = control.dns();
    let control_ips = control.ips();
    let control_strs: Vec<String> = match &control_dns {
        Some(Ok(a)) => a.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    };
    let control_asns = control.asns();
    let control_has_bogon = control_ips.iter().any(|ip| bogon_kind(*ip).is_some());
    let mut consistent_reason = None;
    for l in &lookups {
        if let Some(f) = &l.failure {
            match &control_dns {
                Some(Err(cf)) => {
                    consistent_reason = Some(format!("the control's lookup failed too ({cf})"));
                }
                Some(Ok(addrs)) if addrs.is_empty() => {
                    consistent_reason = Some("the control got no addresses either".to_owned());
                }
                Some(Ok(_)) => {
                    return Consistency::Inconsistent(Inconsistency::Failure {
                        failure: f.clone(),
                        control: control_strs,
                    });
                }
                None => {}
            }
            continue;
        }
        // Successful lookup.
        if let Some(Err(cf)) = &control_dns {
            if cf.kind() == FailureKind::Nxdomain {
                return Consistency::Inconsistent(Inconsistency::GhostAnswer {
                    probe: l.addrs.clone(),
                    control_failure: (*cf).clone(),
                });
            }
            continue;
        }
        if control_dns.is_none() {
            continue;
        }
        if control_ips.is_empty() {
            return Consistency::Inconsistent(Inconsistency::Addresses {
                probe: l.addrs.clone(),
                control: control_strs,
            });
        }
        if let Some(b) = l.addrs.iter().find(|ip| bogon_kind(**ip).is_some()) {
            if !control_has_bogon || !control_ips.contains(b) {
                return Consistency::Inconsistent(Inconsistency::Bogon {
                    addr: *b,
                    kind: bogon_kind(*b).unwrap(),
                });
            }
        }
        if let Some(ip) = l.addrs.iter().find(|ip| control_ips.contains(ip)) {
            consistent_reason.get_or_insert_with(|| format!("the probe's answer {ip} is also the control's"));
            continue;
        }
        let probe_asns: Vec<i64> = if l.asns.is_empty() {
            l.addrs
                .iter()
                .filter_map(|ip| control.asn_of(&ip.to_string()))
                .collect()
        } else {
            l.asns.clone()
        };
        if let Some(asn) = probe_asns.iter().find(|a| control_asns.contains(a)) {
            consistent_reason.get_or_insert_with(|| format!("the probe's answers are in AS{asn}, like the control's"));
            continue;
        }
        if use_tls {
            if let Some(ip) = l.addrs.iter().find(|ip| tls_validates(facts, control, **ip)) {
                consistent_reason.get_or_insert_with(|| {
                    format!("a TLS certificate valid for the name was served on the probe's answer {ip}")
                });
                continue;
            }
        }
        return Consistency::Inconsistent(Inconsistency::Addresses {
            probe: l.addrs.clone(),
            control: control_strs,
        });
    }
    match consistent_reason {
        Some(r) => Consistency::Consistent(r),
        None => Consistency::Unknown,
    }
}

/// Whether a verified TLS handshake for the input host succeeded on `ip` (probe side), or the
/// control validated the certificate on it.
fn tls_validates(facts: &Facts<'_>, control: Control<'_>, ip: IpAddr) -> bool {
    if control.tls_valid_for(&ip.to_string()) {
        return true;
    }
    let host = facts.host.as_deref().unwrap_or("");
    facts.observations.iter().any(|o| {
        o.ip == Some(ip)
            && o.tls.is_some_and(|t| {
                t.failure.is_none()
                    && t.no_tls_verify != Some(true)
                    && t.server_name.as_deref().is_some_and(|s| normalize_host(s) == host)
            })
    })
}

/// Marks endpoints whose address the system resolver did not give (LTE also connects to addresses
/// from DoH and from the control). Data without system lookups (old probes) keeps everything.
fn mark_user_path(facts: &mut Facts<'_>) {
    let system: Vec<&Lookup> = facts.lookups.iter().filter(|l| l.engine == Engine::System).collect();
    if system.is_empty() || facts.keys.queries.as_ref().is_none_or(|q| q.is_empty()) {
        return;
    }
    let user_addrs: HashSet<IpAddr> = system.iter().flat_map(|l| l.addrs.iter().copied()).collect();
    for o in &mut facts.observations {
        if let Some(ip) = o.ip {
            o.on_user_path = user_addrs.contains(&ip);
        }
    }
}

impl<'a> Facts<'a> {
    pub(crate) fn new(keys: &'a WebConnectivityTestKeys, input: Option<&str>, probe_cc: &'a str) -> Facts<'a> {
        let control = match (&keys.control_failure, &keys.control) {
            (None, Some(c)) if c.dns.is_some() || c.http_request.is_some() || c.tcp_connect.is_some() => {
                Some(Control { response: c })
            }
            _ => None,
        };
        let mut facts = Facts {
            keys,
            host: input.and_then(censorwatch_model::url::host_of),
            probe_cc,
            control,
            lookups: collect_lookups(keys),
            observations: collect_observations(keys),
            consistency: Consistency::Unknown,
            classic_consistency: Consistency::Unknown,
        };
        mark_user_path(&mut facts);
        facts.consistency = consistency(&facts, false, true);
        facts.classic_consistency = consistency(&facts, true, false);
        facts
    }

    /// The user-path observations in the order OONI's LTE walks them: deepest redirect first,
    /// then HTTP before TLS before TCP, then successes before failures.
    pub(crate) fn linear(&self) -> Vec<&EndpointObs<'a>> {
        let mut v: Vec<&EndpointObs<'a>> = self.observations.iter().filter(|o| o.on_user_path).collect();
        v.sort_by(|a, b| {
            b.depth.cmp(&a.depth).then(b.step.cmp(&a.step)).then(
                a.failure
                    .as_ref()
                    .map(Failure::as_str)
                    .cmp(&b.failure.as_ref().map(Failure::as_str)),
            )
        });
        v
    }

    /// What the verdict rules look at, in the order OONI's LTE looks at it: from the last redirect
    /// back to the first; within one, the user-path endpoints ([`Facts::linear`] order), then the
    /// first failed lookup. `system_only` restricts lookups to the system resolver (OONI's classic
    /// view). The first item a rule can decide on is the verdict.
    pub(crate) fn walk(&self, system_only: bool) -> Vec<WalkItem<'_, 'a>> {
        let linear = self.linear();
        let failed = self.failed_lookups(system_only);
        let max_depth = linear
            .iter()
            .map(|e| e.depth)
            .chain(self.lookups.iter().map(|l| l.depth))
            .max()
            .unwrap_or(0);
        let mut out = Vec::with_capacity(linear.len() + 1);
        for depth in (0..=max_depth).rev() {
            out.extend(
                linear
                    .iter()
                    .filter(|e| e.depth == depth)
                    .map(|e| WalkItem::Endpoint(e)),
            );
            out.extend(
                failed
                    .iter()
                    .find(|l| l.depth == depth)
                    .map(|l| WalkItem::FailedLookup(l)),
            );
        }
        out
    }

    /// Failed DNS lookups (system or UDP), deepest first.
    pub(crate) fn failed_lookups(&self, system_only: bool) -> Vec<&Lookup> {
        let mut v: Vec<&Lookup> = self
            .lookups
            .iter()
            .filter(|l| l.engine != Engine::Doh && (!system_only || l.engine == Engine::System))
            .filter(|l| l.failure.is_some())
            .collect();
        v.sort_by_key(|l| std::cmp::Reverse(l.depth));
        v
    }

    /// Whether a DoH lookup from the probe resolved the input host (an encrypted second opinion).
    pub(crate) fn doh_resolved(&self) -> Option<&Lookup> {
        let host = self.host.as_deref()?;
        self.lookups
            .iter()
            .find(|l| l.engine == Engine::Doh && l.hostname == host && l.failure.is_none())
    }
}
