//! `config/dealers.toml` and the `[rfq]` table of `config/router.toml`: the shipped files load,
//! and each kind of mistake is refused with the right file, line and reason.

use rfq_router::config::{Config, ConfigError, Problem};
use rfq_router::dealers::{Dealers, HitMessage};
use rfq_router::select::ProtocolKind;

const ROUTER: &str = r#"[rfq]
desk_sessions = ["desk"]

[[session]]
name = "desk"
role = "acceptor"
listen = "127.0.0.1:9000"
sender_comp_id = "R"
target_comp_id = "DESK"

[[session]]
name = "d1"
role = "acceptor"
listen = "127.0.0.1:9000"
sender_comp_id = "R"
target_comp_id = "D1"

[[session]]
name = "d2"
role = "acceptor"
listen = "127.0.0.1:9000"
sender_comp_id = "R"
target_comp_id = "D2"
"#;

fn config() -> Config {
    Config::parse(ROUTER, "router.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn dealers_err(text: &str) -> ConfigError {
    Dealers::parse(text, "dealers.toml", &config()).expect_err("must be refused")
}

#[test]
fn shipped_files_load_together() {
    let config = Config::embedded().unwrap_or_else(|e| panic!("{e}"));
    let dealers = Dealers::embedded(&config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dealers.dealers.len(), 4);
    assert_eq!(config.rfq.desk_sessions.len(), 1);
    assert_eq!(config.rfq.protocol.kind, ProtocolKind::Broadcast);
    let b = &dealers.dealers[1];
    assert_eq!(b.hit_with, HitMessage::NewOrderSingle);
    assert_eq!(config.sessions[b.session].name, "dealer-b");
    let engine = dealers.engine_dealers();
    assert_eq!(engine[2].party_id.as_bytes(), b"DLRC");
    assert!(!engine[2].disclose_side_and_size);
}

#[test]
fn a_dealer_on_an_unknown_session_names_the_line() {
    let e = dealers_err("[[dealer]]\nname = \"X\"\nparty_id = \"X\"\nsession = \"nope\"\n");
    assert_eq!(e.line(), 4, "{e}");
    assert!(matches!(e.problem(), Some(Problem::UnknownSession { name }) if name == "nope"));
    assert!(e.to_string().starts_with("dealers.toml:4:"), "{e}");
}

#[test]
fn duplicate_names_party_ids_and_sessions_are_refused() {
    let two = |a: &str, b: &str| format!("[[dealer]]\n{a}\n\n[[dealer]]\n{b}\n");
    let e = dealers_err(&two(
        "name = \"X\"\nparty_id = \"P1\"\nsession = \"d1\"",
        "name = \"X\"\nparty_id = \"P2\"\nsession = \"d2\"",
    ));
    assert_eq!(e.line(), 7, "{e}");
    assert!(
        matches!(
            e.problem(),
            Some(Problem::DuplicateDealer {
                key: "name",
                first_line: 2,
                ..
            })
        ),
        "{e}"
    );
    let e = dealers_err(&two(
        "name = \"X\"\nparty_id = \"P1\"\nsession = \"d1\"",
        "name = \"Y\"\nparty_id = \"P1\"\nsession = \"d2\"",
    ));
    assert!(
        matches!(
            e.problem(),
            Some(Problem::DuplicateDealer {
                key: "party_id",
                ..
            })
        ),
        "{e}"
    );
    let e = dealers_err(&two(
        "name = \"X\"\nparty_id = \"P1\"\nsession = \"d1\"",
        "name = \"Y\"\nparty_id = \"P2\"\nsession = \"d1\"",
    ));
    assert!(
        matches!(e.problem(), Some(Problem::SessionTaken { .. })),
        "{e}"
    );
    assert_eq!(e.line(), 9, "{e}");
}

#[test]
fn a_dealer_cannot_use_a_desk_session_and_tiers_are_bounded() {
    let e = dealers_err("[[dealer]]\nname = \"X\"\nparty_id = \"X\"\nsession = \"desk\"\n");
    assert!(
        matches!(e.problem(), Some(Problem::SessionTaken { .. })),
        "{e}"
    );
    let e =
        dealers_err("[[dealer]]\nname = \"X\"\nparty_id = \"X\"\nsession = \"d1\"\ntier = 10\n");
    assert_eq!(e.line(), 5, "{e}");
    assert!(
        matches!(e.problem(), Some(Problem::OutOfRange { key: "tier", .. })),
        "{e}"
    );
    let e = dealers_err("[[dealer]]\nname = \"X\"\nparty_id = \"has space\"\nsession = \"d1\"\n");
    assert!(
        matches!(
            e.problem(),
            Some(Problem::BadIdentifier {
                key: "party_id",
                ..
            })
        ),
        "{e}"
    );
}

#[test]
fn unknown_keys_and_bad_enum_values_are_syntax_errors_with_a_line() {
    let e = dealers_err(
        "[[dealer]]\nname = \"X\"\nparty_id = \"X\"\nsession = \"d1\"\ncolour = \"red\"\n",
    );
    assert_eq!(e.line(), 5, "{e}");
    let e = dealers_err(
        "[[dealer]]\nname = \"X\"\nparty_id = \"X\"\nsession = \"d1\"\nhit_with = \"email\"\n",
    );
    assert_eq!(e.line(), 5, "{e}");
}

#[test]
fn excluded_dealers_get_tier_zero() {
    let d = Dealers::parse(
        "[[dealer]]\nname = \"X\"\nparty_id = \"X\"\nsession = \"d1\"\ntier = 2\nexcluded = true\n",
        "dealers.toml",
        &config(),
    )
    .unwrap();
    assert_eq!(d.dealers[0].tier, 0);
}

#[test]
fn rfq_table_errors_name_the_line() {
    let bad_desk = ROUTER.replace(
        "desk_sessions = [\"desk\"]",
        "desk_sessions = [\"desk\", \"ghost\"]",
    );
    let e = Config::parse(&bad_desk, "router.toml").unwrap_err();
    assert_eq!(e.line(), 2, "{e}");
    assert!(
        matches!(e.problem(), Some(Problem::UnknownSession { .. })),
        "{e}"
    );
    let bad_kind = ROUTER.replace(
        "desk_sessions = [\"desk\"]",
        "desk_sessions = [\"desk\"]\n[rfq.protocol]\nkind = \"shout\"",
    );
    let e = Config::parse(&bad_kind, "router.toml").unwrap_err();
    assert_eq!(e.line(), 4, "{e}");
    assert!(e.to_string().contains("unknown variant"), "{e}");
    let too_many = ROUTER.replace(
        "desk_sessions = [\"desk\"]",
        "desk_sessions = [\"desk\"]\n[rfq.protocol]\nmax_dealers = 33",
    );
    let e = Config::parse(&too_many, "router.toml").unwrap_err();
    assert_eq!(e.line(), 4, "{e}");
    assert!(
        matches!(
            e.problem(),
            Some(Problem::OutOfRange {
                key: "max_dealers",
                ..
            })
        ),
        "{e}"
    );
    let neg = ROUTER.replace(
        "desk_sessions = [\"desk\"]",
        "desk_sessions = [\"desk\"]\n[rfq.protocol]\nwhisper_tolerance_bps = -1.0",
    );
    let e = Config::parse(&neg, "router.toml").unwrap_err();
    assert!(
        matches!(
            e.problem(),
            Some(Problem::DecimalOutOfRange {
                key: "whisper_tolerance_bps",
                ..
            })
        ),
        "{e}"
    );
}
