//! [`BgpMonitor`]: the state machine. It is fed [`Event`]s in time order and keeps every peer's
//! routes ([`crate::routes`]), the expected origins ([`OriginTable`]), and the origin-change
//! episodes under way, and pushes [`Signal`]s as they happen.
//!
//! The decisions, all made when a (prefix, origin) pair gains its first peer:
//!
//! * Look up the expectation for the prefix: its own entry or the most specific covering one.
//! * None: nothing is known about this address space, so the origin becomes the expectation
//!   (from a RIB entry always; from an update unless [`MonitorConfig::learn_from_updates`] is off).
//! * The origin is expected: fine — unless an origin change is under way on this prefix or one
//!   covering it, which makes it a [`Signal::CounterAnnouncement`].
//! * The origin is not expected: a [`Signal::OriginChange`] episode begins, except for a RIB entry
//!   whose expectation was itself learned (from another RIB entry or an update): RIB dumps are
//!   taken as the truth of their moment, so the origin is added (multiple-origin prefixes stay
//!   quiet). Only a table given with `--origins` can make a RIB entry an origin change.
//!
//! An episode ends with [`Signal::Withdrawn`] when no peer carries the pair any more (withdrawn,
//! replaced by another route, or its peer's session went down) and none takes it up again within
//! [`MonitorConfig::hold_seconds`]: a flapping route is one episode, not one per flap. The signal
//! is emitted once the hold has passed (or at the end of the data), so it can follow signals with
//! later times; its `time` is when the last peer let go. Origins seen in an episode are never
//! learned as expected, so a hijack that comes back after the hold is reported again.
//!
//! Visibility is sampled at the end of every time bin in which anything happened (empty bins are
//! skipped: nothing changed in them) and once more at the end; see [`crate::visibility`].

use crate::origins::{ExpectationSource, OriginTable};
use crate::prefix_map::PrefixMap;
use crate::routes::{self, NO_ROUTE, Routes, Slots, UNKNOWN_ORIGIN, is_origin};
use crate::signal::{CounterAnnouncement, OriginChange, Signal, Visibility, Withdrawn};
use crate::time::Time;
use crate::update::{Action, Event, Peer, RouteUpdate, Source};
use crate::visibility;
use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Which ASes get [`Signal::Visibility`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VisibilityScope {
    /// Only the watched ASes ([`MonitorConfig::watch`]).
    Watched,
    /// The watched ASes, and every AS that took part in an origin change or counter-announcement
    /// (as origin or expected origin), whenever its count changes.
    #[default]
    Involved,
    /// Every AS whose count changes (large).
    All,
}

/// How the monitor works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Length of a visibility time bin, in seconds (at least 1).
    pub bin_seconds: i64,
    /// ASes whose visibility is reported at every sample, changed or not.
    pub watch: Vec<u32>,
    /// Which other ASes' visibility is reported.
    pub visibility: VisibilityScope,
    /// Whether the first origin an update shows for address space nothing covers becomes its
    /// expectation. With it off, only `--origins` tables and RIB dumps set expectations.
    pub learn_from_updates: bool,
    /// How long, in seconds, an origin change must stay gone from every peer before its episode
    /// is over. 0 ends it at once.
    pub hold_seconds: i64,
}

/// Five-minute bins, as IODA uses for BGP.
pub const DEFAULT_BIN_SECONDS: i64 = 300;

/// An origin change gone for five minutes is over.
pub const DEFAULT_HOLD_SECONDS: i64 = 300;

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            bin_seconds: DEFAULT_BIN_SECONDS,
            watch: Vec::new(),
            visibility: VisibilityScope::default(),
            learn_from_updates: true,
            hold_seconds: DEFAULT_HOLD_SECONDS,
        }
    }
}

/// Counts of what the monitor saw and said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Announcements from updates.
    pub announcements: u64,
    /// Withdrawals from updates.
    pub withdrawals: u64,
    /// RIB dump entries.
    pub rib_entries: u64,
    /// Peer sessions that went down.
    pub peer_downs: u64,
    /// Expectations learned from RIB entries.
    pub learned_from_rib: u64,
    /// Expectations learned from updates.
    pub learned_from_updates: u64,
    /// Signals emitted: origin changes.
    pub origin_changes: u64,
    /// Signals emitted: counter-announcements.
    pub counter_announcements: u64,
    /// Signals emitted: withdrawn episodes.
    pub withdrawn: u64,
    /// Signals emitted: visibility reports.
    pub visibility_reports: u64,
    /// Visibility samples computed.
    pub samples: u64,
}

