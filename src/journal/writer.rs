//! Appending to the journal: the producer handle the engine thread holds, the bounded queue
//! between them, and the journal thread that writes records into the mapped segment.
//!
//! Owns the write path end to end: sequence numbers (assigned by the single producer, so it
//! knows every record's number at once), back-pressure (a full queue is an error from
//! `try_append` or a counted wait in `append`, never a drop), segment rolling onto segments
//! pre-allocated by a helper thread, durability (`os` or `fsync` group commit) and the
//! `written_seq`/`durable_seq` counters that let the engine confirm only what is durable.
//! In steady state nothing here allocates per record: payload buffers circulate between a
//! free list and the queue. It does not interpret payloads and never prints; the journal
//! thread's failure is kept and returned by `close` (appends then fail with `WriterFailed`).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Receiver, Sender};
use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use memmap2::MmapMut;

use super::format::{
    encode_fix_prefix, record_footprint, segment_file_name, valid_segment_size, write_record,
    FixDirection, RecordKind, SegmentHeader, MAX_SEGMENT_SIZE_BYTES, MIN_SEGMENT_SIZE_BYTES,
    SEGMENT_HEADER_LEN,
};
use super::recovery::{now, recover, sync_dir, zero_range, RecoveryReport};
use super::{CorruptionPolicy, Durability, JournalError};
use crate::time::Nanos;

/// Largest queue we accept.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;
/// Largest payload limit we accept.
pub const MAX_PAYLOAD_LIMIT_BYTES: usize = 16 << 20;
/// Payload buffers start this big (or at the payload limit, if smaller) and grow once to the
/// largest payload they carry.
const INITIAL_BUFFER_BYTES: usize = 512;
/// The journal thread publishes progress at least every this many records.
const DRAIN_BATCH: usize = 1024;
/// How long the journal thread sleeps when idle (it is woken early by the producer).
const IDLE_PARK: Duration = Duration::from_millis(20);
/// How long a blocked `append` parks between checks (it is woken early by the journal thread).
const FULL_PARK: Duration = Duration::from_millis(1);
/// Spins in `append` before parking.
const FULL_SPINS: u32 = 200;
/// Name of the lock file that keeps a second writer out.
const LOCK_FILE_NAME: &str = "journal.lock";

/// Called by the journal thread when records became durable and the producer asked to be
/// told (the engine thread's loop waker).
pub type DurableWaker = Box<dyn Fn() + Send + Sync>;

/// Everything needed to open a journal for writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    pub dir: PathBuf,
    /// Size of each new segment file (a multiple of 4096, 16 KiB to 2 GiB).
    pub segment_size_bytes: u64,
    /// Records that can wait between the producer and the journal thread.
    pub queue_capacity: usize,
    /// Largest payload accepted (must fit a segment).
    pub max_payload_bytes: usize,
    pub durability: Durability,
    pub on_corruption: CorruptionPolicy,
    /// The CPU the journal thread (and its segment pre-allocator) is pinned to (`None`:
    /// unpinned); `[router] journal_cpu`. Threads start through `pinning::spawn_pinned`.
    pub writer_cpu: Option<usize>,
}

