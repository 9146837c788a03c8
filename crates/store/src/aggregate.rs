//! Aggregation: counts of stored measurements by verdict status, grouped along zero, one or two
//! axes (time bins, network, method, domain, country, status), for the API's
//! `/api/v1/aggregation` and the dashboard's charts.
//!
//! Each backend answers [`crate::Store::aggregate`] with one SQL `GROUP BY`; [`reference`] is the
//! plain-Rust model of the same semantics that the conformance suite checks them against.
//!
//! # Semantics
//! - Filters: country, domains (any of; empty = all, measurements without a domain included),
//!   network, `since ≤ start_time < until`.
//! - A time bin is `floor(start_time / bin_seconds) * bin_seconds` (Unix seconds, UTC).
//! - Rows are sorted by the axes in the order given (`None` first), so a time axis comes out
//!   oldest first. Fields of axes not asked for are `None`.
//! - `measurements = ok + blocked + down + inconclusive`.

use crate::StoreError;
use crate::record::Record;
use censorwatch_model::Status;
use std::collections::BTreeMap;

/// Shortest time bin accepted: five minutes.
pub const MIN_BIN_SECONDS: i64 = 300;

/// Most axes one query may group by.
pub const MAX_AXES: usize = 2;

/// What to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggregateAxis {
    /// Time bins of [`AggregateQuery::bin_seconds`].
    Time,
    /// The probe's network (`probe_asn`).
    Asn,
    /// The verdict's blocking method (`None` for measurements without one).
    Method,
    /// The measured domain (`None` for measurements without one).
    Domain,
    /// The probe's country.
    Cc,
    /// The verdict's status.
    Status,
}

impl AggregateAxis {
    /// Every axis.
    pub const ALL: [AggregateAxis; 6] = [
        AggregateAxis::Time,
        AggregateAxis::Asn,
        AggregateAxis::Method,
        AggregateAxis::Domain,
        AggregateAxis::Cc,
        AggregateAxis::Status,
    ];

    /// The name used in URLs (`time`, `asn`, `method`, `domain`, `cc`, `status`).
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateAxis::Time => "time",
            AggregateAxis::Asn => "asn",
            AggregateAxis::Method => "method",
            AggregateAxis::Domain => "domain",
            AggregateAxis::Cc => "cc",
            AggregateAxis::Status => "status",
        }
    }

    /// Parses [`AggregateAxis::as_str`]'s output (also `probe_asn` and `probe_cc`).
    pub fn parse(text: &str) -> Option<AggregateAxis> {
        match text {
            "probe_asn" => Some(AggregateAxis::Asn),
            "probe_cc" => Some(AggregateAxis::Cc),
            _ => AggregateAxis::ALL.into_iter().find(|a| a.as_str() == text),
        }
    }
}

/// An aggregation request. [`AggregateQuery::default`] is every measurement, no axis, hourly
/// bins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateQuery {
    /// Country code.
    pub probe_cc: Option<String>,
    /// Any of these domains; empty means every measurement (with or without a domain).
    pub domains: Vec<String>,
    /// ASN number.
    pub probe_asn: Option<u32>,
    /// Start time ≥ this (Unix seconds).
    pub since: Option<i64>,
    /// Start time < this (Unix seconds).
    pub until: Option<i64>,
    /// What to group by, 0 to [`MAX_AXES`], no axis twice.
    pub axes: Vec<AggregateAxis>,
    /// Width of a time bin in seconds (used by [`AggregateAxis::Time`]), ≥ [`MIN_BIN_SECONDS`].
    pub bin_seconds: i64,
}

impl Default for AggregateQuery {
    fn default() -> AggregateQuery {
        AggregateQuery {
            probe_cc: None,
            domains: Vec::new(),
            probe_asn: None,
            since: None,
            until: None,
            axes: Vec::new(),
            bin_seconds: 3600,
        }
    }
}

