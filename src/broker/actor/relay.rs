//! Relay messages: accepting (and journalling) them, handing them to workers through the
//! request helper, retries, and the broker's own scheduled follow-ups.

use super::*;

impl Broker {
    // ----- relay ------------------------------------------------------------------------

    pub(super) fn accept_message(
        &mut self,
        from: String,
        to: String,
        body: String,
        when: Option<When>,
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
                    when,
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
            self.history.accepted(&name, &msg);
            self.outbox.accept(&name, msg.clone(), deliverable);
            if deliverable {
                self.dispatch(&name, msg);
            }
        }
        Ok(Accepted { id, recipients })
    }

    /// Sends one `deliver` through the request helper; the outcome comes back as
    /// `Internal::DeliverDone`.
    pub(super) fn dispatch(&mut self, name: &str, msg: RelayMessage) {
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
                        self.history.set(&worker, &id, DeliveryState::Queued, None);
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
                        self.history
                            .set(&worker, &id, DeliveryState::Failed, Some(reason.clone()));
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
    pub(super) fn hand_over(&mut self, name: &str) {
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

    /// Records in the journal (if any) that `worker` is no longer owed `id`; the outbox
    /// supplies what is still owed if the journal compacts.
    pub(super) fn journal_done(&mut self, worker: &str, id: &str) {
        if let Some(journal) = &mut self.journal {
            let outbox = &self.outbox;
            let live = || outbox.all().into_iter().map(|(to, m, _)| (to, m)).collect();
            if let Err(e) = journal.done(worker, id, live) {
                tracing::error!("journal write failed: {e}");
            }
        }
    }

    pub(super) fn delivered(&mut self, worker: &str, id: &str) {
        self.outbox.injected(worker, id);
        self.history.set(worker, id, DeliveryState::Injected, None);
        self.journal_done(worker, id);
        self.emit(EventKind::Delivery {
            name: worker.to_string(),
            id: id.to_string(),
            state: DeliveryState::Injected,
            reason: None,
        });
    }
}
