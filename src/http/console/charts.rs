//! The console's charts as SVG text, drawn without JavaScript: a line chart
//! (metrics across solution versions, live serving over the last hour), a
//! Gantt timeline of step attempts and a pipeline's step graph.
//! Pure functions of their input. Every user string (ids, names, labels,
//! links) goes through [`escape`], so the output can be embedded inline with
//! `maud::PreEscaped`; no element ids are used, so many charts share a page.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;

use chrono::{DateTime, Utc};

/// Appends formatted text to a `String` (which cannot fail).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const INK: &str = "#1f2937";
const MUTED: &str = "#6b7280";
const GRID: &str = "#e5e7eb";
const AXIS: &str = "#9ca3af";
const PAD: f64 = 12.0;
/// Series colours (Tableau 10), reused in order.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
/// Step statuses in the order a legend lists them.
const STATUSES: [&str; 7] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "upstream_failed",
    "cancelled",
];

/// Escapes text for XML content and attribute values (`& < > " '`).
/// Characters XML 1.0 cannot carry (most control characters) become U+FFFD,
/// so a hostile label can neither inject markup nor break the document.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The fill of a step status, in the colours Airflow users know: succeeded
/// green, failed red, running lime green, queued grey, skipped pink,
/// upstream_failed orange, cancelled dark red; anything else (no status yet)
/// white, drawn with a grey border.
pub fn status_colour(status: &str) -> &'static str {
    match status {
        // Runs and attempts (Airflow's colours) and versions: an active
        // version is a success, one being created is running.
        "succeeded" | "active" => "#008000",
        "failed" => "#ff0000",
        "running" | "creating" => "#32cd32",
        "queued" => "#808080",
        "skipped" => "#ff69b4",
        "upstream_failed" => "#ffa500",
        "cancelled" => "#8b0000",
        _ => "#ffffff",
    }
}

/// Text colour readable on [`status_colour`].
pub fn status_ink(status: &str) -> &'static str {
    match status {
        "succeeded" | "active" | "failed" | "queued" | "cancelled" => "#ffffff",
        _ => INK,
    }
}

/// Border of a status shape: grey on white, a darker edge on colours.
fn status_border(status: &str) -> &'static str {
    if status_colour(status) == "#ffffff" {
        r##"stroke="#9ca3af""##
    } else {
        r##"stroke="#000000" stroke-opacity="0.3""##
    }
}

// ---------------------------------------------------------------------------
// Line chart
// ---------------------------------------------------------------------------

/// A line chart: named series over a numeric x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Shown above the plot and read by screen readers.
    pub title: String,
    pub series: Vec<Series>,
    /// Text for x values (`v3`, `14:05`); when empty, the x axis gets
    /// numeric ticks. Labels are thinned so they never overlap.
    pub x_labels: Vec<(f64, String)>,
    /// Shown above the y axis (`ms`, `req/s`).
    pub y_unit: Option<String>,
    /// Size in px (at least 200 × 120).
    pub width: u32,
    pub height: u32,
}

impl Default for LineChart {
    fn default() -> Self {
        LineChart {
            title: String::new(),
            series: Vec::new(),
            x_labels: Vec::new(),
            y_unit: None,
            width: 640,
            height: 280,
        }
    }
}

/// One line: (x, y) points. Points with a non-finite x are dropped; a
/// non-finite y leaves a gap in the line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Draws `spec` as SVG. Each series is a line with a dot on each point when
/// there is room (and always on a lone point); hovering a dot shows its
/// value. The y axis has round ticks and starts at zero when the data is
/// non-negative and zero is near; equal values get a band around them.
/// Without any finite point the chart says "No data yet" instead of axes.
pub fn line_chart(spec: &LineChart) -> String {
    let width = f64::from(spec.width.max(200));
    let height = f64::from(spec.height.max(120));
    let mut svg = Svg::open(width, height, &spec.title);
    text(
        &mut svg,
        PAD,
        18.0,
        TITLE,
        &fit(&spec.title, width - 2.0 * PAD, 13.0),
    );

    // Sorted by x; a non-finite y stays as a gap marker.
    let series: Vec<Vec<(f64, f64)>> = spec
        .series
        .iter()
        .map(|s| {
            let mut p: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(x, _)| x.is_finite())
                .collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            p
        })
        .collect();
    let finite = || series.iter().flatten().filter(|(_, y)| y.is_finite());
    let Some((ylo, yhi)) = min_max(finite().map(|p| p.1)) else {
        text(&mut svg, width / 2.0, height / 2.0, NOTE, "No data yet");
        return svg.close();
    };
    let x_given: Vec<(f64, &str)> = spec
        .x_labels
        .iter()
        .filter(|(x, _)| x.is_finite())
        .map(|(x, t)| (*x, t.as_str()))
        .collect();
    let (mut xlo, mut xhi) =
        min_max(finite().map(|p| p.0).chain(x_given.iter().map(|l| l.0))).unwrap_or((0.0, 1.0));
    let lone_x = xlo == xhi;
    if lone_x {
        xlo -= 1.0;
        xhi += 1.0;
    }

    // Legend rows under the title.
    let legend = legend_layout(
        spec.series.iter().zip(&series).map(|(s, p)| {
            if p.iter().any(|(_, y)| y.is_finite()) {
                Cow::Borrowed(s.name.as_str())
            } else {
                Cow::Owned(format!("{} (no data)", s.name))
            }
        }),
        width - 2.0 * PAD,
    );
    let legend_top = 30.0;
    let unit_h = if spec.y_unit.is_some() { 16.0 } else { 0.0 };
    let top = legend_top + legend.height + unit_h + 8.0;
    let bottom = height - 26.0;
    let plot_h = (bottom - top).max(20.0);

    let (ylo, yhi) = y_domain(ylo, yhi);
    let yt = nice_ticks(ylo, yhi, ((plot_h / 30.0) as usize).clamp(2, 8));
    let (ylo, yhi) = (yt.values[0], yt.values[yt.values.len() - 1]);
    let yfmt = TickFormat::new(&yt);
    let ylabels: Vec<String> = yt.values.iter().map(|v| yfmt.format(*v)).collect();
    let left = PAD
        + ylabels
            .iter()
            .map(|l| text_width(l, 11.0))
            .fold(0.0, f64::max)
        + 8.0;
    let widest_x = x_given
        .iter()
        .map(|l| text_width(l.1, 11.0))
        .fold(0.0, f64::max);
    let right = width - PAD - (widest_x / 2.0).max(4.0);
    let plot_w = (right - left).max(20.0);
    let sx = |x: f64| left + (x - xlo) / (xhi - xlo) * plot_w;
    let sy = |y: f64| bottom - (y - ylo) / (yhi - ylo) * plot_h;

    // Y grid and labels.
    for (v, label) in yt.values.iter().zip(&ylabels) {
        let y = sy(*v);
        put!(
            svg,
            r#"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="{GRID}"/>"#
        );
        text(&mut svg, left - 6.0, y + 4.0, SMALL.anchor("end"), label);
    }
    if let Some(unit) = &spec.y_unit {
        text(&mut svg, PAD, top - 10.0, SMALL, unit);
    }

    // X axis, ticks and labels.
    put!(
        svg,
        r#"<line x1="{left:.1}" y1="{bottom:.1}" x2="{right:.1}" y2="{bottom:.1}" stroke="{AXIS}"/>"#
    );
    let xticks: Vec<(f64, String)> = if !x_given.is_empty() {
        let mut given = x_given.clone();
        given.sort_by(|a, b| a.0.total_cmp(&b.0));
        thin_labels(&given, &sx)
            .into_iter()
            .map(|i| (given[i].0, given[i].1.to_string()))
            .collect()
    } else if lone_x {
        let x = xlo + 1.0;
        vec![(x, format_number(x))]
    } else {
        let t = nice_ticks(xlo, xhi, ((plot_w / 80.0) as usize).max(1));
        let f = TickFormat::new(&t);
        t.values
            .iter()
            .filter(|v| **v >= xlo - 1e-9 * (xhi - xlo) && **v <= xhi + 1e-9 * (xhi - xlo))
            .map(|v| (*v, f.format(*v)))
            .collect()
    };
    for (x, label) in &xticks {
        let px = sx(*x);
        put!(
            svg,
            r#"<line x1="{px:.1}" y1="{bottom:.1}" x2="{px:.1}" y2="{:.1}" stroke="{AXIS}"/>"#,
            bottom + 4.0
        );
        text(&mut svg, px, bottom + 17.0, SMALL.anchor("middle"), label);
    }

    // Lines, then dots on top.
    let label_of = |x: f64| {
        x_given
            .iter()
            .find(|l| (l.0 - x).abs() <= 1e-9 * x.abs().max(1.0))
            .map_or_else(|| format_number(x), |l| l.1.to_string())
    };
    let unit = spec
        .y_unit
        .as_deref()
        .map_or(String::new(), |u| format!(" {u}"));
    for (i, (s, points)) in spec.series.iter().zip(&series).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let dots = points.len() as f64 <= plot_w / 12.0;
        for run in points
            .split(|(_, y)| !y.is_finite())
            .filter(|r| !r.is_empty())
        {
            if run.len() > 1 {
                put!(
                    svg,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round" points=""#
                );
                for (k, (x, y)) in run.iter().enumerate() {
                    let sep = if k == 0 { "" } else { " " };
                    put!(svg, "{sep}{:.1},{:.1}", sx(*x), sy(*y));
                }
                svg.push_str(r#""/>"#);
            }
            if dots || run.len() == 1 {
                // A lone point is all there is of its line: make it visible.
                let r = if run.len() == 1 { 4.5 } else { 3.0 };
                for (x, y) in run {
                    put!(
                        svg,
                        r##"<circle class="point" cx="{:.1}" cy="{:.1}" r="{r}" fill="{colour}" stroke="#ffffff" stroke-width="1">"##,
                        sx(*x),
                        sy(*y)
                    );
                    let (name, at, value) = (&s.name, label_of(*x), format_number(*y));
                    let tip = format!("{name}: {at} → {value}{unit}");
                    put!(svg, "<title>{}</title></circle>", escape(&tip));
                }
            }
        }
    }

    // Legend.
    for (i, item) in legend.items.iter().enumerate() {
        let (x, y) = (
            PAD + item.x,
            legend_top + item.row as f64 * LEGEND_ROW + 8.0,
        );
        let colour = PALETTE[i % PALETTE.len()];
        put!(
            svg,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="3" stroke-linecap="round"/>"#,
            x + 14.0
        );
        text(&mut svg, x + 19.0, y + 4.0, LABEL, &item.text);
    }
    svg.close()
}

