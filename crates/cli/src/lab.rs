//! `censorwatch lab`: the censorship lab ([`censorwatch_lab`]).
//!
//! - `lab list` prints the scenarios (name, expected verdict, what the censor does); no root needed;
//! - `lab run NAME|all [--json]` builds one lab (network namespaces: a client, an ISP router with
//!   the censor, the lab's internet), runs the scenarios one after another on it — replacing the
//!   censor between them — and prints a table per scenario and the confusion table, or with
//!   `--json` one `{"scenario", "expected", "verdict", "pass", …}` object per scenario.
//!
//! - `lab run pk-2024 [--out DIR] [--step-hours N]` replays five Pakistani ISPs side by side on a
//!   compressed clock and writes `DIR/pk-2024.jsonl` (OONI measurements on the simulated clock) and
//!   `DIR/pk-2024-truth.json` (the schedule), then prints per ISP what the verdicts said.
//!
//! Needs root: without it, a clear message and exit 2. SIGINT/SIGTERM delete the lab's namespaces
//! before exiting (130/143); every other exit path drops the lab, which deletes them too.
//! Exit codes: 0 every scenario as expected, 1 some were not (or the lab failed), 2 bad usage
//! (unknown scenario, not root).

use censorwatch_lab::replay::{self, Replay};
use censorwatch_lab::scenario::{self, Scenario};
use censorwatch_lab::{IspLabel, Lab, LabOptions, netns};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `censorwatch lab`.
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    #[command(subcommand)]
    /// What to do.
    pub command: LabCommand,
}

/// `lab` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// List the scenarios with their expected verdicts.
    List,
    /// Run a scenario, or `all` of them, in a fresh lab (needs root).
    Run(RunArgs),
}

/// Arguments of `censorwatch lab run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A scenario name (see `lab list`) or `all`.
    #[arg(value_name = "SCENARIO")]
    pub name: String,
    /// One JSON object per scenario instead of tables.
    #[arg(long)]
    pub json: bool,
    /// The probe's timeout per step (DNS, connect, handshake), seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.5)]
    pub timeout: f64,
    /// pk-2024 only: where to write REPLAY.jsonl (the measurements) and REPLAY-truth.json.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// pk-2024 only: simulated hours per round (1 to 24).
    #[arg(long, value_name = "HOURS", default_value_t = 1,
          value_parser = clap::value_parser!(i64).range(1..=24))]
    pub step_hours: i64,
}

/// The ISP every single-ISP scenario runs behind.
pub fn lab_isp() -> IspLabel {
    IspLabel::new("censorwatch lab ISP", 64496, "PK")
}

/// The scenarios `name` selects, or `None` for an unknown name.
pub fn select(name: &str) -> Option<Vec<Scenario>> {
    if name == "all" {
        Some(scenario::all())
    } else {
        scenario::find(name).map(|s| vec![s])
    }
}

