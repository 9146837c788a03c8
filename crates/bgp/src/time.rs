//! Instants in BGP data: whole seconds since the Unix epoch, as MRT headers give them, printed as
//! RFC 3339 UTC (`2008-02-24T18:47:57Z`).

use serde::{Serialize, Serializer};
use std::fmt;

/// Seconds since 1970-01-01T00:00:00Z. MRT's extended (microsecond) timestamps are cut to the
/// second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub i64);

impl Time {
    /// Seconds since the epoch.
    pub fn seconds(self) -> i64 {
        self.0
    }

    /// Parses `2008-02-24T18:47:57Z` (RFC 3339; a space instead of the `T`, and no zone, are
    /// taken as UTC too, as in CSV exports).
    pub fn parse(text: &str) -> Option<Time> {
        let text = text.trim();
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
            return Some(Time(t.timestamp()));
        }
        let text = text.trim_end_matches('Z').replace('T', " ");
        chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|t| Time(t.and_utc().timestamp()))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%SZ")),
            None => write!(f, "@{}", self.0),
        }
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `3h02m05s`, `4m00s`, `12s`: a duration for people.
pub(crate) struct Span(pub(crate) i64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.max(0);
        let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
        if h > 0 {
            write!(f, "{h}h{m:02}m{s:02}s")
        } else if m > 0 {
            write!(f, "{m}m{s:02}s")
        } else {
            write!(f, "{s}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_parses_utc() {
        let t = Time(1_203_878_877);
        assert_eq!(t.to_string(), "2008-02-24T18:47:57Z");
        assert_eq!(Time::parse("2008-02-24T18:47:57Z"), Some(t));
        assert_eq!(Time::parse("2008-02-24 18:47:57"), Some(t));
        assert_eq!(Time::parse("yesterday"), None);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2008-02-24T18:47:57Z\"");
        assert_eq!(Span(7_805).to_string(), "2h10m05s");
        assert_eq!(Span(59).to_string(), "59s");
    }
}