/// The y range to draw: zero is included when the data is non-negative and
/// zero is near (so rates and counts are not exaggerated); equal values get
/// a band of ±10% (or 0..1 around zero).
fn y_domain(lo: f64, hi: f64) -> (f64, f64) {
    if lo == hi {
        return if lo == 0.0 {
            (0.0, 1.0)
        } else {
            (lo - lo.abs() * 0.1, hi + hi.abs() * 0.1)
        };
    }
    if lo >= 0.0 && lo <= hi * 0.25 {
        (0.0, hi)
    } else {
        (lo, hi)
    }
}

/// Which of the x labels (sorted by x) to show: every k-th for the smallest
/// k in 1, 2, 3, 5, 10, 15, 20, 30, 60, 100, 200, 500, ... that keeps them
/// apart (on integer x, the multiples of k, so `v5`, `v10`, ...).
fn thin_labels(labels: &[(f64, &str)], sx: &dyn Fn(f64) -> f64) -> Vec<usize> {
    let integers = labels
        .iter()
        .all(|(x, _)| x.fract() == 0.0 && x.abs() < 1e15);
    let mut steps = vec![1usize, 2, 3, 5, 10, 15, 20, 30, 60];
    let mut magnitude = 100;
    while steps[steps.len() - 1] < labels.len() {
        steps.extend([magnitude, 2 * magnitude, 5 * magnitude]);
        magnitude *= 10;
    }
    for k in steps {
        let mut keep: Vec<usize> = if integers {
            (0..labels.len())
                .filter(|&i| (labels[i].0 as i64).rem_euclid(k as i64) == 0)
                .collect()
        } else {
            (0..labels.len()).step_by(k).collect()
        };
        if keep.is_empty() {
            keep = (0..labels.len()).step_by(k).collect();
        }
        let apart = keep.windows(2).all(|w| {
            let (a, b) = (labels[w[0]], labels[w[1]]);
            sx(b.0) - sx(a.0) >= (text_width(a.1, 11.0) + text_width(b.1, 11.0)) / 2.0 + 8.0
        });
        if apart {
            return keep;
        }
    }
    labels.first().map(|_| vec![0]).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Ticks
// ---------------------------------------------------------------------------

/// Round axis values: a multiple of 1, 2 or 5 × 10^k apart.
#[derive(Debug, Clone, PartialEq)]
struct Ticks {
    step: f64,
    /// From at or below the low end to at or above the high end.
    values: Vec<f64>,
}

/// The ticks with the smallest round step that covers `lo..=hi` in at most
/// `max_intervals` steps.
fn nice_ticks(lo: f64, hi: f64, max_intervals: usize) -> Ticks {
    let max_intervals = max_intervals.max(1);
    let range = hi - lo;
    if !(lo.is_finite() && hi.is_finite() && range.is_finite() && range > 0.0) {
        return Ticks {
            step: 1.0,
            values: vec![lo, lo + 1.0],
        };
    }
    let mut magnitude = 10f64.powf((range / max_intervals as f64).log10().floor());
    // At most a few decades past the first guess; the bound only guards
    // against floating-point surprises.
    for _ in 0..32 {
        for m in [1.0, 2.0, 5.0] {
            let step = m * magnitude;
            // Tolerate rounding: 0.037 / 0.001 is 36.99999999999999.
            let first = (lo / step + 1e-9).floor();
            let last = (hi / step - 1e-9).ceil();
            let n = (last - first).max(1.0);
            if n <= max_intervals as f64 {
                let values = (0..=n as usize)
                    .map(|i| (first + i as f64) * step)
                    .collect();
                return Ticks { step, values };
            }
        }
        magnitude *= 10.0;
    }
    Ticks {
        step: range,
        values: vec![lo, hi],
    }
}

/// How tick values print: as many decimals as the step needs, and `k`, `M`,
/// `G` for large values (`25k`, `1.5M`).
struct TickFormat {
    divisor: f64,
    suffix: &'static str,
    decimals: usize,
}

impl TickFormat {
    fn new(ticks: &Ticks) -> TickFormat {
        let largest = ticks.values.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let (divisor, suffix) = if largest >= 1e9 {
            (1e9, "G")
        } else if largest >= 1e6 {
            (1e6, "M")
        } else if largest >= 1e4 {
            (1e3, "k")
        } else {
            (1.0, "")
        };
        let decimals = (-((ticks.step / divisor).log10() + 1e-9).floor()).clamp(0.0, 12.0) as usize;
        TickFormat {
            divisor,
            suffix,
            decimals,
        }
    }

    fn format(&self, v: f64) -> String {
        let s = format!("{:.*}", self.decimals, v / self.divisor);
        let digits = s.trim_start_matches('-');
        if digits.chars().all(|c| c == '0' || c == '.') {
            // Zero reads best plain: `0`, not `-0` or `0k`.
            return if self.suffix.is_empty() {
                digits.to_string()
            } else {
                "0".into()
            };
        }
        s + self.suffix
    }
}

/// A value for a tooltip: four significant digits, `k`/`M`/`G` when large.
fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let (v, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    let decimals = (3 - digits).clamp(0, 12) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if s == "-0" {
        s = "0".into();
    }
    s + suffix
}

// ---------------------------------------------------------------------------
// Gantt
// ---------------------------------------------------------------------------

/// One attempt of one step on a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct GanttBar {
    /// The row's label: the step id and attempt (`train #2`).
    pub label: String,
    pub start: DateTime<Utc>,
    /// `None` while the attempt runs: the bar reaches the right edge, dashed.
    pub end: Option<DateTime<Utc>>,
    /// A step status (`succeeded`, `running`, ...): the bar's colour.
    pub status: String,
}

