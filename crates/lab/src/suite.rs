//! Running scenarios on a lab and reporting them: one [`ScenarioResult`] per scenario (the JSON
//! object `lab run --json` prints), and the confusion table (expected verdict × verdict got) that
//! people read. Rendering is pure and tested without a lab.

use crate::lab::Lab;
use crate::netns::LabError;
use crate::scenario::{Expected, Judge, Scenario, judge_cycle, label};
use censorwatch_model::{Measurement, Verdict};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What one scenario gave.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub scenario: String,
    /// The verdict expected.
    pub expected: Expected,
    /// Every measurement's verdict (one, or a cycle's several).
    pub verdicts: Vec<Verdict>,
    /// The measurements themselves.
    pub measurements: Vec<Measurement>,
    /// Whether the scenario passed.
    pub pass: bool,
    /// Why it could not run, if it could not.
    pub error: Option<String>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl ScenarioResult {
    /// The verdict reported for the scenario: the first one as expected, else the first.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdicts
            .iter()
            .find(|v| self.expected.matches(v))
            .or_else(|| self.verdicts.first())
    }

    /// The `--json` object: `{"scenario", "expected": {"status", "method"}, "verdict", "pass",
    /// "seconds"}`, plus `"verdicts"` (labels) for a cycle and `"error"` when it could not run.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "scenario": self.scenario,
            "expected": {"status": self.expected.status, "method": self.expected.method},
            "verdict": self.verdict(),
            "pass": self.pass,
            "seconds": (self.seconds * 100.0).round() / 100.0,
        });
        if self.verdicts.len() > 1 {
            v["verdicts"] = json!(
                self.verdicts
                    .iter()
                    .map(|v| label(v.status, v.method))
                    .collect::<Vec<_>>()
            );
        }
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        v
    }
}

