//! What is stored per measurement: its id, the metadata queries filter on, the verdict, and the
//! raw bytes exactly as received.

use censorwatch_model::{Measurement, Verdict};
use sha2::{Digest, Sha256};

/// Prefix of ids derived from content (measurements without an OONI `measurement_uid`).
pub const CONTENT_ID_PREFIX: &str = "sha256:";

/// The columns queries filter and aggregate on.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordMeta {
    /// `measurement_start_time` as Unix seconds (UTC); 0 when missing or unreadable.
    pub start_time: i64,
    /// Two-letter country, `"ZZ"` when unknown.
    pub probe_cc: String,
    /// ASN number, 0 when unknown.
    pub probe_asn: u32,
    /// Network name, `""` when unknown.
    pub probe_network_name: String,
    /// Test name.
    pub test_name: String,
    /// First input (usually the URL), if any.
    pub input: Option<String>,
    /// Host of the input URL, lowercased and IDNA-encoded, if any.
    pub domain: Option<String>,
    /// Report id, if any.
    pub report_id: Option<String>,
}

/// One stored measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// OONI `measurement_uid`, else `sha256:<hex of the raw bytes>`.
    pub id: String,
    /// Query columns.
    pub meta: RecordMeta,
    /// censorwatch's verdict.
    pub verdict: Verdict,
    /// The measurement's bytes as received (empty when a query did not load them).
    pub raw: Vec<u8>,
    /// `raw` already compressed by [`crate::compress::compress`], when the caller did it (ingest
    /// compresses on its worker threads); backends compress `raw` themselves when this is `None`.
    /// Never read back from a store.
    pub raw_zstd: Option<Vec<u8>>,
}

/// The id of a measurement: its `measurement_uid` when it has a non-empty one, else a hash of its
/// exact bytes (so the same line ingested twice has the same id).
pub fn measurement_id(raw: &[u8], measurement: &Measurement) -> String {
    match measurement.measurement_uid.as_deref().map(str::trim) {
        Some(uid) if !uid.is_empty() => uid.to_owned(),
        _ => format!("{CONTENT_ID_PREFIX}{}", hex::encode(Sha256::digest(raw))),
    }
}

/// Parses OONI's `"YYYY-MM-DD HH:MM:SS"` (UTC) into Unix seconds.
pub fn parse_ooni_time(text: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    Some(t.and_utc().timestamp())
}

/// Formats Unix seconds as OONI's `"YYYY-MM-DD HH:MM:SS"`.
pub fn format_ooni_time(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `"AS1234"` → 1234; anything else → 0.
pub fn parse_asn(text: &str) -> u32 {
    text.trim()
        .strip_prefix("AS")
        .or_else(|| text.trim().strip_prefix("as"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl RecordMeta {
    /// The metadata of a parsed measurement.
    pub fn of(m: &Measurement) -> RecordMeta {
        let non_empty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        RecordMeta {
            start_time: m
                .measurement_start_time
                .as_deref()
                .or(m.test_start_time.as_deref())
                .and_then(parse_ooni_time)
                .unwrap_or(0),
            probe_cc: non_empty(&m.probe_cc)
                .map(|c| c.to_ascii_uppercase())
                .unwrap_or_else(|| "ZZ".to_owned()),
            probe_asn: m.probe_asn.as_deref().map(parse_asn).unwrap_or(0),
            probe_network_name: non_empty(&m.probe_network_name).unwrap_or_default(),
            test_name: m.test_name().to_owned(),
            input: m.input_str().map(str::to_owned),
            domain: m.domain(),
            report_id: non_empty(&m.report_id),
        }
    }
}

impl Record {
    /// A record for `raw` (the exact bytes received), its parse and its verdict.
    pub fn new(raw: &[u8], measurement: &Measurement, verdict: Verdict) -> Record {
        Record {
            id: measurement_id(raw, measurement),
            meta: RecordMeta::of(measurement),
            verdict,
            raw: raw.to_vec(),
            raw_zstd: None,
        }
    }

    /// This record with [`Record::raw_zstd`] filled in (compressed on the calling thread).
    pub fn compressed(mut self) -> std::io::Result<Record> {
        if self.raw_zstd.is_none() {
            self.raw_zstd = Some(crate::compress::compress(&self.raw)?);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_prefer_the_uid_and_hash_otherwise() {
        let with_uid = br#"{"measurement_uid": "20240217T000000Z_webconnectivity_PK_59257_n1_x"}"#;
        let m = Measurement::from_slice(with_uid).unwrap();
        assert_eq!(
            measurement_id(with_uid, &m),
            "20240217T000000Z_webconnectivity_PK_59257_n1_x"
        );
        let without = br#"{"measurement_uid": "", "report_id": "r"}"#;
        let m = Measurement::from_slice(without).unwrap();
        let id = measurement_id(without, &m);
        assert!(
            id.starts_with(CONTENT_ID_PREFIX) && id.len() == CONTENT_ID_PREFIX.len() + 64,
            "{id}"
        );
        assert_eq!(id, measurement_id(without, &m), "stable");
        let other = br#"{"measurement_uid": "", "report_id": "s"}"#;
        assert_ne!(id, measurement_id(other, &Measurement::from_slice(other).unwrap()));
    }

    #[test]
    fn metadata() {
        let raw = br#"{"measurement_start_time": "2024-02-17 09:31:55", "probe_cc": "pk", "probe_asn": "AS59257",
                      "test_name": "web_connectivity", "input": "https://X.com/home", "report_id": ""}"#;
        let meta = RecordMeta::of(&Measurement::from_slice(raw).unwrap());
        assert_eq!(meta.start_time, 1708162315);
        assert_eq!(format_ooni_time(meta.start_time), "2024-02-17 09:31:55");
        assert_eq!((meta.probe_cc.as_str(), meta.probe_asn), ("PK", 59257));
        assert_eq!(meta.domain.as_deref(), Some("x.com"));
        assert_eq!(meta.report_id, None);
        let empty = RecordMeta::of(&Measurement::from_slice(b"{}").unwrap());
        assert_eq!(
            (empty.start_time, empty.probe_cc.as_str(), empty.probe_asn),
            (0, "ZZ", 0)
        );
        assert_eq!(parse_asn("AS0"), 0);
        assert_eq!(parse_asn("bogus"), 0);
    }
}
