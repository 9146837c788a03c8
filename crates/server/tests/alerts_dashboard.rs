//! Alerts on the dashboard, against a real server over a real SQLite store: the home page lists
//! ongoing outages, each linking to its row on the country page; the home, country and platform
//! pages name their Atom feed (for feed readers and visibly), and each feed so found parses as
//! Atom and holds the outage with a link to that same row. And the home page's country list,
//! although cached and refreshed in the background, shows a store's first measurements at once
//! (an empty list, made when the server started, is not kept).

mod common;

use censorwatch_detect::{AsnOutage, Cc, Level, Outage, SignalKind};
use censorwatch_model::{Measurement, Method, Status};
use censorwatch_server::ServerConfig;
use censorwatch_store::Record;
use common::{TestServer, fixtures};
use std::time::Duration;

/// 2024-02-08 00:00 UTC, election day.
const T0: i64 = 1_707_350_400;

fn record(id: &str, asn: u32, domain: &str, time: i64, status: Status) -> Record {
    let line = fixtures()[0].clone();
    let m = Measurement::from_slice(line.as_bytes()).unwrap();
    let verdict = censorwatch_verdict::Analyzer::with_builtin_fingerprints()
        .verdict(&m)
        .unwrap();
    let mut r = Record::new(line.as_bytes(), &m, verdict);
    r.id = id.into();
    r.meta.probe_cc = "PK".into();
    r.meta.probe_asn = asn;
    r.meta.domain = Some(domain.into());
    r.meta.start_time = time;
    r.verdict.status = status;
    r.verdict.method = (status == Status::Blocked).then_some(Method::TlsReset);
    r
}

/// An ongoing mobile shutdown in PK on two networks.
fn shutdown() -> Outage {
    let span = |asn| AsnOutage {
        asn,
        start: T0,
        end: None,
        level: Level::Critical,
        signals: vec![SignalKind::Bgp],
    };
    Outage {
        id: format!("PK-outage-{T0}"),
        cc: Cc::new("PK").unwrap(),
        start: T0,
        end: None,
        level: Level::Critical,
        signals: vec![SignalKind::Bgp],
        country_wide: false,
        asns: vec![span(45595), span(24499)],
        alerts: Vec::new(),
    }
}

/// The `href` of the page's `<link rel="alternate" type="application/atom+xml">`.
fn feed_link(html: &str) -> String {
    let start = html
        .find(r#"<link rel="alternate" type="application/atom+xml" href=""#)
        .unwrap_or_else(|| panic!("no feed link in the page head:\n{html}"));
    let rest = &html[start..];
    let href = &rest[rest.find("href=\"").unwrap() + 6..];
    let href = &href[..href.find('"').unwrap()];
    assert!(
        html.contains(&format!(
            r#"<a class="feed" type="application/atom+xml" href="{href}">"#
        )),
        "the feed is linked visibly too"
    );
    href.replace("&amp;", "&")
}

/// The alternate links of the entries of an Atom feed.
fn entry_links(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML ({e}):\n{xml}"));
    let atom = "http://www.w3.org/2005/Atom";
    assert!(doc.root_element().has_tag_name((atom, "feed")));
    doc.root_element()
        .children()
        .filter(|c| c.has_tag_name((atom, "entry")))
        .map(|e| {
            e.children()
                .find(|c| c.has_tag_name((atom, "link")) && c.attribute("rel") == Some("alternate"))
                .and_then(|l| l.attribute("href"))
                .expect("an entry link")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn pages_show_outages_and_link_feeds_that_hold_them() {
    let server = TestServer::start(ServerConfig {
        // Nothing recomputes (and so removes) the outage the test stores.
        detection_interval: None,
        ..ServerConfig::default()
    })
    .await;
    let records: Vec<Record> = (0..8)
        .map(|i| record(&format!("m-{i}"), 45595, "x.com", T0 - 3600 + i * 60, Status::Ok))
        .collect();
    server.store.insert(&records).unwrap();
    let outage = shutdown();
    let stored = censorwatch_server::detections::stored_outage(&outage, T0).unwrap();
    server.store.put_detections(&[stored], &[]).unwrap();
    let anchor = format!("outage-PK-outage-{T0}");

    let home = server.get("/").await;
    assert_eq!(home.status, 200);
    let home = home.text();
    assert!(home.contains("<h2 id=\"h-home-outages\">Active outages</h2>"), "{home}");
    let row_link = format!("<a href=\"/country/PK#{anchor}\">Outage in Pakistan</a>");
    assert!(home.contains(&row_link), "{home}");

    let country = server.get("/country/PK").await.text();
    assert!(country.contains(&format!("<tr id=\"{anchor}\">")), "{country}");

    for (page, html, feed_query) in [
        ("/", home.clone(), ""),
        ("/country/PK", country, "?cc=PK"),
        (
            "/platform/PK/x.com",
            server.get("/platform/PK/x.com").await.text(),
            "?cc=PK&platform=x.com",
        ),
    ] {
        let href = feed_link(&html);
        assert_eq!(href, format!("/api/v1/feeds/events.atom{feed_query}"), "{page}");
        let feed = server.get(&href).await;
        assert_eq!(feed.status, 200, "{page}: {}", feed.text());
        let links = entry_links(&feed.text());
        assert_eq!(
            links,
            [format!("http://{}/country/PK#{anchor}", server.addr)],
            "{page}: the outage is in the feed, linking to its row"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_new_stores_first_measurements_show_on_the_home_page_at_once() {
    let server = TestServer::start(ServerConfig {
        detection_interval: None,
        ..ServerConfig::default()
    })
    .await;
    // The list made when the server started (empty) and the one this request made are not
    // what the home page keeps showing.
    let home = server.get("/").await.text();
    assert!(home.contains("No measurement stored yet."), "{home}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    server
        .store
        .insert(&[record("m-first", 45595, "x.com", T0, Status::Ok)])
        .unwrap();
    let home = server.get("/").await.text();
    assert!(home.contains(">Pakistan (PK)</a>"), "{home}");
    server.stop().await;
}
