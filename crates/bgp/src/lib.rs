//! BGP signals for censorwatch: reads MRT update and RIB files (RFC 6396, gzip or bzip2
//! compressed, through `bgpkit-parser`) and watches the routes a collector's peers carry for two
//! things that shutdowns and censorship leave in the global routing table: prefixes announced by
//! an origin AS other than the expected one (a hijack, or a censor's route leaking out, as when
//! Pakistan Telecom took YouTube's prefix worldwide on 24 February 2008), and the number of IPv4
//! /24 blocks each origin AS keeps visible over time (which drops when a network is cut off).
//!
//! The crate is pure computation over readers it is handed: it stores nothing, fetches nothing
//! (no HTTP, no BGPStream, no RIS Live), and never guesses a file's format from its name.
//!
//! * [`MrtReader`] streams one MRT file into [`Event`]s, reporting a truncated or malformed
//!   stream with its byte offset and keeping everything read before it.
//! * [`OriginTable`] holds expected origins, from a prefix-to-AS table (pyasn or CAIDA
//!   prefix2as text) or learned on the way.
//! * [`BgpMonitor`] keeps per-peer routes and turns events into [`Signal`]s: origin changes,
//!   counter-announcements by the expected origin, the end of an episode, and /24 visibility.
//!
//! ```
//! use censorwatch_bgp::{Action, BgpMonitor, Event, MonitorConfig, OriginTable, Peer, RouteUpdate, Signal, Source, Time};
//!
//! let mut expected = OriginTable::new();
//! expected.read_text("208.65.152.0/22\t36561\n".as_bytes(), "table").unwrap();
//! let mut monitor = BgpMonitor::new(MonitorConfig::default(), expected);
//! let mut signals = Vec::new();
//! monitor.apply(
//!     &Event::Route(RouteUpdate {
//!         time: Time(1_203_878_877),
//!         peer: Peer { ip: "149.20.65.198".parse().unwrap(), asn: 1280 },
//!         prefix: "208.65.153.0/24".parse().unwrap(),
//!         path_id: 0,
//!         source: Source::Update,
//!         action: Action::Announce { origin: Some(17557), as_path: &[1280, 6461, 3491, 17557] },
//!     }),
//!     &mut signals,
//! );
//! let Signal::OriginChange(change) = &signals[0] else { panic!() };
//! assert_eq!(change.expected_origins, [36561]);
//! assert_eq!(change.covering_prefix, Some("208.65.152.0/22".parse().unwrap()));
//! assert_eq!(change.time.to_string(), "2008-02-24T18:47:57Z");
//! ```

mod input;
mod monitor;
mod mrt;
mod origins;
mod prefix_map;
mod routes;
mod signal;
mod time;
mod update;
pub mod visibility;

pub use input::{Compression, decompress};
pub use monitor::{
    ActiveEpisode, BgpMonitor, DEFAULT_BIN_SECONDS, DEFAULT_HOLD_SECONDS, MonitorConfig, MonitorStats, VisibilityScope,
};
pub use mrt::{MrtError, MrtReader, ReadReport};
pub use origins::{ExpectationSource, Expected, OriginTable, OriginsError};
pub use signal::{CounterAnnouncement, OriginChange, Signal, Visibility, Withdrawn};
pub use time::Time;
pub use update::{Action, Event, Peer, RouteUpdate, Source};