const GANTT_WIDTH: f64 = 900.0;
const GANTT_ROW: f64 = 24.0;
const GANTT_BAR: f64 = 14.0;
/// An attempt still running: paler, with a dashed edge.
const OPEN_BAR: &str =
    r##"fill-opacity="0.6" stroke="#15803d" stroke-width="1.5" stroke-dasharray="4 2""##;

/// A timeline of attempts from `t0` to `t1` (900 px wide, 24 px a row): one
/// row per bar, in the given order, coloured by status with its duration
/// beside it; open bars (still running) reach `t1` with a dashed edge. The
/// time axis counts from `t0` (`+30s`, `+5m`, `+2h`, whichever suits the
/// span), and the header gives `t0` as a date and time.
pub fn gantt(rows: &[GanttBar], t0: DateTime<Utc>, t1: DateTime<Utc>) -> String {
    let span = ((t1 - t0).num_milliseconds() as f64 / 1000.0).max(1.0);
    let legend = status_legend_height(rows.iter().map(|r| r.status.as_str()), GANTT_WIDTH);
    let top = 50.0;
    let rows_h = rows.len().max(1) as f64 * GANTT_ROW;
    let height = top + rows_h + 12.0 + legend;
    let mut svg = Svg::open(GANTT_WIDTH, height, "Timeline of step attempts");
    let header = format!(
        "Started {} · {}",
        t0.format("%Y-%m-%d %H:%M:%S UTC"),
        format_duration(span)
    );
    text(&mut svg, PAD, 18.0, TITLE, &header);
    if rows.is_empty() {
        text(
            &mut svg,
            GANTT_WIDTH / 2.0,
            top + 16.0,
            NOTE,
            "No attempts yet",
        );
        return svg.close();
    }

    let label_w = rows
        .iter()
        .map(|r| text_width(&r.label, 12.0))
        .fold(0.0, f64::max)
        .clamp(60.0, 220.0);
    let left = PAD + label_w + 12.0;
    // Room on the right for the duration of a bar that ends at `t1`.
    let right = GANTT_WIDTH - 64.0;
    let plot_w = right - left;
    let sx = |t: DateTime<Utc>| {
        let secs = (t - t0).num_milliseconds() as f64 / 1000.0;
        left + (secs / span).clamp(0.0, 1.0) * plot_w
    };
    let bottom = top + rows_h;

    // Row stripes, then time grid and labels above the rows.
    for i in (1..rows.len()).step_by(2) {
        let y = top + i as f64 * GANTT_ROW;
        put!(
            svg,
            r##"<rect x="0" y="{y:.1}" width="{GANTT_WIDTH}" height="{GANTT_ROW}" fill="#f9fafb"/>"##
        );
    }
    let step = time_step(span, ((plot_w / 80.0) as usize).max(2));
    let mut k = 0u64;
    while (k * step) as f64 <= span + 1e-9 {
        let x = left + (k * step) as f64 / span * plot_w;
        put!(
            svg,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{GRID}"/>"#,
            top - 6.0
        );
        let label = if k == 0 {
            "0".to_string()
        } else {
            format!("+{}", format_span(k * step, ""))
        };
        text(&mut svg, x, top - 10.0, SMALL.anchor("middle"), &label);
        k += 1;
    }
    put!(
        svg,
        r#"<line x1="{left:.1}" y1="{:.1}" x2="{right:.1}" y2="{:.1}" stroke="{AXIS}"/>"#,
        top - 6.0,
        top - 6.0
    );

    for (i, bar) in rows.iter().enumerate() {
        let row_y = top + i as f64 * GANTT_ROW;
        let mid = row_y + GANTT_ROW / 2.0;
        put!(svg, r#"<g class="attempt">"#);
        put!(
            svg,
            r#"<text x="{PAD}" y="{:.1}" font-size="12" fill="{INK}">{}<title>{}</title></text>"#,
            mid + 4.0,
            escape(&fit(&bar.label, label_w, 12.0)),
            escape(&bar.label)
        );
        let x0 = sx(bar.start);
        let x1 = sx(bar.end.unwrap_or(t1)).max(x0);
        let w = (x1 - x0).max(2.0);
        let y = mid - GANTT_BAR / 2.0;
        let fill = status_colour(&bar.status);
        let end = bar.end.unwrap_or(t1);
        let took = format_duration((end - bar.start).num_milliseconds().max(0) as f64 / 1000.0);
        let (label, status, since) = (&bar.label, &bar.status, bar.start.format("%H:%M:%S"));
        let (class, style, tip) = match bar.end {
            Some(e) => (
                "bar",
                status_border(status),
                format!(
                    "{label}: {status}, {since} → {} ({took})",
                    e.format("%H:%M:%S")
                ),
            ),
            None => (
                "bar open",
                OPEN_BAR,
                format!("{label}: {status}, since {since} ({took} so far)"),
            ),
        };
        put!(
            svg,
            r#"<rect class="{class}" data-status="{}" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{GANTT_BAR}" rx="2" fill="{fill}" {style}><title>{}</title></rect>"#,
            escape(&bar.status),
            escape(&tip)
        );
        let took = if bar.end.is_some() {
            took
        } else {
            format!("{took}…")
        };
        text(&mut svg, x0 + w + 4.0, mid + 4.0, SMALL, &took);
        put!(svg, "</g>");
    }
    status_legend(
        &mut svg,
        rows.iter().map(|r| r.status.as_str()),
        bottom + 12.0,
        GANTT_WIDTH,
    );
    svg.close()
}

/// The smallest readable time step (1 s, 5 s, 1 min, 15 min, 1 h, 1 day, ...)
/// giving at most `max_ticks` intervals over `span` seconds.
fn time_step(span: f64, max_ticks: usize) -> u64 {
    const STEPS: [u64; 21] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
        172800, 432000, 604800,
    ];
    let fits = |s: u64| span / s as f64 <= max_ticks as f64;
    if let Some(s) = STEPS.iter().copied().find(|s| fits(*s)) {
        return s;
    }
    let mut s = STEPS[STEPS.len() - 1];
    while !fits(s) {
        s *= 2;
    }
    s
}

