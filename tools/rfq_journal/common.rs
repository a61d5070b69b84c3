//! Shared plumbing of the `rfq-journal` commands: opening a journal with a clear error,
//! the progress bar, time parsing and printing, the session and dealer names from the
//! router's configuration, and small text helpers (JSON strings, hex).
//!
//! Must not: know what any command prints beyond these helpers, or write to a journal.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use rfq_router::config::Config;
use rfq_router::dealers::Dealers;
use rfq_router::journal::{JournalError, JournalReader, Records};
use rfq_router::time::{format_utc_timestamp_ms, parse_utc_timestamp, Nanos, UTC_TIMESTAMP_MS_LEN};

/// Journals at least this big get a progress bar (on a terminal).
pub const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// Opens a journal directory or segment file; every error names the path and says what is
/// wrong with it (missing, no segments in it, not a journal segment).
pub fn open(path: &Path) -> Result<JournalReader> {
    JournalReader::open(path).map_err(|e| match e {
        JournalError::BadHeader { path, problem } => anyhow::anyhow!(
            "{}: not an rfq-router journal segment ({problem}; a segment starts with the \
             magic \"RFQJRNL\\0\")",
            path.display()
        ),
        JournalError::NoSegments { dir } => anyhow::anyhow!(
            "{}: empty journal directory: no journal segments (seg-*.rfqj) in it",
            dir.display()
        ),
        JournalError::NotFound { path } => {
            anyhow::anyhow!(
                "{}: no such file or directory (expected a journal directory or segment file)",
                path.display()
            )
        }
        e => anyhow::Error::from(e),
    })
}

/// A progress bar over `total_bytes` of journal; hidden when the journal is small or stderr
/// is not a terminal (pipes, tests, cron).
pub fn progress_bar(total_bytes: u64) -> ProgressBar {
    labelled_progress_bar(total_bytes, "", PROGRESS_MIN_BYTES)
}

/// `progress_bar` with `label` before the spinner, hidden below `min_bytes`.
pub fn labelled_progress_bar(total_bytes: u64, label: &str, min_bytes: u64) -> ProgressBar {
    if total_bytes < min_bytes || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{label}{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{bytes}}/{{total_bytes}} ({{eta}})"
    )) {
        bar.set_style(style);
    }
    bar
}

/// A journal's records, moving `bar` to the bytes read every `every` records.
pub fn with_progress<'a>(
    mut records: Records<'a>,
    bar: ProgressBar,
    every: u64,
) -> impl Iterator<Item = <Records<'a> as Iterator>::Item> {
    let mut n = 0u64;
    std::iter::from_fn(move || {
        let r = records.next();
        n += 1;
        if n.is_multiple_of(every) {
            bar.set_position(records.bytes_done());
        }
        r
    })
}

/// Items at least this many get a progress bar of their own (on a terminal).
pub const PROGRESS_MIN_ITEMS: u64 = 20_000;

/// A progress bar over `total` items of work after the journal was read (selection re-runs,
/// score replays); hidden for small runs and when stderr is not a terminal.
pub fn progress_items(total: u64, what: &str) -> ProgressBar {
    if total < PROGRESS_MIN_ITEMS || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} ({{eta}})"
    )) {
        bar.set_style(style);
    }
    bar
}

/// `YYYYMMDD-HH:MM:SS[.fff[fff[fff]]]` (UTC) or nanoseconds since the Unix epoch.
pub fn parse_time(s: &str) -> Result<Nanos, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Nanos).map_err(|e| format!("{s}: {e}"));
    }
    parse_utc_timestamp(s.as_bytes()).ok_or_else(|| {
        format!("{s}: expected YYYYMMDD-HH:MM:SS[.fff] (UTC) or nanoseconds since the epoch")
    })
}

/// `YYYYMMDD-HH:MM:SS.nnnnnnnnn`.
pub fn format_time(t: Nanos) -> String {
    let mut buf = [0u8; UTC_TIMESTAMP_MS_LEN];
    let ms = format_utc_timestamp_ms(t, &mut buf);
    format!("{}{:06}", String::from_utf8_lossy(ms), t.0 % Nanos::PER_MS)
}

/// `YYYYMMDD-HH:MM:SS.fff` (for tables).
pub fn format_time_ms(t: Nanos) -> String {
    let mut buf = [0u8; UTC_TIMESTAMP_MS_LEN];
    String::from_utf8_lossy(format_utc_timestamp_ms(t, &mut buf)).into_owned()
}

