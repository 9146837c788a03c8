//! `censorwatch evidence`: evidence bundles for a query, their offline verification, and the
//! consistency of the transparency log with a checkpoint published earlier. Also the ledger
//! plumbing `ingest` uses (open and reconcile the data directory's log, publish a checkpoint).
//!
//! - `bundle --cc CC --domain D --since T --until T [--out FILE]`: the matching measurements
//!   (raw, verdicts), one inclusion proof each against a freshly signed checkpoint, a summary
//!   and a chart, in one archive (`censorwatch_evidence::bundle`). `bundle EVENT_ID` bundles a
//!   stored event (see `censorwatch events`): every measurement of its domains in its country
//!   from a day before its start to a day after its end (or until now, while it is ongoing), so
//!   the bundle shows the block, its networks, and the networks and hours around it that were
//!   not blocked; the event itself goes into the manifest's description and the summary.
//! - `verify BUNDLE [--key KEY]… | [--keyring FILE]`: checks everything offline; names each
//!   failing file and check; exit 1 on any failure. After a signing-key rotation a bundle is
//!   signed by the old key or the new one: give both keys (`--key` repeated), or the log's keyring
//!   as `GET /api/v1/keys` publishes it (every key it signed with, each checked within its
//!   validity period).
//! - `consistency OLD_CHECKPOINT [--key KEY]…`: proves the current log extends the old checkpoint
//!   (RFC 6962 consistency proof), or says why it does not; exit 1 when it does not. Without
//!   `--key`, any key of the data directory's keyring may have signed the old checkpoint.

