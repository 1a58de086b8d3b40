//! What the ai-stack's tests start: the trace tool, the LLM stand-in, and
//! the real `autobot-ai-stack` process exporting its spans to the tool.

pub mod process;
pub mod traces;

/// The LLM stand-in lives in tools/standins (the local run uses it too).
pub use autobot_standins::llm as standin;

use std::path::Path;

pub use process::{Service, closed_port};
pub use standin::{Mode, StandIn};
pub use traces::{CLIENT, Receiver, SERVER, STATUS_ERROR, Span, one};

pub const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const CALLER_SPAN: &str = "00f067aa0ba902b7";

pub fn caller_traceparent() -> String {
    format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")
}

pub struct Stack {
    pub receiver: Receiver,
    pub llm: StandIn,
    pub ai: Service,
}

impl Stack {
    /// Receiver, stand-in in `mode`, ai-stack with `extra` environment.
    pub async fn start(mode: Mode, extra: &[(&str, String)]) -> Self {
        let receiver = Receiver::start().await;
        let llm = StandIn::start(mode).await;
        let mut env = vec![
            ("AUTOBOT_JAEGER_ENDPOINT", receiver.endpoint()),
            ("AUTOBOT_OLLAMA_URL", llm.ollama_url()),
            ("AUTOBOT_OPENAI_BASE_URL", llm.openai_url()),
            ("AUTOBOT_LLM_MODEL", "llama-test".to_owned()),
        ];
        env.extend(extra.iter().cloned());
        let ai = Service::start(Path::new(env!("CARGO_BIN_EXE_autobot-ai-stack")), &env);
        Self { receiver, llm, ai }
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
