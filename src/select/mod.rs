//! Dealer selection: scores, the scoring model and segments (issue 4). The RFQ engine's
//! `Panel` interface, the rules engine and pre-trade analytics join this module from their
//! own branches. Selection is part of the deterministic core: no clock reads, no I/O on the
//! selection path, no allocation while selecting.

pub mod model;
pub mod segment;
pub mod table;
