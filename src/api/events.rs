//! `GET /api/events`: the broker's event stream over a WebSocket.
//!
//! # Format
//!
//! Text frames, one JSON object each, all with `seq` and `type`:
//! - every broker event (`worker_spawned`, `worker_exited`, `mode_changed`, `delivery`,
//!   `alert`, …) — with `?since=SEQ`, first the retained ones after SEQ, and
//!   `{"type":"gap","since","oldest_available"}` if some were already dropped;
//! - with `?output=a,b`: for each worker first `{"type":"screen","name","offset","rows",
//!   "cols","data_b64","more"}` (an `ansi` snapshot; a large one continues in
//!   `{"type":"screen_more","name","data_b64","more"}` messages until `more` is false), then `{"type":"output","name","offset",
//!   "data_b64"}` chunks strictly continuing from that offset — no lost or doubled bytes;
//! - `{"type":"lagged","stream","missed"}` when this client fell behind; for output the
//!   worker's stream restarts with a fresh `screen`.
//!
//! A slow client never slows the broker: it lags on its own bounded subscriptions.

use std::collections::HashMap;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use serde_json::json;
use tokio::sync::mpsc;

use super::ApiState;
use super::auth::Scope;
use super::error::ApiError;
use super::extract::{checked_name, only_params, require_admin};
use crate::broker::{BrokerHandle, Received};
use crate::protocol::requests::snapshot::SnapshotFormat;

/// Frames queued for one socket; when full, producers wait and their subscriptions lag.
const SOCKET_QUEUE: usize = 256;

pub async fn events(
    ws: WebSocketUpgrade,
    State(st): State<ApiState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    require_admin(&scope)?;
    only_params(&q, &["since", "output"])?;
    let since = q
        .get("since")
        .map(|s| {
            s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("since must be a sequence number, got {s:?}"))
            })
        })
        .transpose()?;
    let outputs: Vec<String> = match q.get("output") {
        Some(list) if !list.is_empty() => list
            .split(',')
            .map(|n| checked_name(n).map(str::to_string))
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    for name in &outputs {
        st.broker.info(name).await?;
    }
    let broker = st.broker.clone();
    Ok(ws.on_upgrade(move |socket| run(socket, broker, since, outputs)))
}

async fn run(
    mut socket: WebSocket,
    broker: BrokerHandle,
    since: Option<u64>,
    outputs: Vec<String>,
) {
    let (tx, mut rx) = mpsc::channel::<String>(SOCKET_QUEUE);
    let Ok(replay) = broker.subscribe_since(since.unwrap_or(u64::MAX)).await else {
        return;
    };
    let mut tasks = Vec::new();
    {
        let tx = tx.clone();
        let since = since.unwrap_or(0);
        tasks.push(tokio::spawn(async move {
            if replay.gap {
                let oldest = replay.events.first().map(|e| e.seq);
                let gap = json!({"type": "gap", "since": since, "oldest_available": oldest});
                if tx.send(gap.to_string()).await.is_err() {
                    return;
                }
            }
            let mut last = since;
            for event in replay.events {
                last = event.seq;
                if tx
                    .send(serde_json::to_string(&*event).expect("event serializes"))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let mut live = replay.live;
            loop {
                let line = match live.recv().await {
                    // Events already replayed can also be in the live buffer.
                    Received::Item(e) if e.seq <= last => continue,
                    Received::Item(e) => serde_json::to_string(&*e).expect("event serializes"),
                    Received::Lagged(n) => {
                        json!({"type": "lagged", "stream": "events", "missed": n}).to_string()
                    }
                    Received::Closed => return,
                };
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        }));
    }
    for name in outputs {
        tasks.push(tokio::spawn(forward_output(
            broker.clone(),
            name,
            tx.clone(),
        )));
    }
    drop(tx);
    loop {
        tokio::select! {
            line = rx.recv() => match line {
                Some(line) => {
                    if socket.send(Message::Text(line.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    for task in tasks {
        task.abort();
    }
}

/// Base64 of a screen per WebSocket message: well under the 16 MiB frame most clients accept.
const SCREEN_PIECE: usize = 4 * 1024 * 1024;

/// A screen's base64 in pieces of at most [`SCREEN_PIECE`] characters, each decodable alone
/// (a multiple of 4 characters); always at least one.
fn screen_pieces(data: &str) -> std::vec::IntoIter<&str> {
    let mut pieces: Vec<&str> = Vec::new();
    let mut rest = data;
    while rest.len() > SCREEN_PIECE {
        let (piece, tail) = rest.split_at(SCREEN_PIECE);
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces.into_iter()
}

/// One worker's screen, then its output from exactly that point; starts over after a lag.
async fn forward_output(broker: BrokerHandle, name: String, tx: mpsc::Sender<String>) {
    loop {
        let Ok(mut sub) = broker.subscribe_output(&name).await else {
            return;
        };
        let Ok(snap) = broker.snapshot(&name, SnapshotFormat::Ansi, None).await else {
            return;
        };
        let data = snap.screen.as_str().unwrap_or_default();
        let mut pieces = screen_pieces(data);
        let first = pieces.next().unwrap_or_default();
        let screen = json!({
            "type": "screen", "name": name, "offset": snap.offset,
            "rows": snap.rows, "cols": snap.cols, "cursor": snap.cursor, "data_b64": first,
            "more": pieces.len() > 0,
        });
        if tx.send(screen.to_string()).await.is_err() {
            return;
        }
        while let Some(piece) = pieces.next() {
            let more = json!({
                "type": "screen_more", "name": name, "data_b64": piece, "more": pieces.len() > 0,
            });
            if tx.send(more.to_string()).await.is_err() {
                return;
            }
        }
        let mut next = snap.offset;
        loop {
            match sub.recv().await {
                Received::Item(chunk) => {
                    let end = chunk.offset + chunk.data.len() as u64;
                    if end <= next {
                        continue; // already in the screen
                    }
                    let skip = next.saturating_sub(chunk.offset) as usize;
                    let line = json!({
                        "seq": chunk.seq, "type": "output", "name": name, "offset": next,
                        "data_b64": crate::b64::encode(&chunk.data[skip..]),
                    });
                    next = end;
                    if tx.send(line.to_string()).await.is_err() {
                        return;
                    }
                }
                Received::Lagged(n) => {
                    let lag =
                        json!({"type": "lagged", "stream": "output", "name": name, "missed": n});
                    if tx.send(lag.to_string()).await.is_err() {
                        return;
                    }
                    break; // resync from a fresh screen
                }
                Received::Closed => return,
            }
        }
    }
}
