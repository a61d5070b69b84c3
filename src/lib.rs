//! rfq-router: a single-process, thread-pinned RFQ router for fixed-income desks.
//!
//! The library owns every piece the binaries run: the FIX 4.4 layer (`fix`), the network loop
//! (`net`), the host that binds connections to FIX sessions (`host`), the RFQ engine (`rfq`),
//! dealer selection (`select`), the append-only journal (`journal`), configuration (`config`,
//! `dealers`), time as plain numbers (`time`), stage latencies and the Prometheus format
//! (`metrics`), the admin HTTP thread (`admin`), and the acceptance-script runner behind
//! `fix-conformance` (`conformance`, test tooling). The deterministic core (the `fix` session
//! state machine, `rfq` and `select`) never reads the clock and does no I/O; only `net`, the
//! journal's writer, `host`'s thread helper, the router's stage stamps (`metrics`), the
//! admin thread and the binaries do. See ARCHITECTURE.md for the map.

pub mod admin;
pub mod config;
pub mod conformance;
pub mod dealers;
pub mod fix;
pub mod host;
pub mod inbox;
pub mod journal;
pub mod metrics;
pub mod mid_replay;
pub mod net;
pub mod pinning;
pub mod pipeline;
pub mod rfq;
pub mod router;
pub mod scoring;
pub mod select;
pub mod sim;
pub mod time;
