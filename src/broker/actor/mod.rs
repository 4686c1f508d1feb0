//! The broker task: the only owner of workers, pending requests, the outbox and the event
//! streams. Its loop is one `select!` over what it reacts to — commands from handles, frames
//! from workers, its own follow-ups, and request deadlines.
//!
//! Its methods are split by what they react to: [`commands`] (callers, through the handle),
//! [`relay`] (relay messages and the broker's own follow-ups), [`frames`] (what workers say).

mod commands;
mod fleet;
mod frames;
mod idle;
mod relay;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::events::{Event, EventKind, Severity, Subscription};
use super::feed::Feed;
use super::process::{LaunchSpec, ToBroker, WorkerMsg, WorkerProcess};
use super::relay::Outbox;
use super::request::{PendingRequests, RequestResult, RequestWorkerError, Waiter};
use super::{
    Accepted, BrokerConfig, BrokerError, BrokerHandle, Command, Launch, Reply, SpawnSpec, Stats,
    WorkerId, WorkerInfo, WorkerState, validate_name,
};
use crate::protocol::requests::RequestKind;
use crate::protocol::requests::deliver::{Delivered, RelayMessage, When};
use crate::protocol::{
    AgentReport, DeliveryPayload, DeliveryState, Envelope, ErrorBody, ExitedPayload, InputPayload,
    ModeChangedPayload, ReadyPayload, ResizePayload, ResponsePayload, SessionMode, ShutdownPayload,
    decode_payload, frame, from_worker, now_ms, to_worker,
};

const EVENT_BUFFER: usize = 4096;
const WORKER_MSG_BUFFER: usize = 1024;
/// Largest relay message body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a new worker gets to send `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a failed delivery the message is handed over again.
const REDELIVER_AFTER: Duration = Duration::from_millis(500);
/// Extra time after the grace period before a released worker is SIGKILLed.
const FORCE_KILL_AFTER: Duration = Duration::from_secs(2);

/// A `deliver` the broker sent itself, remembered until its result comes back.
struct Delivering {
    worker: String,
    /// The worker process it was handed to: a late answer from a dead one must not speak
    /// for its successor.
    worker_id: WorkerId,
    id: String,
}

/// A request the broker sent itself, remembered until its result comes back.
enum FollowUp {
    Deliver(Delivering),
    /// The idle sweep asked for a screen, to see whether output moved on.
    IdleCheck(WorkerId),
}

/// Follow-ups the broker schedules for itself (on its timer queue), and what the store's
/// writer reports.
enum Internal {
    /// Hand a worker's undelivered messages over again (after a failed delivery).
    Redeliver(String),
    ForceKill(WorkerId),
    ReadyTimeout(WorkerId),
    /// Time to see whether a worker with an idle timeout has been idle long enough.
    IdleDue(WorkerId),
    /// The store committed (or refused) an accepted message's copies.
    Durable {
        accepted: Accepted,
        copies: Vec<(String, RelayMessage)>,
        result: Result<(), crate::broker::store::WriteError>,
        reply: Reply<Result<Accepted, BrokerError>>,
    },
}

struct Worker {
    id: WorkerId,
    name: String,
    cmd: Vec<String>,
    rows: u16,
    cols: u16,
    mode: SessionMode,
    state: WorkerState,
    started_at_ms: u64,
    process: WorkerProcess,
    /// The PTY child's pid (a session leader), from `ready`.
    child_pid: Option<u32>,
    /// The child's own cgroup, from `ready`, if it has one.
    cgroup: Option<std::path::PathBuf>,
    exit: Option<ExitedPayload>,
    /// The process's stdout closed and it was reaped.
    closed: bool,
    /// Its output on the way to subscribers (dropped with the record: they see `Closed`).
    output: Feed,
    spawn_waiter: Option<Reply<Result<WorkerInfo, BrokerError>>>,
    release_waiters: Vec<Reply<Result<(), BrokerError>>>,
    last_error: Option<ErrorBody>,
    agent: AgentReport,
    /// What it was started from, as the saved fleet keeps it.
    spec: SpawnSpec,
    worktree: Option<crate::workspace::Worktree>,
    /// Where it runs (`None`: the broker's own directory).
    cwd: Option<std::path::PathBuf>,
    restored: bool,
    /// The idle sweep's watch on it, if it has an idle timeout.
    idle: Option<idle::IdleWatch>,
    /// The screen its program left (from `last_screen`): snapshots of a dead worker.
    last_screen: Option<Box<crate::protocol::LastScreen>>,
}

