//! Queuing a run of a registered pipeline (`recflow trigger`, the HTTP API):
//! the run goes into the state store, where a daemon picks it up.

use chrono::{DateTime, Utc};

use crate::config::Env;
use crate::pipeline::Pipeline;
use crate::store::StoreError;

/// Parameters as given on a command line (`k=v`) or in a JSON body.
pub enum GivenParams {
    Text(Vec<(String, String)>),
    Json(serde_json::Map<String, serde_json::Value>),
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(
        "pipeline {0:?} is not known to the state store; `recflow schedule DIR` registers every pipeline in DIR (or run a file now with `recflow run FILE`)"
    )]
    UnknownPipeline(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0:#}")]
    Other(anyhow::Error),
}

/// The pipeline as last registered.
pub async fn registered_pipeline(env: &Env, name: &str) -> Result<Pipeline, TriggerError> {
    let (record, text) = env
        .store
        .get_pipeline(name)
        .await?
        .ok_or_else(|| TriggerError::UnknownPipeline(name.to_string()))?;
    Pipeline::from_text(std::path::Path::new(&record.file), text)
        .map_err(|e| TriggerError::Other(e.into()))
}

/// Queues a run; returns its id.
pub async fn queue_run(
    env: &Env,
    name: &str,
    params: GivenParams,
    logical_date: Option<DateTime<Utc>>,
    trigger: &str,
) -> Result<i64, TriggerError> {
    let pipeline = registered_pipeline(env, name).await?;
    let params = match params {
        GivenParams::Json(m) => m,
        GivenParams::Text(pairs) => pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    };
    let run = crate::engine::new_run(&pipeline, trigger, &params, logical_date)
        .map_err(|e| TriggerError::Invalid(format!("{e:#}")))?;
    let id = env
        .store
        .create_run(&run)
        .await?
        .ok_or_else(|| TriggerError::Invalid("a run for this logical date exists".into()))?;
    tracing::info!(run_id = id, pipeline = name, trigger, "Run queued.");
    Ok(id)
}

/// Parses `--logical-date`: RFC 3339, or a date (midnight UTC).
pub fn parse_logical_date(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| {
            format!("invalid logical date {text:?}: write 2026-11-22 or 2026-11-22T02:30:00Z")
        })
}
