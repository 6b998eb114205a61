-- recflow state on PostgreSQL: the final schema of migrations/sqlite in one
-- step. Timestamps are RFC 3339 UTC text with milliseconds, as on SQLite, so
-- both stores share their queries' logic. Timestamps and the names that
-- lists are sorted by use the "C" collation: text order is byte order, as on
-- SQLite, whatever the database's locale (and so time order for timestamps).
-- Integers are BIGINT throughout (they are i64 in Rust).

CREATE TABLE pipelines (
    name          TEXT COLLATE "C" PRIMARY KEY,
    dataset_group TEXT NOT NULL,
    file          TEXT NOT NULL,
    spec          TEXT NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL
);

CREATE TABLE runs (
    id                  BIGSERIAL PRIMARY KEY,
    pipeline            TEXT NOT NULL,
    status              TEXT NOT NULL,
    trigger             TEXT NOT NULL,
    created_at          TEXT COLLATE "C" NOT NULL,
    started_at          TEXT COLLATE "C",
    finished_at         TEXT COLLATE "C",
    error               TEXT,
    -- The pipeline text the run executes, and the file it came from.
    spec                TEXT,
    file                TEXT,
    params              TEXT NOT NULL DEFAULT '{}',
    logical_date        TEXT COLLATE "C",
    data_interval_start TEXT COLLATE "C",
    data_interval_end   TEXT COLLATE "C",
    max_parallel_steps  BIGINT NOT NULL DEFAULT 4,
    deadline            TEXT COLLATE "C",
    cancel_requested    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX runs_by_pipeline ON runs (pipeline, id);
CREATE INDEX runs_by_status ON runs (status, id);
-- A scheduled time fires once, however many schedulers race for it.
CREATE UNIQUE INDEX runs_scheduled_once ON runs (pipeline, logical_date) WHERE trigger = 'schedule';

CREATE TABLE step_attempts (
    id           BIGSERIAL PRIMARY KEY,
    run_id       BIGINT NOT NULL REFERENCES runs (id),
    step_id      TEXT NOT NULL,
    step_type    TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    status       TEXT NOT NULL,
    queued_at    TEXT COLLATE "C" NOT NULL,
    -- A retry waits until then.
    not_before   TEXT COLLATE "C" NOT NULL,
    started_at   TEXT COLLATE "C",
    finished_at  TEXT COLLATE "C",
    worker       TEXT,
    heartbeat_at TEXT COLLATE "C",
    -- True when the attempt ended because its worker stopped (crash, shutdown):
    -- such an attempt is retried whatever the step's retry policy says.
    interrupted  BOOLEAN NOT NULL DEFAULT FALSE,
    summary      TEXT,
    outputs      TEXT NOT NULL DEFAULT '{}',
    error        TEXT,
    log          TEXT NOT NULL DEFAULT '',
    UNIQUE (run_id, step_id, attempt)
);
CREATE INDEX step_attempts_ready ON step_attempts (status, not_before);
CREATE INDEX step_attempts_by_run ON step_attempts (run_id, step_id);

-- Dataset versions (owner GROUP/TYPE) and solution versions (owner SOLUTION).
CREATE TABLE versions (
    kind        TEXT NOT NULL,
    owner       TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    status      TEXT NOT NULL,
    run_id      BIGINT,
    step_id     TEXT,
    location    TEXT NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    finished_at TEXT COLLATE "C",
    manifest    TEXT,
    error       TEXT,
    PRIMARY KEY (kind, owner, version)
);

CREATE TABLE campaigns (
    name             TEXT COLLATE "C" PRIMARY KEY,
    dataset_group    TEXT NOT NULL,
    solution         TEXT NOT NULL,
    solution_version BIGINT NOT NULL,
    previous_version BIGINT,
    config           TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT COLLATE "C" NOT NULL,
    updated_at       TEXT COLLATE "C" NOT NULL
);

CREATE TABLE deployments (
    id               BIGSERIAL PRIMARY KEY,
    campaign         TEXT NOT NULL,
    solution         TEXT NOT NULL,
    solution_version BIGINT NOT NULL,
    run_id           BIGINT,
    deployed_at      TEXT COLLATE "C" NOT NULL
);

-- Real-time data: event trackers, events (PutEvents), items and users
-- (PutItems, PutUsers), kept for the live server and the next training.

CREATE TABLE event_trackers (
    tracking_id   TEXT PRIMARY KEY,
    dataset_group TEXT NOT NULL UNIQUE,
    created_at    TEXT COLLATE "C" NOT NULL
);

CREATE TABLE events (
    id                BIGSERIAL PRIMARY KEY,
    dataset_group     TEXT NOT NULL,
    user_id           TEXT,
    session_id        TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    item_id           TEXT,
    event_value       DOUBLE PRECISION,
    -- UNIX seconds.
    sent_at           BIGINT NOT NULL,
    recommendation_id TEXT,
    impression        TEXT,
    properties        TEXT,
    received_at       TEXT COLLATE "C" NOT NULL
);
CREATE INDEX events_by_group ON events (dataset_group, id);

-- PutItems / PutUsers: the latest properties per id.
CREATE TABLE put_records (
    dataset_group TEXT NOT NULL,
    dataset_type  TEXT NOT NULL,
    record_id     TEXT COLLATE "C" NOT NULL,
    properties    TEXT NOT NULL,
    received_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (dataset_group, dataset_type, record_id)
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE schedule_cursors (
    pipeline    TEXT PRIMARY KEY,
    -- The last scheduled time that was handled (fired, skipped or passed over).
    fired_up_to TEXT COLLATE "C" NOT NULL
);