/// Whole seconds as their two largest units, `sep` between them:
/// `45s`, `1m30s`, `2h`, `1d6h`.
fn format_span(secs: u64, sep: &str) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let parts = [
        (secs / 86400, "d"),
        (secs % 86400 / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let first = parts.iter().position(|p| p.0 > 0).unwrap_or(3);
    parts[first..]
        .iter()
        .take(2)
        .filter(|p| p.0 > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// A duration for people: `0.4s`, `12s`, `3m 20s`, `1h 5m`.
fn format_duration(secs: f64) -> String {
    if secs < 10.0 && secs.fract() != 0.0 {
        format!("{secs:.1}s")
    } else {
        format_span(secs.round() as u64, " ")
    }
}

// ---------------------------------------------------------------------------
// DAG
// ---------------------------------------------------------------------------

/// A step in a pipeline's graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DagNode {
    /// The step id, in bold.
    pub id: String,
    /// Small text under the id, e.g. the step type.
    pub label: String,
    /// The step's latest status; `None` before any run.
    pub status: Option<String>,
    /// Where a click goes (the step's log page). Only relative and
    /// `http(s)` links are kept.
    pub href: Option<String>,
}

const NODE_H: f64 = 42.0;
/// The height of a long edge's lane in a column it crosses.
const LANE_H: f64 = 8.0;
const GAP_X: f64 = 56.0;
const GAP_Y: f64 = 16.0;
const MARGIN: f64 = 20.0;
const ARROW: f64 = 7.0;
/// How far an edge within one column bulges to the right.
const BULGE: f64 = 40.0;

/// A pipeline's step graph, left to right: a step's column is the longest
/// path from a root, and within a column steps are ordered by the mean
/// position of their neighbours (barycentre sweeps) to reduce crossings.
/// Edges go from dependency to dependent with an arrowhead; an edge that
/// skips columns runs in its own lane between the steps there. An edge
/// naming an unknown step draws that step dashed; a cycle is broken at its
/// first step in input order (the edge back is dashed), so the layout
/// always ends. The SVG is as large as the graph needs (its `width` and
/// `height` are set; scale or scroll it with CSS).
pub fn dag(nodes: &[DagNode], edges: &[(String, String)]) -> String {
    let layout = layout_dag(nodes, edges);
    let width = layout.width.max(360.0);
    let statuses = || layout.nodes.iter().map(|n| n.status.unwrap_or(""));
    let height = layout.height + status_legend_height(statuses(), width);
    let mut svg = Svg::open(width, height, "Pipeline step graph");
    if layout.nodes.is_empty() {
        text(&mut svg, width / 2.0, layout.height / 2.0, NOTE, "No steps");
        return svg.close();
    }
    let w = layout.node_w;

    for edge in &layout.edges {
        draw_edge(&mut svg, &layout, edge);
    }
    for &i in &layout.self_loops {
        let n = &layout.nodes[i];
        let (x, y) = (n.x + w - 24.0, n.y);
        put!(
            svg,
            r#"<path d="M{x:.1},{y:.1} c0,-18 20,-18 20,0" fill="none" stroke="{AXIS}" stroke-width="1.5" stroke-dasharray="4 3"/>"#
        );
        put!(
            svg,
            r#"<path d="M{:.1},{y:.1} l-4,-7 h8 z" fill="{AXIS}"/>"#,
            x + 20.0
        );
    }

    for n in &layout.nodes {
        let status = n.status.unwrap_or("");
        let ink = status_ink(status);
        let href = n.href.and_then(safe_href);
        if let Some(href) = href {
            put!(svg, r#"<a href="{}">"#, escape(href));
        }
        put!(
            svg,
            r#"<g class="node" data-step="{}" transform="translate({:.1},{:.1})">"#,
            escape(n.id),
            n.x,
            n.y
        );
        let dash = if n.known {
            ""
        } else {
            r#" stroke-dasharray="4 3""#
        };
        put!(
            svg,
            r#"<rect width="{w:.1}" height="{NODE_H}" rx="6" fill="{}" {}{dash}/>"#,
            status_colour(status),
            status_border(status)
        );
        let tip = match (n.known, n.status) {
            (false, _) => format!("{}: not a step of this pipeline", n.id),
            (true, Some(s)) => format!("{} ({}): {s}", n.id, n.label),
            (true, None) => format!("{} ({})", n.id, n.label),
        };
        put!(svg, "<title>{}</title>", escape(&tip));
        put!(
            svg,
            r#"<text x="10" y="18" font-size="13" font-weight="600" fill="{ink}">{}</text>"#,
            escape(&fit(n.id, w - 20.0, 13.0))
        );
        let label = if n.known { n.label } else { "unknown step" };
        put!(
            svg,
            r#"<text x="10" y="33" font-size="11" fill="{ink}" fill-opacity="0.85">{}</text>"#,
            escape(&fit(label, w - 20.0, 11.0))
        );
        put!(svg, "</g>");
        if href.is_some() {
            put!(svg, "</a>");
        }
    }
    status_legend(&mut svg, statuses(), layout.height, width);
    svg.close()
}

/// An edge as a curve with an arrowhead. Forward: right side to left side,
/// straight through its lanes. Backward (a cycle): dashed, from the left side
/// (or, within a column, the right side) back to the right side.
fn draw_edge(svg: &mut Svg, layout: &DagLayout, edge: &Routed) {
    let w = layout.node_w;
    let (a, b) = (&layout.nodes[edge.from], &layout.nodes[edge.to]);
    let (ay, by) = (a.y + NODE_H / 2.0, b.y + NODE_H / 2.0);
    if b.layer > a.layer {
        let mut d = format!("M{:.1},{ay:.1}", a.x + w);
        let mut from = (a.x + w, ay);
        for &(x, y) in &edge.lanes {
            curve(&mut d, from, (x, y));
            put!(d, " H{:.1}", x + w);
            from = (x + w, y);
        }
        curve(&mut d, from, (b.x - ARROW, by));
        put!(
            svg,
            r#"<path d="{d}" fill="none" stroke="{AXIS}" stroke-width="1.5"/>"#
        );
        put!(
            svg,
            r#"<path d="M{:.1},{by:.1} l-{ARROW},-4 v8 z" fill="{AXIS}"/>"#,
            b.x
        );
    } else {
        let x2 = b.x + w + ARROW;
        let (x1, c1, c2) = if b.layer == a.layer {
            (a.x + w, a.x + w + BULGE, x2 + BULGE)
        } else {
            let c = ((a.x - x2) / 2.0).max(30.0);
            (a.x, a.x - c, x2 + c)
        };
        put!(
            svg,
            r#"<path d="M{x1:.1},{ay:.1} C{c1:.1},{ay:.1} {c2:.1},{by:.1} {x2:.1},{by:.1}" fill="none" stroke="{AXIS}" stroke-width="1.5" stroke-dasharray="5 3"/>"#
        );
        put!(
            svg,
            r#"<path d="M{:.1},{by:.1} l{ARROW},-4 v8 z" fill="{AXIS}"/>"#,
            b.x + w
        );
    }
}

/// Appends a horizontal-ended cubic curve from `from` to `to` to a path.
fn curve(d: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64)) {
    let c = (x2 - x1) / 2.0;
    put!(
        d,
        " C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
        x1 + c,
        x2 - c
    );
}

/// The link of a node when it is relative or `http(s)`; `javascript:` and
/// other schemes are dropped.
fn safe_href(href: &str) -> Option<&str> {
    let h = href.trim();
    match h.find([':', '/', '?', '#']) {
        Some(i) if h[i..].starts_with(':') => {
            let scheme = h[..i].to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https").then_some(h)
        }
        _ => Some(h),
    }
}

/// A node placed on the canvas.
#[derive(Debug)]
struct Placed<'a> {
    id: &'a str,
    label: &'a str,
    status: Option<&'a str>,
    href: Option<&'a str>,
    /// `false` for a step only an edge names.
    known: bool,
    layer: usize,
    x: f64,
    y: f64,
}

/// An edge between two placed nodes (dependency first).
#[derive(Debug)]
struct Routed {
    from: usize,
    to: usize,
    /// For an edge that skips columns: the left x of each column it crosses
    /// and the y of its lane there.
    lanes: Vec<(f64, f64)>,
}

#[derive(Debug)]
struct DagLayout<'a> {
    nodes: Vec<Placed<'a>>,
    /// No self-loops, no duplicates.
    edges: Vec<Routed>,
    self_loops: Vec<usize>,
    node_w: f64,
    width: f64,
    height: f64,
}

