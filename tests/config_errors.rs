//! Bad configurations are refused with the file, line, column and reason; good ones load.
//!
//! Each test writes one small config in a string, with the offending entry on a known line,
//! and asserts the error kind and line. These tests own nothing else and touch no network.

use rfq_router::config::{Config, ConfigError, IdleStrategy, Problem, Role};

const ORIGIN: &str = "test.toml";

fn refused(text: &str) -> ConfigError {
    match Config::parse(text, ORIGIN) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the error points at `line` and that its message starts with `test.toml:line:`.
fn assert_line(e: &ConfigError, line: usize) {
    assert_eq!(e.line(), line, "wrong line in: {e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{ORIGIN}:{line}:")),
        "message does not name file and line: {text}"
    );
}

const GOOD: &str = r#"
[router]
idle = "spin"

[limits]
max_connections = 10
write_queue_bytes = 4096

[[session]]
name = "desk"
role = "acceptor"
listen = "127.0.0.1:9878"
sender_comp_id = "ROUTER"
target_comp_id = "DESK"

[[session]]
name = "dealer"
role = "initiator"
connect = "127.0.0.1:9879"
sender_comp_id = "ROUTER"
target_comp_id = "DEALER"
reconnect_interval_ms = 100
reconnect_max_ms = 800
[session.limits]
write_queue_bytes = 1024
"#;

#[test]
fn good_config_loads_with_defaults_and_overrides() {
    let c = Config::parse(GOOD, ORIGIN).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.router.idle, IdleStrategy::Spin);
    assert_eq!(c.limits.max_connections, 10);
    assert_eq!(c.limits.max_pending_logon, 64, "default");
    assert_eq!(c.sessions.len(), 2);
    let desk = &c.sessions[0];
    assert_eq!(desk.role, Role::Acceptor);
    assert_eq!(desk.line, 10);
    assert_eq!(desk.heart_bt_int_s, 30);
    assert_eq!(desk.limits.write_queue_bytes, 4096, "inherits [limits]");
    let dealer = &c.sessions[1];
    assert_eq!(dealer.role, Role::Initiator);
    assert_eq!(dealer.addr.port(), 9879);
    assert_eq!(dealer.reconnect_interval_ms, 100);
    assert_eq!(dealer.reconnect_max_ms, 800);
    assert_eq!(dealer.limits.write_queue_bytes, 1024, "session override");
    assert_eq!(
        dealer.limits.read_buffer_bytes, c.limits.connection.read_buffer_bytes,
        "not overridden"
    );
    assert_eq!(c.listen_addrs().len(), 1);
    assert_eq!(
        c.acceptor_for_logon(b"DESK", b"ROUTER").map(|(i, _)| i),
        Some(0)
    );
    assert!(c.acceptor_for_logon(b"ROUTER", b"DESK").is_none());
}

#[test]
fn shipped_config_file_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/router.toml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.sessions.iter().any(|s| s.role == Role::Acceptor));
    assert!(c.sessions.iter().any(|s| s.role == Role::Initiator));
    assert_eq!(c, Config::embedded().unwrap_or_else(|e| panic!("{e}")));
}

#[test]
fn missing_file_names_the_path() {
    let e = Config::load(std::path::Path::new("/nonexistent/router.toml"))
        .err()
        .unwrap_or_else(|| panic!("missing file accepted"));
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e
        .to_string()
        .starts_with("/nonexistent/router.toml: cannot read"));
}

#[test]
fn syntax_error_names_line_and_column() {
    let e = refused("[limits]\nmax_connections = 10\nmax_sessions = = 3\n");
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    assert_line(&e, 3);
    assert!(e.column() > 1, "{e}");
}

#[test]
fn unknown_key_is_refused() {
    let e = refused("[limits]\nmax_connections = 10\nmax_conections = 3\n");
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    assert_line(&e, 3);
    assert!(e.to_string().contains("max_conections"), "{e}");
}

#[test]
fn unknown_key_in_session_is_refused() {
    let text = GOOD.replace(
        "target_comp_id = \"DESK\"",
        "target_comp_id = \"DESK\"\nSenderCompID = \"X\"",
    );
    let e = refused(&text);
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    assert_line(&e, 15);
}

#[test]
fn wrong_type_is_refused() {
    let e = refused("[limits]\n\nmax_connections = \"many\"\n");
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    assert_line(&e, 3);
}

#[test]
fn bad_role_and_idle_values_are_refused() {
    let e = refused(&GOOD.replace("role = \"acceptor\"", "role = \"listener\""));
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    assert_line(&e, 11);
    let e = refused(&GOOD.replace("idle = \"spin\"", "idle = \"sleep\""));
    assert_line(&e, 3);
}

