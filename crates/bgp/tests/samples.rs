//! Every MRT sample in `testdata/bgp/samples` (old RIPE formats, lab routers, a truncated
//! RouteViews RIB) either parses or fails cleanly, with the byte offset of the failure and every
//! record before it delivered; and damage done on purpose to real files (cut mid-record, a bad
//! header, an impossible length, garbage, a cut gzip stream) is reported the same way.
//!
//! Record counts and offsets are checked against an independent walk of the MRT framing (RFC 6396
//! §2: a 12-byte header whose last four bytes give the body length).

use censorwatch_bgp::{Action, Compression, Event, MrtError, MrtReader, ReadReport, Source, Time};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/bgp/samples")
        .join(name)
}

/// What one route element said, owned.
#[derive(Debug, Clone)]
struct Seen {
    time: Time,
    prefix: ipnet::IpNet,
    path_id: u32,
    source: Source,
    origin: Option<Option<u32>>,
}

/// Reads `data` as an MRT stream named `name`; returns the report, the route elements, and the
/// number of peer-down events.
fn read(name: &str, data: &[u8]) -> (ReadReport, Vec<Seen>, u64) {
    let reader = MrtReader::new(name, data).expect("a reader over memory opens");
    let mut seen = Vec::new();
    let mut downs = 0;
    let report = reader.read_all(&mut |event| match event {
        Event::Route(u) => seen.push(Seen {
            time: u.time,
            prefix: u.prefix,
            path_id: u.path_id,
            source: u.source,
            origin: match u.action {
                Action::Announce { origin, .. } => Some(origin),
                Action::Withdraw => None,
            },
        }),
        Event::PeerDown { .. } => downs += 1,
    });
    assert_eq!(report.elements, seen.len() as u64);
    assert_eq!(report.peer_downs, downs);
    (report, seen, downs)
}

fn read_file(name: &str) -> (ReadReport, Vec<Seen>, u64) {
    read(name, &std::fs::read(sample(name)).expect("sample file"))
}

/// Decompresses a whole gzip or bzip2 file, or as much of it as can be (the rest is cut).
fn decompress(name: &str) -> Vec<u8> {
    let raw = std::fs::read(sample(name)).expect("sample file");
    let mut out = Vec::new();
    let result = match Compression::sniff(&raw) {
        Compression::Gzip => flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out),
        Compression::Bzip2 => {
            // Read in small steps so that a cut stream still yields what came before the cut.
            let mut r = bzip2::read::MultiBzDecoder::new(raw.as_slice());
            let mut buf = [0u8; 4096];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break Ok(0),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) => break Err(e),
                }
            }
        }
        Compression::None => return raw,
    };
    let _ = result;
    out
}

/// The start offsets of the complete MRT records in `data`, and where the first incomplete one
/// starts (`data.len()` when there is none).
fn frames(data: &[u8]) -> (Vec<usize>, usize) {
    let mut starts = Vec::new();
    let mut at = 0;
    while data.len() - at >= 12 {
        let length = u32::from_be_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        if data.len() - at - 12 < length {
            break;
        }
        starts.push(at);
        at += 12 + length;
    }
    (starts, at)
}

fn truncated(report: &ReadReport) -> (u64, u64, bool, String) {
    match &report.fatal {
        Some(MrtError::Truncated {
            offset,
            records,
            cut,
            detail,
            ..
        }) => (*offset, *records, *cut, detail.clone()),
        other => panic!("{}: expected a truncation, got {other:?}", report.file),
    }
}

/// Files that parse completely, every record understood.
#[test]
fn clean_samples_parse_completely() {
    for (name, downs) in [
        ("bird_bgp", 1),
        ("bird6_bgp", 1),
        ("bird-mrtdump_bgp", 1),
        ("bird6-mrtdump_bgp", 1),
        ("quagga_rib", 0),
        ("bird6-mrtdump_rib", 0),
        ("openbgpd_bgp", 2),
        ("openbgpd_rib_table", 0),
        ("quagga_bgp", 2),
        ("examples__local_only__updates.bz2", 0),
        ("ripe__rrc00__2000.01__updates.20000102.2014.gz", 0),
        ("ripe__rrc01__2000.11__updates.20001104.0124.gz", 1),
        ("ripe__rrc03__2010.02__updates.20100227.1600.first-796-records.gz", 1),
    ] {
        let (report, seen, seen_downs) = read_file(name);
        assert!(report.is_clean(), "{name}: {report:?}");
        assert_eq!(report.unsupported, 0, "{name}");
        let data = decompress(name);
        let (starts, end) = frames(&data);
        assert_eq!(end, data.len(), "{name}: the framing walk reaches the end");
        assert_eq!(report.records, starts.len() as u64, "{name}");
        assert_eq!(report.bytes, data.len() as u64, "{name}");
        assert!(!seen.is_empty(), "{name}: route elements");
        assert_eq!(seen_downs, downs, "{name}: peer sessions going down");
        // Times come from the MRT headers: the first record's header time is the first event's.
        let first_time = i64::from(u32::from_be_bytes(data[0..4].try_into().unwrap()));
        assert!(seen[0].time.seconds() >= first_time, "{name}");
    }
}

