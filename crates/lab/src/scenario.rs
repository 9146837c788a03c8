//! The scenario catalogue: each censorship technique (and each look-alike that is *not*
//! censorship) as a censor configuration, the URL the probe measures, and the verdict expected.
//! Pure data and pure judging; [`crate::suite`] runs them.
//!
//! The set covers the techniques of OONI's Web Connectivity QA suite (probe-cli
//! `internal/webconnectivityqa`: DNS NXDOMAIN / bogon / spoofing, TCP blackhole and refusal, SNI
//! and Host resets, FIN (EOF), blackholes after the ClientHello, injected blockpages, throttling,
//! website down, CAPTCHA pages), plus QUIC blocking, DNS injection races and intermittent blocking.

use crate::censor::{Censor, PacketRule};
use crate::hosts::{BLOCKPAGE_IP, INJECTED_BLOCKPAGE, X_IP};
use censorwatch_censor::{Action, DnsAction, DnsRule, FlowRule, Layer, NameMatch, Schedule};
use censorwatch_model::{Method, Status, Verdict};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The verdict a scenario expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// Status.
    pub status: Status,
    /// Method (`None` unless blocked).
    pub method: Option<Method>,
}

impl Expected {
    fn blocked(method: Method) -> Expected {
        Expected {
            status: Status::Blocked,
            method: Some(method),
        }
    }

    fn status(status: Status) -> Expected {
        Expected { status, method: None }
    }

    /// Whether `verdict` is this.
    pub fn matches(&self, verdict: &Verdict) -> bool {
        verdict.status == self.status && verdict.method == self.method
    }

    /// `status` or `status/method`.
    pub fn label(&self) -> String {
        label(self.status, self.method)
    }
}

/// `status` or `status/method`, as the confusion table prints verdicts.
pub fn label(status: Status, method: Option<Method>) -> String {
    match method {
        Some(m) => format!("{status}/{m}"),
        None => status.to_string(),
    }
}

/// How a scenario is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    /// One measurement, whose verdict must be the expected one.
    Once,
    /// `probes` measurements, `interval` apart from the censor's start (the first at half an
    /// interval): at least one must be the expected verdict and at least one `ok`, and nothing else.
    Cycle {
        /// Measurements taken.
        probes: u32,
        /// Time between their starts.
        interval: Duration,
    },
}

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name (`lab run NAME`).
    pub name: &'static str,
    /// What the censor does, in words.
    pub description: &'static str,
    /// What the probe measures.
    pub url: &'static str,
    /// The censor.
    pub censor: Censor,
    /// The verdict expected.
    pub expected: Expected,
    /// How it is judged.
    pub judge: Judge,
}

fn dns(action: DnsAction) -> Vec<DnsRule> {
    vec![DnsRule::always(NameMatch::exact("x.com"), action)]
}

fn sni(action: Action) -> Vec<FlowRule> {
    vec![FlowRule::always(NameMatch::exact("x.com"), Layer::Sni, action)]
}

fn host(action: Action) -> Vec<FlowRule> {
    vec![FlowRule::always(NameMatch::exact("x.com"), Layer::Host, action)]
}

/// The bogon a censor answers with (an RFC 1918 address, as Iran's 10.10.34.35).
pub const BOGON: Ipv4Addr = Ipv4Addr::new(10, 10, 34, 35);
/// The rate of the throttling scenario: Russia's 2021 Twitter slowdown measured about 130–150 kbit/s.
pub const THROTTLE_BPS: u64 = 150_000;
/// An unrelated public address an injector answers with.
pub const INJECTED_IP: Ipv4Addr = Ipv4Addr::new(77, 77, 77, 99);

