//! The store's one writer thread. Whatever has queued up while a commit was on disk goes into
//! the next transaction together (group commit): a burst of sends costs one fsync, not one
//! each, and the broker task only ever hands writes over.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, params};

use super::{SETTLED_KEPT, WriteError, insert};
use crate::protocol::DeliveryState;
use crate::protocol::requests::deliver::RelayMessage;

/// Called on the writer thread once an accept is durable (or could not be made so).
pub type AcceptDone = Box<dyn FnOnce(Result<(), WriteError>) + Send>;

enum Op {
    Accept {
        copies: Vec<(String, RelayMessage)>,
        done: AcceptDone,
    },
    State {
        to: String,
        id: String,
        state: DeliveryState,
        reason: Option<String>,
    },
    /// A worker of the saved fleet: kept (its JSON record) or forgotten.
    Fleet {
        name: String,
        record: Option<String>,
    },
    /// The whole saved fleet forgotten (`--fresh`).
    ForgetFleet,
    /// Answered once everything queued before it is committed.
    Sync(mpsc::Sender<()>),
}

/// Most operations in one transaction.
const BATCH: usize = 512;
/// Settled-copy changes between two prunes of the oldest settled copies.
pub(super) const PRUNE_EVERY: usize = 100;

/// The handle: writes are queued to the writer thread; dropping it commits what is queued
/// and closes the database (releasing its lock).
pub struct Store {
    tx: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
}

impl Store {
    pub(super) fn start(conn: Connection) -> Store {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, rx))
            .expect("a thread for the store writer");
        Store {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    fn send(&self, op: Op) -> Result<(), Op> {
        match &self.tx {
            Some(tx) => tx.send(op).map_err(|e| e.0),
            None => Err(op),
        }
    }

    /// Makes `copies` durable, then calls `done` (on the writer thread).
    pub fn accept(&self, copies: Vec<(String, RelayMessage)>, done: AcceptDone) {
        if let Err(Op::Accept { done, .. }) = self.send(Op::Accept { copies, done }) {
            done(Err(WriteError::Closed));
        }
    }

    /// Records where `to`'s copy of `id` stands. A settled copy stays settled, an injected one
    /// does not go back to queued. Once submitted or dropped, the body is forgotten: nothing
    /// can need it again (an unconfirmed copy keeps it, for the user to check and resend).
    pub fn set_state(&self, to: &str, id: &str, state: DeliveryState, reason: Option<String>) {
        let _ = self.send(Op::State {
            to: to.to_string(),
            id: id.to_string(),
            state,
            reason,
        });
    }

    /// Saves worker `name` in the fleet (`Some(record)`) or forgets it (`None`).
    pub fn fleet(&self, name: &str, record: Option<String>) {
        let _ = self.send(Op::Fleet {
            name: name.to_string(),
            record,
        });
    }

    /// Forgets every saved worker.
    pub fn forget_fleet(&self) {
        let _ = self.send(Op::ForgetFleet);
    }

    /// Waits until everything queued so far is committed.
    pub fn sync(&self) {
        let (tx, rx) = mpsc::channel();
        if self.send(Op::Sync(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Op>) {
    let mut settled_since_prune = 0;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        settled_since_prune += batch
            .iter()
            .filter(|op| matches!(op, Op::State { state, .. } if !owed(*state)))
            .count();
        let result = commit(&mut conn, &batch);
        if let Err(e) = &result {
            tracing::error!("store: a commit of {} writes failed: {e}", batch.len());
        }
        if result.is_err() && batch.len() > 1 {
            // Alone, each write may still succeed (a state change costs a page where a large
            // accept does not fit); each accept learns its own fate.
            for op in batch {
                let result = commit(&mut conn, std::slice::from_ref(&op));
                finish(op, result);
            }
        } else {
            for op in batch {
                finish(op, result.clone());
            }
        }
        if settled_since_prune >= PRUNE_EVERY {
            settled_since_prune = 0;
            if let Err(e) = prune(&conn) {
                tracing::warn!("store: pruning settled copies failed: {e}");
            }
        }
    }
}

fn finish(op: Op, result: Result<(), WriteError>) {
    match op {
        Op::Accept { done, .. } => done(result),
        Op::Sync(tx) => drop(tx.send(())),
        Op::State { .. } | Op::Fleet { .. } | Op::ForgetFleet => {}
    }
}

/// Whether a copy in `state` is still the broker's to deliver (after a restart too).
fn owed(state: DeliveryState) -> bool {
    matches!(state, DeliveryState::Queued | DeliveryState::Failed)
}

fn commit(conn: &mut Connection, batch: &[Op]) -> Result<(), WriteError> {
    let tx = conn.transaction()?;
    for op in batch {
        match op {
            Op::Accept { copies, .. } => {
                for (to, msg) in copies {
                    insert(&tx, to, msg)?;
                }
            }
            Op::State {
                to,
                id,
                state,
                reason,
            } => {
                let erase_body = matches!(state, DeliveryState::Submitted | DeliveryState::Dropped);
                tx.execute(
                    "UPDATE messages
                     SET state = ?3, reason = ?4, owed = ?5, updated_ms = ?6,
                         body = CASE WHEN ?7 THEN NULL ELSE body END
                     WHERE id = ?1 AND recipient = ?2
                       AND state NOT IN ('submitted', 'unconfirmed', 'dropped')
                       AND NOT (state = 'injected' AND ?3 = 'queued')",
                    params![
                        id,
                        to,
                        state.as_str(),
                        reason,
                        owed(*state),
                        crate::protocol::now_ms(),
                        erase_body
                    ],
                )?;
            }
            Op::Fleet { name, record } => match record {
                // A worker started again under its name keeps its place in the order.
                Some(record) => drop(tx.execute(
                    "INSERT INTO fleet (name, record, started_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                    params![name, record, crate::protocol::now_ms()],
                )?),
                None => drop(tx.execute("DELETE FROM fleet WHERE name = ?1", params![name])?),
            },
            Op::ForgetFleet => drop(tx.execute("DELETE FROM fleet", [])?),
            Op::Sync(_) => {}
        }
    }
    tx.commit()?;
    Ok(())
}

fn prune(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM messages WHERE owed = 0 AND seq NOT IN
             (SELECT seq FROM messages WHERE owed = 0 ORDER BY seq DESC LIMIT ?1)",
        params![SETTLED_KEPT as i64],
    )
}
