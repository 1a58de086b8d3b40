//! HTTP tracing: the axum server layer and the traced reqwest client.

mod client;
mod server;

pub use client::{
    ClientTrace, HttpClientBuilder, NoPropagation, classify, client, client_builder,
    mutual_tls_client,
};
pub use server::{
    ResponseFuture, ServerTrace, ServerTraceLayer, TRACERESPONSE, record_enduser_id, server_layer,
};
