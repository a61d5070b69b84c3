//! Reading a journal: finding and mapping its segment files, iterating records zero-copy over
//! the maps, and scanning everything for damage (CRCs, sequence continuity, time order).
//!
//! This module only reads. It never changes a file (the repairs made when the journal is
//! opened for writing live in `recovery`), never prints, and treats every byte it maps as
//! untrusted: lengths are checked before use and every record's CRC is verified before it is
//! handed out. It may run while the router is appending to the same files; records that are
//! being written at that moment show up as the end of the journal or as a torn tail.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::format::{
    decode_record, find_valid_record, first_nonzero, parse_segment_file_name, Decoded,
    HeaderProblem, RecordKind, RecordProblem, RecordView, SegmentHeader, RECORD_ALIGN,
    RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::{Damage, HeaderMismatch, JournalError};
use crate::time::Nanos;

/// A segment file found in a directory (not yet opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// The number in the file name.
    pub number: u64,
    pub path: PathBuf,
}

/// What a journal directory holds.
#[derive(Debug, Default)]
pub struct DirListing {
    /// Segment files in ascending number order.
    pub segments: Vec<SegmentFile>,
    /// `seg-*.rfqj.tmp` files: pre-allocated segments never put in place.
    pub temp_files: Vec<PathBuf>,
}

/// Lists the segment files of `dir`. Files that do not look like segments are ignored.
pub fn list_dir(dir: &Path) -> Result<DirListing, JournalError> {
    let entries = fs::read_dir(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => JournalError::NotFound {
            path: dir.to_path_buf(),
        },
        _ => JournalError::io(dir, "list directory", e),
    })?;
    let mut listing = DirListing::default();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(dir, "list directory", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = parse_segment_file_name(name) {
            listing.segments.push(SegmentFile {
                number,
                path: entry.path(),
            });
        } else if name
            .strip_suffix(".tmp")
            .and_then(parse_segment_file_name)
            .is_some()
        {
            listing.temp_files.push(entry.path());
        }
    }
    listing.segments.sort_by_key(|s| s.number);
    listing.temp_files.sort();
    Ok(listing)
}

/// One segment file, mapped read-only.
#[derive(Debug)]
pub struct MappedSegment {
    pub path: PathBuf,
    /// The number in the file name, when the name is a segment name.
    pub name_number: Option<u64>,
    pub header: SegmentHeader,
    pub file_len: u64,
    map: Mmap,
}

impl MappedSegment {
    /// The segment's bytes, header included, up to its declared size (or the file's end if
    /// the file is shorter).
    pub fn bytes(&self) -> &[u8] {
        let declared = usize::try_from(self.header.segment_size_bytes).unwrap_or(usize::MAX);
        &self.map[..self.map.len().min(declared)]
    }
}

/// Opens and maps one segment file, checking its header.
pub fn map_segment(path: &Path, name_number: Option<u64>) -> Result<MappedSegment, JournalError> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => JournalError::NotFound {
            path: path.to_path_buf(),
        },
        _ => JournalError::io(path, "open segment", e),
    })?;
    let file_len = file
        .metadata()
        .map_err(|e| JournalError::io(path, "stat segment", e))?
        .len();
    if file_len < SEGMENT_HEADER_LEN as u64 {
        let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN);
        (&mut file)
            .take(SEGMENT_HEADER_LEN as u64)
            .read_to_end(&mut head)
            .map_err(|e| JournalError::io(path, "read segment header", e))?;
        let problem = match SegmentHeader::decode(&head) {
            Err(p) => p,
            Ok(_) => HeaderProblem::TooShort { len: head.len() },
        };
        return Err(JournalError::BadHeader {
            path: path.to_path_buf(),
            problem,
        });
    }
    // Why mapping is sound here: `Mmap::map` is unsafe because the mapped file could be
    // changed or truncated by someone else while the map is alive. Segment files are only ever written by the
    // router's journal thread, which appends inside the pre-allocated size and never shrinks
    // or truncates a segment, and by recovery, which runs only while it holds the journal for
    // writing and zeroes bytes with plain writes rather than truncating. So the mapped range
    // stays backed by the file for the map's whole life. Bytes past the last complete record
    // may still change while we read them if the router is running; nothing here trusts
    // those bytes: every length is bounds-checked and every record's CRC verified first.
    // SAFETY: segments are never truncated or shrunk while mapped (above).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| JournalError::io(path, "map segment", e))?;
    let header = SegmentHeader::decode(&map).map_err(|problem| JournalError::BadHeader {
        path: path.to_path_buf(),
        problem,
    })?;
    Ok(MappedSegment {
        path: path.to_path_buf(),
        name_number,
        header,
        file_len,
        map,
    })
}

