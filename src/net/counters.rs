//! Counters of what the network loop did, readable from any thread.
//!
//! The loop thread is the only writer; each bump is a relaxed load and store (no locked
//! instruction on the hot path). Readers take a [`Counters`] snapshot, which is a plain copy
//! and may be a few events stale. This module counts; it never decides anything.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A snapshot of the loop's counters.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Counters {
            $($(#[$doc])* pub $name: u64,)*
        }

        /// The live counters, shared between the loop (single writer) and readers.
        #[derive(Debug, Default)]
        pub struct SharedCounters {
            $($name: AtomicU64,)*
        }

        impl SharedCounters {
            /// A copy of every counter.
            pub fn snapshot(&self) -> Counters {
                Counters {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }

        /// Which counter to bump.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(non_camel_case_types)]
        pub(crate) enum Counter {
            $($name,)*
        }

        impl SharedCounters {
            /// Adds `n` to one counter. Only the loop thread calls this.
            pub(crate) fn add(&self, counter: Counter, n: u64) {
                let cell = match counter {
                    $(Counter::$name => &self.$name,)*
                };
                cell.store(cell.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            }
        }
    };
}

counters! {
    /// Inbound connections accepted and handed to the handler.
    accepted,
    /// Inbound connections accepted and closed at once because `max_connections` was reached.
    rejected_over_limit,
    /// `accept` calls that failed (for example, out of file descriptors).
    accept_errors,
    /// Outbound connection attempts started.
    connects_started,
    /// Outbound connections established and handed to the handler.
    connected,
    /// Outbound attempts that failed (refused, timed out, over the connection limit).
    connect_failed,
    /// Connections handed to the handler that have ended, for any reason.
    closed,
    /// ... of which the peer closed (EOF).
    closed_by_peer,
    /// ... of which the handler closed.
    closed_local,
    /// ... of which overflowed their write queue (a slow or stuck peer).
    closed_slow_consumer,
    /// ... of which filled their read buffer while the handler consumed nothing.
    read_overflow,
    /// ... of which failed with a socket error.
    closed_io_error,
    /// ... of which were open when the loop shut down.
    closed_shutdown,
    /// Graceful closes that did not finish flushing / draining within `close_linger_ms`.
    linger_expired,
    /// Bytes read from sockets.
    bytes_in,
    /// Bytes written to sockets.
    bytes_out,
    /// Wake-ups through the waker.
    wakeups,
    /// Loop cycles (one poll each).
    cycles,
}
