//! Properties of the detector over arbitrary inputs: it never panics, every event it reports is
//! well-formed, and feeding the same observations incrementally — in any arrival order, in any
//! chunks, with refreshes in between — gives exactly the batch result.

use censorwatch_detect::{
    Cc, Config, Detector, Event, MIN_TIME, Observation, Pattern, Refused, SignalKind, SignalSample, detect,
};
use censorwatch_model::verdict::{Method, Status};
use proptest::prelude::*;
use std::sync::Arc;

/// 2024-02-01T00:00:00Z.
const T0: i64 = 1_706_745_600;
const HOUR: i64 = 3600;

const DOMAINS: &[&str] = &["x.com", "twimg.com", "example.org", "t.me"];
const METHODS: &[Method] = &[Method::TlsReset, Method::DnsNxdomain, Method::TcpTimeout];

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        4 => Just(Status::Ok),
        4 => Just(Status::Blocked),
        1 => Just(Status::Down),
        1 => Just(Status::Inconclusive),
    ]
}

/// An observation in a 4-day window, on one of 4 domains, 2 countries and 3 networks.
fn observation() -> impl Strategy<Value = Observation> {
    (
        0..4 * 24 * HOUR,
        0..DOMAINS.len(),
        prop::bool::ANY,
        0u32..3,
        status(),
        0..METHODS.len(),
        prop::option::of(0u32..1000),
    )
        .prop_map(|(dt, d, cc, asn, status, m, id)| Observation {
            time: T0 + dt,
            domain: Arc::from(DOMAINS[d]),
            cc: Cc::new(if cc { "PK" } else { "IR" }).unwrap(),
            asn: 100 + asn,
            status,
            method: (status == Status::Blocked).then_some(METHODS[m]),
            id: id.map(|i| Arc::from(format!("m{i}"))),
        })
}

/// Blocks of blocked (or ok) observations: long runs are what opens events, which uniform noise
/// alone rarely does.
fn block() -> impl Strategy<Value = Vec<Observation>> {
    (
        0..3 * 24 * HOUR,
        1..30i64,
        0..DOMAINS.len(),
        0u32..3,
        1usize..8,
        prop::bool::weighted(0.7),
    )
        .prop_map(|(dt, hours, d, asn, per_hour, blocked)| {
            let mut out = Vec::new();
            for h in 0..hours {
                for i in 0..per_hour {
                    let status = if blocked { Status::Blocked } else { Status::Ok };
                    out.push(Observation {
                        time: T0 + dt + h * HOUR + (i as i64 * 397) % HOUR,
                        domain: Arc::from(DOMAINS[d]),
                        cc: Cc::new("PK").unwrap(),
                        asn: 100 + asn,
                        status,
                        method: blocked.then_some(Method::TlsReset),
                        id: None,
                    });
                }
            }
            out
        })
}

fn observations() -> impl Strategy<Value = Vec<Observation>> {
    (
        prop::collection::vec(observation(), 0..300),
        prop::collection::vec(block(), 0..6),
    )
        .prop_map(|(mut noise, blocks)| {
            noise.extend(blocks.into_iter().flatten());
            noise
        })
}

fn signal() -> impl Strategy<Value = SignalSample> {
    (
        0..4 * 24 * HOUR,
        0u32..3,
        prop_oneof![
            Just(SignalKind::Bgp),
            Just(SignalKind::ControlReachability),
            Just(SignalKind::ProbeVolume)
        ],
        prop_oneof![0.0..1000.0f64, Just(0.0), Just(500.0)],
    )
        .prop_map(|(dt, asn, kind, value)| SignalSample {
            time: T0 + dt,
            cc: Cc::new("PK").unwrap(),
            asn: 100 + asn,
            kind,
            value: value.round(),
        })
}

fn end_of(obs: &[Observation]) -> i64 {
    obs.iter().map(|o| o.time).max().unwrap_or(T0) + HOUR
}