/// A read-only view of a whole journal (a directory of segments, or one segment file).
#[derive(Debug)]
pub struct JournalReader {
    root: PathBuf,
    segments: Vec<MappedSegment>,
}

impl JournalReader {
    /// Opens `path`: a journal directory, or a single segment file. Fails with a clear error
    /// for a missing path, a directory without segments, or a file that is not a segment.
    pub fn open(path: &Path) -> Result<JournalReader, JournalError> {
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => JournalError::NotFound {
                path: path.to_path_buf(),
            },
            _ => JournalError::io(path, "stat", e),
        })?;
        let segments = if meta.is_dir() {
            let listing = list_dir(path)?;
            if listing.segments.is_empty() {
                return Err(JournalError::NoSegments {
                    dir: path.to_path_buf(),
                });
            }
            listing
                .segments
                .iter()
                .map(|s| map_segment(&s.path, Some(s.number)))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            let number = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_segment_file_name);
            vec![map_segment(path, number)?]
        };
        Ok(JournalReader {
            root: path.to_path_buf(),
            segments,
        })
    }

    pub(crate) fn from_segments(root: &Path, segments: Vec<MappedSegment>) -> JournalReader {
        JournalReader {
            root: root.to_path_buf(),
            segments,
        }
    }

    /// The path this reader was opened on.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn segments(&self) -> &[MappedSegment] {
        &self.segments
    }

    /// Sum of the mapped bytes of all segments (for progress reporting).
    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes().len() as u64).sum()
    }

    /// Every record in order, CRC-verified, borrowed from the maps. A damaged record ends its
    /// segment: it is yielded once as an error and iteration goes on with the next segment.
    pub fn records(&self) -> Records<'_> {
        Records {
            segments: &self.segments,
            index: 0,
            offset: SEGMENT_HEADER_LEN,
            bytes_before: 0,
        }
    }

    /// Scans every segment: record CRCs, sequence continuity within and across segments,
    /// headers against file names and neighbours, time order. Never stops early.
    pub fn scan(&self) -> JournalScan {
        self.scan_with_progress(|_| {})
    }

    /// [`JournalReader::scan`], calling `progress` with the bytes scanned so far after each
    /// segment.
    pub fn scan_with_progress(&self, mut progress: impl FnMut(u64)) -> JournalScan {
        let mut out = JournalScan::default();
        let mut bytes_done = 0u64;
        let mut prev: Option<(u64, u64, bool)> = None; // (number, next_seq, damaged)
        let mut last_timestamp: Option<Nanos> = None;
        let last_index = self.segments.len().saturating_sub(1);
        for (index, seg) in self.segments.iter().enumerate() {
            let h = &seg.header;
            let header_finding = |mismatch: HeaderMismatch| Finding {
                segment_index: index,
                path: seg.path.clone(),
                offset: 0,
                kind: FindingKind::Corrupt(Damage::Header(mismatch)),
            };
            if let Some(file_name) = seg.name_number {
                if file_name != h.segment_number {
                    out.findings
                        .push(header_finding(HeaderMismatch::NumberNotFileName {
                            header: h.segment_number,
                            file_name,
                        }));
                }
            }
            if seg.file_len > h.segment_size_bytes {
                out.findings
                    .push(header_finding(HeaderMismatch::FileLongerThanDeclared {
                        file_len: seg.file_len,
                        declared: h.segment_size_bytes,
                    }));
            }
            if let Some((number, next_seq, damaged)) = prev {
                if h.segment_number != number.wrapping_add(1) {
                    out.findings
                        .push(header_finding(HeaderMismatch::MissingSegment {
                            expected: number.wrapping_add(1),
                            found: h.segment_number,
                        }));
                } else if !damaged && h.first_seq != next_seq {
                    out.findings
                        .push(header_finding(HeaderMismatch::SequenceGap {
                            expected: next_seq,
                            found: h.first_seq,
                        }));
                }
            }
            let scan = scan_segment(seg.bytes(), h.first_seq, last_timestamp);
            if let Some(t) = &scan.first_time_regression {
                out.findings.push(Finding {
                    segment_index: index,
                    path: seg.path.clone(),
                    offset: t.offset as u64,
                    kind: FindingKind::TimeRegression {
                        seq: t.seq,
                        previous: t.previous,
                        found: t.found,
                    },
                });
            }
            if let Some(d) = &scan.damage {
                let torn = index == last_index && d.valid_record_after.is_none() && d.may_be_torn();
                out.findings.push(Finding {
                    segment_index: index,
                    path: seg.path.clone(),
                    offset: d.offset as u64,
                    kind: if torn {
                        FindingKind::TornTail(d.problem)
                    } else {
                        FindingKind::Corrupt(Damage::Record(d.problem))
                    },
                });
            }
            if scan.last_timestamp.is_some() {
                last_timestamp = scan.last_timestamp;
            }
            out.records += scan.records;
            out.next_seq = scan.next_seq;
            prev = Some((h.segment_number, scan.next_seq, scan.damage.is_some()));
            out.segments.push(SegmentSummary {
                path: seg.path.clone(),
                header: *h,
                file_len: seg.file_len,
                scan,
            });
            bytes_done += seg.bytes().len() as u64;
            progress(bytes_done);
        }
        out
    }
}

