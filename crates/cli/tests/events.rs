//! `censorwatch events` end to end: a known block, written as real OONI web_connectivity
//! measurements (two fixtures from testdata/ooni, their ids, times, networks and input
//! rewritten), ingested into a real SQLite file; the events printed, filtered and stored.

use assert_cmd::Command;
mod common;

use censorwatch_store::{DetectionKind, DetectionQuery, SqliteStore, Store};
use common::block::{HOUR, T0, block_timeline};
use serde_json::Value;
use std::path::PathBuf;

fn censorwatch(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("censorwatch").unwrap().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn setup() -> (tempfile::TempDir, PathBuf, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (jsonl, first) = block_timeline();
    let input = dir.path().join("pk.jsonl");
    std::fs::write(&input, jsonl).unwrap();
    let db = dir.path().join("cw.db");
    let db_url = format!("sqlite:{}", db.display());
    let (code, _, err) = censorwatch(&["ingest", input.to_str().unwrap(), "--db", &db_url]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("576 stored"), "{err}");
    (dir, db, db_url, first)
}

#[test]
fn one_event_with_its_networks_and_start() {
    let (_dir, db, db_url, first) = setup();
    // The ingest refreshed the stored events already.
    let stored = SqliteStore::open(&db)
        .unwrap()
        .detections(&DetectionQuery::all(DetectionKind::Event))
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");

    let (code, out, err) = censorwatch(&["events", "--db", &db_url, "--json"]);
    assert_eq!(code, 0, "{err}");
    let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 1, "one country-level event, not one per network: {out}");
    let e = &events[0];
    assert_eq!(e["cc"], "PK");
    assert_eq!(e["platform"], "facebook");
    assert_eq!(e["method"], "dns.bogon");
    assert_eq!(e["start"], T0 + 20 * HOUR, "the first blocked measurement: {e}");
    assert_eq!(e["end"], Value::Null, "still blocked at the last measurement");
    let asns: Vec<(u64, i64)> = e["asns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["asn"].as_u64().unwrap(), a["start"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        asns,
        [(17557, T0 + 20 * HOUR), (45595, T0 + 26 * HOUR)],
        "the clean network is not in it"
    );
    assert_eq!(e["first_evidence"]["id"], first.as_str());
    assert_eq!(e["id"], stored[0].id.as_str(), "printed and stored agree");
    assert!(
        err.contains("576 measurements and 0 signal samples read, 1 events"),
        "{err}"
    );

    // The table, and filters.
    let (code, out, _) = censorwatch(&["events", "--db", &db_url]);
    assert_eq!(code, 0);
    assert!(
        out.contains("AS17557,AS45595") && out.contains("ongoing") && out.contains("2024-02-16 20:00:00"),
        "{out}"
    );
    for (args, n) in [
        (vec!["--cc", "pk"], 1),
        (vec!["--cc", "IR"], 0),
        (vec!["--domain", "facebook.com"], 1),
        (vec!["--domain", "x.com"], 0),
        (vec!["--since", "2024-02-17"], 1),
    ] {
        let mut all = vec!["events", "--db", &db_url, "--json"];
        all.extend(args.iter().copied());
        let (code, out, err) = censorwatch(&all);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), n, "{args:?}: {out}");
    }
}

#[test]
fn bad_filters_are_usage_errors() {
    for args in [["--cc", "PAK"], ["--since", "yesterday"]] {
        let (code, _, err) = censorwatch(&["events", "--db", "sqlite:/nonexistent/x.db", args[0], args[1]]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(args[0]), "{err}");
    }
}

