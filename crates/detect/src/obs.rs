//! The detector's inputs: one [`Observation`] per judged measurement and one [`SignalSample`] per
//! reading of an outage signal. Both are plain values the caller builds from wherever it keeps
//! measurements; nothing here knows about storage or the OONI format.

use censorwatch_model::verdict::{Method, Status};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// An ISO 3166-1 alpha-2 country code (`probe_cc`), two ASCII capital letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cc([u8; 2]);

impl Cc {
    /// Parses two ASCII letters (either case); anything else is `None`.
    pub fn new(text: &str) -> Option<Cc> {
        match text.as_bytes() {
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Cc([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// From two ASCII capital letters (not checked; for the simulator's made-up codes).
    pub(crate) const fn from_letters(a: u8, b: u8) -> Cc {
        Cc([a, b])
    }

    /// The code as text, e.g. `"PK"`.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Cc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Cc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Cc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cc, D::Error> {
        let text = String::deserialize(d)?;
        Cc::new(&text).ok_or_else(|| serde::de::Error::custom(format!("not a country code: {text:?}")))
    }
}

/// One judged measurement, reduced to what detection needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// When the measurement was taken (`measurement_start_time`), Unix seconds.
    pub time: i64,
    /// The measured host name, e.g. `"x.com"`.
    pub domain: Arc<str>,
    /// The probe's country.
    #[serde(rename = "probe_cc")]
    pub cc: Cc,
    /// The probe's network.
    #[serde(rename = "probe_asn")]
    pub asn: u32,
    /// The verdict's status. `inconclusive` and `down` are counted but say nothing about
    /// blocking, so they stay out of the blocked share.
    pub status: Status,
    /// The verdict's method, for `blocked`.
    pub method: Option<Method>,
    /// The measurement's id (`measurement_uid` or report id), when the caller has one. Only the
    /// earliest blocked measurement of each bin keeps it, to name an event's first evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Arc<str>>,
}

/// Which outage signal a [`SignalSample`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// The number of the network's /24 blocks visible in BGP. A level: a bin's value is the mean
    /// of its samples, and a bin without samples is unknown, not zero.
    Bgp,
    /// How many measurements the network's probes took. A count: a bin's value is the sum, and a
    /// bin without any is zero. Counted from [`Observation`]s; samples add to it.
    ProbeVolume,
    /// How many of the network's addresses answer when probed from the control servers (active
    /// probing, like IODA's). A level, like [`SignalKind::Bgp`].
    ControlReachability,
}

impl SignalKind {
    /// Every kind.
    pub const ALL: [SignalKind; 3] = [
        SignalKind::Bgp,
        SignalKind::ProbeVolume,
        SignalKind::ControlReachability,
    ];

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Bgp => "bgp",
            SignalKind::ProbeVolume => "probe_volume",
            SignalKind::ControlReachability => "control_reachability",
        }
    }

    /// Whether a bin's value is a sum of samples (a count) rather than their mean (a level).
    pub fn is_count(self) -> bool {
        self == SignalKind::ProbeVolume
    }

    pub(crate) fn index(self) -> usize {
        match self {
            SignalKind::Bgp => 0,
            SignalKind::ProbeVolume => 1,
            SignalKind::ControlReachability => 2,
        }
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reading of an outage signal for one network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SignalSample {
    /// When it was read, Unix seconds.
    pub time: i64,
    /// The network's country.
    pub cc: Cc,
    /// The network.
    pub asn: u32,
    /// What was read.
    pub kind: SignalKind,
    /// The reading (see [`SignalKind`] for the unit).
    pub value: f64,
}

/// One time series of blocking evidence: a domain measured from one network of one country.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    /// The measured domain.
    pub domain: Arc<str>,
    /// The probe's country.
    pub cc: Cc,
    /// The probe's network.
    pub asn: u32,
}

impl SeriesKey {
    /// The series an observation belongs to.
    pub fn of(obs: &Observation) -> SeriesKey {
        SeriesKey {
            domain: obs.domain.clone(),
            cc: obs.cc,
            asn: obs.asn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes() {
        assert_eq!(Cc::new("pk").unwrap().as_str(), "PK");
        for bad in ["", "P", "PAK", "P1", "ü1"] {
            assert!(Cc::new(bad).is_none(), "{bad}");
        }
        let cc: Cc = serde_json::from_str("\"ir\"").unwrap();
        assert_eq!(serde_json::to_string(&cc).unwrap(), "\"IR\"");
        assert!(serde_json::from_str::<Cc>("\"IRN\"").is_err());
    }

    #[test]
    fn observation_json_uses_ooni_names() {
        let o: Observation = serde_json::from_str(
            r#"{"time": 1, "domain": "x.com", "probe_cc": "PK", "probe_asn": 17557, "status": "blocked", "method": "tls.reset"}"#,
        )
        .unwrap();
        assert_eq!(o.asn, 17557);
        assert_eq!(o.method, Some(Method::TlsReset));
        assert_eq!(SeriesKey::of(&o).asn, 17557);
        assert!(SignalKind::ProbeVolume.is_count() && !SignalKind::Bgp.is_count());
        assert_eq!(SignalKind::ALL.map(|k| k.index()), [0, 1, 2]);
    }
}
