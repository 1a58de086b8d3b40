//! Redis command spans against a real redis-server.

use autobot_testkit::redis::RedisServer;
use autobot_tracing::redis::{RedisTarget, query};
use opentelemetry::trace::{SpanKind, Status};

use crate::support::{attrs, find, in_memory, spans};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_inside_a_trace_get_client_spans_and_errors_their_code() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let server = RedisServer::start().expect("redis-server starts (run scripts/setup.sh)");
    let url = format!("redis://127.0.0.1:{}/3", server.port());
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let target = RedisTarget::from_url(&url).unwrap();

    // Outside any trace: no span (a worker's idle polling is not a trace).
    let _: () = query(&mut con, &target, redis::cmd("SET").arg("k").arg("v"))
        .await
        .unwrap();
    assert!(spans(&exporter).is_empty());

    let request = tracing::info_span!("handle request");
    {
        let _in = request.enter();
        let _: () = query(&mut con, &target, redis::cmd("set").arg("k").arg("v"))
            .await
            .unwrap();
        let err = query::<(), _>(
            &mut con,
            &target,
            redis::cmd("XADD").arg("k").arg("*").arg("f").arg("v"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Some("WRONGTYPE"));
    }
    drop(request);
    let done = spans(&exporter);
    let parent = find(&done, "handle request");
    let set = find(&done, "redis.SET");
    assert_eq!(set.span_kind, SpanKind::Client);
    assert_eq!(set.parent_span_id, parent.span_context.span_id());
    let a = attrs(set);
    assert_eq!(a["db.system.name"], "redis");
    assert_eq!(a["db.operation.name"], "SET");
    assert_eq!(a["db.namespace"], "3");
    assert_eq!(a["server.address"], "127.0.0.1");
    assert_eq!(a["server.port"], server.port().to_string());
    let xadd = find(&done, "redis.XADD");
    assert!(matches!(xadd.status, Status::Error { .. }));
    assert_eq!(attrs(xadd)["db.response.status_code"], "WRONGTYPE");
    assert_eq!(attrs(xadd)["error.type"], "WRONGTYPE");
}
