//! Tests: one or more per case of the FIX Session Layer Test Cases v1.0.
