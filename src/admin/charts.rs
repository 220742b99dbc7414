//! Seat usage charts, drawn on the server as SVG (no script). Readable without colour:
//! each line has its own dash pattern and is named at its end and in the legend; the
//! chart's title and description say what it shows in words, and days reconstructed
//! from the audit log are shaded and labelled.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};

use crate::licensing::history::{Point, Series};

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 110.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 26.0;

struct Line {
    label: &'static str,
    class: &'static str,
    dash: &'static str,
    value: fn(&Point) -> i64,
}

const LINES: [Line; 3] = [
    Line {
        label: "Capacity",
        class: "capacity",
        dash: "7 4",
        value: |p| p.capacity,
    },
    Line {
        label: "Used",
        class: "used",
        dash: "",
        value: |p| p.used,
    },
    Line {
        label: "Waiting",
        class: "pending",
        dash: "2 3",
        value: |p| p.pending,
    },
];

/// The smallest "nice" number (1, 2 or 5 × 10ⁿ) at or above `v`.
fn nice(v: i64) -> i64 {
    let v = v.max(1);
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= v {
                return m * step;
            }
        }
        step *= 10;
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `days` are the range's days, oldest first; the series' points fall on some of them.
pub fn usage_chart(id: &str, s: &Series, days: &[String]) -> Markup {
    let index = |day: &str| days.iter().position(|d| d == day);
    let top = nice(
        s.points
            .iter()
            .map(|p| p.used.max(p.pending).max(p.capacity))
            .max()
            .unwrap_or(0),
    );
    let span = (days.len().max(2) - 1) as f64;
    let x = |i: usize| LEFT + (W - LEFT - RIGHT) * i as f64 / span;
    let y = |v: i64| TOP + (H - TOP - BOTTOM) * (1.0 - v as f64 / top as f64);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(&format!("Seats of {} over {} days", s.name, days.len())),
        esc(&describe(s, days))
    );
    // Days reconstructed from the audit log, shaded.
    let rebuilt: Vec<usize> = s
        .points
        .iter()
        .filter(|p| p.backfilled)
        .filter_map(|p| index(&p.day))
        .collect();
    if let (Some(a), Some(b)) = (rebuilt.iter().min(), rebuilt.iter().max()) {
        let _ = write!(
            svg,
            r#"<rect class="rebuilt" x="{:.1}" y="{TOP}" width="{:.1}" height="{:.1}"/><text class="note" x="{:.1}" y="{:.1}">reconstructed</text>"#,
            x(*a),
            (x(*b) - x(*a)).max(2.0),
            H - TOP - BOTTOM,
            x(*a) + 3.0,
            TOP + 12.0
        );
    }
    for v in [0, top / 2, top] {
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            W - RIGHT,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0
        );
    }
    for (i, anchor) in [
        (0, "start"),
        (days.len() / 2, "middle"),
        (days.len().saturating_sub(1), "end"),
    ] {
        if let Some(d) = days.get(i) {
            let _ = write!(
                svg,
                r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="{anchor}">{d}</text>"#,
                x(i),
                H - 8.0
            );
        }
    }
    draw_lines(&mut svg, s, &index, &x, &y);
    draw_legend(&mut svg);
    svg.push_str("</svg>");
    html! { (PreEscaped(svg)) }
}

fn draw_lines(
    svg: &mut String,
    s: &Series,
    index: &dyn Fn(&str) -> Option<usize>,
    x: &dyn Fn(usize) -> f64,
    y: &dyn Fn(i64) -> f64,
) {
    let mut ends: Vec<(f64, String, &str)> = Vec::new();
    for line in &LINES {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|p| index(&p.day).map(|i| (x(i), y((line.value)(p)))))
            .collect();
        let Some(&(lx, ly)) = pts.last() else {
            continue;
        };
        let coords: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let dash = if line.dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{}""#, line.dash)
        };
        // A single day is a dot: a polyline of one point draws nothing.
        if pts.len() == 1 {
            let _ = write!(
                svg,
                r#"<circle class="{}" cx="{lx:.1}" cy="{ly:.1}" r="3"/>"#,
                line.class
            );
        } else {
            let _ = write!(
                svg,
                r#"<polyline class="{}" fill="none" points="{}"{dash}/>"#,
                line.class,
                coords.join(" ")
            );
        }
        let last = s.points.last().map_or(0, |p| (line.value)(p));
        ends.push((ly, format!("{} {last}", line.label), line.class));
    }
    // End labels, kept 12 px apart so overlapping lines stay readable.
    ends.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last_y = f64::MIN;
    for (ly, text, class) in ends {
        let ty = (ly + 4.0).max(last_y + 12.0);
        last_y = ty;
        let _ = write!(
            svg,
            r#"<text class="end {class}" x="{:.1}" y="{ty:.1}">{}</text>"#,
            W - RIGHT + 6.0,
            esc(&text)
        );
    }
}

fn draw_legend(svg: &mut String) {
    let mut lx = LEFT;
    for line in &LINES {
        let dash = if line.dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{}""#, line.dash)
        };
        let _ = write!(
            svg,
            r#"<line class="{}" x1="{lx:.1}" x2="{:.1}" y1="12" y2="12"{dash}/><text class="legend" x="{:.1}" y="16">{}</text>"#,
            line.class,
            lx + 26.0,
            lx + 31.0,
            line.label
        );
        lx += 110.0;
    }
}

/// What the chart shows, in one or two sentences (its `<desc>`).
pub fn describe(s: &Series, days: &[String]) -> String {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return String::new();
    };
    if s.points.is_empty() {
        return format!("No usage recorded for {} from {first} to {last}.", s.name);
    }
    let peak = s.points.iter().max_by_key(|p| p.used).map_or(0, |p| p.used);
    let waiting = s.points.iter().map(|p| p.pending).max().unwrap_or(0);
    let today = s.points.last().map_or((0, 0), |p| (p.used, p.capacity));
    format!(
        "From {first} to {last}, {} used at most {peak} seats; today at most {} of {}. Up to {waiting} {} waited for a seat.",
        s.name,
        today.0,
        today.1,
        if waiting == 1 { "person" } else { "people" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_tops_round_up_to_one_two_or_five() {
        assert_eq!(nice(0), 1);
        assert_eq!(nice(3), 5);
        assert_eq!(nice(42), 50);
        assert_eq!(nice(120), 200);
        assert_eq!(nice(100_000), 100_000);
    }
}
