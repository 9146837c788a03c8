//! The must-show: the Pakistan Telecom / YouTube hijack of 24 February 2008, in the RouteViews
//! update files of that afternoon, with the 1 May 2008 pyasn table as the expected origins.
//!
//! The monitor's signals for YouTube's address space are compared with what an independent
//! replay of `_derived_youtube_prefix_events.csv` gives: that table lists every announcement and
//! withdrawal of a 208.65.15x prefix in the same files, decoded with mrtparse (another MRT
//! parser), one row per peer and prefix. The replay keeps each peer's route per prefix, as the
//! monitor does, and derives when AS17557's /24 first appeared, when YouTube's own
//! announcements of it and of its /25s first appeared while the hijack was on, how many peers
//! carried the hijack at most, and when the last of them let go.

use censorwatch_bgp::{BgpMonitor, ExpectationSource, MonitorConfig, MrtReader, OriginTable, Signal, Time};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PAKISTAN_TELECOM: u32 = 17557;
const YOUTUBE: u32 = 36561;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/bgp")
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn time(s: &str) -> Time {
    Time::parse(s).unwrap_or_else(|| panic!("not a time: {s}"))
}

/// One row of the derived event table.
#[derive(Debug, Clone)]
struct Row {
    time: Time,
    announce: bool,
    prefix: IpNet,
    peer: (u32, String),
    as_path: String,
    origin: Option<u32>,
}

fn rows() -> Vec<Row> {
    let path = testdata().join("routeviews_2008_youtube/_derived_youtube_prefix_events.csv");
    let mut reader = csv::Reader::from_path(path).expect("derived event table");
    let mut rows = Vec::new();
    for record in reader.records() {
        let r = record.expect("a CSV row");
        let announce = match &r[2] {
            "A" => true,
            "W" => false,
            other => panic!("unknown event type {other}"),
        };
        rows.push(Row {
            time: time(&r[1]),
            announce,
            prefix: net(&r[3]),
            peer: (r[4].parse().unwrap(), r[5].to_string()),
            as_path: r[6].to_string(),
            origin: (!r[7].is_empty()).then(|| r[7].parse().unwrap()),
        });
    }
    assert_eq!(rows.len(), 151, "the table's documented size");
    rows
}

/// What the replay of the table gives.
#[derive(Debug, Default)]
struct Truth {
    /// The first announcement of the /24 by AS17557.
    hijack: Option<Row>,
    /// The most peers carrying it at once.
    hijack_peers_max: usize,
    /// When the last peer carrying it let go.
    hijack_gone: Option<Time>,
    /// For every (prefix, origin): the times it went from no peer to one.
    appeared: BTreeMap<(IpNet, u32), Vec<Time>>,
    /// Each peer's route per prefix at the end.
    routes: HashMap<(IpNet, (u32, String)), Option<u32>>,
}

fn replay(rows: &[Row]) -> Truth {
    let hijacked = net("208.65.153.0/24");
    let mut truth = Truth::default();
    let carriers = |routes: &HashMap<(IpNet, (u32, String)), Option<u32>>, prefix: IpNet, origin: u32| {
        routes
            .iter()
            .filter(|((p, _), o)| *p == prefix && **o == Some(origin))
            .count()
    };
    for row in rows {
        let key = (row.prefix, row.peer.clone());
        let old = truth.routes.get(&key).copied().flatten();
        let new = if row.announce { row.origin } else { None };
        if old == new {
            continue;
        }
        truth.routes.insert(key, new);
        if let Some(origin) = new
            && carriers(&truth.routes, row.prefix, origin) == 1
        {
            truth.appeared.entry((row.prefix, origin)).or_default().push(row.time);
            if row.prefix == hijacked && origin == PAKISTAN_TELECOM && truth.hijack.is_none() {
                truth.hijack = Some(row.clone());
            }
        }
        let hijack_carriers = carriers(&truth.routes, hijacked, PAKISTAN_TELECOM);
        truth.hijack_peers_max = truth.hijack_peers_max.max(hijack_carriers);
        if old == Some(PAKISTAN_TELECOM) && row.prefix == hijacked && hijack_carriers == 0 {
            truth.hijack_gone = Some(row.time);
        }
    }
    truth
}

struct Run {
    signals: Vec<Signal>,
    monitor: BgpMonitor,
}

/// The files read once, for every test here.
fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(read_all)
}

