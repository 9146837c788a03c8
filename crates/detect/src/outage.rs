//! Outages (network shutdowns), IODA-style: per network and per country, each signal (BGP
//! visibility, probe volume, control reachability) is compared bin by bin with the median of
//! its own recent past, and a bin below a share of it is a warning or critical alert.
//!
//! Two things differ from a plain trailing median. Bins that are themselves alerts stay out of
//! the baseline, so a long shutdown does not become the new normal after a day; baseline values
//! older than [`OutageConfig::max_baseline_age`] windows are dropped, so a lasting change is
//! eventually accepted. And probe volume, a small count, alerts only when its drop is also
//! improbable under a Poisson law with the baseline as mean, and never on its own above
//! `warning`: one volunteer switching off a computer is not a shutdown.
//!
//! A sparse network (a few measurements an hour) cannot show an improbable drop in one bin: no
//! bin of it is ever improbably empty. What is improbable is a long *run* of empty bins: at a
//! baseline of λ per bin, k empty bins in a row have probability e^(-kλ) (or, for a network
//! whose probes are often idle, the share of empty bins in its baseline window to the k; λ is
//! the window's mean). A
//! run below [`OutageConfig::silence_alpha`] is a shutdown from its first empty bin until
//! measurements return (Telenor's 12 dark hours in the lab's pk-2024 replay, 3 measurements an
//! hour, is found after 7 of them and dated from the first).
//!
//! A count is judged only up to the newest measurement seen (less
//! [`OutageConfig::volume_settle`]): after the data ends, volume is unknown, not zero.

use crate::config::{Config, OutageConfig, SignalRule};
use crate::obs::{Cc, SignalKind};
use crate::stats::{poisson_cdf, sorted_median};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// How far a signal fell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Below the warning share of its baseline.
    Warning,
    /// Below the critical share of its baseline.
    Critical,
}

/// What one bin of a signal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinAlert {
    /// No reading in this bin (levels only; a count is zero instead).
    Missing,
    /// Too little history for a baseline.
    NoBaseline,
    /// At or above the warning share.
    Normal,
    /// Below the warning share.
    Warning,
    /// Below the critical share.
    Critical,
}

impl BinAlert {
    fn level(self) -> Option<Level> {
        match self {
            BinAlert::Warning => Some(Level::Warning),
            BinAlert::Critical => Some(Level::Critical),
            _ => None,
        }
    }
}

/// A run of alert bins of one signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalAlert {
    /// The country.
    pub cc: Cc,
    /// The network, or `None` for the country's sum.
    pub asn: Option<u32>,
    /// The signal.
    pub kind: SignalKind,
    /// The worst bin's level.
    pub level: Level,
    /// The first alert bin's start, Unix seconds.
    pub start: i64,
    /// The start of the first normal bin after it; `None` while it lasts.
    pub end: Option<i64>,
    /// The baseline (trailing median) when it started.
    pub baseline: f64,
    /// The lowest value during it.
    pub lowest: f64,
}

/// The bins of one signal of one network (or country).
#[derive(Debug, Clone)]
pub(crate) struct SignalSeries {
    pub(crate) kind: SignalKind,
    /// Bin index of position 0.
    pub(crate) first: i64,
    sum: Vec<f64>,
    count: Vec<u32>,
    /// Positions before this are classified and unchanged.
    dirty_from: usize,
    /// The earliest bin index changed since [`SignalSeries::take_changed`] (`i64::MAX`: none),
    /// for the country's sum.
    changed_bin: i64,
    states: Vec<BinAlert>,
    baselines: Vec<f64>,
}

impl SignalSeries {
    pub(crate) fn new(kind: SignalKind) -> SignalSeries {
        SignalSeries {
            kind,
            first: 0,
            sum: Vec::new(),
            count: Vec::new(),
            dirty_from: 0,
            changed_bin: i64::MAX,
            states: Vec::new(),
            baselines: Vec::new(),
        }
    }

    /// The earliest bin index changed since the last call (`i64::MAX` when none).
    pub(crate) fn take_changed(&mut self) -> i64 {
        std::mem::replace(&mut self.changed_bin, i64::MAX)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sum.is_empty()
    }

    /// Bins from the first reading to the last.
    pub(crate) fn len(&self) -> usize {
        self.sum.len()
    }

    /// Adds a reading (or, for a count, an amount) to bin `b`.
    pub(crate) fn add(&mut self, b: i64, value: f64) {
        if self.sum.is_empty() {
            self.first = b;
        }
        if b < self.first {
            let n = (self.first - b) as usize;
            self.sum.splice(0..0, std::iter::repeat_n(0.0, n));
            self.count.splice(0..0, std::iter::repeat_n(0, n));
            self.first = b;
            self.states.clear();
            self.baselines.clear();
            self.dirty_from = 0;
        }
        let pos = (b - self.first) as usize;
        if pos >= self.sum.len() {
            self.sum.resize(pos + 1, 0.0);
            self.count.resize(pos + 1, 0);
        }
        self.sum[pos] += value;
        self.count[pos] += 1;
        self.dirty_from = self.dirty_from.min(pos);
        self.changed_bin = self.changed_bin.min(b);
    }

