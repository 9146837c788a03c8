//! The censor's rule vocabulary, shared by the DPI proxy and the DNS censor: which names a rule
//! matches ([`NameMatch`]), which name of a flow it looks at ([`Layer`]), when it is in force
//! ([`Schedule`]) and what it does ([`Action`], [`DnsAction`]). Pure: no I/O, no clock (callers
//! pass the time elapsed since their server started).

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which domain names a rule matches. Comparison ignores ASCII case and one trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameMatch {
    /// Every flow or query, including flows with no name at all (no SNI, no Host, not TLS/HTTP).
    Any,
    /// Exactly this name.
    Exact(String),
    /// This name and every name under it: `Suffix("twimg.com")` matches `twimg.com` and
    /// `abs.twimg.com`, not `nottwimg.com`.
    Suffix(String),
}

impl NameMatch {
    /// `Exact` for `name`.
    pub fn exact(name: impl Into<String>) -> Self {
        NameMatch::Exact(name.into())
    }

    /// `Suffix` for `name`.
    pub fn suffix(name: impl Into<String>) -> Self {
        NameMatch::Suffix(name.into())
    }

    /// Whether `name` (a flow's SNI / Host, a query's name; `None` when the flow carried none)
    /// matches. Only [`NameMatch::Any`] matches a flow without a name.
    pub fn matches(&self, name: Option<&str>) -> bool {
        match self {
            NameMatch::Any => true,
            NameMatch::Exact(want) => name.is_some_and(|got| normalize(got) == normalize(want)),
            NameMatch::Suffix(want) => name.is_some_and(|got| {
                let (got, want) = (normalize(got), normalize(want));
                if want.is_empty() {
                    return true;
                }
                got == want
                    || (got.len() > want.len() && got.ends_with(&want) && got[..got.len() - want.len()].ends_with('.'))
            }),
        }
    }
}

/// `text` safe inside a double-quoted HTML attribute.
fn html_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Lowercase (ASCII) and without one trailing dot.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Which name of a flow a DPI rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layer {
    /// The TLS ClientHello's server_name (flows that are not TLS never match, except with
    /// [`NameMatch::Any`]).
    Sni,
    /// The HTTP request's Host header (flows that are not plain HTTP never match, except with
    /// [`NameMatch::Any`]).
    Host,
    /// Whichever of the two the flow carries.
    Either,
}

/// When a rule is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schedule {
    /// All the time.
    Always,
    /// Intermittent blocking: in force for `on`, then not for `off`, repeating from the server's
    /// start (time 0 starts an `on` period).
    Cycles {
        /// How long each active period lasts.
        on: Duration,
        /// How long each inactive period lasts.
        off: Duration,
    },
}

impl Schedule {
    /// Whether the rule is in force `elapsed` after the server started.
    pub fn is_active(&self, elapsed: Duration) -> bool {
        match *self {
            Schedule::Always => true,
            Schedule::Cycles { on, off } => {
                let period = on.as_nanos() + off.as_nanos();
                if period == 0 {
                    return true;
                }
                elapsed.as_nanos() % period < on.as_nanos()
            }
        }
    }
}

/// What the DPI proxy does with a matched flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Pass it through to its original destination untouched.
    Forward,
    /// Abort it with a TCP RST (the client reads `ECONNRESET`).
    Reset,
    /// Close it with a FIN and no data (the client reads EOF).
    Close,
    /// Keep it open, swallow what the client sends, never answer (the client times out).
    Blackhole,
    /// Answer a plain HTTP request with this response, then close. A TLS flow cannot be answered
    /// without the site's key, so TLS flows matched by a blockpage rule are reset instead.
    Blockpage {
        /// HTTP status code of the injected response.
        status: u16,
        /// Its body (sent as `text/html; charset=utf-8`).
        body: String,
    },
    /// Forward it, rate-limited to this many bits per second in each direction.
    Throttle {
        /// Sustained rate in bits per second (each direction).
        bits_per_second: u64,
    },
}

/// Where Pakistan's Mobilink/Jazz transparent proxy framed its blockpage from: OONI blocking
/// fingerprint `ooni.pk_1` (also `cl.isp_pk_mobillink_block_forward`), ooni/blocking-fingerprints
/// `fingerprints_http.csv`, which matches bodies containing this prefix.
pub const PK_MOBILINK_BLOCKPAGE_PREFIX: &str = "http://119.73.65.87:8080/redirect.html?accessurl=";

impl Action {
    /// A `200 OK` page whose whole window is an iframe of `src`: the shape of the blockpages
    /// transparent proxies inject (the page itself is ours; only the shape is borrowed).
    pub fn iframe_blockpage(src: &str) -> Action {
        let src = html_attribute(src);
        let body = format!(
            "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head>\
             <body style=\"margin:0\"><iframe src=\"{src}\" style=\"width: 100%; height: 100%\" \
             scrolling=\"no\" frameborder=\"0\"></iframe></body></html>"
        );
        Action::Blockpage { status: 200, body }
    }

