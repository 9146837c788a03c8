//! Time bins: measurements of one series counted by status and method, the blocked share with
//! its Wilson interval, and the per-bin reading (clearly blocked, clearly clear, uncertain,
//! empty) that charts show. The dense, re-sizable bin array of a series lives here too.

use crate::config::Config;
use crate::obs::Observation;
use crate::stats::wilson;
use censorwatch_model::verdict::{Method, Status};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What one bin's measurements say on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BinState {
    /// No decisive (`ok` or `blocked`) measurement.
    Empty,
    /// The blocked-share interval lies wholly below [`Config::share_clear`].
    Clear,
    /// The interval straddles the thresholds: too few measurements, or a mixed share.
    Uncertain,
    /// The blocked-share interval lies wholly above [`Config::share_blocked`].
    Blocked,
}

/// The counts of one bin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bin {
    /// `ok` verdicts.
    pub ok: u32,
    /// `blocked` verdicts.
    pub blocked: u32,
    /// `down` verdicts (the site itself was broken).
    pub down: u32,
    /// `inconclusive` verdicts.
    pub inconclusive: u32,
    /// Blocked verdicts per method, indexed like [`Method::ALL`]; allocated on the first one.
    methods: Option<Box<[u32]>>,
    /// The earliest blocked measurement: its time and id. Ties go to the smaller id, so the
    /// result does not depend on arrival order.
    first_blocked: Option<(i64, Option<Arc<str>>)>,
}

fn method_index(m: Method) -> usize {
    m as usize
}

impl Bin {
    /// Counts one observation.
    pub fn add(&mut self, obs: &Observation) {
        match obs.status {
            Status::Ok => self.ok += 1,
            Status::Down => self.down += 1,
            Status::Inconclusive => self.inconclusive += 1,
            Status::Blocked => {
                self.blocked += 1;
                if let Some(m) = obs.method {
                    let counts = self
                        .methods
                        .get_or_insert_with(|| vec![0; Method::ALL.len()].into_boxed_slice());
                    counts[method_index(m)] += 1;
                }
                let earlier = match &self.first_blocked {
                    None => true,
                    Some((t, id)) => (obs.time, &obs.id) < (*t, id),
                };
                if earlier {
                    self.first_blocked = Some((obs.time, obs.id.clone()));
                }
            }
        }
    }

    /// Adds another bin's counts (used for country-level bins).
    pub fn merge(&mut self, other: &Bin) {
        self.ok += other.ok;
        self.blocked += other.blocked;
        self.down += other.down;
        self.inconclusive += other.inconclusive;
        if let Some(theirs) = &other.methods {
            let mine = self
                .methods
                .get_or_insert_with(|| vec![0; Method::ALL.len()].into_boxed_slice());
            for (a, b) in mine.iter_mut().zip(theirs.iter()) {
                *a += b;
            }
        }
        if let Some(theirs) = &other.first_blocked {
            let earlier = match &self.first_blocked {
                None => true,
                Some(mine) => (theirs.0, &theirs.1) < (mine.0, &mine.1),
            };
            if earlier {
                self.first_blocked = Some(theirs.clone());
            }
        }
    }

    /// All measurements, whatever their status.
    pub fn total(&self) -> u32 {
        self.ok + self.blocked + self.down + self.inconclusive
    }

    /// `ok` plus `blocked`: the measurements that say something about blocking.
    pub fn decisive(&self) -> u32 {
        self.ok + self.blocked
    }

    /// Blocked verdicts with method `m`.
    pub fn method_count(&self, m: Method) -> u32 {
        self.methods.as_ref().map_or(0, |c| c[method_index(m)])
    }

    /// The earliest blocked measurement's time and id.
    pub fn first_blocked(&self) -> Option<(i64, Option<&Arc<str>>)> {
        self.first_blocked.as_ref().map(|(t, id)| (*t, id.as_ref()))
    }

    /// `blocked / (ok + blocked)`, or `None` without decisive measurements.
    pub fn blocked_share(&self) -> Option<f64> {
        let n = self.decisive();
        (n > 0).then(|| f64::from(self.blocked) / f64::from(n))
    }

    /// The Wilson interval of the blocked share.
    pub fn interval(&self, z: f64) -> (f64, f64) {
        wilson(u64::from(self.blocked), u64::from(self.decisive()), z)
    }

    /// The bin's own reading (see [`BinState`]).
    pub fn state(&self, config: &Config) -> BinState {
        if self.decisive() == 0 {
            return BinState::Empty;
        }
        let (lo, hi) = self.interval(config.z);
        if lo > config.share_blocked {
            BinState::Blocked
        } else if hi < config.share_clear {
            BinState::Clear
        } else {
            BinState::Uncertain
        }
    }

    /// The most frequent blocking method (ties to the earlier in [`Method::ALL`]).
    pub fn dominant_method(&self) -> Option<Method> {
        let counts = self.methods.as_ref()?;
        dominant(counts)
    }

    pub(crate) fn add_methods_to(&self, acc: &mut [u64]) {
        if let Some(c) = &self.methods {
            for (a, b) in acc.iter_mut().zip(c.iter()) {
                *a += u64::from(*b);
            }
        }
    }

    /// A readable summary starting at `start` (Unix seconds).
    pub fn summary(&self, start: i64, config: &Config) -> BinSummary {
        let decisive = self.decisive() > 0;
        BinSummary {
            start,
            ok: self.ok,
            blocked: self.blocked,
            down: self.down,
            inconclusive: self.inconclusive,
            blocked_share: self.blocked_share(),
            interval: decisive.then(|| self.interval(config.z)),
            state: self.state(config),
            method: self.dominant_method(),
        }
    }
}

