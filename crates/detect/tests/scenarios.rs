//! Scenario tests: hand-built timelines for each situation the detector must handle (steady,
//! intermittent, per-ISP staggered starts, related domains, gaps, sparse data, late data, noisy
//! clean networks, a lone burst of failures, outages at IODA's thresholds), and the simulator's
//! scenarios scored kind by kind.

use censorwatch_detect::eval::evaluate;
use censorwatch_detect::sim::{ScenarioKind, SimConfig, generate};
use censorwatch_detect::{
    Cc, Config, Detector, Event, Level, Observation, Pattern, Refused, SignalKind, SignalSample, detect,
};
use censorwatch_model::verdict::{Method, Status};
use std::sync::Arc;

/// 2024-02-01T00:00:00Z.
const T0: i64 = 1_706_745_600;
const HOUR: i64 = 3600;

fn pk() -> Cc {
    Cc::new("PK").unwrap()
}

/// `per_hour` measurements of `domain` on `asn` in each hour `from..to` (hours after T0), spread
/// over the hour; `blocked(h, i)` says which are blocked.
fn hours(
    domain: &str,
    asn: u32,
    from: i64,
    to: i64,
    per_hour: i64,
    blocked: impl Fn(i64, i64) -> bool,
) -> Vec<Observation> {
    let mut out = Vec::new();
    for h in from..to {
        for i in 0..per_hour {
            let is_blocked = blocked(h, i);
            out.push(Observation {
                time: T0 + h * HOUR + i * HOUR / per_hour + 7,
                domain: Arc::from(domain),
                cc: pk(),
                asn,
                status: if is_blocked { Status::Blocked } else { Status::Ok },
                method: is_blocked.then_some(Method::TlsReset),
                id: Some(Arc::from(format!("{domain}-{asn}-{h}-{i}"))),
            });
        }
    }
    out
}

/// A clean stretch, a block during hours `[on, off)`, and a clean stretch until `end`.
fn block(domain: &str, asn: u32, on: i64, off: i64, end: i64, per_hour: i64) -> Vec<Observation> {
    hours(domain, asn, 0, end, per_hour, |h, _| (on..off).contains(&h))
}

fn events(obs: &[Observation], end_hour: i64) -> Vec<Event> {
    detect(obs, &[], &Config::default(), T0 + end_hour * HOUR)
        .unwrap()
        .events
}

fn hour_of(t: i64) -> i64 {
    (t - T0).div_euclid(HOUR)
}

#[test]
fn steady_block_is_one_event_with_its_start_and_end() {
    let obs = block("x.com", 1, 48, 96, 150, 6);
    let ev = events(&obs, 150);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    let e = &ev[0];
    assert_eq!(hour_of(e.start), 48);
    assert_eq!(e.end.map(hour_of), Some(96));
    assert_eq!(e.pattern, Pattern::Steady);
    assert_eq!(e.method, Some(Method::TlsReset));
    assert_eq!(e.domain, "x.com");
    assert_eq!(e.cc, pk());
    assert_eq!(e.asns.len(), 1);
    assert_eq!(e.blocked, 48 * 6);
    assert!(e.confidence > 0.95, "{}", e.confidence);
    // Back-dated to the first blocked measurement, which is named.
    assert_eq!(e.first_evidence.time, T0 + 48 * HOUR + 7);
    assert_eq!(e.first_evidence.id.as_deref(), Some("x.com-1-48-0"));
    assert_eq!(e.id, format!("PK-twitter-{}", T0 + 48 * HOUR));
}

#[test]
fn a_block_that_lasts_is_open() {
    let obs = block("x.com", 1, 48, 1000, 100, 6);
    let ev = events(&obs, 100);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].end, None);
    assert_eq!(ev[0].asns[0].end, None);
    let json = serde_json::to_value(&ev[0]).unwrap();
    assert!(json["end"].is_null());
}

#[test]
fn a_short_clear_spell_does_not_close_an_event_but_a_long_one_does() {
    // Two hours of access inside a block: one event (with cycles counted); sixteen hours (more
    // than `close_after`, 12 h): two.
    let obs = hours("example.org", 7, 0, 200, 6, |h, _| {
        (40..60).contains(&h) || (62..80).contains(&h) || (96..116).contains(&h)
    });
    let ev = events(&obs, 200);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert_eq!((hour_of(ev[0].start), ev[0].end.map(hour_of)), (40, Some(80)));
    assert_eq!((hour_of(ev[1].start), ev[1].end.map(hour_of)), (96, Some(116)));
}

