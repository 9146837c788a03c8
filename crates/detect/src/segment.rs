//! Change detection on one series: from per-bin evidence to blocked runs, and from runs to
//! events.
//!
//! Each bin's evidence is the log-likelihood ratio (LLR) of its decisive verdicts under "this
//! network blocks" versus "it does not" ([`Config::bin_llr`]); an empty bin scores 0, so gaps
//! neither open nor close anything. The most likely blocked/clear sequence, where each switch
//! costs [`Config::switch_cost`] (the hysteresis), is found with the Viterbi algorithm. Unlike a
//! CUSUM alarm, which fires some measurements after a change, the best sequence puts each switch
//! where the evidence turns, so an event's start is back-dated to its first blocked bin without
//! a separate search. Ties (across empty bins) resolve to the latest switch.
//!
//! Where a change falls between two measured bins with unmeasured ones in between, the data
//! cannot say which of them it happened in; the event's start (or end) is put in the middle of
//! them ([`boundary`]), which halves the worst error against taking either side, and the bins
//! that bound it are kept so that a network's domains can narrow it together
//! ([`crate::group`]).
//!
//! Runs separated by fewer than [`Config::close_bins`] clear bins with data are one event, and
//! its runs are its on/off cycles; an event is reported once its runs hold
//! [`Config::open_evidence`], and it is closed once that many clear bins with data follow it.
//!
//! The decoder is incremental: scores are kept per bin and recomputed only from the earliest bin
//! that changed, and the traceback stops where it rejoins the previous path.

use crate::bins::Bins;
use crate::config::Config;
use std::sync::Arc;

const CLEAR: u8 = 0;
const BLOCKED: u8 = 1;

/// The decoder's state for one series.
#[derive(Debug, Clone, Default)]
pub(crate) struct Viterbi {
    /// Best path score ending in (clear, blocked) at each bin.
    score: Vec<[f64; 2]>,
    /// For each bin and state, the state at the previous bin on the best path.
    pred: Vec<[u8; 2]>,
    /// The decoded path (`BLOCKED` or `CLEAR` per bin).
    states: Vec<u8>,
}

impl Viterbi {
    /// Forgets everything (after bins were inserted at the front).
    pub(crate) fn reset(&mut self) {
        self.score.clear();
        self.pred.clear();
    }

    /// Re-decodes `n` bins whose evidence is `llr(i)`, given that bins before `from` did not
    /// change since the last call. Returns the lowest position whose state it rewrote (`n` when
    /// none): the path before it is unchanged.
    pub(crate) fn update(&mut self, n: usize, from: usize, cost: f64, llr: impl Fn(usize) -> f64) -> usize {
        let from = from.min(self.score.len());
        let decoded = self.states.len();
        self.score.truncate(from);
        self.pred.truncate(from);
        for i in from..n {
            let e = llr(i);
            if i == 0 {
                // A series starts clear; starting blocked costs one switch.
                self.score.push([0.0, e - cost]);
                self.pred.push([CLEAR, CLEAR]);
                continue;
            }
            let [c, b] = self.score[i - 1];
            // On ties prefer the switch: across empty bins this moves it as late as possible.
            let (sc, pc) = if b - cost >= c { (b - cost, BLOCKED) } else { (c, CLEAR) };
            let (sb, pb) = if c - cost >= b { (c - cost, CLEAR) } else { (b, BLOCKED) };
            self.score.push([sc, sb + e]);
            self.pred.push([pc, pb]);
        }
        self.states.resize(n, CLEAR);
        if n == 0 {
            return 0;
        }
        let mut lowest = n;
        let last = self.score[n - 1];
        let mut s = if last[1] > last[0] { BLOCKED } else { CLEAR };
        let mut i = n - 1;
        loop {
            // Before `from` the back-pointers are unchanged: once the new path meets the old
            // one there, the rest of it is the old one.
            if i < from && i < decoded && self.states[i] == s {
                break;
            }
            self.states[i] = s;
            lowest = i;
            if i == 0 {
                break;
            }
            s = self.pred[i][s as usize];
            i -= 1;
        }
        lowest
    }

    pub(crate) fn states(&self) -> &[u8] {
        &self.states
    }
}

/// The most likely blocked (`true`) / clear sequence for per-bin evidence `llr` with switch
/// cost `cost`. The batch form of what the detector does incrementally.
pub fn segment(llr: &[f64], cost: f64) -> Vec<bool> {
    let mut v = Viterbi::default();
    let _ = v.update(llr.len(), 0, cost, |i| llr[i]);
    v.states.iter().map(|&s| s == BLOCKED).collect()
}

