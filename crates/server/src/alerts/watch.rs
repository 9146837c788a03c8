//! Deadline watches: "restore x.com in PK by 2024-04-24". A watch names a country, a platform
//! or a domain, and a deadline; its report says, per network (ASN), whether access is back,
//! judged from the measurements of a window just before the deadline (or before now, while the
//! deadline is ahead), e.g. "restored on 3 of 5 networks".
//!
//! The report is pulled (`GET /api/v1/watches/{id}`) and, once the deadline has passed (by
//! [`REPORT_DELAY_SECONDS`], for the last measurements before it to arrive), pushed once to the
//! webhooks that want it as `watch.due` ([`super::Alerts::check_watches`]).
//!
//! Pure but for [`counts`]: the caller reads the counts ([`AsnCounts`]) and passes the clock.
//!
//! # The rule
//! Per network, only decisive verdicts count (`ok` and `blocked`; `down` and `inconclusive`
//! say nothing about censorship). With `b` = blocked / (ok + blocked):
//! - `b ≤ 0.2`: **restored** (at most one measurement in five still blocked: noise, or a stale
//!   resolver cache);
//! - `b ≥ 0.8`: **blocked**;
//! - in between: **mixed** (access comes and goes, as in February 2024's "short cycles");
//! - no decisive verdict: **no data**, left out of the "N of M".
//!
//! The thresholds are censorwatch's own: symmetric, and wide enough that one stray verdict
//! among five does not flip a network.

use serde::{Deserialize, Serialize};

/// Largest blocked share that counts as restored.
pub const RESTORED_MAX_BLOCKED_SHARE: f64 = 0.2;
/// Smallest blocked share that counts as still blocked.
pub const BLOCKED_MIN_BLOCKED_SHARE: f64 = 0.8;
/// The window before the deadline used when a watch names none: 24 hours.
pub const DEFAULT_WINDOW_SECONDS: i64 = 24 * 3600;
/// How long after its deadline a watch's report is pushed: probes submit within minutes, so
/// the measurements of the window's last minutes are in by then.
pub const REPORT_DELAY_SECONDS: i64 = 600;

/// What a watch watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// Its id (`w-` and 16 hex digits).
    pub id: String,
    /// The country.
    pub cc: String,
    /// A platform (`twitter`: every domain of it), or `None` when [`Watch::domain`] is set.
    pub platform: Option<String>,
    /// A single domain, or `None` when [`Watch::platform`] is set.
    pub domain: Option<String>,
    /// The deadline, Unix seconds.
    pub deadline: i64,
    /// The window of measurements before the deadline that decides, seconds.
    pub window_seconds: i64,
    /// What it is about, in words ("court order: restore X by 24 April").
    pub label: String,
    /// When it was created, Unix seconds.
    pub created: i64,
    /// When its report at the deadline was queued for the webhooks (or, for a watch created
    /// after its deadline, when it was created: its creator got the report); `None` before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<i64>,
}

impl Watch {
    /// The platform it is about (a domain's platform when it names a domain).
    pub fn platform_name(&self) -> String {
        match (&self.platform, &self.domain) {
            (Some(p), _) => p.clone(),
            (None, Some(d)) => censorwatch_detect::platform_of(d).into_owned(),
            (None, None) => String::new(),
        }
    }

    /// Whether its report is to be pushed at `now`.
    pub fn report_due(&self, now: i64) -> bool {
        self.reported.is_none() && now >= self.deadline.saturating_add(REPORT_DELAY_SECONDS)
    }
}

/// The per-network counts a watch's report at `now` is judged from, read from `store`.
pub fn counts(
    store: &dyn censorwatch_store::Store,
    w: &Watch,
    now: i64,
) -> Result<Vec<AsnCounts>, censorwatch_store::StoreError> {
    use censorwatch_store::{AggregateAxis, AggregateQuery};
    let ((since, until), _) = window(w, now);
    let rows = store.aggregate(&AggregateQuery {
        probe_cc: Some(w.cc.clone()),
        domains: w.domain.iter().cloned().collect(),
        since: Some(since),
        until: Some(until),
        axes: vec![AggregateAxis::Asn, AggregateAxis::Domain],
        ..AggregateQuery::default()
    })?;
    let mut per_asn: std::collections::BTreeMap<u32, AsnCounts> = Default::default();
    for r in rows {
        let Some(domain) = r.domain.as_deref() else { continue };
        if let Some(p) = &w.platform {
            if censorwatch_detect::platform_of(domain) != p.as_str() {
                continue;
            }
        }
        let asn = r.probe_asn.unwrap_or(0);
        let c = per_asn.entry(asn).or_insert(AsnCounts {
            asn,
            ..AsnCounts::default()
        });
        c.ok += r.ok;
        c.blocked += r.blocked;
        c.other += r.down + r.inconclusive;
    }
    Ok(per_asn.into_values().collect())
}