#[test]
fn a_gap_in_the_data_neither_closes_nor_splits_an_event() {
    // The probe is off for 20 hours in the middle of the block.
    let obs: Vec<Observation> = block("t.me", 3, 30, 90, 130, 5)
        .into_iter()
        .filter(|o| !(50..70).contains(&hour_of(o.time)))
        .collect();
    let ev = events(&obs, 130);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!((hour_of(ev[0].start), ev[0].end.map(hour_of)), (30, Some(90)));
}

#[test]
fn a_gap_at_a_boundary_puts_the_change_in_its_middle() {
    // Clear until hour 40, nothing measured in 40..46, blocked from 46: the start could be
    // anywhere in the gap; the detector says its middle rather than its end.
    let obs: Vec<Observation> = block("t.me", 3, 43, 90, 130, 5)
        .into_iter()
        .filter(|o| !(40..46).contains(&hour_of(o.time)))
        .collect();
    let ev = events(&obs, 130);
    assert_eq!(ev.len(), 1);
    assert_eq!(hour_of(ev[0].start), 43);
    // The first evidence is still the first blocked measurement.
    assert_eq!(hour_of(ev[0].first_evidence.time), 46);
}

#[test]
fn intermittent_block_is_one_event_with_cycles() {
    // 3 hours on, 2 off, 12 times: "available in short cycles".
    let obs = hours("facebook.com", 9, 0, 140, 6, |h, _| {
        (30..90).contains(&h) && (h - 30) % 5 < 3
    });
    let ev = events(&obs, 140);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    let e = &ev[0];
    assert_eq!(e.pattern, Pattern::Intermittent);
    assert_eq!(e.asns[0].pattern, Pattern::Intermittent);
    assert_eq!(e.asns[0].cycles, 12);
    assert_eq!(hour_of(e.start), 30);
    assert_eq!(e.end.map(hour_of), Some(88));
}

#[test]
fn networks_and_related_domains_of_a_country_make_one_event() {
    // x.com on AS1 from hour 20, twimg.com on AS2 from hour 30, t.co on AS3 from hour 26 to 70;
    // AS4 is never blocked; and in another country the same platform is blocked separately.
    let mut obs = block("x.com", 1, 20, 80, 120, 5);
    obs.extend(block("pbs.twimg.com", 2, 30, 90, 120, 5));
    obs.extend(block("t.co", 3, 26, 70, 120, 5));
    obs.extend(block("x.com", 4, 0, 0, 120, 5));
    let mut other: Vec<Observation> = block("twitter.com", 1, 50, 60, 120, 5);
    for o in &mut other {
        o.cc = Cc::new("IR").unwrap();
    }
    obs.extend(other);
    let ev = events(&obs, 120);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    let pk_event = ev.iter().find(|e| e.cc == pk()).unwrap();
    assert_eq!(pk_event.domain, "x.com");
    let spans: Vec<(u32, i64, Option<i64>)> = pk_event
        .asns
        .iter()
        .map(|a| (a.asn, hour_of(a.start), a.end.map(hour_of)))
        .collect();
    assert_eq!(spans, [(1, 20, Some(80)), (3, 26, Some(70)), (2, 30, Some(90))]);
    assert_eq!((hour_of(pk_event.start), pk_event.end.map(hour_of)), (20, Some(90)));
    let domains: Vec<&str> = pk_event.domains.iter().map(|d| d.as_ref()).collect();
    assert_eq!(domains, ["pbs.twimg.com", "t.co", "x.com"]);
    let ir = ev.iter().find(|e| e.cc.as_str() == "IR").unwrap();
    assert_eq!(ir.asns.len(), 1);
    assert_eq!(ir.domain, "x.com");
}

#[test]
fn a_networks_domains_together_place_its_end() {
    // Blocked until hour 60 on two domains; one is measured again at once, the other not for
    // three hours. Together they say the block ended at 60.
    let mut obs = block("instagram.com", 5, 20, 60, 100, 4);
    obs.extend(
        block("cdninstagram.com", 5, 20, 60, 100, 4)
            .into_iter()
            .filter(|o| !(60..63).contains(&hour_of(o.time))),
    );
    let ev = events(&obs, 100);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].asns[0].end.map(hour_of), Some(60));
}

