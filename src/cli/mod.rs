//! The command line, a face over the service layer (`crate::ops`): each
//! command parses its arguments, makes one service call and prints what it
//! returns. Output for people goes to stdout, logs to stderr.

mod campaigns;
mod catalog;
mod forecasts;
mod print;
mod runs;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::campaign::NumResults;
use crate::config::{Env, Settings};
use crate::store::RunStatus;

#[derive(Debug, Parser)]
#[command(
    name = "recflow",
    version,
    about = "Recommender pipelines: import, train, deploy, serve and export, in one binary."
)]
pub struct Cli {
    /// Folder for state and the local warehouse (default ./.recflow; env RECFLOW_HOME).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline file now, in the foreground, and print each step.
    Run {
        /// The pipeline file.
        file: PathBuf,
        /// A parameter value, `NAME=VALUE` (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// The daemon: load every pipeline in DIR, fire their schedules, run
    /// queued runs; reloads changed files. Stops cleanly on SIGTERM.
    Schedule(ScheduleArgs),
    /// Queue a run of a pipeline for the daemon; prints the run id.
    Trigger(TriggerArgs),
    /// Check pipeline files and report every problem, including local
    /// source files that do not exist.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also check that S3 objects and prefixes the steps read exist and
        /// answer with the configured credentials (the AWS environment).
        #[arg(long)]
        check_sources: bool,
    },
    /// Past runs and their steps.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Dataset versions.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Solution versions and their metrics.
    #[command(subcommand)]
    Solutions(SolutionsCommand),
    /// Campaigns and what they serve.
    #[command(subcommand)]
    Campaigns(CampaignsCommand),
    /// Predictor versions, their backtest accuracy, and forecast plots.
    #[command(subcommand)]
    Forecast(ForecastCommand),
    /// Remove old dataset, solution and predictor versions and old exports
    /// (never what a campaign serves or the latest active version).
    Prune(PruneArgs),
    /// Ask a campaign for recommendations, as the API would answer.
    Recommend(RecommendArgs),
    /// The users most likely to interact with an item, or with the items an
    /// attribute expression matches (item-affinity and item-attribute-affinity).
    Segment(SegmentArgs),
    /// Serve every campaign over HTTP with the managed service's runtime and
    /// events APIs; follows campaign updates (hot swap).
    Serve(ServeArgs),
    /// Benchmarks; print throughput next to a baseline measured in the same run.
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// Benchmarks (in builds with `--features bench`).
    #[cfg(not(feature = "bench"))]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "RECFLOW_BIND", default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
    /// Answer /recommendations and /personalize-ranking without
    /// authentication (events always need it).
    #[arg(long, env = "RECFLOW_OPEN_RECOMMENDATIONS", value_parser = clap::builder::BoolishValueParser::new())]
    pub open_recommendations: bool,
    /// Answer /metrics without authentication (it names campaigns, solution
    /// versions and dataset groups; by default it needs a token, a read-only
    /// one is enough).
    #[arg(long, env = "RECFLOW_OPEN_METRICS", value_parser = clap::builder::BoolishValueParser::new())]
    pub open_metrics: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "RECFLOW_MAX_BODY_BYTES", default_value_t = crate::http::ServeConfig::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// How often to check the state store for campaign updates (e.g. `1s`, `500ms`).
    #[arg(long, env = "RECFLOW_RELOAD_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub reload_interval: std::time::Duration,
    /// Step attempts this server runs at once, of the runs its console and
    /// API queue (0: leave them to `recflow schedule`).
    #[arg(long, env = "RECFLOW_SERVE_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Log each request on stderr (method, path, campaign, status,
    /// latency_ms): every one up to --access-log-per-second, then one in
    /// --access-log-one-in, with the count skipped.
    #[arg(long, env = "RECFLOW_ACCESS_LOG", value_parser = clap::builder::BoolishValueParser::new())]
    pub access_log: bool,
    #[arg(
        long,
        env = "RECFLOW_ACCESS_LOG_PER_SECOND",
        default_value_t = 100,
        value_name = "N"
    )]
    pub access_log_per_second: u64,
    #[arg(
        long,
        env = "RECFLOW_ACCESS_LOG_ONE_IN",
        default_value_t = 100,
        value_name = "K"
    )]
    pub access_log_one_in: u64,
    /// Recommendations and rankings computed at once (default: the
    /// machine's cores). Requests beyond them wait, up to --max-queue-ms.
    #[arg(long, env = "RECFLOW_SCORING_THREADS", value_name = "N")]
    pub scoring_threads: Option<usize>,
    /// Longest a recommendation request waits for a scoring thread before
    /// it is refused with ThrottlingException (HTTP 400), which the SDKs
    /// retry with backoff.
    #[arg(
        long,
        env = "RECFLOW_MAX_QUEUE_MS",
        default_value_t = 50,
        value_name = "MS"
    )]
    pub max_queue_ms: u64,
    /// Requests that may wait for a scoring thread at once; more are
    /// refused at once with ThrottlingException.
    #[arg(long, env = "RECFLOW_MAX_QUEUED", default_value_t = crate::http::gate::GateConfig::DEFAULT_MAX_QUEUED, value_name = "N")]
    pub max_queued: usize,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The folder of pipeline files.
    #[arg(default_value = "pipelines")]
    pub dir: PathBuf,
    /// Step attempts this process runs at once.
    #[arg(long, env = "RECFLOW_WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// An attempt whose worker has not heartbeated for this long is failed
    /// and retried (the worker crashed or was killed).
    #[arg(long, env = "RECFLOW_STALE_AFTER", default_value = "30s", value_parser = humantime::parse_duration)]
    pub stale_after: std::time::Duration,
    /// After SIGTERM, how long running attempts may take to finish.
    #[arg(long, env = "RECFLOW_GRACE_PERIOD", default_value = "60s", value_parser = humantime::parse_duration)]
    pub grace_period: std::time::Duration,
    /// How often pipeline files are checked for changes.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub reload_interval: std::time::Duration,
    /// Serve the operations API and the web console here (e.g. 127.0.0.1:8081).
    #[arg(long, env = "RECFLOW_BIND")]
    pub bind: Option<std::net::SocketAddr>,
    /// Largest request body the API accepts, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Answer /metrics without authentication (see `serve --open-metrics`).
    #[arg(long, env = "RECFLOW_OPEN_METRICS", value_parser = clap::builder::BoolishValueParser::new())]
    pub open_metrics: bool,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The pipeline's name (as registered by `recflow schedule`).
    pub pipeline: String,
    /// A parameter value, `NAME=VALUE` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// The date the run is for (2026-11-22 or RFC 3339); default now.
    #[arg(long)]
    pub logical_date: Option<String>,
    /// Follow the run and exit with its status (0 succeeded, 1 otherwise).
    #[arg(long)]
    pub wait: bool,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs, newest first.
    List {
        #[arg(long)]
        pipeline: Option<String>,
        /// Only runs in these states (comma-separated): queued, running,
        /// succeeded, failed, cancelled, skipped.
        #[arg(long, value_delimiter = ',')]
        status: Vec<RunStatus>,
        /// Runs created since: an age (`2d`, `12h`), a date or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// Runs created before: an age, a date or RFC 3339.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One run with each step's attempts: status, start, end, duration, error.
    Show {
        run_id: i64,
        /// Also print each attempt's log.
        #[arg(long)]
        logs: bool,
    },
    /// The captured log of a step's attempt (the latest by default).
    Logs {
        run_id: i64,
        /// The step id; `ID[N]` for instance N of a mapped step.
        step: String,
        #[arg(long)]
        attempt: Option<i64>,
        /// Keep printing the log as it grows until the attempt ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Stop a queued or running run: nothing new starts, running steps are stopped.
    Cancel { run_id: i64 },
    /// Run a failed or cancelled run's failed and not-run steps again, in
    /// the foreground; steps that succeeded are not redone.
    Retry { run_id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// Every dataset version, newest first.
    List,
    /// One dataset's version (the latest active one by default).
    Show {
        /// GROUP/DATASET, e.g. movielens/interactions.
        dataset: String,
        /// The version number (default: the latest active one).
        #[arg(long)]
        version: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SolutionsCommand {
    /// Every solution version with its key metrics.
    List,
    /// One solution version (the latest active one by default).
    Show {
        solution: String,
        /// The version number (default: the latest active one).
        #[arg(long)]
        version: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ForecastCommand {
    /// Every predictor version with its choice and accuracy.
    List,
    /// A predictor version's backtest accuracy: wQL at each quantile and
    /// averaged, WAPE, RMSE, MAPE, MASE, for what was chosen and for every
    /// candidate (the latest active version by default).
    Metrics {
        predictor: String,
        /// The version number (default: the latest active one).
        #[arg(long)]
        version: Option<i64>,
        /// Also list this many items with the worst average wQL.
        #[arg(long, default_value_t = 0)]
        worst: usize,
    },
    /// Write an SVG of one item: history, the forecast's median, the bands
    /// between the predictor's quantiles, and the backtest windows.
    Plot {
        /// The predictor; may be left out when there is only one.
        predictor: Option<String>,
        #[arg(long)]
        item: String,
        /// The version number (default: the latest active one).
        #[arg(long)]
        version: Option<i64>,
        /// A file (`*.svg` or `*.png`) or a folder to write into (default
        /// `<home>/plots/<predictor>/v<version>/<item>.svg`).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// svg or png (default: the `--out` file's extension, else svg).
        #[arg(long, value_name = "svg|png")]
        format: Option<crate::forecast::plot::PlotFormat>,
        /// Show only the last three horizons of history (default: all).
        #[arg(long, conflicts_with = "last")]
        zoom: bool,
        /// Show only the last N periods of history (default: all).
        #[arg(long, value_name = "N")]
        last: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CampaignsCommand {
    List,
    /// A campaign, its event tracker and its deployment history.
    Show {
        campaign: String,
    },
    /// Point a campaign at another version of its solution (a running
    /// server swaps it in).
    Update {
        campaign: String,
        /// The solution version to serve.
        #[arg(long)]
        version: i64,
    },
    /// Point a campaign back at the version it served before.
    Rollback {
        campaign: String,
    },
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    #[arg(long)]
    pub campaign: String,
    /// Recommendations for this user.
    #[arg(long, conflicts_with = "item", required_unless_present = "item")]
    pub user: Option<String>,
    /// Items related to this item.
    #[arg(long)]
    pub item: Option<String>,
    #[arg(long, default_value = "25")]
    pub num_results: NumResults,
    /// A filter of the campaign's dataset group, by name (the API's filterArn).
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
    /// A value of the filter's parameter, e.g. `GENRE=Comedy` or
    /// `GENRE='"Comedy","Drama"'` (repeatable; the API's filterValues).
    #[arg(long = "filter-values", value_name = "NAME=VALUE", value_parser = parse_param, requires = "filter")]
    pub filter_values: Vec<(String, String)>,
    /// Items dataset columns to print beside each item, e.g. `TITLE,GENRES`
    /// (the API's metadataColumns).
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',')]
    pub metadata: Vec<String>,
    /// Print the API's JSON response instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only what this registered pipeline owns (its dataset group's
    /// datasets, its solutions, predictors and exports), by its
    /// `retention:` unless --keep-last or --keep-days are given.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Keep the newest N versions of each dataset, solution and predictor
    /// and the newest N exports of each step.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep everything younger than D days.
    #[arg(long, value_name = "D")]
    pub keep_days: Option<u32>,
    /// List what would be removed and the bytes it would free; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// The solution (a segment recipe); its latest active version unless --version.
    #[arg(long)]
    pub solution: String,
    /// The version number (default: the latest active one).
    #[arg(long)]
    pub version: Option<i64>,
    /// Users for this item.
    #[arg(
        long,
        conflicts_with = "attributes",
        required_unless_present = "attributes"
    )]
    pub item: Option<String>,
    /// Users for the items matching, e.g. 'ITEMS.GENRES = "Comedy"'.
    #[arg(long)]
    pub attributes: Option<String>,
    #[arg(long, default_value_t = 25)]
    pub num_results: usize,
    /// Print the batch segment JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = Settings::resolve(cli.home.as_deref());
    match cli.command {
        Command::Validate {
            files,
            check_sources,
        } => Ok(runs::validate(&files, check_sources).await),
        Command::Run { file, params } => {
            let pipeline = crate::ops::pipelines::load(&file)?;
            runs::run_file(&Env::open(settings).await?, &pipeline, params).await
        }
        Command::Schedule(args) => schedule(Env::open(settings).await?, args).await,
        Command::Trigger(args) => runs::trigger(&Env::open(settings).await?, args).await,
        Command::Runs(c) => runs::runs(&Env::open(settings).await?, c).await,
        Command::Datasets(c) => catalog::datasets(&Env::open(settings).await?, c).await,
        Command::Solutions(c) => catalog::solutions(&Env::open(settings).await?, c).await,
        Command::Campaigns(c) => campaigns::campaigns(&Env::open(settings).await?, c).await,
        Command::Forecast(c) => forecasts::forecast(&Env::open(settings).await?, c).await,
        Command::Prune(args) => catalog::prune(&Env::open(settings).await?, args).await,
        Command::Recommend(args) => campaigns::recommend(&Env::open(settings).await?, args).await,
        Command::Segment(args) => campaigns::segment(&Env::open(settings).await?, args).await,
        Command::Serve(args) => serve(Env::open(settings).await?, args).await,
        #[cfg(feature = "bench")]
        Command::Bench(c) => crate::bench::run(c).await.map(|()| 0),
        #[cfg(not(feature = "bench"))]
        Command::Bench { .. } => anyhow::bail!(
            "this recflow was built without benchmarks; run them with \
             `cargo run --release --features bench -- bench ...`"
        ),
    }
}

/// The server, and workers that run the runs its console and API queue.
async fn serve(env: Env, args: ServeArgs) -> anyhow::Result<i32> {
    let config = crate::http::ServeConfig {
        bind: args.bind,
        auth: crate::http::Auth::from_env()?,
        open_recommendations: args.open_recommendations,
        open_metrics: args.open_metrics,
        max_body_bytes: args.max_body_bytes,
        reload_interval: args.reload_interval,
        access_log: args
            .access_log
            .then_some(crate::http::access_log::AccessLogConfig {
                per_second: args.access_log_per_second,
                one_in: args.access_log_one_in,
            }),
        gate: crate::http::gate::GateConfig {
            threads: args
                .scoring_threads
                .unwrap_or_else(crate::http::gate::GateConfig::default_threads),
            deadline: std::time::Duration::from_millis(args.max_queue_ms),
            max_queued: args.max_queued,
        },
    };
    let workers = async {
        if args.workers == 0 {
            return Ok(());
        }
        let config = crate::scheduler::daemon::DaemonConfig {
            dir: None,
            workers: args.workers,
            timing: crate::engine::WorkerTiming::default(),
            grace_period: std::time::Duration::from_secs(60),
            reload_interval: args.reload_interval,
        };
        crate::scheduler::daemon::run(env.clone(), config).await
    };
    let (served, worked) = tokio::join!(crate::http::serve(env.clone(), config, None), workers);
    served.and(worked).map(|()| 0)
}

/// The daemon, and the operations API and console beside it when `--bind`
/// is given.
async fn schedule(env: Env, args: ScheduleArgs) -> anyhow::Result<i32> {
    if let Some(bind) = args.bind {
        let config = crate::http::ServeConfig {
            bind,
            auth: crate::http::Auth::from_env()?,
            open_recommendations: false,
            open_metrics: args.open_metrics,
            max_body_bytes: args.max_body_bytes,
            reload_interval: args.reload_interval,
            access_log: None,
            gate: Default::default(),
        };
        let env = env.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve_operations(env, config).await {
                tracing::error!(error = %format!("{e:#}"), "The HTTP server stopped.");
            }
        });
    }
    let config = crate::scheduler::daemon::DaemonConfig {
        dir: Some(args.dir),
        workers: args.workers.max(1),
        timing: crate::engine::WorkerTiming::from_stale_after(args.stale_after),
        grace_period: args.grace_period,
        reload_interval: args.reload_interval,
    };
    crate::scheduler::daemon::run(env, config).await.map(|()| 0)
}
