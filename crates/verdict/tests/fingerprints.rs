//! Blockpage fingerprints: the shipped OONI set parses with the expected rows, matching agrees with
//! OONI fastpath's expected matches (and every disagreement is one of the documented rule
//! differences, see `tests/README.md`), the Pakistan fingerprints fire, pattern types keep their
//! meaning, and malformed CSV is reported by file and row.

use aho_corasick::{AhoCorasick, MatchKind};
use censorwatch_model::Measurement;
use censorwatch_model::web_connectivity::WebConnectivityTestKeys;
use censorwatch_verdict::fingerprint::{
    BUILTIN_DNS_CSV, BUILTIN_HTTP_CSV, Fingerprint, FingerprintDb, FingerprintError, FingerprintFile,
    FingerprintProblem, Location, PatternType, Scope,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const HEADER: &str = "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn names(fps: &[&Fingerprint]) -> BTreeSet<String> {
    fps.iter().map(|f| f.name.clone()).collect()
}

fn db() -> FingerprintDb {
    FingerprintDb::builtin()
}

// ---------------------------------------------------------------------------------------------
// The shipped set
// ---------------------------------------------------------------------------------------------

fn tally<'a>(items: impl Iterator<Item = String> + 'a) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

fn expect(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn builtin_set_parses_with_the_expected_rows() {
    let db = db();
    let dns: Vec<&Fingerprint> = db.iter().filter(|f| f.location == Location::Dns).collect();
    let http: Vec<&Fingerprint> = db.iter().filter(|f| f.location != Location::Dns).collect();
    // Counts from ooni/blocking-fingerprints @171641e6 (see the reference notes, "Fingerprint DB").
    assert_eq!(dns.len(), 226);
    assert_eq!(http.len(), 1729);
    assert_eq!(db.len(), 226 + 1729);
    assert!(!db.is_empty());
    assert_eq!(
        tally(http.iter().map(|f| f.location.to_string())),
        expect(&[
            ("body", 1311),
            ("header.location", 402),
            ("header.server", 9),
            ("header.via", 6),
            ("header.x-app-url", 1)
        ])
    );
    assert_eq!(
        tally(http.iter().map(|f| f.scope.to_string())),
        expect(&[
            ("isp", 584),
            ("fp", 475),
            ("nat", 239),
            ("vbw", 163),
            ("prod", 140),
            ("inst", 126),
            ("injb", 1),
            ("prov", 1)
        ])
    );
    assert_eq!(
        tally(http.iter().map(|f| f.pattern_type.to_string())),
        expect(&[("contains", 1414), ("prefix", 275), ("full", 26), ("regexp", 14)])
    );
    assert_eq!(
        tally(dns.iter().map(|f| f.scope.to_string())),
        expect(&[("isp", 125), ("nat", 78), ("prod", 18), ("vbw", 3), ("inst", 2)])
    );
    assert!(dns.iter().all(|f| f.pattern_type == PatternType::Full));
    let ccs = tally(dns.iter().flat_map(|f| f.expected_countries.clone()));
    assert_eq!((ccs["ID"], ccs["RU"], ccs["IN"]), (91, 27, 22));
    // No scope fell through to `Other`.
    assert!(db.iter().all(|f| !matches!(f.scope, Scope::Other(_))));
    assert_eq!(
        db.header_names().collect::<BTreeSet<_>>(),
        BTreeSet::from(["location", "server", "via", "x-app-url"])
    );
}

/// Every field of every row survives parsing: compared with an independent read of the CSVs.
#[test]
fn builtin_rows_round_trip_field_by_field() {
    fn list(s: &str) -> Vec<&str> {
        s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    }
    let db = db();
    let mut fps = db.iter();
    for (text, file) in [(BUILTIN_DNS_CSV, "dns"), (BUILTIN_HTTP_CSV, "http")] {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.unwrap();
            let fp = fps.next().unwrap_or_else(|| panic!("{file} row {} missing", i + 1));
            assert_eq!(fp.name, &rec[0]);
            assert_eq!(fp.scope.as_str(), &rec[1]);
            assert_eq!(fp.other_names, list(&rec[2]));
            assert_eq!(fp.location.to_string(), &rec[3]);
            assert_eq!(fp.pattern_type.as_str(), &rec[4]);
            assert_eq!(fp.pattern, &rec[5], "{}: patterns are kept verbatim", fp.name);
            assert_eq!(fp.confidence_no_fp.to_string(), &rec[6]);
            assert_eq!(fp.expected_countries, list(&rec[7]));
            assert_eq!(fp.source, rec[8].trim());
            assert_eq!(fp.exp_url, rec[9].trim());
            assert_eq!(fp.notes, rec[10].trim());
        }
    }
    assert!(fps.next().is_none());
}

