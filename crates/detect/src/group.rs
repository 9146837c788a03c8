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
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether a block holds or comes and goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Blocked throughout.
    Steady,
    /// On/off cycles inside the event ("available in short cycles depending on the ISP").
    Intermittent,
}

/// The first measurement that showed a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesEvent {
    /// The series.
    #[serde(flatten)]
    pub key: SeriesKey,
    /// The domain's platform.
    pub platform: Arc<str>,
    /// When it began: the first blocked measurement (back-dated to it, not to when the evidence
    /// sufficed), or, when bins without data precede that one, the start of the middle one of
    /// them.
    pub start: i64,
    /// When it ended: like the start, the middle of the unmeasured bins between its last blocked
    /// bin and the first clear one after it; `None` while it lasts.
    pub end: Option<i64>,
    /// The start of the last bin with decisive data before it (the block began after that bin),
    /// if any.
    pub start_after: Option<i64>,
    /// The start of its last bin with a blocked verdict (an open event lasts at least to its end).
    pub last_blocked: i64,
    /// The start of the first bin with clear data after it, once it ended.
    pub end_by: Option<i64>,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// One network's counts across its domains' events.
struct AsnAcc {
    methods: Vec<u64>,
    blocked: u64,
    decisive: u64,
    /// Decisive verdicts in its intermittent domain events.
    intermittent: u64,
    bounds: Bounds,
}

impl AsnAcc {
    fn new(methods: usize) -> AsnAcc {
        AsnAcc {
            methods: vec![0; methods],
            blocked: 0,
            decisive: 0,
            intermittent: 0,
            bounds: Bounds::default(),
        }
    }
}

/// What a network's domains together say about when its block began and ended. Each domain
/// bounds the start (after its last bin with data before, at or before its first blocked bin)
/// and the end (after its last blocked bin, by its first clear bin); a platform's domains are
/// blocked together, so the network's change lies in the intersection of those windows, which
/// is narrower than any one domain's when their measurements fall in different bins.
#[derive(Default)]
struct Bounds {
    start_after: Option<i64>,
    first_blocked_bin: Option<i64>,
    first_blocked: Option<i64>,
    last_blocked: Option<i64>,
    end_by: Option<i64>,
    open: bool,
}

impl Bounds {
    fn add(&mut self, e: &SeriesEvent, bin: i64) {
        let max = |a: Option<i64>, b: Option<i64>| a.max(b);
        let min = |a: Option<i64>, b: i64| Some(a.map_or(b, |a| a.min(b)));
        self.start_after = max(self.start_after, e.start_after);
        self.first_blocked_bin = min(self.first_blocked_bin, e.first_evidence.time.div_euclid(bin) * bin);
        self.first_blocked = min(self.first_blocked, e.first_evidence.time);
        self.last_blocked = max(self.last_blocked, Some(e.last_blocked));
        match e.end_by {
            Some(t) => self.end_by = min(self.end_by, t),
            None => self.open = true,
        }
    }

    /// The network's (start, end): the middle of the intersected windows, or `fallback` (the
    /// earliest start and latest end of its domains) when the windows do not meet (its domains
    /// were blocked at different times).
    fn estimate(&self, fallback_start: i64, fallback_end: Option<i64>, bin: i64) -> (i64, Option<i64>) {
        let middle = |lo: i64, hi: i64| crate::segment::boundary(lo / bin, hi / bin) * bin;
        let start = match (self.start_after, self.first_blocked_bin, self.first_blocked) {
            (Some(lo), Some(hi), Some(first)) if lo < hi => {
                let m = middle(lo, hi);
                if m == hi { first } else { m }
            }
            (None, Some(_), Some(first)) => first,
            _ => fallback_start,
        };
        let end = match (self.open, self.last_blocked, self.end_by) {
            (true, ..) => None,
            (false, Some(lo), Some(hi)) if lo < hi => Some(middle(lo, hi)),
            _ => fallback_end,
        };
        (start, end)
    }
}

