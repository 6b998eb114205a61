-- Runs and steps that went on past their SLA (`sla:` in the pipeline file).
-- One row per run (step_id '') or step: the primary key makes the miss,
-- and the webhook that follows it, happen once however many daemons see it.
-- (SQLite: 0006_sla_misses.sql.)
CREATE TABLE sla_misses (
    run_id    BIGINT NOT NULL REFERENCES runs (id),
    step_id   TEXT COLLATE "C" NOT NULL,
    sla       TEXT NOT NULL,
    missed_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