#[test]
fn builtin_is_shared_and_default_is_empty() {
    assert_eq!(FingerprintDb::builtin().len(), FingerprintDb::builtin().len());
    let empty = FingerprintDb::default();
    assert!(empty.is_empty());
    assert!(empty.match_body(b"<html>anything</html>").is_none());
    assert!(empty.match_dns_answer("10.10.34.36").is_none());
    assert!(FingerprintDb::empty().match_header("server", b"x").is_none());
    assert!(format!("{:?}", db()).contains("1311"));
}

// ---------------------------------------------------------------------------------------------
// Measurements: what we match, and what OONI fastpath would
// ---------------------------------------------------------------------------------------------

/// The observations fingerprints apply to, as fastpath reads them.
#[derive(Default)]
struct Observed {
    /// Per DNS answer: (ipv4, hostname, ipv6).
    answers: Vec<(Option<String>, Option<String>, Option<String>)>,
    bodies: Vec<Vec<u8>>,
    /// Per response: (name, decoded value, value was base64).
    headers: Vec<Vec<(String, Vec<u8>, bool)>>,
}

fn observe(keys: &WebConnectivityTestKeys) -> Observed {
    let mut o = Observed::default();
    for q in keys.queries.iter().flatten() {
        for a in q.answers.iter().flatten() {
            o.answers.push((a.ipv4.clone(), a.hostname.clone(), a.ipv6.clone()));
        }
    }
    for tx in keys.requests.iter().flatten() {
        let Some(resp) = &tx.response else { continue };
        if let Some(body) = resp.body.as_ref().and_then(|b| b.bytes()) {
            o.bodies.push(body.into_owned());
        }
        let mut hs = Vec::new();
        let pairs: Vec<(&String, &censorwatch_model::MaybeBinary)> = match (&resp.headers, &resp.headers_list) {
            (Some(map), _) => map.iter().collect(),
            (None, Some(list)) => list.iter().map(|(k, v)| (k, v)).collect(),
            (None, None) => vec![],
        };
        for (k, v) in pairs {
            let b64 = matches!(v, censorwatch_model::MaybeBinary::Encoded(_));
            if let Some(bytes) = v.bytes() {
                hs.push((k.clone(), bytes.into_owned(), b64));
            }
        }
        o.headers.push(hs);
    }
    o
}

/// Every fingerprint name censorwatch matches in the observations.
fn ours(db: &FingerprintDb, o: &Observed) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (v4, host, v6) in &o.answers {
        for a in [v4, host, v6].into_iter().flatten() {
            out.extend(names(&db.match_dns_answer_all(a)));
        }
    }
    for b in &o.bodies {
        out.extend(names(&db.match_body_all(b)));
    }
    for hs in &o.headers {
        for (k, v, _) in hs {
            out.extend(names(&db.match_header_all(k, v)));
        }
    }
    out
}

/// The names of the shipped body fingerprints whose pattern text occurs anywhere in `body`, by a
/// path independent of the matcher under test: one plain overlapping Aho–Corasick search over all
/// body patterns (a per-pattern `memmem` would do the same, but is too slow in debug builds).
fn body_substrings(body: &[u8]) -> BTreeSet<String> {
    static ORACLE: OnceLock<(AhoCorasick, Vec<Vec<String>>)> = OnceLock::new();
    let (ac, names) = ORACLE.get_or_init(|| {
        let mut by_pattern: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in db().iter().filter(|f| f.location == Location::Body) {
            by_pattern.entry(f.pattern.clone()).or_default().push(f.name.clone());
        }
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(by_pattern.keys())
            .unwrap();
        (ac, by_pattern.into_values().collect())
    });
    ac.find_overlapping_iter(body)
        .flat_map(|m| names[m.pattern().as_usize()].iter().cloned())
        .collect()
}

/// OONI fastpath's rules (ooni/backend `fastpath/fastpath/core.py`, `match_fingerprints`), written
/// naively here from their description: DNS answer (ipv4, else hostname, else ipv6) `==` pattern;
/// every body fingerprint is a substring search; headers (names lowercased) are tried for `full`
/// (`==`, never true for a base64 value, which stays a JSON object there) and `prefix` only.
fn fastpath(db: &FingerprintDb, o: &Observed) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (v4, host, v6) in &o.answers {
        let addr = v4
            .as_ref()
            .or(host.as_ref())
            .or(v6.as_ref())
            .cloned()
            .unwrap_or_default();
        out.extend(
            db.iter()
                .filter(|f| f.location == Location::Dns && f.pattern == addr)
                .map(|f| f.name.clone()),
        );
    }
    for b in &o.bodies {
        out.extend(body_substrings(b));
    }
    for hs in &o.headers {
        let lower: BTreeMap<String, (&Vec<u8>, bool)> = hs
            .iter()
            .map(|(k, v, b64)| (k.to_ascii_lowercase(), (v, *b64)))
            .collect();
        for f in db.iter() {
            let Location::Header(name) = &f.location else { continue };
            let Some((v, b64)) = lower.get(name) else { continue };
            let hit = match f.pattern_type {
                PatternType::Full => !b64 && v.as_slice() == f.pattern.as_bytes(),
                PatternType::Prefix => v.starts_with(f.pattern.as_bytes()),
                _ => false,
            };
            if hit {
                out.insert(f.name.clone());
            }
        }
    }
    out
}

