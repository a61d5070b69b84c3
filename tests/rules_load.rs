//! Loading and reloading `rules.toml`: every kind of bad file is refused with the right
//! `file:line:column` and reason, and the watcher keeps the rules in force when a reload is
//! bad, picks up good changes (by file change or SIGHUP) and versions each load.

use rfq_router::select::rules::{Reload, RuleSet, RulesWatcher};
use rfq_router::select::ProtocolKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rfq-rules-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

const GOOD: &str = r#"
[[rule]]
name = "big"
when = "size > 5_000_000"
[rule.protocol]
kind = "staggered"
"#;

/// Parses `text`, expecting a refusal at (line, column) whose reason mentions `what`.
fn refused(text: &str, line: usize, column: usize, what: &str) {
    let path = Path::new("rules.toml");
    match RuleSet::parse(text, path) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("rules.toml:{line}:{column}: ")),
                "want {line}:{column} for {what:?}, got {shown}\n{text}"
            );
            assert!(shown.contains(what), "want {what:?} in {shown}");
        }
    }
}

#[test]
fn the_shipped_file_loads() {
    let path = format!("{}/config/rules.toml", env!("CARGO_MANIFEST_DIR"));
    let set = RuleSet::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(set.rules().len() >= 3);
    assert_eq!(set.version().seq, 1);
    assert!(set.rules().iter().all(|r| r.line > 0 && r.when.is_some()));
}

#[test]
fn toml_errors_carry_their_position() {
    refused("[[rule]]\nname = \"x\nwhen = \"size > 1\"\n", 2, 10, "");
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\nprio = 3\n",
        4,
        1,
        "unknown field `prio`",
    );
    refused("[rulez]\n", 1, 2, "unknown field `rulez`");
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\n[rule.protocol]\nkind = \"sequential\"\n",
        5,
        8,
        "unknown variant `sequential`",
    );
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\n[rule.panel]\npicks = [{ specialism = \"munis\" }]\n",
        5,
        25,
        "unknown variant `munis`",
    );
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\n[rule.panel]\nweights = { hitrate = 1.0 }\n",
        5,
        13,
        "unknown field `hitrate`",
    );
    refused(
        "[[rule]]\nwhen = \"size > 1\"\n",
        1,
        1,
        "missing field `name`",
    );
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\n[rule.protocol]\nmax_dealers = \"3\"\n",
        5,
        15,
        "invalid type",
    );
}

#[test]
fn condition_errors_map_into_the_file() {
    // basic string: the offset inside the condition lands on the file's column
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"rating > 5\"\n",
        3,
        18,
        "type error",
    );
    refused(
        "\n\n[[rule]]\nname = \"x\"\nwhen = 'asset_class == munis'\n",
        5,
        24,
        "`munis` is not an asset class",
    );
    // multi-line literal string: line and column inside it
    refused(
        "[[rule]]\nname = \"x\"\nwhen = '''\nsize > 1 and\n  sizee > 2'''\n",
        5,
        3,
        "unknown field `sizee`",
    );
    // a string with escapes: the start of the string
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"sector == \\\"Energy\\\" and foo\"\n",
        3,
        8,
        "unknown field `foo`",
    );
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1 and\"\n",
        3,
        21,
        "in `when`",
    );
}

#[test]
fn semantic_errors_point_at_the_value() {
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\n[rule.protocol]\nmax_dealers = 0\n",
        5,
        15,
        "max_dealers = 0 is out of range",
    );
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\n[rule.panel]\nweights = { hit_rate = 0.6, price_improvement = 0.3 }\n",
        5,
        11,
        "weights must add up to 1",
    );
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\n[[rule]]\nname = \"x\"\nwhen = \"size > 2\"\n",
        5,
        8,
        "duplicate rule name",
    );
    refused(
        "[[rule]]\nname = \"catch-all\"\n[[rule]]\nname = \"y\"\nwhen = \"size > 2\"\n",
        2,
        8,
        "would hide the rules after it",
    );
    refused(
        "[tiering]\nmuni = [0.8, 0.9]\n",
        2,
        8,
        "strictly descending",
    );
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\n[rule.protocol]\nkind = \"staggered\"\nstagger_gap_ms = 0\n",
        5,
        8,
        "stagger_gap_ms > 0",
    );
    refused(
        "[default.panel]\ntop = 3\npicks = [{ tier = 1 }]\n",
        3,
        9,
        "not both",
    );
    refused(
        "[default.panel]\nalways = [\"DLR-A\"]\nnever = [\"DLR-A\"]\n",
        3,
        9,
        "both the always and the never list",
    );
    refused(
        "[[rule]]\nname = \"x\"\nwhen = \"size > 1\"\n[rule.execution]\nauto_execute_bps = \"tight\"\n",
        5,
        20,
        "a number of bps",
    );
    refused("[pretrade]\nimpact_y = -1\n", 2, 12, "impact_y");
}

