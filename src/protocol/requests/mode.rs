//! `get_mode` / `set_mode`: the worker's session mode (docs/agents.md).
//!
//! # Format
//!
//! `get_mode` `{}` → `{"mode"}`; `set_mode` `{"mode":"relay"|"human"}` →
//! `{"mode","previous","flushed"}`. Switching `human → relay` first flushes the pending queue
//! (`flushed` counts what was injected); a flush failure fails the request and keeps `human`.

use serde::{Deserialize, Serialize};

use super::{Empty, RequestKind, WorkerRequest};
use crate::protocol::SessionMode;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModeReply {
    pub mode: SessionMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<SessionMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flushed: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetMode(pub Empty);

impl WorkerRequest for GetMode {
    const KIND: RequestKind = RequestKind::GetMode;
    type Response = ModeReply;
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMode {
    pub mode: SessionMode,
}

impl WorkerRequest for SetMode {
    const KIND: RequestKind = RequestKind::SetMode;
    type Response = ModeReply;
}