#[test]
fn sparse_data_still_finds_the_block() {
    // One to three measurements an hour, some hours none.
    let obs = hours("signal.org", 11, 0, 200, 3, |h, _| (60..140).contains(&h));
    let sparse: Vec<Observation> = obs
        .into_iter()
        .filter(|o| {
            let h = hour_of(o.time);
            let i = (o.time - T0 - h * HOUR) / (HOUR / 3);
            i < (h * 7 % 3) + 1 && h % 10 != 3
        })
        .collect();
    let ev = events(&sparse, 200);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert!((hour_of(ev[0].start) - 60).abs() <= 1, "{}", hour_of(ev[0].start));
    assert!((ev[0].end.map(hour_of).unwrap() - 140).abs() <= 1);
}

#[test]
fn noisy_clean_network_and_a_lone_burst_raise_nothing() {
    // 10% of measurements wrongly blocked, and one hour in which every measurement fails.
    let obs = hours("youtube.com", 13, 0, 300, 8, |h, i| (h * 8 + i) % 10 == 3 || h == 150);
    assert!(events(&obs, 300).is_empty());
}

#[test]
fn late_data_back_dates_the_start_and_matches_the_batch() {
    let obs = block("whatsapp.com", 21, 40, 200, 80, 6);
    // The detector sees hours 0..40 and 46..80 first; hours 40..46 arrive a day and a half late
    // (inside the two-day lateness window).
    let (late, on_time): (Vec<Observation>, Vec<Observation>) =
        obs.iter().cloned().partition(|o| (40..46).contains(&hour_of(o.time)));
    let mut d = Detector::new(Config::default()).unwrap();
    for o in &on_time {
        d.observe(o).unwrap();
        d.refresh(o.time);
    }
    let before = d.events(T0 + 80 * HOUR);
    assert_eq!(before.len(), 1);
    assert_eq!(hour_of(before[0].start), 43, "middle of the unmeasured hours");
    for o in &late {
        d.observe(o).unwrap();
    }
    let after = d.events(T0 + 80 * HOUR);
    assert_eq!(hour_of(after[0].start), 40);
    assert_eq!(after, events(&obs, 80));
}

#[test]
fn data_too_late_from_the_future_or_out_of_range_is_refused_without_effect() {
    let mut d = Detector::new(Config::default()).unwrap();
    let obs = block("x.com", 1, 10, 30, 60, 4);
    for o in &obs {
        d.observe(o).unwrap();
    }
    let before = d.events(T0 + 60 * HOUR);
    let mut old = obs[0].clone();
    old.time = T0 + 60 * HOUR - 3 * 24 * HOUR;
    assert!(matches!(d.observe(&old), Err(Refused::TooLate { .. })));
    let mut future = obs[0].clone();
    future.time = T0 + 400 * 24 * HOUR;
    assert!(matches!(d.observe(&future), Err(Refused::FromTheFuture { .. })));
    let mut ancient = obs[0].clone();
    ancient.time = 0;
    assert!(matches!(d.observe(&ancient), Err(Refused::TimeOutOfRange(0))));
    let bad = SignalSample {
        time: T0,
        cc: pk(),
        asn: 1,
        kind: SignalKind::Bgp,
        value: f64::NAN,
    };
    assert!(matches!(d.observe_signal(&bad), Err(Refused::BadValue(_))));
    assert_eq!(d.events(T0 + 60 * HOUR), before);
    let stats = d.stats();
    assert_eq!((stats.too_late, stats.refused), (1, 3));
    // Each refusal says what happened.
    let message = d.observe(&old).unwrap_err().to_string();
    assert!(message.contains("older than the newest"), "{message}");
}

#[test]
fn an_invalid_config_is_refused() {
    assert!(Config::with_bin(60).is_err());
    assert!(Config::with_bin(2 * 86_400).is_err());
    let bad = Config {
        clear_rate: 0.9,
        ..Config::default()
    };
    assert!(Detector::new(bad.clone()).is_err());
    assert!(detect(&[], &[], &bad, T0).is_err());
}

