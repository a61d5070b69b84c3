//! Stage latencies and queue depths of the engine thread, and how they reach the admin thread.
//!
//! Owns the pre-sized hdrhistograms the engine thread records into ([`Metrics`]), the stamps
//! the router takes around each inbound message ([`Probe`]: decode, select, engine, encode,
//! wire-to-wire, quote turnaround), and the bounded request/reply pair through which the
//! admin thread gets a copy ([`snapshot_channel`]): the admin thread sends a preallocated
//! [`MetricsSnapshot`] through an inbox (`crate::inbox`), the engine thread copies its
//! histograms and counters into it between events and sends it back. Recording and copying
//! never allocate (the histograms have fixed bounds and saturate), and the engine thread never
//! takes a lock. The clock read here is a monotonic one ([`now_ns`]), called by the router
//! layer only: the engine core (`fix`, `rfq`, `select`) never sees it. This module decides
//! nothing about RFQs and must not hold RFQ state; `exposition` renders and parses the
//! Prometheus text format.

pub mod exposition;

use crate::host::HostCounters;
use crate::inbox::{inbox, Inbox, InboxFull, InboxSender};
use crate::net::LoopHandle;
use crate::rfq::engine::Counters as EngineCounters;
use crate::router::RouterCounters;
use crossbeam::channel::{bounded, Receiver, RecvTimeoutError, Sender};
use hdrhistogram::Histogram;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Largest latency a histogram tells apart (100 s); slower samples count as this.
pub const HIGHEST_LATENCY_NS: u64 = 100_000_000_000;
/// Largest queue depth a histogram tells apart (items or bytes).
pub const HIGHEST_DEPTH: u64 = 1 << 32;
/// Significant decimal digits kept: values are exact below 256 and within 1% above.
pub const SIGNIFICANT_DIGITS: u8 = 2;

/// Nanoseconds on a monotonic clock since the first call in this process. For stage stamps
/// only (never for FIX timestamps or decisions); does not allocate after the first call.
pub fn now_ns() -> u64 {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    let anchor = ANCHOR.get_or_init(Instant::now);
    u64::try_from(anchor.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A timed stage of the engine thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Bytes from a connection to the message handed to the application: framing,
    /// tokenising, validation and the session's checks (per message; the second message of
    /// a read starts where the first one's handling ended).
    Decode,
    /// The engine's handling of a desk QuoteRequest: legs parsed, panel selected, protocol
    /// started, the messages to send written into the engine's outbox.
    Select,
    /// The engine's handling of any other application message (quotes, hits, fills).
    Engine,
    /// The engine's messages encoded by the sessions and written to the sockets.
    Encode,
    /// A desk QuoteRequest's bytes read -> the first dealer QuoteRequest written.
    WireToWire,
    /// A dealer Quote's bytes read -> the desk's Quote written.
    QuoteTurnaround,
    /// A journal record handed to the journal -> written by it (recorded by the journal's
    /// wiring through [`Metrics::record`]; empty while nothing records it).
    JournalLag,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Decode,
        Stage::Select,
        Stage::Engine,
        Stage::Encode,
        Stage::WireToWire,
        Stage::QuoteTurnaround,
        Stage::JournalLag,
    ];

    /// The `stage` label in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Select => "select",
            Stage::Engine => "engine",
            Stage::Encode => "encode",
            Stage::WireToWire => "wire_to_wire",
            Stage::QuoteTurnaround => "quote_turnaround",
            Stage::JournalLag => "journal_lag",
        }
    }
}

/// A queue whose depth is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Items waiting in an inbox (`crate::inbox`) when the engine thread drains it.
    Inbox,
    /// Bytes left in a connection's write queue right after the engine wrote to it.
    NetWriteBytes,
}

impl Queue {
    pub const ALL: [Queue; 2] = [Queue::Inbox, Queue::NetWriteBytes];

    /// The `queue` label in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Queue::Inbox => "inbox",
            Queue::NetWriteBytes => "net_write_bytes",
        }
    }
}

/// One histogram with the exact sum of what it recorded.
#[derive(Debug, Clone)]
pub struct Distribution {
    hist: Histogram<u64>,
    sum: u64,
}

impl Distribution {
    fn new(highest: u64) -> Distribution {
        let hist = Histogram::new_with_bounds(1, highest, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Distribution { hist, sum: 0 }
    }

    /// Adds one sample; past the histogram's highest value it counts as the highest.
    pub fn record(&mut self, value: u64) {
        self.hist.saturating_record(value);
        self.sum = self.sum.saturating_add(value);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The exact sum of the samples (saturating).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    pub fn max(&self) -> u64 {
        self.hist.max()
    }

    /// The value at quantile `q` (0..=1), within the histogram's precision; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.value_at_quantile(q)
        }
    }

    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// An empty latency histogram (1 ns .. [`HIGHEST_LATENCY_NS`]).
    pub fn latency() -> Distribution {
        Distribution::new(HIGHEST_LATENCY_NS)
    }

