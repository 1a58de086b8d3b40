//! `check` against `serve`: whole traces pass; a missing service, an orphan
//! and two roots fail with the reason; no Jaeger is exit 2.

use autobot_testkit::trace_tool::TraceTool;

use crate::support::{cli, raw_span, request, send_grpc};

async fn check(serve: &TraceTool, trace: &str, services: &str) -> (i32, String) {
    let url = serve.query_url();
    let (code, out, err) = cli(&[
        "check",
        trace,
        "--services",
        services,
        "--wait",
        "1500ms",
        "--jaeger",
        &url,
    ])
    .await;
    (code, format!("{out}{err}"))
}

#[tokio::test]
async fn whole_traces_pass_broken_ones_fail_with_the_reason() {
    let serve = TraceTool::start();
    let whole = 0x1111_u128 << 64 | 1;
    let orphan = 0x2222_u128 << 64 | 2;
    let two_roots = 0x3333_u128 << 64 | 3;
    let remote = 0x4444_u128 << 64 | 4;
    send_grpc(
        &serve,
        request(&[
            (
                "svc-a",
                vec![
                    raw_span(whole, 1, 0, "root"),
                    raw_span(orphan, 1, 0, "root"),
                ],
            ),
            (
                "svc-b",
                vec![
                    raw_span(whole, 2, 1, "child"),
                    raw_span(orphan, 2, 0xdead, "lost"),
                    raw_span(two_roots, 1, 0, "first"),
                    raw_span(two_roots, 2, 0, "second"),
                    raw_span(remote, 1, 0xbeef, "continues"),
                    raw_span(remote, 2, 1, "child"),
                ],
            ),
        ]),
    )
    .await
    .unwrap();
    let id = |t: u128| format!("{t:032x}");

    let (code, out) = check(&serve, &id(whole), "svc-a,svc-b").await;
    assert_eq!(code, 0, "{out}");

    let (code, out) = check(&serve, &id(whole), "svc-a,svc-b,svc-z").await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("service svc-z has no span in the trace"),
        "{out}"
    );

    let (code, out) = check(&serve, &id(orphan), "svc-a").await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("orphan span 0000000000000002 (svc-b lost): its parent 000000000000dead is not in the trace"),
        "{out}"
    );

    let (code, out) = check(&serve, &id(two_roots), "").await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 root spans, expected one"), "{out}");

    // Strict: a lone span whose parent never arrived is an orphan...
    let (code, out) = check(&serve, &id(remote), "svc-b").await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("orphan span 0000000000000001 (svc-b continues): its parent 000000000000beef is not in the trace"),
        "{out}"
    );
    // ...unless that parent is named as a caller known not to be exported.
    let url = serve.query_url();
    let (code, stdout, stderr) = cli(&[
        "check",
        &id(remote),
        "--services",
        "svc-b",
        "--remote-parent",
        "000000000000BEEF",
        "--wait",
        "1500ms",
        "--jaeger",
        &url,
    ])
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, _, stderr) = cli(&["check", &id(remote), "--remote-parent", "beef"]).await;
    assert_eq!(code, 2, "a malformed span id is a usage error: {stderr}");
    assert!(stderr.contains("not a span id"), "{stderr}");

    let (code, out) = check(&serve, "00000000000000000000000000000abc", "").await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("trace not found"), "{out}");

    let (code, out) = check(&serve, "not-an-id", "").await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not-an-id"), "{out}");
}

#[tokio::test]
async fn no_query_api_is_exit_2() {
    // A port that was free a moment ago: nothing listens there.
    let url = format!("http://{}", autobot_testkit::ports::free_addr());
    let (code, _, err) = cli(&["check", "1", "--wait", "1s", "--jaeger", &url]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot reach the Jaeger query API"), "{err}");
    let (code, _, err) = cli(&["show", "1", "--jaeger", &url]).await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn jaeger_url_comes_from_the_environment() {
    let serve = TraceTool::start();
    send_grpc(&serve, request(&[("svc", vec![raw_span(7, 1, 0, "only")])]))
        .await
        .unwrap();
    // Jaeger's 16-digit form and the 32-digit form name the same trace.
    for id in ["0000000000000007", "00000000000000000000000000000007"] {
        let out = tokio::process::Command::new(crate::support::BIN)
            .args(["show", id])
            .env("AUTOBOT_JAEGER_QUERY_URL", serve.query_url())
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.starts_with("trace 0000000000000007  1 spans"),
            "{text}"
        );
    }
}