use crate::db::{DEFAULT_DB, DbUrl};
use anyhow::Context;
use censorwatch_evidence::bundle::{Trusted, verify_bundle_trusting};
use censorwatch_evidence::checkpoint::{Checkpoint, open_checkpoint, parse_signed_checkpoint};
use censorwatch_evidence::ledger::Reconciled;
use censorwatch_evidence::log::LogError;
use censorwatch_evidence::{
    Collected, Keyring, Ledger, LedgerError, Selection, VerifierKey, collect, verify_consistency,
};
use censorwatch_store::{DetectionKind, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// Most measurements one bundle holds (everything is assembled in memory).
pub const MAX_BUNDLE_MEASUREMENTS: usize = 100_000;

/// `censorwatch evidence …`.
#[derive(Debug, clap::Args)]
pub struct EvidenceArgs {
    #[command(subcommand)]
    command: EvidenceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EvidenceCommand {
    /// Write an evidence bundle: the measurements matching --cc/--domain/--since/--until with
    /// their verdicts, inclusion proofs, a signed checkpoint, a summary and a chart.
    Bundle(BundleArgs),
    /// Check a bundle offline: every hash, proof and signature. Exit 1 if anything fails.
    Verify(VerifyArgs),
    /// Prove that the current log extends an earlier signed checkpoint (a daily file from
    /// DATA/checkpoints/, or one published elsewhere). Exit 1 if it does not.
    Consistency(ConsistencyArgs),
}

#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// The store: sqlite:PATH or clickhouse://HOST:PORT/DB.
    #[arg(long, value_name = "URL", default_value = DEFAULT_DB)]
    db: String,
    /// Data directory (log, keys) [default: the SQLite file's directory, or censorwatch-data].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

impl StoreArgs {
    fn open(&self) -> anyhow::Result<(Box<dyn Store>, PathBuf)> {
        let db = DbUrl::parse(&self.db).map_err(anyhow::Error::msg)?;
        let data = self.data.clone().unwrap_or_else(|| db.default_data_dir());
        let store = db.open_in(&data).map_err(anyhow::Error::msg)?;
        Ok((store, data))
    }
}

#[derive(Debug, clap::Args)]
struct BundleArgs {
    /// A detected event's id, as `censorwatch events` or `GET /api/v1/events` print it.
    #[arg(value_name = "EVENT_ID", conflicts_with_all = ["cc", "domain", "since", "until"])]
    event: Option<String>,
    /// Country code (two letters).
    #[arg(long, value_name = "CC")]
    cc: Option<String>,
    /// Domain (the host of the measured URL).
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Measured at or after (YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' UTC, or RFC 3339).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Measured before (same forms).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// The archive to write (.tar.gz, .tar.zst or .tar) [default: evidence-CC-DOMAIN.tar.gz].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The bundle.
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// The log's verifier key as its operator published it (NAME+ID+KEY, or @FILE); repeat it to
    /// trust several (the keys before and after a rotation). Without it the key inside the bundle
    /// is used, which proves integrity but not who signed.
    #[arg(long, value_name = "KEY")]
    key: Vec<String>,
    /// The log's keyring as `GET /api/v1/keys` serves it (or DATA/keys/keyring.json): trust any
    /// of its keys, within the period each was in use.
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    keyring: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ConsistencyArgs {
    /// The earlier signed checkpoint (a file).
    #[arg(value_name = "OLD_CHECKPOINT")]
    old: PathBuf,
    /// The verifier key the old checkpoint must be signed with (NAME+ID+KEY, or @FILE); repeat it
    /// to accept several [default: any key of the data directory's keyring].
    #[arg(long, value_name = "KEY")]
    key: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// Runs `censorwatch evidence …`.
pub fn run(args: EvidenceArgs, out: &mut impl Write, err: &mut impl Write) -> anyhow::Result<ExitCode> {
    match args.command {
        EvidenceCommand::Bundle(a) => bundle(&a, out, err),
        EvidenceCommand::Verify(a) => verify(&a, out),
        EvidenceCommand::Consistency(a) => consistency(&a, out),
    }
}

/// Opens the data directory's ledger for appending and reconciles it with `store` (what
/// `ingest` and `evidence bundle` do first), telling `err` what reconciling repaired.
pub fn open_ledger(data: &Path, store: &dyn Store, err: &mut impl Write) -> anyhow::Result<Ledger> {
    let (ledger, reconciled) = Ledger::open_for(data, store).map_err(|e| explain(data, e))?;
    report_reconciled(&reconciled, err)?;
    Ok(ledger)
}

fn report_reconciled(r: &Reconciled, err: &mut impl Write) -> std::io::Result<()> {
    if r.appended + r.found_in_log > 0 {
        writeln!(
            err,
            "censorwatch: transparency log reconciled with the store: {} measurement(s) appended, {} found already \
             logged (an earlier run was interrupted)",
            r.appended, r.found_in_log
        )?;
    }
    if r.unloggable > 0 {
        writeln!(
            err,
            "censorwatch: {} stored measurement(s) have ids that cannot be logged (control characters or over \
             1024 bytes) and stay out of the log",
            r.unloggable
        )?;
    }
    Ok(())
}

fn explain(data: &Path, e: LedgerError) -> anyhow::Error {
    match e {
        LedgerError::Log(LogError::Locked { .. }) => anyhow::anyhow!(
            "the transparency log in {} is held by another censorwatch process (a running `censorwatch serve`?); \
             stop it, or submit through its API instead",
            data.join(censorwatch_evidence::LOG_DIR).display()
        ),
        other => anyhow::Error::new(other),
    }
}

/// After an ingest: signs the log's head and writes it to `DATA/checkpoints/` (latest and the
/// day's file), and says so on `err`.
pub fn publish_after_ingest(ledger: &Ledger, logged: u64, err: &mut impl Write) -> anyhow::Result<()> {
    ledger
        .publish_checkpoint(SystemTime::now())
        .context("writing the signed checkpoint failed")?;
    let cp = ledger.checkpoint();
    writeln!(
        err,
        "censorwatch: transparency log {}: {logged} appended, {} leaves, root {}; checkpoint in {}",
        cp.origin,
        cp.size,
        cp.root_base64(),
        ledger
            .data_dir()
            .join(censorwatch_evidence::CHECKPOINTS_DIR)
            .join("latest.txt")
            .display()
    )?;
    Ok(())
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339 into Unix seconds.
pub fn parse_time_arg(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp());
    }
    censorwatch_evidence::bundle::parse_time(t)
        .map(|d| d.timestamp())
        .ok_or_else(|| format!("{text:?} is not a time: use YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' (UTC) or RFC 3339"))
}

fn bundle(a: &BundleArgs, out: &mut impl Write, err: &mut impl Write) -> anyhow::Result<ExitCode> {
    let filters = match &a.event {
        Some(_) => None,
        None => {
            let since = a
                .since
                .as_deref()
                .map(parse_time_arg)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let until = a
                .until
                .as_deref()
                .map(parse_time_arg)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            Some(Selection::for_query(
                a.cc.as_deref(),
                a.domain.as_deref(),
                since,
                until,
            )?)
        }
    };
    let (store, data) = a.store.open()?;
    let ledger = match Ledger::open_for(&data, store.as_ref()) {
        Ok((ledger, reconciled)) => {
            report_reconciled(&reconciled, err)?;
            ledger
        }
        // A running serve holds the log: prove against what it has committed.
        Err(LedgerError::Log(LogError::Locked { .. })) => {
            Ledger::open_read_only(&data).map_err(|e| explain(&data, e))?
        }
        Err(e) => return Err(explain(&data, e)),
    };
    let selection = match (filters, &a.event) {
        (Some(selection), _) => selection,
        (None, Some(id)) => {
            let event = store
                .detection(DetectionKind::Event, id.trim())
                .context("reading the event from the store failed")?
                .with_context(|| {
                    format!("no stored event has the id {id:?}; `censorwatch events` lists them (and recomputes them)")
                })?;
            Selection::for_event(&event)?
        }
        (None, None) => unreachable!("a selection is made from the filters when no EVENT_ID is given"),
    };
    let Collected { items, unlogged } = collect(store.as_ref(), &ledger, &selection, MAX_BUNDLE_MEASUREMENTS)?;
    let path = a.out.clone().unwrap_or_else(|| PathBuf::from(selection.file_name()));
    let count = items.len();
    let written = selection
        .writer(&ledger, items)
        .write(&path)
        .with_context(|| format!("writing the bundle {} failed", path.display()))?;
    let cp = &written.manifest.checkpoint;
    writeln!(
        out,
        "wrote {} ({count} measurements, checkpoint {} size {} root {})",
        path.display(),
        cp.origin,
        cp.size,
        cp.root
    )?;
    if unlogged > 0 {
        writeln!(
            err,
            "censorwatch: {unlogged} matching measurement(s) are not in the log yet and were left out (the running \
             server logs them at its next commit; run the command again)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A `--key` value: the key itself, or `@FILE` holding it.
fn read_key(text: &str) -> anyhow::Result<VerifierKey> {
    let key_text = match text.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file).with_context(|| format!("cannot read the key file {file}"))?,
        None => text.to_owned(),
    };
    VerifierKey::parse(&key_text).map_err(|e| anyhow::anyhow!("--key: {e}"))
}

/// A `--keyring` file.
fn read_keyring(path: &Path) -> anyhow::Result<Keyring> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the keyring {}", path.display()))?;
    Keyring::parse(&text).map_err(|e| anyhow::anyhow!("--keyring {}: {e}", path.display()))
}

fn verify(a: &VerifyArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let trusted = match &a.keyring {
        Some(path) => Trusted::keyring(read_keyring(path)?),
        None => Trusted::keys(a.key.iter().map(|k| read_key(k)).collect::<anyhow::Result<_>>()?),
    };
    let report = verify_bundle_trusting(&a.bundle, &trusted);
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{report}")?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn consistency(a: &ConsistencyArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.old).with_context(|| format!("cannot read {}", a.old.display()))?;
    let (_, data) = a.store.open()?;
    let ledger = match Ledger::open_read_only(&data) {
        Ok(l) => l,
        Err(e) => return Err(explain(&data, e)),
    };
    let keys: Vec<VerifierKey> = if a.key.is_empty() {
        ledger.keyring().map_err(|e| explain(&data, e))?.verifier_keys()
    } else {
        a.key.iter().map(|k| read_key(k)).collect::<anyhow::Result<_>>()?
    };
    // The first key that verifies it; else the first key's complaint.
    let opened = keys
        .iter()
        .map(|key| open_checkpoint(&text, key))
        .find(Result::is_ok)
        .unwrap_or_else(|| open_checkpoint(&text, &keys[0]));
    let old: Checkpoint = match opened {
        Ok(c) => c,
        Err(e) => {
            // Say what the file claims even when its signature fails.
            let claim = parse_signed_checkpoint(&text)
                .map(|(c, _)| format!(" (it claims {} size {})", c.origin, c.size))
                .unwrap_or_default();
            writeln!(out, "FAIL {}: {e}{claim}", a.old.display())?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let new = ledger.checkpoint();
    let proof = if old.size <= new.size {
        ledger.log().consistency_proof(old.size, new.size)?
    } else {
        Vec::new()
    };
    match verify_consistency(&old, &new, &proof) {
        Ok(()) => {
            writeln!(
                out,
                "OK: the log {} at size {} (root {}) extends the checkpoint at size {} (root {}); consistency proof of \
                 {} hashes verified",
                new.origin,
                new.size,
                new.root_base64(),
                old.size,
                old.root_base64(),
                proof.len()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            writeln!(out, "FAIL: {e}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}
