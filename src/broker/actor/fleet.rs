//! The saved fleet, from the broker task's side: every change to the set of workers (a
//! spawn, a mode change, a release, a program that ended) goes to the store, and a start on
//! a store that holds a fleet starts it again.

use super::*;
use crate::broker::fleet::FleetRecord;

impl Broker {
    /// Saves worker `name` as it is now (`keep`), or forgets it: released, or its program
    /// ended. Without a store (the TUI's own broker) nothing is kept.
    pub(super) fn save_worker(&mut self, name: &str, keep: bool) {
        let Some(store) = &self.store else {
            return;
        };
        let record = match keep {
            false => None,
            true => {
                let Some(w) = self.names.get(name).and_then(|id| self.workers.get(id)) else {
                    return;
                };
                let record = FleetRecord {
                    spec: SpawnSpec {
                        mode: Some(w.mode),
                        ..w.spec.clone()
                    },
                    worktree: w.worktree.clone(),
                };
                Some(serde_json::to_string(&record).expect("a fleet record serializes"))
            }
        };
        store.fleet(name, record);
    }

    /// Starts the saved fleet again, each agent with its kind's resume command. A record
    /// that cannot start again is said and forgotten.
    pub(super) fn restore_fleet(&mut self, fleet: Vec<(String, String)>) {
        if !fleet.is_empty() {
            tracing::info!(workers = fleet.len(), "starting the saved fleet again");
        }
        for (name, text) in fleet {
            let record = match serde_json::from_str::<FleetRecord>(&text) {
                Ok(r) => r,
                Err(e) => {
                    self.not_restored(&name, format!("its saved record is unreadable ({e})"));
                    continue;
                }
            };
            if let Some(wt) = &record.worktree
                && !wt.path.is_dir()
            {
                let why = format!("its worktree {} is gone", wt.path.display());
                self.not_restored(&name, why);
                continue;
            }
            let (reply, mut answer) = oneshot::channel();
            let launch = Launch {
                worktree: record.worktree,
                restored: true,
                ..Launch::plain(record.spec)
            };
            self.spawn(launch, reply);
            // A refusal comes at once; a start that fails later alerts on its own.
            if let Ok(Err(e)) = answer.try_recv() {
                self.not_restored(&name, e.to_string());
            }
        }
    }

    fn not_restored(&mut self, name: &str, why: String) {
        if let Some(store) = &self.store {
            store.fleet(name, None);
        }
        self.alert(
            Severity::Error,
            Some(name),
            "restore",
            "not_restored",
            format!("{name} was not started again: {why}; it is no longer in the saved fleet"),
        );
    }
}
