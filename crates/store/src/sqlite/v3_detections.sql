-- censorwatch SQLite schema, version 3: the detector's results (censorwatch-detect), blocking
-- events and outages, recomputed as measurements arrive. `body` is the whole event or outage as
-- JSON and the source of truth when reading; the columns beside it exist for filtering.
CREATE TABLE detections (
    kind       TEXT    NOT NULL, -- 'event' | 'outage'
    id         TEXT    NOT NULL, -- the detector's id, e.g. 'PK-twitter-1708128000'
    cc         TEXT    NOT NULL,
    domain     TEXT    NOT NULL, -- an event's label domain, '' for an outage
    platform   TEXT    NOT NULL, -- an event's platform, '' for an outage
    start_time INTEGER NOT NULL, -- Unix seconds
    end_time   INTEGER,          -- Unix seconds, NULL while it lasts
    updated    INTEGER NOT NULL, -- when it was last computed, Unix seconds
    body       TEXT    NOT NULL,
    PRIMARY KEY (kind, id)
);
-- Latest first, per kind.
CREATE INDEX detections_kind_start ON detections (kind, start_time);
