//! What detection reads from and writes to a store: [`ObservationRow`]s (the few columns of a
//! stored measurement the detector needs, in time order) and [`StoredDetection`]s (blocking
//! events and outages, kept as JSON beside the columns queries filter on).
//!
//! The store does not know the detector's types (`censorwatch-detect` sits beside this crate,
//! not below it): callers serialize an event or outage into [`StoredDetection::body`] and fill
//! the filter columns from it.

use crate::StoreError;
use censorwatch_model::{Method, Status};

/// Largest page of detections one query returns.
pub const MAX_DETECTIONS: u32 = 1000;

/// Which kind of detection a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DetectionKind {
    /// A blocking event (one platform in one country).
    Event,
    /// A network shutdown (one country, some of its networks).
    Outage,
}

impl DetectionKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectionKind::Event => "event",
            DetectionKind::Outage => "outage",
        }
    }

    /// Parses [`DetectionKind::as_str`]'s output.
    pub fn parse(text: &str) -> Option<DetectionKind> {
        match text {
            "event" => Some(DetectionKind::Event),
            "outage" => Some(DetectionKind::Outage),
            _ => None,
        }
    }
}

/// One stored event or outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDetection {
    /// Event or outage.
    pub kind: DetectionKind,
    /// Its id (unique per kind).
    pub id: String,
    /// Its country.
    pub cc: String,
    /// The label domain of an event's platform (`x.com`); `""` for an outage.
    pub domain: String,
    /// An event's platform (`twitter`); `""` for an outage.
    pub platform: String,
    /// Start, Unix seconds.
    pub start: i64,
    /// End, Unix seconds; `None` while it lasts.
    pub end: Option<i64>,
    /// When it was last computed, Unix seconds.
    pub updated: i64,
    /// The whole event or outage as JSON: the source of truth when reading.
    pub body: String,
}

/// Filters for [`crate::Store::detections`]; `None` means "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionQuery {
    /// Events or outages.
    pub kind: DetectionKind,
    /// Country code.
    pub cc: Option<String>,
    /// Matches [`StoredDetection::domain`] or [`StoredDetection::platform`] (so `x.com` and
    /// `twitter` both find the twitter event; a caller that knows `twitter.com` belongs to it
    /// passes the platform in [`DetectionQuery::platform`]).
    pub domain: Option<String>,
    /// Also matches when [`StoredDetection::platform`] equals this (or'ed with `domain`).
    pub platform: Option<String>,
    /// Only those still lasting at or after this time (end unknown or ≥ it), Unix seconds.
    pub since: Option<i64>,
    /// Only those still lasting (no end).
    pub open_only: bool,
    /// At most this many, 1..=[`MAX_DETECTIONS`] (0 means all up to the maximum).
    pub limit: u32,
}

impl DetectionQuery {
    /// Every detection of `kind`, up to the maximum.
    pub fn all(kind: DetectionKind) -> DetectionQuery {
        DetectionQuery {
            kind,
            cc: None,
            domain: None,
            platform: None,
            since: None,
            open_only: false,
            limit: 0,
        }
    }

    /// The number of rows to return.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => MAX_DETECTIONS,
            n => n.min(MAX_DETECTIONS),
        }
    }

    /// Whether `d` passes the filters (the reference the backends' SQL follows).
    pub fn matches(&self, d: &StoredDetection) -> bool {
        let by_name = match (&self.domain, &self.platform) {
            (None, None) => true,
            (domain, platform) => {
                domain.as_deref().is_some_and(|x| x == d.domain || x == d.platform)
                    || platform.as_deref().is_some_and(|p| p == d.platform)
            }
        };
        d.kind == self.kind
            && self.cc.as_deref().is_none_or(|cc| cc == d.cc)
            && by_name
            && self.since.is_none_or(|s| d.end.is_none_or(|e| e >= s))
            && (!self.open_only || d.end.is_none())
    }
}

/// The columns of a stored measurement the detector reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationRow {
    /// The measurement's id.
    pub id: String,
    /// `measurement_start_time`, Unix seconds.
    pub start_time: i64,
    /// The host of its input URL (measurements without one are not returned).
    pub domain: String,
    /// Its country.
    pub probe_cc: String,
    /// Its network.
    pub probe_asn: u32,
    /// The verdict's status.
    pub status: Status,
    /// The verdict's method.
    pub method: Option<Method>,
}

/// Where a page of [`crate::Store::observations`] ends: (start time, id) of its last row.
pub type ObservationCursor = (i64, String);

/// Parses a stored status name.
pub(crate) fn parse_status(id: &str, text: &str) -> Result<Status, StoreError> {
    match text {
        "ok" => Ok(Status::Ok),
        "blocked" => Ok(Status::Blocked),
        "down" => Ok(Status::Down),
        "inconclusive" => Ok(Status::Inconclusive),
        other => Err(StoreError::Corrupt {
            id: id.to_owned(),
            message: format!("its status {other:?} is not one censorwatch writes"),
        }),
    }
}

/// Parses a stored method name.
pub(crate) fn parse_method(id: &str, text: Option<&str>) -> Result<Option<Method>, StoreError> {
    let Some(text) = text else {
        return Ok(None);
    };
    Method::ALL
        .iter()
        .copied()
        .find(|m| m.as_str() == text)
        .map(Some)
        .ok_or_else(|| StoreError::Corrupt {
            id: id.to_owned(),
            message: format!("its method {text:?} is not one censorwatch writes"),
        })
}

/// The error of a store that keeps no detections.
pub(crate) fn no_detections() -> StoreError {
    StoreError::BadQuery("this store keeps no detection results (events and outages)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(cc: &str, domain: &str, platform: &str, end: Option<i64>) -> StoredDetection {
        StoredDetection {
            kind: DetectionKind::Event,
            id: format!("{cc}-{platform}-1"),
            cc: cc.into(),
            domain: domain.into(),
            platform: platform.into(),
            start: 100,
            end,
            updated: 1,
            body: "{}".into(),
        }
    }

    #[test]
    fn the_reference_filters() {
        let open = d("PK", "x.com", "twitter", None);
        let closed = d("PK", "youtube.com", "youtube", Some(200));
        let mut q = DetectionQuery::all(DetectionKind::Event);
        assert!(q.matches(&open) && q.matches(&closed));
        q.domain = Some("twitter".into());
        assert!(q.matches(&open) && !q.matches(&closed));
        q.domain = Some("twitter.com".into());
        assert!(!q.matches(&open));
        q.platform = Some("twitter".into());
        assert!(q.matches(&open));
        let mut q = DetectionQuery::all(DetectionKind::Event);
        q.since = Some(201);
        assert!(q.matches(&open) && !q.matches(&closed));
        q.since = Some(200);
        assert!(q.matches(&closed));
        q.open_only = true;
        assert!(!q.matches(&closed));
        q.cc = Some("IR".into());
        assert!(!q.matches(&open));
        assert!(!DetectionQuery::all(DetectionKind::Outage).matches(&open));
        assert_eq!(DetectionKind::parse("outage"), Some(DetectionKind::Outage));
        assert_eq!(parse_method("x", Some("tls.reset")).unwrap(), Some(Method::TlsReset));
        assert!(parse_method("x", Some("tls.bogus")).is_err());
        assert!(parse_status("x", "maybe").is_err());
    }
}
