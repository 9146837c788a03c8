//! The dashboard's view models: pure functions from what the store returns (aggregated counts,
//! events, outages, one measurement) to what a page shows (a status grid, a heatmap, a sentence a
//! journalist can quote, a probe-versus-control comparison). No I/O here, so every rule is tested
//! without a server.

use censorwatch_detect::{Event, Pattern, platform};
use censorwatch_model::Method;
use chrono::DateTime;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// How long before a cell's newest measurement its "latest state" looks back: the grid shows
/// what the last few hours of measurements of that platform on that network say, not one
/// measurement.
pub(crate) const LATEST_WINDOW: i64 = 6 * 3600;

/// Verdict counts of a group of measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) measurements: u64,
    pub(crate) ok: u64,
    pub(crate) blocked: u64,
    pub(crate) down: u64,
    pub(crate) inconclusive: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, other: &Tally) {
        self.measurements += other.measurements;
        self.ok += other.ok;
        self.blocked += other.blocked;
        self.down += other.down;
        self.inconclusive += other.inconclusive;
    }

    /// Measurements that say something: `ok`, `blocked` or `down`.
    pub(crate) fn conclusive(&self) -> u64 {
        self.ok + self.blocked + self.down
    }

    /// `blocked / (ok + blocked + down)`, as the evidence bundles' charts define it; `None`
    /// without a conclusive measurement.
    pub(crate) fn blocked_share(&self) -> Option<f64> {
        let c = self.conclusive();
        (c > 0).then(|| self.blocked as f64 / c as f64)
    }
}

/// One aggregated row, as the pages use it (the store's aggregation rows map onto it; the axes
/// not asked for are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Row {
    pub(crate) time: Option<i64>,
    pub(crate) asn: Option<u32>,
    pub(crate) domain: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) cc: Option<String>,
    pub(crate) tally: Tally,
}

/// What a grid cell says, from its latest measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellState {
    /// Most conclusive measurements blocked.
    Blocked,
    /// Some, but fewer than half, blocked.
    Partial,
    /// Reachable.
    Ok,
    /// The site itself failed (the control too) more often than not.
    Down,
    /// Only inconclusive measurements.
    Unknown,
}

impl CellState {
    /// Classifies a cell's latest counts.
    pub(crate) fn of(t: &Tally) -> CellState {
        match t.blocked_share() {
            None => CellState::Unknown,
            Some(_) if t.down * 2 > t.conclusive() => CellState::Down,
            Some(s) if s >= 0.5 => CellState::Blocked,
            Some(s) if s > 0.0 => CellState::Partial,
            Some(_) => CellState::Ok,
        }
    }

    /// The text shown in the cell (colour is never the only signal).
    pub(crate) fn label(self) -> &'static str {
        match self {
            CellState::Blocked => "Blocked",
            CellState::Partial => "Partly blocked",
            CellState::Ok => "Accessible",
            CellState::Down => "Site down",
            CellState::Unknown => "Inconclusive",
        }
    }

    /// The CSS class that colours it.
    pub(crate) fn class(self) -> &'static str {
        match self {
            CellState::Blocked => "st-blocked",
            CellState::Partial => "st-partial",
            CellState::Ok => "st-ok",
            CellState::Down => "st-down",
            CellState::Unknown => "st-unknown",
        }
    }
}

/// One cell of the country page's grid: a platform on a network.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub(crate) state: CellState,
    /// The counts of its latest window.
    pub(crate) latest: Tally,
    /// Start of the newest time bin with a measurement.
    pub(crate) as_of: i64,
}

/// The platforms × networks grid of a country.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Grid {
    /// Label domains of the platforms (rows), most measured first.
    pub(crate) platforms: Vec<String>,
    /// Networks (columns), ascending.
    pub(crate) asns: Vec<u32>,
    /// (platform index, asn) → cell; a missing cell was never measured.
    pub(crate) cells: BTreeMap<(usize, u32), Cell>,
}

