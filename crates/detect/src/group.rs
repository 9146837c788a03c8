//! From per-series events to what a reader wants: one event per block of a platform in a
//! country, listing each affected network with its own start and end. OONI's pipeline raises a
//! change point per (network, domain) and so ~1800 for one national block; here the domains of a
//! platform (see [`crate::platform`]) and the networks of a country that overlap in time become
//! one [`Event`].

use crate::bins::dominant;
use crate::config::Config;
use crate::obs::{Cc, SeriesKey};
use crate::platform::label_domain;
use crate::stats::wilson;
use censorwatch_model::verdict::Method;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether a block holds or comes and goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Blocked throughout.
    Steady,
    /// On/off cycles inside the event ("available in short cycles depending on the ISP").
    Intermittent,
}

/// The first measurement that showed a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// When it was taken, Unix seconds.
    pub time: i64,
    /// Its domain.
    pub domain: Arc<str>,
    /// Its network.
    pub asn: u32,
    /// Its id, when the observation carried one.
    pub id: Option<Arc<str>>,
}

/// A blocking event in one series (domain, country, network).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesEvent {
    /// The series.
    #[serde(flatten)]
    pub key: SeriesKey,
    /// The domain's platform.
    pub platform: Arc<str>,
    /// The first blocked measurement, Unix seconds (back-dated to it, not to when the evidence
    /// sufficed).
    pub start: i64,
    /// The start of the first clear bin after it; `None` while it lasts.
    pub end: Option<i64>,
    /// The end of its last blocked bin (for an open event, how long it is known to last).
    pub last_blocked: i64,
    /// Steady or intermittent.
    pub pattern: Pattern,
    /// Blocked runs (on-periods).
    pub cycles: u32,
    /// The most frequent blocking method.
    pub method: Option<Method>,
    /// Lower end of the 95% Wilson interval of the blocked share during its on-periods.
    pub confidence: f64,
    /// Summed log-likelihood ratio of its on-periods.
    pub evidence: f64,
    /// Measurements from start to end, any status.
    pub measurements: u64,
    /// Blocked verdicts during its on-periods.
    pub blocked: u64,
    /// Decisive (`ok` + `blocked`) verdicts during its on-periods.
    pub decisive: u64,
    /// Blocked verdicts per method during its on-periods, most frequent first.
    pub methods: Vec<(Method, u64)>,
    /// The first blocked measurement.
    pub first_evidence: Evidence,
}

/// One network's share of a country-level event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AsnSpan {
    /// The network.
    pub asn: u32,
    /// Its own start.
    pub start: i64,
    /// Its own end; `None` while it lasts.
    pub end: Option<i64>,
    /// Steady or intermittent on this network.
    pub pattern: Pattern,
    /// Most on-periods seen on one of its domains.
    pub cycles: u32,
    /// The most frequent blocking method on this network.
    pub method: Option<Method>,
    /// Lower end of the 95% Wilson interval of its blocked share during on-periods.
    pub confidence: f64,
    /// Its measurements during the event.
    pub measurements: u64,
    /// Its blocked verdicts during on-periods.
    pub blocked: u64,
    /// The platform's domains seen blocked on it.
    pub domains: Vec<Arc<str>>,
}

/// A block of one platform in one country: the event censorwatch reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `CC-platform-STARTBIN` (Unix seconds of the start bin). Derived from the data, so late
    /// measurements that move the start also change it.
    pub id: String,
    /// The platform.
    pub platform: Arc<str>,
    /// The platform's label domain (`x.com` for twitter; the domain itself when unknown).
    pub domain: String,
    /// The domains seen blocked.
    pub domains: Vec<Arc<str>>,
    /// The country.
    pub cc: Cc,
    /// The affected networks, earliest first, each with its own start and end.
    pub asns: Vec<AsnSpan>,
    /// The most frequent blocking method.
    pub method: Option<Method>,
    /// The first network's start.
    pub start: i64,
    /// The last network's end; `None` while any network is still blocked.
    pub end: Option<i64>,
    /// `intermittent` when at least half its networks are.
    pub pattern: Pattern,
    /// Lower end of the 95% Wilson interval of the blocked share during on-periods, all
    /// networks pooled.
    pub confidence: f64,
    /// Measurements during the event, all networks.
    pub measurements: u64,
    /// Blocked verdicts during on-periods, all networks.
    pub blocked: u64,
    /// The first blocked measurement.
    pub first_evidence: Evidence,
}

