//! `censorwatch bgp`: MRT update and RIB files in, BGP signals out (origin changes,
//! counter-announcements, withdrawn episodes, /24 visibility), through [`censorwatch_bgp`].
//!
//! Files are read one after the other in the order given, into one [`BgpMonitor`]: give RIB
//! dumps first and updates in time order (as a shell glob of RouteViews or RIS names does). A file
//! that cannot be read, or breaks off, is reported on stderr with the byte offset, and everything
//! read before the break counts; the other files are still read. Signals stream to stdout as they
//! happen, one line (or `--json` object) each; a summary goes to stderr at the end.
//!
//! Records of types bgpkit-parser cannot read (BGP4MP_ENTRY, RIB_GENERIC, OSPF) are skipped with
//! a note: they are not damage. A progress bar over the input bytes shows on stderr when stderr
//! is a terminal and stdout is not.
//!
//! With `--db URL`, the visible-/24 count of every network whose country is known is also
//! recorded into the store as outage signal samples (kind `bgp`), which `censorwatch events`
//! and the server feed to the outage detector. Only the readings where a network's count changed
//! are recorded (and each network's last one, which says how far the data reaches): the count is a
//! level that holds until it changes. A network's country comes from the stored measurements
//! (the country most of its probes' measurements name) and from `--asn-cc FILE` (CSV `asn,cc`),
//! which **wins** where both name one. Networks of unknown country are not recorded. With
//! `--db`, the recorded networks' count changes are printed like `--visibility involved` ones.
//!
//! Exit codes: 0 all files read cleanly, 1 some file could not be read fully or the store
//! failed, 2 bad usage (including an `--origins` or `--asn-cc` table that cannot be read, or a
//! bad `--db` URL).

use crate::db::DbUrl;
use censorwatch_bgp::{
    BgpMonitor, DEFAULT_BIN_SECONDS, DEFAULT_HOLD_SECONDS, MonitorConfig, MrtError, MrtReader, OriginTable, ReadReport,
    Signal, Visibility, VisibilityScope,
};
use censorwatch_store::{AsnCountry, Store, StoredSignalSample};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `censorwatch bgp`.
#[derive(Debug, clap::Args)]
pub struct BgpArgs {
    /// MRT files (BGP4MP updates, TABLE_DUMP / TABLE_DUMP_V2 RIB dumps; gzip, bzip2 or
    /// uncompressed, told by their first bytes), or - for stdin. Read in the order given: RIB
    /// dumps first, then updates in time order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Expected origins: a prefix-to-AS table (pyasn `ipasn` or CAIDA prefix2as text, possibly
    /// compressed). Without it, expectations come from RIB dumps and the first origin seen in
    /// updates.
    #[arg(long, value_name = "FILE")]
    pub origins: Option<PathBuf>,
    /// Print one JSON object per signal instead of a line of text.
    #[arg(long)]
    pub json: bool,
    /// Visibility time bin, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_BIN_SECONDS,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub bin: i64,
    /// Seconds an origin change must stay gone from every peer before it is reported withdrawn.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_HOLD_SECONDS,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub hold: i64,
    /// Report the visible /24 count of AS N at every bin (repeatable).
    #[arg(long = "asn", value_name = "N")]
    pub asns: Vec<u32>,
    /// Whose visibility to report besides --asn: `involved` (ASes in an origin change, when their
    /// count changes), `all` (every AS whose count changes), or `watched` (only --asn).
    #[arg(long, value_name = "SCOPE", default_value = "involved", value_parser = ["watched", "involved", "all"])]
    pub visibility: String,
    /// Do not take the first origin seen in updates as the expected one (only --origins and RIB
    /// dumps set expectations).
    #[arg(long)]
    pub no_learn: bool,
    /// Record the visible /24 counts of networks with a known country into this store
    /// (sqlite:PATH or clickhouse://HOST:PORT/DB) as outage signals for `censorwatch events`.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Data directory going with --db [default: the SQLite file's directory, or
    /// censorwatch-data for ClickHouse].
    #[arg(long, value_name = "DIR", requires = "db")]
    pub data: Option<PathBuf>,
    /// Networks' countries, CSV `asn,cc` (a header line and `AS` prefixes allowed): used with
    /// --db, and preferred over the countries the stored measurements give.
    #[arg(long, value_name = "FILE", requires = "db")]
    pub asn_cc: Option<PathBuf>,
}

