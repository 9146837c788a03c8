//! Redactions: a stored measurement removed for good (it leaked a probe user's personal data, a
//! court ordered it), and the public record that it was.
//!
//! [`Store::redact`](crate::Store::redact) deletes the measurement's row and raw bytes and its
//! leaf-index bookkeeping, and keeps a [`Redaction`] in their place: the id, the leaf index the
//! transparency log gave it (if it had one), the reason and the time — never any of the content.
//! From then on the id is gone from every read (`get`, queries, aggregation, detector inputs,
//! unlogged pages), and **a later insert of the same id stores nothing** (it is counted among
//! [`InsertReport::duplicates`](crate::InsertReport::duplicates)): re-ingesting an old file cannot
//! bring a redacted measurement back. Callers that can tell the submitter (the collector) ask
//! [`Store::redaction`](crate::Store::redaction) first and refuse with the reason.
//!
//! Redacting is idempotent: a second call returns the first record unchanged (its reason and
//! time), and finishes a removal that an earlier call could not complete.
//!
//! The transparency log is not touched: its leaf is a hash that reveals nothing, and removing it
//! would break every checkpoint and proof published since.

use crate::StoreError;

/// The longest reason accepted, in bytes.
pub const MAX_REASON_BYTES: usize = 1000;

/// The most redactions one [`Store::redactions`](crate::Store::redactions) call returns.
pub const MAX_REDACTION_PAGE: usize = 1000;

/// The public record of a removed measurement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Redaction {
    /// The measurement id.
    pub id: String,
    /// Its leaf index in the transparency log, when it had been logged.
    pub leaf_index: Option<u64>,
    /// Why it was removed (see [`validate_reason`]).
    pub reason: String,
    /// When it was removed, Unix seconds (UTC).
    pub time: i64,
}

/// Checks a redaction reason and returns it trimmed: not empty, at most [`MAX_REASON_BYTES`],
/// no control characters other than newline and tab (it is published as given).
pub fn validate_reason(reason: &str) -> Result<&str, String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err("the reason is empty; say why the measurement is removed (it is published)".into());
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(format!(
            "the reason is {} bytes; keep it to {MAX_REASON_BYTES} bytes",
            reason.len()
        ));
    }
    if reason.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("the reason holds control characters; send plain text".into());
    }
    Ok(reason)
}

pub(crate) fn no_redactions() -> StoreError {
    StoreError::BadQuery("this store cannot remove measurements".into())
}

/// The SQLite side (the backend owns the connections and hands them in).
pub(crate) mod sqlite {
    use super::Redaction;
    use crate::StoreError;
    use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

    /// Schema version 6 of the SQLite backend: the redactions table.
    pub(crate) const REDACTIONS_V6: &str = include_str!("sqlite/v6_redactions.sql");

    /// The trigger that keeps a redacted id from being stored again: `RAISE(IGNORE)` skips the
    /// row without failing the batch, so the insert counts it as a duplicate. Created by the
    /// first redaction, in its transaction: a trigger on `measurements` makes every insert pay
    /// for it (a statement journal and a lookup per row: 22% to 28% fewer records/s in medians
    /// of 10 interleaved runs of 10 000 typical records, 14% with `temp_store=MEMORY`), which a
    /// database that never redacted anything should not.
    pub(crate) const STAY_REDACTED_TRIGGER: &str = "CREATE TRIGGER IF NOT EXISTS measurements_stay_redacted \
         BEFORE INSERT ON measurements WHEN EXISTS (SELECT 1 FROM redactions WHERE id = NEW.id) \
         BEGIN SELECT RAISE(IGNORE); END";

    fn read(row: &Row<'_>) -> rusqlite::Result<Redaction> {
        let leaf: Option<i64> = row.get(1)?;
        Ok(Redaction {
            id: row.get(0)?,
            leaf_index: leaf.and_then(|l| u64::try_from(l).ok()),
            reason: row.get(2)?,
            time: row.get(3)?,
        })
    }

    pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<Redaction>, StoreError> {
        let mut stmt = conn.prepare_cached("SELECT id, leaf_index, reason, time FROM redactions WHERE id = ?1")?;
        Ok(stmt.query_row([id], read).optional()?)
    }

    pub(crate) fn page(
        conn: &Connection,
        before: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<Redaction>, StoreError> {
        let (t, id) = before.unwrap_or((i64::MAX, "\u{10FFFF}"));
        let mut stmt = conn.prepare_cached(
            "SELECT id, leaf_index, reason, time FROM redactions WHERE (time, id) < (?1, ?2) \
             ORDER BY time DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![t, id, i64::try_from(limit.min(super::MAX_REDACTION_PAGE)).unwrap_or(0)],
            read,
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Removes `id` in one transaction, with `secure_delete` on so the freed pages are zeroed,
    /// then checkpoints the write-ahead log (which still holds the old pages) into the file and
    /// truncates it. The checkpoint is best effort: a reader holding an old snapshot keeps it
    /// from finishing, and the next checkpoint completes it.
    pub(crate) fn redact(
        conn: &mut Connection,
        id: &str,
        reason: &str,
        time: i64,
    ) -> Result<Option<Redaction>, StoreError> {
        conn.pragma_update(None, "secure_delete", "ON")?;
        let outcome = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(existing) = get(&tx, id)? {
                // Finish a removal that failed half-way (it cannot: it is one transaction, but a
                // row stored by a build without the trigger could be there).
                tx.execute_batch(STAY_REDACTED_TRIGGER)?;
                tx.execute("DELETE FROM measurements WHERE id = ?1", [id])?;
                tx.execute("DELETE FROM measurement_leaves WHERE id = ?1", [id])?;
                tx.commit()?;
                return Ok(Some(existing));
            }
            let stored: bool = tx
                .query_row("SELECT 1 FROM measurements WHERE id = ?1", [id], |_| Ok(()))
                .optional()?
                .is_some();
            if !stored {
                return Ok(None);
            }
            let leaf: Option<i64> = tx
                .query_row("SELECT leaf_index FROM measurement_leaves WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            tx.execute_batch(STAY_REDACTED_TRIGGER)?;
            tx.execute(
                "INSERT INTO redactions (id, leaf_index, reason, time) VALUES (?1, ?2, ?3, ?4)",
                params![id, leaf, reason, time],
            )?;
            tx.execute("DELETE FROM measurements WHERE id = ?1", [id])?;
            tx.execute("DELETE FROM measurement_leaves WHERE id = ?1", [id])?;
            tx.commit()?;
            Ok(Some(Redaction {
                id: id.to_owned(),
                leaf_index: leaf.and_then(|l| u64::try_from(l).ok()),
                reason: reason.to_owned(),
                time,
            }))
        })();
        conn.pragma_update(None, "secure_delete", "OFF")?;
        if matches!(outcome, Ok(Some(_))) {
            // Returns (busy, log pages, checkpointed pages); a busy checkpoint is retried later.
            let _: (i64, i64, i64) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        }
        outcome
    }

    /// The highest leaf index a redaction recorded.
    pub(crate) fn max_leaf_index(conn: &Connection) -> Result<Option<i64>, StoreError> {
        Ok(conn.query_row("SELECT MAX(leaf_index) FROM redactions", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(
            validate_reason("  court order 12/2024 \n").unwrap(),
            "court order 12/2024"
        );
        assert_eq!(
            validate_reason("line one\nline two\ttab").unwrap(),
            "line one\nline two\ttab"
        );
        assert!(validate_reason("").is_err());
        assert!(validate_reason(" \n ").is_err());
        assert!(validate_reason("bell\u{7}").is_err());
        assert!(validate_reason(&"x".repeat(MAX_REASON_BYTES)).is_ok());
        assert!(validate_reason(&"x".repeat(MAX_REASON_BYTES + 1)).is_err());
        assert!(
            validate_reason(&"é".repeat(MAX_REASON_BYTES / 2 + 1)).is_err(),
            "bytes, not characters"
        );
    }
}