impl AggregateQuery {
    /// Checks the query's shape; backends call this first.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: String| Err(StoreError::BadQuery(m));
        if self.axes.len() > MAX_AXES {
            return bad(format!(
                "at most {MAX_AXES} axes can be aggregated at once, {} were asked for",
                self.axes.len()
            ));
        }
        if self.axes.len() == 2 && self.axes[0] == self.axes[1] {
            return bad(format!(
                "axis {} is given twice; give two different axes",
                self.axes[0].as_str()
            ));
        }
        if self.axes.contains(&AggregateAxis::Time) && self.bin_seconds < MIN_BIN_SECONDS {
            return bad(format!(
                "a time bin of {} s is too short; use at least {MIN_BIN_SECONDS} s (5 minutes)",
                self.bin_seconds
            ));
        }
        if let (Some(since), Some(until)) = (self.since, self.until) {
            if since >= until {
                return bad("since must be before until".into());
            }
        }
        Ok(())
    }

    /// Whether `record` passes the filters (the reference the backends' SQL follows).
    pub fn matches(&self, record: &Record) -> bool {
        let m = &record.meta;
        self.probe_cc.as_ref().is_none_or(|cc| *cc == m.probe_cc)
            && (self.domains.is_empty() || m.domain.as_ref().is_some_and(|d| self.domains.contains(d)))
            && self.probe_asn.is_none_or(|asn| asn == m.probe_asn)
            && self.since.is_none_or(|t| m.start_time >= t)
            && self.until.is_none_or(|t| m.start_time < t)
    }
}

/// The start of the time bin holding `time` (floor division, also for negative times).
pub fn bin_start(time: i64, bin_seconds: i64) -> i64 {
    time - time.rem_euclid(bin_seconds)
}

/// One group's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AggregateRow {
    /// Start of the time bin (Unix seconds), when grouped by [`AggregateAxis::Time`].
    pub time: Option<i64>,
    /// The network, when grouped by [`AggregateAxis::Asn`].
    pub probe_asn: Option<u32>,
    /// The method (`None` also for measurements without one), when grouped by
    /// [`AggregateAxis::Method`].
    pub method: Option<String>,
    /// The domain (`None` also for measurements without one), when grouped by
    /// [`AggregateAxis::Domain`].
    pub domain: Option<String>,
    /// The country, when grouped by [`AggregateAxis::Cc`].
    pub probe_cc: Option<String>,
    /// The status, when grouped by [`AggregateAxis::Status`].
    pub status: Option<String>,
    /// Measurements in the group.
    pub measurements: u64,
    /// Of which `ok`.
    pub ok: u64,
    /// Of which `blocked`.
    pub blocked: u64,
    /// Of which `down`.
    pub down: u64,
    /// Of which `inconclusive`.
    pub inconclusive: u64,
}

impl AggregateRow {
    /// Adds one measurement of `status`.
    pub fn count(&mut self, status: Status) {
        self.measurements += 1;
        match status {
            Status::Ok => self.ok += 1,
            Status::Blocked => self.blocked += 1,
            Status::Down => self.down += 1,
            Status::Inconclusive => self.inconclusive += 1,
        }
    }
}

/// The sort key of a row along `axes`: each axis's value, `None` first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum KeyPart {
    Int(Option<i64>),
    Text(Option<String>),
}

fn key_part(row: &AggregateRow, axis: AggregateAxis) -> KeyPart {
    match axis {
        AggregateAxis::Time => KeyPart::Int(row.time),
        AggregateAxis::Asn => KeyPart::Int(row.probe_asn.map(i64::from)),
        AggregateAxis::Method => KeyPart::Text(row.method.clone()),
        AggregateAxis::Domain => KeyPart::Text(row.domain.clone()),
        AggregateAxis::Cc => KeyPart::Text(row.probe_cc.clone()),
        AggregateAxis::Status => KeyPart::Text(row.status.clone()),
    }
}

/// Sorts rows by `axes`, in order, `None` first (strings in byte order); backends call this on
/// their results so that every backend returns the same order.
pub fn sort_rows(rows: &mut [AggregateRow], axes: &[AggregateAxis]) {
    rows.sort_by_cached_key(|r| axes.iter().map(|a| key_part(r, *a)).collect::<Vec<_>>());
}

