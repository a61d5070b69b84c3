//! rfq-router binary.
fn main() {}
