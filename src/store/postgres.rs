//! The state store on PostgreSQL, for several nodes sharing one state: the
//! same tables and queries as the SQLite store (timestamps are RFC 3339 text
//! here too), with the places where SQLite's single writer made a statement
//! atomic made safe for concurrent writers.
//!
//! Every transaction runs at PostgreSQL's default isolation, READ COMMITTED:
//! each statement sees the rows committed before it started.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

use super::*;

pub struct PostgresStore {
    pool: PgPool,
    /// The URL with its password hidden.
    url: String,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl PostgresStore {
    /// Connects to the database at `url` and migrates it.
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let open_err = |reason: String| StoreError::Open {
            url: redact(url),
            reason,
        };
        let options = PgConnectOptions::from_str(url).map_err(|e| open_err(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        // The migrator holds an advisory lock, so nodes starting together
        // migrate once.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| open_err(format!("migration failed: {e}")))?;
        Ok(PostgresStore {
            pool,
            url: redact(url),
        })
    }
}

/// Every column of `runs` but the pipeline text.
const RUN_COLUMNS: &str = "id, pipeline, status, trigger, created_at, started_at, finished_at, \
    error, file, params, logical_date, data_interval_start, data_interval_end, \
    max_parallel_steps, deadline, cancel_requested";

/// An attempt `a` of run `r` that a worker may start at `$1`: queued, due,
/// its run running and not cancelled, and the run below its
/// `max_parallel_steps`.
const READY_ATTEMPT: &str = "a.status = 'queued' AND a.not_before <= $1
    AND r.status = 'running' AND NOT r.cancel_requested
    AND (SELECT count(*) FROM step_attempts b
         WHERE b.run_id = a.run_id AND b.status = 'running') < r.max_parallel_steps";

fn not_found_run(run_id: i64) -> StoreError {
    StoreError::NotFound {
        what: format!("run {run_id}"),
    }
}

fn not_found_campaign(name: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("campaign {name:?}"),
    }
}

super::rows::row_mappers!(PgRow);

#[async_trait]
impl StateStore for PostgresStore {
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
            "INSERT INTO pipelines (name, dataset_group, file, spec, updated_at) VALUES ($1, $2, $3, $4, $5)
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
        let row = sqlx::query("SELECT * FROM pipelines WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((pipeline_row(&r)?, r.try_get("spec")?)))
            .transpose()
    }

    async fn create_run(&self, run: &NewRun) -> StoreResult<Option<i64>> {
        let now = ts(Utc::now());
        let finished = run.status.is_finished().then_some(now.clone());
        // No conflict target: the only unique index a new run can hit is
        // `runs_scheduled_once`; a concurrent insert of the same scheduled
        // time waits for the first to commit, then inserts nothing.
        let row = sqlx::query(
            "INSERT INTO runs (pipeline, status, trigger, created_at, finished_at, error, spec, file,
               params, logical_date, data_interval_start, data_interval_end, max_parallel_steps)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
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
        let row = sqlx::query("SELECT spec, file FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found_run(run_id))?;
        let spec: Option<String> = row.try_get("spec")?;
        let file: Option<String> = row.try_get("file")?;
        match (spec, file) {
            (Some(spec), Some(file)) => Ok((spec, file)),
            _ => Err(StoreError::Corrupt(format!(
                "run {run_id} has no pipeline text"
            ))),
        }
    }

    async fn start_run(&self, run_id: i64, deadline: Option<DateTime<Utc>>) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE runs SET status = 'running', started_at = $1, deadline = $2
             WHERE id = $3 AND status = 'queued'",
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
            "UPDATE runs SET status = $1, finished_at = $2, error = $3
             WHERE id = $4 AND status IN ('queued', 'running')",
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
        sqlx::query("UPDATE runs SET cancel_requested = TRUE WHERE id = $1")
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        self.get_run(run_id).await
    }

    async fn reopen_run(&self, run_id: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(
            "UPDATE runs SET status = 'running', finished_at = NULL, error = NULL,
               cancel_requested = FALSE, deadline = NULL WHERE id = $1",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(not_found_run(run_id));
        }
        sqlx::query("DELETE FROM step_attempts WHERE run_id = $1 AND attempt = 0")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_run(&self, run_id: i64) -> StoreResult<RunRecord> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found_run(run_id))?;
        run_row(&row)
    }

