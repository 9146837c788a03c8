//! The Atom feed of blocking events and outages (RFC 4287): one entry when an event or outage
//! opens, one when it spreads to another network ("changed"), and one when it closes, each
//! with a permanent id derived from the event or outage (so feed readers show each change once,
//! and the same entries come back however often the feed is read or the server restarted).
//! A deadline watch whose deadline has passed has one entry, with its report. Every entry
//! carries two categories: what happened (`opened`, `changed`, `closed`, `due`) and what it is
//! about (`event`, `outage`, `watch`).
//!
//! Pure: the caller reads the events and outages from the store and passes the feed's own URL.

use censorwatch_detect::{Event, Level, Outage};

/// An event as the feed needs it: the event and when it was last recomputed (Unix seconds).
#[derive(Debug, Clone)]
pub struct FeedEvent {
    /// The event.
    pub event: Event,
    /// When its stored form last changed.
    pub updated: i64,
}

/// One feed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `tag:` URI, permanent.
    pub id: String,
    /// `opened`, `changed`, `closed` (events, outages) or `due` (watches).
    pub kind: &'static str,
    /// `event`, `outage` or `watch`.
    pub subject: &'static str,
    /// Title.
    pub title: String,
    /// When it happened (Unix seconds).
    pub updated: i64,
    /// Link to the page a reader opens: the event's, or the outage's country page.
    pub link: String,
    /// The same as JSON from the API (`rel="related"`), where there is such an address.
    pub related: Option<String>,
    /// Plain-text summary.
    pub summary: String,
}

/// The Atom `tag:` authority: fixed, so entry ids never change with the server's address.
const TAG: &str = "tag:censorwatch.org,2024";

/// Escapes text for XML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 3339 UTC.
fn time(seconds: i64) -> String {
    crate::api_routes::iso_time(seconds)
}

fn networks(e: &Event) -> String {
    let asns: Vec<String> = e.asns.iter().map(|a| format!("AS{}", a.asn)).collect();
    match asns.len() {
        0 => "no network".into(),
        1 => format!("1 network ({})", asns[0]),
        n => format!("{n} networks ({})", asns.join(", ")),
    }
}

/// Percent-encodes a URL path segment (everything but RFC 3986's unreserved characters).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Newest first; ties by id, so the order is stable.
pub fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.id.cmp(&b.id)));
}

/// The entries of `events`, newest first. `base` is the server's public URL (no trailing `/`).
/// Each links to the event's dashboard page.
pub fn entries(events: &[FeedEvent], base: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for FeedEvent { event: e, .. } in events {
        let link = format!("{base}/event/{}", segment(&e.id));
        let related = Some(format!("{base}/api/v1/events/{}", segment(&e.id)));
        let method = e.method.map(|m| m.as_str()).unwrap_or("an undetermined method");
        out.push(Entry {
            id: format!("{TAG}:event:{}:opened", e.id),
            kind: "opened",
            subject: "event",
            title: format!("{} blocked in {} since {}", e.domain, e.cc, time(e.start)),
            updated: e.start,
            link: link.clone(),
            related: related.clone(),
            summary: format!(
                "{} ({}) blocked in {} on {}, by {method}, since {}; {} measurements, confidence {:.2}.",
                e.domain,
                e.platform,
                e.cc,
                networks(e),
                time(e.start),
                e.measurements,
                e.confidence
            ),
        });
        if let Some(end) = e.end {
            out.push(Entry {
                id: format!("{TAG}:event:{}:closed", e.id),
                kind: "closed",
                subject: "event",
                title: format!("{} accessible again in {} since {}", e.domain, e.cc, time(end)),
                updated: end,
                link: link.clone(),
                related: related.clone(),
                summary: format!(
                    "The block of {} in {} that began {} ended {} ({}).",
                    e.domain,
                    e.cc,
                    time(e.start),
                    time(end),
                    networks(e)
                ),
            });
        }
        // The block spreading to another network is a change of its own, at that network's start.
        for span in e.asns.iter().filter(|a| a.start > e.start) {
            out.push(Entry {
                id: format!("{TAG}:event:{}:network:{}", e.id, span.asn),
                kind: "changed",
                subject: "event",
                title: format!("{} now also blocked in {} on AS{}", e.domain, e.cc, span.asn),
                updated: span.start,
                link: link.clone(),
                related: related.clone(),
                summary: format!(
                    "Since {}, {} is blocked in {} on AS{} too ({} in all).",
                    time(span.start),
                    e.domain,
                    e.cc,
                    span.asn,
                    networks(e)
                ),
            });
        }
    }
    sort(&mut out);
    out
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Warning => "Possible",
        Level::Critical => "Major",
    }
}

