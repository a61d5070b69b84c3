//! fix-conformance: runs QuickFIX's session acceptance scripts (`.def`) against a FIX acceptor.
//!
//! Owns the command line, finding the scripts in each directory, running them one after the
//! other over loopback TCP, and the report: one line per script (`PASS`, or `FAIL` with the
//! first mismatch, expected and received) and a last line `N passed, M failed`; the exit
//! status is non-zero if any failed. With `--connect HOST:PORT` it runs against an acceptor
//! that is already running (e.g. QuickFIX/C++, `tests/interop/qf_acceptor.py`); without it,
//! it starts our own stack in-process (`start_in_process_stack`). The rules for matching
//! (notably: Text (58) by presence only) live in `rfq_router::conformance::compare`. This
//! tool must not hold any FIX logic of its own.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use rfq_router::conformance::{run_script, MatchRules, RunOptions, Script};

const USAGE: &str = "\
usage: fix-conformance [--sender-comp-id ISLD] [--target-comp-id TW44] [--connect HOST:PORT]
                       [--timeout-ms MS] DIR...

Runs every .def script in each DIR (or each .def file given) against a FIX 4.4 acceptor,
sequentially, over TCP. Without --connect, starts our own stack in-process as the acceptor
SenderCompID/TargetCompID (ResetOnLogon=Y, echo application). With --connect, the comp IDs
must match the running acceptor's configuration; they are not sent by the tool itself.

  --sender-comp-id ID   the acceptor's SenderCompID (default ISLD)
  --target-comp-id ID   the client's CompID as the scripts write it (default TW44; the
                        QuickFIX/J suite uses TW)
  --connect HOST:PORT   run against an acceptor that is already listening there
  --timeout-ms MS       how long each expectation waits (default 5000); expectations of
                        heartbeat-timer messages wait 2.5 x HeartBtInt longer
  --strict              literal matching only: turn off the few tolerances that reconcile
                        the QuickFIX/C++ and QuickFIX/J suites (see the header line printed,
                        and rfq_router::conformance::compare)

Text (58) is always compared by presence, not wording.
";

struct Args {
    sender_comp_id: String,
    target_comp_id: String,
    connect: Option<String>,
    expect_timeout_ms: u64,
    strict: bool,
    paths: Vec<PathBuf>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>> {
    let mut args = Args {
        sender_comp_id: "ISLD".to_string(),
        target_comp_id: "TW44".to_string(),
        connect: None,
        expect_timeout_ms: RunOptions::default().expect_timeout_ms,
        strict: false,
        paths: Vec::new(),
    };
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| anyhow!("{name} needs a value"));
        match arg.as_str() {
            "--sender-comp-id" => args.sender_comp_id = value("--sender-comp-id")?,
            "--target-comp-id" => args.target_comp_id = value("--target-comp-id")?,
            "--connect" => args.connect = Some(value("--connect")?),
            "--timeout-ms" => {
                let v = value("--timeout-ms")?;
                args.expect_timeout_ms = v
                    .parse()
                    .with_context(|| format!("--timeout-ms {v:?} is not a number"))?;
            }
            "--strict" => args.strict = true,
            "-h" | "--help" => return Ok(None),
            s if s.starts_with('-') => bail!("unknown option {s}"),
            _ => args.paths.push(PathBuf::from(arg)),
        }
    }
    if args.paths.is_empty() {
        bail!("no script directory given");
    }
    Ok(Some(args))
}

/// The `.def` scripts under `path` (a directory, or one file), sorted by name.
fn scripts_in(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "def") && p.is_file())
        .collect();
    found.sort();
    if found.is_empty() {
        bail!("no .def scripts in {}", path.display());
    }
    Ok(found)
}

/// `suite/name.def`: the script's directory name keeps the two suites' same-named scripts
/// apart in the report.
fn display_name(script: &Path) -> String {
    let file = script.file_name().map(|f| f.to_string_lossy().into_owned());
    let dir = script
        .parent()
        .and_then(Path::file_name)
        .map(|d| d.to_string_lossy().into_owned());
    match (dir, file) {
        (Some(d), Some(f)) => format!("{d}/{f}"),
        (None, Some(f)) => f,
        _ => script.display().to_string(),
    }
}

/// Our own FIX stack running in this process as the acceptor under test: the router's
/// session layer with an echo application (echo NewOrderSingle, except a PossResend copy of
/// a ClOrdID already seen; echo SecurityDefinition; reject other application messages as
/// unsupported), ResetOnLogon=Y. Dropping it stops the stack.
struct InProcessStack {
    addr: SocketAddr,
}

/// Plug-in point for our stack (the `session` and `net` work): start an acceptor for
/// `sender_comp_id` <- `target_comp_id` on a free loopback port and return where it
/// listens. Until that stack is on main, this refuses with a message pointing at --connect.
fn start_in_process_stack(sender_comp_id: &str, target_comp_id: &str) -> Result<InProcessStack> {
    let _ = (sender_comp_id, target_comp_id);
    bail!(
        "the in-process stack (router session layer + echo application) is not available in \
         this build yet; run against a running acceptor with --connect HOST:PORT \
         (e.g. tests/interop/qf_acceptor.py)"
    )
}

fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .ok_or_else(|| anyhow!("{addr} resolves to no address"))
}

fn run(args: &Args) -> Result<bool> {
    let mut scripts = Vec::new();
    for path in &args.paths {
        scripts.extend(scripts_in(path)?);
    }
    let (addr, _stack) = match &args.connect {
        Some(a) => (resolve(a)?, None),
        None => {
            let stack = start_in_process_stack(&args.sender_comp_id, &args.target_comp_id)?;
            (stack.addr, Some(stack))
        }
    };
    let opts = RunOptions {
        expect_timeout_ms: args.expect_timeout_ms,
        rules: if args.strict {
            MatchRules::STRICT
        } else {
            MatchRules::RECONCILED
        },
        ..RunOptions::default()
    };
    println!(
        "# {} scripts against {addr} ({} <- {}); {}",
        scripts.len(),
        args.sender_comp_id,
        args.target_comp_id,
        opts.rules.summary()
    );
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in &scripts {
        let name = display_name(path);
        let started = Instant::now();
        let outcome = std::fs::read(path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|text| Script::parse(&text).map_err(|e| format!("bad script: {e}")))
            .and_then(|script| run_script(&script, addr, &opts).map_err(|f| f.to_string()));
        let ms = started.elapsed().as_millis();
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("PASS {name} ({ms} ms)");
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {name} ({ms} ms): {why}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fix-conformance: {e}");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fix-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}
