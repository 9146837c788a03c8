//! The expected-origins table: which AS(es) are supposed to originate a prefix and, by longest
//! covering match, its more-specifics.
//!
//! It is filled from a prefix-to-AS text table ([`OriginTable::read_text`]: pyasn's `ipasn` files
//! and CAIDA's RouteViews prefix2as files), from RIB dumps, and from the first origin seen in
//! updates for a prefix nothing covers yet. The monitor decides which of these to add; this module
//! only stores and answers.

use crate::input;
use crate::prefix_map::PrefixMap;
use ipnet::IpNet;
use serde::Serialize;
use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// Where an expectation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectationSource {
    /// A prefix-to-AS table given with `--origins`.
    Table,
    /// A RIB dump entry.
    Rib,
    /// The first origin seen in an UPDATE for a prefix nothing covered yet.
    Updates,
}

impl fmt::Display for ExpectationSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpectationSource::Table => "table",
            ExpectationSource::Rib => "rib",
            ExpectationSource::Updates => "updates",
        })
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// Sorted, no duplicates; usually one.
    origins: Vec<u32>,
    source: ExpectationSource,
}

/// The expectation that applies to a prefix: the most specific stored prefix covering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The stored prefix: the queried one itself or one covering it.
    pub prefix: IpNet,
    /// The origins expected for it, sorted.
    pub origins: &'a [u32],
    /// Where the first of them came from.
    pub source: ExpectationSource,
}

impl Expected<'_> {
    /// Whether `asn` is among the expected origins.
    pub fn allows(&self, asn: u32) -> bool {
        self.origins.binary_search(&asn).is_ok()
    }
}

/// A prefix-to-origins table with longest covering lookups.
#[derive(Debug, Clone, Default)]
pub struct OriginTable {
    map: PrefixMap<Entry>,
}

/// Why a prefix-to-AS table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OriginsError {
    /// The file could not be opened or read (or decompressed).
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A line is neither a comment nor `PREFIX ASN` / `ADDRESS LENGTH ASN`.
    #[error("{file}:{line}: {message}: {text:?}")]
    Line {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
        /// The line (cut to 100 characters).
        text: String,
    },
}

