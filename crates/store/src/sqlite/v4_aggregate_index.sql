-- censorwatch SQLite schema, version 4: covering indexes for aggregation (Store::aggregate, the
-- API's /api/v1/aggregation and the dashboard's charts). Every column an aggregation filters,
-- groups or counts on is in them, so it reads one index range and never the table rows (whose
-- compressed raw measurement makes them large).
-- One country, some domains, a time range: one range per domain.
CREATE INDEX measurements_aggregate ON measurements (probe_cc, domain, start_time, probe_asn, status, method);
-- One country, every domain, a time range (a country's page).
CREATE INDEX measurements_aggregate_cc_time ON measurements (probe_cc, start_time, domain, probe_asn, status, method);
