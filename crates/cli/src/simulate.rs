//! `censorwatch simulate`: measurement timelines with known blocks and outages, from
//! [`censorwatch_detect::sim`], and the detector's score against them
//! ([`censorwatch_detect::eval`]).
//!
//! - `simulate` prints the scenarios and their truth, one line each;
//! - `simulate --json` prints the whole timeline as JSONL for other tools: one `scenario` object
//!   per scenario (with its truth), then every `observation` and `signal` in the order they reach
//!   a collector (`arrival`; late submissions included);
//! - `simulate --eval [--json]` runs the detector over the timeline, in batch and incrementally
//!   in arrival order, and prints the score (precision, recall, start and end errors in bins,
//!   steady/intermittent accuracy, false events on clean networks, per scenario kind).
//!
//! Exit codes: 0 done (and, with `--eval`, every target met), 1 a target missed (listed on
//! stderr) or output failed, 2 bad usage.

use censorwatch_detect::eval::{EvalReport, evaluate};
use censorwatch_detect::sim::{SimConfig, Simulation, generate};
use censorwatch_detect::{Config, Observation, SignalSample, parse_duration};
use serde::Serialize;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

/// Arguments of `censorwatch simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Run the detector over the timeline and score it against the truth.
    #[arg(long)]
    pub eval: bool,
    /// JSON: the timeline as JSONL, or with --eval the score as one object.
    #[arg(long)]
    pub json: bool,
    /// Seed; the same seed gives the same timeline.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Timeline length in days (10 to 366: outages need a week of history).
    #[arg(long, value_name = "DAYS", default_value_t = 14,
          value_parser = clap::value_parser!(u32).range(10..=366))]
    pub days: u32,
    /// Multiplies the number of scenarios (84 per unit, each in a country of its own; 1 to 8).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=8))]
    pub scale: u32,
    /// Detector bin width, 5m to 1d (e.g. 30m, 1h, 1d).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub bin: String,
}

/// Runs `censorwatch simulate`: results to `out`, problems to `err`.
pub fn run(args: &SimulateArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let config = match parse_duration(&args.bin).and_then(Config::with_bin) {
        Ok(config) => config,
        Err(e) => {
            writeln!(err, "censorwatch simulate: --bin: {e}")?;
            return Ok(ExitCode::from(2));
        }
    };
    let sim = generate(&SimConfig {
        seed: args.seed,
        days: args.days,
        scale: args.scale,
        ..SimConfig::default()
    });
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let written = if args.eval {
        let report = evaluate(&sim, &config)?;
        let written = if args.json {
            serde_json::to_writer_pretty(&mut out, &report)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
        } else {
            write_report(&mut out, &report)
        };
        if report.missed_targets.is_empty() {
            written.map(|()| ExitCode::SUCCESS)
        } else {
            for missed in &report.missed_targets {
                writeln!(err, "censorwatch simulate: target missed: {missed}")?;
            }
            written.map(|()| ExitCode::FAILURE)
        }
    } else if args.json {
        write_timeline(&mut out, &sim).map(|()| ExitCode::SUCCESS)
    } else {
        write_scenarios(&mut out, &sim).map(|()| ExitCode::SUCCESS)
    };
    let code = match written.and_then(|code| out.flush().map(|()| code)) {
        Ok(code) => code,
        // A reader that went away (`| head`) is no error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => return Err(anyhow::Error::new(e).context("writing to stdout failed")),
    };
    if !args.eval {
        writeln!(
            err,
            "censorwatch simulate: seed {}, {} days, {} scenarios, {} observations, {} signal samples",
            args.seed,
            sim.config.days,
            sim.scenarios.len(),
            sim.observations.len(),
            sim.signals.len()
        )?;
    }
    Ok(code)
}

