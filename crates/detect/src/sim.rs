//! A seeded generator of measurement timelines with known truth, to hold the detector to
//! numbers rather than anecdotes. Scenarios (each in its own made-up country, with networks from
//! the private 32-bit ASN range, RFC 6996):
//!
//! - `steady`: a platform blocked on every network of a country from one moment, for days, or
//!   still blocked when the timeline ends;
//! - `staggered`: the same, but each network starts and ends on its own, and some never block;
//! - `intermittent`: most networks block in cycles of 2–6 h on and 1–3 h off ("available in short
//!   cycles depending on the ISP"), the others steadily;
//! - `sparse`: a steady block seen by 1–3 measurements an hour (some hours none);
//! - `outage`: networks go dark: BGP visibility, control reachability and probe volume collapse,
//!   and the few measurements taken are inconclusive and arrive only when the network is back;
//! - `clean`: no block, 3–8% of measurements wrongly `blocked` (flaky networks), an occasional
//!   hour where a probe fails half its measurements, and site-wide `down` spells;
//! - `sparse_clean`: the same at 1–3 measurements an hour;
//! - `sparse_outage`: networks with one domain measured 1–3 times an hour and no BGP or
//!   control-reachability feed (like Telenor in the lab's pk-2024 replay) fall fully silent for
//!   12–36 h: only the run of empty bins can tell. They have no probe-offline gaps, which without
//!   another signal would be the same thing as a shutdown.
//!
//! Every network also gets noise, a few inconclusive results, probe-offline gaps (placed away
//! from the truth's own boundaries, so that they test "gaps do not close an event" without
//! making a boundary unknowable) and late submissions (10% arrive 1–24 h late).

use crate::config::{DAY, HOUR};
use crate::group::Pattern;
use crate::obs::{Cc, Observation, SignalKind, SignalSample};
use crate::platform::PLATFORMS;
use censorwatch_model::verdict::{Method, Status};
use serde::Serialize;
use std::sync::Arc;

/// splitmix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number generators", 2014):
/// small, fast, and the same on every platform, so a seed names one timeline forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [lo, hi).
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo).max(1) as u64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A Poisson draw (Knuth's product method; the means here are small).
    pub fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = self.f64();
        while p > limit && k < 1000 {
            k += 1;
            p *= self.f64();
        }
        k
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.int(0, items.len() as i64) as usize]
    }
}

/// The kinds of scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    /// One block on every network.
    Steady,
    /// Per-network starts and ends; some networks spared.
    Staggered,
    /// On/off cycles on most networks.
    Intermittent,
    /// A steady block at 1–3 measurements an hour.
    Sparse,
    /// Networks go dark.
    Outage,
    /// No block; noisy networks.
    Clean,
    /// No block; 1–3 measurements an hour.
    SparseClean,
    /// Sparse networks without BGP or control signals go silent.
    SparseOutage,
}

impl ScenarioKind {
    /// Every kind, in report order.
    pub const ALL: [ScenarioKind; 8] = [
        ScenarioKind::Steady,
        ScenarioKind::Staggered,
        ScenarioKind::Intermittent,
        ScenarioKind::Sparse,
        ScenarioKind::Outage,
        ScenarioKind::Clean,
        ScenarioKind::SparseClean,
        ScenarioKind::SparseOutage,
    ];

    /// The report name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioKind::Steady => "steady",
            ScenarioKind::Staggered => "staggered",
            ScenarioKind::Intermittent => "intermittent",
            ScenarioKind::Sparse => "sparse",
            ScenarioKind::Outage => "outage",
            ScenarioKind::Clean => "clean",
            ScenarioKind::SparseClean => "sparse_clean",
            ScenarioKind::SparseOutage => "sparse_outage",
        }
    }

    /// Instances per unit of [`SimConfig::scale`].
    fn count(self) -> u32 {
        match self {
            ScenarioKind::Steady | ScenarioKind::Staggered | ScenarioKind::Sparse => 12,
            ScenarioKind::Intermittent => 16,
            ScenarioKind::Clean => 14,
            ScenarioKind::Outage | ScenarioKind::SparseClean | ScenarioKind::SparseOutage => 6,
        }
    }

    /// Whether the scenario has no blocking in truth.
    pub fn is_clean(self) -> bool {
        matches!(
            self,
            ScenarioKind::Clean | ScenarioKind::SparseClean | ScenarioKind::Outage | ScenarioKind::SparseOutage
        )
    }

    /// Whether networks go dark in truth.
    pub fn has_outages(self) -> bool {
        matches!(self, ScenarioKind::Outage | ScenarioKind::SparseOutage)
    }

    fn sparse(self) -> bool {
        matches!(
            self,
            ScenarioKind::Sparse | ScenarioKind::SparseClean | ScenarioKind::SparseOutage
        )
    }
}

