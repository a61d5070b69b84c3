//! `rfq-sim`: the simulated dealer market against the router, as its own binary (the same
//! run as `rfq-router demo`).
//!
//! Owns only the command line and the progress bar; the market, the runs and the report
//! are `rfq_router::sim`. Prints the report as text or JSON.

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rfq_router::sim::demo::{render, run_demo, DemoArgs, Progress};

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
    let started = std::time::Instant::now();
    let style = ProgressStyle::with_template("{prefix:>20} [{bar:40}] {pos}/{len} RFQs {elapsed}")
        .context("progress bar template")?
        .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    let report = run_demo(&opts, &mut |p| match p {
        Progress::Stage { name, total } => {
            if let Some(b) = bar.take() {
                b.finish();
            }
            let b = ProgressBar::new(total).with_style(style.clone());
            b.set_prefix(name);
            bar = Some(b);
        }
        Progress::Done(n) => {
            if let Some(b) = &bar {
                b.set_position(n);
            }
        }
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(b) = bar.take() {
        b.finish();
    }
    if cli.demo.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        print!("{}", render(&report));
        println!("\nDone in {:.1} s.", started.elapsed().as_secs_f64());
    }
    Ok(())
}
