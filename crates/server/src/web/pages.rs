//! The dashboard's HTML, one function per page, each from a view model assembled elsewhere
//! ([`super::data`]). Templates are maud (compiled into the binary; every interpolated value is
//! HTML-escaped unless wrapped in `PreEscaped`, which only the fixed stylesheet is). No
//! JavaScript: every page reads in full without it.

use super::chart::heatmap_svg;
use super::view::{
    CellState, Comparison, Grid, Heatmap, Tally, country_name, human_time, iso_time, method_phrase, percent, thousands,
};
use censorwatch_detect::{Event, Outage, Pattern};
use censorwatch_store::Record;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::collections::BTreeMap;

/// The one stylesheet, inline in every page. Text colours meet WCAG AA contrast (4.5:1) on
/// their backgrounds.
const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #ffffff; line-height: 1.45; }
header { background: #16324f; color: #ffffff; padding: 0.6rem 1.2rem; display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; }
header a { color: #ffffff; font-weight: bold; text-decoration: none; font-size: 1.15rem; }
header form { margin-left: auto; }
header input { padding: 0.3rem; min-width: 16rem; }
main { padding: 0 1.2rem 2rem; max-width: 72rem; }
a { color: #0b5394; }
table { border-collapse: collapse; margin: 0.6rem 0 1.2rem; }
th, td { border: 1px solid #b0b0b0; padding: 0.3rem 0.55rem; text-align: left; vertical-align: top; }
thead th { background: #eef1f5; }
td.num, th.num { text-align: right; }
.st-blocked { background: #8b1a1a; color: #ffffff; }
.st-partial { background: #fbd38d; color: #1a1a1a; }
.st-ok { background: #d7f0dc; color: #0b3d17; }
.st-down { background: #e2e2e2; color: #1a1a1a; }
.st-unknown { background: #f6f6f6; color: #404040; }
td.cell a { color: inherit; }
table.measurements th, table.measurements td { word-break: break-word; }
table.measurements th a { word-break: break-all; }
.summary { font-size: 1.1rem; border-left: 5px solid #8b1a1a; padding: 0.5rem 0.9rem; background: #fbf3f3; }
.muted { color: #555555; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
pre { background: #f4f4f4; padding: 0.6rem; overflow: auto; max-height: 36rem; font-size: 0.85rem; white-space: pre-wrap; word-break: break-all; }
.legend span { display: inline-block; padding: 0.1rem 0.5rem; margin-right: 0.4rem; border: 1px solid #b0b0b0; }
figure { margin: 0.5rem 0 1rem; overflow-x: auto; }
"#;

/// Percent-encodes a path segment or query value: everything but RFC 3986's unreserved
/// characters. (Hand-rolled: ten lines, where a crate would bring a dependency for one call.)
pub(crate) fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn layout(title: &str, search: &str, body: Markup) -> Markup {
    layout_with_feed(title, search, None, body)
}

/// The Atom feed of alerts (blocking events and outages) narrowed by `query` (`""`: all).
fn feed_href(query: &str) -> String {
    if query.is_empty() {
        "/api/v1/feeds/events.atom".to_owned()
    } else {
        format!("/api/v1/feeds/events.atom?{query}")
    }
}

/// A visible link to a feed, for readers who subscribe by hand.
fn subscribe(href: &str, what: &str) -> Markup {
    html! {
        p.subscribe { a.feed type="application/atom+xml" href=(href) { "Subscribe to " (what) " (Atom feed)" } }
    }
}

/// [`layout`] with a feed readers and browsers discover (`<link rel="alternate">`): (href,
/// title).
fn layout_with_feed(title: &str, search: &str, feed: Option<(&str, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — censorwatch" }
                @if let Some((href, feed_title)) = feed {
                    link rel="alternate" type="application/atom+xml" href=(href) title=(feed_title);
                }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/" { "censorwatch" }
                    form action="/search" method="get" role="search" {
                        label for="q" { "Search " }
                        input #q type="search" name="q" value=(search)
                            placeholder="country, domain, AS number or measurement id";
                        " "
                        button type="submit" { "Search" }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn network(asn: u32, names: &BTreeMap<u32, String>) -> String {
    match names.get(&asn).filter(|n| !n.is_empty()) {
        Some(n) => format!("{n} AS{asn}"),
        None => format!("AS{asn}"),
    }
}

fn time(t: i64) -> Markup {
    html! { time datetime=(iso_time(t)) { (human_time(t)) } }
}

fn end_cell(end: Option<i64>) -> Markup {
    match end {
        Some(t) => time(t),
        None => html! { strong { "ongoing" } },
    }
}

fn pattern_word(p: Pattern) -> &'static str {
    match p {
        Pattern::Steady => "steady",
        Pattern::Intermittent => "intermittent (on and off)",
    }
}

fn events_table(events: &[Event], caption: &str) -> Markup {
    html! {
        @if events.is_empty() {
            p.muted { "No blocking event detected." }
        } @else {
            table.events {
                caption.muted { (caption) }
                thead { tr {
                    th scope="col" { "Event" } th scope="col" { "Country" } th scope="col" { "Networks" }
                    th scope="col" { "Method" } th scope="col" { "Start" } th scope="col" { "End" }
                    th scope="col" class="num" { "Measurements" }
                } }
                tbody {
                    @for e in events {
                        tr {
                            th scope="row" { a href={"/event/" (enc(&e.id))} { (e.domain) " blocked in " (country_name(e.cc.as_str())) } }
                            td { a href={"/country/" (e.cc.as_str())} { (e.cc.as_str()) } }
                            td class="num" { (e.asns.len()) }
                            td { (e.method.map(|m| m.as_str()).unwrap_or("–")) }
                            td { (time(e.start)) }
                            td { (end_cell(e.end)) }
                            td class="num" { (thousands(e.measurements)) }
                        }
                    }
                }
            }
        }
    }
}

/// The home page's data.
pub(crate) struct HomeView {
    /// Countries with measurements, most measured first: (code, measurements).
    pub(crate) countries: Vec<(String, u64)>,
    /// Events still open, latest first.
    pub(crate) open_events: Vec<Event>,
    /// Outages still lasting, latest first.
    pub(crate) open_outages: Vec<Outage>,
}

fn level_word(o: &Outage) -> &'static str {
    match o.level {
        censorwatch_detect::Level::Warning => "warning",
        censorwatch_detect::Level::Critical => "critical",
    }
}

/// The anchor of an outage's row on its country's page (the feed links to it).
fn outage_anchor(o: &Outage) -> String {
    format!("outage-{}", o.id)
}

pub(crate) fn home(v: &HomeView) -> Markup {
    let feed = feed_href("");
    layout_with_feed(
        "Internet censorship observatory",
        "",
        Some((&feed, "censorwatch: blocking events and outages")),
        html! {
            h1 { "Internet censorship observatory" }
            p { "Which platforms are blocked, on which networks, since when and how — from measurements anyone can check." }
            section aria-labelledby="h-events" {
                h2 #h-events { "Active blocking events" }
                (events_table(&v.open_events, "Blocks still in force, latest first"))
            }
            section aria-labelledby="h-home-outages" {
                h2 #h-home-outages { "Active outages" }
                @if v.open_outages.is_empty() {
                    p.muted { "No network outage is ongoing." }
                } @else {
                    table.outages {
                        caption.muted { "Networks that fell silent or out of reach, still lasting, latest first" }
                        thead { tr {
                            th scope="col" { "Outage" } th scope="col" { "Level" }
                            th scope="col" class="num" { "Networks" } th scope="col" { "Start" }
                        } }
                        tbody {
                            @for o in &v.open_outages {
                                tr {
                                    th scope="row" {
                                        a href={"/country/" (enc(o.cc.as_str())) "#" (enc(&outage_anchor(o)))} {
                                            "Outage in " (country_name(o.cc.as_str()))
                                            @if o.country_wide { " (country-wide)" }
                                        }
                                    }
                                    td { (level_word(o)) }
                                    td class="num" { (o.asns.len()) }
                                    td { (time(o.start)) }
                                }
                            }
                        }
                    }
                }
            }
            (subscribe(&feed, "new blocks and outages everywhere"))
            section aria-labelledby="h-countries" {
                h2 #h-countries { "Countries with data" }
                @if v.countries.is_empty() {
                    p.muted { "No measurement stored yet." }
                } @else {
                    table.countries {
                        thead { tr { th scope="col" { "Country" } th scope="col" class="num" { "Measurements" } } }
                        tbody {
                            @for (cc, n) in &v.countries {
                                tr {
                                    th scope="row" { a href={"/country/" (enc(cc))} { (country_name(cc)) " (" (cc) ")" } }
                                    td class="num" { (thousands(*n)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The country page's data.
pub(crate) struct CountryView {
    pub(crate) cc: String,
    pub(crate) grid: Grid,
    pub(crate) names: BTreeMap<u32, String>,
    pub(crate) events: Vec<Event>,
    pub(crate) outages: Vec<Outage>,
}

pub(crate) fn country(v: &CountryView) -> Markup {
    let name = country_name(&v.cc);
    let open: Vec<Event> = v.events.iter().filter(|e| e.end.is_none()).cloned().collect();
    let past: Vec<Event> = v.events.iter().filter(|e| e.end.is_some()).cloned().collect();
    let feed = feed_href(&format!("cc={}", enc(&v.cc)));
    let feed_title = format!("censorwatch: blocking events and outages in {name}");
    layout_with_feed(
        &name,
        &v.cc,
        Some((&feed, &feed_title)),
        html! {
            h1 { (name) " (" (v.cc) ")" }
            (subscribe(&feed, &format!("new blocks and outages in {name}")))
            section aria-labelledby="h-grid" {
                h2 #h-grid { "Platforms by network: latest state" }
                @if v.grid.platforms.is_empty() {
                    p.muted { "No measurement of this country is stored." }
                } @else {
                    p.muted { "Each cell: what the measurements of the last hours before that cell's newest measurement say." }
                    p.legend {
                        @for s in [CellState::Blocked, CellState::Partial, CellState::Ok, CellState::Down, CellState::Unknown] {
                            span class=(s.class()) { (s.label()) }
                        }
                    }
                    table.grid {
                        caption { "Platforms (rows) on networks (columns) in " (name) }
                        thead { tr {
                            th scope="col" { "Platform" }
                            @for asn in &v.grid.asns { th scope="col" { (network(*asn, &v.names)) } }
                        } }
                        tbody {
                            @for (i, platform) in v.grid.platforms.iter().enumerate() {
                                tr {
                                    th scope="row" { a href={"/platform/" (enc(&v.cc)) "/" (enc(platform))} { (platform) } }
                                    @for asn in &v.grid.asns {
                                        @match v.grid.cells.get(&(i, *asn)) {
                                            Some(c) => {
                                                td class={"cell " (c.state.class())} title={(c.latest.blocked) " of " (c.latest.conclusive()) " conclusive blocked, as of " (iso_time(c.as_of))} {
                                                    (c.state.label())
                                                    br;
                                                    small { (percent(c.latest.blocked, c.latest.conclusive())) " blocked, n=" (c.latest.measurements) }
                                                }
                                            }
                                            None => { td.cell.st-unknown { "Not measured" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="h-active" {
                h2 #h-active { "Active events" }
                (events_table(&open, "Blocks still in force"))
                @if !past.is_empty() {
                    h3 { "Past events" }
                    (events_table(&past, "Blocks that ended"))
                }
                p { a href={"/api/v1/events?cc=" (enc(&v.cc)) "&format=csv"} { "Download the events (CSV)" } }
            }
            section aria-labelledby="h-outages" {
                h2 #h-outages { "Outages" }
                @if v.outages.is_empty() {
                    p.muted { "No network outage detected." }
                } @else {
                    table.outages {
                        thead { tr {
                            th scope="col" { "Outage" } th scope="col" { "Level" } th scope="col" { "Signals" }
                            th scope="col" { "Networks" } th scope="col" { "Start" } th scope="col" { "End" }
                        } }
                        tbody {
                            @for o in &v.outages {
                                tr id=(outage_anchor(o)) {
                                    th scope="row" { (o.id) @if o.country_wide { " (country-wide)" } }
                                    td { (level_word(o)) }
                                    td { (o.signals.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")) }
                                    td { (o.asns.iter().map(|a| network(a.asn, &v.names)).collect::<Vec<_>>().join(", ")) }
                                    td { (time(o.start)) }
                                    td { (end_cell(o.end)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The platform page's data.
pub(crate) struct PlatformView {
    pub(crate) cc: String,
    /// The label domain (`x.com`).
    pub(crate) label: String,
    /// The platform's domains measured in the country.
    pub(crate) domains: Vec<String>,
    pub(crate) heatmap: Heatmap,
    /// Per network: its counts over the shown span.
    pub(crate) per_asn: Vec<(u32, Tally)>,
    pub(crate) methods: Vec<(String, u64)>,
    pub(crate) events: Vec<Event>,
    pub(crate) names: BTreeMap<u32, String>,
}

pub(crate) fn platform(v: &PlatformView) -> Markup {
    let country = country_name(&v.cc);
    let title = format!("{} in {}", v.label, country);
    let total_blocked: u64 = v.methods.iter().map(|(_, n)| n).sum();
    let names = |asn: u32| network(asn, &v.names);
    let feed = feed_href(&format!("cc={}&platform={}", enc(&v.cc), enc(&v.label)));
    let feed_title = format!("censorwatch: blocks of {title}, and outages in {country}");
    layout_with_feed(
        &title,
        &v.label,
        Some((&feed, &feed_title)),
        html! {
            nav aria-label="Breadcrumb" { a href="/" { "Home" } " › " a href={"/country/" (enc(&v.cc))} { (country) } " › " (v.label) }
            h1 { (title) }
            (subscribe(&feed, &format!("blocks of {} and outages in {country}", v.label)))
            @if v.domains.is_empty() {
                p.muted { "No measurement of this platform in this country is stored." }
            } @else {
                p { "Domains measured: " (v.domains.join(", ")) }
                section aria-labelledby="h-timeline" {
                    h2 #h-timeline { "Timeline by network" }
                    figure {
                        (heatmap_svg(&format!("Blocked share of {} per network in {}", v.label, country), &v.heatmap, &names))
                        figcaption.muted { "Shade: share of conclusive measurements judged blocked. Hover or focus a cell for its numbers; the table below gives the totals." }
                    }
                    table.networks {
                        caption { "Measurements per network over the timeline" }
                        thead { tr {
                            th scope="col" { "Network" } th scope="col" class="num" { "Measurements" }
                            th scope="col" class="num" { "Blocked" } th scope="col" class="num" { "Accessible" }
                            th scope="col" class="num" { "Blocked share" }
                        } }
                        tbody {
                            @for (asn, t) in &v.per_asn {
                                tr {
                                    th scope="row" { (names(*asn)) }
                                    td class="num" { (thousands(t.measurements)) }
                                    td class="num" { (thousands(t.blocked)) }
                                    td class="num" { (thousands(t.ok)) }
                                    td class="num" { (percent(t.blocked, t.conclusive())) }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="h-methods" {
                    h2 #h-methods { "How it is blocked" }
                    @if v.methods.is_empty() {
                        p.muted { "No measurement was judged blocked." }
                    } @else {
                        table.methods {
                            thead { tr { th scope="col" { "Method" } th scope="col" { "Meaning" } th scope="col" class="num" { "Blocked measurements" } th scope="col" class="num" { "Share" } } }
                            tbody {
                                @for (m, n) in &v.methods {
                                    tr {
                                        th scope="row" { code { (m) } }
                                        td { (method_phrase(m)) }
                                        td class="num" { (thousands(*n)) }
                                        td class="num" { (percent(*n, total_blocked)) }
                                    }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="h-downloads" {
                    h2 #h-downloads { "Data" }
                    ul {
                        @for d in &v.domains {
                            li { a.csv href={"/api/v1/measurements?cc=" (enc(&v.cc)) "&domain=" (enc(d)) "&limit=1000&format=csv"} { "Latest measurements of " (d) " (CSV)" } }
                        }
                        li { a.csv href={"/api/v1/events?cc=" (enc(&v.cc)) "&domain=" (enc(&v.label)) "&format=csv"} { "Events (CSV)" } }
                    }
                }
            }
            section aria-labelledby="h-events" {
                h2 #h-events { "Events" }
                (events_table(&v.events, "Blocks of this platform in this country, latest first"))
            }
        },
    )
}

/// The event page's data.
pub(crate) struct EventView {
    pub(crate) event: Event,
    pub(crate) summary: String,
    pub(crate) names: BTreeMap<u32, String>,
    /// Latest measurements of the event (newest first).
    pub(crate) measurements: Vec<Record>,
}

pub(crate) fn event(v: &EventView) -> Markup {
    let e = &v.event;
    let country = country_name(e.cc.as_str());
    let title = format!("{} blocked in {}", e.domain, country);
    layout(
        &title,
        "",
        html! {
            nav aria-label="Breadcrumb" {
                a href="/" { "Home" } " › " a href={"/country/" (e.cc.as_str())} { (country) } " › "
                a href={"/platform/" (e.cc.as_str()) "/" (enc(&e.domain))} { (e.domain) } " › event"
            }
            h1 { (title) }
            p.summary #summary { (v.summary) }
            table.facts {
                caption.muted { "The event" }
                tbody {
                    tr { th scope="row" { "What" } td { (e.domain) " (platform " (e.platform.as_ref()) "; domains seen blocked: " (e.domains.iter().map(|d| d.as_ref()).collect::<Vec<_>>().join(", ")) ")" } }
                    tr { th scope="row" { "Where" } td { (country) " (" (e.cc.as_str()) "), " (e.asns.len()) " networks" } }
                    tr { th scope="row" { "Since" } td { (time(e.start)) } }
                    tr { th scope="row" { "Until" } td { (end_cell(e.end)) } }
                    tr { th scope="row" { "How measured" } td {
                        "OONI Web Connectivity measurements from volunteers' networks, each compared with a control fetch from an uncensored network. "
                        @if let Some(m) = e.method { "Most blocked measurements show " code { (m.as_str()) } ": " (method_phrase(m.as_str())) "." }
                    } }
                    tr { th scope="row" { "Pattern" } td { (pattern_word(e.pattern)) } }
                    tr { th scope="row" { "Confidence" } td { (format!("{:.0}%", e.confidence * 100.0)) " (lower end of the 95% interval of the blocked share)" } }
                    tr { th scope="row" { "First evidence" } td {
                        @match &e.first_evidence.id {
                            Some(id) => { a href={"/measurement/" (enc(id))} { (id) } }
                            None => { "(no id)" }
                        }
                        ", " (time(e.first_evidence.time)) " on AS" (e.first_evidence.asn)
                    } }
                    tr { th scope="row" { "Id" } td { code { (e.id) } } }
                }
            }
            p { a #evidence href={"/api/v1/events/" (enc(&e.id)) "/evidence"} { "Download the evidence bundle (tar.gz, signed; check it with " code { "censorwatch evidence verify" } ")" } }
            section aria-labelledby="h-networks" {
                h2 #h-networks { "Affected networks" }
                table.affected {
                    thead { tr {
                        th scope="col" { "Network" } th scope="col" { "Start" } th scope="col" { "End" } th scope="col" { "Method" }
                        th scope="col" { "Pattern" } th scope="col" class="num" { "Measurements" } th scope="col" class="num" { "Blocked" }
                    } }
                    tbody {
                        @for a in &e.asns {
                            tr {
                                th scope="row" { (network(a.asn, &v.names)) }
                                td { (time(a.start)) }
                                td { (end_cell(a.end)) }
                                td { (a.method.map(|m| m.as_str()).unwrap_or("–")) }
                                td { (pattern_word(a.pattern)) }
                                td class="num" { (thousands(a.measurements)) }
                                td class="num" { (thousands(a.blocked)) }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="h-measurements" {
                h2 #h-measurements { "Latest measurements" }
                (measurements_table(&v.measurements))
            }
        },
    )
}

fn measurements_table(records: &[Record]) -> Markup {
    html! {
        @if records.is_empty() {
            p.muted { "None found." }
        } @else {
            table.measurements {
                thead { tr {
                    th scope="col" { "Measurement" } th scope="col" { "Time" } th scope="col" { "Country" }
                    th scope="col" { "Network" } th scope="col" { "Input" } th scope="col" { "Verdict" } th scope="col" { "Method" }
                } }
                tbody {
                    @for r in records {
                        tr {
                            th scope="row" { a href={"/measurement/" (enc(&r.id))} { (r.id) } }
                            td { (time(r.meta.start_time)) }
                            td { (r.meta.probe_cc) }
                            td { "AS" (r.meta.probe_asn) " " (r.meta.probe_network_name) }
                            td { (r.meta.input.as_deref().unwrap_or("")) }
                            td { (r.verdict.status.as_str()) }
                            td { (r.verdict.method.map(|m| m.as_str()).unwrap_or("–")) }
                        }
                    }
                }
            }
        }
    }
}

/// The measurement page's data.
pub(crate) struct MeasurementView {
    pub(crate) record: Record,
    /// The raw measurement, pretty-printed (or as stored when it does not parse).
    pub(crate) pretty: String,
    pub(crate) comparisons: Vec<Comparison>,
    /// The test keys without `control`, pretty.
    pub(crate) probe_keys: String,
    /// `test_keys.control`, pretty (empty when absent).
    pub(crate) control: String,
}

pub(crate) fn measurement(v: &MeasurementView) -> Markup {
    let r = &v.record;
    let verdict = &r.verdict;
    layout(
        &format!("Measurement {}", r.id),
        &r.id,
        html! {
            nav aria-label="Breadcrumb" {
                a href="/" { "Home" } " › " a href={"/country/" (enc(&r.meta.probe_cc))} { (country_name(&r.meta.probe_cc)) } " › measurement"
            }
            h1 { "Measurement" }
            p { code #measurement-id { (r.id) } }
            table.facts {
                tbody {
                    tr { th scope="row" { "Input" } td { (r.meta.input.as_deref().unwrap_or("(none)")) } }
                    tr { th scope="row" { "Time" } td { (time(r.meta.start_time)) } }
                    tr { th scope="row" { "Network" } td { (country_name(&r.meta.probe_cc)) ", AS" (r.meta.probe_asn) " " (r.meta.probe_network_name) } }
                    tr { th scope="row" { "Test" } td { (r.meta.test_name) } }
                }
            }
            section aria-labelledby="h-verdict" {
                h2 #h-verdict { "Verdict" }
                p #verdict {
                    strong class=(verdict_class(verdict.status.as_str())) { (verdict.status.as_str()) }
                    @if let Some(m) = verdict.method { " by " code { (m.as_str()) } " — " (method_phrase(m.as_str())) }
                    " (confidence " (format!("{:.0}%", verdict.confidence * 100.0)) ")"
                    @if let Some(b) = &verdict.blockpage { "; blockpage " q { (b) } }
                }
                h3 { "Why" }
                ul #reasons { @for reason in &verdict.reasons { li { (reason) } } }
            }
            section aria-labelledby="h-control" {
                h2 #h-control { "The probe beside the control" }
                @if v.comparisons.is_empty() {
                    p.muted { "This measurement has no web_connectivity observations to compare." }
                } @else {
                    table.comparison {
                        thead { tr { th scope="col" { "Step" } th scope="col" { "From the probe's network" } th scope="col" { "From the control (uncensored)" } } }
                        tbody {
                            @for c in &v.comparisons {
                                tr { th scope="row" { (c.aspect) } td { (c.probe) } td { (c.control) } }
                            }
                        }
                    }
                }
                div.side {
                    div { h3 { "Probe's test keys" } pre #probe-keys { (v.probe_keys) } }
                    div { h3 { "Control's results (test_keys.control)" } pre #control-keys { @if v.control.is_empty() { "(none)" } @else { (v.control) } } }
                }
            }
            section aria-labelledby="h-raw" {
                h2 #h-raw { "Raw measurement" }
                p { a href={"/api/v1/measurements/" (enc(&r.id))} { "As JSON from the API" } }
                pre #raw { (v.pretty) }
            }
        },
    )
}

fn verdict_class(status: &str) -> &'static str {
    match status {
        "blocked" => "st-blocked",
        "ok" => "st-ok",
        "down" => "st-down",
        _ => "st-unknown",
    }
}

/// The search page's data.
pub(crate) struct SearchView {
    pub(crate) q: String,
    /// What the entry was read as, in words.
    pub(crate) understood: String,
    /// Links to pages (href, text).
    pub(crate) links: Vec<(String, String)>,
    pub(crate) measurements: Vec<Record>,
}

pub(crate) fn search(v: &SearchView) -> Markup {
    layout(
        "Search",
        &v.q,
        html! {
            h1 { "Search" }
            @if v.q.is_empty() {
                p { "Search by country (PK, Pakistan), domain (x.com), network (AS17557) or measurement id." }
            } @else {
                p #understood { (v.understood) }
                @if !v.links.is_empty() {
                    ul.links { @for (href, text) in &v.links { li { a href=(href) { (text) } } } }
                }
                @if !v.measurements.is_empty() {
                    h2 { "Latest measurements" }
                    (measurements_table(&v.measurements))
                }
            }
        },
    )
}

/// An error page (404 for unknown things, 400 for bad input, 503 when the store fails).
pub(crate) fn error(heading: &str, message: &str) -> Markup {
    layout(
        heading,
        "",
        html! {
            h1 { (heading) }
            p #error { (message) }
            p { a href="/" { "Back to the home page" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(enc("x.com"), "x.com");
        assert_eq!(enc("sha256:ab/../c d"), "sha256%3Aab%2F..%2Fc%20d");
        assert_eq!(enc("\"><script>"), "%22%3E%3Cscript%3E");
    }

    #[test]
    fn pages_are_html_with_a_language_and_escape_everything() {
        let hostile = "<script>alert(1)</script>";
        let page = search(&SearchView {
            q: hostile.into(),
            understood: format!("Nothing matches {hostile}"),
            links: vec![(format!("/x?{hostile}"), hostile.into())],
            measurements: vec![],
        })
        .into_string();
        assert!(page.starts_with("<!DOCTYPE html><html lang=\"en\">"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        let e = error("Not found", hostile).into_string();
        assert!(!e.contains("<script>") && e.contains("<h1>Not found</h1>"));
    }
}
