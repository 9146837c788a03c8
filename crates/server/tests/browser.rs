//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` by fantoccini) against a real server on loopback with a seeded block.
//!
//! The seed: x.com and www.wikipedia.org measured from five Pakistani networks four times an
//! hour for 48 hours (real OONI web_connectivity measurements from testdata/ooni, rewritten),
//! x.com blocked (DNS bogon answers) on three of them from hours 20, 22 and 26; submitted
//! through the API, with events computed by the server's detection worker. One network's name
//! and one input URL are hostile HTML.
//!
//! With JavaScript disabled, the test walks home → country → platform → event → measurement
//! by clicking links, checks each page's headings and content, the heatmap's rows, the CSV
//! downloads (parsed with the csv crate), the evidence link, search and the 404 pages, and
//! saves a PNG screenshot of each page under `target/screenshots/`. With JavaScript enabled, it
//! checks that the hostile strings are shown as text and ran nothing.
//!
//! Chromium and chromedriver are required: the test fails, not skips, without them (CI
//! installs them with scripts/system-deps). `CHROMIUM` and `CHROMEDRIVER` override the paths.

mod common;

use censorwatch_server::ServerConfig;
use common::TestServer;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOUR: i64 = 3600;
const HOURS: i64 = 48;
/// (ASN, network name, first blocked hour of x.com).
const NETWORKS: [(u32, &str, Option<i64>); 5] = [
    (17557, "PTCL", Some(20)),
    (24499, "Telenor Pakistan", Some(22)),
    (45595, "Jazz", Some(26)),
    (59257, "Zong", None),
    (9541, HOSTILE_NAME, None),
];
const HOSTILE_NAME: &str = "<script>window.__pwned=1</script>Cyber \"Net\" & <b>Co</b>";
const HOSTILE_INPUT: &str = "https://x.com/<img src=x onerror=\"window.__pwned=2\">";

fn ooni_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn fixture_where(pick: impl Fn(&Value) -> bool) -> Value {
    common::fixtures()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|m| pick(m))
        .expect("the fixture is in testdata/ooni")
}

/// The seed as JSONL batches, and its first hour.
fn seed() -> (Vec<String>, i64) {
    let now = censorwatch_server::detections::unix_now();
    let t0 = (now - HOURS * HOUR) / HOUR * HOUR;
    let blocked = fixture_where(|m| m["input"] == "https://www.facebook.com/");
    let clean = fixture_where(|m| m["input"] == "http://www.collegehumor.com/");
    let mut lines = Vec::new();
    for hour in 0..HOURS {
        for (asn, name, from) in NETWORKS {
            for (input, blocks) in [("https://x.com/", from), ("https://www.wikipedia.org/", None)] {
                for quarter in 0..4 {
                    let t = t0 + hour * HOUR + quarter * 900;
                    let is_blocked = blocks.is_some_and(|f| hour >= f);
                    let mut m = if is_blocked { blocked.clone() } else { clean.clone() };
                    m.as_object_mut().unwrap().remove("measurement_uid");
                    m["report_id"] = Value::from(format!("20240216T000000Z_webconnectivity_PK_{asn}_n1_browser"));
                    let last = hour == HOURS - 1 && quarter == 3;
                    let input = if asn == 9541 && last && input.starts_with("https://x.com") {
                        HOSTILE_INPUT
                    } else {
                        input
                    };
                    m["input"] = Value::from(input);
                    m["probe_cc"] = Value::from("PK");
                    m["probe_asn"] = Value::from(format!("AS{asn}"));
                    m["probe_network_name"] = Value::from(name);
                    m["measurement_start_time"] = Value::from(ooni_time(t));
                    m["test_start_time"] = Value::from(ooni_time(t));
                    lines.push(serde_json::to_string(&m).unwrap());
                }
            }
        }
    }
    (lines.chunks(400).map(|c| c.join("\n")).collect(), t0)
}

/// A program's path: the environment variable, else the first candidate found on the PATH.
fn program(var: &str, candidates: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in candidates {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "{} is not installed (looked for {candidates:?} on the PATH; set {var} to its path). The browser tests \
         need Debian's chromium and chromedriver: run scripts/system-deps (apt-get install chromium chromium-driver)",
        candidates[0]
    );
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let chromedriver = program("CHROMEDRIVER", &["chromedriver"]);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // chromedriver's own log goes next to the screenshots, so a browser that dies in CI
        // leaves a trace of why.
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                screenshots_dir().join("chromedriver.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A new headless Chromium session, with JavaScript on or off.
    async fn session(&self, javascript: bool, profile: &Path) -> Client {
        let chromium = program("CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
        let mut prefs = json!({});
        if !javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1600",
                    format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": prefs,
            }
        });
        let Value::Object(caps) = caps else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium ({}): {e}", chromium.display()))
    }
}

