//! The broker task: the only owner of workers, pending requests, the outbox and the event
//! streams. Its loop is one `select!` over what it reacts to — commands from handles, frames
//! from workers, its own follow-ups, and request deadlines.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::events::{Event, EventKind, OutputChunk, Severity, Subscription};
use super::process::{LaunchSpec, ToBroker, WorkerMsg, WorkerProcess};
use super::relay::Outbox;
use super::request::{PendingRequests, RequestResult, RequestWorkerError};
use super::{
    Accepted, BrokerConfig, BrokerError, BrokerHandle, Command, Reply, SpawnSpec, Stats, WorkerId,
    WorkerInfo, WorkerState, validate_name,
};
use crate::protocol::{
    DeliveryPayload, DeliveryState, Envelope, ErrorBody, ExitedPayload, InputPayload,
    ModeChangedPayload, ReadyPayload, ResizePayload, ResponsePayload, SessionMode, ShutdownPayload,
    decode_payload, frame, from_worker, now_ms, to_worker,
};
use crate::requests::RequestKind;
use crate::requests::deliver::{Delivered, RelayMessage};

const EVENT_BUFFER: usize = 4096;
/// Output chunks buffered per subscriber before it is told it lagged.
const OUTPUT_BUFFER: usize = 512;
const WORKER_MSG_BUFFER: usize = 1024;
/// Largest relay message body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a new worker gets to send `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a failed delivery the message is handed over again.
const REDELIVER_AFTER: Duration = Duration::from_millis(500);
/// Extra time after the grace period before a released worker is SIGKILLed.
const FORCE_KILL_AFTER: Duration = Duration::from_secs(2);

/// Follow-ups the broker schedules for itself.
enum Internal {
    DeliverDone {
        worker: String,
        /// The worker process it was handed to: a late answer from a dead one must not
        /// speak for its successor.
        worker_id: WorkerId,
        id: String,
        result: RequestResult,
    },
    /// Hand a worker's undelivered messages over again (after a failed delivery).
    Redeliver(String),
    ForceKill(WorkerId),
    ReadyTimeout(WorkerId),
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
    exit: Option<ExitedPayload>,
    /// The process's stdout closed and it was reaped.
    closed: bool,
    output: broadcast::Sender<OutputChunk>,
    name_arc: Arc<str>,
    offset: u64,
    spawn_waiter: Option<Reply<Result<WorkerInfo, BrokerError>>>,
    release_waiters: Vec<Reply<Result<(), BrokerError>>>,
    last_error: Option<ErrorBody>,
}

struct Broker {
    config: Arc<BrokerConfig>,
    workers: HashMap<WorkerId, Worker>,
    names: HashMap<String, WorkerId>,
    next_worker: WorkerId,
    pending: PendingRequests,
    outbox: Outbox,
    events: broadcast::Sender<Arc<Event>>,
    seq: u64,
    replay: std::collections::VecDeque<Arc<Event>>,
    /// Highest seq dropped from `replay`: a resume from before it has a gap.
    replay_floor: u64,
    worker_tx: ToBroker,
    internal_tx: mpsc::UnboundedSender<Internal>,
    shutdown_waiters: Option<Vec<Reply<()>>>,
    journal: Option<super::journal::Journal>,
    /// Session clean-ups of dead workers still running; shutdown completes after them.
    cleanups: Vec<Cleanup>,
}

pub(super) fn start(config: BrokerConfig) -> BrokerHandle {
    let (tx, rx) = mpsc::channel(1024);
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let (control_tx, control_rx) = mpsc::channel(WORKER_MSG_BUFFER);
    let (output_tx, output_rx) = mpsc::channel(WORKER_MSG_BUFFER);
    let worker_tx = ToBroker {
        control: control_tx,
        output: output_tx,
    };
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let config = Arc::new(config);
    let broker = Broker {
        config: config.clone(),
        workers: HashMap::new(),
        names: HashMap::new(),
        next_worker: 0,
        pending: PendingRequests::default(),
        outbox: Outbox::default(),
        events: events.clone(),
        seq: 0,
        replay: std::collections::VecDeque::new(),
        replay_floor: 0,
        worker_tx,
        internal_tx,
        shutdown_waiters: None,
        journal: None,
        cleanups: Vec::new(),
    };
    let mut broker = broker;
    broker.open_journal();
    tokio::spawn(broker.run(rx, control_rx, output_rx, internal_rx));
    BrokerHandle { tx, events, config }
}

