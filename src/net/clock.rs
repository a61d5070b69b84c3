//! Where the network loop gets the time: the one place that reads the wall clock.
//!
//! The loop calls [`Clock::now`] once per cycle and passes the result on; nothing downstream
//! reads the clock. Tests and simulations can supply their own `Clock`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::time::Nanos;

/// A source of the current instant.
pub trait Clock {
    /// The current instant; called once per loop cycle.
    fn now(&mut self) -> Nanos;
}

/// The system's wall clock (UTC, nanoseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&mut self) -> Nanos {
        // A clock set before 1970 reads as the epoch rather than failing.
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Nanos(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
    }
}
