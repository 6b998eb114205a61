//! The state store on PostgreSQL, for several nodes sharing one state: the
//! same tables as the SQLite store (timestamps are RFC 3339 text here too)
//! and the same queries (`sql.rs`); here is how PostgreSQL's SQL differs,
//! above all the claim of an attempt, and how a database is opened.
//!
//! Every transaction runs at PostgreSQL's default isolation, READ COMMITTED:
//! each statement sees the rows committed before it started.

use std::str::FromStr;

use chrono::Utc;
use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};

use super::rows::Columns;
use super::sql::{Dialect, READY_ATTEMPT, SqlQuery, SqlStore};
use super::*;

pub(crate) type PostgresStore = SqlStore<Postgres>;

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

impl Dialect for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    /// SKIP LOCKED passes over an attempt that another transaction is ending
    /// (`fail_queued_attempts`) instead of waiting for it.
    const SKIP_LOCKED: &'static str = "FOR UPDATE OF a SKIP LOCKED";
    const LOCK_SHARE: &'static str = "FOR SHARE";

    fn in_list(column: &str, n: usize) -> String {
        format!("{column} = ANY(${n})")
    }

    fn bind_ids<'q>(query: SqlQuery<'q, Self>, ids: &[i64]) -> SqlQuery<'q, Self> {
        query.bind(ids.to_vec())
    }

    fn bind_texts<'q>(query: SqlQuery<'q, Self>, texts: Vec<String>) -> SqlQuery<'q, Self> {
        query.bind(texts)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn claim_attempt(
        store: &PostgresStore,
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
                    .fetch_optional(&store.pool)
                    .await?;
                    match row {
                        Some(row) => row.int("run_id")?,
                        None => return Ok(None),
                    }
                }
            };
            let mut tx = store.pool.begin().await?;
            sqlx::query("SELECT id FROM runs WHERE id = $1 FOR NO KEY UPDATE")
                .bind(run)
                .execute(&mut *tx)
                .await?;
            let claimed = PostgresStore::claim_ready(&mut *tx, &now, worker, Some(run)).await?;
            tx.commit().await?;
            if claimed.is_some() || run_id.is_some() {
                return Ok(claimed);
            }
            // Another claimer filled the run we picked (or took its last
            // ready attempt) between our pick and our lock: pick again, with
            // a snapshot that sees its claim.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::suite::with_fresh_database;
    use super::*;

    /// What the conformance suite (`suite.rs`) cannot see: how a URL with a
    /// password is shown.
    #[tokio::test]
    async fn a_password_shows_neither_in_describe_nor_in_an_error() {
        with_fresh_database(async |url| {
            let mut with_password = url::Url::parse(&url).unwrap();
            with_password.set_password(Some("secret")).unwrap();
            let s = PostgresStore::open(with_password.as_str()).await.unwrap();
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
        })
        .await;
    }
}
