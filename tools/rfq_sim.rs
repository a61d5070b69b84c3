//! `rfq-sim`: the simulated dealer market against the router, as its own binary (the same
//! run as `rfq-router demo`).
//!
//! Owns only the command line; the market, the runs, the progress bar and the report are
//! `rfq_router::sim`. Prints the report as text or JSON.

use anyhow::Result;
use clap::Parser;
use rfq_router::sim::demo::{run_cli, DemoArgs};

#[derive(Parser)]
#[command(
    name = "rfq-sim",
    version,
    about = "A seeded, simulated dealer market driving the RFQ router: dynamic selection against a static list, broadcast, random panels and an oracle."
)]
struct Cli {
    #[command(flatten)]
    demo: DemoArgs,
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rfq-sim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let opts = cli.demo.options().map_err(anyhow::Error::msg)?;
    run_cli(&opts, cli.demo.json).map_err(|e| anyhow::anyhow!("{e}"))
}
