//! The dealer database: `config/dealers.toml`, static data per dealer.
//!
//! Owns the file format and its validation (a bad file is refused with file:line:column and
//! the reason, before anything starts): who each dealer is (name, legal entity, the PartyID
//! desks know it by, desks and contacts, asset-class specialisms, agreements), which FIX
//! session reaches it, its manual tier or exclusion, and how the router deals with it
//! (disclose side and size or ask two-sided; hit by QuoteResponse or NewOrderSingle; tell
//! losers). Dynamic statistics are not here: they live in the score tables. Turns text into
//! plain values; opens no socket and reads no clock.

use crate::config::{Checker, Config, ConfigError, Num, Problem, MAX_COMP_ID_LEN};
use crate::rfq::engine::{DealerConfig, HitWith};
use crate::rfq::types::{DealerId, FixId, SessionId, FIX_ID_MAX};
use crate::select::Candidate;
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

/// The dealer database shipped in `config/dealers.toml`, compiled in for the demo.
pub const EMBEDDED_DEALERS_TOML: &str = include_str!("../config/dealers.toml");

/// Where the embedded file says it came from in error messages.
pub const EMBEDDED_DEALERS_ORIGIN: &str = "<embedded config/dealers.toml>";

/// Most dealers in one database.
pub const MAX_DEALERS: usize = 10_000;

/// A contact at a dealer's desk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub desk: String,
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub email: String,
}

/// How a hit is sent to this dealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HitMessage {
    /// QuoteResponse (AJ), QuoteRespType 1.
    #[default]
    QuoteResponse,
    /// NewOrderSingle (D), OrdType D.
    NewOrderSingle,
}

/// One dealer, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Dealer {
    pub name: String,
    pub legal_entity: String,
    pub party_id: String,
    /// Index of its session in `Config::sessions`.
    pub session: usize,
    /// 1 best; 0 excluded from selection (a trader may still name it).
    pub tier: u8,
    pub asset_classes: Vec<String>,
    pub agreements: Vec<String>,
    pub contacts: Vec<Contact>,
    pub disclose_side_and_size: bool,
    pub hit_with: HitMessage,
    pub tell_losers: bool,
    /// Line of the `[[dealer]]` entry.
    pub line: usize,
}

impl Dealer {
    /// A dealer as a `[[dealer]]` entry with only these keys loads: no legal entity,
    /// agreements or contacts; side and size disclosed, hits as QuoteResponse, losers told.
    pub fn new(
        name: String,
        party_id: String,
        session: usize,
        tier: u8,
        asset_classes: Vec<String>,
    ) -> Dealer {
        Dealer {
            name,
            legal_entity: String::new(),
            party_id,
            session,
            tier,
            asset_classes,
            agreements: Vec::new(),
            contacts: Vec::new(),
            disclose_side_and_size: yes(),
            hit_with: HitMessage::default(),
            tell_losers: yes(),
            line: 0,
        }
    }
}

/// The whole database, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Dealers {
    pub dealers: Vec<Dealer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    dealer: Vec<RawDealer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDealer {
    name: Spanned<String>,
    #[serde(default)]
    legal_entity: String,
    party_id: Spanned<String>,
    session: Spanned<String>,
    tier: Num,
    #[serde(default)]
    excluded: bool,
    #[serde(default)]
    asset_classes: Vec<String>,
    #[serde(default)]
    agreements: Vec<String>,
    #[serde(default)]
    contact: Vec<Contact>,
    #[serde(default = "yes")]
    disclose_side_and_size: bool,
    #[serde(default)]
    hit_with: HitMessage,
    #[serde(default = "yes")]
    tell_losers: bool,
}

fn yes() -> bool {
    true
}

