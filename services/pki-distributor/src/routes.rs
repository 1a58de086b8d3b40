//! HTTP API: `POST /distribute`, `GET /status`, `GET /health`.

use std::sync::Arc;

use autobot_lifecycle::http::error_response;
use autobot_wire::pki::{DistributeRequest, DistributeResponse, StatusResponse};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::distribute::{DistributeError, Distributor};

/// Shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    pub distributor: Arc<Distributor>,
    /// One run at a time: two runs must not race on the same VM's files.
    pub run_lock: Arc<tokio::sync::Mutex<()>>,
}

impl AppState {
    pub fn new(distributor: Distributor) -> Self {
        Self {
            distributor: Arc::new(distributor),
            run_lock: Arc::default(),
        }
    }
}

/// Every error a handler answers with, mapped to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("bad request body: {0}")]
    BadBody(String),
    #[error(transparent)]
    Distribute(#[from] DistributeError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        // All are the caller's mistakes: answered, not logged as failures.
        let status = match &self {
            AppError::BadBody(_) => StatusCode::BAD_REQUEST,
            AppError::Distribute(
                DistributeError::UnknownTargets(_) | DistributeError::NoTargets,
            ) => StatusCode::BAD_REQUEST,
        };
        error_response(status, self.to_string())
    }
}

/// The router tests drive and `main` serves.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/distribute", post(distribute))
        .route("/status", get(status))
        .route("/health", get(health))
        .with_state(state)
        .layer(autobot_tracing::http::server_layer().untraced_paths(["/health"]))
}

/// `{"targets"?: [names]}` → one result per target; 200 even when some
/// targets failed (each result says why); 400 for unknown names.
async fn distribute(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<DistributeResponse>, AppError> {
    // An empty body means "every target", as `{}` does.
    let request: DistributeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DistributeRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| AppError::BadBody(e.to_string()))?
    };
    let _one_run = state.run_lock.lock().await;
    let response = state
        .distributor
        .distribute(request.targets.as_deref())
        .await?;
    Ok(Json(response))
}

async fn status(State(state): State<AppState>) -> Json<StatusResponse> {
    Json(state.distributor.status())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "service": "autobot-pki-distributor"}))
}