fn load(path: &Path) -> Measurement {
    Measurement::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Disagreements with fastpath's expected matches on its own fixtures, each explained in
/// `tests/README.md` ("Fingerprint matching: where we differ from OONI fastpath").
/// (file, names only censorwatch matches, names only fastpath matches)
const FASTPATH_FIXTURE_DIFFERENCES: &[(&str, &[&str], &[&str])] = &[(
    "web_connectivity_b64_hdr.json",
    // Location: http://192.168.22.1/UserCheck/PortalMain?IID=… (base64 in the measurement);
    // `header.location contains /UserCheck/PortalMain?IID=`, a row type fastpath ignores.
    &["cl.prod_checkpoint_urlfilter_forward"],
    &[],
)];

#[test]
fn agrees_with_fastpath_expected_matches() {
    let dir = root().join("testdata/ooni/fastpath");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("_expected_fastpath_verdicts.json")).unwrap()).unwrap();
    let db = db();
    let mut checked = 0;
    for entry in expected.as_array().unwrap() {
        // The explicit match list, or else the fingerprints inside the expected scores.
        let list = match &entry["expected_fingerprint_matches"] {
            serde_json::Value::Null => &entry["expected_fastpath_scores"]["fingerprints"],
            l => l,
        };
        let Some(list) = list.as_array() else { continue };
        let file = entry["file"].as_str().unwrap();
        let m = load(&dir.join(file));
        let keys = m.web_connectivity().unwrap().expect("web_connectivity test keys");
        let got = ours(&db, &observe(&keys));
        let mut want: BTreeSet<String> = list.iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect();
        if let Some((_, only_ours, only_fastpath)) = FASTPATH_FIXTURE_DIFFERENCES.iter().find(|d| d.0 == file) {
            for n in *only_fastpath {
                assert!(want.remove(*n), "{file}: {n} is not in fastpath's list any more");
            }
            for n in *only_ours {
                // The documented reason: a header `contains`/`regexp` row, which fastpath skips.
                let fp = db.iter().find(|f| f.name == *n).unwrap();
                assert!(matches!(fp.location, Location::Header(_)), "{n}");
                assert!(
                    matches!(fp.pattern_type, PatternType::Contains | PatternType::Regexp),
                    "{n}"
                );
                want.insert(n.to_string());
            }
        }
        assert_eq!(got, want, "{file}");
        // The same fixture under fastpath's own rules gives fastpath's list.
        let emulated = fastpath(&db, &observe(&keys));
        let listed: BTreeSet<String> = list.iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect();
        assert_eq!(emulated, listed, "{file}: fastpath emulation");
        checked += 1;
    }
    assert_eq!(checked, 3, "b64_hdr, ir_fp and bug_352 carry fastpath matches");
}

/// fastpath's unit test `test_match_id_fingerprint` asserts a non-empty match on this ID
/// measurement (a redirect to Kominfo's `lamanlabuh.aduankonten.id` blockpage).
#[test]
fn indonesian_redirect_matches_like_fastpath() {
    let m = load(&root().join("testdata/ooni/fastpath/20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json"));
    let keys = m.web_connectivity().unwrap().unwrap();
    let db = db();
    let got = ours(&db, &observe(&keys));
    let fast = fastpath(&db, &observe(&keys));
    assert!(!got.is_empty());
    assert!(got.contains("ooni.id_lamanlabuh_kominfo"), "{got:?}");
    assert_eq!(got, fast, "no rule difference applies to this measurement");
    let id = db.iter().find(|f| f.name == "ooni.id_lamanlabuh_kominfo").unwrap();
    assert!(id.confirms_in("ID"));
}

