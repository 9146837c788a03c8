-- censorwatch SQLite schema, version 6: redactions (see src/redaction.rs). A removed measurement
-- leaves its row here — id, leaf index, reason, time, never content. The trigger that keeps a
-- redacted id from being stored again is created by the first redaction (redaction.rs,
-- STAY_REDACTED_TRIGGER), not here: a trigger on `measurements` costs every insert (measured
-- 22-28% of insert throughput), which a database without redactions need not pay.
CREATE TABLE redactions (
    id         TEXT    PRIMARY KEY NOT NULL,  -- the removed measurement's id
    leaf_index INTEGER,                       -- its leaf in the transparency log, if it had one
    reason     TEXT    NOT NULL,
    time       INTEGER NOT NULL               -- Unix seconds
) WITHOUT ROWID;
CREATE INDEX redactions_time ON redactions (time, id);
