//! Outage signal samples: readings of a network's BGP visibility (visible /24 blocks), or of
//! another signal the detector compares with its own past, kept so that `censorwatch events`
//! and the server can feed them to the outage detector next to the stored measurements.
//!
//! A sample is keyed by (time, ASN, kind): recording the same reading again (re-reading the same
//! MRT file) replaces it rather than adding a second one. The store does not know the detector's
//! signal kinds (`censorwatch-detect` sits beside this crate): [`StoredSignalSample::kind`] is
//! the detector's name for it (`"bgp"`), checked only to be a short, plain word.
//!
//! Also here: which country each network's probes are in ([`AsnCountry`]), read from the stored
//! measurements' (probe_asn, probe_cc) pairs, so that a BGP reading for an AS can be put in a
//! country without asking anyone.

use crate::StoreError;

/// Largest page of samples one [`crate::Store::signal_samples`] call returns.
pub const MAX_SIGNAL_PAGE: usize = 100_000;

/// One stored reading of an outage signal for one network.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSignalSample {
    /// The signal's name as the detector spells it (`bgp`, `control_reachability`, …): 1 to 32
    /// ASCII lower-case letters, digits or `_`.
    pub kind: String,
    /// The network.
    pub asn: u32,
    /// When it was read, Unix seconds.
    pub time: i64,
    /// The network's country (two capital letters), as the caller decided it.
    pub cc: String,
    /// The reading: a finite, non-negative number.
    pub value: f64,
}

/// Where a page of [`crate::Store::signal_samples`] ends: (time, ASN, kind) of its last row.
pub type SignalCursor = (i64, u32, String);

impl StoredSignalSample {
    /// The sample's position in the (time, ASN, kind) order pages follow.
    pub fn cursor(&self) -> SignalCursor {
        (self.time, self.asn, self.kind.clone())
    }

    /// Checks the fields a backend relies on; the error names the sample and what is wrong.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |message: String| {
            Err(StoreError::BadQuery(format!(
                "signal sample ({}, AS{}, {}): {message}",
                self.kind, self.asn, self.time
            )))
        };
        if self.kind.is_empty()
            || self.kind.len() > 32
            || !self
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return bad("the kind must be 1 to 32 lower-case letters, digits or _".into());
        }
        if self.cc.len() != 2 || !self.cc.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad(format!("the country {:?} is not two capital letters", self.cc));
        }
        if !(self.value.is_finite() && self.value >= 0.0) {
            return bad(format!("the value {} is not a finite, non-negative number", self.value));
        }
        Ok(())
    }
}

/// How many stored measurements came from one (network, country) pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AsnCountry {
    /// The probe's network (`probe_asn`).
    pub asn: u32,
    /// The probe's country (`probe_cc`), as stored.
    pub cc: String,
    /// Distinct measurements with this pair.
    pub measurements: u64,
}

/// The error of a store that keeps no signal samples.
pub(crate) fn no_signals() -> StoreError {
    StoreError::BadQuery("this store keeps no outage signal samples".into())
}

/// The SQLite side (called by [`crate::sqlite`], which owns the connections).
pub(crate) mod sqlite {
    use super::{AsnCountry, SignalCursor, StoredSignalSample};
    use crate::StoreError;
    use rusqlite::{Connection, TransactionBehavior, params};

    /// Stores `samples`, replacing those with the same key, in one transaction.
    pub(crate) fn put(conn: &mut Connection, samples: &[StoredSignalSample]) -> Result<u64, StoreError> {
        for s in samples {
            s.validate()?;
        }
        if samples.is_empty() {
            return Ok(0);
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO signal_samples (time, asn, kind, cc, value) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT(time, asn, kind) DO UPDATE SET cc = excluded.cc, value = excluded.value",
            )?;
            for s in samples {
                upsert.execute(params![s.time, s.asn, s.kind, s.cc, s.value])?;
            }
        }
        tx.commit()?;
        Ok(samples.len() as u64)
    }

    /// A page in (time, ASN, kind) order.
    pub(crate) fn page(
        conn: &Connection,
        since: Option<i64>,
        after: Option<&SignalCursor>,
        limit: usize,
    ) -> Result<Vec<StoredSignalSample>, StoreError> {
        let (t, asn, kind) = match after {
            Some((t, asn, kind)) => (*t, i64::from(*asn), kind.as_str()),
            None => (i64::MIN, -1, ""),
        };
        // The row-value comparison walks the primary key in order.
        let mut stmt = conn.prepare_cached(
            "SELECT time, asn, kind, cc, value FROM signal_samples \
             WHERE (time, asn, kind) > (?1, ?2, ?3) AND time >= ?4 ORDER BY time, asn, kind LIMIT ?5",
        )?;
        let limit = limit.min(super::MAX_SIGNAL_PAGE);
        let mut rows = stmt.query(params![t, asn, kind, since.unwrap_or(i64::MIN), limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let asn: i64 = row.get(1)?;
            out.push(StoredSignalSample {
                time: row.get(0)?,
                asn: u32::try_from(asn).map_err(|_| StoreError::Corrupt {
                    id: format!("signal sample at {}", row.get::<_, i64>(0).unwrap_or_default()),
                    message: format!("its ASN {asn} is out of range"),
                })?,
                kind: row.get(2)?,
                cc: row.get(3)?,
                value: row.get(4)?,
            });
        }
        Ok(out)
    }

    /// Measurements per (probe_asn, probe_cc).
    pub(crate) fn asn_countries(conn: &Connection) -> Result<Vec<AsnCountry>, StoreError> {
        let mut stmt = conn.prepare_cached(
            "SELECT probe_asn, probe_cc, count(*) FROM measurements GROUP BY probe_asn, probe_cc \
             ORDER BY probe_asn, probe_cc",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let asn: i64 = row.get(0)?;
            let n: i64 = row.get(2)?;
            let Ok(asn) = u32::try_from(asn) else { continue };
            out.push(AsnCountry {
                asn,
                cc: row.get(1)?,
                measurements: n.max(0) as u64,
            });
        }
        Ok(out)
    }
}