    /// The value at position `i` (counts are zero past the last reading).
    pub(crate) fn value(&self, i: usize) -> Option<f64> {
        value_at(self.kind, &self.sum, &self.count, i)
    }

    /// Classifies bins up to (not including) bin index `upto`.
    pub(crate) fn classify(&mut self, upto: i64, config: &Config) {
        if self.sum.is_empty() {
            return;
        }
        let rule = config.outage.rule(self.kind);
        // Past the oldest baseline a reading may use, nothing can alert any more.
        let horizon = self.sum.len().saturating_add(max_age_bins(rule, config));
        let n = usize::try_from(upto.saturating_sub(self.first))
            .unwrap_or(0)
            .min(horizon);
        let from = self.dirty_from.min(self.states.len()).min(n);
        self.states.truncate(from);
        self.baselines.truncate(from);
        let Self {
            states,
            baselines,
            sum,
            count,
            kind,
            ..
        } = self;
        let value = |i: usize| value_at(*kind, sum, count, i);
        classify_from(&value, n, from, states, baselines, *kind, config);
        self.dirty_from = n;
    }

    /// The classified bins and the bin index of the first.
    pub(crate) fn judged(&self) -> Judged<'_> {
        Judged {
            kind: self.kind,
            first: self.first,
            states: &self.states,
        }
    }

    /// The alert runs of the classified bins.
    pub(crate) fn alerts(&self, cc: Cc, asn: Option<u32>, config: &Config) -> Vec<SignalAlert> {
        runs(&self.states, &self.baselines, |i| self.value(i), config)
            .into_iter()
            .map(|r| r.into_alert(self.first, self.kind, cc, asn, config))
            .collect()
    }
}

/// A country's sum of one signal over its networks, classified incrementally like a network's
/// own: only from the earliest bin any network changed (or from scratch when the country's first
/// bin moves). A bin where a network that has readings lacks one is missing for the country.
#[derive(Debug, Clone)]
pub(crate) struct CountrySignal {
    kind: SignalKind,
    /// Bin index of position 0, once there is data.
    first: Option<i64>,
    values: Vec<Option<f64>>,
    states: Vec<BinAlert>,
    baselines: Vec<f64>,
}

impl CountrySignal {
    pub(crate) fn new(kind: SignalKind) -> CountrySignal {
        CountrySignal {
            kind,
            first: None,
            values: Vec::new(),
            states: Vec::new(),
            baselines: Vec::new(),
        }
    }

    /// Re-classifies up to bin index `upto` given the networks' series `parts` (in a fixed
    /// order, so that the floating-point sums do not depend on arrival order) and the earliest
    /// bin index any of them changed since the last update.
    pub(crate) fn update(&mut self, parts: &[&SignalSeries], changed: i64, upto: i64, config: &Config) {
        let parts: Vec<&SignalSeries> = parts.iter().copied().filter(|s| !s.is_empty()).collect();
        let Some(first) = parts.iter().map(|s| s.first).min() else {
            *self = CountrySignal::new(self.kind);
            return;
        };
        let from = if self.first == Some(first) {
            usize::try_from(changed.saturating_sub(first))
                .unwrap_or(0)
                .min(self.states.len())
        } else {
            0
        };
        self.first = Some(first);
        let last = parts.iter().map(|s| s.first + s.len() as i64).max().unwrap_or(first);
        let horizon = last.saturating_add(max_age_bins(config.outage.rule(self.kind), config) as i64);
        let n = usize::try_from(upto.min(horizon).saturating_sub(first)).unwrap_or(0);
        let from = from.min(n);
        self.values.truncate(from);
        self.states.truncate(from);
        self.baselines.truncate(from);
        for pos in from..n {
            let b = first + pos as i64;
            let sum = parts.iter().try_fold(0.0, |sum, p| {
                if b < p.first {
                    Some(sum)
                } else {
                    Some(sum + p.value((b - p.first) as usize)?)
                }
            });
            self.values.push(sum);
        }
        let values = &self.values;
        classify_from(
            &|i: usize| values[i],
            n,
            from,
            &mut self.states,
            &mut self.baselines,
            self.kind,
            config,
        );
    }

    /// The classified bins and the bin index of the first.
    pub(crate) fn judged(&self) -> Judged<'_> {
        Judged {
            kind: self.kind,
            first: self.first.unwrap_or(0),
            states: &self.states,
        }
    }

    /// The alert runs of the classified bins.
    pub(crate) fn alerts(&self, cc: Cc, config: &Config) -> Vec<SignalAlert> {
        let Some(first) = self.first else {
            return Vec::new();
        };
        runs(&self.states, &self.baselines, |i| self.values[i], config)
            .into_iter()
            .map(|r| r.into_alert(first, self.kind, cc, None, config))
            .collect()
    }
}

/// The classified bins of one signal: what [`contradicted`] reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judged<'a> {
    kind: SignalKind,
    /// Bin index of `states[0]`.
    first: i64,
    states: &'a [BinAlert],
}

