//! The incremental detector: observations and signal samples go in, in any order within the
//! lateness window; events and outages come out, recomputed only where data changed.
//!
//! Each series keeps dense bins and its decoder state ([`crate::segment`]); a new observation
//! touches one bin and marks the series dirty from there. [`Detector::refresh`] re-decodes the
//! dirty series from their earliest changed bin, re-groups only the (platform, country) groups
//! whose series events changed, and re-classifies the outage signals that changed. Because every
//! result is a function of the bin counts alone, the same observations give the same events
//! whatever order they arrived in.

use crate::bins::{Bin, BinSummary, Bins, dominant};
use crate::config::{Config, ConfigError};
use crate::group::{Event, Evidence, Pattern, SeriesEvent, group_events, method_list};
use crate::hash::FastMap;
use crate::obs::{Cc, Observation, SeriesKey, SignalKind, SignalSample};
use crate::outage::{CountrySignal, Judged, Outage, SignalAlert, SignalSeries, contradicted, group_outages};
use crate::platform::platform_of;
use crate::segment::{RawEvent, Viterbi, boundary, extract};
use crate::stats::wilson;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The earliest time accepted: 2000-01-01T00:00:00Z. A probe whose clock says 1970 has no
/// place in a time series, and the bound keeps bin arithmetic far from overflow.
pub const MIN_TIME: i64 = 946_684_800;
/// The first time no longer accepted: 2100-01-01T00:00:00Z.
pub const MAX_TIME: i64 = 4_102_444_800;

/// Why the detector refused an input. A refused input changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// Older than the lateness window behind the newest time seen (or the clock).
    #[error(
        "data at {time} is more than {lateness} s older than the newest seen ({watermark}); \
         it is refused so that past results can settle"
    )]
    TooLate {
        /// The input's time.
        time: i64,
        /// The newest time seen (or `now`).
        watermark: i64,
        /// The lateness window, seconds.
        lateness: i64,
    },
    /// Later than the clock given to [`Detector::refresh`] by more than the lateness window: a
    /// probe with a wrong clock, which would otherwise make every honest input look late.
    #[error("data at {time} is more than {lateness} s ahead of the clock ({clock}); check the probe's clock")]
    FromTheFuture {
        /// The input's time.
        time: i64,
        /// The last `now` given to [`Detector::refresh`].
        clock: i64,
        /// The lateness window, seconds.
        lateness: i64,
    },
    /// Outside 2000–2099 ([`MIN_TIME`], [`MAX_TIME`]).
    #[error("data at {0} is outside the years 2000 to 2099 (Unix seconds {MIN_TIME} to {MAX_TIME})")]
    TimeOutOfRange(i64),
    /// A signal value that is not a finite, non-negative number.
    #[error("signal value {0} is not a finite, non-negative number")]
    BadValue(f64),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Observations accepted.
    pub observations: u64,
    /// Signal samples accepted.
    pub signal_samples: u64,
    /// Inputs refused as too late.
    pub too_late: u64,
    /// Inputs refused otherwise (bad time or value).
    pub refused: u64,
    /// Series (domain, country, network) seen.
    pub series: usize,
}

/// Everything a batch run finds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Country-level blocking events.
    pub events: Vec<Event>,
    /// Per-series blocking events.
    pub series_events: Vec<SeriesEvent>,
    /// Outages.
    pub outages: Vec<Outage>,
    /// The signal alerts behind them.
    pub alerts: Vec<SignalAlert>,
    /// Counters.
    pub stats: Stats,
}

#[derive(Debug)]
struct SeriesState {
    key: SeriesKey,
    platform: Arc<str>,
    group: usize,
    signals: usize,
    bins: Bins,
    vit: Viterbi,
    /// Earliest changed position, `usize::MAX` when clean.
    dirty_from: usize,
    events: Vec<SeriesEvent>,
    /// For each of `events`, the position that decided it ([`RawEvent::decided_by`];
    /// `usize::MAX` while open).
    decided: Vec<usize>,
}

#[derive(Debug)]
struct GroupState {
    members: Vec<usize>,
    dirty: bool,
    events: Vec<Event>,
}

#[derive(Debug)]
struct SignalSet {
    cc: Cc,
    asn: u32,
    series: [SignalSeries; 3],
    dirty: bool,
    alerts: Vec<SignalAlert>,
}

/// A country's networks and its summed signals.
#[derive(Debug)]
struct Country {
    /// Its networks' signal sets, by ASN.
    members: Vec<usize>,
    signals: [CountrySignal; 3],
    alerts: Vec<SignalAlert>,
}

