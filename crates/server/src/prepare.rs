//! From submitted bytes to a storable [`Record`]: parse (through the lossless model), validate
//! the fields OONI's collector validates, scrub the probe's IP, assign the measurement uid, and
//! ask `censorwatch-verdict` for the verdict. Pure and synchronous: no I/O.
//!
//! # Scrubbing
//! `probe_ip`, when present, becomes `"127.0.0.1"`, and every other occurrence of the same IP
//! string anywhere in the JSON text (test keys, URLs, `ip:port` addresses) becomes
//! `"[scrubbed]"`, as OONI's probe-side scrubber does. An occurrence counts only when it is not
//! part of a longer address (`1.2.3.4` does not touch `11.2.3.45`). Only a `probe_ip` that is a
//! valid IP address is searched for elsewhere. The stored bytes are the model's re-serialization
//! of the scrubbed measurement.

use crate::ids;
use censorwatch_model::{Measurement, Verdict};
use censorwatch_store::Record;
use censorwatch_store::record::{RecordMeta, parse_asn};
use censorwatch_verdict::Analyzer;
use std::net::IpAddr;

/// What replaces `probe_ip` itself.
pub const SCRUBBED_PROBE_IP: &str = "127.0.0.1";
/// What replaces other occurrences of the probe's IP.
pub const SCRUBBED: &str = "[scrubbed]";

/// How the submission relates to a report.
#[derive(Debug, Clone)]
pub enum ReportBinding {
    /// Keep whatever `report_id` the measurement has (native batch).
    Keep,
    /// Submitted to `POST /report/{id}`: the measurement must agree with the report's country,
    /// ASN and test, and gets the report's id when it has none.
    Report(String, ids::ReportId),
    /// `POST /api/v1/submit_measurement`: a measurement without a `report_id` gets one derived
    /// from its content.
    Assign,
}

/// A submission ready to be committed.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The record to store (scrubbed raw bytes, metadata, verdict).
    pub record: Record,
    /// Its report id, if any.
    pub report_id: Option<String>,
}

/// Checks `probe_cc`: two capital letters.
pub fn validate_cc(cc: &str) -> Result<(), String> {
    if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "probe_cc {cc:?} is invalid: it must be two capital letters (ISO 3166-1 alpha-2, \"ZZ\" when unknown)"
        ))
    }
}

/// Checks `probe_asn`: `AS` and a number without leading zeros, 3 to 12 characters, that fits
/// 32 bits. Returns the number.
pub fn validate_asn(asn: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "probe_asn {asn:?} is invalid: it must be \"AS\" followed by the AS number without leading \
             zeros, e.g. \"AS59257\" (\"AS0\" when unknown)"
        )
    };
    let digits = asn.strip_prefix("AS").ok_or_else(bad)?;
    if !(3..=12).contains(&asn.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return Err(bad());
    }
    digits.parse::<u32>().map_err(|_| bad())
}

/// Checks `test_name`: 1 to 30 lowercase letters, digits or underscores, starting with a letter.
pub fn validate_test_name(name: &str) -> Result<(), String> {
    let ok = (1..=30).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "test_name {name:?} is invalid: it must be 1 to 30 lowercase letters, digits or underscores, \
             e.g. \"web_connectivity\""
        ))
    }
}

fn required<'a>(value: &'a Option<String>, key: &str) -> Result<&'a str, String> {
    value
        .as_deref()
        .ok_or_else(|| format!("{key} is missing; every submitted measurement needs probe_cc, probe_asn and test_name"))
}

fn ip_char(b: u8, v6: bool) -> bool {
    b.is_ascii_digit() || b == b'.' || (v6 && (b.is_ascii_hexdigit() || b == b':'))
}

