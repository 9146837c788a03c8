-- censorwatch SQLite schema, version 6: redactions (see src/redaction.rs). A removed measurement
-- leaves its row here — id, leaf index, reason, time, never content — and the trigger keeps the
-- same id from being stored again: RAISE(IGNORE) skips the row without failing the batch, so the
-- insert counts it as a duplicate.
CREATE TABLE redactions (
    id         TEXT    PRIMARY KEY NOT NULL,  -- the removed measurement's id
    leaf_index INTEGER,                       -- its leaf in the transparency log, if it had one
    reason     TEXT    NOT NULL,
    time       INTEGER NOT NULL               -- Unix seconds
) WITHOUT ROWID;
CREATE INDEX redactions_time ON redactions (time, id);
CREATE TRIGGER measurements_stay_redacted BEFORE INSERT ON measurements
WHEN EXISTS (SELECT 1 FROM redactions WHERE id = NEW.id)
BEGIN
    SELECT RAISE(IGNORE);
END;
