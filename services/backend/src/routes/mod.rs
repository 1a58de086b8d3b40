//! One module per flow; each adds its routes to the router in [`crate::app`].

pub mod browse;
pub mod chat;
pub mod embeddings;
pub mod health;
pub mod page;
pub mod pki;
pub mod research;
