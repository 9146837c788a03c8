//! `censorwatch serve`: runs the collector and query API (`censorwatch-server`) over the store
//! named by `--db`, until SIGINT or SIGTERM, then shuts down gracefully: requests in flight are
//! answered (each only once its data is durable) and the queued commits are written.
//!
//! The transparency log lives in `--data` (`log/`, `keys/`, `checkpoints/`): every stored
//! measurement is appended to it after its commit, and a signed checkpoint is written at start,
//! hourly and at shutdown.

use crate::db::DbUrl;
use anyhow::Context;
use censorwatch_server::{ServerConfig, serve};
use censorwatch_store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The address `serve` listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The data directory used by default.
pub const DEFAULT_DATA: &str = "censorwatch-data";

/// The `--db` used when none is given: `sqlite:<data>/censorwatch.db`.
pub fn default_db(data: &Path) -> String {
    format!("sqlite:{}", data.join("censorwatch.db").display())
}

/// What `censorwatch serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `--db`, or `None` for [`default_db`].
    pub db: Option<String>,
    /// `--listen`.
    pub listen: String,
    /// `--data`.
    pub data: PathBuf,
}

/// Opens the store, binds, prints `censorwatch: listening on http://ADDR` on stdout and serves
/// until SIGINT/SIGTERM. A bad `--db` is an `Err` whose message says how to fix it.
pub fn run(options: &ServeOptions) -> anyhow::Result<()> {
    let db_text = options.db.clone().unwrap_or_else(|| default_db(&options.data));
    let db = DbUrl::parse(&db_text).map_err(anyhow::Error::msg)?;
    let store: Arc<dyn Store> = Arc::from(db.open_in(&options.data).map_err(anyhow::Error::msg)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&options.listen).await.with_context(|| {
            format!(
                "cannot listen on {}; pick a free address with --listen HOST:PORT",
                options.listen
            )
        })?;
        let addr = listener.local_addr()?;
        println!("censorwatch: listening on http://{addr} (store {db_text})");
        let _ = std::io::stdout().flush();
        let config = ServerConfig {
            data_dir: Some(options.data.clone()),
            ..ServerConfig::default()
        };
        serve(listener, store, config, shutdown_signal())
            .await
            .context("the server stopped with an error")?;
        eprintln!("censorwatch: shut down cleanly");
        Ok(())
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