/// The ClickHouse side: the SQL and rows (the backend, which owns the HTTP client, runs them).
pub(crate) mod clickhouse {
    use super::{SignalCursor, StoredSignalSample};
    use serde::{Deserialize, Serialize};
    use std::fmt::Write;

    /// Schema version 4 of the ClickHouse backend: signal samples. Rows are only inserted; a
    /// reading recorded again gets a higher `version`, and reads take each key's latest row
    /// (`LIMIT 1 BY`, as for detections).
    pub(crate) const SIGNAL_SAMPLES_V4: &str = "CREATE TABLE IF NOT EXISTS signal_samples (
    time    Int64,   -- Unix seconds
    asn     UInt32,
    kind    String,  -- the detector's signal name, e.g. 'bgp'
    cc      String,
    value   Float64,
    version UInt64   -- the write's order
) ENGINE = ReplacingMergeTree(version)
ORDER BY (time, asn, kind)";

    /// One row as sent in `INSERT … FORMAT JSONEachRow` and read back (without `version`).
    #[derive(Serialize, Deserialize)]
    pub(crate) struct Row {
        pub(crate) time: i64,
        pub(crate) asn: u32,
        pub(crate) kind: String,
        pub(crate) cc: String,
        pub(crate) value: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub(crate) version: Option<u64>,
    }

    impl Row {
        pub(crate) fn into_sample(self) -> StoredSignalSample {
            StoredSignalSample {
                kind: self.kind,
                asn: self.asn,
                time: self.time,
                cc: self.cc,
                value: self.value,
            }
        }
    }

    /// The JSONEachRow body inserting `samples` at `version` (validated first).
    pub(crate) fn insert_body(samples: &[StoredSignalSample], version: u64) -> Result<Vec<u8>, crate::StoreError> {
        let mut body = Vec::new();
        for s in samples {
            s.validate()?;
            let row = Row {
                time: s.time,
                asn: s.asn,
                kind: s.kind.clone(),
                cc: s.cc.clone(),
                value: s.value,
                version: Some(version),
            };
            serde_json::to_writer(&mut body, &row).map_err(|e| crate::StoreError::Corrupt {
                id: format!("signal sample AS{} at {}", s.asn, s.time),
                message: format!("cannot encode it for storage ({e}); this is a censorwatch bug"),
            })?;
            body.push(b'\n');
        }
        Ok(body)
    }

    /// A page in (time, ASN, kind) order, each key's latest row. `quote` makes a string literal.
    pub(crate) fn page_sql(
        since: Option<i64>,
        after: Option<&SignalCursor>,
        limit: usize,
        quote: impl Fn(&str) -> String,
    ) -> String {
        let mut filter = String::from("1");
        if let Some(since) = since {
            let _ = write!(filter, " AND time >= {since}");
        }
        if let Some((t, asn, kind)) = after {
            let _ = write!(
                filter,
                " AND (time > {t} OR (time = {t} AND (asn > {asn} OR (asn = {asn} AND kind > {}))))",
                quote(kind)
            );
        }
        format!(
            "SELECT time, asn, kind, cc, value FROM (SELECT time, asn, kind, cc, value FROM signal_samples \
             WHERE {filter} ORDER BY version DESC LIMIT 1 BY time, asn, kind) ORDER BY time, asn, kind LIMIT {}",
            limit.min(super::MAX_SIGNAL_PAGE)
        )
    }

    /// Distinct measurements per (probe_asn, probe_cc) (a row written twice counts once).
    pub(crate) const ASN_COUNTRIES_SQL: &str = "SELECT probe_asn AS asn, probe_cc AS cc, uniqExact(id) AS n \
         FROM measurements GROUP BY probe_asn, probe_cc ORDER BY probe_asn, probe_cc";

    /// A row of [`ASN_COUNTRIES_SQL`].
    #[derive(Deserialize)]
    pub(crate) struct AsnCountryRow {
        pub(crate) asn: u32,
        pub(crate) cc: String,
        pub(crate) n: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: &str, cc: &str, value: f64) -> StoredSignalSample {
        StoredSignalSample {
            kind: kind.into(),
            asn: 17557,
            time: 1_700_000_000,
            cc: cc.into(),
            value,
        }
    }

    #[test]
    fn validation() {
        assert!(sample("bgp", "PK", 12.0).validate().is_ok());
        assert!(sample("control_reachability", "PK", 0.0).validate().is_ok());
        for bad in [
            sample("", "PK", 1.0),
            sample("BGP", "PK", 1.0),
            sample("bgp'; DROP", "PK", 1.0),
            sample("bgp", "pk", 1.0),
            sample("bgp", "PAK", 1.0),
            sample("bgp", "PK", -1.0),
            sample("bgp", "PK", f64::NAN),
            sample("bgp", "PK", f64::INFINITY),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clickhouse_paging_sql_quotes_the_cursor() {
        let sql = clickhouse::page_sql(Some(5), Some(&(7, 9, "b'x".into())), 10, |s| format!("'{s}'"));
        assert!(sql.contains("time >= 5"), "{sql}");
        assert!(sql.contains("kind > 'b'x'"), "{sql}");
        assert!(sql.ends_with("LIMIT 10"), "{sql}");
    }
}
