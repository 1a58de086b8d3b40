//! Wire types for the chat flow.