/// Scenarios per unit of [`SimConfig::scale`].
pub const SCENARIOS_PER_SCALE: u32 = 84;

/// The largest [`SimConfig::scale`]: each scenario has a country of its own, and there are
/// 26 × 26 = 676 two-letter codes.
pub const MAX_SCALE: u32 = 8;
const _: () = assert!(SCENARIOS_PER_SCALE * MAX_SCALE <= 26 * 26);

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimConfig {
    /// The seed; the same seed gives the same timeline.
    pub seed: u64,
    /// Timeline length in days (at least 10, so that outages have a week of history).
    pub days: u32,
    /// Multiplies the number of scenarios ([`SCENARIOS_PER_SCALE`] each), from 1 to
    /// [`MAX_SCALE`] (larger values count as that).
    pub scale: u32,
    /// Unix time of the timeline's start (midnight UTC).
    pub start: i64,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 1,
            days: 14,
            scale: 1,
            // 2024-02-01T00:00:00Z
            start: 1_706_745_600,
        }
    }
}

/// One network's true block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthEvent {
    /// The country.
    pub cc: Cc,
    /// The platform.
    pub platform: String,
    /// The network.
    pub asn: u32,
    /// When blocking began.
    pub start: i64,
    /// When it ended; `None` if it lasts past the timeline.
    pub end: Option<i64>,
    /// Steady or intermittent.
    pub pattern: Pattern,
    /// The on-periods [start, end).
    pub on: Vec<(i64, i64)>,
}

/// One network's true outage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthOutage {
    /// The country.
    pub cc: Cc,
    /// The network.
    pub asn: u32,
    /// When it went dark.
    pub start: i64,
    /// When it came back.
    pub end: i64,
}

/// One generated scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Its kind.
    pub kind: ScenarioKind,
    /// Its (made-up) country.
    pub cc: Cc,
    /// The platform measured.
    pub platform: String,
    /// The domains measured.
    pub domains: Vec<Arc<str>>,
    /// The networks.
    pub asns: Vec<u32>,
    /// The true blocks, one per affected network.
    pub truth: Vec<TruthEvent>,
    /// The true outages.
    pub outages: Vec<TruthOutage>,
}

/// A generated timeline.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// What was asked for.
    pub config: SimConfig,
    /// Timeline start and end, Unix seconds.
    pub start: i64,
    /// The end (exclusive).
    pub end: i64,
    /// The scenarios and their truth.
    pub scenarios: Vec<Scenario>,
    /// Every measurement, by time.
    pub observations: Vec<Observation>,
    /// When each observation reaches the detector (parallel to `observations`).
    pub arrivals: Vec<i64>,
    /// Signal samples, by time (they arrive when taken).
    pub signals: Vec<SignalSample>,
}

const BLOCK_METHODS: &[Method] = &[
    Method::TlsReset,
    Method::TlsTimeout,
    Method::DnsNxdomain,
    Method::DnsSpoofed,
    Method::TcpTimeout,
    Method::HttpBlockpage,
    Method::HttpReset,
];
const NOISE_METHODS: &[Method] = &[
    Method::TcpTimeout,
    Method::DnsTimeout,
    Method::TlsEof,
    Method::HttpEof,
    Method::TcpReset,
];

/// Whether `t` falls in one of `periods`.
fn inside(periods: &[(i64, i64)], t: i64) -> bool {
    periods.iter().any(|&(a, b)| t >= a && t < b)
}

/// The synthetic country of scenario `i`: "AA", "AB", ….
fn country(i: usize) -> Cc {
    Cc::from_letters(b'A' + ((i / 26) % 26) as u8, b'A' + (i % 26) as u8)
}

