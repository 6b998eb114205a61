//! The state store's one SQL body: every query, written once with `$1, $2, …`
//! placeholders (sqlx binds them by number on SQLite too), for a database with
//! a [`Dialect`], which holds the few places where SQLite's and PostgreSQL's
//! SQL differ. Each query is right both under SQLite's single writer and with
//! PostgreSQL's concurrent writers at READ COMMITTED (each statement sees the
//! rows committed before it started); comments say how where it matters.

use std::future::Future;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::rows::{
    Columns, attempt_row, campaign_row, deployment_row, event_row, filter_row, pipeline_row,
    run_row, version_row,
};
use super::*;

pub(super) type Args<'q, DB> = <DB as Database>::Arguments<'q>;
pub(super) type SqlQuery<'q, DB> = Query<'q, DB, Args<'q, DB>>;

/// What differs between SQLite's and PostgreSQL's SQL.
pub(super) trait Dialect: Database {
    /// Begins a transaction that writes. SQLite's must take the write lock at
    /// once (`BEGIN IMMEDIATE`): a deferred one that reads first and writes
    /// later fails with SQLITE_BUSY_SNAPSHOT, without waiting, when another
    /// connection wrote in between.
    const BEGIN_WRITE: &'static str;

    /// Ends the subquery that picks an attempt to claim: a row lock that
    /// passes over rows other transactions hold (nothing on SQLite, where the
    /// claim runs alone).
    const SKIP_LOCKED: &'static str;

    /// Ends a read of rows that must not change until the transaction ends
    /// (PostgreSQL's `FOR SHARE`; nothing on SQLite, whose write transaction
    /// holds the whole database).
    const LOCK_SHARE: &'static str;

    /// A condition: `column` is one of the values of the list bound at `$n`
    /// by [`Dialect::bind_ids`] or [`Dialect::bind_texts`].
    fn in_list(column: &str, n: usize) -> String;

    fn bind_ids<'q>(query: SqlQuery<'q, Self>, ids: &[i64]) -> SqlQuery<'q, Self>;

    fn bind_texts<'q>(query: SqlQuery<'q, Self>, texts: Vec<String>) -> SqlQuery<'q, Self>;

    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// [`RunStore::claim_attempt`]: claims with [`SqlStore::claim_ready`],
    /// in a way that makes two claimers never take the same attempt, nor
    /// together start more than a run's `max_parallel_steps`.
    fn claim_attempt(
        store: &SqlStore<Self>,
        worker: &str,
        run_id: Option<i64>,
    ) -> impl Future<Output = StoreResult<Option<AttemptRecord>>> + Send;
}

/// The state store on a database with a [`Dialect`].
pub(crate) struct SqlStore<DB: Database> {
    pub(super) pool: Pool<DB>,
    /// Where the state lives, any password hidden.
    pub(super) url: String,
}

/// Every column of `runs` but the pipeline text.
const RUN_COLUMNS: &str = "id, pipeline, status, trigger, created_at, started_at, finished_at, \
    error, file, params, logical_date, data_interval_start, data_interval_end, \
    max_parallel_steps, deadline, cancel_requested, trigger_info";

/// An attempt `a` of run `r` that a worker may start at `$1`: queued, due,
/// its run running and not cancelled, and the run below its
/// `max_parallel_steps`.
pub(super) const READY_ATTEMPT: &str = "a.status = 'queued' AND a.not_before <= $1
    AND r.status = 'running' AND NOT r.cancel_requested
    AND (SELECT count(*) FROM step_attempts b
         WHERE b.run_id = a.run_id AND b.status = 'running') < r.max_parallel_steps";

/// Instances of a mapped step written by one INSERT (two bound values
/// each, well below SQLite's 32,766 and PostgreSQL's 65,535 parameters).
const INSTANCES_PER_INSERT: usize = 500;

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

fn not_found_version(kind: VersionKind, owner: &str, version: i64) -> StoreError {
    StoreError::NotFound {
        what: format!("{kind} version {owner} v{version}"),
    }
}

/// A value bound to a query whose conditions are chosen at run time.
pub(super) enum Arg {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
}