    async fn list_runs(&self, pipeline: Option<&str>, limit: i64) -> StoreResult<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE ($1 IS NULL OR pipeline = $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(pipeline)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_row).collect()
    }

    async fn runs_with_status(&self, statuses: &[RunStatus]) -> StoreResult<Vec<RunRecord>> {
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status = ANY($1) ORDER BY id"
        ))
        .bind(statuses)
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
             VALUES ($1, $2, $3, $4, 'queued', $5, $6) ON CONFLICT DO NOTHING",
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
        // Two claimers must never take the same attempt, and together must
        // not start more than a run's `max_parallel_steps`. `SKIP LOCKED`
        // alone gives the first but not the second: two claimers of one run
        // could both count one slot free and take two different attempts.
        // So claims of one run are serialised by locking the run's row for
        // the claim's transaction (claims of different runs do not wait for
        // each other); once we hold it, the claiming statement's fresh
        // snapshot (READ COMMITTED) sees every earlier claim of the run, and
        // a cancel or finish of the run either committed before it or waits.
        // `FOR NO KEY UPDATE` rather than `FOR UPDATE`: it still excludes the
        // other claimers, but not `queue_attempt`, whose foreign key check
        // takes a key-share lock on the run. A row lock rather than an
        // advisory lock: it needs no key space of its own and shows up as a
        // plain lock on `runs` when someone looks.
        loop {
            let now = ts(Utc::now());
            // Without a run, take the run of the oldest attempt ready now.
            let run = match run_id {
                Some(run) => run,
                None => {
                    let row = sqlx::query(&format!(
                        "SELECT a.run_id FROM step_attempts a JOIN runs r ON r.id = a.run_id
                         WHERE {READY_ATTEMPT} AND r.trigger <> 'cli'
                         ORDER BY a.not_before, a.id LIMIT 1"
                    ))
                    .bind(&now)
                    .fetch_optional(&self.pool)
                    .await?;
                    match row {
                        Some(row) => row.try_get("run_id")?,
                        None => return Ok(None),
                    }
                }
            };
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT id FROM runs WHERE id = $1 FOR NO KEY UPDATE")
                .bind(run)
                .execute(&mut *tx)
                .await?;
            // SKIP LOCKED passes over an attempt that another transaction is
            // ending (`fail_queued_attempts`) instead of waiting for it.
            let row = sqlx::query(&format!(
                "UPDATE step_attempts SET status = 'running', worker = $2, started_at = $1, heartbeat_at = $1
                 WHERE id = (
                   SELECT a.id FROM step_attempts a JOIN runs r ON r.id = a.run_id
                   WHERE {READY_ATTEMPT} AND a.run_id = $3
                   ORDER BY a.not_before, a.id LIMIT 1
                   FOR UPDATE OF a SKIP LOCKED)
                 RETURNING *"
            ))
            .bind(&now)
            .bind(worker)
            .bind(run)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            if row.is_some() || run_id.is_some() {
                return row.as_ref().map(attempt_row).transpose();
            }
            // Another claimer filled the run we picked (or took its last
            // ready attempt) between our pick and our lock: pick again, with
            // a snapshot that sees its claim.
        }
    }

    async fn heartbeat(&self, worker: &str, attempt_ids: &[i64]) -> StoreResult<Vec<i64>> {
        if attempt_ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = ts(Utc::now());
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE step_attempts SET heartbeat_at = $1
             WHERE id = ANY($2) AND worker = $3 AND status = 'running'",
        )
        .bind(&now)
        .bind(attempt_ids)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT a.id FROM step_attempts a JOIN runs r ON r.id = a.run_id
             WHERE a.id = ANY($1) AND (a.status <> 'running' OR a.worker IS DISTINCT FROM $2
               OR r.cancel_requested OR r.status <> 'running' OR r.deadline < $3)
             ORDER BY a.id",
        )
        .bind(attempt_ids)
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
            "UPDATE step_attempts SET status = $1, finished_at = $2, summary = $3, outputs = $4,
               error = $5, log = $6, interrupted = $7
             WHERE id = $8 AND status IN ('queued', 'running')",
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
             VALUES ($1, $2, $3, 0, $4, $5, $5, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(step_id)
        .bind(step_type)
        .bind(status.as_str())
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
        // A heartbeat committed meanwhile wins: PostgreSQL re-checks
        // `heartbeat_at` on the newest version of a row it had to wait for.
        let rows = sqlx::query(
            "UPDATE step_attempts SET status = 'failed', finished_at = $1, interrupted = TRUE,
               error = 'the worker ' || coalesce(worker, '?') || ' stopped heartbeating (it crashed or was killed)'
             WHERE status = 'running' AND heartbeat_at < $2
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
            "UPDATE step_attempts SET status = 'failed', finished_at = $1, error = $2
             WHERE run_id = $3 AND status = 'queued'",
        )
        .bind(ts(Utc::now()))
        .bind(reason)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_attempts(&self, run_id: i64) -> StoreResult<Vec<AttemptRecord>> {
        let rows = sqlx::query("SELECT * FROM step_attempts WHERE run_id = $1 ORDER BY id")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(attempt_row).collect()
    }

    async fn get_attempt(&self, attempt_id: i64) -> StoreResult<AttemptRecord> {
        let row = sqlx::query("SELECT * FROM step_attempts WHERE id = $1")
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
        // One atomic upsert: a concurrent taker of a new lease waits for the
        // first insert and then sees it as the row in conflict.
        let result = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
               WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
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
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn schedule_cursor(&self, pipeline: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT fired_up_to FROM schedule_cursors WHERE pipeline = $1")
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
            "INSERT INTO schedule_cursors (pipeline, fired_up_to) VALUES ($1, $2)
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
        // Two writers can read the same MAX(version): neither sees the
        // other's uncommitted row. The primary key settles it: the second
        // insert waits for the first to commit, then inserts nothing, and
        // its writer tries again with a new statement, whose snapshot sees
        // the first one's number. Each retry means another writer got a
        // number, so the loop ends.
        loop {
            let row = sqlx::query(
                "INSERT INTO versions (kind, owner, version, status, run_id, step_id, location, created_at)
                 SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5,
                        $6 || '/v' || (COALESCE(MAX(version), 0) + 1), $7
                 FROM versions WHERE kind = $1 AND owner = $2
                 ON CONFLICT DO NOTHING
                 RETURNING version",
            )
            .bind(kind.as_str())
            .bind(owner)
            .bind(VersionStatus::Creating.as_str())
            .bind(run_id)
            .bind(step_id)
            .bind(location_prefix.trim_end_matches('/'))
            .bind(ts(Utc::now()))
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                return Ok(row.try_get("version")?);
            }
        }
    }

    async fn activate_version(
        &self,
        kind: VersionKind,
        owner: &str,
        version: i64,
        manifest: &serde_json::Value,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE versions SET status = $1, manifest = $2, finished_at = $3
             WHERE kind = $4 AND owner = $5 AND version = $6",
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
            "UPDATE versions SET status = $1, error = $2, finished_at = $3
             WHERE kind = $4 AND owner = $5 AND version = $6",
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
            sqlx::query("SELECT * FROM versions WHERE kind = $1 AND owner = $2 AND version = $3")
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
            "SELECT * FROM versions WHERE kind = $1 AND owner = $2 AND status = 'active'
             ORDER BY version DESC LIMIT 1",
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
            "SELECT * FROM versions WHERE kind = $1 AND ($2 IS NULL OR owner = $2)
             ORDER BY owner, version DESC",
        )
        .bind(kind.as_str())
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
        let mut tx = self.pool.begin().await?;
        // The upsert reads the version it replaces as it locks the row, so
        // concurrent deploys each get the one they replaced: NULL for a new
        // campaign, the old `solution_version` otherwise.
        let previous: Option<i64> = sqlx::query(
            "INSERT INTO campaigns (name, dataset_group, solution, solution_version, previous_version,
               config, created_at, updated_at)
             VALUES ($1, $2, $3, $4, NULL, $5, $6, $6)
             ON CONFLICT (name) DO UPDATE SET dataset_group = excluded.dataset_group,
               solution = excluded.solution, previous_version = campaigns.solution_version,
               solution_version = excluded.solution_version, config = excluded.config,
               updated_at = excluded.updated_at
             RETURNING previous_version",
        )
        .bind(name)
        .bind(dataset_group)
        .bind(solution)
        .bind(version)
        .bind(config.to_string())
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("previous_version")?;
        sqlx::query(
            "INSERT INTO deployments (campaign, solution, solution_version, run_id, deployed_at)
             VALUES ($1, $2, $3, $4, $5)",
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
        let row = sqlx::query("SELECT * FROM campaigns WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found_campaign(name))?;
        campaign_row(&row)
    }

    async fn set_campaign_version(&self, name: &str, version: i64) -> StoreResult<CampaignRecord> {
        let now = ts(Utc::now());
        let mut tx = self.pool.begin().await?;
        // One UPDATE moves the pointer and keeps the version it replaced
        // (`SET` reads the row as it was), so concurrent moves cannot record
        // the same previous version.
        let row = sqlx::query(
            "UPDATE campaigns SET previous_version = solution_version, solution_version = $1,
               updated_at = $2
             WHERE name = $3 RETURNING *",
        )
        .bind(version)
        .bind(&now)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| not_found_campaign(name))?;
        let campaign = campaign_row(&row)?;
        sqlx::query(
            "INSERT INTO deployments (campaign, solution, solution_version, run_id, deployed_at)
             VALUES ($1, $2, $3, NULL, $4)",
        )
        .bind(name)
        .bind(&campaign.solution)
        .bind(version)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(campaign)
    }

    async fn event_tracker(&self, dataset_group: &str) -> StoreResult<String> {
        let fresh = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO event_trackers (tracking_id, dataset_group, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (dataset_group) DO NOTHING",
        )
        .bind(&fresh)
        .bind(dataset_group)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query("SELECT tracking_id FROM event_trackers WHERE dataset_group = $1")
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
            "INSERT INTO event_trackers (tracking_id, dataset_group, created_at) VALUES ($1, $2, $3)
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
            sqlx::query("SELECT dataset_group FROM event_trackers WHERE tracking_id = $1")
                .bind(tracking_id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("dataset_group"))
                .transpose()?,
        )
    }

    async fn insert_events(&self, events: &[EventRecord]) -> StoreResult<()> {
        let now = ts(Utc::now());
        let mut tx = self.pool.begin().await?;
        for e in events {
            sqlx::query(
                "INSERT INTO events (dataset_group, user_id, session_id, event_type, item_id, event_value,
                   sent_at, recommendation_id, impression, properties, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
            "SELECT * FROM events WHERE dataset_group = $1 AND id > $2 ORDER BY id LIMIT $3",
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
        let mut tx = self.pool.begin().await?;
        for (id, properties) in records {
            sqlx::query(
                "INSERT INTO put_records (dataset_group, dataset_type, record_id, properties, received_at)
                 VALUES ($1, $2, $3, $4, $5)
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
            "SELECT record_id, properties FROM put_records
             WHERE dataset_group = $1 AND dataset_type = $2 ORDER BY record_id",
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
        let rows = sqlx::query("SELECT spec FROM pipelines WHERE dataset_group = $1 ORDER BY name")
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
        let rows = sqlx::query("SELECT * FROM deployments WHERE campaign = $1 ORDER BY id DESC")
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
    use std::collections::HashSet;
    use std::sync::Arc;

    use sqlx::{Connection, Executor, PgConnection};

    use super::*;

    /// Runs `test` with the URL of a new, empty database on the server named
    /// by `RECFLOW_TEST_POSTGRES_URL` (scripts/test starts one), and drops
    /// the database afterwards, also when the test fails.
    async fn with_fresh_database<F, Fut>(test: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Ok(base) = std::env::var("RECFLOW_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "RECFLOW_TEST_POSTGRES_URL is not set; in CI, scripts/test provides it"
            );
            eprintln!(
                "skipped: RECFLOW_TEST_POSTGRES_URL is not set (scripts/test starts PostgreSQL and sets it)"
            );
            return;
        };
        let name = format!("recflow_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", redact(&base)));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path(&name);
        // In a task of its own, so that a panic comes back here as an error.
        let outcome = tokio::spawn(test(url.to_string())).await;
        admin
            .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
            .await
            .unwrap();
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    #[tokio::test]
    async fn shared_store_suite_on_postgres() {
        with_fresh_database(|url| async move {
            let store = PostgresStore::open(&url).await.unwrap();
            super::super::suite::run_all(&store).await;
        })
        .await;
    }

    /// What the shared suite does not cover, where PostgreSQL's SQL differs
    /// from SQLite's: URLs, versions, campaigns, events and records.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn versions_campaigns_events_and_urls_on_postgres() {
        with_fresh_database(|url| async move {
            // A password shows neither in describe() nor in an error.
            let mut with_password = url::Url::parse(&url).unwrap();
            with_password.set_password(Some("secret")).unwrap();
            let s = Arc::new(PostgresStore::open(with_password.as_str()).await.unwrap());
            assert!(s.describe().contains(":****@"), "{}", s.describe());
            with_password.set_path("recflow_no_such_database");
            let err = PostgresStore::open(with_password.as_str())
                .await
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("recflow_no_such_database") && !err.contains("secret"),
                "{err}"
            );

            // Two writers at once never share a version number.
            let k = VersionKind::Dataset;
            let other = Arc::new(PostgresStore::open(&url).await.unwrap());
            let writers = [s.clone(), other].map(|store| {
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..20 {
                        got.push(
                            store
                                .create_version(
                                    k,
                                    "g/interactions",
                                    Some(1),
                                    Some("import"),
                                    "w/d/",
                                )
                                .await
                                .unwrap(),
                        );
                    }
                    got
                })
            });
            let mut numbers = Vec::new();
            for w in writers {
                numbers.extend(w.await.unwrap());
            }
            numbers.sort();
            assert_eq!(numbers, (1..=40).collect::<Vec<i64>>());
            s.activate_version(k, "g/interactions", 39, &serde_json::json!({"rows": 5}))
                .await
                .unwrap();
            s.fail_version(k, "g/interactions", 40, "boom")
                .await
                .unwrap();
            let latest = s
                .latest_active_version(k, "g/interactions")
                .await
                .unwrap()
                .unwrap();
            assert_eq!((latest.version, latest.location.as_str()), (39, "w/d/v39"));
            assert_eq!(latest.manifest.unwrap()["rows"], 5);
            let v40 = s.get_version(k, "g/interactions", 40).await.unwrap();
            assert_eq!(
                (v40.status, v40.error.as_deref()),
                (VersionStatus::Failed, Some("boom"))
            );
            assert_eq!(s.list_versions(k, None).await.unwrap().len(), 40);

            // Deploys and rollbacks remember the version they replaced.
            let cfg = serde_json::json!({"minProvisionedTPS": 1});
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
            let c = s.set_campaign_version("c", 1).await.unwrap();
            assert_eq!((c.solution_version, c.previous_version), (1, Some(2)));
            assert_eq!(c.config, cfg);
            let deployed: Vec<i64> = s
                .list_deployments("c")
                .await
                .unwrap()
                .iter()
                .map(|d| d.solution_version)
                .collect();
            assert_eq!(deployed, [1, 2, 1]);
            assert!(matches!(
                s.set_campaign_version("nope", 1).await,
                Err(StoreError::NotFound { .. })
            ));

            // Trackers, events and records.
            let tracker = s.event_tracker("g").await.unwrap();
            assert_eq!(
                s.tracker_group(&tracker).await.unwrap().as_deref(),
                Some("g")
            );
            let event = |session: &str| EventRecord {
                id: 0,
                dataset_group: "g".into(),
                user_id: Some("u".into()),
                session_id: session.into(),
                event_type: "click".into(),
                item_id: Some("i".into()),
                event_value: Some(0.5),
                sent_at: 1_700_000_000,
                recommendation_id: None,
                impression: Some("a|b".into()),
                properties: Some("{}".into()),
            };
            s.insert_events(&[event("s1"), event("s2")]).await.unwrap();
            let events = all_events(&*s, "g", 0).await.unwrap();
            assert_eq!(events.len(), 2);
            assert_eq!(
                events[1],
                EventRecord {
                    id: events[1].id,
                    ..event("s2")
                }
            );
            for properties in [r#"{"a":1}"#, r#"{"a":2}"#] {
                s.put_records("g", "ITEMS", &[("i1".into(), properties.into())])
                    .await
                    .unwrap();
            }
            assert_eq!(
                s.list_put_records("g", "ITEMS").await.unwrap(),
                [("i1".to_string(), r#"{"a":2}"#.to_string())]
            );

            // Pipelines, and runs listed with and without a filter.
            s.upsert_pipeline("p", "g", "p.yaml", "name: p")
                .await
                .unwrap();
            assert_eq!(s.pipeline_sources("g").await.unwrap(), ["name: p"]);
            assert!(s.list_runs(None, 10).await.unwrap().is_empty());
            assert!(s.list_runs(Some("p"), 10).await.unwrap().is_empty());
        })
        .await;
    }

    /// Queues `attempts` attempts of a new running run that may run
    /// `parallel` of them at once.
    async fn running_run(s: &PostgresStore, attempts: usize, parallel: i64) -> i64 {
        let now = Utc::now();
        let run = s
            .create_run(&NewRun {
                pipeline: "race".into(),
                trigger: "api".into(),
                spec: "name: race".into(),
                file: "race.yaml".into(),
                params: serde_json::json!({}),
                logical_date: now,
                data_interval: (now, now),
                max_parallel_steps: parallel,
                status: RunStatus::Queued,
                error: None,
            })
            .await
            .unwrap()
            .unwrap();
        for i in 0..attempts {
            s.queue_attempt(run, &format!("s{i}"), "noop", 1, now)
                .await
                .unwrap();
        }
        assert!(s.start_run(run, None).await.unwrap());
        run
    }

    /// Two workers, each with a pool of its own, claim (and never finish)
    /// attempts at the same time until none is left for them; returns the
    /// ids each one got.
    async fn race(stores: &[Arc<PostgresStore>; 2]) -> [Vec<i64>; 2] {
        let workers = stores.clone().map(|store| {
            tokio::spawn(async move {
                let mut ids = Vec::new();
                while let Some(a) = store.claim_attempt("w", None).await.unwrap() {
                    ids.push(a.id);
                }
                ids
            })
        });
        let [a, b] = workers;
        [a.await.unwrap(), b.await.unwrap()]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claims_take_each_attempt_once_within_max_parallel_steps() {
        with_fresh_database(|url| async move {
            let stores = [
                Arc::new(PostgresStore::open(&url).await.unwrap()),
                Arc::new(PostgresStore::open(&url).await.unwrap()),
            ];

            let wide = running_run(&stores[0], 50, 50).await;
            let [a, b] = race(&stores).await;
            let claimed: HashSet<i64> = a.iter().chain(&b).copied().collect();
            assert_eq!(
                claimed.len(),
                a.len() + b.len(),
                "claimed twice: {a:?} {b:?}"
            );
            let queued: HashSet<i64> = stores[0]
                .list_attempts(wide)
                .await
                .unwrap()
                .iter()
                .map(|x| x.id)
                .collect();
            assert_eq!(claimed, queued, "every attempt is claimed");

            // Narrow runs: the two workers together start only 3 of each. (A
            // few runs, as an overshoot needs both to count at once.)
            for _ in 0..10 {
                let narrow = running_run(&stores[0], 20, 3).await;
                let [a, b] = race(&stores).await;
                assert_eq!(a.len() + b.len(), 3, "{a:?} {b:?}");
                let attempts = stores[0].list_attempts(narrow).await.unwrap();
                let running = attempts
                    .iter()
                    .filter(|x| x.status == StepStatus::Running)
                    .count();
                assert_eq!(running, 3);
            }
        })
        .await;
    }
}
