//! `censorwatch events`: recomputes the blocking events and outages over every stored
//! measurement (the batch detector of `censorwatch-detect`), stores them (replacing the stored
//! ones, which `censorwatch serve` keeps up to date incrementally), and prints the events that
//! match the filters: an aligned table, or with `--json` one object per event
//! (`{id, platform, domain, domains, cc, asns[], method, start, end|null, pattern, confidence,
//! measurements, blocked, first_evidence}`, times in Unix seconds).
//!
//! The outage detector reads the stored measurements' volume per network and the outage signal
//! samples in the store (BGP visibility recorded by `censorwatch bgp --db`). With `--outages` the
//! command prints the outages instead of the events: a table, or with `--json` one object per
//! outage (`{id, cc, start, end|null, level, signals[], country_wide, asns[{asn, start, end,
//! level, signals}], alerts[…]}`); `--cc` and `--since` filter them.
//!
//! Exit codes: 0 done, 1 a runtime failure (store, output), 2 bad usage.

use crate::db::DbUrl;
use anyhow::Context;
use censorwatch_detect::eval::{GroundTruth, TrueBlock, TrueOutage, TruthScore, score_against_truth};
use censorwatch_detect::{Cc, Config, Event, Level, Outage, Pattern, platform_of};
use censorwatch_server::detections::{recompute, unix_now};
use censorwatch_store::record::format_ooni_time;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `censorwatch events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The store: sqlite:PATH (default) or clickhouse://HOST:PORT/DB.
    #[arg(long, value_name = "URL", default_value = crate::db::DEFAULT_DB)]
    pub db: String,
    /// Data directory (ClickHouse's spool) [default: the SQLite file's directory, or
    /// censorwatch-data for ClickHouse].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Only events in this country (two letters).
    #[arg(long, value_name = "CC")]
    pub cc: Option<String>,
    /// Only events of this domain's platform (twitter.com finds the x.com event).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Only events lasting at or after this time: a date or date-time in UTC
    /// (2024-02-17, 2024-02-17T09:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// One JSON object per event instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print the outages (network shutdowns, from probe volume and BGP visibility) instead of
    /// the blocking events.
    #[arg(long, conflicts_with = "domain")]
    pub outages: bool,
    /// Score the events and outages against a replay's ground truth (the lab's
    /// `pk-2024-truth.json`) instead of printing them: precision, recall, start/end errors in
    /// bins, pattern accuracy, false events on networks that block nothing, and the outages, as
    /// `simulate --eval` does. Detection runs up to the truth's clock end.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["outages", "cc", "domain", "since"])]
    pub truth: Option<PathBuf>,
}

/// Reads a replay's ground truth (`censorwatch lab run pk-2024`'s `pk-2024-truth.json`:
/// `clock.end`, `events[{cc, asn, domain, start, end|null, pattern}]`, `outages[{cc, asn, start,
/// end}]`, times in RFC 3339); a platform's domains on one network become one true block. The
/// error names the field that is wrong.
pub fn read_truth(text: &str) -> Result<GroundTruth, String> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let time = |v: &serde_json::Value, what: &str| -> Result<i64, String> {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp())
            .ok_or_else(|| format!("{what}: expected an RFC 3339 time such as 2024-02-17T18:00:00Z, found {v}"))
    };
    let cc = |v: &serde_json::Value, what: &str| {
        v.as_str()
            .and_then(Cc::new)
            .ok_or_else(|| format!("{what}.cc: expected a two-letter country code, found {v}"))
    };
    let asn = |v: &serde_json::Value, what: &str| {
        v.as_u64()
            .and_then(|a| u32::try_from(a).ok())
            .ok_or_else(|| format!("{what}.asn: expected a number, found {v}"))
    };
    let list = |key: &str| -> Result<Vec<serde_json::Value>, String> {
        match &doc[key] {
            serde_json::Value::Null => Ok(Vec::new()),
            serde_json::Value::Array(a) => Ok(a.clone()),
            other => Err(format!("{key}: expected an array, found {other}")),
        }
    };
    let mut truth = GroundTruth {
        end: time(&doc["clock"]["end"], "clock.end")?,
        ..GroundTruth::default()
    };
    for (i, e) in list("events")?.iter().enumerate() {
        let what = format!("events[{i}]");
        let domain = e["domain"]
            .as_str()
            .ok_or_else(|| format!("{what}.domain: expected a domain"))?;
        let pattern = match e["pattern"].as_str() {
            Some("steady") => Pattern::Steady,
            Some("intermittent") => Pattern::Intermittent,
            _ => return Err(format!("{what}.pattern: expected steady or intermittent")),
        };
        truth.add_block(TrueBlock {
            cc: cc(&e["cc"], &what)?,
            platform: platform_of(&domain.to_ascii_lowercase()).into_owned(),
            asn: asn(&e["asn"], &what)?,
            start: time(&e["start"], &format!("{what}.start"))?,
            end: match &e["end"] {
                serde_json::Value::Null => None,
                v => Some(time(v, &format!("{what}.end"))?),
            },
            pattern,
        });
    }
    for (i, o) in list("outages")?.iter().enumerate() {
        let what = format!("outages[{i}]");
        truth.outages.push(TrueOutage {
            cc: cc(&o["cc"], &what)?,
            asn: asn(&o["asn"], &what)?,
            start: time(&o["start"], &format!("{what}.start"))?,
            end: time(&o["end"], &format!("{what}.end"))?,
        });
    }
    Ok(truth)
}

