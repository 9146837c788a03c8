//! Multi-ISP replays on a compressed clock: several emulated ISPs side by side, each with its own
//! ASN label, censoring with its own technique on its own schedule of *simulated* time. Each round
//! (one simulated step) every ISP's probe measures the targets; the measurements are written as
//! OONI JSONL with `measurement_start_time` on the simulated clock and `probe_asn`/`probe_cc` from
//! the ISP's label (as the control's `/whoami` tells the probe), and the schedule is written as the
//! ground truth — the input on which the event detector (`censorwatch ingest` + `events`) is
//! measured.
//!
//! `pk-2024` follows the shape of Pakistan's February 2024 restriction of X (DESIGN.md): one ISP
//! resets the SNI, one spoofs DNS in on/off cycles, one throttles, one goes dark for half a day,
//! one stays clean. The schedule is illustrative (not a record of who did what when).
//!
//! A network that is dark cannot submit: before measuring, the probe checks that it can reach the
//! collector (the lab's control address); when it cannot, nothing is written for that round, as
//! nothing would reach a real collector.

use crate::censor::{Censor, PacketRule};
use crate::hosts::BLOCKPAGE_IP;
use crate::lab::Lab;
use crate::netns::LabError;
use crate::topology::{CONTROL, CONTROL_PORT, IspLabel};
use censorwatch_censor::{Action, DnsAction, DnsRule, FlowRule, Layer, NameMatch};
use censorwatch_model::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

/// What an ISP does to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Technique {
    /// Nothing.
    Clean,
    /// Resets TLS flows by SNI (x.com, twitter.com).
    SniReset,
    /// Answers DNS for x.com and twitter.com with the blockpage server's address.
    DnsSpoof,
    /// Throttles TLS flows of x.com, twitter.com and *.twimg.com to 150 kbit/s.
    Throttle,
    /// Drops everything from its clients (an outage, not a block).
    Dark,
}

impl Technique {
    /// The censor that does it.
    pub fn censor(self) -> Censor {
        let names = || [NameMatch::exact("x.com"), NameMatch::exact("twitter.com")];
        match self {
            Technique::Clean => Censor::none(),
            Technique::SniReset => Censor {
                dpi: names()
                    .into_iter()
                    .map(|n| FlowRule::always(n, Layer::Sni, Action::Reset))
                    .collect(),
                ..Censor::none()
            },
            Technique::DnsSpoof => Censor {
                dns: names()
                    .into_iter()
                    .map(|n| DnsRule::always(n, DnsAction::Spoof(vec![IpAddr::V4(BLOCKPAGE_IP)])))
                    .collect(),
                ..Censor::none()
            },
            Technique::Throttle => Censor {
                dpi: names()
                    .into_iter()
                    .chain([NameMatch::suffix("twimg.com")])
                    .map(|n| {
                        FlowRule::always(
                            n,
                            Layer::Sni,
                            Action::Throttle {
                                bits_per_second: crate::scenario::THROTTLE_BPS,
                            },
                        )
                    })
                    .collect(),
                ..Censor::none()
            },
            Technique::Dark => Censor {
                packets: vec![PacketRule::Blackout],
                ..Censor::none()
            },
        }
    }

    /// The verdict method a block by this technique should get (`None`: not a block).
    pub fn method(self) -> Option<Method> {
        match self {
            Technique::SniReset => Some(Method::TlsReset),
            Technique::DnsSpoof => Some(Method::DnsSpoofed),
            Technique::Throttle => Some(Method::Throttled),
            Technique::Clean | Technique::Dark => None,
        }
    }

    /// The domains it touches.
    pub fn domains(self) -> &'static [&'static str] {
        match self {
            Technique::SniReset | Technique::DnsSpoof => &["x.com", "twitter.com"],
            Technique::Throttle => &["x.com", "twitter.com", "abs.twimg.com"],
            Technique::Clean | Technique::Dark => &[],
        }
    }

    /// Its name in the ground truth.
    pub fn name(self) -> &'static str {
        match self {
            Technique::Clean => "clean",
            Technique::SniReset => "sni-reset",
            Technique::DnsSpoof => "dns-spoof",
            Technique::Throttle => "throttle",
            Technique::Dark => "dark",
        }
    }
}

/// When an ISP applies its technique, in simulated Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start (inclusive).
    pub start: i64,
    /// End (exclusive); `None`: until the end of the replay.
    pub end: Option<i64>,
    /// On/off cycles within the window (seconds on, seconds off), starting with on.
    pub cycle: Option<(i64, i64)>,
}

