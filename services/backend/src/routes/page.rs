//! AutoBot's page (`GET /`): a user asks a research question about a web
//! page and sees the answer with its numbered sources. The page's script
//! (`/assets/page.js`, built from `services/backend/web/` by its
//! `build.mjs` and compiled in) traces the browser with the OpenTelemetry
//! JS web SDK when AUTOBOT_WEB_OTLP_URL is set: the click is the trace's
//! root, `POST /api/research` continues it. Served by the backend, so the
//! page and the API share one origin and no CORS is needed towards the
//! backend (docs/frontend.md says why and how to deploy it).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::AppState;
use crate::config::WebConfig;

const PAGE_HTML: &str = include_str!("../../web/page.html");
const PAGE_CSS: &str = include_str!("../../web/page.css");
/// Built by `services/backend/web/build.mjs` from `src/page.js` and the
/// locked npm packages; a test rebuilds it and compares.
const PAGE_JS: &str = include_str!("../../web/dist/page.js");

/// service.name of the spans the browser sends.
pub const PAGE_SERVICE_NAME: &str = "autobot-frontend";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/assets/page.js", get(script))
        .route("/assets/page.css", get(style))
}

/// The page's settings as JSON inside `<script type="application/json">`:
/// `<`, `>` and `&` escaped so no value can end the element.
pub fn page_config_json(web: &WebConfig) -> String {
    json!({
        "otlpUrl": web.otlp_url.as_ref().map(url::Url::as_str),
        "sampleRate": web.sample_rate,
        "environment": web.environment,
        "serviceName": PAGE_SERVICE_NAME,
        "version": env!("CARGO_PKG_VERSION"),
    })
    .to_string()
    .replace('<', "\\u003c")
    .replace('>', "\\u003e")
    .replace('&', "\\u0026")
}

/// What the page may load and connect to: this origin, and the OTLP
/// endpoint its spans go to.
pub fn content_security_policy(web: &WebConfig) -> String {
    let otlp = web
        .otlp_url
        .as_ref()
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{otlp}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn with_headers(mut response: Response, csp: Option<String>) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(csp) = csp.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

async fn page(State(state): State<AppState>) -> Response {
    let html = PAGE_HTML.replace("{{CONFIG}}", &page_config_json(&state.cfg.web));
    with_headers(
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Some(content_security_policy(&state.cfg.web)),
    )
}

async fn script() -> Response {
    with_headers(
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            PAGE_JS,
        )
            .into_response(),
        None,
    )
}

async fn style() -> Response {
    with_headers(
        (
            [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
            PAGE_CSS,
        )
            .into_response(),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(otlp: Option<&str>) -> WebConfig {
        WebConfig {
            otlp_url: otlp.map(|u| url::Url::parse(u).unwrap()),
            sample_rate: 0.5,
            environment: "</script><script>alert(1)</script>".into(),
        }
    }

    #[test]
    fn the_config_cannot_end_its_script_element() {
        let text = page_config_json(&web(Some("http://172.16.168.23:4318/v1/traces")));
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["environment"], "</script><script>alert(1)</script>");
        assert_eq!(back["otlpUrl"], "http://172.16.168.23:4318/v1/traces");
        assert_eq!(back["sampleRate"], 0.5);
        assert_eq!(back["serviceName"], PAGE_SERVICE_NAME);
        assert!(PAGE_HTML.contains("{{CONFIG}}"));
    }

    #[test]
    fn the_page_may_connect_to_its_otlp_endpoint_only() {
        let csp = content_security_policy(&web(Some("http://172.16.168.23:4318/v1/traces")));
        assert!(
            csp.contains("connect-src 'self' http://172.16.168.23:4318;"),
            "{csp}"
        );
        let csp = content_security_policy(&web(None));
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert!(csp.contains("script-src 'self';"));
    }
}
