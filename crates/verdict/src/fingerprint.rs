//! Blockpage fingerprints in OONI's CSV format, and a fast matcher over DNS answers, HTTP bodies
//! and HTTP headers.
//!
//! # Format
//!
//! Two CSV files, one for DNS and one for HTTP, as kept in `github.com/ooni/blocking-fingerprints`
//! (`fingerprints_dns.csv`, `fingerprints_http.csv`), with the header
//! `name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes`.
//! The meaning of each column is that repository's `Readme.md` ("Schema"):
//!
//! * `location_found` is `dns`, `body` or `header.<lowercase header name>`;
//! * `pattern_type` is `full` (`==`), `prefix` (starts with), `contains` (substring) or `regexp`;
//! * `scope` is Citizen Lab's: `nat` national blockpage, `isp` one ISP, `prod` a filtering product,
//!   `inst` an institution (school, office), `vbw` a vague blocking word, `fp` a known false
//!   positive; the data also uses `injb` (a benign injection) and `prov` (the content provider's own
//!   geoblock);
//! * `confidence_no_fp` is a self-assessed 0–10 "how unlikely to be a false positive";
//! * `expected_countries` is a comma-separated list of country codes.
//!
//! [`FingerprintDb::builtin`] is the set shipped in `crates/verdict/data/` (see the README there);
//! [`FingerprintDb::from_csv`] takes any newer set as text. The crate does no I/O: reading the
//! files is the caller's business.
//!
//! # Matching
//!
//! Every pattern type has its documented meaning wherever it is found: `full` is equality of the
//! whole value, `prefix` is "starts with", `contains` is a substring search, `regexp` is an
//! unanchored regular-expression search. Patterns are UTF-8 text compared with the raw bytes of the
//! body or header value, exactly as they are written (no trimming, no case folding).
//!
//! * DNS answers are compared after normalisation: IP addresses in their canonical text form
//!   (`d0:0::11` is `d0::11`), host names lowercased without a trailing dot.
//! * Header names are case-insensitive (`Server` finds `header.server`).
//! * Regexps follow Python's `re` syntax, in which Censored Planet wrote most of them: a `{` that
//!   does not start a repetition is a literal (`{"msg":.*"id":`) and `{,n}` means `{0,n}`; both are
//!   translated for Rust's `regex`. They run on the value decoded as UTF-8 with invalid bytes
//!   replaced by U+FFFD, so that `.` steps over a byte of a legacy encoding (windows-1251, GBK…) as
//!   it would over a character. `.` does not match `\n`. Look-around and backreferences are not
//!   supported (no shipped fingerprint uses them; [`FingerprintDb::from_csv`] reports any that does).
//!
//! When several fingerprints match, the best one is a censorship fingerprint before a known false
//! positive ([`Scope::Fp`]), then the higher `confidence_no_fp`, then the earlier row (DNS file
//! first, then HTTP file).
//!
//! # Where we differ from OONI fastpath, and why
//!
//! OONI's fastpath (`ooni/backend` `fastpath/fastpath/core.py`, `match_fingerprints` and the two
//! `match_http_*_fingerprints` functions) applies the same CSV rows with simpler rules:
//!
//! | case | fastpath | censorwatch | why |
//! |---|---|---|---|
//! | body, `prefix` / `full` | substring search | starts with / equals | the README defines these types; `cl.susp_blankhtml_1` (full `<HTML></HTML>`) must not fire on every page that *contains* an empty document |
//! | body, `regexp` | substring search of the regexp's *source text* (almost never matches) | regexp search | the 14 Censored Planet regexps were written as regexps |
//! | header, `contains` / `regexp` | ignored (only `full` and `prefix` are tried) | substring / regexp search | 118 `header.location` rows are `contains` (e.g. Check Point's `/UserCheck/PortalMain?IID=`) |
//! | header, `full`, base64-encoded value | compares the JSON object, never equal | compares the decoded bytes | the value is what the server sent |
//! | DNS | exact string equality | equality after normalisation (above) | one address has many spellings |
//! | [`Fingerprint::confirms_in`] for [`Scope::Fp`] | a country match confirms | never confirms | a known false positive is not blocking (no shipped `fp` row lists countries, so no difference today) |
//!
//! The fixture-level consequences are listed in `crates/verdict/tests/README.md`.
//!
//! # Speed
//!
//! Body matching runs on every HTTP response of every measurement, so it must run at GB/s. One
//! Aho–Corasick automaton over the 1,291 distinct body literals of the shipped set does not: its
//! DFA is 57 MB (a cache miss on most steps) and its NFA keeps following failure links on HTML text;
//! both ran at 135–340 MB/s on the development machine (`aho-corasick` 1.1, overlapping search,
//! 100 KB real pages). The body matcher instead uses:
//!
//! * **sampled gram filters** for literals of 8 bytes or more. For literals of length ≥ `L` and a
//!   gram width `q`, every occurrence contains a body position `i` that is a multiple of
//!   `s = L - q + 1` with the gram `i..i + q` inside the occurrence. For each literal and each offset
//!   class modulo `s`, one `q`-byte gram of that class goes into a bit filter and a table; the scan
//!   reads one gram every `s` bytes (four per loop step), tests one bit each, and only on a hit looks
//!   the gram up and compares the candidate literals in place. No occurrence can be missed (proof at
//!   `GramTier`), and a literal is reported only after a full comparison. Tiers: `L = 16, q = 8,
//!   s = 9` and `L = 8, q = 4, s = 5` (the best of the splits tried). The gram kept for a class is
//!   the one least likely in a page: rare bytes (a byte-frequency table of real pages), not shared
//!   by many literals, free of markup and URL scaffolding (`http`, `www.`, `<div`, `class`, …);
//! * an [`AhoCorasick`] automaton (leftmost-first, which lets it use its SIMD "Teddy" prefilter for
//!   up to 64 patterns) for the few literals shorter than 8 bytes, restarted one byte after each
//!   match start so that every start position is visited, with every short literal compared there;
//! * direct comparisons at offset 0 for body `full` / `prefix` rows (a handful; the cost does not
//!   depend on the body's length);
//! * for each regexp, the literal texts it requires (`required_literals`: `If you believe the …`
//!   and `http://www.internet.gov.sa` in `If you believe.*http://www\.internet\.gov\.sa`) join
//!   the literal search, and the regexp runs only on bodies that contain all of them; regexps with
//!   no readable literal run as a [`RegexSet`] on every body. Text is decoded once, and only then.
//!
//! Measured with `cargo bench -p censorwatch-verdict --bench fingerprints` (criterion medians, one
//! core of the 2-core development VM, shipped set): ~2.0 GiB/s on 100–115 KB real pages with no
//! match, with a blockpage iframe, and with a false-positive regexp match; 13 ms to compile the set.
//!
//! Header values and DNS answers are short: each header name has an [`AhoCorasick`] automaton over
//! its literals (overlapping search, position checked afterwards for `full` / `prefix`) and a
//! [`RegexSet`] for its regexps; DNS `full` rows are a hash map.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

/// The DNS fingerprints shipped with censorwatch (ooni/blocking-fingerprints, see `data/README.md`).
pub const BUILTIN_DNS_CSV: &str = include_str!("../data/ooni_fingerprints_dns.csv");
/// The HTTP fingerprints shipped with censorwatch (ooni/blocking-fingerprints, see `data/README.md`).
pub const BUILTIN_HTTP_CSV: &str = include_str!("../data/ooni_fingerprints_http.csv");

/// The CSV header OONI uses, in order.
pub const CSV_COLUMNS: [&str; 11] = [
    "name",
    "scope",
    "other_names",
    "location_found",
    "pattern_type",
    "pattern",
    "confidence_no_fp",
    "expected_countries",
    "source",
    "exp_url",
    "notes",
];

/// Columns a CSV must have (the ones fastpath reads); `source`, `exp_url` and `notes` may be absent.
const REQUIRED_COLUMNS: [&str; 8] = [
    "name",
    "scope",
    "other_names",
    "location_found",
    "pattern_type",
    "pattern",
    "confidence_no_fp",
    "expected_countries",
];

// ---------------------------------------------------------------------------------------------
// Fingerprint data types
// ---------------------------------------------------------------------------------------------

/// Where a fingerprint is looked for (`location_found`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A DNS answer (`dns`): an IP address or a CNAME target.
    Dns,
    /// The HTTP response body (`body`).
    Body,
    /// An HTTP response header (`header.<name>`); the name is lowercase.
    Header(String),
}