/// Prints a [`TruthScore`] as a few lines of text.
fn write_score(score: &TruthScore, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "blocks: precision {:.3}, recall {:.3} ({} matched of {} true, {} detected), start error {:.2} bins, end \
         error {:.2} bins, pattern right {:.3}, false events on clean networks {}",
        score.precision,
        score.recall,
        score.matched,
        score.truth_events,
        score.detected_events,
        score.start_error_bins,
        score.end_error_bins,
        score.intermittent_accuracy,
        score.clean_false_events
    )?;
    if !score.missed.is_empty() {
        writeln!(out, "missed: {}", score.missed.join(", "))?;
    }
    let o = &score.outage;
    writeln!(
        out,
        "outages: precision {:.3}, recall {:.3} ({} matched of {} true, {} detected), start error {:.2} bins, end \
         error {:.2} bins",
        o.precision, o.recall, o.matched, o.truth, o.detected, o.start_error_bins, o.end_error_bins
    )
}

/// The filters of `censorwatch events`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Country code, upper case.
    pub cc: Option<String>,
    /// Platform name (from the domain given).
    pub platform: Option<String>,
    /// Unix seconds.
    pub since: Option<i64>,
}

impl EventFilter {
    /// Checks the arguments; the error says what is wrong and the form expected.
    pub fn parse(cc: Option<&str>, domain: Option<&str>, since: Option<&str>) -> Result<EventFilter, String> {
        let cc = match cc {
            Some(text) => {
                let upper = text.trim().to_ascii_uppercase();
                if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(format!("--cc {text:?}: expected a two-letter country code such as PK"));
                }
                Some(upper)
            }
            None => None,
        };
        let platform = match domain.map(str::trim) {
            Some("") => return Err("--domain: expected a domain such as x.com".into()),
            Some(d) => Some(platform_of(&d.to_ascii_lowercase()).into_owned()),
            None => None,
        };
        let since = match since {
            Some(text) => Some(parse_time(text).ok_or_else(|| {
                format!(
                    "--since {text:?}: expected a date or date-time in UTC, e.g. 2024-02-17 or 2024-02-17T09:00:00Z"
                )
            })?),
            None => None,
        };
        Ok(EventFilter { cc, platform, since })
    }

    /// Whether `outage` passes (the domain filter does not apply to outages).
    pub fn matches_outage(&self, outage: &Outage) -> bool {
        self.cc.as_deref().is_none_or(|cc| cc == outage.cc.as_str())
            && self.since.is_none_or(|s| outage.end.is_none_or(|e| e >= s))
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        self.cc.as_deref().is_none_or(|cc| cc == event.cc.as_str())
            && self.platform.as_deref().is_none_or(|p| p == &*event.platform)
            && self.since.is_none_or(|s| event.end.is_none_or(|e| e >= s))
    }
}

/// `2024-02-17`, `2024-02-17T09:00:00Z`, `2024-02-17 09:00:00`, RFC 3339 → Unix seconds.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp());
    }
    let naive = text.strip_suffix('Z').unwrap_or(text);
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(naive, format) {
            return Some(t.and_utc().timestamp());
        }
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

fn pattern_name(p: Pattern) -> &'static str {
    match p {
        Pattern::Steady => "steady",
        Pattern::Intermittent => "intermittent",
    }
}

