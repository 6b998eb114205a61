//! Rows to records, shared by the SQLite and PostgreSQL stores: both keep
//! the same columns with the same Rust types (timestamps as RFC 3339 text),
//! so one set of mappers, instantiated per row type, reads both.

/// Defines `opt_ts`, `json`, `run_row`, `attempt_row`, `version_row`,
/// `campaign_row` and `pipeline_row` for a row type in the calling module.
macro_rules! row_mappers {
    ($row:ty) => {
        fn opt_ts(row: &$row, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
            row.try_get::<Option<String>, _>(col)?
                .as_deref()
                .map(parse_ts)
                .transpose()
        }

        fn json(row: &$row, col: &str) -> StoreResult<Option<serde_json::Value>> {
            row.try_get::<Option<String>, _>(col)?
                .map(|s| {
                    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
                })
                .transpose()
        }

        fn run_row(row: &$row) -> StoreResult<RunRecord> {
            Ok(RunRecord {
                id: row.try_get("id")?,
                pipeline: row.try_get("pipeline")?,
                status: row.try_get::<String, _>("status")?.parse()?,
                trigger: row.try_get("trigger")?,
                created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
                started_at: opt_ts(row, "started_at")?,
                finished_at: opt_ts(row, "finished_at")?,
                error: row.try_get("error")?,
                file: row.try_get("file")?,
                params: json(row, "params")?.unwrap_or_default(),
                logical_date: opt_ts(row, "logical_date")?,
                data_interval_start: opt_ts(row, "data_interval_start")?,
                data_interval_end: opt_ts(row, "data_interval_end")?,
                max_parallel_steps: row.try_get("max_parallel_steps")?,
                deadline: opt_ts(row, "deadline")?,
                cancel_requested: row.try_get("cancel_requested")?,
            })
        }

        fn attempt_row(row: &$row) -> StoreResult<AttemptRecord> {
            Ok(AttemptRecord {
                id: row.try_get("id")?,
                run_id: row.try_get("run_id")?,
                step_id: row.try_get("step_id")?,
                step_type: row.try_get("step_type")?,
                attempt: row.try_get("attempt")?,
                status: row.try_get::<String, _>("status")?.parse()?,
                queued_at: parse_ts(&row.try_get::<String, _>("queued_at")?)?,
                not_before: parse_ts(&row.try_get::<String, _>("not_before")?)?,
                started_at: opt_ts(row, "started_at")?,
                finished_at: opt_ts(row, "finished_at")?,
                worker: row.try_get("worker")?,
                heartbeat_at: opt_ts(row, "heartbeat_at")?,
                interrupted: row.try_get("interrupted")?,
                summary: row.try_get("summary")?,
                outputs: json(row, "outputs")?.unwrap_or_default(),
                error: row.try_get("error")?,
                log: row.try_get("log")?,
            })
        }

        fn version_row(row: &$row) -> StoreResult<VersionRecord> {
            Ok(VersionRecord {
                kind: row.try_get::<String, _>("kind")?.parse()?,
                owner: row.try_get("owner")?,
                version: row.try_get("version")?,
                status: row.try_get::<String, _>("status")?.parse()?,
                run_id: row.try_get("run_id")?,
                step_id: row.try_get("step_id")?,
                location: row.try_get("location")?,
                created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
                finished_at: opt_ts(row, "finished_at")?,
                manifest: json(row, "manifest")?,
                error: row.try_get("error")?,
            })
        }

        fn campaign_row(row: &$row) -> StoreResult<CampaignRecord> {
            Ok(CampaignRecord {
                name: row.try_get("name")?,
                dataset_group: row.try_get("dataset_group")?,
                solution: row.try_get("solution")?,
                solution_version: row.try_get("solution_version")?,
                previous_version: row.try_get("previous_version")?,
                created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
                updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
                config: json(row, "config")?.unwrap_or_default(),
            })
        }

        fn pipeline_row(row: &$row) -> StoreResult<PipelineRecord> {
            Ok(PipelineRecord {
                name: row.try_get("name")?,
                dataset_group: row.try_get("dataset_group")?,
                file: row.try_get("file")?,
                updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
            })
        }
    };
}

pub(crate) use row_mappers;