impl Location {
    /// Parses a `location_found` value: `dns`, `body` or `header.<name>` (any case).
    pub fn parse(s: &str) -> Option<Location> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("dns") {
            Some(Location::Dns)
        } else if s.eq_ignore_ascii_case("body") {
            Some(Location::Body)
        } else {
            let (prefix, name) = s.split_at_checked(7)?;
            let name = name.trim();
            let valid = name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            (prefix.eq_ignore_ascii_case("header.") && !name.is_empty() && valid)
                .then(|| Location::Header(name.to_ascii_lowercase()))
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dns => f.write_str("dns"),
            Location::Body => f.write_str("body"),
            Location::Header(name) => write!(f, "header.{name}"),
        }
    }
}

/// How the pattern is compared (`pattern_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternType {
    /// The whole value equals the pattern (`full`).
    Full,
    /// The value starts with the pattern (`prefix`).
    Prefix,
    /// The value contains the pattern (`contains`).
    Contains,
    /// A regular expression found anywhere in the value (`regexp`).
    Regexp,
}

impl PatternType {
    /// Parses a `pattern_type` value (any case, surrounding spaces ignored).
    pub fn parse(s: &str) -> Option<PatternType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Some(PatternType::Full),
            "prefix" => Some(PatternType::Prefix),
            "contains" => Some(PatternType::Contains),
            "regexp" => Some(PatternType::Regexp),
            _ => None,
        }
    }

    /// The CSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PatternType::Full => "full",
            PatternType::Prefix => "prefix",
            PatternType::Contains => "contains",
            PatternType::Regexp => "regexp",
        }
    }
}

impl fmt::Display for PatternType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who deploys the blockpage (`scope`, Citizen Lab's vocabulary).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A national blockpage (`nat`).
    Nat,
    /// One ISP's blockpage (`isp`).
    Isp,
    /// A commercial filtering product (`prod`).
    Prod,
    /// A voluntary institutional filter: school, office, library (`inst`).
    Inst,
    /// A vague blocking word, not tied to one deployment (`vbw`).
    Vbw,
    /// A benign injection, e.g. a router's "update your firmware" page (`injb`).
    Injb,
    /// The content provider's own restriction, e.g. a geoblock (`prov`).
    Prov,
    /// A scope this version does not know, kept verbatim.
    Other(String),
    /// A known false positive (`fp`): the pattern marks a page that is *not* a blockpage.
    Fp,
}

impl Scope {
    /// Parses a `scope` value; unknown values become [`Scope::Other`].
    pub fn parse(s: &str) -> Scope {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "nat" => Scope::Nat,
            "isp" => Scope::Isp,
            "prod" => Scope::Prod,
            "inst" => Scope::Inst,
            "vbw" => Scope::Vbw,
            "injb" => Scope::Injb,
            "prov" => Scope::Prov,
            "fp" => Scope::Fp,
            _ => Scope::Other(s.to_owned()),
        }
    }

    /// The CSV spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Scope::Nat => "nat",
            Scope::Isp => "isp",
            Scope::Prod => "prod",
            Scope::Inst => "inst",
            Scope::Vbw => "vbw",
            Scope::Injb => "injb",
            Scope::Prov => "prov",
            Scope::Fp => "fp",
            Scope::Other(s) => s,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fingerprint: one row of the CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Identifier, e.g. `ooni.pk_3`.
    pub name: String,
    /// Who deploys it.
    pub scope: Scope,
    /// Names of the same fingerprint in other collections (`cl.…`, `cp.…`).
    pub other_names: Vec<String>,
    /// Where it is looked for.
    pub location: Location,
    /// How the pattern is compared.
    pub pattern_type: PatternType,
    /// The pattern, verbatim.
    pub pattern: String,
    /// Self-assessed 0–10: higher means less likely to be a false positive.
    pub confidence_no_fp: u8,
    /// Country codes (uppercase) where this blockpage is expected.
    pub expected_countries: Vec<String>,
    /// Where the fingerprint came from (free text, may be a list of URLs).
    pub source: String,
    /// An OONI Explorer measurement showing it.
    pub exp_url: String,
    /// Free-form notes.
    pub notes: String,
}

impl Fingerprint {
    /// Whether a match confirms blocking for a probe in `cc`: OONI fastpath's rule (`core.py`,
    /// scoring of fingerprint matches) is scope `nat` or `isp`, or `cc` among the expected countries.
    /// A known false positive ([`Scope::Fp`]) never confirms anything.
    pub fn confirms_in(&self, cc: &str) -> bool {
        match self.scope {
            Scope::Fp => false,
            Scope::Nat | Scope::Isp => true,
            _ => self
                .expected_countries
                .iter()
                .any(|c| c.eq_ignore_ascii_case(cc.trim())),
        }
    }

    /// Whether this is a known false-positive pattern rather than a blockpage.
    pub fn is_false_positive(&self) -> bool {
        self.scope == Scope::Fp
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Which of the two CSV files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintFile {
    /// The DNS fingerprint CSV.
    Dns,
    /// The HTTP fingerprint CSV.
    Http,
}

impl fmt::Display for FingerprintFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FingerprintFile::Dns => "DNS fingerprint CSV",
            FingerprintFile::Http => "HTTP fingerprint CSV",
        })
    }
}

/// What is wrong in a fingerprint CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FingerprintProblem {
    /// The text is not readable as CSV (bad quoting, invalid UTF-8).
    Csv(String),
    /// There is no header line.
    Empty,
    /// The header lacks these columns.
    MissingColumns(Vec<String>),
    /// A row has a different number of fields than the header.
    FieldCount {
        /// Fields in the header.
        expected: u64,
        /// Fields in the row.
        found: u64,
    },
    /// A field that must not be empty is empty (the column name).
    EmptyField(&'static str),
    /// `pattern_type` is not `full`, `prefix`, `contains` or `regexp`.
    BadPatternType(String),
    /// `location_found` is not `dns`, `body` or `header.<name>`.
    BadLocation(String),
    /// `location_found` belongs in the other file.
    WrongFile(String),
    /// `confidence_no_fp` is not a whole number from 0 to 255.
    BadConfidence(String),
    /// The regexp does not compile (the compiler's message).
    BadRegexp(String),
    /// The patterns together are too large to compile (the compiler's message).
    TooLarge(String),
}

impl FingerprintProblem {
    fn hint(&self, file: FingerprintFile) -> String {
        let other = match file {
            FingerprintFile::Dns => FingerprintFile::Http,
            FingerprintFile::Http => FingerprintFile::Dns,
        };
        match self {
            FingerprintProblem::Csv(_) => {
                "check the quoting of that row (fields with commas, quotes or line breaks must be in \
                 double quotes, inner quotes doubled) and that the text is UTF-8"
                    .into()
            }
            FingerprintProblem::Empty => format!(
                "pass the CSV text including its header line `{}`",
                CSV_COLUMNS.join(",")
            ),
            FingerprintProblem::MissingColumns(_) => {
                format!("use OONI's header `{}`", CSV_COLUMNS.join(","))
            }
            FingerprintProblem::FieldCount { .. } => {
                "give the row every column of the header (empty ones may be blank) and double-quote \
                 fields that contain commas"
                    .into()
            }
            FingerprintProblem::EmptyField(_) => "fill it in, or remove the row".into(),
            FingerprintProblem::BadPatternType(_) => {
                "set pattern_type to full, prefix, contains or regexp, or remove the row".into()
            }
            FingerprintProblem::BadLocation(_) => {
                "set location_found to dns, body or header.<lowercase header name>, or remove the row".into()
            }
            FingerprintProblem::WrongFile(_) => format!("move the row to the {other}"),
            FingerprintProblem::BadConfidence(_) => "set confidence_no_fp to a whole number (OONI uses 0 to 10)".into(),
            FingerprintProblem::BadRegexp(_) => {
                "fix the pattern (Rust `regex` syntax: no look-around, no backreferences), or make it \
                 a contains pattern if it is meant literally"
                    .into()
            }
            FingerprintProblem::TooLarge(_) => "remove rows, or simplify the largest regexps".into(),
        }
    }
}