/// A watch and its report as the API shows them (and a `watch.due` webhook sends them).
pub fn to_json(w: &Watch, report: &WatchReport) -> serde_json::Value {
    let iso = crate::api_routes::iso_time;
    serde_json::json!({
        "id": w.id,
        "cc": w.cc,
        "platform": w.platform,
        "domain": w.domain,
        "deadline": iso(w.deadline),
        "window_hours": w.window_seconds / 3600,
        "label": w.label,
        "created": iso(w.created),
        "report": {
            "status": report.status,
            "since": iso(report.since),
            "until": iso(report.until),
            "restored": report.restored,
            "networks": report.networks,
            "summary": report.summary,
            "per_network": report.per_network,
        },
    })
}

/// One network's verdict counts in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AsnCounts {
    /// The network.
    pub asn: u32,
    /// `ok` verdicts.
    pub ok: u64,
    /// `blocked` verdicts.
    pub blocked: u64,
    /// `down` and `inconclusive` verdicts.
    pub other: u64,
}

/// Whether access is back on one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Blocked share ≤ 0.2.
    Restored,
    /// Blocked share ≥ 0.8.
    Blocked,
    /// In between.
    Mixed,
    /// No `ok` or `blocked` verdict in the window.
    NoData,
}

/// One network in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkAccess {
    /// The network.
    pub asn: u32,
    /// The verdict.
    pub access: Access,
    /// `ok` verdicts in the window.
    pub ok: u64,
    /// `blocked` verdicts in the window.
    pub blocked: u64,
    /// Other verdicts in the window.
    pub other: u64,
    /// blocked / (ok + blocked), when there is any.
    pub blocked_share: Option<f64>,
}

/// A watch's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchReport {
    /// `pending` before the deadline (the state so far), `due` at or after it.
    pub status: String,
    /// The window judged: `[since, until)`, Unix seconds.
    pub since: i64,
    /// End of the window (the deadline once due, else now).
    pub until: i64,
    /// Networks restored.
    pub restored: usize,
    /// Networks with data (the "of").
    pub networks: usize,
    /// Per network, by ASN.
    pub per_network: Vec<NetworkAccess>,
    /// One sentence: "restored on 3 of 5 networks (AS1, AS2, AS3); still blocked on AS4; mixed on AS5".
    pub summary: String,
}

/// The access verdict of one network's counts.
pub fn access(c: &AsnCounts) -> (Access, Option<f64>) {
    let decisive = c.ok + c.blocked;
    if decisive == 0 {
        return (Access::NoData, None);
    }
    let share = c.blocked as f64 / decisive as f64;
    let access = if share <= RESTORED_MAX_BLOCKED_SHARE {
        Access::Restored
    } else if share >= BLOCKED_MIN_BLOCKED_SHARE {
        Access::Blocked
    } else {
        Access::Mixed
    };
    (access, Some(share))
}

/// The window a report judges at `now`: the `window_seconds` before the deadline once it has
/// passed, else before `now`. The second value says whether the deadline has passed.
pub fn window(watch: &Watch, now: i64) -> ((i64, i64), bool) {
    let due = now >= watch.deadline;
    let until = if due { watch.deadline } else { now };
    ((until - watch.window_seconds.max(1), until), due)
}

fn list(asns: &[u32]) -> String {
    asns.iter().map(|a| format!("AS{a}")).collect::<Vec<_>>().join(", ")
}

