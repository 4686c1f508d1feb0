//! Recent relay messages and where each copy stands (`queued → injected → submitted`, or
//! `unconfirmed`, `failed`, `dropped`), for `GET /api/messages` and `send --wait`. Bounded:
//! the oldest settled copies go first; copies still owed are never evicted.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::protocol::requests::deliver::{RelayMessage, When};
use crate::protocol::{DeliveryState, now_ms};

/// Settled copies kept.
const SETTLED_LIMIT: usize = 1000;

/// One message's copy for one recipient.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: String,
    pub from: String,
    /// The recipient worker.
    pub to: String,
    pub body: String,
    pub sent_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    pub state: DeliveryState,
    /// Why it waits, or what the last state change was based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub updated_ms: u64,
}

#[derive(Default)]
pub struct History {
    records: VecDeque<MessageRecord>,
}

impl History {
    /// Starts from what the store kept (oldest first).
    pub fn restore(&mut self, records: Vec<MessageRecord>) {
        self.records = records.into();
        while self.records.iter().filter(|r| r.state.is_final()).count() > SETTLED_LIMIT {
            self.evict();
        }
    }

    pub fn accepted(&mut self, to: &str, msg: &RelayMessage) {
        self.records.push_back(MessageRecord {
            id: msg.id.clone(),
            from: msg.from.clone(),
            to: to.to_string(),
            body: msg.body.clone(),
            sent_at_ms: msg.sent_at_ms,
            when: msg.when,
            state: DeliveryState::Queued,
            reason: None,
            updated_ms: now_ms(),
        });
        self.evict();
    }

    /// Records a state change of `id` for `to`. A settled copy does not go back (a late
    /// `injected` after `submitted` changes nothing).
    pub fn set(&mut self, to: &str, id: &str, state: DeliveryState, reason: Option<String>) {
        if let Some(r) = self
            .records
            .iter_mut()
            .rev()
            .find(|r| r.id == id && r.to == to)
        {
            if r.state.is_final() {
                return;
            }
            if r.state == DeliveryState::Injected && state == DeliveryState::Queued {
                return;
            }
            r.state = state;
            if reason.is_some() || state != DeliveryState::Queued {
                r.reason = reason;
            }
            r.updated_ms = now_ms();
        }
    }

    pub fn get(&self, to: &str, id: &str) -> Option<&MessageRecord> {
        self.records.iter().rev().find(|r| r.id == id && r.to == to)
    }

    /// Copies matching the filters, owed ones first, each group oldest first.
    pub fn list(&self, state: Option<DeliveryState>, to: Option<&str>) -> Vec<MessageRecord> {
        let matches =
            |r: &&MessageRecord| state.is_none_or(|s| r.state == s) && to.is_none_or(|t| r.to == t);
        let owed = self.records.iter().filter(|r| !r.state.is_final());
        let settled = self.records.iter().filter(|r| r.state.is_final());
        owed.chain(settled).filter(matches).cloned().collect()
    }

    fn evict(&mut self) {
        let settled = self.records.iter().filter(|r| r.state.is_final()).count();
        if settled > SETTLED_LIMIT
            && let Some(i) = self.records.iter().position(|r| r.state.is_final())
        {
            self.records.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> RelayMessage {
        RelayMessage {
            id: id.into(),
            from: "a".into(),
            to: "b".into(),
            body: "x".into(),
            sent_at_ms: 1,
            when: None,
        }
    }

    #[test]
    fn owed_first_and_settled_states_stick() {
        let mut h = History::default();
        h.accepted("b", &msg("1"));
        h.accepted("b", &msg("2"));
        h.set("b", "1", DeliveryState::Submitted, None);
        h.set("b", "1", DeliveryState::Injected, None);
        let ids: Vec<_> = h.list(None, None).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["2", "1"]);
        assert_eq!(h.get("b", "1").unwrap().state, DeliveryState::Submitted);
    }

    #[test]
    fn bounded_by_settled_copies_only() {
        let mut h = History::default();
        h.accepted("b", &msg("owed"));
        for i in 0..SETTLED_LIMIT + 10 {
            let id = i.to_string();
            h.accepted("b", &msg(&id));
            h.set("b", &id, DeliveryState::Submitted, None);
        }
        assert!(h.get("b", "owed").is_some());
        assert!(h.records.len() <= SETTLED_LIMIT + 2);
    }
}