/// An event found in one series, in bin positions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawEvent {
    /// First bin with a blocked verdict.
    pub(crate) start_pos: usize,
    /// The earliest blocked measurement: time and id.
    pub(crate) first: (i64, Option<Arc<str>>),
    /// The last bin with decisive data before `start_pos`: the block began after it.
    pub(crate) start_after_pos: Option<usize>,
    /// The first bin with clear data after the event, once closed: the block ended by then.
    pub(crate) end_pos: Option<usize>,
    /// The last bin with a blocked verdict.
    pub(crate) last_blocked_pos: usize,
    /// Once closed, the bin whose data closed it (the last of the clear bins needed): nothing
    /// from the next bin on can change this event.
    pub(crate) decided_by: Option<usize>,
    /// Blocked runs (on-periods).
    pub(crate) runs: u32,
    /// Summed evidence of the runs.
    pub(crate) evidence: f64,
    /// Blocked and decisive verdicts inside the runs.
    pub(crate) blocked: u64,
    pub(crate) decisive: u64,
    /// All measurements from start to end.
    pub(crate) measurements: u64,
    /// Blocked verdicts per method inside the runs.
    pub(crate) methods: Vec<u64>,
}

/// Where a change between bin positions `lo` (last bin with data in the old state) and `hi`
/// (first bin with data in the new one) is put: the middle of the bins it could be in, the later
/// of two (so `hi` itself when they are adjacent).
pub(crate) fn boundary<T>(lo: T, hi: T) -> T
where
    T: Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T> + std::ops::Div<Output = T> + From<u8>,
{
    lo + (hi - lo + T::from(1)) / T::from(2)
}