impl fmt::Display for FingerprintProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FingerprintProblem::Csv(e) => write!(f, "not readable as CSV ({e})"),
            FingerprintProblem::Empty => f.write_str("the text is empty"),
            FingerprintProblem::MissingColumns(c) => {
                write!(f, "the header lacks the column(s) {}", c.join(", "))
            }
            FingerprintProblem::FieldCount { expected, found } => {
                write!(f, "the row has {found} fields but the header has {expected}")
            }
            FingerprintProblem::EmptyField(c) => write!(f, "{c} is empty"),
            FingerprintProblem::BadPatternType(s) => {
                write!(f, "pattern_type {s:?} is not one of full, prefix, contains, regexp")
            }
            FingerprintProblem::BadLocation(s) => {
                write!(f, "location_found {s:?} is not dns, body or header.<name>")
            }
            FingerprintProblem::WrongFile(s) => {
                write!(f, "location_found {s:?} does not belong in this file")
            }
            FingerprintProblem::BadConfidence(s) => {
                write!(f, "confidence_no_fp {s:?} is not a whole number from 0 to 255")
            }
            FingerprintProblem::BadRegexp(e) => write!(f, "the regexp does not compile: {e}"),
            FingerprintProblem::TooLarge(e) => write!(f, "the patterns are too large to compile: {e}"),
        }
    }
}

/// Why fingerprints could not be loaded: which file, which row, what is wrong and what to do.
///
/// Rows are numbered from 1 for the first row after the header; `line` is the line of the file
/// where the row starts (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintError {
    file: FingerprintFile,
    row: Option<u64>,
    line: Option<u64>,
    name: Option<String>,
    problem: FingerprintProblem,
}

impl FingerprintError {
    fn new(file: FingerprintFile, problem: FingerprintProblem) -> FingerprintError {
        FingerprintError {
            file,
            row: None,
            line: None,
            name: None,
            problem,
        }
    }

    fn at(mut self, row: u64, line: Option<u64>, name: Option<&str>) -> FingerprintError {
        self.row = Some(row);
        self.line = line;
        self.name = name.filter(|n| !n.is_empty()).map(str::to_owned);
        self
    }

    /// The file the error is in.
    pub fn file(&self) -> FingerprintFile {
        self.file
    }

    /// The row (1 = first row after the header), if the error is about one row.
    pub fn row(&self) -> Option<u64> {
        self.row
    }

    /// The line of the file where that row starts (the header is line 1).
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    /// The fingerprint's name, if the row has one.
    pub fn fingerprint_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What is wrong.
    pub fn problem(&self) -> &FingerprintProblem {
        &self.problem
    }
}

impl fmt::Display for FingerprintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        match (self.row, self.line) {
            (Some(row), Some(line)) => write!(f, ", row {row} (line {line})")?,
            (Some(row), None) => write!(f, ", row {row}")?,
            (None, Some(line)) => write!(f, ", line {line}")?,
            (None, None) => {}
        }
        if let Some(name) = &self.name {
            write!(f, ", fingerprint `{name}`")?;
        }
        write!(f, ": {}; {}", self.problem, self.problem.hint(self.file))
    }
}

impl std::error::Error for FingerprintError {}

// ---------------------------------------------------------------------------------------------
// The database
// ---------------------------------------------------------------------------------------------

/// A set of fingerprints, compiled for matching. Cloning is cheap (shared, immutable).
#[derive(Clone)]
pub struct FingerprintDb {
    inner: Arc<Inner>,
}

struct Inner {
    fps: Vec<Fingerprint>,
    /// Normalised DNS answer → `full` DNS fingerprints.
    dns_full: HashMap<String, Vec<u32>>,
    /// DNS fingerprints of the other pattern types (none in the shipped set).
    dns_other: FieldMatcher,
    body: BodyMatcher,
    /// Lowercase header name → matcher.
    headers: Vec<(String, FieldMatcher)>,
}

impl fmt::Debug for FingerprintDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |pred: fn(&Location) -> bool| self.iter().filter(|fp| pred(&fp.location)).count();
        f.debug_struct("FingerprintDb")
            .field("dns", &count(|l| *l == Location::Dns))
            .field("body", &count(|l| *l == Location::Body))
            .field("header", &count(|l| matches!(l, Location::Header(_))))
            .finish()
    }
}

impl Default for FingerprintDb {
    /// An empty set, matching nothing.
    fn default() -> Self {
        FingerprintDb::from_fingerprints(Vec::new(), FingerprintFile::Http)
            .expect("an empty fingerprint set always compiles")
    }
}

impl FingerprintDb {
    /// An empty set, matching nothing.
    pub fn empty() -> FingerprintDb {
        FingerprintDb::default()
    }