impl BgpArgs {
    fn config(&self, recorded: &BTreeMap<u32, String>) -> MonitorConfig {
        let mut watch = self.asns.clone();
        watch.extend(recorded.keys().filter(|a| !self.asns.contains(a)));
        MonitorConfig {
            bin_seconds: self.bin,
            watch,
            visibility: match self.visibility.as_str() {
                "watched" => VisibilityScope::Watched,
                "all" => VisibilityScope::All,
                _ => VisibilityScope::Involved,
            },
            learn_from_updates: !self.no_learn,
            hold_seconds: self.hold,
        }
    }
}

/// Runs `censorwatch bgp`: signals to `out`, problems and the summary to `err`.
pub fn run(args: BgpArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let expected = match &args.origins {
        None => OriginTable::new(),
        Some(path) => match OriginTable::load(path) {
            Ok(table) => table,
            Err(e) => {
                writeln!(err, "censorwatch bgp: --origins: {e}")?;
                return Ok(ExitCode::from(2));
            }
        },
    };
    let mut recorder = match Recorder::open(&args, err)? {
        Ok(recorder) => recorder,
        Err(code) => return Ok(code),
    };
    let recorded = recorder.as_ref().map(|r| r.countries.clone()).unwrap_or_default();
    let mut monitor = BgpMonitor::new(args.config(&recorded), expected);
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut printer = Printer {
        json: args.json,
        error: None,
        quiet_unchanged: recorded.keys().filter(|a| !args.asns.contains(a)).copied().collect(),
    };
    let mut signals = Vec::new();
    let mut totals = Totals::default();
    let progress = progress_bar(&args.files);
    for path in &args.files {
        let reader = if path.as_os_str() == "-" {
            MrtReader::new("-", io::stdin().lock())
        } else {
            open(path, progress.as_ref())
        };
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => {
                writeln!(err, "censorwatch bgp: {e}")?;
                totals.files += 1;
                totals.failed += 1;
                continue;
            }
        };
        let report = reader.read_all(&mut |event| {
            monitor.apply(event, &mut signals);
            if let Some(r) = &mut recorder {
                r.take(&signals, false);
            }
            printer.print(&mut out, &mut signals);
        });
        if let Some(bar) = &progress {
            bar.suspend(|| totals.add(&report, err))?;
        } else {
            totals.add(&report, err)?;
        }
        if printer.closed() {
            break;
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    monitor.finish(&mut signals);
    if let Some(r) = &mut recorder {
        r.take(&signals, true);
    }
    printer.print(&mut out, &mut signals);
    match printer.error.take() {
        None => out.flush().or_else(quiet_if_closed)?,
        Some(e) => quiet_if_closed(e)?,
    }
    drop(out);
    write_summary(err, &args, &monitor, &totals, started)?;
    let mut store_failed = false;
    if let Some(r) = &mut recorder {
        store_failed = !r.finish(err)?;
    }
    Ok(if totals.failed == 0 && !store_failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Opens an MRT file, counting its bytes on the progress bar.
fn open(path: &Path, progress: Option<&ProgressBar>) -> Result<MrtReader<'static>, MrtError> {
    let Some(bar) = progress else {
        return MrtReader::open(path);
    };
    let name = path.display().to_string();
    match File::open(path) {
        Ok(file) => {
            bar.set_message(name.clone());
            MrtReader::new(name, bar.wrap_read(file))
        }
        Err(source) => Err(MrtError::Open { file: name, source }),
    }
}

/// A bar over the bytes of all input files, when someone is watching stderr and the signals go
/// elsewhere.
fn progress_bar(files: &[PathBuf]) -> Option<ProgressBar> {
    if !io::stderr().is_terminal() || io::stdout().is_terminal() {
        return None;
    }
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
        .ok()?
        .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// A reader of the output that went away (`| head`) is no error.
fn quiet_if_closed(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}

/// Writes signals as they come, and keeps the first write error (the reading goes on only as
/// long as there is somewhere to write).
struct Printer {
    json: bool,
    error: Option<io::Error>,
    /// Networks watched only to be recorded: their unchanged counts are not printed.
    quiet_unchanged: HashSet<u32>,
}

impl Printer {
    fn print(&mut self, out: &mut impl Write, signals: &mut Vec<Signal>) {
        for signal in signals.drain(..) {
            if self.error.is_some() {
                continue;
            }
            if let Signal::Visibility(v) = &signal
                && v.previous == Some(v.slash24)
                && self.quiet_unchanged.contains(&v.asn)
            {
                continue;
            }
            let written = if self.json {
                serde_json::to_writer(&mut *out, &signal)
                    .map_err(io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
            } else {
                writeln!(out, "{signal}")
            };
            if let Err(e) = written {
                self.error = Some(e);
            }
        }
    }

    fn closed(&self) -> bool {
        self.error.is_some()
    }
}

#[derive(Debug, Default)]
struct Totals {
    files: u64,
    failed: u64,
    records: u64,
    elements: u64,
    bytes: u64,
}

impl Totals {
    fn add(&mut self, report: &ReadReport, err: &mut dyn Write) -> io::Result<()> {
        self.files += 1;
        self.records += report.records;
        self.elements += report.elements;
        self.bytes += report.bytes;
        if let Some(first) = &report.first_malformed {
            let more = report.malformed - 1;
            let more = if more > 0 {
                format!(" (and {more} more in this file)")
            } else {
                String::new()
            };
            writeln!(err, "censorwatch bgp: {first}{more}")?;
        }
        if let Some(fatal) = &report.fatal {
            writeln!(err, "censorwatch bgp: {fatal}; the records before it were used")?;
        }
        if let Some(first) = &report.first_unsupported {
            writeln!(
                err,
                "censorwatch bgp: {}: skipped {} of {} records of a type bgpkit-parser cannot read (the first: {first})",
                report.file, report.unsupported, report.records
            )?;
        }
        if !report.is_clean() {
            self.failed += 1;
        }
        Ok(())
    }
}

fn write_summary(
    err: &mut dyn Write,
    args: &BgpArgs,
    monitor: &BgpMonitor,
    totals: &Totals,
    started: Instant,
) -> io::Result<()> {
    let seconds = started.elapsed().as_secs_f64();
    let stats = monitor.stats();
    let (table, rib, updates) = monitor.expected().counts();
    writeln!(
        err,
        "censorwatch bgp: {} of {} files read cleanly: {} records, {} route elements, {:.1} MB decompressed, \
         in {seconds:.2} s ({:.0} records/s)",
        totals.files - totals.failed,
        args.files.len(),
        totals.records,
        totals.elements,
        totals.bytes as f64 / 1e6,
        totals.records as f64 / seconds.max(1e-9),
    )?;
    writeln!(
        err,
        "  routes: {} announcements, {} withdrawals, {} RIB entries, {} peer sessions down; {} peers, {} prefixes",
        stats.announcements,
        stats.withdrawals,
        stats.rib_entries,
        stats.peer_downs,
        monitor.peers().len(),
        monitor.prefixes(),
    )?;
    writeln!(
        err,
        "  expected origins for {} prefixes: {table} from --origins, {rib} from RIB dumps, {updates} learned from updates",
        table + rib + updates
    )?;
    writeln!(
        err,
        "  signals: {} origin changes, {} counter-announcements, {} withdrawn, {} visibility reports",
        stats.origin_changes, stats.counter_announcements, stats.withdrawn, stats.visibility_reports
    )?;
    let mut active = monitor.active_episodes();
    if !active.is_empty() {
        writeln!(
            err,
            "  still announced at the end: {} origin changes; the most widely seen:",
            active.len()
        )?;
        active.sort_by(|a, b| b.peers.cmp(&a.peers).then(a.since.cmp(&b.since)));
        for e in active.iter().take(5) {
            writeln!(
                err,
                "    {} from AS{} since {}, {} peers now, at most {}",
                e.prefix, e.origin, e.since, e.peers, e.peers_max
            )?;
        }
    }
    Ok(())
}

/// Reads an `--asn-cc` table: CSV lines `asn,cc` (`17557,PK` or `AS17557,pk`), an optional
/// header line, blank lines and `#` comments. The error names the line.
pub fn parse_asn_cc(text: &str) -> Result<HashMap<u32, String>, String> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (asn, cc) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let digits = asn.strip_prefix("AS").or_else(|| asn.strip_prefix("as")).unwrap_or(asn);
        let Ok(asn) = digits.parse::<u32>() else {
            if i == 0 && !asn.bytes().any(|b| b.is_ascii_digit()) {
                continue; // a header
            }
            return Err(format!(
                "line {}: {asn:?} is not an AS number (expected asn,cc e.g. 17557,PK)",
                i + 1
            ));
        };
        let upper = cc.to_ascii_uppercase();
        if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("line {}: {cc:?} is not a two-letter country code", i + 1));
        }
        out.insert(asn, upper);
    }
    Ok(out)
}

