//! The broker's outbox: every relay message accepted for a worker stays here until that
//! worker reports it `injected`. A message whose worker dies, or whose delivery fails, is
//! marked undelivered and handed over again, in order, when a worker of that name is ready.

use std::collections::{HashMap, VecDeque};

use crate::protocol::requests::deliver::RelayMessage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A `deliver` request is in flight.
    Sending,
    /// The worker holds it (pending queue or waiting to be injected).
    InWorker,
    /// Not with any worker: to be delivered when one of that name is ready.
    Undelivered,
}

#[derive(Default)]
pub struct Outbox {
    by_worker: HashMap<String, VecDeque<(RelayMessage, State)>>,
}

impl Outbox {
    /// Records a message for `worker`, as being sent now (`sending`) or waiting.
    pub fn accept(&mut self, worker: &str, msg: RelayMessage, sending: bool) {
        let state = if sending {
            State::Sending
        } else {
            State::Undelivered
        };
        self.by_worker
            .entry(worker.to_string())
            .or_default()
            .push_back((msg, state));
    }

    fn set(&mut self, worker: &str, id: &str, state: State) {
        if let Some(entry) = self
            .by_worker
            .get_mut(worker)
            .and_then(|q| q.iter_mut().find(|(m, _)| m.id == id))
        {
            entry.1 = state;
        }
    }

    pub fn injected(&mut self, worker: &str, id: &str) {
        if let Some(q) = self.by_worker.get_mut(worker) {
            q.retain(|(m, _)| m.id != id);
            if q.is_empty() {
                self.by_worker.remove(worker);
            }
        }
    }

    pub fn in_worker(&mut self, worker: &str, id: &str) {
        self.set(worker, id, State::InWorker);
    }

    pub fn undelivered(&mut self, worker: &str, id: &str) {
        self.set(worker, id, State::Undelivered);
    }

    /// The worker is gone: whatever it held goes back to undelivered.
    pub fn worker_gone(&mut self, worker: &str) {
        if let Some(q) = self.by_worker.get_mut(worker) {
            for entry in q.iter_mut() {
                entry.1 = State::Undelivered;
            }
        }
    }

    /// Undelivered messages for `worker`, oldest first, now marked as being sent.
    pub fn take_for_delivery(&mut self, worker: &str) -> Vec<RelayMessage> {
        let Some(q) = self.by_worker.get_mut(worker) else {
            return Vec::new();
        };
        q.iter_mut()
            .filter(|(_, s)| *s == State::Undelivered)
            .map(|(m, s)| {
                *s = State::Sending;
                m.clone()
            })
            .collect()
    }

    /// Everything owed, per worker oldest first, with its state.
    pub fn all(&self) -> Vec<(String, RelayMessage, &'static str)> {
        let mut names: Vec<&String> = self.by_worker.keys().collect();
        names.sort();
        names
            .into_iter()
            .flat_map(|name| {
                self.by_worker[name].iter().map(move |(m, s)| {
                    let state = match s {
                        State::Sending => "sending",
                        State::InWorker => "in_worker",
                        State::Undelivered => "waiting",
                    };
                    (name.clone(), m.clone(), state)
                })
            })
            .collect()
    }

    /// Forgets message `id`; returns the recipients it was dropped for.
    pub fn drop_id(&mut self, id: &str) -> Vec<String> {
        let mut dropped = Vec::new();
        for (name, q) in self.by_worker.iter_mut() {
            let before = q.len();
            q.retain(|(m, _)| m.id != id);
            if q.len() < before {
                dropped.push(name.clone());
            }
        }
        self.by_worker.retain(|_, q| !q.is_empty());
        dropped
    }

    pub fn count(&self, worker: &str) -> usize {
        self.by_worker.get(worker).map_or(0, VecDeque::len)
    }

    pub fn total(&self) -> usize {
        self.by_worker.values().map(VecDeque::len).sum()
    }
}
