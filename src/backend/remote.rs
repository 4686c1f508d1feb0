//! [`Backend`] over a broker's HTTP API and WebSocket (`--connect`, `ctl attach`).

use std::sync::Arc;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{Backend, Q, R};
use crate::broker::{
    Accepted, BrokerError, Event, EventSubscription, OutputChunk, OutputSubscription,
    ReleaseOptions, RequestWorkerError, SpawnSpec, Subscription, WorkerInfo,
};
use crate::client::{CallError, Client};
use crate::protocol::SessionMode;
use crate::protocol::requests::RequestKind;
use crate::protocol::requests::mode::ModeReply;
use crate::protocol::requests::pending::PendingList;
use crate::protocol::requests::snapshot::{Snapshot, SnapshotRequest};
use crate::workspace::OnRelease;
use crate::workspace::diff::Diff;

/// A broker reached over its API.
#[derive(Clone)]
pub struct RemoteBroker {
    client: Arc<Client>,
}

/// Output chunks buffered per remote subscription before the TUI is told it lagged.
const REMOTE_OUTPUT_BUFFER: usize = 512;

impl RemoteBroker {
    pub fn new(client: Client) -> Self {
        RemoteBroker {
            client: Arc::new(client),
        }
    }

    /// `name` as the broker lists it now (after a spawn or restart).
    async fn listed(&self, name: &str) -> R<WorkerInfo> {
        self.list()
            .await?
            .into_iter()
            .find(|w| w.name == name)
            .ok_or_else(|| BrokerError::WorkerNotFound(name.to_string()))
    }

    pub fn url(&self) -> &str {
        &self.client.url
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, CallError> {
        let v = self.client.call(method, path, body).await?;
        serde_json::from_value(v).map_err(|e| CallError {
            status: 200,
            code: "bad_response".into(),
            message: e.to_string(),
        })
    }

    /// Opens `/api/events?query` and feeds each frame `f` accepts into a broadcast channel.
    async fn stream<T: Clone + Send + 'static>(
        &self,
        query: &str,
        capacity: usize,
        f: impl Fn(Value) -> Option<T> + Send + 'static,
    ) -> R<Subscription<T>> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = self
            .client
            .ws_url(&format!("/api/events?{query}"))
            .into_client_request()
            .map_err(|e| BrokerError::InvalidRequest(e.to_string()))?;
        let auth = format!("Bearer {}", self.client.token())
            .parse()
            .map_err(|_| BrokerError::InvalidRequest("token is not a valid header".into()))?;
        req.headers_mut().insert("authorization", auth);
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| {
            BrokerError::WorkerUnavailable {
                name: "broker".into(),
                reason: e.to_string(),
            }
        })?;
        let (tx, rx) = broadcast::channel(capacity);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let Ok(text) = msg.to_text() else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                if let Some(item) = f(v)
                    && tx.send(item).is_err()
                {
                    break; // nobody listens any more
                }
            }
        });
        Ok(Subscription::new(rx))
    }
}

fn broker_err(e: CallError) -> BrokerError {
    match (e.status, e.code.as_str()) {
        (404, _) => BrokerError::WorkerNotFound(e.message),
        (409, "name_taken") => BrokerError::NameTaken(e.message),
        (409, "worktree_has_work") => BrokerError::WouldLoseWork(e.message),
        (422, "workspace_failed") => BrokerError::Workspace(e.message),
        (400, _) | (413, _) => BrokerError::InvalidRequest(e.message),
        (422, _) => BrokerError::SpawnFailed(e.message),
        (503, "broker_shutting_down") => BrokerError::ShuttingDown,
        // Unreachable (status 0) is not "shutting down": it says what it is below.
        _ => BrokerError::WorkerUnavailable {
            name: "broker".into(),
            reason: e.to_string(),
        },
    }
}

fn request_err(worker: &str, kind: RequestKind, e: CallError) -> RequestWorkerError {
    match (e.status, e.code.as_str()) {
        (404, _) => RequestWorkerError::WorkerNotFound(worker.to_string()),
        (504, _) => RequestWorkerError::Timeout {
            worker: worker.to_string(),
            kind,
            timeout: crate::broker::DEFAULT_TIMEOUT,
        },
        (503, "worker_disappeared") => RequestWorkerError::WorkerDisappeared {
            worker: worker.to_string(),
            kind,
        },
        (0, _) | (503, _) => RequestWorkerError::ChannelClosed,
        _ => RequestWorkerError::WorkerError {
            worker: worker.to_string(),
            kind,
            code: e.code,
            message: e.message,
        },
    }
}

