//! Shared data builders for the criterion benches.