#[test]
fn old_ripe_updates_are_read_with_their_times() {
    // rrc00, 2 January 2000, 20:14 UTC: MRT type BGP4MP from a 2000-era collector.
    let (_, seen, _) = read_file("ripe__rrc00__2000.01__updates.20000102.2014.gz");
    let (first, last) = (seen[0].time, seen[seen.len() - 1].time);
    assert!(first.to_string().starts_with("2000-01-02T20:1"), "{first}");
    assert!(last.seconds() - first.seconds() < 15 * 60, "{first}..{last}");
    assert!(seen.iter().all(|s| s.source == Source::Update));
    assert!(seen.iter().any(|s| s.origin.is_none()), "withdrawals");
    assert!(seen.iter().any(|s| matches!(s.origin, Some(Some(_)))), "announcements");
}

#[test]
fn table_dumps_are_rib_entries_and_add_path_ids_are_kept() {
    let (_, seen, _) = read_file("openbgpd_rib_table");
    assert!(seen.iter().all(|s| s.source == Source::Rib && s.origin.is_some()));
    let (_, seen, _) = read_file("bird6-mrtdump_rib");
    assert!(
        seen.iter()
            .all(|s| s.source == Source::Rib && s.prefix.addr().is_ipv6())
    );
    assert!(
        seen.iter().any(|s| s.path_id != 0),
        "RIB_IPV6_UNICAST_ADDPATH entries carry path ids"
    );
}

/// Files with record types bgpkit-parser cannot read: skipped and named, the rest read.
#[test]
fn unsupported_record_types_are_skipped_and_named() {
    let (report, seen, _) = read_file("openbgpd_rib_table-mp");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.unsupported, report.records);
    assert_eq!(
        report.first_unsupported.as_deref(),
        Some("BGP4MP subtype 2 (BGP4MP_ENTRY)")
    );
    assert!(seen.is_empty());

    // TABLE_DUMP_V2 with RIB_GENERIC (VPNv4) entries besides IPv4 and IPv6 unicast.
    let (report, seen, _) = read_file("openbgpd_rib_table-v2");
    assert!(report.is_clean(), "{report:?}");
    assert!(
        report.unsupported > 0 && report.unsupported < report.records,
        "{report:?}"
    );
    assert!(
        report.first_unsupported.as_deref().unwrap().contains("RibGeneric"),
        "{report:?}"
    );
    assert!(seen.iter().any(|s| s.prefix.addr().is_ipv4()) && seen.iter().any(|s| s.prefix.addr().is_ipv6()));
}

/// RIPE rrc00, 25 March 2000: two damaged MRT boundaries (bgpkit-parser's fixture notes). The
/// fifth record's header declares a body that swallows the records after it (it fails to parse
/// and is skipped), and the header found where it ends declares a 3.7 GB body: reading stops
/// there, with what came before kept. No resynchronisation is attempted.
#[test]
fn damaged_record_boundaries_stop_the_file_where_the_framing_breaks() {
    let name = "ripe__rrc00__2000.03__updates.20000325.0345.gz";
    let (report, seen, _) = read_file(name);
    let data = decompress(name);
    let (starts, broken_at) = frames(&data);
    let (offset, records, cut, detail) = truncated(&report);
    assert_eq!(
        (offset, records, cut),
        (broken_at as u64, starts.len() as u64, false),
        "{detail}"
    );
    assert!(
        detail.contains("-byte body, more than bgpkit-parser accepts"),
        "{detail}"
    );
    assert!(report.malformed >= 1, "{report:?}");
    let Some(MrtError::Malformed { offset: first_bad, .. }) = report.first_malformed else {
        panic!("{report:?}")
    };
    assert!(starts.contains(&(first_bad as usize)) && first_bad < offset);
    assert!(!seen.is_empty(), "the records before the damage were delivered");
    let message = report.fatal.as_ref().unwrap().to_string();
    assert!(
        message.starts_with(&format!("unreadable MRT record at byte offset {offset} of {name}")),
        "{message}"
    );
}

