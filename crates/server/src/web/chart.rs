//! The platform page's per-network timeline heatmap as inline SVG: one row per network, one
//! column per time bin, each cell shaded by its blocked share, with a `<title>` per cell (a
//! tooltip, read by screen readers) and a text legend. Built with maud, so every label is
//! escaped.

use super::view::{Heatmap, iso_time, percent};
use maud::{Markup, html};

const LABEL_W: f64 = 150.0;
const CELL_H: f64 = 22.0;
const TOP: f64 = 8.0;
const AXIS_H: f64 = 44.0;
const PLOT_W: f64 = 720.0;

/// The fill of a blocked share: from pale green (0) through amber to dark red (1). Every shade
/// is distinguishable from "no data" (white with a grey outline); the legend and each cell's
/// title give the number, so colour is never the only carrier of meaning.
pub(crate) fn share_fill(share: f64) -> String {
    let stops: [(f64, [u8; 3]); 3] = [
        (0.0, [0xd9, 0xf0, 0xd3]),
        (0.5, [0xf4, 0xa5, 0x3c]),
        (1.0, [0x9e, 0x10, 0x1a]),
    ];
    let s = share.clamp(0.0, 1.0);
    let (lo, hi) = if s <= 0.5 {
        (stops[0], stops[1])
    } else {
        (stops[1], stops[2])
    };
    let f = (s - lo.0) / (hi.0 - lo.0);
    let c: Vec<u8> = (0..3)
        .map(|i| (f64::from(lo.1[i]) + (f64::from(hi.1[i]) - f64::from(lo.1[i])) * f).round() as u8)
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn bin_label(bin: i64) -> String {
    match bin {
        b if b % 86_400 == 0 && b / 86_400 == 1 => "day".to_owned(),
        b if b % 86_400 == 0 => format!("{} days", b / 86_400),
        3600 => "hour".to_owned(),
        b => format!("{} hours", b / 3600),
    }
}

/// A label cut to fit the label column (the full one is in its `<title>`).
fn short(label: &str) -> String {
    const MAX: usize = 24;
    if label.chars().count() <= MAX {
        return label.to_owned();
    }
    let head: String = label.chars().take(MAX - 1).collect();
    format!("{head}…")
}

/// The heatmap of `map`, titled `title`; `name` labels a network (e.g. "PTCL AS17557").
pub(crate) fn heatmap_svg(title: &str, map: &Heatmap, name: &dyn Fn(u32) -> String) -> Markup {
    let rows = map.asns.len().max(1) as f64;
    let height = TOP + rows * CELL_H + AXIS_H;
    let width = LABEL_W + PLOT_W + 10.0;
    let cell_w = PLOT_W / map.bins.max(1) as f64;
    let last = map.first + map.bin * map.bins as i64;
    let desc = format!(
        "Blocked share per {} and network, from {} to {}: {} networks, {} time bins. Pale green is none blocked, \
         dark red all blocked, white no measurement.",
        bin_label(map.bin),
        iso_time(map.first),
        iso_time(last),
        map.asns.len(),
        map.bins
    );
    html! {
        svg.heatmap xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="heatmap-title heatmap-desc"
            width=(width) height=(height) viewBox={"0 0 " (width) " " (height)}
            font-family="sans-serif" font-size="11" {
            title #heatmap-title { (title) }
            desc #heatmap-desc { (desc) }
            @for (row, asn) in map.asns.iter().enumerate() {
                @let y = TOP + row as f64 * CELL_H;
                @let label = name(*asn);
                g.hm-row data-asn=(asn) {
                    text x=(LABEL_W - 8.0) y=(y + CELL_H * 0.65) text-anchor="end" fill="#1a1a1a" {
                        title { (label) }
                        (short(&label))
                    }
                    @for col in 0..map.bins {
                        @let x = LABEL_W + col as f64 * cell_w;
                        @let start = map.first + map.bin * col as i64;
                        @match map.cells.get(&(row, col)) {
                            Some(t) => {
                                @let fill = t.blocked_share().map(share_fill).unwrap_or_else(|| "#e6e6e6".to_owned());
                                rect.hm-cell x=(format!("{x:.1}")) y=(y + 1.0) width=(format!("{:.2}", cell_w.max(0.5))) height=(CELL_H - 2.0) fill=(fill) {
                                    title { (label) ", " (iso_time(start)) ": " (t.blocked) " of " (t.conclusive()) " conclusive measurements blocked (" (percent(t.blocked, t.conclusive())) "), " (t.measurements) " measurements" }
                                }
                            }
                            None => {
                                rect.hm-empty x=(format!("{x:.1}")) y=(y + 1.0) width=(format!("{:.2}", cell_w.max(0.5))) height=(CELL_H - 2.0) fill="#ffffff" stroke="#d0d0d0" stroke-width="0.5" {
                                    title { (label) ", " (iso_time(start)) ": no measurement" }
                                }
                            }
                        }
                    }
                }
            }
            @let base = TOP + rows * CELL_H;
            line x1=(LABEL_W) x2=(LABEL_W + PLOT_W) y1=(base + 2.0) y2=(base + 2.0) stroke="#333333" {}
            text x=(LABEL_W) y=(base + 16.0) fill="#1a1a1a" { (iso_time(map.first)) }
            text x=(LABEL_W + PLOT_W) y=(base + 16.0) text-anchor="end" fill="#1a1a1a" { (iso_time(last)) }
            text x=(LABEL_W) y=(base + 34.0) fill="#404040" { "One column per " (bin_label(map.bin)) "; shade = blocked / (ok + blocked + down)." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::view::{Row, Tally, heatmap};

    #[test]
    fn one_group_per_network_one_rect_per_bin_and_escaped_labels() {
        let rows: Vec<Row> = (0..10)
            .flat_map(|i| {
                [1u32, 2, 3].map(|asn| Row {
                    time: Some(i * 3600),
                    asn: Some(asn),
                    tally: Tally {
                        measurements: 2,
                        ok: 1,
                        blocked: u64::from(asn == 1) + u64::from(i % 2 == 0 && asn == 1),
                        ..Tally::default()
                    },
                    ..Row::default()
                })
            })
            .filter(|r| !(r.asn == Some(3) && r.time == Some(0)))
            .collect();
        let map = heatmap(&rows);
        let svg = heatmap_svg("x.com <in> PK", &map, &|asn| format!("<b>{asn}</b>")).into_string();
        assert_eq!(svg.matches("<g class=\"hm-row\"").count(), 3);
        assert_eq!(svg.matches("<rect class=\"hm-cell\"").count(), 29);
        assert_eq!(svg.matches("<rect class=\"hm-empty\"").count(), 1);
        assert!(svg.contains("role=\"img\"") && svg.contains("<title id=\"heatmap-title\">x.com &lt;in&gt; PK"));
        assert!(!svg.contains("<b>") && svg.contains("&lt;b&gt;1&lt;/b&gt;"));
        assert!(svg.contains("2 of 3 conclusive measurements blocked (67%)"), "{svg}");
        assert_eq!(short("PTCL AS17557"), "PTCL AS17557");
        assert_eq!(
            short("Pakistan Telecommunication Company AS17557"),
            "Pakistan Telecommunicat…"
        );
    }

    #[test]
    fn shades_run_from_green_to_red() {
        assert_eq!(share_fill(0.0), "#d9f0d3");
        assert_eq!(share_fill(0.5), "#f4a53c");
        assert_eq!(share_fill(1.0), "#9e101a");
        assert_eq!(share_fill(7.0), "#9e101a");
    }
}
