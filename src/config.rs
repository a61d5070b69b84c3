//! The router's configuration: `config/router.toml`, QuickFIX-style session settings.
//!
//! This module owns the file format (a `[router]` table, a `[limits]` table, one
//! `[[session]]` table per FIX session, `[rfq]` and `[journal]`), its defaults, and its validation: a bad file is refused
//! before anything starts, with a [`ConfigError`] that names the file, the line, the column
//! and the reason. It turns text into plain, checked values and nothing else: it opens no
//! socket, starts no thread and does no DNS lookup (addresses are literal `ip:port`).
//!
//! QuickFIX names map one to one: `SenderCompID` -> `sender_comp_id`, `TargetCompID` ->
//! `target_comp_id`, `HeartBtInt` -> `heart_bt_int_s`, `ResetOnLogon` -> `reset_on_logon`,
//! `ReconnectInterval` -> `reconnect_interval_ms`, `LogonTimeout` -> `logon_timeout_ms`,
//! `LogoutTimeout` -> `logout_timeout_ms`, `CheckLatency`/`MaxLatency` -> `max_latency_s`,
//! `SocketAcceptPort` -> `listen`, `SocketConnectHost`/`SocketConnectPort` -> `connect`.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// The configuration shipped in `config/router.toml`, compiled in for the demo and for tools
/// that run without a file.
pub const EMBEDDED_ROUTER_TOML: &str = include_str!("../config/router.toml");

/// Where the embedded configuration says it came from in error messages.
pub const EMBEDDED_ORIGIN: &str = "<embedded config/router.toml>";

/// Upper bound on any byte limit (1 GiB): a typo such as an extra zero is refused, not obeyed.
pub const MAX_BYTES_LIMIT: u64 = 1 << 30;

/// Longest SenderCompID / TargetCompID accepted.
pub const MAX_COMP_ID_LEN: usize = 64;

/// Longest session name accepted.
pub const MAX_SESSION_NAME_LEN: usize = 64;

/// A whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub router: RouterSettings,
    pub limits: Limits,
    pub sessions: Vec<SessionConfig>,
    pub rfq: RfqSettings,
    pub admin: AdminSettings,
    /// `[scoring]`: the score tables, TCA and the scoring thread.
    pub scoring: crate::scoring::ScoringSettings,
    /// `[market_data]`: mids replayed from a CSV file.
    pub market_data: crate::mid_replay::MarketDataSettings,
    pub journal: JournalSettings,
    /// `[simulation]`: only in the configuration `rfq-router demo` writes for its loopback
    /// router (and `rfq-journal replay` reads back); `rfq-router run` refuses it.
    pub simulation: SimulationSettings,
}

/// The `[simulation]` table: how the demo's loopback router bends the panel's choice
/// (`sim::policy::SimulatedPanel`). Defaults change nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimulationSettings {
    /// Virtual seconds per wall second: the panel's protocol timers are divided by it
    /// (0 or 1: nothing is scaled).
    pub time_compression: u64,
    /// Every RFQ asked in this protocol, whatever the rules say.
    pub force_protocol: Option<crate::select::ProtocolKind>,
}

/// The `[admin]` table: the admin thread's HTTP endpoint (`/metrics`, `/api/recommend`,
/// `/healthz`) and its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminSettings {
    /// Where the admin thread listens (`None`: `listen = ""`, no admin thread).
    pub listen: Option<SocketAddr>,
    /// Connections served at once; past it a connection gets 503 and is closed (counted).
    pub max_connections: u32,
    /// Largest request (request line and headers); past it: 431 and close (counted).
    pub max_request_bytes: u32,
    /// Time a connection has from accept to a whole request; past it: 408 and close.
    pub request_timeout_ms: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9880))),
            max_connections: 8,
            max_request_bytes: 8192,
            request_timeout_ms: 5_000,
        }
    }
}

/// The `[journal]` table: where and how the router journals (see `src/journal/FORMAT.md`).
/// Turned into a `journal::JournalConfig` by `journal::tap::journal_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSettings {
    /// The journal directory; a relative path is taken from the working directory.
    pub dir: std::path::PathBuf,
    /// Size of each pre-allocated segment file.
    pub segment_size_mb: u64,
    pub durability: JournalDurability,
    /// `fsync`: a group commit at most this long after the oldest unsynced record.
    pub group_commit_us: u64,
    /// `fsync`: or as soon as this many records wait, whichever comes first.
    pub group_commit_records: u32,
    /// Records that can wait between the engine thread and the journal thread.
    pub queue_capacity: usize,
    /// Write-ahead: an outbound frame reaches the kernel only once its record is written
    /// (survives a crash of the process), so nothing a peer received is missing after one.
    pub write_ahead: bool,
    /// What a restart does with RFQs the journal shows open (`open_rfqs_on_restart`).
    pub open_rfqs_on_restart: RestartPolicySetting,
    /// What a restart does when the score tables disagree with the score rows the journal
    /// holds (`scores_on_restart`).
    pub scores_on_restart: ScoresOnRestart,
    /// Sent frames each session keeps in memory for resends (older ones are read back from
    /// the journal).
    pub store_recent_frames: usize,
    /// Outbound MsgSeqNums indexed per session for resends; older ones are gap-filled.
    pub store_max_indexed: usize,
}

/// `[journal] open_rfqs_on_restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartPolicySetting {
    /// Expire them: each desk gets QuoteStatusReport 297=7 when it logs on again.
    #[default]
    Expire,
}