/// The status grid from rows aggregated by domain, network and time: per (platform, network),
/// the counts of the rows within [`LATEST_WINDOW`] of its newest time bin.
pub(crate) fn status_grid(rows: &[Row]) -> Grid {
    // (label domain, asn) → rows.
    let mut by_cell: BTreeMap<(String, u32), Vec<(i64, Tally)>> = BTreeMap::new();
    let mut volume: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows {
        let (Some(domain), Some(asn), Some(time)) = (&r.domain, r.asn, r.time) else {
            continue;
        };
        let label = platform_label(domain);
        *volume.entry(label.clone()).or_default() += r.tally.measurements;
        by_cell.entry((label, asn)).or_default().push((time, r.tally));
    }
    let mut platforms: Vec<String> = volume.keys().cloned().collect();
    platforms.sort_by(|a, b| volume[b].cmp(&volume[a]).then_with(|| a.cmp(b)));
    let index: BTreeMap<&str, usize> = platforms.iter().enumerate().map(|(i, p)| (p.as_str(), i)).collect();
    let asns: BTreeSet<u32> = by_cell.keys().map(|(_, a)| *a).collect();
    let mut cells = BTreeMap::new();
    for ((label, asn), bins) in &by_cell {
        let newest = bins.iter().map(|(t, _)| *t).max().unwrap_or(0);
        let mut latest = Tally::default();
        for (t, tally) in bins {
            if *t > newest - LATEST_WINDOW {
                latest.add(tally);
            }
        }
        cells.insert(
            (index[label.as_str()], *asn),
            Cell {
                state: CellState::of(&latest),
                latest,
                as_of: newest,
            },
        );
    }
    Grid {
        platforms,
        asns: asns.into_iter().collect(),
        cells,
    }
}

/// The domain a platform's pages are labelled and linked with (`pbs.twimg.com` → `x.com`).
pub(crate) fn platform_label(domain: &str) -> String {
    platform::label_domain(&platform::platform_of(domain)).to_owned()
}

/// The per-network timeline of a platform: blocked share per network and time bin.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Heatmap {
    /// Networks (rows), ascending.
    pub(crate) asns: Vec<u32>,
    /// Start of the first bin, Unix seconds.
    pub(crate) first: i64,
    /// Bin width, seconds.
    pub(crate) bin: i64,
    /// Number of bins (columns).
    pub(crate) bins: usize,
    /// (row, column) → counts; a missing entry had no measurement.
    pub(crate) cells: BTreeMap<(usize, usize), Tally>,
}

/// Most columns a heatmap gets: bins are widened (1 h, 3 h, 6 h, 12 h, 1 day, 2 days, 1 week)
/// until the span fits.
pub(crate) const MAX_COLUMNS: i64 = 96;

/// The heatmap of rows aggregated by network and time (any bin width that divides the chosen
/// one: the rows are re-binned).
pub(crate) fn heatmap(rows: &[Row]) -> Heatmap {
    let timed: Vec<(u32, i64, &Tally)> = rows.iter().filter_map(|r| Some((r.asn?, r.time?, &r.tally))).collect();
    let (Some(min), Some(max)) = (
        timed.iter().map(|(_, t, _)| *t).min(),
        timed.iter().map(|(_, t, _)| *t).max(),
    ) else {
        return Heatmap::default();
    };
    let bin = [3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400, 2 * 86_400, 7 * 86_400]
        .into_iter()
        .find(|b| max.div_euclid(*b) - min.div_euclid(*b) < MAX_COLUMNS)
        .unwrap_or(7 * 86_400);
    let first = min.div_euclid(bin) * bin;
    let bins = (max.div_euclid(bin) - min.div_euclid(bin) + 1).clamp(1, MAX_COLUMNS) as usize;
    let asns: Vec<u32> = timed
        .iter()
        .map(|(a, _, _)| *a)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut cells: BTreeMap<(usize, usize), Tally> = BTreeMap::new();
    for (asn, t, tally) in timed {
        let row = asns.binary_search(&asn).unwrap_or(0);
        let col = (((t - first) / bin) as usize).min(bins - 1);
        cells.entry((row, col)).or_default().add(tally);
    }
    Heatmap {
        asns,
        first,
        bin,
        bins,
        cells,
    }
}

