//! The route handlers. Each checks scope and input, calls the broker, and shapes the answer.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use super::auth::Scope;
use super::error::ApiError;
use super::extract::{StrictJson, checked_name, only_params, require_admin, require_self, timeout};
use crate::broker::SpawnSpec;
use crate::protocol::{InputPayload, ResizePayload, SessionMode};
use crate::requests::snapshot::SnapshotFormat;

type Q = Query<HashMap<String, String>>;
type ApiResult = Result<axum::response::Response, ApiError>;

pub async fn health(State(st): State<ApiState>) -> ApiResult {
    let stats = st.broker.stats().await?;
    Ok(Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "workers": stats.workers,
        "pending_requests": stats.pending_requests,
        "undelivered_messages": stats.undelivered_messages,
    }))
    .into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see docs/api.md",
    )
}

pub async fn list(State(st): State<ApiState>) -> ApiResult {
    let workers = st.broker.list().await?;
    Ok(Json(json!({ "workers": workers })).into_response())
}

pub async fn spawn(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    StrictJson(spec): StrictJson<SpawnSpec>,
) -> ApiResult {
    require_admin(&scope)?;
    let info = st.broker.spawn(spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": info.name, "pid": info.pid})),
    )
        .into_response())
}

pub async fn release(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
) -> ApiResult {
    require_admin(&scope)?;
    st.broker.release(checked_name(&name)?).await?;
    Ok(Json(json!({"name": name, "released": true})).into_response())
}

pub async fn input(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
    StrictJson(body): StrictJson<InputPayload>,
) -> ApiResult {
    require_admin(&scope)?;
    let bytes = body.bytes().map_err(ApiError::bad_request)?;
    st.broker.input(checked_name(&name)?, bytes).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({}))).into_response())
}

pub async fn resize(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
    StrictJson(body): StrictJson<ResizePayload>,
) -> ApiResult {
    require_admin(&scope)?;
    st.broker
        .resize(checked_name(&name)?, body.rows, body.cols)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({}))).into_response())
}

pub async fn snapshot(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
    Query(q): Q,
) -> ApiResult {
    require_admin(&scope)?;
    only_params(&q, &["format", "timeout_ms"])?;
    let format: SnapshotFormat = q
        .get("format")
        .map(|f| f.parse())
        .transpose()
        .map_err(ApiError::bad_request)?
        .unwrap_or_default();
    let snap = st
        .broker
        .snapshot(checked_name(&name)?, format, timeout(&q)?)
        .await?;
    Ok(Json(snap).into_response())
}

pub async fn get_mode(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
    Query(q): Q,
) -> ApiResult {
    require_self(&scope, &name)?;
    only_params(&q, &["timeout_ms"])?;
    let mode = st
        .broker
        .get_mode(checked_name(&name)?, timeout(&q)?)
        .await?;
    Ok(Json(json!({ "mode": mode })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeBody {
    mode: SessionMode,
}

pub async fn set_mode(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
    Query(q): Q,
    StrictJson(body): StrictJson<ModeBody>,
) -> ApiResult {
    require_admin(&scope)?;
    only_params(&q, &["timeout_ms"])?;
    let reply = st
        .broker
        .set_mode(checked_name(&name)?, body.mode, timeout(&q)?)
        .await?;
    Ok(Json(json!({
        "mode": reply.mode,
        "previous": reply.previous,
        "flushed": reply.flushed.unwrap_or(0),
    }))
    .into_response())
}

pub async fn pending(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
    Query(q): Q,
) -> ApiResult {
    require_self(&scope, &name)?;
    only_params(&q, &["timeout_ms"])?;
    let list = st
        .broker
        .pending(checked_name(&name)?, timeout(&q)?)
        .await?;
    Ok(Json(list).into_response())
}

pub async fn flush(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
    Query(q): Q,
) -> ApiResult {
    require_admin(&scope)?;
    only_params(&q, &["timeout_ms"])?;
    let flushed = st.broker.flush(checked_name(&name)?, timeout(&q)?).await?;
    Ok(Json(flushed).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    to: String,
    body: String,
    #[serde(default)]
    from: Option<String>,
}

/// Who a message is from when the admin token does not say.
pub const DEFAULT_SENDER: &str = "human";

pub async fn send(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    StrictJson(msg): StrictJson<SendBody>,
) -> ApiResult {
    let from = match (&scope, msg.from) {
        (Scope::Admin, from) => from.unwrap_or_else(|| DEFAULT_SENDER.to_string()),
        (Scope::Worker(own), Some(from)) if &from != own => {
            return Err(ApiError::forbidden(format!(
                "worker {own:?} may only send as itself, not as {from:?}"
            )));
        }
        (Scope::Worker(own), _) => own.clone(),
    };
    if msg.to != "*" {
        checked_name(&msg.to)?;
    }
    let accepted = st.broker.send_message(&from, &msg.to, &msg.body).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

pub async fn messages(State(st): State<ApiState>, Extension(scope): Extension<Scope>) -> ApiResult {
    require_admin(&scope)?;
    let list = st.broker.undelivered().await?;
    Ok(Json(json!({ "messages": list })).into_response())
}

pub async fn drop_message(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> ApiResult {
    require_admin(&scope)?;
    match st.broker.drop_message(&id).await? {
        0 => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "message_not_found",
            format!("no undelivered message {id:?}"),
        )),
        n => Ok(Json(json!({"id": id, "dropped": n})).into_response()),
    }
}