impl Backend for RemoteBroker {
    async fn spawn(&self, spec: SpawnSpec) -> R<WorkerInfo> {
        let name = spec.name.clone();
        let body = serde_json::to_value(&spec).expect("spec serializes");
        self.client
            .call(Method::POST, "/api/spawn", Some(body))
            .await
            .map_err(broker_err)?;
        self.listed(&name).await
    }
    async fn release(&self, name: &str, opts: ReleaseOptions) -> R<()> {
        let query = match (opts.worktree, opts.force) {
            (OnRelease::Keep, _) => "",
            (OnRelease::Remove, false) => "?worktree=remove",
            (OnRelease::Remove, true) => "?worktree=remove&force=true",
        };
        self.client
            .call(Method::DELETE, &format!("/api/spawned/{name}{query}"), None)
            .await
            .map_err(broker_err)?;
        Ok(())
    }
    async fn restart(&self, name: &str) -> R<WorkerInfo> {
        self.client
            .call(Method::POST, &format!("/api/spawned/{name}/restart"), None)
            .await
            .map_err(broker_err)?;
        self.listed(name).await
    }
    async fn diff(&self, name: &str) -> R<Diff> {
        self.call(Method::GET, &format!("/api/spawned/{name}/diff"), None)
            .await
            .map_err(broker_err)
    }
    async fn list(&self) -> R<Vec<WorkerInfo>> {
        #[derive(serde::Deserialize)]
        struct List {
            workers: Vec<WorkerInfo>,
        }
        Ok(self
            .call::<List>(Method::GET, "/api/spawned", None)
            .await
            .map_err(broker_err)?
            .workers)
    }
    async fn input(&self, name: &str, bytes: Vec<u8>) -> R<()> {
        let body = serde_json::to_value(crate::protocol::InputPayload::from_bytes(&bytes))
            .expect("serializes");
        self.client
            .call(Method::POST, &format!("/api/input/{name}"), Some(body))
            .await
            .map_err(broker_err)?;
        Ok(())
    }
    async fn resize(&self, name: &str, rows: u16, cols: u16) -> R<()> {
        let body = json!({"rows": rows, "cols": cols});
        self.client
            .call(Method::POST, &format!("/api/resize/{name}"), Some(body))
            .await
            .map_err(broker_err)?;
        Ok(())
    }
    async fn send_message(&self, from: &str, to: &str, body: &str) -> R<Accepted> {
        let msg = json!({"to": to, "body": body, "from": from});
        self.call(Method::POST, "/api/send", Some(msg))
            .await
            .map_err(broker_err)
    }
    async fn subscribe(&self) -> R<EventSubscription> {
        self.stream("", 4096, |v| {
            serde_json::from_value::<Event>(v).ok().map(Arc::new)
        })
        .await
    }
    async fn subscribe_output(&self, name: &str) -> R<OutputSubscription> {
        let worker: Arc<str> = Arc::from(name);
        self.stream(&format!("output={name}"), REMOTE_OUTPUT_BUFFER, move |v| {
            if v["type"] != "output" {
                return None; // the TUI takes its own snapshot; offsets line the two up
            }
            Some(OutputChunk {
                seq: v["seq"].as_u64()?,
                worker: worker.clone(),
                offset: v["offset"].as_u64()?,
                data: crate::b64::decode(v["data_b64"].as_str()?).ok()?.into(),
            })
        })
        .await
        .map(OutputSubscription::from)
    }
    async fn snapshot(&self, name: &str, request: SnapshotRequest) -> Q<Snapshot> {
        let f = serde_json::to_value(request.format).expect("serializes");
        let mut path = format!(
            "/api/spawned/{name}/snapshot?format={}",
            f.as_str().unwrap_or("plain")
        );
        if request.scrollback > 0 {
            path.push_str(&format!("&scrollback={}", request.scrollback));
        }
        self.call(Method::GET, &path, None)
            .await
            .map_err(|e| request_err(name, RequestKind::Snapshot, e))
    }
    async fn pending(&self, name: &str) -> Q<PendingList> {
        self.call(Method::GET, &format!("/api/spawned/{name}/pending"), None)
            .await
            .map_err(|e| request_err(name, RequestKind::Pending, e))
    }
    async fn flush(&self, name: &str) -> Q<usize> {
        let v: Value = self
            .call(Method::POST, &format!("/api/spawned/{name}/flush"), None)
            .await
            .map_err(|e| request_err(name, RequestKind::Flush, e))?;
        Ok(v["flushed"].as_u64().unwrap_or(0) as usize)
    }
    async fn set_mode(&self, name: &str, mode: SessionMode) -> Q<ModeReply> {
        self.call(
            Method::PUT,
            &format!("/api/spawned/{name}/mode"),
            Some(json!({ "mode": mode })),
        )
        .await
        .map_err(|e| request_err(name, RequestKind::SetMode, e))
    }
}