/// Per-method counts as (method, count), most frequent first, zeros left out.
pub(crate) fn method_list(counts: &[u64]) -> Vec<(Method, u64)> {
    let mut v: Vec<(Method, u64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| (Method::ALL[i], *c))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

fn add_methods(acc: &mut [u64], list: &[(Method, u64)]) {
    for (m, c) in list {
        acc[*m as usize] += c;
    }
}

/// `a` ends before `b` starts by more than `gap` (an open `a` never does).
fn apart(a_end: Option<i64>, b_start: i64, gap: i64) -> bool {
    a_end.is_some_and(|e| b_start > e.saturating_add(gap))
}

fn later_end(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        _ => None,
    }
}

/// Groups series events into country-level events, one per (platform, country) and overlapping
/// span. Pure; the detector caches its result per group.
pub fn group_events(series: &[SeriesEvent], config: &Config) -> Vec<Event> {
    let mut by_group: BTreeMap<(&str, Cc), Vec<&SeriesEvent>> = BTreeMap::new();
    for e in series {
        by_group.entry((e.platform.as_ref(), e.key.cc)).or_default().push(e);
    }
    let mut out = Vec::new();
    for ((platform, cc), members) in by_group {
        out.extend(group_one(platform, cc, &members, config));
    }
    out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
    out
}

/// One network's merged span, before it joins a country event.
struct Span<'a> {
    asn: u32,
    start: i64,
    end: Option<i64>,
    members: Vec<&'a SeriesEvent>,
}

fn group_one(platform: &str, cc: Cc, members: &[&SeriesEvent], config: &Config) -> Vec<Event> {
    // 1. Per network: merge its domains' events that overlap or nearly touch.
    let mut by_asn: BTreeMap<u32, Vec<&SeriesEvent>> = BTreeMap::new();
    for e in members {
        by_asn.entry(e.key.asn).or_default().push(e);
    }
    let mut spans: Vec<Span<'_>> = Vec::new();
    for (asn, mut evs) in by_asn {
        evs.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.key.cmp(&b.key)));
        let mut cur: Option<Span<'_>> = None;
        for e in evs {
            match &mut cur {
                Some(s) if !apart(s.end, e.start, config.group_gap) => {
                    s.end = later_end(s.end, e.end);
                    s.members.push(e);
                }
                _ => {
                    if let Some(s) = cur.take() {
                        spans.push(s);
                    }
                    cur = Some(Span {
                        asn,
                        start: e.start,
                        end: e.end,
                        members: vec![e],
                    });
                }
            }
        }
        spans.extend(cur);
    }
    // 2. Across networks: spans that overlap or nearly touch are one country event.
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(a.asn.cmp(&b.asn)));
    let mut clusters: Vec<Vec<Span<'_>>> = Vec::new();
    let mut cluster_end: Option<i64> = None;
    for s in spans {
        match clusters.last_mut() {
            Some(c) if !apart(cluster_end, s.start, config.group_gap) => {
                cluster_end = later_end(cluster_end, s.end);
                c.push(s);
            }
            _ => {
                cluster_end = s.end;
                clusters.push(vec![s]);
            }
        }
    }
    clusters
        .into_iter()
        .map(|c| build_event(platform, cc, c, config))
        .collect()
}