/// `[journal] scores_on_restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoresOnRestart {
    /// Log the differing rows and write the journal's rows into the tables.
    #[default]
    Rebuild,
    /// Log the differing rows only (the tables stay as they are).
    Verify,
}

impl Default for JournalSettings {
    fn default() -> Self {
        JournalSettings {
            dir: std::path::PathBuf::from("journal"),
            segment_size_mb: 64,
            durability: JournalDurability::Os,
            group_commit_us: 1000,
            group_commit_records: 256,
            queue_capacity: 16_384,
            write_ahead: true,
            open_rfqs_on_restart: RestartPolicySetting::Expire,
            scores_on_restart: ScoresOnRestart::Rebuild,
            store_recent_frames: 1024,
            store_max_indexed: 1 << 20,
        }
    }
}

/// How far a record must get before it counts as journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalDurability {
    /// In the page cache: survives a crash of the process, not of the machine.
    #[default]
    Os,
    /// Synced to disk by group commit; an ExecutionReport reaches the desk only once its
    /// record is durable.
    Fsync,
}

/// The `[rfq]` table: which sessions are desks, the RFQ engine's limits, and the protocol
/// used when no rule prescribes one.
#[derive(Debug, Clone, PartialEq)]
pub struct RfqSettings {
    /// Indices (into `Config::sessions`) of the sessions whose peers are trading desks.
    pub desk_sessions: Vec<usize>,
    /// Indices of the sessions whose peers are market-data feeds (MarketDataSnapshotFullRefresh).
    pub feed_sessions: Vec<usize>,
    pub limits: crate::rfq::engine::EngineLimits,
    /// Resolution of the engine's timer wheel.
    pub timer_tick_ms: u64,
    pub protocol: crate::select::Protocol,
}

/// The `[router]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterSettings {
    /// How the engine thread waits for work.
    pub idle: IdleStrategy,
    /// The CPU the engine thread is pinned to (`None`: unpinned). A CPU this process may not
    /// use is not an error: the router starts unpinned and says so once.
    pub engine_cpu: Option<usize>,
    /// The journal writer thread's CPU (`None`: unpinned); same rule as `engine_cpu`.
    pub journal_cpu: Option<usize>,
    /// The scoring (TCA) thread's CPU.
    pub scoring_cpu: Option<usize>,
    /// The admin (metrics, API) thread's CPU.
    pub admin_cpu: Option<usize>,
}

/// How the network loop waits when it has nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleStrategy {
    /// Wait in epoll until an event or the next timer deadline.
    #[default]
    Block,
    /// Poll with a zero timeout, forever: the lowest latency, one core burnt.
    Spin,
    /// Spin for a while, then yield, then block until the next deadline.
    Backoff,
}

/// The `[limits]` table: router-wide bounds, and the per-connection defaults that a
/// session's own `[session.limits]` may override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most `[[session]]` entries the router accepts (sizes the session table).
    pub max_sessions: u32,
    /// Most open sockets (accepted + outbound), listeners excluded. Past it, a new inbound
    /// connection is accepted and closed at once, and counted.
    pub max_connections: u32,
    /// Most accepted connections that have not yet completed a Logon.
    pub max_pending_logon: u32,
    /// Bytes a connection may read per readiness event before the loop serves others.
    pub read_bytes_per_event: u32,
    /// Connections a listener may accept per readiness event before the loop serves others.
    pub accepts_per_event: u32,
    /// How long an outbound TCP connect may take before it counts as failed.
    pub connect_timeout_ms: u64,
    /// How long a closing connection may take to flush its queue and see the peer's FIN.
    pub close_linger_ms: u64,
    /// Per-connection defaults.
    pub connection: ConnectionLimits,
}

/// Bounds on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Largest FIX message accepted, header to checksum.
    pub max_message_bytes: u32,
    /// Size of the connection's read buffer; at least `max_message_bytes`.
    pub read_buffer_bytes: u32,
    /// Most bytes queued for a peer that is not reading; past it the peer is disconnected.
    pub write_queue_bytes: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_message_bytes: 64 * 1024,
            read_buffer_bytes: 128 * 1024,
            write_queue_bytes: 1024 * 1024,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 256,
            max_connections: 1024,
            max_pending_logon: 64,
            read_bytes_per_event: 64 * 1024,
            accepts_per_event: 64,
            connect_timeout_ms: 5_000,
            close_linger_ms: 2_000,
            connection: ConnectionLimits::default(),
        }
    }
}

/// Which side opens the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Listens on `listen`; the counterparty connects and logs on.
    Acceptor,
    /// Connects to `connect` and logs on; reconnects with back-off when the connection drops.
    Initiator,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Acceptor => "acceptor",
            Role::Initiator => "initiator",
        })
    }
}

/// One validated `[[session]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Unique name, used in logs and metrics.
    pub name: String,
    pub role: Role,
    /// `listen` for an acceptor, `connect` for an initiator.
    pub addr: SocketAddr,
    /// Our CompID (tag 49 on what we send).
    pub sender_comp_id: String,
    /// The counterparty's CompID (tag 56 on what we send).
    pub target_comp_id: String,
    /// HeartBtInt (108) an initiator sends in its Logon; an acceptor adopts the peer's value.
    pub heart_bt_int_s: u32,
    /// Send/accept ResetSeqNumFlag (141=Y) on Logon and start both sequences at 1.
    pub reset_on_logon: bool,
    /// First delay before reconnecting (initiator); doubles on each failure up to the cap.
    pub reconnect_interval_ms: u64,
    /// Cap on the reconnect delay (initiator).
    pub reconnect_max_ms: u64,
    /// Time allowed from TCP connect to a completed Logon.
    pub logon_timeout_ms: u64,
    /// Time allowed for the counterparty to answer our Logout.
    pub logout_timeout_ms: u64,
    /// Largest accepted |SendingTime - now|, seconds; 0 turns the check off.
    pub max_latency_s: u32,
    /// This session's connection limits: `[limits]` with `[session.limits]` applied.
    pub limits: ConnectionLimits,
    /// 1-based line of the entry's `name` in the file, for later diagnostics.
    pub line: usize,
}