/// Prints `outages` as an aligned table.
pub fn write_outage_table(outages: &[&Outage], out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = outages
        .iter()
        .map(|o| {
            let asns: Vec<String> = o.asns.iter().map(|a| format!("AS{}", a.asn)).collect();
            let signals: Vec<&str> = o.signals.iter().map(|k| k.as_str()).collect();
            vec![
                o.id.clone(),
                o.cc.to_string(),
                match o.level {
                    Level::Warning => "warning",
                    Level::Critical => "critical",
                }
                .to_owned(),
                signals.join(","),
                if o.country_wide {
                    format!("{} (country-wide)", asns.join(","))
                } else {
                    asns.join(",")
                },
                format_ooni_time(o.start),
                o.end.map_or_else(|| "ongoing".to_owned(), format_ooni_time),
            ]
        })
        .collect();
    let header = [
        "OUTAGE",
        "CC",
        "LEVEL",
        "SIGNALS",
        "NETWORKS",
        "START (UTC)",
        "END (UTC)",
    ];
    write_aligned(&header, &rows, out)
}

/// Left-aligned columns two spaces apart, the last one unpadded.
fn write_aligned(header: &[&str], rows: &[Vec<String>], out: &mut dyn Write) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str], out: &mut dyn Write| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = *w));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(header, out)?;
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells, out)?;
    }
    Ok(())
}

/// Prints `events` as an aligned table.
pub fn write_table(events: &[&Event], out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<[String; 8]> = events
        .iter()
        .map(|e| {
            let asns: Vec<String> = e.asns.iter().map(|a| format!("AS{}", a.asn)).collect();
            [
                format!("{} ({})", e.platform, e.domain),
                e.cc.to_string(),
                asns.join(","),
                e.method.map_or("-", |m| m.as_str()).to_owned(),
                format_ooni_time(e.start),
                e.end.map_or_else(|| "ongoing".to_owned(), format_ooni_time),
                pattern_name(e.pattern).to_owned(),
                format!("{:.2}", e.confidence),
            ]
        })
        .collect();
    let header = [
        "PLATFORM",
        "CC",
        "ISPS",
        "METHOD",
        "START (UTC)",
        "END (UTC)",
        "PATTERN",
        "CONFIDENCE",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str], out: &mut dyn Write| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&header, out)?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells, out)?;
    }
    Ok(())
}