#[test]
fn missing_required_key_is_refused() {
    let e = refused(&GOOD.replace(
        "sender_comp_id = \"ROUTER\"\ntarget_comp_id = \"DESK\"",
        "target_comp_id = \"DESK\"",
    ));
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    assert!(e.to_string().contains("sender_comp_id"), "{e}");
    // toml points at the table that lacks the key: the desk entry, lines 9-12.
    assert!((9..=13).contains(&e.line()), "{e}");
}

#[test]
fn duplicate_session_name_points_at_the_second() {
    let e = refused(&GOOD.replace("name = \"dealer\"", "name = \"desk\""));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::DuplicateSessionName { first_line: 10, .. })
        ),
        "{e}"
    );
    assert_line(&e, 17);
}

#[test]
fn duplicate_comp_ids_are_refused() {
    let e = refused(&GOOD.replace("target_comp_id = \"DEALER\"", "target_comp_id = \"DESK\""));
    assert!(
        matches!(e.problem(), Some(Problem::DuplicateCompIds { .. })),
        "{e}"
    );
    assert_line(&e, 21);
}

#[test]
fn bad_address_is_refused() {
    let e = refused(&GOOD.replace("127.0.0.1:9879", "dealer.example:9879"));
    assert!(
        matches!(e.problem(), Some(Problem::BadAddress { .. })),
        "{e}"
    );
    assert_line(&e, 19);
    let e = refused(&GOOD.replace("127.0.0.1:9878", "127.0.0.1"));
    assert!(
        matches!(e.problem(), Some(Problem::BadAddress { .. })),
        "{e}"
    );
    assert_line(&e, 12);
    let e = refused(&GOOD.replace("127.0.0.1:9878", "127.0.0.1:0"));
    assert!(matches!(e.problem(), Some(Problem::ZeroPort { .. })), "{e}");
    assert_line(&e, 12);
}

#[test]
fn address_key_must_match_role() {
    let e = refused(&GOOD.replace(
        "connect = \"127.0.0.1:9879\"",
        "listen = \"127.0.0.1:9879\"",
    ));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::WrongAddressKey {
                role: Role::Initiator,
                key: "listen"
            })
        ),
        "{e}"
    );
    assert_line(&e, 19);
    let e = refused(&GOOD.replace("listen = \"127.0.0.1:9878\"\n", ""));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::MissingAddress { key: "listen", .. })
        ),
        "{e}"
    );
    assert_line(&e, 10);
}

#[test]
fn reconnect_settings_only_on_initiators() {
    let e = refused(&GOOD.replace(
        "listen = \"127.0.0.1:9878\"",
        "listen = \"127.0.0.1:9878\"\nreconnect_interval_ms = 5",
    ));
    assert!(
        matches!(e.problem(), Some(Problem::InitiatorOnly { .. })),
        "{e}"
    );
    assert_line(&e, 13);
}

#[test]
fn zero_limits_are_refused() {
    let e = refused(&GOOD.replace("max_connections = 10", "max_connections = 0"));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::Zero {
                key: "max_connections"
            })
        ),
        "{e}"
    );
    assert_line(&e, 6);
    let e = refused(&GOOD.replace("write_queue_bytes = 1024", "write_queue_bytes = 0"));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::Zero {
                key: "write_queue_bytes"
            })
        ),
        "{e}"
    );
    assert_line(&e, 25);
    let e = refused(&GOOD.replace("reconnect_interval_ms = 100", "reconnect_interval_ms = 0"));
    assert_line(&e, 22);
}

#[test]
fn out_of_range_values_are_refused() {
    let e = refused(&GOOD.replace(
        "target_comp_id = \"DESK\"",
        "target_comp_id = \"DESK\"\nheart_bt_int_s = 86400",
    ));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::OutOfRange {
                key: "heart_bt_int_s",
                ..
            })
        ),
        "{e}"
    );
    assert_line(&e, 15);
    let e = refused(&GOOD.replace(
        "write_queue_bytes = 4096",
        "write_queue_bytes = 40000000000",
    ));
    assert!(
        matches!(e.problem(), Some(Problem::OutOfRange { .. })),
        "{e}"
    );
    assert_line(&e, 7);
    let e = refused("[limits]\nmax_sessions = -1\n");
    assert_line(&e, 2);
}

#[test]
fn read_buffer_must_hold_a_message() {
    let e = refused(&GOOD.replace(
        "write_queue_bytes = 1024",
        "write_queue_bytes = 1024\nmax_message_bytes = 8192\nread_buffer_bytes = 4096",
    ));
    assert!(
        matches!(e.problem(), Some(Problem::ReadBufferBelowMaxMessage { .. })),
        "{e}"
    );
    assert_line(&e, 27);
}

