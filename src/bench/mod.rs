//! Benchmarks: each prints its figures next to a baseline measured in the
//! same run. Run them on an optimised build (`cargo run --release -- bench ...`).

pub mod batch;
pub mod engine;
pub mod forecast;
pub mod forecast_oj;
pub mod forecast_scale;
pub mod import;
pub mod recipes;
pub mod scale;
pub mod serve;
pub mod statsforecast;

pub use batch::{BatchBenchArgs, batch};
pub use engine::{EngineBenchArgs, engine};
pub use forecast::{ForecastBenchArgs, forecast_bench};
pub use forecast_oj::{ForecastOjBenchArgs, forecast_oj_bench};
pub use forecast_scale::{ForecastScaleBenchArgs, forecast_scale};
pub use import::{ImportBenchArgs, import};
pub use recipes::{RecipesBenchArgs, recipes};
pub use scale::{ScaleBenchArgs, scale};
pub use serve::{ServeBenchArgs, serve};
