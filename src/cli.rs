//! The command line: `run`, `validate`, `runs`, `datasets`, `solutions`,
//! `campaigns`, `recommend`, `bench`. Each command is a thin call into the
//! library; output for people goes to stdout, logs to stderr.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::campaign::{NumResults, RecommendationsResponse, Recommender};
use crate::config::{Env, Settings};
use crate::engine::{self, StepReport};
use crate::pipeline::Pipeline;
use crate::recipes::{Query, SegmentQuery};
use crate::schema::DatasetType;
use crate::store::{RunQuery, RunStatus, StepStatus, VersionKind};

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
    /// Check pipeline files and report every problem.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
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
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "RECFLOW_MAX_BODY_BYTES", default_value_t = crate::http::ServeConfig::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// How often to check the state store for campaign updates (e.g. `1s`, `500ms`).
    #[arg(long, env = "RECFLOW_RELOAD_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub reload_interval: std::time::Duration,
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
    /// Serve the pipelines HTTP API here (e.g. 127.0.0.1:8081).
    #[arg(long, env = "RECFLOW_API_BIND")]
    pub bind: Option<std::net::SocketAddr>,
    /// Largest request body the API accepts, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
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
        /// The step id.
        step: String,
        #[arg(long)]
        attempt: Option<i64>,
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
        #[arg(long)]
        version: Option<i64>,
        /// Also list this many items with the worst average wQL.
        #[arg(long, default_value_t = 0)]
        worst: usize,
    },
    /// Write an SVG of one item: history, P50, the 50% and 90% bands, and
    /// the backtest windows.
    Plot {
        /// The predictor; may be left out when there is only one.
        predictor: Option<String>,
        #[arg(long)]
        item: String,
        #[arg(long)]
        version: Option<i64>,
        /// Where to write (default `<item>.svg` here).
        #[arg(long, short)]
        out: Option<PathBuf>,
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
    /// Print the API's JSON response instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// The solution (a segment recipe); its latest active version unless --version.
    #[arg(long)]
    pub solution: String,
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
        Command::Validate { files } => Ok(validate(&files)),
        Command::Run { file, params } => {
            let pipeline = Pipeline::load(&file)?;
            let env = Env::open(settings).await?;
            run_file(&env, &pipeline, params).await
        }
        Command::Schedule(args) => {
            let env = Env::open(settings).await?;
            if let Some(bind) = args.bind {
                let api = crate::http::admin::ApiConfig {
                    bind,
                    auth: crate::http::Auth::from_env()?,
                    max_body_bytes: args.max_body_bytes,
                };
                let env = env.clone();
                tokio::spawn(async move {
                    if let Err(e) = crate::http::admin::serve(env, api).await {
                        tracing::error!(error = %format!("{e:#}"), "The HTTP API stopped.");
                    }
                });
            }
            let config = crate::scheduler::daemon::DaemonConfig {
                dir: args.dir,
                workers: args.workers.max(1),
                timing: crate::engine::WorkerTiming::from_stale_after(args.stale_after),
                grace_period: args.grace_period,
                reload_interval: args.reload_interval,
            };
            crate::scheduler::daemon::run(env, config).await.map(|()| 0)
        }
        Command::Trigger(args) => trigger(&Env::open(settings).await?, args).await,
        Command::Runs(c) => runs(&Env::open(settings).await?, c).await,
        Command::Datasets(c) => datasets(&Env::open(settings).await?, c).await,
        Command::Solutions(c) => solutions(&Env::open(settings).await?, c).await,
        Command::Campaigns(c) => campaigns(&Env::open(settings).await?, c).await,
        Command::Forecast(c) => forecast(&Env::open(settings).await?, c).await,
        Command::Recommend(args) => recommend(&Env::open(settings).await?, args).await,
        Command::Segment(args) => segment(&Env::open(settings).await?, args).await,
        Command::Serve(args) => {
            let env = Env::open(settings).await?;
            let config = crate::http::ServeConfig {
                bind: args.bind,
                auth: crate::http::Auth::from_env()?,
                open_recommendations: args.open_recommendations,
                max_body_bytes: args.max_body_bytes,
                reload_interval: args.reload_interval,
            };
            crate::http::serve(env, config, None).await.map(|()| 0)
        }
        #[cfg(feature = "bench")]
        Command::Bench(c) => crate::bench::run(c).await.map(|()| 0),
        #[cfg(not(feature = "bench"))]
        Command::Bench { .. } => anyhow::bail!(
            "this recflow was built without benchmarks; run them with \
             `cargo run --release --features bench -- bench ...`"
        ),
    }
}

