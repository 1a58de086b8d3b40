//! autobot-backend integration tests: the real backend and ai-stack
//! processes, a stand-in LLM server, spans exported over OTLP to the trace
//! tool in its own process. One binary; nextest runs each test alone.

mod support;

mod auth;
mod chat;
mod errors;
mod forwards;
mod health;
mod page;
mod validation;
