//! Detection settings: the bin width, the evidence model behind blocking events, the
//! hysteresis that opens and closes them, and the IODA-style outage thresholds. Every number has
//! a default that the simulator (`sim`, `eval`) checks against ground truth.

use crate::obs::SignalKind;
use serde::Serialize;

/// One hour, in seconds.
pub const HOUR: i64 = 3600;
/// One day, in seconds.
pub const DAY: i64 = 86_400;
/// The narrowest bin allowed (5 minutes).
pub const MIN_BIN: i64 = 300;
/// The widest bin allowed (1 day).
pub const MAX_BIN: i64 = DAY;

/// A setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The bin width is outside 5 minutes to 1 day.
    #[error("bin width {0} s is outside 5 minutes to 1 day (300 to 86400 s)")]
    BinWidth(i64),
    /// A duration that does not parse, e.g. `"1x"`.
    #[error("cannot read {0:?} as a duration; write a number and a unit, e.g. 5m, 1h, 1d")]
    Duration(String),
    /// Another setting is out of range.
    #[error("{0}")]
    Invalid(&'static str),
}

/// How one outage signal is compared with its own past: the value of a bin against the median
/// of up to `window` of earlier bins that were not themselves alerts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalRule {
    /// How far back the median looks, seconds.
    pub window: i64,
    /// A bin below `warning` × median is a warning.
    pub warning: f64,
    /// A bin below `critical` × median is critical.
    pub critical: f64,
    /// Without at least this much usable history (seconds of non-alert bins) there is no
    /// baseline and so no alert.
    pub min_history: i64,
}

/// The outage settings. Thresholds follow IODA's detection criteria (IODA help page,
/// "Outage Detection", ioda.inetintel.cc.gatech.edu/help): BGP below 99% (warning) or 50%
/// (critical) of its 24-hour median; active probing below 80% or 50% of its 7-day median. Probe
/// volume, which IODA does not have, is treated like active probing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutageConfig {
    /// BGP-visible /24s.
    pub bgp: SignalRule,
    /// Measurements taken by the network's probes.
    pub probe_volume: SignalRule,
    /// Addresses answering the control servers' probes.
    pub control: SignalRule,
    /// Probe volume is a count, noisy when small: a drop alerts only when a count this low has at
    /// most this probability under a Poisson law with the baseline as mean.
    pub volume_alpha: f64,
    /// Probe volume alerts only when the baseline is at least this many measurements per bin.
    pub min_volume_baseline: f64,
    /// A sparse network that falls silent: a run of k empty bins opens an outage (from its first
    /// bin) once p0^k is at most this, where p0 is the chance of one empty bin in the network's
    /// recent past, the larger of e^-λ (Poisson, λ the mean of its baseline window) and the share of empty bins in
    /// the baseline window (Laplace-smoothed). The per-bin test cannot see a shutdown of a
    /// network with 3 measurements an hour; this one needs 7 silent hours at λ = 3 and 21 at
    /// λ = 1. It is far smaller than `volume_alpha` because every network is tested every bin
    /// for years: at 1e-9 an hourly network's noise opens a false outage once in ~100 000 years.
    pub silence_alpha: f64,
    /// A count bin (probe volume) is judged only when both the newest measurement seen and the
    /// clock are at least this far past its end. Bins after the data ends are unknown, not
    /// empty: without this, the end of a dataset (or a pause in ingestion) reads as every
    /// network falling silent; and measurements reach the store a little late.
    pub volume_settle: i64,
    /// Alert bins separated by at most this many seconds of normal bins are one alert.
    pub merge_gap: i64,
    /// Baseline values older than this many windows are not used.
    pub max_baseline_age: i64,
}

impl OutageConfig {
    /// The rule for one signal.
    pub fn rule(&self, kind: SignalKind) -> &SignalRule {
        match kind {
            SignalKind::Bgp => &self.bgp,
            SignalKind::ProbeVolume => &self.probe_volume,
            SignalKind::ControlReachability => &self.control,
        }
    }
}

impl Default for OutageConfig {
    fn default() -> OutageConfig {
        OutageConfig {
            bgp: SignalRule {
                window: DAY,
                warning: 0.99,
                critical: 0.5,
                min_history: 6 * HOUR,
            },
            probe_volume: SignalRule {
                window: 7 * DAY,
                warning: 0.8,
                critical: 0.5,
                min_history: DAY,
            },
            control: SignalRule {
                window: 7 * DAY,
                warning: 0.8,
                critical: 0.5,
                min_history: DAY,
            },
            volume_alpha: 1e-5,
            min_volume_baseline: 5.0,
            silence_alpha: 1e-9,
            volume_settle: HOUR / 2,
            merge_gap: HOUR,
            max_baseline_age: 4,
        }
    }
}