/// Each network's country: from the stored measurements, the country most of its
/// measurements name (ties: the first alphabetically; "ZZ", OONI's unknown, never), then
/// `table` entries, which win.
pub fn network_countries(pairs: &[AsnCountry], table: &HashMap<u32, String>) -> BTreeMap<u32, String> {
    let mut best: BTreeMap<u32, (u64, String)> = BTreeMap::new();
    for p in pairs {
        let cc = p.cc.trim().to_ascii_uppercase();
        if cc == "ZZ" || cc.len() != 2 || !cc.bytes().all(|b| b.is_ascii_uppercase()) {
            continue;
        }
        let entry = best.entry(p.asn).or_insert((0, cc.clone()));
        if p.measurements > entry.0 || (p.measurements == entry.0 && cc < entry.1) {
            *entry = (p.measurements, cc);
        }
    }
    let mut out: BTreeMap<u32, String> = best.into_iter().map(|(asn, (_, cc))| (asn, cc)).collect();
    out.extend(table.iter().map(|(asn, cc)| (*asn, cc.clone())));
    out
}

/// Samples buffered before a write to the store.
const RECORD_BATCH: usize = 10_000;

/// Records visibility readings of networks with a known country into the store.
struct Recorder {
    store: Box<dyn Store>,
    url: String,
    countries: BTreeMap<u32, String>,
    from_table: usize,
    pending: Vec<StoredSignalSample>,
    written: u64,
    networks: HashSet<u32>,
    error: Option<String>,
}

