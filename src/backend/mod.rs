//! What a front end needs from a broker, whether it runs in-process ([`BrokerHandle`]) or
//! behind the HTTP API ([`remote::RemoteBroker`]): the TUI is written against [`Backend`]
//! only, so `brokertui --connect` and `ctl attach` are the same TUI over the network.

pub mod remote;

use std::future::Future;

use crate::broker::{
    Accepted, BrokerError, BrokerHandle, EventSubscription, OutputSubscription, ReleaseOptions,
    RequestWorkerError, SpawnSpec, WorkerInfo,
};
use crate::protocol::SessionMode;
use crate::protocol::requests::mode::ModeReply;
use crate::protocol::requests::pending::PendingList;
use crate::protocol::requests::snapshot::{Snapshot, SnapshotRequest};
use crate::workspace::diff::Diff;

pub use remote::RemoteBroker;

type R<T> = Result<T, BrokerError>;
type Q<T> = Result<T, RequestWorkerError>;

pub trait Backend: Clone + Send + Sync + 'static {
    fn spawn(&self, spec: SpawnSpec) -> impl Future<Output = R<WorkerInfo>> + Send;
    fn release(&self, name: &str, opts: ReleaseOptions) -> impl Future<Output = R<()>> + Send;
    fn diff(&self, name: &str) -> impl Future<Output = R<Diff>> + Send;
    fn restart(&self, name: &str) -> impl Future<Output = R<WorkerInfo>> + Send;
    fn list(&self) -> impl Future<Output = R<Vec<WorkerInfo>>> + Send;
    fn input(&self, name: &str, bytes: Vec<u8>) -> impl Future<Output = R<()>> + Send;
    fn resize(&self, name: &str, rows: u16, cols: u16) -> impl Future<Output = R<()>> + Send;
    fn send_message(
        &self,
        from: &str,
        to: &str,
        body: &str,
    ) -> impl Future<Output = R<Accepted>> + Send;
    fn subscribe(&self) -> impl Future<Output = R<EventSubscription>> + Send;
    fn subscribe_output(&self, name: &str) -> impl Future<Output = R<OutputSubscription>> + Send;
    fn snapshot(
        &self,
        name: &str,
        request: SnapshotRequest,
    ) -> impl Future<Output = Q<Snapshot>> + Send;
    fn pending(&self, name: &str) -> impl Future<Output = Q<PendingList>> + Send;
    fn flush(&self, name: &str) -> impl Future<Output = Q<usize>> + Send;
    fn set_mode(&self, name: &str, mode: SessionMode) -> impl Future<Output = Q<ModeReply>> + Send;
}

impl Backend for BrokerHandle {
    async fn spawn(&self, spec: SpawnSpec) -> R<WorkerInfo> {
        BrokerHandle::spawn(self, spec).await
    }
    async fn release(&self, name: &str, opts: ReleaseOptions) -> R<()> {
        BrokerHandle::release_with(self, name, opts).await
    }
    async fn diff(&self, name: &str) -> R<Diff> {
        BrokerHandle::diff(self, name).await
    }
    async fn restart(&self, name: &str) -> R<WorkerInfo> {
        BrokerHandle::restart(self, name).await
    }
    async fn list(&self) -> R<Vec<WorkerInfo>> {
        BrokerHandle::list(self).await
    }
    async fn input(&self, name: &str, bytes: Vec<u8>) -> R<()> {
        BrokerHandle::input(self, name, bytes).await
    }
    async fn resize(&self, name: &str, rows: u16, cols: u16) -> R<()> {
        BrokerHandle::resize(self, name, rows, cols).await
    }
    async fn send_message(&self, from: &str, to: &str, body: &str) -> R<Accepted> {
        BrokerHandle::send_message(self, from, to, body).await
    }
    async fn subscribe(&self) -> R<EventSubscription> {
        Ok(BrokerHandle::subscribe(self))
    }
    async fn subscribe_output(&self, name: &str) -> R<OutputSubscription> {
        BrokerHandle::subscribe_output(self, name).await
    }
    async fn snapshot(&self, name: &str, request: SnapshotRequest) -> Q<Snapshot> {
        BrokerHandle::snapshot(self, name, request, None).await
    }
    async fn pending(&self, name: &str) -> Q<PendingList> {
        BrokerHandle::pending(self, name, None).await
    }
    async fn flush(&self, name: &str) -> Q<usize> {
        Ok(BrokerHandle::flush(self, name, None).await?.flushed)
    }
    async fn set_mode(&self, name: &str, mode: SessionMode) -> Q<ModeReply> {
        BrokerHandle::set_mode(self, name, mode, None).await
    }
}
