//! The Prometheus text exposition format (version 0.0.4): rendering the router's metrics,
//! parsing them back, and the table `rfq-router stats` prints.
//!
//! Owns the metric names and their help texts: stage latencies as summaries in seconds
//! (`rfq_router_stage_seconds{stage=..,quantile=..}` with `_sum` and `_count`, plus
//! `rfq_router_stage_max_seconds`), queue depths as summaries, and every counter of the
//! engine, the router adapter, the host, the network loop and the admin thread as
//! `rfq_router_<part>_<name>_total`. The parser checks what a scraper relies on (names,
//! labels and escapes, values, one TYPE per family declared before its samples, families
//! contiguous, no duplicate series, summary and histogram sample shapes). Pure text in and
//! out: no I/O, no clock.

use super::{MetricsSnapshot, Queue, Stage};
use crate::host::HostCounters;
use crate::journal::writer::JournalMetrics;
use crate::net::Counters as NetCounters;
use crate::rfq::engine::Counters as EngineCounters;
use crate::router::RouterCounters;
use std::collections::HashSet;
use std::fmt::{self, Write};

/// The quantiles each summary reports.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// The engine's counters by name: every field, named in the pattern below without `..`, so a
/// counter added to the engine does not compile until it is exposed here.
pub fn engine_counters(c: &EngineCounters) -> [(&'static str, u64); 35] {
    let EngineCounters {
        rfqs_received,
        rfqs_rejected_limit,
        rfqs_rejected_invalid,
        rfqs_rejected_no_dealer,
        overrides,
        dealer_requests_sent,
        quotes_accepted,
        quotes_rejected_unknown,
        quotes_rejected_late,
        quotes_rejected_duplicate,
        quotes_rejected_mismatch,
        declines,
        timeouts,
        withdrawals,
        dealer_disconnects,
        hits,
        hits_rejected,
        auto_executions,
        fills,
        expired,
        cancelled,
        no_quote_ends,
        timer_full,
        rules_reloads,
        rules_refused,
        score_updates,
        market_mids,
        market_data_rejected,
        execution_timeouts,
        late_execution_reports,
        late_fills_relayed,
        execution_cancel_rejects,
        iois_applied,
        iois_rejected,
        iois_ignored,
    } = *c;
    [
        ("rfqs_received", rfqs_received),
        ("rfqs_rejected_limit", rfqs_rejected_limit),
        ("rfqs_rejected_invalid", rfqs_rejected_invalid),
        ("rfqs_rejected_no_dealer", rfqs_rejected_no_dealer),
        ("overrides", overrides),
        ("dealer_requests_sent", dealer_requests_sent),
        ("quotes_accepted", quotes_accepted),
        ("quotes_rejected_unknown", quotes_rejected_unknown),
        ("quotes_rejected_late", quotes_rejected_late),
        ("quotes_rejected_duplicate", quotes_rejected_duplicate),
        ("quotes_rejected_mismatch", quotes_rejected_mismatch),
        ("declines", declines),
        ("timeouts", timeouts),
        ("withdrawals", withdrawals),
        ("dealer_disconnects", dealer_disconnects),
        ("hits", hits),
        ("hits_rejected", hits_rejected),
        ("auto_executions", auto_executions),
        ("fills", fills),
        ("expired", expired),
        ("cancelled", cancelled),
        ("no_quote_ends", no_quote_ends),
        ("timer_full", timer_full),
        ("rules_reloads", rules_reloads),
        ("rules_refused", rules_refused),
        ("score_updates", score_updates),
        ("market_mids", market_mids),
        ("market_data_rejected", market_data_rejected),
        ("execution_timeouts", execution_timeouts),
        ("late_execution_reports", late_execution_reports),
        ("late_fills_relayed", late_fills_relayed),
        ("execution_cancel_rejects", execution_cancel_rejects),
        ("iois_applied", iois_applied),
        ("iois_rejected", iois_rejected),
        ("iois_ignored", iois_ignored),
    ]
}

/// The router adapter's counters by name.
pub fn router_counters(c: &RouterCounters) -> [(&'static str, u64); 5] {
    [
        ("send_failures", c.send_failures),
        ("journal_records", c.journal_records),
        ("tca_facts", c.tca_facts),
        ("tca_facts_dropped", c.tca_facts_dropped),
        ("feedback_messages", c.feedback_messages),
    ]
}

/// The host's counters by name.
pub fn host_counters(c: &HostCounters) -> [(&'static str, u64); 7] {
    [
        ("rejected_pending_limit", c.rejected_pending_limit),
        ("rejected_not_logon", c.rejected_not_logon),
        ("rejected_logon_timeout", c.rejected_logon_timeout),
        ("rejected_unknown_identity", c.rejected_unknown_identity),
        ("rejected_duplicate_identity", c.rejected_duplicate_identity),
        ("send_failures", c.send_failures),
        ("app_send_failures", c.app_send_failures),
    ]
}

/// The network loop's counters by name.
pub fn net_counters(c: &NetCounters) -> [(&'static str, u64); 18] {
    [
        ("accepted", c.accepted),
        ("rejected_over_limit", c.rejected_over_limit),
        ("accept_errors", c.accept_errors),
        ("connects_started", c.connects_started),
        ("connected", c.connected),
        ("connect_failed", c.connect_failed),
        ("closed", c.closed),
        ("closed_by_peer", c.closed_by_peer),
        ("closed_local", c.closed_local),
        ("closed_slow_consumer", c.closed_slow_consumer),
        ("read_overflow", c.read_overflow),
        ("closed_io_error", c.closed_io_error),
        ("closed_shutdown", c.closed_shutdown),
        ("linger_expired", c.linger_expired),
        ("bytes_in", c.bytes_in),
        ("bytes_out", c.bytes_out),
        ("wakeups", c.wakeups),
        ("cycles", c.cycles),
    ]
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Writes one family header.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter_families(out: &mut String, part: &str, what: &str, counters: &[(&str, u64)]) {
    for (name, value) in counters {
        let full = format!("rfq_router_{part}_{name}_total");
        family(out, &full, "counter", &format!("{what}: {name}"));
        let _ = writeln!(out, "{full} {value}");
    }
}

/// The journal's counters by name (time in nanoseconds).
pub fn journal_counters(m: &JournalMetrics) -> [(&'static str, u64); 9] {
    [
        ("appended_records", m.appended_records),
        ("queue_full_events", m.queue_full_events),
        ("backpressure_wait_ns", m.backpressure_wait_ns),
        ("payloads_too_large", m.payloads_too_large),
        ("written_records", m.written_records),
        ("written_bytes", m.written_bytes),
        ("segments_created", m.segments_created),
        ("syncs", m.syncs),
        ("sync_ns", m.sync_ns_total),
    ]
}

fn journal_families(out: &mut String, m: &JournalMetrics) {
    counter_families(out, "journal", "journal", &journal_counters(m));
    for (name, help, value) in [
        (
            "rfq_router_journal_written_seq",
            "Highest sequence number written.",
            m.written_seq,
        ),
        (
            "rfq_router_journal_durable_seq",
            "Highest sequence number durable under the configured mode.",
            m.durable_seq,
        ),
        (
            "rfq_router_journal_backlog_records",
            "Records appended and not yet written (the journal's lag, in records).",
            m.appended_records.saturating_sub(m.written_records),
        ),
        (
            "rfq_router_journal_queue_depth",
            "Records waiting in the journal queue.",
            m.queue_len as u64,
        ),
        (
            "rfq_router_journal_queue_capacity",
            "Records the journal queue holds.",
            m.queue_capacity as u64,
        ),
        (
            "rfq_router_journal_sync_max_ns",
            "Slowest sync so far.",
            m.sync_ns_max,
        ),
    ] {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// Renders `snapshot`, the network loop's and the journal's counters (when known) and the
/// admin thread's own counters in the text exposition format.
pub fn render(
    snapshot: &MetricsSnapshot,
    net: Option<&NetCounters>,
    journal: Option<&JournalMetrics>,
    admin: &[(&str, u64)],
    out: &mut String,
) {
    family(
        out,
        "rfq_router_stage_seconds",
        "summary",
        "Latency of each engine-thread stage (decode, select, engine, encode, wire_to_wire, \
         quote_turnaround, journal_lag) since start.",
    );
    for stage in Stage::ALL {
        let d = snapshot.stage(stage);
        for q in QUANTILES {
            let _ = writeln!(
                out,
                "rfq_router_stage_seconds{{stage=\"{}\",quantile=\"{q}\"}} {}",
                stage.name(),
                seconds(d.quantile(q))
            );
        }
        let _ = writeln!(
            out,
            "rfq_router_stage_seconds_sum{{stage=\"{}\"}} {}",
            stage.name(),
            seconds(d.sum())
        );
        let _ = writeln!(
            out,
            "rfq_router_stage_seconds_count{{stage=\"{}\"}} {}",
            stage.name(),
            d.count()
        );
    }
    family(
        out,
        "rfq_router_stage_max_seconds",
        "gauge",
        "Slowest sample of each stage since start.",
    );
    for stage in Stage::ALL {
        let _ = writeln!(
            out,
            "rfq_router_stage_max_seconds{{stage=\"{}\"}} {}",
            stage.name(),
            seconds(snapshot.stage(stage).max())
        );
    }
    family(
        out,
        "rfq_router_queue_depth",
        "summary",
        "Sampled queue depths: inbox items when drained, net write-queue bytes after a write.",
    );
    for queue in Queue::ALL {
        let d = snapshot.queue(queue);
        for q in QUANTILES {
            let _ = writeln!(
                out,
                "rfq_router_queue_depth{{queue=\"{}\",quantile=\"{q}\"}} {}",
                queue.name(),
                d.quantile(q)
            );
        }
        let _ = writeln!(
            out,
            "rfq_router_queue_depth_sum{{queue=\"{}\"}} {}",
            queue.name(),
            d.sum()
        );
        let _ = writeln!(
            out,
            "rfq_router_queue_depth_count{{queue=\"{}\"}} {}",
            queue.name(),
            d.count()
        );
    }
    family(
        out,
        "rfq_router_queue_depth_max",
        "gauge",
        "Deepest sample of each queue since start.",
    );
    for queue in Queue::ALL {
        let _ = writeln!(
            out,
            "rfq_router_queue_depth_max{{queue=\"{}\"}} {}",
            queue.name(),
            snapshot.queue(queue).max()
        );
    }
    let c = &snapshot.counts;
    family(out, "rfq_router_open_rfqs", "gauge", "RFQ legs in flight.");
    let _ = writeln!(out, "rfq_router_open_rfqs {}", c.open_rfqs);
    counter_families(out, "engine", "RFQ engine", &engine_counters(&c.engine));
    counter_families(out, "router", "router adapter", &router_counters(&c.router));
    counter_families(out, "host", "FIX host", &host_counters(&c.host));
    counter_families(
        out,
        "inbox",
        "engine inboxes",
        &[("refused", c.inbox_refused)],
    );
    if let Some(n) = net {
        counter_families(out, "net", "network loop", &net_counters(n));
    }
    if let Some(j) = journal {
        journal_families(out, j);
    }
    counter_families(out, "admin", "admin thread", admin);
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A line that is not valid exposition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpositionError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ExpositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ExpositionError {}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => {
            let ok = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
            if ok {
                s.parse().ok()
            } else {
                None
            }
        }
    }
}

/// Parses `{k="v",...}` starting at `s` (which begins with `{`); returns the labels and the
/// rest after `}`.
/// Label pairs in the order written.
pub type Labels = Vec<(String, String)>;

fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    let mut rest = &s[1..];
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let key = rest[..eq].trim();
        if !is_label_name(key) {
            return Err(format!("bad label name {key:?}"));
        }
        if labels.iter().any(|(k, _)| k == key) {
            return Err(format!("label {key:?} given twice"));
        }
        rest = rest[eq + 1..].trim_start();
        let mut chars = rest.char_indices();
        if !matches!(chars.next(), Some((_, '"'))) {
            return Err(format!("label {key:?}: value not quoted"));
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err(format!("label {key:?}: bad escape")),
                },
                '\n' => return Err(format!("label {key:?}: raw newline")),
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("label {key:?}: unterminated value"))?;
        labels.push((key.to_string(), value));
        rest = rest[end..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after a label".to_string());
        }
    }
}

/// The family a sample belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &std::collections::HashMap<String, String>) -> &'a str {
    for (suffix, kinds) in [
        ("_sum", &["summary", "histogram"][..]),
        ("_count", &["summary", "histogram"][..]),
        ("_bucket", &["histogram"][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|k| kinds.contains(&k.as_str())) {
                return base;
            }
        }
    }
    name
}

/// Parses exposition text, checking its rules; the samples in order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ExpositionError> {
    let mut types: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |reason: String| ExpositionError {
            line: i + 1,
            reason,
        };
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            let keyword = words.next().unwrap_or("");
            if keyword != "TYPE" && keyword != "HELP" {
                continue;
            }
            let name = words.next().unwrap_or("");
            if !is_metric_name(name) {
                return Err(err(format!("{keyword}: bad metric name {name:?}")));
            }
            if keyword == "HELP" {
                if !helps.insert(name.to_string()) {
                    return Err(err(format!("second HELP for {name}")));
                }
                continue;
            }
            let kind = words.next().unwrap_or("").trim();
            if !matches!(
                kind,
                "counter" | "gauge" | "histogram" | "summary" | "untyped"
            ) {
                return Err(err(format!("TYPE {name}: unknown type {kind:?}")));
            }
            if types.contains_key(name) {
                return Err(err(format!("second TYPE for {name}")));
            }
            if finished.contains(name) || current.as_deref() == Some(name) {
                return Err(err(format!("TYPE for {name} after its samples")));
            }
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(err(format!("bad metric name {name:?}")));
        }
        let rest = &line[name_end..];
        let (labels, rest) = if rest.starts_with('{') {
            parse_labels(rest).map_err(err)?
        } else {
            (Vec::new(), rest)
        };
        let mut fields = rest.split_whitespace();
        let value_text = fields.next().ok_or_else(|| err("no value".to_string()))?;
        let value =
            parse_value(value_text).ok_or_else(|| err(format!("bad value {value_text:?}")))?;
        if let Some(ts) = fields.next() {
            if ts.parse::<i64>().is_err() {
                return Err(err(format!("bad timestamp {ts:?}")));
            }
        }
        if fields.next().is_some() {
            return Err(err("text after the timestamp".to_string()));
        }
        let fam = family_of(name, &types).to_string();
        if current.as_deref() != Some(fam.as_str()) {
            if finished.contains(&fam) {
                return Err(err(format!("samples of {fam} are not together")));
            }
            if let Some(prev) = current.take() {
                finished.insert(prev);
            }
            current = Some(fam.clone());
        }
        match types.get(&fam).map(String::as_str) {
            Some("summary") if name == fam => {
                let q = labels.iter().find(|(k, _)| k == "quantile");
                match q.and_then(|(_, v)| parse_value(v)) {
                    Some(q) if (0.0..=1.0).contains(&q) => {}
                    _ => return Err(err(format!("{name}: summary sample needs a quantile"))),
                }
            }
            Some("histogram")
                if name.ends_with("_bucket") && !labels.iter().any(|(k, _)| k == "le") =>
            {
                return Err(err(format!("{name}: bucket needs an le label")));
            }
            Some("histogram") if name == fam => {
                return Err(err(format!("{name}: histogram sample without a suffix")));
            }
            Some("counter") if value < 0.0 => {
                return Err(err(format!("{name}: negative counter")));
            }
            _ => {}
        }
        let mut key_labels = labels.clone();
        key_labels.sort();
        if !series.insert((name.to_string(), key_labels)) {
            return Err(err(format!("{name}: the same series twice")));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The value of the sample named `name` whose labels include every pair in `labels`.
pub fn find(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .map(|s| s.value)
}

/// The table `rfq-router stats` prints: stage percentiles in microseconds, queue depths,
/// then the counters that are not zero.
pub fn stats_table(samples: &[Sample]) -> String {
    let mut out = String::new();
    let header = |out: &mut String, first: &str, unit: &str| {
        let _ = writeln!(
            out,
            "{first:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}   ({unit})",
            "count", "p50", "p90", "p99", "p99.9", "max"
        );
    };
    let row = |out: &mut String, base: &str, label: &str, value: &str, scale: f64| {
        let get = |q: &str| {
            find(samples, base, &[(label, value), ("quantile", q)]).map_or(f64::NAN, |v| v * scale)
        };
        let count = find(samples, &format!("{base}_count"), &[(label, value)]).unwrap_or(0.0);
        let max = find(samples, &format!("{base}_max"), &[(label, value)])
            .or_else(|| {
                find(
                    samples,
                    &base.replace("_seconds", "_max_seconds"),
                    &[(label, value)],
                )
            })
            .map_or(f64::NAN, |v| v * scale);
        let _ = writeln!(
            out,
            "{value:<18} {count:>10} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {max:>10.1}",
            get("0.5"),
            get("0.9"),
            get("0.99"),
            get("0.999"),
        );
    };
    header(&mut out, "stage", "microseconds");
    for stage in Stage::ALL {
        row(
            &mut out,
            "rfq_router_stage_seconds",
            "stage",
            stage.name(),
            1e6,
        );
    }
    out.push('\n');
    header(&mut out, "queue", "items / bytes");
    for queue in Queue::ALL {
        row(
            &mut out,
            "rfq_router_queue_depth",
            "queue",
            queue.name(),
            1.0,
        );
    }
    out.push('\n');
    let counters: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name.ends_with("_total") || s.name == "rfq_router_open_rfqs")
        .collect();
    let zero = counters.iter().filter(|s| s.value == 0.0).count();
    let _ = writeln!(out, "counters (not zero):");
    for s in counters.iter().filter(|s| s.value != 0.0) {
        let _ = writeln!(out, "  {:<52} {}", s.name, s.value);
    }
    let _ = writeln!(out, "  ({zero} more at zero)");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{EngineCounts, Metrics};

    #[test]
    fn rendered_metrics_parse_back() {
        let mut m = Metrics::new();
        for v in [1_000, 2_000, 3_000] {
            m.record(Stage::WireToWire, v);
        }
        let mut snap = MetricsSnapshot::new();
        let mut counts = EngineCounts::default();
        counts.engine.rfqs_received = 3;
        snap.fill(&m, &counts);
        let mut text = String::new();
        let journal = JournalMetrics {
            appended_records: 10,
            written_records: 7,
            ..JournalMetrics::default()
        };
        render(&snap, None, Some(&journal), &[("requests", 5)], &mut text);
        let samples = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            find(
                &samples,
                "rfq_router_stage_seconds_count",
                &[("stage", "wire_to_wire")]
            ),
            Some(3.0)
        );
        let p50 = find(
            &samples,
            "rfq_router_stage_seconds",
            &[("stage", "wire_to_wire"), ("quantile", "0.5")],
        )
        .expect("p50");
        assert!((p50 - 2e-6).abs() < 0.05e-6, "{p50}");
        assert_eq!(
            find(&samples, "rfq_router_engine_rfqs_received_total", &[]),
            Some(3.0)
        );
        assert_eq!(
            find(&samples, "rfq_router_admin_requests_total", &[]),
            Some(5.0)
        );
        assert_eq!(
            find(&samples, "rfq_router_journal_backlog_records", &[]),
            Some(3.0)
        );
        let table = stats_table(&samples);
        assert!(table.contains("wire_to_wire"), "{table}");
        assert!(
            table.contains("rfq_router_engine_rfqs_received_total"),
            "{table}"
        );
    }

    #[test]
    fn the_parser_refuses_what_scrapers_refuse() {
        let bad = [
            ("9bad 1\n", "bad metric name"),
            ("a{b=\"c} 1\n", "unterminated"),
            ("a{b=c} 1\n", "not quoted"),
            ("a{b=\"\\q\"} 1\n", "bad escape"),
            ("a one\n", "bad value"),
            ("a\n", "no value"),
            ("# TYPE a counter\n# TYPE a counter\n", "second TYPE"),
            ("# TYPE a bogus\n", "unknown type"),
            ("a 1\n# TYPE a counter\n", "after its samples"),
            ("a 1\nb 1\na{x=\"1\"} 2\n", "not together"),
            ("a 1\na 2\n", "same series"),
            ("# TYPE s summary\ns 1\n", "needs a quantile"),
            ("# TYPE h histogram\nh_bucket 1\n", "le label"),
            ("# TYPE c counter\nc -1\n", "negative"),
            ("a 1 notatime\n", "bad timestamp"),
        ];
        for (text, why) in bad {
            let e = parse(text).expect_err(text);
            assert!(e.reason.contains(why), "{text:?}: {e}");
        }
        let good = "# HELP a x\n# TYPE a summary\na{quantile=\"0.5\"} 1.5e-6\na_sum 3\n\
                    a_count 2\n# comment\nb{l=\"q\\\"\\n\\\\\",} +Inf 1700000000\n";
        let s = parse(good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.len(), 4);
        assert_eq!(s[3].label("l"), Some("q\"\n\\"));
    }
}