#[test]
fn rule_actions_start_from_the_default() {
    let text = r#"
[default.panel]
weights = { fill_rate = 0.5, price_improvement = 0.5 }
top = 5
[default.protocol]
kind = "whisper"
response_timeout_ms = 15_000
[default.execution]
auto_execute_bps = 7

[[rule]]
name = "r"
when = "size > 1"
[rule.protocol]
max_dealers = 2
"#;
    let set = RuleSet::parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let r = &set.rules()[0];
    assert_eq!(r.protocol.kind, ProtocolKind::Whisper);
    assert_eq!(r.protocol.response_timeout_ms, 15_000);
    assert_eq!(r.protocol.max_dealers, 2);
    assert_eq!(r.protocol.auto_execute_bps, Some(7.0));
    assert_eq!(r.panel.weights.fill_rate, 0.5);
    assert_eq!(r.panel.picks[0].top, Some(5));
    assert_eq!(r.line, 12);
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A changed file is read once it has stayed the same for one poll: the first poll after a
/// change only notes it.
fn poll_settled(watcher: &mut RulesWatcher) -> Reload {
    assert!(
        matches!(watcher.poll(), Reload::Unchanged),
        "a change is read one poll after it is seen"
    );
    watcher.poll()
}

#[test]
fn reload_keeps_the_rules_in_force_when_the_new_file_is_bad() {
    let path = scratch("reload.toml");
    write(&path, GOOD);
    let mut current = RuleSet::load(&path).unwrap();
    let mut watcher = RulesWatcher::new(&current);
    assert!(matches!(watcher.poll(), Reload::Unchanged));

    // A bad edit (different length, so the change is seen without a signal).
    write(&path, &GOOD.replace("size > 5_000_000", "size > "));
    match poll_settled(&mut watcher) {
        Reload::Refused(e) => {
            let shown = e.to_string();
            assert!(
                shown.contains("reload.toml:4:16: "),
                "position of the missing operand: {shown}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Not reported again until the file changes again; the rules in force are untouched.
    assert!(matches!(watcher.poll(), Reload::Unchanged));
    assert_eq!(current.rules()[0].name.as_ref(), "big");
    assert_eq!(current.version().seq, 1);

    // A good edit is loaded, with the next version.
    let edited = GOOD
        .replace("\"big\"", "\"huge\"")
        .replace("5_000", "50_000");
    write(&path, &edited);
    match poll_settled(&mut watcher) {
        Reload::Loaded(set) => {
            assert_eq!(set.rules()[0].name.as_ref(), "huge");
            assert_eq!(set.version().seq, 2);
            assert_ne!(set.version().hash, current.version().hash);
            current = *set;
        }
        other => panic!("expected a reload, got {other:?}"),
    }
    assert_eq!(current.version().seq, 2);

    // The reload flag with unchanged content: nothing to do.
    watcher.reload_flag().store(true, Ordering::Release);
    assert!(matches!(watcher.poll(), Reload::Unchanged));

    // A vanished file is refused (the rules stay); its return is loaded.
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(watcher.poll(), Reload::Refused(_)));
    write(&path, GOOD);
    match poll_settled(&mut watcher) {
        Reload::Loaded(set) => assert_eq!(set.version().seq, 3),
        other => panic!("expected a reload, got {other:?}"),
    }
}

/// A file caught between its truncation and its new content (an empty file is valid rules:
/// every default) is not loaded: only what stays the same for one poll is.
#[test]
fn a_file_caught_half_written_is_not_loaded() {
    let path = scratch("half.toml");
    write(&path, GOOD);
    let current = RuleSet::load(&path).unwrap();
    let mut watcher = RulesWatcher::new(&current);
    // The writer truncated the file; the watcher polls before the new content lands.
    write(&path, "");
    assert!(matches!(watcher.poll(), Reload::Unchanged));
    let edited = GOOD.replace("\"big\"", "\"huge\"");
    write(&path, &edited);
    match poll_settled(&mut watcher) {
        Reload::Loaded(set) => {
            assert_eq!(set.rules()[0].name.as_ref(), "huge");
            assert_eq!(set.version().seq, 2, "nothing was loaded in between");
        }
        other => panic!("expected the finished file, got {other:?}"),
    }
    assert!(matches!(watcher.poll(), Reload::Unchanged));
}

#[test]
fn sighup_forces_a_reload_check() {
    let path = scratch("hup.toml");
    write(&path, GOOD);
    let current = RuleSet::load(&path).unwrap();
    let mut watcher = RulesWatcher::new(&current);
    watcher.listen_for_sighup().unwrap();
    // Same length and (possibly) the same mtime: only the signal makes it look.
    let same_len = GOOD.replace("\"big\"", "\"BIG\"");
    assert_eq!(same_len.len(), GOOD.len());
    write(&path, &same_len);
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).unwrap();
    assert!(watcher.reload_flag().load(Ordering::Acquire));
    match watcher.poll() {
        Reload::Loaded(set) => {
            assert_eq!(set.rules()[0].name.as_ref(), "BIG");
            assert_eq!(set.version().seq, 2);
        }
        other => panic!("expected a reload, got {other:?}"),
    }
    assert!(!watcher.reload_flag().load(Ordering::Acquire));
}