/// An origin change still carried by some peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveEpisode {
    /// The prefix.
    pub prefix: IpNet,
    /// The unexpected origin.
    pub origin: u32,
    /// When it began.
    pub since: Time,
    /// Peers carrying it now.
    pub peers: usize,
    /// The most peers that carried it at once.
    pub peers_max: usize,
}

#[derive(Debug, Clone)]
struct Episode {
    origin: u32,
    since: Time,
    peers_max: usize,
    /// When the last peer let go, while the hold runs.
    gone_at: Option<Time>,
}

/// An episode whose hold ends at `deadline`, if it is still gone since `gone_at` then.
#[derive(Debug, Clone, Copy)]
struct Hold {
    deadline: Time,
    gone_at: Time,
    prefix: IpNet,
    origin: u32,
}

/// The BGP state machine; see the module documentation.
#[derive(Debug)]
pub struct BgpMonitor {
    config: MonitorConfig,
    expected: OriginTable,
    peers: Vec<Peer>,
    peer_ids: HashMap<Peer, u32>,
    routes: Routes,
    episodes: PrefixMap<Vec<Episode>>,
    /// Episodes stored, held ones included.
    active: usize,
    holds: VecDeque<Hold>,
    involved: BTreeSet<u32>,
    next_sample: Option<Time>,
    last_time: Option<Time>,
    reported: HashMap<u32, u64>,
    /// [`MonitorConfig::watch`] as a set (it can hold every AS of a country table).
    watched: std::collections::HashSet<u32>,
    stats: MonitorStats,
}

enum Verdict {
    Unknown,
    Expected,
    Unexpected {
        covering: IpNet,
        origins: Vec<u32>,
        source: ExpectationSource,
    },
}

impl BgpMonitor {
    /// A monitor that starts with `expected` (empty, or read with [`OriginTable::load`]).
    pub fn new(config: MonitorConfig, expected: OriginTable) -> Self {
        let watched = config.watch.iter().copied().collect();
        BgpMonitor {
            config: MonitorConfig {
                bin_seconds: config.bin_seconds.max(1),
                hold_seconds: config.hold_seconds.max(0),
                ..config
            },
            expected,
            peers: Vec::new(),
            peer_ids: HashMap::new(),
            routes: Routes::new(),
            episodes: PrefixMap::new(),
            active: 0,
            holds: VecDeque::new(),
            involved: BTreeSet::new(),
            next_sample: None,
            last_time: None,
            reported: HashMap::new(),
            watched,
            stats: MonitorStats::default(),
        }
    }

    /// The expected origins, as loaded and learned so far.
    pub fn expected(&self) -> &OriginTable {
        &self.expected
    }

    /// What the monitor has seen and said.
    pub fn stats(&self) -> &MonitorStats {
        &self.stats
    }

    /// Peers seen so far.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// Prefixes any peer has said anything about.
    pub fn prefixes(&self) -> usize {
        self.routes.len()
    }

    /// Peers currently routing `prefix` (exactly) to `origin`.
    pub fn peers_carrying(&self, prefix: &IpNet, origin: u32) -> usize {
        self.routes
            .get(prefix)
            .map_or(0, |slots| routes::peers_with(slots, origin))
    }

    /// Visible /24 blocks per origin AS now (see [`crate::visibility`]); origins with none are
    /// absent. Computed on each call.
    pub fn visibility_now(&self) -> HashMap<u32, u64> {
        visibility::slash24_by_origin(&self.routes)
    }

    /// The origin changes still under way, by prefix.
    pub fn active_episodes(&self) -> Vec<ActiveEpisode> {
        let mut found: Vec<ActiveEpisode> = self
            .episodes
            .iter()
            .flat_map(|(prefix, episodes)| {
                episodes
                    .iter()
                    .filter(|e| e.gone_at.is_none())
                    .map(move |e| ActiveEpisode {
                        prefix,
                        origin: e.origin,
                        since: e.since,
                        peers: self.peers_carrying(&prefix, e.origin),
                        peers_max: e.peers_max,
                    })
            })
            .collect();
        found.sort_by_key(|e| (e.since, e.prefix, e.origin));
        found
    }

