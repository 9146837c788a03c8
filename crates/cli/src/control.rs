//! `censorwatch control`: run the control server (an OONI-compatible test helper plus `/whoami`)
//! until SIGINT or SIGTERM. It stores nothing.

use anyhow::Context;
use censorwatch_control::{ControlOptions, build_state, serve};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `censorwatch control`.
#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    /// Address to listen on, e.g. 0.0.0.0:8080 (port 0 picks a free one; the address is printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// IP → ASN table in the ip-location-db CSV format (start,end,asn,org), IPv4 and/or IPv6.
    #[arg(long, value_name = "FILE")]
    pub asn_db: Option<PathBuf>,
    /// IP → country table in the ip-location-db CSV format (start,end,country_code).
    #[arg(long, value_name = "FILE")]
    pub country_db: Option<PathBuf>,
    /// Connect to private, loopback and other bogon addresses too. For labs and tests only: on a
    /// public server it lets anyone probe your internal network.
    #[arg(long)]
    pub allow_private: bool,
    /// Resolve with this UDP resolver instead of the system's.
    #[arg(long, value_name = "IP:PORT")]
    pub resolver: Option<SocketAddr>,
    /// Also trust the CA certificates in this PEM file (a lab's private CA).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Vec<PathBuf>,
    /// Requests per second allowed per client address (bursts of 5× this).
    #[arg(long, value_name = "N", default_value_t = 20.0)]
    pub rate: f64,
    /// Connect from this local address (labs).
    #[arg(long, value_name = "IP", hide = true)]
    pub source_ip: Option<IpAddr>,
}

/// Runs `censorwatch control`.
pub fn run(args: ControlArgs, err: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let options = ControlOptions {
        asn_db: args.asn_db,
        country_db: args.country_db,
        allow_private: args.allow_private,
        resolver: args.resolver,
        ca_files: args.ca_file,
        local_ip: args.source_ip,
        rate: censorwatch_control::RateLimit {
            per_second: args.rate.max(0.001),
            burst: (args.rate * 5.0).max(1.0),
        },
        ..ControlOptions::default()
    };
    let state = match build_state(&options) {
        Ok(s) => s,
        Err(e) => {
            writeln!(err, "censorwatch control: {e}")?;
            return Ok(ExitCode::from(2));
        }
    };
    if options.allow_private {
        writeln!(
            err,
            "censorwatch control: WARNING: --allow-private is on: this server will connect to private, loopback and other bogon addresses on request. Use it only in a lab."
        )?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        writeln!(err, "censorwatch control: listening on http://{addr}/")?;
        err.flush()?;
        serve(listener, state, shutdown_signal())
            .await
            .context("the control server stopped")?;
        writeln!(err, "censorwatch control: stopped")?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