/// BGP-visible /24s of AS 50: 1000 every 30 minutes for 3 days, then `level` for 6 hours.
fn bgp_drop(level: f64) -> Vec<SignalSample> {
    (0..(3 * 24 + 12) * 2)
        .map(|i| {
            let t = T0 + i * HOUR / 2;
            let dropped = (72 * 2..78 * 2).contains(&i);
            SignalSample {
                time: t,
                cc: pk(),
                asn: 50,
                kind: SignalKind::Bgp,
                value: if dropped { level } else { 1000.0 },
            }
        })
        .collect()
}

#[test]
fn outages_follow_iodas_bgp_thresholds() {
    let now = T0 + 84 * HOUR;
    // IODA: below 99% of the 24-hour median is a warning, below 50% critical.
    for (level, expected) in [
        (995.0, None),
        (980.0, Some(Level::Warning)),
        (600.0, Some(Level::Warning)),
        (400.0, Some(Level::Critical)),
    ] {
        let report = detect(&[], &bgp_drop(level), &Config::default(), now).unwrap();
        let got = report.outages.first().map(|o| o.level);
        assert_eq!(got, expected, "BGP at {level} of 1000: {report:#?}");
        if let Some(o) = report.outages.first() {
            assert_eq!(hour_of(o.start), 72);
            assert_eq!(o.end.map(hour_of), Some(78));
            assert_eq!(o.asns.len(), 1);
            assert_eq!(o.asns[0].asn, 50);
            assert_eq!(o.signals, [SignalKind::Bgp]);
            assert!(o.country_wide, "the only network is the whole country");
        }
    }
}

#[test]
fn a_shutdown_is_an_outage_not_a_block() {
    // Measurements stop and BGP collapses for 10 hours.
    let mut obs = hours("x.com", 50, 0, 8 * 24, 20, |_, _| false);
    obs.retain(|o| !(150..160).contains(&hour_of(o.time)));
    let signals: Vec<SignalSample> = (0..8 * 24)
        .map(|h| SignalSample {
            time: T0 + h * HOUR,
            cc: pk(),
            asn: 50,
            kind: SignalKind::Bgp,
            value: if (150..160).contains(&h) { 30.0 } else { 800.0 },
        })
        .collect();
    let report = detect(&obs, &signals, &Config::default(), T0 + 8 * 24 * HOUR).unwrap();
    assert!(report.events.is_empty());
    assert_eq!(report.outages.len(), 1, "{:#?}", report.outages);
    let o = &report.outages[0];
    assert_eq!(o.level, Level::Critical);
    assert_eq!((hour_of(o.start), o.end.map(hour_of)), (150, Some(160)));
    assert!(o.signals.contains(&SignalKind::Bgp) && o.signals.contains(&SignalKind::ProbeVolume));
}

/// The lab's pk-2024 networks in miniature: five networks measuring 3 domains an hour for 3
/// days (one of them also 20 an hour of another domain), AS 24499 silent during hours `dark`.
fn sparse_country(dark: std::ops::Range<i64>) -> Vec<Observation> {
    let mut obs = Vec::new();
    for asn in [17557, 45669, 59257, 24499, 23674] {
        for domain in ["x.com", "twitter.com", "abs.twimg.com"] {
            obs.extend(hours(domain, asn, 0, 72, 1, |_, _| false));
        }
    }
    obs.extend(hours("example.org", 23674, 0, 72, 20, |_, _| false));
    obs.retain(|o| !(o.asn == 24499 && dark.contains(&hour_of(o.time))));
    obs.sort_by_key(|o| o.time);
    obs
}

#[test]
fn the_end_of_the_data_is_not_an_outage() {
    let obs = sparse_country(0..0);
    // Judged a month after the last measurement (plain `censorwatch events` on an old
    // dataset), or by a live detector whose ingest stalled: the bins after the data are
    // unknown, not empty.
    for now in [T0 + 72 * HOUR, T0 + 73 * HOUR, T0 + 30 * 24 * HOUR] {
        let report = detect(&obs, &[], &Config::default(), now).unwrap();
        assert!(report.outages.is_empty(), "now {now}: {:#?}", report.outages);
        let mut d = Detector::new(Config::default()).unwrap();
        for o in &obs {
            d.observe(o).unwrap();
        }
        assert!(d.outages(now).is_empty(), "incremental, now {now}");
    }
}