/// The empty row of a group: the fields of `axes` taken from `record`.
fn group_of(record: &Record, query: &AggregateQuery) -> AggregateRow {
    let mut row = AggregateRow::default();
    for axis in &query.axes {
        match axis {
            AggregateAxis::Time => row.time = Some(bin_start(record.meta.start_time, query.bin_seconds)),
            AggregateAxis::Asn => row.probe_asn = Some(record.meta.probe_asn),
            AggregateAxis::Method => row.method = record.verdict.method.map(|m| m.as_str().to_owned()),
            AggregateAxis::Domain => row.domain = record.meta.domain.clone(),
            AggregateAxis::Cc => row.probe_cc = Some(record.meta.probe_cc.clone()),
            AggregateAxis::Status => row.status = Some(record.verdict.status.as_str().to_owned()),
        }
    }
    row
}

/// The reference model: `query` over `records` in plain Rust (records with the same id counted
/// once, the first kept, as a store keeps them). Without axes and without a matching record
/// the answer is one row of zeros, as SQL's aggregate without `GROUP BY` gives.
pub fn reference(records: &[Record], query: &AggregateQuery) -> Result<Vec<AggregateRow>, StoreError> {
    query.validate()?;
    let mut seen = std::collections::HashSet::new();
    let mut groups: BTreeMap<Vec<KeyPart>, AggregateRow> = BTreeMap::new();
    for r in records {
        if !seen.insert(r.id.as_str()) || !query.matches(r) {
            continue;
        }
        let group = group_of(r, query);
        let key: Vec<KeyPart> = query.axes.iter().map(|a| key_part(&group, *a)).collect();
        groups.entry(key).or_insert(group).count(r.verdict.status);
    }
    let mut rows: Vec<AggregateRow> = groups.into_values().collect();
    if rows.is_empty() && query.axes.is_empty() {
        rows.push(AggregateRow::default());
    }
    sort_rows(&mut rows, &query.axes);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_floor_also_below_zero() {
        assert_eq!(bin_start(3599, 3600), 0);
        assert_eq!(bin_start(3600, 3600), 3600);
        assert_eq!(bin_start(-1, 3600), -3600);
        assert_eq!(bin_start(1_708_162_315, 300), 1_708_162_200);
    }

    #[test]
    fn axes_parse_and_queries_validate() {
        for a in AggregateAxis::ALL {
            assert_eq!(AggregateAxis::parse(a.as_str()), Some(a));
        }
        assert_eq!(AggregateAxis::parse("probe_asn"), Some(AggregateAxis::Asn));
        assert_eq!(AggregateAxis::parse("isp"), None);
        let ok = AggregateQuery {
            axes: vec![AggregateAxis::Time, AggregateAxis::Asn],
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        for bad in [
            AggregateQuery {
                axes: vec![AggregateAxis::Time, AggregateAxis::Asn, AggregateAxis::Method],
                ..Default::default()
            },
            AggregateQuery {
                axes: vec![AggregateAxis::Asn, AggregateAxis::Asn],
                ..Default::default()
            },
            AggregateQuery {
                axes: vec![AggregateAxis::Time],
                bin_seconds: 299,
                ..Default::default()
            },
            AggregateQuery {
                since: Some(10),
                until: Some(10),
                ..Default::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(StoreError::BadQuery(_))), "{bad:?}");
        }
        // A short bin is fine when time is not an axis.
        assert!(
            AggregateQuery {
                bin_seconds: 0,
                ..Default::default()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn rows_sort_with_none_first() {
        let row = |asn: Option<u32>, method: Option<&str>| AggregateRow {
            probe_asn: asn,
            method: method.map(str::to_owned),
            ..Default::default()
        };
        let mut rows = vec![
            row(Some(2), None),
            row(Some(1), Some("tls.reset")),
            row(Some(1), None),
            row(Some(1), Some("dns.nxdomain")),
        ];
        sort_rows(&mut rows, &[AggregateAxis::Asn, AggregateAxis::Method]);
        assert_eq!(
            rows,
            vec![
                row(Some(1), None),
                row(Some(1), Some("dns.nxdomain")),
                row(Some(1), Some("tls.reset")),
                row(Some(2), None)
            ]
        );
    }
}