/// Three RIB entries cut out of a TABLE_DUMP_V2 dump without its PEER_INDEX_TABLE: every record is
/// reported malformed at its offset, and reading goes on to the end.
#[test]
fn rib_entries_without_their_peer_table_are_malformed_records() {
    let (report, seen, _) = read_file("bview.20140112.1600_3samples.bz2");
    assert!(report.fatal.is_none(), "{report:?}");
    assert_eq!((report.records, report.malformed), (3, 3));
    assert!(seen.is_empty());
    let Some(MrtError::Malformed {
        offset,
        record,
        compression,
        ref detail,
        ..
    }) = report.first_malformed
    else {
        panic!("{report:?}")
    };
    assert_eq!((offset, record, compression), (0, 1, Compression::Bzip2));
    assert!(detail.contains("no PEER_INDEX_TABLE"), "{detail}");
    let message = report.first_malformed.as_ref().unwrap().to_string();
    assert!(
        message.starts_with(
            "malformed MRT record 1 at byte offset 0 of bview.20140112.1600_3samples.bz2 (bzip2-decompressed)"
        ),
        "{message}"
    );
}

/// The first megabyte of a RouteViews RIB (TABLE_DUMP, 1 May 2008), bzip2 stream cut: every
/// record the surviving blocks hold is read, then a truncation at the offset where the first
/// incomplete record starts.
#[test]
fn a_cut_bzip2_rib_keeps_every_record_before_the_cut() {
    let name = "rib.20080501.0644_firstMB.bz2";
    let (report, seen, _) = read_file(name);
    let data = decompress(name);
    let (starts, incomplete_at) = frames(&data);
    assert!(incomplete_at < data.len(), "the decompressed data ends inside a record");
    let (offset, records, cut, detail) = truncated(&report);
    assert!(cut, "{detail}");
    assert_eq!(offset, incomplete_at as u64);
    assert_eq!(records, starts.len() as u64);
    assert_eq!(report.records, starts.len() as u64);
    assert!(records > 100_000, "{records}");
    // TABLE_DUMP has one prefix per record.
    assert_eq!(seen.len() as u64, records);
    assert!(
        seen.iter()
            .all(|s| s.source == Source::Rib && s.prefix.addr().is_ipv4())
    );
    assert!(
        seen[0].time.to_string().starts_with("2008-05-01T"),
        "{:?}",
        seen[0].time
    );
    let message = report.fatal.as_ref().unwrap().to_string();
    assert!(
        message.starts_with(&format!(
            "truncated MRT record at byte offset {offset} of {name} (bzip2-decompressed), after {records} records: "
        )),
        "{message}"
    );
}

fn quagga() -> Vec<u8> {
    std::fs::read(sample("quagga_bgp")).unwrap()
}

#[test]
fn an_uncompressed_file_cut_inside_a_record_reports_where_that_record_starts() {
    let data = quagga();
    let (starts, _) = frames(&data);
    for cut_record in [1, starts.len() / 2, starts.len() - 1] {
        for into in [5, 20] {
            let cut_at = starts[cut_record] + into;
            let (report, seen, _) = read("cut", &data[..cut_at]);
            let (offset, records, cut, detail) = truncated(&report);
            assert_eq!(
                (offset, records, cut),
                (starts[cut_record] as u64, cut_record as u64, true),
                "{detail}"
            );
            // Everything before the cut was delivered: the same as reading exactly those records.
            let (whole, whole_seen, _) = read("whole", &data[..starts[cut_record]]);
            assert!(whole.is_clean());
            assert_eq!(seen.len(), whole_seen.len());
        }
    }
}

#[test]
fn a_record_with_a_bad_header_is_skipped_and_the_rest_is_read() {
    let mut data = quagga();
    let (starts, _) = frames(&data);
    let (clean, clean_seen, _) = read("clean", &data);
    let bad = starts.len() / 2;
    // MRT type 99 does not exist; the framing (the length) is intact.
    data[starts[bad] + 4..starts[bad] + 6].copy_from_slice(&99u16.to_be_bytes());
    let (report, seen, _) = read("bad", &data);
    assert!(report.fatal.is_none(), "{report:?}");
    assert_eq!((report.records, report.malformed), (clean.records, 1));
    let Some(MrtError::Malformed { offset, record, .. }) = report.first_malformed else {
        panic!("{report:?}")
    };
    assert_eq!((offset, record), (starts[bad] as u64, bad as u64 + 1));
    assert!(seen.len() <= clean_seen.len() && seen.len() + 10 > clean_seen.len());
}