#[test]
fn a_sparse_network_that_goes_dark_while_the_others_measure_is_an_outage() {
    // Telenor in pk-2024: 3 an hour, dark 12 hours from hour 54.
    let obs = sparse_country(54..66);
    let report = detect(&obs, &[], &Config::default(), T0 + 30 * 24 * HOUR).unwrap();
    assert_eq!(report.outages.len(), 1, "{:#?}", report.outages);
    let o = &report.outages[0];
    assert_eq!((hour_of(o.start), o.end.map(hour_of)), (54, Some(66)));
    assert_eq!(o.asns.len(), 1);
    assert_eq!(o.asns[0].asn, 24499);
    assert_eq!(o.signals, [SignalKind::ProbeVolume]);
    assert_eq!(o.level, Level::Warning, "probe volume alone is a warning at most");
    assert!(!o.country_wide);
    assert!(report.events.is_empty());
    // Still dark when the others' data ends (hour 72): open, judged up to the newest
    // measurement less the settling time; but not before seven silent hours have been seen.
    let still_dark = sparse_country(60..100);
    let report = detect(&still_dark, &[], &Config::default(), T0 + 30 * 24 * HOUR).unwrap();
    assert_eq!(report.outages.len(), 1, "{:#?}", report.outages);
    assert_eq!((hour_of(report.outages[0].start), report.outages[0].end), (60, None));
    // At 67:29 the hours 60 to 65 are judged (hour 66 ended less than 30 minutes ago).
    let settle = Config::default().outage.volume_settle;
    assert_eq!(settle, HOUR / 2);
    let early = detect(&still_dark, &[], &Config::default(), T0 + 67 * HOUR + settle - 60).unwrap();
    assert!(
        early.outages.is_empty(),
        "six silent hours judged: {:#?}",
        early.outages
    );
    let later = detect(&still_dark, &[], &Config::default(), T0 + 67 * HOUR + settle).unwrap();
    assert_eq!(later.outages.len(), 1);
    assert_eq!(hour_of(later.outages[0].start), 60);
}

#[test]
fn probes_silent_on_a_network_whose_routes_and_hosts_answer_are_not_an_outage() {
    // The same silence, but BGP shows the network's /24s all along and its hosts answer the
    // control servers: its probes were off, the network was not.
    let obs = sparse_country(54..66);
    let mut signals = Vec::new();
    for h in 0..72 {
        for (kind, value) in [(SignalKind::Bgp, 900.0), (SignalKind::ControlReachability, 500.0)] {
            signals.push(SignalSample {
                time: T0 + h * HOUR + 60,
                cc: pk(),
                asn: 24499,
                kind,
                value,
            });
        }
    }
    let report = detect(&obs, &signals, &Config::default(), T0 + 72 * HOUR).unwrap();
    assert!(report.outages.is_empty(), "{:#?}", report.outages);
    // BGP collapsing with it makes it one again, critical.
    for s in &mut signals {
        if s.kind == SignalKind::Bgp && (54..66).contains(&hour_of(s.time)) {
            s.value = 10.0;
        }
    }
    let report = detect(&obs, &signals, &Config::default(), T0 + 72 * HOUR).unwrap();
    assert_eq!(report.outages.len(), 1, "{:#?}", report.outages);
    assert_eq!(report.outages[0].level, Level::Critical);
}

