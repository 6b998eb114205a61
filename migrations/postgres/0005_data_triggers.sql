-- Runs started by data (`on:` in the pipeline file): what started the run,
-- and a key that makes each event (an object, a dataset version, an
-- upstream run) start one run, however many daemons see it and whether
-- or not one was killed after the run was recorded.
-- (SQLite: 0007_data_triggers.sql.)
ALTER TABLE runs ADD COLUMN trigger_info TEXT;
ALTER TABLE runs ADD COLUMN trigger_key TEXT COLLATE "C";
CREATE UNIQUE INDEX runs_triggered_once ON runs (pipeline, trigger_key) WHERE trigger_key IS NOT NULL;

-- Where each poller of an `on:` trigger is (JSON), so a restarted or
-- another daemon goes on from there.
CREATE TABLE trigger_cursors (
    name   TEXT COLLATE "C" PRIMARY KEY,
    cursor TEXT NOT NULL
);
