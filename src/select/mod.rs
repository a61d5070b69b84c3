//! Dealer selection: whom to ask for a quote, and how.
//!
//! This branch adds the security master (`instruments`), pre-trade analytics (`pretrade`) and
//! the rules engine (`rules`, with its condition language in `expr`). Selection is part of the
//! deterministic core: it never reads the clock (`now` is a parameter), does no I/O on the
//! per-RFQ path and does not allocate while selecting. Loading files (`RuleSet::load`,
//! `SecurityMaster::load`) is start-up / reload work and may allocate.
//!
//! `ProtocolKind` and `Protocol` below are copied verbatim from the RFQ engine branch
//! (`rfq`), where this module also owns the `Panel` trait; the lead reconciles the two.

pub mod expr;
pub mod instruments;
pub mod pretrade;
pub mod rules;

/// How the chosen dealers are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolKind {
    /// The whole panel at once.
    Broadcast,
    /// One dealer after another, a fixed gap apart, whatever the answers.
    Staggered,
    /// The next dealer only when the current one times out, declines, or quotes outside the
    /// tolerance around fair value.
    Whisper,
}

impl ProtocolKind {
    pub fn code(self) -> u8 {
        match self {
            ProtocolKind::Broadcast => 0,
            ProtocolKind::Staggered => 1,
            ProtocolKind::Whisper => 2,
        }
    }
}

/// The protocol and its timers for one RFQ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Protocol {
    pub kind: ProtocolKind,
    /// At most this many dealers are asked (1..=MAX_PANEL).
    pub max_dealers: u8,
    /// Each asked dealer has this long to quote or decline.
    pub response_timeout_ms: u64,
    /// Staggered: the gap between two dealers.
    pub stagger_gap_ms: u64,
    /// The whole RFQ ends this long after it arrived (unless the desk's ValidUntilTime is
    /// sooner).
    pub rfq_expiry_ms: u64,
    /// After this many dealers have been asked one by one without a usable quote, ask all the
    /// rest at once (0: never).
    pub escalate_after: u8,
    /// Whisper: a quote further than this from fair value (in bps) moves on to the next
    /// dealer.
    pub whisper_tolerance_bps: f64,
    /// Execute without the desk's click when a full-size quote is within this many bps of
    /// fair value (None: never).
    pub auto_execute_bps: Option<f64>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            kind: ProtocolKind::Broadcast,
            max_dealers: 4,
            response_timeout_ms: 20_000,
            stagger_gap_ms: 5_000,
            rfq_expiry_ms: 120_000,
            escalate_after: 0,
            whisper_tolerance_bps: 25.0,
            auto_execute_bps: None,
        }
    }
}