fn signal_words(o: &Outage) -> String {
    let words: Vec<&str> = o
        .signals
        .iter()
        .map(|s| match s {
            censorwatch_detect::SignalKind::Bgp => "BGP visibility",
            censorwatch_detect::SignalKind::ProbeVolume => "probe measurements",
            censorwatch_detect::SignalKind::ControlReachability => "reachability from the control servers",
        })
        .collect();
    match words.len() {
        0 => "no signal".into(),
        _ => words.join(", "),
    }
}

fn outage_networks(o: &Outage) -> String {
    let asns: Vec<String> = o.asns.iter().map(|a| format!("AS{}", a.asn)).collect();
    let list = match asns.len() {
        0 => String::new(),
        1 => format!("1 network ({})", asns[0]),
        n => format!("{n} networks ({})", asns.join(", ")),
    };
    match (o.country_wide, list.is_empty()) {
        (true, true) => "the whole country".into(),
        (true, false) => format!("the whole country and {list}"),
        (false, true) => "no network".into(),
        (false, false) => list,
    }
}

/// The entries of `outages`, newest first: opened, each network it spread to, closed. Each
/// links to the outage's row on its country's dashboard page.
pub fn outage_entries(outages: &[Outage], base: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for o in outages {
        let cc = o.cc.as_str();
        let link = format!("{base}/country/{cc}#outage-{}", segment(&o.id));
        let related = None;
        out.push(Entry {
            id: format!("{TAG}:outage:{}:opened", o.id),
            kind: "opened",
            subject: "outage",
            title: format!("{} network outage in {cc} since {}", level_word(o.level), time(o.start)),
            updated: o.start,
            link: link.clone(),
            related: related.clone(),
            summary: format!(
                "{} network outage ({}) in {cc} on {}, since {}: {} fell well below their usual level.",
                level_word(o.level),
                match o.level {
                    Level::Warning => "warning",
                    Level::Critical => "critical",
                },
                outage_networks(o),
                time(o.start),
                signal_words(o)
            ),
        });
        if let Some(end) = o.end {
            out.push(Entry {
                id: format!("{TAG}:outage:{}:closed", o.id),
                kind: "closed",
                subject: "outage",
                title: format!("Network outage in {cc} over since {}", time(end)),
                updated: end,
                link: link.clone(),
                related: related.clone(),
                summary: format!(
                    "The network outage in {cc} that began {} ended {} ({}).",
                    time(o.start),
                    time(end),
                    outage_networks(o)
                ),
            });
        }
        for span in o.asns.iter().filter(|a| a.start > o.start) {
            out.push(Entry {
                id: format!("{TAG}:outage:{}:network:{}", o.id, span.asn),
                kind: "changed",
                subject: "outage",
                title: format!("Network outage in {cc} now also on AS{}", span.asn),
                updated: span.start,
                link: link.clone(),
                related: related.clone(),
                summary: format!(
                    "Since {}, the network outage in {cc} reaches AS{} too ({} in all).",
                    time(span.start),
                    span.asn,
                    outage_networks(o)
                ),
            });
        }
    }
    sort(&mut out);
    out
}

/// The entries of the watches whose deadline has passed (`report.status == "due"`): one each,
/// at its deadline, with its report's summary, linking to the watch in the API.
pub fn watch_entries(watches: &[(super::watch::Watch, super::watch::WatchReport)], base: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (w, report) in watches.iter().filter(|(_, r)| r.status == "due") {
        let what = if w.label.is_empty() {
            format!("{} in {}", w.platform_name(), w.cc)
        } else {
            w.label.clone()
        };
        out.push(Entry {
            id: format!("{TAG}:watch:{}:due", w.id),
            kind: "due",
            subject: "watch",
            title: format!(
                "Deadline {} passed ({what}): restored on {} of {} networks",
                time(w.deadline),
                report.restored,
                report.networks
            ),
            updated: w.deadline,
            link: format!("{base}/api/v1/watches/{}", segment(&w.id)),
            related: None,
            summary: format!(
                "At the deadline, {}. Judged from the measurements of {} to {}.",
                report.summary,
                time(report.since),
                time(report.until)
            ),
        });
    }
    sort(&mut out);
    out
}

/// The feed's permanent id for a filter (country, platform, network, kind), independent of
/// the server's address. Filters added after the first release (network, kind) appear only
/// when given, so the ids of the older feeds did not change.
pub fn feed_id(cc: Option<&str>, platform: Option<&str>, asn: Option<u32>, kind: Option<&str>) -> String {
    let mut id = format!(
        "{TAG}:feed:events:cc={}:platform={}",
        cc.unwrap_or("all"),
        platform.unwrap_or("all")
    );
    if let Some(asn) = asn {
        id.push_str(&format!(":asn={asn}"));
    }
    if let Some(kind) = kind {
        id.push_str(&format!(":kind={kind}"));
    }
    id
}

