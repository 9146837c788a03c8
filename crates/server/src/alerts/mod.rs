//! Alerts: the Atom feed of blocking events ([`feed`]), webhooks POSTed on every event change
//! ([`webhook`]), and deadline watches ([`watch`]); their HTTP endpoints are in [`routes`].
//!
//! # State and durability
//! With a data directory (`serve --data DIR`), everything lives under `DIR/alerts/`:
//! - `webhooks.json` and `watches.json`: those added through the admin endpoints (webhooks from
//!   the `--config` file are not written there; they come back from the file at start);
//! - `seen.json`: each stored event's last state that webhooks were queued for, so that a
//!   restart neither repeats nor misses a change;
//! - `outbox/<delivery>.json`: one file per delivery not yet acknowledged by its receiver,
//!   written (fsync'd, then renamed into place) before the first attempt and removed after a
//!   2xx; attempts and the next attempt's time are rewritten in it, so a restart resumes the
//!   retries where they were. A file-per-delivery queue was chosen over a store table because
//!   the [`Store`] trait is shared by two backends and a delivery queue is this server's local
//!   business.
//!
//! Without a data directory all of it is kept in memory only (lost at exit).
//!
//! # Change detection
//! Every [`ServerConfig::alert_interval`](crate::ServerConfig::alert_interval) the stored events
//! are compared with `seen`: an id not seen before is `event.opened`; a changed body is
//! `event.changed`, or `event.closed` when the event gained an end. The first run on a data
//! directory without `seen.json` records the events as they are, sending nothing (a server
//! does not announce history). Webhooks are sent over plain HTTP or HTTPS as the URL says.

pub mod feed;
pub(crate) mod routes;
pub mod watch;
pub mod webhook;

use crate::detections::unix_now;
use censorwatch_store::{DetectionKind, DetectionQuery, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A webhook as configured: `[[webhook]]` in the `--config` TOML file, or the body of
/// `POST /api/v1/admin/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// The HMAC-SHA256 key the receiver verifies with (at least 16 bytes).
    pub secret: String,
    /// Only events of this country (`None`: all).
    #[serde(default)]
    pub cc: Option<String>,
    /// Only events of this platform or domain (`x.com` and `twitter` both mean twitter).
    #[serde(default)]
    pub platform: Option<String>,
}

impl WebhookConfig {
    /// Checks and normalizes (country upper-cased, platform resolved).
    pub fn validated(mut self) -> Result<WebhookConfig, String> {
        let url = self.url.trim();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| format!("webhook url {url:?} must start with http:// or https://"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("webhook url {url:?} has no host"));
        }
        self.url = url.to_owned();
        if self.secret.len() < 16 {
            return Err("the webhook secret must be at least 16 bytes (e.g. `openssl rand -hex 32`)".into());
        }
        if let Some(cc) = &self.cc {
            let cc = cc.trim().to_ascii_uppercase();
            crate::prepare::validate_cc(&cc)
                .map_err(|_| format!("webhook cc {cc:?} is not a two-letter country code"))?;
            self.cc = Some(cc);
        }
        if let Some(p) = &self.platform {
            let p = p.trim().to_ascii_lowercase();
            if p.is_empty() {
                return Err("webhook platform is empty; leave it out to get every platform".into());
            }
            self.platform = Some(censorwatch_detect::platform_of(&p).into_owned());
        }
        Ok(self)
    }

    /// Whether an event of `cc` and `platform` goes to this webhook.
    pub fn wants(&self, cc: &str, platform: &str) -> bool {
        self.cc.as_deref().is_none_or(|c| c == cc) && self.platform.as_deref().is_none_or(|p| p == platform)
    }
}

/// The `--config` file: `[[webhook]]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Webhooks.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
}

impl FileConfig {
    /// Parses and validates the TOML text of a config file.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        let file: FileConfig = toml::from_str(text).map_err(|e| format!("the config file is not valid: {e}"))?;
        let webhooks = file
            .webhooks
            .into_iter()
            .map(WebhookConfig::validated)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FileConfig { webhooks })
    }
}