fn build_event(platform: &str, cc: Cc, spans: Vec<Span<'_>>, config: &Config) -> Event {
    let nm = Method::ALL.len();
    let mut all_methods = vec![0u64; nm];
    let (mut blocked, mut decisive, mut measurements) = (0u64, 0u64, 0u64);
    let mut domains: Vec<Arc<str>> = Vec::new();
    let mut first: Option<Evidence> = None;
    // A network met twice (two spans far apart, bridged by other networks) is listed once.
    let mut per_asn: BTreeMap<u32, AsnSpan> = BTreeMap::new();
    let mut per_asn_acc: BTreeMap<u32, (Vec<u64>, u64, u64, u64)> = BTreeMap::new();
    for s in &spans {
        for e in &s.members {
            add_methods(&mut all_methods, &e.methods);
            blocked += e.blocked;
            decisive += e.decisive;
            measurements += e.measurements;
            if !domains.contains(&e.key.domain) {
                domains.push(e.key.domain.clone());
            }
            if first.as_ref().is_none_or(|f| {
                (e.first_evidence.time, &e.first_evidence.domain, e.first_evidence.asn) < (f.time, &f.domain, f.asn)
            }) {
                first = Some(e.first_evidence.clone());
            }
            let acc = per_asn_acc.entry(s.asn).or_insert_with(|| (vec![0; nm], 0, 0, 0));
            add_methods(&mut acc.0, &e.methods);
            acc.1 += e.blocked;
            acc.2 += e.decisive;
            acc.3 += if e.pattern == Pattern::Intermittent {
                e.decisive
            } else {
                0
            };
            let entry = per_asn.entry(s.asn).or_insert_with(|| AsnSpan {
                asn: s.asn,
                start: e.start,
                end: e.end,
                pattern: Pattern::Steady,
                cycles: 0,
                method: None,
                confidence: 0.0,
                measurements: 0,
                blocked: 0,
                domains: Vec::new(),
            });
            entry.start = entry.start.min(e.start);
            entry.end = later_end(entry.end, e.end);
            entry.cycles = entry.cycles.max(e.cycles);
            entry.measurements += e.measurements;
            entry.blocked += e.blocked;
            if !entry.domains.contains(&e.key.domain) {
                entry.domains.push(e.key.domain.clone());
            }
        }
    }
    for (asn, (methods, b, d, intermittent)) in per_asn_acc {
        if let Some(a) = per_asn.get_mut(&asn) {
            a.method = dominant(&methods);
            a.confidence = wilson(b, d, config.z).0;
            // Intermittent when the domains that cycle hold at least half its evidence.
            a.pattern = if 2 * intermittent >= d && intermittent > 0 {
                Pattern::Intermittent
            } else {
                Pattern::Steady
            };
            a.domains.sort();
        }
    }
    let mut asns: Vec<AsnSpan> = per_asn.into_values().collect();
    asns.sort_by(|a, b| a.start.cmp(&b.start).then(a.asn.cmp(&b.asn)));
    let start = asns.iter().map(|a| a.start).min().unwrap_or(0);
    let end = asns.iter().map(|a| a.end).reduce(later_end).flatten();
    let intermittent = asns.iter().filter(|a| a.pattern == Pattern::Intermittent).count();
    domains.sort();
    let platform: Arc<str> = Arc::from(platform);
    Event {
        id: format!("{cc}-{platform}-{}", config.bin_of(start) * config.bin),
        domain: label_domain(&platform).to_owned(),
        platform,
        domains,
        cc,
        method: dominant(&all_methods),
        start,
        end,
        pattern: if 2 * intermittent >= asns.len() && intermittent > 0 {
            Pattern::Intermittent
        } else {
            Pattern::Steady
        },
        confidence: wilson(blocked, decisive, config.z).0,
        measurements,
        blocked,
        first_evidence: first.unwrap_or(Evidence {
            time: start,
            domain: Arc::from(""),
            asn: 0,
            id: None,
        }),
        asns,
    }
}