/// One JSONL record of the timeline.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Record<'a> {
    Scenario(&'a censorwatch_detect::sim::Scenario),
    Observation {
        #[serde(flatten)]
        observation: &'a Observation,
        /// When it reached the collector, Unix seconds.
        arrival: i64,
    },
    Signal(&'a SignalSample),
}

fn write_timeline(out: &mut impl Write, sim: &Simulation) -> io::Result<()> {
    let mut line = |record: &Record<'_>| -> io::Result<()> {
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")
    };
    for scenario in &sim.scenarios {
        line(&Record::Scenario(scenario))?;
    }
    // Arrival order, signals (which arrive when taken) before observations at the same second.
    let mut order: Vec<(i64, bool, usize)> = sim
        .arrivals
        .iter()
        .enumerate()
        .map(|(i, &arrival)| (arrival, true, i))
        .chain(sim.signals.iter().enumerate().map(|(i, s)| (s.time, false, i)))
        .collect();
    order.sort_unstable();
    for (arrival, is_observation, i) in order {
        if is_observation {
            line(&Record::Observation {
                observation: &sim.observations[i],
                arrival,
            })?;
        } else {
            line(&Record::Signal(&sim.signals[i]))?;
        }
    }
    Ok(())
}

fn write_scenarios(out: &mut impl Write, sim: &Simulation) -> io::Result<()> {
    let hours = |t: i64| (t - sim.start) as f64 / 3600.0;
    writeln!(out, "times are hours from the timeline's start ({} Unix)", sim.start)?;
    for s in &sim.scenarios {
        let domains: Vec<&str> = s.domains.iter().map(|d| d.as_ref()).collect();
        writeln!(
            out,
            "{} {:<12} {:<9} domains {} networks {}",
            s.cc,
            s.kind.as_str(),
            s.platform,
            domains.join(","),
            s.asns.len()
        )?;
        for t in &s.truth {
            let end = t.end.map_or("open".to_owned(), |e| format!("{:.1}", hours(e)));
            writeln!(
                out,
                "    block  AS{} {:.1}..{end} {:?} ({} on-periods)",
                t.asn,
                hours(t.start),
                t.pattern,
                t.on.len()
            )?;
        }
        for o in &s.outages {
            writeln!(out, "    outage AS{} {:.1}..{:.1}", o.asn, hours(o.start), hours(o.end))?;
        }
    }
    Ok(())
}

fn write_report(out: &mut impl Write, r: &EvalReport) -> io::Result<()> {
    writeln!(
        out,
        "seed {}, {} days, bin {} s: {} series, {} observations, {} signal samples",
        r.seed, r.days, r.bin, r.series, r.observations, r.signal_samples
    )?;
    writeln!(
        out,
        "blocking (per network): precision {:.3}, recall {:.3} ({} matched of {} true, {} detected)",
        r.precision, r.recall, r.matched, r.truth_events, r.detected_events
    )?;
    writeln!(
        out,
        "  start error {:.2} bins mean, {} max, {:.1}% within one bin",
        r.start_error_bins,
        r.start_error_bins_max,
        100.0 * r.start_within_one_bin
    )?;
    writeln!(
        out,
        "  end error   {:.2} bins mean, {} max, {:.1}% within one bin",
        r.end_error_bins,
        r.end_error_bins_max,
        100.0 * r.end_within_one_bin
    )?;
    writeln!(
        out,
        "  steady/intermittent right {:.1}%; false events on clean networks {}; {:.2} country events per block",
        100.0 * r.intermittent_accuracy,
        r.clean_false_events,
        r.country_events_per_block
    )?;
    let o = &r.outage;
    writeln!(
        out,
        "outages (per network): precision {:.3}, recall {:.3}, start error {:.2}, end error {:.2} bins; \
         blocking events during outages {}",
        o.precision, o.recall, o.start_error_bins, o.end_error_bins, o.blocking_events_during_outages
    )?;
    writeln!(
        out,
        "incremental (arrival order, late data) equals batch: {}; refused as too late: {}",
        r.incremental_matches_batch, r.too_late
    )?;
    writeln!(
        out,
        "{:<13} {:>9} {:>6} {:>8} {:>7} {:>9} {:>9} {:>8} {:>16}",
        "scenario", "scenarios", "truth", "detected", "matched", "start err", "end err", "pattern", "outages t/d/m"
    )?;
    for (name, k) in &r.scenarios {
        writeln!(
            out,
            "{name:<13} {:>9} {:>6} {:>8} {:>7} {:>9.2} {:>9.2} {:>8} {:>16}",
            k.scenarios,
            k.truth_events,
            k.detected_events,
            k.matched,
            k.start_error_bins,
            k.end_error_bins,
            k.pattern_right,
            format!("{}/{}/{}", k.truth_outages, k.detected_outages, k.matched_outages)
        )?;
    }
    if r.missed_targets.is_empty() {
        writeln!(out, "every target met")?;
    }
    Ok(())
}
