//! HTTP tracing: the axum server layer and the traced reqwest client.

mod caller;
mod client;
mod red;
mod route_names;
mod server;

pub use caller::{CallerContext, CallerContextLayer, TrustedNetworks, caller_context_layer};
pub use client::{
    ClientBuildError, ClientTrace, HttpClientBuilder, NoPropagation, classify, client,
    client_builder, mutual_tls_client,
};
pub use red::CANCELLED;
pub(crate) use red::exemplar;
pub use server::{
    ResponseFuture, ServerTrace, ServerTraceLayer, TRACERESPONSE, record_enduser_id, server_layer,
};
