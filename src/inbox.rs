//! Bounded queues from other threads (scoring, rules watcher, admin) into the engine thread.
//!
//! Owns the one way another thread talks to the engine's event loop (house rule 1): a bounded
//! crossbeam channel paired with the loop's waker. `InboxSender::send` never blocks and never
//! grows anything: a full queue is refused with [`InboxFull`] and counted, and the sender
//! decides what to do (retry later, answer "busy"); `InboxSender::send_waiting` is the
//! back-pressure form for a producer that may wait (a file replay), keeping a reserve free.
//! The receiving side is drained by the engine thread in `HostApp::on_wake`. This module
//! does no other I/O and holds no RFQ state.

use crate::net::LoopHandle;
use crossbeam::channel::{bounded, Receiver, SendTimeoutError, Sender, TryRecvError, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The queue was full (or the engine thread has gone): the item is handed back.
#[derive(Debug, PartialEq, Eq)]
pub struct InboxFull<T>(pub T);

/// The sending half, cloneable, for any thread.
pub struct InboxSender<T> {
    tx: Sender<T>,
    wake: Option<LoopHandle>,
    refused: Arc<AtomicU64>,
}

impl<T> Clone for InboxSender<T> {
    fn clone(&self) -> Self {
        InboxSender {
            tx: self.tx.clone(),
            wake: self.wake.clone(),
            refused: self.refused.clone(),
        }
    }
}

/// The receiving half, owned by the engine thread.
pub struct Inbox<T> {
    rx: Receiver<T>,
    refused: Arc<AtomicU64>,
}

/// A queue of at most `capacity` items. `wake`, when given, is woken after every send so the
/// loop drains promptly; without it (tests, a spinning loop) the receiver polls.
pub fn inbox<T>(capacity: usize, wake: Option<LoopHandle>) -> (InboxSender<T>, Inbox<T>) {
    assert!(capacity > 0, "an inbox needs room for at least one item");
    let (tx, rx) = bounded(capacity);
    let refused = Arc::new(AtomicU64::new(0));
    (
        InboxSender {
            tx,
            wake,
            refused: refused.clone(),
        },
        Inbox { rx, refused },
    )
}

impl<T> InboxSender<T> {
    /// Queues `item` without blocking, then wakes the loop.
    pub fn send(&self, item: T) -> Result<(), InboxFull<T>> {
        match self.tx.try_send(item) {
            Ok(()) => {
                if let Some(w) = &self.wake {
                    // A failed wake is not fatal: the loop drains at its next cycle anyway.
                    let _ = w.wake();
                }
                Ok(())
            }
            Err(TrySendError::Full(item)) | Err(TrySendError::Disconnected(item)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(InboxFull(item))
            }
        }
    }

    /// Whether `send_waiting(.., reserve, ..)` would queue at once.
    pub fn has_room(&self, reserve: usize) -> bool {
        self.tx.len() < self.waiting_limit(reserve)
    }

    fn waiting_limit(&self, reserve: usize) -> usize {
        self.tx
            .capacity()
            .unwrap_or(usize::MAX)
            .saturating_sub(reserve)
            .max(1)
    }

    /// Queues `item`, waiting while the queue holds `capacity - reserve` items or more:
    /// back-pressure for a producer that may wait (a market-data file replay; never the
    /// engine thread), leaving `reserve` places to senders that must not wait. While it
    /// waits it checks `give_up` every `poll` and hands the item back when it says so (or
    /// when the engine thread has gone). `Ok(true)`: it had to wait. Not counted as refused.
    pub fn send_waiting(
        &self,
        item: T,
        reserve: usize,
        poll: Duration,
        give_up: impl Fn() -> bool,
    ) -> Result<bool, InboxFull<T>> {
        let limit = self.waiting_limit(reserve);
        let mut waited = false;
        while self.tx.len() >= limit {
            if give_up() {
                return Err(InboxFull(item));
            }
            waited = true;
            // The engine thread drains on its wake; the queue is full, so it has been woken.
            std::thread::park_timeout(poll);
        }
        let mut item = item;
        loop {
            match self.tx.send_timeout(item, poll) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(back)) => {
                    waited = true;
                    if give_up() {
                        return Err(InboxFull(back));
                    }
                    item = back;
                }
                Err(SendTimeoutError::Disconnected(back)) => return Err(InboxFull(back)),
            }
        }
        if let Some(w) = &self.wake {
            let _ = w.wake();
        }
        Ok(waited)
    }

    /// Sets the waker once the loop exists (the sender may be made before the loop).
    pub fn set_wake(&mut self, wake: LoopHandle) {
        self.wake = Some(wake);
    }
}

impl<T> Inbox<T> {
    /// The next queued item, if any.
    pub fn try_recv(&self) -> Option<T> {
        match self.rx.try_recv() {
            Ok(v) => Some(v),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }

    /// Items refused because the queue was full, since the start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_sender_keeps_the_reserve_and_gives_up_when_told() {
        let (tx, rx) = inbox::<u32>(4, None);
        let poll = Duration::from_millis(1);
        assert_eq!(tx.send_waiting(1, 2, poll, || false), Ok(false));
        assert_eq!(tx.send_waiting(2, 2, poll, || false), Ok(false));
        // Two places are kept for senders that must not wait: this one gives up.
        assert_eq!(tx.send_waiting(3, 2, poll, || true), Err(InboxFull(3)));
        assert_eq!(tx.send(3), Ok(()));
        assert_eq!(rx.refused(), 0);
        // Once the engine side drains, the waiting sender gets through.
        let waiter = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send_waiting(4, 2, poll, || false))
        };
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.try_recv(), Some(2));
        assert!(waiter.join().expect("waiter").is_ok());
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), Some(4));
    }

    #[test]
    fn a_full_inbox_refuses_and_counts() {
        let (tx, rx) = inbox::<u32>(2, None);
        assert_eq!(tx.send(1), Ok(()));
        assert_eq!(tx.send(2), Ok(()));
        assert_eq!(tx.send(3), Err(InboxFull(3)));
        assert_eq!(rx.refused(), 1);
        assert_eq!(rx.len(), 2);
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), None);
        assert_eq!(tx.send(4), Ok(()));
        assert_eq!(rx.try_recv(), Some(4));
    }
}
