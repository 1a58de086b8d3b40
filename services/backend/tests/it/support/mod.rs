//! What the backend's tests start: the trace tool, the LLM stand-in, the
//! real `autobot-ai-stack` and `autobot-backend` processes, and a small
//! recording server standing in for the browser and pki-distributor APIs.
//! The trace reader, the LLM stand-in and the process helper are the
//! ai-stack's test support, shared by path.

pub mod peers;
#[allow(dead_code)] // shared with the ai-stack tests, which use all of it
#[path = "../../../../ai-stack/tests/it/support/process.rs"]
pub mod process;
#[allow(dead_code)] // shared with the ai-stack tests, which use all of it
/// The LLM stand-in lives in tools/standins (the local run uses it too).
pub use autobot_standins::llm as standin;
#[allow(dead_code)] // shared with the ai-stack tests, which use all of it
#[path = "../../../../ai-stack/tests/it/support/traces.rs"]
pub mod traces;

use std::path::Path;

pub use process::{Service, closed_port, workspace_bin};
pub use standin::{Mode, StandIn};
pub use traces::{CLIENT, INTERNAL, Receiver, SERVER, STATUS_ERROR, Span, one};

pub const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const CALLER_SPAN: &str = "00f067aa0ba902b7";

pub fn caller_traceparent() -> String {
    format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")
}

/// The backend's tests export over OTLP/gRPC (the ai-stack's over HTTP), so
/// both exporter transports are exercised.
pub fn start_ai_stack(receiver: &Receiver, llm: &StandIn, extra: &[(&str, String)]) -> Service {
    let mut env = vec![
        ("AUTOBOT_JAEGER_ENDPOINT", receiver.endpoint_grpc()),
        ("AUTOBOT_OLLAMA_URL", llm.ollama_url()),
        ("AUTOBOT_OPENAI_BASE_URL", llm.openai_url()),
        ("AUTOBOT_LLM_MODEL", "llama-test".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    Service::start(&workspace_bin("autobot-ai-stack"), &env)
}

pub fn start_backend(receiver: &Receiver, ai_stack: &str, extra: &[(&str, String)]) -> Service {
    let mut env = vec![
        ("AUTOBOT_JAEGER_ENDPOINT", receiver.endpoint_grpc()),
        ("AUTOBOT_AI_STACK_URL", ai_stack.to_owned()),
    ];
    env.extend(extra.iter().cloned());
    Service::start(Path::new(env!("CARGO_BIN_EXE_autobot-backend")), &env)
}

/// Receiver, LLM stand-in, ai-stack and backend, wired together.
pub struct Stack {
    pub receiver: Receiver,
    pub llm: StandIn,
    pub ai: Service,
    pub backend: Service,
}

impl Stack {
    pub async fn start(
        mode: Mode,
        ai_env: &[(&str, String)],
        backend_env: &[(&str, String)],
    ) -> Self {
        let receiver = Receiver::start().await;
        let llm = StandIn::start(mode).await;
        let ai = start_ai_stack(&receiver, &llm, ai_env);
        let backend = start_backend(&receiver, &ai.url(""), backend_env);
        Self {
            receiver,
            llm,
            ai,
            backend,
        }
    }

    pub fn stop(&mut self) {
        self.backend.stop();
        self.ai.stop();
    }
}

/// The trace id in a `traceresponse` header.
pub fn traceresponse_trace(r: &reqwest::Response) -> String {
    let v = r
        .headers()
        .get("traceresponse")
        .expect("a traceresponse header")
        .to_str()
        .unwrap();
    v.split('-').nth(1).unwrap().to_owned()
}