    /// Becomes a copy of `other` (same bounds): a memory copy, no allocation.
    pub fn copy_from(&mut self, other: &Distribution) {
        self.hist.reset();
        // Same bounds by construction, so the add cannot fail or resize.
        let added = self.hist.add(&other.hist);
        assert!(added.is_ok(), "metrics histograms share their bounds");
        self.sum = other.sum;
    }
}

fn stage_distributions() -> [Distribution; Stage::ALL.len()] {
    std::array::from_fn(|_| Distribution::new(HIGHEST_LATENCY_NS))
}

fn queue_distributions() -> [Distribution; Queue::ALL.len()] {
    std::array::from_fn(|_| Distribution::new(HIGHEST_DEPTH))
}

/// The engine thread's histograms. Only the engine thread writes them.
#[derive(Debug, Clone)]
pub struct Metrics {
    stages: [Distribution; Stage::ALL.len()],
    queues: [Distribution; Queue::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every histogram allocated here, at its full size.
    pub fn new() -> Metrics {
        now_ns();
        Metrics {
            stages: stage_distributions(),
            queues: queue_distributions(),
        }
    }

    /// Records `ns` for `stage` (no allocation).
    pub fn record(&mut self, stage: Stage, ns: u64) {
        self.stages[stage as usize].record(ns);
    }

    /// Records a sampled depth of `queue` (no allocation).
    pub fn record_queue(&mut self, queue: Queue, depth: u64) {
        self.queues[queue as usize].record(depth);
    }

    pub fn stage(&self, stage: Stage) -> &Distribution {
        &self.stages[stage as usize]
    }

    pub fn queue(&self, queue: Queue) -> &Distribution {
        &self.queues[queue as usize]
    }
}

/// The counters the engine thread owns, as one copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounts {
    pub engine: EngineCounters,
    pub router: RouterCounters,
    pub host: HostCounters,
    pub open_rfqs: u64,
    /// Requests refused because an inbox was full (every inbox the engine drains).
    pub inbox_refused: u64,
}

/// A copy of the engine thread's metrics, as the admin thread renders it.
#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    stages: [Distribution; Stage::ALL.len()],
    queues: [Distribution; Queue::ALL.len()],
    pub counts: EngineCounts,
}

impl Default for MetricsSnapshot {
    fn default() -> Self {
        MetricsSnapshot::new()
    }
}

impl MetricsSnapshot {
    /// An empty snapshot with its histograms at full size (allocates; reuse it).
    pub fn new() -> MetricsSnapshot {
        MetricsSnapshot {
            stages: stage_distributions(),
            queues: queue_distributions(),
            counts: EngineCounts::default(),
        }
    }

    /// Becomes a copy of `metrics` and `counts` (no allocation).
    pub fn fill(&mut self, metrics: &Metrics, counts: &EngineCounts) {
        for (to, from) in self.stages.iter_mut().zip(&metrics.stages) {
            to.copy_from(from);
        }
        for (to, from) in self.queues.iter_mut().zip(&metrics.queues) {
            to.copy_from(from);
        }
        self.counts = *counts;
    }

    pub fn stage(&self, stage: Stage) -> &Distribution {
        &self.stages[stage as usize]
    }

    /// For stages recorded off the engine thread (the journal's lag).
    pub fn stage_mut(&mut self, stage: Stage) -> &mut Distribution {
        &mut self.stages[stage as usize]
    }

    pub fn queue(&self, queue: Queue) -> &Distribution {
        &self.queues[queue as usize]
    }
}

/// One snapshot request (or, sent back, its answer): the admin thread's buffer travels to
/// the engine thread and back, so neither side allocates per request.
#[derive(Debug)]
pub struct SnapshotRequest {
    pub id: u64,
    pub snapshot: Box<MetricsSnapshot>,
}

/// The admin side of [`snapshot_channel`].
pub struct SnapshotClient {
    requests: InboxSender<SnapshotRequest>,
    replies: Receiver<SnapshotRequest>,
    next_id: u64,
    spare: Option<Box<MetricsSnapshot>>,
}

/// The engine side of [`snapshot_channel`]: drained by the router in `HostApp::on_wake`.
pub struct SnapshotServer {
    requests: Inbox<SnapshotRequest>,
    replies: Sender<SnapshotRequest>,
}

