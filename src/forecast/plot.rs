//! An SVG chart of one item's forecast, drawn as the managed console draws
//! it: the history, the forecast's median with the intervals between the
//! predictor's own quantiles shaded, backtest windows as shaded spans with
//! their median over the actuals, and a line where the forecast starts.
//! The legend names exactly what is drawn. No dependencies; whatever the
//! input (empty, constant, NaN, huge), the output is well-formed SVG 1.1
//! with every number finite and every text escaped.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};

/// The forecast at one quantile: `values[i]` belongs to the forecast's
/// `i`-th date. NaN leaves a gap.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantile {
    /// Strictly between 0 and 1, e.g. 0.9 for P90.
    pub level: f64,
    pub values: Vec<f64>,
}

/// One backtest window: the dates it forecast and its central forecast
/// there (the median, or the mean when there is no 0.5 quantile, as for
/// the forecast itself).
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestWindow {
    pub dates: Vec<NaiveDateTime>,
    pub center: Vec<f64>,
}

/// What to draw. Series are drawn in the order given; values at the same
/// index of `forecast_dates`, `mean` and the quantiles belong together
/// (extra values on either side are ignored). NaN anywhere is a gap.
///
/// The forecast line is the 0.5 quantile when there is one, else the mean.
/// The other quantiles pair up from the outside in (the lowest with the
/// highest, the next with the next) into shaded intervals named by their
/// quantiles, e.g. "80% interval (P10–P90)"; one left without a partner is
/// drawn as a thin line of its own.
#[derive(Debug, Clone)]
pub struct PlotData<'a> {
    /// Shown on top, e.g. "item 100_1 — ets, weekly".
    pub title: &'a str,
    pub history: &'a [(NaiveDateTime, f64)],
    pub forecast_dates: &'a [NaiveDateTime],
    /// The quantiles the predictor produces, in any order; only these are
    /// drawn.
    pub quantiles: &'a [Quantile],
    /// The forecast's mean, drawn only when there is no 0.5 quantile.
    pub mean: &'a [f64],
    pub backtests: &'a [BacktestWindow],
    /// The y-axis label, e.g. "units".
    pub unit: Option<&'a str>,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 420.0;
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";
/// Pixels per character of an 11px label, a generous average so that
/// estimated widths keep labels apart.
const CHAR_PX: f64 = 6.8;

const BACKGROUND: &str = "#ffffff";
const INK: &str = "#111827";
const MUTED: &str = "#6b7280";
const GRID: &str = "#e5e7eb";
const AXIS: &str = "#9ca3af";
const HISTORY: &str = "#374151";
const FORECAST: &str = "#2563eb";
const BACKTEST: &str = "#ea580c";

/// Values beyond this are clamped so that every coordinate and tick stays
/// finite (a span of ±1e300 still fits an f64).
const LIMIT: f64 = 1e300;

/// Renders the chart as an SVG document (960×420).
pub fn svg(data: &PlotData) -> String {
    Chart::new(data).render()
}

/// Writes the chart to `path`, which must end in `.svg`, atomically (a
/// temporary file in the same directory, then a rename).
pub fn write(path: &Path, data: &PlotData) -> anyhow::Result<()> {
    write_text(path, &svg(data))
}

/// Writes an SVG document made by [`svg`] to `path` as [`write`] does.
pub fn write_text(path: &Path, document: &str) -> anyhow::Result<()> {
    if PlotFormat::of_path(path) != Some(PlotFormat::Svg) {
        bail!(
            "cannot write the plot to {}: name the file *.svg (or render a PNG with \
             `recflow forecast plot --format png`)",
            path.display()
        );
    }
    write_file(path, document.as_bytes())
}

/// The file formats a plot is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlotFormat {
    /// The chart as drawn: scalable, opens in any browser.
    #[default]
    Svg,
    /// Rendered at twice the chart's size, for tools and chats that do not
    /// show SVG.
    Png,
}

impl PlotFormat {
    pub fn extension(self) -> &'static str {
        match self {
            PlotFormat::Svg => "svg",
            PlotFormat::Png => "png",
        }
    }

    /// The format a file name's extension names, if any.
    pub fn of_path(path: &Path) -> Option<PlotFormat> {
        let ext = path.extension()?.to_str()?;
        [PlotFormat::Svg, PlotFormat::Png]
            .into_iter()
            .find(|f| ext.eq_ignore_ascii_case(f.extension()))
    }

    /// The file's bytes for an SVG document made by [`svg`].
    pub fn encode(self, document: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            PlotFormat::Svg => Ok(document.as_bytes().to_vec()),
            PlotFormat::Png => png(document),
        }
    }
}

impl std::str::FromStr for PlotFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "svg" => Ok(PlotFormat::Svg),
            "png" => Ok(PlotFormat::Png),
            _ => Err(format!("unknown plot format {s:?}; known: svg, png")),
        }
    }
}

/// Sans-serif families tried, in order, for the chart's generic
/// `sans-serif` when the system's font configuration names none usvg finds.
const SANS_SERIF: [&str; 6] = [
    "Helvetica",
    "Arial",
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "Roboto",
];

/// Renders an SVG document made by [`svg`] as a PNG at twice its size, with
/// the system's fonts (text is left out when the system has none).
pub fn png(document: &str) -> anyhow::Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    const SCALE: f32 = 2.0;
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    let installed: std::collections::HashSet<String> = fonts
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .collect();
    if let Some(family) = SANS_SERIF.iter().find(|f| installed.contains(**f)) {
        fonts.set_sans_serif_family(*family);
    }
    let tree = usvg::Tree::from_str(document, &options).context("reading the plot's SVG")?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(SCALE)
        .context("plot size")?;
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).context("allocating the image")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("encoding the PNG")
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, then a rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_file_name(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing the plot to {}", path.display()));
    }
    Ok(())
}

/// A finite value or nothing: NaN and ±inf are gaps, huge values clamped.
fn value(v: f64) -> Option<f64> {
    v.is_finite().then(|| v.clamp(-LIMIT, LIMIT))
}

fn secs(d: &NaiveDateTime) -> f64 {
    d.and_utc().timestamp() as f64
}

/// Whether a quantile is the median.
fn is_median(level: f64) -> bool {
    (level - 0.5).abs() < 1e-9
}

/// What is drawn of the forecast, from the quantiles given.
struct Layers<'d> {
    /// The forecast line: the median, else the mean.
    center: &'d [f64],
    median: bool,
    /// `(lower, upper)`, outermost first; each nests inside the one before.
    bands: Vec<(&'d Quantile, &'d Quantile)>,
    /// At most one: the middle quantile of an odd count left after the
    /// median, which pairs with no other.
    lines: Vec<&'d Quantile>,
}

impl<'d> Layers<'d> {
    fn of(data: &'d PlotData) -> Self {
        let mut qs: Vec<&Quantile> = data
            .quantiles
            .iter()
            .filter(|q| q.level > 0.0 && q.level < 1.0)
            .collect();
        qs.sort_by(|a, b| a.level.total_cmp(&b.level));
        qs.dedup_by(|a, b| a.level == b.level);
        let median = qs
            .iter()
            .position(|q| is_median(q.level))
            .map(|k| qs.remove(k));
        let mut bands = Vec::new();
        let (mut lo, mut hi) = (0, qs.len());
        while hi - lo >= 2 {
            bands.push((qs[lo], qs[hi - 1]));
            (lo, hi) = (lo + 1, hi - 1);
        }
        Layers {
            center: median.map_or(data.mean, |m| m.values.as_slice()),
            median: median.is_some(),
            bands,
            lines: qs[lo..hi].to_vec(),
        }
    }

