//! What the broker tells its subscribers: lifecycle, mode, delivery and alert events on one
//! stream, and each worker's output on a stream of its own ([`super::feed`], paced by the
//! subscribers' credit).
//!
//! Both are `tokio::sync::broadcast` channels: bounded, and a subscriber that falls behind is
//! told how much it missed (`Lagged`) instead of slowing the broker. Every event and every
//! output chunk carries a `seq` from one counter, so a client can order and resume them;
//! output chunks also carry the worker's byte `offset`, which is what a client resyncs on
//! (take a snapshot, then apply only chunks at or past its offset).

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::protocol::{AgentSource, AgentState, DeliveryState, SessionMode};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One broker event. `seq` increases by one per event or output chunk, broker-wide.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub seq: u64,
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    WorkerSpawned {
        name: String,
        cmd: Vec<String>,
    },
    WorkerReady {
        name: String,
        pid: u32,
        rows: u16,
        cols: u16,
    },
    WorkerExited {
        name: String,
        code: Option<i32>,
        signal: Option<String>,
    },
    WorkerReleased {
        name: String,
    },
    Resized {
        name: String,
        rows: u16,
        cols: u16,
    },
    ModeChanged {
        name: String,
        mode: SessionMode,
        previous: SessionMode,
    },
    MessageAccepted {
        id: String,
        from: String,
        to: String,
        recipients: Vec<String>,
        /// Each recipient's messages accepted and not yet injected, this one included.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        undelivered: std::collections::BTreeMap<String, usize>,
    },
    /// A worker's agent changed state.
    AgentState {
        name: String,
        kind: String,
        state: AgentState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<AgentState>,
        source: AgentSource,
        reason: String,
    },
    Delivery {
        name: String,
        id: String,
        state: DeliveryState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The worker's messages accepted and not yet injected, after this change: a client
        /// keeps its counts from events alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        undelivered: Option<usize>,
    },
    /// Something a human should see: a failed request, an abnormal exit, a misbehaving
    /// worker. `op` is the request kind or activity that failed.
    Alert {
        severity: Severity,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<String>,
        op: String,
        code: String,
        message: String,
    },
}

impl EventKind {
    /// The worker an event is about, if any.
    pub fn worker(&self) -> Option<&str> {
        match self {
            EventKind::WorkerSpawned { name, .. }
            | EventKind::WorkerReady { name, .. }
            | EventKind::WorkerExited { name, .. }
            | EventKind::WorkerReleased { name }
            | EventKind::Resized { name, .. }
            | EventKind::ModeChanged { name, .. }
            | EventKind::AgentState { name, .. }
            | EventKind::Delivery { name, .. } => Some(name),
            EventKind::Alert { worker, .. } => worker.as_deref(),
            EventKind::MessageAccepted { .. } => None,
        }
    }
}

/// A chunk of a worker's PTY output.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    pub seq: u64,
    pub worker: Arc<str>,
    /// PTY bytes of this worker before this chunk.
    pub offset: u64,
    pub data: Bytes,
}

/// What a subscription yields.
#[derive(Debug, Clone)]
pub enum Received<T> {
    Item(T),
    /// The subscriber fell behind and `n` items were dropped for it; resync from a snapshot.
    Lagged(u64),
    /// The stream ended (the broker shut down, or the worker was released).
    Closed,
}

/// A subscription to a broadcast stream that reports lag instead of failing.
pub struct Subscription<T> {
    rx: broadcast::Receiver<T>,
}

impl<T: Clone> Subscription<T> {
    pub fn new(rx: broadcast::Receiver<T>) -> Self {
        Subscription { rx }
    }

    pub async fn recv(&mut self) -> Received<T> {
        match self.rx.recv().await {
            Ok(item) => Received::Item(item),
            Err(broadcast::error::RecvError::Lagged(n)) => Received::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }

    /// Non-blocking: `None` when nothing is waiting.
    pub fn try_recv(&mut self) -> Option<Received<T>> {
        match self.rx.try_recv() {
            Ok(item) => Some(Received::Item(item)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Received::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Some(Received::Closed),
            Err(broadcast::error::TryRecvError::Empty) => None,
        }
    }
}

pub type EventSubscription = Subscription<Arc<Event>>;
