//! `flush`: inject every pending message in order.
//!
//! # Format
//!
//! `{}` → `{"flushed":N}`, answered once the last one is injected. Injection stops at the
//! first failure: that message and the rest stay queued and the request fails with
//! `inject_failed`.

use serde::{Deserialize, Serialize};

use super::{Empty, RequestKind, WorkerRequest};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flushed {
    pub flushed: usize,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlushRequest(pub Empty);

impl WorkerRequest for FlushRequest {
    const KIND: RequestKind = RequestKind::Flush;
    type Response = Flushed;
}