    /// Feeds one event; signals it causes are pushed onto `out`.
    pub fn apply(&mut self, event: &Event<'_>, out: &mut Vec<Signal>) {
        self.end_holds(Some(event.time()), out);
        self.advance_clock(event.time(), out);
        match event {
            Event::Route(update) => self.route(update, out),
            Event::PeerDown { time, peer } => self.peer_down(*time, *peer, out),
        }
    }

    /// Ends the episodes whose hold is running (they did not come back before the data ended)
    /// and takes the last visibility sample (at the time of the last event). Call once, after the
    /// last event.
    pub fn finish(&mut self, out: &mut Vec<Signal>) {
        self.end_holds(None, out);
        if let Some(last) = self.last_time {
            self.sample(last, out);
        }
        self.next_sample = None;
    }

    fn advance_clock(&mut self, time: Time, out: &mut Vec<Signal>) {
        let bin = self.config.bin_seconds;
        let bin_end = |t: Time| Time((t.0.div_euclid(bin) + 1) * bin);
        match self.next_sample {
            None => self.next_sample = Some(bin_end(time)),
            Some(at) if time >= at => {
                self.sample(at, out);
                self.next_sample = Some(bin_end(time));
            }
            Some(_) => {}
        }
        self.last_time = Some(self.last_time.map_or(time, |last| last.max(time)));
    }

    fn peer_id(&mut self, peer: Peer) -> u32 {
        if let Some(&id) = self.peer_ids.get(&peer) {
            return id;
        }
        let id = u32::try_from(self.peers.len()).expect("fewer than 2^32 peers");
        self.peers.push(peer);
        self.peer_ids.insert(peer, id);
        id
    }

    fn route(&mut self, update: &RouteUpdate<'_>, out: &mut Vec<Signal>) {
        let (origin, as_path) = match (update.source, update.action) {
            (source, Action::Announce { origin, as_path }) => {
                match source {
                    Source::Update => self.stats.announcements += 1,
                    Source::Rib => self.stats.rib_entries += 1,
                }
                (origin.filter(|&o| is_origin(o)).unwrap_or(UNKNOWN_ORIGIN), as_path)
            }
            (_, Action::Withdraw) => {
                self.stats.withdrawals += 1;
                (NO_ROUTE, &[][..])
            }
        };
        let peer = self.peer_id(update.peer);
        let slots = self.routes.get_or_insert_with(&update.prefix, Slots::new);
        let Some(change) = routes::set(slots, peer, update.path_id, origin) else {
            return;
        };
        // The new origin first: a peer moving from an origin change to the expected origin is a
        // counter-announcement against an episode its own update then puts on hold.
        if is_origin(origin) {
            if change.new_first {
                self.appeared(update, origin, as_path, change.new_peers, out);
            } else if self.active > 0 {
                self.seen_by_more(&update.prefix, origin, change.new_peers);
            }
        }
        if change.old_gone {
            self.gone(update.prefix, change.old, update.time, out);
        }
    }

    fn appeared(
        &mut self,
        update: &RouteUpdate<'_>,
        origin: u32,
        as_path: &[u32],
        peers: usize,
        out: &mut Vec<Signal>,
    ) {
        if self.active > 0 {
            // Back within the hold: the same episode goes on.
            if let Some(held) = self.episode_mut(&update.prefix, origin) {
                held.gone_at = None;
                held.peers_max = held.peers_max.max(peers);
                return;
            }
        }
        let verdict = match self.expected.lookup(&update.prefix) {
            None => Verdict::Unknown,
            Some(e) if e.allows(origin) => Verdict::Expected,
            Some(e) => Verdict::Unexpected {
                covering: e.prefix,
                origins: e.origins.to_vec(),
                source: e.source,
            },
        };
        match verdict {
            Verdict::Unknown => self.learn(update, origin),
            Verdict::Expected => {
                if self.active > 0 {
                    self.counter(update, origin, as_path, peers, out);
                }
            }
            Verdict::Unexpected { source, .. }
                if update.source == Source::Rib && source != ExpectationSource::Table =>
            {
                self.learn(update, origin);
            }
            Verdict::Unexpected {
                covering,
                origins,
                source,
            } => {
                self.involved.insert(origin);
                self.involved.extend(origins.iter().copied());
                self.episodes
                    .get_or_insert_with(&update.prefix, Vec::new)
                    .push(Episode {
                        origin,
                        since: update.time,
                        peers_max: peers,
                        gone_at: None,
                    });
                self.active += 1;
                self.stats.origin_changes += 1;
                out.push(Signal::OriginChange(OriginChange {
                    prefix: update.prefix,
                    origin,
                    expected_origins: origins,
                    covering_prefix: (covering != update.prefix).then_some(covering),
                    expected_from: source,
                    time: update.time,
                    peers,
                    peer_ip: update.peer.ip,
                    peer_asn: update.peer.asn,
                    as_path: as_path.to_vec(),
                }));
            }
        }
    }

