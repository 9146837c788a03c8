//! The Atom feed of blocking events (RFC 4287): one entry when an event opens, one when it
//! spreads to another network ("changed"), and one when it closes, each with a permanent id
//! derived from the event (so feed readers show each change once, and the same entries come
//! back however often the feed is read or the server restarted).
//!
//! Pure: the caller reads the events from the store and passes the feed's own URL.

use censorwatch_detect::Event;

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
    /// `opened`, `changed` or `closed`.
    pub kind: &'static str,
    /// Title.
    pub title: String,
    /// When it happened (Unix seconds).
    pub updated: i64,
    /// Link to the event's page.
    pub link: String,
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

/// The entries of `events`, newest first. `base` is the server's public URL (no trailing `/`).
pub fn entries(events: &[FeedEvent], base: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for FeedEvent { event: e, .. } in events {
        let link = format!("{base}/api/v1/events/{}", e.id);
        let method = e.method.map(|m| m.as_str()).unwrap_or("an undetermined method");
        out.push(Entry {
            id: format!("{TAG}:event:{}:opened", e.id),
            kind: "opened",
            title: format!("{} blocked in {} since {}", e.domain, e.cc, time(e.start)),
            updated: e.start,
            link: link.clone(),
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
                title: format!("{} accessible again in {} since {}", e.domain, e.cc, time(end)),
                updated: end,
                link: link.clone(),
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
                title: format!("{} now also blocked in {} on AS{}", e.domain, e.cc, span.asn),
                updated: span.start,
                link: link.clone(),
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
    out.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.id.cmp(&b.id)));
    out
}

/// The feed's permanent id for a filter (country, platform), independent of the server's
/// address.
pub fn feed_id(cc: Option<&str>, platform: Option<&str>) -> String {
    format!(
        "{TAG}:feed:events:cc={}:platform={}",
        cc.unwrap_or("all"),
        platform.unwrap_or("all")
    )
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
        xml.push_str(&format!("    <link rel=\"alternate\" href=\"{}\"/>\n", escape(&e.link)));
        xml.push_str(&format!("    <category term=\"{}\"/>\n", e.kind));
        xml.push_str(&format!("    <summary>{}</summary>\n", escape(&e.summary)));
        xml.push_str("  </entry>\n");
    }
    xml.push_str("</feed>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("x\u{1}y\n"), "xy\n");
    }
}
