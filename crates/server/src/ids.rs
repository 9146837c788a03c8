//! Report ids and measurement uids in OONI's shape:
//! `<YYYYMMDDTHHMMSSZ>_<test name without _>_<CC>_<ASN number>_n1_<16 letters or digits>`,
//! e.g. `20240217T093155Z_webconnectivity_PK_59257_n1_Ukv1uRt9GZcoX2jT` (OONI's backend builds
//! report ids this way in `generate_report_id`; `n1` is the collector number).
//!
//! Report ids opened with `POST /report` get a random tail. Measurement uids assigned by the
//! collector get a tail derived from a hash of the *scrubbed* measurement and a timestamp taken
//! from the measurement's own start time, so the same measurement submitted twice gets the same
//! uid and is stored once. The hash covers only scrubbed bytes, so a uid reveals nothing about
//! the probe's IP.

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of the random (or hash-derived) tail.
pub const TAIL_LEN: usize = 16;

/// The collector number written as `n1`.
pub const COLLECTOR: &str = "n1";

fn tail_from(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(TAIL_LEN)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

fn random_tail() -> String {
    let mut bytes = [0u8; TAIL_LEN];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness (should not happen on Linux): fall back to a hash of the clock and a
        // counter, still unique within this process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut h = Sha256::new();
        h.update(now.to_le_bytes());
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        bytes.copy_from_slice(&h.finalize()[..TAIL_LEN]);
    }
    tail_from(&bytes)
}

/// `seconds` (Unix, UTC) as `YYYYMMDDTHHMMSSZ`.
pub fn compact_time(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// The current time as Unix seconds.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `web_connectivity` → `webconnectivity`.
pub fn compact_test_name(test_name: &str) -> String {
    test_name.replace('_', "")
}

fn build(seconds: i64, test_name: &str, cc: &str, asn: u32, tail: &str) -> String {
    format!(
        "{}_{}_{cc}_{asn}_{COLLECTOR}_{tail}",
        compact_time(seconds),
        compact_test_name(test_name)
    )
}

/// A new report id with a random tail, stamped now.
pub fn new_report_id(test_name: &str, cc: &str, asn: u32) -> String {
    build(now_seconds(), test_name, cc, asn, &random_tail())
}

/// A deterministic id for a measurement: `seconds` is its start time, `purpose` separates the
/// uid from a report id derived from the same bytes, `scrubbed` is its scrubbed JSON.
pub fn derived_id(purpose: &str, seconds: i64, test_name: &str, cc: &str, asn: u32, scrubbed: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"censorwatch/");
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(scrubbed);
    build(seconds, test_name, cc, asn, &tail_from(&h.finalize()))
}

/// The parts of a report id in the shape this module issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportId {
    /// Test name without underscores.
    pub compact_test_name: String,
    /// Country code.
    pub probe_cc: String,
    /// ASN number.
    pub probe_asn: u32,
}

impl ReportId {
    /// Parses a report id; `None` unless it has the shape
    /// `YYYYMMDDTHHMMSSZ_testname_CC_ASN_nN_tail`.
    pub fn parse(id: &str) -> Option<ReportId> {
        let parts: Vec<&str> = id.split('_').collect();
        let [ts, tn, cc, asn, collector, tail] = parts.as_slice() else {
            return None;
        };
        let ts_ok = ts.len() == 16
            && ts.bytes().enumerate().all(|(i, b)| match i {
                8 => b == b'T',
                15 => b == b'Z',
                _ => b.is_ascii_digit(),
            });
        let tn_ok = (1..=30).contains(&tn.len()) && tn.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let cc_ok = cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase());
        let asn_ok = !asn.is_empty() && asn.len() <= 10 && asn.bytes().all(|b| b.is_ascii_digit());
        let collector_ok =
            collector.len() >= 2 && collector.starts_with('n') && collector[1..].bytes().all(|b| b.is_ascii_digit());
        let tail_ok = (1..=64).contains(&tail.len()) && tail.bytes().all(|b| b.is_ascii_alphanumeric());
        if !(ts_ok && tn_ok && cc_ok && asn_ok && collector_ok && tail_ok) {
            return None;
        }
        Some(ReportId {
            compact_test_name: (*tn).to_owned(),
            probe_cc: (*cc).to_owned(),
            probe_asn: asn.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = new_report_id("web_connectivity", "PK", 59257);
        let parts: Vec<&str> = id.split('_').collect();
        assert_eq!(parts.len(), 6, "{id}");
        assert_eq!(&parts[1..5], ["webconnectivity", "PK", "59257", "n1"]);
        assert_eq!(parts[5].len(), TAIL_LEN);
        assert_ne!(id, new_report_id("web_connectivity", "PK", 59257));
        assert_eq!(
            ReportId::parse(&id),
            Some(ReportId {
                compact_test_name: "webconnectivity".into(),
                probe_cc: "PK".into(),
                probe_asn: 59257
            })
        );
        let uid = derived_id("uid", 1708162315, "web_connectivity", "PK", 59257, b"{}");
        assert!(
            uid.starts_with("20240217T093155Z_webconnectivity_PK_59257_n1_"),
            "{uid}"
        );
        assert_eq!(
            uid,
            derived_id("uid", 1708162315, "web_connectivity", "PK", 59257, b"{}")
        );
        assert_ne!(
            uid,
            derived_id("report", 1708162315, "web_connectivity", "PK", 59257, b"{}")
        );
        for bad in [
            "",
            "x",
            "nonexistent",
            "20240217T093155Z_web_connectivity_PK_1_n1_abc",
            "20240217T093155Z_wc_pk_1_n1_abc",
            "2024021T093155Z_wc_PK_1_n1_abc",
            "20240217T093155Z_wc_PK_1_n1_a'b",
        ] {
            assert_eq!(ReportId::parse(bad), None, "{bad}");
        }
    }
}