pub fn printable(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    (!s.chars().any(|c| c.is_control() && c != '\t')).then_some(s)
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub fn json_string(out: &mut impl Write, s: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    for c in s.chars() {
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            '\n' => out.write_all(b"\\n")?,
            '\r' => out.write_all(b"\\r")?,
            '\t' => out.write_all(b"\\t")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => write!(out, "{c}")?,
        }
    }
    out.write_all(b"\"")
}

/// Where session names and dealers come from.
#[derive(Args, Clone, Default)]
pub struct ConfigArgs {
    /// Router configuration that names the journal's session ids (the index of each
    /// [[session]]) and says which are desks. Default: the copy of config/router.toml
    /// compiled in, as `rfq-router` uses.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Dealer database (dealer names, PartyIDs, sessions). Default: the compiled-in
    /// config/dealers.toml.
    #[arg(long = "dealers", value_name = "FILE", global = true)]
    pub dealer_db: Option<PathBuf>,
}

/// One dealer as the tools name it.
#[derive(Debug, Clone)]
pub struct DealerName {
    pub name: String,
    pub party_id: String,
    pub session: u16,
}

/// Session and dealer names: session id = index of the `[[session]]` in router.toml,
/// dealer index = position in dealers.toml (the engine's `DealerId`).
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub sessions: Vec<String>,
    pub desks: Vec<u16>,
    pub dealers: Vec<DealerName>,
}

impl Names {
    pub fn from_config(config: &Config, dealers: &Dealers) -> Names {
        Names {
            sessions: config.sessions.iter().map(|s| s.name.clone()).collect(),
            desks: config.rfq.desk_sessions.iter().map(|&i| i as u16).collect(),
            dealers: dealers
                .dealers
                .iter()
                .map(|d| DealerName {
                    name: d.name.clone(),
                    party_id: d.party_id.clone(),
                    session: d.session as u16,
                })
                .collect(),
        }
    }

    /// The session's configured name, or `#ID` for an id the configuration does not have.
    pub fn session(&self, id: u16) -> String {
        self.sessions
            .get(usize::from(id))
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// A session given by name or by number.
    pub fn session_id(&self, s: &str) -> Option<u16> {
        if let Some(i) = self.sessions.iter().position(|n| n == s) {
            return u16::try_from(i).ok();
        }
        s.strip_prefix('#').unwrap_or(s).parse().ok()
    }

    pub fn is_desk(&self, session: u16) -> bool {
        self.desks.contains(&session)
    }

    /// The dealer whose FIX session this is.
    pub fn dealer_of_session(&self, session: u16) -> Option<usize> {
        self.dealers.iter().position(|d| d.session == session)
    }

    pub fn dealer_by_party(&self, party: &[u8]) -> Option<usize> {
        self.dealers
            .iter()
            .position(|d| d.party_id.as_bytes() == party)
    }

    /// A dealer given by name (case-insensitive), PartyID, session name or index.
    pub fn dealer(&self, s: &str) -> Option<usize> {
        self.dealers
            .iter()
            .position(|d| d.name.eq_ignore_ascii_case(s) || d.party_id == s)
            .or_else(|| {
                let session = self.sessions.iter().position(|n| n == s)?;
                self.dealer_of_session(u16::try_from(session).ok()?)
            })
    }

    /// The dealer's name, or the session's when no dealer is on it.
    pub fn dealer_name_of_session(&self, session: u16) -> String {
        self.dealer_of_session(session)
            .map_or_else(|| self.session(session), |d| self.dealers[d].name.clone())
    }
}

/// Loads the router configuration and the dealer database (or their embedded copies).
pub fn load_config(a: &ConfigArgs) -> Result<(Config, Dealers)> {
    let config = match &a.config {
        Some(p) => Config::load(p).with_context(|| format!("--config {}", p.display()))?,
        None => Config::embedded()?,
    };
    let dealers = match &a.dealer_db {
        Some(p) => {
            Dealers::load(p, &config).with_context(|| format!("--dealers {}", p.display()))?
        }
        None => Dealers::embedded(&config)?,
    };
    Ok((config, dealers))
}

pub fn load_names(a: &ConfigArgs) -> Result<Names> {
    let (config, dealers) = load_config(a)?;
    Ok(Names::from_config(&config, &dealers))
}