    /// The iframe blockpage of Pakistan's Mobilink/Jazz for `blocked_url`, framing
    /// [`PK_MOBILINK_BLOCKPAGE_PREFIX`]`<blocked_url>` so OONI's fingerprint `ooni.pk_1` matches it.
    pub fn pk_mobilink_blockpage(blocked_url: &str) -> Action {
        Action::iframe_blockpage(&format!("{PK_MOBILINK_BLOCKPAGE_PREFIX}{blocked_url}"))
    }

    /// A short stable label for logs and statistics: `forward`, `reset`, `close`, `blackhole`,
    /// `blockpage`, `throttle`.
    pub fn label(&self) -> &'static str {
        match self {
            Action::Forward => "forward",
            Action::Reset => "reset",
            Action::Close => "close",
            Action::Blackhole => "blackhole",
            Action::Blockpage { .. } => "blockpage",
            Action::Throttle { .. } => "throttle",
        }
    }
}

/// One DPI rule: flows whose `layer` name matches `name` get `action` while `schedule` is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRule {
    /// The names it applies to.
    pub name: NameMatch,
    /// Which name of the flow it looks at.
    pub layer: Layer,
    /// What it does.
    pub action: Action,
    /// When it is in force.
    pub schedule: Schedule,
}

impl FlowRule {
    /// A rule in force all the time.
    pub fn always(name: NameMatch, layer: Layer, action: Action) -> Self {
        FlowRule {
            name,
            layer,
            action,
            schedule: Schedule::Always,
        }
    }

    /// The same rule with another schedule.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }
}

/// The names a sniffed flow carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowNames<'a> {
    /// The ClientHello's server_name, if the flow is TLS and sent one.
    pub sni: Option<&'a str>,
    /// The request's Host header, if the flow is HTTP and sent one.
    pub host: Option<&'a str>,
}

/// The first rule in force at `elapsed` matching `names`, with its index; `None` means forward.
pub fn match_flow<'r>(
    rules: &'r [FlowRule],
    names: &FlowNames<'_>,
    elapsed: Duration,
) -> Option<(usize, &'r FlowRule)> {
    rules.iter().enumerate().find(|(_, rule)| {
        rule.schedule.is_active(elapsed)
            && match rule.layer {
                Layer::Sni => rule.name.matches(names.sni),
                Layer::Host => rule.name.matches(names.host),
                Layer::Either => match (names.sni, names.host) {
                    (None, None) => rule.name.matches(None),
                    (sni, host) => {
                        sni.is_some_and(|n| rule.name.matches(Some(n)))
                            || host.is_some_and(|n| rule.name.matches(Some(n)))
                    }
                },
            }
    })
}

/// What the DNS censor does with a matched query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DnsAction {
    /// Relay upstream's answer.
    Forward,
    /// Answer NXDOMAIN.
    NxDomain,
    /// Answer REFUSED.
    Refused,
    /// Never answer (the client times out).
    Drop,
    /// Answer A/AAAA queries with these addresses (those of the query's family; none of the family
    /// gives an empty NOERROR answer) instead of asking upstream. Other query types get an empty
    /// NOERROR answer.
    Spoof(Vec<IpAddr>),
    /// The injection race: send the forged answer (as `Spoof`) at once, *and* relay upstream's
    /// real answer after it, so the client receives two answers.
    Inject(Vec<IpAddr>),
}

impl DnsAction {
    /// A short stable label for logs and statistics.
    pub fn label(&self) -> &'static str {
        match self {
            DnsAction::Forward => "forward",
            DnsAction::NxDomain => "nxdomain",
            DnsAction::Refused => "refused",
            DnsAction::Drop => "drop",
            DnsAction::Spoof(_) => "spoof",
            DnsAction::Inject(_) => "inject",
        }
    }
}

/// One DNS rule: queries for names matching `name` get `action` while `schedule` is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRule {
    /// The names it applies to.
    pub name: NameMatch,
    /// What it does.
    pub action: DnsAction,
    /// When it is in force.
    pub schedule: Schedule,
}

impl DnsRule {
    /// A rule in force all the time.
    pub fn always(name: NameMatch, action: DnsAction) -> Self {
        DnsRule {
            name,
            action,
            schedule: Schedule::Always,
        }
    }

    /// The same rule with another schedule.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }
}

