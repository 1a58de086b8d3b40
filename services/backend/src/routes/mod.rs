//! One module per flow; each adds its routes to the router in [`crate::app`].
//! `POST /api/embeddings` (Redis job) and `POST /api/research` come as
//! modules of their own.

pub mod browse;
pub mod chat;
pub mod health;
pub mod pki;

use axum::http::Uri;

use crate::AppError;

pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(uri.path().to_owned())
}
