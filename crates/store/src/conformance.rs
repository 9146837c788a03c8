//! The backend-agnostic conformance suite: what every [`Store`] must do, written once and run
//! against each backend (enable the `conformance` feature).
//!
//! Each check is a `pub fn(&dyn Store)` that takes a **fresh, empty** store and panics when the
//! store misbehaves. A backend's tests either call [`run_all`] with a factory, or generate one
//! `#[test]` per check with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! censorwatch_store::conformance_tests!(|| -> Box<dyn censorwatch_store::Store> { Box::new(fresh_store()) });
//! ```
//!
//! Records are built from the real OONI fixtures (`testdata/ooni/real_measurements_combined.jsonl`
//! at the workspace root) and synthetic metadata variations. Expected query results come from a
//! plain-Rust reference model ([`matches()`], [`newest_first`]) of the semantics documented in
//! [`crate::query`].

use crate::aggregate::{AggregateAxis, AggregateQuery};
use crate::detection::{DetectionKind, DetectionQuery, StoredDetection};
use crate::query::{Cursor, MAX_LIMIT};
use crate::{InsertReport, MeasurementQuery, Record, Redaction, Store};
use censorwatch_model::{Measurement, Method, Status, Verdict};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::OnceLock;

/// A conformance check: panics when the (fresh, empty) store misbehaves.
pub type Check = fn(&dyn Store);

/// Every check, by name, in the order [`run_all`] runs them.
pub const CHECKS: &[(&str, Check)] = &[
    ("insert_then_get_round_trips", insert_then_get_round_trips),
    ("reinserting_a_batch_stores_it_once", reinserting_a_batch_stores_it_once),
    (
        "an_id_repeated_inside_a_batch_is_stored_once",
        an_id_repeated_inside_a_batch_is_stored_once,
    ),
    ("count_follows_inserts", count_follows_inserts),
    ("every_filter_alone_and_combined", every_filter_alone_and_combined),
    (
        "paging_visits_each_record_once_newest_first",
        paging_visits_each_record_once_newest_first,
    ),
    ("sql_metacharacters_are_literal", sql_metacharacters_are_literal),
    ("a_5_mb_measurement_round_trips", a_5_mb_measurement_round_trips),
    ("a_batch_of_10_000_records", a_batch_of_10_000_records),
    ("leaf_indexes_are_kept", leaf_indexes_are_kept),
    (
        "observations_come_in_time_order_with_domains",
        observations_come_in_time_order_with_domains,
    ),
    (
        "detections_are_stored_replaced_and_queried",
        detections_are_stored_replaced_and_queried,
    ),
    ("aggregations_match_the_reference", aggregations_match_the_reference),
    (
        "signal_samples_are_replaced_by_key_and_paged_in_order",
        signal_samples_are_replaced_by_key_and_paged_in_order,
    ),
    (
        "asn_countries_count_measurements_per_pair",
        asn_countries_count_measurements_per_pair,
    ),
    (
        "a_redacted_measurement_is_gone_for_good",
        a_redacted_measurement_is_gone_for_good,
    ),
];

/// Runs every check, each on a new store from `make`. Panics naming the first check that fails.
pub fn run_all(make: &dyn Fn() -> Box<dyn HoldsStore>) {
    for (name, check) in CHECKS {
        let held = make();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(held.store())));
        if outcome.is_err() {
            panic!("store conformance check `{name}` failed (see the panic above)");
        }
    }
}

/// Generates one `#[test]` per conformance check (plus one that keeps the list in sync with
/// [`CHECKS`]). `$make` is an expression evaluating to a `Fn() -> Box<dyn HoldsStore>` that
/// returns a fresh, empty store each call, or to a `Fn() -> Option<Box<dyn HoldsStore>>` whose
/// `None` makes the test return early (a backend whose server is not configured; the factory
/// says so itself).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            insert_then_get_round_trips,
            reinserting_a_batch_stores_it_once,
            an_id_repeated_inside_a_batch_is_stored_once,
            count_follows_inserts,
            every_filter_alone_and_combined,
            paging_visits_each_record_once_newest_first,
            sql_metacharacters_are_literal,
            a_5_mb_measurement_round_trips,
            a_batch_of_10_000_records,
            leaf_indexes_are_kept,
            observations_come_in_time_order_with_domains,
            detections_are_stored_replaced_and_queried,
            aggregations_match_the_reference,
            signal_samples_are_replaced_by_key_and_paged_in_order,
            asn_countries_count_measurements_per_pair,
            a_redacted_measurement_is_gone_for_good,
        );
    };
    (@each $make:expr; $($check:ident,)*) => {
        $(
            #[test]
            fn $check() {
                let make = $make;
                if let ::std::option::Option::Some(held) =
                    $crate::conformance::MaybeStore::into_held(make())
                {
                    $crate::conformance::$check($crate::conformance::HoldsStore::store(held.as_ref()));
                }
            }
        )*

        #[test]
        fn conformance_tests_cover_every_check() {
            let generated: &[&str] = &[$(stringify!($check)),*];
            let all: ::std::vec::Vec<&str> = $crate::conformance::CHECKS.iter().map(|(name, _)| *name).collect();
            assert_eq!(generated, all.as_slice(), "conformance_tests! and conformance::CHECKS disagree");
        }
    };
}

/// A fresh store and what must outlive it (a temporary directory, a database dropped
/// afterwards): the checks borrow the store, the holder keeps the rest until the check ends.
pub trait HoldsStore {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl HoldsStore for Box<dyn Store> {
    fn store(&self) -> &dyn Store {
        self.as_ref()
    }
}

/// What a [`conformance_tests!`](crate::conformance_tests) factory may return: a store's holder,
/// or `None` to skip.
pub trait MaybeStore {
    /// The holder, or `None` to skip the check.
    fn into_held(self) -> Option<Box<dyn HoldsStore>>;
}

impl MaybeStore for Box<dyn HoldsStore> {
    fn into_held(self) -> Option<Box<dyn HoldsStore>> {
        Some(self)
    }
}

impl MaybeStore for Option<Box<dyn HoldsStore>> {
    fn into_held(self) -> Option<Box<dyn HoldsStore>> {
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures and the reference model.

/// Where the real OONI fixtures are (workspace root `testdata/`).
pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni/real_measurements_combined.jsonl")
}

/// One record per line of the real fixtures (raw = the line's exact bytes, verdict from the
/// built-in analyzer). Some fixtures may share an id; see [`distinct`].
pub fn fixture_records() -> Vec<Record> {
    static RECORDS: OnceLock<Vec<Record>> = OnceLock::new();
    RECORDS
        .get_or_init(|| {
            let path = fixture_path();
            let text = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "cannot read the OONI fixtures at {} ({e}); run from a censorwatch checkout",
                    path.display()
                )
            });
            let analyzer = censorwatch_verdict::Analyzer::with_builtin_fingerprints();
            let records: Vec<Record> = text
                .split(|&b| b == b'\n')
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
                .enumerate()
                .map(|(i, line)| {
                    let m = Measurement::from_slice(line).unwrap_or_else(|e| panic!("fixture line {}: {e}", i + 1));
                    let verdict = analyzer
                        .verdict(&m)
                        .unwrap_or_else(|e| panic!("fixture line {}: {e}", i + 1));
                    Record::new(line, &m, verdict)
                })
                .collect();
            assert!(
                records.len() >= 50,
                "expected the 80 real fixtures, found {}",
                records.len()
            );
            records
        })
        .clone()
}