/// A hand-written MRT file (RFC 6396 BGP4MP_MESSAGE_AS4 records of BGP UPDATEs, RFC 4271): the
/// test needs routes withdrawn at known times, which no real capture of PK networks in the
/// repository has.
mod mrt {
    /// One BGP UPDATE from peer `n` (AS 64_600 + n, 10.0.0.n) at `time`: `withdrawn` and
    /// `announced` prefixes (address, length), the latter with AS path `[peer AS, path…]`.
    pub(crate) fn update(
        time: u32,
        n: u8,
        withdrawn: &[([u8; 4], u8)],
        announced: &[([u8; 4], u8)],
        path: &[u32],
    ) -> Vec<u8> {
        let peer_as = 64_600 + u32::from(n);
        let prefixes = |list: &[([u8; 4], u8)]| {
            let mut out = Vec::new();
            for (addr, len) in list {
                out.push(*len);
                out.extend_from_slice(&addr[..usize::from(len.div_ceil(8))]);
            }
            out
        };
        let withdrawn = prefixes(withdrawn);
        let nlri = prefixes(announced);
        let mut attrs = Vec::new();
        if !announced.is_empty() {
            attrs.extend([0x40, 1, 1, 0]); // ORIGIN IGP
            let mut as_path = vec![peer_as];
            as_path.extend_from_slice(path);
            attrs.extend([0x40, 2, (2 + 4 * as_path.len()) as u8, 2, as_path.len() as u8]);
            for asn in as_path {
                attrs.extend(asn.to_be_bytes());
            }
            attrs.extend([0x40, 3, 4, 10, 0, 0, n]); // NEXT_HOP
        }
        let mut body = Vec::new();
        body.extend((withdrawn.len() as u16).to_be_bytes());
        body.extend(&withdrawn);
        body.extend((attrs.len() as u16).to_be_bytes());
        body.extend(&attrs);
        body.extend(&nlri);
        let mut bgp = vec![0xff; 16];
        bgp.extend(((19 + body.len()) as u16).to_be_bytes());
        bgp.push(2); // UPDATE
        bgp.extend(body);
        let mut record = Vec::new();
        record.extend(peer_as.to_be_bytes());
        record.extend(6447u32.to_be_bytes()); // the collector's AS
        record.extend(0u16.to_be_bytes()); // interface
        record.extend(1u16.to_be_bytes()); // IPv4
        record.extend([10, 0, 0, n]);
        record.extend([10, 0, 0, 254]);
        record.extend(bgp);
        let mut out = Vec::new();
        out.extend(time.to_be_bytes());
        out.extend(16u16.to_be_bytes()); // BGP4MP
        out.extend(4u16.to_be_bytes()); // BGP4MP_MESSAGE_AS4
        out.extend((record.len() as u32).to_be_bytes());
        out.extend(record);
        out
    }
}

/// AS45595 (one of the networks with measurements) announces a /21 (eight /24s) through three
/// peers from hour 0, withdraws it everywhere at hour 30:10 and announces it again at 39:50;
/// another AS's route at hour 47 marks how far the data reaches.
fn withdrawal_mrt() -> Vec<u8> {
    let t = |hours: i64, minutes: i64| (T0 + hours * HOUR + minutes * 60) as u32;
    let net = ([182, 176, 0, 0], 21);
    let mut data = Vec::new();
    for n in 1..=3 {
        data.extend(mrt::update(t(0, 0), n, &[], &[net], &[45595]));
    }
    for n in 1..=3 {
        data.extend(mrt::update(t(30, 10), n, &[net], &[], &[]));
    }
    for n in 1..=3 {
        data.extend(mrt::update(t(39, 50), n, &[], &[net], &[45595]));
    }
    data.extend(mrt::update(t(47, 0), 1, &[], &[([198, 51, 100, 0], 24)], &[64_511]));
    data
}

