//! What callers ask through a [`BrokerHandle`]: spawn, release, input, resize, requests,
//! subscriptions, shutdown.

use super::*;
use crate::protocol::worker_args::WorkerArgs;

impl Broker {
    // ----- commands ---------------------------------------------------------------------

    pub(super) fn on_command(&mut self, cmd: Command) {
        if self.shutdown_waiters.is_some() {
            return self.refuse_during_shutdown(cmd);
        }
        match cmd {
            Command::Spawn(launch, reply) => self.spawn(*launch, reply),
            Command::Restart(name, reply) => self.restart(&name, reply),
            Command::Release(name, reply) => {
                // Released by the user: not started again after a restart.
                self.save_worker(&name, false);
                self.release(&name, reply)
            }
            Command::List(reply) => {
                // In the order they were started (ids count up).
                let mut workers: Vec<&Worker> = self.workers.values().collect();
                workers.sort_by_key(|w| w.id);
                let _ = reply.send(workers.into_iter().map(|w| self.info(w)).collect());
            }
            Command::Input(name, bytes, reply) => {
                self.touch(&name);
                let env = frame(to_worker::INPUT, &InputPayload::from_bytes(&bytes));
                let _ = reply.send(self.send_to(&name, &env));
            }
            Command::Resize(name, rows, cols, reply) => {
                let _ = reply.send(self.resize(&name, rows, cols));
            }
            Command::Send {
                from,
                to,
                body,
                when,
                reply,
            } => {
                self.accept_message(from, to, body, when, reply);
            }
            Command::Hook(name, hook, reply) => {
                let env = frame(to_worker::HOOK, &hook);
                let _ = reply.send(self.send_to(&name, &env));
            }
            Command::Messages(reply) => {
                let _ = reply.send(self.history.list(None, None));
            }
            Command::Request {
                worker,
                kind,
                payload,
                timeout,
                reply,
            } => match self.names.get(&worker).copied() {
                Some(id) => self.start_request(id, kind, payload, timeout, Waiter::Caller(reply)),
                None => {
                    let _ = reply.send(Err(RequestWorkerError::WorkerNotFound(worker)));
                }
            },
            Command::SubscribeOutput(name, reply) => {
                let sub = self.live(&name).map(|w| w.output.subscribe());
                let _ = reply.send(sub);
            }
            Command::SubscribeSince(since, reply) => {
                let _ = reply.send(crate::broker::Replay {
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
                let _ = reply.send(self.stats());
            }
            Command::Undelivered(reply) => {
                let list = self
                    .outbox
                    .all()
                    .into_iter()
                    .map(|(to, message, state)| crate::broker::Undelivered {
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
                    self.record(
                        name,
                        &id,
                        DeliveryState::Dropped,
                        Some("dropped by request".into()),
                    );
                }
                let _ = reply.send(dropped.len());
            }
            Command::Shutdown(reply) => self.begin_shutdown(Some(reply)),
        }
    }

    pub(super) fn refuse_during_shutdown(&mut self, cmd: Command) {
        use BrokerError::ShuttingDown as No;
        match cmd {
            Command::Spawn(_, r) => drop(r.send(Err(No))),
            Command::Release(_, r) => drop(r.send(Err(No))),
            Command::Restart(_, r) => drop(r.send(Err(No))),
            Command::Input(_, _, r) | Command::Resize(_, _, _, r) => drop(r.send(Err(No))),
            Command::Send { reply, .. } => drop(reply.send(Err(No))),
            Command::Hook(_, _, r) => drop(r.send(Err(No))),
            Command::Messages(r) => drop(r.send(self.history.list(None, None))),
            Command::SubscribeOutput(_, r) => drop(r.send(Err(No))),
            Command::SubscribeSince(_, r) => drop(r),
            Command::Request { reply, .. } => {
                drop(reply.send(Err(RequestWorkerError::ChannelClosed)))
            }
            Command::List(r) => drop(r.send(Vec::new())),
            Command::Undelivered(r) => drop(r.send(Vec::new())),
            Command::DropMessage(_, r) => drop(r.send(0)),
            Command::Stats(r) => drop(r.send(self.stats())),
            Command::Shutdown(r) => self.shutdown_waiters.get_or_insert_with(Vec::new).push(r),
        }
    }

    pub(super) fn stats(&self) -> Stats {
        Stats {
            workers: self.workers.len(),
            pending_requests: self.pending.len(),
            undelivered_messages: self.outbox.total(),
        }
    }

    pub(super) fn info(&self, w: &Worker) -> WorkerInfo {
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
            agent: w.agent.clone(),
            exit: w.exit.clone(),
            worktree: w.worktree.clone(),
            cwd: w.cwd.clone(),
            restored: w.restored,
        }
    }

    pub(super) fn by_name(&self, name: &str) -> Result<&Worker, BrokerError> {
        self.names
            .get(name)
            .and_then(|id| self.workers.get(id))
            .ok_or_else(|| BrokerError::WorkerNotFound(name.to_string()))
    }

    /// A worker that can still take frames.
    pub(super) fn live(&self, name: &str) -> Result<&Worker, BrokerError> {
        let w = self.by_name(name)?;
        match w.state {
            WorkerState::Exited => Err(BrokerError::WorkerUnavailable {
                name: name.to_string(),
                reason: format!("exited ({})", w.exit.clone().unwrap_or_default()),
            }),
            _ => Ok(w),
        }
    }

    pub(super) fn send_to(&self, name: &str, env: &Envelope) -> Result<(), BrokerError> {
        let w = self.live(name)?;
        w.process.send(env).map_err(|reason| match reason {
            crate::broker::process::SendError::Backlog => BrokerError::WorkerBusy {
                name: name.to_string(),
                reason: format!(
                    "{reason}: {} MiB wait for it already; nothing of this was queued",
                    crate::broker::process::STDIN_QUEUE_BYTES >> 20
                ),
            },
            crate::broker::process::SendError::Closed => BrokerError::WorkerUnavailable {
                name: name.to_string(),
                reason: reason.to_string(),
            },
        })
    }

    pub(super) fn spawn(&mut self, launch: Launch, reply: Reply<Result<WorkerInfo, BrokerError>>) {
        let Launch {
            spec,
            worktree,
            setup,
            warnings,
            restored,
        } = launch;
        let cwd = worktree
            .as_ref()
            .map(crate::workspace::Worktree::cwd)
            .or_else(|| spec.cwd.clone());
        let result = (|| {
            validate_name(&spec.name)?;
            if spec.cmd.is_empty() || spec.cmd[0].is_empty() {
                return Err(BrokerError::InvalidRequest(
                    "cmd must name a program".into(),
                ));
            }
            if let Some(cwd) = &cwd
                && !cwd.is_dir()
            {
                // Never silently somewhere else: a program run in $HOME instead of its
                // project can do damage there.
                return Err(BrokerError::SpawnFailed(format!(
                    "the working directory {} does not exist or is not a directory",
                    cwd.display()
                )));
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
        let kind = spec
            .agent
            .clone()
            .unwrap_or_else(|| crate::agent::kind_of(&spec.cmd));
        let rules = self.config.agents.rules(&kind);
        let mut cmd = if restored {
            crate::broker::fleet::resumed(&spec.cmd, rules.resume.as_deref())
        } else {
            spec.cmd.clone()
        };
        if let (Some(mechanism), Some(dir)) = (&rules.hooks, &self.config.hooks_dir) {
            match crate::agent::hooks::install(mechanism, dir, &spec.name, &self.config.worker_exe)
            {
                Ok(extra) => cmd.splice(1..1, extra).for_each(drop),
                Err(e) => tracing::warn!(name = %spec.name, "no hooks installed: {e}"),
            }
        }
        if let Some(setup) = &setup {
            cmd = with_setup(setup, cmd);
        }
        let args = WorkerArgs {
            name: spec.name.clone(),
            rows,
            cols,
            mode,
            template: self.config.inject_template.clone(),
            settle_ms: self.config.settle.as_millis() as u64,
            cwd: cwd.clone(),
            inject_log: self
                .config
                .log_dir
                .as_ref()
                .map(|dir| crate::protocol::inject_record::path(dir, &spec.name)),
            term: spec
                .env
                .get("TERM")
                .cloned()
                .unwrap_or_else(|| crate::protocol::worker_args::DEFAULT_TERM.into()),
            agent: kind.clone(),
            agent_rules: serde_json::to_string(&rules).expect("rules serialize"),
            colors: self.config.terminal_colors,
            cmd,
        }
        .to_args();
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
        let (output, flow) = Feed::new(Arc::from(spec.name.as_str()), self.seq.clone());
        let process =
            match WorkerProcess::spawn(id, launch, self.worker_tx.clone(), output.shared(), flow) {
                Ok(p) => p,
                Err(e) => {
                    let _ = reply.send(Err(BrokerError::SpawnFailed(format!(
                        "{}: {e}",
                        self.config.worker_exe.display()
                    ))));
                    return;
                }
            };
        let worker = Worker {
            id,
            name: spec.name.clone(),
            cmd: spec.cmd.clone(),
            rows,
            cols,
            mode,
            state: WorkerState::Starting,
            started_at_ms: now_ms(),
            process,
            child_pid: None,
            cgroup: None,
            exit: None,
            closed: false,
            output,
            spawn_waiter: Some(reply),
            release_waiters: Vec::new(),
            last_error: None,
            agent: AgentReport {
                kind: kind.clone(),
                since_ms: now_ms(),
                reason: "spawned; it has not shown that it takes input yet".into(),
                ..AgentReport::default()
            },
            spec: SpawnSpec {
                rows: Some(rows),
                cols: Some(cols),
                mode: Some(mode),
                agent: Some(kind),
                ..spec.clone()
            },
            worktree,
            cwd,
            restored,
            idle: None,
            last_screen: None,
        };
        tracing::info!(name = %spec.name, cmd = ?spec.cmd, worker_pid = worker.process.pid, "worker spawned");
        self.names.insert(spec.name.clone(), id);
        self.workers.insert(id, worker);
        self.emit(EventKind::WorkerSpawned {
            name: spec.name.clone(),
            cmd: spec.cmd,
        });
        for warning in warnings {
            self.alert(
                Severity::Warning,
                Some(&spec.name),
                "worktree",
                "worktree_warning",
                warning,
            );
        }
        self.save_worker(&spec.name, true);
        self.watch_idle(id);
        self.schedule(READY_TIMEOUT, Internal::ReadyTimeout(id));
    }

    /// An exited worker started again from its own spec, under the same name. Its old record
    /// goes without a `worker_released` event: for a client the pane simply lives again.
    pub(super) fn restart(&mut self, name: &str, reply: Reply<Result<WorkerInfo, BrokerError>>) {
        let w = match self.by_name(name) {
            Ok(w) => w,
            Err(e) => return drop(reply.send(Err(e))),
        };
        if w.state != WorkerState::Exited || !w.closed {
            let reason = "it is still running (release it first, or type into it)".to_string();
            let name = name.to_string();
            return drop(reply.send(Err(BrokerError::WorkerUnavailable { name, reason })));
        }
        let launch = Launch {
            worktree: w.worktree.clone(),
            ..Launch::plain(w.spec.clone())
        };
        let id = w.id;
        self.workers.remove(&id);
        self.names.remove(name);
        self.spawn(launch, reply);
    }

    pub(super) fn release(&mut self, name: &str, reply: Reply<Result<(), BrokerError>>) {
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
            let _ = w.process.send(&frame(
                to_worker::SHUTDOWN,
                &ShutdownPayload {
                    grace_ms: grace.as_millis() as u32,
                },
            ));
            self.schedule(grace + FORCE_KILL_AFTER, Internal::ForceKill(id));
        }
    }

    pub(super) fn resize(&mut self, name: &str, rows: u16, cols: u16) -> Result<(), BrokerError> {
        check_dimension("rows", rows)?;
        check_dimension("cols", cols)?;
        self.send_to(
            name,
            &frame(to_worker::RESIZE, &ResizePayload { rows, cols }),
        )?;
        let id = self.names[name];
        let w = self.workers.get_mut(&id).expect("live");
        w.rows = rows;
        w.cols = cols;
        w.spec.rows = Some(rows);
        w.spec.cols = Some(cols);
        self.emit(EventKind::Resized {
            name: name.to_string(),
            rows,
            cols,
        });
        Ok(())
    }

    pub(super) fn begin_shutdown(&mut self, reply: Option<Reply<()>>) {
        tracing::info!(workers = self.workers.len(), "broker shutting down");
        self.pending.fail_all();
        let waiters = self.shutdown_waiters.get_or_insert_with(Vec::new);
        waiters.extend(reply);
        let grace = self.config.release_grace;
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            let w = self.workers.get_mut(&id).expect("listed");
            if !w.closed {
                let _ = w.process.send(&frame(
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

    pub(super) fn schedule(&mut self, after: Duration, msg: Internal) {
        self.timers.insert(msg, after);
    }

    // ----- requests ---------------------------------------------------------------------

    /// Parks a request in the pending map and writes its frame: the one path every
    /// request/response operation takes.
    pub(super) fn start_request(
        &mut self,
        id: WorkerId,
        kind: RequestKind,
        payload: Value,
        timeout: Option<Duration>,
        waiter: Waiter<FollowUp>,
    ) {
        let Some(w) = self.workers.get(&id) else {
            let error = RequestWorkerError::WorkerNotFound(id.to_string());
            return self.pending.refuse(waiter, error);
        };
        if w.state == WorkerState::Exited || w.closed {
            if let Some(value) = w
                .last_screen
                .as_ref()
                .and_then(|l| l.answer(kind, &payload))
            {
                return self.pending.answer(waiter, value);
            }
            let error = RequestWorkerError::WorkerDisappeared {
                worker: w.name.clone(),
                kind,
            };
            return self.pending.refuse(waiter, error);
        }
        let timeout = timeout.unwrap_or(self.config.request_timeout);
        let name = w.name.clone();
        let kept = crate::protocol::LastScreen::may_answer(kind).then(|| payload.clone());
        let request_id = self.pending.insert(id, &name, kind, kept, timeout, waiter);
        let env = Envelope::new(kind.as_str(), Some(request_id.clone()), payload);
        if let Err(reason) = self.workers[&id].process.send(&env) {
            // A full queue means the worker stopped reading: let the deadline speak.
            tracing::warn!(worker = %name, %kind, "request not written: {reason}");
            if reason == crate::broker::process::SendError::Closed {
                let error = RequestWorkerError::WorkerDisappeared { worker: name, kind };
                self.pending.fail(&request_id, error.clone());
                self.alert_request(&error);
            }
        }
    }
}

/// `cmd` run after `setup` in the same pane: the setup's output shows there, and the program
/// starts even when the setup fails (saying so), as the user may fix it by hand.
fn with_setup(setup: &str, cmd: Vec<String>) -> Vec<String> {
    const SCRIPT: &str = "printf 'brokertui: setting up the worktree: %s\\n' \"$0\"; \
        sh -c \"$0\" || printf 'brokertui: the setup command failed (exit %s); starting %s anyway\\n' \"$?\" \"$1\"; \
        exec \"$@\"";
    let mut out = vec!["sh".to_string(), "-c".into(), SCRIPT.into(), setup.into()];
    out.extend(cmd);
    out
}