/// Every scenario, in the order `lab run all` runs them.
pub fn all() -> Vec<Scenario> {
    let once = Judge::Once;
    vec![
        Scenario {
            name: "clean",
            description: "no censorship",
            url: "https://x.com/",
            censor: Censor::none(),
            expected: Expected::status(Status::Ok),
            judge: once,
        },
        Scenario {
            name: "dns-nxdomain",
            description: "the ISP resolver answers NXDOMAIN for x.com",
            url: "https://x.com/",
            censor: Censor {
                dns: dns(DnsAction::NxDomain),
                ..Censor::none()
            },
            expected: Expected::blocked(Method::DnsNxdomain),
            judge: once,
        },
        Scenario {
            name: "dns-bogon",
            description: "the ISP resolver answers x.com with a private address (10.10.34.35)",
            url: "https://x.com/",
            censor: Censor {
                dns: dns(DnsAction::Spoof(vec![IpAddr::V4(BOGON)])),
                ..Censor::none()
            },
            expected: Expected::blocked(Method::DnsBogon),
            judge: once,
        },
        Scenario {
            name: "dns-blockpage",
            description: "the ISP resolver answers x.com with the national blockpage server's address",
            url: "http://x.com/",
            censor: Censor {
                dns: dns(DnsAction::Spoof(vec![IpAddr::V4(BLOCKPAGE_IP)])),
                ..Censor::none()
            },
            expected: Expected::blocked(Method::DnsSpoofed),
            judge: once,
        },
        Scenario {
            name: "dns-injection",
            description: "an on-path injector answers first with a wrong public address; the real answer follows",
            url: "https://x.com/",
            censor: Censor {
                dns: dns(DnsAction::Inject(vec![IpAddr::V4(INJECTED_IP)])),
                ..Censor::none()
            },
            expected: Expected::blocked(Method::DnsSpoofed),
            judge: once,
        },
        Scenario {
            name: "ip-blackhole",
            description: "every packet to x.com's address is dropped (nft drop)",
            url: "https://x.com/",
            censor: Censor {
                packets: vec![PacketRule::DropAddress(X_IP)],
                ..Censor::none()
            },
            expected: Expected::blocked(Method::TcpTimeout),
            judge: once,
        },
        Scenario {
            name: "tcp-reset",
            description: "TCP to x.com's address is answered with a reset (nft reject with tcp reset)",
            url: "https://x.com/",
            censor: Censor {
                packets: vec![PacketRule::ResetTcp(X_IP)],
                ..Censor::none()
            },
            expected: Expected::blocked(Method::TcpRefused),
            judge: once,
        },
        Scenario {
            name: "sni-reset",
            description: "the DPI resets TLS flows whose SNI is x.com",
            url: "https://x.com/",
            censor: Censor {
                dpi: sni(Action::Reset),
                ..Censor::none()
            },
            expected: Expected::blocked(Method::TlsReset),
            judge: once,
        },
        Scenario {
            name: "sni-blackhole",
            description: "the DPI swallows TLS flows whose SNI is x.com (the handshake times out)",
            url: "https://x.com/",
            censor: Censor {
                dpi: sni(Action::Blackhole),
                ..Censor::none()
            },
            expected: Expected::blocked(Method::TlsTimeout),
            judge: once,
        },
        Scenario {
            name: "sni-fin",
            description: "the DPI closes TLS flows whose SNI is x.com with a FIN (EOF)",
            url: "https://x.com/",
            censor: Censor {
                dpi: sni(Action::Close),
                ..Censor::none()
            },
            expected: Expected::blocked(Method::TlsEof),
            judge: once,
        },
        Scenario {
            name: "http-host-reset",
            description: "the DPI resets plain HTTP requests with Host: x.com",
            url: "http://x.com/",
            censor: Censor {
                dpi: host(Action::Reset),
                ..Censor::none()
            },
            expected: Expected::blocked(Method::HttpReset),
            judge: once,
        },
        Scenario {
            name: "http-blockpage",
            description: "a transparent proxy answers HTTP requests for x.com with Jazz's iframe blockpage",
            url: "http://x.com/",
            censor: Censor {
                dpi: host(Action::Blockpage {
                    status: 200,
                    body: INJECTED_BLOCKPAGE.to_owned(),
                }),
                ..Censor::none()
            },
            expected: Expected::blocked(Method::HttpBlockpage),
            judge: once,
        },
        Scenario {
            name: "quic-blocked",
            description: "UDP to port 443 is dropped (QUIC blocked) while TCP works",
            url: "https://x.com/",
            censor: Censor {
                packets: vec![PacketRule::DropUdpPort(443)],
                ..Censor::none()
            },
            expected: Expected::blocked(Method::QuicTimeout),
            judge: once,
        },
        Scenario {
            name: "sni-throttle",
            description: "the DPI throttles TLS flows whose SNI is abs.twimg.com to 150 kbit/s",
            url: "https://abs.twimg.com/",
            censor: Censor {
                dpi: vec![FlowRule::always(
                    NameMatch::suffix("twimg.com"),
                    Layer::Sni,
                    Action::Throttle {
                        bits_per_second: THROTTLE_BPS,
                    },
                )],
                ..Censor::none()
            },
            expected: Expected::blocked(Method::Throttled),
            judge: once,
        },
        Scenario {
            name: "intermittent",
            description: "the DPI resets x.com's TLS flows in cycles: 3 s on, 3 s off",
            url: "https://x.com/",
            censor: Censor {
                dpi: vec![
                    FlowRule::always(NameMatch::exact("x.com"), Layer::Sni, Action::Reset).with_schedule(
                        Schedule::Cycles {
                            on: Duration::from_secs(3),
                            off: Duration::from_secs(3),
                        },
                    ),
                ],
                ..Censor::none()
            },
            expected: Expected::blocked(Method::TlsReset),
            judge: Judge::Cycle {
                probes: 6,
                interval: Duration::from_millis(1500),
            },
        },
        Scenario {
            name: "website-down",
            description: "no censorship; the site's server is down (connections refused for the control too)",
            url: "https://down.example.net/",
            censor: Censor::none(),
            expected: Expected::status(Status::Down),
            judge: once,
        },
        Scenario {
            name: "geoblock-captcha",
            description: "no censorship; the site itself answers the ISP's clients with a CAPTCHA (HTTP 403)",
            url: "http://news.example.net/",
            censor: Censor::none(),
            expected: Expected::status(Status::Inconclusive),
            judge: once,
        },
    ]
}