fn read_all() -> Run {
    let expected = OriginTable::load(&testdata().join("pyasn__ipasn_20080501_v12.dat.gz")).expect("pyasn table");
    assert!(expected.len() > 200_000, "a full table: {}", expected.len());
    let config = MonitorConfig::default();
    let mut monitor = BgpMonitor::new(config, expected);
    let mut signals = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata().join("routeviews_2008_youtube"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bz2"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 15);
    for file in &files {
        let report = MrtReader::open(file)
            .expect("open")
            .read_all(&mut |event| monitor.apply(event, &mut signals));
        assert!(report.is_clean(), "{report:?}");
        assert!(report.records > 20_000, "{report:?}");
    }
    monitor.finish(&mut signals);
    Run { signals, monitor }
}

fn inside(prefix: &IpNet, outer: &str) -> bool {
    net(outer).contains(prefix)
}

#[test]
fn the_2008_youtube_hijack_matches_the_derived_event_table() {
    let rows = rows();
    let truth = replay(&rows);
    let Run { signals, monitor } = run();
    let youtube_space: Vec<&Signal> = signals
        .iter()
        .filter(|s| match s {
            Signal::OriginChange(s) => inside(&s.prefix, "208.65.152.0/22"),
            Signal::CounterAnnouncement(s) => inside(&s.prefix, "208.65.152.0/22"),
            Signal::Withdrawn(s) => inside(&s.prefix, "208.65.152.0/22"),
            Signal::Visibility(_) => false,
        })
        .collect();

    // The origin change: AS17557 on 208.65.153.0/24, expected from AS36561, first seen at
    // 18:47:57 through the peer and path the table's first row has.
    let hijack = truth.hijack.as_ref().expect("the table has the hijack");
    assert_eq!(hijack.time.to_string(), "2008-02-24T18:47:57Z");
    let changes: Vec<_> = youtube_space
        .iter()
        .filter_map(|s| match s {
            Signal::OriginChange(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = changes[0];
    assert_eq!((change.prefix, change.origin), (hijack.prefix, PAKISTAN_TELECOM));
    assert_eq!(change.expected_origins, [YOUTUBE]);
    // The May 2008 table has the /24 itself from AS36561 (YouTube kept announcing it after the
    // incident) besides the /22, so the expectation is the /24's own.
    assert_eq!(change.covering_prefix, None);
    assert_eq!(change.expected_from, ExpectationSource::Table);
    assert_eq!(change.time, hijack.time);
    assert_eq!((change.peer_asn, change.peer_ip.to_string()), hijack.peer);
    let path: Vec<String> = change.as_path.iter().map(u32::to_string).collect();
    assert_eq!(path.join(" "), hijack.as_path);

    // The end of it: after the last peer carrying it let go (and the five-minute hold).
    let gone = truth.hijack_gone.expect("the table has the hijack end");
    assert!(
        gone >= time("2008-02-24T21:01:00Z") && gone < time("2008-02-24T21:02:00Z"),
        "{gone}"
    );
    let withdrawn: Vec<_> = youtube_space
        .iter()
        .filter_map(|s| match s {
            Signal::Withdrawn(w) => Some(w),
            _ => None,
        })
        .collect();
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
    let w = withdrawn[0];
    assert_eq!(
        (w.prefix, w.origin, w.since, w.time),
        (hijack.prefix, PAKISTAN_TELECOM, hijack.time, gone)
    );
    assert_eq!(w.peers_max, truth.hijack_peers_max);
    assert!(w.peers_max >= 40, "seen by most of RouteViews' peers: {}", w.peers_max);

    // YouTube fighting back: every YouTube route for the /24 or a prefix inside it that first
    // appeared while the hijack was on (or held), and nothing else.
    let hold_end = Time(gone.seconds() + censorwatch_bgp::DEFAULT_HOLD_SECONDS);
    let want: Vec<(IpNet, Time)> = truth
        .appeared
        .iter()
        .filter(|((prefix, origin), _)| *origin == YOUTUBE && inside(prefix, "208.65.153.0/24"))
        .flat_map(|((prefix, _), times)| times.iter().map(move |t| (*prefix, *t)))
        .filter(|(_, t)| *t >= hijack.time && *t < hold_end)
        .collect();
    let mut got: Vec<(IpNet, Time)> = youtube_space
        .iter()
        .filter_map(|s| match s {
            Signal::CounterAnnouncement(c) => {
                assert_eq!((c.origin, c.against_prefix), (YOUTUBE, hijack.prefix), "{c:?}");
                assert_eq!(c.against_origins, [PAKISTAN_TELECOM]);
                Some((c.prefix, c.time))
            }
            _ => None,
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    let names: Vec<String> = want.iter().map(|(p, t)| format!("{p} {t}")).collect();
    assert_eq!(
        names,
        [
            "208.65.153.0/24 2008-02-24T20:07:25Z",
            "208.65.153.0/25 2008-02-24T20:18:43Z",
            "208.65.153.128/25 2008-02-24T20:18:43Z"
        ],
        "the replay finds YouTube's /24 at about 20:07 and its /25s after"
    );

    // Every peer's route for the /24 at the end is the replay's.
    for origin in [PAKISTAN_TELECOM, YOUTUBE] {
        let replayed = truth
            .routes
            .iter()
            .filter(|((p, _), o)| *p == hijack.prefix && **o == Some(origin))
            .count();
        assert_eq!(monitor.peers_carrying(&hijack.prefix, origin), replayed, "AS{origin}");
    }
    assert!(monitor.active_episodes().iter().all(|e| e.prefix != hijack.prefix));
}

#[test]
fn the_hijacker_is_seen_gaining_the_youtube_slash24() {
    let Run { signals, .. } = run();
    // Visibility is sampled every five minutes for ASes in an origin change: AS17557's first
    // sample after 18:47:57 (at 18:50) already counts the hijacked /24, and its first sample after
    // the hijack's end no longer does.
    let samples: Vec<(Time, u64)> = signals
        .iter()
        .filter_map(|s| match s {
            Signal::Visibility(v) if v.asn == PAKISTAN_TELECOM => Some((v.time, v.slash24)),
            _ => None,
        })
        .collect();
    assert_eq!(
        samples.first().map(|s| s.0),
        Some(time("2008-02-24T18:50:00Z")),
        "{samples:?}"
    );
    assert!(samples[0].1 >= 1);
    assert!(
        samples.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1),
        "reported on change only"
    );
    // YouTube's own /24 count is reported too (an involved AS), and never negative or absurd.
    assert!(
        signals
            .iter()
            .any(|s| matches!(s, Signal::Visibility(v) if v.asn == YOUTUBE)),
        "AS36561 is reported"
    );
}
