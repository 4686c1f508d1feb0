//! The one correlated request helper (docs/architecture.md, "Requests").
//!
//! Every request/response operation — snapshot, get_mode, set_mode, pending, flush,
//! deliver — goes through [`BrokerHandle::request_worker`]: the broker mints a `request_id`,
//! parks the caller's oneshot in the single [`PendingRequests`] map with a per-request timer,
//! writes the frame to the worker, and routes whatever `response` frame comes back by its id.
//!
//! An entry leaves the map exactly once, by one of: the worker's response
//! ([`PendingRequests::resolve`]), its deadline ([`PendingRequests::expire`]), the worker
//! exiting or its pipe closing ([`PendingRequests::end_worker`]: answered from what the
//! dead worker left where that answers it, failed otherwise), or broker shutdown
//! ([`PendingRequests::fail_all`]). Timers live in a `DelayQueue`, one per entry, so a
//! deadline fires within about a millisecond of its time rather than on a sweep.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::time::{DelayQueue, delay_queue};

use super::{BrokerHandle, Command, WorkerId};
use crate::protocol::requests::{RequestKind, WorkerRequest};
use crate::protocol::{ErrorBody, ResponsePayload};

/// Why a request to a worker did not produce a response.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RequestWorkerError {
    #[error("no worker named {0:?}")]
    WorkerNotFound(String),
    #[error("{worker} did not answer {kind} within {}ms", timeout.as_millis())]
    Timeout {
        worker: String,
        kind: RequestKind,
        timeout: Duration,
    },
    #[error("{worker} answered {kind} with error {code}: {message}")]
    WorkerError {
        worker: String,
        kind: RequestKind,
        code: String,
        message: String,
    },
    #[error("{worker} went away while {kind} was in flight")]
    WorkerDisappeared { worker: String, kind: RequestKind },
    #[error("the broker shut down while the request was in flight")]
    ChannelClosed,
}

impl RequestWorkerError {
    /// The error code used in HTTP bodies and alerts.
    pub fn code(&self) -> &str {
        match self {
            RequestWorkerError::WorkerNotFound(_) => "worker_not_found",
            RequestWorkerError::Timeout { .. } => "worker_timeout",
            RequestWorkerError::WorkerError { code, .. } => code,
            RequestWorkerError::WorkerDisappeared { .. } => "worker_disappeared",
            RequestWorkerError::ChannelClosed => "broker_shutting_down",
        }
    }
}

pub type RequestResult = Result<Value, RequestWorkerError>;

/// Default deadline of a request, overridable per call and in config.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Who waits for a request's result: a caller, through its channel; or the broker task
/// itself, which gets its token back with the result from [`PendingRequests::take_settled`]
/// after whatever settled it — no task is spawned to carry the result back.
pub enum Waiter<T> {
    Caller(oneshot::Sender<RequestResult>),
    Broker(T),
}

/// A request in flight: who asked, of whom, what, and the timer that will fail it.
pub struct PendingRequest<T> {
    worker: WorkerId,
    worker_name: String,
    kind: RequestKind,
    /// What was asked, kept for the kinds that can be answered after the worker is gone.
    payload: Option<Value>,
    timeout: Duration,
    waiter: Waiter<T>,
    timer: delay_queue::Key,
}

/// The single map of requests in flight, owned by the broker task. `T` is what the broker
/// remembers of its own requests.
pub struct PendingRequests<T> {
    entries: HashMap<u64, PendingRequest<T>>,
    timers: DelayQueue<u64>,
    next_id: u64,
    /// The broker's own requests settled since the last [`Self::take_settled`].
    settled: Vec<(T, RequestResult)>,
}

impl<T> Default for PendingRequests<T> {
    fn default() -> Self {
        PendingRequests {
            entries: HashMap::new(),
            timers: DelayQueue::new(),
            next_id: 0,
            settled: Vec::new(),
        }
    }
}

impl<T> PendingRequests<T> {
    /// Hands `result` to whoever waits for it.
    fn settle(&mut self, waiter: Waiter<T>, result: RequestResult) {
        match waiter {
            Waiter::Caller(reply) => drop(reply.send(result)),
            Waiter::Broker(token) => self.settled.push((token, result)),
        }
    }

    /// Answers a request that could not even be sent.
    pub fn refuse(&mut self, waiter: Waiter<T>, error: RequestWorkerError) {
        self.settle(waiter, Err(error));
    }

    /// Answers a request that was never sent (the broker already knows the answer).
    pub fn answer(&mut self, waiter: Waiter<T>, value: Value) {
        self.settle(waiter, Ok(value));
    }