/// The first record of each id, in order.
pub fn distinct(records: &[Record]) -> Vec<Record> {
    let mut seen = HashSet::new();
    records.iter().filter(|r| seen.insert(r.id.clone())).cloned().collect()
}

/// Fixture records whose raw measurement is at most `max_raw` bytes (for big batches).
pub fn small_fixture_records(max_raw: usize) -> Vec<Record> {
    let small: Vec<Record> = distinct(&fixture_records())
        .into_iter()
        .filter(|r| r.raw.len() <= max_raw)
        .collect();
    assert!(
        small.len() >= 10,
        "only {} fixtures are at most {max_raw} bytes",
        small.len()
    );
    small
}

/// `n` records cycled from `templates` with unique ids (`<id>#<prefix><i>`) and start times spread
/// over a few days.
pub fn unique_records(templates: &[Record], prefix: &str, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut r = templates[i % templates.len()].clone();
            r.id = format!("{}#{prefix}{i}", r.id);
            r.meta.start_time = 1_700_000_000 + (i as i64 % 5000) * 60;
            r
        })
        .collect()
}

/// The reference model of a query filter (including the cursor): does `r` belong in the results?
pub fn matches(q: &MeasurementQuery, r: &Record) -> bool {
    let m = &r.meta;
    q.probe_cc.as_ref().is_none_or(|cc| *cc == m.probe_cc)
        && q.probe_asn.is_none_or(|asn| asn == m.probe_asn)
        && q.domain.as_ref().is_none_or(|d| m.domain.as_ref() == Some(d))
        && q.since.is_none_or(|t| m.start_time >= t)
        && q.until.is_none_or(|t| m.start_time < t)
        && q.status.is_none_or(|s| s == r.verdict.status)
        && q.method.is_none_or(|x| Some(x) == r.verdict.method)
        && q.test_name.as_ref().is_none_or(|t| *t == m.test_name)
        && q.cursor
            .as_ref()
            .is_none_or(|c| (m.start_time, r.id.as_str()) < (c.start_time, c.id.as_str()))
}

/// Sorts newest first: `start_time` descending, ties by id descending (byte order).
pub fn newest_first(records: &mut [Record]) {
    records.sort_by(|a, b| (b.meta.start_time, b.id.as_bytes()).cmp(&(a.meta.start_time, a.id.as_bytes())));
}

/// What a query must return (all pages): the matching records, newest first, raw bytes empty.
pub fn expected(records: &[Record], q: &MeasurementQuery) -> Vec<Record> {
    let mut out: Vec<Record> = records
        .iter()
        .filter(|r| matches(q, r))
        .map(|r| Record {
            raw: Vec::new(),
            raw_zstd: None,
            ..r.clone()
        })
        .collect();
    newest_first(&mut out);
    out
}

/// Follows cursors from `q` to the last page and returns everything, checking each page's shape
/// (at most the limit, full unless last, raw empty, a cursor exactly when more follow, the cursor
/// surviving its text form).
pub fn query_all(store: &dyn Store, q: &MeasurementQuery) -> Vec<Record> {
    let limit = q.effective_limit() as usize;
    let mut q = q.clone();
    let mut all: Vec<Record> = Vec::new();
    for page_no in 0.. {
        assert!(page_no <= 100_000, "paging does not end");
        let page = store.query(&q).unwrap_or_else(|e| panic!("query {q:?}: {e}"));
        assert!(
            page.results.len() <= limit,
            "page {page_no} has {} results, limit {limit}",
            page.results.len()
        );
        assert!(
            page.results.iter().all(|r| r.raw.is_empty()),
            "query results must not carry raw bytes"
        );
        all.extend(page.results.iter().cloned());
        match page.next {
            None => return all,
            Some(next) => {
                assert_eq!(
                    page.results.len(),
                    limit,
                    "page {page_no} is short but has a next cursor"
                );
                let last = page.results.last().expect("a next cursor on an empty page");
                assert_eq!(
                    (next.start_time, next.id.as_str()),
                    (last.meta.start_time, last.id.as_str())
                );
                let decoded = Cursor::decode(&next.encode()).expect("the cursor survives its text form");
                q.cursor = Some(decoded);
            }
        }
    }
    unreachable!()
}

fn ids(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

fn insert(store: &dyn Store, batch: &[Record]) -> InsertReport {
    store
        .insert(batch)
        .unwrap_or_else(|e| panic!("inserting {} records: {e}", batch.len()))
}

fn get(store: &dyn Store, id: &str) -> Option<Record> {
    store.get(id).unwrap_or_else(|e| panic!("get {id:?}: {e}"))
}

fn count(store: &dyn Store) -> u64 {
    store.count().unwrap_or_else(|e| panic!("count: {e}"))
}

/// A verdict with the given status and method, the rest from `base`.
fn with_verdict(base: &Verdict, status: Status, method: Option<Method>) -> Verdict {
    Verdict {
        status,
        method,
        ..base.clone()
    }
}

/// A deterministic byte stream (xorshift64*), incompressible.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// Every fixture comes back from `get` byte-exact, with its metadata and verdict; unknown ids are
/// `None`; an unfiltered query returns them all without raw bytes. Every other record comes
/// already compressed by the caller (as ingest sends them), and reads back the same.
pub fn insert_then_get_round_trips(store: &dyn Store) {
    let all = fixture_records();
    let unique = distinct(&all);
    let sent: Vec<Record> = all
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if i % 2 == 0 {
                r.clone().compressed().expect("compresses")
            } else {
                r.clone()
            }
        })
        .collect();
    assert!(sent.iter().any(|r| r.raw_zstd.is_some()));
    let report = insert(store, &sent);
    assert_eq!(
        report,
        InsertReport {
            stored: unique.len() as u64,
            duplicates: (all.len() - unique.len()) as u64
        },
        "fixtures sharing an id are duplicates"
    );
    for r in &unique {
        let got = get(store, &r.id).unwrap_or_else(|| panic!("{} was inserted but get says missing", r.id));
        assert!(
            got.raw == r.raw,
            "{}: raw bytes differ ({} vs {} bytes)",
            r.id,
            got.raw.len(),
            r.raw.len()
        );
        assert_eq!(got.meta, r.meta, "{}: metadata", r.id);
        assert_eq!(got.verdict, r.verdict, "{}: verdict", r.id);
        assert_eq!(got, *r);
    }
    assert_eq!(get(store, "no-such-id"), None);
    assert_eq!(get(store, ""), None);
    let q = MeasurementQuery {
        limit: MAX_LIMIT,
        ..Default::default()
    };
    assert_eq!(query_all(store, &q), expected(&unique, &q));
    // Single page: the limit is larger than the data, so there is no next page.
    let page = store.query(&q).unwrap();
    assert_eq!(page.results.len(), unique.len());
    assert_eq!(page.next, None);
}