    /// How the shaded area of band `k` looks where it and every band
    /// around it overlap: from light outside to darker inside.
    fn band_shade(&self, k: usize) -> f64 {
        match self.bands.len() {
            0 | 1 => 0.2,
            n => 0.14 + 0.26 * k as f64 / (n - 1) as f64,
        }
    }

    /// The fill opacity that gives band `k` its shade when drawn over the
    /// bands around it.
    fn band_opacity(&self, k: usize) -> f64 {
        match k {
            0 => self.band_shade(0),
            k => 1.0 - (1.0 - self.band_shade(k)) / (1.0 - self.band_shade(k - 1)),
        }
    }
}

/// A quantile's name: 0.1 → "P10", 0.05 → "P05", 0.025 → "P2.5".
fn quantile_label(level: f64) -> String {
    let pct = level * 100.0;
    if (pct - pct.round()).abs() < 1e-6 {
        format!("P{:02}", pct.round() as i64)
    } else {
        format!("P{}", percent(pct))
    }
}

/// A percentage with at most three decimals and no trailing zeros.
fn percent(pct: f64) -> String {
    let s = format!("{pct:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Swatch {
    History,
    Center,
    /// A band, with the shade it has in the chart.
    Band(f64),
    Quantile,
    Backtest,
}

/// A legend entry placed at `(x, y)`, the middle of its swatch's left edge.
struct LegendEntry {
    swatch: Swatch,
    label: String,
    x: f64,
    y: f64,
}

/// The legend's entries, one for each layer drawn; with `short`, bands
/// are named by their quantiles alone.
fn legend_entries(data: &PlotData, layers: &Layers, short: bool) -> Vec<(Swatch, String)> {
    let mut items = Vec::new();
    if !data.history.is_empty() {
        items.push((Swatch::History, "history".to_string()));
    }
    // A layer without one finite value in the forecast's dates draws
    // nothing, and so is not named.
    let n = data.forecast_dates.len();
    let drawn = |v: &[f64]| v.iter().take(n).any(|x| x.is_finite());
    let center = if layers.median { "P50" } else { "mean" };
    if drawn(layers.center) {
        items.push((Swatch::Center, format!("{center} forecast")));
    }
    // Innermost first, as one reads outwards from the forecast line.
    for (k, (lo, hi)) in layers.bands.iter().enumerate().rev() {
        let mut both = lo.values.iter().zip(&hi.values).take(n);
        if !both.any(|(l, u)| l.is_finite() && u.is_finite()) {
            continue;
        }
        let name = format!("{}–{}", quantile_label(lo.level), quantile_label(hi.level));
        let label = if short {
            name
        } else {
            format!(
                "{}% interval ({name})",
                percent((hi.level - lo.level) * 100.0)
            )
        };
        items.push((Swatch::Band(layers.band_shade(k)), label));
    }
    for q in layers.lines.iter().filter(|q| drawn(&q.values)) {
        items.push((Swatch::Quantile, quantile_label(q.level)));
    }
    if !data.backtests.is_empty() {
        items.push((Swatch::Backtest, format!("backtest {center}")));
    }
    items
}

fn legend_width(label: &str) -> f64 {
    24.0 + label.chars().count() as f64 * 6.6 + 20.0
}

/// The legend laid out in rows from `(16, 48)`, within the chart's width:
/// full names when they fit on one row, else bands by their quantiles and
/// as many rows as needed.
fn legend_layout(data: &PlotData, layers: &Layers) -> Vec<LegendEntry> {
    let room = WIDTH - 16.0;
    let one_row = |items: &[(Swatch, String)]| {
        16.0 + items.iter().map(|(_, l)| legend_width(l)).sum::<f64>() - 20.0 <= room
    };
    let mut items = legend_entries(data, layers, false);
    if !one_row(&items) {
        items = legend_entries(data, layers, true);
    }
    let (mut x, mut y) = (16.0, 48.0);
    let mut out = Vec::new();
    for (swatch, label) in items {
        let width = legend_width(&label);
        if x > 16.0 && x + width - 20.0 > room {
            (x, y) = (16.0, y + 20.0);
        }
        out.push(LegendEntry {
            swatch,
            label,
            x,
            y,
        });
        x += width;
    }
    out
}

/// The layout and the data-to-pixel mapping.
struct Chart<'d, 'a> {
    data: &'d PlotData<'a>,
    layers: Layers<'d>,
    legend: Vec<LegendEntry>,
    /// Time domain in seconds; `None` when there is no date at all.
    x_domain: Option<(f64, f64)>,
    y_ticks: Vec<f64>,
    y_labels: Vec<String>,
    /// The typical spacing of the series, in seconds.
    period: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl<'d, 'a> Chart<'d, 'a> {
    fn new(data: &'d PlotData<'a>) -> Self {
        let layers = Layers::of(data);
        let legend = legend_layout(data, &layers);
        // Each legend row after the first moves the plot area down.
        let top = legend.last().map_or(48.0, |e| e.y) + 18.0;
        let (lo, hi) = y_domain(data, &layers);
        let (step, y_ticks) = nice_ticks(lo, hi);
        let max_abs = y_ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
        let y_labels: Vec<String> = y_ticks
            .iter()
            .map(|&t| format_number(t, step, max_abs))
            .collect();
        let widest = y_labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(1);
        let unit_px = if data.unit.is_some() { 22.0 } else { 0.0 };
        let left = (16.0 + unit_px + widest as f64 * CHAR_PX + 10.0)
            .max(56.0)
            .round();
        Chart {
            data,
            layers,
            legend,
            x_domain: x_domain(data),
            y_ticks,
            y_labels,
            period: period(data),
            left,
            right: WIDTH - 28.0,
            top,
            bottom: HEIGHT - 46.0,
        }
    }

    fn x(&self, s: f64) -> f64 {
        match self.x_domain {
            Some((a, b)) => self.left + (s - a) / (b - a) * (self.right - self.left),
            None => (self.left + self.right) / 2.0,
        }
    }

    fn y(&self, v: f64) -> f64 {
        let (lo, hi) = (self.y_ticks[0], self.y_ticks[self.y_ticks.len() - 1]);
        self.bottom - (v - lo) / (hi - lo) * (self.bottom - self.top)
    }

    fn render(&self) -> String {
        let d = self.data;
        let mut s = String::with_capacity(8192 + 16 * d.history.len());
        let _ = write!(
            s,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}" font-size="11">
<title>{}</title>
<defs><clipPath id="plot-area"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath></defs>
<rect width="{WIDTH}" height="{HEIGHT}" fill="{BACKGROUND}"/>
"#,
            Escaped(d.title),
            Px(self.left),
            Px(self.top),
            Px(self.right - self.left),
            Px(self.bottom - self.top),
        );
        self.title(&mut s);
        self.legend(&mut s);
        self.y_axis(&mut s);
        self.x_axis(&mut s);
        s.push_str("<g clip-path=\"url(#plot-area)\">\n");
        self.backtest_spans(&mut s);
        // Outermost first: each inner band darkens the ones beneath it.
        for (k, (lo, hi)) in self.layers.bands.iter().enumerate() {
            let path = self.band_path(&lo.values, &hi.values);
            if !path.is_empty() {
                let _ = writeln!(
                    s,
                    r#"<path class="band" data-quantiles="{} {}" d="{path}" fill="{FORECAST}" fill-opacity="{:.3}" stroke="none"/>"#,
                    lo.level,
                    hi.level,
                    self.layers.band_opacity(k)
                );
            }
        }
        let history = self.line_path([d.history.iter().map(|(t, v)| (secs(t), *v))]);
        self.line(&mut s, "history", &history, HISTORY, 1.5, None);
        let backtests = self.line_path(
            d.backtests
                .iter()
                .map(|w| w.dates.iter().zip(&w.center).map(|(t, v)| (secs(t), *v))),
        );
        self.line(
            &mut s,
            "backtest-center",
            &backtests,
            BACKTEST,
            1.6,
            Some("5 3"),
        );
        // The forecast continues from the last actual, so the eye follows it.
        let center = self.layers.center;
        let join = match (d.forecast_dates.first(), center.first()) {
            (Some(start), Some(p)) if p.is_finite() => d
                .history
                .iter()
                .rev()
                .find(|(t, v)| v.is_finite() && t < start)
                .map(|(t, v)| (secs(t), *v)),
            _ => None,
        };
        for q in &self.layers.lines {
            let path = self.line_path([d
                .forecast_dates
                .iter()
                .zip(&q.values)
                .map(|(t, v)| (secs(t), *v))]);
            self.line(&mut s, "quantile", &path, FORECAST, 1.2, Some("2 3"));
        }
        let path = self.line_path([join.into_iter().chain(
            d.forecast_dates
                .iter()
                .zip(center)
                .map(|(t, v)| (secs(t), *v)),
        )]);
        self.line(&mut s, "center", &path, FORECAST, 2.2, None);
        s.push_str("</g>\n");
        self.forecast_start(&mut s);
        if self.x_domain.is_none() {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle" fill="{MUTED}" font-size="13">no data</text>"#,
                Px((self.left + self.right) / 2.0),
                Px((self.top + self.bottom) / 2.0)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    fn title(&self, s: &mut String) {
        let room = ((self.right - 16.0) / 8.6) as usize;
        let title: String = if self.data.title.chars().count() > room {
            let mut t: String = self
                .data
                .title
                .chars()
                .take(room.saturating_sub(1))
                .collect();
            t.push('…');
            t
        } else {
            self.data.title.to_string()
        };
        let _ = writeln!(
            s,
            r#"<text class="title" x="16" y="26" font-size="15" font-weight="600" fill="{INK}">{}</text>"#,
            Escaped(&title)
        );
    }

    fn legend(&self, s: &mut String) {
        if self.legend.is_empty() {
            return;
        }
        s.push_str("<g class=\"legend\">\n");
        for LegendEntry {
            swatch,
            label,
            x,
            y,
        } in &self.legend
        {
            let (x, y) = (*x, *y);
            match *swatch {
                Swatch::History | Swatch::Center | Swatch::Quantile => {
                    let (color, width, dash) = match swatch {
                        Swatch::History => (HISTORY, 1.5, ""),
                        Swatch::Center => (FORECAST, 2.2, ""),
                        _ => (FORECAST, 1.2, r#" stroke-dasharray="2 3""#),
                    };
                    let _ = writeln!(
                        s,
                        r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="{width}" stroke-linecap="round"{dash}/>"#,
                        Px(x),
                        Px(y),
                        Px(x + 18.0),
                        Px(y)
                    );
                }
                Swatch::Band(shade) => {
                    let _ = writeln!(
                        s,
                        r#"<rect x="{}" y="{}" width="18" height="10" rx="2" fill="{FORECAST}" fill-opacity="{shade:.3}"/>"#,
                        Px(x),
                        Px(y - 5.0)
                    );
                }
                Swatch::Backtest => {
                    let _ = writeln!(
                        s,
                        r#"<rect x="{}" y="{}" width="18" height="12" fill="{BACKTEST}" fill-opacity="0.10"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{BACKTEST}" stroke-width="1.6" stroke-dasharray="5 3"/>"#,
                        Px(x),
                        Px(y - 6.0),
                        Px(x),
                        Px(y),
                        Px(x + 18.0),
                        Px(y)
                    );
                }
            }
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" dy="0.35em" fill="{INK}" font-size="12">{}</text>"#,
                Px(x + 24.0),
                Px(y),
                Escaped(label)
            );
        }
        s.push_str("</g>\n");
    }

    fn y_axis(&self, s: &mut String) {
        s.push_str("<g class=\"y-axis\">\n");
        for (t, label) in self.y_ticks.iter().zip(&self.y_labels) {
            let y = self.y(*t).round() + 0.5;
            let _ = writeln!(
                s,
                r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{GRID}" stroke-width="1"/><text x="{}" y="{}" dy="0.32em" text-anchor="end" fill="{MUTED}">{}</text>"#,
                Px(self.left),
                Px(y),
                Px(self.right),
                Px(y),
                Px(self.left - 8.0),
                Px(y),
                Escaped(label)
            );
        }
        if let Some(unit) = self.data.unit {
            let (x, y) = (22.0, (self.top + self.bottom) / 2.0);
            let _ = writeln!(
                s,
                r#"<text x="{x}" y="{}" transform="rotate(-90 {x} {})" text-anchor="middle" fill="{MUTED}" font-size="12">{}</text>"#,
                Px(y),
                Px(y),
                Escaped(unit)
            );
        }
        s.push_str("</g>\n");
    }

    fn x_axis(&self, s: &mut String) {
        let _ = writeln!(
            s,
            r#"<g class="x-axis"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{AXIS}" stroke-width="1"/>"#,
            Px(self.left),
            Px(self.bottom + 0.5),
            Px(self.right),
            Px(self.bottom + 0.5)
        );
        if let Some((a, b)) = self.x_domain {
            for tick in date_ticks(a, b, self.right - self.left) {
                let x = self.x(secs(&tick.at)).round() + 0.5;
                let _ = write!(
                    s,
                    r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{GRID}" stroke-width="1"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{AXIS}" stroke-width="1"/><text x="{}" y="{}" text-anchor="middle" fill="{MUTED}">{}"#,
                    Px(x),
                    Px(self.top),
                    Px(x),
                    Px(self.bottom),
                    Px(x),
                    Px(self.bottom),
                    Px(x),
                    Px(self.bottom + 5.0),
                    Px(x),
                    Px(self.bottom + 18.0),
                    Escaped(&tick.label)
                );
                if let Some(context) = &tick.context {
                    let _ = write!(
                        s,
                        r#"<tspan x="{}" dy="14" fill="{INK}">{}</tspan>"#,
                        Px(x),
                        Escaped(context)
                    );
                }
                s.push_str("</text>\n");
            }
        }
        s.push_str("</g>\n");
    }

    fn backtest_spans(&self, s: &mut String) {
        let windows: Vec<(f64, f64)> = self
            .data
            .backtests
            .iter()
            .filter_map(|w| {
                let first = w.dates.iter().map(secs).reduce(f64::min)?;
                let last = w.dates.iter().map(secs).reduce(f64::max)?;
                // Half a period either side: the span covers its points as
                // bars would, and adjacent windows meet.
                let x0 = self.x(first - self.period / 2.0);
                let x1 = self.x(last + self.period / 2.0);
                Some((x0, x1))
            })
            .collect();
        if windows.is_empty() {
            return;
        }
        s.push_str("<g class=\"backtest-spans\">\n");
        for (x0, x1) in windows {
            let (x0, x1) = (x0.max(self.left - 1.0), x1.min(self.right + 1.0));
            if x1 <= x0 {
                continue;
            }
            let _ = writeln!(
                s,
                r#"<rect class="backtest-span" x="{}" y="{}" width="{}" height="{}" fill="{BACKTEST}" fill-opacity="0.07"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{BACKTEST}" stroke-opacity="0.35" stroke-width="1"/>"#,
                Px(x0),
                Px(self.top),
                Px(x1 - x0),
                Px(self.bottom - self.top),
                Px(x0.round() + 0.5),
                Px(self.top),
                Px(x0.round() + 0.5),
                Px(self.bottom)
            );
            if x1 - x0 >= 56.0 {
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" fill="{BACKTEST}" font-size="10">backtest</text>"#,
                    Px(x0 + 5.0),
                    Px(self.top + 12.0)
                );
            }
        }
        s.push_str("</g>\n");
    }

    fn forecast_start(&self, s: &mut String) {
        let Some(start) = self.data.forecast_dates.first() else {
            return;
        };
        let x = self.x(secs(start)).round() + 0.5;
        // The label goes after the line, or before it when a short
        // forecast leaves no room.
        let (label_x, anchor) = if x + 60.0 <= WIDTH - 4.0 {
            (x + 4.0, "start")
        } else {
            (x - 4.0, "end")
        };
        let _ = writeln!(
            s,
            r#"<g class="forecast-start"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{MUTED}" stroke-width="1" stroke-dasharray="3 3"/><text x="{}" y="{}" text-anchor="{anchor}" fill="{MUTED}" font-size="10">forecast →</text></g>"#,
            Px(x),
            Px(self.top - 4.0),
            Px(x),
            Px(self.bottom),
            Px(label_x),
            Px(self.top + 10.0)
        );
    }

    fn line(
        &self,
        s: &mut String,
        class: &str,
        d: &str,
        color: &str,
        width: f64,
        dash: Option<&str>,
    ) {
        if d.is_empty() {
            return;
        }
        let dash = dash
            .map(|p| format!(r#" stroke-dasharray="{p}""#))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            r#"<path class="{class}" d="{d}" fill="none" stroke="{color}" stroke-width="{width}" stroke-linejoin="round" stroke-linecap="round"{dash}/>"#
        );
    }

    /// One path for any number of runs; NaN lifts the pen. A lone point is
    /// a zero-length segment, which the round cap draws as a dot.
    fn line_path<R, I>(&self, runs: R) -> String
    where
        R: IntoIterator<Item = I>,
        I: IntoIterator<Item = (f64, f64)>,
    {
        let mut d = String::new();
        for run in runs {
            let mut len = 0;
            for (t, v) in run {
                match value(v) {
                    None => {
                        if len == 1 {
                            d.push_str("h0");
                        }
                        len = 0;
                    }
                    Some(v) => {
                        let op = if len == 0 { 'M' } else { 'L' };
                        let _ = write!(d, "{op}{} {}", Px(self.x(t)), Px(self.y(v)));
                        len += 1;
                    }
                }
            }
            if len == 1 {
                d.push_str("h0");
            }
        }
        d
    }

    /// Closed polygons over each run where both bounds are known: upper
    /// edge forward, lower edge back. A lone point becomes a narrow bar.
    fn band_path(&self, lower: &[f64], upper: &[f64]) -> String {
        let points: Vec<Option<(f64, f64, f64)>> = self
            .data
            .forecast_dates
            .iter()
            .zip(lower.iter().zip(upper))
            .map(|(t, (l, u))| {
                let (l, u) = (value(*l)?, value(*u)?);
                Some((self.x(secs(t)), self.y(l.min(u)), self.y(l.max(u))))
            })
            .collect();
        let mut d = String::new();
        for run in points.split(|p| p.is_none()) {
            let run: Vec<(f64, f64, f64)> = run.iter().flatten().copied().collect();
            match run.as_slice() {
                [] => {}
                [(x, lo, hi)] => {
                    let _ = write!(
                        d,
                        "M{} {}H{}V{}H{}Z",
                        Px(x - 3.0),
                        Px(*hi),
                        Px(x + 3.0),
                        Px(*lo),
                        Px(x - 3.0)
                    );
                }
                _ => {
                    for (i, (x, _, hi)) in run.iter().enumerate() {
                        let op = if i == 0 { 'M' } else { 'L' };
                        let _ = write!(d, "{op}{} {}", Px(*x), Px(*hi));
                    }
                    for (x, lo, _) in run.iter().rev() {
                        let _ = write!(d, "L{} {}", Px(*x), Px(*lo));
                    }
                    d.push('Z');
                }
            }
        }
        d
    }
}

fn all_dates<'x>(data: &'x PlotData) -> impl Iterator<Item = &'x NaiveDateTime> {
    data.history
        .iter()
        .map(|(t, _)| t)
        .chain(data.forecast_dates)
        .chain(data.backtests.iter().flat_map(|w| &w.dates))
}

fn x_domain(data: &PlotData) -> Option<(f64, f64)> {
    let (lo, hi) =
        all_dates(data)
            .map(secs)
            .fold(None, |acc: Option<(f64, f64)>, t| match acc {
                None => Some((t, t)),
                Some((a, b)) => Some((a.min(t), b.max(t))),
            })?;
    if hi > lo {
        Some((lo, hi))
    } else {
        Some((lo - 86_400.0, hi + 86_400.0))
    }
}

/// The median spacing of the history (else of the forecast), one day when
/// neither has two dates.
fn period(data: &PlotData) -> f64 {
    let median_step = |dates: Vec<f64>| {
        let mut steps: Vec<f64> = dates
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .filter(|s| *s > 0.0)
            .collect();
        steps.sort_by(f64::total_cmp);
        steps.get(steps.len() / 2).copied()
    };
    median_step(data.history.iter().map(|(t, _)| secs(t)).collect())
        .or_else(|| median_step(data.forecast_dates.iter().map(secs).collect()))
        .unwrap_or(86_400.0)
}

/// The range of every finite value drawn, widened to include zero when
/// that at most doubles it (demand reads best from a zero baseline), and
/// never empty.
fn y_domain(data: &PlotData, layers: &Layers) -> (f64, f64) {
    let values = data
        .history
        .iter()
        .map(|(_, v)| *v)
        .chain(layers.center.iter().copied())
        .chain(
            layers
                .bands
                .iter()
                .flat_map(|(lo, hi)| [*lo, *hi])
                .chain(layers.lines.iter().copied())
                .flat_map(|q| q.values.iter().copied()),
        )
        .chain(data.backtests.iter().flat_map(|w| w.center.iter().copied()))
        .filter_map(value);
    let Some((mut lo, mut hi)) = values.fold(None, |acc: Option<(f64, f64)>, v| match acc {
        None => Some((v, v)),
        Some((a, b)) => Some((a.min(v), b.max(v))),
    }) else {
        return (0.0, 1.0);
    };
    if lo >= 0.0 && lo <= hi / 2.0 {
        lo = 0.0;
    } else if hi <= 0.0 && hi >= lo / 2.0 {
        hi = 0.0;
    }
    if lo == hi {
        return match lo {
            0.0 => (0.0, 1.0),
            v if v > 0.0 => (0.0, v),
            v => (v, 0.0),
        };
    }
    // Keep the span resolvable in f64 next to its magnitude.
    let min_span = lo.abs().max(hi.abs()) * 1e-9;
    if hi - lo < min_span {
        let mid = lo / 2.0 + hi / 2.0;
        (lo, hi) = (mid - min_span / 2.0, mid + min_span / 2.0);
    }
    (lo, hi)
}

/// Ticks at whole multiples of a 1-2-5 step, about five intervals, the
/// first at or below `lo` and the last at or above `hi`. Returns the step.
fn nice_ticks(lo: f64, hi: f64) -> (f64, Vec<f64>) {
    let span = hi / 2.0 - lo / 2.0; // half the span, which cannot overflow
    let raw = span * 2.0 / 5.0;
    if !(raw.is_finite() && raw > 0.0) {
        return (1.0, vec![0.0, 1.0]);
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm < 1.5 {
            1.0
        } else if norm < 3.0 {
            2.0
        } else if norm < 7.0 {
            5.0
        } else {
            10.0
        };
    let k0 = (lo / step + 1e-9).floor();
    let k1 = (hi / step - 1e-9).ceil().max(k0 + 1.0);
    let ticks = (0..=((k1 - k0) as usize).min(20))
        .map(|i| (k0 + i as f64) * step)
        .collect();
    (step, ticks)
}

/// A tick label: thousands separators below a million, SI suffixes (k, M,
/// G, T, P, E) above, scientific notation beyond; as many decimals as
/// `step` needs; a true minus sign.
fn format_number(v: f64, step: f64, max_abs: f64) -> String {
    let e = (step.log10() + 1e-9).floor() as i32;
    let decimals = |scale_exp: i32| (scale_exp - e).clamp(0, 12) as usize;
    let magnitude = if max_abs < 1e6 {
        group_thousands(&format!("{:.*}", decimals(0), v.abs()))
    } else if max_abs < 1e21 {
        let g = ((max_abs.log10() / 3.0).floor() as i32).clamp(2, 6);
        let suffix = ["", "k", "M", "G", "T", "P", "E"][g as usize];
        format!(
            "{:.*}{suffix}",
            decimals(3 * g),
            v.abs() / 10f64.powi(3 * g)
        )
    } else {
        let d = (max_abs.log10().floor() as i32 - e).clamp(0, 6) as usize;
        format!("{:.*e}", d, v.abs())
    };
    let is_zero = magnitude.chars().all(|c| !c.is_ascii_digit() || c == '0');
    if v < 0.0 && !is_zero {
        format!("−{magnitude}")
    } else {
        magnitude
    }
}

fn group_thousands(number: &str) -> String {
    let (int, frac) = number.split_at(number.find('.').unwrap_or(number.len()));
    let mut out = String::with_capacity(number.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str(frac);
    out
}

/// A spacing of date ticks, aligned to the calendar.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DateStep {
    Hours(u32),
    Days(u32),
    /// Weeks start on Monday.
    Weeks(u32),
    Months(u32),
    Years(i32),
}

impl DateStep {
    fn candidates() -> impl Iterator<Item = DateStep> {
        use DateStep::*;
        [
            Hours(1),
            Hours(2),
            Hours(3),
            Hours(6),
            Hours(12),
            Days(1),
            Days(2),
            Weeks(1),
            Weeks(2),
        ]
        .into_iter()
        .chain([Months(1), Months(2), Months(3), Months(6)])
        .chain((0..6).flat_map(|p| [1, 2, 5].map(|m| Years(m * 10i32.pow(p)))))
    }

    /// The shortest this step can be, in seconds.
    fn min_secs(self) -> f64 {
        let day = 86_400.0;
        match self {
            DateStep::Hours(n) => 3600.0 * n as f64,
            DateStep::Days(n) => day * n as f64,
            DateStep::Weeks(n) => 7.0 * day * n as f64,
            DateStep::Months(n) => 28.0 * day * n as f64,
            DateStep::Years(n) => 365.0 * day * n as f64,
        }
    }

    /// The widest label, in characters (main line or context line).
    fn label_chars(self) -> usize {
        match self {
            DateStep::Hours(_) | DateStep::Days(_) | DateStep::Weeks(_) => 6,
            DateStep::Months(_) => 4,
            DateStep::Years(n) => 4 + (n >= 1000) as usize,
        }
    }

    /// The last aligned instant at or before `t`.
    fn floor(self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let date = t.date();
        let day = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
        match self {
            DateStep::Hours(n) => date.and_hms_opt(t.hour() / n * n, 0, 0),
            DateStep::Days(n) => {
                let k = date.num_days_from_ce();
                day(NaiveDate::from_num_days_from_ce_opt(
                    k - k.rem_euclid(n as i32),
                )?)
            }
            DateStep::Weeks(n) => {
                // 0001-01-01, day 1 from the common era, was a Monday.
                let k = date.num_days_from_ce() - 1;
                let week = k.div_euclid(7);
                let week = week - week.rem_euclid(n as i32);
                day(NaiveDate::from_num_days_from_ce_opt(week * 7 + 1)?)
            }
            DateStep::Months(n) => {
                let m = date.year() * 12 + date.month0() as i32;
                let m = m - m.rem_euclid(n as i32);
                day(NaiveDate::from_ymd_opt(
                    m.div_euclid(12),
                    m.rem_euclid(12) as u32 + 1,
                    1,
                )?)
            }
            DateStep::Years(n) => day(NaiveDate::from_ymd_opt(
                date.year() - date.year().rem_euclid(n),
                1,
                1,
            )?),
        }
    }

    fn next(self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            DateStep::Hours(n) => t.checked_add_signed(Duration::hours(n as i64)),
            DateStep::Days(n) => t.checked_add_signed(Duration::days(n as i64)),
            DateStep::Weeks(n) => t.checked_add_signed(Duration::weeks(n as i64)),
            DateStep::Months(n) => t.checked_add_months(chrono::Months::new(n)),
            DateStep::Years(n) => t.checked_add_months(chrono::Months::new(12 * n as u32)),
        }
    }

    /// The label and, where the larger unit changes (or on the first tick),
    /// a context line below it: the day under hours, the year under days,
    /// weeks and months.
    fn label(self, t: NaiveDateTime, previous: Option<NaiveDateTime>) -> (String, Option<String>) {
        let changed = |same: fn(&NaiveDateTime, &NaiveDateTime) -> bool| {
            previous.is_none_or(|p| !same(&p, &t))
        };
        match self {
            DateStep::Hours(_) => (
                t.format("%H:%M").to_string(),
                changed(|a, b| a.date() == b.date()).then(|| t.format("%b %-d").to_string()),
            ),
            DateStep::Days(_) | DateStep::Weeks(_) | DateStep::Months(_) => (
                t.format(if matches!(self, DateStep::Months(_)) {
                    "%b"
                } else {
                    "%b %-d"
                })
                .to_string(),
                changed(|a, b| a.year() == b.year()).then(|| t.year().to_string()),
            ),
            DateStep::Years(_) => (t.year().to_string(), None),
        }
    }
}

struct DateTick {
    at: NaiveDateTime,
    label: String,
    context: Option<String>,
}

/// Calendar-aligned ticks over `[a, b]` (seconds), at the finest step whose
/// labels do not overlap on `width_px`.
fn date_ticks(a: f64, b: f64, width_px: f64) -> Vec<DateTick> {
    let span = (b - a).max(1.0);
    let Some(step) = DateStep::candidates()
        .find(|s| s.min_secs() / span * width_px >= s.label_chars() as f64 * CHAR_PX + 14.0)
    else {
        return Vec::new();
    };
    let to_date = |s: f64| chrono::DateTime::from_timestamp(s as i64, 0).map(|d| d.naive_utc());
    let (Some(start), Some(end)) = (to_date(a.ceil()), to_date(b.floor())) else {
        return Vec::new();
    };
    let mut ticks = Vec::new();
    let mut t = step.floor(start);
    let mut previous = None;
    while let Some(at) = t {
        if at > end || ticks.len() > 200 {
            break;
        }
        if at >= start {
            let (label, context) = step.label(at, previous);
            ticks.push(DateTick { at, label, context });
            previous = Some(at);
        }
        t = step.next(at);
    }
    ticks
}

/// A pixel coordinate with one decimal, `0` for anything not finite.
struct Px(f64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let v = if self.0.is_finite() {
            self.0.clamp(-1e6, 1e6)
        } else {
            0.0
        };
        let r = (v * 10.0).round() / 10.0;
        if r == r.trunc() {
            write!(f, "{}", r as i64)
        } else {
            write!(f, "{r:.1}")
        }
    }
}

