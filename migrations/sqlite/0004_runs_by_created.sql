-- Runs listed by the time they were created (the console's time window).
CREATE INDEX runs_by_created ON runs (created_at);
