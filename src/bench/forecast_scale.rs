//! `recflow bench forecast-scale`: a predictor's work on a catalog-sized
//! panel — by default 100,000 weekly series of two years (10.4M rows) with
//! trend, a yearly season, noise and intermittent items — through the same
//! code as the pipeline steps: the panel is built from a frame, every
//! candidate is backtested on all cores, and every item is forecast.
//! Baselines measured in the same run: seasonal naive's backtest (the cost
//! of the loop itself) for time, and the resident memory once the input
//! frame is loaded for memory.

use std::time::Instant;

use clap::Args;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::forecast::Algorithm;
use crate::forecast::frequency::Frequency;
use crate::forecast::panel::{Aggregation, Fill, Panel, SeriesSettings};
use crate::forecast::predictor::{self, ItemForecast, Method};
use crate::memory::peak_rss_bytes;
use crate::outln;
use crate::progress::Progress;

#[derive(Debug, Args)]
pub struct ForecastScaleBenchArgs {
    #[arg(long, default_value_t = 100_000)]
    pub series: usize,
    /// Weeks of history per series.
    #[arg(long, default_value_t = 104)]
    pub periods: usize,
    #[arg(long, default_value_t = 8)]
    pub horizon: usize,
    /// Candidates to backtest (one window each).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "seasonal_naive,ets,theta,croston"
    )]
    pub algorithms: Vec<String>,
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn mb(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| format!("{:.0} MB", b as f64 / 1e6))
}

/// A synthetic weekly demand panel as the import step would store it.
fn frame(series: usize, periods: usize) -> PolarsResult<DataFrame> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let rows = series * periods;
    let mut ids = Vec::with_capacity(rows);
    let mut times = Vec::with_capacity(rows);
    let mut values = Vec::with_capacity(rows);
    // Monday 2 January 2023.
    let start = 1_672_617_600i64;
    for s in 0..series {
        let id = format!("item-{s}");
        let level = 5.0 + 200.0 * rng.random::<f64>().powi(3);
        let trend = rng.random_range(-0.002..0.004);
        let season = rng.random_range(0.0..0.5);
        let intermittent = s % 5 == 0;
        for t in 0..periods {
            let base = level
                * (1.0 + trend * t as f64)
                * (1.0 + season * (std::f64::consts::TAU * t as f64 / 52.0).sin());
            let noise = 1.0 + 0.25 * (rng.random::<f64>() - 0.5);
            let v = if intermittent && rng.random::<f64>() < 0.7 {
                0.0
            } else {
                (base * noise).max(0.0).round()
            };
            ids.push(id.clone());
            times.push(start + t as i64 * 7 * 86_400);
            values.push(v);
        }
    }
    DataFrame::new(
        rows,
        vec![
            Column::new("item_id".into(), ids),
            Column::new("timestamp".into(), times),
            Column::new("target_value".into(), values),
        ],
    )
}

pub fn forecast_scale(args: ForecastScaleBenchArgs) -> anyhow::Result<()> {
    let methods: Vec<Method> = args
        .algorithms
        .iter()
        .map(|a| match Method::parse(a) {
            Some(Method::Local(x)) => Ok(Method::Local(x)),
            _ => anyhow::bail!("{a:?} is not a per-series algorithm"),
        })
        .collect::<anyhow::Result<_>>()?;
    let cores = rayon::current_num_threads();
    outln!(
        "{} weekly series × {} periods ({} rows), horizon {}, {cores} threads",
        args.series,
        args.periods,
        args.series * args.periods,
        args.horizon
    );
    let started = Instant::now();
    let df = frame(args.series, args.periods)?;
    let loaded_rss = rss_bytes();
    outln!(
        "input frame: {:.1}s, {} resident (baseline)",
        started.elapsed().as_secs_f64(),
        mb(loaded_rss)
    );

    let settings = SeriesSettings {
        frequency: Frequency::WEEKLY,
        target_fill: Fill::Zero,
        target_aggregation: Aggregation::Sum,
        related_fill: Fill::Previous,
        related_future_fill: None,
        related_aggregation: Aggregation::Mean,
    };
    let t = Instant::now();
    let panel = Panel::build(&df, None, &settings, args.horizon)?;
    drop(df);
    outln!(
        "panel: {:.1}s, {} items × {} periods",
        t.elapsed().as_secs_f64(),
        panel.items.len(),
        panel.periods
    );

    let quantiles = predictor::DEFAULT_QUANTILES;
    let no_global = |_: &Panel,
                     _: usize,
                     _: &(dyn Fn(f64) + Sync)|
     -> anyhow::Result<Vec<Option<ItemForecast>>> { Ok(Vec::new()) };
    outln!(
        "{:<16} {:>10} {:>16} {:>10} {:>10}",
        "backtest",
        "seconds",
        "ms/1000 series",
        "× naive",
        "avg wQL"
    );
    let mut naive_seconds = None;
    for method in &methods {
        let progress = Progress::count("backtest", "series", panel.items.len() as u64);
        let t = Instant::now();
        let b = predictor::backtest(
            &panel,
            std::slice::from_ref(method),
            args.horizon,
            1,
            &quantiles,
            &no_global,
            &|n| progress.inc(n),
        )?;
        progress.finish();
        let secs = t.elapsed().as_secs_f64();
        if *method == Method::Local(Algorithm::SeasonalNaive) {
            naive_seconds = Some(secs);
        }
        let wql = b.overall(0).metrics(&quantiles).average_wql;
        outln!(
            "{:<16} {:>10.2} {:>16.1} {:>10} {:>10}",
            method.name(),
            secs,
            secs * 1000.0 / panel.items.len() as f64 * 1000.0,
            naive_seconds.map_or("-".into(), |n| format!("{:.1}", secs / n.max(1e-9))),
            wql.map_or("-".into(), |w| format!("{w:.4}"))
        );
    }

    // Forecast every item with the last method, as the forecast step does.
    let method = match methods.last() {
        Some(Method::Local(a)) => *a,
        _ => Algorithm::Ets,
    };
    let t = Instant::now();
    let season = panel.frequency.season_length();
    let non_negative = panel.non_negative();
    let rows: usize = (0..panel.items.len())
        .into_par_iter()
        .map(|i| {
            let h = panel.history(i, panel.periods).expect("history");
            predictor::local_forecast(method, h, season, args.horizon, &quantiles, non_negative)
                .mean
                .len()
        })
        .sum();
    outln!(
        "forecast ({}): {:.2}s for {rows} rows",
        method.name(),
        t.elapsed().as_secs_f64()
    );
    let peak = peak_rss_bytes();
    outln!(
        "memory: peak {} vs {} with the input frame loaded ({}×)",
        mb(peak),
        mb(loaded_rss),
        match (peak, loaded_rss) {
            (Some(p), Some(l)) if l > 0 => format!("{:.2}", p as f64 / l as f64),
            _ => "-".into(),
        }
    );
    Ok(())
}