/// The report of `watch` at `now` from the per-network counts of its window.
pub fn report(watch: &Watch, counts: &[AsnCounts], now: i64) -> WatchReport {
    let ((since, until), due) = window(watch, now);
    let mut per_network: Vec<NetworkAccess> = counts
        .iter()
        .map(|c| {
            let (access, blocked_share) = access(c);
            NetworkAccess {
                asn: c.asn,
                access,
                ok: c.ok,
                blocked: c.blocked,
                other: c.other,
                blocked_share,
            }
        })
        .collect();
    per_network.sort_by_key(|n| n.asn);
    let with = |a: Access| -> Vec<u32> { per_network.iter().filter(|n| n.access == a).map(|n| n.asn).collect() };
    let (restored, blocked, mixed) = (with(Access::Restored), with(Access::Blocked), with(Access::Mixed));
    let networks = restored.len() + blocked.len() + mixed.len();
    let what = watch
        .platform
        .as_deref()
        .or(watch.domain.as_deref())
        .unwrap_or("the target");
    let mut summary = if networks == 0 {
        format!(
            "no measurements of {what} in {} in the window, so nothing can be said yet",
            watch.cc
        )
    } else {
        let mut s = format!(
            "{what} in {}: restored on {} of {networks} networks",
            watch.cc,
            restored.len()
        );
        if !restored.is_empty() {
            s.push_str(&format!(" ({})", list(&restored)));
        }
        if !blocked.is_empty() {
            s.push_str(&format!("; still blocked on {}", list(&blocked)));
        }
        if !mixed.is_empty() {
            s.push_str(&format!("; intermittent on {}", list(&mixed)));
        }
        s
    };
    if !due {
        summary.push_str(" so far (the deadline has not passed)");
    }
    WatchReport {
        status: if due { "due" } else { "pending" }.into(),
        since,
        until,
        restored: restored.len(),
        networks,
        per_network,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Watch {
        Watch {
            id: "w-1".into(),
            cc: "PK".into(),
            platform: Some("twitter".into()),
            domain: None,
            deadline: 1_713_916_800,
            window_seconds: DEFAULT_WINDOW_SECONDS,
            label: "restore x.com in PK by 2024-04-24".into(),
            created: 0,
            reported: None,
        }
    }

    fn c(asn: u32, ok: u64, blocked: u64, other: u64) -> AsnCounts {
        AsnCounts {
            asn,
            ok,
            blocked,
            other,
        }
    }

    #[test]
    fn the_thresholds_are_inclusive_and_ignore_indecisive_verdicts() {
        assert_eq!(access(&c(1, 4, 1, 0)).0, Access::Restored, "0.2 is restored");
        assert_eq!(access(&c(1, 3, 1, 0)).0, Access::Mixed, "0.25 is mixed");
        assert_eq!(access(&c(1, 1, 4, 0)).0, Access::Blocked, "0.8 is blocked");
        assert_eq!(access(&c(1, 2, 3, 0)).0, Access::Mixed);
        assert_eq!(
            access(&c(1, 0, 0, 9)),
            (Access::NoData, None),
            "down and inconclusive decide nothing"
        );
        assert_eq!(access(&c(1, 5, 0, 100)).0, Access::Restored);
        assert_eq!(access(&c(1, 0, 1, 0)), (Access::Blocked, Some(1.0)));
    }

    #[test]
    fn three_of_five_networks_restored_at_the_deadline() {
        let w = watch();
        let counts = [
            c(59257, 10, 0, 1),
            c(17557, 9, 1, 0),
            c(45595, 20, 2, 0),
            c(38193, 0, 12, 0),
            c(24499, 5, 5, 0),
            c(9541, 0, 0, 3),
        ];
        let r = report(&w, &counts, w.deadline + 3600);
        assert_eq!(r.status, "due");
        assert_eq!((r.since, r.until), (w.deadline - 86_400, w.deadline));
        assert_eq!((r.restored, r.networks), (3, 5));
        assert_eq!(
            r.summary,
            "twitter in PK: restored on 3 of 5 networks (AS17557, AS45595, AS59257); still blocked on AS38193; \
             intermittent on AS24499"
        );
        assert_eq!(r.per_network.len(), 6);
        assert_eq!(r.per_network[0].asn, 9541);
        assert_eq!(r.per_network[0].access, Access::NoData);
    }

    #[test]
    fn before_the_deadline_the_window_ends_now() {
        let w = watch();
        let now = w.deadline - 7200;
        let r = report(&w, &[c(1, 0, 3, 0)], now);
        assert_eq!(r.status, "pending");
        assert_eq!((r.since, r.until), (now - 86_400, now));
        assert!(
            r.summary.ends_with("so far (the deadline has not passed)"),
            "{}",
            r.summary
        );
        let empty = report(&w, &[], w.deadline);
        assert_eq!((empty.restored, empty.networks, empty.status.as_str()), (0, 0, "due"));
        assert!(empty.summary.starts_with("no measurements"), "{}", empty.summary);
    }
}