/// Why a snapshot did not arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotError {
    /// The engine's inbox for these requests is full.
    Busy,
    /// The engine thread did not answer in time (or has stopped).
    Timeout,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SnapshotError::Busy => "the engine thread's admin inbox is full",
            SnapshotError::Timeout => "the engine thread did not answer in time",
        })
    }
}

impl std::error::Error for SnapshotError {}

/// A bounded request/reply pair between the admin thread and the engine thread, holding at
/// most `capacity` requests. `wake` is the engine loop's handle (set later with
/// [`SnapshotClient::set_wake`] when the loop starts after this is made).
pub fn snapshot_channel(
    capacity: usize,
    wake: Option<LoopHandle>,
) -> (SnapshotClient, SnapshotServer) {
    let (tx, rx) = inbox(capacity, wake);
    // One more reply slot than requests can be in flight, so an answer never finds it full.
    let (reply_tx, reply_rx) = bounded(capacity + 1);
    (
        SnapshotClient {
            requests: tx,
            replies: reply_rx,
            next_id: 0,
            spare: None,
        },
        SnapshotServer {
            requests: rx,
            replies: reply_tx,
        },
    )
}

impl SnapshotClient {
    pub fn set_wake(&mut self, wake: LoopHandle) {
        self.requests.set_wake(wake);
    }

    /// Asks the engine thread for a snapshot and waits up to `timeout` for it.
    pub fn fetch(&mut self, timeout: Duration) -> Result<&mut MetricsSnapshot, SnapshotError> {
        let snapshot = self
            .spare
            .take()
            .unwrap_or_else(|| Box::new(MetricsSnapshot::new()));
        self.next_id += 1;
        let id = self.next_id;
        if let Err(InboxFull(req)) = self.requests.send(SnapshotRequest { id, snapshot }) {
            self.spare = Some(req.snapshot);
            return Err(SnapshotError::Busy);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.replies.recv_timeout(left) {
                Ok(reply) if reply.id == id => return Ok(&mut **self.spare.insert(reply.snapshot)),
                // The answer to a request that timed out earlier: drop it.
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(SnapshotError::Timeout)
                }
            }
        }
    }
}

impl SnapshotServer {
    /// Requests waiting now.
    pub fn pending(&self) -> usize {
        self.requests.len()
    }

    /// Requests refused because the inbox was full.
    pub fn refused(&self) -> u64 {
        self.requests.refused()
    }

    /// Answers every waiting request with a copy of `metrics` and `counts` (no allocation).
    pub fn serve(&mut self, metrics: &Metrics, counts: &EngineCounts) {
        while let Some(mut req) = self.requests.try_recv() {
            req.snapshot.fill(metrics, counts);
            // A full or closed reply channel means the admin thread gave up: drop it.
            let _ = self.replies.try_send(req);
        }
    }
}

/// What the inbound message being handled is, for the end-to-end stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    None,
    QuoteRequest,
    Quote,
    Other,
}

/// The router's stamps around each inbound message, and the histograms they land in. The
/// router calls, in order: [`Probe::on_input`] when a connection's bytes are about to be
/// decoded; per message [`Probe::message_start`], [`Probe::engine_done`], [`Probe::sent`]
/// for each message written, [`Probe::message_end`]. Nothing here allocates.
#[derive(Debug)]
pub struct Probe {
    pub metrics: Metrics,
    /// When the bytes being decoded were read.
    input_ns: u64,
    /// The end of the last thing timed in this read (the next message's decode starts here).
    mark_ns: u64,
    /// When the current message reached the application.
    message_ns: u64,
    inbound: Inbound,
    /// The current message's end-to-end stage is recorded.
    answered: bool,
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

impl Probe {
    pub fn new() -> Probe {
        Probe {
            metrics: Metrics::new(),
            input_ns: 0,
            mark_ns: 0,
            message_ns: 0,
            inbound: Inbound::None,
            answered: false,
        }
    }

    /// Bytes from a connection are about to be decoded.
    pub fn on_input(&mut self) {
        let t = now_ns();
        self.input_ns = t;
        self.mark_ns = t;
    }

    /// An application message of `msg_type` reached the application.
    pub fn message_start(&mut self, msg_type: &[u8]) {
        let t = now_ns();
        if self.mark_ns != 0 {
            self.metrics
                .record(Stage::Decode, t.saturating_sub(self.mark_ns));
        }
        self.message_ns = t;
        self.answered = false;
        self.inbound = match msg_type {
            b"R" => Inbound::QuoteRequest,
            b"S" => Inbound::Quote,
            _ => Inbound::Other,
        };
    }

    /// The engine has handled the message.
    pub fn engine_done(&mut self) {
        let t = now_ns();
        let stage = match self.inbound {
            Inbound::QuoteRequest => Stage::Select,
            Inbound::None | Inbound::Quote | Inbound::Other => Stage::Engine,
        };
        if self.inbound != Inbound::None {
            self.metrics
                .record(stage, t.saturating_sub(self.message_ns));
        }
        self.mark_ns = t;
    }

