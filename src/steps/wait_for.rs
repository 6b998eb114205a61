//! The `wait_for` step, a sensor: succeeds once an object (or any object
//! under a prefix ending in `/`) exists in storage. It sleeps between
//! pokes on the async runtime, so a waiting sensor holds no thread; the
//! step's `timeout` (default 1 hour) bounds the wait.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::group::Group;
use crate::spec::Dur;
use crate::spec::SpecProblem;
use crate::storage::StorageUrl;

use super::{StepContext, StepOutcome};

/// How long a sensor waits when its step sets no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitForSpec {
    /// `s3://bucket/exports/2026-11-22/_SUCCESS`, or a prefix ending in `/`.
    pub path: String,
    /// Time between checks (default 30s).
    #[serde(default = "default_poke")]
    pub poke_interval: Dur,
}

fn default_poke() -> Dur {
    Dur(Duration::from_secs(30))
}

pub fn validate(spec: &WaitForSpec, at: &str, group: &Group) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    if let Err(e) = StorageUrl::parse(&spec.path, &group.base_dir) {
        problems.push(SpecProblem::new(format!("{at}.path"), e.to_string()));
    }
    if spec.poke_interval.0.is_zero() {
        problems.push(SpecProblem::new(
            format!("{at}.poke_interval"),
            "must be more than 0",
        ));
    }
    problems
}

pub async fn run(spec: &WaitForSpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let url = StorageUrl::parse(&spec.path, &ctx.group.base_dir.clone())?;
    let location = ctx.env.storage.open(&url)?;
    let started = std::time::Instant::now();
    let mut pokes = 0u64;
    loop {
        pokes += 1;
        let found = if url.is_prefix() {
            !location.list().await?.is_empty()
        } else {
            location.exists().await?
        };
        if found {
            let mut outputs = serde_json::Map::new();
            outputs.insert("path".into(), location.url().into());
            return Ok(StepOutcome {
                summary: format!(
                    "{} found after {pokes} check{} ({:.0}s)",
                    location.url(),
                    if pokes == 1 { "" } else { "s" },
                    started.elapsed().as_secs_f64()
                ),
                outputs,
            });
        }
        if pokes == 1 {
            ctx.log(format!(
                "waiting for {}, checking every {}",
                location.url(),
                spec.poke_interval
            ));
        }
        tokio::time::sleep(spec.poke_interval.0).await;
    }
}