impl Judged<'_> {
    /// Over bin indices `[from, to)`: how many bins were judged normal, how many alerts.
    fn over(&self, from: i64, to: i64) -> (usize, usize) {
        let clip = |b: i64| {
            usize::try_from(b.saturating_sub(self.first))
                .unwrap_or(0)
                .min(self.states.len())
        };
        let span = &self.states[clip(from)..clip(to).max(clip(from))];
        let normal = span.iter().filter(|s| **s == BinAlert::Normal).count();
        let alerts = span.iter().filter(|s| s.level().is_some()).count();
        (normal, alerts)
    }
}

/// Whether a probe-volume alert is contradicted by the same scope's level signals: one of them
/// (BGP visibility, control reachability) was read and judged normal during the alert, with no
/// alert of its own there. The network's routes were up and its hosts answered: the probes fell
/// silent (switched off, blocked from submitting), not the network. A scope without level
/// readings has nothing to contradict it (the lab's replay has probe volume only).
pub(crate) fn contradicted(alert: &SignalAlert, signals: &[Judged<'_>], bin: i64) -> bool {
    if !alert.kind.is_count() {
        return false;
    }
    let from = alert.start.div_euclid(bin);
    let to = alert.end.map_or(i64::MAX, |e| e.div_euclid(bin));
    signals.iter().filter(|j| !j.kind.is_count()).any(|j| {
        let (normal, alerts) = j.over(from, to);
        normal > 0 && alerts == 0
    })
}

/// A bin's value: a count's sum (zero past the last reading), a level's mean (none without
/// readings).
fn value_at(kind: SignalKind, sum: &[f64], count: &[u32], i: usize) -> Option<f64> {
    if kind.is_count() {
        return Some(sum.get(i).copied().unwrap_or(0.0));
    }
    match count.get(i) {
        Some(&n) if n > 0 => Some(sum[i] / f64::from(n)),
        _ => None,
    }
}

/// Classifies a whole series of values starting at bin index `first` and returns its alerts:
/// the batch form of [`SignalSeries`] and [`CountrySignal`], for tests.
#[cfg(test)]
pub(crate) fn alerts_of_values(
    values: &[Option<f64>],
    first: i64,
    kind: SignalKind,
    cc: Cc,
    asn: Option<u32>,
    config: &Config,
) -> Vec<SignalAlert> {
    let mut states = Vec::with_capacity(values.len());
    let mut baselines = Vec::with_capacity(values.len());
    classify_from(
        &|i: usize| values[i],
        values.len(),
        0,
        &mut states,
        &mut baselines,
        kind,
        config,
    );
    runs(&states, &baselines, |i| values[i], config)
        .into_iter()
        .map(|r| r.into_alert(first, kind, cc, asn, config))
        .collect()
}

/// How many bins back a baseline may reach: `max_baseline_age` windows.
pub(crate) fn max_age_bins(rule: &SignalRule, config: &Config) -> usize {
    bins_for(rule.window, config.bin).saturating_mul(config.outage.max_baseline_age.max(1) as usize)
}

/// Bins for a rule's durations.
fn bins_for(seconds: i64, bin: i64) -> usize {
    ((seconds + bin - 1) / bin).max(1) as usize
}

/// Classifies one value against a baseline.
pub fn classify_value(
    value: f64,
    baseline: f64,
    kind: SignalKind,
    rule: &SignalRule,
    config: &OutageConfig,
) -> BinAlert {
    if baseline <= 0.0 || value >= rule.warning * baseline {
        return BinAlert::Normal;
    }
    if kind.is_count()
        && (baseline < config.min_volume_baseline
            || poisson_cdf(value.max(0.0).floor() as u64, baseline) > config.volume_alpha)
    {
        return BinAlert::Normal;
    }
    if value < rule.critical * baseline {
        BinAlert::Critical
    } else {
        BinAlert::Warning
    }
}

/// The baseline window as it stands before position `at`: up to `w` of the latest values before
/// it that were not alerts, none more than `max_age` positions back, oldest first.
fn window_before(
    value: &dyn Fn(usize) -> Option<f64>,
    states: &[BinAlert],
    at: usize,
    w: usize,
    max_age: usize,
) -> VecDeque<(usize, f64)> {
    let mut window = VecDeque::new();
    let mut j = at;
    while j > 0 && window.len() < w {
        j -= 1;
        if at - j > max_age {
            break;
        }
        if let Some(v) = value(j)
            && eligible(states[j])
        {
            window.push_front((j, v));
        }
    }
    window
}

/// Whether a bin's value may join a baseline: alerts stay out of it.
fn eligible(s: BinAlert) -> bool {
    matches!(s, BinAlert::Normal | BinAlert::NoBaseline)
}

/// The chance that one bin of a count is empty by chance, from the values of its baseline
/// window: the larger of the Poisson e^-λ (λ the window's mean) and the share of empty bins in
/// the window, Laplace-smoothed ((zeros + 1) / (n + 2)), so that a network whose probes are
/// often idle (nights, a laptop) needs a longer silence. Not the median: at about one
/// measurement a bin, the median of a few days is often 0. 1 for an empty window.
pub fn empty_bin_chance(window: &[f64]) -> f64 {
    if window.is_empty() {
        return 1.0;
    }
    let n = window.len() as f64;
    let mean = window.iter().sum::<f64>() / n;
    let zeros = window.iter().filter(|&&x| x <= 0.0).count() as f64;
    (-mean).exp().max((zeros + 1.0) / (n + 2.0)).min(1.0)
}

/// Whether `k` empty bins in a row, each empty with chance `p0`, are improbable enough
/// (p0^k ≤ `alpha`) to be a shutdown rather than a quiet spell.
pub fn silence_is_significant(p0: f64, k: usize, alpha: f64) -> bool {
    p0 < 1.0 && k > 0 && (k as f64) * p0.ln() <= alpha.ln()
}

/// A run of empty bins of a count in progress: its first position and the chance of one empty
/// bin as it began.
#[derive(Clone, Copy)]
struct Silence {
    start: usize,
    p0: f64,
    /// Whether the run has been found significant (and its bins marked).
    marked: bool,
}

/// Classifies the values `value(from..n)` given the states of those before `from` (pushed onto
/// `states` and `baselines`); only the values a baseline can still reach are read. The
/// baseline of bin `i` is the median of the last `window` values before it that were not
/// alerts, none older than `max_age` windows; with fewer than `min_history` of them there is no
/// baseline. Each bin is judged on its own ([`classify_value`]); a count is also judged by its
/// runs of empty bins: once a run is improbably long for the network's volume before it
/// ([`empty_bin_chance`], [`silence_is_significant`] at `silence_alpha`), the whole run, from its
/// first bin, is critical, and so is every empty bin after it until measurements return. Such a
/// run is decided by its last bin, so classification of a count always resumes from the start
/// of the run of empty bins that ends just before `from`, which keeps the incremental result
/// equal to the batch one.
pub(crate) fn classify_from(
    value: &dyn Fn(usize) -> Option<f64>,
    n: usize,
    from: usize,
    states: &mut Vec<BinAlert>,
    baselines: &mut Vec<f64>,
    kind: SignalKind,
    config: &Config,
) {
    let rule = config.outage.rule(kind);
    let w = bins_for(rule.window, config.bin);
    let max_age = max_age_bins(rule, config);
    let min_hist = bins_for(rule.min_history, config.bin);
    let counts_silence = kind.is_count();
    let mut from = from.min(states.len());
    if counts_silence {
        while from > 0 && value(from - 1) == Some(0.0) {
            from -= 1;
        }
    }
    states.truncate(from);
    baselines.truncate(from);
    // Rebuild the window as it stood at `from`.
    let mut window = window_before(value, states, from, w, max_age);
    let mut sorted: Vec<f64> = window.iter().map(|&(_, v)| v).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let remove = |sorted: &mut Vec<f64>, v: f64| {
        if let Ok(p) = sorted.binary_search_by(|x| x.total_cmp(&v)) {
            sorted.remove(p);
        }
    };
    let mut silence: Option<Silence> = None;
    for i in from..n {
        let reading = value(i);
        while let Some(&(j, v)) = window.front() {
            if i - j > max_age {
                window.pop_front();
                remove(&mut sorted, v);
            } else {
                break;
            }
        }
        let baseline = if sorted.len() >= min_hist {
            sorted_median(&sorted)
        } else {
            f64::NAN
        };
        let mut state = match reading {
            None => BinAlert::Missing,
            Some(_) if baseline.is_nan() => BinAlert::NoBaseline,
            Some(v) => classify_value(v, baseline, kind, rule, &config.outage),
        };
        if counts_silence {
            if reading == Some(0.0) {
                let run = silence.get_or_insert(Silence {
                    start: i,
                    p0: if baseline.is_nan() {
                        1.0
                    } else {
                        empty_bin_chance(&sorted)
                    },
                    marked: false,
                });
                let k = i - run.start + 1;
                // Without a baseline (a silence so long that the window aged out) the bin is
                // left unjudged, which ends the alert as it always has.
                if !baseline.is_nan() && silence_is_significant(run.p0, k, config.outage.silence_alpha) {
                    if !run.marked {
                        run.marked = true;
                        // The run just became a shutdown: so is all of it, and it leaves the
                        // baseline.
                        for s in &mut states[run.start..i] {
                            *s = BinAlert::Critical;
                        }
                        window = window_before(value, states, i, w, max_age);
                        sorted = window.iter().map(|&(_, v)| v).collect();
                        sorted.sort_unstable_by(f64::total_cmp);
                    }
                    state = BinAlert::Critical;
                }
            } else {
                silence = None;
            }
        }
        states.push(state);
        baselines.push(baseline);
        if let Some(v) = reading
            && eligible(state)
        {
            window.push_back((i, v));
            let p = sorted.partition_point(|x| x.total_cmp(&v).is_lt());
            sorted.insert(p, v);
            if window.len() > w
                && let Some((_, old)) = window.pop_front()
            {
                remove(&mut sorted, old);
            }
        }
    }
}

/// One run of alert bins, in positions.
struct Run {
    start: usize,
    end: Option<usize>,
    level: Level,
    baseline: f64,
    lowest: f64,
}

impl Run {
    fn into_alert(self, first: i64, kind: SignalKind, cc: Cc, asn: Option<u32>, config: &Config) -> SignalAlert {
        SignalAlert {
            cc,
            asn,
            kind,
            level: self.level,
            start: (first + self.start as i64) * config.bin,
            end: self.end.map(|e| (first + e as i64) * config.bin),
            baseline: self.baseline,
            lowest: self.lowest,
        }
    }
}

/// Alert bins separated by at most `merge_gap` of normal bins form one run; missing bins
/// neither break nor extend a run; a bin without baseline breaks it.
fn runs(states: &[BinAlert], baselines: &[f64], value: impl Fn(usize) -> Option<f64>, config: &Config) -> Vec<Run> {
    let gap = (config.outage.merge_gap / config.bin).max(0) as usize;
    let mut out: Vec<Run> = Vec::new();
    let mut cur: Option<Run> = None;
    let mut normal_since: Option<usize> = None;
    for (i, &s) in states.iter().enumerate() {
        if let Some(level) = s.level() {
            let v = value(i).unwrap_or(f64::NAN);
            match &mut cur {
                Some(r) => {
                    r.level = r.level.max(level);
                    r.lowest = r.lowest.min(v);
                    r.end = None;
                }
                None => {
                    cur = Some(Run {
                        start: i,
                        end: None,
                        level,
                        baseline: baselines[i],
                        lowest: v,
                    });
                }
            }
            normal_since = None;
            continue;
        }
        let Some(r) = &mut cur else { continue };
        match s {
            BinAlert::Normal => {
                let since = *normal_since.get_or_insert(i);
                r.end = Some(since);
                if i - since + 1 > gap {
                    out.extend(cur.take());
                    normal_since = None;
                }
            }
            BinAlert::NoBaseline => {
                r.end = Some(normal_since.unwrap_or(i));
                out.extend(cur.take());
                normal_since = None;
            }
            _ => {}
        }
    }
    out.extend(cur);
    out
}

/// One network's (or the country's) outage: its signals' alerts merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsnOutage {
    /// The network.
    pub asn: u32,
    /// Its first alert bin.
    pub start: i64,
    /// The end of its last alert; `None` while it lasts.
    pub end: Option<i64>,
    /// The worst level (probe volume alone counts as a warning at most).
    pub level: Level,
    /// The signals that alerted.
    pub signals: Vec<SignalKind>,
}

