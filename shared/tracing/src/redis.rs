//! Tracing across Redis: CLIENT spans around commands, and the trace context
//! carried in a job envelope's `trace` map from the PRODUCER span to the
//! CONSUMER span, so one trace crosses the queue.

use std::collections::BTreeMap;

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use redis::{Cmd, FromRedisValue, RedisError, RedisResult};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::errors::record_error_message;
use crate::propagation::{extract_from_map, inject_current_into_map};

/// Where a Redis connection goes; used for `server.*` and `db.namespace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisTarget {
    pub address: String,
    pub port: u16,
    pub db: i64,
}

impl RedisTarget {
    /// From a `redis://[user:pass@]host[:port][/db]` URL; the credentials are not kept.
    pub fn from_url(url: &str) -> Option<Self> {
        let u = url::Url::parse(url).ok()?;
        let db = u.path().trim_start_matches('/').parse::<i64>().unwrap_or(0);
        Some(Self {
            address: u.host_str()?.trim_matches(['[', ']']).to_owned(),
            port: u.port().unwrap_or(6379),
            db,
        })
    }
}

/// Injects the current context (call it inside the PRODUCER span) into an envelope's `trace` map.
pub fn inject_context(trace: &mut BTreeMap<String, String>) {
    inject_current_into_map(trace);
}

/// The producer's context from an envelope's `trace` map (empty when absent or malformed).
pub fn extract_context(trace: &BTreeMap<String, String>) -> Context {
    extract_from_map(trace)
}

/// PRODUCER span `send {destination}`; record `messaging.message.id` once XADD answered.
pub fn producer_span(destination: &str) -> tracing::Span {
    tracing::info_span!(
        target: "autobot_tracing::messaging",
        "send",
        otel.name = %format_args!("send {destination}"),
        otel.kind = "producer",
        messaging.system = "redis",
        messaging.operation.name = "send",
        messaging.operation.type = "send",
        messaging.destination.name = destination,
        messaging.message.id = Empty,
    )
}

/// CONSUMER span `process {destination}`: its parent is the producer's span
/// from the envelope, and it links to it (the semantic conventions' way).
/// A redelivered job keeps the producer as parent; `delivery_count` says
/// which attempt this is.
pub fn consumer_span(
    destination: &str,
    group: &str,
    message_id: &str,
    trace: &BTreeMap<String, String>,
    delivery_count: u64,
) -> tracing::Span {
    let span = tracing::info_span!(
        target: "autobot_tracing::messaging",
        "process",
        otel.name = %format_args!("process {destination}"),
        otel.kind = "consumer",
        messaging.system = "redis",
        messaging.operation.name = "process",
        messaging.operation.type = "process",
        messaging.destination.name = destination,
        messaging.consumer.group.name = group,
        messaging.message.id = message_id,
        messaging.redis.message.delivery_count = delivery_count as i64,
        error.type = Empty,
    );
    let parent = extract_context(trace);
    let producer = parent.span().span_context().clone();
    if producer.is_valid() {
        let _ = span.set_parent(parent);
        span.add_link(producer);
    }
    span
}

/// Runs `cmd` inside a CLIENT span `redis.{COMMAND}`. Outside a trace (a
/// worker's idle polling, say) no span is made: a Redis command alone is
/// not worth a trace of its own.
pub async fn query<T, C>(con: &mut C, target: &RedisTarget, cmd: &Cmd) -> RedisResult<T>
where
    T: FromRedisValue,
    C: redis::aio::ConnectionLike + Send,
{
    if !Context::current().span().span_context().is_valid() {
        return cmd.query_async(con).await;
    }
    let span = command_span(target, &command_name(cmd));
    let result = cmd.query_async(con).instrument(span.clone()).await;
    if let Err(e) = &result {
        record_redis_error(&span, e);
    }
    result
}

/// CLIENT span `redis.{COMMAND}` for a command run some other way (a pipeline, a helper).
pub fn command_span(target: &RedisTarget, command: &str) -> tracing::Span {
    tracing::info_span!(
        target: "autobot_tracing::redis",
        "redis",
        otel.name = %format_args!("redis.{command}"),
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = command,
        db.namespace = %target.db,
        server.address = target.address.as_str(),
        server.port = i64::from(target.port),
        db.response.status_code = Empty,
        error.type = Empty,
    )
}

/// Marks a Redis command span failed with the server's error code (`WRONGTYPE`, `BUSYGROUP`…).
pub fn record_redis_error(span: &tracing::Span, error: &RedisError) {
    let error_type = match error.code() {
        Some(code) => {
            span.record("db.response.status_code", code);
            code.to_owned()
        }
        None if error.is_timeout() => "timeout".to_owned(),
        None if error.is_connection_refusal() => "connection_refused".to_owned(),
        None if error.is_io_error() || error.is_connection_dropped() => "io_error".to_owned(),
        None => "redis_error".to_owned(),
    };
    record_error_message(span, &error_type, &error.to_string());
}

fn command_name(cmd: &Cmd) -> String {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => String::from_utf8_lossy(name).to_ascii_uppercase(),
        _ => "COMMAND".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_from_url_drops_credentials() {
        let t = RedisTarget::from_url("redis://user:secret@10.0.0.3:6380/2").unwrap();
        assert_eq!(
            t,
            RedisTarget {
                address: "10.0.0.3".into(),
                port: 6380,
                db: 2
            }
        );
        let t = RedisTarget::from_url("redis://localhost").unwrap();
        assert_eq!((t.port, t.db), (6379, 0));
        assert!(RedisTarget::from_url("not a url").is_none());
    }

    #[test]
    fn command_names_are_upper_case() {
        assert_eq!(command_name(redis::cmd("xadd").arg("s").arg("*")), "XADD");
    }
}