/// The feed document: `id` from [`feed_id`], `self_url` the feed's own URL, `title` what it
/// covers.
pub fn render(entries: &[Entry], id: &str, self_url: &str, title: &str, now: i64) -> String {
    let updated = entries.iter().map(|e| e.updated).max().unwrap_or(now);
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    xml.push_str(&format!("  <id>{}</id>\n", escape(id)));
    xml.push_str(&format!("  <title>{}</title>\n", escape(title)));
    xml.push_str(&format!("  <updated>{}</updated>\n", time(updated)));
    xml.push_str("  <author><name>censorwatch</name></author>\n");
    xml.push_str(&format!("  <link rel=\"self\" href=\"{}\"/>\n", escape(self_url)));
    xml.push_str("  <generator>censorwatch</generator>\n");
    for e in entries {
        xml.push_str("  <entry>\n");
        xml.push_str(&format!("    <id>{}</id>\n", escape(&e.id)));
        xml.push_str(&format!("    <title>{}</title>\n", escape(&e.title)));
        xml.push_str(&format!("    <updated>{}</updated>\n", time(e.updated)));
        xml.push_str(&format!(
            "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
            escape(&e.link)
        ));
        if let Some(related) = &e.related {
            xml.push_str(&format!(
                "    <link rel=\"related\" type=\"application/json\" href=\"{}\"/>\n",
                escape(related)
            ));
        }
        xml.push_str(&format!("    <category term=\"{}\"/>\n", e.kind));
        xml.push_str(&format!("    <category term=\"{}\"/>\n", e.subject));
        xml.push_str(&format!("    <summary>{}</summary>\n", escape(&e.summary)));
        xml.push_str("  </entry>\n");
    }
    xml.push_str("</feed>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use censorwatch_detect::{AsnOutage, Cc, SignalKind};

    /// A mobile shutdown on election day: AS45595 from 00:00, AS24499 from 02:00, over at 20:00.
    fn shutdown(end: Option<i64>) -> Outage {
        let t0 = 1_707_350_400;
        let span = |asn, start| AsnOutage {
            asn,
            start,
            end,
            level: Level::Critical,
            signals: vec![SignalKind::Bgp],
        };
        Outage {
            id: format!("PK-outage-{t0}"),
            cc: Cc::new("PK").unwrap(),
            start: t0,
            end,
            level: Level::Critical,
            signals: vec![SignalKind::Bgp, SignalKind::ProbeVolume],
            country_wide: false,
            asns: vec![span(45595, t0), span(24499, t0 + 7200)],
            alerts: Vec::new(),
        }
    }

    #[test]
    fn outages_become_entries_with_permanent_ids() {
        let open = outage_entries(&[shutdown(None)], "http://h");
        let ids: Vec<&str> = open.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "tag:censorwatch.org,2024:outage:PK-outage-1707350400:network:24499",
                "tag:censorwatch.org,2024:outage:PK-outage-1707350400:opened",
            ],
            "newest first"
        );
        assert!(open.iter().all(|e| e.subject == "outage"));
        assert_eq!(open[1].title, "Major network outage in PK since 2024-02-08T00:00:00Z");
        assert_eq!(
            open[1].summary,
            "Major network outage (critical) in PK on 2 networks (AS45595, AS24499), since 2024-02-08T00:00:00Z: \
             BGP visibility, probe measurements fell well below their usual level."
        );
        assert_eq!(open[1].link, "http://h/country/PK#outage-PK-outage-1707350400");
        let closed = outage_entries(&[shutdown(Some(1_707_422_400))], "http://h");
        assert_eq!(closed.len(), 3);
        assert_eq!((closed[0].kind, closed[0].updated), ("closed", 1_707_422_400));
        assert_eq!(
            &closed[1..],
            &open[..],
            "the earlier entries do not change when it closes"
        );
        let xml = render(
            &closed,
            &feed_id(Some("PK"), None, Some(45595), None),
            "http://h/f",
            "t",
            0,
        );
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let terms: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("category"))
            .filter_map(|n| n.attribute("term"))
            .collect();
        assert_eq!(terms, ["closed", "outage", "changed", "outage", "opened", "outage"]);
        assert!(xml.contains("<id>tag:censorwatch.org,2024:feed:events:cc=PK:platform=all:asn=45595</id>"));
        assert_eq!(
            feed_id(Some("PK"), Some("twitter"), None, None),
            "tag:censorwatch.org,2024:feed:events:cc=PK:platform=twitter",
            "the ids of feeds that existed before outages did not change"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("x\u{1}y\n"), "xy\n");
    }
}