impl JournalConfig {
    /// Defaults: 64 MiB segments, a 16384-record queue, 64 KiB payloads, `os` durability,
    /// refuse to open on corruption.
    pub fn new(dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            dir: dir.into(),
            segment_size_bytes: 64 << 20,
            queue_capacity: 16_384,
            max_payload_bytes: 64 << 10,
            durability: Durability::Os,
            on_corruption: CorruptionPolicy::Refuse,
            writer_cpu: None,
        }
    }

    pub fn validate(&self) -> Result<(), JournalError> {
        if !valid_segment_size(self.segment_size_bytes) {
            return Err(JournalError::Config(format!(
                "segment size {} must be a multiple of 4096 between {MIN_SEGMENT_SIZE_BYTES} \
                 and {MAX_SEGMENT_SIZE_BYTES}",
                self.segment_size_bytes
            )));
        }
        if self.queue_capacity == 0 || self.queue_capacity > MAX_QUEUE_CAPACITY {
            return Err(JournalError::Config(format!(
                "queue capacity {} must be between 1 and {MAX_QUEUE_CAPACITY}",
                self.queue_capacity
            )));
        }
        let room = self.segment_size_bytes as usize - SEGMENT_HEADER_LEN;
        if self.max_payload_bytes > MAX_PAYLOAD_LIMIT_BYTES
            || record_footprint(self.max_payload_bytes) > room
        {
            return Err(JournalError::Config(format!(
                "max payload {} must be at most {MAX_PAYLOAD_LIMIT_BYTES} and fit a segment",
                self.max_payload_bytes
            )));
        }
        if let Durability::Fsync {
            group_commit_records,
            ..
        } = self.durability
        {
            if group_commit_records == 0 {
                return Err(JournalError::Config(
                    "group_commit_records must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Why a record was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendError {
    /// Every queue slot is taken: back-pressure. Counted in `queue_full_events`.
    QueueFull,
    /// The payload exceeds `max_payload_bytes`. Counted in `payloads_too_large`.
    PayloadTooLarge { len: usize, max: usize },
    /// The journal thread stopped on an error; `close` returns it.
    WriterFailed,
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::QueueFull => f.write_str("journal queue full"),
            AppendError::PayloadTooLarge { len, max } => {
                write!(f, "journal payload of {len} bytes exceeds {max}")
            }
            AppendError::WriterFailed => f.write_str("journal thread failed"),
        }
    }
}

impl std::error::Error for AppendError {}

/// A snapshot of the journal's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalMetrics {
    pub appended_records: u64,
    /// Times the producer found the queue full (each failed `try_append`, each `append` that
    /// had to wait).
    pub queue_full_events: u64,
    /// Total time `append` spent waiting for room.
    pub backpressure_wait_ns: u64,
    pub payloads_too_large: u64,
    pub written_records: u64,
    /// Bytes written into segments (record headers, payloads, padding).
    pub written_bytes: u64,
    /// Highest sequence number written into the mapped segment.
    pub written_seq: u64,
    /// Highest sequence number durable under the configured mode.
    pub durable_seq: u64,
    pub segments_created: u64,
    pub syncs: u64,
    pub sync_ns_total: u64,
    pub sync_ns_max: u64,
    pub queue_capacity: usize,
    pub queue_len: usize,
}

/// One record waiting for the journal thread.
struct Slot {
    seq: u64,
    timestamp: Nanos,
    kind: RecordKind,
    payload: Vec<u8>,
}

/// Counters only the producer changes.
#[derive(Default)]
struct ProducerCounters {
    appended: AtomicU64,
    queue_full_events: AtomicU64,
    backpressure_wait_ns: AtomicU64,
    payloads_too_large: AtomicU64,
}

/// Counters only the journal thread changes.
#[derive(Default)]
struct WriterCounters {
    written_records: AtomicU64,
    written_bytes: AtomicU64,
    written_seq: AtomicU64,
    durable_seq: AtomicU64,
    segments_created: AtomicU64,
    syncs: AtomicU64,
    sync_ns_total: AtomicU64,
    sync_ns_max: AtomicU64,
}

struct Shared {
    filled: ArrayQueue<Slot>,
    free: ArrayQueue<Vec<u8>>,
    producer: CachePadded<ProducerCounters>,
    writer: CachePadded<WriterCounters>,
    writer_sleeping: AtomicBool,
    producer_waiting: AtomicBool,
    producer_thread: Mutex<Option<Thread>>,
    shutdown: AtomicBool,
    paused: AtomicBool,
    /// Set by the journal thread while it honours `paused` (it writes nothing meanwhile).
    pause_acknowledged: AtomicBool,
    sync_requested: AtomicBool,
    /// Set by the producer when it waits for durability; the journal thread then calls
    /// `durable_waker` once after its next sync.
    wake_on_durable: AtomicBool,
    durable_waker: Mutex<Option<DurableWaker>>,
    failed: AtomicBool,
    failure: Mutex<Option<JournalError>>,
    /// Journal lag (a record's timestamp -> written), recorded by the journal thread; the
    /// admin thread copies it for `/metrics` (the engine thread never takes this lock).
    lag: Mutex<crate::metrics::Distribution>,
}

impl Shared {
    fn snapshot(&self) -> JournalMetrics {
        let p = &self.producer;
        let w = &self.writer;
        JournalMetrics {
            appended_records: p.appended.load(Ordering::Relaxed),
            queue_full_events: p.queue_full_events.load(Ordering::Relaxed),
            backpressure_wait_ns: p.backpressure_wait_ns.load(Ordering::Relaxed),
            payloads_too_large: p.payloads_too_large.load(Ordering::Relaxed),
            written_records: w.written_records.load(Ordering::Relaxed),
            written_bytes: w.written_bytes.load(Ordering::Relaxed),
            written_seq: w.written_seq.load(Ordering::Acquire),
            durable_seq: w.durable_seq.load(Ordering::Acquire),
            segments_created: w.segments_created.load(Ordering::Relaxed),
            syncs: w.syncs.load(Ordering::Relaxed),
            sync_ns_total: w.sync_ns_total.load(Ordering::Relaxed),
            sync_ns_max: w.sync_ns_max.load(Ordering::Relaxed),
            queue_capacity: self.filled.capacity(),
            queue_len: self.filled.len(),
        }
    }

    fn wake_producer(&self) {
        fence(Ordering::SeqCst);
        if self.producer_waiting.load(Ordering::Relaxed) {
            if let Ok(guard) = self.producer_thread.lock() {
                if let Some(t) = guard.as_ref() {
                    t.unpark();
                }
            }
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    // Each counter has a single writer: a load and a store are enough.
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// Reads the journal's counters from any thread (the admin thread's `/metrics`).
#[derive(Clone)]
pub struct MetricsHandle(Arc<Shared>);

impl MetricsHandle {
    pub fn snapshot(&self) -> JournalMetrics {
        self.0.snapshot()
    }

    /// Copies the journal-lag histogram (record timestamp -> written) into `into`.
    pub fn copy_lag_into(&self, into: &mut crate::metrics::Distribution) {
        if let Ok(lag) = self.0.lag.lock() {
            into.copy_from(&lag);
        }
    }
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MetricsHandle").finish_non_exhaustive()
    }
}

/// Holds the journal thread still while alive (for tests and operational tools): appends
/// queue up and then meet back-pressure. Dropping it lets the thread drain again. Closing
/// the journal overrides it.
pub struct DrainPause {
    shared: Arc<Shared>,
    writer: Thread,
}

impl Drop for DrainPause {
    fn drop(&mut self) {
        self.shared.paused.store(false, Ordering::Release);
        self.writer.unpark();
    }
}

/// The producer's handle on an open journal. There is exactly one (`&mut self` on every
/// append), owned by the engine thread.
pub struct Journal {
    shared: Arc<Shared>,
    next_seq: u64,
    max_payload_bytes: usize,
    durability: Durability,
    writer_thread: Thread,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("next_seq", &self.next_seq)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens (creating if needed) the journal in `config.dir` for writing: takes the
    /// directory's lock, recovers (see [`super::recovery`]), and starts the journal thread.
    /// The report says what recovery found and did; the caller logs it.
    pub fn open(config: JournalConfig) -> Result<(Journal, RecoveryReport), JournalError> {
        config.validate()?;
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| JournalError::io(&dir, "create directory", e))?;
        let lock = take_lock(&dir)?;
        let recovered = recover(&dir, config.on_corruption)?;
        let mut report = recovered.report;
        let fsync = matches!(config.durability, Durability::Fsync { .. });

        let (segment_number, path, end_offset) = match recovered.tail {
            Some(t) => (t.header.segment_number, t.path, t.end_offset),
            None => {
                let number = recovered.first_segment_number;
                let tmp = preallocate(&dir, number, config.segment_size_bytes, fsync)?;
                let (path, _) = install_segment(
                    &dir,
                    &tmp,
                    number,
                    report.next_seq,
                    config.segment_size_bytes,
                    fsync,
                )?;
                report.segments += 1;
                (number, path, SEGMENT_HEADER_LEN)
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| JournalError::io(&path, "open segment", e))?;
        let map = map_segment_mut(&file, &path)?;
        let last_seq = report.next_seq - 1;

        let capacity = config.queue_capacity;
        let free = ArrayQueue::new(capacity);
        for _ in 0..capacity {
            let buf = Vec::with_capacity(INITIAL_BUFFER_BYTES.min(config.max_payload_bytes));
            assert!(free.push(buf).is_ok(), "free list sized to the queue");
        }
        let shared = Arc::new(Shared {
            filled: ArrayQueue::new(capacity),
            free,
            producer: CachePadded::new(ProducerCounters::default()),
            writer: CachePadded::new(WriterCounters::default()),
            writer_sleeping: AtomicBool::new(false),
            producer_waiting: AtomicBool::new(false),
            producer_thread: Mutex::new(None),
            shutdown: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            pause_acknowledged: AtomicBool::new(false),
            sync_requested: AtomicBool::new(false),
            wake_on_durable: AtomicBool::new(false),
            durable_waker: Mutex::new(None),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            lag: Mutex::new(crate::metrics::Distribution::latency()),
        });
        shared.writer.written_seq.store(last_seq, Ordering::Release);
        shared.writer.durable_seq.store(last_seq, Ordering::Release);

        let spare = Spare::start(&dir, config.segment_size_bytes, fsync, config.writer_cpu)?;
        let mut writer = Writer {
            shared: Arc::clone(&shared),
            dir,
            durability: config.durability,
            segment_size_bytes: config.segment_size_bytes,
            segment_number,
            file,
            map,
            offset: end_offset,
            synced_offset: end_offset,
            last_written: last_seq,
            unsynced_records: 0,
            first_unsynced_at: None,
            spare,
            _lock: lock,
        };
        writer.spare.request(segment_number + 1);
        let handle =
            crate::pinning::spawn_pinned("journal", config.writer_cpu, move |_| writer.run())
                .map_err(|e| JournalError::io(&config.dir, "start journal thread", e))?;
        let journal = Journal {
            shared,
            next_seq: report.next_seq,
            max_payload_bytes: config.max_payload_bytes,
            durability: config.durability,
            writer_thread: handle.thread().clone(),
            writer: Some(handle),
        };
        Ok((journal, report))
    }

    /// Queues a record if there is room; returns its sequence number. Never blocks.
    pub fn try_append(
        &mut self,
        kind: RecordKind,
        timestamp: Nanos,
        payload: &[u8],
    ) -> Result<u64, AppendError> {
        let r = self.push(kind, timestamp, &[], payload);
        if r == Err(AppendError::QueueFull) {
            bump(&self.shared.producer.queue_full_events, 1);
        }
        r
    }

    /// Queues a record, waiting (spin, then park) while the queue is full. The wait is
    /// counted once in `queue_full_events` and timed in `backpressure_wait_ns`.
    pub fn append(
        &mut self,
        kind: RecordKind,
        timestamp: Nanos,
        payload: &[u8],
    ) -> Result<u64, AppendError> {
        self.push_waiting(kind, timestamp, &[], payload)
    }

    /// Queues a FIX message (payload: session id, direction, raw frame). Never blocks.
    pub fn try_append_fix(
        &mut self,
        direction: FixDirection,
        session_id: u16,
        timestamp: Nanos,
        raw: &[u8],
    ) -> Result<u64, AppendError> {
        let prefix = encode_fix_prefix(session_id, direction);
        let r = self.push(direction.record_kind(), timestamp, &prefix, raw);
        if r == Err(AppendError::QueueFull) {
            bump(&self.shared.producer.queue_full_events, 1);
        }
        r
    }

    /// As [`Journal::append_fix`], with the payload prefix's `flags` byte (see
    /// `format::FixPayloadPrefix::flags`).
    pub fn append_fix_flagged(
        &mut self,
        direction: FixDirection,
        session_id: u16,
        flags: u8,
        timestamp: Nanos,
        raw: &[u8],
    ) -> Result<u64, AppendError> {
        let prefix = super::format::encode_fix_prefix_flagged(session_id, direction, flags);
        self.push_waiting(direction.record_kind(), timestamp, &prefix, raw)
    }

    /// Queues a FIX message, waiting while the queue is full (see [`Journal::append`]).
    pub fn append_fix(
        &mut self,
        direction: FixDirection,
        session_id: u16,
        timestamp: Nanos,
        raw: &[u8],
    ) -> Result<u64, AppendError> {
        let prefix = encode_fix_prefix(session_id, direction);
        self.push_waiting(direction.record_kind(), timestamp, &prefix, raw)
    }

    fn push(
        &mut self,
        kind: RecordKind,
        timestamp: Nanos,
        prefix: &[u8],
        payload: &[u8],
    ) -> Result<u64, AppendError> {
        let len = prefix.len() + payload.len();
        if len > self.max_payload_bytes {
            bump(&self.shared.producer.payloads_too_large, 1);
            return Err(AppendError::PayloadTooLarge {
                len,
                max: self.max_payload_bytes,
            });
        }
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(AppendError::WriterFailed);
        }
        let Some(mut buf) = self.shared.free.pop() else {
            return Err(AppendError::QueueFull);
        };
        buf.clear();
        buf.extend_from_slice(prefix);
        buf.extend_from_slice(payload);
        let seq = self.next_seq;
        let slot = Slot {
            seq,
            timestamp,
            kind,
            payload: buf,
        };
        assert!(
            self.shared.filled.push(slot).is_ok(),
            "journal queue holds at most as many slots as there are buffers"
        );
        self.next_seq += 1;
        bump(&self.shared.producer.appended, 1);
        // Pairs with the fence in `Writer::sleep`: either the writer sees the slot before it
        // parks, or we see it is (about to be) asleep and wake it.
        fence(Ordering::SeqCst);
        if self.shared.writer_sleeping.load(Ordering::Relaxed) {
            self.writer_thread.unpark();
        }
        Ok(seq)
    }

    fn push_waiting(
        &mut self,
        kind: RecordKind,
        timestamp: Nanos,
        prefix: &[u8],
        payload: &[u8],
    ) -> Result<u64, AppendError> {
        match self.push(kind, timestamp, prefix, payload) {
            Err(AppendError::QueueFull) => {}
            other => return other,
        }
        let shared = Arc::clone(&self.shared);
        bump(&shared.producer.queue_full_events, 1);
        let started = Instant::now();
        let mut spins = 0u32;
        let result = loop {
            if spins < FULL_SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                if let Ok(mut t) = shared.producer_thread.lock() {
                    if t.as_ref().map(Thread::id) != Some(thread::current().id()) {
                        *t = Some(thread::current());
                    }
                }
                shared.producer_waiting.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                if shared.free.is_empty() && !shared.failed.load(Ordering::Acquire) {
                    thread::park_timeout(FULL_PARK);
                }
                shared.producer_waiting.store(false, Ordering::Relaxed);
            }
            match self.push(kind, timestamp, prefix, payload) {
                Err(AppendError::QueueFull) => continue,
                other => break other,
            }
        };
        let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        bump(&shared.producer.backpressure_wait_ns, waited);
        result
    }

    /// The sequence number the next appended record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Highest sequence number written into the mapped segment (page cache).
    pub fn written_seq(&self) -> u64 {
        self.shared.writer.written_seq.load(Ordering::Acquire)
    }

    /// Highest sequence number durable under the configured mode: confirm to the desk only
    /// what is at or below it.
    pub fn durable_seq(&self) -> u64 {
        self.shared.writer.durable_seq.load(Ordering::Acquire)
    }

    /// Waits (spinning, then yielding) until record `seq` is written into the mapped segment,
    /// i.e. would survive a crash of this process: the write-ahead rule for a frame about to
    /// be handed to the kernel. Returns the time waited in ns; fails if the journal thread
    /// has stopped. The journal thread is woken when it sleeps.
    pub fn wait_written(&self, seq: u64) -> Result<u64, AppendError> {
        if self.written_seq() >= seq {
            return Ok(0);
        }
        let started = Instant::now();
        self.writer_thread.unpark();
        let mut spins = 0u32;
        while self.written_seq() < seq {
            if self.shared.failed.load(Ordering::Acquire)
                || self.writer.as_ref().is_none_or(|h| h.is_finished())
            {
                return Err(AppendError::WriterFailed);
            }
            if spins < FULL_SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        Ok(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Installs what the journal thread calls after a sync when the producer asked with
    /// [`Journal::wake_when_durable`] (the engine thread's loop waker).
    pub fn set_durable_waker(&self, waker: DurableWaker) {
        if let Ok(mut w) = self.shared.durable_waker.lock() {
            *w = Some(waker);
        }
    }

    /// Asks to be woken (through the durable waker) after the journal thread's next sync.
    /// Does not wait.
    pub fn wake_when_durable(&self) {
        self.shared.wake_on_durable.store(true, Ordering::Release);
    }

    /// Asks the journal thread to sync now rather than at the next group-commit deadline
    /// (no effect in `os` mode, where written is durable). Does not wait.
    pub fn request_sync(&self) {
        self.shared.sync_requested.store(true, Ordering::Release);
        self.writer_thread.unpark();
    }

    /// Waits until `durable_seq() >= seq` or `timeout` passes (returns whether it got there).
    /// For tools, tests and shutdown; the engine polls `durable_seq` instead of blocking.
    pub fn wait_durable(&self, seq: u64, timeout: Duration) -> Result<bool, AppendError> {
        let deadline = Instant::now() + timeout;
        self.request_sync();
        loop {
            if self.durable_seq() >= seq {
                return Ok(true);
            }
            if self.shared.failed.load(Ordering::Acquire) {
                return Err(AppendError::WriterFailed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            thread::sleep((deadline - now).min(Duration::from_micros(50)));
        }
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    pub fn metrics(&self) -> JournalMetrics {
        self.shared.snapshot()
    }

    pub fn metrics_handle(&self) -> MetricsHandle {
        MetricsHandle(Arc::clone(&self.shared))
    }

    /// Holds the journal thread still until the returned guard is dropped. Returns once the
    /// thread has stopped writing (or has failed), so nothing appended after this call is
    /// written while the guard lives.
    pub fn pause_drain(&self) -> DrainPause {
        self.shared.paused.store(true, Ordering::Release);
        self.writer_thread.unpark();
        while !self.shared.pause_acknowledged.load(Ordering::Acquire)
            && !self.shared.failed.load(Ordering::Acquire)
            && self.writer.as_ref().is_some_and(|h| !h.is_finished())
        {
            thread::sleep(Duration::from_micros(100));
        }
        DrainPause {
            shared: Arc::clone(&self.shared),
            writer: self.writer_thread.clone(),
        }
    }

    /// Drains the queue, syncs what was written (in both modes), stops the journal thread and
    /// returns the final counters, or the error the journal thread stopped on.
    pub fn close(mut self) -> Result<JournalMetrics, JournalError> {
        self.stop();
        let failure = self.shared.failure.lock().ok().and_then(|mut f| f.take());
        match failure {
            Some(e) => Err(e),
            None => Ok(self.shared.snapshot()),
        }
    }

    fn stop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.writer_thread.unpark();
        if let Some(h) = self.writer.take() {
            if h.join().is_err() {
                self.shared.failed.store(true, Ordering::Release);
                if let Ok(mut f) = self.shared.failure.lock() {
                    f.get_or_insert(JournalError::WriterFailed("journal thread panicked".into()));
                }
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The journal thread's state.
struct Writer {
    shared: Arc<Shared>,
    dir: PathBuf,
    durability: Durability,
    segment_size_bytes: u64,
    segment_number: u64,
    file: File,
    map: MmapMut,
    /// Where the next record goes in `map`.
    offset: usize,
    /// Everything before this offset of the current segment is synced (`fsync` mode).
    synced_offset: usize,
    last_written: u64,
    unsynced_records: u32,
    first_unsynced_at: Option<Instant>,
    spare: Spare,
    _lock: File,
}

impl Writer {
    fn run(mut self) {
        if let Err(e) = self.run_until_shutdown() {
            if let Ok(mut f) = self.shared.failure.lock() {
                f.get_or_insert(e);
            }
            self.shared.failed.store(true, Ordering::Release);
            self.shared.wake_producer();
        }
        self.spare.finish();
    }

    fn run_until_shutdown(&mut self) -> Result<(), JournalError> {
        loop {
            let shutdown = self.shared.shutdown.load(Ordering::Acquire);
            if !shutdown && self.shared.paused.load(Ordering::Acquire) {
                self.shared
                    .pause_acknowledged
                    .store(true, Ordering::Release);
                thread::park_timeout(FULL_PARK);
                continue;
            }
            if self.shared.pause_acknowledged.load(Ordering::Relaxed) {
                self.shared
                    .pause_acknowledged
                    .store(false, Ordering::Release);
            }
            let drained = self.drain()?;
            if let Durability::Fsync {
                group_commit_interval_us,
                group_commit_records,
            } = self.durability
            {
                let requested = self.shared.sync_requested.swap(false, Ordering::AcqRel);
                let due = self.unsynced_records > 0
                    && (requested
                        || self.unsynced_records >= group_commit_records
                        || self.first_unsynced_at.is_some_and(|t| {
                            t.elapsed() >= Duration::from_micros(group_commit_interval_us)
                        }));
                if due {
                    self.sync()?;
                }
            }
            if drained == 0 {
                if shutdown && self.shared.filled.is_empty() {
                    return self.sync();
                }
                self.sleep();
            }
        }
    }

    /// Writes up to a batch of queued records and publishes progress.
    fn drain(&mut self) -> Result<usize, JournalError> {
        let mut n = 0;
        let mut bytes = 0u64;
        // Journal lag: one clock read and one lock per batch that has records.
        let shared = Arc::clone(&self.shared);
        let mut lag = None;
        let mut written_at = 0;
        while n < DRAIN_BATCH {
            let Some(slot) = self.shared.filled.pop() else {
                break;
            };
            bytes += self.write(&slot)? as u64;
            if n == 0 {
                lag = shared.lag.lock().ok();
                written_at = now().0;
            }
            if let Some(lag) = lag.as_mut() {
                lag.record(written_at.saturating_sub(slot.timestamp.0));
            }
            assert!(
                self.shared.free.push(slot.payload).is_ok(),
                "free list holds at most as many buffers as were made"
            );
            n += 1;
        }
        if n > 0 {
            let w = &self.shared.writer;
            bump(&w.written_records, n as u64);
            bump(&w.written_bytes, bytes);
            w.written_seq.store(self.last_written, Ordering::Release);
            if self.durability == Durability::Os {
                w.durable_seq.store(self.last_written, Ordering::Release);
            }
            self.shared.wake_producer();
        }
        Ok(n)
    }

    fn write(&mut self, slot: &Slot) -> Result<usize, JournalError> {
        let footprint = record_footprint(slot.payload.len());
        if self.offset + footprint > self.map.len() {
            self.roll(slot.seq)?;
        }
        let used = write_record(
            &mut self.map[self.offset..],
            slot.seq,
            slot.timestamp,
            slot.kind,
            &slot.payload,
        );
        self.offset += used;
        self.last_written = slot.seq;
        if matches!(self.durability, Durability::Fsync { .. }) {
            self.unsynced_records = self.unsynced_records.saturating_add(1);
            if self.first_unsynced_at.is_none() {
                self.first_unsynced_at = Some(Instant::now());
            }
        }
        Ok(used)
    }

    /// Makes everything written so far durable (`msync` of the unsynced range) and publishes
    /// `durable_seq`.
    fn sync(&mut self) -> Result<(), JournalError> {
        if self.offset > self.synced_offset {
            let started = Instant::now();
            self.map
                .flush_range(self.synced_offset, self.offset - self.synced_offset)
                .map_err(|e| JournalError::io(&self.current_path(), "msync segment", e))?;
            let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let w = &self.shared.writer;
            bump(&w.syncs, 1);
            bump(&w.sync_ns_total, took);
            if took > w.sync_ns_max.load(Ordering::Relaxed) {
                w.sync_ns_max.store(took, Ordering::Relaxed);
            }
            self.synced_offset = self.offset;
        }
        self.unsynced_records = 0;
        self.first_unsynced_at = None;
        // A sync in the middle of a batch (at a roll) covers records not yet published as
        // written: publish them first so durable_seq never passes written_seq.
        let w = &self.shared.writer;
        w.written_seq.store(self.last_written, Ordering::Release);
        w.durable_seq.store(self.last_written, Ordering::Release);
        if self.shared.wake_on_durable.swap(false, Ordering::AcqRel) {
            if let Ok(waker) = self.shared.durable_waker.lock() {
                if let Some(wake) = waker.as_ref() {
                    wake();
                }
            }
        }
        Ok(())
    }

    /// Moves on to the next segment, whose first record will be `first_seq`.
    fn roll(&mut self, first_seq: u64) -> Result<(), JournalError> {
        if matches!(self.durability, Durability::Fsync { .. }) {
            self.sync()?;
        }
        let number = self.segment_number + 1;
        let fsync = matches!(self.durability, Durability::Fsync { .. });
        let tmp = self.spare.take(number)?;
        let (path, _) = install_segment(
            &self.dir,
            &tmp,
            number,
            first_seq,
            self.segment_size_bytes,
            fsync,
        )?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| JournalError::io(&path, "open new segment", e))?;
        self.map = map_segment_mut(&file, &path)?;
        self.file = file;
        self.segment_number = number;
        self.offset = SEGMENT_HEADER_LEN;
        self.synced_offset = SEGMENT_HEADER_LEN;
        bump(&self.shared.writer.segments_created, 1);
        self.spare.request(number + 1);
        Ok(())
    }

    fn current_path(&self) -> PathBuf {
        self.dir.join(segment_file_name(self.segment_number))
    }

    fn sleep(&self) {
        let timeout = match (self.durability, self.first_unsynced_at) {
            (
                Durability::Fsync {
                    group_commit_interval_us,
                    ..
                },
                Some(t),
            ) => Duration::from_micros(group_commit_interval_us).saturating_sub(t.elapsed()),
            _ => IDLE_PARK,
        };
        if timeout.is_zero() {
            return;
        }
        self.shared.writer_sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.shared.filled.is_empty()
            && !self.shared.shutdown.load(Ordering::Acquire)
            && !self.shared.sync_requested.load(Ordering::Acquire)
        {
            thread::park_timeout(timeout);
        }
        self.shared.writer_sleeping.store(false, Ordering::Relaxed);
    }
}

/// Maps a segment file for writing.
fn map_segment_mut(file: &File, path: &Path) -> Result<MmapMut, JournalError> {
    // Why mapping is sound here: `MmapMut::map_mut` is unsafe because another party could change or truncate
    // the file while it is mapped. This file is a segment of a journal directory whose lock
    // (`journal.lock`, an exclusive file lock) this process holds, so no other writer exists;
    // within this process only the journal thread writes it, through this map. Segment files
    // are never truncated or shrunk: they are created at full size and recovery only writes
    // zeros before any map is made. Readers (the `rfq-journal` tool) only read.
    // SAFETY: we hold the journal's lock and segments are never truncated (above).
    unsafe { MmapMut::map_mut(file) }.map_err(|e| JournalError::io(path, "map segment", e))
}

/// Takes the directory's exclusive lock, held for as long as the returned file lives.
fn take_lock(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::io(&path, "open lock file", e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(JournalError::Locked { path }),
        Err(TryLockError::Error(e)) => Err(JournalError::io(&path, "lock journal", e)),
    }
}

/// Creates `seg-<number>.rfqj.tmp` at full size, every block written (zeros), so appends
/// into its map never meet a hole (no block allocation, no SIGBUS on a full disk mid-run).
fn preallocate(dir: &Path, number: u64, size: u64, fsync: bool) -> Result<PathBuf, JournalError> {
    let mut name = segment_file_name(number);
    name.push_str(".tmp");
    let path = dir.join(name);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| JournalError::io(&path, "create segment", e))?;
    zero_range(&file, &path, 0, size)?;
    if fsync {
        file.sync_all()
            .map_err(|e| JournalError::io(&path, "sync new segment", e))?;
    }
    Ok(path)
}

/// Writes the header into a pre-allocated file and renames it into place.
fn install_segment(
    dir: &Path,
    tmp: &Path,
    number: u64,
    first_seq: u64,
    size: u64,
    fsync: bool,
) -> Result<(PathBuf, SegmentHeader), JournalError> {
    let header = SegmentHeader::new(number, first_seq, now(), size);
    let file = OpenOptions::new()
        .write(true)
        .open(tmp)
        .map_err(|e| JournalError::io(tmp, "open new segment", e))?;
    file.write_all_at(&header.encode(), 0)
        .map_err(|e| JournalError::io(tmp, "write segment header", e))?;
    if fsync {
        file.sync_data()
            .map_err(|e| JournalError::io(tmp, "sync segment header", e))?;
    }
    let path = dir.join(segment_file_name(number));
    fs::rename(tmp, &path).map_err(|e| JournalError::io(tmp, "install segment", e))?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok((path, header))
}

type SpareResult = (u64, Result<PathBuf, JournalError>);

/// The helper thread that pre-allocates the next segment while the current one fills.
struct Spare {
    requests: Option<Sender<u64>>,
    ready: Receiver<SpareResult>,
    pending: Option<u64>,
    thread: Option<JoinHandle<()>>,
}

impl Spare {
    fn start(
        dir: &Path,
        size: u64,
        fsync: bool,
        cpu: Option<usize>,
    ) -> Result<Spare, JournalError> {
        let (requests, incoming) = bounded::<u64>(1);
        let (done, ready) = bounded::<SpareResult>(1);
        let dir_owned = dir.to_path_buf();
        let thread = crate::pinning::spawn_pinned("journal-prealloc", cpu, move |_| {
            for number in incoming {
                let r = preallocate(&dir_owned, number, size, fsync);
                if done.send((number, r)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| JournalError::io(dir, "start pre-allocation thread", e))?;
        Ok(Spare {
            requests: Some(requests),
            ready,
            pending: None,
            thread: Some(thread),
        })
    }

    fn request(&mut self, number: u64) {
        if self.pending.is_some() {
            return;
        }
        if let Some(tx) = &self.requests {
            if tx.send(number).is_ok() {
                self.pending = Some(number);
            }
        }
    }

    /// The pre-allocated file for segment `number`, waiting for it if it is not ready.
    fn take(&mut self, number: u64) -> Result<PathBuf, JournalError> {
        if self.pending.is_none() {
            self.request(number);
        }
        let Some(pending) = self.pending.take() else {
            return Err(JournalError::WriterFailed(
                "pre-allocation thread is gone".into(),
            ));
        };
        match self.ready.recv() {
            Ok((n, Ok(path))) if n == number && pending == number => Ok(path),
            Ok((n, Ok(path))) => {
                let _ = fs::remove_file(&path);
                Err(JournalError::WriterFailed(format!(
                    "pre-allocated segment {n}, needed {number}"
                )))
            }
            Ok((_, Err(e))) => Err(e),
            Err(_) => Err(JournalError::WriterFailed(
                "pre-allocation thread is gone".into(),
            )),
        }
    }

    /// Stops the helper and removes a spare that was never used.
    fn finish(&mut self) {
        self.requests = None;
        if self.pending.take().is_some() {
            if let Ok((_, Ok(path))) = self.ready.recv() {
                let _ = fs::remove_file(path);
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