/// The query of [`RunStore::list_runs`] and its arguments. It has only the
/// conditions `query` asks for, so that the database answers it from an
/// index (`runs_by_pipeline`, `runs_by_status`, `runs_by_created`, the
/// primary key for the cursor and the order) rather than by reading every
/// run (`sqlite.rs` checks the plans; `suite.rs` measures).
pub(super) fn run_list_sql<DB: Dialect>(query: &RunQuery) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let mut conditions = Vec::new();
    let mut add = |arg: Arg, condition: &dyn Fn(usize) -> String| {
        args.push(arg);
        conditions.push(condition(args.len()));
    };
    if let Some(pipeline) = &query.pipeline {
        add(Arg::Text(pipeline.clone()), &|n| format!("pipeline = ${n}"));
    }
    if !query.statuses.is_empty() {
        let statuses = query.statuses.iter().map(|s| s.to_string()).collect();
        add(Arg::Texts(statuses), &|n| DB::in_list("status", n));
    }
    // A time bound alone leaves the database a poor choice: read the runs
    // newest first by id until enough match (all of them, when few do), or
    // read `runs_by_created` and sort. The id bound beside it is implied by
    // it (no run it selects is lost), and as ids grow with creation time it
    // is tight: the primary key then answers both the range and the order.
    // `+id` in the bound's subquery keeps the database from reading the
    // primary key in order until a run matches (its usual way to a min or
    // max): it reads the bound from `runs_by_created`.
    if let Some(t) = query.created_after {
        add(Arg::Text(ts(t)), &|n| {
            format!(
                "created_at >= ${n} AND id >= (SELECT min(+id) FROM runs WHERE created_at >= ${n})"
            )
        });
    }
    if let Some(t) = query.created_before {
        add(Arg::Text(ts(t)), &|n| {
            format!(
                "created_at < ${n} AND id <= (SELECT max(+id) FROM runs WHERE created_at < ${n})"
            )
        });
    }
    if let Some(id) = query.before_id {
        add(Arg::Int(id), &|n| format!("id < ${n}"));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    args.push(Arg::Int(query.limit));
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs {filter} ORDER BY id DESC LIMIT ${}",
        args.len()
    );
    (sql, args)
}

// Every impl below repeats these bounds: Rust does not carry a trait's
// where-clauses to the code that uses the trait (rust-lang/rust#20671), so
// they cannot be written once on `Dialect`.
impl<DB: Dialect> SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Args<'q, DB>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, DB>> {
        Ok(self.pool.begin_with(DB::BEGIN_WRITE).await?)
    }

    /// Checks, inside a transaction that moves a campaign, that the solution
    /// version it moves to is active, and keeps it so until the move commits.
    /// A prune marks a version `deleting` before it re-reads what campaigns
    /// serve: on SQLite the two transactions run one after the other; on
    /// PostgreSQL the prune's mark waits for this share lock. Either the move
    /// sees the mark and fails, or the prune sees the move and gives the
    /// version back, so a campaign never points at files being deleted.
    async fn served_version_is_active(
        tx: &mut sqlx::Transaction<'static, DB>,
        solution: &str,
        version: i64,
    ) -> StoreResult<()> {
        let row = sqlx::query(&format!(
            "SELECT status FROM versions WHERE kind = 'solution' AND owner = $1 AND version = $2 {}",
            DB::LOCK_SHARE
        ))
        .bind(solution)
        .bind(version)
        .fetch_optional(&mut **tx)
        .await?;
        let what = || format!("solution version {solution} v{version}");
        match row.as_ref().map(|r| r.text("status")).transpose()? {
            Some(status) if status == "active" => Ok(()),
            Some(status) => Err(StoreError::NotActive {
                what: what(),
                status,
            }),
            None => Err(StoreError::NotFound { what: what() }),
        }
    }

    /// Claims for `worker` the oldest attempt ready at `now`: of run
    /// `run_id`, or, without one, of any run not started from the command
    /// line (`recflow run` works its own runs). One statement; see
    /// [`Dialect::claim_attempt`] for what makes a claim safe.
    pub(super) async fn claim_ready<'c>(
        executor: impl Executor<'c, Database = DB>,
        now: &str,
        worker: &str,
        run_id: Option<i64>,
    ) -> StoreResult<Option<AttemptRecord>> {
        let row = sqlx::query(&format!(
            "UPDATE step_attempts SET status = 'running', worker = $2, started_at = $1, heartbeat_at = $1
             WHERE id = (
               SELECT a.id FROM step_attempts a JOIN runs r ON r.id = a.run_id
               WHERE {READY_ATTEMPT}
                 AND ($3 IS NULL AND r.trigger <> 'cli' OR a.run_id = $3)
               ORDER BY a.not_before, a.id LIMIT 1
               {})
               AND status = 'queued'
             RETURNING *",
            DB::SKIP_LOCKED
        ))
        .bind(now)
        .bind(worker)
        .bind(run_id)
        .fetch_optional(executor)
        .await?;
        row.as_ref().map(attempt_row).transpose()
    }

    fn bind(query: SqlQuery<'_, DB>, arg: Arg) -> SqlQuery<'_, DB> {
        match arg {
            Arg::Text(text) => query.bind(text),
            Arg::Texts(texts) => DB::bind_texts(query, texts),
            Arg::Int(int) => query.bind(int),
        }
    }
}

