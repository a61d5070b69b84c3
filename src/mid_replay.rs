//! Market data from a CSV file, replayed on time: the `[market_data]` settings, the file's
//! validation, and the thread that hands each row's mid to the engine.
//!
//! Owns the CSV format (below), [`MidsCsv`] (the whole file read and checked up front against
//! the security master: every error names `file:line` and the reason) and the replay thread
//! ([`spawn_mid_replay`], named `mid-replay`, started through `pinning::spawn_pinned`), which
//! waits until each row's time (scaled by `speed`) and sends the mid to the engine thread as
//! `ToEngine::Mid` through the bounded inbox (`crate::inbox`). The engine journals it as an
//! input (`Event::MarketMid`) and treats it as a feed's 35=W: fair value, TCA arrival mid. A
//! full inbox is back-pressure: the thread waits (keeping a quarter of the inbox free for the
//! scoring thread) and counts it. It reads the clock and files; it never touches RFQ state
//! and never talks to the engine other than through the inbox.
//!
//! # The CSV
//!
//! UTF-8, one row per line, fields separated by commas (no quoting); blank lines and lines
//! starting with `#` are skipped. The first other line is the header, naming these columns
//! in any order: `time`, `instrument`, and either `mid` or both `bid` and `ask`.
//!
//! - `time`: seconds from the start of the file (`0`, `12.5`), or a UTC timestamp
//!   `YYYYMMDD-HH:MM:SS[.sss]` (FIX UTCTimestamp); every row in the first row's form, and
//!   never earlier than the row before.
//! - `instrument`: an ISIN or CUSIP the security master knows.
//! - `bid`, `ask` (the mid is their mean; the bid may not be above the ask) or `mid`:
//!   positive decimals, percent of par as on the wire.
//!
//! Rows before `start_offset_s` (seconds after the first row's time) are delivered at once,
//! in order, so every instrument starts from its latest mid; later rows at
//! `(time - first time - start_offset_s) / speed` after the replay starts.

use crate::config::{Checker, ConfigError, Num};
use crate::inbox::InboxSender;
use crate::pinning::StoppableThread;
use crate::rfq::types::FixId;
use crate::select::feedback::{MarketMid, ToEngine};
use crate::select::instruments::SecurityMaster;
use crate::time::Nanos;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `[market_data]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketDataSettings {
    /// The CSV of mids to replay (`rfq-router run --mids FILE` overrides it). None: no replay.
    pub csv: Option<PathBuf>,
    /// Replay speed: 1 real time, 10 ten times faster.
    pub speed: f64,
    /// Start this many seconds after the first row's time (earlier rows are sent at once).
    pub start_offset_s: f64,
    /// Most data rows a file may have.
    pub max_rows: usize,
    /// The replay thread's CPU (0-based; none: the scheduler places it).
    pub cpu: Option<usize>,
}

impl Default for MarketDataSettings {
    fn default() -> Self {
        MarketDataSettings {
            csv: None,
            speed: 1.0,
            start_offset_s: 0.0,
            max_rows: 1_000_000,
            cpu: None,
        }
    }
}

/// `[market_data]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMarketData {
    csv: Option<String>,
    speed: Option<toml::Spanned<f64>>,
    start_offset_s: Option<toml::Spanned<f64>>,
    max_rows: Num,
    cpu: Option<usize>,
}

/// Validates `[market_data]`.
pub(crate) fn settings(
    checker: &Checker<'_>,
    raw: &RawMarketData,
) -> Result<MarketDataSettings, ConfigError> {
    let d = MarketDataSettings::default();
    Ok(MarketDataSettings {
        csv: raw
            .csv
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        speed: checker.decimal(&raw.speed, "market_data.speed", d.speed, 0.001, 1e6)?,
        start_offset_s: checker.decimal(
            &raw.start_offset_s,
            "market_data.start_offset_s",
            d.start_offset_s,
            0.0,
            1e9,
        )?,
        max_rows: checker.num(
            &raw.max_rows,
            "market_data.max_rows",
            d.max_rows as u64,
            1,
            100_000_000,
        )? as usize,
        cpu: raw.cpu,
    })
}

