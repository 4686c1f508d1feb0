//! Request plumbing shared by the routes: bearer authentication, strict JSON bodies and the
//! common query parameters.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::ApiState;
use super::auth::Scope;
use super::error::ApiError;
use crate::broker::validate_name;

/// Checks `Authorization: Bearer <token>` and records the caller's [`Scope`].
pub async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented.and_then(|t| state.tokens.check(t)) {
        Some(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token (see connection.json in the state dir)",
        )
        .into_response(),
    }
}

/// Tells keep-alive clients the connection ends after an error answered to a request that
/// came with a body. The body may not have been read (a 413, a 401 from [`authenticate`], a
/// bad path), and hyper then closes the connection; without `Connection: close` a client's
/// pool would send its *next* request on that closing socket and see it fail.
pub async fn close_after_refused_body(req: Request, next: Next) -> Response {
    use axum::http::header::{CONNECTION, CONTENT_LENGTH, HeaderValue, TRANSFER_ENCODING};
    let has_body = req.headers().contains_key(TRANSFER_ENCODING)
        || req
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0");
    let mut resp = next.run(req).await;
    let status = resp.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// A JSON body decoded strictly: unknown fields, wrong types and bad syntax are 400s that
/// say what is wrong; bodies over the limit are 413.
pub struct StrictJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("body exceeds {} bytes", super::MAX_BODY_BYTES),
                )
            } else {
                ApiError::bad_request(format!("could not read body: {rejection}"))
            }
        })?;
        // Every body is an object; serde would also take a struct from an array (`[1,2]`).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        serde_json::from_slice(&bytes)
            .map(StrictJson)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Only the admin token may do this.
pub fn require_admin(scope: &Scope) -> Result<(), ApiError> {
    match scope {
        Scope::Admin => Ok(()),
        Scope::Worker(name) => Err(ApiError::forbidden(format!(
            "the token of worker {name:?} may only send as itself, list workers and read its own mode and pending queue"
        ))),
    }
}

/// The admin, or the worker `name` itself.
pub fn require_self(scope: &Scope, name: &str) -> Result<(), ApiError> {
    match scope {
        Scope::Worker(own) if own != name => Err(ApiError::forbidden(format!(
            "worker {own:?} may not read another worker's state"
        ))),
        _ => Ok(()),
    }
}

pub fn checked_name(name: &str) -> Result<&str, ApiError> {
    validate_name(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(name)
}

/// `?timeout_ms=N` (1..=60000) for the request/response routes.
pub fn timeout(query: &HashMap<String, String>) -> Result<Option<Duration>, ApiError> {
    match query.get("timeout_ms") {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(ms @ 1..=60_000) => Ok(Some(Duration::from_millis(ms))),
            _ => Err(ApiError::bad_request(format!(
                "timeout_ms must be a whole number from 1 to 60000, got {v:?}"
            ))),
        },
    }
}

/// Rejects query parameters a route does not know.
pub fn only_params(query: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match query.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(format!(
            "unknown query parameter {k:?} (known: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}
