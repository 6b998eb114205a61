//! `recflow bench forecast`: every algorithm, and `auto`, on the 3,003 M3
//! series with the official horizons: sMAPE and MASE per frequency and
//! overall, beside the published M3 figures for Theta, and the time per
//! 1,000 series. With `--statsforecast`, statsforecast's AutoETS and
//! AutoARIMA on the same series in the same run (`statsforecast.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use rayon::prelude::*;

use crate::bench::statsforecast;
use crate::forecast::{Algorithm, forecast, metrics};
use crate::{out, outln};

#[derive(Debug, Args)]
pub struct ForecastBenchArgs {
    /// The M3 folder (`m3_long.csv`, `m3_meta.csv`).
    #[arg(long, default_value = "../shared/datasets/m3")]
    pub m3: PathBuf,
    /// Also run statsforecast's AutoETS and AutoARIMA on the same series in
    /// the same run, with this Python (default: the `.bench-venv` that
    /// `scripts/statsforecast-env` makes; skipped with a note if it is absent).
    #[arg(long, value_name = "PYTHON", num_args = 0..=1)]
    pub statsforecast: Option<Option<PathBuf>>,
}

struct Series {
    period: String,
    m: usize,
    train: Vec<f64>,
    test: Vec<f64>,
}

/// Theta's published M3 sMAPE (Makridakis & Hibon, 2000).
const THETA_PUBLISHED: [(&str, f64); 5] = [
    ("YEARLY", 16.90),
    ("QUARTERLY", 8.96),
    ("MONTHLY", 13.85),
    ("OTHER", 4.41),
    ("ALL", 13.01),
];

fn load(dir: &std::path::Path) -> anyhow::Result<Vec<Series>> {
    let mut periods = BTreeMap::new();
    let meta = dir.join("m3_meta.csv");
    let mut r = csv::Reader::from_path(&meta).with_context(|| meta.display().to_string())?;
    for row in r.records() {
        let row = row?;
        periods.insert(row[0].to_string(), row[1].to_string());
    }
    let long = dir.join("m3_long.csv");
    let mut r = csv::Reader::from_path(&long).with_context(|| long.display().to_string())?;
    let mut by_id: BTreeMap<String, Series> = BTreeMap::new();
    for row in r.records() {
        let row = row?;
        let period = periods.get(&row[0]).cloned().unwrap_or_default();
        let s = by_id.entry(row[0].to_string()).or_insert_with(|| Series {
            m: match period.as_str() {
                "QUARTERLY" => 4,
                "MONTHLY" => 12,
                _ => 1,
            },
            period,
            train: Vec::new(),
            test: Vec::new(),
        });
        let v: f64 = row[2]
            .parse()
            .with_context(|| format!("{}: value {:?}", long.display(), &row[2]))?;
        if &row[3] == "test" {
            s.test.push(v)
        } else {
            s.train.push(v)
        }
    }
    Ok(by_id.into_values().collect())
}

/// Mean sMAPE and MASE of `algorithm` on `series`, forecasting `test` from
/// `train` (or, for a backtest, the last `h` of train from the rest).
fn score(series: &[&Series], algorithm: Algorithm, backtest: bool) -> (f64, f64) {
    let scores: Vec<(f64, f64)> = series
        .par_iter()
        .filter_map(|s| {
            let h = s.test.len();
            let (history, actual) = if backtest {
                if s.train.len() < h + 3 {
                    return None;
                }
                s.train.split_at(s.train.len() - h)
            } else {
                (&s.train[..], &s.test[..])
            };
            let f = forecast(algorithm, history, s.m, h);
            Some((
                metrics::smape(actual, &f.mean),
                metrics::mase(history, actual, &f.mean, s.m),
            ))
        })
        .collect();
    let n = scores.len().max(1) as f64;
    let finite_mase: Vec<f64> = scores
        .iter()
        .map(|x| x.1)
        .filter(|v| v.is_finite())
        .collect();
    (
        scores.iter().map(|x| x.0).sum::<f64>() / n,
        finite_mase.iter().sum::<f64>() / finite_mase.len().max(1) as f64,
    )
}

pub fn forecast_bench(args: ForecastBenchArgs) -> anyhow::Result<()> {
    let all = load(&args.m3)?;
    let python = match args.statsforecast {
        None => None,
        Some(Some(python)) => Some(python),
        Some(None) => {
            let venv = statsforecast::default_python();
            if venv.is_none() {
                outln!("statsforecast skipped: no .bench-venv (run scripts/statsforecast-env).");
            }
            venv
        }
    };
    if let Some(python) = &python {
        statsforecast::check(python)?;
    }
    let mut recflow_all = Vec::new();
    let mut groups: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
    for s in &all {
        groups.entry(s.period.as_str()).or_default().push(s);
    }
    groups.insert("ALL", all.iter().collect());
    outln!(
        "M3: {} series; sMAPE (MASE) on the official horizons.",
        all.len()
    );
    let order = ["YEARLY", "QUARTERLY", "MONTHLY", "OTHER", "ALL"];
    out!("{:<16}", "algorithm");
    for g in order {
        out!(
            " {:>16}",
            format!("{g} ({})", groups.get(g).map_or(0, Vec::len))
        );
    }
    outln!(" {:>14}", "ms/1000 series");
    for algorithm in Algorithm::ALL {
        let started = Instant::now();
        let cells: Vec<(f64, f64)> = order
            .iter()
            .map(|g| score(&groups[g], algorithm, false))
            .collect();
        // Each series is scored twice (its group and ALL); halve the time.
        let ms = started.elapsed().as_secs_f64() * 1000.0 / 2.0 / all.len() as f64 * 1000.0;
        out!("{:<16}", algorithm.name());
        recflow_all.push(statsforecast::RecflowAll {
            name: algorithm.name(),
            smape: cells[order.len() - 1].0,
            ms_per_1000: ms,
        });
        for (s, m) in cells {
            out!(" {:>16}", format!("{s:.2} ({m:.2})"));
        }
        outln!(" {ms:>14.0}");
    }
    // auto: per frequency, the algorithm with the best backtest sMAPE on
    // the last horizon of the training data.
    out!("{:<16}", "auto");
    let mut chosen = Vec::new();
    let mut weighted = 0.0;
    let mut weighted_mase = 0.0;
    for g in &order[..4] {
        // Each candidate's backtest once: ARIMA's are not cheap.
        let best = Algorithm::ALL
            .into_iter()
            .map(|a| (a, score(&groups[g], a, true).0))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(a, _)| a)
            .expect("algorithms");
        let (s, m) = score(&groups[g], best, false);
        weighted += s * groups[g].len() as f64;
        weighted_mase += m * groups[g].len() as f64;
        chosen.push(format!("{g}: {}", best.name()));
        out!(" {:>16}", format!("{s:.2} ({m:.2})"));
    }
    let n = all.len() as f64;
    outln!(
        " {:>16}",
        format!("{:.2} ({:.2})", weighted / n, weighted_mase / n)
    );
    outln!("  auto chose {}", chosen.join(", "));
    out!("{:<16}", "Theta, published");
    for (_, v) in THETA_PUBLISHED {
        out!(" {:>16}", format!("{v:.2}"));
    }
    outln!();
    if let Some(python) = python {
        let scores = statsforecast::run(&args.m3, &python)?;
        statsforecast::print_rows(&scores, &order);
        statsforecast::print_comparison(&scores, &recflow_all);
        outln!("  (speeds are approximate: both ran on 2 cores shared with other work)");
    }
    Ok(())
}