/// How far the outage signals are judged: bins before these bin indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SignalHorizon {
    /// Levels (BGP, control reachability): every bin that ended by the clock. A level without
    /// readings is missing, not low, so judging up to the clock is safe.
    levels: i64,
    /// Counts (probe volume): every bin that ended [`crate::OutageConfig::volume_settle`]
    /// before both the clock and the newest measurement. A count is zero where nothing was
    /// received, so past the end of the data (a finished dataset, a stalled ingest) every
    /// network would look silent: those bins are unknown, and wait.
    counts: i64,
}

impl SignalHorizon {
    fn at(now: i64, newest_measurement: Option<i64>, config: &Config) -> SignalHorizon {
        let levels = config.bin_of(now);
        let judged_until = newest_measurement
            .map_or(i64::MIN, |t| t.min(now))
            .saturating_sub(config.outage.volume_settle);
        SignalHorizon {
            levels,
            counts: config.bin_of(judged_until).min(levels),
        }
    }

    fn upto(self, kind: SignalKind) -> i64 {
        if kind.is_count() { self.counts } else { self.levels }
    }
}

/// The incremental detector (see the module doc).
#[derive(Debug)]
pub struct Detector {
    config: Config,
    index: FastMap<SeriesKey, usize>,
    series: Vec<SeriesState>,
    dirty: Vec<usize>,
    group_index: FastMap<(Arc<str>, Cc), usize>,
    groups: Vec<GroupState>,
    dirty_groups: Vec<usize>,
    signal_index: FastMap<(Cc, u32), usize>,
    signal_sets: Vec<SignalSet>,
    dirty_ccs: BTreeSet<Cc>,
    countries: FastMap<Cc, Country>,
    /// The bins the outage signals were last classified up to (exclusive): levels, counts.
    classified_upto: Option<SignalHorizon>,
    /// The newest measurement time accepted: counts are not judged past it (see
    /// [`crate::OutageConfig::volume_settle`]).
    newest_measurement: Option<i64>,
    outages: Option<Vec<Outage>>,
    watermark: i64,
    /// The latest `now` given to [`Detector::refresh`].
    clock: Option<i64>,
    stats: Stats,
}

