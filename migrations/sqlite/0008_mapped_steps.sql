-- Mapped steps (`for_each:`): a step runs once per element of a list, each
-- instance with its own attempts. `map_index` numbers the instance (-1 for a
-- step that is not mapped, and for the record of a mapped step that did not
-- expand); `map_item` is the instance's element, as JSON. (PostgreSQL:
-- 0004_mapped_steps.sql.)
--
-- The unique key gains map_index, so step_attempts is rebuilt.
CREATE TABLE step_attempts_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    step_id      TEXT NOT NULL,
    step_type    TEXT NOT NULL,
    map_index    INTEGER NOT NULL DEFAULT -1,
    map_item     TEXT,
    attempt      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    queued_at    TEXT NOT NULL,
    -- A retry waits until then.
    not_before   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    worker       TEXT,
    heartbeat_at TEXT,
    -- 1 when the attempt ended because its worker stopped (crash, shutdown):
    -- such an attempt is retried whatever the step's retry policy says.
    interrupted  INTEGER NOT NULL DEFAULT 0,
    summary      TEXT,
    outputs      TEXT NOT NULL DEFAULT '{}',
    error        TEXT,
    log          TEXT NOT NULL DEFAULT '',
    UNIQUE (run_id, step_id, map_index, attempt)
);
INSERT INTO step_attempts_new (id, run_id, step_id, step_type, attempt, status, queued_at,
    not_before, started_at, finished_at, worker, heartbeat_at, interrupted, summary, outputs,
    error, log)
  SELECT id, run_id, step_id, step_type, attempt, status, queued_at, not_before, started_at,
    finished_at, worker, heartbeat_at, interrupted, summary, outputs, error, log
  FROM step_attempts;
DROP TABLE step_attempts;
ALTER TABLE step_attempts_new RENAME TO step_attempts;
CREATE INDEX step_attempts_ready ON step_attempts (status, not_before);
CREATE INDEX step_attempts_by_run ON step_attempts (run_id, step_id);