/// Replaces every occurrence of `ip` in `text` that is not part of a longer address with
/// [`SCRUBBED`]. Returns `None` when there was none.
pub fn scrub_occurrences(text: &[u8], ip: &str) -> Option<Vec<u8>> {
    let needle = ip.as_bytes();
    if needle.is_empty() {
        return None;
    }
    let v6 = ip.contains(':');
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(pos) = find(&text[from..], needle).map(|p| p + from) {
        let end = pos + needle.len();
        let before_ok = pos == 0 || !ip_char(text[pos - 1], v6);
        let after_ok = end == text.len()
            || !ip_char(text[end], v6)
            || (!v6 && text[end] == b'.' && !text.get(end + 1).is_some_and(u8::is_ascii_digit));
        if before_ok && after_ok {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
            buf.extend_from_slice(&text[copied..pos]);
            buf.extend_from_slice(SCRUBBED.as_bytes());
            copied = end;
            from = end;
        } else {
            from = pos + 1;
        }
    }
    let mut buf = out?;
    buf.extend_from_slice(&text[copied..]);
    Some(buf)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Deepest nesting of arrays and objects accepted, as serde_json's own recursion limit.
pub const MAX_DEPTH: usize = 128;

/// Checks that `json` nests arrays and objects at most [`MAX_DEPTH`] deep. serde_json enforces
/// this for what it parses into values, but not for what it keeps as raw text (the test keys),
/// so it is checked on the text itself: one pass, strings skipped.
pub fn check_depth(json: &[u8]) -> Result<(), String> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "the measurement nests arrays or objects deeper than {MAX_DEPTH} levels (recursion limit); \
                         real measurements never do: check what produced it"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn parse(bytes: &[u8]) -> Result<Measurement, String> {
    let m = Measurement::from_slice(bytes).map_err(|e| match std::str::from_utf8(bytes) {
        Err(u) => format!(
            "the measurement is not valid UTF-8 (at byte {}); OONI measurements are UTF-8 JSON",
            u.valid_up_to()
        ),
        Ok(_) => format!("the measurement is not valid OONI JSON ({e}); send one JSON object in OONI's data format"),
    })?;
    Ok(m)
}

fn to_json(m: &Measurement) -> Result<Vec<u8>, String> {
    serde_json::to_vec(m).map_err(|e| format!("the measurement cannot be re-serialized: {e}"))
}

/// Turns one submitted measurement into a record (see the module docs). An error is a message
/// for a 400 answer.
pub fn prepare(analyzer: &Analyzer, bytes: &[u8], binding: &ReportBinding) -> Result<Prepared, String> {
    check_depth(bytes)?;
    let mut m = parse(bytes)?;
    let cc = required(&m.probe_cc, "probe_cc")?.to_owned();
    validate_cc(&cc)?;
    let asn = validate_asn(required(&m.probe_asn, "probe_asn")?)?;
    let test_name = required(&m.test_name, "test_name")?.to_owned();
    validate_test_name(&test_name)?;

    let existing_report = m
        .report_id
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    match binding {
        ReportBinding::Keep | ReportBinding::Assign => {}
        ReportBinding::Report(id, report) => {
            let id = id.as_str();
            if report.probe_cc != cc
                || report.probe_asn != asn
                || report.compact_test_name != ids::compact_test_name(&test_name)
            {
                return Err(format!(
                    "the measurement (probe_cc {cc}, probe_asn AS{asn}, test_name {test_name}) does not match report {id}; \
                     open a report with this measurement's probe_cc, probe_asn and test_name"
                ));
            }
            match &existing_report {
                Some(r) if r != id => {
                    return Err(format!(
                        "the measurement's report_id {r:?} differs from the report it is submitted to ({id}); \
                         submit it to /report/{r} or fix its report_id"
                    ));
                }
                Some(_) => {}
                None => m.report_id = Some(id.to_owned()),
            }
        }
    }

    // Scrub.
    let probe_ip = m.probe_ip.take();
    let search_ip = probe_ip
        .as_deref()
        .map(str::trim)
        .filter(|ip| ip.parse::<IpAddr>().is_ok() && *ip != SCRUBBED_PROBE_IP)
        .map(str::to_owned);
    if probe_ip.is_some() {
        m.probe_ip = Some(SCRUBBED_PROBE_IP.to_owned());
        m.extra.remove("probe_ip");
    }
    let scrub = |text: Vec<u8>| -> (Vec<u8>, bool) {
        match search_ip.as_deref().and_then(|ip| scrub_occurrences(&text, ip)) {
            Some(scrubbed) => (scrubbed, true),
            None => (text, false),
        }
    };

    // Assign the uid (and, for submit_measurement, the report id) from the scrubbed content.
    let has_uid = m.measurement_uid.as_deref().is_some_and(|u| !u.trim().is_empty());
    let needs_report = matches!(binding, ReportBinding::Assign) && existing_report.is_none();
    if !has_uid || needs_report {
        let (basis, _) = scrub(to_json(&m)?);
        let meta = RecordMeta::of(&m);
        let seconds = if meta.start_time > 0 {
            meta.start_time
        } else {
            ids::now_seconds()
        };
        if needs_report {
            m.report_id = Some(ids::derived_id("report", seconds, &test_name, &cc, asn, &basis));
        }
        if !has_uid {
            m.measurement_uid = Some(ids::derived_id("uid", seconds, &test_name, &cc, asn, &basis));
            m.extra.remove("measurement_uid");
        }
    }

    let (raw, changed) = scrub(to_json(&m)?);
    if changed {
        m = parse(&raw)?;
    }
    let verdict = analyzer
        .verdict(&m)
        .unwrap_or_else(|e| Verdict::inconclusive(format!("the measurement could not be analyzed: {e}")));
    let report_id = m.report_id.clone().filter(|r| !r.is_empty());
    debug_assert!(parse_asn(m.probe_asn.as_deref().unwrap_or("")) == asn);
    Ok(Prepared {
        record: Record::new(&raw, &m, verdict),
        report_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth() {
        assert!(check_depth(b"[[[]]]").is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(check_depth(deep.as_bytes()).is_err());
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(check_depth(ok.as_bytes()).is_ok());
        let in_string = format!("[\"{}\\\"{}\"]", "[".repeat(1000), "{".repeat(1000));
        assert!(check_depth(in_string.as_bytes()).is_ok());
    }

    #[test]
    fn validation() {
        assert!(validate_cc("PK").is_ok());
        for bad in ["pk", "P", "PAK", "P1", "", "ÄB"] {
            assert!(validate_cc(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_asn("AS59257"), Ok(59257));
        assert_eq!(validate_asn("AS0"), Ok(0));
        for bad in [
            "AS",
            "AS01",
            "59257",
            "as1",
            "AS1x",
            "AS12345678901",
            "AS4294967296",
            "AS-1",
        ] {
            assert!(validate_asn(bad).is_err(), "{bad}");
        }
        assert!(validate_test_name("web_connectivity").is_ok());
        for bad in ["", "Web", "_x", "a;drop", &"a".repeat(31)] {
            assert!(validate_test_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scrubbing_respects_address_boundaries() {
        let text = br#"{"a":"1.2.3.4","b":"11.2.3.45","c":"1.2.3.4:443","d":"http://1.2.3.4/x","e":"1.2.3.40","f":"1.2.3.4."}"#;
        let out = String::from_utf8(scrub_occurrences(text, "1.2.3.4").unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"a":"[scrubbed]","b":"11.2.3.45","c":"[scrubbed]:443","d":"http://[scrubbed]/x","e":"1.2.3.40","f":"[scrubbed]."}"#
        );
        assert_eq!(scrub_occurrences(b"nothing", "1.2.3.4"), None);
        let v6 = scrub_occurrences(br#"["2001:db8::1","[2001:db8::1]:443","2001:db8::10"]"#, "2001:db8::1").unwrap();
        assert_eq!(
            String::from_utf8(v6).unwrap(),
            r#"["[scrubbed]","[[scrubbed]]:443","2001:db8::10"]"#
        );
    }

    #[test]
    fn prepare_scrubs_and_assigns() {
        let analyzer = Analyzer::new(censorwatch_verdict::FingerprintDb::empty());
        let raw = br#"{"probe_cc":"PK","probe_asn":"AS59257","test_name":"web_connectivity","probe_ip":"5.6.7.8",
            "measurement_start_time":"2024-02-17 09:31:55","input":"https://x.com/","test_keys":{"client_resolver":"5.6.7.8","x":"15.6.7.89"}}"#;
        let p = prepare(&analyzer, raw, &ReportBinding::Assign).unwrap();
        let text = String::from_utf8(p.record.raw.clone()).unwrap();
        assert!(!text.contains("5.6.7.8\""), "{text}");
        assert!(text.contains(r#""probe_ip":"127.0.0.1""#), "{text}");
        assert!(text.contains("15.6.7.89"), "{text}");
        assert!(
            p.record.id.starts_with("20240217T093155Z_webconnectivity_PK_59257_n1_"),
            "{}",
            p.record.id
        );
        assert!(
            p.report_id
                .as_deref()
                .unwrap()
                .starts_with("20240217T093155Z_webconnectivity_PK_59257_n1_")
        );
        let again = prepare(&analyzer, raw, &ReportBinding::Assign).unwrap();
        assert_eq!(again.record.id, p.record.id, "deterministic");
        assert_eq!(again.record.raw, p.record.raw);
    }
}
