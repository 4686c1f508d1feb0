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
use crate::protocol::requests::snapshot::{SnapshotFormat, SnapshotRequest};
use crate::protocol::{InputPayload, ResizePayload, SessionMode};

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
    Query(q): Q,
) -> ApiResult {
    require_admin(&scope)?;
    only_params(&q, &["worktree", "force"])?;
    let worktree = match q.get("worktree").map(String::as_str) {
        None | Some("keep") => crate::workspace::OnRelease::Keep,
        Some("remove") => crate::workspace::OnRelease::Remove,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "worktree={other:?}: expected keep or remove"
            )));
        }
    };
    let force = flag(&q, "force")?;
    let opts = crate::broker::ReleaseOptions { worktree, force };
    st.broker.release_with(checked_name(&name)?, opts).await?;
    Ok(Json(json!({"name": name, "released": true})).into_response())
}

/// Starts an exited worker again as it was.
pub async fn restart(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
) -> ApiResult {
    require_admin(&scope)?;
    let info = st.broker.restart(checked_name(&name)?).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": info.name, "pid": info.pid})),
    )
        .into_response())
}

/// What the worker changed (its worktree against its base, or its directory against HEAD).
pub async fn diff(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
) -> ApiResult {
    require_admin(&scope)?;
    let diff = st.broker.diff(checked_name(&name)?).await?;
    Ok(Json(diff).into_response())
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
    only_params(&q, &["format", "scrollback", "timeout_ms"])?;
    let format: SnapshotFormat = q
        .get("format")
        .map(|f| f.parse())
        .transpose()
        .map_err(ApiError::bad_request)?
        .unwrap_or_default();
    let scrollback: u32 = q
        .get("scrollback")
        .map(|n| {
            n.parse()
                .map_err(|_| format!("scrollback must be a row count, not {n:?}"))
        })
        .transpose()
        .map_err(ApiError::bad_request)?
        .unwrap_or(0);
    let request = SnapshotRequest { format, scrollback };
    let snap = st
        .broker
        .snapshot(checked_name(&name)?, request, timeout(&q)?)
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
    /// `idle` or `now`; absent: the recipient's default for its agent kind.
    #[serde(default)]
    when: Option<crate::protocol::requests::deliver::When>,
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
    let accepted = st
        .broker
        .send_message_when(&from, &msg.to, &msg.body, msg.when)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// Messages still owed (each with `where` it is: `sending`, `in_worker`, `waiting`), then
/// recent settled ones, each with its delivery `state`. `?state=S`, `?to=NAME` filter;
/// `?owed=true` lists only the owed ones.
pub async fn messages(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Query(q): Q,
) -> ApiResult {
    only_params(&q, &["state", "to", "owed"])?;
    let state = q
        .get("state")
        .map(|s| {
            serde_json::from_value::<crate::protocol::DeliveryState>(json!(s)).map_err(|_| {
                ApiError::bad_request(format!(
                    "unknown state {s:?} (expected queued, injected, submitted, unconfirmed, failed or dropped)"
                ))
            })
        })
        .transpose()?;
    let owed_only = flag(&q, "owed")?;
    let to = q.get("to").map(String::as_str);
    // A worker token sees only the messages to and from itself.
    let visible = |m_to: &str, m_from: &str| match &scope {
        Scope::Admin => true,
        Scope::Worker(own) => own == m_to || own == m_from,
    };
    let history = st.broker.messages().await?;
    let owed = st.broker.undelivered().await?;
    let mut out = Vec::new();
    for u in &owed {
        let record = history
            .iter()
            .find(|r| r.id == u.message.id && r.to == u.to);
        let s = record.map_or(crate::protocol::DeliveryState::Queued, |r| r.state);
        if state.is_some_and(|want| want != s)
            || to.is_some_and(|t| t != u.to)
            || !visible(&u.to, &u.message.from)
        {
            continue;
        }
        let mut v = serde_json::to_value(&u.message).expect("serializes");
        v["to"] = json!(u.to);
        v["state"] = json!(s);
        v["where"] = json!(u.state);
        v["reason"] = json!(record.and_then(|r| r.reason.clone()));
        out.push(v);
    }
    if !owed_only {
        for r in &history {
            let is_owed = owed.iter().any(|u| u.message.id == r.id && u.to == r.to);
            if is_owed
                || state.is_some_and(|want| want != r.state)
                || to.is_some_and(|t| t != r.to)
                || !visible(&r.to, &r.from)
            {
                continue;
            }
            out.push(serde_json::to_value(r).expect("serializes"));
        }
    }
    Ok(Json(json!({ "messages": out })).into_response())
}

/// `GET /api/spawned/{name}/agent`: what its agent is doing.
pub async fn agent(State(st): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    let info = st.broker.info(checked_name(&name)?).await?;
    Ok(Json(json!(info.agent)).into_response())
}

/// `POST /api/hook`: an event from the agent's own hook, with the worker's own token.
pub async fn hook(
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    StrictJson(hook): StrictJson<HookBody>,
) -> ApiResult {
    let name = match (&scope, &hook.worker) {
        (Scope::Worker(own), None) => own.clone(),
        (Scope::Worker(own), Some(w)) if w == own => own.clone(),
        (Scope::Worker(own), Some(w)) => {
            return Err(ApiError::forbidden(format!(
                "worker {own:?} may only report its own hooks, not {w:?}'s"
            )));
        }
        (Scope::Admin, Some(w)) => checked_name(w)?.to_string(),
        (Scope::Admin, None) => {
            return Err(ApiError::bad_request(
                "the admin token must name the worker",
            ));
        }
    };
    st.broker
        .hook(
            &name,
            crate::protocol::HookPayload {
                event: hook.event,
                data: hook.data,
            },
        )
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookBody {
    event: String,
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default)]
    worker: Option<String>,
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

/// A `?key=true|false` query parameter (absent: false).
fn flag(q: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{key}={other:?}: expected true or false"
        ))),
    }
}
