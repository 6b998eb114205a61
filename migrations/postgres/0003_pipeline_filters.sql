-- Pipelines an operator pauses, and the filters of a dataset group as its
-- pipelines declare them. (SQLite: 0005_pipeline_filters.sql.)

-- True when an operator paused the pipeline's schedule.
ALTER TABLE pipelines ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;

-- A filter's name is unique in its dataset group, and the filter belongs to
-- the pipeline that declares it: registering the pipeline replaces its
-- filters.
CREATE TABLE filters (
    dataset_group TEXT NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    expression    TEXT NOT NULL,
    pipeline      TEXT COLLATE "C" NOT NULL REFERENCES pipelines (name),
    updated_at    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (dataset_group, name)
);
CREATE INDEX filters_by_pipeline ON filters (pipeline);