fn layout_dag<'a>(nodes: &'a [DagNode], edges: &'a [(String, String)]) -> DagLayout<'a> {
    // Nodes (first of a duplicated id wins), then steps only edges name.
    let mut placed: Vec<Placed<'a>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut add = |id: &'a str, node: Option<&'a DagNode>, placed: &mut Vec<Placed<'a>>| {
        *index.entry(id).or_insert_with(|| {
            placed.push(Placed {
                id,
                label: node.map_or("", |n| n.label.as_str()),
                status: node.and_then(|n| n.status.as_deref()),
                href: node.and_then(|n| n.href.as_deref()),
                known: node.is_some(),
                layer: 0,
                x: 0.0,
                y: 0.0,
            });
            placed.len() - 1
        })
    };
    for n in nodes {
        add(&n.id, Some(n), &mut placed);
    }
    let mut links = Vec::new();
    let mut self_loops = Vec::new();
    for (a, b) in edges {
        let (a, b) = (add(a, None, &mut placed), add(b, None, &mut placed));
        if a == b {
            if !self_loops.contains(&a) {
                self_loops.push(a);
            }
        } else if !links.contains(&(a, b)) {
            links.push((a, b));
        }
    }
    let n = placed.len();
    let layer = layers(n, &links);

    // Vertices to order: the nodes, then one lane per column an edge skips,
    // chained so that lanes are ordered like nodes. Edges against the
    // layering (cycles) take no part.
    let mut vlayer = layer.clone();
    let mut preds = vec![Vec::new(); n];
    let mut succs = vec![Vec::new(); n];
    let mut chains = Vec::with_capacity(links.len());
    for &(a, b) in &links {
        let mut chain = Vec::new();
        if layer[b] > layer[a] {
            let mut prev = a;
            for l in layer[a] + 1..layer[b] {
                let lane = vlayer.len();
                vlayer.push(l);
                preds.push(vec![prev]);
                succs.push(Vec::new());
                succs[prev].push(lane);
                chain.push(lane);
                prev = lane;
            }
            preds[b].push(prev);
            succs[prev].push(b);
        }
        chains.push(chain);
    }
    let layers_n = layer.iter().max().map_or(0, |m| m + 1);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); layers_n];
    for (v, &l) in vlayer.iter().enumerate() {
        columns[l].push(v);
    }
    order_columns(&mut columns, &preds, &succs);

    // Coordinates: columns left to right, each centred vertically.
    let node_w = placed
        .iter()
        .map(|p| text_width(p.id, 13.0).max(text_width(p.label, 11.0)) + 20.0)
        .fold(0.0, f64::max)
        .clamp(110.0, 260.0);
    let column_x = |l: usize| MARGIN + l as f64 * (node_w + GAP_X);
    let slot_h = |v: usize| if v < n { NODE_H } else { LANE_H };
    let gap = |u: usize, v: usize| if u >= n && v >= n { 4.0 } else { GAP_Y };
    let column_h = |col: &[usize]| {
        col.iter().map(|&v| slot_h(v)).sum::<f64>()
            + col.windows(2).map(|p| gap(p[0], p[1])).sum::<f64>()
    };
    let inner_h = columns.iter().map(|c| column_h(c)).fold(NODE_H, f64::max);
    let mut vy = vec![0.0; vlayer.len()];
    for col in &columns {
        let mut y = MARGIN + (inner_h - column_h(col)) / 2.0;
        for (i, &v) in col.iter().enumerate() {
            if i > 0 {
                y += gap(col[i - 1], v);
            }
            vy[v] = y;
            y += slot_h(v);
        }
    }
    for (v, p) in placed.iter_mut().enumerate() {
        p.layer = layer[v];
        p.x = column_x(layer[v]);
        p.y = vy[v];
    }
    let routed = links
        .iter()
        .zip(chains)
        .map(|(&(from, to), chain)| Routed {
            from,
            to,
            lanes: chain
                .iter()
                .map(|&lane| (column_x(vlayer[lane]), vy[lane] + LANE_H / 2.0))
                .collect(),
        })
        .collect();
    let bulge = links.iter().any(|&(a, b)| layer[a] == layer[b]);
    let width = column_x(layers_n) - GAP_X + MARGIN + if bulge { BULGE } else { 0.0 };
    DagLayout {
        nodes: placed,
        edges: routed,
        self_loops,
        node_w,
        width: width.max(2.0 * MARGIN),
        height: 2.0 * MARGIN + inner_h,
    }
}

/// Each node's column: the longest path from a root, in topological order
/// (Kahn). When only cycles remain, the first unplaced node is placed from
/// the dependencies placed so far, which breaks the cycle there.
fn layers(n: usize, links: &[(usize, usize)]) -> Vec<usize> {
    let mut preds = vec![Vec::new(); n];
    let mut succs = vec![Vec::new(); n];
    for &(a, b) in links {
        preds[b].push(a);
        succs[a].push(b);
    }
    let mut waiting: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut done = vec![false; n];
    let mut ready: VecDeque<usize> = (0..n).filter(|&v| waiting[v] == 0).collect();
    let mut layer = vec![0usize; n];
    let mut placed = 0;
    while placed < n {
        let v = match ready.pop_front() {
            Some(v) if done[v] => continue,
            Some(v) => v,
            None => (0..n).find(|&v| !done[v]).expect("a node is left"),
        };
        done[v] = true;
        placed += 1;
        layer[v] = preds[v]
            .iter()
            .filter(|&&u| done[u])
            .map(|&u| layer[u] + 1)
            .max()
            .unwrap_or(0);
        for &w in &succs[v] {
            waiting[w] -= 1;
            if waiting[w] == 0 && !done[w] {
                ready.push_back(w);
            }
        }
    }
    layer
}

/// Orders each column by the mean centred position of its neighbours in the
/// column before (sweeping right) or after (sweeping left): two sweeps
/// each way. A vertex without neighbours there keeps its place.
fn order_columns(columns: &mut [Vec<usize>], preds: &[Vec<usize>], succs: &[Vec<usize>]) {
    let mut pos = vec![0.0f64; preds.len()];
    let centre = |col: &[usize], pos: &mut [f64]| {
        let mid = (col.len() as f64 - 1.0) / 2.0;
        for (i, &v) in col.iter().enumerate() {
            pos[v] = i as f64 - mid;
        }
    };
    for col in columns.iter() {
        centre(col, &mut pos);
    }
    let n = columns.len();
    for sweep in 0..4 {
        let rightwards = sweep % 2 == 0;
        let (order, neighbours): (Vec<usize>, _) = if rightwards {
            ((1..n).collect(), preds)
        } else {
            ((0..n.saturating_sub(1)).rev().collect(), succs)
        };
        for l in order {
            let mut keyed: Vec<(f64, usize)> = columns[l]
                .iter()
                .map(|&v| {
                    let around = &neighbours[v];
                    let key = if around.is_empty() {
                        pos[v]
                    } else {
                        around.iter().map(|&u| pos[u]).sum::<f64>() / around.len() as f64
                    };
                    (key, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            columns[l] = keyed.into_iter().map(|(_, v)| v).collect();
            centre(&columns[l], &mut pos);
        }
    }
}

// ---------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------

/// An SVG document being written.
struct Svg(String);

impl Svg {
    fn open(width: f64, height: f64, title: &str) -> Svg {
        let mut s = String::with_capacity(4096);
        put!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img" font-family="{FONT}" font-size="12">"#
        );
        put!(s, "<title>{}</title>", escape(title));
        put!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        Svg(s)
    }

    fn push_str(&mut self, s: &str) {
        self.0.push_str(s);
    }

    fn close(mut self) -> String {
        self.0.push_str("</svg>");
        self.0
    }
}

impl Write for Svg {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.push_str(s);
        Ok(())
    }
}

/// How a piece of text is drawn.
#[derive(Debug, Clone, Copy)]
struct Font {
    size: f64,
    fill: &'static str,
    anchor: &'static str,
    bold: bool,
}

impl Font {
    const fn anchor(self, anchor: &'static str) -> Font {
        Font { anchor, ..self }
    }
}

const TITLE: Font = Font {
    size: 13.0,
    fill: INK,
    anchor: "start",
    bold: true,
};
/// A message in place of a chart.
const NOTE: Font = Font {
    size: 13.0,
    fill: MUTED,
    anchor: "middle",
    bold: false,
};
/// Legend entries.
const LABEL: Font = Font {
    size: 11.0,
    fill: INK,
    anchor: "start",
    bold: false,
};
/// Ticks, units and durations.
const SMALL: Font = Font {
    size: 11.0,
    fill: MUTED,
    anchor: "start",
    bold: false,
};

/// A `<text>` element; `content` is escaped here.
fn text(svg: &mut Svg, x: f64, y: f64, font: Font, content: &str) {
    let Font {
        size,
        fill,
        anchor,
        bold,
    } = font;
    let weight = if bold { r#" font-weight="600""# } else { "" };
    put!(
        svg,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{weight}>{}</text>"#,
        escape(content)
    );
}

/// An estimate of rendered text width: proportional fonts average about
/// 0.6 em a character, which errs on the wide side for labels.
fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.6
}

/// `s`, cut with `…` to fit `max_px`.
fn fit(s: &str, max_px: f64, size: f64) -> Cow<'_, str> {
    let max_chars = (max_px / (size * 0.6)).floor().max(1.0) as usize;
    if s.chars().count() <= max_chars {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().take(max_chars - 1).chain(['…']).collect())
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

const LEGEND_ROW: f64 = 16.0;

struct LegendItem {
    text: String,
    row: usize,
    x: f64,
}

struct Legend {
    items: Vec<LegendItem>,
    height: f64,
}

/// Legend entries (a 14 px swatch and a label each) flowed into rows.
fn legend_layout<'a>(names: impl Iterator<Item = Cow<'a, str>>, width: f64) -> Legend {
    let mut items = Vec::new();
    let (mut row, mut x) = (0, 0.0);
    for name in names {
        let text = fit(&name, width - 24.0, 11.0).into_owned();
        let w = 19.0 + text_width(&text, 11.0) + 14.0;
        if x > 0.0 && x + w > width {
            row += 1;
            x = 0.0;
        }
        items.push(LegendItem { text, row, x });
        x += w;
    }
    let height = if items.is_empty() {
        0.0
    } else {
        (row + 1) as f64 * LEGEND_ROW
    };
    Legend { items, height }
}