struct Broker {
    config: Arc<BrokerConfig>,
    workers: HashMap<WorkerId, Worker>,
    names: HashMap<String, WorkerId>,
    next_worker: WorkerId,
    pending: PendingRequests<FollowUp>,
    /// Every follow-up the broker scheduled for itself, one queue.
    timers: tokio_util::time::DelayQueue<Internal>,
    outbox: Outbox,
    history: crate::broker::history::History,
    events: broadcast::Sender<Arc<Event>>,
    /// Shared with every worker's feed: events and output chunks are numbered from one count.
    seq: Arc<std::sync::atomic::AtomicU64>,
    replay: std::collections::VecDeque<Arc<Event>>,
    /// Highest seq dropped from `replay`: a resume from before it has a gap.
    replay_floor: u64,
    worker_tx: ToBroker,
    internal_tx: mpsc::UnboundedSender<Internal>,
    shutdown_waiters: Option<Vec<Reply<()>>>,
    /// The durable copy of the outbox and the history (`--serve`).
    store: Option<crate::broker::store::Store>,
    /// Session clean-ups of dead workers still running; shutdown completes after them.
    cleanups: Vec<Cleanup>,
}

pub(super) fn start(
    config: BrokerConfig,
    store: Option<(crate::broker::store::Store, crate::broker::store::Loaded)>,
) -> BrokerHandle {
    let (tx, rx) = mpsc::channel(1024);
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let (worker_tx, control_rx) = mpsc::channel(WORKER_MSG_BUFFER);
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let config = Arc::new(config);
    let broker = Broker {
        config: config.clone(),
        workers: HashMap::new(),
        names: HashMap::new(),
        next_worker: 0,
        pending: PendingRequests::default(),
        timers: tokio_util::time::DelayQueue::new(),
        outbox: Outbox::default(),
        history: Default::default(),
        events: events.clone(),
        seq: Default::default(),
        replay: std::collections::VecDeque::new(),
        replay_floor: 0,
        worker_tx,
        internal_tx,
        shutdown_waiters: None,
        store: None,
        cleanups: Vec::new(),
    };
    let mut broker = broker;
    if let Some((store, mut loaded)) = store {
        let fleet = std::mem::take(&mut loaded.fleet);
        broker.restore(loaded);
        broker.store = Some(store);
        broker.restore_fleet(fleet);
    }
    // On the caller's runtime: a dedicated thread with a current-thread runtime of its own
    // was measured too (BENCHMARKS.md) and was no faster.
    tokio::spawn(broker.run(rx, control_rx, internal_rx));
    BrokerHandle { tx, events, config }
}

