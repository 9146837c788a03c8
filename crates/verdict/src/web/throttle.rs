//! Throttling: a target's large transfer far slower than the same kind of transfer from references
//! over the same access network, with healthy handshakes.
//!
//! Inputs (written by censorwatch's probe): `x_throughput_target` and `x_throughput_decoy`
//! (`{bytes, seconds, bytes_per_second, samples: [[t, bytes], …], failure, status_code, stopped}`)
//! and `x_throughput_reference` (the control's `/throughput`: `{bytes, seconds, bytes_per_second}`).
//!
//! The rule, and where its numbers come from:
//! - The target's **steady** rate is judged, not its average: a throttler may let the first bytes
//!   through at full speed, and TCP's slow start depresses the start of every transfer, so the
//!   first [`WARMUP_SHARE`] of the transfer's time is left out.
//! - `throttled` when that rate is at most 1/[`THROTTLE_FACTOR`] of **every** reference measured
//!   (the design's "≥ 10× slower"). Xue et al., "Throttling Twitter: an emerging censorship
//!   technique in Russia" (IMC 2021), measured Twitter's hosts at ~130–150 kbit/s in Russia while
//!   control hosts on the same vantage points were fast — a gap of well over 10× on any broadband
//!   or 4G link — so the factor catches that case with a margin against ordinary variation.
//! - The transfer must have lasted at least [`MIN_JUDGED_SECONDS`] (a short transfer's rate is
//!   mostly round trips) and returned a 2xx response.
//! - When the target is slow in absolute terms (below [`SLOW_BYTES_PER_SECOND`], 1 Mbit/s) but no
//!   reference was measured, or the references are slow too (the whole network is slow), the
//!   judgement is `inconclusive`, never `throttled`.
//! - Confidence: 0.9 with two references (decoy and control), 0.75 with one; +0.05 when the gap is
//!   30× or more.

use censorwatch_model::{Method, Status, Verdict};
use serde_json::Value;

/// How much slower than every reference the target must be.
pub(crate) const THROTTLE_FACTOR: f64 = 10.0;
/// Share of the transfer's duration left out as warm-up.
pub(crate) const WARMUP_SHARE: f64 = 0.25;
/// Shortest transfer whose rate is judged.
pub(crate) const MIN_JUDGED_SECONDS: f64 = 1.0;
/// Below this (1 Mbit/s) a transfer is slow whatever the references say.
pub(crate) const SLOW_BYTES_PER_SECOND: f64 = 125_000.0;

/// One transfer as recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Transfer {
    pub(crate) bytes: f64,
    pub(crate) seconds: f64,
    pub(crate) samples: Vec<(f64, f64)>,
    pub(crate) failed: Option<String>,
    pub(crate) status_code: Option<i64>,
}