#[test]
fn a_bgp_withdrawal_recorded_by_bgp_db_is_an_outage_of_kind_bgp() {
    let (dir, db, db_url, _) = setup();
    let file = dir.path().join("updates.mrt");
    std::fs::write(&file, withdrawal_mrt()).unwrap();

    // Outages with a BGP signal among `out`'s.
    let bgp_outages = |out: &str| -> Vec<Value> {
        out.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|o| o["signals"].as_array().unwrap().contains(&Value::from("bgp")))
            .collect()
    };
    // Before any BGP data: no outage at all. (The country's probe volume, twelve an hour, stops
    // when the timeline ends at hour 48; judged at today's clock, the hours after that are
    // unknown, not empty, and are no outage.)
    let (code, out, err) = censorwatch(&["events", "--db", &db_url, "--outages", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "", "no outage before the BGP data");

    let (code, _, err) = censorwatch(&["bgp", file.to_str().unwrap(), "--db", &db_url, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("samples of 3 networks"), "the three PK networks: {err}");
    let samples = SqliteStore::open(&db)
        .unwrap()
        .signal_samples(None, None, 1000)
        .unwrap();
    let of = |asn: u32| -> Vec<(i64, f64)> {
        samples
            .iter()
            .filter(|s| s.asn == asn)
            .map(|s| {
                assert_eq!((s.kind.as_str(), s.cc.as_str()), ("bgp", "PK"));
                (s.time, s.value)
            })
            .collect()
    };
    // The changes (at the end of the 5-minute bin they happened in) and the last reading.
    assert_eq!(
        of(45595),
        [
            (T0 + 300, 8.0),
            (T0 + 30 * HOUR + 900, 0.0),
            (T0 + 39 * HOUR + 55 * 60, 8.0),
            (T0 + 47 * HOUR, 8.0)
        ]
    );
    assert_eq!(of(17557), [(T0 + 300, 0.0), (T0 + 47 * HOUR, 0.0)]);
    assert!(of(64_511).is_empty(), "a network of unknown country is not recorded");

    // Recording the same file again changes nothing.
    let (code, _, err) = censorwatch(&["bgp", file.to_str().unwrap(), "--db", &db_url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        SqliteStore::open(&db)
            .unwrap()
            .signal_samples(None, None, 1000)
            .unwrap(),
        samples
    );

    let (code, out, err) = censorwatch(&["events", "--db", &db_url, "--outages", "--json"]);
    assert_eq!(code, 0, "{err}");
    let outages = bgp_outages(&out);
    assert_eq!(outages.len(), 1, "{out}");
    assert_eq!(out.lines().count(), 1, "the withdrawal's outage only: {out}");
    let o = &outages[0];
    assert_eq!(o["cc"], "PK");
    assert_eq!(o["signals"], serde_json::json!(["bgp"]));
    assert_eq!(o["level"], "critical");
    // Withdrawn at 30:10 and back at 39:50: the hour bins holding those times.
    assert_eq!(o["start"], T0 + 30 * HOUR, "{o}");
    assert_eq!(o["end"], T0 + 40 * HOUR, "{o}");
    let asns: Vec<u64> = o["asns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["asn"].as_u64().unwrap())
        .collect();
    assert_eq!(asns, [45595]);
    assert_eq!(o["country_wide"], true, "the country's sum fell too");
    assert!(err.contains("signal samples read"), "{err}");
    // Stored, and in the table.
    let stored = SqliteStore::open(&db)
        .unwrap()
        .detections(&DetectionQuery::all(DetectionKind::Outage))
        .unwrap();
    assert!(stored.iter().any(|d| o["id"] == d.id.as_str()), "{stored:?}");
    let (code, out, _) = censorwatch(&["events", "--db", &db_url, "--outages"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("critical") && out.contains("AS45595") && out.contains("2024-02-17 06:00:00"),
        "{out}"
    );
    // The blocking event is still there, unchanged by the BGP data.
    let (_, out, _) = censorwatch(&["events", "--db", &db_url, "--json"]);
    assert_eq!(out.lines().count(), 1);
    // Filters apply to outages; --domain does not.
    let (_, out, _) = censorwatch(&["events", "--db", &db_url, "--outages", "--cc", "IR"]);
    assert_eq!(out.lines().count(), 1, "the header only: {out}");
    let (code, _, _) = censorwatch(&["events", "--db", &db_url, "--outages", "--domain", "x.com"]);
    assert_eq!(code, 2);
}

#[test]
fn bgp_db_countries_from_a_table_and_bad_tables() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("updates.mrt");
    std::fs::write(&file, withdrawal_mrt()).unwrap();
    let db_url = format!("sqlite:{}", dir.path().join("cw.db").display());
    // An empty store and no table: nothing to record, said clearly.
    let (code, _, err) = censorwatch(&["bgp", file.to_str().unwrap(), "--db", &db_url]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no network has a known country"), "{err}");
    // A table names the country.
    let table = dir.path().join("asn-cc.csv");
    std::fs::write(&table, "asn,cc\nAS45595,pk\n64511,US\n").unwrap();
    let (code, _, err) = censorwatch(&[
        "bgp",
        file.to_str().unwrap(),
        "--db",
        &db_url,
        "--asn-cc",
        table.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("samples of 2 networks"), "{err}");
    let (_, out, _) = censorwatch(&["events", "--db", &db_url, "--outages", "--json"]);
    let o: Value = serde_json::from_str(out.lines().next().expect("an outage")).unwrap();
    assert_eq!(o["signals"], serde_json::json!(["bgp"]), "{o}");
    assert_eq!(
        (o["cc"].as_str(), o["start"].as_i64()),
        (Some("PK"), Some(T0 + 30 * HOUR))
    );
    // A bad table or URL is a usage error; --asn-cc without --db too.
    std::fs::write(&table, "45595,Pakistan\n").unwrap();
    for args in [
        vec!["--db", db_url.as_str(), "--asn-cc", table.to_str().unwrap()],
        vec!["--db", "ftp://x"],
        vec!["--asn-cc", table.to_str().unwrap()],
    ] {
        let mut all = vec!["bgp", file.to_str().unwrap()];
        all.extend(args.iter().copied());
        let (code, _, err) = censorwatch(&all);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}
