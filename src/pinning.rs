//! Pinning the calling thread to one CPU, and saying what came of it.
//!
//! This file owns the one call into `core_affinity` (which wraps sched_getaffinity /
//! sched_setaffinity): [`pin_current_thread`] pins, or leaves the thread unpinned when the CPU
//! asked for is not one this process may run on, and returns a [`Pinning`] that says which.
//! It must not print or log: a caller that wants the router to "say so once" prints
//! [`Pinning::warning`] itself (the binary does; the library prints nothing).

use std::fmt;

/// What became of a thread's CPU request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// No CPU was configured: the thread runs where the scheduler puts it.
    NotAsked,
    /// The thread is pinned to `cpu`.
    Pinned { cpu: usize },
    /// `cpu` is not among the `available` CPUs this process may use: the thread runs unpinned.
    Unavailable { cpu: usize, available: usize },
    /// The operating system refused the affinity change: the thread runs unpinned.
    Refused { cpu: usize },
}

impl Pinning {
    /// True when the thread is pinned.
    pub fn is_pinned(self) -> bool {
        matches!(self, Pinning::Pinned { .. })
    }

    /// A one-line warning when a configured CPU could not be used (`None` otherwise).
    pub fn warning(self, thread: &str) -> Option<String> {
        match self {
            Pinning::NotAsked | Pinning::Pinned { .. } => None,
            Pinning::Unavailable { cpu, available } => Some(format!(
                "warning: thread {thread:?} asked for CPU {cpu}, but this process may use only \
                 {available} CPU(s) ({}); running unpinned",
                describe_cpus(&available_cpus())
            )),
            Pinning::Refused { cpu } => Some(format!(
                "warning: thread {thread:?} could not be pinned to CPU {cpu} (the system refused); \
                 running unpinned"
            )),
        }
    }
}

impl fmt::Display for Pinning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pinning::NotAsked => f.write_str("unpinned (no CPU configured)"),
            Pinning::Pinned { cpu } => write!(f, "pinned to CPU {cpu}"),
            Pinning::Unavailable { cpu, .. } => {
                write!(f, "unpinned (CPU {cpu} not available)")
            }
            Pinning::Refused { cpu } => write!(f, "unpinned (pinning to CPU {cpu} refused)"),
        }
    }
}

/// The CPUs this process may run on (its affinity mask), ascending; empty if unknown.
pub fn available_cpus() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// Pins the calling thread to `cpu` when it is one this process may use; otherwise leaves
/// the thread as it is. Never panics, never prints.
pub fn pin_current_thread(cpu: Option<usize>) -> Pinning {
    let Some(cpu) = cpu else {
        return Pinning::NotAsked;
    };
    let available = available_cpus();
    if !available.contains(&cpu) {
        return Pinning::Unavailable {
            cpu,
            available: available.len(),
        };
    }
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        Pinning::Pinned { cpu }
    } else {
        Pinning::Refused { cpu }
    }
}

fn describe_cpus(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        return "unknown".to_string();
    }
    let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
    format!("CPU {}", list.join(", "))
}
