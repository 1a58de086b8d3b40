//! AutoBot's page (`GET /`): served with the settings the browser needs and
//! a policy that lets it load and connect to nothing else; its script is
//! exactly what `services/backend/web/` builds from the lockfile.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_names_its_otlp_endpoint_and_allows_only_it() {
    let receiver = TraceTool::start();
    let mut backend = start_backend(
        &receiver,
        "http://127.0.0.1:9",
        &[
            ("AUTOBOT_WEB_OTLP_URL", "http://127.0.0.1:4318".to_owned()),
            ("AUTOBOT_TRACE_SAMPLE_RATE", "0.5".to_owned()),
        ],
    );
    let page = reqwest::get(backend.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("connect-src 'self' http://127.0.0.1:4318;"),
        "{csp}"
    );
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#""otlpUrl":"http://127.0.0.1:4318/v1/traces""#),
        "{html}"
    );
    assert!(html.contains(r#""sampleRate":0.5"#), "{html}");
    assert!(html.contains(r#""serviceName":"autobot-frontend""#));
    assert!(!html.contains("{{CONFIG}}"));

    let script = reqwest::get(backend.url("/assets/page.js")).await.unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let served = script.text().await.unwrap();
    let committed = std::fs::read_to_string(web_dir().join("dist/page.js")).unwrap();
    assert_eq!(served, committed, "the committed bundle is what is served");
    let style = reqwest::get(backend.url("/assets/page.css")).await.unwrap();
    assert_eq!(style.headers()["content-type"], "text/css; charset=utf-8");
    backend.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_otlp_endpoint_the_page_is_not_traced() {
    let receiver = TraceTool::start();
    let mut backend = start_backend(&receiver, "http://127.0.0.1:9", &[]);
    let page = reqwest::get(backend.url("/")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(page.text().await.unwrap().contains(r#""otlpUrl":null"#));
    backend.stop();
}

/// `dist/page.js` is committed (cargo builds need no Node.js); this keeps it
/// honest: rebuilt from `src/` and the packages `package-lock.json` pins
/// (`scripts/setup.d/70-web.sh` installs them with `npm ci`), byte for byte.
#[test]
fn the_committed_page_script_is_what_the_lockfile_builds() {
    let web = web_dir();
    assert!(
        web.join("node_modules/.bin/esbuild").exists(),
        "no npm packages in {}: run scripts/setup.sh (scripts/setup.d/70-web.sh runs npm ci there)",
        web.display()
    );
    let out = tempfile::tempdir().unwrap();
    let built = out.path().join("page.js");
    let run = Launch::program("node")
        .arg(web.join("build.mjs"))
        .arg("--out")
        .arg(&built)
        .within(Duration::from_secs(120))
        .run();
    assert_eq!(run.code(), Some(0), "node build.mjs: {run:?}");
    let fresh = std::fs::read(&built).unwrap();
    let committed = std::fs::read(web.join("dist/page.js")).unwrap();
    assert!(
        fresh == committed,
        "services/backend/web/dist/page.js is not what src/ and package-lock.json build \
         ({} bytes built, {} committed): run `cd services/backend/web && npm ci && npm run build` \
         and commit dist/page.js",
        fresh.len(),
        committed.len()
    );
}