/// A registered webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// `wh-` and 16 hex digits.
    pub id: String,
    /// Its settings.
    #[serde(flatten)]
    pub config: WebhookConfig,
    /// `config` (from the file; not deletable over HTTP) or `admin`.
    pub source: String,
}

/// One queued delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Its id (also sent as `X-Censorwatch-Delivery`).
    pub id: String,
    /// The webhook it goes to.
    pub webhook: String,
    /// The JSON body, exactly as sent.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, Unix milliseconds.
    pub next_attempt_ms: i64,
}

/// The alerting state shared by the handlers and the delivery task.
pub struct Alerts {
    dir: Option<PathBuf>,
    webhooks: Mutex<Vec<Webhook>>,
    watches: Mutex<Vec<watch::Watch>>,
    outbox: Mutex<BTreeMap<String, Delivery>>,
    seen: Mutex<Option<BTreeMap<String, String>>>,
    retry_base: Duration,
}

/// A random id: `prefix` and 16 hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    format!(
        "{prefix}{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes `value` as JSON to `path` atomically (temporary file, fsync, rename).
fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("{} is corrupt ({e}); fix or remove it", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Alerts {
    /// Loads the state from `data_dir/alerts/` (if given) and adds the configured webhooks.
    pub fn open(
        data_dir: Option<&Path>,
        configured: &[WebhookConfig],
        retry_base: Duration,
    ) -> std::io::Result<Alerts> {
        let dir = data_dir.map(|d| d.join("alerts"));
        let mut webhooks: Vec<Webhook> = Vec::new();
        for (i, c) in configured.iter().enumerate() {
            webhooks.push(Webhook {
                id: format!("wh-config-{i}"),
                config: c.clone(),
                source: "config".into(),
            });
        }
        let mut watches = Vec::new();
        let mut outbox = BTreeMap::new();
        let mut seen = None;
        if let Some(dir) = &dir {
            let admin: Vec<Webhook> = read_json(&dir.join("webhooks.json"))?.unwrap_or_default();
            webhooks.extend(admin);
            watches = read_json(&dir.join("watches.json"))?.unwrap_or_default();
            seen = read_json(&dir.join("seen.json"))?;
            if let Ok(entries) = std::fs::read_dir(dir.join("outbox")) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.extension().is_some_and(|e| e == "json") {
                        if let Some(d) = read_json::<Delivery>(&path)? {
                            outbox.insert(d.id.clone(), d);
                        }
                    }
                }
            }
        }
        Ok(Alerts {
            dir,
            webhooks: Mutex::new(webhooks),
            watches: Mutex::new(watches),
            outbox: Mutex::new(outbox),
            seen: Mutex::new(seen),
            retry_base,
        })
    }

    fn save_admin_webhooks(&self, all: &[Webhook]) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let admin: Vec<&Webhook> = all.iter().filter(|w| w.source == "admin").collect();
        write_json(&dir.join("webhooks.json"), &admin)
    }

    /// Every webhook.
    pub fn webhooks(&self) -> Vec<Webhook> {
        lock(&self.webhooks).clone()
    }

    /// Registers a webhook (validated by the caller).
    pub fn add_webhook(&self, config: WebhookConfig) -> std::io::Result<Webhook> {
        let mut all = lock(&self.webhooks);
        let w = Webhook {
            id: new_id("wh-"),
            config,
            source: "admin".into(),
        };
        all.push(w.clone());
        if let Err(e) = self.save_admin_webhooks(&all) {
            all.pop();
            return Err(e);
        }
        Ok(w)
    }

    /// Removes an admin webhook: `Ok(false)` when there is none with that id; an error for a
    /// configured one.
    pub fn remove_webhook(&self, id: &str) -> Result<bool, String> {
        let mut all = lock(&self.webhooks);
        match all.iter().position(|w| w.id == id) {
            None => Ok(false),
            Some(i) if all[i].source != "admin" => {
                Err("this webhook comes from the config file; remove it there and restart".into())
            }
            Some(i) => {
                let removed = all.remove(i);
                if let Err(e) = self.save_admin_webhooks(&all) {
                    all.insert(i, removed);
                    return Err(format!("cannot save the webhooks: {e}"));
                }
                Ok(true)
            }
        }
    }

    /// Every watch.
    pub fn watches(&self) -> Vec<watch::Watch> {
        lock(&self.watches).clone()
    }

    /// Adds a watch.
    pub fn add_watch(&self, w: watch::Watch) -> std::io::Result<()> {
        let mut all = lock(&self.watches);
        all.push(w);
        if let Some(dir) = &self.dir {
            if let Err(e) = write_json(&dir.join("watches.json"), &*all) {
                all.pop();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Removes a watch; `false` when there is none with that id.
    pub fn remove_watch(&self, id: &str) -> std::io::Result<bool> {
        let mut all = lock(&self.watches);
        let before = all.len();
        all.retain(|w| w.id != id);
        if all.len() == before {
            return Ok(false);
        }
        if let Some(dir) = &self.dir {
            write_json(&dir.join("watches.json"), &*all)?;
        }
        Ok(true)
    }

    /// Deliveries not yet acknowledged.
    pub fn pending_deliveries(&self) -> Vec<Delivery> {
        lock(&self.outbox).values().cloned().collect()
    }

    fn save_delivery(&self, d: &Delivery) -> std::io::Result<()> {
        match &self.dir {
            Some(dir) => write_json(&dir.join("outbox").join(format!("{}.json", d.id)), d),
            None => Ok(()),
        }
    }

    fn drop_delivery(&self, id: &str) {
        lock(&self.outbox).remove(id);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join("outbox").join(format!("{id}.json")));
        }
    }

    /// Compares the stored events with the last ones seen and queues a delivery per change
    /// and matching webhook. Returns the deliveries queued.
    pub fn check_events(&self, store: &dyn Store) -> Result<usize, String> {
        let rows = store
            .detections(&DetectionQuery::all(DetectionKind::Event))
            .map_err(|e| e.to_string())?;
        let current: BTreeMap<String, String> = rows.iter().map(|d| (d.id.clone(), d.body.clone())).collect();
        let mut seen = lock(&self.seen);
        let Some(previous) = seen.as_ref() else {
            // First run: remember, announce nothing.
            if let Some(dir) = &self.dir {
                write_json(&dir.join("seen.json"), &current).map_err(|e| e.to_string())?;
            }
            *seen = Some(current);
            return Ok(0);
        };
        let mut changes = Vec::new();
        for d in &rows {
            let kind = match previous.get(&d.id) {
                None => "event.opened",
                Some(body) if *body == d.body => continue,
                Some(body) => {
                    let was_open = serde_json::from_str::<serde_json::Value>(body)
                        .map(|v| v["end"].is_null())
                        .unwrap_or(true);
                    if was_open && d.end.is_some() {
                        "event.closed"
                    } else {
                        "event.changed"
                    }
                }
            };
            changes.push((kind, d));
        }
        let webhooks = self.webhooks();
        let mut queued = Vec::new();
        for (kind, d) in changes {
            let event: serde_json::Value = serde_json::from_str(&d.body).map_err(|e| e.to_string())?;
            for w in webhooks.iter().filter(|w| w.config.wants(&d.cc, &d.platform)) {
                let id = new_id("dl-");
                let body = serde_json::json!({"type": kind, "delivery": id, "event": event}).to_string();
                queued.push(Delivery {
                    id,
                    webhook: w.id.clone(),
                    body,
                    attempts: 0,
                    next_attempt_ms: now_ms(),
                });
            }
        }
        // Durable before acknowledged as seen: a crash in between resends, never loses.
        for d in &queued {
            self.save_delivery(d)
                .map_err(|e| format!("cannot queue a webhook delivery: {e}"))?;
        }
        if let Some(dir) = &self.dir {
            write_json(&dir.join("seen.json"), &current).map_err(|e| e.to_string())?;
        }
        *seen = Some(current);
        let n = queued.len();
        lock(&self.outbox).extend(queued.into_iter().map(|d| (d.id.clone(), d)));
        Ok(n)
    }

    /// Attempts every due delivery once (blocking HTTP; run on a blocking thread). Returns
    /// (delivered, failed attempts).
    pub fn deliver_due(&self) -> (usize, usize) {
        let now = now_ms();
        let due: Vec<Delivery> = lock(&self.outbox)
            .values()
            .filter(|d| d.next_attempt_ms <= now)
            .cloned()
            .collect();
        let webhooks = self.webhooks();
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirects(0)
            .build();
        let (mut delivered, mut failed) = (0, 0);
        for mut d in due {
            let Some(w) = webhooks.iter().find(|w| w.id == d.webhook) else {
                // Its webhook was removed.
                self.drop_delivery(&d.id);
                continue;
            };
            let timestamp = unix_now();
            let signature = webhook::sign(w.config.secret.as_bytes(), timestamp, d.body.as_bytes());
            let kind = serde_json::from_str::<serde_json::Value>(&d.body)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let result = agent
                .post(&w.config.url)
                .set("Content-Type", "application/json")
                .set("User-Agent", concat!("censorwatch/", env!("CARGO_PKG_VERSION")))
                .set("X-Censorwatch-Event", &kind)
                .set("X-Censorwatch-Delivery", &d.id)
                .set("X-Censorwatch-Timestamp", &timestamp.to_string())
                .set("X-Censorwatch-Signature", &signature)
                .send_string(&d.body);
            match result {
                Ok(r) if (200..300).contains(&r.status()) => {
                    self.drop_delivery(&d.id);
                    delivered += 1;
                }
                other => {
                    failed += 1;
                    d.attempts += 1;
                    if d.attempts >= webhook::MAX_ATTEMPTS {
                        let why = match other {
                            Ok(r) => format!("HTTP {}", r.status()),
                            Err(e) => e.to_string(),
                        };
                        eprintln!(
                            "censorwatch: giving up webhook delivery {} to {} after {} attempts (last: {why})",
                            d.id, w.config.url, d.attempts
                        );
                        self.drop_delivery(&d.id);
                        continue;
                    }
                    let wait = webhook::backoff(self.retry_base, d.attempts - 1);
                    d.next_attempt_ms = now_ms() + wait.as_millis() as i64;
                    if let Err(e) = self.save_delivery(&d) {
                        eprintln!("censorwatch: cannot save webhook delivery {}: {e}", d.id);
                    }
                    lock(&self.outbox).insert(d.id.clone(), d);
                }
            }
        }
        (delivered, failed)
    }
}

