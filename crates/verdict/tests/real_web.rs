//! The 25 real Web Connectivity measurements in `testdata/ooni/real_measurements_combined.jsonl`
//! (2016–2025, probes v0.0.1 to v0.5.28): our recomputed `ooni_blocking`/`accessible` equal the
//! probe's own `blocking`/`accessible`, except the cases in [`WHERE_THE_PROBE_WAS_WRONG`], argued
//! in `tests/README.md` ("Real Web Connectivity measurements").

use censorwatch_model::{Measurement, OoniBlocking, Status};
use censorwatch_verdict::Analyzer;
use std::path::Path;

/// (input, test_version, our ooni_blocking, our accessible, our status).
type Argued = (&'static str, &'static str, Option<OoniBlocking>, Option<bool>, Status);

const WHERE_THE_PROBE_WAS_WRONG: &[Argued] = &[
    (
        "http://www.nmrc.org/",
        "0.0.1",
        Some(OoniBlocking::False),
        Some(false),
        Status::Down,
    ),
    (
        "https://yooz.ir/",
        "0.4.1",
        Some(OoniBlocking::False),
        Some(false),
        Status::Down,
    ),
    (
        "https://8.8.4.4/dns-query?dns=q80BAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB",
        "0.5.28",
        Some(OoniBlocking::False),
        Some(true),
        Status::Ok,
    ),
    (
        "http://dns.google",
        "0.5.26",
        Some(OoniBlocking::False),
        Some(false),
        Status::Down,
    ),
    (
        "https://www.youtube.com/",
        "0.5.26",
        Some(OoniBlocking::False),
        Some(true),
        Status::Ok,
    ),
];

#[test]
fn real_web_connectivity_matches_the_probes_own_reading_or_is_argued() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni/real_measurements_combined.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let analyzer = Analyzer::with_builtin_fingerprints();
    let (mut agree, mut argued, mut problems) = (0, 0, Vec::new());
    for line in text.lines() {
        let m = Measurement::from_slice(line.as_bytes()).unwrap();
        let Some(keys) = m.web_connectivity().unwrap() else {
            continue;
        };
        let v = analyzer.verdict(&m).unwrap();
        let input = m.input_str().unwrap_or("");
        let version = m.test_version.as_deref().unwrap_or("");
        let ours = (v.ooni_blocking, v.accessible);
        match WHERE_THE_PROBE_WAS_WRONG
            .iter()
            .find(|(i, tv, ..)| *i == input && *tv == version)
        {
            // Several measurements share an input; those where the probe agrees count as agreeing.
            Some(_) if ours == (keys.blocking, keys.accessible) => agree += 1,
            Some((_, _, b, a, status)) => {
                if ours != (*b, *a) || v.status != *status {
                    problems.push(format!(
                        "{input} {version}: ours {ours:?} {}, argued {b:?} {a:?} {status}",
                        v.status
                    ));
                }
                argued += 1;
            }
            None if ours == (keys.blocking, keys.accessible) => agree += 1,
            None => problems.push(format!(
                "{input} {version}: ours {ours:?}, probe {:?} — {:?}",
                (keys.blocking, keys.accessible),
                v.reasons
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!((agree, argued), (19, 6), "19 agree, 6 argued (youtube 0.5.26 twice)");
}