fn validate(files: &[PathBuf]) -> i32 {
    let mut failed = 0;
    for file in files {
        match Pipeline::load(file) {
            Ok(p) => println!(
                "ok: {} (pipeline {}, {} steps)",
                file.display(),
                p.spec.name,
                p.spec.steps.len()
            ),
            Err(e) => {
                failed += 1;
                println!("{e}");
            }
        }
    }
    if failed > 0 { 1 } else { 0 }
}

fn mark(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => "✓",
        StepStatus::Failed => "✗",
        StepStatus::Skipped | StepStatus::UpstreamFailed => "-",
        StepStatus::Running | StepStatus::Queued => "…",
    }
}

/// Prints each step attempt as it ends.
fn step_printer(width: usize) -> impl FnMut(&StepReport) + Send {
    move |r: &StepReport| {
        let text = match &r.error {
            Some(e) => format!("{} failed: {e}", r.step_type),
            None => r.summary.clone(),
        };
        let attempt = if r.attempt > 1 {
            format!(" (attempt {})", r.attempt)
        } else {
            String::new()
        };
        println!(
            "  {} {:<width$}  {:>6.1}s  {text}{attempt}",
            mark(r.status),
            r.id,
            r.duration.as_secs_f64()
        );
    }
}

async fn trigger(env: &Env, args: TriggerArgs) -> anyhow::Result<i32> {
    use crate::scheduler::trigger::{GivenParams, parse_logical_date, queue_run};
    let logical = args
        .logical_date
        .as_deref()
        .map(parse_logical_date)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let id = queue_run(
        env,
        &args.pipeline,
        GivenParams::Text(args.params),
        logical,
        "trigger",
    )
    .await?;
    println!("{id}");
    if !args.wait {
        return Ok(0);
    }
    // Follow the run: print attempts as they end, then the run's status.
    let mut printed = std::collections::HashSet::new();
    loop {
        let run = env.store.get_run(id).await?;
        for a in env.store.list_attempts(id).await? {
            if a.status.is_finished() && printed.insert(a.id) {
                let text = a.error.clone().or(a.summary.clone()).unwrap_or_default();
                let attempt = if a.attempt > 1 {
                    format!(" (attempt {})", a.attempt)
                } else {
                    String::new()
                };
                eprintln!("  {} {}  {text}{attempt}", mark(a.status), a.step_id);
            }
        }
        if run.status.is_finished() {
            eprintln!(
                "Run {id} {}{}",
                run.status,
                run.error.map(|e| format!(": {e}")).unwrap_or_default()
            );
            return Ok(if run.status == RunStatus::Succeeded {
                0
            } else {
                1
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

async fn run_file(
    env: &Env,
    pipeline: &Pipeline,
    params: Vec<(String, String)>,
) -> anyhow::Result<i32> {
    let width = pipeline
        .spec
        .steps
        .iter()
        .map(|s| s.id().len())
        .max()
        .unwrap_or(4);
    println!(
        "Running pipeline {} ({}; state {}, warehouse {})",
        pipeline.spec.name,
        pipeline.file.display(),
        crate::store::redact(&env.settings.state_url),
        env.warehouse
    );
    let mut print = step_printer(width);
    let params = params
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let report = engine::run_pipeline(env, pipeline, "cli", &params, &mut print).await?;
    let secs = report.duration.as_secs_f64();
    match report.status {
        RunStatus::Succeeded => {
            println!("Run {} succeeded in {secs:.1}s.", report.run_id);
            for step in report
                .steps
                .iter()
                .filter(|s| s.step_type == "batch_inference")
            {
                if let Some(out) = step.summary.rsplit("→ ").next() {
                    println!("Export ({}): {out}", step.id);
                }
            }
            Ok(0)
        }
        status => {
            println!(
                "Run {} {status} in {secs:.1}s{}; details: recflow runs show {} --logs",
                report.run_id,
                report.error.map(|e| format!(" ({e})")).unwrap_or_default(),
                report.run_id
            );
            Ok(1)
        }
    }
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

async fn runs(env: &Env, c: RunsCommand) -> anyhow::Result<i32> {
    match c {
        RunsCommand::List { pipeline, limit } => {
            let query = RunQuery {
                pipeline,
                ..RunQuery::newest(limit)
            };
            let runs = env.store.list_runs(&query).await?;
            table(
                &["RUN", "PIPELINE", "STATUS", "TRIGGER", "CREATED", "SECONDS"],
                runs.into_iter()
                    .map(|r| {
                        let secs = match (r.started_at, r.finished_at) {
                            (Some(a), Some(b)) => {
                                format!("{:.1}", (b - a).num_milliseconds() as f64 / 1000.0)
                            }
                            _ => String::new(),
                        };
                        vec![
                            r.id.to_string(),
                            r.pipeline,
                            r.status.to_string(),
                            r.trigger,
                            when(r.created_at),
                            secs,
                        ]
                    })
                    .collect(),
            );
        }
        RunsCommand::Show { run_id, logs } => {
            let r = env.store.get_run(run_id).await?;
            println!(
                "Run {} of pipeline {}: {} (trigger {}, created {})",
                r.id,
                r.pipeline,
                r.status,
                r.trigger,
                when(r.created_at)
            );
            if let (Some(ld), Some(a), Some(b)) =
                (r.logical_date, r.data_interval_start, r.data_interval_end)
            {
                println!(
                    "Logical date {}, data interval {} to {}",
                    when(ld),
                    when(a),
                    when(b)
                );
            }
            if r.params.as_object().is_some_and(|m| !m.is_empty()) {
                println!("Params {}", r.params);
            }
            if let Some(e) = &r.error {
                println!("Error: {e}");
            }
            let attempts = env.store.list_attempts(run_id).await?;
            table(
                &[
                    "", "STEP", "TYPE", "ATTEMPT", "STATUS", "START", "END", "SECONDS", "RESULT",
                ],
                attempts
                    .iter()
                    .map(|a| {
                        let secs = match (a.started_at, a.finished_at) {
                            (Some(s), Some(e)) => {
                                format!("{:.1}", (e - s).num_milliseconds() as f64 / 1000.0)
                            }
                            _ => String::new(),
                        };
                        let result = a
                            .error
                            .clone()
                            .map(|e| format!("error: {e}"))
                            .or(a.summary.clone())
                            .unwrap_or_default();
                        vec![
                            mark(a.status).to_string(),
                            a.step_id.clone(),
                            a.step_type.clone(),
                            a.attempt.to_string(),
                            a.status.to_string(),
                            a.started_at.map(when).unwrap_or_default(),
                            a.finished_at.map(when).unwrap_or_default(),
                            secs,
                            result,
                        ]
                    })
                    .collect(),
            );
            if logs {
                for a in attempts.iter().filter(|a| !a.log.is_empty()) {
                    println!("\n{} attempt {}:", a.step_id, a.attempt);
                    for line in a.log.lines() {
                        println!("  {line}");
                    }
                }
            }
        }
        RunsCommand::Logs {
            run_id,
            step,
            attempt,
        } => {
            let attempts = env.store.list_attempts(run_id).await?;
            let found = attempts
                .iter()
                .filter(|a| a.step_id == step && attempt.is_none_or(|n| a.attempt == n))
                .max_by_key(|a| a.attempt)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "run {run_id} has no attempt{} of step {step:?}",
                        attempt.map(|n| format!(" {n}")).unwrap_or_default()
                    )
                })?;
            print!("{}", found.log);
        }
        RunsCommand::Cancel { run_id } => {
            let run = env.store.get_run(run_id).await?;
            anyhow::ensure!(
                !run.status.is_finished(),
                "run {run_id} already ended ({})",
                run.status
            );
            env.store.request_cancel(run_id).await?;
            println!("Run {run_id}: cancel requested; running steps stop at their next heartbeat.");
        }
        RunsCommand::Retry { run_id } => {
            let run = env.store.get_run(run_id).await?;
            anyhow::ensure!(
                matches!(run.status, RunStatus::Failed | RunStatus::Cancelled),
                "run {run_id} is {}; only a failed or cancelled run can be retried",
                run.status
            );
            let engine = crate::engine::Engine::new(env.clone(), Default::default());
            // Failed steps are queued again; steps that were not run are
            // forgotten by reopen_run and decided again as the run goes on.
            let attempts = env.store.list_attempts(run_id).await?;
            env.store.reopen_run(run_id).await?;
            let mut latest: std::collections::BTreeMap<&str, &crate::store::AttemptRecord> =
                Default::default();
            for a in &attempts {
                let e = latest.entry(a.step_id.as_str()).or_insert(a);
                if a.attempt >= e.attempt {
                    *e = a;
                }
            }
            for (step, a) in latest {
                if a.status == StepStatus::Failed {
                    let next = a.attempt + 1;
                    env.store
                        .queue_attempt(run_id, step, &a.step_type, next, chrono::Utc::now())
                        .await?;
                }
            }
            println!("Retrying run {run_id} of pipeline {}:", run.pipeline);
            let mut print = step_printer(20);
            let report = crate::engine::drive(engine, run_id, &mut print).await?;
            println!("Run {run_id} {}.", report.status);
            return Ok(if report.status == RunStatus::Succeeded {
                0
            } else {
                1
            });
        }
    }
    Ok(0)
}

async fn datasets(env: &Env, c: DatasetsCommand) -> anyhow::Result<i32> {
    match c {
        DatasetsCommand::List => {
            let versions = env.store.list_versions(VersionKind::Dataset, None).await?;
            table(
                &[
                    "DATASET", "VERSION", "STATUS", "ROWS", "REJECTED", "MODE", "CREATED",
                ],
                versions
                    .into_iter()
                    .map(|v| {
                        let m = v.manifest.clone().unwrap_or_default();
                        vec![
                            v.owner,
                            format!("v{}", v.version),
                            v.status.to_string(),
                            m["rows"]
                                .as_u64()
                                .map(|n| n.to_string())
                                .unwrap_or_default(),
                            m["rejected_rows"]
                                .as_u64()
                                .map(|n| n.to_string())
                                .unwrap_or_default(),
                            m["mode"].as_str().unwrap_or("").to_string(),
                            when(v.created_at),
                        ]
                    })
                    .collect(),
            );
        }
        DatasetsCommand::Show { dataset, version } => {
            let (group, ty) = dataset
                .split_once('/')
                .context("name the dataset as GROUP/DATASET, e.g. movielens/interactions")?;
            let ty = DatasetType::parse(ty).with_context(|| {
                format!("unknown dataset type {ty:?}: interactions, items or users")
            })?;
            let record = crate::dataset::version_record(env, group, ty, version).await?;
            println!(
                "{} v{}: {} (created {})",
                record.owner,
                record.version,
                record.status,
                when(record.created_at)
            );
            println!("location: {}", record.location);
            if let Some(e) = &record.error {
                println!("error: {e}");
            }
            if let Some(m) = &record.manifest {
                println!("{}", serde_json::to_string_pretty(m)?);
            }
        }
    }
    Ok(0)
}

async fn forecast(env: &Env, c: ForecastCommand) -> anyhow::Result<i32> {
    use crate::forecast::job;
    use crate::steps::forecast_metric as metric;
    match c {
        ForecastCommand::List => {
            let versions = env
                .store
                .list_versions(VersionKind::Predictor, None)
                .await?;
            table(
                &[
                    "PREDICTOR",
                    "VERSION",
                    "STATUS",
                    "CHOSEN",
                    "ITEMS",
                    "AVG wQL",
                    "WAPE",
                    "MASE",
                    "CREATED",
                ],
                versions
                    .into_iter()
                    .map(|v| {
                        let m = v.manifest.clone().unwrap_or_default();
                        let f = |k: &str| metric(m["metrics"][k].as_f64());
                        vec![
                            v.owner,
                            format!("v{}", v.version),
                            v.status.to_string(),
                            m["chosen"].as_str().unwrap_or("").to_string(),
                            m["items"]
                                .as_u64()
                                .map(|n| n.to_string())
                                .unwrap_or_default(),
                            f("average_wql"),
                            f("wape"),
                            f("mase"),
                            when(v.created_at),
                        ]
                    })
                    .collect(),
            );
        }
        ForecastCommand::Metrics {
            predictor,
            version,
            worst,
        } => {
            let m = job::manifest(env, &predictor, version).await?;
            println!(
                "{} v{}: {} ({} choice), horizon {} {} periods, {} backtest window(s), created {}",
                m.predictor,
                m.version,
                m.algorithm,
                match m.auto_choice {
                    crate::forecast::predictor::AutoChoice::Dataset => "dataset",
                    crate::forecast::predictor::AutoChoice::Item => "per-item",
                },
                m.horizon,
                m.series.frequency.name(),
                m.backtest_windows,
                when(m.created_at)
            );
            let data: Vec<String> = m
                .dataset_versions
                .iter()
                .map(|(d, v)| format!("{}/{d} v{v}", m.dataset_group))
                .collect();
            println!(
                "data: {} ({} items, {} periods from {} to {})",
                data.join(", "),
                m.items,
                m.periods,
                m.first_period.format("%Y-%m-%d"),
                m.last_period.format("%Y-%m-%d")
            );
            let served: Vec<String> = m
                .method_counts
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            println!("items per algorithm: {}", served.join(", "));
            if m.candidates.iter().any(|c| c.algorithm == "global") {
                println!(
                    "global model inputs: related series {}; item metadata {}",
                    if m.use_related { "yes" } else { "no" },
                    if m.item_attributes.is_empty() {
                        "none".to_string()
                    } else {
                        m.item_attributes.join(", ")
                    }
                );
            }
            let mut header = vec!["ALGORITHM".to_string()];
            header.extend(m.quantiles.iter().map(|q| format!("wQL[{q}]")));
            header.extend(
                [
                    "AVG wQL", "WAPE", "RMSE", "MAPE", "MASE", "WINDOWS", "SECONDS",
                ]
                .map(String::from),
            );
            let row =
                |name: String, x: &crate::forecast::predictor::Metrics, seconds: Option<f64>| {
                    let mut r = vec![name];
                    r.extend(x.wql.iter().map(|l| metric(l.loss)));
                    r.extend([x.average_wql, x.wape, x.rmse, x.mape, x.mase].map(metric));
                    r.push(x.windows.to_string());
                    r.push(seconds.map_or(String::new(), |s| format!("{s:.2}")));
                    r
                };
            let mut rows = vec![row(format!("chosen ({})", m.chosen), &m.metrics, None)];
            rows.extend(
                m.candidates
                    .iter()
                    .map(|c| row(c.algorithm.clone(), &c.metrics, Some(c.seconds))),
            );
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            table(&header, rows);
            if worst > 0 {
                let folder = job::predictors_location(&env.warehouse, &m.predictor)
                    .child(&format!("v{}", m.version));
                let bytes = folder.child(job::ITEMS_FILE).get().await?;
                let mut r = csv::Reader::from_reader(bytes.as_ref());
                let mut items: Vec<(f64, Vec<String>)> = Vec::new();
                for rec in r.records() {
                    let rec = rec?;
                    let score = rec[3].parse::<f64>().unwrap_or(f64::NAN);
                    items.push((
                        score,
                        vec![
                            rec[0].to_string(),
                            rec[1].to_string(),
                            rec[3].to_string(),
                            rec[2].to_string(),
                        ],
                    ));
                }
                items.retain(|(s, _)| s.is_finite());
                items.sort_by(|a, b| b.0.total_cmp(&a.0));
                println!();
                table(
                    &["ITEM", "ALGORITHM", "AVG wQL", "WINDOWS"],
                    items.into_iter().take(worst).map(|x| x.1).collect(),
                );
            }
        }
        ForecastCommand::Plot {
            predictor,
            item,
            version,
            out,
        } => {
            let predictor = match predictor {
                Some(p) => p,
                None => {
                    let mut names: Vec<String> = env
                        .store
                        .list_versions(VersionKind::Predictor, None)
                        .await?
                        .into_iter()
                        .map(|v| v.owner)
                        .collect();
                    names.sort();
                    names.dedup();
                    match names.as_slice() {
                        [one] => one.clone(),
                        [] => anyhow::bail!(
                            "no predictor has been trained yet; run a forecast_train step first"
                        ),
                        many => anyhow::bail!(
                            "several predictors exist ({}); name one",
                            many.join(", ")
                        ),
                    }
                }
            };
            let loaded = job::load(env, &predictor, version).await?;
            let index = loaded.panel.item_index(&item).ok_or_else(|| {
                let some: Vec<&str> = loaded
                    .panel
                    .items
                    .iter()
                    .take(5)
                    .map(String::as_str)
                    .collect();
                anyhow::anyhow!(
                    "predictor {predictor} v{} has no item {item:?} ({} items, e.g. {})",
                    loaded.manifest.version,
                    loaded.panel.items.len(),
                    some.join(", ")
                )
            })?;
            let out =
                out.unwrap_or_else(|| PathBuf::from(format!("{}.svg", job::file_safe(&item))));
            let svg = job::plot(env, std::sync::Arc::new(loaded), index).await?;
            crate::forecast::plot::write_text(&out, &svg)?;
            println!("wrote {}", out.display());
        }
    }
    Ok(0)
}

async fn solutions(env: &Env, c: SolutionsCommand) -> anyhow::Result<i32> {
    match c {
        SolutionsCommand::List => {
            let versions = env.store.list_versions(VersionKind::Solution, None).await?;
            table(
                &[
                    "SOLUTION",
                    "VERSION",
                    "STATUS",
                    "RECIPE",
                    "PRECISION@10",
                    "NDCG@10",
                    "COVERAGE",
                    "CREATED",
                ],
                versions
                    .into_iter()
                    .map(|v| {
                        let m = v.manifest.clone().unwrap_or_default();
                        let metric = |k: &str| {
                            m["metrics"][k]
                                .as_f64()
                                .map(|x| format!("{x:.4}"))
                                .unwrap_or_default()
                        };
                        vec![
                            v.owner,
                            format!("v{}", v.version),
                            v.status.to_string(),
                            m["recipe"].as_str().unwrap_or("").to_string(),
                            metric("precision_at_10"),
                            metric("normalized_discounted_cumulative_gain_at_10"),
                            metric("coverage"),
                            when(v.created_at),
                        ]
                    })
                    .collect(),
            );
        }
        SolutionsCommand::Show { solution, version } => {
            let record = crate::solution::version_record(env, &solution, version).await?;
            let m = crate::solution::manifest_of(&record)?;
            println!(
                "{} v{} ({}), created {}",
                m.solution,
                m.version,
                m.recipe,
                when(m.created_at)
            );
            println!("location: {}", record.location);
            println!("settings: {}", m.settings);
            let datasets: Vec<String> = m
                .dataset_versions
                .iter()
                .map(|(d, v)| format!("{}/{d} v{v}", m.dataset_group))
                .collect();
            println!(
                "data: {} ({} interactions, {} users, {} items)",
                datasets.join(", "),
                m.counts.interactions,
                m.counts.users,
                m.counts.items
            );
            println!(
                "training: {:.2}s, peak memory {}",
                m.training_seconds,
                m.peak_rss_bytes
                    .map(|b| format!("{} MiB", b / (1 << 20)))
                    .unwrap_or_else(|| "unknown".into())
            );
            if let Some(from) = m.updated_from {
                let of = m.metrics_from_version.unwrap_or(from);
                println!(
                    "training mode: update of v{from}; the metrics below are those of v{of}, its last full training"
                );
            }
            println!("metrics ({} test users):", m.test_users);
            for (k, v) in &m.metrics {
                println!("  {k:<45} {v:.4}");
            }
        }
    }
    Ok(0)
}

async fn campaigns(env: &Env, c: CampaignsCommand) -> anyhow::Result<i32> {
    match c {
        CampaignsCommand::List => {
            let list = env.store.list_campaigns().await?;
            table(
                &[
                    "CAMPAIGN",
                    "DATASET GROUP",
                    "SOLUTION",
                    "VERSION",
                    "PREVIOUS",
                    "UPDATED",
                ],
                list.into_iter()
                    .map(|c| {
                        vec![
                            c.name,
                            c.dataset_group,
                            c.solution,
                            format!("v{}", c.solution_version),
                            c.previous_version
                                .map(|v| format!("v{v}"))
                                .unwrap_or_default(),
                            when(c.updated_at),
                        ]
                    })
                    .collect(),
            );
        }
        CampaignsCommand::Show { campaign } => {
            let c = env.store.get_campaign(&campaign).await?;
            println!(
                "campaign {} (dataset group {}) serves {} v{}",
                c.name, c.dataset_group, c.solution, c.solution_version
            );
            println!("config: {}", c.config);
            println!(
                "event tracker (trackingId for PutEvents): {}",
                env.store.event_tracker(&c.dataset_group).await?
            );
            println!("deployments, newest first:");
            for d in env.store.list_deployments(&campaign).await? {
                let run = d.run_id.map(|r| format!(" by run {r}")).unwrap_or_default();
                println!(
                    "  {} {} v{}{run}",
                    when(d.deployed_at),
                    d.solution,
                    d.solution_version
                );
            }
        }
        CampaignsCommand::Update { campaign, version } => {
            let c = env.store.get_campaign(&campaign).await?;
            let record = crate::solution::version_record(env, &c.solution, Some(version)).await?;
            anyhow::ensure!(
                record.status == crate::store::VersionStatus::Active,
                "{} v{version} is {}, not active; only active versions can be served",
                c.solution,
                record.status
            );
            let c = env.store.set_campaign_version(&campaign, version).await?;
            println!(
                "campaign {} now serves {} v{} (was v{})",
                c.name,
                c.solution,
                c.solution_version,
                c.previous_version.unwrap_or_default()
            );
        }
        CampaignsCommand::Rollback { campaign } => {
            let c = env.store.get_campaign(&campaign).await?;
            let previous = c.previous_version.ok_or_else(|| {
                anyhow::anyhow!("campaign {campaign} has no previous version to roll back to")
            })?;
            let c = env.store.set_campaign_version(&campaign, previous).await?;
            println!(
                "campaign {} rolled back to {} v{} (was v{})",
                c.name,
                c.solution,
                c.solution_version,
                c.previous_version.unwrap_or_default()
            );
        }
    }
    Ok(0)
}

async fn segment(env: &Env, args: SegmentArgs) -> anyhow::Result<i32> {
    let rec = Recommender::for_solution(env, &args.solution, args.version).await?;
    let (query, input) = match (&args.item, &args.attributes) {
        (Some(i), _) => (SegmentQuery::Item(i), serde_json::json!({"itemId": i})),
        (None, Some(a)) => (
            SegmentQuery::Attributes(a),
            serde_json::json!({"itemAttributes": a}),
        ),
        (None, None) => unreachable!("clap requires --item or --attributes"),
    };
    let users = rec
        .model
        .segment(&query, args.num_results, None)
        .map_err(anyhow::Error::msg)?;
    if args.json {
        let ids: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
        println!(
            "{}",
            serde_json::json!({"input": input, "output": {"recommendedUsers": ids}})
        );
    } else {
        println!(
            "{} v{} ({}), users for {input}:",
            rec.solution, rec.version, rec.model.recipe
        );
        table(
            &["RANK", "USER", "SCORE"],
            users
                .into_iter()
                .enumerate()
                .map(|(i, (u, s))| vec![(i + 1).to_string(), u, format!("{s:.6}")])
                .collect(),
        );
    }
    Ok(0)
}

async fn recommend(env: &Env, args: RecommendArgs) -> anyhow::Result<i32> {
    let (_, rec) = Recommender::for_campaign(env, &args.campaign).await?;
    let query = match (&args.user, &args.item) {
        (Some(u), _) => Query::User(u),
        (None, Some(i)) => Query::Item(i),
        (None, None) => unreachable!("clap requires --user or --item"),
    };
    let items = rec.recommend(&query, args.num_results);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&RecommendationsResponse::new(items))?
        );
    } else {
        println!(
            "{} v{} for {}:",
            rec.solution,
            rec.version,
            match query {
                Query::User(u) => format!("user {u}"),
                Query::Item(i) => format!("item {i}"),
            }
        );
        table(
            &["RANK", "ITEM", "SCORE"],
            items
                .into_iter()
                .enumerate()
                .map(|(i, s)| vec![(i + 1).to_string(), s.item_id, format!("{:.6}", s.score)])
                .collect(),
        );
    }
    Ok(0)
}
