//! What the monitor is fed: route announcements and withdrawals as seen by one peer of a route
//! collector, and peer sessions going down. These types know nothing of MRT, so tests and other
//! feeds (RIS Live, BMP) can build them by hand.

use crate::time::Time;
use ipnet::IpNet;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// A BGP session of the route collector: the neighbour's address and AS number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Peer {
    /// The neighbour's address.
    pub ip: IpAddr,
    /// The neighbour's AS number.
    pub asn: u32,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (AS{})", self.ip, self.asn)
    }
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A BGP UPDATE message (MRT BGP4MP or the old BGP type): a change at its time.
    Update,
    /// A RIB dump entry (MRT TABLE_DUMP or TABLE_DUMP_V2): the state at the dump's time.
    Rib,
}

/// What a peer said about a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// The peer has a route to the prefix (replacing any route it had before for the same path id).
    Announce {
        /// The AS that originated the route: the last AS of the path. `None` when the path is
        /// empty or ends in an AS_SET of more than one AS, so the origin cannot be told.
        origin: Option<u32>,
        /// The AS path, first hop first; AS_SET members are listed in place.
        as_path: &'a [u32],
    },
    /// The peer no longer has a route to the prefix.
    Withdraw,
}

/// One route change seen by one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteUpdate<'a> {
    /// When the collector recorded it.
    pub time: Time,
    /// Who said it.
    pub peer: Peer,
    /// The prefix (host bits cleared).
    pub prefix: IpNet,
    /// The ADD-PATH path identifier, 0 without ADD-PATH.
    pub path_id: u32,
    /// An UPDATE message or a RIB dump entry.
    pub source: Source,
    /// Announced or withdrawn.
    pub action: Action<'a>,
}

/// Anything the monitor is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A route change.
    Route(RouteUpdate<'a>),
    /// The collector's session with `peer` left the Established state: every route learned from
    /// it is gone.
    PeerDown {
        /// When the session went down.
        time: Time,
        /// Whose session.
        peer: Peer,
    },
}

impl Event<'_> {
    /// When it happened.
    pub fn time(&self) -> Time {
        match self {
            Event::Route(u) => u.time,
            Event::PeerDown { time, .. } => *time,
        }
    }
}