fn build_event(platform: &str, cc: Cc, spans: Vec<Span<'_>>, config: &Config) -> Event {
    let nm = Method::ALL.len();
    let mut all_methods = vec![0u64; nm];
    let (mut blocked, mut decisive, mut measurements) = (0u64, 0u64, 0u64);
    let mut domains: Vec<Arc<str>> = Vec::new();
    let mut first: Option<Evidence> = None;
    // A network met twice (two spans far apart, bridged by other networks) is listed once.
    let mut per_asn: BTreeMap<u32, AsnSpan> = BTreeMap::new();
    let mut per_asn_acc: BTreeMap<u32, AsnAcc> = BTreeMap::new();
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
            let acc = per_asn_acc.entry(s.asn).or_insert_with(|| AsnAcc::new(nm));
            add_methods(&mut acc.methods, &e.methods);
            acc.blocked += e.blocked;
            acc.decisive += e.decisive;
            if e.pattern == Pattern::Intermittent {
                acc.intermittent += e.decisive;
            }
            acc.bounds.add(e, config.bin);
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
    for (asn, acc) in per_asn_acc {
        if let Some(a) = per_asn.get_mut(&asn) {
            a.method = dominant(&acc.methods);
            a.confidence = wilson(acc.blocked, acc.decisive, config.z).0;
            let (start, end) = acc.bounds.estimate(a.start, a.end, config.bin);
            a.start = start;
            a.end = end;
            let (intermittent, d) = (acc.intermittent, acc.decisive);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HOUR;

    fn series(domain: &str, asn: u32, start_h: i64, end_h: Option<i64>, pattern: Pattern) -> SeriesEvent {
        let domain: Arc<str> = Arc::from(domain);
        SeriesEvent {
            key: SeriesKey {
                domain: domain.clone(),
                cc: Cc::new("PK").unwrap(),
                asn,
            },
            platform: Arc::from(crate::platform::platform_of(&domain).as_ref()),
            start: start_h * HOUR,
            end: end_h.map(|h| h * HOUR),
            start_after: Some((start_h - 1) * HOUR),
            last_blocked: end_h.map_or(start_h + 10, |h| h - 1) * HOUR,
            end_by: end_h.map(|h| h * HOUR),
            pattern,
            cycles: if pattern == Pattern::Intermittent { 4 } else { 1 },
            method: Some(Method::TlsReset),
            confidence: 0.9,
            evidence: 50.0,
            measurements: 100,
            blocked: 90,
            decisive: 95,
            methods: vec![(Method::TlsReset, 90)],
            first_evidence: Evidence {
                time: start_h * HOUR,
                domain,
                asn,
                id: None,
            },
        }
    }

    #[test]
    fn one_event_per_platform_and_country_with_each_networks_span() {
        let c = Config::default();
        let ev = group_events(
            &[
                series("x.com", 2, 30, Some(50), Pattern::Steady),
                series("twimg.com", 1, 20, Some(40), Pattern::Intermittent),
                series("t.co", 1, 22, None, Pattern::Intermittent),
                series("example.org", 1, 25, Some(26), Pattern::Steady),
            ],
            &c,
        );
        assert_eq!(ev.len(), 2);
        let twitter = ev.iter().find(|e| e.platform.as_ref() == "twitter").unwrap();
        assert_eq!(twitter.domain, "x.com");
        assert_eq!(twitter.start, 20 * HOUR);
        assert_eq!(twitter.end, None, "a network still blocked keeps the event open");
        assert_eq!(twitter.asns.iter().map(|a| a.asn).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(twitter.asns[0].pattern, Pattern::Intermittent);
        assert_eq!(twitter.asns[1].pattern, Pattern::Steady);
        assert_eq!(twitter.asns[1].end, Some(50 * HOUR));
        assert_eq!(twitter.id, format!("PK-twitter-{}", 20 * HOUR));
        assert_eq!(twitter.measurements, 300);
        assert_eq!(twitter.first_evidence.asn, 1);
        let other = ev.iter().find(|e| e.platform.as_ref() == "example.org").unwrap();
        assert_eq!(other.domain, "example.org");
    }

    #[test]
    fn blocks_far_apart_are_separate_events() {
        let c = Config::default();
        let ev = group_events(
            &[
                series("x.com", 1, 10, Some(20), Pattern::Steady),
                series("x.com", 2, 40, Some(50), Pattern::Steady),
            ],
            &c,
        );
        assert_eq!(ev.len(), 2);
        assert_ne!(ev[0].id, ev[1].id);
        // Within group_gap of each other: one.
        let ev = group_events(
            &[
                series("x.com", 1, 10, Some(20), Pattern::Steady),
                series("x.com", 2, 24, Some(50), Pattern::Steady),
            ],
            &c,
        );
        assert_eq!(ev.len(), 1);
    }

    #[test]
    fn method_list_is_most_frequent_first() {
        let mut counts = vec![0u64; Method::ALL.len()];
        counts[Method::TlsReset as usize] = 3;
        counts[Method::DnsNxdomain as usize] = 7;
        assert_eq!(method_list(&counts), [(Method::DnsNxdomain, 7), (Method::TlsReset, 3)]);
    }
}
