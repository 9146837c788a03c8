//! Which measurements an evidence bundle holds, and gathering them with their proofs: one place
//! for `censorwatch evidence bundle` and the server's bundle endpoints.
//!
//! A [`Selection`] is either a query (country, domain, period) or a stored event, which stands
//! for every measurement of its domains in its country from [`EVENT_MARGIN_SECONDS`] before its
//! start to as long after its end (no end while it is ongoing): the bundle then shows the block,
//! its networks, and the networks and hours around it that were not blocked. [`collect`] reads
//! the matching measurements from the store and proves each against the ledger's log;
//! [`Selection::writer`] puts them into a [`BundleWriter`] signed with the log's key.

use crate::bundle::{BundleItem, BundleWriter};
use crate::ledger::{Ledger, LedgerError, verdict_bytes};
use censorwatch_store::record::format_ooni_time;
use censorwatch_store::{MeasurementQuery, Store, StoreError, StoredDetection};

/// How far before an event's start and after its end an event bundle reaches.
pub const EVENT_MARGIN_SECONDS: i64 = 24 * 3600;

/// Why measurements could not be gathered for a bundle.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// The selection names nothing.
    #[error("say which measurements: a country and/or a domain (with a period to bound it), or an event id")]
    Empty,
    /// The store failed.
    #[error("querying the store failed: {0}")]
    Store(#[from] StoreError),
    /// Proving a measurement failed.
    #[error("proving a measurement failed: {0}")]
    Ledger(#[from] LedgerError),
    /// The stored event cannot be read.
    #[error("the stored event {id} is not valid JSON ({message}); recompute the events (`censorwatch events`)")]
    BadEvent {
        /// The event's id.
        id: String,
        /// What the parser said.
        message: String,
    },
    /// More measurements match than one bundle may hold.
    #[error("more than {max} measurements match; narrow the period")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// Nothing logged matches.
    #[error("no logged measurement matches; nothing to bundle")]
    Nothing,
}

/// What one bundle holds: the store queries whose measurements go in, and how it is described.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The queries (their limits and cursors are set by [`collect`]).
    pub queries: Vec<MeasurementQuery>,
    /// The bundle's title.
    pub title: String,
    /// The manifest's description: the query, and the event when there is one.
    pub description: serde_json::Value,
    /// A short name for the bundle's file (`evidence-<stem>.tar.gz`), not yet sanitized.
    pub stem: String,
}

impl Selection {
    /// The measurements of `cc` and/or `domain` (normalized here) measured in `[since, until)`.
    pub fn for_query(
        cc: Option<&str>,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Selection, SelectError> {
        let cc = cc.map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty());
        let domain = domain.map(|d| d.trim().to_ascii_lowercase()).filter(|d| !d.is_empty());
        if cc.is_none() && domain.is_none() {
            return Err(SelectError::Empty);
        }
        let what = [cc.as_deref(), domain.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Selection {
            queries: vec![MeasurementQuery {
                probe_cc: cc.clone(),
                domain: domain.clone(),
                since,
                until,
                ..Default::default()
            }],
            title: format!("censorwatch evidence: {what}"),
            description: serde_json::json!({
                "query": {"cc": cc, "domain": domain, "since": since.map(format_ooni_time), "until": until.map(format_ooni_time)},
            }),
            stem: what,
        })
    }

