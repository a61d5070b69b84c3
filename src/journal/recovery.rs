//! Opening a journal for writing: finding where it ends and repairing what a crash leaves.
//!
//! Owns the decisions made before the journal thread starts: stale pre-allocated files are
//! removed, a torn tail (a partial or bad record at the very end with nothing valid after it)
//! is zeroed, a short last segment is extended to its size, and corruption anywhere else
//! stops the open with an error naming file and offset, unless the caller chose
//! [`CorruptionPolicy::TruncateThere`]. Every change made is returned as a
//! [`RecoveryEvent`]; nothing is printed. Repairs use plain writes on files that no map of
//! ours covers at that moment; no file is ever truncated.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::format::{RecordProblem, SegmentHeader, SEGMENT_HEADER_LEN};
use super::reader::{list_dir, map_segment, FindingKind, JournalReader, MappedSegment};
use super::{CorruptionPolicy, Damage, JournalError};
use crate::time::Nanos;

/// Something recovery did (or found) that an operator should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryEvent {
    /// A pre-allocated segment that was never put in place was deleted.
    TempFileRemoved { path: PathBuf },
    /// A torn tail was cut: `bytes_zeroed` bytes from `offset` on were zeroed.
    TornTailCut {
        path: PathBuf,
        offset: u64,
        problem: RecordProblem,
        bytes_zeroed: u64,
    },
    /// The last segment file was shorter than its declared size and was extended with zeros.
    SegmentExtended {
        path: PathBuf,
        from_len: u64,
        to_len: u64,
    },
    /// Corruption was cut on request ([`CorruptionPolicy::TruncateThere`]). The cut bytes
    /// were saved to `saved_to` (if there were any in that segment) and later segments were
    /// renamed aside; nothing was deleted.
    CorruptionCut {
        path: PathBuf,
        offset: u64,
        problem: Damage,
        saved_to: Option<PathBuf>,
        set_aside: Vec<PathBuf>,
    },
}

impl std::fmt::Display for RecoveryEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecoveryEvent::TempFileRemoved { path } => {
                write!(f, "removed unused pre-allocated segment {}", path.display())
            }
            RecoveryEvent::TornTailCut {
                path,
                offset,
                problem,
                bytes_zeroed,
            } => write!(
                f,
                "{} offset {offset}: torn tail cut ({problem}); {bytes_zeroed} bytes zeroed",
                path.display()
            ),
            RecoveryEvent::SegmentExtended {
                path,
                from_len,
                to_len,
            } => write!(
                f,
                "{}: short segment extended from {from_len} to {to_len} bytes",
                path.display()
            ),
            RecoveryEvent::CorruptionCut {
                path,
                offset,
                problem,
                saved_to,
                set_aside,
            } => {
                write!(
                    f,
                    "{} offset {offset}: journal cut at corruption ({problem})",
                    path.display()
                )?;
                if let Some(s) = saved_to {
                    write!(f, "; cut bytes saved to {}", s.display())?;
                }
                for p in set_aside {
                    write!(f, "; set aside {}", p.display())?;
                }
                Ok(())
            }
        }
    }
}

/// What opening for writing found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Segment files in the journal after recovery.
    pub segments: usize,
    /// Valid records in the journal after recovery.
    pub records: u64,
    /// The sequence number the next appended record gets.
    pub next_seq: u64,
    /// Time regressions seen (reported by `verify`; not repaired).
    pub time_regressions: u64,
    pub events: Vec<RecoveryEvent>,
}

/// The segment appends continue in.
#[derive(Debug)]
pub(crate) struct TailSegment {
    pub path: PathBuf,
    pub header: SegmentHeader,
    /// Where the next record goes.
    pub end_offset: usize,
}

#[derive(Debug)]
pub(crate) struct Recovered {
    pub report: RecoveryReport,
    /// `None` for an empty journal.
    pub tail: Option<TailSegment>,
    /// The number to give a new first segment when `tail` is `None`.
    pub first_segment_number: u64,
}

