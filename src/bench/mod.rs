//! Benchmarks: each prints its figures next to a baseline measured in the
//! same run. They are left out of the production binary; run them on an
//! optimised build: `cargo run --release --features bench -- bench ...`.

pub mod batch;
pub mod console;
pub mod engine;
pub mod forecast;
pub mod forecast_oj;
pub mod forecast_scale;
pub mod import;
pub mod recipes;
pub mod scale;
pub mod serve;
pub mod statsforecast;
pub mod validate;

pub use batch::{BatchBenchArgs, batch};
pub use console::{ConsoleBenchArgs, console};
pub use engine::{EngineBenchArgs, engine};
pub use forecast::{ForecastBenchArgs, forecast_bench};
pub use forecast_oj::{ForecastOjBenchArgs, forecast_oj_bench};
pub use forecast_scale::{ForecastScaleBenchArgs, forecast_scale};
pub use import::{ImportBenchArgs, import};
pub use recipes::{RecipesBenchArgs, recipes};
pub use scale::{ScaleBenchArgs, scale};
pub use serve::{ServeBenchArgs, serve};
pub use validate::{ValidateBenchArgs, validate_bench};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import Online Retail (CSV interactions and the raw Parquet) into
    /// validated dataset versions; compare with a plain polars read + write.
    Import(ImportBenchArgs),
    /// Offline accuracy and training time of every recipe on MovieLens 100K
    /// and Online Retail, beside implicit ALS and numpy EASE on the same split.
    Recipes(RecipesBenchArgs),
    /// Training time and peak memory on a synthetic 10M-interaction,
    /// 1M-user, 100k-item catalog.
    Scale(ScaleBenchArgs),
    /// Top-25 for 1M users of a synthetic 50k-item model as JSON lines,
    /// against the bound of the plain matrix products.
    Batch(BatchBenchArgs),
    /// GetRecommendations over HTTP at 10k and 50k items, with and without
    /// a filter: throughput and p50/p99 latency at a fixed rate.
    Serve(ServeBenchArgs),
    /// The console's pages and the operations API on a history of 10,000
    /// runs and 100 solution versions, against a health check.
    Console(ConsoleBenchArgs),
    /// Scheduling and recording overhead per step: a chain of 50 and a
    /// fan-out of 200 no-op steps, on SQLite (and PostgreSQL with --postgres).
    Engine(EngineBenchArgs),
    /// Forecast accuracy (sMAPE, MASE) of every forecasting algorithm on the
    /// M3 series, beside Theta's published figures.
    Forecast(ForecastBenchArgs),
    /// The global forecasting model on the orange juice panel, with and
    /// without its related series (price, deal, feat), beside per-series
    /// seasonal naive and ETS: WAPE and wQL over 3 rolling 8-week windows.
    ForecastOj(ForecastOjBenchArgs),
    /// A predictor on 100,000 synthetic weekly series: panel build,
    /// backtests and forecasts on all cores, time and peak memory.
    ForecastScale(ForecastScaleBenchArgs),
    /// `recflow validate` on chains of 500, 1,000 and 2,000 templated steps:
    /// ms per step and the ratio 2,000 / 500 (linear: 4).
    Validate(ValidateBenchArgs),
}

/// Runs one benchmark.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Import(args) => import(args).await,
        BenchCommand::Batch(args) => batch(args).await,
        BenchCommand::Serve(args) => serve(args).await,
        BenchCommand::Engine(args) => engine(args).await,
        BenchCommand::Console(args) => console(args).await,
        BenchCommand::Forecast(args) => {
            tokio::task::spawn_blocking(move || forecast_bench(args)).await?
        }
        BenchCommand::ForecastScale(args) => {
            tokio::task::spawn_blocking(move || forecast_scale(args)).await?
        }
        BenchCommand::ForecastOj(args) => {
            tokio::task::spawn_blocking(move || forecast_oj_bench(args)).await?
        }
        BenchCommand::Scale(args) => tokio::task::spawn_blocking(move || scale(args)).await?,
        BenchCommand::Recipes(args) => tokio::task::spawn_blocking(move || recipes(args)).await?,
        BenchCommand::Validate(args) => {
            tokio::task::spawn_blocking(move || validate_bench(args)).await?
        }
    }
}
