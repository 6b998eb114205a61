-- Runs and steps that went on past their SLA (`sla:` in the pipeline file).
-- One row per run (step_id '') or step: the primary key makes the miss,
-- and the webhook that follows it, happen once however many daemons see it.
CREATE TABLE sla_misses (
    run_id    INTEGER NOT NULL REFERENCES runs (id),
    step_id   TEXT NOT NULL,
    sla       TEXT NOT NULL,
    missed_at TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