/// Blocked measurements per method, most frequent first, from rows aggregated by method.
pub(crate) fn method_breakdown(rows: &[Row]) -> Vec<(String, u64)> {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows {
        if let Some(m) = r.method.as_deref().filter(|m| !m.is_empty())
            && r.tally.blocked > 0
        {
            *by.entry(m.to_owned()).or_default() += r.tally.blocked;
        }
    }
    let mut v: Vec<(String, u64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// A country's name (`PK` → `Pakistan`); the code itself when unknown.
pub(crate) fn country_name(cc: &str) -> String {
    isocountry::CountryCode::for_alpha2_caseless(cc)
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|_| cc.to_owned())
}

/// A time as journalists write it: `17 Feb 2024 14:00 UTC`.
pub(crate) fn human_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%-d %b %Y %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{t} (Unix seconds)"))
}

/// A time in ISO 8601 for `<time datetime>` and CSV links: `2024-02-17T14:00:00Z`.
pub(crate) fn iso_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a whole percentage, never rounding a non-zero share to 0 or a partial one to 100.
pub(crate) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".to_owned();
    }
    let p = (part as f64 * 100.0 / whole as f64).round() as u64;
    let p = match p {
        0 if part > 0 => 1,
        100 if part < whole => 99,
        p => p,
    };
    format!("{p}%")
}

/// How a method reads in a sentence (`tls.reset` → "TLS/SNI interference (connection reset)").
pub(crate) fn method_phrase(method: &str) -> String {
    let known = Method::ALL.iter().find(|m| m.as_str() == method);
    let Some(m) = known else {
        return method.to_owned();
    };
    match m {
        Method::DnsNxdomain => "DNS tampering (the name was said not to exist)",
        Method::DnsNoAnswer => "DNS tampering (no address in the answer)",
        Method::DnsBogon => "DNS tampering (a private or unroutable address)",
        Method::DnsSpoofed => "DNS tampering (an address that is not the site's)",
        Method::DnsTimeout => "DNS interference (lookups timed out)",
        Method::DnsRefused => "DNS interference (lookups refused)",
        Method::TcpTimeout => "IP blocking (connections timed out)",
        Method::TcpRefused => "IP blocking (connections refused)",
        Method::TcpReset => "TCP interference (connections reset)",
        Method::TlsReset => "TLS/SNI interference (connection reset)",
        Method::TlsTimeout => "TLS/SNI interference (handshake blackholed)",
        Method::TlsEof => "TLS/SNI interference (connection closed)",
        Method::TlsCertMismatch => "TLS interception (a certificate not valid for the site)",
        Method::HttpReset => "HTTP interference (connection reset)",
        Method::HttpEof => "HTTP interference (connection closed)",
        Method::HttpTimeout => "HTTP interference (requests timed out)",
        Method::HttpBlockpage => "a blockpage",
        Method::HttpDiff => "altered web pages",
        Method::QuicTimeout => "QUIC blocking",
        Method::Throttled => "throttling",
    }
    .to_owned()
}

/// The plain-language summary of an event a journalist can quote, e.g. "Since 17 Feb 2024 14:00
/// UTC, x.com has been blocked on 3 of 5 measured networks in Pakistan (PTCL AS17557, …), by
/// TLS/SNI interference (connection reset); 1,234 measurements, 97% of them blocked."
///
/// `measured_networks` is how many networks of the country measured the platform during the
/// event (at least the affected ones); `network_name` names an ASN when known.
pub(crate) fn event_summary(event: &Event, measured_networks: usize, network_name: &dyn Fn(u32) -> String) -> String {
    let affected = event.asns.len();
    let measured = measured_networks.max(affected);
    let names: Vec<String> = event
        .asns
        .iter()
        .map(|a| {
            let name = network_name(a.asn);
            if name.is_empty() {
                format!("AS{}", a.asn)
            } else {
                format!("{name} AS{}", a.asn)
            }
        })
        .collect();
    let networks = if measured == 1 {
        "the one measured network".to_owned()
    } else {
        format!("{affected} of {measured} measured networks")
    };
    let country = country_name(event.cc.as_str());
    let when = match event.end {
        None => format!("Since {}, {} has been blocked", human_time(event.start), event.domain),
        Some(end) => format!(
            "From {} to {}, {} was blocked",
            human_time(event.start),
            human_time(end),
            event.domain
        ),
    };
    let how = match event.method {
        Some(m) => format!(", by {}", method_phrase(m.as_str())),
        None => String::new(),
    };
    let pattern = match event.pattern {
        Pattern::Intermittent => ", on and off",
        Pattern::Steady => "",
    };
    format!(
        "{when} on {networks} in {country} ({}){how}{pattern}; {} measurements, {} of them blocked.",
        names.join(", "),
        thousands(event.measurements),
        percent(event.blocked, event.measurements),
    )
}

