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
//! Exit codes: 0 all files read cleanly, 1 some file could not be read fully, 2 bad usage
//! (including an `--origins` table that cannot be read).

use censorwatch_bgp::{
    BgpMonitor, DEFAULT_BIN_SECONDS, DEFAULT_HOLD_SECONDS, MonitorConfig, MrtError, MrtReader, OriginTable, ReadReport,
    Signal, VisibilityScope,
};
use indicatif::{ProgressBar, ProgressStyle};
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
}

impl BgpArgs {
    fn config(&self) -> MonitorConfig {
        MonitorConfig {
            bin_seconds: self.bin,
            watch: self.asns.clone(),
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
    let mut monitor = BgpMonitor::new(args.config(), expected);
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut printer = Printer {
        json: args.json,
        error: None,
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
    printer.print(&mut out, &mut signals);
    match printer.error.take() {
        None => out.flush().or_else(quiet_if_closed)?,
        Some(e) => quiet_if_closed(e)?,
    }
    drop(out);
    write_summary(err, &args, &monitor, &totals, started)?;
    Ok(if totals.failed == 0 {
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
}

impl Printer {
    fn print(&mut self, out: &mut impl Write, signals: &mut Vec<Signal>) {
        for signal in signals.drain(..) {
            if self.error.is_some() {
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