/// Ends a session. All of the test's checks ran before this; if Chromium's renderer went away
/// while the window was being closed (seen once in CI: "session deleted as the browser has
/// closed the connection … Unable to receive message from renderer"), the session is over
/// either way, so that is said and accepted. Any other error still fails the test.
async fn end_session(client: Client, name: &str) {
    if let Err(e) = client.close().await {
        let message = e.to_string();
        assert!(
            message.contains("session deleted") || message.contains("invalid session id"),
            "{name}: closing the session failed: {message}"
        );
        eprintln!("{name}: the browser was already gone when its session closed ({message}); chromedriver.log ends:");
        let log = std::fs::read_to_string(screenshots_dir().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(15)..] {
            eprintln!("  {}", line.chars().take(300).collect::<String>());
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn text(client: &Client, css: &str) -> String {
    let at = path_of(client).await;
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on {at}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.unwrap().len()
}

/// Clicks what `css` finds and waits for the page it leads to: every click of this test
/// navigates, and WebDriver may return from a click (a form submission especially) before the
/// new page has replaced the old one.
async fn click(client: &Client, css: &str) {
    let before = client.current_url().await.unwrap();
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} to click: {e}"))
        .click()
        .await
        .unwrap();
    for _ in 0..200 {
        let moved = client.current_url().await.unwrap() != before;
        // (A session with JavaScript off may refuse scripts: then the address alone decides.)
        let loaded = client
            .execute("return document.readyState;", vec![])
            .await
            .map_or(true, |state| state == json!("complete"));
        if moved && loaded {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} on {before} led nowhere within 10 s");
}

async fn path_of(client: &Client) -> String {
    let url = client.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Fetches a link's target over HTTP (a download the browser would save) and parses it as CSV:
/// (header, rows).
async fn csv_of(server: &TestServer, href: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let url = url_path(href);
    let r = server.get(&url).await;
    assert_eq!(r.status, 200, "{url}: {}", r.text());
    assert!(
        r.headers["content-type"].to_str().unwrap().starts_with("text/csv"),
        "{url}"
    );
    let mut reader = csv::Reader::from_reader(&r.body[..]);
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = reader.records().collect::<Result<Vec<_>, _>>().unwrap();
    (header, rows)
}

/// The path and query of an absolute or relative link.
fn url_path(href: &str) -> String {
    match href.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/".to_owned(), |i| rest[i..].to_owned()),
        None => href.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_headless_chromium() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig {
        detection_interval: Some(Duration::from_millis(100)),
        data_dir: Some(data.path().to_path_buf()),
        rate_limit: None,
        ..ServerConfig::default()
    })
    .await;
    let (batches, t0) = seed();
    let mut stored = 0;
    for body in batches {
        let r = server.post("/api/v1/measurements", body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["rejected"], 0, "{}", r.text());
        stored += r.json()["accepted"].as_u64().unwrap();
    }
    let total = (HOURS * 5 * 2 * 4) as u64;
    assert_eq!(stored, total);
    // Wait for the detection worker's event (written at most every 100 ms).
    let deadline = Instant::now() + Duration::from_secs(60);
    let event = loop {
        let r = server.get("/api/v1/events?cc=PK").await;
        let results = r.json()["results"].as_array().unwrap().clone();
        if let Some(e) = results.first() {
            if e["asns"].as_array().unwrap().len() == 3 {
                break e.clone();
            }
        }
        assert!(Instant::now() < deadline, "no event with three networks: {results:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let event_id = event["id"].as_str().unwrap().to_owned();
    assert_eq!(event["start"], t0 + 20 * HOUR);
    let base = format!("http://{}", server.addr);

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.session(false, profile.path()).await;

    // JavaScript is really off in this session.
    browser
        .goto("data:text/html,<title>static</title><script>document.title='scripted'</script>")
        .await
        .unwrap();
    assert_eq!(browser.title().await.unwrap(), "static", "JavaScript is disabled");

    // Home.
    browser.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(text(&browser, "h1").await, "Internet censorship observatory");
    assert_eq!(text(&browser, "h2#h-events").await, "Active blocking events");
    assert_eq!(text(&browser, "table.countries tbody th").await, "Pakistan (PK)");
    assert_eq!(
        text(&browser, "table.countries tbody td").await,
        common_thousands(total)
    );
    assert_eq!(count(&browser, "table.events tbody tr").await, 1);
    assert!(
        text(&browser, "table.events tbody")
            .await
            .contains("x.com blocked in Pakistan")
    );
    assert_eq!(count(&browser, "form[role=search] input[name=q]").await, 1);
    screenshot(&browser, "home").await;

    // Country, by clicking.
    click(&browser, "table.countries a").await;
    assert_eq!(path_of(&browser).await, "/country/PK");
    assert_eq!(text(&browser, "h1").await, "Pakistan (PK)");
    // Two platforms (rows) by five networks (columns, plus the row header).
    assert_eq!(count(&browser, "table.grid tbody tr").await, 2);
    assert_eq!(count(&browser, "table.grid thead th").await, 6);
    let header = text(&browser, "table.grid thead").await;
    assert!(header.contains("PTCL AS17557"), "{header}");
    assert!(
        header.contains(HOSTILE_NAME),
        "the hostile name is shown as text: {header}"
    );
    assert_eq!(count(&browser, "table.grid td.st-blocked").await, 3);
    assert_eq!(count(&browser, "table.grid td.st-ok").await, 7);
    let x_row = browser
        .find(Locator::XPath("//table[contains(@class, 'grid')]//tr[th/a = 'x.com']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        x_row.starts_with("x.com") && x_row.matches("Blocked").count() == 3,
        "{x_row}"
    );
    assert_eq!(count(&browser, "table.events tbody tr").await, 1);
    assert!(text(&browser, "#h-outages + p").await.contains("No network outage"));
    let events_csv = browser
        .find(Locator::Css("a[href*='/api/v1/events?cc=PK']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (head, rows) = csv_of(&server, &events_csv).await;
    assert_eq!(&head[..4], ["id", "platform", "domain", "cc"]);
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], event_id);
    screenshot(&browser, "country").await;

    // Platform.
    click(&browser, "table.grid a[href='/platform/PK/x.com']").await;
    assert_eq!(path_of(&browser).await, "/platform/PK/x.com");
    assert_eq!(text(&browser, "h1").await, "x.com in Pakistan");
    assert_eq!(count(&browser, "svg.heatmap").await, 1);
    assert_eq!(
        count(&browser, "svg.heatmap g.hm-row").await,
        5,
        "one heatmap row per network"
    );
    let cells = count(&browser, "svg.heatmap rect.hm-cell").await;
    assert_eq!(cells, 5 * HOURS as usize, "one cell per network and hour");
    let svg_title = text(&browser, "svg.heatmap title#heatmap-title").await;
    assert!(svg_title.is_empty() || svg_title.contains("x.com"), "{svg_title}");
    let aria = browser
        .find(Locator::Css("svg.heatmap"))
        .await
        .unwrap()
        .attr("aria-labelledby")
        .await
        .unwrap();
    assert_eq!(aria.as_deref(), Some("heatmap-title heatmap-desc"));
    assert_eq!(count(&browser, "table.networks tbody tr").await, 5);
    // The most frequent method first, as the event reports it.
    assert_eq!(
        text(&browser, "table.methods tbody th").await,
        event["method"].as_str().unwrap()
    );
    assert_eq!(count(&browser, "table.events tbody tr").await, 1);
    // Every CSV link downloads and parses: the measurements of x.com (all but the hostile-input
    // one, whose host is also x.com: all of them) and the events.
    let csv_links: Vec<String> = {
        let mut v = Vec::new();
        for a in browser.find_all(Locator::Css("a.csv")).await.unwrap() {
            v.push(a.attr("href").await.unwrap().unwrap());
        }
        v
    };
    assert_eq!(csv_links.len(), 2, "{csv_links:?}");
    let (head, rows) = csv_of(&server, &csv_links[0]).await;
    assert_eq!(&head[..4], ["id", "measurement_start_time", "probe_cc", "probe_asn"]);
    assert_eq!(rows.len(), (HOURS * 5 * 4) as usize, "every x.com measurement");
    let blocked_rows = rows.iter().filter(|r| &r[9] == "blocked").count();
    assert_eq!(blocked_rows, ((HOURS - 20) + (HOURS - 22) + (HOURS - 26)) as usize * 4);
    let (_, rows) = csv_of(&server, &csv_links[1]).await;
    assert_eq!(rows.len(), 1);
    screenshot(&browser, "platform").await;

    // Event.
    click(&browser, "table.events tbody th a").await;
    assert_eq!(path_of(&browser).await, format!("/event/{event_id}"));
    assert_eq!(text(&browser, "h1").await, "x.com blocked in Pakistan");
    let summary = text(&browser, "#summary").await;
    assert!(
        summary.contains("x.com has been blocked on 3 of 5 measured networks in Pakistan (PTCL AS17557, Telenor Pakistan AS24499, Jazz AS45595), by "),
        "{summary}"
    );
    assert!(summary.starts_with("Since "), "{summary}");
    assert_eq!(count(&browser, "table.affected tbody tr").await, 3);
    let evidence = browser
        .find(Locator::Css("a#evidence"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(url_path(&evidence), format!("/api/v1/events/{event_id}/evidence"));
    screenshot(&browser, "event").await;
    // The evidence bundle downloads (once the log has caught up with the commits).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.get(&url_path(&evidence)).await;
        if r.status == 200 {
            assert_eq!(&r.body[..2], b"\x1f\x8b", "a gzip file");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the evidence bundle: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The hostile input is among the latest measurements, as text.
    assert!(text(&browser, "table.measurements").await.contains(HOSTILE_INPUT));

    // Measurement: the first evidence.
    click(&browser, "table.facts a[href^='/measurement/']").await;
    assert!(path_of(&browser).await.starts_with("/measurement/"));
    assert_eq!(text(&browser, "h1").await, "Measurement");
    let verdict = text(&browser, "#verdict").await;
    assert!(verdict.starts_with("blocked by "), "{verdict}");
    assert!(count(&browser, "#reasons li").await >= 1);
    assert_eq!(count(&browser, "table.comparison tbody tr").await, 4);
    let control = text(&browser, "#control-keys").await;
    assert!(
        control.contains("\"tcp_connect\"") && control.contains("\"http_request\""),
        "{control}"
    );
    assert!(!text(&browser, "#probe-keys").await.contains("\"control\":"));
    assert!(text(&browser, "#raw").await.contains("\"measurement_start_time\""));
    screenshot(&browser, "measurement").await;

    // Search: typed into the form and submitted without JavaScript.
    let q = browser.find(Locator::Css("input#q")).await.unwrap();
    q.clear().await.unwrap();
    q.send_keys("AS17557").await.unwrap();
    click(&browser, "form[role=search] button").await;
    assert_eq!(path_of(&browser).await, "/search?q=AS17557");
    assert_eq!(
        text(&browser, "#understood").await,
        "Network AS17557: its latest measurements."
    );
    assert_eq!(count(&browser, "table.measurements tbody tr").await, 50);
    screenshot(&browser, "search").await;
    browser.goto(&format!("{base}/search?q=twitter.com")).await.unwrap();
    assert_eq!(
        text(&browser, "ul.links li:first-child a").await,
        "x.com in Pakistan (PK)"
    );
    browser.goto(&format!("{base}/search?q=pakistan")).await.unwrap();
    assert_eq!(path_of(&browser).await, "/country/PK");

    // Unknown things: an HTML 404 page.
    browser.goto(&format!("{base}/event/PK-nothing-1")).await.unwrap();
    assert_eq!(text(&browser, "h1").await, "Not found");
    screenshot(&browser, "not_found").await;
    for path in [
        "/event/PK-nothing-1",
        "/measurement/nothing",
        "/country/PAK",
        "/platform/PK/%3Cscript%3E",
    ] {
        let r = server.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    }
    end_session(browser, "JavaScript off").await;

    // With JavaScript on: the hostile strings ran nothing.
    let profile = tempfile::tempdir().unwrap();
    let js = driver.session(true, profile.path()).await;
    for path in [
        "/".to_owned(),
        "/country/PK".to_owned(),
        "/platform/PK/x.com".to_owned(),
        format!("/event/{event_id}"),
        format!("/search?q={}", "AS9541"),
    ] {
        js.goto(&format!("{base}{path}")).await.unwrap();
        let state = js
            .execute(
                "return [typeof window.__pwned, document.scripts.length, document.querySelectorAll('img,b').length];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            state,
            json!(["undefined", 0, 0]),
            "{path}: no injected element ran or exists"
        );
    }
    end_session(js, "JavaScript on").await;
    drop(driver);
    server.stop().await;
}

fn common_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