/// A shutdown in one country: the networks whose signals fell together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    /// `CC-outage-STARTBIN`.
    pub id: String,
    /// The country.
    pub cc: Cc,
    /// The first alert.
    pub start: i64,
    /// The last alert's end; `None` while any lasts.
    pub end: Option<i64>,
    /// The worst level.
    pub level: Level,
    /// Every signal that alerted.
    pub signals: Vec<SignalKind>,
    /// Whether the country's summed signals alerted too (not only some networks').
    pub country_wide: bool,
    /// The affected networks, each with its own span.
    pub asns: Vec<AsnOutage>,
    /// The underlying alerts.
    pub alerts: Vec<SignalAlert>,
}

fn later(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        _ => None,
    }
}

fn close(end: Option<i64>, start: i64, gap: i64) -> bool {
    end.is_none_or(|e| start <= e.saturating_add(gap))
}

/// Merges signal alerts into outages: per scope (network or country) the alerts of all signals
/// that overlap, then per country the scopes that overlap.
pub fn group_outages(alerts: &[SignalAlert], config: &Config) -> Vec<Outage> {
    let gap = config.outage.merge_gap;
    let mut by_cc: BTreeMap<Cc, Vec<&SignalAlert>> = BTreeMap::new();
    for a in alerts {
        by_cc.entry(a.cc).or_default().push(a);
    }
    let mut out = Vec::new();
    for (cc, list) in by_cc {
        // Per scope.
        let mut by_scope: BTreeMap<Option<u32>, Vec<&SignalAlert>> = BTreeMap::new();
        for a in list {
            by_scope.entry(a.asn).or_default().push(a);
        }
        struct ScopeSpan<'a> {
            asn: Option<u32>,
            start: i64,
            end: Option<i64>,
            alerts: Vec<&'a SignalAlert>,
        }
        let mut spans: Vec<ScopeSpan<'_>> = Vec::new();
        for (asn, mut v) in by_scope {
            v.sort_by_key(|a| (a.start, a.kind));
            let mut cur: Option<ScopeSpan<'_>> = None;
            for a in v {
                match &mut cur {
                    Some(s) if close(s.end, a.start, gap) => {
                        s.end = later(s.end, a.end);
                        s.alerts.push(a);
                    }
                    _ => {
                        spans.extend(cur.take());
                        cur = Some(ScopeSpan {
                            asn,
                            start: a.start,
                            end: a.end,
                            alerts: vec![a],
                        });
                    }
                }
            }
            spans.extend(cur);
        }
        spans.sort_by_key(|s| (s.start, s.asn));
        let mut clusters: Vec<(Option<i64>, Vec<ScopeSpan<'_>>)> = Vec::new();
        for s in spans {
            match clusters.last_mut() {
                Some((end, c)) if close(*end, s.start, gap) => {
                    *end = later(*end, s.end);
                    c.push(s);
                }
                _ => clusters.push((s.end, vec![s])),
            }
        }
        for (end, c) in clusters {
            let mut signals: Vec<SignalKind> = Vec::new();
            let mut level = Level::Warning;
            let mut asns = Vec::new();
            let mut all = Vec::new();
            let mut country_wide = false;
            let start = c.iter().map(|s| s.start).min().unwrap_or(0);
            for s in &c {
                let mut kinds: Vec<SignalKind> = s.alerts.iter().map(|a| a.kind).collect();
                kinds.sort();
                kinds.dedup();
                let mut scope_level = s.alerts.iter().map(|a| a.level).max().unwrap_or(Level::Warning);
                if kinds == [SignalKind::ProbeVolume] {
                    scope_level = Level::Warning;
                }
                level = level.max(scope_level);
                for k in &kinds {
                    if !signals.contains(k) {
                        signals.push(*k);
                    }
                }
                all.extend(s.alerts.iter().map(|a| (*a).clone()));
                match s.asn {
                    Some(asn) => asns.push(AsnOutage {
                        asn,
                        start: s.start,
                        end: s.end,
                        level: scope_level,
                        signals: kinds,
                    }),
                    None => country_wide = true,
                }
            }
            signals.sort();
            all.sort_by_key(|a| (a.start, a.asn, a.kind));
            out.push(Outage {
                id: format!("{cc}-outage-{}", config.bin_of(start) * config.bin),
                cc,
                start,
                end,
                level,
                signals,
                country_wide,
                asns,
                alerts: all,
            });
        }
    }
    out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_the_poisson_guard() {
        let c = Config::default();
        let bgp = &c.outage.bgp;
        assert_eq!(
            classify_value(995.0, 1000.0, SignalKind::Bgp, bgp, &c.outage),
            BinAlert::Normal
        );
        assert_eq!(
            classify_value(980.0, 1000.0, SignalKind::Bgp, bgp, &c.outage),
            BinAlert::Warning
        );
        assert_eq!(
            classify_value(499.0, 1000.0, SignalKind::Bgp, bgp, &c.outage),
            BinAlert::Critical
        );
        let vol = &c.outage.probe_volume;
        // A volume of 0 against a baseline of 4 is too small to mean anything.
        assert_eq!(
            classify_value(0.0, 4.0, SignalKind::ProbeVolume, vol, &c.outage),
            BinAlert::Normal
        );
        // 0 against 10: P = e^-10 = 4.5e-5, not improbable enough.
        assert_eq!(
            classify_value(0.0, 10.0, SignalKind::ProbeVolume, vol, &c.outage),
            BinAlert::Normal
        );
        // 0 against 20: P = 2e-9.
        assert_eq!(
            classify_value(0.0, 20.0, SignalKind::ProbeVolume, vol, &c.outage),
            BinAlert::Critical
        );
        assert_eq!(
            classify_value(5.0, 0.0, SignalKind::Bgp, bgp, &c.outage),
            BinAlert::Normal
        );
    }

    #[test]
    fn a_drop_against_the_trailing_median_is_one_alert() {
        let c = Config::default();
        let cc = Cc::new("PK").unwrap();
        // 48 hours at 100, 5 hours at 10, one missing hour inside, then 100 again.
        let mut values: Vec<Option<f64>> = vec![Some(100.0); 48];
        values.extend([Some(10.0), Some(10.0), None, Some(10.0), Some(12.0), Some(10.0)]);
        values.extend(vec![Some(100.0); 10]);
        let alerts = alerts_of_values(&values, 1000, SignalKind::Bgp, cc, Some(7), &c);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(a.level, Level::Critical);
        assert_eq!(a.start, (1000 + 48) * 3600);
        assert_eq!(a.end, Some((1000 + 54) * 3600));
        assert_eq!((a.baseline, a.lowest), (100.0, 10.0));
        // Too little history: nothing.
        assert!(alerts_of_values(&values[..3], 0, SignalKind::Bgp, cc, None, &c).is_empty());
    }

    #[test]
    fn a_long_shutdown_does_not_become_the_baseline() {
        let c = Config::default();
        let cc = Cc::new("PK").unwrap();
        // Two days at 100, then three days at 5: still one open alert at the end.
        let mut values: Vec<Option<f64>> = vec![Some(100.0); 48];
        values.extend(vec![Some(5.0); 72]);
        let alerts = alerts_of_values(&values, 0, SignalKind::Bgp, cc, None, &c);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].end, None);
    }

    #[test]
    fn alerts_of_a_country_group_into_one_outage() {
        let c = Config::default();
        let cc = Cc::new("PK").unwrap();
        let alert = |asn, kind, start: i64, end: i64, level| SignalAlert {
            cc,
            asn,
            kind,
            level,
            start: start * 3600,
            end: Some(end * 3600),
            baseline: 100.0,
            lowest: 1.0,
        };
        let out = group_outages(
            &[
                alert(Some(1), SignalKind::Bgp, 10, 20, Level::Critical),
                alert(Some(2), SignalKind::ProbeVolume, 11, 19, Level::Critical),
                alert(None, SignalKind::Bgp, 10, 20, Level::Warning),
                alert(Some(1), SignalKind::Bgp, 100, 101, Level::Warning),
            ],
            &c,
        );
        assert_eq!(out.len(), 2);
        let o = &out[0];
        assert_eq!((o.start, o.end), (10 * 3600, Some(20 * 3600)));
        assert!(o.country_wide);
        assert_eq!(o.level, Level::Critical);
        assert_eq!(o.asns.len(), 2);
        // Probe volume alone is a warning at most.
        assert_eq!(o.asns[1].level, Level::Warning);
        assert_eq!(o.id, format!("PK-outage-{}", 10 * 3600));
    }

    const PK: &str = "PK";

    fn volume_alerts(values: &[f64], config: &Config) -> Vec<SignalAlert> {
        let values: Vec<Option<f64>> = values.iter().map(|&v| Some(v)).collect();
        alerts_of_values(
            &values,
            0,
            SignalKind::ProbeVolume,
            Cc::new(PK).unwrap(),
            Some(7),
            config,
        )
    }

    /// `len` hourly counts of a network measuring about `lambda` an hour (Poisson, from the
    /// simulator's seeded generator).
    fn poisson_counts(seed: u64, lambda: f64, len: usize) -> Vec<f64> {
        let mut rng = crate::sim::Rng::new(seed);
        (0..len).map(|_| f64::from(rng.poisson(lambda))).collect()
    }

    #[test]
    fn how_long_a_silence_must_be() {
        let alpha = Config::default().outage.silence_alpha;
        // A steady 3 an hour: an empty hour has chance e^-3; 7 in a row are below 1e-9, 6 not.
        let p0 = empty_bin_chance(&[3.0; 100]);
        assert!((p0 - (-3f64).exp()).abs() < 1e-12);
        assert!(!silence_is_significant(p0, 6, alpha));
        assert!(silence_is_significant(p0, 7, alpha));
        // At 1 an hour it takes 21.
        let p0 = empty_bin_chance(&[1.0; 100]);
        assert!(!silence_is_significant(p0, 20, alpha));
        assert!(silence_is_significant(p0, 21, alpha));
        // Probes idle a third of the time: the empty share (34 + 1) / (102 + 2) rules, not e^-2.
        let mut idle = vec![0.0; 34];
        idle.extend([3.0; 68]);
        assert!((empty_bin_chance(&idle) - 35.0 / 104.0).abs() < 1e-12);
        // Mostly empty (median 0): still judged, by the share (60 + 1) / (100 + 2): 41 bins.
        let mut mostly = vec![0.0; 60];
        mostly.extend([2.0; 40]);
        let p0 = empty_bin_chance(&mostly);
        assert!((p0 - 61.0 / 102.0).abs() < 1e-12);
        assert!(!silence_is_significant(p0, 40, alpha) && silence_is_significant(p0, 41, alpha));
        // No history, or nothing ever measured: never.
        assert_eq!(empty_bin_chance(&[]), 1.0);
        assert_eq!(empty_bin_chance(&[0.0; 50]), 1.0);
        assert!(!silence_is_significant(1.0, 10_000, alpha));
        assert!(!silence_is_significant(0.5, 0, alpha));
    }

    #[test]
    fn a_sparse_network_that_falls_silent_is_an_outage_from_its_first_empty_bin() {
        let c = Config::default();
        // Telenor in the lab's pk-2024 replay: 3 an hour for 54 h, silent 12 h, back.
        let mut values = vec![3.0; 54];
        values.extend([0.0; 12]);
        values.extend([3.0; 6]);
        // The per-bin test alone cannot see it: 3 is under min_volume_baseline.
        assert_eq!(
            classify_value(0.0, 3.0, SignalKind::ProbeVolume, &c.outage.probe_volume, &c.outage),
            BinAlert::Normal
        );
        let alerts = volume_alerts(&values, &c);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!((a.start, a.end), (54 * 3600, Some(66 * 3600)));
        assert_eq!((a.level, a.baseline, a.lowest), (Level::Critical, 3.0, 0.0));
        // Still silent when the data ends: open.
        let alerts = volume_alerts(&values[..62], &c);
        assert_eq!(alerts.len(), 1);
        assert_eq!((alerts[0].start, alerts[0].end), (54 * 3600, None));
        // Six silent hours are not enough at 3 an hour; seven are.
        let mut short = vec![3.0; 54];
        short.extend([0.0; 6]);
        short.extend([3.0; 6]);
        assert!(volume_alerts(&short, &c).is_empty());
        short[60] = 0.0;
        assert_eq!(volume_alerts(&short, &c).len(), 1);
        // A level (BGP) is unaffected: zero is just far below its baseline.
        let levels: Vec<Option<f64>> = values.iter().map(|&v| Some(v)).collect();
        let bgp = alerts_of_values(&levels, 0, SignalKind::Bgp, Cc::new(PK).unwrap(), None, &c);
        assert_eq!((bgp.len(), bgp[0].start), (1, 54 * 3600));
    }

    #[test]
    fn a_network_silent_every_night_is_not_shut_down_every_night() {
        let c = Config::default();
        // 16 h at 2 an hour, 8 h of nothing, for 10 days: never an alert...
        let day: Vec<f64> = (0..24).map(|h| if h < 16 { 2.0 } else { 0.0 }).collect();
        let mut values: Vec<f64> = day.iter().copied().cycle().take(240).collect();
        assert!(volume_alerts(&values, &c).is_empty());
        // ... but a whole day and a half of silence is one.
        values.extend(day.iter().take(16));
        values.extend([0.0; 36]);
        values.extend(day.iter().take(16));
        let alerts = volume_alerts(&values, &c);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].start, 256 * 3600);
    }

    #[test]
    fn a_silence_that_was_a_shutdown_leaves_the_baseline() {
        let c = Config::default();
        // Two shutdowns a day apart: the first one's zeros must not make the second look normal.
        let mut values = vec![2.0; 48];
        for _ in 0..2 {
            values.extend([0.0; 14]);
            values.extend([2.0; 24]);
        }
        let alerts = volume_alerts(&values, &c);
        let spans: Vec<(i64, Option<i64>)> = alerts
            .iter()
            .map(|a| (a.start / 3600, a.end.map(|e| e / 3600)))
            .collect();
        assert_eq!(spans, [(48, Some(62)), (86, Some(100))]);
    }

    /// Feeds `values` to a [`SignalSeries`] as a detector would: `late` bins held back until
    /// after a first classification up to `cut`, then the rest, classified to the end.
    fn incremental_alerts(values: &[f64], cut: usize, late: &[usize], config: &Config) -> Vec<SignalAlert> {
        let mut series = SignalSeries::new(SignalKind::ProbeVolume);
        for (i, &v) in values.iter().enumerate() {
            if i < cut && !late.contains(&i) && v > 0.0 {
                series.add(i as i64, v);
            }
        }
        series.classify(cut as i64, config);
        for (i, &v) in values.iter().enumerate() {
            if (i >= cut || late.contains(&i)) && v > 0.0 {
                series.add(i as i64, v);
            }
            if i % 17 == 0 {
                series.classify(cut.max(i) as i64, config);
            }
        }
        series.classify(values.len() as i64, config);
        series.alerts(Cc::new(PK).unwrap(), Some(7), config)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]

        /// Sixty days of a sparse network's noise (Poisson at 1 to 3 an hour) never open an
        /// outage: neither a bin on its own nor a run of empty bins.
        #[test]
        fn sparse_noise_never_alerts(seed in proptest::prelude::any::<u64>(), lambda in 1.0f64..3.0) {
            let values = poisson_counts(seed, lambda, 60 * 24);
            let alerts = volume_alerts(&values, &Config::default());
            proptest::prop_assert!(alerts.is_empty(), "{:?}", alerts);
        }

        /// A sparse network that falls silent for a day and a half after three days of noise is
        /// one outage, from the first bin of the run of empty bins that holds the silence to the
        /// first bin with measurements after it; when the bins around the silence hold
        /// measurements, that is exactly the silence.
        #[test]
        fn a_long_enough_silence_is_found_to_the_bin(
            seed in proptest::prelude::any::<u64>(),
            lambda in 1.0f64..3.0,
            silent in 36usize..60,
            neighbours_measured in proptest::prelude::any::<bool>(),
        ) {
            let start = 72;
            let mut values = poisson_counts(seed, lambda, start + silent + 24);
            for v in &mut values[start..start + silent] {
                *v = 0.0;
            }
            if neighbours_measured {
                values[start - 1] = values[start - 1].max(1.0);
                values[start + silent] = values[start + silent].max(1.0);
            }
            let alerts = volume_alerts(&values, &Config::default());
            let first = (0..start).rev().take_while(|&i| values[i] == 0.0).last().unwrap_or(start);
            let back = (start + silent..values.len()).find(|&i| values[i] > 0.0);
            let at = |i: usize| i as i64 * 3600;
            proptest::prop_assert_eq!(alerts.len(), 1, "{:?}", alerts);
            proptest::prop_assert_eq!(alerts[0].start, at(first));
            proptest::prop_assert_eq!(alerts[0].end, back.map(at));
            if neighbours_measured {
                proptest::prop_assert_eq!((alerts[0].start, alerts[0].end), (at(start), Some(at(start + silent))));
            }
        }

        /// Classified in pieces, with some bins arriving after their neighbours were judged, a
        /// series gives the same alerts as classified at once.
        #[test]
        fn incremental_classification_equals_batch(
            seed in proptest::prelude::any::<u64>(),
            lambda in 0.5f64..8.0,
            silences in proptest::collection::vec((24usize..200, 1usize..40), 0..3),
            cut in 1usize..260,
            late in proptest::collection::vec(0usize..260, 0..6),
        ) {
            let mut values = poisson_counts(seed, lambda, 260);
            values[0] = values[0].max(1.0);
            for (at, len) in silences {
                for v in values.iter_mut().skip(at).take(len) {
                    *v = 0.0;
                }
            }
            let config = Config::default();
            let batch = volume_alerts(&values, &config);
            let cut = cut.min(values.len());
            let late: Vec<usize> = late.into_iter().filter(|&i| i > 0).collect();
            proptest::prop_assert_eq!(incremental_alerts(&values, cut, &late, &config), batch);
        }
    }
}
