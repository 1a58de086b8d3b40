//! An HTTP service's life, the same for each: telemetry up, settings read,
//! listen, serve until SIGTERM or Ctrl-C, flush every span; and the one
//! shape of its error answers.

use std::fmt::Display;
use std::net::SocketAddr;
use std::process::ExitCode;

use autobot_wire::error::ErrorBody;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use crate::shutdown_signal;

/// What differs from one HTTP service to the next. `run` does the rest.
pub struct HttpService<C, E> {
    /// service.name, and the prefix of every message on stderr.
    pub name: &'static str,
    /// service.version.
    pub version: &'static str,
    /// Reads the settings; called after telemetry is up (it has loaded `.env`).
    pub config: fn() -> Result<C, E>,
    /// Where to listen.
    pub bind: fn(&C) -> SocketAddr,
    /// Logs that the service listens, at the address it got.
    pub listening: fn(&C, SocketAddr),
    /// Builds the service; an error is a configuration error.
    pub app: fn(C) -> Result<Router, E>,
}

impl<C, E: Display> HttpService<C, E> {
    /// Runs the service until SIGTERM or Ctrl-C, then flushes telemetry.
    /// Every failure is one line on stderr and exit code 1.
    pub async fn run(self) -> ExitCode {
        let telemetry = match autobot_tracing::init(self.name, self.version) {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!("{}: {e}", self.name);
                return ExitCode::FAILURE;
            }
        };
        let code = self.serve().await;
        telemetry.shutdown().await;
        code
    }

    async fn serve(self) -> ExitCode {
        let name = self.name;
        let cfg = match (self.config)() {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::error!("configuration: {e}");
                eprintln!("{name}: configuration: {e}");
                return ExitCode::FAILURE;
            }
        };
        let bind = (self.bind)(&cfg);
        let listener = match tokio::net::TcpListener::bind(bind).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{name}: cannot listen on {bind}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(addr) => (self.listening)(&cfg, addr),
            Err(e) => tracing::warn!("listening, address unknown: {e}"),
        }
        let app = match (self.app)(cfg) {
            Ok(app) => app,
            Err(e) => {
                eprintln!("{name}: configuration: {e}");
                return ExitCode::FAILURE;
            }
        };
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await;
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{name}: server failed: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

/// The answer to a failed request: `status` and
/// `{"error": message, "trace_id": "..."}` (the current trace's id).
pub fn error_response(status: StatusCode, message: String) -> Response {
    let body = ErrorBody {
        error: message,
        trace_id: autobot_tracing::current_trace_id(),
    };
    (status, Json(body)).into_response()
}

/// A body that could not be read as the JSON asked for: its status and
/// axum's message. A body of the wrong shape is a bad request like any
/// other (axum says 422, we say 400).
pub fn json_rejection(r: &JsonRejection) -> (StatusCode, String) {
    let status = match r.status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        other => other,
    };
    (status, r.body_text())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::body::{Body, to_bytes};
    use axum::extract::FromRequest;
    use axum::http::{Request, header};

    use super::*;

    async fn rejection(content_type: Option<&str>, body: &str) -> JsonRejection {
        let mut req = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(Body::from(body.to_owned())).unwrap();
        Json::<HashMap<String, String>>::from_request(req, &())
            .await
            .expect_err("the body is refused")
    }

    #[tokio::test]
    async fn a_body_of_the_wrong_shape_is_a_400_like_bad_json() {
        let shape = rejection(Some("application/json"), "[1]").await;
        assert_eq!(shape.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let (status, message) = json_rejection(&shape);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message, shape.body_text());

        let syntax = rejection(Some("application/json"), "{").await;
        assert_eq!(json_rejection(&syntax).0, StatusCode::BAD_REQUEST);
        let no_type = rejection(None, "{}").await;
        assert_eq!(
            json_rejection(&no_type).0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[tokio::test]
    async fn an_error_answer_is_the_status_and_the_json_body() {
        let res = error_response(StatusCode::BAD_GATEWAY, "peer down".to_owned());
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE].to_str().unwrap(),
            "application/json"
        );
        let bytes = to_bytes(res.into_body(), 1024).await.unwrap();
        // No trace is current here: the body has no trace_id.
        assert_eq!(&bytes[..], br#"{"error":"peer down"}"#);
    }
}
