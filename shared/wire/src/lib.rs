//! Wire types shared by AutoBot's services. A service never imports another
//! service; what two of them exchange is defined here, one module per flow.

pub mod browse;
pub mod chat;
pub mod error;
pub mod jobs;
pub mod pki;