/// Runs `censorwatch lab`.
pub fn run(args: LabArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match args.command {
        LabCommand::List => {
            for s in scenario::all() {
                writeln!(out, "{:<18} {:<24} {}", s.name, s.expected.label(), s.description)?;
            }
            writeln!(
                out,
                "{:<18} {:<24} five ISPs side by side on a compressed clock (run it alone: writes JSONL + ground truth)",
                "pk-2024", "replay"
            )?;
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Run(run) => run_scenarios(&run, out, err),
    }
}

fn run_scenarios(args: &RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if let Err(e) = netns::require_root(netns::is_root()) {
        writeln!(err, "censorwatch lab: {e}")?;
        return Ok(ExitCode::from(2));
    }
    if !(args.timeout > 0.0 && args.timeout <= 60.0) {
        writeln!(err, "censorwatch lab: --timeout must be between 0 and 60 seconds")?;
        return Ok(ExitCode::from(2));
    }
    if args.name == "pk-2024" {
        return run_replay(&replay::pk2024(args.step_hours), args, out, err);
    }
    let Some(scenarios) = select(&args.name) else {
        let names: Vec<&str> = scenario::all().iter().map(|s| s.name).collect();
        writeln!(
            err,
            "censorwatch lab: no scenario {:?}; choose `all` or one of: {}",
            args.name,
            names.join(", ")
        )?;
        return Ok(ExitCode::from(2));
    };
    censorwatch_lab::install_signal_cleanup()?;
    let started = Instant::now();
    let options = LabOptions {
        step: Duration::from_secs_f64(args.timeout),
    };
    let mut lab = Lab::new(&[lab_isp()], options)?;
    writeln!(
        err,
        "censorwatch lab: lab up in {:.1} s (namespaces {}*); running {} scenario(s)",
        started.elapsed().as_secs_f64(),
        lab.plan().prefix,
        scenarios.len()
    )?;
    let mut io_error = None;
    let results = censorwatch_lab::run_all(&mut lab, &scenarios, |r| {
        let line = format!(
            "censorwatch lab: {:<18} {:<5} {:.1} s",
            r.scenario,
            if r.pass { "pass" } else { "FAIL" },
            r.seconds
        );
        let _ = writeln!(err, "{line}");
        if args.json {
            if let Err(e) = writeln!(out, "{}", r.to_json()) {
                io_error.get_or_insert(e);
            }
        }
    });
    lab.shutdown()?;
    if let Some(e) = io_error {
        return Err(e.into());
    }
    if !args.json {
        write!(out, "{}", censorwatch_lab::render_tables(&results, started.elapsed()))?;
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.pass)
        .map(|r| r.scenario.as_str())
        .collect();
    writeln!(
        err,
        "censorwatch lab: {}/{} as expected in {:.1} s{}",
        results.len() - failed.len(),
        results.len(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("; not as expected: {}", failed.join(", "))
        }
    )?;
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_replay(replay: &Replay, args: &RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let jsonl_path = args.out.join(format!("{}.jsonl", replay.name));
    let truth_path = args.out.join(format!("{}-truth.json", replay.name));
    let jsonl = match std::fs::File::create(&jsonl_path) {
        Ok(f) => f,
        Err(e) => {
            writeln!(
                err,
                "censorwatch lab: cannot create {} ({e}); is --out a writable directory?",
                jsonl_path.display()
            )?;
            return Ok(ExitCode::from(2));
        }
    };
    let truth = serde_json::to_string_pretty(&replay.ground_truth())?;
    std::fs::write(&truth_path, truth + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", truth_path.display()))?;
    censorwatch_lab::install_signal_cleanup()?;
    let started = Instant::now();
    let options = LabOptions {
        step: Duration::from_secs_f64(args.timeout),
    };
    let mut lab = Lab::new(&replay.labels(), options)?;
    let rounds = replay.rounds().len();
    writeln!(
        err,
        "censorwatch lab: {} ISPs up in {:.1} s; {rounds} rounds of {} simulated hour(s)",
        replay.isps.len(),
        started.elapsed().as_secs_f64(),
        replay.step / 3600
    )?;
    let mut writer = std::io::BufWriter::new(jsonl);
    let summary = censorwatch_lab::replay::run_replay(&mut lab, replay, &mut writer, |done, total| {
        if done % 12 == 0 || done == total {
            let _ = writeln!(
                err,
                "censorwatch lab: round {done}/{total} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    })?;
    lab.shutdown()?;
    writer.flush()?;
    let mut rows = Vec::new();
    for (i, isp) in replay.isps.iter().enumerate() {
        let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for (_, _, label) in &summary.verdicts[i] {
            *counts.entry(label.as_str()).or_default() += 1;
        }
        rows.push(serde_json::json!({
            "isp": isp.label.name, "asn": isp.label.asn, "technique": isp.technique.name(),
            "measurements": summary.verdicts[i].len(), "unsubmitted_rounds": summary.unsubmitted[i],
            "verdicts": counts,
        }));
    }
    if args.json {
        for r in &rows {
            writeln!(out, "{r}")?;
        }
    } else {
        writeln!(
            out,
            "| ISP | ASN | technique | measurements | rounds dark | verdicts |\n|---|---|---|---|---|---|"
        )?;
        for r in &rows {
            let verdicts: Vec<String> = r["verdicts"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
                .unwrap_or_default();
            writeln!(
                out,
                "| {} | AS{} | {} | {} | {} | {} |",
                r["isp"].as_str().unwrap_or(""),
                r["asn"],
                r["technique"].as_str().unwrap_or(""),
                r["measurements"],
                r["unsubmitted_rounds"],
                verdicts.join(", ")
            )?;
        }
    }
    writeln!(
        err,
        "censorwatch lab: {} measurements in {} and the ground truth in {} ({:.1} s)",
        summary.written,
        jsonl_path.display(),
        truth_path.display(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        assert_eq!(select("all").unwrap().len(), scenario::all().len());
        assert_eq!(select("sni-reset").unwrap()[0].name, "sni-reset");
        assert!(select("sni-rest").is_none());
    }

    #[test]
    fn list_needs_no_root_and_names_every_scenario() {
        let mut out = Vec::new();
        let code = run(
            LabArgs {
                command: LabCommand::List,
            },
            &mut out,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let text = String::from_utf8(out).unwrap();
        for s in scenario::all() {
            assert!(text.contains(s.name), "{} missing", s.name);
        }
        assert!(text.contains("blocked/dns.nxdomain"));
    }
}
