//! The OTLP receiver the exporters talk to: autobot-otlp-receiver in this
//! test process (real OTLP over HTTP and gRPC). The distributor and every
//! agent export to its HTTP endpoint.

use std::sync::Arc;
use std::time::Duration;

pub use autobot_otlp_receiver::FlatSpan as Span;
use autobot_otlp_receiver::{MemorySink, RunningReceiver};

pub struct Receiver {
    /// `http://127.0.0.1:PORT/v1/traces`: OTLP/HTTP protobuf.
    pub endpoint: String,
    sink: MemorySink,
    _running: RunningReceiver,
}

/// The `host.name` resource attribute of the process that sent `span`.
pub fn host(span: &Span) -> String {
    span.resource
        .get("host.name")
        .map(ToString::to_string)
        .unwrap_or_default()
}

impl Receiver {
    pub async fn start() -> Self {
        let sink = MemorySink::default();
        let loopback = "127.0.0.1:0".parse().unwrap();
        let running = autobot_otlp_receiver::start(Arc::new(sink.clone()), loopback, loopback)
            .await
            .unwrap();
        Self {
            endpoint: running.http_endpoint(),
            sink,
            _running: running,
        }
    }

    pub fn spans(&self) -> Vec<Span> {
        self.sink.spans()
    }

    /// Every span received, as text (attributes, events, status messages).
    pub fn dump(&self) -> String {
        format!("{:?}", self.spans())
    }

    /// Waits until `done` holds for the spans received, or `within` ends.
    pub async fn wait_for(&self, within: Duration, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        self.sink.wait_for(done, within).await
    }
}
