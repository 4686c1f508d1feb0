//! The typed requests by name: thin wrappers over [`BrokerHandle::call`], one per request
//! kind of [`crate::protocol::requests`].

use std::time::Duration;

use super::{BrokerHandle, RequestWorkerError};
use crate::protocol::SessionMode;
use crate::protocol::requests::deliver::{Delivered, RelayMessage};
use crate::protocol::requests::flush::{FlushRequest, Flushed};
use crate::protocol::requests::mode::{GetMode, ModeReply, SetMode};
use crate::protocol::requests::pending::{PendingList, PendingRequest};
use crate::protocol::requests::snapshot::{Snapshot, SnapshotRequest};

impl BrokerHandle {
    /// The worker's screen (in `format`, with up to `scrollback` rows of history).
    pub async fn snapshot(
        &self,
        worker: &str,
        request: impl Into<SnapshotRequest>,
        timeout: Option<Duration>,
    ) -> Result<Snapshot, RequestWorkerError> {
        self.call(worker, &request.into(), timeout).await
    }

    pub async fn get_mode(
        &self,
        worker: &str,
        timeout: Option<Duration>,
    ) -> Result<SessionMode, RequestWorkerError> {
        Ok(self.call(worker, &GetMode::default(), timeout).await?.mode)
    }

    /// Switches the worker's mode; `human → relay` flushes first.
    pub async fn set_mode(
        &self,
        worker: &str,
        mode: SessionMode,
        timeout: Option<Duration>,
    ) -> Result<ModeReply, RequestWorkerError> {
        self.call(worker, &SetMode { mode }, timeout).await
    }

    pub async fn pending(
        &self,
        worker: &str,
        timeout: Option<Duration>,
    ) -> Result<PendingList, RequestWorkerError> {
        self.call(worker, &PendingRequest::default(), timeout).await
    }

    /// Injects every pending message; answers once the last is in.
    pub async fn flush(
        &self,
        worker: &str,
        timeout: Option<Duration>,
    ) -> Result<Flushed, RequestWorkerError> {
        self.call(worker, &FlushRequest::default(), timeout).await
    }

    /// Hands one message straight to a worker. Relay traffic normally goes through
    /// [`send_message`](crate::broker::BrokerHandle::send_message), which keeps the message
    /// in the outbox until it is injected; this is the raw request underneath.
    pub async fn deliver(
        &self,
        worker: &str,
        message: &RelayMessage,
        timeout: Option<Duration>,
    ) -> Result<Delivered, RequestWorkerError> {
        self.call(worker, message, timeout).await
    }
}
