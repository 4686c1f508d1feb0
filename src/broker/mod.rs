//! The broker: one task that owns every worker, the single pending-request map and the
//! subscribers; everything else talks to it through a cloneable [`BrokerHandle`].
//!
//! ```text
//!  TUI / HTTP ──► BrokerHandle ──Command──► broker task ──stdin──► brokertui worker (one per PTY)
//!     ▲   ▲                                   │    ▲                        │
//!     │   └────────── events (broadcast) ◄────┘    └─ WorkerMsg ◄─┐          │ stdout
//!     └── output (feed, credit back to the worker) ◄─── reader task ◄────────┘
//! ```
//!
//! Layout: [`actor`] is the task and its `select!` loop (its methods split by what they react
//! to); [`request`] the correlated request helper; [`process`] the worker child processes;
//! [`feed`] a worker's output and its flow control; [`relay`] the message outbox and
//! [`store`] its durable copy; [`events`] what subscribers receive.

mod actor;
mod calls;
pub mod events;
pub mod feed;
pub mod fleet;
pub mod history;
pub mod process;
mod relay;
pub mod request;
pub mod store;
mod workspaces;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use events::{
    Event, EventKind, EventSubscription, OutputChunk, Received, Severity, Subscription,
};
pub use feed::OutputSubscription;
pub use request::{DEFAULT_TIMEOUT, RequestWorkerError};
pub use workspaces::ReleaseOptions;

use crate::protocol::requests::RequestKind;
use crate::protocol::requests::deliver::When;
use crate::protocol::{AgentReport, ExitedPayload, HookPayload, SessionMode};

/// Identity of one worker process; a name can be reused by later workers, an id never.
pub type WorkerId = u64;

/// Extra environment for a worker's command, computed from its name (the API URL and the
/// worker's own token).
pub type WorkerEnvFn = Arc<dyn Fn(&str) -> Vec<(String, String)> + Send + Sync>;

/// Called (on the broker task, in order with spawns) when a worker's program has ended or
/// the worker was released: what was issued for it by name (its token) is revoked.
pub type WorkerGoneFn = Arc<dyn Fn(&str) + Send + Sync>;

/// How long before an idle release the warning comes, unless configured.
pub const DEFAULT_IDLE_WARNING: Duration = Duration::from_secs(60);

/// How the broker runs.
#[derive(Clone)]
pub struct BrokerConfig {
    /// The `brokertui` binary to run as `brokertui worker`.
    pub worker_exe: PathBuf,
    /// Where each worker's stderr log goes (`<dir>/<name>.log`); `None` discards it.
    pub log_dir: Option<PathBuf>,
    pub request_timeout: Duration,
    pub inject_template: String,
    pub settle: Duration,
    /// How long a released worker's child gets between SIGHUP and SIGKILL.
    pub release_grace: Duration,
    pub worker_env: Option<WorkerEnvFn>,
    pub worker_gone: Option<WorkerGoneFn>,
    /// Durable events kept for `subscribe_since` (the WebSocket's `?since=`).
    pub replay_events: usize,
    /// Agent kinds' rules (built-ins plus the config's overrides).
    pub agents: Arc<crate::agent::Catalog>,
    /// Where per-worker agent settings (hooks) are written; `None` installs no hooks.
    pub hooks_dir: Option<PathBuf>,
    /// How worktrees are made.
    pub worktree: crate::workspace::WorktreeConfig,
    /// Release workers idle this long with nobody attached (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// How long before an idle release the alert comes.
    pub idle_warning: Duration,
    /// The outer terminal's colours, which workers report to programs that ask.
    pub terminal_colors: Option<crate::protocol::worker_args::TerminalColors>,
}

impl BrokerConfig {
    pub fn new(worker_exe: PathBuf) -> Self {
        BrokerConfig {
            worker_exe,
            log_dir: None,
            request_timeout: DEFAULT_TIMEOUT,
            inject_template: crate::protocol::worker_args::DEFAULT_TEMPLATE.to_string(),
            settle: crate::protocol::worker_args::DEFAULT_SETTLE,
            release_grace: Duration::from_millis(500),
            worker_env: None,
            worker_gone: None,
            replay_events: 10_000,
            agents: Arc::new(crate::agent::Catalog::default()),
            hooks_dir: None,
            worktree: Default::default(),
            idle_timeout: None,
            idle_warning: DEFAULT_IDLE_WARNING,
            terminal_colors: None,
        }
    }
}