/// Generates the timeline for `config`.
pub fn generate(config: &SimConfig) -> Simulation {
    let mut rng = Rng::new(config.seed ^ 0x6365_6e73_6f72_7761); // "censorwa"
    let start = config.start;
    let days = i64::from(config.days.max(10));
    let end = start + days * DAY;
    let mut sim = Simulation {
        config: config.clone(),
        start,
        end,
        scenarios: Vec::new(),
        observations: Vec::new(),
        arrivals: Vec::new(),
        signals: Vec::new(),
    };
    let mut index = 0usize;
    for kind in ScenarioKind::ALL {
        for _ in 0..kind.count() * config.scale.clamp(1, MAX_SCALE) {
            scenario(&mut sim, &mut rng, kind, index);
            index += 1;
        }
    }
    let mut order: Vec<usize> = (0..sim.observations.len()).collect();
    order.sort_by_key(|&i| (sim.observations[i].time, i));
    sim.observations = order.iter().map(|&i| sim.observations[i].clone()).collect();
    sim.arrivals = order.iter().map(|&i| sim.arrivals[i]).collect();
    sim.signals.sort_by(|a, b| a.time.cmp(&b.time).then(a.asn.cmp(&b.asn)));
    sim
}

fn scenario(sim: &mut Simulation, rng: &mut Rng, kind: ScenarioKind, index: usize) {
    let (t0, t1) = (sim.start, sim.end);
    let cc = country(index);
    let platform = PLATFORMS[rng.int(0, PLATFORMS.len() as i64) as usize];
    let mut n_domains = rng.int(1, 3.min(platform.domains.len() as i64) + 1) as usize;
    if kind == ScenarioKind::SparseOutage {
        n_domains = 1;
    }
    let domains: Vec<Arc<str>> = platform.domains[..n_domains]
        .iter()
        .enumerate()
        .map(|(i, d)| Arc::from(if i >= 2 { format!("static.{d}") } else { (*d).to_owned() }))
        .collect();
    let n_asns = if kind.sparse() { rng.int(2, 5) } else { rng.int(3, 6) } as usize;
    let asns: Vec<u32> = (0..n_asns).map(|j| 4_200_000_000 + (index * 16 + j) as u32).collect();
    let method = rng.pick(BLOCK_METHODS);
    // Block timing shared by the scenario.
    let block_start = t0 + rng.int(2 * DAY, (t1 - t0) - 6 * DAY) + rng.int(0, HOUR);
    let open = rng.chance(0.25);
    let block_end = if open {
        None
    } else {
        Some((block_start + rng.int(DAY, 5 * DAY)).min(t1 - DAY - rng.int(0, 6 * HOUR)))
    };
    let mut truth = Vec::new();
    let mut outages = Vec::new();
    let mut on_by_asn: Vec<Vec<(i64, i64)>> = vec![Vec::new(); n_asns];
    match kind {
        ScenarioKind::Steady | ScenarioKind::Sparse => {
            for on in &mut on_by_asn {
                on.push((block_start, block_end.unwrap_or(t1 + DAY)));
            }
        }
        ScenarioKind::Staggered => {
            let spared = if n_asns > 2 && rng.chance(0.5) {
                Some(rng.int(0, n_asns as i64) as usize)
            } else {
                None
            };
            for (j, on) in on_by_asn.iter_mut().enumerate() {
                if Some(j) == spared {
                    continue;
                }
                let s = block_start + rng.int(0, 18 * HOUR);
                let e = match block_end {
                    Some(e) => (e + rng.int(-12 * HOUR, 12 * HOUR)).max(s + 12 * HOUR).min(t1 - DAY),
                    None => t1 + DAY,
                };
                on.push((s, e));
            }
        }
        ScenarioKind::Intermittent => {
            for on in &mut on_by_asn {
                let mut s = block_start + rng.int(0, 3 * HOUR);
                let span = rng.int(36 * HOUR, 4 * DAY).min(t1 - DAY - s);
                let stop = s + span;
                if rng.chance(0.25) {
                    on.push((s, stop));
                    continue;
                }
                loop {
                    let e = s + rng.int(2 * HOUR, 6 * HOUR);
                    on.push((s, e));
                    let next = e + rng.int(HOUR, 3 * HOUR);
                    if next >= stop && on.len() >= 3 {
                        break;
                    }
                    s = next;
                }
            }
        }
        ScenarioKind::Outage | ScenarioKind::SparseOutage => {
            let s = t0 + rng.int(3 * DAY, (t1 - t0) - 3 * DAY) + rng.int(0, HOUR);
            let shortest = if kind == ScenarioKind::SparseOutage {
                12 * HOUR
            } else {
                4 * HOUR
            };
            let e = s + rng.int(shortest, 36 * HOUR);
            let all = rng.chance(0.5);
            for &asn in &asns {
                if all || rng.chance(0.5) || (outages.is_empty() && asn == asns[asns.len() - 1]) {
                    outages.push(TruthOutage {
                        cc,
                        asn,
                        start: s,
                        end: e,
                    });
                }
            }
        }
        ScenarioKind::Clean | ScenarioKind::SparseClean => {}
    }
    for (j, on) in on_by_asn.iter().enumerate() {
        if on.is_empty() {
            continue;
        }
        let s = on[0].0;
        let e = on[on.len() - 1].1;
        truth.push(TruthEvent {
            cc,
            platform: platform.name.to_owned(),
            asn: asns[j],
            start: s,
            end: (e < t1).then_some(e),
            pattern: if on.len() >= 3 {
                Pattern::Intermittent
            } else {
                Pattern::Steady
            },
            on: on.clone(),
        });
    }
    // Site-wide "down" spells and flaky hours, clean scenarios only.
    let mut down: Vec<(i64, i64)> = Vec::new();
    if kind == ScenarioKind::Clean && rng.chance(0.5) {
        let s = t0 + rng.int(DAY, (t1 - t0) - DAY);
        down.push((s, s + rng.int(2 * HOUR, 4 * HOUR)));
    }
    for (j, &asn) in asns.iter().enumerate() {
        let on = &on_by_asn[j];
        let dark: Vec<(i64, i64)> = outages
            .iter()
            .filter(|o| o.asn == asn)
            .map(|o| (o.start, o.end))
            .collect();
        let mut flaky: Vec<(i64, i64)> = Vec::new();
        if kind == ScenarioKind::Clean {
            for _ in 0..rng.int(0, 4) {
                let s = t0 + rng.int(0, t1 - t0 - HOUR);
                flaky.push((s, s + HOUR));
            }
        }
        // Truth boundaries that a probe-offline gap must stay clear of.
        let boundaries: Vec<i64> = on.iter().flat_map(|&(a, b)| [a, b]).collect();
        for domain in &domains {
            let noise = if kind.is_clean() {
                rng.range(0.03, 0.08)
            } else {
                rng.range(0.01, 0.05)
            };
            let leak = rng.range(0.0, 0.08);
            let inconclusive = rng.range(0.01, 0.05);
            let rate = rng.range(3.0, 10.0);
            let phase = rng.range(0.0, 24.0);
            let mut gaps: Vec<(i64, i64)> = Vec::new();
            if kind != ScenarioKind::SparseOutage && rng.chance(0.3) {
                for _ in 0..20 {
                    let s = t0 + rng.int(DAY, t1 - t0 - DAY);
                    let g = (s, s + rng.int(4 * HOUR, 12 * HOUR));
                    if boundaries.iter().all(|&b| b < g.0 - 3 * HOUR || b > g.1 + 3 * HOUR) {
                        gaps.push(g);
                        break;
                    }
                }
            }
            let mut hour = t0;
            while hour < t1 {
                let h = ((hour - t0) / HOUR) as f64;
                let n = if kind.sparse() {
                    if rng.chance(0.1) { 0 } else { rng.int(1, 4) as u32 }
                } else {
                    let diurnal = 1.0 + 0.3 * (std::f64::consts::TAU * (h + phase) / 24.0).sin();
                    rng.poisson(rate * diurnal)
                };
                for _ in 0..n {
                    let t = hour + rng.int(0, HOUR);
                    if inside(&gaps, t) {
                        continue;
                    }
                    let is_dark = inside(&dark, t);
                    if is_dark && (kind == ScenarioKind::SparseOutage || !rng.chance(0.03)) {
                        continue; // the network is down: almost nothing (or nothing) is measured
                    }
                    let (status, m) = if is_dark || rng.chance(inconclusive) {
                        (Status::Inconclusive, None)
                    } else if inside(&down, t) {
                        (Status::Down, None)
                    } else if inside(on, t) {
                        if rng.chance(leak) {
                            (Status::Ok, None)
                        } else if rng.chance(0.92) {
                            (Status::Blocked, Some(method))
                        } else {
                            (Status::Blocked, Some(rng.pick(NOISE_METHODS)))
                        }
                    } else if (inside(&flaky, t) && rng.chance(0.5)) || rng.chance(noise) {
                        (Status::Blocked, Some(rng.pick(NOISE_METHODS)))
                    } else {
                        (Status::Ok, None)
                    };
                    let arrival = if let Some(&(_, back)) = dark.iter().find(|&&(a, b)| t >= a && t < b) {
                        back + rng.int(0, 2 * HOUR)
                    } else if rng.chance(0.1) {
                        t + rng.int(HOUR, DAY)
                    } else {
                        t + rng.int(0, 15 * 60)
                    };
                    sim.observations.push(Observation {
                        time: t,
                        domain: domain.clone(),
                        cc,
                        asn,
                        status,
                        method: m,
                        id: None,
                    });
                    sim.arrivals.push(arrival);
                }
                hour += HOUR;
            }
        }
        // Signals: BGP-visible /24s every 30 minutes, control reachability hourly (none for
        // sparse_outage's networks).
        if kind == ScenarioKind::SparseOutage {
            continue;
        }
        let base = rng.int(300, 3000) as f64;
        let bgp_factor = rng.range(0.05, 0.3);
        let ctl_base = (base * 0.6).round();
        let ctl_factor = rng.range(0.0, 0.05);
        let mut t = t0 + rng.int(0, 30 * 60);
        while t < t1 {
            let is_dark = inside(&dark, t);
            let dip = if rng.chance(0.02) { 1.0 } else { 0.0 };
            let bgp = if is_dark {
                (base * bgp_factor).round()
            } else {
                base - dip
            };
            sim.signals.push(SignalSample {
                time: t,
                cc,
                asn,
                kind: SignalKind::Bgp,
                value: bgp,
            });
            if (t - t0) % HOUR < 30 * 60 {
                let ctl = if is_dark {
                    (ctl_base * ctl_factor).round()
                } else {
                    (ctl_base * rng.range(0.93, 1.0)).round()
                };
                sim.signals.push(SignalSample {
                    time: t,
                    cc,
                    asn,
                    kind: SignalKind::ControlReachability,
                    value: ctl,
                });
            }
            t += 30 * 60;
        }
    }
    sim.scenarios.push(Scenario {
        kind,
        cc,
        platform: platform.name.to_owned(),
        domains,
        asns,
        truth,
        outages,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_fixed_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        for _ in 0..1000 {
            let x = a.f64();
            assert!((0.0..1.0).contains(&x));
            let i = a.int(3, 9);
            assert!((3..9).contains(&i));
        }
        let mean = (0..20_000).map(|_| f64::from(a.poisson(4.0))).sum::<f64>() / 20_000.0;
        assert!((mean - 4.0).abs() < 0.1, "{mean}");
    }

    #[test]
    fn every_scenario_has_its_own_country() {
        let per_scale: u32 = ScenarioKind::ALL.iter().map(|k| k.count()).sum();
        assert_eq!(per_scale, SCENARIOS_PER_SCALE);
        let codes: std::collections::BTreeSet<Cc> =
            (0..(SCENARIOS_PER_SCALE * MAX_SCALE) as usize).map(country).collect();
        assert_eq!(codes.len(), (SCENARIOS_PER_SCALE * MAX_SCALE) as usize);
    }

    #[test]
    fn truth_is_well_formed() {
        let sim = generate(&SimConfig {
            days: 10,
            ..SimConfig::default()
        });
        assert_eq!(sim.observations.len(), sim.arrivals.len());
        assert!(sim.observations.windows(2).all(|w| w[0].time <= w[1].time));
        for (o, &a) in sim.observations.iter().zip(&sim.arrivals) {
            assert!(a >= o.time && o.time >= sim.start && o.time < sim.end);
        }
        for s in &sim.scenarios {
            for t in &s.truth {
                assert!(t.end.is_none_or(|e| t.start < e));
                assert!(!t.on.is_empty() && t.on.windows(2).all(|w| w[0].1 < w[1].0));
                assert_eq!(t.pattern == Pattern::Intermittent, t.on.len() >= 3);
            }
        }
    }
}