impl Broker {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut control_rx: mpsc::Receiver<WorkerMsg>,
        mut internal_rx: mpsc::UnboundedReceiver<Internal>,
    ) {
        let mut handles_gone = false;
        loop {
            // Biased, in this order: responses and lifecycle frames, then our own follow-ups,
            // then callers, then deadlines. (Output never comes here: see `feed`.)
            tokio::select! {
                biased;
                Some(msg) = control_rx.recv() => self.on_worker_msg(msg),
                Some(msg) = internal_rx.recv() => self.on_internal(msg),
                cmd = commands.recv(), if !handles_gone => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => {
                        handles_gone = true;
                        self.begin_shutdown(None);
                    }
                },
                error = self.pending.next_expired() => self.alert_request(&error),
                Some(due) = self.timers.next() => self.on_internal(due.into_inner()),
            }
            for (follow_up, result) in self.pending.take_settled() {
                match follow_up {
                    FollowUp::Deliver(d) => self.delivery_done(d, result),
                    FollowUp::IdleCheck(id) => self.idle_checked(id, result),
                }
            }
            self.cleanups.retain(|c| !c.is_finished());
            if self.shutdown_waiters.is_some() && self.workers.values().all(|w| w.closed) {
                // "Shut down" means nothing is left: wait for the last session clean-ups.
                let waiters = self.shutdown_waiters.take().unwrap_or_default();
                let cleanups = std::mem::take(&mut self.cleanups);
                tokio::spawn(async move {
                    for c in cleanups {
                        let _ = c.await;
                    }
                    for waiter in waiters {
                        let _ = waiter.send(());
                    }
                });
                // Anything still queued gets ChannelClosed when the receivers drop.
                return;
            }
        }
    }

    /// What the store held: what it still owes waits for workers of those names, and the
    /// history shows where every kept copy stands.
    fn restore(&mut self, loaded: crate::broker::store::Loaded) {
        for warning in loaded.warnings {
            self.alert(
                Severity::Warning,
                None,
                "journal",
                warning.code,
                warning.message,
            );
        }
        if !loaded.owed.is_empty() {
            tracing::info!(
                messages = loaded.owed.len(),
                "relay messages recovered from the journal"
            );
        }
        for (to, msg) in loaded.owed {
            self.outbox.accept(&to, msg, false);
        }
        self.history.restore(loaded.history);
    }

    // ----- events -----------------------------------------------------------------------

    fn next_seq(&mut self) -> u64 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    fn emit(&mut self, mut kind: EventKind) {
        // What changed travels with the event, so no client needs a list() to follow it.
        match &mut kind {
            EventKind::Delivery {
                name, undelivered, ..
            } => *undelivered = Some(self.outbox.count(name)),
            EventKind::MessageAccepted {
                recipients,
                undelivered,
                ..
            } => {
                *undelivered = recipients
                    .iter()
                    .map(|r| (r.clone(), self.outbox.count(r)))
                    .collect();
            }
            _ => {}
        }
        let event = Event {
            seq: self.next_seq(),
            at_ms: now_ms(),
            kind,
        };
        let event = Arc::new(event);
        if self.replay.len() >= self.config.replay_events.max(1)
            && let Some(old) = self.replay.pop_front()
        {
            self.replay_floor = old.seq;
        }
        self.replay.push_back(event.clone());
        let _ = self.events.send(event);
    }

    fn alert(
        &mut self,
        severity: Severity,
        worker: Option<&str>,
        op: &str,
        code: &str,
        message: String,
    ) {
        match severity {
            Severity::Error => tracing::error!(worker, op, code, "{message}"),
            Severity::Warning => tracing::warn!(worker, op, code, "{message}"),
            Severity::Info => tracing::info!(worker, op, code, "{message}"),
        }
        self.emit(EventKind::Alert {
            severity,
            worker: worker.map(str::to_string),
            op: op.to_string(),
            code: code.to_string(),
            message,
        });
    }

    /// Every failed request becomes an alert (the TUI shows them in its status bar).
    fn alert_request(&mut self, error: &RequestWorkerError) {
        let (worker, kind, severity) = match error {
            RequestWorkerError::Timeout { worker, kind, .. }
            | RequestWorkerError::WorkerError { worker, kind, .. } => {
                (worker.clone(), *kind, Severity::Warning)
            }
            RequestWorkerError::WorkerDisappeared { worker, kind } => {
                (worker.clone(), *kind, Severity::Error)
            }
            _ => return,
        };
        self.alert(
            severity,
            Some(&worker),
            kind.as_str(),
            error.code(),
            error.to_string(),
        );
    }
}

fn check_dimension(what: &str, n: u16) -> Result<u16, BrokerError> {
    crate::protocol::check_dimension(what, n).map_err(BrokerError::InvalidRequest)
}

/// SIGKILL a worker process, and end its child's session (the worker can no longer do it).
fn kill_worker(
    worker_pid: u32,
    child_pid: Option<u32>,
    cgroup: Option<std::path::PathBuf>,
) -> Option<Cleanup> {
    use nix::sys::signal::{Signal, kill};
    let _ = kill(
        nix::unistd::Pid::from_raw(worker_pid as i32),
        Signal::SIGKILL,
    );
    child_pid.map(|pid| end_session(pid, cgroup, Duration::ZERO))
}

/// Ending a dead worker's child session, off the broker task; shutdown waits for these.
type Cleanup = tokio::task::JoinHandle<usize>;

fn end_session(child_pid: u32, cgroup: Option<std::path::PathBuf>, grace: Duration) -> Cleanup {
    tokio::task::spawn_blocking(move || {
        let cgroup = cgroup.map(|path| crate::teardown::cgroup::Cgroup { path });
        crate::teardown::end_child(child_pid as i32, cgroup.as_ref(), grace)
    })
}
