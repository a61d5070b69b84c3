//! The RFQ engine (issue 3): the deterministic core that owns all RFQ state.
//!
//! Owns open RFQs, quotes and timers in pre-sized storage; it is driven by `now` and events
//! and answers with commands. It never reads the clock, never does I/O, and does not allocate
//! in steady state. Building blocks: a generation-checked slab (entries written in place), a
//! hashed timer wheel, the bounded outbox, and `Recent`, a bounded memory of timed-out hits.

pub mod engine;
pub mod outbox;
pub mod recent;
pub mod slab;
pub mod timer;
pub mod types;