#[async_trait]
impl<DB: Dialect> PipelineStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Args<'q, DB>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    async fn upsert_pipeline(&self, pipeline: &PipelineRegistration) -> StoreResult<()> {
        let now = ts(Utc::now());
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO pipelines (name, dataset_group, file, spec, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET dataset_group = excluded.dataset_group,
               file = excluded.file, spec = excluded.spec, updated_at = excluded.updated_at",
        )
        .bind(pipeline.name.as_str())
        .bind(pipeline.dataset_group.as_str())
        .bind(pipeline.file.as_str())
        .bind(pipeline.spec.as_str())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM filters WHERE pipeline = $1")
            .bind(pipeline.name.as_str())
            .execute(&mut *tx)
            .await?;
        // In name order, so that two registrations declaring the same names
        // wait for each other on PostgreSQL rather than deadlock.
        let mut filters: Vec<_> = pipeline.filters.iter().collect();
        filters.sort();
        for (name, expression) in filters {
            loop {
                let inserted = sqlx::query(
                    "INSERT INTO filters (dataset_group, name, expression, pipeline, updated_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (dataset_group, name) DO NOTHING RETURNING name",
                )
                .bind(pipeline.dataset_group.as_str())
                .bind(name.as_str())
                .bind(expression.as_str())
                .bind(pipeline.name.as_str())
                .bind(&now)
                .fetch_optional(&mut *tx)
                .await?;
                if inserted.is_some() {
                    break;
                }
                let other = sqlx::query(
                    "SELECT pipeline FROM filters WHERE dataset_group = $1 AND name = $2",
                )
                .bind(pipeline.dataset_group.as_str())
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(other) = other {
                    // Dropping `tx` rolls the pipeline's row back too.
                    return Err(StoreError::FilterConflict {
                        dataset_group: pipeline.dataset_group.clone(),
                        filter: name.clone(),
                        pipeline: pipeline.name.clone(),
                        other: other.text("pipeline")?,
                    });
                }
                // Its pipeline dropped it since our insert looked (only on
                // PostgreSQL): insert again.
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_pipelines(&self) -> StoreResult<Vec<PipelineRecord>> {
        let rows = sqlx::query(
            "SELECT name, dataset_group, file, updated_at, paused FROM pipelines ORDER BY name",
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
        row.map(|r| Ok((pipeline_row(&r)?, r.text("spec")?)))
            .transpose()
    }

    async fn set_pipeline_paused(&self, name: &str, paused: bool) -> StoreResult<PipelineRecord> {
        let row = sqlx::query(
            "UPDATE pipelines SET paused = $1 WHERE name = $2
             RETURNING name, dataset_group, file, updated_at, paused",
        )
        .bind(paused)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("pipeline {name:?}"),
        })?;
        pipeline_row(&row)
    }

    async fn group_filters(&self, dataset_group: &str) -> StoreResult<Vec<FilterRecord>> {
        let rows = sqlx::query("SELECT * FROM filters WHERE dataset_group = $1 ORDER BY name")
            .bind(dataset_group)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(filter_row).collect()
    }
}