impl Window {
    /// Whether the technique is in force at `t`.
    pub fn active(&self, t: i64) -> bool {
        if t < self.start || self.end.is_some_and(|e| t >= e) {
            return false;
        }
        match self.cycle {
            None => true,
            Some((on, off)) => (t - self.start).rem_euclid((on + off).max(1)) < on,
        }
    }
}

/// One ISP of a replay.
#[derive(Debug, Clone)]
pub struct ReplayIsp {
    /// Its label.
    pub label: IspLabel,
    /// Its technique.
    pub technique: Technique,
    /// When.
    pub window: Option<Window>,
}

impl ReplayIsp {
    /// What it does at `t`.
    pub fn at(&self, t: i64) -> Technique {
        match self.window {
            Some(w) if w.active(t) => self.technique,
            _ => Technique::Clean,
        }
    }
}

/// A replay: ISPs, the simulated clock, the targets.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Its name.
    pub name: &'static str,
    /// The ISPs.
    pub isps: Vec<ReplayIsp>,
    /// Simulated start (Unix seconds).
    pub start: i64,
    /// Simulated end (exclusive).
    pub end: i64,
    /// Simulated seconds per round.
    pub step: i64,
    /// URLs measured each round from every ISP.
    pub targets: Vec<&'static str>,
}

fn ts(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .expect("a valid built-in timestamp")
}

