//! Wire types for the pki flow.
