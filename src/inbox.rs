//! Bounded queues from other threads (scoring, rules watcher, admin) into the engine thread.
//!
//! Owns the one way another thread talks to the engine's event loop (house rule 1): a bounded
//! crossbeam channel paired with the loop's waker. `InboxSender::send` never blocks and never
//! grows anything: a full queue is refused with [`InboxFull`] and counted, and the sender
//! decides what to do (retry later, answer "busy"). The receiving side is drained by the
//! engine thread in `HostApp::on_wake`. This module does no other I/O and holds no RFQ state.

use crate::net::LoopHandle;
use crossbeam::channel::{bounded, Receiver, Sender, TryRecvError, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