/// The alerting task: checks events every `interval` and attempts due deliveries (at least
/// every `tick`). Runs until aborted.
pub(crate) async fn run(alerts: Arc<Alerts>, store: Arc<dyn Store>, interval: Duration, tick: Duration) {
    let mut last_check: Option<tokio::time::Instant> = None;
    loop {
        if last_check.is_none_or(|t| t.elapsed() >= interval) {
            last_check = Some(tokio::time::Instant::now());
            let (a, s) = (Arc::clone(&alerts), Arc::clone(&store));
            match tokio::task::spawn_blocking(move || a.check_events(s.as_ref())).await {
                Ok(Err(e)) => eprintln!("censorwatch: checking events for webhooks failed: {e}; retrying"),
                Err(e) => eprintln!("censorwatch: checking events for webhooks failed: {e}"),
                Ok(Ok(_)) => {}
            }
        }
        let a = Arc::clone(&alerts);
        let _ = tokio::task::spawn_blocking(move || a.deliver_due()).await;
        tokio::time::sleep(tick.min(interval)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use censorwatch_store::{SqliteStore, StoredDetection};

    fn event(id: &str, end: Option<i64>, body: &str) -> StoredDetection {
        StoredDetection {
            kind: DetectionKind::Event,
            id: id.into(),
            cc: "PK".into(),
            domain: "x.com".into(),
            platform: "twitter".into(),
            start: 100,
            end,
            updated: 1,
            body: body.into(),
        }
    }

    fn hook(cc: Option<&str>, platform: Option<&str>) -> WebhookConfig {
        WebhookConfig {
            url: "http://127.0.0.1:1/hook".into(),
            secret: "0123456789abcdef".into(),
            cc: cc.map(str::to_owned),
            platform: platform.map(str::to_owned),
        }
        .validated()
        .unwrap()
    }

    #[test]
    fn changes_are_queued_durably_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("a.db")).unwrap();
        store
            .put_detections(&[event("PK-twitter-1", None, r#"{"end":null,"n":1}"#)], &[])
            .unwrap();
        let hooks = [hook(Some("pk"), Some("x.com")), hook(Some("IR"), None)];
        let alerts = Alerts::open(Some(dir.path()), &hooks, Duration::from_secs(30)).unwrap();
        assert_eq!(
            alerts.check_events(&store).unwrap(),
            0,
            "the first check announces nothing"
        );
        // A new event, a change, and a close: three deliveries to the PK/twitter hook only.
        store
            .put_detections(
                &[
                    event("PK-twitter-1", Some(200), r#"{"end":200,"n":2}"#),
                    event("PK-twitter-2", None, r#"{"end":null,"n":1}"#),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(alerts.check_events(&store).unwrap(), 2);
        assert_eq!(alerts.check_events(&store).unwrap(), 0, "nothing new");
        let mut kinds: Vec<String> = alerts
            .pending_deliveries()
            .iter()
            .map(|d| {
                serde_json::from_str::<serde_json::Value>(&d.body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        kinds.sort();
        assert_eq!(kinds, ["event.closed", "event.opened"]);
        assert!(alerts.pending_deliveries().iter().all(|d| d.webhook == "wh-config-0"));
        // Nothing listens on port 1: an attempt fails and is rescheduled, not lost.
        let (delivered, failed) = alerts.deliver_due();
        assert_eq!((delivered, failed), (0, 2));
        let pending = alerts.pending_deliveries();
        assert!(
            pending
                .iter()
                .all(|d| d.attempts == 1 && d.next_attempt_ms > now_ms() + 25_000)
        );
        drop(alerts);
        // A restart finds the same queue (attempts kept) and the seen state (no re-announce).
        let again = Alerts::open(Some(dir.path()), &hooks, Duration::from_secs(30)).unwrap();
        let mut reloaded = again.pending_deliveries();
        let mut before = pending;
        reloaded.sort_by(|a, b| a.id.cmp(&b.id));
        before.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(reloaded, before);
        assert_eq!(again.check_events(&store).unwrap(), 0);
    }

    #[test]
    fn config_files_and_webhook_filters() {
        let file = FileConfig::parse(
            "[[webhook]]\nurl = \"https://example.org/hook\"\nsecret = \"0123456789abcdef\"\ncc = \"pk\"\nplatform = \"twitter.com\"\n",
        )
        .unwrap();
        let w = &file.webhooks[0];
        assert_eq!((w.cc.as_deref(), w.platform.as_deref()), (Some("PK"), Some("twitter")));
        assert!(w.wants("PK", "twitter") && !w.wants("IR", "twitter") && !w.wants("PK", "youtube"));
        for bad in [
            "[[webhook]]\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"short\"\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\ncc = \"PAK\"\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\ncolour = \"red\"\n",
            "not toml",
        ] {
            assert!(FileConfig::parse(bad).is_err(), "{bad}");
        }
        assert!(FileConfig::parse("").unwrap().webhooks.is_empty());
    }
}