/// The same batch twice: stored once, the second report says duplicates, and a different record
/// under a stored id changes nothing.
pub fn reinserting_a_batch_stores_it_once(store: &dyn Store) {
    let batch = distinct(&fixture_records());
    let n = batch.len() as u64;
    assert_eq!(
        insert(store, &batch),
        InsertReport {
            stored: n,
            duplicates: 0
        }
    );
    assert_eq!(
        insert(store, &batch),
        InsertReport {
            stored: 0,
            duplicates: n
        }
    );
    assert_eq!(count(store), n);

    let original = &batch[0];
    let mut changed = batch[1].clone();
    changed.id = original.id.clone();
    changed.raw = b"{\"different\": true}".to_vec();
    changed.meta.probe_cc = "XX".into();
    changed.verdict = with_verdict(&changed.verdict, Status::Blocked, Some(Method::Throttled));
    assert_eq!(
        insert(store, &[changed]),
        InsertReport {
            stored: 0,
            duplicates: 1
        }
    );
    assert_eq!(
        get(store, &original.id).as_ref(),
        Some(original),
        "a duplicate must leave the stored record unchanged"
    );
    assert_eq!(count(store), n);
    let q = MeasurementQuery {
        probe_cc: Some("XX".into()),
        ..Default::default()
    };
    assert!(
        store.query(&q).unwrap().results.is_empty(),
        "the duplicate's metadata must not be stored"
    );
}

/// `[a, b, a', c, b]` stores a, b, c once each (the first occurrence wins) and reports two
/// duplicates.
pub fn an_id_repeated_inside_a_batch_is_stored_once(store: &dyn Store) {
    let f = distinct(&fixture_records());
    let (a, b, c) = (&f[0], &f[1], &f[2]);
    let mut a2 = f[3].clone();
    a2.id = a.id.clone();
    a2.raw = b"second copy".to_vec();
    let report = insert(store, &[a.clone(), b.clone(), a2, c.clone(), b.clone()]);
    assert_eq!(
        report,
        InsertReport {
            stored: 3,
            duplicates: 2
        }
    );
    assert_eq!(count(store), 3);
    assert_eq!(
        get(store, &a.id).as_ref(),
        Some(a),
        "the first occurrence in a batch wins"
    );
    assert_eq!(get(store, &b.id).as_ref(), Some(b));
    assert_eq!(get(store, &c.id).as_ref(), Some(c));
    let q = MeasurementQuery::default();
    assert_eq!(
        ids(&query_all(store, &q)),
        ids(&expected(&[a.clone(), b.clone(), c.clone()], &q))
    );
}

/// `count` is 0 when empty and follows stored records, not inserted ones.
pub fn count_follows_inserts(store: &dyn Store) {
    let f = distinct(&fixture_records());
    assert_eq!(count(store), 0);
    assert_eq!(
        insert(store, &[]),
        InsertReport::default(),
        "an empty batch does nothing"
    );
    assert_eq!(count(store), 0);
    insert(store, &f[..3]);
    assert_eq!(count(store), 3);
    insert(store, &f[..3]);
    assert_eq!(count(store), 3);
    insert(store, &f[2..7]);
    assert_eq!(count(store), 7);
    insert(store, &f);
    assert_eq!(count(store), f.len() as u64);
}

/// 240 records whose metadata varies independently (country, ASN, domain, test, status, method,
/// time with many ties).
pub fn filter_dataset() -> Vec<Record> {
    let templates = small_fixture_records(16 * 1024);
    let statuses = [
        (Status::Blocked, Some(Method::DnsNxdomain)),
        (Status::Blocked, Some(Method::TlsReset)),
        (Status::Ok, None),
        (Status::Down, None),
        (Status::Inconclusive, None),
        (Status::Blocked, Some(Method::HttpBlockpage)),
    ];
    (0..240usize)
        .map(|i| {
            let mut r = templates[i % templates.len()].clone();
            r.id = format!("syn-{:04}", (i * 97) % 240);
            r.meta.probe_cc = ["IR", "PK", "RU"][i % 3].into();
            r.meta.probe_asn = [100, 200, 300, 0][i % 4];
            r.meta.domain =
                [Some("a.com"), Some("b.org"), None, Some("a.com"), Some("c.net")][i % 5].map(str::to_owned);
            r.meta.test_name = ["web_connectivity", "signal"][(i % 7) % 2].into();
            let (status, method) = statuses[(i % 11) % 6];
            r.verdict = with_verdict(&r.verdict, status, method);
            r.meta.start_time = 1_710_000_000 + (i as i64 % 13) * 3600;
            r
        })
        .collect()
}