/// The result of [`JournalReader::scan`].
#[derive(Debug, Default)]
pub struct JournalScan {
    pub segments: Vec<SegmentSummary>,
    /// Everything wrong, in journal order.
    pub findings: Vec<Finding>,
    /// Valid records in total (up to the first damage of each segment).
    pub records: u64,
    /// The sequence number after the last valid record of the last segment.
    pub next_seq: u64,
}

impl JournalScan {
    /// The first finding that is corruption (not a torn tail, not a time regression).
    pub fn first_corruption(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .find(|f| matches!(f.kind, FindingKind::Corrupt(_)))
    }

    pub fn torn_tail(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .find(|f| matches!(f.kind, FindingKind::TornTail(_)))
    }
}

/// One segment's scan, with its identity.
#[derive(Debug)]
pub struct SegmentSummary {
    pub path: PathBuf,
    pub header: SegmentHeader,
    pub file_len: u64,
    pub scan: SegmentScan,
}

/// Something wrong at a place in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Index into [`JournalScan::segments`].
    pub segment_index: usize,
    pub path: PathBuf,
    /// Byte offset in the segment file.
    pub offset: u64,
    pub kind: FindingKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// A bad or partial record at the very end of the journal with nothing valid after it:
    /// what a crash mid-append leaves. Opening for writing cuts it.
    TornTail(RecordProblem),
    /// Damage with valid data after it, or in a segment that is not the last: never cut
    /// silently.
    Corrupt(Damage),
    /// A record whose timestamp is earlier than its predecessor's (the first of its segment;
    /// [`SegmentScan::time_regressions`] counts them all).
    TimeRegression {
        seq: u64,
        previous: Nanos,
        found: Nanos,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} offset {}: ", self.path.display(), self.offset)?;
        match &self.kind {
            FindingKind::TornTail(p) => write!(f, "torn tail: {p}"),
            FindingKind::Corrupt(d) => write!(f, "corrupt: {d}"),
            FindingKind::TimeRegression {
                seq,
                previous,
                found,
            } => write!(
                f,
                "time goes backwards at sequence {seq}: {} ns after {} ns",
                found.0, previous.0
            ),
        }
    }
}

/// What one segment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// Valid records before the first damage (or the end).
    pub records: u64,
    /// Where valid data ends: the next record would be written here.
    pub end_offset: usize,
    /// The sequence number after the last valid record (the header's first if none).
    pub next_seq: u64,
    pub first_timestamp: Option<Nanos>,
    pub last_timestamp: Option<Nanos>,
    pub payload_bytes: u64,
    pub damage: Option<SegmentDamage>,
    pub time_regressions: u64,
    pub first_time_regression: Option<TimeRegression>,
}

/// Where and how a segment stops being valid before its end marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentDamage {
    pub offset: usize,
    pub problem: RecordProblem,
    /// The first CRC-valid record with a plausible sequence number after the damage.
    pub valid_record_after: Option<usize>,
}

