//! Wire types for the browse flow.
