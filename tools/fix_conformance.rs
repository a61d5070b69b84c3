//! fix-conformance: runs QuickFIX's session acceptance scripts (`.def`) against a FIX acceptor.
//!
//! Owns the command line, finding the scripts in each directory, running them one after the
//! other over loopback TCP, and the report: one line per script (`PASS`, or `FAIL` with the
//! first mismatch, expected and received) and a last line `N passed, M failed`; the exit
//! status is non-zero if any failed. With `--connect HOST:PORT` it runs against an acceptor
//! that is already running (e.g. QuickFIX/C++, `tests/interop/qf_acceptor.py`); without it,
//! it starts our own stack in-process (`start_in_process_stack`: the router's host with the
//! acceptance echo application). The rules for matching
//! (notably: Text (58) by presence only) live in `rfq_router::conformance::compare`. This
//! tool must not hold any FIX logic of its own.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use rfq_router::config::{self, Role};
use rfq_router::conformance::{run_script, MatchRules, RunOptions, Script};
use rfq_router::fix::echo::EchoApp;
use rfq_router::fix::session::{AppOutcome, Application, Compat, Reply};
use rfq_router::fix::validate::{ValidationOptions, Validator};
use rfq_router::fix::Message;
use rfq_router::host::{self, HostApp, HostSessionConfig, Peers, RunningHost};
use rfq_router::net::NetSettings;
use rfq_router::time::Nanos;

const USAGE: &str = "\
usage: fix-conformance [--sender-comp-id ISLD] [--target-comp-id TW44] [--connect HOST:PORT]
                       [--timeout-ms MS] DIR...

Runs every .def script in each DIR (or each .def file given) against a FIX 4.4 acceptor,
sequentially, over TCP. Without --connect, starts our own stack in-process (the router's
host: net loop, session layer, FIX 4.4 validation; the acceptance echo application) as the
acceptor SenderCompID <- TargetCompID, ResetOnLogon=Y. With --connect, the comp IDs must
match the running acceptor's configuration; the tool itself only sends what scripts say.

  --sender-comp-id ID   the acceptor's SenderCompID (default ISLD)
  --target-comp-id ID   the client's CompID as the scripts write it (default TW44; the
                        QuickFIX/J suite uses TW)
  --connect HOST:PORT   run against an acceptor that is already listening there
  --timeout-ms MS       how long each expectation waits (default 5000); expectations of
                        heartbeat-timer messages wait 2.5 x HeartBtInt longer
  --behaviour B         in-process stack only: where QuickFIX/C++ and QuickFIX/J differ,
                        answer like `quickfix` (default; run the QuickFIX/C++ suite with it)
                        or `quickfixj` (run the QuickFIX/J suite with it); `both` gives the
                        QuickFIX/J answers with empty groups kept
  --rules R             how received messages are matched: `strict` (default with
                        --behaviour quickfix), `quickfixj` (strict, plus the QuickFIX/J
                        runner's rule: a 52/60 the expected line omits is accepted; default
                        with --behaviour quickfixj) or `reconciled` (default with `both`:
                        also accepts an extra 58, 371 in a Reject, NumInGroup=0 and a Logout
                        before an expected close); the header line printed says which
  --strict              same as --rules strict

Text (58) is always compared by presence, not wording (the suites word it differently).
";

