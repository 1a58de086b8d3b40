//! Wire types for the jobs flow.