    /// The measurements around a stored event (see the module docs).
    pub fn for_event(event: &StoredDetection) -> Result<Selection, SelectError> {
        let body: serde_json::Value = serde_json::from_str(&event.body).map_err(|e| SelectError::BadEvent {
            id: event.id.clone(),
            message: e.to_string(),
        })?;
        let mut domains: Vec<String> = body["domains"]
            .as_array()
            .map(|list| list.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if domains.is_empty() {
            domains.push(event.domain.clone());
        }
        domains.sort();
        domains.dedup();
        let since = event.start.saturating_sub(EVENT_MARGIN_SECONDS);
        let until = event.end.map(|end| end.saturating_add(EVENT_MARGIN_SECONDS));
        let period = match event.end {
            Some(end) => format!("from {} to {}", format_ooni_time(event.start), format_ooni_time(end)),
            None => format!("since {} (ongoing)", format_ooni_time(event.start)),
        };
        Ok(Selection {
            queries: domains
                .iter()
                .map(|d| MeasurementQuery {
                    probe_cc: Some(event.cc.clone()),
                    domain: Some(d.clone()),
                    since: Some(since),
                    until,
                    ..Default::default()
                })
                .collect(),
            title: format!(
                "censorwatch evidence: {} blocked in {} {period}",
                event.platform, event.cc
            ),
            description: serde_json::json!({
                "event": body,
                "query": {"cc": event.cc, "domains": domains, "since": format_ooni_time(since), "until": until.map(format_ooni_time)},
            }),
            stem: event.id.clone(),
        })
    }

    /// A writer for `items`, signed with the ledger's key against its current checkpoint.
    pub fn writer(&self, ledger: &Ledger, items: Vec<BundleItem>) -> BundleWriter {
        BundleWriter::new(&ledger.signed_checkpoint(), ledger.verifier())
            .title(&self.title)
            .description(self.description.clone())
            .items(items)
            .sign_manifest(ledger.keys())
    }

    /// The default file name: `evidence-<stem>.tar.gz`, the stem reduced to `A-Za-z0-9.-`.
    pub fn file_name(&self) -> String {
        let stem: String = self
            .stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' })
            .collect();
        format!("evidence-{stem}.tar.gz")
    }
}

/// The measurements of a selection with their inclusion proofs, oldest first.
#[derive(Debug)]
pub struct Collected {
    /// The bundle's items.
    pub items: Vec<BundleItem>,
    /// Matching measurements stored but not logged yet (left out).
    pub unlogged: u64,
}

/// Reads every measurement `selection` names from `store` and proves it against `ledger`'s log;
/// at most `max` of them.
pub fn collect(
    store: &dyn Store,
    ledger: &Ledger,
    selection: &Selection,
    max: usize,
) -> Result<Collected, SelectError> {
    let mut items = Vec::new();
    let mut unlogged = 0u64;
    for query in &selection.queries {
        let mut query = MeasurementQuery {
            limit: censorwatch_store::query::MAX_LIMIT,
            cursor: None,
            ..query.clone()
        };
        loop {
            let page = store.query(&query)?;
            for record in &page.results {
                match ledger.prove(store, &record.id)? {
                    Some((full, index, proof)) => items.push(BundleItem::new(
                        &full.id,
                        full.raw.clone(),
                        verdict_bytes(&full.verdict),
                        index,
                        proof,
                    )),
                    None => unlogged += 1,
                }
                if items.len() > max {
                    return Err(SelectError::TooMany { max });
                }
            }
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
    }
    if items.is_empty() {
        return Err(SelectError::Nothing);
    }
    // Oldest first reads best in the summary.
    items.sort_by(|x, y| (x.time, &x.id).cmp(&(y.time, &y.id)));
    Ok(Collected { items, unlogged })
}

#[cfg(test)]
mod tests {
    use super::*;
    use censorwatch_store::DetectionKind;

    fn event(end: Option<i64>, body: &str) -> StoredDetection {
        StoredDetection {
            kind: DetectionKind::Event,
            id: "PK-twitter-100".into(),
            cc: "PK".into(),
            domain: "x.com".into(),
            platform: "twitter".into(),
            start: 1_708_128_000,
            end,
            updated: 0,
            body: body.into(),
        }
    }

    #[test]
    fn an_event_selects_each_domain_a_day_either_side() {
        let sel = Selection::for_event(&event(
            Some(1_708_214_400),
            r#"{"id":"PK-twitter-100","domains":["x.com","abs.twimg.com","x.com"]}"#,
        ))
        .unwrap();
        let domains: Vec<_> = sel.queries.iter().map(|q| q.domain.clone().unwrap()).collect();
        assert_eq!(domains, ["abs.twimg.com", "x.com"]);
        for q in &sel.queries {
            assert_eq!(q.probe_cc.as_deref(), Some("PK"));
            assert_eq!(q.since, Some(1_708_128_000 - EVENT_MARGIN_SECONDS));
            assert_eq!(q.until, Some(1_708_214_400 + EVENT_MARGIN_SECONDS));
        }
        assert_eq!(sel.description["event"]["id"], "PK-twitter-100");
        assert!(
            sel.title.contains("twitter blocked in PK from 2024-02-17"),
            "{}",
            sel.title
        );
        assert_eq!(sel.file_name(), "evidence-PK-twitter-100.tar.gz");
    }

    #[test]
    fn an_ongoing_event_reaches_to_now_and_falls_back_to_its_domain() {
        let sel = Selection::for_event(&event(None, r#"{"id":"PK-twitter-100"}"#)).unwrap();
        assert_eq!(sel.queries.len(), 1);
        assert_eq!(sel.queries[0].domain.as_deref(), Some("x.com"));
        assert_eq!(sel.queries[0].until, None);
        assert!(sel.title.contains("(ongoing)"), "{}", sel.title);
        let err = Selection::for_event(&event(None, "{not json")).unwrap_err().to_string();
        assert!(
            err.contains("PK-twitter-100") && err.contains("censorwatch events"),
            "{err}"
        );
    }

    #[test]
    fn a_query_is_normalized_and_must_name_something() {
        let sel = Selection::for_query(Some(" pk "), Some("X.com"), Some(10), None).unwrap();
        assert_eq!(sel.queries[0].probe_cc.as_deref(), Some("PK"));
        assert_eq!(sel.queries[0].domain.as_deref(), Some("x.com"));
        assert_eq!(sel.file_name(), "evidence-PK-x.com.tar.gz");
        assert!(matches!(
            Selection::for_query(None, Some("  "), None, None),
            Err(SelectError::Empty)
        ));
    }
}