impl Transfer {
    /// Reads a recorded transfer; `None` when the value is not one.
    pub(crate) fn from_value(v: &Value) -> Option<Transfer> {
        let obj = v.as_object()?;
        let samples = obj
            .get("samples")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| Some((s.get(0)?.as_f64()?, s.get(1)?.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        Some(Transfer {
            bytes: obj.get("bytes").and_then(Value::as_f64).unwrap_or(0.0),
            seconds: obj.get("seconds").and_then(Value::as_f64).unwrap_or(0.0),
            samples,
            failed: obj.get("failure").and_then(Value::as_str).map(str::to_owned),
            status_code: obj.get("status_code").and_then(Value::as_i64),
        })
    }

    /// The average rate, bytes per second (`None` for an empty or instant transfer).
    pub(crate) fn average_rate(&self) -> Option<f64> {
        (self.seconds > 0.0 && self.bytes > 0.0).then(|| self.bytes / self.seconds)
    }

    /// The rate after the warm-up: from the last sample at or before [`WARMUP_SHARE`] of the
    /// duration to the last sample. Falls back to the average with fewer than three samples.
    pub(crate) fn steady_rate(&self) -> Option<f64> {
        let (t_end, b_end) = *self.samples.last()?;
        if self.samples.len() < 3 || t_end <= 0.0 {
            return self.average_rate();
        }
        let cut = t_end * WARMUP_SHARE;
        let (t0, b0) = self
            .samples
            .iter()
            .take_while(|(t, _)| *t <= cut)
            .last()
            .copied()
            .unwrap_or((0.0, 0.0));
        if t_end - t0 <= 0.0 {
            return self.average_rate();
        }
        Some((b_end - b0).max(0.0) / (t_end - t0))
    }

    /// Whether a rate can be judged: a 2xx response (or none recorded), no failure before any
    /// byte, at least [`MIN_JUDGED_SECONDS`] long.
    fn judgeable(&self) -> bool {
        let ok_status = self.status_code.is_none_or(|c| (200..300).contains(&c));
        ok_status && self.bytes > 0.0 && self.seconds >= MIN_JUDGED_SECONDS
    }
}

/// A reference rate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reference {
    pub(crate) name: &'static str,
    pub(crate) bytes_per_second: f64,
}

fn reference(name: &'static str, v: Option<&Value>) -> Option<Reference> {
    let t = Transfer::from_value(v?)?;
    if t.failed.is_some() && t.bytes == 0.0 {
        return None;
    }
    if t.status_code.is_some_and(|c| !(200..300).contains(&c)) {
        return None;
    }
    let rate = if t.samples.len() >= 3 {
        t.steady_rate()
    } else {
        t.average_rate().or_else(|| v?.get("bytes_per_second")?.as_f64())
    }?;
    (rate > 0.0).then_some(Reference {
        name,
        bytes_per_second: rate,
    })
}

/// The throttling judgement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Judgement {
    /// No throughput test in the measurement.
    NotMeasured,
    /// The target's transfer cannot be judged (too short, failed, not 2xx).
    Unjudgeable(String),
    /// Far slower than every reference.
    Throttled {
        rate: f64,
        references: Vec<Reference>,
        confidence: f64,
    },
    /// Slow, but nothing says it is the target alone.
    Inconclusive(String),
    /// Not throttled.
    Fine { rate: f64 },
}

/// `"1.23 Mbit/s"` / `"150 kbit/s"`.
pub(crate) fn bits(bytes_per_second: f64) -> String {
    let b = bytes_per_second * 8.0;
    if b >= 1e6 {
        format!("{:.2} Mbit/s", b / 1e6)
    } else {
        format!("{:.0} kbit/s", b / 1e3)
    }
}