/// What to spawn.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpawnSpec {
    pub name: String,
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SessionMode>,
    /// The agent kind (default: from the command's basename).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Run it in its own git worktree (`true`, or the branch to use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<crate::workspace::WorktreeChoice>,
    /// Release it after this long idle with nobody attached (overrides the broker's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Process started, `ready` not yet received.
    Starting,
    Running,
    /// Release requested; the worker is ending its session.
    Releasing,
    Exited,
}

/// A worker as listed by the broker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerInfo {
    pub name: String,
    /// The PTY child's pid (known once the worker is ready).
    pub pid: Option<u32>,
    /// The `brokertui worker` process's pid.
    pub worker_pid: u32,
    pub cmd: Vec<String>,
    pub rows: u16,
    pub cols: u16,
    pub mode: SessionMode,
    pub state: WorkerState,
    pub started_at_ms: u64,
    /// Relay messages accepted for this worker and not yet injected.
    pub undelivered: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitedPayload>,
    /// What its agent is doing.
    pub agent: AgentReport,
    /// Its own git worktree, if it runs in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<crate::workspace::Worktree>,
    /// Where it runs (`None`: the broker's own working directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Started again by a broker restart (from the saved fleet).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restored: bool,
}

/// Errors of the non-request operations.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    #[error("no worker named {0:?}")]
    WorkerNotFound(String),
    #[error("a worker named {0:?} is already running")]
    NameTaken(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("could not start the worker: {0}")]
    SpawnFailed(String),
    #[error("{name}: {reason}")]
    WorkerUnavailable { name: String, reason: String },
    #[error("{name}: {reason}")]
    WorkerBusy { name: String, reason: String },
    #[error("the broker is shutting down")]
    ShuttingDown,
    #[error(
        "not accepted: the message journal cannot grow ({0}); free space under the state dir and send again"
    )]
    JournalFull(String),
    #[error("not accepted: the message journal cannot be written ({0})")]
    JournalUnavailable(String),
    /// A worktree would take work with it; nothing was released or removed.
    #[error("not released: {0}")]
    WouldLoseWork(String),
    /// A worktree or diff could not be made.
    #[error("{0}")]
    Workspace(String),
}

impl From<store::WriteError> for BrokerError {
    fn from(e: store::WriteError) -> Self {
        match e {
            store::WriteError::Full(m) => BrokerError::JournalFull(m),
            other => BrokerError::JournalUnavailable(other.to_string()),
        }
    }
}

impl BrokerError {
    pub fn code(&self) -> &'static str {
        match self {
            BrokerError::WorkerNotFound(_) => "worker_not_found",
            BrokerError::NameTaken(_) => "name_taken",
            BrokerError::InvalidRequest(_) => "invalid_request",
            BrokerError::SpawnFailed(_) => "spawn_failed",
            BrokerError::WorkerUnavailable { .. } => "worker_unavailable",
            BrokerError::WorkerBusy { .. } => "input_backlog",
            BrokerError::ShuttingDown => "broker_shutting_down",
            BrokerError::JournalFull(_) => "journal_full",
            BrokerError::JournalUnavailable(_) => "journal_unavailable",
            BrokerError::WouldLoseWork(_) => "worktree_has_work",
            BrokerError::Workspace(_) => "workspace_failed",
        }
    }
}

/// A message accepted for relay.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Accepted {
    pub id: String,
    pub recipients: Vec<String>,
}

type Reply<T> = oneshot::Sender<T>;