impl Dealers {
    /// Reads and validates the file at `path` against the router configuration.
    pub fn load(path: &Path, config: &Config) -> Result<Dealers, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: origin.clone(),
            error,
        })?;
        Dealers::parse(&text, &origin, config)
    }

    /// The database compiled in from `config/dealers.toml`.
    pub fn embedded(config: &Config) -> Result<Dealers, ConfigError> {
        Dealers::parse(EMBEDDED_DEALERS_TOML, EMBEDDED_DEALERS_ORIGIN, config)
    }

    /// Parses and validates `text` (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str, config: &Config) -> Result<Dealers, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |s| crate::config::line_col(text, s.start));
            ConfigError::Syntax {
                path: origin.to_string(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let checker = Checker { text, origin };
        let mut dealers: Vec<Dealer> = Vec::with_capacity(raw.dealer.len());
        for r in &raw.dealer {
            if dealers.len() == MAX_DEALERS {
                return Err(checker.invalid(
                    r.name.span(),
                    Problem::OutOfRange {
                        key: "dealer",
                        value: raw.dealer.len() as u64,
                        min: 0,
                        max: MAX_DEALERS as u64,
                    },
                ));
            }
            let line = crate::config::line_col(text, r.name.span().start).0;
            let name = checker.identifier_text(&r.name, "name")?;
            let party_id = checker.identifier(&r.party_id, "party_id", FIX_ID_MAX)?;
            for d in &dealers {
                if d.name == name {
                    return Err(checker.invalid(
                        r.name.span(),
                        Problem::DuplicateDealer {
                            key: "name",
                            value: name,
                            first_line: d.line,
                        },
                    ));
                }
                if d.party_id == party_id {
                    return Err(checker.invalid(
                        r.party_id.span(),
                        Problem::DuplicateDealer {
                            key: "party_id",
                            value: party_id,
                            first_line: d.line,
                        },
                    ));
                }
            }
            let session_name = r.session.get_ref();
            let Some(session) = config.sessions.iter().position(|s| s.name == *session_name) else {
                return Err(checker.invalid(
                    r.session.span(),
                    Problem::UnknownSession {
                        name: session_name.clone(),
                    },
                ));
            };
            if config.rfq.desk_sessions.contains(&session) {
                return Err(checker.invalid(
                    r.session.span(),
                    Problem::SessionTaken {
                        name: session_name.clone(),
                        by: "a desk ([rfq] desk_sessions)".into(),
                    },
                ));
            }
            if config.rfq.feed_sessions.contains(&session) {
                return Err(checker.invalid(
                    r.session.span(),
                    Problem::SessionTaken {
                        name: session_name.clone(),
                        by: "a market-data feed ([rfq] feed_sessions)".into(),
                    },
                ));
            }
            if let Some(other) = dealers.iter().find(|d| d.session == session) {
                return Err(checker.invalid(
                    r.session.span(),
                    Problem::SessionTaken {
                        name: session_name.clone(),
                        by: format!("dealer {:?}", other.name),
                    },
                ));
            }
            let tier = checker.num(&r.tier, "tier", 1, 1, 9)? as u8;
            dealers.push(Dealer {
                name,
                legal_entity: r.legal_entity.clone(),
                party_id,
                session,
                tier: if r.excluded { 0 } else { tier },
                asset_classes: r.asset_classes.clone(),
                agreements: r.agreements.clone(),
                contacts: r.contact.clone(),
                disclose_side_and_size: r.disclose_side_and_size,
                hit_with: r.hit_with,
                tell_losers: r.tell_losers,
                line,
            });
        }
        Ok(Dealers { dealers })
    }

    /// Every dealer as a selection candidate, all taken as online (for recommendations made
    /// outside the engine, which alone knows who is logged on).
    pub fn candidates_all_online(&self) -> Vec<Candidate> {
        self.dealers
            .iter()
            .enumerate()
            .map(|(i, d)| Candidate {
                dealer: DealerId(i as u16),
                tier: d.tier,
                online: true,
            })
            .collect()
    }

    /// The engine's view of the dealers (session ids are `Config::sessions` indices).
    pub fn engine_dealers(&self) -> Vec<DealerConfig> {
        self.dealers
            .iter()
            .map(|d| DealerConfig {
                name: d.name.clone(),
                party_id: FixId::new(d.party_id.as_bytes())
                    .expect("party_id length checked at load"),
                session: SessionId(d.session as u16),
                tier: d.tier,
                disclose_side_and_size: d.disclose_side_and_size,
                hit_with: match d.hit_with {
                    HitMessage::QuoteResponse => HitWith::QuoteResponse,
                    HitMessage::NewOrderSingle => HitWith::NewOrderSingle,
                },
                tell_losers: d.tell_losers,
            })
            .collect()
    }
}

impl Checker<'_> {
    /// A display name: printable, not empty, at most `MAX_COMP_ID_LEN` characters (spaces
    /// allowed).
    fn identifier_text(
        &self,
        value: &Spanned<String>,
        key: &'static str,
    ) -> Result<String, ConfigError> {
        let s = value.get_ref();
        let reason = if s.trim().is_empty() {
            Some("must not be empty")
        } else if s.chars().count() > MAX_COMP_ID_LEN {
            Some("too long")
        } else if s.chars().any(char::is_control) {
            Some("control characters are not allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(self.invalid(
                value.span(),
                Problem::BadIdentifier {
                    key,
                    value: s.clone(),
                    reason,
                },
            )),
            None => Ok(s.clone()),
        }
    }
}