#[test]
fn reconnect_cap_below_interval_is_refused() {
    let e = refused(&GOOD.replace("reconnect_max_ms = 800", "reconnect_max_ms = 50"));
    assert!(
        matches!(e.problem(), Some(Problem::ReconnectMaxBelowInterval { .. })),
        "{e}"
    );
    assert_line(&e, 23);
}

#[test]
fn bad_comp_ids_are_refused() {
    // As written in TOML (basic strings).
    for bad in [r#""""#, r#""A=B""#, r#""HAS SPACE""#, r#""\u0001SOH""#] {
        let text = GOOD.replace(
            "target_comp_id = \"DEALER\"",
            &format!("target_comp_id = {bad}"),
        );
        let e = refused(&text);
        assert!(
            matches!(
                e.problem(),
                Some(Problem::BadIdentifier {
                    key: "target_comp_id",
                    ..
                })
            ),
            "{bad:?}: {e}"
        );
        assert_line(&e, 21);
    }
}

#[test]
fn too_many_sessions_are_refused() {
    let e = refused(&GOOD.replace("[limits]", "[limits]\nmax_sessions = 1"));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::TooManySessions { count: 2, max: 1 })
        ),
        "{e}"
    );
    assert_line(&e, 18);
}

#[test]
fn feed_sessions_and_scoring_are_checked() {
    let with = |extra: &str| format!("{GOOD}\n{extra}");
    // Feeds name existing sessions that are not desks.
    let c = Config::parse(&with("[rfq]\nfeed_sessions = [\"dealer\"]\n"), ORIGIN)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.rfq.feed_sessions, vec![1]);
    let e = refused(&with("[rfq]\nfeed_sessions = [\"nobody\"]\n"));
    assert!(e.to_string().contains("nobody"), "{e}");
    let e = refused(&with(
        "[rfq]\ndesk_sessions = [\"desk\"]\nfeed_sessions = [\"desk\"]\n",
    ));
    assert!(e.to_string().contains("desk"), "{e}");
    // [scoring]: defaults, ranges, and a model that does not hold together, by line.
    let c = Config::parse(
        &with("[scoring]\nscores = \"s.tbl\"\ndealers_capacity = 20\n"),
        ORIGIN,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.scoring.dealers_capacity, 20);
    assert_eq!(
        c.scoring.scores.as_deref(),
        Some(std::path::Path::new("s.tbl"))
    );
    assert_eq!(c.scoring.model.markout_horizons_s, [60, 300, 1_800]);
    let base = GOOD.lines().count();
    let e = refused(&with("[scoring]\nsegments_per_dealer = 0\n"));
    assert_line(&e, base + 3);
    let e = refused(&with(
        "[scoring]\n[scoring.model]\nleakage_horizon_s = 999\n",
    ));
    assert!(
        e.to_string().contains("leakage_horizon_s"),
        "the model's reason is given: {e}"
    );
    let e = refused(&with("[scoring]\nno_such_key = 1\n"));
    assert_line(&e, base + 3);
}

#[test]
fn journal_table_has_defaults_and_overrides() {
    use rfq_router::config::JournalDurability;
    let c = Config::parse(GOOD, ORIGIN).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.journal.dir, std::path::PathBuf::from("journal"));
    assert_eq!(c.journal.durability, JournalDurability::Os);
    let text = format!(
        "{GOOD}\n[journal]\ndir = \"/var/rfq/j\"\nsegment_size_mb = 8\ndurability = \"fsync\"\n\
         group_commit_us = 250\ngroup_commit_records = 64\nqueue_capacity = 4096\n"
    );
    let c = Config::parse(&text, ORIGIN).unwrap_or_else(|e| panic!("{e}"));
    let j = &c.journal;
    assert_eq!(j.dir, std::path::PathBuf::from("/var/rfq/j"));
    assert_eq!(j.segment_size_mb, 8);
    assert_eq!(j.durability, JournalDurability::Fsync);
    assert_eq!(
        (j.group_commit_us, j.group_commit_records, j.queue_capacity),
        (250, 64, 4096)
    );
}

#[test]
fn bad_journal_settings_name_their_line() {
    let base = format!("{GOOD}\n[journal]\n");
    let line = base.lines().count() + 1;
    let e = refused(&format!("{base}segment_size_mb = 4096\n"));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::OutOfRange {
                key: "segment_size_mb",
                ..
            })
        ),
        "{e}"
    );
    assert_line(&e, line);
    let e = refused(&format!("{base}queue_capacity = 0\n"));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::Zero {
                key: "queue_capacity"
            })
        ),
        "{e}"
    );
    assert_line(&e, line);
    let e = refused(&format!("{base}durability = \"sometimes\"\n"));
    assert_line(&e, line);
    let e = refused(&format!("{base}dir = \"\"\n"));
    assert_line(&e, line);
    let e = refused(&format!("{base}colour = \"blue\"\n"));
    assert_line(&e, line);
}
