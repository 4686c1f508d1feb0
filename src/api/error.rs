//! Every error the API returns, as `{"error":{"code","message"}}` with its status code. The
//! one place broker and request errors map to HTTP (docs/api.md).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::broker::{BrokerError, RequestWorkerError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        let status = match &e {
            BrokerError::WorkerNotFound(_) => StatusCode::NOT_FOUND,
            BrokerError::NameTaken(_) => StatusCode::CONFLICT,
            BrokerError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            BrokerError::SpawnFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            BrokerError::WorkerUnavailable { .. } => StatusCode::CONFLICT,
            BrokerError::WorkerBusy { .. } => StatusCode::TOO_MANY_REQUESTS,
            BrokerError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            BrokerError::JournalFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            BrokerError::JournalUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            BrokerError::WouldLoseWork(_) => StatusCode::CONFLICT,
            BrokerError::Workspace(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<RequestWorkerError> for ApiError {
    fn from(e: RequestWorkerError) -> Self {
        let status = match &e {
            RequestWorkerError::WorkerNotFound(_) => StatusCode::NOT_FOUND,
            RequestWorkerError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            RequestWorkerError::WorkerError { .. } => StatusCode::BAD_GATEWAY,
            RequestWorkerError::WorkerDisappeared { .. } | RequestWorkerError::ChannelClosed => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}
