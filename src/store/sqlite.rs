//! The embedded state store: one SQLite file in WAL mode, migrated on open.
//! Its queries are the shared ones (`sql.rs`); here is how SQLite's SQL
//! differs, and how a database is opened.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use super::sql::{Dialect, SqlQuery, SqlStore};
use super::*;

pub(crate) type SqliteStore = SqlStore<Sqlite>;

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
}

impl Dialect for Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const SKIP_LOCKED: &'static str = "";
    const LOCK_SHARE: &'static str = "";

    /// A list is bound as one JSON array and read back with `json_each`, so
    /// that a statement's text does not depend on the list's length: sqlx
    /// prepares and caches it once.
    fn in_list(column: &str, n: usize) -> String {
        format!("{column} IN (SELECT value FROM json_each(${n}))")
    }

    fn bind_ids<'q>(query: SqlQuery<'q, Self>, ids: &[i64]) -> SqlQuery<'q, Self> {
        query.bind(serde_json::json!(ids).to_string())
    }

    fn bind_texts<'q>(query: SqlQuery<'q, Self>, texts: Vec<String>) -> SqlQuery<'q, Self> {
        query.bind(serde_json::json!(texts).to_string())
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn claim_attempt(
        store: &SqliteStore,
        worker: &str,
        run_id: Option<i64>,
    ) -> StoreResult<Option<AttemptRecord>> {
        // One statement: SQLite runs it under the database's write lock, so
        // the choice and the claim cannot interleave with another claimer.
        SqliteStore::claim_ready(&store.pool, &ts(Utc::now()), worker, run_id).await
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

#[cfg(test)]
mod tests {
    use super::super::rows::Columns;
    use super::super::sql::run_list_sql;
    use super::*;

    /// Each shape of run list is answered from an index, not by reading
    /// every run (measured in `suite.rs`, `measure_run_lists`). SQLite plans
    /// without statistics (the store never runs ANALYZE), so the plan on an
    /// empty database is the plan on a big one.
    #[tokio::test]
    async fn run_lists_are_answered_from_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/state.db", dir.path().display());
        let s = SqliteStore::open(&url).await.unwrap();
        let newest = || RunQuery::newest(25);
        let t = Utc::now();
        let shapes = [
            (newest(), vec!["SCAN runs"]),
            (
                RunQuery {
                    before_id: Some(100),
                    ..newest()
                },
                vec!["SEARCH runs USING INTEGER PRIMARY KEY (rowid<?)"],
            ),
            (
                RunQuery {
                    pipeline: Some("p".into()),
                    before_id: Some(100),
                    ..newest()
                },
                vec!["SEARCH runs USING INDEX runs_by_pipeline (pipeline=? AND id<?)"],
            ),
            (
                RunQuery {
                    statuses: vec![RunStatus::Failed, RunStatus::Cancelled],
                    ..newest()
                },
                vec!["SEARCH runs USING INDEX runs_by_status (status=?)"],
            ),
            (
                RunQuery {
                    created_after: Some(t),
                    ..newest()
                },
                vec![
                    "SEARCH runs USING INTEGER PRIMARY KEY (rowid>?)",
                    "SEARCH runs USING COVERING INDEX runs_by_created (created_at>?)",
                ],
            ),
            (
                RunQuery {
                    created_after: Some(t),
                    created_before: Some(t),
                    ..newest()
                },
                vec![
                    "SEARCH runs USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
                    "SEARCH runs USING COVERING INDEX runs_by_created (created_at>?)",
                    "SEARCH runs USING COVERING INDEX runs_by_created (created_at<?)",
                ],
            ),
        ];
        for (query, expected) in shapes {
            let (sql, _) = run_list_sql::<Sqlite>(&query);
            let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(&s.pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.text("detail").unwrap())
                .collect();
            for line in expected {
                assert!(
                    plan.iter().any(|l| l == line),
                    "{query:?}\n{sql}\n{plan:#?}"
                );
            }
        }
    }
}