impl SessionConfig {
    /// Defaults, for sessions built in code (tests, tools).
    pub fn new(
        name: &str,
        role: Role,
        addr: SocketAddr,
        sender_comp_id: &str,
        target_comp_id: &str,
    ) -> SessionConfig {
        SessionConfig {
            name: name.to_string(),
            role,
            addr,
            sender_comp_id: sender_comp_id.to_string(),
            target_comp_id: target_comp_id.to_string(),
            heart_bt_int_s: DEFAULT_HEART_BT_INT_S,
            reset_on_logon: false,
            reconnect_interval_ms: DEFAULT_RECONNECT_INTERVAL_MS,
            reconnect_max_ms: DEFAULT_RECONNECT_MAX_MS,
            logon_timeout_ms: DEFAULT_LOGON_TIMEOUT_MS,
            logout_timeout_ms: DEFAULT_LOGOUT_TIMEOUT_MS,
            max_latency_s: DEFAULT_MAX_LATENCY_S,
            limits: ConnectionLimits::default(),
            line: 0,
        }
    }
}

const DEFAULT_HEART_BT_INT_S: u32 = 30;
const DEFAULT_RECONNECT_INTERVAL_MS: u64 = 1_000;
const DEFAULT_RECONNECT_MAX_MS: u64 = 30_000;
const DEFAULT_LOGON_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_LOGOUT_TIMEOUT_MS: u64 = 2_000;
const DEFAULT_MAX_LATENCY_S: u32 = 120;
/// Longest HeartBtInt accepted (one hour).
const MAX_HEART_BT_INT_S: u64 = 3_600;
/// Longest timeout / interval accepted (one day).
const MAX_DURATION_MS: u64 = 86_400_000;

/// Why a configuration was refused.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read { path: String, error: std::io::Error },
    /// TOML syntax, a wrong type, an unknown or missing key: the reason is toml's.
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed TOML whose values are not acceptable.
    Invalid {
        path: String,
        line: usize,
        column: usize,
        problem: Problem,
    },
}

impl ConfigError {
    /// 1-based line the error points at (0 for a read error).
    pub fn line(&self) -> usize {
        match self {
            ConfigError::Read { .. } => 0,
            ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// 1-based column the error points at (0 for a read error).
    pub fn column(&self) -> usize {
        match self {
            ConfigError::Read { .. } => 0,
            ConfigError::Syntax { column, .. } | ConfigError::Invalid { column, .. } => *column,
        }
    }

    /// The semantic problem, if this is one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ConfigError::Invalid { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => write!(f, "{path}: cannot read: {error}"),
            ConfigError::Syntax {
                path,
                line,
                column,
                message,
            } => write!(f, "{path}:{line}:{column}: {}", message.trim_end()),
            ConfigError::Invalid {
                path,
                line,
                column,
                problem,
            } => write!(f, "{path}:{line}:{column}: {problem}"),
        }
    }
}

/// The message already carries the I/O error's text, so no `source` is reported (a chain
/// printer would otherwise say it twice).
impl std::error::Error for ConfigError {}