#[async_trait]
impl<DB: Dialect> RunStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Args<'q, DB>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    async fn create_run(&self, run: &NewRun) -> StoreResult<Option<i64>> {
        let now = ts(Utc::now());
        let finished = run.status.is_finished().then_some(now.as_str());
        // No conflict target: the only unique index a new run can hit is
        // `runs_scheduled_once`; on PostgreSQL a concurrent insert of the
        // same scheduled time waits for the first to commit, then inserts
        // nothing.
        let row = sqlx::query(
            "INSERT INTO runs (pipeline, status, trigger, created_at, finished_at, error, spec, file,
               params, logical_date, data_interval_start, data_interval_end, max_parallel_steps,
               trigger_info, trigger_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(run.pipeline.as_str())
        .bind(run.status.as_str())
        .bind(run.trigger.as_str())
        .bind(now.as_str())
        .bind(finished)
        .bind(run.error.as_deref())
        .bind(run.spec.as_str())
        .bind(run.file.as_str())
        .bind(run.params.to_string())
        .bind(ts(run.logical_date))
        .bind(ts(run.data_interval.0))
        .bind(ts(run.data_interval.1))
        .bind(run.max_parallel_steps)
        .bind(run.trigger_info.as_ref().map(|v| v.to_string()))
        .bind(run.trigger_key.as_deref())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.int("id")).transpose()
    }

    async fn run_spec(&self, run_id: i64) -> StoreResult<(String, String)> {
        let row = sqlx::query("SELECT spec, file FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found_run(run_id))?;
        match (row.opt_text("spec")?, row.opt_text("file")?) {
            (Some(spec), Some(file)) => Ok((spec, file)),
            _ => Err(StoreError::Corrupt(format!(
                "run {run_id} predates orchestration and has no pipeline text"
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
        Ok(DB::rows_affected(&result) == 1)
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
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn request_cancel(&self, run_id: i64) -> StoreResult<RunRecord> {
        sqlx::query("UPDATE runs SET cancel_requested = TRUE WHERE id = $1")
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        self.get_run(run_id).await
    }

    async fn reopen_run(&self, run_id: i64) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "UPDATE runs SET status = 'running', finished_at = NULL, error = NULL,
               cancel_requested = FALSE, deadline = NULL WHERE id = $1",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&result) == 0 {
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

    async fn list_runs(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>> {
        let (sql, args) = run_list_sql::<DB>(query);
        let rows = args
            .into_iter()
            .fold(sqlx::query(&sql), Self::bind)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_row).collect()
    }

    async fn runs_with_status(&self, statuses: &[RunStatus]) -> StoreResult<Vec<RunRecord>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {} ORDER BY id",
            DB::in_list("status", 1)
        );
        let statuses = statuses.iter().map(|s| s.to_string()).collect();
        let rows = DB::bind_texts(sqlx::query(&sql), statuses)
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
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn queue_instances(
        &self,
        run_id: i64,
        step_id: &str,
        step_type: &str,
        attempt: i64,
        not_before: DateTime<Utc>,
        instances: &[(i64, serde_json::Value)],
    ) -> StoreResult<u64> {
        let now = ts(Utc::now());
        let not_before = ts(not_before);
        let mut tx = self.write_tx().await?;
        let mut added = 0;
        // Rows in batches: one statement per instance would make a
        // 10,000-wide expansion slow on PostgreSQL.
        for chunk in instances.chunks(INSTANCES_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let n = 7 + 2 * i;
                    format!("($1, $2, $3, $4, 'queued', $5, $6, ${n}, ${})", n + 1)
                })
                .collect();
            let sql = format!(
                "INSERT INTO step_attempts (run_id, step_id, step_type, attempt, status, queued_at,
                   not_before, map_index, map_item)
                 VALUES {} ON CONFLICT DO NOTHING",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql)
                .bind(run_id)
                .bind(step_id)
                .bind(step_type)
                .bind(attempt)
                .bind(&now)
                .bind(&not_before);
            for (index, item) in chunk {
                query = query.bind(*index).bind(item.to_string());
            }
            added += DB::rows_affected(&query.execute(&mut *tx).await?);
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn claim_attempt(
        &self,
        worker: &str,
        run_id: Option<i64>,
    ) -> StoreResult<Option<AttemptRecord>> {
        DB::claim_attempt(self, worker, run_id).await
    }

    async fn heartbeat(&self, worker: &str, attempt_ids: &[i64]) -> StoreResult<Vec<i64>> {
        if attempt_ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = ts(Utc::now());
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "UPDATE step_attempts SET heartbeat_at = $1
             WHERE {} AND worker = $2 AND status = 'running'",
            DB::in_list("id", 3)
        );
        DB::bind_ids(sqlx::query(&sql).bind(&now).bind(worker), attempt_ids)
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "SELECT a.id FROM step_attempts a JOIN runs r ON r.id = a.run_id
             WHERE {} AND (a.status <> 'running' OR a.worker IS DISTINCT FROM $2
               OR r.cancel_requested OR r.status <> 'running' OR r.deadline < $1)
             ORDER BY a.id",
            DB::in_list("a.id", 3)
        );
        let rows = DB::bind_ids(sqlx::query(&sql).bind(&now).bind(worker), attempt_ids)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(|r| r.int("id")).collect()
    }

    async fn append_attempt_log(&self, attempt_id: i64, chunk: &str) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE step_attempts SET log = log || $1 WHERE id = $2 AND status = 'running'",
        )
        .bind(chunk)
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&result) == 1)
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
               error = $5, log = log || $6, interrupted = $7
             WHERE id = $8 AND status IN ('queued', 'running')",
        )
        .bind(status.as_str())
        .bind(ts(Utc::now()))
        .bind(end.summary.as_deref())
        .bind(end.outputs.to_string())
        .bind(end.error.as_deref())
        .bind(end.log.as_str())
        .bind(interrupted)
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn skip_step(
        &self,
        run_id: i64,
        step_id: &str,
        step_type: &str,
        status: StepStatus,
        reason: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO step_attempts (run_id, step_id, step_type, attempt, status, queued_at,
               not_before, finished_at, summary)
             VALUES ($1, $2, $3, 0, $4, $5, $5, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(step_id)
        .bind(step_type)
        .bind(status.as_str())
        .bind(ts(Utc::now()))
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
        self.list_attempts_of_runs(&[run_id]).await
    }

    async fn list_attempts_of_runs(&self, run_ids: &[i64]) -> StoreResult<Vec<AttemptRecord>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM step_attempts WHERE {} ORDER BY run_id, id",
            DB::in_list("run_id", 1)
        );
        let rows = DB::bind_ids(sqlx::query(&sql), run_ids)
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

    async fn record_sla_miss(
        &self,
        run_id: i64,
        step_id: Option<&str>,
        sla: &str,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "INSERT INTO sla_misses (run_id, step_id, sla, missed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (run_id, step_id) DO NOTHING",
        )
        .bind(run_id)
        .bind(step_id.unwrap_or(""))
        .bind(sla)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn list_sla_misses(&self, run_id: i64) -> StoreResult<Vec<SlaMiss>> {
        let rows = sqlx::query(
            "SELECT run_id, step_id, sla, missed_at FROM sla_misses WHERE run_id = $1 ORDER BY step_id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let step = r.text("step_id")?;
                Ok(SlaMiss {
                    run_id: r.int("run_id")?,
                    step_id: (!step.is_empty()).then_some(step),
                    sla: r.text("sla")?,
                    missed_at: r.time("missed_at")?,
                })
            })
            .collect()
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<bool> {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        // One atomic upsert: on PostgreSQL a concurrent taker of a new lease
        // waits for the first insert and then sees it as the row in conflict.
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
        Ok(DB::rows_affected(&result) == 1)
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
        row.map(|r| r.time("fired_up_to")).transpose()
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

    async fn trigger_cursor(&self, name: &str) -> StoreResult<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT cursor FROM trigger_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.json("cursor")).transpose()?.flatten())
    }

    async fn set_trigger_cursor(&self, name: &str, cursor: &serde_json::Value) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO trigger_cursors (name, cursor) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor",
        )
        .bind(name)
        .bind(cursor.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB: Dialect> VersionStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Args<'q, DB>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    async fn create_version(
        &self,
        kind: VersionKind,
        owner: &str,
        run_id: Option<i64>,
        step_id: Option<&str>,
        location_prefix: &str,
    ) -> StoreResult<i64> {
        // On SQLite the statement runs alone, so the number is free and the
        // loop runs once. On PostgreSQL two writers can read the same
        // MAX(version): neither sees the other's uncommitted row. The primary
        // key settles it: the second insert waits for the first to commit,
        // then inserts nothing, and its writer tries again with a new
        // statement, whose snapshot sees the first one's number. Each retry
        // means another writer got a number, so the loop ends.
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
                return row.int("version");
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
        if DB::rows_affected(&result) == 0 {
            return Err(not_found_version(kind, owner, version));
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
                .ok_or_else(|| not_found_version(kind, owner, version))?;
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

    async fn list_versions(&self, q: &VersionQuery<'_>) -> StoreResult<Vec<VersionRecord>> {
        let (after_owner, after_version) = q.after.unzip();
        let rows = sqlx::query(
            "SELECT * FROM versions WHERE kind = $1 AND ($2 IS NULL OR owner = $2)
               AND ($3 IS NULL OR owner > $3 OR (owner = $3 AND version < $4))
             ORDER BY owner, version DESC LIMIT $5",
        )
        .bind(q.kind.as_str())
        .bind(q.owner)
        .bind(after_owner)
        .bind(after_version)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_row).collect()
    }

    async fn move_version(
        &self,
        kind: VersionKind,
        owner: &str,
        version: i64,
        from: VersionStatus,
        to: VersionStatus,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE versions SET status = $1
             WHERE kind = $2 AND owner = $3 AND version = $4 AND status = $5",
        )
        .bind(to.as_str())
        .bind(kind.as_str())
        .bind(owner)
        .bind(version)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&result) == 1)
    }
}