/// Every web_connectivity fixture we have: every difference between censorwatch's matches and
/// fastpath's rules is one of the documented rule differences (module docs of `fingerprint.rs`).
#[test]
fn every_difference_with_fastpath_rules_is_documented() {
    let db = db();
    let mut measurements: Vec<(String, Measurement)> = Vec::new();
    for sub in [
        "testdata/ooni/fastpath",
        "testdata/ooni/synthetic",
        "testdata/ooni/minipipeline",
    ] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "json") && !p.ends_with("_expected_fastpath_verdicts.json") {
                measurements.push((p.display().to_string(), load(&p)));
            }
        }
    }
    let jsonl = std::fs::read_to_string(root().join("testdata/ooni/real_measurements_combined.jsonl")).unwrap();
    for (i, line) in jsonl.lines().enumerate() {
        measurements.push((
            format!("real_measurements_combined.jsonl:{}", i + 1),
            Measurement::from_slice(line.as_bytes()).unwrap(),
        ));
    }
    let (mut seen, mut differing, mut unique) = (0, BTreeSet::new(), BTreeSet::new());
    for (what, m) in &measurements {
        if m.test_name() != "web_connectivity" {
            continue;
        }
        let Ok(Some(keys)) = m.web_connectivity() else { continue };
        let o = observe(&keys);
        // The JSONL repeats most files of the directories: look at each measurement once.
        let key = format!(
            "{:?} {:?}",
            o.answers,
            o.bodies.iter().map(|b| b.len()).collect::<Vec<_>>()
        );
        if !unique.insert(key) {
            continue;
        }
        seen += 1;
        let got = ours(&db, &o);
        let fast = fastpath(&db, &o);
        for n in got.symmetric_difference(&fast) {
            let fp = db.iter().find(|f| &f.name == n).unwrap();
            let only_ours = got.contains(n);
            let explained = match (&fp.location, fp.pattern_type, only_ours) {
                (Location::Header(_), PatternType::Contains | PatternType::Regexp, true) => true,
                (Location::Header(_), PatternType::Full, true) => o.headers.iter().flatten().any(|(_, _, b64)| *b64),
                (Location::Body, PatternType::Regexp, _) => true,
                (Location::Body, PatternType::Full | PatternType::Prefix, false) => true,
                (Location::Dns, _, true) => true, // normalisation
                _ => false,
            };
            assert!(
                explained,
                "{what}: {n} ({}, {}) only {}",
                fp.location,
                fp.pattern_type,
                if only_ours { "ours" } else { "fastpath" }
            );
            let file = what.rsplit('/').next().unwrap().to_owned();
            differing.insert((file, fp.pattern.clone(), only_ours));
        }
    }
    assert!(seen >= 40, "only {seen} distinct web_connectivity measurements");
    // The fixture-level table of `tests/README.md`: (file, pattern, matched only by censorwatch).
    let documented: BTreeSet<(String, String, bool)> = [
        ("web_connectivity_b64_hdr.json", "/UserCheck/PortalMain?IID="),
        ("cmd_minipipeline_nexa.json", "<meta name=.*twitter:card"),
        ("firefoxcom.json", "<meta name=.*twitter:card"),
        ("issue-2456.json", "<meta name=.*twitter:card"),
        ("8844.json", "\u{FFFD}.*\u{FFFD}"),
    ]
    .into_iter()
    .map(|(f, p)| (f.to_owned(), p.to_owned(), true))
    .collect();
    assert_eq!(differing, documented, "update the table in tests/README.md");
}

// ---------------------------------------------------------------------------------------------
// Pakistan, and the meaning of each pattern type
// ---------------------------------------------------------------------------------------------

#[test]
fn pakistan_dns_nayatel() {
    let db = db();
    let fp = db.match_dns_answer("203.82.48.83").expect("Nayatel Surf Safely");
    assert_eq!(fp.name, "ooni.pk_3");
    assert_eq!((fp.scope.clone(), fp.location.clone()), (Scope::Isp, Location::Dns));
    assert!(fp.confirms_in("PK"));
    assert_eq!(
        db.match_dns_answer("203.82.48.86").map(|f| f.name.as_str()),
        Some("ooni.pk_4")
    );
    // Exact address only.
    assert!(db.match_dns_answer("203.82.48.8").is_none());
    assert!(db.match_dns_answer("203.82.48.830").is_none());
    // Spellings of the same answer.
    assert_eq!(
        db.match_dns_answer(" 203.82.48.83 ").map(|f| f.name.as_str()),
        Some("ooni.pk_3")
    );
    assert_eq!(
        db.match_dns_answer("00d0:0:0::11").map(|f| f.name.as_str()),
        Some("ooni.ir_ipv6_1")
    );
    assert_eq!(
        db.match_dns_answer("Internet-Positif.org.").map(|f| f.name.as_str()),
        Some("ooni.id_44")
    );
}

#[test]
fn pakistan_mobilink_iframe_body() {
    let db = db();
    let body = br#"<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>
<body style="margin: 0px;"><iframe src="http://119.73.65.87:8080/redirect.html?accessurl=aHR0cDovL3d3dy5leGFtcGxlLmNvbS8=&urlclass=NTM=" style="width: 100%; height: 100%; border: 0px;"></iframe></body></html>"#;
    let fp = db.match_body(body).expect("Mobilink/Jazz blockpage");
    assert_eq!(fp.name, "ooni.pk_1");
    assert!(fp.confirms_in("PK"));
    // The same page without the redirect host is not a blockpage.
    // The same page without the redirect host is not a blockpage (only the known false positive
    // `cp.fp_x_redirect_just`, "redirect", remains).
    let other = String::from_utf8_lossy(body).replace("119.73.65.87", "192.0.2.1");
    let rest = db.match_body_all(other.as_bytes());
    assert!(rest.iter().all(|f| f.is_false_positive()), "{:?}", names(&rest));
}

