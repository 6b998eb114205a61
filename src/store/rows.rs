//! Rows to records. Both databases keep the same columns with the same Rust
//! types (timestamps as RFC 3339 text, JSON as text), so one set of mappers
//! reads both, through [`Columns`].

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    AttemptRecord, CampaignRecord, DeploymentRecord, EventRecord, FilterRecord, PipelineRecord,
    RunRecord, StoreError, StoreResult, VersionRecord, parse_ts,
};

/// Typed reads of a row's columns by name, for a row of either database.
pub(super) trait Columns {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn opt_float(&self, col: &str) -> StoreResult<Option<f64>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;

    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        parse_ts(&self.text(col)?)
    }

    fn opt_time(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.opt_text(col)?.as_deref().map(parse_ts).transpose()
    }

    fn json(&self, col: &str) -> StoreResult<Option<serde_json::Value>> {
        self.opt_text(col)?
            .map(|s| {
                serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
            })
            .transpose()
    }
}

impl<R: Row> Columns for R
where
    for<'s> &'s str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, col: &str) -> StoreResult<String> {
        Ok(self.try_get(col)?)
    }

    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(col)?)
    }

    fn int(&self, col: &str) -> StoreResult<i64> {
        Ok(self.try_get(col)?)
    }

    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        Ok(self.try_get(col)?)
    }

    fn opt_float(&self, col: &str) -> StoreResult<Option<f64>> {
        Ok(self.try_get(col)?)
    }

    fn flag(&self, col: &str) -> StoreResult<bool> {
        Ok(self.try_get(col)?)
    }
}

pub(super) fn pipeline_row(row: &impl Columns) -> StoreResult<PipelineRecord> {
    Ok(PipelineRecord {
        name: row.text("name")?,
        dataset_group: row.text("dataset_group")?,
        file: row.text("file")?,
        updated_at: row.time("updated_at")?,
        paused: row.flag("paused")?,
    })
}

pub(super) fn filter_row(row: &impl Columns) -> StoreResult<FilterRecord> {
    Ok(FilterRecord {
        dataset_group: row.text("dataset_group")?,
        name: row.text("name")?,
        expression: row.text("expression")?,
        pipeline: row.text("pipeline")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(super) fn run_row(row: &impl Columns) -> StoreResult<RunRecord> {
    Ok(RunRecord {
        id: row.int("id")?,
        pipeline: row.text("pipeline")?,
        status: row.text("status")?.parse()?,
        trigger: row.text("trigger")?,
        created_at: row.time("created_at")?,
        started_at: row.opt_time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        error: row.opt_text("error")?,
        file: row.opt_text("file")?,
        params: row.json("params")?.unwrap_or_default(),
        logical_date: row.opt_time("logical_date")?,
        data_interval_start: row.opt_time("data_interval_start")?,
        data_interval_end: row.opt_time("data_interval_end")?,
        max_parallel_steps: row.int("max_parallel_steps")?,
        deadline: row.opt_time("deadline")?,
        cancel_requested: row.flag("cancel_requested")?,
        trigger_info: row.json("trigger_info")?,
    })
}

pub(super) fn attempt_row(row: &impl Columns) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        id: row.int("id")?,
        run_id: row.int("run_id")?,
        step_id: row.text("step_id")?,
        step_type: row.text("step_type")?,
        map_index: Some(row.int("map_index")?).filter(|i| *i >= 0),
        map_item: row.json("map_item")?,
        attempt: row.int("attempt")?,
        status: row.text("status")?.parse()?,
        queued_at: row.time("queued_at")?,
        not_before: row.time("not_before")?,
        started_at: row.opt_time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        worker: row.opt_text("worker")?,
        heartbeat_at: row.opt_time("heartbeat_at")?,
        interrupted: row.flag("interrupted")?,
        summary: row.opt_text("summary")?,
        outputs: row.json("outputs")?.unwrap_or_default(),
        error: row.opt_text("error")?,
        log: row.text("log")?,
    })
}

pub(super) fn version_row(row: &impl Columns) -> StoreResult<VersionRecord> {
    Ok(VersionRecord {
        kind: row.text("kind")?.parse()?,
        owner: row.text("owner")?,
        version: row.int("version")?,
        status: row.text("status")?.parse()?,
        run_id: row.opt_int("run_id")?,
        step_id: row.opt_text("step_id")?,
        location: row.text("location")?,
        created_at: row.time("created_at")?,
        finished_at: row.opt_time("finished_at")?,
        manifest: row.json("manifest")?,
        error: row.opt_text("error")?,
    })
}

pub(super) fn campaign_row(row: &impl Columns) -> StoreResult<CampaignRecord> {
    Ok(CampaignRecord {
        name: row.text("name")?,
        dataset_group: row.text("dataset_group")?,
        solution: row.text("solution")?,
        solution_version: row.int("solution_version")?,
        previous_version: row.opt_int("previous_version")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        config: row.json("config")?.unwrap_or_default(),
    })
}

pub(super) fn deployment_row(row: &impl Columns) -> StoreResult<DeploymentRecord> {
    Ok(DeploymentRecord {
        campaign: row.text("campaign")?,
        solution: row.text("solution")?,
        solution_version: row.int("solution_version")?,
        run_id: row.opt_int("run_id")?,
        deployed_at: row.time("deployed_at")?,
    })
}

pub(super) fn event_row(row: &impl Columns) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        id: row.int("id")?,
        dataset_group: row.text("dataset_group")?,
        user_id: row.opt_text("user_id")?,
        session_id: row.text("session_id")?,
        event_type: row.text("event_type")?,
        item_id: row.opt_text("item_id")?,
        event_value: row.opt_float("event_value")?,
        sent_at: row.int("sent_at")?,
        recommendation_id: row.opt_text("recommendation_id")?,
        impression: row.opt_text("impression")?,
        properties: row.opt_text("properties")?,
    })
}
