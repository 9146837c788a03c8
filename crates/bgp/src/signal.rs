//! The signals the monitor emits, as JSON objects (`--json`, tagged by `type`) or lines of text.

use crate::origins::ExpectationSource;
use crate::time::{Span, Time};
use ipnet::IpNet;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// Something worth reporting about the routing of a prefix or the reach of an AS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Signal {
    /// A prefix, or a more-specific of it, announced by an origin it was not expected from:
    /// a hijack, a leak, or a legitimate move the expectations do not know yet.
    OriginChange(OriginChange),
    /// An expected origin newly announcing a prefix that is, or is inside, one under an origin
    /// change: the owner fighting back (YouTube announcing its /24 and /25s in 2008).
    CounterAnnouncement(CounterAnnouncement),
    /// The last peer carrying an origin change withdrew it or replaced it: the episode is over.
    Withdrawn(Withdrawn),
    /// The number of IPv4 /24 blocks visible from an origin AS at a sampling time.
    Visibility(Visibility),
}

/// See [`Signal::OriginChange`]. Emitted once per episode: when the first peer carries the
/// (prefix, origin) pair. If every peer drops it and it comes back, that is a new episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginChange {
    /// The announced prefix.
    pub prefix: IpNet,
    /// Who originated it.
    pub origin: u32,
    /// Who was expected to.
    pub expected_origins: Vec<u32>,
    /// The less specific prefix the expectation comes from, when the prefix has none of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covering_prefix: Option<IpNet>,
    /// Where the expectation came from.
    pub expected_from: ExpectationSource,
    /// When the first peer carried it.
    pub time: Time,
    /// Peers carrying it then (1 unless several announced it within one record).
    pub peers: usize,
    /// The first peer to carry it.
    pub peer_ip: IpAddr,
    /// That peer's AS.
    pub peer_asn: u32,
    /// The AS path that peer saw.
    pub as_path: Vec<u32>,
}

/// See [`Signal::CounterAnnouncement`]. Emitted when the first peer carries the (prefix, expected
/// origin) pair while an origin change is under way on the prefix or one covering it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CounterAnnouncement {
    /// The announced prefix.
    pub prefix: IpNet,
    /// Who originated it (an expected origin).
    pub origin: u32,
    /// Always true: the origin is expected for the prefix.
    pub expected: bool,
    /// The prefix under an origin change that this one equals or is inside.
    pub against_prefix: IpNet,
    /// The unexpected origins announcing that prefix.
    pub against_origins: Vec<u32>,
    /// When the first peer carried it.
    pub time: Time,
    /// Peers carrying it then.
    pub peers: usize,
    /// The first peer to carry it.
    pub peer_ip: IpAddr,
    /// That peer's AS.
    pub peer_asn: u32,
    /// The AS path that peer saw.
    pub as_path: Vec<u32>,
}

/// See [`Signal::Withdrawn`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withdrawn {
    /// The prefix of the origin change.
    pub prefix: IpNet,
    /// Its unexpected origin.
    pub origin: u32,
    /// When the last peer withdrew or replaced it.
    pub time: Time,
    /// When the episode began (the origin change's time).
    pub since: Time,
    /// `time - since`, in seconds.
    pub duration_seconds: i64,
    /// The most peers that carried it at once.
    pub peers_max: usize,
}

/// See [`Signal::Visibility`] and [`crate::visibility`] for the counting rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visibility {
    /// The origin AS.
    pub asn: u32,
    /// The sampling time: the end of a time bin (state after every update before it), or the
    /// time of the last update for the final sample.
    pub time: Time,
    /// Visible /24 blocks.
    pub slash24: u64,
    /// The count at this AS's previous report; absent at its first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
}

impl Signal {
    /// When it happened.
    pub fn time(&self) -> Time {
        match self {
            Signal::OriginChange(s) => s.time,
            Signal::CounterAnnouncement(s) => s.time,
            Signal::Withdrawn(s) => s.time,
            Signal::Visibility(s) => s.time,
        }
    }

    /// Its `type` in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Signal::OriginChange(_) => "origin_change",
            Signal::CounterAnnouncement(_) => "counter_announcement",
            Signal::Withdrawn(_) => "withdrawn",
            Signal::Visibility(_) => "visibility",
        }
    }
}

struct Asns<'a>(&'a [u32]);

impl fmt::Display for Asns<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, asn) in self.0.iter().enumerate() {
            write!(f, "{}AS{asn}", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}

struct Path<'a>(&'a [u32]);

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, asn) in self.0.iter().enumerate() {
            write!(f, "{}{asn}", if i == 0 { "" } else { " " })?;
        }
        Ok(())
    }
}

/// One line for people: time, type, and the facts.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {:<20}  ", self.time(), self.kind())?;
        match self {
            Signal::OriginChange(s) => {
                write!(
                    f,
                    "{} from AS{}, expected {}",
                    s.prefix,
                    s.origin,
                    Asns(&s.expected_origins)
                )?;
                if let Some(covering) = s.covering_prefix {
                    write!(f, " (for {covering})")?;
                }
                write!(
                    f,
                    " [{}]; first via {} AS{}, path {}",
                    s.expected_from,
                    s.peer_ip,
                    s.peer_asn,
                    Path(&s.as_path)
                )
            }
            Signal::CounterAnnouncement(s) => write!(
                f,
                "{} from expected AS{}, against {} on {}; first via {} AS{}, path {}",
                s.prefix,
                s.origin,
                Asns(&s.against_origins),
                s.against_prefix,
                s.peer_ip,
                s.peer_asn,
                Path(&s.as_path)
            ),
            Signal::Withdrawn(s) => write!(
                f,
                "{} from AS{} gone from every peer after {} (since {}, at most {} peers)",
                s.prefix,
                s.origin,
                Span(s.duration_seconds),
                s.since,
                s.peers_max
            ),
            Signal::Visibility(s) => {
                write!(f, "AS{} {} visible /24s", s.asn, s.slash24)?;
                match s.previous {
                    Some(p) if p != s.slash24 => write!(f, " ({:+})", i128::from(s.slash24) - i128::from(p)),
                    Some(_) => Ok(()),
                    None => f.write_str(" (first sample)"),
                }
            }
        }
    }
}
