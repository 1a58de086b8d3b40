//! What the ai-stack's tests start: the trace tool, the LLM stand-in, and
//! the real `autobot-ai-stack` process exporting its spans to the tool.

/// The LLM stand-in lives in tools/standins (the local run uses it too).
pub use autobot_standins::llm as standin;

pub use autobot_testkit::ports::free_addr;
pub use autobot_testkit::process::{Launch, Process};
pub use autobot_testkit::trace_tool::TraceTool;
pub use autobot_testkit::traces::{
    CALLER_SPAN, CALLER_TRACE, Kind, Span, Status, caller_traceparent, one, traceresponse_trace_id,
};
pub use standin::{Mode, StandIn};

pub struct Stack {
    pub receiver: TraceTool,
    pub llm: StandIn,
    pub ai: Process,
}

impl Stack {
    /// Receiver, stand-in in `mode`, ai-stack with `extra` environment.
    pub async fn start(mode: Mode, extra: &[(&str, String)]) -> Self {
        let receiver = TraceTool::start();
        let llm = StandIn::start(mode).await;
        let mut env = vec![
            ("AUTOBOT_JAEGER_ENDPOINT", receiver.otlp_http_endpoint()),
            ("AUTOBOT_OLLAMA_URL", llm.ollama_url()),
            ("AUTOBOT_OPENAI_BASE_URL", llm.openai_url()),
            ("AUTOBOT_LLM_MODEL", "llama-test".to_owned()),
            // The tests ask both providers for the models the stand-in knows.
            ("AUTOBOT_LLM_PROVIDERS", "ollama,openai".to_owned()),
            (
                "AUTOBOT_LLM_MODELS",
                "llama-test,gpt-test,gpt-4o-mini".to_owned(),
            ),
        ];
        env.extend(extra.iter().cloned());
        let ai = Launch::program(env!("CARGO_BIN_EXE_autobot-ai-stack"))
            .envs(env)
            .start();
        Self { receiver, llm, ai }
    }
}
