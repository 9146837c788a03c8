//! Alerts: the Atom feed of blocking events and outages ([`feed`]), webhooks POSTed on every
//! change of either ([`webhook`]), and deadline watches ([`watch`]); their HTTP endpoints are in
//! [`routes`].
//!
//! # State and durability
//! With a data directory (`serve --data DIR`), everything lives under `DIR/alerts/`:
//! - `webhooks.json` and `watches.json`: those added through the admin endpoints (webhooks from
//!   the `--config` file are not written there; they come back from the file at start);
//! - `seen.json` (events) and `seen-outages.json` (outages): each stored detection's last
//!   state that webhooks were queued for, so that a restart neither repeats nor misses a change;
//! - `outbox/<delivery>.json`: one file per delivery not yet acknowledged by its receiver,
//!   written (fsync'd, then renamed into place) before the first attempt and removed after a
//!   2xx; attempts and the next attempt's time are rewritten in it, so a restart resumes the
//!   retries where they were. A file-per-delivery queue was chosen over a store table because
//!   the [`Store`] trait is shared by two backends and a delivery queue is this server's local
//!   business.
//!
//! Without a data directory all of it is kept in memory only (lost at exit).
//!
//! Deadline watches are pushed once, as `watch.due`, when their deadline has passed
//! ([`Alerts::check_watches`]); `watches.json` records which were.
//!
//! # Change detection
//! Every [`ServerConfig::alert_interval`](crate::ServerConfig::alert_interval) the stored events
//! and outages are compared with `seen`: an id not seen before is `event.opened` (or
//! `outage.opened`); a material change is `….changed`, or `….closed` when it gained an end.
//! What is material is [`material`]'s business: the networks affected and when each ended, the
//! end, an event's method and pattern, an outage's level, signals and reach. The measurement
//! counts and confidence that move with every new measurement are not (a receiver would hear of
//! an ongoing block every few minutes otherwise). The first run of each kind without its
//! `seen` file records the detections as they are, sending nothing (a server does not announce
//! history). Webhooks are sent over plain HTTP or HTTPS as the URL says.

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
    /// Only events and watches of this platform or domain (`x.com` and `twitter` both mean
    /// twitter). Outages still come (a shutdown cuts every platform) unless `kinds` leaves them
    /// out.
    #[serde(default)]
    pub platform: Option<String>,
    /// Only events and outages that affect this network, and watch reports that name it (AS
    /// number).
    #[serde(default)]
    pub asn: Option<u32>,
    /// Which changes to send: `event` (blocking events), `outage` (network shutdowns), `watch`
    /// (a deadline watch's report once its deadline has passed); empty means all.
    #[serde(default)]
    pub kinds: Vec<AlertKind>,
}

/// What a change is about: a blocking event or an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// A blocking event (`event.opened`, `event.changed`, `event.closed`).
    Event,
    /// An outage (`outage.opened`, `outage.changed`, `outage.closed`).
    Outage,
    /// A deadline watch's report once its deadline has passed (`watch.due`).
    Watch,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 3] = [AlertKind::Event, AlertKind::Outage, AlertKind::Watch];

    /// The kinds of the store's detections, whose changes are found by comparing with `seen`:
    /// each with its stored kind and the file under `DATA/alerts/` keeping what was last seen
    /// of it (events keep the name from before outages were announced, so an upgrade neither
    /// repeats nor misses an event change).
    const DETECTIONS: [(AlertKind, DetectionKind, &'static str); 2] = [
        (AlertKind::Event, DetectionKind::Event, "seen.json"),
        (AlertKind::Outage, DetectionKind::Outage, "seen-outages.json"),
    ];

    /// `event`, `outage` or `watch`: the prefix of a change's type and the payload's key.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Event => "event",
            AlertKind::Outage => "outage",
            AlertKind::Watch => "watch",
        }
    }
}