/// What a search box entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SearchTarget {
    /// A two-letter country code or a country's name.
    Country(String),
    /// An AS number.
    Asn(u32),
    /// A measurement id (OONI `measurement_uid` or `sha256:` content id).
    Measurement(String),
    /// A domain or URL.
    Domain(String),
    /// Nothing recognizable.
    Unknown(String),
}

/// Reads a search box entry: `PK`/`Pakistan` → country, `AS17557`/`17557` → network, an OONI
/// measurement uid or `sha256:…` → measurement, `x.com`/`https://x.com/home` → domain.
pub(crate) fn parse_search(q: &str) -> SearchTarget {
    let q = q.trim();
    if q.len() == 2 && q.bytes().all(|b| b.is_ascii_alphabetic()) {
        return SearchTarget::Country(q.to_ascii_uppercase());
    }
    let digits = q
        .strip_prefix("AS")
        .or_else(|| q.strip_prefix("as"))
        .or_else(|| q.strip_prefix("As"))
        .unwrap_or(q);
    if !digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(asn) = digits.parse() {
            return SearchTarget::Asn(asn);
        }
    }
    // 20240217T093155Z_webconnectivity_PK_17557_n1_…
    let looks_like_uid = q.len() > 17
        && q.as_bytes()[8] == b'T'
        && q.contains('_')
        && q[..8].bytes().all(|b| b.is_ascii_digit())
        && !q.contains(char::is_whitespace);
    if looks_like_uid || q.starts_with(censorwatch_store::record::CONTENT_ID_PREFIX) {
        return SearchTarget::Measurement(q.to_owned());
    }
    let host = q
        .split_once("://")
        .map_or(q, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next().unwrap_or("").trim_end_matches('.');
    if host.contains('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return SearchTarget::Domain(host.to_ascii_lowercase());
    }
    if let Some(cc) = country_code_of_name(q) {
        return SearchTarget::Country(cc);
    }
    SearchTarget::Unknown(q.to_owned())
}

/// The code of a country named exactly (case-insensitive), or by the start of its ISO name
/// (`iran` → `IR`, whose ISO name is "Iran (Islamic Republic of)").
fn country_code_of_name(name: &str) -> Option<String> {
    let name = name.trim().to_lowercase();
    if name.len() < 3 {
        return None;
    }
    let all = isocountry::CountryCode::iter();
    let mut prefix = None;
    for c in all {
        let n = c.name().to_lowercase();
        if n == name {
            return Some(c.alpha2().to_owned());
        }
        if prefix.is_none() && n.starts_with(&name) && n[name.len()..].starts_with([' ', ',', '(']) {
            prefix = Some(c.alpha2().to_owned());
        }
    }
    prefix
}

/// One line of the probe-versus-control comparison of a web_connectivity measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// What is compared ("DNS answers", "TCP connect", …).
    pub(crate) aspect: &'static str,
    /// What the probe saw.
    pub(crate) probe: String,
    /// What the control saw.
    pub(crate) control: String,
}

fn failure_or(v: &Value, ok: impl FnOnce() -> String) -> String {
    match v.get("failure").and_then(Value::as_str) {
        Some(f) => format!("failed: {f}"),
        None => ok(),
    }
}

fn none_if_empty(items: Vec<String>) -> String {
    if items.is_empty() {
        "(none recorded)".to_owned()
    } else {
        items.join("; ")
    }
}