struct Args {
    sender_comp_id: String,
    target_comp_id: String,
    connect: Option<String>,
    expect_timeout_ms: u64,
    rules: Option<MatchRules>,
    behaviour: Behaviour,
    paths: Vec<PathBuf>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>> {
    let mut args = Args {
        sender_comp_id: "ISLD".to_string(),
        target_comp_id: "TW44".to_string(),
        connect: None,
        expect_timeout_ms: RunOptions::default().expect_timeout_ms,
        rules: None,
        behaviour: Behaviour::QuickFix,
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
            "--strict" => args.rules = Some(MatchRules::STRICT),
            "--rules" => {
                args.rules = Some(match value("--rules")?.as_str() {
                    "strict" => MatchRules::STRICT,
                    "quickfixj" => MatchRules::QUICKFIX_J,
                    "reconciled" => MatchRules::RECONCILED,
                    other => bail!("--rules {other:?}: expected strict, quickfixj or reconciled"),
                })
            }
            "--behaviour" => args.behaviour = Behaviour::parse(&value("--behaviour")?)?,
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

/// Which engine's behaviour our stack takes where QuickFIX/C++ and QuickFIX/J differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// QuickFIX/J's richer answers (RefTagID on every session Reject, Texts on Logouts, a
    /// Logout before refusing a Logon) and empty groups kept in echoes: with the reconciling
    /// match rules, this one configuration passes both suites.
    Both,
    /// QuickFIX/C++ exactly (the session layer's default).
    QuickFix,
    /// QuickFIX/J exactly (empty groups dropped from echoes too).
    QuickFixJ,
}

impl Behaviour {
    fn parse(s: &str) -> Result<Behaviour> {
        match s {
            "both" => Ok(Behaviour::Both),
            "quickfix" => Ok(Behaviour::QuickFix),
            "quickfixj" => Ok(Behaviour::QuickFixJ),
            _ => bail!("--behaviour {s:?}: expected both, quickfix or quickfixj"),
        }
    }
}

/// The acceptance echo application, forgotten when its session ends, as QuickFIX's own
/// acceptance-test application forgets the ClOrdIDs it has seen on logout: each script starts
/// from a clean application as well as a reset session.
struct FreshEchoPerLogon {
    echo: EchoApp,
    drop_empty_groups: bool,
}

impl FreshEchoPerLogon {
    fn new(drop_empty_groups: bool) -> FreshEchoPerLogon {
        let mut echo = EchoApp::acceptance();
        echo.drop_empty_groups = drop_empty_groups;
        FreshEchoPerLogon {
            echo,
            drop_empty_groups,
        }
    }
}

impl HostApp for FreshEchoPerLogon {
    fn on_message(
        &mut self,
        _now: Nanos,
        _session: usize,
        msg: &Message<'_>,
        reply: &mut Reply<'_>,
        _peers: &mut Peers<'_>,
    ) -> AppOutcome {
        self.echo.on_message(msg, reply)
    }

    fn on_session_down(&mut self, _now: Nanos, _session: usize, _peers: &mut Peers<'_>) {
        *self = FreshEchoPerLogon::new(self.drop_empty_groups);
    }
}

/// Our own FIX stack running in this process as the acceptor under test: the router's host
/// (net loop + session layer, FIX 4.4 validation) with the acceptance echo application
/// (echo NewOrderSingle, except a PossResend copy of a ClOrdID already seen; echo
/// SecurityDefinition; refuse other application messages as unsupported), ResetOnLogon=Y.
/// Dropping it stops the stack's thread.
struct InProcessStack {
    addr: SocketAddr,
    _running: RunningHost,
}

/// Plug-in point for our stack: an acceptor for `sender_comp_id` <- `target_comp_id` on a
/// free loopback port, on its own thread.
fn start_in_process_stack(
    sender_comp_id: &str,
    target_comp_id: &str,
    behaviour: Behaviour,
) -> Result<InProcessStack> {
    let any_port: SocketAddr = "127.0.0.1:0".parse().context("loopback address")?;
    let mut net = config::SessionConfig::new(
        "conformance",
        Role::Acceptor,
        any_port,
        sender_comp_id,
        target_comp_id,
    );
    net.reset_on_logon = true;
    let mut session = HostSessionConfig::from_config(&net);
    let (compat, options, drop_empty_groups) = match behaviour {
        Behaviour::Both => (Compat::QUICKFIXJ, ValidationOptions::quickfix_j(), false),
        Behaviour::QuickFix => (Compat::QUICKFIX, ValidationOptions::quickfix(), false),
        Behaviour::QuickFixJ => (Compat::QUICKFIXJ, ValidationOptions::quickfix_j(), true),
    };
    session.fix.compat = compat;
    let running = host::spawn(
        "fix-conformance-stack",
        NetSettings::default(),
        vec![session],
        // Two connections may race for the same identity (1b_DuplicateIdentity).
        8,
        Arc::new(Validator::with_options(options)),
        FreshEchoPerLogon::new(drop_empty_groups),
    )
    .context("starting the in-process stack")?;
    let addr = running
        .listen_addrs
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| anyhow!("the in-process stack did not report its listening address"))?;
    Ok(InProcessStack {
        addr,
        _running: running,
    })
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
    let connect_to = args.connect.as_deref().map(resolve).transpose()?;
    let opts = RunOptions {
        expect_timeout_ms: args.expect_timeout_ms,
        rules: args.rules.unwrap_or(match args.behaviour {
            Behaviour::QuickFix => MatchRules::STRICT,
            Behaviour::QuickFixJ => MatchRules::QUICKFIX_J,
            Behaviour::Both => MatchRules::RECONCILED,
        }),
        ..RunOptions::default()
    };
    let against = match connect_to {
        Some(addr) => addr.to_string(),
        None => format!(
            "our in-process stack (a fresh one per script, behaviour {:?})",
            args.behaviour
        ),
    };
    println!(
        "# {} scripts against {against} ({} <- {}); {}",
        scripts.len(),
        args.sender_comp_id,
        args.target_comp_id,
        opts.rules.summary()
    );
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in &scripts {
        let name = display_name(path);
        let started = Instant::now();
        // Each script meets an acceptor with no memory of the previous one, as QuickFIX's own
        // acceptance servers (ResetOnDisconnect=Y) give it: with our stack, a fresh one.
        let (addr, stack) = match connect_to {
            Some(addr) => (addr, None),
            None => {
                let stack = start_in_process_stack(
                    &args.sender_comp_id,
                    &args.target_comp_id,
                    args.behaviour,
                )?;
                (stack.addr, Some(stack))
            }
        };
        let outcome = std::fs::read(path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|text| Script::parse(&text).map_err(|e| format!("bad script: {e}")))
            .and_then(|script| run_script(&script, addr, &opts).map_err(|f| f.to_string()));
        drop(stack);
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
