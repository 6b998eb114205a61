-- Real-time data: event trackers, events (PutEvents), items and users
-- (PutItems, PutUsers), kept for the live server and the next training.

CREATE TABLE event_trackers (
    tracking_id   TEXT PRIMARY KEY,
    dataset_group TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL
);

CREATE TABLE events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_group     TEXT NOT NULL,
    user_id           TEXT,
    session_id        TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    item_id           TEXT,
    event_value       REAL,
    sent_at           INTEGER NOT NULL,
    recommendation_id TEXT,
    impression        TEXT,
    properties        TEXT,
    received_at       TEXT NOT NULL
);
CREATE INDEX events_by_group ON events (dataset_group, id);

-- PutItems / PutUsers: the latest properties per id.
CREATE TABLE put_records (
    dataset_group TEXT NOT NULL,
    dataset_type  TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    properties    TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    PRIMARY KEY (dataset_group, dataset_type, record_id)
);
