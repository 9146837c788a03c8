//! Fingerprint matching throughput on real pages: the shipped OONI set against ~100 KB HTML bodies
//! with no blockpage, with a blockpage iframe, and a page that only matches a known-false-positive
//! regexp; plus header and DNS matching and the cost of compiling the set.
//!
//! The pages come from the test fixtures (`testdata/ooni/real_measurements_combined.jsonl`), read
//! here at start-up (the library itself does no I/O).

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use censorwatch_model::Measurement;
use censorwatch_verdict::fingerprint::{BUILTIN_DNS_CSV, BUILTIN_HTTP_CSV, FingerprintDb};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;

/// The first HTTP body, at least 20 KB long, of a request whose URL contains `needle`.
fn real_body(needle: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni/real_measurements_combined.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for line in text.lines() {
        let m = Measurement::from_slice(line.as_bytes()).expect("fixture parses");
        let Ok(Some(keys)) = m.web_connectivity() else { continue };
        for tx in keys.requests.iter().flatten() {
            let url = tx.request.as_ref().and_then(|r| r.url.as_deref()).unwrap_or("");
            let body = tx
                .response
                .as_ref()
                .and_then(|r| r.body.as_ref())
                .and_then(|b| b.bytes());
            if let Some(body) = body.filter(|b| b.len() >= 20_000 && url.contains(needle)) {
                return body.into_owned();
            }
        }
    }
    panic!("no body for {needle} in {}", path.display());
}

/// Cuts `body` to about `len` bytes, at the end of a tag.
fn cut(body: &[u8], len: usize) -> Vec<u8> {
    let end = body[len..]
        .iter()
        .position(|&b| b == b'>')
        .map_or(body.len(), |p| len + p + 1);
    body[..end].to_vec()
}

fn bench_bodies(c: &mut Criterion) {
    let db = FingerprintDb::builtin();
    // csmonitor.com's home page, first ~100 KB, with its `twitter:card` meta tag renamed: the tag
    // alone matches the known-false-positive regexp `cp.fp_r_fp_6`, and this body must match nothing.
    let plain = cut(&real_body("csmonitor.com"), 100_000);
    let plain = String::from_utf8(plain)
        .expect("UTF-8 page")
        .replace("twitter:card", "twitter:site")
        .into_bytes();
    assert!(
        db.match_body_all(&plain).is_empty(),
        "{:?}",
        db.match_body(&plain).map(|f| &f.name)
    );
    // The same page with Mobilink/Jazz's blockpage iframe (ooni.pk_1) injected near the end.
    let mut blocked = plain.clone();
    let at = blocked.len() - 200;
    let iframe = br#"<iframe src="http://119.73.65.87:8080/redirect.html?accessurl=d3d3LmV4YW1wbGUuY29t&urlclass=NTM=" style="width:100%;height:100%"></iframe>"#;
    blocked.splice(at..at, iframe.iter().copied());
    assert_eq!(db.match_body(&blocked).map(|f| f.name.as_str()), Some("ooni.pk_1"));
    // mozilla.org's Firefox download page (115 KB): only `cp.fp_r_fp_6`, a false-positive regexp
    // (`<meta name=.*twitter:card`), so the regexp path runs too.
    let mozilla = real_body("mozilla.org");
    assert!(db.match_body_all(&mozilla).iter().all(|f| f.is_false_positive()));

    let mut group = c.benchmark_group("match_body");
    for (name, body) in [
        ("no_match_100k", &plain),
        ("pk_iframe_100k", &blocked),
        ("mozilla_fp_regexp_115k", &mozilla),
    ] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| db.match_body(black_box(body)))
        });
    }
    group.finish();
}

fn bench_small(c: &mut Criterion) {
    let db = FingerprintDb::builtin();
    c.bench_function("match_header/location_no_match", |b| {
        b.iter(|| {
            db.match_header(
                black_box("Location"),
                black_box(b"https://www.example.com/en-US/index.html?ref=home"),
            )
        })
    });
    c.bench_function("match_header/server_match", |b| {
        b.iter(|| db.match_header(black_box("Server"), black_box(b"V2R2C00-IAE/1.0")))
    });
    c.bench_function("match_dns_answer/no_match", |b| {
        b.iter(|| db.match_dns_answer(black_box("93.184.216.34")))
    });
    c.bench_function("from_csv/builtin", |b| {
        b.iter(|| FingerprintDb::from_csv(black_box(BUILTIN_DNS_CSV), black_box(BUILTIN_HTTP_CSV)).unwrap())
    });
}

criterion_group!(benches, bench_bodies, bench_small);
criterion_main!(benches);