impl Detector {
    /// A detector with `config`, refused when a setting is out of range (see
    /// [`Config::validate`]).
    pub fn new(config: Config) -> Result<Detector, ConfigError> {
        config.validate()?;
        Ok(Detector {
            config,
            index: FastMap::default(),
            series: Vec::new(),
            dirty: Vec::new(),
            group_index: FastMap::default(),
            groups: Vec::new(),
            dirty_groups: Vec::new(),
            signal_index: FastMap::default(),
            signal_sets: Vec::new(),
            dirty_ccs: BTreeSet::new(),
            countries: FastMap::default(),
            classified_upto: None,
            newest_measurement: None,
            outages: None,
            watermark: i64::MIN,
            clock: None,
            stats: Stats::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            series: self.series.len(),
            ..self.stats
        }
    }

    fn check_time(&mut self, time: i64) -> Result<(), Refused> {
        let lateness = self.config.lateness;
        let refused = if !(MIN_TIME..MAX_TIME).contains(&time) {
            Some(Refused::TimeOutOfRange(time))
        } else if time < self.watermark.saturating_sub(lateness) {
            Some(Refused::TooLate {
                time,
                watermark: self.watermark,
                lateness,
            })
        } else {
            match self.clock {
                Some(clock) if time > clock.saturating_add(lateness) => {
                    Some(Refused::FromTheFuture { time, clock, lateness })
                }
                _ => None,
            }
        };
        match refused {
            Some(r) => {
                if matches!(r, Refused::TooLate { .. }) {
                    self.stats.too_late += 1;
                } else {
                    self.stats.refused += 1;
                }
                Err(r)
            }
            None => {
                self.watermark = self.watermark.max(time);
                Ok(())
            }
        }
    }

    fn signal_set(&mut self, cc: Cc, asn: u32) -> usize {
        if let Some(&i) = self.signal_index.get(&(cc, asn)) {
            return i;
        }
        let i = self.signal_sets.len();
        self.signal_sets.push(SignalSet {
            cc,
            asn,
            series: SignalKind::ALL.map(SignalSeries::new),
            dirty: true,
            alerts: Vec::new(),
        });
        self.signal_index.insert((cc, asn), i);
        let country = self.countries.entry(cc).or_insert_with(|| Country {
            members: Vec::new(),
            signals: SignalKind::ALL.map(CountrySignal::new),
            alerts: Vec::new(),
        });
        let sets = &self.signal_sets;
        let at = country.members.partition_point(|&m| sets[m].asn < asn);
        country.members.insert(at, i);
        i
    }

    fn new_series(&mut self, key: SeriesKey) -> usize {
        let platform: Arc<str> = Arc::from(platform_of(&key.domain).as_ref());
        let idx = self.series.len();
        let group = match self.group_index.get(&(platform.clone(), key.cc)) {
            Some(&g) => g,
            None => {
                let g = self.groups.len();
                self.groups.push(GroupState {
                    members: Vec::new(),
                    dirty: false,
                    events: Vec::new(),
                });
                self.group_index.insert((platform.clone(), key.cc), g);
                g
            }
        };
        self.groups[group].members.push(idx);
        let signals = self.signal_set(key.cc, key.asn);
        self.index.insert(key.clone(), idx);
        self.series.push(SeriesState {
            key,
            platform,
            group,
            signals,
            bins: Bins::default(),
            vit: Viterbi::default(),
            dirty_from: usize::MAX,
            events: Vec::new(),
            decided: Vec::new(),
        });
        idx
    }

    /// Counts one observation. Refused (and then without effect) when older than the lateness
    /// window behind the newest time seen, ahead of the clock by more than it, or outside
    /// 2000–2099; any order inside the window is fine.
    pub fn observe(&mut self, obs: &Observation) -> Result<(), Refused> {
        self.check_time(obs.time)?;
        let key = SeriesKey::of(obs);
        let idx = match self.index.get(&key) {
            Some(&i) => i,
            None => self.new_series(key),
        };
        let b = self.config.bin_of(obs.time);
        let s = &mut self.series[idx];
        let was_clean = s.dirty_from == usize::MAX;
        let old_len = s.bins.len();
        let (bin, pos, prepended) = s.bins.slot(b);
        bin.add(obs);
        if prepended > 0 {
            s.vit.reset();
            s.dirty_from = 0;
        } else {
            s.dirty_from = s.dirty_from.min(pos.min(old_len));
        }
        if was_clean {
            self.dirty.push(idx);
        }
        let set = &mut self.signal_sets[s.signals];
        set.series[SignalKind::ProbeVolume.index()].add(b, 1.0);
        // A bin not yet complete is classified when the clock passes it, whatever it holds; only
        // a change to a classified bin needs this network's alerts redone now.
        set.dirty |= self.classified_upto.is_none_or(|h| b < h.upto(SignalKind::ProbeVolume));
        self.newest_measurement = Some(self.newest_measurement.map_or(obs.time, |t| t.max(obs.time)));
        self.stats.observations += 1;
        Ok(())
    }

    /// Records one signal sample (same time rules as [`Detector::observe`]; the value must be a
    /// finite, non-negative number).
    pub fn observe_signal(&mut self, sample: &SignalSample) -> Result<(), Refused> {
        if !(sample.value.is_finite() && sample.value >= 0.0) {
            self.stats.refused += 1;
            return Err(Refused::BadValue(sample.value));
        }
        self.check_time(sample.time)?;
        let i = self.signal_set(sample.cc, sample.asn);
        let b = self.config.bin_of(sample.time);
        let set = &mut self.signal_sets[i];
        set.series[sample.kind.index()].add(b, sample.value);
        set.dirty |= self.classified_upto.is_none_or(|h| b < h.upto(sample.kind));
        if sample.kind.is_count() {
            self.newest_measurement = Some(self.newest_measurement.map_or(sample.time, |t| t.max(sample.time)));
        }
        self.stats.signal_samples += 1;
        Ok(())
    }

    /// Brings every result up to date with the data seen and the clock `now` (Unix seconds):
    /// re-decodes the series that changed, re-groups their groups, and classifies the outage
    /// signals' complete bins: a level's bins that ended by `now`, a count's bins that ended
    /// [`crate::OutageConfig::volume_settle`] before both `now` and the newest measurement
    /// (after the data ends, a bin's volume is unknown, not zero).
    pub fn refresh(&mut self, now: i64) {
        let now = now.clamp(MIN_TIME, MAX_TIME);
        self.watermark = self.watermark.max(now);
        self.clock = Some(self.clock.map_or(now, |c| c.max(now)));
        let config = &self.config;
        let mut dirty = std::mem::take(&mut self.dirty);
        for idx in dirty.drain(..) {
            let s = &mut self.series[idx];
            let from = s.dirty_from;
            if from == usize::MAX {
                continue;
            }
            let SeriesState { vit, bins, .. } = &mut *s;
            let path_changed = vit.update(bins.len(), from, config.switch_cost, |i| {
                let b = &bins.bins[i];
                config.bin_llr(b.blocked, b.ok)
            });
            s.dirty_from = usize::MAX;
            // Events decided before the first change stay as they are; extraction resumes
            // after the last of them.
            let changed = from.min(path_changed);
            let keep = s.decided.iter().take_while(|&&d| d < changed).count();
            let resume = if keep == 0 { 0 } else { s.decided[keep - 1] + 1 };
            let fresh = extract(&s.bins, s.vit.states(), config, resume);
            let mut decided = s.decided[..keep].to_vec();
            decided.extend(fresh.iter().map(|raw| raw.decided_by.unwrap_or(usize::MAX)));
            let mut events = s.events[..keep].to_vec();
            events.extend(
                fresh
                    .into_iter()
                    .map(|raw| series_event(&s.key, &s.platform, s.bins.first, raw, config)),
            );
            s.decided = decided;
            if events != s.events {
                s.events = events;
                let g = &mut self.groups[s.group];
                if !g.dirty {
                    g.dirty = true;
                    self.dirty_groups.push(s.group);
                }
            }
        }
        self.dirty = dirty;
        for g in std::mem::take(&mut self.dirty_groups) {
            let members: Vec<SeriesEvent> = self.groups[g]
                .members
                .iter()
                .flat_map(|&m| self.series[m].events.iter().cloned())
                .collect();
            let group = &mut self.groups[g];
            group.events = group_events(&members, config);
            group.dirty = false;
        }
        self.refresh_signals(now);
    }

    fn refresh_signals(&mut self, now: i64) {
        let config = &self.config;
        let horizon = SignalHorizon::at(now, self.newest_measurement, config);
        let advanced = self.classified_upto != Some(horizon);
        self.classified_upto = Some(horizon);
        for set in &mut self.signal_sets {
            if !(set.dirty || advanced) {
                continue;
            }
            for s in &mut set.series {
                s.classify(horizon.upto(s.kind), config);
            }
            let judged: Vec<Judged<'_>> = set.series.iter().map(SignalSeries::judged).collect();
            let alerts: Vec<SignalAlert> = set
                .series
                .iter()
                .flat_map(|s| s.alerts(set.cc, Some(set.asn), config))
                .filter(|a| !contradicted(a, &judged, config.bin))
                .collect();
            set.dirty = false;
            if alerts != set.alerts {
                set.alerts = alerts;
                self.outages = None;
            }
            self.dirty_ccs.insert(set.cc);
        }
        for cc in std::mem::take(&mut self.dirty_ccs) {
            let Some(country) = self.countries.get_mut(&cc) else {
                continue;
            };
            let mut alerts: Vec<SignalAlert> = Vec::new();
            for kind in SignalKind::ALL {
                let k = kind.index();
                let mut changed = i64::MAX;
                for &m in &country.members {
                    changed = changed.min(self.signal_sets[m].series[k].take_changed());
                }
                // In network order (see CountrySignal::update).
                let parts: Vec<&SignalSeries> = country
                    .members
                    .iter()
                    .map(|&m| &self.signal_sets[m].series[k])
                    .collect();
                country.signals[k].update(&parts, changed, horizon.upto(kind), config);
            }
            let judged: Vec<Judged<'_>> = country.signals.iter().map(CountrySignal::judged).collect();
            for s in &country.signals {
                alerts.extend(
                    s.alerts(cc, config)
                        .into_iter()
                        .filter(|a| !contradicted(a, &judged, config.bin)),
                );
            }
            if alerts != country.alerts {
                country.alerts = alerts;
                self.outages = None;
            }
        }
    }

    /// Country-level blocking events, after [`Detector::refresh`] at `now`.
    pub fn events(&mut self, now: i64) -> Vec<Event> {
        self.refresh(now);
        let mut out: Vec<Event> = self.groups.iter().flat_map(|g| g.events.iter().cloned()).collect();
        out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Per-series blocking events, after [`Detector::refresh`] at `now`.
    pub fn series_events(&mut self, now: i64) -> Vec<SeriesEvent> {
        self.refresh(now);
        let mut out: Vec<SeriesEvent> = self.series.iter().flat_map(|s| s.events.iter().cloned()).collect();
        out.sort_by(|a, b| a.key.cmp(&b.key).then(a.start.cmp(&b.start)));
        out
    }

    /// Every signal alert (per network and per country), after [`Detector::refresh`] at `now`.
    pub fn signal_alerts(&mut self, now: i64) -> Vec<SignalAlert> {
        self.refresh(now);
        let mut out: Vec<SignalAlert> = self
            .signal_sets
            .iter()
            .flat_map(|s| s.alerts.iter().cloned())
            .chain(self.countries.values().flat_map(|c| c.alerts.iter().cloned()))
            .collect();
        out.sort_by_key(|a| (a.cc, a.asn, a.kind, a.start));
        out
    }

    /// Outages, after [`Detector::refresh`] at `now`.
    pub fn outages(&mut self, now: i64) -> Vec<Outage> {
        let alerts = self.signal_alerts(now);
        if let Some(o) = &self.outages {
            return o.clone();
        }
        let o = group_outages(&alerts, &self.config);
        self.outages = Some(o.clone());
        o
    }

    /// The bins of one series, from its first to its last bin with data.
    pub fn series_bins(&self, key: &SeriesKey) -> Vec<BinSummary> {
        let Some(&i) = self.index.get(key) else {
            return Vec::new();
        };
        let bins = &self.series[i].bins;
        summaries(bins.first, &bins.bins, &self.config)
    }

    /// The bins of `domain` in country `cc`, all networks summed.
    pub fn country_bins(&self, domain: &str, cc: Cc) -> Vec<BinSummary> {
        let members: Vec<&Bins> = self
            .series
            .iter()
            .filter(|s| s.key.cc == cc && s.key.domain.as_ref() == domain && s.bins.len() > 0)
            .map(|s| &s.bins)
            .collect();
        let Some(first) = members.iter().map(|b| b.first).min() else {
            return Vec::new();
        };
        let last = members.iter().map(|b| b.first + b.len() as i64).max().unwrap_or(first);
        let mut sum = vec![Bin::default(); (last - first) as usize];
        for m in members {
            for (i, bin) in m.bins.iter().enumerate() {
                sum[(m.first - first) as usize + i].merge(bin);
            }
        }
        summaries(first, &sum, &self.config)
    }
}

fn summaries(first: i64, bins: &[Bin], config: &Config) -> Vec<BinSummary> {
    bins.iter()
        .enumerate()
        .map(|(i, b)| b.summary((first + i as i64) * config.bin, config))
        .collect()
}

fn series_event(key: &SeriesKey, platform: &Arc<str>, first: i64, raw: RawEvent, config: &Config) -> SeriesEvent {
    let at = |pos: usize| (first + pos as i64) * config.bin;
    // Across unmeasured bins the change could be anywhere: take the middle (see crate::segment).
    let start = match raw.start_after_pos {
        Some(lo) if boundary(lo, raw.start_pos) != raw.start_pos => at(boundary(lo, raw.start_pos)),
        _ => raw.first.0,
    };
    SeriesEvent {
        key: key.clone(),
        platform: platform.clone(),
        start,
        end: raw.end_pos.map(|hi| at(boundary(raw.last_blocked_pos, hi))),
        start_after: raw.start_after_pos.map(at),
        last_blocked: at(raw.last_blocked_pos),
        end_by: raw.end_pos.map(at),
        pattern: if raw.runs >= config.min_cycles {
            Pattern::Intermittent
        } else {
            Pattern::Steady
        },
        cycles: raw.runs,
        method: dominant(&raw.methods),
        confidence: wilson(raw.blocked, raw.decisive, config.z).0,
        evidence: raw.evidence,
        measurements: raw.measurements,
        blocked: raw.blocked,
        decisive: raw.decisive,
        methods: method_list(&raw.methods),
        first_evidence: Evidence {
            time: raw.first.0,
            domain: key.domain.clone(),
            asn: key.asn,
            id: raw.first.1,
        },
    }
}

/// Runs the detector over a batch (no lateness limit) and returns everything it finds at `now`;
/// refused only when a setting is out of range.
pub fn detect(
    observations: &[Observation],
    signals: &[SignalSample],
    config: &Config,
    now: i64,
) -> Result<Report, ConfigError> {
    let mut d = Detector::new(Config {
        lateness: i64::MAX,
        ..config.clone()
    })?;
    for o in observations {
        // Cannot fail without a lateness limit.
        let _ = d.observe(o);
    }
    for s in signals {
        let _ = d.observe_signal(s);
    }
    let events = d.events(now);
    let series_events = d.series_events(now);
    let alerts = d.signal_alerts(now);
    let outages = d.outages(now);
    Ok(Report {
        events,
        series_events,
        outages,
        alerts,
        stats: d.stats(),
    })
}