/// Runs `censorwatch events`: events to `out`, the summary and problems to `err`.
pub fn run(args: &EventsArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let filter = match EventFilter::parse(args.cc.as_deref(), args.domain.as_deref(), args.since.as_deref()) {
        Ok(f) => f,
        Err(message) => {
            writeln!(err, "censorwatch events: {message}")?;
            return Ok(ExitCode::from(2));
        }
    };
    let db = match DbUrl::parse(&args.db) {
        Ok(db) => db,
        Err(message) => {
            writeln!(err, "censorwatch events: {message}")?;
            return Ok(ExitCode::from(2));
        }
    };
    let data = args.data.clone().unwrap_or_else(|| db.default_data_dir());
    let truth = match &args.truth {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            match read_truth(&text) {
                Ok(t) => Some(t),
                Err(message) => {
                    writeln!(err, "censorwatch events: --truth {}: {message}", path.display())?;
                    return Ok(ExitCode::from(2));
                }
            }
        }
        None => None,
    };
    let store = db.open_in(&data).map_err(anyhow::Error::msg)?;
    let now = truth.as_ref().map_or_else(unix_now, |t| t.end);
    let config = Config::default();
    let found = recompute(store.as_ref(), &config, now)
        .context("recomputing the events failed; the stored events were left as they were")?;
    if let Some(truth) = &truth {
        let score = score_against_truth(&found.events, &found.outages, truth, &config);
        if args.json {
            serde_json::to_writer(&mut *out, &score)?;
            writeln!(out)?;
        } else {
            write_score(&score, out)?;
        }
        writeln!(
            err,
            "censorwatch events: {} measurements read, {} events and {} outages found up to the truth's end, scored",
            found.observations,
            found.events.len(),
            found.outages.len()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.outages {
        let shown: Vec<&Outage> = found.outages.iter().filter(|o| filter.matches_outage(o)).collect();
        if args.json {
            for o in &shown {
                serde_json::to_writer(&mut *out, o)?;
                writeln!(out)?;
            }
        } else {
            write_outage_table(&shown, out)?;
        }
        writeln!(
            err,
            "censorwatch events: {} measurements and {} signal samples read, {} events and {} outages stored, {} \
             outages shown",
            found.observations,
            found.signal_samples,
            found.events.len(),
            found.outages.len(),
            shown.len()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let shown: Vec<&Event> = found.events.iter().filter(|e| filter.matches(e)).collect();
    if args.json {
        for e in &shown {
            serde_json::to_writer(&mut *out, e)?;
            writeln!(out)?;
        }
    } else {
        write_table(&shown, out)?;
    }
    writeln!(
        err,
        "censorwatch events: {} measurements and {} signal samples read, {} events and {} outages stored, {} events \
         shown",
        found.observations,
        found.signal_samples,
        found.events.len(),
        found.outages.len(),
        shown.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Recomputes and stores the events and outages after an ingest, saying on `err` what it found
/// and how long it took. A failure is reported, not fatal: the measurements are stored, and
/// `censorwatch events` recomputes later.
pub fn refresh_after_ingest(store: &dyn censorwatch_store::Store, err: &mut dyn Write) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    match recompute(store, &Config::default(), unix_now()) {
        Ok(found) => writeln!(
            err,
            "censorwatch: events recomputed over {} measurements and {} signal samples in {:.2} s: {} events, {} \
             outages stored",
            found.observations,
            found.signal_samples,
            started.elapsed().as_secs_f64(),
            found.events.len(),
            found.outages.len()
        ),
        Err(e) => writeln!(
            err,
            "censorwatch: the measurements are stored, but recomputing the events failed ({e}); run \
             `censorwatch events` to retry"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_file() {
        let text = r#"{"clock": {"end": "2024-02-19T00:00:00Z"},
            "events": [
              {"cc": "PK", "asn": 1, "domain": "x.com", "start": "2024-02-17T18:00:00Z", "end": null, "pattern": "steady"},
              {"cc": "PK", "asn": 1, "domain": "twitter.com", "start": "2024-02-17T20:00:00Z",
               "end": "2024-02-18T00:00:00Z", "pattern": "steady"}],
            "outages": [{"cc": "PK", "asn": 2, "start": "2024-02-18T06:00:00Z", "end": "2024-02-18T18:00:00Z"}]}"#;
        let t = read_truth(text).unwrap();
        assert_eq!(t.end, 1_708_300_800);
        assert_eq!(t.blocks.len(), 1, "x.com and twitter.com are one block: {t:?}");
        assert_eq!(t.blocks[0].platform, "twitter");
        assert_eq!((t.blocks[0].start, t.blocks[0].end), (1_708_192_800, None));
        assert_eq!(t.outages[0].end - t.outages[0].start, 12 * 3600);
        for (bad, field) in [
            ("[]", "clock.end"),
            (r#"{"clock": {"end": "x"}}"#, "clock.end"),
            (r#"{"clock": {"end": "2024-02-19T00:00:00Z"}, "events": 3}"#, "events"),
            (
                r#"{"clock": {"end": "2024-02-19T00:00:00Z"}, "events": [{"cc": "PK", "asn": 1, "domain": "x.com",
                   "start": "2024-02-17T18:00:00Z", "end": null, "pattern": "sometimes"}]}"#,
                "events[0].pattern",
            ),
        ] {
            let e = read_truth(bad).unwrap_err();
            assert!(e.starts_with(field), "{bad}: {e}");
        }
    }

    #[test]
    fn filters() {
        let f = EventFilter::parse(Some("pk"), Some("Twitter.com"), Some("2024-02-17")).unwrap();
        assert_eq!(f.cc.as_deref(), Some("PK"));
        assert_eq!(f.platform.as_deref(), Some("twitter"));
        assert_eq!(f.since, Some(1_708_128_000));
        assert_eq!(
            EventFilter::parse(None, None, Some("2024-02-17T09:00:00Z"))
                .unwrap()
                .since,
            Some(1_708_160_400)
        );
        for (cc, domain, since) in [
            (Some("PAK"), None, None),
            (Some("p1"), None, None),
            (None, Some(" "), None),
            (None, None, Some("yesterday")),
        ] {
            assert!(
                EventFilter::parse(cc, domain, since).is_err(),
                "{cc:?} {domain:?} {since:?}"
            );
        }
    }
}