/// What one change is about, as a webhook filter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    /// Event or outage.
    pub kind: AlertKind,
    /// The country.
    pub cc: &'a str,
    /// An event's platform (`None` for an outage).
    pub platform: Option<&'a str>,
    /// The networks it affects.
    pub asns: &'a [u32],
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
        if self.asn == Some(0) {
            return Err("webhook asn 0 is not a network; give an AS number such as 45595".into());
        }
        if self.platform.is_some() && self.kinds == [AlertKind::Outage] {
            return Err("webhook platform only filters events, and kinds asks for outages only; drop one".into());
        }
        self.kinds.sort();
        self.kinds.dedup();
        if self.kinds.len() == AlertKind::ALL.len() {
            self.kinds.clear();
        }
        Ok(self)
    }

    /// Whether a change about `subject` goes to this webhook. The platform filter applies to
    /// events only: an outage of the country reaches a platform's subscribers too.
    pub fn wants(&self, subject: &Subject<'_>) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&subject.kind))
            && self.cc.as_deref().is_none_or(|c| c == subject.cc)
            && self.asn.is_none_or(|a| subject.asns.contains(&a))
            && match (self.platform.as_deref(), subject.platform) {
                (Some(wanted), Some(p)) => wanted == p,
                _ => true,
            }
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
    /// Per detection kind (event, outage): id → [`material`] state last announced; `None`
    /// before the first check of that kind.
    seen: Mutex<[Option<BTreeMap<String, String>>; 2]>,
    retry_base: Duration,
}

/// The part of a stored event's or outage's JSON whose change is announced (see the module
/// docs), as compact JSON. Applied to its own output it returns it unchanged, so `seen` files
/// written with whole bodies (before this existed) compare equal to the same detection.
pub fn material(kind: AlertKind, body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        // Not JSON: compared as it is.
        return body.to_owned();
    };
    let (fields, asn_fields): (&[&str], &[&str]) = match kind {
        AlertKind::Event => (&["end", "method", "pattern"], &["asn", "end"]),
        AlertKind::Outage => (&["end", "level", "signals", "country_wide"], &["asn", "end", "level"]),
        // A watch's report is sent once, not compared: everything is material.
        AlertKind::Watch => return body.to_owned(),
    };
    let mut out = serde_json::Map::new();
    for f in fields {
        out.insert((*f).to_owned(), v.get(*f).cloned().unwrap_or(serde_json::Value::Null));
    }
    let asns: Vec<serde_json::Value> = v
        .get("asns")
        .and_then(|a| a.as_array())
        .map(|list| {
            list.iter()
                .map(|a| {
                    let mut m = serde_json::Map::new();
                    for f in asn_fields {
                        m.insert((*f).to_owned(), a.get(*f).cloned().unwrap_or(serde_json::Value::Null));
                    }
                    serde_json::Value::Object(m)
                })
                .collect()
        })
        .unwrap_or_default();
    out.insert("asns".into(), serde_json::Value::Array(asns));
    serde_json::Value::Object(out).to_string()
}

