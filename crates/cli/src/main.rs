//! The `censorwatch` binary: parses arguments (clap) and dispatches to the library's
//! subcommands. Exit codes: 0 done, 1 runtime failure, 2 bad usage.

use anyhow::Context;
use censorwatch::analyze::{self, MAX_LINE, RunOptions};
use censorwatch::db::DbUrl;
use censorwatch::ingest;
use censorwatch_verdict::Analyzer;
use clap::{Args, Parser, Subcommand};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// glibc's malloc gives the heap back to the kernel after each large measurement and faults it
/// in again for the next, which cost `analyze` about 40% of its time; mimalloc keeps it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// censorwatch: an internet censorship and shutdown observatory.
#[derive(Debug, Parser)]
#[command(name = "censorwatch", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure URLs (or a test list, or the built-in social-platform list) from this network —
    /// DNS, TCP, TLS with an SNI A/B decoy, HTTP(S) — ask the control for its view, and give a
    /// verdict per URL: a table, or with --json one {"input", "verdict", "measurement"} per URL.
    Probe(censorwatch::probe::ProbeArgs),
    /// Run the control server (an OONI-compatible test helper and /whoami) on an uncensored
    /// network, until SIGINT or SIGTERM. It stores nothing.
    Control(censorwatch::control::ControlArgs),
    /// Give a verdict on every OONI measurement in FILE… (JSONL, .gz, .zst, .json, or - for
    /// stdin): one line (or --json object) per measurement on stdout, a summary on stderr.
    Analyze(AnalyzeArgs),
    /// Judge and store every OONI measurement in FILE… (as analyze reads them). Idempotent: a
    /// measurement already stored is counted as a duplicate, so an interrupted ingest can simply
    /// be run again. Lines that cannot be stored go to a rejects file with the reason.
    Ingest(IngestArgs),
    /// Run the collector (OONI-compatible submission API, native batch) and the query API over
    /// the store, until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Watch BGP in MRT update and RIB files (gz, bz2) for origin changes (hijacks, leaks), the
    /// owner's counter-announcements, their withdrawal, and per-AS visible /24 counts over time:
    /// one line (or --json object) per signal on stdout, a summary on stderr.
    Bgp(censorwatch::bgp::BgpArgs),
    /// Generate measurement timelines with known blocks and outages (steady, staggered,
    /// intermittent, sparse, nationwide outage, clean): the truth as text, the timeline as JSONL
    /// (--json), or the detector's score against the truth (--eval).
    Simulate(censorwatch::simulate::SimulateArgs),
    /// Evidence from the transparency log: `bundle` (measurements, verdicts, inclusion proofs
    /// and a signed checkpoint in one archive), `verify BUNDLE` (offline), `consistency
    /// OLD_CHECKPOINT` (the log still extends a checkpoint published earlier).
    Evidence(censorwatch::evidence::EvidenceArgs),
    /// Recompute the blocking events and outages over the stored measurements, store them, and
    /// print the events (--cc, --domain, --since filter): a table, or --json one object per event.
    Events(censorwatch::events::EventsArgs),
    /// The censorship lab (needs root): `list` the scenarios, or `run NAME|all [--json]` them in
    /// network namespaces with an emulated censor, checking each verdict; a confusion table, or
    /// with --json one {"scenario", "expected", "verdict", "pass"} object per scenario.
    Lab(censorwatch::lab::LabArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Where to store: sqlite:PATH or clickhouse://HOST:PORT/DB [default: sqlite:DATA/censorwatch.db].
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = censorwatch::serve::DEFAULT_LISTEN)]
    listen: String,
    /// Data directory (holds the default SQLite database).
    #[arg(long, value_name = "DIR", default_value = censorwatch::serve::DEFAULT_DATA)]
    data: PathBuf,
    /// Config file (TOML) with `[[webhook]]` tables: url, secret, and optionally cc, platform.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// File holding the bearer token the admin endpoints (/api/v1/admin/…) require [default: the
    /// CENSORWATCH_ADMIN_TOKEN variable; without either, admin endpoints answer 403].
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Input files: JSONL, .gz, .zst, .json, or - for stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Where to store: sqlite:PATH (default) or clickhouse://HOST:PORT/DB.
    #[arg(long, value_name = "URL", default_value = censorwatch::db::DEFAULT_DB)]
    db: String,
    /// Rejected lines (JSONL: file, line, reason, text); default: beside the SQLite file.
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Data directory: transparency log, keys, checkpoints [default: the SQLite file's
    /// directory, or censorwatch-data for ClickHouse].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct AnalyzeArgs {
    /// Input files: JSONL (one measurement per line), gzip- or zstd-compressed JSONL, a single
    /// pretty-printed measurement named .json, or - for stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print one JSON object per input line instead of aligned text.
    #[arg(long)]
    json: bool,
    /// Longest line analyzed, in bytes; longer lines are reported and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = MAX_LINE, hide = true)]
    max_line_bytes: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("censorwatch: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Analyze(args) => analyze_command(args),
        Command::Ingest(args) => ingest_command(args),
        Command::Serve(args) => censorwatch::serve::run(&censorwatch::serve::ServeOptions {
            db: args.db,
            listen: args.listen,
            data: args.data,
            config: args.config,
            admin_token_file: args.admin_token_file,
        })
        .map(|()| ExitCode::SUCCESS),
        Command::Probe(args) => censorwatch::probe::run(args, &mut io::stdout().lock(), &mut io::stderr()),
        Command::Control(args) => censorwatch::control::run(args, &mut io::stderr()),
        Command::Bgp(args) => censorwatch::bgp::run(args, &mut io::stdout().lock(), &mut io::stderr()),
        Command::Evidence(args) => censorwatch::evidence::run(args, &mut io::stdout().lock(), &mut io::stderr()),
        Command::Simulate(args) => censorwatch::simulate::run(&args, &mut io::stdout().lock(), &mut io::stderr()),
        Command::Events(args) => censorwatch::events::run(&args, &mut io::stdout().lock(), &mut io::stderr()),
        Command::Lab(args) => censorwatch::lab::run(args, &mut io::stdout(), &mut io::stderr()),
    }
}

