//! What every service's HTTP API has in common: the outer layers of its
//! router, the one shape of its error answers, and one reading of JSON
//! request bodies.

use autobot_wire::error::ErrorBody;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

/// The router a service serves: `routes` (with their state and body limit)
/// plus a JSON 404 for a path without a route, inside the request limits
/// ([`crate::limits`]), inside the tracing layer,
/// which is outermost so that every answer, rejections and 404s included,
/// carries `traceresponse`. `health` (the path load balancers and
/// `scripts/run.sh` poll) starts no trace; it joins one a caller brings, so
/// the backend's cluster check stays one trace.
pub fn service_router(routes: Router, health: &'static str) -> Router {
    // Concurrency, body-read and request timeouts, inside the tracing layer.
    crate::limits::request_limits_layer(routes.fallback(not_found))
        .layer(autobot_tracing::http::server_layer().untraced_paths([health]))
}

/// The answer for a path without a route: 404 in the error shape.
pub async fn not_found(uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
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

/// A JSON body read whatever its Content-Type says (some callers send
/// none): `body` is what axum's `Bytes` extractor gave the handler. A bad
/// one is refused exactly as axum's `Json` extractor refuses it, through
/// [`json_rejection`]; a body over the limit is a 413.
pub fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, (StatusCode, String)> {
    let bytes = body.map_err(|r| (r.status(), r.body_text()))?;
    Json::<T>::from_bytes(&bytes)
        .map(|Json(value)| value)
        .map_err(|r| json_rejection(&r))
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

    #[test]
    fn a_body_read_by_hand_is_refused_like_any_other() {
        let body = |text: &'static str| Ok(Bytes::from_static(text.as_bytes()));
        let parsed: HashMap<String, String> = json_body(body(r#"{"a": "b"}"#)).unwrap();
        assert_eq!(parsed["a"], "b");
        let (status, message) = json_body::<HashMap<String, String>>(body("{")).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            message.starts_with("Failed to parse the request body as JSON"),
            "{message}"
        );
        let (status, message) = json_body::<HashMap<String, String>>(body("[1]")).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            message.starts_with("Failed to deserialize the JSON body"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_read_by_hand_is_a_413() {
        use axum::extract::DefaultBodyLimit;
        use tower::ServiceExt as _;
        let app = Router::new()
            .route(
                "/",
                axum::routing::post(|body: Result<Bytes, BytesRejection>| async move {
                    match json_body::<HashMap<String, String>>(body) {
                        Ok(_) => (StatusCode::OK, String::new()),
                        Err(refused) => refused,
                    }
                }),
            )
            .layer(DefaultBodyLimit::max(8));
        let req = Request::post("/")
            .body(Body::from(r#"{"a": "0123456789"}"#))
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn an_unknown_path_is_a_json_404_inside_the_tracing_layer() {
        use tower::ServiceExt as _;
        let app = service_router(
            Router::new().route("/health", axum::routing::get(|| async { "ok" })),
            "/health",
        );
        let req = Request::get("/nowhere").body(Body::empty()).unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let bytes = to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&bytes[..], br#"{"error":"no route for /nowhere"}"#);
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
