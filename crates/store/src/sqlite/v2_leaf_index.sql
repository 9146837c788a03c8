-- censorwatch SQLite schema, version 2: each measurement's leaf index in the transparency log
-- (censorwatch-evidence). A table beside `measurements` rather than a column in it: the index is
-- known only after the measurement is stored, and an UPDATE of a row rewrites the whole row,
-- compressed raw measurement included (measured: 122 µs per row of 7.8 KB, 14% of an ingest),
-- where an insert here costs a few microseconds. A measurement without a row here is unlogged;
-- one stored by version 1 is appended when the log is next reconciled.
CREATE TABLE measurement_leaves (
    leaf_index INTEGER PRIMARY KEY,      -- the leaf's index in the log (0, 1, 2, …)
    id         TEXT    NOT NULL UNIQUE   -- measurements.id
);
