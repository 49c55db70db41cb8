//! The warmup page's chart, rendered on the server as SVG (no script, no
//! library): per day, the planned volume as a light bar with what was sent
//! over it, and inbox placement as a line on a 0–100 % scale. Only numbers
//! and dates reach the markup, so nothing in it needs escaping.

use std::fmt::Write;

use crate::store::warmup::Day;

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 36.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Inbox share of a day's placed mail, when any was placed.
pub fn placement(d: &Day) -> Option<f64> {
    let placed = d.landed_inbox + d.landed_spam + d.landed_other + d.missing;
    (placed > 0).then(|| f64::from(d.landed_inbox) * 100.0 / f64::from(placed))
}

/// The chart of `days`, oldest first.
pub fn ramp_svg(days: &[Day]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="Warmup: planned and sent messages per day, and inbox placement" xmlns="http://www.w3.org/2000/svg">"#
    );
    if days.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" class="muted">No warmup days yet: the first is planned at the next tick after midnight.</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return out;
    }
    let (plot_w, plot_h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let max = days
        .iter()
        .map(|d| d.scheduled_sends.max(d.actual_sends))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = plot_w / days.len() as f64;
    let bar = (slot * 0.7).max(1.0);
    let y = |v: f64| TOP + plot_h - v / f64::from(max) * plot_h;
    let _ = write!(
        out,
        r#"<line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" class="axis"/><text x="{tx}" y="{ty}" class="axis-label" text-anchor="end">{max}</text><text x="{tx}" y="{b}" class="axis-label" text-anchor="end">0</text><text x="{px}" y="{ty}" class="axis-label">100%</text><text x="{px}" y="{b}" class="axis-label">0%</text>"#,
        b = TOP + plot_h,
        r = W - RIGHT,
        tx = LEFT - 4.0,
        ty = TOP + 8.0,
        px = W - RIGHT + 4.0,
    );
    let mut line = Vec::new();
    for (i, d) in days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let (planned, sent) = (f64::from(d.scheduled_sends), f64::from(d.actual_sends));
        let pct = placement(d);
        let _ = write!(
            out,
            r#"<g><title>{day} (day {n}, ramp step {step}): {sent} of {planned} sent{p}</title><rect class="planned" x="{x:.1}" y="{py:.1}" width="{bar:.1}" height="{ph:.1}"/><rect class="sent" x="{x:.1}" y="{sy:.1}" width="{bar:.1}" height="{sh:.1}"/></g>"#,
            day = d.day,
            n = d.campaign_day,
            step = d.ramp_step,
            p = pct.map_or(String::new(), |p| format!(", {p:.0}% in the inbox")),
            py = y(planned),
            ph = TOP + plot_h - y(planned),
            sy = y(sent),
            sh = TOP + plot_h - y(sent),
        );
        if let Some(p) = pct {
            line.push((x + bar / 2.0, TOP + plot_h - p / 100.0 * plot_h));
        }
        if days.len() <= 31 || i % 7 == 0 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{}" class="axis-label" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                H - 10.0,
                d.day.format("%m-%d")
            );
        }
    }
    if !line.is_empty() {
        let points: Vec<String> = line.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(
            out,
            r#"<polyline class="placement" fill="none" points="{}"/>"#,
            points.join(" ")
        );
        for (x, y) in &line {
            let _ = write!(
                out,
                r#"<circle class="placement" cx="{x:.1}" cy="{y:.1}" r="2.5"/>"#
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32, planned: u32, sent: u32, inbox: u32, spam: u32) -> Day {
        Day {
            day: chrono::NaiveDate::from_ymd_opt(2030, 3, 17 + n).unwrap(),
            campaign_day: n,
            ramp_step: n,
            scheduled_sends: planned,
            actual_sends: sent,
            opens: 0,
            replies: 0,
            bounces: 0,
            complaints: 0,
            landed_inbox: inbox,
            landed_spam: spam,
            landed_other: 0,
            missing: 0,
            rescued: spam,
            failed: 0,
            status: "completed".into(),
            note: None,
        }
    }

    #[test]
    fn bars_scale_to_the_largest_day_and_placement_is_a_line() {
        let svg = ramp_svg(&[day(1, 2, 2, 2, 0), day(2, 10, 5, 3, 1)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        // The largest day fills the plot: its planned bar starts at the top.
        assert!(svg.contains(&format!(r#"y="{TOP:.1}" width"#)), "{svg}");
        assert!(svg.contains("5 of 10 sent, 75% in the inbox"), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("<polyline"));
    }

    #[test]
    fn a_day_without_placements_has_no_point_and_no_days_say_so() {
        let svg = ramp_svg(&[day(1, 2, 0, 0, 0)]);
        assert_eq!(svg.matches("<circle").count(), 0);
        assert!(!svg.contains("<polyline"));
        assert!(ramp_svg(&[]).contains("No warmup days yet"));
        assert_eq!(placement(&day(1, 4, 4, 3, 1)), Some(75.0));
    }
}