    /// The broker's own requests settled since the last call, with their results.
    pub fn take_settled(&mut self) -> Vec<(T, RequestResult)> {
        std::mem::take(&mut self.settled)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Parks `reply` and returns the minted wire `request_id`. `payload` is kept only for
    /// [`Self::end_worker`]'s answers.
    pub fn insert(
        &mut self,
        worker: WorkerId,
        worker_name: &str,
        kind: RequestKind,
        payload: Option<Value>,
        timeout: Duration,
        waiter: Waiter<T>,
    ) -> String {
        self.next_id += 1;
        let id = self.next_id;
        let timer = self.timers.insert(id, timeout);
        self.entries.insert(
            id,
            PendingRequest {
                worker,
                worker_name: worker_name.to_string(),
                kind,
                payload,
                timeout,
                waiter,
                timer,
            },
        );
        id.to_string()
    }

    /// Routes a `response` frame from `worker` to its caller and says how it ended: `None`
    /// (the caller logs and drops the frame) when no request of that worker has this id —
    /// late, duplicate or made up; `Some(Err)` when the worker answered with an error.
    pub fn resolve(
        &mut self,
        worker: WorkerId,
        request_id: &str,
        response: ResponsePayload,
    ) -> Option<Result<(), RequestWorkerError>> {
        let id = request_id.parse::<u64>().ok()?;
        match self.entries.get(&id) {
            Some(entry) if entry.worker == worker => {}
            _ => return None,
        }
        let entry = self.entries.remove(&id).expect("checked above");
        self.timers.remove(&entry.timer);
        let result = match (response.ok, response.error) {
            (_, Some(ErrorBody { code, message })) => Err(RequestWorkerError::WorkerError {
                worker: entry.worker_name,
                kind: entry.kind,
                code,
                message,
            }),
            (Some(ok), None) => Ok(ok),
            (None, None) => Err(RequestWorkerError::WorkerError {
                worker: entry.worker_name,
                kind: entry.kind,
                code: "bad_response".into(),
                message: "response carried neither ok nor error".into(),
            }),
        };
        let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
        self.settle(entry.waiter, result);
        Some(outcome)
    }

    /// Fails one request with `error`, e.g. when its frame could not be written.
    pub fn fail(&mut self, request_id: &str, error: RequestWorkerError) {
        if let Some(entry) = request_id
            .parse::<u64>()
            .ok()
            .and_then(|id| self.entries.remove(&id))
        {
            self.timers.remove(&entry.timer);
            self.settle(entry.waiter, Err(error));
        }
    }

    /// Waits for the next deadline and fails that request with `Timeout`. Pending forever
    /// while the map is empty, so it can sit in the broker's `select!`.
    pub async fn next_expired(&mut self) -> RequestWorkerError {
        loop {
            match self.timers.next().await {
                Some(expired) => {
                    let id = expired.into_inner();
                    if let Some(entry) = self.entries.remove(&id) {
                        let error = RequestWorkerError::Timeout {
                            worker: entry.worker_name,
                            kind: entry.kind,
                            timeout: entry.timeout,
                        };
                        self.settle(entry.waiter, Err(error.clone()));
                        return error;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// Ends every request in flight to `worker`, which is gone: one that `answer` answers
    /// from what the worker left (kind and payload in, result out) gets that; the rest fail
    /// with `WorkerDisappeared`, and their errors are returned.
    pub fn end_worker(
        &mut self,
        worker: WorkerId,
        answer: impl Fn(RequestKind, &Value) -> Option<Value>,
    ) -> Vec<RequestWorkerError> {
        let ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.worker == worker)
            .map(|(id, _)| *id)
            .collect();
        let mut errors = Vec::new();
        for id in ids {
            let Some(entry) = self.entries.remove(&id) else {
                continue;
            };
            self.timers.remove(&entry.timer);
            if let Some(value) = entry.payload.as_ref().and_then(|p| answer(entry.kind, p)) {
                self.settle(entry.waiter, Ok(value));
                continue;
            }
            let error = RequestWorkerError::WorkerDisappeared {
                worker: entry.worker_name,
                kind: entry.kind,
            };
            self.settle(entry.waiter, Err(error.clone()));
            errors.push(error);
        }
        errors
    }

    /// Fails every caller's request with `ChannelClosed` (broker shutdown); the broker's own
    /// end with it.
    pub fn fail_all(&mut self) {
        for (_, entry) in self.entries.drain() {
            if let Waiter::Caller(reply) = entry.waiter {
                let _ = reply.send(Err(RequestWorkerError::ChannelClosed));
            }
        }
        self.timers.clear();
        self.settled.clear();
    }
}

impl BrokerHandle {
    /// Sends a `kind` request with `payload` to the worker named `worker` and waits for its
    /// response, at most `timeout` (the broker's configured default when `None`).
    pub async fn request_worker(
        &self,
        worker: &str,
        kind: RequestKind,
        payload: Value,
        timeout: Option<Duration>,
    ) -> RequestResult {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Request {
            worker: worker.to_string(),
            kind,
            payload,
            timeout,
            reply,
        })
        .await
        .map_err(|_| RequestWorkerError::ChannelClosed)?;
        rx.await.unwrap_or(Err(RequestWorkerError::ChannelClosed))
    }

    /// The typed form of [`request_worker`](Self::request_worker): encodes `request`, decodes
    /// the `ok` payload into its response type. A response of the wrong shape is a
    /// `WorkerError` with code `bad_response`.
    pub async fn call<R: WorkerRequest>(
        &self,
        worker: &str,
        request: &R,
        timeout: Option<Duration>,
    ) -> Result<R::Response, RequestWorkerError> {
        let payload = serde_json::to_value(request).expect("request payloads serialize");
        let ok = self
            .request_worker(worker, R::KIND, payload, timeout)
            .await?;
        serde_json::from_value(ok).map_err(|e| RequestWorkerError::WorkerError {
            worker: worker.to_string(),
            kind: R::KIND,
            code: "bad_response".into(),
            message: e.to_string(),
        })
    }
}