impl SegmentDamage {
    /// Whether a crash mid-append could have left this (a CRC-valid record with the wrong
    /// sequence number or an unknown kind could not).
    pub fn may_be_torn(&self) -> bool {
        !matches!(
            self.problem,
            RecordProblem::SequenceMismatch { .. } | RecordProblem::UnknownKind { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRegression {
    pub offset: usize,
    pub seq: u64,
    pub previous: Nanos,
    pub found: Nanos,
}

/// Scans one segment's bytes (header included). `first_seq` is the header's; `prev_timestamp`
/// the last timestamp of the segment before, for time-order checks across the boundary.
pub fn scan_segment(bytes: &[u8], first_seq: u64, prev_timestamp: Option<Nanos>) -> SegmentScan {
    let mut scan = SegmentScan {
        records: 0,
        end_offset: SEGMENT_HEADER_LEN,
        next_seq: first_seq,
        first_timestamp: None,
        last_timestamp: None,
        payload_bytes: 0,
        damage: None,
        time_regressions: 0,
        first_time_regression: None,
    };
    let mut last_ts = prev_timestamp;
    // Any later valid record has a sequence number in this window: no more records fit.
    let max_seq = first_seq.saturating_add((bytes.len() / RECORD_HEADER_LEN) as u64 + 1);
    let damaged =
        |offset: usize, problem: RecordProblem, search_from: usize, min_seq: u64| SegmentDamage {
            offset,
            problem,
            valid_record_after: find_valid_record(bytes, search_from, min_seq, max_seq),
        };
    let mut offset = SEGMENT_HEADER_LEN;
    loop {
        match decode_record(bytes, offset) {
            Decoded::End => {
                if first_nonzero(bytes, offset).is_some() {
                    scan.damage = Some(damaged(
                        offset,
                        RecordProblem::DataAfterEnd,
                        offset + RECORD_ALIGN,
                        scan.next_seq,
                    ));
                }
                break;
            }
            Decoded::Bad(problem) => {
                scan.damage = Some(damaged(
                    offset,
                    problem,
                    offset + RECORD_ALIGN,
                    scan.next_seq,
                ));
                break;
            }
            Decoded::Record {
                record,
                next_offset,
            } => {
                if record.seq != scan.next_seq {
                    scan.damage = Some(SegmentDamage {
                        offset,
                        problem: RecordProblem::SequenceMismatch {
                            expected: scan.next_seq,
                            found: record.seq,
                        },
                        valid_record_after: Some(offset),
                    });
                    break;
                }
                if RecordKind::from_code(record.kind_code).is_none() {
                    scan.damage = Some(SegmentDamage {
                        offset,
                        problem: RecordProblem::UnknownKind {
                            code: record.kind_code,
                        },
                        valid_record_after: Some(offset),
                    });
                    break;
                }
                if let Some(prev) = last_ts {
                    if record.timestamp < prev {
                        scan.time_regressions += 1;
                        if scan.first_time_regression.is_none() {
                            scan.first_time_regression = Some(TimeRegression {
                                offset,
                                seq: record.seq,
                                previous: prev,
                                found: record.timestamp,
                            });
                        }
                    }
                }
                last_ts = Some(record.timestamp);
                scan.first_timestamp.get_or_insert(record.timestamp);
                scan.last_timestamp = Some(record.timestamp);
                scan.records += 1;
                scan.payload_bytes += record.payload.len() as u64;
                scan.next_seq = record.seq.wrapping_add(1);
                offset = next_offset;
                scan.end_offset = offset.min(bytes.len());
            }
        }
    }
    scan
}

/// A record with its place in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalRecord<'a> {
    pub segment_number: u64,
    /// Byte offset of the record in its segment file.
    pub offset: u64,
    pub record: RecordView<'a>,
}

/// A damaged record met while iterating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadProblem<'a> {
    pub path: &'a Path,
    pub offset: u64,
    pub problem: RecordProblem,
}

impl std::fmt::Display for ReadProblem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} offset {}: {}",
            self.path.display(),
            self.offset,
            self.problem
        )
    }
}

/// Iterator over every record of a journal; see [`JournalReader::records`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    segments: &'a [MappedSegment],
    index: usize,
    offset: usize,
    bytes_before: u64,
}

impl Records<'_> {
    /// Bytes of the journal behind the iterator (for progress bars).
    pub fn bytes_done(&self) -> u64 {
        self.bytes_before + self.offset as u64
    }

    fn next_segment(&mut self) {
        if let Some(seg) = self.segments.get(self.index) {
            self.bytes_before += seg.bytes().len() as u64;
        }
        self.index += 1;
        self.offset = SEGMENT_HEADER_LEN;
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<JournalRecord<'a>, ReadProblem<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let seg = self.segments.get(self.index)?;
            let at = self.offset;
            match decode_record(seg.bytes(), at) {
                Decoded::Record {
                    record,
                    next_offset,
                } => {
                    self.offset = next_offset;
                    return Some(Ok(JournalRecord {
                        segment_number: seg.header.segment_number,
                        offset: at as u64,
                        record,
                    }));
                }
                Decoded::End => self.next_segment(),
                Decoded::Bad(problem) => {
                    self.next_segment();
                    return Some(Err(ReadProblem {
                        path: &seg.path,
                        offset: at as u64,
                        problem,
                    }));
                }
            }
        }
    }
}