/// The probe's observations beside the control's, aspect by aspect, from web_connectivity test
/// keys (OONI ts-017: `queries`, `tcp_connect`, `tls_handshakes`, `requests` for the probe,
/// `control.{dns,tcp_connect,tls_handshake,http_request}` for the control). Empty when the test
/// keys have neither.
pub(crate) fn compare_with_control(test_keys: &Value) -> Vec<Comparison> {
    let control = test_keys.get("control").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    let empty = Vec::new();
    let arr = |key: &str| test_keys.get(key).and_then(Value::as_array).unwrap_or(&empty);

    // DNS.
    let probe_dns = match test_keys.get("dns_experiment_failure").and_then(Value::as_str) {
        Some(f) => format!("failed: {f}"),
        None => {
            let mut addrs: Vec<String> = Vec::new();
            for q in arr("queries") {
                for a in q.get("answers").and_then(Value::as_array).unwrap_or(&empty) {
                    for key in ["ipv4", "ipv6"] {
                        if let Some(ip) = a.get(key).and_then(Value::as_str)
                            && !addrs.iter().any(|x| x == ip)
                        {
                            addrs.push(ip.to_owned());
                        }
                    }
                }
            }
            none_if_empty(addrs)
        }
    };
    let control_dns = match control.get("dns") {
        Some(dns) => failure_or(dns, || {
            none_if_empty(
                dns.get("addrs")
                    .and_then(Value::as_array)
                    .unwrap_or(&empty)
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
            )
        }),
        None => "(not measured)".to_owned(),
    };
    out.push(Comparison {
        aspect: "DNS answers",
        probe: probe_dns,
        control: control_dns,
    });

    // TCP.
    let probe_tcp: Vec<String> = arr("tcp_connect")
        .iter()
        .map(|c| {
            let ip = c.get("ip").and_then(Value::as_str).unwrap_or("?");
            let port = c.get("port").and_then(Value::as_u64).unwrap_or(0);
            let status = c.get("status").unwrap_or(&Value::Null);
            let result = failure_or(status, || {
                if status.get("success").and_then(Value::as_bool) == Some(true) {
                    "connected".to_owned()
                } else {
                    "not connected".to_owned()
                }
            });
            format!("{ip}:{port} {result}")
        })
        .collect();
    let control_tcp: Vec<String> = control
        .get("tcp_connect")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(addr, v)| {
                    let result = failure_or(v, || {
                        if v.get("status").and_then(Value::as_bool) == Some(true) {
                            "connected".to_owned()
                        } else {
                            "not connected".to_owned()
                        }
                    });
                    format!("{addr} {result}")
                })
                .collect()
        })
        .unwrap_or_default();
    out.push(Comparison {
        aspect: "TCP connect",
        probe: none_if_empty(probe_tcp),
        control: none_if_empty(control_tcp),
    });

    // TLS.
    let probe_tls: Vec<String> = arr("tls_handshakes")
        .iter()
        .map(|h| {
            let addr = h.get("address").and_then(Value::as_str).unwrap_or("?");
            let sni = h.get("server_name").and_then(Value::as_str).unwrap_or("?");
            format!("{sni} at {addr}: {}", failure_or(h, || "handshake done".to_owned()))
        })
        .collect();
    let control_tls: Vec<String> = control
        .get("tls_handshake")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(addr, h)| {
                    let sni = h.get("server_name").and_then(Value::as_str).unwrap_or("?");
                    format!("{sni} at {addr}: {}", failure_or(h, || "handshake done".to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.push(Comparison {
        aspect: "TLS handshake",
        probe: none_if_empty(probe_tls),
        control: none_if_empty(control_tls),
    });

    // HTTP: the last request is the final response (OONI lists redirects first... newest first in
    // practice; the first entry is the final one in ts-017 output).
    let probe_http = match test_keys.get("http_experiment_failure").and_then(Value::as_str) {
        Some(f) => format!("failed: {f}"),
        None => match arr("requests").first() {
            Some(r) => failure_or(r, || {
                let resp = r.get("response").unwrap_or(&Value::Null);
                let code = resp.get("code").and_then(Value::as_i64).unwrap_or(0);
                let len = match resp.get("body") {
                    Some(Value::String(s)) => Some(s.len()),
                    Some(Value::Object(o)) => o.get("data").and_then(Value::as_str).map(|d| d.len() * 3 / 4),
                    _ => None,
                };
                match len {
                    Some(len) => format!("status {code}, body {} bytes", thousands(len as u64)),
                    None => format!("status {code}"),
                }
            }),
            None => "(no request recorded)".to_owned(),
        },
    };
    let control_http = match control.get("http_request") {
        Some(h) => failure_or(h, || {
            let code = h.get("status_code").and_then(Value::as_i64).unwrap_or(0);
            let len = h.get("body_length").and_then(Value::as_i64).unwrap_or(-1);
            let title = h.get("title").and_then(Value::as_str).unwrap_or("");
            let mut s = format!("status {code}");
            if len >= 0 {
                s.push_str(&format!(", body {} bytes", thousands(len as u64)));
            }
            if !title.is_empty() {
                s.push_str(&format!(", title \u{201c}{title}\u{201d}"));
            }
            s
        }),
        None => "(not measured)".to_owned(),
    };
    out.push(Comparison {
        aspect: "HTTP(S) fetch",
        probe: probe_http,
        control: control_http,
    });
    if control.is_null() && out.iter().all(|c| c.probe.starts_with('(')) {
        return Vec::new();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use censorwatch_detect::{AsnSpan, Cc, Evidence};
    use std::sync::Arc;

    fn row(domain: &str, asn: u32, time: i64, ok: u64, blocked: u64) -> Row {
        Row {
            time: Some(time),
            asn: Some(asn),
            domain: Some(domain.to_owned()),
            tally: Tally {
                measurements: ok + blocked,
                ok,
                blocked,
                ..Tally::default()
            },
            ..Row::default()
        }
    }

    #[test]
    fn cell_states_follow_the_blocked_share_and_say_so_in_words() {
        let t = |ok, blocked, down, inconclusive| Tally {
            measurements: ok + blocked + down + inconclusive,
            ok,
            blocked,
            down,
            inconclusive,
        };
        assert_eq!(CellState::of(&t(0, 0, 0, 5)), CellState::Unknown);
        assert_eq!(CellState::of(&t(1, 1, 0, 0)), CellState::Blocked);
        assert_eq!(CellState::of(&t(3, 1, 0, 0)), CellState::Partial);
        assert_eq!(CellState::of(&t(4, 0, 0, 9)), CellState::Ok);
        assert_eq!(CellState::of(&t(1, 0, 3, 0)), CellState::Down);
        for s in [
            CellState::Blocked,
            CellState::Partial,
            CellState::Ok,
            CellState::Down,
            CellState::Unknown,
        ] {
            assert!(!s.label().is_empty() && s.class().starts_with("st-"));
        }
    }

    #[test]
    fn the_grid_groups_a_platforms_domains_and_keeps_each_cells_latest_window() {
        let h = 3600;
        let rows = vec![
            // AS1: x.com blocked lately, twimg too; an old clean bin outside the window.
            row("x.com", 1, 100 * h, 5, 0),
            row("x.com", 1, 200 * h, 0, 4),
            row("pbs.twimg.com", 1, 199 * h, 1, 3),
            // AS2: x.com fine.
            row("twitter.com", 2, 150 * h, 4, 0),
            // AS2: example.org, its own platform.
            row("www.example.org", 2, 150 * h, 1, 0),
        ];
        let g = status_grid(&rows);
        assert_eq!(g.platforms, ["x.com", "example.org"]);
        assert_eq!(g.asns, [1, 2]);
        let c = &g.cells[&(0, 1)];
        assert_eq!(c.state, CellState::Blocked);
        assert_eq!((c.latest.ok, c.latest.blocked), (1, 7), "the old bin is left out");
        assert_eq!(c.as_of, 200 * h);
        assert_eq!(g.cells[&(0, 2)].state, CellState::Ok);
        assert_eq!(g.cells[&(1, 2)].state, CellState::Ok);
        assert!(!g.cells.contains_key(&(1, 1)), "never measured");
        assert_eq!(status_grid(&[]), Grid::default());
    }

    #[test]
    fn heatmaps_widen_bins_to_fit_and_rebin_rows() {
        let h = 3600;
        let rows: Vec<Row> = (0..48)
            .flat_map(|i| [row("x.com", 17557, i * h, 1, 1), row("x.com", 45595, i * h, 2, 0)])
            .collect();
        let m = heatmap(&rows);
        assert_eq!((m.asns.clone(), m.bin, m.bins, m.first), (vec![17557, 45595], h, 48, 0));
        assert_eq!(m.cells[&(0, 0)].blocked_share(), Some(0.5));
        assert_eq!(m.cells[&(1, 47)].blocked_share(), Some(0.0));
        // 30 days of hourly rows: half-day bins; 90 days: daily.
        let rows: Vec<Row> = (0..30 * 24).map(|i| row("x.com", 1, i * h, 1, 0)).collect();
        let m = heatmap(&rows);
        assert_eq!((m.bin, m.bins), (12 * h, 60));
        assert_eq!(m.cells[&(0, 0)].measurements, 12);
        let rows: Vec<Row> = (0..90 * 24).map(|i| row("x.com", 1, i * h, 1, 0)).collect();
        let m = heatmap(&rows);
        assert_eq!((m.bin, m.bins), (86_400, 90));
        assert_eq!(m.cells[&(0, 89)].measurements, 24);
        assert_eq!(heatmap(&[]), Heatmap::default());
    }

    #[test]
    fn methods_count_only_blocked_measurements() {
        let mut a = row("x.com", 1, 0, 0, 5);
        a.method = Some("tls.reset".into());
        let mut b = row("x.com", 2, 0, 0, 7);
        b.method = Some("dns.bogon".into());
        let mut c = row("x.com", 1, 0, 9, 0);
        c.method = None;
        let mut d = row("x.com", 3, 0, 0, 1);
        d.method = Some("tls.reset".into());
        assert_eq!(
            method_breakdown(&[a, b, c, d]),
            [("dns.bogon".to_owned(), 7), ("tls.reset".to_owned(), 6)]
        );
    }

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(percent(97, 100), "97%");
        assert_eq!(percent(1, 1000), "1%", "never 0% when some are");
        assert_eq!(percent(999, 1000), "99%", "never 100% when some are not");
        assert_eq!(percent(0, 0), "–");
        assert_eq!(human_time(1_708_178_400), "17 Feb 2024 14:00 UTC");
        assert_eq!(iso_time(1_708_178_400), "2024-02-17T14:00:00Z");
        assert_eq!(country_name("PK"), "Pakistan");
        assert_eq!(country_name("pk"), "Pakistan");
        assert_eq!(country_name("ZZ"), "ZZ");
        assert_eq!(method_phrase("tls.reset"), "TLS/SNI interference (connection reset)");
        assert_eq!(method_phrase("made.up"), "made.up");
    }

    fn event(end: Option<i64>) -> Event {
        let span = |asn| AsnSpan {
            asn,
            start: 1_708_178_400,
            end,
            pattern: Pattern::Steady,
            cycles: 1,
            method: Some(Method::TlsReset),
            confidence: 0.9,
            measurements: 617,
            blocked: 598,
            domains: vec![Arc::from("x.com")],
        };
        Event {
            id: "PK-twitter-1708178400".into(),
            platform: Arc::from("twitter"),
            domain: "x.com".into(),
            domains: vec![Arc::from("x.com")],
            cc: Cc::new("PK").unwrap(),
            asns: vec![span(17557), span(45595), span(59257)],
            method: Some(Method::TlsReset),
            start: 1_708_178_400,
            end,
            pattern: Pattern::Steady,
            confidence: 0.95,
            measurements: 1234,
            blocked: 1197,
            first_evidence: Evidence {
                time: 1_708_178_400,
                domain: Arc::from("x.com"),
                asn: 17557,
                id: None,
            },
        }
    }

    #[test]
    fn the_summary_is_a_sentence_a_journalist_can_quote() {
        let names = |asn: u32| if asn == 17557 { "PTCL".to_owned() } else { String::new() };
        assert_eq!(
            event_summary(&event(None), 5, &names),
            "Since 17 Feb 2024 14:00 UTC, x.com has been blocked on 3 of 5 measured networks in Pakistan \
             (PTCL AS17557, AS45595, AS59257), by TLS/SNI interference (connection reset); 1,234 measurements, \
             97% of them blocked."
        );
        let ended = event_summary(&event(Some(1_708_264_800)), 2, &names);
        assert!(
            ended.starts_with("From 17 Feb 2024 14:00 UTC to 18 Feb 2024 14:00 UTC, x.com was blocked on 3 of 3"),
            "{ended}"
        );
        let mut one = event(None);
        one.asns.truncate(1);
        one.pattern = Pattern::Intermittent;
        let s = event_summary(&one, 1, &names);
        assert!(
            s.contains("on the one measured network in Pakistan (PTCL AS17557)"),
            "{s}"
        );
        assert!(s.contains(", on and off;"), "{s}");
    }

    #[test]
    fn search_entries_are_recognized() {
        use SearchTarget::*;
        assert_eq!(parse_search(" pk "), Country("PK".into()));
        assert_eq!(parse_search("Pakistan"), Country("PK".into()));
        assert_eq!(parse_search("iran"), Country("IR".into()));
        assert_eq!(parse_search("AS17557"), Asn(17557));
        assert_eq!(parse_search("17557"), Asn(17557));
        assert_eq!(
            parse_search("20240216T000000Z_webconnectivity_PK_17557_n1_h20q0"),
            Measurement("20240216T000000Z_webconnectivity_PK_17557_n1_h20q0".into())
        );
        assert_eq!(parse_search("sha256:abcd"), Measurement("sha256:abcd".into()));
        assert_eq!(parse_search("X.com"), Domain("x.com".into()));
        assert_eq!(
            parse_search("https://user@www.x.com:443/home?q=1"),
            Domain("www.x.com".into())
        );
        assert_eq!(parse_search("<script>"), Unknown("<script>".into()));
        assert_eq!(parse_search(""), Unknown(String::new()));
        assert_eq!(parse_search("99999999999"), Unknown("99999999999".into()));
    }

    #[test]
    fn the_probe_is_compared_with_the_control() {
        let tk = serde_json::json!({
            "queries": [{"answers": [{"ipv4": "10.0.0.1"}, {"hostname": "x"}]}],
            "tcp_connect": [{"ip": "10.0.0.1", "port": 443, "status": {"success": false, "failure": "connection_reset"}}],
            "tls_handshakes": [],
            "requests": [{"failure": "connection_reset"}],
            "http_experiment_failure": "connection_reset",
            "control": {
                "dns": {"failure": null, "addrs": ["104.244.42.1"]},
                "tcp_connect": {"104.244.42.1:443": {"status": true, "failure": null}},
                "tls_handshake": {"104.244.42.1:443": {"server_name": "x.com", "status": true, "failure": null}},
                "http_request": {"status_code": 200, "body_length": 2048, "title": "X", "failure": null}
            }
        });
        let c = compare_with_control(&tk);
        let get = |aspect: &str| c.iter().find(|x| x.aspect == aspect).unwrap().clone();
        assert_eq!(get("DNS answers").probe, "10.0.0.1");
        assert_eq!(get("DNS answers").control, "104.244.42.1");
        assert_eq!(get("TCP connect").probe, "10.0.0.1:443 failed: connection_reset");
        assert_eq!(get("TCP connect").control, "104.244.42.1:443 connected");
        assert_eq!(get("TLS handshake").probe, "(none recorded)");
        assert_eq!(
            get("TLS handshake").control,
            "x.com at 104.244.42.1:443: handshake done"
        );
        assert_eq!(get("HTTP(S) fetch").probe, "failed: connection_reset");
        assert_eq!(
            get("HTTP(S) fetch").control,
            "status 200, body 2,048 bytes, title \u{201c}X\u{201d}"
        );
        assert!(compare_with_control(&serde_json::json!({})).is_empty());
        assert!(compare_with_control(&Value::Null).is_empty());
    }
}