fn check_event(e: &Event, config: &Config, now: i64) {
    assert!(!e.asns.is_empty(), "an event without networks: {e:?}");
    assert!(!e.domains.is_empty(), "an event without domains: {e:?}");
    if let Some(end) = e.end {
        assert!(e.start < end, "start {} not before end {end}: {e:?}", e.start);
    }
    assert!(e.start >= MIN_TIME && e.start <= now, "{e:?}");
    assert!(e.blocked > 0 && e.blocked <= e.measurements, "{e:?}");
    assert!((0.0..=1.0).contains(&e.confidence), "{e:?}");
    assert!(e.method.is_some(), "{e:?}");
    assert!(e.id.starts_with(&format!("{}-", e.cc)), "{e:?}");
    assert!(e.first_evidence.time >= e.start || e.first_evidence.time / config.bin >= e.start / config.bin - 1);
    let mut last_asn = None;
    for a in &e.asns {
        assert!(a.start >= e.start, "network starts before its event: {e:?}");
        match (a.end, e.end) {
            (Some(ae), Some(ee)) => assert!(a.start < ae && ae <= ee, "{e:?}"),
            (Some(ae), None) => assert!(a.start < ae, "{e:?}"),
            (None, Some(_)) => panic!("an open network in a closed event: {e:?}"),
            (None, None) => {}
        }
        assert!(!a.domains.is_empty() && a.blocked > 0, "{e:?}");
        assert!(
            last_asn.is_none_or(|l: (i64, u32)| l < (a.start, a.asn)),
            "networks out of order: {e:?}"
        );
        last_asn = Some((a.start, a.asn));
        if a.pattern == Pattern::Intermittent {
            assert!(a.cycles >= config.min_cycles, "{e:?}");
        }
    }
    // Serializes to the documented shape.
    let json = serde_json::to_value(e).expect("serializable");
    for field in [
        "id",
        "domain",
        "cc",
        "asns",
        "method",
        "start",
        "end",
        "pattern",
        "confidence",
        "measurements",
        "first_evidence",
    ] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn batch_events_are_well_formed(obs in observations(), signals in prop::collection::vec(signal(), 0..200)) {
        let config = Config::default();
        let now = end_of(&obs);
        let report = detect(&obs, &signals, &config, now).unwrap();
        for e in &report.events {
            check_event(e, &config, now);
        }
        for s in &report.series_events {
            prop_assert!(s.end.is_none_or(|end| s.start < end));
            prop_assert!(s.blocked <= s.decisive && s.decisive <= s.measurements);
        }
        // Every per-network series event is inside exactly one country event of its platform.
        for s in &report.series_events {
            let holders = report.events.iter().filter(|e| {
                e.cc == s.key.cc && e.platform == s.platform && e.asns.iter().any(|a| a.asn == s.key.asn
                    && a.domains.contains(&s.key.domain))
            });
            prop_assert!(holders.count() >= 1);
        }
        for o in &report.outages {
            prop_assert!(o.end.is_none_or(|end| o.start < end));
            prop_assert!(!o.alerts.is_empty());
        }
    }

    #[test]
    fn incremental_equals_batch_in_any_order_and_chunking(
        obs in observations().prop_shuffle(),
        signals in prop::collection::vec(signal(), 0..100),
        chunk in 1usize..200,
    ) {
        let config = Config { lateness: i64::MAX, ..Config::default() };
        let now = end_of(&obs);
        let batch = detect(&obs, &signals, &config, now).unwrap();
        let mut d = Detector::new(config.clone()).unwrap();
        for s in &signals {
            d.observe_signal(s).unwrap();
        }
        for (i, piece) in obs.chunks(chunk).enumerate() {
            for o in piece {
                d.observe(o).unwrap();
            }
            // Refresh between chunks at a clock that does not run ahead of the data.
            let clock = piece.iter().map(|o| o.time).max().unwrap_or(T0);
            if i % 2 == 0 {
                d.refresh(clock);
            }
        }
        prop_assert_eq!(d.events(now), batch.events);
        prop_assert_eq!(d.series_events(now), batch.series_events);
        prop_assert_eq!(d.outages(now), batch.outages);
    }

    #[test]
    fn nothing_panics_on_any_time_or_value(
        times in prop::collection::vec(any::<i64>(), 0..50),
        values in prop::collection::vec(any::<f64>(), 0..50),
        bin in 300i64..=86_400,
    ) {
        let mut d = Detector::new(Config::with_bin(bin).unwrap()).unwrap();
        for (i, &t) in times.iter().enumerate() {
            let o = Observation {
                time: t,
                domain: Arc::from("x.com"),
                cc: Cc::new("PK").unwrap(),
                asn: i as u32 % 2,
                status: Status::Blocked,
                method: Some(Method::TlsReset),
                id: None,
            };
            let _ = d.observe(&o);
            if i % 7 == 0 {
                d.refresh(t);
            }
        }
        for (i, &v) in values.iter().enumerate() {
            let s = SignalSample { time: T0 + i as i64 * 600, cc: Cc::new("PK").unwrap(), asn: 1, kind: SignalKind::Bgp, value: v };
            // A bad value is refused as such; a good one may still be refused for its time,
            // after the clock was set by the arbitrary times above.
            let bad_value = matches!(d.observe_signal(&s), Err(Refused::BadValue(_)));
            prop_assert_eq!(bad_value, !(v.is_finite() && v >= 0.0));
        }
        let now = T0 + 30 * 24 * HOUR;
        let _ = d.events(now);
        let _ = d.outages(now);
    }
}
