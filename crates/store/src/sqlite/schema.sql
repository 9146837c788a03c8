-- censorwatch SQLite schema, version 1 (applied by the v1 migration in sqlite.rs, in one
-- transaction). Never edit a migration that has shipped: add a new one.

-- One row per measurement, keyed by its id (OONI `measurement_uid`, else `sha256:<hex>`).
-- `verdict_json` is the whole verdict and the source of truth when reading; the verdict columns
-- beside it exist for filtering and aggregation.
CREATE TABLE measurements (
    id                 TEXT    NOT NULL PRIMARY KEY,
    start_time         INTEGER NOT NULL, -- Unix seconds (UTC), 0 when unknown
    probe_cc           TEXT    NOT NULL,
    probe_asn          INTEGER NOT NULL,
    probe_network_name TEXT    NOT NULL,
    test_name          TEXT    NOT NULL,
    input              TEXT,
    domain             TEXT,
    report_id          TEXT,
    status             TEXT    NOT NULL, -- Status::as_str()
    method             TEXT,             -- Method::as_str()
    confidence         REAL    NOT NULL,
    blockpage          TEXT,
    ooni_blocking      TEXT,             -- JSON text of the value ("\"dns\"", "false"), NULL when undecided
    accessible         INTEGER,          -- 0 / 1 / NULL
    verdict_json       TEXT    NOT NULL,
    raw_zstd           BLOB    NOT NULL, -- the raw measurement, zstd level 3
    raw_len            INTEGER NOT NULL  -- its uncompressed length
);

-- DESIGN.md's ordering: country, then domain, then network, then time.
CREATE INDEX measurements_cc_domain_asn_time ON measurements (probe_cc, domain, probe_asn, start_time);
-- Newest-first paging: ORDER BY start_time DESC, id DESC with a (start_time, id) cursor.
CREATE INDEX measurements_time_id ON measurements (start_time, id);
