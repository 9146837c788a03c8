//! `--db` URLs: `sqlite:PATH` (the embedded default) or `clickhouse://HOST:PORT/DB`.

use censorwatch_store::spool::SpoolingStore;
use censorwatch_store::{ClickHouseStore, SqliteStore, Store};
use std::path::{Path, PathBuf};

/// Where censorwatch keeps its files when `--data` is not given.
pub const DEFAULT_DATA_DIR: &str = "censorwatch-data";

/// The database used when `--db` is not given.
pub const DEFAULT_DB: &str = "sqlite:censorwatch-data/censorwatch.db";

/// A parsed `--db` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A ClickHouse server (`clickhouse://HOST:PORT/DB`).
    ClickHouse(String),
}

impl DbUrl {
    /// Parses `sqlite:PATH`, `sqlite://PATH`, a bare path, or `clickhouse://…`.
    pub fn parse(text: &str) -> Result<DbUrl, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("clickhouse://") {
            if rest.is_empty() {
                return Err(
                    "--db clickhouse:// needs HOST:PORT/DB, e.g. clickhouse://127.0.0.1:8123/censorwatch".into(),
                );
            }
            return Ok(DbUrl::ClickHouse(text.to_owned()));
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
            .unwrap_or(text);
        if path.is_empty() {
            return Err("--db sqlite: needs a file path, e.g. sqlite:censorwatch-data/censorwatch.db".into());
        }
        if text.contains("://") && !text.starts_with("sqlite://") {
            return Err(format!("--db {text:?}: use sqlite:PATH or clickhouse://HOST:PORT/DB"));
        }
        Ok(DbUrl::Sqlite(PathBuf::from(path)))
    }

    /// Where the rejects of an ingest go by default: beside the SQLite file, or in the working
    /// directory for ClickHouse.
    pub fn default_rejects(&self) -> PathBuf {
        match self {
            DbUrl::Sqlite(path) => path.with_extension("rejects.jsonl"),
            DbUrl::ClickHouse(_) => PathBuf::from("censorwatch-ingest-rejects.jsonl"),
        }
    }

    /// The data directory (transparency log, keys, checkpoints, ClickHouse's spool) that goes
    /// with this store when `--data` is not given: the SQLite file's directory, else
    /// [`DEFAULT_DATA_DIR`].
    pub fn default_data_dir(&self) -> PathBuf {
        match self {
            DbUrl::Sqlite(path) => match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            },
            DbUrl::ClickHouse(_) => PathBuf::from(DEFAULT_DATA_DIR),
        }
    }

    /// Opens the store, with ClickHouse's spool in the default data directory.
    pub fn open(&self) -> Result<Box<dyn Store>, String> {
        self.open_in(Path::new(DEFAULT_DATA_DIR))
    }

    /// Opens the store. A ClickHouse store is wrapped in a spool file in `data_dir`: while the
    /// server is unreachable, batches are kept there (durably) and sent once it is back.
    pub fn open_in(&self, data_dir: &Path) -> Result<Box<dyn Store>, String> {
        match self {
            DbUrl::Sqlite(path) => SqliteStore::open(path)
                .map(|s| Box::new(s) as Box<dyn Store>)
                .map_err(|e| format!("cannot open the SQLite database {}: {e}", path.display())),
            DbUrl::ClickHouse(url) => {
                let store = ClickHouseStore::open(url).map_err(|e| format!("cannot open {url}: {e}"))?;
                let spool = data_dir.join("clickhouse-spool.jsonl");
                SpoolingStore::open(store, &spool)
                    .map(|s| Box::new(s) as Box<dyn Store>)
                    .map_err(|e| format!("cannot open the spool {}: {e}", spool.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(DbUrl::parse("sqlite:a/b.db"), Ok(DbUrl::Sqlite("a/b.db".into())));
        assert_eq!(
            DbUrl::parse("sqlite:///tmp/x.db"),
            Ok(DbUrl::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(DbUrl::parse("x.db"), Ok(DbUrl::Sqlite("x.db".into())));
        assert!(matches!(
            DbUrl::parse("clickhouse://127.0.0.1:8123/cw"),
            Ok(DbUrl::ClickHouse(_))
        ));
        assert!(DbUrl::parse("postgres://x").is_err());
        assert!(DbUrl::parse("sqlite:").is_err());
        assert_eq!(
            DbUrl::parse("sqlite:a/b.db").unwrap().default_data_dir(),
            PathBuf::from("a")
        );
        assert_eq!(DbUrl::parse("b.db").unwrap().default_data_dir(), PathBuf::from("."));
        assert_eq!(
            DbUrl::parse("clickhouse://h:1/d").unwrap().default_data_dir(),
            PathBuf::from(DEFAULT_DATA_DIR)
        );
        assert_eq!(
            DbUrl::parse(DEFAULT_DB).unwrap().default_rejects(),
            PathBuf::from("censorwatch-data/censorwatch.rejects.jsonl")
        );
    }
}
