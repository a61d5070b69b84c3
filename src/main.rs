//! `rfq-router`: the router binary.
//!
//! Owns the command line: loading and checking the configuration (`config/router.toml` and
//! `config/dealers.toml`, or the copies compiled in), starting the engine thread (network
//! loop, FIX sessions, RFQ engine) and reporting. Errors are reported with `anyhow` and a
//! non-zero exit; a bad configuration is refused before anything starts. It holds no router
//! logic of its own.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rfq_router::config::{Config, Role};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::host::{sessions_from_config, spawn_with, RunningHost, SpawnOptions};
use rfq_router::net::NetSettings;
use rfq_router::router::RouterApp;
use rfq_router::select::StaticTiers;
use rfq_router::time::Nanos;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(
    name = "rfq-router",
    version,
    about = "An RFQ router for fixed-income desks: FIX 4.4 in, a tailored dealer panel out."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Clone)]
struct ConfigArgs {
    /// Router configuration (sessions, limits, RFQ settings). Default: the copy of
    /// config/router.toml compiled into the binary.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Dealer database. Default: the copy of config/dealers.toml compiled into the binary.
    #[arg(long, value_name = "FILE")]
    dealers: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router (the default when no command is given).
    Run {
        #[command(flatten)]
        files: ConfigArgs,
        /// Print a status line every this many seconds (0: never).
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        status_every_s: u64,
    },
    /// Check the configuration files and print what they describe; exit non-zero on error.
    CheckConfig {
        #[command(flatten)]
        files: ConfigArgs,
    },
}

fn load(files: &ConfigArgs) -> Result<(Config, Dealers)> {
    let config = match &files.config {
        Some(p) => Config::load(p)?,
        None => Config::embedded()?,
    };
    let dealers = match &files.dealers {
        Some(p) => Dealers::load(p, &config)?,
        None => Dealers::embedded(&config)?,
    };
    Ok((config, dealers))
}

fn describe(config: &Config, dealers: &Dealers) {
    println!("sessions:");
    for (i, s) in config.sessions.iter().enumerate() {
        let what = if config.rfq.desk_sessions.contains(&i) {
            "desk".to_string()
        } else if let Some(d) = dealers.dealers.iter().find(|d| d.session == i) {
            format!("dealer {:?} (tier {})", d.name, d.tier)
        } else {
            "unused".to_string()
        };
        let (verb, role) = match s.role {
            Role::Acceptor => ("listens on", "acceptor"),
            Role::Initiator => ("connects to", "initiator"),
        };
        println!(
            "  {:<12} {role:<9} {verb} {:<21} {}->{}  {what}",
            s.name, s.addr, s.sender_comp_id, s.target_comp_id
        );
    }
    let p = &config.rfq.protocol;
    println!(
        "default protocol: {:?}, up to {} dealers, {} ms per dealer, RFQ expiry {} ms",
        p.kind, p.max_dealers, p.response_timeout_ms, p.rfq_expiry_ms
    );
}

fn now() -> Nanos {
    Nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    )
}

fn run(files: &ConfigArgs, status_every_s: u64) -> Result<()> {
    let (config, dealers) = load(files)?;
    describe(&config, &dealers);
    let panel = StaticTiers {
        protocol: config.rfq.protocol,
    };
    let app = RouterApp::from_config(&config, &dealers, panel, now());
    let router = spawn_with(
        SpawnOptions {
            name: "engine".to_string(),
            cpu: config.router.engine_cpu,
        },
        NetSettings::from_config(&config),
        sessions_from_config(&config),
        config.limits.max_pending_logon as usize,
        Arc::new(Validator::fix44()),
        app,
    )
    .context("starting the engine thread")?;
    report_threads(&config, &router);
    println!("router running (Ctrl-C to stop)");
    loop {
        if status_every_s == 0 {
            std::thread::park();
            continue;
        }
        std::thread::sleep(Duration::from_secs(status_every_s));
        let c = router.handle.counters();
        println!(
            "status: connections accepted {} connected {} closed {} | bytes in {} out {}",
            c.accepted, c.connected, c.closed, c.bytes_in, c.bytes_out
        );
    }
}

/// Says how each router thread was placed; a CPU that could not be used is warned about once.
fn report_threads(config: &Config, router: &RunningHost) {
    println!(
        "thread engine: {}, idle = {:?}",
        router.pinning, config.router.idle
    );
    if let Some(warning) = router.pinning.warning("engine") {
        eprintln!("rfq-router: {warning}");
    }
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rfq-router: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run {
        files: ConfigArgs {
            config: None,
            dealers: None,
        },
        status_every_s: 10,
    }) {
        Command::Run {
            files,
            status_every_s,
        } => run(&files, status_every_s),
        Command::CheckConfig { files } => {
            let (config, dealers) = load(&files)?;
            describe(&config, &dealers);
            println!("configuration OK");
            Ok(())
        }
    }
}