#[test]
fn a_record_with_a_broken_body_is_skipped_and_the_rest_is_read() {
    let mut data = quagga();
    let (starts, _) = frames(&data);
    let (clean, _, _) = read("clean", &data);
    // Break the BGP message length of every BGP4MP_MESSAGE_AS4 record past the first.
    let mut broken = 0;
    for &at in &starts[1..] {
        let (kind, subtype) = (
            u16::from_be_bytes([data[at + 4], data[at + 5]]),
            u16::from_be_bytes([data[at + 6], data[at + 7]]),
        );
        if kind == 16 && subtype == 4 {
            let afi = u16::from_be_bytes([data[at + 12 + 10], data[at + 12 + 11]]);
            let marker = at + 12 + 12 + if afi == 1 { 8 } else { 32 };
            // A BGP message length below the 19-byte minimum (RFC 4271 §4.1).
            data[marker + 16..marker + 18].copy_from_slice(&3u16.to_be_bytes());
            broken += 1;
        }
    }
    assert!(broken > 0);
    let (report, _, _) = read("broken", &data);
    assert!(report.fatal.is_none(), "{report:?}");
    assert_eq!(report.records, clean.records);
    assert_eq!(report.malformed, broken);
}

#[test]
fn an_impossible_record_length_stops_the_file_with_its_offset() {
    let mut data = quagga();
    let (starts, _) = frames(&data);
    let at = starts[3];
    data[at + 8..at + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    let (report, seen, _) = read("huge", &data);
    let (offset, records, cut, detail) = truncated(&report);
    assert_eq!((offset, records, cut), (at as u64, 3, false), "{detail}");
    assert!(detail.contains("4294967295-byte body"), "{detail}");
    let (_, first_three, _) = read("three", &data[..at]);
    assert_eq!(seen.len(), first_three.len());
}

#[test]
fn garbage_and_empty_input() {
    let (report, seen, _) = read("empty", b"");
    assert!(report.is_clean() && report.records == 0 && seen.is_empty());
    let text = b"this is not an MRT file, it is a line of text that goes on and on\n".repeat(3);
    let (report, _, _) = read("text", &text);
    assert!(report.fatal.is_some() || report.malformed > 0, "{report:?}");
    let message = report
        .fatal
        .as_ref()
        .or(report.first_malformed.as_ref())
        .unwrap()
        .to_string();
    assert!(message.contains("byte offset 0 of text"), "{message}");
}

#[test]
fn a_cut_gzip_stream_keeps_what_decompressed() {
    let data = quagga();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    let (whole, whole_seen, _) = read("whole.gz", &gz);
    assert!(whole.is_clean());
    let (report, seen, _) = read("cut.gz", &gz[..gz.len() * 2 / 3]);
    let (offset, records, _, detail) = truncated(&report);
    let (starts, _) = frames(&data);
    assert!(
        starts.contains(&(offset as usize)),
        "the truncation is reported at a record start: {offset}"
    );
    assert_eq!(
        starts.iter().position(|&s| s == offset as usize),
        Some(records as usize),
        "{detail}"
    );
    assert!(records > 0 && records < whole.records);
    assert!(!seen.is_empty() && seen.len() < whole_seen.len());
    let message = report.fatal.unwrap().to_string();
    assert!(message.contains("of cut.gz (gzip-decompressed)"), "{message}");
}

#[test]
fn a_missing_file_is_an_open_error() {
    let err = MrtReader::open(&sample("no-such-file")).unwrap_err();
    assert!(matches!(err, MrtError::Open { .. }));
    assert!(err.to_string().starts_with("cannot read "), "{err}");
}

#[test]
fn a_rib_entry_naming_an_unknown_peer_is_reported_and_the_rest_read() {
    let mut data = std::fs::read(sample("bird6-mrtdump_rib")).unwrap();
    let (starts, _) = frames(&data);
    let (clean, clean_seen, _) = read("clean", &data);
    // The first RIB_IPV6_UNICAST (4) or RIB_IPV6_UNICAST_ADDPATH (10) record with entries: make
    // its first entry name peer 65535 (RFC 6396 §4.3.2, RFC 8050 §4.1).
    let at = starts
        .iter()
        .copied()
        .find(|&at| data[at + 4..at + 6] == [0, 13] && matches!(data[at + 7], 4 | 10))
        .expect("an IPv6 RIB record");
    let body = at + 12;
    let prefix_bytes = usize::from(data[body + 4]).div_ceil(8);
    let count_at = body + 5 + prefix_bytes;
    let entries = u16::from_be_bytes([data[count_at], data[count_at + 1]]);
    assert!(entries > 0);
    data[count_at + 2..count_at + 4].copy_from_slice(&[0xff, 0xff]);
    let (report, seen, _) = read("bad-peer", &data);
    assert!(report.fatal.is_none(), "{report:?}");
    assert_eq!((report.records, report.malformed), (clean.records, 1));
    let message = report.first_malformed.as_ref().unwrap().to_string();
    assert!(message.contains(&format!("at byte offset {at} ")), "{message}");
    assert!(
        message.contains(&format!("RIB entry 1 of {entries} names a peer index")),
        "{message}"
    );
    assert_eq!(seen.len() + usize::from(entries), clean_seen.len());
}
