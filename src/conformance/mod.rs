//! Running QuickFIX's session acceptance scripts against a FIX acceptor.
//!
//! Owns everything the `fix-conformance` tool needs that is worth testing on its own:
//! reading `.def` scripts (`script`), turning `I` lines into wire bytes (`render`), matching
//! received messages against `E` lines (`compare`, whose module docs state the rules, notably
//! that Text (58) is compared by presence only), and driving a script over TCP (`driver`).
//! The scripts are data read at run time from `../shared/fix-acceptance`; nothing here copies
//! them. This is test tooling: it must not be used by the router's own message path.

pub mod compare;
pub mod driver;
pub mod render;
pub mod script;

pub use compare::{compare, FieldRule, MatchRules, RECONCILED_SUMMARY, RULES_SUMMARY};
pub use driver::{run_script, utc_now, Failure, RunOptions};
pub use render::SendTemplate;
pub use script::{Action, ExpectedMessage, Script, ScriptError, Step};

/// Where the shared acceptance scripts live, if present: `$FIX_ACCEPTANCE_DIR`, else
/// `../shared/fix-acceptance` beside the crate.
pub fn acceptance_dir() -> Option<std::path::PathBuf> {
    let candidate = match std::env::var_os("FIX_ACCEPTANCE_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fix-acceptance"),
    };
    candidate.is_dir().then_some(candidate)
}
