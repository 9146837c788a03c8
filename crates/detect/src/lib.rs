//! censorwatch's detection: from judged measurements to **blocking events** ("x.com is blocked
//! on these networks of this country since then, by this method, steadily or in cycles") and
//! from network signals to **outages** (IODA-style shutdown alerts). It is pure computation over
//! values the caller hands in ([`Observation`], [`SignalSample`]) and refuses everything else:
//! no storage, no files, no network, no clock (the caller passes `now`), no printing. Whoever
//! reads measurements from a store or a file feeds them here.
//!
//! # Layout
//! - [`obs`]: the inputs. [`bins`]: per-series time bins with Wilson intervals.
//! - [`segment`]: change detection on one series (per-bin log-likelihood ratios decoded with a
//!   two-state Viterbi: hysteresis, back-dated starts, gaps and sparse data, on/off cycles).
//! - [`group`]: per-series events to one country-level [`Event`] per block of a
//!   [`platform`], with each network's own start and end.
//! - [`outage`]: per-network and per-country signal alerts against trailing medians;
//!   [`levels`]: level signals recorded as change points, turned into per-bin readings.
//! - [`detector`]: the incremental [`Detector`] (late data, re-computation from the earliest
//!   changed bin) and the batch [`detect`].
//! - [`sim`] and [`eval`]: a seeded generator of measurement timelines with known events, and
//!   the scoring of the detector against it (`censorwatch simulate --eval`).
//! - [`config`], [`stats`]: settings and the small statistics everything uses.

pub mod bins;
pub mod config;
pub mod detector;
pub mod eval;
pub mod group;
mod hash;
pub mod levels;
pub mod obs;
pub mod outage;
pub mod platform;
pub mod segment;
pub mod sim;
pub mod stats;

pub use bins::{Bin, BinState, BinSummary};
pub use config::{Config, ConfigError, OutageConfig, SignalRule, parse_duration};
pub use detector::{Detector, MAX_TIME, MIN_TIME, Refused, Report, Stats, detect};
pub use group::{AsnSpan, Event, Evidence, Pattern, SeriesEvent, group_events};
pub use obs::{Cc, Observation, SeriesKey, SignalKind, SignalSample};
pub use outage::{AsnOutage, BinAlert, Level, Outage, SignalAlert, group_outages};
pub use platform::{PLATFORMS, Platform, platform_of};
pub use stats::wilson;