impl Recorder {
    /// `Ok(None)` without `--db`; `Err(code)` after saying what is wrong.
    #[allow(clippy::type_complexity)]
    fn open(args: &BgpArgs, err: &mut dyn Write) -> io::Result<Result<Option<Recorder>, ExitCode>> {
        let Some(url) = &args.db else {
            return Ok(Ok(None));
        };
        let db = match DbUrl::parse(url) {
            Ok(db) => db,
            Err(message) => {
                writeln!(err, "censorwatch bgp: {message}")?;
                return Ok(Err(ExitCode::from(2)));
            }
        };
        let table = match &args.asn_cc {
            None => HashMap::new(),
            Some(path) => match std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_asn_cc(&t))
            {
                Ok(table) => table,
                Err(e) => {
                    writeln!(err, "censorwatch bgp: --asn-cc {}: {e}", path.display())?;
                    return Ok(Err(ExitCode::from(2)));
                }
            },
        };
        let data = args.data.clone().unwrap_or_else(|| db.default_data_dir());
        let store = match db.open_in(&data) {
            Ok(store) => store,
            Err(message) => {
                writeln!(err, "censorwatch bgp: {message}")?;
                return Ok(Err(ExitCode::FAILURE));
            }
        };
        let pairs = match store.asn_countries() {
            Ok(pairs) => pairs,
            Err(e) => {
                writeln!(
                    err,
                    "censorwatch bgp: cannot read the networks' countries from {url}: {e}"
                )?;
                return Ok(Err(ExitCode::FAILURE));
            }
        };
        let countries = network_countries(&pairs, &table);
        if countries.is_empty() {
            writeln!(
                err,
                "censorwatch bgp: no network has a known country (the store holds no measurements with one, and no \
                 --asn-cc table was given), so nothing will be recorded; ingest measurements first or give --asn-cc"
            )?;
        }
        Ok(Ok(Some(Recorder {
            store,
            url: url.clone(),
            countries,
            from_table: table.len(),
            pending: Vec::new(),
            written: 0,
            networks: HashSet::new(),
            error: None,
        })))
    }

    /// Takes the visibility readings among `signals` that are a network's first, a change, or
    /// (`last`) the final reading of the data.
    fn take(&mut self, signals: &[Signal], last: bool) {
        for signal in signals {
            let Signal::Visibility(v) = signal else { continue };
            if let Some(sample) = self.sample_of(v, last) {
                self.pending.push(sample);
            }
        }
        if self.pending.len() >= RECORD_BATCH {
            self.write();
        }
    }

    fn sample_of(&mut self, v: &Visibility, last: bool) -> Option<StoredSignalSample> {
        let cc = self.countries.get(&v.asn)?;
        if !last && v.previous == Some(v.slash24) {
            return None;
        }
        self.networks.insert(v.asn);
        Some(StoredSignalSample {
            kind: "bgp".to_owned(),
            asn: v.asn,
            time: v.time.0,
            cc: cc.clone(),
            value: v.slash24 as f64,
        })
    }

    fn write(&mut self) {
        if self.error.is_some() || self.pending.is_empty() {
            self.pending.clear();
            return;
        }
        match self.store.put_signal_samples(&self.pending) {
            Ok(n) => self.written += n,
            Err(e) => self.error = Some(e.to_string()),
        }
        self.pending.clear();
    }

    /// Writes what is left and says what was recorded; `false` when the store failed.
    fn finish(&mut self, err: &mut dyn Write) -> io::Result<bool> {
        self.write();
        if let Some(e) = &self.error {
            writeln!(
                err,
                "censorwatch bgp: recording visibility into {} failed ({e}); {} samples were recorded before it, \
                 run the command again to record the rest",
                self.url, self.written
            )?;
            return Ok(false);
        }
        writeln!(
            err,
            "  recorded {} BGP visibility samples of {} networks into {} (countries known for {} networks, {} from \
             --asn-cc); run `censorwatch events` to look for outages",
            self.written,
            self.networks.len(),
            self.url,
            self.countries.len(),
            self.from_table
        )?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn_cc_tables() {
        let t = parse_asn_cc("asn,cc\n17557,pk\n# comment\n\nAS45595, PK \n").unwrap();
        assert_eq!(t.get(&17557).map(String::as_str), Some("PK"));
        assert_eq!(t.get(&45595).map(String::as_str), Some("PK"));
        assert_eq!(t.len(), 2);
        assert!(parse_asn_cc("17557,PK\nx,PK\n").unwrap_err().starts_with("line 2"));
        assert!(parse_asn_cc("17557,PAK\n").unwrap_err().contains("two-letter"));
        assert!(parse_asn_cc("17557\n").is_err());
        assert!(parse_asn_cc("").unwrap().is_empty());
    }

    #[test]
    fn countries_come_from_most_measurements_and_the_table_wins() {
        let p = |asn, cc: &str, measurements| AsnCountry {
            asn,
            cc: cc.into(),
            measurements,
        };
        let pairs = [
            p(1, "AE", 3),
            p(1, "PK", 9),
            p(2, "ZZ", 100),
            p(2, "IR", 1),
            p(3, "ZZ", 5),
            p(4, "DE", 2),
            p(4, "AT", 2),
        ];
        let mut table = HashMap::new();
        table.insert(4u32, "CH".to_owned());
        table.insert(5u32, "PK".to_owned());
        let got = network_countries(&pairs, &table);
        let want: BTreeMap<u32, String> = [(1, "PK"), (2, "IR"), (4, "CH"), (5, "PK")]
            .into_iter()
            .map(|(a, c)| (a, c.to_owned()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(network_countries(&pairs[5..], &HashMap::new())[&4], "AT");
    }
}