#[test]
fn pakistan_huawei_server_header() {
    let db = db();
    for name in ["Server", "server", "SERVER"] {
        let fp = db.match_header(name, b"V2R2C00-IAE/1.0").expect("Huawei IAE");
        assert_eq!(fp.name, "ooni.es_1");
        assert_eq!(fp.expected_countries, ["ES", "IT", "MX", "PK"]);
        assert!(fp.confirms_in("PK") && !fp.confirms_in("DE"));
    }
    // `full`: the whole value, nothing more.
    assert!(db.match_header("Server", b"V2R2C00-IAE/1.0 extra").is_none());
    assert!(db.match_header("Server", b"x V2R2C00-IAE/1.0").is_none());
    // The same text under another header is another fingerprint (`header.location prefix`).
    let loc = db.match_header("Location", b"V2R2C00-IAE/1.0/blocked").unwrap();
    assert_eq!(loc.name, "cp.a_prod_huawei_esight");
    assert!(db.match_header("X-Other", b"V2R2C00-IAE/1.0").is_none());
}

#[test]
fn regexp_fingerprints_match_as_regexps() {
    let db = db();
    let sa = b"<p>If you believe the requested page should not be blocked please <a href=\"http://www.internet.gov.sa/\">click here</a></p>";
    assert_eq!(
        db.match_body(sa).map(|f| f.name.as_str()),
        Some("cp.b_nat_sa_national_2")
    );
    assert_eq!(
        db.iter()
            .find(|f| f.name == "cp.b_nat_sa_national_2")
            .unwrap()
            .pattern_type,
        PatternType::Regexp
    );
    // The literal it requires, without the rest, is not enough.
    let reversed = b"http://www.internet.gov.sa/ If you believe the requested page should not be blocked please";
    assert!(
        db.match_body_all(reversed)
            .iter()
            .all(|f| f.name != "cp.b_nat_sa_national_2")
    );
    // `.` does not cross a line break.
    let broken = b"If you believe the requested page should not be blocked please\nhttp://www.internet.gov.sa";
    assert!(
        db.match_body_all(broken)
            .iter()
            .all(|f| f.name != "cp.b_nat_sa_national_2")
    );
    // Python-style literal brace: `{"msg":.*"id":` (a known false positive).
    let json = br#"{"msg": "not found", "id": 17}"#;
    let fp = db.match_body(json).unwrap();
    assert_eq!((fp.name.as_str(), fp.is_false_positive()), ("cp.fp_x_msg_id", true));
    // Regexps see a legacy-encoded page (windows-1251 here) character by character.
    let mut drweb = b"<p>URL ".to_vec();
    drweb.extend_from_slice(b"\xe7\xe0\xe1\xeb\xee\xea\xe8\xf0\xee\xe2\xe0\xed SpIDer Gate</p>");
    assert_eq!(
        db.match_body(&drweb).map(|f| f.name.as_str()),
        Some("cp.a_prod_drweb_3")
    );
    // `cp.fp_x_…` (`\u{FFFD}.*\u{FFFD}`, a known false positive) sees invalid bytes as U+FFFD,
    // found by the byte search for valid UTF-8 and by the lossy decoding otherwise.
    let fffd = db.iter().find(|f| f.pattern == "\u{FFFD}.*\u{FFFD}").unwrap();
    let has_fffd = |b: &[u8]| db.match_body_all(b).iter().any(|f| f.name == fffd.name);
    assert!(has_fffd(b"<p>\xff\xfe garbled \xfe</p>"));
    assert!(has_fffd("<p>\u{FFFD} garbled \u{FFFD}</p>".as_bytes()));
    assert!(!has_fffd(b"<p>\xff garbled</p>"), "one replacement character only");
    assert!(!has_fffd(b"<p>\xff\n garbled \xfe</p>"), "not on one line");
    assert!(!has_fffd("<p>caf\u{e9} cr\u{e8}me</p>".as_bytes()));
    // Header regexps work too (fastpath skips them): a custom set.
    let db = FingerprintDb::from_csv(
        HEADER,
        &format!("{HEADER}\nx.re,isp,,header.location,regexp,^https?://block\\.[a-z]+\\.example/,7,XX,,,\n"),
    )
    .unwrap();
    assert_eq!(
        db.match_header("location", b"https://block.isp.example/?u=1")
            .map(|f| f.name.as_str()),
        Some("x.re")
    );
    assert!(db.match_header("location", b"see https://block.isp.example/").is_none());
}

