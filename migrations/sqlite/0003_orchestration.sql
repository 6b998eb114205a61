-- Orchestration: what a run is for (logical date, data interval, params,
-- the pipeline text it runs), cancellation and deadlines; step attempts
-- that wait in a queue to be claimed by a worker which heartbeats while it
-- runs them; the scheduler's lease and each schedule's cursor.

ALTER TABLE runs ADD COLUMN spec TEXT;
ALTER TABLE runs ADD COLUMN file TEXT;
ALTER TABLE runs ADD COLUMN params TEXT NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN logical_date TEXT;
ALTER TABLE runs ADD COLUMN data_interval_start TEXT;
ALTER TABLE runs ADD COLUMN data_interval_end TEXT;
ALTER TABLE runs ADD COLUMN max_parallel_steps INTEGER NOT NULL DEFAULT 4;
ALTER TABLE runs ADD COLUMN deadline TEXT;
ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
-- A scheduled time fires once, however many schedulers race for it.
CREATE UNIQUE INDEX runs_scheduled_once ON runs (pipeline, logical_date) WHERE trigger = 'schedule';
CREATE INDEX runs_by_status ON runs (status, id);

-- step_attempts is rebuilt: an attempt now waits in a queue before it
-- starts, so started_at may be empty.
CREATE TABLE step_attempts_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    step_id      TEXT NOT NULL,
    step_type    TEXT NOT NULL,
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
    UNIQUE (run_id, step_id, attempt)
);
INSERT INTO step_attempts_new (id, run_id, step_id, step_type, attempt, status, queued_at,
    not_before, started_at, finished_at, summary, outputs, error, log)
  SELECT id, run_id, step_id, step_type, attempt, status, started_at, started_at, started_at,
    finished_at, summary, outputs, error, log FROM step_attempts;
DROP TABLE step_attempts;
ALTER TABLE step_attempts_new RENAME TO step_attempts;
CREATE INDEX step_attempts_ready ON step_attempts (status, not_before);
CREATE INDEX step_attempts_by_run ON step_attempts (run_id, step_id);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE schedule_cursors (
    pipeline   TEXT PRIMARY KEY,
    -- The last scheduled time that was handled (fired, skipped or passed over).
    fired_up_to TEXT NOT NULL
);