/// Runs `scenario` on ISP `isp` of `lab`: applies its censor, measures, judges.
pub fn run_scenario(lab: &mut Lab, isp: usize, scenario: &Scenario) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult {
        scenario: scenario.name.to_owned(),
        expected: scenario.expected,
        verdicts: Vec::new(),
        measurements: Vec::new(),
        pass: false,
        error: None,
        seconds: 0.0,
    };
    let outcome = (|| -> Result<(), LabError> {
        lab.apply(isp, &scenario.censor)?;
        let censor_start = Instant::now();
        let probes = match scenario.judge {
            Judge::Once => 1,
            Judge::Cycle { probes, .. } => probes,
        };
        for k in 0..probes {
            if let Judge::Cycle { interval, .. } = scenario.judge {
                let due = interval * k + interval / 2;
                if let Some(wait) = due.checked_sub(censor_start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            let o = lab.measure(isp, scenario.url)?;
            result.verdicts.push(o.verdict);
            result.measurements.push(o.measurement);
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        result.error = Some(e.to_string());
    }
    result.pass = result.error.is_none()
        && match scenario.judge {
            Judge::Once => result.verdicts.first().is_some_and(|v| scenario.expected.matches(v)),
            Judge::Cycle { .. } => judge_cycle(&scenario.expected, &result.verdicts),
        };
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// Runs `scenarios` one after another on ISP 0 of `lab` (one topology, the censor replaced between
/// scenarios), calling `each` after each one.
pub fn run_all(lab: &mut Lab, scenarios: &[Scenario], mut each: impl FnMut(&ScenarioResult)) -> Vec<ScenarioResult> {
    let mut out = Vec::new();
    for s in scenarios {
        let r = run_scenario(lab, 0, s);
        each(&r);
        out.push(r);
    }
    out
}

/// The label of what a result got: the verdict labels (`a+b` for a cycle's mix), or `error`.
pub fn got_label(r: &ScenarioResult) -> String {
    if r.error.is_some() && r.verdicts.is_empty() {
        return "error".into();
    }
    let mut labels: Vec<String> = r.verdicts.iter().map(|v| label(v.status, v.method)).collect();
    labels.sort();
    labels.dedup();
    labels.join(" + ")
}

/// The per-scenario table and the confusion table (Markdown pipe tables, readable as text).
pub fn render_tables(results: &[ScenarioResult], total: Duration) -> String {
    let mut s = String::new();
    s.push_str("| scenario | expected | got | pass | seconds |\n|---|---|---|---|---|\n");
    for r in results {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} |\n",
            r.scenario,
            r.expected.label(),
            got_label(r),
            if r.pass { "yes" } else { "**no**" },
            r.seconds
        ));
    }
    // Confusion: rows = expected verdict, columns = verdicts got (each measurement counted).
    let mut columns: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut rows: Vec<String> = Vec::new();
    for r in results {
        let row = r.expected.label();
        if !rows.contains(&row) {
            rows.push(row.clone());
        }
        let got: Vec<String> = if r.verdicts.is_empty() {
            vec!["error".into()]
        } else {
            r.verdicts.iter().map(|v| label(v.status, v.method)).collect()
        };
        for g in got {
            if !columns.contains(&g) {
                columns.push(g.clone());
            }
            *cells.entry((row.clone(), g)).or_default() += 1;
        }
    }
    columns.sort_by_key(|c| (rows.iter().position(|r| r == c).unwrap_or(usize::MAX), c.clone()));
    s.push_str("\nConfusion (rows: expected verdict; columns: verdicts got, per measurement):\n\n| expected \\ got |");
    for c in &columns {
        s.push_str(&format!(" {c} |"));
    }
    s.push_str("\n|---|");
    s.push_str(&"---|".repeat(columns.len()));
    s.push('\n');
    for row in &rows {
        s.push_str(&format!("| {row} |"));
        for c in &columns {
            match cells.get(&(row.clone(), c.clone())) {
                Some(n) => s.push_str(&format!(" {n} |")),
                None => s.push_str(" · |"),
            }
        }
        s.push('\n');
    }
    let passed = results.iter().filter(|r| r.pass).count();
    s.push_str(&format!(
        "\n{passed}/{} scenarios as expected in {:.1} s\n",
        results.len(),
        total.as_secs_f64()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use censorwatch_model::{Method, Status};

    fn result(name: &str, expected: Expected, got: &[(Status, Option<Method>)]) -> ScenarioResult {
        let verdicts: Vec<Verdict> = got
            .iter()
            .map(|(s, m)| Verdict {
                status: *s,
                method: *m,
                ..Verdict::inconclusive("")
            })
            .collect();
        ScenarioResult {
            scenario: name.into(),
            pass: verdicts.first().is_some_and(|v| expected.matches(v)),
            expected,
            verdicts,
            measurements: Vec::new(),
            error: None,
            seconds: 1.25,
        }
    }

    fn blocked(m: Method) -> Expected {
        Expected {
            status: Status::Blocked,
            method: Some(m),
        }
    }

    #[test]
    fn json_object_has_the_contract_keys() {
        let r = result(
            "sni-reset",
            blocked(Method::TlsReset),
            &[(Status::Blocked, Some(Method::TlsReset))],
        );
        let j = r.to_json();
        assert_eq!(j["scenario"], "sni-reset");
        assert_eq!(j["expected"]["status"], "blocked");
        assert_eq!(j["expected"]["method"], "tls.reset");
        assert_eq!(j["verdict"]["method"], "tls.reset");
        assert_eq!(j["pass"], true);
        assert!(j.get("verdicts").is_none());
        assert!(j.get("error").is_none());
    }

    #[test]
    fn cycle_reports_the_expected_verdict_and_every_label() {
        let r = result(
            "intermittent",
            blocked(Method::TlsReset),
            &[(Status::Ok, None), (Status::Blocked, Some(Method::TlsReset))],
        );
        let j = r.to_json();
        assert_eq!(j["verdict"]["status"], "blocked");
        assert_eq!(j["verdicts"], json!(["ok", "blocked/tls.reset"]));
        assert_eq!(got_label(&r), "blocked/tls.reset + ok");
    }

    #[test]
    fn errors_show_in_json_and_tables() {
        let mut r = result("x", blocked(Method::TcpTimeout), &[]);
        r.error = Some("boom".into());
        assert_eq!(r.to_json()["error"], "boom");
        assert!(r.to_json()["verdict"].is_null());
        let t = render_tables(&[r], Duration::from_secs(3));
        assert!(t.contains("| x | blocked/tcp.timeout | error | **no** |"));
        assert!(t.contains("0/1 scenarios"));
    }

    #[test]
    fn confusion_puts_hits_on_the_diagonal() {
        let ok = Expected {
            status: Status::Ok,
            method: None,
        };
        let rs = vec![
            result("clean", ok, &[(Status::Ok, None)]),
            result(
                "a",
                blocked(Method::TlsReset),
                &[(Status::Blocked, Some(Method::TlsReset))],
            ),
            result("b", blocked(Method::Throttled), &[(Status::Ok, None)]),
        ];
        let t = render_tables(&rs, Duration::from_secs(10));
        assert!(t.contains("| expected \\ got | ok | blocked/tls.reset |"), "{t}");
        assert!(t.contains("| ok | 1 | · |"), "{t}");
        assert!(t.contains("| blocked/tls.reset | · | 1 |"), "{t}");
        assert!(t.contains("| blocked/throttled | 1 | · |"), "{t}");
        assert!(t.contains("2/3 scenarios as expected in 10.0 s"));
    }
}