/// A semantic problem in well-formed TOML.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Two `[[session]]` entries share a name.
    DuplicateSessionName { name: String, first_line: usize },
    /// Two sessions share the (SenderCompID, TargetCompID) identity.
    DuplicateCompIds {
        sender_comp_id: String,
        target_comp_id: String,
        first_session: String,
    },
    /// An address that is not a literal `ip:port`.
    BadAddress { value: String, reason: String },
    /// Port 0 is only for tests that build their config in code.
    ZeroPort { value: String },
    /// The role's address key is missing (`listen` for an acceptor, `connect` for an initiator).
    MissingAddress { role: Role, key: &'static str },
    /// The other role's address key is present.
    WrongAddressKey { role: Role, key: &'static str },
    /// A key that only makes sense for initiators appears on an acceptor.
    InitiatorOnly { key: &'static str },
    /// A limit, interval or timeout of zero.
    Zero { key: &'static str },
    /// A value outside its accepted range.
    OutOfRange {
        key: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    /// The read buffer cannot hold one message of the largest accepted size.
    ReadBufferBelowMaxMessage {
        read_buffer_bytes: u64,
        max_message_bytes: u64,
    },
    /// `reconnect_max_ms` below `reconnect_interval_ms`.
    ReconnectMaxBelowInterval { interval_ms: u64, max_ms: u64 },
    /// A CompID or session name that is empty, too long, or not printable ASCII
    /// without `=` (which would break the wire format).
    BadIdentifier {
        key: &'static str,
        value: String,
        reason: &'static str,
    },
    /// More `[[session]]` entries than `max_sessions`.
    TooManySessions { count: usize, max: u64 },
    /// A reference to a `[[session]]` name that is not defined.
    UnknownSession { name: String },
    /// A dealer name or PartyID used twice in `config/dealers.toml`.
    DuplicateDealer {
        key: &'static str,
        value: String,
        first_line: usize,
    },
    /// A dealer bound to a session that is a desk session, or to another dealer's session.
    SessionTaken { name: String, by: String },
    /// A decimal value outside its accepted range.
    DecimalOutOfRange {
        key: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
    /// A table whose values are each fine but do not work together (e.g. `[scoring.model]`).
    Invalid { key: &'static str, reason: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::DuplicateSessionName { name, first_line } => write!(
                f,
                "duplicate session name {name:?} (first defined on line {first_line})"
            ),
            Problem::DuplicateCompIds {
                sender_comp_id,
                target_comp_id,
                first_session,
            } => write!(
                f,
                "sender_comp_id {sender_comp_id:?} / target_comp_id {target_comp_id:?} already \
                 used by session {first_session:?}"
            ),
            Problem::BadAddress { value, reason } => {
                write!(f, "bad address {value:?}: {reason} (expected ip:port)")
            }
            Problem::ZeroPort { value } => write!(f, "address {value:?} has port 0"),
            Problem::MissingAddress { role, key } => {
                write!(f, "an {role} session needs `{key}`")
            }
            Problem::WrongAddressKey { role, key } => {
                write!(f, "`{key}` does not apply to an {role} session")
            }
            Problem::InitiatorOnly { key } => {
                write!(f, "`{key}` only applies to initiator sessions")
            }
            Problem::Zero { key } => write!(f, "`{key}` must be greater than zero"),
            Problem::OutOfRange {
                key,
                value,
                min,
                max,
            } => write!(f, "`{key}` = {value} is outside {min}..={max}"),
            Problem::ReadBufferBelowMaxMessage {
                read_buffer_bytes,
                max_message_bytes,
            } => write!(
                f,
                "read_buffer_bytes ({read_buffer_bytes}) must be at least max_message_bytes \
                 ({max_message_bytes})"
            ),
            Problem::ReconnectMaxBelowInterval {
                interval_ms,
                max_ms,
            } => write!(
                f,
                "reconnect_max_ms ({max_ms}) must be at least reconnect_interval_ms \
                 ({interval_ms})"
            ),
            Problem::BadIdentifier { key, value, reason } => {
                write!(f, "`{key}` = {value:?}: {reason}")
            }
            Problem::TooManySessions { count, max } => {
                write!(f, "{count} sessions configured, max_sessions is {max}")
            }
            Problem::DuplicateDealer {
                key,
                value,
                first_line,
            } => write!(f, "{key} {value:?} already used on line {first_line}"),
            Problem::SessionTaken { name, by } => {
                write!(f, "session {name:?} is already used by {by}")
            }
            Problem::UnknownSession { name } => {
                write!(f, "no [[session]] is named {name:?}")
            }
            Problem::DecimalOutOfRange {
                key,
                value,
                min,
                max,
            } => write!(f, "`{key}` = {value} is outside {min}..={max}"),
            Problem::Invalid { key, reason } => write!(f, "`{key}`: {reason}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Raw (as written) form: every value that can be semantically wrong keeps its span.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    router: RawRouter,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    session: Vec<RawSession>,
    #[serde(default)]
    rfq: RawRfq,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    scoring: crate::scoring::RawScoring,
    #[serde(default)]
    market_data: crate::mid_replay::RawMarketData,
    #[serde(default)]
    journal: RawJournal,
    simulation: Option<RawSimulation>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSimulation {
    time_compression: Num,
    force_protocol: Option<RawProtocolKind>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<Spanned<String>>,
    max_connections: Num,
    max_request_bytes: Num,
    request_timeout_ms: Num,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    dir: Option<Spanned<String>>,
    segment_size_mb: Num,
    durability: Option<JournalDurability>,
    group_commit_us: Num,
    group_commit_records: Num,
    queue_capacity: Num,
    write_ahead: Option<bool>,
    open_rfqs_on_restart: Option<RestartPolicySetting>,
    scores_on_restart: Option<ScoresOnRestart>,
    store_recent_frames: Num,
    store_max_indexed: Num,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRfq {
    #[serde(default)]
    desk_sessions: Vec<Spanned<String>>,
    #[serde(default)]
    feed_sessions: Vec<Spanned<String>>,
    max_open_rfqs: Num,
    max_legs: Num,
    max_timers: Num,
    timer_tick_ms: Num,
    max_price: Option<Spanned<f64>>,
    execution_timeout_ms: Num,
    max_timed_out_executions: Num,
    #[serde(default)]
    protocol: RawProtocol,
}

/// Protocol names as written in the file.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawProtocolKind {
    Broadcast,
    Staggered,
    Whisper,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProtocol {
    kind: Option<RawProtocolKind>,
    max_dealers: Num,
    response_timeout_ms: Num,
    stagger_gap_ms: Num,
    rfq_expiry_ms: Num,
    escalate_after: Num,
    whisper_tolerance_bps: Option<Spanned<f64>>,
    auto_execute_bps: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    #[serde(default)]
    idle: IdleStrategy,
    #[serde(default)]
    engine_cpu: Option<usize>,
    #[serde(default)]
    journal_cpu: Option<usize>,
    #[serde(default)]
    scoring_cpu: Option<usize>,
    #[serde(default)]
    admin_cpu: Option<usize>,
}

pub(crate) type Num = Option<Spanned<u64>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_sessions: Num,
    max_connections: Num,
    max_pending_logon: Num,
    read_bytes_per_event: Num,
    accepts_per_event: Num,
    connect_timeout_ms: Num,
    close_linger_ms: Num,
    max_message_bytes: Num,
    read_buffer_bytes: Num,
    write_queue_bytes: Num,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConnLimits {
    max_message_bytes: Num,
    read_buffer_bytes: Num,
    write_queue_bytes: Num,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    name: Spanned<String>,
    role: Role,
    listen: Option<Spanned<String>>,
    connect: Option<Spanned<String>>,
    sender_comp_id: Spanned<String>,
    target_comp_id: Spanned<String>,
    heart_bt_int_s: Num,
    #[serde(default)]
    reset_on_logon: bool,
    reconnect_interval_ms: Num,
    reconnect_max_ms: Num,
    logon_timeout_ms: Num,
    logout_timeout_ms: Num,
    max_latency_s: Num,
    limits: Option<RawConnLimits>,
}

/// Byte offsets -> 1-based (line, column), columns counted in characters.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

pub(crate) struct Checker<'a> {
    pub(crate) text: &'a str,
    pub(crate) origin: &'a str,
}

impl Checker<'_> {
    pub(crate) fn invalid(&self, span: Range<usize>, problem: Problem) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError::Invalid {
            path: self.origin.to_string(),
            line,
            column,
            problem,
        }
    }

    /// A number in `min..=max` (zero reported as `Zero` when `min` is 1), or `default`.
    pub(crate) fn num(
        &self,
        value: &Num,
        key: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let n = *v.get_ref();
        if n == 0 && min > 0 {
            return Err(self.invalid(v.span(), Problem::Zero { key }));
        }
        if n < min || n > max {
            return Err(self.invalid(
                v.span(),
                Problem::OutOfRange {
                    key,
                    value: n,
                    min,
                    max,
                },
            ));
        }
        Ok(n)
    }

    /// A decimal in `min..=max`, or `default`.
    pub(crate) fn decimal(
        &self,
        value: &Option<Spanned<f64>>,
        key: &'static str,
        default: f64,
        min: f64,
        max: f64,
    ) -> Result<f64, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let x = *v.get_ref();
        if !(x >= min && x <= max) {
            return Err(self.invalid(
                v.span(),
                Problem::DecimalOutOfRange {
                    key,
                    value: x,
                    min,
                    max,
                },
            ));
        }
        Ok(x)
    }

    fn rfq(&self, raw: &RawRfq, sessions: &[SessionConfig]) -> Result<RfqSettings, ConfigError> {
        use crate::rfq::engine::EngineLimits;
        use crate::select::{Protocol, ProtocolKind};
        let mut desk_sessions = Vec::with_capacity(raw.desk_sessions.len());
        for name in &raw.desk_sessions {
            match sessions.iter().position(|s| s.name == *name.get_ref()) {
                Some(i) => desk_sessions.push(i),
                None => {
                    return Err(self.invalid(
                        name.span(),
                        Problem::UnknownSession {
                            name: name.get_ref().clone(),
                        },
                    ))
                }
            }
        }
        let mut feed_sessions = Vec::with_capacity(raw.feed_sessions.len());
        for name in &raw.feed_sessions {
            let Some(i) = sessions.iter().position(|s| s.name == *name.get_ref()) else {
                return Err(self.invalid(
                    name.span(),
                    Problem::UnknownSession {
                        name: name.get_ref().clone(),
                    },
                ));
            };
            if desk_sessions.contains(&i) {
                return Err(self.invalid(
                    name.span(),
                    Problem::SessionTaken {
                        name: name.get_ref().clone(),
                        by: "a desk ([rfq] desk_sessions)".to_string(),
                    },
                ));
            }
            feed_sessions.push(i);
        }
        let d = EngineLimits::default();
        let limits = EngineLimits {
            max_open_rfqs: self.num(
                &raw.max_open_rfqs,
                "max_open_rfqs",
                d.max_open_rfqs as u64,
                1,
                1_000_000,
            )? as usize,
            max_legs: self.num(&raw.max_legs, "max_legs", d.max_legs as u64, 1, 8)? as usize,
            max_timers: self.num(
                &raw.max_timers,
                "max_timers",
                d.max_timers as u64,
                1,
                10_000_000,
            )? as usize,
            max_price: self.decimal(&raw.max_price, "max_price", d.max_price, 0.0, 1e12)?,
            execution_timeout_ms: self.num(
                &raw.execution_timeout_ms,
                "execution_timeout_ms",
                d.execution_timeout_ms,
                1,
                3_600_000,
            )?,
            max_timed_out_executions: self.num(
                &raw.max_timed_out_executions,
                "max_timed_out_executions",
                d.max_timed_out_executions as u64,
                0,
                1_000_000,
            )? as usize,
        };
        let timer_tick_ms = self.num(&raw.timer_tick_ms, "timer_tick_ms", 1, 1, 1000)?;
        let p = &raw.protocol;
        let dp = Protocol::default();
        let auto = self.decimal(&p.auto_execute_bps, "auto_execute_bps", 0.0, 0.0, 10_000.0)?;
        let protocol = Protocol {
            kind: match p.kind {
                None => dp.kind,
                Some(RawProtocolKind::Broadcast) => ProtocolKind::Broadcast,
                Some(RawProtocolKind::Staggered) => ProtocolKind::Staggered,
                Some(RawProtocolKind::Whisper) => ProtocolKind::Whisper,
            },
            max_dealers: self.num(
                &p.max_dealers,
                "max_dealers",
                u64::from(dp.max_dealers),
                1,
                crate::rfq::outbox::MAX_PANEL as u64,
            )? as u8,
            response_timeout_ms: self.num(
                &p.response_timeout_ms,
                "response_timeout_ms",
                dp.response_timeout_ms,
                1,
                3_600_000,
            )?,
            stagger_gap_ms: self.num(
                &p.stagger_gap_ms,
                "stagger_gap_ms",
                dp.stagger_gap_ms,
                1,
                3_600_000,
            )?,
            rfq_expiry_ms: self.num(
                &p.rfq_expiry_ms,
                "rfq_expiry_ms",
                dp.rfq_expiry_ms,
                1,
                86_400_000,
            )?,
            escalate_after: self.num(
                &p.escalate_after,
                "escalate_after",
                u64::from(dp.escalate_after),
                0,
                crate::rfq::outbox::MAX_PANEL as u64,
            )? as u8,
            whisper_tolerance_bps: self.decimal(
                &p.whisper_tolerance_bps,
                "whisper_tolerance_bps",
                dp.whisper_tolerance_bps,
                0.0,
                10_000.0,
            )?,
            auto_execute_bps: (auto > 0.0).then_some(auto),
        };
        Ok(RfqSettings {
            desk_sessions,
            feed_sessions,
            limits,
            timer_tick_ms,
            protocol,
        })
    }

    fn admin(&self, raw: &RawAdmin) -> Result<AdminSettings, ConfigError> {
        let d = AdminSettings::default();
        let listen = match &raw.listen {
            None => d.listen,
            Some(v) if v.get_ref().is_empty() => None,
            Some(v) => Some(self.address(v)?),
        };
        Ok(AdminSettings {
            listen,
            max_connections: self.num(
                &raw.max_connections,
                "max_connections",
                u64::from(d.max_connections),
                1,
                1024,
            )? as u32,
            max_request_bytes: self.num(
                &raw.max_request_bytes,
                "max_request_bytes",
                u64::from(d.max_request_bytes),
                256,
                1 << 20,
            )? as u32,
            request_timeout_ms: self.num(
                &raw.request_timeout_ms,
                "request_timeout_ms",
                d.request_timeout_ms,
                1,
                MAX_DURATION_MS,
            )?,
        })
    }

    fn journal(&self, raw: &RawJournal) -> Result<JournalSettings, ConfigError> {
        let d = JournalSettings::default();
        let dir = match &raw.dir {
            None => d.dir,
            Some(v) if v.get_ref().trim().is_empty() => {
                return Err(self.invalid(
                    v.span(),
                    Problem::BadIdentifier {
                        key: "dir",
                        value: v.get_ref().clone(),
                        reason: "must not be empty",
                    },
                ))
            }
            Some(v) => std::path::PathBuf::from(v.get_ref()),
        };
        Ok(JournalSettings {
            dir,
            // 1 MiB to 2 GiB: the journal's own segment size bounds.
            segment_size_mb: self.num(
                &raw.segment_size_mb,
                "segment_size_mb",
                d.segment_size_mb,
                1,
                2048,
            )?,
            durability: raw.durability.unwrap_or(d.durability),
            group_commit_us: self.num(
                &raw.group_commit_us,
                "group_commit_us",
                d.group_commit_us,
                1,
                1_000_000,
            )?,
            group_commit_records: self.num(
                &raw.group_commit_records,
                "group_commit_records",
                u64::from(d.group_commit_records),
                1,
                1 << 20,
            )? as u32,
            queue_capacity: self.num(
                &raw.queue_capacity,
                "queue_capacity",
                d.queue_capacity as u64,
                1,
                1 << 20,
            )? as usize,
            write_ahead: raw.write_ahead.unwrap_or(d.write_ahead),
            open_rfqs_on_restart: raw.open_rfqs_on_restart.unwrap_or(d.open_rfqs_on_restart),
            scores_on_restart: raw.scores_on_restart.unwrap_or(d.scores_on_restart),
            store_recent_frames: self.num(
                &raw.store_recent_frames,
                "store_recent_frames",
                d.store_recent_frames as u64,
                1,
                1 << 20,
            )? as usize,
            store_max_indexed: self.num(
                &raw.store_max_indexed,
                "store_max_indexed",
                d.store_max_indexed as u64,
                1,
                1 << 26,
            )? as usize,
        })
    }

    fn bytes(&self, value: &Num, key: &'static str, default: u32) -> Result<u32, ConfigError> {
        let n = self.num(value, key, u64::from(default), 1, MAX_BYTES_LIMIT)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn conn_limits(
        &self,
        raw_max_message: &Num,
        raw_read_buffer: &Num,
        raw_write_queue: &Num,
        base: ConnectionLimits,
    ) -> Result<ConnectionLimits, ConfigError> {
        let limits = ConnectionLimits {
            max_message_bytes: self.bytes(
                raw_max_message,
                "max_message_bytes",
                base.max_message_bytes,
            )?,
            read_buffer_bytes: self.bytes(
                raw_read_buffer,
                "read_buffer_bytes",
                base.read_buffer_bytes,
            )?,
            write_queue_bytes: self.bytes(
                raw_write_queue,
                "write_queue_bytes",
                base.write_queue_bytes,
            )?,
        };
        if limits.read_buffer_bytes < limits.max_message_bytes {
            // Point at whichever of the two was written here; the read buffer first.
            let span = raw_read_buffer
                .as_ref()
                .or(raw_max_message.as_ref())
                .map(|s| s.span());
            if let Some(span) = span {
                return Err(self.invalid(
                    span,
                    Problem::ReadBufferBelowMaxMessage {
                        read_buffer_bytes: u64::from(limits.read_buffer_bytes),
                        max_message_bytes: u64::from(limits.max_message_bytes),
                    },
                ));
            }
        }
        Ok(limits)
    }

    pub(crate) fn identifier(
        &self,
        value: &Spanned<String>,
        key: &'static str,
        max_len: usize,
    ) -> Result<String, ConfigError> {
        let s = value.get_ref();
        let reason = if s.is_empty() {
            Some("must not be empty")
        } else if s.len() > max_len {
            Some("too long")
        } else if !s.bytes().all(|b| b.is_ascii_graphic() && b != b'=') {
            Some("only printable ASCII without spaces or '=' is allowed")
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

    fn address(&self, value: &Spanned<String>) -> Result<SocketAddr, ConfigError> {
        let text = value.get_ref();
        match text.parse::<SocketAddr>() {
            Ok(addr) if addr.port() == 0 => Err(self.invalid(
                value.span(),
                Problem::ZeroPort {
                    value: text.clone(),
                },
            )),
            Ok(addr) => Ok(addr),
            Err(e) => Err(self.invalid(
                value.span(),
                Problem::BadAddress {
                    value: text.clone(),
                    reason: e.to_string(),
                },
            )),
        }
    }

    fn limits(&self, raw: &RawLimits) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let max_u32 = u64::from(u32::MAX);
        let n32 = |v: &Num, key, default: u32, max: u64| -> Result<u32, ConfigError> {
            let n = self.num(v, key, u64::from(default), 1, max)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        };
        Ok(Limits {
            max_sessions: n32(&raw.max_sessions, "max_sessions", d.max_sessions, 65_536)?,
            max_connections: n32(
                &raw.max_connections,
                "max_connections",
                d.max_connections,
                1 << 20,
            )?,
            max_pending_logon: n32(
                &raw.max_pending_logon,
                "max_pending_logon",
                d.max_pending_logon,
                max_u32,
            )?,
            read_bytes_per_event: n32(
                &raw.read_bytes_per_event,
                "read_bytes_per_event",
                d.read_bytes_per_event,
                MAX_BYTES_LIMIT,
            )?,
            accepts_per_event: n32(
                &raw.accepts_per_event,
                "accepts_per_event",
                d.accepts_per_event,
                max_u32,
            )?,
            connect_timeout_ms: self.num(
                &raw.connect_timeout_ms,
                "connect_timeout_ms",
                d.connect_timeout_ms,
                1,
                MAX_DURATION_MS,
            )?,
            close_linger_ms: self.num(
                &raw.close_linger_ms,
                "close_linger_ms",
                d.close_linger_ms,
                1,
                MAX_DURATION_MS,
            )?,
            connection: self.conn_limits(
                &raw.max_message_bytes,
                &raw.read_buffer_bytes,
                &raw.write_queue_bytes,
                d.connection,
            )?,
        })
    }

    fn session(&self, raw: &RawSession, limits: &Limits) -> Result<SessionConfig, ConfigError> {
        let name = self.identifier(&raw.name, "name", MAX_SESSION_NAME_LEN)?;
        let (line, _) = line_col(self.text, raw.name.span().start);
        let (key, other_key) = match raw.role {
            Role::Acceptor => ("listen", "connect"),
            Role::Initiator => ("connect", "listen"),
        };
        let (addr_value, other_value) = match raw.role {
            Role::Acceptor => (&raw.listen, &raw.connect),
            Role::Initiator => (&raw.connect, &raw.listen),
        };
        if let Some(other) = other_value {
            return Err(self.invalid(
                other.span(),
                Problem::WrongAddressKey {
                    role: raw.role,
                    key: other_key,
                },
            ));
        }
        let addr = match addr_value {
            Some(v) => self.address(v)?,
            None => {
                return Err(self.invalid(
                    raw.name.span(),
                    Problem::MissingAddress {
                        role: raw.role,
                        key,
                    },
                ))
            }
        };
        if raw.role == Role::Acceptor {
            for (value, key) in [
                (&raw.reconnect_interval_ms, "reconnect_interval_ms"),
                (&raw.reconnect_max_ms, "reconnect_max_ms"),
            ] {
                if let Some(v) = value {
                    return Err(self.invalid(v.span(), Problem::InitiatorOnly { key }));
                }
            }
        }
        let sender_comp_id =
            self.identifier(&raw.sender_comp_id, "sender_comp_id", MAX_COMP_ID_LEN)?;
        let target_comp_id =
            self.identifier(&raw.target_comp_id, "target_comp_id", MAX_COMP_ID_LEN)?;
        let heart_bt_int_s = self.num(
            &raw.heart_bt_int_s,
            "heart_bt_int_s",
            u64::from(DEFAULT_HEART_BT_INT_S),
            1,
            MAX_HEART_BT_INT_S,
        )?;
        let reconnect_interval_ms = self.num(
            &raw.reconnect_interval_ms,
            "reconnect_interval_ms",
            DEFAULT_RECONNECT_INTERVAL_MS,
            1,
            MAX_DURATION_MS,
        )?;
        let reconnect_max_ms = self.num(
            &raw.reconnect_max_ms,
            "reconnect_max_ms",
            DEFAULT_RECONNECT_MAX_MS.max(reconnect_interval_ms),
            1,
            MAX_DURATION_MS,
        )?;
        if reconnect_max_ms < reconnect_interval_ms {
            let span = raw
                .reconnect_max_ms
                .as_ref()
                .map_or(raw.name.span(), |v| v.span());
            return Err(self.invalid(
                span,
                Problem::ReconnectMaxBelowInterval {
                    interval_ms: reconnect_interval_ms,
                    max_ms: reconnect_max_ms,
                },
            ));
        }
        let logon_timeout_ms = self.num(
            &raw.logon_timeout_ms,
            "logon_timeout_ms",
            DEFAULT_LOGON_TIMEOUT_MS,
            1,
            MAX_DURATION_MS,
        )?;
        let logout_timeout_ms = self.num(
            &raw.logout_timeout_ms,
            "logout_timeout_ms",
            DEFAULT_LOGOUT_TIMEOUT_MS,
            1,
            MAX_DURATION_MS,
        )?;
        let max_latency_s = self.num(
            &raw.max_latency_s,
            "max_latency_s",
            u64::from(DEFAULT_MAX_LATENCY_S),
            0,
            MAX_DURATION_MS / 1000,
        )?;
        let session_limits = match &raw.limits {
            Some(l) => self.conn_limits(
                &l.max_message_bytes,
                &l.read_buffer_bytes,
                &l.write_queue_bytes,
                limits.connection,
            )?,
            None => limits.connection,
        };
        Ok(SessionConfig {
            name,
            role: raw.role,
            addr,
            sender_comp_id,
            target_comp_id,
            heart_bt_int_s: u32::try_from(heart_bt_int_s).unwrap_or(u32::MAX),
            reset_on_logon: raw.reset_on_logon,
            reconnect_interval_ms,
            reconnect_max_ms,
            logon_timeout_ms,
            logout_timeout_ms,
            max_latency_s: u32::try_from(max_latency_s).unwrap_or(u32::MAX),
            limits: session_limits,
            line,
        })
    }
}

impl Config {
    /// Reads and validates the file at `path`; errors name that path.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: origin.clone(),
            error,
        })?;
        Config::parse(&text, &origin)
    }

    /// The configuration compiled in from `config/router.toml`.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::parse(EMBEDDED_ROUTER_TOML, EMBEDDED_ORIGIN)
    }

    /// Parses and validates `text`; `origin` names it in errors (usually the file path).
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Syntax {
                path: origin.to_string(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let checker = Checker { text, origin };
        let limits = checker.limits(&raw.limits)?;
        let router = RouterSettings {
            idle: raw.router.idle,
            engine_cpu: raw.router.engine_cpu,
            journal_cpu: raw.router.journal_cpu,
            scoring_cpu: raw.router.scoring_cpu,
            admin_cpu: raw.router.admin_cpu,
        };
        let max_sessions = u64::from(limits.max_sessions);
        let mut sessions: Vec<SessionConfig> = Vec::with_capacity(raw.session.len());
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut comp_ids: HashMap<(String, String), String> = HashMap::new();
        for raw_session in &raw.session {
            if sessions.len() as u64 >= max_sessions {
                return Err(checker.invalid(
                    raw_session.name.span(),
                    Problem::TooManySessions {
                        count: raw.session.len(),
                        max: max_sessions,
                    },
                ));
            }
            let session = checker.session(raw_session, &limits)?;
            if let Some(&first_line) = names.get(&session.name) {
                return Err(checker.invalid(
                    raw_session.name.span(),
                    Problem::DuplicateSessionName {
                        name: session.name,
                        first_line,
                    },
                ));
            }
            let identity = (
                session.sender_comp_id.clone(),
                session.target_comp_id.clone(),
            );
            if let Some(first_session) = comp_ids.get(&identity) {
                return Err(checker.invalid(
                    raw_session.target_comp_id.span(),
                    Problem::DuplicateCompIds {
                        sender_comp_id: identity.0,
                        target_comp_id: identity.1,
                        first_session: first_session.clone(),
                    },
                ));
            }
            names.insert(session.name.clone(), session.line);
            comp_ids.insert(identity, session.name.clone());
            sessions.push(session);
        }
        let rfq = checker.rfq(&raw.rfq, &sessions)?;
        let admin = checker.admin(&raw.admin)?;
        let scoring = crate::scoring::settings(&checker, &raw.scoring)?;
        let market_data = crate::mid_replay::settings(&checker, &raw.market_data)?;
        let journal = checker.journal(&raw.journal)?;
        let simulation = match &raw.simulation {
            None => SimulationSettings::default(),
            Some(s) => SimulationSettings {
                time_compression: checker.num(
                    &s.time_compression,
                    "time_compression",
                    1,
                    1,
                    1_000_000,
                )?,
                force_protocol: s.force_protocol.map(|k| match k {
                    RawProtocolKind::Broadcast => crate::select::ProtocolKind::Broadcast,
                    RawProtocolKind::Staggered => crate::select::ProtocolKind::Staggered,
                    RawProtocolKind::Whisper => crate::select::ProtocolKind::Whisper,
                }),
            },
        };
        Ok(Config {
            router,
            limits,
            sessions,
            rfq,
            admin,
            scoring,
            market_data,
            journal,
            simulation,
        })
    }

    /// Acceptor addresses to listen on, each once (several acceptor sessions may share one
    /// listener; a Logon's CompIDs pick the session), in file order.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for s in &self.sessions {
            if s.role == Role::Acceptor && !addrs.contains(&s.addr) {
                addrs.push(s.addr);
            }
        }
        addrs
    }

    /// The session whose identity matches an inbound Logon: the Logon's TargetCompID is our
    /// SenderCompID and its SenderCompID is our TargetCompID.
    pub fn acceptor_for_logon(
        &self,
        logon_sender_comp_id: &[u8],
        logon_target_comp_id: &[u8],
    ) -> Option<(usize, &SessionConfig)> {
        self.sessions.iter().enumerate().find(|(_, s)| {
            s.role == Role::Acceptor
                && s.sender_comp_id.as_bytes() == logon_target_comp_id
                && s.target_comp_id.as_bytes() == logon_sender_comp_id
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_chars() {
        let text = "a\nbé = 1\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_col(text, 6), (2, 4));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn embedded_config_is_valid() {
        let config = Config::embedded().unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.sessions.is_empty());
    }
}