fn iso(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn ooni_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `pk-2024`: five Pakistani ISPs over 16–19 February 2024, hourly rounds (`step_hours` changes
/// the round length).
pub fn pk2024(step_hours: i64) -> Replay {
    let block = ts("2024-02-17T18:00:00Z");
    let isp = |name: &str, asn: u32, technique: Technique, window: Option<Window>| ReplayIsp {
        label: IspLabel::new(name, asn, "PK"),
        technique,
        window,
    };
    Replay {
        name: "pk-2024",
        isps: vec![
            isp(
                "PTCL",
                17557,
                Technique::SniReset,
                Some(Window {
                    start: block,
                    end: None,
                    cycle: None,
                }),
            ),
            isp(
                "Jazz",
                45669,
                Technique::DnsSpoof,
                Some(Window {
                    start: block,
                    end: None,
                    cycle: Some((6 * 3600, 6 * 3600)),
                }),
            ),
            isp(
                "Zong",
                59257,
                Technique::Throttle,
                Some(Window {
                    start: ts("2024-02-17T20:00:00Z"),
                    end: None,
                    cycle: None,
                }),
            ),
            isp(
                "Telenor",
                24499,
                Technique::Dark,
                Some(Window {
                    start: ts("2024-02-18T06:00:00Z"),
                    end: Some(ts("2024-02-18T18:00:00Z")),
                    cycle: None,
                }),
            ),
            isp("Nayatel", 23674, Technique::Clean, None),
        ],
        start: ts("2024-02-16T00:00:00Z"),
        end: ts("2024-02-19T00:00:00Z"),
        step: step_hours.clamp(1, 24) * 3600,
        targets: vec!["https://x.com/", "https://twitter.com/", "https://abs.twimg.com/"],
    }
}

impl Replay {
    /// The simulated time of every round.
    pub fn rounds(&self) -> Vec<i64> {
        (self.start..self.end).step_by(self.step.max(1) as usize).collect()
    }

    /// The ISP labels, in order.
    pub fn labels(&self) -> Vec<IspLabel> {
        self.isps.iter().map(|i| i.label.clone()).collect()
    }

    /// The ground truth: the clock, the ISPs, the blocking events (per domain and ASN, with
    /// their on-periods) and the outages.
    pub fn ground_truth(&self) -> Value {
        let mut events = Vec::new();
        let mut outages = Vec::new();
        for isp in &self.isps {
            let Some(w) = isp.window else { continue };
            // On-periods, clipped to the replay.
            let mut periods: Vec<(i64, i64)> = Vec::new();
            let end = w.end.unwrap_or(self.end).min(self.end);
            match w.cycle {
                None => periods.push((w.start, end)),
                Some((on, off)) => {
                    let mut t = w.start;
                    while t < end {
                        periods.push((t, (t + on).min(end)));
                        t += on + off;
                    }
                }
            }
            let periods_json: Vec<Value> = periods.iter().map(|(a, b)| json!([iso(*a), iso(*b)])).collect();
            if isp.technique == Technique::Dark {
                outages.push(json!({
                    "asn": isp.label.asn, "isp": isp.label.name, "cc": isp.label.cc,
                    "start": iso(w.start), "end": w.end.map(iso),
                }));
                continue;
            }
            for domain in isp.technique.domains() {
                events.push(json!({
                    "domain": domain,
                    "cc": isp.label.cc,
                    "asn": isp.label.asn,
                    "isp": isp.label.name,
                    "technique": isp.technique.name(),
                    "method": isp.technique.method(),
                    "start": iso(w.start),
                    "end": w.end.map(iso),
                    "pattern": if w.cycle.is_some() { "intermittent" } else { "steady" },
                    "on_periods": periods_json,
                }));
            }
        }
        json!({
            "replay": self.name,
            "clock": {"start": iso(self.start), "end": iso(self.end), "step_seconds": self.step},
            "isps": self.isps.iter().map(|i| json!({
                "name": i.label.name, "asn": i.label.asn, "cc": i.label.cc, "technique": i.technique.name(),
            })).collect::<Vec<_>>(),
            "targets": self.targets,
            "events": events,
            "outages": outages,
        })
    }
}

/// Puts a measurement on the simulated clock: `measurement_start_time` and `test_start_time`.
pub fn on_simulated_clock(mut measurement: Value, round: i64, offset_seconds: i64) -> Value {
    if let Some(obj) = measurement.as_object_mut() {
        obj.insert("test_start_time".into(), json!(ooni_time(round)));
        obj.insert(
            "measurement_start_time".into(),
            json!(ooni_time(round + offset_seconds)),
        );
    }
    measurement
}

/// What a replay produced.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    /// Measurements written.
    pub written: usize,
    /// Rounds skipped per ISP because the network could not reach the collector.
    pub unsubmitted: Vec<usize>,
    /// Per ISP: (round time, target, verdict label) of each written measurement.
    pub verdicts: Vec<Vec<(i64, String, String)>>,
}

/// Runs `replay` on `lab` (built with `replay.labels()`), writing OONI JSONL to `out`.
/// `progress` is called after each round with its index and the total.
pub fn run_replay(
    lab: &mut Lab,
    replay: &Replay,
    out: &mut dyn Write,
    mut progress: impl FnMut(usize, usize),
) -> Result<ReplaySummary, LabError> {
    let n = replay.isps.len();
    let mut current: Vec<Option<Technique>> = vec![None; n];
    let mut summary = ReplaySummary {
        unsubmitted: vec![0; n],
        verdicts: vec![Vec::new(); n],
        ..ReplaySummary::default()
    };
    let rounds = replay.rounds();
    for (r, &t) in rounds.iter().enumerate() {
        for (i, isp) in replay.isps.iter().enumerate() {
            let technique = isp.at(t);
            if current[i] != Some(technique) {
                lab.apply(i, &technique.censor())?;
                current[i] = Some(technique);
            }
        }
        let reachable: Vec<bool> = (0..n)
            .map(|i| {
                lab.reachable(
                    i,
                    std::net::SocketAddr::from((CONTROL, CONTROL_PORT)),
                    Duration::from_secs(1),
                )
            })
            .collect::<Result<_, _>>()?;
        let jobs: Vec<(usize, String)> = (0..n)
            .filter(|i| reachable[*i])
            .flat_map(|i| replay.targets.iter().map(move |u| (i, u.to_string())))
            .collect();
        for (i, ok) in reachable.iter().enumerate() {
            if !ok {
                summary.unsubmitted[i] += 1;
            }
        }
        let results = lab.measure_many(&jobs)?;
        for (k, ((i, url), result)) in jobs.iter().zip(results).enumerate() {
            let outcome = result?;
            let m = serde_json::to_value(&outcome.measurement).map_err(|e| LabError::Io {
                what: "serializing a measurement".into(),
                source: std::io::Error::other(e),
            })?;
            let m = on_simulated_clock(m, t, 1 + k as i64);
            writeln!(out, "{m}").map_err(|e| LabError::Io {
                what: "writing the replay's measurements".into(),
                source: e,
            })?;
            summary.written += 1;
            summary.verdicts[*i].push((
                t,
                url.clone(),
                crate::scenario::label(outcome.verdict.status, outcome.verdict.method),
            ));
        }
        progress(r + 1, rounds.len());
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_cycles() {
        let w = Window {
            start: 100,
            end: Some(200),
            cycle: Some((10, 20)),
        };
        assert!(!w.active(99));
        assert!(w.active(100));
        assert!(w.active(109));
        assert!(!w.active(110));
        assert!(!w.active(129));
        assert!(w.active(130));
        assert!(!w.active(200));
        let steady = Window {
            start: 0,
            end: None,
            cycle: None,
        };
        assert!(steady.active(i64::MAX / 2));
    }

    #[test]
    fn pk2024_has_one_isp_per_technique() {
        let r = pk2024(1);
        let techniques: Vec<Technique> = r.isps.iter().map(|i| i.technique).collect();
        for t in [
            Technique::SniReset,
            Technique::DnsSpoof,
            Technique::Throttle,
            Technique::Dark,
            Technique::Clean,
        ] {
            assert!(techniques.contains(&t), "{t:?}");
        }
        assert_eq!(r.rounds().len(), 72);
        assert_eq!(pk2024(6).rounds().len(), 12);
        let asns: Vec<u32> = r.isps.iter().map(|i| i.label.asn).collect();
        assert_eq!(asns, vec![17557, 45669, 59257, 24499, 23674]);
    }

    #[test]
    fn schedule_in_simulated_time() {
        let r = pk2024(1);
        let jazz = &r.isps[1];
        assert_eq!(jazz.at(ts("2024-02-17T17:00:00Z")), Technique::Clean);
        assert_eq!(jazz.at(ts("2024-02-17T18:00:00Z")), Technique::DnsSpoof);
        assert_eq!(jazz.at(ts("2024-02-18T00:00:00Z")), Technique::Clean);
        assert_eq!(jazz.at(ts("2024-02-18T06:00:00Z")), Technique::DnsSpoof);
        let telenor = &r.isps[3];
        assert_eq!(telenor.at(ts("2024-02-18T05:00:00Z")), Technique::Clean);
        assert_eq!(telenor.at(ts("2024-02-18T06:00:00Z")), Technique::Dark);
        assert_eq!(telenor.at(ts("2024-02-18T18:00:00Z")), Technique::Clean);
        assert_eq!(r.isps[4].at(ts("2024-02-18T12:00:00Z")), Technique::Clean);
    }

    #[test]
    fn ground_truth_lists_events_and_outages() {
        let g = pk2024(1).ground_truth();
        assert_eq!(g["replay"], "pk-2024");
        assert_eq!(g["clock"]["start"], "2024-02-16T00:00:00Z");
        assert_eq!(g["clock"]["step_seconds"], 3600);
        let events = g["events"].as_array().unwrap();
        // PTCL 2 domains, Jazz 2, Zong 3.
        assert_eq!(events.len(), 7);
        let jazz_x = events
            .iter()
            .find(|e| e["asn"] == 45669 && e["domain"] == "x.com")
            .unwrap();
        assert_eq!(jazz_x["pattern"], "intermittent");
        assert_eq!(jazz_x["method"], "dns.spoofed");
        assert_eq!(jazz_x["on_periods"].as_array().unwrap().len(), 3);
        assert_eq!(
            jazz_x["on_periods"][0],
            json!(["2024-02-17T18:00:00Z", "2024-02-18T00:00:00Z"])
        );
        let ptcl = events.iter().find(|e| e["asn"] == 17557).unwrap();
        assert_eq!(ptcl["end"], Value::Null);
        assert_eq!(ptcl["method"], "tls.reset");
        let outages = g["outages"].as_array().unwrap();
        assert_eq!(outages.len(), 1);
        assert_eq!(outages[0]["asn"], 24499);
        assert_eq!(outages[0]["end"], "2024-02-18T18:00:00Z");
    }

    #[test]
    fn measurements_move_to_the_simulated_clock() {
        let m = json!({"measurement_start_time": "2026-12-03 16:00:00", "probe_asn": "AS17557"});
        let m = on_simulated_clock(m, ts("2024-02-17T18:00:00Z"), 5);
        assert_eq!(m["measurement_start_time"], "2024-02-17 18:00:05");
        assert_eq!(m["test_start_time"], "2024-02-17 18:00:00");
        assert_eq!(m["probe_asn"], "AS17557");
    }

    #[test]
    fn censors_match_techniques() {
        assert!(Technique::Clean.censor().is_empty());
        assert_eq!(Technique::Dark.censor().packets, vec![PacketRule::Blackout]);
        assert_eq!(Technique::SniReset.censor().dpi.len(), 2);
        assert_eq!(Technique::Throttle.censor().dpi.len(), 3);
        assert_eq!(Technique::DnsSpoof.censor().dns.len(), 2);
        assert_eq!(Technique::Dark.method(), None);
    }
}
