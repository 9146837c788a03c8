//! Measurement queries: filters, newest-first order, and opaque cursors for paging.

use crate::StoreError;
use crate::record::Record;
use base64::Engine as _;
use censorwatch_model::{Method, Status};

/// Largest page a query returns.
pub const MAX_LIMIT: u32 = 1000;

/// Filters for [`crate::Store::query`]; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeasurementQuery {
    /// Country code.
    pub probe_cc: Option<String>,
    /// ASN number.
    pub probe_asn: Option<u32>,
    /// Domain (host of the input URL).
    pub domain: Option<String>,
    /// Start time ≥ this (Unix seconds).
    pub since: Option<i64>,
    /// Start time < this (Unix seconds).
    pub until: Option<i64>,
    /// Verdict status.
    pub status: Option<Status>,
    /// Verdict method.
    pub method: Option<Method>,
    /// Test name.
    pub test_name: Option<String>,
    /// Page size, 1..=[`MAX_LIMIT`] (0 means the default, 100).
    pub limit: u32,
    /// Where the previous page ended ([`Page::next`]).
    pub cursor: Option<Cursor>,
}

impl MeasurementQuery {
    /// The page size to use.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => 100,
            n => n.min(MAX_LIMIT),
        }
    }
}

/// A position in the newest-first order: (start time, id) of the last record of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Start time of the last record returned.
    pub start_time: i64,
    /// Id of the last record returned.
    pub id: String,
}

impl Cursor {
    /// The opaque text form used in URLs.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", self.start_time, self.id))
    }

    /// Parses [`Cursor::encode`]'s output.
    pub fn decode(text: &str) -> Result<Cursor, StoreError> {
        let bad = || {
            StoreError::BadQuery(format!(
                "cursor {text:?} is not one this server issued; start from the first page"
            ))
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| bad())?;
        let s = String::from_utf8(bytes).map_err(|_| bad())?;
        let (t, id) = s.split_once(':').ok_or_else(bad)?;
        Ok(Cursor {
            start_time: t.parse().map_err(|_| bad())?,
            id: id.to_owned(),
        })
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records, newest first (raw bytes empty).
    pub results: Vec<Record>,
    /// Cursor for the next page, `None` on the last one.
    pub next: Option<Cursor>,
}

impl Page {
    /// A page of `results` (already cut to the limit); `more` says whether rows follow, in which
    /// case the next page starts after the last result.
    pub fn from_results(results: Vec<Record>, more: bool) -> Page {
        let next = match results.last() {
            Some(last) if more => Some(Cursor {
                start_time: last.meta.start_time,
                id: last.id.clone(),
            }),
            _ => None,
        };
        Page { results, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            start_time: 1708162315,
            id: "sha256:ab:cd".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("!!!").is_err());
        assert!(Cursor::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("nocolon")).is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(MeasurementQuery::default().effective_limit(), 100);
        assert_eq!(
            MeasurementQuery {
                limit: 5000,
                ..Default::default()
            }
            .effective_limit(),
            MAX_LIMIT
        );
    }
}