/// Scans the journal in `dir` (which must exist) and repairs its end; see the module doc.
pub(crate) fn recover(dir: &Path, policy: CorruptionPolicy) -> Result<Recovered, JournalError> {
    let listing = list_dir(dir)?;
    let mut report = RecoveryReport {
        next_seq: 1,
        ..RecoveryReport::default()
    };
    for tmp in &listing.temp_files {
        fs::remove_file(tmp).map_err(|e| JournalError::io(tmp, "remove temp segment", e))?;
        report
            .events
            .push(RecoveryEvent::TempFileRemoved { path: tmp.clone() });
    }

    // Map every segment; an unreadable header is corruption at offset 0 of that file.
    let mut mapped: Vec<MappedSegment> = Vec::with_capacity(listing.segments.len());
    let mut unreadable: Option<(usize, JournalError)> = None;
    for (i, s) in listing.segments.iter().enumerate() {
        match map_segment(&s.path, Some(s.number)) {
            Ok(m) => mapped.push(m),
            Err(e @ JournalError::BadHeader { .. }) => {
                unreadable = Some((i, e));
                break;
            }
            Err(e) => return Err(e),
        }
    }
    if let Some((index, err)) = unreadable {
        let JournalError::BadHeader { path, problem } = err else {
            unreachable!("only BadHeader is kept")
        };
        if policy == CorruptionPolicy::Refuse {
            return Err(JournalError::BadHeader { path, problem });
        }
        let set_aside = set_aside_from(&listing.segments[index..])?;
        sync_dir(dir)?;
        report.events.push(RecoveryEvent::CorruptionCut {
            path,
            offset: 0,
            problem: Damage::UnreadableHeader(problem),
            saved_to: None,
            set_aside,
        });
    }

    let reader = JournalReader::from_segments(dir, mapped);
    let scan = reader.scan();
    drop(reader); // unmap before anything below writes to the files

    let mut kept = scan.segments.len();
    let mut tail_damage: Option<(usize, u64, Damage, bool)> = None; // (segment, offset, damage, torn)
    if let Some(f) = scan.first_corruption() {
        let FindingKind::Corrupt(damage) = f.kind else {
            unreachable!("first_corruption returns Corrupt findings")
        };
        if policy == CorruptionPolicy::Refuse {
            return Err(JournalError::Corrupt {
                path: f.path.clone(),
                offset: f.offset,
                problem: damage,
            });
        }
        let later: Vec<_> = listing.segments[f.segment_index + 1..scan.segments.len()].to_vec();
        let mut set_aside = set_aside_from(&later)?;
        if f.offset == 0 {
            // The header itself is wrong for its place: the whole segment goes aside.
            let this = &listing.segments[f.segment_index..=f.segment_index];
            let mut first = set_aside_from(this)?;
            first.append(&mut set_aside);
            set_aside = first;
            kept = f.segment_index;
            sync_dir(dir)?;
            report.events.push(RecoveryEvent::CorruptionCut {
                path: f.path.clone(),
                offset: 0,
                problem: damage,
                saved_to: None,
                set_aside,
            });
        } else {
            kept = f.segment_index + 1;
            sync_dir(dir)?;
            tail_damage = Some((f.segment_index, f.offset, damage, false));
            report.events.push(RecoveryEvent::CorruptionCut {
                path: f.path.clone(),
                offset: f.offset,
                problem: damage,
                saved_to: None,
                set_aside,
            });
        }
    } else if let Some(f) = scan.torn_tail() {
        if let FindingKind::TornTail(p) = f.kind {
            tail_damage = Some((f.segment_index, f.offset, Damage::Record(p), true));
        }
    }

    let segments = &scan.segments[..kept];
    report.segments = segments.len();
    report.records = segments.iter().map(|s| s.scan.records).sum();
    report.time_regressions = segments.iter().map(|s| s.scan.time_regressions).sum();
    let Some(last) = segments.last() else {
        // Nothing left (an empty directory, or everything set aside): start where the first
        // set-aside segment's header said it started, or at 1.
        report.next_seq = scan
            .segments
            .first()
            .map_or(1, |s| s.header.first_seq.max(1));
        return Ok(Recovered {
            report,
            tail: None,
            first_segment_number: listing.segments.first().map_or(1, |s| s.number),
        });
    };
    report.next_seq = last.scan.next_seq;

    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&last.path)
        .map_err(|e| JournalError::io(&last.path, "open segment for repair", e))?;
    let mut file_len = last.file_len;

    if let Some((index, offset, damage, torn)) = tail_damage {
        debug_assert_eq!(
            index + 1,
            kept,
            "damage is only repaired in the last kept segment"
        );
        let dirty_end = last_nonzero_end(&file, &last.path, offset, file_len)?;
        let bytes = dirty_end.saturating_sub(offset);
        if torn {
            zero_range(&file, &last.path, offset, dirty_end)?;
            if let Damage::Record(problem) = damage {
                report.events.push(RecoveryEvent::TornTailCut {
                    path: last.path.clone(),
                    offset,
                    problem,
                    bytes_zeroed: bytes,
                });
            }
        } else {
            let saved_to = if bytes > 0 {
                let saved = sibling(&last.path, &format!("cut-at-{offset}"));
                copy_range(&file, &last.path, offset, dirty_end, &saved)?;
                Some(saved)
            } else {
                None
            };
            zero_range(&file, &last.path, offset, dirty_end)?;
            if let Some(RecoveryEvent::CorruptionCut { saved_to: s, .. }) = report.events.last_mut()
            {
                *s = saved_to;
            }
        }
        file.sync_data()
            .map_err(|e| JournalError::io(&last.path, "sync repaired segment", e))?;
    }

    let declared = last.header.segment_size_bytes;
    if file_len < declared {
        zero_range(&file, &last.path, file_len, declared)?;
        file.sync_all()
            .map_err(|e| JournalError::io(&last.path, "sync extended segment", e))?;
        report.events.push(RecoveryEvent::SegmentExtended {
            path: last.path.clone(),
            from_len: file_len,
            to_len: declared,
        });
        file_len = declared;
    }
    debug_assert_eq!(file_len, declared);

    // The scan stops at the first damage, so its end is where appends continue.
    let end_offset = last.scan.end_offset.max(SEGMENT_HEADER_LEN);
    Ok(Recovered {
        report,
        tail: Some(TailSegment {
            path: last.path.clone(),
            header: last.header,
            end_offset,
        }),
        first_segment_number: 1,
    })
}

