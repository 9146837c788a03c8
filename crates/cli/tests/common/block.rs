//! A known block written as real OONI web_connectivity measurements, for the tests that need
//! detected events (`events`, `evidence bundle EVENT_ID`): two fixtures from testdata/ooni with
//! their ids, times, networks and input rewritten.

use serde_json::Value;
use std::path::Path;

/// 2024-02-16T00:00:00Z.
pub(crate) const T0: i64 = 1_708_041_600;
pub(crate) const HOUR: i64 = 3600;

fn fixture_line(pick: impl Fn(&Value) -> bool) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni/real_measurements_combined.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|m| pick(m))
        .expect("the fixture is in testdata/ooni")
}

fn ooni_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The measurements of a block of www.facebook.com in PK: AS17557 blocked (DNS bogon) from
/// hour 20, AS45595 from hour 26, AS59257 never; four measurements an hour each, 48 hours.
/// Returns the JSONL and the id of the first blocked measurement.
pub(crate) fn block_timeline() -> (String, String) {
    // A DNS-bogon block of www.facebook.com (IR, 2022) and a clean page load (collegehumor).
    let blocked = fixture_line(|m| m["input"] == "https://www.facebook.com/");
    let clean = fixture_line(|m| m["input"] == "http://www.collegehumor.com/");
    let mut lines = String::new();
    let mut first_blocked = None;
    for hour in 0..48 {
        for (asn, from) in [(17557, Some(20)), (45595, Some(26)), (59257, None)] {
            for quarter in 0..4 {
                let t = T0 + hour * HOUR + quarter * 900;
                let is_blocked = from.is_some_and(|f| hour >= f);
                let mut m = if is_blocked { blocked.clone() } else { clean.clone() };
                let uid = format!("20240216T000000Z_webconnectivity_PK_{asn}_n1_h{hour}q{quarter}");
                m["measurement_uid"] = Value::from(uid.clone());
                m["input"] = Value::from("https://www.facebook.com/");
                m["probe_cc"] = Value::from("PK");
                m["probe_asn"] = Value::from(format!("AS{asn}"));
                m["measurement_start_time"] = Value::from(ooni_time(t));
                m["test_start_time"] = Value::from(ooni_time(t));
                if is_blocked && first_blocked.is_none() {
                    first_blocked = Some(uid);
                }
                lines.push_str(&serde_json::to_string(&m).unwrap());
                lines.push('\n');
            }
        }
    }
    (lines, first_blocked.unwrap())
}