    /// The OONI set shipped with censorwatch (`crates/verdict/data/`, ooni/blocking-fingerprints
    /// @171641e6, 226 DNS and 1,729 HTTP rows). Parsed once per process, then shared.
    ///
    /// # Panics
    ///
    /// Never in practice: the shipped CSVs are compiled in and `tests/fingerprints.rs` proves they
    /// parse.
    pub fn builtin() -> FingerprintDb {
        static BUILTIN: OnceLock<FingerprintDb> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                FingerprintDb::from_csv(BUILTIN_DNS_CSV, BUILTIN_HTTP_CSV)
                    .expect("the shipped fingerprint CSVs parse (tested in tests/fingerprints.rs)")
            })
            .clone()
    }

    /// Parses the two CSV files of OONI's format (see the module documentation) and compiles them.
    ///
    /// Errors name the file, the row and the problem (unknown `pattern_type` or `location_found`,
    /// a regexp that does not compile, a row with missing fields, …) and say how to fix it.
    pub fn from_csv(dns_csv: &str, http_csv: &str) -> Result<FingerprintDb, FingerprintError> {
        let mut fps = parse_csv(dns_csv, FingerprintFile::Dns)?;
        let http = parse_csv(http_csv, FingerprintFile::Http)?;
        let dns_len = fps.len();
        fps.extend(http);
        FingerprintDb::compile(fps, dns_len)
    }

    /// Compiles fingerprints built by other means (all locations may be mixed, in ranking order).
    /// An empty pattern or a regexp that does not compile is reported against `file`, with the
    /// fingerprint's index (from 1) as the row.
    pub fn from_fingerprints(
        fingerprints: Vec<Fingerprint>,
        file: FingerprintFile,
    ) -> Result<FingerprintDb, FingerprintError> {
        for (i, fp) in fingerprints.iter().enumerate() {
            let fail = |p| FingerprintError::new(file, p).at(i as u64 + 1, None, Some(&fp.name));
            if fp.pattern.is_empty() {
                return Err(fail(FingerprintProblem::EmptyField("pattern")));
            }
            if fp.pattern_type == PatternType::Regexp {
                compile_regexp(&fp.pattern).map_err(fail)?;
            }
        }
        FingerprintDb::compile(fingerprints, 0)
    }

    fn compile(fps: Vec<Fingerprint>, dns_len: usize) -> Result<FingerprintDb, FingerprintError> {
        let too_large =
            |file: FingerprintFile| move |e: String| FingerprintError::new(file, FingerprintProblem::TooLarge(e));
        let (dns_file, http_file) = (FingerprintFile::Dns, FingerprintFile::Http);
        if fps.len() > u32::MAX as usize {
            return Err(too_large(http_file)("more than 2^32 rows".into()));
        }
        let dns_file = if dns_len > 0 { dns_file } else { http_file };
        let mut dns_full: HashMap<String, Vec<u32>> = HashMap::new();
        let mut dns_other = Vec::new();
        let mut body = Vec::new();
        let mut headers: Vec<(String, Vec<u32>)> = Vec::new();
        for (i, fp) in fps.iter().enumerate() {
            let id = i as u32;
            match &fp.location {
                Location::Dns if fp.pattern_type == PatternType::Full => dns_full
                    .entry(normalize_dns(&fp.pattern).into_owned())
                    .or_default()
                    .push(id),
                Location::Dns => dns_other.push(id),
                Location::Body => body.push(id),
                Location::Header(name) => match headers.iter_mut().find(|(n, _)| n == name) {
                    Some((_, ids)) => ids.push(id),
                    None => headers.push((name.clone(), vec![id])),
                },
            }
        }
        let dns_other = FieldMatcher::build(&fps, &dns_other).map_err(too_large(dns_file))?;
        let body = BodyMatcher::build(&fps, &body).map_err(too_large(http_file))?;
        let headers = headers
            .into_iter()
            .map(|(name, ids)| Ok((name, FieldMatcher::build(&fps, &ids).map_err(too_large(http_file))?)))
            .collect::<Result<Vec<_>, FingerprintError>>()?;
        Ok(FingerprintDb {
            inner: Arc::new(Inner {
                fps,
                dns_full,
                dns_other,
                body,
                headers,
            }),
        })
    }

    /// Number of fingerprints (DNS and HTTP).
    pub fn len(&self) -> usize {
        self.inner.fps.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.fps.is_empty()
    }

    /// All fingerprints, DNS rows first, each file in its order.
    pub fn iter(&self) -> std::slice::Iter<'_, Fingerprint> {
        self.inner.fps.iter()
    }

    /// The lowercase header names some fingerprint looks at (`location`, `server`, …).
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.inner.headers.iter().map(|(n, _)| n.as_str())
    }

    /// The best fingerprint matching a DNS answer (an IP address or a CNAME target).
    pub fn match_dns_answer(&self, answer: &str) -> Option<&Fingerprint> {
        self.best(self.dns_ids(answer))
    }

    /// Every fingerprint matching a DNS answer, best first.
    pub fn match_dns_answer_all(&self, answer: &str) -> Vec<&Fingerprint> {
        self.ranked(self.dns_ids(answer))
    }

    /// The best fingerprint matching an HTTP response body.
    pub fn match_body(&self, body: &[u8]) -> Option<&Fingerprint> {
        self.best(self.body_ids(body))
    }

    /// Every fingerprint matching an HTTP response body, best first.
    pub fn match_body_all(&self, body: &[u8]) -> Vec<&Fingerprint> {
        self.ranked(self.body_ids(body))
    }

    /// The best fingerprint matching one HTTP response header (name in any case, decoded value).
    pub fn match_header(&self, name: &str, value: &[u8]) -> Option<&Fingerprint> {
        self.best(self.header_ids(name, value))
    }

    /// Every fingerprint matching one HTTP response header, best first.
    pub fn match_header_all(&self, name: &str, value: &[u8]) -> Vec<&Fingerprint> {
        self.ranked(self.header_ids(name, value))
    }

    fn dns_ids(&self, answer: &str) -> Vec<u32> {
        let norm = normalize_dns(answer);
        let mut out = self.inner.dns_full.get(norm.as_ref()).cloned().unwrap_or_default();
        if !self.inner.dns_other.is_empty() {
            self.inner.dns_other.find(&self.inner.fps, norm.as_bytes(), &mut out);
        }
        out
    }

    fn body_ids(&self, body: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        self.inner.body.find(&self.inner.fps, body, &mut out);
        out
    }

    fn header_ids(&self, name: &str, value: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let name = name.trim();
        if let Some((_, m)) = self.inner.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            m.find(&self.inner.fps, value, &mut out);
        }
        out
    }

    /// The ranking key: censorship before known false positives, then confidence, then file order.
    fn rank(&self, id: u32) -> (bool, Reverse<u8>, u32) {
        let fp = &self.inner.fps[id as usize];
        (fp.is_false_positive(), Reverse(fp.confidence_no_fp), id)
    }

    fn best(&self, ids: Vec<u32>) -> Option<&Fingerprint> {
        ids.into_iter()
            .min_by_key(|&id| self.rank(id))
            .map(|id| &self.inner.fps[id as usize])
    }

    fn ranked(&self, mut ids: Vec<u32>) -> Vec<&Fingerprint> {
        ids.sort_unstable_by_key(|&id| self.rank(id));
        ids.dedup();
        ids.into_iter().map(|id| &self.inner.fps[id as usize]).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// CSV parsing
// ---------------------------------------------------------------------------------------------

fn parse_csv(text: &str, file: FingerprintFile) -> Result<Vec<Fingerprint>, FingerprintError> {
    // A spreadsheet may have saved the file with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(FingerprintError::new(file, FingerprintProblem::Empty));
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| csv_error(file, &e))?.clone();
    let column = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let missing: Vec<String> = REQUIRED_COLUMNS
        .iter()
        .filter(|c| column(c).is_none())
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        let err = FingerprintError::new(file, FingerprintProblem::MissingColumns(missing));
        return Err(FingerprintError { line: Some(1), ..err });
    }
    let [name_c, scope_c, other_c, loc_c, type_c, pat_c, conf_c, cc_c] =
        REQUIRED_COLUMNS.map(|c| column(c).expect("checked above"));
    let (source_c, url_c, notes_c) = (column("source"), column("exp_url"), column("notes"));

    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(file, &e))?;
        let pos = record.position();
        let row = pos.map_or(out.len() as u64 + 1, |p| p.record());
        let line = pos.map(|p| p.line());
        let get = |c: usize| record.get(c).unwrap_or("");
        let opt = |c: Option<usize>| c.map_or("", get).trim().to_owned();
        let name = get(name_c).trim();
        let fail = |p: FingerprintProblem| FingerprintError::new(file, p).at(row, line, Some(name));
        if name.is_empty() {
            return Err(fail(FingerprintProblem::EmptyField("name")));
        }
        let scope = get(scope_c).trim();
        if scope.is_empty() {
            return Err(fail(FingerprintProblem::EmptyField("scope")));
        }
        let loc_text = get(loc_c);
        if loc_text.trim().is_empty() {
            return Err(fail(FingerprintProblem::EmptyField("location_found")));
        }
        let location =
            Location::parse(loc_text).ok_or_else(|| fail(FingerprintProblem::BadLocation(loc_text.to_owned())))?;
        let in_right_file = match file {
            FingerprintFile::Dns => location == Location::Dns,
            FingerprintFile::Http => location != Location::Dns,
        };
        if !in_right_file {
            return Err(fail(FingerprintProblem::WrongFile(loc_text.to_owned())));
        }
        let type_text = get(type_c);
        if type_text.trim().is_empty() {
            return Err(fail(FingerprintProblem::EmptyField("pattern_type")));
        }
        let pattern_type = PatternType::parse(type_text)
            .ok_or_else(|| fail(FingerprintProblem::BadPatternType(type_text.to_owned())))?;
        // The pattern is kept verbatim: leading spaces are part of some shipped patterns.
        let pattern = get(pat_c);
        if pattern.is_empty() {
            return Err(fail(FingerprintProblem::EmptyField("pattern")));
        }
        if pattern_type == PatternType::Regexp {
            compile_regexp(pattern).map_err(fail)?;
        }
        let conf_text = get(conf_c).trim();
        if conf_text.is_empty() {
            return Err(fail(FingerprintProblem::EmptyField("confidence_no_fp")));
        }
        let confidence_no_fp = conf_text
            .parse::<u8>()
            .map_err(|_| fail(FingerprintProblem::BadConfidence(conf_text.to_owned())))?;
        out.push(Fingerprint {
            name: name.to_owned(),
            scope: Scope::parse(scope),
            other_names: split_list(get(other_c), false),
            location,
            pattern_type,
            pattern: pattern.to_owned(),
            confidence_no_fp,
            expected_countries: split_list(get(cc_c), true),
            source: opt(source_c),
            exp_url: opt(url_c),
            notes: opt(notes_c),
        });
    }
    Ok(out)
}

fn split_list(s: &str, upper: bool) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| if upper { s.to_ascii_uppercase() } else { s.to_owned() })
        .collect()
}

fn csv_error(file: FingerprintFile, e: &csv::Error) -> FingerprintError {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            let err = FingerprintError::new(
                file,
                FingerprintProblem::FieldCount {
                    expected: *expected_len,
                    found: *len,
                },
            );
            match pos {
                Some(p) => err.at(p.record(), Some(p.line()), None),
                None => err,
            }
        }
        kind => {
            let pos = match kind {
                csv::ErrorKind::Utf8 { pos, .. } => pos.as_ref(),
                csv::ErrorKind::Deserialize { pos, .. } => pos.as_ref(),
                _ => None,
            };
            let err = FingerprintError::new(file, FingerprintProblem::Csv(e.to_string()));
            match pos {
                Some(p) if p.record() > 0 => err.at(p.record(), Some(p.line()), None),
                Some(p) => FingerprintError {
                    line: Some(p.line()),
                    ..err
                },
                None => err,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Normalisation and regexp helpers
// ---------------------------------------------------------------------------------------------

/// A DNS answer in comparable form: IP addresses in canonical text, host names lowercase without
/// a trailing dot.
fn normalize_dns(answer: &str) -> Cow<'_, str> {
    let a = answer.trim();
    if let Ok(ip) = a.parse::<IpAddr>() {
        let canonical = ip.to_string();
        return if canonical == a {
            Cow::Borrowed(a)
        } else {
            Cow::Owned(canonical)
        };
    }
    let host = a.strip_suffix('.').unwrap_or(a);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// The value as text for regexps: borrowed when it is UTF-8, else invalid bytes become U+FFFD.
fn as_text(value: &[u8]) -> Cow<'_, str> {
    // `from_utf8` first: `from_utf8_lossy` checks chunk by chunk, several times slower on the
    // (usual) valid input.
    match std::str::from_utf8(value) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value),
    }
}

