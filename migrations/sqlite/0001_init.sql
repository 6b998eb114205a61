-- recflow state, version 1. Timestamps are RFC 3339 UTC text with milliseconds.

CREATE TABLE pipelines (
    name          TEXT PRIMARY KEY,
    dataset_group TEXT NOT NULL,
    file          TEXT NOT NULL,
    spec          TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline    TEXT NOT NULL,
    status      TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    error       TEXT
);
CREATE INDEX runs_by_pipeline ON runs (pipeline, id);

CREATE TABLE step_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    step_id     TEXT NOT NULL,
    step_type   TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    summary     TEXT,
    outputs     TEXT NOT NULL DEFAULT '{}',
    error       TEXT,
    log         TEXT NOT NULL DEFAULT '',
    UNIQUE (run_id, step_id, attempt)
);

-- Dataset versions (owner GROUP/TYPE) and solution versions (owner SOLUTION).
CREATE TABLE versions (
    kind        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    run_id      INTEGER,
    step_id     TEXT,
    location    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    manifest    TEXT,
    error       TEXT,
    PRIMARY KEY (kind, owner, version)
);

CREATE TABLE campaigns (
    name             TEXT PRIMARY KEY,
    dataset_group    TEXT NOT NULL,
    solution         TEXT NOT NULL,
    solution_version INTEGER NOT NULL,
    previous_version INTEGER,
    config           TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE deployments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign         TEXT NOT NULL,
    solution         TEXT NOT NULL,
    solution_version INTEGER NOT NULL,
    run_id           INTEGER,
    deployed_at      TEXT NOT NULL
);
