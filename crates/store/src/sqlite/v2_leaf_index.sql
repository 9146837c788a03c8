-- censorwatch SQLite schema, version 2: each measurement's leaf index in the transparency log
-- (censorwatch-evidence). NULL until the measurement's leaf is appended; a measurement stored by
-- version 1 starts unlogged and is appended when the log is next reconciled.
ALTER TABLE measurements ADD COLUMN leaf_index INTEGER;

-- One measurement per leaf.
CREATE UNIQUE INDEX measurements_leaf_index ON measurements (leaf_index) WHERE leaf_index IS NOT NULL;
-- The unlogged ones, in id order (what reconciling the log reads).
CREATE INDEX measurements_unlogged ON measurements (id) WHERE leaf_index IS NULL;