/// Everything the broker task can be asked. Queries carry a oneshot for the answer.
pub(crate) enum Command {
    Spawn(Box<Launch>, Reply<Result<WorkerInfo, BrokerError>>),
    Release(String, Reply<Result<(), BrokerError>>),
    Restart(String, Reply<Result<WorkerInfo, BrokerError>>),
    List(Reply<Vec<WorkerInfo>>),
    Input(String, Vec<u8>, Reply<Result<(), BrokerError>>),
    Resize(String, u16, u16, Reply<Result<(), BrokerError>>),
    Send {
        from: String,
        to: String,
        body: String,
        when: Option<When>,
        reply: Reply<Result<Accepted, BrokerError>>,
    },
    Hook(String, HookPayload, Reply<Result<(), BrokerError>>),
    Messages(Reply<Vec<history::MessageRecord>>),
    Request {
        worker: String,
        kind: RequestKind,
        payload: serde_json::Value,
        timeout: Option<Duration>,
        reply: Reply<request::RequestResult>,
    },
    SubscribeOutput(String, Reply<Result<OutputSubscription, BrokerError>>),
    SubscribeSince(u64, Reply<Replay>),
    Stats(Reply<Stats>),
    Undelivered(Reply<Vec<Undelivered>>),
    DropMessage(String, Reply<usize>),
    Shutdown(Reply<()>),
}

/// A spawn as the broker task takes it: the spec, and what was prepared for it before.
pub(crate) struct Launch {
    pub spec: SpawnSpec,
    /// The worktree it runs in (made or found before the task saw it).
    pub worktree: Option<crate::workspace::Worktree>,
    /// Run before the program, in its pane (a new worktree's setup command).
    pub setup: Option<String>,
    /// Said as alerts once it is spawned.
    pub warnings: Vec<String>,
    /// Started again from the saved fleet.
    pub restored: bool,
}

/// Durable events after a given `seq`, and a live subscription that continues exactly
/// where they end.
pub struct Replay {
    pub events: Vec<Arc<Event>>,
    /// Events after `since` were already dropped from the bounded replay buffer.
    pub gap: bool,
    pub live: EventSubscription,
}

/// A message accepted and not yet injected.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Undelivered {
    pub to: String,
    #[serde(flatten)]
    pub message: crate::protocol::requests::deliver::RelayMessage,
    /// `sending`, `in_worker` (queued inside the worker) or `waiting` (for a worker of that name).
    pub state: String,
}

/// Counters for `/health` and tests.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stats {
    pub workers: usize,
    pub pending_requests: usize,
    pub undelivered_messages: usize,
}

/// The cheap, cloneable way to talk to the broker task.
#[derive(Clone)]
pub struct BrokerHandle {
    tx: mpsc::Sender<Command>,
    events: tokio::sync::broadcast::Sender<Arc<Event>>,
    config: Arc<BrokerConfig>,
}

impl BrokerHandle {
    /// Starts the broker task on the current tokio runtime.
    pub fn start(config: BrokerConfig) -> BrokerHandle {
        actor::start(config, None)
    }