impl Broker {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut control_rx: mpsc::Receiver<WorkerMsg>,
        mut output_rx: mpsc::Receiver<WorkerMsg>,
        mut internal_rx: mpsc::UnboundedReceiver<Internal>,
    ) {
        let mut handles_gone = false;
        loop {
            // Biased, in this order: responses and lifecycle frames, then our own follow-ups,
            // then callers, then deadlines, and output last — a flood waits (and backs up
            // into its worker); nobody else does.
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
                Some(msg) = output_rx.recv() => self.on_worker_msg(msg),
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

    /// Replays the journal: what it still owes waits for workers of those names.
    fn open_journal(&mut self) {
        let Some(path) = self.config.journal.clone() else {
            return;
        };
        match super::journal::Journal::open(&path) {
            Ok((journal, replayed)) => {
                if let Some(torn) = replayed.torn {
                    self.alert(
                        Severity::Warning,
                        None,
                        "journal",
                        "journal_torn_record",
                        format!("{}: skipped a torn last record ({torn:?}); everything before it was recovered", path.display()),
                    );
                }
                if !replayed.owed.is_empty() {
                    tracing::info!(
                        messages = replayed.owed.len(),
                        "relay messages recovered from the journal"
                    );
                }
                for (to, msg) in replayed.owed {
                    self.outbox.accept(&to, msg, false);
                }
                self.journal = Some(journal);
            }
            Err(e) => self.alert(
                Severity::Error,
                None,
                "journal",
                "journal_unavailable",
                format!(
                    "cannot open {}: {e}; messages are kept in memory only",
                    path.display()
                ),
            ),
        }
    }

    // ----- events -----------------------------------------------------------------------

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn emit(&mut self, kind: EventKind) {
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

    // ----- commands ---------------------------------------------------------------------

    fn on_command(&mut self, cmd: Command) {
        if self.shutdown_waiters.is_some() {
            return self.refuse_during_shutdown(cmd);
        }
        match cmd {
            Command::Spawn(spec, reply) => self.spawn(spec, reply),
            Command::Release(name, reply) => self.release(&name, reply),
            Command::List(reply) => {
                let mut list: Vec<WorkerInfo> =
                    self.workers.values().map(|w| self.info(w)).collect();
                list.sort_by_key(|w| (w.started_at_ms, w.name.clone()));
                let _ = reply.send(list);
            }
            Command::Input(name, bytes, reply) => {
                let env = envelope(to_worker::INPUT, &InputPayload::from_bytes(&bytes));
                let _ = reply.send(self.send_to(&name, &env));
            }
            Command::Resize(name, rows, cols, reply) => {
                let _ = reply.send(self.resize(&name, rows, cols));
            }
            Command::Send {
                from,
                to,
                body,
                reply,
            } => {
                let _ = reply.send(self.accept_message(from, to, body));
            }
            Command::Request {
                worker,
                kind,
                payload,
                timeout,
                reply,
            } => match self.names.get(&worker).copied() {
                Some(id) => self.start_request(id, kind, payload, timeout, reply),
                None => {
                    let _ = reply.send(Err(RequestWorkerError::WorkerNotFound(worker)));
                }
            },
            Command::SubscribeOutput(name, reply) => {
                let sub = self
                    .live(&name)
                    .map(|w| Subscription::new(w.output.subscribe()));
                let _ = reply.send(sub);
            }
            Command::SubscribeSince(since, reply) => {
                let _ = reply.send(super::Replay {
                    events: self
                        .replay
                        .iter()
                        .filter(|e| e.seq > since)
                        .cloned()
                        .collect(),
                    gap: since < self.replay_floor,
                    live: Subscription::new(self.events.subscribe()),
                });
            }
            Command::Stats(reply) => {
                let _ = reply.send(Stats {
                    workers: self.workers.len(),
                    pending_requests: self.pending.len(),
                    undelivered_messages: self.outbox.total(),
                });
            }
            Command::Undelivered(reply) => {
                let list = self
                    .outbox
                    .all()
                    .into_iter()
                    .map(|(to, message, state)| super::Undelivered {
                        to,
                        message,
                        state: state.to_string(),
                    })
                    .collect();
                let _ = reply.send(list);
            }
            Command::DropMessage(id, reply) => {
                let dropped = self.outbox.drop_id(&id);
                for name in &dropped {
                    if let Some(journal) = &mut self.journal {
                        let outbox = &self.outbox;
                        let live = || outbox.all().into_iter().map(|(to, m, _)| (to, m)).collect();
                        if let Err(e) = journal.done(name, &id, live) {
                            tracing::error!("journal write failed: {e}");
                        }
                    }
                }
                let _ = reply.send(dropped.len());
            }
            Command::Shutdown(reply) => self.begin_shutdown(Some(reply)),
        }
    }

    fn refuse_during_shutdown(&mut self, cmd: Command) {
        use BrokerError::ShuttingDown as No;
        match cmd {
            Command::Spawn(_, r) => drop(r.send(Err(No))),
            Command::Release(_, r) => drop(r.send(Err(No))),
            Command::Input(_, _, r) | Command::Resize(_, _, _, r) => drop(r.send(Err(No))),
            Command::Send { reply, .. } => drop(reply.send(Err(No))),
            Command::SubscribeOutput(_, r) => drop(r.send(Err(No))),
            Command::SubscribeSince(_, r) => drop(r),
            Command::Request { reply, .. } => {
                drop(reply.send(Err(RequestWorkerError::ChannelClosed)))
            }
            Command::List(r) => drop(r.send(Vec::new())),
            Command::Undelivered(r) => drop(r.send(Vec::new())),
            Command::DropMessage(_, r) => drop(r.send(0)),
            Command::Stats(r) => drop(r.send(Stats {
                workers: self.workers.len(),
                pending_requests: self.pending.len(),
                undelivered_messages: self.outbox.total(),
            })),
            Command::Shutdown(r) => self.shutdown_waiters.get_or_insert_with(Vec::new).push(r),
        }
    }

    fn info(&self, w: &Worker) -> WorkerInfo {
        WorkerInfo {
            name: w.name.clone(),
            pid: w.child_pid,
            worker_pid: w.process.pid,
            cmd: w.cmd.clone(),
            rows: w.rows,
            cols: w.cols,
            mode: w.mode,
            state: w.state,
            started_at_ms: w.started_at_ms,
            undelivered: self.outbox.count(&w.name),
            exit: w.exit.clone(),
        }
    }

    fn by_name(&self, name: &str) -> Result<&Worker, BrokerError> {
        self.names
            .get(name)
            .and_then(|id| self.workers.get(id))
            .ok_or_else(|| BrokerError::WorkerNotFound(name.to_string()))
    }

    /// A worker that can still take frames.
    fn live(&self, name: &str) -> Result<&Worker, BrokerError> {
        let w = self.by_name(name)?;
        match w.state {
            WorkerState::Exited => Err(BrokerError::WorkerUnavailable {
                name: name.to_string(),
                reason: format!("exited ({})", w.exit.clone().unwrap_or_default()),
            }),
            _ => Ok(w),
        }
    }

    fn send_to(&self, name: &str, env: &Envelope) -> Result<(), BrokerError> {
        let w = self.live(name)?;
        w.process
            .send(env)
            .map_err(|reason| BrokerError::WorkerUnavailable {
                name: name.to_string(),
                reason: reason.to_string(),
            })
    }

    fn spawn(&mut self, spec: SpawnSpec, reply: Reply<Result<WorkerInfo, BrokerError>>) {
        let result = (|| {
            validate_name(&spec.name)?;
            if spec.cmd.is_empty() || spec.cmd[0].is_empty() {
                return Err(BrokerError::InvalidRequest(
                    "cmd must name a program".into(),
                ));
            }
            let rows = check_dimension("rows", spec.rows.unwrap_or(24))?;
            let cols = check_dimension("cols", spec.cols.unwrap_or(80))?;
            if let Ok(existing) = self.by_name(&spec.name) {
                if existing.state != WorkerState::Exited {
                    return Err(BrokerError::NameTaken(spec.name.clone()));
                }
                // An exited worker's name is free again; its record goes.
                let old = existing.id;
                self.forget(old);
            }
            Ok((rows, cols))
        })();
        let (rows, cols) = match result {
            Ok(dims) => dims,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let mode = spec.mode.unwrap_or_default();
        let mut args: Vec<String> = vec![
            "worker".into(),
            "--name".into(),
            spec.name.clone(),
            "--rows".into(),
            rows.to_string(),
            "--cols".into(),
            cols.to_string(),
            "--mode".into(),
            mode.as_str().into(),
            "--template".into(),
            self.config.inject_template.clone(),
            "--settle-ms".into(),
            self.config.settle.as_millis().to_string(),
        ];
        if let Some(cwd) = &spec.cwd {
            args.push("--cwd".into());
            args.push(cwd.display().to_string());
        }
        if let Some(dir) = &self.config.log_dir {
            args.push("--inject-log".into());
            args.push(
                crate::worker::inject_log::path(dir, &spec.name)
                    .display()
                    .to_string(),
            );
        }
        args.push("--".into());
        args.extend(spec.cmd.iter().cloned());
        let mut env: Vec<(String, String)> = spec.env.clone().into_iter().collect();
        env.push(("BROKERTUI_NAME".into(), spec.name.clone()));
        if let Some(extra) = &self.config.worker_env {
            env.extend(extra(&spec.name));
        }
        let launch = LaunchSpec {
            exe: self.config.worker_exe.clone(),
            args,
            env,
            log_file: self
                .config
                .log_dir
                .as_ref()
                .map(|d| d.join(format!("{}.log", spec.name))),
        };
        self.next_worker += 1;
        let id = self.next_worker;
        let process = match WorkerProcess::spawn(id, launch, self.worker_tx.clone()) {
            Ok(p) => p,
            Err(e) => {
                let _ = reply.send(Err(BrokerError::SpawnFailed(format!(
                    "{}: {e}",
                    self.config.worker_exe.display()
                ))));
                return;
            }
        };
        let (output, _) = broadcast::channel(OUTPUT_BUFFER);
        let worker = Worker {
            id,
            name: spec.name.clone(),
            name_arc: Arc::from(spec.name.as_str()),
            cmd: spec.cmd.clone(),
            rows,
            cols,
            mode,
            state: WorkerState::Starting,
            started_at_ms: now_ms(),
            process,
            child_pid: None,
            exit: None,
            closed: false,
            output,
            offset: 0,
            spawn_waiter: Some(reply),
            release_waiters: Vec::new(),
            last_error: None,
        };
        tracing::info!(name = %spec.name, cmd = ?spec.cmd, worker_pid = worker.process.pid, "worker spawned");
        self.names.insert(spec.name.clone(), id);
        self.workers.insert(id, worker);
        self.emit(EventKind::WorkerSpawned {
            name: spec.name,
            cmd: spec.cmd,
        });
        self.schedule(READY_TIMEOUT, Internal::ReadyTimeout(id));
    }

    fn release(&mut self, name: &str, reply: Reply<Result<(), BrokerError>>) {
        let (id, state) = match self.by_name(name) {
            Ok(w) => (w.id, w.state),
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if state == WorkerState::Exited && self.workers[&id].closed {
            self.forget(id);
            let _ = reply.send(Ok(()));
            return;
        }
        let grace = self.config.release_grace;
        let w = self.workers.get_mut(&id).expect("looked up");
        w.release_waiters.push(reply);
        if w.state != WorkerState::Releasing {
            if w.state != WorkerState::Exited {
                w.state = WorkerState::Releasing;
            }
            let _ = w.process.send(&envelope(
                to_worker::SHUTDOWN,
                &ShutdownPayload {
                    grace_ms: grace.as_millis() as u32,
                },
            ));
            self.schedule(grace + FORCE_KILL_AFTER, Internal::ForceKill(id));
        }
    }

    fn resize(&mut self, name: &str, rows: u16, cols: u16) -> Result<(), BrokerError> {
        check_dimension("rows", rows)?;
        check_dimension("cols", cols)?;
        self.send_to(
            name,
            &envelope(to_worker::RESIZE, &ResizePayload { rows, cols }),
        )?;
        let id = self.names[name];
        let w = self.workers.get_mut(&id).expect("live");
        w.rows = rows;
        w.cols = cols;
        self.emit(EventKind::Resized {
            name: name.to_string(),
            rows,
            cols,
        });
        Ok(())
    }

    fn begin_shutdown(&mut self, reply: Option<Reply<()>>) {
        tracing::info!(workers = self.workers.len(), "broker shutting down");
        self.pending.fail_all();
        let waiters = self.shutdown_waiters.get_or_insert_with(Vec::new);
        waiters.extend(reply);
        let grace = self.config.release_grace;
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            let w = self.workers.get_mut(&id).expect("listed");
            if !w.closed {
                let _ = w.process.send(&envelope(
                    to_worker::SHUTDOWN,
                    &ShutdownPayload {
                        grace_ms: grace.as_millis() as u32,
                    },
                ));
                w.process.close_stdin();
                self.schedule(grace + FORCE_KILL_AFTER, Internal::ForceKill(id));
            }
        }
    }

    fn schedule(&self, after: Duration, msg: Internal) {
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(msg);
        });
    }

    // ----- requests ---------------------------------------------------------------------

    /// Parks a request in the pending map and writes its frame: the one path every
    /// request/response operation takes.
    fn start_request(
        &mut self,
        id: WorkerId,
        kind: RequestKind,
        payload: Value,
        timeout: Option<Duration>,
        reply: Reply<RequestResult>,
    ) {
        let Some(w) = self.workers.get(&id) else {
            let _ = reply.send(Err(RequestWorkerError::WorkerNotFound(id.to_string())));
            return;
        };
        if w.state == WorkerState::Exited || w.closed {
            let error = RequestWorkerError::WorkerDisappeared {
                worker: w.name.clone(),
                kind,
            };
            let _ = reply.send(Err(error));
            return;
        }
        let timeout = timeout.unwrap_or(self.config.request_timeout);
        let name = w.name.clone();
        let request_id = self.pending.insert(id, &name, kind, timeout, reply);
        let env = Envelope::new(kind.as_str(), Some(request_id.clone()), payload);
        if let Err(reason) = self.workers[&id].process.send(&env) {
            // A full queue means the worker stopped reading: let the deadline speak.
            tracing::warn!(worker = %name, %kind, "request not written: {reason}");
            if reason.contains("closed") {
                let error = RequestWorkerError::WorkerDisappeared { worker: name, kind };
                self.pending.fail(&request_id, error.clone());
                self.alert_request(&error);
            }
        }
    }

    // ----- relay ------------------------------------------------------------------------

    fn accept_message(
        &mut self,
        from: String,
        to: String,
        body: String,
    ) -> Result<Accepted, BrokerError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(BrokerError::InvalidRequest(format!(
                "message body of {} bytes exceeds the {MAX_BODY_BYTES}-byte limit",
                body.len()
            )));
        }
        let recipients: Vec<String> = if to == "*" {
            let mut names: Vec<String> = self
                .workers
                .values()
                .filter(|w| {
                    w.name != from
                        && w.state != WorkerState::Exited
                        && w.state != WorkerState::Releasing
                })
                .map(|w| w.name.clone())
                .collect();
            names.sort();
            names
        } else {
            self.by_name(&to)?;
            vec![to.clone()]
        };
        let id = uuid::Uuid::new_v4().to_string();
        let sent_at_ms = now_ms();
        let messages: Vec<(String, RelayMessage)> = recipients
            .iter()
            .map(|name| {
                let msg = RelayMessage {
                    id: id.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    body: body.clone(),
                    sent_at_ms,
                };
                (name.clone(), msg)
            })
            .collect();
        // On disk before the sender hears "accepted".
        if let Some(journal) = &mut self.journal {
            for (name, msg) in &messages {
                journal
                    .accept(name, msg)
                    .map_err(|e| BrokerError::WorkerUnavailable {
                        name: name.clone(),
                        reason: format!("could not journal the message: {e}"),
                    })?;
            }
        }
        self.emit(EventKind::MessageAccepted {
            id: id.clone(),
            from: from.clone(),
            to: to.clone(),
            recipients: recipients.clone(),
        });
        for (name, msg) in messages {
            let deliverable = self
                .live(&name)
                .is_ok_and(|w| w.state == WorkerState::Running);
            self.outbox.accept(&name, msg.clone(), deliverable);
            if deliverable {
                self.dispatch(&name, msg);
            }
        }
        Ok(Accepted { id, recipients })
    }

    /// Sends one `deliver` through the request helper; the outcome comes back as
    /// `Internal::DeliverDone`.
    fn dispatch(&mut self, name: &str, msg: RelayMessage) {
        let Some(&id) = self.names.get(name) else {
            return;
        };
        let (reply, rx) = oneshot::channel();
        let payload = serde_json::to_value(&msg).expect("message serializes");
        self.start_request(id, RequestKind::Deliver, payload, None, reply);
        let tx = self.internal_tx.clone();
        let worker = name.to_string();
        tokio::spawn(async move {
            let result = rx.await.unwrap_or(Err(RequestWorkerError::ChannelClosed));
            let _ = tx.send(Internal::DeliverDone {
                worker,
                worker_id: id,
                id: msg.id,
                result,
            });
        });
    }

    fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::Redeliver(name) => {
                if self
                    .live(&name)
                    .is_ok_and(|w| w.state == WorkerState::Running)
                {
                    self.hand_over(&name);
                }
            }
            Internal::DeliverDone {
                worker,
                worker_id,
                id,
                result,
            } => {
                let current = self.names.get(&worker) == Some(&worker_id)
                    && self
                        .workers
                        .get(&worker_id)
                        .is_some_and(|w| w.exit.is_none());
                let state = result
                    .as_ref()
                    .ok()
                    .and_then(|v| serde_json::from_value::<Delivered>(v.clone()).ok())
                    .map(|d| d.state);
                match state {
                    Some(DeliveryState::Injected) => self.delivered(&worker, &id),
                    Some(DeliveryState::Queued) if current => {
                        self.outbox.in_worker(&worker, &id);
                        self.emit(EventKind::Delivery {
                            name: worker,
                            id,
                            state: DeliveryState::Queued,
                            reason: None,
                        });
                    }
                    _ => {
                        // Kept: handed over again — soon if its worker is still there (the
                        // worker de-duplicates by id, so a retry never injects twice), or
                        // when a worker of that name is next ready.
                        self.outbox.undelivered(&worker, &id);
                        self.schedule(REDELIVER_AFTER, Internal::Redeliver(worker.clone()));
                        let reason = match result {
                            Err(e) => e.to_string(),
                            Ok(v) => format!("unexpected deliver response {v}"),
                        };
                        self.emit(EventKind::Delivery {
                            name: worker,
                            id,
                            state: DeliveryState::Failed,
                            reason: Some(reason),
                        });
                    }
                }
            }
            Internal::ForceKill(id) => {
                if let Some(w) = self.workers.get(&id).filter(|w| !w.closed) {
                    tracing::warn!(name = %w.name, "worker did not end in time; killing it and its session");
                    let cleanup = kill_worker(w.process.pid, w.child_pid);
                    self.cleanups.extend(cleanup);
                }
            }
            Internal::ReadyTimeout(id) => {
                if let Some(w) = self
                    .workers
                    .get_mut(&id)
                    .filter(|w| w.state == WorkerState::Starting)
                {
                    let name = w.name.clone();
                    if let Some(waiter) = w.spawn_waiter.take() {
                        let _ = waiter.send(Err(BrokerError::SpawnFailed(format!(
                            "{name} sent no ready frame within {}s",
                            READY_TIMEOUT.as_secs()
                        ))));
                    }
                    let _ = kill_worker(w.process.pid, None);
                }
            }
        }
    }

    /// Hands a name's undelivered messages to its worker — except those an earlier worker of
    /// that name recorded as (maybe) injected before it died: those count as injected.
    fn hand_over(&mut self, name: &str) {
        let log = self
            .config
            .log_dir
            .as_ref()
            .map(|dir| crate::worker::inject_log::path(dir, name));
        let recorded = log
            .as_deref()
            .map(crate::worker::inject_log::read)
            .unwrap_or_default();
        for msg in self.outbox.take_for_delivery(name) {
            if recorded.contains(&msg.id) {
                tracing::info!(%name, id = %msg.id, "already injected by an earlier worker; not typed again");
                self.delivered(name, &msg.id);
            } else {
                self.dispatch(name, msg);
            }
        }
        if self.outbox.count(name) == 0
            && let Some(log) = &log
        {
            crate::worker::inject_log::clear(log);
        }
    }

    fn delivered(&mut self, worker: &str, id: &str) {
        self.outbox.injected(worker, id);
        if let Some(journal) = &mut self.journal {
            let outbox = &self.outbox;
            let live = || outbox.all().into_iter().map(|(to, m, _)| (to, m)).collect();
            if let Err(e) = journal.done(worker, id, live) {
                tracing::error!("journal write failed: {e}");
            }
        }
        self.emit(EventKind::Delivery {
            name: worker.to_string(),
            id: id.to_string(),
            state: DeliveryState::Injected,
            reason: None,
        });
    }

    // ----- frames from workers ----------------------------------------------------------

    fn on_worker_msg(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Output(id, offset, data) => {
                let seq = self.next_seq();
                let Some(w) = self.workers.get_mut(&id) else {
                    return;
                };
                if offset != w.offset {
                    tracing::warn!(name = %w.name, expected = w.offset, got = offset, "output offset gap");
                }
                w.offset = offset + data.len() as u64;
                let _ = w.output.send(OutputChunk {
                    seq,
                    worker: w.name_arc.clone(),
                    offset,
                    data,
                });
            }
            WorkerMsg::Frame(id, env) => self.on_frame(id, env),
            WorkerMsg::BadFrame(id, error) => {
                let name = self.workers.get(&id).map(|w| w.name.clone());
                self.alert(
                    Severity::Warning,
                    name.as_deref(),
                    "protocol",
                    error.code(),
                    format!("bad frame from worker: {error}"),
                );
            }
            WorkerMsg::Closed(id, status) => self.on_closed(id, status),
        }
    }

    fn on_frame(&mut self, id: WorkerId, env: Envelope) {
        let Some(name) = self.workers.get(&id).map(|w| w.name.clone()) else {
            return;
        };
        let bad = |e: crate::protocol::DecodeError| (e.code(), e.to_string());
        let result: Result<(), (&str, String)> = match env.kind.as_str() {
            from_worker::READY => decode_payload::<ReadyPayload>(&env).map_err(bad).map(|ready| {
                self.on_ready(id, ready);
            }),
            from_worker::RESPONSE => decode_payload::<ResponsePayload>(&env).map_err(bad).map(|resp| {
                let request_id = env.request_id.clone().unwrap_or_default();
                match self.pending.resolve(id, &request_id, resp) {
                    None => tracing::warn!(worker = %name, %request_id, "response for no request in flight; dropped"),
                    Some(Err(error)) => self.alert_request(&error),
                    Some(Ok(())) => {}
                }
            }),
            from_worker::DELIVERY => decode_payload::<DeliveryPayload>(&env).map_err(bad).map(|d| match d.state {
                DeliveryState::Injected => self.delivered(&name, &d.id),
                DeliveryState::Queued => self.outbox.in_worker(&name, &d.id),
                DeliveryState::Failed => {
                    self.outbox.undelivered(&name, &d.id);
                    self.schedule(REDELIVER_AFTER, Internal::Redeliver(name.clone()));
                    self.emit(EventKind::Delivery {
                        name: name.clone(),
                        id: d.id,
                        state: DeliveryState::Failed,
                        reason: d.reason,
                    });
                }
            }),
            from_worker::MODE_CHANGED => decode_payload::<ModeChangedPayload>(&env).map_err(bad).map(|m| {
                if let Some(w) = self.workers.get_mut(&id) {
                    w.mode = m.mode;
                }
                self.emit(EventKind::ModeChanged {
                    name: name.clone(),
                    mode: m.mode,
                    previous: m.previous,
                });
            }),
            from_worker::EXITED => decode_payload::<ExitedPayload>(&env).map_err(bad).map(|exit| {
                self.on_exited(id, exit, true);
            }),
            from_worker::WORKER_ERROR => decode_payload::<ErrorBody>(&env).map_err(bad).map(|e| {
                if let Some(w) = self.workers.get_mut(&id) {
                    w.last_error = Some(e.clone());
                }
                self.alert(Severity::Warning, Some(&name), "worker", &e.code, e.message);
            }),
            other => Err(("unknown_type", format!("unknown frame type {other:?}"))),
        };
        if let Err((code, message)) = result {
            self.alert(
                Severity::Warning,
                Some(&name),
                "protocol",
                code,
                format!("bad frame from worker: {message}"),
            );
        }
    }

    fn on_ready(&mut self, id: WorkerId, ready: ReadyPayload) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.child_pid = Some(ready.pid);
        w.rows = ready.rows;
        w.cols = ready.cols;
        if w.state == WorkerState::Starting {
            w.state = WorkerState::Running;
        }
        let name = w.name.clone();
        let waiter = w.spawn_waiter.take();
        let info = self.info(&self.workers[&id]);
        if let Some(waiter) = waiter {
            let _ = waiter.send(Ok(info));
        }
        self.emit(EventKind::WorkerReady {
            name: name.clone(),
            pid: ready.pid,
            rows: ready.rows,
            cols: ready.cols,
        });
        // Messages kept for this name (its last worker died, or it was not running yet).
        self.hand_over(&name);
    }

    /// The child exited (or, with `alert_exit` false, the worker itself died and
    /// [`Self::on_closed`] raises its own alert).
    fn on_exited(&mut self, id: WorkerId, exit: ExitedPayload, alert_exit: bool) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        let releasing = w.state == WorkerState::Releasing;
        w.state = WorkerState::Exited;
        w.exit = Some(exit.clone());
        let name = w.name.clone();
        let spawn_failure = w.spawn_waiter.take().map(|waiter| {
            let reason = w
                .last_error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| format!("the command {exit} before it was ready"));
            let _ = waiter.send(Err(BrokerError::SpawnFailed(reason)));
        });
        for error in self.pending.fail_worker(id) {
            self.alert_request(&error);
        }
        self.outbox.worker_gone(&name);
        self.emit(EventKind::WorkerExited {
            name: name.clone(),
            code: exit.code,
            signal: exit.signal.clone(),
        });
        if alert_exit && exit.is_abnormal() && !releasing && spawn_failure.is_none() {
            self.alert(
                Severity::Error,
                Some(&name),
                "exit",
                "worker_exited",
                format!("{name} {exit}"),
            );
        }
    }

    /// The worker process is gone (stdout closed, reaped).
    fn on_closed(&mut self, id: WorkerId, status: Option<std::process::ExitStatus>) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.closed = true;
        let name = w.name.clone();
        if w.exit.is_none() {
            // It died without its `exited` frame (killed, crashed): nobody ended the child's
            // session, so we do, and in-flight requests fail now, not at their deadline.
            use std::os::unix::process::ExitStatusExt;
            let how = status
                .and_then(|s| s.signal())
                .map(crate::worker::reap::signal_name)
                .unwrap_or_else(|| format!("{status:?}"));
            if let Some(pid) = w.child_pid {
                let cleanup = end_session(pid, Duration::from_millis(200));
                self.cleanups.push(cleanup);
            }
            self.on_exited(
                id,
                ExitedPayload {
                    code: None,
                    signal: Some(how.clone()),
                },
                false,
            );
            if self.shutdown_waiters.is_none() {
                self.alert(
                    Severity::Error,
                    Some(&name),
                    "worker",
                    "worker_disappeared",
                    format!("worker process for {name} died ({how}); its session was ended"),
                );
            }
        }
        let w = &self.workers[&id];
        if !w.release_waiters.is_empty() {
            self.forget(id);
        }
    }

    /// Drops a worker's record; release waiters are answered.
    fn forget(&mut self, id: WorkerId) {
        if let Some(w) = self.workers.remove(&id) {
            if self.names.get(&w.name) == Some(&id) {
                self.names.remove(&w.name);
            }
            for waiter in w.release_waiters {
                let _ = waiter.send(Ok(()));
            }
            self.emit(EventKind::WorkerReleased { name: w.name });
        }
    }
}

fn envelope<T: serde::Serialize>(kind: &str, payload: &T) -> Envelope {
    frame(kind, payload)
}

fn check_dimension(what: &str, n: u16) -> Result<u16, BrokerError> {
    if (1..=1000).contains(&n) {
        Ok(n)
    } else {
        Err(BrokerError::InvalidRequest(format!(
            "{what} must be between 1 and 1000, got {n}"
        )))
    }
}

/// SIGKILL a worker process, and end its child's session (the worker can no longer do it).
fn kill_worker(worker_pid: u32, child_pid: Option<u32>) -> Option<Cleanup> {
    use nix::sys::signal::{Signal, kill};
    let _ = kill(
        nix::unistd::Pid::from_raw(worker_pid as i32),
        Signal::SIGKILL,
    );
    child_pid.map(|pid| end_session(pid, Duration::ZERO))
}

/// Ending a dead worker's child session, off the broker task; shutdown waits for these.
type Cleanup = tokio::task::JoinHandle<usize>;

fn end_session(child_pid: u32, grace: Duration) -> Cleanup {
    tokio::task::spawn_blocking(move || {
        crate::worker::reap::terminate_session(child_pid as i32, grace)
    })
}