    fn learn(&mut self, update: &RouteUpdate<'_>, origin: u32) {
        let source = match update.source {
            Source::Rib => {
                self.stats.learned_from_rib += 1;
                ExpectationSource::Rib
            }
            Source::Update if self.config.learn_from_updates => {
                self.stats.learned_from_updates += 1;
                ExpectationSource::Updates
            }
            Source::Update => return,
        };
        self.expected.insert(update.prefix, origin, source);
    }

    fn counter(&mut self, update: &RouteUpdate<'_>, origin: u32, as_path: &[u32], peers: usize, out: &mut Vec<Signal>) {
        let against = self.episodes.covering(&update.prefix).find_map(|(prefix, episodes)| {
            let origins: Vec<u32> = episodes
                .iter()
                .filter(|e| e.gone_at.is_none() && e.origin != origin)
                .map(|e| e.origin)
                .collect();
            (!origins.is_empty()).then_some((prefix, origins))
        });
        let Some((against_prefix, mut against_origins)) = against else {
            return;
        };
        against_origins.sort_unstable();
        self.involved.insert(origin);
        self.stats.counter_announcements += 1;
        out.push(Signal::CounterAnnouncement(CounterAnnouncement {
            prefix: update.prefix,
            origin,
            expected: true,
            against_prefix,
            against_origins,
            time: update.time,
            peers,
            peer_ip: update.peer.ip,
            peer_asn: update.peer.asn,
            as_path: as_path.to_vec(),
        }));
    }

    fn episode_mut(&mut self, prefix: &IpNet, origin: u32) -> Option<&mut Episode> {
        self.episodes
            .get_mut(prefix)
            .and_then(|episodes| episodes.iter_mut().find(|e| e.origin == origin))
    }

    fn seen_by_more(&mut self, prefix: &IpNet, origin: u32, peers: usize) {
        if let Some(episode) = self.episode_mut(prefix, origin) {
            episode.peers_max = episode.peers_max.max(peers);
        }
    }

    /// No peer carries (`prefix`, `origin`) since `time`: hold its episode, if it has one.
    fn gone(&mut self, prefix: IpNet, origin: u32, time: Time, out: &mut Vec<Signal>) {
        if self.active == 0 {
            return;
        }
        let hold = self.config.hold_seconds;
        let Some(episode) = self.episode_mut(&prefix, origin) else {
            return;
        };
        if hold == 0 {
            return self.end_episode(prefix, origin, time, out);
        }
        episode.gone_at = Some(time);
        self.holds.push_back(Hold {
            deadline: Time(time.0 + hold),
            gone_at: time,
            prefix,
            origin,
        });
    }

    /// Ends the held episodes whose hold is over by `now` (all of them for `None`).
    fn end_holds(&mut self, now: Option<Time>, out: &mut Vec<Signal>) {
        while let Some(hold) = self.holds.front().copied() {
            if now.is_some_and(|now| now < hold.deadline) {
                break;
            }
            self.holds.pop_front();
            let still_gone = self
                .episode_mut(&hold.prefix, hold.origin)
                .is_some_and(|e| e.gone_at == Some(hold.gone_at));
            if still_gone {
                self.end_episode(hold.prefix, hold.origin, hold.gone_at, out);
            }
        }
    }