    /// Starts the broker with a durable store (`--serve`): what it held is owed again, and
    /// every message is committed to it before it is accepted.
    pub fn start_with_store(
        config: BrokerConfig,
        store: store::Store,
        loaded: store::Loaded,
    ) -> BrokerHandle {
        actor::start(config, Some((store, loaded)))
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub(crate) async fn command(&self, cmd: Command) -> Result<(), BrokerError> {
        self.tx
            .send(cmd)
            .await
            .map_err(|_| BrokerError::ShuttingDown)
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, BrokerError> {
        let (reply, rx) = oneshot::channel();
        self.command(make(reply)).await?;
        rx.await.map_err(|_| BrokerError::ShuttingDown)
    }

    /// Starts a worker — in its own worktree if the spec asks — and returns once its process
    /// is running (before its `ready`).
    pub async fn spawn(&self, spec: SpawnSpec) -> Result<WorkerInfo, BrokerError> {
        self.spawn_in_workspace(spec).await
    }

    pub(crate) async fn launch(&self, launch: Launch) -> Result<WorkerInfo, BrokerError> {
        self.ask(|r| Command::Spawn(Box::new(launch), r)).await?
    }

    /// Ends a worker's session (SIGHUP, grace, SIGKILL) and forgets it; returns once gone.
    /// Its worktree, if any, is kept (see [`BrokerHandle::release_with`]).
    pub async fn release(&self, name: &str) -> Result<(), BrokerError> {
        self.ask(|r| Command::Release(name.to_string(), r)).await?
    }

    /// Starts an exited worker again as it was started (name, command, directory or worktree,
    /// environment, mode); messages held for its name go to the new one.
    pub async fn restart(&self, name: &str) -> Result<WorkerInfo, BrokerError> {
        self.ask(|r| Command::Restart(name.to_string(), r)).await?
    }

    pub async fn list(&self) -> Result<Vec<WorkerInfo>, BrokerError> {
        self.ask(Command::List).await
    }

    pub async fn info(&self, name: &str) -> Result<WorkerInfo, BrokerError> {
        self.list()
            .await?
            .into_iter()
            .find(|w| w.name == name)
            .ok_or_else(|| BrokerError::WorkerNotFound(name.to_string()))
    }

    /// Types `bytes` into the worker's PTY (held while an injection is under way).
    pub async fn input(&self, name: &str, bytes: impl Into<Vec<u8>>) -> Result<(), BrokerError> {
        let bytes = bytes.into();
        self.ask(|r| Command::Input(name.to_string(), bytes, r))
            .await?
    }

    pub async fn resize(&self, name: &str, rows: u16, cols: u16) -> Result<(), BrokerError> {
        self.ask(|r| Command::Resize(name.to_string(), rows, cols, r))
            .await?
    }

    /// Accepts a relay message from `from` to a worker name or `*` (every worker but the
    /// sender). Delivery continues in the background; watch `delivery` events.
    pub async fn send_message(
        &self,
        from: &str,
        to: &str,
        body: &str,
    ) -> Result<Accepted, BrokerError> {
        self.send_message_when(from, to, body, None).await
    }

    /// [`send_message`](Self::send_message) with an explicit `when` (see `docs/agents.md`).
    pub async fn send_message_when(
        &self,
        from: &str,
        to: &str,
        body: &str,
        when: Option<When>,
    ) -> Result<Accepted, BrokerError> {
        self.ask(|reply| Command::Send {
            from: from.to_string(),
            to: to.to_string(),
            body: body.to_string(),
            when,
            reply,
        })
        .await?
    }

    /// Passes an event from the agent's own hook to worker `name`.
    pub async fn hook(&self, name: &str, hook: HookPayload) -> Result<(), BrokerError> {
        self.ask(|r| Command::Hook(name.to_string(), hook, r))
            .await?
    }

    /// Recent messages with their delivery state, owed ones first.
    pub async fn messages(&self) -> Result<Vec<history::MessageRecord>, BrokerError> {
        self.ask(Command::Messages).await
    }

    /// Lifecycle, mode, delivery and alert events from now on.
    pub fn subscribe(&self) -> EventSubscription {
        events::Subscription::new(self.events.subscribe())
    }

    /// A worker's output chunks from now on. Pair with a snapshot to start from a full
    /// screen: apply only chunks whose offset is at or past the snapshot's.
    pub async fn subscribe_output(&self, name: &str) -> Result<OutputSubscription, BrokerError> {
        self.ask(|r| Command::SubscribeOutput(name.to_string(), r))
            .await?
    }

    /// Replays retained events with `seq > since`, then continues live. Output chunks are
    /// not replayed (resync a screen with a snapshot instead).
    pub async fn subscribe_since(&self, since: u64) -> Result<Replay, BrokerError> {
        self.ask(|r| Command::SubscribeSince(since, r)).await
    }

    /// Messages accepted and not yet injected, oldest first per worker.
    pub async fn undelivered(&self) -> Result<Vec<Undelivered>, BrokerError> {
        self.ask(Command::Undelivered).await
    }

    /// Gives up on message `id` (for every recipient still owed it); returns how many copies
    /// were dropped. A copy already queued inside a worker stays there.
    pub async fn drop_message(&self, id: &str) -> Result<usize, BrokerError> {
        self.ask(|r| Command::DropMessage(id.to_string(), r)).await
    }

    pub async fn stats(&self) -> Result<Stats, BrokerError> {
        self.ask(Command::Stats).await
    }

    /// Fails requests in flight with `ChannelClosed`, ends every worker, stops the task.
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }
}

/// Worker names: what `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}` allows.
pub fn validate_name(name: &str) -> Result<(), BrokerError> {
    if crate::agent::RESERVED_NAMES.contains(&name) {
        return Err(BrokerError::InvalidRequest(format!(
            "{name:?} is reserved (it names the human or the broker in messages); pick another worker name"
        )));
    }
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(BrokerError::InvalidRequest(format!(
            "invalid worker name {:?}: use 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit",
            name.chars().take(80).collect::<String>()
        )))
    }
}
