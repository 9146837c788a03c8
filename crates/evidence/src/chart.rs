//! A small, dependency-free SVG chart for bundles: the share of measurements judged `blocked`
//! over time, one bar per hour, day or week (whichever gives at most a few hundred bars).
//! The share is `blocked / (ok + blocked + down)`; `inconclusive` measurements are left out, and
//! a bucket with no conclusive measurement has no bar.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 270.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const MAX_BARS: i64 = 400;

/// Escapes text for SVG/HTML content and attributes.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Default, Clone, Copy)]
struct Bucket {
    blocked: u64,
    conclusive: u64,
    all: u64,
}

/// The chart of the blocked share over time of `points` (time, verdict status), or `None` when
/// no point has a time.
pub fn blocked_share_svg(title: &str, points: &[(DateTime<Utc>, &str)]) -> Option<String> {
    let min = points.iter().map(|p| p.0.timestamp()).min()?;
    let max = points.iter().map(|p| p.0.timestamp()).max()?;
    let (mut width, mut unit) = if max - min <= 3 * 86_400 {
        (3_600, "hour")
    } else if max - min <= 120 * 86_400 {
        (86_400, "day")
    } else {
        (7 * 86_400, "week")
    };
    while (max - min) / width >= MAX_BARS {
        width *= 2;
        unit = "period";
    }
    let first = min.div_euclid(width);
    let count = max.div_euclid(width) - first + 1;
    let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
    for (t, status) in points {
        let b = buckets.entry(t.timestamp().div_euclid(width) - first).or_default();
        b.all += 1;
        match *status {
            "blocked" => {
                b.blocked += 1;
                b.conclusive += 1;
            }
            "ok" | "down" => b.conclusive += 1,
            _ => {}
        }
    }
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let bar_w = plot_w / count as f64;
    let label = |bucket: i64| {
        let t = DateTime::from_timestamp((first + bucket) * width, 0).unwrap_or_default();
        if width < 86_400 {
            t.format("%Y-%m-%d %H:00").to_string()
        } else {
            t.format("%Y-%m-%d").to_string()
        }
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(s, "<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        escape_xml(title)
    );
    for pct in [0, 25, 50, 75, 100] {
        let y = TOP + plot_h * (1.0 - f64::from(pct) / 100.0);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#dddddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{pct}%</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (&i, b) in &buckets {
        let x = LEFT + bar_w * i as f64;
        let tip = format!(
            "{}: {} of {} conclusive blocked ({} measurements)",
            label(i),
            b.blocked,
            b.conclusive,
            b.all
        );
        if b.conclusive == 0 {
            continue;
        }
        let share = b.blocked as f64 / b.conclusive as f64;
        let h = (plot_h * share).max(if b.blocked > 0 { 1.0 } else { 0.0 });
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#c0392b\"><title>{}</title></rect>",
            TOP + plot_h - h,
            (bar_w * 0.9).max(0.5),
            escape_xml(&tip)
        );
    }
    let base = TOP + plot_h;
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{base:.1}\" y2=\"{base:.1}\" stroke=\"#333333\"/>",
        WIDTH - RIGHT
    );
    let _ = writeln!(s, "<text x=\"{LEFT}\" y=\"{:.1}\">{}</text>", base + 16.0, label(0));
    if count > 1 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            base + 16.0,
            label(count - 1)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"{:.1}\" fill=\"#555555\">Blocked share per {unit} = blocked / (ok + blocked + down); {} measurements.</text>",
        base + 40.0,
        points.len()
    );
    s.push_str("</svg>\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_one_bar_per_conclusive_bucket() {
        let t0 = DateTime::from_timestamp(1_708_128_000, 0).unwrap();
        let h = chrono::Duration::hours(1);
        let pts = [
            (t0, "blocked"),
            (t0, "ok"),
            (t0 + h, "inconclusive"),
            (t0 + h * 2, "blocked"),
        ];
        let svg = blocked_share_svg("IR <twitter.com>", &pts).unwrap();
        assert_eq!(svg.matches("<rect x=").count(), 2);
        assert!(svg.contains("IR &lt;twitter.com&gt;"));
        assert!(svg.contains("1 of 2 conclusive blocked"));
        assert!(blocked_share_svg("x", &[]).is_none());
    }
}
