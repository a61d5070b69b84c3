//! Pinning the calling thread to one CPU, and saying what came of it.
//!
//! This file owns the one call into `core_affinity` (which wraps sched_getaffinity /
//! sched_setaffinity): [`pin_current_thread`] pins, or leaves the thread unpinned when the CPU
//! asked for is not one this process may run on, and returns a [`Pinning`] that says which.
//! It must not print or log: a caller that wants the router to "say so once" prints
//! [`Pinning::warning`] itself (the binary does; the library prints nothing). It also owns
//! [`StoppableThread`], the handle of a thread that runs until a stop flag is set.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A thread that runs until its stop flag is set. `stop` (or dropping the handle) sets the
/// flag, wakes the thread if it is parked, and waits for it to finish.
#[derive(Debug)]
pub struct StoppableThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StoppableThread {
    /// `thread` must look at `stop` (Acquire) often enough to end soon after it is set.
    pub fn new(stop: Arc<AtomicBool>, thread: JoinHandle<()>) -> StoppableThread {
        StoppableThread {
            stop,
            thread: Some(thread),
        }
    }

    /// Sets the stop flag, wakes the thread and waits for it (again: nothing).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for StoppableThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What became of a thread's CPU request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// No CPU was configured: the thread runs where the scheduler puts it.
    NotAsked,
    /// The thread is pinned to `cpu`.
    Pinned { cpu: usize },
    /// The system refused `cpu`, which is not among the `available` CPUs of the calling
    /// thread's mask (fewer cores than asked, or outside the process's cpuset): the thread
    /// runs unpinned.
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

/// The CPUs the calling thread may run on (its affinity mask, inherited from the thread that
/// spawned it), ascending; empty if unknown.
pub fn available_cpus() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// CPU numbers at or past this are refused without asking the system (the kernel's
/// `cpu_set_t` holds this many).
const MAX_CPU_ID: usize = 1024;

/// Pins the calling thread to `cpu` when the system lets it; otherwise leaves the thread as
/// it is. A thread inherits its spawner's mask, so a CPU outside the calling thread's mask is
/// still tried (the process may use it); only a refusal makes it unavailable. Never panics,
/// never prints.
pub fn pin_current_thread(cpu: Option<usize>) -> Pinning {
    let Some(cpu) = cpu else {
        return Pinning::NotAsked;
    };
    let available = available_cpus();
    if cpu < MAX_CPU_ID && core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        return Pinning::Pinned { cpu };
    }
    if available.contains(&cpu) {
        Pinning::Refused { cpu }
    } else {
        Pinning::Unavailable {
            cpu,
            available: available.len(),
        }
    }
}

fn describe_cpus(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        return "unknown".to_string();
    }
    let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
    format!("CPU {}", list.join(", "))
}

/// Most threads [`started_threads`] remembers.
const MAX_RECORDED_THREADS: usize = 64;

static STARTED: std::sync::Mutex<Vec<(String, Pinning)>> = std::sync::Mutex::new(Vec::new());

/// How each thread started through [`spawn_pinned`] was placed, in start order (the first
/// 64), for the binary to print at start.
pub fn started_threads() -> Vec<(String, Pinning)> {
    match STARTED.lock() {
        Ok(v) => v.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// Spawns a named thread that pins itself to `cpu` (when given and allowed) before running
/// `body`. Every router thread (journal, scoring, admin) starts through here, so each has a
/// name in `top -H` and a CPU from `[router]`. A refused pin is reported once on stderr, and
/// the thread runs unpinned. Returns once the thread has pinned itself, so the outcome is
/// already in [`started_threads`].
pub fn spawn_pinned<T, F>(
    name: &str,
    cpu: Option<usize>,
    body: F,
) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce(Pinning) -> T + Send + 'static,
    T: Send + 'static,
{
    let thread_name = name.to_string();
    let (pinned_tx, pinned_rx) = std::sync::mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || {
            let pinning = pin_current_thread(cpu);
            if let Some(w) = pinning.warning(&thread_name) {
                eprintln!("{w}");
            }
            {
                let mut started = match STARTED.lock() {
                    Ok(v) => v,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if started.len() < MAX_RECORDED_THREADS {
                    started.push((thread_name, pinning));
                }
            }
            // The spawner waits for this; if it is gone, nobody needs the news.
            let _ = pinned_tx.send(());
            body(pinning)
        })?;
    // An error means the thread ended before pinning (it cannot: pinning never panics).
    let _ = pinned_rx.recv();
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread parked with no timeout ends only if `stop` both sets the flag and wakes it;
    /// dropping the handle does the same.
    #[test]
    fn a_stoppable_thread_parked_without_timeout_is_woken_and_joined() {
        for by_drop in [false, true] {
            let stop = Arc::new(AtomicBool::new(false));
            let ended = Arc::new(AtomicBool::new(false));
            let (s, e) = (stop.clone(), ended.clone());
            let thread = std::thread::spawn(move || {
                while !s.load(Ordering::Acquire) {
                    std::thread::park();
                }
                e.store(true, Ordering::Release);
            });
            let mut t = StoppableThread::new(stop.clone(), thread);
            if by_drop {
                drop(t);
            } else {
                t.stop();
                t.stop();
            }
            assert!(stop.load(Ordering::Acquire), "the flag is set");
            // Joined: the thread's last store happened before `stop` (or the drop) returned.
            assert!(ended.load(Ordering::Acquire), "the thread ended");
        }
    }
}
