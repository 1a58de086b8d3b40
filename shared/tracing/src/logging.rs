//! Log lines that carry the trace: every line written inside a traced request
//! ends with `trace_id=… span_id=…` (text) or has `"trace_id"`/`"span_id"`
//! fields (JSON), so a log line leads to its trace in Jaeger and back.

use std::fmt;

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Wraps a formatter and appends the current trace and span ids.
pub(crate) struct WithTraceIds<F> {
    pub(crate) inner: F,
    pub(crate) format: LogFormat,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let cx = Context::current();
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        match self.format {
            LogFormat::Text => writeln!(
                writer,
                "{body} trace_id={} span_id={}",
                sc.trace_id(),
                sc.span_id()
            ),
            LogFormat::Json => match body.strip_suffix('}') {
                Some(open) => writeln!(
                    writer,
                    "{open},\"trace_id\":\"{}\",\"span_id\":\"{}\"}}",
                    sc.trace_id(),
                    sc.span_id()
                ),
                None => writeln!(writer, "{body}"),
            },
        }
    }
}