#[test]
fn prefix_and_full_are_anchored() {
    let db = db();
    // header.location prefix ooni.ae_2 `http://lighthouse.du.ae`
    // (`cl.isp_ae_du_surfsafely_forward_2`, `contains lighthouse.du.ae`, matches both.)
    let header_names = |v: &[u8]| names(&db.match_header_all("Location", v));
    let at_start = header_names(b"http://lighthouse.du.ae/block?u=x");
    assert!(at_start.contains("ooni.ae_2"), "{at_start:?}");
    assert!(at_start.contains("cl.isp_ae_du_surfsafely_forward_2"), "{at_start:?}");
    let inside = header_names(b"https://example.com/?next=http://lighthouse.du.ae");
    assert!(!inside.contains("ooni.ae_2"), "{inside:?}");
    assert!(inside.contains("cl.isp_ae_du_surfsafely_forward_2"), "{inside:?}");
    // body full cl.susp_blankhtml_1 `<HTML></HTML>`: the whole body, not a page containing it.
    assert_eq!(
        db.match_body(b"<HTML></HTML>").map(|f| f.name.as_str()),
        Some("cl.susp_blankhtml_1")
    );
    assert!(
        db.match_body_all(b"<p>x</p><HTML></HTML>")
            .iter()
            .all(|f| f.name != "cl.susp_blankhtml_1")
    );
    // A body prefix fingerprint (none is shipped): a custom set.
    let http = format!(
        "{HEADER}\nx.pre,nat,,body,prefix,<!-- BLOCKED BY X -->,9,,,,\nx.full,nat,,body,full,Access denied,9,,,,\n"
    );
    let db = FingerprintDb::from_csv(HEADER, &http).unwrap();
    assert_eq!(
        db.match_body(b"<!-- BLOCKED BY X --><html>...")
            .map(|f| f.name.as_str()),
        Some("x.pre")
    );
    assert!(db.match_body(b"<html><!-- BLOCKED BY X -->").is_none());
    assert_eq!(db.match_body(b"Access denied").map(|f| f.name.as_str()), Some("x.full"));
    assert!(db.match_body(b"Access denied.").is_none());
    assert!(db.match_body(b"").is_none());
}

#[test]
fn ordinary_pages_match_no_blockpage() {
    let db = db();
    let page = br#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Weather in Lahore</title>
<link rel="stylesheet" href="/static/site.css"></head><body><header><nav><a href="/">Home</a> <a href="/news">News</a></nav></header>
<main><article><h1>Rain expected this weekend</h1><p>The meteorological department forecasts showers across Punjab on Saturday,
with temperatures between 24 and 31 degrees.</p></article></main><footer>&copy; 2024 Example News</footer></body></html>"#;
    assert!(db.match_body(page).is_none(), "{:?}", db.match_body(page));
    // Real pages of sites that were not blocked: at most known false-positive patterns.
    let jsonl = std::fs::read_to_string(root().join("testdata/ooni/real_measurements_combined.jsonl")).unwrap();
    let mut pages = 0;
    for line in jsonl.lines() {
        let m = Measurement::from_slice(line.as_bytes()).unwrap();
        let Ok(Some(keys)) = m.web_connectivity() else { continue };
        for tx in keys.requests.iter().flatten() {
            let url = tx.request.as_ref().and_then(|r| r.url.clone()).unwrap_or_default();
            let normal = [
                "mozilla.org",
                "csmonitor.com",
                "youtube.com",
                "nexa.polito.it",
                "torproject.org",
            ];
            if !normal.iter().any(|n| url.contains(n)) {
                continue;
            }
            let Some(body) = tx
                .response
                .as_ref()
                .and_then(|r| r.body.as_ref())
                .and_then(|b| b.bytes())
            else {
                continue;
            };
            if body.len() < 1000 {
                continue;
            }
            pages += 1;
            for fp in db.match_body_all(&body) {
                assert_eq!(fp.scope, Scope::Fp, "{url}: {}", fp.name);
            }
        }
    }
    assert!(pages >= 6, "{pages}");
}

#[test]
fn best_match_order() {
    let http = format!(
        "{HEADER}\n\
         a.fp,fp,,body,contains,blocked,10,,,,\n\
         b.low,vbw,,body,contains,blocked,3,,,,\n\
         c.high,isp,,body,contains,is blocked,8,,,,\n\
         d.high_too,nat,,body,contains,page is,8,,,,\n"
    );
    let db = FingerprintDb::from_csv(HEADER, &http).unwrap();
    let all: Vec<&str> = db
        .match_body_all(b"this page is blocked")
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(all, ["c.high", "d.high_too", "b.low", "a.fp"]);
    assert_eq!(db.match_body(b"this page is blocked").unwrap().name, "c.high");
    // A known false positive alone is still reported (the caller decides), last.
    assert_eq!(db.match_body(b"blocked").unwrap().name, "b.low");
    assert_eq!(db.match_body_all(b"blocked").len(), 2);
}