#[test]
fn simulated_scenarios_kind_by_kind() {
    let sim = generate(&SimConfig {
        seed: 21,
        ..SimConfig::default()
    });
    let report = evaluate(&sim, &Config::default()).unwrap();
    assert!(report.missed_targets.is_empty(), "{:?}", report.missed_targets);
    assert!(report.incremental_matches_batch);
    for kind in ScenarioKind::ALL {
        let k = &report.scenarios[kind.as_str()];
        assert!(k.scenarios > 0, "{kind:?}");
        if kind.is_clean() {
            assert_eq!(k.detected_events, 0, "{kind:?}: {k:?}");
            assert_eq!(k.country_events, 0, "{kind:?}: {k:?}");
            continue;
        }
        // Every true block found, nothing else, one country event per block, bounds within a
        // bin on average, and the pattern right.
        assert_eq!(k.matched, k.truth_events, "{kind:?}: {k:?}");
        assert_eq!(k.detected_events, k.truth_events, "{kind:?}: {k:?}");
        assert_eq!(k.country_events, k.scenarios, "{kind:?}: {k:?}");
        assert!(k.start_error_bins <= 1.0 && k.end_error_bins <= 1.0, "{kind:?}: {k:?}");
        assert!(k.pattern_right as f64 >= 0.9 * k.matched as f64, "{kind:?}: {k:?}");
    }
    // Shutdowns: every network that went dark is found, sparse ones by their silence, nothing
    // else is, and nothing is called a block.
    assert_eq!(report.outage.recall, 1.0, "{:?}", report.outage);
    assert_eq!(report.outage.precision, 1.0, "{:?}", report.outage);
    let sparse = &report.scenarios["sparse_outage"];
    assert!(sparse.truth_outages > 0);
    assert_eq!(sparse.matched_outages, sparse.truth_outages, "{sparse:?}");
    assert_eq!(sparse.detected_outages, sparse.truth_outages, "{sparse:?}");
    assert_eq!(report.outage.blocking_events_during_outages, 0);
    // The simulator's truth is what the scenarios promise.
    for s in &sim.scenarios {
        match s.kind {
            ScenarioKind::Intermittent => assert!(s.truth.iter().any(|t| t.pattern == Pattern::Intermittent)),
            ScenarioKind::Staggered => {
                let starts: std::collections::BTreeSet<i64> = s.truth.iter().map(|t| t.start).collect();
                assert!(starts.len() > 1 || s.truth.len() < 2, "{s:?}");
            }
            ScenarioKind::Outage | ScenarioKind::SparseOutage => {
                assert!(!s.outages.is_empty() && s.truth.is_empty())
            }
            k if k.is_clean() => assert!(s.truth.is_empty()),
            _ => assert!(!s.truth.is_empty()),
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_timeline() {
    let a = generate(&SimConfig::default());
    let b = generate(&SimConfig::default());
    assert_eq!(a.observations, b.observations);
    assert_eq!(a.signals, b.signals);
    assert_eq!(a.scenarios, b.scenarios);
    let c = generate(&SimConfig {
        seed: 2,
        ..SimConfig::default()
    });
    assert_ne!(a.observations, c.observations);
}

#[test]
fn results_round_trip_through_json_and_the_detector_can_serve_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Detector>();
    let mut obs = block("x.com", 1, 20, 60, 200, 5);
    obs.extend(hours("t.co", 2, 0, 200, 5, |h, _| (30..120).contains(&h) && h % 6 < 3));
    let report = detect(&obs, &bgp_drop(300.0), &Config::default(), T0 + 200 * HOUR).unwrap();
    assert_eq!(report.events.len(), 1);
    assert_eq!(report.outages.len(), 1);
    let json = serde_json::to_string(&report).unwrap();
    let back: censorwatch_detect::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn bins_per_network_and_per_country_with_intervals() {
    let mut obs = block("x.com", 1, 2, 4, 6, 5);
    obs.extend(block("x.com", 2, 3, 6, 6, 3));
    let mut d = Detector::new(Config::default()).unwrap();
    for o in &obs {
        d.observe(o).unwrap();
    }
    let key = censorwatch_detect::SeriesKey {
        domain: Arc::from("x.com"),
        cc: pk(),
        asn: 1,
    };
    let one = d.series_bins(&key);
    assert_eq!(one.len(), 6);
    assert_eq!((one[2].blocked, one[2].ok), (5, 0));
    assert_eq!(one[2].blocked_share, Some(1.0));
    let (lo, hi) = one[2].interval.unwrap();
    assert!(lo > 0.5 && hi == 1.0, "{lo} {hi}");
    assert_eq!(one[2].state, censorwatch_detect::BinState::Blocked);
    // Five ok measurements cannot rule out a blocked share of 20% (Wilson upper bound 0.43).
    assert_eq!(one[0].state, censorwatch_detect::BinState::Uncertain);
    let country = d.country_bins("x.com", pk());
    assert_eq!(country.len(), 6);
    assert_eq!(country[0].start, T0);
    assert_eq!((country[3].blocked, country[3].ok), (8, 0));
    assert_eq!((country[4].blocked, country[4].ok), (3, 5));
    assert_eq!(country[4].state, censorwatch_detect::BinState::Uncertain);
    assert!(d.country_bins("t.me", pk()).is_empty());
}