/// Each filter alone and combined, checked against the reference model, over all pages and
/// with a small page size.
pub fn every_filter_alone_and_combined(store: &dyn Store) {
    let data = filter_dataset();
    assert_eq!(insert(store, &data).stored, data.len() as u64);
    let t = |k: i64| 1_710_000_000 + k * 3600;
    let base = MeasurementQuery::default();
    let s = |v: &str| Some(v.to_owned());
    // (name, query, whether the model must find something: guards against a vacuous case)
    let cases: Vec<(&str, MeasurementQuery, bool)> = vec![
        ("none", base.clone(), true),
        (
            "cc",
            MeasurementQuery {
                probe_cc: s("IR"),
                ..base.clone()
            },
            true,
        ),
        (
            "cc absent",
            MeasurementQuery {
                probe_cc: s("XX"),
                ..base.clone()
            },
            false,
        ),
        (
            "asn",
            MeasurementQuery {
                probe_asn: Some(200),
                ..base.clone()
            },
            true,
        ),
        (
            "asn 0",
            MeasurementQuery {
                probe_asn: Some(0),
                ..base.clone()
            },
            true,
        ),
        (
            "domain",
            MeasurementQuery {
                domain: s("a.com"),
                ..base.clone()
            },
            true,
        ),
        (
            "domain absent",
            MeasurementQuery {
                domain: s("a.co"),
                ..base.clone()
            },
            false,
        ),
        (
            "since (inclusive)",
            MeasurementQuery {
                since: Some(t(5)),
                ..base.clone()
            },
            true,
        ),
        (
            "until (exclusive)",
            MeasurementQuery {
                until: Some(t(5)),
                ..base.clone()
            },
            true,
        ),
        (
            "since..until",
            MeasurementQuery {
                since: Some(t(3)),
                until: Some(t(8)),
                ..base.clone()
            },
            true,
        ),
        (
            "since == until",
            MeasurementQuery {
                since: Some(t(3)),
                until: Some(t(3)),
                ..base.clone()
            },
            false,
        ),
        (
            "since between records",
            MeasurementQuery {
                since: Some(t(12) - 1),
                ..base.clone()
            },
            true,
        ),
        (
            "status blocked",
            MeasurementQuery {
                status: Some(Status::Blocked),
                ..base.clone()
            },
            true,
        ),
        (
            "status ok",
            MeasurementQuery {
                status: Some(Status::Ok),
                ..base.clone()
            },
            true,
        ),
        (
            "status down",
            MeasurementQuery {
                status: Some(Status::Down),
                ..base.clone()
            },
            true,
        ),
        (
            "status inconclusive",
            MeasurementQuery {
                status: Some(Status::Inconclusive),
                ..base.clone()
            },
            true,
        ),
        (
            "method",
            MeasurementQuery {
                method: Some(Method::TlsReset),
                ..base.clone()
            },
            true,
        ),
        (
            "method absent",
            MeasurementQuery {
                method: Some(Method::Throttled),
                ..base.clone()
            },
            false,
        ),
        (
            "test_name",
            MeasurementQuery {
                test_name: s("signal"),
                ..base.clone()
            },
            true,
        ),
        (
            "cc + asn + domain",
            MeasurementQuery {
                probe_cc: s("PK"),
                probe_asn: Some(300),
                domain: s("a.com"),
                ..base.clone()
            },
            true,
        ),
        (
            "cc + status + since + until",
            MeasurementQuery {
                probe_cc: s("RU"),
                status: Some(Status::Blocked),
                since: Some(t(2)),
                until: Some(t(11)),
                ..base.clone()
            },
            true,
        ),
        (
            "status + method + test_name",
            MeasurementQuery {
                status: Some(Status::Blocked),
                method: Some(Method::DnsNxdomain),
                test_name: s("web_connectivity"),
                ..base.clone()
            },
            true,
        ),
        (
            "contradiction: status ok + method",
            MeasurementQuery {
                status: Some(Status::Ok),
                method: Some(Method::DnsNxdomain),
                ..base.clone()
            },
            false,
        ),
        (
            "everything",
            MeasurementQuery {
                probe_cc: s("IR"),
                probe_asn: Some(100),
                domain: s("a.com"),
                since: Some(t(0)),
                until: Some(t(13)),
                status: Some(Status::Blocked),
                test_name: s("web_connectivity"),
                ..base.clone()
            },
            true,
        ),
        (
            "cursor from no record",
            MeasurementQuery {
                cursor: Some(Cursor {
                    start_time: t(6),
                    id: "syn-0100".into(),
                }),
                ..base.clone()
            },
            true,
        ),
        (
            "domain + cursor",
            MeasurementQuery {
                domain: s("c.net"),
                cursor: Some(Cursor {
                    start_time: t(9),
                    id: "syn-9999".into(),
                }),
                ..base.clone()
            },
            true,
        ),
    ];
    for (name, q, nonempty) in cases {
        let want = expected(&data, &q);
        assert_eq!(
            !want.is_empty(),
            nonempty,
            "test data for case {name:?} is not what the case needs"
        );
        for limit in [MAX_LIMIT, 7] {
            let q = MeasurementQuery { limit, ..q.clone() };
            let got = query_all(store, &q);
            assert_eq!(ids(&got), ids(&want), "case {name:?}, limit {limit}: {q:?}");
            assert_eq!(got, want, "case {name:?}: records differ from what was inserted");
        }
    }
    // The documented bounds, spelled out.
    let since = query_all(
        store,
        &MeasurementQuery {
            since: Some(t(5)),
            limit: MAX_LIMIT,
            ..base.clone()
        },
    );
    assert!(since.iter().any(|r| r.meta.start_time == t(5)), "since is inclusive");
    let until = query_all(
        store,
        &MeasurementQuery {
            until: Some(t(5)),
            limit: MAX_LIMIT,
            ..base
        },
    );
    assert!(until.iter().all(|r| r.meta.start_time < t(5)), "until is exclusive");
}

/// 500 records over 37 distinct times (ties broken by id), inserted in scrambled order, paged with
/// several page sizes: each record once, newest first.
pub fn paging_visits_each_record_once_newest_first(store: &dyn Store) {
    let templates = small_fixture_records(16 * 1024);
    let mut data: Vec<Record> = (0..500u64)
        .map(|i| {
            let mut r = templates[i as usize % templates.len()].clone();
            // Ids whose order has nothing to do with insertion order or time.
            r.id = format!("p-{:08x}", (i.wrapping_mul(2_654_435_761)) % (1 << 32));
            r.meta.start_time = 1_720_000_000 + ((i * 7) % 37) as i64 * 10;
            r
        })
        .collect();
    data.rotate_left(123);
    for chunk in data.chunks(150) {
        insert(store, chunk);
    }
    assert_eq!(count(store), 500);
    let mut want = data
        .iter()
        .map(|r| Record {
            raw: Vec::new(),
            raw_zstd: None,
            ..r.clone()
        })
        .collect::<Vec<_>>();
    newest_first(&mut want);
    let mut ties = BTreeMap::<i64, usize>::new();
    for r in &want {
        *ties.entry(r.meta.start_time).or_default() += 1;
    }
    assert!(ties.values().all(|&n| n > 10), "the data must have many ties");

    for limit in [1, 7, 50, 100, 499, 500, MAX_LIMIT] {
        let q = MeasurementQuery {
            limit,
            ..Default::default()
        };
        let got = query_all(store, &q);
        let mut seen = HashSet::new();
        for r in &got {
            assert!(seen.insert(r.id.as_str()), "limit {limit}: {} visited twice", r.id);
        }
        assert_eq!(ids(&got), ids(&want), "limit {limit}: order or coverage is wrong");
        assert_eq!(got, want);
    }
    // Page boundaries: 500 = 10 × 50, so the 10th page is full and must be the last one.
    let mut q = MeasurementQuery {
        limit: 50,
        ..Default::default()
    };
    for page_no in 1..=10 {
        let page = store.query(&q).unwrap();
        assert_eq!(page.results.len(), 50, "page {page_no}");
        assert_eq!(
            page.next.is_some(),
            page_no < 10,
            "page {page_no}: a next cursor exactly when more follow"
        );
        q.cursor = page.next;
    }
    // Default and maximum page sizes.
    assert_eq!(store.query(&MeasurementQuery::default()).unwrap().results.len(), 100);
    let capped = store
        .query(&MeasurementQuery {
            limit: 5000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((capped.results.len(), capped.next), (500, None));
    // A cursor at the very end gives an empty last page.
    let oldest = want.last().unwrap();
    let end = MeasurementQuery {
        cursor: Some(Cursor {
            start_time: oldest.meta.start_time,
            id: oldest.id.clone(),
        }),
        ..Default::default()
    };
    let page = store.query(&end).unwrap();
    assert!(
        page.results.is_empty() && page.next.is_none(),
        "nothing is older than the oldest record"
    );
}

/// The strings of [`sql_metacharacters_are_literal`]: SQL and LIKE metacharacters, quotes,
/// comments, escapes, and unicode (no NUL).
pub const NASTY: &[&str] = &[
    "'",
    "\"",
    ";",
    "--",
    "%",
    "_",
    "\\",
    "' OR '1'='1",
    "\"; DROP TABLE measurements; --",
    "a%",
    "%a",
    "_b",
    "a_",
    "'); DELETE FROM measurements; --",
    "/* comment */",
    "`backtick`",
    "$1 ?1 :name @p",
    "ünïcødé.例え.テスト",
    "🙂 emoji",
    "\u{202e}rtl\u{200b}",
    "tab\tnew\nline\r",
    "  spaced  ",
    "sha256:ab:cd",
];

/// Metacharacters in every text field are stored and matched literally (no LIKE, no injection),
/// in filters and in cursors.
pub fn sql_metacharacters_are_literal(store: &dyn Store) {
    let template = small_fixture_records(16 * 1024)[0].clone();
    let nasty_record = |i: usize, s: &str| {
        let mut r = template.clone();
        r.id = s.to_owned();
        r.meta.start_time = 1_730_000_000 + (i as i64 % 3);
        r.meta.probe_cc = s.to_owned();
        r.meta.probe_network_name = s.to_owned();
        r.meta.test_name = s.to_owned();
        r.meta.input = Some(format!("https://{s}/"));
        r.meta.domain = Some(s.to_owned());
        r.meta.report_id = Some(s.to_owned());
        r.verdict.blockpage = Some(s.to_owned());
        r.verdict.reasons = vec![s.to_owned(), format!("x{s}y")];
        r.raw = s.as_bytes().to_vec();
        r
    };
    // Decoys that LIKE-style or trimmed matching would confuse with the nasty strings.
    let decoys = [
        "a",
        "b",
        "ab",
        "aa",
        "ba",
        "x",
        "a%b",
        "",
        " spaced ",
        "ÜNÏCØDÉ.例え.テスト",
    ];
    let mut data: Vec<Record> = NASTY.iter().enumerate().map(|(i, s)| nasty_record(i, s)).collect();
    data.extend(decoys.iter().enumerate().map(|(i, s)| {
        let mut r = nasty_record(i, s);
        r.id = format!("decoy-{i}");
        r
    }));
    assert_eq!(
        insert(store, &data),
        InsertReport {
            stored: data.len() as u64,
            duplicates: 0
        }
    );
    assert_eq!(count(store), data.len() as u64, "the table survived");
    for r in &data {
        assert_eq!(get(store, &r.id).as_ref(), Some(r), "get {:?}", r.id);
    }
    assert_eq!(get(store, "%"), Some(data[4].clone()));
    assert_eq!(get(store, "decoy-%"), None, "get matches ids literally");

    for (i, s) in NASTY.iter().enumerate() {
        let one = |q: MeasurementQuery, field: &str| {
            let got = query_all(store, &q);
            assert_eq!(ids(&got), vec![*s], "{field} = {s:?} must match exactly one record");
            assert_eq!(
                got[0],
                Record {
                    raw: Vec::new(),
                    raw_zstd: None,
                    ..data[i].clone()
                }
            );
        };
        let v = Some(s.to_string());
        one(
            MeasurementQuery {
                probe_cc: v.clone(),
                ..Default::default()
            },
            "probe_cc",
        );
        one(
            MeasurementQuery {
                domain: v.clone(),
                ..Default::default()
            },
            "domain",
        );
        one(
            MeasurementQuery {
                test_name: v.clone(),
                ..Default::default()
            },
            "test_name",
        );
        one(
            MeasurementQuery {
                probe_cc: v.clone(),
                domain: v.clone(),
                test_name: v,
                ..Default::default()
            },
            "all three",
        );
        // A cursor whose id is the nasty string continues strictly after it.
        let q = MeasurementQuery {
            cursor: Some(Cursor {
                start_time: data[i].meta.start_time,
                id: s.to_string(),
            }),
            limit: MAX_LIMIT,
            ..Default::default()
        };
        assert_eq!(ids(&query_all(store, &q)), ids(&expected(&data, &q)), "cursor at {s:?}");
    }
    assert_eq!(count(store), data.len() as u64, "nothing was deleted");
}

/// A 5 MB incompressible measurement and a 5 MB very compressible one come back byte-exact.
pub fn a_5_mb_measurement_round_trips(store: &dyn Store) {
    let template = small_fixture_records(16 * 1024)[0].clone();
    let mut noisy = template.clone();
    noisy.id = "big-noise".into();
    noisy.raw = noise(5 * 1024 * 1024 + 3, 0x9E37_79B9_7F4A_7C15);
    let mut repetitive = template;
    repetitive.id = "big-repetitive".into();
    repetitive.raw = b"{\"test_keys\": \""
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'a', 5 * 1024 * 1024))
        .collect();
    assert_eq!(insert(store, &[noisy.clone(), repetitive.clone()]).stored, 2);
    for r in [&noisy, &repetitive] {
        let got = get(store, &r.id).expect("stored");
        assert_eq!(got.raw.len(), r.raw.len(), "{}: length", r.id);
        assert!(got.raw == r.raw, "{}: bytes differ", r.id);
        assert_eq!(got, *r);
    }
}