impl OriginTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of prefixes with an expectation.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no prefix has an expectation.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Adds `origin` to the expected origins of exactly `prefix`. A prefix keeps the source it was
    /// first added with.
    pub fn insert(&mut self, prefix: IpNet, origin: u32, source: ExpectationSource) {
        let entry = self.map.get_or_insert_with(&prefix.trunc(), || Entry {
            origins: Vec::new(),
            source,
        });
        if let Err(at) = entry.origins.binary_search(&origin) {
            entry.origins.insert(at, origin);
        }
    }

    /// The expectation for `prefix`: from its own entry or else from the most specific covering
    /// prefix that has one.
    pub fn lookup(&self, prefix: &IpNet) -> Option<Expected<'_>> {
        self.map.longest_covering(prefix).map(|(prefix, e)| Expected {
            prefix,
            origins: &e.origins,
            source: e.source,
        })
    }

    /// The expectation stored for exactly `prefix`.
    pub fn exact(&self, prefix: &IpNet) -> Option<Expected<'_>> {
        self.map.get(&prefix.trunc()).map(|e| Expected {
            prefix: prefix.trunc(),
            origins: &e.origins,
            source: e.source,
        })
    }

    /// How many prefixes came from each source: (table, rib, updates).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.map.iter().fold((0, 0, 0), |(t, r, u), (_, e)| match e.source {
            ExpectationSource::Table => (t + 1, r, u),
            ExpectationSource::Rib => (t, r + 1, u),
            ExpectationSource::Updates => (t, r, u + 1),
        })
    }

    /// Reads a prefix-to-AS table (gzip or bzip2 compressed or not, told by its first bytes).
    pub fn load(path: &Path) -> Result<OriginTable, OriginsError> {
        let file = path.display().to_string();
        let io_error = |source| OriginsError::Io {
            file: file.clone(),
            source,
        };
        let raw = std::fs::File::open(path).map_err(io_error)?;
        let (_, reader) = input::decompress(BufReader::new(raw)).map_err(io_error)?;
        let mut table = OriginTable::new();
        table.read_text(BufReader::new(reader), &file)?;
        Ok(table)
    }

    /// Adds every line of a prefix-to-AS text table to this one, as [`ExpectationSource::Table`].
    ///
    /// Accepted lines: `PREFIX/LEN<whitespace>ASN` (pyasn `ipasn` files) and
    /// `ADDRESS<whitespace>LEN<whitespace>ASN` (CAIDA RouteViews prefix2as). ASN may be several
    /// joined by `_` (multiple origins) or `,` (an AS set), may have an `AS` prefix, and may be in
    /// asdot notation (`1.10`). Blank lines and lines starting with `;` or `#` are skipped.
    /// Returns the number of prefixes read; `name` is used in errors.
    pub fn read_text(&mut self, reader: impl BufRead, name: &str) -> Result<u64, OriginsError> {
        let mut read = 0;
        for (index, line) in reader.lines().enumerate() {
            let line_no = index as u64 + 1;
            let line = line.map_err(|source| OriginsError::Io {
                file: name.to_string(),
                source,
            })?;
            let text = line.trim();
            if text.is_empty() || text.starts_with(';') || text.starts_with('#') {
                continue;
            }
            let bad = |message: &str| OriginsError::Line {
                file: name.to_string(),
                line: line_no,
                message: message.to_string(),
                text: text.chars().take(100).collect(),
            };
            let (prefix, asns) = parse_line(text).map_err(|m| bad(&m))?;
            for asn in asns {
                self.insert(prefix, asn, ExpectationSource::Table);
            }
            read += 1;
        }
        Ok(read)
    }
}

fn parse_line(text: &str) -> Result<(IpNet, Vec<u32>), String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let (prefix, asns) = match fields.as_slice() {
        [prefix, asns] if prefix.contains('/') => (prefix.parse::<IpNet>().map_err(|e| e.to_string())?, *asns),
        [address, len, asns] => {
            let prefix = format!("{address}/{len}");
            (prefix.parse::<IpNet>().map_err(|e| format!("{prefix}: {e}"))?, *asns)
        }
        _ => return Err("expected `PREFIX ASN` or `ADDRESS LENGTH ASN`".into()),
    };
    let asns = asns
        .split(['_', ','])
        .map(|a| parse_asn(a.trim_matches(['{', '}'])).ok_or_else(|| format!("bad AS number {a:?}")))
        .collect::<Result<Vec<u32>, String>>()?;
    Ok((prefix.trunc(), asns))
}