fn ingest_command(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let db = match DbUrl::parse(&args.db) {
        Ok(db) => db,
        Err(message) => {
            eprintln!("censorwatch: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let data = args.data.unwrap_or_else(|| db.default_data_dir());
    let store = db.open_in(&data).map_err(anyhow::Error::msg)?;
    let mut ledger = censorwatch::evidence::open_ledger(&data, store.as_ref(), &mut io::stderr())?;
    let rejects = args.rejects.unwrap_or_else(|| db.default_rejects());
    let analyzer = Analyzer::with_builtin_fingerprints();
    let outcome = ingest::run(
        &analyzer,
        store.as_ref(),
        Some(&mut ledger),
        &args.files,
        &rejects,
        io::stderr().is_terminal(),
        &mut io::stderr(),
    )
    .context("the ingest stopped; what was stored so far is kept, and running the same command again completes it")?;
    censorwatch::evidence::publish_after_ingest(&ledger, outcome.counts.logged, &mut io::stderr())?;
    censorwatch::events::refresh_after_ingest(store.as_ref(), &mut io::stderr())?;
    Ok(if outcome.failed_inputs.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn analyze_command(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let analyzer = Analyzer::with_builtin_fingerprints();
    let opts = RunOptions {
        json: args.json,
        max_line: args.max_line_bytes,
        // A bar on a terminal that also shows the records would be drawn between them.
        progress: io::stderr().is_terminal() && !io::stdout().is_terminal(),
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    // Not locked for the whole run: the progress bar's ticker thread writes to stderr too.
    let mut err = io::stderr();
    let outcome = analyze::run(&analyzer, &args.files, &opts, &mut out, &mut err)
        .context("writing the verdicts to stdout failed; check the disk or the program reading them")?;
    // Nothing is left to write: a closed pipe here is as quiet as one during the run.
    drop(out.into_inner().map(|mut w| w.flush()));
    if outcome.output_closed || outcome.failed_inputs.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}
