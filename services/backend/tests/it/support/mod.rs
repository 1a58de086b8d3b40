//! What the backend's tests start: the trace tool, the LLM stand-in, the
//! real `autobot-ai-stack` and `autobot-backend` processes, and a small
//! recording server standing in for the browser and pki-distributor APIs.

pub mod peers;

/// The LLM stand-in lives in tools/standins (the local run uses it too).
pub use autobot_standins::llm as standin;

pub use autobot_testkit::ports::free_addr;
pub use autobot_testkit::process::{Launch, Process};
pub use autobot_testkit::trace_tool::TraceTool;
pub use autobot_testkit::traces::{
    CALLER_SPAN, CALLER_TRACE, Kind, Span, Status, caller_traceparent, one, traceresponse_trace_id,
};
pub use standin::{Mode, StandIn};

/// The backend's tests export over OTLP/gRPC (the ai-stack's over HTTP), so
/// both exporter transports are exercised.
pub fn start_ai_stack(receiver: &TraceTool, llm: &StandIn, extra: &[(&str, String)]) -> Process {
    let mut env = vec![
        ("AUTOBOT_JAEGER_ENDPOINT", receiver.otlp_grpc_endpoint()),
        ("AUTOBOT_OLLAMA_URL", llm.ollama_url()),
        ("AUTOBOT_OPENAI_BASE_URL", llm.openai_url()),
        ("AUTOBOT_LLM_MODEL", "llama-test".to_owned()),
        // The tests ask both providers, each for its default model.
        ("AUTOBOT_LLM_PROVIDERS", "ollama,openai".to_owned()),
        ("AUTOBOT_LLM_MODELS", "llama-test,gpt-4o-mini".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    Launch::workspace_bin("autobot-ai-stack").envs(env).start()
}

pub fn start_backend(receiver: &TraceTool, ai_stack: &str, extra: &[(&str, String)]) -> Process {
    let mut env = vec![
        ("AUTOBOT_JAEGER_ENDPOINT", receiver.otlp_grpc_endpoint()),
        ("AUTOBOT_AI_STACK_URL", ai_stack.to_owned()),
        // These tests are about traces and answers; tests/it/auth.rs runs
        // the backend with operator keys. A test's own value wins.
        ("AUTOBOT_AUTH", "off".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    Launch::program(env!("CARGO_BIN_EXE_autobot-backend"))
        .envs(env)
        .start()
}

/// Receiver, LLM stand-in, ai-stack and backend, wired together.
pub struct Stack {
    pub receiver: TraceTool,
    pub llm: StandIn,
    pub ai: Process,
    pub backend: Process,
}

impl Stack {
    pub async fn start(
        mode: Mode,
        ai_env: &[(&str, String)],
        backend_env: &[(&str, String)],
    ) -> Self {
        let receiver = TraceTool::start();
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