/// 10 000 records in one insert, then again (all duplicates).
pub fn a_batch_of_10_000_records(store: &dyn Store) {
    let batch = unique_records(&small_fixture_records(16 * 1024), "big", 10_000);
    assert_eq!(
        insert(store, &batch),
        InsertReport {
            stored: 10_000,
            duplicates: 0
        }
    );
    assert_eq!(count(store), 10_000);
    for r in batch.iter().step_by(499) {
        assert_eq!(get(store, &r.id).as_ref(), Some(r));
    }
    let page = store
        .query(&MeasurementQuery {
            limit: MAX_LIMIT,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.results.len(), MAX_LIMIT as usize);
    assert_eq!(
        ids(&page.results),
        ids(&expected(&batch, &MeasurementQuery::default())[..MAX_LIMIT as usize])
    );
    assert_eq!(
        insert(store, &batch),
        InsertReport {
            stored: 0,
            duplicates: 10_000
        }
    );
    assert_eq!(count(store), 10_000);
}

/// The transparency log's bookkeeping: a stored measurement is unlogged until its leaf index is
/// set; `unlogged` pages through the unlogged ones in id order with their raw bytes; indexes read
/// back; ids not stored are never unlogged; the maximum follows.
pub fn leaf_indexes_are_kept(store: &dyn Store) {
    let records = distinct(&fixture_records());
    assert!(records.len() >= 4, "the fixtures hold several distinct measurements");
    assert_eq!(store.max_leaf_index().unwrap(), None);
    insert(store, &records);
    let mut ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    ids.push("no-such-id");
    let mut unlogged = store.unlogged_among(&ids).unwrap();
    unlogged.sort();
    let mut want: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    want.sort();
    assert_eq!(
        unlogged, want,
        "every stored measurement starts unlogged; unknown ids are left out"
    );
    assert_eq!(store.unlogged_count().unwrap(), want.len() as u64);

    // Page through them two at a time, in id order, raw bytes loaded.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.unlogged(after.as_deref(), 2).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        for r in &page {
            let original = records.iter().find(|o| o.id == r.id).expect("a stored id");
            assert!(r.raw == original.raw, "{}: unlogged returns the raw bytes", r.id);
            assert_eq!(r.verdict, original.verdict);
        }
        after = page.last().map(|r| r.id.clone());
        paged.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(paged, want, "unlogged pages visit each once, in id order");

    // Log the first half.
    let half: Vec<(&str, u64)> = want[..want.len() / 2]
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), 10 + i as u64))
        .collect();
    store.set_leaf_indexes(&half).unwrap();
    for (id, index) in &half {
        assert_eq!(store.leaf_index(id).unwrap(), Some(*index), "{id}");
    }
    assert_eq!(store.leaf_index(&want[want.len() - 1]).unwrap(), None);
    assert_eq!(store.leaf_index("no-such-id").unwrap(), None);
    assert_eq!(store.max_leaf_index().unwrap(), Some(10 + half.len() as u64 - 1));
    let mut left = store.unlogged_among(&ids).unwrap();
    left.sort();
    assert_eq!(left, want[want.len() / 2..].to_vec());
    assert_eq!(store.unlogged_count().unwrap(), (want.len() - half.len()) as u64);
    let rest: Vec<String> = store.unlogged(None, 1000).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(rest, want[want.len() / 2..].to_vec());
    // Re-inserting a logged measurement keeps its index.
    insert(store, &records);
    assert_eq!(store.leaf_index(half[0].0).unwrap(), Some(10));
}