    fn end_episode(&mut self, prefix: IpNet, origin: u32, time: Time, out: &mut Vec<Signal>) {
        let Some(episodes) = self.episodes.get_mut(&prefix) else {
            return;
        };
        let Some(at) = episodes.iter().position(|e| e.origin == origin) else {
            return;
        };
        let episode = episodes.swap_remove(at);
        if episodes.is_empty() {
            self.episodes.remove(&prefix);
        }
        self.active -= 1;
        self.stats.withdrawn += 1;
        out.push(Signal::Withdrawn(Withdrawn {
            prefix,
            origin,
            time,
            since: episode.since,
            duration_seconds: time.0 - episode.since.0,
            peers_max: episode.peers_max,
        }));
    }

    fn peer_down(&mut self, time: Time, peer: Peer, out: &mut Vec<Signal>) {
        self.stats.peer_downs += 1;
        let Some(&id) = self.peer_ids.get(&peer) else {
            return;
        };
        for (prefix, origin) in routes::drop_peer(&mut self.routes, id) {
            self.gone(prefix, origin, time, out);
        }
    }

    fn sample(&mut self, at: Time, out: &mut Vec<Signal>) {
        let mut asns: BTreeSet<u32> = self.watched.iter().copied().collect();
        if self.config.visibility == VisibilityScope::Involved {
            asns.extend(self.involved.iter().copied());
        }
        let all = self.config.visibility == VisibilityScope::All;
        if asns.is_empty() && !all {
            return;
        }
        self.stats.samples += 1;
        let counts = visibility::slash24_by_origin(&self.routes);
        if all {
            asns.extend(counts.keys().copied());
            asns.extend(self.reported.keys().copied());
        }
        for asn in asns {
            let now = counts.get(&asn).copied().unwrap_or(0);
            let previous = self.reported.insert(asn, now);
            if previous == Some(now) && !self.watched.contains(&asn) {
                continue;
            }
            self.stats.visibility_reports += 1;
            out.push(Signal::Visibility(Visibility {
                asn,
                time: at,
                slash24: now,
                previous,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Visibility;
    use std::net::{IpAddr, Ipv4Addr};

    const HIJACK: &str = "208.65.153.0/24";

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn peer(n: u8) -> Peer {
        Peer {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
            asn: 64_500 + u32::from(n),
        }
    }

    fn table(lines: &str) -> OriginTable {
        let mut t = OriginTable::new();
        t.read_text(lines.as_bytes(), "test").unwrap();
        t
    }

    /// A monitor with the YouTube /22 expected from AS36561, as the 2008 pyasn table has it, and
    /// no visibility reports.
    fn youtube(hold_seconds: i64) -> BgpMonitor {
        let config = MonitorConfig {
            hold_seconds,
            visibility: VisibilityScope::Watched,
            ..MonitorConfig::default()
        };
        BgpMonitor::new(config, table("208.65.152.0/22\t36561\n"))
    }

    fn feed(m: &mut BgpMonitor, time: i64, n: u8, prefix: &str, source: Source, action: Action<'_>) -> Vec<Signal> {
        let mut out = Vec::new();
        let update = RouteUpdate {
            time: Time(time),
            peer: peer(n),
            prefix: net(prefix),
            path_id: 0,
            source,
            action,
        };
        m.apply(&Event::Route(update), &mut out);
        out
    }

    fn announce(m: &mut BgpMonitor, time: i64, n: u8, prefix: &str, origin: u32) -> Vec<Signal> {
        let path = [64_500 + u32::from(n), 3491, origin];
        let action = Action::Announce {
            origin: Some(origin),
            as_path: &path,
        };
        feed(m, time, n, prefix, Source::Update, action)
    }

    fn rib(m: &mut BgpMonitor, time: i64, n: u8, prefix: &str, origin: u32) -> Vec<Signal> {
        let path = [origin];
        let action = Action::Announce {
            origin: Some(origin),
            as_path: &path,
        };
        feed(m, time, n, prefix, Source::Rib, action)
    }

    fn withdraw(m: &mut BgpMonitor, time: i64, n: u8, prefix: &str) -> Vec<Signal> {
        feed(m, time, n, prefix, Source::Update, Action::Withdraw)
    }

    fn kinds(signals: &[Signal]) -> Vec<&'static str> {
        signals.iter().map(Signal::kind).collect()
    }

    #[test]
    fn a_more_specific_from_another_origin_is_an_origin_change_against_the_covering_prefix() {
        let mut m = youtube(300);
        let out = announce(&mut m, 1000, 1, HIJACK, 17557);
        let [Signal::OriginChange(change)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(change.prefix, net(HIJACK));
        assert_eq!(change.origin, 17557);
        assert_eq!(change.expected_origins, [36561]);
        assert_eq!(change.covering_prefix, Some(net("208.65.152.0/22")));
        assert_eq!(change.expected_from, ExpectationSource::Table);
        assert_eq!((change.time, change.peers, change.peer_asn), (Time(1000), 1, 64_501));
        assert_eq!(change.as_path, [64_501, 3491, 17557]);
        // More peers taking it up is the same episode.
        assert!(announce(&mut m, 1001, 2, HIJACK, 17557).is_empty());
        assert_eq!(m.peers_carrying(&net(HIJACK), 17557), 2);
        let active = m.active_episodes();
        assert_eq!(active.len(), 1);
        assert_eq!(
            (active[0].peers, active[0].peers_max, active[0].since),
            (2, 2, Time(1000))
        );
        // The expected origin on the exact table prefix, with no episode under way, says nothing.
        assert!(announce(&mut m, 1002, 1, "208.65.152.0/22", 36561).is_empty());
    }

    #[test]
    fn the_expected_origin_fighting_back_is_a_counter_announcement() {
        let mut m = youtube(300);
        announce(&mut m, 1000, 1, HIJACK, 17557);
        let out = announce(&mut m, 2000, 2, HIJACK, 36561);
        let [Signal::CounterAnnouncement(counter)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!((counter.prefix, counter.against_prefix), (net(HIJACK), net(HIJACK)));
        assert_eq!(
            (counter.origin, counter.against_origins.as_slice()),
            (36561, &[17557][..])
        );
        assert!(counter.expected);
        // The /25s inside the hijacked /24 count against it too, once each.
        let out = announce(&mut m, 2100, 2, "208.65.153.128/25", 36561);
        let [Signal::CounterAnnouncement(counter)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(counter.against_prefix, net(HIJACK));
        assert!(announce(&mut m, 2101, 3, "208.65.153.128/25", 36561).is_empty());
        // Not inside it: nothing.
        assert!(announce(&mut m, 2102, 2, "208.65.154.0/24", 36561).is_empty());
        // A third origin on the hijacked prefix is its own origin change.
        assert_eq!(kinds(&announce(&mut m, 2103, 4, HIJACK, 9541)), ["origin_change"]);
    }

    #[test]
    fn an_episode_ends_after_the_hold_at_the_time_the_last_peer_let_go() {
        let mut m = youtube(300);
        announce(&mut m, 1000, 1, HIJACK, 17557);
        announce(&mut m, 1001, 2, HIJACK, 17557);
        // One peer withdraws, the other moves to the expected origin: the pair is gone at 1500.
        assert!(withdraw(&mut m, 1400, 1, HIJACK).is_empty());
        assert_eq!(
            kinds(&announce(&mut m, 1500, 2, HIJACK, 36561)),
            ["counter_announcement"]
        );
        assert!(m.active_episodes().is_empty(), "held, not active");
        // Nothing is said while the hold runs...
        assert!(announce(&mut m, 1799, 3, "10.0.0.0/8", 3).is_empty());
        // ...and the first event at or after its end closes it.
        let out = announce(&mut m, 1800, 3, "11.0.0.0/8", 3);
        let [Signal::Withdrawn(w)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!((w.prefix, w.origin), (net(HIJACK), 17557));
        assert_eq!(
            (w.since, w.time, w.duration_seconds, w.peers_max),
            (Time(1000), Time(1500), 500, 2)
        );
        assert_eq!(m.stats().withdrawn, 1);
    }

    #[test]
    fn a_flap_within_the_hold_is_one_episode_and_a_return_after_it_is_a_new_one() {
        let mut m = youtube(300);
        announce(&mut m, 1000, 1, HIJACK, 17557);
        withdraw(&mut m, 1100, 1, HIJACK);
        assert!(
            announce(&mut m, 1200, 2, HIJACK, 17557).is_empty(),
            "back within the hold"
        );
        withdraw(&mut m, 1300, 2, HIJACK);
        let out = announce(&mut m, 1700, 1, HIJACK, 17557);
        // The held episode ends (at 1300) before the return is judged: a second origin change.
        assert_eq!(kinds(&out), ["withdrawn", "origin_change"]);
        let Signal::Withdrawn(w) = &out[0] else { unreachable!() };
        assert_eq!((w.since, w.time), (Time(1000), Time(1300)));
        assert_eq!(m.stats().origin_changes, 2);
        // The unexpected origin was never learned as expected.
        assert_eq!(m.expected().lookup(&net(HIJACK)).unwrap().origins, [36561]);
    }

    #[test]
    fn finish_ends_held_episodes_and_keeps_active_ones() {
        let mut m = youtube(300);
        announce(&mut m, 1000, 1, HIJACK, 17557);
        announce(&mut m, 1000, 1, "208.65.154.0/24", 17557);
        withdraw(&mut m, 1100, 1, HIJACK);
        let mut out = Vec::new();
        m.finish(&mut out);
        let withdrawn: Vec<_> = out
            .iter()
            .filter_map(|s| match s {
                Signal::Withdrawn(w) => Some((w.prefix, w.time)),
                _ => None,
            })
            .collect();
        assert_eq!(withdrawn, [(net(HIJACK), Time(1100))]);
        let active = m.active_episodes();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].prefix, net("208.65.154.0/24"));
    }

    #[test]
    fn a_peer_session_going_down_takes_its_routes_with_it() {
        let mut m = youtube(0);
        announce(&mut m, 1000, 1, HIJACK, 17557);
        let mut out = Vec::new();
        m.apply(
            &Event::PeerDown {
                time: Time(1200),
                peer: peer(1),
            },
            &mut out,
        );
        assert_eq!(kinds(&out), ["withdrawn"]);
        assert_eq!(out[0].time(), Time(1200));
        assert_eq!(m.peers_carrying(&net(HIJACK), 17557), 0);
        // A session nobody heard from before going down changes nothing.
        m.apply(
            &Event::PeerDown {
                time: Time(1201),
                peer: peer(9),
            },
            &mut out,
        );
        assert_eq!(m.stats().peer_downs, 2);
    }

    #[test]
    fn without_a_table_the_first_origin_in_updates_is_expected() {
        let mut m = BgpMonitor::new(MonitorConfig::default(), OriginTable::new());
        assert!(announce(&mut m, 1000, 1, "198.51.100.0/24", 64_496).is_empty());
        let out = announce(&mut m, 1001, 2, "198.51.100.0/25", 64_497);
        let [Signal::OriginChange(change)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(change.expected_from, ExpectationSource::Updates);
        assert_eq!(change.expected_origins, [64_496]);
        assert_eq!(m.stats().learned_from_updates, 1);

        let config = MonitorConfig {
            learn_from_updates: false,
            ..MonitorConfig::default()
        };
        let mut m = BgpMonitor::new(config, OriginTable::new());
        announce(&mut m, 1000, 1, "198.51.100.0/24", 64_496);
        assert!(announce(&mut m, 1001, 2, "198.51.100.0/25", 64_497).is_empty());
        assert!(m.expected().is_empty());
    }

    #[test]
    fn rib_entries_set_expectations_and_only_a_table_can_contradict_them() {
        let mut m = youtube(300);
        assert!(rib(&mut m, 1000, 1, "203.0.113.0/24", 64_496).is_empty());
        // Another RIB origin for a RIB-learned prefix: a multi-origin prefix, learned too.
        assert!(rib(&mut m, 1000, 2, "203.0.113.0/24", 64_497).is_empty());
        assert_eq!(
            m.expected().exact(&net("203.0.113.0/24")).unwrap().origins,
            [64_496, 64_497]
        );
        // An update from a third origin is an origin change against both.
        let out = announce(&mut m, 1100, 3, "203.0.113.0/24", 64_498);
        let [Signal::OriginChange(change)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            (change.expected_origins.as_slice(), change.expected_from),
            (&[64_496, 64_497][..], ExpectationSource::Rib)
        );
        // A RIB entry against the --origins table is reported.
        assert_eq!(kinds(&rib(&mut m, 1200, 1, HIJACK, 17557)), ["origin_change"]);
        assert_eq!(m.stats().learned_from_rib, 2);
    }

    #[test]
    fn routes_without_a_known_origin_are_neither_learned_nor_reported() {
        let mut m = youtube(300);
        let path = [64_501, 7, 8];
        let set = Action::Announce {
            origin: None,
            as_path: &path,
        };
        assert!(feed(&mut m, 1000, 1, HIJACK, Source::Update, set).is_empty());
        assert!(feed(&mut m, 1000, 1, "192.0.2.0/24", Source::Update, set).is_empty());
        assert!(m.expected().lookup(&net("192.0.2.0/24")).is_none());
        assert_eq!(m.prefixes(), 2);
    }

    #[test]
    fn add_path_routes_of_one_peer_count_as_one_peer() {
        let mut m = youtube(300);
        let path = [64_501, 17557];
        for path_id in [1, 2] {
            let update = RouteUpdate {
                time: Time(1000),
                peer: peer(1),
                prefix: net(HIJACK),
                path_id,
                source: Source::Update,
                action: Action::Announce {
                    origin: Some(17557),
                    as_path: &path,
                },
            };
            m.apply(&Event::Route(update), &mut Vec::new());
        }
        assert_eq!(m.peers_carrying(&net(HIJACK), 17557), 1);
        assert_eq!(m.stats().origin_changes, 1);
    }

    fn visibility(signals: &[Signal]) -> Vec<(u32, i64, u64, Option<u64>)> {
        signals
            .iter()
            .filter_map(|s| match s {
                Signal::Visibility(Visibility {
                    asn,
                    time,
                    slash24,
                    previous,
                }) => Some((*asn, time.0, *slash24, *previous)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn visibility_is_sampled_at_the_end_of_busy_bins() {
        let config = MonitorConfig {
            bin_seconds: 300,
            watch: vec![64_496],
            ..MonitorConfig::default()
        };
        let mut m = BgpMonitor::new(config, OriginTable::new());
        let mut out = Vec::new();
        out.extend(announce(&mut m, 10, 1, "198.51.100.0/22", 64_496)); // 4 /24s, bin [0, 300)
        out.extend(announce(&mut m, 20, 2, "198.51.100.0/22", 64_496));
        out.extend(announce(&mut m, 700, 1, "203.0.113.0/24", 64_496)); // bin [600, 900): [300, 600) was empty
        out.extend(withdraw(&mut m, 710, 1, "198.51.100.0/22")); // 1 of 2 peers: no majority
        out.extend(announce(&mut m, 950, 1, "192.0.2.0/24", 64_497));
        m.finish(&mut out);
        assert_eq!(
            visibility(&out),
            [
                (64_496, 300, 4, None),
                (64_496, 900, 1, Some(4)),
                (64_496, 950, 1, Some(1))
            ]
        );
        assert_eq!(m.visibility_now().get(&64_496), Some(&1));
        assert_eq!(m.visibility_now().get(&64_497), Some(&1));
    }

    #[test]
    fn involved_ases_are_reported_when_their_count_changes() {
        let mut m = BgpMonitor::new(MonitorConfig::default(), table("208.65.152.0/22\t36561\n"));
        let mut out = Vec::new();
        out.extend(announce(&mut m, 10, 1, "208.65.152.0/22", 36561));
        out.extend(announce(&mut m, 20, 2, HIJACK, 17557));
        out.extend(announce(&mut m, 400, 3, "192.0.2.0/24", 64_496));
        out.extend(announce(&mut m, 700, 3, "192.0.2.0/24", 64_496));
        m.finish(&mut out);
        // At 300: the only peer that reported on the /24 routes it to AS17557, which takes that
        // block from AS36561's /22. After that nothing of theirs changes, so nothing more is said,
        // and AS64496 (not involved in anything) is never reported.
        assert_eq!(visibility(&out), [(17557, 300, 1, None), (36561, 300, 3, None)]);
        // Once the hijacker's peer withdraws (bin [900, 1200)), both change and are reported.
        let mut out = withdraw(&mut m, 1000, 2, HIJACK);
        m.finish(&mut out);
        assert_eq!(visibility(&out), [(17557, 1000, 0, Some(1)), (36561, 1000, 4, Some(3))]);
    }
}
