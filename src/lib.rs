//! rfq-router: a single-process, thread-pinned RFQ router for fixed-income desks.
//!
//! The library owns every piece the binaries run: the FIX 4.4 layer (`fix`), the network loop
//! (`net`), configuration (`config`) and time as plain numbers (`time`). The deterministic core
//! (`fix` session state machine, and later `rfq` and `select`) never reads the clock and does
//! no I/O; only `net` and the binaries do. See ARCHITECTURE.md for the map.

pub mod fix;
pub mod select;
pub mod time;