#[async_trait]

impl<DB: Dialect> CampaignStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Args<'q, DB>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
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
        Self::served_version_is_active(&mut tx, solution, version).await?;
        // The upsert reads the version it replaces as it writes the row
        // (`SET` sees the row as it was; PostgreSQL locks it first), so
        // concurrent deploys each get the one they replaced: NULL for a new
        // campaign, the old `solution_version` otherwise.
        let previous = sqlx::query(
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
        .opt_int("previous_version")?;
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
        let mut tx = self.write_tx().await?;
        let solution = sqlx::query("SELECT solution FROM campaigns WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| not_found_campaign(name))?
            .text("solution")?;
        Self::served_version_is_active(&mut tx, &solution, version).await?;
        // The version replaced is read by the UPDATE that replaces it, inside
        // the write transaction: `SET` sees the row as it was, SQLite's write
        // lock is held from the transaction's start, and PostgreSQL makes a
        // concurrent move wait for this row's lock and then re-reads the row.
        // So `previous_version` is always the version current when this move
        // commits, and the deployments are recorded in the order of the moves.
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
        .bind(campaign.solution.as_str())
        .bind(version)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(campaign)
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
        rows.iter().map(deployment_row).collect()
    }
}

#[async_trait]
impl<DB: Dialect> EventStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Args<'q, DB>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    async fn event_tracker(&self, dataset_group: &str) -> StoreResult<String> {
        let fresh = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO event_trackers (tracking_id, dataset_group, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (dataset_group) DO NOTHING",
        )
        .bind(fresh)
        .bind(dataset_group)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        sqlx::query("SELECT tracking_id FROM event_trackers WHERE dataset_group = $1")
            .bind(dataset_group)
            .fetch_one(&self.pool)
            .await?
            .text("tracking_id")
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
        sqlx::query("SELECT dataset_group FROM event_trackers WHERE tracking_id = $1")
            .bind(tracking_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.text("dataset_group"))
            .transpose()
    }

    async fn insert_events(&self, events: &[EventRecord]) -> StoreResult<()> {
        let now = ts(Utc::now());
        let mut tx = self.write_tx().await?;
        for e in events {
            sqlx::query(
                "INSERT INTO events (dataset_group, user_id, session_id, event_type, item_id, event_value,
                   sent_at, recommendation_id, impression, properties, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(e.dataset_group.as_str())
            .bind(e.user_id.as_deref())
            .bind(e.session_id.as_str())
            .bind(e.event_type.as_str())
            .bind(e.item_id.as_deref())
            .bind(e.event_value)
            .bind(e.sent_at)
            .bind(e.recommendation_id.as_deref())
            .bind(e.impression.as_deref())
            .bind(e.properties.as_deref())
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
        rows.iter().map(event_row).collect()
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
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (dataset_group, dataset_type, record_id) DO UPDATE SET
                   properties = excluded.properties, received_at = excluded.received_at",
            )
            .bind(dataset_group)
            .bind(dataset_type)
            .bind(id.as_str())
            .bind(properties.as_str())
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
            .map(|r| Ok((r.text("record_id")?, r.text("properties")?)))
            .collect()
    }
}

impl<DB: Dialect> StateStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Args<'q, DB>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    fn describe(&self) -> String {
        self.url.clone()
    }
}
