//! `prune`: removing old versions and exports by a retention policy, for
//! the whole warehouse or what one registered pipeline owns (see
//! [`crate::retention`] for what is never removed and how removal stays
//! crash-safe).

use super::{OpsError, OpsResult};
use crate::config::Env;
use crate::retention::{self, PruneReport, RetentionError, RetentionSpec, Scope};
use crate::scheduler::trigger;

/// What to prune and by which policy.
#[derive(Debug, Clone, Default)]
pub struct PruneAsk {
    /// A registered pipeline: only its dataset group's datasets, its
    /// solutions, predictors and exports, by its `retention:` unless
    /// `keep_last` or `keep_days` are given. `None`: the whole warehouse.
    pub pipeline: Option<String>,
    pub keep_last: Option<u32>,
    pub keep_days: Option<u32>,
    /// List what would go, and the bytes it would free; remove nothing.
    pub dry_run: bool,
}

impl From<RetentionError> for OpsError {
    fn from(e: RetentionError) -> Self {
        match e {
            RetentionError::NoPolicy | RetentionError::KeepNone => OpsError::Invalid(e.to_string()),
            RetentionError::Store(s) => s.into(),
            RetentionError::Storage(s) => s.into(),
        }
    }
}

pub async fn prune(env: &Env, ask: &PruneAsk) -> OpsResult<PruneReport> {
    let given = RetentionSpec {
        keep_last: ask.keep_last,
        keep_days: ask.keep_days,
        after_run: false,
    };
    let (scope, policy) = match &ask.pipeline {
        None => (Scope::default(), given),
        Some(name) => {
            let pipeline = trigger::registered_pipeline(env, name).await?;
            let group = &pipeline.group.spec;
            let scope = Scope {
                dataset_group: Some(group.dataset_group.clone()),
                solutions: Some(group.solutions.keys().cloned().collect()),
                predictors: Some(group.predictors.keys().cloned().collect()),
                pipeline: Some(pipeline.spec.name.clone()),
            };
            let policy = if given.keep_last.is_some() || given.keep_days.is_some() {
                given
            } else {
                pipeline
                    .spec
                    .orchestration
                    .retention
                    .clone()
                    .ok_or_else(|| {
                        OpsError::Invalid(format!(
                            "pipeline {name} has no `retention:`; give --keep-last or --keep-days"
                        ))
                    })?
            };
            (scope, policy)
        }
    };
    Ok(retention::prune(env, &scope, &policy, ask.dry_run).await?)
}
