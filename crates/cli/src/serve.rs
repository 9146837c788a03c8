//! `censorwatch serve`: runs the collector and query API (`censorwatch-server`) over the store
//! named by `--db`, until SIGINT or SIGTERM, then shuts down gracefully: requests in flight are
//! answered (each only once its data is durable) and the queued commits are written.
//!
//! The transparency log lives in `--data` (`log/`, `keys/`, `checkpoints/`): every stored
//! measurement is appended to it after its commit, and a signed checkpoint is written at start,
//! hourly and at shutdown.
//!
//! `--admin-token-file FILE` (or `CENSORWATCH_ADMIN_TOKEN`) enables the admin endpoints
//! (webhooks and watches, removing a measurement, rotating the log's signing key);
//! `--config FILE` adds webhooks (`[[webhook]]` tables) to those added over the API.

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
    /// `--config`: a TOML file with `[[webhook]]` tables.
    pub config: Option<PathBuf>,
    /// `--admin-token-file` (else the [`ADMIN_TOKEN_ENV`] variable).
    pub admin_token_file: Option<PathBuf>,
}

/// The variable holding the admin token when no `--admin-token-file` is given.
pub const ADMIN_TOKEN_ENV: &str = "CENSORWATCH_ADMIN_TOKEN";

/// The admin token: the file's content (surrounding whitespace trimmed), else the variable's;
/// `None` when neither is given. A token too short or with spaces inside is an error.
pub fn admin_token(file: Option<&Path>, env: Option<String>) -> anyhow::Result<Option<String>> {
    let token = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the admin token file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => env.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
    };
    if let Some(t) = &token {
        censorwatch_server::auth::validate_token(t).map_err(anyhow::Error::msg)?;
    }
    Ok(token)
}

/// The webhooks of a `--config` file.
pub fn config_webhooks(file: Option<&Path>) -> anyhow::Result<Vec<censorwatch_server::alerts::WebhookConfig>> {
    let Some(path) = file else { return Ok(Vec::new()) };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    let parsed =
        censorwatch_server::alerts::FileConfig::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(parsed.webhooks)
}

/// Opens the store, binds, prints `censorwatch: listening on http://ADDR` on stdout and serves
/// until SIGINT/SIGTERM. A bad `--db` is an `Err` whose message says how to fix it.
pub fn run(options: &ServeOptions) -> anyhow::Result<()> {
    let admin_token = admin_token(options.admin_token_file.as_deref(), std::env::var(ADMIN_TOKEN_ENV).ok())?;
    let webhooks = config_webhooks(options.config.as_deref())?;
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
            admin_token,
            webhooks,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_tokens_and_config_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
        assert_eq!(
            admin_token(Some(&file), Some("ignored-when-a-file-is-given".into()))
                .unwrap()
                .as_deref(),
            Some("0123456789abcdef0123")
        );
        assert_eq!(
            admin_token(None, Some(" from-the-environment-0123 ".into()))
                .unwrap()
                .as_deref(),
            Some("from-the-environment-0123")
        );
        assert_eq!(admin_token(None, None).unwrap(), None);
        assert_eq!(admin_token(None, Some(String::new())).unwrap(), None);
        assert!(admin_token(None, Some("short".into())).is_err());
        assert!(admin_token(Some(&dir.path().join("missing")), None).is_err());
        let config = dir.path().join("censorwatch.toml");
        std::fs::write(
            &config,
            "[[webhook]]\nurl = \"https://hooks.example.org/cw\"\nsecret = \"0123456789abcdef\"\ncc = \"PK\"\n",
        )
        .unwrap();
        let hooks = config_webhooks(Some(&config)).unwrap();
        assert_eq!((hooks.len(), hooks[0].cc.as_deref()), (1, Some("PK")));
        std::fs::write(&config, "[[webhook]]\nurl = \"nope\"\n").unwrap();
        let e = config_webhooks(Some(&config)).unwrap_err().to_string();
        assert!(e.contains("censorwatch.toml"), "{e}");
        assert!(config_webhooks(None).unwrap().is_empty());
    }
}