#[test]
fn confirms_in_follows_fastpath() {
    let http = format!(
        "{HEADER}\nn,nat,,body,contains,x1,5,,,,\ni,isp,,body,contains,x2,5,,,,\np,prod,,body,contains,x3,5,\"PK, in\",,,\nf,fp,,body,contains,x4,5,PK,,,\n"
    );
    let db = FingerprintDb::from_csv(HEADER, &http).unwrap();
    let get = |n: &str| db.iter().find(|f| f.name == n).unwrap();
    assert!(get("n").confirms_in("DE") && get("i").confirms_in("DE"));
    assert!(get("p").confirms_in("PK") && get("p").confirms_in("IN") && get("p").confirms_in("pk"));
    assert!(!get("p").confirms_in("DE"));
    assert_eq!(get("p").expected_countries, ["PK", "IN"]);
    assert!(!get("f").confirms_in("PK"), "a known false positive confirms nothing");
}

// ---------------------------------------------------------------------------------------------
// Malformed CSV
// ---------------------------------------------------------------------------------------------

fn http_err(rows: &str) -> FingerprintError {
    FingerprintDb::from_csv(HEADER, &format!("{HEADER}\n{rows}")).unwrap_err()
}

#[test]
fn malformed_csv_names_the_row() {
    let good = "ok.1,nat,,body,contains,blocked here,5,,,,\n";

    let e = http_err(&format!("{good}bad.2,nat,,body,exact,blocked,5,,,,\n"));
    assert_eq!((e.file(), e.row(), e.line()), (FingerprintFile::Http, Some(2), Some(3)));
    assert_eq!(e.fingerprint_name(), Some("bad.2"));
    assert_eq!(e.problem(), &FingerprintProblem::BadPatternType("exact".into()));
    let msg = e.to_string();
    for part in [
        "HTTP fingerprint CSV",
        "row 2",
        "line 3",
        "bad.2",
        "\"exact\"",
        "full, prefix, contains or regexp",
    ] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }

    let e = http_err(&format!("{good}{good}re.3,nat,,body,regexp,(unclosed,5,,,,\n"));
    assert_eq!((e.row(), e.fingerprint_name()), (Some(3), Some("re.3")));
    assert!(
        matches!(e.problem(), FingerprintProblem::BadRegexp(m) if m.contains("unclosed")),
        "{e}"
    );
    assert!(e.to_string().contains("regexp does not compile"), "{e}");

    // A row with a column missing.
    let e = http_err(&format!("{good}short.2,nat,,body,contains,blocked,5,,\n"));
    assert_eq!(e.row(), Some(2));
    assert_eq!(e.problem(), &FingerprintProblem::FieldCount { expected: 11, found: 9 });
    assert!(
        e.to_string().contains("row 2") && e.to_string().contains("9 fields"),
        "{e}"
    );

    // A column missing from the header.
    let header = HEADER.replace(",pattern_type", "");
    let e = FingerprintDb::from_csv(HEADER, &format!("{header}\nx,nat,,body,blocked,5,,,,\n")).unwrap_err();
    assert_eq!(
        e.problem(),
        &FingerprintProblem::MissingColumns(vec!["pattern_type".into()])
    );
    assert_eq!(e.line(), Some(1));
    assert!(
        e.to_string().contains("name,scope,other_names"),
        "says which header to use: {e}"
    );

    let e = http_err("loc.1,nat,,headers.server,full,x,5,,,,\n");
    assert_eq!(
        (e.row(), e.problem()),
        (Some(1), &FingerprintProblem::BadLocation("headers.server".into()))
    );
    let e = http_err("conf.1,nat,,body,contains,x,high,,,,\n");
    assert_eq!(e.problem(), &FingerprintProblem::BadConfidence("high".into()));
    let e = http_err("empty.1,nat,,body,contains,,5,,,,\n");
    assert_eq!(e.problem(), &FingerprintProblem::EmptyField("pattern"));
    let e = http_err("dns.1,nat,,dns,full,10.0.0.1,5,,,,\n");
    assert_eq!(e.problem(), &FingerprintProblem::WrongFile("dns".into()));
    assert!(e.to_string().contains("move the row to the DNS fingerprint CSV"), "{e}");

    // The DNS file is checked too, and named.
    let e = FingerprintDb::from_csv(
        &format!("{HEADER}\nd.1,nat,,dns,full,1.2.3.4,5,,,,\nd.2,nat,,body,contains,x,5,,,,\n"),
        HEADER,
    )
    .unwrap_err();
    assert_eq!((e.file(), e.row()), (FingerprintFile::Dns, Some(2)));
    assert!(e.to_string().starts_with("DNS fingerprint CSV, row 2"), "{e}");

    let e = FingerprintDb::from_csv("", HEADER).unwrap_err();
    assert_eq!(
        (e.file(), e.problem()),
        (FingerprintFile::Dns, &FingerprintProblem::Empty)
    );

    // A good file with only the header is an empty set, not an error.
    assert!(FingerprintDb::from_csv(HEADER, HEADER).unwrap().is_empty());
}