/// The statuses present, known ones in their usual order, others after.
fn statuses_present<'a>(statuses: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for s in statuses {
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    let rank = |s: &str| {
        STATUSES
            .iter()
            .position(|k| *k == s)
            .unwrap_or(STATUSES.len())
    };
    seen.sort_by_key(|s| rank(s));
    seen
}

fn status_legend_layout<'a>(statuses: impl Iterator<Item = &'a str>, width: f64) -> Legend {
    let names = statuses_present(statuses)
        .into_iter()
        .map(|s| Cow::Borrowed(if s.is_empty() { "no status" } else { s }));
    legend_layout(names, width - 2.0 * PAD)
}

fn status_legend_height<'a>(statuses: impl Iterator<Item = &'a str>, width: f64) -> f64 {
    let h = status_legend_layout(statuses, width).height;
    if h > 0.0 { h + 8.0 } else { 0.0 }
}

/// A row of status swatches at `top`.
fn status_legend<'a>(
    svg: &mut Svg,
    statuses: impl Iterator<Item = &'a str> + Clone,
    top: f64,
    width: f64,
) {
    let present = statuses_present(statuses.clone());
    let legend = status_legend_layout(statuses, width);
    for (status, item) in present.iter().zip(&legend.items) {
        let (x, y) = (PAD + item.x, top + item.row as f64 * LEGEND_ROW);
        put!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="14" height="10" rx="2" fill="{}" {}/>"#,
            y + 3.0,
            status_colour(status),
            status_border(status)
        );
        text(svg, x + 19.0, y + 12.0, LABEL, &item.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HOSTILE: &str = r#"<script>&"'"#;

    /// The opening tags of elements starting with `start` (`<circle`).
    fn tags<'a>(svg: &'a str, start: &str) -> Vec<&'a str> {
        svg.match_indices(start)
            .map(|(i, _)| {
                let end = svg[i..].find('>').expect("a tag ends");
                &svg[i..i + end]
            })
            .collect()
    }

    fn attr(tag: &str, name: &str) -> f64 {
        let key = format!(" {name}=\"");
        let i = tag.find(&key).unwrap_or_else(|| panic!("{name} in {tag}")) + key.len();
        let j = tag[i..].find('"').unwrap();
        tag[i..i + j].parse().unwrap()
    }

    /// No hostile text leaks unescaped, and the escaped form is there.
    fn assert_escaped(svg: &str) {
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;&amp;&quot;&#39;"), "{svg}");
    }

    fn chart(series: Vec<Series>) -> LineChart {
        LineChart {
            title: "precision@10".into(),
            series,
            ..LineChart::default()
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 14, 5, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    fn node(id: &str) -> DagNode {
        DagNode {
            id: id.into(),
            label: "train".into(),
            ..DagNode::default()
        }
    }

    fn edge(a: &str, b: &str) -> (String, String) {
        (a.into(), b.into())
    }

    fn x_of(layout: &DagLayout, id: &str) -> f64 {
        layout.nodes.iter().find(|n| n.id == id).unwrap().x
    }

    #[test]
    fn escape_covers_markup_quotes_and_control_characters() {
        assert_eq!(escape(HOSTILE), "&lt;script&gt;&amp;&quot;&#39;");
        assert_eq!(escape("a\u{0}b\tc"), "a\u{FFFD}b\tc");
        assert_eq!(escape("plain v1 14:05"), "plain v1 14:05");
    }

    #[test]
    fn nice_ticks_are_round() {
        let labels = |lo, hi, n| {
            let t = nice_ticks(lo, hi, n);
            let f = TickFormat::new(&t);
            t.values.iter().map(|v| f.format(*v)).collect::<Vec<_>>()
        };
        assert_eq!(
            labels(0.0, 1.0, 7),
            ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        );
        assert_eq!(
            labels(0.037, 0.041, 7),
            ["0.037", "0.038", "0.039", "0.040", "0.041"]
        );
        assert_eq!(
            labels(0.0, 1234.0, 7),
            ["0", "200", "400", "600", "800", "1000", "1200", "1400"]
        );
        assert_eq!(labels(0.0, 1234.0, 4), ["0", "500", "1000", "1500"]);
        assert_eq!(
            labels(-3.0, 18_000.0, 5),
            ["-5k", "0", "5k", "10k", "15k", "20k"]
        );
        assert_eq!(
            nice_ticks(0.0, 0.0, 5).values.len(),
            2,
            "a degenerate range ends"
        );
    }

    #[test]
    fn line_chart_places_higher_values_higher() {
        let svg = line_chart(&chart(vec![Series {
            name: "ndcg".into(),
            points: vec![(1.0, 0.2), (2.0, 0.5), (3.0, 0.3)],
        }]));
        let cy: Vec<f64> = tags(&svg, "<circle")
            .iter()
            .map(|t| attr(t, "cy"))
            .collect();
        assert_eq!(cy.len(), 3);
        assert!(cy[1] < cy[2] && cy[2] < cy[0], "{cy:?}");
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        assert!(svg.contains(r#"role="img""#) && svg.contains("<title>precision@10</title>"));
    }

    #[test]
    fn line_chart_without_data_says_so() {
        let empty = line_chart(&chart(vec![]));
        assert!(empty.contains("No data yet") && !empty.contains("<polyline"));
        let nan = line_chart(&chart(vec![Series {
            name: "p99".into(),
            points: vec![(1.0, f64::NAN), (2.0, f64::INFINITY)],
        }]));
        assert!(nan.contains("No data yet"), "{nan}");
    }

    #[test]
    fn line_chart_skips_non_finite_values_and_draws_lone_points() {
        let svg = line_chart(&chart(vec![
            Series {
                name: "rps".into(),
                points: vec![
                    (0.0, 1.0),
                    (1.0, 2.0),
                    (2.0, f64::NAN),
                    (3.0, 4.0),
                    (f64::NAN, 9.0),
                ],
            },
            Series {
                name: "one".into(),
                points: vec![(5.0, 3.0)],
            },
        ]));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_eq!(tags(&svg, "<polyline").len(), 1, "the gap splits the line");
        assert_eq!(tags(&svg, "<circle").len(), 4);
    }

    #[test]
    fn line_chart_gives_equal_values_some_height() {
        let svg = line_chart(&chart(vec![Series {
            name: "coverage".into(),
            points: vec![(1.0, 0.5), (2.0, 0.5)],
        }]));
        let cy: Vec<f64> = tags(&svg, "<circle")
            .iter()
            .map(|t| attr(t, "cy"))
            .collect();
        assert!(cy.iter().all(|y| y.is_finite()) && cy[0] == cy[1]);
        let ys: Vec<f64> = tags(&svg, "<line x1")
            .iter()
            .map(|t| attr(t, "y1"))
            .collect();
        let spread = ys.iter().cloned().fold(f64::MIN, f64::max)
            - ys.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 100.0, "gridlines spread over the plot: {ys:?}");
    }

    #[test]
    fn line_chart_thins_crowded_x_labels() {
        let labels: Vec<(f64, String)> =
            (0..60).map(|m| (m as f64, format!("14:{m:02}"))).collect();
        let svg = line_chart(&LineChart {
            series: vec![Series {
                name: "requests/s".into(),
                points: (0..60).map(|m| (m as f64, (m % 7) as f64)).collect(),
            }],
            x_labels: labels,
            ..chart(vec![])
        });
        let shown = (0..60)
            .filter(|m| svg.contains(&format!(">14:{m:02}<")))
            .count();
        assert!((4..=15).contains(&shown), "{shown} labels");
        assert!(svg.contains(">14:00<") && svg.contains(">14:30<"));
    }

    #[test]
    fn line_chart_escapes_hostile_labels() {
        let svg = line_chart(&LineChart {
            title: HOSTILE.into(),
            series: vec![Series {
                name: HOSTILE.into(),
                points: vec![(1.0, 1.0)],
            }],
            x_labels: vec![(1.0, HOSTILE.into())],
            y_unit: Some(HOSTILE.into()),
            ..LineChart::default()
        });
        assert_escaped(&svg);
    }

    #[test]
    fn gantt_bars_grow_with_duration_and_running_ones_are_open() {
        let bar = |label: &str, start, end: Option<i64>, status: &str| GanttBar {
            label: label.into(),
            start: at(start),
            end: end.map(at),
            status: status.into(),
        };
        let svg = gantt(
            &[
                bar("import #1", 0, Some(30), "succeeded"),
                bar("train #1", 30, Some(400), "failed"),
                bar("train #2", 400, None, "running"),
            ],
            at(0),
            at(600),
        );
        let bars = tags(&svg, "<rect class=\"bar");
        assert_eq!(bars.len(), 3);
        assert!(attr(bars[1], "width") > attr(bars[0], "width"));
        assert!(attr(bars[1], "x") > attr(bars[0], "x"));
        assert!(bars[2].contains("bar open") && bars[2].contains("stroke-dasharray"));
        assert!(!bars[0].contains("stroke-dasharray") && !bars[1].contains("open"));
        assert!(bars[0].contains(status_colour("succeeded")));
        assert!(svg.contains("Started 2024-05-01 14:05:00 UTC"));
        assert!(
            svg.contains(">+2m<") && svg.contains(">+10m<"),
            "minute ticks over ten minutes"
        );
    }

    #[test]
    fn gantt_handles_empty_and_hostile_input() {
        assert!(gantt(&[], at(0), at(0)).contains("No attempts yet"));
        let svg = gantt(
            &[GanttBar {
                label: HOSTILE.into(),
                start: at(5),
                end: Some(at(1)),
                status: HOSTILE.into(),
            }],
            at(0),
            at(10),
        );
        assert_escaped(&svg);
        let bar = tags(&svg, "<rect class=\"bar")[0];
        assert!(
            attr(bar, "width") >= 2.0,
            "an end before the start still shows"
        );
    }

    #[test]
    fn time_steps_suit_the_span() {
        assert_eq!(time_step(40.0, 8), 5);
        assert_eq!(time_step(600.0, 8), 120);
        assert_eq!(time_step(5.0 * 3600.0, 8), 3600);
        assert_eq!(format_span(90, ""), "1m30s");
        assert_eq!(format_span(86400 + 6 * 3600 + 5, " "), "1d 6h");
        assert_eq!(format_duration(0.4), "0.4s");
        assert_eq!(format_duration(12.4), "12s");
        assert_eq!(format_duration(200.0), "3m 20s");
    }

    #[test]
    fn dag_puts_dependents_in_later_columns() {
        let chain = [node("a"), node("b"), node("c")];
        let edges = [edge("b", "c"), edge("a", "b")];
        let l = layout_dag(&chain, &edges);
        assert!(x_of(&l, "a") < x_of(&l, "b") && x_of(&l, "b") < x_of(&l, "c"));

        let diamond = [node("a"), node("b"), node("c"), node("d")];
        let edges = [
            edge("a", "b"),
            edge("a", "c"),
            edge("b", "d"),
            edge("c", "d"),
            edge("a", "d"),
        ];
        let l = layout_dag(&diamond, &edges);
        assert!(x_of(&l, "a") < x_of(&l, "b"));
        assert_eq!(x_of(&l, "b"), x_of(&l, "c"));
        assert!(x_of(&l, "c") < x_of(&l, "d"), "longest path, not shortest");

        let svg = dag(&chain, &[edge("a", "b"), edge("b", "c")]);
        let xs: Vec<f64> = ["a", "b", "c"]
            .iter()
            .map(|id| {
                let tag = tags(&svg, &format!("<g class=\"node\" data-step=\"{id}\""))[0];
                let t = &tag[tag.find("translate(").unwrap() + 10..];
                t[..t.find(',').unwrap()].parse().unwrap()
            })
            .collect();
        assert!(xs[0] < xs[1] && xs[1] < xs[2], "{xs:?}");
        assert_eq!(
            tags(&svg, "<path d=\"M").len(),
            4,
            "two curves, two arrowheads"
        );
    }

    #[test]
    fn dag_routes_long_edges_around_steps() {
        let nodes = [node("a"), node("b"), node("c")];
        let edges = [edge("a", "b"), edge("b", "c"), edge("a", "c")];
        let l = layout_dag(&nodes, &edges);
        let b = l.nodes.iter().find(|n| n.id == "b").unwrap();
        let long = l
            .edges
            .iter()
            .find(|e| e.lanes.len() == 1)
            .expect("a→c has a lane");
        let (x, y) = long.lanes[0];
        assert_eq!(x, b.x);
        assert!(
            y < b.y || y > b.y + NODE_H,
            "the lane misses b: {y} vs {}",
            b.y
        );
    }

    #[test]
    fn dag_orders_columns_to_avoid_crossings() {
        // a1 feeds b2 and a2 feeds b1: sorting by parent puts b2 first.
        let nodes = [node("a1"), node("a2"), node("b1"), node("b2")];
        let edges = [edge("a1", "b2"), edge("a2", "b1")];
        let l = layout_dag(&nodes, &edges);
        let y = |id| l.nodes.iter().find(|n| n.id == id).unwrap().y;
        assert!(y("b2") < y("b1"));
    }

    #[test]
    fn dag_survives_cycles_unknown_steps_and_hostile_ids() {
        let nodes = [node("a"), node("b"), node("c")];
        let edges = [
            edge("a", "b"),
            edge("b", "c"),
            edge("c", "a"),
            edge("a", "a"),
            edge("c", "ghost"),
        ];
        let l = layout_dag(&nodes, &edges);
        assert_eq!(l.nodes.len(), 4);
        assert!(x_of(&l, "a") < x_of(&l, "b") && x_of(&l, "b") < x_of(&l, "c"));
        assert!(!l.nodes[3].known);
        let svg = dag(&nodes, &edges);
        assert!(svg.contains("unknown step") && svg.ends_with("</svg>"));
        assert_eq!(
            svg.matches(r#"stroke-dasharray="5 3""#).count(),
            1,
            "c→a goes back, dashed"
        );

        let hostile = DagNode {
            id: HOSTILE.into(),
            label: HOSTILE.into(),
            status: Some(HOSTILE.into()),
            href: Some(format!("/steps/{HOSTILE}")),
        };
        let svg = dag(&[hostile], &[edge(HOSTILE, "<b>")]);
        assert_escaped(&svg);
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
    }

    #[test]
    fn dag_links_nodes_to_their_pages() {
        let mut linked = node("train");
        linked.href = Some("/runs/7/steps/train/log?tail=1&follow=0".into());
        let mut evil = node("evil");
        evil.href = Some(" JavaScript:alert(1)".into());
        let svg = dag(&[linked, evil, node("plain")], &[]);
        assert!(svg.contains(r#"<a href="/runs/7/steps/train/log?tail=1&amp;follow=0"><g class="node" data-step="train""#), "{svg}");
        assert_eq!(
            tags(&svg, "<a href").len(),
            1,
            "no link for javascript: or none"
        );
        assert_eq!(
            safe_href("https://x.example/a"),
            Some("https://x.example/a")
        );
        assert_eq!(safe_href("logs/a:b"), Some("logs/a:b"));
        assert_eq!(safe_href("data:text/html,x"), None);
    }

    #[test]
    fn statuses_have_airflow_colours() {
        assert_eq!(status_colour("succeeded"), "#008000");
        assert_eq!(status_colour("failed"), "#ff0000");
        assert_eq!(status_colour("skipped"), "#ff69b4");
        assert_eq!(status_colour("upstream_failed"), "#ffa500");
        assert_eq!(status_colour("whatever"), "#ffffff");
        let all: std::collections::HashSet<_> = STATUSES.iter().map(|s| status_colour(s)).collect();
        assert_eq!(all.len(), STATUSES.len(), "each status has its own colour");
        assert!(!all.contains("#ffffff"));
    }

    /// Writes one example of each chart to /tmp/charts-preview to look at:
    /// `cargo test --lib console::charts -- --ignored`.
    #[test]
    #[ignore = "writes preview files"]
    fn previews() {
        let dir = std::path::Path::new("/tmp/charts-preview");
        std::fs::create_dir_all(dir).unwrap();
        let versions: Vec<(f64, String)> = (1..=12).map(|v| (v as f64, format!("v{v}"))).collect();
        let metric = |base: f64, slope: f64| -> Vec<(f64, f64)> {
            (1..=12)
                .map(|v| {
                    (
                        v as f64,
                        base + slope * (v as f64).ln() + 0.002 * ((v * 7 % 5) as f64),
                    )
                })
                .collect()
        };
        let offline = LineChart {
            title: "Offline metrics of solution movies-user-personalization".into(),
            series: vec![
                Series {
                    name: "precision_at_10".into(),
                    points: metric(0.031, 0.004),
                },
                Series {
                    name: "normalized_discounted_cumulative_gain_at_10".into(),
                    points: metric(0.052, 0.006),
                },
                Series {
                    name: "mean_reciprocal_rank_at_25".into(),
                    points: metric(0.071, 0.003),
                },
            ],
            x_labels: versions,
            ..LineChart::default()
        };
        let minutes: Vec<(f64, String)> = (0..60)
            .map(|m| {
                (
                    m as f64,
                    format!("{:02}:{:02}", 13 + (m + 5) / 60, (m + 5) % 60),
                )
            })
            .collect();
        let live = LineChart {
            title: "Latency, last hour".into(),
            series: vec![
                Series {
                    name: "p50".into(),
                    points: (0..60)
                        .map(|m| (m as f64, 4.0 + (m % 9) as f64 * 0.3))
                        .collect(),
                },
                Series {
                    name: "p99".into(),
                    points: (0..60)
                        .map(|m| {
                            (
                                m as f64,
                                if m == 20 {
                                    f64::NAN
                                } else {
                                    18.0 + (m * 13 % 17) as f64
                                },
                            )
                        })
                        .collect(),
                },
            ],
            x_labels: minutes,
            y_unit: Some("ms".into()),
            ..LineChart::default()
        };
        let one = LineChart {
            title: "Errors".into(),
            series: vec![Series {
                name: "errors/s".into(),
                points: vec![(3.0, 0.0)],
            }],
            ..LineChart::default()
        };
        let narrow = LineChart {
            title: "Requests per minute by campaign, a long title that must be cut".into(),
            series: [
                "movies-home",
                "movies-similar",
                "<b>ranking</b>",
                "trending-now",
            ]
            .iter()
            .enumerate()
            .map(|(i, name)| Series {
                name: name.to_string(),
                points: (0..30)
                    .map(|m| {
                        (
                            m as f64,
                            12_000.0 * (i + 1) as f64 + (m * 337 % 900) as f64 * 10.0,
                        )
                    })
                    .collect(),
            })
            .collect(),
            y_unit: Some("req/min".into()),
            width: 360,
            height: 220,
            ..LineChart::default()
        };
        let empty = LineChart {
            title: "Requests/s".into(),
            ..LineChart::default()
        };
        let bar = |label: &str, s: i64, e: Option<i64>, status: &str| GanttBar {
            label: label.into(),
            start: at(s),
            end: e.map(at),
            status: status.into(),
        };
        let bars = [
            bar("import_interactions #1", 0, Some(95), "succeeded"),
            bar("import_items #1", 2, Some(40), "succeeded"),
            bar("train_user_personalization #1", 96, Some(700), "failed"),
            bar("train_user_personalization #2", 730, None, "running"),
            bar("train_similar_items #1", 96, Some(1300), "succeeded"),
            bar("evaluate #1", 700, Some(702), "upstream_failed"),
            bar("batch_export #1", 1301, Some(1302), "skipped"),
            bar("deploy #1", 1302, Some(1500), "queued"),
        ];
        let gantt_svg = gantt(&bars, at(0), at(1600));
        let steps = [
            ("import_interactions", "dataset_import", Some("succeeded")),
            ("import_items", "dataset_import", Some("succeeded")),
            ("import_users", "dataset_import", Some("failed")),
            (
                "train_user_personalization",
                "solution_version",
                Some("running"),
            ),
            ("train_similar_items", "solution_version", Some("succeeded")),
            ("train_ranking", "solution_version", Some("upstream_failed")),
            ("evaluate", "evaluate", None),
            ("batch_export", "batch_inference", Some("skipped")),
            ("deploy_campaign", "campaign_update", Some("queued")),
            ("notify", "shell", Some("cancelled")),
        ];
        let nodes: Vec<DagNode> = steps
            .iter()
            .map(|(id, ty, st)| DagNode {
                id: id.to_string(),
                label: ty.to_string(),
                status: st.map(String::from),
                href: Some(format!("/steps/{id}")),
            })
            .collect();
        let edges = [
            edge("import_interactions", "train_user_personalization"),
            edge("import_items", "train_user_personalization"),
            edge("import_interactions", "train_similar_items"),
            edge("import_items", "train_similar_items"),
            edge("import_users", "train_ranking"),
            edge("import_interactions", "train_ranking"),
            edge("train_user_personalization", "evaluate"),
            edge("train_similar_items", "evaluate"),
            edge("evaluate", "deploy_campaign"),
            edge("train_similar_items", "batch_export"),
            edge("deploy_campaign", "notify"),
            edge("batch_export", "notify"),
        ];
        for (name, svg) in [
            ("line-offline", line_chart(&offline)),
            ("line-live", line_chart(&live)),
            ("line-one-point", line_chart(&one)),
            ("line-narrow", line_chart(&narrow)),
            ("line-empty", line_chart(&empty)),
            ("gantt", gantt_svg),
            ("dag", dag(&nodes, &edges)),
            (
                "dag-cycle",
                dag(
                    &nodes[..3],
                    &[
                        edge("import_interactions", "import_items"),
                        edge("import_items", "import_interactions"),
                        edge("import_items", "ghost"),
                    ],
                ),
            ),
        ] {
            std::fs::write(dir.join(format!("{name}.svg")), svg).unwrap();
        }
    }
}
