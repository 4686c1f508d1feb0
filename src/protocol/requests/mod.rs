//! The request kinds a broker can ask a worker, one file per kind, each holding the typed
//! request and response payloads that *both* sides use (the worker decodes the request and
//! encodes the response; the broker does the reverse). Pure wire types: callers send them
//! with the broker's generic `call::<R>` (or its named wrappers in `broker::calls`).
//!
//! Adding a request kind is adding a file here, its handler in the worker, and (if callers
//! want one) a named wrapper.

pub mod deliver;
pub mod flush;
pub mod mode;
pub mod pending;
pub mod snapshot;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every request/response operation of the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    Snapshot,
    GetMode,
    SetMode,
    Pending,
    Flush,
    Deliver,
}

impl RequestKind {
    pub const ALL: [RequestKind; 6] = [
        RequestKind::Snapshot,
        RequestKind::GetMode,
        RequestKind::SetMode,
        RequestKind::Pending,
        RequestKind::Flush,
        RequestKind::Deliver,
    ];

    /// The frame `type` of the request, also echoed as the response's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Snapshot => "snapshot",
            RequestKind::GetMode => "get_mode",
            RequestKind::SetMode => "set_mode",
            RequestKind::Pending => "pending",
            RequestKind::Flush => "flush",
            RequestKind::Deliver => "deliver",
        }
    }

    pub fn from_type(kind: &str) -> Option<Self> {
        RequestKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl std::fmt::Display for RequestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed request: its payload type, its kind, and the type its `ok` response decodes into.
pub trait WorkerRequest: Serialize {
    const KIND: RequestKind;
    type Response: DeserializeOwned + Serialize;
}

/// An empty request payload (`{}`), for kinds that take no arguments.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}
