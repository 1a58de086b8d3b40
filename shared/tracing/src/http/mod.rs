//! HTTP tracing: the axum server layer and the traced reqwest client.

mod client;
mod server;

pub use client::{
    ClientBuildError, ClientTrace, HttpClientBuilder, NoPropagation, classify, client,
    client_builder,
};
pub use server::{ResponseFuture, ServerTrace, ServerTraceLayer, TRACERESPONSE, server_layer};