/// Turns a decoded series into events (see the module doc), looking only at runs that start at
/// or after position `from`, which must be a clear bin or the bin after one that decided an
/// event (see [`RawEvent::decided_by`]): what lies before it was extracted already.
pub(crate) fn extract(bins: &Bins, states: &[u8], config: &Config, from: usize) -> Vec<RawEvent> {
    let n = bins.len().min(states.len());
    // Blocked runs [a, b).
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = from;
    while i < n {
        if states[i] == BLOCKED {
            let a = i;
            while i < n && states[i] == BLOCKED {
                i += 1;
            }
            runs.push((a, i));
        } else {
            i += 1;
        }
    }
    let k = config.close_bins();
    let clear_with_data = |a: usize, b: usize| bins.bins[a..b].iter().filter(|bin| bin.decisive() > 0).count();
    let mut events = Vec::new();
    let mut g = 0;
    while g < runs.len() {
        // Runs g..h form one event.
        let mut h = g + 1;
        while h < runs.len() && clear_with_data(runs[h - 1].1, runs[h].0) < k {
            h += 1;
        }
        let group = &runs[g..h];
        g = h;
        let mut evidence = 0.0;
        let (mut blocked, mut decisive) = (0u64, 0u64);
        let mut methods = vec![0u64; censorwatch_model::verdict::Method::ALL.len()];
        for &(a, b) in group {
            for bin in &bins.bins[a..b] {
                evidence += config.bin_llr(bin.blocked, bin.ok);
                blocked += u64::from(bin.blocked);
                decisive += u64::from(bin.decisive());
                bin.add_methods_to(&mut methods);
            }
        }
        if evidence < config.open_evidence || blocked == 0 {
            continue;
        }
        let (a0, _) = group[0];
        let last = group[group.len() - 1].1;
        let Some(start_pos) = (a0..last).find(|&p| bins.bins[p].blocked > 0) else {
            continue;
        };
        let first = bins.bins[start_pos]
            .first_blocked()
            .map(|(t, id)| (t, id.cloned()))
            .unwrap_or(((bins.first + start_pos as i64) * config.bin, None));
        let last_blocked_pos = (start_pos..last)
            .rev()
            .find(|&p| bins.bins[p].blocked > 0)
            .unwrap_or(start_pos);
        let start_after_pos = (0..start_pos).rev().find(|&p| bins.bins[p].decisive() > 0);
        let mut with_data = (last..n).filter(|&p| bins.bins[p].decisive() > 0);
        let end_pos = with_data.next();
        let decided_by = if k > 1 { with_data.nth(k - 2) } else { end_pos };
        let end_pos = decided_by.and(end_pos);
        let span_end = end_pos.unwrap_or(n);
        let measurements = bins.bins[start_pos..span_end]
            .iter()
            .map(|b| u64::from(b.total()))
            .sum();
        events.push(RawEvent {
            start_pos,
            first,
            end_pos,
            start_after_pos,
            last_blocked_pos,
            decided_by,
            runs: group.len() as u32,
            evidence,
            blocked,
            decisive,
            measurements,
            methods,
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bins::Bin;

    #[test]
    fn hysteresis_ignores_a_stray_bin_and_follows_a_run() {
        let cost = 3.0;
        // One mildly blocked bin among clear ones stays clear.
        assert!(segment(&[-2.0, -2.0, 1.5, -2.0, -2.0], cost).iter().all(|b| !b));
        // A run of blocked bins is blocked, from its first bin to its last.
        let s = segment(&[-2.0, -2.0, 4.0, 4.0, 4.0, -2.0, -2.0], cost);
        assert_eq!(s, [false, false, true, true, true, false, false]);
        // Empty bins (0) between blocked ones keep the state.
        let s = segment(&[-2.0, 5.0, 0.0, 0.0, 5.0, -4.0], cost);
        assert_eq!(s, [false, true, true, true, true, false]);
        // A last clear bin weaker than the switch cost does not close it yet.
        let s = segment(&[-2.0, 5.0, 5.0, -2.0], cost);
        assert_eq!(s, [false, true, true, true]);
        assert!(segment(&[], cost).is_empty());
    }

    #[test]
    fn incremental_update_equals_a_full_decode() {
        let llr: Vec<f64> = (0..200)
            .map(|i| [(-1.5), 2.5, 0.0, -0.5, 3.0][(i * 7 + i / 13) % 5])
            .collect();
        let full = segment(&llr, 2.0);
        let mut v = Viterbi::default();
        for n in (10..=200).step_by(10) {
            let _ = v.update(n, n - 10, 2.0, |i| llr[i]);
        }
        let incremental: Vec<bool> = v.states().iter().map(|&s| s == BLOCKED).collect();
        assert_eq!(incremental, full);
    }

    #[test]
    fn boundary_is_the_middle_and_the_later_of_two() {
        assert_eq!(boundary(4usize, 5), 5);
        assert_eq!(boundary(4usize, 6), 5);
        assert_eq!(boundary(4i64, 7), 6);
        assert_eq!(boundary(4i64, 8), 6);
    }

    fn bins_of(pattern: &str) -> Bins {
        // 'b' = 5 blocked, 'o' = 5 ok, 'B' = 1 blocked, 'O' = 1 ok, '.' = empty.
        let bins = pattern
            .chars()
            .map(|c| {
                let mut b = Bin::default();
                match c {
                    'b' => b.blocked = 5,
                    'o' => b.ok = 5,
                    'B' => b.blocked = 1,
                    'O' => b.ok = 1,
                    _ => {}
                }
                b
            })
            .collect();
        Bins { first: 0, bins }
    }

    fn events_of(pattern: &str, config: &Config) -> Vec<RawEvent> {
        let bins = bins_of(pattern);
        let mut v = Viterbi::default();
        let _ = v.update(bins.len(), 0, config.switch_cost, |i| {
            config.bin_llr(bins.bins[i].blocked, bins.bins[i].ok)
        });
        extract(&bins, v.states(), config, 0)
    }

    #[test]
    fn events_open_close_and_count_cycles() {
        let c = Config {
            close_after: 6 * crate::config::HOUR,
            ..Config::default()
        };
        // Closed after six clear bins with data; gaps do not count towards closing.
        let e = events_of("oooobbbbbboo..oooooo", &c);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].start_pos, e[0].end_pos, e[0].runs), (4, Some(10), 1));
        assert_eq!(e[0].start_after_pos, Some(3));
        assert_eq!(e[0].last_blocked_pos, 9);
        // Still open: fewer than six clear bins after it.
        let e = events_of("oooobbbbbbooo", &c);
        assert_eq!(e[0].end_pos, None);
        // Short clear spells inside: one event, three on-periods.
        let e = events_of("ooobbbooobbbooobbbooooooo", &c);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].runs, 3);
        // Too little evidence: nothing.
        assert!(events_of("oooooboooooo", &c).is_empty());
    }

    #[test]
    fn six_hours_on_six_off_with_one_measurement_an_hour_is_one_event() {
        // Jazz in the lab's pk-2024 replay: one measurement of the domain an hour, blocked in
        // 6 h on / 6 h off cycles. Each run alone holds 6 ln 5 ≈ 9.7 of evidence, under the 20
        // needed to open; the three together hold 29 once the 6 h off-spells do not close it.
        let pattern = format!(
            "{}{}",
            "O".repeat(42),
            ["BBBBBB", "OOOOOO", "BBBBBB", "OOOOOO", "BBBBBB"].concat()
        );
        let e = events_of(&pattern, &Config::default());
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].start_pos, e[0].runs, e[0].end_pos), (42, 3, None));
        let six_hours = Config {
            close_after: 6 * crate::config::HOUR,
            ..Config::default()
        };
        assert!(
            events_of(&pattern, &six_hours).is_empty(),
            "the gap this default closes"
        );
    }
}
