-- censorwatch SQLite schema, version 5: outage signal samples (censorwatch-store's signals.rs),
-- e.g. each network's BGP-visible /24 blocks over time as `censorwatch bgp --db` records them,
-- which the outage detector reads next to the measurements. One row per (time, asn, kind):
-- recording the same reading again replaces it. The key's order is the order pages are read in.
CREATE TABLE signal_samples (
    time  INTEGER NOT NULL, -- Unix seconds
    asn   INTEGER NOT NULL,
    kind  TEXT    NOT NULL, -- the detector's signal name, e.g. 'bgp'
    cc    TEXT    NOT NULL, -- the network's country
    value REAL    NOT NULL,
    PRIMARY KEY (time, asn, kind)
) WITHOUT ROWID;