/// The first DNS rule in force at `elapsed` matching `qname`; `None` means forward.
pub fn match_query<'r>(rules: &'r [DnsRule], qname: &str, elapsed: Duration) -> Option<&'r DnsRule> {
    rules
        .iter()
        .find(|rule| rule.schedule.is_active(elapsed) && rule.name.matches(Some(qname)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_ignores_case_and_trailing_dot() {
        let m = NameMatch::exact("X.com");
        assert!(m.matches(Some("x.com")));
        assert!(m.matches(Some("X.COM.")));
        assert!(!m.matches(Some("www.x.com")));
        assert!(!m.matches(Some("x.co")));
        assert!(!m.matches(None));
    }

    #[test]
    fn suffix_matches_the_name_and_its_subdomains_only() {
        let m = NameMatch::suffix("twimg.com.");
        assert!(m.matches(Some("twimg.com")));
        assert!(m.matches(Some("abs.TWIMG.com")));
        assert!(m.matches(Some("a.b.twimg.com.")));
        assert!(!m.matches(Some("nottwimg.com")));
        assert!(!m.matches(Some("twimg.com.evil")));
        assert!(!m.matches(Some("com")));
        assert!(!m.matches(None));
    }

    #[test]
    fn any_matches_even_nameless_flows() {
        assert!(NameMatch::Any.matches(None));
        assert!(NameMatch::Any.matches(Some("example.org")));
    }

    #[test]
    fn cycles_start_on_and_repeat() {
        let s = Schedule::Cycles {
            on: Duration::from_secs(2),
            off: Duration::from_secs(1),
        };
        let at = |ms| s.is_active(Duration::from_millis(ms));
        assert!(at(0));
        assert!(at(1999));
        assert!(!at(2000));
        assert!(!at(2999));
        assert!(at(3000));
        assert!(!at(5500));
        assert!(Schedule::Always.is_active(Duration::from_secs(1 << 40)));
        let degenerate = Schedule::Cycles {
            on: Duration::ZERO,
            off: Duration::ZERO,
        };
        assert!(degenerate.is_active(Duration::from_secs(5)));
        let never = Schedule::Cycles {
            on: Duration::ZERO,
            off: Duration::from_secs(1),
        };
        assert!(!never.is_active(Duration::from_millis(10)));
    }

    #[test]
    fn first_matching_rule_in_force_wins() {
        let rules = vec![
            FlowRule::always(NameMatch::exact("x.com"), Layer::Sni, Action::Reset).with_schedule(Schedule::Cycles {
                on: Duration::from_secs(1),
                off: Duration::from_secs(1),
            }),
            FlowRule::always(NameMatch::suffix("x.com"), Layer::Either, Action::Close),
            FlowRule::always(NameMatch::exact("example.org"), Layer::Host, Action::Blackhole),
        ];
        let tls = FlowNames {
            sni: Some("x.com"),
            host: None,
        };
        assert_eq!(match_flow(&rules, &tls, Duration::ZERO).map(|m| m.0), Some(0));
        assert_eq!(
            match_flow(&rules, &tls, Duration::from_millis(1500)).map(|m| m.0),
            Some(1)
        );
        let http = FlowNames {
            sni: None,
            host: Some("www.x.com"),
        };
        assert_eq!(match_flow(&rules, &http, Duration::ZERO).map(|m| m.0), Some(1));
        // A Host rule does not look at the SNI.
        let tls_example = FlowNames {
            sni: Some("example.org"),
            host: None,
        };
        assert!(match_flow(&rules, &tls_example, Duration::ZERO).is_none());
        let http_example = FlowNames {
            sni: None,
            host: Some("example.org"),
        };
        assert_eq!(match_flow(&rules, &http_example, Duration::ZERO).map(|m| m.0), Some(2));
        assert!(match_flow(&rules, &FlowNames::default(), Duration::ZERO).is_none());
        let any = [FlowRule::always(NameMatch::Any, Layer::Either, Action::Close)];
        assert!(match_flow(&any, &FlowNames::default(), Duration::ZERO).is_some());
    }

    #[test]
    fn the_pk_blockpage_carries_ooni_fingerprint_pk_1() {
        let Action::Blockpage { status, body } = Action::pk_mobilink_blockpage("http://x.com/?a=1&b=\"2\"") else {
            panic!("not a blockpage");
        };
        assert_eq!(status, 200);
        // The fingerprint is a `contains` match on the body.
        assert!(
            body.contains("http://119.73.65.87:8080/redirect.html?accessurl="),
            "{body}"
        );
        assert!(body.contains(
            "<iframe src=\"http://119.73.65.87:8080/redirect.html?accessurl=http://x.com/?a=1&amp;b=&quot;2&quot;\""
        ));
    }

    #[test]
    fn dns_rules_match_by_name_and_schedule() {
        let rules = vec![
            DnsRule::always(NameMatch::exact("x.com"), DnsAction::NxDomain).with_schedule(Schedule::Cycles {
                on: Duration::from_secs(1),
                off: Duration::from_secs(1),
            }),
            DnsRule::always(NameMatch::suffix("twitter.com"), DnsAction::Refused),
        ];
        assert_eq!(
            match_query(&rules, "X.com.", Duration::ZERO).map(|r| r.action.label()),
            Some("nxdomain")
        );
        assert!(match_query(&rules, "x.com", Duration::from_millis(1200)).is_none());
        assert_eq!(
            match_query(&rules, "api.twitter.com", Duration::ZERO).map(|r| r.action.label()),
            Some("refused")
        );
        assert!(match_query(&rules, "example.org", Duration::ZERO).is_none());
    }
}