/// `13335`, `AS13335`, or asdot `1.10` (= 65546).
pub(crate) fn parse_asn(text: &str) -> Option<u32> {
    let text = text
        .strip_prefix("AS")
        .or_else(|| text.strip_prefix("as"))
        .unwrap_or(text);
    match text.split_once('.') {
        Some((high, low)) => {
            let (high, low) = (high.parse::<u16>().ok()?, low.parse::<u16>().ok()?);
            Some((u32::from(high) << 16) | u32::from(low))
        }
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn reads_pyasn_and_caida_lines() {
        let text = "; IP-ASN-DAT file\n; comment\n\n208.65.152.0/22\t36561\n\
                    208.65.153.0/24\t36561\n1.2.3.0 24 100_200\n5.6.0.0\t16\t{7,8}\n9.9.9.9/8 AS1.10\n";
        let mut t = OriginTable::new();
        assert_eq!(t.read_text(text.as_bytes(), "t").unwrap(), 5);
        assert_eq!(t.len(), 5);
        let e = t.lookup(&p("208.65.153.128/25")).unwrap();
        assert_eq!(
            (e.prefix, e.origins, e.source),
            (p("208.65.153.0/24"), &[36561][..], ExpectationSource::Table)
        );
        assert!(e.allows(36561) && !e.allows(17557));
        assert_eq!(t.lookup(&p("208.65.154.0/24")).unwrap().prefix, p("208.65.152.0/22"));
        assert_eq!(t.exact(&p("1.2.3.0/24")).unwrap().origins, &[100, 200]);
        assert_eq!(t.exact(&p("5.6.0.0/16")).unwrap().origins, &[7, 8]);
        assert_eq!(t.exact(&p("9.0.0.0/8")).unwrap().origins, &[65546]);
        assert!(t.lookup(&p("10.0.0.0/8")).is_none());
    }

    #[test]
    fn reports_the_bad_line() {
        let err = OriginTable::new()
            .read_text("1.0.0.0/8 1\n1.0.0.0/8 x\n".as_bytes(), "f.dat")
            .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("f.dat:2: bad AS number"), "{message}");
        let err = OriginTable::new()
            .read_text("garbage\n".as_bytes(), "f.dat")
            .unwrap_err();
        assert!(err.to_string().contains("f.dat:1: expected"), "{err}");
    }

    #[test]
    fn every_kind_of_bad_line_is_an_error_naming_its_line() {
        for (text, want) in [
            ("1.0.0.0/33\t1\n", "invalid IP address syntax"),
            ("1.0.0.0 33 1\n", "1.0.0.0/33"),
            ("1.0.0.0/8\t4294967296\n", "bad AS number"),
            ("1.0.0.0/8\tAS\n", "bad AS number"),
            ("1.0.0.0/8\t1_\n", "bad AS number"),
            ("1.0.0.0/8\t1.70000\n", "bad AS number"),
            ("1.0.0.0/8\n", "expected `PREFIX ASN`"),
            ("1.0.0.0/8 1 2 3\n", "expected `PREFIX ASN`"),
            ("1.0.0.0 8\n", "expected `PREFIX ASN`"),
        ] {
            let input = format!("; header\n2.0.0.0/8\t2\n{text}");
            let err = OriginTable::new().read_text(input.as_bytes(), "t.dat").unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with("t.dat:3: "), "{text:?}: {message}");
            assert!(message.contains(want), "{text:?}: {message}");
        }
    }

    #[test]
    fn reads_ipv6_and_clears_host_bits() {
        let mut t = OriginTable::new();
        t.read_text("2001:db8::/32\t64496\n10.1.2.3/8 7\n".as_bytes(), "t")
            .unwrap();
        assert_eq!(t.lookup(&p("2001:db8:1::/48")).unwrap().origins, &[64496]);
        assert_eq!(t.exact(&p("10.0.0.0/8")).unwrap().origins, &[7]);
    }

    #[test]
    fn loads_a_compressed_table_and_reports_a_missing_one() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("censorwatch-bgp-origins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("table.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"; pyasn\n208.65.152.0/22\t36561\n").unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let t = OriginTable::load(&path).unwrap();
        assert_eq!(t.lookup(&p("208.65.153.0/24")).unwrap().origins, &[36561]);
        let err = OriginTable::load(&dir.join("missing.dat")).unwrap_err();
        assert!(matches!(err, OriginsError::Io { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn first_source_sticks_and_origins_stay_sorted() {
        let mut t = OriginTable::new();
        t.insert(p("10.0.0.0/8"), 30, ExpectationSource::Rib);
        t.insert(p("10.0.0.0/8"), 10, ExpectationSource::Updates);
        t.insert(p("10.0.0.0/8"), 30, ExpectationSource::Updates);
        let e = t.exact(&p("10.0.0.0/8")).unwrap();
        assert_eq!((e.origins, e.source), (&[10, 30][..], ExpectationSource::Rib));
        assert_eq!(t.counts(), (0, 1, 0));
    }
}
