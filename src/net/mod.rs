//! The network edge: one mio `Poll` loop, owned by one thread, that owns every socket.
//!
//! `net` owns listeners, accepted and outbound TCP connections (with reconnect and back-off),
//! their bounded read buffers and write queues, the waker other threads use, and the clock: it
//! reads the time once per loop cycle and hands it to the [`Handler`]. It knows nothing about
//! FIX: the handler decides what bytes mean and what to send, through the [`Net`] handle. It
//! must not block, must not grow any buffer past its limit, and must not let one connection
//! starve the others (reads and accepts are bounded per readiness event).

mod buffer;
mod clock;
mod counters;
mod event_loop;

pub use clock::{Clock, SystemClock};
pub use counters::{Counters, SharedCounters};
pub use event_loop::{
    CloseReason, ConnId, DialerId, EventLoop, Handler, ListenerId, LoopHandle, Net, NetError,
    NetSettings, Reconnect, SendError,
};

pub use crate::config::{ConnectionLimits, IdleStrategy};
