//! `pending`: the relay messages waiting in the worker's queue, oldest first.
//!
//! # Format
//!
//! `{}` → `{"pending":[{"id","from","body","sent_at_ms","queued_at_ms","reason"}]}`: the
//! human-mode queue, then messages waiting for a safe moment to be typed; `reason` says why
//! each one waits.

use serde::{Deserialize, Serialize};

use super::{Empty, RequestKind, WorkerRequest};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingEntry {
    pub id: String,
    pub from: String,
    pub body: String,
    pub sent_at_ms: u64,
    pub queued_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct PendingList {
    pub pending: Vec<PendingEntry>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRequest(pub Empty);

impl WorkerRequest for PendingRequest {
    const KIND: RequestKind = RequestKind::Pending;
    type Response = PendingList;
}