    /// A message of `msg_type` was written to a connection that has `queued_bytes` left in
    /// its write queue afterwards.
    pub fn sent(&mut self, msg_type: &[u8], queued_bytes: usize) {
        self.metrics
            .record_queue(Queue::NetWriteBytes, queued_bytes as u64);
        if self.answered || self.input_ns == 0 {
            return;
        }
        let stage = match (self.inbound, msg_type) {
            (Inbound::QuoteRequest, b"R") => Stage::WireToWire,
            (Inbound::Quote, b"S") => Stage::QuoteTurnaround,
            _ => return,
        };
        let t = now_ns();
        self.metrics.record(stage, t.saturating_sub(self.input_ns));
        self.answered = true;
    }

    /// Everything the message produced is written.
    pub fn message_end(&mut self) {
        let t = now_ns();
        if self.inbound != Inbound::None {
            self.metrics
                .record(Stage::Encode, t.saturating_sub(self.mark_ns));
        }
        self.mark_ns = t;
        self.inbound = Inbound::None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_saturate_and_keep_exact_sums() {
        let mut d = Distribution::new(HIGHEST_LATENCY_NS);
        d.record(100);
        d.record(300);
        d.record(u64::MAX);
        assert_eq!(d.count(), 3);
        assert_eq!(d.sum(), u64::MAX, "sum saturates");
        assert!(
            d.max() >= HIGHEST_LATENCY_NS,
            "clamped to the highest value"
        );
        assert_eq!(d.quantile(0.0), 100);
    }

    #[test]
    fn a_snapshot_copies_histograms_and_counts() {
        let mut m = Metrics::new();
        for v in 1..=1000 {
            m.record(Stage::Select, v * 1000);
        }
        m.record_queue(Queue::Inbox, 3);
        let counts = EngineCounts {
            open_rfqs: 7,
            ..EngineCounts::default()
        };
        let mut s = MetricsSnapshot::new();
        s.fill(&m, &counts);
        assert_eq!(s.stage(Stage::Select).count(), 1000);
        assert_eq!(s.stage(Stage::Select).sum(), 1000 * 1001 / 2 * 1000);
        assert_eq!(s.stage(Stage::Decode).count(), 0);
        assert_eq!(s.queue(Queue::Inbox).max(), 3);
        assert_eq!(s.counts.open_rfqs, 7);
        // A second fill replaces, not adds.
        s.fill(&m, &counts);
        assert_eq!(s.stage(Stage::Select).count(), 1000);
    }

    #[test]
    fn the_probe_times_a_quote_request_end_to_end() {
        let mut p = Probe::new();
        p.on_input();
        p.message_start(b"R");
        p.engine_done();
        p.sent(b"R", 0);
        p.sent(b"R", 10);
        p.message_end();
        let m = &p.metrics;
        for s in [
            Stage::Decode,
            Stage::Select,
            Stage::Encode,
            Stage::WireToWire,
        ] {
            assert_eq!(m.stage(s).count(), 1, "{}", s.name());
        }
        assert_eq!(m.stage(Stage::QuoteTurnaround).count(), 0);
        assert_eq!(m.queue(Queue::NetWriteBytes).count(), 2);
        // A quote answered with a desk Quote.
        p.on_input();
        p.message_start(b"S");
        p.engine_done();
        p.sent(b"S", 0);
        p.message_end();
        assert_eq!(p.metrics.stage(Stage::QuoteTurnaround).count(), 1);
        assert_eq!(p.metrics.stage(Stage::Engine).count(), 1);
    }

    #[test]
    fn snapshots_travel_to_the_engine_side_and_back() {
        let (mut client, mut server) = snapshot_channel(2, None);
        let mut m = Metrics::new();
        m.record(Stage::Decode, 42);
        let counts = EngineCounts {
            open_rfqs: 3,
            ..EngineCounts::default()
        };
        let engine = std::thread::spawn(move || {
            // Serve until the one request has been answered (or give up after 30 s).
            let give_up = Instant::now() + Duration::from_secs(30);
            while server.pending() == 0 && Instant::now() < give_up {
                std::thread::yield_now();
            }
            server.serve(&m, &counts);
            server
        });
        let snap = client
            .fetch(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(snap.stage(Stage::Decode).count(), 1);
        assert_eq!(snap.counts.open_rfqs, 3);
        let _server = engine.join().expect("engine side");
        // Nobody answers now: a timeout, not a hang.
        assert_eq!(
            client.fetch(Duration::from_millis(1)).err(),
            Some(SnapshotError::Timeout)
        );
    }
}
