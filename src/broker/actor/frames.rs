//! What workers say: output, responses, lifecycle frames, and their processes closing.

use super::*;

impl Broker {
    // ----- frames from workers ----------------------------------------------------------

    pub(super) fn on_worker_msg(&mut self, msg: WorkerMsg) {
        match msg {
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

    pub(super) fn on_frame(&mut self, id: WorkerId, env: Envelope) {
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
                DeliveryState::Queued => {
                    self.outbox.in_worker(&name, &d.id);
                    self.record(&name, &d.id, DeliveryState::Queued, d.reason.clone());
                    self.emit(EventKind::Delivery { undelivered: None, name: name.clone(), id: d.id, state: d.state, reason: d.reason });
                }
                DeliveryState::Submitted | DeliveryState::Unconfirmed | DeliveryState::Dropped => {
                    self.record(&name, &d.id, d.state, d.reason.clone());
                    if d.state == DeliveryState::Unconfirmed {
                        self.alert(
                            Severity::Warning,
                            Some(&name),
                            "deliver",
                            "unconfirmed",
                            format!("message {} {}", d.id, d.reason.clone().unwrap_or_default()),
                        );
                    }
                    self.emit(EventKind::Delivery { undelivered: None, name: name.clone(), id: d.id, state: d.state, reason: d.reason });
                }
                DeliveryState::Failed => {
                    self.record(&name, &d.id, DeliveryState::Failed, d.reason.clone());
                    self.outbox.undelivered(&name, &d.id);
                    self.schedule(REDELIVER_AFTER, Internal::Redeliver(name.clone()));
                    self.emit(EventKind::Delivery { undelivered: None,
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
                self.save_worker(&name, true);
                self.emit(EventKind::ModeChanged {
                    name: name.clone(),
                    mode: m.mode,
                    previous: m.previous,
                });
            }),
            from_worker::AGENT_STATE => decode_payload::<AgentReport>(&env).map_err(bad).map(|report| {
                if let Some(w) = self.workers.get_mut(&id) {
                    w.agent = report.clone();
                }
                self.emit(EventKind::AgentState {
                    name: name.clone(),
                    kind: report.kind,
                    state: report.state,
                    previous: report.previous,
                    source: report.source,
                    reason: report.reason,
                });
            }),
            from_worker::LAST_SCREEN => decode_payload::<crate::protocol::LastScreen>(&env).map_err(bad).map(|last| {
                if let Some(w) = self.workers.get_mut(&id) {
                    w.last_screen = Some(Box::new(last));
                }
            }),
            from_worker::EXITED => decode_payload::<ExitedPayload>(&env).map_err(bad).map(|exit| {
                self.on_exited(id, exit, true);
            }),
            from_worker::WORKER_ERROR => decode_payload::<ErrorBody>(&env).map_err(bad).map(|e| {
                let starting = self.workers.get_mut(&id).is_some_and(|w| {
                    w.last_error = Some(e.clone());
                    w.spawn_waiter.as_ref().is_some_and(|r| !r.is_closed())
                });
                // A start that failed is told to whoever asked for it, once, not alerted too.
                if !starting {
                    self.alert(Severity::Warning, Some(&name), "worker", &e.code, e.message);
                }
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

    pub(super) fn on_ready(&mut self, id: WorkerId, ready: ReadyPayload) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.child_pid = Some(ready.pid);
        w.cgroup = ready.cgroup.clone();
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
    pub(super) fn on_exited(&mut self, id: WorkerId, exit: ExitedPayload, alert_exit: bool) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        let releasing = w.state == WorkerState::Releasing;
        w.state = WorkerState::Exited;
        w.exit = Some(exit.clone());
        let name = w.name.clone();
        if let Some(gone) = &self.config.worker_gone {
            gone(&name);
        }
        let spawn_failure = w.spawn_waiter.take().map(|waiter| {
            let reason = w
                .last_error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| format!("the command {exit} before it was ready"));
            let _ = waiter.send(Err(BrokerError::SpawnFailed(reason)));
        });
        // Requests still in flight get what a request sent from now on gets: the screen its
        // program left, where that answers them (a pane's first snapshot, raced by a quick
        // exit, shows the output at once rather than on a retry).
        let last = w.last_screen.as_deref();
        let errors = self
            .pending
            .end_worker(id, |kind, payload| last?.answer(kind, payload));
        for error in errors {
            // A worker that never started: its requests failing say nothing new.
            if spawn_failure.is_none() {
                self.alert_request(&error);
            }
        }
        self.outbox.worker_gone(&name);
        if self.shutdown_waiters.is_none() && !releasing {
            // Its program ended by itself: a restart would only run a finished command again.
            self.save_worker(&name, false);
        }
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
    pub(super) fn on_closed(&mut self, id: WorkerId, status: Option<std::process::ExitStatus>) {
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
                .map(crate::teardown::session::signal_name)
                .unwrap_or_else(|| format!("{status:?}"));
            if let Some(pid) = w.child_pid {
                let cleanup = end_session(pid, w.cgroup.clone(), Duration::from_millis(200));
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
    pub(super) fn forget(&mut self, id: WorkerId) {
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