/// One row: when (ns on the file's own clock), which instrument, what mid; and its line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MidRow {
    pub line: u32,
    pub at: Nanos,
    pub instrument: FixId,
    pub mid: f64,
}

/// Why a mids file was refused.
#[derive(Debug)]
pub enum MidsCsvError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// `file:line: reason`.
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl std::fmt::Display for MidsCsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MidsCsvError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            MidsCsvError::Invalid { path, line, reason } => {
                write!(f, "{}:{line}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for MidsCsvError {}

/// A whole mids file, checked.
#[derive(Debug, Clone)]
pub struct MidsCsv {
    path: PathBuf,
    rows: Vec<MidRow>,
}

/// Bytes a file may have per allowed row (a generous line), on top of the header.
const MAX_BYTES_PER_ROW: u64 = 256;

#[derive(Clone, Copy, PartialEq)]
enum TimeForm {
    Seconds,
    Timestamp,
}

impl MidsCsv {
    /// Reads and checks `path` against `master` (at most `max_rows` rows).
    pub fn load(
        path: &Path,
        master: &SecurityMaster,
        max_rows: usize,
    ) -> Result<MidsCsv, MidsCsvError> {
        let io = |error| MidsCsvError::Io {
            path: path.to_path_buf(),
            error,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        let max_len = (max_rows as u64)
            .saturating_mul(MAX_BYTES_PER_ROW)
            .saturating_add(64 * 1024);
        if len > max_len {
            return Err(MidsCsvError::Invalid {
                path: path.to_path_buf(),
                line: 1,
                reason: format!(
                    "{len} bytes: more than {max_len} for {max_rows} rows (`[market_data] max_rows`)"
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::parse_bytes(&bytes, path, master, max_rows)
    }

    /// Checks the bytes of a mids file; `path` names it in errors.
    pub fn parse_bytes(
        bytes: &[u8],
        path: &Path,
        master: &SecurityMaster,
        max_rows: usize,
    ) -> Result<MidsCsv, MidsCsvError> {
        let text = std::str::from_utf8(bytes).map_err(|e| MidsCsvError::Invalid {
            path: path.to_path_buf(),
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            reason: "not UTF-8".to_string(),
        })?;
        Self::parse(text, path, master, max_rows)
    }

    /// Checks the text of a mids file; `path` names it in errors.
    pub fn parse(
        text: &str,
        path: &Path,
        master: &SecurityMaster,
        max_rows: usize,
    ) -> Result<MidsCsv, MidsCsvError> {
        let err = |line: usize, reason: String| MidsCsvError::Invalid {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let Some((header_line, header)) = lines.next() else {
            return Err(err(
                1,
                "no header (expected columns time, instrument, and mid or bid and ask)".into(),
            ));
        };
        let columns = Columns::of(header).map_err(|why| err(header_line, why))?;
        let mut rows: Vec<MidRow> = Vec::new();
        let mut form = None;
        let mut previous: Option<(Nanos, usize)> = None;
        for (line, text) in lines {
            if rows.len() == max_rows {
                return Err(err(
                    line,
                    format!("more than {max_rows} rows (`[market_data] max_rows`)"),
                ));
            }
            let fields: Vec<&str> = text.split(',').map(str::trim).collect();
            if fields.len() != columns.count {
                return Err(err(
                    line,
                    format!("{} fields, the header has {}", fields.len(), columns.count),
                ));
            }
            let time = fields[columns.time];
            let (at, this_form) = parse_time(time).ok_or_else(|| {
                err(
                    line,
                    format!(
                        "time {time:?}: expected seconds (e.g. 12.5) or YYYYMMDD-HH:MM:SS[.sss]"
                    ),
                )
            })?;
            match form {
                None => form = Some(this_form),
                Some(f) if f != this_form => {
                    return Err(err(
                        line,
                        format!("time {time:?} is not in the same form as the first row's"),
                    ))
                }
                Some(_) => {}
            }
            if let Some((before, before_line)) = previous {
                if at < before {
                    return Err(err(
                        line,
                        format!("time {time:?} goes backwards (before line {before_line}'s)"),
                    ));
                }
            }
            previous = Some((at, line));
            let id = fields[columns.instrument];
            if master.lookup(id.as_bytes()).is_none() {
                return Err(err(
                    line,
                    format!(
                        "unknown instrument {id:?} (not an ISIN or CUSIP of the security master)"
                    ),
                ));
            }
            let instrument = FixId::new(id.as_bytes())
                .ok_or_else(|| err(line, format!("instrument {id:?} is too long")))?;
            let price = |col: usize, name: &str| {
                let v = fields[col];
                v.parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite() && *p > 0.0)
                    .ok_or_else(|| err(line, format!("{name} {v:?}: expected a positive number")))
            };
            let mid = match columns.prices {
                Prices::Mid(c) => price(c, "mid")?,
                Prices::BidAsk(b, a) => {
                    let (bid, ask) = (price(b, "bid")?, price(a, "ask")?);
                    if bid > ask {
                        return Err(err(line, format!("bid {bid} is above ask {ask}")));
                    }
                    (bid + ask) / 2.0
                }
            };
            rows.push(MidRow {
                line: u32::try_from(line).unwrap_or(u32::MAX),
                at,
                instrument,
                mid,
            });
        }
        if rows.is_empty() {
            return Err(err(header_line, "no rows after the header".into()));
        }
        Ok(MidsCsv {
            path: path.to_path_buf(),
            rows,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rows(&self) -> &[MidRow] {
        &self.rows
    }

    pub fn into_rows(self) -> Vec<MidRow> {
        self.rows
    }
}

#[derive(Clone, Copy)]
enum Prices {
    Mid(usize),
    BidAsk(usize, usize),
}

struct Columns {
    count: usize,
    time: usize,
    instrument: usize,
    prices: Prices,
}

impl Columns {
    fn of(header: &str) -> Result<Columns, String> {
        let names: Vec<String> = header
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let mut at = [None::<usize>; 5];
        const KNOWN: [&str; 5] = ["time", "instrument", "mid", "bid", "ask"];
        for (i, n) in names.iter().enumerate() {
            let Some(k) = KNOWN.iter().position(|k| k == n) else {
                return Err(format!(
                    "unknown column {n:?} (expected time, instrument, and mid or bid and ask)"
                ));
            };
            if at[k].replace(i).is_some() {
                return Err(format!("column {n:?} given twice"));
            }
        }
        let [time, instrument, mid, bid, ask] = at;
        let (Some(time), Some(instrument)) = (time, instrument) else {
            return Err("the header needs the columns time and instrument".into());
        };
        let prices = match (mid, bid, ask) {
            (Some(m), None, None) => Prices::Mid(m),
            (None, Some(b), Some(a)) => Prices::BidAsk(b, a),
            _ => return Err("the header needs either mid or both bid and ask".into()),
        };
        Ok(Columns {
            count: names.len(),
            time,
            instrument,
            prices,
        })
    }
}

/// Seconds from the start (`12.5`) or a FIX UTCTimestamp.
fn parse_time(s: &str) -> Option<(Nanos, TimeForm)> {
    if s.contains(':') {
        return crate::time::parse_utc_timestamp(s.as_bytes()).map(|t| (t, TimeForm::Timestamp));
    }
    let secs: f64 = s
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite() && *x >= 0.0)?;
    // Up to ~584 years in u64 nanoseconds.
    (secs < 1.8e10).then(|| (Nanos((secs * 1e9).round() as u64), TimeForm::Seconds))
}

// ---------------------------------------------------------------------------------------------
// The replay thread

/// What the replay thread needs.
pub struct MidReplay {
    pub rows: Vec<MidRow>,
    pub speed: f64,
    pub start_offset_s: f64,
    /// The engine thread's inbox (shared with the scoring thread).
    pub to_engine: InboxSender<ToEngine>,
    /// Places of the inbox left to the scoring thread (the replay waits rather than take them).
    pub inbox_reserve: usize,
}

/// What the replay thread did, for the binary and tests.
#[derive(Debug, Default)]
pub struct MidReplayCounters {
    /// Mids handed to the engine's inbox.
    pub rows_sent: AtomicU64,
    /// Rows that found the inbox full (back-pressure) and waited for room.
    pub inbox_full_waits: AtomicU64,
    /// Set when every row has been sent (or the engine thread has gone).
    pub finished: AtomicBool,
}

/// The running replay thread; dropping it stops the thread.
pub struct RunningMidReplay {
    pub counters: Arc<MidReplayCounters>,
    thread: StoppableThread,
}

impl RunningMidReplay {
    /// Stops the thread (rows not yet due are not sent) and waits for it.
    pub fn stop(mut self) {
        self.thread.stop();
    }
}

/// Longest sleep between looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// Starts the replay thread (`mid-replay`, pinned to `cpu` when given). The replay's clock
/// starts now.
pub fn spawn_mid_replay(
    replay: MidReplay,
    cpu: Option<usize>,
) -> std::io::Result<RunningMidReplay> {
    let counters = Arc::new(MidReplayCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (Arc::clone(&counters), Arc::clone(&stop));
    let thread = crate::pinning::spawn_pinned("mid-replay", cpu, move |_| replay.run(&c, &s))?;
    Ok(RunningMidReplay {
        counters,
        thread: StoppableThread::new(stop, thread),
    })
}

impl MidReplay {
    fn run(&self, c: &MidReplayCounters, stop: &AtomicBool) {
        let start = Instant::now();
        let first = self.rows.first().map_or(Nanos(0), |r| r.at);
        let offset_ns = (self.start_offset_s * 1e9) as u64;
        let origin = first.0.saturating_add(offset_ns);
        for row in &self.rows {
            let after_ns = row.at.0.saturating_sub(origin) as f64 / self.speed;
            let due = start + Duration::from_nanos(after_ns.min(u64::MAX as f64) as u64);
            loop {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::park_timeout((due - now).min(POLL));
            }
            let msg = ToEngine::Mid(MarketMid {
                instrument: row.instrument,
                mid: row.mid,
            });
            if !self.to_engine.has_room(self.inbox_reserve) {
                c.inbox_full_waits.fetch_add(1, Ordering::Release);
            }
            match self
                .to_engine
                .send_waiting(msg, self.inbox_reserve, POLL, || {
                    stop.load(Ordering::Acquire)
                }) {
                Ok(_) => {
                    c.rows_sent.fetch_add(1, Ordering::Release);
                }
                // Stopped, or the engine thread has gone.
                Err(_) => break,
            }
        }
        c.finished.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::inbox;
    use crate::select::scored::load_instruments;

    fn master() -> SecurityMaster {
        load_instruments(None).expect("the embedded security master")
    }

    fn parse(text: &str) -> Result<MidsCsv, String> {
        MidsCsv::parse(text, Path::new("mids.csv"), &master(), 10).map_err(|e| e.to_string())
    }

    #[test]
    fn good_files_in_both_forms() {
        let m = parse(
            "# comment\ntime,instrument,bid,ask\n0,US99A1NW1035,99.95,100.05\n\n1.5,99B2BT100,98,99\n",
        )
        .expect("valid");
        assert_eq!(m.rows().len(), 2);
        assert_eq!(m.rows()[0].mid, 100.0);
        assert_eq!(m.rows()[0].line, 3);
        assert_eq!(m.rows()[1].at, Nanos(1_500_000_000));
        assert_eq!(m.rows()[1].mid, 98.5);
        let m = parse(
            "instrument,mid,time\nUS99A1NW1035,101.25,20261121-09:30:00\nUS99A1NW1035,101.5,20261121-09:30:00.500\n",
        )
        .expect("valid");
        assert_eq!(m.rows()[1].at.0 - m.rows()[0].at.0, 500_000_000);
    }

    #[test]
    fn bad_files_name_the_line_and_the_reason() {
        for (text, want) in [
            ("", "mids.csv:1: no header"),
            ("time,instrument,px\n", "mids.csv:1: unknown column \"px\""),
            (
                "time,instrument,mid,bid,ask\n0,X,1,1,1\n",
                "mids.csv:1: the header needs either",
            ),
            ("time,instrument,mid\n", "mids.csv:1: no rows"),
            (
                "time,instrument,mid\n0,US99A1NW1035\n",
                "mids.csv:2: 2 fields",
            ),
            (
                "time,instrument,mid\n0,US00000000X1,100\n",
                "mids.csv:2: unknown instrument \"US00000000X1\"",
            ),
            (
                "time,instrument,mid\n0,US99A1NW1035,abc\n",
                "mids.csv:2: mid \"abc\": expected a positive number",
            ),
            (
                "time,instrument,mid\n0,US99A1NW1035,-1\n",
                "mids.csv:2: mid \"-1\"",
            ),
            (
                "time,instrument,bid,ask\n0,US99A1NW1035,101,100\n",
                "mids.csv:2: bid 101 is above ask 100",
            ),
            (
                "time,instrument,mid\n#\n5,US99A1NW1035,100\n4,US99A1NW1035,100\n",
                "mids.csv:4: time \"4\" goes backwards (before line 3's)",
            ),
            (
                "time,instrument,mid\nsoon,US99A1NW1035,100\n",
                "mids.csv:2: time \"soon\"",
            ),
            (
                "time,instrument,mid\n0,US99A1NW1035,100\n20261121-09:30:00,US99A1NW1035,100\n",
                "mids.csv:3: time \"20261121-09:30:00\" is not in the same form",
            ),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let many = format!("time,instrument,mid\n{}", "0,US99A1NW1035,100\n".repeat(11));
        let e = parse(&many).expect_err("too many rows");
        assert!(e.starts_with("mids.csv:12: more than 10 rows"), "{e}");
        let e = MidsCsv::parse_bytes(
            b"time,instrument,mid\n0,\xff,1\n",
            Path::new("m.csv"),
            &master(),
            10,
        )
        .expect_err("not UTF-8")
        .to_string();
        assert_eq!(e, "m.csv:2: not UTF-8");
    }

    #[test]
    fn the_shipped_sample_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mids.csv");
        let m = MidsCsv::load(&path, &master(), 1_000).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.rows().len() >= 10);
    }

    #[test]
    fn rows_reach_the_inbox_in_order_and_a_full_inbox_waits() {
        let m = parse(
            "time,instrument,mid\n0,US99A1NW1035,100\n0,US99A1NW1035,101\n0.001,US99A1NW1035,102\n",
        )
        .expect("valid");
        let (tx, rx) = inbox::<ToEngine>(2, None);
        let running = spawn_mid_replay(
            MidReplay {
                rows: m.rows().to_vec(),
                speed: 1.0,
                start_offset_s: 0.0,
                to_engine: tx,
                inbox_reserve: 1,
            },
            None,
        )
        .expect("thread");
        let c = &running.counters;
        // Nothing is drained yet: the first row fills the inbox to its reserve, so the second
        // waits (back-pressure, counted) instead of being refused.
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.inbox_full_waits.load(Ordering::Acquire) == 0 {
            assert!(Instant::now() < deadline, "the replay never waited");
            std::thread::park_timeout(Duration::from_millis(1));
        }
        assert_eq!(c.rows_sent.load(Ordering::Acquire), 1);
        let mut got = Vec::new();
        while got.len() < 3 {
            assert!(Instant::now() < deadline, "timed out: {got:?}");
            match rx.try_recv() {
                Some(ToEngine::Mid(mid)) => got.push(mid.mid),
                Some(_) => panic!("not a mid"),
                None => std::thread::park_timeout(Duration::from_millis(1)),
            }
        }
        assert_eq!(got, [100.0, 101.0, 102.0]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.finished.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "never finished");
            std::thread::park_timeout(Duration::from_millis(1));
        }
        assert_eq!(c.rows_sent.load(Ordering::Acquire), 3);
        assert_eq!(rx.refused(), 0);
        running.stop();
    }
}
