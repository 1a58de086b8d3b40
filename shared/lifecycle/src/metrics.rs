//! `GET /metrics`, the same in every service: the Prometheus text format,
//! or OpenMetrics (with exemplars) when the scraper's `Accept` asks for it.
//! It is served on the service's own listener, outside the tracing layer
//! (a scrape starts no trace and counts in no request metric) and outside
//! any operator-key check, or, when AUTOBOT_METRICS_BIND is set, on a
//! listener of its own at that address only (an internal interface).

use std::io::Write as _;
use std::net::SocketAddr;

use autobot_metrics::Format;
use autobot_settings::{Env, SettingError};
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Failure;

/// Where `/metrics` listens when not on the service's own listener.
pub const METRICS_BIND_VAR: &str = "AUTOBOT_METRICS_BIND";
/// Whether the service counts and serves metrics at all (default true).
pub const METRICS_ENABLED_VAR: &str = "AUTOBOT_METRICS_ENABLED";
/// The path scrapers read.
pub const METRICS_PATH: &str = "/metrics";

/// The metrics settings every service shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// `None`: on the service's own listener.
    pub bind: Option<SocketAddr>,
}

impl MetricsConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let env = Env::new(lookup);
        Ok(Self {
            enabled: env.bool(METRICS_ENABLED_VAR, true)?,
            bind: env.parse_with(METRICS_BIND_VAR, |v| {
                v.parse::<SocketAddr>().map_err(|e| {
                    format!("{e} (expected an IP address and a port, such as 127.0.0.1:9464)")
                })
            })?,
        })
    }

    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(autobot_settings::process_lookup)
    }

    /// Switches counting on or off for the process and, when on, makes the
    /// request and spanmetrics families exist before the first request (a
    /// scrape before any traffic already shows them, at zero).
    pub fn apply(&self) {
        autobot_metrics::set_enabled(self.enabled);
        if self.enabled {
            let _ = autobot_metrics::http::server();
            let _ = autobot_metrics::http::client();
            autobot_metrics::spans::register_families();
        }
    }
}

/// Serves `/metrics` as `config` says: merged into the service's `router`
/// (outside its layers), or on a listener of its own at
/// AUTOBOT_METRICS_BIND, announced on stdout before the readiness line
/// (`{service} metrics on http://{addr}/metrics`) and stopped with the
/// service. Nothing when metrics are off.
pub(crate) async fn listen(
    service: &str,
    config: &MetricsConfig,
    router: &mut Router,
    stopping: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, Failure> {
    if !config.enabled {
        return Ok(None);
    }
    let Some(bind) = config.bind else {
        *router = std::mem::take(router).merge(self::router());
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| {
        Failure::runtime(format_args!(
            "cannot listen on {bind} ({METRICS_BIND_VAR}): {e}"
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::runtime(format_args!("cannot read the address listened on: {e}")))?;
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{service} metrics on http://{addr}{METRICS_PATH}");
        let _ = stdout.flush();
    }
    tracing::info!("metrics on http://{addr}{METRICS_PATH}");
    let mut stopping = stopping;
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(listener, self::router())
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!("the metrics listener failed: {e}");
        }
    })))
}

/// A router with `GET /metrics` only.
pub fn router() -> Router {
    Router::new().route(METRICS_PATH, get(scrape))
}

async fn scrape(headers: HeaderMap) -> Response {
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = autobot_metrics::render(format);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use autobot_settings::{checks, pairs};

    use super::*;

    #[test]
    fn metrics_are_on_the_services_listener_unless_told() {
        let default = MetricsConfig::from_lookup(pairs(&[])).unwrap();
        assert_eq!(
            default,
            MetricsConfig {
                enabled: true,
                bind: None
            }
        );
        let own = MetricsConfig::from_lookup(pairs(&[
            (METRICS_BIND_VAR, "10.0.0.5:9464"),
            (METRICS_ENABLED_VAR, "off"),
        ]))
        .unwrap();
        assert_eq!(own.bind, Some("10.0.0.5:9464".parse().unwrap()));
        assert!(!own.enabled);
    }

    #[test]
    fn a_bad_metrics_setting_is_refused_naming_it() {
        checks::assert_error_texts(
            |vars| MetricsConfig::from_lookup(pairs(vars)),
            &[
                "AUTOBOT_METRICS_BIND=\"9464\" is not valid: invalid socket address syntax (expected an IP address and a port, such as 127.0.0.1:9464)",
                "AUTOBOT_METRICS_ENABLED=\"maybe\" is not valid: expected true or false",
            ],
        );
    }

    #[tokio::test]
    async fn a_scrape_is_answered_in_the_format_asked_for() {
        use axum::body::{Body, to_bytes};
        use axum::http::Request;
        use tower::ServiceExt as _;
        let text = router()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            text.headers()[header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let om = router()
            .oneshot(
                Request::get("/metrics")
                    .header(
                        header::ACCEPT,
                        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
                    )
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            om.headers()[header::CONTENT_TYPE],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        let body = to_bytes(om.into_body(), 1 << 20).await.unwrap();
        assert!(body.ends_with(b"# EOF\n"));
    }
}
