//! autobot-ai-stack integration tests: the real binary, a stand-in LLM server
//! speaking Ollama's and OpenAI's wire formats, spans exported over OTLP to
//! the trace tool in its own process. One binary; nextest runs each test alone.

mod support;

mod chat;
mod errors;
mod secrets;
