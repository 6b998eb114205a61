-- Mapped steps (`for_each:`): a step runs once per element of a list, each
-- instance with its own attempts. `map_index` numbers the instance (-1 for a
-- step that is not mapped, and for the record of a mapped step that did not
-- expand); `map_item` is the instance's element, as JSON. (SQLite:
-- 0006_mapped_steps.sql.)
ALTER TABLE step_attempts ADD COLUMN map_index BIGINT NOT NULL DEFAULT -1;
ALTER TABLE step_attempts ADD COLUMN map_item TEXT;
ALTER TABLE step_attempts DROP CONSTRAINT step_attempts_run_id_step_id_attempt_key;
ALTER TABLE step_attempts ADD CONSTRAINT step_attempts_run_step_instance_attempt_key
    UNIQUE (run_id, step_id, map_index, attempt);
