//! `recflow bench engine`: the engine's own cost per step — scheduling,
//! claiming and recording — on a chain of 50 no-op steps, a fan-out of 200
//! independent ones and a mapped step of 1,000 no-op instances
//! (`for_each:`), on SQLite (and on PostgreSQL with `--postgres
//! URL`). The baseline, measured in the same run on the same store, is the
//! least any recorder must do per step: queue the attempt and record its end.

use std::time::Instant;

use clap::Args;

use crate::config::{Env, Settings};
use crate::engine::{Engine, WorkerTiming, drive, new_run, register};
use crate::outln;
use crate::pipeline::Pipeline;

#[derive(Debug, Args)]
pub struct EngineBenchArgs {
    /// Steps in the chain.
    #[arg(long, default_value_t = 50)]
    pub chain: usize,
    /// Independent steps in the fan-out.
    #[arg(long, default_value_t = 200)]
    pub fan_out: usize,
    /// Instances of the mapped step (`for_each:`).
    #[arg(long, default_value_t = 1000)]
    pub mapped: usize,
    /// Steps of the fan-out (and instances of the mapped step) that run at once.
    #[arg(long, default_value_t = 16)]
    pub parallel: usize,
    /// Also measure on this PostgreSQL database (a throwaway one: runs are
    /// added to it).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Chain,
    FanOut,
    /// One step with a `for_each:` list.
    Mapped,
}

fn pipeline_text(name: &str, steps: usize, shape: Shape, parallel: usize) -> String {
    let mut text =
        format!("name: {name}\ndataset_group: bench\nmax_parallel_steps: {parallel}\nsteps:\n");
    if shape == Shape::Mapped {
        text.push_str(&format!(
            "  - {{id: each, type: noop, for_each: '{{{{ range({steps}) }}}}'}}\n"
        ));
        return text;
    }
    let chain = shape == Shape::Chain;
    for i in 0..steps {
        let deps = if chain && i > 0 {
            format!(", depends_on: [s{}]", i - 1)
        } else {
            String::new()
        };
        text.push_str(&format!("  - {{id: s{i}, type: noop{deps}}}\n"));
    }
    text
}

pub async fn engine(args: EngineBenchArgs) -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    let mut stores = vec![(
        "SQLite",
        format!("sqlite://{}/state.db", home.path().display()),
    )];
    if let Some(url) = &args.postgres {
        stores.push(("PostgreSQL", url.clone()));
    }
    outln!(
        "Engine overhead per no-op step or mapped instance (wall time of a run / steps); baseline: queue + finish one attempt row."
    );
    outln!(
        "{:<11} {:<27} {:>7} {:>11} {:>12} {:>8}",
        "store",
        "shape",
        "steps",
        "ms/step",
        "baseline ms",
        "ratio"
    );
    for (label, url) in stores {
        let settings = Settings {
            home: home.path().to_path_buf(),
            state_url: url,
            warehouse_url: format!("{}/warehouse/", home.path().display()),
        };
        let env = Env::open(settings).await?;
        let baseline = baseline_ms(&env, 200).await?;
        for (label_shape, steps, shape) in [
            (format!("chain of {}", args.chain), args.chain, Shape::Chain),
            (
                format!("fan-out of {} ({} at once)", args.fan_out, args.parallel),
                args.fan_out,
                Shape::FanOut,
            ),
            (
                format!("mapped ×{} ({} at once)", args.mapped, args.parallel),
                args.mapped,
                Shape::Mapped,
            ),
        ] {
            let shape_name = match shape {
                Shape::Chain => "chain",
                Shape::FanOut => "fan",
                Shape::Mapped => "mapped",
            };
            let name = format!("bench-{shape_name}-{}", uuid::Uuid::new_v4().simple());
            let file = home.path().join(format!("{name}.yaml"));
            let pipeline =
                Pipeline::from_text(&file, pipeline_text(&name, steps, shape, args.parallel))?;
            register(&env, &pipeline).await?;
            let run = new_run(&pipeline, "bench", &serde_json::Map::new(), None)?;
            let started = Instant::now();
            let id = env.store.create_run(&run).await?.expect("a new run");
            let report = drive(
                Engine::new(env.clone(), WorkerTiming::default()),
                id,
                &mut |_| {},
            )
            .await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0 / steps as f64;
            anyhow::ensure!(
                report.status == crate::store::RunStatus::Succeeded,
                "bench run {id} {}",
                report.status
            );
            outln!(
                "{label:<11} {label_shape:<27} {steps:>7} {ms:>11.2} {baseline:>12.2} {:>8.1}",
                ms / baseline
            );
        }
    }
    Ok(())
}

/// Per step: queue one attempt, claim it, record its end — the rows any
/// engine writes — with no planning in between.
async fn baseline_ms(env: &Env, steps: usize) -> anyhow::Result<f64> {
    let file = std::path::PathBuf::from("baseline.yaml");
    let pipeline =
        Pipeline::from_text(&file, pipeline_text("bench-baseline", 1, Shape::FanOut, 1))?;
    let mut run = new_run(&pipeline, "bench", &serde_json::Map::new(), None)?;
    run.pipeline = format!("bench-baseline-{}", uuid::Uuid::new_v4().simple());
    let id = env.store.create_run(&run).await?.expect("a new run");
    env.store.start_run(id, None).await?;
    let started = Instant::now();
    for i in 0..steps {
        env.store
            .queue_attempt(id, &format!("s{i}"), "noop", 1, chrono::Utc::now())
            .await?;
        let a = env
            .store
            .claim_attempt("bench", Some(id))
            .await?
            .expect("queued");
        env.store
            .finish_attempt(
                a.id,
                crate::store::StepStatus::Succeeded,
                &Default::default(),
                false,
            )
            .await?;
    }
    env.store
        .finish_run(id, crate::store::RunStatus::Succeeded, None)
        .await?;
    Ok(started.elapsed().as_secs_f64() * 1000.0 / steps as f64)
}
