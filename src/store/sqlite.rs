//! The embedded state store: one SQLite file in WAL mode, migrated on open.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::*;

pub struct SqliteStore {
    pool: SqlitePool,
    url: String,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let open_err = |reason: String| StoreError::Open {
            url: url.to_string(),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| open_err(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = options.get_filename().to_path_buf();
        if let Some(parent) = file.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| open_err(format!("cannot create {}: {e}", parent.display())))?;
        }
        // Two processes opening a new or older database at once (a daemon
        // and a trigger) race: switching a new file to WAL fails with
        // "database is locked" before the busy timeout applies, and sqlx
        // takes no lock around SQLite migrations, so both would apply them.
        // A file lock serialises opening and migrating.
        let lock = if file.as_os_str() == ":memory:" {
            None
        } else {
            let lock_path = file.with_extension("open.lock");
            let lock = tokio::task::spawn_blocking(move || lock_file(&lock_path))
                .await
                .map_err(|e| open_err(e.to_string()))?
                .map_err(open_err)?;
            Some(lock)
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        MIGRATOR.run(&pool).await?;
        drop(lock);
        Ok(SqliteStore {
            pool,
            url: url.to_string(),
        })
    }

    /// A transaction that takes the write lock at once. A deferred one that
    /// reads first and writes later fails with SQLITE_BUSY_SNAPSHOT, without
    /// waiting, when another connection wrote in between (parallel steps do).
    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Opens `path` and takes an exclusive `flock` on it, waiting for it; the
/// lock goes with the returned file.
fn lock_file(path: &std::path::Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns for the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!(
            "cannot lock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(file)
}

/// Every column of `runs` but the pipeline text.
const RUN_COLUMNS: &str = "id, pipeline, status, trigger, created_at, started_at, finished_at, \
    error, file, params, logical_date, data_interval_start, data_interval_end, \
    max_parallel_steps, deadline, cancel_requested";

fn not_found_run(run_id: i64) -> StoreError {
    StoreError::NotFound {
        what: format!("run {run_id}"),
    }
}

super::rows::row_mappers!(SqliteRow);

#[async_trait]
impl StateStore for SqliteStore {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn upsert_pipeline(
        &self,
        name: &str,
        dataset_group: &str,
        file: &str,
        spec: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO pipelines (name, dataset_group, file, spec, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET dataset_group = excluded.dataset_group,
               file = excluded.file, spec = excluded.spec, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(dataset_group)
        .bind(file)
        .bind(spec)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_pipelines(&self) -> StoreResult<Vec<PipelineRecord>> {
        let rows = sqlx::query(
            "SELECT name, dataset_group, file, updated_at FROM pipelines ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pipeline_row).collect()
    }

    async fn get_pipeline(&self, name: &str) -> StoreResult<Option<(PipelineRecord, String)>> {
        let row = sqlx::query("SELECT * FROM pipelines WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((pipeline_row(&r)?, r.try_get("spec")?)))
            .transpose()
    }

    async fn create_run(&self, run: &NewRun) -> StoreResult<Option<i64>> {
        let now = ts(Utc::now());
        let finished = run.status.is_finished().then_some(now.clone());
        let row = sqlx::query(
            "INSERT INTO runs (pipeline, status, trigger, created_at, finished_at, error, spec, file,
               params, logical_date, data_interval_start, data_interval_end, max_parallel_steps)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&run.pipeline)
        .bind(run.status.as_str())
        .bind(&run.trigger)
        .bind(&now)
        .bind(finished)
        .bind(&run.error)
        .bind(&run.spec)
        .bind(&run.file)
        .bind(run.params.to_string())
        .bind(ts(run.logical_date))
        .bind(ts(run.data_interval.0))
        .bind(ts(run.data_interval.1))
        .bind(run.max_parallel_steps)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("id")).transpose().map_err(Into::into)
    }

    async fn run_spec(&self, run_id: i64) -> StoreResult<(String, String)> {
        let row = sqlx::query("SELECT spec, file FROM runs WHERE id = ?")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found_run(run_id))?;
        let spec: Option<String> = row.try_get("spec")?;
        let file: Option<String> = row.try_get("file")?;
        match (spec, file) {
            (Some(spec), Some(file)) => Ok((spec, file)),
            _ => Err(StoreError::Corrupt(format!(
                "run {run_id} predates orchestration and has no pipeline text"
            ))),
        }
    }

    async fn start_run(&self, run_id: i64, deadline: Option<DateTime<Utc>>) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE runs SET status = 'running', started_at = ?, deadline = ?
             WHERE id = ? AND status = 'queued'",
        )
        .bind(ts(Utc::now()))
        .bind(deadline.map(ts))
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE runs SET status = ?, finished_at = ?, error = ?
             WHERE id = ? AND status IN ('queued', 'running')",
        )
        .bind(status.as_str())
        .bind(ts(Utc::now()))
        .bind(error)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn request_cancel(&self, run_id: i64) -> StoreResult<RunRecord> {
        sqlx::query("UPDATE runs SET cancel_requested = 1 WHERE id = ?")
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        self.get_run(run_id).await
    }

    async fn reopen_run(&self, run_id: i64) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "UPDATE runs SET status = 'running', finished_at = NULL, error = NULL,
               cancel_requested = 0, deadline = NULL WHERE id = ?",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(not_found_run(run_id));
        }
        sqlx::query("DELETE FROM step_attempts WHERE run_id = ? AND attempt = 0")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_run(&self, run_id: i64) -> StoreResult<RunRecord> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found_run(run_id))?;
        run_row(&row)
    }

    async fn list_runs(&self, pipeline: Option<&str>, limit: i64) -> StoreResult<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (? IS NULL OR pipeline = ?) ORDER BY id DESC LIMIT ?"
        ))
        .bind(pipeline)
        .bind(pipeline)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_row).collect()
    }

    async fn runs_with_status(&self, statuses: &[RunStatus]) -> StoreResult<Vec<RunRecord>> {
        let list: Vec<String> = statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ({}) ORDER BY id",
            list.join(", ")
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_row).collect()
    }

    async fn queue_attempt(
        &self,
        run_id: i64,
        step_id: &str,
        step_type: &str,
        attempt: i64,
        not_before: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "INSERT INTO step_attempts (run_id, step_id, step_type, attempt, status, queued_at, not_before)
             VALUES (?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(step_id)
        .bind(step_type)
        .bind(attempt)
        .bind(ts(Utc::now()))
        .bind(ts(not_before))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn claim_attempt(
        &self,
        worker: &str,
        run_id: Option<i64>,
    ) -> StoreResult<Option<AttemptRecord>> {
        // One statement: SQLite runs it under the database's write lock, so
        // the choice and the claim cannot interleave with another claimer.
        let now = ts(Utc::now());
        let row = sqlx::query(
            "UPDATE step_attempts SET status = 'running', worker = ?1, started_at = ?2, heartbeat_at = ?2
             WHERE id = (
               SELECT a.id FROM step_attempts a JOIN runs r ON r.id = a.run_id
               WHERE a.status = 'queued' AND a.not_before <= ?2 AND r.status = 'running'
                 AND r.cancel_requested = 0
                 AND (?3 IS NULL AND r.trigger <> 'cli' OR a.run_id = ?3)
                 AND (SELECT count(*) FROM step_attempts b
                      WHERE b.run_id = a.run_id AND b.status = 'running') < r.max_parallel_steps
               ORDER BY a.not_before, a.id LIMIT 1)
               AND status = 'queued'
             RETURNING *",
        )
        .bind(worker)
        .bind(&now)
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(attempt_row).transpose()
    }

    async fn heartbeat(&self, worker: &str, attempt_ids: &[i64]) -> StoreResult<Vec<i64>> {
        if attempt_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = attempt_ids.iter().map(i64::to_string).collect();
        let ids = ids.join(", ");
        let now = ts(Utc::now());
        let mut tx = self.write_tx().await?;
        sqlx::query(&format!(
            "UPDATE step_attempts SET heartbeat_at = ? WHERE id IN ({ids}) AND worker = ? AND status = 'running'"
        ))
        .bind(&now)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT a.id FROM step_attempts a JOIN runs r ON r.id = a.run_id
             WHERE a.id IN ({ids}) AND (a.status <> 'running' OR a.worker IS NOT ?
               OR r.cancel_requested = 1 OR r.status <> 'running' OR r.deadline < ?)"
        ))
        .bind(worker)
        .bind(&now)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    async fn finish_attempt(
        &self,
        attempt_id: i64,
        status: StepStatus,
        end: &AttemptEnd,
        interrupted: bool,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE step_attempts SET status = ?, finished_at = ?, summary = ?, outputs = ?, error = ?,
               log = ?, interrupted = ?
             WHERE id = ? AND status IN ('queued', 'running')",
        )
        .bind(status.as_str())
        .bind(ts(Utc::now()))
        .bind(&end.summary)
        .bind(end.outputs.to_string())
        .bind(&end.error)
        .bind(&end.log)
        .bind(interrupted)
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn skip_step(
        &self,
        run_id: i64,
        step_id: &str,
        step_type: &str,
        status: StepStatus,
        reason: &str,
    ) -> StoreResult<()> {
        let now = ts(Utc::now());
        sqlx::query(
            "INSERT INTO step_attempts (run_id, step_id, step_type, attempt, status, queued_at,
               not_before, finished_at, summary)
             VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(step_id)
        .bind(step_type)
        .bind(status.as_str())
        .bind(&now)
        .bind(&now)
        .bind(&now)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fail_stale_attempts(
        &self,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<Vec<AttemptRecord>> {
        let rows = sqlx::query(
            "UPDATE step_attempts SET status = 'failed', finished_at = ?1, interrupted = 1,
               error = 'the worker ' || coalesce(worker, '?') || ' stopped heartbeating (it crashed or was killed)'
             WHERE status = 'running' AND heartbeat_at < ?2
             RETURNING *",
        )
        .bind(ts(Utc::now()))
        .bind(ts(stale_before))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_row).collect()
    }

    async fn fail_queued_attempts(&self, run_id: i64, reason: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE step_attempts SET status = 'failed', finished_at = ?, error = ?
             WHERE run_id = ? AND status = 'queued'",
        )
        .bind(ts(Utc::now()))
        .bind(reason)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_attempts(&self, run_id: i64) -> StoreResult<Vec<AttemptRecord>> {
        let rows = sqlx::query("SELECT * FROM step_attempts WHERE run_id = ? ORDER BY id")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(attempt_row).collect()
    }

    async fn get_attempt(&self, attempt_id: i64) -> StoreResult<AttemptRecord> {
        let row = sqlx::query("SELECT * FROM step_attempts WHERE id = ?")
            .bind(attempt_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("step attempt {attempt_id}"),
            })?;
        attempt_row(&row)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<bool> {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let result = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = ?2, expires_at = ?3
               WHERE leases.holder = ?2 OR leases.expires_at < ?4",
        )
        .bind(name)
        .bind(holder)
        .bind(ts(expires))
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn schedule_cursor(&self, pipeline: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT fired_up_to FROM schedule_cursors WHERE pipeline = ?")
            .bind(pipeline)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parse_ts(&r.try_get::<String, _>("fired_up_to")?))
            .transpose()
    }

    async fn set_schedule_cursor(
        &self,
        pipeline: &str,
        fired_up_to: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO schedule_cursors (pipeline, fired_up_to) VALUES (?, ?)
             ON CONFLICT (pipeline) DO UPDATE SET fired_up_to = excluded.fired_up_to",
        )
        .bind(pipeline)
        .bind(ts(fired_up_to))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_version(
        &self,
        kind: VersionKind,
        owner: &str,
        run_id: Option<i64>,
        step_id: Option<&str>,
        location_prefix: &str,
    ) -> StoreResult<i64> {
        // One statement, so SQLite's single writer makes the allocation atomic.
        let row = sqlx::query(
            "INSERT INTO versions (kind, owner, version, status, run_id, step_id, location, created_at)
             SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, ?3, ?4, ?5,
                    ?6 || '/v' || (COALESCE(MAX(version), 0) + 1), ?7
             FROM versions WHERE kind = ?1 AND owner = ?2
             RETURNING version",
        )
        .bind(kind.as_str())
        .bind(owner)
        .bind(VersionStatus::Creating.as_str())
        .bind(run_id)
        .bind(step_id)
        .bind(location_prefix.trim_end_matches('/'))
        .bind(ts(Utc::now()))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("version")?)
    }

    async fn activate_version(
        &self,
        kind: VersionKind,
        owner: &str,
        version: i64,
        manifest: &serde_json::Value,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE versions SET status = ?, manifest = ?, finished_at = ? WHERE kind = ? AND owner = ? AND version = ?",
        )
        .bind(VersionStatus::Active.as_str())
        .bind(manifest.to_string())
        .bind(ts(Utc::now()))
        .bind(kind.as_str())
        .bind(owner)
        .bind(version)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("{kind} version {owner} v{version}"),
            });
        }
        Ok(())
    }

    async fn fail_version(
        &self,
        kind: VersionKind,
        owner: &str,
        version: i64,
        error: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE versions SET status = ?, error = ?, finished_at = ? WHERE kind = ? AND owner = ? AND version = ?",
        )
        .bind(VersionStatus::Failed.as_str())
        .bind(error)
        .bind(ts(Utc::now()))
        .bind(kind.as_str())
        .bind(owner)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_version(
        &self,
        kind: VersionKind,
        owner: &str,
        version: i64,
    ) -> StoreResult<VersionRecord> {
        let row =
            sqlx::query("SELECT * FROM versions WHERE kind = ? AND owner = ? AND version = ?")
                .bind(kind.as_str())
                .bind(owner)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("{kind} version {owner} v{version}"),
                })?;
        version_row(&row)
    }

    async fn latest_active_version(
        &self,
        kind: VersionKind,
        owner: &str,
    ) -> StoreResult<Option<VersionRecord>> {
        let row = sqlx::query(
            "SELECT * FROM versions WHERE kind = ? AND owner = ? AND status = 'active' ORDER BY version DESC LIMIT 1",
        )
        .bind(kind.as_str())
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_row).transpose()
    }

    async fn list_versions(
        &self,
        kind: VersionKind,
        owner: Option<&str>,
    ) -> StoreResult<Vec<VersionRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM versions WHERE kind = ? AND (? IS NULL OR owner = ?) ORDER BY owner, version DESC",
        )
        .bind(kind.as_str())
        .bind(owner)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_row).collect()
    }

    async fn deploy_campaign(
        &self,
        name: &str,
        dataset_group: &str,
        solution: &str,
        version: i64,
        config: &serde_json::Value,
        run_id: Option<i64>,
    ) -> StoreResult<Option<i64>> {
        let now = ts(Utc::now());
        let mut tx = self.write_tx().await?;
        let previous: Option<i64> =
            sqlx::query("SELECT solution_version FROM campaigns WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("solution_version"))
                .transpose()?;
        sqlx::query(
            "INSERT INTO campaigns (name, dataset_group, solution, solution_version, previous_version, config, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET dataset_group = excluded.dataset_group, solution = excluded.solution,
               previous_version = campaigns.solution_version, solution_version = excluded.solution_version,
               config = excluded.config, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(dataset_group)
        .bind(solution)
        .bind(version)
        .bind(previous)
        .bind(config.to_string())
        .bind(&now)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deployments (campaign, solution, solution_version, run_id, deployed_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(name)
        .bind(solution)
        .bind(version)
        .bind(run_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(previous)
    }

    async fn get_campaign(&self, name: &str) -> StoreResult<CampaignRecord> {
        let row = sqlx::query("SELECT * FROM campaigns WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("campaign {name:?}"),
            })?;
        campaign_row(&row)
    }

    async fn set_campaign_version(&self, name: &str, version: i64) -> StoreResult<CampaignRecord> {
        let current = self.get_campaign(name).await?;
        let now = ts(Utc::now());
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE campaigns SET solution_version = ?, previous_version = ?, updated_at = ? WHERE name = ?",
        )
        .bind(version)
        .bind(current.solution_version)
        .bind(&now)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deployments (campaign, solution, solution_version, run_id, deployed_at) VALUES (?, ?, ?, NULL, ?)",
        )
        .bind(name)
        .bind(&current.solution)
        .bind(version)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get_campaign(name).await
    }

    async fn event_tracker(&self, dataset_group: &str) -> StoreResult<String> {
        let fresh = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO event_trackers (tracking_id, dataset_group, created_at) VALUES (?, ?, ?)
             ON CONFLICT (dataset_group) DO NOTHING",
        )
        .bind(&fresh)
        .bind(dataset_group)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query("SELECT tracking_id FROM event_trackers WHERE dataset_group = ?")
                .bind(dataset_group)
                .fetch_one(&self.pool)
                .await?
                .try_get("tracking_id")?,
        )
    }

    async fn set_event_tracker(&self, dataset_group: &str, tracking_id: &str) -> StoreResult<()> {
        if let Some(other) = self.tracker_group(tracking_id).await?
            && other != dataset_group
        {
            return Err(StoreError::Corrupt(format!(
                "tracking id {tracking_id:?} already belongs to dataset group {other}"
            )));
        }
        sqlx::query(
            "INSERT INTO event_trackers (tracking_id, dataset_group, created_at) VALUES (?, ?, ?)
             ON CONFLICT (dataset_group) DO UPDATE SET tracking_id = excluded.tracking_id",
        )
        .bind(tracking_id)
        .bind(dataset_group)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn tracker_group(&self, tracking_id: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query("SELECT dataset_group FROM event_trackers WHERE tracking_id = ?")
                .bind(tracking_id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("dataset_group"))
                .transpose()?,
        )
    }

    async fn insert_events(&self, events: &[EventRecord]) -> StoreResult<()> {
        let now = ts(Utc::now());
        let mut tx = self.write_tx().await?;
        for e in events {
            sqlx::query(
                "INSERT INTO events (dataset_group, user_id, session_id, event_type, item_id, event_value,
                   sent_at, recommendation_id, impression, properties, received_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&e.dataset_group)
            .bind(&e.user_id)
            .bind(&e.session_id)
            .bind(&e.event_type)
            .bind(&e.item_id)
            .bind(e.event_value)
            .bind(e.sent_at)
            .bind(&e.recommendation_id)
            .bind(&e.impression)
            .bind(&e.properties)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_events(
        &self,
        dataset_group: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE dataset_group = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(dataset_group)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRecord {
                    id: r.try_get("id")?,
                    dataset_group: r.try_get("dataset_group")?,
                    user_id: r.try_get("user_id")?,
                    session_id: r.try_get("session_id")?,
                    event_type: r.try_get("event_type")?,
                    item_id: r.try_get("item_id")?,
                    event_value: r.try_get("event_value")?,
                    sent_at: r.try_get("sent_at")?,
                    recommendation_id: r.try_get("recommendation_id")?,
                    impression: r.try_get("impression")?,
                    properties: r.try_get("properties")?,
                })
            })
            .collect()
    }

    async fn put_records(
        &self,
        dataset_group: &str,
        dataset_type: &str,
        records: &[(String, String)],
    ) -> StoreResult<()> {
        let now = ts(Utc::now());
        let mut tx = self.write_tx().await?;
        for (id, properties) in records {
            sqlx::query(
                "INSERT INTO put_records (dataset_group, dataset_type, record_id, properties, received_at)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (dataset_group, dataset_type, record_id) DO UPDATE SET
                   properties = excluded.properties, received_at = excluded.received_at",
            )
            .bind(dataset_group)
            .bind(dataset_type)
            .bind(id)
            .bind(properties)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_put_records(
        &self,
        dataset_group: &str,
        dataset_type: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT record_id, properties FROM put_records WHERE dataset_group = ? AND dataset_type = ? ORDER BY record_id",
        )
        .bind(dataset_group)
        .bind(dataset_type)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("record_id")?, r.try_get("properties")?)))
            .collect()
    }

    async fn pipeline_sources(&self, dataset_group: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT spec FROM pipelines WHERE dataset_group = ? ORDER BY name")
            .bind(dataset_group)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("spec")?)).collect()
    }

    async fn list_campaigns(&self) -> StoreResult<Vec<CampaignRecord>> {
        let rows = sqlx::query("SELECT * FROM campaigns ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(campaign_row).collect()
    }

    async fn list_deployments(&self, campaign: &str) -> StoreResult<Vec<DeploymentRecord>> {
        let rows = sqlx::query("SELECT * FROM deployments WHERE campaign = ? ORDER BY id DESC")
            .bind(campaign)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DeploymentRecord {
                    campaign: r.try_get("campaign")?,
                    solution: r.try_get("solution")?,
                    solution_version: r.try_get("solution_version")?,
                    run_id: r.try_get("run_id")?,
                    deployed_at: parse_ts(&r.try_get::<String, _>("deployed_at")?)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/state.db", dir.path().display());
        let store = SqliteStore::open(&url).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn versions_are_numbered_per_owner_and_only_active_ones_are_latest() {
        let (_dir, s) = store().await;
        let k = VersionKind::Dataset;
        assert_eq!(
            s.create_version(k, "g/interactions", None, None, "w/d")
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.create_version(k, "g/interactions", None, None, "w/d")
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            s.create_version(k, "g/items", None, None, "w/i")
                .await
                .unwrap(),
            1
        );
        assert!(
            s.latest_active_version(k, "g/interactions")
                .await
                .unwrap()
                .is_none()
        );
        s.activate_version(k, "g/interactions", 1, &serde_json::json!({"rows": 5}))
            .await
            .unwrap();
        s.fail_version(k, "g/interactions", 2, "boom")
            .await
            .unwrap();
        let latest = s
            .latest_active_version(k, "g/interactions")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((latest.version, latest.location.as_str()), (1, "w/d/v1"));
        assert_eq!(latest.manifest.unwrap()["rows"], 5);
    }

    #[tokio::test]
    async fn deploy_remembers_the_previous_version() {
        let (_dir, s) = store().await;
        let cfg = serde_json::json!({});
        assert_eq!(
            s.deploy_campaign("c", "g", "sol", 1, &cfg, Some(1))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.deploy_campaign("c", "g", "sol", 2, &cfg, Some(2))
                .await
                .unwrap(),
            Some(1)
        );
        let c = s.get_campaign("c").await.unwrap();
        assert_eq!((c.solution_version, c.previous_version), (2, Some(1)));
        assert_eq!(s.list_deployments("c").await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn shared_store_suite() {
        let (_dir, s) = store().await;
        super::super::suite::run_all(&s).await;
    }

    #[tokio::test]
    async fn event_trackers_are_generated_once_or_declared() {
        let (_dir, store) = store().await;
        let generated = store.event_tracker("ml").await.unwrap();
        assert_eq!(store.event_tracker("ml").await.unwrap(), generated);
        assert_eq!(
            store.tracker_group(&generated).await.unwrap().as_deref(),
            Some("ml")
        );
        store.set_event_tracker("ml", "ml-events").await.unwrap();
        assert_eq!(store.event_tracker("ml").await.unwrap(), "ml-events");
        assert_eq!(store.tracker_group(&generated).await.unwrap(), None);
        let err = store
            .set_event_tracker("other", "ml-events")
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("already belongs to dataset group ml"),
            "{err}"
        );
    }
}