/// Judges the recorded target, decoy and control transfers.
pub(crate) fn judge(target: Option<&Value>, decoy: Option<&Value>, control: Option<&Value>) -> Judgement {
    let Some(t) = target.and_then(Transfer::from_value) else {
        return Judgement::NotMeasured;
    };
    if !t.judgeable() {
        let why = match (&t.failed, t.status_code) {
            (Some(f), _) if t.bytes == 0.0 => format!("the transfer failed ({f})"),
            (_, Some(c)) if !(200..300).contains(&c) => format!("the resource answered HTTP {c}"),
            _ => format!(
                "the transfer was too short to time ({:.0} bytes in {:.2} s; at least {MIN_JUDGED_SECONDS} s is needed)",
                t.bytes, t.seconds
            ),
        };
        return Judgement::Unjudgeable(why);
    }
    let Some(rate) = t.steady_rate() else {
        return Judgement::Unjudgeable("the transfer has no rate".into());
    };
    let references: Vec<Reference> = [reference("the decoy host", decoy), reference("the control", control)]
        .into_iter()
        .flatten()
        .collect();
    let slowest_ref = references
        .iter()
        .map(|r| r.bytes_per_second)
        .fold(f64::INFINITY, f64::min);
    if !references.is_empty() && rate * THROTTLE_FACTOR <= slowest_ref {
        let mut confidence: f64 = if references.len() >= 2 { 0.9 } else { 0.75 };
        if rate * 30.0 <= slowest_ref {
            confidence += 0.05;
        }
        return Judgement::Throttled {
            rate,
            references,
            confidence,
        };
    }
    if rate < SLOW_BYTES_PER_SECOND {
        let why = if references.is_empty() {
            "no reference transfer (decoy host or control) was measured to compare it with".to_owned()
        } else {
            format!(
                "the references were not {THROTTLE_FACTOR}× faster ({}), so the whole network may be slow",
                references
                    .iter()
                    .map(|r| format!("{} {}", r.name, bits(r.bytes_per_second)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Judgement::Inconclusive(why);
    }
    Judgement::Fine { rate }
}

/// Revises `verdict` with the throttling judgement: `throttled` only where the page itself loaded
/// (`ok`: healthy handshakes); a slow transfer that cannot be attributed makes an `ok` inconclusive.
pub(crate) fn revise(extra: &serde_json::Map<String, Value>, mut verdict: Verdict) -> Verdict {
    let judgement = judge(
        extra.get("x_throughput_target"),
        extra.get("x_throughput_decoy"),
        extra.get("x_throughput_reference"),
    );
    match judgement {
        Judgement::NotMeasured => verdict,
        Judgement::Unjudgeable(why) => {
            verdict.reasons.push(format!("Throughput was not judged: {why}."));
            verdict
        }
        Judgement::Fine { rate } => {
            verdict.reasons.push(format!(
                "The large transfer ran at {}: no sign of throttling.",
                bits(rate)
            ));
            verdict
        }
        Judgement::Inconclusive(why) if verdict.status == Status::Ok => {
            let mut reasons = verdict.reasons;
            reasons.push(format!("The large transfer was slow, but {why}."));
            Verdict {
                status: Status::Inconclusive,
                method: None,
                confidence: 0.0,
                reasons,
                ..verdict
            }
        }
        Judgement::Inconclusive(why) => {
            verdict.reasons.push(format!("The large transfer was slow, but {why}."));
            verdict
        }
        Judgement::Throttled {
            rate,
            references,
            confidence,
        } if verdict.status == Status::Ok => {
            let refs = references
                .iter()
                .map(|r| format!("{} {}", r.name, bits(r.bytes_per_second)))
                .collect::<Vec<_>>()
                .join(", ");
            let slowest = references
                .iter()
                .map(|r| r.bytes_per_second)
                .fold(f64::INFINITY, f64::min);
            let gap = if rate > 0.0 {
                format!("{:.0}× slower", slowest / rate)
            } else {
                "stalled".to_owned()
            };
            let mut reasons = vec![format!(
                "The site's large transfer ran at {} while the same kind of transfer over the same network ran at {refs}: {gap} with healthy handshakes, which is throttling.",
                bits(rate)
            )];
            reasons.extend(verdict.reasons.into_iter().map(|r| format!("Otherwise: {r}")));
            Verdict {
                status: Status::Blocked,
                method: Some(Method::Throttled),
                confidence,
                reasons,
                ..verdict
            }
        }
        Judgement::Throttled { rate, .. } => {
            verdict.reasons.push(format!(
                "The large transfer was also far slower than the references ({}).",
                bits(rate)
            ));
            verdict
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A transfer at `rate` bytes/s for `seconds`, sampled every 100 ms, after a `burst` of bytes
    /// let through at once (as throttlers and slow start make the first moments unlike the rest).
    fn transfer(rate: f64, seconds: f64, burst: f64) -> Value {
        let mut samples = Vec::new();
        let mut t = 0.1;
        while t <= seconds + 1e-9 {
            samples.push(json!([t, (burst + rate * t).round()]));
            t += 0.1;
        }
        let bytes = burst + rate * seconds;
        json!({"url": "https://abs.twimg.com/x.js", "address": "104.244.43.131:443", "failure": null,
               "status_code": 200, "bytes": bytes.round(), "seconds": seconds,
               "bytes_per_second": (bytes / seconds).round(), "samples": samples, "stopped": "time_limit"})
    }

    fn control(rate: f64) -> Value {
        let bytes = 4_194_304.0;
        json!({"bytes": bytes, "seconds": bytes / rate, "bytes_per_second": rate})
    }

    const TWITTER_2021: f64 = 150_000.0 / 8.0; // 150 kbit/s (Xue et al.)
    const FAST: f64 = 2_500_000.0; // 20 Mbit/s

    #[test]
    fn twitter_2021_against_a_fast_decoy_and_control_is_throttled() {
        let j = judge(
            Some(&transfer(TWITTER_2021, 3.0, 16_384.0)),
            Some(&transfer(FAST, 1.6, 0.0)),
            Some(&control(FAST)),
        );
        let Judgement::Throttled {
            rate,
            references,
            confidence,
        } = j
        else {
            panic!("{j:?}")
        };
        // The 16 KiB burst is left out: the steady rate is the throttled one.
        assert!((rate - TWITTER_2021).abs() / TWITTER_2021 < 0.02, "{rate}");
        assert_eq!(references.len(), 2);
        assert!((confidence - 0.95).abs() < 1e-9, "{confidence}");
    }

    #[test]
    fn one_reference_is_less_sure_and_the_factor_is_a_boundary() {
        let target = transfer(200_000.0, 2.0, 0.0);
        let j = judge(Some(&target), None, Some(&control(2_000_000.0)));
        assert!(
            matches!(j, Judgement::Throttled { confidence, .. } if (confidence - 0.75).abs() < 1e-9),
            "{j:?}"
        );
        // 9× is not enough.
        let j = judge(Some(&target), None, Some(&control(1_800_000.0)));
        assert!(
            matches!(j, Judgement::Fine { rate } if (rate - 200_000.0).abs() < 200.0),
            "{j:?}"
        );
        // Far below the decoy but not the control: not both references, not throttled.
        let j = judge(
            Some(&target),
            Some(&transfer(FAST, 1.5, 0.0)),
            Some(&control(1_000_000.0)),
        );
        assert!(matches!(j, Judgement::Fine { .. }), "{j:?}");
    }

    #[test]
    fn a_slow_network_is_inconclusive_not_throttled() {
        let slow = TWITTER_2021;
        let j = judge(
            Some(&transfer(slow, 3.0, 0.0)),
            Some(&transfer(slow * 2.0, 3.0, 0.0)),
            Some(&control(slow * 3.0)),
        );
        assert!(
            matches!(&j, Judgement::Inconclusive(why) if why.contains("network may be slow")),
            "{j:?}"
        );
        let j = judge(Some(&transfer(slow, 3.0, 0.0)), None, None);
        assert!(
            matches!(&j, Judgement::Inconclusive(why) if why.contains("no reference")),
            "{j:?}"
        );
        // Failed references count as missing.
        let failed = json!({"failure": "generic_timeout_error", "bytes": 0, "seconds": 0, "samples": []});
        let j = judge(
            Some(&transfer(slow, 3.0, 0.0)),
            Some(&failed),
            Some(&json!({"failure": "eof_error"})),
        );
        assert!(
            matches!(&j, Judgement::Inconclusive(why) if why.contains("no reference")),
            "{j:?}"
        );
    }

    #[test]
    fn a_fast_target_is_fine_with_or_without_references() {
        assert!(matches!(
            judge(Some(&transfer(FAST, 1.5, 0.0)), None, None),
            Judgement::Fine { .. }
        ));
        assert!(matches!(
            judge(
                Some(&transfer(FAST, 1.5, 0.0)),
                Some(&transfer(FAST, 1.5, 0.0)),
                Some(&control(FAST))
            ),
            Judgement::Fine { .. }
        ));
    }

    #[test]
    fn unjudgeable_transfers() {
        assert_eq!(judge(None, None, Some(&control(FAST))), Judgement::NotMeasured);
        let short = transfer(TWITTER_2021, 0.5, 0.0);
        assert!(
            matches!(judge(Some(&short), None, Some(&control(FAST))), Judgement::Unjudgeable(w) if w.contains("too short"))
        );
        let mut not_found = transfer(TWITTER_2021, 3.0, 0.0);
        not_found["status_code"] = json!(404);
        assert!(
            matches!(judge(Some(&not_found), None, Some(&control(FAST))), Judgement::Unjudgeable(w) if w.contains("HTTP 404"))
        );
        let failed =
            json!({"failure": "connection_reset", "bytes": 0, "seconds": 0, "samples": [], "status_code": null});
        assert!(
            matches!(judge(Some(&failed), None, Some(&control(FAST))), Judgement::Unjudgeable(w) if w.contains("connection_reset"))
        );
        assert_eq!(judge(Some(&json!("garbage")), None, None), Judgement::NotMeasured);
    }

    #[test]
    fn steady_rate_skips_the_warm_up() {
        let t = Transfer::from_value(&transfer(10_000.0, 4.0, 1_000_000.0)).unwrap();
        let steady = t.steady_rate().unwrap();
        assert!((steady - 10_000.0).abs() < 10.0, "{steady}");
        assert!(t.average_rate().unwrap() > 200_000.0);
        // Few samples: the average.
        let two = Transfer {
            bytes: 1000.0,
            seconds: 2.0,
            samples: vec![(1.0, 500.0), (2.0, 1000.0)],
            ..Default::default()
        };
        assert_eq!(two.steady_rate(), Some(500.0));
        assert_eq!(Transfer::default().steady_rate(), None);
    }

    #[test]
    fn bit_rates_read_well() {
        assert_eq!(bits(TWITTER_2021), "150 kbit/s");
        assert_eq!(bits(FAST), "20.00 Mbit/s");
    }

    fn ok() -> Verdict {
        Verdict {
            status: Status::Ok,
            method: None,
            confidence: 0.95,
            blockpage: None,
            ooni_blocking: None,
            accessible: None,
            reasons: vec!["x.com answered HTTP 200.".into()],
        }
    }

    fn extra(target: Value, decoy: Option<Value>, control: Option<Value>) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("x_throughput_target".into(), target);
        if let Some(d) = decoy {
            m.insert("x_throughput_decoy".into(), d);
        }
        if let Some(c) = control {
            m.insert("x_throughput_reference".into(), c);
        }
        m
    }

    #[test]
    fn revised_verdicts() {
        let throttled = revise(
            &extra(
                transfer(TWITTER_2021, 3.0, 0.0),
                Some(transfer(FAST, 1.5, 0.0)),
                Some(control(FAST)),
            ),
            ok(),
        );
        assert_eq!(
            (throttled.status, throttled.method),
            (Status::Blocked, Some(Method::Throttled))
        );
        assert!(throttled.reasons[0].contains("150 kbit/s"), "{throttled:?}");
        assert!(throttled.reasons[1].starts_with("Otherwise:"));
        assert!(throttled.reasons[0].contains("133× slower"), "{throttled:?}");
        // A transfer that stalls after its first burst is throttled to nothing.
        let stalled = revise(&extra(transfer(0.0, 3.0, 16_384.0), None, Some(control(FAST))), ok());
        assert_eq!(
            (stalled.status, stalled.method),
            (Status::Blocked, Some(Method::Throttled))
        );
        assert!(stalled.reasons[0].contains("stalled"), "{stalled:?}");
        let slow_everywhere = revise(&extra(transfer(TWITTER_2021, 3.0, 0.0), None, None), ok());
        assert_eq!(slow_everywhere.status, Status::Inconclusive);
        let fine = revise(&extra(transfer(FAST, 1.5, 0.0), None, Some(control(FAST))), ok());
        assert_eq!((fine.status, fine.confidence), (Status::Ok, 0.95));
        // Another block stays what it was.
        let mut reset = ok();
        reset.status = Status::Blocked;
        reset.method = Some(Method::TlsReset);
        let still = revise(
            &extra(transfer(TWITTER_2021, 3.0, 0.0), None, Some(control(FAST))),
            reset.clone(),
        );
        assert_eq!((still.status, still.method), (Status::Blocked, Some(Method::TlsReset)));
        assert_eq!(revise(&serde_json::Map::new(), ok()), ok());
    }
}