/// All detection settings.
///
/// Blocking evidence: each decisive measurement (`ok` or `blocked`) adds the log-likelihood
/// ratio of "this network blocks the domain" against "it does not", where a blocking network
/// shows `blocked` with probability [`Config::blocked_rate`] and a clean one with
/// [`Config::clear_rate`] (flaky networks, bad probes, mis-judged measurements).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Bin width, seconds (300 to 86400).
    pub bin: i64,
    /// How late an observation may arrive, seconds behind the newest time seen (or `now`).
    /// Later ones are refused, so that old decisions eventually hold.
    pub lateness: i64,
    /// Assumed share of `blocked` verdicts on a network that does not block.
    pub clear_rate: f64,
    /// Assumed share of `blocked` verdicts on a network that blocks.
    pub blocked_rate: f64,
    /// Cost, in log-likelihood units, of switching between blocked and clear: the hysteresis
    /// that keeps one stray measurement from flipping the state.
    pub switch_cost: f64,
    /// An event is reported once its blocked runs hold this much evidence (log-likelihood
    /// ratio; 20 is odds of about 5 × 10^8 to 1). The model counts measurements as independent,
    /// but failures on a clean network cluster (a flaky hour or two), so the bar is set well
    /// above what independent errors would need: two bad hours in a row must not open an event.
    pub open_evidence: f64,
    /// The most evidence one bin may contribute, per hour of bin width (in proportion to the
    /// width, so that an hour holds the same evidence whatever the bins), so that a single burst
    /// of failures cannot open an event alone.
    pub bin_evidence_cap: f64,
    /// An event closes only after this long of clear bins with data (gaps do not count); blocked
    /// runs separated by less are one event, with on/off cycles. 12 h, so that a block in
    /// 6 h on / 6 h off cycles (the lab's pk-2024 replay of Jazz, February 2024) is one
    /// intermittent event: with 6 h, each 6 h run of hourly measurements stood alone and none
    /// held [`Config::open_evidence`], so the block went unreported.
    pub close_after: i64,
    /// An event with at least this many blocked runs is `intermittent`.
    pub min_cycles: u32,
    /// Per-network events of one platform and country that overlap or are this close (seconds)
    /// are one country-level event.
    pub group_gap: i64,
    /// Normal quantile for the Wilson intervals shown on bins and events.
    pub z: f64,
    /// A bin whose blocked-share interval lies wholly below this is clearly clear.
    pub share_clear: f64,
    /// A bin whose blocked-share interval lies wholly above this is clearly blocked.
    pub share_blocked: f64,
    /// Outage settings.
    pub outage: OutageConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bin: HOUR,
            lateness: 2 * DAY,
            clear_rate: 0.15,
            blocked_rate: 0.75,
            switch_cost: 3.0,
            open_evidence: 20.0,
            bin_evidence_cap: 10.0,
            close_after: 12 * HOUR,
            min_cycles: 3,
            group_gap: 6 * HOUR,
            z: crate::stats::Z95,
            share_clear: 0.2,
            share_blocked: 0.5,
            outage: OutageConfig::default(),
        }
    }
}

impl Config {
    /// The defaults with another bin width.
    pub fn with_bin(bin: i64) -> Result<Config, ConfigError> {
        let config = Config {
            bin,
            ..Config::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_BIN..=MAX_BIN).contains(&self.bin) {
            return Err(ConfigError::BinWidth(self.bin));
        }
        let rate = |r: f64| r > 0.0 && r < 1.0;
        if !rate(self.clear_rate) || !rate(self.blocked_rate) || self.clear_rate >= self.blocked_rate {
            return Err(ConfigError::Invalid("need 0 < clear_rate < blocked_rate < 1"));
        }
        if !(self.switch_cost >= 0.0 && self.open_evidence > 0.0 && self.bin_evidence_cap > 0.0) {
            return Err(ConfigError::Invalid(
                "switch_cost must be >= 0, open_evidence and bin_evidence_cap > 0",
            ));
        }
        if self.lateness < 0 || self.close_after < 0 || self.group_gap < 0 || self.min_cycles < 2 {
            return Err(ConfigError::Invalid(
                "lateness, close_after, group_gap must be >= 0 and min_cycles >= 2",
            ));
        }
        let share = |s: f64| (0.0..=1.0).contains(&s);
        if !(share(self.share_clear) && share(self.share_blocked) && self.share_clear < self.share_blocked) {
            return Err(ConfigError::Invalid("need 0 <= share_clear < share_blocked <= 1"));
        }
        if !(self.z.is_finite() && self.z > 0.0) {
            return Err(ConfigError::Invalid("z must be a positive number"));
        }
        for kind in SignalKind::ALL {
            let r = self.outage.rule(kind);
            if !(r.window > 0 && r.critical > 0.0 && r.critical <= r.warning && r.min_history >= 0) {
                return Err(ConfigError::Invalid(
                    "each outage rule needs window > 0 and 0 < critical <= warning",
                ));
            }
        }
        let o = &self.outage;
        if !(o.volume_alpha > 0.0 && o.volume_alpha <= 1.0 && o.min_volume_baseline >= 0.0) {
            return Err(ConfigError::Invalid(
                "need 0 < volume_alpha <= 1 and min_volume_baseline >= 0",
            ));
        }
        if !(o.silence_alpha > 0.0 && o.silence_alpha < 1.0) || o.volume_settle < 0 {
            return Err(ConfigError::Invalid(
                "need 0 < silence_alpha < 1 and volume_settle >= 0",
            ));
        }
        if o.merge_gap < 0 || o.max_baseline_age < 1 {
            return Err(ConfigError::Invalid("need merge_gap >= 0 and max_baseline_age >= 1"));
        }
        Ok(())
    }