/// Detector inputs: every stored measurement with a domain, once, in (start time, id) order,
/// with its country, network, status and method; `since` and the page cursor cut where they say.
pub fn observations_come_in_time_order_with_domains(store: &dyn Store) {
    let mut records = unique_records(&small_fixture_records(64 * 1024), "obs", 300);
    // A few without a domain, and same-second ties.
    for (i, r) in records.iter_mut().enumerate() {
        if i % 50 == 7 {
            r.meta.domain = None;
        }
        if i % 10 == 3 {
            r.meta.start_time = 1_700_000_000;
        }
    }
    insert(store, &records);
    let mut want: Vec<&Record> = records
        .iter()
        .filter(|r| r.meta.domain.as_deref().is_some_and(|d| !d.is_empty()))
        .collect();
    want.sort_by(|a, b| (a.meta.start_time, a.id.as_bytes()).cmp(&(b.meta.start_time, b.id.as_bytes())));
    assert!(want.len() > 50 && want.len() < records.len(), "{}", want.len());

    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = store.observations(None, after.as_ref(), 37).expect("observations");
        assert!(page.len() <= 37);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|o| (o.start_time, o.id.clone()));
        got.extend(page);
    }
    assert_eq!(got.len(), want.len(), "each measurement with a domain, once");
    for (o, r) in got.iter().zip(&want) {
        assert_eq!(o.id, r.id);
        assert_eq!(o.start_time, r.meta.start_time);
        assert_eq!(Some(&o.domain), r.meta.domain.as_ref());
        assert_eq!(
            (o.probe_cc.as_str(), o.probe_asn),
            (r.meta.probe_cc.as_str(), r.meta.probe_asn)
        );
        assert_eq!((o.status, o.method), (r.verdict.status, r.verdict.method), "{}", o.id);
    }
    let cut = want[want.len() / 2].meta.start_time;
    let since = store.observations(Some(cut), None, 10_000).expect("observations since");
    let expect_since: Vec<&str> = want
        .iter()
        .filter(|r| r.meta.start_time >= cut)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(since.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), expect_since);
    // A duplicate insert adds nothing.
    insert(store, &records[..20]);
    assert_eq!(store.observations(None, None, 10_000).unwrap().len(), want.len());
}

