//! codec bench.
fn main() {}