    /// Evidence added by one `blocked` verdict: ln(blocked_rate / clear_rate).
    pub fn blocked_llr(&self) -> f64 {
        (self.blocked_rate / self.clear_rate).ln()
    }

    /// Evidence added by one `ok` verdict (negative): ln((1 − blocked_rate) / (1 − clear_rate)).
    pub fn ok_llr(&self) -> f64 {
        ((1.0 - self.blocked_rate) / (1.0 - self.clear_rate)).ln()
    }

    /// The most evidence one bin may carry, either way.
    pub fn bin_cap(&self) -> f64 {
        self.bin_evidence_cap * (self.bin as f64 / HOUR as f64)
    }

    /// The evidence of a bin with `blocked` and `ok` verdicts, capped.
    pub fn bin_llr(&self, blocked: u32, ok: u32) -> f64 {
        let cap = self.bin_cap();
        (f64::from(blocked) * self.blocked_llr() + f64::from(ok) * self.ok_llr()).clamp(-cap, cap)
    }

    /// [`Config::close_after`] in bins (at least one).
    pub fn close_bins(&self) -> usize {
        (((self.close_after + self.bin - 1) / self.bin).max(1)) as usize
    }

    /// The bin holding time `t`.
    pub fn bin_of(&self, t: i64) -> i64 {
        t.div_euclid(self.bin)
    }
}

/// Reads a duration such as `"90s"`, `"5m"`, `"1h"`, `"1d"` or `"1h30m"` into seconds.
pub fn parse_duration(text: &str) -> Result<i64, ConfigError> {
    let bad = || ConfigError::Duration(text.to_owned());
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut parts = 0;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => HOUR,
            'd' => DAY,
            _ => return Err(bad()),
        };
        let n: i64 = number.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        number.clear();
        parts += 1;
    }
    if !number.is_empty() || parts == 0 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration(" 1d "), Ok(DAY));
        for bad in ["", "5", "h", "1x", "-1h", "99999999999999999999d"] {
            assert!(matches!(parse_duration(bad), Err(ConfigError::Duration(_))), "{bad:?}");
        }
    }

    #[test]
    fn bin_width_limits() {
        assert!(Config::with_bin(MIN_BIN).is_ok());
        assert!(Config::with_bin(MAX_BIN).is_ok());
        assert_eq!(Config::with_bin(MIN_BIN - 1), Err(ConfigError::BinWidth(MIN_BIN - 1)));
        assert_eq!(Config::with_bin(MAX_BIN + 1), Err(ConfigError::BinWidth(MAX_BIN + 1)));
    }

    #[test]
    fn validation_catches_each_bad_setting() {
        let d = Config::default();
        assert_eq!(d.validate(), Ok(()));
        let bad = [
            Config {
                clear_rate: 0.8,
                ..d.clone()
            },
            Config {
                blocked_rate: 1.0,
                ..d.clone()
            },
            Config {
                switch_cost: f64::NAN,
                ..d.clone()
            },
            Config {
                open_evidence: 0.0,
                ..d.clone()
            },
            Config {
                min_cycles: 1,
                ..d.clone()
            },
            Config {
                lateness: -1,
                ..d.clone()
            },
            Config {
                share_clear: 0.6,
                ..d.clone()
            },
            Config { z: 0.0, ..d.clone() },
        ];
        for c in bad {
            assert!(matches!(c.validate(), Err(ConfigError::Invalid(_))), "{c:?}");
        }
        let mut c = d.clone();
        c.outage.bgp.critical = 1.5;
        assert!(c.validate().is_err());
        let mut c = d.clone();
        c.outage.volume_alpha = 0.0;
        assert!(c.validate().is_err());
        let mut c = d.clone();
        c.outage.silence_alpha = 1.0;
        assert!(c.validate().is_err());
        let mut c = d;
        c.outage.volume_settle = -1;
        assert!(c.validate().is_err());
    }

    #[test]
    fn evidence_per_bin() {
        let c = Config::default();
        // ln(0.75 / 0.15) = ln 5 per blocked verdict, ln(0.25 / 0.85) per ok verdict.
        assert!((c.blocked_llr() - 5f64.ln()).abs() < 1e-12);
        assert!((c.ok_llr() - (0.25f64 / 0.85).ln()).abs() < 1e-12);
        assert!((c.bin_llr(1, 0) - 5f64.ln()).abs() < 1e-12);
        assert!(c.bin_llr(2, 2) > 0.0);
        // Capped both ways, in proportion to the bin width.
        assert_eq!(c.bin_llr(1000, 0), 10.0);
        assert_eq!(c.bin_llr(0, 1000), -10.0);
        let half = Config::with_bin(1800).unwrap();
        assert_eq!(half.bin_llr(1000, 0), 5.0);
        assert_eq!(c.close_bins(), 12);
        assert_eq!(c.bin_of(-1), -1);
        assert_eq!(c.bin_of(3599), 0);
    }
}