/// Length of a repetition `{n}`, `{n,}`, `{n,m}` or `{,m}` at the start of `s` (which starts with
/// `{`), with its minimum count; `None` when the brace does not start one (then it is a literal,
/// as in Python's `re`).
fn repetition_at(s: &str) -> Option<(usize, u32)> {
    let b = s.as_bytes();
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let lo_len = digits(&mut i);
    let min = if lo_len == 0 { 0 } else { s[1..1 + lo_len].parse().ok()? };
    if i < b.len() && b[i] == b',' {
        i += 1;
        digits(&mut i);
    } else if lo_len == 0 {
        return None;
    }
    (i < b.len() && b[i] == b'}').then_some((i + 1, min))
}

/// Translates a pattern from Python `re` syntax to Rust `regex` syntax where they differ in ways
/// the fingerprints use: a `{` that does not start a repetition is escaped, `{,m}` becomes `{0,m}`.
fn translate_regexp(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains('{') {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut class_len = 0usize; // characters since `[` (to see a leading `]` or `^`)
    let mut chars = pattern.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                    // `\p{..}`, `\x{..}`, `\u{..}`: copy the braces verbatim.
                    if matches!(n, 'p' | 'P' | 'x' | 'u' | 'U') && chars.peek().map(|p| p.1) == Some('{') {
                        for (_, m) in chars.by_ref() {
                            out.push(m);
                            if m == '}' {
                                break;
                            }
                        }
                    }
                }
                class_len += 1;
            }
            '[' if !in_class => {
                in_class = true;
                class_len = 0;
                out.push(c);
            }
            '[' if in_class && chars.peek().map(|p| p.1) == Some(':') => {
                // `[:alpha:]` inside a class.
                out.push(c);
                while let Some((_, m)) = chars.next() {
                    out.push(m);
                    if m == ':' && chars.peek().map(|p| p.1) == Some(']') {
                        out.push(']');
                        chars.next();
                        break;
                    }
                }
                class_len += 1;
            }
            ']' if in_class && !(class_len == 0 || (class_len == 1 && out.ends_with("[^"))) => {
                in_class = false;
                out.push(c);
            }
            '{' if !in_class => match repetition_at(&pattern[i..]) {
                Some((len, _)) if pattern[i..].starts_with("{,") => {
                    out.push_str("{0");
                    out.push_str(&pattern[i + 1..i + len]);
                    for _ in 1..len {
                        chars.next();
                    }
                }
                Some(_) => out.push(c),
                None => out.push_str("\\{"),
            },
            _ => {
                out.push(c);
                class_len += 1;
            }
        }
    }
    Cow::Owned(out)
}

fn regexp_builder(pattern: &str) -> RegexBuilder {
    let mut b = RegexBuilder::new(&translate_regexp(pattern));
    b.size_limit(10 << 20);
    b
}

fn compile_regexp(pattern: &str) -> Result<Regex, FingerprintProblem> {
    regexp_builder(pattern).build().map_err(|e| {
        let msg = e.to_string();
        // The regex crate's message is a multi-line drawing; keep its last line (the reason).
        let reason = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(&msg).trim();
        FingerprintProblem::BadRegexp(reason.trim_start_matches("error: ").to_owned())
    })
}

