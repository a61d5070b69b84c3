//! The append-only journal: the router's audit trail and source of truth.
//!
//! Owns the journal's files and nothing else: the byte format (`format`, specified in
//! `FORMAT.md`), the journal thread that appends records handed over by the engine thread
//! through a bounded queue (`writer`), reading and verifying segments (`reader`) and repairing
//! the end of the journal when it is opened for writing (`recovery`), the payloads of the
//! engine's records and inputs (`records`), and the engine thread's end of it all (`tap`:
//! what the host and the router call to journal frames, inputs and decisions). Scores and
//! TCA payloads belong to their own modules. The library never prints: everything worth telling an operator
//! (a torn tail that was cut, corruption found) is returned to the caller.

pub mod format;
pub mod reader;
pub mod records;
pub mod recovery;
pub mod replay;
pub mod resume;
pub mod run_files;
pub mod score_check;
pub mod store;
pub mod tap;
pub mod writer;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use format::{
    FixDirection, FixPayload, HeaderProblem, RecordKind, RecordProblem, RecordView, SegmentHeader,
};
pub use reader::{JournalReader, JournalRecord, JournalScan, Records};
pub use recovery::{RecoveryEvent, RecoveryReport};
pub use writer::{AppendError, DrainPause, Journal, JournalConfig, JournalMetrics, MetricsHandle};

/// How far an appended record must get before the writer reports it in `durable_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written into the mapped pages (the page cache): survives a crash of the process, not
    /// of the machine. `durable_seq` follows `written_seq`.
    Os,
    /// Group commit: the written range is `msync`ed (which, for a pre-allocated file, is a
    /// data sync of that range) when `group_commit_interval_us` has passed since the oldest
    /// unsynced record, or `group_commit_records` records are waiting, whichever comes first.
    /// `durable_seq` moves only after the sync returns.
    Fsync {
        group_commit_interval_us: u64,
        group_commit_records: u32,
    },
}

/// What opening for writing does when it finds corruption that is not a torn tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptionPolicy {
    /// Fail with [`JournalError::Corrupt`] naming the file and offset (the default).
    Refuse,
    /// Cut the journal at the first bad byte: the rest of that segment is saved to
    /// `<segment>.cut-at-<offset>` and zeroed, later segments are renamed `*.set-aside`.
    /// Reported in the recovery events. Only on an operator's explicit request.
    TruncateThere,
}

/// Errors at the journal's boundary. Every variant that concerns a file names it.
#[derive(Debug)]
pub enum JournalError {
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// The journal path does not exist.
    NotFound { path: PathBuf },
    /// A directory without any segment file (for reading).
    NoSegments { dir: PathBuf },
    /// A segment file whose header is not acceptable (bad magic: a foreign file).
    BadHeader {
        path: PathBuf,
        problem: HeaderProblem,
    },
    /// Damage that is not a torn tail, at `offset` of `path`.
    Corrupt {
        path: PathBuf,
        offset: u64,
        problem: Damage,
    },
    /// Another process holds the journal open for writing.
    Locked { path: PathBuf },
    /// The configuration is unusable.
    Config(String),
    /// The journal thread stopped on an error earlier; see the detail.
    WriterFailed(String),
}

/// What is wrong at a damaged place of the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    Record(RecordProblem),
    /// A segment's header disagrees with its neighbours or its file.
    Header(HeaderMismatch),
    /// A segment's header cannot be read at all.
    UnreadableHeader(HeaderProblem),
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Record(p) => p.fmt(f),
            Damage::Header(h) => h.fmt(f),
            Damage::UnreadableHeader(h) => h.fmt(f),
        }
    }
}

/// A segment header that is valid on its own but wrong in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMismatch {
    /// The number in the header is not the one in the file name.
    NumberNotFileName { header: u64, file_name: u64 },
    /// A segment number is missing between two files.
    MissingSegment { expected: u64, found: u64 },
    /// The first sequence number does not follow the previous segment's last record.
    SequenceGap { expected: u64, found: u64 },
    /// The file is longer than the size its header declares.
    FileLongerThanDeclared { file_len: u64, declared: u64 },
}

impl fmt::Display for HeaderMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderMismatch::NumberNotFileName { header, file_name } => write!(
                f,
                "header says segment {header} but the file name says {file_name}"
            ),
            HeaderMismatch::MissingSegment { expected, found } => {
                write!(
                    f,
                    "segment {expected} is missing (next file is segment {found})"
                )
            }
            HeaderMismatch::SequenceGap { expected, found } => {
                write!(f, "segment starts at sequence {found}, expected {expected}")
            }
            HeaderMismatch::FileLongerThanDeclared { file_len, declared } => write!(
                f,
                "file is {file_len} bytes, longer than its declared {declared}"
            ),
        }
    }
}

impl JournalError {
    pub(crate) fn io(path: &Path, action: &'static str, source: io::Error) -> JournalError {
        JournalError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io {
                path,
                action,
                source,
            } => write!(f, "{}: {action}: {source}", path.display()),
            JournalError::NotFound { path } => {
                write!(f, "{}: no such file or directory", path.display())
            }
            JournalError::NoSegments { dir } => {
                write!(
                    f,
                    "{}: no journal segments (seg-*.rfqj) here",
                    dir.display()
                )
            }
            JournalError::BadHeader { path, problem } => {
                write!(f, "{} offset 0: {problem}", path.display())
            }
            JournalError::Corrupt {
                path,
                offset,
                problem,
            } => write!(f, "{} offset {offset}: corrupt: {problem}", path.display()),
            JournalError::Locked { path } => write!(
                f,
                "{}: the journal is open for writing in another process",
                path.display()
            ),
            JournalError::Config(why) => write!(f, "journal configuration: {why}"),
            JournalError::WriterFailed(why) => write!(f, "journal thread failed: {why}"),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