pub(crate) fn dominant<T: Copy + Ord + Default>(counts: &[T]) -> Option<Method> {
    let mut best: Option<(usize, T)> = None;
    for (i, &c) in counts.iter().enumerate() {
        if c > T::default() && best.is_none_or(|(_, b)| c > b) {
            best = Some((i, c));
        }
    }
    best.map(|(i, _)| Method::ALL[i])
}

/// One bin, for display and export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinSummary {
    /// The bin's start, Unix seconds.
    pub start: i64,
    /// `ok` verdicts.
    pub ok: u32,
    /// `blocked` verdicts.
    pub blocked: u32,
    /// `down` verdicts.
    pub down: u32,
    /// `inconclusive` verdicts.
    pub inconclusive: u32,
    /// `blocked / (ok + blocked)`.
    pub blocked_share: Option<f64>,
    /// Wilson interval of the blocked share.
    pub interval: Option<(f64, f64)>,
    /// The bin's own reading.
    pub state: BinState,
    /// The most frequent blocking method.
    pub method: Option<Method>,
}

/// The bins of one series, dense from the first bin with data to the last.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bins {
    /// Index (time / width) of `bins[0]`.
    pub(crate) first: i64,
    pub(crate) bins: Vec<Bin>,
}

impl Bins {
    /// The bin for index `b`, growing the array either way; returns it and its position after
    /// growth, and how many bins were inserted at the front.
    pub(crate) fn slot(&mut self, b: i64) -> (&mut Bin, usize, usize) {
        if self.bins.is_empty() {
            self.first = b;
            self.bins.push(Bin::default());
            return (&mut self.bins[0], 0, 0);
        }
        let mut prepended = 0;
        if b < self.first {
            prepended = (self.first - b) as usize;
            self.bins
                .splice(0..0, std::iter::repeat_with(Bin::default).take(prepended));
            self.first = b;
        }
        let pos = (b - self.first) as usize;
        if pos >= self.bins.len() {
            self.bins.resize_with(pos + 1, Bin::default);
        }
        (&mut self.bins[pos], pos, prepended)
    }

    pub(crate) fn len(&self) -> usize {
        self.bins.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::Cc;

    fn obs(time: i64, status: Status, method: Option<Method>, id: &str) -> Observation {
        Observation {
            time,
            domain: Arc::from("x.com"),
            cc: Cc::new("pk").unwrap(),
            asn: 1,
            status,
            method,
            id: Some(Arc::from(id)),
        }
    }

    #[test]
    fn counts_and_first_blocked_do_not_depend_on_order() {
        let all = [
            obs(50, Status::Blocked, Some(Method::TlsReset), "b"),
            obs(10, Status::Ok, None, "a"),
            obs(20, Status::Blocked, Some(Method::DnsNxdomain), "d"),
            obs(20, Status::Blocked, Some(Method::TlsReset), "c"),
            obs(30, Status::Down, None, "e"),
            obs(40, Status::Inconclusive, None, "f"),
        ];
        let mut forward = Bin::default();
        all.iter().for_each(|o| forward.add(o));
        let mut backward = Bin::default();
        all.iter().rev().for_each(|o| backward.add(o));
        assert_eq!(forward, backward);
        assert_eq!(
            (forward.ok, forward.blocked, forward.down, forward.inconclusive),
            (1, 3, 1, 1)
        );
        assert_eq!(forward.total(), 6);
        assert_eq!(forward.decisive(), 4);
        assert_eq!(forward.method_count(Method::TlsReset), 2);
        assert_eq!(forward.dominant_method(), Some(Method::TlsReset));
        let (t, id) = forward.first_blocked().unwrap();
        assert_eq!((t, id.map(|s| s.as_ref())), (20, Some("c")));
        assert_eq!(forward.blocked_share(), Some(0.75));
        let mut merged = Bin::default();
        merged.merge(&forward);
        merged.merge(&backward);
        assert_eq!(merged.blocked, 6);
        assert_eq!(merged.method_count(Method::DnsNxdomain), 2);
    }

    #[test]
    fn state_needs_enough_measurements() {
        let c = Config::default();
        let mut b = Bin::default();
        assert_eq!(b.state(&c), BinState::Empty);
        b.add(&obs(0, Status::Blocked, None, "x"));
        // One blocked measurement: the interval is too wide to say.
        assert_eq!(b.state(&c), BinState::Uncertain);
        for i in 0..9 {
            b.add(&obs(i, Status::Blocked, None, "x"));
        }
        assert_eq!(b.state(&c), BinState::Blocked);
        let mut clear = Bin::default();
        for i in 0..30 {
            clear.add(&obs(i, Status::Ok, None, "x"));
        }
        assert_eq!(clear.state(&c), BinState::Clear);
        let s = clear.summary(3600, &c);
        assert_eq!(s.start, 3600);
        assert_eq!(s.blocked_share, Some(0.0));
        assert!(s.interval.unwrap().1 < 0.2);
    }

    #[test]
    fn dense_bins_grow_both_ways() {
        let mut bins = Bins::default();
        let (_, pos, pre) = bins.slot(10);
        assert_eq!((pos, pre, bins.first), (0, 0, 10));
        let (_, pos, pre) = bins.slot(13);
        assert_eq!((pos, pre, bins.len()), (3, 0, 4));
        let (b, pos, pre) = bins.slot(7);
        b.ok += 1;
        assert_eq!((pos, pre, bins.first, bins.len()), (0, 3, 7, 7));
        assert_eq!(bins.bins[0].ok, 1);
    }
}
