//! Relay messages: accepting (and journalling) them, handing them to workers through the
//! request helper, retries, and the broker's own scheduled follow-ups.

use super::*;

impl Broker {
    // ----- relay ------------------------------------------------------------------------

    /// Accepts a message: addressed, then (with a store) committed on the writer thread, and
    /// only then queued for its recipients and answered — see [`Internal::Durable`].
    pub(super) fn accept_message(
        &mut self,
        from: String,
        to: String,
        body: String,
        when: Option<When>,
        reply: Reply<Result<Accepted, BrokerError>>,
    ) {
        let (accepted, copies) = match self.address(from, to, body, when) {
            Ok(addressed) => addressed,
            Err(e) => return drop(reply.send(Err(e))),
        };
        match &self.store {
            None => {
                self.admit(&accepted, copies);
                let _ = reply.send(Ok(accepted));
            }
            Some(store) => {
                let tx = self.internal_tx.clone();
                store.accept(
                    copies.clone(),
                    Box::new(move |result| {
                        let _ = tx.send(Internal::Durable {
                            accepted,
                            copies,
                            result,
                            reply,
                        });
                    }),
                );
            }
        }
    }

    /// The copies of a message (one per recipient) and what the sender will hear.
    #[allow(clippy::type_complexity)]
    fn address(
        &mut self,
        from: String,
        to: String,
        body: String,
        when: Option<When>,
    ) -> Result<(Accepted, Vec<(String, RelayMessage)>), BrokerError> {
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
                    when,
                };
                (name.clone(), msg)
            })
            .collect();
        Ok((Accepted { id, recipients }, messages))
    }

    /// Queues an accepted (and, with a store, durable) message's copies and hands each to its
    /// worker if it is ready.
    pub(super) fn admit(&mut self, accepted: &Accepted, copies: Vec<(String, RelayMessage)>) {
        let Some((_, first)) = copies.first() else {
            return;
        };
        let accepted_event = EventKind::MessageAccepted {
            undelivered: Default::default(),
            id: accepted.id.clone(),
            from: first.from.clone(),
            to: first.to.clone(),
            recipients: accepted.recipients.clone(),
        };
        // Each copy is a message owed (and counted in the event) before dispatch can settle it.
        let mut now = Vec::new();
        for (name, msg) in copies {
            self.history.accepted(&name, &msg);
            let deliverable = self
                .live(&name)
                .is_ok_and(|w| w.state == WorkerState::Running);
            self.outbox.accept(&name, msg.clone(), deliverable);
            if deliverable {
                now.push((name, msg));
            }
        }
        self.emit(accepted_event);
        for (name, msg) in now {
            self.dispatch(&name, msg);
        }
    }

    /// Sends one `deliver` through the request helper; its outcome comes back to
    /// [`Self::delivery_done`].
    pub(super) fn dispatch(&mut self, name: &str, msg: RelayMessage) {
        let Some(&id) = self.names.get(name) else {
            return;
        };
        self.touch(name);
        let payload = serde_json::to_value(&msg).expect("message serializes");
        let delivering = Delivering {
            worker: name.to_string(),
            worker_id: id,
            id: msg.id,
        };
        self.start_request(
            id,
            RequestKind::Deliver,
            payload,
            None,
            Waiter::Broker(FollowUp::Deliver(delivering)),
        );
    }

    /// The outcome of a `deliver` the broker sent itself ([`Self::dispatch`]).
    pub(super) fn delivery_done(&mut self, delivering: Delivering, result: RequestResult) {
        let Delivering {
            worker,
            worker_id,
            id,
        } = delivering;
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
                self.record(&worker, &id, DeliveryState::Queued, None);
                self.emit(EventKind::Delivery {
                    undelivered: None,
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
                self.record(&worker, &id, DeliveryState::Failed, Some(reason.clone()));
                self.emit(EventKind::Delivery {
                    undelivered: None,
                    name: worker,
                    id,
                    state: DeliveryState::Failed,
                    reason: Some(reason),
                });
            }
        }
    }

    pub(super) fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::Redeliver(name) => {
                if self
                    .live(&name)
                    .is_ok_and(|w| w.state == WorkerState::Running)
                {
                    self.hand_over(&name);
                }
            }
            Internal::IdleDue(id) => self.idle_due(id),
            Internal::ForceKill(id) => {
                if let Some(w) = self.workers.get(&id).filter(|w| !w.closed) {
                    tracing::warn!(name = %w.name, "worker did not end in time; killing it and its session");
                    let cleanup = kill_worker(w.process.pid, w.child_pid, w.cgroup.clone());
                    self.cleanups.extend(cleanup);
                }
            }
            Internal::Durable {
                accepted,
                copies,
                result,
                reply,
            } => match result {
                Ok(()) => {
                    self.admit(&accepted, copies);
                    let _ = reply.send(Ok(accepted));
                }
                Err(e) => {
                    tracing::error!("message not accepted: {e}");
                    let _ = reply.send(Err(e.into()));
                }
            },
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
                    let _ = kill_worker(w.process.pid, None, None);
                }
            }
        }
    }

    /// Hands a name's undelivered messages to its worker — except those an earlier worker of
    /// that name recorded as entered (they may have reached its program): those count as
    /// injected. One it typed without its Enter died in that program's input line and is
    /// typed again.
    pub(super) fn hand_over(&mut self, name: &str) {
        use crate::protocol::inject_record;
        let log = self
            .config
            .log_dir
            .as_ref()
            .map(|dir| inject_record::path(dir, name));
        let recorded = log.as_deref().map(inject_record::read).unwrap_or_default();
        for msg in self.outbox.take_for_delivery(name) {
            if recorded.entered.contains(&msg.id) {
                tracing::info!(%name, id = %msg.id, "already entered by an earlier worker; not typed again");
                self.delivered(name, &msg.id);
            } else {
                if recorded.typed_only.contains(&msg.id) {
                    tracing::info!(%name, id = %msg.id, "typed without its Enter by an earlier worker; typed again");
                }
                self.dispatch(name, msg);
            }
        }
        if self.outbox.count(name) == 0
            && let Some(log) = &log
        {
            inject_record::clear(log);
        }
    }

    /// Where `worker`'s copy of `id` stands now: in the history, and in the store (if any).
    pub(super) fn record(
        &mut self,
        worker: &str,
        id: &str,
        state: DeliveryState,
        reason: Option<String>,
    ) {
        if let Some(store) = &self.store {
            store.set_state(worker, id, state, reason.clone());
        }
        self.history.set(worker, id, state, reason);
    }

    pub(super) fn delivered(&mut self, worker: &str, id: &str) {
        self.outbox.injected(worker, id);
        self.record(worker, id, DeliveryState::Injected, None);
        self.emit(EventKind::Delivery {
            undelivered: None,
            name: worker.to_string(),
            id: id.to_string(),
            state: DeliveryState::Injected,
            reason: None,
        });
    }
}