/// The networks named in a stored detection's `asns`.
fn asns_of(v: &serde_json::Value) -> Vec<u32> {
    v["asns"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|a| a["asn"].as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// The change from `previous` (the [`material`] state last announced, if any) to `current`
/// (a stored body): `opened`, `changed`, `closed`, or `None` when nothing material changed.
pub fn change(kind: AlertKind, previous: Option<&str>, current: &str) -> Option<&'static str> {
    let Some(previous) = previous else {
        return Some("opened");
    };
    let (before, now) = (material(kind, previous), material(kind, current));
    if before == now {
        return None;
    }
    let is_open = |m: &str| {
        serde_json::from_str::<serde_json::Value>(m)
            .map(|v| v["end"].is_null())
            .unwrap_or(true)
    };
    Some(if is_open(&before) && !is_open(&now) {
        "closed"
    } else {
        "changed"
    })
}

/// Which material fields (see [`material`]) differ between `previous` (the state last
/// announced) and `current` (a stored body), in [`material`]'s order: what a `….changed` or
/// `….closed` payload lists as `changes` (`["asns", "end"]`).
pub fn changed_fields(kind: AlertKind, previous: &str, current: &str) -> Vec<String> {
    let parse = |m: String| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&m).unwrap_or_default();
    let (before, now) = (parse(material(kind, previous)), parse(material(kind, current)));
    now.iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
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
        let mut seen = [None, None];
        if let Some(dir) = &dir {
            let admin: Vec<Webhook> = read_json(&dir.join("webhooks.json"))?.unwrap_or_default();
            webhooks.extend(admin);
            watches = read_json(&dir.join("watches.json"))?.unwrap_or_default();
            for (kind, _, file) in AlertKind::DETECTIONS {
                seen[kind as usize] = read_json(&dir.join(file))?;
            }
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

    /// Compares the stored events and outages with the last ones seen and queues a delivery
    /// per material change and matching webhook. Returns the deliveries queued.
    pub fn check_detections(&self, store: &dyn Store) -> Result<usize, String> {
        let mut queued = 0;
        for (kind, stored, file) in AlertKind::DETECTIONS {
            queued += self.check_kind(store, kind, stored, file)?;
        }
        Ok(queued)
    }

    /// Queues a `watch.due` delivery, with the watch and its report, to every webhook that
    /// wants it, for each watch whose report is due at `now` ([`watch::Watch::report_due`]),
    /// and marks those watches reported. Returns the deliveries queued.
    pub fn check_watches(&self, store: &dyn Store, now: i64) -> Result<usize, String> {
        let due: Vec<watch::Watch> = self.watches().into_iter().filter(|w| w.report_due(now)).collect();
        if due.is_empty() {
            return Ok(0);
        }
        let webhooks = self.webhooks();
        let mut queued = Vec::new();
        for w in &due {
            let counts = watch::counts(store, w, now).map_err(|e| e.to_string())?;
            let report = watch::report(w, &counts, now);
            let body = watch::to_json(w, &report);
            let asns: Vec<u32> = report.per_network.iter().map(|n| n.asn).collect();
            let platform = w.platform_name();
            let subject = Subject {
                kind: AlertKind::Watch,
                cc: &w.cc,
                platform: Some(&platform),
                asns: &asns,
            };
            for hook in webhooks.iter().filter(|h| h.config.wants(&subject)) {
                let id = new_id("dl-");
                queued.push(Delivery {
                    body: serde_json::json!({"type": "watch.due", "delivery": id, "watch": body}).to_string(),
                    id,
                    webhook: hook.id.clone(),
                    attempts: 0,
                    next_attempt_ms: now_ms(),
                });
            }
        }
        // Durable before marked reported: a crash in between resends, never loses.
        for d in &queued {
            self.save_delivery(d)
                .map_err(|e| format!("cannot queue a webhook delivery: {e}"))?;
        }
        {
            let mut all = lock(&self.watches);
            for w in all.iter_mut().filter(|w| due.iter().any(|d| d.id == w.id)) {
                w.reported = Some(now);
            }
            if let Some(dir) = &self.dir {
                write_json(&dir.join("watches.json"), &*all).map_err(|e| format!("cannot save the watches: {e}"))?;
            }
        }
        let n = queued.len();
        lock(&self.outbox).extend(queued.into_iter().map(|d| (d.id.clone(), d)));
        Ok(n)
    }

    fn check_kind(
        &self,
        store: &dyn Store,
        kind: AlertKind,
        stored: DetectionKind,
        file: &str,
    ) -> Result<usize, String> {
        let rows = store
            .detections(&DetectionQuery::all(stored))
            .map_err(|e| e.to_string())?;
        let current: BTreeMap<String, String> = rows.iter().map(|d| (d.id.clone(), material(kind, &d.body))).collect();
        let mut seen = lock(&self.seen);
        let slot = &mut seen[kind as usize];
        let Some(previous) = slot.as_ref() else {
            // First run: remember, announce nothing.
            if let Some(dir) = &self.dir {
                write_json(&dir.join(file), &current).map_err(|e| e.to_string())?;
            }
            *slot = Some(current);
            return Ok(0);
        };
        let webhooks = self.webhooks();
        let mut queued = Vec::new();
        for d in &rows {
            let Some(what) = change(kind, previous.get(&d.id).map(String::as_str), &d.body) else {
                continue;
            };
            let body: serde_json::Value = match serde_json::from_str(&d.body) {
                Ok(body) => body,
                Err(e) => {
                    // One bad row must not stop every other announcement.
                    eprintln!(
                        "censorwatch: stored {} {} is not JSON ({e}); no webhook is sent for it",
                        kind.as_str(),
                        d.id
                    );
                    continue;
                }
            };
            let asns = asns_of(&body);
            let subject = Subject {
                kind,
                cc: &d.cc,
                platform: (kind == AlertKind::Event).then_some(d.platform.as_str()),
                asns: &asns,
            };
            let type_ = format!("{}.{what}", kind.as_str());
            let changes = previous.get(&d.id).map(|p| changed_fields(kind, p, &d.body));
            for w in webhooks.iter().filter(|w| w.config.wants(&subject)) {
                let id = new_id("dl-");
                let mut payload = serde_json::Map::new();
                payload.insert("type".into(), type_.clone().into());
                payload.insert("delivery".into(), id.clone().into());
                if let Some(changes) = &changes {
                    payload.insert("changes".into(), changes.clone().into());
                }
                payload.insert(kind.as_str().into(), body.clone());
                queued.push(Delivery {
                    id,
                    webhook: w.id.clone(),
                    body: serde_json::Value::Object(payload).to_string(),
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
            write_json(&dir.join(file), &current).map_err(|e| e.to_string())?;
        }
        *slot = Some(current);
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

/// The alerting task: checks events and outages every `interval` and attempts due deliveries (at least
/// every `tick`). Runs until aborted.
pub(crate) async fn run(alerts: Arc<Alerts>, store: Arc<dyn Store>, interval: Duration, tick: Duration) {
    let mut last_check: Option<tokio::time::Instant> = None;
    loop {
        if last_check.is_none_or(|t| t.elapsed() >= interval) {
            last_check = Some(tokio::time::Instant::now());
            let (a, s) = (Arc::clone(&alerts), Arc::clone(&store));
            let checked = tokio::task::spawn_blocking(move || {
                a.check_detections(s.as_ref())?;
                a.check_watches(s.as_ref(), unix_now())
            });
            match checked.await {
                Ok(Err(e)) => eprintln!("censorwatch: checking events and outages for webhooks failed: {e}; retrying"),
                Err(e) => eprintln!("censorwatch: checking events and outages for webhooks failed: {e}"),
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

    fn detection(kind: DetectionKind, id: &str, end: Option<i64>, body: &str) -> StoredDetection {
        let event = kind == DetectionKind::Event;
        StoredDetection {
            kind,
            id: id.into(),
            cc: "PK".into(),
            domain: if event { "x.com" } else { "" }.into(),
            platform: if event { "twitter" } else { "" }.into(),
            start: 100,
            end,
            updated: 1,
            body: body.into(),
        }
    }

    fn event(id: &str, end: Option<i64>, body: &str) -> StoredDetection {
        detection(DetectionKind::Event, id, end, body)
    }

    fn outage(id: &str, end: Option<i64>, body: &str) -> StoredDetection {
        detection(DetectionKind::Outage, id, end, body)
    }

    fn hook(cc: Option<&str>, platform: Option<&str>, kinds: &[AlertKind]) -> WebhookConfig {
        WebhookConfig {
            url: "http://127.0.0.1:1/hook".into(),
            secret: "0123456789abcdef".into(),
            cc: cc.map(str::to_owned),
            platform: platform.map(str::to_owned),
            asn: None,
            kinds: kinds.to_vec(),
        }
        .validated()
        .unwrap()
    }

    /// (type, webhook) of each pending delivery, sorted.
    fn pending(alerts: &Alerts) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = alerts
            .pending_deliveries()
            .iter()
            .map(|d| {
                let v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
                let kind = v["type"].as_str().unwrap().to_owned();
                let key = kind.split('.').next().unwrap().to_owned();
                assert!(v[&key].is_object(), "the payload holds the {key}: {v}");
                (kind, d.webhook.clone())
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn changes_are_queued_durably_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("a.db")).unwrap();
        store
            .put_detections(&[event("PK-twitter-1", None, r#"{"end":null,"n":1}"#)], &[])
            .unwrap();
        let hooks = [
            hook(Some("pk"), Some("x.com"), &[]),
            hook(Some("IR"), None, &[]),
            hook(Some("PK"), None, &[AlertKind::Event]),
        ];
        let alerts = Alerts::open(Some(dir.path()), &hooks, Duration::from_secs(30)).unwrap();
        assert_eq!(
            alerts.check_detections(&store).unwrap(),
            0,
            "the first check announces nothing"
        );
        assert!(dir.path().join("alerts/seen.json").exists() && dir.path().join("alerts/seen-outages.json").exists());
        // A count that moves is not a change worth a webhook.
        store
            .put_detections(&[event("PK-twitter-1", None, r#"{"end":null,"n":5}"#)], &[])
            .unwrap();
        assert_eq!(alerts.check_detections(&store).unwrap(), 0);
        // A close, a new event and a new outage. The PK/twitter hook gets all three (an outage
        // of its country cuts twitter too), the PK events-only hook the two events, IR's none.
        store
            .put_detections(
                &[
                    event("PK-twitter-1", Some(200), r#"{"end":200,"n":6}"#),
                    event("PK-twitter-2", None, r#"{"end":null,"n":1}"#),
                    outage(
                        "PK-outage-3600",
                        None,
                        r#"{"end":null,"level":"critical","asns":[{"asn":45595,"end":null}]}"#,
                    ),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(alerts.check_detections(&store).unwrap(), 5);
        assert_eq!(alerts.check_detections(&store).unwrap(), 0, "nothing new");
        let expected = [
            ("event.closed", "wh-config-0"),
            ("event.closed", "wh-config-2"),
            ("event.opened", "wh-config-0"),
            ("event.opened", "wh-config-2"),
            ("outage.opened", "wh-config-0"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()));
        assert_eq!(pending(&alerts), expected);
        // Nothing listens on port 1: an attempt fails and is rescheduled, not lost.
        let (delivered, failed) = alerts.deliver_due();
        assert_eq!((delivered, failed), (0, 5));
        let pending_before = alerts.pending_deliveries();
        assert!(
            pending_before
                .iter()
                .all(|d| d.attempts == 1 && d.next_attempt_ms > now_ms() + 25_000)
        );
        drop(alerts);
        // A restart finds the same queue (attempts kept) and the seen state (no re-announce).
        let again = Alerts::open(Some(dir.path()), &hooks, Duration::from_secs(30)).unwrap();
        let mut reloaded = again.pending_deliveries();
        let mut before = pending_before;
        reloaded.sort_by(|a, b| a.id.cmp(&b.id));
        before.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(reloaded, before);
        assert_eq!(again.check_detections(&store).unwrap(), 0);
        // The outage spreads to a second network, then ends.
        store
            .put_detections(
                &[outage(
                    "PK-outage-3600",
                    None,
                    r#"{"end":null,"level":"critical","asns":[{"asn":45595,"end":null},{"asn":24499,"end":null}]}"#,
                )],
                &[],
            )
            .unwrap();
        assert_eq!(again.check_detections(&store).unwrap(), 1);
        store
            .put_detections(
                &[outage(
                    "PK-outage-3600",
                    Some(9000),
                    r#"{"end":9000,"level":"critical","asns":[{"asn":45595,"end":9000},{"asn":24499,"end":7200}]}"#,
                )],
                &[],
            )
            .unwrap();
        assert_eq!(again.check_detections(&store).unwrap(), 1);
        let kinds: Vec<String> = pending(&again).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            kinds.iter().filter(|k| k.starts_with("outage.")).collect::<Vec<_>>(),
            ["outage.changed", "outage.closed", "outage.opened"]
        );
    }

    #[test]
    fn an_upgrade_without_an_outage_state_announces_no_outage_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("a.db")).unwrap();
        let body = r#"{"end":null,"method":"tls.reset","measurements":40,"asns":[{"asn":1,"start":5,"end":null}]}"#;
        store
            .put_detections(
                &[
                    event("PK-twitter-1", None, body),
                    outage("PK-outage-1", None, r#"{"end":null,"level":"warning","asns":[]}"#),
                ],
                &[],
            )
            .unwrap();
        // The state an older server left: whole event bodies in seen.json, no outage file.
        std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
        std::fs::write(
            dir.path().join("alerts/seen.json"),
            serde_json::json!({"PK-twitter-1": body}).to_string(),
        )
        .unwrap();
        let alerts = Alerts::open(Some(dir.path()), &[hook(None, None, &[])], Duration::from_secs(30)).unwrap();
        assert_eq!(alerts.check_detections(&store).unwrap(), 0);
        assert!(alerts.pending_deliveries().is_empty());
        // A row that is not JSON is skipped; the others are still announced.
        store
            .put_detections(
                &[
                    event("PK-twitter-bad", None, "{not json"),
                    event("PK-twitter-2", None, r#"{"end":null}"#),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(alerts.check_detections(&store).unwrap(), 1);
    }

    #[test]
    fn what_counts_as_a_change() {
        use AlertKind::{Event, Outage};
        let open = r#"{"end":null,"method":"tls.reset","pattern":"steady","measurements":10,"confidence":0.9,"asns":[{"asn":1,"start":0,"end":null,"measurements":10}]}"#;
        assert_eq!(change(Event, None, open), Some("opened"));
        assert_eq!(change(Event, Some(open), open), None);
        let more = open.replace("10", "99").replace("0.9", "0.95");
        assert_eq!(
            change(Event, Some(open), &more),
            None,
            "counts and confidence move constantly"
        );
        let m = material(Event, open);
        assert_eq!(material(Event, &m), m, "material of material is itself");
        assert_eq!(change(Event, Some(&m), &more), None, "a stored material state compares");
        let spread = open.replace(
            r#"{"asn":1,"start":0,"end":null,"measurements":10}"#,
            r#"{"asn":1,"start":0,"end":null},{"asn":2,"start":7,"end":null}"#,
        );
        assert_eq!(change(Event, Some(&m), &spread), Some("changed"));
        assert_eq!(
            change(Event, Some(open), &open.replace("tls.reset", "dns.nxdomain")),
            Some("changed")
        );
        assert_eq!(
            change(Event, Some(open), &open.replace("steady", "intermittent")),
            Some("changed")
        );
        let closed = open.replace(r#""end":null"#, r#""end":500"#);
        assert_eq!(change(Event, Some(open), &closed), Some("closed"));
        assert_eq!(change(Event, Some(&closed), open), Some("changed"), "reopened");
        let o = r#"{"end":null,"level":"warning","signals":["probe_volume"],"country_wide":false,"alerts":[{"lowest":3.0}],"asns":[{"asn":1,"end":null,"level":"warning"}]}"#;
        assert_eq!(
            change(Outage, Some(o), &o.replace("3.0", "1.0")),
            None,
            "the lowest reading"
        );
        assert_eq!(
            change(Outage, Some(o), &o.replacen("warning", "critical", 1)),
            Some("changed"),
            "escalated"
        );
        assert_eq!(
            change(
                Outage,
                Some(o),
                &o.replace(r#"["probe_volume"]"#, r#"["bgp","probe_volume"]"#)
            ),
            Some("changed")
        );
        assert_eq!(
            change(Outage, Some(o), &o.replace("false", "true")),
            Some("changed"),
            "country-wide"
        );
        assert_eq!(
            change(Outage, Some(o), &o.replace(r#""end":null"#, r#""end":9"#)),
            Some("closed")
        );
        assert_eq!(change(Outage, Some("not json"), "not json"), None);
        assert_eq!(changed_fields(Event, open, &spread), ["asns"]);
        assert_eq!(
            changed_fields(Event, &m, &closed),
            ["asns", "end"],
            "from a stored material state; its network ended too"
        );
        assert_eq!(
            changed_fields(
                Outage,
                o,
                &o.replacen("warning", "critical", 1).replace("false", "true")
            ),
            ["country_wide", "level"]
        );
    }

    #[test]
    fn config_files_and_webhook_filters() {
        let file = FileConfig::parse(
            "[[webhook]]\nurl = \"https://example.org/hook\"\nsecret = \"0123456789abcdef\"\ncc = \"pk\"\nplatform = \"twitter.com\"\n\n\
             [[webhook]]\nurl = \"https://example.org/outages\"\nsecret = \"0123456789abcdef\"\nasn = 45595\nkinds = [\"outage\"]\n\n\
             [[webhook]]\nurl = \"https://example.org/all\"\nsecret = \"0123456789abcdef\"\nkinds = [\"outage\", \"watch\", \"event\", \"event\"]\n",
        )
        .unwrap();
        let subject = |kind, cc, platform, asns| Subject {
            kind,
            cc,
            platform,
            asns,
        };
        let w = &file.webhooks[0];
        assert_eq!((w.cc.as_deref(), w.platform.as_deref()), (Some("PK"), Some("twitter")));
        let ev = AlertKind::Event;
        let out = AlertKind::Outage;
        assert!(w.wants(&subject(ev, "PK", Some("twitter"), &[1])));
        assert!(!w.wants(&subject(ev, "IR", Some("twitter"), &[1])));
        assert!(!w.wants(&subject(ev, "PK", Some("youtube"), &[1])));
        assert!(
            w.wants(&subject(out, "PK", None, &[1])),
            "a PK shutdown cuts twitter too"
        );
        assert!(!w.wants(&subject(out, "IR", None, &[1])));
        let o = &file.webhooks[1];
        assert_eq!(o.kinds, [AlertKind::Outage]);
        assert!(o.wants(&subject(out, "IR", None, &[7, 45595])));
        assert!(!o.wants(&subject(out, "IR", None, &[7])), "another network");
        assert!(
            !o.wants(&subject(ev, "IR", Some("x"), &[45595])),
            "events are not asked for"
        );
        assert!(file.webhooks[2].kinds.is_empty(), "all three kinds is every kind");
        for bad in [
            "[[webhook]]\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"short\"\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\ncc = \"PAK\"\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\ncolour = \"red\"\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\nkinds = [\"blocks\"]\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\nasn = 0\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\nasn = -1\n",
            "[[webhook]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\nplatform = \"x.com\"\nkinds = [\"outage\"]\n",
            "not toml",
        ] {
            assert!(FileConfig::parse(bad).is_err(), "{bad}");
        }
        assert!(FileConfig::parse("").unwrap().webhooks.is_empty());
    }
}