/// The scenario named `name`.
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// Whether the scenario must never read as censorship (the accuracy target: zero `blocked`).
pub fn must_not_block(s: &Scenario) -> bool {
    s.expected.status != Status::Blocked
}

/// The judgement of a cycle's verdicts: at least one as expected, at least one `ok`, nothing else.
pub fn judge_cycle(expected: &Expected, verdicts: &[Verdict]) -> bool {
    let hits = verdicts.iter().filter(|v| expected.matches(v)).count();
    let oks = verdicts.iter().filter(|v| v.status == Status::Ok).count();
    hits > 0 && oks > 0 && hits + oks == verdicts.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_findable() {
        let all = all();
        let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(all.len() >= 17);
        assert_eq!(find("sni-reset").unwrap().expected.method, Some(Method::TlsReset));
        assert!(find("nope").is_none());
    }

    #[test]
    fn expectations_are_consistent() {
        for s in all() {
            assert_eq!(
                s.expected.status == Status::Blocked,
                s.expected.method.is_some(),
                "{}",
                s.name
            );
            assert_eq!(
                must_not_block(&s),
                s.censor.is_empty(),
                "{}: only clean-network scenarios may expect no block",
                s.name
            );
            assert!(s.url.starts_with("http"), "{}", s.name);
        }
    }

    fn verdict(status: Status, method: Option<Method>) -> Verdict {
        Verdict {
            status,
            method,
            ..Verdict::inconclusive("")
        }
    }

    #[test]
    fn cycles_need_both_phases_and_nothing_else() {
        let e = Expected::blocked(Method::TlsReset);
        let blocked = verdict(Status::Blocked, Some(Method::TlsReset));
        let ok = verdict(Status::Ok, None);
        let other = verdict(Status::Blocked, Some(Method::TlsTimeout));
        assert!(judge_cycle(&e, &[blocked.clone(), ok.clone(), blocked.clone()]));
        assert!(!judge_cycle(&e, &[blocked.clone(), blocked.clone()]));
        assert!(!judge_cycle(&e, &[ok.clone(), ok.clone()]));
        assert!(!judge_cycle(&e, &[blocked, ok, other]));
        assert!(!judge_cycle(&e, &[]));
    }

    #[test]
    fn labels() {
        assert_eq!(Expected::blocked(Method::DnsBogon).label(), "blocked/dns.bogon");
        assert_eq!(Expected::status(Status::Down).label(), "down");
    }
}