#[test]
fn quoted_fields_and_extra_columns() {
    // Column order is read from the header; extra columns are ignored; quoted commas are kept.
    let dns = "pattern,name,location_found,pattern_type,scope,other_names,confidence_no_fp,expected_countries,extra\n\
               10.1.2.3,q.1,dns,full,isp,\"a, b\",7,\"PK,IN\",whatever\n";
    let db = FingerprintDb::from_csv(&format!("\u{feff}{dns}"), HEADER).unwrap();
    let fp = db.match_dns_answer("10.1.2.3").unwrap();
    assert_eq!((fp.name.as_str(), fp.confidence_no_fp), ("q.1", 7));
    assert_eq!(fp.other_names, ["a", "b"]);
    assert_eq!(fp.expected_countries, ["PK", "IN"]);
    assert_eq!((fp.source.as_str(), fp.notes.as_str()), ("", ""));
}

// ---------------------------------------------------------------------------------------------
// The fast body matcher against a naive one
// ---------------------------------------------------------------------------------------------

/// The literal body fingerprints' meaning, naively: one search per fingerprint.
fn naive_literals(db: &FingerprintDb, body: &[u8]) -> BTreeSet<String> {
    let found = body_substrings(body);
    db.iter()
        .filter(|f| f.location == Location::Body)
        .filter(|f| match f.pattern_type {
            PatternType::Full => body == f.pattern.as_bytes(),
            PatternType::Prefix => body.starts_with(f.pattern.as_bytes()),
            PatternType::Contains => found.contains(&f.name),
            PatternType::Regexp => false,
        })
        .map(|f| f.name.clone())
        .collect()
}

fn literal_matches(db: &FingerprintDb, body: &[u8]) -> BTreeSet<String> {
    db.match_body_all(body)
        .into_iter()
        .filter(|f| f.pattern_type != PatternType::Regexp)
        .map(|f| f.name.clone())
        .collect()
}

fn real_bodies() -> Vec<Vec<u8>> {
    let jsonl = std::fs::read_to_string(root().join("testdata/ooni/real_measurements_combined.jsonl")).unwrap();
    let mut out = Vec::new();
    for line in jsonl.lines() {
        let m = Measurement::from_slice(line.as_bytes()).unwrap();
        let Ok(Some(keys)) = m.web_connectivity() else { continue };
        out.extend(observe(&keys).bodies.into_iter().filter(|b| !b.is_empty()));
    }
    out
}

#[test]
fn fast_body_matcher_equals_naive_search_on_real_bodies() {
    let db = db();
    let bodies = real_bodies();
    assert!(bodies.len() >= 10, "{}", bodies.len());
    let mut matched = 0;
    for b in &bodies {
        let want = naive_literals(&db, b);
        matched += want.len();
        assert_eq!(literal_matches(&db, b), want);
    }
    assert!(matched > 0, "some real body matches some literal");
}

fn body_literals() -> Vec<String> {
    db().iter()
        .filter(|f| f.location == Location::Body && f.pattern_type == PatternType::Contains)
        .map(|f| f.pattern.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Patterns spliced at random places into random slices of real pages (and into random
    /// bytes): the fast matcher finds exactly what a naive search finds.
    #[test]
    fn fast_body_matcher_equals_naive_search(
        source in 0usize..1000,
        start in 0usize..1_000_000,
        len in 0usize..4000,
        inserts in proptest::collection::vec((0usize..2000, 0usize..5000, 0usize..20), 0..6),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        thread_local! {
            static DATA: (Vec<Vec<u8>>, Vec<String>) = (real_bodies(), body_literals());
        }
        DATA.with(|(bodies, lits)| {
            let db = db();
            let page = &bodies[source % bodies.len()];
            let s = start % page.len();
            let mut body = page[s..(s + len).min(page.len())].to_vec();
            body.extend_from_slice(&noise);
            for (lit, at, cut) in &inserts {
                let lit = lits[lit % lits.len()].as_bytes();
                // Sometimes a truncated pattern, which must not match.
                let lit = if cut % 4 == 0 { &lit[..lit.len() - 1] } else { lit };
                let at = at % (body.len() + 1);
                body.splice(at..at, lit.iter().copied());
            }
            prop_assert_eq!(literal_matches(&db, &body), naive_literals(&db, &body));
            Ok(())
        })?;
    }
}