/// XML text or attribute content: markup characters escaped, and the
/// control characters XML 1.0 forbids even escaped dropped.
struct Escaped<'s>(&'s str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '&' => f.write_str("&amp;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&apos;")?,
                '\t' | '\n' | '\r' => f.write_char(c)?,
                c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            + Duration::days(n)
    }

    /// A small well-formedness check: one root, balanced tags, quoted and
    /// unique attributes, no raw `<` in text or attributes, only the five
    /// predefined entities and character references after `&`.
    fn assert_well_formed(xml: &str) {
        fn check_text(t: &str) {
            assert!(!t.contains('<'), "raw < in {t:?}");
            for (i, _) in t.match_indices('&') {
                let entity = &t[i..t[i..].find(';').map_or(t.len(), |j| i + j + 1)];
                let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity)
                    || (entity.starts_with("&#") && entity.len() > 3);
                assert!(ok, "bad entity {entity:?}");
            }
            assert!(
                t.chars().all(|c| c >= ' ' || "\t\n\r".contains(c)),
                "control character in {t:?}"
            );
        }
        let mut rest = xml
            .strip_prefix("<?xml")
            .map_or(xml, |r| &r[r.find("?>").unwrap() + 2..]);
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        while let Some(i) = rest.find('<') {
            check_text(&rest[..i]);
            if stack.is_empty() {
                assert!(rest[..i].trim().is_empty(), "text outside the root");
            }
            rest = &rest[i + 1..];
            let mut quoted = false;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    if c == '"' {
                        quoted = !quoted;
                    }
                    c == '>' && !quoted
                })
                .expect("unclosed tag")
                .0;
            let tag = &rest[..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
            let (name, mut attrs) = tag.split_at(name_end);
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || "-_:".contains(c)),
                "bad tag name {name:?}"
            );
            let mut seen = Vec::new();
            loop {
                attrs = attrs.trim_start();
                if attrs.is_empty() {
                    break;
                }
                let eq = attrs
                    .find("=\"")
                    .unwrap_or_else(|| panic!("bad attributes {attrs:?}"));
                let key = &attrs[..eq];
                assert!(
                    !key.is_empty() && !key.contains(char::is_whitespace),
                    "bad attribute {key:?}"
                );
                assert!(!seen.contains(&key), "duplicate attribute {key}");
                seen.push(key);
                let value_end = attrs[eq + 2..].find('"').expect("unclosed attribute") + eq + 2;
                check_text(&attrs[eq + 2..value_end]);
                attrs = &attrs[value_end + 1..];
            }
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name);
            }
        }
        assert!(
            rest.trim().is_empty() && stack.is_empty(),
            "unclosed {stack:?}"
        );
        assert_eq!(roots, 1);
    }

    fn sample(
        history: &[(NaiveDateTime, f64)],
        dates: &[NaiveDateTime],
        p50: &[f64],
    ) -> PlotData<'static> {
        PlotData {
            title: "item 100_1 — ets, weekly",
            history: Vec::leak(history.to_vec()),
            forecast_dates: Vec::leak(dates.to_vec()),
            quantiles: Vec::leak(vec![Quantile {
                level: 0.5,
                values: p50.to_vec(),
            }]),
            mean: &[],
            backtests: &[],
            unit: Some("units"),
        }
    }

    fn weekly() -> PlotData<'static> {
        let history: Vec<_> = (0..60)
            .map(|i| (day(7 * i), 100.0 + (i % 5) as f64 * 30.0))
            .collect();
        let dates: Vec<_> = (60..72).map(|i| day(7 * i)).collect();
        sample(&history, &dates, &[150.0; 12])
    }

    /// Constant forecasts at the given `(level, value)`s over 12 dates.
    fn quantiles(levels: &[(f64, f64)]) -> &'static [Quantile] {
        Vec::leak(
            levels
                .iter()
                .map(|&(level, v)| Quantile {
                    level,
                    values: vec![v; 12],
                })
                .collect(),
        )
    }

    /// The legend's labels, in order.
    fn legend(svg: &str) -> Vec<&str> {
        let legend = &svg[svg.find("class=\"legend\"").unwrap()..];
        let legend = &legend[..legend.find("</g>").unwrap()];
        legend
            .split("font-size=\"12\">")
            .skip(1)
            .map(|t| &t[..t.find('<').unwrap()])
            .collect()
    }

    #[test]
    fn every_layer_is_drawn_when_given() {
        let mut data = weekly();
        data.quantiles = quantiles(&[
            (0.05, 80.0),
            (0.25, 120.0),
            (0.5, 150.0),
            (0.75, 180.0),
            (0.95, 220.0),
        ]);
        let windows = vec![BacktestWindow {
            dates: (48..60).map(|i| day(7 * i)).collect(),
            center: vec![140.0; 12],
        }];
        data.backtests = &windows;
        let svg = svg(&data);
        assert_well_formed(&svg);
        assert!(
            svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#)
                && svg.contains(r#"version="1.1""#)
        );
        for class in [
            "history",
            "center",
            "band",
            "backtest-span",
            "backtest-center",
            "forecast-start",
            "legend",
        ] {
            assert!(svg.contains(&format!("class=\"{class}\"")), "no {class}");
        }
        assert_eq!(
            legend(&svg),
            [
                "history",
                "P50 forecast",
                "50% interval (P25–P75)",
                "90% interval (P05–P95)",
                "backtest P50"
            ]
        );
        // One path per line, however long.
        assert_eq!(svg.matches("class=\"history\"").count(), 1);
        // The 90% band is drawn beneath the 50% band, which darkens it.
        assert_eq!(svg.matches("class=\"band\"").count(), 2);
        assert!(
            svg.find("data-quantiles=\"0.05 0.95\"") < svg.find("data-quantiles=\"0.25 0.75\"")
        );
    }

    #[test]
    fn the_bands_are_the_quantiles_given_and_the_legend_names_them() {
        let mut data = weekly();
        data.quantiles = quantiles(&[(0.1, 90.0), (0.5, 150.0), (0.9, 210.0)]);
        let svg = svg(&data);
        assert_well_formed(&svg);
        assert_eq!(
            legend(&svg),
            ["history", "P50 forecast", "80% interval (P10–P90)"]
        );
        assert_eq!(svg.matches("class=\"band\"").count(), 1);
        for absent in ["P05", "P25", "P75", "P95", "50% interval", "90% interval"] {
            assert!(!svg.contains(absent), "{absent} in {svg}");
        }
        // The order the predictor lists them in does not matter.
        let mut shuffled = weekly();
        shuffled.quantiles = quantiles(&[(0.9, 210.0), (0.1, 90.0), (0.5, 150.0)]);
        assert_eq!(super::svg(&shuffled), svg);
    }

    #[test]
    fn without_a_median_the_mean_is_drawn_and_named() {
        let mut data = weekly();
        data.quantiles = quantiles(&[(0.9, 210.0), (0.1, 90.0)]);
        data.mean = Vec::leak(vec![140.0; 12]);
        let windows = vec![BacktestWindow {
            dates: (48..60).map(|i| day(7 * i)).collect(),
            center: vec![140.0; 12],
        }];
        data.backtests = &windows;
        let svg = svg(&data);
        assert_well_formed(&svg);
        assert_eq!(
            legend(&svg),
            [
                "history",
                "mean forecast",
                "80% interval (P10–P90)",
                "backtest mean"
            ]
        );
        assert!(!svg.contains("P50"));
        assert!(svg.contains("class=\"center\""));
    }

    #[test]
    fn uneven_quantiles_pair_from_the_outside_in_and_a_lone_one_is_a_line() {
        let mut data = weekly();
        data.quantiles = quantiles(&[(0.05, 80.0), (0.1, 90.0), (0.5, 150.0), (0.8, 190.0)]);
        let svg = svg(&data);
        assert_well_formed(&svg);
        assert_eq!(
            legend(&svg),
            ["history", "P50 forecast", "75% interval (P05–P80)", "P10"]
        );
        assert!(svg.contains("data-quantiles=\"0.05 0.8\""));
        assert_eq!(svg.matches("class=\"quantile\"").count(), 1);
        // Only the median: a line and no band.
        let mut median = weekly();
        median.quantiles = quantiles(&[(0.5, 150.0)]);
        assert_eq!(legend(&super::svg(&median)), ["history", "P50 forecast"]);
    }

    #[test]
    fn many_quantiles_shorten_and_wrap_the_legend() {
        let mut data = weekly();
        let levels: Vec<(f64, f64)> = (1..20)
            .map(|k| (k as f64 * 0.05, 60.0 + k as f64 * 10.0))
            .collect();
        data.quantiles = quantiles(&levels);
        let svg = svg(&data);
        assert_well_formed(&svg);
        let labels = legend(&svg);
        assert_eq!(labels.len(), 2 + 9, "{labels:?}");
        assert!(labels.contains(&"P05–P95") && labels.contains(&"P45–P55"));
        assert!(!svg.contains("interval"));
        assert_eq!(svg.matches("class=\"band\"").count(), 9);
        // A second legend row, and the plot area below it.
        let chart = Chart::new(&data);
        assert!(chart.legend.iter().any(|e| e.y > 48.0));
        assert!(
            chart
                .legend
                .iter()
                .all(|e| e.x + legend_width(&e.label) - 20.0 <= WIDTH - 16.0)
        );
        assert!(chart.top > chart.legend.last().unwrap().y);
    }

    #[test]
    fn quantiles_are_named_like_percentiles() {
        assert_eq!(quantile_label(0.1), "P10");
        assert_eq!(quantile_label(0.05), "P05");
        assert_eq!(quantile_label(0.5), "P50");
        assert_eq!(quantile_label(0.025), "P2.5");
        assert_eq!(quantile_label(0.975), "P97.5");
        assert_eq!(quantile_label(0.07), "P07");
        assert_eq!(percent((0.9 - 0.1) * 100.0), "80");
        assert_eq!(percent((0.975 - 0.025) * 100.0), "95");
    }

    #[test]
    fn absent_layers_are_not_drawn_nor_in_the_legend() {
        let svg = svg(&weekly());
        assert_well_formed(&svg);
        for class in ["band", "quantile", "backtest-span", "backtest-center"] {
            assert!(
                !svg.contains(&format!("class=\"{class}\"")),
                "{class} drawn"
            );
        }
        assert!(!svg.contains("interval") && !svg.contains("backtest"));
    }

    #[test]
    fn titles_and_units_are_escaped() {
        let mut data = weekly();
        data.title = "item <&> \"x\" 'y'\u{1}";
        data.unit = Some("$ & <cases>");
        let svg = svg(&data);
        assert_well_formed(&svg);
        assert!(svg.contains("item &lt;&amp;&gt; &quot;x&quot; &apos;y&apos;<"));
        assert!(svg.contains("$ &amp; &lt;cases&gt;"));
        assert!(!svg.contains("<&>"));
    }

    #[test]
    fn degenerate_inputs_draw_no_nan_or_infinity() {
        let empty = sample(&[], &[], &[]);
        let constant = sample(
            &(0..20).map(|i| (day(i), 7.0)).collect::<Vec<_>>(),
            &[day(20)],
            &[7.0],
        );
        let zeros = sample(
            &(0..20).map(|i| (day(i), 0.0)).collect::<Vec<_>>(),
            &[],
            &[],
        );
        let missing = sample(
            &(0..20).map(|i| (day(i), f64::NAN)).collect::<Vec<_>>(),
            &[day(20)],
            &[f64::NAN],
        );
        let single = sample(&[(day(0), 3.0)], &[], &[]);
        let same_date = sample(&[(day(0), 3.0), (day(0), 4.0)], &[day(0)], &[5.0]);
        let huge = sample(
            &[
                (day(0), f64::MAX),
                (day(1), -f64::MAX),
                (day(2), f64::INFINITY),
                (day(3), f64::NEG_INFINITY),
            ],
            &[day(4), day(5)],
            &[1e308, -1e308],
        );
        let tiny = sample(&[(day(0), 1e-300), (day(1), 3e-300)], &[], &[]);
        let close = sample(&[(day(0), 1e12), (day(1), 1e12 + 1e-4)], &[], &[]);
        let mut odd_bands = sample(&[], &[day(0), day(1), day(2)], &[1.0, 2.0]);
        odd_bands.quantiles = Vec::leak(vec![
            Quantile {
                level: 0.5,
                values: vec![1.0, 2.0],
            },
            Quantile {
                level: 0.25,
                values: vec![3.0, f64::NAN, 1.0, 0.0],
            },
            Quantile {
                level: 0.75,
                values: vec![1.0, 2.0],
            },
            Quantile {
                level: 0.1,
                values: vec![],
            },
            Quantile {
                level: 0.9,
                values: vec![f64::NAN],
            },
            Quantile {
                level: f64::NAN,
                values: vec![1.0],
            },
            Quantile {
                level: 0.75,
                values: vec![5.0],
            },
        ]);
        let windows = vec![
            BacktestWindow {
                dates: vec![],
                center: vec![],
            },
            BacktestWindow {
                dates: vec![day(1)],
                center: vec![f64::NAN],
            },
        ];
        let mut empty_backtests = sample(&[], &[], &[]);
        empty_backtests.backtests = &windows;
        let far = sample(
            &[
                (
                    NaiveDate::from_ymd_opt(1, 1, 1)
                        .unwrap()
                        .and_hms_opt(0, 0, 0)
                        .unwrap(),
                    1.0,
                ),
                (day(0), 2.0),
            ],
            &[NaiveDate::from_ymd_opt(9999, 12, 31)
                .unwrap()
                .and_hms_opt(23, 0, 0)
                .unwrap()],
            &[3.0],
        );
        for (name, data) in [
            ("empty", empty),
            ("constant", constant),
            ("zeros", zeros),
            ("missing", missing),
            ("single", single),
            ("same_date", same_date),
            ("huge", huge),
            ("tiny", tiny),
            ("close", close),
            ("odd_bands", odd_bands),
            ("empty_backtests", empty_backtests),
            ("far", far),
        ] {
            let svg = svg(&data);
            assert_well_formed(&svg);
            assert!(
                !svg.contains("NaN") && !svg.to_lowercase().contains("inf"),
                "{name}: {svg}"
            );
            assert!(
                svg.matches("<text").count() >= 3,
                "{name}: no y-axis labels"
            );
        }
    }

    #[test]
    fn gaps_lift_the_pen_and_lone_points_are_dots() {
        let mut history: Vec<_> = (0..10).map(|i| (day(i), i as f64)).collect();
        history[3].1 = f64::NAN;
        history[5].1 = f64::NAN;
        let svg = svg(&sample(&history, &[], &[]));
        let path = svg
            .split("class=\"history\" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(path.matches('M').count(), 3, "{path}");
        assert_eq!(path.matches("h0").count(), 1, "{path}");
    }

    fn y_domain_of(data: &PlotData) -> (f64, f64) {
        y_domain(data, &Layers::of(data))
    }

    #[test]
    fn y_ticks_are_1_2_5_multiples_covering_the_data() {
        for (lo, hi) in [
            (0.0, 1.0),
            (0.0, 95_432.0),
            (-3.2, 7.7),
            (1e-7, 3e-7),
            (1e9, 1e9 + 5.0),
            (0.1, 0.3),
            (-1e300, 1e300),
            (12.0, 13.0),
            (-250.0, -1.0),
        ] {
            let (step, ticks) = nice_ticks(lo, hi);
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!(
                [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-9),
                "{lo}..{hi}: step {step}"
            );
            assert!((3..=12).contains(&ticks.len()), "{lo}..{hi}: {ticks:?}");
            let tolerance = step * 1e-6;
            assert!(
                ticks[0] <= lo + tolerance && *ticks.last().unwrap() >= hi - tolerance,
                "{lo}..{hi}: {ticks:?}"
            );
            for t in &ticks {
                assert!(
                    ((t / step) - (t / step).round()).abs() < 1e-6,
                    "{t} is not a multiple of {step}"
                );
            }
        }
        // Demand is drawn from zero; a distant level is not.
        assert_eq!(
            y_domain_of(&sample(&[(day(0), 40.0), (day(1), 90.0)], &[], &[])),
            (0.0, 90.0)
        );
        assert_eq!(
            y_domain_of(&sample(&[(day(0), 280.0), (day(1), 300.0)], &[], &[])),
            (280.0, 300.0)
        );
    }

    #[test]
    fn tick_labels_read_well() {
        assert_eq!(format_number(0.0, 20_000.0, 100_000.0), "0");
        assert_eq!(format_number(80_000.0, 20_000.0, 100_000.0), "80,000");
        assert_eq!(format_number(-1_500.0, 500.0, 2_000.0), "−1,500");
        assert_eq!(format_number(0.25, 0.05, 1.0), "0.25");
        assert_eq!(format_number(2_500_000.0, 500_000.0, 5e6), "2.5M");
        assert_eq!(format_number(3e9, 1e9, 5e9), "3G");
        assert_eq!(format_number(-0.0, 1.0, 5.0), "0");
        assert_eq!(format_number(1e300, 5e299, 1e300), "1.0e300");
    }

    #[test]
    fn date_ticks_increase_without_overlap_at_a_fitting_granularity() {
        let t0 = day(0).and_utc().timestamp() as f64;
        let hour = 3600.0;
        let width = 860.0;
        let hours = |l: &str| l.len() == 5 && l.as_bytes()[2] == b':';
        let days = |l: &str| {
            l.len() >= 5
                && l[..3].chars().all(char::is_alphabetic)
                && l[4..].chars().all(|c| c.is_ascii_digit())
        };
        let months = |l: &str| l.len() == 3 && l.chars().all(char::is_alphabetic);
        let years = |l: &str| l.chars().all(|c| c.is_ascii_digit());
        let day_secs = 24.0 * hour;
        type Granularity<'c> = &'c dyn Fn(&str) -> bool;
        let cases: [(f64, Granularity); 7] = [
            (6.0 * hour, &hours),
            (2.0 * day_secs, &hours),
            (20.0 * day_secs, &days),
            (90.0 * day_secs, &days),
            (2.0 * 365.0 * day_secs, &months),
            (40.0 * 365.0 * day_secs, &years),
            (3000.0 * 365.0 * day_secs, &years),
        ];
        for (span, expect) in cases {
            let ticks = date_ticks(t0, t0 + span, width);
            assert!(ticks.len() >= 3, "{span}: {} ticks", ticks.len());
            assert!(
                ticks.iter().all(|t| expect(&t.label)),
                "{span}: {:?}",
                ticks.iter().map(|t| &t.label).collect::<Vec<_>>()
            );
            assert!(
                ticks.first().unwrap().context.is_some() || matches!(ticks[0].label.len(), 4 | 5)
            );
            let px = |t: &DateTick| (secs(&t.at) - t0) / span * width;
            let chars = |t: &DateTick| {
                t.label
                    .chars()
                    .count()
                    .max(t.context.as_ref().map_or(0, |c| c.chars().count()))
            };
            assert!(secs(&ticks[0].at) >= t0 && secs(&ticks[ticks.len() - 1].at) <= t0 + span);
            for w in ticks.windows(2) {
                assert!(w[0].at < w[1].at, "not increasing");
                let room = (chars(&w[0]) + chars(&w[1])) as f64 / 2.0 * CHAR_PX;
                assert!(
                    px(&w[1]) - px(&w[0]) >= room,
                    "{span}: {} and {} overlap",
                    w[0].label,
                    w[1].label
                );
            }
        }
    }

    #[test]
    fn write_is_svg_only_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = weekly();
        let err = write(&dir.path().join("chart.png"), &data)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("name the file *.svg") && err.contains("--format png"),
            "{err}"
        );
        assert!(write(&dir.path().join("chart"), &data).is_err());
        let path = dir.path().join("chart.SVG");
        write(&path, &data).unwrap();
        write(&path, &data).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), svg(&data));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
