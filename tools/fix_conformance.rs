//! fix-conformance.
fn main() {}