fn regexp_set(patterns: &[&str]) -> Result<RegexSet, String> {
    let translated: Vec<Cow<'_, str>> = patterns.iter().map(|p| translate_regexp(p)).collect();
    RegexSetBuilder::new(translated.iter().map(|p| p.as_ref()))
        .size_limit(10 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// Literal texts that every match of `pattern` contains, when they can be read off the pattern
/// simply: the runs of plain characters between `.`, anchors, class escapes and quantified
/// characters. Runs shorter than 4 bytes are dropped unless there is no longer one. `None` when
/// the pattern is too complex to read (groups, alternation, classes, other escapes); an empty list
/// when it requires no text. Runs may contain U+FFFD, which the lossy decoding used for regexps can
/// also produce from invalid bytes (the caller accounts for that).
fn required_literals(pattern: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut runs: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // One token: a literal character or something that matches no fixed text.
        let (literal, next) = match c {
            '\\' => {
                let n = *chars.get(i + 1)?;
                if n.is_ascii_punctuation() {
                    (Some(n), i + 2)
                } else if "dDwWsSbBAzntrfv".contains(n) {
                    (None, i + 2)
                } else {
                    return None;
                }
            }
            '(' | ')' | '|' | '[' | ']' | '*' | '+' | '?' => return None,
            '.' | '^' | '$' => (None, i + 1),
            '{' => {
                let rest: String = chars[i..].iter().collect();
                if repetition_at(&rest).is_some() {
                    return None;
                }
                (Some('{'), i + 1)
            }
            _ => (Some(c), i + 1),
        };
        // An optional quantifier after the token, and its minimum count.
        let (min, after) = match chars.get(next) {
            Some('*') | Some('?') => (Some(0), next + 1),
            Some('+') => (Some(1), next + 1),
            Some('{') => {
                let rest: String = chars[next..].iter().collect();
                match repetition_at(&rest) {
                    Some((len, min)) => (Some(min), next + rest[..len].chars().count()),
                    None => (None, next),
                }
            }
            _ => (None, next),
        };
        let after = if min.is_some() && chars.get(after) == Some(&'?') {
            after + 1
        } else {
            after
        };
        match (literal, min) {
            (Some(l), None) => cur.push(l),
            (Some(l), Some(m)) if m >= 1 => {
                cur.push(l);
                runs.push(std::mem::take(&mut cur));
            }
            _ => runs.push(std::mem::take(&mut cur)),
        }
        i = after;
    }
    runs.push(cur);
    runs.retain(|r| !r.is_empty());
    runs.sort_unstable();
    runs.dedup();
    let longest = runs.iter().map(String::len).max().unwrap_or(0);
    runs.retain(|r| r.len() >= 4.min(longest));
    Some(runs)
}

// ---------------------------------------------------------------------------------------------
// Short values: header values and DNS answers
// ---------------------------------------------------------------------------------------------

/// Matches short values (header values, DNS answers): one automaton over the literals with an
/// overlapping search, and one regexp set.
struct FieldMatcher {
    literals: Option<AhoCorasick>,
    /// Automaton pattern → fingerprints with that literal.
    literal_fps: Vec<Vec<u32>>,
    regexps: Option<RegexSet>,
    regexp_fps: Vec<u32>,
}

impl FieldMatcher {
    fn build(fps: &[Fingerprint], ids: &[u32]) -> Result<FieldMatcher, String> {
        let mut patterns: Vec<&str> = Vec::new();
        let mut literal_fps: Vec<Vec<u32>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut regexps = Vec::new();
        let mut regexp_fps = Vec::new();
        for &id in ids {
            let fp = &fps[id as usize];
            if fp.pattern_type == PatternType::Regexp {
                regexps.push(fp.pattern.as_str());
                regexp_fps.push(id);
                continue;
            }
            let slot = *index.entry(fp.pattern.as_str()).or_insert_with(|| {
                patterns.push(fp.pattern.as_str());
                literal_fps.push(Vec::new());
                patterns.len() - 1
            });
            literal_fps[slot].push(id);
        }
        let literals = if patterns.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .map_err(|e| e.to_string())?;
            Some(ac)
        };
        let regexps = if regexps.is_empty() {
            None
        } else {
            Some(regexp_set(&regexps)?)
        };
        Ok(FieldMatcher {
            literals,
            literal_fps,
            regexps,
            regexp_fps,
        })
    }

    fn is_empty(&self) -> bool {
        self.literals.is_none() && self.regexps.is_none()
    }

    fn find(&self, fps: &[Fingerprint], value: &[u8], out: &mut Vec<u32>) {
        if let Some(ac) = &self.literals {
            for m in ac.find_overlapping_iter(value) {
                for &id in &self.literal_fps[m.pattern().as_usize()] {
                    let ok = match fps[id as usize].pattern_type {
                        PatternType::Full => m.start() == 0 && m.end() == value.len(),
                        PatternType::Prefix => m.start() == 0,
                        PatternType::Contains | PatternType::Regexp => true,
                    };
                    if ok && !out.contains(&id) {
                        out.push(id);
                    }
                }
            }
        }
        if let Some(set) = &self.regexps {
            let text = as_text(value);
            out.extend(set.matches(text.as_bytes()).iter().map(|i| self.regexp_fps[i]));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/// A regexp body fingerprint that runs only when every literal it requires was found.
struct TriggeredRegexp {
    fp: u32,
    regex: Regex,
    /// (literal id, the literal contains U+FFFD).
    needs: Vec<(u32, bool)>,
}

/// Gram tiers: (minimum literal length `L`, gram width `q`); stride `s = L - q + 1`. A literal goes
/// to the first tier whose `L` it reaches; shorter literals go to the short-literal automaton.
const TIERS: [(usize, usize); 2] = [(16, 8), (8, 4)];

struct BodyMatcher {
    /// Distinct literals searched anywhere in the body.
    literals: Vec<Box<[u8]>>,
    /// Literal → the `contains` fingerprints with that pattern.
    targets: Vec<Vec<u32>>,
    tiers: Vec<GramTier>,
    short: Option<ShortLiterals>,
    /// `full` and `prefix` body fingerprints, checked at offset 0.
    anchored: Vec<u32>,
    /// Regexps run only when their required literals were found.
    triggered: Vec<TriggeredRegexp>,
    /// Regexps with no usable required literal, run on every body.
    always: Option<RegexSet>,
    always_fps: Vec<u32>,
}

impl BodyMatcher {
    fn build(fps: &[Fingerprint], ids: &[u32]) -> Result<BodyMatcher, String> {
        let mut literals: Vec<Box<[u8]>> = Vec::new();
        let mut targets: Vec<Vec<u32>> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut add = |lit: &[u8], fp: Option<u32>| {
            let slot = *index.entry(lit.to_vec()).or_insert_with(|| {
                literals.push(lit.into());
                targets.push(Vec::new());
                literals.len() - 1
            });
            targets[slot].extend(fp);
            slot as u32
        };
        let mut anchored = Vec::new();
        let mut triggered = Vec::new();
        let mut always = Vec::new();
        let mut always_fps = Vec::new();
        for &id in ids {
            let fp = &fps[id as usize];
            match fp.pattern_type {
                PatternType::Full | PatternType::Prefix => anchored.push(id),
                PatternType::Contains => {
                    add(fp.pattern.as_bytes(), Some(id));
                }
                PatternType::Regexp => match required_literals(&fp.pattern) {
                    Some(lits) if !lits.is_empty() => {
                        let regex = regexp_builder(&fp.pattern).build().map_err(|e| e.to_string())?;
                        let needs = lits
                            .iter()
                            .map(|l| (add(l.as_bytes(), None), l.contains('\u{FFFD}')))
                            .collect();
                        triggered.push(TriggeredRegexp { fp: id, regex, needs });
                    }
                    _ => {
                        always.push(fp.pattern.as_str());
                        always_fps.push(id);
                    }
                },
            }
        }
        let mut tiers = Vec::new();
        let mut placed = vec![false; literals.len()];
        for (min_len, q) in TIERS {
            let members: Vec<u32> = (0..literals.len())
                .filter(|&i| !placed[i] && literals[i].len() >= min_len)
                .map(|i| i as u32)
                .collect();
            if members.is_empty() {
                continue;
            }
            for &m in &members {
                placed[m as usize] = true;
            }
            tiers.push(GramTier::build(&literals, &members, min_len, q));
        }
        let short: Vec<u32> = (0..literals.len()).filter(|&i| !placed[i]).map(|i| i as u32).collect();
        let short = if short.is_empty() {
            None
        } else {
            Some(ShortLiterals::build(&literals, short)?)
        };
        let always = if always.is_empty() {
            None
        } else {
            Some(regexp_set(&always)?)
        };
        Ok(BodyMatcher {
            literals,
            targets,
            tiers,
            short,
            anchored,
            triggered,
            always,
            always_fps,
        })
    }

    fn find(&self, fps: &[Fingerprint], body: &[u8], out: &mut Vec<u32>) {
        for &id in &self.anchored {
            let fp = &fps[id as usize];
            let pattern = fp.pattern.as_bytes();
            let hit = match fp.pattern_type {
                PatternType::Full => body == pattern,
                _ => body.starts_with(pattern),
            };
            if hit {
                out.push(id);
            }
        }
        let mut found: Vec<u32> = Vec::new();
        for tier in &self.tiers {
            tier.scan(&self.literals, body, &mut found);
        }
        if let Some(short) = &self.short {
            short.scan(&self.literals, body, &mut found);
        }
        found.sort_unstable();
        found.dedup();
        for &lit in &found {
            out.extend_from_slice(&self.targets[lit as usize]);
        }
        // Regexps: only those whose required literals are all present. A literal with U+FFFD in it
        // may come from invalid bytes in the lossy text, so it counts as present in a body that is
        // not UTF-8.
        // The text is decoded at most once; it is borrowed exactly when the body is UTF-8.
        let mut text: Option<Cow<'_, str>> = None;
        for t in &self.triggered {
            let mut present = true;
            for &(lit, fffd) in &t.needs {
                if found.binary_search(&lit).is_err()
                    && !(fffd && matches!(text.get_or_insert_with(|| as_text(body)), Cow::Owned(_)))
                {
                    present = false;
                    break;
                }
            }
            if present && t.regex.is_match(text.get_or_insert_with(|| as_text(body)).as_bytes()) {
                out.push(t.fp);
            }
        }
        if let Some(set) = &self.always {
            let text = text.get_or_insert_with(|| as_text(body));
            out.extend(set.matches(text.as_bytes()).iter().map(|i| self.always_fps[i]));
        }
    }
}

/// A multiplicative hasher for gram keys (already well mixed by the multiply).
#[derive(Default)]
struct GramHasher(u64);

impl Hasher for GramHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(GOLDEN);
    }
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// One sampled gram filter over literals of length ≥ `min_len`.
///
/// Why nothing is missed: let a literal of length `n ≥ min_len = q + s - 1` occur at body offset
/// `a`. The gram start offsets inside the occurrence are `0..=n-q`, at least `s` consecutive
/// values, so every residue class modulo `s` has one. The scan reads the grams at body positions
/// `0, s, 2s, …`; those inside the occurrence are at literal offsets `j ≡ -a (mod s)`. For that
/// class the table holds one offset `j_r` of the literal, and position `a + j_r` is read (it is a
/// multiple of `s`, and `a + j_r + q ≤ a + n ≤ body length`). The gram read there is the
/// literal's gram at `j_r`, so the candidate `(literal, j_r)` is found and compared in place.
struct GramTier {
    q: usize,
    stride: usize,
    min_len: usize,
    bits: u32,
    filter: Vec<u64>,
    table: HashMap<u64, Vec<(u32, u32)>, BuildHasherDefault<GramHasher>>,
}

/// How rare each ASCII byte is in HTML pages: `-log2` of its frequency, rounded, in the real pages
/// of the test fixtures (0.9 MB: csmonitor.com, mozilla.org, youtube.com, whatsapp.com, …). Control
/// characters other than tab, LF and CR are given 20. Bytes ≥ 0x80 get 11: rare in these pages,
/// common in others; a flat middle value keeps the choice neutral. Used only to choose which gram
/// of a literal goes into the filter: rare grams make few false candidates.
const RARITY: [u8; 128] = [
    20, 20, 20, 20, 20, 20, 20, 20, 20, 5, 6, 20, 20, 10, 20, 20, // 0x00
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, // 0x10
    4, 11, 5, 12, 13, 10, 12, 10, 10, 10, 15, 13, 7, 6, 7, 6, // 0x20
    5, 7, 6, 7, 8, 7, 7, 8, 8, 9, 7, 10, 7, 7, 7, 11, // 0x30
    13, 8, 9, 8, 9, 8, 10, 10, 10, 8, 11, 10, 9, 8, 9, 9, // 0x40
    8, 10, 9, 9, 9, 10, 9, 10, 10, 10, 12, 10, 6, 10, 18, 5, // 0x50
    19, 4, 6, 5, 5, 4, 7, 6, 6, 5, 10, 7, 5, 6, 5, 5, // 0x60
    6, 10, 5, 5, 4, 5, 7, 7, 8, 7, 9, 8, 13, 8, 16, 20, // 0x70
];

/// Fragments of markup and URLs found in almost every page. A gram containing one is a poor filter
/// entry (it would be verified on every page); the gram choice avoids them when it can.
const HTML_SCAFFOLDING: [&str; 40] = [
    "http", "://", "www.", ".com", ".org", ".net", "<div", "div>", "</", "href", "src=", "clas", "styl", "titl",
    "itle", "<scr", "ript", "meta", "<spa", "span", "<a h", "html", "<br", "<p>", "\n\n", "\t\t", "  ", "=\"", "\">",
    "ref=", "yle=", "iv>", "s://", ".jpg", ".png", ".js", ".css", "px;", "font", "ion ",
];

fn rarity(b: u8) -> u32 {
    RARITY.get(usize::from(b)).map_or(11, |&r| u32::from(r))
}

#[inline(always)]
fn gram<const Q: usize>(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf[..Q].copy_from_slice(&bytes[..Q]);
    u64::from_le_bytes(buf)
}

impl GramTier {
    fn build(literals: &[Box<[u8]>], members: &[u32], min_len: usize, q: usize) -> GramTier {
        assert!(
            (1..=8).contains(&q) && min_len >= q,
            "gram width {q}, minimum length {min_len}"
        );
        let stride = min_len - q + 1;
        let key = |g: &[u8]| {
            let mut buf = [0u8; 8];
            buf[..q].copy_from_slice(&g[..q]);
            u64::from_le_bytes(buf)
        };
        // How many literals of the tier contain each gram: a gram many patterns share (`http://w`,
        // `.com`) is page scaffolding, common in every page.
        let mut shared: HashMap<u64, u32, BuildHasherDefault<GramHasher>> = HashMap::default();
        for &lit in members {
            let mut grams: Vec<u64> = literals[lit as usize].windows(q).map(key).collect();
            grams.sort_unstable();
            grams.dedup();
            for g in grams {
                *shared.entry(g).or_insert(0) += 1;
            }
        }
        let scaffolding = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(HTML_SCAFFOLDING.iter().filter(|f| f.len() <= q))
            .expect("a few short literals always compile");
        let mut chosen: Vec<(u64, u32, u32)> = Vec::new();
        for &lit in members {
            let p = &literals[lit as usize];
            // End of the earliest-ending scaffolding fragment starting at each offset (0: none).
            let mut fragment_end = vec![0usize; p.len()];
            for m in scaffolding.find_overlapping_iter(&p[..]) {
                let e = &mut fragment_end[m.start()];
                if *e == 0 || m.end() < *e {
                    *e = m.end();
                }
            }
            let score = |j: usize| {
                let rare: u32 = p[j..j + q].iter().map(|&b| rarity(b)).sum();
                let scaffolding = fragment_end[j..j + q].iter().any(|&e| e != 0 && e <= j + q);
                let penalty = 4 * (32 - shared[&key(&p[j..])].leading_zeros()) + if scaffolding { 24 } else { 0 };
                i64::from(rare) - i64::from(penalty)
            };
            for class in 0..stride {
                let best = (class..=p.len() - q)
                    .step_by(stride)
                    .max_by_key(|&j| (score(j), Reverse(j)))
                    .expect("every class has an offset because the literal is at least min_len long");
                let mut buf = [0u8; 8];
                buf[..q].copy_from_slice(&p[best..best + q]);
                chosen.push((u64::from_le_bytes(buf), lit, best as u32));
            }
        }
        chosen.sort_unstable();
        chosen.dedup();
        // About one bit in 64 set, up to 32 KB (2^18 bits, then fuller): few false filter hits,
        // and the filter stays in L1/L2 cache. Measured best of 16/32/64/128 and 2^18/2^19.
        let bits = (chosen.len().max(1) * 64)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(12, 18);
        let mut filter = vec![0u64; 1 << (bits - 6)];
        let mut table: HashMap<u64, Vec<(u32, u32)>, BuildHasherDefault<GramHasher>> = HashMap::default();
        for (g, lit, off) in chosen {
            let slot = Self::slot(g, bits);
            filter[slot >> 6] |= 1 << (slot & 63);
            table.entry(g).or_default().push((lit, off));
        }
        GramTier {
            q,
            stride,
            min_len,
            bits,
            filter,
            table,
        }
    }

    #[inline(always)]
    fn slot(g: u64, bits: u32) -> usize {
        (g.wrapping_mul(GOLDEN) >> (64 - bits)) as usize
    }

    fn scan(&self, literals: &[Box<[u8]>], body: &[u8], found: &mut Vec<u32>) {
        // Constant gram width and stride let the compiler drop bounds checks in the unrolled loop.
        match (self.q, self.stride) {
            (8, 9) => self.scan_qs::<8, 9>(literals, body, found),
            (4, 5) => self.scan_qs::<4, 5>(literals, body, found),
            _ => self.scan_any(literals, body, found),
        }
    }

    #[inline(always)]
    fn hit(&self, g: u64) -> bool {
        let slot = Self::slot(g, self.bits);
        (self.filter[slot >> 6] >> (slot & 63)) & 1 != 0
    }

    fn scan_qs<const Q: usize, const S: usize>(&self, literals: &[Box<[u8]>], body: &[u8], found: &mut Vec<u32>) {
        if body.len() < self.min_len {
            return;
        }
        // Four sampled positions per step: their filter bits are read together and the rare hit
        // is located afterwards.
        let mut i = 0;
        while i + 3 * S + Q <= body.len() {
            let w = &body[i..i + 3 * S + Q];
            let g = [
                gram::<Q>(&w[..Q]),
                gram::<Q>(&w[S..S + Q]),
                gram::<Q>(&w[2 * S..2 * S + Q]),
                gram::<Q>(&w[3 * S..]),
            ];
            if self.hit(g[0]) | self.hit(g[1]) | self.hit(g[2]) | self.hit(g[3]) {
                for (k, &g) in g.iter().enumerate() {
                    if self.hit(g) {
                        self.verify(g, i + k * S, literals, body, found);
                    }
                }
            }
            i += 4 * S;
        }
        while i + Q <= body.len() {
            let g = gram::<Q>(&body[i..]);
            if self.hit(g) {
                self.verify(g, i, literals, body, found);
            }
            i += S;
        }
    }

    /// The same scan for any gram width and stride (only if `TIERS` changes).
    fn scan_any(&self, literals: &[Box<[u8]>], body: &[u8], found: &mut Vec<u32>) {
        let q = self.q;
        for i in (0..body.len().saturating_sub(q - 1)).step_by(self.stride) {
            let mut buf = [0u8; 8];
            buf[..q].copy_from_slice(&body[i..i + q]);
            let g = u64::from_le_bytes(buf);
            if self.hit(g) {
                self.verify(g, i, literals, body, found);
            }
        }
    }

    #[inline(never)]
    fn verify(&self, g: u64, i: usize, literals: &[Box<[u8]>], body: &[u8], found: &mut Vec<u32>) {
        let Some(cands) = self.table.get(&g) else { return };
        for &(lit, off) in cands {
            let Some(start) = i.checked_sub(off as usize) else {
                continue;
            };
            let p = &literals[lit as usize];
            if body.get(start..start + p.len()) == Some(&p[..]) {
                found.push(lit);
            }
        }
    }
}

/// Literals shorter than the smallest tier: a leftmost-first automaton finds the next start
/// position where any of them occurs, every short literal is compared there, and the search
/// resumes one byte later.
struct ShortLiterals {
    ac: AhoCorasick,
    /// First byte → short literals starting with it.
    by_first: Vec<Vec<u32>>,
}

impl ShortLiterals {
    fn build(literals: &[Box<[u8]>], members: Vec<u32>) -> Result<ShortLiterals, String> {
        let patterns: Vec<&[u8]> = members.iter().map(|&i| &literals[i as usize][..]).collect();
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&patterns)
            .map_err(|e| e.to_string())?;
        let mut by_first = vec![Vec::new(); 256];
        for &m in &members {
            by_first[literals[m as usize][0] as usize].push(m);
        }
        Ok(ShortLiterals { ac, by_first })
    }

    fn scan(&self, literals: &[Box<[u8]>], body: &[u8], found: &mut Vec<u32>) {
        let mut pos = 0;
        while pos < body.len() {
            let Some(m) = self.ac.find(Input::new(body).span(pos..body.len())) else {
                break;
            };
            let start = m.start();
            for &lit in &self.by_first[body[start] as usize] {
                if body[start..].starts_with(&literals[lit as usize]) {
                    found.push(lit);
                }
            }
            pos = start + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translate_braces_like_python() {
        assert_eq!(translate_regexp(r#"{"msg":.*"id":"#), r#"\{"msg":.*"id":"#);
        assert_eq!(translate_regexp("a{2}b{1,}c{3,4}"), "a{2}b{1,}c{3,4}");
        assert_eq!(translate_regexp("a{,3}"), "a{0,3}");
        assert_eq!(translate_regexp(r"\p{Greek}{x"), r"\p{Greek}\{x");
        assert_eq!(translate_regexp("[{]{"), r"[{]\{");
        assert_eq!(translate_regexp("[]{]x{"), r"[]{]x\{");
        assert_eq!(translate_regexp("[[:alpha:]{]{"), r"[[:alpha:]{]\{");
        assert_eq!(translate_regexp(r"\{a{"), r"\{a\{");
        for p in [r#"{"msg":.*"id":"#, "a{,3}", "[{]{", "x{y}"] {
            assert!(compile_regexp(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn required_literals_are_required() {
        let req = |p: &str| required_literals(p);
        let v = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(req("URL .* Sp.*er Gate"), v(&["URL ", "er Gate"]));
        assert_eq!(
            req(r"please.*http://www\.internet\.gov\.sa"),
            v(&["http://www.internet.gov.sa", "please"])
        );
        assert_eq!(req(r#"{"msg":.*"id":"#), v(&[r#""id":"#, r#"{"msg":"#]));
        assert_eq!(req("abcx?yz"), v(&["abc"]));
        assert_eq!(req("abcx+yz"), v(&["abcx"]));
        assert_eq!(req("abcdx{0,2}y"), v(&["abcd"]));
        assert_eq!(req("abx{2}yz"), v(&["abx"]));
        assert_eq!(req("x*?abcd"), v(&["abcd"]));
        assert_eq!(req("\u{FFFD}.*\u{FFFD}"), v(&["\u{FFFD}"]));
        assert_eq!(req(".*"), v(&[]));
        assert_eq!(req(r"\d+abcd\s"), v(&["abcd"]));
        for complex in ["a|b", "(?i)blocked", "[ab]cd", r"\x41bc", "*a", "{2}a"] {
            assert_eq!(req(complex), None, "{complex}");
        }
        // Every regexp of the shipped set: its literals really occur in what it matches.
        let mut with_literals = 0;
        for fp in FingerprintDb::builtin()
            .iter()
            .filter(|f| f.pattern_type == PatternType::Regexp)
        {
            let lits = required_literals(&fp.pattern).unwrap_or_default();
            with_literals += usize::from(!lits.is_empty());
            let re = compile_regexp(&fp.pattern).unwrap();
            // A string the regexp matches: `.*` as "x", escapes dropped.
            let sample = fp.pattern.replace(".*", "x").replace('\\', "");
            assert!(re.is_match(sample.as_bytes()), "{}: {sample:?}", fp.name);
            for lit in &lits {
                assert!(sample.contains(lit.as_str()), "{}: {lit:?} not in {sample:?}", fp.name);
            }
        }
        assert_eq!(with_literals, 14, "every shipped regexp has a required literal");
    }

    #[test]
    fn dns_normalisation() {
        assert_eq!(normalize_dns(" 203.82.48.83 "), "203.82.48.83");
        assert_eq!(normalize_dns("00d0:0::0011"), "d0::11");
        assert_eq!(normalize_dns("Internet-Positif.ORG."), "internet-positif.org");
        assert!(matches!(normalize_dns("d0::11"), Cow::Borrowed(_)));
    }

    #[test]
    fn repetition_parsing() {
        assert_eq!(repetition_at("{2}"), Some((3, 2)));
        assert_eq!(repetition_at("{2,}x"), Some((4, 2)));
        assert_eq!(repetition_at("{,5}"), Some((4, 0)));
        assert_eq!(repetition_at("{}"), None);
        assert_eq!(repetition_at("{a}"), None);
        assert_eq!(repetition_at("{2"), None);
        assert_eq!(repetition_at("{\"msg"), None);
    }

    /// Every tier shape, including the generic scan, finds exactly the occurrences a naive search
    /// finds.
    #[test]
    fn gram_tiers_are_exact() {
        let mut seed = 0x9e37_79b9_u64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for (min_len, q) in [(16, 8), (8, 4), (12, 4), (10, 8), (8, 8), (5, 4)] {
            let literals: Vec<Box<[u8]>> = (0..40)
                .map(|_| {
                    (0..min_len + rand(10))
                        .map(|_| b"abcab"[rand(5)])
                        .collect::<Vec<u8>>()
                        .into()
                })
                .collect();
            let members: Vec<u32> = (0..literals.len() as u32).collect();
            let tier = GramTier::build(&literals, &members, min_len, q);
            for _ in 0..300 {
                let mut body: Vec<u8> = (0..rand(300)).map(|_| b"abcabx"[rand(6)]).collect();
                let lit = &literals[rand(literals.len())];
                let at = rand(body.len() + 1);
                body.splice(at..at, lit.iter().copied());
                let mut found = Vec::new();
                tier.scan(&literals, &body, &mut found);
                found.sort_unstable();
                found.dedup();
                let want: Vec<u32> = members
                    .iter()
                    .copied()
                    .filter(|&m| {
                        body.windows(literals[m as usize].len())
                            .any(|w| w == &literals[m as usize][..])
                    })
                    .collect();
                assert_eq!(found, want, "tier ({min_len}, {q})");
            }
        }
    }

    /// The gram tiers and the short-literal search agree with a naive search on adversarial
    /// inputs: literals at every offset, overlapping and repeated, at both ends of the body.
    #[test]
    fn literal_search_is_exact() {
        let lits: Vec<&[u8]> = vec![
            b"BUSY",
            b"ab",
            b"abab",
            b"aaaaaaaa",
            b"aaaaaaaaaaaaaaaaaaaa",
            b"0123456789abcdef",
            b"456789abcdef0123456",
            b"needle-in-hay",
            b"xyzxyzxy",
            b"\xe7\xa6\x81\xe6\xad\xa2\xe8\xae\xbf\xe9\x97\xae",
        ];
        let fps: Vec<Fingerprint> = lits
            .iter()
            .enumerate()
            .map(|(i, l)| Fingerprint {
                name: format!("t{i}"),
                scope: Scope::Nat,
                other_names: vec![],
                location: Location::Body,
                pattern_type: PatternType::Contains,
                pattern: String::from_utf8(l.to_vec()).unwrap(),
                confidence_no_fp: 5,
                expected_countries: vec![],
                source: String::new(),
                exp_url: String::new(),
                notes: String::new(),
            })
            .collect();
        let db = FingerprintDb::from_fingerprints(fps.clone(), FingerprintFile::Http).unwrap();
        let mut seed = 0x1234_5678_u64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for round in 0..2000 {
            let len = rand(200);
            let mut body: Vec<u8> = (0..len).map(|_| b"abxyz0123"[rand(9)]).collect();
            for _ in 0..rand(4) {
                let lit = lits[rand(lits.len())];
                let at = rand(body.len() + 1);
                body.splice(at..at, lit.iter().copied());
            }
            if round % 3 == 0 {
                body.extend_from_slice(lits[rand(lits.len())]);
            }
            let mut got: Vec<&str> = db.match_body_all(&body).iter().map(|f| f.name.as_str()).collect();
            let mut want: Vec<&str> = fps
                .iter()
                .filter(|f| body.windows(f.pattern.len()).any(|w| w == f.pattern.as_bytes()))
                .map(|f| f.name.as_str())
                .collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "body {:?}", String::from_utf8_lossy(&body));
        }
    }
}
