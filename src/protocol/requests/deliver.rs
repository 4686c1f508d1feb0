//! `deliver`: hand a relay message to a worker.
//!
//! # Format
//!
//! Request `{"id","from","to","body","sent_at_ms"}`; response `{"state":"injected"|"queued"}`.
//! In `relay` mode with no injection under way the message is injected before the response
//! (`injected`); otherwise it waits (`queued`) and a later `delivery` frame reports
//! `injected` or `failed`. A full queue answers the error `queue_full`, so the broker keeps
//! the message: nothing is dropped silently.

use serde::{Deserialize, Serialize};

use super::{RequestKind, WorkerRequest};
use crate::protocol::DeliveryState;

/// A relay message, as accepted by the broker and delivered to a worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelayMessage {
    pub id: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub sent_at_ms: u64,
    /// When it may be typed; absent means the worker's default for its agent kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
}

/// When a message may be typed (see `docs/agents.md`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Only when the agent is idle (the default for agent kinds).
    Idle,
    /// As soon as it is safe (the default for shells and generic programs).
    Now,
}

impl WorkerRequest for RelayMessage {
    const KIND: RequestKind = RequestKind::Deliver;
    type Response = Delivered;
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Delivered {
    pub state: DeliveryState,
}