fn detection(kind: DetectionKind, id: &str, cc: &str, platform: &str, start: i64, end: Option<i64>) -> StoredDetection {
    StoredDetection {
        kind,
        id: id.to_owned(),
        cc: cc.to_owned(),
        domain: if platform.is_empty() {
            String::new()
        } else {
            format!("{platform}.com")
        },
        platform: platform.to_owned(),
        start,
        end,
        updated: 1_700_000_000,
        body: format!(r#"{{"id": "{id}", "note": "it's \"quoted\" ü"}}"#),
    }
}

/// Events and outages: upserts replace by (kind, id), removals remove, `replace_detections`
/// leaves exactly the set given, and every filter agrees with [`DetectionQuery::matches`].
pub fn detections_are_stored_replaced_and_queried(store: &dyn Store) {
    use DetectionKind::{Event, Outage};
    let all_events = DetectionQuery::all(Event);
    assert!(store.detections(&all_events).unwrap().is_empty());
    let mut set = vec![
        detection(Event, "PK-twitter-100", "PK", "twitter", 100, None),
        detection(Event, "PK-youtube-50", "PK", "youtube", 50, Some(400)),
        detection(Event, "IR-twitter-200", "IR", "twitter", 200, Some(300)),
        detection(Event, "IR-o'hara-200", "IR", "o'hara", 200, None),
        detection(Outage, "PK-outage-100", "PK", "", 100, Some(150)),
    ];
    store.put_detections(&set, &[]).unwrap();
    let check = |set: &[StoredDetection]| {
        let mut queries = Vec::new();
        for kind in [Event, Outage] {
            for cc in [None, Some("PK"), Some("IR")] {
                for (domain, platform) in [
                    (None, None),
                    (Some("x"), None),
                    (Some("twitter"), None),
                    (Some("twitter.com"), None),
                    (Some("youtube.com"), Some("twitter")),
                    (Some("o'hara.com"), None),
                ] {
                    for since in [None, Some(299), Some(300), Some(401)] {
                        for open_only in [false, true] {
                            queries.push(DetectionQuery {
                                kind,
                                cc: cc.map(str::to_owned),
                                domain: domain.map(str::to_owned),
                                platform: platform.map(str::to_owned),
                                since,
                                open_only,
                                limit: 0,
                            });
                        }
                    }
                }
            }
        }
        for q in queries {
            let mut want: Vec<&StoredDetection> = set.iter().filter(|d| q.matches(d)).collect();
            want.sort_by(|a, b| (b.start, b.id.as_bytes()).cmp(&(a.start, a.id.as_bytes())));
            let got = store.detections(&q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
            assert_eq!(got.iter().collect::<Vec<_>>(), want, "{q:?}");
        }
        for d in set {
            assert_eq!(store.detection(d.kind, &d.id).unwrap().as_ref(), Some(d));
        }
    };
    check(&set);
    assert_eq!(
        store.detection(Outage, "PK-twitter-100").unwrap(),
        None,
        "ids are per kind"
    );
    assert_eq!(store.detection(Event, "nope").unwrap(), None);
    let limited = DetectionQuery {
        limit: 2,
        ..DetectionQuery::all(Event)
    };
    let got: Vec<String> = store.detections(&limited).unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(got, ["IR-twitter-200", "IR-o'hara-200"]);

    // An update (the event ended) and a removal.
    set[0].end = Some(500);
    set[0].body = r#"{"ended": true}"#.into();
    let removed = set.remove(2);
    store
        .put_detections(&set[..1], &[(Event, removed.id.as_str()), (Event, "never-stored")])
        .unwrap();
    check(&set);
    assert_eq!(store.detection(Event, &removed.id).unwrap(), None);

    // Removed and stored again in one call: stored.
    store
        .put_detections(std::slice::from_ref(&removed), &[(Event, removed.id.as_str())])
        .unwrap();
    set.push(removed);
    check(&set);

    // A recomputation replaces the events and keeps the outages.
    let fresh = vec![
        detection(Event, "PK-twitter-90", "PK", "twitter", 90, None),
        detection(Event, "IR-o'hara-200", "IR", "o'hara", 200, Some(260)),
    ];
    store.replace_detections(&[Event], &fresh).unwrap();
    let mut ids = store.detection_ids(Event).unwrap();
    ids.sort();
    assert_eq!(ids, ["IR-o'hara-200", "PK-twitter-90"]);
    let mut expect = fresh.clone();
    expect.push(set.iter().find(|d| d.kind == Outage).unwrap().clone());
    check(&expect);
    store.replace_detections(&[Event, Outage], &[]).unwrap();
    check(&[]);
    assert!(store.detection_ids(Outage).unwrap().is_empty());
}

/// Aggregation: on an empty store, then over [`filter_dataset`] (plus records without a domain
/// or method and duplicates), every axis alone, pairs, every filter and several bin widths give
/// exactly what [`crate::aggregate::reference`] computes, in its order; bad queries are
/// `BadQuery`.
pub fn aggregations_match_the_reference(store: &dyn Store) {
    use AggregateAxis::*;
    let zero = store
        .aggregate(&AggregateQuery::default())
        .expect("aggregate an empty store");
    assert_eq!(zero.len(), 1, "no axis: one row, even over nothing");
    assert_eq!(zero[0].measurements, 0);
    let none = AggregateQuery {
        axes: vec![Time, Asn],
        ..Default::default()
    };
    assert!(store.aggregate(&none).unwrap().is_empty());

    let mut data = filter_dataset();
    // Same-second bins across a day boundary and an empty-string domain.
    for (i, r) in data.iter_mut().enumerate().filter(|(i, _)| i % 17 == 0) {
        r.meta.start_time = 1_710_028_800 - 1 + (i as i64 % 3);
        if i % 34 == 0 {
            r.meta.domain = Some(String::new());
        }
    }
    insert(store, &data);
    insert(store, &data[..30]);
    let t = |k: i64| 1_710_000_000 + k * 3600;
    let s = |v: &str| Some(v.to_owned());
    let q = |axes: Vec<AggregateAxis>| AggregateQuery {
        axes,
        ..Default::default()
    };
    let cases: Vec<(&str, AggregateQuery)> = vec![
        ("total", q(vec![])),
        ("time", q(vec![Time])),
        ("asn", q(vec![Asn])),
        ("method", q(vec![Method])),
        ("domain", q(vec![Domain])),
        ("cc", q(vec![Cc])),
        ("status", q(vec![Status])),
        ("time x asn", q(vec![Time, Asn])),
        ("asn x time", q(vec![Asn, Time])),
        ("domain x status", q(vec![Domain, Status])),
        ("method x cc", q(vec![Method, Cc])),
        (
            "5-minute bins",
            AggregateQuery {
                bin_seconds: 300,
                ..q(vec![Time, Method])
            },
        ),
        (
            "daily bins",
            AggregateQuery {
                bin_seconds: 86_400,
                ..q(vec![Time, Cc])
            },
        ),
        (
            "two-hour bins",
            AggregateQuery {
                bin_seconds: 7200,
                ..q(vec![Time])
            },
        ),
        (
            "one country, time x asn",
            AggregateQuery {
                probe_cc: s("PK"),
                ..q(vec![Time, Asn])
            },
        ),
        (
            "one country, a platform's domains, a window, time x asn",
            AggregateQuery {
                probe_cc: s("PK"),
                domains: vec!["a.com".into(), "c.net".into()],
                since: Some(t(2)),
                until: Some(t(9)),
                ..q(vec![Time, Asn])
            },
        ),
        (
            "one domain by status",
            AggregateQuery {
                domains: vec!["b.org".into()],
                ..q(vec![Status])
            },
        ),
        (
            "an empty domain is a domain",
            AggregateQuery {
                domains: vec![String::new()],
                ..q(vec![Domain])
            },
        ),
        (
            "one network by method",
            AggregateQuery {
                probe_asn: Some(200),
                ..q(vec![Method])
            },
        ),
        (
            "AS0 counts",
            AggregateQuery {
                probe_asn: Some(0),
                ..q(vec![Cc])
            },
        ),
        (
            "since only",
            AggregateQuery {
                since: Some(t(6)),
                ..q(vec![Time])
            },
        ),
        (
            "until only",
            AggregateQuery {
                until: Some(t(6)),
                ..q(vec![Asn, Status])
            },
        ),
        (
            "a metacharacter domain matches nothing",
            AggregateQuery {
                domains: vec!["x' OR '1'='1".into()],
                ..q(vec![])
            },
        ),
        (
            "nothing matches",
            AggregateQuery {
                probe_cc: s("ZZ"),
                ..q(vec![Time])
            },
        ),
    ];
    for (name, query) in &cases {
        let want = crate::aggregate::reference(&data, query).unwrap();
        let got = store
            .aggregate(query)
            .unwrap_or_else(|e| panic!("aggregate `{name}` ({query:?}): {e}"));
        assert_eq!(got, want, "aggregate `{name}`");
        let total: u64 = got.iter().map(|r| r.measurements).sum();
        let parts: u64 = got.iter().map(|r| r.ok + r.blocked + r.down + r.inconclusive).sum();
        assert_eq!(total, parts, "`{name}`: the statuses add up");
    }
    // Guards against vacuous cases: the interesting ones found something.
    for name in [
        "one country, a platform's domains, a window, time x asn",
        "an empty domain is a domain",
        "AS0 counts",
    ] {
        let (_, query) = cases.iter().find(|(n, _)| *n == name).unwrap();
        let rows = crate::aggregate::reference(&data, query).unwrap();
        assert!(rows.iter().any(|r| r.measurements > 0), "`{name}` is vacuous");
    }
    let everything: u64 = store.aggregate(&q(vec![])).unwrap()[0].measurements;
    assert_eq!(everything, data.len() as u64, "duplicates are counted once");
    for bad in [
        q(vec![Time, Asn, Method]),
        q(vec![Cc, Cc]),
        AggregateQuery {
            bin_seconds: 60,
            ..q(vec![Time])
        },
        AggregateQuery {
            since: Some(t(3)),
            until: Some(t(2)),
            ..q(vec![])
        },
    ] {
        match store.aggregate(&bad) {
            Err(crate::StoreError::BadQuery(_)) => {}
            other => panic!("{bad:?} must be a BadQuery, got {other:?}"),
        }
    }
}

/// Outage signal samples: stored once per (time, ASN, kind) (recording again replaces the value
/// and country), read back in (time, ASN, kind) order page by page with `since` and the cursor,
/// and a bad sample refused without storing any of its batch.
pub fn signal_samples_are_replaced_by_key_and_paged_in_order(store: &dyn Store) {
    use crate::signals::StoredSignalSample;
    let s = |time: i64, asn: u32, kind: &str, value: f64| StoredSignalSample {
        kind: kind.to_owned(),
        asn,
        time,
        cc: "PK".to_owned(),
        value,
    };
    assert!(store.signal_samples(None, None, 100).unwrap().is_empty());
    let mut want = Vec::new();
    for time in [1_700_000_000i64, 1_700_000_300, 1_700_003_600] {
        for asn in [17557u32, 45595, 4_200_000_000] {
            for kind in ["bgp", "control_reachability"] {
                // Counts and halves: ClickHouse 18.16 prints some decimals with a stray last digit.
                want.push(s(
                    time,
                    asn,
                    kind,
                    f64::from(asn % 1000) + (time - 1_700_000_000) as f64 / 600.0,
                ));
            }
        }
    }
    // Stored out of order, in two batches.
    let (a, b) = want.split_at(7);
    assert_eq!(store.put_signal_samples(b).unwrap(), b.len() as u64);
    assert_eq!(store.put_signal_samples(a).unwrap(), a.len() as u64);
    // Recording the same key again replaces it.
    let mut again = s(1_700_000_300, 45595, "bgp", 0.5);
    again.cc = "AF".to_owned();
    store.put_signal_samples(std::slice::from_ref(&again)).unwrap();
    for w in &mut want {
        if w.cursor() == again.cursor() {
            *w = again.clone();
        }
    }
    want.sort_by_key(StoredSignalSample::cursor);
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = store.signal_samples(None, after.as_ref(), 4).expect("signal samples");
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        got.extend(page);
    }
    assert_eq!(
        got, want,
        "each sample once, in (time, asn, kind) order, the latest value"
    );
    let since = store.signal_samples(Some(1_700_000_300), None, 1000).unwrap();
    assert_eq!(since, want[6..].to_vec());
    // A bad sample: nothing of its batch is stored.
    let bad = [s(1_800_000_000, 1, "bgp", 1.0), s(1_800_000_000, 2, "bgp", f64::NAN)];
    assert!(matches!(
        store.put_signal_samples(&bad),
        Err(crate::StoreError::BadQuery(_))
    ));
    let mut kind = s(1_800_000_000, 3, "bgp' OR '1'='1", 1.0);
    assert!(store.put_signal_samples(std::slice::from_ref(&kind)).is_err());
    kind.kind = "bgp".to_owned();
    kind.cc = "pk".to_owned();
    assert!(store.put_signal_samples(&[kind]).is_err());
    assert_eq!(store.signal_samples(Some(1_800_000_000), None, 10).unwrap(), vec![]);
    assert_eq!(store.put_signal_samples(&[]).unwrap(), 0);
}

/// Where each network's probes are: distinct measurements per (probe_asn, probe_cc), sorted,
/// a duplicate insert counted once.
pub fn asn_countries_count_measurements_per_pair(store: &dyn Store) {
    assert!(store.asn_countries().unwrap().is_empty());
    let mut records = unique_records(&small_fixture_records(64 * 1024), "asncc", 12);
    let pairs = [(17557u32, "PK"), (17557, "PK"), (17557, "AE"), (45595, "PK"), (0, "ZZ")];
    for (i, r) in records.iter_mut().enumerate() {
        let (asn, cc) = pairs[i % pairs.len()];
        r.meta.probe_asn = asn;
        r.meta.probe_cc = cc.to_owned();
    }
    insert(store, &records);
    insert(store, &records[..5]);
    let mut want: BTreeMap<(u32, String), u64> = BTreeMap::new();
    for r in &records {
        *want.entry((r.meta.probe_asn, r.meta.probe_cc.clone())).or_default() += 1;
    }
    let want: Vec<crate::AsnCountry> = want
        .into_iter()
        .map(|((asn, cc), measurements)| crate::AsnCountry { asn, cc, measurements })
        .collect();
    assert_eq!(store.asn_countries().unwrap(), want);
}

/// Redaction (see [`crate::redaction`]): the measurement disappears from every read, its leaf
/// index still counts for [`Store::max_leaf_index`], the record is kept and listed, redacting
/// again changes nothing, and inserting the same measurement again stores nothing.
pub fn a_redacted_measurement_is_gone_for_good(store: &dyn Store) {
    let records = distinct(&fixture_records());
    let with_domain: Vec<&Record> = records.iter().filter(|r| r.meta.domain.is_some()).collect();
    assert!(with_domain.len() >= 3, "the fixtures hold measurements with domains");
    let (logged, unlogged) = (with_domain[0].clone(), with_domain[1].clone());
    insert(store, &records);
    let leaves: Vec<(&str, u64)> = records
        .iter()
        .filter(|r| r.id != unlogged.id)
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i as u64))
        .collect();
    store.set_leaf_indexes(&leaves).unwrap();
    let logged_index = store.leaf_index(&logged.id).unwrap().expect("logged above");
    let max_before = store.max_leaf_index().unwrap();
    let total = records.len() as u64;
    let observed = |store: &dyn Store| -> Vec<String> {
        store
            .observations(None, None, 100_000)
            .unwrap()
            .into_iter()
            .map(|o| o.id)
            .collect()
    };
    assert!(observed(store).contains(&logged.id));

    assert_eq!(store.redact("no-such-id", "x", 1).unwrap(), None, "an unknown id");
    assert_eq!(store.redaction("no-such-id").unwrap(), None);
    let first = store
        .redact(&logged.id, "it names the probe's owner", 2_000)
        .unwrap()
        .expect("a stored id is redacted");
    let want = Redaction {
        id: logged.id.clone(),
        leaf_index: Some(logged_index),
        reason: "it names the probe's owner".into(),
        time: 2_000,
    };
    assert_eq!(first, want);
    assert_eq!(store.redaction(&logged.id).unwrap(), Some(want.clone()));

    // Gone from every read.
    assert_eq!(get(store, &logged.id), None);
    assert_eq!(count(store), total - 1);
    let listed = query_all(store, &MeasurementQuery::default());
    assert_eq!(listed.len() as u64, total - 1);
    assert!(listed.iter().all(|r| r.id != logged.id));
    let domain = logged.meta.domain.clone().unwrap();
    assert!(
        query_all(
            store,
            &MeasurementQuery {
                domain: Some(domain.clone()),
                ..Default::default()
            }
        )
        .iter()
        .all(|r| r.id != logged.id)
    );
    let aggregated: u64 = store
        .aggregate(&AggregateQuery::default())
        .unwrap()
        .iter()
        .map(|r| r.measurements)
        .sum();
    assert_eq!(aggregated, total - 1, "aggregation leaves it out");
    assert!(!observed(store).contains(&logged.id), "the detector no longer sees it");
    assert_eq!(store.leaf_index(&logged.id).unwrap(), None);
    assert_eq!(store.unlogged_among(&[&logged.id]).unwrap(), Vec::<String>::new());
    assert_eq!(store.unlogged_count().unwrap(), 1, "only the measurement never logged");
    assert_eq!(
        store.max_leaf_index().unwrap(),
        max_before,
        "its leaf stays in the log, so its index still counts"
    );

    // Idempotent: the first record stands.
    assert_eq!(
        store.redact(&logged.id, "another reason", 3_000).unwrap(),
        Some(want.clone())
    );
    // Never stored again.
    let again = insert(store, std::slice::from_ref(&logged));
    assert_eq!(
        again,
        InsertReport {
            stored: 0,
            duplicates: 1
        }
    );
    assert_eq!(get(store, &logged.id), None);
    assert_eq!(count(store), total - 1);
    assert_eq!(store.unlogged_among(&[&logged.id]).unwrap(), Vec::<String>::new());

    // A measurement not yet logged has no leaf index to record.
    let second = store.redact(&unlogged.id, "court order", 2_500).unwrap().unwrap();
    assert_eq!(second.leaf_index, None);
    assert_eq!(store.unlogged_count().unwrap(), 0);
    assert_eq!(count(store), total - 2);
    // The others are untouched.
    let other = with_domain[2];
    assert!(get(store, &other.id).is_some_and(|r| r.raw == other.raw));

    // The public list: latest first, paged by (time, id).
    assert_eq!(store.redactions(None, 10).unwrap(), vec![second.clone(), want.clone()]);
    assert_eq!(store.redactions(None, 1).unwrap(), vec![second.clone()]);
    assert_eq!(
        store.redactions(Some((second.time, &second.id)), 10).unwrap(),
        vec![want]
    );
}
