//! rfq-router: a single-process, thread-pinned RFQ router for fixed-income desks.
//!
//! The library owns every piece the binaries run: the FIX 4.4 layer (`fix`), the network loop
//! (`net`), the host that binds connections to FIX sessions (`host`), the RFQ engine (`rfq`),
//! dealer selection (`select`), configuration (`config`) and time as plain numbers (`time`).
//! The deterministic core (the `fix` session state machine, `rfq` and `select`) never reads the
//! clock and does no I/O; only `net`, `host`'s thread helper and the binaries do. See
//! ARCHITECTURE.md for the map.

pub mod config;
pub mod dealers;
pub mod fix;
pub mod host;
pub mod net;
pub mod pipeline;
pub mod rfq;
pub mod router;
pub mod select;
pub mod time;