/// A unique name beside `path`: `<path>.<what>-<ns since epoch>`.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{what}-{}", now().0));
    PathBuf::from(name)
}

fn set_aside_from(segments: &[super::reader::SegmentFile]) -> Result<Vec<PathBuf>, JournalError> {
    let mut out = Vec::with_capacity(segments.len());
    for s in segments {
        let to = sibling(&s.path, "set-aside");
        fs::rename(&s.path, &to).map_err(|e| JournalError::io(&s.path, "set segment aside", e))?;
        out.push(to);
    }
    Ok(out)
}

/// The end of the last non-zero byte at or after `from` (or `from` if there is none), rounded
/// up to 8 bytes and capped at `len`.
fn last_nonzero_end(file: &File, path: &Path, from: u64, len: u64) -> Result<u64, JournalError> {
    const CHUNK: u64 = 1 << 20;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut end = from;
    let mut at = from;
    while at < len {
        let n = CHUNK.min(len - at) as usize;
        file.read_exact_at(&mut buf[..n], at)
            .map_err(|e| JournalError::io(path, "read segment tail", e))?;
        if let Some(p) = buf[..n].iter().rposition(|&b| b != 0) {
            end = at + p as u64 + 1;
        }
        at += n as u64;
    }
    Ok(end.next_multiple_of(8).min(len))
}

/// Writes zeros over `from..to` (also used to extend a file: blocks are allocated, not holes).
pub(crate) fn zero_range(file: &File, path: &Path, from: u64, to: u64) -> Result<(), JournalError> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(to.saturating_sub(from)) as usize];
    let mut at = from;
    while at < to {
        let n = CHUNK.min(to - at) as usize;
        file.write_all_at(&zeros[..n], at)
            .map_err(|e| JournalError::io(path, "write zeros", e))?;
        at += n as u64;
    }
    Ok(())
}

fn copy_range(
    file: &File,
    path: &Path,
    from: u64,
    to: u64,
    dest: &Path,
) -> Result<(), JournalError> {
    const CHUNK: u64 = 1 << 20;
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|e| JournalError::io(dest, "create file for cut bytes", e))?;
    let mut buf = vec![0u8; CHUNK.min(to.saturating_sub(from)) as usize];
    let mut at = from;
    while at < to {
        let n = CHUNK.min(to - at) as usize;
        file.read_exact_at(&mut buf[..n], at)
            .map_err(|e| JournalError::io(path, "read cut bytes", e))?;
        out.write_all_at(&buf[..n], at - from)
            .map_err(|e| JournalError::io(dest, "save cut bytes", e))?;
        at += n as u64;
    }
    out.sync_all()
        .map_err(|e| JournalError::io(dest, "sync cut bytes", e))
}

/// Makes renames and creations in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io(dir, "sync directory", e))
}

/// The wall clock, for segment creation times and unique names (never for record times).
pub(crate) fn now() -> Nanos {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
